/**
 * The books: posting journals and moving bill balances, inside the caller's transaction.
 * Used by the ledger's commands (receipts, write-offs, discounts) and by its event handlers
 * (bill postings), so both post the same way:
 *  - a journal is asserted balanced before it is written, checked again as written, numbered
 *    by prefix (BJ000001), posted once per source key (a second post of the same source
 *    returns the first), and announced (`ledger.journal_posted`) in the same transaction;
 *  - every change to a bill's balance publishes `ledger.bill_balance_changed` in the same
 *    transaction.
 */
import { sql } from 'kysely';
import { assert } from '../../shared/assert.ts';
import { audit } from '../../shared/audit.ts';
import type { Clock } from '../../shared/clock.ts';
import { isoDate } from '../../shared/clock.ts';
import type { Tx } from '../../shared/db.ts';
import type { CommandContext } from '../../shared/events.ts';
import { newId } from '../../shared/ids.ts';
import { appendEvent } from '../../shared/outbox.ts';
import { conflict } from '../../shared/web/errors.ts';
import type { BillData } from '../billing/events.ts';
import {
  allocateReceipt, assertBalanced, balanceFloorFrom, billPosting, checkPosting, creditFloorFrom, discountReversal, eventPeriod, firstDateWithFloor, firstOpenPeriod, periodOf, reverseLines,
} from './domain.ts';
import type { AccountRef, PostingLine } from './domain.ts';
import type { LedgerEvents } from './events.ts';
import * as store from './store.ts';
import type { Account, Allocation, JournalRow, LedgerBill, Receipt } from './store.ts';

export interface Books {
  readonly trx: Tx;
  readonly clock: Clock;
  readonly ctx: CommandContext;
}

export type Prefix = 'BJ' | 'RJ' | 'AJ' | 'WJ' | 'DJ';

export interface BookLine extends PostingLine {
  /** Set for lines copied from a stored journal (reversals): the account as posted. */
  accountId?: string;
  clientId?: string | null;
  matterId?: string | null;
}

export interface JournalInput {
  prefix: Prefix;
  sourceKey: string;
  sourceType: string;
  date: string;
  memo: string;
  currency: string;
  lines: readonly BookLine[];
  /** event: never refused (a closed period moves it on, with a note); command: refused per seed 004. */
  mode: 'event' | 'command';
  confirmOutsidePeriod?: boolean;
  billId?: string | null;
  receiptId?: string | null;
  clientId?: string | null;
  matterId?: string | null;
  reversesJournalId?: string | null;
  eventId?: string | null;
  /**
   * Events only: the lines count from this day when it is after `date` (a bill approved again whose previous posting
   * was undone only later, its pieces having sat in a closed period): the header keeps its date and says so in the note.
   */
  countsFrom?: string | null;
}

const emit = <K extends keyof LedgerEvents & string>(b: Books, type: K, payload: LedgerEvents[K]) => appendEvent<LedgerEvents, K>(b.trx, b.clock, b.ctx, type, payload);

export const today = (clock: Clock): string => isoDate(clock.now());

// ---- settings --------------------------------------------------------------------------

export interface PeriodSettings {
  current: string;
  closed: Set<string>;
  policy: 'warn' | 'refuse';
  currency: string;
  /** The write-off limit per bill, in the firm's currency. */
  writeOffLimitMinor: number;
  /** Limits set for bills in other currencies, each in its own minor units (none: such bills are not written off). */
  otherWriteOffLimits: Record<string, number>;
}

/** The ledger setting holding the write-off limits of currencies other than the firm's (a JSON object of code to minor units). */
export const OTHER_WRITE_OFF_LIMITS_KEY = 'write_off_limits_other_json';

/**
 * The write-off limit per bill for a bill in `currency`: the firm's limit in its own currency,
 * the limit set for another currency, or null when none is (there being no exchange rates,
 * the firm's limit says nothing about a bill in yen).
 */
export function writeOffLimitFor(s: Pick<PeriodSettings, 'currency' | 'writeOffLimitMinor' | 'otherWriteOffLimits'>, currency: string): number | null {
  if (currency === s.currency) return s.writeOffLimitMinor;
  return Object.hasOwn(s.otherWriteOffLimits, currency) ? s.otherWriteOffLimits[currency]! : null;
}

export async function periodSettings(b: Pick<Books, 'trx' | 'clock'>): Promise<PeriodSettings> {
  const current = (await store.getSetting(b.trx, 'current_period')) ?? periodOf(today(b.clock));
  const firm = JSON.parse((await store.getSetting(b.trx, 'firm')) ?? '{}') as { postingOutsideCurrentPeriod?: 'warn' | 'refuse'; currency?: string };
  const limit = Number((await store.getSetting(b.trx, 'write_off_limit_minor')) ?? 5_000);
  const others = JSON.parse((await store.getSetting(b.trx, OTHER_WRITE_OFF_LIMITS_KEY)) ?? '{}') as Record<string, number>;
  return { current, closed: await store.closedPeriods(b.trx), policy: firm.postingOutsideCurrentPeriod ?? 'warn', currency: firm.currency ?? 'USD', writeOffLimitMinor: limit, otherWriteOffLimits: others };
}

