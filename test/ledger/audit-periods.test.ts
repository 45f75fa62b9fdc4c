/**
 * Audit regressions on accounting periods, on both databases: a period is not closed under a
 * posting in flight (a receipt that found the month open and has not yet committed), so no
 * journal ever lands in a month that was already closed when it was written.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { eachDialect } from '../support/db.ts';
import { assertLedgerInvariants, ctx, oneHourBill, setup } from './support.ts';

eachDialect('audit: closing a month waits for a posting in flight into it; the journal is never written into a month already closed', async (db) => {
  const s = await setup(db);
  const { bill } = await oneHourBill(s);
  // Another transaction holds the receipts journal counter for a moment, so the receipt below stops after it has found
  // February open (and before it commits), the way a slow posting would.
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  let held!: () => void;
  const holding = new Promise<void>((r) => { held = r; });
  const holder = db.db.transaction().execute(async (trx) => {
    await sql`insert into ledger_sequence (name, last_value) values ('journal:RJ', 0) on conflict (name) do update set last_value = ledger_sequence.last_value`.execute(trx);
    held();
    await gate;
    throw new Error('rolled back');
  }).catch(() => undefined);
  await holding;
  const receipt = s.ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-02-28', amountMinor: 10_000, order: 'this_bill_only', confirmOutsidePeriod: true });
  receipt.catch(() => undefined);
  await sleep(300);
  const close = s.ledger.setPeriod(ctx, { period: '2026-02', status: 'closed' });
  close.catch(() => undefined);
  const closedMeanwhile = await Promise.race([close.then(() => true, () => true), sleep(700).then(() => false)]);
  release();
  await holder;
  const [r, c] = await Promise.allSettled([receipt, close]);
  assert.equal(c.status, 'fulfilled');
  assert.equal(r.status, 'fulfilled', 'the receipt found February open and posts there');
  // Before the fix (Postgres): the close committed while the receipt was in flight, and the receipt's journal then went into closed February.
  assert.equal(closedMeanwhile, false, 'the close waited for the posting in flight');
  const rj = await db.db.selectFrom('ledger_journal').select(['period']).where('prefix', '=', 'RJ').executeTakeFirstOrThrow();
  assert.equal(rj.period, '2026-02');
  // And February, closed, takes no more.
  await assert.rejects(s.ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-02-28', amountMinor: 100, confirmOutsidePeriod: true }), /2026-02 is closed/);
  await assertLedgerInvariants(db.db, { billing: true });
});
