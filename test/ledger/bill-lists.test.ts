/**
 * The debtors ledger's bills read in lists come without their posted lines (tens of kilobytes a
 * bill: a firm's overview read them all for a count), and saving such a bill keeps its lines.
 * The overview's counts come from SQL and agree with the rules they stand for (outstandingOf,
 * expiredDiscountMinor). On both databases.
 */
import assert from 'node:assert/strict';
import * as store from '../../src/modules/ledger/store.ts';
import type { LedgerBill } from '../../src/modules/ledger/store.ts';
import { eachDialect } from '../support/db.ts';

const ASOF = '2026-03-15';

function bill(id: string, over: Partial<LedgerBill>): LedgerBill {
  return {
    id, matterId: 'm-1', clientId: 'c-1', fileNumber: '1.1', number: `B-${id}`, currency: 'USD', status: 'open', produced: false,
    invoiceDate: '2026-03-01', dueDate: '2026-03-31', feesMinor: 10_000, fixedChargesMinor: 0, disbursementsMinor: 0, interestMinor: 0, taxMinor: 0,
    discountMinor: 0, totalMinor: 10_000, discountDebtorsMinor: 0, discountValidUntil: null, discountStatus: 'none', discountDecided: false, discountDecidedOn: null,
    discountReversedMinor: 0, paidMinor: 0, writtenOffMinor: 0, lastReceiptOn: null, postingJournalId: null,
    linesJson: JSON.stringify({ lines: [{ kind: 'fee', amountMinor: 10_000, id }], allocations: [] }), updatedAt: '2026-03-01T00:00:00.000Z', ...over,
  };
}

eachDialect('ledger bills in lists: no posted lines read, kept when saved; the overview\'s counts in SQL agree with outstandingOf and expiredDiscountMinor', async (db) => {
  const bills = [
    bill('a-owing', {}),
    bill('b-paid', { paidMinor: 10_000 }),
    bill('c-reversed', { status: 'reversed' }),
    bill('d-expired', { discountStatus: 'pending', discountValidUntil: '2026-03-10', discountDebtorsMinor: 500, totalMinor: 9_500 }),
    bill('e-valid', { discountStatus: 'pending', discountValidUntil: ASOF, discountDebtorsMinor: 500, totalMinor: 9_500 }),
    bill('f-honoured', { discountStatus: 'honoured', discountValidUntil: '2026-03-10', discountDebtorsMinor: 500, totalMinor: 9_500 }),
    bill('g-credit', { totalMinor: -2_000 }),
    bill('h-written-off', { paidMinor: 9_000, writtenOffMinor: 1_000 }),
  ];
  for (const b of bills) await store.saveBill(db.db, b);

  const listed = await store.listBills(db.db);
  assert.equal(listed.length, bills.length);
  for (const b of listed) {
    assert.equal(b.linesJson, null, `${b.id}: no lines read in a list`);
    const { linesJson: _l, ...state } = bills.find((x) => x.id === b.id)!;
    assert.deepEqual({ ...b, linesJson: undefined }, { ...state, linesJson: undefined }, `${b.id}: every other field as saved`);
    assert.equal(await store.billLinesJson(db.db, b.id), bills.find((x) => x.id === b.id)!.linesJson, `${b.id}: its lines on their own`);
  }

  // Saved from a list (a receipt paying it): its state changes, its posted lines stay.
  const a = listed.find((b) => b.id === 'a-owing')!;
  await store.saveBill(db.db, { ...a, paidMinor: 4_000, lastReceiptOn: '2026-03-05' });
  const again = await store.findBill(db.db, 'a-owing');
  assert.equal(again?.paidMinor, 4_000);
  assert.equal(again?.lastReceiptOn, '2026-03-05');
  assert.equal(again?.linesJson, bills[0]!.linesJson, 'the lines posted are kept');
  // A bill without its lines that is not on the ledger: refused, nothing written.
  await assert.rejects(() => store.saveBill(db.db, { ...a, id: 'ghost', linesJson: null }), /must be on the ledger already/);
  assert.equal(await store.findBill(db.db, 'ghost'), null);

  // The overview's figures, counted in SQL, as the rules count them over every bill.
  const now = await store.listBills(db.db);
  assert.equal(await store.openBillCount(db.db), now.filter((b) => store.outstandingOf(b) !== 0).length);
  assert.equal(await store.openBillCount(db.db), 5, 'a (part paid), d, e, f, g (a credit) are open with an amount outstanding');
  const expired = await store.listBills(db.db, { expiredBy: ASOF });
  assert.deepEqual(expired.map((b) => b.id), now.filter((b) => store.expiredDiscountMinor(b, ASOF) !== 0).map((b) => b.id));
  assert.deepEqual(expired.map((b) => b.id), ['d-expired']);
});
