/**
 * Hidden temp files a crash leaves in the print and mail-drop folders (and their journals) are
 * swept: old ones no intent names are removed; recent ones, and one an intent names (a retry
 * renames it into place), are kept, and that retry still hands the file over.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { handOverOnce, ORPHAN_TEMP_AGE_MS, sweepOrphanTemps } from '../../src/adapters/files.ts';
import { createFileDropMailer, MAIL_JOURNAL } from '../../src/adapters/mail/file-drop.ts';
import { createFolderPrint, PRINT_JOURNAL } from '../../src/adapters/print/folder.ts';

const bytes = new TextEncoder().encode('%PDF-1.4\n%%EOF\n');

/** A file written with a modification time `ageMs` ago. */
function aged(path: string, ageMs: number, text = 'x'): string {
  writeFileSync(path, text);
  const t = (Date.now() - ageMs) / 1000;
  utimesSync(path, t, t);
  return path;
}

const DAY_MS = 24 * 60 * 60 * 1000;

test('sweepOrphanTemps removes old hidden temp files no intent names, and keeps recent ones, named ones, and everything else', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-sweep-'));
  try {
    const journal = join(dir, '.journal');
    mkdirSync(journal);
    const orphan = aged(join(dir, '.bill-1.pdf.aaaaaa.tmp'), 2 * DAY_MS);
    const fresh = aged(join(dir, '.bill-2.pdf.bbbbbb.tmp'), 60_000);
    const named = aged(join(dir, '.bill-3.pdf.cccccc.tmp'), 3 * DAY_MS);
    aged(join(journal, 'record-3'), 3 * DAY_MS, 'intent .bill-3.pdf.cccccc.tmp\n');
    const done = aged(join(journal, 'record-4'), 3 * DAY_MS, '/print/bill-4.pdf\n');
    const recordTemp = aged(join(journal, '.dddddd.tmp'), 2 * DAY_MS);
    const copy = aged(join(dir, 'bill-5.pdf'), 5 * DAY_MS);
    const otherHidden = aged(join(dir, '.keep-me'), 5 * DAY_MS);

    const removed = (await sweepOrphanTemps(dir, journal)).sort();
    assert.deepEqual(removed, [orphan, recordTemp].sort());
    for (const p of [orphan, recordTemp]) assert.equal(existsSync(p), false, p);
    for (const p of [fresh, named, done, copy, otherHidden]) assert.equal(existsSync(p), true, p);
    assert.ok(ORPHAN_TEMP_AGE_MS >= 60 * 60 * 1000, 'a write in progress is never taken for an orphan');

    // The retry the intent waits for still renames its temp file into place.
    const handed = await handOverOnce({ path: join(dir, 'bill-3.pdf'), record: join(journal, 'record-3'), bytes, done: 'done\n' });
    assert.equal(handed, true);
    assert.equal(existsSync(join(dir, 'bill-3.pdf')), true);
    assert.equal(existsSync(named), false);
    // A sweep of a folder that is not there removes nothing.
    assert.deepEqual(await sweepOrphanTemps(join(dir, 'none'), join(dir, 'none', '.j')), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the print folder and the mail drop sweep their orphans when they hand something over', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-sweep-'));
  try {
    const printDir = join(dir, 'print');
    const mailDir = join(dir, 'mail');
    for (const d of [join(printDir, PRINT_JOURNAL), join(mailDir, MAIL_JOURNAL)]) mkdirSync(d, { recursive: true });
    const printOrphan = aged(join(printDir, '.old.pdf.eeeeee.tmp'), 2 * DAY_MS);
    const printRecordOrphan = aged(join(printDir, PRINT_JOURNAL, '.ffffff.tmp'), 2 * DAY_MS);
    const mailOrphan = aged(join(mailDir, '.old.eml.111111.tmp'), 2 * DAY_MS);

    const print = createFolderPrint({ dir: printDir });
    await print.print({ jobKey: 'sweep-job', name: 'Bill 7', copies: 1, pdf: bytes });
    const mailer = createFileDropMailer({ dir: mailDir });
    await mailer.send({ messageKey: 'sweep-message', from: 'billing@firm.example', to: ['ap@client.example'], subject: 'Bill', text: 'Attached.', attachments: [] });
    await mailer.close();

    // The sweep runs beside the hand-over: wait for it (bounded).
    for (let i = 0; i < 100 && [printOrphan, printRecordOrphan, mailOrphan].some(existsSync); i++) await new Promise((r) => setTimeout(r, 20));
    for (const p of [printOrphan, printRecordOrphan, mailOrphan]) assert.equal(existsSync(p), false, `${p} swept`);
    assert.equal(readdirSync(printDir).filter((f) => f.endsWith('.pdf')).length, 1, 'the copy was printed');
    assert.equal(readdirSync(mailDir).filter((f) => f.endsWith('.eml')).length, 1, 'the message was dropped');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
