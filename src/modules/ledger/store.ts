/**
 * Kysely queries on the ledger's own tables (ledger_*). Nothing here reads another
 * module's tables.
 */
import { sql } from 'kysely';
import type { SelectQueryBuilder } from 'kysely';
import { assert } from '../../shared/assert.ts';
import type { Executor } from '../../shared/db.ts';
import { selectIn, writersSerialised } from '../../shared/sql.ts';
import * as clients from '../../shared/clients.ts';

export type AccountRole = 'office_bank' | 'debtors' | 'unallocated' | 'tax_payable' | 'fees' | 'fee_timekeeper' | 'fixed_charges' | 'fixed_charge_type' | 'disbursements' | 'interest' | 'discounts' | 'write_offs' | 'other';
export type AccountType = 'asset' | 'liability' | 'equity' | 'income' | 'expense';

export interface Account {
  id: string;
  code: string;
  name: string;
  type: AccountType;
  role: AccountRole;
  parentCode: string | null;
  timekeeperId: string | null;
  chargeTypeId: string | null;
  active: boolean;
}

const n = (v: unknown): number => Number(v ?? 0);

function toAccount(r: Record<string, unknown>): Account {
  return {
    id: String(r.id), code: String(r.code), name: String(r.name), type: r.type as AccountType, role: r.role as AccountRole,
    parentCode: (r.parent_code as string | null) ?? null, timekeeperId: (r.timekeeper_id as string | null) ?? null,
    chargeTypeId: (r.charge_type_id as string | null) ?? null, active: n(r.active) === 1,
  };
}

export async function listAccounts(ex: Executor): Promise<Account[]> {
  return (await ex.selectFrom('ledger_account').selectAll().orderBy('code').execute()).map(toAccount);
}

export async function findAccount(ex: Executor, id: string): Promise<Account | null> {
  const r = await ex.selectFrom('ledger_account').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? toAccount(r) : null;
}

export async function findAccountBy(ex: Executor, col: 'role' | 'timekeeper_id' | 'charge_type_id' | 'code', value: string): Promise<Account | null> {
  const r = await ex.selectFrom('ledger_account').selectAll().where(col, '=', value).orderBy('code').executeTakeFirst();
  return r ? toAccount(r) : null;
}

export async function insertAccount(ex: Executor, a: Account, at: string): Promise<void> {
  await ex.insertInto('ledger_account').values({
    id: a.id, code: a.code, name: a.name, type: a.type, role: a.role, parent_code: a.parentCode, timekeeper_id: a.timekeeperId,
    charge_type_id: a.chargeTypeId, active: a.active ? 1 : 0, created_at: at, updated_at: at,
  }).execute();
}

export async function updateAccount(ex: Executor, id: string, change: { name?: string; code?: string; active?: boolean }, at: string): Promise<void> {
  await ex.updateTable('ledger_account').set({
    ...(change.name !== undefined ? { name: change.name } : {}), ...(change.code !== undefined ? { code: change.code } : {}),
    ...(change.active !== undefined ? { active: change.active ? 1 : 0 } : {}), updated_at: at,
  }).where('id', '=', id).execute();
}

/** Next value of a named counter (journal prefixes, sub-account codes, receipt numbers), inside the caller's transaction. */
export async function nextValue(ex: Executor, name: string): Promise<number> {
  const r = await ex.insertInto('ledger_sequence').values({ name, last_value: 1 })
    .onConflict((oc) => oc.column('name').doUpdateSet({ last_value: sql`ledger_sequence.last_value + 1` }))
    .returning('last_value').executeTakeFirstOrThrow() as { last_value: unknown };
  return n(r.last_value);
}

// ---- settings and periods --------------------------------------------------------------

export async function getSetting(ex: Executor, key: string): Promise<string | null> {
  const r = await ex.selectFrom('ledger_setting').select('value').where('key', '=', key).executeTakeFirst() as { value: string } | undefined;
  return r?.value ?? null;
}

export async function setSetting(ex: Executor, key: string, value: string, at: string): Promise<void> {
  await ex.insertInto('ledger_setting').values({ key, value, updated_at: at })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value, updated_at: at })).execute();
}

export async function closedPeriods(ex: Executor): Promise<Set<string>> {
  const rows = await ex.selectFrom('ledger_period').select('period').where('status', '=', 'closed').execute() as { period: string }[];
  return new Set(rows.map((r) => r.period));
}

export async function listPeriodRows(ex: Executor): Promise<{ period: string; status: string; changedAt: string; changedBy: string }[]> {
  const rows = await ex.selectFrom('ledger_period').selectAll().orderBy('period', 'desc').execute();
  return rows.map((r) => ({ period: String(r.period), status: String(r.status), changedAt: String(r.changed_at), changedBy: String(r.changed_by) }));
}

export async function setPeriodStatus(ex: Executor, period: string, status: 'open' | 'closed', at: string, by: string): Promise<void> {
  await ex.insertInto('ledger_period').values({ period, status, changed_at: at, changed_by: by })
    .onConflict((oc) => oc.column('period').doUpdateSet({ status, changed_at: at, changed_by: by })).execute();
}

/**
 * Journal counts and totals per period. The total adds up only journals posted in `currency` (the firm's): a
 * bill in another currency posts in that currency, and its minor units are not the firm's (yen are not cents).
 */
export async function periodActivity(ex: Executor, currency: string): Promise<Map<string, { journals: number; totalMinor: number }>> {
  const rows = await ex.selectFrom('ledger_journal').select(['period'])
    .select((eb) => [eb.fn.countAll<number>().as('c'), sql<number>`sum(case when currency = ${currency} then total_debit_minor else 0 end)`.as('t')])
    .groupBy('period').execute() as { period: string; c: unknown; t: unknown }[];
  return new Map(rows.map((r) => [r.period, { journals: n(r.c), totalMinor: n(r.t) }]));
}

// ---- journals --------------------------------------------------------------------------

export interface JournalRow {
  id: string;
  number: string;
  prefix: string;
  sourceKey: string;
  sourceType: string;
  date: string;
  period: string;
  memo: string;
  note: string | null;
  currency: string;
  totalMinor: number;
  billId: string | null;
  receiptId: string | null;
  clientId: string | null;
  matterId: string | null;
  reversesJournalId: string | null;
  eventId: string | null;
  postedAt: string;
  postedBy: string;
}

export interface JournalLineRow {
  journalId: string;
  lineNo: number;
  accountId: string;
  debitMinor: number;
  creditMinor: number;
  date: string;
  memo: string;
  billId: string | null;
  clientId: string | null;
  matterId: string | null;
  timekeeperId: string | null;
}

