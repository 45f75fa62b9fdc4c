import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { percentOf } from '../../src/shared/money.ts';
import {
  addDays, allocateFees, applyQuote, billNumber, discountMinor, dueDate, dueScheduleRows, overdueInterestMinor,
  retainerRequestMinor, selectItems, taxLines, writeToTarget,
} from '../../src/modules/billing/domain/rules.ts';
import type { FeeAllocationInput, QuoteChoice, SelectableItem } from '../../src/modules/billing/domain/rules.ts';

test('retainer replenishment: seed 002 worked example and the edges', () => {
  const cases: { name: string; min: number; trigger: number; after: number; enabled?: boolean; want: number }[] = [
    // minimum 5,000, trigger 3,000, balance 6,000, bill 3,500 -> 2,500 left -> ask 2,500
    { name: 'seed 002 example', min: 500_000, trigger: 300_000, after: 600_000 - 350_000, want: 250_000 },
    { name: 'exactly at the trigger asks', min: 500_000, trigger: 300_000, after: 300_000, want: 200_000 },
    { name: 'above the trigger asks nothing', min: 500_000, trigger: 300_000, after: 300_001, want: 0 },
    { name: 'drained to zero asks the whole minimum', min: 500_000, trigger: 300_000, after: 0, want: 500_000 },
    { name: 'turned off asks nothing', min: 500_000, trigger: 300_000, after: 0, enabled: false, want: 0 },
  ];
  for (const c of cases) {
    assert.equal(retainerRequestMinor({ enabled: c.enabled ?? true, minimumBalanceMinor: c.min, triggerMinor: c.trigger, balanceAfterMinor: c.after }), c.want, c.name);
  }
});

test('bill numbers: seed 003 "the first bill on file 12.8 would be 12.8.1"', () => {
  assert.equal(billNumber('12.8', 1), '12.8.1');
  assert.equal(billNumber('3.120', 17), '3.120.17');
  assert.throws(() => billNumber('12.8', 0), /starts at 1/);
  assert.throws(() => billNumber('12', 1), /must look like 12\.8/);
});

test('quotes: every includes/position/choice combination', () => {
  const q = (includes: 'fees' | 'fees_and_costs' | 'costs', below: QuoteChoice, above: QuoteChoice, fees: number, costs: number, quote: number | null = 100_000) =>
    applyQuote({ quoteMinor: quote, includes, ifWipBelow: below, ifWipAbove: above, feesWipMinor: fees, costsWipMinor: costs });
  const rows: [ReturnType<typeof q>, number, string][] = [
    [q('fees', 'bill_quote', 'wip_only', 80_000, 5_000), 100_000, 'below'],
    [q('fees', 'quote_plus_wip', 'wip_only', 80_000, 5_000), 180_000, 'below'],
    [q('fees', 'wip_only', 'bill_quote', 80_000, 5_000), 80_000, 'below'],
    [q('fees', 'wip_only', 'bill_quote', 130_000, 5_000), 100_000, 'above'],
    [q('fees', 'wip_only', 'quote_plus_wip', 130_000, 5_000), 230_000, 'above'],
    [q('fees', 'bill_quote', 'wip_only', 130_000, 5_000), 130_000, 'above'],
    [q('fees_and_costs', 'bill_quote', 'wip_only', 80_000, 30_000), 110_000, 'above'],
    [q('fees_and_costs', 'bill_quote', 'wip_only', 60_000, 30_000), 100_000, 'below'],
    [q('costs', 'bill_quote', 'wip_only', 500_000, 30_000), 100_000, 'below'],
    [q('fees', 'bill_quote', 'bill_quote', 100_000, 9), 100_000, 'equal'],
    [q('fees', 'bill_quote', 'bill_quote', 70_000, 0, null), 70_000, 'none'],
  ];
  for (const [outcome, target, position] of rows) {
    assert.equal(outcome.targetMinor, target, outcome.reason);
    assert.equal(outcome.position, position, outcome.reason);
  }
  assert.match(q('fees', 'bill_quote', 'wip_only', 1, 0).reason, /below the quote: bill the quoted amount/);
});

