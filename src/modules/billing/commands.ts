/**
 * The life of a bill, one transaction per command: compose a draft from billing's copy of
 * matters (the pure composer in domain/compose.ts), change it, delete it, approve it
 * (numbered file.sequence, gapless), revert it, finalise it, re-draft it, delete a posted
 * bill. Every command writes its rows, its audit row and its event in one transaction; the
 * events carry the whole bill (a draft's without its lines) so the ledger, e-billing, trust
 * and matters (which owns the items' status) need nothing else.
 *
 * Items: an item is on one live bill at most: the bill's live line for it holds it, unique
 * among live lines (database-enforced). A command checks its items free first (checkItemsFree,
 * to refuse naming the holding bill); the database keeps one draft per matter too.
 */
import { createHash } from 'node:crypto';
import { AssertionError } from '../../shared/assert.ts';
import { audit } from '../../shared/audit.ts';
import { isoDate } from '../../shared/clock.ts';
import type { Clock } from '../../shared/clock.ts';
import type { Db, Executor, Tx } from '../../shared/db.ts';
import { isUniqueViolation } from '../../shared/db.ts';
import type { CommandContext } from '../../shared/events.ts';
import { newId } from '../../shared/ids.ts';
import { appendEvent } from '../../shared/outbox.ts';
import type { Relay } from '../../shared/outbox.ts';
import { conflict, HttpError, invalid, notFound } from '../../shared/web/errors.ts';
import { AmountLimitError, formatMoney, MAX_AMOUNT_MINOR } from '../../shared/money.ts';
import type { BillingOptionSection, FirmBillingSettings, MatterBillingOptions } from '../matters/events.ts';
import * as balances from './balances.ts';
import type { ExpiredDiscount } from './balances.ts';
import * as bills from './bill-store.ts';
import type { Bill, BillItem, RetainerBalance } from './bill-store.ts';
import { ComposeChoiceError, composeBill } from './domain/compose.ts';
import { unknownTemplate } from './domain/templates.ts';
import type { ComposeItem, ComposedBill } from './domain/compose.ts';
import {
  billingRefusals, compositionBasis, composeFirm, sequenceDateRefusal, finaliseRefusal, composeOptions, composeRequest, isCalendarDate, requestErrors, retainerApplies, verdict, verdicts,
  approvalTime, foreignDefaultsRefusal, invoiceDateRangeError, periodRefusal, undoPeriodRefusal,
} from './domain/lifecycle.ts';
import type { BillAction, BillFacts, BillRequest, Verdict } from './domain/lifecycle.ts';
import { interestTotalMinor, policyInterest } from './domain/interest.ts';
import { everyCycleFeeOnBill, fixedFeeDue, hasSomethingToBill } from './domain/mass.ts';
import type { BillContent } from './domain/mass.ts';
import type { InterestCharge, OverdueCandidate } from './domain/interest.ts';
import { billNumber } from './domain/rules.ts';
import type { BillData, BillDrafted, BillingEvents, BillItemRef, BillLineData } from './events.ts';
import * as ps from './production-store.ts';
import * as store from './store.ts';
import type { MatterCopy, WipCopy } from './store.ts';

export interface BillingDeps {
  readonly db: Db;
  readonly clock: Clock;
  readonly relay: Pick<Relay, 'kick'>;
}

export interface DraftInput {
  matterId: string;
  invoiceDate: string;
  upTo: string;
  request?: BillRequest;
  /** A mass-billing run. */
  batchId?: string | null;
  /**
   * Drafted for bulk drafting (a bill run) matter by matter: a composition with nothing of its
   * own to bill is refused, never made an interest-only bill (a run drafts none; see runCompositionRefusal).
   */
  byRun?: boolean;
}

export interface DraftChange {
  invoiceDate?: string;
  upTo?: string;
  /** Replaces the clerk's choices (omitted: keep them). */
  request?: BillRequest;
  /** Refuse (409) unless the draft is still at this version. */
  expectedVersion?: number;
  /**
   * A batch change of the invoice date (mass billing's Modify batch): the every-cycle fixed
   * fee is decided again for the new date, as a run drafting on that date would decide it
   * (withCycleFeeFor), unless the bill carries a fee the clerk gave.
   */
  redecideCycleFee?: boolean;
}

/** A composition without saving: what the composer page shows. */
export interface Composition {
  composed: ComposedBill;
  lines: BillLineData[];
  retainerBalanceMinor: number | null;
  /** Every item the bill could take (unbilled up to the cut-off, plus the items on the draft), hidden ones left out. */
  candidates: WipCopy[];
  /** Every item read for the composition, hidden ones too, by id: what the bill's lines were composed from (checked again as the bill takes them). */
  itemsRead: ReadonlyMap<string, WipCopy>;
  dueDate: string;
  /** The interest the firm's policy charges on the matter's overdue bills (empty: none, or charged by hand). */
  interestCharges: InterestCharge[];
  /** Open bills of the matter whose time-sensitive discount has expired undecided: the clerk is asked to decide (ledger). */
  expiredDiscounts: ExpiredDiscount[];
  /** compositionKey of the options and settings it was composed under. */
  compositionKey: string;
}

/** A compositionBasis hashed (SHA-256, 128 bits, base64url): what a bill keeps to tell whether it is composed under the options in force. */
export function compositionKey(options: MatterBillingOptions, firm: FirmBillingSettings): string {
  return createHash('sha256').update(compositionBasis(options, firm)).digest('base64url').slice(0, 22);
}

/** Whether a draft was composed under options other than these (false when it is not a draft, or either is unknown). */
export function composedUnderOtherOptions(b: { status: string; compositionKey: string | null }, options: MatterBillingOptions | null | undefined, firm: FirmBillingSettings | null | undefined): boolean {
  return b.status === 'draft' && b.compositionKey !== null && !!options && !!firm && compositionKey(options, firm) !== b.compositionKey;
}

type EventName = keyof BillingEvents & string;

/** How a command refusing a bill changed since the clerk's page showed it (expectedVersion) begins its reason. */
export const CHANGED_SINCE_OPENED = 'This bill changed after the page was opened';
/**
 * The code (HttpError.code) of that refusal (409): what callers test to tell it apart from
 * other conflicts; the message is for people and may be reworded.
 */
export const BILL_CHANGED = 'bill_changed';

/** Why a bill the general retainer pays cannot be approved: the balance it was composed with was recorded anew since. */
export const RETAINER_CHANGED = 'The matter\'s retainer balance was recorded anew since this bill was composed: open it in the composer and save it, so that the retainer pays what it holds now, then approve it';

/**
 * A bill the retainer pays is approved: the recorded balance falls by what it pays (refused when
 * it is not the balance the bill was composed with), audited. Its reversal puts it back (refundRetainer).
 */
export async function payRetainer(trx: Tx, clock: Clock, ctx: CommandContext, b: { billId: string; matterId: string; number: string | null; retainerAppliedMinor: number; retainerBalanceMinor: number | null }, at: string): Promise<void> {
  if (b.retainerAppliedMinor <= 0) return;
  if (b.retainerBalanceMinor === null || !await bills.payFromRetainer(trx, b.matterId, b.retainerAppliedMinor, b.retainerBalanceMinor, at, ctx.actorLabel)) throw conflict(RETAINER_CHANGED);
  await audit(trx, clock, ctx, { action: 'billing.retainer_paid_bill', entityType: 'billing_retainer_balance', entityId: b.matterId, before: { balanceMinor: b.retainerBalanceMinor }, after: { balanceMinor: b.retainerBalanceMinor - b.retainerAppliedMinor, billId: b.billId, number: b.number, paidMinor: b.retainerAppliedMinor } });
}

