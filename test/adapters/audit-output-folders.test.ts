/**
 * Audit (output adapters): the print folder and file-drop mail after a crash at the worst
 * moment, between a copy (or .eml) appearing under its final name and its journal record being
 * written, while the print server (pickup service) has already taken the file away: the retry
 * must not hand it over again, and must not skip one never handed over.
 *
 * The crash is simulated by failing the journal's rename (node:fs/promises, patched through
 * syncBuiltinESMExports so the adapters' named imports see it).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { mkdtempSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createFileDropMailer, MAIL_JOURNAL } from '../../src/adapters/mail/file-drop.ts';
import { createFolderPrint, PRINT_JOURNAL } from '../../src/adapters/print/folder.ts';
import type { MailMessage } from '../../src/shared/ports.ts';

const pdf = new TextEncoder().encode('%PDF-1.4\n% copy\n%%EOF\n');
const realRename = fs.promises.rename;

/** Run `fn` with renames into `journal` failing (the process "dies" there); `when` picks which (1-based count). */
async function crashingJournal<T>(journal: string, when: (n: number) => boolean, fn: () => Promise<T>): Promise<T> {
  let n = 0;
  fs.promises.rename = (async (from: fs.PathLike, to: fs.PathLike) => {
    if (String(to).includes(`/${journal}/`) && when(++n)) throw Object.assign(new Error('simulated crash'), { code: 'ECRASH' });
    return realRename(from, to);
  }) as typeof fs.promises.rename;
  syncBuiltinESMExports();
  try { return await fn(); } finally {
    fs.promises.rename = realRename;
    syncBuiltinESMExports();
  }
}

const visible = (dir: string) => readdirSync(dir).filter((f) => !f.startsWith('.')).sort();

test('print folder: a crash after a copy reached the folder but before it was recorded, the copy printed and taken away: the retry does not print it again, and prints the copies never written', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-audit-print-'));
  const printed: string[] = [];
  try {
    // The process dies at each journal write in turn (some of them after a copy reached the folder).
    for (let crashAt = 1; crashAt <= 7; crashAt++) {
      printed.length = 0;
      const job = { jobKey: `bill:${crashAt}:2026-03-02T09:00:00.000Z:print`, name: '1.1.1', pdf, copies: 3 };
      const first = await crashingJournal(PRINT_JOURNAL, (n) => n === crashAt, () => createFolderPrint({ dir }).print(job)).then(() => null, (e: Error) => e);
      assert.ok(first === null || /simulated crash/.test(first.message));
      // The print server prints and removes what is in the folder.
      for (const f of visible(dir)) { printed.push(f); unlinkSync(join(dir, f)); }
      // The retry (a new process).
      await createFolderPrint({ dir }).print(job);
      for (const f of visible(dir)) { printed.push(f); unlinkSync(join(dir, f)); }
      assert.deepEqual(printed.map((f) => /copy(\d)of3/.exec(f)![1]).sort(), ['1', '2', '3'], `crash at journal write ${crashAt}: each copy printed once: ${printed.join(', ')}`);
      // A third attempt prints nothing.
      await createFolderPrint({ dir }).print(job);
      assert.deepEqual(visible(dir), []);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('file-drop: a crash after the .eml reached the folder but before it was recorded, the pickup service sent it: the retry does not hand it over again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-audit-drop-'));
  const message: MailMessage = { messageKey: 'bill:1:c:production-email', from: 'billing@firm.example', to: ['ap@northwind.example'], subject: 'Invoice 1.1.1', text: 'x' };
  const pickedUp: string[] = [];
  try {
    // The .eml reaches the folder, then the process dies before its record is completed.
    await assert.rejects(crashingJournal(MAIL_JOURNAL, () => visible(dir).length > 0, () => createFileDropMailer({ dir }).send(message)), /simulated crash/);
    for (const f of visible(dir)) { pickedUp.push(f); unlinkSync(join(dir, f)); }
    assert.equal(pickedUp.length, 1, 'the message was handed over once');
    await createFileDropMailer({ dir }).send(message);
    for (const f of visible(dir)) { pickedUp.push(f); unlinkSync(join(dir, f)); }
    assert.equal(pickedUp.length, 1, `not handed over twice: ${pickedUp.join(', ')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('print folder and file-drop: a crash before anything reached the folder: the retry writes it (none skipped)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-audit-print-'));
  try {
    const job = { jobKey: 'bill:2:c:print', name: '1.2.1', pdf, copies: 2 };
    // Every journal write fails: with an intent written before the copy, the copy never reaches the folder.
    const first = await crashingJournal(PRINT_JOURNAL, () => true, () => createFolderPrint({ dir }).print(job)).catch((e: Error) => e);
    assert.ok(first instanceof Error);
    const afterCrash = visible(dir);
    await createFolderPrint({ dir }).print(job);
    const all = new Set([...afterCrash, ...visible(dir)]);
    assert.equal(all.size, 2, `both copies reached the folder: ${[...all].join(', ')}`);
    const mailDir = join(dir, 'mail');
    const message: MailMessage = { messageKey: 'bill:2:c:production-email', from: 'billing@firm.example', to: ['ap@northwind.example'], subject: 'Invoice 1.2.1', text: 'x' };
    fs.mkdirSync(mailDir);
    await crashingJournal(MAIL_JOURNAL, () => true, () => createFileDropMailer({ dir: mailDir }).send(message)).catch(() => undefined);
    const before = visible(mailDir);
    await createFileDropMailer({ dir: mailDir }).send(message);
    assert.equal(new Set([...before, ...visible(mailDir)]).size, 1, 'the message reached the folder');
    assert.equal(visible(mailDir).length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
