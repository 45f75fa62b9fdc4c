/**
 * The mailer for the transport chosen on the settings page, over the server's own: one mailer
 * per distinct choice, made on first use and reused (an SMTP pool stays open between sends), a
 * few kept so a send still running on a choice just replaced finishes on its own pool; all
 * closed with the outputs.
 */
import type { Mailer, MailTransportChoice, OutputDescription } from '../../shared/ports.ts';
import { createFileDropMailer } from './file-drop.ts';
import { createSmtpMailer } from './smtp.ts';

/** Mailers kept for past choices (the oldest closed beyond this). */
const KEPT_CHOICES = 4;

export interface MailChooser {
  mailerFor(choice: MailTransportChoice | null): Mailer;
  /** The mail line of the outputs' description for a choice (null: none made, or not used). */
  describe(choice: MailTransportChoice | null): OutputDescription | null;
  close(): Promise<void>;
}

/** The server's SMTP timeouts (SMTP_*_TIMEOUT_MS), which a transport chosen on the page keeps. */
export interface SmtpTimeouts { connectionTimeoutMs?: number; greetingTimeoutMs?: number; socketTimeoutMs?: number; timeoutMs?: number }

export function createMailChooser(opts: { server: Mailer; fixedByServer: boolean; dropDir: string; mailFrom: string; smtpTimeouts?: SmtpTimeouts }): MailChooser {
  const made = new Map<string, Mailer>();
  const used = (choice: MailTransportChoice | null): choice is MailTransportChoice => choice !== null && !opts.fixedByServer;
  return {
    mailerFor(choice) {
      if (!used(choice)) return opts.server;
      // The server's own file-drop writes to the same folder: one journal for both.
      if (choice.transport === 'file-drop' && opts.server.kind === 'file-drop') return opts.server;
      const key = JSON.stringify(choice);
      const found = made.get(key);
      if (found) return found;
      const mailer = choice.transport === 'smtp'
        ? createSmtpMailer({
          host: choice.host, port: choice.port, secure: choice.secure,
          ...(choice.user ? { user: choice.user, pass: choice.pass ?? '' } : {}),
          ...opts.smtpTimeouts,
        })
        : createFileDropMailer({ dir: opts.dropDir });
      made.set(key, mailer);
      while (made.size > KEPT_CHOICES) {
        const [oldest, old] = made.entries().next().value as [string, Mailer];
        made.delete(oldest);
        void old.close();
      }
      return mailer;
    },
    describe(choice) {
      if (!used(choice)) return null;
      return choice.transport === 'smtp'
        ? { kind: 'mail', adapter: 'smtp', detail: `${choice.host}:${choice.port}${choice.secure ? ' (TLS)' : ''}${choice.user ? `, user ${choice.user}` : ''}, from ${opts.mailFrom} (chosen on this page)` }
        : { kind: 'mail', adapter: 'file-drop', detail: `${opts.dropDir}, from ${opts.mailFrom} (chosen on this page)` };
    },
    async close() {
      const all = [...made.values()];
      made.clear();
      await Promise.allSettled(all.map((m) => m.close()));
    },
  };
}
