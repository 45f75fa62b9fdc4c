/**
 * Audit of bin/lexbill's argument handling and output, run as a child process on both
 * databases: an option given twice is refused naming it (never read as the last one), every
 * refusal of the arguments exits 2 (bad usage), a missing file to validate is usage, and
 * `bill-run --json` keeps standard output one JSON document even when the log speaks (the
 * log goes to standard error), naming each bill that was not produced and why.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DIALECTS, freshDatabase } from './support/db.ts';
import type { TestDb } from './support/db.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'lexbill');

async function counts(db: TestDb) {
  const n = async (table: 'billing_batch' | 'billing_bill' | 'audit_log' | 'auth_api_token' | 'matters_matter') =>
    Number((await db.db.selectFrom(table).select((e) => e.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  return { batches: await n('billing_batch'), bills: await n('billing_bill'), audit: await n('audit_log'), tokens: await n('auth_api_token'), matters: await n('matters_matter') };
}

for (const dialect of DIALECTS) {
  test(`audit: bin/lexbill refuses an option given twice and every bad usage with exit 2, changing nothing [${dialect}]`, { timeout: 600_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lexbill-audit-cli-args-'));
    const db = await freshDatabase(dialect, { file: join(dir, 'cli.db') });
    const run = (args: string[]) => {
      const r = spawnSync(BIN, args, { cwd: dir, encoding: 'utf8', env: { ...process.env, DATABASE_URL: db.url, LOG_LEVEL: 'silent' } });
      return { code: r.status, out: r.stdout, err: r.stderr };
    };
    try {
      let r = run(['seed-demo', '--matters', '3', '--entries-per-matter', '2', '--seed', '3']);
      assert.equal(r.code, 0, r.err);
      const before = await counts(db);
      const today = new Date().toISOString().slice(0, 10);
      const cases: [string[], RegExp][] = [
        // The second date would otherwise silently win (here: an invoice date before --up-to, or another month billed).
        [['bill-run', '--invoice-date', today, '--up-to', today, '--invoice-date', '2026-01-31'], /--invoice-date was given more than once/],
        [['bill-run', '--invoice-date', today, '--up-to', today, '--client', 'a', '--client', 'b'], /--client was given more than once/],
        [['bill-run', '--invoice-date', today, '--up-to', today, '--approve', '--approve'], /--approve was given more than once/],
        [['report', 'trial-balance', '--to', '2026-01-31', '--to', '2026-12-31'], /--to was given more than once/],
        // Given empty (an unset variable): never the whole firm's report, nor "as at today".
        [['report', 'aged-debtors', '--client', ''], /--client must have a value \(it was given empty/],
        [['report', 'aged-debtors', '--to', ' '], /--to must have a value \(it was given empty/],
        [['ledes', 'export', '--bills', 'all-approved', '--out', join(dir, 'a.txt'), '--out', join(dir, 'b.txt')], /--out was given more than once/],
        [['ledes', 'validate', join(dir, 'a.txt'), '--require-period', '--require-period'], /--require-period was given more than once/],
        [['user', 'token', '--email', 'admin@demo.lexbill.test', '--email', 'billing@demo.lexbill.test'], /--email was given more than once/],
        [['copy-database', '--to', 'postgres://127.0.0.1/a', '--to', 'postgres://127.0.0.1/b'], /--to was given more than once/],
        [['seed-demo', '--matters', '1', '--matters', '2'], /--matters was given more than once/],
        // A flag's value missing, a stray argument: usage (2), like an unknown flag; not 1 (a failed run).
        [['user', 'token', '--email'], /--email/],
        [['migrate', 'extra'], /extra/],
        [['seed-demo', '--matters', '9999999'], /--matters must be a whole number from 0 to 100000/],
        // A file that is not there is a mistyped path (usage), not "the file has violations" (1).
        [['ledes', 'validate', join(dir, 'no-such-file.txt')], /cannot read .*no-such-file\.txt: no such file/],
      ];
      for (const [args, message] of cases) {
        r = run(args);
        assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.out}\n${r.err}`);
        assert.match(r.err, message, args.join(' '));
        assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
        assert.deepEqual(await counts(db), before, `${args.join(' ')} changed nothing`);
      }
      // Help asked for after a command's own words is the help (exit 0), not a refusal of those words.
      for (const args of [['report', 'trial-balance', '--help'], ['ledes', 'validate', 'x.txt', '-h'], ['bill-run', '--invoice-date', today, '--help']]) {
        r = run(args);
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.err}`);
        assert.match(r.out, /bill-run --invoice-date D --up-to D/);
        // The help says what the code does: the run is named first and resumed by its id; exit statuses.
        assert.match(r.out, /resumed by\s+the same command with --run-id ID/);
        assert.match(r.out, /exit 0 done, 1 something failed, 2 bad usage/);
      }
      assert.deepEqual(await counts(db), before, 'help changed nothing');
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`audit: bill-run --json keeps stdout one JSON document when the log speaks, names each bill not produced, exits 1 [${dialect}]`, { timeout: 600_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lexbill-audit-cli-json-'));
    const db = await freshDatabase(dialect, { file: join(dir, 'cli.db') });
    // The default log level (info), and a PDF renderer that cannot start: production fails and logs a warning.
    const env = { ...process.env, DATABASE_URL: db.url, LOG_LEVEL: 'info', CHROMIUM_PATH: join(dir, 'no-chromium'), PRINT_DIR: join(dir, 'print'), MAIL_DROP_DIR: join(dir, 'mail') };
    const run = (args: string[]) => {
      const r = spawnSync(BIN, args, { cwd: dir, encoding: 'utf8', env });
      return { code: r.status, out: r.stdout, err: r.stderr };
    };
    try {
      let r = run(['seed-demo', '--matters', '3', '--entries-per-matter', '2', '--seed', '3']);
      assert.equal(r.code, 0, r.err);
      const today = new Date().toISOString().slice(0, 10);
      r = run(['bill-run', '--invoice-date', today, '--up-to', today, '--approve', '--produce', '--json']);
      assert.equal(r.code, 1, `a production that failed is a failed run\n${r.out}\n${r.err}`);
      // The whole of stdout is the report: a script can JSON.parse it.
      const report = JSON.parse(r.out) as { runId: string; approved: number; produced: number; productionFailed: number; approvedBills: { billId: string; number: string }[]; production: { billId: string; number: string | null; outcome: string; error: string | null }[] };
      assert.ok(report.approved >= 1, r.out);
      assert.equal(report.produced, 0);
      assert.equal(report.productionFailed, report.approved);
      assert.equal(report.approvedBills.length, report.approved);
      assert.deepEqual(report.production.map((p) => p.billId).sort(), report.approvedBills.map((b) => b.billId).sort());
      for (const p of report.production) {
        assert.equal(p.outcome, 'failed');
        assert.match(p.error ?? '', /\S/, 'why it failed');
      }
      // The log went to stderr, and the run was named there before it drafted.
      assert.match(r.err, /bill production step failed/);
      assert.match(r.err, new RegExp(`bill run ${report.runId}: invoice date ${today}, up to ${today} \\(if it stops, run the same command again with --run-id ${report.runId} to resume it\\)`));
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
