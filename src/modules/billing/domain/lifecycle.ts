/**
 * The life of a bill as pure functions: what the clerk asked for (BillRequest) and how it
 * becomes the composer's input, whether a matter can be billed, and which transitions a
 * bill allows now (with the reason when not). The commands gather the facts and call these;
 * the pages and the API show the same reasons.
 *
 *   draft --approve--> approved --finalise--> finalised
 *     ^                  |                       |
 *     +-----revert-------+                       |
 *     +-----redraft------------------------------+
 *   draft --delete--> deleted (items unbilled; a numbered draft is kept as a void bill)
 *   approved/finalised --delete--> deleted (only the most recent, unreceipted bill)
 */
import { assert } from '../../../shared/assert.ts';
import { firstOpenPeriod, periodOf } from '../../../shared/periods.ts';
import type { BillingOptionSection, FirmBillingSettings, MatterBillingOptions } from '../../matters/events.ts';
import type { BillStatusName } from '../events.ts';
import type { AdHocLine, ComposeFirm, ComposeOptions, ComposeRequest } from './compose.ts';
import type { DiscountInput } from './rules.ts';
import { addDays } from './rules.ts';

/** The clerk's choices for one bill, stored with it (request_json) and replayed on recomposition. */
export interface BillRequest {
  filters?: {
    /** none: no time on this bill (it waits: a run's time "To a cap" left the matter out). */
    time?: { from?: string; to?: string; timekeeperIds?: string[]; none?: boolean };
    disbursements?: { from?: string; to?: string; codes?: string[] };
  };
  /** Items toggled out (deferred to a later bill). */
  excludedIds?: string[];
  /** Write-up/down targets in minor units: per timekeeper (time), per charge type id (fixed charges). */
  writeTo?: { timekeeper?: Record<string, number>; chargeType?: Record<string, number> };
  /** Every-cycle fixed fee for this bill (defaults to the quote). */
  fixedFeeAmountMinor?: number | null;
  /** Apply the matter's quote rules (default true). */
  applyQuote?: boolean;
  /** Overrides the matter's discount for this bill; validUntil makes it time-sensitive. */
  discount?: DiscountInput | null;
  /** Interest charged on this bill by hand; when given (even 0), the firm's interest policy is not applied. */
  interestMinor?: number;
  /**
   * Charge interest on the matter's overdue bills by the firm's policy (domain/interest.ts).
   * Default: yes when the firm's policy is on and no manual amount is given.
   */
  interestByPolicy?: boolean | null;
  adHoc?: AdHocLine[];
  /** Apply the general retainer to this bill (default: the matter's automation setting). */
  applyRetainer?: boolean | null;
  /** This bill's template (default: the matter's billTemplate); set by a mass-billing run, changeable per bill. */
  template?: string | null;
  /** This bill's payment terms in days (default: the firm's): the due date is the invoice date plus these. */
  paymentTermsDays?: number | null;
}

/** Payment terms a bill or run may set: as the firm settings allow (and `dueDate` asserts). */
export const MAX_PAYMENT_TERMS_DAYS = 365;
/** A bill template's name (as the matter's billTemplate option). */
export const MAX_TEMPLATE_CHARS = 100;

export const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;

export function isCalendarDate(s: unknown): s is string {
  if (typeof s !== 'string' || !DATE_RE.test(s)) return false;
  const ms = Date.parse(`${s}T00:00:00Z`);
  return Number.isFinite(ms) && new Date(ms).toISOString().slice(0, 10) === s;
}

/** A bill is dated at most this many days after today (a month-end run prepared early; not a mistyped year). */
export const MAX_INVOICE_DAYS_AHEAD = 366;
/** ... and at most this many years before today (a late bill; not a mistyped century). */
export const MAX_INVOICE_YEARS_BEHIND = 10;

/**
 * Why an invoice date (a calendar date) is out of the range a bill may be dated in, relative
 * to today, or null. A typed year off by a thousand would date the bill, its due date and the
 * matter's next billing date centuries away (and stop the matter's billing cycle from moving).
 */