function toJournal(r: Record<string, unknown>): JournalRow {
  return {
    id: String(r.id), number: String(r.number), prefix: String(r.prefix), sourceKey: String(r.source_key), sourceType: String(r.source_type),
    date: String(r.date), period: String(r.period), memo: String(r.memo), note: (r.note as string | null) ?? null, currency: String(r.currency),
    totalMinor: n(r.total_debit_minor), billId: (r.bill_id as string | null) ?? null, receiptId: (r.receipt_id as string | null) ?? null,
    clientId: (r.client_id as string | null) ?? null, matterId: (r.matter_id as string | null) ?? null,
    reversesJournalId: (r.reverses_journal_id as string | null) ?? null, eventId: (r.event_id as string | null) ?? null,
    postedAt: String(r.posted_at), postedBy: String(r.posted_by),
  };
}

function toLine(r: Record<string, unknown>): JournalLineRow {
  return {
    journalId: String(r.journal_id), lineNo: n(r.line_no), accountId: String(r.account_id), debitMinor: n(r.debit_minor), creditMinor: n(r.credit_minor),
    date: String(r.date), memo: String(r.memo), billId: (r.bill_id as string | null) ?? null, clientId: (r.client_id as string | null) ?? null,
    matterId: (r.matter_id as string | null) ?? null, timekeeperId: (r.timekeeper_id as string | null) ?? null,
  };
}

export async function findJournalBySource(ex: Executor, sourceKey: string): Promise<JournalRow | null> {
  const r = await ex.selectFrom('ledger_journal').selectAll().where('source_key', '=', sourceKey).executeTakeFirst();
  return r ? toJournal(r) : null;
}

export async function findJournal(ex: Executor, id: string): Promise<JournalRow | null> {
  const r = await ex.selectFrom('ledger_journal').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? toJournal(r) : null;
}

export async function journalLines(ex: Executor, journalId: string): Promise<JournalLineRow[]> {
  return (await ex.selectFrom('ledger_journal_line').selectAll().where('journal_id', '=', journalId).orderBy('line_no').execute()).map(toLine);
}

export async function insertJournal(ex: Executor, j: JournalRow, lines: readonly JournalLineRow[]): Promise<void> {
  await ex.insertInto('ledger_journal').values({
    id: j.id, number: j.number, prefix: j.prefix, source_key: j.sourceKey, source_type: j.sourceType, date: j.date, period: j.period,
    memo: j.memo, note: j.note, currency: j.currency, total_debit_minor: j.totalMinor, total_credit_minor: lines.reduce((a, l) => a + l.creditMinor, 0),
    bill_id: j.billId, receipt_id: j.receiptId, client_id: j.clientId, matter_id: j.matterId, reverses_journal_id: j.reversesJournalId,
    event_id: j.eventId, posted_at: j.postedAt, posted_by: j.postedBy,
  }).execute();
  for (let i = 0; i < lines.length; i += 200) {
    await ex.insertInto('ledger_journal_line').values(lines.slice(i, i + 200).map((l) => ({
      journal_id: l.journalId, line_no: l.lineNo, account_id: l.accountId, debit_minor: l.debitMinor, credit_minor: l.creditMinor, date: l.date,
      memo: l.memo, bill_id: l.billId, client_id: l.clientId, matter_id: l.matterId, timekeeper_id: l.timekeeperId,
    }))).execute();
  }
}

/** Debits and credits as stored for a journal (to check what was written). */
export async function journalSums(ex: Executor, journalId: string): Promise<{ debit: number; credit: number }> {
  const r = await ex.selectFrom('ledger_journal_line').where('journal_id', '=', journalId)
    .select((eb) => [eb.fn.sum<number>('debit_minor').as('d'), eb.fn.sum<number>('credit_minor').as('c')]).executeTakeFirstOrThrow() as { d: unknown; c: unknown };
  return { debit: n(r.d), credit: n(r.c) };
}

export async function listJournals(ex: Executor, f: { from?: string; to?: string; prefix?: string; billId?: string; limit: number; offset?: number }): Promise<JournalRow[]> {
  let q = ex.selectFrom('ledger_journal').selectAll();
  if (f.from) q = q.where('date', '>=', f.from);
  if (f.to) q = q.where('date', '<=', f.to);
  if (f.prefix) q = q.where('prefix', '=', f.prefix);
  // A bill's journals: every one with a line on it (receipt journals and their reversals name the bill on their lines only).
  if (f.billId) {
    const billId = f.billId;
    q = q.where((eb) => eb.or([eb('bill_id', '=', billId), eb('id', 'in', eb.selectFrom('ledger_journal_line').select('journal_id').where('bill_id', '=', billId))]));
  }
  return (await q.orderBy('posted_at', 'desc').orderBy('number', 'desc').limit(f.limit).offset(f.offset ?? 0).execute()).map(toJournal);
}

export async function notedJournals(ex: Executor, limit: number): Promise<JournalRow[]> {
  return (await ex.selectFrom('ledger_journal').selectAll().where((eb) => eb.or([eb('note', 'like', 'Dated % in closed period %'), eb('note', 'like', 'Dated %: counts from %')]))
    .orderBy('posted_at', 'desc').limit(limit).execute()).map(toJournal);
}

export async function isReversed(ex: Executor, journalId: string): Promise<boolean> {
  return (await ex.selectFrom('ledger_journal').select('id').where('reverses_journal_id', '=', journalId).executeTakeFirst()) !== undefined;
}

/**
 * Journals in one currency only (`currency` given): a firm's books add up minor units of one currency; a bill in
 * another currency posts its journals in that currency, and the firm-currency reports leave them out.
 */
const inCurrency = (ex: Executor, currency: string) => ex.selectFrom('ledger_journal').select('id').where('currency', '=', currency);

/** Balance (debits - credits) per account, optionally up to a date and/or from one, and in one currency. */
export async function accountBalances(ex: Executor, f: { from?: string; to?: string; currency?: string } = {}): Promise<Map<string, { debit: number; credit: number }>> {
  let q = ex.selectFrom('ledger_journal_line').select('account_id')
    .select((eb) => [eb.fn.sum<number>('debit_minor').as('d'), eb.fn.sum<number>('credit_minor').as('c')]);
  if (f.from) q = q.where('date', '>=', f.from);
  if (f.to) q = q.where('date', '<=', f.to);
  if (f.currency) q = q.where('journal_id', 'in', inCurrency(ex, f.currency));
  const rows = await q.groupBy('account_id').execute() as { account_id: string; d: unknown; c: unknown }[];
  return new Map(rows.map((r) => [r.account_id, { debit: n(r.d), credit: n(r.c) }]));
}

