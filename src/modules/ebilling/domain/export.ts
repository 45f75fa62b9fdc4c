/**
 * From bills to LEDES invoices, and invoices to a file. Pure.
 *
 * Every bill line becomes one line item whose arithmetic is the format's:
 *   LINE_ITEM_TOTAL = round(units x unit cost) + adjustment            (1998B)
 *   LINE_ITEM_TOTAL = round(units x unit cost) + adjustment + line tax (1998BI)
 * where the adjustment is what the bill charges less the extended value (a write-down, a
 * discount written into the line, a no-charge item: negative; a write-up: positive). An
 * invoice-level discount is an IF line (units 1, cost 0, adjustment the discount); interest
 * an IE line. INVOICE_TOTAL is the sum of the line totals and must equal the bill's total, or
 * the bill is refused. Everything a platform would reject is refused before any file exists,
 * each problem with its line, field and how to fix it.
 */
import { mulDiv, currencyExponent, isCurrencyCode } from '../../../shared/money.ts';
import type { BillData, BillLineData } from '../../billing/events.ts';
import type { LedesClassificationCode } from '../../matters/events.ts';
import {
  amountText, cleanText, COLUMN_LINE, COLUMNS, FIRST_LINE, FORBIDDEN_CHARS, LEDES_FORMATS, ledesDate, ledesName, MAX_ID_CHARS, rateText, splitName, unitsText,
} from './format.ts';
import type { LedesColumn, LedesFormat, LineType } from './format.ts';
import type { UtbmsCodes } from './utbms.ts';

/** The line kinds a bill's discount is shared over (the composer discounts fees and products, never disbursements or interest). */
const DISCOUNTED_KINDS: ReadonlySet<string> = new Set(['time', 'fixed_charge', 'fixed_fee', 'quote_fee', 'adhoc_fee']);

// ---------------------------------------------------------------------------------------
// Settings: the firm's LEDES identity and export choices (ebilling_settings)
// ---------------------------------------------------------------------------------------

export interface LedesSettings {
  /** LAW_FIRM_ID: the firm's id on the platforms, usually its tax id. */
  lawFirmId: string;
  lawFirmName: string;
  address1: string;
  address2: string;
  city: string;
  region: string;
  postcode: string;
  /** ISO 3166 alpha-3, e.g. USA, GBR. */
  country: string;
  /** CLIENT_COUNTRY for clients (ISO 3166 alpha-3); empty leaves it out. */
  clientCountry: string;
  /** INVOICE_DESCRIPTION; {matter} is replaced by the matter's name. */
  invoiceDescription: string;
  /** TIMEKEEPER_CLASSIFICATION as LEDES 1998B words (PARTNR, ASSOC...) or UTBMS codes (PT, AS...). */
  classificationStyle: 'words' | 'codes';
  /** No-charge items: shown at zero (units and cost, adjustment taking it all off) or left out. */
  noChargeLines: 'include' | 'omit';
  /** Some platforms reject invoices without these. */
  requireClientMatterId: boolean;
  /** ACCOUNT_TYPE (1998BI): O office, T trust. */
  accountType: 'O' | 'T';
  /** Codes for bill lines that carry none of their own (fixed fees, quotes, ad hoc lines); empty: refuse them. */
  defaultTaskCode: string;
  defaultActivityCode: string;
  defaultExpenseCode: string;
}

export function defaultLedesSettings(): LedesSettings {
  return {
    lawFirmId: '', lawFirmName: '', address1: '', address2: '', city: '', region: '', postcode: '', country: '', clientCountry: '',
    invoiceDescription: 'Professional services: {matter}', classificationStyle: 'words', noChargeLines: 'include',
    requireClientMatterId: true, accountType: 'O', defaultTaskCode: '', defaultActivityCode: '', defaultExpenseCode: '',
  };
}

export type SettingsErrors = Record<string, string>;

