/**
 * `bill-run` stopped by Ctrl-C (SIGINT) while it drafts, as a process on both databases: it
 * stops between chunks, marks the run stopped (resumable at once), says how to resume it and
 * exits 130; resumed with --run-id, the run bills the rest, each matter and item once.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DIALECTS, freshDatabase } from '../support/db.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'lexbill');

for (const dialect of DIALECTS) {
  test(`bill-run: Ctrl-C while drafting stops the run resumably, says how to resume, exits 130; --run-id finishes it [${dialect}]`, { timeout: 600_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lexbill-bill-run-int-'));
    const db = await freshDatabase(dialect, { file: join(dir, 'cli.db') });
    const env = { ...process.env, DATABASE_URL: db.url, LOG_LEVEL: 'silent' };
    try {
      const seeded = spawnSync(BIN, ['seed-demo', '--matters', '700', '--entries-per-matter', '3', '--seed', '11'], { cwd: dir, env, encoding: 'utf8' });
      assert.equal(seeded.status, 0, seeded.stderr);
      const today = new Date().toISOString().slice(0, 10);
      const args = ['bill-run', '--invoice-date', today, '--up-to', today];
      // Interrupted as soon as it names its run (before its first chunk is drafted, or during it).
      const interrupted = (argv: string[]) => new Promise<{ code: number | null; out: string; err: string }>((resolve, reject) => {
        const c = spawn(BIN, argv, { cwd: dir, env });
        let out = '';
        let err = '';
        let sent = false;
        c.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (!sent && /^Bill run \S+:/m.test(out)) { sent = true; c.kill('SIGINT'); }
        });
        c.stderr.on('data', (d: Buffer) => { err += d.toString(); });
        c.on('error', reject);
        c.on('close', (code, signal) => resolve({ code, out, err: signal ? `${err}\n(ended by ${signal}: no handler took it)` : err }));
      });
      const first = await interrupted(args);
      const runId = /^Bill run (\S+):/m.exec(first.out)?.[1];
      assert.ok(runId, first.out);
      assert.equal(first.code, 130, `${first.out}\n${first.err}`);
      assert.match(first.err, new RegExp(`bill run ${runId} interrupted \\(SIGINT\\): what it drafted is kept; run the same command again with --run-id ${runId} to resume it`));
      const stopped = await db.db.selectFrom('billing_batch').select(['status', 'error', 'heartbeat_at', 'drafted_count']).where('id', '=', runId).executeTakeFirstOrThrow();
      assert.equal(stopped.status, 'failed');
      assert.match(String(stopped.error), /Interrupted \(SIGINT\) on the command line/);
      assert.equal(stopped.heartbeat_at, null, 'resumable at once');
      const total = Number((await db.db.selectFrom('billing_batch_matter').select((eb) => eb.fn.countAll().as('n')).where('batch_id', '=', runId).executeTakeFirstOrThrow()).n);
      assert.ok(Number(stopped.drafted_count) < total, `stopped part way: ${String(stopped.drafted_count)} of ${total}`);
      const audited = await db.db.selectFrom('audit_log').select('action').where('entity_id', '=', runId).where('action', '=', 'billing.bill_run_failed').execute();
      assert.equal(audited.length, 1, 'the stop is audited');

      // The same run given again while another process drafts it (its heartbeat fresh), and that command given Ctrl-C:
      // the other process's run is not marked stopped from here.
      const beat = new Date().toISOString();
      await db.db.updateTable('billing_batch').set({ status: 'running', error: null, heartbeat_at: beat }).where('id', '=', runId).execute();
      const other = await interrupted([...args, '--run-id', runId]);
      assert.notEqual(other.code, 0, `${other.out}\n${other.err}`);
      const untouched = await db.db.selectFrom('billing_batch').select(['status', 'error', 'heartbeat_at']).where('id', '=', runId).executeTakeFirstOrThrow();
      assert.deepEqual({ status: untouched.status, error: untouched.error, heartbeatAt: untouched.heartbeat_at }, { status: 'running', error: null, heartbeatAt: beat }, 'another process\'s run is left as it is');
      // That process stopped: its run as the interrupt left it.
      await db.db.updateTable('billing_batch').set({ status: 'failed', error: String(stopped.error), heartbeat_at: null }).where('id', '=', runId).execute();

      // A scheduled retry without --run-id: the matters the stopped run holds are not billed by a new run, and the
      // command says which run holds them and exits 1 (not 0, "nothing to bill"), so a retry-on-failure job sees it.
      const retry = spawnSync(BIN, args, { cwd: dir, env, encoding: 'utf8' });
      assert.equal(retry.status, 1, `${retry.stdout}\n${retry.stderr}`);
      assert.match(retry.stderr, new RegExp(`lexbill: \\d+ matter\\(s\\) are queued in bill run ${runId} \\(invoice date ${today}, up to ${today}\\), which stopped part way and is not being drafted: take it up again on its page, or with the command that made it and --run-id ${runId}`));
      assert.equal((await db.db.selectFrom('billing_batch').select('id').execute()).length, 1, 'no other run made');
      // --json names it too (a scheduler reads stdout): stoppedRuns, beside exit 1.
      const retryJson = spawnSync(BIN, [...args, '--json'], { cwd: dir, env, encoding: 'utf8' });
      assert.equal(retryJson.status, 1, retryJson.stderr);
      const doc = JSON.parse(retryJson.stdout.trim().split('\n').pop()!) as { runId: string | null; stoppedRuns: { runId: string; invoiceDate: string; upTo: string; matters: number }[] };
      assert.equal(doc.runId, null);
      assert.deepEqual(doc.stoppedRuns.map((r) => [r.runId, r.invoiceDate, r.upTo, r.matters > 0]), [[runId, today, today, true]]);

      // Resumed at once (no minute's wait for a heartbeat): it drafts the rest.
      const again = spawnSync(BIN, [...args, '--run-id', runId], { cwd: dir, env, encoding: 'utf8' });
      assert.equal(again.status, 0, `${again.stdout}\n${again.stderr}`);
      const done = await db.db.selectFrom('billing_batch').select(['status', 'drafted_count']).where('id', '=', runId).executeTakeFirstOrThrow();
      assert.equal(done.status, 'done');
      const bills = await db.db.selectFrom('billing_bill').select('matter_id').where('status', '=', 'draft').execute();
      assert.equal(bills.length, Number(done.drafted_count));
      assert.equal(new Set(bills.map((b) => b.matter_id)).size, bills.length, 'one draft per matter');
      const lines = await db.db.selectFrom('billing_bill_line').select('item_id').where('item_id', 'is not', null).where('live', '=', 1).execute();
      assert.equal(new Set(lines.map((l) => l.item_id)).size, lines.length, 'each item on one bill');
      assert.equal((again.stdout.match(/^billed /gm) ?? []).length, bills.length, 'the resumed run reports every bill of the run');
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