/** Refuse (409) a person's posting into a closed period, or outside the current one when the firm refuses (or it is not confirmed). */
export async function checkCommandDate(b: Books, date: string, confirmed: boolean): Promise<string | null> {
  const s = await periodSettings(b);
  const c = checkPosting(date, s.current, s.closed, s.policy, confirmed);
  if (!c.ok) throw conflict(c.reason);
  return c.warning;
}

// ---- accounts --------------------------------------------------------------------------

/** The account a reference posts to; a timekeeper's or charge type's sub-account is opened on first use. */
export async function accountFor(b: Pick<Books, 'trx' | 'clock'>, ref: AccountRef): Promise<Account> {
  const at = b.clock.now().toISOString();
  if (ref.role === 'fee_timekeeper' || ref.role === 'fixed_charge_type') {
    const isTk = ref.role === 'fee_timekeeper';
    const key = isTk ? ref.timekeeperId : ref.chargeTypeId;
    const found = await store.findAccountBy(b.trx, isTk ? 'timekeeper_id' : 'charge_type_id', key);
    if (found) return found;
    const parent = isTk ? '4000' : '4100';
    const seq = await store.nextValue(b.trx, `account:${parent}`);
    const label = isTk ? await timekeeperLabel(b.trx, key) : await chargeTypeLabel(b.trx, key);
    const a: Account = {
      id: newId(b.clock), code: `${parent}.${String(seq).padStart(3, '0')}`, name: isTk ? `Professional fees: ${label}` : `Fixed charges: ${label}`,
      type: 'income', role: ref.role, parentCode: parent, timekeeperId: isTk ? key : null, chargeTypeId: isTk ? null : key, active: true,
    };
    await store.insertAccount(b.trx, a, at);
    return a;
  }
  const found = await store.findAccountBy(b.trx, 'role', ref.role);
  assert(found, `the chart of accounts has no ${ref.role} account`);
  return found;
}

async function timekeeperLabel(trx: Tx, id: string): Promise<string> {
  const r = await trx.selectFrom('ledger_timekeeper').select(['initials', 'name']).where('id', '=', id).executeTakeFirst() as { initials: string; name: string } | undefined;
  return r ? `${r.initials} ${r.name}` : `timekeeper ${id.slice(0, 8)}`;
}

async function chargeTypeLabel(trx: Tx, id: string): Promise<string> {
  const r = await trx.selectFrom('ledger_charge_type').select(['code', 'name']).where('id', '=', id).executeTakeFirst() as { code: string; name: string } | undefined;
  return r ? `${r.code} ${r.name}` : `charge type ${id.slice(0, 8)}`;
}

// ---- journals --------------------------------------------------------------------------

/** Transactions already holding the periods lock for posting (taken once per transaction, held until it ends). */
const periodsLocked = new WeakSet<object>();

/** Post a journal once per source key; returns it (and whether this call created it). */
export async function postJournal(b: Books, j: JournalInput): Promise<{ journal: JournalRow; created: boolean }> {
  const existing = await store.findJournalBySource(b.trx, j.sourceKey);
  if (existing) return { journal: existing, created: false };
  assertBalanced(j.lines, `${j.prefix} ${j.memo}`);
  // The periods as read below stay as they are until this transaction commits (no period closes under a posting).
  if (!periodsLocked.has(b.trx)) {
    await store.lockPeriods(b.trx, 'post');
    periodsLocked.add(b.trx);
  }
  let period: string;
  let note: string | null;
  if (j.mode === 'event') {
    const s = await periodSettings(b);
    const from = j.countsFrom && j.countsFrom > j.date ? j.countsFrom : j.date;
    ({ period, note } = eventPeriod(from, s.current, s.closed));
    if (from !== j.date) note = `Dated ${j.date}: counts from ${from}, when the bill's previous posting was undone${note ? `; ${note}` : ''}`;
  } else {
    note = await checkCommandDate(b, j.date, j.confirmOutsidePeriod ?? false);
    period = periodOf(j.date);
  }
  const id = newId(b.clock);
  const number = `${j.prefix}${String(await store.nextValue(b.trx, `journal:${j.prefix}`)).padStart(6, '0')}`;
  // Moved out of a closed period: its lines count from the first day of the period it went to,
  // so reports by date never change a closed period; the header keeps its own date and the note.
  const counted = j.mode === 'event' && j.countsFrom && j.countsFrom > j.date ? j.countsFrom : j.date;
  const lineDate = periodOf(counted) === period ? counted : `${period}-01`;
  const rows: store.JournalLineRow[] = [];
  for (const [i, l] of j.lines.entries()) {
    const accountId = l.accountId ?? (await accountFor(b, l.account)).id;
    rows.push({
      journalId: id, lineNo: i + 1, accountId, debitMinor: l.amountMinor > 0 ? l.amountMinor : 0, creditMinor: l.amountMinor < 0 ? 0 - l.amountMinor : 0,
      date: lineDate, memo: l.memo.slice(0, 500), billId: l.billId ?? null, clientId: l.clientId ?? j.clientId ?? null, matterId: l.matterId ?? j.matterId ?? null,
      timekeeperId: l.timekeeperId ?? null,
    });
  }
  const totalMinor = rows.reduce((a, r) => a + r.debitMinor, 0);
  const journal: JournalRow = {
    id, number, prefix: j.prefix, sourceKey: j.sourceKey, sourceType: j.sourceType, date: j.date, period, memo: j.memo.slice(0, 500), note,
    currency: j.currency, totalMinor, billId: j.billId ?? null, receiptId: j.receiptId ?? null, clientId: j.clientId ?? null, matterId: j.matterId ?? null,
    reversesJournalId: j.reversesJournalId ?? null, eventId: j.eventId ?? null, postedAt: b.clock.now().toISOString(), postedBy: b.ctx.actorLabel,
  };
  await store.insertJournal(b.trx, journal, rows);
  const written = await store.journalSums(b.trx, id);
  assert(written.debit === written.credit && written.debit === totalMinor, `journal ${number} was not written balanced`);
  await emit(b, 'ledger.journal_posted', {
    journalId: id, number, prefix: j.prefix, date: j.date, period, memo: journal.memo, currency: j.currency, totalMinor, billId: journal.billId,
    receiptId: journal.receiptId, reversesJournalId: journal.reversesJournalId, note,
  });
  await audit(b.trx, b.clock, b.ctx, { action: 'ledger.journal_posted', entityType: 'ledger_journal', entityId: id, after: { number, sourceKey: j.sourceKey, date: j.date, period, totalMinor, note } });
  return { journal, created: true };
}