/** Field errors for settings a person typed; empty when valid. */
export function settingsErrors(s: LedesSettings, codes: UtbmsCodes): SettingsErrors {
  const e: SettingsErrors = {};
  const textField = (k: keyof LedesSettings, max: number, required = false) => {
    const v = s[k];
    if (typeof v !== 'string') { e[k] = 'must be text'; return; }
    if (required && v.trim() === '') e[k] = 'is required';
    else if (v.length > max) e[k] = `must be at most ${max} characters`;
    else if (FORBIDDEN_CHARS.test(v)) e[k] = 'must not contain |, [, ], line breaks, tabs or other control characters (LEDES)';
  };
  textField('lawFirmId', MAX_ID_CHARS, true);
  // LEDES refuses an id with spaces at either end; refuse it here rather than at export.
  if (!e.lawFirmId && typeof s.lawFirmId === 'string' && s.lawFirmId !== s.lawFirmId.trim()) e.lawFirmId = 'must not start or end with a space (LEDES)';
  textField('lawFirmName', 200, true);
  for (const k of ['address1', 'address2', 'city', 'region'] as const) textField(k, 200);
  textField('postcode', 20);
  textField('invoiceDescription', 500);
  for (const k of ['country', 'clientCountry'] as const) {
    if (typeof s[k] !== 'string' || (s[k] !== '' && !/^[A-Z]{3}$/.test(s[k]))) e[k] = 'must be an ISO 3166 alpha-3 country code (e.g. USA, GBR) or empty';
  }
  if (!['words', 'codes'].includes(s.classificationStyle)) e.classificationStyle = 'must be words or codes';
  if (!['include', 'omit'].includes(s.noChargeLines)) e.noChargeLines = 'must be include or omit';
  if (!['O', 'T'].includes(s.accountType)) e.accountType = 'must be O (office) or T (trust)';
  if (typeof s.requireClientMatterId !== 'boolean') e.requireClientMatterId = 'must be true or false';
  const anyTask = [...codes.taskSets.values()].some((set) => set.has(s.defaultTaskCode));
  if (s.defaultTaskCode !== '' && !anyTask) e.defaultTaskCode = 'is not a UTBMS task code';
  if (s.defaultActivityCode !== '' && !codes.activities.has(s.defaultActivityCode)) e.defaultActivityCode = 'is not a UTBMS activity code';
  if (s.defaultExpenseCode !== '' && !codes.expenses.has(s.defaultExpenseCode)) e.defaultExpenseCode = 'is not a UTBMS expense code';
  return e;
}

/** LEDES 1998B words for the UTBMS timekeeper classification codes. */
export const CLASSIFICATION_WORDS: Readonly<Record<LedesClassificationCode, string>> = {
  PT: 'PARTNR', AS: 'ASSOC', OC: 'OFCNSL', PL: 'PARLEG', LA: 'LGLAST', OT: 'OTHER',
};

// ---------------------------------------------------------------------------------------
// What an export reads (ebilling's own copy, fed by events)
// ---------------------------------------------------------------------------------------

export interface EbillingOptions { enabled: boolean; codeSet: string; format: LedesFormat; clientLedesId: string; matterLedesId: string }

export interface MatterFacts {
  matterId: string;
  fileNumber: string;
  name: string;
  responsibleTimekeeperId: string;
  billingTimekeeperId: string;
  /** Null when matters never sent the matter's billing options. */
  ebilling: EbillingOptions | null;
}

export interface ClientFacts { clientId: string; name: string; address: string | null; taxId: string | null }
export interface TimekeeperFacts { timekeeperId: string; initials: string; name: string; ledesClassification: LedesClassificationCode | null }
/** A WIP item's quantity and unit cost (disbursements and fixed charges), from matters' events. */
export interface ItemFacts { id: string; quantityMilli: number; unitCostMinor: number }

export interface BillFacts {
  bill: BillData;
  matter: MatterFacts | null;
  client: ClientFacts | null;
  timekeepers: ReadonlyMap<string, TimekeeperFacts>;
  items: ReadonlyMap<string, ItemFacts>;
  /** The firm's tax rates by code (basis points); empty when never received. */
  taxRates: ReadonlyMap<string, number>;
}

// ---------------------------------------------------------------------------------------
// Invoices and problems
// ---------------------------------------------------------------------------------------

export interface LedesLine {
  lineNo: number;
  type: LineType;
  /** Units in millionths (hours for time, the quantity for costs, 1 for others). */
  unitsMicro: number;
  unitCostMinor: number;
  adjustmentMinor: number;
  taxMinor: number;
  /** units x cost (rounded) + adjustment + tax (1998BI); without tax in 1998B. */
  totalMinor: number;
  date: string;
  taskCode: string;
  expenseCode: string;
  activityCode: string;
  timekeeperId: string;
  timekeeperName: string;
  timekeeperFirst: string;
  timekeeperLast: string;
  classification: string;
  description: string;
  taxRateBasisPoints: number | null;
  taxType: string;
  /** The bill line it came from. */
  billLineNo: number;
}

export interface LedesInvoice {
  billId: string;
  format: LedesFormat;
  currency: string;
  exponent: number;
  invoiceDate: string;
  number: string;
  clientId: string;
  lawFirmMatterId: string;
  clientMatterId: string;
  startDate: string;
  endDate: string;
  description: string;
  lawFirmId: string;
  matterName: string;
  clientTaxId: string;
  clientName: string;
  clientAddress: string;
  totalMinor: number;
  taxMinor: number;
  lines: LedesLine[];
}

