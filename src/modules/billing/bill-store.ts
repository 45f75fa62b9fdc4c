/**
 * Kysely queries on billing's bill tables: billing_bill, billing_bill_line (whose live lines
 * say which bill holds which WIP item), billing_bill_allocation, billing_matter_sequence,
 * billing_retainer_balance. Commands call these inside their
 * transaction; reads take the root handle.
 */
import * as balances from './balances.ts';
import { sql } from 'kysely';
import type { Executor } from '../../shared/db.ts';
import { insertTuples, marks, selectColumns, selectRaw, writersSerialised } from '../../shared/sql.ts';
import { conflict } from '../../shared/web/errors.ts';
import { assert } from '../../shared/assert.ts';
import { pendingPayloads } from '../../shared/outbox.ts';
import type { QuoteOutcome } from './domain/rules.ts';
import type { BillRequest, SequenceNeighbours } from './domain/lifecycle.ts';
import type { BillData, BillItemKindName, BillItemRef, BillLineData, BillLineKindName, BillStatusName } from './events.ts';
import { safeInteger, safeIntegerOrNull, toWipCopy } from './store.ts';
import type { WipCopy } from './store.ts';

/** A bill as billing keeps it: the event data plus the clerk's choices and the bill's history. */
export interface Bill extends BillData {
  /** Always known on billing's own bill (0 when the retainer does not apply). */
  retainerAppliedMinor: number;
  onHold: boolean;
  request: BillRequest;
  quote: QuoteOutcome | null;
  receiptsToReallocateMinor: number;
  /** The compositionBasis it was composed under, hashed (null: composed before this was kept, or never composed). */
  compositionKey: string | null;
  createdAt: string;
  createdBy: string;
  updatedAt: string;
  approvedAt: string | null;
  finalisedAt: string | null;
  redraftedAt: string | null;
  deletedAt: string | null;
}

const num = (v: unknown): number => Number(v);
/** Allocations in one order everywhere (by timekeeper id, code-point order, whatever the database's collation). */
export const byTimekeeper = (a: { timekeeperId: string }, b: { timekeeperId: string }): number => (a.timekeeperId < b.timekeeperId ? -1 : a.timekeeperId > b.timekeeperId ? 1 : 0);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

// ---------------------------------------------------------------------------------------
// Bills
// ---------------------------------------------------------------------------------------

/** The bill's own columns from the bill (lines and allocations are written separately). */
export function billColumns(b: Bill) {
  return {
    id: b.billId, matter_id: b.matterId, client_id: b.clientId, file_number: b.fileNumber, status: b.status, number: b.number,
    sequence: b.sequence, invoice_date: b.invoiceDate, up_to: b.upTo, due_date: b.dueDate, currency: b.currency,
    fees_minor: b.totals.feesMinor, fixed_charges_minor: b.totals.fixedChargesMinor, disbursements_minor: b.totals.disbursementsMinor,
    discount_minor: b.totals.discountMinor, interest_minor: b.totals.interestMinor, tax_minor: b.totals.taxMinor,
    total_minor: b.totals.totalMinor, net_fees_minor: b.totals.netFeesMinor, retainer_balance_minor: b.retainerBalanceMinor,
    retainer_request_minor: b.retainerRequestMinor, retainer_applied_minor: b.retainerAppliedMinor, discount_applied_minor: b.discount?.amountMinor ?? 0, discount_valid_until: b.discount?.validUntil ?? null,
    undiscounted_total_minor: b.discount?.undiscountedTotalMinor ?? null, hide_line_pricing: b.hideLinePricing ? 1 : 0,
    on_hold: b.onHold ? 1 : 0, batch_id: b.batchId, request_json: JSON.stringify(b.request),
    quote_json: b.quote ? JSON.stringify(b.quote) : null, quote_reason: b.quote?.reason ?? null,
    schedule_rows_json: JSON.stringify(b.scheduleRowIds), receipts_to_reallocate_minor: b.receiptsToReallocateMinor, composition_key: b.compositionKey,
    version: b.version, created_at: b.createdAt, created_by: b.createdBy, updated_at: b.updatedAt, approved_at: b.approvedAt,
    finalised_at: b.finalisedAt, redrafted_at: b.redraftedAt, deleted_at: b.deletedAt,
  };
}

