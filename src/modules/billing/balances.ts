/**
 * Billing's copy of the debtors ledger's bill balances, fed by `ledger.bill_balance_changed`
 * (handler `billing.copy_bill_balance`), and the interest charges the firm's policy makes on
 * overdue bills (billing_interest_charge). Billing reads these to refuse deleting a receipted
 * bill, to carry receipts to re-allocate on a re-draft, and to charge interest by policy.
 *
 * The ledger publishes a bill's balance events in order and the relay keeps that order per
 * handler, so the latest event is the truth: the handler replaces the row.
 */
import type { Bus } from '../../shared/bus.ts';
import type { Executor } from '../../shared/db.ts';
import type { EbillingEvents } from '../ebilling/events.ts';
import type { LedgerEvents } from '../ledger/events.ts';
import type { ChargedDays, InterestCharge, OverdueCandidate } from './domain/interest.ts';
import type { LedgerPeriods } from './domain/lifecycle.ts';
import { approvalPeriodNote, periodRefusal, undoPeriodRefusal } from './domain/lifecycle.ts';
import { getFirmSettings } from './store.ts';
import { MAX_CHARGES_PER_OVERDUE_BILL, MAX_OVERDUE_BILLS } from './domain/interest.ts';

export const BALANCE_HANDLER = 'billing.copy_bill_balance';
export const PERIODS_HANDLER = 'billing.copy_ledger_periods';

export function registerBalanceProjection(bus: Bus<any>): void {
  bus.subscribe('ledger.bill_balance_changed', BALANCE_HANDLER, async (event, ctx) => {
    const p = (event as { payload: LedgerEvents['ledger.bill_balance_changed'] }).payload;
    const row = {
      matter_id: p.matterId, client_id: p.clientId, bill_number: p.billNumber, currency: p.currency,
      total_minor: p.totalMinor, paid_minor: p.paidMinor, written_off_minor: p.writtenOffMinor, outstanding_minor: p.outstandingMinor,
      last_receipt_on: p.lastReceiptOn, due_date: p.dueDate, discount_status: p.discountStatus, discount_valid_until: p.discountValidUntil, status: p.status, occurred_on: p.occurredOn, event_id: event.id,
    };
    await ctx.trx.insertInto('billing_bill_balance').values({ bill_id: p.billId, ...row })
      .onConflict((oc) => oc.column('bill_id').doUpdateSet(row)).execute();
  });
}

export const EXPORTS_HANDLER = 'billing.copy_ledes_exports';

/** Billing's copy of the LEDES files e-billing exported: a row per bill in a file (the same event again changes nothing). */
export function registerExportsProjection(bus: Bus<any>): void {
  bus.subscribe('ebilling.file_exported', EXPORTS_HANDLER, async (event, ctx) => {
    const p = (event as { payload: EbillingEvents['ebilling.file_exported'] }).payload;
    for (const b of p.bills) {
      await ctx.trx.insertInto('billing_bill_export')
        .values({ export_id: p.exportId, bill_id: b.billId, file_name: p.fileName, format: p.format, total_minor: b.totalMinor, exported_at: p.exportedAt })
        .onConflict((oc) => oc.columns(['export_id', 'bill_id']).doNothing()).execute();
    }
  });
}

/** The LEDES files holding this bill exported at or after `since` (its approval), oldest first. */
export async function ledesExportsSince(ex: Executor, billId: string, since: string): Promise<{ fileName: string; format: string; totalMinor: number; exportedAt: string }[]> {
  const rows = await ex.selectFrom('billing_bill_export').select(['file_name', 'format', 'total_minor', 'exported_at'])
    .where('bill_id', '=', billId).where('exported_at', '>=', since).orderBy('exported_at').limit(100).execute() as { file_name: string; format: string; total_minor: unknown; exported_at: string }[];
  return rows.map((r) => ({ fileName: r.file_name, format: r.format, totalMinor: Number(r.total_minor), exportedAt: r.exported_at }));
}