export interface Problem {
  billId: string;
  /** The bill's number, or its id when it has none. */
  bill: string;
  /** The bill line (1-based) when the problem is a line's; null for the invoice. */
  lineNo: number | null;
  field: LedesColumn | 'settings' | 'bill';
  message: string;
  fix: string;
}

export type BuildResult = { ok: true; invoice: LedesInvoice } | { ok: false; problems: Problem[] };

/** A bill line's LEDES type: fees F, costs E, a discount line IF, interest IE. */
export function lineType(kind: BillLineData['kind']): LineType {
  switch (kind) {
    case 'time': case 'fixed_charge': case 'fixed_fee': case 'quote_fee': case 'adhoc_fee': return 'F';
    case 'disbursement': case 'adhoc_disbursement': return 'E';
    case 'discount': return 'IF';
    case 'interest': return 'IE';
  }
}

const EXPORTABLE = new Set(['approved', 'finalised']);
const MAX_LINES = 1_000_000;

/** a x b / c rounded half up; exact in plain numbers while 2ab stays below 2^53, else through BigInt. */
function mulDivHalfUp(a: number, b: number, c: number): number {
  const twice = 2 * a * b;
  if (a >= 0 && b >= 0 && twice <= Number.MAX_SAFE_INTEGER) return Math.floor((twice + c) / (2 * c));
  return mulDiv(a, b, c, 'half_up');
}

/**
 * Decimals hours may be stated with: two (LEDES's usual), more only where the minutes need
 * them, four at most (platforms read a number of units with up to four decimals).
 */
const HOURS_DECIMALS = [2, 3, 4] as const;

/**
 * Units (millionths) and unit cost that extend exactly to `extended`, else 1 x extended. Time
 * is stated in hours with the fewest decimals (two to four) that are the minutes exactly
 * (90 minutes: 1.50), else with four (50 minutes: 0.8333): the line's adjustment then holds
 * only that rounding (0.8333 x 300.00 = 249.99, so +0.01; half a ten-thousandth of an hour at
 * the rate, and a cent). At two decimals (0.83 x 300.00 = 249.00) it held +1.00, a write-up
 * the firm never made, and the hours stated were not the hours worked.
 */
function unitsFor(line: BillLineData, items: ReadonlyMap<string, ItemFacts>): { unitsMicro: number; unitCostMinor: number; extendedMinor: number } {
  if (line.kind === 'time' && line.minutes !== null && line.rateMinor !== null) {
    let stated = { unitsMicro: 0, extendedMinor: 0 };
    for (const decimals of HOURS_DECIMALS) {
      const scale = 10 ** decimals;
      const units = mulDivHalfUp(line.minutes, scale, 60);
      stated = { unitsMicro: units * 10 ** (6 - decimals), extendedMinor: mulDivHalfUp(line.rateMinor, units, scale) };
      if ((line.minutes * scale) % 60 === 0) break;
    }
    return { ...stated, unitCostMinor: line.rateMinor };
  }
  const item = line.itemId ? items.get(line.itemId) : undefined;
  if (item && item.quantityMilli > 0 && mulDivHalfUp(item.unitCostMinor, item.quantityMilli, 1000) === line.recordedMinor) {
    return { unitsMicro: item.quantityMilli * 1000, unitCostMinor: item.unitCostMinor, extendedMinor: line.recordedMinor };
  }
  const base = line.itemId ? line.recordedMinor : Math.max(0, line.amountMinor);
  return { unitsMicro: 1_000_000, unitCostMinor: base, extendedMinor: base };
}

/** Rates a tax code may have been charged at, roundest first: whole percents, halves, quarters, tenths, twentieths, then any basis point. */
const RATE_STEPS = [100, 50, 25, 10, 5, 1] as const;

/**
 * The rate (basis points) each tax code was charged at on this bill. The bill's lines carry
 * their tax code and tax, not the rate: the firm's rate for the code now is used when every
 * line's tax agrees with it, within the rounding the composer may do (half a unit a line, a
 * unit more where the bill's rounding is spread, more on a discount line that sums the tax of
 * the lines it discounts). When the firm has changed the code's rate since the bill was taxed,
 * the rate written must still be the one the tax was worked at (0.20 beside a tax of 20%, not
 * today's 0.175): the roundest rate every line agrees with. Null when no one rate does.
 */