/** Insert the bill's row (its lines come with replaceLines, once its items are claimed). */
export async function insertBill(trx: Executor, b: Bill): Promise<void> {
  await trx.insertInto('billing_bill').values(billColumns(b)).execute();
}

/**
 * Write a changed bill if it is still at `expected` (status and version): the optimistic
 * lock every transition takes first, so two clerks acting on one bill cannot both succeed
 * (Postgres re-checks the condition once the other transaction commits).
 */
export async function updateBill(trx: Executor, b: Bill, expected: { status: BillStatusName; version: number }): Promise<void> {
  const { id: _id, created_at: _c, created_by: _cb, ...cols } = billColumns(b);
  const r = await trx.updateTable('billing_bill').set(cols)
    .where('id', '=', b.billId).where('status', '=', expected.status).where('version', '=', expected.version)
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) throw conflict('The bill was changed by someone else meanwhile: reload it and try again');
}

/** billing_bill_line's columns, in the order lineTuples gives their values (createDraft's replaceLines and mass billing write the same rows). */
export const LINE_INSERT_COLUMNS = [
  'bill_id', 'line_no', 'key', 'item_id', 'item_kind', 'schedule_row_id', 'kind', 'date', 'timekeeper_id', 'code', 'charge_type_id', 'description',
  'minutes', 'rate_minor', 'recorded_minor', 'amount_minor', 'no_charge', 'tax_code', 'tax_minor', 'task_code', 'activity_code', 'expense_code', 'live',
] as const;

/** The bill's line rows as arrays of LINE_INSERT_COLUMNS' values (bulk writers build no object per line). */
export function lineTuples(b: Bill): unknown[][] {
  const live = b.status === 'deleted' ? 0 : 1;
  return b.lines.map((l) => [
    b.billId, l.lineNo, l.key, l.itemId, l.itemKind, l.scheduleRowId, l.kind, l.date, l.timekeeperId, l.code, l.chargeTypeId, l.description,
    l.minutes, l.rateMinor, l.recordedMinor, l.amountMinor, l.noCharge ? 1 : 0, l.taxCode, l.taxMinor, l.taskCode, l.activityCode, l.expenseCode, live,
  ]);
}

/** Replace a bill's lines and fee allocation (a draft's are recomposed; a posted bill's never change). */
export async function replaceLines(trx: Executor, b: Bill): Promise<void> {
  await trx.deleteFrom('billing_bill_allocation').where('bill_id', '=', b.billId).execute();
  await trx.deleteFrom('billing_bill_line').where('bill_id', '=', b.billId).execute();
  await insertTuples(trx, 'billing_bill_line', LINE_INSERT_COLUMNS, lineTuples(b));
  if (b.allocations.length > 0) {
    await trx.insertInto('billing_bill_allocation')
      .values(b.allocations.map((a) => ({ bill_id: b.billId, timekeeper_id: a.timekeeperId, amount_minor: a.amountMinor }))).execute();
  }
}

/** A deleted bill's lines stay for the record but no longer hold their items. */
export async function retireLines(trx: Executor, billId: string): Promise<void> {
  await trx.updateTable('billing_bill_line').set({ live: 0 }).where('bill_id', '=', billId).execute();
}

/** The line columns read back, in the order toLine takes them (through selectColumns: a bulk approve reads hundreds of thousands). */
const LINE_COLUMNS = [
  'bill_id', 'line_no', 'key', 'kind', 'item_kind', 'item_id', 'schedule_row_id', 'date', 'description', 'timekeeper_id', 'code', 'charge_type_id',
  'minutes', 'rate_minor', 'recorded_minor', 'amount_minor', 'tax_minor', 'no_charge', 'tax_code', 'task_code', 'activity_code', 'expense_code',
] as const;

