/**
 * The billing JSON API, mounted at /api/v1: compose a draft bill (or preview one), read it,
 * change it, and carry it through its life (approve, revert, finalise, re-draft, delete);
 * a matter's bills; the recorded retainer balance. Declared with typebox schemas, which
 * validate the input and build /api/openapi.json.
 *
 * Wire format: money is a decimal string in the bill's currency ("350.00"), converted
 * exactly to integer minor units; percentages are decimal strings ("12.5"); dates are
 * YYYY-MM-DD. Bad input is a 422 naming the field (`options.writeTo.timekeepers.<id>`);
 * a refusal (billing off, closed for billing, no billable items, a draft already, items
 * taken, an action not allowed now) is a 409 with the reason. Reads: admin, billing,
 * readonly. Writes: admin, billing.
 */
import type { Context, Hono } from 'hono';
import Type from 'typebox';
import type { Static, TSchema } from 'typebox';
import type { CommandContext } from '../../shared/events.ts';
import { MoneyParseError, parseAmount, toDecimalString } from '../../shared/money.ts';
import { createApi } from '../../shared/web/api.ts';
import { HttpError, conflict, invalid, notFound } from '../../shared/web/errors.ts';
import type { ModuleDeps } from '../../shared/web/module.ts';
import type { AppEnv, Role } from '../../shared/web/types.ts';
import type { Bill } from './bill-store.ts';
import { BILL_CHANGED, CHANGED_SINCE_OPENED } from './commands.ts';
import type { BillingCommands, Composition } from './commands.ts';
import { BILL_ACTIONS, MAX_PAYMENT_TERMS_DAYS } from './domain/lifecycle.ts';
import type { BillAction, BillRequest, Verdict } from './domain/lifecycle.ts';
import type { BillLineData } from './events.ts';
import type { Production } from './production.ts';
import { listRegister, REGISTER_PAGE_ROWS } from './register-store.ts';
import { RegisterQuery, registerFilters, toRegisterFilters } from './register-routes.ts';
import { isoDate } from '../../shared/clock.ts';

const READ: readonly Role[] = ['admin', 'billing', 'readonly'];
const WRITE: readonly Role[] = ['admin', 'billing'];
const TAG = 'billing';

// ---------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------

const literals = <T extends string>(values: readonly T[], description?: string) =>
  Type.Unsafe<T>(Type.Union(values.map((v) => Type.Literal(v)), description ? { description } : {}));
