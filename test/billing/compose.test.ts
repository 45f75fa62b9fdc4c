import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { composeBill, discountShares } from '../../src/modules/billing/domain/compose.ts';
import type { QuoteChoice } from '../../src/modules/billing/domain/rules.ts';
import type { ComposeFirm, ComposeItem, ComposeOptions, ComposeRequest } from '../../src/modules/billing/domain/compose.ts';
import { HOURLY_OPTIONS } from './compose-fixtures.ts';

const firm: ComposeFirm = { taxRates: [{ code: 'GST', basisPoints: 1_000 }, { code: 'EXEMPT', basisPoints: 0 }], defaultFeeTaxCode: 'GST', taxRounding: 'per_line', paymentTermsDays: 30 };
const matter = { responsibleTimekeeperId: 'PP', currency: 'USD' };
const options = HOURLY_OPTIONS;
const time = (id: string, tk: string, minutes: number, rate: number, extra: Partial<ComposeItem> = {}): ComposeItem => ({
  id, kind: 'time', date: '2026-01-10', timekeeperId: tk, code: null, description: `work ${id}`, minutes, rateMinor: rate,
  amountMinor: Math.round((minutes * rate) / 60), behaviour: 'bill', taxCode: null, ...extra,
});
const disb = (id: string, amount: number, extra: Partial<ComposeItem> = {}): ComposeItem => ({
  id, kind: 'disbursement', date: '2026-01-12', timekeeperId: null, code: 'COURT', description: `cost ${id}`, minutes: null, rateMinor: null,
  amountMinor: amount, behaviour: 'bill', taxCode: 'EXEMPT', ...extra,
});
const req: ComposeRequest = { invoiceDate: '2026-01-31', upTo: '2026-01-31' };
const opts = (o: Partial<ComposeOptions>): ComposeOptions => ({ ...options, ...o });
const amounts = (b: ReturnType<typeof composeBill>) => Object.fromEntries(b.lines.map((l) => [l.key.includes(':') ? l.kind : l.key, l.amountMinor]));

test('hourly bill: items, no-charge at zero, hidden never shown, tax per line, due date', () => {
  const b = composeBill(matter, options, firm, [
    time('t1', 'PP', 90, 35_000), time('t2', 'AA', 30, 20_000), time('t3', 'AA', 60, 20_000, { behaviour: 'no_charge' }),
    time('t4', 'AA', 60, 20_000, { behaviour: 'hide' }), disb('d1', 12_345), time('late', 'PP', 60, 35_000, { date: '2026-02-01' }),
  ], req);
  assert.deepEqual(amounts(b), { t1: 52_500, t2: 10_000, t3: 0, d1: 12_345 });
  assert.equal(b.lines.find((l) => l.key === 't3')!.noCharge, true);
  assert.deepEqual(b.totals, { feesMinor: 62_500, fixedChargesMinor: 0, disbursementsMinor: 12_345, discountMinor: 0, interestMinor: 0, taxMinor: 6_250, totalMinor: 81_095 });
  assert.equal(b.dueDate, '2026-03-02');
  assert.deepEqual(b.itemIds.sort(), ['d1', 't1', 't2', 't3']);
  assert.deepEqual(b.feeAllocation.sort((a, c) => a.timekeeperId.localeCompare(c.timekeeperId)), [{ timekeeperId: 'AA', amountMinor: 10_000 }, { timekeeperId: 'PP', amountMinor: 52_500 }]);
});

test('quote below WIP, bill the quote: fees written down pro rata; costs untouched', () => {
  const b = composeBill(matter, opts({ quote: { amountMinor: 50_000, includes: 'fees', ifWipBelow: 'wip_only', ifWipAbove: 'bill_quote' } }), firm,
    [time('t1', 'PP', 120, 30_000), time('t2', 'AA', 120, 20_000), disb('d1', 5_000)], req);
  assert.deepEqual(amounts(b), { t1: 30_000, t2: 20_000, d1: 5_000 });
  assert.equal(b.quote?.position, 'above');
  assert.equal(b.totals.feesMinor, 50_000);
  // the 50,000 write-down on 100,000 of work is split by original split
  assert.deepEqual(Object.fromEntries(b.feeAllocation.map((a) => [a.timekeeperId, a.amountMinor])), { PP: 30_000, AA: 20_000 });
});