function ratesAsTaxed(lines: readonly { code: string; amountMinor: number; taxMinor: number; slackMinor: number }[], firmRates: ReadonlyMap<string, number>): Map<string, number | null> {
  const byCode = new Map<string, { amount: bigint; tax: bigint; slack: bigint }[]>();
  for (const l of lines) {
    if (l.amountMinor === 0 || !firmRates.has(l.code)) continue; // a line of nothing agrees with any rate
    const list = byCode.get(l.code) ?? [];
    list.push({ amount: BigInt(l.amountMinor), tax: BigInt(l.taxMinor), slack: BigInt(l.slackMinor) });
    byCode.set(l.code, list);
  }
  const agrees = (list: readonly { amount: bigint; tax: bigint; slack: bigint }[], bp: number) => list.every((l) => {
    const diff = l.tax * 10_000n - l.amount * BigInt(bp);
    return (diff < 0n ? -diff : diff) <= l.slack * 10_000n;
  });
  const out = new Map<string, number | null>();
  for (const [code, list] of byCode) {
    const now = firmRates.get(code)!;
    if (agrees(list, now)) { out.set(code, now); continue; }
    // The rates the largest line allows (its tax, give or take its slack, over its amount), roundest first.
    const big = list.reduce((a, l) => ((l.amount < 0n ? -l.amount : l.amount) > (a.amount < 0n ? -a.amount : a.amount) ? l : a));
    const abs = big.amount < 0n ? -big.amount : big.amount;
    const tax = big.amount < 0n ? -big.tax : big.tax;
    const lo = Math.max(0, Number(((tax - big.slack) * 10_000n) / abs) - 1);
    const hi = Math.min(10_000, Number(((tax + big.slack) * 10_000n) / abs) + 1);
    let found: number | null = null;
    for (const step of RATE_STEPS) {
      for (let bp = Math.ceil(lo / step) * step; bp <= hi && found === null; bp += step) if (agrees(list, bp)) found = bp;
      if (found !== null) break;
    }
    out.set(code, found);
  }
  return out;
}