export function invoiceDateRangeError(invoiceDate: string, today: string): string | null {
  assert(isCalendarDate(invoiceDate) && isCalendarDate(today), 'invoice date and today are calendar dates');
  const latest = addDays(today, MAX_INVOICE_DAYS_AHEAD);
  if (invoiceDate > latest) return `must be on or before ${latest} (at most ${MAX_INVOICE_DAYS_AHEAD} days after today)`;
  const earliest = `${String(Number(today.slice(0, 4)) - MAX_INVOICE_YEARS_BEHIND).padStart(4, '0')}${today.slice(4)}`.replace(/-02-29$/, '-02-28');
  if (invoiceDate < earliest) return `must be on or after ${earliest} (at most ${MAX_INVOICE_YEARS_BEHIND} years before today)`;
  return null;
}

/** An ad hoc line's description, at most (as a time entry's narrative). */
export const MAX_ADHOC_DESCRIPTION_CHARS = 4_000;

/** Field errors in the clerk's dates and choices, as `field: message` (empty when fine). */
export function requestErrors(invoiceDate: string, upTo: string, r: BillRequest): Record<string, string> {
  const e: Record<string, string> = {};
  if (!isCalendarDate(invoiceDate)) e.invoiceDate = 'must be a date (YYYY-MM-DD)';
  if (!isCalendarDate(upTo)) e.upTo = 'must be a date (YYYY-MM-DD)';
  else if (isCalendarDate(invoiceDate) && upTo > invoiceDate) e.upTo = 'must be on or before the invoice date';
  const dates: [string, string | undefined][] = [
    ['filters.time.from', r.filters?.time?.from], ['filters.time.to', r.filters?.time?.to],
    ['filters.disbursements.from', r.filters?.disbursements?.from], ['filters.disbursements.to', r.filters?.disbursements?.to],
  ];
  for (const [k, v] of dates) if (v !== undefined && !isCalendarDate(v)) e[k] = 'must be a date (YYYY-MM-DD)';
  // A range that ends before it starts takes nothing: the bill would silently leave that work out.
  for (const [group, range] of [['time', r.filters?.time], ['disbursements', r.filters?.disbursements]] as const) {
    if (range?.from && range.to && isCalendarDate(range.from) && isCalendarDate(range.to) && range.to < range.from) e[`filters.${group}.to`] = 'must be on or after the from date';
  }
  for (const [group, targets] of Object.entries(r.writeTo ?? {})) {
    for (const [id, v] of Object.entries(targets ?? {})) {
      if (!Number.isSafeInteger(v) || v < 0) e[`writeTo.${group}.${id}`] = 'must be an amount of zero or more';
    }
  }
  if (r.fixedFeeAmountMinor !== undefined && r.fixedFeeAmountMinor !== null && (!Number.isSafeInteger(r.fixedFeeAmountMinor) || r.fixedFeeAmountMinor < 0)) {
    e.fixedFeeAmount = 'must be an amount of zero or more';
  }
  if (r.interestMinor !== undefined && (!Number.isSafeInteger(r.interestMinor) || r.interestMinor < 0)) e.interest = 'must be an amount of zero or more';
  if (r.interestByPolicy !== undefined && r.interestByPolicy !== null && typeof r.interestByPolicy !== 'boolean') e.interestByPolicy = 'must be true or false';
  const d = r.discount;
  if (d) {
    if (d.kind === 'percentage' && !(Number.isSafeInteger(d.percentBasisPoints) && d.percentBasisPoints >= 0 && d.percentBasisPoints <= 10_000)) {
      e['discount.percent'] = 'must be between 0 and 100';
    }
    if (d.kind === 'fixed' && !(Number.isSafeInteger(d.amountMinor) && d.amountMinor >= 0)) e['discount.amount'] = 'must be an amount of zero or more';
    if (d.validUntil !== undefined && d.validUntil !== null && !isCalendarDate(d.validUntil)) e['discount.validUntil'] = 'must be a date (YYYY-MM-DD)';
    else if (d.validUntil && isCalendarDate(invoiceDate) && d.validUntil < invoiceDate) e['discount.validUntil'] = 'must be on or after the invoice date';
  }
  if (r.template !== undefined && r.template !== null && !(typeof r.template === 'string' && r.template.trim() !== '' && r.template.length <= MAX_TEMPLATE_CHARS)) {
    e.template = `must be a template name of 1 to ${MAX_TEMPLATE_CHARS} characters`;
  }
  if (r.paymentTermsDays !== undefined && r.paymentTermsDays !== null
    && !(Number.isSafeInteger(r.paymentTermsDays) && r.paymentTermsDays >= 0 && r.paymentTermsDays <= MAX_PAYMENT_TERMS_DAYS)) {
    e.paymentTermsDays = `must be a whole number of days from 0 to ${MAX_PAYMENT_TERMS_DAYS}`;
  }
  (r.adHoc ?? []).forEach((a, i) => {
    if (!a.description || a.description.trim() === '') e[`adHoc.${i}.description`] = 'is required';
    else if (a.description.length > MAX_ADHOC_DESCRIPTION_CHARS) e[`adHoc.${i}.description`] = `must be at most ${MAX_ADHOC_DESCRIPTION_CHARS} characters`;
    if (!Number.isSafeInteger(a.amountMinor)) e[`adHoc.${i}.amount`] = 'must be an amount';
  });
  return e;
}

