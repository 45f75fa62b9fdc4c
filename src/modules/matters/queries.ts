/**
 * Read-side queries for the matters pages: search, filters, paging and WIP totals. Plain
 * Kysely on the matters_* tables only; rows come back camelCase with integers checked.
 * Writes never happen here: pages change data through the commands.
 */
import { sql } from 'kysely';
import type { Executor } from '../../shared/db.ts';
import { sumMinor } from '../../shared/money.ts';

type Row = Record<string, unknown>;

const num = (v: unknown): number => {
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`expected an integer from the database, got ${String(v)}`);
  return n;
};
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));
const str = (v: unknown): string => String(v);
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

/** A LIKE pattern matching `text` anywhere, with %, _ and \ taken literally (escape '\'). */
export function containsPattern(text: string): string {
  return `%${text.toLowerCase().replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
}

function prefixPattern(text: string): string {
  return `${text.toLowerCase().replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
}

const likeLower = (column: string, pattern: string) => sql<boolean>`lower(${sql.ref(column)}) like ${pattern} escape '\\'`;

export interface Paging {
  limit: number;
  offset: number;
}

export interface PageOf<T> {
  rows: T[];
  total: number;
  limit: number;
  offset: number;
}

// ---------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------

export interface ClientListRow {
  id: string;
  clientNumber: number;
  name: string;
  email: string | null;
  matterCount: number;
  openMatterCount: number;
}

/** Clients whose name contains q or whose client number starts with q, by client number. */
export async function searchClients(db: Executor, opts: { q?: string | undefined } & Paging): Promise<PageOf<ClientListRow>> {
  const q = opts.q?.trim() ?? '';
  let base = db.selectFrom('matters_client as c');
  if (q !== '') {
    base = base.where((eb) => eb.or([
      likeLower('c.name', containsPattern(q)),
      sql<boolean>`cast(c.client_number as text) like ${prefixPattern(q)} escape '\\'`,
    ]));
  }
  const totalRow = await base.select(sql<string>`count(*)`.as('n')).executeTakeFirst() as Row | undefined;
  const rows = await base.select(['c.id', 'c.client_number', 'c.name', 'c.email'])
    .orderBy('c.client_number').limit(opts.limit).offset(opts.offset).execute() as Row[];
  const counts = new Map<string, { all: number; open: number }>();
  if (rows.length > 0) {
    const ids = rows.map((r) => str(r.id));
    const cr = await db.selectFrom('matters_matter').select(['client_id', 'status', sql<string>`count(*)`.as('n')])
      .where('client_id', 'in', ids).groupBy(['client_id', 'status']).execute() as Row[];
    for (const r of cr) {
      const k = str(r.client_id);
      const c = counts.get(k) ?? { all: 0, open: 0 };
      c.all += num(r.n);
      if (str(r.status) === 'open') c.open += num(r.n);
      counts.set(k, c);
    }
  }
  return {
    rows: rows.map((r) => ({
      id: str(r.id), clientNumber: num(r.client_number), name: str(r.name), email: strOrNull(r.email),
      matterCount: counts.get(str(r.id))?.all ?? 0, openMatterCount: counts.get(str(r.id))?.open ?? 0,
    })),
    total: num(totalRow?.n ?? 0), limit: opts.limit, offset: opts.offset,
  };
}

/** How many clients a form's client select lists. */
export const CLIENT_CHOICES = 1000;

export interface ClientChoice { id: string; clientNumber: number; name: string }

/**
 * The clients a form's select offers: the first `limit` by name, plus `include` (the client
 * already chosen: opened from its page, or a form sent back with an error) wherever it sorts,
 * so that every client can be chosen from its own page. `more`: the firm has others not listed.
 */
export async function clientChoices(db: Executor, opts: { limit?: number; include?: string | undefined } = {}): Promise<{ list: ClientChoice[]; more: boolean }> {
  const limit = opts.limit ?? CLIENT_CHOICES;
  const rows = await db.selectFrom('matters_client').select(['id', 'client_number', 'name']).orderBy('name').orderBy('client_number').limit(limit + 1).execute() as Row[];
  const choice = (r: Row): ClientChoice => ({ id: str(r.id), clientNumber: num(r.client_number), name: str(r.name) });
  const list = rows.slice(0, limit).map(choice);
  if (opts.include && !list.some((cl) => cl.id === opts.include)) {
    const chosen = await db.selectFrom('matters_client').select(['id', 'client_number', 'name']).where('id', '=', opts.include).executeTakeFirst() as Row | undefined;
    if (chosen) {
      const at = list.findIndex((cl) => cl.name > str(chosen.name) || (cl.name === str(chosen.name) && cl.clientNumber > num(chosen.client_number)));
      list.splice(at === -1 ? list.length : at, 0, choice(chosen));
    }
  }
  return { list, more: rows.length > limit };
}

// ---------------------------------------------------------------------------------------
// Matters
// ---------------------------------------------------------------------------------------

export interface MatterFilters {
  q?: string | undefined;
  status?: 'open' | 'closed' | undefined;
  timekeeperId?: string | undefined;
  billingCycle?: string | undefined;
  clientId?: string | undefined;
  /** Next billing date on or after / on or before (seed 004's "next billing date between"). */
  nextFrom?: string | undefined;
  nextTo?: string | undefined;
  /** Only matters whose unbilled WIP has reached their own WIP cap ("default from matters"). */
  atCap?: boolean | undefined;
  /** Only matters with at least this much unbilled WIP ("or specify"), in `wipCurrency`. */
  wipAtLeastMinor?: number | undefined;
  /**
   * The currency of wipAtLeastMinor (the firm's): a matter billed in another currency is not
   * measured against it (no exchange rates; its minor units are not these), so it is left out.
   */
  wipCurrency?: string | undefined;
}

/**
 * A matter's billable WIP (time, disbursements, fixed charges not merely quoted) with these
 * statuses, in SQL: unbilled for "WIP at least" (the list's Unbilled WIP column), unbilled and
 * on draft bills for the WIP cap (as store.capWipMinor measures it).
 */
const wipSqlOf = (statuses: readonly string[]) => {
  const st = sql.join(statuses.map((x) => sql`${x}`));
  return sql<number>`(coalesce((select sum(wt.amount_minor) from matters_time_entry wt where wt.matter_id = m.id and wt.status in (${st}) and wt.behaviour = 'bill'), 0)
  + coalesce((select sum(wd.amount_minor) from matters_disbursement wd where wd.matter_id = m.id and wd.status in (${st}) and wd.behaviour = 'bill'), 0)
  + coalesce((select sum(wf.amount_minor) from matters_fixed_charge wf where wf.matter_id = m.id and wf.status in (${st}) and wf.behaviour = 'bill' and wf.quoted = 0), 0))`;
};
const capWipSql = wipSqlOf(['unbilled', 'draft']);
const unbilledWipSql = wipSqlOf(['unbilled']);

export interface MatterListRow {
  id: string;
  fileNumber: string;
  name: string;
  status: string;
  clientId: string;
  clientNumber: number;
  clientName: string;
  responsibleInitials: string;
  responsibleName: string;
  billingCycle: string;
  nextBillingDate: string | null;
  wipCapMinor: number | null;
  currency: string;
  /** Unbilled billable WIP (behaviour bill): time, disbursements, fixed charges. */
  wipMinor: number;
  /** What the WIP cap measures: billable WIP unbilled or on a draft bill. */
  capWipMinor: number;
}

/** Matters matching the search (name, file number, client name or number) and filters. */
export async function searchMatters(db: Executor, f: MatterFilters & Paging): Promise<PageOf<MatterListRow>> {
  const q = f.q?.trim() ?? '';
  let base = db.selectFrom('matters_matter as m')
    .innerJoin('matters_client as c', 'c.id', 'm.client_id')
    .innerJoin('matters_timekeeper as t', 't.id', 'm.responsible_timekeeper_id');
  if (q !== '') {
    base = base.where((eb) => eb.or([
      likeLower('m.name', containsPattern(q)),
      likeLower('m.file_number', prefixPattern(q)),
      likeLower('c.name', containsPattern(q)),
    ]));
  }
  if (f.status) base = base.where('m.status', '=', f.status);
  if (f.timekeeperId) base = base.where('m.responsible_timekeeper_id', '=', f.timekeeperId);
  if (f.billingCycle) base = base.where('m.billing_cycle', '=', f.billingCycle);
  if (f.clientId) base = base.where('m.client_id', '=', f.clientId);
  if (f.nextFrom) base = base.where('m.next_billing_date', '>=', f.nextFrom);
  if (f.nextTo) base = base.where('m.next_billing_date', '<=', f.nextTo);
  if (f.atCap) base = base.where('m.wip_cap_minor', 'is not', null).where(sql<boolean>`${capWipSql} >= m.wip_cap_minor`);
  if (f.wipAtLeastMinor !== undefined) {
    if (f.wipCurrency !== undefined) base = base.where('m.currency', '=', f.wipCurrency);
    base = base.where(sql<boolean>`${unbilledWipSql} >= ${f.wipAtLeastMinor}`);
  }
  const totalRow = await base.select(sql<string>`count(*)`.as('n')).executeTakeFirst() as Row | undefined;
  const rows = await base.select([
    'm.id', 'm.file_number', 'm.name', 'm.status', 'm.client_id', 'c.client_number', 'c.name as client_name',
    't.initials', 't.name as tk_name', 'm.billing_cycle', 'm.next_billing_date', 'm.wip_cap_minor', 'm.currency',
  ]).orderBy('c.client_number').orderBy('m.matter_number').limit(f.limit).offset(f.offset).execute() as Row[];
  const wip = await billableWip(db, rows.map((r) => str(r.id)));
  const capWip = await billableWip(db, rows.map((r) => str(r.id)), ['unbilled', 'draft']);
  return {
    rows: rows.map((r) => ({
      id: str(r.id), fileNumber: str(r.file_number), name: str(r.name), status: str(r.status), clientId: str(r.client_id),
      clientNumber: num(r.client_number), clientName: str(r.client_name), responsibleInitials: str(r.initials),
      responsibleName: str(r.tk_name), billingCycle: str(r.billing_cycle), nextBillingDate: strOrNull(r.next_billing_date),
      wipCapMinor: numOrNull(r.wip_cap_minor), currency: str(r.currency), wipMinor: wip.get(str(r.id)) ?? 0, capWipMinor: capWip.get(str(r.id)) ?? 0,
    })),
    total: num(totalRow?.n ?? 0), limit: f.limit, offset: f.offset,
  };
}

/** Billable WIP per matter with these statuses (unbilled, by default): time, disbursements and fixed charges with behaviour `bill`; quoted charges add nothing. */
export async function billableWip(db: Executor, matterIds: readonly string[], statuses: readonly string[] = ['unbilled']): Promise<Map<string, number>> {
  const out = new Map<string, number>(matterIds.map((id) => [id, 0]));
  if (matterIds.length === 0) return out;
  for (const table of ['matters_time_entry', 'matters_disbursement', 'matters_fixed_charge']) {
    let query = db.selectFrom(table).select(['matter_id', sql<string>`sum(amount_minor)`.as('total')])
      .where('matter_id', 'in', [...new Set(matterIds)]).where('status', 'in', [...statuses]).where('behaviour', '=', 'bill');
    if (table === 'matters_fixed_charge') query = query.where('quoted', '=', 0);
    const rows = await query.groupBy('matter_id').execute() as Row[];
    for (const r of rows) out.set(str(r.matter_id), sumMinor([out.get(str(r.matter_id)) ?? 0, num(r.total)]));
  }
  return out;
}

/** Open matters for a picker (id, file number, name), capped. */
export async function openMatterChoices(db: Executor, limit = 1000): Promise<{ id: string; fileNumber: string; name: string }[]> {
  const rows = await db.selectFrom('matters_matter as m').innerJoin('matters_client as c', 'c.id', 'm.client_id')
    .select(['m.id', 'm.file_number', 'm.name']).where('m.status', '=', 'open')
    .orderBy('c.client_number').orderBy('m.matter_number').limit(limit).execute() as Row[];
  return rows.map((r) => ({ id: str(r.id), fileNumber: str(r.file_number), name: str(r.name) }));
}

// ---------------------------------------------------------------------------------------
// Work in progress totals
// ---------------------------------------------------------------------------------------

export interface WipItemLike {
  amountMinor: number;
  behaviour: string;
  status: string;
}

export interface WipTotals {
  /** Billed minutes of unbilled time entries, whatever their behaviour. */
  minutes: number;
  /** Billed minutes of unbilled time entries that are charged (behaviour bill). */
  billableMinutes: number;
  feesMinor: number;
  disbursementsMinor: number;
  fixedChargesMinor: number;
  /** fees + disbursements + fixed charges: what the matter's WIP is worth. */
  totalMinor: number;
  /** Value recorded but not charged. */
  hiddenMinor: number;
  noChargeMinor: number;
  /** Unbilled items of each kind. */
  count: number;
  /** What the WIP cap measures: the billable total of items unbilled or on a draft bill. */
  capWipMinor: number;
}

/**
 * Totals of the unbilled items (items on a draft bill or billed are not WIP). Only
 * behaviour `bill` counts towards fees, disbursements and the total; hidden and no-charge
 * amounts are reported apart.
 */
export function wipTotals(
  time: readonly (WipItemLike & { billedMinutes: number })[],
  disbursements: readonly WipItemLike[],
  fixedCharges: readonly WipItemLike[] = [],
): WipTotals {
  const unbilled = <T extends WipItemLike>(xs: readonly T[]) => xs.filter((x) => x.status === 'unbilled');
  const t = unbilled(time);
  const d = unbilled(disbursements);
  const f = unbilled(fixedCharges);
  const billable = <T extends WipItemLike>(xs: readonly T[]) => sumMinor(xs.filter((x) => x.behaviour === 'bill').map((x) => x.amountMinor));
  const by = (b: string) => sumMinor([...t, ...d, ...f].filter((x) => x.behaviour === b).map((x) => x.amountMinor));
  const feesMinor = billable(t);
  const disbursementsMinor = billable(d);
  const fixedChargesMinor = billable(f);
  return {
    minutes: t.reduce((a, x) => a + x.billedMinutes, 0),
    billableMinutes: t.filter((x) => x.behaviour === 'bill').reduce((a, x) => a + x.billedMinutes, 0),
    feesMinor, disbursementsMinor, fixedChargesMinor,
    totalMinor: sumMinor([feesMinor, disbursementsMinor, fixedChargesMinor]),
    hiddenMinor: by('hide'), noChargeMinor: by('no_charge'),
    count: t.length + d.length + f.length,
    capWipMinor: sumMinor([...time, ...disbursements, ...fixedCharges].filter((x) => (x.status === 'unbilled' || x.status === 'draft') && x.behaviour === 'bill').map((x) => x.amountMinor)),
  };
}

/** How many of a matter's items are past WIP (on a draft bill, or billed). */
export async function wipStatusCounts(db: Executor, matterId: string): Promise<Record<string, number>> {
  const out: Record<string, number> = { unbilled: 0, draft: 0, billed: 0 };
  for (const table of ['matters_time_entry', 'matters_disbursement']) {
    const rows = await db.selectFrom(table).select(['status', sql<string>`count(*)`.as('n')]).where('matter_id', '=', matterId)
      .groupBy('status').execute() as Row[];
    for (const r of rows) out[str(r.status)] = (out[str(r.status)] ?? 0) + num(r.n);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Time & expenses
// ---------------------------------------------------------------------------------------

export interface RecentEntryRow {
  id: string;
  matterId: string;
  fileNumber: string;
  matterName: string;
  currency: string;
  workDate: string;
  rawMinutes: number;
  billedMinutes: number;
  rateMinor: number;
  rateSource: string;
  amountMinor: number;
  narrative: string;
  taskCode: string | null;
  activityCode: string | null;
  behaviour: string;
  status: string;
}

/** A timekeeper's latest time entries across matters, newest work first. */
export async function recentTimeEntries(db: Executor, timekeeperId: string, limit = 50): Promise<RecentEntryRow[]> {
  const rows = await db.selectFrom('matters_time_entry as e').innerJoin('matters_matter as m', 'm.id', 'e.matter_id')
    .select([
      'e.id', 'e.matter_id', 'm.file_number', 'm.name as matter_name', 'm.currency', 'e.work_date', 'e.raw_minutes', 'e.billed_minutes',
      'e.rate_minor', 'e.rate_source', 'e.amount_minor', 'e.narrative', 'e.task_code', 'e.activity_code', 'e.behaviour', 'e.status',
    ])
    .where('e.timekeeper_id', '=', timekeeperId)
    .orderBy('e.work_date', 'desc').orderBy('e.created_at', 'desc').orderBy('e.id', 'desc').limit(limit).execute() as Row[];
  return rows.map((r) => ({
    id: str(r.id), matterId: str(r.matter_id), fileNumber: str(r.file_number), matterName: str(r.matter_name), currency: str(r.currency),
    workDate: str(r.work_date), rawMinutes: num(r.raw_minutes), billedMinutes: num(r.billed_minutes), rateMinor: num(r.rate_minor),
    rateSource: str(r.rate_source), amountMinor: num(r.amount_minor), narrative: str(r.narrative), taskCode: strOrNull(r.task_code),
    activityCode: strOrNull(r.activity_code), behaviour: str(r.behaviour), status: str(r.status),
  }));
}

// ---------------------------------------------------------------------------------------
// Rates
// ---------------------------------------------------------------------------------------

export interface StandardRateRow { effectiveFrom: string; rateMinor: number }

export async function standardRatesOf(db: Executor, timekeeperId: string): Promise<StandardRateRow[]> {
  const rows = await db.selectFrom('matters_timekeeper_rate').select(['effective_from', 'rate_minor'])
    .where('timekeeper_id', '=', timekeeperId).orderBy('effective_from', 'desc').execute() as Row[];
  return rows.map((r) => ({ effectiveFrom: str(r.effective_from), rateMinor: num(r.rate_minor) }));
}

/** The standard rate in force on `date` for each timekeeper. */
export async function currentStandardRates(db: Executor, date: string): Promise<Map<string, StandardRateRow>> {
  const rows = await db.selectFrom('matters_timekeeper_rate').select(['timekeeper_id', 'effective_from', 'rate_minor'])
    .where('effective_from', '<=', date).orderBy('effective_from').execute() as Row[];
  const out = new Map<string, StandardRateRow>();
  for (const r of rows) out.set(str(r.timekeeper_id), { effectiveFrom: str(r.effective_from), rateMinor: num(r.rate_minor) });
  return out;
}

export interface OwnerRateRow {
  ownerId: string;
  ownerLabel: string;
  timekeeperId: string;
  initials: string;
  timekeeperName: string;
  rateMinor: number;
}

/** Client rates, for one client or one timekeeper. */
export async function clientRates(db: Executor, by: { clientId?: string; timekeeperId?: string }): Promise<OwnerRateRow[]> {
  let q = db.selectFrom('matters_client_rate as r').innerJoin('matters_client as c', 'c.id', 'r.client_id')
    .innerJoin('matters_timekeeper as t', 't.id', 'r.timekeeper_id')
    .select(['r.client_id', 'c.client_number', 'c.name', 'r.timekeeper_id', 't.initials', 't.name as tk_name', 'r.rate_minor']);
  if (by.clientId) q = q.where('r.client_id', '=', by.clientId);
  if (by.timekeeperId) q = q.where('r.timekeeper_id', '=', by.timekeeperId);
  const rows = await q.orderBy('c.client_number').orderBy('t.initials').execute() as Row[];
  return rows.map((r) => ({
    ownerId: str(r.client_id), ownerLabel: `${num(r.client_number)} ${str(r.name)}`, timekeeperId: str(r.timekeeper_id),
    initials: str(r.initials), timekeeperName: str(r.tk_name), rateMinor: num(r.rate_minor),
  }));
}

/** Matter rates, for one matter or one timekeeper. */
export async function matterRates(db: Executor, by: { matterId?: string; timekeeperId?: string }): Promise<(OwnerRateRow & { currency: string })[]> {
  let q = db.selectFrom('matters_matter_rate as r').innerJoin('matters_matter as m', 'm.id', 'r.matter_id')
    .innerJoin('matters_timekeeper as t', 't.id', 'r.timekeeper_id')
    .select(['r.matter_id', 'm.file_number', 'm.name', 'm.currency', 'r.timekeeper_id', 't.initials', 't.name as tk_name', 'r.rate_minor']);
  if (by.matterId) q = q.where('r.matter_id', '=', by.matterId);
  if (by.timekeeperId) q = q.where('r.timekeeper_id', '=', by.timekeeperId);
  const rows = await q.orderBy('m.file_number').orderBy('t.initials').execute() as Row[];
  return rows.map((r) => ({
    ownerId: str(r.matter_id), ownerLabel: `${str(r.file_number)} ${str(r.name)}`, timekeeperId: str(r.timekeeper_id),
    initials: str(r.initials), timekeeperName: str(r.tk_name), rateMinor: num(r.rate_minor), currency: str(r.currency),
  }));
}