/** Billing's copy of the ledger's accounting periods: the latest event is the whole truth (one row). */
export function registerPeriodsProjection(bus: Bus<any>): void {
  bus.subscribe('ledger.periods_changed', PERIODS_HANDLER, async (event, ctx) => {
    const p = (event as { payload: LedgerEvents['ledger.periods_changed'] }).payload;
    const row = { current_period: p.currentPeriod, closed_json: JSON.stringify(p.closedPeriods), event_id: event.id, updated_at: event.occurredAt };
    await ctx.trx.insertInto('billing_ledger_periods').values({ id: 'periods', ...row })
      .onConflict((oc) => oc.column('id').doUpdateSet(row)).execute();
  });
}

/** The ledger's periods as billing last heard (none set: the current period is the month of today, none closed). */
export async function ledgerPeriods(ex: Executor): Promise<LedgerPeriods> {
  const r = await ex.selectFrom('billing_ledger_periods').select(['current_period', 'closed_json']).where('id', '=', 'periods').executeTakeFirst() as { current_period: string | null; closed_json: string } | undefined;
  return r ? { currentPeriod: r.current_period, closedPeriods: JSON.parse(r.closed_json) as string[] } : { currentPeriod: null, closedPeriods: [] };
}

/** The period note of a draft dated `invoiceDate` approved `today`, by the ledger's periods and the firm's rule (approvalPeriodNote). */
export async function approvalPeriodNotes(ex: Executor, today: string): Promise<{ noteOf: (invoiceDate: string) => string | null; refusalOf: (invoiceDate: string) => string | null; undoRefusalOf: (invoiceDate: string) => string | null; refuses: boolean; currentPeriod: string | null }> {
  const periods = await ledgerPeriods(ex);
  const policy = (await getFirmSettings(ex))?.postingOutsideCurrentPeriod;
  return {
    noteOf: (d) => approvalPeriodNote(d, today, periods, policy), refusalOf: (d) => periodRefusal(d, today, periods, policy),
    undoRefusalOf: (d) => undoPeriodRefusal(d, today, periods, policy),
    refuses: policy === 'refuse', currentPeriod: periods.currentPeriod,
  };
}

/** Receipts the ledger has allocated to the bill (0 when it has none, or none are known yet). */
export async function receiptsAllocatedMinor(ex: Executor, billId: string): Promise<number> {
  const r = await ex.selectFrom('billing_bill_balance').select('paid_minor').where('bill_id', '=', billId).where('status', '=', 'open').executeTakeFirst();
  return r ? Number(r.paid_minor) : 0;
}

/** What the ledger has written off on the bill (0 when nothing, or none is known yet). */
export async function writtenOffMinor(ex: Executor, billId: string): Promise<number> {
  const r = await ex.selectFrom('billing_bill_balance').select('written_off_minor').where('bill_id', '=', billId).where('status', '=', 'open').executeTakeFirst();
  return r ? Number(r.written_off_minor) : 0;
}

/** Matters per query in the batch reads below. */
const CHUNK = 500;

function groupBy<T>(rows: readonly T[], key: (r: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const r of rows) {
    const k = key(r);
    const list = out.get(k);
    if (list) list.push(r); else out.set(k, [r]);
  }
  return out;
}

/**
 * For each matter, its posted bills with a balance due before the date (other than
 * `exceptBillId`), oldest due first, each with the days interest was charged on it by live
 * bills other than `exceptBillId`. Two queries per 500 matters, however many there are.
 */
