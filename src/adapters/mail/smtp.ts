/** Mail over SMTP (nodemailer), one pooled transport reused for every message. */
import nodemailer from 'nodemailer';
import type { Transporter } from 'nodemailer';
import type { Mailer } from '../../shared/ports.ts';
import { messageIdFor, toNodemailer } from './message.ts';

export interface SmtpOptions {
  host: string;
  port: number;
  /** TLS from the start (port 465); otherwise STARTTLS is used when offered. */
  secure: boolean;
  user?: string;
  pass?: string;
  /** Connection/greeting/socket timeouts. */
  timeoutMs?: number;
  /** Parallel connections. */
  maxConnections?: number;
  /** Accept self-signed certificates (local relays). */
  allowSelfSigned?: boolean;
}

export function createSmtpMailer(options: SmtpOptions): Mailer {
  const timeoutMs = options.timeoutMs ?? 30_000;
  let transport: Transporter | null = null;
  const get = () => {
    transport ??= nodemailer.createTransport({
      host: options.host,
      port: options.port,
      secure: options.secure,
      pool: true,
      maxConnections: options.maxConnections ?? 2,
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
      ...(options.user ? { auth: { user: options.user, pass: options.pass ?? '' } } : {}),
      ...(options.allowSelfSigned ? { tls: { rejectUnauthorized: false } } : {}),
    });
    return transport;
  };
  return {
    kind: 'smtp',
    async send(message) {
      const info = await get().sendMail(toNodemailer(message));
      return { messageId: info.messageId ?? messageIdFor(message), detail: String(info.response ?? '') };
    },
    async close() {
      transport?.close();
      transport = null;
    },
  };
}
