/**
 * The ledger's rules without a database: each posting rule of seed 003 with its journal
 * written out literally (figures worked by hand in the comments), allocation orders,
 * time-sensitive discount decisions, periods (seed 004) and debtor ageing; plus property
 * tests that any bill's posting balances and leaves its total on debtors.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { BillData, BillLineData } from '../../src/modules/billing/events.ts';
import {
  ageBucket, allocateReceipt, allocationSequence, billPosting, checkPosting, discountDecision, discountReversal, eventPeriod, firstOpenPeriod, refKey,
} from '../../src/modules/ledger/domain.ts';
import type { OpenBill, PostingLine } from '../../src/modules/ledger/domain.ts';
import { allocate, mulDiv } from '../../src/shared/money.ts';

let lineNo = 0;
function line(kind: BillLineData['kind'], amountMinor: number, taxMinor: number, extra: Partial<BillLineData> = {}): BillLineData {
  lineNo++;
  return {
    lineNo, key: `${kind}:${lineNo}`, kind, itemId: null, itemKind: null, scheduleRowId: null, date: '2026-02-10', timekeeperId: null, code: null, chargeTypeId: null,
    description: kind, minutes: null, rateMinor: null, recordedMinor: amountMinor, amountMinor, noCharge: false, taxCode: taxMinor ? 'GST' : 'EXEMPT', taxMinor,
    taskCode: null, activityCode: null, expenseCode: null, ...extra,
  };
}

function bill(lines: BillLineData[], allocations: BillData['allocations'], totals: BillData['totals'], discount: BillData['discount'] = null): BillData {
  return {
    billId: 'bill-1', status: 'approved', number: '12.8.1', sequence: 1, matterId: 'm-1', clientId: 'c-1', fileNumber: '12.8', currency: 'AUD',
    invoiceDate: '2026-02-28', upTo: '2026-02-28', dueDate: '2026-03-30', lines, allocations, totals, discount, retainerBalanceMinor: null, retainerRequestMinor: 0,
    scheduleRowIds: [], items: [], hideLinePricing: false, batchId: null, version: 2,
  };
}

/** A journal as [account, debit, credit] rows, the way a bookkeeper reads it. */
function table(lines: readonly PostingLine[]): [string, number, number][] {
  return lines.map((l) => [refKey(l.account), l.amountMinor > 0 ? l.amountMinor : 0, l.amountMinor < 0 ? -l.amountMinor : 0]);
}

