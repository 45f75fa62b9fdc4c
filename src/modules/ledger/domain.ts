/**
 * The ledger's rules as pure functions: what a bill posts (seed 003), balanced journals,
 * receipt allocation orders, time-sensitive discounts, accounting periods (seed 004) and
 * debtor ageing. No I/O; table- and property-tested without a database.
 *
 * Signs: a posting line's amountMinor is positive for a debit and negative for a credit.
 */
import { assert, assertSafeInteger } from '../../shared/assert.ts';
import { allocate, assertAmount, sumMinor } from '../../shared/money.ts';
import type { BillData } from '../billing/events.ts';

/** Where a line posts, before it is resolved to an account row. */
export type AccountRef =
  | { role: 'office_bank' | 'debtors' | 'unallocated' | 'tax_payable' | 'fees' | 'fixed_charges' | 'disbursements' | 'interest' | 'discounts' | 'write_offs' }
  | { role: 'fee_timekeeper'; timekeeperId: string }
  | { role: 'fixed_charge_type'; chargeTypeId: string };

export interface PostingLine {
  account: AccountRef;
  /** Positive: debit; negative: credit. Never zero. */
  amountMinor: number;
  memo: string;
  billId?: string | null;
  timekeeperId?: string | null;
}

export function refKey(a: AccountRef): string {
  if (a.role === 'fee_timekeeper') return `fee_timekeeper:${a.timekeeperId}`;
  if (a.role === 'fixed_charge_type') return `fixed_charge_type:${a.chargeTypeId}`;
  return a.role;
}

/** Debits equal credits, every line non-zero and within the money limits, at least two lines. */
export function assertBalanced(lines: readonly { amountMinor: number }[], what: string): void {
  assert(lines.length >= 2, `${what}: a journal needs at least two lines`);
  for (const l of lines) {
    assertAmount(l.amountMinor, `${what} line`);
    assert(l.amountMinor !== 0, `${what}: a journal line cannot be zero`);
  }
  assert(sumMinor(lines.map((l) => l.amountMinor)) === 0, `${what}: debits must equal credits`);
}

/** Lines with the same account, bill and timekeeper merged; zero lines dropped. Order of first appearance. */
export function mergeLines(lines: readonly PostingLine[]): PostingLine[] {
  const out = new Map<string, PostingLine>();
  for (const l of lines) {
    const k = `${refKey(l.account)}|${l.billId ?? ''}|${l.timekeeperId ?? ''}|${Math.sign(l.amountMinor)}|${l.memo}`;
    const e = out.get(k);
    if (e) e.amountMinor += l.amountMinor;
    else out.set(k, { ...l });
  }
  return [...out.values()].filter((l) => l.amountMinor !== 0);
}

export function reverseLines(lines: readonly PostingLine[]): PostingLine[] {
  return lines.map((l) => ({ ...l, amountMinor: 0 - l.amountMinor }));
}

const FEE_KINDS = new Set(['time', 'fixed_fee', 'quote_fee', 'adhoc_fee']);
const DISBURSEMENT_KINDS = new Set(['disbursement', 'adhoc_disbursement']);

export interface BillPosting {
  lines: PostingLine[];
  /** What the bill leaves on debtors: its total (after the discount line). */
  debtorsMinor: number;
  /** The discount as it sits on debtors (discount plus the tax it saved): what reversing it adds back. */
  discountDebtorsMinor: number;
}

/**
 * The billing journal of a bill (seed 003):
 *  - fees: debit debtors, credit each timekeeper's professional-fees sub-account by the
 *    bill's fee allocation (which is net of the fees' share of a discount line; that share
 *    is added back pro rata to the allocation so fees post gross);
 *  - fixed charges: debit debtors, credit the account of each charge type;
 *  - disbursements: debit debtors, credit disbursements recovered;
 *  - interest: debit debtors, credit interest on overdue bills;
 *  - tax: debit debtors, credit tax payable (the tax of every line before the discount);
 *  - discount: credit debtors, debit discounts allowed (and debit tax payable with the tax the
 *    discount saved).
 * Debtors nets to the bill's total; asserted.
 */
