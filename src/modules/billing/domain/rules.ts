/**
 * Billing rules as pure functions: quotes, write-ups and write-downs, discounts, tax,
 * interest, retainer replenishment, fee allocation, numbering and due dates. Integer minor
 * units throughout; every split goes through allocate(), so parts always sum exactly.
 * No I/O here: the composer and the commands feed these functions and store the results.
 */
import { assert, assertSafeInteger } from '../../../shared/assert.ts';
import { allocate, mulDiv, percentOf, sumMinor } from '../../../shared/money.ts';
import type { RoundingMode } from '../../../shared/money.ts';

/* ------------------------------ quotes ------------------------------ */

export type QuoteChoice = 'bill_quote' | 'quote_plus_wip' | 'wip_only';
export type QuoteIncludes = 'fees' | 'fees_and_costs' | 'costs';

export interface QuoteOutcome {
  /** The WIP the quote was compared with (the part "quote includes" names). */
  comparedWipMinor: number;
  /** below: WIP under the quote; above: over it; equal; none: no quote. */
  position: 'below' | 'above' | 'equal' | 'none';
  choice: QuoteChoice | null;
  /** What the compared part of the bill comes to. */
  targetMinor: number;
  /** Plain words for the clerk: what was billed and why. */
  reason: string;
}

/**
 * Seed 002: compare the quote with the WIP that "quote includes" names, then apply the
 * matter's choice for WIP below or above the quote. WIP equal to the quote bills the WIP.
 */
export function applyQuote(input: {
  quoteMinor: number | null;
  includes: QuoteIncludes;
  ifWipBelow: QuoteChoice;
  ifWipAbove: QuoteChoice;
  feesWipMinor: number;
  costsWipMinor: number;
}): QuoteOutcome {
  const compared = input.includes === 'fees' ? input.feesWipMinor
    : input.includes === 'costs' ? input.costsWipMinor
      : input.feesWipMinor + input.costsWipMinor;
  assertSafeInteger(compared, 'comparedWipMinor');
  if (input.quoteMinor === null) {
    return { comparedWipMinor: compared, position: 'none', choice: null, targetMinor: compared, reason: 'No quote: bill the work in progress' };
  }
  const quote = input.quoteMinor;
  assert(Number.isSafeInteger(quote) && quote >= 0, 'quote must be a non-negative integer');
  if (compared === quote) {
    return { comparedWipMinor: compared, position: 'equal', choice: null, targetMinor: compared, reason: 'Work in progress equals the quote' };
  }
  const position = compared < quote ? 'below' : 'above';
  const choice = position === 'below' ? input.ifWipBelow : input.ifWipAbove;
  const targetMinor = choice === 'bill_quote' ? quote : choice === 'quote_plus_wip' ? quote + compared : compared;
  const words = { bill_quote: 'bill the quoted amount', quote_plus_wip: 'bill the quote plus the work in progress', wip_only: 'bill the work in progress only' }[choice];
  return { comparedWipMinor: compared, position, choice, targetMinor, reason: `Work in progress is ${position} the quote: ${words}` };
}

/**
 * An adjustment that stands for a change to other lines (the "As quoted" difference when no
 * fee line can carry it) split over those lines' tax codes, pro rata to what each code's lines
 * come to, so each part is taxed as the lines it adjusts are. Parts sum to the adjustment
 * exactly (largest remainder); a part that comes to zero is left out; codes in sorted order.
 * With nothing to weigh it by (no lines, or none netting above zero) it is one part at `fallbackCode`.
 */
