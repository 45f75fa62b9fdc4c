/**
 * `bin/lexbill ledes export|validate` on both databases, run as a separate process against a
 * database whose bills were made by the real modules: files written only when every bill
 * passes, refusals listed by line with exit 1, validation by line and field.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createEbillingCommands } from '../../src/modules/ebilling/index.ts';
import { readLedes } from '../../src/modules/ebilling/domain/reader.ts';
import { DIALECTS, freshDatabase } from '../support/db.ts';
import { ctx, firm, setup } from '../billing/support.ts';
import { codes, settings } from './support.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'lexbill');

for (const dialect of DIALECTS) {
  test(`bin/lexbill ledes export and validate [${dialect}]`, { timeout: 180_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lexbill-ledes-'));
    const db = await freshDatabase(dialect, { file: join(dir, 'ledes.db') });
    try {
      const s = await setup(db);
      const { partner, associate, matter } = await firm(s.cmds);
      await s.cmds.setBillingOptions(ctx, matter.id, { set: { ebilling: { enabled: true, codeSet: 'litigation', format: 'LEDES1998B', clientLedesId: 'NW-001', matterLedesId: 'NW-M-77' } } });
      const other = await s.cmds.openMatter(ctx, { clientId: (await s.cmds.listClients())[0]!.id, name: 'Second matter', responsibleTimekeeperId: associate.id, openedOn: '2025-06-01', billingCycle: 'MONTH' });
      await s.cmds.setBillingOptions(ctx, other.id, { set: { ebilling: { enabled: true, codeSet: 'litigation', format: 'LEDES1998B', clientLedesId: 'NW-001', matterLedesId: 'NW-M-78' } } });
      await s.cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-02-10', rawMinutes: 120, narrative: 'Hearing', taskCode: 'L450', activityCode: 'A109' });
      await s.cmds.recordTimeEntry(ctx, { matterId: other.id, timekeeperId: associate.id, workDate: '2026-02-11', rawMinutes: 90, narrative: 'Research', taskCode: 'L120', activityCode: 'A102' });
      await s.cmds.recordDisbursement(ctx, { matterId: other.id, incurredOn: '2026-02-20', code: 'COPY', expenseCode: 'E101', quantityMilli: 10_000, unitCostMinor: 15, taxCode: 'SALES', description: 'Copies' });
      await s.drain();
      const dates = { invoiceDate: '2026-02-28', upTo: '2026-02-28' };
      const a = await s.billing.approve(ctx, (await s.billing.createDraft(ctx, { matterId: matter.id, ...dates })).billId);
      const b = await s.billing.approve(ctx, (await s.billing.createDraft(ctx, { matterId: other.id, ...dates })).billId);
      // Bill events are left undelivered: the CLI brings e-billing's copy up to date itself.
      await createEbillingCommands({ db: db.db, clock: s.clock, relay: s.rt.relay }).saveSettings(ctx, settings(), 0);
      await s.rt.relay.stop();

      const run = (args: string[]) => {
        const r = spawnSync(BIN, args, { cwd: dir, encoding: 'utf8', env: { ...process.env, DATABASE_URL: db.url, LOG_LEVEL: 'silent' } });
        return { code: r.status, out: r.stdout, err: r.stderr };
      };
      // The second bill carries sales tax: 1998B refuses it, lists why, writes nothing.
      let r = run(['ledes', 'export', '--bills', 'all-approved', '--format', '1998B', '--out', join(dir, 'all.txt')]);
      assert.equal(r.code, 1, r.out + r.err);
      assert.match(r.err, new RegExp(`no file was written; 1 problem\\(s\\) to fix first:\\n  Bill ${b.number!.replaceAll('.', '\\.')}, INVOICE_TOTAL: the bill carries tax of 0\\.12, which LEDES 1998B cannot carry\\. Fix: export it as LEDES 1998BI`));
      assert.equal(existsSync(join(dir, 'all.txt')), false);

      r = run(['ledes', 'export', '--bills', a.number!, '--format', '1998B', '--out', join(dir, 'a.txt')]);
      assert.equal(r.code, 0, r.err);
      const aRead = readLedes(readFileSync(join(dir, 'a.txt'), 'utf8'), { codes });
      assert.deepEqual(aRead.violations, []);
      assert.deepEqual(aRead.invoices.map((i) => [i.number, i.totalMinor]), [[a.number, a.totals.totalMinor]]);

      r = run(['ledes', 'export', '--bills', a.number!, b.number!, '--format', '1998BI', '--out', join(dir, 'both.txt')]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /LEDES1998BI, 2 invoice\(s\), 3 line\(s\)/);
      const both = readLedes(readFileSync(join(dir, 'both.txt'), 'utf8'), { codes });
      assert.deepEqual(both.violations, []);
      assert.deepEqual(both.invoices.map((i) => [i.number, i.totalMinor, i.taxMinor]), [[a.number, a.totals.totalMinor, 0], [b.number, b.totals.totalMinor, b.totals.taxMinor]]);

      // Both were exported above: all-approved leaves them out (said on stderr, nothing written, exit 0); --include-exported takes them again.
      r = run(['ledes', 'export', '--bills', 'all-approved', '--format', '1998BI', '--per-bill', '--out', join(dir, 'per-bill')]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.err, /left out: 2 already exported as they are \(--include-exported to export them again\)\nlexbill: no approved bills to export; no file was written/);
      assert.equal(existsSync(join(dir, 'per-bill')), false);
      r = run(['ledes', 'export', '--bills', 'all-approved', '--format', '1998BI', '--per-bill', '--include-exported', '--out', join(dir, 'per-bill')]);
      assert.equal(r.code, 0, r.err);
      assert.deepEqual(readdirSync(join(dir, 'per-bill')).sort(), [`LEDES98BI_${a.number}.txt`, `LEDES98BI_${b.number}.txt`].sort());

      r = run(['ledes', 'validate', join(dir, 'both.txt')]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /valid LEDES1998BI, 2 invoice\(s\)/);
      const broken = readFileSync(join(dir, 'a.txt'), 'utf8').replace('|F|2.00|', '|F|2,00|');
      writeFileSync(join(dir, 'broken.txt'), broken);
      r = run(['ledes', 'validate', join(dir, 'broken.txt')]);
      assert.equal(r.code, 1);
      assert.match(r.out, /^line 3 LINE_ITEM_NUMBER_OF_UNITS: must be a number/m);

      r = run(['ledes', 'export', '--bills', '99.9.9', '--out', join(dir, 'x.txt')]);
      assert.equal(r.code, 1);
      assert.match(r.err, /no bill numbered 99\.9\.9/);
      r = run(['ledes', 'export', '--bills', a.number!, '--format', 'XML', '--out', join(dir, 'x.txt')]);
      assert.equal(r.code, 2);
      assert.match(r.err, /--format must be 1998B or 1998BI/);
      r = run(['ledes', 'export', '--bills', a.number!]);
      assert.equal(r.code, 2);
      assert.match(r.err, /--out FILE is required/);
      r = run(['--help']);
      assert.match(r.out, /ledes export --bills all-approved\|NUMBER\.\.\./);

      // --out in a directory that is not there: refused (usage) before the export is made, so no
      // export is kept (nor its event published) without the file it names.
      r = run(['ledes', 'export', '--bills', a.number!, '--format', '1998B', '--out', join(dir, 'missing', 'a.txt')]);
      assert.equal(r.code, 2, r.out + r.err);
      assert.match(r.err, /--out .*a\.txt: the directory .*missing does not exist/);
      assert.equal((await db.db.selectFrom('ebilling_export').select('id').execute()).length, 4, 'nothing exported');
      // A bill named twice is one invoice in the file; an option given twice is refused.
      r = run(['ledes', 'export', '--bills', a.number!, '--bills', a.number!, '--format', '1998B', '--out', join(dir, 'twice.txt')]);
      assert.equal(r.code, 0, r.err);
      assert.deepEqual(readLedes(readFileSync(join(dir, 'twice.txt'), 'utf8'), { codes }).invoices.map((i) => i.number), [a.number]);
      r = run(['ledes', 'export', '--bills', a.number!, '--format', '1998B', '--format', '1998BI', '--out', join(dir, 'x.txt')]);
      assert.equal(r.code, 2, r.out + r.err);
      assert.match(r.err, /--format was given more than once/);

      // Every file the CLI wrote is kept with its bills.
      const kept = await db.db.selectFrom('ebilling_export').select(['file_name', 'created_by']).execute();
      assert.equal(kept.length, 5);
      assert.ok(kept.every((k) => k.created_by === 'cli:ledes-export'));
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