export function billPosting(bill: BillData): BillPosting {
  const b = bill.billId;
  const lines: PostingLine[] = [];
  const t = bill.totals;
  const credit = (account: AccountRef, amountMinor: number, memo: string, timekeeperId: string | null = null) => {
    if (amountMinor !== 0) lines.push({ account, amountMinor: 0 - amountMinor, memo, billId: b, timekeeperId });
  };
  // Fees, per timekeeper by allocation, gross of the discount's fee share.
  const feeLines = bill.lines.filter((l) => FEE_KINDS.has(l.kind));
  const feesGross = sumMinor(feeLines.map((l) => l.amountMinor));
  assert(feesGross === t.feesMinor, 'fee lines must sum to the bill\'s fees');
  const allocated = sumMinor(bill.allocations.map((a) => a.amountMinor));
  assert(allocated === t.netFeesMinor, 'the fee allocation must sum to the net fees');
  const feeDiscountShare = t.feesMinor - t.netFeesMinor;
  // Each timekeeper's fees: the allocation, plus the discount's fee share added back pro rata
  // to it. Where the allocation cannot carry that (a 100% discount leaves nothing allocated;
  // a write-down allocated to one timekeeper makes a share negative), the share goes by the
  // positive allocations, else by each timekeeper's fee lines; only fees no timekeeper
  // recorded go to the general fees account.
  const byTimekeeper = new Map<string, number>();
  for (const a of bill.allocations) byTimekeeper.set(a.timekeeperId, (byTimekeeper.get(a.timekeeperId) ?? 0) + a.amountMinor);
  let unplaced = feeDiscountShare;
  if (feeDiscountShare !== 0) {
    const positive = bill.allocations.filter((a) => a.amountMinor > 0).map((a) => [a.timekeeperId, a.amountMinor] as const);
    const worked = new Map<string, number>();
    for (const l of feeLines) if (l.timekeeperId && l.amountMinor > 0) worked.set(l.timekeeperId, (worked.get(l.timekeeperId) ?? 0) + l.amountMinor);
    const weights = positive.length > 0 ? positive : [...worked];
    if (weights.length > 0) {
      allocate(feeDiscountShare, weights.map(([, w]) => w)).forEach((v, i) => byTimekeeper.set(weights[i]![0], (byTimekeeper.get(weights[i]![0]) ?? 0) + v));
      unplaced = 0;
    }
  }
  for (const [timekeeperId, amountMinor] of byTimekeeper) credit({ role: 'fee_timekeeper', timekeeperId }, amountMinor, 'Professional fees', timekeeperId);
  credit({ role: 'fees' }, unplaced, 'Professional fees (discounted share)');
  // Fixed charges per charge type.
  for (const l of bill.lines.filter((x) => x.kind === 'fixed_charge')) {
    credit(l.chargeTypeId ? { role: 'fixed_charge_type', chargeTypeId: l.chargeTypeId } : { role: 'fixed_charges' }, l.amountMinor, 'Fixed charges');
  }
  credit({ role: 'disbursements' }, sumMinor(bill.lines.filter((l) => DISBURSEMENT_KINDS.has(l.kind)).map((l) => l.amountMinor)), 'Disbursements recovered');
  credit({ role: 'interest' }, sumMinor(bill.lines.filter((l) => l.kind === 'interest').map((l) => l.amountMinor)), 'Interest on overdue bills');
  const discountLines = bill.lines.filter((l) => l.kind === 'discount');
  const grossTax = sumMinor(bill.lines.filter((l) => l.kind !== 'discount').map((l) => l.taxMinor));
  credit({ role: 'tax_payable' }, grossTax, 'Tax payable');
  const discountMinor = 0 - sumMinor(discountLines.map((l) => l.amountMinor));
  assert(discountMinor === t.discountMinor, 'discount lines must sum to the bill\'s discount');
  const discountTaxMinor = 0 - sumMinor(discountLines.map((l) => l.taxMinor));
  const creditsTotal = 0 - sumMinor(lines.map((l) => l.amountMinor));
  const grossDebtors = creditsTotal;
  if (grossDebtors !== 0) lines.unshift({ account: { role: 'debtors' }, amountMinor: grossDebtors, memo: `Bill ${bill.number ?? ''}`.trim(), billId: b });
  const discountDebtorsMinor = discountMinor + discountTaxMinor;
  if (discountMinor !== 0) lines.push({ account: { role: 'discounts' }, amountMinor: discountMinor, memo: 'Discount allowed', billId: b });
  if (discountTaxMinor !== 0) lines.push({ account: { role: 'tax_payable' }, amountMinor: discountTaxMinor, memo: 'Tax on discount', billId: b });
  if (discountDebtorsMinor !== 0) lines.push({ account: { role: 'debtors' }, amountMinor: 0 - discountDebtorsMinor, memo: 'Discount', billId: b });
  const merged = mergeLines(lines);
  const debtors = sumMinor(merged.filter((l) => l.account.role === 'debtors').map((l) => l.amountMinor));
  assert(debtors === t.totalMinor, `bill ${bill.number}: debtors ${debtors} must equal the bill total ${t.totalMinor}`);
  if (merged.length > 0) assertBalanced(merged, `bill ${bill.number}`);
  return { lines: merged, debtorsMinor: t.totalMinor, discountDebtorsMinor };
}

