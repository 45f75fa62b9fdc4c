/**
 * The ledger end to end on both databases, bills made with the REAL matters and billing
 * commands and delivered by the real relay: the billing journal of an approved bill, part
 * payments and overpayments, receipt reversal, write-offs, re-drafting (allocations released
 * and given back when the bill is posted again), time-sensitive discounts (seed 003's three
 * ways), periods (seed 004), redelivered events, and the balance event billing listens to.
 * Expected journals are written out literally.
 */
import assert from 'node:assert/strict';
import { HttpError } from '../../src/shared/web/errors.ts';
import { eachDialect } from '../support/db.ts';
import { assertBooksAsAt, assertLedgerInvariants, balanceOf, ctx, firm, journals, refused, setup, work } from './support.ts';
import type { LedgerSetup } from './support.ts';

async function billFor(s: LedgerSetup, matterId: string, opts: { validUntil?: string; discountBp?: number; invoiceDate?: string } = {}) {
  const draft = await s.billing.createDraft(ctx, {
    matterId, invoiceDate: opts.invoiceDate ?? '2026-02-28', upTo: '2026-02-28',
    request: opts.discountBp ? { discount: { kind: 'percentage', percentBasisPoints: opts.discountBp, amountMinor: 0, validUntil: opts.validUntil ?? null } } : {},
  });
  const approved = await s.billing.approve(ctx, draft.billId);
  await s.drain();
  return approved;
}

async function lastBalance(s: LedgerSetup, billId: string) {
  const rows = await s.rt.database.db.selectFrom('outbox').select(['payload']).where('type', '=', 'ledger.bill_balance_changed').orderBy('seq', 'desc').execute() as { payload: string }[];
  return rows.map((r) => JSON.parse(r.payload)).find((p) => p.billId === billId);
}

eachDialect('an approved bill posts its billing journal; receipts part-pay, overpay, and reverse; all balanced', async (db) => {
  const s = await setup(db);
  const t = await firm(s.cmds);
  await work(s.cmds, t.matter.id, t);
  await s.drain();
  const bill = await billFor(s, t.matter.id);
  // Partner 2 h x 300.00 = 600.00, associate 1.5 h x 200.00 = 300.00 (fees exempt); filing fee 350.00 exempt;
  // copies 100 x 0.15 = 15.00 at the bill's tax. Pro-rata allocation: partner 600.00, associate 300.00.
  assert.equal(bill.totals.feesMinor, 90_000);
  assert.equal(bill.totals.disbursementsMinor, 36_500);
  const tax = bill.totals.taxMinor;
  const byTk = Object.fromEntries(bill.allocations.map((a) => [a.timekeeperId, a.amountMinor]));
  assert.deepEqual(byTk, { [t.partner.id]: 60_000, [t.associate.id]: 30_000 });
  const id = bill.billId;
  // Lines in a fixed order to compare (the journal follows the bill's allocation order).
  const bjs = (await journals(db.db, { prefix: 'BJ' })).map((j) => ({ ...j, lines: [...j.lines].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : b[1] - a[1])) }));
  assert.deepEqual(bjs, [{
    number: 'BJ000001', date: '2026-02-28', period: '2026-02', note: 'Outside the current period 2026-03',
    lines: [
      ['1100', 126_500 + tax, 0, id],
      ...(tax ? [['2200', 0, tax, id] as [string, number, number, string]] : []),
      ['4000.001', 0, 60_000, id],
      ['4000.002', 0, 30_000, id],
      ['4300', 0, 36_500, id],
    ],
  }]);
  const total = bill.totals.totalMinor;
  assert.equal(total, 126_500 + tax);
  await assertLedgerInvariants(db.db, { billing: true });
  let bal = await lastBalance(s, id);
  assert.deepEqual({ total: bal.totalMinor, paid: bal.paidMinor, out: bal.outstandingMinor, last: bal.lastReceiptOn, no: bal.billNumber }, { total, paid: 0, out: total, last: null, no: '1.1.1' });

  // A part payment of 500.00 against the bill.
  const r1 = await s.ledger.recordReceipt(ctx, { billId: id, receivedOn: '2026-03-05', amountMinor: 50_000 });
  assert.deepEqual(r1.allocations, [{ billId: id, amountMinor: 50_000 }]);
  assert.equal(r1.receipt.number, 'R000001');
  assert.deepEqual((await journals(db.db, { prefix: 'RJ' })).map((j) => j.lines), [[['1000', 50_000, 0, null], ['1100', 0, 50_000, id]]]);
  bal = await lastBalance(s, id);
  assert.deepEqual([bal.paidMinor, bal.outstandingMinor, bal.lastReceiptOn], [50_000, total - 50_000, '2026-03-05']);
  // The same receipt id again records nothing new (an idempotency key).
  const again = await s.ledger.recordReceipt(ctx, { receiptId: r1.receipt.id, billId: id, receivedOn: '2026-03-05', amountMinor: 50_000 });
  assert.equal(again.receipt.id, r1.receipt.id);
  assert.equal((await journals(db.db, { prefix: 'RJ' })).length, 1);

  // Overpayment: the rest plus 100.00; the 100.00 is held as unallocated credit.
  const rest = total - 50_000;
  const r2 = await s.ledger.recordReceipt(ctx, { billId: id, receivedOn: '2026-03-06', amountMinor: rest + 10_000 });
  assert.deepEqual(r2.allocations, [{ billId: id, amountMinor: rest }]);
  assert.equal(r2.receipt.unallocatedMinor, 10_000);
  assert.deepEqual((await journals(db.db, { prefix: 'RJ' }))[1]!.lines, [['1000', rest + 10_000, 0, null], ['1100', 0, rest, id], ['2100', 0, 10_000, null]]);
  bal = await lastBalance(s, id);
  assert.equal(bal.outstandingMinor, 0);
  await assertLedgerInvariants(db.db, { billing: true });

  // Reverse the first receipt (dishonoured): its 500.00 comes off the bill and out of the bank.
  await s.ledger.reverseReceipt(ctx, { receiptId: r1.receipt.id, on: '2026-03-07', reason: 'Cheque dishonoured' });
  assert.deepEqual((await journals(db.db, { prefix: 'RJ' }))[2]!.lines, [['1000', 0, 50_000, null], ['1100', 50_000, 0, id]]);
  bal = await lastBalance(s, id);
  assert.deepEqual([bal.paidMinor, bal.outstandingMinor, bal.lastReceiptOn], [rest, 50_000, '2026-03-06']);
  await refused(s.ledger.reverseReceipt(ctx, { receiptId: r1.receipt.id, reason: 'again' }), 409);
  // The credit of the second receipt pays 100.00 of it.
  await s.ledger.allocateCredit(ctx, { receiptId: r2.receipt.id, billId: id, on: '2026-03-08' });
  assert.deepEqual((await journals(db.db, { prefix: 'AJ' })).map((j) => j.lines), [[['2100', 10_000, 0, null], ['1100', 0, 10_000, id]]]);
  assert.equal((await lastBalance(s, id)).outstandingMinor, 40_000);
  // Bad input changes nothing and names the field.
  const e = await refused(s.ledger.recordReceipt(ctx, { billId: id, receivedOn: '2026-02-30', amountMinor: -5 }), 422);
  assert.deepEqual(Object.keys(e.fields).sort(), ['amount', 'receivedOn']);
  await assertLedgerInvariants(db.db, { billing: true });
});

