import type { ModuleDeps, WebModule } from '../../shared/web/module.ts';
import { createEbillingApi } from './api.ts';
import { createEbillingCommands } from './commands.ts';
import { registerEbillingProjections } from './projections.ts';
import { createEbillingPages } from './routes.ts';

export { createEbillingCommands, EXPORT_LIMITS, LedesRefusal } from './commands.ts';
export type { EbillingCommands, EbillingDeps, ExportFile, ExportMode, ExportRequest } from './commands.ts';
export { EBILLING_HANDLERS, ebillingSubscriptions } from './projections.ts';

/** The ebilling module's public factory: its pages, API and event subscriptions. */
export function createEbillingModule(deps: ModuleDeps): WebModule {
  registerEbillingProjections(deps.bus, { clock: deps.clock, logger: deps.logger });
  const cmds = createEbillingCommands({ db: deps.db, clock: deps.clock, relay: deps.relay });
  return { name: 'ebilling', mount: '/ebilling', pages: createEbillingPages(deps, cmds), api: createEbillingApi(deps, cmds) };
}
export { readLedes } from './domain/reader.ts';
export { fileAmountText } from './domain/format.ts';
export type { ReadResult, Violation } from './domain/reader.ts';
export { describeProblem } from './domain/export.ts';
export type { Problem } from './domain/export.ts';
export { utbmsCodes } from './store.ts';