function toLine(r: readonly unknown[]): BillLineData {
  return {
    lineNo: safeInteger(r[1]), key: r[2] as string, kind: r[3] as BillLineKindName, itemId: r[5] as string | null, itemKind: r[4] as BillItemKindName | null,
    scheduleRowId: r[6] as string | null, date: r[7] as string, timekeeperId: r[9] as string | null, code: r[10] as string | null,
    chargeTypeId: r[11] as string | null, description: r[8] as string, minutes: safeIntegerOrNull(r[12]), rateMinor: safeIntegerOrNull(r[13]),
    recordedMinor: safeInteger(r[14]), amountMinor: safeInteger(r[15]), noCharge: r[17] === 1, taxCode: r[18] as string | null, taxMinor: safeInteger(r[16]),
    taskCode: r[19] as string | null, activityCode: r[20] as string | null, expenseCode: r[21] as string | null,
  };
}

const byLineNo = (a: BillLineData, b: BillLineData): number => a.lineNo - b.lineNo;

export function itemsOf(lines: readonly BillLineData[]): BillItemRef[] {
  return lines.flatMap((l) => (l.itemId && l.itemKind ? [{ kind: l.itemKind, id: l.itemId }] : []));
}

function toBill(r: Record<string, any>, lines: BillLineData[], allocations: { timekeeperId: string; amountMinor: number }[]): Bill {
  const head = toBillHead(r, allocations);
  return { ...head, lines, items: itemsOf(lines) };
}

/** A bill without its lines and items (they stay in the database: see billsWithLineJson). */
export type BillHead = Omit<Bill, 'lines' | 'items'>;

function toBillHead(r: Record<string, any>, allocations: { timekeeperId: string; amountMinor: number }[]): BillHead {
  const discountMinor = num(r.discount_minor);
  const applied = num(r.discount_applied_minor);
  return {
    billId: r.id, status: r.status, number: r.number, sequence: numOrNull(r.sequence), matterId: r.matter_id, clientId: r.client_id,
    fileNumber: r.file_number, currency: r.currency, invoiceDate: r.invoice_date, upTo: r.up_to, dueDate: r.due_date, allocations,
    totals: {
      feesMinor: num(r.fees_minor), fixedChargesMinor: num(r.fixed_charges_minor), disbursementsMinor: num(r.disbursements_minor),
      discountMinor, interestMinor: num(r.interest_minor), taxMinor: num(r.tax_minor), totalMinor: num(r.total_minor),
      netFeesMinor: num(r.net_fees_minor),
    },
    discount: applied > 0
      ? { amountMinor: applied, validUntil: r.discount_valid_until, undiscountedTotalMinor: num(r.undiscounted_total_minor ?? num(r.total_minor) + discountMinor) }
      : null,
    retainerBalanceMinor: numOrNull(r.retainer_balance_minor), retainerRequestMinor: num(r.retainer_request_minor), retainerAppliedMinor: num(r.retainer_applied_minor ?? 0),
    scheduleRowIds: JSON.parse(r.schedule_rows_json) as string[], hideLinePricing: num(r.hide_line_pricing) === 1,
    batchId: r.batch_id, version: num(r.version), onHold: num(r.on_hold) === 1, request: JSON.parse(r.request_json) as BillRequest,
    quote: r.quote_json ? JSON.parse(r.quote_json) as QuoteOutcome : null, receiptsToReallocateMinor: num(r.receipts_to_reallocate_minor), compositionKey: r.composition_key ?? null,
    createdAt: r.created_at, createdBy: r.created_by, updatedAt: r.updated_at, approvedAt: r.approved_at, finalisedAt: r.finalised_at,
    redraftedAt: r.redrafted_at, deletedAt: r.deleted_at,
  };
}

/** The bills' allocations, by bill, in byTimekeeper order. */
async function allocationsOf(ex: Executor, ids: readonly string[]): Promise<Map<string, { timekeeperId: string; amountMinor: number }[]>> {
  const allocBy = new Map<string, { timekeeperId: string; amountMinor: number }[]>();
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const allocs = await ex.selectFrom('billing_bill_allocation').selectAll().where('bill_id', 'in', chunk).execute();
    for (const a of allocs) {
      const entry = { timekeeperId: a.timekeeper_id as string, amountMinor: num(a.amount_minor) };
      const list = allocBy.get(a.bill_id);
      if (list) list.push(entry); else allocBy.set(a.bill_id, [entry]);
    }
  }
  for (const list of allocBy.values()) list.sort(byTimekeeper);
  return allocBy;
}