test('a quote that includes costs leaves each disbursement at what was paid: the fees carry the difference, or a line of its own', () => {
  const items = [time('t1', 'PP', 120, 30_000), time('t2', 'AA', 60, 20_000), disb('d1', 4_817), disb('d2', 112_114)];
  const cases: { includes: 'fees_and_costs' | 'costs'; quote: number; below: QuoteChoice; above: QuoteChoice; expect: Record<string, number> }[] = [
    // fees 80,000 + costs 116,931 = 196,931 below a 250,000 quote: billed 250,000, the 53,069 on the fees (60,000 : 20,000).
    { includes: 'fees_and_costs', quote: 250_000, below: 'bill_quote', above: 'wip_only', expect: { t1: 99_802, t2: 33_267, d1: 4_817, d2: 112_114 } },
    // above a 150,000 quote: fees written down by 46,931 to 33,069.
    { includes: 'fees_and_costs', quote: 150_000, below: 'wip_only', above: 'bill_quote', expect: { t1: 24_802, t2: 8_267, d1: 4_817, d2: 112_114 } },
    // a quote below the costs alone: fees to nothing would not reach it, so a negative "As quoted" fee line carries it.
    { includes: 'fees_and_costs', quote: 100_000, below: 'wip_only', above: 'bill_quote', expect: { t1: 60_000, t2: 20_000, d1: 4_817, d2: 112_114, quote_fee: -96_931 } },
    // costs only: an "As quoted" cost line for the difference; the fees as recorded.
    { includes: 'costs', quote: 150_000, below: 'bill_quote', above: 'wip_only', expect: { t1: 60_000, t2: 20_000, d1: 4_817, d2: 112_114, adhoc_disbursement: 33_069 } },
  ];
  for (const c of cases) {
    const b = composeBill(matter, opts({ quote: { amountMinor: c.quote, includes: c.includes, ifWipBelow: c.below, ifWipAbove: c.above } }), { ...firm, defaultFeeTaxCode: 'EXEMPT' }, items, req);
    assert.deepEqual(amounts(b), c.expect, `${c.includes} ${c.quote}`);
    assert.equal(b.totals.totalMinor, c.quote + (c.includes === 'costs' ? 80_000 : 0), `${c.includes} ${c.quote}: the quote is billed`);
  }
});

test('a discount is taken on fees net of credits: never more than they come to, each line bearing the same fraction', () => {
  const credit = { adHoc: [{ kind: 'fee' as const, description: 'Credit', amountMinor: -200_000, taxCode: 'EXEMPT', timekeeperId: null }] };
  const items = [time('t1', 'PP', 600, 30_000), time('t2', 'AA', 600, 24_500), disb('d1', 186_036)];
  const exempt = { ...firm, defaultFeeTaxCode: 'EXEMPT' };
  // 10% of 545,000 less the 200,000 credit: 34,500, not 54,500.
  const pct = composeBill(matter, opts({ discount: { kind: 'percentage', percentBasisPoints: 1_000, amountMinor: 0 }, feeReductions: { appearAsDiscount: true, hideLinePricing: false } }), exempt, items, { ...req, ...credit });
  assert.equal(pct.totals.discountMinor, 34_500);
  assert.equal(pct.netFeesMinor, 345_000 - 34_500);
  assert.equal(pct.totals.totalMinor, 345_000 - 34_500 + 186_036);
  // A fixed discount larger than the net fees stops at them: the disbursements are still due in full.
  const fixed = composeBill(matter, opts({ discount: { kind: 'fixed', percentBasisPoints: 0, amountMinor: 455_450 }, feeReductions: { appearAsDiscount: true, hideLinePricing: false } }), exempt, items, { ...req, ...credit });
  assert.equal(fixed.totals.discountMinor, 345_000);
  assert.equal(fixed.totals.totalMinor, 186_036);
  assert.equal(fixed.netFeesMinor, 0);
  for (const a of fixed.feeAllocation) assert.ok(a.amountMinor >= 0, 'no timekeeper is allocated a negative fee');
  // Hidden in the lines: every line keeps its sign, written down by the same fraction.
  const hidden = composeBill(matter, opts({ discount: { kind: 'percentage', percentBasisPoints: 1_000, amountMinor: 0 } }), exempt, items, { ...req, ...credit });
  assert.deepEqual(amounts(hidden), { t1: 270_000, t2: 220_500, d1: 186_036, adhoc_fee: -180_000 });
  assert.equal(hidden.totals.totalMinor, 345_000 - 34_500 + 186_036);
});

