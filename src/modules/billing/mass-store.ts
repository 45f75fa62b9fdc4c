/**
 * Mass billing's queries on billing's own tables: the candidates for a run (billing's copy
 * of matters with their unbilled totals under the run's filters), the runs ("batches") and
 * their per-matter rows, the draft bills list, and the bulk writes the fast drafting and
 * approving paths use (multi-row inserts through one compiled statement per chunk).
 */
import { sql } from 'kysely';
import { assert } from '../../shared/assert.ts';
import type { Executor } from '../../shared/db.ts';
import { insertMany, selectRaw, marks, writersSerialised } from '../../shared/sql.ts';
import type { BillingOptionSection, MatterBillingOptions } from '../matters/events.ts';
import type { CapFilter } from './domain/mass.ts';
import * as clients from '../../shared/clients.ts';
import { literalLike } from '../../shared/clients.ts';
import { getFirmSettings, OPEN_WIP_SQL } from './store.ts';
import type { MatterBillingSummary } from './store.ts';

const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

// ---------------------------------------------------------------------------------------
// Bulk writes (the kernel's raw multi-row statements, src/shared/sql.ts)
// ---------------------------------------------------------------------------------------

export { execRaw, marks, selectRaw } from '../../shared/sql.ts';

/** Insert rows (all with the same columns) in as few statements as the parameter limit allows. */
export async function insertRows(ex: Executor, table: string, rows: readonly Record<string, unknown>[]): Promise<void> {
  if (rows.length === 0) return;
  await insertMany(ex, table, Object.keys(rows[0]!), rows);
}

/** Receipts allocated to each of the bills, from billing's copy of the ledger's bill balances (as balances.receiptsAllocatedMinor; absent: 0). */
export async function receiptsAllocated(ex: Executor, billIds: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (let i = 0; i < billIds.length; i += 1_000) {
    const chunk = billIds.slice(i, i + 1_000);
    for (const r of await selectRaw<{ bill_id: string; paid_minor: unknown }>(ex,
      `select bill_id, paid_minor from billing_bill_balance where status = 'open' and bill_id in (${marks(chunk.length)})`, chunk)) out.set(r.bill_id, Number(r.paid_minor));
  }
  return out;
}

/** Of these bills, the drafts counted and totalled by invoice date, hold and currency (read by the 1,000): what approving or deleting them all would post where, refuse, and come to. */
export async function draftDatesAndHolds(ex: Executor, billIds: readonly string[]): Promise<{ invoiceDate: string; onHold: boolean; currency: string; count: number; totalMinor: number }[]> {
  const groups = new Map<string, { invoiceDate: string; onHold: boolean; currency: string; count: number; totalMinor: number }>();
  const ids = [...new Set(billIds)];
  for (let i = 0; i < ids.length; i += 1_000) {
    const chunk = ids.slice(i, i + 1_000);
    for (const r of await selectRaw<{ invoice_date: string; on_hold: unknown; currency: string; n: unknown; total: unknown }>(ex,
      `select invoice_date, on_hold, currency, count(*) as n, sum(total_minor) as total from billing_bill where status = 'draft' and id in (${marks(chunk.length)}) group by invoice_date, on_hold, currency`, chunk)) {
      const key = `${r.invoice_date}|${Number(r.on_hold)}|${r.currency}`;
      const was = groups.get(key) ?? { invoiceDate: r.invoice_date, onHold: Number(r.on_hold) === 1, currency: r.currency, count: 0, totalMinor: 0 };
      was.count += Number(r.n);
      was.totalMinor += Number(r.total);
      assert(Number.isSafeInteger(was.totalMinor), 'draft totals stay within safe integers');
      groups.set(key, was);
    }
  }
  return [...groups.values()];
}

/** Drafts in no run (made or changed in the composer): how many, and the first `limit` ids by creation. */
export async function draftsInNoRun(ex: Executor, limit: number): Promise<{ total: number; ids: string[] }> {
  assert(Number.isSafeInteger(limit) && limit >= 0 && limit <= 1_000, 'draftsInNoRun: a limit of 0 to 1,000');
  // Both read billing_bill_batch_status_idx (batch_id, status, created_at, id).
  const total = Number((await selectRaw<{ n: unknown }>(ex, `select count(*) as n from billing_bill where status = 'draft' and batch_id is null`, []))[0]?.n ?? 0);
  const ids = total === 0 ? [] : (await selectRaw<{ id: string }>(ex, `select id from billing_bill where status = 'draft' and batch_id is null order by created_at, id limit ${limit}`, [])).map((r) => r.id);
  return { total, ids };
}

