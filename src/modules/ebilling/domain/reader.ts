/**
 * Read and validate a LEDES 1998B or 1998BI V2 file: every violation by file line and
 * field, and the invoices it holds with their totals (so an export can be read back and
 * compared). Pure; the same rules the writer follows (format.ts).
 */
import { currencyExponent, divideRound, isCurrencyCode, isKnownCurrency } from '../../../shared/money.ts';
import {
  amountText, COLUMN_LINE, COLUMNS, decimalToMinor, extendedMinor, FIRST_LINE, isLedesDate, LIMITED_IDS, LINE_TYPES, MAX_ID_CHARS, parseDecimal,
} from './format.ts';
import type { Decimal, LedesColumn, LedesFormat, LineType } from './format.ts';
import { isAnyTaskCode } from './utbms.ts';
import type { UtbmsCodes } from './utbms.ts';

export interface Violation {
  /** 1-based line of the file. */
  line: number;
  field: LedesColumn | 'file' | 'header' | 'columns' | 'line';
  message: string;
}

export interface ReadLine {
  fileLine: number;
  lineNo: number;
  type: LineType | string;
  unitsText: string;
  unitCostText: string;
  adjustmentMinor: number;
  taxMinor: number;
  totalMinor: number;
  date: string;
  taskCode: string;
  expenseCode: string;
  activityCode: string;
  timekeeperId: string;
  description: string;
}

export interface ReadInvoice {
  number: string;
  clientId: string;
  lawFirmMatterId: string;
  clientMatterId: string;
  invoiceDate: string;
  currency: string | null;
  /** INVOICE_TOTAL as the file states it. */
  totalMinor: number;
  /** The sum of its LINE_ITEM_TOTAL values. */
  linesTotalMinor: number;
  /** INVOICE_TAX_TOTAL (1998BI), else 0. */
  taxMinor: number;
  /** INVOICE_NET_TOTAL (1998BI), else the total. */
  netMinor: number;
  firstLine: number;
  lines: ReadLine[];
}

export interface ReadResult {
  format: LedesFormat | null;
  valid: boolean;
  invoices: ReadInvoice[];
  violations: Violation[];
  /** Violations beyond the report limit that were counted but not listed. */
  moreViolations: number;
  lineCount: number;
}

export interface ReadOptions {
  /** Check task/activity/expense codes against these (codes of any task code set). */
  codes?: UtbmsCodes;
  requireBillingPeriod?: boolean;
  requireClientMatterId?: boolean;
  /** Stop listing after this many (default 5,000). */
  maxViolations?: number;
}