/** Build one bill's LEDES invoice, or every reason it cannot be sent. */
export function buildInvoice(facts: BillFacts, format: LedesFormat, settings: LedesSettings, codes: UtbmsCodes): BuildResult {
  const { bill, matter, client } = facts;
  const label = bill.number ?? bill.billId;
  const problems: Problem[] = [];
  const problem = (lineNo: number | null, field: Problem['field'], message: string, fix: string) => {
    problems.push({ billId: bill.billId, bill: label, lineNo, field, message, fix });
  };

  if (!EXPORTABLE.has(bill.status)) {
    problem(null, 'bill', bill.status === 'deleted' ? 'bill is void (deleted)' : `bill is ${bill.status}`,
      bill.status === 'deleted' ? 'a void bill is not e-billed: if the client\'s platform holds it, withdraw it there (or send a credit)' : 'approve the bill before e-billing it');
  }
  if (!bill.number) problem(null, 'INVOICE_NUMBER', 'bill has no number', 'approve the bill so it is numbered');
  else if (bill.number.length > MAX_ID_CHARS) problem(null, 'INVOICE_NUMBER', `"${bill.number}" is ${bill.number.length} characters; LEDES allows ${MAX_ID_CHARS}`, 'use a shorter bill numbering for this matter');
  if (bill.lines.length > MAX_LINES) problem(null, 'bill', `bill has ${bill.lines.length} lines; at most ${MAX_LINES} are exported`, 'split the bill');
  if (!isCurrencyCode(bill.currency)) problem(null, 'bill', `currency ${bill.currency} is not an ISO 4217 code`, 'correct the matter currency');
  if (!settings.lawFirmId) problem(null, 'LAW_FIRM_ID', 'the firm has no LEDES law firm id', 'enter the law firm id (tax id) on the e-billing settings page');
  if (format === 'LEDES1998BI') {
    if (!settings.lawFirmName) problem(null, 'LAW_FIRM_NAME', 'the firm has no name for LEDES', 'enter the firm name on the e-billing settings page');
    if (!/^[A-Z]{3}$/.test(settings.country)) problem(null, 'LAW_FIRM_COUNTRY', 'the firm has no ISO 3166 alpha-3 country', 'enter the firm country (e.g. USA) on the e-billing settings page');
  }

  const eb = matter?.ebilling ?? null;
  if (!matter) problem(null, 'LAW_FIRM_MATTER_ID', `matter ${bill.fileNumber} is not known to e-billing yet`, 'wait a moment for the matter to be copied, then try again');
  else if (!eb || !eb.enabled) problem(null, 'CLIENT_ID', `matter ${matter.fileNumber} is not e-billed`, `turn e-billing on in matter ${matter.fileNumber}'s billing options and enter the client's LEDES ids`);
  const clientLedesId = eb?.clientLedesId ?? '';
  const clientMatterId = eb?.matterLedesId ?? '';
  const lawFirmMatterId = matter?.fileNumber ?? bill.fileNumber;
  if (eb?.enabled) {
    if (!clientLedesId) problem(null, 'CLIENT_ID', `matter ${lawFirmMatterId} has no client LEDES id`, `enter the client's LEDES id in matter ${lawFirmMatterId}'s e-billing options`);
    if (!clientMatterId && settings.requireClientMatterId) problem(null, 'CLIENT_MATTER_ID', `matter ${lawFirmMatterId} has no client matter id`, `enter the client's matter id in matter ${lawFirmMatterId}'s e-billing options`);
  }
  const idChecks: [LedesColumn, string, string][] = [
    ['CLIENT_ID', clientLedesId, `shorten the client LEDES id in matter ${lawFirmMatterId}'s e-billing options`],
    ['LAW_FIRM_MATTER_ID', lawFirmMatterId, 'the matter number is too long for LEDES'],
    ['CLIENT_MATTER_ID', clientMatterId, `shorten the client matter id in matter ${lawFirmMatterId}'s e-billing options`],
  ];
  for (const [field, value, fix] of idChecks) {
    if (value.length > MAX_ID_CHARS) problem(null, field, `"${value}" is ${value.length} characters; LEDES allows ${MAX_ID_CHARS}`, fix);
    if (FORBIDDEN_CHARS.test(value)) problem(null, field, `"${cleanText(value)}" contains |, [, ], a line break, a tab or another control character`, fix);
  }
  // The law firm id is written as saved: one saved before the settings refused such characters
  // is refused here, by its field, rather than written into a file (or failing the file's own check).
  if (FORBIDDEN_CHARS.test(settings.lawFirmId)) {
    problem(null, 'LAW_FIRM_ID', `"${cleanText(settings.lawFirmId)}" contains |, [, ], a line break, a tab or another control character`, 'correct the law firm id on the e-billing settings page');
  }
  // LEDES refuses a value with spaces at either end (the validator would fail the file).
  const edgeChecks: [LedesColumn, string, string][] = [
    ['CLIENT_ID', clientLedesId, `remove the spaces around the client LEDES id in matter ${lawFirmMatterId}'s e-billing options`],
    ['LAW_FIRM_MATTER_ID', lawFirmMatterId, `remove the spaces around matter ${lawFirmMatterId.trim()}'s number`],
    ['CLIENT_MATTER_ID', clientMatterId, `remove the spaces around the client matter id in matter ${lawFirmMatterId}'s e-billing options`],
    ['LAW_FIRM_ID', settings.lawFirmId, 'remove the spaces around the law firm id on the e-billing settings page'],
  ];
  for (const [field, value, fix] of edgeChecks) {
    if (value !== '' && value !== value.trim()) problem(null, field, `${JSON.stringify(value)} has leading or trailing spaces`, fix);
  }

  const codeSet = eb?.codeSet ?? '';
  const tasks = codes.taskSets.get(codeSet);
  if (eb?.enabled && !tasks) problem(null, 'LINE_ITEM_TASK_CODE', `code set "${codeSet}" is not a UTBMS code set`, `choose a code set in matter ${lawFirmMatterId}'s e-billing options`);

  const exponent = isCurrencyCode(bill.currency) ? currencyExponent(bill.currency) : 2;
  if (format === 'LEDES1998B' && exponent !== 2) problem(null, 'INVOICE_TOTAL', `${bill.currency} amounts have ${exponent} decimals and LEDES 1998B states no currency`, 'export it as LEDES 1998BI, which states the currency');
  const lines: LedesLine[] = [];
  const feeTaxCodes = new Set<string>();
  for (const l of bill.lines) if (lineType(l.kind) === 'F' && l.amountMinor > 0 && l.taxCode && (facts.taxRates.get(l.taxCode) ?? 0) > 0) feeTaxCodes.add(l.taxCode);
  // The rates of the lines a discount is shared over (the composer's: fees and products charged), exempt ones too: a
  // discount over taxed and exempt fees carries tax on its taxed share only, which no single LINE_ITEM_TAX_RATE states.
  const discountedRates = new Set<number>();
  for (const l of bill.lines) if (DISCOUNTED_KINDS.has(l.kind) && !l.noCharge && l.amountMinor > 0) discountedRates.add(l.taxCode ? (facts.taxRates.get(l.taxCode) ?? -1) : 0);
  // The code a discount line without one is taxed at: the one code of the fees it discounts.
  const discountCode = feeTaxCodes.size === 1 && discountedRates.size === 1 ? [...feeTaxCodes][0]! : null;
  // 1998BI states each line's rate: the rate each code was charged at on this bill (see ratesAsTaxed).
  const linesPerCode = new Map<string, number>();
  for (const l of bill.lines) if (l.taxCode) linesPerCode.set(l.taxCode, (linesPerCode.get(l.taxCode) ?? 0) + 1);
  const taxedAt = format !== 'LEDES1998BI' ? new Map<string, number | null>() : ratesAsTaxed(bill.lines.flatMap((l) => {
    const code = l.taxCode ?? (l.kind === 'discount' && l.taxMinor !== 0 ? discountCode : null);
    if (code === null) return [];
    // A discount line's tax is the sum of the tax it saves on each line it discounts, each rounded.
    const slackMinor = l.kind === 'discount' ? 3 * Math.max(1, linesPerCode.get(code) ?? 0) + 2 : 2;
    return [{ code, amountMinor: l.amountMinor, taxMinor: l.taxMinor, slackMinor }];
  }), facts.taxRates);
  const rateReported = new Set<string>();

  const tkCache = new Map<string, { id: string; name: string; first: string; last: string; classification: string }>();
  for (const l of bill.lines) {
    if (l.noCharge && settings.noChargeLines === 'omit') continue;
    const type = lineType(l.kind);
    const at = l.lineNo;
    let taskCode = '';
    let activityCode = '';
    let expenseCode = '';
    let tkId = '';
    let tkName = '';
    let tkFirst = '';
    let tkLast = '';
    let classification = '';
    if (type === 'F') {
      const ownCodes = l.taskCode !== null || l.activityCode !== null;
      taskCode = l.taskCode ?? (ownCodes || l.itemId ? '' : settings.defaultTaskCode);
      activityCode = l.activityCode ?? (ownCodes || l.itemId ? '' : settings.defaultActivityCode);
      const fromItem = l.itemId !== null;
      // A billed item cannot be changed: it comes off the bill in the composer, is changed on the matter page, and goes back on.
      const fixCodes = fromItem ? `re-draft the bill (or revert it to draft), leave the ${l.kind === 'time' ? 'time entry' : 'fixed charge'} off it in the composer, add task and activity codes to it on the matter page, put it back on the bill, then approve it again`
        : 'set the default task and activity codes for lines without codes on the e-billing settings page';
      if (!taskCode) problem(at, 'LINE_ITEM_TASK_CODE', `"${cleanText(l.description, 60)}" has no UTBMS task code`, fixCodes);
      else if (tasks && !tasks.has(taskCode)) problem(at, 'LINE_ITEM_TASK_CODE', `${taskCode} is not a task code of the ${codeSet} code set`, fromItem ? `change the task code to one of the ${codeSet} codes` : `choose a ${codeSet} default task code on the e-billing settings page`);
      if (!activityCode) problem(at, 'LINE_ITEM_ACTIVITY_CODE', `"${cleanText(l.description, 60)}" has no UTBMS activity code`, fixCodes);
      else if (!codes.activities.has(activityCode)) problem(at, 'LINE_ITEM_ACTIVITY_CODE', `${activityCode} is not a UTBMS activity code`, 'use an activity code A101 to A111');
      const timekeeperId = l.timekeeperId ?? matter?.billingTimekeeperId ?? matter?.responsibleTimekeeperId ?? null;
      const tk = timekeeperId ? facts.timekeepers.get(timekeeperId) : undefined;
      if (!timekeeperId || !tk) {
        problem(at, 'TIMEKEEPER_ID', 'line has no known timekeeper', 'wait for the timekeeper to be copied to e-billing, or set the matter\'s billing timekeeper');
      } else {
        let t = tkCache.get(tk.timekeeperId);
        if (!t) {
          const { first, last } = splitName(tk.name);
          t = {
            id: cleanText(tk.initials), name: ledesName(tk.name), first, last,
            classification: tk.ledesClassification ? (settings.classificationStyle === 'words' ? CLASSIFICATION_WORDS[tk.ledesClassification] : tk.ledesClassification) : '',
          };
          tkCache.set(tk.timekeeperId, t);
        }
        ({ id: tkId, name: tkName, first: tkFirst, last: tkLast, classification } = t);
        if (!tk.ledesClassification) problem(at, 'TIMEKEEPER_CLASSIFICATION', `timekeeper ${tk.initials} has no LEDES classification`, `set ${tk.name}'s LEDES classification on the timekeepers page`);
        if (tkId.length > MAX_ID_CHARS) problem(at, 'TIMEKEEPER_ID', `"${tkId}" is longer than ${MAX_ID_CHARS} characters`, `shorten ${tk.name}'s initials`);
        // A name of nothing but |, [, ] and the like is empty once cleaned: a fee line needs it.
        if (tkName === '') problem(at, 'TIMEKEEPER_NAME', `timekeeper ${tk.initials}'s name "${tk.name.slice(0, 60)}" holds nothing LEDES can carry (|, [ and ] are removed)`, `give ${tk.initials} a name of letters on the timekeepers page`);
      }
    } else if (type === 'E') {
      expenseCode = l.expenseCode ?? (l.itemId ? '' : settings.defaultExpenseCode);
      if (!expenseCode) {
        problem(at, 'LINE_ITEM_EXPENSE_CODE', `"${cleanText(l.description, 60)}" has no UTBMS expense code`,
          l.itemId ? 're-draft the bill (or revert it to draft), leave the disbursement off it in the composer, add an expense code to it on the matter page, put it back on the bill, then approve it again' : 'set the default expense code for lines without codes on the e-billing settings page');
      } else if (!codes.expenses.has(expenseCode)) problem(at, 'LINE_ITEM_EXPENSE_CODE', `${expenseCode} is not a UTBMS expense code`, 'use an expense code E101 to E124');
    }

    let unitsMicro = 1_000_000;
    let unitCostMinor = 0;
    let extended = 0;
    if (type === 'F' || type === 'E') ({ unitsMicro, unitCostMinor, extendedMinor: extended } = unitsFor(l, facts.items));
    const adjustmentMinor = l.amountMinor - extended;
    const taxMinor = format === 'LEDES1998BI' ? l.taxMinor : 0;
    let taxRate: number | null = null;
    let taxType = '';
    if (format === 'LEDES1998BI') {
      let code = l.taxCode;
      if (l.kind === 'discount' && code === null && l.taxMinor !== 0) {
        if (discountCode !== null) code = discountCode;
        else problem(at, 'LINE_ITEM_TAX_RATE', `the discount's tax (${amountText(l.taxMinor, exponent)}) spans ${Math.max(feeTaxCodes.size, discountedRates.size)} tax rates; LEDES 1998BI carries one tax per line`,
          'show the discount within the lines (fee reductions not as a discount), or tax the discounted fees at one rate');
      }
      if (code !== null) {
        const now = facts.taxRates.get(code);
        const bp = taxedAt.has(code) ? taxedAt.get(code)! : now;
        if (now === undefined) {
          if (l.taxMinor !== 0) problem(at, 'LINE_ITEM_TAX_RATE', `tax code ${code} is not among the firm's tax rates known to e-billing`, 'save the firm billing settings again so e-billing receives the tax rates');
        } else if (bp === null || bp === undefined) {
          if (!rateReported.has(code)) {
            rateReported.add(code);
            problem(at, 'LINE_ITEM_TAX_RATE', `the bill's ${code} tax agrees with no one rate (the firm's ${code} rate is ${rateText(now)} now); LEDES 1998BI states each line's rate`,
              'check the tax on the bill\'s lines, re-draft it and approve it again');
          }
        } else { taxRate = bp; taxType = code; }
      }
      if (taxRate === null) taxRate = 0;
    }
    lines.push({
      lineNo: lines.length + 1, type, unitsMicro, unitCostMinor, adjustmentMinor, taxMinor, totalMinor: l.amountMinor + taxMinor,
      date: l.date, taskCode, expenseCode, activityCode, timekeeperId: tkId, timekeeperName: tkName, timekeeperFirst: tkFirst, timekeeperLast: tkLast,
      classification, description: cleanText(l.description), taxRateBasisPoints: taxRate, taxType, billLineNo: l.lineNo,
    });
  }
  if (lines.length === 0) problem(null, 'bill', 'bill has no lines to send', 'add work to the bill');

  let totalMinor = 0;
  let taxMinor = 0;
  for (const l of lines) { totalMinor += l.totalMinor; taxMinor += l.taxMinor; }
  if (totalMinor !== bill.totals.totalMinor) {
    const why = format === 'LEDES1998B' && bill.totals.taxMinor !== 0
      ? `the bill carries tax of ${amountText(bill.totals.taxMinor, exponent)}, which LEDES 1998B cannot carry`
      : `the line items add up to ${amountText(totalMinor, exponent)}, not the bill's total of ${amountText(bill.totals.totalMinor, exponent)}`;
    problem(null, 'INVOICE_TOTAL', why, format === 'LEDES1998B' && bill.totals.taxMinor !== 0 ? 'export it as LEDES 1998BI, which carries tax' : 'correct the bill and approve it again');
  }
  if (problems.length > 0) return { ok: false, problems };

  const dates = lines.map((l) => l.date).sort();
  const endDate = dates[dates.length - 1]! > bill.upTo ? dates[dates.length - 1]! : bill.upTo;
  return {
    ok: true,
    invoice: {
      billId: bill.billId, format, currency: bill.currency, exponent, invoiceDate: bill.invoiceDate, number: bill.number!, clientId: clientLedesId,
      lawFirmMatterId, clientMatterId, startDate: dates[0]!, endDate,
      // A function, not a string: `$&`, `$'` and `` $` `` in a matter's name are text, not replacement patterns.
      description: cleanText(settings.invoiceDescription.replaceAll('{matter}', () => matter!.name) || matter!.name),
      lawFirmId: settings.lawFirmId, matterName: cleanText(matter!.name), clientTaxId: cleanText(client?.taxId ?? ''),
      clientName: cleanText(client?.name ?? ''), clientAddress: cleanText(client?.address ?? ''), totalMinor, taxMinor, lines,
    },
  };
}