/** Post the exact reversal of a stored journal (once: a journal is reversed at most once). */
export async function reverseJournal(b: Books, journalId: string, r: { sourceKey: string; sourceType: string; date: string; memo: string; mode: 'event' | 'command'; eventId?: string | null; confirmOutsidePeriod?: boolean }): Promise<JournalRow | null> {
  const original = await store.findJournal(b.trx, journalId);
  assert(original, `no journal ${journalId}`);
  if (await store.isReversed(b.trx, journalId)) return null;
  const lines = await store.journalLines(b.trx, journalId);
  const book: BookLine[] = reverseLines(lines.map((l) => ({
    // Each line says it is a reversal (review 58 F7: GL detail showed a write-off's reversal as "written off" again).
    account: { role: 'debtors' }, accountId: l.accountId, amountMinor: l.debitMinor - l.creditMinor, memo: `Reversed: ${l.memo}`.slice(0, 500), billId: l.billId,
    timekeeperId: l.timekeeperId, clientId: l.clientId, matterId: l.matterId,
  }))).map((l) => l as BookLine);
  const { journal } = await postJournal(b, {
    prefix: original.prefix as Prefix, sourceKey: r.sourceKey, sourceType: r.sourceType, date: r.date, memo: r.memo, currency: original.currency, lines: book,
    mode: r.mode, confirmOutsidePeriod: r.confirmOutsidePeriod, billId: original.billId, receiptId: original.receiptId, clientId: original.clientId,
    matterId: original.matterId, reversesJournalId: journalId, eventId: r.eventId ?? null,
  });
  return journal;
}

// ---- a bill's debtors by date ------------------------------------------------------------

/** A bill's debtors balance changes by date, from its journal lines (what the reports read as at any date). */
export async function billDebtorsChanges(trx: Tx, billId: string): Promise<{ date: string; amountMinor: number }[]> {
  const debtors = await store.findAccountBy(trx, 'role', 'debtors');
  assert(debtors, 'the chart of accounts has no debtors account');
  return store.billDebtorsByDate(trx, debtors.id, billId);
}

/**
 * The most that can be taken off a bill's debtors (paid, allocated, written off) on `on`: the
 * least its balance stands at on that day and every day since. A bill whose balance rose later
 * (a discount reversed after that day) did not owe the rise then: taking it off on `on` would
 * leave the bill overpaid, below zero, as at the days between.
 */
export async function billFloorFrom(trx: Tx, billId: string, on: string): Promise<number> {
  return balanceFloorFrom(await billDebtorsChanges(trx, billId), on);
}

/** billFloorFrom of every bill of a client on `on` (one read), by bill id (a bill with no debtors lines: 0). */
export async function clientBillFloorsFrom(trx: Tx, clientId: string, on: string): Promise<(billId: string) => number> {
  const debtors = await store.findAccountBy(trx, 'role', 'debtors');
  assert(debtors, 'the chart of accounts has no debtors account');
  const changes = await store.clientBillsDebtorsByDate(trx, debtors.id, clientId);
  return (billId) => balanceFloorFrom(changes.get(billId) ?? [], on);
}

/** The first day from `on` on which `amountMinor` can be taken off the bill (see billFloorFrom); null when none. */
export async function billFloorDate(trx: Tx, billId: string, on: string, amountMinor: number): Promise<string | null> {
  return firstDateWithFloor(await billDebtorsChanges(trx, billId), on, amountMinor);
}

// ---- bills -----------------------------------------------------------------------------

