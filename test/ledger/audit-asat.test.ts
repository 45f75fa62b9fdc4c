/**
 * Audit regressions: money is never taken off a bill, nor out of a receipt's credit, on a day
 * that bill or credit did not hold it (as the reports read the books at every date), on both
 * databases: a receipt reversed before its credit came back from a bill it paid; a receipt,
 * a credit allocation or a write-off dated before the day a bill's balance rose (its
 * time-sensitive discount reversed later).
 * A bill reverted with a piece in a closed month and approved again is never counted twice.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import type { LedgerSetup } from './support.ts';
import { assertBooksAsAt, assertLedgerInvariants, ctx, oneHourBill, refused, setup } from './support.ts';

function everyDay(from: string, to: string): string[] {
  const out: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += 86_400_000) out.push(new Date(t).toISOString().slice(0, 10));
  return out;
}

/** One bill of 300.00 dated 28 February, optionally with a discount (basis points) valid until 31 March. */
const oneBill = (s: LedgerSetup, discountBp?: number) => oneHourBill(s, discountBp ? { bp: discountBp, validUntil: '2026-03-31' } : undefined);

const ledgerBill = (s: LedgerSetup, id: string) => s.rt.database.db.selectFrom('ledger_bill').select(['total_minor', 'paid_minor', 'written_off_minor', 'discount_status']).where('id', '=', id).executeTakeFirstOrThrow();
const credit = async (s: LedgerSetup, id: string) => Number((await s.rt.database.db.selectFrom('ledger_receipt').select('unallocated_minor').where('id', '=', id).executeTakeFirstOrThrow()).unallocated_minor);

eachDialect('audit: a receipt is not reversed before its credit came back from the bill it paid (unallocated receipts never below zero at a date)', async (db) => {
  const s = await setup(db);
  const { t, bill } = await oneBill(s);
  const r = await s.ledger.recordReceipt(ctx, { clientId: t.client.id, receivedOn: '2026-03-02', amountMinor: 10_000, order: 'on_account' });
  await s.ledger.allocateCredit(ctx, { receiptId: r.receipt.id, billId: bill.billId, order: 'this_bill_only', on: '2026-03-02' });
  s.clock.set('2026-03-20T09:00:00Z');
  const alloc = await db.db.selectFrom('ledger_allocation').select('id').where('bill_id', '=', bill.billId).executeTakeFirstOrThrow();
  await s.ledger.releaseAllocation(ctx, String(alloc.id)); // the credit comes back on 20 March
  const journalsBefore = (await db.db.selectFrom('ledger_journal').select('id').execute()).length;
  // Dishonoured, dated 10 March: the 100.00 was paying the bill until the 20th, so it was not there to take out.
  const e = await refused(s.ledger.reverseReceipt(ctx, { receiptId: r.receipt.id, on: '2026-03-10', reason: 'Cheque dishonoured' }), 422);
  assert.match(e.fields.on ?? '', /on or after 2026-03-20/);
  assert.equal((await db.db.selectFrom('ledger_journal').select('id').execute()).length, journalsBefore, 'the refusal posted nothing');
  assert.equal(await credit(s, r.receipt.id), 10_000);
  await s.ledger.reverseReceipt(ctx, { receiptId: r.receipt.id, on: '2026-03-20', reason: 'Cheque dishonoured' });
  await assertLedgerInvariants(db.db, { billing: true });
  await assertBooksAsAt(db.db, everyDay('2026-02-27', '2026-03-21'));
});

eachDialect('audit: a receipt or a credit allocation dated before a bill\'s discount was reversed pays only what the bill owed that day (never overpaid at a date)', async (db) => {
  const s = await setup(db);
  const { t, bill } = await oneBill(s, 1_000); // 300.00 less 10%: 270.00 until 31 March
  s.clock.set('2026-03-10T09:00:00Z');
  await s.ledger.decideDiscount(ctx, { billId: bill.billId, decision: 'reverse', on: '2026-03-10' }); // 300.00 owed from 10 March
  // 300.00 received on 2 March against the bill: it owed 270.00 then, so 270.00 pays it and 30.00 is held as credit.
  const r = await s.ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-03-02', amountMinor: 30_000, order: 'this_bill_only' });
  assert.deepEqual(r.allocations, [{ billId: bill.billId, amountMinor: 27_000 }]);
  assert.equal(r.receipt.unallocatedMinor, 3_000);
  assert.match(r.warning ?? '', /owed \$270\.00 on 2026-03-02/);
  // The 30.00 credit cannot pay the bill on 2 March either (it did not owe it then); from 10 March it can.
  const e = await refused(s.ledger.allocateCredit(ctx, { receiptId: r.receipt.id, billId: bill.billId, order: 'this_bill_only', on: '2026-03-05' }), 422);
  assert.match(e.fields.on ?? '', /on or after 2026-03-10/);
  assert.equal(await credit(s, r.receipt.id), 3_000, 'the refusal allocated nothing');
  // A credit on account from 2 March, allocated on 2 March, likewise takes only what the bill owed (nothing more here).
  const other = await s.ledger.recordReceipt(ctx, { clientId: t.client.id, receivedOn: '2026-03-02', amountMinor: 5_000, order: 'on_account' });
  await refused(s.ledger.allocateCredit(ctx, { receiptId: other.receipt.id, order: 'oldest_first', on: '2026-03-02' }), 422);
  await s.ledger.allocateCredit(ctx, { receiptId: r.receipt.id, billId: bill.billId, order: 'this_bill_only', on: '2026-03-10' });
  assert.deepEqual(await ledgerBill(s, bill.billId), { total_minor: 27_000, paid_minor: 30_000, written_off_minor: 0, discount_status: 'reversed' });
  await assertLedgerInvariants(db.db, { billing: true });
  await assertBooksAsAt(db.db, everyDay('2026-02-27', '2026-03-21'));
});

