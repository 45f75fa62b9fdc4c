/**
 * Kysely queries on billing's own tables. Billing never reads matters' tables: the copy
 * here (billing_timekeeper, billing_client, billing_matter, billing_firm_settings,
 * billing_wip) is fed by matters' events (projections.ts); the bill composer reads only it.
 *
 * Every copied row carries the ordering key of the event that last wrote it
 * (`source_version`, then `source_at`); a write whose key is older than the row's is
 * ignored, so a repeated or late event never regresses the copy.
 */
import { sql } from 'kysely';
import { assert } from '../../shared/assert.ts';
import type { SourceKey } from '../../shared/copies.ts';
import type { Executor } from '../../shared/db.ts';
import { marks, pgArray, selectArrays, selectColumns, writersSerialised } from '../../shared/sql.ts';
import { conflict } from '../../shared/web/errors.ts';
import type {
  BillableParty, BillingOptionSection, EntryBehaviourName, FirmBillingSettings, MatterBillingOptions, MatterParticipantInfo,
  WipStatusName,
} from '../matters/events.ts';

// ---------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------

export interface TimekeeperCopyRow {
  id: string;
  initials: string;
  name: string;
  classification: string;
  ledes_classification: string;
  active: number;
}

export interface ClientCopyRow {
  id: string;
  client_number: number;
  name: string;
  email: string | null;
  address: string | null;
  tax_id: string | null;
  details_json: string | null;
  created_at: string | null;
}

export interface MatterCopyRow {
  id: string;
  client_id: string;
  client_number: number;
  client_name: string;
  matter_number: number;
  file_number: string;
  name: string;
  status: string;
  practice_area: string | null;
  opened_on: string;
  closed_on: string | null;
  responsible_timekeeper_id: string;
  billing_timekeeper_id: string;
  originating_timekeeper_id: string | null;
  billing_cycle: string;
  next_billing_date: string | null;
  wip_cap_minor: number | null;
  currency: string;
  time_unit_minutes: number;
  rounding_mode: string;
  default_behaviour: string;
  billable_party_id: string | null;
  billable_party_json: string | null;
  participants_json: string | null;
}

export type WipKind = 'time' | 'disbursement' | 'fixed_charge';

export interface WipCopyRow {
  id: string;
  kind: WipKind;
  matter_id: string;
  client_id: string;
  date: string;
  timekeeper_id: string | null;
  raw_minutes: number | null;
  billed_minutes: number | null;
  rate_minor: number | null;
  rate_source: string | null;
  override_reason: string | null;
  quantity_milli: number | null;
  unit_cost_minor: number | null;
  amount_minor: number;
  currency: string;
  code: string | null;
  charge_type_id: string | null;
  charge_name: string | null;
  quoted: 0 | 1;
  task_code: string | null;
  activity_code: string | null;
  expense_code: string | null;
  tax_code: string | null;
  description: string;
  payee: string | null;
  behaviour: EntryBehaviourName;
  matters_status: string;
  payload_json: string;
}

/** The columns of a WIP row that describe the item (not bookkeeping): compared for conflicts. */
export const WIP_CONTENT_COLUMNS = [
  'kind', 'matter_id', 'client_id', 'date', 'timekeeper_id', 'raw_minutes', 'billed_minutes', 'rate_minor', 'rate_source',
  'override_reason', 'quantity_milli', 'unit_cost_minor', 'amount_minor', 'currency', 'code', 'charge_type_id', 'charge_name',
  'quoted', 'task_code', 'activity_code', 'expense_code', 'tax_code', 'description', 'payee', 'behaviour',
] as const satisfies readonly (keyof WipCopyRow)[];

// ---------------------------------------------------------------------------------------
// Writes (used by the projections, always inside the handler's transaction)
// ---------------------------------------------------------------------------------------

type CopyTable =
  | 'billing_timekeeper' | 'billing_client' | 'billing_contact' | 'billing_matter' | 'billing_wip' | 'billing_firm_settings'
  | 'billing_charge_type';

/** The ordering key a row was last written from, or null when there is no row. */
export async function sourceKeyOf(trx: Executor, table: CopyTable, id: string): Promise<SourceKey | null> {
  const r = await trx.selectFrom(table).select(['source_version', 'source_at', 'event_id']).where('id', '=', id).executeTakeFirst() as
    { source_version: number; source_at: string; event_id: string } | undefined;
  return r ? { version: Number(r.source_version), at: r.source_at, eventId: r.event_id } : null;
}

/** A row of the copy as stored, with the bill holding it (holderColumn). */
export type StoredWipRow = WipCopyRow & { bill_id: string | null; deleted_in_matters_at: string | null; source_version: number; source_at: string };

/**
 * Which bill holds an item is its live bill line (billing_bill_line.item_id, unique among
 * live lines): the one record of it, enforced by the database. These are that rule as SQL
 * on billing_wip (unaliased).
 */