/** The journal that reverses a bill's discount (seed 003): debit debtors, credit discounts allowed and tax payable. */
export function discountReversal(billId: string, discountMinor: number, discountTaxMinor: number): PostingLine[] {
  const lines: PostingLine[] = [{ account: { role: 'debtors' }, amountMinor: discountMinor + discountTaxMinor, memo: 'Discount reversed', billId }];
  if (discountMinor !== 0) lines.push({ account: { role: 'discounts' }, amountMinor: 0 - discountMinor, memo: 'Discount reversed', billId });
  if (discountTaxMinor !== 0) lines.push({ account: { role: 'tax_payable' }, amountMinor: 0 - discountTaxMinor, memo: 'Tax on discount reversed', billId });
  const merged = mergeLines(lines);
  assertBalanced(merged, 'discount reversal');
  return merged;
}

// ---------------------------------------------------------------------------------------
// Receipts
// ---------------------------------------------------------------------------------------

export type AllocationOrder = 'this_bill_first' | 'oldest_first' | 'this_bill_only' | 'on_account';
export const ALLOCATION_ORDERS: readonly AllocationOrder[] = ['this_bill_first', 'oldest_first', 'this_bill_only', 'on_account'];

export interface OpenBill {
  billId: string;
  invoiceDate: string;
  number: string;
  outstandingMinor: number;
}

/** Oldest first: invoice date, then number (file.sequence compared part by part). */
export function oldestFirst<T extends { invoiceDate: string; number: string }>(bills: readonly T[]): T[] {
  return [...bills].sort((a, b) => (a.invoiceDate < b.invoiceDate ? -1 : a.invoiceDate > b.invoiceDate ? 1 : compareNumbers(a.number, b.number)));
}

