/**
 * Mail over a real SMTP server on 127.0.0.1, mail as .eml files in a real folder, and the
 * print folder: atomic writes, one file per message key / job key however often retried.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createFileDropMailer, emlRecordFor, MAIL_JOURNAL } from '../../src/adapters/mail/file-drop.ts';
import { createSmtpMailer } from '../../src/adapters/mail/smtp.ts';
import { createOutputs, outputsConfigFromEnv } from '../../src/adapters/outputs.ts';
import { createFolderPrint, PRINT_JOURNAL, printRecordFor } from '../../src/adapters/print/folder.ts';
import type { MailMessage } from '../../src/shared/ports.ts';
import { attachmentOf, startSmtp } from './smtp.ts';

const pdfBytes = new TextEncoder().encode('%PDF-1.4\n% a tiny stand-in document\n%%EOF\n');
const message = (key: string, over: Partial<MailMessage> = {}): MailMessage => ({
  messageKey: key, from: 'Billing <billing@firm.example>', to: ['ap@northwind.example'], subject: 'Invoice 1.1.1', text: 'Please find attached.',
  attachments: [{ filename: 'bill-1.1.1.pdf', contentType: 'application/pdf', content: pdfBytes }], ...over,
});

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'lexbill-out-'));
}

test('smtp: the server receives the message with its attachment and a Message-ID from the key', async () => {
  const smtp = await startSmtp();
  const mailer = createSmtpMailer({ host: '127.0.0.1', port: smtp.port, secure: false, timeoutMs: 5_000 });
  try {
    const r1 = await mailer.send(message('bill:1:production'));
    const r2 = await mailer.send(message('bill:1:production'));
    assert.equal(r1.messageId, r2.messageId, 'the same key gives the same Message-ID (a receiver can drop the resend)');
    const r3 = await mailer.send(message('bill:2:production', { to: ['a@x.example', 'b@x.example'], cc: ['c@x.example'] }));
    assert.notEqual(r3.messageId, r1.messageId);
    assert.equal(smtp.messages.length, 3);
    const first = smtp.messages[0]!;
    assert.deepEqual(first.to, ['ap@northwind.example']);
    assert.equal(first.from, 'billing@firm.example');
    assert.match(first.raw, /Subject: Invoice 1\.1\.1/);
    assert.ok(first.raw.includes(`Message-ID: ${r1.messageId}`));
    const att = attachmentOf(first.raw);
    assert.ok(att, 'a PDF attachment');
    assert.equal(att.filename, 'bill-1.1.1.pdf');
    assert.deepEqual(new Uint8Array(att.bytes), pdfBytes);
    assert.deepEqual(smtp.messages[2]!.to.sort(), ['a@x.example', 'b@x.example', 'c@x.example']);
  } finally {
    await mailer.close();
    await smtp.close();
  }
});

test('smtp: a refusal is an error (so production records the failure) and a retry gets through', async () => {
  const smtp = await startSmtp({ failFirst: 1 });
  const mailer = createSmtpMailer({ host: '127.0.0.1', port: smtp.port, secure: false, timeoutMs: 5_000 });
  try {
    await assert.rejects(mailer.send(message('k1')), /451|Try again/);
    await mailer.send(message('k1'));
    assert.equal(smtp.messages.length, 1);
  } finally {
    await mailer.close();
    await smtp.close();
  }
});

test('smtp: nothing listening is an error, not a hang', async () => {
  const smtp = await startSmtp();
  const port = smtp.port;
  await smtp.close();
  const mailer = createSmtpMailer({ host: '127.0.0.1', port, secure: false, timeoutMs: 2_000 });
  try {
    await assert.rejects(mailer.send(message('k')), /ECONNREFUSED|connect/i);
  } finally {
    await mailer.close();
  }
});

test('file-drop: one .eml per message key, written whole, a retry writes nothing new', async () => {
  const dir = tempDir();
  const mailer = createFileDropMailer({ dir: join(dir, 'mail-out') });
  try {
    const r1 = await mailer.send(message('bill:1:production'));
    const r2 = await mailer.send(message('bill:1:production', { subject: 'changed' }));
    assert.equal(r1.detail, r2.detail, 'the retry found the file');
    await mailer.send(message('bill:2:production'));
    const files = readdirSync(join(dir, 'mail-out')).filter((f) => f !== MAIL_JOURNAL);
    assert.equal(files.length, 2, `no temp files left: ${files.join(', ')}`);
    assert.ok(files.every((f) => f.endsWith('.eml')));
    const eml = readFileSync(r1.detail, 'utf8');
    assert.match(eml, /Subject: Invoice 1\.1\.1/, 'the first write stands');
    assert.ok(eml.includes(`Message-ID: ${r1.messageId}`));
    assert.deepEqual(new Uint8Array(attachmentOf(eml)!.bytes), pdfBytes);
  } finally {
    await mailer.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('file-drop: concurrent sends of one key leave one file', async () => {
  const dir = tempDir();
  const mailer = createFileDropMailer({ dir });
  try {
    await Promise.all(Array.from({ length: 8 }, () => mailer.send(message('same'))));
    assert.deepEqual(readdirSync(dir).filter((f) => !f.endsWith('.eml') && f !== MAIL_JOURNAL), []);
    assert.deepEqual(readdirSync(join(dir, MAIL_JOURNAL)).filter((f) => f.endsWith('.tmp')), []);
    assert.equal(readdirSync(dir).filter((f) => f.endsWith('.eml')).length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('file-drop: a pickup service that takes the .eml away does not get the message again on a retry', async () => {
  const dir = tempDir();
  const mailer = createFileDropMailer({ dir });
  try {
    const first = await mailer.send(message('bill:1:2026-03-02T09:00:00.000Z:production-email'));
    // The pickup service sends the file and removes it; production crashed before recording the send.
    unlinkSync(first.detail);
    const retry = await mailer.send(message('bill:1:2026-03-02T09:00:00.000Z:production-email'));
    assert.equal(retry.messageId, first.messageId);
    assert.deepEqual(readdirSync(dir).filter((f) => !f.startsWith('.')), [], 'not handed over twice');
    // A message whose file was written but whose record was not (a crash in between): found, not written twice, recorded now.
    const other = await mailer.send(message('bill:2:2026-03-02T09:00:00.000Z:production-email'));
    unlinkSync(emlRecordFor(dir, 'bill:2:2026-03-02T09:00:00.000Z:production-email'));
    assert.equal((await mailer.send(message('bill:2:2026-03-02T09:00:00.000Z:production-email', { subject: 'changed' }))).detail, other.detail);
    assert.match(readFileSync(other.detail, 'utf8'), /Subject: Invoice 1\.1\.1/, 'the first write stands');
    unlinkSync(other.detail);
    await mailer.send(message('bill:2:2026-03-02T09:00:00.000Z:production-email'));
    assert.deepEqual(readdirSync(dir).filter((f) => !f.startsWith('.')), []);
  } finally {
    await mailer.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('print folder: one PDF per copy, named by the job, idempotent, nothing partial', async () => {
  const dir = tempDir();
  const print = createFolderPrint({ dir: join(dir, 'print') });
  try {
    const p1 = await print.print({ jobKey: 'bill:1:print', name: '12.8.1', pdf: pdfBytes, copies: 2 });
    assert.equal(p1.length, 2);
    const p2 = await print.print({ jobKey: 'bill:1:print', name: '12.8.1', pdf: pdfBytes, copies: 2 });
    assert.deepEqual(p2, p1, 'a retry returns the same files');
    await print.print({ jobKey: 'bill:2:print', name: '12.8.2', pdf: pdfBytes, copies: 1 });
    const files = readdirSync(join(dir, 'print')).filter((f) => f !== PRINT_JOURNAL).sort();
    assert.equal(files.length, 3, files.join(', '));
    assert.ok(files.every((f) => /^12\.8\.[12]-[0-9a-f]{12}-copy\dof\d\.pdf$/.test(f)), files.join(', '));
    assert.deepEqual(new Uint8Array(readFileSync(p1[0]!)), pdfBytes);
    await assert.rejects(print.print({ jobKey: 'x', name: 'x', pdf: pdfBytes, copies: 0 }), /copies/);
    await assert.rejects(print.print({ jobKey: 'x', name: 'x', pdf: pdfBytes, copies: 21 }), /copies/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('print folder changed between a crash and the retry (PRINT_DIR): a copy handed over in the earlier folder is not printed again; one never handed over there is printed here', async () => {
  const root = tempDir();
  const before = join(root, 'print-before');
  const now = join(root, 'print-now');
  const job = { jobKey: 'bill:3:2026-03-02T09:00:00.000Z:print', name: '12.8.3', pdf: pdfBytes, copies: 5 };
  try {
    const earlier = await createFolderPrint({ dir: before }).print(job);
    const record = (copy: number) => printRecordFor(before, job.jobKey, copy);
    // [copy, what the crashed attempt left in the earlier folder, handed over there]
    const rows: [number, string, boolean][] = [
      [1, 'done, and the print server took the file away', true],
      [2, 'the intent recorded, its temp file still there (never renamed into place)', false],
      [3, 'the intent recorded, its temp file gone (renamed into place, then taken away)', true],
      [4, 'the file under its name, no record (an older version)', true],
      [5, 'nothing (the crash came first)', false],
    ];
    unlinkSync(earlier[0]!);
    unlinkSync(earlier[1]!);
    writeFileSync(join(before, '.copy2.abc.tmp'), pdfBytes);
    writeFileSync(record(2), 'intent .copy2.abc.tmp\n');
    unlinkSync(earlier[2]!);
    writeFileSync(record(3), 'intent .copy3.gone.tmp\n');
    unlinkSync(record(4));
    unlinkSync(earlier[4]!);
    unlinkSync(record(5));
    const print = createFolderPrint({ dir: now });
    assert.equal(print.target, now);
    const paths = await print.print(job, { alsoDoneIn: [before, now] });
    const written = readdirSync(now).filter((f) => !f.startsWith('.')).sort();
    for (const [copy, left, handedOver] of rows) {
      const here = join(now, earlier[copy - 1]!.slice(before.length + 1));
      assert.equal(paths[copy - 1], handedOver ? earlier[copy - 1] : here, `copy ${copy}: ${left}`);
      assert.equal(written.includes(here.slice(now.length + 1)), !handedOver, `copy ${copy}: ${left}`);
    }
    // The retry of the retry (same folders) writes nothing more and returns the same paths.
    assert.deepEqual(await print.print(job, { alsoDoneIn: [before] }), paths);
    assert.deepEqual(readdirSync(now).filter((f) => !f.startsWith('.')).sort(), written);
    // Without the earlier folder named, every copy is this folder's (as before).
    assert.equal((await print.print({ ...job, jobKey: 'bill:4:2026-03-02T09:00:00.000Z:print' })).every((p) => p.startsWith(now)), true);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('print folder: a print server that takes the copies away does not get them again on a retry, and a copy not yet written is not skipped', async () => {
  const dir = tempDir();
  const print = createFolderPrint({ dir });
  const job = { jobKey: 'bill:1:2026-03-02T09:00:00.000Z:print', name: '12.8.1', pdf: pdfBytes, copies: 2 };
  try {
    const paths = await print.print(job);
    // The print server prints each file and removes it.
    for (const p of paths) unlinkSync(p);
    // Production crashed before recording the copies: the retry must not print them again.
    assert.deepEqual(await print.print(job), paths);
    assert.deepEqual(readdirSync(dir).filter((f) => !f.startsWith('.')), [], 'no copy written twice');
    // A crash after the first copy: only the second is written by the retry.
    const other = { ...job, jobKey: 'bill:2:2026-03-02T09:00:00.000Z:print', name: '12.8.2' };
    const otherPaths = await print.print(other);
    for (const p of otherPaths) unlinkSync(p);
    unlinkSync(printRecordFor(dir, other.jobKey, 2));
    await print.print(other);
    assert.deepEqual(readdirSync(dir).filter((f) => !f.startsWith('.')), [otherPaths[1]!.slice(dir.length + 1)], 'the copy never written is written');
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('print folder: a watcher sees only whole PDFs under their final names (temp files are hidden dot-names in the same folder)', async () => {
  const dir = tempDir();
  const print = createFolderPrint({ dir });
  const big = new Uint8Array(8 * 1024 * 1024).fill(0x41);
  big.set(pdfBytes.subarray(0, 8));
  const seen: string[] = [];
  const partial: string[] = [];
  const watcher = watch(dir, (_event, name) => {
    if (!name || name.startsWith('.')) return;
    seen.push(name);
    try { if (readFileSync(join(dir, name)).byteLength !== big.byteLength) partial.push(name); } catch { /* not there (yet) */ }
  });
  try {
    await print.print({ jobKey: 'bill:big:print', name: '12.8.9', pdf: big, copies: 3 });
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(seen.length >= 3, seen.join(', '));
    assert.ok(seen.every((n) => /^12\.8\.9-[0-9a-f]{12}-copy[123]of3\.pdf$/.test(n)), `only final names: ${[...new Set(seen)].join(', ')}`);
    assert.deepEqual(partial, [], 'no half-written PDF seen');
  } finally {
    watcher.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('outputs from the environment: defaults, smtp settings, bad values refused; creating them starts nothing', async () => {
  const c = outputsConfigFromEnv({}, '/opt/lexbill');
  assert.equal(c.mailTransport, 'file-drop');
  assert.equal(c.mailDropDir, '/opt/lexbill/data/mail-out');
  assert.equal(c.printDir, '/opt/lexbill/data/print');
  assert.equal(c.chromiumPath, '/usr/bin/chromium');
  assert.equal(c.pdfSingleProcess, true);
  assert.equal(outputsConfigFromEnv({ PDF_SINGLE_PROCESS: '0' }, '/x').pdfSingleProcess, false);
  // One tab for one process (its one renderer prints every tab's document), two for several; PDF_POOL_SIZE decides when set.
  assert.equal(c.pdfPoolSize, 1);
  assert.equal(outputsConfigFromEnv({ PDF_SINGLE_PROCESS: '0' }, '/x').pdfPoolSize, 2);
  assert.equal(outputsConfigFromEnv({ PDF_POOL_SIZE: '3' }, '/x').pdfPoolSize, 3);
  assert.throws(() => outputsConfigFromEnv({ PDF_POOL_SIZE: '0' }, '/x'), /PDF_POOL_SIZE/);
  assert.equal(c.pdfCombineMax, 10);
  assert.equal(outputsConfigFromEnv({ PDF_COMBINE_MAX: '1' }, '/x').pdfCombineMax, 1);
  assert.throws(() => outputsConfigFromEnv({ PDF_COMBINE_MAX: '33' }, '/x'), /PDF_COMBINE_MAX/);
  assert.throws(() => outputsConfigFromEnv({ PDF_COMBINE_MAX: '0' }, '/x'), /PDF_COMBINE_MAX/);
  const s = outputsConfigFromEnv({ MAIL_TRANSPORT: 'smtp', SMTP_HOST: 'mail.firm.example', SMTP_PORT: '587', SMTP_USER: 'u', SMTP_PASS: 'p', MAIL_FROM: 'b@firm.example' }, '/x');
  assert.deepEqual(s.smtp, { host: 'mail.firm.example', port: 587, secure: false, user: 'u', pass: 'p' });
  assert.equal(s.mailFrom, 'b@firm.example');
  assert.throws(() => outputsConfigFromEnv({ MAIL_TRANSPORT: 'pigeon' }, '/x'), /MAIL_TRANSPORT/);
  assert.throws(() => outputsConfigFromEnv({ SMTP_PORT: '70000' }, '/x'), /SMTP_PORT/);
  const outputs = createOutputs(s);
  assert.equal(outputs.mailer.kind, 'smtp');
  assert.ok(outputs.describe().some((d) => d.kind === 'mail' && d.detail.includes('mail.firm.example:587')));
  assert.ok(!outputs.describe().some((d) => d.detail.includes('p,') || d.detail.endsWith(' p')), 'no password shown');
  // MAIL_TRANSPORT set: the configuration fixes the transport, a choice made on the page is not used.
  assert.equal(s.mailTransportFixed, true);
  assert.equal(outputs.mailFixedByServer, true);
  assert.equal(outputs.mailerFor({ transport: 'file-drop' }), outputs.mailer);
  assert.ok(!outputs.describe({ transport: 'file-drop' }).some((d) => d.detail.includes('chosen on this page')));
  await outputs.close();
  await outputs.close();

  // Unset: the page's choice is used, one mailer per distinct choice.
  assert.equal(c.mailTransportFixed, false);
  const open = createOutputs(c);
  assert.equal(open.mailFixedByServer, false);
  assert.equal(open.mailerFor(null), open.mailer);
  assert.equal(open.mailerFor({ transport: 'file-drop' }), open.mailer, "the server's own folder");
  const choice = { transport: 'smtp', host: '127.0.0.1', port: 2525, secure: false, user: 'u', pass: 'hidden-pass' } as const;
  const chosen = open.mailerFor(choice);
  assert.equal(chosen.kind, 'smtp');
  assert.equal(open.mailerFor({ ...choice }), chosen, 'the same choice, the same mailer (its pool reused)');
  assert.notEqual(open.mailerFor({ ...choice, port: 2526 }), chosen);
  const mailLine = open.describe(choice).find((d) => d.kind === 'mail')!;
  assert.match(mailLine.detail, /^127\.0\.0\.1:2525, user u, from .*\(chosen on this page\)$/);
  assert.ok(!mailLine.detail.includes('hidden-pass'), 'no password shown');
  await open.close();
});
