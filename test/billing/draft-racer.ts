/**
 * A second process for the concurrency test (test/billing/bills-concurrency.test.ts): it
 * opens the database by URL (its own connection), says "ready", waits for "go" on stdin,
 * then composes a draft for the matter and prints the outcome as one JSON line.
 *   node --import tsx test/billing/draft-racer.ts <databaseUrl> <matterId> <invoiceDate> <upTo>
 */
import { openDatabase } from '../../src/adapters/db/index.ts';
import { createBillingCommands } from '../../src/modules/billing/index.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { systemContext } from '../../src/shared/events.ts';
import { HttpError } from '../../src/shared/web/errors.ts';

const [url, matterId, invoiceDate, upTo] = process.argv.slice(2) as [string, string, string, string];
const database = openDatabase(url);
const billing = createBillingCommands({ db: database.db, clock: systemClock, relay: { kick() {} } });
await database.db.selectFrom('billing_matter').select('id').where('id', '=', matterId).executeTakeFirstOrThrow();
process.stdout.write('ready\n');
await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
let out: unknown;
try {
  const bill = await billing.createDraft(systemContext(`racer-${process.pid}`, 'racer'), { matterId, invoiceDate, upTo });
  out = { ok: true, billId: bill.billId, items: bill.items.map((i) => i.id) };
} catch (e) {
  out = e instanceof HttpError ? { ok: false, status: e.status, message: e.message } : { ok: false, status: 500, message: String(e) };
}
process.stdout.write(`${JSON.stringify(out)}\n`);
await database.close();
process.exit(0);