export function splitByTaxCode(adjustmentMinor: number, lines: readonly { taxCode: string; amountMinor: number }[], fallbackCode: string): { taxCode: string; amountMinor: number }[] {
  assertSafeInteger(adjustmentMinor, 'adjustmentMinor');
  const byCode = new Map<string, number>();
  // Weighed by what each code's lines come to; a code whose lines net to nothing or less (credits) takes no part.
  for (const l of lines) byCode.set(l.taxCode, sumMinor([byCode.get(l.taxCode) ?? 0, l.amountMinor]));
  const codes = [...byCode.keys()].filter((c) => byCode.get(c)! > 0).sort();
  if (adjustmentMinor === 0) return [];
  if (codes.length === 0) return [{ taxCode: fallbackCode, amountMinor: adjustmentMinor }];
  const parts = allocate(adjustmentMinor, codes.map((c) => byCode.get(c)!));
  return codes.map((taxCode, i) => ({ taxCode, amountMinor: parts[i]! })).filter((p) => p.amountMinor !== 0);
}

/* ------------------------- write up / write down ------------------------- */

/**
 * Seed 003: write a group of items (one timekeeper's time, one charge type, or the items
 * a quote covers) up or down to targetMinor, pro rata to their recorded amounts so each
 * keeps its share. Items all at zero share by fallbackWeights (e.g. minutes), else equally.
 */
export function writeToTarget(amountsMinor: readonly number[], targetMinor: number, fallbackWeights?: readonly number[]): number[] {
  assert(amountsMinor.length > 0, 'writeToTarget needs at least one item');
  assertSafeInteger(targetMinor, 'targetMinor');
  for (const a of amountsMinor) assert(Number.isSafeInteger(a) && a >= 0, 'item amounts must be non-negative integers');
  if (sumMinor(amountsMinor) > 0) return allocate(targetMinor, amountsMinor);
  if (fallbackWeights && fallbackWeights.length === amountsMinor.length && fallbackWeights.some((w) => w > 0)) return allocate(targetMinor, fallbackWeights);
  return allocate(targetMinor, amountsMinor.map(() => 1));
}

/* ------------------------------ discounts ------------------------------ */

export type DiscountKind = 'none' | 'percentage' | 'fixed';

export interface DiscountInput {
  kind: DiscountKind;
  percentBasisPoints: number;
  amountMinor: number;
  /** Time-sensitive: valid if paid by this date (YYYY-MM-DD); null for always. */
  validUntil?: string | null;
}

/**
 * The discount on a bill: on fees and products only, never disbursements (seed 003).
 * A fixed discount never exceeds what it discounts.
 */
export function discountMinor(d: DiscountInput, discountableMinor: number, mode: RoundingMode = 'half_up'): number {
  assert(Number.isSafeInteger(discountableMinor) && discountableMinor >= 0, 'discountable amount must be a non-negative integer');
  switch (d.kind) {
    case 'none': return 0;
    case 'percentage':
      assert(d.percentBasisPoints >= 0 && d.percentBasisPoints <= 10_000, 'discount percent must be 0..100%');
      return percentOf(discountableMinor, d.percentBasisPoints, mode);
    case 'fixed':
      assert(Number.isSafeInteger(d.amountMinor) && d.amountMinor >= 0, 'fixed discount must be a non-negative integer');
      return Math.min(d.amountMinor, discountableMinor);
  }
}

/* --------------------------------- tax --------------------------------- */

export interface TaxableLine {
  amountMinor: number;
  /** Basis points of the line's tax code (1000 = 10%). */
  taxBasisPoints: number;
  taxCode: string;
}

/**
 * Tax per line, rounded per line, or per bill: each code's taxable total is taxed once and
 * the tax spread back over that code's lines (so line taxes still sum to the bill's tax).
 */
