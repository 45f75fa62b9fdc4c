/**
 * The bill composer as one pure function: from a matter's options, the firm's settings,
 * the unbilled items and the clerk's choices, to the bill's lines, taxes, totals, fee
 * allocation and retainer request. Order of work:
 *   select items -> fixed fee or quote -> clerk's write-ups/downs -> discount -> interest
 *   -> tax -> totals -> fee allocation -> retainer request -> due date.
 * Invariants (asserted): the total is the sum of the lines plus tax; the allocation sums to
 * the net fees; every selected item appears once.
 */
import { assert, AssertionError, assertSafeInteger } from '../../../shared/assert.ts';
import { sumMinor } from '../../../shared/money.ts';
import {
  allocateFees, applyQuote, discountMinor, dueDate, dueScheduleRows, retainerRequestMinor, selectItems, splitByTaxCode, taxLines, writeToTarget,
} from './rules.ts';
import type { AdjustmentAllocationRule, DiscountInput, FeeAllocationRule, QuoteChoice, QuoteIncludes, QuoteOutcome, SelectionFilters } from './rules.ts';

export type ItemKind = 'time' | 'disbursement' | 'fixed_charge';

export interface ComposeItem {
  id: string;
  kind: ItemKind;
  date: string;
  timekeeperId: string | null;
  /** Disbursement code, or the fixed charge's charge type id. */
  code: string | null;
  description: string;
  minutes: number | null;
  rateMinor: number | null;
  /** Recorded value. */
  amountMinor: number;
  behaviour: 'bill' | 'hide' | 'no_charge';
  taxCode: string | null;
}

export interface ScheduleRow { rowId: string; amountMinor: number; description: string; billOn: string; invoiceNumber: string | null }

export interface ComposeOptions {
  arrangement: 'hourly' | 'fixed_fee';
  quote: { amountMinor: number | null; includes: QuoteIncludes; ifWipBelow: QuoteChoice; ifWipAbove: QuoteChoice };
  fixedFee: { mode: 'every_cycle' | 'custom_schedule'; schedule: ScheduleRow[] };
  discount: DiscountInput;
  feeReductions: { appearAsDiscount: boolean; hideLinePricing: boolean };
  feeAllocation: {
    allocateFees: FeeAllocationRule; feesTimekeeperId: string | null;
    allocateAdjustments: AdjustmentAllocationRule; adjustmentsTimekeeperId: string | null;
    originationEnabled: boolean; originatorTimekeeperId: string | null; originationBasisPoints: number;
  };
  retainerReplenishment: { enabled: boolean; minimumBalanceMinor: number; triggerMinor: number };
  onlyExpenses: boolean;
}

export interface ComposeFirm {
  taxRates: readonly { code: string; basisPoints: number }[];
  defaultFeeTaxCode: string;
  taxRounding: 'per_line' | 'per_bill';
  paymentTermsDays: number;
  /** Tax code for interest lines; EXEMPT when the firm has it, else the fee default. */
  interestTaxCode?: string;
}

export interface AdHocLine { kind: 'fee' | 'disbursement'; description: string; amountMinor: number; taxCode: string | null; timekeeperId: string | null }

export interface ComposeRequest {
  invoiceDate: string;
  upTo: string;
  filters?: Pick<SelectionFilters, 'time' | 'disbursements'>;
  /** Items toggled out of this bill (deferred). */
  excludedIds?: readonly string[];
  /** The clerk's write-up/down targets: per timekeeper (time) and per charge type (fixed charges). */
  writeTo?: { timekeeper?: Readonly<Record<string, number>>; chargeType?: Readonly<Record<string, number>> };
  /** Every-cycle fixed fee amount for this bill; defaults to the quote. */
  fixedFeeAmountMinor?: number | null;
  /** Apply the quote rules (mass billing always does, seed 001). Default true. */
  applyQuote?: boolean;
  /** Overrides the matter's discount for this bill (validUntil makes it time-sensitive). */
  discount?: DiscountInput | null;
  interestMinor?: number;
  /** The interest line's text (default: "Interest on overdue accounts"). */
  interestDescription?: string;
  adHoc?: readonly AdHocLine[];
  /** Retainer balance before this bill, and whether the retainer pays this bill. */
  retainer?: { balanceMinor: number; appliesToBill: boolean } | null;
}

