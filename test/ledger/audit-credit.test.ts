/**
 * Audit regressions on allocating a receipt's credit, on both databases: credit applied after
 * a time-sensitive discount expired reverses the discount first and then pays the full amount,
 * as a receipt on that day would (not the discounted amount, leaving bill and credit both open).
 * A bill settled by its discount date with a small balance written off has the discount honoured.
 * Releasing an allocation by hand updates the bill balance event's latest receipt.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { assertBooksAsAt, assertLedgerInvariants, ctx, oneHourBill, setup } from './support.ts';

eachDialect('audit: credit allocated after a discount expired pays the undiscounted amount in full', async (db) => {
  const s = await setup(db);
  // 300.00 less 10% if paid by 5 March.
  const { t, bill } = await oneHourBill(s, { bp: 1_000, validUntil: '2026-03-05' });
  s.clock.set('2026-03-10T09:00:00Z');
  const r = await s.ledger.recordReceipt(ctx, { clientId: t.client.id, receivedOn: '2026-03-10', amountMinor: 30_000, order: 'on_account' });
  await s.ledger.allocateCredit(ctx, { receiptId: r.receipt.id, billId: bill.billId, order: 'this_bill_only' });
  const b = await db.db.selectFrom('ledger_bill').select(['paid_minor', 'discount_status', 'discount_reversed_minor']).where('id', '=', bill.billId).executeTakeFirstOrThrow();
  // Before the fix: paid 270.00, the discount reversed (300.00 owed), 30.00 owing and 30.00 still held as credit.
  assert.deepEqual([Number(b.paid_minor), b.discount_status, Number(b.discount_reversed_minor)], [30_000, 'reversed', 3_000]);
  const receipt = await db.db.selectFrom('ledger_receipt').select('unallocated_minor').where('id', '=', r.receipt.id).executeTakeFirstOrThrow();
  assert.equal(Number(receipt.unallocated_minor), 0);
  await assertLedgerInvariants(db.db, { billing: true });
  await assertBooksAsAt(db.db, ['2026-02-28', '2026-03-05', '2026-03-09', '2026-03-10', '2026-03-11']);
});

eachDialect('audit: a bill settled by its discount date (paid, the small rest written off) has its discount honoured, not left pending to be counted back', async (db) => {
  const s = await setup(db);
  // 300.00 less 1% (297.00) if paid by 31 March.
  const { t, bill } = await oneHourBill(s, { bp: 100, validUntil: '2026-03-31' });
  s.clock.set('2026-03-10T09:00:00Z');
  const r = await s.ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-03-10', amountMinor: 29_650, order: 'this_bill_only' }); // less a 0.50 bank fee
  await s.ledger.writeOff(ctx, { billId: bill.billId, on: '2026-03-10', reason: 'Bank charge' });
  const status = async () => (await db.db.selectFrom('ledger_bill').select('discount_status').where('id', '=', bill.billId).executeTakeFirstOrThrow()).discount_status;
  assert.equal(await status(), 'honoured');
  // After the date, the statement owes nothing and forecasts nothing back (before the fix: a 3.00 forecast, the discount still pending).
  s.clock.set('2026-04-05T09:00:00Z');
  const st = await s.reports.run('debtor-statement', { to: '2026-04-05', clientId: t.client.id });
  assert.equal(st.totals!.outstanding, 0);
  assert.equal(st.totals!.forecast, undefined, JSON.stringify(st.totals));
  // The receipt dishonoured: the bill is unpaid again, and the discount undecided again.
  await s.ledger.reverseReceipt(ctx, { receiptId: r.receipt.id, on: '2026-04-05', reason: 'Dishonoured', confirmOutsidePeriod: true });
  assert.equal(await status(), 'pending');
  await assertLedgerInvariants(db.db, { billing: true });
});

eachDialect('audit: releasing an allocation by hand: the bill\'s balance event names the latest receipt still paying it (none: null), not the one taken off', async (db) => {
  const s = await setup(db);
  const { bill } = await oneHourBill(s);
  const last = async () => {
    const rows = await db.db.selectFrom('outbox').select(['payload']).where('type', '=', 'ledger.bill_balance_changed').orderBy('seq', 'desc').execute() as { payload: string }[];
    const p = rows.map((r) => JSON.parse(r.payload) as { billId: string; paidMinor: number; lastReceiptOn: string | null }).find((x) => x.billId === bill.billId)!;
    return [p.paidMinor, p.lastReceiptOn];
  };
  await s.ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-03-02', amountMinor: 10_000, order: 'this_bill_only' });
  s.clock.set('2026-03-05T09:00:00Z');
  await s.ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-03-05', amountMinor: 5_000, order: 'this_bill_only' });
  assert.deepEqual(await last(), [15_000, '2026-03-05']);
  const allocs = await db.db.selectFrom('ledger_allocation as a').innerJoin('ledger_receipt as r', 'r.id', 'a.receipt_id').select(['a.id', 'r.received_on']).where('a.bill_id', '=', bill.billId).orderBy('r.received_on').execute();
  await s.ledger.releaseAllocation(ctx, String(allocs[1]!.id)); // the 5 March receipt's
  assert.deepEqual(await last(), [10_000, '2026-03-02']);
  await s.ledger.releaseAllocation(ctx, String(allocs[0]!.id));
  assert.deepEqual(await last(), [0, null], 'nothing pays the bill now (before the fix: 2026-03-05)');
  await assertLedgerInvariants(db.db, { billing: true });
});

eachDialect('a statement as at a day a discount had expired undecided forecasts it back, whatever was decided later (review 62 F5)', async (db) => {
  const s = await setup(db);
  // 300.00 less 10% (270.00) if paid by 5 March; nothing paid by then.
  const { t, bill } = await oneHourBill(s, { bp: 1_000, validUntil: '2026-03-05' });
  const forecast = async (to: string) => (await s.reports.run('debtor-statement', { to, clientId: t.client.id })).totals!.forecast;
  s.clock.set('2026-03-08T09:00:00Z');
  assert.equal(await forecast('2026-03-07'), 30_000, 'expired undecided: the undiscounted 300.00 forecast');
  assert.equal(await forecast('2026-03-05'), undefined, 'not expired yet');
  // 10 March: honoured by a person after all. 7 March's statement is as it was; from the 10th, nothing forecast back.
  s.clock.set('2026-03-10T09:00:00Z');
  await s.ledger.decideDiscount(ctx, { billId: bill.billId, decision: 'honour', on: '2026-03-10' });
  assert.equal(await forecast('2026-03-07'), 30_000, 'decided later: 7 March unchanged');
  assert.equal(await forecast('2026-03-10'), undefined);
  const row = await db.db.selectFrom('ledger_bill').select(['discount_status', 'discount_decided_on']).where('id', '=', bill.billId).executeTakeFirstOrThrow();
  assert.deepEqual([row.discount_status, row.discount_decided_on], ['honoured', '2026-03-10']);
  await assertLedgerInvariants(db.db, { billing: true });
});