eachDialect('audit: a write-off dated before a bill\'s discount was reversed is refused, naming the day from which it can be written off', async (db) => {
  const s = await setup(db);
  const { bill } = await oneBill(s, 100); // 300.00 less 1%: 297.00
  await s.ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-03-02', amountMinor: 29_700 }); // paid in full in time
  s.clock.set('2026-03-10T09:00:00Z');
  await s.ledger.decideDiscount(ctx, { billId: bill.billId, decision: 'reverse', on: '2026-03-10' }); // 3.00 owed from 10 March
  const e = await refused(s.ledger.writeOff(ctx, { billId: bill.billId, on: '2026-03-05' }), 422);
  assert.match(e.fields.on ?? '', /owed only \$0\.00 on 2026-03-05.*on or after 2026-03-10/);
  assert.equal(Number((await ledgerBill(s, bill.billId)).written_off_minor), 0, 'the refusal wrote nothing off');
  // Writing off small balances on 5 March leaves it alone; on 10 March it takes the 3.00.
  assert.equal((await s.ledger.writeOffSmallBalances(ctx, { maxMinor: 500, on: '2026-03-05', confirmOutsidePeriod: true })).written.length, 0);
  assert.equal((await s.ledger.writeOffSmallBalances(ctx, { maxMinor: 500, on: '2026-03-10' })).written.length, 1);
  assert.equal(Number((await ledgerBill(s, bill.billId)).written_off_minor), 300);
  await assertLedgerInvariants(db.db, { billing: true });
  await assertBooksAsAt(db.db, everyDay('2026-02-27', '2026-03-21'));
});

eachDialect('audit: a bill reverted with a piece in a closed month and approved again is never counted twice: the new posting counts from the day the old was undone', async (db) => {
  const s = await setup(db);
  const { bill } = await oneBill(s, 1_000); // 270.00 if paid by 31 March (February open throughout)
  s.clock.set('2026-03-10T09:00:00Z');
  await s.ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-03-10', amountMinor: 26_950 });
  await s.ledger.writeOff(ctx, { billId: bill.billId, on: '2026-03-10' });
  // April: March closed; the bill is reverted (its March pieces can only be undone on 1 April, so the whole bill is) and approved again.
  s.clock.set('2026-04-05T09:00:00Z');
  await s.ledger.setCurrentPeriod(ctx, '2026-04');
  await s.ledger.setPeriod(ctx, { period: '2026-03', status: 'closed' });
  const debtorsAt = async (to: string) => (await s.reports.run('trial-balance', { to })).rows.find((r) => r.code === '1100')?.debit ?? 0;
  const before = [await debtorsAt('2026-02-28'), await debtorsAt('2026-03-31')];
  assert.deepEqual(before, [27_000, 0]);
  await s.billing.revert(ctx, bill.billId);
  await s.drain();
  await s.billing.approve(ctx, bill.billId);
  await s.drain();
  // Before the fix: the new billing journal counted from 28 February beside the old one (undone only from 1 April): 540.00 owed then.
  assert.deepEqual([await debtorsAt('2026-02-28'), await debtorsAt('2026-03-31')], before, 'February and closed March read as before');
  const bj = await db.db.selectFrom('ledger_journal').select(['date', 'period', 'note']).where('bill_id', '=', bill.billId).where('prefix', '=', 'BJ').where('reverses_journal_id', 'is', null).orderBy('number', 'desc').executeTakeFirstOrThrow();
  assert.deepEqual([bj.date, bj.period, bj.note], ['2026-02-28', '2026-04', 'Dated 2026-02-28: counts from 2026-04-01, when the bill\'s previous posting was undone']);
  // The receipt's money pays the bill again (from 1 April), the write-off is not re-applied: 0.50 owing.
  assert.deepEqual(await ledgerBill(s, bill.billId), { total_minor: 27_000, paid_minor: 26_950, written_off_minor: 0, discount_status: 'pending' });
  await assertLedgerInvariants(db.db, { billing: true });
  await assertBooksAsAt(db.db, everyDay('2026-02-27', '2026-04-06'));
});