export async function emitBalance(b: Books, bill: LedgerBill, occurredOn: string): Promise<void> {
  const open = bill.status === 'open';
  const totalMinor = open ? bill.totalMinor + bill.discountReversedMinor : 0;
  await emit(b, 'ledger.bill_balance_changed', {
    billId: bill.id, matterId: bill.matterId, clientId: bill.clientId, billNumber: bill.number, currency: bill.currency, totalMinor,
    paidMinor: open ? bill.paidMinor : 0,
    discountTakenMinor: open && (bill.discountStatus === 'pending' || bill.discountStatus === 'honoured' || bill.discountStatus === 'none') ? bill.discountDebtorsMinor : 0,
    writtenOffMinor: open ? bill.writtenOffMinor : 0, outstandingMinor: store.outstandingOf(bill), lastReceiptOn: bill.lastReceiptOn,
    discountStatus: bill.discountStatus, discountValidUntil: bill.discountValidUntil, status: bill.status, dueDate: bill.dueDate, occurredOn,
  });
}

async function saveAndEmit(b: Books, bill: LedgerBill, occurredOn: string): Promise<void> {
  bill.updatedAt = b.clock.now().toISOString();
  assert(store.outstandingOf(bill) >= 0 || bill.totalMinor < 0, `bill ${bill.number}: outstanding cannot go below zero`);
  await store.saveBill(b.trx, bill);
  await emitBalance(b, bill, occurredOn);
}

/** billing.bill_approved: post the billing journal (BJ) and open the bill on the debtors ledger. */
export async function postBill(b: Books, eventId: string, data: BillData): Promise<void> {
  await store.lockClientBills(b.trx, data.clientId);
  const existing = await store.findBill(b.trx, data.billId);
  if (existing?.status === 'open') return; // already posted: a bill is posted once until its postings are reversed
  assert(data.number !== null, 'an approved bill has a number');
  const posting = billPosting(data);
  // Approved again: the new posting counts no earlier than the day the previous one was undone (a revert with a piece in
  // a closed period undoes everything on the first open day after it), else both would show for a while.
  const undoneOn = existing ? await previousPostingUndoneOn(b, data.billId) : null;
  const countsFrom = undoneOn !== null && undoneOn > data.invoiceDate ? undoneOn : null;
  let journalId: string | null = null;
  if (posting.lines.length > 0) {
    const { journal } = await postJournal(b, {
      prefix: 'BJ', sourceKey: `${eventId}:bill`, sourceType: 'billing.bill_approved', date: data.invoiceDate, memo: `Bill ${data.number}`,
      currency: data.currency, lines: posting.lines, mode: 'event', billId: data.billId, clientId: data.clientId, matterId: data.matterId, eventId, countsFrom,
    });
    journalId = journal.id;
    // As posted, for the debtors reports as at a date while it stands (a later approval posts again: review 62 F1, F2).
    const counted = await b.trx.selectFrom('ledger_journal_line').select((eb) => eb.fn.min<string>('date').as('d')).where('journal_id', '=', journal.id).executeTakeFirstOrThrow() as { d: string | null };
    const t = data.totals;
    await store.insertBillPosting(b.trx, {
      journalId: journal.id, billId: data.billId, invoiceDate: data.invoiceDate, dueDate: data.dueDate, feesMinor: t.feesMinor, fixedChargesMinor: t.fixedChargesMinor,
      disbursementsMinor: t.disbursementsMinor, interestMinor: t.interestMinor, taxMinor: t.taxMinor, discountMinor: t.discountMinor, totalMinor: t.totalMinor,
      countsFrom: counted.d ?? data.invoiceDate, undoneOn: null,
    });
  }
  const timeSensitive = data.discount !== null && data.discount.validUntil !== null && posting.discountDebtorsMinor !== 0;
  // A time-sensitive discount decided before the bill was re-drafted or reverted keeps that decision when the bill comes back
  // with the same discount (seed 003: decided once): honoured stays honoured (a receipt after the expiry would otherwise
  // reverse it by default), and reversed is reversed again (else the re-allocated money would settle the discounted total).
  const sameDiscount = timeSensitive && existing !== null && existing.discountValidUntil === data.discount!.validUntil
    && existing.discountDebtorsMinor === posting.discountDebtorsMinor;
  const honoured = sameDiscount && existing!.discountStatus === 'honoured';
  const reversedBefore = sameDiscount && existing!.discountStatus === 'reversed';
  const bill: LedgerBill = {
    id: data.billId, matterId: data.matterId, clientId: data.clientId, fileNumber: data.fileNumber, number: data.number, currency: data.currency,
    status: 'open', produced: data.status === 'finalised', invoiceDate: data.invoiceDate, dueDate: data.dueDate, feesMinor: data.totals.feesMinor,
    fixedChargesMinor: data.totals.fixedChargesMinor, disbursementsMinor: data.totals.disbursementsMinor, interestMinor: data.totals.interestMinor,
    taxMinor: data.totals.taxMinor, discountMinor: data.totals.discountMinor, totalMinor: data.totals.totalMinor,
    discountDebtorsMinor: posting.discountDebtorsMinor, discountValidUntil: timeSensitive ? data.discount!.validUntil : null,
    discountStatus: timeSensitive ? (honoured ? 'honoured' : 'pending') : 'none', discountDecided: honoured && existing!.discountDecided,
    // Honoured again as it was: on the day it was (a reversal again sets its own day below).
    discountDecidedOn: honoured ? existing!.discountDecidedOn : null,
    discountReversedMinor: 0, paidMinor: 0, writtenOffMinor: 0, lastReceiptOn: null,
    postingJournalId: journalId, linesJson: JSON.stringify({ lines: data.lines, allocations: data.allocations }), updatedAt: '',
  };
  await markItems(b, data);
  if (reversedBefore) {
    // Again as it was: dated as the discount's last reversal was (never before the bill).
    const last = await lastDiscountReversal(b, data.billId);
    const on = [last ?? data.invoiceDate, data.invoiceDate, countsFrom ?? data.invoiceDate].sort().at(-1)!;
    await reverseDiscount(b, bill, on, `${eventId}:discount`, 'event');
  }
  await saveAndEmit(b, bill, data.invoiceDate);
  // The money released when the bill was last re-drafted or reverted goes back to it, from the same receipts' credit:
  // only what that reversal released (earlier cycles' releases were re-allocated and released again since), dated no
  // earlier than the receipt, the allocation it restores, or the bill's own date, and never on a day that money was
  // paying another bill (then on the day it last came back).
  for (const r of await lastReleased(b, data.billId)) {
    const receipt = await store.findReceipt(b.trx, r.receiptId);
    if (!receipt || receipt.status !== 'posted' || receipt.unallocatedMinor === 0) continue;
    const current = (await store.findBill(b.trx, data.billId))!;
    const amount = Math.min(r.amountMinor, receipt.unallocatedMinor, store.outstandingOf(current));
    if (amount <= 0) continue;
    // Its allocations and refunds: the credit's ups and downs by date.
    const allocs = await store.creditMovements(b.trx, receipt.id);
    let on = [receipt.receivedOn, r.allocatedOn, data.invoiceDate, countsFrom ?? data.invoiceDate].sort().at(-1)!;
    if (creditFloorFrom(receipt.amountMinor, allocs, on) < amount) {
      on = [on, ...allocs.flatMap((a) => [a.allocatedOn, ...(a.releasedOn ? [a.releasedOn] : [])])].sort().at(-1)!;
    }
    // Nor on a day the bill owed less than that (its balance rose later: a discount reversed again after the money's day).
    on = (await billFloorDate(b.trx, data.billId, on, amount)) ?? on;
    await allocateFromCredit(b, receipt, current, amount, on, `${eventId}:reallocate:${r.receiptId}`, 'event');
  }
  // Honoured by payment, but that payment did not all come back: undecided again.
  const after = (await store.findBill(b.trx, data.billId))!;
  if (unhonourUnpaid(after)) await saveAndEmit(b, after, data.invoiceDate);
}

