/**
 * Shared setup for the bill tests: the whole runtime (bus, relay, every module's
 * subscriptions) over a test database, the REAL matters commands to record work, and
 * billing's commands. Tests read matters' tables only to check what matters did.
 */
import assert from 'node:assert/strict';
import pino from 'pino';
import { buildRuntime } from '../../src/main.ts';
import { createBillingCommands, createBillingReads } from '../../src/modules/billing/index.ts';
import type { Bill, BillingCommands } from '../../src/modules/billing/index.ts';
import { holderColumn } from '../../src/modules/billing/store.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import type { MattersCommands } from '../../src/modules/matters/index.ts';
import { manualClock } from '../../src/shared/clock.ts';
import type { Executor } from '../../src/shared/db.ts';
import { systemContext } from '../../src/shared/events.ts';
import { HttpError } from '../../src/shared/web/errors.ts';
import type { TestDb } from '../support/db.ts';

export const ctx = systemContext('corr-bills', 'test');
export const logger = pino({ level: 'silent' });

export async function setup(db: TestDb, opts: { start?: string } = {}) {
  const clock = manualClock(opts.start ?? '2026-03-02T09:00:00Z');
  const rt = await buildRuntime(db, { clock, logger });
  const cmds = createMattersCommands({ db: db.db, clock, relay: rt.relay });
  const billing = createBillingCommands({ db: db.db, clock, relay: rt.relay });
  const reads = createBillingReads(db.db);
  /** Deliver everything; nothing may fail. */
  const drain = async () => {
    const r = await rt.relay.drain();
    const failures = await db.db.selectFrom('outbox_delivery').selectAll().execute();
    assert.deepEqual(failures, [], 'no handler failed');
    assert.equal(r.pending, 0, 'every event delivered');
    return r;
  };
  return { clock, rt, cmds, billing, reads, drain };
}

export type Setup = Awaited<ReturnType<typeof setup>>;

/** The firm: a partner (300.00/h) and an associate (200.00/h), one client, one matter (1.1). */
export async function firm(cmds: MattersCommands) {
  await cmds.getFirmSettings();
  const partner = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  const associate = await cmds.createTimekeeper(ctx, { initials: 'JS', name: 'Jonah Stern', classification: 'associate' });
  await cmds.setTimekeeperRate(ctx, { timekeeperId: partner.id, effectiveFrom: '2025-01-01', rateMinor: 30_000 });
  await cmds.setTimekeeperRate(ctx, { timekeeperId: associate.id, effectiveFrom: '2025-01-01', rateMinor: 20_000 });
  const client = await cmds.createClient(ctx, { name: 'Northwind Logistics Inc.', email: 'ap@northwind.example' });
  const matter = await cmds.openMatter(ctx, {
    clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH',
  });
  return { partner, associate, client, matter };
}

/** Some work on a matter: 2 h partner, 1.5 h associate, a filing fee, copies. */
export async function work(cmds: MattersCommands, matterId: string, tks: { partner: { id: string }; associate: { id: string } }) {
  const t1 = await cmds.recordTimeEntry(ctx, { matterId, timekeeperId: tks.partner.id, workDate: '2026-02-10', rawMinutes: 120, narrative: 'Hearing', taskCode: 'L110', activityCode: 'A101' });
  const t2 = await cmds.recordTimeEntry(ctx, { matterId, timekeeperId: tks.associate.id, workDate: '2026-02-11', rawMinutes: 90, narrative: 'Research' });
  const d1 = await cmds.recordDisbursement(ctx, { matterId, incurredOn: '2026-02-12', code: 'COURT', expenseCode: 'E112', unitCostMinor: 35_000, taxCode: 'EXEMPT', description: 'Filing fee' });
  const d2 = await cmds.recordDisbursement(ctx, { matterId, incurredOn: '2026-02-20', code: 'COPY', quantityMilli: 100_000, unitCostMinor: 15, description: 'Copies' });
  return { t1, t2, d1, d2 };
}

/** Run a command that must be refused: the HTTP status and the reason. */
export async function refused(p: Promise<unknown>, status: 404 | 409 | 422 = 409): Promise<HttpError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof HttpError) {
      assert.equal(e.status, status, `${e.status} ${e.message} ${JSON.stringify(e.fields)}`);
      return e;
    }
    throw e;
  }
  assert.fail(`expected a ${status} refusal`);
}

/** Matters' status of WIP items, by id. */
/**
 * A bill row written directly, for store-level tests that need a bill without composing one
 * (a posted status needs `sequence`: its number is file.sequence); liveLines then puts items
 * on it.
 */
export async function insertTestBill(
  db: Executor, billId: string, matter: { id: string; clientId: string; fileNumber: string }, opts: { status?: 'draft' | 'approved'; sequence?: number } = {},
): Promise<void> {
  const at = '2026-03-02T09:00:00.000Z';
  const numbered = opts.sequence !== undefined ? { number: `${matter.fileNumber}.${opts.sequence}`, sequence: opts.sequence, approved_at: at } : {};
  await db.insertInto('billing_bill').values({
    id: billId, matter_id: matter.id, client_id: matter.clientId, file_number: matter.fileNumber, status: opts.status ?? 'draft', ...numbered,
    invoice_date: '2026-02-28', up_to: '2026-02-28', due_date: '2026-03-30', currency: 'USD', fees_minor: 0, fixed_charges_minor: 0, disbursements_minor: 0,
    discount_minor: 0, interest_minor: 0, tax_minor: 0, total_minor: 0, net_fees_minor: 0, retainer_request_minor: 0, hide_line_pricing: 0,
    request_json: '{}', schedule_rows_json: '[]', version: 1, created_at: at, created_by: 'test', updated_at: at,
  }).execute();
}

