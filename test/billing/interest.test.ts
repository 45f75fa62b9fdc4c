import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { interestTotalMinor, policyInterest } from '../../src/modules/billing/domain/interest.ts';
import type { InterestPolicy, OverdueCandidate } from '../../src/modules/billing/domain/interest.ts';
import { addDays } from '../../src/modules/billing/domain/rules.ts';

const TEN_PCT: InterestPolicy = { enabled: true, annualRateBasisPoints: 1_000, graceDays: 0 };
const bill = (over: Partial<OverdueCandidate> = {}): OverdueCandidate => ({
  billId: 'b1', billNumber: '12.8.1', dueDate: '2026-01-31', outstandingMinor: 1_000_000, charged: [], ...over,
});

test('policy interest: worked figures (simple interest, half up, days after the start)', () => {
  const cases: { name: string; policy?: InterestPolicy; bills: OverdueCandidate[]; invoiceDate: string; want: { from: string; amount: number }[] }[] = [
    // 10,000.00 at 10% for 30 days: 1,000,000 x 0.10 x 30 / 365 = 8,219.178 -> 8,219
    { name: '30 days at 10%', bills: [bill()], invoiceDate: '2026-03-02', want: [{ from: '2026-01-31', amount: 8_219 }] },
    // 14 grace days: interest starts 2026-02-14; 16 days -> 4,383.56 -> 4,384
    { name: 'grace days push the start', policy: { ...TEN_PCT, graceDays: 14 }, bills: [bill()], invoiceDate: '2026-03-02', want: [{ from: '2026-02-14', amount: 4_384 }] },
    { name: 'inside the grace period nothing', policy: { ...TEN_PCT, graceDays: 14 }, bills: [bill()], invoiceDate: '2026-02-14', want: [] },
    // charged through 2026-02-20 by an earlier bill: 10 more days -> 2,739.73 -> 2,740
    { name: 'days charged before are not charged again', bills: [bill({ charged: [{ from: '2026-01-31', through: '2026-02-20' }] })], invoiceDate: '2026-03-02', want: [{ from: '2026-02-20', amount: 2_740 }] },
    { name: 'charged up to the invoice date: nothing', bills: [bill({ charged: [{ from: '2026-01-31', through: '2026-03-02' }] })], invoiceDate: '2026-03-02', want: [] },
    { name: 'a charge before the start does not move it back', policy: { ...TEN_PCT, graceDays: 14 }, bills: [bill({ charged: [{ from: '2026-01-31', through: '2026-02-01' }] })], invoiceDate: '2026-03-02', want: [{ from: '2026-02-14', amount: 4_384 }] },
    { name: 'paid bills: nothing', bills: [bill({ outstandingMinor: 0 })], invoiceDate: '2026-03-02', want: [] },
    { name: 'credit balance: nothing', bills: [bill({ outstandingMinor: -5_000 })], invoiceDate: '2026-03-02', want: [] },
    // 1.00 for 1 day at 10%: 0.0274 -> 0: no charge, the days stay chargeable
    { name: 'rounds to nothing: no charge', bills: [bill({ outstandingMinor: 100 })], invoiceDate: '2026-02-01', want: [] },
    { name: 'policy off', policy: { ...TEN_PCT, enabled: false }, bills: [bill()], invoiceDate: '2026-03-02', want: [] },
    { name: 'rate zero', policy: { ...TEN_PCT, annualRateBasisPoints: 0 }, bills: [bill()], invoiceDate: '2026-03-02', want: [] },
    // two bills, oldest due first: 5,000.00 for 59 days at 10% = 80.82 (8,082 minor); 10,000.00 for 30 days = 82.19 (8,219)
    { name: 'several bills, oldest due first', bills: [bill(), bill({ billId: 'b0', billNumber: '12.8.0', dueDate: '2026-01-02', outstandingMinor: 500_000 })], invoiceDate: '2026-03-02',
      want: [{ from: '2026-01-02', amount: 8_082 }, { from: '2026-01-31', amount: 8_219 }] },
    // An older bill re-drafted after a newer one charged 2026-03-02 .. 2026-04-01: its own days are still owed.
    // 10,000.00 at 10% for 30 days (2026-01-31 .. 2026-03-02) = 8,219
    { name: 'later days charged by a newer bill: the earlier days are still charged', bills: [bill({ charged: [{ from: '2026-03-02', through: '2026-04-01' }] })], invoiceDate: '2026-03-02',
      want: [{ from: '2026-01-31', amount: 8_219 }] },
    // A deleted bill's days between two live charges: the gap 2026-02-10 .. 2026-02-20 (10 days: 2,740) and the days after
    // the last charge, 2026-03-02 .. 2026-03-12 (10 days: 2,740).
    { name: 'a gap between two charges and the days after the last', bills: [bill({ charged: [{ from: '2026-02-20', through: '2026-03-02' }, { from: '2026-01-31', through: '2026-02-10' }] })], invoiceDate: '2026-03-12',
      want: [{ from: '2026-02-10', amount: 2_740 }, { from: '2026-03-02', amount: 2_740 }] },
    { name: 'overlapping charges count once', bills: [bill({ charged: [{ from: '2026-01-31', through: '2026-02-20' }, { from: '2026-02-10', through: '2026-02-25' }] })], invoiceDate: '2026-03-07',
      want: [{ from: '2026-02-25', amount: 2_740 }] },
  ];
  for (const c of cases) {
    const got = policyInterest(c.policy ?? TEN_PCT, c.bills, c.invoiceDate);
    assert.deepEqual(got.map((g) => ({ from: g.fromDate, amount: g.amountMinor })), c.want, c.name);
    for (const g of got) assert.ok(g.throughDate <= c.invoiceDate, c.name);
    assert.equal(interestTotalMinor(got), c.want.reduce((s, w) => s + w.amount, 0), c.name);
  }
});

