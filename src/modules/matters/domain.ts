/**
 * The matters domain: pure rules for rates, time rounding, WIP amounts, file numbers,
 * WIP caps and input validation. No I/O; money goes through src/shared/money.ts.
 */
import { assert, AssertionError, assertSafeInteger } from '../../shared/assert.ts';
import { csvLineFields } from '../../shared/csv.ts';
import { isEmailAddress } from '../../shared/email.ts';
import { divideRound, formatMoney, isCurrencyCode, isKnownCurrency, MAX_AMOUNT_MINOR, mulDiv, sumMinor, UNKNOWN_CURRENCY } from '../../shared/money.ts';
import type {
  AdjustmentAllocationRule, ApplyFundsTo, BillingArrangementName, BillingOptionSection, BillingStatusMode, DiscountKind,
  FeeAllocationRule, FirmBillingSettings, FixedFeeMode, FixedFeeRow, FundsAutomation, LedesFormatName, MatterBillingOptions,
  QuoteChoice, QuoteIncludes,
} from './events.ts';

// ---------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------

export const TIMEKEEPER_CLASSIFICATIONS = ['partner', 'associate', 'paralegal', 'other'] as const;
export type TimekeeperClassification = (typeof TIMEKEEPER_CLASSIFICATIONS)[number];

/** UTBMS/LEDES timekeeper classification codes: partner, associate, of counsel, paralegal, legal assistant, other. */
export const LEDES_CLASSIFICATIONS = ['PT', 'AS', 'OC', 'PL', 'LA', 'OT'] as const;
export type LedesClassification = (typeof LEDES_CLASSIFICATIONS)[number];

export function defaultLedesClassification(c: TimekeeperClassification): LedesClassification {
  switch (c) {
    case 'partner': return 'PT';
    case 'associate': return 'AS';
    case 'paralegal': return 'PL';
    case 'other': return 'OT';
  }
}

/** How often a matter is billed; `none` means billed only on demand. */
export const BILLING_CYCLES = ['none', 'WEEK', 'MONTH', 'QUARTER', 'HALF', 'YEAR'] as const;
export type BillingCycle = (typeof BILLING_CYCLES)[number];

export const MINUTE_ROUNDING = ['up', 'nearest', 'down'] as const;
export type MinuteRounding = (typeof MINUTE_ROUNDING)[number];

/** bill: on the bill and in WIP; hide: never shown or charged; no_charge: shown as "No charge". */
export const ENTRY_BEHAVIOURS = ['bill', 'hide', 'no_charge'] as const;
export type EntryBehaviour = (typeof ENTRY_BEHAVIOURS)[number];

export const WIP_STATUSES = ['unbilled', 'draft', 'billed'] as const;
export type WipStatus = (typeof WIP_STATUSES)[number];

export const RATE_SOURCES = ['matter', 'client', 'timekeeper', 'override'] as const;
export type RateSource = (typeof RATE_SOURCES)[number];

export const MATTER_STATUSES = ['open', 'closed'] as const;
export type MatterStatus = (typeof MATTER_STATUSES)[number];

/** Field path to a message a person can act on; empty when the input is valid. */
export type FieldErrors = Record<string, string>;

// ---------------------------------------------------------------------------------------
// UTBMS codes (litigation code set, activities, expenses), from ref/utbms.csv
// ---------------------------------------------------------------------------------------

export const UTBMS_PHASES: Readonly<Record<string, string>> = {
  L100: 'Case Assessment, Development and Administration',
  L200: 'Pre-Trial Pleadings and Motions',
  L300: 'Discovery',
  L400: 'Trial Preparation and Trial',
  L500: 'Appeal',
};

export const UTBMS_TASKS: Readonly<Record<string, string>> = {
  L110: 'Fact Investigation/Development',
  L120: 'Analysis/Strategy',
  L130: 'Experts/Consultants',
  L140: 'Document/File Management',
  L150: 'Budgeting',
  L160: 'Settlement/Non-Binding ADR',
  L190: 'Other Case Assessment, Development and Administration',
  L210: 'Pleadings',
  L220: 'Preliminary Injunctions/Provisional Remedies',
  L230: 'Court Mandated Conferences',
  L240: 'Dispositive Motions',
  L250: 'Other Written Motions and Submissions',
  L260: 'Class Action Certification and Notice',
  L310: 'Written Discovery',
  L320: 'Document Production',
  L330: 'Depositions',
  L340: 'Expert Discovery',
  L350: 'Discovery Motions',
  L390: 'Other Discovery',
  L410: 'Fact Witnesses',
  L420: 'Expert Witnesses',
  L430: 'Written Motions and Submissions',
  L440: 'Other Trial Preparation and Support',
  L450: 'Trial and Hearing Attendance',
  L460: 'Post-Trial Motions and Submissions',
  L470: 'Enforcement',
  L510: 'Appellate Motions and Submissions',
  L520: 'Appellate Briefs',
  L530: 'Oral Argument',
};

export const UTBMS_ACTIVITIES: Readonly<Record<string, string>> = {
  A101: 'Plan and prepare for',
  A102: 'Research',
  A103: 'Draft/revise',
  A104: 'Review/analyze',
  A105: 'Communicate (in firm)',
  A106: 'Communicate (with client)',
  A107: 'Communicate (other outside counsel)',
  A108: 'Communicate (other external)',
  A109: 'Appear for/attend',
  A110: 'Manage data/files',
  A111: 'Other',
};

export const UTBMS_EXPENSES: Readonly<Record<string, string>> = {
  E101: 'Copying',
  E102: 'Outside printing',
  E103: 'Word processing',
  E104: 'Facsimile',
  E105: 'Telephone',
  E106: 'Online research',
  E107: 'Delivery services/messengers',
  E108: 'Postage',
  E109: 'Local travel',
  E110: 'Out-of-town travel',
  E111: 'Meals',
  E112: 'Court fees',
  E113: 'Subpoena fees',
  E114: 'Witness fees',
  E115: 'Deposition transcripts',
  E116: 'Trial transcripts',
  E117: 'Trial exhibits',
  E118: 'Litigation support vendors',
  E119: 'Experts',
  E120: 'Private investigators',
  E121: 'Arbitrators/mediators',
  E122: 'Local counsel',
  E123: 'Other professionals',
  E124: 'Other',
};

const has = (table: Readonly<Record<string, string>>, code: string): boolean => Object.hasOwn(table, code);
/** A billable UTBMS task code (a phase such as L100 is not a task). */
export const isTaskCode = (code: string): boolean => has(UTBMS_TASKS, code);
export const isActivityCode = (code: string): boolean => has(UTBMS_ACTIVITIES, code);
export const isExpenseCode = (code: string): boolean => has(UTBMS_EXPENSES, code);

// ---------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------

/** True for a real calendar date written YYYY-MM-DD. */
export function isIsoDate(value: unknown): value is string {
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  const d = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === value;
}

function daysInMonth(year: number, month1: number): number {
  return new Date(Date.UTC(year, month1, 0)).getUTCDate();
}

/** Add whole months, clamping the day to the end of a shorter month (Jan 31 + 1 = Feb 28). */
export function addMonths(date: string, months: number): string {
  assert(isIsoDate(date), `invalid date ${date}`);
  assertSafeInteger(months, 'months');
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  const index = y * 12 + (m - 1) + months;
  const year = Math.floor(index / 12);
  const month1 = (index % 12) + 1;
  const day = Math.min(d, daysInMonth(year, month1));
  return `${String(year).padStart(4, '0')}-${String(month1).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

/** The date moved to `day` of its month (the month's last day when shorter); unchanged when day is null. */
export function onDay(date: string, day: number | null): string {
  if (day === null) return date;
  const [y, m] = date.split('-').map(Number) as [number, number, number];
  return `${date.slice(0, 8)}${String(Math.min(day, daysInMonth(y, m))).padStart(2, '0')}`;
}

export function addDays(date: string, days: number): string {
  assert(isIsoDate(date), `invalid date ${date}`);
  assertSafeInteger(days, 'days');
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

/** The billing date one cycle after `date`; null for the `none` cycle. */
export function advanceBillingDate(date: string, cycle: BillingCycle): string | null {
  switch (cycle) {
    case 'none': return null;
    case 'WEEK': return addDays(date, 7);
    case 'MONTH': return addMonths(date, 1);
    case 'QUARTER': return addMonths(date, 3);
    case 'HALF': return addMonths(date, 6);
    case 'YEAR': return addMonths(date, 12);
  }
}

/**
 * The matter's next billing date once a bill dated `billedOn` is approved: the first date of
 * its cycle (counted from the current next billing date, on `anchorDay`, the day of month a
 * person set, so 31 Jan -> 28 Feb -> 31 Mar rather than 28 Mar from then on) after
 * `billedOn` (with no date yet, one cycle after `billedOn`); unchanged when that date is
 * already after it (billed early, or the same bill approved again) or the matter has no
 * cycle. Same inputs, same answer: approving again does not move it twice. However far
 * behind the current date is (a year typed 1026 for 2026), the answer is computed, not
 * counted cycle by cycle: a limit there refused the approval's event for ever, and every
 * event after it waited.
 */
export function nextBillingDateAfter(current: string | null, cycle: BillingCycle, billedOn: string, anchorDay: number | null = null): string | null {
  assert(isIsoDate(billedOn), `invalid date ${billedOn}`);
  assert(anchorDay === null || (Number.isSafeInteger(anchorDay) && anchorDay >= 1 && anchorDay <= 31), 'an anchor day is a day of the month');
  if (cycle === 'none' || (current !== null && current > billedOn)) return current;
  // With no date yet, the cycles are counted from the bill's own date.
  const from = current ?? billedOn;
  const months = { WEEK: 0, MONTH: 1, QUARTER: 3, HALF: 6, YEAR: 12 }[cycle];
  const at = (k: number) => (months === 0 ? addDays(from, 7 * k) : onDay(addMonths(from, months * k), current === null ? null : anchorDay));
  // The fewest whole cycles that pass the bill's date: the estimate is that or one short
  // (a date in the bill's own month may fall before or after it).
  let k: number;
  if (months === 0) {
    k = Math.floor((Date.parse(`${billedOn}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / (7 * 86_400_000)) + 1;
  } else {
    const monthsApart = (Number(billedOn.slice(0, 4)) - Number(from.slice(0, 4))) * 12 + (Number(billedOn.slice(5, 7)) - Number(from.slice(5, 7)));
    k = Math.floor(monthsApart / months);
  }
  for (let n = Math.max(1, k); n <= Math.max(1, k) + 1; n++) {
    const d = at(n);
    if (d > billedOn) return d;
  }
  throw new AssertionError(`no cycle of ${cycle} from ${from} passes ${billedOn}`);
}