eachDialect('write-offs of small balances; re-drafting releases receipts and posting again re-allocates them', async (db) => {
  const s = await setup(db);
  const t = await firm(s.cmds);
  await work(s.cmds, t.matter.id, t);
  await s.drain();
  const bill = await billFor(s, t.matter.id);
  const id = bill.billId;
  const total = bill.totals.totalMinor;
  // Paid all but 3.00, which is written off.
  const r = await s.ledger.recordReceipt(ctx, { clientId: t.client.id, receivedOn: '2026-03-10', amountMinor: total - 300, order: 'oldest_first' });
  assert.deepEqual(r.allocations, [{ billId: id, amountMinor: total - 300 }]);
  await refused(s.ledger.writeOff(ctx, { billId: id, amountMinor: 301, on: '2026-03-11' }), 409);
  await s.ledger.setWriteOffLimit(ctx, 200);
  await refused(s.ledger.writeOff(ctx, { billId: id, on: '2026-03-11' }), 409); // 3.00 is over a 2.00 limit
  await s.ledger.setWriteOffLimit(ctx, 5_000);
  await s.ledger.writeOff(ctx, { billId: id, on: '2026-03-11', reason: 'Bank charges' });
  assert.deepEqual((await journals(db.db, { prefix: 'WJ' })).map((j) => j.lines), [[['5200', 300, 0, null], ['1100', 0, 300, id]]]);
  assert.deepEqual(await lastBalance(s, id).then((b) => [b.writtenOffMinor, b.outstandingMinor]), [300, 0]);
  await assertLedgerInvariants(db.db, { billing: true });

  // Finalise, then re-draft: everything on the bill is undone; the receipt's money becomes credit.
  await s.billing.finalise(ctx, id);
  await s.drain();
  s.clock.set('2026-03-12T09:00:00Z');
  await s.billing.redraft(ctx, id);
  await s.drain();
  const after = await lastBalance(s, id);
  assert.deepEqual([after.status, after.totalMinor, after.paidMinor, after.outstandingMinor], ['reversed', 0, 0, 0]);
  const receipt = await db.db.selectFrom('ledger_receipt').select('unallocated_minor').where('id', '=', r.receipt.id).executeTakeFirstOrThrow();
  assert.equal(Number(receipt.unallocated_minor), total - 300);
  assert.equal(await balanceOf(db.db, '1100'), 0);
  // The undoing, dated as what it undoes (revert un-posts): the billing journal's reversal on
  // its date, the write-off's on its date, the release (AJ) on the day the money was allocated.
  const bj = await journals(db.db, { prefix: 'BJ' });
  assert.equal(bj.length, 2);
  assert.deepEqual(bj[1]!.lines, bj[0]!.lines.map(([a, d, c, b]) => [a, c, d, b]), 'the exact reversal');
  assert.equal(bj[1]!.date, bj[0]!.date);
  assert.deepEqual((await journals(db.db, { prefix: 'WJ' })).map((j) => j.date), ['2026-03-11', '2026-03-11']);
  assert.deepEqual((await journals(db.db, { prefix: 'AJ' })).map((j) => j.date), ['2026-03-10']);
  await assertLedgerInvariants(db.db, { billing: true });
  const dates = [bj[0]!.date, '2026-03-09', '2026-03-10', '2026-03-11', '2026-03-12', '2026-03-13'];
  await assertBooksAsAt(db.db, dates);

  // Approved again: the released money goes back to it from the receipt's credit, dated when
  // it was first allocated (not before the money came in), so every date counts the bill once.
  await s.billing.approve(ctx, id);
  await s.drain();
  const back = await lastBalance(s, id);
  assert.deepEqual([back.status, back.paidMinor, back.outstandingMinor], ['open', total - 300, 300]);
  assert.deepEqual((await journals(db.db, { prefix: 'AJ' })).map((j) => j.date), ['2026-03-10', '2026-03-10']);
  await assertLedgerInvariants(db.db, { billing: true });
  await assertBooksAsAt(db.db, dates);

  // A second receipt pays the rest (3.00 of its 500.00; 497.00 stays credit). Reverted and
  // approved twice more, the second time with 800.00 more on the bill: each time exactly what
  // the last reversal released comes back, never more (the receipt's other credit is the
  // client's, not to be taken without an instruction).
  const more = await s.ledger.recordReceipt(ctx, { billId: id, receivedOn: '2026-03-12', amountMinor: 50_000, order: 'this_bill_only' });
  assert.deepEqual(more.allocations, [{ billId: id, amountMinor: 300 }]);
  for (const [day, extraMinor] of [['2026-03-13', 0], ['2026-03-14', 80_000]] as const) {
    s.clock.set(`${day}T09:00:00Z`);
    await s.billing.revert(ctx, id);
    await s.drain();
    if (extraMinor > 0) {
      await s.billing.updateDraft(ctx, id, { request: { adHoc: [{ kind: 'disbursement', description: 'Courier', amountMinor: extraMinor, taxCode: null, timekeeperId: null }] } });
    }
    await s.billing.approve(ctx, id);
    await s.drain();
    const again = await lastBalance(s, id);
    assert.deepEqual([again.totalMinor, again.paidMinor, again.outstandingMinor], [total + extraMinor, total, extraMinor], day);
    const credit = await db.db.selectFrom('ledger_receipt').select('unallocated_minor').where('id', '=', more.receipt.id).executeTakeFirstOrThrow();
    assert.equal(Number(credit.unallocated_minor), 49_700, `${day}: the second receipt's other credit is untouched`);
    await assertLedgerInvariants(db.db, { billing: true });
    await assertBooksAsAt(db.db, [...dates, day]);
  }
});

