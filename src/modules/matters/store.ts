/**
 * Kysely queries on the matters tables (all prefixed `matters_`). Rows come back as plain
 * camelCase records; every function takes the executor (a transaction, or the root handle
 * for reads) so commands decide the transaction.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { assert } from '../../shared/assert.ts';
import type { Executor } from '../../shared/db.ts';
import { IN_CHUNK, pgArray, selectIn, writersSerialised } from '../../shared/sql.ts';
import { indexUtbms, parseUtbmsCsv } from './domain.ts';
import type {
  BillingCycle, EntryBehaviour, LedesClassification, MatterStatus, MinuteRounding, RateSource, StandardRate,
  TimekeeperClassification, UtbmsIndex, WipStatus,
} from './domain.ts';
import type { FirmBillingSettings, MatterBillingOptions } from './events.ts';

// ---------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------

export interface Timekeeper {
  id: string;
  initials: string;
  name: string;
  classification: TimekeeperClassification;
  ledesClassification: LedesClassification;
  active: boolean;
  /** The staff account (sign-in email, lower case) that records this timekeeper's time; null: none. */
  staffEmail: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface Client {
  id: string;
  clientNumber: number;
  name: string;
  email: string | null;
  address: string | null;
  taxId: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface Matter {
  id: string;
  clientId: string;
  matterNumber: number;
  fileNumber: string;
  name: string;
  status: MatterStatus;
  responsibleTimekeeperId: string;
  billingTimekeeperId: string;
  originatingTimekeeperId: string | null;
  practiceArea: string | null;
  openedOn: string;
  closedOn: string | null;
  billingCycle: BillingCycle;
  nextBillingDate: string | null;
  wipCapMinor: number | null;
  currency: string;
  timeUnitMinutes: number;
  roundingMode: MinuteRounding;
  defaultBehaviour: EntryBehaviour;
  /** The contact bills go to; null: the client itself. */
  billablePartyContactId: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface TimeEntry {
  id: string;
  matterId: string;
  timekeeperId: string;
  workDate: string;
  rawMinutes: number;
  billedMinutes: number;
  rateMinor: number;
  rateSource: RateSource;
  overrideReason: string | null;
  amountMinor: number;
  narrative: string;
  taskCode: string | null;
  activityCode: string | null;
  behaviour: EntryBehaviour;
  status: WipStatus;
  createdAt: string;
  updatedAt: string;
}

export interface Disbursement {
  id: string;
  matterId: string;
  incurredOn: string;
  code: string;
  expenseCode: string | null;
  quantityMilli: number;
  unitCostMinor: number;
  amountMinor: number;
  taxCode: string | null;
  description: string;
  payee: string | null;
  behaviour: EntryBehaviour;
  status: WipStatus;
  createdAt: string;
  updatedAt: string;
}

type Row = Record<string, unknown>;

const num = (v: unknown): number => {
  const n = typeof v === 'number' ? v : Number(v);
  assert(Number.isSafeInteger(n), `expected an integer from the database, got ${String(v)}`);
  return n;
};
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));
const str = (v: unknown): string => String(v);
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

function toTimekeeper(r: Row): Timekeeper {
  return {
    id: str(r.id), initials: str(r.initials), name: str(r.name),
    classification: str(r.classification) as TimekeeperClassification,
    ledesClassification: str(r.ledes_classification) as LedesClassification,
    active: num(r.active) === 1, staffEmail: r.staff_email === null || r.staff_email === undefined ? null : str(r.staff_email),
    createdAt: str(r.created_at), updatedAt: str(r.updated_at),
  };
}

function toClient(r: Row): Client {
  return {
    id: str(r.id), clientNumber: num(r.client_number), name: str(r.name), email: strOrNull(r.email),
    address: strOrNull(r.address), taxId: strOrNull(r.tax_id), createdAt: str(r.created_at), updatedAt: str(r.updated_at),
  };
}

function toMatter(r: Row): Matter {
  return {
    id: str(r.id), clientId: str(r.client_id), matterNumber: num(r.matter_number), fileNumber: str(r.file_number),
    name: str(r.name), status: str(r.status) as MatterStatus,
    responsibleTimekeeperId: str(r.responsible_timekeeper_id), billingTimekeeperId: str(r.billing_timekeeper_id),
    originatingTimekeeperId: strOrNull(r.originating_timekeeper_id), practiceArea: strOrNull(r.practice_area),
    openedOn: str(r.opened_on), closedOn: strOrNull(r.closed_on), billingCycle: str(r.billing_cycle) as BillingCycle,
    nextBillingDate: strOrNull(r.next_billing_date), wipCapMinor: numOrNull(r.wip_cap_minor), currency: str(r.currency),
    timeUnitMinutes: num(r.time_unit_minutes), roundingMode: str(r.rounding_mode) as MinuteRounding,
    defaultBehaviour: str(r.default_behaviour) as EntryBehaviour, billablePartyContactId: strOrNull(r.billable_party_contact_id),
    createdAt: str(r.created_at), updatedAt: str(r.updated_at),
  };
}

function toTimeEntry(r: Row): TimeEntry {
  return {
    id: str(r.id), matterId: str(r.matter_id), timekeeperId: str(r.timekeeper_id), workDate: str(r.work_date),
    rawMinutes: num(r.raw_minutes), billedMinutes: num(r.billed_minutes), rateMinor: num(r.rate_minor),
    rateSource: str(r.rate_source) as RateSource, overrideReason: strOrNull(r.override_reason), amountMinor: num(r.amount_minor),
    narrative: str(r.narrative), taskCode: strOrNull(r.task_code), activityCode: strOrNull(r.activity_code),
    behaviour: str(r.behaviour) as EntryBehaviour, status: str(r.status) as WipStatus,
    createdAt: str(r.created_at), updatedAt: str(r.updated_at),
  };
}

function toDisbursement(r: Row): Disbursement {
  return {
    id: str(r.id), matterId: str(r.matter_id), incurredOn: str(r.incurred_on), code: str(r.code),
    expenseCode: strOrNull(r.expense_code), quantityMilli: num(r.quantity_milli), unitCostMinor: num(r.unit_cost_minor),
    amountMinor: num(r.amount_minor), taxCode: strOrNull(r.tax_code), description: str(r.description), payee: strOrNull(r.payee),
    behaviour: str(r.behaviour) as EntryBehaviour, status: str(r.status) as WipStatus,
    createdAt: str(r.created_at), updatedAt: str(r.updated_at),
  };
}

function timekeeperRow(t: Timekeeper): Row {
  return {
    id: t.id, initials: t.initials, name: t.name, classification: t.classification, ledes_classification: t.ledesClassification,
    active: t.active ? 1 : 0, staff_email: t.staffEmail, created_at: t.createdAt, updated_at: t.updatedAt,
  };
}

function clientRow(c: Client): Row {
  return {
    id: c.id, client_number: c.clientNumber, name: c.name, email: c.email, address: c.address, tax_id: c.taxId,
    created_at: c.createdAt, updated_at: c.updatedAt,
  };
}