const INVOICE_COLUMNS: readonly LedesColumn[] = [
  'INVOICE_DATE', 'INVOICE_NUMBER', 'CLIENT_ID', 'LAW_FIRM_MATTER_ID', 'INVOICE_TOTAL', 'BILLING_START_DATE', 'BILLING_END_DATE',
  'INVOICE_DESCRIPTION', 'LAW_FIRM_ID', 'CLIENT_MATTER_ID',
];
const INVOICE_COLUMNS_BI: readonly LedesColumn[] = [
  ...INVOICE_COLUMNS, 'PO_NUMBER', 'CLIENT_TAX_ID', 'MATTER_NAME', 'INVOICE_TAX_TOTAL', 'INVOICE_NET_TOTAL', 'INVOICE_CURRENCY', 'LAW_FIRM_NAME',
  'LAW_FIRM_ADDRESS_1', 'LAW_FIRM_ADDRESS_2', 'LAW_FIRM_CITY', 'LAW_FIRM_STATEorREGION', 'LAW_FIRM_POSTCODE', 'LAW_FIRM_COUNTRY', 'CLIENT_NAME',
  'CLIENT_ADDRESS_1', 'CLIENT_ADDRESS_2', 'CLIENT_CITY', 'CLIENT_STATEorREGION', 'CLIENT_POSTCODE', 'CLIENT_COUNTRY', 'INVOICE_REPORTED_TAX_TOTAL',
  'INVOICE_TAX_CURRENCY',
];
const REQUIRED: readonly LedesColumn[] = [
  'INVOICE_DATE', 'INVOICE_NUMBER', 'CLIENT_ID', 'LAW_FIRM_MATTER_ID', 'INVOICE_TOTAL', 'LINE_ITEM_NUMBER', 'EXP/FEE/INV_ADJ_TYPE',
  'LINE_ITEM_NUMBER_OF_UNITS', 'LINE_ITEM_ADJUSTMENT_AMOUNT', 'LINE_ITEM_TOTAL', 'LINE_ITEM_DATE', 'LAW_FIRM_ID', 'LINE_ITEM_UNIT_COST',
];
const REQUIRED_BI: readonly LedesColumn[] = [
  ...REQUIRED, 'INVOICE_TAX_TOTAL', 'INVOICE_NET_TOTAL', 'INVOICE_CURRENCY', 'ACCOUNT_TYPE', 'LAW_FIRM_COUNTRY', 'LINE_ITEM_TAX_RATE', 'LINE_ITEM_TAX_TOTAL',
];
// Money in the currency's decimals. LINE_ITEM_UNIT_COST is not among them: the spec asks only
// for digits, one "." and an optional leading "-" (a rate of 0.125 is valid); the line total
// (units x unit cost, rounded once) carries the currency's decimals.
const AMOUNT_COLUMNS: readonly LedesColumn[] = ['INVOICE_TOTAL', 'LINE_ITEM_ADJUSTMENT_AMOUNT', 'LINE_ITEM_TOTAL'];
const AMOUNT_COLUMNS_BI: readonly LedesColumn[] = [...AMOUNT_COLUMNS, 'INVOICE_TAX_TOTAL', 'INVOICE_NET_TOTAL', 'LINE_ITEM_TAX_TOTAL', 'INVOICE_REPORTED_TAX_TOTAL'];
/** Line breaks other than the "\n" that ends a line; the spec has them removed from values. */
// eslint-disable-next-line no-control-regex
const LINE_BREAK = /[\r\u000b\u000c\u0085\u2028\u2029]/;
const COUNTRY_COLUMNS: readonly LedesColumn[] = ['LAW_FIRM_COUNTRY', 'CLIENT_COUNTRY'];
const MAX_FILE_CHARS = 200_000_000;

/** Read a LEDES file; never throws on bad input, it reports it. */
/** Decimals a number of units may have. */
const MAX_UNITS_DECIMALS = 4;
/** How far (minor units) a fee or expense line's tax may be from its rate x its amount: the composer's rounding, spread over the bill. */
const TAX_SLACK_MINOR = 2;

