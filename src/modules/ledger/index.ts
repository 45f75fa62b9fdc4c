import type { ModuleDeps, WebModule } from '../../shared/web/module.ts';
import { createLedgerApi } from './api.ts';
import { createLedgerCommands } from './commands.ts';
import { registerLedgerProjections } from './projections.ts';
import { createLedgerPages } from './routes.ts';

export { LEDGER_HANDLERS, ledgerSubscriptions } from './projections.ts';
export { createLedgerCommands } from './commands.ts';
export type { LedgerCommands, LedgerDeps, ReceiptInput, ReceiptResult } from './commands.ts';
export { createLedgerReports, REPORT_NAMES, REPORT_TAKES_CLIENT, REPORT_TAKES_FROM, ReportParamError, reportToCsv } from './reports.ts';
export type { Report, ReportName, ReportParams } from './reports.ts';

/** The ledger module's public factory: its pages, API and event subscriptions. */
export function createLedgerModule(deps: ModuleDeps): WebModule {
  registerLedgerProjections(deps.bus, { clock: deps.clock, logger: deps.logger });
  const cmds = createLedgerCommands({ db: deps.db, clock: deps.clock, relay: deps.relay });
  return { name: 'ledger', mount: '/ledger', pages: createLedgerPages(deps, cmds), api: createLedgerApi(deps, cmds) };
}