test('write up / write down keeps each item\'s share and sums exactly (seed 003 products)', () => {
  assert.deepEqual(writeToTarget([10_000, 20_000, 30_000], 30_000), [5_000, 10_000, 15_000]);
  assert.deepEqual(writeToTarget([10_000, 20_000, 30_000], 90_000), [15_000, 30_000, 45_000]);
  assert.deepEqual(writeToTarget([100, 100, 100], 100), [34, 33, 33]);
  assert.deepEqual(writeToTarget([0, 0], 1_000, [30, 90]), [250, 750], 'zero-value items share by minutes');
  assert.deepEqual(writeToTarget([0, 0], 1_001), [501, 500], 'or equally');
  assert.deepEqual(writeToTarget([12_345], 0), [0], 'written off entirely');
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 10_000_000 }), { minLength: 1, maxLength: 30 }), fc.integer({ min: 0, max: 1_000_000_000 }), (items, target) => {
    const out = writeToTarget(items, target);
    assert.equal(out.reduce((a, b) => a + b, 0), target);
    assert.ok(out.every((v) => v >= 0));
    const total = items.reduce((a, b) => a + b, 0);
    if (total > 0) items.forEach((a, i) => assert.ok(Math.abs(out[i]! - (a * target) / total) < 1, 'within a cent of its exact share'));
  }));
});

test('discounts: percentage or fixed, never more than what they discount', () => {
  assert.equal(discountMinor({ kind: 'percentage', percentBasisPoints: 1_000, amountMinor: 0 }, 123_456), 12_346);
  assert.equal(discountMinor({ kind: 'percentage', percentBasisPoints: 250, amountMinor: 0 }, 10_000), 250);
  assert.equal(discountMinor({ kind: 'fixed', percentBasisPoints: 0, amountMinor: 5_000 }, 100_000), 5_000);
  assert.equal(discountMinor({ kind: 'fixed', percentBasisPoints: 0, amountMinor: 5_000 }, 3_000), 3_000);
  assert.equal(discountMinor({ kind: 'none', percentBasisPoints: 5_000, amountMinor: 5_000 }, 3_000), 0);
  assert.throws(() => discountMinor({ kind: 'percentage', percentBasisPoints: 10_001, amountMinor: 0 }, 1), /0\.\.100%/);
});

test('tax per line and per bill', () => {
  const lines = [
    { amountMinor: 333, taxBasisPoints: 1_000, taxCode: 'GST' },
    { amountMinor: 333, taxBasisPoints: 1_000, taxCode: 'GST' },
    { amountMinor: 333, taxBasisPoints: 1_000, taxCode: 'GST' },
    { amountMinor: 5_000, taxBasisPoints: 0, taxCode: 'EXEMPT' },
  ];
  assert.deepEqual(taxLines(lines, 'per_line'), [33, 33, 33, 0], 'each 33.3 rounds to 33');
  assert.deepEqual(taxLines(lines, 'per_bill'), [34, 33, 33, 0], '99.9 rounds to 100 once, spread back over the lines');
  fc.assert(fc.property(fc.array(fc.record({ amountMinor: fc.integer({ min: 0, max: 10_000_000 }), taxBasisPoints: fc.constantFrom(0, 500, 1_000, 2_000), taxCode: fc.constantFrom('A', 'B') }), { maxLength: 20 }), (ls) => {
    const perBill = taxLines(ls, 'per_bill');
    for (const code of ['A', 'B']) for (const bp of [0, 500, 1_000, 2_000]) {
      const idx = ls.map((l, i) => [l, i] as const).filter(([l]) => l.taxCode === code && l.taxBasisPoints === bp).map(([, i]) => i);
      const taxable = idx.reduce((a, i) => a + ls[i]!.amountMinor, 0);
      assert.equal(idx.reduce((a, i) => a + perBill[i]!, 0), Math.round((taxable * bp) / 10_000 + 1e-9), 'per-bill tax is the rounded tax of the code total');
    }
  }));
});

test('tax per bill with a credit line at the same rate: each line keeps its own sign, the total is the bill\'s', () => {
  const vat = (amountMinor: number) => ({ amountMinor, taxBasisPoints: 2_000, taxCode: 'VAT' });
  // 1,000.00 of fees and a 200.00 credit at 20%: 200.00 and -40.00 (shared by size, the credit got +26.67 and the fee 133.33).
  assert.deepEqual(taxLines([vat(100_000), vat(-20_000)], 'per_bill'), [20_000, -4_000]);
  // 3.33 + 3.33 - 0.01 at 10% = 6.65 -> 0.67 once: the rounding unit goes to the largest line.
  assert.deepEqual(taxLines([{ amountMinor: 333, taxBasisPoints: 1_000, taxCode: 'G' }, { amountMinor: 333, taxBasisPoints: 1_000, taxCode: 'G' }, { amountMinor: -1, taxBasisPoints: 1_000, taxCode: 'G' }], 'per_bill'), [34, 33, 0]);
  fc.assert(fc.property(fc.array(fc.integer({ min: -5_000_000, max: 10_000_000 }), { minLength: 2, maxLength: 12 }), fc.constantFrom(500, 1_000, 2_000, 825), (amounts, bp) => {
    fc.pre(amounts.some((a) => a > 0) && amounts.some((a) => a < 0));
    const ls = amounts.map((amountMinor) => ({ amountMinor, taxBasisPoints: bp, taxCode: 'T' }));
    const perBill = taxLines(ls, 'per_bill');
    const perLine = taxLines(ls, 'per_line');
    assert.equal(perBill.reduce((a, b) => a + b, 0), percentOf(amounts.reduce((a, b) => a + b, 0), bp, 'half_up'), 'the total is the rounded tax of the total');
    perBill.forEach((t, i) => {
      assert.ok(Math.abs(t - perLine[i]!) <= 1, `line ${i}: within a unit of its own tax (${t} against ${perLine[i]})`);
      assert.ok(t * amounts[i]! >= 0 || Math.abs(t) <= 1, `line ${i}: a credit's tax is a credit`);
    });
  }));
});

