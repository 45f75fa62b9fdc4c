/**
 * Mail as .eml files in a folder (for a pickup directory, or to look at in development).
 * Each file is named by the message key's digest and written atomically (temp file in the
 * same folder, then rename), so a retry of the same message finds the file and writes nothing.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import type { Mailer } from '../../shared/ports.ts';
import { keyDigest, messageIdFor, toNodemailer } from './message.ts';

export function emlPathFor(dir: string, messageKey: string): string {
  return join(dir, `${keyDigest(messageKey)}.eml`);
}

async function exists(path: string): Promise<boolean> {
  try { await stat(path); return true; } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

export function createFileDropMailer(options: { dir: string }): Mailer {
  const composer = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
  return {
    kind: 'file-drop',
    async send(message) {
      const path = emlPathFor(options.dir, message.messageKey);
      const messageId = messageIdFor(message);
      if (await exists(path)) return { messageId, detail: path };
      await mkdir(options.dir, { recursive: true });
      const info = await composer.sendMail(toNodemailer(message));
      const bytes = (info as unknown as { message: Buffer }).message;
      const tmp = join(options.dir, `.${keyDigest(message.messageKey)}.${randomBytes(6).toString('hex')}.tmp`);
      try {
        await writeFile(tmp, bytes, { flag: 'wx' });
        await rename(tmp, path);
      } catch (err) {
        await unlink(tmp).catch(() => undefined);
        throw err;
      }
      return { messageId, detail: path };
    },
    async close() {
      composer.close();
    },
  };
}