test('a discount the bill cannot give in full is reported for the clerk: capped at the fees, or none when credits leave nothing to discount', () => {
  const items = [time('t1', 'PP', 600, 30_000), disb('d1', 10_000)];
  const credit = (amountMinor: number) => ({ adHoc: [{ kind: 'fee' as const, description: 'Credit', amountMinor, taxCode: null, timekeeperId: null }] });
  const fixed = (amountMinor: number) => ({ kind: 'fixed' as const, percentBasisPoints: 0, amountMinor });
  const pct = (percentBasisPoints: number) => ({ kind: 'percentage' as const, percentBasisPoints, amountMinor: 0 });
  const cases: { name: string; discount: ComposeOptions['discount']; extra?: Partial<ComposeRequest>; only?: ComposeItem[]; givenMinor: number; shortfall: { askedMinor: number | null; basisMinor: number; givenMinor: number } | null }[] = [
    { name: 'no discount', discount: { kind: 'none', percentBasisPoints: 0, amountMinor: 0 }, givenMinor: 0, shortfall: null },
    { name: 'fixed, under the fees', discount: fixed(50_000), givenMinor: 50_000, shortfall: null },
    { name: 'fixed, exactly the fees', discount: fixed(300_000), givenMinor: 300_000, shortfall: null },
    // The walk's case: a $999,999 discount on fees of $3,000 stops at $3,000 (the disbursement is never discounted).
    { name: 'fixed, over the fees', discount: fixed(99_999_900), givenMinor: 300_000, shortfall: { askedMinor: 99_999_900, basisMinor: 300_000, givenMinor: 300_000 } },
    { name: 'percentage, any size', discount: pct(10_000), givenMinor: 300_000, shortfall: null },
    { name: 'percentage, credits larger than the fees', discount: pct(1_000), extra: credit(-306_350), givenMinor: 0, shortfall: { askedMinor: null, basisMinor: -6_350, givenMinor: 0 } },
    { name: 'fixed, credits equal to the fees', discount: fixed(1_000), extra: credit(-300_000), givenMinor: 0, shortfall: { askedMinor: 1_000, basisMinor: 0, givenMinor: 0 } },
    { name: 'percentage 0', discount: pct(0), extra: credit(-400_000), givenMinor: 0, shortfall: null },
    // No fees at all (an expenses-only bill of a matter with a standing discount): nothing to announce.
    { name: 'no fees to discount', discount: fixed(1_000), only: [disb('d1', 10_000)], givenMinor: 0, shortfall: null },
    { name: 'no fees, a percentage', discount: pct(1_000), only: [disb('d1', 10_000)], givenMinor: 0, shortfall: null },
  ];
  for (const c of cases) {
    const b = composeBill(matter, opts({ discount: c.discount, feeReductions: { appearAsDiscount: true, hideLinePricing: false } }), firm, c.only ?? items, { ...req, ...c.extra });
    assert.deepEqual(b.discountShortfall, c.shortfall, c.name);
    assert.equal(b.totals.discountMinor, c.givenMinor, c.name);
  }
});

test('discountShares: signed lines bear the same fraction; the shares sum to the discount', () => {
  assert.deepEqual(discountShares(34_500, [300_000, 245_000, -200_000]), [30_000, 24_500, -20_000]);
  assert.deepEqual(discountShares(3, [1, 1, 1]), [1, 1, 1]);
  assert.deepEqual(discountShares(2, [1, 1, 1]), [1, 1, 0], "units left go to the first of equal remainders");
  assert.deepEqual(discountShares(1, [3, -1]), [2, -1], 'exact shares 1.5 and -0.5: the unit left goes to the first of equal remainders');
  fc.assert(fc.property(fc.array(fc.integer({ min: -5_000_000, max: 5_000_000 }), { minLength: 1, maxLength: 20 }), fc.integer({ min: 0, max: 10_000 }), (amounts, bp) => {
    const net = amounts.reduce((a, b) => a + b, 0);
    fc.pre(net > 0);
    const d = Math.floor((net * bp) / 10_000);
    const shares = discountShares(d, amounts);
    assert.equal(shares.reduce((a, b) => a + b, 0), d, 'the shares sum to the discount');
    shares.forEach((s, i) => {
      const a = amounts[i]!;
      assert.ok(Math.abs(s - (d * a) / net) < 1, 'each share within a unit of its exact fraction');
      if (a === 0) assert.equal(s, 0, 'a zero line bears nothing');
      assert.ok(Math.abs(s) <= Math.abs(a), 'no share larger than its line');
      assert.ok(a >= 0 ? s >= 0 : s <= 0, 'a credit bears a negative share');
    });
  }), { numRuns: 500 });
});