export function taxLines(lines: readonly TaxableLine[], rounding: 'per_line' | 'per_bill', mode: RoundingMode = 'half_up'): number[] {
  for (const l of lines) {
    assertSafeInteger(l.amountMinor, 'amountMinor');
    assert(l.taxBasisPoints >= 0 && l.taxBasisPoints <= 10_000, 'tax rate must be 0..100%');
  }
  if (rounding === 'per_line') return lines.map((l) => percentOf(l.amountMinor, l.taxBasisPoints, mode));
  const out = lines.map(() => 0);
  const byCode = new Map<string, number[]>();
  lines.forEach((l, i) => {
    const k = `${l.taxCode}|${l.taxBasisPoints}`;
    const idx = byCode.get(k);
    if (idx) idx.push(i); else byCode.set(k, [i]);
  });
  for (const idx of byCode.values()) {
    const taxable = sumMinor(idx.map((i) => lines[i]!.amountMinor));
    const bp = lines[idx[0]!]!.taxBasisPoints;
    const tax = percentOf(taxable, bp, mode);
    const amounts = idx.map((i) => lines[i]!.amountMinor);
    if (amounts.some((a) => a > 0) && amounts.some((a) => a < 0)) {
      // Charges and credits at one rate (a credit line on the bill): each line's own tax, with
      // its sign, and the bill's rounding difference spread a unit at a time over the largest
      // lines (shares of the total by size would give a credit a charge's tax).
      const own = amounts.map((a) => percentOf(a, bp, mode));
      let diff = tax - sumMinor(own);
      const order = idx.map((_, k) => k).sort((a, b) => Math.abs(amounts[b]!) - Math.abs(amounts[a]!) || a - b);
      assert(Math.abs(diff) <= order.length, 'the bill\'s rounding differs from its lines\' by at most a unit a line');
      for (let k = 0; diff !== 0; k = (k + 1) % order.length) {
        const step = diff > 0 ? 1 : -1;
        own[order[k]!]! += step;
        diff -= step;
      }
      idx.forEach((i, k) => { out[i] = own[k]!; });
      continue;
    }
    if (tax === 0) continue;
    const weights = amounts.map((a) => Math.abs(a));
    const parts = weights.some((w) => w > 0) ? allocate(tax, weights) : allocate(tax, weights.map(() => 1));
    idx.forEach((i, k) => { out[i] = parts[k]!; });
  }
  return out;
}

/* ------------------------------- interest ------------------------------- */

/**
 * Simple interest on an overdue balance: balance x annual rate x days / 365, counting the
 * days past the due date beyond the grace period, rounded half up.
 */
export function overdueInterestMinor(input: { balanceMinor: number; annualRateBasisPoints: number; dueDate: string; asOf: string; graceDays: number }): number {
  assert(Number.isSafeInteger(input.balanceMinor), 'balance must be an integer');
  assert(input.annualRateBasisPoints >= 0 && input.annualRateBasisPoints <= 10_000, 'interest rate must be 0..100% a year');
  assert(input.graceDays >= 0 && input.graceDays <= 365, 'grace days must be 0..365');
  if (input.balanceMinor <= 0) return 0;
  const days = daysBetween(input.dueDate, input.asOf) - input.graceDays;
  if (days <= 0) return 0;
  return mulDiv(input.balanceMinor, input.annualRateBasisPoints * days, 10_000 * 365, 'half_up');
}

/* ------------------------- retainer replenishment ------------------------- */

/**
 * Seed 002: when the retainer balance after this bill would be at or below the trigger,
 * the bill asks for the amount that restores the minimum balance. Example: minimum 5,000,
 * trigger 3,000, balance 6,000, bill 3,500: the balance falls to 2,500, so ask for 2,500.
 */
export function retainerRequestMinor(input: { enabled: boolean; minimumBalanceMinor: number; triggerMinor: number; balanceAfterMinor: number }): number {
  if (!input.enabled) return 0;
  assert(Number.isSafeInteger(input.minimumBalanceMinor) && input.minimumBalanceMinor >= 0, 'minimum balance must be a non-negative integer');
  assert(Number.isSafeInteger(input.triggerMinor) && input.triggerMinor >= 0, 'trigger must be a non-negative integer');
  assertSafeInteger(input.balanceAfterMinor, 'balanceAfterMinor');
  if (input.balanceAfterMinor > input.triggerMinor) return 0;
  return Math.max(0, input.minimumBalanceMinor - input.balanceAfterMinor);
}

