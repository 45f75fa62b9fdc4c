/**
 * E-billing's tables (all ebilling_*): its copy of matters and bills, its settings and its
 * exports. Nothing here reads another module's tables.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import type { Executor } from '../../shared/db.ts';
import { writersSerialised } from '../../shared/sql.ts';
import type { BillData } from '../billing/events.ts';
import type { LedesClassificationCode } from '../matters/events.ts';
import { defaultLedesSettings } from './domain/export.ts';
import type { BillFacts, ClientFacts, EbillingOptions, ItemFacts, LedesSettings, MatterFacts, TimekeeperFacts } from './domain/export.ts';
import type { LedesFormat } from './domain/format.ts';
import { parseUtbms } from './domain/utbms.ts';
import type { UtbmsCodes } from './domain/utbms.ts';

// ---------------------------------------------------------------------------------------
// UTBMS reference data (reference/utbms.csv, shipped with the app; read once)
// ---------------------------------------------------------------------------------------

export const UTBMS_CSV_PATH = fileURLToPath(new URL('../../../reference/utbms.csv', import.meta.url));
let utbms: UtbmsCodes | null = null;
export function utbmsCodes(): UtbmsCodes {
  utbms ??= parseUtbms(readFileSync(UTBMS_CSV_PATH, 'utf8'));
  return utbms;
}

// ---------------------------------------------------------------------------------------
// Copies, ordered by the source event
// ---------------------------------------------------------------------------------------

// (upsertIfNewer and the ordering key: src/shared/copies.ts)

// ---------------------------------------------------------------------------------------
// Reads for an export
// ---------------------------------------------------------------------------------------

export interface BillRow {
  id: string; matter_id: string; client_id: string; file_number: string; status: string; number: string | null; invoice_date: string;
  currency: string; total_minor: number | string; line_count: number | string; bill_json: string; source_version: number | string;
}

export interface BillSummary {
  billId: string; matterId: string; fileNumber: string; status: string; number: string | null; invoiceDate: string; currency: string;
  totalMinor: number; lineCount: number; version: number;
}

const summary = (r: BillRow): BillSummary => ({
  billId: r.id, matterId: r.matter_id, fileNumber: r.file_number, status: r.status, number: r.number, invoiceDate: r.invoice_date,
  currency: r.currency, totalMinor: Number(r.total_minor), lineCount: Number(r.line_count), version: Number(r.source_version),
});

const SUMMARY_COLUMNS = ['id', 'matter_id', 'client_id', 'file_number', 'status', 'number', 'invoice_date', 'currency', 'total_minor', 'line_count', 'source_version'] as const;

/** Most bills one look at the bills to e-bill reads (a firm's approved bills awaiting production are far fewer). */
export const MAX_APPROVED_SCANNED = 50_000;

/** Bills that can be e-billed (approved or finalised) of matters e-billing is on for, newest first. */
export async function exportableBills(db: Executor, opts: { status?: 'approved' | 'finalised'; limit: number }): Promise<BillSummary[]> {
  const ebilled = await ebilledMatters(db);
  const rows = await db.selectFrom('ebilling_bill').select([...SUMMARY_COLUMNS])
    .where('status', 'in', opts.status ? [opts.status] : ['approved', 'finalised'])
    .orderBy('invoice_date', 'desc').orderBy('number', 'desc').limit(MAX_APPROVED_SCANNED).execute();
  return (rows as BillRow[]).filter((r) => ebilled.has(r.matter_id)).slice(0, opts.limit).map(summary);
}

/** The matters e-billing is on for, by their options as e-billing last copied them. */
async function ebilledMatters(db: Executor): Promise<Set<string>> {
  const out = new Set<string>();
  for (const m of await db.selectFrom('ebilling_matter').select(['id', 'ebilling_json']).where('ebilling_json', 'is not', null).execute() as { id: string; ebilling_json: string }[]) {
    if ((JSON.parse(m.ebilling_json) as EbillingOptions | null)?.enabled === true) out.add(m.id);
  }
  return out;
}

/**
 * The approved bills to e-bill: those of matters e-billing is on for, and (unless
 * `includeExported`) not yet exported as they are now (an export of an earlier approval, before a
 * re-draft, does not count). Newest first, at most `limit`; with how many approved bills each
 * rule left out.
 */
