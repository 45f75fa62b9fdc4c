/**
 * LEDES plain-text formats (../shared/ref/LEDES.md): headers, columns, and the number,
 * date and text rules both the writer and the reader follow. Pure: no I/O.
 */
import { assert, assertSafeInteger } from '../../../shared/assert.ts';
import { divideRound, formatMoney, isCurrencyCode } from '../../../shared/money.ts';

export const LEDES_FORMATS = ['LEDES1998B', 'LEDES1998BI'] as const;
export type LedesFormat = (typeof LEDES_FORMATS)[number];

export const FORMAT_LABELS: Readonly<Record<LedesFormat, string>> = { LEDES1998B: 'LEDES 1998B', LEDES1998BI: 'LEDES 1998BI V2 (international, with tax)' };

/** Line 1 of each format, exactly. */
export const FIRST_LINE: Readonly<Record<LedesFormat, string>> = { LEDES1998B: 'LEDES1998B[]', LEDES1998BI: 'LEDES98BI V2[]' };

export const COLUMNS_1998B = [
  'INVOICE_DATE', 'INVOICE_NUMBER', 'CLIENT_ID', 'LAW_FIRM_MATTER_ID', 'INVOICE_TOTAL', 'BILLING_START_DATE', 'BILLING_END_DATE',
  'INVOICE_DESCRIPTION', 'LINE_ITEM_NUMBER', 'EXP/FEE/INV_ADJ_TYPE', 'LINE_ITEM_NUMBER_OF_UNITS', 'LINE_ITEM_ADJUSTMENT_AMOUNT',
  'LINE_ITEM_TOTAL', 'LINE_ITEM_DATE', 'LINE_ITEM_TASK_CODE', 'LINE_ITEM_EXPENSE_CODE', 'LINE_ITEM_ACTIVITY_CODE', 'TIMEKEEPER_ID',
  'LINE_ITEM_DESCRIPTION', 'LAW_FIRM_ID', 'LINE_ITEM_UNIT_COST', 'TIMEKEEPER_NAME', 'TIMEKEEPER_CLASSIFICATION', 'CLIENT_MATTER_ID',
] as const;

export const COLUMNS_1998BI_EXTRA = [
  'PO_NUMBER', 'CLIENT_TAX_ID', 'MATTER_NAME', 'INVOICE_TAX_TOTAL', 'INVOICE_NET_TOTAL', 'INVOICE_CURRENCY', 'TIMEKEEPER_LAST_NAME',
  'TIMEKEEPER_FIRST_NAME', 'ACCOUNT_TYPE', 'LAW_FIRM_NAME', 'LAW_FIRM_ADDRESS_1', 'LAW_FIRM_ADDRESS_2', 'LAW_FIRM_CITY',
  'LAW_FIRM_STATEorREGION', 'LAW_FIRM_POSTCODE', 'LAW_FIRM_COUNTRY', 'CLIENT_NAME', 'CLIENT_ADDRESS_1', 'CLIENT_ADDRESS_2', 'CLIENT_CITY',
  'CLIENT_STATEorREGION', 'CLIENT_POSTCODE', 'CLIENT_COUNTRY', 'LINE_ITEM_TAX_RATE', 'LINE_ITEM_TAX_TOTAL', 'LINE_ITEM_TAX_TYPE',
  'INVOICE_REPORTED_TAX_TOTAL', 'INVOICE_TAX_CURRENCY',
] as const;

export type Column1998B = (typeof COLUMNS_1998B)[number];
export type ColumnBI = (typeof COLUMNS_1998BI_EXTRA)[number];
export type LedesColumn = Column1998B | ColumnBI;

export const COLUMNS: Readonly<Record<LedesFormat, readonly LedesColumn[]>> = {
  LEDES1998B: COLUMNS_1998B,
  LEDES1998BI: [...COLUMNS_1998B, ...COLUMNS_1998BI_EXTRA],
};

/** Line 2 of each format, exactly. */
export const COLUMN_LINE: Readonly<Record<LedesFormat, string>> = {
  LEDES1998B: `${COLUMNS.LEDES1998B.join('|')}[]`,
  LEDES1998BI: `${COLUMNS.LEDES1998BI.join('|')}[]`,
};