/** A bill's lines and items as JSON (exactly what JSON.parse(JSON.stringify(billData(b).lines)) and `.items` give), with their counts. */
export interface LineJson { linesJson: string; itemsJson: string; lineCount: number; itemCount: number }

/**
 * Bills without their lines as objects: each bill's lines and items come as the JSON an
 * event payload carries. SQLite builds it (approving thousands of bills builds no object per
 * line and serialises none); Postgres reads the lines and they are serialised here. Lines in
 * line order; items are the lines holding an item, in line order (itemsOf).
 */
export async function billsWithLineJson(ex: Executor, rows: Record<string, any>[]): Promise<{ head: BillHead; lines: LineJson }[]> {
  if (rows.length === 0) return [];
  if (!writersSerialised(ex)) {
    // Postgres: the server building the JSON saved nothing (approving 469,666 items: 8.5 s in one benchmark run, against
    // 7.8 s for the code before and 8.0 s serialising here, within the hour), so the lines are read as arrays and serialised here, once.
    return (await billsFrom(ex, rows)).map(({ lines, items, ...head }) => ({
      head, lines: { linesJson: JSON.stringify(lines), itemsJson: JSON.stringify(items), lineCount: lines.length, itemCount: items.length },
    }));
  }
  const ids = rows.map((r) => r.id as string);
  // One JSON object per line, keys in BillLineData's order (noCharge a JSON boolean), in line order.
  const line = [
    `'lineNo', line_no`, `'key', key`, `'kind', kind`, `'itemId', item_id`, `'itemKind', item_kind`, `'scheduleRowId', schedule_row_id`, `'date', date`,
    `'timekeeperId', timekeeper_id`, `'code', code`, `'chargeTypeId', charge_type_id`, `'description', description`, `'minutes', minutes`,
    `'rateMinor', rate_minor`, `'recordedMinor', recorded_minor`, `'amountMinor', amount_minor`, `'noCharge', json(case when no_charge = 1 then 'true' else 'false' end)`,
    `'taxCode', tax_code`, `'taxMinor', tax_minor`, `'taskCode', task_code`, `'activityCode', activity_code`, `'expenseCode', expense_code`,
  ].join(', ');
  const held = 'item_id is not null and item_kind is not null';
  const select = `select bill_id, count(*) as line_count, count(*) filter (where ${held}) as item_count,
        json_group_array(json_object(${line}) order by line_no) as lines_json,
        json_group_array(json_object('kind', item_kind, 'id', item_id) order by line_no) filter (where ${held}) as items_json`;
  const byBill = new Map<string, LineJson>();
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    for (const r of await selectRaw<{ bill_id: string; line_count: unknown; item_count: unknown; lines_json: string; items_json: string | null }>(ex,
      `${select} from billing_bill_line where bill_id in (${marks(chunk.length)}) group by bill_id`, chunk)) {
      byBill.set(r.bill_id, { linesJson: r.lines_json, itemsJson: r.items_json ?? '[]', lineCount: num(r.line_count), itemCount: num(r.item_count) });
    }
  }
  const allocBy = await allocationsOf(ex, ids);
  return rows.map((r) => ({ head: toBillHead(r, allocBy.get(r.id) ?? []), lines: byBill.get(r.id) ?? { linesJson: '[]', itemsJson: '[]', lineCount: 0, itemCount: 0 } }));
}

/**
 * billData's JSON (the payload of bill events) from a bill whose lines and items are JSON
 * already: the same keys in the same order, the lines and items spliced in.
 */
export function billDataJson(b: BillHead, lines: LineJson): string {
  const head = JSON.stringify({
    billId: b.billId, status: b.status, number: b.number, sequence: b.sequence, matterId: b.matterId, clientId: b.clientId,
    fileNumber: b.fileNumber, currency: b.currency, invoiceDate: b.invoiceDate, upTo: b.upTo, dueDate: b.dueDate,
  });
  const mid = JSON.stringify({
    allocations: b.allocations, totals: b.totals, discount: b.discount, retainerBalanceMinor: b.retainerBalanceMinor,
    retainerRequestMinor: b.retainerRequestMinor, retainerAppliedMinor: b.retainerAppliedMinor, scheduleRowIds: b.scheduleRowIds,
  });
  const tail = JSON.stringify({ hideLinePricing: b.hideLinePricing, batchId: b.batchId, version: b.version });
  return `${head.slice(0, -1)},"lines":${lines.linesJson},${mid.slice(1, -1)},"items":${lines.itemsJson},${tail.slice(1)}`;
}