test('quote with no work recorded yet: an "As quoted" fee line for the responsible lawyer', () => {
  const b = composeBill(matter, opts({ quote: { amountMinor: 80_000, includes: 'fees', ifWipBelow: 'bill_quote', ifWipAbove: 'wip_only' } }), firm, [disb('d1', 5_000)], req);
  const q = b.lines.find((l) => l.kind === 'quote_fee')!;
  assert.equal(q.amountMinor, 80_000);
  assert.equal(q.timekeeperId, 'PP');
  assert.equal(b.totals.feesMinor, 80_000);
});

test('fixed fee every cycle: recorded time written to the fixed fee; no time: a fixed-fee line', () => {
  const ff = opts({ arrangement: 'fixed_fee', quote: { amountMinor: 100_000, includes: 'fees', ifWipBelow: 'bill_quote', ifWipAbove: 'bill_quote' } });
  const withTime = composeBill(matter, ff, firm, [time('t1', 'PP', 60, 30_000), time('t2', 'AA', 60, 10_000)], req);
  assert.deepEqual(amounts(withTime), { t1: 75_000, t2: 25_000 });
  const noTime = composeBill(matter, ff, firm, [disb('d1', 1_000)], { ...req, fixedFeeAmountMinor: 90_000 });
  assert.deepEqual(amounts(noTime), { d1: 1_000, fixed_fee: 90_000 });
});

test('fixed fee custom schedule: rows due by the invoice date are billed and reported', () => {
  const ff = opts({ arrangement: 'fixed_fee', fixedFee: { mode: 'custom_schedule', schedule: [
    { rowId: 'r1', amountMinor: 9_000, description: 'Instalment 1', billOn: '2026-01-01', invoiceNumber: '12.8.1' },
    { rowId: 'r2', amountMinor: 9_000, description: 'Instalment 2', billOn: '2026-01-31', invoiceNumber: null },
    { rowId: 'r3', amountMinor: 1_000, description: 'Instalment 3', billOn: '2026-02-28', invoiceNumber: null },
  ] } });
  const b = composeBill(matter, ff, firm, [], req);
  assert.deepEqual(b.scheduleRowIds, ['r2']);
  assert.deepEqual(b.lines.map((l) => [l.description, l.amountMinor, l.scheduleRowId]), [['Instalment 2', 9_000, 'r2']]);
  // Nothing due yet: recorded time waits for the next instalment instead of being written off.
  const early = composeBill(matter, ff, firm, [time('t1', 'PP', 60, 30_000, { date: '2025-12-20' }), disb('d1', 700, { date: '2025-12-21' })], { invoiceDate: '2025-12-31', upTo: '2025-12-31' });
  assert.deepEqual(amounts(early), { d1: 700 });
  assert.deepEqual(early.itemIds, ['d1']);
});

test('discount: on fees and products only; as a line, hidden in the lines, or time-sensitive', () => {
  const items = [time('t1', 'PP', 60, 30_000), time('t2', 'AA', 60, 10_000), disb('d1', 10_000)];
  const pct = { kind: 'percentage' as const, percentBasisPoints: 1_000, amountMinor: 0 };
  const asLine = composeBill(matter, opts({ discount: pct, feeReductions: { appearAsDiscount: true, hideLinePricing: false } }), firm, items, req);
  assert.equal(asLine.totals.discountMinor, 4_000);
  assert.equal(asLine.lines.find((l) => l.kind === 'discount')!.amountMinor, -4_000);
  assert.equal(asLine.totals.taxMinor, 3_600, 'tax on the discounted fees');
  assert.equal(asLine.totals.totalMinor, 40_000 + 10_000 - 4_000 + 3_600);
  const hidden = composeBill(matter, opts({ discount: pct }), firm, items, req);
  assert.deepEqual(amounts(hidden), { t1: 27_000, t2: 9_000, d1: 10_000 }, 'written into the fee lines, disbursements untouched');
  assert.equal(hidden.totals.totalMinor, asLine.totals.totalMinor, 'same money either way');
  assert.equal(hidden.discount, null, 'not announced as a discount (seed 002: it appears as one only with "Appear as discount"), so the bill and email say nothing of it');
  assert.deepEqual(asLine.discount && [asLine.discount.amountMinor, asLine.discount.validUntil], [4_000, null]);
  const timed = composeBill(matter, options, firm, items, { ...req, discount: { ...pct, validUntil: '2026-02-14' } });
  assert.equal(timed.discount?.validUntil, '2026-02-14');
  assert.equal(timed.discount?.undiscountedTotalMinor, 40_000 + 10_000 + 4_000, 'what is due after the discount expires');
  assert.match(timed.lines.find((l) => l.kind === 'discount')!.description, /if paid by 2026-02-14/);
});

