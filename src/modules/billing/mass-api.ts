/**
 * Mass billing's JSON API, mounted at /api/v1:
 *   POST /bill-runs        create a run from filters (every eligible matter) or a selection,
 *                          and start it (202; poll GET /bill-runs/{id}); `wait: true` runs
 *                          it to the end first. `id` is an idempotency key.
 *   GET  /bill-runs/{id}   the run: status, counters, each matter's outcome (bill or reason)
 *   POST /bills/approve    approve many drafts at once; each refused with its reason
 * Money is a decimal string in the currency beside it (each bill's, which is its matter's); dates are YYYY-MM-DD.
 */
import type { Context, Hono } from 'hono';
import Type from 'typebox';
import { toDecimalString } from '../../shared/money.ts';
import { createApi } from '../../shared/web/api.ts';
import { HttpError, invalid, notFound } from '../../shared/web/errors.ts';
import type { ModuleDeps } from '../../shared/web/module.ts';
import type { AppEnv, Role } from '../../shared/web/types.ts';
import { MAX_PAYMENT_TERMS_DAYS } from './domain/lifecycle.ts';
import type { MassBilling } from './mass-commands.ts';
import { capChoice, MAX_RUN_MATTERS, runDraftingElsewhere } from './mass-commands.ts';
import * as store from './store.ts';

const READ: readonly Role[] = ['admin', 'billing', 'readonly'];
const WRITE: readonly Role[] = ['admin', 'billing'];
const TAG = 'billing';

const IsoDate = (description?: string) => Type.String({ pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$', errorMessage: 'must be a date (YYYY-MM-DD)', ...(description ? { description } : {}) });
const Id = Type.String({ minLength: 1, maxLength: 64, errorMessage: 'must be an id' });
const Money = (description: string) => Type.String({ pattern: '^[0-9]{1,16}(\\.[0-9]{1,3})?$', errorMessage: 'must be an amount as a decimal string, e.g. "350.00"', description });

const RunBody = Type.Object({
  id: Type.Optional(Type.String({ pattern: '^[0-9a-zA-Z-]{8,64}$', errorMessage: 'must be 8 to 64 letters, digits or dashes', description: 'Idempotency key: the same id is the same run' })),
  invoiceDate: IsoDate('Invoice date; the due date is this plus the payment terms'),
  upTo: IsoDate('Cut-off for fees and disbursements (inclusive)'),
  template: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 100 }), Type.Null()], { description: 'Bill template for the run (default: each matter\'s)' })),
  paymentTermsDays: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: MAX_PAYMENT_TERMS_DAYS }), Type.Null()], { description: 'Payment terms for the run (default: the firm\'s)' })),
  matterIds: Type.Optional(Type.Array(Id, { minItems: 1, maxItems: MAX_RUN_MATTERS, description: 'Bill these matters (hand-picked: an excluded matter may be among them); absent: every eligible matter under the filters' })),
  filters: Type.Optional(Type.Object({
    clientId: Type.Optional(Id), matterId: Type.Optional(Id),
    responsibleTimekeeperId: Type.Optional(Id), billingTimekeeperId: Type.Optional(Id),
    // Given empty, a filter is a mistake, not "no filter" (a run over the whole firm): refused.
    billingCycle: Type.Optional(Type.String({ minLength: 1, maxLength: 20, errorMessage: 'must be a billing cycle' })),
    nextBillingFrom: Type.Optional(IsoDate()), nextBillingTo: Type.Optional(IsoDate()),
    wipCap: Type.Optional(Type.Union([Type.Literal('matter'), Money('At or over this amount of unbilled WIP')], { description: '"matter": at or over the matter\'s own cap; or an amount' })),
    time: Type.Optional(Type.Object({
      from: Type.Optional(IsoDate()), to: Type.Optional(IsoDate()), timekeeperId: Type.Optional(Id),
      cap: Type.Optional(Type.Union([Type.Literal('matter'), Money('Only the time of matters with at least this much unbilled time')], { description: 'Seed 004 "To a cap": "matter": only the time of matters whose unbilled WIP has reached their own cap; or an amount of unbilled time; the other matters\' time waits' })),
    }, { additionalProperties: false })),
    disbursements: Type.Optional(Type.Object({ from: Type.Optional(IsoDate()), to: Type.Optional(IsoDate()), code: Type.Optional(Type.String({ minLength: 1, maxLength: 20, errorMessage: 'must be a disbursement code' })) }, { additionalProperties: false })),
    expensesOnly: Type.Optional(Type.Boolean({ description: 'Only matters set to bill expenses only' })),
  }, { additionalProperties: false })),
  wait: Type.Optional(Type.Boolean({ description: 'Run to the end before answering (default: start it and answer at once)' })),
}, { additionalProperties: false });