test('interest on overdue bills: simple interest after the grace period', () => {
  // 10,000.00 at 10% a year, 73 days overdue = 200.00
  assert.equal(overdueInterestMinor({ balanceMinor: 1_000_000, annualRateBasisPoints: 1_000, dueDate: '2026-01-01', asOf: '2026-03-15', graceDays: 0 }), 20_000);
  assert.equal(overdueInterestMinor({ balanceMinor: 1_000_000, annualRateBasisPoints: 1_000, dueDate: '2026-01-01', asOf: '2026-01-31', graceDays: 30 }), 0);
  assert.equal(overdueInterestMinor({ balanceMinor: 1_000_000, annualRateBasisPoints: 1_000, dueDate: '2026-01-01', asOf: '2026-02-01', graceDays: 30 }), 274, 'one day past grace: 10000 x 10% / 365 = 2.74');
  assert.equal(overdueInterestMinor({ balanceMinor: -5_000, annualRateBasisPoints: 1_000, dueDate: '2026-01-01', asOf: '2027-01-01', graceDays: 0 }), 0, 'credit balances earn nothing');
});

test('due dates and calendar arithmetic', () => {
  assert.equal(dueDate('2026-01-31', 30), '2026-03-02');
  assert.equal(dueDate('2028-02-15', 14), '2028-02-29', 'leap year');
  assert.equal(addDays('2026-12-31', 1), '2027-01-01');
  assert.throws(() => dueDate('2026-02-30', 1), /not a calendar date/);
});

test('fee allocation: rules, adjustments and origination always sum to the fees', () => {
  const work = new Map([['A', 60_000], ['B', 30_000], ['C', 10_000]]);
  const base: FeeAllocationInput = {
    feesBilledMinor: 100_000, workByTimekeeper: work, allocateFees: 'pro_rata', allocateAdjustments: 'original_split',
    responsibleTimekeeperId: 'A', feesTimekeeperId: null, adjustmentsTimekeeperId: null, origination: null,
  };
  const obj = (m: Map<string, number>) => Object.fromEntries([...m.entries()].sort());
  assert.deepEqual(obj(allocateFees(base)), { A: 60_000, B: 30_000, C: 10_000 });
  assert.deepEqual(obj(allocateFees({ ...base, allocateFees: 'responsible' })), { A: 100_000 });
  assert.deepEqual(obj(allocateFees({ ...base, allocateFees: 'selected', feesTimekeeperId: 'C' })), { C: 100_000 });
  // billed 80,000 on 100,000 of work: a 20,000 write-down
  assert.deepEqual(obj(allocateFees({ ...base, feesBilledMinor: 80_000 })), { A: 48_000, B: 24_000, C: 8_000 }, 'original split');
  assert.deepEqual(obj(allocateFees({ ...base, feesBilledMinor: 80_000, allocateAdjustments: 'responsible' })), { A: 40_000, B: 30_000, C: 10_000 }, 'write-down borne by the responsible lawyer');
  assert.deepEqual(obj(allocateFees({ ...base, feesBilledMinor: 120_000, allocateAdjustments: 'selected', adjustmentsTimekeeperId: 'B' })), { A: 60_000, B: 50_000, C: 10_000 }, 'write-up credited to B');
  // origination 10% first, then the rest pro rata
  assert.deepEqual(obj(allocateFees({ ...base, origination: { timekeeperId: 'D', basisPoints: 1_000 } })), { A: 54_000, B: 27_000, C: 9_000, D: 10_000 });
  // fixed fee with no recorded time: all to the responsible lawyer
  assert.deepEqual(obj(allocateFees({ ...base, workByTimekeeper: new Map() })), { A: 100_000 });

  fc.assert(fc.property(
    fc.integer({ min: -1_000_000, max: 50_000_000 }),
    fc.array(fc.tuple(fc.constantFrom('A', 'B', 'C', 'D', 'E'), fc.integer({ min: 0, max: 5_000_000 })), { maxLength: 6 }),
    fc.constantFrom('pro_rata', 'responsible', 'selected') as fc.Arbitrary<'pro_rata' | 'responsible' | 'selected'>,
    fc.constantFrom('original_split', 'responsible', 'selected') as fc.Arbitrary<'original_split' | 'responsible' | 'selected'>,
    fc.option(fc.integer({ min: 0, max: 10_000 })),
    (fees, entries, feeRule, adjRule, orig) => {
      const m = new Map<string, number>();
      for (const [k, v] of entries) m.set(k, (m.get(k) ?? 0) + v);
      const out = allocateFees({
        feesBilledMinor: fees, workByTimekeeper: m, allocateFees: feeRule, allocateAdjustments: adjRule, responsibleTimekeeperId: 'A',
        feesTimekeeperId: 'B', adjustmentsTimekeeperId: 'C', origination: orig === null ? null : { timekeeperId: 'E', basisPoints: orig },
      });
      assert.equal([...out.values()].reduce((a, b) => a + b, 0), fees);
    },
  ));
});