// ---------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------

/** Append one invoice's lines (each ending `[]` and a line break) to `out`. */
function writeInvoice(out: string[], inv: LedesInvoice, settings: LedesSettings): void {
  const x = inv.exponent;
  const head = `${ledesDate(inv.invoiceDate)}|${inv.number}|${inv.clientId}|${inv.lawFirmMatterId}|${amountText(inv.totalMinor, x)}|${ledesDate(inv.startDate)}|${ledesDate(inv.endDate)}|${inv.description}|`;
  const firm = inv.lawFirmId;
  const bi = inv.format === 'LEDES1998BI';
  let biInvoice = '';
  let biTail = '';
  if (bi) {
    const s = settings;
    biInvoice = `|${cleanText(s.accountType)}|${cleanText(s.lawFirmName)}|${cleanText(s.address1)}|${cleanText(s.address2)}|${cleanText(s.city)}|${cleanText(s.region)}|${cleanText(s.postcode)}|${s.country}|${inv.clientName}|${inv.clientAddress}|||||${s.clientCountry}|`;
    biTail = `|${amountText(inv.taxMinor, x)}|${inv.currency}[]\n`;
  }
  const netText = amountText(inv.totalMinor - inv.taxMinor, x);
  const taxText = amountText(inv.taxMinor, x);
  const dates = new Map<string, string>();
  const dateOf = (d: string): string => {
    let v = dates.get(d);
    if (v === undefined) { v = ledesDate(d); dates.set(d, v); }
    return v;
  };
  const rates = new Map<number, string>();
  const rateOf = (bp: number): string => {
    let v = rates.get(bp);
    if (v === undefined) { v = rateText(bp); rates.set(bp, v); }
    return v;
  };
  const biHead = `||${inv.clientTaxId}|${inv.matterName}|${taxText}|${netText}|${inv.currency}|`;
  const parts: string[] = new Array<string>(inv.lines.length);
  for (let i = 0; i < inv.lines.length; i++) {
    const l = inv.lines[i]!;
    const common = `${head}${l.lineNo}|${l.type}|${unitsText(l.unitsMicro)}|${amountText(l.adjustmentMinor, x)}|${amountText(l.totalMinor, x)}|${dateOf(l.date)}|${l.taskCode}|${l.expenseCode}|${l.activityCode}|${l.timekeeperId}|${l.description}|${firm}|${amountText(l.unitCostMinor, x)}|${l.timekeeperName}|${l.classification}|${inv.clientMatterId}`;
    parts[i] = bi
      ? `${common}${biHead}${l.timekeeperLast}|${l.timekeeperFirst}${biInvoice}${rateOf(l.taxRateBasisPoints ?? 0)}|${amountText(l.taxMinor, x)}|${l.taxType}${biTail}`
      : `${common}[]\n`;
  }
  out.push(parts.join(''));
}