/** Live lines of the bill holding `items` (what a bill's lines do once its commands checked them free). */
export async function liveLines(db: Executor, billId: string, items: readonly { kind: 'time' | 'disbursement' | 'fixed_charge'; id: string }[]): Promise<void> {
  await db.insertInto('billing_bill_line').values(items.map((item, i) => ({
    bill_id: billId, line_no: i + 1, key: item.id, item_id: item.id, item_kind: item.kind, kind: item.kind, date: '2026-02-10', description: 'on the bill',
    recorded_minor: 0, amount_minor: 0, no_charge: 0, tax_minor: 0, live: 1,
  }))).execute();
}

export async function mattersStatus(db: Executor, ids: readonly string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const table of ['matters_time_entry', 'matters_disbursement', 'matters_fixed_charge']) {
    if (ids.length === 0) break;
    for (const r of await db.selectFrom(table).select(['id', 'status']).where('id', 'in', ids).execute() as { id: string; status: string }[]) out[r.id] = r.status;
  }
  return out;
}

/**
 * The invariants of bills and items, checked against the tables:
 *  - every item is on no bill, or on exactly one live bill (its one live line), and an item
 *    on a bill is kept in billing's copy;
 *  - a live bill's totals are the sum of its lines and their taxes, and its allocations
 *    sum to its net fees; its items are exactly the items its live lines hold;
 *  - numbers are gapless per matter (1..n, deleted bills keep theirs) and never reused.
 */
export async function assertBillInvariants(db: Executor, billing: BillingCommands, matterIds: readonly string[]): Promise<void> {
  const wipRows = await db.selectFrom('billing_wip').select(['id', 'matter_id']).where('matter_id', 'in', matterIds).execute() as { id: string; matter_id: string }[];
  const liveLines = await db.selectFrom('billing_bill_line as l').innerJoin('billing_bill as b', 'b.id', 'l.bill_id')
    .select(['l.item_id', 'l.bill_id', 'b.status', 'l.live']).where('b.matter_id', 'in', matterIds).where('l.item_id', 'is not', null).execute() as { item_id: string; bill_id: string; status: string; live: number }[];
  const liveByItem = new Map<string, string[]>();
  for (const l of liveLines) {
    assert.equal(Number(l.live) === 1, l.status !== 'deleted', 'a line is live exactly while its bill is not deleted');
    if (l.status !== 'deleted') liveByItem.set(l.item_id, [...(liveByItem.get(l.item_id) ?? []), l.bill_id]);
  }
  const copied = new Set(wipRows.map((w) => w.id));
  for (const [itemId, bills] of liveByItem) {
    assert.ok(bills.length <= 1, `item ${itemId} is on ${bills.length} live bills`);
    assert.ok(copied.has(itemId), `item ${itemId} on bill ${bills[0]} is kept in billing's copy`);
  }
  // Each item with the bill holding it (its one live line), as billing reads it.
  const wip = wipRows.map((w) => ({ ...w, bill_id: liveByItem.get(w.id)?.[0] ?? null }));
  const read = new Map((await db.selectFrom('billing_wip').select(['id', holderColumn()]).where('matter_id', 'in', matterIds).execute() as { id: string; bill_id: string | null }[]).map((r) => [r.id, r.bill_id]));
  for (const w of wip) assert.equal(read.get(w.id), w.bill_id, `item ${w.id}: the holder billing reads is its live line's bill`);
  for (const matterId of matterIds) {
    const all: Bill[] = await billing.listBills(matterId, { includeDeleted: true });
    for (const b of all) {
      if (b.status === 'deleted') {
        assert.equal(wip.filter((w) => w.bill_id === b.billId).length, 0, 'a deleted bill holds no item');
        continue;
      }
      const sumLines = b.lines.reduce((a, l) => a + l.amountMinor + l.taxMinor, 0);
      assert.equal(b.totals.totalMinor, sumLines, `bill ${b.number ?? b.billId}: total = lines + tax`);
      assert.equal(b.allocations.reduce((a, x) => a + x.amountMinor, 0), b.totals.netFeesMinor, 'allocations sum to the net fees');
      assert.deepEqual(b.items.map((i) => i.id).sort(), wip.filter((w) => w.bill_id === b.billId).map((w) => w.id).sort(), 'the bill\'s items are the items it holds');
    }
    const seqs = all.filter((b) => b.sequence !== null).map((b) => b.sequence!).sort((a, b) => a - b);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'bill numbers are gapless and unique');
    const drafts = all.filter((b) => b.status === 'draft');
    assert.ok(drafts.length <= 1, 'one draft per matter at most');
  }
}

/** A matter's fixed fee of 1,000.00 billed in two instalments: 400.00 from 1 February, 600.00 from 1 April. */
export function twoInstalments(): NonNullable<Parameters<MattersCommands['setBillingOptions']>[2]['set']> {
  return {
    arrangement: 'fixed_fee', quote: { amountMinor: 100_000 },
    fixedFee: { mode: 'custom_schedule', schedule: [
      { rowId: 'r1', amountMinor: 40_000, description: 'Instalment 1', billOn: '2026-02-01', billOnStep: null, payOnStep: null, invoiceNumber: null },
      { rowId: 'r2', amountMinor: 60_000, description: 'Instalment 2', billOn: '2026-04-01', billOnStep: null, payOnStep: null, invoiceNumber: null },
    ] },
  };
}