// ---------------------------------------------------------------------------------------
// Rates
// ---------------------------------------------------------------------------------------

export interface StandardRate {
  /** First date (YYYY-MM-DD) the rate applies to. */
  readonly effectiveFrom: string;
  /** Minor units per hour. */
  readonly rateMinor: number;
}

export interface RateOverride {
  readonly rateMinor: number;
  readonly reason: string;
}

export interface RateInputs {
  /** The entry's work date. */
  readonly workDate: string;
  /** The matter's rate for this timekeeper, if set. */
  readonly matterRateMinor: number | null;
  /** The client's rate for this timekeeper, if set. */
  readonly clientRateMinor: number | null;
  /** The timekeeper's effective-dated standard rates, in any order. */
  readonly standardRates: readonly StandardRate[];
  readonly override?: RateOverride | null;
}

export interface ResolvedRate {
  readonly rateMinor: number;
  readonly source: RateSource;
}

/** The standard rate in effect on `date`: the latest whose effective date is on or before it. */
export function standardRateOn(rates: readonly StandardRate[], date: string): StandardRate | null {
  let best: StandardRate | null = null;
  for (const r of rates) {
    if (r.effectiveFrom <= date && (best === null || r.effectiveFrom > best.effectiveFrom)) best = r;
  }
  return best;
}

/**
 * The hourly rate for a time entry: an override with a non-empty reason wins; then the
 * matter's rate for the timekeeper, then the client's, then the timekeeper's standard rate
 * effective on the work date. Null when none applies.
 */
export function resolveRate(i: RateInputs): ResolvedRate | null {
  if (i.override && i.override.reason.trim() !== '') return { rateMinor: i.override.rateMinor, source: 'override' };
  if (i.matterRateMinor !== null) return { rateMinor: i.matterRateMinor, source: 'matter' };
  if (i.clientRateMinor !== null) return { rateMinor: i.clientRateMinor, source: 'client' };
  const std = standardRateOn(i.standardRates, i.workDate);
  return std ? { rateMinor: std.rateMinor, source: 'timekeeper' } : null;
}

// ---------------------------------------------------------------------------------------
// Amounts
// ---------------------------------------------------------------------------------------

/**
 * Round recorded minutes to whole billing units (6 minutes = a tenth of an hour):
 * `up` charges any started unit (1 -> 6, 7 -> 12), `down` drops a partial unit, and
 * `nearest` rounds half up (with 6-minute units 8 -> 6, 9 -> 12; 2 -> 0).
 */
export function roundMinutes(rawMinutes: number, unitMinutes: number, mode: MinuteRounding): number {
  assert(Number.isSafeInteger(rawMinutes) && rawMinutes >= 0, `rawMinutes must be a non-negative integer, got ${rawMinutes}`);
  assert(Number.isSafeInteger(unitMinutes) && unitMinutes >= 1, `unitMinutes must be a positive integer, got ${unitMinutes}`);
  const whole = Math.floor(rawMinutes / unitMinutes);
  const rest = rawMinutes - whole * unitMinutes;
  if (rest === 0) return rawMinutes;
  switch (mode) {
    case 'up': return (whole + 1) * unitMinutes;
    case 'down': return whole * unitMinutes;
    case 'nearest': return (2 * rest >= unitMinutes ? whole + 1 : whole) * unitMinutes;
  }
}

/** Value of billed minutes at an hourly rate: rate x minutes / 60, rounded half up once. */
export function timeAmountMinor(minutes: number, rateMinorPerHour: number): number {
  assert(Number.isSafeInteger(minutes) && minutes >= 0, `minutes must be a non-negative integer, got ${minutes}`);
  assert(Number.isSafeInteger(rateMinorPerHour) && rateMinorPerHour >= 0, `rate must be a non-negative integer, got ${rateMinorPerHour}`);
  return mulDiv(rateMinorPerHour, minutes, 60, 'half_up');
}

/** Quantities are integer thousandths (1.5 pages = 1500), so fractional units stay exact. */
export const QUANTITY_SCALE = 1000;

/** Disbursement total: quantity (thousandths) x unit cost, rounded half up once. */
export function disbursementAmountMinor(quantityMilli: number, unitCostMinor: number): number {
  assert(Number.isSafeInteger(quantityMilli) && quantityMilli > 0, `quantity must be a positive integer of thousandths, got ${quantityMilli}`);
  assert(Number.isSafeInteger(unitCostMinor) && unitCostMinor >= 0, `unit cost must be a non-negative integer, got ${unitCostMinor}`);
  return mulDiv(unitCostMinor, quantityMilli, QUANTITY_SCALE, 'half_up');
}

/**
 * Null when quantity (thousandths) x unit price makes an amount the books can hold, else the
 * message (the field is the item's `amount`). 1,000,000 units at 100,000,000.00 is each within
 * its own limit, but their product is not: without this the amount's arithmetic refused it
 * as a server error (500) instead of naming it.
 */
export function lineAmountError(quantityMilli: number, unitMinor: number, currency: string): string | null {
  if (!Number.isSafeInteger(quantityMilli) || !Number.isSafeInteger(unitMinor) || quantityMilli < 0 || unitMinor < 0) return null;
  const amount = divideRound(BigInt(quantityMilli) * BigInt(unitMinor), BigInt(QUANTITY_SCALE), 'half_up');
  if (amount <= BigInt(MAX_AMOUNT_MINOR)) return null;
  return `quantity x unit price is more than the largest amount an item may have (${formatMoney(MAX_AMOUNT_MINOR, currency)}): lower the quantity or the unit price`;
}

/** What an item adds to the matter's billable WIP: hidden and no-charge items add nothing. */
export function billableAmountMinor(behaviour: EntryBehaviour, amountMinor: number): number {
  return behaviour === 'bill' ? amountMinor : 0;
}

// ---------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------

/** The file number of a matter: client.matter, e.g. `12.8`. */
export function fileNumber(clientNumber: number, matterNumber: number): string {
  assert(Number.isSafeInteger(clientNumber) && clientNumber > 0, `client number must be a positive integer, got ${clientNumber}`);
  assert(Number.isSafeInteger(matterNumber) && matterNumber > 0, `matter number must be a positive integer, got ${matterNumber}`);
  return `${clientNumber}.${matterNumber}`;
}

/** Parse `12.8` back to its numbers; null when it is not a file number. */
export function parseFileNumber(text: string): { clientNumber: number; matterNumber: number } | null {
  const m = /^([1-9]\d{0,14})\.([1-9]\d{0,14})$/.exec(text.trim());
  if (!m) return null;
  return { clientNumber: Number(m[1]), matterNumber: Number(m[2]) };
}

// ---------------------------------------------------------------------------------------
// WIP cap
// ---------------------------------------------------------------------------------------

export type CapState = 'none' | 'under' | 'at' | 'over';

export interface CapStatus {
  readonly state: CapState;
  /** cap - wip: headroom left when positive, the excess when negative; null without a cap. */
  readonly distanceMinor: number | null;
  /** True when the WIP has reached or passed the cap: the matter must be billed. */
  readonly mustBill: boolean;
}

export function capStatus(wipMinor: number, capMinor: number | null): CapStatus {
  assertSafeInteger(wipMinor, 'wipMinor');
  if (capMinor === null) return { state: 'none', distanceMinor: null, mustBill: false };
  assertSafeInteger(capMinor, 'capMinor');
  const distanceMinor = capMinor - wipMinor;
  const state: CapState = distanceMinor > 0 ? 'under' : distanceMinor === 0 ? 'at' : 'over';
  return { state, distanceMinor, mustBill: state !== 'under' };
}

// ---------------------------------------------------------------------------------------
// Validation (returns field errors; commands turn them into a 422)
// ---------------------------------------------------------------------------------------

export const LIMITS = {
  nameChars: 200,
  narrativeChars: 4000,
  textChars: 1000,
  /** Largest rate accepted: 1,000,000.00 an hour at exponent 2. */
  rateMinor: 100_000_000,
  /** One entry covers at most a day. */
  rawMinutes: 24 * 60,
  /** 1,000,000 units. */
  quantityMilli: 1_000_000_000,
  unitCostMinor: 10_000_000_000,
  wipCapMinor: MAX_AMOUNT_MINOR,
} as const;

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const oneOf = <T extends string>(values: readonly T[], v: unknown): v is T => typeof v === 'string' && (values as readonly string[]).includes(v);
const choices = (values: readonly string[]): string => `must be one of: ${values.join(', ')}`;