async function refundRetainer(trx: Tx, clock: Clock, ctx: CommandContext, b: Bill, why: string, at: string): Promise<void> {
  if (b.retainerAppliedMinor <= 0) return;
  await bills.refundToRetainer(trx, b.matterId, b.retainerAppliedMinor, at, ctx.actorLabel);
  await audit(trx, clock, ctx, { action: 'billing.retainer_refunded', entityType: 'billing_retainer_balance', entityId: b.matterId, after: { billId: b.billId, number: b.number, refundedMinor: b.retainerAppliedMinor, why } });
}

/** The bill's event data (plain, without the bill's bookkeeping). */
export function billData(b: Bill): BillData {
  return {
    billId: b.billId, status: b.status, number: b.number, sequence: b.sequence, matterId: b.matterId, clientId: b.clientId,
    fileNumber: b.fileNumber, currency: b.currency, invoiceDate: b.invoiceDate, upTo: b.upTo, dueDate: b.dueDate,
    lines: b.lines.map((l) => ({ ...l })), allocations: b.allocations.map((a) => ({ ...a })), totals: { ...b.totals },
    discount: b.discount ? { ...b.discount } : null, retainerBalanceMinor: b.retainerBalanceMinor, retainerRequestMinor: b.retainerRequestMinor,
    retainerAppliedMinor: b.retainerAppliedMinor, scheduleRowIds: [...b.scheduleRowIds], items: b.items.map((i) => ({ ...i })), hideLinePricing: b.hideLinePricing, batchId: b.batchId,
    version: b.version,
  };
}

/** The bill_drafted payload: the bill without its lines (see events.ts BillDrafted); shares the bill's arrays (serialised at once, never kept). */
export function draftedData(b: Bill): BillDrafted {
  const { lines: _lines, ...rest } = billDataView(b);
  return rest;
}

/**
 * The same data as billData, sharing the bill's arrays and objects instead of copying them:
 * for an event payload that is serialised at once and never kept (bulk paths), where the
 * copies of every line would only be garbage. Serialises to exactly billData's JSON.
 */
export function billDataView(b: Bill): BillData {
  return {
    billId: b.billId, status: b.status, number: b.number, sequence: b.sequence, matterId: b.matterId, clientId: b.clientId,
    fileNumber: b.fileNumber, currency: b.currency, invoiceDate: b.invoiceDate, upTo: b.upTo, dueDate: b.dueDate,
    lines: b.lines, allocations: b.allocations, totals: b.totals,
    discount: b.discount, retainerBalanceMinor: b.retainerBalanceMinor, retainerRequestMinor: b.retainerRequestMinor,
    retainerAppliedMinor: b.retainerAppliedMinor, scheduleRowIds: b.scheduleRowIds, items: b.items, hideLinePricing: b.hideLinePricing, batchId: b.batchId,
    version: b.version,
  };
}

function toComposeItem(w: WipCopy): ComposeItem {
  return {
    id: w.id, kind: w.kind, date: w.date, timekeeperId: w.timekeeperId,
    // The composer groups fixed charges by charge type for write-ups/downs.
    code: w.kind === 'fixed_charge' ? w.chargeTypeId : w.code,
    description: w.description, minutes: w.kind === 'time' ? w.billedMinutes : null, rateMinor: w.rateMinor, amountMinor: w.amountMinor,
    behaviour: w.behaviour, taxCode: w.taxCode,
  };
}

const diff = (a: readonly BillItemRef[], b: readonly BillItemRef[]): BillItemRef[] => {
  const ids = new Set(b.map((x) => x.id));
  return a.filter((x) => !ids.has(x.id));
};

/** A matter as a command composes it: billing's copy, its effective options and the firm's settings. */
export interface LoadedMatter { matter: MatterCopy; options: MatterBillingOptions; firm: FirmBillingSettings }

/** What a composition reads besides the matter (gathered one matter at a time, or for many at once by mass billing). */
export interface ComposeSources {
  /** Items the draft holds already (not deleted in matters). */
  onBill: readonly WipCopy[];
  /** The matter's unbilled items up to the cut-off. */
  unbilled: readonly WipCopy[];
  /** Fixed-fee schedule rows on the matter's other live bills: row id to number. */
  taken: ReadonlyMap<string, string>;
  /** The recorded retainer balance (0 when none); used only when the retainer applies. */
  retainerBalanceMinor: number;
  /** The matter's overdue bills (billing's copy of the ledger's balances), for interest by the firm's policy. */
  overdue?: readonly OverdueCandidate[];
  /** The matter's bills whose time-sensitive discount expired undecided (seed 003: ask whether it still applies). */
  expiredDiscounts?: readonly ExpiredDiscount[];
}

/** Whether the firm's interest policy applies to this bill: on, and the clerk gave no manual amount or turned it off. */
export function interestPolicyApplies(m: LoadedMatter, request: BillRequest): boolean {
  return m.firm.interest.enabled && request.interestMinor === undefined && request.interestByPolicy !== false;
}

function interestDescription(charges: readonly InterestCharge[], annualRateBasisPoints: number): string {
  const pct = `${Math.floor(annualRateBasisPoints / 100)}.${String(annualRateBasisPoints % 100).padStart(2, '0')}%`;
  const each = charges.map((c) => `${c.overdueBillNumber} (${c.fromDate} to ${c.throughDate})`);
  const shown = each.length > 5 ? [...each.slice(0, 5), `and ${each.length - 5} more`] : each;
  return `Interest at ${pct} a year on overdue bill${charges.length === 1 ? '' : 's'} ${shown.join(', ')}`;
}

/** 422 unless the dates and the clerk's choices are valid for this matter. */
export function requestCheck(m: LoadedMatter, invoiceDate: string, upTo: string, request: BillRequest): void {
  const errors = requestErrors(invoiceDate, upTo, request);
  const taxCodes = new Set(m.firm.taxRates.map((t) => t.code));
  (request.adHoc ?? []).forEach((a, i) => {
    if (a.taxCode !== null && !taxCodes.has(a.taxCode)) errors[`adHoc.${i}.taxCode`] = `must be one of: ${[...taxCodes].join(', ')}`;
  });
  if (Object.keys(errors).length > 0) throw invalid(errors);
}

/**
 * The composition from what was read: the one place both the single-bill commands and mass
 * billing turn a matter's copy into a bill, so both follow exactly the same rules.
 */
/**
 * A new bill's request, with a matter's every-cycle fixed fee left off when this is not the
 * cycle's bill (cycleFeeDue: the bill of the cycle has been approved and the next billing
 * date is later). It is written into the bill's request (the composer shows the fee as 0.00,
 * to change), so editing or re-drafting the bill later keeps what was decided when it was
 * made. A fee the clerk gives for the bill stands.
 */
export function withCycleFee(m: LoadedMatter, invoiceDate: string, request: BillRequest): BillRequest {
  const o = m.options;
  if (o.arrangement !== 'fixed_fee' || o.fixedFee.mode !== 'every_cycle') return request;
  if (request.fixedFeeAmountMinor !== undefined && request.fixedFeeAmountMinor !== null) return request;
  if (everyCycleFeeOnBill(o, m.matter.billingCycle, m.matter.nextBillingDate, invoiceDate)) return request;
  return { ...request, fixedFeeAmountMinor: 0 };
}

/**
 * A draft's request moved from one invoice date to another: the every-cycle fixed fee decided
 * again for the new date, as withCycleFee decides it for a new bill. What was decided for the
 * old date (the fee on, or left off as 0 when that was not the cycle's bill) is dropped first;
 * a fee the clerk gave (any other amount, or 0 on the cycle's bill) stands.
 */
export function withCycleFeeFor(m: LoadedMatter, fromDate: string, toDate: string, request: BillRequest): BillRequest {
  const o = m.options;
  if (o.arrangement !== 'fixed_fee' || o.fixedFee.mode !== 'every_cycle' || fromDate === toDate) return request;
  const fee = request.fixedFeeAmountMinor;
  const given = fee !== undefined && fee !== null;
  if (given && !(fee === 0 && !everyCycleFeeOnBill(o, m.matter.billingCycle, m.matter.nextBillingDate, fromDate))) return request;
  const { fixedFeeAmountMinor: _decided, ...rest } = request;
  return withCycleFee(m, toDate, rest);
}