const Nullable = <T extends TSchema>(s: T) => Type.Union([s, Type.Null()]);
const MONEY_MESSAGE = 'must be an amount as a decimal string, e.g. "350.00"';
const Money = (description: string) => Type.String({ pattern: '^[0-9]{1,16}(\\.[0-9]{1,3})?$', errorMessage: MONEY_MESSAGE, description, examples: ['350.00'] });
const SignedMoney = (description: string) => Type.String({ pattern: '^-?[0-9]{1,16}(\\.[0-9]{1,3})?$', errorMessage: MONEY_MESSAGE, description, examples: ['-50.00'] });
const Percent = Type.String({ pattern: '^[0-9]{1,3}(\\.[0-9]{1,2})?$', errorMessage: 'must be a percentage as a decimal string, e.g. "12.5"', description: 'Percent, up to 2 decimals' });
const IsoDate = (description?: string) => Type.String({ pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$', errorMessage: 'must be a date (YYYY-MM-DD)', ...(description ? { description } : {}) });
const Id = Type.String({ minLength: 1, maxLength: 64, errorMessage: 'must be an id' });
const Out = (description?: string) => Type.String(description ? { description } : {});

const OptionsSchema = Type.Object({
  filters: Type.Optional(Type.Object({
    time: Type.Optional(Type.Object({
      from: Type.Optional(IsoDate()), to: Type.Optional(IsoDate()),
      timekeeperIds: Type.Optional(Type.Array(Id, { maxItems: 500, description: 'Only these timekeepers\' time' })),
      none: Type.Optional(Type.Boolean({ description: 'No time on this bill (it waits for a later one)' })),
    }, { additionalProperties: false })),
    disbursements: Type.Optional(Type.Object({
      from: Type.Optional(IsoDate()), to: Type.Optional(IsoDate()),
      codes: Type.Optional(Type.Array(Type.String({ maxLength: 20 }), { maxItems: 200, description: 'Only these disbursement codes' })),
    }, { additionalProperties: false })),
  }, { additionalProperties: false })),
  exclude: Type.Optional(Type.Array(Id, { maxItems: 100_000, description: 'Items toggled out of this bill (deferred)' })),
  writeTo: Type.Optional(Type.Object({
    timekeepers: Type.Optional(Type.Record(Type.String(), Money('What this timekeeper\'s time comes to (written up or down pro rata)'))),
    chargeTypes: Type.Optional(Type.Record(Type.String(), Money('What this charge type\'s fixed charges come to'))),
  }, { additionalProperties: false })),
  fixedFee: Type.Optional(Nullable(Money('Every-cycle fixed fee for this bill (default: the quote)'))),
  applyQuote: Type.Optional(Type.Boolean({ description: 'Apply the matter\'s quote rules (default true)' })),
  discount: Type.Optional(Nullable(Type.Object({
    kind: literals(['none', 'percentage', 'fixed'] as const),
    percent: Type.Optional(Percent),
    amount: Type.Optional(Money('Fixed discount')),
    validUntil: Type.Optional(Nullable(IsoDate('Time-sensitive: valid if paid by this date'))),
  }, { additionalProperties: false, description: 'Overrides the matter\'s discount for this bill; null: the matter\'s' }))),
  interest: Type.Optional(Money('Interest charged on this bill by hand (even 0: the firm\'s interest policy is then not applied)')),
  interestByPolicy: Type.Optional(Nullable(Type.Boolean({ description: 'Charge interest on the matter\'s overdue bills by the firm\'s policy (default: yes when the policy is on and no manual amount is given)' }))),
  adHoc: Type.Optional(Type.Array(Type.Object({
    kind: literals(['fee', 'disbursement'] as const),
    description: Type.String({ minLength: 1, maxLength: 500 }),
    amount: SignedMoney('Amount (a credit may be negative)'),
    taxCode: Type.Optional(Nullable(Type.String({ maxLength: 20 }))),
    timekeeperId: Type.Optional(Nullable(Id)),
  }, { additionalProperties: false }), { maxItems: 200 })),
  applyRetainer: Type.Optional(Nullable(Type.Boolean({ description: 'Apply the general retainer (default: the matter\'s automation)' }))),
  template: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 100, description: 'This bill\'s template, one of the firm\'s (default: the matter\'s)' }))),
  paymentTermsDays: Type.Optional(Nullable(Type.Integer({ minimum: 0, maximum: MAX_PAYMENT_TERMS_DAYS, description: 'This bill\'s payment terms in days (default: the firm\'s)' }))),
}, { additionalProperties: false });
type ApiOptions = Static<typeof OptionsSchema>;

const CreateBody = Type.Object({
  matterId: Id, invoiceDate: IsoDate('The invoice (accounts receivable) date'), upTo: IsoDate('Cut-off: items dated on or before'),
  options: Type.Optional(OptionsSchema),
}, { additionalProperties: false });
const ChangeBody = Type.Object({
  invoiceDate: Type.Optional(IsoDate()), upTo: Type.Optional(IsoDate()), options: Type.Optional(OptionsSchema),
  version: Type.Optional(Type.Integer({ minimum: 1, description: 'Refuse (409) unless the draft is still at this version' })),
}, { additionalProperties: false });
/** The version the caller read (as the bill page's forms send it): a bill changed since is refused (409 bill_changed), not acted on. */
const VersionField = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'The bill\'s version as you read it: refuse (409, code bill_changed) if the bill changed since' });
const VersionQuery = Type.Object({ version: Type.Optional(VersionField) });
const HoldBody = Type.Object({ onHold: Type.Boolean(), version: Type.Optional(VersionField) }, { additionalProperties: false });
const RetainerBody = Type.Object({
  balance: Money('The retainer balance held for the matter (zero or more)'), asOf: IsoDate(), note: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
  version: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000, description: 'The version of the balance you read (0: none recorded): a balance recorded since is refused (409), not overwritten' })),
}, { additionalProperties: false });
const ListQuery = Type.Object({ includeDeleted: Type.Optional(Type.Boolean()) });
const Amount = Type.String({ description: 'A decimal amount in the bill\'s currency' });
const RegisterSchema = Type.Object({
  total: Type.Integer({ description: 'Bills the filters take (all pages)' }), offset: Type.Integer(),
  items: Type.Array(Type.Object({
    id: Type.String(), number: Type.Union([Type.String(), Type.Null()]), status: Type.String({ description: 'draft, approved, finalised, or deleted (void)' }), onHold: Type.Boolean(),
    matterId: Type.String(), fileNumber: Type.String(), matterName: Type.String(), clientId: Type.String(), clientName: Type.String(),
    invoiceDate: Type.String(), dueDate: Type.String(), currency: Type.String(),
    total: Type.String({ description: 'What the bill asks for, as the ledger last reported it once posted (a time-sensitive discount reversed counts back in); a void bill (status deleted) shows what it was issued for, owes nothing and counts in no total' }),
    paid: Type.Union([Amount, Type.Null()], { description: 'Null until the ledger has posted the bill (drafts, void bills)' }),
    writtenOff: Type.Union([Amount, Type.Null()]), outstanding: Type.Union([Amount, Type.Null()]), overdue: Type.Boolean(),
  })),
  totals: Type.Array(Type.Object({ currency: Type.String(), bills: Type.Integer(), total: Amount, paid: Amount, writtenOff: Amount, outstanding: Amount }), { description: 'Approved and finalised bills the filters take, per currency' }),
});