export async function linesBetween(ex: Executor, f: { from?: string; to?: string; accountId?: string; clientId?: string; currency?: string; limit: number }) {
  let q = ex.selectFrom('ledger_journal_line as l').innerJoin('ledger_journal as j', 'j.id', 'l.journal_id')
    .select(['l.journal_id', 'l.line_no', 'l.account_id', 'l.debit_minor', 'l.credit_minor', 'l.date', 'l.memo', 'l.bill_id', 'l.client_id', 'l.matter_id', 'l.timekeeper_id', 'j.number', 'j.period', 'j.posted_at']);
  if (f.from) q = q.where('l.date', '>=', f.from);
  if (f.to) q = q.where('l.date', '<=', f.to);
  if (f.accountId) q = q.where('l.account_id', '=', f.accountId);
  if (f.clientId) q = q.where('l.client_id', '=', f.clientId);
  if (f.currency) q = q.where('j.currency', '=', f.currency);
  // Within a day, in the order the journals were posted (a receipt before the allocation of its credit), not by
  // journal number: numbers run per prefix, so an AJ posted after an RJ numbers before it (review 53 L1).
  const rows = await q.orderBy('l.account_id').orderBy('l.date').orderBy('j.posted_at').orderBy('j.number').orderBy('l.line_no').limit(f.limit).execute();
  return rows.map((r) => ({ ...toLine(r), number: String(r.number), period: String(r.period), postedAt: String(r.posted_at) }));
}

/** Every currency the books hold amounts in (journals posted, or WIP recorded), sorted. */
export async function currenciesHeld(ex: Executor): Promise<string[]> {
  const rows = await ex.selectFrom('ledger_journal').select('currency').distinct()
    .union(ex.selectFrom('ledger_wip').select('currency').distinct()).execute() as { currency: string }[];
  return [...new Set(rows.map((r) => String(r.currency)))].sort();
}

/** The currencies journals were posted in other than `currency`, sorted. */
export async function otherCurrencies(ex: Executor, currency: string, clientId?: string | null): Promise<string[]> {
  let q = ex.selectFrom('ledger_journal').select('currency').distinct().where('currency', '<>', currency);
  // One client's report: the currencies of that client's postings only (review 62 F9).
  if (clientId) q = q.where('client_id', '=', clientId);
  const rows = await q.orderBy('currency').execute() as { currency: string }[];
  return rows.map((r) => String(r.currency));
}

/** Debtors (debit - credit) per bill, up to a date: the debtors ledger from the journals. */
export async function debtorsByBill(ex: Executor, debtorsAccountId: string, asOf?: string, currency?: string): Promise<Map<string, number>> {
  let q = ex.selectFrom('ledger_journal_line').select('bill_id')
    .select((eb) => [eb.fn.sum<number>('debit_minor').as('d'), eb.fn.sum<number>('credit_minor').as('c')])
    .where('account_id', '=', debtorsAccountId);
  if (asOf) q = q.where('date', '<=', asOf);
  if (currency) q = q.where('journal_id', 'in', inCurrency(ex, currency));
  const rows = await q.groupBy('bill_id').execute() as { bill_id: string | null; d: unknown; c: unknown }[];
  return new Map(rows.map((r) => [r.bill_id ?? '', n(r.d) - n(r.c)]));
}

/** One bill's debtors lines netted per date (debit - credit), in date order: its balance changes as the reports read them. */
export async function billDebtorsByDate(ex: Executor, debtorsAccountId: string, billId: string): Promise<{ date: string; amountMinor: number }[]> {
  const rows = await ex.selectFrom('ledger_journal_line').select('date')
    .select((eb) => [eb.fn.sum<number>('debit_minor').as('d'), eb.fn.sum<number>('credit_minor').as('c')])
    .where('account_id', '=', debtorsAccountId).where('bill_id', '=', billId).groupBy('date').orderBy('date').execute() as { date: string; d: unknown; c: unknown }[];
  return rows.map((r) => ({ date: String(r.date), amountMinor: n(r.d) - n(r.c) }));
}

/** billDebtorsByDate for every bill of a client at once (one query), by bill. */
export async function clientBillsDebtorsByDate(ex: Executor, debtorsAccountId: string, clientId: string): Promise<Map<string, { date: string; amountMinor: number }[]>> {
  const rows = await ex.selectFrom('ledger_journal_line').select(['bill_id', 'date'])
    .select((eb) => [eb.fn.sum<number>('debit_minor').as('d'), eb.fn.sum<number>('credit_minor').as('c')])
    .where('account_id', '=', debtorsAccountId).where('bill_id', 'in', ex.selectFrom('ledger_bill').select('id').where('client_id', '=', clientId))
    .groupBy(['bill_id', 'date']).orderBy('bill_id').orderBy('date').execute() as { bill_id: string; date: string; d: unknown; c: unknown }[];
  const out = new Map<string, { date: string; amountMinor: number }[]>();
  for (const r of rows) {
    const list = out.get(String(r.bill_id)) ?? [];
    list.push({ date: String(r.date), amountMinor: n(r.d) - n(r.c) });
    out.set(String(r.bill_id), list);
  }
  return out;
}

export interface BillDebtorsAsAt {
  /** Posted by the bill's billing journals (BJ: the bill, its discount, and any reversal of them). */
  billedMinor: number;
  /** Discount reversals (DJ). */
  discountReversedMinor: number;
  /** Receipts, allocations and releases (RJ, AJ) and write-offs (WJ), as a positive amount taken off. */
  receivedMinor: number;
  /** What the bill owed: billed + discount reversed - received. */
  outstandingMinor: number;
}

/**
 * Each bill's debtors lines up to a date, split by the kind of journal: what the debtors
 * ledger said about the bill as at that date (the same lines `debtorsByBill` sums).
 */
export async function debtorsByBillAsAt(ex: Executor, debtorsAccountId: string, asOf: string, currency?: string): Promise<Map<string, BillDebtorsAsAt>> {
  let q = ex.selectFrom('ledger_journal_line as l').innerJoin('ledger_journal as j', 'j.id', 'l.journal_id')
    .select(['l.bill_id', 'j.prefix'])
    .select((eb) => [eb.fn.sum<number>('l.debit_minor').as('d'), eb.fn.sum<number>('l.credit_minor').as('c')])
    .where('l.account_id', '=', debtorsAccountId).where('l.bill_id', 'is not', null).where('l.date', '<=', asOf);
  if (currency) q = q.where('j.currency', '=', currency);
  const rows = await q
    .groupBy(['l.bill_id', 'j.prefix']).execute() as { bill_id: string; prefix: string; d: unknown; c: unknown }[];
  const out = new Map<string, BillDebtorsAsAt>();
  for (const r of rows) {
    const b = out.get(r.bill_id) ?? { billedMinor: 0, discountReversedMinor: 0, receivedMinor: 0, outstandingMinor: 0 };
    const net = n(r.d) - n(r.c);
    if (r.prefix === 'BJ') b.billedMinor += net;
    else if (r.prefix === 'DJ') b.discountReversedMinor += net;
    else b.receivedMinor -= net;
    b.outstandingMinor += net;
    out.set(r.bill_id, b);
  }
  return out;
}