/** Why a matter cannot be billed now (empty: it can). Seed 002: billing on/off and billing status. */
/** The option sections that carry an amount of money, with what a clerk calls them. */
const AMOUNT_SECTIONS: readonly [BillingOptionSection, string, (o: MatterBillingOptions) => boolean][] = [
  ['quote', 'quoted amount', (o) => (o.quote.amountMinor ?? 0) !== 0],
  ['fixedFee', 'fixed-fee schedule', (o) => o.fixedFee.schedule.some((r) => r.amountMinor !== 0)],
  ['discount', 'fixed discount', (o) => o.discount.kind === 'fixed' && o.discount.amountMinor !== 0],
  ['retainerReplenishment', 'retainer replenishment amounts', (o) => o.retainerReplenishment.enabled && (o.retainerReplenishment.minimumBalanceMinor !== 0 || o.retainerReplenishment.triggerMinor !== 0)],
];

/**
 * Why a matter billed in another currency than the firm's cannot be billed on its options:
 * a section it takes from the firm's defaults carries an amount, and that amount is in the
 * firm's currency (a $50.00 default discount would otherwise take 5,000 yen off). Null when
 * the matter bills in the firm's currency, or sets every such section itself.
 * `inherited`: whether the matter takes that section from the firm's defaults.
 */
export function foreignDefaultsRefusal(o: MatterBillingOptions, inherited: (section: BillingOptionSection) => boolean, matterCurrency: string, firmCurrency: string): string | null {
  if (matterCurrency === firmCurrency) return null;
  const taken = AMOUNT_SECTIONS.filter(([section, , carries]) => inherited(section) && carries(o)).map(([, label]) => label);
  if (taken.length === 0) return null;
  const list = taken.length === 1 ? taken[0]! : `${taken.slice(0, -1).join(', ')} and ${taken[taken.length - 1]}`;
  return `The matter bills in ${matterCurrency}, but its ${list} ${taken.length === 1 ? 'comes' : 'come'} from the firm's defaults, in ${firmCurrency}: set ${taken.length === 1 ? 'it' : 'them'} on the matter's own billing options, in ${matterCurrency}`;
}

export function billingRefusals(matterStatus: 'open' | 'closed', options: MatterBillingOptions): string[] {
  const out: string[] = [];
  if (!options.billingEnabled) out.push('Billing is turned off for this matter');
  if (options.billingStatus === 'closed') out.push('The matter is closed for billing');
  else if (options.billingStatus === 'use_matter_status' && matterStatus === 'closed') out.push('The matter is closed (its billing follows the matter status)');
  return out;
}

/** The matter's options as the composer takes them. */
export function composeOptions(o: MatterBillingOptions): ComposeOptions {
  return {
    arrangement: o.arrangement,
    quote: { ...o.quote },
    fixedFee: { mode: o.fixedFee.mode, schedule: o.fixedFee.schedule.map((r) => ({ rowId: r.rowId, amountMinor: r.amountMinor, description: r.description, billOn: r.billOn, invoiceNumber: r.invoiceNumber })) },
    discount: { kind: o.discount.kind, percentBasisPoints: o.discount.percentBasisPoints, amountMinor: o.discount.amountMinor },
    feeReductions: { ...o.feeReductions },
    feeAllocation: { ...o.feeAllocation },
    retainerReplenishment: { ...o.retainerReplenishment },
    onlyExpenses: o.massBilling.onlyExpenses,
  };
}

