import type { ModuleDeps, WebModule } from '../../shared/web/module.ts';
import { createBillingApi } from './api.ts';
import { createBillingCommands } from './commands.ts';
import { registerBillingProjections } from './projections.ts';
import { createBillingPages } from './routes.ts';

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

/** The billing module's public factory: its pages, API and event subscriptions. */
export function createBillingModule(deps: ModuleDeps): WebModule {
  registerBillingProjections(deps.bus, { clock: deps.clock, logger: deps.logger });
  const cmds = createBillingCommands({ db: deps.db, clock: deps.clock, relay: deps.relay });
  return { name: 'billing', mount: '/billing', pages: createBillingPages(deps, cmds), api: createBillingApi(deps, cmds) };
}