const LIVE_LINE_OF_ITEM = 'select 1 from billing_bill_line l where l.item_id = billing_wip.id and l.live = 1 limit 1';
/** The bill holding the item, or null: a column for selects on billing_wip. */
export const holderColumn = () => sql<string | null>`(select l.bill_id from billing_bill_line l where l.item_id = billing_wip.id and l.live = 1)`.as('bill_id');
/**
 * Unbilled: matters reports it unbilled (the literal lets the planner use billing_wip_open_idx)
 * and no live line holds it. The second test is a scalar subquery, not `not exists`, so that
 * it stays one probe of billing_bill_line_live_item_uq per item: Postgres turns `not exists`
 * into an anti-join, and while a bill run grows billing_bill_line faster than its statistics
 * follow it chose a hash anti-join that read every live line once per chunk (a run of 10,000
 * matters: 50 ms a chunk at the start, 260 ms at the end; 7.3 s in all, 3.1 s as a probe).
 */
export const OPEN_WIP_SQL = `matters_status = 'unbilled' and (${LIVE_LINE_OF_ITEM}) is null`;
const openWip = () => sql<boolean>`${sql.raw(OPEN_WIP_SQL)}`;

export async function findWipRow(trx: Executor, id: string): Promise<StoredWipRow | null> {
  const r = await trx.selectFrom('billing_wip').selectAll('billing_wip').select(holderColumn()).where('id', '=', id).executeTakeFirst();
  return (r as StoredWipRow | undefined) ?? null;
}