export async function billsToEbill(db: Executor, opts: { limit: number; includeExported: boolean }): Promise<{ bills: BillSummary[]; notEbilled: number; exported: number }> {
  const ebilled = await ebilledMatters(db);
  const rows = await db.selectFrom('ebilling_bill').select([...SUMMARY_COLUMNS]).where('status', '=', 'approved')
    .orderBy('invoice_date', 'desc').orderBy('number', 'desc').limit(MAX_APPROVED_SCANNED).execute() as BillRow[];
  const wanted = rows.filter((r) => ebilled.has(r.matter_id));
  const done = new Set<string>();
  for (let i = 0; i < wanted.length && !opts.includeExported; i += 500) {
    const part = wanted.slice(i, i + 500);
    const links = await db.selectFrom('ebilling_export_bill').select(['bill_id', 'bill_version']).where('bill_id', 'in', part.map((r) => r.id)).execute() as { bill_id: string; bill_version: unknown }[];
    const now = new Map(part.map((r) => [r.id, Number(r.source_version)]));
    for (const l of links) if (now.get(l.bill_id) === Number(l.bill_version)) done.add(l.bill_id);
  }
  const bills = wanted.filter((r) => !done.has(r.id)).slice(0, opts.limit).map(summary);
  return { bills, notEbilled: rows.length - wanted.length, exported: done.size };
}

export async function billSummaries(db: Executor, ids: readonly string[]): Promise<BillSummary[]> {
  if (ids.length === 0) return [];
  const rows = await db.selectFrom('ebilling_bill').select([...SUMMARY_COLUMNS]).where('id', 'in', [...ids]).execute();
  return (rows as BillRow[]).map(summary);
}

export async function billIdsByNumber(db: Executor, numbers: readonly string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (numbers.length === 0) return out;
  const rows = await db.selectFrom('ebilling_bill').select(['id', 'number']).where('number', 'in', [...numbers]).where('status', '!=', 'deleted').execute() as { id: string; number: string }[];
  for (const r of rows) out.set(r.number, [...(out.get(r.number) ?? []), r.id]);
  return out;
}

const classification = (v: unknown): LedesClassificationCode | null => (typeof v === 'string' && v !== '' ? v as LedesClassificationCode : null);