const RunSchema = Type.Object({
  id: Type.String(), status: Type.String({ description: 'pending, running, done or failed' }), invoiceDate: Type.String(), upTo: Type.String(),
  template: Type.Union([Type.String(), Type.Null()]), paymentTermsDays: Type.Union([Type.Integer(), Type.Null()]), mode: Type.String(),
  matterCount: Type.Integer(), draftedCount: Type.Integer(), skippedCount: Type.Integer(), itemCount: Type.Integer(),
  error: Type.Union([Type.String(), Type.Null()]), createdAt: Type.String(), finishedAt: Type.Union([Type.String(), Type.Null()]),
  stalled: Type.Boolean({ description: 'Pending, running or failed with no server process drafting it (its server stopped, or it failed): POST /bill-runs again with the same id and body to resume it' }),
  heartbeatAt: Type.Union([Type.String(), Type.Null()], { description: 'When the process drafting it last said so (every few seconds while it drafts)' }),
  matters: Type.Array(Type.Object({
    matterId: Type.String(), fileNumber: Type.Union([Type.String(), Type.Null()]), state: Type.String({ description: 'pending, drafted or skipped' }),
    billId: Type.Union([Type.String(), Type.Null()]), itemCount: Type.Integer(),
    total: Type.Union([Type.String(), Type.Null()], { description: 'The bill\'s total, in `currency`' }),
    currency: Type.Union([Type.String(), Type.Null()], { description: 'The bill\'s currency (its matter\'s), ISO 4217' }), reason: Type.Union([Type.String(), Type.Null()]),
  })),
});

const ApproveBody = Type.Object({
  billIds: Type.Array(Id, { minItems: 1, maxItems: 100_000 }),
  versions: Type.Optional(Type.Array(Type.Object({ billId: Id, version: Type.Integer({ minimum: 1, maximum: 1_000_000_000 }) }, { additionalProperties: false }), {
    maxItems: 100_000, description: 'The version of each draft as you reviewed it (GET /bills/{id}): a draft changed since is refused, not approved (as the drafts page does)',
  })),
}, { additionalProperties: false });
const ApproveSchema = Type.Object({
  approved: Type.Integer(), refused: Type.Integer(),
  results: Type.Array(Type.Object({ billId: Type.String(), ok: Type.Boolean(), number: Type.Optional(Type.String()), reason: Type.Optional(Type.String()) })),
});

/**
 * The run's checks name fields as the mass billing form does; the API names them by the paths
 * of its body (a client sees `filters.disbursements.code`, not the form's `disbCode`).
 */
const BODY_PATHS: Readonly<Record<string, string>> = {
  clientId: 'filters.clientId', matterId: 'filters.matterId', responsibleTimekeeperId: 'filters.responsibleTimekeeperId',
  billingTimekeeperId: 'filters.billingTimekeeperId', billingCycle: 'filters.billingCycle', nextBillingFrom: 'filters.nextBillingFrom',
  nextBillingTo: 'filters.nextBillingTo', cap: 'filters.wipCap', capAmount: 'filters.wipCap', timeFrom: 'filters.time.from', timeTo: 'filters.time.to',
  timeTimekeeperId: 'filters.time.timekeeperId', timeCap: 'filters.time.cap', timeCapAmount: 'filters.time.cap', disbFrom: 'filters.disbursements.from',
  disbTo: 'filters.disbursements.to', disbCode: 'filters.disbursements.code', expensesOnly: 'filters.expensesOnly', matterIds: 'matterIds',
};

/** A refusal naming the body's paths (fields the body has under the same name keep it). */
export function withBodyPaths(e: HttpError): HttpError {
  const names = Object.keys(e.fields);
  if (names.length === 0 || names.every((k) => BODY_PATHS[k] === undefined)) return e;
  const fields: Record<string, string> = {};
  for (const [k, v] of Object.entries(e.fields)) fields[BODY_PATHS[k] ?? k] ??= v;
  return new HttpError(e.status, e.code, e.message, fields);
}