/** A whole file: the format line, the column line, then every invoice's line items. */
export function writeLedes(format: LedesFormat, invoices: readonly LedesInvoice[], settings: LedesSettings): string {
  const out: string[] = [`${FIRST_LINE[format]}\n`, `${COLUMN_LINE[format]}\n`];
  for (const inv of invoices) {
    if (inv.format !== format) throw new Error(`invoice ${inv.number} was built as ${inv.format}, not ${format}`);
    writeInvoice(out, inv, settings);
  }
  return out.join('');
}

export const isLedesFormat = (v: unknown): v is LedesFormat => typeof v === 'string' && (LEDES_FORMATS as readonly string[]).includes(v);
export const columnCount = (format: LedesFormat): number => COLUMNS[format].length;

/** A file name for an export: the bill number for one invoice, else the date and count. */
export function exportFileName(format: LedesFormat, numbers: readonly string[], date: string): string {
  const tag = format === 'LEDES1998B' ? 'LEDES1998B' : 'LEDES98BI';
  if (numbers.length === 1) return `${tag}_${numbers[0]!.replace(/[^A-Za-z0-9.-]/g, '_')}.txt`;
  return `${tag}_${ledesDate(date)}_${numbers.length}_invoices.txt`;
}

/** Problems as lines a person reads: "Bill 12.8.3, line 4, LINE_ITEM_TASK_CODE: ... Fix: ...". */
export function describeProblem(p: Problem): string {
  return `Bill ${p.bill}${p.lineNo !== null ? `, line ${p.lineNo}` : ''}, ${p.field}: ${p.message}. Fix: ${p.fix}.`;
}