/** An account's balance (debits - credits) up to a date, per client (lines without a client under ''). */
export async function balanceByClient(ex: Executor, accountId: string, asOf: string, clientId?: string, currency?: string): Promise<Map<string, number>> {
  let q = ex.selectFrom('ledger_journal_line').select('client_id')
    .select((eb) => [eb.fn.sum<number>('debit_minor').as('d'), eb.fn.sum<number>('credit_minor').as('c')])
    .where('account_id', '=', accountId).where('date', '<=', asOf);
  if (clientId) q = q.where('client_id', '=', clientId);
  if (currency) q = q.where('journal_id', 'in', inCurrency(ex, currency));
  const rows = await q.groupBy('client_id').execute() as { client_id: string | null; d: unknown; c: unknown }[];
  return new Map(rows.map((r) => [r.client_id ?? '', n(r.d) - n(r.c)]));
}

// ---- locks -----------------------------------------------------------------------------

/**
 * Row locks taken first in a transaction that changes balances, so concurrent receipts,
 * allocations and bill reversals on the same client run one after the other. A no-op
 * update locks the rows on PostgreSQL; SQLite write transactions are serialised already.
 */
export async function lockClientBills(ex: Executor, clientId: string): Promise<void> {
  await ex.updateTable('ledger_bill').set({ updated_at: sql`updated_at` }).where('client_id', '=', clientId).execute();
}

export async function lockBill(ex: Executor, billId: string): Promise<void> {
  await ex.updateTable('ledger_bill').set({ updated_at: sql`updated_at` }).where('id', '=', billId).execute();
}

/** The Postgres advisory lock key class of the accounting periods (ledger postings against period changes). */
const PERIODS_LOCK_CLASS = 7_501;

/**
 * Postings hold the periods lock shared from the moment they read the periods until they commit; closing, reopening
 * or moving the current period holds it alone. So a period cannot be closed between a posting's check that it is open
 * and its commit (on Postgres, whose writers run side by side; SQLite runs one writer at a time).
 */
export async function lockPeriods(ex: Executor, mode: 'post' | 'change'): Promise<void> {
  if (writersSerialised(ex)) return;
  if (mode === 'post') await sql`select pg_advisory_xact_lock_shared(${PERIODS_LOCK_CLASS}, 0)`.execute(ex);
  else await sql`select pg_advisory_xact_lock(${PERIODS_LOCK_CLASS}, 0)`.execute(ex);
}

export async function lockReceipt(ex: Executor, receiptId: string): Promise<void> {
  await ex.updateTable('ledger_receipt').set({ status: sql`status` }).where('id', '=', receiptId).execute();
}

// ---- bills, receipts, allocations, write-offs -------------------------------------------

export interface LedgerBill {
  id: string;
  matterId: string;
  clientId: string;
  fileNumber: string;
  number: string;
  currency: string;
  status: 'open' | 'reversed';
  produced: boolean;
  invoiceDate: string;
  dueDate: string;
  feesMinor: number;
  fixedChargesMinor: number;
  disbursementsMinor: number;
  interestMinor: number;
  taxMinor: number;
  discountMinor: number;
  totalMinor: number;
  discountDebtorsMinor: number;
  discountValidUntil: string | null;
  discountStatus: 'none' | 'pending' | 'honoured' | 'reversed';
  /** True when a person decided the discount (honoured by decision); false when payment in time honoured it. */
  discountDecided: boolean;
  /** The day the discount was decided (honoured or reversed); null while undecided, or decided on a day not known (before it was kept). */
  discountDecidedOn: string | null;
  discountReversedMinor: number;
  paidMinor: number;
  writtenOffMinor: number;
  lastReceiptOn: string | null;
  postingJournalId: string | null;
  /**
   * The lines and fee allocation posted (JSON), as read with one bill (findBill); null when read
   * in a list (listBills: tens of kilobytes a bill, never needed there) and kept as they are when saved.
   */
  linesJson: string | null;
  updatedAt: string;
}

/**
 * Seed 003: once a time-sensitive discount has expired undecided, the debtor balance is
 * forecast at the undiscounted amount; the books change only when the discount is decided
 * (a receipt, Reverse or Honour, the next bill's prompt). The amount counted back on `asOf`.
 */
export function expiredDiscountMinor(b: Pick<LedgerBill, 'status' | 'discountStatus' | 'discountValidUntil' | 'discountDebtorsMinor' | 'discountDecidedOn'>, asOf: string): number {
  // Undecided as at that day: still pending, or decided only after it (review 62 F5: a later decision does not change an earlier statement).
  const undecidedThen = b.discountStatus === 'pending' || ((b.discountStatus === 'honoured' || b.discountStatus === 'reversed') && b.discountDecidedOn !== null && b.discountDecidedOn > asOf);
  return b.status === 'open' && undecidedThen && b.discountValidUntil !== null && b.discountValidUntil < asOf ? b.discountDebtorsMinor : 0;
}

/** How many bills are open with an amount outstanding (outstandingOf not zero), counted in SQL. */
export async function openBillCount(ex: Executor): Promise<number> {
  const r = await ex.selectFrom('ledger_bill').select((eb) => eb.fn.countAll().as('n')).where('status', '=', 'open')
    .where(sql`total_minor + discount_reversed_minor - paid_minor - written_off_minor`, '<>', 0).executeTakeFirst();
  return n(r?.n ?? 0);
}

export function outstandingOf(b: Pick<LedgerBill, 'status' | 'totalMinor' | 'discountReversedMinor' | 'paidMinor' | 'writtenOffMinor'>): number {
  if (b.status !== 'open') return 0;
  return b.totalMinor + b.discountReversedMinor - b.paidMinor - b.writtenOffMinor;
}

function toBill(r: Record<string, unknown>): LedgerBill {
  return {
    id: String(r.id), matterId: String(r.matter_id), clientId: String(r.client_id), fileNumber: String(r.file_number), number: String(r.number),
    currency: String(r.currency), status: r.status as LedgerBill['status'], produced: n(r.produced) === 1, invoiceDate: String(r.invoice_date),
    dueDate: String(r.due_date), feesMinor: n(r.fees_minor), fixedChargesMinor: n(r.fixed_charges_minor), disbursementsMinor: n(r.disbursements_minor),
    interestMinor: n(r.interest_minor), taxMinor: n(r.tax_minor), discountMinor: n(r.discount_minor), totalMinor: n(r.total_minor),
    discountDebtorsMinor: n(r.discount_debtors_minor), discountValidUntil: (r.discount_valid_until as string | null) ?? null,
    discountStatus: r.discount_status as LedgerBill['discountStatus'], discountDecided: n(r.discount_decided) === 1, discountDecidedOn: (r.discount_decided_on as string | null) ?? null, discountReversedMinor: n(r.discount_reversed_minor), paidMinor: n(r.paid_minor),
    writtenOffMinor: n(r.written_off_minor), lastReceiptOn: (r.last_receipt_on as string | null) ?? null,
    postingJournalId: (r.posting_journal_id as string | null) ?? null, linesJson: r.lines_json === undefined ? null : String(r.lines_json), updatedAt: String(r.updated_at),
  };
}

function billColumns(b: LedgerBill) {
  return {
    ...billStateColumns(b),
    lines_json: b.linesJson,
  };
}