test('a discount over fees taxed at different rates: one discount line per tax code, each with the tax it saves at that rate, summing exactly', () => {
  // 10% off 700.00 taxed at GST 10% and 300.00 exempt: -70.00 (GST, saving 7.00) and -30.00 (EXEMPT).
  const items = [time('t1', 'PP', 120, 35_000), time('t2', 'AA', 60, 30_000, { taxCode: 'EXEMPT' }), disb('d1', 10_000)];
  const pct = { kind: 'percentage' as const, percentBasisPoints: 1_000, amountMinor: 0 };
  for (const taxRounding of ['per_line', 'per_bill'] as const) {
    const b = composeBill(matter, opts({ discount: pct, feeReductions: { appearAsDiscount: true, hideLinePricing: false } }), { ...firm, taxRounding }, items, req);
    const discounts = b.lines.filter((l) => l.kind === 'discount').map((l) => [l.description, l.amountMinor, l.taxCode, l.taxMinor]);
    assert.deepEqual(discounts, [['Discount (EXEMPT)', -3_000, 'EXEMPT', 0], ['Discount (GST)', -7_000, 'GST', -700]], taxRounding);
    assert.equal(b.totals.discountMinor, 10_000);
    assert.equal(b.totals.taxMinor, 7_000 - 700);
    assert.equal(b.totals.totalMinor, 100_000 + 10_000 - 10_000 + 6_300);
  }
  // Over one rate it stays one line (no code of its own), as before.
  const one = composeBill(matter, opts({ discount: pct, feeReductions: { appearAsDiscount: true, hideLinePricing: false } }), firm, [time('t1', 'PP', 60, 30_000), time('t2', 'AA', 60, 10_000)], req);
  assert.deepEqual(one.lines.filter((l) => l.kind === 'discount').map((l) => [l.description, l.amountMinor, l.taxCode, l.taxMinor]), [['Discount', -4_000, null, -400]]);
});

test('property: discount lines sum to the discount and to the tax it saves, whatever the rates and rounding', () => {
  fc.assert(fc.property(
    fc.array(fc.record({ minutes: fc.integer({ min: 1, max: 600 }), rate: fc.integer({ min: 1, max: 100_000 }), exempt: fc.boolean() }), { minLength: 1, maxLength: 12 }),
    fc.integer({ min: 1, max: 10_000 }), fc.constantFrom('per_line' as const, 'per_bill' as const),
    (rows, bp, taxRounding) => {
      const items = rows.map((r, i) => time(`t${i}`, i % 2 ? 'AA' : 'PP', r.minutes, r.rate, r.exempt ? { taxCode: 'EXEMPT' } : {}));
      const b = composeBill(matter, opts({ discount: { kind: 'percentage', percentBasisPoints: bp, amountMinor: 0 }, feeReductions: { appearAsDiscount: true, hideLinePricing: false } }), { ...firm, taxRounding }, items, req);
      const d = b.lines.filter((l) => l.kind === 'discount');
      assert.equal(0 - d.reduce((s2, l) => s2 + l.amountMinor, 0), b.totals.discountMinor);
      assert.equal(b.lines.reduce((s2, l) => s2 + l.taxMinor, 0), b.totals.taxMinor);
      assert.equal(b.lines.reduce((s2, l) => s2 + l.amountMinor + l.taxMinor, 0), b.totals.totalMinor);
      assert.ok(new Set(d.map((l) => l.taxCode)).size === d.length, 'one line per code');
    },
  ), { numRuns: 300 });
});