export interface ComposeMatter {
  responsibleTimekeeperId: string;
  currency: string;
}

export type LineKind = 'time' | 'disbursement' | 'fixed_charge' | 'fixed_fee' | 'quote_fee' | 'adhoc_fee' | 'adhoc_disbursement' | 'discount' | 'interest';

export interface BillLine {
  /** Stable within the bill: the item id, or kind:n for lines without an item. */
  key: string;
  itemId: string | null;
  scheduleRowId: string | null;
  kind: LineKind;
  date: string;
  timekeeperId: string | null;
  code: string | null;
  description: string;
  minutes: number | null;
  rateMinor: number | null;
  recordedMinor: number;
  amountMinor: number;
  noCharge: boolean;
  taxCode: string | null;
  taxMinor: number;
}

export interface ComposedBill {
  lines: BillLine[];
  totals: {
    feesMinor: number;
    fixedChargesMinor: number;
    disbursementsMinor: number;
    discountMinor: number;
    interestMinor: number;
    taxMinor: number;
    totalMinor: number;
  };
  /** What the clerk should know: the quote rule applied, schedule rows billed. */
  quote: QuoteOutcome | null;
  scheduleRowIds: string[];
  feeAllocation: { timekeeperId: string; amountMinor: number }[];
  /** Fees less their share of a discount line: what the fee allocation splits. */
  netFeesMinor: number;
  discount: { amountMinor: number; validUntil: string | null; undiscountedTotalMinor: number } | null;
  hideLinePricing: boolean;
  retainerRequestMinor: number;
  /** The part of the total the general retainer pays when it applies to the bill (its balance, at most the total): the bill shows it and what is left to pay. */
  retainerAppliedMinor: number;
  dueDate: string;
  itemIds: string[];
  /** Recorded time held back for the bill that carries the next fixed-fee instalment (none due on this one). */
  timeWaitsForInstalment: boolean;
  /**
   * A discount asked for that the bill cannot give in full, for the clerk to be told: a fixed
   * discount larger than the fees and products it discounts (capped at them), or any discount
   * where credits leave those at nothing or less (none given). Null when the discount is as asked.
   */
  discountShortfall: { askedMinor: number | null; basisMinor: number; givenMinor: number } | null;
}

const LIMIT_ITEMS = 200_000;

/**
 * A choice of the clerk's that this bill cannot apply, with the request field it came from
 * (`writeTo.timekeeper.<id>`, `writeTo.chargeType.<id>`), so the commands refuse it (422) at
 * that field rather than as the whole bill's options.
 */
export class ComposeChoiceError extends AssertionError {
  override name = 'ComposeChoiceError';
  constructor(readonly field: string, message: string) {
    super(message);
  }
}

/**
 * A discount spread over lines that may include credits: each line's share is the same
 * fraction (discount / net) of its amount, so a credit bears a negative share and no line
 * changes sign. The shares sum to the discount exactly; each is within a unit of its exact
 * value and never larger in size than its line.
 */
export function discountShares(discountMinor: number, amountsMinor: readonly number[]): number[] {
  const net = sumMinor(amountsMinor);
  assert(Number.isSafeInteger(discountMinor) && discountMinor >= 0 && discountMinor <= net, 'a discount is between zero and the net of what it discounts');
  if (discountMinor === 0) return amountsMinor.map(() => 0);
  // Largest remainder on the signed exact shares discount * amount / net: each share is the
  // floor of its exact value or one more, the ones with the largest remainders taking the units left.
  const d = BigInt(discountMinor);
  const n = BigInt(net);
  const floors = amountsMinor.map((a) => {
    const x = d * BigInt(a);
    const q = x / n;
    return x % n < 0n ? q - 1n : q;
  });
  const rems = amountsMinor.map((a, i) => d * BigInt(a) - floors[i]! * n);
  let left = d - floors.reduce((s, q) => s + q, 0n);
  assert(left >= 0n && left < BigInt(amountsMinor.length), 'discount shares: remainder out of range');
  const order = amountsMinor.map((_, i) => i).sort((i, j) => (rems[i] === rems[j] ? i - j : rems[i]! > rems[j]! ? -1 : 1));
  for (let k = 0; left > 0n; k++, left--) floors[order[k]!] = floors[order[k]!]! + 1n;
  return floors.map((q) => Number(q));
}