function matterRow(m: Matter): Row {
  return {
    id: m.id, client_id: m.clientId, matter_number: m.matterNumber, file_number: m.fileNumber, name: m.name, status: m.status,
    responsible_timekeeper_id: m.responsibleTimekeeperId, billing_timekeeper_id: m.billingTimekeeperId,
    originating_timekeeper_id: m.originatingTimekeeperId, practice_area: m.practiceArea, opened_on: m.openedOn,
    closed_on: m.closedOn, billing_cycle: m.billingCycle, next_billing_date: m.nextBillingDate, wip_cap_minor: m.wipCapMinor,
    currency: m.currency, time_unit_minutes: m.timeUnitMinutes, rounding_mode: m.roundingMode,
    default_behaviour: m.defaultBehaviour, billable_party_contact_id: m.billablePartyContactId,
    created_at: m.createdAt, updated_at: m.updatedAt,
  };
}

function timeEntryRow(t: TimeEntry): Row {
  return {
    id: t.id, matter_id: t.matterId, timekeeper_id: t.timekeeperId, work_date: t.workDate, raw_minutes: t.rawMinutes,
    billed_minutes: t.billedMinutes, rate_minor: t.rateMinor, rate_source: t.rateSource, override_reason: t.overrideReason,
    amount_minor: t.amountMinor, narrative: t.narrative, task_code: t.taskCode, activity_code: t.activityCode,
    behaviour: t.behaviour, status: t.status, created_at: t.createdAt, updated_at: t.updatedAt,
  };
}

function disbursementRow(d: Disbursement): Row {
  return {
    id: d.id, matter_id: d.matterId, incurred_on: d.incurredOn, code: d.code, expense_code: d.expenseCode,
    quantity_milli: d.quantityMilli, unit_cost_minor: d.unitCostMinor, amount_minor: d.amountMinor, tax_code: d.taxCode,
    description: d.description, payee: d.payee, behaviour: d.behaviour, status: d.status,
    created_at: d.createdAt, updated_at: d.updatedAt,
  };
}

/** Rows per multi-row INSERT: well under SQLite's and Postgres's bound-parameter limits. */
const INSERT_CHUNK = 500;

async function insertMany(db: Executor, table: string, rows: readonly Row[]): Promise<void> {
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    await db.insertInto(table).values(rows.slice(i, i + INSERT_CHUNK) as Row[]).execute();
  }
}


// ---------------------------------------------------------------------------------------
// Counters: numbers come from a row updated in the caller's transaction, never max()+1
// ---------------------------------------------------------------------------------------

export const CLIENT_COUNTER = 'client';
export const matterCounter = (clientId: string): string => `matter:${clientId}`;

/**
 * Take the next number of a counter (1 for a new counter). The upsert locks the counter
 * row until the transaction ends, so concurrent callers get distinct numbers, and a
 * number taken by a committed transaction is never handed out again.
 */
export async function nextNumber(trx: Executor, name: string): Promise<number> {
  const row = await trx.insertInto('matters_counter').values({ name, last_value: 1 })
    .onConflict((oc) => oc.column('name').doUpdateSet({ last_value: sql`matters_counter.last_value + 1` }))
    .returning('last_value').executeTakeFirstOrThrow() as Row;
  return num(row.last_value);
}

/** Reserve `count` consecutive numbers; returns the first. */
export async function nextNumbers(trx: Executor, name: string, count: number): Promise<number> {
  assert(Number.isSafeInteger(count) && count > 0, 'count must be positive');
  const row = await trx.insertInto('matters_counter').values({ name, last_value: count })
    .onConflict((oc) => oc.column('name').doUpdateSet({ last_value: sql`matters_counter.last_value + ${count}` }))
    .returning('last_value').executeTakeFirstOrThrow() as Row;
  return num(row.last_value) - count + 1;
}

// ---------------------------------------------------------------------------------------
// Timekeepers and standard rates
// ---------------------------------------------------------------------------------------

export async function insertTimekeeper(db: Executor, t: Timekeeper): Promise<void> {
  await db.insertInto('matters_timekeeper').values(timekeeperRow(t)).execute();
}

export async function findTimekeeperByStaffEmail(db: Executor, email: string): Promise<Timekeeper | null> {
  const r = await db.selectFrom('matters_timekeeper').selectAll().where('staff_email', '=', email).executeTakeFirst() as Row | undefined;
  return r ? toTimekeeper(r) : null;
}

export async function findTimekeeper(db: Executor, id: string): Promise<Timekeeper | null> {
  const r = await db.selectFrom('matters_timekeeper').selectAll().where('id', '=', id).executeTakeFirst() as Row | undefined;
  return r ? toTimekeeper(r) : null;
}

export async function findTimekeeperByInitials(db: Executor, initials: string): Promise<Timekeeper | null> {
  const r = await db.selectFrom('matters_timekeeper').selectAll().where('initials', '=', initials).executeTakeFirst() as Row | undefined;
  return r ? toTimekeeper(r) : null;
}

export async function findTimekeepers(db: Executor, ids: readonly string[]): Promise<Map<string, Timekeeper>> {
  const rows = await selectIn(db, 'matters_timekeeper', 'id', ids);
  return new Map(rows.map((r) => [str(r.id), toTimekeeper(r)]));
}

export async function listTimekeepers(db: Executor): Promise<Timekeeper[]> {
  const rows = await db.selectFrom('matters_timekeeper').selectAll().orderBy('initials').execute() as Row[];
  return rows.map(toTimekeeper);
}

export async function upsertStandardRate(db: Executor, timekeeperId: string, rate: StandardRate, at: string): Promise<StandardRate | null> {
  const before = await db.selectFrom('matters_timekeeper_rate').select('rate_minor')
    .where('timekeeper_id', '=', timekeeperId).where('effective_from', '=', rate.effectiveFrom).executeTakeFirst() as Row | undefined;
  await db.insertInto('matters_timekeeper_rate')
    .values({ timekeeper_id: timekeeperId, effective_from: rate.effectiveFrom, rate_minor: rate.rateMinor, updated_at: at })
    .onConflict((oc) => oc.columns(['timekeeper_id', 'effective_from']).doUpdateSet({ rate_minor: rate.rateMinor, updated_at: at }))
    .execute();
  return before ? { effectiveFrom: rate.effectiveFrom, rateMinor: num(before.rate_minor) } : null;
}

