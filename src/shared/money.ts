/**
 * Money in integer minor units (cents) with an ISO 4217 currency. No floats are used in
 * arithmetic: products and quotients go through BigInt and are rounded by an explicit mode.
 */
import { assert, AssertionError, assertSafeInteger } from './assert.ts';

export type RoundingMode = 'half_up' | 'half_even' | 'half_down' | 'up' | 'down' | 'ceiling' | 'floor';
export const ROUNDING_MODES: readonly RoundingMode[] = ['half_up', 'half_even', 'half_down', 'up', 'down', 'ceiling', 'floor'];

export interface Money {
  readonly amountMinor: number;
  readonly currency: string;
}

/** Minor-unit exponents that differ from 2. */
const EXPONENTS: Readonly<Record<string, number>> = {
  JPY: 0, KRW: 0, VND: 0, CLP: 0, ISK: 0, XOF: 0, XAF: 0, XPF: 0, UGX: 0, PYG: 0,
  BHD: 3, KWD: 3, OMR: 3, JOD: 3, TND: 3, LYD: 3, IQD: 3,
};

/** Largest absolute amount accepted anywhere (one trillion major units at exponent 3). */
export const MAX_AMOUNT_MINOR = 1_000_000_000_000_000;

export function isCurrencyCode(code: string): boolean {
  return /^[A-Z]{3}$/.test(code);
}

/** The currencies in circulation (ISO 4217, as the runtime's ICU knows them): what a firm or matter may bill in. */
const KNOWN_CURRENCIES: ReadonlySet<string> = new Set(Intl.supportedValuesOf('currency'));

/** A currency a firm, matter or client can be set to: a code in circulation, not just three capitals ("QQQ", "NAN"). */
export function isKnownCurrency(code: string): boolean {
  return isCurrencyCode(code) && KNOWN_CURRENCIES.has(code);
}

export const UNKNOWN_CURRENCY = 'must be an ISO 4217 currency code in use, such as USD, EUR or AUD';

export function currencyExponent(currency: string): number {
  assert(isCurrencyCode(currency), `invalid currency code ${currency}`);
  return EXPONENTS[currency] ?? 2;
}

export function money(amountMinor: number, currency: string): Money {
  assertAmount(amountMinor, 'amountMinor');
  assert(isCurrencyCode(currency), `invalid currency code ${currency}`);
  return Object.freeze({ amountMinor, currency });
}

/** An amount (or a sum) past MAX_AMOUNT_MINOR: callers that take typed amounts say so at the field that typed it. */
export class AmountLimitError extends AssertionError {
  override name = 'AmountLimitError';
}

export function assertAmount(amountMinor: number, name = 'amountMinor'): void {
  assertSafeInteger(amountMinor, name);
  if (Math.abs(amountMinor) > MAX_AMOUNT_MINOR) throw new AmountLimitError(`${name} ${amountMinor} exceeds the limit of ${MAX_AMOUNT_MINOR}`);
}

function sameCurrency(a: Money, b: Money): void {
  assert(a.currency === b.currency, `currency mismatch: ${a.currency} vs ${b.currency}`);
}

export function add(a: Money, b: Money): Money {
  sameCurrency(a, b);
  return money(a.amountMinor + b.amountMinor, a.currency);
}

export function subtract(a: Money, b: Money): Money {
  sameCurrency(a, b);
  return money(a.amountMinor - b.amountMinor, a.currency);
}

export function negate(a: Money): Money {
  return money(0 - a.amountMinor, a.currency);
}

export function sum(items: readonly Money[], currency: string): Money {
  let total = 0;
  for (const m of items) {
    assert(m.currency === currency, `currency mismatch: ${m.currency} vs ${currency}`);
    total += m.amountMinor;
    assertAmount(total, 'sum');
  }
  return money(total, currency);
}

/** Sum of plain minor-unit integers, asserting every partial sum stays exact. */
export function sumMinor(values: readonly number[]): number {
  let total = 0;
  for (const v of values) {
    assertSafeInteger(v, 'value');
    total += v;
    assertAmount(total, 'sum');
  }
  return total;
}

/** Amounts summed apart per currency (yen never adds to dollars), in currency code order; each sum checked as sumMinor checks. */
export function sumByCurrency<T extends { currency: string }>(rows: readonly T[], amountOf: (row: T) => number): { currency: string; amountMinor: number }[] {
  const by = new Map<string, number[]>();
  for (const r of rows) {
    const list = by.get(r.currency);
    if (list) list.push(amountOf(r)); else by.set(r.currency, [amountOf(r)]);
  }
  return [...by.keys()].sort().map((currency) => ({ currency, amountMinor: sumMinor(by.get(currency)!) }));
}