export type { ClientChoice } from '../../shared/clients.ts';
/** The mass billing Client filter's lookups, in billing's copy of the clients (shared/clients.ts). */
export const clientsMatching = (ex: Executor, text: string, limit: number) => clients.clientsMatching(ex, 'billing_client', text, limit);
export const clientsNamed = (ex: Executor, text: string, opts: { partial?: boolean } = {}) => clients.clientsNamed(ex, 'billing_client', text, opts);
export const clientById = (ex: Executor, id: string) => clients.clientById(ex, 'billing_client', id);
/** The CLI's --client: an id, number, name or "number name" (not part of a name: nothing shows a scheduled run the client found). */
export const clientTyped = (ex: Executor, text: string) => clients.clientTyped(ex, 'billing_client', text);

/** How many of these bills are drafts (read by the 1,000). */
export async function draftCount(ex: Executor, billIds: readonly string[]): Promise<number> {
  let n = 0;
  for (let i = 0; i < billIds.length; i += 1_000) {
    const chunk = billIds.slice(i, i + 1_000);
    n += Number((await selectRaw<{ n: unknown }>(ex, `select count(*) as n from billing_bill where status = 'draft' and id in (${marks(chunk.length)})`, chunk))[0]?.n ?? 0);
  }
  return n;
}

