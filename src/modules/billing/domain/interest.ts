/**
 * Interest on overdue bills by the firm's policy (seed 003: "Interest can be automatically
 * calculated according to the practice policy or charged manually").
 *
 * The policy (firm settings): an annual rate and a number of grace days. A bill of the same
 * matter is overdue when it still has a balance and the invoice date is past its due date
 * plus the grace days. Interest is simple: outstanding balance x rate x days / 365, rounded
 * half up, for the days since interest started (due date + grace days) or since the day
 * the last interest charge on that bill ran to, whichever is later, up to the new bill's
 * invoice date. Each day of each overdue bill is charged once: a charge records the days it
 * covers, and only charges on live bills count.
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
  /** The last day already charged by a live bill's interest, or null. */
  chargedThrough: string | null;
}

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

/** The interest the policy charges on the given bills at the invoice date, one charge per bill that accrues any. */
export function policyInterest(policy: InterestPolicy, candidates: readonly OverdueCandidate[], invoiceDate: string): InterestCharge[] {
  assert(candidates.length <= MAX_OVERDUE_BILLS, `at most ${MAX_OVERDUE_BILLS} overdue bills`);
  if (!policy.enabled || policy.annualRateBasisPoints === 0) return [];
  const out: InterestCharge[] = [];
  for (const c of [...candidates].sort((a, b) => (a.dueDate < b.dueDate ? -1 : a.dueDate > b.dueDate ? 1 : a.billNumber < b.billNumber ? -1 : 1))) {
    assert(Number.isSafeInteger(c.outstandingMinor), 'outstanding must be an integer');
    if (c.outstandingMinor <= 0) continue;
    const starts = addDays(c.dueDate, policy.graceDays);
    const from = c.chargedThrough !== null && c.chargedThrough > starts ? c.chargedThrough : starts;
    if (daysBetween(from, invoiceDate) <= 0) continue;
    const amountMinor = overdueInterestMinor({ balanceMinor: c.outstandingMinor, annualRateBasisPoints: policy.annualRateBasisPoints, dueDate: from, asOf: invoiceDate, graceDays: 0 });
    if (amountMinor === 0) continue;
    out.push({ overdueBillId: c.billId, overdueBillNumber: c.billNumber, fromDate: from, throughDate: invoiceDate, balanceMinor: c.outstandingMinor, amountMinor });
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
