/**
 * Audit of `bin/lexbill bill-run` against the input rules, on both databases: every bad flag
 * (a missing value, a value of the wrong shape, a flag given twice for a boolean, a stray
 * argument) exits 2 with a message naming the flag and writes nothing: no run, no bill, no
 * audit row, and (for flags that can be read without the database) not even the delivery
 * of pending events.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DIALECTS, freshDatabase } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'lexbill');

async function counts(db: TestDb) {
  const n = async (table: 'billing_batch' | 'billing_bill' | 'audit_log' | 'outbox' | 'inbox') =>
    Number((await db.db.selectFrom(table).select((e) => e.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  const pending = Number((await db.db.selectFrom('outbox').select((e) => e.fn.countAll().as('n')).where('delivered_at', 'is', null).executeTakeFirstOrThrow()).n);
  return { batches: await n('billing_batch'), bills: await n('billing_bill'), audit: await n('audit_log'), outbox: await n('outbox'), inbox: await n('inbox'), pending };
}

for (const dialect of DIALECTS) {
  test(`audit: bill-run refuses bad flags naming them, exit 2, writing nothing [${dialect}]`, { timeout: 240_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lexbill-audit-cli-'));
    const db = await freshDatabase(dialect, { file: join(dir, 'cli.db') });
    const run = (args: string[]) => {
      const r = spawnSync(BIN, args, { cwd: dir, encoding: 'utf8', env: { ...process.env, DATABASE_URL: db.url, LOG_LEVEL: 'silent' } });
      return { code: r.status, out: r.stdout, err: r.stderr };
    };
    try {
      let r = run(['seed-demo', '--matters', '4', '--entries-per-matter', '2', '--seed', '3']);
      assert.equal(r.code, 0, r.err);
      // An event not yet delivered (as a clerk's last edit before the scheduled run): a refused run must not deliver it either.
      await db.db.updateTable('outbox').set({ delivered_at: null }).where('id', 'in', db.db.selectFrom('outbox').select('id').orderBy('seq', 'desc').limit(1)).execute();
      const before = await counts(db);
      assert.ok(before.pending >= 1);
      const today = new Date().toISOString().slice(0, 10);
      const base = ['bill-run', '--invoice-date', today, '--up-to', today];
      const cases: [string[], RegExp][] = [
        [['bill-run', '--up-to', today, '--invoice-date'], /--invoice-date/],
        [[...base, 'stray'], /stray/],
        [[...base, '--approve=yes'], /--approve/],
        [[...base, '--bogus'], /--bogus/],
        [['bill-run', '--invoice-date', '2026-02-30', '--up-to', '2026-02-28'], /--invoice-date must be a date/],
        [['bill-run', '--invoice-date', today, '--up-to', '2026-13-01'], /--up-to must be a date/],
        [[...base, '--next-from', '2026-02-30'], /--next-from must be a date/],
        [[...base, '--time-to', 'yesterday'], /--time-to must be a date/],
        [[...base, '--disb-from', '31/01/2026'], /--disb-from must be a date/],
        [[...base, '--terms=-5'], /--terms must be a whole number/],
        [[...base, '--terms', '2.5'], /--terms must be a whole number/],
        [[...base, '--terms', '9999'], /--terms must be a whole number of days from 0 to/],
        [[...base, '--wip-cap=-10'], /--wip-cap must be/],
        [[...base, '--wip-cap', '10.005'], /--wip-cap must be "matter" or an amount/],
        [[...base, '--time-cap', 'lots'], /--time-cap must be "matter" or an amount/],
        [[...base, '--run-id', 'bad id!'], /--run-id must be 8 to 64 letters, digits or dashes/],
        [[...base, '--template', 'x'.repeat(101)], /--template must be/],
        [[...base, '--produce'], /--produce needs --approve/],
      ];
      for (const [args, message] of cases) {
        r = run(args);
        assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.out}\n${r.err}`);
        assert.match(r.err, message, args.join(' '));
        assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
        assert.deepEqual(await counts(db), before, `${args.join(' ')} wrote nothing`);
      }
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