export async function isWipDeleted(trx: Executor, id: string): Promise<boolean> {
  return (await trx.selectFrom('billing_wip_deleted').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
}

export async function recordWipDeleted(trx: Executor, t: { id: string; kind: string; matterId: string; deletedAt: string; eventId: string }): Promise<void> {
  await trx.insertInto('billing_wip_deleted')
    .values({ id: t.id, kind: t.kind, matter_id: t.matterId, deleted_at: t.deletedAt, event_id: t.eventId })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
}

export interface CopyConflict {
  id: string;
  eventId: string;
  eventType: string;
  entityType: string;
  entityId: string;
  matterId: string | null;
  billId: string | null;
  reason: string;
  detail: unknown;
  detectedAt: string;
  resolvedAt: string | null;
}

export async function insertConflict(trx: Executor, c: Omit<CopyConflict, 'resolvedAt'>): Promise<void> {
  // Postgres: recorded under the bill's conflicts lock, shared, so an approval or a draft save
  // reading the bill's conflicts (lockBillsAgainstConflicts first) either sees this one or is done before it.
  if (c.billId !== null && !writersSerialised(trx)) await sql`select pg_advisory_xact_lock_shared(${BILL_CONFLICTS_LOCK_CLASS}, hashtext(${c.billId}))`.execute(trx);
  await trx.insertInto('billing_copy_conflict').values({
    id: c.id, event_id: c.eventId, event_type: c.eventType, entity_type: c.entityType, entity_id: c.entityId, matter_id: c.matterId,
    bill_id: c.billId, reason: c.reason, detail_json: c.detail === undefined ? null : JSON.stringify(c.detail), detected_at: c.detectedAt,
    resolved_at: null,
  }).execute();
}

// ---------------------------------------------------------------------------------------
// Reads (for the bill composer)
// ---------------------------------------------------------------------------------------

export interface TimekeeperCopy {
  id: string;
  initials: string;
  name: string;
  classification: string;
  ledesClassification: string;
  active: boolean;
}

export interface ContactCopy {
  id: string;
  clientId: string;
  name: string;
  email: string | null;
  phone: string | null;
  address: string | null;
  role: string | null;
}

export interface ClientCopy {
  id: string;
  clientNumber: number;
  name: string;
  email: string | null;
  address: string | null;
  taxId: string | null;
  details: unknown;
  /** The client's current contacts (removed ones left out), by name. */
  contacts: ContactCopy[];
}

export interface ChargeTypeCopy {
  id: string;
  code: string;
  name: string;
  defaultPriceMinor: number;
  taxCode: string | null;
  taskCode: string | null;
  activityCode: string | null;
  active: boolean;
}

export interface MatterCopy {
  id: string;
  clientId: string;
  clientNumber: number;
  /** The client's current name (from billing's client copy, else as at opening). */
  clientName: string;
  client: ClientCopy | null;
  matterNumber: number;
  fileNumber: string;
  name: string;
  status: 'open' | 'closed';
  practiceArea: string | null;
  openedOn: string;
  closedOn: string | null;
  responsibleTimekeeperId: string;
  billingTimekeeperId: string;
  originatingTimekeeperId: string | null;
  /** The copied timekeepers of the three roles, where billing has them. */
  timekeepers: { responsible: TimekeeperCopy | null; billing: TimekeeperCopy | null; originating: TimekeeperCopy | null };
  billingCycle: string;
  nextBillingDate: string | null;
  wipCapMinor: number | null;
  currency: string;
  timeUnitMinutes: number;
  roundingMode: string;
  /** Behaviour of new time entries: the effective option defaultTimeEntryBehaviour when known. */
  defaultBehaviour: EntryBehaviourName;
  /** The billable party's contact id (null: the client itself, or not yet known). */
  billablePartyId: string | null;
  /** Who the bills go to, once matters has said (matter_changed); null before. */
  billableParty: BillableParty | null;
  participants: MatterParticipantInfo[];
  /** The effective options: the matter's own as matters last sent them, else the firm's defaults, else null. */
  options: MatterBillingOptions | null;
  optionsSource: 'matter' | 'firm_defaults' | 'none';
  overridden: BillingOptionSection[];
}

export interface WipCopy {
  id: string;
  kind: WipKind;
  matterId: string;
  clientId: string;
  date: string;
  timekeeperId: string | null;
  rawMinutes: number | null;
  billedMinutes: number | null;
  rateMinor: number | null;
  rateSource: string | null;
  overrideReason: string | null;
  quantityMilli: number | null;
  unitCostMinor: number | null;
  amountMinor: number;
  currency: string;
  code: string | null;
  chargeTypeId: string | null;
  chargeName: string | null;
  /** A quoted fixed charge: part of the bill's product set, adds nothing to WIP until billed. */
  quoted: boolean;
  taskCode: string | null;
  activityCode: string | null;
  expenseCode: string | null;
  taxCode: string | null;
  description: string;
  payee: string | null;
  behaviour: EntryBehaviourName;
  mattersStatus: WipStatusName;
  billId: string | null;
  /** The whole payload last applied. */
  payload: unknown;
  /**
   * The event whose copy from matters wrote this row last (every copy of a change sets it;
   * flagging the item deleted does not): a bill made from the row checks on Postgres that it
   * is still that write, or else compares the fields (lockItemsAsComposed). Null where not
   * read (SQLite's bulk reads, where no other writer runs meanwhile).
   */
  eventId: string | null;
}

const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const parse = (v: string | null): unknown => (v === null ? null : JSON.parse(v) as unknown);

function toTimekeeper(r: Record<string, any>): TimekeeperCopy {
  return { id: r.id, initials: r.initials, name: r.name, classification: r.classification, ledesClassification: r.ledes_classification, active: num(r.active) === 1 };
}

function toClient(r: Record<string, any>, contacts: ContactCopy[]): ClientCopy {
  return {
    id: r.id, clientNumber: num(r.client_number), name: r.name, email: r.email, address: r.address, taxId: r.tax_id,
    details: parse(r.details_json), contacts,
  };
}

function toContact(r: Record<string, any>): ContactCopy {
  return { id: r.id, clientId: r.client_id, name: r.name, email: r.email, phone: r.phone, address: r.address, role: r.role };
}

function toChargeType(r: Record<string, any>): ChargeTypeCopy {
  return {
    id: r.id, code: r.code, name: r.name, defaultPriceMinor: num(r.default_price_minor), taxCode: r.tax_code, taskCode: r.task_code,
    activityCode: r.activity_code, active: num(r.active) === 1,
  };
}

export function toWipCopy(r: Record<string, any>): WipCopy {
  return {
    id: r.id, kind: r.kind, matterId: r.matter_id, clientId: r.client_id, date: r.date, timekeeperId: r.timekeeper_id,
    rawMinutes: numOrNull(r.raw_minutes), billedMinutes: numOrNull(r.billed_minutes), rateMinor: numOrNull(r.rate_minor),
    rateSource: r.rate_source, overrideReason: r.override_reason, quantityMilli: numOrNull(r.quantity_milli),
    unitCostMinor: numOrNull(r.unit_cost_minor), amountMinor: num(r.amount_minor), currency: r.currency, code: r.code,
    chargeTypeId: r.charge_type_id, chargeName: r.charge_name, quoted: num(r.quoted) === 1, taskCode: r.task_code, activityCode: r.activity_code, expenseCode: r.expense_code, taxCode: r.tax_code,
    description: r.description, payee: r.payee, behaviour: r.behaviour, mattersStatus: r.matters_status, billId: r.bill_id,
    payload: parse(r.payload_json), eventId: r.event_id ?? null,
  };
}

export async function getFirmSettings(db: Executor): Promise<FirmBillingSettings | null> {
  const r = await db.selectFrom('billing_firm_settings').select('settings_json').where('id', '=', 'firm').executeTakeFirst() as { settings_json: string } | undefined;
  return r ? JSON.parse(r.settings_json) as FirmBillingSettings : null;
}

export async function getTimekeeperCopy(db: Executor, id: string): Promise<TimekeeperCopy | null> {
  const r = await db.selectFrom('billing_timekeeper').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? toTimekeeper(r) : null;
}

export async function getClientCopy(db: Executor, id: string): Promise<ClientCopy | null> {
  const r = await db.selectFrom('billing_client').selectAll().where('id', '=', id).executeTakeFirst();
  if (!r) return null;
  const contacts = await db.selectFrom('billing_contact').selectAll().where('client_id', '=', id).where('removed', '=', 0)
    .orderBy('name').orderBy('id').execute();
  return toClient(r, contacts.map(toContact));
}

/** Fixed-charge types (products) billing knows, by code. */
export async function listChargeTypes(db: Executor, opts: { activeOnly?: boolean } = {}): Promise<ChargeTypeCopy[]> {
  let q = db.selectFrom('billing_charge_type').selectAll();
  if (opts.activeOnly) q = q.where('active', '=', 1);
  return (await q.orderBy('code').execute()).map(toChargeType);
}

/** Billing's copy of one matter, with its client, role timekeepers and effective options. */
export async function getMatterCopy(db: Executor, matterId: string): Promise<MatterCopy | null> {
  return (await getMatterCopies(db, [matterId])).get(matterId) ?? null;
}

/**
 * The matter's billable party: a contact as matters last described it, or the client itself
 * with the client's current details (a matter is opened billed to its client; matter_opened
 * does not describe the client, billing's client copy does).
 */
function billablePartyOf(party: BillableParty | null, client: ClientCopy | null): BillableParty | null {
  if (party === null || party.kind !== 'client' || client === null) return party;
  return { kind: 'client', contactId: null, name: client.name, email: client.email, address: client.address };
}

/** The same as getMatterCopy for many matters at once (mass billing): a few queries, not a few per matter. */
export async function getMatterCopies(db: Executor, matterIds: readonly string[], firmSettings?: FirmBillingSettings | null): Promise<Map<string, MatterCopy>> {
  const out = new Map<string, MatterCopy>();
  if (matterIds.length === 0) return out;
  const rows: Record<string, any>[] = [];
  for (let i = 0; i < matterIds.length; i += 500) {
    rows.push(...await db.selectFrom('billing_matter').selectAll().where('id', 'in', matterIds.slice(i, i + 500)).execute() as Record<string, any>[]);
  }
  if (rows.length === 0) return out;
  const clientIds = [...new Set(rows.map((r) => r.client_id as string))];
  const clients = new Map<string, ClientCopy>();
  for (let i = 0; i < clientIds.length; i += 500) {
    const chunk = clientIds.slice(i, i + 500);
    const cs = await db.selectFrom('billing_client').selectAll().where('id', 'in', chunk).execute();
    const contacts = await db.selectFrom('billing_contact').selectAll().where('client_id', 'in', chunk).where('removed', '=', 0)
      .orderBy('name').orderBy('id').execute();
    const byClient = new Map<string, ContactCopy[]>();
    for (const ct of contacts) {
      const list = byClient.get(ct.client_id);
      if (list) list.push(toContact(ct)); else byClient.set(ct.client_id, [toContact(ct)]);
    }
    for (const c of cs) clients.set(c.id, toClient(c, byClient.get(c.id) ?? []));
  }
  const tkIds = [...new Set(rows.flatMap((r) => [r.responsible_timekeeper_id, r.billing_timekeeper_id, r.originating_timekeeper_id].filter((v): v is string => typeof v === 'string')))];
  const tks = new Map<string, TimekeeperCopy>();
  for (let i = 0; i < tkIds.length; i += 500) {
    for (const t of await db.selectFrom('billing_timekeeper').selectAll().where('id', 'in', tkIds.slice(i, i + 500)).execute()) tks.set(t.id as string, toTimekeeper(t));
  }
  let firm: FirmBillingSettings | null | undefined = firmSettings;
  for (const r of rows) {
    const client = clients.get(r.client_id) ?? null;
    let options = parse(r.options_json) as MatterBillingOptions | null;
    let optionsSource: MatterCopy['optionsSource'] = options ? 'matter' : 'none';
    if (!options) {
      if (firm === undefined) firm = await getFirmSettings(db);
      if (firm) { options = firm.matterDefaults; optionsSource = 'firm_defaults'; }
    }
    out.set(r.id, {
      id: r.id, clientId: r.client_id, clientNumber: num(r.client_number), clientName: client?.name ?? r.client_name, client,
      matterNumber: num(r.matter_number), fileNumber: r.file_number, name: r.name, status: r.status, practiceArea: r.practice_area,
      openedOn: r.opened_on, closedOn: r.closed_on, responsibleTimekeeperId: r.responsible_timekeeper_id,
      billingTimekeeperId: r.billing_timekeeper_id, originatingTimekeeperId: r.originating_timekeeper_id,
      timekeepers: {
        responsible: tks.get(r.responsible_timekeeper_id) ?? null,
        billing: tks.get(r.billing_timekeeper_id) ?? null,
        originating: r.originating_timekeeper_id ? tks.get(r.originating_timekeeper_id) ?? null : null,
      },
      billingCycle: r.billing_cycle, nextBillingDate: r.next_billing_date, wipCapMinor: numOrNull(r.wip_cap_minor), currency: r.currency,
      // Matters keeps the two as one setting but may change it through the options without a
      // matter_changed, so the effective option wins over the copied column.
      timeUnitMinutes: num(r.time_unit_minutes), roundingMode: r.rounding_mode,
      defaultBehaviour: options?.defaultTimeEntryBehaviour ?? r.default_behaviour,
      billablePartyId: r.billable_party_id, billableParty: billablePartyOf(parse(r.billable_party_json) as BillableParty | null, client),
      participants: (parse(r.participants_json) as MatterParticipantInfo[] | null) ?? [],
      options, optionsSource, overridden: (parse(r.overridden_json) as BillingOptionSection[] | null) ?? [],
    });
  }
  return out;
}

/**
 * What the composer and the bill lines read of an unbilled item (matters_status is not read:
 * the query keeps to 'unbilled', OPEN_WIP_SQL), read through selectColumns (on SQLite as one JSON text per matter).
 */
const COMPOSER_WIP_COLUMNS = [
  'id', 'kind', 'behaviour', 'matter_id', 'client_id', 'currency', 'date', 'timekeeper_id', 'billed_minutes', 'rate_minor', 'amount_minor',
  'code', 'charge_type_id', 'quoted', 'task_code', 'activity_code', 'expense_code', 'tax_code', 'description',
] as const;

/** An integer column read in bulk (selectColumns): JSON gives numbers, and one past 2^53 would have lost digits. */
export const safeInteger = (v: unknown): number => {
  assert(Number.isSafeInteger(v), 'an integer read in bulk is a safe integer');
  return v as number;
};
export const safeIntegerOrNull = (v: unknown): number | null => (v === null ? null : safeInteger(v));

/** Postgres: also each row's last write, after the others (toComposerWip reads it there), for lockItemsAsComposed (SQLite's one writer at a time needs no check). */
const COMPOSER_WIP_COLUMNS_AND_WRITE = [...COMPOSER_WIP_COLUMNS, 'event_id'] as const;

/** A row of COMPOSER_WIP_COLUMNS (or COMPOSER_WIP_COLUMNS_AND_WRITE), as an array in that order, as a WipCopy (the columns not read are null). */
function toComposerWip(r: readonly unknown[]): WipCopy {
  return {
    id: r[0] as string, kind: r[1] as WipCopy['kind'], matterId: r[3] as string, clientId: r[4] as string, date: r[6] as string,
    timekeeperId: r[7] as string | null, rawMinutes: null, billedMinutes: safeIntegerOrNull(r[8]), rateMinor: safeIntegerOrNull(r[9]), rateSource: null,
    overrideReason: null, quantityMilli: null, unitCostMinor: null, amountMinor: safeInteger(r[10]), currency: r[5] as string, code: r[11] as string | null,
    chargeTypeId: r[12] as string | null, chargeName: null, quoted: r[13] === 1, taskCode: r[14] as string | null,
    activityCode: r[15] as string | null, expenseCode: r[16] as string | null, taxCode: r[17] as string | null, description: r[18] as string,
    payee: null, behaviour: r[2] as WipCopy['behaviour'], mattersStatus: 'unbilled', billId: null, payload: null, eventId: (r[COMPOSER_WIP_COLUMNS.length] as string | undefined) ?? null,
  };
}

/** The fields a composition reads of an item (toComposerWip's): the ones a bill's lines are made from. */
const COMPOSED_FIELDS = [
  'id', 'kind', 'behaviour', 'matterId', 'clientId', 'currency', 'date', 'timekeeperId', 'billedMinutes', 'rateMinor', 'amountMinor',
  'code', 'chargeTypeId', 'quoted', 'taskCode', 'activityCode', 'expenseCode', 'taxCode', 'description',
] as const satisfies readonly (keyof WipCopy)[];
// One field per column read, in the same order (toComposerWip maps them).
assert(COMPOSED_FIELDS.length === COMPOSER_WIP_COLUMNS.length, 'COMPOSED_FIELDS names the field of each of COMPOSER_WIP_COLUMNS');

/** The most items one locking read names (bounds its array parameter). */
const MAX_LOCK_ITEMS = 10_000;

/**
 * On Postgres, where writers run side by side: lock the copy's rows of the items a bill is
 * taking (FOR SHARE, until the transaction ends) and refuse (409, rolling back) unless each
 * is still there, not deleted in matters, and as the bill was composed from it. The bill was
 * composed from rows read before; a change matters sent meanwhile was copied by a projection
 * that could not see this bill's uncommitted lines, so it recorded no conflict: the check
 * here catches it. Once locked, a later change waits for this transaction, and its
 * projection (lockWipRow first) then sees the bill's lines and records the conflict.
 * SQLite runs one writer at a time: nothing can change between the read and the write.
 *
 * Most rows are unchanged, and for those the lock reads back only the row's last write
 * (event_id: the copy of an item's change from matters sets it; flagging the item deleted does
 * not, and a flagged row is not read): the same write, the same row. A row written since is
 * read whole and compared field by field, since matters sends an item again on every edit,
 * also one that leaves what the bill shows as it was. (Reading every row whole took 1.6 s of
 * the Node process's time in a bill run of 443,004 items.)
 */
export async function lockItemsAsComposed(trx: Executor, items: readonly WipCopy[]): Promise<void> {
  if (writersSerialised(trx) || items.length === 0) return;
  for (const it of items) {
    assert(it !== undefined, 'every item a bill takes was read for its composition');
    assert(it.eventId !== null, 'an item a bill takes on Postgres was read with its last write (event_id)');
  }
  // Each statement locks its rows in id order; over several statements the items are taken in
  // id order too.
  const ordered = items.length <= MAX_LOCK_ITEMS ? items : [...items].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const refuse = () => conflict('Some items were changed or deleted in matters while the bill was being made: try again (the bill will be made from them as they are now)');
  for (let i = 0; i < ordered.length; i += MAX_LOCK_ITEMS) {
    const part = ordered.slice(i, i + MAX_LOCK_ITEMS);
    const rows = await selectArrays(trx, `select id, event_id from billing_wip
      where id = any(?::text[]) and deleted_in_matters_at is null order by id for share`, [pgArray(part.map((w) => w.id))]);
    const lastWrite = new Map(rows.map((r) => [r[0] as string, r[1] as string]));
    const written: WipCopy[] = [];
    for (const was of part) {
      const write = lastWrite.get(was.id);
      if (write === undefined) throw refuse();
      if (write !== was.eventId) written.push(was);
    }
    if (written.length === 0) continue;
    // Locked already (above): read whole and compared.
    const now = await selectArrays(trx, `select ${COMPOSER_WIP_COLUMNS.join(', ')} from billing_wip where id = any(?::text[])`, [pgArray(written.map((w) => w.id))]);
    const byId = new Map(now.map((r) => { const w = toComposerWip(r); return [w.id, w]; }));
    for (const was of written) {
      const is = byId.get(was.id);
      if (!is || COMPOSED_FIELDS.some((f) => is[f] !== was[f])) throw refuse();
    }
  }
}

/** The first key of the Postgres advisory locks on a bill's conflicts (the second: the hash of the bill's id). */
const BILL_CONFLICTS_LOCK_CLASS = 7_602;

/**
 * On Postgres, where writers run side by side: hold these bills' conflicts (an advisory lock
 * per bill, exclusive, until the transaction ends) before reading them, to approve a bill or
 * to save a draft (which resolves them). A conflict is recorded against a bill only under the
 * same lock, shared (insertConflict), so one recorded meanwhile has either committed, and is
 * seen (the approval refuses; the draft is composed from the change it records), or waits
 * until this transaction ends, and is recorded after it (against the approved bill, as any
 * change after approval is; or against the saved draft, left open). Without it a conflict
 * committed between the read and the approval would let the bill be approved at a value
 * matters no longer holds, and a draft saved meanwhile would resolve a conflict it never saw.
 * An advisory lock, not the bill's row: a projection records many conflicts in one
 * transaction, and row locks there would wait in turn on production's claims and on drafts
 * being saved, which hold bill rows. (The bills' items were locked for this before: a row lock
 * writes the row, and approving a bill run's 443,004 items took 14 s of the server's time.)
 */
export async function lockBillsAgainstConflicts(trx: Executor, billIds: readonly string[]): Promise<void> {
  if (writersSerialised(trx) || billIds.length === 0) return;
  // In id order: two approvals of overlapping bills wait on each other rather than deadlock.
  const sorted = [...new Set(billIds)].sort();
  for (let i = 0; i < sorted.length; i += MAX_LOCK_ITEMS) {
    await sql`select pg_advisory_xact_lock(${BILL_CONFLICTS_LOCK_CLASS}, hashtext(s.id)) from (select id from unnest(${pgArray(sorted.slice(i, i + MAX_LOCK_ITEMS))}::text[]) as u(id) order by id) as s`.execute(trx);
  }
}

/**
 * On Postgres: lock an item's copied row before reading which bill holds it (a projection
 * changing or deleting the item), so a bill taking the item meanwhile (lockItemsAsComposed)
 * has either committed, and its lines are seen, or not yet locked it, and will see the change.
 */
export async function lockWipRow(trx: Executor, id: string): Promise<void> {
  if (writersSerialised(trx)) return;
  await selectArrays(trx, 'select id from billing_wip where id = ? for update', [id]);
}

/**
 * Unbilled WIP of many matters (as unbilledWip for each), grouped by matter: one query per
 * chunk of matters, each matter's items in date, kind, id order.
 */
export async function unbilledWipOf(db: Executor, matterIds: readonly string[], upTo?: string, opts: { payload?: boolean } = {}): Promise<Map<string, WipCopy[]>> {
  const out = new Map<string, WipCopy[]>();
  for (const id of matterIds) out.set(id, []);
  // payload: false (mass billing composes only): just the columns the composer and the bill
  // lines read; the others come back null (payload, rates' source, quantities, payee...).
  const slim = opts.payload === false;
  for (let i = 0; i < matterIds.length; i += 500) {
    const chunk = matterIds.slice(i, i + 500);
    if (slim) {
      const rows = await selectColumns(db, writersSerialised(db) ? COMPOSER_WIP_COLUMNS : COMPOSER_WIP_COLUMNS_AND_WRITE, `from billing_wip
        where matter_id in (${marks(chunk.length)}) and ${OPEN_WIP_SQL}${upTo !== undefined ? ' and date <= ?' : ''}`,
      upTo !== undefined ? [...chunk, upTo] : chunk, { groupBy: 'matter_id' });
      for (const r of rows) out.get(r[3] as string)!.push(toComposerWip(r));
      continue;
    }
    let q = db.selectFrom('billing_wip').selectAll().select(sql<null>`null`.as('bill_id')).where('matter_id', 'in', chunk).where(openWip());
    if (upTo !== undefined) q = q.where('date', '<=', upTo);
    for (const r of await q.execute()) out.get(r.matter_id)!.push(toWipCopy(r));
  }
  for (const list of out.values()) list.sort(wipOrder);
  return out;
}

/** unbilledWip's `order by date, kind, id`, with text compared by code unit (as SQLite does; ids, dates and kinds are ASCII). */
export function wipOrder(a: { date: string; kind: string; id: string }, b: { date: string; kind: string; id: string }): number {
  if (a.date !== b.date) return a.date < b.date ? -1 : 1;
  if (a.kind !== b.kind) return a.kind < b.kind ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * A matter's WIP that is on no bill and that matters last reported unbilled, dated on or
 * before `upTo` (inclusive, YYYY-MM-DD) when given; in date order, then kind, then id.
 * Hidden and no-charge items, and quoted fixed charges (`quoted`), are included: the
 * composer decides how to show them.
 */
export async function unbilledWip(db: Executor, matterId: string, upTo?: string): Promise<WipCopy[]> {
  let q = db.selectFrom('billing_wip').selectAll().select(sql<null>`null`.as('bill_id'))
    .where('matter_id', '=', matterId)
    .where(openWip());
  if (upTo !== undefined) q = q.where('date', '<=', upTo);
  const rows = await q.orderBy('date').orderBy('kind').orderBy('id').execute();
  return rows.map(toWipCopy);
}

/**
 * The quantity and unit cost (a fixed charge's unit price) of these disbursements and fixed
 * charges (a bill's PDF shows them), by item id: one narrow read of the items asked for, not
 * their whole rows. Items without both are left out.
 */
export async function itemUnits(db: Executor, itemIds: readonly string[]): Promise<Map<string, { quantityMilli: number; unitCostMinor: number }>> {
  const out = new Map<string, { quantityMilli: number; unitCostMinor: number }>();
  for (let i = 0; i < itemIds.length; i += 500) {
    const rows = await db.selectFrom('billing_wip').select(['id', 'quantity_milli', 'unit_cost_minor'])
      .where('id', 'in', itemIds.slice(i, i + 500)).where('kind', 'in', ['disbursement', 'fixed_charge'])
      .where('quantity_milli', 'is not', null).where('unit_cost_minor', 'is not', null).execute();
    for (const r of rows) out.set(r.id as string, { quantityMilli: num(r.quantity_milli), unitCostMinor: num(r.unit_cost_minor) });
  }
  return out;
}

/** The WIP items on one bill (set by the composer). */
export async function wipOnBill(db: Executor, billId: string): Promise<WipCopy[]> {
  const rows = await db.selectFrom('billing_wip').selectAll().select(sql<string>`${billId}`.as('bill_id'))
    .where('id', 'in', db.selectFrom('billing_bill_line').select('item_id').where('bill_id', '=', billId).where('live', '=', 1))
    .orderBy('date').orderBy('kind').orderBy('id').execute();
  return rows.map(toWipCopy);
}

export interface MatterBillingFilters {
  /** Defaults to 'open'; 'any' for all. */
  status?: 'open' | 'closed' | 'any';
  clientId?: string;
  responsibleTimekeeperId?: string;
  billingTimekeeperId?: string;
  billingCycle?: string;
  /** Matters whose next billing date is on or before this date (matters with no date are left out). */
  dueBy?: string;
  /** Only matters with unbilled WIP dated on or before `upTo` (or any date). */
  withUnbilledWip?: boolean;
  /** Cut-off for the unbilled totals (inclusive). */
  upTo?: string;
  /** Leave out matters whose effective options exclude them from mass billing (default false). */
  excludeMassBillingOptOuts?: boolean;
}

/** A matter of billing's copy as billing lists show it (the due list, mass billing). */
export interface MatterBillingSummary {
  matterId: string;
  clientId: string;
  fileNumber: string;
  name: string;
  clientName: string;
  status: 'open' | 'closed';
  currency: string;
  billingCycle: string;
  nextBillingDate: string | null;
  wipCapMinor: number | null;
  responsibleTimekeeperId: string;
  billingTimekeeperId: string;
}

export interface MatterForBilling extends MatterBillingSummary {
  /** Unbilled items on no bill (quoted fixed charges left out), up to the cut-off: count and billable totals (behaviour 'bill'). */
  unbilledCount: number;
  unbilledBillableMinor: number;
  unbilledFeesMinor: number;
  unbilledDisbursementsMinor: number;
  /** True when the billable unbilled total reaches the WIP cap. */
  overCap: boolean;
  massBillingExcluded: boolean;
}

/** Matters for a billing run (mass billing, the due list): the copy only, ordered by client then matter number. */
export async function listMattersForBilling(db: Executor, filters: MatterBillingFilters = {}): Promise<MatterForBilling[]> {
  const status = filters.status ?? 'open';
  let wip = db.selectFrom('billing_wip')
    .select((eb) => [
      'matter_id',
      eb.fn.countAll<number>().as('n'),
      sql<number>`coalesce(sum(case when behaviour = 'bill' then amount_minor else 0 end), 0)`.as('billable'),
      sql<number>`coalesce(sum(case when behaviour = 'bill' and kind <> 'disbursement' then amount_minor else 0 end), 0)`.as('fees'),
      sql<number>`coalesce(sum(case when behaviour = 'bill' and kind = 'disbursement' then amount_minor else 0 end), 0)`.as('disbursements'),
    ])
    .where(openWip())
    .where('quoted', '=', 0);
  if (filters.upTo !== undefined) wip = wip.where('date', '<=', filters.upTo);
  let q = db.selectFrom('billing_matter as m')
    .leftJoin(wip.groupBy('matter_id').as('w'), 'w.matter_id', 'm.id')
    .leftJoin('billing_client as c', 'c.id', 'm.client_id')
    .select([
      'm.id', 'm.client_id', 'm.file_number', 'm.name', 'm.client_name', 'c.name as current_client_name', 'm.status', 'm.currency',
      'm.billing_cycle', 'm.next_billing_date', 'm.wip_cap_minor', 'm.responsible_timekeeper_id', 'm.billing_timekeeper_id',
      'm.options_json', 'm.client_number', 'm.matter_number', 'w.n', 'w.billable', 'w.fees', 'w.disbursements',
    ]);
  if (status !== 'any') q = q.where('m.status', '=', status);
  if (filters.clientId) q = q.where('m.client_id', '=', filters.clientId);
  if (filters.responsibleTimekeeperId) q = q.where('m.responsible_timekeeper_id', '=', filters.responsibleTimekeeperId);
  if (filters.billingTimekeeperId) q = q.where('m.billing_timekeeper_id', '=', filters.billingTimekeeperId);
  if (filters.billingCycle) q = q.where('m.billing_cycle', '=', filters.billingCycle);
  if (filters.dueBy) q = q.where('m.next_billing_date', '<=', filters.dueBy);
  if (filters.withUnbilledWip) q = q.where('w.n', '>', 0);
  const rows = await q.orderBy('m.client_number').orderBy('m.matter_number').execute() as Record<string, any>[];
  const firm = rows.some((r) => r.options_json === null) ? await getFirmSettings(db) : null;
  const out: MatterForBilling[] = [];
  for (const r of rows) {
    const options = (parse(r.options_json) as MatterBillingOptions | null) ?? firm?.matterDefaults ?? null;
    const massBillingExcluded = options?.massBilling?.exclude === true;
    if (filters.excludeMassBillingOptOuts && massBillingExcluded) continue;
    const billable = num(r.billable ?? 0);
    const cap = numOrNull(r.wip_cap_minor);
    out.push({
      matterId: r.id, clientId: r.client_id, fileNumber: r.file_number, name: r.name, clientName: r.current_client_name ?? r.client_name,
      status: r.status, currency: r.currency, billingCycle: r.billing_cycle, nextBillingDate: r.next_billing_date, wipCapMinor: cap,
      responsibleTimekeeperId: r.responsible_timekeeper_id, billingTimekeeperId: r.billing_timekeeper_id,
      unbilledCount: num(r.n ?? 0), unbilledBillableMinor: billable, unbilledFeesMinor: num(r.fees ?? 0),
      unbilledDisbursementsMinor: num(r.disbursements ?? 0), overCap: cap !== null && billable >= cap, massBillingExcluded,
    });
  }
  return out;
}

/** Conflicts the copy recorded and nobody has resolved yet, oldest first. */
export async function openConflicts(db: Executor, filters: { matterId?: string } = {}): Promise<CopyConflict[]> {
  let q = db.selectFrom('billing_copy_conflict').selectAll().where('resolved_at', 'is', null);
  if (filters.matterId) q = q.where('matter_id', '=', filters.matterId);
  const rows = await q.orderBy('detected_at').orderBy('id').execute() as Record<string, any>[];
  return rows.map((r) => ({
    id: r.id, eventId: r.event_id, eventType: r.event_type, entityType: r.entity_type, entityId: r.entity_id, matterId: r.matter_id,
    billId: r.bill_id, reason: r.reason, detail: parse(r.detail_json), detectedAt: r.detected_at, resolvedAt: r.resolved_at,
  }));
}