/**
 * What a bill's amounts, lines and dates are composed from, of the matter's billing options and
 * the firm's settings, as one canonical string: a draft composed under another basis is out of
 * date, and approving it would post figures the matter's options no longer give (a discount
 * changed, hourly changed to fixed fee). Left out: what only the outputs read (templates,
 * addresses, copies to print), e-billing codes, billing on or off (refused on its own), mass
 * billing's exclusion, the defaults of new time entries and custom rates (applied as work is
 * recorded), and what billing itself writes back (a schedule row's invoice number).
 */
export function compositionBasis(o: MatterBillingOptions, firm: FirmBillingSettings): string {
  return JSON.stringify({
    arrangement: o.arrangement, quote: o.quote,
    fixedFee: { mode: o.fixedFee.mode, schedule: o.fixedFee.schedule.map((r) => [r.rowId, r.amountMinor, r.description, r.billOn]) },
    discount: o.discount, feeReductions: o.feeReductions, feeAllocation: o.feeAllocation,
    generalRetainer: o.generalRetainer, retainerReplenishment: o.retainerReplenishment, onlyExpenses: o.massBilling.onlyExpenses,
    firm: {
      taxRates: firm.taxRates.map((t) => [t.code, t.basisPoints]), defaultFeeTaxCode: firm.defaultFeeTaxCode, taxRounding: firm.taxRounding,
      paymentTermsDays: firm.paymentTermsDays, generalRetainersEnabled: firm.generalRetainersEnabled, interest: firm.interest,
    },
  });
}

/** A numbered bill's neighbours on its matter: the live numbered bills just before and after it in sequence. */
export interface SequenceNeighbours {
  before: { number: string; invoiceDate: string } | null;
  after: { number: string; invoiceDate: string } | null;
}

/**
 * Seed 003: a bill's number is the order in which bills were rendered, so a numbered bill back
 * in draft (reverted or re-drafted) keeps its place in date order: not dated before the bill
 * numbered before it, nor after the one numbered after it (aged debtors, interest on overdue
 * bills and oldest-first receipts all go by date). Null when `invoiceDate` keeps that order.
 */
export function sequenceDateRefusal(invoiceDate: string, n: SequenceNeighbours): string | null {
  if (n.before && invoiceDate < n.before.invoiceDate) return `must not be before ${n.before.invoiceDate}, the date of bill ${n.before.number} (numbered before this one): bill numbers follow their dates`;
  if (n.after && invoiceDate > n.after.invoiceDate) return `must not be after ${n.after.invoiceDate}, the date of bill ${n.after.number} (numbered after this one): bill numbers follow their dates`;
  return null;
}

/** Why a draft composed under another compositionBasis is not approved. */
export const OPTIONS_CHANGED = 'The matter\'s billing options (or the firm\'s billing settings) changed after this draft was composed: open it in the composer and save it (or modify its batch) so that it is composed under them, then approve it';

/** The firm's settings as the composer takes them. */
export function composeFirm(s: FirmBillingSettings): ComposeFirm {
  return {
    taxRates: s.taxRates.map((t) => ({ code: t.code, basisPoints: t.basisPoints })),
    defaultFeeTaxCode: s.defaultFeeTaxCode,
    taxRounding: s.taxRounding,
    paymentTermsDays: s.paymentTermsDays,
  };
}

/** Whether the general retainer pays this bill: the firm and matter allow it, then the clerk or the matter's automation decide. */
export function retainerApplies(firm: FirmBillingSettings, o: MatterBillingOptions, choice: boolean | null | undefined): boolean {
  if (!firm.generalRetainersEnabled || !o.generalRetainer.enabled) return false;
  if (choice === true || choice === false) return choice;
  return o.generalRetainer.automation === 'automatic';
}