test('selection: up-to date, filters, toggles, hidden items and expenses-only', () => {
  const items: SelectableItem[] = [
    { id: 't1', kind: 'time', date: '2026-01-10', timekeeperId: 'A', code: null, behaviour: 'bill' },
    { id: 't2', kind: 'time', date: '2026-02-10', timekeeperId: 'B', code: null, behaviour: 'bill' },
    { id: 't3', kind: 'time', date: '2026-01-15', timekeeperId: 'A', code: null, behaviour: 'hide' },
    { id: 't4', kind: 'time', date: '2026-01-20', timekeeperId: 'B', code: null, behaviour: 'no_charge' },
    { id: 'd1', kind: 'disbursement', date: '2026-01-05', timekeeperId: null, code: 'COURT', behaviour: 'bill' },
    { id: 'd2', kind: 'disbursement', date: '2026-01-25', timekeeperId: null, code: 'COPY', behaviour: 'bill' },
    { id: 'f1', kind: 'fixed_charge', date: '2026-01-12', timekeeperId: null, code: 'LEASE', behaviour: 'bill' },
  ];
  const ids = (f: Parameters<typeof selectItems>[1]) => selectItems(items, f).map((i) => i.id);
  assert.deepEqual(ids({ upTo: '2026-01-31' }), ['t1', 't4', 'd1', 'd2', 'f1'], 'hidden never appears; later work waits');
  assert.deepEqual(ids({ upTo: '2026-02-28', time: { timekeeperIds: ['B'] } }), ['t2', 't4', 'd1', 'd2', 'f1']);
  assert.deepEqual(ids({ upTo: '2026-02-28', time: { from: '2026-01-12', to: '2026-01-31' } }), ['t4', 'd1', 'd2', 'f1']);
  assert.deepEqual(ids({ upTo: '2026-02-28', disbursements: { codes: ['COURT'] } }), ['t1', 't2', 't4', 'd1', 'f1']);
  assert.deepEqual(ids({ upTo: '2026-02-28', disbursements: { from: '2026-01-10' } }), ['t1', 't2', 't4', 'd2', 'f1']);
  assert.deepEqual(ids({ upTo: '2026-02-28', excludedIds: new Set(['t1', 'd2']) }), ['t2', 't4', 'd1', 'f1'], 'toggled out: deferred');
  assert.deepEqual(ids({ upTo: '2026-02-28', onlyExpenses: true }), ['d1', 'd2']);
});

test('fixed-fee schedule rows due by the invoice date and not yet billed', () => {
  const rows = [
    { rowId: 'r1', billOn: '2026-01-01', invoiceNumber: '12.8.1' },
    { rowId: 'r2', billOn: '2026-02-01', invoiceNumber: null },
    { rowId: 'r3', billOn: '2026-03-01', invoiceNumber: null },
  ];
  assert.deepEqual(dueScheduleRows(rows, '2026-02-15').map((r) => r.rowId), ['r2']);
  assert.deepEqual(dueScheduleRows(rows, '2026-03-01').map((r) => r.rowId), ['r2', 'r3']);
  assert.deepEqual(dueScheduleRows(rows, '2025-12-31'), []);
});