/** Everything an export of these bills reads, from e-billing's own copy. */
export async function billFacts(db: Executor, ids: readonly string[]): Promise<Map<string, BillFacts>> {
  const out = new Map<string, BillFacts>();
  if (ids.length === 0) return out;
  const bills = await db.selectFrom('ebilling_bill').select(['id', 'status', 'bill_json']).where('id', 'in', [...ids]).execute() as { id: string; status: BillData['status']; bill_json: string }[];
  // The status column is the copy's own (a deleted draft changes only it); the JSON is the bill as last approved or reverted.
  const data = bills.map((b) => ({ ...JSON.parse(b.bill_json) as BillData, status: b.status }));
  const matterIds = [...new Set(data.map((b) => b.matterId))];
  const clientIds = [...new Set(data.map((b) => b.clientId))];
  const matterRows = matterIds.length ? await db.selectFrom('ebilling_matter').selectAll().where('id', 'in', matterIds).execute() : [];
  const clientRows = clientIds.length ? await db.selectFrom('ebilling_client').selectAll().where('id', 'in', clientIds).execute() : [];
  const matters = new Map<string, MatterFacts>(matterRows.map((m: any) => [m.id, {
    matterId: m.id, fileNumber: m.file_number, name: m.name, responsibleTimekeeperId: m.responsible_timekeeper_id,
    billingTimekeeperId: m.billing_timekeeper_id, ebilling: m.ebilling_json ? JSON.parse(m.ebilling_json) as EbillingOptions : null,
  }]));
  const clients = new Map<string, ClientFacts>(clientRows.map((c: any) => [c.id, { clientId: c.id, name: c.name, address: c.address, taxId: c.tax_id }]));
  const tkIds = new Set<string>();
  const itemIds = new Set<string>();
  for (const b of data) {
    for (const l of b.lines) { if (l.timekeeperId) tkIds.add(l.timekeeperId); if (l.itemId) itemIds.add(l.itemId); }
    const m = matters.get(b.matterId);
    if (m) { tkIds.add(m.responsibleTimekeeperId); tkIds.add(m.billingTimekeeperId); }
  }
  const timekeepers = new Map<string, TimekeeperFacts>();
  const tkList = [...tkIds];
  for (let i = 0; i < tkList.length; i += 500) {
    for (const t of await db.selectFrom('ebilling_timekeeper').selectAll().where('id', 'in', tkList.slice(i, i + 500)).execute() as any[]) {
      timekeepers.set(t.id, { timekeeperId: t.id, initials: t.initials, name: t.name, ledesClassification: classification(t.ledes_classification) });
    }
  }
  const items = new Map<string, ItemFacts>();
  const itemList = [...itemIds];
  for (let i = 0; i < itemList.length; i += 500) {
    for (const t of await db.selectFrom('ebilling_item').selectAll().where('id', 'in', itemList.slice(i, i + 500)).execute() as any[]) {
      items.set(t.id, { id: t.id, quantityMilli: Number(t.quantity_milli), unitCostMinor: Number(t.unit_cost_minor) });
    }
  }
  const taxRow = await db.selectFrom('ebilling_firm_tax').select('tax_rates_json').where('id', '=', 'firm').executeTakeFirst() as { tax_rates_json: string } | undefined;
  const taxRates = new Map<string, number>(taxRow ? (JSON.parse(taxRow.tax_rates_json) as { code: string; basisPoints: number }[]).map((t) => [t.code, t.basisPoints]) : []);
  for (const b of data) {
    out.set(b.billId, { bill: b, matter: matters.get(b.matterId) ?? null, client: clients.get(b.clientId) ?? null, timekeepers, items, taxRates });
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------

export interface StoredSettings { settings: LedesSettings; version: number; updatedAt: string | null; updatedBy: string | null }

export async function loadSettings(db: Executor): Promise<StoredSettings> {
  const r = await db.selectFrom('ebilling_settings').selectAll().where('id', '=', 'firm').executeTakeFirst() as any;
  if (!r) return { settings: defaultLedesSettings(), version: 0, updatedAt: null, updatedBy: null };
  return { settings: { ...defaultLedesSettings(), ...JSON.parse(r.settings_json) }, version: Number(r.version), updatedAt: r.updated_at, updatedBy: r.updated_by };
}

/** Write version `next` only if the stored one is still `expected`; false when someone else saved first. */
export async function saveSettings(trx: Executor, s: LedesSettings, expected: number, at: string, by: string): Promise<boolean> {
  const next = expected + 1;
  if (expected === 0) {
    // The first save: two racing (Postgres) both find no row; the one whose insert loses is
    // told someone saved first (409), not failed on the primary key (500).
    const r = await trx.insertInto('ebilling_settings').values({ id: 'firm', settings_json: JSON.stringify(s), version: next, updated_at: at, updated_by: by })
      .onConflict((oc) => oc.column('id').doNothing()).executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) === 1;
  }
  const r = await trx.updateTable('ebilling_settings').set({ settings_json: JSON.stringify(s), version: next, updated_at: at, updated_by: by })
    .where('id', '=', 'firm').where('version', '=', expected).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

// ---------------------------------------------------------------------------------------
// Exports
// ---------------------------------------------------------------------------------------

export interface ExportRow {
  id: string; format: LedesFormat; fileName: string; sha256: string; byteCount: number; invoiceCount: number; lineCount: number;
  requestId: string | null; createdAt: string; createdBy: string;
  bills: {
    billId: string; number: string; version: number; totalMinor: number; currency: string;
    /** Null: the bill is as exported. Else what it is now: its status and (approved or finalised) its total. */
    changedSince?: { status: string; totalMinor: number | null } | null;
  }[];
}

export interface NewExport extends Omit<ExportRow, 'bills'> { content: string; bills: ExportRow['bills'] }

export async function insertExport(trx: Executor, e: NewExport): Promise<void> {
  await trx.insertInto('ebilling_export').values({
    id: e.id, format: e.format, file_name: e.fileName, content: e.content, sha256: e.sha256, byte_count: e.byteCount,
    invoice_count: e.invoiceCount, line_count: e.lineCount, request_id: e.requestId, created_at: e.createdAt, created_by: e.createdBy,
  }).execute();
  for (let i = 0; i < e.bills.length; i += 500) {
    await trx.insertInto('ebilling_export_bill').values(e.bills.slice(i, i + 500).map((b) => ({
      export_id: e.id, bill_id: b.billId, bill_number: b.number, bill_version: b.version, invoice_total_minor: b.totalMinor, currency: b.currency,
    }))).execute();
  }
}

const EXPORT_COLUMNS = ['id', 'format', 'file_name', 'sha256', 'byte_count', 'invoice_count', 'line_count', 'request_id', 'created_at', 'created_by'] as const;

async function withBills(db: Executor, rows: any[]): Promise<ExportRow[]> {
  if (rows.length === 0) return [];
  const links = await db.selectFrom('ebilling_export_bill').selectAll().where('export_id', 'in', rows.map((r) => r.id)).orderBy('bill_number').execute() as any[];
  // Each bill as it is now: one voided, back in draft, or approved again at another total since (re-drafted) is not the
  // invoice the file holds. (Finalising changes the bill's version, not the invoice: versions are not compared.)
  const billIds = [...new Set(links.map((l) => l.bill_id as string))];
  const now = new Map<string, { status: string; totalMinor: number }>();
  for (let i = 0; i < billIds.length; i += 500) {
    for (const b of await db.selectFrom('ebilling_bill').select(['id', 'status', 'total_minor']).where('id', 'in', billIds.slice(i, i + 500)).execute() as { id: string; status: string; total_minor: unknown }[]) {
      now.set(b.id, { status: b.status, totalMinor: Number(b.total_minor) });
    }
  }
  const changedSince = (l: any): ExportRow['bills'][number]['changedSince'] => {
    const b = now.get(l.bill_id);
    if (!b || b.status === 'deleted') return { status: 'deleted', totalMinor: null };
    if (b.status === 'draft') return { status: 'draft', totalMinor: null };
    return b.totalMinor === Number(l.invoice_total_minor) ? null : { status: b.status, totalMinor: b.totalMinor };
  };
  return rows.map((r) => ({
    id: r.id, format: r.format, fileName: r.file_name, sha256: r.sha256, byteCount: Number(r.byte_count), invoiceCount: Number(r.invoice_count),
    lineCount: Number(r.line_count), requestId: r.request_id, createdAt: r.created_at, createdBy: r.created_by,
    bills: links.filter((l) => l.export_id === r.id).map((l) => ({
      billId: l.bill_id, number: l.bill_number, version: Number(l.bill_version), totalMinor: Number(l.invoice_total_minor), currency: l.currency,
      changedSince: changedSince(l),
    })),
  }));
}

export async function listExports(db: Executor, opts: { billId?: string; limit: number }): Promise<ExportRow[]> {
  let q = db.selectFrom('ebilling_export as e').select(EXPORT_COLUMNS.map((c) => `e.${c}` as const));
  if (opts.billId) q = q.where('e.id', 'in', db.selectFrom('ebilling_export_bill').select('export_id').where('bill_id', '=', opts.billId));
  const rows = await q.orderBy('e.created_at', 'desc').orderBy('e.id', 'desc').limit(opts.limit).execute();
  return withBills(db, rows);
}

/** The first key of the Postgres advisory locks taken on export request ids. */
const REQUEST_ID_LOCK_CLASS = 7_401;

/**
 * Hold an export's request id until the transaction ends (Postgres), so a second export under
 * the same id waits and then sees the first's files. SQLite runs one writer at a time.
 */
export async function lockRequestId(trx: Executor, requestId: string): Promise<void> {
  if (writersSerialised(trx)) return;
  await sql`select pg_advisory_xact_lock(${REQUEST_ID_LOCK_CLASS}, hashtext(${requestId}))`.execute(trx);
}

export async function exportsByRequest(db: Executor, requestId: string): Promise<ExportRow[]> {
  const rows = await db.selectFrom('ebilling_export').select([...EXPORT_COLUMNS]).where('request_id', '=', requestId).orderBy('id').execute();
  return withBills(db, rows);
}

export async function findExport(db: Executor, id: string): Promise<(ExportRow & { content: string }) | null> {
  const r = await db.selectFrom('ebilling_export').selectAll().where('id', '=', id).executeTakeFirst() as any;
  if (!r) return null;
  const [row] = await withBills(db, [r]);
  return { ...row!, content: r.content };
}