/** The composer's request from the clerk's choices and the dates. */
export function composeRequest(invoiceDate: string, upTo: string, r: BillRequest, retainer: ComposeRequest['retainer']): ComposeRequest {
  const filters: ComposeRequest['filters'] = {};
  if (r.filters?.time) filters.time = { ...r.filters.time };
  if (r.filters?.disbursements) filters.disbursements = { ...r.filters.disbursements };
  return {
    invoiceDate, upTo, filters,
    excludedIds: r.excludedIds ?? [],
    writeTo: { timekeeper: { ...(r.writeTo?.timekeeper ?? {}) }, chargeType: { ...(r.writeTo?.chargeType ?? {}) } },
    fixedFeeAmountMinor: r.fixedFeeAmountMinor ?? null,
    applyQuote: r.applyQuote ?? true,
    discount: r.discount ?? null,
    interestMinor: r.interestMinor ?? 0,
    adHoc: r.adHoc ?? [],
    retainer,
  };
}

// ---------------------------------------------------------------------------------------
// Transitions
// ---------------------------------------------------------------------------------------

export const BILL_ACTIONS = ['edit', 'approve', 'revert', 'finalise', 'redraft', 'delete', 'hold'] as const;
export type BillAction = (typeof BILL_ACTIONS)[number];

export interface Verdict {
  allowed: boolean;
  /** Why not (null when allowed). */
  reason: string | null;
}

/** What the commands know about a bill and its matter when deciding. */
export interface BillFacts {
  status: BillStatusName;
  number: string | null;
  sequence: number | null;
  onHold: boolean;
  lineCount: number;
  totalMinor: number;
  /** Items changed or deleted in matters while on the bill, not yet taken into account. */
  openConflicts: number;
  /** Reasons the matter cannot be billed now (billing off, closed for billing). */
  matterRefusals: readonly string[];
  /** Another draft on the same matter (a matter has one draft at most), by number or id. */
  otherDraft: string | null;
  /** The highest sequence among the matter's numbered bills that are not deleted. */
  latestLiveSequence: number | null;
  /** Receipts allocated to the bill (none until receipts exist). */
  receiptsMinor: number;
  /** A draft's receipts that a re-draft or revert took off, to go back on it when it is approved again (0 once approved). */
  receiptsToReallocateMinor: number;
  /** Receipts the ledger is still to put back on a bill approved again (its approval not yet taken); 0 otherwise. */
  receiptsAwaitingPostingMinor: number;
  /** Why approving now would post where the firm refuses postings (periodRefusal), or null. */
  periodRefusal: string | null;
  /** Why undoing this posted bill (revert, re-draft, void) would change a period the firm refuses postings in (undoPeriodRefusal), or null. */
  undoPeriodRefusal: string | null;
  /** A draft composed under a compositionBasis other than the matter's and firm's now (false when that is not known). */
  composedUnderOtherOptions: boolean;
  /** A numbered draft dated out of its number's order (sequenceDateRefusal), or null. */
  sequenceDateRefusal: string | null;
}

const yes: Verdict = { allowed: true, reason: null };
const no = (reason: string): Verdict => ({ allowed: false, reason });

/** Why a bill in this status cannot be finalised, or null: finalising depends on the status alone. */
/**
 * The approval time of a bill approved now: the clock's, or a millisecond after its last
 * approval when the clock has not moved past it (approved, re-drafted and approved again
 * within one millisecond, or a clock set back). Production keys a bill's outputs by this
 * time: two approvals must never share one, or the second would count as produced.
 */
export function approvalTime(nowIso: string, previousApprovedAt: string | null): string {
  const nowMs = Date.parse(nowIso);
  assert(Number.isFinite(nowMs), `approvalTime: not a time: ${nowIso}`);
  if (previousApprovedAt === null) return nowIso;
  const previousMs = Date.parse(previousApprovedAt);
  assert(Number.isFinite(previousMs), `approvalTime: not a time: ${previousApprovedAt}`);
  return nowMs > previousMs ? nowIso : new Date(previousMs + 1).toISOString();
}

export function finaliseRefusal(s: BillStatusName): string | null {
  if (s === 'deleted') return 'The bill was deleted';
  return s === 'approved' ? null : `Only an approved bill can be finalised; this bill is ${s}`;
}