test('posting: fees per timekeeper by allocation (gross of the discount share), fixed charges per type, disbursements, interest, tax, discount', () => {
  // Lines: A's time 300.00 (+30.00 GST), B's time 200.00 (+20.00), lease review (charge type ct-lease) 150.00 (+15.00),
  // court fee 350.00 (no tax), ad hoc courier 15.00 (+1.50), interest 5.00 (no tax), and a 10% discount line on the
  // products (fees and fixed charges: 650.00) of 65.00 with the GST it saves (-6.50).
  const b = bill([
    line('time', 30_000, 3_000, { timekeeperId: 'tk-A' }),
    line('time', 20_000, 2_000, { timekeeperId: 'tk-B' }),
    line('fixed_charge', 15_000, 1_500, { chargeTypeId: 'ct-lease', code: 'LEASE' }),
    line('disbursement', 35_000, 0),
    line('adhoc_disbursement', 1_500, 150),
    line('interest', 500, 0),
    line('discount', -6_500, -650),
  ],
  // Net fees: 500.00 less the fees' share of the discount (65.00 x 500/650 = 50.00) = 450.00, allocated with a 10%
  // origination share to C: A 243.00, B 162.00, C 45.00.
  [{ timekeeperId: 'tk-A', amountMinor: 24_300 }, { timekeeperId: 'tk-B', amountMinor: 16_200 }, { timekeeperId: 'tk-C', amountMinor: 4_500 }],
  // Total: 500 + 150 + 365 - 65 + 5 + tax (30 + 20 + 15 + 1.50 - 6.50 = 60.00) = 1,015.00.
  { feesMinor: 50_000, fixedChargesMinor: 15_000, disbursementsMinor: 36_500, discountMinor: 6_500, interestMinor: 500, taxMinor: 6_000, totalMinor: 101_500, netFeesMinor: 45_000 },
  { amountMinor: 6_500, validUntil: '2026-03-14', undiscountedTotalMinor: 108_650 });
  const p = billPosting(b);
  // The fees' discount share (50.00) goes back pro rata to the allocation: 27.00, 18.00, 5.00 -> A 270.00, B 180.00, C 50.00.
  // Gross debtors: 270 + 180 + 50 + 150 + 365 + 5 + 66.50 (tax before discount) = 1,086.50; discount 65.00 + 6.50 tax = 71.50.
  assert.deepEqual(table(p.lines), [
    ['debtors', 108_650, 0],
    ['fee_timekeeper:tk-A', 0, 27_000],
    ['fee_timekeeper:tk-B', 0, 18_000],
    ['fee_timekeeper:tk-C', 0, 5_000],
    ['fixed_charge_type:ct-lease', 0, 15_000],
    ['disbursements', 0, 36_500],
    ['interest', 0, 500],
    ['tax_payable', 0, 6_650],
    ['discounts', 6_500, 0],
    ['tax_payable', 650, 0],
    ['debtors', 0, 7_150],
  ]);
  assert.equal(p.debtorsMinor, 101_500);
  assert.equal(p.discountDebtorsMinor, 7_150);
  // Reversing the time-sensitive discount: debit debtors 71.50, credit discounts allowed 65.00 and tax payable 6.50.
  assert.deepEqual(table(discountReversal('bill-1', 6_500, 650)), [['debtors', 7_150, 0], ['discounts', 0, 6_500], ['tax_payable', 0, 650]]);
});

test('posting: one timekeeper, no tax, no discount; a fixed charge with no type goes to the general fixed charges account', () => {
  const b = bill([
    line('time', 12_345, 0, { timekeeperId: 'tk-A' }),
    line('fixed_fee', 10_000, 0, { timekeeperId: 'tk-A' }),
    line('fixed_charge', 2_500, 0),
  ], [{ timekeeperId: 'tk-A', amountMinor: 22_345 }],
  { feesMinor: 22_345, fixedChargesMinor: 2_500, disbursementsMinor: 0, discountMinor: 0, interestMinor: 0, taxMinor: 0, totalMinor: 24_845, netFeesMinor: 22_345 });
  assert.deepEqual(table(billPosting(b).lines), [
    ['debtors', 24_845, 0],
    ['fee_timekeeper:tk-A', 0, 22_345],
    ['fixed_charges', 0, 2_500],
  ]);
});

test('posting: a discount hidden in the line amounts posts no discount lines; a negative ad hoc fee credit reduces the fees', () => {
  // Fees written down to 270.00 and 180.00 (a hidden 10% discount); an ad hoc fee credit of -20.00 on A.
  const b = bill([
    line('time', 27_000, 0, { timekeeperId: 'tk-A' }),
    line('time', 18_000, 0, { timekeeperId: 'tk-B' }),
    line('adhoc_fee', -2_000, 0, { timekeeperId: 'tk-A' }),
  ], [{ timekeeperId: 'tk-A', amountMinor: 25_000 }, { timekeeperId: 'tk-B', amountMinor: 18_000 }],
  { feesMinor: 43_000, fixedChargesMinor: 0, disbursementsMinor: 0, discountMinor: 0, interestMinor: 0, taxMinor: 0, totalMinor: 43_000, netFeesMinor: 43_000 });
  assert.deepEqual(table(billPosting(b).lines), [
    ['debtors', 43_000, 0],
    ['fee_timekeeper:tk-A', 0, 25_000],
    ['fee_timekeeper:tk-B', 0, 18_000],
  ]);
});