export function composeFrom(m: LoadedMatter, invoiceDate: string, upTo: string, request: BillRequest, src: ComposeSources): Composition {
  const seen = new Set<string>();
  const items: WipCopy[] = [];
  for (const w of [...src.onBill, ...src.unbilled]) if (!seen.has(w.id)) { seen.add(w.id); items.push(w); }
  items.sort(store.wipOrder);

  // Instalments on another live bill are billed, whatever matters has heard yet.
  const options = composeOptions(m.options);
  options.fixedFee.schedule = options.fixedFee.schedule.map((r) => (r.invoiceNumber === null && src.taken.has(r.rowId) ? { ...r, invoiceNumber: src.taken.get(r.rowId)! } : r));

  let retainer: { balanceMinor: number; appliesToBill: boolean } | null = null;
  const applies = retainerApplies(m.firm, m.options, request.applyRetainer);
  if (m.options.retainerReplenishment.enabled || applies) retainer = { balanceMinor: src.retainerBalanceMinor, appliesToBill: applies };

  const firm = composeFirm(m.firm);
  if (request.paymentTermsDays !== undefined && request.paymentTermsDays !== null) firm.paymentTermsDays = request.paymentTermsDays;
  let composed: ComposedBill;
  let interestCharges: InterestCharge[] = [];
  try {
    const creq = composeRequest(invoiceDate, upTo, request, retainer);
    if (interestPolicyApplies(m, request)) {
      interestCharges = policyInterest(m.firm.interest, src.overdue ?? [], invoiceDate);
      creq.interestMinor = interestTotalMinor(interestCharges);
      if (interestCharges.length > 0) creq.interestDescription = interestDescription(interestCharges, m.firm.interest.annualRateBasisPoints);
    }
    composed = composeBill({ responsibleTimekeeperId: m.matter.responsibleTimekeeperId, currency: m.matter.currency }, options, firm,
      items.map(toComposeItem), creq);
  } catch (err) {
    // The composer asserts what the clerk asked for: a write-up or down of a group with nothing
    // billable is refused at its own field; anything else as the bill's options.
    if (err instanceof ComposeChoiceError) throw invalid({ [err.field]: err.message }, `The bill cannot be composed: ${err.message}`);
    if (err instanceof AmountLimitError) {
      // An amount past what money may hold (a typo of too many digits): said at the ad hoc line
      // most likely to carry it (the largest), in the bill's currency, not as raw minor units.
      // (Only an amount within a digit of the limit is named: a small line is never blamed for another's size.)
      const near = (v: number | null | undefined) => v !== null && v !== undefined && Math.abs(v) * 10 >= MAX_AMOUNT_MINOR;
      const adHoc = request.adHoc ?? [];
      const largest = adHoc.reduce((best, a, i) => (best < 0 || Math.abs(a.amountMinor) > Math.abs(adHoc[best]!.amountMinor) ? i : best), -1);
      const message = `would take the bill past the most one bill can carry (${formatMoney(MAX_AMOUNT_MINOR, m.matter.currency)})`;
      const field = largest >= 0 && near(adHoc[largest]!.amountMinor) ? `adHoc.${largest}.amount` : near(request.fixedFeeAmountMinor) ? 'fixedFeeAmount' : null;
      throw invalid(field ? { [field]: message } : { options: `its amounts ${message}` }, `The bill cannot be composed: its amounts ${message}`);
    }
    if (err instanceof AssertionError) throw invalid({ options: err.message }, `The bill cannot be composed: ${err.message}`);
    throw err;
  }
  // A bill never totals less than zero (approval refuses it): a draft that would is refused
  // now, naming the ad hoc line that takes it there, so nothing is drafted and no item moves.
  if (composed.totals.totalMinor < 0) {
    const negative = (request.adHoc ?? []).findIndex((a) => a.amountMinor < 0);
    const why = `takes the bill's total below zero (${formatMoney(composed.totals.totalMinor, m.matter.currency)})`;
    throw invalid(negative >= 0 ? { [`adHoc.${negative}.amount`]: why } : { options: `The options chosen ${why}` }, `A bill cannot total less than zero: this one would be ${formatMoney(composed.totals.totalMinor, m.matter.currency)}`);
  }
  const byId = new Map(items.map((w) => [w.id, w]));
  const lines: BillLineData[] = composed.lines.map((l, i) => {
    const it = l.itemId ? byId.get(l.itemId) : undefined;
    return {
      lineNo: i + 1, key: l.key, kind: l.kind, itemId: l.itemId, itemKind: it?.kind ?? null, scheduleRowId: l.scheduleRowId, date: l.date,
      timekeeperId: l.timekeeperId, code: it ? it.code : l.code, chargeTypeId: it?.chargeTypeId ?? null, description: l.description,
      minutes: l.minutes, rateMinor: l.rateMinor, recordedMinor: l.recordedMinor, amountMinor: l.amountMinor, noCharge: l.noCharge,
      taxCode: l.taxCode, taxMinor: l.taxMinor, taskCode: it?.taskCode ?? null, activityCode: it?.activityCode ?? null, expenseCode: it?.expenseCode ?? null,
    };
  });
  return {
    composed, lines, retainerBalanceMinor: retainer ? retainer.balanceMinor : null, candidates: items.filter((w) => w.behaviour !== 'hide'), itemsRead: byId,
    dueDate: composed.dueDate, interestCharges, expiredDiscounts: [...(src.expiredDiscounts ?? [])], compositionKey: compositionKey(m.options, m.firm),
  };
}

/** The bill's composed parts, laid over its identity and history. */
export function withComposition(base: Bill, c: Composition, invoiceDate: string, upTo: string, request: BillRequest): Bill {
  const t = c.composed.totals;
  return {
    ...base, invoiceDate, upTo, dueDate: c.dueDate, lines: c.lines, allocations: c.composed.feeAllocation.map((a) => ({ ...a })).sort(bills.byTimekeeper),
    totals: { ...t, netFeesMinor: c.composed.netFeesMinor },
    discount: c.composed.discount ? { ...c.composed.discount } : null,
    retainerBalanceMinor: c.retainerBalanceMinor, retainerRequestMinor: c.composed.retainerRequestMinor, retainerAppliedMinor: c.composed.retainerAppliedMinor,
    scheduleRowIds: [...c.composed.scheduleRowIds], items: bills.itemsOf(c.lines), hideLinePricing: c.composed.hideLinePricing,
    request, quote: c.composed.quote, compositionKey: c.compositionKey,
  };
}

/** A new draft's bookkeeping before composition (createDraft and mass billing). */
export function newDraftBase(billId: string, m: LoadedMatter, input: { invoiceDate: string; upTo: string; batchId?: string | null }, request: BillRequest, c: Composition, at: string, actorLabel: string): Bill {
  return {
    billId, status: 'draft', number: null, sequence: null, matterId: m.matter.id, clientId: m.matter.clientId,
    fileNumber: m.matter.fileNumber, currency: m.matter.currency, invoiceDate: input.invoiceDate, upTo: input.upTo, dueDate: c.dueDate,
    lines: [], allocations: [], totals: { feesMinor: 0, fixedChargesMinor: 0, disbursementsMinor: 0, discountMinor: 0, interestMinor: 0, taxMinor: 0, totalMinor: 0, netFeesMinor: 0 },
    discount: null, retainerBalanceMinor: null, retainerRequestMinor: 0, retainerAppliedMinor: 0, scheduleRowIds: [], items: [], hideLinePricing: false,
    batchId: input.batchId ?? null, version: 1, onHold: false, request, quote: null, receiptsToReallocateMinor: 0, compositionKey: c.compositionKey, createdAt: at,
    createdBy: actorLabel, updatedAt: at, approvedAt: null, finalisedAt: null, redraftedAt: null, deletedAt: null,
  };
}