/** Whether one action is allowed now, and why not. */
export function verdict(action: BillAction, f: BillFacts): Verdict {
  const s = f.status;
  if (s === 'deleted') return no(f.number ? `Bill ${f.number} was deleted: its number is void` : 'The draft was deleted');
  switch (action) {
    case 'edit':
    case 'hold':
      return s === 'draft' ? yes : no(`Only a draft can be changed; this bill is ${s}${s === 'approved' ? ': revert it to draft first' : s === 'finalised' ? ': re-draft it first' : ''}`);
    case 'approve': {
      if (s !== 'draft') return no(`Only a draft can be approved; this bill is ${s}`);
      if (f.onHold) return no('The bill is on hold: release the hold to approve it');
      if (f.matterRefusals.length > 0) return no(f.matterRefusals.join('; '));
      if (f.composedUnderOtherOptions) return no(OPTIONS_CHANGED);
      if (f.sequenceDateRefusal) return no(`Its invoice date ${f.sequenceDateRefusal}: change the date in the composer`);
      if (f.openConflicts > 0) return no(`${f.openConflicts} item(s) changed or were deleted in matters since the draft was composed: save the draft again to recompose it`);
      if (f.lineCount === 0) return no('The bill has no lines');
      if (f.totalMinor < 0) return no('A bill cannot total less than zero');
      if (f.periodRefusal) return no(f.periodRefusal);
      return yes;
    }
    case 'revert':
      if (s !== 'approved') return no(`Only an approved bill can be reverted to draft; this bill is ${s}`);
      if (f.otherDraft) return no(`The matter already has a draft (${f.otherDraft}): approve or delete it first`);
      if (f.undoPeriodRefusal) return no(f.undoPeriodRefusal);
      return yes;
    case 'finalise': {
      const refusal = finaliseRefusal(s);
      return refusal ? no(refusal) : yes;
    }
    case 'redraft':
      if (s !== 'finalised') return no(`Only a finalised bill can be re-drafted; this bill is ${s}`);
      if (f.otherDraft) return no(`The matter already has a draft (${f.otherDraft}): approve or delete it first`);
      if (f.undoPeriodRefusal) return no(f.undoPeriodRefusal);
      return yes;
    case 'delete':
      // A draft that was never approved uses no number; one that was (re-drafted or reverted) is still that numbered bill.
      if (s === 'draft' && f.sequence === null) return yes;
      return postedDeletion(f);
  }
}

/**
 * Seed 003: only the most recent, unreceipted bill may be deleted (later bills keep their
 * numbers and their postings in order). The one place this rule lives: it holds for a
 * numbered bill back in draft too (re-drafted or reverted), so neither is a way round it.
 */
function postedDeletion(f: BillFacts): Verdict {
  assert(f.sequence !== null, 'a numbered bill has a sequence');
  const draft = f.status === 'draft';
  if (f.latestLiveSequence !== null && f.latestLiveSequence > f.sequence) {
    return no(`Only the most recent bill on the matter can be deleted: ${draft ? 'change this draft and approve it again' : 're-draft this one to change it'}`);
  }
  if (f.receiptsMinor !== 0) return no('Receipts are allocated to this bill: re-draft it instead (receipts will be allocated again)');
  if (draft && f.receiptsToReallocateMinor !== 0) return no('Receipts were allocated to this bill before it went back to draft: approve it again (they will be allocated to it again)');
  if (f.receiptsAwaitingPostingMinor !== 0) return no('Receipts were allocated to this bill before it went back to draft, and the books are putting them back on it as they post it: re-draft it instead');
  // A posted bill voided: its postings are undone on their own dates.
  if (!draft && f.undoPeriodRefusal) return no(f.undoPeriodRefusal);
  return yes;
}

export function verdicts(f: BillFacts): Record<BillAction, Verdict> {
  return Object.fromEntries(BILL_ACTIONS.map((a) => [a, verdict(a, f)])) as Record<BillAction, Verdict>;
}

/** The ledger's accounting periods as billing's copy holds them. */
export interface LedgerPeriods {
  /** As set; null: the month of the firm's today. */
  currentPeriod: string | null;
  closedPeriods: readonly string[];
}

