/**
 * Audit (output adapters): what a mail adapter hands over is what Lexbill was asked to send.
 * An address nodemailer would read as something else (a list, a group, a header after a line
 * break) is refused, never re-routed; names and attachment file names in any script arrive
 * intact.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createFileDropMailer } from '../../src/adapters/mail/file-drop.ts';
import { createSmtpMailer } from '../../src/adapters/mail/smtp.ts';
import { mailMayHaveGone } from '../../src/modules/billing/domain/production.ts';
import type { MailMessage } from '../../src/shared/ports.ts';
import { startSmtp } from './smtp.ts';

const pdfBytes = new TextEncoder().encode('%PDF-1.4\n%%EOF\n');
const message = (over: Partial<MailMessage> = {}): MailMessage => ({
  messageKey: `audit:${Math.random()}`, from: 'Billing <billing@firm.example>', to: ['ap@northwind.example'], subject: 'Invoice 1.1.1', text: 'Please pay.',
  attachments: [{ filename: 'bill-1.1.1.pdf', contentType: 'application/pdf', content: pdfBytes }], ...over,
});

// Each passes the matters module's address check (/^[^\s@]+@[^\s@]+\.[^\s@]+$/) or holds a line break,
// and nodemailer would send it somewhere else than the string says.
const REROUTED = [
  'ap@northwind.example\r\nBcc: evil@x.example',
  'a,evil@x.example',
  'a;evil@x.example',
  'accounts:evil@x.example;',
  'x(comment)evil@x.example',
  '"a"<evil@x.example>',
];

test('smtp: a recipient address nodemailer would read as other addresses is refused, and nothing reaches the server', async () => {
  const smtp = await startSmtp();
  const mailer = createSmtpMailer({ host: '127.0.0.1', port: smtp.port, secure: false, timeoutMs: 3_000 });
  try {
    for (const bad of REROUTED) {
      const err = await mailer.send(message({ to: [bad] })).then(() => null, (e: unknown) => e);
      assert.equal(mailMayHaveGone('smtp', err), false, `refused before anything was sent, not "may have been sent": ${JSON.stringify(bad)}`);
      await assert.rejects(mailer.send(message({ to: [bad] })), /address/i, `refused: ${JSON.stringify(bad)}`);
      await assert.rejects(mailer.send(message({ cc: [bad] })), /address/i, `cc refused: ${JSON.stringify(bad)}`);
      await assert.rejects(mailer.send(message({ replyTo: bad })), /address/i, `reply-to refused: ${JSON.stringify(bad)}`);
    }
    assert.deepEqual(smtp.messages.map((m) => m.to), [], 'nothing was sent anywhere');
  } finally {
    await mailer.close();
    await smtp.close();
  }
});

test('file-drop: a recipient address that would be re-routed is refused (no .eml written)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-audit-mail-'));
  const mailer = createFileDropMailer({ dir });
  try {
    for (const bad of REROUTED) await assert.rejects(mailer.send(message({ to: [bad] })), /address/i, JSON.stringify(bad));
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.eml')), []);
  } finally {
    await mailer.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mail: a From with a line break is refused; one with a comma or a non-ASCII name is sent from that one address', async () => {
  const smtp = await startSmtp();
  const mailer = createSmtpMailer({ host: '127.0.0.1', port: smtp.port, secure: false, timeoutMs: 3_000 });
  try {
    await assert.rejects(mailer.send(message({ from: 'Firm\r\nBcc: evil@x.example <billing@firm.example>' })), /address/i);
    await mailer.send(message({ from: 'Smith, Jones & Søn <billing@firm.example>' }));
    assert.equal(smtp.messages.length, 1);
    assert.equal(smtp.messages[0]!.from, 'billing@firm.example');
    assert.deepEqual(smtp.messages[0]!.to, ['ap@northwind.example']);
  } finally {
    await mailer.close();
    await smtp.close();
  }
});

test('mail: plain addresses, non-ASCII subject, names and attachment file names arrive intact', async () => {
  const smtp = await startSmtp();
  const mailer = createSmtpMailer({ host: '127.0.0.1', port: smtp.port, secure: false, timeoutMs: 3_000 });
  try {
    await mailer.send(message({
      to: ['ap@northwind.example', 'o.brien+bills@sub.northwind.example'], cc: ['jürgen@müller.example'],
      subject: 'Rechnung 1.1.1 für Müller – Ünïcödé', attachments: [{ filename: 'Rechnung-Müller 1.1.1.pdf', contentType: 'application/pdf', content: pdfBytes }],
    }));
    const m = smtp.messages[0]!;
    assert.equal(m.to.length, 3);
    assert.ok(m.to.includes('ap@northwind.example') && m.to.includes('o.brien+bills@sub.northwind.example'));
    assert.ok(m.to.some((a) => a === 'jürgen@müller.example' || a === 'jürgen@xn--mller-kva.example'), m.to.join(', '));
    assert.match(m.raw, /^Subject: =\?UTF-8\?/m);
    assert.match(m.raw, /filename\*0\*=utf-8''Rechnung-M%C3%BCller/i);
  } finally {
    await mailer.close();
    await smtp.close();
  }
});

test('file-drop: the .eml keeps the subject whole (no header from a line break in it)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-audit-mail-'));
  const mailer = createFileDropMailer({ dir });
  try {
    const r = await mailer.send(message({ subject: 'Invoice\r\nBcc: evil@x.example' }));
    const eml = readFileSync(r.detail, 'utf8');
    assert.doesNotMatch(eml, /^Bcc:/im);
  } finally {
    await mailer.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