test('policy interest: successive bills charge every day once, within a cent per bill of one charge over the whole period', () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 50_000_000 }), fc.integer({ min: 1, max: 3_000 }), fc.integer({ min: 0, max: 60 }),
    fc.array(fc.integer({ min: 1, max: 90 }), { minLength: 1, maxLength: 8 }),
    (balance, rateBp, grace, gaps) => {
      const policy = { enabled: true, annualRateBasisPoints: rateBp, graceDays: grace };
      const start = addDays('2026-01-31', grace);
      let chargedThrough: string | null = null;
      const charged: { from: string; through: string }[] = [];
      let day = start;
      let total = 0;
      const ranges: [string, string][] = [];
      for (const gap of gaps) {
        day = addDays(day, gap);
        const charges = policyInterest(policy, [bill({ outstandingMinor: balance, charged })], day);
        for (const c of charges) {
          ranges.push([c.fromDate, c.throughDate]);
          total += c.amountMinor;
          chargedThrough = c.throughDate;
          charged.push({ from: c.fromDate, through: c.throughDate });
        }
      }
      // Disjoint, ordered day ranges starting at the start.
      for (let i = 0; i < ranges.length; i++) {
        assert.ok(ranges[i]![0] < ranges[i]![1]);
        if (i === 0) assert.equal(ranges[0]![0], start);
        else assert.equal(ranges[i]![0], ranges[i - 1]![1]);
      }
      // One charge over the days charged, against the sum of the pieces: rounding only.
      if (chargedThrough !== null) {
        const whole = policyInterest(policy, [bill({ outstandingMinor: balance })], chargedThrough);
        assert.ok(Math.abs(interestTotalMinor(whole) - total) <= ranges.length, `${interestTotalMinor(whole)} vs ${total}`);
      }
    },
  ), { numRuns: 300 });
});

test('policy interest: whatever other bills charged, in any order or overlap, every day from the start to the invoice date is charged exactly once', () => {
  // A balance and rate where one day's interest is never under half a minor unit, so no day is left uncharged by rounding.
  fc.assert(fc.property(
    fc.integer({ min: 1_000_000, max: 50_000_000 }), fc.integer({ min: 100, max: 3_000 }), fc.integer({ min: 0, max: 30 }),
    fc.array(fc.tuple(fc.integer({ min: -20, max: 200 }), fc.integer({ min: 1, max: 60 })), { maxLength: 10 }),
    fc.integer({ min: 1, max: 250 }),
    (balance, rateBp, grace, others, invoiceOffset) => {
      const policy = { enabled: true, annualRateBasisPoints: rateBp, graceDays: grace };
      const due = '2026-01-31';
      const start = addDays(due, grace);
      const invoiceDate = addDays(due, invoiceOffset);
      const charged = others.map(([f, n]) => ({ from: addDays(due, f), through: addDays(due, f + n) }));
      const got = policyInterest(policy, [bill({ outstandingMinor: balance, charged })], invoiceDate);
      // Count, for each day after the due date up to the invoice date, the charges covering it (others' and this bill's).
      const count = new Map<string, number>();
      const cover = (from: string, through: string) => { for (let d = addDays(from, 1); d <= through; d = addDays(d, 1)) count.set(d, (count.get(d) ?? 0) + 1); };
      for (const g of got) {
        assert.ok(g.fromDate >= start && g.throughDate <= invoiceDate && g.fromDate < g.throughDate, `${g.fromDate}..${g.throughDate}`);
        assert.ok(g.amountMinor > 0);
        cover(g.fromDate, g.throughDate);
      }
      const mine = new Map(count);
      for (const c of charged) cover(c.from, c.through);
      for (let d = addDays(start, 1); d <= invoiceDate; d = addDays(d, 1)) assert.ok((count.get(d) ?? 0) >= 1, `day ${d} uncharged`);
      // This bill never charges a day another bill charged, nor a day twice.
      for (const [d, n] of mine) {
        assert.equal(n, 1, `day ${d} charged twice by this bill`);
        assert.ok(!charged.some((c) => d > c.from && d <= c.through), `day ${d} already charged by another bill`);
      }
    },
  ), { numRuns: 300 });
});
