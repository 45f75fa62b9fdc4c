/**
 * `ledes export --bills all-approved` takes every approved bill to e-bill or refuses, saying how
 * many one export takes: it never writes a file that quietly leaves bills out. The bills to
 * e-bill are those of e-billed matters not yet exported as they are: a bill of a matter that is
 * not e-billed, or one exported before, is left out and said.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ledesExport } from '../../src/cli/ledes.ts';
import { createEbillingCommands } from '../../src/modules/ebilling/index.ts';
import { readLedes } from '../../src/modules/ebilling/domain/reader.ts';
import { eachDialect } from '../support/db.ts';
import { ctx, firm, setup } from '../billing/support.ts';
import { codes, settings } from './support.ts';

eachDialect('ledes export --bills all-approved over the limit of one export is refused with the count, no file; within it every approved bill is in the file', async (db) => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-ledes-limit-'));
  try {
    const s = await setup(db);
    const { partner, associate, matter } = await firm(s.cmds);
    const other = await s.cmds.openMatter(ctx, { clientId: (await s.cmds.listClients())[0]!.id, name: 'Second matter', responsibleTimekeeperId: associate.id, openedOn: '2025-06-01', billingCycle: 'MONTH' });
    for (const [m, id] of [[matter.id, 'NW-M-77'], [other.id, 'NW-M-78']] as const) {
      await s.cmds.setBillingOptions(ctx, m, { set: { ebilling: { enabled: true, codeSet: 'litigation', format: 'LEDES1998B', clientLedesId: 'NW-001', matterLedesId: id } } });
    }
    await s.cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-02-10', rawMinutes: 120, narrative: 'Hearing', taskCode: 'L450', activityCode: 'A109' });
    await s.cmds.recordTimeEntry(ctx, { matterId: other.id, timekeeperId: associate.id, workDate: '2026-02-11', rawMinutes: 90, narrative: 'Research', taskCode: 'L120', activityCode: 'A102' });
    await s.drain();
    const dates = { invoiceDate: '2026-02-28', upTo: '2026-02-28' };
    const a = await s.billing.approve(ctx, (await s.billing.createDraft(ctx, { matterId: matter.id, ...dates })).billId);
    const b = await s.billing.approve(ctx, (await s.billing.createDraft(ctx, { matterId: other.id, ...dates })).billId);
    await createEbillingCommands({ db: db.db, clock: s.clock, relay: s.rt.relay }).saveSettings(ctx, settings(), 0);
    await s.drain();

    const run = async (maxBills: number, file: string) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await ledesExport(s.rt, ['--bills', 'all-approved', '--format', '1998B', '--out', file], (t) => out.push(t), (t) => err.push(t), { maxBills });
      return { code, out: out.join('\n'), err: err.join('\n') };
    };
    const over = await run(1, join(dir, 'over.txt'));
    assert.equal(over.code, 1, over.out);
    assert.match(over.err, /more than 1 approved bills; one export takes at most 1: export them by bill number, in parts\. No file was written/);
    assert.equal(existsSync(join(dir, 'over.txt')), false);

    const within = await run(2, join(dir, 'all.txt'));
    assert.equal(within.code, 0, within.err);
    const read = readLedes(readFileSync(join(dir, 'all.txt'), 'utf8'), { codes });
    assert.deepEqual(read.invoices.map((i) => i.number).sort(), [a.number, b.number].sort());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

eachDialect('ledes export --bills all-approved takes the e-billed matters\' bills not yet exported, and says what it left out', async (db) => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-ledes-which-'));
  try {
    const s = await setup(db);
    const { partner, associate, matter } = await firm(s.cmds);
    // A matter of an ordinary client (not e-billed): its approved bill must not block the e-billed ones.
    const plain = await s.cmds.openMatter(ctx, { clientId: (await s.cmds.listClients())[0]!.id, name: 'Not e-billed', responsibleTimekeeperId: associate.id, openedOn: '2025-06-01', billingCycle: 'MONTH' });
    await s.cmds.setBillingOptions(ctx, matter.id, { set: { ebilling: { enabled: true, codeSet: 'litigation', format: 'LEDES1998B', clientLedesId: 'NW-001', matterLedesId: 'NW-M-77' } } });
    await s.cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-02-10', rawMinutes: 120, narrative: 'Hearing', taskCode: 'L450', activityCode: 'A109' });
    await s.cmds.recordTimeEntry(ctx, { matterId: plain.id, timekeeperId: associate.id, workDate: '2026-02-11', rawMinutes: 90, narrative: 'Research' });
    await s.drain();
    const dates = { invoiceDate: '2026-02-28', upTo: '2026-02-28' };
    const a = await s.billing.approve(ctx, (await s.billing.createDraft(ctx, { matterId: matter.id, ...dates })).billId);
    await s.billing.approve(ctx, (await s.billing.createDraft(ctx, { matterId: plain.id, ...dates })).billId);
    await createEbillingCommands({ db: db.db, clock: s.clock, relay: s.rt.relay }).saveSettings(ctx, settings(), 0);
    await s.drain();
    const run = async (file: string, more: string[] = []) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await ledesExport(s.rt, ['--bills', 'all-approved', '--format', '1998B', ...more, '--out', file], (t) => out.push(t), (t) => err.push(t));
      return { code, out: out.join('\n'), err: err.join('\n') };
    };

    // A file that cannot be written (in life a read-only mount, no permission, a full disk; here a
    // folder of the kernel's where no file can be made, whoever runs the test): exit 1, no file, and
    // nothing recorded as exported (review 49, L2: the export, its event and audit row were kept,
    // and a scheduled all-approved run then left the bill out as "already exported").
    const exportedRows = async () => Number((await db.db.selectFrom('audit_log').select((eb) => eb.fn.countAll().as('n')).where('action', '=', 'ebilling.file_exported').executeTakeFirstOrThrow()).n);
    const blocked = '/proc/lexbill-ledes-test.txt';
    const refused = await run(blocked);
    assert.equal(refused.code, 1, refused.err);
    assert.match(refused.err, /--out \/proc\/lexbill-ledes-test\.txt could not be written \(.*\); no file was written and no export recorded$/);
    assert.deepEqual([existsSync(blocked), await exportedRows()], [false, 0]);

    const first = await run(join(dir, 'first.txt'));
    assert.equal(first.code, 0, first.err);
    assert.match(first.err, /left out: 1 approved bill\(s\) of matters that are not e-billed$/);
    assert.deepEqual(readLedes(readFileSync(join(dir, 'first.txt'), 'utf8'), { codes }).invoices.map((i) => i.number), [a.number]);
    assert.equal(await exportedRows(), 1);
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temporary file left');

    // Run again (a schedule): the bill was sent; nothing is written, and that is not a failure.
    const again = await run(join(dir, 'again.txt'));
    assert.equal(again.code, 0, again.err);
    assert.match(again.err, /1 already exported as they are \(--include-exported to export them again\)\nlexbill: no approved bills to export; no file was written/);
    assert.equal(existsSync(join(dir, 'again.txt')), false);
    const all = await run(join(dir, 'all.txt'), ['--include-exported']);
    assert.equal(all.code, 0, all.err);
    assert.deepEqual(readLedes(readFileSync(join(dir, 'all.txt'), 'utf8'), { codes }).invoices.map((i) => i.number), [a.number]);
    await assert.rejects(ledesExport(s.rt, ['--bills', a.number!, '--include-exported', '--out', join(dir, 'x.txt')], () => undefined, () => undefined), /--include-exported goes with --bills all-approved/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
