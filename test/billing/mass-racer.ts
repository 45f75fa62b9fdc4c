/**
 * A second process for the mass-billing concurrency test (mass-concurrency.test.ts): it
 * opens the database by URL (its own connection), says "ready", waits for "go" on stdin,
 * then creates its own "Bill all" run and works it through, and prints one JSON line: the
 * run's counters, the bills it drafted and the reasons it skipped (or, where the other
 * process's run queued every matter first, the id of that run: no run was made).
 *   node --import tsx test/billing/mass-racer.ts <databaseUrl> <invoiceDate> <upTo> <chunk>
 */
import { openDatabase } from '../../src/adapters/db/index.ts';
import { createBillingCommands, createMassBilling } from '../../src/modules/billing/index.ts';
import { RunQueuedElsewhere } from '../../src/modules/billing/mass-commands.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { systemContext } from '../../src/shared/events.ts';

const [url, invoiceDate, upTo, chunk] = process.argv.slice(2) as [string, string, string, string];
const database = openDatabase(url);
const deps = { db: database.db, clock: systemClock, relay: { kick() {} } };
const mass = createMassBilling(deps, createBillingCommands(deps));
await database.db.selectFrom('billing_matter').select('id').limit(1).execute();
process.stdout.write('ready\n');
await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
const ctx = systemContext(`mass-racer-${process.pid}`, 'racer');
let out: unknown;
try {
  const run = await mass.createRun(ctx, { invoiceDate, upTo });
  const done = await mass.runBatch(ctx, run.id, { chunk: Number(chunk) });
  const rows = await mass.batchRows(run.id, { limit: 100_000 });
  out = {
    ok: true, runId: run.id, status: done.status, matterCount: done.matterCount, drafted: done.draftedCount, skipped: done.skippedCount,
    bills: rows.filter((r) => r.state === 'drafted').map((r) => r.billId), reasons: rows.filter((r) => r.state === 'skipped').map((r) => r.reason),
  };
} catch (e) {
  // Bill all refused because the other process's run queued every matter first: an outcome, named.
  out = e instanceof RunQueuedElsewhere ? { ok: true, refusedFor: e.runId } : { ok: false, message: String((e as Error).stack ?? e) };
}
process.stdout.write(`${JSON.stringify(out)}\n`);
await database.close();
process.exit(0);