/** Every column but the posted lines (which a saved bill read in a list leaves as they are). */
function billStateColumns(b: LedgerBill) {
  return {
    matter_id: b.matterId, client_id: b.clientId, file_number: b.fileNumber, number: b.number, currency: b.currency, status: b.status,
    produced: b.produced ? 1 : 0, invoice_date: b.invoiceDate, due_date: b.dueDate, fees_minor: b.feesMinor, fixed_charges_minor: b.fixedChargesMinor,
    disbursements_minor: b.disbursementsMinor, interest_minor: b.interestMinor, tax_minor: b.taxMinor, discount_minor: b.discountMinor,
    total_minor: b.totalMinor, discount_debtors_minor: b.discountDebtorsMinor, discount_valid_until: b.discountValidUntil,
    discount_status: b.discountStatus, discount_decided: b.discountDecided ? 1 : 0, discount_decided_on: b.discountDecidedOn, discount_reversed_minor: b.discountReversedMinor, paid_minor: b.paidMinor, written_off_minor: b.writtenOffMinor,
    last_receipt_on: b.lastReceiptOn, posting_journal_id: b.postingJournalId, updated_at: b.updatedAt,
  };
}

/** The columns listBills reads: all but lines_json. */
const BILL_LIST_COLUMNS = ['id', ...Object.keys(billStateColumns({} as LedgerBill))] as const;

/**
 * Insert or update a bill. Posted (its lines given): every column. Read in a list (linesJson
 * null): its state only, the lines posted kept; such a bill must already be on the ledger.
 */
export async function saveBill(ex: Executor, b: LedgerBill): Promise<void> {
  if (b.linesJson === null) {
    const r = await ex.updateTable('ledger_bill').set(billStateColumns(b)).where('id', '=', b.id).executeTakeFirst();
    assert(Number(r.numUpdatedRows) === 1, `bill ${b.id}: saved without its lines, it must be on the ledger already`);
    return;
  }
  const cols = billColumns(b);
  await ex.insertInto('ledger_bill').values({ id: b.id, ...cols }).onConflict((oc) => oc.column('id').doUpdateSet(cols)).execute();
}

/**
 * One posting of a bill (its BJ journal) as posted: its dates, the parts of its total, the day its debtors line
 * counts from and the day it was undone (null while it stands). The debtors reports as at a date describe the
 * posting that stood then (a bill approved again later has a newer one).
 */
export interface BillPosting {
  journalId: string; billId: string; invoiceDate: string; dueDate: string;
  feesMinor: number; fixedChargesMinor: number; disbursementsMinor: number; interestMinor: number; taxMinor: number; discountMinor: number; totalMinor: number;
  countsFrom: string; undoneOn: string | null;
}

/** Record a posting (once: a replayed event records nothing more). */
export async function insertBillPosting(ex: Executor, p: BillPosting): Promise<void> {
  await ex.insertInto('ledger_bill_posting').values({
    journal_id: p.journalId, bill_id: p.billId, invoice_date: p.invoiceDate, due_date: p.dueDate, fees_minor: p.feesMinor, fixed_charges_minor: p.fixedChargesMinor,
    disbursements_minor: p.disbursementsMinor, interest_minor: p.interestMinor, tax_minor: p.taxMinor, discount_minor: p.discountMinor, total_minor: p.totalMinor,
    counts_from: p.countsFrom, undone_on: p.undoneOn,
  }).onConflict((oc) => oc.column('journal_id').doNothing()).execute();
}

/** The posting of this BJ journal was undone (the bill reverted, re-drafted or deleted), counting from `on`. */
export async function markPostingUndone(ex: Executor, journalId: string, on: string): Promise<void> {
  await ex.updateTable('ledger_bill_posting').set({ undone_on: on }).where('journal_id', '=', journalId).where('undone_on', 'is', null).execute();
}

/** The postings of these bills, oldest first per bill. */
export async function postingsOf(ex: Executor, billIds: readonly string[]): Promise<Map<string, BillPosting[]>> {
  const out = new Map<string, BillPosting[]>();
  for (let i = 0; i < billIds.length; i += 1_000) {
    const rows = await ex.selectFrom('ledger_bill_posting').selectAll().where('bill_id', 'in', billIds.slice(i, i + 1_000)).orderBy('bill_id').orderBy('counts_from').orderBy('journal_id').execute();
    for (const r of rows) {
      const p: BillPosting = {
        journalId: String(r.journal_id), billId: String(r.bill_id), invoiceDate: String(r.invoice_date), dueDate: String(r.due_date),
        feesMinor: n(r.fees_minor), fixedChargesMinor: n(r.fixed_charges_minor), disbursementsMinor: n(r.disbursements_minor), interestMinor: n(r.interest_minor),
        taxMinor: n(r.tax_minor), discountMinor: n(r.discount_minor), totalMinor: n(r.total_minor), countsFrom: String(r.counts_from), undoneOn: r.undone_on === null ? null : String(r.undone_on),
      };
      const list = out.get(p.billId) ?? [];
      list.push(p);
      out.set(p.billId, list);
    }
  }
  return out;
}