/**
 * A time-sensitive discount honoured because the bill was paid in time is pending again once
 * the bill is no longer paid (a dishonoured cheque, a released allocation, a bill approved
 * again without all its money): the date rule applies to the next payment (seed 003: valid if
 * paid within the time). A person's decision to honour it stands. True when it changed.
 */
export function unhonourUnpaid(bill: LedgerBill): boolean {
  if (bill.discountStatus !== 'honoured' || bill.discountDecided || store.outstandingOf(bill) <= 0) return false;
  bill.discountStatus = 'pending';
  bill.discountDecidedOn = null;
  return true;
}

/** What the bill's last reversal (revert, re-draft or delete) released, per receipt (amount, and the latest date it had been allocated on). */
async function lastReleased(b: Books, billId: string): Promise<{ receiptId: string; amountMinor: number; allocatedOn: string }[]> {
  // Every reversal reverses the billing journal, under its event (source key `<event id>:reverse:<journal>`): the latest is the last reversal.
  const last = await b.trx.selectFrom('ledger_journal').select(['source_key']).where('bill_id', '=', billId).where('prefix', '=', 'BJ')
    .where('reverses_journal_id', 'is not', null).orderBy(sql`length(number)`, 'desc').orderBy('number', 'desc').limit(1).executeTakeFirst() as { source_key: string } | undefined;
  if (!last || !last.source_key.includes(':reverse:')) return [];
  const eventId = last.source_key.slice(0, last.source_key.indexOf(':reverse:'));
  const rows = await b.trx.selectFrom('ledger_allocation as a').innerJoin('ledger_journal as j', 'j.id', 'a.release_journal_id')
    .select(['a.receipt_id', 'a.amount_minor', 'a.allocated_on'])
    .where('a.bill_id', '=', billId).where('a.release_reason', '=', 'bill_reversed').where('j.source_key', 'like', `${eventId}:release:%`)
    .execute() as { receipt_id: string; amount_minor: unknown; allocated_on: string }[];
  const out = new Map<string, { receiptId: string; amountMinor: number; allocatedOn: string }>();
  for (const r of rows) {
    const o = out.get(r.receipt_id) ?? { receiptId: r.receipt_id, amountMinor: 0, allocatedOn: r.allocated_on };
    o.amountMinor += Number(r.amount_minor);
    if (r.allocated_on > o.allocatedOn) o.allocatedOn = r.allocated_on;
    out.set(r.receipt_id, o);
  }
  return [...out.values()];
}

/**
 * The latest day one of the bill's billing journals (BJ) was undone from (its reversal's lines), when that is after the day
 * it counted from (it was shown for a while, until then); null when none was.
 */