function text(errors: FieldErrors, field: string, v: unknown, opts: { required: boolean; max: number }): void {
  if (v === undefined || v === null) {
    if (opts.required) errors[field] = 'is required';
    return;
  }
  if (typeof v !== 'string') { errors[field] = 'must be text'; return; }
  if (opts.required && v.trim() === '') { errors[field] = 'is required'; return; }
  if (v.length > opts.max) errors[field] = `must be at most ${opts.max} characters`;
}

function intIn(errors: FieldErrors, field: string, v: unknown, min: number, max: number, opts: { required: boolean }): void {
  if (v === undefined || v === null) {
    if (opts.required) errors[field] = 'is required';
    return;
  }
  if (!isInt(v)) { errors[field] = 'must be a whole number'; return; }
  if (v < min || v > max) errors[field] = `must be between ${min} and ${max}`;
}

/**
 * An amount in minor units within [min, max]. The message never quotes minor units, which
 * nobody types: each surface (pages, API, CSV) parses the decimal text and checks the limit
 * in the currency first, naming it there (`must be at most 1000000.00`); this is the backstop.
 */
function amountIn(errors: FieldErrors, field: string, v: unknown, min: number, max: number, opts: { required: boolean }): void {
  if (v === undefined || v === null) {
    if (opts.required) errors[field] = 'is required';
    return;
  }
  if (!isInt(v)) { errors[field] = 'must be a whole number of minor units (cents)'; return; }
  if (v < min) errors[field] = min <= 0 ? 'must not be negative' : 'must be more than 0';
  else if (v > max) errors[field] = 'is too large';
}

/** A quantity in thousandths (1000 = 1 unit), its limits said in units as typed: "must be at most 1000000". */
function quantityIn(errors: FieldErrors, field: string, v: unknown, opts: { required: boolean }): void {
  if (v === undefined || v === null) {
    if (opts.required) errors[field] = 'is required';
    return;
  }
  if (!isInt(v)) { errors[field] = 'must be a number with at most 3 decimal places'; return; }
  if (v < 1) errors[field] = 'must be more than 0';
  else if (v > LIMITS.quantityMilli) errors[field] = `must be at most ${LIMITS.quantityMilli / QUANTITY_SCALE}`;
}

function date(errors: FieldErrors, field: string, v: unknown, opts: { required: boolean }): void {
  if (v === undefined || v === null) {
    if (opts.required) errors[field] = 'is required';
    return;
  }
  if (!isIsoDate(v)) errors[field] = 'must be a date (YYYY-MM-DD)';
}

function code(errors: FieldErrors, field: string, v: unknown, valid: (c: string) => boolean, what: string): void {
  if (v === undefined || v === null) return;
  if (typeof v !== 'string' || !valid(v)) errors[field] = `is not a UTBMS ${what} code`;
}

function choice<T extends string>(errors: FieldErrors, field: string, values: readonly T[], v: unknown, opts: { required: boolean }): void {
  if (v === undefined || v === null) {
    if (opts.required) errors[field] = 'is required';
    return;
  }
  if (!oneOf(values, v)) errors[field] = choices(values);
}


export interface TimekeeperFields {
  initials?: unknown; name?: unknown; classification?: unknown; ledesClassification?: unknown; active?: unknown; staffEmail?: unknown;
}

/** A staff account's email as a timekeeper is linked to it: trimmed, lower case (as sign-in takes it); empty is none. */
export function staffEmailOf(v: string | null | undefined): string | null {
  const t = (v ?? '').trim().toLowerCase();
  return t === '' ? null : t;
}

/** `partial`: a patch; only the fields given are checked (initials cannot be patched). */
export function validateTimekeeper(i: TimekeeperFields, opts: { partial?: boolean } = {}): FieldErrors {
  const required = !opts.partial;
  const e: FieldErrors = {};
  if (opts.partial) {
    if (i.initials !== undefined) e.initials = 'cannot be changed';
  } else if (typeof i.initials !== 'string' || i.initials.trim() === '') e.initials = 'is required';
  else if (!/^[A-Z][A-Z0-9]{0,9}$/.test(i.initials)) e.initials = 'must be 1 to 10 capital letters or digits, starting with a letter';
  text(e, 'name', i.name, { required, max: LIMITS.nameChars });
  if (opts.partial && typeof i.name === 'string' && i.name.trim() === '') e.name = 'is required';
  choice(e, 'classification', TIMEKEEPER_CLASSIFICATIONS, i.classification, { required });
  choice(e, 'ledesClassification', LEDES_CLASSIFICATIONS, i.ledesClassification, { required: false });
  if (i.active !== undefined && typeof i.active !== 'boolean') e.active = 'must be true or false';
  if (i.staffEmail !== undefined && i.staffEmail !== null) {
    if (typeof i.staffEmail !== 'string' || i.staffEmail.length > 254) e.staffEmail = 'must be a staff account\'s email';
    else if (i.staffEmail.trim() !== '' && !isEmailAddress(i.staffEmail.trim())) e.staffEmail = 'must be a staff account\'s email (as they sign in with), or empty for none';
  }
  return e;
}

export function validateRateMinor(errors: FieldErrors, field: string, v: unknown, opts: { nullable: boolean }): void {
  if (v === null && opts.nullable) return;
  amountIn(errors, field, v, 0, LIMITS.rateMinor, { required: true });
}

export function validateStandardRate(i: { effectiveFrom?: unknown; rateMinor?: unknown }): FieldErrors {
  const e: FieldErrors = {};
  date(e, 'effectiveFrom', i.effectiveFrom, { required: true });
  validateRateMinor(e, 'rateMinor', i.rateMinor, { nullable: false });
  return e;
}

export interface ClientFields { name?: unknown; email?: unknown; address?: unknown; taxId?: unknown }

export function validateClient(i: ClientFields, opts: { partial?: boolean } = {}): FieldErrors {
  const e: FieldErrors = {};
  text(e, 'name', i.name, { required: !opts.partial, max: LIMITS.nameChars });
  if (opts.partial && typeof i.name === 'string' && i.name.trim() === '') e.name = 'is required';
  text(e, 'email', i.email, { required: false, max: 254 });
  if (!e.email && typeof i.email === 'string' && i.email !== '' && !isEmailAddress(i.email)) e.email = 'must be an email address';
  text(e, 'address', i.address, { required: false, max: LIMITS.textChars });
  text(e, 'taxId', i.taxId, { required: false, max: 50 });
  return e;
}

export interface MatterFields {
  name?: unknown; practiceArea?: unknown; openedOn?: unknown; billingCycle?: unknown; nextBillingDate?: unknown;
  wipCapMinor?: unknown; currency?: unknown; timeUnitMinutes?: unknown; roundingMode?: unknown; defaultBehaviour?: unknown;
}

/** `partial`: a patch; only the fields given are checked (the cycle/date rule is the caller's, on the merged matter). */
export function validateMatter(i: MatterFields, opts: { partial?: boolean } = {}): FieldErrors {
  const e: FieldErrors = {};
  text(e, 'name', i.name, { required: !opts.partial, max: LIMITS.nameChars });
  if (opts.partial && typeof i.name === 'string' && i.name.trim() === '') e.name = 'is required';
  text(e, 'practiceArea', i.practiceArea, { required: false, max: 100 });
  date(e, 'openedOn', i.openedOn, { required: false });
  choice(e, 'billingCycle', BILLING_CYCLES, i.billingCycle, { required: false });
  date(e, 'nextBillingDate', i.nextBillingDate, { required: false });
  const cycle = i.billingCycle ?? 'none';
  if (!opts.partial && !e.billingCycle && !e.nextBillingDate) {
    if (cycle === 'none' && i.nextBillingDate !== undefined && i.nextBillingDate !== null) e.nextBillingDate = 'must be empty when the matter has no billing cycle';
  }
  amountIn(e, 'wipCapMinor', i.wipCapMinor, 1, LIMITS.wipCapMinor, { required: false });
  if (i.currency !== undefined && (typeof i.currency !== 'string' || !isKnownCurrency(i.currency))) e.currency = UNKNOWN_CURRENCY;
  intIn(e, 'timeUnitMinutes', i.timeUnitMinutes, 1, 60, { required: false });
  choice(e, 'roundingMode', MINUTE_ROUNDING, i.roundingMode, { required: false });
  choice(e, 'defaultBehaviour', ENTRY_BEHAVIOURS, i.defaultBehaviour, { required: false });
  return e;
}

export interface TimeEntryFields {
  workDate?: unknown; rawMinutes?: unknown; narrative?: unknown; taskCode?: unknown; activityCode?: unknown;
  behaviour?: unknown; override?: unknown;
}