test('the clerk writes a timekeeper up or down: that timekeeper\'s items keep their proportions', () => {
  const b = composeBill(matter, options, firm, [time('t1', 'AA', 60, 10_000), time('t2', 'AA', 120, 10_000), time('t3', 'PP', 60, 30_000)], { ...req, writeTo: { timekeeper: { AA: 10_000 } } });
  assert.deepEqual(amounts(b), { t1: 3_333, t2: 6_667, t3: 30_000 });
  assert.throws(() => composeBill(matter, options, firm, [time('t1', 'AA', 60, 10_000)], { ...req, writeTo: { timekeeper: { ZZ: 1 } } }), /no billable time for timekeeper ZZ/);
});

test('retainer replenishment through the composer: seed 002 example', () => {
  const o = opts({ retainerReplenishment: { enabled: true, minimumBalanceMinor: 500_000, triggerMinor: 300_000 } });
  const b = composeBill(matter, o, { ...firm, defaultFeeTaxCode: 'EXEMPT' }, [time('t1', 'PP', 600, 35_000)], { ...req, retainer: { balanceMinor: 600_000, appliesToBill: true } });
  assert.equal(b.totals.totalMinor, 350_000);
  assert.equal(b.retainerRequestMinor, 250_000);
  assert.equal(b.retainerAppliedMinor, 350_000, 'the retainer pays the bill: that is why its balance falls to 2,500');
});

test('the general retainer pays what it holds of the bill, and the top-up is reckoned from what is left of it (seed 002, and the cases around it)', () => {
  // [balance, applies to the bill, minimum, trigger, bill total] -> [paid from the retainer, top-up asked]
  const cases: [number, boolean, number, number, number, number, number][] = [
    [600_000, true, 500_000, 300_000, 350_000, 350_000, 250_000], // seed 002: 6,000 pays 3,500, 2,500 left, below the 3,000 trigger
    [600_000, false, 500_000, 300_000, 350_000, 0, 0], // not applied: 6,000 stays above the trigger
    [100_000, true, 500_000, 200_000, 126_220, 100_000, 500_000], // 1,000 pays part of 1,262.20: 262.20 left to pay, 5,000 to reach the minimum
    [100_000, false, 500_000, 200_000, 126_220, 0, 400_000], // kept: 1,000 is under the trigger, 4,000 to reach the minimum
    [0, true, 500_000, 200_000, 126_220, 0, 500_000], // nothing held: nothing paid
    [900_000, true, 500_000, 300_000, 350_000, 350_000, 0], // 5,500 left, above the trigger
  ];
  for (const [balance, applies, min, trigger, total, paid, asked] of cases) {
    const o = opts({ retainerReplenishment: { enabled: true, minimumBalanceMinor: min, triggerMinor: trigger } });
    const b = composeBill(matter, o, { ...firm, defaultFeeTaxCode: 'EXEMPT' }, [disb('d1', total)], { ...req, retainer: { balanceMinor: balance, appliesToBill: applies } });
    const label = JSON.stringify({ balance, applies, min, trigger, total });
    assert.equal(b.totals.totalMinor, total, label);
    assert.deepEqual([b.retainerAppliedMinor, b.retainerRequestMinor], [paid, asked], label);
  }
  // No retainer on the matter: nothing paid, nothing asked.
  const none = composeBill(matter, options, firm, [disb('d1', 10_000)], req);
  assert.deepEqual([none.retainerAppliedMinor, none.retainerRequestMinor], [0, 0]);
});

test('property: the retainer pays no more than it holds nor more than the bill, nothing when it does not apply, and the total is left whole', () => {
  fc.assert(fc.property(fc.integer({ min: -100_000, max: 2_000_000 }), fc.boolean(), fc.array(fc.integer({ min: 0, max: 500_000 }), { minLength: 1, maxLength: 5 }), (balance, applies, amounts) => {
    const o = opts({ retainerReplenishment: { enabled: true, minimumBalanceMinor: 500_000, triggerMinor: 300_000 } });
    const b = composeBill(matter, o, { ...firm, defaultFeeTaxCode: 'EXEMPT' }, amounts.map((a, i) => disb(`d${i}`, a)), { ...req, retainer: { balanceMinor: balance, appliesToBill: applies } });
    const total = amounts.reduce((x, y) => x + y, 0);
    assert.equal(b.totals.totalMinor, total);
    assert.ok(b.retainerAppliedMinor >= 0 && b.retainerAppliedMinor <= Math.max(0, balance) && b.retainerAppliedMinor <= total);
    assert.equal(b.retainerAppliedMinor, applies ? Math.min(Math.max(0, balance), total) : 0);
  }));
});