export function readLedes(text: string, opts: ReadOptions = {}): ReadResult {
  const max = opts.maxViolations ?? 5_000;
  const violations: Violation[] = [];
  let more = 0;
  const violate = (line: number, field: Violation['field'], message: string) => {
    if (violations.length < max) violations.push({ line, field, message }); else more++;
  };
  const result = (format: LedesFormat | null, invoices: ReadInvoice[], lineCount: number): ReadResult =>
    ({ format, valid: violations.length === 0 && more === 0, invoices, violations, moreViolations: more, lineCount });

  if (text.length > MAX_FILE_CHARS) { violate(1, 'file', `file is larger than ${MAX_FILE_CHARS} characters`); return result(null, [], 0); }
  const body = text.startsWith('\ufeff') ? text.slice(1) : text;
  if (body !== text) violate(1, 'file', 'file starts with a byte order mark; platforms expect plain text');
  const raw = body.split('\n');
  const endsWithBreak = raw[raw.length - 1] === '';
  if (endsWithBreak) raw.pop();
  else if (raw.length > 0 && raw[0] !== '') violate(raw.length, 'line', 'the last line must end with a line break');
  const lines = raw.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (lines.length === 0) { violate(1, 'file', 'file is empty'); return result(null, [], 0); }

  let format: LedesFormat | null = lines[0] === FIRST_LINE.LEDES1998B ? 'LEDES1998B' : lines[0] === FIRST_LINE.LEDES1998BI ? 'LEDES1998BI' : null;
  if (!format) {
    violate(1, 'header', `line 1 must be exactly ${FIRST_LINE.LEDES1998B} or ${FIRST_LINE.LEDES1998BI}, not "${lines[0]!.slice(0, 40)}"`);
    format = lines[1] === COLUMN_LINE.LEDES1998BI ? 'LEDES1998BI' : lines[1] === COLUMN_LINE.LEDES1998B ? 'LEDES1998B' : null;
    if (!format) { violate(2, 'columns', 'line 2 is not the column line of LEDES 1998B or 1998BI V2'); return result(null, [], lines.length); }
  }
  const columns = COLUMNS[format];
  const bi = format === 'LEDES1998BI';
  if (lines.length < 2) { violate(2, 'columns', 'the column line is missing'); return result(format, [], lines.length); }
  if (lines[1] !== COLUMN_LINE[format]) {
    const got = (lines[1]!.endsWith('[]') ? lines[1]!.slice(0, -2) : lines[1]!).split('|');
    const at = columns.findIndex((c, i) => got[i] !== c);
    violate(2, 'columns', at < 0 ? `line 2 must be exactly the ${columns.length} column names ending []`
      : `column ${at + 1} must be ${columns[at]}${got[at] !== undefined ? `, not "${got[at]!.slice(0, 40)}"` : ' (missing)'}`);
  }
  if (lines.length === 2) violate(2, 'file', 'file holds no line items');

  const index = new Map<LedesColumn, number>(columns.map((c, i) => [c, i]));
  const invoiceColumns = bi ? INVOICE_COLUMNS_BI : INVOICE_COLUMNS;
  const required = bi ? REQUIRED_BI : REQUIRED;
  const amountColumns = bi ? AMOUNT_COLUMNS_BI : AMOUNT_COLUMNS;
  const invoices: ReadInvoice[] = [];
  const byNumber = new Map<string, ReadInvoice>();
  let current: { inv: ReadInvoice; first: string[]; lineNos: Set<number> } | null = null;
  /**
   * 1998BI lines' tax against their stated rate, checked per invoice once its lines are read:
   * how far each line's tax is from rate x its amount before tax (minor units). A fee or
   * expense line may be off by the composer's rounding (TAX_SLACK_MINOR); an invoice-level
   * adjustment (a discount) sums the tax changes of the lines it discounts, each rounded, so
   * it may be off by that much a line of its tax type.
   */
  const taxChecks: { n: number; invoice: ReadInvoice; type: string; taxType: string; offMinor: bigint; message: string }[] = [];

  for (let i = 2; i < lines.length; i++) {
    const n = i + 1;
    const line = lines[i]!;
    if (line === '') { violate(n, 'line', 'blank line'); continue; }
    if (!line.endsWith('[]')) { violate(n, 'line', 'line must end with []'); continue; }
    const f = line.slice(0, -2).split('|');
    if (f.length !== columns.length) { violate(n, 'line', `has ${f.length} fields; ${format} has ${columns.length}`); continue; }
    const get = (c: LedesColumn): string => f[index.get(c)!]!;
    for (const c of columns) {
      const v = get(c);
      if (v.includes('[') || v.includes(']')) violate(n, c, 'must not contain [ or ]');
      if (LINE_BREAK.test(v)) violate(n, c, 'must not contain a line break (CR, U+0085, U+2028, U+2029, VT or FF)');
      if (v !== v.trim()) violate(n, c, 'has leading or trailing spaces');
    }
    for (const c of required) if (get(c) === '') violate(n, c, 'is required');
    for (const c of LIMITED_IDS) if (get(c).length > MAX_ID_CHARS) violate(n, c, `must be at most ${MAX_ID_CHARS} characters (has ${get(c).length})`);
    if (opts.requireClientMatterId && get('CLIENT_MATTER_ID') === '') violate(n, 'CLIENT_MATTER_ID', 'is required by this platform');
    for (const c of ['INVOICE_DATE', 'LINE_ITEM_DATE', 'BILLING_START_DATE', 'BILLING_END_DATE'] as const) {
      const v = get(c);
      if (v !== '' && !isLedesDate(v)) violate(n, c, `must be a date YYYYMMDD, not "${v.slice(0, 20)}"`);
    }
    const start = get('BILLING_START_DATE');
    const end = get('BILLING_END_DATE');
    if (opts.requireBillingPeriod) {
      if (start === '') violate(n, 'BILLING_START_DATE', 'is required by this platform');
      if (end === '') violate(n, 'BILLING_END_DATE', 'is required by this platform');
    }
    if (isLedesDate(start) && isLedesDate(end)) {
      if (start > end) violate(n, 'BILLING_END_DATE', 'is before BILLING_START_DATE');
      const d = get('LINE_ITEM_DATE');
      if (isLedesDate(d) && (d < start || d > end)) violate(n, 'LINE_ITEM_DATE', `${d} is outside the billing period ${start}-${end}`);
    }

    // Amounts, in the invoice currency's minor units (1998B: two decimals).
    const currency = bi ? get('INVOICE_CURRENCY') : null;
    if (bi && currency !== '' && !isKnownCurrency(currency!)) violate(n, 'INVOICE_CURRENCY', `"${currency!.slice(0, 10)}" is not an ISO 4217 currency code`);
    const exponent = currency && isCurrencyCode(currency) ? currencyExponent(currency) : 2;
    const minor = new Map<LedesColumn, number>();
    for (const c of amountColumns) {
      const v = get(c);
      if (v === '') continue;
      const d = parseDecimal(v);
      if (!d) { violate(n, c, `must be a number (digits, one ".", optional leading "-"), not "${v.slice(0, 20)}"`); continue; }
      const m = decimalToMinor(d, exponent);
      if (m === null) { violate(n, c, `has more than ${exponent} decimals`); continue; }
      if (m > 10n ** 15n || m < -(10n ** 15n)) { violate(n, c, 'is too large'); continue; }
      minor.set(c, Number(m));
    }
    const units = decimalOf(get('LINE_ITEM_NUMBER_OF_UNITS'), n, 'LINE_ITEM_NUMBER_OF_UNITS', violate);
    const cost = decimalOf(get('LINE_ITEM_UNIT_COST'), n, 'LINE_ITEM_UNIT_COST', violate);
    if (cost && (cost.value > 10n ** BigInt(15 - exponent + cost.scale) || cost.value < -(10n ** BigInt(15 - exponent + cost.scale)))) violate(n, 'LINE_ITEM_UNIT_COST', 'is too large');
    let taxRate: Decimal | null = null;
    if (bi) {
      taxRate = decimalOf(get('LINE_ITEM_TAX_RATE'), n, 'LINE_ITEM_TAX_RATE', violate);
      if (taxRate && (taxRate.value < 0n || taxRate.value > 10n ** BigInt(taxRate.scale))) violate(n, 'LINE_ITEM_TAX_RATE', 'must be a decimal between 0 and 1 (0.20 for 20%)');
      const acct = get('ACCOUNT_TYPE');
      if (acct !== '' && acct !== 'O' && acct !== 'T') violate(n, 'ACCOUNT_TYPE', 'must be O (office) or T (trust)');
      for (const c of COUNTRY_COLUMNS) if (get(c) !== '' && !/^[A-Z]{3}$/.test(get(c))) violate(n, c, 'must be an ISO 3166 alpha-3 country code');
      const tc = get('INVOICE_TAX_CURRENCY');
      if (tc !== '' && !isKnownCurrency(tc)) violate(n, 'INVOICE_TAX_CURRENCY', `"${tc.slice(0, 10)}" is not an ISO 4217 currency code`);
    }

    const lineNoText = get('LINE_ITEM_NUMBER');
    const lineNo = /^[1-9]\d{0,8}$/.test(lineNoText) ? Number(lineNoText) : 0;
    if (lineNoText !== '' && lineNo === 0) violate(n, 'LINE_ITEM_NUMBER', 'must be a whole number from 1');
    const type = get('EXP/FEE/INV_ADJ_TYPE');
    if (type !== '' && !(LINE_TYPES as readonly string[]).includes(type)) violate(n, 'EXP/FEE/INV_ADJ_TYPE', `must be F, E, IF or IE, not "${type.slice(0, 10)}"`);
    checkCodes(type, get, n, violate, opts.codes);
    // A line's work is counted up; a write-down or discount is its (negative) adjustment.
    if ((type === 'F' || type === 'E') && units && units.value < 0n) violate(n, 'LINE_ITEM_NUMBER_OF_UNITS', 'must not be negative: a write-down is a negative LINE_ITEM_ADJUSTMENT_AMOUNT');
    if (units && units.scale > MAX_UNITS_DECIMALS) violate(n, 'LINE_ITEM_NUMBER_OF_UNITS', `has more than ${MAX_UNITS_DECIMALS} decimals (e-billing platforms read at most ${MAX_UNITS_DECIMALS})`);

    const adj = minor.get('LINE_ITEM_ADJUSTMENT_AMOUNT');
    const total = minor.get('LINE_ITEM_TOTAL');
    const tax = bi ? minor.get('LINE_ITEM_TAX_TOTAL') : 0;
    if (units && cost && adj !== undefined && total !== undefined && tax !== undefined) {
      const expected = extendedMinor(units, cost, exponent) + BigInt(adj) + BigInt(tax);
      if (expected !== BigInt(total)) {
        violate(n, 'LINE_ITEM_TOTAL', `${get('LINE_ITEM_TOTAL')} is not units x unit cost + adjustment${bi ? ' + tax' : ''} (${get('LINE_ITEM_NUMBER_OF_UNITS')} x ${get('LINE_ITEM_UNIT_COST')} + ${get('LINE_ITEM_ADJUSTMENT_AMOUNT')}${bi ? ` + ${get('LINE_ITEM_TAX_TOTAL')}` : ''})`);
      }
    }
    let taxCheck: { offMinor: bigint; message: string } | null = null;
    if (bi && taxRate && taxRate.value >= 0n && total !== undefined && tax !== undefined) {
      const before = BigInt(total - tax);
      const expected = divideRound(before * taxRate.value, 10n ** BigInt(taxRate.scale), 'half_up');
      const off = BigInt(tax) - expected;
      taxCheck = {
        offMinor: off < 0n ? -off : off,
        message: `${get('LINE_ITEM_TAX_TOTAL')} is not LINE_ITEM_TAX_RATE x the line's amount before tax (${get('LINE_ITEM_TAX_RATE')} x ${amountText(Number(before), exponent)} = ${amountText(Number(expected), exponent)})`,
      };
    }
    if ((type === 'IF' || type === 'IE') && units && units.value !== 10n ** BigInt(units.scale)) violate(n, 'LINE_ITEM_NUMBER_OF_UNITS', 'an invoice-level adjustment has units 1');
    if ((type === 'IF' || type === 'IE') && adj !== undefined && total !== undefined && tax !== undefined && total !== adj + tax) {
      violate(n, 'LINE_ITEM_TOTAL', `an invoice-level adjustment's total must equal its adjustment${bi ? ' plus tax' : ''}`);
    }

    // Group into invoices: lines of one invoice are together and agree on the invoice fields.
    const number = get('INVOICE_NUMBER');
    if (!current || current.inv.number !== number) {
      if (byNumber.has(number)) violate(n, 'INVOICE_NUMBER', `lines of invoice ${number} must be together (it appeared before line ${n})`);
      const inv: ReadInvoice = {
        number, clientId: get('CLIENT_ID'), lawFirmMatterId: get('LAW_FIRM_MATTER_ID'), clientMatterId: get('CLIENT_MATTER_ID'),
        invoiceDate: get('INVOICE_DATE'), currency, totalMinor: minor.get('INVOICE_TOTAL') ?? 0, linesTotalMinor: 0,
        taxMinor: bi ? minor.get('INVOICE_TAX_TOTAL') ?? 0 : 0, netMinor: bi ? minor.get('INVOICE_NET_TOTAL') ?? 0 : minor.get('INVOICE_TOTAL') ?? 0,
        firstLine: n, lines: [],
      };
      current = { inv, first: f, lineNos: new Set() };
      if (!byNumber.has(number)) { byNumber.set(number, inv); invoices.push(inv); }
    } else {
      for (const c of invoiceColumns) {
        const k = index.get(c)!;
        if (f[k] !== current.first[k]) violate(n, c, `differs from the invoice's first line (${current.inv.firstLine}): "${f[k]!.slice(0, 30)}" vs "${current.first[k]!.slice(0, 30)}"`);
      }
    }
    if (lineNo > 0) {
      if (current.lineNos.has(lineNo)) violate(n, 'LINE_ITEM_NUMBER', `${lineNo} is repeated in invoice ${number}`);
      current.lineNos.add(lineNo);
    }
    current.inv.linesTotalMinor += total ?? 0;
    current.inv.lines.push({
      fileLine: n, lineNo, type, unitsText: get('LINE_ITEM_NUMBER_OF_UNITS'), unitCostText: get('LINE_ITEM_UNIT_COST'), adjustmentMinor: adj ?? 0,
      taxMinor: tax ?? 0, totalMinor: total ?? 0, date: get('LINE_ITEM_DATE'), taskCode: get('LINE_ITEM_TASK_CODE'),
      expenseCode: get('LINE_ITEM_EXPENSE_CODE'), activityCode: get('LINE_ITEM_ACTIVITY_CODE'), timekeeperId: get('TIMEKEEPER_ID'),
      description: get('LINE_ITEM_DESCRIPTION'),
    });
    if (taxCheck) taxChecks.push({ n, invoice: current.inv, type, taxType: get('LINE_ITEM_TAX_TYPE'), ...taxCheck });
  }

  // Per invoice, in one pass each (a file may hold hundreds of thousands of lines): its checks, and its fee and expense lines per tax type.
  const taxChecksOf = new Map<ReadInvoice, typeof taxChecks>();
  for (const t of taxChecks) {
    const list = taxChecksOf.get(t.invoice);
    if (list) list.push(t); else taxChecksOf.set(t.invoice, [t]);
  }
  for (const inv of invoices) {
    const sumTax = inv.lines.reduce((a, l) => a + l.taxMinor, 0);
    const checks = taxChecksOf.get(inv) ?? [];
    const linesOfType = new Map<string, number>();
    for (const x of checks) if (x.type === 'F' || x.type === 'E') linesOfType.set(x.taxType, (linesOfType.get(x.taxType) ?? 0) + 1);
    for (const t of checks) {
      const adjustment = t.type === 'IF' || t.type === 'IE';
      const slack = adjustment ? BigInt(3 * Math.max(1, linesOfType.get(t.taxType) ?? 0) + TAX_SLACK_MINOR) : BigInt(TAX_SLACK_MINOR);
      if (t.offMinor > slack) violate(t.n, 'LINE_ITEM_TAX_TOTAL', t.message);
    }
    // Amounts as the file writes them (the invoice currency's decimals), not in minor units.
    const amount = (minor: number) => amountText(minor, inv.currency && isCurrencyCode(inv.currency) ? currencyExponent(inv.currency) : 2);
    if (inv.totalMinor !== inv.linesTotalMinor) violate(inv.firstLine, 'INVOICE_TOTAL', `invoice ${inv.number}: INVOICE_TOTAL ${amount(inv.totalMinor)} is not the sum of its line totals, ${amount(inv.linesTotalMinor)}`);
    if (bi) {
      if (inv.taxMinor !== sumTax) violate(inv.firstLine, 'INVOICE_TAX_TOTAL', `invoice ${inv.number}: INVOICE_TAX_TOTAL ${amount(inv.taxMinor)} is not the sum of line tax, ${amount(sumTax)}`);
      if (inv.netMinor !== inv.linesTotalMinor - inv.taxMinor) violate(inv.firstLine, 'INVOICE_NET_TOTAL', `invoice ${inv.number}: INVOICE_NET_TOTAL must be the line totals less tax, ${amount(inv.linesTotalMinor - inv.taxMinor)}`);
    }
  }
  if (bi) {
    // Reported tax in the invoice currency equals the tax total.
    for (let i = 2; i < lines.length; i++) {
      const f = lines[i]!.endsWith('[]') ? lines[i]!.slice(0, -2).split('|') : null;
      if (!f || f.length !== columns.length) continue;
      const reported = f[index.get('INVOICE_REPORTED_TAX_TOTAL')!]!;
      const cur = f[index.get('INVOICE_CURRENCY')!]!;
      const taxCur = f[index.get('INVOICE_TAX_CURRENCY')!]!;
      // Compared as amounts: "174.6" is the same tax as "174.60" (unparseable values are reported above).
      const exp = isCurrencyCode(cur) ? currencyExponent(cur) : 2;
      const asMinor = (v: string): bigint | null => { const d = parseDecimal(v); return d ? decimalToMinor(d, exp) : null; };
      const reportedMinor = asMinor(reported);
      const taxTotalMinor = asMinor(f[index.get('INVOICE_TAX_TOTAL')!]!);
      if (reported !== '' && (taxCur === '' || taxCur === cur) && reportedMinor !== null && taxTotalMinor !== null && reportedMinor !== taxTotalMinor) {
        violate(i + 1, 'INVOICE_REPORTED_TAX_TOTAL', 'must equal INVOICE_TAX_TOTAL when the tax currency is the invoice currency');
      }
    }
  }
  return result(format, invoices, lines.length);
}