const TotalsSchema = Type.Object({
  fees: Out(), fixedCharges: Out(), disbursements: Out(), discount: Out('Positive: what the discount takes off'), interest: Out(), tax: Out(),
  total: Out(), netFees: Out('Fees less their share of a discount: what the allocation splits'), retainerRequest: Out('Asked to replenish the retainer'),
  retainerApplied: Out('Paid from the general retainer (it applies to the bill)'), leftToPay: Out('The total less what the retainer pays'),
});
const LineSchema = Type.Object({
  lineNo: Type.Integer(), key: Out(), kind: Out(), itemId: Nullable(Out()), itemKind: Nullable(Out()), scheduleRowId: Nullable(Out()), date: Out(),
  timekeeperId: Nullable(Out()), code: Nullable(Out()), chargeTypeId: Nullable(Out()), description: Out(), minutes: Nullable(Type.Integer()),
  rate: Nullable(Out()), recorded: Out(), amount: Out(), noCharge: Type.Boolean(), taxCode: Nullable(Out()), tax: Out(),
  taskCode: Nullable(Out()), activityCode: Nullable(Out()), expenseCode: Nullable(Out()),
});
const AllocationSchema = Type.Object({ timekeeperId: Out(), amount: Out() });
const DiscountSchema = Nullable(Type.Object({ amount: Out(), validUntil: Nullable(Out()), undiscountedTotal: Out() }));
const QuoteSchema = Nullable(Type.Object({ position: Out(), choice: Nullable(Out()), reason: Out() }));
const VerdictSchema = Type.Object({ allowed: Type.Boolean(), reason: Nullable(Out()) });
const composedFields = {
  currency: Out(), invoiceDate: Out(), upTo: Out(), dueDate: Out(), totals: TotalsSchema, retainerRequest: Out(),
  retainerBalance: Nullable(Out()), discount: DiscountSchema, quote: QuoteSchema, lines: Type.Array(LineSchema), allocations: Type.Array(AllocationSchema),
  scheduleRowIds: Type.Array(Out()), hideLinePricing: Type.Boolean(),
};
const BillSchema = Type.Object({
  id: Out(), matterId: Out(), clientId: Out(), fileNumber: Out(), number: Nullable(Out()), sequence: Nullable(Type.Integer()),
  status: literals(['draft', 'approved', 'finalised', 'deleted'] as const), ...composedFields, onHold: Type.Boolean(), batchId: Nullable(Out()),
  version: Type.Integer(), receiptsToReallocate: Out(), createdAt: Out(), createdBy: Out(), approvedAt: Nullable(Out()),
  finalisedAt: Nullable(Out()), redraftedAt: Nullable(Out()), deletedAt: Nullable(Out()),
  options: Type.Unsafe<ApiOptions>({ ...OptionsSchema, description: 'The clerk\'s choices the bill was composed with (what PATCH takes)' }),
  actions: Type.Object(Object.fromEntries(BILL_ACTIONS.map((a) => [a, VerdictSchema])) as Record<BillAction, typeof VerdictSchema>),
});
const PreviewSchema = Type.Object({
  matterId: Out(), ...composedFields,
  interestCharges: Type.Array(Type.Object({
    overdueBillId: Out(), overdueBillNumber: Out(), from: Out(), through: Out(), balance: Out('The overdue balance charged on'), amount: Out('The interest, in the bill\'s currency'),
  }), { description: 'Interest the bill charges on the client\'s overdue bills (the firm\'s policy)' }),
  expiredDiscounts: Type.Array(Type.Object({ billId: Out(), billNumber: Out(), validUntil: Out(), outstanding: Out() }), { description: 'Earlier bills whose time-sensitive discount expired unpaid' }),
});
const RetainerSchema = Type.Object({ matterId: Out(), balance: Out(), currency: Out(), asOf: Out(), note: Nullable(Out()), version: Type.Integer(), updatedAt: Out() });