test('expenses only: only disbursements are billed', () => {
  const b = composeBill(matter, opts({ onlyExpenses: true }), firm, [time('t1', 'PP', 60, 30_000), disb('d1', 2_000)], req);
  assert.deepEqual(amounts(b), { d1: 2_000 });
});

const itemArb = fc.record({
  kind: fc.constantFrom('time', 'disbursement', 'fixed_charge') as fc.Arbitrary<'time' | 'disbursement' | 'fixed_charge'>,
  tk: fc.constantFrom('PP', 'AA', 'LC'),
  minutes: fc.integer({ min: 0, max: 600 }),
  amount: fc.integer({ min: 0, max: 5_000_000 }),
  behaviour: fc.constantFrom('bill', 'bill', 'bill', 'hide', 'no_charge') as fc.Arbitrary<'bill' | 'hide' | 'no_charge'>,
  day: fc.integer({ min: 1, max: 28 }),
  tax: fc.constantFrom('GST', 'EXEMPT', null),
});

test('property: total = lines + tax, allocation = net fees, every item once, disbursements never discounted', () => {
  fc.assert(fc.property(
    fc.array(itemArb, { maxLength: 25 }),
    fc.record({
      quote: fc.option(fc.integer({ min: 0, max: 10_000_000 })),
      includes: fc.constantFrom('fees', 'fees_and_costs', 'costs') as fc.Arbitrary<'fees' | 'fees_and_costs' | 'costs'>,
      below: fc.constantFrom('bill_quote', 'quote_plus_wip', 'wip_only') as fc.Arbitrary<'bill_quote' | 'quote_plus_wip' | 'wip_only'>,
      above: fc.constantFrom('bill_quote', 'quote_plus_wip', 'wip_only') as fc.Arbitrary<'bill_quote' | 'quote_plus_wip' | 'wip_only'>,
      fixed: fc.boolean(),
      discountBp: fc.integer({ min: 0, max: 10_000 }),
      asLine: fc.boolean(),
      perBill: fc.boolean(),
      origination: fc.option(fc.integer({ min: 0, max: 5_000 })),
      rule: fc.constantFrom('pro_rata', 'responsible', 'selected') as fc.Arbitrary<'pro_rata' | 'responsible' | 'selected'>,
      adj: fc.constantFrom('original_split', 'responsible', 'selected') as fc.Arbitrary<'original_split' | 'responsible' | 'selected'>,
    }),
    (raw, o) => {
      const items: ComposeItem[] = raw.map((r, i) => ({
        id: `i${i}`, kind: r.kind, date: `2026-01-${String(r.day).padStart(2, '0')}`, timekeeperId: r.kind === 'time' ? r.tk : null,
        code: r.kind === 'fixed_charge' ? 'LEASE' : r.kind === 'disbursement' ? 'COURT' : null, description: 'x',
        minutes: r.kind === 'time' ? r.minutes : null, rateMinor: null, amountMinor: r.amount, behaviour: r.behaviour, taxCode: r.tax,
      }));
      const b = composeBill(matter, opts({
        arrangement: o.fixed ? 'fixed_fee' : 'hourly',
        quote: { amountMinor: o.quote, includes: o.includes, ifWipBelow: o.below, ifWipAbove: o.above },
        discount: { kind: o.discountBp ? 'percentage' : 'none', percentBasisPoints: o.discountBp, amountMinor: 0 },
        feeReductions: { appearAsDiscount: o.asLine, hideLinePricing: false },
        feeAllocation: { allocateFees: o.rule, feesTimekeeperId: 'AA', allocateAdjustments: o.adj, adjustmentsTimekeeperId: 'LC', originationEnabled: o.origination !== null, originatorTimekeeperId: 'PP', originationBasisPoints: o.origination ?? 0 },
      }), { ...firm, taxRounding: o.perBill ? 'per_bill' : 'per_line' }, items, { ...req, upTo: '2026-01-20' });
      const linesSum = b.lines.reduce((a, l) => a + l.amountMinor + l.taxMinor, 0);
      assert.equal(b.totals.totalMinor, linesSum, 'total is the sum of the lines and their tax');
      const fixedNothingDue = o.fixed && (o.quote ?? 0) === 0;
      const expectedIds = items.filter((i) => i.behaviour !== 'hide' && i.date <= '2026-01-20' && !(fixedNothingDue && i.kind === 'time')).map((i) => i.id).sort();
      assert.deepEqual([...b.itemIds].sort(), expectedIds, 'every eligible item exactly once; hidden and later items never');
      // Disbursements are billed at what was paid: never discounted, and never written by a quote (even one that includes costs).
      for (const l of b.lines) if (l.kind === 'disbursement') assert.equal(l.amountMinor, l.noCharge ? 0 : items.find((i) => i.id === l.itemId)!.amountMinor, 'disbursements are never discounted or written');
      // A quote brings what it covers to its target: fees, costs, or both.
      if (!o.fixed && o.quote !== null && b.quote) {
        const covered = b.lines.filter((l) => !l.noCharge && (o.includes === 'costs' ? l.kind === 'disbursement' || l.kind === 'adhoc_disbursement'
          : o.includes === 'fees' ? l.kind === 'time' || l.kind === 'fixed_charge' || l.kind === 'quote_fee'
            : l.kind !== 'discount'));
        if (!b.lines.some((l) => l.kind === 'discount') && o.discountBp === 0) assert.equal(covered.reduce((a, l) => a + l.amountMinor, 0), b.quote.targetMinor, 'the quote rule\'s amount is billed');
      }
      for (const l of b.lines) if (l.noCharge) assert.equal(l.amountMinor, 0);
      const alloc = b.feeAllocation.reduce((a, x) => a + x.amountMinor, 0);
      assert.equal(alloc, b.netFeesMinor, 'allocation sums to the net fees');
      const discountLine = b.lines.some((l) => l.kind === 'discount');
      if (!discountLine) assert.equal(b.netFeesMinor, b.totals.feesMinor);
      else assert.ok(b.netFeesMinor <= b.totals.feesMinor && b.totals.feesMinor - b.netFeesMinor <= b.totals.discountMinor, 'fees bear at most the whole discount');
    },
  ), { numRuns: 300 });
});

