/**
 * The matters domain: pure rules for rates, time rounding, WIP amounts, file numbers,
 * WIP caps and input validation. No I/O; money goes through src/shared/money.ts.
 */
import { assert, assertSafeInteger } from '../../shared/assert.ts';
import { isCurrencyCode, MAX_AMOUNT_MINOR, mulDiv } from '../../shared/money.ts';

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

const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export interface TimekeeperFields {
  initials?: unknown; name?: unknown; classification?: unknown; ledesClassification?: unknown; active?: unknown;
}

export function validateTimekeeper(i: TimekeeperFields): FieldErrors {
  const e: FieldErrors = {};
  if (typeof i.initials !== 'string' || i.initials.trim() === '') e.initials = 'is required';
  else if (!/^[A-Z][A-Z0-9]{0,9}$/.test(i.initials)) e.initials = 'must be 1 to 10 capital letters or digits, starting with a letter';
  text(e, 'name', i.name, { required: true, max: LIMITS.nameChars });
  choice(e, 'classification', TIMEKEEPER_CLASSIFICATIONS, i.classification, { required: true });
  choice(e, 'ledesClassification', LEDES_CLASSIFICATIONS, i.ledesClassification, { required: false });
  if (i.active !== undefined && typeof i.active !== 'boolean') e.active = 'must be true or false';
  return e;
}

export function validateRateMinor(errors: FieldErrors, field: string, v: unknown, opts: { nullable: boolean }): void {
  if (v === null && opts.nullable) return;
  intIn(errors, field, v, 0, LIMITS.rateMinor, { required: true });
}

export function validateStandardRate(i: { effectiveFrom?: unknown; rateMinor?: unknown }): FieldErrors {
  const e: FieldErrors = {};
  date(e, 'effectiveFrom', i.effectiveFrom, { required: true });
  validateRateMinor(e, 'rateMinor', i.rateMinor, { nullable: false });
  return e;
}

export interface ClientFields { name?: unknown; email?: unknown; address?: unknown; taxId?: unknown }

export function validateClient(i: ClientFields): FieldErrors {
  const e: FieldErrors = {};
  text(e, 'name', i.name, { required: true, max: LIMITS.nameChars });
  text(e, 'email', i.email, { required: false, max: 254 });
  if (!e.email && typeof i.email === 'string' && i.email !== '' && !EMAIL_RE.test(i.email)) e.email = 'must be an email address';
  text(e, 'address', i.address, { required: false, max: LIMITS.textChars });
  text(e, 'taxId', i.taxId, { required: false, max: 50 });
  return e;
}

export interface MatterFields {
  name?: unknown; practiceArea?: unknown; openedOn?: unknown; billingCycle?: unknown; nextBillingDate?: unknown;
  wipCapMinor?: unknown; currency?: unknown; timeUnitMinutes?: unknown; roundingMode?: unknown; defaultBehaviour?: unknown;
}

export function validateMatter(i: MatterFields): FieldErrors {
  const e: FieldErrors = {};
  text(e, 'name', i.name, { required: true, max: LIMITS.nameChars });
  text(e, 'practiceArea', i.practiceArea, { required: false, max: 100 });
  date(e, 'openedOn', i.openedOn, { required: false });
  choice(e, 'billingCycle', BILLING_CYCLES, i.billingCycle, { required: false });
  date(e, 'nextBillingDate', i.nextBillingDate, { required: false });
  const cycle = i.billingCycle ?? 'none';
  if (!e.billingCycle && !e.nextBillingDate) {
    if (cycle === 'none' && i.nextBillingDate !== undefined && i.nextBillingDate !== null) e.nextBillingDate = 'must be empty when the matter has no billing cycle';
  }
  intIn(e, 'wipCapMinor', i.wipCapMinor, 1, LIMITS.wipCapMinor, { required: false });
  if (i.currency !== undefined && (typeof i.currency !== 'string' || !isCurrencyCode(i.currency))) e.currency = 'must be a three-letter currency code such as USD';
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
  intIn(e, 'quantityMilli', i.quantityMilli, 1, LIMITS.quantityMilli, { required: false });
  intIn(e, 'unitCostMinor', i.unitCostMinor, 0, LIMITS.unitCostMinor, { required });
  text(e, 'taxCode', i.taxCode, { required: false, max: 20 });
  text(e, 'description', i.description, { required, max: LIMITS.narrativeChars });
  if (opts.partial && typeof i.description === 'string' && i.description.trim() === '') e.description = 'is required';
  text(e, 'payee', i.payee, { required: false, max: LIMITS.nameChars });
  choice(e, 'behaviour', ENTRY_BEHAVIOURS, i.behaviour, { required: false });
  return e;
}
