/** A real SMTP server (npm smtp-server) on 127.0.0.1 that keeps every message it receives. */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface Received {
  from: string;
  to: string[];
  raw: string;
}

/**
 * `beforeReply`: awaited before the server answers a message's DATA (a slow server). `refuse`:
 * the addresses (lower case) refused at RCPT TO with 550, while the message goes to the others;
 * the set may be changed between sends.
 */
export async function startSmtp(opts: { failFirst?: number; beforeReply?: () => Promise<void>; refuse?: Set<string> } = {}): Promise<{ port: number; messages: Received[]; close(): Promise<void> }> {
  const messages: Received[] = [];
  let failures = opts.failFirst ?? 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    size: 30 * 1024 * 1024,
    onRcptTo(address, _session, callback) {
      if (opts.refuse?.has(address.address.toLowerCase())) {
        const err = new Error('5.1.1 Mailbox unavailable') as Error & { responseCode: number };
        err.responseCode = 550;
        callback(err);
        return;
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', async () => {
        if (opts.beforeReply) await opts.beforeReply();
        if (failures > 0) {
          failures--;
          const err = new Error('Try again later') as Error & { responseCode: number };
          err.responseCode = 451;
          callback(err);
          return;
        }
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as AddressInfo).port;
  return { port, messages, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** The decoded bytes of the first attachment of a raw MIME message (base64 parts). */
export function attachmentOf(raw: string, contentType = 'application/pdf'): { filename: string; bytes: Buffer } | null {
  const boundary = /boundary="?([^";\r\n]+)"?/i.exec(raw)?.[1];
  if (!boundary) return null;
  for (const part of raw.split(`--${boundary}`)) {
    if (!part.toLowerCase().includes(`content-type: ${contentType}`)) continue;
    const [head, ...body] = part.split(/\r?\n\r?\n/);
    const filename = /filename="?([^";\r\n]+)"?/i.exec(head ?? '')?.[1] ?? '';
    return { filename, bytes: Buffer.from(body.join('\n').replace(/[\r\n\s-]/g, ''), 'base64') };
  }
  return null;
}