// ---------------------------------------------------------------------------------------
// Conversions
// ---------------------------------------------------------------------------------------

/** Decimal percent text ("12.5") to basis points (1250). */
function basisPoints(text: string): number {
  const [whole, frac = ''] = text.split('.');
  return Number(whole) * 100 + Number(frac.padEnd(2, '0'));
}

/** The API's options as the clerk's BillRequest, in the matter's currency; 422 naming `options.*` fields. */
export function requestFromApi(o: ApiOptions | undefined, currency: string): BillRequest {
  if (!o) return {};
  const errors: Record<string, string> = {};
  const money = (text: string, field: string): number => {
    try { return parseAmount(text, currency); } catch (e) {
      if (e instanceof MoneyParseError) { errors[field] = e.message.replace(/^"[^"]*" /, ''); return 0; }
      throw e;
    }
  };
  const r: BillRequest = {};
  if (o.filters) r.filters = structuredClone(o.filters);
  if (o.exclude) r.excludedIds = [...o.exclude];
  if (o.writeTo) {
    r.writeTo = {};
    if (o.writeTo.timekeepers) r.writeTo.timekeeper = Object.fromEntries(Object.entries(o.writeTo.timekeepers).map(([k, v]) => [k, money(v, `options.writeTo.timekeepers.${k}`)]));
    if (o.writeTo.chargeTypes) r.writeTo.chargeType = Object.fromEntries(Object.entries(o.writeTo.chargeTypes).map(([k, v]) => [k, money(v, `options.writeTo.chargeTypes.${k}`)]));
  }
  if (o.fixedFee !== undefined) r.fixedFeeAmountMinor = o.fixedFee === null ? null : money(o.fixedFee, 'options.fixedFee');
  if (o.applyQuote !== undefined) r.applyQuote = o.applyQuote;
  if (o.discount !== undefined) {
    const d = o.discount;
    if (d === null) r.discount = null;
    else {
      if (d.kind === 'percentage' && d.percent === undefined) errors['options.discount.percent'] = 'is required for a percentage discount';
      if (d.kind === 'fixed' && d.amount === undefined) errors['options.discount.amount'] = 'is required for a fixed discount';
      r.discount = {
        kind: d.kind, percentBasisPoints: d.percent !== undefined ? basisPoints(d.percent) : 0,
        amountMinor: d.amount !== undefined ? money(d.amount, 'options.discount.amount') : 0, validUntil: d.validUntil ?? null,
      };
    }
  }
  if (o.interest !== undefined) r.interestMinor = money(o.interest, 'options.interest');
  if (o.interestByPolicy !== undefined) r.interestByPolicy = o.interestByPolicy;
  if (o.adHoc) {
    r.adHoc = o.adHoc.map((a, i) => ({
      kind: a.kind, description: a.description.trim(), amountMinor: money(a.amount, `options.adHoc.${i}.amount`), taxCode: a.taxCode ?? null,
      timekeeperId: a.timekeeperId ?? null,
    }));
  }
  if (o.applyRetainer !== undefined) r.applyRetainer = o.applyRetainer;
  if (o.template !== undefined && o.template !== null) r.template = o.template;
  if (o.paymentTermsDays !== undefined && o.paymentTermsDays !== null) r.paymentTermsDays = o.paymentTermsDays;
  if (Object.keys(errors).length > 0) throw invalid(errors);
  return r;
}

function percentText(bp: number): string {
  const frac = bp % 100;
  return `${Math.floor(bp / 100)}${frac ? `.${String(frac).padStart(2, '0').replace(/0$/, '')}` : ''}`;
}

/** The clerk's stored choices in the API's wire format (what PATCH takes back). */
export function requestToApi(r: BillRequest, currency: string): ApiOptions {
  const d = (m: number) => toDecimalString(m, currency);
  const o: ApiOptions = {};
  if (r.filters) o.filters = structuredClone(r.filters);
  if (r.excludedIds?.length) o.exclude = [...r.excludedIds];
  const tk = Object.entries(r.writeTo?.timekeeper ?? {});
  const ct = Object.entries(r.writeTo?.chargeType ?? {});
  if (tk.length || ct.length) {
    o.writeTo = {};
    if (tk.length) o.writeTo.timekeepers = Object.fromEntries(tk.map(([k, v]) => [k, d(v)]));
    if (ct.length) o.writeTo.chargeTypes = Object.fromEntries(ct.map(([k, v]) => [k, d(v)]));
  }
  if (r.fixedFeeAmountMinor !== undefined) o.fixedFee = r.fixedFeeAmountMinor === null ? null : d(r.fixedFeeAmountMinor);
  if (r.applyQuote !== undefined) o.applyQuote = r.applyQuote;
  if (r.discount !== undefined) {
    o.discount = r.discount === null ? null : {
      kind: r.discount.kind,
      ...(r.discount.kind === 'percentage' ? { percent: percentText(r.discount.percentBasisPoints) } : {}),
      ...(r.discount.kind === 'fixed' ? { amount: d(r.discount.amountMinor) } : {}),
      ...(r.discount.validUntil ? { validUntil: r.discount.validUntil } : {}),
    };
  }
  if (r.interestMinor !== undefined) o.interest = d(r.interestMinor);
  if (r.interestByPolicy !== undefined && r.interestByPolicy !== null) o.interestByPolicy = r.interestByPolicy;
  if (r.adHoc?.length) {
    o.adHoc = r.adHoc.map((a) => ({
      kind: a.kind, description: a.description, amount: d(a.amountMinor), ...(a.taxCode !== null ? { taxCode: a.taxCode } : {}),
      ...(a.timekeeperId ? { timekeeperId: a.timekeeperId } : {}),
    }));
  }
  if (r.applyRetainer !== undefined && r.applyRetainer !== null) o.applyRetainer = r.applyRetainer;
  if (r.template) o.template = r.template;
  if (r.paymentTermsDays !== undefined && r.paymentTermsDays !== null) o.paymentTermsDays = r.paymentTermsDays;
  return o;
}

/** The commands' field names (BillRequest) as the API's (`options.*`). */
const FIELD_MAP: [RegExp, string][] = [
  [/^writeTo\.timekeeper\./, 'options.writeTo.timekeepers.'], [/^writeTo\.chargeType\./, 'options.writeTo.chargeTypes.'],
  [/^fixedFeeAmount$/, 'options.fixedFee'], [/^(filters|discount|adHoc|interest|options|template|paymentTermsDays)\b/, 'options.$1'],
];
export function apiFields(err: unknown): unknown {
  if (!(err instanceof HttpError) || err.status !== 422) return err;
  const fields: Record<string, string> = {};
  for (const [k, v] of Object.entries(err.fields)) {
    let name = k;
    for (const [re, to] of FIELD_MAP) if (re.test(name)) { name = name.replace(re, to).replace(/^options\.options$/, 'options'); break; }
    fields[name] = v;
  }
  return new HttpError(422, err.code, err.message, fields);
}

const dec = (minor: number, currency: string): string => toDecimalString(minor, currency);

function lineOut(l: BillLineData, currency: string) {
  return {
    lineNo: l.lineNo, key: l.key, kind: l.kind, itemId: l.itemId, itemKind: l.itemKind, scheduleRowId: l.scheduleRowId, date: l.date,
    timekeeperId: l.timekeeperId, code: l.code, chargeTypeId: l.chargeTypeId, description: l.description, minutes: l.minutes,
    rate: l.rateMinor === null ? null : dec(l.rateMinor, currency), recorded: dec(l.recordedMinor, currency), amount: dec(l.amountMinor, currency),
    noCharge: l.noCharge, taxCode: l.taxCode, tax: dec(l.taxMinor, currency), taskCode: l.taskCode, activityCode: l.activityCode, expenseCode: l.expenseCode,
  };
}

function composedOut(x: {
  currency: string; invoiceDate: string; upTo: string; dueDate: string; lines: BillLineData[]; allocations: { timekeeperId: string; amountMinor: number }[];
  totals: { feesMinor: number; fixedChargesMinor: number; disbursementsMinor: number; discountMinor: number; interestMinor: number; taxMinor: number; totalMinor: number; netFeesMinor: number };
  retainerRequestMinor: number; retainerAppliedMinor: number; retainerBalanceMinor: number | null; discount: { amountMinor: number; validUntil: string | null; undiscountedTotalMinor: number } | null;
  quote: { position: string; choice: string | null; reason: string } | null; scheduleRowIds: string[]; hideLinePricing: boolean;
}) {
  const c = x.currency;
  const t = x.totals;
  return {
    currency: c, invoiceDate: x.invoiceDate, upTo: x.upTo, dueDate: x.dueDate,
    totals: {
      fees: dec(t.feesMinor, c), fixedCharges: dec(t.fixedChargesMinor, c), disbursements: dec(t.disbursementsMinor, c), discount: dec(t.discountMinor, c),
      interest: dec(t.interestMinor, c), tax: dec(t.taxMinor, c), total: dec(t.totalMinor, c), netFees: dec(t.netFeesMinor, c),
      retainerRequest: dec(x.retainerRequestMinor, c), retainerApplied: dec(x.retainerAppliedMinor, c), leftToPay: dec(t.totalMinor - x.retainerAppliedMinor, c),
    },
    retainerRequest: dec(x.retainerRequestMinor, c), retainerBalance: x.retainerBalanceMinor === null ? null : dec(x.retainerBalanceMinor, c),
    discount: x.discount ? { amount: dec(x.discount.amountMinor, c), validUntil: x.discount.validUntil, undiscountedTotal: dec(x.discount.undiscountedTotalMinor, c) } : null,
    quote: x.quote ? { position: x.quote.position, choice: x.quote.choice, reason: x.quote.reason } : null,
    lines: x.lines.map((l) => lineOut(l, c)), allocations: x.allocations.map((a) => ({ timekeeperId: a.timekeeperId, amount: dec(a.amountMinor, c) })),
    scheduleRowIds: [...x.scheduleRowIds], hideLinePricing: x.hideLinePricing,
  };
}

export function billOut(b: Bill, actions: Record<BillAction, Verdict>) {
  return {
    id: b.billId, matterId: b.matterId, clientId: b.clientId, fileNumber: b.fileNumber, number: b.number, sequence: b.sequence, status: b.status,
    ...composedOut(b), onHold: b.onHold, batchId: b.batchId, version: b.version, receiptsToReallocate: dec(b.receiptsToReallocateMinor, b.currency),
    createdAt: b.createdAt, createdBy: b.createdBy, approvedAt: b.approvedAt, finalisedAt: b.finalisedAt, redraftedAt: b.redraftedAt, deletedAt: b.deletedAt,
    options: requestToApi(b.request, b.currency), actions,
  };
}

function previewOut(matterId: string, currency: string, invoiceDate: string, upTo: string, p: Composition) {
  return {
    matterId,
    ...composedOut({
      currency, invoiceDate, upTo, dueDate: p.dueDate, lines: p.lines, allocations: p.composed.feeAllocation,
      totals: { ...p.composed.totals, netFeesMinor: p.composed.netFeesMinor }, retainerRequestMinor: p.composed.retainerRequestMinor, retainerAppliedMinor: p.composed.retainerAppliedMinor,
      retainerBalanceMinor: p.retainerBalanceMinor, discount: p.composed.discount, quote: p.composed.quote, scheduleRowIds: p.composed.scheduleRowIds,
      hideLinePricing: p.composed.hideLinePricing,
    }),
    interestCharges: p.interestCharges.map((ic) => ({
      overdueBillId: ic.overdueBillId, overdueBillNumber: ic.overdueBillNumber, from: ic.fromDate, through: ic.throughDate,
      balance: dec(ic.balanceMinor, currency), amount: dec(ic.amountMinor, currency),
    })),
    expiredDiscounts: p.expiredDiscounts.map((e) => ({ billId: e.billId, billNumber: e.billNumber, validUntil: e.validUntil, outstanding: dec(e.outstandingMinor, currency) })),
  };
}

// ---------------------------------------------------------------------------------------
// The API
// ---------------------------------------------------------------------------------------

export function createBillingApi(deps: ModuleDeps, cmds: BillingCommands, production: Pick<Production, 'produceBills'>): Hono<AppEnv> {
  const api = createApi(deps.apiRegistry);
  const ctxOf = (c: Context<AppEnv>): CommandContext => c.get('command');
  const param = (c: Context<AppEnv>, name: string): string => c.req.param(name) ?? '';

  async function out(b: Bill) {
    return billOut(b, await cmds.actionsFor(b));
  }
  async function billOr404(id: string): Promise<Bill> {
    const b = await cmds.findBill(id);
    if (!b) throw notFound('Bill');
    return b;
  }
  async function currencyOf(matterId: string): Promise<string> {
    const s = await cmds.matterState(matterId);
    if (!s) throw notFound('Matter');
    return s.matter.currency;
  }
  /** Run a command; its field errors come back under the API's names. */
  async function run<T>(fn: () => Promise<T>): Promise<T> {
    try { return await fn(); } catch (err) { throw apiFields(err); }
  }

  api.route({ method: 'post', path: '/bills', summary: 'Compose a draft bill for a matter (409 with the reason when it cannot be billed)', tag: TAG, audience: WRITE, body: CreateBody, response: BillSchema, status: 201 },
    async (c, { body }) => {
      const request = requestFromApi(body.options, await currencyOf(body.matterId));
      return out(await run(() => cmds.createDraft(ctxOf(c), { matterId: body.matterId, invoiceDate: body.invoiceDate, upTo: body.upTo, request })));
    });

  api.route({ method: 'post', path: '/bills/preview', summary: 'Compose a bill without saving it: lines and totals', tag: TAG, audience: WRITE, body: CreateBody, response: PreviewSchema },
    async (_c, { body }) => {
      const currency = await currencyOf(body.matterId);
      const request = requestFromApi(body.options, currency);
      // A matter with a draft: said as POST /bills says it, not an empty bill (the draft holds the items; review 57 F12).
      const draft = (await cmds.matterState(body.matterId))?.draft ?? null;
      if (draft) throw conflict(`The matter already has a draft bill${draft.number ? ` (${draft.number})` : ''}: change or delete it (GET /bills/${draft.id})`);
      const p = await run(() => cmds.preview({ matterId: body.matterId, invoiceDate: body.invoiceDate, upTo: body.upTo, request }));
      return previewOut(body.matterId, currency, body.invoiceDate, body.upTo, p);
    });

  api.route({ method: 'get', path: '/bills/:id', summary: 'One bill with its lines, totals, fee allocation and the actions allowed now', tag: TAG, audience: READ, response: BillSchema },
    async (c) => out(await billOr404(param(c, 'id'))));

  api.route({ method: 'patch', path: '/bills/:id', summary: 'Change a draft: new dates or choices, recomposed (items toggled out are released). `options`, when sent, replaces the draft\'s choices whole (a choice left out is dropped: send back every choice to keep, as GET /bills/{id} gives them); left out, the choices stay as they are', tag: TAG, audience: WRITE, body: ChangeBody, response: BillSchema },
    async (c, { body }) => {
      const b = await billOr404(param(c, 'id'));
      const change = {
        ...(body.invoiceDate !== undefined ? { invoiceDate: body.invoiceDate } : {}), ...(body.upTo !== undefined ? { upTo: body.upTo } : {}),
        ...(body.options !== undefined ? { request: requestFromApi(body.options, b.currency) } : {}),
        ...(body.version !== undefined ? { expectedVersion: body.version } : {}),
      };
      return out(await run(() => cmds.updateDraft(ctxOf(c), b.billId, change)));
    });

  const transitions: [string, 'approve' | 'revert' | 'redraft', string][] = [
    ['approve', 'approve', 'Approve a draft: numbered file.sequence and posted'],
    ['revert', 'revert', 'Revert an approved bill to draft (its postings undone; it keeps its number)'],
    ['redraft', 'redraft', 'Re-draft a finalised bill (its postings reversed)'],
  ];
  for (const [path, action, summary] of transitions) {
    api.route({ method: 'post', path: `/bills/:id/${path}`, summary, tag: TAG, audience: WRITE, query: VersionQuery, response: BillSchema },
      async (c, { query }) => out(await run(() => cmds[action](ctxOf(c), param(c, 'id'), query.version))));
  }
  // Finalising is producing (as on the pages): the PDF stored, the matter's copies printed, the
  // email sent, then the bill finalised; never a bare status change that leaves a bill unsent.
  api.route({ method: 'post', path: '/bills/:id/finalise', summary: 'Produce an approved bill (PDF stored, printed, emailed) and finalise it; idempotent', tag: TAG, audience: WRITE, query: VersionQuery, response: BillSchema },
    async (c, { query }) => {
      const b = await billOr404(param(c, 'id'));
      if (query.version !== undefined && query.version !== b.version) {
        throw new HttpError(409, BILL_CHANGED, `${CHANGED_SINCE_OPENED} (it is now ${b.status === 'draft' ? 'a draft' : b.status}${b.number ? `, ${b.number}` : ''}): look at it again before acting`);
      }
      if (b.status !== 'approved' && b.status !== 'finalised') throw conflict(`Only an approved bill can be finalised; this bill is ${b.status}`);
      const summary = await production.produceBills(ctxOf(c), [b.billId]);
      const item = summary.items.find((i) => i.billId === b.billId);
      if (!item || item.outcome !== 'done') throw conflict(`The bill was not produced: ${item?.error ?? 'another process is producing it'}`);
      return out(await billOr404(b.billId));
    });

  api.route({ method: 'post', path: '/bills/:id/hold', summary: 'Put a draft on hold (it cannot be approved) or release it', tag: TAG, audience: WRITE, body: HoldBody, response: BillSchema },
    async (c, { body }) => out(await run(() => cmds.setOnHold(ctxOf(c), param(c, 'id'), body.onHold, body.version))));

  api.route({ method: 'delete', path: '/bills/:id', summary: 'Delete a draft (items unbilled again), or the matter\'s most recent unreceipted approved/finalised bill (its number stays, void)', tag: TAG, audience: WRITE, query: VersionQuery, response: BillSchema },
    async (c, { query }) => out(await run(() => cmds.deleteBill(ctxOf(c), param(c, 'id'), query.version))));

  api.route({ method: 'get', path: '/bills', summary: `The firm's bills register: every bill across matters with its ledger balance, filtered (q: number, file, matter or client; status; balance; invoice dates from/to), sorted, ${REGISTER_PAGE_ROWS} a page (offset), with totals per currency of the approved and finalised bills the filters take`, tag: TAG, audience: READ, query: RegisterQuery, response: RegisterSchema },
    async (c) => {
      const { f, errors } = registerFilters(c.req.query());
      if (Object.keys(errors).length > 0) throw invalid(errors);
      const today = isoDate(deps.clock.now());
      const r = await listRegister(deps.db, toRegisterFilters(f), today);
      const money = (m: number, currency: string) => toDecimalString(m, currency);
      return {
        total: r.total, offset: f.offset ?? 0,
        items: r.rows.map((b) => ({
          id: b.billId, number: b.number, status: b.status, onHold: b.onHold, matterId: b.matterId, fileNumber: b.fileNumber, matterName: b.matterName,
          clientId: b.clientId, clientName: b.clientName, invoiceDate: b.invoiceDate, dueDate: b.dueDate, currency: b.currency, total: money(b.totalMinor, b.currency),
          paid: b.balance ? money(b.balance.paidMinor, b.currency) : null, writtenOff: b.balance ? money(b.balance.writtenOffMinor, b.currency) : null,
          outstanding: b.balance ? money(b.balance.outstandingMinor, b.currency) : null, overdue: b.overdue,
        })),
        totals: r.totals.map((t) => ({ currency: t.currency, bills: t.bills, total: money(t.totalMinor, t.currency), paid: money(t.paidMinor, t.currency), writtenOff: money(t.writtenOffMinor, t.currency), outstanding: money(t.outstandingMinor, t.currency) })),
      };
    });

  api.route({ method: 'get', path: '/matters/:id/bills', summary: 'A matter\'s bills, newest first', tag: TAG, audience: READ, query: ListQuery, response: Type.Object({ items: Type.Array(BillSchema) }) },
    async (c, { query }) => {
      const id = param(c, 'id');
      await currencyOf(id);
      const list = await cmds.listBills(id, { includeDeleted: query.includeDeleted ?? false });
      const items = [];
      for (const b of list) items.push(await out(b));
      return { items };
    });

  api.route({ method: 'get', path: '/matters/:id/retainer-balance', summary: 'The recorded retainer balance the composer uses (until trust owns retainers)', tag: TAG, audience: READ, response: RetainerSchema },
    async (c) => {
      const r = await cmds.findRetainerBalance(param(c, 'id'));
      if (!r) throw notFound('Retainer balance');
      return { matterId: r.matterId, balance: dec(r.balanceMinor, r.currency), currency: r.currency, asOf: r.asOf, note: r.note, version: r.version, updatedAt: r.updatedAt };
    });

  api.route({ method: 'put', path: '/matters/:id/retainer-balance', summary: 'Record the matter\'s retainer balance', tag: TAG, audience: WRITE, body: RetainerBody, response: RetainerSchema },
    async (c, { body }) => {
      const currency = await currencyOf(param(c, 'id'));
      let balanceMinor: number;
      try { balanceMinor = parseAmount(body.balance, currency); } catch (e) {
        if (e instanceof MoneyParseError) throw invalid({ balance: e.message.replace(/^"[^"]*" /, '') });
        throw e;
      }
      const r = await cmds.setRetainerBalance(ctxOf(c), param(c, 'id'), { balanceMinor, asOf: body.asOf, note: body.note ?? null, ...(body.version !== undefined ? { expectedVersion: body.version } : {}) });
      return { matterId: r.matterId, balance: dec(r.balanceMinor, r.currency), currency: r.currency, asOf: r.asOf, note: r.note, version: r.version, updatedAt: r.updatedAt };
    });

  return api.app;
}