/* ----------------------------- fee allocation ----------------------------- */

export type FeeAllocationRule = 'pro_rata' | 'responsible' | 'selected';
export type AdjustmentAllocationRule = 'original_split' | 'responsible' | 'selected';

export interface FeeAllocationInput {
  /** The fees billed (after write-ups, write-downs, fee discounts, fixed-fee differences). */
  feesBilledMinor: number;
  /** Recorded value of each timekeeper's billed work, before adjustments. */
  workByTimekeeper: ReadonlyMap<string, number>;
  allocateFees: FeeAllocationRule;
  allocateAdjustments: AdjustmentAllocationRule;
  responsibleTimekeeperId: string;
  feesTimekeeperId: string | null;
  adjustmentsTimekeeperId: string | null;
  origination: { timekeeperId: string; basisPoints: number } | null;
}

/**
 * Seed 002 fee allocation. The originator takes the origination percent of the fees
 * first; the rest is split as the matter says: recorded work by rule (pro rata to each
 * timekeeper's value, all to the responsible lawyer, or all to one timekeeper), and the
 * adjustment (billed minus recorded) by its own rule. The result sums exactly to the fees.
 */
export function allocateFees(input: FeeAllocationInput): Map<string, number> {
  const fees = input.feesBilledMinor;
  assertSafeInteger(fees, 'feesBilledMinor');
  const out = new Map<string, number>();
  const add = (id: string, v: number): void => { if (v !== 0 || !out.has(id)) out.set(id, (out.get(id) ?? 0) + v); };
  if (fees === 0) return out;

  let originationMinor = 0;
  if (input.origination) {
    assert(input.origination.basisPoints >= 0 && input.origination.basisPoints <= 10_000, 'origination percent must be 0..100%');
    originationMinor = percentOf(fees, input.origination.basisPoints, 'half_up');
  }
  const rest = fees - originationMinor;

  // The recorded work, by rule.
  const work = [...input.workByTimekeeper.entries()].filter(([, v]) => v > 0);
  const recorded = sumMinor(work.map(([, v]) => v));
  const base = new Map<string, number>();
  const feeOwner = input.allocateFees === 'selected' ? input.feesTimekeeperId : input.responsibleTimekeeperId;
  assert(input.allocateFees !== 'selected' || feeOwner, 'selected fee allocation needs a timekeeper');
  if (input.allocateFees === 'pro_rata' && recorded > 0) for (const [id, v] of work) base.set(id, v);
  else base.set(feeOwner!, recorded);

  // Split the rest: the recorded part as base says, the adjustment by its rule.
  const adjustmentOwner = input.allocateAdjustments === 'selected' ? input.adjustmentsTimekeeperId
    : input.allocateAdjustments === 'responsible' ? input.responsibleTimekeeperId : null;
  assert(input.allocateAdjustments !== 'selected' || adjustmentOwner, 'selected adjustment allocation needs a timekeeper');
  const ids = [...base.keys()];
  if (recorded === 0) {
    add(adjustmentOwner ?? feeOwner!, rest);
  } else if (adjustmentOwner === null) {
    // original split: everything in proportion to the recorded work
    allocate(rest, ids.map((id) => base.get(id)!)).forEach((v, i) => add(ids[i]!, v));
  } else {
    // recorded work scaled into `rest` first would hide the adjustment; instead credit the
    // recorded work less its share of the origination, and the adjustment to its owner.
    const recordedShare = mulDiv(recorded, rest, fees, 'half_up');
    allocate(recordedShare, ids.map((id) => base.get(id)!)).forEach((v, i) => add(ids[i]!, v));
    add(adjustmentOwner, rest - recordedShare);
  }
  if (input.origination && originationMinor !== 0) add(input.origination.timekeeperId, originationMinor);
  assert(sumMinor([...out.values()]) === fees, 'fee allocation must sum to the fees billed');
  return out;
}