export function compareNumbers(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? -1) - (pb[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

/** The currencies a receipt on account may be in: the firm's, then each one the client is billed in (no repeats). */
export function receiptCurrencies(firmCurrency: string, billedIn: readonly string[]): string[] {
  return [...new Set([firmCurrency, ...billedIn])];
}

/** The order the client's open bills take a receipt in. */
export function allocationSequence(bills: readonly OpenBill[], order: AllocationOrder, targetBillId: string | null): OpenBill[] {
  const open = oldestFirst(bills.filter((x) => x.outstandingMinor > 0));
  switch (order) {
    case 'on_account': return [];
    case 'oldest_first': return open;
    case 'this_bill_only': return open.filter((x) => x.billId === targetBillId);
    case 'this_bill_first': {
      const first = open.filter((x) => x.billId === targetBillId);
      return [...first, ...open.filter((x) => x.billId !== targetBillId)];
    }
  }
}

/**
 * Split a receipt over bills in the given sequence, each up to its outstanding; what is
 * left is unallocated credit (an overpayment or a payment on account).
 */
export function allocateReceipt(amountMinor: number, sequence: readonly OpenBill[]): { allocations: { billId: string; amountMinor: number }[]; unallocatedMinor: number } {
  assertSafeInteger(amountMinor, 'amountMinor');
  assert(amountMinor >= 0, 'a receipt amount cannot be negative');
  let left = amountMinor;
  const allocations: { billId: string; amountMinor: number }[] = [];
  for (const b of sequence) {
    if (left === 0) break;
    const take = Math.min(left, b.outstandingMinor);
    if (take > 0) {
      allocations.push({ billId: b.billId, amountMinor: take });
      left -= take;
    }
  }
  assert(sumMinor(allocations.map((a) => a.amountMinor)) + left === amountMinor, 'allocation must account for the whole receipt');
  return { allocations, unallocatedMinor: left };
}

export type DiscountChoice = 'auto' | 'honour' | 'reverse';

/**
 * What a receipt does to a bill's time-sensitive discount (seed 003, way 1): paid on or before
 * the date, it stands; after it, the receipt screen assumes it is reversed unless told to honour it.
 */
/**
 * The least a receipt's unallocated credit stands at, on `from` or any later date, given its
 * allocations (each taking its amount on `allocatedOn` and, once released, giving it back on
 * `releasedOn`). Money can be allocated on `from` only up to this: a smaller credit on some
 * later day would mean the same money paying two bills then.
 */
export function creditFloorFrom(amountMinor: number, allocations: readonly { amountMinor: number; allocatedOn: string; releasedOn: string | null }[], from: string): number {
  const at = (t: string) => allocations.reduce((s, a) => s - (a.allocatedOn <= t ? a.amountMinor : 0) + (a.releasedOn !== null && a.releasedOn <= t ? a.amountMinor : 0), amountMinor);
  const days = [from, ...allocations.flatMap((a) => [a.allocatedOn, ...(a.releasedOn ? [a.releasedOn] : [])]).filter((d) => d > from)];
  return Math.min(...days.map(at));
}

/**
 * The least a balance stands at on `from` or any later date, given its changes by date (each
 * counting from its date on): what can be taken off it on `from` without making it go below
 * zero on some later day (a bill's debtors, when it was raised again later, e.g. a discount
 * reversed after the day a payment is dated).
 */
export function balanceFloorFrom(changes: readonly { date: string; amountMinor: number }[], from: string): number {
  let at = 0;
  for (const c of changes) if (c.date <= from) at += c.amountMinor;
  let floor = at;
  for (const c of [...changes].filter((x) => x.date > from).sort((x, y) => (x.date < y.date ? -1 : x.date > y.date ? 1 : 0))) {
    at += c.amountMinor;
    if (at < floor) floor = at;
  }
  return floor;
}

/** The first of `from` and the later change dates from which the balance stays at `amountMinor` or more; null when none. */
export function firstDateWithFloor(changes: readonly { date: string; amountMinor: number }[], from: string, amountMinor: number): string | null {
  const days = [from, ...new Set(changes.map((c) => c.date).filter((d) => d > from))].sort();
  return days.find((d) => balanceFloorFrom(changes, d) >= amountMinor) ?? null;
}

export function discountDecision(status: 'none' | 'pending' | 'honoured' | 'reversed', validUntil: string | null, receivedOn: string, choice: DiscountChoice): 'keep' | 'reverse' | 'honour' {
  if (status !== 'pending' || validUntil === null) return 'keep';
  if (choice === 'reverse') return 'reverse';
  if (choice === 'honour') return 'honour';
  return receivedOn > validUntil ? 'reverse' : 'keep';
}

// ---------------------------------------------------------------------------------------
// Periods (seed 004)
// ---------------------------------------------------------------------------------------

export function isDate(s: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

// Accounting periods (YYYY-MM): src/shared/periods.ts, shared with billing's warning when a bill posts outside the current one.
export { firstOpenPeriod, isPeriod, nextPeriod, periodOf } from '../../shared/periods.ts';
import { firstOpenPeriod, isPeriod, periodOf } from '../../shared/periods.ts';

export type PostingCheck =
  | { ok: true; warning: string | null }
  | { ok: false; reason: string };

/**
 * A posting a person makes (a receipt, a write-off): refused in a closed period; in a period
 * other than the current one it warns (and needs confirming) or is refused, as the firm chooses.
 */
export function checkPosting(date: string, current: string, closed: ReadonlySet<string>, policy: 'warn' | 'refuse', confirmed: boolean): PostingCheck {
  const p = periodOf(date);
  if (closed.has(p)) return { ok: false, reason: `The accounting period ${p} is closed: choose a date in an open period` };
  if (p !== current) {
    const words = `${date} is in ${p}, not the current accounting period ${current}`;
    if (policy === 'refuse') return { ok: false, reason: `${words}; the firm refuses postings outside the current period` };
    if (!confirmed) return { ok: false, reason: `${words}: confirm to post outside the current period` };
    return { ok: true, warning: `Posted outside the current period (${current})` };
  }
  return { ok: true, warning: null };
}

/**
 * Where an EVENT's posting goes (events are never refused nor lost): its own date's period
 * when open; otherwise the first open period after it, with a note the bookkeeper sees.
 */
export function eventPeriod(date: string, current: string, closed: ReadonlySet<string>): { period: string; note: string | null } {
  const p = periodOf(date);
  if (!closed.has(p)) return { period: p, note: p === current ? null : `Outside the current period ${current}` };
  const to = firstOpenPeriod(p, closed);
  return { period: to, note: `Dated ${date} in closed period ${p}: posted to ${to}` };
}

// ---------------------------------------------------------------------------------------
// Debtor ageing
// ---------------------------------------------------------------------------------------

export const AGE_BUCKETS = ['current', 'd30', 'd60', 'd90', 'd120'] as const;
export type AgeBucket = (typeof AGE_BUCKETS)[number];
export const AGE_LABELS: Record<AgeBucket, string> = { current: 'Current', d30: '30 days', d60: '60 days', d90: '90 days', d120: '120+ days' };

export function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);
}

/** Age by invoice date: under 30 days current, then 30-59, 60-89, 90-119, 120 and over. */
export function ageBucket(invoiceDate: string, asOf: string): AgeBucket {
  const d = daysBetween(invoiceDate, asOf);
  if (d < 30) return 'current';
  if (d < 60) return 'd30';
  if (d < 90) return 'd60';
  if (d < 120) return 'd90';
  return 'd120';
}