/** The bill_approved payload's JSON (BillApproved): billDataJson with the receipts to put back on the bill, as the single-bill command writes it. */
export function approvedDataJson(b: BillHead, lines: LineJson, receiptsToReallocateMinor: number): string {
  assert(Number.isSafeInteger(receiptsToReallocateMinor), 'receipts to reallocate: integer minor units');
  return `${billDataJson(b, lines).slice(0, -1)},"receiptsToReallocateMinor":${receiptsToReallocateMinor}}`;
}

export async function billsFrom(ex: Executor, rows: Record<string, any>[]): Promise<Bill[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id as string);
  const linesBy = new Map<string, BillLineData[]>();
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const lines = await selectColumns(ex, LINE_COLUMNS, `from billing_bill_line where bill_id in (${marks(chunk.length)})`, chunk, { groupBy: 'bill_id' });
    for (const l of lines) {
      const billId = l[0] as string;
      const list = linesBy.get(billId);
      if (list) list.push(toLine(l)); else linesBy.set(billId, [toLine(l)]);
    }
  }
  for (const list of linesBy.values()) list.sort(byLineNo);
  const allocBy = await allocationsOf(ex, ids);
  return rows.map((r) => toBill(r, linesBy.get(r.id) ?? [], allocBy.get(r.id) ?? []));
}

/** The id of the bill with this number (numbers are unique; a void one still names its deleted bill). */
export async function billIdByNumber(ex: Executor, number: string): Promise<string | null> {
  const r = await ex.selectFrom('billing_bill').select('id').where('number', '=', number).executeTakeFirst() as { id: string } | undefined;
  return r?.id ?? null;
}

export async function findBill(ex: Executor, id: string): Promise<Bill | null> {
  const r = await ex.selectFrom('billing_bill').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? (await billsFrom(ex, [r]))[0]! : null;
}

/** Several bills by id, in two queries (absent ids are left out). */
export async function findBills(ex: Executor, ids: readonly string[]): Promise<Map<string, Bill>> {
  if (ids.length === 0) return new Map();
  const rows = await ex.selectFrom('billing_bill').selectAll().where('id', 'in', [...ids]).execute();
  return new Map((await billsFrom(ex, rows)).map((b) => [b.billId, b]));
}

/** A matter's bills, newest first (numbered by sequence, then drafts by creation). */
export async function listBills(ex: Executor, matterId: string, opts: { includeDeleted?: boolean } = {}): Promise<Bill[]> {
  let q = ex.selectFrom('billing_bill').selectAll().where('matter_id', '=', matterId);
  if (!opts.includeDeleted) q = q.where('status', '<>', 'deleted');
  const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
  return billsFrom(ex, rows);
}

/** The matter's draft other than `exceptId`, as its number or id. */
export async function otherDraft(ex: Executor, matterId: string, exceptId: string | null): Promise<{ id: string; number: string | null } | null> {
  let q = ex.selectFrom('billing_bill').select(['id', 'number']).where('matter_id', '=', matterId).where('status', '=', 'draft');
  if (exceptId) q = q.where('id', '<>', exceptId);
  const r = await q.executeTakeFirst() as { id: string; number: string | null } | undefined;
  return r ?? null;
}

/** A bill's date and place among its matter's numbers, without its lines (the composer's live preview asks on each change). */
export async function billDating(ex: Executor, id: string): Promise<{ matterId: string; status: BillStatusName; sequence: number | null; invoiceDate: string } | null> {
  const r = await ex.selectFrom('billing_bill').select(['matter_id', 'status', 'sequence', 'invoice_date']).where('id', '=', id).executeTakeFirst() as
    { matter_id: string; status: BillStatusName; sequence: unknown; invoice_date: string } | undefined;
  return r ? { matterId: r.matter_id, status: r.status, sequence: numOrNull(r.sequence), invoiceDate: r.invoice_date } : null;
}

