import { Hono } from 'hono';
import type { Executor } from '../../shared/db.ts';
import { allow } from '../../shared/web/guard.ts';
import type { ModuleDeps, WebModule } from '../../shared/web/module.ts';
import { render } from '../../shared/web/render.ts';
import type { AppEnv } from '../../shared/web/types.ts';
import { registerBillingProjections } from './projections.ts';
import * as store from './store.ts';
import type { MatterBillingFilters } from './store.ts';

export { BILLING_HANDLERS, billingSubscriptions, IGNORED_MATTERS_EVENTS } from './projections.ts';
export type {
  ChargeTypeCopy, ClientCopy, ContactCopy, CopyConflict, MatterBillingFilters, MatterCopy, MatterForBilling, TimekeeperCopy, WipCopy, WipKind,
} from './store.ts';

/** Reads over billing's copy of matters (what the bill composer uses), bound to a database or transaction. */
export function createBillingReads(db: Executor) {
  return {
    getMatterCopy: (matterId: string) => store.getMatterCopy(db, matterId),
    unbilledWip: (matterId: string, upTo?: string) => store.unbilledWip(db, matterId, upTo),
    listMattersForBilling: (filters: MatterBillingFilters = {}) => store.listMattersForBilling(db, filters),
    wipOnBill: (billId: string) => store.wipOnBill(db, billId),
    getFirmSettings: () => store.getFirmSettings(db),
    getClientCopy: (id: string) => store.getClientCopy(db, id),
    getTimekeeperCopy: (id: string) => store.getTimekeeperCopy(db, id),
    listChargeTypes: (opts: { activeOnly?: boolean } = {}) => store.listChargeTypes(db, opts),
    openConflicts: (filters: { matterId?: string } = {}) => store.openConflicts(db, filters),
  };
}

export type BillingReads = ReturnType<typeof createBillingReads>;

/** The billing module's public factory: its pages, API and event subscriptions. */
export function createBillingModule(deps: ModuleDeps): WebModule {
  registerBillingProjections(deps.bus, { clock: deps.clock, logger: deps.logger });
  const pages = new Hono<AppEnv>();
  pages.get('/', allow(['admin', 'billing', 'readonly']), (c) => render(c, 'billing/index.njk'));
  return { name: 'billing', mount: '/billing', pages };
}