export function validateTimeEntry(i: TimeEntryFields, opts: { partial?: boolean } = {}): FieldErrors {
  const required = !opts.partial;
  const e: FieldErrors = {};
  date(e, 'workDate', i.workDate, { required });
  intIn(e, 'rawMinutes', i.rawMinutes, 1, LIMITS.rawMinutes, { required });
  if (e.rawMinutes?.startsWith('must be between')) e.rawMinutes = `must be between 1 minute and ${LIMITS.rawMinutes / 60} hours`;
  text(e, 'narrative', i.narrative, { required, max: LIMITS.narrativeChars });
  if (opts.partial && typeof i.narrative === 'string' && i.narrative.trim() === '') e.narrative = 'is required';
  code(e, 'taskCode', i.taskCode, isTaskCode, 'task');
  code(e, 'activityCode', i.activityCode, isActivityCode, 'activity');
  choice(e, 'behaviour', ENTRY_BEHAVIOURS, i.behaviour, { required: false });
  if (i.override !== undefined && i.override !== null) {
    const o = i.override as { rateMinor?: unknown; reason?: unknown };
    if (typeof o !== 'object') e.override = 'must be a rate and a reason';
    else {
      validateRateMinor(e, 'override.rateMinor', o.rateMinor, { nullable: false });
      if (typeof o.reason !== 'string' || o.reason.trim() === '') e['override.reason'] = 'is required when overriding the rate';
      else if (o.reason.length > LIMITS.textChars) e['override.reason'] = `must be at most ${LIMITS.textChars} characters`;
    }
  }
  return e;
}

export interface DisbursementFields {
  incurredOn?: unknown; code?: unknown; expenseCode?: unknown; quantityMilli?: unknown; unitCostMinor?: unknown;
  taxCode?: unknown; description?: unknown; payee?: unknown; behaviour?: unknown;
}

export function validateDisbursement(i: DisbursementFields, opts: { partial?: boolean } = {}): FieldErrors {
  const required = !opts.partial;
  const e: FieldErrors = {};
  date(e, 'incurredOn', i.incurredOn, { required });
  if (i.code !== undefined || required) {
    if (typeof i.code !== 'string' || i.code.trim() === '') e.code = 'is required';
    else if (!/^[A-Z0-9][A-Z0-9_-]{0,19}$/.test(i.code)) e.code = 'must be up to 20 capital letters, digits, - or _';
  }
  code(e, 'expenseCode', i.expenseCode, isExpenseCode, 'expense');
  quantityIn(e, 'quantityMilli', i.quantityMilli, { required: false });
  amountIn(e, 'unitCostMinor', i.unitCostMinor, 0, LIMITS.unitCostMinor, { required });
  text(e, 'taxCode', i.taxCode, { required: false, max: 20 });
  text(e, 'description', i.description, { required, max: LIMITS.narrativeChars });
  if (opts.partial && typeof i.description === 'string' && i.description.trim() === '') e.description = 'is required';
  text(e, 'payee', i.payee, { required: false, max: LIMITS.nameChars });
  choice(e, 'behaviour', ENTRY_BEHAVIOURS, i.behaviour, { required: false });
  return e;
}

// =======================================================================================
// Billing options (seed 002) and firm billing settings
// =======================================================================================

export const BILLING_STATUS_MODES = ['use_matter_status', 'active', 'closed'] as const satisfies readonly BillingStatusMode[];
export const APPLY_FUNDS_TO = ['new_charges', 'new_charges_and_ar'] as const satisfies readonly ApplyFundsTo[];
export const FUNDS_AUTOMATION = ['automatic', 'manual'] as const satisfies readonly FundsAutomation[];
export const BILLING_ARRANGEMENTS = ['hourly', 'fixed_fee'] as const satisfies readonly BillingArrangementName[];
export const QUOTE_CHOICES = ['bill_quote', 'quote_plus_wip', 'wip_only'] as const satisfies readonly QuoteChoice[];
export const QUOTE_INCLUDES = ['fees', 'fees_and_costs', 'costs'] as const satisfies readonly QuoteIncludes[];
export const FIXED_FEE_MODES = ['every_cycle', 'custom_schedule'] as const satisfies readonly FixedFeeMode[];
export const DISCOUNT_KINDS = ['none', 'percentage', 'fixed'] as const satisfies readonly DiscountKind[];
export const FEE_ALLOCATION_RULES = ['pro_rata', 'responsible', 'selected'] as const satisfies readonly FeeAllocationRule[];
export const ADJUSTMENT_ALLOCATION_RULES = ['original_split', 'responsible', 'selected'] as const satisfies readonly AdjustmentAllocationRule[];
export const LEDES_FORMATS = ['LEDES1998B', 'LEDES1998BI'] as const satisfies readonly LedesFormatName[];
export const WIP_CAP_POLICIES = ['warn', 'refuse'] as const;
export const TAX_ROUNDING = ['per_line', 'per_bill'] as const;

/** Every top-level section of MatterBillingOptions, in the order the options page shows them. */
export const BILLING_OPTION_SECTIONS = [
  'billingEnabled', 'billingStatus', 'billTemplate', 'sendTo', 'useClientAddress', 'emailTemplate', 'copiesToPrint',
  'customRatesEnabled', 'generalRetainer', 'retainerReplenishment', 'trust', 'massBilling', 'arrangement',
  'defaultTimeEntryBehaviour', 'quote', 'feeReductions', 'fixedFee', 'discount', 'feeAllocation', 'ebilling',
] as const satisfies readonly BillingOptionSection[];

/** The keys of each object-valued section; anything else given is dropped. */
const SECTION_KEYS: Readonly<Partial<Record<BillingOptionSection, readonly string[]>>> = {
  generalRetainer: ['enabled', 'toPay', 'automation'],
  retainerReplenishment: ['enabled', 'minimumBalanceMinor', 'triggerMinor'],
  trust: ['toPay', 'automation'],
  massBilling: ['exclude', 'onlyExpenses'],
  quote: ['amountMinor', 'includes', 'ifWipBelow', 'ifWipAbove'],
  feeReductions: ['appearAsDiscount', 'hideLinePricing'],
  fixedFee: ['mode', 'schedule'],
  discount: ['kind', 'percentBasisPoints', 'amountMinor'],
  feeAllocation: [
    'allocateFees', 'feesTimekeeperId', 'allocateAdjustments', 'adjustmentsTimekeeperId', 'originationEnabled',
    'originatorTimekeeperId', 'originationBasisPoints',
  ],
  ebilling: ['enabled', 'codeSet', 'format', 'clientLedesId', 'matterLedesId'],
};
const ROW_KEYS = ['rowId', 'amountMinor', 'description', 'billOn', 'billOnStep', 'payOnStep', 'invoiceNumber'] as const;

export const isBillingOptionSection = (v: unknown): v is BillingOptionSection =>
  typeof v === 'string' && (BILLING_OPTION_SECTIONS as readonly string[]).includes(v);

/** What a matter gets when neither the firm nor the matter says otherwise. */
export function defaultMatterOptions(): MatterBillingOptions {
  return {
    billingEnabled: true,
    billingStatus: 'use_matter_status',
    billTemplate: 'standard',
    sendTo: [],
    useClientAddress: true,
    emailTemplate: 'standard',
    copiesToPrint: 1,
    customRatesEnabled: false,
    generalRetainer: { enabled: false, toPay: 'new_charges', automation: 'automatic' },
    retainerReplenishment: { enabled: false, minimumBalanceMinor: 0, triggerMinor: 0 },
    trust: { toPay: 'new_charges', automation: 'automatic' },
    massBilling: { exclude: false, onlyExpenses: false },
    arrangement: 'hourly',
    defaultTimeEntryBehaviour: 'bill',
    quote: { amountMinor: null, includes: 'fees', ifWipBelow: 'wip_only', ifWipAbove: 'wip_only' },
    feeReductions: { appearAsDiscount: true, hideLinePricing: false },
    fixedFee: { mode: 'every_cycle', schedule: [] },
    discount: { kind: 'none', percentBasisPoints: 0, amountMinor: 0 },
    feeAllocation: {
      allocateFees: 'pro_rata', feesTimekeeperId: null, allocateAdjustments: 'original_split', adjustmentsTimekeeperId: null,
      originationEnabled: false, originatorTimekeeperId: null, originationBasisPoints: 0,
    },
    ebilling: { enabled: false, codeSet: 'litigation', format: 'LEDES1998B', clientLedesId: '', matterLedesId: '' },
  };
}

/** The firm's settings before anyone changed them: USD, 6-minute units rounded up, 30 days, no tax on fees. */
export function defaultFirmSettings(): FirmBillingSettings {
  return {
    currency: 'USD',
    taxRates: [
      { code: 'EXEMPT', name: 'Exempt', basisPoints: 0 },
      { code: 'SALES', name: 'Sales tax', basisPoints: 825 },
    ],
    defaultFeeTaxCode: 'EXEMPT',
    taxRounding: 'per_line',
    paymentTermsDays: 30,
    timeUnitMinutes: 6,
    timeRounding: 'up',
    generalRetainersEnabled: false,
    wipCapPolicy: 'warn',
    interest: { enabled: false, annualRateBasisPoints: 1000, graceDays: 30 },
    postingOutsideCurrentPeriod: 'warn',
    matterDefaults: defaultMatterOptions(),
  };
}

const clone = <T>(v: T): T => structuredClone(v);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Only the known keys of a section (rows of a schedule too); other values unchanged. */
function canonicalSection(section: BillingOptionSection, v: unknown): unknown {
  if (section === 'sendTo' && Array.isArray(v)) return v.map((x) => (typeof x === 'string' ? x.trim() : x)).filter((x) => x !== '');
  const keys = SECTION_KEYS[section];
  if (!keys || !isObj(v)) return clone(v);
  const out: Record<string, unknown> = {};
  for (const k of keys) if (k in v) out[k] = clone(v[k]);
  if (section === 'fixedFee' && Array.isArray(out.schedule)) {
    out.schedule = out.schedule.map((r: unknown) => {
      if (!isObj(r)) return r;
      // Optional columns left out mean empty; rowId, amountMinor and billOn stay as given (validated).
      const row: Record<string, unknown> = {};
      for (const k of ROW_KEYS) row[k] = r[k];
      row.description ??= '';
      for (const k of ['billOnStep', 'payOnStep', 'invoiceNumber'] as const) row[k] ??= null;
      return row;
    });
  }
  return out;
}

