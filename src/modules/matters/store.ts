/**
 * Kysely queries on the matters tables (all prefixed `matters_`). Rows come back as plain
 * camelCase records; every function takes the executor (a transaction, or the root handle
 * for reads) so commands decide the transaction.
 */
import { sql } from 'kysely';
import { assert } from '../../shared/assert.ts';
import type { Executor } from '../../shared/db.ts';
import type {
  BillingCycle, EntryBehaviour, LedesClassification, MatterStatus, MinuteRounding, RateSource, StandardRate,
  TimekeeperClassification, WipStatus,
} from './domain.ts';

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
    active: num(r.active) === 1, createdAt: str(r.created_at), updatedAt: str(r.updated_at),
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
    defaultBehaviour: str(r.default_behaviour) as EntryBehaviour, createdAt: str(r.created_at), updatedAt: str(r.updated_at),
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
    active: t.active ? 1 : 0, created_at: t.createdAt, updated_at: t.updatedAt,
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
    default_behaviour: m.defaultBehaviour, created_at: m.createdAt, updated_at: m.updatedAt,
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

/** Ids per `in (...)` list. */
const IN_CHUNK = 500;

async function selectIn(db: Executor, table: string, column: string, ids: readonly string[]): Promise<Row[]> {
  const unique = [...new Set(ids)];
  const out: Row[] = [];
  for (let i = 0; i < unique.length; i += IN_CHUNK) {
    out.push(...await db.selectFrom(table).selectAll().where(column, 'in', unique.slice(i, i + IN_CHUNK)).execute() as Row[]);
  }
  return out;
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
export async function updateUnbilledTimeEntry(db: Executor, t: TimeEntry): Promise<boolean> {
  const { id: _id, created_at: _c, status: _s, matter_id: _m, ...set } = timeEntryRow(t);
  const r = await db.updateTable('matters_time_entry').set(set).where('id', '=', t.id).where('status', '=', 'unbilled').executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export async function updateUnbilledDisbursement(db: Executor, d: Disbursement): Promise<boolean> {
  const { id: _id, created_at: _c, status: _s, matter_id: _m, ...set } = disbursementRow(d);
  const r = await db.updateTable('matters_disbursement').set(set).where('id', '=', d.id).where('status', '=', 'unbilled').executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export async function deleteUnbilled(db: Executor, table: 'matters_time_entry' | 'matters_disbursement', id: string): Promise<boolean> {
  const r = await db.deleteFrom(table).where('id', '=', id).where('status', '=', 'unbilled').executeTakeFirst();
  return Number(r.numDeletedRows) === 1;
}

/** Unbilled billable WIP (behaviour `bill`) per matter, time and disbursements together. */
export async function unbilledWipMinor(db: Executor, matterIds: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>(matterIds.map((id) => [id, 0]));
  const unique = [...new Set(matterIds)];
  for (let i = 0; i < unique.length; i += IN_CHUNK) {
    const ids = unique.slice(i, i + IN_CHUNK);
    for (const table of ['matters_time_entry', 'matters_disbursement']) {
      const rows = await db.selectFrom(table).select(['matter_id', sql<string>`sum(amount_minor)`.as('total')])
        .where('matter_id', 'in', ids).where('status', '=', 'unbilled').where('behaviour', '=', 'bill')
        .groupBy('matter_id').execute() as Row[];
      for (const r of rows) out.set(str(r.matter_id), (out.get(str(r.matter_id)) ?? 0) + num(r.total));
    }
  }
  return out;
}