function decimalOf(v: string, n: number, c: LedesColumn, violate: (line: number, field: LedesColumn, m: string) => void): Decimal | null {
  if (v === '') return null;
  const d = parseDecimal(v);
  if (!d) violate(n, c, `must be a number (digits, one ".", optional leading "-"), not "${v.slice(0, 20)}"`);
  return d;
}

/** TIMEKEEPER_CLASSIFICATION as LEDES 1998B words or UTBMS codes (the exporter writes either, by the firm's settings). */
const TIMEKEEPER_CLASSIFICATIONS: ReadonlySet<string> = new Set(['PARTNR', 'ASSOC', 'OFCNSL', 'PARLEG', 'LGLAST', 'OTHER', 'PT', 'AS', 'OC', 'PL', 'LA', 'OT']);

function checkCodes(type: string, get: (c: LedesColumn) => string, n: number, violate: (line: number, field: LedesColumn, m: string) => void, codes: UtbmsCodes | undefined): void {
  const task = get('LINE_ITEM_TASK_CODE');
  const activity = get('LINE_ITEM_ACTIVITY_CODE');
  const expense = get('LINE_ITEM_EXPENSE_CODE');
  if (type === 'F') {
    if (task === '') violate(n, 'LINE_ITEM_TASK_CODE', 'a fee line needs a UTBMS task code');
    else if (codes && !isAnyTaskCode(codes, task)) violate(n, 'LINE_ITEM_TASK_CODE', `${task} is not a UTBMS task code`);
    if (activity === '') violate(n, 'LINE_ITEM_ACTIVITY_CODE', 'a fee line needs a UTBMS activity code');
    else if (codes && !codes.activities.has(activity)) violate(n, 'LINE_ITEM_ACTIVITY_CODE', `${activity} is not a UTBMS activity code`);
    if (expense !== '') violate(n, 'LINE_ITEM_EXPENSE_CODE', 'a fee line carries no expense code');
    for (const c of ['TIMEKEEPER_ID', 'TIMEKEEPER_NAME', 'TIMEKEEPER_CLASSIFICATION'] as const) if (get(c) === '') violate(n, c, 'a fee line needs its timekeeper');
    const cls = get('TIMEKEEPER_CLASSIFICATION');
    if (cls !== '' && !TIMEKEEPER_CLASSIFICATIONS.has(cls)) violate(n, 'TIMEKEEPER_CLASSIFICATION', `"${cls.slice(0, 10)}" is not a timekeeper classification (${[...TIMEKEEPER_CLASSIFICATIONS].join(', ')})`);
  } else if (type === 'E') {
    if (expense === '') violate(n, 'LINE_ITEM_EXPENSE_CODE', 'an expense line needs a UTBMS expense code');
    else if (codes && !codes.expenses.has(expense)) violate(n, 'LINE_ITEM_EXPENSE_CODE', `${expense} is not a UTBMS expense code`);
    // An expense may carry the task it was for; a code given must be one.
    if (task !== '' && codes && !isAnyTaskCode(codes, task)) violate(n, 'LINE_ITEM_TASK_CODE', `${task} is not a UTBMS task code`);
    if (activity !== '' && codes && !codes.activities.has(activity)) violate(n, 'LINE_ITEM_ACTIVITY_CODE', `${activity} is not a UTBMS activity code`);
  } else if (type === 'IF' || type === 'IE') {
    for (const c of ['LINE_ITEM_TASK_CODE', 'LINE_ITEM_ACTIVITY_CODE', 'TIMEKEEPER_ID', 'TIMEKEEPER_NAME', 'TIMEKEEPER_CLASSIFICATION'] as const) {
      if (get(c) !== '') violate(n, c, 'must be empty on an invoice-level adjustment');
    }
  }
}