/** Whether the ledger's copy of clients holds this id. */
export async function clientExists(ex: Executor, id: string): Promise<boolean> {
  return (await ex.selectFrom('ledger_client').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
}

/** A bill's posted lines and fee allocation (JSON), for one read in a list. */
export async function billLinesJson(ex: Executor, id: string): Promise<string> {
  const r = await ex.selectFrom('ledger_bill').select('lines_json').where('id', '=', id).executeTakeFirst();
  if (r === undefined) throw new Error(`bill ${id} is not on the ledger`);
  return String(r.lines_json);
}

export async function findBill(ex: Executor, id: string): Promise<LedgerBill | null> {
  const r = await ex.selectFrom('ledger_bill').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? toBill(r) : null;
}

/**
 * Bills without their posted lines (linesJson null: see saveBill, billLinesJson). `expiredBy`:
 * only those whose time-sensitive discount expired before the date undecided (expiredDiscountMinor).
 */
export async function listBills(ex: Executor, f: { clientId?: string; matterId?: string; status?: 'open' | 'reversed'; expiredBy?: string; limit?: number } = {}): Promise<LedgerBill[]> {
  let q = ex.selectFrom('ledger_bill').select([...BILL_LIST_COLUMNS]);
  if (f.clientId) q = q.where('client_id', '=', f.clientId);
  if (f.matterId) q = q.where('matter_id', '=', f.matterId);
  if (f.status) q = q.where('status', '=', f.status);
  if (f.expiredBy !== undefined) {
    q = q.where('status', '=', 'open').where('discount_status', '=', 'pending').where('discount_valid_until', '<', f.expiredBy).where('discount_debtors_minor', '<>', 0);
  }
  return (await q.orderBy('invoice_date').orderBy('number').limit(f.limit ?? 100_000).execute()).map(toBill);
}

export interface Receipt {
  id: string;
  number: string;
  clientId: string;
  billId: string | null;
  receivedOn: string;
  amountMinor: number;
  currency: string;
  method: string;
  reference: string | null;
  allocationOrder: string;
  unallocatedMinor: number;
  status: 'posted' | 'reversed';
  journalId: string;
  reversalJournalId: string | null;
  reversedOn: string | null;
  reversalReason: string | null;
  createdAt: string;
  createdBy: string;
}

function toReceipt(r: Record<string, unknown>): Receipt {
  return {
    id: String(r.id), number: String(r.number), clientId: String(r.client_id), billId: (r.bill_id as string | null) ?? null, receivedOn: String(r.received_on),
    amountMinor: n(r.amount_minor), currency: String(r.currency), method: String(r.method), reference: (r.reference as string | null) ?? null,
    allocationOrder: String(r.allocation_order), unallocatedMinor: n(r.unallocated_minor), status: r.status as Receipt['status'], journalId: String(r.journal_id),
    reversalJournalId: (r.reversal_journal_id as string | null) ?? null, reversedOn: (r.reversed_on as string | null) ?? null,
    reversalReason: (r.reversal_reason as string | null) ?? null, createdAt: String(r.created_at), createdBy: String(r.created_by),
  };
}

export async function insertReceipt(ex: Executor, r: Receipt): Promise<void> {
  await ex.insertInto('ledger_receipt').values({
    id: r.id, number: r.number, client_id: r.clientId, bill_id: r.billId, received_on: r.receivedOn, amount_minor: r.amountMinor, currency: r.currency,
    method: r.method, reference: r.reference, allocation_order: r.allocationOrder, unallocated_minor: r.unallocatedMinor, status: r.status,
    journal_id: r.journalId, reversal_journal_id: r.reversalJournalId, reversed_on: r.reversedOn, reversal_reason: r.reversalReason,
    created_at: r.createdAt, created_by: r.createdBy,
  }).execute();
}

export async function updateReceipt(ex: Executor, id: string, set: { unallocatedMinor?: number; status?: 'reversed'; reversalJournalId?: string; reversedOn?: string; reversalReason?: string }): Promise<void> {
  await ex.updateTable('ledger_receipt').set({
    ...(set.unallocatedMinor !== undefined ? { unallocated_minor: set.unallocatedMinor } : {}),
    ...(set.status ? { status: set.status } : {}),
    ...(set.reversalJournalId ? { reversal_journal_id: set.reversalJournalId } : {}),
    ...(set.reversedOn ? { reversed_on: set.reversedOn } : {}),
    ...(set.reversalReason ? { reversal_reason: set.reversalReason } : {}),
  }).where('id', '=', id).execute();
}

export async function findReceipt(ex: Executor, id: string): Promise<Receipt | null> {
  const r = await ex.selectFrom('ledger_receipt').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? toReceipt(r) : null;
}

export interface ReceiptFilter {
  clientId?: string;
  withCredit?: boolean;
  /** Received on or after / on or before (YYYY-MM-DD). */
  from?: string;
  to?: string;
  /** Part of the receipt's number or reference, any case. */
  text?: string;
}

function receiptsWhere<Q extends SelectQueryBuilder<any, any, any>>(q: Q, f: ReceiptFilter): Q {
  let out = q;
  if (f.clientId) out = out.where('client_id', '=', f.clientId) as Q;
  if (f.withCredit) out = out.where('unallocated_minor', '>', 0).where('status', '=', 'posted') as Q;
  if (f.from) out = out.where('received_on', '>=', f.from) as Q;
  if (f.to) out = out.where('received_on', '<=', f.to) as Q;
  if (f.text) {
    // As typed: % and _ are searched for, not wildcards.
    const like = `%${clients.literalLike(f.text)}%`;
    out = out.where((eb: any) => eb.or([
      sql<boolean>`lower(number) like ${like} escape '\\'`, sql<boolean>`lower(coalesce(reference, '')) like ${like} escape '\\'`,
    ])) as Q;
  }
  return out;
}

export async function listReceipts(ex: Executor, f: ReceiptFilter & { limit: number; offset?: number }): Promise<Receipt[]> {
  const q = receiptsWhere(ex.selectFrom('ledger_receipt').selectAll(), f);
  return (await q.orderBy('received_on', 'desc').orderBy('number', 'desc').limit(f.limit).offset(f.offset ?? 0).execute()).map(toReceipt);
}

/**
 * How many receipts the filter takes, and per currency what they received (every receipt received in the dates, a
 * reversed one too: the money came in then, and its reversal went out on its own date: review 62 F6), how many of
 * them and how much were reversed since, and what those not reversed still hold unallocated.
 */
export async function receiptTotals(ex: Executor, f: ReceiptFilter): Promise<{ count: number; perCurrency: { currency: string; receipts: number; amountMinor: number; reversed: number; reversedMinor: number; unallocatedMinor: number }[] }> {
  const count = await receiptsWhere(ex.selectFrom('ledger_receipt').select((eb) => eb.fn.countAll().as('n')), f).executeTakeFirstOrThrow() as { n: unknown };
  const rows = await receiptsWhere(ex.selectFrom('ledger_receipt').select(['currency'])
    .select((eb) => [eb.fn.countAll().as('n'), eb.fn.sum('amount_minor').as('amount'),
      eb.fn.sum(sql`case when status = 'reversed' then 1 else 0 end`).as('reversed'),
      eb.fn.sum(sql`case when status = 'reversed' then amount_minor else 0 end`).as('reversed_amount'),
      eb.fn.sum(sql`case when status = 'posted' then unallocated_minor else 0 end`).as('unallocated')]), f)
    .groupBy('currency').orderBy('currency').execute() as { currency: string; n: unknown; amount: unknown; reversed: unknown; reversed_amount: unknown; unallocated: unknown }[];
  return {
    count: n(count.n),
    perCurrency: rows.map((r) => ({ currency: String(r.currency), receipts: n(r.n), amountMinor: n(r.amount), reversed: n(r.reversed), reversedMinor: n(r.reversed_amount), unallocatedMinor: n(r.unallocated) })),
  };
}

/** A client's unallocated receipt credit per currency, over all its receipts not reversed (not only those a page lists). */
export async function clientCreditByCurrency(ex: Executor, clientId: string): Promise<Map<string, number>> {
  const rows = await ex.selectFrom('ledger_receipt').select('currency').select((eb) => eb.fn.sum<number>('unallocated_minor').as('s'))
    .where('client_id', '=', clientId).where('status', '=', 'posted').groupBy('currency').execute() as { currency: string; s: unknown }[];
  return new Map(rows.map((r) => [String(r.currency), n(r.s)]));
}

export interface Allocation {
  id: string;
  receiptId: string;
  billId: string;
  amountMinor: number;
  allocatedOn: string;
  journalId: string;
  releasedOn: string | null;
  releaseJournalId: string | null;
  releaseReason: string | null;
}

function toAllocation(r: Record<string, unknown>): Allocation {
  return {
    id: String(r.id), receiptId: String(r.receipt_id), billId: String(r.bill_id), amountMinor: n(r.amount_minor), allocatedOn: String(r.allocated_on),
    journalId: String(r.journal_id), releasedOn: (r.released_on as string | null) ?? null, releaseJournalId: (r.release_journal_id as string | null) ?? null,
    releaseReason: (r.release_reason as string | null) ?? null,
  };
}

export async function insertAllocation(ex: Executor, a: Allocation): Promise<void> {
  await ex.insertInto('ledger_allocation').values({
    id: a.id, receipt_id: a.receiptId, bill_id: a.billId, amount_minor: a.amountMinor, allocated_on: a.allocatedOn, journal_id: a.journalId,
    released_on: null, release_journal_id: null, release_reason: null,
  }).execute();
}

export async function releaseAllocation(ex: Executor, id: string, on: string, journalId: string, reason: string): Promise<void> {
  const r = await ex.updateTable('ledger_allocation').set({ released_on: on, release_journal_id: journalId, release_reason: reason })
    .where('id', '=', id).where('released_on', 'is', null).executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) throw new Error(`allocation ${id} was already released`);
}