test('posting: fees go to the timekeepers even when the allocation cannot carry the discount share (a 100% discount; a write-down allocated to one timekeeper)', () => {
  // A 100% discount as a line: nothing is left to allocate, so the fees go back by each timekeeper's fee lines.
  const full = bill([
    line('time', 30_000, 0, { timekeeperId: 'tk-A' }),
    line('time', 10_000, 0, { timekeeperId: 'tk-B' }),
    line('quote_fee', 7_000, 0, { timekeeperId: 'tk-A' }),
    line('discount', -47_000, 0),
  ], [],
  { feesMinor: 47_000, fixedChargesMinor: 0, disbursementsMinor: 0, discountMinor: 47_000, interestMinor: 0, taxMinor: 0, totalMinor: 0, netFeesMinor: 0 },
  { amountMinor: 47_000, validUntil: null, undiscountedTotalMinor: 47_000 });
  assert.deepEqual(table(billPosting(full).lines), [
    ['debtors', 47_000, 0],
    ['fee_timekeeper:tk-A', 0, 37_000],
    ['fee_timekeeper:tk-B', 0, 10_000],
    ['discounts', 47_000, 0],
    ['debtors', 0, 47_000],
  ]);
  // A write-down allocated to C (C's share negative): the 60.00 discount share goes back to A and B (50 : 25), who were allocated fees.
  const mixed = bill([
    line('time', 40_000, 0, { timekeeperId: 'tk-A' }),
    line('time', 20_000, 0, { timekeeperId: 'tk-B' }),
    line('discount', -6_000, 0),
  ], [{ timekeeperId: 'tk-A', amountMinor: 50_000 }, { timekeeperId: 'tk-B', amountMinor: 25_000 }, { timekeeperId: 'tk-C', amountMinor: -21_000 }],
  { feesMinor: 60_000, fixedChargesMinor: 0, disbursementsMinor: 0, discountMinor: 6_000, interestMinor: 0, taxMinor: 0, totalMinor: 54_000, netFeesMinor: 54_000 });
  assert.deepEqual(table(billPosting(mixed).lines), [
    ['debtors', 60_000, 0],
    ['fee_timekeeper:tk-A', 0, 54_000],
    ['fee_timekeeper:tk-B', 0, 27_000],
    ['fee_timekeeper:tk-C', 21_000, 0],
    ['discounts', 6_000, 0],
    ['debtors', 0, 6_000],
  ]);
});

test('posting: a bill whose parts do not add up is refused (asserted before anything is written)', () => {
  const b = bill([line('time', 10_000, 0, { timekeeperId: 'tk-A' })], [{ timekeeperId: 'tk-A', amountMinor: 9_000 }],
    { feesMinor: 10_000, fixedChargesMinor: 0, disbursementsMinor: 0, discountMinor: 0, interestMinor: 0, taxMinor: 0, totalMinor: 10_000, netFeesMinor: 10_000 });
  assert.throws(() => billPosting(b), /allocation must sum/);
});

const open: OpenBill[] = [
  { billId: 'A', invoiceDate: '2026-01-10', number: '1.1.1', outstandingMinor: 1_000 },
  { billId: 'B', invoiceDate: '2026-02-01', number: '1.2.1', outstandingMinor: 500 },
  { billId: 'C', invoiceDate: '2026-01-10', number: '1.1.2', outstandingMinor: 300 },
  { billId: 'D', invoiceDate: '2025-12-01', number: '1.1.0', outstandingMinor: 0 },
];