eachDialect('time-sensitive discounts: honoured when paid in time, reversed on a late receipt, reversed or honoured by decision', async (db) => {
  const s = await setup(db);
  const t = await firm(s.cmds);
  const m2 = await s.cmds.openMatter(ctx, { clientId: t.client.id, name: 'Second', responsibleTimekeeperId: t.partner.id, openedOn: '2025-06-01' });
  const m3 = await s.cmds.openMatter(ctx, { clientId: t.client.id, name: 'Third', responsibleTimekeeperId: t.partner.id, openedOn: '2025-06-01' });
  for (const m of [t.matter.id, m2.id, m3.id]) await s.cmds.recordTimeEntry(ctx, { matterId: m, timekeeperId: t.partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice' });
  await s.drain();
  // Each bill: 300.00 of fees, 10% off if paid by 14 March: 270.00.
  const b1 = await billFor(s, t.matter.id, { discountBp: 1_000, validUntil: '2026-03-14' });
  const b2 = await billFor(s, m2.id, { discountBp: 1_000, validUntil: '2026-03-14' });
  const b3 = await billFor(s, m3.id, { discountBp: 1_000, validUntil: '2026-03-14' });
  assert.equal(b1.totals.totalMinor, 27_000);
  assert.deepEqual((await journals(db.db, { billId: b1.billId, prefix: 'BJ' }))[0]!.lines, [
    ['1100', 30_000, 0, b1.billId], ['4000.001', 0, 30_000, b1.billId], ['5100', 3_000, 0, b1.billId], ['1100', 0, 3_000, b1.billId],
  ]);
  // Way 1, in time: 270.00 on 14 March settles the bill and the discount stands.
  await s.ledger.recordReceipt(ctx, { billId: b1.billId, receivedOn: '2026-03-14', amountMinor: 27_000, order: 'this_bill_only' });
  let bal = await lastBalance(s, b1.billId);
  assert.deepEqual([bal.outstandingMinor, bal.discountStatus, bal.discountTakenMinor], [0, 'honoured', 3_000]);
  // Way 1, late: a receipt on 20 March reverses the expired discount first (DJ), then pays.
  const late = await s.ledger.recordReceipt(ctx, { billId: b2.billId, receivedOn: '2026-03-20', amountMinor: 27_000, order: 'this_bill_only' });
  assert.deepEqual(late.discountsReversed, [b2.billId]);
  assert.deepEqual((await journals(db.db, { billId: b2.billId, prefix: 'DJ' })).map((j) => j.lines), [[['1100', 3_000, 0, b2.billId], ['5100', 0, 3_000, b2.billId]]]);
  bal = await lastBalance(s, b2.billId);
  assert.deepEqual([bal.totalMinor, bal.paidMinor, bal.outstandingMinor, bal.discountStatus, bal.discountTakenMinor], [30_000, 27_000, 3_000, 'reversed', 0]);
  // Way 2: the bill's own "Reverse discount" action (and it cannot be done twice).
  await s.ledger.decideDiscount(ctx, { billId: b3.billId, decision: 'reverse', on: '2026-03-16' });
  await refused(s.ledger.decideDiscount(ctx, { billId: b3.billId, decision: 'reverse', on: '2026-03-16' }), 409);
  assert.equal((await lastBalance(s, b3.billId)).outstandingMinor, 30_000);
  // A late receipt told to honour the discount keeps it.
  const m4 = await s.cmds.openMatter(ctx, { clientId: t.client.id, name: 'Fourth', responsibleTimekeeperId: t.partner.id, openedOn: '2025-06-01' });
  await s.cmds.recordTimeEntry(ctx, { matterId: m4.id, timekeeperId: t.partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice' });
  await s.drain();
  const b4 = await billFor(s, m4.id, { discountBp: 1_000, validUntil: '2026-03-14' });
  const honoured = await s.ledger.recordReceipt(ctx, { billId: b4.billId, receivedOn: '2026-03-25', amountMinor: 27_000, order: 'this_bill_only', discount: 'honour' });
  assert.deepEqual(honoured.discountsReversed, []);
  assert.deepEqual(await lastBalance(s, b4.billId).then((b) => [b.outstandingMinor, b.discountStatus]), [0, 'honoured']);
  await assertLedgerInvariants(db.db, { billing: true });
});

eachDialect('a discount reversed stays reversed when the bill is reverted and approved again; a dishonoured receipt puts an honoured discount back to pending; no date before the money', async (db) => {
  const s = await setup(db);
  const t = await firm(s.cmds);
  const m2 = await s.cmds.openMatter(ctx, { clientId: t.client.id, name: 'Second', responsibleTimekeeperId: t.partner.id, openedOn: '2025-06-01' });
  for (const m of [t.matter.id, m2.id]) await s.cmds.recordTimeEntry(ctx, { matterId: m, timekeeperId: t.partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice' });
  await s.drain();
  // 300.00 of fees, 10% off if paid by 14 March.
  const late = await billFor(s, t.matter.id, { discountBp: 1_000, validUntil: '2026-03-14' });
  const r = await s.ledger.recordReceipt(ctx, { billId: late.billId, receivedOn: '2026-03-20', amountMinor: 30_000, order: 'this_bill_only' });
  assert.deepEqual(r.discountsReversed, [late.billId]);
  s.clock.set('2026-03-21T09:00:00Z');
  await s.billing.revert(ctx, late.billId);
  await s.drain();
  await assertBooksAsAt(db.db, ['2026-02-28', '2026-03-14', '2026-03-20', '2026-03-21']);
  await s.billing.approve(ctx, late.billId);
  await s.drain();
  // As before the revert: the discount reversed (again, on the day it was), the full 300.00 paid, nothing left over.
  let bal = await lastBalance(s, late.billId);
  assert.deepEqual([bal.totalMinor, bal.paidMinor, bal.outstandingMinor, bal.discountStatus], [30_000, 30_000, 0, 'reversed']);
  const receipt = await db.db.selectFrom('ledger_receipt').select('unallocated_minor').where('id', '=', r.receipt.id).executeTakeFirstOrThrow();
  assert.equal(Number(receipt.unallocated_minor), 0, 'no discount refunded to the client\'s credit');
  assert.deepEqual((await journals(db.db, { billId: late.billId, prefix: 'DJ' })).map((j) => j.date), ['2026-03-20', '2026-03-20', '2026-03-20']);
  await assertLedgerInvariants(db.db, { billing: true });
  await assertBooksAsAt(db.db, ['2026-02-28', '2026-03-14', '2026-03-20', '2026-03-21']);

  // Paid in time, honoured; the cheque is dishonoured: the bill is unpaid and its discount undecided again,
  // so a receipt after the date reverses it (not settled at the discounted total).
  const b2 = await billFor(s, m2.id, { discountBp: 1_000, validUntil: '2026-03-14' });
  const paid = await s.ledger.recordReceipt(ctx, { billId: b2.billId, receivedOn: '2026-03-10', amountMinor: 27_000, order: 'this_bill_only' });
  assert.equal((await lastBalance(s, b2.billId)).discountStatus, 'honoured');
  // Dates before the money came in are refused, naming the field; nothing changes.
  await refused(s.ledger.reverseReceipt(ctx, { receiptId: paid.receipt.id, on: '2026-03-09', reason: 'Cheque dishonoured' }), 422);
  const alloc = await db.db.selectFrom('ledger_allocation').select('id').where('receipt_id', '=', paid.receipt.id).executeTakeFirstOrThrow();
  await refused(s.ledger.releaseAllocation(ctx, String(alloc.id), '2026-03-09'), 422);
  await s.ledger.reverseReceipt(ctx, { receiptId: paid.receipt.id, on: '2026-03-16', reason: 'Cheque dishonoured' });
  bal = await lastBalance(s, b2.billId);
  assert.deepEqual([bal.outstandingMinor, bal.discountStatus], [27_000, 'pending']);
  const again = await s.ledger.recordReceipt(ctx, { billId: b2.billId, receivedOn: '2026-03-28', amountMinor: 30_000, order: 'this_bill_only' });
  assert.deepEqual(again.discountsReversed, [b2.billId]);
  bal = await lastBalance(s, b2.billId);
  assert.deepEqual([bal.totalMinor, bal.paidMinor, bal.outstandingMinor, bal.discountStatus], [30_000, 30_000, 0, 'reversed']);
  // Credit cannot be allocated before the receipt's date.
  const credit = await s.ledger.recordReceipt(ctx, { clientId: t.client.id, receivedOn: '2026-03-29', amountMinor: 1_000, order: 'on_account' });
  await refused(s.ledger.allocateCredit(ctx, { receiptId: credit.receipt.id, on: '2026-03-28' }), 422);
  await assertLedgerInvariants(db.db, { billing: true });
});

eachDialect('a discount honoured stays honoured when the bill is re-drafted and approved again with the same discount; a changed discount is undecided again', async (db) => {
  const s = await setup(db);
  const t = await firm(s.cmds);
  await s.cmds.recordTimeEntry(ctx, { matterId: t.matter.id, timekeeperId: t.partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice' });
  await s.drain();
  const bill = await billFor(s, t.matter.id, { discountBp: 1_000, validUntil: '2026-03-14' });
  await s.ledger.decideDiscount(ctx, { billId: bill.billId, decision: 'honour', on: '2026-03-20' });
  assert.equal((await lastBalance(s, bill.billId)).discountStatus, 'honoured');
  // Re-drafted and approved again unchanged: the decision stands.
  await s.billing.finalise(ctx, bill.billId);
  await s.billing.redraft(ctx, bill.billId);
  await s.billing.approve(ctx, bill.billId);
  await s.drain();
  assert.equal((await lastBalance(s, bill.billId)).discountStatus, 'honoured');
  // Reverted and approved with another discount (20%): a new discount, undecided.
  await s.billing.revert(ctx, bill.billId);
  const draft = (await s.billing.findBill(bill.billId))!;
  await s.billing.updateDraft(ctx, bill.billId, { request: { ...draft.request, discount: { kind: 'percentage', percentBasisPoints: 2_000, amountMinor: 0, validUntil: '2026-03-14' } }, expectedVersion: draft.version });
  await s.billing.approve(ctx, bill.billId);
  await s.drain();
  assert.equal((await lastBalance(s, bill.billId)).discountStatus, 'pending');
  // Honoured again, then re-drafted and approved again: a late receipt does not reverse it.
  await s.ledger.decideDiscount(ctx, { billId: bill.billId, decision: 'honour', on: '2026-03-21' });
  await s.billing.finalise(ctx, bill.billId);
  await s.billing.redraft(ctx, bill.billId);
  await s.billing.approve(ctx, bill.billId);
  await s.drain();
  const late = await s.ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-03-25', amountMinor: 24_000, order: 'this_bill_only' });
  assert.deepEqual(late.discountsReversed, [], 'the honoured discount is not reversed');
  assert.deepEqual(await lastBalance(s, bill.billId).then((b) => [b.outstandingMinor, b.discountStatus]), [0, 'honoured']);
  await assertLedgerInvariants(db.db, { billing: true });
});

eachDialect('periods: a closed period refuses postings; events land in the next open one with a note; outside-current warns or refuses', async (db) => {
  const s = await setup(db);
  const t = await firm(s.cmds);
  await work(s.cmds, t.matter.id, t);
  await s.drain();
  await s.ledger.setPeriod(ctx, { period: '2026-02', status: 'closed' });
  await refused(s.ledger.setPeriod(ctx, { period: '2026-03', status: 'closed' }), 409); // the current one
  // A bill dated 28 Feb (closed) is posted, never lost: to March, with a note.
  const bill = await billFor(s, t.matter.id);
  const [bj] = await journals(db.db, { prefix: 'BJ' });
  assert.deepEqual([bj!.date, bj!.period, bj!.note], ['2026-02-28', '2026-03', 'Dated 2026-02-28 in closed period 2026-02: posted to 2026-03']);
  // Its lines count from 1 March, so the closed February's trial balance does not change.
  const lineDates = await db.db.selectFrom('ledger_journal_line').select('date').distinct().execute();
  assert.deepEqual(lineDates.map((r) => r.date), ['2026-03-01']);
  assert.equal((await s.reports.run('trial-balance', { to: '2026-02-28' })).rows.length, 0);
  // A receipt dated in the closed period is refused, and nothing is written.
  const before = (await journals(db.db)).length;
  const e = await refused(s.ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-02-28', amountMinor: 100 }), 409);
  assert.match(e.message, /2026-02 is closed/);
  await refused(s.ledger.writeOff(ctx, { billId: bill.billId, amountMinor: 100, on: '2026-02-28' }), 409);
  assert.equal((await journals(db.db)).length, before);
  // Outside the current period (March): the firm warns, so it needs confirming...
  await refused(s.ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-04-02', amountMinor: 100 }), 409);
  const ok = await s.ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-04-02', amountMinor: 100, confirmOutsidePeriod: true });
  assert.match(ok.warning ?? '', /^Posted outside the current period \(2026-03\); Dated 2026-04-02, after today: reports as at an earlier date do not count it$/);
  // ...or, when the firm refuses, it is refused even confirmed.
  await s.cmds.updateFirmSettings(ctx, { postingOutsideCurrentPeriod: 'refuse' });
  await s.drain();
  await refused(s.ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-04-03', amountMinor: 100, confirmOutsidePeriod: true }), 409);
  // Reopened, the period takes postings again (and moving the current period on works).
  await s.ledger.setPeriod(ctx, { period: '2026-02', status: 'open' });
  await s.ledger.setCurrentPeriod(ctx, '2026-02');
  await s.ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-02-28', amountMinor: 100 });
  // Before the bill's own date, money does not pay it nor is it written off (named, 422).
  assert.match(JSON.stringify((await refused(s.ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-02-27', amountMinor: 100 }), 422)).fields), /before bill [\d.]+'s date \(2026-02-28\)/);
  await refused(s.ledger.writeOff(ctx, { billId: bill.billId, amountMinor: 100, on: '2026-02-27' }), 422);
  await assertLedgerInvariants(db.db, { billing: true });
});

eachDialect('a redelivered event posts nothing twice (past the inbox too)', async (db) => {
  const s = await setup(db);
  const t = await firm(s.cmds);
  await work(s.cmds, t.matter.id, t);
  await s.drain();
  const bill = await billFor(s, t.matter.id);
  await s.ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-03-05', amountMinor: 10_000 });
  await s.billing.finalise(ctx, bill.billId);
  await s.billing.redraft(ctx, bill.billId);
  await s.billing.approve(ctx, bill.billId);
  await s.drain();
  const snapshot = async () => ({
    journals: await journals(db.db), bills: await db.db.selectFrom('ledger_bill').selectAll().orderBy('id').execute(),
    receipts: await db.db.selectFrom('ledger_receipt').selectAll().orderBy('id').execute(), accounts: (await db.db.selectFrom('ledger_account').select('code').orderBy('code').execute()).length,
  });
  const before = await snapshot();
  // Every event delivered again, and the ledger's inbox rows gone: the handlers run again.
  await db.db.updateTable('outbox').set({ delivered_at: null }).execute();
  await db.db.deleteFrom('inbox').where('handler', 'like', 'ledger.%').execute();
  await s.drain();
  const after = await snapshot();
  assert.deepEqual(after, before);
  await assertLedgerInvariants(db.db, { billing: true });
});

eachDialect('reports: trial balance, GL detail, aged debtors with a chart, statement, breakdown, fee allocation, WIP by timekeeper', async (db) => {
  const s = await setup(db);
  const t = await firm(s.cmds);
  await work(s.cmds, t.matter.id, t);
  await s.drain();
  const bill = await billFor(s, t.matter.id);
  await s.ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-03-05', amountMinor: 20_000 });
  await s.cmds.recordTimeEntry(ctx, { matterId: t.matter.id, timekeeperId: t.associate.id, workDate: '2026-02-25', rawMinutes: 30, narrative: 'Unbilled' });
  await s.drain();
  const total = bill.totals.totalMinor;
  const tb = await s.reports.run('trial-balance', { to: '2026-03-31' });
  assert.equal(tb.totals!.debit, tb.totals!.credit);
  assert.deepEqual(tb.rows.find((r) => r.code === '1100'), { code: '1100', account: 'Debtors control', type: 'asset', debit: total - 20_000, credit: 0 });
  assert.deepEqual(tb.rows.find((r) => r.code === '4000.001'), { code: '4000.001', account: 'Professional fees: MH Margaret Holloway', type: 'income', debit: 0, credit: 60_000 });
  // Before the receipt, debtors held the whole bill.
  assert.equal((await s.reports.run('trial-balance', { to: '2026-03-01' })).rows.find((r) => r.code === '1100')!.debit, total);
  assert.equal((await s.reports.run('aged-debtors', { to: '2026-03-20' })).rows[0]!.current, total - 20_000);
  const aged = await s.reports.run('aged-debtors', { to: '2026-04-30' });
  // 28 Feb to 30 Apr is 61 days: the 60-day bucket.
  assert.deepEqual(aged.rows, [{ client: '1 Northwind Logistics Inc.', current: 0, d30: 0, d60: total - 20_000, d90: 0, d120: 0, total: total - 20_000 }]);
  assert.match(aged.chartSvg!, /<svg[^>]*role="img"/);
  assert.match(aged.chartSvg!, /60 days/);
  // As at the end of March (the default, today, is 2 March: before the receipt of 5 March).
  const st = await s.reports.run('debtor-statement', { clientId: t.client.id, to: '2026-03-31' });
  assert.deepEqual(st.rows.map((r) => [r.file, r.bills, r.outstanding]), [['1.1', '1.1.1', total - 20_000]]);
  assert.equal(st.totals!.outstanding, total - 20_000);
  const br = await s.reports.run('debtor-breakdown', { to: '2026-03-31' });
  assert.deepEqual(br.rows.map((r) => [r.bill, r.products, r.disbursements, r.received, r.outstanding]), [['1.1.1', 90_000, 36_500, 20_000, total - 20_000]]);
  const fa = await s.reports.run('fee-allocation', { from: '2026-01-01', to: '2026-03-31' });
  assert.deepEqual(fa.rows.map((r) => [r.period, r.timekeeper, r.earned]), [['2026-02', 'JS Jonah Stern', 30_000], ['2026-02', 'MH Margaret Holloway', 60_000]].sort((a, b) => (a[1]! < b[1]! ? -1 : 1)));
  const wip = await s.reports.run('wip-by-timekeeper', { to: '2026-03-31' });
  assert.deepEqual(wip.rows.map((r) => [r.timekeeper, r.hours, r.value]), [['JS Jonah Stern', '0:30', 10_000]]);
  const gl = await s.reports.run('gl-detail', { from: '2026-03-01', to: '2026-03-31' });
  assert.deepEqual(gl.rows.filter((r) => r.code === '1100').map((r) => [r.memo, r.debit, r.credit, r.balance]), [['Opening balance', null, null, total], [`Bill 1.1.1: receipt R000001`, null, 20_000, total - 20_000], ['Closing balance', null, null, total - 20_000]]);
});

eachDialect('the database itself refuses an unbalanced journal and any edit or delete of a journal', async (db) => {
  const s = await setup(db);
  const t = await firm(s.cmds);
  await work(s.cmds, t.matter.id, t);
  await s.drain();
  await billFor(s, t.matter.id);
  const header = (id: string, debit: number, credit: number) => ({
    id, number: `XX${id}`, prefix: 'RJ', source_key: `test:${id}`, source_type: 'test', date: '2026-03-02', period: '2026-03', memo: 'test', note: null,
    currency: 'USD', total_debit_minor: debit, total_credit_minor: credit, bill_id: null, receipt_id: null, client_id: null, matter_id: null,
    reverses_journal_id: null, event_id: null, posted_at: '2026-03-02T09:00:00Z', posted_by: 'test',
  });
  const line = (journal: string, no: number, account: string, debit: number, credit: number) => ({
    journal_id: journal, line_no: no, account_id: account, debit_minor: debit, credit_minor: credit, date: '2026-03-02', memo: 'x', bill_id: null, client_id: null, matter_id: null, timekeeper_id: null,
  });
  // A header whose totals differ is refused by its check.
  await assert.rejects(db.db.insertInto('ledger_journal').values(header('j1', 100, 90)).execute());
  // Lines that do not balance (150 of debits against a 100/100 header) are refused, and nothing stays.
  await assert.rejects(db.db.transaction().execute(async (trx) => {
    await trx.insertInto('ledger_journal').values(header('j2', 100, 100)).execute();
    await trx.insertInto('ledger_journal_line').values([line('j2', 1, 'acct-1000', 150, 0), line('j2', 2, 'acct-1100', 0, 100)]).execute();
  }));
  assert.equal((await db.db.selectFrom('ledger_journal').select('id').where('id', 'in', ['j1', 'j2']).execute()).length, 0);
  // A line that is both a debit and a credit, or zero, is refused.
  await assert.rejects(db.db.transaction().execute(async (trx) => {
    await trx.insertInto('ledger_journal').values(header('j3', 100, 100)).execute();
    await trx.insertInto('ledger_journal_line').values([line('j3', 1, 'acct-1000', 100, 100)]).execute();
  }));
  // Posted journals cannot be edited or deleted: corrections are reversing journals.
  await assert.rejects(db.db.updateTable('ledger_journal_line').set({ debit_minor: 1 }).execute(), /immutable/);
  await assert.rejects(db.db.updateTable('ledger_journal').set({ memo: 'changed' }).execute(), /immutable/);
  await assert.rejects(db.db.deleteFrom('ledger_journal_line').execute(), /immutable/);
  await assertLedgerInvariants(db.db, { billing: true });
});

eachDialect('concurrent receipts never pay a bill twice over; a receipt racing a re-draft leaves the books consistent', async (db) => {
  const s = await setup(db);
  const t = await firm(s.cmds);
  await work(s.cmds, t.matter.id, t);
  await s.drain();
  const bill = await billFor(s, t.matter.id);
  const total = bill.totals.totalMinor;
  // Four clerks each record the whole amount against the same bill, this bill only, at once.
  const results = await Promise.allSettled([1, 2, 3, 4].map(() => s.ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-03-05', amountMinor: total, order: 'this_bill_only' })));
  for (const r of results) if (r.status === 'rejected') throw r.reason;
  const allocated = results.reduce((a, r) => a + (r.status === 'fulfilled' ? r.value.allocations.reduce((x, y) => x + y.amountMinor, 0) : 0), 0);
  assert.equal(allocated, total, 'the bill is paid once; the rest is credit');
  await assertLedgerInvariants(db.db, { billing: true });
  // A receipt and a re-draft (delivered by the relay) at the same time.
  await s.billing.finalise(ctx, bill.billId);
  await s.drain();
  const paying = results.flatMap((r) => (r.status === 'fulfilled' && r.value.allocations.length > 0 ? [r.value.receipt.id] : []));
  assert.equal(paying.length, 1);
  await s.ledger.reverseReceipt(ctx, { receiptId: paying[0]!, reason: 'Dishonoured', on: '2026-03-06' });
  await s.billing.redraft(ctx, bill.billId);
  const race = await Promise.allSettled([s.rt.relay.drain(), s.ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-03-07', amountMinor: 1_000, order: 'this_bill_only' })]);
  // The receipt loses the race either way it can: refused as the bill's postings were reversed (a 409, or a 422 naming the bill).
  const why = (e: unknown) => (e instanceof HttpError ? `${e.message} ${Object.values(e.fields).join(' ')}` : String(e));
  for (const r of race) if (r.status === 'rejected' && !/reversed/.test(why(r.reason))) throw r.reason;
  await s.drain();
  await assertLedgerInvariants(db.db, { billing: true });
});
