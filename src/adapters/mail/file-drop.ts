/**
 * Mail as .eml files in a folder (for a pickup directory, or to look at in development).
 * Each file is named by the message key's digest and written atomically (a hidden temp file in
 * the same folder, synced, then renamed), so a retry of the same message finds the file and
 * writes nothing.
 *
 * A pickup service takes the files it sends away, so each message written is also recorded in a
 * hidden journal folder (`.lexbill-sent`, beside the files; pickup services ignore dot names): a
 * retry after a crash between writing the file and recording the send finds the record and does
 * not hand the message over a second time.
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { exists, writeAtomically } from '../files.ts';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import type { Mailer } from '../../shared/ports.ts';
import { keyDigest, messageIdFor, toNodemailer } from './message.ts';

/** The hidden folder (inside the drop folder) recording the messages written. */
export const MAIL_JOURNAL = '.lexbill-sent';

export function emlPathFor(dir: string, messageKey: string): string {
  return join(dir, `${keyDigest(messageKey)}.eml`);
}

/** The journal record of a message. */
export function emlRecordFor(dir: string, messageKey: string): string {
  return join(dir, MAIL_JOURNAL, keyDigest(messageKey));
}



export function createFileDropMailer(options: { dir: string }): Mailer {
  const composer = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
  return {
    kind: 'file-drop',
    async send(message) {
      const path = emlPathFor(options.dir, message.messageKey);
      const record = emlRecordFor(options.dir, message.messageKey);
      const messageId = messageIdFor(message);
      if (await exists(record)) return { messageId, detail: path };
      await mkdir(join(options.dir, MAIL_JOURNAL), { recursive: true });
      if (!await exists(path)) {
        const info = await composer.sendMail(toNodemailer(message));
        const bytes = (info as unknown as { message: Buffer }).message;
        await writeAtomically(path, join(options.dir, `.${keyDigest(message.messageKey)}.${randomBytes(6).toString('hex')}.tmp`), bytes);
      }
      await writeAtomically(record, join(options.dir, MAIL_JOURNAL, `.${randomBytes(6).toString('hex')}.tmp`), new TextEncoder().encode(`${messageId}\n`));
      return { messageId, detail: path };
    },
    async close() {
      composer.close();
    },
  };
}