export async function findAllocation(ex: Executor, id: string): Promise<Allocation | null> {
  const r = await ex.selectFrom('ledger_allocation').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? toAllocation(r) : null;
}

export async function allocations(ex: Executor, f: { billId?: string; receiptId?: string; live?: boolean }): Promise<Allocation[]> {
  let q = ex.selectFrom('ledger_allocation').selectAll();
  if (f.billId) q = q.where('bill_id', '=', f.billId);
  if (f.receiptId) q = q.where('receipt_id', '=', f.receiptId);
  if (f.live) q = q.where('released_on', 'is', null);
  return (await q.orderBy('allocated_on').orderBy('id').execute()).map(toAllocation);
}

export interface WriteOff {
  id: string;
  billId: string;
  amountMinor: number;
  writtenOffOn: string;
  reason: string;
  journalId: string;
  reversalJournalId: string | null;
  createdAt: string;
  createdBy: string;
}

export async function insertWriteOff(ex: Executor, w: WriteOff): Promise<void> {
  await ex.insertInto('ledger_write_off').values({
    id: w.id, bill_id: w.billId, amount_minor: w.amountMinor, written_off_on: w.writtenOffOn, reason: w.reason, journal_id: w.journalId,
    reversal_journal_id: null, created_at: w.createdAt, created_by: w.createdBy,
  }).execute();
}

export async function writeOffs(ex: Executor, billId: string, live = false): Promise<WriteOff[]> {
  let q = ex.selectFrom('ledger_write_off').selectAll().where('bill_id', '=', billId);
  if (live) q = q.where('reversal_journal_id', 'is', null);
  return (await q.orderBy('created_at').execute()).map((r) => ({
    id: String(r.id), billId: String(r.bill_id), amountMinor: n(r.amount_minor), writtenOffOn: String(r.written_off_on), reason: String(r.reason),
    journalId: String(r.journal_id), reversalJournalId: (r.reversal_journal_id as string | null) ?? null, createdAt: String(r.created_at), createdBy: String(r.created_by),
  }));
}

export async function findWriteOff(ex: Executor, id: string): Promise<WriteOff | null> {
  const r = await ex.selectFrom('ledger_write_off').selectAll().where('id', '=', id).executeTakeFirst();
  if (!r) return null;
  return {
    id: String(r.id), billId: String(r.bill_id), amountMinor: n(r.amount_minor), writtenOffOn: String(r.written_off_on), reason: String(r.reason),
    journalId: String(r.journal_id), reversalJournalId: (r.reversal_journal_id as string | null) ?? null, createdAt: String(r.created_at), createdBy: String(r.created_by),
  };
}

export async function markWriteOffReversed(ex: Executor, id: string, journalId: string): Promise<void> {
  await ex.updateTable('ledger_write_off').set({ reversal_journal_id: journalId }).where('id', '=', id).execute();
}

export interface Refund {
  id: string;
  receiptId: string;
  amountMinor: number;
  refundedOn: string;
  method: string;
  reference: string | null;
  reason: string;
  journalId: string;
  reversalJournalId: string | null;
  reversedOn: string | null;
  reversalReason: string | null;
  createdAt: string;
  createdBy: string;
}

function toRefund(r: Record<string, unknown>): Refund {
  return {
    id: String(r.id), receiptId: String(r.receipt_id), amountMinor: n(r.amount_minor), refundedOn: String(r.refunded_on), method: String(r.method),
    reference: (r.reference as string | null) ?? null, reason: String(r.reason), journalId: String(r.journal_id),
    reversalJournalId: (r.reversal_journal_id as string | null) ?? null, reversedOn: (r.reversed_on as string | null) ?? null,
    reversalReason: (r.reversal_reason as string | null) ?? null, createdAt: String(r.created_at), createdBy: String(r.created_by),
  };
}

export async function insertRefund(ex: Executor, r: Refund): Promise<void> {
  await ex.insertInto('ledger_refund').values({
    id: r.id, receipt_id: r.receiptId, amount_minor: r.amountMinor, refunded_on: r.refundedOn, method: r.method, reference: r.reference, reason: r.reason,
    journal_id: r.journalId, reversal_journal_id: null, reversed_on: null, reversal_reason: null, created_at: r.createdAt, created_by: r.createdBy,
  }).execute();
}

export async function findRefund(ex: Executor, id: string): Promise<Refund | null> {
  const r = await ex.selectFrom('ledger_refund').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? toRefund(r) : null;
}

/** A receipt's refunds, oldest first (`live`: those not taken back). */
export async function refunds(ex: Executor, receiptId: string, live = false): Promise<Refund[]> {
  let q = ex.selectFrom('ledger_refund').selectAll().where('receipt_id', '=', receiptId);
  if (live) q = q.where('reversal_journal_id', 'is', null);
  return (await q.orderBy('refunded_on').orderBy('created_at').orderBy('id').execute()).map(toRefund);
}

/** What stands refunded of each of these receipts (refunds not taken back), by receipt id; one query. */
export async function refundedOf(ex: Executor, receiptIds: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (receiptIds.length === 0) return out;
  assert(receiptIds.length <= 1_000, 'refundedOf: at most 1,000 receipts at once');
  const rows = await ex.selectFrom('ledger_refund').select(['receipt_id']).select((eb) => eb.fn.sum('amount_minor').as('s'))
    .where('receipt_id', 'in', [...receiptIds]).where('reversal_journal_id', 'is', null).groupBy('receipt_id').execute() as { receipt_id: string; s: unknown }[];
  for (const r of rows) out.set(String(r.receipt_id), n(r.s));
  return out;
}

export async function markRefundReversed(ex: Executor, id: string, journalId: string, on: string, reason: string): Promise<void> {
  const r = await ex.updateTable('ledger_refund').set({ reversal_journal_id: journalId, reversed_on: on, reversal_reason: reason }).where('id', '=', id).where('reversal_journal_id', 'is', null).executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) throw new Error(`refund ${id} was already reversed`);
}