test('allocation orders, part payments and overpayments (figures by hand)', () => {
  const cases: [string, Parameters<typeof allocationSequence>[1], string | null, number, [string, number][], number][] = [
    // Oldest first: A (10 Jan, 1.1.1) before C (10 Jan, 1.1.2) before B (1 Feb); D has nothing outstanding.
    ['oldest first, part of the third', 'oldest_first', null, 1_200, [['A', 1_000], ['C', 200]], 0],
    ['oldest first, overpaid', 'oldest_first', null, 2_000, [['A', 1_000], ['C', 300], ['B', 500]], 200],
    ['this bill first, then the oldest', 'this_bill_first', 'B', 1_200, [['B', 500], ['A', 700]], 0],
    ['this bill first, part payment', 'this_bill_first', 'B', 120, [['B', 120]], 0],
    ['this bill only: the rest is credit', 'this_bill_only', 'B', 1_200, [['B', 500]], 700],
    ['on account: all credit', 'on_account', null, 1_200, [], 1_200],
  ];
  for (const [name, order, target, amount, expected, credit] of cases) {
    const r = allocateReceipt(amount, allocationSequence(open, order, target));
    assert.deepEqual(r.allocations.map((a) => [a.billId, a.amountMinor]), expected, name);
    assert.equal(r.unallocatedMinor, credit, name);
  }
});

test('property: an allocation never exceeds a bill nor the receipt, and accounts for every cent', () => {
  fc.assert(fc.property(
    fc.array(fc.record({ out: fc.integer({ min: 0, max: 100_000 }), day: fc.integer({ min: 1, max: 28 }) }), { maxLength: 8 }),
    fc.integer({ min: 0, max: 500_000 }), fc.constantFrom('oldest_first' as const, 'this_bill_first' as const, 'this_bill_only' as const, 'on_account' as const), fc.nat(),
    (bs, amount, order, t) => {
      const bills = bs.map((b, i) => ({ billId: `b${i}`, invoiceDate: `2026-01-${String(b.day).padStart(2, '0')}`, number: `1.1.${i + 1}`, outstandingMinor: b.out }));
      const target = bills.length ? bills[t % bills.length]!.billId : null;
      const r = allocateReceipt(amount, allocationSequence(bills, order, target));
      assert.equal(r.allocations.reduce((s, a) => s + a.amountMinor, 0) + r.unallocatedMinor, amount);
      for (const a of r.allocations) assert.ok(a.amountMinor > 0 && a.amountMinor <= bills.find((b) => b.billId === a.billId)!.outstandingMinor);
      const totalOut = bills.reduce((s, b) => s + b.outstandingMinor, 0);
      if (order === 'oldest_first' || order === 'this_bill_first') assert.equal(r.unallocatedMinor, Math.max(0, amount - totalOut));
    },
  ));
});

test('time-sensitive discounts on receipt (seed 003 way 1)', () => {
  const cases: [Parameters<typeof discountDecision>[0], string | null, string, Parameters<typeof discountDecision>[3], string][] = [
    ['pending', '2026-03-14', '2026-03-14', 'auto', 'keep'], // paid on the last day: it stands
    ['pending', '2026-03-14', '2026-03-15', 'auto', 'reverse'], // expired: assumed reversed
    ['pending', '2026-03-14', '2026-03-15', 'honour', 'honour'], // unless told otherwise
    ['pending', '2026-03-14', '2026-03-01', 'reverse', 'reverse'],
    ['reversed', '2026-03-14', '2026-04-01', 'auto', 'keep'],
    ['none', null, '2026-04-01', 'reverse', 'keep'],
  ];
  for (const [status, until, on, choice, expected] of cases) assert.equal(discountDecision(status, until, on, choice), expected, `${status} ${until} ${on} ${choice}`);
});