/** How a clerk knows each bill: its file number, and its number once it has one (read by the 1,000, no lines). */
export async function billLabels(ex: Executor, billIds: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < billIds.length; i += 1_000) {
    const chunk = billIds.slice(i, i + 1_000);
    for (const r of await selectRaw<{ id: string; file_number: string; number: string | null }>(ex,
      `select id, file_number, number from billing_bill where id in (${marks(chunk.length)})`, chunk)) out.set(r.id, `${r.file_number}${r.number ? ` (${r.number})` : ' draft'}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Candidates for a run
// ---------------------------------------------------------------------------------------

/** Seed 004's filters, plus the run's dates. */
export interface MassFilters {
  invoiceDate: string;
  upTo: string;
  clientId?: string;
  matterId?: string;
  responsibleTimekeeperId?: string;
  billingTimekeeperId?: string;
  billingCycle?: string;
  nextBillingFrom?: string;
  nextBillingTo?: string;
  cap?: CapFilter;
  /**
   * Seed 004's time selection. `cap` ("To a cap"): the time of only those matters whose unbilled
   * WIP has reached their own WIP cap ("default from matter"), or whose unbilled time comes to at
   * least an amount ("or specify"); the other matters' time waits (their other items do not).
   */
  time?: { from?: string; to?: string; timekeeperId?: string; cap?: CapFilter };
  disbursements?: { from?: string; to?: string; code?: string };
  /** Only matters set to bill expenses only. */
  expensesOnly?: boolean;
}

export interface MassCandidate extends MatterBillingSummary {
  clientNumber: number;
  matterNumber: number;
  hasClient: boolean;
  hasBillableParty: boolean;
  options: MatterBillingOptions | null;
  /** Where the options come from, and the sections the matter sets itself (as billing's copy of a matter says). */
  optionsSource: 'matter' | 'firm_defaults' | 'none';
  overridden: BillingOptionSection[];
  draftId: string | null;
  draftNumber: string | null;
  /** A bill run not finished (drafting, or stopped part way and resumable: see massCandidates' liveRuns) with the matter queued, or null. */
  queuedRunId: string | null;
  /** Chargeable (behaviour "bill") unbilled items: fees (time and fixed charges), of them time, and disbursements. */
  feeItems: number;
  timeItems: number;
  disbursementItems: number;
  /** Billable (behaviour 'bill') unbilled amounts under the filters. */
  feesMinor: number;
  disbursementsMinor: number;
  /** All the matter's billable unbilled WIP, whatever its date (seed 004's cap measures this); null when not read (the matter has no cap and no cap filter by amount asked for it). */
  unbilledTotalMinor: number | null;
}

/** The item conditions of the run's time and disbursement filters (seed 004), on billing_wip. */
function itemConditions(f: MassFilters): { text: string; params: unknown[] } {
  // Hidden items are never billed, so they never make a matter billable (seed 003 behaviours).
  const parts: string[] = ["w.matters_status = 'unbilled'", 'not exists (select 1 from billing_bill_line l where l.item_id = w.id and l.live = 1)', 'w.quoted = 0', "w.behaviour <> 'hide'", 'w.date <= ?'];
  const params: unknown[] = [f.upTo];
  const t = f.time;
  if (t?.cap && t.cap.kind !== 'none') {
    const q = timeCapSql(t.cap);
    parts.push(`(w.kind <> 'time' or w.matter_id in (${q.text}))`);
    params.push(...q.params);
  }
  if (t && (t.from || t.to || t.timekeeperId)) {
    const c: string[] = [];
    if (t.from) { c.push('w.date >= ?'); params.push(t.from); }
    if (t.to) { c.push('w.date <= ?'); params.push(t.to); }
    if (t.timekeeperId) { c.push('w.timekeeper_id = ?'); params.push(t.timekeeperId); }
    parts.push(`(w.kind <> 'time' or (${c.join(' and ')}))`);
  }
  const d = f.disbursements;
  if (d && (d.from || d.to || d.code)) {
    const c: string[] = [];
    if (d.from) { c.push('w.date >= ?'); params.push(d.from); }
    if (d.to) { c.push('w.date <= ?'); params.push(d.to); }
    if (d.code) { c.push('w.code = ?'); params.push(d.code); }
    parts.push(`(w.kind <> 'disbursement' or (${c.join(' and ')}))`);
  }
  return { text: parts.join(' and '), params };
}

/**
 * The matters whose time seed 004's "To a cap" lets through, as SQL (a subquery of matter ids):
 * all the matter's unbilled billable WIP, whatever its date, at or over its own WIP cap (as the
 * matter filter measures it); or its unbilled billable time at or over the amount.
 */
function timeCapSql(cap: Exclude<CapFilter, { kind: 'none' }>): { text: string; params: unknown[] } {
  if (cap.kind === 'matter') {
    return {
      text: `select billing_wip.matter_id from billing_wip join billing_matter cm on cm.id = billing_wip.matter_id
        where ${OPEN_WIP_SQL} and billing_wip.quoted = 0 and billing_wip.behaviour = 'bill' and cm.wip_cap_minor is not null
        group by billing_wip.matter_id, cm.wip_cap_minor having sum(billing_wip.amount_minor) >= cm.wip_cap_minor`,
      params: [],
    };
  }
  // An amount is in one currency: a matter billed in another is not measured against it (see CapFilter).
  if (cap.currency !== undefined) {
    return {
      text: `select billing_wip.matter_id from billing_wip join billing_matter cm on cm.id = billing_wip.matter_id
        where ${OPEN_WIP_SQL} and billing_wip.kind = 'time' and billing_wip.behaviour = 'bill' and cm.currency = ?
        group by billing_wip.matter_id having sum(billing_wip.amount_minor) >= ?`,
      params: [cap.currency, cap.amountMinor],
    };
  }
  return {
    text: `select matter_id from billing_wip where ${OPEN_WIP_SQL} and kind = 'time' and behaviour = 'bill' group by matter_id having sum(amount_minor) >= ?`,
    params: [cap.amountMinor],
  };
}

/** Of these matters, the ones whose time a "To a cap" time filter lets through (all of them without one). */
export async function timeCapMatters(ex: Executor, matterIds: readonly string[], cap: CapFilter | undefined): Promise<Set<string>> {
  if (!cap || cap.kind === 'none') return new Set(matterIds);
  const q = timeCapSql(cap);
  const out = new Set<string>();
  for (let i = 0; i < matterIds.length; i += 500) {
    const chunk = matterIds.slice(i, i + 500);
    for (const r of await selectRaw<{ matter_id: string }>(ex, `select matter_id from (${q.text}) passing where matter_id in (${marks(chunk.length)})`, [...q.params, ...chunk])) out.add(r.matter_id);
  }
  return out;
}

/**
 * Which runs still hold their queued matters: those that moved (each chunk drafted moves a run)
 * since `movedSince`, and, of those marked running, only those whose process said it is drafting
 * them (billing_batch.heartbeat_at) since `beatSince`: a run whose process stopped (killed, the
 * server restarted) lets its matters go a minute after its last heartbeat, not ten.
 */
export interface LiveRuns { movedSince: string; beatSince: string }

/**
 * Matters queued (pending) in a run not finished (pending, running, or failed and resumable)
 * that is live (LiveRuns: two parameters); one that is not stopped with its process, or failed
 * long enough ago to be left, and holds nothing back.
 */
const QUEUED_SQL = `select bm.matter_id, min(bm.batch_id) as batch_id from billing_batch b
      join billing_batch_matter bm on bm.batch_id = b.id and bm.state = 'pending'
      where (b.status = 'pending' or b.status = 'running' or b.status = 'failed') and b.updated_at >= ?
        and (b.status <> 'running' or b.heartbeat_at is null or b.heartbeat_at >= ?)`;

/** Of these matters, those queued in a run not finished (QUEUED_SQL), each with that run's id. */
export async function queuedIn(ex: Executor, matterIds: readonly string[], live: LiveRuns): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < matterIds.length; i += 500) {
    const chunk = matterIds.slice(i, i + 500);
    for (const r of await selectRaw<{ matter_id: string; batch_id: string }>(ex, `${QUEUED_SQL} and bm.matter_id in (${marks(chunk.length)}) group by bm.matter_id`, [live.movedSince, live.beatSince, ...chunk])) {
      out.set(r.matter_id, r.batch_id);
    }
  }
  return out;
}

/** The Postgres advisory lock class of creating a bill run: runs take their matters one at a time (SQLite runs one writer at a time). */
const RUN_CREATE_LOCK_CLASS = 7_601;

export async function lockRunCreation(trx: Executor): Promise<void> {
  if (writersSerialised(trx)) return;
  await sql`select pg_advisory_xact_lock(${RUN_CREATE_LOCK_CLASS}, 0)`.execute(trx);
}

/** Hand-picked matter ids named in the candidates query at most (see massCandidates). */
export const HAND_PICKED_IN_QUERY = 5_000;

/**
 * Billing's copy of matters under the run's matter filters, with their unbilled items under
 * the item filters, ordered by client then matter number. Eligibility is decided by the
 * caller (domain/mass.ts). `matterIds`: only these.
 */
export async function massCandidates(ex: Executor, f: MassFilters, opts: { matterIds?: readonly string[]; limit?: number; liveRuns?: LiveRuns; capStatus?: boolean } = {}): Promise<MassCandidate[]> {
  const items = itemConditions(f);
  const where: string[] = [];
  const params: unknown[] = [...items.params];
  // A live run not finished holds its queued matters (QUEUED_SQL, LiveRuns).
  const since = opts.liveRuns;
  if (since !== undefined) params.push(since.movedSince, since.beatSince);
  if (f.clientId) { where.push('m.client_id = ?'); params.push(f.clientId); }
  if (f.matterId) { where.push('m.id = ?'); params.push(f.matterId); }
  if (f.responsibleTimekeeperId) { where.push('m.responsible_timekeeper_id = ?'); params.push(f.responsibleTimekeeperId); }
  if (f.billingTimekeeperId) { where.push('m.billing_timekeeper_id = ?'); params.push(f.billingTimekeeperId); }
  if (f.billingCycle) { where.push('m.billing_cycle = ?'); params.push(f.billingCycle); }
  if (f.nextBillingFrom) { where.push('m.next_billing_date >= ?'); params.push(f.nextBillingFrom); }
  if (f.nextBillingTo) { where.push('m.next_billing_date <= ?'); params.push(f.nextBillingTo); }
  // Hand-picked matters: named in the query up to HAND_PICKED_IN_QUERY; a longer list (a run may
  // pick 50,000, past SQLite's 32,766 variables) reads the matters the filters give, as Bill all
  // does, and keeps the picked ones.
  let picked: Set<string> | null = null;
  if (opts.matterIds) {
    if (opts.matterIds.length === 0) return [];
    if (opts.matterIds.length <= HAND_PICKED_IN_QUERY) {
      where.push(`m.id in (${marks(opts.matterIds.length)})`);
      params.push(...opts.matterIds);
    } else {
      picked = new Set(opts.matterIds);
    }
  }
  // Seed 004's cap compares the cap with all the matter's unbilled WIP (as the matter's own cap status does), not just
  // what the run's cut-off and item filters leave: read for every matter under a cap filter by amount, else for the
  // matters that have a cap (their "over cap" badge says the same with the filter or without it).
  // (capStatus false: a run taking its matters, which shows no badge, reads them only for a cap filter.)
  const totalsForAll = f.cap !== undefined && f.cap.kind === 'amount';
  const readTotals = totalsForAll || f.cap?.kind === 'matter' || opts.capStatus !== false;
  const text = `select m.id, m.client_id, m.client_number, m.matter_number, m.file_number, m.name, m.client_name, m.status, m.currency,
      m.billing_cycle, m.next_billing_date, m.wip_cap_minor, m.responsible_timekeeper_id, m.billing_timekeeper_id, m.options_json, m.overridden_json,
      m.billable_party_json, c.id as present_client_id, c.name as current_client_name, d.id as draft_id, d.number as draft_number,
      w.fee_items, w.time_items, w.disbursement_items, w.fees, w.disbursements${readTotals ? ', t.unbilled_total' : ''}${since !== undefined ? ', q.batch_id as queued_batch_id' : ''}
    from billing_matter m
    left join billing_client c on c.id = m.client_id
    left join billing_bill d on d.matter_id = m.id and d.status = 'draft'
    left join (
      select w.matter_id,
        sum(case when w.behaviour = 'bill' and w.kind <> 'disbursement' then 1 else 0 end) as fee_items,
        sum(case when w.behaviour = 'bill' and w.kind = 'time' then 1 else 0 end) as time_items,
        sum(case when w.behaviour = 'bill' and w.kind = 'disbursement' then 1 else 0 end) as disbursement_items,
        sum(case when w.behaviour = 'bill' and w.kind <> 'disbursement' then w.amount_minor else 0 end) as fees,
        sum(case when w.behaviour = 'bill' and w.kind = 'disbursement' then w.amount_minor else 0 end) as disbursements
      from billing_wip w where ${items.text} group by w.matter_id
    ) w on w.matter_id = m.id
    ${readTotals ? `left join (
      select matter_id, sum(amount_minor) as unbilled_total from billing_wip
      where ${OPEN_WIP_SQL} and quoted = 0 and behaviour = 'bill'${totalsForAll ? '' : ' and matter_id in (select id from billing_matter where wip_cap_minor is not null)'}
      group by matter_id
    ) t on t.matter_id = m.id` : ''}
    ${since !== undefined ? `left join (${QUEUED_SQL} group by bm.matter_id) q on q.matter_id = m.id` : ''}
    ${where.length ? `where ${where.join(' and ')}` : ''}
    order by m.client_number, m.matter_number, m.id
    ${opts.limit && !picked ? `limit ${Math.floor(opts.limit)}` : ''}`;
  const all = await selectRaw<Record<string, any>>(ex, text, params);
  const rows = picked ? all.filter((r) => picked.has(r.id as string)).slice(0, opts.limit ? Math.floor(opts.limit) : undefined) : all;
  const firm = rows.some((r) => r.options_json === null) ? await getFirmSettings(ex) : null;
  const out: MassCandidate[] = [];
  for (const r of rows) {
    const options = r.options_json ? JSON.parse(r.options_json) as MatterBillingOptions : firm?.matterDefaults ?? null;
    if (f.expensesOnly && !options?.massBilling.onlyExpenses) continue;
    out.push({
      matterId: r.id, clientId: r.client_id, clientNumber: num(r.client_number), matterNumber: num(r.matter_number), fileNumber: r.file_number,
      name: r.name, clientName: r.current_client_name ?? r.client_name, status: r.status, currency: r.currency, billingCycle: r.billing_cycle,
      nextBillingDate: r.next_billing_date, wipCapMinor: numOrNull(r.wip_cap_minor), responsibleTimekeeperId: r.responsible_timekeeper_id,
      billingTimekeeperId: r.billing_timekeeper_id, hasClient: r.present_client_id !== null, hasBillableParty: r.billable_party_json !== null,
      options, optionsSource: r.options_json ? 'matter' : options ? 'firm_defaults' : 'none', overridden: r.overridden_json ? JSON.parse(r.overridden_json) as BillingOptionSection[] : [],
      draftId: r.draft_id, draftNumber: r.draft_number, queuedRunId: r.queued_batch_id ?? null, feeItems: num(r.fee_items ?? 0), timeItems: num(r.time_items ?? 0), disbursementItems: num(r.disbursement_items ?? 0),
      feesMinor: num(r.fees ?? 0), disbursementsMinor: num(r.disbursements ?? 0), unbilledTotalMinor: readTotals && (totalsForAll || r.wip_cap_minor !== null) ? num(r.unbilled_total ?? 0) : null,
    });
  }
  return out;
}

/** Fixed-fee schedule rows on live bills, per matter (row ids). */
export async function takenScheduleRows(ex: Executor, matterIds: readonly string[]): Promise<Map<string, Map<string, string>>> {
  const out = new Map<string, Map<string, string>>();
  for (let i = 0; i < matterIds.length; i += 500) {
    const chunk = matterIds.slice(i, i + 500);
    const rows = await selectRaw<{ matter_id: string; id: string; number: string | null; schedule_rows_json: string }>(ex,
      `select matter_id, id, number, schedule_rows_json from billing_bill where status <> 'deleted' and schedule_rows_json <> '[]' and matter_id in (${marks(chunk.length)})`, chunk);
    for (const r of rows) {
      let m = out.get(r.matter_id);
      if (!m) { m = new Map(); out.set(r.matter_id, m); }
      for (const rowId of JSON.parse(r.schedule_rows_json) as string[]) m.set(rowId, r.number ?? `draft ${r.id}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------

export type BatchStatus = 'pending' | 'running' | 'done' | 'failed';

export interface Batch {
  id: string;
  status: BatchStatus;
  invoiceDate: string;
  upTo: string;
  template: string | null;
  paymentTermsDays: number | null;
  mode: 'all' | 'selected';
  filters: unknown;
  matterCount: number;
  draftedCount: number;
  skippedCount: number;
  itemCount: number;
  error: string | null;
  createdAt: string;
  createdBy: string;
  updatedAt: string;
  finishedAt: string | null;
  /** When the process drafting it last said it was alive (RUN_HEARTBEAT_MS), or null. */
  heartbeatAt: string | null;
}

export interface BatchRow {
  matterId: string;
  position: number;
  state: 'pending' | 'drafted' | 'skipped';
  billId: string | null;
  itemCount: number;
  totalMinor: number | null;
  reason: string | null;
  fileNumber: string | null;
  matterName: string | null;
  clientName: string | null;
  /** The currency of totalMinor: the bill's, else the matter's (null: billing has no copy of the matter). */
  currency: string | null;
}

function toBatch(r: Record<string, any>): Batch {
  return {
    id: r.id, status: r.status, invoiceDate: r.invoice_date, upTo: r.up_to, template: r.template, paymentTermsDays: numOrNull(r.payment_terms_days),
    mode: r.mode, filters: JSON.parse(r.filters_json) as unknown, matterCount: num(r.matter_count), draftedCount: num(r.drafted_count),
    skippedCount: num(r.skipped_count), itemCount: num(r.item_count), error: r.error, createdAt: r.created_at, createdBy: r.created_by,
    updatedAt: r.updated_at, finishedAt: r.finished_at, heartbeatAt: r.heartbeat_at ?? null,
  };
}

export async function findBatch(ex: Executor, id: string): Promise<Batch | null> {
  const r = await ex.selectFrom('billing_batch').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? toBatch(r) : null;
}

export async function listBatches(ex: Executor, opts: { limit?: number } = {}): Promise<Batch[]> {
  const rows = await ex.selectFrom('billing_batch').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(opts.limit ?? 50).execute();
  return rows.map(toBatch);
}

/** The drafts each of these batches holds now (drafts deleted, approved or taken out since leave it). */
export async function draftsNowIn(ex: Executor, batchIds: readonly string[]): Promise<Map<string, number>> {
  assert(batchIds.length <= 1_000, 'draftsNowIn: at most 1,000 batches at once');
  const out = new Map<string, number>();
  if (batchIds.length === 0) return out;
  const rows = await ex.selectFrom('billing_bill').select(['batch_id', (eb) => eb.fn.countAll<number>().as('n')])
    .where('status', '=', 'draft').where('batch_id', 'in', [...batchIds]).groupBy('batch_id').execute() as { batch_id: string; n: unknown }[];
  for (const r of rows) out.set(r.batch_id, Number(r.n));
  return out;
}

export async function batchRows(ex: Executor, batchId: string, opts: { state?: BatchRow['state']; limit?: number; offset?: number } = {}): Promise<BatchRow[]> {
  let q = ex.selectFrom('billing_batch_matter as r').leftJoin('billing_matter as m', 'm.id', 'r.matter_id').leftJoin('billing_bill as b', 'b.id', 'r.bill_id')
    .select(['r.matter_id', 'r.position', 'r.state', 'r.bill_id', 'r.item_count', 'r.total_minor', 'r.reason', 'm.file_number', 'm.name', 'm.client_name', 'b.currency as bill_currency', 'm.currency as matter_currency'])
    .where('r.batch_id', '=', batchId);
  if (opts.state) q = q.where('r.state', '=', opts.state);
  const rows = await q.orderBy('r.position').limit(opts.limit ?? 1000).offset(opts.offset ?? 0).execute() as Record<string, any>[];
  return rows.map((r) => ({
    matterId: r.matter_id, position: num(r.position), state: r.state, billId: r.bill_id, itemCount: num(r.item_count), totalMinor: numOrNull(r.total_minor),
    reason: r.reason, fileNumber: r.file_number, matterName: r.name, clientName: r.client_name, currency: r.bill_currency ?? r.matter_currency ?? null,
  }));
}

export async function pendingMatters(ex: Executor, batchId: string, limit: number): Promise<string[]> {
  const rows = await ex.selectFrom('billing_batch_matter').select('matter_id').where('batch_id', '=', batchId).where('state', '=', 'pending')
    .orderBy('position').limit(limit).execute() as { matter_id: string }[];
  return rows.map((r) => r.matter_id);
}

/** Record outcomes of pending rows (a row already settled by another worker is left alone); bumps the run's counters by what changed. */
export async function settleRows(trx: Executor, batchId: string, outcomes: readonly { matterId: string; billId: string | null; itemCount: number; totalMinor: number | null; reason: string | null }[], at: string): Promise<void> {
  let drafted = 0;
  let skipped = 0;
  let items = 0;
  // One statement per 1,000 outcomes (the first outcome of a matter counts, as one update per outcome would).
  // \`state || ''\` keeps the planner off the (batch_id, state) index, which would scan every
  // pending row of the run for each outcome; the primary key finds each row directly.
  const seen = new Set<string>();
  const unique = outcomes.filter((o) => !seen.has(o.matterId) && (seen.add(o.matterId), true));
  for (let i = 0; i < unique.length; i += 1_000) {
    const chunk = unique.slice(i, i + 1_000);
    const params: unknown[] = [];
    for (const o of chunk) params.push(o.matterId, o.billId ? 'drafted' : 'skipped', o.billId, o.itemCount, o.totalMinor, o.billId ? null : o.reason);
    const settled = new Set((await selectRaw<{ matter_id: string }>(trx,
      `with v (matter_id, state, bill_id, item_count, total_minor, reason) as (values ${chunk.map(() => '(?, ?, ?, cast(? as integer), cast(? as bigint), ?)').join(',')})
      update billing_batch_matter set state = v.state, bill_id = v.bill_id, item_count = v.item_count, total_minor = v.total_minor, reason = v.reason, updated_at = ?
      from v where billing_batch_matter.batch_id = ? and billing_batch_matter.matter_id = v.matter_id and billing_batch_matter.state || '' = 'pending'
      returning billing_batch_matter.matter_id`, [...params, at, batchId])).map((r) => r.matter_id));
    for (const o of chunk) {
      if (!settled.has(o.matterId)) continue;
      if (o.billId) { drafted++; items += o.itemCount; } else skipped++;
    }
  }
  await trx.updateTable('billing_batch').set({
    drafted_count: sql`drafted_count + ${drafted}`, skipped_count: sql`skipped_count + ${skipped}`, item_count: sql`item_count + ${items}`, updated_at: at,
  }).where('id', '=', batchId).execute();
}

// ---------------------------------------------------------------------------------------
// Draft bills list
// ---------------------------------------------------------------------------------------

export interface DraftRow {
  billId: string;
  batchId: string | null;
  number: string | null;
  matterId: string;
  fileNumber: string;
  matterName: string | null;
  clientId: string;
  clientName: string | null;
  invoiceDate: string;
  upTo: string;
  dueDate: string;
  currency: string;
  feesMinor: number;
  fixedChargesMinor: number;
  disbursementsMinor: number;
  /** The bill's discount (a positive amount, taken off) and interest: with fees, disbursements and tax, the total. */
  discountMinor: number;
  interestMinor: number;
  taxMinor: number;
  totalMinor: number;
  onHold: boolean;
  conflicts: number;
  template: string | null;
  createdAt: string;
  /** The draft's version (each change adds one): what the list showed. */
  version: number;
  /** When the draft's batch (bill run) was created; null for a draft made on its own. */
  batchCreatedAt: string | null;
  /** The matter's billing timekeeper (initials), as billing's copy has it; null when the copy has none. */
  billingTimekeeper: string | null;
  /** Who created the draft (the run's or the clerk's account). */
  createdBy: string;
}

/**
 * The drafts list's sorts, each the columns it orders by. File numbers sort as numbers
 * (client, then matter: 2.1 before 10.1), as the matter lists do; a batch by when it ran.
 */
export const DRAFT_SORTS = {
  batch: ['bt.created_at', 'b.batch_id'], bill: ['b.number'], client: ['m.client_name'], matter: ['m.client_number', 'm.matter_number'],
  // The Fees column shows fees and fixed charges together: sorted by what it shows.
  fees: ['(b.fees_minor + b.fixed_charges_minor)'],
  disbursements: ['b.disbursements_minor'], discount: ['b.discount_minor'], interest: ['b.interest_minor'], tax: ['b.tax_minor'], total: ['b.total_minor'], hold: ['b.on_hold'], created: ['b.created_at'], invoice: ['b.invoice_date'],
  billing: ['tk.initials'], creator: ['b.created_by'],
} as const;
export type DraftSort = keyof typeof DRAFT_SORTS;
/** The Draft bills list's orders as the clerk reads them. */
export const DRAFT_SORT_LABELS: Record<DraftSort, string> = {
  batch: 'Batch', bill: 'Bill number', client: 'Client', matter: 'Matter (file number)', fees: 'Fees', disbursements: 'Disbursements', discount: 'Discount',
  interest: 'Interest', tax: 'Tax', total: 'Total', hold: 'On hold', created: 'Created', invoice: 'Invoice date', billing: 'Billing timekeeper', creator: 'Created by',
};

export interface DraftFilters {
  batchId?: string;
  clientId?: string;
  q?: string;
  onHold?: boolean;
  sort?: DraftSort;
  dir?: 'asc' | 'desc';
  limit?: number;
  offset?: number;
  ids?: readonly string[];
}

/** The drafts list's FROM and WHERE for the filters (null: no draft can match). */
function draftsFrom(f: DraftFilters): { from: string; params: unknown[] } | null {
  const where: string[] = ["b.status = 'draft'"];
  const params: unknown[] = [];
  if (f.batchId) { where.push('b.batch_id = ?'); params.push(f.batchId); }
  if (f.clientId) { where.push('b.client_id = ?'); params.push(f.clientId); }
  if (f.onHold !== undefined) { where.push('b.on_hold = ?'); params.push(f.onHold ? 1 : 0); }
  if (f.q) {
    // The text as typed: % and _ are searched for, not wildcards (both databases take ESCAPE).
    where.push("(lower(b.file_number) like ? escape '\\' or lower(m.name) like ? escape '\\' or lower(m.client_name) like ? escape '\\')");
    const like = `%${literalLike(f.q)}%`;
    params.push(like, like, like);
  }
  if (f.ids) { if (f.ids.length === 0) return null; where.push(`b.id in (${marks(f.ids.length)})`); params.push(...f.ids); }
  return { from: `from billing_bill b left join billing_matter m on m.id = b.matter_id left join billing_batch bt on bt.id = b.batch_id left join billing_timekeeper tk on tk.id = m.billing_timekeeper_id where ${where.join(' and ')}`, params };
}

export async function listDrafts(ex: Executor, f: DraftFilters = {}): Promise<{ rows: DraftRow[]; total: number }> {
  const q = draftsFrom(f);
  if (!q) return { rows: [], total: 0 };
  const { from, params } = q;
  const total = num((await selectRaw<{ n: unknown }>(ex, `select count(*) as n ${from}`, params))[0]?.n ?? 0);
  const dir = f.dir === 'desc' ? 'desc' : 'asc';
  const order = (DRAFT_SORTS[f.sort ?? 'matter'] ?? DRAFT_SORTS.matter).map((col) => `${col} ${dir}`).join(', ');
  const rows = await selectRaw<Record<string, any>>(ex, `select b.id, b.batch_id, b.number, b.matter_id, b.file_number, m.name as matter_name, b.client_id,
      m.client_name, b.invoice_date, b.up_to, b.due_date, b.currency, b.fees_minor, b.fixed_charges_minor, b.disbursements_minor, b.discount_minor, b.interest_minor, b.tax_minor,
      b.total_minor, b.on_hold, b.request_json, b.created_at, b.created_by, b.version, bt.created_at as batch_created_at, tk.initials as billing_initials,
      (select count(*) from billing_copy_conflict x where x.bill_id = b.id and x.resolved_at is null) as conflicts
    ${from} order by ${order}, m.client_number, m.matter_number, b.id limit ${Math.min(f.limit ?? 200, 5000)} offset ${Math.max(0, Math.floor(f.offset ?? 0))}`, params);
  return {
    total,
    rows: rows.map((r) => ({
      billId: r.id, batchId: r.batch_id, number: r.number, matterId: r.matter_id, fileNumber: r.file_number, matterName: r.matter_name,
      clientId: r.client_id, clientName: r.client_name, invoiceDate: r.invoice_date, upTo: r.up_to, dueDate: r.due_date, currency: r.currency,
      feesMinor: num(r.fees_minor), fixedChargesMinor: num(r.fixed_charges_minor), disbursementsMinor: num(r.disbursements_minor), taxMinor: num(r.tax_minor),
      discountMinor: num(r.discount_minor), interestMinor: num(r.interest_minor), totalMinor: num(r.total_minor), onHold: num(r.on_hold) === 1, conflicts: num(r.conflicts), template: (JSON.parse(r.request_json) as { template?: string | null }).template ?? null,
      createdAt: r.created_at, version: num(r.version), batchCreatedAt: r.batch_created_at ?? null,
      billingTimekeeper: r.billing_initials ?? null, createdBy: r.created_by,
    })),
  };
}

/** Ids of every draft under the filters (select all), capped. */
export async function draftIds(ex: Executor, f: DraftFilters, cap = 100_000): Promise<string[]> {
  return (await draftVersions(ex, f, cap)).map((d) => d.id);
}

/**
 * Every draft under the filters with its version (select all, and the list's stamp), capped:
 * one narrow query in the list's order (each page of the list computes the stamp).
 */
export async function draftVersions(ex: Executor, f: DraftFilters, cap = 100_000): Promise<{ id: string; version: number }[]> {
  const q = draftsFrom(f);
  if (!q) return [];
  const dir = f.dir === 'desc' ? 'desc' : 'asc';
  const order = (DRAFT_SORTS[f.sort ?? 'matter'] ?? DRAFT_SORTS.matter).map((col) => `${col} ${dir}`).join(', ');
  const rows = await selectRaw<{ id: string; version: unknown }>(ex, `select b.id, b.version ${q.from} order by ${order}, m.client_number, m.matter_number, b.id limit ${Math.floor(cap)}`, q.params);
  return rows.map((r) => ({ id: r.id, version: num(r.version) }));
}