/** INVOICE_NUMBER, CLIENT_ID and LAW_FIRM_MATTER_ID: at most 20 characters. */
export const MAX_ID_CHARS = 20;
export const LIMITED_IDS: readonly LedesColumn[] = ['INVOICE_NUMBER', 'CLIENT_ID', 'LAW_FIRM_MATTER_ID'];
/** Longest text value written (descriptions are cut here, at a word when possible). */
export const MAX_TEXT_CHARS = 4_000;
export const LINE_TYPES = ['F', 'E', 'IF', 'IE'] as const;
export type LineType = (typeof LINE_TYPES)[number];

/**
 * Characters the format cannot carry in a value: the delimiters `|`, `[`, `]`, line breaks of
 * every kind (CR, LF, VT, FF, U+0085, U+2028, U+2029, which the validator refuses) and the other
 * control characters (a tab pasted into an id is not the id the platform knows).
 */
// eslint-disable-next-line no-control-regex
export const FORBIDDEN_CHARS = /[|[\]\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
// Control characters (C0, DEL, C1) and the Unicode line/paragraph separators.
// eslint-disable-next-line no-control-regex
const UNCARRIABLE = /[|[\]\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g;

/**
 * A text value the format can carry: delimiters, line breaks, tabs and other control
 * characters become one space; runs of spaces collapse; ends trimmed; at most `max` chars.
 */
// Edges: any white space String.prototype.trim removes (and the validator refuses at a value's
// ends), not only the ASCII space: a no-break space or a BOM ending a description too.
// eslint-disable-next-line no-control-regex
const NEEDS_CLEANING = /[|[\]\u0000-\u001f\u007f-\u009f\u2028\u2029]| {2}|^\s|\s$/;

export function cleanText(value: string | null | undefined, max = MAX_TEXT_CHARS): string {
  if (value === null || value === undefined) return '';
  if (value.length <= max && !NEEDS_CLEANING.test(value)) return value;
  const s = value.replace(UNCARRIABLE, ' ').replace(/ {2,}/g, ' ').trim();
  if (s.length <= max) return s;
  let cut = s.slice(0, max);
  // Never end on the first half of a surrogate pair (an emoji, a CJK extension character):
  // alone it is no character at all, and UTF-8 writes it as U+FFFD.
  if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  const space = cut.lastIndexOf(' ');
  return (space > max * 0.8 ? cut.slice(0, space) : cut).trim();
}

/** YYYY-MM-DD to YYYYMMDD. */
export function ledesDate(iso: string): string {
  assert(/^\d{4}-\d{2}-\d{2}$/.test(iso), `not a calendar date: ${iso}`);
  return iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10);
}

/** True for a real calendar date written YYYYMMDD. */
export function isLedesDate(s: string): boolean {
  if (!/^\d{8}$/.test(s)) return false;
  const y = Number(s.slice(0, 4));
  const m = Number(s.slice(4, 6));
  const d = Number(s.slice(6, 8));
  if (m < 1 || m > 12 || d < 1) return false;
  const days = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return d <= days;
}

/** An amount in minor units as a LEDES number: digits, one `.`, optional leading `-`. */
const POW10 = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000];
const ZEROS = ['', '0', '00', '000', '0000', '00000', '000000'];

export function amountText(minor: number, exponent: number): string {
  assertSafeInteger(minor, 'amount');
  assert(exponent >= 0 && exponent <= 6, 'amountText: exponent 0..6');
  const sign = minor < 0 ? '-' : '';
  const abs = minor < 0 ? -minor : minor;
  if (exponent === 0) return `${sign}${abs}`;
  const pow = POW10[exponent]!;
  const frac = abs % pow;
  const fracText = String(frac);
  return `${sign}${(abs - frac) / pow}.${ZEROS[exponent - fracText.length]}${fracText}`;
}

/** Units in millionths as a LEDES number with at least two decimals: 2000000 -> 2.00, 1255000 -> 1.255, 116670 -> 0.11667. */
export function unitsText(micro: number): string {
  assertSafeInteger(micro, 'units');
  let s = amountText(micro, 6);
  while (s.endsWith('0') && s.length - s.indexOf('.') > 3) s = s.slice(0, -1);
  return s;
}

/** A tax rate in basis points as a decimal fraction: 2000 -> 0.20, 825 -> 0.0825. */
export function rateText(basisPoints: number): string {
  assertSafeInteger(basisPoints, 'tax rate');
  let s = amountText(basisPoints, 4);
  while (s.endsWith('0') && s.length - s.indexOf('.') > 3) s = s.slice(0, -1);
  return s;
}

/** A decimal as an exact scaled integer: "-12.345" -> { value: -12345n, scale: 3 }. Null when it is not a LEDES number. */
export interface Decimal { readonly value: bigint; readonly scale: number }