async function previousPostingUndoneOn(b: Books, billId: string): Promise<string | null> {
  const rows = await b.trx.selectFrom('ledger_journal as r').innerJoin('ledger_journal_line as rl', 'rl.journal_id', 'r.id')
    .innerJoin('ledger_journal_line as ol', 'ol.journal_id', 'r.reverses_journal_id')
    .select((eb) => [eb.fn.max<string>('rl.date').as('undone'), eb.fn.min<string>('ol.date').as('counted')])
    .where('r.bill_id', '=', billId).where('r.prefix', '=', 'BJ').where('r.reverses_journal_id', 'is not', null)
    .groupBy('r.id').execute() as { undone: string; counted: string }[];
  return rows.filter((x) => String(x.counted) < String(x.undone)).map((x) => String(x.undone)).sort().at(-1) ?? null;
}

/** The date of the bill's latest discount reversal (DJ) that is not itself a reversal; null when there is none. */
async function lastDiscountReversal(b: Books, billId: string): Promise<string | null> {
  const r = await b.trx.selectFrom('ledger_journal').select(['date']).where('bill_id', '=', billId).where('prefix', '=', 'DJ')
    .where('reverses_journal_id', 'is', null).orderBy(sql`length(number)`, 'desc').orderBy('number', 'desc').limit(1).executeTakeFirst() as { date: string } | undefined;
  return r?.date ?? null;
}

async function markItems(b: Books, data: BillData): Promise<void> {
  for (const i of data.items) {
    await b.trx.insertInto('ledger_wip_billed').values({ item_id: i.id, bill_id: data.billId })
      .onConflict((oc) => oc.column('item_id').doUpdateSet({ bill_id: data.billId })).execute();
  }
}

/** billing.bill_finalised: the bill was produced (no posting: it was posted on approval). */
export async function markProduced(b: Books, data: BillData): Promise<void> {
  const bill = await store.findBill(b.trx, data.billId);
  if (!bill || bill.status !== 'open' || bill.produced) return;
  await store.saveBill(b.trx, { ...bill, produced: true, updatedAt: b.clock.now().toISOString() });
}

/**
 * billing.bill_reverted / bill_redrafted / bill_deleted: undo everything on the bill, exactly:
 * its receipts are released to the receipts' credit (to allocate again), its write-offs and
 * discount reversals are reversed, and its billing journal is reversed. "Revert un-posts"
 * (DOMAIN.md): each undoing is dated as what it undoes was (a journal's reversal on the
 * journal's date, an allocation's release on the day it was allocated), so at every date the
 * books show the bill once or not at all, never its old posting beside a re-approved one. A
 * date in a closed period moves to the first open one, as every event's posting does.
 */
export async function reverseBill(b: Books, eventId: string, eventType: string, data: BillData, reversed: BillData, on: string): Promise<void> {
  await store.lockClientBills(b.trx, data.clientId);
  const bill = await store.findBill(b.trx, data.billId);
  if (!bill || bill.status !== 'open') return;
  const why = eventType.replace('billing.bill_', '');
  const live = await store.allocations(b.trx, { billId: bill.id, live: true });
  const journals = await b.trx.selectFrom('ledger_journal').select(['id', 'prefix', 'number']).where('bill_id', '=', bill.id)
    .where('prefix', 'in', ['BJ', 'DJ', 'WJ']).where('reverses_journal_id', 'is', null).orderBy('posted_at', 'desc').orderBy('number', 'desc').execute() as { id: string; prefix: string; number: string }[];
  // Each piece is undone on the date its lines count from (a journal moved out of a closed period counts from the period it went to).
  const lineDate = async (journalId: string): Promise<string> => {
    const r = await b.trx.selectFrom('ledger_journal_line').select((eb) => eb.fn.min<string>('date').as('d')).where('journal_id', '=', journalId).executeTakeFirstOrThrow() as { d: string | null };
    assert(r.d !== null, `journal ${journalId} has lines`);
    return r.d;
  };
  const pieces: ({ kind: 'allocation'; a: Allocation; date: string } | { kind: 'journal'; j: (typeof journals)[number]; date: string })[] = [];
  for (const a of live) pieces.push({ kind: 'allocation', a, date: await lineDate(a.journalId) });
  for (const j of journals) pieces.push({ kind: 'journal', j, date: await lineDate(j.id) });
  // A piece in a closed period cannot be undone there: it is undone on the first day of the next open period, and so is
  // every piece before that day (else the books would show, for a while, part of the bill undone and part not).
  const s = await periodSettings(b);
  let movedTo: string | null = null;
  const notBefore = (d: string) => {
    const period = periodOf(d);
    const to = s.closed.has(period) ? `${firstOpenPeriod(period, s.closed)}-01` : d;
    if (movedTo === null || to > movedTo) movedTo = to;
  };
  for (const p of pieces) if (s.closed.has(periodOf(p.date))) notBefore(p.date);
  // A piece of this posting already undone on a later day than its own (a write-off reversed, an allocation released
  // by hand or by its receipt's reversal) shows on the bill between the two days. Undoing the bill before the later
  // one would leave that piece alone on it then (the bill below zero as at those days, review 58 F2): so the bill is
  // undone on that day, every piece with it, and a re-approval counts from it (previousPostingUndoneOn).
  for (const d of await undoneLater(b, bill.id)) notBefore(d);
  const dateFor = (d: string): string => (movedTo !== null && d < movedTo ? movedTo : d);
  for (const p of pieces) {
    if (p.kind !== 'allocation') continue;
    await releaseAllocation(b, p.a, bill, dateFor(p.date), `${eventId}:release:${p.a.id}`, 'bill_reversed', 'event');
  }
  for (const p of pieces) {
    if (p.kind !== 'journal') continue;
    const j = p.j;
    const r = await reverseJournal(b, j.id, { sourceKey: `${eventId}:reverse:${j.id}`, sourceType: eventType, date: dateFor(p.date), memo: `Reversal of ${j.number} (bill ${reversed.number ?? bill.number} ${why})`, mode: 'event', eventId });
    if (r && j.prefix === 'WJ') {
      await b.trx.updateTable('ledger_write_off').set({ reversal_journal_id: r.id }).where('journal_id', '=', j.id).execute();
    }
    if (r && j.prefix === 'BJ') await store.markPostingUndone(b.trx, j.id, await lineDate(r.id));
  }
  await b.trx.deleteFrom('ledger_wip_billed').where('bill_id', '=', bill.id).execute();
  const after: LedgerBill = { ...bill, status: 'reversed', paidMinor: 0, writtenOffMinor: 0, discountReversedMinor: 0 };
  await saveAndEmit(b, after, on);
}