test('an ad hoc fee given a timekeeper is their work in the fee allocation; one without is an adjustment split by the matter\'s rule', () => {
  const adHoc = (amountMinor: number, timekeeperId: string | null) => ({ kind: 'fee' as const, description: 'Urgency surcharge', amountMinor, taxCode: 'EXEMPT', timekeeperId });
  const alloc = (b: ReturnType<typeof composeBill>) => Object.fromEntries(b.feeAllocation.filter((a) => a.amountMinor !== 0).map((a) => [a.timekeeperId, a.amountMinor]));
  const work = [time('t1', 'PP', 60, 30_000)];
  const table: [name: string, o: Partial<ComposeOptions['feeAllocation']>, adHocs: ReturnType<typeof adHoc>[], expected: Record<string, number>][] = [
    ['pro rata: AA\'s ad hoc fee is AA\'s', {}, [adHoc(20_000, 'AA')], { PP: 30_000, AA: 20_000 }],
    ['pro rata: without a timekeeper it follows the recorded work', {}, [adHoc(20_000, null)], { PP: 50_000 }],
    ['adjustments to LC: AA\'s ad hoc fee is still AA\'s work', { allocateAdjustments: 'selected', adjustmentsTimekeeperId: 'LC' }, [adHoc(20_000, 'AA')], { PP: 30_000, AA: 20_000 }],
    ['adjustments to LC: one without a timekeeper is LC\'s', { allocateAdjustments: 'selected', adjustmentsTimekeeperId: 'LC' }, [adHoc(20_000, null)], { PP: 30_000, LC: 20_000 }],
    ['all fees to the responsible timekeeper', { allocateFees: 'responsible' }, [adHoc(20_000, 'AA')], { PP: 50_000 }],
    ['a credit given to PP lessens PP\'s work', {}, [adHoc(-10_000, 'PP'), adHoc(20_000, 'AA')], { PP: 20_000, AA: 20_000 }],
  ];
  for (const [name, fa, adHocs, expected] of table) {
    const b = composeBill(matter, opts({ feeAllocation: { ...options.feeAllocation, ...fa } }), firm, work, { ...req, adHoc: adHocs });
    assert.deepEqual(alloc(b), expected, name);
    assert.equal(b.feeAllocation.reduce((s, a) => s + a.amountMinor, 0), b.totals.feesMinor, `${name}: the allocation sums to the fees`);
  }
});