/** The live (not deleted) numbered bills just before and after `sequence` on the matter (sequenceDateRefusal). */
export async function sequenceNeighbours(ex: Executor, matterId: string, sequence: number): Promise<SequenceNeighbours> {
  const near = async (op: '<' | '>') => {
    const r = await ex.selectFrom('billing_bill').select(['number', 'invoice_date']).where('matter_id', '=', matterId).where('status', '<>', 'deleted')
      .where('sequence', 'is not', null).where('sequence', op, sequence).orderBy('sequence', op === '<' ? 'desc' : 'asc').limit(1)
      .executeTakeFirst() as { number: string; invoice_date: string } | undefined;
    return r ? { number: r.number, invoiceDate: r.invoice_date } : null;
  };
  return { before: await near('<'), after: await near('>') };
}

/** The highest sequence among the matter's numbered bills that are not deleted. */
export async function latestLiveSequence(ex: Executor, matterId: string): Promise<number | null> {
  const r = await ex.selectFrom('billing_bill').select((eb) => eb.fn.max('sequence').as('s'))
    .where('matter_id', '=', matterId).where('status', '<>', 'deleted').where('sequence', 'is not', null).executeTakeFirst() as { s: unknown } | undefined;
  return numOrNull(r?.s ?? null);
}

/** Fixed-fee schedule rows on the matter's live bills other than `exceptId`: row id to the bill's number (or "draft"). */
export async function scheduleRowsOnLiveBills(ex: Executor, matterId: string, exceptId: string | null): Promise<Map<string, string>> {
  let q = ex.selectFrom('billing_bill').select(['id', 'number', 'schedule_rows_json']).where('matter_id', '=', matterId).where('status', '<>', 'deleted');
  if (exceptId) q = q.where('id', '<>', exceptId);
  const out = new Map<string, string>();
  for (const r of await q.execute() as { id: string; number: string | null; schedule_rows_json: string }[]) {
    for (const rowId of JSON.parse(r.schedule_rows_json) as string[]) out.set(rowId, r.number ?? `draft ${r.id}`);
  }
  return out;
}

/**
 * The next bill sequence on a matter, taken for good in this transaction (the row is
 * locked until commit on Postgres; SQLite write transactions are serialised).
 */
export async function takeSequence(trx: Executor, matterId: string): Promise<number> {
  await trx.insertInto('billing_matter_sequence').values({ matter_id: matterId, last_sequence: 0 })
    .onConflict((oc) => oc.column('matter_id').doNothing()).execute();
  const r = await trx.updateTable('billing_matter_sequence').set({ last_sequence: sql`last_sequence + 1` })
    .where('matter_id', '=', matterId).returning('last_sequence').executeTakeFirstOrThrow() as { last_sequence: unknown };
  return num(r.last_sequence);
}

/**
 * Receipts allocated to a bill, as the ledger last said: billing's copy of the ledger's bill
 * balances (balances.ts), or, when the ledger has said more since than the copy holds yet (a
 * `ledger.bill_balance_changed` about the bill that billing's balance handler has not handled:
 * a receipt just recorded, a delivery backlog, a failing handler), the latest such event. The
 * one place the delete, revert and re-draft rules ask: "unreceipted" and the receipts to
 * allocate again are never read from a copy that is behind. Reads only the outbox's
 * undelivered rows (the relay's index) about this bill.
 */
export async function receiptsAllocatedMinor(ex: Executor, billId: string): Promise<number> {
  // Narrowed to payloads naming the bill (ids hold no LIKE wildcard; one that did is read unnarrowed).
  const mentions = /[%_\\]/.test(billId) ? {} : { mentions: `"billId":${JSON.stringify(billId)}` };
  for (const payload of await pendingPayloads(ex, { type: 'ledger.bill_balance_changed', handler: balances.BALANCE_HANDLER, ...mentions })) {
    const p = payload as { billId?: unknown; paidMinor?: unknown; status?: unknown };
    if (p.billId !== billId) continue;
    // As the copy reads it: what is paid on the bill while it is open.
    return p.status === 'open' ? Number(p.paidMinor) : 0;
  }
  return balances.receiptsAllocatedMinor(ex, billId);
}

/**
 * Receipts the ledger is still to put back on a bill approved again: those its revert or
 * re-draft took off, carried by a `billing.bill_approved` about the bill that some module has
 * not taken yet (the ledger posts the bill and allocates them to it again as it takes it); 0
 * when there is none. Until then billing's copy knows of no receipts on the bill, so this is
 * what keeps it from being deleted.
 */
