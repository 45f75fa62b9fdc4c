/**
 * The ledger's use cases, one transaction each (rows + journals + audit row + events):
 * receipts (against a bill or on account, allocated in the chosen order, overpayments held
 * as credit, time-sensitive discounts honoured or reversed), allocating credit, reversing a
 * receipt, writing off small balances, deciding a bill's discount, periods and the chart.
 *
 * Input is validated first; bad input is a 422 naming the field and changes nothing. A
 * refusal (closed period, outside the current period when the firm refuses or it is not
 * confirmed, more than is outstanding) is a 409 with the reason.
 */
import { assert } from '../../shared/assert.ts';
import { sql } from 'kysely';
import { audit } from '../../shared/audit.ts';
import type { Clock } from '../../shared/clock.ts';
import type { Db, Tx } from '../../shared/db.ts';
import { isUniqueViolation } from '../../shared/db.ts';
import type { CommandContext } from '../../shared/events.ts';
import { newId } from '../../shared/ids.ts';
import { formatMoney, isCurrencyCode, MAX_AMOUNT_MINOR } from '../../shared/money.ts';
import { appendEvent } from '../../shared/outbox.ts';
import type { Relay } from '../../shared/outbox.ts';
import { conflict, invalid, notFound } from '../../shared/web/errors.ts';
import {
  allocateFromCredit, billFloorDate, billFloorFrom, checkCommandDate, clientBillFloorsFrom, emitBalance, lastReceiptOf, OTHER_WRITE_OFF_LIMITS_KEY, periodSettings, postJournal, releaseAllocation, reverseDiscount, reverseJournal, today, unhonourUnpaid, writeOffLimitFor,
} from './books.ts';
import type { Books, BookLine } from './books.ts';
import { ALLOCATION_ORDERS, allocateReceipt, allocationSequence, creditFloorFrom, discountDecision, isDate, isPeriod, receiptCurrencies } from './domain.ts';
import type { AllocationOrder, DiscountChoice } from './domain.ts';
import type { LedgerEvents } from './events.ts';
import * as store from './store.ts';
import type { Account, LedgerBill, Receipt } from './store.ts';

export interface LedgerDeps {
  readonly db: Db;
  readonly clock: Clock;
  readonly relay: Pick<Relay, 'kick'>;
}

export interface ReceiptInput {
  /** Idempotency key: a receipt id already recorded returns that receipt. */
  receiptId?: string;
  clientId?: string | null;
  billId?: string | null;
  receivedOn: string;
  amountMinor: number;
  method?: string;
  reference?: string | null;
  order?: AllocationOrder;
  /** What to do with a time-sensitive discount (auto: reverse it when expired). */
  discount?: DiscountChoice;
  confirmOutsidePeriod?: boolean;
  /**
   * The receipt's currency (omitted: the bill's, or the firm's on account). On account it may
   * be the firm's or one the client is billed in (a client billed in yen pays on account in yen).
   */
  currency?: string | null;
}

export interface ReceiptResult {
  receipt: Receipt;
  allocations: { billId: string; amountMinor: number }[];
  discountsReversed: string[];
  warning: string | null;
}

const METHODS = ['bank_transfer', 'cheque', 'card', 'cash', 'trust_transfer', 'other'] as const;
export const RECEIPT_METHODS: readonly string[] = METHODS;
/** How credit is paid back to a client (not from trust: a refund leaves the office bank). */
export const REFUND_METHODS = ['bank_transfer', 'cheque', 'card', 'cash', 'other'] as const;
const ID_RE = /^[0-9a-zA-Z-]{1,64}$/;