/** Round the rational numerator/denominator to an integer by the given mode. */
export function divideRound(numerator: bigint, denominator: bigint, mode: RoundingMode): bigint {
  assert(denominator !== 0n, 'division by zero');
  const q = numerator / denominator;
  const r = numerator % denominator;
  if (r === 0n) return q;
  const positive = (numerator < 0n) === (denominator < 0n);
  const sign = positive ? 1n : -1n;
  const twiceR = 2n * (r < 0n ? -r : r);
  const absD = denominator < 0n ? -denominator : denominator;
  switch (mode) {
    case 'down': return q;
    case 'up': return q + sign;
    case 'ceiling': return positive ? q + 1n : q;
    case 'floor': return positive ? q : q - 1n;
    case 'half_up': return twiceR >= absD ? q + sign : q;
    case 'half_down': return twiceR > absD ? q + sign : q;
    case 'half_even':
      if (twiceR > absD) return q + sign;
      if (twiceR < absD) return q;
      return q % 2n === 0n ? q : q + sign;
  }
}

function toSafeNumber(v: bigint, name: string): number {
  const n = Number(v);
  assertAmount(n, name);
  return n;
}

/** amountMinor * numerator / denominator, rounded once by mode. */
export function mulDiv(amountMinor: number, numerator: number, denominator: number, mode: RoundingMode): number {
  assertSafeInteger(amountMinor, 'amountMinor');
  assertSafeInteger(numerator, 'numerator');
  assertSafeInteger(denominator, 'denominator');
  return toSafeNumber(divideRound(BigInt(amountMinor) * BigInt(numerator), BigInt(denominator), mode), 'mulDiv');
}

/** Percentage of an amount; percent given in basis points (12.5% = 1250). */
export function percentOf(amountMinor: number, basisPoints: number, mode: RoundingMode): number {
  return mulDiv(amountMinor, basisPoints, 10_000, mode);
}

/**
 * Split total into parts proportional to weights by the largest remainder method.
 * The parts always sum exactly to total. Ties in remainder go to the earlier weight,
 * so the result is deterministic. A negative total is split as its absolute value, negated.
 */
export function allocate(totalMinor: number, weights: readonly (number | bigint)[]): number[] {
  assertAmount(totalMinor, 'totalMinor');
  assert(weights.length > 0, 'allocate needs at least one weight');
  assert(weights.length <= 1_000_000, 'allocate: too many weights');
  if (weights.every((w) => typeof w === 'number')) {
    const fast = allocateExactNumber(totalMinor, weights as readonly number[]);
    if (fast) return fast;
  }
  const ws = weights.map((w) => {
    const b = typeof w === 'bigint' ? w : BigInt(checkWeight(w));
    assert(b >= 0n, 'allocate: weights must not be negative');
    return b;
  });
  const totalWeight = ws.reduce((a, b) => a + b, 0n);
  assert(totalWeight > 0n, 'allocate: weights must not all be zero');
  const negative = totalMinor < 0;
  const t = BigInt(Math.abs(totalMinor));
  const parts: bigint[] = [];
  const remainders: { index: number; rem: bigint }[] = [];
  let allocated = 0n;
  ws.forEach((w, index) => {
    const p = (t * w) / totalWeight;
    parts.push(p);
    allocated += p;
    remainders.push({ index, rem: (t * w) % totalWeight });
  });
  let left = t - allocated;
  assert(left >= 0n && left < BigInt(ws.length), 'allocate: remainder out of range');
  remainders.sort((a, b) => (a.rem === b.rem ? a.index - b.index : a.rem > b.rem ? -1 : 1));
  for (let i = 0; left > 0n; i++, left--) {
    const idx = remainders[i]!.index;
    parts[idx] = parts[idx]! + 1n;
  }
  const result = parts.map((p) => Number(negative ? -p : p)); // bigint negation: no -0
  assert(sumMinor(result) === totalMinor, 'allocate: parts do not sum to total');
  return result;
}

/**
 * The same largest-remainder split in plain numbers, used when every product
 * |total| x weight and the weight sum stay below 2^53 (so every step is exact).
 * Returns null when the inputs are too large for that; allocate then uses BigInt.
 */
