/**
 * Audit of two scheduled `bill-run`s started at once (a cron entry on two servers, a job
 * retried while the first still runs), as two processes on both databases: together they
 * bill each matter once and each item once; each says what it billed, and the other reports
 * that matter skipped with its reason; both finish with exit 0.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DIALECTS, freshDatabase } from './support/db.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'lexbill');

for (const dialect of DIALECTS) {
  test(`audit: two bill-runs at once bill each matter and item once, each reporting every matter [${dialect}]`, { timeout: 600_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lexbill-audit-cli-conc-'));
    const db = await freshDatabase(dialect, { file: join(dir, 'cli.db') });
    const env = { ...process.env, DATABASE_URL: db.url, LOG_LEVEL: 'silent' };
    const runAsync = (args: string[]) => new Promise<{ code: number | null; out: string; err: string }>((resolve, reject) => {
      const c = spawn(BIN, args, { cwd: dir, env });
      let out = '';
      let err = '';
      c.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      c.stderr.on('data', (d: Buffer) => { err += d.toString(); });
      c.on('error', reject);
      c.on('close', (code) => resolve({ code, out, err }));
    });
    try {
      const seeded = spawnSync(BIN, ['seed-demo', '--matters', '40', '--entries-per-matter', '3', '--seed', '7'], { cwd: dir, env, encoding: 'utf8' });
      assert.equal(seeded.status, 0, seeded.stderr);
      const today = new Date().toISOString().slice(0, 10);
      const args = ['bill-run', '--invoice-date', today, '--up-to', today];
      const [a, b] = await Promise.all([runAsync(args), runAsync(args)]);
      assert.equal(a.code, 0, a.err);
      assert.equal(b.code, 0, b.err);
      const billedBy = (r: { out: string }) => r.out.split('\n').filter((l) => l.startsWith('billed')).map((l) => l.split(/\s+/)[1]!);
      const [ba, bb] = [billedBy(a), billedBy(b)];
      assert.equal(ba.filter((m) => bb.includes(m)).length, 0, `no matter billed by both\n${a.out}\n${b.out}`);
      const bills = await db.db.selectFrom('billing_bill').select(['id', 'matter_id']).where('status', '=', 'draft').execute();
      assert.equal(bills.length, ba.length + bb.length, 'each bill drafted is reported by the run that drafted it');
      assert.equal(new Set(bills.map((x) => x.matter_id)).size, bills.length, 'one draft per matter');
      const lines = await db.db.selectFrom('billing_bill_line').select('item_id').where('item_id', 'is not', null).where('live', '=', 1).execute();
      assert.equal(new Set(lines.map((l) => l.item_id)).size, lines.length, 'each item on one bill');
      // Each run accounts for every matter it was asked about: billed, skipped or ineligible with a reason, or counted with nothing to bill.
      for (const r of [a, b]) {
        for (const l of r.out.split('\n').filter((x) => /^(skipped|ineligible)\s/.test(x))) assert.match(l, /^(skipped|ineligible)\s+\S+\s+\S/, l);
        const summary = /(\d+) drafted \(\d+ items\), (\d+) skipped, (\d+) ineligible(?: \((\d+) with nothing to bill\))?\./.exec(r.out);
        assert.ok(summary, r.out);
        const counted = Number(summary[4] ?? 0);
        assert.equal(Number(summary[1]) + Number(summary[2]) + Number(summary[3]), r.out.split('\n').filter((x) => /^(billed|skipped|ineligible)\s/.test(x)).length + counted, r.out);
      }
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