export function createMassApi(deps: ModuleDeps, mass: MassBilling): Hono<AppEnv> {
  const api = createApi(deps.apiRegistry);
  const param = (c: Context<AppEnv>, name: string): string => c.req.param(name) ?? '';

  async function runOut(id: string) {
    const b = await mass.findBatch(id);
    if (!b) throw notFound('Bill run');
    const firmCurrency = (await store.getFirmSettings(deps.db))?.currency ?? 'USD';
    const rows = await mass.batchRows(id, { limit: MAX_RUN_MATTERS });
    return {
      id: b.id, status: b.status, invoiceDate: b.invoiceDate, upTo: b.upTo, template: b.template, paymentTermsDays: b.paymentTermsDays, mode: b.mode,
      matterCount: b.matterCount, draftedCount: b.draftedCount, skippedCount: b.skippedCount, itemCount: b.itemCount, error: b.error,
      createdAt: b.createdAt, finishedAt: b.finishedAt,
      // As the run's page judges it (review 57 F11: a run whose server died read "running" here for ever).
      stalled: (b.status === 'running' || b.status === 'pending' || b.status === 'failed') && !mass.isRunningHere(b.id) && !runDraftingElsewhere(b, deps.clock.now().getTime()),
      heartbeatAt: b.heartbeatAt,
      matters: rows.map((r) => ({
        matterId: r.matterId, fileNumber: r.fileNumber, state: r.state, billId: r.billId, itemCount: r.itemCount,
        // Each bill's total in its own currency (a yen bill's minor units are yen, not cents).
        total: r.totalMinor === null ? null : toDecimalString(r.totalMinor, r.currency ?? firmCurrency), currency: r.totalMinor === null ? null : r.currency ?? firmCurrency, reason: r.reason,
      })),
    };
  }

  api.route({ method: 'post', path: '/bill-runs', summary: 'Create a mass-billing run (one draft batch) from filters or a selection, and start it; the same id again is the same run, resumed when it stalled (its server stopped, or it failed)', tag: TAG, audience: WRITE, body: RunBody, response: RunSchema, status: 202 },
    async (c, { body }) => {
      const f = body.filters ?? {};
      const currency = (await store.getFirmSettings(deps.db))?.currency ?? 'USD';
      const wip = capChoice(f.wipCap, currency);
      const tc = capChoice(f.time?.cap, currency);
      const errors = { ...(wip.error ? { 'filters.wipCap': wip.error } : {}), ...(tc.error ? { 'filters.time.cap': tc.error } : {}) };
      if (Object.keys(errors).length) throw invalid(errors);
      const cap = wip.cap;
      const timeCap = tc.cap;
      const { wipCap: _w, time, ...rest } = f;
      const { cap: _c, ...timeRest } = time ?? {};
      const timeFilter = time ? { time: { ...timeRest, ...(timeCap ? { cap: timeCap } : {}) } } : {};
      const ctx = c.get('command');
      const run = await mass.createRun(ctx, {
        ...(body.id ? { id: body.id } : {}), invoiceDate: body.invoiceDate, upTo: body.upTo, template: body.template ?? null,
        paymentTermsDays: body.paymentTermsDays ?? null, filters: { ...rest, ...timeFilter, ...(cap ? { cap } : {}) }, ...(body.matterIds ? { matterIds: body.matterIds } : {}),
      }).catch((e: unknown) => { throw e instanceof HttpError ? withBodyPaths(e) : e; });
      if (run.status !== 'done') {
        if (body.wait) await mass.runBatch(ctx, run.id);
        else mass.startRun(ctx, run.id, (err) => deps.logger.error({ err, batchId: run.id }, 'bill run failed'));
      }
      return runOut(run.id);
    });

  api.route({ method: 'get', path: '/bill-runs/:id', summary: 'A mass-billing run: status, counters, and each matter\'s bill or the reason it was skipped', tag: TAG, audience: READ, response: RunSchema },
    async (c) => runOut(param(c, 'id')));

  api.route({ method: 'post', path: '/bills/approve', summary: 'Approve many drafts; each one refused (on hold, invalid) says why', tag: TAG, audience: WRITE, body: ApproveBody, response: ApproveSchema },
    async (c, { body }) => {
      const listed = new Set(body.billIds);
      const strays = (body.versions ?? []).flatMap((v, i) => (listed.has(v.billId) ? [] : [[`versions.${i}.billId`, 'is not among billIds'] as const]));
      if (strays.length > 0) throw invalid(Object.fromEntries(strays.slice(0, 20)));
      const expectedVersions = body.versions ? new Map(body.versions.map((v) => [v.billId, v.version])) : undefined;
      const results = await mass.approveMany(c.get('command'), body.billIds, expectedVersions ? { expectedVersions } : {});
      return {
        approved: results.filter((r) => r.ok).length, refused: results.filter((r) => !r.ok).length,
        results: results.map((r) => (r.ok ? { billId: r.billId, ok: true, number: r.number } : { billId: r.billId, ok: false, reason: r.reason })),
      };
    });

  return api.app;
}