function allocateExactNumber(totalMinor: number, weights: readonly number[]): number[] | null {
  let totalWeight = 0;
  for (const w of weights) {
    checkWeight(w);
    assert(w >= 0, 'allocate: weights must not be negative');
    totalWeight += w;
  }
  assert(totalWeight > 0, 'allocate: weights must not all be zero');
  const t = Math.abs(totalMinor);
  if (!Number.isSafeInteger(totalWeight) || t * totalWeight > Number.MAX_SAFE_INTEGER) return null;
  const n = weights.length;
  const parts = new Array<number>(n);
  const rems = new Array<number>(n);
  let allocated = 0;
  for (let i = 0; i < n; i++) {
    const product = t * weights[i]!;
    const rem = product % totalWeight;
    const p = (product - rem) / totalWeight;
    parts[i] = p;
    rems[i] = rem;
    allocated += p;
  }
  let left = t - allocated;
  assert(left >= 0 && left < n, 'allocate: remainder out of range');
  if (left > 0) {
    const order = Array.from({ length: n }, (_, i) => i);
    order.sort((a, b) => (rems[a] === rems[b] ? a - b : rems[b]! - rems[a]!));
    for (let i = 0; left > 0; i++, left--) parts[order[i]!]! += 1;
  }
  const negative = totalMinor < 0;
  let check = 0;
  for (let i = 0; i < n; i++) {
    if (negative && parts[i] !== 0) parts[i] = -parts[i]!;
    check += parts[i]!;
  }
  assert(check === totalMinor, 'allocate: parts do not sum to total');
  return parts;
}

function checkWeight(w: number): number {
  assertSafeInteger(w, 'weight');
  return w;
}

export class MoneyParseError extends Error {
  override name = 'MoneyParseError';
}

/**
 * Parse a decimal amount typed by a person: "1,234.56", "-12.5", "1234". Thousands
 * separators must be well placed; more decimals than the currency has is an error
 * (never silently rounded).
 */
export function parseAmount(text: string, currency: string): number {
  const exp = currencyExponent(currency);
  const s = text.trim();
  const m = /^(-)?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?$/.exec(s);
  if (!m) throw new MoneyParseError(`"${text}" is not an amount (use digits, e.g. 1234.56)`);
  const [, sign, intPart, frac = ''] = m;
  if (frac.length > exp) {
    throw new MoneyParseError(`"${text}" has more than ${exp} decimal places for ${currency}`);
  }
  const digits = intPart!.replaceAll(',', '') + frac.padEnd(exp, '0');
  const v = BigInt(digits) * (sign ? -1n : 1n);
  const n = Number(v);
  if (!Number.isSafeInteger(n) || Math.abs(n) > MAX_AMOUNT_MINOR) {
    throw new MoneyParseError(`"${text}" is too large`);
  }
  return n === 0 ? 0 : n;
}

/** Plain decimal string for APIs and files: "-1234.50". */
export function toDecimalString(amountMinor: number, currency: string): string {
  assertSafeInteger(amountMinor, 'amountMinor');
  const exp = currencyExponent(currency);
  const neg = amountMinor < 0;
  const abs = String(Math.abs(amountMinor)).padStart(exp + 1, '0');
  const whole = exp === 0 ? abs : abs.slice(0, abs.length - exp);
  const frac = exp === 0 ? '' : '.' + abs.slice(abs.length - exp);
  return `${neg ? '-' : ''}${whole}${frac}`;
}

const SYMBOLS: Readonly<Record<string, string>> = { USD: '$', AUD: '$', NZD: '$', CAD: '$', GBP: '£', EUR: '€', JPY: '¥' };

/** The dollars other than the US one, named where a page or bill may be read beside US dollars. */
const NAMED_DOLLARS: Readonly<Record<string, string>> = { CAD: 'CA$', AUD: 'A$', NZD: 'NZ$' };

/**
 * Display form with thousands separators: "$1,234.56", "-$12.00". `named`: a dollar other
 * than the US one is named ("CA$1,234.56"), as bills and their emails show amounts.
 */
export function formatMoney(amountMinor: number, currency: string, opts: { symbol?: boolean; named?: boolean } = {}): string {
  const plain = toDecimalString(Math.abs(amountMinor), currency);
  const [whole, frac] = plain.split('.');
  const grouped = whole!.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const symbol = opts.symbol === false ? '' : ((opts.named ? NAMED_DOLLARS[currency] : undefined) ?? SYMBOLS[currency] ?? `${currency} `);
  return `${amountMinor < 0 ? '-' : ''}${symbol}${grouped}${frac !== undefined ? '.' + frac : ''}`;
}
