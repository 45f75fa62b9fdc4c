/**
 * Mail as .eml files in a folder (for a pickup directory, or to look at in development).
 * Each file is named by the message key's digest and written atomically (a hidden temp file in
 * the same folder, synced, then renamed), so a retry of the same message finds the file and
 * writes nothing.
 *
 * A pickup service takes the files it sends away, so each message written is also recorded in a
 * hidden journal folder (`.lexbill-sent`, beside the files; pickup services ignore dot names),
 * the record saying which temp file is about to be renamed into place before the rename
 * (`handOverOnce`): a retry after a crash anywhere in between finds the record and does not hand
 * the message over a second time (even once the pickup service took the file away). The journal
 * is kept (a small file per message); hidden temp files a crash left behind are swept
 * (sweepOrphanTemps).
 */
import { mkdir } from 'node:fs/promises';
import { handOverOnce, handOverRecord, periodicSweep } from '../files.ts';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
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
  // Hidden temp files a crash left (older than a day, named by no intent) are removed now and then.
  const sweep = periodicSweep(options.dir, join(options.dir, MAIL_JOURNAL));
  return {
    kind: 'file-drop',
    // The host too: two servers on one database each have their own folder at the same path.
    target: `${hostname()}:${resolve(options.dir)}`,
    async send(message) {
      sweep();
      const path = emlPathFor(options.dir, message.messageKey);
      const record = emlRecordFor(options.dir, message.messageKey);
      const messageId = messageIdFor(message);
      // Recorded as handed over: not composed again. An intent only (a crash part way through handOverOnce) is finished below.
      if ((await handOverRecord({ path, record })).state === 'done') return { messageId, detail: path, refused: [] };
      await mkdir(join(options.dir, MAIL_JOURNAL), { recursive: true });
      const info = await composer.sendMail(toNodemailer(message));
      const bytes = (info as unknown as { message: Buffer }).message;
      await handOverOnce({ path, record, bytes, done: `${messageId}\n` });
      return { messageId, detail: path, refused: [] };
    },
    async close() {
      composer.close();
    },
  };
}