export async function overdueCandidatesOf(ex: Executor, matterIds: readonly string[], beforeDate: string, exceptBillId: string | null): Promise<Map<string, OverdueCandidate[]>> {
  const out = new Map<string, OverdueCandidate[]>();
  for (let i = 0; i < matterIds.length; i += CHUNK) {
    let q = ex.selectFrom('billing_bill_balance as b')
      .select(['b.matter_id', 'b.bill_id', 'b.bill_number', 'b.due_date', 'b.outstanding_minor'])
      .where('b.matter_id', 'in', matterIds.slice(i, i + CHUNK)).where('b.status', '=', 'open').where('b.outstanding_minor', '>', 0).where('b.due_date', '<', beforeDate)
      .orderBy('b.matter_id').orderBy('b.due_date').orderBy('b.bill_id');
    if (exceptBillId) q = q.where('b.bill_id', '!=', exceptBillId);
    const rows = await q.execute();
    if (rows.length === 0) continue;
    let cq = ex.selectFrom('billing_interest_charge as c').innerJoin('billing_bill as cb', 'cb.id', 'c.charging_bill_id')
      .select(['c.overdue_bill_id', 'c.from_date', 'c.through_date'])
      .where('c.overdue_bill_id', 'in', rows.map((r) => r.bill_id)).where('cb.status', '!=', 'deleted')
      .orderBy('c.overdue_bill_id').orderBy('c.from_date');
    if (exceptBillId) cq = cq.where('c.charging_bill_id', '!=', exceptBillId);
    const charged = new Map<string, ChargedDays[]>();
    for (const r of await cq.execute()) {
      const list = charged.get(r.overdue_bill_id as string) ?? [];
      if (list.length === 0) charged.set(r.overdue_bill_id as string, list);
      // Refuse rather than under-read: a bill charged more often than the limit is not charged again by policy.
      if (list.length >= MAX_CHARGES_PER_OVERDUE_BILL) throw new Error(`overdue bill ${r.overdue_bill_id as string} has more than ${MAX_CHARGES_PER_OVERDUE_BILL} interest charges`);
      list.push({ from: r.from_date as string, through: r.through_date as string });
    }
    for (const [matterId, bills] of groupBy(rows, (r) => r.matter_id as string)) {
      out.set(matterId, bills.slice(0, MAX_OVERDUE_BILLS).map((r) => ({
        billId: r.bill_id, billNumber: r.bill_number, dueDate: r.due_date, outstandingMinor: Number(r.outstanding_minor), charged: charged.get(r.bill_id) ?? [],
      })));
    }
  }
  return out;
}

/** One matter's overdue bills (overdueCandidatesOf for one). */
export async function overdueCandidates(ex: Executor, matterId: string, beforeDate: string, exceptBillId: string | null): Promise<OverdueCandidate[]> {
  return (await overdueCandidatesOf(ex, [matterId], beforeDate, exceptBillId)).get(matterId) ?? [];
}

/** Replace the interest charges a bill makes (on save of a draft; none when it charges no policy interest). */
export async function replaceInterestCharges(ex: Executor, chargingBillId: string, charges: readonly InterestCharge[]): Promise<void> {
  await ex.deleteFrom('billing_interest_charge').where('charging_bill_id', '=', chargingBillId).execute();
  if (charges.length === 0) return;
  await ex.insertInto('billing_interest_charge').values(charges.map((c) => ({
    charging_bill_id: chargingBillId, overdue_bill_id: c.overdueBillId, overdue_bill_number: c.overdueBillNumber,
    from_date: c.fromDate, through_date: c.throughDate, balance_minor: c.balanceMinor, amount_minor: c.amountMinor,
  }))).execute();
}

/** A posted bill of the matter whose time-sensitive discount has expired undecided (seed 003: ask whether it still applies). */
export interface ExpiredDiscount { billId: string; billNumber: string; validUntil: string; outstandingMinor: number }

/** For each matter, its open bills whose time-sensitive discount expired before the date, still unpaid and neither honoured nor reversed. */
export async function expiredDiscountsOf(ex: Executor, matterIds: readonly string[], asOf: string): Promise<Map<string, ExpiredDiscount[]>> {
  const out = new Map<string, ExpiredDiscount[]>();
  for (let i = 0; i < matterIds.length; i += CHUNK) {
    const rows = await ex.selectFrom('billing_bill_balance').select(['matter_id', 'bill_id', 'bill_number', 'discount_valid_until', 'outstanding_minor'])
      .where('matter_id', 'in', matterIds.slice(i, i + CHUNK)).where('status', '=', 'open').where('discount_status', '=', 'pending')
      .where('discount_valid_until', '<', asOf).where('outstanding_minor', '>', 0).orderBy('matter_id').orderBy('discount_valid_until').orderBy('bill_id').execute();
    for (const [matterId, bills] of groupBy(rows, (r) => r.matter_id as string)) {
      out.set(matterId, bills.slice(0, 100).map((r) => ({ billId: r.bill_id, billNumber: r.bill_number, validUntil: r.discount_valid_until as string, outstandingMinor: Number(r.outstanding_minor) })));
    }
  }
  return out;
}

/** One matter's expired, undecided discounts (expiredDiscountsOf for one). */
export async function expiredDiscounts(ex: Executor, matterId: string, asOf: string): Promise<ExpiredDiscount[]> {
  return (await expiredDiscountsOf(ex, [matterId], asOf)).get(matterId) ?? [];
}
