/**
 * Interest on overdue bills by the firm's policy (seed 003: "Interest can be automatically
 * calculated according to the practice policy or charged manually").
 *
 * The policy (firm settings): an annual rate and a number of grace days. A bill of the same
 * matter is overdue when it still has a balance and the invoice date is past its due date
 * plus the grace days. Interest is simple: outstanding balance x rate x days / 365, rounded
 * half up, for each day after interest started (due date + grace days), up to the new bill's
 * invoice date, that no other live bill has charged. Each day of each overdue bill is
 * charged once: a charge records the days it covers, and only charges on live bills count.
 * The days left are usually one period, but not always: an older bill re-drafted after a
 * newer one charged later days, or a deleted bill's days between two live bills' charges,
 * leave gaps before other charges; each gap is a charge of its own.
 */
import { assert } from '../../../shared/assert.ts';
import { addDays, daysBetween, overdueInterestMinor } from './rules.ts';

export interface InterestPolicy {
  enabled: boolean;
  annualRateBasisPoints: number;
  graceDays: number;
}

export interface OverdueCandidate {
  billId: string;
  billNumber: string;
  dueDate: string;
  outstandingMinor: number;
  /** The days other live bills have charged on it: each from (exclusive) through (inclusive). */
  charged: readonly ChargedDays[];
}

export interface ChargedDays { from: string; through: string }

export interface InterestCharge {
  overdueBillId: string;
  overdueBillNumber: string;
  /** Exclusive: the charge covers the days after this one. */
  fromDate: string;
  /** Inclusive: the new bill's invoice date. */
  throughDate: string;
  balanceMinor: number;
  amountMinor: number;
}

/** At most this many overdue bills are looked at for one bill. */
export const MAX_OVERDUE_BILLS = 1_000;
/** At most this many charges read for one overdue bill (a monthly bill for 80 years). */
export const MAX_CHARGES_PER_OVERDUE_BILL = 1_000;

/** The periods from `start` (exclusive) through `end` (inclusive) that none of the charged ranges covers, in date order. */
export function uncoveredPeriods(start: string, end: string, charged: readonly ChargedDays[]): ChargedDays[] {
  assert(charged.length <= MAX_CHARGES_PER_OVERDUE_BILL, `at most ${MAX_CHARGES_PER_OVERDUE_BILL} charges on one overdue bill`);
  const out: ChargedDays[] = [];
  let cursor = start;
  for (const c of [...charged].sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0))) {
    assert(c.from < c.through, 'a charge covers at least one day');
    if (cursor >= end) break;
    if (c.through <= cursor) continue;
    const gapEnd = c.from < end ? c.from : end;
    if (cursor < gapEnd) out.push({ from: cursor, through: gapEnd });
    cursor = c.through;
  }
  if (cursor < end) out.push({ from: cursor, through: end });
  return out;
}

/** The interest the policy charges on the given bills at the invoice date, one charge per bill that accrues any. */
export function policyInterest(policy: InterestPolicy, candidates: readonly OverdueCandidate[], invoiceDate: string): InterestCharge[] {
  assert(candidates.length <= MAX_OVERDUE_BILLS, `at most ${MAX_OVERDUE_BILLS} overdue bills`);
  if (!policy.enabled || policy.annualRateBasisPoints === 0) return [];
  const out: InterestCharge[] = [];
  for (const c of [...candidates].sort((a, b) => (a.dueDate < b.dueDate ? -1 : a.dueDate > b.dueDate ? 1 : a.billNumber < b.billNumber ? -1 : 1))) {
    assert(Number.isSafeInteger(c.outstandingMinor), 'outstanding must be an integer');
    if (c.outstandingMinor <= 0) continue;
    const starts = addDays(c.dueDate, policy.graceDays);
    for (const gap of uncoveredPeriods(starts, invoiceDate, c.charged)) {
      assert(daysBetween(gap.from, gap.through) > 0, 'a period has days');
      const amountMinor = overdueInterestMinor({ balanceMinor: c.outstandingMinor, annualRateBasisPoints: policy.annualRateBasisPoints, dueDate: gap.from, asOf: gap.through, graceDays: 0 });
      // Rounds to nothing: no charge, the days stay chargeable.
      if (amountMinor === 0) continue;
      out.push({ overdueBillId: c.billId, overdueBillNumber: c.billNumber, fromDate: gap.from, throughDate: gap.through, balanceMinor: c.outstandingMinor, amountMinor });
    }
  }
  return out;
}

/** The total of the charges (what the bill's interest line carries). */
export function interestTotalMinor(charges: readonly InterestCharge[]): number {
  let total = 0;
  for (const c of charges) total += c.amountMinor;
  assert(Number.isSafeInteger(total), 'interest total overflows');
  return total;
}