const NUMBER_RE = /^-?\d+(?:\.\d+)?$/;
export const isLedesNumber = (s: string): boolean => NUMBER_RE.test(s);

export function parseDecimal(s: string): Decimal | null {
  if (!NUMBER_RE.test(s) || s.length > 40) return null;
  const neg = s.startsWith('-');
  const body = neg ? s.slice(1) : s;
  const dot = body.indexOf('.');
  const whole = dot < 0 ? body : body.slice(0, dot);
  const frac = dot < 0 ? '' : body.slice(dot + 1);
  const v = BigInt(whole + frac);
  return { value: neg ? -v : v, scale: frac.length };
}

/** A decimal in minor units of `exponent` decimals; null if it has more decimals than that (never rounded). */
export function decimalToMinor(d: Decimal, exponent: number): bigint | null {
  if (d.scale > exponent) {
    const drop = 10n ** BigInt(d.scale - exponent);
    if (d.value % drop !== 0n) return null;
    return d.value / drop;
  }
  return d.value * 10n ** BigInt(exponent - d.scale);
}

/** units x unit cost, rounded half up once to minor units of `exponent` decimals: the format's product. */
export function extendedMinor(units: Decimal, unitCost: Decimal, exponent: number): bigint {
  const scale = units.scale + unitCost.scale;
  const product = units.value * unitCost.value;
  if (scale <= exponent) return product * 10n ** BigInt(exponent - scale);
  return divideRound(product, 10n ** BigInt(scale - exponent), 'half_up');
}

/** Generational and professional suffixes that stay with the last name ("Smith Jr."). */
const NAME_SUFFIX = /^(jr|sr|ii|iii|iv|vi|vii|viii|esq|phd|md|cpa|qc|kc)\.?$/i;

/**
 * "Margaret Holloway" -> { last: 'Holloway', first: 'Margaret' }; "Ann de la Cruz" -> last 'de la Cruz';
 * "Robert Smith Jr." and "Robert Smith, Jr." -> last 'Smith Jr.'; a name already written
 * "Last, First" ("Smith, Robert", "Smith Jr., Robert") is taken as it is written.
 */
export function splitName(name: string): { first: string; last: string } {
  // Words are split at any white space: "Margaret\u00a0Holloway" (a no-break space pasted in) is two words.
  const clean = cleanText(name).replace(/\s+/g, ' ');
  const comma = clean.indexOf(',');
  if (comma >= 0) {
    const before = clean.slice(0, comma).trim();
    const after = clean.slice(comma + 1).replace(/,/g, ' ').replace(/ {2,}/g, ' ').trim();
    const afterParts = after.split(' ').filter(Boolean);
    // "Robert Smith, Jr.": only suffixes after the comma, so the name is "First Last Suffix".
    if (afterParts.length > 0 && afterParts.every((p) => NAME_SUFFIX.test(p))) {
      const { first, last } = splitName(before);
      return { first, last: [last, ...afterParts].filter(Boolean).join(' ') };
    }
    if (before === '') return splitName(after);
    return { first: after, last: before };
  }
  const parts = clean.split(' ').filter(Boolean);
  const suffixes: string[] = [];
  while (parts.length > 2 && NAME_SUFFIX.test(parts[parts.length - 1]!)) suffixes.unshift(parts.pop()!);
  if (parts.length <= 1) return { first: '', last: [...parts, ...suffixes].join(' ') };
  // Lower-case particles (van, de, von, da, di, le, la, du) belong to the last name.
  let i = parts.length - 1;
  while (i > 1 && /^[a-z]/.test(parts[i - 1]!)) i--;
  return { first: parts.slice(0, i).join(' '), last: [...parts.slice(i), ...suffixes].join(' ') };
}

/** TIMEKEEPER_NAME: "Last, First". */
export function ledesName(name: string): string {
  const { first, last } = splitName(name);
  return first ? `${last}, ${first}` : last;
}

/**
 * An amount read from a LEDES file, for people: in the file's INVOICE_CURRENCY (none: USD, as
 * 1998B has no currency field), or as a plain number when that is no ISO code (a violation the
 * validator lists), so a bad file is reported rather than failing the page or the CLI.
 */
export function fileAmountText(minor: number, currency: string | null): string {
  const cur = currency === null || currency === '' ? 'USD' : isCurrencyCode(currency) ? currency : null;
  return cur ? formatMoney(minor, cur) : amountText(minor, 2);
}