export function createLedgerCommands(deps: LedgerDeps) {
  const { db, clock } = deps;

  async function inTransaction<T>(fn: (trx: Tx) => Promise<T>): Promise<T> {
    const r = await db.transaction().execute(fn);
    deps.relay.kick();
    return r;
  }
  const booksOf = (trx: Tx, ctx: CommandContext): Books => ({ trx, clock, ctx });
  const emit = <K extends keyof LedgerEvents & string>(b: Books, type: K, payload: LedgerEvents[K]) => appendEvent<LedgerEvents, K>(b.trx, clock, b.ctx, type, payload);

  const latest = (a: string, b: string): string => (a > b ? a : b);

  async function openBills(trx: Tx, clientId: string): Promise<LedgerBill[]> {
    return (await store.listBills(trx, { clientId, status: 'open' }));
  }

  /** A receipt id already recorded: the same receipt again is that receipt; a different one under its id is refused. */
  async function sameReceipt(trx: Tx, already: Receipt, input: ReceiptInput): Promise<ReceiptResult> {
    if (already.amountMinor !== input.amountMinor || (input.billId ?? null) !== already.billId || (input.clientId && input.clientId !== already.clientId)
      || (input.currency && input.currency !== already.currency)) {
      throw conflict(`Receipt ${already.number} was already recorded under this id for ${formatMoney(already.amountMinor, already.currency)}: reload to record another`);
    }
    const allocs = await store.allocations(trx, { receiptId: already.id });
    return { receipt: already, allocations: allocs.map((a) => ({ billId: a.billId, amountMinor: a.amountMinor })), discountsReversed: [], warning: null };
  }

  async function recordReceipt(trx: Tx, ctx: CommandContext, input: ReceiptInput): Promise<ReceiptResult> {
    const e: Record<string, string> = {};
    if (!Number.isSafeInteger(input.amountMinor) || input.amountMinor <= 0) e.amount = 'must be more than zero';
    else if (input.amountMinor > MAX_AMOUNT_MINOR) e.amount = 'is too large';
    if (!isDate(input.receivedOn)) e.receivedOn = 'must be a date (YYYY-MM-DD)';
    const order = input.order ?? (input.billId ? 'this_bill_first' : 'oldest_first');
    if (!ALLOCATION_ORDERS.includes(order)) e.order = `must be one of: ${ALLOCATION_ORDERS.join(', ')}`;
    const method = input.method ?? 'bank_transfer';
    if (!(METHODS as readonly string[]).includes(method)) e.method = `must be one of: ${METHODS.join(', ')}`;
    if (input.reference && input.reference.length > 200) e.reference = 'must be at most 200 characters';
    if (input.receiptId !== undefined && !ID_RE.test(input.receiptId)) e.receiptId = 'must be an id';
    const choice = input.discount ?? 'auto';
    if (!['auto', 'honour', 'reverse'].includes(choice)) e.discount = 'must be one of: auto, honour, reverse';
    let bill: LedgerBill | null = null;
    if (input.billId) {
      bill = await store.findBill(trx, input.billId);
      if (!bill) e.billId = 'is not a bill on the debtors ledger';
      else if (bill.status !== 'open') e.billId = 'is not open on the debtors ledger (its postings were reversed)';
    }
    const clientId = input.clientId ?? bill?.clientId ?? null;
    // A bill that was given but is wrong is the problem to name; the client comes from a good bill.
    if (!clientId) { if (!input.billId) e.clientId = 'is required (or give a bill)'; }
    else if (bill && bill.clientId !== clientId) e.clientId = 'is not the bill\'s client';
    else if (!bill && !(await trx.selectFrom('ledger_client').select('id').where('id', '=', clientId).executeTakeFirst())) e.clientId = 'is not a known client';
    if ((order === 'this_bill_first' || order === 'this_bill_only') && !input.billId) e.order = 'needs a bill';
    const settings = await periodSettings({ trx, clock });
    let currency = bill?.currency ?? settings.currency;
    if (input.currency !== undefined && input.currency !== null && input.currency !== currency) {
      if (bill) e.currency = `must be the bill's currency (${bill.currency})`;
      else if (!isCurrencyCode(input.currency)) e.currency = 'must be a currency code (ISO 4217, e.g. USD)';
      else if (clientId && !e.clientId) {
        const allowed = receiptCurrencies(settings.currency, await store.clientCurrencies(trx, clientId));
        if (allowed.includes(input.currency)) currency = input.currency;
        else e.currency = `must be the firm's currency (${settings.currency})${allowed.slice(1).map((c) => ` or ${c}`).join('')}: the client has no bills in ${input.currency}`;
      }
    }
    if (Object.keys(e).length > 0) throw invalid(e);
    // Receipts of one client are recorded one at a time (its bills' rows are locked), so a
    // repeat of the same receipt id waits for the first and then finds it; the receipt's
    // primary key (and its journal's unique source key) catch any that slip past.
    await store.lockClientBills(trx, clientId!);
    const receiptId = input.receiptId ?? newId(clock);
    const already = await store.findReceipt(trx, receiptId);
    if (already) return sameReceipt(trx, already, input);
    const b = booksOf(trx, ctx);
    const periodWarning = await checkCommandDate(b, input.receivedOn, input.confirmOutsidePeriod ?? false);
    // Dated ahead (a post-dated cheque): the bills show it paid now, the reports from its date.
    const ahead = input.receivedOn > today(clock) ? `Dated ${input.receivedOn}, after today: reports as at an earlier date do not count it` : null;
    const notes: string[] = [];
    // Bills in the receipt's currency only.
    const all = (await openBills(trx, clientId!)).filter((x) => x.currency === currency);
    if (input.billId && !all.some((x) => x.id === input.billId)) throw conflict('The bill\'s postings were reversed meanwhile: reload');
    // Money received before a bill's date does not pay that bill (it waits on account for it).
    const named = input.billId ? all.find((x) => x.id === input.billId)! : null;
    if (named && input.receivedOn < named.invoiceDate && order !== 'on_account') {
      throw invalid({ receivedOn: `is before bill ${named.number}'s date (${named.invoiceDate}): record it on account and allocate it on or after that date` });
    }
    const open = all.filter((x) => x.invoiceDate <= input.receivedOn);
    const byId = new Map(open.map((x) => [x.id, x]));
    // Walk the bills in order; a time-sensitive discount is decided as each bill is reached.
    let left = input.amountMinor;
    const allocs: { billId: string; amountMinor: number }[] = [];
    const discountsReversed: string[] = [];
    const seq = allocationSequence(open.map((x) => ({ billId: x.id, invoiceDate: x.invoiceDate, number: x.number, outstandingMinor: store.outstandingOf(x) })), order, input.billId ?? null);
    const touched = new Set<string>();
    for (const s of seq) {
      if (left === 0) break;
      const lb = byId.get(s.billId)!;
      const d = discountDecision(lb.discountStatus, lb.discountValidUntil, input.receivedOn, choice);
      if (d === 'reverse') {
        await reverseDiscount(b, lb, input.receivedOn, `receipt:${receiptId}:discount:${lb.id}`, 'command', input.confirmOutsidePeriod ?? false);
        discountsReversed.push(lb.id);
        touched.add(lb.id);
      } else if (d === 'honour') {
        lb.discountStatus = 'honoured';
        lb.discountDecidedOn = input.receivedOn;
        lb.discountDecided = true;
        touched.add(lb.id);
      }
      // No more than the bill owed on the receipt's day and every day since (its balance may have risen later: a discount
      // reversed after that day); the rest goes on in the order, or is held as credit to allocate from the day it rose.
      const owed = Math.min(store.outstandingOf(lb), await billFloorFrom(trx, lb.id, input.receivedOn));
      if (owed < store.outstandingOf(lb) && left > owed) {
        notes.push(`Bill ${lb.number} owed ${formatMoney(Math.max(0, owed), lb.currency)} on ${input.receivedOn} (its balance rose after): the rest was not allocated to it`);
      }
      const { allocations } = allocateReceipt(left, [{ ...s, outstandingMinor: Math.max(0, owed) }]);
      for (const a of allocations) {
        allocs.push(a);
        left -= a.amountMinor;
        lb.paidMinor += a.amountMinor;
        if (lb.lastReceiptOn === null || lb.lastReceiptOn < input.receivedOn) lb.lastReceiptOn = input.receivedOn;
        if (lb.discountStatus === 'pending' && store.outstandingOf(lb) === 0) {
          lb.discountStatus = 'honoured';
          lb.discountDecidedOn = input.receivedOn;
        }
        touched.add(lb.id);
      }
    }
    const warning = [periodWarning, ahead, ...notes].filter((w) => w !== null).join('; ') || null;
    const number = `R${String(await store.nextValue(trx, 'receipt')).padStart(6, '0')}`;
    const lines: BookLine[] = [{ account: { role: 'office_bank' }, amountMinor: input.amountMinor, memo: `Receipt ${number}` }];
    for (const a of allocs) {
      const lb = byId.get(a.billId)!;
      lines.push({ account: { role: 'debtors' }, amountMinor: 0 - a.amountMinor, memo: `Bill ${lb.number}: receipt ${number}`, billId: lb.id, matterId: lb.matterId });
    }
    if (left > 0) lines.push({ account: { role: 'unallocated' }, amountMinor: 0 - left, memo: `Receipt ${number}: unallocated credit` });
    const { journal } = await postJournal(b, {
      prefix: 'RJ', sourceKey: `receipt:${receiptId}`, sourceType: 'ledger.receipt_recorded', date: input.receivedOn, memo: `Receipt ${number}${input.reference ? ` (${input.reference})` : ''}`,
      currency, lines, mode: 'command', confirmOutsidePeriod: input.confirmOutsidePeriod ?? false, receiptId, clientId, billId: null,
    });
    const receipt: Receipt = {
      id: receiptId, number, clientId: clientId!, billId: input.billId ?? null, receivedOn: input.receivedOn, amountMinor: input.amountMinor, currency,
      method, reference: input.reference?.trim() || null, allocationOrder: order, unallocatedMinor: left, status: 'posted', journalId: journal.id,
      reversalJournalId: null, reversedOn: null, reversalReason: null, createdAt: clock.now().toISOString(), createdBy: ctx.actorLabel,
    };
    try {
      await store.insertReceipt(trx, receipt);
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict('That receipt was recorded at the same moment by another request: reload');
      throw err;
    }
    for (const a of allocs) {
      await store.insertAllocation(trx, { id: newId(clock), receiptId, billId: a.billId, amountMinor: a.amountMinor, allocatedOn: input.receivedOn, journalId: journal.id, releasedOn: null, releaseJournalId: null, releaseReason: null });
    }
    for (const id of touched) {
      const lb = byId.get(id)!;
      lb.updatedAt = clock.now().toISOString();
      await store.saveBill(trx, lb);
      await emitBalance(b, lb, input.receivedOn);
    }
    await emit(b, 'ledger.receipt_recorded', {
      receiptId, number, clientId: clientId!, billId: receipt.billId, receivedOn: receipt.receivedOn, amountMinor: receipt.amountMinor, currency,
      allocations: allocs, unallocatedMinor: left,
    });
    await audit(trx, clock, ctx, { action: 'ledger.receipt_recorded', entityType: 'ledger_receipt', entityId: receiptId, after: { ...receipt, allocations: allocs, discountsReversed } });
    return { receipt, allocations: allocs, discountsReversed, warning };
  }

  /** Allocate a receipt's unallocated credit to the client's open bills (a chosen bill first, or oldest first). */
  async function allocateCredit(trx: Tx, ctx: CommandContext, input: { receiptId: string; billId?: string | null; order?: AllocationOrder; on?: string; confirmOutsidePeriod?: boolean }): Promise<Receipt> {
    const found = await store.findReceipt(trx, input.receiptId);
    if (!found) throw notFound('Receipt');
    await store.lockClientBills(trx, found.clientId);
    await store.lockReceipt(trx, found.id);
    const receipt = (await store.findReceipt(trx, input.receiptId))!;
    if (receipt.status !== 'posted') throw conflict('The receipt was reversed');
    if (receipt.unallocatedMinor === 0) throw conflict('The receipt has no unallocated credit');
    const on = input.on ?? latest(today(clock), receipt.receivedOn);
    if (!isDate(on)) throw invalid({ on: 'must be a date (YYYY-MM-DD)' });
    // Money cannot pay a bill before it was received.
    if (on < receipt.receivedOn) throw invalid({ on: `must be on or after the receipt's date (${receipt.receivedOn})` });
    const order = input.order ?? (input.billId ? 'this_bill_first' : 'oldest_first');
    if (!ALLOCATION_ORDERS.includes(order) || order === 'on_account') throw invalid({ order: 'must be this_bill_first, this_bill_only or oldest_first' });
    if ((order === 'this_bill_first' || order === 'this_bill_only') && !input.billId) throw invalid({ billId: 'is required for this order' });
    const b = booksOf(trx, ctx);
    await checkCommandDate(b, on, input.confirmOutsidePeriod ?? false);
    const all = (await openBills(trx, receipt.clientId)).filter((x) => x.currency === receipt.currency);
    if (input.billId && !all.some((x) => x.id === input.billId)) throw invalid({ billId: 'is not an open bill of the receipt\'s client' });
    // A bill is paid no earlier than its own date.
    const named = input.billId ? all.find((x) => x.id === input.billId)! : null;
    if (named && on < named.invoiceDate) throw invalid({ on: `must be on or after bill ${named.number}'s date (${named.invoiceDate})` });
    const open = all.filter((x) => x.invoiceDate <= on);
    // No more than the credit stood at on that day and every day since (else that money would pay two bills for a while).
    const floor = creditFloorFrom(receipt.amountMinor, await store.creditMovements(trx, receipt.id), on);
    if (floor <= 0) throw invalid({ on: `the receipt's credit was in use on ${on}: choose the day it came back or later` });
    const byId = new Map(open.map((x) => [x.id, x]));
    // Each bill takes no more than it owed on that day and every day since (its balance may have risen later).
    const owing: { billId: string; invoiceDate: string; number: string; outstandingMinor: number }[] = [];
    const floorOf = await clientBillFloorsFrom(trx, receipt.clientId, on);
    for (const x of open) {
      // A time-sensitive discount expired by that day is reversed first (allocateFromCredit, dated that day): the bill then
      // owes its undiscounted amount from that day on, and the credit pays that, as a receipt on the same day would.
      // (Only on a bill still owing: a receipt's allocation passes over a settled bill, its discount as it stands.)
      const rises = store.outstandingOf(x) > 0 && x.discountStatus === 'pending' && x.discountValidUntil !== null && on > x.discountValidUntil ? x.discountDebtorsMinor : 0;
      const o = store.outstandingOf(x) + rises;
      owing.push({ billId: x.id, invoiceDate: x.invoiceDate, number: x.number, outstandingMinor: o > 0 ? Math.max(0, Math.min(o, floorOf(x.id) + rises)) : o });
    }
    const seq = allocationSequence(owing, order, input.billId ?? null);
    const { allocations } = allocateReceipt(Math.min(receipt.unallocatedMinor, floor), seq);
    if (allocations.length === 0) {
      // Bills owing now that owed nothing on the day chosen (their balance rose after it): name the day to use.
      const rose = owing.filter((x) => x.outstandingMinor === 0 && store.outstandingOf(byId.get(x.billId)!) > 0 && (order === 'oldest_first' || x.billId === input.billId));
      if (rose.length > 0) {
        const first = rose[0]!;
        const from = await billFloorDate(trx, first.billId, on, 1);
        throw invalid({ on: `bill ${first.number} owed nothing on ${on} that it still owes (its balance rose after)${from ? `: allocate on or after ${from}` : ''}` });
      }
      // Bills owing, all dated after the day chosen: say so, naming the date to use.
      const later = all.filter((x) => store.outstandingOf(x) > 0).map((x) => x.invoiceDate).sort()[0];
      if (later !== undefined) throw invalid({ on: `is before every bill with something outstanding (the earliest is dated ${later}): allocate on or after that date` });
      throw conflict('No open bill of the client has anything outstanding');
    }
    for (const a of allocations) {
      await allocateFromCredit(b, receipt, byId.get(a.billId)!, a.amountMinor, on, `allocate:${newId(clock)}`, 'command', input.confirmOutsidePeriod ?? false);
    }
    await audit(trx, clock, ctx, { action: 'ledger.credit_allocated', entityType: 'ledger_receipt', entityId: receipt.id, after: { allocations, on } });
    return (await store.findReceipt(trx, receipt.id))!;
  }

  /** Reverse a receipt: its allocations are released and the money taken back out of the bank (RJ reversal). */
  async function reverseReceipt(trx: Tx, ctx: CommandContext, input: { receiptId: string; on?: string; reason: string; confirmOutsidePeriod?: boolean }): Promise<Receipt> {
    const e: Record<string, string> = {};
    const reason = (input.reason ?? '').trim();
    if (reason === '') e.reason = 'is required (e.g. "Cheque dishonoured")';
    else if (reason.length > 500) e.reason = 'must be at most 500 characters';
    if (input.on !== undefined && !isDate(input.on)) e.on = 'must be a date (YYYY-MM-DD)';
    if (Object.keys(e).length) throw invalid(e);
    const found = await store.findReceipt(trx, input.receiptId);
    if (!found) throw notFound('Receipt');
    await store.lockClientBills(trx, found.clientId);
    await store.lockReceipt(trx, found.id);
    const receipt = (await store.findReceipt(trx, input.receiptId))!;
    if (receipt.status === 'reversed') throw conflict(`Receipt ${receipt.number} was already reversed`);
    // Today, unless the receipt is dated later (entered ahead of its date).
    const on = input.on ?? latest(today(clock), receipt.receivedOn);
    if (on < receipt.receivedOn) throw invalid({ on: `must be on or after the receipt's date (${receipt.receivedOn})` });
    const b = booksOf(trx, ctx);
    const live = await store.allocations(trx, { receiptId: receipt.id, live: true });
    // Not before its money went to the bills it pays: those bills would owe it twice for a while.
    const lastAllocated = live.map((a) => a.allocatedOn).sort().at(-1);
    if (lastAllocated !== undefined && on < lastAllocated) throw invalid({ on: `must be on or after ${lastAllocated}, when the receipt last paid a bill` });
    // Nor while some of its credit stands refunded to the client: that money left the bank already (take the refund back first).
    const refunded = await store.refunds(trx, receipt.id, true);
    if (refunded.length > 0) {
      const total = refunded.reduce((t, x) => t + x.amountMinor, 0);
      // (Review 60 F9: a cheque dishonoured after its excess was refunded leaves the client owing the refund; the ledger
      // has no debtors item but bills to record that, so it is refused, said plainly, rather than booked as money returned.)
      throw conflict(`${formatMoney(total, receipt.currency)} of receipt ${receipt.number} was refunded to the client (${refunded.map((x) => x.refundedOn).join(', ')}). `
        + `If the refund${refunded.length > 1 ? 's were' : ' was'} returned to the firm, reverse ${refunded.length > 1 ? 'them' : 'it'} first, then the receipt. `
        + 'If the payment was dishonoured after the refund was paid out, the client owes the refund: the ledger cannot record that debt, so leave the receipt as it is and record the debt with your accountant');
    }
    // Nor before its credit came back from a bill it paid (a released allocation) or from a refund taken back: the credit taken out would not be there yet.
    const everAllocated = await store.creditMovements(trx, receipt.id);
    if (creditFloorFrom(receipt.amountMinor, everAllocated, on) < receipt.unallocatedMinor) {
      const back = [...new Set(everAllocated.flatMap((a) => (a.releasedOn !== null && a.releasedOn > on ? [a.releasedOn] : [])))].sort()
        .find((d) => creditFloorFrom(receipt.amountMinor, everAllocated, d) >= receipt.unallocatedMinor);
      throw invalid({ on: `must be on or after ${back ?? 'the day'}, when the receipt's credit came back (an allocation released, or a refund taken back)` });
    }
    const lines: BookLine[] = [{ account: { role: 'office_bank' }, amountMinor: 0 - receipt.amountMinor, memo: `Receipt ${receipt.number} reversed` }];
    const bills = new Map<string, LedgerBill>();
    for (const a of live) {
      const lb = bills.get(a.billId) ?? (await store.findBill(trx, a.billId))!;
      bills.set(lb.id, lb);
      lines.push({ account: { role: 'debtors' }, amountMinor: a.amountMinor, memo: `Bill ${lb.number}: receipt ${receipt.number} reversed`, billId: lb.id, matterId: lb.matterId });
    }
    if (receipt.unallocatedMinor > 0) lines.push({ account: { role: 'unallocated' }, amountMinor: receipt.unallocatedMinor, memo: `Receipt ${receipt.number} credit reversed` });
    const { journal } = await postJournal(b, {
      prefix: 'RJ', sourceKey: `receipt-reversal:${receipt.id}`, sourceType: 'ledger.receipt_reversed', date: on, memo: `Reversal of receipt ${receipt.number}: ${reason}`,
      currency: receipt.currency, lines, mode: 'command', confirmOutsidePeriod: input.confirmOutsidePeriod ?? false, receiptId: receipt.id, clientId: receipt.clientId,
      reversesJournalId: null,
    });
    for (const a of live) {
      await store.releaseAllocation(trx, a.id, on, journal.id, 'receipt_reversed');
      const lb = bills.get(a.billId)!;
      lb.paidMinor -= a.amountMinor;
    }
    for (const lb of bills.values()) {
      lb.lastReceiptOn = await lastReceiptOf(trx, lb.id);
      unhonourUnpaid(lb);
      lb.updatedAt = clock.now().toISOString();
      await store.saveBill(trx, lb);
      await emitBalance(b, lb, on);
    }
    await store.updateReceipt(trx, receipt.id, { unallocatedMinor: 0, status: 'reversed', reversalJournalId: journal.id, reversedOn: on, reversalReason: reason });
    await emit(b, 'ledger.receipt_reversed', { receiptId: receipt.id, number: receipt.number, clientId: receipt.clientId, reversedOn: on, amountMinor: receipt.amountMinor, currency: receipt.currency, reason });
    await audit(trx, clock, ctx, { action: 'ledger.receipt_reversed', entityType: 'ledger_receipt', entityId: receipt.id, before: receipt, after: { status: 'reversed', on, reason } });
    return (await store.findReceipt(trx, receipt.id))!;
  }

  /**
   * Pay part or all of a receipt's unallocated credit back to the client (RJ: the unallocated
   * receipts account debited, the office bank credited). Not more than the credit stood at on
   * that day and every day since (money paying a bill then cannot also be refunded), not before
   * the receipt; period rules as for any posting. `refundId` is the idempotency key: the same
   * refund again is the one already made.
   */
  async function refundCredit(trx: Tx, ctx: CommandContext, input: { receiptId: string; refundId?: string; amountMinor?: number; on?: string; method?: string; reference?: string; reason?: string; confirmOutsidePeriod?: boolean }) {
    const e: Record<string, string> = {};
    const reason = (input.reason ?? '').trim();
    if (reason === '') e.reason = 'is required (e.g. "Overpayment returned to the client")';
    else if (reason.length > 500) e.reason = 'must be at most 500 characters';
    const method = input.method ?? 'bank_transfer';
    if (!(REFUND_METHODS as readonly string[]).includes(method)) e.method = `must be one of: ${REFUND_METHODS.join(', ')}`;
    const reference = input.reference?.trim() || null;
    if (reference !== null && reference.length > 100) e.reference = 'must be at most 100 characters';
    if (input.on !== undefined && !isDate(input.on)) e.on = 'must be a date (YYYY-MM-DD)';
    if (input.amountMinor !== undefined && (!Number.isSafeInteger(input.amountMinor) || input.amountMinor <= 0 || input.amountMinor > MAX_AMOUNT_MINOR)) e.amount = 'must be more than zero';
    if (input.refundId !== undefined && !ID_RE.test(input.refundId)) e.refundId = 'must be an id';
    if (!ID_RE.test(input.receiptId)) throw notFound('Receipt');
    const found = await store.findReceipt(trx, input.receiptId);
    if (!found) throw notFound('Receipt');
    await store.lockClientBills(trx, found.clientId);
    await store.lockReceipt(trx, found.id);
    const receipt = (await store.findReceipt(trx, input.receiptId))!;
    if (input.refundId !== undefined && Object.keys(e).length === 0) {
      const already = await store.findRefund(trx, input.refundId);
      if (already) {
        // The same form again (a double post, Back and send): the refund made then, only if everything matches; a form
        // changed since (another date, method, amount) is not that refund, and is not made either (review 60 F3).
        const same = already.receiptId === receipt.id && (input.amountMinor === undefined || already.amountMinor === input.amountMinor)
          && (input.on === undefined || already.refundedOn === input.on) && already.method === method && already.reference === reference && already.reason === reason;
        if (!same) throw conflict('A different refund was already made under this form (it was sent before with other details): nothing more was refunded; reload to make another refund');
        return receipt;
      }
    }
    if (Object.keys(e).length) throw invalid(e);
    if (receipt.status !== 'posted') throw conflict(`Receipt ${receipt.number} was reversed: nothing to refund`);
    if (receipt.unallocatedMinor === 0) throw conflict(`Receipt ${receipt.number} has no unallocated credit to refund`);
    // Money that came from trust goes back to trust, not out of the office bank (review 60 F6); the trust ledger is not built yet.
    if (receipt.method === 'trust_transfer') throw conflict(`Receipt ${receipt.number} came by trust transfer: its unallocated credit goes back to the client's trust account, which is done in trust accounting, not refunded from the office bank here`);
    const amount = input.amountMinor ?? receipt.unallocatedMinor;
    if (amount > receipt.unallocatedMinor) throw invalid({ amount: `must be at most the receipt's unallocated credit (${formatMoney(receipt.unallocatedMinor, receipt.currency)})` });
    // Today, unless the receipt is dated later (entered ahead of its date).
    const on = input.on ?? latest(today(clock), receipt.receivedOn);
    if (on < receipt.receivedOn) throw invalid({ on: `must be on or after the receipt's date (${receipt.receivedOn})` });
    const b = booksOf(trx, ctx);
    await checkCommandDate(b, on, input.confirmOutsidePeriod ?? false);
    // No more than the credit stood at on that day and every day since; else the first day it does is named (review 60 F5).
    const moves = await store.creditMovements(trx, receipt.id);
    const floor = creditFloorFrom(receipt.amountMinor, moves, on);
    if (floor < amount) {
      const from = [...new Set(moves.flatMap((x) => [x.allocatedOn, ...(x.releasedOn ? [x.releasedOn] : [])]).filter((d) => d > on))].sort()
        .find((d) => creditFloorFrom(receipt.amountMinor, moves, d) >= amount);
      const then = floor <= 0 ? `none of the receipt's credit was free on ${on} and every day since` : `only ${formatMoney(floor, receipt.currency)} of the receipt's credit was free on ${on} and every day since`;
      throw invalid({ on: `${then} (it paid a bill or was refunded for a while)${from ? `: refund ${formatMoney(amount, receipt.currency)} on or after ${from}` : ''}${floor > 0 ? `, or at most ${formatMoney(floor, receipt.currency)} on ${on}` : ''}` });
    }
    const id = input.refundId ?? newId(clock);
    // Postgres: the same id sent at once for two receipts that share no lock (two clients): the second meets the first's
    // unique keys (a 409 as any other refund under a used id, not a 500; review 59 F8).
    const { journal } = await postJournal(b, {
      prefix: 'RJ', sourceKey: `refund:${id}`, sourceType: 'ledger.credit_refunded', date: on,
      memo: `Refund of receipt ${receipt.number} credit${reference ? ` (${reference})` : ''}: ${reason}`, currency: receipt.currency,
      mode: 'command', confirmOutsidePeriod: input.confirmOutsidePeriod ?? false, receiptId: receipt.id, clientId: receipt.clientId,
      lines: [
        { account: { role: 'unallocated' }, amountMinor: amount, memo: `Receipt ${receipt.number} credit refunded` },
        { account: { role: 'office_bank' }, amountMinor: 0 - amount, memo: `Refund to the client of receipt ${receipt.number} credit` },
      ],
    });
    const createdAt = clock.now().toISOString();
    await store.insertRefund(trx, { id, receiptId: receipt.id, amountMinor: amount, refundedOn: on, method, reference, reason, journalId: journal.id, reversalJournalId: null, reversedOn: null, reversalReason: null, createdAt, createdBy: ctx.actorLabel });
    const left = receipt.unallocatedMinor - amount;
    assert(left >= 0, 'a refund never takes more than the unallocated credit');
    await store.updateReceipt(trx, receipt.id, { unallocatedMinor: left });
    await emit(b, 'ledger.credit_refunded', { refundId: id, receiptId: receipt.id, receiptNumber: receipt.number, clientId: receipt.clientId, on, amountMinor: amount, currency: receipt.currency, unallocatedMinor: left, reversed: false });
    await audit(trx, clock, ctx, { action: 'ledger.credit_refunded', entityType: 'ledger_receipt', entityId: receipt.id, before: { unallocatedMinor: receipt.unallocatedMinor }, after: { refundId: id, amountMinor: amount, on, method, reference, reason, journal: journal.number, unallocatedMinor: left } });
    return (await store.findReceipt(trx, receipt.id))!;
  }

  /**
   * Take a refund back (the payment to the client was returned or never made): its journal
   * reversed exactly, on `on` (default today; not before the refund), the money back in the
   * receipt's unallocated credit. Once only (409 the second time).
   */
  async function reverseRefund(trx: Tx, ctx: CommandContext, input: { refundId: string; on?: string; reason?: string; confirmOutsidePeriod?: boolean }) {
    if (!ID_RE.test(input.refundId)) throw notFound('Refund');
    const e: Record<string, string> = {};
    if (input.on !== undefined && !isDate(input.on)) e.on = 'must be a date (YYYY-MM-DD)';
    const reason = (input.reason ?? '').trim() || 'Refund reversed';
    if (reason.length > 500) e.reason = 'must be at most 500 characters';
    const first = await store.findRefund(trx, input.refundId);
    if (!first) throw notFound('Refund');
    const found = (await store.findReceipt(trx, first.receiptId))!;
    await store.lockClientBills(trx, found.clientId);
    await store.lockReceipt(trx, found.id);
    const refund = (await store.findRefund(trx, input.refundId))!;
    const receipt = (await store.findReceipt(trx, refund.receiptId))!;
    const on = input.on ?? latest(today(clock), refund.refundedOn);
    if (Object.keys(e).length === 0 && on < refund.refundedOn) e.on = `must be on or after the day it was refunded (${refund.refundedOn})`;
    if (Object.keys(e).length) throw invalid(e);
    if (refund.reversalJournalId !== null) throw conflict(`This refund was reversed already (on ${refund.reversedOn})`);
    const b = booksOf(trx, ctx);
    await checkCommandDate(b, on, input.confirmOutsidePeriod ?? false);
    const original = await store.findJournal(trx, refund.journalId);
    const r = await reverseJournal(b, refund.journalId, {
      sourceKey: `refund-reversal:${refund.id}`, sourceType: 'ledger.refund_reversed', date: on, mode: 'command', confirmOutsidePeriod: input.confirmOutsidePeriod ?? false,
      memo: `Reversal of ${original?.number ?? 'the refund'} (refund of receipt ${receipt.number} credit reversed: ${reason})`,
    });
    if (!r) throw conflict('This refund was reversed already');
    await store.markRefundReversed(trx, refund.id, r.id, on, reason);
    const left = receipt.unallocatedMinor + refund.amountMinor;
    assert(left <= receipt.amountMinor, 'credit never above the receipt');
    await store.updateReceipt(trx, receipt.id, { unallocatedMinor: left });
    await emit(b, 'ledger.credit_refunded', { refundId: refund.id, receiptId: receipt.id, receiptNumber: receipt.number, clientId: receipt.clientId, on, amountMinor: refund.amountMinor, currency: receipt.currency, unallocatedMinor: left, reversed: true });
    await audit(trx, clock, ctx, { action: 'ledger.refund_reversed', entityType: 'ledger_receipt', entityId: receipt.id, before: refund, after: { reversedOn: on, reason, journal: r.number, unallocatedMinor: left } });
    return (await store.findReceipt(trx, receipt.id))!;
  }

  async function writeOffOne(trx: Tx, ctx: CommandContext, bill: LedgerBill, amountMinor: number, on: string, reason: string, confirm: boolean, writeOffId?: string): Promise<void> {
    const b = booksOf(trx, ctx);
    const id = writeOffId ?? newId(clock);
    const { journal } = await postJournal(b, {
      prefix: 'WJ', sourceKey: `write-off:${id}`, sourceType: 'ledger.written_off', date: on, memo: `Write-off on bill ${bill.number}: ${reason}`, currency: bill.currency,
      mode: 'command', confirmOutsidePeriod: confirm, billId: bill.id, clientId: bill.clientId, matterId: bill.matterId,
      lines: [
        { account: { role: 'write_offs' }, amountMinor, memo: `Bill ${bill.number} written off` },
        { account: { role: 'debtors' }, amountMinor: 0 - amountMinor, memo: `Bill ${bill.number} written off`, billId: bill.id },
      ],
    });
    await store.insertWriteOff(trx, { id, billId: bill.id, amountMinor, writtenOffOn: on, reason, journalId: journal.id, reversalJournalId: null, createdAt: clock.now().toISOString(), createdBy: ctx.actorLabel });
    bill.writtenOffMinor += amountMinor;
    // Settled by the discount's date (paid, the small rest written off): the time-sensitive discount is honoured, as a
    // payment settling the bill in time honours it (undecided again if that payment is taken back: unhonourUnpaid).
    if (bill.discountStatus === 'pending' && bill.discountValidUntil !== null && on <= bill.discountValidUntil && store.outstandingOf(bill) === 0) {
      bill.discountStatus = 'honoured';
      bill.discountDecidedOn = on;
    }
    bill.updatedAt = clock.now().toISOString();
    await store.saveBill(trx, bill);
    await emitBalance(b, bill, on);
    await audit(trx, clock, ctx, { action: 'ledger.written_off', entityType: 'ledger_bill', entityId: bill.id, after: { amountMinor, on, reason, journal: journal.number } });
  }

  function writeOffInput(input: { on?: string; reason?: string }) {
    const e: Record<string, string> = {};
    const on = input.on ?? today(clock);
    if (!isDate(on)) e.on = 'must be a date (YYYY-MM-DD)';
    const reason = (input.reason ?? '').trim() || 'Small balance written off';
    if (reason.length > 500) e.reason = 'must be at most 500 characters';
    return { on, reason, e };
  }

  /**
   * The per-bill write-off limit is cumulative: everything written off the bill's current
   * posting (`writtenOffMinor`, reset when the bill's postings are reversed) plus this amount.
   * Callers hold the bill's row lock, so parallel write-offs are checked one after another.
   */
  function writeOffRefusal(bill: LedgerBill, amount: number, limitMinor: number): string | null {
    if (bill.writtenOffMinor + amount <= limitMinor) return null;
    const limit = formatMoney(limitMinor, bill.currency);
    if (bill.writtenOffMinor === 0) return `Write-offs are limited to small balances (at most ${limit} per bill); this is ${formatMoney(amount, bill.currency)}`;
    const left = Math.max(0, limitMinor - bill.writtenOffMinor);
    return `Write-offs are limited to small balances (at most ${limit} per bill, in all); ${formatMoney(bill.writtenOffMinor, bill.currency)} of bill ${bill.number} is already written off, so at most ${formatMoney(left, bill.currency)} more; this is ${formatMoney(amount, bill.currency)}`;
  }

  /** Write off a bill's small balance (default: all of it), up to the firm's write-off limit per bill (all its write-offs together). */
  async function writeOff(trx: Tx, ctx: CommandContext, input: { billId: string; writeOffId?: string; amountMinor?: number; on?: string; reason?: string; confirmOutsidePeriod?: boolean }) {
    const { on, reason, e } = writeOffInput(input);
    if (input.writeOffId !== undefined && !ID_RE.test(input.writeOffId)) e.writeOffId = 'must be an id';
    // The bill's row lock: write-offs (and receipts) of one bill go one at a time.
    await store.lockBill(trx, input.billId);
    const bill = await store.findBill(trx, input.billId);
    if (!bill) throw notFound('Bill');
    if (input.writeOffId !== undefined && Object.keys(e).length === 0) {
      // Idempotency key: the same write-off again (a repeated form) is the one already made.
      const already = await trx.selectFrom('ledger_write_off').select(['bill_id', 'amount_minor']).where('id', '=', input.writeOffId).executeTakeFirst();
      if (already) {
        if (String(already.bill_id) !== bill.id || (input.amountMinor !== undefined && Number(already.amount_minor) !== input.amountMinor)) {
          throw conflict('A different write-off was already made under this id: reload to write off again');
        }
        return bill;
      }
    }
    const outstanding = store.outstandingOf(bill);
    // "All of it" with nothing left (paid, or written off from another tab meanwhile): said as such, not as a bad amount.
    if (input.amountMinor === undefined && outstanding === 0 && bill.status === 'open' && Object.keys(e).length === 0) throw conflict(`Nothing is outstanding on bill ${bill.number}: nothing to write off`);
    const amount = input.amountMinor ?? outstanding;
    if (!Number.isSafeInteger(amount) || amount <= 0) e.amount = 'must be more than zero';
    if (Object.keys(e).length) throw invalid(e);
    if (bill.status !== 'open') throw conflict('The bill\'s postings were reversed: nothing to write off');
    if (on < bill.invoiceDate) throw invalid({ on: `must be on or after the bill's date (${bill.invoiceDate})` });
    if (amount > outstanding) throw conflict(`Only ${formatMoney(outstanding, bill.currency)} is outstanding on bill ${bill.number}`);
    // A closed period (or one outside the current period, unconfirmed) is the reason to give first.
    await checkCommandDate(booksOf(trx, ctx), on, input.confirmOutsidePeriod ?? false);
    // Not more than the bill owed on that day and every day since (its balance may have risen later: a discount reversed).
    const owedThen = await billFloorFrom(trx, bill.id, on);
    if (amount > owedThen) {
      const from = await billFloorDate(trx, bill.id, on, amount);
      throw invalid({ on: `bill ${bill.number} owed only ${formatMoney(Math.max(0, owedThen), bill.currency)} on ${on} (its balance rose after)${from ? `: write this off on or after ${from}` : ''}` });
    }
    const s = await periodSettings(booksOf(trx, ctx));
    const limit = writeOffLimitFor(s, bill.currency);
    if (limit === null) throw conflict(`No write-off limit is set for ${bill.currency} (the firm's limit is in ${s.currency}, and there are no exchange rates): set one for ${bill.currency} on the periods page first`);
    const refusal = writeOffRefusal(bill, amount, limit);
    if (refusal) throw conflict(refusal);
    await writeOffOne(trx, ctx, bill, amount, on, reason, input.confirmOutsidePeriod ?? false, input.writeOffId);
    return bill;
  }

  /**
   * Take one write-off back (the client paid after all, or it was made by mistake): its journal
   * reversed exactly (a WJ reversal: debtors debited, write-offs credited) on `on` (default
   * today; not before it was written off; period rules as for any posting), the bill owing that
   * much again. Once only: a second reversal is refused (409).
   */
  async function reverseWriteOff(trx: Tx, ctx: CommandContext, input: { writeOffId: string; on?: string; reason?: string; confirmOutsidePeriod?: boolean }) {
    const e: Record<string, string> = {};
    if (!ID_RE.test(input.writeOffId)) throw notFound('Write-off');
    if (input.on !== undefined && !isDate(input.on)) e.on = 'must be a date (YYYY-MM-DD)';
    const reason = (input.reason ?? '').trim() || 'Write-off reversed';
    if (reason.length > 500) e.reason = 'must be at most 500 characters';
    const first = await store.findWriteOff(trx, input.writeOffId);
    if (!first) throw notFound('Write-off');
    await store.lockBill(trx, first.billId);
    const w = (await store.findWriteOff(trx, input.writeOffId))!;
    const bill = await store.findBill(trx, w.billId);
    if (!bill) throw notFound('Bill');
    // Today, unless it was written off with a later date (review 58 F5: the default was refused then).
    const on = input.on ?? latest(today(clock), w.writtenOffOn);
    if (Object.keys(e).length === 0 && on < w.writtenOffOn) e.on = `must be on or after the day it was written off (${w.writtenOffOn})`;
    if (Object.keys(e).length) throw invalid(e);
    if (w.reversalJournalId !== null) throw conflict('This write-off was reversed already');
    if (bill.status !== 'open') throw conflict('The bill\'s postings were reversed (its write-offs with them)');
    const b = booksOf(trx, ctx);
    await checkCommandDate(b, on, input.confirmOutsidePeriod ?? false);
    const original = await store.findJournal(trx, w.journalId);
    const r = await reverseJournal(b, w.journalId, {
      sourceKey: `write-off-reversal:${w.id}`, sourceType: 'ledger.write_off_reversed', date: on, mode: 'command', confirmOutsidePeriod: input.confirmOutsidePeriod ?? false,
      memo: `Reversal of ${original?.number ?? 'the write-off'} (write-off on bill ${bill.number} reversed: ${reason})`,
    });
    if (!r) throw conflict('This write-off was reversed already');
    await store.markWriteOffReversed(trx, w.id, r.id);
    bill.writtenOffMinor -= w.amountMinor;
    assert(bill.writtenOffMinor >= 0, 'written off never below zero');
    // Owing again: a time-sensitive discount honoured because the bill was settled is undecided again.
    unhonourUnpaid(bill);
    bill.updatedAt = clock.now().toISOString();
    await store.saveBill(trx, bill);
    await emitBalance(b, bill, on);
    await audit(trx, clock, ctx, { action: 'ledger.write_off_reversed', entityType: 'ledger_write_off', entityId: w.id, before: w, after: { reversedOn: on, reason, journal: r.number } });
    return bill;
  }

  /**
   * Write off every open bill in the firm's currency whose outstanding balance is above zero and at most maxMinor (an
   * amount in the firm's currency: a bill in another currency is never measured against it, there being no exchange rates).
   */
  async function writeOffSmallBalances(trx: Tx, ctx: CommandContext, input: { maxMinor: number; on?: string; reason?: string; confirmOutsidePeriod?: boolean }) {
    const { on, reason, e } = writeOffInput(input);
    if (!Number.isSafeInteger(input.maxMinor) || input.maxMinor <= 0) e.max = 'must be more than zero';
    if (Object.keys(e).length) throw invalid(e);
    const s = await periodSettings(booksOf(trx, ctx));
    if (input.maxMinor > s.writeOffLimitMinor) throw conflict(`Write-offs are limited to ${formatMoney(s.writeOffLimitMinor, s.currency)} per bill`);
    await checkCommandDate(booksOf(trx, ctx), on, input.confirmOutsidePeriod ?? false);
    const done: LedgerBill[] = [];
    /** Small balances left alone: their client holds unallocated credit in the bill's currency (allocate it instead). */
    const heldCredit: { bill: LedgerBill; creditMinor: number }[] = [];
    /**
     * Left alone too (review 58 F8, F10): a bill whose time-sensitive discount expired by `on` undecided (the client
     * may owe the whole discount again: decide it first), and one with a write-off the bookkeeper took back (on purpose).
     */
    const leftAlone: { bill: LedgerBill; why: 'discount_expired' | 'write_off_reversed'; on: string }[] = [];
    const creditOf = new Map<string, Map<string, number>>();
    await trx.updateTable('ledger_bill').set({ updated_at: sql`updated_at` }).where('status', '=', 'open').execute();
    for (const bill of await store.listBills(trx, { status: 'open' })) {
      const o = store.outstandingOf(bill);
      // The same cumulative limit as one write-off: a bill already partly written off takes only what is left of it.
      if (bill.currency !== s.currency) continue;
      if (o > 0 && o <= input.maxMinor && bill.writtenOffMinor + o <= s.writeOffLimitMinor && bill.invoiceDate <= on && (await billFloorFrom(trx, bill.id, on)) >= o) {
        if (!creditOf.has(bill.clientId)) creditOf.set(bill.clientId, await store.clientCreditByCurrency(trx, bill.clientId));
        const credit = creditOf.get(bill.clientId)!.get(bill.currency) ?? 0;
        if (credit > 0) { heldCredit.push({ bill, creditMinor: credit }); continue; }
        if (bill.discountStatus === 'pending' && bill.discountValidUntil !== null && bill.discountValidUntil < on) {
          leftAlone.push({ bill, why: 'discount_expired', on: bill.discountValidUntil });
          continue;
        }
        // Only a write-off the bookkeeper took back (its reversal is the command's, not a revert's), of this posting.
        const reversed = await bookkeeperReversedWriteOff(trx, bill.id);
        if (reversed) { leftAlone.push({ bill, why: 'write_off_reversed', on: reversed }); continue; }
        await writeOffOne(trx, ctx, bill, o, on, reason, input.confirmOutsidePeriod ?? false);
        done.push(bill);
      }
    }
    return { written: done, heldCredit, leftAlone };
  }

  /**
   * The day of the latest write-off of the bill's current posting that was reversed by hand (reverseWriteOff), or null.
   * A write-off undone with the whole bill (revert, re-draft: review 59 F1) does not count, nor one of an earlier posting.
   */
  async function bookkeeperReversedWriteOff(trx: Tx, billId: string): Promise<string | null> {
    const posting = await trx.selectFrom('ledger_journal').select((eb) => eb.fn.max('posted_at').as('p'))
      .where('bill_id', '=', billId).where('prefix', '=', 'BJ').where('reverses_journal_id', 'is', null).executeTakeFirst() as { p: string | null } | undefined;
    if (!posting?.p) return null;
    const r = await trx.selectFrom('ledger_write_off as w').innerJoin('ledger_journal as wj', 'wj.id', 'w.journal_id').innerJoin('ledger_journal as rj', 'rj.id', 'w.reversal_journal_id')
      .select(['w.written_off_on']).where('w.bill_id', '=', billId).where('rj.source_type', '=', 'ledger.write_off_reversed').where('wj.posted_at', '>=', String(posting.p))
      .orderBy('w.written_off_on', 'desc').limit(1).executeTakeFirst() as { written_off_on: string } | undefined;
    return r ? String(r.written_off_on) : null;
  }

  /** Seed 003 way 2: decide a bill's time-sensitive discount (reverse it, or honour it). */
  async function decideDiscount(trx: Tx, ctx: CommandContext, input: { billId: string; decision: 'honour' | 'reverse'; on?: string; confirmOutsidePeriod?: boolean }) {
    const on = input.on ?? today(clock);
    if (!isDate(on)) throw invalid({ on: 'must be a date (YYYY-MM-DD)' });
    if (input.decision !== 'honour' && input.decision !== 'reverse') throw invalid({ decision: 'must be honour or reverse' });
    await store.lockBill(trx, input.billId);
    const bill = await store.findBill(trx, input.billId);
    if (!bill) throw notFound('Bill');
    if (bill.status !== 'open') throw conflict('The bill\'s postings were reversed');
    if (bill.discountStatus === 'none') throw conflict(`Bill ${bill.number} has no time-sensitive discount`);
    if (bill.discountStatus === 'reversed') throw conflict(`The discount on bill ${bill.number} was already reversed`);
    if (on < bill.invoiceDate) throw invalid({ on: `must be on or after the bill's date (${bill.invoiceDate})` });
    const b = booksOf(trx, ctx);
    const before = { ...bill };
    if (input.decision === 'reverse') await reverseDiscount(b, bill, on, `discount:${bill.id}:${newId(clock)}`, 'command', input.confirmOutsidePeriod ?? false);
    else {
      if (bill.discountStatus === 'honoured') throw conflict(`The discount on bill ${bill.number} is already honoured`);
      bill.discountStatus = 'honoured';
      bill.discountDecided = true;
      bill.discountDecidedOn = on;
    }
    bill.updatedAt = clock.now().toISOString();
    await store.saveBill(trx, bill);
    await emitBalance(b, bill, on);
    await audit(trx, clock, ctx, { action: input.decision === 'reverse' ? 'ledger.discount_reversed' : 'ledger.discount_honoured', entityType: 'ledger_bill', entityId: bill.id, before: { discountStatus: before.discountStatus }, after: { discountStatus: bill.discountStatus, on } });
    return bill;
  }

  /** The periods as they now are, for the modules that warn by them (billing). */
  async function emitPeriods(trx: Tx, ctx: CommandContext): Promise<void> {
    const current = await store.getSetting(trx, 'current_period');
    await emit(booksOf(trx, ctx), 'ledger.periods_changed', { currentPeriod: current ?? null, closedPeriods: [...await store.closedPeriods(trx)].sort() });
  }

  async function setPeriod(trx: Tx, ctx: CommandContext, input: { period: string; status: 'open' | 'closed' }) {
    if (!isPeriod(input.period)) throw invalid({ period: 'must be a month (YYYY-MM)' });
    if (input.status !== 'open' && input.status !== 'closed') throw invalid({ status: 'must be open or closed' });
    // Alone: no posting is between its check of the periods and its commit (it would land in a month closed meanwhile).
    await store.lockPeriods(trx, 'change');
    const s = await periodSettings({ trx, clock });
    if (input.status === 'closed' && input.period === s.current) throw conflict('The current period cannot be closed: move the current period on first');
    // A month not yet begun is not closed: anything dated in it would be refused (a person) or moved on (a bill) before it starts.
    if (input.status === 'closed' && input.period > today(clock).slice(0, 7)) throw conflict(`${input.period} has not begun: a month is closed once its postings are done`);
    const before = s.closed.has(input.period) ? 'closed' : 'open';
    // Already so: nothing changes, nothing is audited.
    if (before === input.status) return;
    await store.setPeriodStatus(trx, input.period, input.status, clock.now().toISOString(), ctx.actorLabel);
    await emitPeriods(trx, ctx);
    await audit(trx, clock, ctx, { action: input.status === 'closed' ? 'ledger.period_closed' : 'ledger.period_opened', entityType: 'ledger_period', entityId: input.period, before: { status: before }, after: { status: input.status } });
  }

  async function setCurrentPeriod(trx: Tx, ctx: CommandContext, period: string) {
    if (!isPeriod(period)) throw invalid({ period: 'must be a month (YYYY-MM)' });
    await store.lockPeriods(trx, 'change');
    const s = await periodSettings({ trx, clock });
    if (s.closed.has(period)) throw conflict(`The period ${period} is closed: open it first`);
    await store.setSetting(trx, 'current_period', period, clock.now().toISOString());
    await emitPeriods(trx, ctx);
    await audit(trx, clock, ctx, { action: 'ledger.current_period_set', entityType: 'ledger_setting', entityId: 'current_period', before: { period: s.current }, after: { period } });
  }

  /** The write-off limit per bill for bills in `currency` (default: the firm's currency), in its minor units. */
  async function setWriteOffLimit(trx: Tx, ctx: CommandContext, limitMinor: number, currency?: string) {
    const e: Record<string, string> = {};
    if (!Number.isSafeInteger(limitMinor) || limitMinor < 0 || limitMinor > MAX_AMOUNT_MINOR) e.limit = 'must be an amount of zero or more';
    if (currency !== undefined && !isCurrencyCode(currency)) e.currency = 'must be a currency code (three capital letters)';
    if (Object.keys(e).length) throw invalid(e);
    const s = await periodSettings({ trx, clock });
    const cur = currency ?? s.currency;
    const at = clock.now().toISOString();
    if (cur === s.currency) {
      await store.setSetting(trx, 'write_off_limit_minor', String(limitMinor), at);
      await audit(trx, clock, ctx, { action: 'ledger.write_off_limit_set', entityType: 'ledger_setting', entityId: 'write_off_limit_minor', before: { limitMinor: s.writeOffLimitMinor, currency: cur }, after: { limitMinor, currency: cur } });
      return;
    }
    const before = writeOffLimitFor(s, cur);
    const others = Object.fromEntries(Object.entries({ ...s.otherWriteOffLimits, [cur]: limitMinor }).sort(([a], [b]) => (a < b ? -1 : 1)));
    await store.setSetting(trx, OTHER_WRITE_OFF_LIMITS_KEY, JSON.stringify(others), at);
    await audit(trx, clock, ctx, { action: 'ledger.write_off_limit_set', entityType: 'ledger_setting', entityId: OTHER_WRITE_OFF_LIMITS_KEY, before: { limitMinor: before, currency: cur }, after: { limitMinor, currency: cur } });
  }

  async function changeAccount(trx: Tx, ctx: CommandContext, id: string, change: { name?: string; code?: string; active?: boolean }) {
    const a = await store.findAccount(trx, id);
    if (!a) throw notFound('Account');
    const e: Record<string, string> = {};
    if (change.name !== undefined && (change.name.trim() === '' || change.name.length > 120)) e.name = 'must be 1 to 120 characters';
    if (change.code !== undefined && !/^[0-9A-Za-z.-]{1,20}$/.test(change.code)) e.code = 'must be 1 to 20 letters, digits, dots or dashes';
    if (Object.keys(e).length) throw invalid(e);
    if (change.active === false && ['office_bank', 'debtors', 'unallocated', 'tax_payable', 'fees', 'fixed_charges', 'disbursements', 'interest', 'discounts', 'write_offs'].includes(a.role)) {
      throw conflict('The ledger posts to this account: it cannot be made inactive');
    }
    const next = { ...change, ...(change.name !== undefined ? { name: change.name.trim() } : {}) };
    // Saved as it was: nothing to change, nothing to audit.
    if ((next.name === undefined || next.name === a.name) && (next.code === undefined || next.code === a.code) && (next.active === undefined || next.active === a.active)) return a;
    try {
      await store.updateAccount(trx, id, next, clock.now().toISOString());
    } catch (err) {
      if (isUniqueViolation(err)) throw invalid({ code: 'is already used by another account' });
      throw err;
    }
    await audit(trx, clock, ctx, { action: 'ledger.account_changed', entityType: 'ledger_account', entityId: id, before: a, after: { ...a, ...next } });
    return (await store.findAccount(trx, id))!;
  }

  async function addAccount(trx: Tx, ctx: CommandContext, input: { code: string; name: string; type: Account['type'] }) {
    const e: Record<string, string> = {};
    if (!/^[0-9A-Za-z.-]{1,20}$/.test(input.code ?? '')) e.code = 'must be 1 to 20 letters, digits, dots or dashes';
    if (!input.name || input.name.trim() === '' || input.name.length > 120) e.name = 'must be 1 to 120 characters';
    if (!['asset', 'liability', 'equity', 'income', 'expense'].includes(input.type)) e.type = 'must be asset, liability, equity, income or expense';
    if (Object.keys(e).length) throw invalid(e);
    const a: Account = { id: newId(clock), code: input.code, name: input.name.trim(), type: input.type, role: 'other', parentCode: null, timekeeperId: null, chargeTypeId: null, active: true };
    try {
      await store.insertAccount(trx, a, clock.now().toISOString());
    } catch (err) {
      if (isUniqueViolation(err)) throw invalid({ code: 'is already used by another account' });
      throw err;
    }
    await audit(trx, clock, ctx, { action: 'ledger.account_added', entityType: 'ledger_account', entityId: a.id, after: a });
    return a;
  }

  const own = <A extends unknown[], R>(fn: (trx: Tx, ctx: CommandContext, ...args: A) => Promise<R>) =>
    (ctx: CommandContext, ...args: A): Promise<R> => inTransaction((trx) => fn(trx, ctx, ...args));

  return {
    /**
     * With a receipt id, a repeat racing the first past the client lock (a client with no
     * bills has no rows to lock) hits the receipt's unique keys and rolls back; it is then
     * answered, in a fresh transaction, with the receipt the first recorded.
     */
    recordReceipt: async (ctx: CommandContext, input: ReceiptInput): Promise<ReceiptResult> => {
      try {
        return await inTransaction((trx) => recordReceipt(trx, ctx, input));
      } catch (err) {
        if (input.receiptId === undefined || !ID_RE.test(input.receiptId)) throw err;
        const already = await store.findReceipt(db, input.receiptId);
        if (!already) throw err;
        return inTransaction((trx) => sameReceipt(trx, already, input));
      }
    },
    allocateCredit: own(allocateCredit),
    reverseReceipt: own(reverseReceipt),
    refundCredit: async (ctx: CommandContext, input: Parameters<typeof refundCredit>[2]) => {
      try {
        return await inTransaction((trx) => refundCredit(trx, ctx, input));
      } catch (err) {
        if (isUniqueViolation(err)) throw conflict('A refund was made under this form at the same moment: nothing more was refunded; reload to see it');
        throw err;
      }
    },
    reverseRefund: own(reverseRefund),
    writeOff: own(writeOff),
    reverseWriteOff: own(reverseWriteOff),
    writeOffSmallBalances: own(writeOffSmallBalances),
    decideDiscount: own(decideDiscount),
    setPeriod: own(setPeriod),
    setCurrentPeriod: own(setCurrentPeriod),
    setWriteOffLimit: own(setWriteOffLimit),
    changeAccount: own(changeAccount),
    addAccount: own(addAccount),
    /** Release a live allocation by hand (to re-allocate it elsewhere). */
    releaseAllocation: own(async (trx, ctx, allocationId: string, on?: string, confirmOutsidePeriod?: boolean) => {
      if (on !== undefined && !isDate(on)) throw invalid({ on: 'must be a date (YYYY-MM-DD)' });
      const first = await store.findAllocation(trx, allocationId);
      if (!first) throw notFound('Allocation');
      await store.lockBill(trx, first.billId);
      await store.lockReceipt(trx, first.receiptId);
      const alloc = (await store.findAllocation(trx, allocationId))!;
      if (alloc.releasedOn !== null) throw conflict(`The allocation was already released on ${alloc.releasedOn}`);
      // Today, unless the allocation is dated later (a receipt entered ahead of its date).
      const date = on ?? latest(today(clock), alloc.allocatedOn);
      if (date < alloc.allocatedOn) throw invalid({ on: `must be on or after the day it was allocated (${alloc.allocatedOn})` });
      const bill = await store.findBill(trx, alloc.billId);
      if (!bill || bill.status !== 'open') throw conflict('The bill\'s postings were reversed');
      const b = booksOf(trx, ctx);
      await checkCommandDate(b, date, confirmOutsidePeriod ?? false);
      await releaseAllocation(b, alloc, bill, date, `release:${allocationId}`, 'released', 'command', confirmOutsidePeriod ?? false);
      // The latest receipt still paying the bill (none: null), not the one just taken off it.
      bill.lastReceiptOn = await lastReceiptOf(trx, bill.id);
      unhonourUnpaid(bill);
      bill.updatedAt = clock.now().toISOString();
      await store.saveBill(trx, bill);
      await emitBalance(b, bill, date);
      await audit(trx, clock, ctx, { action: 'ledger.allocation_released', entityType: 'ledger_allocation', entityId: allocationId, before: alloc, after: { releasedOn: date } });
    }),
    clock,
    db,
  };
}

export type LedgerCommands = ReturnType<typeof createLedgerCommands>;