/** A matter's effective options: the firm's defaults with the matter's overridden sections laid over them. */
export function effectiveOptions(defaults: MatterBillingOptions, overrides: Partial<MatterBillingOptions>): MatterBillingOptions {
  const out = clone(defaults) as unknown as Record<string, unknown>;
  for (const s of BILLING_OPTION_SECTIONS) if (overrides[s] !== undefined) out[s] = clone(overrides[s]);
  return out as unknown as MatterBillingOptions;
}

/**
 * A section as patched: an object section takes the patch's keys over the current value
 * (so `{ discount: { percentBasisPoints: 1500 } }` keeps the kind); other sections are replaced.
 */
export function patchSection(section: BillingOptionSection, current: unknown, patch: unknown): unknown {
  if (SECTION_KEYS[section] && isObj(current) && isObj(patch)) return canonicalSection(section, { ...current, ...patch });
  return canonicalSection(section, patch);
}

export type BillingOptionsPatch = { [K in BillingOptionSection]?: MatterBillingOptions[K] extends object
  ? (MatterBillingOptions[K] extends unknown[] ? MatterBillingOptions[K] : Partial<MatterBillingOptions[K]>) : MatterBillingOptions[K] };

/** The sections whose values differ between two option sets. */
export function changedSections(a: MatterBillingOptions, b: MatterBillingOptions): BillingOptionSection[] {
  return BILLING_OPTION_SECTIONS.filter((s) => JSON.stringify(a[s]) !== JSON.stringify(b[s]));
}

/** Split into what the matter overrides and what it inherits, in page order. */
export function overriddenAndInherited(overrides: Partial<MatterBillingOptions>): { overridden: BillingOptionSection[]; inherited: BillingOptionSection[] } {
  return {
    overridden: BILLING_OPTION_SECTIONS.filter((s) => overrides[s] !== undefined),
    inherited: BILLING_OPTION_SECTIONS.filter((s) => overrides[s] === undefined),
  };
}

// ---------------------------------------------------------------------------------------
// Validation of options and settings
// ---------------------------------------------------------------------------------------

export interface OptionsContext {
  /** True for a timekeeper that exists (fee allocation and origination picks). */
  readonly timekeeperExists: (id: string) => boolean;
  /** The UTBMS task code sets known from reference/utbms.csv, e.g. ['litigation']. */
  readonly codeSets: readonly string[];
  /** The firm's switch: a matter's general retainer needs it on. */
  readonly generalRetainersEnabled: boolean;
  /** 'firm' checks the firm's matter defaults: no custom schedule there (it belongs to a matter). */
  readonly scope: 'matter' | 'firm';
}

export const OPTION_LIMITS = {
  sendTo: 20,
  templateChars: 100,
  scheduleRows: 240,
  stepChars: 100,
  invoiceNumberChars: 40,
  /** LEDES 1998B: CLIENT_ID and LAW_FIRM_MATTER_ID are at most 20 characters. */
  ledesIdChars: 20,
} as const;

const BASIS_POINTS = 10_000;

function bool(e: FieldErrors, field: string, v: unknown): void {
  if (typeof v !== 'boolean') e[field] = 'must be true or false';
}

/** A non-negative whole amount in minor units; `min` 1 for amounts that must be positive. */
function amountField(e: FieldErrors, field: string, v: unknown, opts: { nullable?: boolean; min?: number } = {}): void {
  if (v === null && opts.nullable) return;
  if (v === undefined || v === null) { e[field] = 'is required'; return; }
  if (!isInt(v)) { e[field] = 'must be a whole number of minor units (cents)'; return; }
  const min = opts.min ?? 0;
  if (v < min) e[field] = min === 0 ? 'must not be negative' : 'must be more than 0';
  else if (v > MAX_AMOUNT_MINOR) e[field] = 'is too large';
}

function basisPoints(e: FieldErrors, field: string, v: unknown, min = 0): void {
  if (!isInt(v)) { e[field] = 'must be a whole number of basis points (100 = 1%)'; return; }
  if (v < min || v > BASIS_POINTS) e[field] = `must be between ${min} and ${BASIS_POINTS} basis points (100 = 1%)`;
}

function section(e: FieldErrors, field: string, v: unknown, check: (s: Record<string, unknown>) => void): void {
  if (!isObj(v)) { e[field] = 'is required'; return; }
  check(v);
}

function timekeeperRef(e: FieldErrors, field: string, v: unknown, required: boolean, why: string, c: OptionsContext): void {
  if (v === null || v === undefined || v === '') {
    if (required) e[field] = `is required ${why}`;
    return;
  }
  if (typeof v !== 'string') e[field] = 'must be a timekeeper id';
  else if (!c.timekeeperExists(v)) e[field] = 'is not a timekeeper';
}