export async function receiptsAwaitingPostingMinor(ex: Executor, billId: string): Promise<number> {
  const mentions = /[%_\\]/.test(billId) ? {} : { mentions: `"billId":${JSON.stringify(billId)}` };
  for (const payload of await pendingPayloads(ex, { type: 'billing.bill_approved', ...mentions })) {
    const p = payload as { billId?: unknown; receiptsToReallocateMinor?: unknown };
    if (p.billId !== billId) continue;
    // An approval published before the payload carried the figure re-allocates nothing billing can tell: 0.
    return typeof p.receiptsToReallocateMinor === 'number' ? p.receiptsToReallocateMinor : 0;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------
// Items on bills: a bill holds an item by its live line for it (billing_bill_line.item_id,
// unique among live lines; lines of deleted bills are kept with live = 0)
// ---------------------------------------------------------------------------------------

export type BillItem = WipCopy & { deletedInMatters: boolean };

/** The ids of the items on a bill's live lines. */
const liveItemsOf = (ex: Executor, billId: string) => ex.selectFrom('billing_bill_line').select('item_id')
  .where('bill_id', '=', billId).where('live', '=', 1).where('item_id', 'is not', null);

/** The WIP items a bill holds (including any matters has deleted since). */
export async function itemsOnBill(ex: Executor, billId: string): Promise<BillItem[]> {
  const rows = await ex.selectFrom('billing_wip').selectAll().select(sql<string>`${billId}`.as('bill_id'))
    .where('id', 'in', liveItemsOf(ex, billId))
    .orderBy('date').orderBy('kind').orderBy('id').execute();
  return rows.map((r) => ({ ...toWipCopy(r), deletedInMatters: r.deleted_in_matters_at !== null }));
}

/**
 * Check that items can go on the bill: each is in the copy, not deleted in matters, and
 * held by no other bill's live line; otherwise the whole command is refused, naming the
 * bills that hold them. The bill's lines (replaceLines, next in the same transaction) then
 * take them, and the unique index on live lines' items settles a race with another bill
 * (Postgres makes the second insert wait for the first transaction, then refuses it).
 */
export async function checkItemsFree(trx: Executor, billId: string, ids: readonly string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const rows = await trx.selectFrom('billing_wip as w')
      .leftJoin('billing_bill_line as l', (j) => j.onRef('l.item_id', '=', 'w.id').on('l.live', '=', 1))
      .leftJoin('billing_bill as b', 'b.id', 'l.bill_id')
      .select(['w.id', 'w.deleted_in_matters_at', 'l.bill_id', 'b.number']).where('w.id', 'in', chunk)
      .execute() as { id: string; deleted_in_matters_at: string | null; bill_id: string | null; number: string | null }[];
    const held = rows.filter((r) => r.bill_id !== null && r.bill_id !== billId);
    const free = rows.filter((r) => r.deleted_in_matters_at === null && (r.bill_id === null || r.bill_id === billId));
    if (free.length !== new Set(chunk).size) {
      const holders = [...new Set(held.map((h) => h.number ?? `draft ${h.bill_id}`))];
      throw conflict(holders.length > 0
        ? `${held.length} item(s) are already on bill ${holders.join(', ')}: reload the composer`
        : 'Some items are no longer available (changed or deleted in matters): reload the composer');
    }
  }
}

/**
 * Take items off a bill (all of them without ids), before its lines are replaced or
 * retired: an item matters deleted while it was on the bill is dropped from the copy (the
 * projection kept it only because the bill referred to it). The others are unbilled again
 * once no live line holds them.
 */
export async function releaseItems(trx: Executor, billId: string, ids?: readonly string[]): Promise<void> {
  if (ids && ids.length === 0) return;
  const chunks = ids ? Array.from({ length: Math.ceil(ids.length / 500) }, (_, i) => ids.slice(i * 500, i * 500 + 500)) : [null];
  for (const chunk of chunks) {
    let del = trx.deleteFrom('billing_wip').where('id', 'in', liveItemsOf(trx, billId)).where('deleted_in_matters_at', 'is not', null);
    if (chunk) del = del.where('id', 'in', chunk);
    await del.execute();
  }
}

// ---------------------------------------------------------------------------------------
// Copy conflicts on a bill
// ---------------------------------------------------------------------------------------

export async function openConflictCount(ex: Executor, billId: string): Promise<number> {
  const r = await ex.selectFrom('billing_copy_conflict').select((eb) => eb.fn.countAll().as('n'))
    .where('bill_id', '=', billId).where('resolved_at', 'is', null).executeTakeFirstOrThrow() as { n: unknown };
  return num(r.n);
}

/** The bill was recomposed (or deleted): what matters changed is taken into account. */
export async function resolveConflicts(trx: Executor, billId: string, at: string): Promise<void> {
  await trx.updateTable('billing_copy_conflict').set({ resolved_at: at }).where('bill_id', '=', billId).where('resolved_at', 'is', null).execute();
}

// ---------------------------------------------------------------------------------------
// Retainer balance (until the trust module owns retainers)
// ---------------------------------------------------------------------------------------

export interface RetainerBalance {
  matterId: string;
  balanceMinor: number;
  currency: string;
  asOf: string;
  note: string | null;
  version: number;
  updatedAt: string;
  updatedBy: string;
}

export async function findRetainerBalance(ex: Executor, matterId: string): Promise<RetainerBalance | null> {
  const r = await ex.selectFrom('billing_retainer_balance').selectAll().where('matter_id', '=', matterId).executeTakeFirst();
  return r ? {
    matterId: r.matter_id, balanceMinor: num(r.balance_minor), currency: r.currency, asOf: r.as_of, note: r.note, version: num(r.version),
    updatedAt: r.updated_at, updatedBy: r.updated_by,
  } : null;
}

/**
 * The general retainer pays an approved bill (its retainerAppliedMinor): the matter's recorded
 * balance falls by that much, only if it is still the balance the bill was composed with
 * (`composedWithMinor`). False when it is not (recorded anew since): nothing is written.
 */
export async function payFromRetainer(trx: Executor, matterId: string, amountMinor: number, composedWithMinor: number, at: string, by: string): Promise<boolean> {
  assert(Number.isSafeInteger(amountMinor) && amountMinor > 0 && amountMinor <= composedWithMinor, 'the retainer pays a positive amount it holds');
  const r = await trx.updateTable('billing_retainer_balance')
    .set((eb) => ({ balance_minor: eb('balance_minor', '-', amountMinor), version: eb('version', '+', 1), updated_at: at, updated_by: by }))
    .where('matter_id', '=', matterId).where('balance_minor', '=', composedWithMinor).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** A bill the retainer paid is reverted, re-drafted or deleted: what it took goes back on the matter's recorded balance. */
export async function refundToRetainer(trx: Executor, matterId: string, amountMinor: number, at: string, by: string): Promise<void> {
  assert(Number.isSafeInteger(amountMinor) && amountMinor > 0, 'a positive amount goes back on the retainer');
  await trx.updateTable('billing_retainer_balance')
    .set((eb) => ({ balance_minor: eb('balance_minor', '+', amountMinor), version: eb('version', '+', 1), updated_at: at, updated_by: by }))
    .where('matter_id', '=', matterId).execute();
}

/**
 * Record a matter's retainer balance over the version it had (`b.version - 1`; 0: none
 * recorded). False when another save got there first (the row is at another version, or was
 * inserted meanwhile): nothing is written.
 */
export async function saveRetainerBalance(trx: Executor, b: RetainerBalance): Promise<boolean> {
  const row = {
    matter_id: b.matterId, balance_minor: b.balanceMinor, currency: b.currency, as_of: b.asOf, note: b.note, version: b.version,
    updated_at: b.updatedAt, updated_by: b.updatedBy,
  };
  const r = await trx.insertInto('billing_retainer_balance').values(row)
    .onConflict((oc) => oc.column('matter_id').doUpdateSet({
      balance_minor: b.balanceMinor, currency: b.currency, as_of: b.asOf, note: b.note, version: b.version, updated_at: b.updatedAt, updated_by: b.updatedBy,
    }).where('billing_retainer_balance.version', '=', b.version - 1))
    .executeTakeFirst();
  return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1;
}