export function composeBill(matter: ComposeMatter, options: ComposeOptions, firm: ComposeFirm, items: readonly ComposeItem[], req: ComposeRequest): ComposedBill {
  assert(items.length <= LIMIT_ITEMS, `a bill takes at most ${LIMIT_ITEMS} items`);
  const taxBp = new Map(firm.taxRates.map((t) => [t.code, t.basisPoints]));
  const taxCodeOf = (code: string | null): string => {
    const c = code ?? firm.defaultFeeTaxCode;
    if (!taxBp.has(c)) throw new AssertionError(`unknown tax code ${c}`);
    return c;
  };

  const selected = selectItems(items, { upTo: req.upTo, ...req.filters, excludedIds: new Set(req.excludedIds ?? []), onlyExpenses: options.onlyExpenses });
  const lines: BillLine[] = selected.map((it) => ({
    key: it.id, itemId: it.id, scheduleRowId: null, kind: it.kind, date: it.date, timekeeperId: it.timekeeperId, code: it.code,
    description: it.description, minutes: it.minutes, rateMinor: it.rateMinor, recordedMinor: it.amountMinor,
    amountMinor: it.behaviour === 'no_charge' ? 0 : it.amountMinor, noCharge: it.behaviour === 'no_charge',
    taxCode: taxCodeOf(it.taxCode), taxMinor: 0,
  }));
  const charged = (pred: (l: BillLine) => boolean) => lines.filter((l) => !l.noCharge && pred(l));
  const isFee = (l: BillLine) => l.kind === 'time' || l.kind === 'fixed_charge';
  let seq = 0;
  const extra = (kind: LineKind, description: string, amountMinor: number, timekeeperId: string | null, taxCode: string | null, scheduleRowId: string | null = null): BillLine => ({
    key: `${kind}:${++seq}`, itemId: null, scheduleRowId, kind, date: req.invoiceDate, timekeeperId, code: null, description,
    minutes: null, rateMinor: null, recordedMinor: 0, amountMinor, noCharge: false, taxCode: taxCodeOf(taxCode), taxMinor: 0,
  });

  // A fixed-fee line is a flat fee entry, the responsible lawyer's: in the fee allocation it is
  // their work at its amount (seed 002: adjustments are the fees "not tied to a time or flat fee
  // entry"), as recorded time is its timekeeper's, not an adjustment.
  const flatFeeWork = new Map<string, number>();
  // Fixed fee, or the quote rules for hourly matters.
  let quote: QuoteOutcome | null = null;
  const scheduleRowIds: string[] = [];
  let timeWaitsForInstalment = false;
  if (options.arrangement === 'fixed_fee' && !options.onlyExpenses) {
    let feeLines: { amountMinor: number; description: string; rowId: string | null }[];
    if (options.fixedFee.mode === 'custom_schedule') {
      feeLines = dueScheduleRows(options.fixedFee.schedule, req.invoiceDate).map((r) => ({ amountMinor: r.amountMinor, description: r.description || 'Fixed fee instalment', rowId: r.rowId }));
    } else {
      const amount = req.fixedFeeAmountMinor ?? options.quote.amountMinor ?? 0;
      feeLines = amount > 0 ? [{ amountMinor: amount, description: 'Fixed fee', rowId: null }] : [];
    }
    const fixedTotal = sumMinor(feeLines.map((f) => f.amountMinor));
    if (fixedTotal === 0) {
      // No instalment due: recorded time waits for the bill that carries the next one,
      // rather than being written off to nothing on this bill.
      timeWaitsForInstalment = lines.some((l) => l.kind === 'time');
      for (let i = lines.length - 1; i >= 0; i--) if (lines[i]!.kind === 'time') lines.splice(i, 1);
    }
    const time = charged((l) => l.kind === 'time');
    if (time.length > 0) {
      // The recorded time is written up or down to the fixed fee, keeping its proportions.
      writeToTarget(time.map((l) => l.amountMinor), fixedTotal, time.map((l) => l.minutes ?? 0)).forEach((v, i) => { time[i]!.amountMinor = v; });
      scheduleRowIds.push(...feeLines.flatMap((f) => (f.rowId ? [f.rowId] : [])));
    } else {
      for (const f of feeLines) {
        const line = extra('fixed_fee', f.description, f.amountMinor, matter.responsibleTimekeeperId, null, f.rowId);
        lines.push(line);
        flatFeeWork.set(line.key, f.amountMinor);
        if (f.rowId) scheduleRowIds.push(f.rowId);
      }
    }
  } else if (req.applyQuote !== false && options.quote.amountMinor !== null && !options.onlyExpenses) {
    const fees = charged(isFee);
    const costs = charged((l) => l.kind === 'disbursement');
    quote = applyQuote({ ...options.quote, quoteMinor: options.quote.amountMinor, feesWipMinor: sumMinor(fees.map((l) => l.amountMinor)), costsWipMinor: sumMinor(costs.map((l) => l.amountMinor)) });
    // The quote is compared with what it includes, but disbursements stay at what was paid
    // (they are costs recovered, not the firm's charges): the difference is written over the
    // fee lines, or, where there are none to carry it (or it would take them below zero), it
    // is a line of its own: a fee line, or for a quote of costs only an "As quoted" cost line.
    const differenceMinor = quote.targetMinor - quote.comparedWipMinor;
    if (differenceMinor !== 0) {
      const feesWipMinor = sumMinor(fees.map((l) => l.amountMinor));
      const feesTargetMinor = feesWipMinor + differenceMinor;
      if (options.quote.includes !== 'costs' && fees.length > 0 && feesWipMinor > 0 && feesTargetMinor >= 0) {
        writeToTarget(fees.map((l) => l.amountMinor), feesTargetMinor).forEach((v, i) => { fees[i]!.amountMinor = v; });
      } else {
        const kind: LineKind = options.quote.includes === 'costs' ? 'adhoc_disbursement' : 'quote_fee';
        // The line stands for a change to the lines it adjusts, so it is taxed as they are: split
        // over their tax codes pro rata, one "As quoted" line per code. It adjusts the costs (a
        // quote of costs), or for a quote of fees and costs that even fees at nothing would not
        // reach, the fees and costs together. A line with nothing to adjust is new charges: a fee
        // (or for a quote of costs, a cost) at the firm's default fee tax code.
        const adjusted = options.quote.includes === 'costs' ? costs
          : options.quote.includes === 'fees_and_costs' && differenceMinor < 0 ? [...fees, ...costs] : [];
        const parts = splitByTaxCode(differenceMinor, adjusted.map((l) => ({ taxCode: l.taxCode!, amountMinor: l.amountMinor })), taxCodeOf(null));
        for (const p of parts) {
          lines.push(extra(kind, parts.length === 1 ? 'As quoted' : `As quoted (${p.taxCode})`, p.amountMinor, kind === 'quote_fee' ? matter.responsibleTimekeeperId : null, p.taxCode));
        }
        assert(sumMinor(parts.map((p) => p.amountMinor)) === differenceMinor, 'the "As quoted" lines sum to the difference');
      }
    }
  }

  // The clerk's write-ups and write-downs, per timekeeper and per charge type (seed 003).
  for (const [tk, target] of Object.entries(req.writeTo?.timekeeper ?? {})) {
    assertSafeInteger(target, 'write-to target');
    assert(target >= 0, 'a write-down cannot go below zero');
    const group = charged((l) => l.kind === 'time' && l.timekeeperId === tk);
    if (group.length === 0) {
      // The timekeeper's time is here but not billed (no-charge, toggled out, left to wait): the
      // clerk typed into that group's input, so the refusal names it. Naming a timekeeper with no
      // time on the matter at all is a malformed choice of the bill's options.
      const message = `no billable time for timekeeper ${tk} on this bill to write up or down: clear it`;
      if (items.some((it) => it.kind === 'time' && it.timekeeperId === tk && it.behaviour !== 'hide')) throw new ComposeChoiceError(`writeTo.timekeeper.${tk}`, message);
      throw new AssertionError(message);
    }
    writeToTarget(group.map((l) => l.amountMinor), target, group.map((l) => l.minutes ?? 0)).forEach((v, i) => { group[i]!.amountMinor = v; });
  }
  for (const [ct, target] of Object.entries(req.writeTo?.chargeType ?? {})) {
    assertSafeInteger(target, 'write-to target');
    assert(target >= 0, 'a write-down cannot go below zero');
    const group = charged((l) => l.kind === 'fixed_charge' && l.code === ct);
    if (group.length === 0) {
      const message = `no fixed charges of type ${ct} on this bill to write up or down: clear it`;
      if (items.some((it) => it.kind === 'fixed_charge' && it.code === ct && it.behaviour !== 'hide')) throw new ComposeChoiceError(`writeTo.chargeType.${ct}`, message);
      throw new AssertionError(message);
    }
    writeToTarget(group.map((l) => l.amountMinor), target).forEach((v, i) => { group[i]!.amountMinor = v; });
  }

  // An ad hoc fee given a timekeeper is that timekeeper's work for the fee allocation (as their
  // time is); one without is an adjustment, split by the matter's adjustment rule.
  // Its work is the amount the clerk gave (a discount written into the lines is an adjustment, as for time).
  const adHocWork = new Map<string, number>();
  for (const a of req.adHoc ?? []) {
    assertSafeInteger(a.amountMinor, 'ad hoc amount');
    const line = extra(a.kind === 'fee' ? 'adhoc_fee' : 'adhoc_disbursement', a.description, a.amountMinor, a.kind === 'fee' ? (a.timekeeperId ?? matter.responsibleTimekeeperId) : null, a.taxCode);
    lines.push(line);
    if (a.kind === 'fee' && a.timekeeperId) adHocWork.set(line.key, a.amountMinor);
  }

  // Discount: fees and products only, never disbursements (seed 003). It is taken on what
  // they come to net of any credits among them (a negative ad hoc fee), so it never exceeds
  // what the client is charged for them, and every line bears the same fraction of it.
  const discountable = lines.filter((l) => l.kind !== 'disbursement' && l.kind !== 'adhoc_disbursement' && !l.noCharge && l.amountMinor !== 0);
  const discountRule = req.discount === undefined || req.discount === null ? options.discount : req.discount;
  const discountBasis = sumMinor(discountable.map((l) => l.amountMinor));
  const discountAmount = discountMinor(discountRule, Math.max(0, discountBasis));
  const discountAskedFor = discountRule.kind === 'fixed' ? discountRule.amountMinor > 0 : discountRule.kind === 'percentage' && discountRule.percentBasisPoints > 0;
  // (Nothing to discount because the bill has no fees at all, as on an expenses-only bill, is not a shortfall to announce.)
  const creditsTakeAll = discountBasis < 0 || (discountBasis === 0 && discountable.some((l) => l.amountMinor < 0));
  const discountShortfall = discountAskedFor && (creditsTakeAll || (discountRule.kind === 'fixed' && discountBasis > 0 && discountRule.amountMinor > discountBasis))
    ? { askedMinor: discountRule.kind === 'fixed' ? discountRule.amountMinor : null, basisMinor: discountBasis, givenMinor: discountAmount } : null;
  // Each discountable line's share of the discount (none without one: lines not in it have 0).
  const shareOf = new Map<string, number>();
  if (discountAmount > 0) discountShares(discountAmount, discountable.map((l) => l.amountMinor)).forEach((share, i) => shareOf.set(discountable[i]!.key, share));
  const appearAsDiscount = options.feeReductions.appearAsDiscount || Boolean(discountRule.validUntil);
  if (discountAmount > 0 && !appearAsDiscount) {
    // Hidden in the line amounts: each discountable line is written down by its share.
    for (const l of discountable) l.amountMinor -= shareOf.get(l.key)!;
    shareOf.clear();
  }

  const interest = req.interestMinor ?? 0;
  assert(Number.isSafeInteger(interest) && interest >= 0, 'interest must be a non-negative integer');
  if (interest > 0) lines.push(extra('interest', req.interestDescription ?? 'Interest on overdue accounts', interest, null, firm.interestTaxCode ?? (taxBp.has('EXEMPT') ? 'EXEMPT' : null)));

  // Tax on what is charged, net of any discount line's share.
  const grossTax = taxLines(lines.map((l) => ({ amountMinor: l.amountMinor, taxBasisPoints: taxBp.get(l.taxCode!)!, taxCode: l.taxCode! })), firm.taxRounding);
  // With no discount line sharing the amounts, the net tax is the gross tax.
  const netTax = shareOf.size === 0 ? grossTax
    : taxLines(lines.map((l) => ({ amountMinor: l.amountMinor - (shareOf.get(l.key) ?? 0), taxBasisPoints: taxBp.get(l.taxCode!)!, taxCode: l.taxCode! })), firm.taxRounding);
  lines.forEach((l, i) => { l.taxMinor = grossTax[i]!; });
  if (discountAmount > 0 && appearAsDiscount) {
    const label = discountRule.validUntil ? `Discount if paid by ${discountRule.validUntil}` : 'Discount';
    // The discount's share and the tax it saves, per tax code of the lines it discounts. Over
    // one code it is one line; over several, one line per code, so each line carries one tax
    // rate (as LEDES 1998BI and a VAT return need) and the lines sum to the discount exactly.
    const perCode = new Map<string, { shareMinor: number; taxMinor: number }>();
    lines.forEach((l, i) => {
      const shareMinor = shareOf.get(l.key) ?? 0;
      const taxMinor = netTax[i]! - grossTax[i]!;
      if (shareMinor === 0 && taxMinor === 0) return;
      const c = perCode.get(l.taxCode!) ?? { shareMinor: 0, taxMinor: 0 };
      c.shareMinor += shareMinor;
      c.taxMinor += taxMinor;
      perCode.set(l.taxCode!, c);
    });
    if (perCode.size <= 1) {
      const d = extra('discount', label, -discountAmount, null, null);
      d.taxCode = null;
      d.taxMinor = sumMinor(netTax) - sumMinor(grossTax);
      lines.push(d);
    } else {
      for (const code of [...perCode.keys()].sort()) {
        const c = perCode.get(code)!;
        const d = extra('discount', `${label} (${code})`, -c.shareMinor, null, code);
        d.taxMinor = c.taxMinor;
        lines.push(d);
      }
    }
    assert(sumMinor(lines.filter((l) => l.kind === 'discount').map((l) => l.amountMinor)) === -discountAmount, 'the discount lines sum to the discount');
    assert(sumMinor(lines.filter((l) => l.kind === 'discount').map((l) => l.taxMinor)) === sumMinor(netTax) - sumMinor(grossTax), 'the discount lines carry the tax it saves');
  }

  // Amounts by line kind, one pass (sumMinor asserts each sum stays a safe integer).
  const amountsOf = new Map<LineKind, number[]>();
  for (const l of lines) {
    const list = amountsOf.get(l.kind);
    if (list) list.push(l.amountMinor); else amountsOf.set(l.kind, [l.amountMinor]);
  }
  const sumKind = (...kinds: LineKind[]) => sumMinor(kinds.flatMap((k) => amountsOf.get(k) ?? []));
  const totals = {
    feesMinor: sumKind('time', 'fixed_fee', 'quote_fee', 'adhoc_fee'),
    fixedChargesMinor: sumKind('fixed_charge'),
    disbursementsMinor: sumKind('disbursement', 'adhoc_disbursement'),
    discountMinor: 0 - sumKind('discount'),
    interestMinor: sumKind('interest'),
    taxMinor: sumMinor(lines.map((l) => l.taxMinor)),
    totalMinor: 0,
  };
  totals.totalMinor = sumMinor(lines.map((l) => l.amountMinor)) + totals.taxMinor;
  assert(totals.totalMinor === totals.feesMinor + totals.fixedChargesMinor + totals.disbursementsMinor - totals.discountMinor + totals.interestMinor + totals.taxMinor,
    'bill total must equal its parts');

  // Fee allocation of the net fees (after their share of a discount line).
  const feeLines = lines.filter((l) => l.kind === 'time' || l.kind === 'fixed_fee' || l.kind === 'quote_fee' || l.kind === 'adhoc_fee');
  const netFees = sumMinor(feeLines.map((l) => l.amountMinor - (shareOf.get(l.key) ?? 0)));
  const work = new Map<string, number>();
  for (const l of feeLines) {
    if (!l.timekeeperId || l.noCharge) continue;
    if (l.kind === 'time') work.set(l.timekeeperId, (work.get(l.timekeeperId) ?? 0) + l.recordedMinor);
    else if (l.kind === 'adhoc_fee' && adHocWork.has(l.key)) work.set(l.timekeeperId, (work.get(l.timekeeperId) ?? 0) + adHocWork.get(l.key)!);
    else if (l.kind === 'fixed_fee' && flatFeeWork.has(l.key)) work.set(l.timekeeperId, (work.get(l.timekeeperId) ?? 0) + flatFeeWork.get(l.key)!);
  }
  const fa = options.feeAllocation;
  const allocation = allocateFees({
    feesBilledMinor: netFees, workByTimekeeper: work, allocateFees: fa.allocateFees, allocateAdjustments: fa.allocateAdjustments,
    responsibleTimekeeperId: matter.responsibleTimekeeperId, feesTimekeeperId: fa.feesTimekeeperId, adjustmentsTimekeeperId: fa.adjustmentsTimekeeperId,
    origination: fa.originationEnabled && fa.originatorTimekeeperId ? { timekeeperId: fa.originatorTimekeeperId, basisPoints: fa.originationBasisPoints } : null,
  });

  // Retainer: after this bill is paid from it (if it pays), ask for a top-up when low.
  let retainerRequest = 0;
  let retainerApplied = 0;
  if (req.retainer) {
    retainerApplied = req.retainer.appliesToBill ? Math.min(Math.max(0, req.retainer.balanceMinor), Math.max(0, totals.totalMinor)) : 0;
    retainerRequest = retainerRequestMinor({ ...options.retainerReplenishment, balanceAfterMinor: req.retainer.balanceMinor - retainerApplied });
  }
  assert(Number.isSafeInteger(retainerApplied) && retainerApplied >= 0 && retainerApplied <= Math.max(0, totals.totalMinor), 'the retainer pays at most the bill\'s total');

  const itemIds = lines.flatMap((l) => (l.itemId ? [l.itemId] : []));
  assert(new Set(itemIds).size === itemIds.length, 'an item appears once on a bill');
  return {
    lines,
    totals,
    quote,
    scheduleRowIds,
    feeAllocation: [...allocation.entries()].map(([timekeeperId, amountMinor]) => ({ timekeeperId, amountMinor })),
    netFeesMinor: netFees,
    // A discount written into the line amounts ("Appear as discount" off, seed 002) is not
    // announced as one: the bill shows the reduced amounts only.
    discount: discountAmount > 0 && appearAsDiscount ? { amountMinor: discountAmount, validUntil: discountRule.validUntil ?? null, undiscountedTotalMinor: totals.totalMinor + discountAmount - (sumMinor(netTax) - sumMinor(grossTax)) } : null,
    hideLinePricing: options.feeReductions.hideLinePricing,
    retainerRequestMinor: retainerRequest,
    retainerAppliedMinor: retainerApplied,
    dueDate: dueDate(req.invoiceDate, firm.paymentTermsDays),
    itemIds,
    timeWaitsForInstalment,
    discountShortfall,
  };
}
