/**
 * Mail over SMTP (nodemailer), one pooled transport reused for every message.
 *
 * Timeouts are separate (nodemailer's connectionTimeout, greetingTimeout, socketTimeout): a
 * server that takes the TCP connection and never greets fails after the greeting timeout, and a
 * slow answer to the message data (a server scanning it) is given the longer socket timeout.
 *
 * A failed send says whether the message data was handed over: the error carries
 * `messageDataSent` (true once the connection started reading the message, which it does only
 * after the server answered DATA with 354). Before that nothing can have been delivered,
 * whatever the failure (no greeting, a stall or a dropped connection during the envelope), so a
 * retry may resend; after it a failure without a refusal may have delivered it
 * (`mailMayHaveGone`).
 */
import { Readable } from 'node:stream';
import nodemailer from 'nodemailer';
import type { SendMailOptions, Transporter } from 'nodemailer';
import { addressKey } from '../../shared/email.ts';
import type { Mailer, MailRefusal } from '../../shared/ports.ts';
import { messageIdFor, toNodemailer } from './message.ts';

export interface SmtpOptions {
  host: string;
  port: number;
  /** TLS from the start (port 465); otherwise STARTTLS is used when offered. */
  secure: boolean;
  user?: string;
  pass?: string;
  /** Each of the three timeouts below that is not given (the three were one setting once). */
  timeoutMs?: number;
  /** Setting the session up: connecting (DNS, TCP, TLS) up to the greeting and STARTTLS (nodemailer's deadline covers them all). Default 30 s. */
  connectionTimeoutMs?: number;
  /** Waiting for the server's greeting once connected (cut short by what is left of the connection timeout). Default 30 s. */
  greetingTimeoutMs?: number;
  /** Inactivity on an established session, including waiting for the answer to the message data. Default 120 s. */
  socketTimeoutMs?: number;
  /** Parallel connections. */
  maxConnections?: number;
  /** Accept self-signed certificates (local relays). */
  allowSelfSigned?: boolean;
}

/** The property of a failed send's error that says whether the message data was handed over. */
export const MESSAGE_DATA_SENT = 'messageDataSent';

/** Where a send keeps whether its message data was handed over (a key of the mail's data, which nodemailer copies as it is). */
const SEND_STATE = 'lexbillSendState';
interface SendState { dataStarted: boolean }

/**
 * The message stream as the SMTP connection reads it, noting the first read: the connection
 * pipes the message in only once the server accepted DATA, so before that read nothing of the
 * message reached the server.
 */
function watched(input: Readable, state: SendState): Readable {
  input.pause();
  const out = new Readable({
    read() {
      state.dataStarted = true;
      input.resume();
    },
    destroy(err, callback) {
      input.destroy();
      callback(err);
    },
  });
  input.on('data', (chunk: Buffer) => { if (!out.push(chunk)) input.pause(); });
  input.once('end', () => out.push(null));
  input.once('error', (err) => out.destroy(err));
  return out;
}

/**
 * The addresses a sent message's server refused (nodemailer's `rejected`, with each one's reply
 * from `rejectedErrors`): the message went to the others. Each address once, as it was given
 * (`given`: nodemailer reports a domain in its ASCII form, "xn--mller-kva.example" for "müller.example").
 */
export function refusalsOf(info: { rejected?: unknown; rejectedErrors?: unknown }, given: readonly string[] = []): MailRefusal[] {
  const errors = Array.isArray(info.rejectedErrors) ? info.rejectedErrors as { recipient?: unknown; response?: unknown; message?: unknown }[] : [];
  const reasonOf = (address: string): string => {
    const e = errors.find((x) => typeof x.recipient === 'string' && addressKey(x.recipient) === addressKey(address));
    return String(e?.response ?? e?.message ?? 'refused by the mail server').slice(0, 300);
  };
  const addresses = (Array.isArray(info.rejected) ? info.rejected : []).map((a) => (typeof a === 'string' ? a : String((a as { address?: unknown }).address ?? a)));
  const asGiven = (address: string): string => given.find((g) => addressKey(g) === addressKey(address)) ?? address;
  return [...new Map(addresses.map((a) => [addressKey(a), a])).values()].map((address) => ({ address: asGiven(address), reason: reasonOf(address) }));
}

export function createSmtpMailer(options: SmtpOptions): Mailer {
  const connectionTimeout = options.connectionTimeoutMs ?? options.timeoutMs ?? 30_000;
  const greetingTimeout = options.greetingTimeoutMs ?? options.timeoutMs ?? 30_000;
  const socketTimeout = options.socketTimeoutMs ?? options.timeoutMs ?? 120_000;
  let transport: Transporter | null = null;
  const get = () => {
    if (transport) return transport;
    const t = nodemailer.createTransport({
      host: options.host,
      port: options.port,
      secure: options.secure,
      pool: true,
      maxConnections: options.maxConnections ?? 2,
      connectionTimeout,
      greetingTimeout,
      socketTimeout,
      ...(options.user ? { auth: { user: options.user, pass: options.pass ?? '' } } : {}),
      ...(options.allowSelfSigned ? { tls: { rejectUnauthorized: false } } : {}),
    });
    t.use('stream', (mail, done) => {
      const state = (mail.data as Record<string, unknown>)[SEND_STATE] as SendState | undefined;
      if (state) mail.message.processFunc((input: Readable) => watched(input, state));
      done();
    });
    transport = t;
    return t;
  };
  return {
    kind: 'smtp',
    target: `${options.host}:${options.port}`,
    async send(message) {
      const state: SendState = { dataStarted: false };
      try {
        // (A message refused before it is composed, a bad address say, is a failure with nothing sent too.)
        const mail = { ...toNodemailer(message), [SEND_STATE]: state } as SendMailOptions;
        const info = await get().sendMail(mail);
        return { messageId: info.messageId ?? messageIdFor(message), detail: String(info.response ?? ''), refused: refusalsOf(info, [...message.to, ...(message.cc ?? [])]) };
      } catch (err) {
        if (typeof err === 'object' && err !== null) (err as Record<string, unknown>)[MESSAGE_DATA_SENT] = state.dataStarted;
        throw err;
      }
    },
    async close() {
      transport?.close();
      transport = null;
    },
  };
}