/** LEDES text may not carry the format's delimiters. */
/** What a LEDES id cannot hold (as e-billing's export refuses): |, [ and ], control characters (tabs, line breaks, C1) and Unicode line separators. */
// eslint-disable-next-line no-control-regex
const LEDES_FORBIDDEN = /[|[\]\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

export function isEmail(v: unknown): v is string {
  return typeof v === 'string' && isEmailAddress(v);
}

/** "a@x.example, b@y.example" -> ["a@x.example", "b@y.example"] (the seed's comma-separated list). */
export function splitEmailList(text: string): string[] {
  return text.split(/[,;]/).map((s) => s.trim()).filter((s) => s !== '');
}

/**
 * Every rule of the matter billing options (seed 002), each error under its field path
 * ("discount.percentBasisPoints", "sendTo.1", "fixedFee.schedule.2.amountMinor").
 */
export function validateBillingOptions(input: unknown, c: OptionsContext): FieldErrors {
  const e: FieldErrors = {};
  if (!isObj(input)) return { options: 'must be an object of billing options' };
  const o = input;
  for (const k of Object.keys(o)) if (!isBillingOptionSection(k)) e[k] = 'is not a billing option';
  bool(e, 'billingEnabled', o.billingEnabled);
  choice(e, 'billingStatus', BILLING_STATUS_MODES, o.billingStatus, { required: true });
  text(e, 'billTemplate', o.billTemplate, { required: true, max: OPTION_LIMITS.templateChars });
  if (!Array.isArray(o.sendTo)) e.sendTo = 'must be a list of email addresses';
  else if (o.sendTo.length > OPTION_LIMITS.sendTo) e.sendTo = `must have at most ${OPTION_LIMITS.sendTo} addresses`;
  else o.sendTo.forEach((a: unknown, i) => { if (!isEmail(a)) e[`sendTo.${i}`] = `${JSON.stringify(a)} is not an email address`; });
  bool(e, 'useClientAddress', o.useClientAddress);
  text(e, 'emailTemplate', o.emailTemplate, { required: true, max: OPTION_LIMITS.templateChars });
  if (o.copiesToPrint !== 0 && o.copiesToPrint !== 1 && o.copiesToPrint !== 2) e.copiesToPrint = 'must be 0 (do not print), 1 or 2';
  bool(e, 'customRatesEnabled', o.customRatesEnabled);

  section(e, 'generalRetainer', o.generalRetainer, (s) => {
    bool(e, 'generalRetainer.enabled', s.enabled);
    choice(e, 'generalRetainer.toPay', APPLY_FUNDS_TO, s.toPay, { required: true });
    choice(e, 'generalRetainer.automation', FUNDS_AUTOMATION, s.automation, { required: true });
    if (s.enabled === true && !c.generalRetainersEnabled) {
      e['generalRetainer.enabled'] = "needs general retainers turned on in the firm's billing settings (generalRetainersEnabled)";
    }
  });
  section(e, 'retainerReplenishment', o.retainerReplenishment, (s) => {
    bool(e, 'retainerReplenishment.enabled', s.enabled);
    amountField(e, 'retainerReplenishment.minimumBalanceMinor', s.minimumBalanceMinor, { min: s.enabled === true ? 1 : 0 });
    amountField(e, 'retainerReplenishment.triggerMinor', s.triggerMinor);
    if (isInt(s.triggerMinor) && isInt(s.minimumBalanceMinor) && !e['retainerReplenishment.triggerMinor'] && s.triggerMinor > s.minimumBalanceMinor) {
      e['retainerReplenishment.triggerMinor'] = 'must not be more than the minimum balance';
    }
    if (s.enabled === true && isObj(o.generalRetainer) && o.generalRetainer.enabled !== true && !e['retainerReplenishment.enabled']) {
      e['retainerReplenishment.enabled'] = 'needs the general retainer turned on for the matter (generalRetainer.enabled)';
    }
  });
  section(e, 'trust', o.trust, (s) => {
    choice(e, 'trust.toPay', APPLY_FUNDS_TO, s.toPay, { required: true });
    choice(e, 'trust.automation', FUNDS_AUTOMATION, s.automation, { required: true });
  });
  section(e, 'massBilling', o.massBilling, (s) => {
    bool(e, 'massBilling.exclude', s.exclude);
    bool(e, 'massBilling.onlyExpenses', s.onlyExpenses);
  });
  choice(e, 'arrangement', BILLING_ARRANGEMENTS, o.arrangement, { required: true });
  choice(e, 'defaultTimeEntryBehaviour', ENTRY_BEHAVIOURS, o.defaultTimeEntryBehaviour, { required: true });
  section(e, 'quote', o.quote, (s) => {
    amountField(e, 'quote.amountMinor', s.amountMinor, { nullable: true });
    choice(e, 'quote.includes', QUOTE_INCLUDES, s.includes, { required: true });
    choice(e, 'quote.ifWipBelow', QUOTE_CHOICES, s.ifWipBelow, { required: true });
    choice(e, 'quote.ifWipAbove', QUOTE_CHOICES, s.ifWipAbove, { required: true });
  });
  section(e, 'feeReductions', o.feeReductions, (s) => {
    bool(e, 'feeReductions.appearAsDiscount', s.appearAsDiscount);
    bool(e, 'feeReductions.hideLinePricing', s.hideLinePricing);
  });
  section(e, 'fixedFee', o.fixedFee, (s) => {
    choice(e, 'fixedFee.mode', FIXED_FEE_MODES, s.mode, { required: true });
    Object.assign(e, scheduleErrors(s.schedule, c.scope));
    const quote = isObj(o.quote) ? o.quote.amountMinor : undefined;
    if (o.arrangement === 'fixed_fee' && s.mode === 'every_cycle' && (quote === null || quote === 0) && !e['quote.amountMinor']) {
      e['quote.amountMinor'] = 'is required for a fixed fee billed every cycle: each bill takes the quoted amount';
    }
  });
  section(e, 'discount', o.discount, (s) => {
    choice(e, 'discount.kind', DISCOUNT_KINDS, s.kind, { required: true });
    basisPoints(e, 'discount.percentBasisPoints', s.percentBasisPoints, s.kind === 'percentage' ? 1 : 0);
    amountField(e, 'discount.amountMinor', s.amountMinor, { min: s.kind === 'fixed' ? 1 : 0 });
  });
  section(e, 'feeAllocation', o.feeAllocation, (s) => {
    choice(e, 'feeAllocation.allocateFees', FEE_ALLOCATION_RULES, s.allocateFees, { required: true });
    timekeeperRef(e, 'feeAllocation.feesTimekeeperId', s.feesTimekeeperId, s.allocateFees === 'selected', 'when fees go to a selected timekeeper', c);
    choice(e, 'feeAllocation.allocateAdjustments', ADJUSTMENT_ALLOCATION_RULES, s.allocateAdjustments, { required: true });
    timekeeperRef(e, 'feeAllocation.adjustmentsTimekeeperId', s.adjustmentsTimekeeperId, s.allocateAdjustments === 'selected', 'when adjustments go to a selected timekeeper', c);
    bool(e, 'feeAllocation.originationEnabled', s.originationEnabled);
    timekeeperRef(e, 'feeAllocation.originatorTimekeeperId', s.originatorTimekeeperId, s.originationEnabled === true, 'when the origination fee is on', c);
    basisPoints(e, 'feeAllocation.originationBasisPoints', s.originationBasisPoints, s.originationEnabled === true ? 1 : 0);
  });
  section(e, 'ebilling', o.ebilling, (s) => {
    const on = s.enabled === true;
    bool(e, 'ebilling.enabled', s.enabled);
    if (typeof s.codeSet !== 'string' || (s.codeSet === '' && on)) e['ebilling.codeSet'] = on ? 'is required when e-billing is on' : 'must be text';
    else if (s.codeSet !== '' && !c.codeSets.includes(s.codeSet)) e['ebilling.codeSet'] = `must be one of the UTBMS code sets: ${c.codeSets.join(', ')}`;
    choice(e, 'ebilling.format', LEDES_FORMATS, s.format, { required: true });
    for (const [k, label] of [['clientLedesId', 'client'], ['matterLedesId', 'matter']] as const) {
      const v = s[k];
      const field = `ebilling.${k}`;
      if (typeof v !== 'string') e[field] = 'must be text';
      else if (v.trim() === '') { if (on) e[field] = `is required when e-billing is on: the ${label} id the client's e-billing platform knows`; }
      else if (v.length > OPTION_LIMITS.ledesIdChars) e[field] = `must be at most ${OPTION_LIMITS.ledesIdChars} characters (LEDES)`;
      // The e-billing platform matches ids exactly, and an export refuses one with edge spaces.
      else if (v !== v.trim()) e[field] = 'must not start or end with a space (LEDES ids are matched exactly)';
      else if (LEDES_FORBIDDEN.test(v)) e[field] = 'must not contain |, [, ], line breaks, tabs or other control characters (LEDES)';
    }
  });
  return e;
}

function scheduleErrors(v: unknown, scope: 'matter' | 'firm'): FieldErrors {
  const e: FieldErrors = {};
  if (!Array.isArray(v)) return { 'fixedFee.schedule': 'must be a list of instalments' };
  if (scope === 'firm' && v.length > 0) return { 'fixedFee.schedule': "must be empty in the firm's defaults: a custom schedule belongs to a matter" };
  if (v.length > OPTION_LIMITS.scheduleRows) return { 'fixedFee.schedule': `must have at most ${OPTION_LIMITS.scheduleRows} instalments` };
  const ids = new Set<string>();
  v.forEach((r: unknown, i) => {
    const p = `fixedFee.schedule.${i}`;
    if (!isObj(r)) { e[p] = 'must be an instalment'; return; }
    if (typeof r.rowId !== 'string' || r.rowId.trim() === '') e[`${p}.rowId`] = 'is required';
    else if (ids.has(r.rowId)) e[`${p}.rowId`] = 'is used by another instalment';
    else ids.add(r.rowId);
    amountField(e, `${p}.amountMinor`, r.amountMinor, { min: 1 });
    text(e, `${p}.description`, r.description, { required: true, max: LIMITS.textChars });
    if (r.description === '') delete e[`${p}.description`];
    date(e, `${p}.billOn`, r.billOn, { required: true });
    text(e, `${p}.billOnStep`, r.billOnStep, { required: false, max: OPTION_LIMITS.stepChars });
    text(e, `${p}.payOnStep`, r.payOnStep, { required: false, max: OPTION_LIMITS.stepChars });
    text(e, `${p}.invoiceNumber`, r.invoiceNumber, { required: false, max: OPTION_LIMITS.invoiceNumberChars });
  });
  return e;
}

const sameRow = (a: FixedFeeRow, b: FixedFeeRow): boolean => ROW_KEYS.every((k) => a[k] === b[k]);

/**
 * Instalments already billed (an invoice number is set) can be neither deleted nor changed,
 * and only billing sets an invoice number. Errors name the row.
 */
export function scheduleChangeErrors(before: readonly FixedFeeRow[], after: readonly FixedFeeRow[], currency: string): FieldErrors {
  const e: FieldErrors = {};
  const afterById = new Map(after.map((r, i) => [r.rowId, { r, i }]));
  const beforeById = new Map(before.map((r) => [r.rowId, r]));
  const deleted: string[] = [];
  for (const b of before) {
    if (b.invoiceNumber === null) continue;
    const a = afterById.get(b.rowId);
    if (!a) deleted.push(`${formatMoney(b.amountMinor, currency)} billed on ${b.invoiceNumber}`);
    else if (!sameRow(a.r, b)) e[`fixedFee.schedule.${a.i}`] = `has been billed (invoice ${b.invoiceNumber}) and cannot be changed`;
  }
  if (deleted.length > 0) e['fixedFee.schedule'] = `billed instalments cannot be deleted: ${deleted.join('; ')}`;
  after.forEach((a, i) => {
    const b = beforeById.get(a.rowId);
    if (a.invoiceNumber !== null && (!b || b.invoiceNumber !== a.invoiceNumber)) {
      e[`fixedFee.schedule.${i}.invoiceNumber`] = 'is set by billing when the instalment is billed';
    }
  });
  return e;
}

/** Things worth telling the person who saved the options, that do not stop the save. */
export function optionWarnings(o: MatterBillingOptions, currency: string): string[] {
  const w: string[] = [];
  if (o.arrangement === 'fixed_fee' && o.fixedFee.mode === 'custom_schedule') {
    if (o.fixedFee.schedule.length === 0) w.push('The fixed-fee custom schedule has no instalments yet.');
    else if (o.quote.amountMinor !== null) {
      const total = sumMinor(o.fixedFee.schedule.map((r) => r.amountMinor));
      const diff = total - o.quote.amountMinor;
      if (diff !== 0) {
        w.push(`The custom schedule totals ${formatMoney(total, currency)}, ${formatMoney(Math.abs(diff), currency)} ${diff < 0 ? 'less' : 'more'} than the quote of ${formatMoney(o.quote.amountMinor, currency)}.`);
      }
    }
  }
  return w;
}

/** The seed's reason, with the counts, or null when billing may be turned off. */
/**
 * Seed 002 counts a custom schedule's instalments among a matter's items: the ones not yet
 * billed are billable while the schedule bills the matter (fixed fee, custom schedule), the
 * billed ones are billed items whatever the arrangement now is.
 */
export function scheduleItemCounts(o: Pick<MatterBillingOptions, 'arrangement' | 'fixedFee'>): { billable: number; billed: number } {
  const rows = o.fixedFee.schedule;
  const billed = rows.filter((r) => r.invoiceNumber !== null).length;
  const billable = o.arrangement === 'fixed_fee' && o.fixedFee.mode === 'custom_schedule' ? rows.length - billed : 0;
  return { billable, billed };
}

/** Add a matter's schedule instalments (scheduleItemCounts) to its WIP item counts. */
export function withScheduleItems(counts: { billable: number; billed: number }, o: Pick<MatterBillingOptions, 'arrangement' | 'fixedFee'>): { billable: number; billed: number } {
  const s = scheduleItemCounts(o);
  return { billable: counts.billable + s.billable, billed: counts.billed + s.billed };
}

export function billingOffRefusal(counts: { billable: number; billed: number }): string | null {
  if (counts.billable === 0 && counts.billed === 0) return null;
  const parts: string[] = [];
  if (counts.billable > 0) parts.push(`${counts.billable} billable item${counts.billable === 1 ? '' : 's'} not yet billed`);
  if (counts.billed > 0) parts.push(`${counts.billed} billed item${counts.billed === 1 ? '' : 's'}`);
  return `You can not turn this off while there are any billable or billed items remaining (${parts.join(' and ')})`;
}

export type FirmSettingsPatch = Partial<Omit<FirmBillingSettings, 'matterDefaults' | 'interest'>> & {
  interest?: Partial<FirmBillingSettings['interest']>;
  matterDefaults?: BillingOptionsPatch;
};

/** The settings with a patch applied: top-level values replaced, `interest` and each matter-default section patched. */
export function patchFirmSettings(current: FirmBillingSettings, patch: FirmSettingsPatch): FirmBillingSettings {
  const next = clone(current);
  const p = patch as Record<string, unknown>;
  for (const k of Object.keys(p)) {
    const v = p[k];
    if (v === undefined) continue;
    if (k === 'interest' && isObj(v)) {
      const merged = { ...next.interest, ...clone(v) } as Record<string, unknown>;
      next.interest = Object.fromEntries(['enabled', 'annualRateBasisPoints', 'graceDays'].map((x) => [x, merged[x]])) as FirmBillingSettings['interest'];
    }
    else if (k === 'matterDefaults' && isObj(v)) {
      const md = next.matterDefaults as unknown as Record<string, unknown>;
      for (const [s, sv] of Object.entries(v)) {
        if (sv === undefined) continue;
        md[s] = isBillingOptionSection(s) ? patchSection(s, md[s], sv) : sv;
      }
    } else (next as unknown as Record<string, unknown>)[k] = clone(v);
  }
  return next;
}

const FIRM_KEYS = [
  'currency', 'taxRates', 'defaultFeeTaxCode', 'taxRounding', 'paymentTermsDays', 'timeUnitMinutes', 'timeRounding',
  'generalRetainersEnabled', 'wipCapPolicy', 'interest', 'postingOutsideCurrentPeriod', 'matterDefaults',
] as const satisfies readonly (keyof FirmBillingSettings)[];

export function validateFirmSettings(input: unknown, c: Omit<OptionsContext, 'scope' | 'generalRetainersEnabled'>): FieldErrors {
  if (!isObj(input)) return { settings: 'must be an object' };
  const s = input;
  const e: FieldErrors = {};
  for (const k of Object.keys(s)) if (!(FIRM_KEYS as readonly string[]).includes(k)) e[k] = 'is not a billing setting';
  if (typeof s.currency !== 'string' || !isKnownCurrency(s.currency)) e.currency = UNKNOWN_CURRENCY;
  const codes: string[] = [];
  if (!Array.isArray(s.taxRates) || s.taxRates.length === 0) e.taxRates = 'must list at least one tax rate (e.g. EXEMPT at 0)';
  else if (s.taxRates.length > 50) e.taxRates = 'must have at most 50 tax rates';
  else {
    s.taxRates.forEach((r: unknown, i) => {
      const p = `taxRates.${i}`;
      if (!isObj(r)) { e[p] = 'must be a tax rate'; return; }
      if (typeof r.code !== 'string' || !/^[A-Z][A-Z0-9_-]{0,19}$/.test(r.code)) e[`${p}.code`] = 'must be up to 20 capital letters, digits, - or _, starting with a letter';
      else if (codes.includes(r.code)) e[`${p}.code`] = `${r.code} is listed twice`;
      else codes.push(r.code);
      text(e, `${p}.name`, r.name, { required: true, max: 100 });
      basisPoints(e, `${p}.basisPoints`, r.basisPoints);
    });
  }
  if (typeof s.defaultFeeTaxCode !== 'string' || !codes.includes(s.defaultFeeTaxCode)) {
    if (!e.taxRates) e.defaultFeeTaxCode = `must be one of the tax codes: ${codes.join(', ')}`;
  }
  choice(e, 'taxRounding', TAX_ROUNDING, s.taxRounding, { required: true });
  intIn(e, 'paymentTermsDays', s.paymentTermsDays, 0, 365, { required: true });
  intIn(e, 'timeUnitMinutes', s.timeUnitMinutes, 1, 60, { required: true });
  choice(e, 'timeRounding', MINUTE_ROUNDING, s.timeRounding, { required: true });
  bool(e, 'generalRetainersEnabled', s.generalRetainersEnabled);
  choice(e, 'wipCapPolicy', WIP_CAP_POLICIES, s.wipCapPolicy, { required: true });
  section(e, 'interest', s.interest, (i) => {
    bool(e, 'interest.enabled', i.enabled);
    basisPoints(e, 'interest.annualRateBasisPoints', i.annualRateBasisPoints);
    intIn(e, 'interest.graceDays', i.graceDays, 0, 365, { required: true });
  });
  choice(e, 'postingOutsideCurrentPeriod', WIP_CAP_POLICIES, s.postingOutsideCurrentPeriod, { required: true });
  const md = validateBillingOptions(s.matterDefaults, { ...c, scope: 'firm', generalRetainersEnabled: s.generalRetainersEnabled === true });
  for (const [k, v] of Object.entries(md)) e[`matterDefaults.${k}`] = v;
  return e;
}

// ---------------------------------------------------------------------------------------
// Fixed-fee custom schedule: auto-fill (seed 002)
// ---------------------------------------------------------------------------------------

/** The date `n` billing cycles after `start` (counted from the start, so month ends do not drift); `none` steps monthly. */
export function nthBillingDate(start: string, cycle: BillingCycle, n: number): string {
  assertSafeInteger(n, 'n');
  switch (cycle) {
    case 'WEEK': return addDays(start, 7 * n);
    case 'QUARTER': return addMonths(start, 3 * n);
    case 'HALF': return addMonths(start, 6 * n);
    case 'YEAR': return addMonths(start, 12 * n);
    case 'none':
    case 'MONTH': return addMonths(start, n);
  }
}

export function validateAutoFill(quoteMinor: number | null, firstAmountMinor: unknown): FieldErrors {
  const e: FieldErrors = {};
  if (quoteMinor === null || quoteMinor <= 0) e['quote.amountMinor'] = 'is required to auto-fill the schedule: set the quoted amount first';
  amountField(e, 'firstAmountMinor', firstAmountMinor, { min: 1 });
  if (!e.firstAmountMinor && !e['quote.amountMinor'] && isInt(firstAmountMinor) && quoteMinor !== null) {
    if (firstAmountMinor > quoteMinor) e.firstAmountMinor = 'must not be more than the amount left to schedule';
    else if (Math.ceil(quoteMinor / firstAmountMinor) > OPTION_LIMITS.scheduleRows) e.firstAmountMinor = `would make more than ${OPTION_LIMITS.scheduleRows} instalments`;
  }
  return e;
}

export interface AutoFillOptions {
  /** The first instalment's date; each next one is a billing cycle later. */
  readonly startDate: string;
  readonly cycle: BillingCycle;
  /** Each row's description; defaults to "Instalment i of n". */
  readonly description?: string;
  /** Row ids (the commands pass fresh UUIDs); defaults to "auto-1", "auto-2", ... */
  readonly newRowId?: (index: number) => string;
}

/**
 * Seed 002's auto-fill: as many rows of the first amount as fit into the quote, and a last
 * row with the remainder. Quote 1,000.00 with 100.00 gives 10 rows of 100.00; with 90.00,
 * 11 rows of 90.00 and one of 10.00.
 */
export function autoFillSchedule(quoteMinor: number, firstAmountMinor: number, opts: AutoFillOptions): FixedFeeRow[] {
  assert(isInt(quoteMinor) && quoteMinor > 0, `quote must be a positive integer, got ${quoteMinor}`);
  assert(isInt(firstAmountMinor) && firstAmountMinor > 0 && firstAmountMinor <= quoteMinor, `first amount must be 1..quote, got ${firstAmountMinor}`);
  assert(isIsoDate(opts.startDate), `invalid start date ${opts.startDate}`);
  const whole = Math.floor(quoteMinor / firstAmountMinor);
  const remainder = quoteMinor - whole * firstAmountMinor;
  const amounts = Array.from({ length: whole }, () => firstAmountMinor);
  if (remainder > 0) amounts.push(remainder);
  assert(amounts.length <= OPTION_LIMITS.scheduleRows, `auto-fill would make ${amounts.length} rows`);
  const id = opts.newRowId ?? ((i: number) => `auto-${i + 1}`);
  return amounts.map((amountMinor, i) => ({
    rowId: id(i), amountMinor, description: opts.description ?? `Instalment ${i + 1} of ${amounts.length}`,
    billOn: nthBillingDate(opts.startDate, opts.cycle, i), billOnStep: null, payOnStep: null, invoiceNumber: null,
  }));
}

// ---------------------------------------------------------------------------------------
// UTBMS reference (reference/utbms.csv) and e-billing code rules
// ---------------------------------------------------------------------------------------

export const UTBMS_KINDS = ['phase', 'task', 'activity', 'expense'] as const;
export type UtbmsKind = (typeof UTBMS_KINDS)[number];

export interface UtbmsCode {
  /** e.g. litigation (task codes and phases), activity, expense. */
  readonly codeSet: string;
  readonly kind: UtbmsKind;
  readonly code: string;
  /** A task's phase, e.g. L100 for L110. */
  readonly parent: string | null;
  readonly name: string;
}

/** Parse reference/utbms.csv (header code_set,kind,code,parent,name). Throws on a malformed file. */
export function parseUtbmsCsv(textIn: string): UtbmsCode[] {
  const lines = textIn.replace(/^\ufeff/, '').split(/\r?\n/).filter((l) => l.trim() !== '');
  assert(lines.length > 0 && lines[0]!.trim() === 'code_set,kind,code,parent,name', 'utbms.csv must start with the header code_set,kind,code,parent,name');
  const seen = new Set<string>();
  return lines.slice(1).map((line, i) => {
    const f = csvLineFields(line, `utbms.csv line ${i + 2}`);
    assert(f.length === 5, `utbms.csv line ${i + 2}: expected 5 fields, got ${f.length}`);
    const [codeSet, kind, code, parent, name] = f as [string, string, string, string, string];
    assert((UTBMS_KINDS as readonly string[]).includes(kind), `utbms.csv line ${i + 2}: unknown kind ${kind}`);
    assert(/^[A-Z]\d{3}$/.test(code), `utbms.csv line ${i + 2}: bad code ${code}`);
    assert(!seen.has(`${codeSet}|${code}`), `utbms.csv line ${i + 2}: ${code} repeated`);
    seen.add(`${codeSet}|${code}`);
    return { codeSet, kind: kind as UtbmsKind, code, parent: parent === '' ? null : parent, name };
  });
}

export interface UtbmsIndex {
  readonly codes: readonly UtbmsCode[];
  /** Task code sets (those holding task codes) to their task codes. */
  readonly taskSets: ReadonlyMap<string, ReadonlySet<string>>;
  readonly activities: ReadonlySet<string>;
  readonly expenses: ReadonlySet<string>;
}

export function indexUtbms(codes: readonly UtbmsCode[]): UtbmsIndex {
  const taskSets = new Map<string, Set<string>>();
  const activities = new Set<string>();
  const expenses = new Set<string>();
  for (const c of codes) {
    if (c.kind === 'task') {
      const set = taskSets.get(c.codeSet) ?? new Set<string>();
      set.add(c.code);
      taskSets.set(c.codeSet, set);
    } else if (c.kind === 'activity') activities.add(c.code);
    else if (c.kind === 'expense') expenses.add(c.code);
  }
  return { codes, taskSets, activities, expenses };
}

export type CodedItem =
  | { kind: 'time' | 'fixed_charge'; taskCode: string | null | undefined; activityCode: string | null | undefined }
  | { kind: 'disbursement'; expenseCode: string | null | undefined };

/**
 * An e-billed matter's work must carry UTBMS codes of its code set: time and fixed charges a
 * task and an activity code, disbursements an expense code. Nothing is required otherwise.
 */
export function ebillingCodeErrors(item: CodedItem, ebilling: MatterBillingOptions['ebilling'], index: UtbmsIndex, fileNumberText: string): FieldErrors {
  const e: FieldErrors = {};
  if (!ebilling.enabled) return e;
  const why = `matter ${fileNumberText} is e-billed (${ebilling.format}, ${ebilling.codeSet} codes)`;
  if (item.kind === 'disbursement') {
    if (!item.expenseCode) e.expenseCode = `is required: ${why}`;
    else if (!index.expenses.has(item.expenseCode)) e.expenseCode = 'is not a UTBMS expense code';
    return e;
  }
  const tasks = index.taskSets.get(ebilling.codeSet) ?? new Set<string>();
  if (!item.taskCode) e.taskCode = `is required: ${why}`;
  else if (!tasks.has(item.taskCode)) e.taskCode = `is not a task code of the ${ebilling.codeSet} code set`;
  if (!item.activityCode) e.activityCode = `is required: ${why}`;
  else if (!index.activities.has(item.activityCode)) e.activityCode = 'is not a UTBMS activity code';
  return e;
}

// ---------------------------------------------------------------------------------------
// WIP cap when recording
// ---------------------------------------------------------------------------------------

/** Null when the WIP stays within the cap; otherwise the sentence to warn or refuse with. */
export function capExcess(wipAfterMinor: number, capMinor: number | null, currency: string): string | null {
  if (capMinor === null || wipAfterMinor <= capMinor) return null;
  return `would take WIP to ${formatMoney(wipAfterMinor, currency)}, over the cap of ${formatMoney(capMinor, currency)}`;
}

// ---------------------------------------------------------------------------------------
// Contacts, participants, charge types and fixed charges
// ---------------------------------------------------------------------------------------

export interface ContactFields { name?: unknown; email?: unknown; phone?: unknown; address?: unknown; role?: unknown }

export function validateContact(i: ContactFields, opts: { partial?: boolean } = {}): FieldErrors {
  const e: FieldErrors = {};
  text(e, 'name', i.name, { required: !opts.partial, max: LIMITS.nameChars });
  if (opts.partial && typeof i.name === 'string' && i.name.trim() === '') e.name = 'is required';
  text(e, 'email', i.email, { required: false, max: 254 });
  if (!e.email && typeof i.email === 'string' && i.email.trim() !== '' && !isEmailAddress(i.email.trim())) e.email = 'must be an email address';
  text(e, 'phone', i.phone, { required: false, max: 50 });
  if (!e.phone && typeof i.phone === 'string' && !/^[0-9+().\-\s/x]*$/i.test(i.phone)) e.phone = 'must be a phone number (digits, spaces, + ( ) - .)';
  text(e, 'address', i.address, { required: false, max: LIMITS.textChars });
  text(e, 'role', i.role, { required: false, max: 100 });
  return e;
}

export function validateParticipants(v: unknown): FieldErrors {
  const e: FieldErrors = {};
  if (!Array.isArray(v)) return { participants: 'must be a list of contacts and their roles' };
  if (v.length > 50) return { participants: 'must have at most 50 participants' };
  const seen = new Set<string>();
  v.forEach((p: unknown, i) => {
    if (!isObj(p)) { e[`participants.${i}`] = 'must be a contact and a role'; return; }
    if (typeof p.contactId !== 'string' || p.contactId.trim() === '') e[`participants.${i}.contactId`] = 'is required';
    else if (seen.has(p.contactId)) e[`participants.${i}.contactId`] = 'is listed twice';
    else seen.add(p.contactId);
    text(e, `participants.${i}.role`, p.role, { required: true, max: 100 });
  });
  return e;
}

export interface ChargeTypeFields {
  code?: unknown; name?: unknown; defaultPriceMinor?: unknown; taxCode?: unknown; taskCode?: unknown; activityCode?: unknown; active?: unknown;
}

export function validateChargeType(i: ChargeTypeFields, opts: { partial?: boolean } = {}): FieldErrors {
  const required = !opts.partial;
  const e: FieldErrors = {};
  if (i.code !== undefined || required) {
    if (typeof i.code !== 'string' || i.code.trim() === '') e.code = 'is required';
    else if (!/^[A-Z0-9][A-Z0-9_-]{0,19}$/.test(i.code)) e.code = 'must be up to 20 capital letters, digits, - or _';
  }
  text(e, 'name', i.name, { required, max: LIMITS.nameChars });
  if (opts.partial && typeof i.name === 'string' && i.name.trim() === '') e.name = 'is required';
  amountIn(e, 'defaultPriceMinor', i.defaultPriceMinor, 0, LIMITS.unitCostMinor, { required });
  text(e, 'taxCode', i.taxCode, { required: false, max: 20 });
  code(e, 'taskCode', i.taskCode, isTaskCode, 'task');
  code(e, 'activityCode', i.activityCode, isActivityCode, 'activity');
  if (i.active !== undefined && typeof i.active !== 'boolean') e.active = 'must be true or false';
  return e;
}

export interface FixedChargeFields {
  chargedOn?: unknown; chargeTypeId?: unknown; quantityMilli?: unknown; unitPriceMinor?: unknown; description?: unknown;
  taxCode?: unknown; taskCode?: unknown; activityCode?: unknown; behaviour?: unknown; quoted?: unknown;
}

export function validateFixedCharge(i: FixedChargeFields, opts: { partial?: boolean } = {}): FieldErrors {
  const required = !opts.partial;
  const e: FieldErrors = {};
  date(e, 'chargedOn', i.chargedOn, { required });
  if (i.chargeTypeId !== undefined || required) {
    if (typeof i.chargeTypeId !== 'string' || i.chargeTypeId.trim() === '') e.chargeTypeId = 'is required';
  }
  quantityIn(e, 'quantityMilli', i.quantityMilli, { required: false });
  amountIn(e, 'unitPriceMinor', i.unitPriceMinor, 0, LIMITS.unitCostMinor, { required: false });
  text(e, 'description', i.description, { required: false, max: LIMITS.narrativeChars });
  if (typeof i.description === 'string' && i.description.trim() === '') e.description = 'must not be blank (leave it out to use the charge type name)';
  text(e, 'taxCode', i.taxCode, { required: false, max: 20 });
  code(e, 'taskCode', i.taskCode, isTaskCode, 'task');
  code(e, 'activityCode', i.activityCode, isActivityCode, 'activity');
  choice(e, 'behaviour', ENTRY_BEHAVIOURS, i.behaviour, { required: false });
  if (i.quoted !== undefined && typeof i.quoted !== 'boolean') e.quoted = 'must be true or false';
  return e;
}

/** Fixed charge total: quantity (thousandths) x unit price, rounded half up once. */
export const fixedChargeAmountMinor = disbursementAmountMinor;