test('periods: closed refuses; outside the current one warns (confirm) or refuses; events move to the next open period with a note', () => {
  const closed = new Set(['2026-01', '2026-02']);
  assert.deepEqual(checkPosting('2026-01-31', '2026-03', closed, 'warn', true), { ok: false, reason: 'The accounting period 2026-01 is closed: choose a date in an open period' });
  assert.deepEqual(checkPosting('2026-03-05', '2026-03', closed, 'refuse', false), { ok: true, warning: null });
  assert.equal(checkPosting('2026-04-01', '2026-03', closed, 'refuse', true).ok, false);
  assert.equal(checkPosting('2026-04-01', '2026-03', closed, 'warn', false).ok, false);
  assert.deepEqual(checkPosting('2026-04-01', '2026-03', closed, 'warn', true), { ok: true, warning: 'Posted outside the current period (2026-03)' });
  assert.deepEqual(eventPeriod('2026-01-31', '2026-03', closed), { period: '2026-03', note: 'Dated 2026-01-31 in closed period 2026-01: posted to 2026-03' });
  assert.deepEqual(eventPeriod('2026-03-31', '2026-03', closed), { period: '2026-03', note: null });
  assert.deepEqual(eventPeriod('2025-12-31', '2026-03', closed), { period: '2025-12', note: 'Outside the current period 2026-03' });
  assert.equal(firstOpenPeriod('2025-12', new Set(['2025-12', '2026-01'])), '2026-02');
});

test('ageing by invoice date: current, 30, 60, 90, 120+', () => {
  const cases: [string, string, string][] = [
    ['2026-03-01', '2026-03-30', 'current'], ['2026-03-01', '2026-03-31', 'd30'], ['2026-01-01', '2026-03-01', 'd30'],
    ['2026-01-01', '2026-03-02', 'd60'], ['2025-12-01', '2026-03-01', 'd90'], ['2025-11-01', '2026-03-01', 'd120'], ['2020-01-01', '2026-03-01', 'd120'],
  ];
  for (const [inv, asOf, bucket] of cases) assert.equal(ageBucket(inv, asOf), bucket, `${inv} at ${asOf}`);
});

test('property: any bill posts balanced and leaves exactly its total on debtors', () => {
  fc.assert(fc.property(
    fc.array(fc.record({ tk: fc.constantFrom('tk-A', 'tk-B'), amount: fc.integer({ min: 0, max: 1_000_000 }), tax: fc.integer({ min: 0, max: 100_000 }) }), { minLength: 1, maxLength: 6 }),
    fc.integer({ min: 0, max: 500_000 }), fc.integer({ min: 0, max: 50_000 }), fc.integer({ min: 0, max: 3_000 }),
    (fees, disb, interest, discountBp) => {
      lineNo = 0;
      const lines = fees.map((f) => line('time', f.amount, f.tax, { timekeeperId: f.tk }));
      const feesMinor = fees.reduce((s, f) => s + f.amount, 0);
      const discount = mulDiv(feesMinor, discountBp, 10_000, 'down');
      if (disb) lines.push(line('disbursement', disb, 0));
      if (interest) lines.push(line('interest', interest, 0));
      if (discount) lines.push(line('discount', -discount, 0));
      const net = feesMinor - discount;
      const byTk = new Map<string, number>();
      for (const f of fees) byTk.set(f.tk, (byTk.get(f.tk) ?? 0) + f.amount);
      const tks = [...byTk.keys()];
      // The net fees split by work, as billing's allocation would (largest remainder).
      const shares = feesMinor > 0 ? allocate(net, tks.map((tk) => byTk.get(tk)!)) : tks.map((_, i) => (i === 0 ? net : 0));
      const allocations = tks.map((tk, i) => ({ timekeeperId: tk, amountMinor: shares[i]! }));
      const tax = fees.reduce((s, f) => s + f.tax, 0);
      const total = feesMinor + disb + interest - discount + tax;
      const p = billPosting(bill(lines, allocations, { feesMinor, fixedChargesMinor: 0, disbursementsMinor: disb, discountMinor: discount, interestMinor: interest, taxMinor: tax, totalMinor: total, netFeesMinor: net }));
      assert.equal(p.lines.reduce((s, l) => s + l.amountMinor, 0), 0);
      assert.equal(p.lines.filter((l) => l.account.role === 'debtors').reduce((s, l) => s + l.amountMinor, 0), total);
      const feeCredit = 0 - p.lines.filter((l) => l.account.role === 'fee_timekeeper' || l.account.role === 'fees').reduce((s, l) => s + l.amountMinor, 0);
      assert.equal(feeCredit, feesMinor, 'fees post gross');
    },
  ));
});