/** Standard rates of each timekeeper, oldest first. */
export async function standardRates(db: Executor, timekeeperIds: readonly string[]): Promise<Map<string, StandardRate[]>> {
  const rows = await selectIn(db, 'matters_timekeeper_rate', 'timekeeper_id', timekeeperIds);
  rows.sort((a, b) => (str(a.effective_from) < str(b.effective_from) ? -1 : str(a.effective_from) > str(b.effective_from) ? 1 : 0));
  const out = new Map<string, StandardRate[]>();
  for (const r of rows) {
    const list = out.get(str(r.timekeeper_id)) ?? [];
    list.push({ effectiveFrom: str(r.effective_from), rateMinor: num(r.rate_minor) });
    out.set(str(r.timekeeper_id), list);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Clients, matters and their rates
// ---------------------------------------------------------------------------------------

export async function insertClient(db: Executor, c: Client): Promise<void> {
  await db.insertInto('matters_client').values(clientRow(c)).execute();
}

export async function findClient(db: Executor, id: string): Promise<Client | null> {
  const r = await db.selectFrom('matters_client').selectAll().where('id', '=', id).executeTakeFirst() as Row | undefined;
  return r ? toClient(r) : null;
}

export async function findClients(db: Executor, ids: readonly string[]): Promise<Map<string, Client>> {
  const rows = await selectIn(db, 'matters_client', 'id', ids);
  return new Map(rows.map((r) => [str(r.id), toClient(r)]));
}

export async function listClients(db: Executor): Promise<Client[]> {
  const rows = await db.selectFrom('matters_client').selectAll().orderBy('client_number').execute() as Row[];
  return rows.map(toClient);
}

export async function insertMatter(db: Executor, m: Matter): Promise<void> {
  await db.insertInto('matters_matter').values(matterRow(m)).execute();
}

/** Keep the day of month of a next billing date a person set (null: no date), for advancing by months. */
export async function setBillingAnchor(db: Executor, matterId: string, date: string | null): Promise<void> {
  await db.updateTable('matters_matter').set({ billing_anchor_day: date === null ? null : Number(date.slice(8, 10)) }).where('id', '=', matterId).execute();
}

export async function billingAnchors(db: Executor, matterIds: readonly string[]): Promise<Map<string, number | null>> {
  const out = new Map<string, number | null>();
  for (let i = 0; i < matterIds.length; i += IN_CHUNK) {
    const rows = await db.selectFrom('matters_matter').select(['id', 'billing_anchor_day']).where('id', 'in', matterIds.slice(i, i + IN_CHUNK)).execute() as Row[];
    for (const r of rows) out.set(str(r.id), numOrNull(r.billing_anchor_day));
  }
  return out;
}

export interface BillingDateMove { billId: string; matterId: string; beforeDate: string | null; afterDate: string }

/** What approved bills did to their matters' next billing dates (one row per bill: its latest approval's), in a few statements. */
export async function recordBillingDateMoves(db: Executor, moves: readonly BillingDateMove[], at: string): Promise<void> {
  // One row per bill in a statement (an upsert may not touch a row twice): the last move of a bill wins.
  const byBill = new Map(moves.map((m) => [m.billId, m]));
  const rows = [...byBill.values()].map((m) => ({ bill_id: m.billId, matter_id: m.matterId, before_date: m.beforeDate, after_date: m.afterDate, moved_at: at }));
  for (let i = 0; i < rows.length; i += 500) {
    await db.insertInto('matters_billing_date_move').values(rows.slice(i, i + 500))
      .onConflict((oc) => oc.column('bill_id').doUpdateSet((eb) => ({
        matter_id: eb.ref('excluded.matter_id'), before_date: eb.ref('excluded.before_date'), after_date: eb.ref('excluded.after_date'), moved_at: eb.ref('excluded.moved_at'),
      }))).execute();
  }
}

export async function takeBillingDateMove(db: Executor, billId: string): Promise<BillingDateMove | null> {
  const r = await db.selectFrom('matters_billing_date_move').selectAll().where('bill_id', '=', billId).executeTakeFirst() as Row | undefined;
  if (!r) return null;
  await db.deleteFrom('matters_billing_date_move').where('bill_id', '=', billId).execute();
  return { billId: str(r.bill_id), matterId: str(r.matter_id), beforeDate: strOrNull(r.before_date), afterDate: str(r.after_date) };
}

/**
 * Lock matter rows until the transaction ends (Postgres; SQLite runs one writer at a time),
 * in id order. A command that reads a matter and writes it back whole (close, reopen, a
 * change, the next billing date a bill moves) takes the lock before it reads: under READ
 * COMMITTED its read is then the latest committed row, and a concurrent change waits rather
 * than being overwritten with what was read before it.
 */
/** Hold a charge type's row until the transaction ends (Postgres; SQLite's writers are serialised already). */
export async function lockChargeType(trx: Executor, id: string): Promise<void> {
  if (writersSerialised(trx)) return;
  await trx.selectFrom('matters_charge_type').select('id').where('id', '=', id).forUpdate().execute();
}

export async function lockMatters(trx: Executor, ids: readonly string[]): Promise<void> {
  if (ids.length === 0 || writersSerialised(trx)) return;
  const sorted = [...new Set(ids)].sort();
  for (let i = 0; i < sorted.length; i += IN_CHUNK) {
    await trx.selectFrom('matters_matter').select('id').where('id', 'in', sorted.slice(i, i + IN_CHUNK)).orderBy('id').forUpdate().execute();
  }
}

/** Lock one WIP item's row until the transaction ends (Postgres), before its matter's (the bill follower's order: items, then matters). */
export async function lockWipRow(trx: Executor, table: WipTable, id: string): Promise<void> {
  if (writersSerialised(trx)) return;
  await trx.selectFrom(table).select('id').where('id', '=', id).forUpdate().execute();
}

export async function findMatter(db: Executor, id: string): Promise<Matter | null> {
  const r = await db.selectFrom('matters_matter').selectAll().where('id', '=', id).executeTakeFirst() as Row | undefined;
  return r ? toMatter(r) : null;
}

export async function findMatterByFileNumber(db: Executor, fileNumber: string): Promise<Matter | null> {
  const r = await db.selectFrom('matters_matter').selectAll().where('file_number', '=', fileNumber).executeTakeFirst() as Row | undefined;
  return r ? toMatter(r) : null;
}

export async function findMatters(db: Executor, ids: readonly string[]): Promise<Map<string, Matter>> {
  const rows = await selectIn(db, 'matters_matter', 'id', ids);
  return new Map(rows.map((r) => [str(r.id), toMatter(r)]));
}

export async function listMatters(db: Executor, opts: { clientId?: string } = {}): Promise<Matter[]> {
  let q = db.selectFrom('matters_matter').selectAll();
  if (opts.clientId !== undefined) q = q.where('client_id', '=', opts.clientId);
  const rows = await q.orderBy('created_at').orderBy('id').execute() as Row[];
  return rows.map(toMatter);
}

type RateTable = 'matters_client_rate' | 'matters_matter_rate';

/** Set (rateMinor) or remove (null) a client or matter rate; returns the previous rate. */
export async function setOwnerRate(db: Executor, table: RateTable, ownerId: string, timekeeperId: string, rateMinor: number | null, at: string): Promise<number | null> {
  const owner = table === 'matters_client_rate' ? 'client_id' : 'matter_id';
  const before = await db.selectFrom(table).select('rate_minor')
    .where(owner, '=', ownerId).where('timekeeper_id', '=', timekeeperId).executeTakeFirst() as Row | undefined;
  if (rateMinor === null) {
    await db.deleteFrom(table).where(owner, '=', ownerId).where('timekeeper_id', '=', timekeeperId).execute();
  } else {
    await db.insertInto(table).values({ [owner]: ownerId, timekeeper_id: timekeeperId, rate_minor: rateMinor, updated_at: at })
      .onConflict((oc) => oc.columns([owner, 'timekeeper_id']).doUpdateSet({ rate_minor: rateMinor, updated_at: at }))
      .execute();
  }
  return before ? num(before.rate_minor) : null;
}

/** Rates keyed `${ownerId}|${timekeeperId}`. */
export async function ownerRates(db: Executor, table: RateTable, ownerIds: readonly string[]): Promise<Map<string, number>> {
  const owner = table === 'matters_client_rate' ? 'client_id' : 'matter_id';
  const rows = await selectIn(db, table, owner, ownerIds);
  return new Map(rows.map((r) => [`${str(r[owner])}|${str(r.timekeeper_id)}`, num(r.rate_minor)]));
}

// ---------------------------------------------------------------------------------------
// Work in progress
// ---------------------------------------------------------------------------------------

export async function insertTimeEntries(db: Executor, entries: readonly TimeEntry[]): Promise<void> {
  await insertMany(db, 'matters_time_entry', entries.map(timeEntryRow));
}

export async function insertDisbursements(db: Executor, items: readonly Disbursement[]): Promise<void> {
  await insertMany(db, 'matters_disbursement', items.map(disbursementRow));
}

export async function findTimeEntry(db: Executor, id: string): Promise<TimeEntry | null> {
  const r = await db.selectFrom('matters_time_entry').selectAll().where('id', '=', id).executeTakeFirst() as Row | undefined;
  return r ? toTimeEntry(r) : null;
}

export async function findDisbursement(db: Executor, id: string): Promise<Disbursement | null> {
  const r = await db.selectFrom('matters_disbursement').selectAll().where('id', '=', id).executeTakeFirst() as Row | undefined;
  return r ? toDisbursement(r) : null;
}

export async function listTimeEntries(db: Executor, matterId: string): Promise<TimeEntry[]> {
  const rows = await db.selectFrom('matters_time_entry').selectAll().where('matter_id', '=', matterId)
    .orderBy('work_date').orderBy('id').execute() as Row[];
  return rows.map(toTimeEntry);
}

export async function listDisbursements(db: Executor, matterId: string): Promise<Disbursement[]> {
  const rows = await db.selectFrom('matters_disbursement').selectAll().where('matter_id', '=', matterId)
    .orderBy('incurred_on').orderBy('id').execute() as Row[];
  return rows.map(toDisbursement);
}

/**
 * Replace an unbilled time entry. Returns false (and changes nothing) when the entry is no
 * longer unbilled: the status check and the write are one statement.
 */
export async function updateUnbilledTimeEntry(db: Executor, t: TimeEntry, expectedVersion?: number): Promise<boolean> {
  const { id: _id, created_at: _c, status: _s, matter_id: _m, ...set } = timeEntryRow(t);
  let q = db.updateTable('matters_time_entry').set({ ...set, version: sql`version + 1` }).where('id', '=', t.id).where('status', '=', 'unbilled');
  if (expectedVersion !== undefined) q = q.where('version', '=', expectedVersion);
  const r = await q.executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export async function updateUnbilledDisbursement(db: Executor, d: Disbursement, expectedVersion?: number): Promise<boolean> {
  const { id: _id, created_at: _c, status: _s, matter_id: _m, ...set } = disbursementRow(d);
  let q = db.updateTable('matters_disbursement').set({ ...set, version: sql`version + 1` }).where('id', '=', d.id).where('status', '=', 'unbilled');
  if (expectedVersion !== undefined) q = q.where('version', '=', expectedVersion);
  const r = await q.executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export const WIP_TABLES = ['matters_time_entry', 'matters_disbursement', 'matters_fixed_charge'] as const;
export type WipTable = (typeof WIP_TABLES)[number];

/** Deletes the item while it is unbilled (and, with `expectedVersion`, still at that version). */
export async function deleteUnbilled(db: Executor, table: WipTable, id: string, expectedVersion?: number): Promise<boolean> {
  let q = db.deleteFrom(table).where('id', '=', id).where('status', '=', 'unbilled');
  if (expectedVersion !== undefined) q = q.where('version', '=', expectedVersion);
  const r = await q.executeTakeFirst();
  return Number(r.numDeletedRows) === 1;
}

/** Unbilled billable WIP (behaviour `bill`) per matter: time, disbursements and recorded (not quoted) fixed charges. */
export async function unbilledWipMinor(db: Executor, matterIds: readonly string[]): Promise<Map<string, number>> {
  return billableWipMinor(db, matterIds, ['unbilled']);
}

/**
 * What the WIP cap measures, per matter: billable WIP not yet billed, unbilled or on a draft
 * bill (seed 004: the WIP "must be billed" before more is posted). A draft is not a bill, and
 * deleting it puts its items back, so drafting must make no room under the cap.
 */
export async function capWipMinor(db: Executor, matterIds: readonly string[]): Promise<Map<string, number>> {
  return billableWipMinor(db, matterIds, CAP_WIP_STATUSES);
}

/** The item statuses the WIP cap counts (not yet on an approved bill). */
export const CAP_WIP_STATUSES = ['unbilled', 'draft'] as const;

async function billableWipMinor(db: Executor, matterIds: readonly string[], statuses: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>(matterIds.map((id) => [id, 0]));
  const unique = [...new Set(matterIds)];
  for (let i = 0; i < unique.length; i += IN_CHUNK) {
    const ids = unique.slice(i, i + IN_CHUNK);
    for (const table of WIP_TABLES) {
      let q = db.selectFrom(table).select(['matter_id', sql<string>`sum(amount_minor)`.as('total')])
        .where('matter_id', 'in', ids).where('status', 'in', [...statuses]).where('behaviour', '=', 'bill');
      if (table === 'matters_fixed_charge') q = q.where('quoted', '=', 0);
      const rows = await q.groupBy('matter_id').execute() as Row[];
      for (const r of rows) out.set(str(r.matter_id), (out.get(str(r.matter_id)) ?? 0) + num(r.total));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Record updates
// ---------------------------------------------------------------------------------------

/**
 * Replace a matter, bumping its version. With `expectedVersion`, only while the row is still
 * at that version (one statement, so a concurrent edit cannot slip in): false when it is not.
 */
export async function updateMatter(db: Executor, m: Matter, expectedVersion?: number): Promise<boolean> {
  const { id: _id, created_at: _c, client_id: _cl, matter_number: _n, file_number: _f, ...set } = matterRow(m);
  let q = db.updateTable('matters_matter').set({ ...set, version: sql`version + 1` }).where('id', '=', m.id);
  if (expectedVersion !== undefined) q = q.where('version', '=', expectedVersion);
  const r = await q.executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export const VERSIONED_TABLES = ['matters_matter', 'matters_time_entry', 'matters_disbursement', 'matters_fixed_charge'] as const;
export type VersionedTable = (typeof VERSIONED_TABLES)[number];

/** A row's version (bumped on every update), or null when there is no such row. */
export async function findVersion(db: Executor, table: VersionedTable, id: string): Promise<number | null> {
  const r = await db.selectFrom(table).select('version').where('id', '=', id).executeTakeFirst() as Row | undefined;
  return r ? num(r.version) : null;
}

interface VersionedRecords { matters_matter: Matter; matters_time_entry: TimeEntry; matters_disbursement: Disbursement; matters_fixed_charge: FixedCharge }
const VERSIONED_READERS: { [T in VersionedTable]: (r: Row) => VersionedRecords[T] } = {
  matters_matter: toMatter, matters_time_entry: toTimeEntry, matters_disbursement: toDisbursement, matters_fixed_charge: toFixedCharge,
};

/**
 * Rows with the version each was read at, both from the same statement (so the version always
 * describes the data beside it): what the JSON API returns for a client to send back as
 * `expectedVersion`. Ids not found are absent.
 */
export async function findWithVersions<T extends VersionedTable>(db: Executor, table: T, ids: readonly string[]): Promise<Map<string, { row: VersionedRecords[T]; version: number }>> {
  const to = VERSIONED_READERS[table];
  return new Map((await selectIn(db, table, 'id', ids)).map((r) => [str(r.id), { row: to(r), version: num(r.version) }]));
}

/** Work in progress of every kind with these ids (an idempotency key names one item of one kind). */
/** The first key of the Postgres advisory locks taken on caller-given item ids. */
const ITEM_ID_LOCK_CLASS = 7_301;

/**
 * Lock caller-given item ids until the transaction ends (Postgres). Each kind's table has its
 * own primary key, so two transactions creating one id as different kinds would both succeed;
 * with the lock the second waits and then sees the first's row. Taken in order (no deadlock
 * between two callers' lists). SQLite runs one writer at a time: nothing to take.
 */
export async function lockItemIds(trx: Executor, ids: readonly string[]): Promise<void> {
  if (ids.length === 0 || writersSerialised(trx)) return;
  const sorted = [...new Set(ids)].sort();
  await sql`select pg_advisory_xact_lock(${ITEM_ID_LOCK_CLASS}, hashtext(s.id)) from (select id from unnest(${pgArray(sorted)}::text[]) as u(id) order by id) as s`.execute(trx);
}

/**
 * What is priced in the firm's currency already: standard and client rates and charge types;
 * and matters, whatever their own currency (a matter in the firm's is read in the new one, and
 * one in another is compared with the firm's for its rates). A firm's currency is set before
 * any of them: changed after, their stored minor units would be read in the new one.
 */
export async function firmCurrencyUses(db: Executor): Promise<{ timekeeperRates: number; clientRates: number; chargeTypes: number; matters: number }> {
  const count = async (table: string) => Number(((await db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()) as { n: unknown }).n);
  return { timekeeperRates: await count('matters_timekeeper_rate'), clientRates: await count('matters_client_rate'), chargeTypes: await count('matters_charge_type'), matters: await count('matters_matter') };
}

/**
 * How many disbursements and fixed charges not yet billed (unbilled or on a draft), and charge
 * types (their default), carry
 * each of these tax codes: what removing a code from the firm's rates would leave unbillable.
 */
export async function taxCodeUses(db: Executor, codes: readonly string[]): Promise<{ code: string; disbursements: number; fixedCharges: number; chargeTypes: number }[]> {
  if (codes.length === 0) return [];
  const count = async (table: string, unbilledOnly: boolean) => {
    let q = db.selectFrom(table).select(['tax_code', (eb) => eb.fn.countAll().as('n')]).where('tax_code', 'in', [...codes]).groupBy('tax_code');
    if (unbilledOnly) q = q.where('status', 'in', ['unbilled', 'draft']);
    return new Map((await q.execute()).map((r) => [r.tax_code as string, Number(r.n)]));
  };
  const disb = await count('matters_disbursement', true);
  const fixed = await count('matters_fixed_charge', true);
  const types = await count('matters_charge_type', false);
  return codes.map((code) => ({ code, disbursements: disb.get(code) ?? 0, fixedCharges: fixed.get(code) ?? 0, chargeTypes: types.get(code) ?? 0 }))
    .filter((u) => u.disbursements + u.fixedCharges + u.chargeTypes > 0);
}

type DeletedKind = 'time' | 'disbursement' | 'fixed_charge';

/** Remember a deleted WIP item's id, so it is never recorded again (see alreadyRecorded). */
export async function recordDeletedItem(db: Executor, item: { id: string; kind: DeletedKind; matterId: string; at: string }): Promise<void> {
  await db.insertInto('matters_deleted_item').values({ id: item.id, kind: item.kind, matter_id: item.matterId, deleted_at: item.at })
    .onConflict((oc) => oc.column('id').doNothing()).execute();
}

/** Of the given ids, those of deleted WIP items, with their kind. */
export async function deletedItemKinds(db: Executor, ids: readonly string[]): Promise<Map<string, DeletedKind>> {
  if (ids.length === 0) return new Map();
  return new Map((await selectIn(db, 'matters_deleted_item', 'id', ids)).map((r) => [str(r.id), str(r.kind) as DeletedKind]));
}

export async function findWipByIds(db: Executor, ids: readonly string[]): Promise<{ time: Map<string, TimeEntry>; disbursement: Map<string, Disbursement>; fixed_charge: Map<string, FixedCharge> }> {
  if (ids.length === 0) return { time: new Map(), disbursement: new Map(), fixed_charge: new Map() };
  return {
    time: new Map((await selectIn(db, 'matters_time_entry', 'id', ids)).map((r) => [str(r.id), toTimeEntry(r)])),
    disbursement: new Map((await selectIn(db, 'matters_disbursement', 'id', ids)).map((r) => [str(r.id), toDisbursement(r)])),
    fixed_charge: new Map((await selectIn(db, 'matters_fixed_charge', 'id', ids)).map((r) => [str(r.id), toFixedCharge(r)])),
  };
}

export async function updateClient(db: Executor, c: Client): Promise<void> {
  const { id: _id, created_at: _c, client_number: _n, ...set } = clientRow(c);
  await db.updateTable('matters_client').set(set).where('id', '=', c.id).execute();
}

export async function updateTimekeeper(db: Executor, t: Timekeeper): Promise<void> {
  const { id: _id, created_at: _c, initials: _i, ...set } = timekeeperRow(t);
  await db.updateTable('matters_timekeeper').set(set).where('id', '=', t.id).execute();
}

/** Keep each matter's recording default in step with its effective billing options. */
export async function setDefaultBehaviour(db: Executor, matterIds: readonly string[], behaviour: EntryBehaviour, at: string): Promise<void> {
  for (let i = 0; i < matterIds.length; i += IN_CHUNK) {
    await db.updateTable('matters_matter').set({ default_behaviour: behaviour, updated_at: at, version: sql`version + 1` })
      .where('id', 'in', matterIds.slice(i, i + IN_CHUNK)).execute();
  }
}

/** Every matter's id, file number and client, in opening order (for firm-wide option changes). */
export async function listMatterRefs(db: Executor): Promise<{ id: string; fileNumber: string; clientId: string }[]> {
  const rows = await db.selectFrom('matters_matter').select(['id', 'file_number', 'client_id']).orderBy('created_at').orderBy('id').execute() as Row[];
  return rows.map((r) => ({ id: str(r.id), fileNumber: str(r.file_number), clientId: str(r.client_id) }));
}

// ---------------------------------------------------------------------------------------
// Firm billing settings (one row) and matter option overrides
// ---------------------------------------------------------------------------------------

export interface StoredFirmSettings {
  settings: FirmBillingSettings;
  version: number;
  updatedAt: string;
}

const FIRM_ROW_ID = 'firm';

function firmRow(s: FirmBillingSettings): Row {
  return {
    currency: s.currency, tax_rates_json: JSON.stringify(s.taxRates), default_fee_tax_code: s.defaultFeeTaxCode,
    tax_rounding: s.taxRounding, payment_terms_days: s.paymentTermsDays, time_unit_minutes: s.timeUnitMinutes,
    time_rounding: s.timeRounding, general_retainers_enabled: s.generalRetainersEnabled ? 1 : 0, wip_cap_policy: s.wipCapPolicy,
    interest_json: JSON.stringify(s.interest), posting_outside_current_period: s.postingOutsideCurrentPeriod,
    matter_defaults_json: JSON.stringify(s.matterDefaults),
  };
}

function toFirmSettings(r: Row): StoredFirmSettings {
  return {
    settings: {
      currency: str(r.currency),
      taxRates: JSON.parse(str(r.tax_rates_json)) as FirmBillingSettings['taxRates'],
      defaultFeeTaxCode: str(r.default_fee_tax_code),
      taxRounding: str(r.tax_rounding) as FirmBillingSettings['taxRounding'],
      paymentTermsDays: num(r.payment_terms_days),
      timeUnitMinutes: num(r.time_unit_minutes),
      timeRounding: str(r.time_rounding) as FirmBillingSettings['timeRounding'],
      generalRetainersEnabled: num(r.general_retainers_enabled) === 1,
      wipCapPolicy: str(r.wip_cap_policy) as FirmBillingSettings['wipCapPolicy'],
      interest: JSON.parse(str(r.interest_json)) as FirmBillingSettings['interest'],
      postingOutsideCurrentPeriod: str(r.posting_outside_current_period) as FirmBillingSettings['postingOutsideCurrentPeriod'],
      matterDefaults: JSON.parse(str(r.matter_defaults_json)) as MatterBillingOptions,
    },
    version: num(r.version),
    updatedAt: str(r.updated_at),
  };
}

export async function findFirmSettings(db: Executor): Promise<StoredFirmSettings | null> {
  const r = await db.selectFrom('matters_firm_settings').selectAll().where('id', '=', FIRM_ROW_ID).executeTakeFirst() as Row | undefined;
  return r ? toFirmSettings(r) : null;
}

/** Insert the first settings row; false when another transaction got there first. */
export async function insertFirmSettings(db: Executor, s: FirmBillingSettings, at: string): Promise<boolean> {
  const r = await db.insertInto('matters_firm_settings').values({ id: FIRM_ROW_ID, ...firmRow(s), version: 1, updated_at: at })
    .onConflict((oc) => oc.column('id').doNothing()).returning('id').executeTakeFirst();
  return r !== undefined;
}

/** Replace the settings if still at `version`; false when someone else saved in between. */
export async function updateFirmSettings(db: Executor, s: FirmBillingSettings, version: number, at: string): Promise<boolean> {
  const r = await db.updateTable('matters_firm_settings').set({ ...firmRow(s), version: version + 1, updated_at: at })
    .where('id', '=', FIRM_ROW_ID).where('version', '=', version).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export interface StoredOverrides {
  overrides: Partial<MatterBillingOptions>;
  version: number;
  updatedAt: string;
}

function toOverrides(r: Row): StoredOverrides {
  return { overrides: JSON.parse(str(r.overrides_json)) as Partial<MatterBillingOptions>, version: num(r.version), updatedAt: str(r.updated_at) };
}

export async function findOverrides(db: Executor, matterId: string): Promise<StoredOverrides | null> {
  const r = await db.selectFrom('matters_matter_options').selectAll().where('matter_id', '=', matterId).executeTakeFirst() as Row | undefined;
  return r ? toOverrides(r) : null;
}

/** Overrides of these matters (matters without a row inherit everything). */
export async function overridesFor(db: Executor, matterIds: readonly string[]): Promise<Map<string, StoredOverrides>> {
  const rows = await selectIn(db, 'matters_matter_options', 'matter_id', matterIds);
  return new Map(rows.map((r) => [str(r.matter_id), toOverrides(r)]));
}

export async function allOverrides(db: Executor): Promise<Map<string, StoredOverrides>> {
  const rows = await db.selectFrom('matters_matter_options').selectAll().execute() as Row[];
  return new Map(rows.map((r) => [str(r.matter_id), toOverrides(r)]));
}

/** Write many matters' overrides (insert or replace), bumping each version. */
export async function saveOverrides(db: Executor, items: readonly { matterId: string; overrides: Partial<MatterBillingOptions> }[], at: string): Promise<void> {
  for (let i = 0; i < items.length; i += INSERT_CHUNK) {
    const rows = items.slice(i, i + INSERT_CHUNK).map((x) => ({ matter_id: x.matterId, overrides_json: JSON.stringify(x.overrides), version: 1, updated_at: at }));
    await db.insertInto('matters_matter_options').values(rows)
      .onConflict((oc) => oc.column('matter_id').doUpdateSet({
        overrides_json: sql`excluded.overrides_json`, updated_at: sql`excluded.updated_at`,
        version: sql`matters_matter_options.version + 1`,
      }))
      .execute();
  }
}

/**
 * Items that stop billing being turned off (seed 002), per matter: billable ones (behaviour
 * bill, unbilled or on a draft) and billed ones, over time, disbursements and fixed charges.
 */
export async function billingItemCounts(db: Executor, matterIds: readonly string[]): Promise<Map<string, { billable: number; billed: number }>> {
  const out = new Map(matterIds.map((id) => [id, { billable: 0, billed: 0 }]));
  const unique = [...new Set(matterIds)];
  for (let i = 0; i < unique.length; i += IN_CHUNK) {
    const ids = unique.slice(i, i + IN_CHUNK);
    for (const table of WIP_TABLES) {
      const rows = await db.selectFrom(table)
        .select(['matter_id',
          sql<string>`sum(case when status in ('unbilled', 'draft') and behaviour = 'bill' then 1 else 0 end)`.as('billable'),
          sql<string>`sum(case when status = 'billed' then 1 else 0 end)`.as('billed')])
        .where('matter_id', 'in', ids).groupBy('matter_id').execute() as Row[];
      for (const r of rows) {
        const c = out.get(str(r.matter_id))!;
        c.billable += num(r.billable ?? 0);
        c.billed += num(r.billed ?? 0);
      }
    }
  }
  return out;
}

/** Unbilled work of a matter with no UTBMS code where e-billing would need one. */
export async function uncodedUnbilledCount(db: Executor, matterId: string): Promise<number> {
  let n = 0;
  for (const [table, where] of [
    ['matters_time_entry', sql<boolean>`(task_code is null or activity_code is null)`],
    ['matters_fixed_charge', sql<boolean>`(task_code is null or activity_code is null)`],
    ['matters_disbursement', sql<boolean>`expense_code is null`],
  ] as const) {
    const r = await db.selectFrom(table).select(sql<string>`count(*)`.as('n'))
      .where('matter_id', '=', matterId).where('status', '=', 'unbilled').where(where).executeTakeFirstOrThrow() as Row;
    n += num(r.n);
  }
  return n;
}

// ---------------------------------------------------------------------------------------
// Contacts, participants and the billable party
// ---------------------------------------------------------------------------------------

export interface Contact {
  id: string;
  clientId: string;
  name: string;
  email: string | null;
  phone: string | null;
  address: string | null;
  role: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface Participant {
  contactId: string;
  role: string;
}

function contactRow(c: Contact): Row {
  return {
    id: c.id, client_id: c.clientId, name: c.name, email: c.email, phone: c.phone, address: c.address, role: c.role,
    created_at: c.createdAt, updated_at: c.updatedAt,
  };
}

function toContact(r: Row): Contact {
  return {
    id: str(r.id), clientId: str(r.client_id), name: str(r.name), email: strOrNull(r.email), phone: strOrNull(r.phone),
    address: strOrNull(r.address), role: strOrNull(r.role), createdAt: str(r.created_at), updatedAt: str(r.updated_at),
  };
}

export async function insertContacts(db: Executor, contacts: readonly Contact[]): Promise<void> {
  await insertMany(db, 'matters_contact', contacts.map(contactRow));
}

export async function findContact(db: Executor, id: string): Promise<Contact | null> {
  const r = await db.selectFrom('matters_contact').selectAll().where('id', '=', id).executeTakeFirst() as Row | undefined;
  return r ? toContact(r) : null;
}

export async function findContacts(db: Executor, ids: readonly string[]): Promise<Map<string, Contact>> {
  const rows = await selectIn(db, 'matters_contact', 'id', ids);
  return new Map(rows.map((r) => [str(r.id), toContact(r)]));
}

export async function listContacts(db: Executor, clientId: string): Promise<Contact[]> {
  const rows = await db.selectFrom('matters_contact').selectAll().where('client_id', '=', clientId).orderBy('name').orderBy('id').execute() as Row[];
  return rows.map(toContact);
}

export async function updateContact(db: Executor, c: Contact): Promise<void> {
  const { id: _id, created_at: _c, client_id: _cl, ...set } = contactRow(c);
  await db.updateTable('matters_contact').set(set).where('id', '=', c.id).execute();
}

export async function deleteContact(db: Executor, id: string): Promise<void> {
  await db.deleteFrom('matters_matter_participant').where('contact_id', '=', id).execute();
  await db.deleteFrom('matters_contact').where('id', '=', id).execute();
}

/** Participants per matter, in their given order. */
export async function participantsOf(db: Executor, matterIds: readonly string[]): Promise<Map<string, Participant[]>> {
  const rows = await selectIn(db, 'matters_matter_participant', 'matter_id', matterIds);
  rows.sort((a, b) => num(a.position) - num(b.position));
  const out = new Map<string, Participant[]>();
  for (const r of rows) {
    const list = out.get(str(r.matter_id)) ?? [];
    list.push({ contactId: str(r.contact_id), role: str(r.role) });
    out.set(str(r.matter_id), list);
  }
  return out;
}

/** Replace the participants of many matters (multi-row inserts). */
export async function replaceParticipantsMany(db: Executor, items: readonly { matterId: string; participants: readonly Participant[] }[]): Promise<void> {
  const ids = items.map((i) => i.matterId);
  for (let i = 0; i < ids.length; i += IN_CHUNK) {
    await db.deleteFrom('matters_matter_participant').where('matter_id', 'in', ids.slice(i, i + IN_CHUNK)).execute();
  }
  await insertMany(db, 'matters_matter_participant', items.flatMap((x) => x.participants.map((p, k) => ({
    matter_id: x.matterId, contact_id: p.contactId, role: p.role, position: k,
  }))));
}

/** Set many matters' billable party (null: the client itself), grouped into one update per contact. */
export async function setBillableParties(db: Executor, items: readonly { matterId: string; contactId: string | null }[], at: string): Promise<void> {
  const byContact = new Map<string | null, string[]>();
  for (const x of items) byContact.set(x.contactId, [...(byContact.get(x.contactId) ?? []), x.matterId]);
  for (const [contactId, ids] of byContact) {
    for (let i = 0; i < ids.length; i += IN_CHUNK) {
      await db.updateTable('matters_matter').set({ billable_party_contact_id: contactId, updated_at: at, version: sql`version + 1` })
        .where('id', 'in', ids.slice(i, i + IN_CHUNK)).execute();
    }
  }
}

/** Matters whose bills carry this contact's details: as billable party or participant. */
export async function mattersUsingContact(db: Executor, contactId: string): Promise<{ billableParty: string[]; participant: string[] }> {
  const bp = await db.selectFrom('matters_matter').select('id').where('billable_party_contact_id', '=', contactId).orderBy('id').execute() as Row[];
  const pa = await db.selectFrom('matters_matter_participant').select('matter_id').where('contact_id', '=', contactId).orderBy('matter_id').execute() as Row[];
  return { billableParty: bp.map((r) => str(r.id)), participant: pa.map((r) => str(r.matter_id)) };
}

/** Matters of a client whose billable party is the client itself. */
export async function mattersBilledToClient(db: Executor, clientId: string): Promise<Matter[]> {
  const rows = await db.selectFrom('matters_matter').selectAll().where('client_id', '=', clientId)
    .where('billable_party_contact_id', 'is', null).orderBy('created_at').orderBy('id').execute() as Row[];
  return rows.map(toMatter);
}

// ---------------------------------------------------------------------------------------
// Charge types (products) and fixed charges
// ---------------------------------------------------------------------------------------

export interface ChargeType {
  id: string;
  code: string;
  name: string;
  defaultPriceMinor: number;
  taxCode: string | null;
  taskCode: string | null;
  activityCode: string | null;
  active: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface FixedCharge {
  id: string;
  matterId: string;
  chargeTypeId: string;
  chargedOn: string;
  quantityMilli: number;
  unitPriceMinor: number;
  amountMinor: number;
  taxCode: string | null;
  taskCode: string | null;
  activityCode: string | null;
  description: string;
  /** A product quoted/estimated for the matter rather than work recorded: adds nothing to WIP. */
  quoted: boolean;
  behaviour: EntryBehaviour;
  status: WipStatus;
  createdAt: string;
  updatedAt: string;
}

function chargeTypeRow(c: ChargeType): Row {
  return {
    id: c.id, code: c.code, name: c.name, default_price_minor: c.defaultPriceMinor, tax_code: c.taxCode, task_code: c.taskCode,
    activity_code: c.activityCode, active: c.active ? 1 : 0, created_at: c.createdAt, updated_at: c.updatedAt,
  };
}

function toChargeType(r: Row): ChargeType {
  return {
    id: str(r.id), code: str(r.code), name: str(r.name), defaultPriceMinor: num(r.default_price_minor), taxCode: strOrNull(r.tax_code),
    taskCode: strOrNull(r.task_code), activityCode: strOrNull(r.activity_code), active: num(r.active) === 1,
    createdAt: str(r.created_at), updatedAt: str(r.updated_at),
  };
}

function fixedChargeRow(f: FixedCharge): Row {
  return {
    id: f.id, matter_id: f.matterId, charge_type_id: f.chargeTypeId, charged_on: f.chargedOn, quantity_milli: f.quantityMilli,
    unit_price_minor: f.unitPriceMinor, amount_minor: f.amountMinor, tax_code: f.taxCode, task_code: f.taskCode,
    activity_code: f.activityCode, description: f.description, quoted: f.quoted ? 1 : 0, behaviour: f.behaviour, status: f.status,
    created_at: f.createdAt, updated_at: f.updatedAt,
  };
}

function toFixedCharge(r: Row): FixedCharge {
  return {
    id: str(r.id), matterId: str(r.matter_id), chargeTypeId: str(r.charge_type_id), chargedOn: str(r.charged_on),
    quantityMilli: num(r.quantity_milli), unitPriceMinor: num(r.unit_price_minor), amountMinor: num(r.amount_minor),
    taxCode: strOrNull(r.tax_code), taskCode: strOrNull(r.task_code), activityCode: strOrNull(r.activity_code),
    description: str(r.description), quoted: num(r.quoted) === 1, behaviour: str(r.behaviour) as EntryBehaviour,
    status: str(r.status) as WipStatus, createdAt: str(r.created_at), updatedAt: str(r.updated_at),
  };
}

export async function insertChargeType(db: Executor, c: ChargeType): Promise<void> {
  await db.insertInto('matters_charge_type').values(chargeTypeRow(c)).execute();
}

export async function updateChargeType(db: Executor, c: ChargeType): Promise<void> {
  const { id: _id, created_at: _c, ...set } = chargeTypeRow(c);
  await db.updateTable('matters_charge_type').set(set).where('id', '=', c.id).execute();
}

export async function findChargeType(db: Executor, id: string): Promise<ChargeType | null> {
  const r = await db.selectFrom('matters_charge_type').selectAll().where('id', '=', id).executeTakeFirst() as Row | undefined;
  return r ? toChargeType(r) : null;
}

export async function findChargeTypeByCode(db: Executor, code: string): Promise<ChargeType | null> {
  const r = await db.selectFrom('matters_charge_type').selectAll().where('code', '=', code).executeTakeFirst() as Row | undefined;
  return r ? toChargeType(r) : null;
}

export async function findChargeTypes(db: Executor, ids: readonly string[]): Promise<Map<string, ChargeType>> {
  const rows = await selectIn(db, 'matters_charge_type', 'id', ids);
  return new Map(rows.map((r) => [str(r.id), toChargeType(r)]));
}

export async function listChargeTypes(db: Executor, opts: { activeOnly?: boolean } = {}): Promise<ChargeType[]> {
  let q = db.selectFrom('matters_charge_type').selectAll();
  if (opts.activeOnly) q = q.where('active', '=', 1);
  return (await q.orderBy('code').execute() as Row[]).map(toChargeType);
}

export async function insertFixedCharges(db: Executor, items: readonly FixedCharge[]): Promise<void> {
  await insertMany(db, 'matters_fixed_charge', items.map(fixedChargeRow));
}

export async function findFixedCharge(db: Executor, id: string): Promise<FixedCharge | null> {
  const r = await db.selectFrom('matters_fixed_charge').selectAll().where('id', '=', id).executeTakeFirst() as Row | undefined;
  return r ? toFixedCharge(r) : null;
}

export async function listFixedCharges(db: Executor, matterId: string): Promise<FixedCharge[]> {
  const rows = await db.selectFrom('matters_fixed_charge').selectAll().where('matter_id', '=', matterId)
    .orderBy('charged_on').orderBy('id').execute() as Row[];
  return rows.map(toFixedCharge);
}

export async function updateUnbilledFixedCharge(db: Executor, f: FixedCharge, expectedVersion?: number): Promise<boolean> {
  const { id: _id, created_at: _c, status: _s, matter_id: _m, ...set } = fixedChargeRow(f);
  let q = db.updateTable('matters_fixed_charge').set({ ...set, version: sql`version + 1` }).where('id', '=', f.id).where('status', '=', 'unbilled');
  if (expectedVersion !== undefined) q = q.where('version', '=', expectedVersion);
  const r = await q.executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Move items to a WIP status (billing drafted, billed or released them). */
export async function setWipStatus(db: Executor, table: WipTable, ids: readonly string[], status: WipStatus, at: string): Promise<void> {
  for (let i = 0; i < ids.length; i += IN_CHUNK) {
    await db.updateTable(table).set({ status, updated_at: at, version: sql`version + 1` }).where('id', 'in', ids.slice(i, i + IN_CHUNK)).execute();
  }
}

/** The status and matter of each of the items that exist (three columns read: for callers that need no more). */
export async function wipHeads(db: Executor, table: WipTable, ids: readonly string[]): Promise<Map<string, { id: string; status: WipStatus; matterId: string }>> {
  const unique = [...new Set(ids)];
  const out = new Map<string, { id: string; status: WipStatus; matterId: string }>();
  for (let i = 0; i < unique.length; i += IN_CHUNK) {
    const rows = await db.selectFrom(table).select(['id', 'status', 'matter_id']).where('id', 'in', unique.slice(i, i + IN_CHUNK)).execute() as Row[];
    for (const r of rows) out.set(str(r.id), { id: str(r.id), status: str(r.status) as WipStatus, matterId: str(r.matter_id) });
  }
  return out;
}

export async function findFixedCharges(db: Executor, ids: readonly string[]): Promise<Map<string, FixedCharge>> {
  return new Map((await selectIn(db, 'matters_fixed_charge', 'id', ids)).map((r) => [str(r.id), toFixedCharge(r)]));
}

// ---------------------------------------------------------------------------------------
// UTBMS reference data (reference/utbms.csv, read once)
// ---------------------------------------------------------------------------------------

export const UTBMS_CSV_PATH = fileURLToPath(new URL('../../../reference/utbms.csv', import.meta.url));

let utbms: UtbmsIndex | null = null;

/** The UTBMS codes shipped in reference/utbms.csv, parsed and indexed on first use. */
export function utbmsIndex(): UtbmsIndex {
  utbms ??= indexUtbms(parseUtbmsCsv(readFileSync(UTBMS_CSV_PATH, 'utf8')));
  return utbms;
}