/** A draft edited (or recomposed) down to nothing of its own to bill. */
export const NOTHING_LEFT_TO_BILL = 'The bill would have nothing of its own to bill (no chargeable items, no fixed-fee instalment or cycle\'s fee due, no lines you added): delete the draft instead';

/** Why a new bill with lines but nothing of its own to bill (hasSomethingToBill) is refused: createDraft says it, and a bill run skips the matter with it. */
export const nothingToBill = (upTo: string): string =>
  `No billable items on or before ${upTo}: no chargeable WIP or disbursements, and no fixed-fee instalment or cycle's fee due`;

/**
 * What a new bill's composition has to bill on its own, in mass billing's terms (hasSomethingToBill):
 * its chargeable items; a fixed fee due on its own (a schedule row, an every-cycle fee whose cycle
 * has come, or a fee `given` by the clerk); the ad hoc lines the clerk gave. Interest is not
 * counted here: alone, it makes an interest-only bill (interestOnlyRequest). `given`: the request
 * as the clerk sent it (before withCycleFee decided the fee).
 */
export function composedContent(m: LoadedMatter, invoiceDate: string, given: BillRequest, c: Composition): BillContent {
  const lines = c.composed.lines;
  const feeLine = lines.some((l) => l.kind === 'fixed_fee' && l.scheduleRowId === null && l.amountMinor !== 0);
  const feeGiven = given.fixedFeeAmountMinor !== undefined && given.fixedFeeAmountMinor !== null && given.fixedFeeAmountMinor > 0;
  const cycleFeeDue = m.options.fixedFee.mode === 'every_cycle' && fixedFeeDue(m.options, invoiceDate, m.matter.billingCycle, m.matter.nextBillingDate, new Set());
  return {
    chargeableItems: lines.filter((l) => l.itemId !== null && !l.noCharge).length,
    fixedFeeDue: c.composed.scheduleRowIds.length > 0 || (feeLine && (feeGiven || cycleFeeDue)),
    clerkLines: (given.adHoc ?? []).filter((a) => a.amountMinor !== 0).length,
  };
}

/**
 * A new bill with nothing of its own to bill but interest (by the firm's policy on the matter's
 * overdue bills, or charged by hand): drafted, as the clerk asked for it (seed 003: interest
 * "automatically calculated according to the practice policy or charged manually"), but as
 * interest only: what rides on a bill made for work (an every-cycle fee with no billing cycle,
 * the quote's amount) is left off, and the request says so, so editing the draft keeps it.
 * Null: no interest, nothing to draft.
 */
export function interestOnlyRequest(request: BillRequest, c: Composition): BillRequest | null {
  if (c.composed.totals.interestMinor <= 0) return null;
  const out: BillRequest = { ...request };
  if (c.composed.lines.some((l) => l.kind === 'fixed_fee' && l.scheduleRowId === null)) out.fixedFeeAmountMinor = 0;
  const q = c.composed.quote;
  if (q && q.targetMinor !== q.comparedWipMinor) out.applyQuote = false;
  return out;
}

/** Why a loaded matter cannot have a new draft now (the checks createDraft makes before composing), or null. */
export function draftRefusal(m: LoadedMatter, otherDraftNumber: { number: string | null } | null): string | null {
  const refusals = billingRefusals(m.matter.status, m.options);
  if (refusals.length > 0) return refusals.join('; ');
  if (otherDraftNumber) return `The matter already has a draft bill${otherDraftNumber.number ? ` (${otherDraftNumber.number})` : ''}: change or delete it`;
  return null;
}

/** The matter as loadMatter gives it, or the reason it cannot be (404/409 text). */
export function loadedMatter(matter: MatterCopy | null | undefined, firm: FirmBillingSettings | null): LoadedMatter | { status: 404 | 409; reason: string } {
  if (!matter) return { status: 404, reason: 'Matter not found' };
  if (!firm) return { status: 409, reason: 'Billing has not received the firm\'s billing settings yet' };
  if (!matter.options) return { status: 409, reason: 'Billing has not received this matter\'s billing options yet' };
  const foreign = foreignDefaultsOf(matter, firm.currency);
  if (foreign) return { status: 409, reason: foreign };
  return { matter, options: matter.options, firm };
}

/** foreignDefaultsRefusal for billing's copy of a matter (its own options, or the firm's defaults it falls back to). */
export function foreignDefaultsOf(matter: Pick<MatterCopy, 'options' | 'optionsSource' | 'overridden' | 'currency'>, firmCurrency: string): string | null {
  if (!matter.options) return null;
  const inherited = (section: BillingOptionSection) => matter.optionsSource === 'firm_defaults' || !matter.overridden.includes(section);
  return foreignDefaultsRefusal(matter.options, inherited, matter.currency, firmCurrency);
}

/** What the audit log keeps of a bill: enough to see what changed without every line. */
export function auditView(b: Bill) {
  return auditViewOf(b, { items: b.items.length, lines: b.lines.length });
}

/** auditView of a bill whose lines were not read as objects (bulk approving): their counts given. */
export function auditViewOf(b: Omit<Bill, 'lines' | 'items'>, counts: { items: number; lines: number }) {
  return {
    status: b.status, number: b.number, invoiceDate: b.invoiceDate, upTo: b.upTo, totals: b.totals, retainerRequestMinor: b.retainerRequestMinor,
    ...(b.retainerAppliedMinor > 0 ? { retainerAppliedMinor: b.retainerAppliedMinor } : {}), items: counts.items, lines: counts.lines, onHold: b.onHold, version: b.version, request: b.request,
  };
}