/**
 * What the clerk is told about the period a bill dated `invoiceDate` posts to, approved
 * `today` (seed 004: "alerted ... when posting the Bills, and asked to verify the Accounting
 * Period"); null when it posts in the current period. The ledger posts a bill dated in a
 * closed month to the first open month after it.
 */
export function periodNote(invoiceDate: string, today: string, periods: LedgerPeriods): string | null {
  const month = periodOf(invoiceDate);
  const current = periods.currentPeriod ?? periodOf(today);
  const closed = new Set(periods.closedPeriods);
  if (closed.has(month)) return `Period ${month} is closed: the books post this bill to ${firstOpenPeriod(month, closed)}`;
  return month === current ? null : `Posts in ${month}, outside the current accounting period ${current}`;
}

/**
 * Why approving a bill dated `invoiceDate` on `today` is refused by the firm's rule for
 * postings outside the current accounting period (matters' firm settings,
 * `postingOutsideCurrentPeriod`), or null. Approving posts the bill in its invoice date's
 * period; under 'warn' the clerk is asked to verify it (periodNote), under 'refuse' a bill
 * dated in any other period, a closed one included, is not approved until its date changes.
 */
export function periodRefusal(invoiceDate: string, today: string, periods: LedgerPeriods, policy: 'warn' | 'refuse' | undefined): string | null {
  if (policy !== 'refuse') return null;
  const month = periodOf(invoiceDate);
  const current = periods.currentPeriod ?? periodOf(today);
  // A closed month first (as the ledger's checkPosting): it may be the month of today when no current period is set.
  if (periods.closedPeriods.includes(month)) {
    return `Its invoice date ${invoiceDate} is in ${month}, a closed accounting period, and the firm refuses postings outside the current period: change the invoice date to approve it`;
  }
  if (month === current) return null;
  return `Its invoice date ${invoiceDate} is in ${month}, not the current accounting period ${current}, and the firm refuses postings outside the current period: change the invoice date to approve it`;
}

/**
 * The period note the clerk sees beside a draft (lists, the bill page, Approve's
 * confirmation): under the firm's 'refuse' rule, that approving it is refused while it is
 * dated outside the current period; otherwise periodNote.
 */
export function approvalPeriodNote(invoiceDate: string, today: string, periods: LedgerPeriods, policy: 'warn' | 'refuse' | undefined): string | null {
  if (policy !== 'refuse') return periodNote(invoiceDate, today, periods);
  // Refused exactly when periodRefusal refuses; said shorter, beside the draft.
  if (periodRefusal(invoiceDate, today, periods, policy) === null) return null;
  const month = periodOf(invoiceDate);
  if (periods.closedPeriods.includes(month)) return `Not approved while dated in ${month}: the period is closed and the firm refuses postings outside the current accounting period`;
  return `Not approved while dated in ${month}: the firm refuses postings outside the current accounting period ${periods.currentPeriod ?? periodOf(today)}`;
}

/**
 * Why undoing a posted bill dated `invoiceDate` (revert to draft, re-draft, void) is refused by
 * the firm's rule for postings outside the current accounting period, or null. The books undo
 * a bill's posting on the date it was posted (its invoice date), or, that month closed, on the
 * first day of the first open month after it (the ledger's reverseBill); under 'refuse' an
 * undoing that would post in a month other than the current one waits until the bookkeeper
 * makes that month current.
 */
export function undoPeriodRefusal(invoiceDate: string, today: string, periods: LedgerPeriods, policy: 'warn' | 'refuse' | undefined): string | null {
  if (policy !== 'refuse') return null;
  const month = periodOf(invoiceDate);
  const current = periods.currentPeriod ?? periodOf(today);
  const closed = new Set(periods.closedPeriods);
  const lands = closed.has(month) ? firstOpenPeriod(month, closed) : month;
  if (lands === current) return null;
  const where = lands === month ? `on its invoice date ${invoiceDate}, in ${month}` : `in ${lands} (its invoice date ${invoiceDate} is in closed ${month})`;
  return `Undoing the bill would post ${where}, not in the current accounting period ${current}, and the firm refuses postings outside the current period`;
}
