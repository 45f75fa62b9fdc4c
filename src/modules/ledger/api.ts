/**
 * The ledger JSON API, mounted at /api/v1: record a receipt (against a bill or on account),
 * read and reverse it, a bill's balance on the debtors ledger, and every report as JSON rows
 * (GET /reports/{name}). Money is a decimal string in the currency ("350.00"); dates are
 * YYYY-MM-DD. Bad input is a 422 naming the field; a refusal is a 409 with the reason.
 * Reads: admin, billing, readonly. Writes: admin, billing.
 */
import type { Hono } from 'hono';
import Type from 'typebox';
import { MoneyParseError, parseAmount, toDecimalString } from '../../shared/money.ts';
import { createApi } from '../../shared/web/api.ts';
import { invalid, notFound } from '../../shared/web/errors.ts';
import type { ModuleDeps } from '../../shared/web/module.ts';
import type { AppEnv, Role } from '../../shared/web/types.ts';
import { periodSettings } from './books.ts';
import type { LedgerCommands } from './commands.ts';
import { RECEIPT_METHODS, REFUND_METHODS } from './commands.ts';
import { ALLOCATION_ORDERS } from './domain.ts';
import type { AllocationOrder, DiscountChoice } from './domain.ts';
import { createLedgerReports, isReportName, REPORT_NAMES, ReportParamError } from './reports.ts';
import * as store from './store.ts';
import type { LedgerBill, Receipt } from './store.ts';

const READ: readonly Role[] = ['admin', 'billing', 'readonly'];
const WRITE: readonly Role[] = ['admin', 'billing'];
const TAG = 'ledger';