/**
 * The days on which pieces of the bill's current posting (its live BJ and what came after it) were undone later than
 * they counted from: reversed write-offs and discount reversals (WJ, DJ), allocations released. The bill showed each
 * such piece between the two days.
 */
async function undoneLater(b: Books, billId: string): Promise<string[]> {
  const current = await b.trx.selectFrom('ledger_journal as j').select(['j.posted_at']).where('j.bill_id', '=', billId).where('j.prefix', '=', 'BJ')
    .where('j.reverses_journal_id', 'is', null).where((eb) => eb.not(eb.exists(eb.selectFrom('ledger_journal as r').select('r.id').whereRef('r.reverses_journal_id', '=', 'j.id'))))
    .orderBy('j.posted_at', 'desc').limit(1).executeTakeFirst() as { posted_at: string } | undefined;
  if (!current) return [];
  const since = String(current.posted_at);
  const days: string[] = [];
  const pairs = await b.trx.selectFrom('ledger_journal as o').innerJoin('ledger_journal as r', 'r.reverses_journal_id', 'o.id')
    .innerJoin('ledger_journal_line as ol', 'ol.journal_id', 'o.id').innerJoin('ledger_journal_line as rl', 'rl.journal_id', 'r.id')
    .select((eb) => [eb.fn.min<string>('ol.date').as('counted'), eb.fn.max<string>('rl.date').as('undone')])
    .where('o.bill_id', '=', billId).where('o.prefix', 'in', ['DJ', 'WJ']).where('o.reverses_journal_id', 'is', null).where('o.posted_at', '>=', since)
    .groupBy('o.id').execute() as { counted: string; undone: string }[];
  for (const x of pairs) if (String(x.undone) > String(x.counted)) days.push(String(x.undone));
  const released = await b.trx.selectFrom('ledger_allocation as a').innerJoin('ledger_journal as j', 'j.id', 'a.journal_id')
    .innerJoin('ledger_journal_line as l', 'l.journal_id', 'a.journal_id')
    .innerJoin('ledger_journal_line as rl', 'rl.journal_id', 'a.release_journal_id')
    .select((eb) => [eb.fn.min<string>('l.date').as('counted'), eb.fn.max<string>('rl.date').as('undone')])
    .where('a.bill_id', '=', billId).where('a.released_on', 'is not', null).where('j.posted_at', '>=', since)
    .groupBy('a.id').execute() as { counted: string; undone: string }[];
  for (const x of released) if (String(x.undone) > String(x.counted)) days.push(String(x.undone));
  return days;
}

// ---- receipts and allocations -------------------------------------------------------------

/** Release a live allocation: the money goes back to the receipt's credit (AJ: debit debtors, credit unallocated). */
export async function releaseAllocation(b: Books, a: Allocation, bill: LedgerBill, on: string, sourceKey: string, reason: string, mode: 'event' | 'command', confirmOutsidePeriod = false): Promise<void> {
  const receipt = await store.findReceipt(b.trx, a.receiptId);
  assert(receipt, 'allocation without receipt');
  const { journal } = await postJournal(b, {
    prefix: 'AJ', sourceKey, sourceType: 'ledger.allocation_released', date: on, memo: `Receipt allocation to bill ${bill.number} released`,
    currency: bill.currency, mode, confirmOutsidePeriod, billId: bill.id, receiptId: a.receiptId, clientId: bill.clientId, matterId: bill.matterId,
    lines: [
      { account: { role: 'debtors' }, amountMinor: a.amountMinor, memo: `Bill ${bill.number}: allocation released`, billId: bill.id },
      // Whose credit came back, as the allocating line named it (review 53, L2).
      { account: { role: 'unallocated' }, amountMinor: 0 - a.amountMinor, memo: `Receipt ${receipt.number} credit back from bill ${bill.number}` },
    ],
  });
  await store.releaseAllocation(b.trx, a.id, on, journal.id, reason);
  await store.updateReceipt(b.trx, receipt.id, { unallocatedMinor: receipt.unallocatedMinor + a.amountMinor });
  bill.paidMinor -= a.amountMinor;
}