/* ------------------------- numbering and dates ------------------------- */

/** Seed 003: the file number, a full stop, and the bill's sequence on the file: 12.8.1. */
export function billNumber(fileNumber: string, sequence: number): string {
  assert(/^\d+\.\d+$/.test(fileNumber), `file number ${fileNumber} must look like 12.8`);
  assert(Number.isSafeInteger(sequence) && sequence >= 1, 'bill sequence starts at 1');
  return `${fileNumber}.${sequence}`;
}

const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;

function dayNumber(date: string): number {
  assert(DATE_RE.test(date), `date ${date} must be YYYY-MM-DD`);
  const ms = Date.parse(`${date}T00:00:00Z`);
  assert(Number.isFinite(ms) && new Date(ms).toISOString().slice(0, 10) === date, `date ${date} is not a calendar date`);
  return ms / 86_400_000;
}

export function daysBetween(from: string, to: string): number {
  return dayNumber(to) - dayNumber(from);
}

export function addDays(date: string, days: number): string {
  assert(Number.isSafeInteger(days), 'days must be an integer');
  return new Date((dayNumber(date) + days) * 86_400_000).toISOString().slice(0, 10);
}

/** Due date: the invoice date plus the payment terms in days. */
export function dueDate(invoiceDate: string, paymentTermsDays: number): string {
  assert(paymentTermsDays >= 0 && paymentTermsDays <= 365, 'payment terms must be 0..365 days');
  return addDays(invoiceDate, paymentTermsDays);
}

/* ------------------------------ selection ------------------------------ */

export interface SelectableItem {
  id: string;
  kind: 'time' | 'disbursement' | 'fixed_charge';
  date: string;
  timekeeperId: string | null;
  code: string | null;
  behaviour: 'bill' | 'hide' | 'no_charge';
}

export interface SelectionFilters {
  upTo: string;
  /** none: no time on this bill (a run's time "To a cap" left the matter out: its time waits). */
  time?: { from?: string; to?: string; timekeeperIds?: readonly string[]; none?: boolean };
  disbursements?: { from?: string; to?: string; codes?: readonly string[] };
  /** Items toggled out (deferred to a later bill). */
  excludedIds?: ReadonlySet<string>;
  /** Matter option "only bill expenses". */
  onlyExpenses?: boolean;
}

/**
 * Issue rule 1: unbilled items dated on or before the up-to date, narrowed by the time and
 * disbursement filters, less items toggled out. Hidden items are never selected (rule 4).
 */
export function selectItems<T extends SelectableItem>(items: readonly T[], f: SelectionFilters): T[] {
  assert(DATE_RE.test(f.upTo), 'up-to date must be YYYY-MM-DD');
  const within = (d: string, from?: string, to?: string): boolean => (!from || d >= from) && (!to || d <= to);
  return items.filter((it) => {
    if (it.behaviour === 'hide') return false;
    if (it.date > f.upTo) return false;
    if (f.excludedIds?.has(it.id)) return false;
    if (it.kind === 'disbursement') {
      const df = f.disbursements;
      return within(it.date, df?.from, df?.to) && (!df?.codes?.length || (it.code !== null && df.codes.includes(it.code)));
    }
    if (f.onlyExpenses) return false;
    if (it.kind === 'time') {
      const tf = f.time;
      if (tf?.none) return false;
      return within(it.date, tf?.from, tf?.to) && (!tf?.timekeeperIds?.length || (it.timekeeperId !== null && tf.timekeeperIds.includes(it.timekeeperId)));
    }
    return true;
  });
}

/** Fixed-fee schedule rows due on this bill: dated on or before the invoice date and not yet billed. */
export function dueScheduleRows<R extends { billOn: string; invoiceNumber: string | null }>(rows: readonly R[], invoiceDate: string): R[] {
  return rows.filter((r) => r.invoiceNumber === null && r.billOn <= invoiceDate);
}
