import { Hono } from 'hono';
import type { CommandContext } from '../../shared/events.ts';
import type { ModuleDeps, WebModule } from '../../shared/web/module.ts';
import type { AppEnv } from '../../shared/web/types.ts';
import { createBillingApi } from './api.ts';
import { createBillingCommands } from './commands.ts';
import { registerBillingProjections } from './projections.ts';
import { registerBalanceProjection, registerExportsProjection, registerPeriodsProjection } from './balances.ts';
import { createBillingPages } from './routes.ts';
import { createProduction } from './production.ts';
import type { ProduceOptions, ProductionSummary } from './production.ts';
import { createProductionPages } from './production-routes.ts';
import { createFlashes } from '../../shared/web/flash.ts';
import { createMassBilling } from './mass-commands.ts';
import { createMassPages } from './mass-routes.ts';
import { createDraftsPages } from './drafts-routes.ts';
import { createRegisterPages } from './register-routes.ts';
import { createMassApi } from './mass-api.ts';

export { BILLING_HANDLERS, billingSubscriptions, IGNORED_MATTERS_EVENTS } from './projections.ts';
export type {
  ChargeTypeCopy, ClientCopy, ContactCopy, CopyConflict, MatterBillingFilters, MatterCopy, MatterForBilling, TimekeeperCopy, WipCopy, WipKind,
} from './store.ts';
export { createBillingReads } from './reads.ts';
export type { BillingReads } from './reads.ts';
export { createBillingCommands } from './commands.ts';
export type { BillingCommands, BillingDeps, Composition, DraftChange, DraftInput } from './commands.ts';
export type { Bill, RetainerBalance } from './bill-store.ts';
export type { BillAction, BillRequest, Verdict } from './domain/lifecycle.ts';

export { createProduction, LEASE_MS, PRODUCE_CONCURRENCY } from './production.ts';
export { ALREADY_PRODUCED } from './production-store.ts';
export type { Production, ProductionDeps, ProduceOptions, ProductionSummary, RunView } from './production.ts';
export { productionActions } from './domain/production.ts';
export { capChoice, createMassBilling, filterErrors, RUN_HEARTBEAT_STALE_MS, RunDraftingElsewhere, runDraftingElsewhere, RunQueuedElsewhere } from './mass-commands.ts';
export { MAX_PAYMENT_TERMS_DAYS } from './domain/lifecycle.ts';
export type { MassBilling, DraftOutcome, ApproveOutcome, RunInput } from './mass-commands.ts';
export type { ProductionAction } from './domain/production.ts';

type ProduceDeps = Pick<ModuleDeps, 'db' | 'clock' | 'logger' | 'relay' | 'outputs'>;

/**
 * Produce approved bills (PDF stored, printed, emailed, finalised), idempotently: for the
 * CLI's `bill-run --produce` and scripts. Resolves when every bill is done or has failed.
 */
export async function produceBills(deps: ProduceDeps, ctx: CommandContext, billIds: readonly string[], opts: ProduceOptions = {}): Promise<ProductionSummary> {
  const cmds = createBillingCommands({ db: deps.db, clock: deps.clock, relay: deps.relay });
  return createProduction({ db: deps.db, clock: deps.clock, logger: deps.logger, outputs: deps.outputs }, cmds).produceBills(ctx, billIds, opts);
}

/** The billing module's public factory: its pages, API and event subscriptions. */
export function createBillingModule(deps: ModuleDeps): WebModule {
  registerBillingProjections(deps.bus, { clock: deps.clock, logger: deps.logger });
  registerBalanceProjection(deps.bus);
  registerPeriodsProjection(deps.bus);
  registerExportsProjection(deps.bus);
  const cmds = createBillingCommands({ db: deps.db, clock: deps.clock, relay: deps.relay });
  const production = createProduction({ db: deps.db, clock: deps.clock, logger: deps.logger, outputs: deps.outputs }, cmds);
  const pages = new Hono<AppEnv>();
  pages.route('/', createProductionPages(cmds, production, createFlashes<string>(deps.db, deps.clock, 'billing.production')));
  const mass = createMassBilling({ db: deps.db, clock: deps.clock, relay: deps.relay }, cmds);
  pages.route('/mass', createMassPages(deps, mass));
  pages.route('/drafts', createDraftsPages(deps, mass));
  pages.route('/bills', createRegisterPages(deps));
  pages.route('/', createBillingPages(deps, cmds));
  const api = new Hono<AppEnv>();
  api.route('/', createMassApi(deps, mass));
  api.route('/', createBillingApi(deps, cmds, production));
  // A graceful shutdown: bill runs stop before their next chunk, production runs take no more bills and record those begun.
  const stopWork = async (timeoutMs: number) => { await Promise.all([mass.stopRuns(timeoutMs), production.stopRuns(timeoutMs)]); };
  return { name: 'billing', mount: '/billing', pages, api, stopWork };
}