export function createBillingCommands(deps: BillingDeps) {
  const { db, clock } = deps;
  const now = (): string => clock.now().toISOString();

  function emit<K extends EventName>(trx: Tx, ctx: CommandContext, type: K, payload: BillingEvents[K]) {
    return appendEvent<BillingEvents, K>(trx, clock, ctx, type, payload);
  }

  async function inTransaction<T>(fn: (trx: Tx) => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await db.transaction().execute(fn);
    } catch (err) {
      const code = (err as { code?: string } | null)?.code;
      if (code === '40P01' || code === '40001') throw conflict('Someone else changed the same bill or items at the same moment: try again');
      if (isUniqueViolation(err)) {
        const text = String((err as { message?: string }).message ?? '') + String((err as { constraint?: string }).constraint ?? '');
        if (text.includes('one_draft') || text.includes('billing_bill.matter_id')) throw conflict('The matter already has a draft bill (another was saved at the same moment): change or delete it');
        if (text.includes('live_item') || text.includes('billing_bill_line.item_id')) throw conflict('An item is already on another bill: reload the composer');
        if (text.includes('number') || text.includes('sequence')) throw conflict('That bill number was just taken: try again');
      }
      throw err;
    }
    deps.relay.kick();
    return result;
  }

  // ---- reading what a command needs ----------------------------------------------------

  async function loadMatter(ex: Executor, matterId: string): Promise<LoadedMatter> {
    const matter = await store.getMatterCopy(ex, matterId);
    const m = loadedMatter(matter, matter ? await store.getFirmSettings(ex) : null);
    if ('reason' in m) throw m.status === 404 ? notFound('Matter') : conflict(m.reason);
    return m;
  }

  /**
   * Compose a bill from the copy: the unbilled items up to the cut-off plus the items the
   * draft (billId) already holds, the matter's options with instalments on other live bills
   * marked billed, the recorded retainer balance, and the clerk's choices.
   */
  async function compose(ex: Executor, m: LoadedMatter, invoiceDate: string, upTo: string, request: BillRequest, billId: string | null): Promise<Composition> {
    await requestCheckAll(ex, m, invoiceDate, upTo, request);
    const onBill = billId ? (await bills.itemsOnBill(ex, billId)).filter((i) => !i.deletedInMatters) : [];
    const unbilled = await store.unbilledWip(ex, m.matter.id, upTo);
    const taken = await bills.scheduleRowsOnLiveBills(ex, m.matter.id, billId);
    const needsRetainer = m.options.retainerReplenishment.enabled || retainerApplies(m.firm, m.options, request.applyRetainer);
    const balance = needsRetainer ? await bills.findRetainerBalance(ex, m.matter.id) : null;
    const overdue = interestPolicyApplies(m, request) && isCalendarDate(invoiceDate) ? await balances.overdueCandidates(ex, m.matter.id, invoiceDate, billId) : [];
    const expiredDiscounts = isCalendarDate(invoiceDate) ? await balances.expiredDiscounts(ex, m.matter.id, invoiceDate) : [];
    return composeFrom(m, invoiceDate, upTo, request, { onBill, unbilled, taken, retainerBalanceMinor: balance?.balanceMinor ?? 0, overdue, expiredDiscounts });
  }

  /**
   * requestCheck, and an ad hoc fee's timekeeper must be one billing knows: the fee is that
   * timekeeper's work in the fee allocation (and the ledger credits their fees account), so an
   * id of no timekeeper would credit fees to no one. All field errors in one 422.
   */
  async function requestCheckAll(ex: Executor, m: LoadedMatter, invoiceDate: string, upTo: string, request: BillRequest): Promise<void> {
    const errors: Record<string, string> = {};
    const adHoc = request.adHoc ?? [];
    for (let i = 0; i < adHoc.length; i++) {
      const a = adHoc[i]!;
      if (a.kind !== 'fee' || a.timekeeperId === null || a.timekeeperId === undefined) continue;
      if (typeof a.timekeeperId !== 'string' || a.timekeeperId.length > 100 || !await store.getTimekeeperCopy(ex, a.timekeeperId)) {
        errors[`adHoc.${i}.timekeeperId`] = 'must be one of the firm\'s timekeepers (or none: an adjustment, split by the matter\'s rule)';
      }
    }
    // A time filter naming no timekeeper billed no time without a word (review 57 F6).
    const tks = request.filters?.time?.timekeeperIds ?? [];
    for (let i = 0; i < tks.length && i < 500; i++) {
      const id = tks[i];
      if (typeof id !== 'string' || id.length > 100 || !await store.getTimekeeperCopy(ex, id)) errors[`filters.time.timekeeperIds.${i}`] = 'is not one of the firm\'s timekeepers';
    }
    try {
      requestCheck(m, invoiceDate, upTo, request);
    } catch (e) {
      if (e instanceof HttpError && e.status === 422 && Object.keys(errors).length > 0) throw invalid({ ...e.fields, ...errors });
      throw e;
    }
    if (Object.keys(errors).length > 0) throw invalid(errors);
  }

  /**
   * A numbered bill's receipts, as the ledger has them and as an undelivered approval will put
   * back (approved, finalised, or reverted again since). The undelivered approval is read first:
   * once it is delivered the ledger's balance event about it is committed, so the second read
   * sees it (Postgres reads each statement afresh; the other order could miss both).
   */
  async function receiptsOf(ex: Executor, b: Bill): Promise<{ receiptsMinor: number; receiptsAwaitingPostingMinor: number }> {
    // A bill never numbered was never posted: the ledger has no receipts on it.
    if (b.sequence === null) return { receiptsMinor: 0, receiptsAwaitingPostingMinor: 0 };
    const receiptsAwaitingPostingMinor = await bills.receiptsAwaitingPostingMinor(ex, b.billId);
    return { receiptsAwaitingPostingMinor, receiptsMinor: await bills.receiptsAllocatedMinor(ex, b.billId) };
  }

  /**
   * The receipts a revert or re-draft takes off the bill, to go back on it when it is approved
   * again: those the ledger has on it, or, while its approval is undelivered, those that
   * approval will put back (the larger: once the ledger has taken it, its figure is the truth).
   */
  async function receiptsTakenOff(ex: Executor, b: Bill): Promise<number> {
    const r = await receiptsOf(ex, b);
    return Math.max(r.receiptsMinor, r.receiptsAwaitingPostingMinor);
  }

  /** `action`: the one action asked (only approve reads the firm's period rule); none: every action (the bill page). */
  async function factsFor(ex: Executor, b: Bill, action?: BillAction): Promise<BillFacts> {
    const matter = await store.getMatterCopy(ex, b.matterId);
    const firm = b.status === 'draft' && b.compositionKey !== null ? await store.getFirmSettings(ex) : null;
    const matterRefusals = !matter ? ['Billing has no copy of this matter'] : matter.options ? billingRefusals(matter.status, matter.options) : ['Billing has not received this matter\'s billing options yet'];
    const other = await bills.otherDraft(ex, b.matterId, b.billId);
    return {
      status: b.status, number: b.number, sequence: b.sequence, onHold: b.onHold, lineCount: b.lines.length, totalMinor: b.totals.totalMinor,
      openConflicts: await bills.openConflictCount(ex, b.billId), matterRefusals, otherDraft: other ? (other.number ?? 'an unnumbered draft') : null,
      // A bill never numbered was never posted: the ledger has no receipts on it.
      latestLiveSequence: await bills.latestLiveSequence(ex, b.matterId), ...await receiptsOf(ex, b),
      receiptsToReallocateMinor: b.receiptsToReallocateMinor,
      // The firm's period rule, read only where it can refuse: approving a draft; undoing
      // (revert, re-draft, void) a posted bill, which posts on the bill's own date.
      periodRefusal: b.status === 'draft' && (action === undefined || action === 'approve') ? await periodRule(ex, periodRefusal, b.invoiceDate) : null,
      undoPeriodRefusal: (b.status === 'approved' || b.status === 'finalised') && (action === undefined || action === 'revert' || action === 'redraft' || action === 'delete')
        ? await periodRule(ex, undoPeriodRefusal, b.invoiceDate) : null,
      composedUnderOtherOptions: composedUnderOtherOptions(b, matter?.options, firm),
      sequenceDateRefusal: b.status === 'draft' && b.sequence !== null && (action === undefined || action === 'approve')
        ? sequenceDateRefusal(b.invoiceDate, await bills.sequenceNeighbours(ex, b.matterId, b.sequence)) : null,
    };
  }

  /** `rule` applied to a bill dated `invoiceDate` today, with the ledger's periods and the firm's policy as billing has them. */
  async function periodRule(ex: Executor, rule: typeof periodRefusal, invoiceDate: string): Promise<string | null> {
    return rule(invoiceDate, isoDate(clock.now()), await balances.ledgerPeriods(ex), (await store.getFirmSettings(ex))?.postingOutsideCurrentPeriod);
  }

  /** Load a bill in the transaction and refuse (409, with the reason) unless the action is allowed now. */
  /**
   * The bill, if `action` is allowed on it now. With `expectedVersion` (the version the clerk's
   * page showed) a bill changed since is refused (409): the command then updates the bill
   * only at the version read here (updateBill's guard), so another tab's approve, delete or
   * edit in between cannot be acted over (a Delete clicked on a draft never voids the bill
   * another tab just approved).
   */
  /** The bill, refused (404, 409) unless `action` is allowed on it as the clerk saw it; reads only (a command's first step, or checkAction). */
  async function loadFor(trx: Executor, billId: string, action: BillAction, expectedVersion?: number): Promise<Bill> {
    const b = await bills.findBill(trx, billId);
    if (!b) throw notFound('Bill');
    if (expectedVersion !== undefined && b.version !== expectedVersion) {
      throw new HttpError(409, BILL_CHANGED, `${CHANGED_SINCE_OPENED} (it is now ${b.status === 'draft' ? 'a draft' : b.status}${b.number ? `, ${b.number}` : ''}): look at it again before acting`);
    }
    const v = verdict(action, await factsFor(trx, b, action));
    if (!v.allowed) throw conflict(v.reason!);
    return b;
  }

  /**
   * A bill template the clerk names must be one the firm has (as a bill run checks): an
   * unknown name would quietly print the bill with the matter's template. The draft's own
   * template (`kept`, read only when the name is not one of the firm's) stays allowed even if
   * it has since been removed.
   */
  async function checkTemplate(ex: Executor, request: BillRequest, kept?: () => Promise<string | null | undefined>): Promise<void> {
    const refusal = unknownTemplate(request.template, (await ps.listBillTemplates(ex)).map((t) => t.name));
    if (refusal && (!kept || request.template!.trim() !== (await kept())?.trim())) throw invalid({ template: refusal });
  }

  /**
   * Refuse (409, rolling back) a change that takes a bill out of approved or finalised (revert,
   * re-draft, void) while its outputs are going out: while a production run holds it (it may be
   * printing or emailing the bill, which would then go out under a number that is a draft
   * again), or while a manual email of it is being sent. Called after the bill's row is
   * updated, so on Postgres a production claim that committed meanwhile is seen (see
   * claimMany); the manual email is read under the bill's email hold, which a manual email
   * takes to claim its send and, in that claim, to check the bill is still at the approval it
   * renders: one of the two always sees the other.
   */
  async function refuseWhileProduced(trx: Tx, billId: string): Promise<void> {
    if (await ps.beingProduced(trx, billId, now())) throw conflict('The bill is being produced now (its PDF, print copies and email): wait for production to finish, then try again');
    await ps.holdBillEmail(trx, billId);
    if (await ps.manualEmailSending(trx, billId, now())) throw conflict('The bill is being emailed from its compose page just now: wait for the send to finish, then try again');
  }

  // ---- the commands ----------------------------------------------------------------------

  /** Refuse (422) an invoice date out of the range a bill may be dated in (invoiceDateRangeError), given or changed to. */
  function checkInvoiceDateRange(invoiceDate: string): void {
    const range = isCalendarDate(invoiceDate) ? invoiceDateRangeError(invoiceDate, isoDate(clock.now())) : null;
    if (range) throw invalid({ invoiceDate: range });
  }

  /**
   * A new bill's composition, as createDraft makes it and the composer previews it: refused
   * (409) with nothing to bill; by mass billing's rule (hasSomethingToBill) a quote, a fee
   * riding on bills made for work, or no-charge items never make a bill alone; interest (by
   * policy or by hand) makes an interest-only one (its request says so).
   */
  async function newBillComposition(ex: Executor, m: LoadedMatter, input: { invoiceDate: string; upTo: string; request?: BillRequest; byRun?: boolean }, request: BillRequest,
    opts: { preview?: boolean } = {}): Promise<{ request: BillRequest; c: Composition }> {
    const c = await compose(ex, m, input.invoiceDate, input.upTo, request, null);
    if (c.lines.length === 0) {
      // The composer shows an empty bill (with what it has to say: expired discounts to decide); saving it is refused.
      if (opts.preview) return { request, c };
      throw conflict(`No billable items on or before ${input.upTo}`);
    }
    if (hasSomethingToBill(composedContent(m, input.invoiceDate, input.request ?? {}, c))) return { request, c };
    const interestOnly = input.byRun ? null : interestOnlyRequest(request, c);
    if (!interestOnly) throw conflict(nothingToBill(input.upTo));
    return { request: interestOnly, c: await compose(ex, m, input.invoiceDate, input.upTo, interestOnly, null) };
  }

  async function createDraft(trx: Tx, ctx: CommandContext, input: DraftInput): Promise<Bill> {
    checkInvoiceDateRange(input.invoiceDate);
    const m = await loadMatter(trx, input.matterId);
    let request = withCycleFee(m, input.invoiceDate, input.request ?? {});
    await checkTemplate(trx, request);
    const refusal = draftRefusal(m, await bills.otherDraft(trx, m.matter.id, null));
    if (refusal) throw conflict(refusal);
    let c: Composition;
    ({ request, c } = await newBillComposition(trx, m, input, request));
    const base = newDraftBase(newId(clock), m, input, request, c, now(), ctx.actorLabel);
    const bill = withComposition(base, c, input.invoiceDate, input.upTo, request);
    // The bill row first (a concurrent draft on the matter fails on the one-draft index),
    // then its items checked free, then its lines, which take them (a concurrent bill taking
    // any of them makes this one fail on the live-line index).
    await bills.insertBill(trx, bill);
    await bills.checkItemsFree(trx, bill.billId, bill.items.map((i) => i.id));
    await store.lockItemsAsComposed(trx, bill.items.map((i) => c.itemsRead.get(i.id)!));
    await bills.replaceLines(trx, bill);
    await balances.replaceInterestCharges(trx, bill.billId, c.interestCharges);
    await emit(trx, ctx, 'billing.bill_drafted', draftedData(bill));
    await audit(trx, clock, ctx, { action: 'billing.bill_drafted', entityType: 'billing_bill', entityId: bill.billId, after: auditView(bill) });
    return bill;
  }

  async function updateDraft(trx: Tx, ctx: CommandContext, billId: string, change: DraftChange): Promise<Bill> {
    // The version the clerk's page showed is checked first: a draft approved, deleted or saved by
    // another tab since is refused as changed (BILL_CHANGED, what the pages and lists test), not
    // with the reason its new status gives (which would tell the clerk to revert a bill they never saw approved).
    const refuseIfMoved = (b: Bill | null): void => {
      if (!b || change.expectedVersion === undefined || change.expectedVersion === b.version) return;
      const now = b.status === 'draft' ? '' : ` (it is now ${b.status}${b.number ? `, ${b.number}` : ''})`;
      throw new HttpError(409, BILL_CHANGED, `The draft was changed by someone else${now} (version ${b.version}, you had ${change.expectedVersion}): reload it`);
    };
    // Postgres: the bill's conflicts held before the items are read: the save resolves them (store.lockBillsAgainstConflicts).
    await store.lockBillsAgainstConflicts(trx, [billId]);
    refuseIfMoved(await bills.findBill(trx, billId));
    const before = await loadFor(trx, billId, 'edit');
    refuseIfMoved(before);
    const m = await loadMatter(trx, before.matterId);
    const invoiceDate = change.invoiceDate ?? before.invoiceDate;
    // A draft keeps the date it has; a new one must be in range, and a numbered bill's keeps its number's place in date order.
    if (invoiceDate !== before.invoiceDate) {
      checkInvoiceDateRange(invoiceDate);
      if (before.sequence !== null) {
        const why = sequenceDateRefusal(invoiceDate, await bills.sequenceNeighbours(trx, before.matterId, before.sequence));
        if (why) throw invalid({ invoiceDate: why }, `Invoice date ${invoiceDate} ${why}`);
      }
    }
    const upTo = change.upTo ?? before.upTo;
    const kept = change.request ?? before.request;
    // Modify batch: the fee's decision follows the new invoice date (read with the matter, in this transaction).
    // A request given anew (the composer's Save) with no fee: blank means what it means on a new bill (the
    // quote on the cycle's bill, none off it), as the composer's hint says, not always the quote.
    const request = change.redecideCycleFee ? withCycleFeeFor(m, before.invoiceDate, invoiceDate, kept)
      : change.request !== undefined ? withCycleFee(m, invoiceDate, change.request) : kept;
    await checkTemplate(trx, request, async () => before.request.template);
    const c = await compose(trx, m, invoiceDate, upTo, request, billId);
    if (c.lines.length === 0) throw conflict('The bill would have no lines: delete the draft instead');
    // The rule a new bill meets (newBillComposition): a quote, a fee riding on bills made for
    // work or no-charge items do not make a bill alone; interest does (an interest-only bill).
    if (!hasSomethingToBill(composedContent(m, invoiceDate, request, c)) && c.composed.totals.interestMinor <= 0) {
      throw conflict(NOTHING_LEFT_TO_BILL);
    }
    const after = withComposition({ ...before, version: before.version + 1, updatedAt: now(), fileNumber: m.matter.fileNumber }, c, invoiceDate, upTo, request);
    const held = await bills.itemsOnBill(trx, billId);
    const heldRefs = held.map((h) => ({ kind: h.kind, id: h.id }));
    const released = diff(heldRefs, after.items);
    const added = diff(after.items, heldRefs);
    await bills.updateBill(trx, after, { status: 'draft', version: before.version });
    await bills.releaseItems(trx, billId, released.map((r) => r.id));
    await bills.checkItemsFree(trx, billId, added.map((a) => a.id));
    await store.lockItemsAsComposed(trx, added.map((a) => c.itemsRead.get(a.id)!));
    await bills.replaceLines(trx, after);
    await balances.replaceInterestCharges(trx, billId, c.interestCharges);
    await bills.resolveConflicts(trx, billId, now());
    const gone = new Set(held.filter((h) => h.deletedInMatters).map((h) => h.id));
    await emit(trx, ctx, 'billing.draft_updated', { ...billData(after), addedItems: added, releasedItems: released.filter((r) => !gone.has(r.id)) });
    await audit(trx, clock, ctx, { action: 'billing.draft_updated', entityType: 'billing_bill', entityId: billId, before: auditView(before), after: auditView(after) });
    return after;
  }

  /** Delete a draft (items unbilled again), or the most recent unreceipted approved/finalised bill (postings reversed). */
  async function deleteBill(trx: Tx, ctx: CommandContext, billId: string, only?: 'draft', expectedVersion?: number): Promise<Bill> {
    const before = await loadFor(trx, billId, 'delete', expectedVersion);
    if (only === 'draft' && before.status !== 'draft') throw conflict(`Only a draft can be deleted here; this bill is ${before.status}`);
    const at = now();
    const after: Bill = { ...before, status: 'deleted', deletedAt: at, updatedAt: at, version: before.version + 1 };
    await bills.updateBill(trx, after, { status: before.status, version: before.version });
    if (before.status !== 'draft') {
      await refuseWhileProduced(trx, billId);
      await refundRetainer(trx, clock, ctx, before, 'deleted', at);
    }
    const held = await bills.itemsOnBill(trx, billId);
    const gone = new Set(held.filter((h) => h.deletedInMatters).map((h) => h.id));
    const released = held.filter((h) => !gone.has(h.id)).map((h) => ({ kind: h.kind, id: h.id }));
    await bills.releaseItems(trx, billId);
    await bills.retireLines(trx, billId);
    await bills.resolveConflicts(trx, billId, at);
    if (before.status === 'draft') {
      await emit(trx, ctx, 'billing.draft_deleted', {
        billId, matterId: before.matterId, clientId: before.clientId, fileNumber: before.fileNumber, number: before.number, releasedItems: released,
      });
    } else {
      await emit(trx, ctx, 'billing.bill_deleted', {
        ...billData(after), previousStatus: before.status as 'approved' | 'finalised', reversed: billData(before), releasedItems: released,
      });
    }
    await audit(trx, clock, ctx, { action: before.status === 'draft' ? 'billing.draft_deleted' : 'billing.bill_deleted', entityType: 'billing_bill', entityId: billId, before: auditView(before), after: auditView(after) });
    return after;
  }

  async function approve(trx: Tx, ctx: CommandContext, billId: string, expectedVersion?: number): Promise<Bill> {
    // Postgres: the bill's conflicts held while they are read (store.lockBillsAgainstConflicts).
    await store.lockBillsAgainstConflicts(trx, [billId]);
    const before = await loadFor(trx, billId, 'approve', expectedVersion);
    let { number, sequence } = before;
    if (sequence === null) {
      sequence = await bills.takeSequence(trx, before.matterId);
      number = billNumber(before.fileNumber, sequence);
    }
    const at = approvalTime(now(), before.approvedAt);
    // The receipts a re-draft or revert took off go back on in the ledger as it posts the bill: none left to reallocate.
    const after: Bill = { ...before, status: 'approved', number, sequence, approvedAt: at, updatedAt: at, version: before.version + 1, receiptsToReallocateMinor: 0 };
    await bills.updateBill(trx, after, { status: 'draft', version: before.version });
    await payRetainer(trx, clock, ctx, after, at);
    await emit(trx, ctx, 'billing.bill_approved', { ...billData(after), receiptsToReallocateMinor: before.receiptsToReallocateMinor });
    await audit(trx, clock, ctx, { action: 'billing.bill_approved', entityType: 'billing_bill', entityId: billId, before: auditView(before), after: auditView(after) });
    return after;
  }

  async function revert(trx: Tx, ctx: CommandContext, billId: string, expectedVersion?: number): Promise<Bill> {
    const before = await loadFor(trx, billId, 'revert', expectedVersion);
    const at = now();
    // As a re-draft: the ledger releases the bill's receipts, to allocate them again when it is approved.
    const receipts = await receiptsTakenOff(trx, before);
    const after: Bill = { ...before, status: 'draft', updatedAt: at, version: before.version + 1, receiptsToReallocateMinor: before.receiptsToReallocateMinor + receipts };
    await bills.updateBill(trx, after, { status: 'approved', version: before.version });
    await refuseWhileProduced(trx, billId);
    await refundRetainer(trx, clock, ctx, before, 'reverted to draft', at);
    await emit(trx, ctx, 'billing.bill_reverted', { ...billData(after), reversed: billData(before) });
    await audit(trx, clock, ctx, { action: 'billing.bill_reverted', entityType: 'billing_bill', entityId: billId, before: auditView(before), after: auditView(after) });
    return after;
  }

  async function finalise(trx: Tx, ctx: CommandContext, billId: string, expectedVersion?: number): Promise<Bill> {
    return finaliseRead(trx, ctx, await loadFor(trx, billId, 'finalise', expectedVersion));
  }

  /**
   * Finalise a bill as the caller last read it (bill production read it when it took the
   * bill): finalising depends on the status alone, and the update is refused (409) unless the
   * bill is still approved at that version, so nothing need be read again.
   */
  async function finaliseRead(trx: Tx, ctx: CommandContext, before: Bill): Promise<Bill> {
    const refusal = finaliseRefusal(before.status);
    if (refusal) throw conflict(refusal);
    const at = now();
    const after: Bill = { ...before, status: 'finalised', finalisedAt: at, updatedAt: at, version: before.version + 1 };
    await bills.updateBill(trx, after, { status: 'approved', version: before.version });
    await emit(trx, ctx, 'billing.bill_finalised', billData(after));
    await audit(trx, clock, ctx, { action: 'billing.bill_finalised', entityType: 'billing_bill', entityId: before.billId, before: auditView(before), after: auditView(after) });
    return after;
  }

  async function redraft(trx: Tx, ctx: CommandContext, billId: string, expectedVersion?: number): Promise<Bill> {
    const before = await loadFor(trx, billId, 'redraft', expectedVersion);
    const at = now();
    const receipts = await receiptsTakenOff(trx, before);
    const after: Bill = {
      ...before, status: 'draft', redraftedAt: at, updatedAt: at, version: before.version + 1,
      receiptsToReallocateMinor: before.receiptsToReallocateMinor + receipts,
    };
    await bills.updateBill(trx, after, { status: 'finalised', version: before.version });
    await refuseWhileProduced(trx, billId);
    await refundRetainer(trx, clock, ctx, before, 're-drafted', at);
    await emit(trx, ctx, 'billing.bill_redrafted', { ...billData(after), reversed: billData(before), receiptsToReallocateMinor: after.receiptsToReallocateMinor });
    await audit(trx, clock, ctx, { action: 'billing.bill_redrafted', entityType: 'billing_bill', entityId: billId, before: auditView(before), after: auditView(after) });
    return after;
  }

  async function setOnHold(trx: Tx, ctx: CommandContext, billId: string, onHold: boolean, expectedVersion?: number): Promise<Bill> {
    const before = await loadFor(trx, billId, 'hold', expectedVersion);
    if (before.onHold === onHold) return before;
    const after: Bill = { ...before, onHold, updatedAt: now(), version: before.version + 1 };
    await bills.updateBill(trx, after, { status: 'draft', version: before.version });
    await audit(trx, clock, ctx, { action: onHold ? 'billing.bill_held' : 'billing.bill_released', entityType: 'billing_bill', entityId: billId, before: { onHold: before.onHold }, after: { onHold } });
    return after;
  }

  /**
   * `expectedVersion`: the version the clerk saw (0: none recorded then); a balance recorded by
   * someone else since is refused (409), not overwritten. Without it (the API's older callers)
   * the balance is recorded over whatever is there.
   */
  async function setRetainerBalance(trx: Tx, ctx: CommandContext, matterId: string, input: { balanceMinor: number; asOf: string; note?: string | null; expectedVersion?: number }): Promise<RetainerBalance> {
    const e: Record<string, string> = {};
    if (input.expectedVersion !== undefined && !(Number.isSafeInteger(input.expectedVersion) && input.expectedVersion >= 0)) e.version = 'must be the version the page showed: reload the page';
    if (!Number.isSafeInteger(input.balanceMinor)) e.balance = 'must be an amount';
    else if (input.balanceMinor < 0) e.balance = 'must be an amount of zero or more (money held cannot be below nothing)';
    if (!isCalendarDate(input.asOf)) e.asOf = 'must be a date (YYYY-MM-DD)';
    if (input.note && input.note.length > 500) e.note = 'must be at most 500 characters';
    if (Object.keys(e).length > 0) throw invalid(e);
    const matter = await store.getMatterCopy(trx, matterId);
    if (!matter) throw notFound('Matter');
    const before = await bills.findRetainerBalance(trx, matterId);
    const changed = () => conflict(`The retainer balance was recorded by someone else since (${before ? `now ${formatMoney(before.balanceMinor, before.currency)} as of ${before.asOf}, by ${before.updatedBy}` : 'it was removed'}): reload the page and record it again`);
    if (input.expectedVersion !== undefined && input.expectedVersion !== (before?.version ?? 0)) throw changed();
    const after: RetainerBalance = {
      matterId, balanceMinor: input.balanceMinor, currency: matter.currency, asOf: input.asOf, note: input.note?.trim() || null,
      version: (before?.version ?? 0) + 1, updatedAt: now(), updatedBy: ctx.actorLabel,
    };
    // Over the version just read: a save committed meanwhile (Postgres) is refused, not overwritten.
    if (!await bills.saveRetainerBalance(trx, after)) throw conflict('The retainer balance was recorded by someone else at the same moment: reload the page and record it again');
    await audit(trx, clock, ctx, { action: 'billing.retainer_balance_set', entityType: 'billing_retainer_balance', entityId: matterId, before: before ?? undefined, after });
    return after;
  }

  const own = <A extends unknown[], R>(fn: (trx: Tx, ctx: CommandContext, ...args: A) => Promise<R>) =>
    (ctx: CommandContext, ...args: A): Promise<R> => inTransaction((trx) => fn(trx, ctx, ...args));

  return {
    createDraft: own(createDraft),
    updateDraft: own(updateDraft),
    /** Delete a draft only (409 for any other bill). */
    deleteDraft: own((trx, ctx, billId: string, expectedVersion?: number) => deleteBill(trx, ctx, billId, 'draft', expectedVersion)),
    /** Delete a draft, or the matter's most recent unreceipted approved/finalised bill. */
    deleteBill: own((trx, ctx, billId: string, expectedVersion?: number) => deleteBill(trx, ctx, billId, undefined, expectedVersion)),
    approve: own(approve),
    revert: own(revert),
    finalise: own(finalise),
    finaliseRead: own(finaliseRead),
    redraft: own(redraft),
    setOnHold: own(setOnHold),
    setRetainerBalance: own(setRetainerBalance),
    clock,

    // Reads.
    findBill: (id: string) => bills.findBill(db, id),
    /** Several bills at once (absent ids left out). */
    findBills: (ids: readonly string[]) => bills.findBills(db, ids),
    listBills: (matterId: string, opts: { includeDeleted?: boolean } = {}) => bills.listBills(db, matterId, opts),
    /** Every action on the bill: allowed now, or why not. */
    actionsFor: async (b: Bill): Promise<Record<BillAction, Verdict>> => verdicts(await factsFor(db, b)),
    /** The firm's period rule today, as the pages say it (balances.approvalPeriodNotes). */
    periodNotes: () => balances.approvalPeriodNotes(db, isoDate(clock.now())),
    /** Whether `action` would be allowed on the bill as the clerk saw it (`expectedVersion`), refused as acting would be: 404, 409 (changed since, or not allowed now). Writes nothing. */
    checkAction: (billId: string, action: BillAction, expectedVersion: number): Promise<Bill> => loadFor(db, billId, action, expectedVersion),
    /**
     * What saving would refuse about the invoice date (its range; a numbered draft's place in
     * date order), for the live preview to say before Save does; null when nothing. A draft's
     * own date is not checked again (a draft keeps the date it has).
     */
    invoiceDateError: async (input: { invoiceDate: string; billId?: string | null }): Promise<string | null> => {
      if (!isCalendarDate(input.invoiceDate)) return null;
      const b = input.billId ? await bills.billDating(db, input.billId) : null;
      if (b && b.invoiceDate === input.invoiceDate) return null;
      const range = invoiceDateRangeError(input.invoiceDate, isoDate(clock.now()));
      if (range) return range;
      return b && b.status === 'draft' && b.sequence !== null ? sequenceDateRefusal(input.invoiceDate, await bills.sequenceNeighbours(db, b.matterId, b.sequence)) : null;
    },
    /** Compose without saving (the composer's live totals); billId: recompose that draft. */
    preview: async (input: { matterId: string; invoiceDate: string; upTo: string; request?: BillRequest; billId?: string | null }): Promise<Composition> => {
      const m = await loadMatter(db, input.matterId);
      const billId = input.billId;
      if (billId) {
        // Recompose that draft only on its own matter: another matter's bill would lend this one its items.
        const b = await bills.findBill(db, billId);
        if (!b || b.matterId !== input.matterId) throw invalid({ billId: 'must be a draft bill of this matter' });
      }
      await checkTemplate(db, input.request ?? {}, billId ? async () => (await bills.findBill(db, billId))?.request.template : undefined);
      if (billId) return compose(db, m, input.invoiceDate, input.upTo, withCycleFee(m, input.invoiceDate, input.request ?? {}), billId);
      // A new bill is composed as createDraft will make it (the every-cycle fee by its cycle; refused with nothing to bill; interest alone, interest only).
      return (await newBillComposition(db, m, input, withCycleFee(m, input.invoiceDate, input.request ?? {}), { preview: true })).c;
    },
    /** Why the matter cannot be billed now (empty: it can), and its draft if it has one. */
    matterState: async (matterId: string) => {
      const matter = await store.getMatterCopy(db, matterId);
      if (!matter) return null;
      return {
        matter, refusals: matter.options ? billingRefusals(matter.status, matter.options) : ['Billing has not received this matter\'s billing options yet'],
        draft: await bills.otherDraft(db, matterId, null), retainer: await bills.findRetainerBalance(db, matterId),
      };
    },
    findRetainerBalance: (matterId: string) => bills.findRetainerBalance(db, matterId),
    /** The bill templates a draft may name. */
    billTemplateNames: async (): Promise<string[]> => (await ps.listBillTemplates(db)).map((t) => t.name),
    itemsOnBill: (billId: string): Promise<BillItem[]> => bills.itemsOnBill(db, billId),
  };
}

export type BillingCommands = ReturnType<typeof createBillingCommands>;