/** The latest receipt still allocated to the bill (its date), or null when none is: the balance's lastReceiptOn. */
export async function lastReceiptOf(trx: Tx, billId: string): Promise<string | null> {
  const r = await trx.selectFrom('ledger_allocation as a').innerJoin('ledger_receipt as r', 'r.id', 'a.receipt_id')
    .select((eb) => eb.fn.max<string>('r.received_on').as('d')).where('a.bill_id', '=', billId).where('a.released_on', 'is', null).executeTakeFirst() as { d: string | null } | undefined;
  return r?.d ?? null;
}

/** Allocate part of a receipt's credit to a bill (AJ: debit unallocated, credit debtors). */
export async function allocateFromCredit(b: Books, receipt: Receipt, bill: LedgerBill, amountMinor: number, on: string, sourceKey: string, mode: 'event' | 'command', confirmOutsidePeriod = false): Promise<void> {
  if (await store.findJournalBySource(b.trx, sourceKey)) return; // allocated already (the same source again)
  // Credit applied after a time-sensitive discount expired: the discount is reversed first, as a
  // receipt's allocation assumes unless told otherwise (seed 003); the credit then pays the full amount.
  if (bill.discountStatus === 'pending' && bill.discountValidUntil !== null && on > bill.discountValidUntil) {
    await reverseDiscount(b, bill, on, `${sourceKey}:discount`, mode, confirmOutsidePeriod);
  }
  assert(amountMinor > 0 && amountMinor <= receipt.unallocatedMinor, 'allocation exceeds the receipt\'s credit');
  assert(amountMinor <= store.outstandingOf(bill), 'allocation exceeds the bill\'s outstanding');
  const { journal, created } = await postJournal(b, {
    prefix: 'AJ', sourceKey, sourceType: 'ledger.credit_allocated', date: on, memo: `Receipt ${receipt.number} credit to bill ${bill.number}`,
    currency: bill.currency, mode, confirmOutsidePeriod, billId: bill.id, receiptId: receipt.id, clientId: bill.clientId, matterId: bill.matterId,
    lines: [
      { account: { role: 'unallocated' }, amountMinor, memo: `Receipt ${receipt.number} credit` },
      { account: { role: 'debtors' }, amountMinor: 0 - amountMinor, memo: `Bill ${bill.number}: receipt ${receipt.number}`, billId: bill.id },
    ],
  });
  if (!created) return;
  await store.insertAllocation(b.trx, { id: newId(b.clock), receiptId: receipt.id, billId: bill.id, amountMinor, allocatedOn: on, journalId: journal.id, releasedOn: null, releaseJournalId: null, releaseReason: null });
  await store.updateReceipt(b.trx, receipt.id, { unallocatedMinor: receipt.unallocatedMinor - amountMinor });
  receipt.unallocatedMinor -= amountMinor;
  bill.paidMinor += amountMinor;
  if (bill.lastReceiptOn === null || bill.lastReceiptOn < receipt.receivedOn) bill.lastReceiptOn = receipt.receivedOn;
  if (bill.discountStatus === 'pending' && store.outstandingOf(bill) === 0) {
    bill.discountStatus = 'honoured';
    bill.discountDecidedOn = on;
  }
  await saveAndEmit(b, bill, on);
}

/** Reverse a bill's time-sensitive discount (DJ: debit debtors, credit discounts allowed and tax payable). */
export async function reverseDiscount(b: Books, bill: LedgerBill, on: string, sourceKey: string, mode: 'event' | 'command', confirm = false): Promise<void> {
  assert(bill.status === 'open' && bill.discountStatus !== 'reversed' && bill.discountStatus !== 'none', 'no discount to reverse');
  const posted = JSON.parse(bill.linesJson ?? await store.billLinesJson(b.trx, bill.id)) as { lines: BillData['lines'] };
  const discountLines = posted.lines.filter((l) => l.kind === 'discount');
  const discountMinor = 0 - discountLines.reduce((s, l) => s + l.amountMinor, 0);
  const taxMinor = 0 - discountLines.reduce((s, l) => s + l.taxMinor, 0);
  assert(discountMinor + taxMinor === bill.discountDebtorsMinor, 'discount on debtors must match the bill');
  await postJournal(b, {
    prefix: 'DJ', sourceKey, sourceType: 'ledger.discount_reversed', date: on, memo: `Discount on bill ${bill.number} reversed`, currency: bill.currency,
    lines: discountReversal(bill.id, discountMinor, taxMinor), mode, confirmOutsidePeriod: confirm, billId: bill.id, clientId: bill.clientId, matterId: bill.matterId,
  });
  bill.discountStatus = 'reversed';
  bill.discountDecidedOn = on;
  bill.discountReversedMinor = bill.discountDebtorsMinor;
}

export { allocateReceipt };