const literals = <T extends string>(values: readonly T[]) => Type.Unsafe<T>(Type.Union(values.map((v) => Type.Literal(v))));
const Money = (description: string) => Type.String({ pattern: '^[0-9]{1,16}(\\.[0-9]{1,3})?$', errorMessage: 'must be an amount as a decimal string, e.g. "350.00"', description });
const IsoDate = (description?: string) => Type.String({ pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$', errorMessage: 'must be a date (YYYY-MM-DD)', ...(description ? { description } : {}) });
const Id = Type.String({ minLength: 1, maxLength: 64, pattern: '^[0-9a-zA-Z-]+$', errorMessage: 'must be an id' });
const Nullable = <T extends ReturnType<typeof Type.String>>(s: T) => Type.Union([s, Type.Null()]);

const ReceiptBody = Type.Object({
  receiptId: Type.Optional(Id),
  billId: Type.Optional(Nullable(Id)),
  clientId: Type.Optional(Nullable(Id)),
  receivedOn: IsoDate('The date the money was received'),
  amount: Money('The amount received'),
  method: Type.Optional(literals(RECEIPT_METHODS as readonly string[])),
  reference: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
  order: Type.Optional(literals(ALLOCATION_ORDERS)),
  discount: Type.Optional(literals(['auto', 'honour', 'reverse'] as const)),
  confirmOutsidePeriod: Type.Optional(Type.Boolean({ description: 'Confirm a posting outside the current period (when the firm warns)' })),
  currency: Type.Optional(Nullable(Type.String({ pattern: '^[A-Z]{3}$', description: 'The receipt\'s currency (default: the bill\'s, or the firm\'s on account); on account, the firm\'s or one the client is billed in' }))),
}, { additionalProperties: false });

const AllocationOut = Type.Object({ billId: Type.String(), amount: Type.String(), allocatedOn: Type.String(), released: Type.Boolean() });
const RefundOut = Type.Object({
  id: Type.String(), amount: Type.String(), refundedOn: Type.String(), method: Type.String(), reference: Type.Union([Type.String(), Type.Null()]), reason: Type.String(),
  reversedOn: Type.Union([Type.String(), Type.Null()], { description: 'Set once the refund was taken back (the money returned): its amount is unallocated credit again' }),
});
const ReceiptOut = Type.Object({
  id: Type.String(), number: Type.String(), clientId: Type.String(), billId: Type.Union([Type.String(), Type.Null()]), receivedOn: Type.String(),
  amount: Type.String(), currency: Type.String(), unallocated: Type.String(), status: Type.String(), allocations: Type.Array(AllocationOut),
  refunds: Type.Array(RefundOut, { description: 'Credit paid back to the client: amount = unallocated + live allocations + refunds not reversed' }),
  warning: Type.Optional(Type.Union([Type.String(), Type.Null()])),
});
const BillOut = Type.Object({
  billId: Type.String(), number: Type.String(), status: Type.String(), currency: Type.String(), total: Type.String(), paid: Type.String(),
  writtenOff: Type.String(), outstanding: Type.String(), discountStatus: Type.String(), discountValidUntil: Type.Union([Type.String(), Type.Null()]),
});
const ReportOut = Type.Object({
  name: Type.String(), title: Type.String(), subtitle: Type.String(), currency: Type.String(),
  columns: Type.Array(Type.Object({ key: Type.String(), label: Type.String(), kind: Type.String() })),
  rows: Type.Array(Type.Record(Type.String(), Type.Union([Type.String(), Type.Null()]))),
  totals: Type.Union([Type.Record(Type.String(), Type.Union([Type.String(), Type.Null()])), Type.Null()]),
  notes: Type.Array(Type.String()),
});

export function createLedgerApi(deps: ModuleDeps, cmds: LedgerCommands): Hono<AppEnv> {
  const { app, route } = createApi(deps.apiRegistry);
  const db = deps.db;
  const reports = createLedgerReports(db, deps.clock);

  async function receiptOut(r: Receipt, warning: string | null = null) {
    const allocs = await store.allocations(db, { receiptId: r.id });
    const d = (m: number) => toDecimalString(m, r.currency);
    return {
      id: r.id, number: r.number, clientId: r.clientId, billId: r.billId, receivedOn: r.receivedOn, amount: d(r.amountMinor), currency: r.currency,
      unallocated: d(r.unallocatedMinor), status: r.status, warning,
      allocations: allocs.map((a) => ({ billId: a.billId, amount: d(a.amountMinor), allocatedOn: a.allocatedOn, released: a.releasedOn !== null })),
      refunds: (await store.refunds(db, r.id)).map((x) => ({ id: x.id, amount: d(x.amountMinor), refundedOn: x.refundedOn, method: x.method, reference: x.reference, reason: x.reason, reversedOn: x.reversedOn })),
    };
  }
  const billOut = (b: LedgerBill) => {
    const d = (m: number) => toDecimalString(m, b.currency);
    return {
      billId: b.id, number: b.number, status: b.status, currency: b.currency, total: d(b.status === 'open' ? b.totalMinor + b.discountReversedMinor : 0),
      paid: d(b.status === 'open' ? b.paidMinor : 0), writtenOff: d(b.status === 'open' ? b.writtenOffMinor : 0), outstanding: d(store.outstandingOf(b)),
      discountStatus: b.discountStatus, discountValidUntil: b.discountValidUntil,
    };
  };

  route({ method: 'post', path: '/receipts', summary: 'Record a receipt against a bill or on account', tag: TAG, audience: WRITE, body: ReceiptBody, response: ReceiptOut, status: 201 }, async (c, { body }) => {
    const bill = body.billId ? await store.findBill(db, body.billId) : null;
    // The amount is read in the currency it is given in (yen has no decimals); the command checks the currency.
    const currency = bill?.currency ?? body.currency ?? (await db.transaction().execute((trx) => periodSettings({ trx, clock: deps.clock }))).currency;
    let amountMinor: number;
    try { amountMinor = parseAmount(body.amount, currency); } catch (e) {
      if (e instanceof MoneyParseError) throw invalid({ amount: e.message });
      throw e;
    }
    const r = await cmds.recordReceipt(c.get('command'), {
      ...(body.receiptId ? { receiptId: body.receiptId } : {}), billId: body.billId ?? null, clientId: body.clientId ?? null, receivedOn: body.receivedOn, amountMinor,
      method: body.method, reference: body.reference ?? null, order: body.order as AllocationOrder | undefined, discount: body.discount as DiscountChoice | undefined,
      confirmOutsidePeriod: body.confirmOutsidePeriod ?? false, currency: body.currency ?? null,
    });
    return receiptOut(r.receipt, r.warning);
  });

  route({ method: 'get', path: '/receipts/:id', summary: 'A receipt and its allocations', tag: TAG, audience: READ, response: ReceiptOut }, async (c) => {
    const r = await store.findReceipt(db, c.req.param('id')!);
    if (!r) throw notFound('Receipt');
    return receiptOut(r);
  });

  route({
    method: 'post', path: '/receipts/:id/reverse', summary: 'Reverse a receipt (its allocations are released)', tag: TAG, audience: WRITE,
    body: Type.Object({ reason: Type.String({ minLength: 1, maxLength: 500 }), on: Type.Optional(IsoDate()), confirmOutsidePeriod: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
    response: ReceiptOut,
  }, async (c, { body }) => {
    const r = await cmds.reverseReceipt(c.get('command'), { receiptId: c.req.param('id')!, reason: body.reason, ...(body.on ? { on: body.on } : {}), confirmOutsidePeriod: body.confirmOutsidePeriod ?? false });
    return receiptOut(r);
  });

  route({
    method: 'post', path: '/receipts/:id/refunds', summary: 'Refund part or all of a receipt\'s unallocated credit to the client (never more than was free on that day and every day since); `refundId` makes it idempotent', tag: TAG, audience: WRITE,
    body: Type.Object({
      refundId: Type.Optional(Id), amount: Type.Optional(Money('The amount to refund (default: all the unallocated credit)')), on: Type.Optional(IsoDate('The day the money is paid out (default: today, or the receipt\'s date if later)')),
      method: Type.Optional(literals(REFUND_METHODS)), reference: Type.Optional(Nullable(Type.String({ maxLength: 100 }))), reason: Type.String({ minLength: 1, maxLength: 500 }),
      confirmOutsidePeriod: Type.Optional(Type.Boolean()),
    }, { additionalProperties: false }),
    response: ReceiptOut, status: 201,
  }, async (c, { body }) => {
    const r = await store.findReceipt(db, c.req.param('id')!);
    if (!r) throw notFound('Receipt');
    let amountMinor: number | undefined;
    if (body.amount !== undefined) {
      try { amountMinor = parseAmount(body.amount, r.currency); } catch (e) {
        if (e instanceof MoneyParseError) throw invalid({ amount: e.message });
        throw e;
      }
    }
    const after = await cmds.refundCredit(c.get('command'), {
      receiptId: r.id, ...(body.refundId ? { refundId: body.refundId } : {}), ...(amountMinor !== undefined ? { amountMinor } : {}), ...(body.on ? { on: body.on } : {}),
      ...(body.method ? { method: body.method } : {}), ...(body.reference ? { reference: body.reference } : {}), reason: body.reason, confirmOutsidePeriod: body.confirmOutsidePeriod ?? false,
    });
    return receiptOut(after);
  });

  route({
    method: 'post', path: '/refunds/:id/reverse', summary: 'Take a refund back (the payment to the client was returned or never made): its credit is unallocated again', tag: TAG, audience: WRITE,
    body: Type.Object({ on: Type.Optional(IsoDate()), reason: Type.Optional(Type.String({ maxLength: 500 })), confirmOutsidePeriod: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
    response: ReceiptOut,
  }, async (c, { body }) => {
    const after = await cmds.reverseRefund(c.get('command'), { refundId: c.req.param('id')!, ...(body.on ? { on: body.on } : {}), ...(body.reason ? { reason: body.reason } : {}), confirmOutsidePeriod: body.confirmOutsidePeriod ?? false });
    return receiptOut(after);
  });

  route({ method: 'get', path: '/ledger/bills/:id', summary: 'A bill\'s balance on the debtors ledger', tag: TAG, audience: READ, response: BillOut }, async (c) => {
    const b = await store.findBill(db, c.req.param('id')!);
    if (!b) throw notFound('Bill');
    return billOut(b);
  });

  route({
    method: 'get', path: '/reports/:name', summary: `A ledger report as JSON rows (${REPORT_NAMES.join(', ')})`, tag: TAG, audience: READ,
    query: Type.Object({
      from: Type.Optional(IsoDate()), to: Type.Optional(IsoDate()),
      client: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[0-9a-zA-Z-]+$', errorMessage: 'must be an id', description: 'One client\'s figures: aged-debtors, debtor-statement, debtor-breakdown, fee-allocation and wip-by-timekeeper; trial-balance and gl-detail are firm-wide and refuse it (422)' })),
      currency: Type.Optional(Type.String({ pattern: '^[A-Z]{3}$', errorMessage: 'must be a currency code (three capital letters)', description: 'The currency reported (default: the firm\'s); one the books hold amounts in. Other currencies are never added in.' })),
    }, { additionalProperties: false }),
    response: ReportOut,
  }, async (c, { query }) => {
    const name = c.req.param('name')!;
    if (!isReportName(name)) throw notFound('Report');
    try {
      const r = await reports.run(name, { ...(query.from ? { from: query.from } : {}), ...(query.to ? { to: query.to } : {}), ...(query.client ? { clientId: query.client } : {}), ...(query.currency ? { currency: query.currency } : {}) });
      const conv = (row: Record<string, string | number | null>) => Object.fromEntries(r.columns.map((col) => {
        const v = row[col.key] ?? null;
        return [col.key, v === null ? null : col.kind === 'money' && typeof v === 'number' ? toDecimalString(v, r.currency) : String(v)];
      }));
      return { name: r.name, title: r.title, subtitle: r.subtitle, currency: r.currency, columns: r.columns, rows: r.rows.map(conv), totals: r.totals ? conv(r.totals) : null, notes: r.notes };
    } catch (e) {
      if (e instanceof ReportParamError) throw invalid(e.fields);
      throw e;
    }
  });

  return app;
}