/**
 * What took a receipt's credit and when, for creditFloorFrom: its allocations, and its refunds as
 * money that left on the day refunded (and came back on the day a refund was taken back).
 */
export async function creditMovements(ex: Executor, receiptId: string): Promise<{ amountMinor: number; allocatedOn: string; releasedOn: string | null }[]> {
  const allocs = await allocations(ex, { receiptId });
  const back = await refunds(ex, receiptId);
  return [...allocs, ...back.map((r) => ({ amountMinor: r.amountMinor, allocatedOn: r.refundedOn, releasedOn: r.reversedOn }))];
}

// ---- copies of matters -------------------------------------------------------------------

export type CopyTable = 'ledger_timekeeper' | 'ledger_client' | 'ledger_matter' | 'ledger_charge_type' | 'ledger_wip';

/** Insert, or update when the event is as new as the row or newer (a late older event changes nothing). */
export async function upsertCopy(ex: Executor, table: CopyTable, values: Record<string, unknown>, sourceAt: string): Promise<boolean> {
  const row = { ...values, source_at: sourceAt };
  const cols = Object.keys(row).filter((k) => k !== 'id');
  const r = await ex.insertInto(table).values(row)
    .onConflict((oc) => oc.column('id').doUpdateSet(Object.fromEntries(cols.map((c) => [c, sql.ref(`excluded.${c}`)])))
      .where(`${table}.source_at`, '<=', sourceAt))
    .executeTakeFirst();
  return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0;
}

type IdsWanted = Iterable<string | null | undefined>;

/** The rows of a copy table with these ids (blanks and nulls left out), IN_CHUNK per statement (none asked: none read). */
function rowsWithIds(ex: Executor, table: 'ledger_timekeeper' | 'ledger_client' | 'ledger_matter', wanted: IdsWanted | undefined): Promise<Record<string, unknown>[]> {
  return selectIn(ex, table, 'id', [...(wanted ?? [])].filter((id): id is string => typeof id === 'string' && id !== ''));
}

/**
 * The names of the clients, matters and timekeepers a page or report shows, by id: only
 * those asked for (a firm may hold tens of thousands; a page names the few on it).
 */
export async function namesOf(ex: Executor, want: { clients?: IdsWanted; matters?: IdsWanted; timekeepers?: IdsWanted }) {
  const tks = await rowsWithIds(ex, 'ledger_timekeeper', want.timekeepers);
  const clients = await rowsWithIds(ex, 'ledger_client', want.clients);
  const matters = await rowsWithIds(ex, 'ledger_matter', want.matters);
  return {
    timekeepers: new Map(tks.map((t) => [String(t.id), { initials: String(t.initials), name: String(t.name) }])),
    clients: new Map(clients.map((c) => [String(c.id), { number: n(c.client_number), name: String(c.name), email: (c.email as string | null) ?? null, address: (c.address as string | null) ?? null }])),
    matters: new Map(matters.map((m) => [String(m.id), {
      clientId: String(m.client_id), fileNumber: String(m.file_number), name: String(m.name), responsibleTimekeeperId: String(m.responsible_timekeeper_id),
      originatingTimekeeperId: (m.originating_timekeeper_id as string | null) ?? null,
    }])),
  };
}

/** The currencies a client (null: any client) has bills in on the debtors ledger (open or reversed), in code order. */
export async function clientCurrencies(ex: Executor, clientId: string | null): Promise<string[]> {
  let q = ex.selectFrom('ledger_bill').select('currency').distinct();
  if (clientId !== null) q = q.where('client_id', '=', clientId);
  const rows = await q.orderBy('currency').limit(50).execute();
  return rows.map((r) => r.currency as string);
}

/** The clients by number, the first `limit` (a firm may have thousands: the forms type them, see clientsNamed). */
export async function listClients(ex: Executor, limit: number): Promise<{ id: string; number: number; name: string }[]> {
  const rows = await ex.selectFrom('ledger_client').select(['id', 'client_number', 'name']).orderBy('client_number').limit(limit).execute();
  return rows.map((r) => ({ id: String(r.id), number: n(r.client_number), name: String(r.name) }));
}

export async function clientCount(ex: Executor): Promise<number> {
  const r = await ex.selectFrom('ledger_client').select((eb) => eb.fn.countAll().as('n')).executeTakeFirst();
  return n(r?.n ?? 0);
}

/** The Client field typed on the receipt and report forms, looked up in the ledger's copy (shared/clients.ts). */
export const clientsMatching = (ex: Executor, text: string, limit: number) => clients.clientsMatching(ex, 'ledger_client', text, limit);
/** A client's id, number, name (case and accents aside) or "number name"; not part of a name. */
export const clientTyped = (ex: Executor, text: string) => clients.clientTyped(ex, 'ledger_client', text);

/**
 * Work recorded up to `asOf` and not billed then: on no posted bill, or on a bill dated after it
 * (work billed later was still unbilled on that day); never a hidden item. In one currency and
 * optionally one client, added up by the database per kind and timekeeper: items, minutes,
 * value (a no-charge item counts nothing) and the oldest date. The WIP by timekeeper report
 * reads this, not every item (at 500,000 items: 0.7 s, where reading them took 6 to 8 s).
 */
export async function unbilledWipTotals(ex: Executor, asOf: string, currency: string, clientId: string | null): Promise<{ kind: string; timekeeperId: string | null; items: number; minutes: number; valueMinor: number; oldest: string }[]> {
  let q = ex.selectFrom('ledger_wip as w').leftJoin('ledger_wip_billed as b', 'b.item_id', 'w.id').leftJoin('ledger_bill as lb', 'lb.id', 'b.bill_id')
    .select(['w.kind', 'w.timekeeper_id'])
    .select([
      sql<number>`count(*)`.as('items'),
      sql<number>`coalesce(sum(w.minutes), 0)`.as('minutes'),
      sql<number>`coalesce(sum(case when w.behaviour = 'no_charge' then 0 else w.amount_minor end), 0)`.as('value_minor'),
      sql<string>`min(w.date)`.as('oldest'),
    ])
    .where('w.deleted', '=', 0).where('w.behaviour', '!=', 'hide').where('w.currency', '=', currency)
    .where('w.date', '<=', asOf).where((eb) => eb.or([eb('b.item_id', 'is', null), eb('lb.invoice_date', '>', asOf)]));
  if (clientId !== null) q = q.where('w.client_id', '=', clientId);
  const rows = await q.groupBy(['w.kind', 'w.timekeeper_id']).execute();
  return rows.map((r) => ({
    kind: String(r.kind), timekeeperId: (r.timekeeper_id as string | null) ?? null, items: n(r.items), minutes: n(r.minutes), valueMinor: n(r.value_minor), oldest: String(r.oldest),
  }));
}

