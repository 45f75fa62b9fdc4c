/**
 * Shared by the mail adapters: turning a MailMessage into nodemailer's options with a
 * Message-ID derived from the message key (so a resend of the same logical message carries
 * the same Message-ID and the receiving side can drop the duplicate).
 */
import { createHash } from 'node:crypto';
import { isEmailAddress } from '../../shared/email.ts';
import type { SendMailOptions } from 'nodemailer';
import type { MailMessage } from '../../shared/ports.ts';

const MAX_RECIPIENTS = 100;
const MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024;

/** A filesystem- and header-safe token for a message key. */
export function keyDigest(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 32);
}

function domainOf(address: string): string {
  const m = /@([A-Za-z0-9.-]+)>?\s*$/.exec(address);
  return m?.[1] ?? 'lexbill.invalid';
}

export function messageIdFor(message: MailMessage): string {
  return `<${keyDigest(message.messageKey)}.lexbill@${domainOf(message.from)}>`;
}

/** "Name <address>" (a name without line breaks or angle brackets), or a plain address. */
const NAMED_ADDRESS = /^([^\r\n\p{Cc}<>]*)<([^<>]+)>\s*$/u;

/** One plain address (isEmailAddress: nothing nodemailer would read as other addresses, a group, a comment or another header), or an error. */
function plainAddress(address: string, field: string): string {
  if (!isEmailAddress(address)) throw new Error(`${field}: not a single email address: ${JSON.stringify(address.slice(0, 200))}`);
  return address;
}

/** The sender as nodemailer takes it without parsing (a name with a comma stays one name). */
function sender(from: string): { name: string; address: string } | string {
  const m = NAMED_ADDRESS.exec(from.trim());
  if (m) {
    const name = m[1]!.trim().replace(/^"(.*)"$/, '$1');
    return { name, address: plainAddress(m[2]!.trim(), 'from') };
  }
  return plainAddress(from.trim(), 'from');
}

export function toNodemailer(message: MailMessage): SendMailOptions {
  if (!message.messageKey) throw new Error('messageKey is required');
  if (message.to.length === 0) throw new Error('a message needs at least one recipient');
  for (const a of message.to) plainAddress(a, 'to');
  for (const a of message.cc ?? []) plainAddress(a, 'cc');
  if (message.replyTo) plainAddress(message.replyTo, 'replyTo');
  const from = sender(message.from);
  if (message.to.length + (message.cc?.length ?? 0) > MAX_RECIPIENTS) throw new Error(`at most ${MAX_RECIPIENTS} recipients`);
  let total = 0;
  for (const a of message.attachments ?? []) total += a.content.byteLength;
  if (total > MAX_ATTACHMENT_BYTES) throw new Error(`attachments exceed ${MAX_ATTACHMENT_BYTES} bytes`);
  return {
    messageId: messageIdFor(message),
    from,
    to: [...message.to],
    ...(message.cc && message.cc.length > 0 ? { cc: [...message.cc] } : {}),
    ...(message.replyTo ? { replyTo: message.replyTo } : {}),
    subject: message.subject,
    text: message.text,
    ...(message.html ? { html: message.html } : {}),
    headers: { 'X-Lexbill-Message-Key': keyDigest(message.messageKey) },
    attachments: (message.attachments ?? []).map((a) => ({
      filename: a.filename, contentType: a.contentType, content: Buffer.from(a.content.buffer, a.content.byteOffset, a.content.byteLength),
    })),
  };
}
