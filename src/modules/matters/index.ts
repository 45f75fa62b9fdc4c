import type { ModuleDeps, WebModule } from '../../shared/web/module.ts';
import { createMattersApi } from './api.ts';
import { createMattersCommands } from './commands.ts';
import { createMattersPages } from './routes.ts';
import { registerMattersSubscriptions } from './subscriptions.ts';

export { createMattersCommands } from './commands.ts';
export type {
  CreateClientInput, CreateTimekeeperInput, MattersCommands, MattersDeps, MattersTx, OpenMatterInput, RecordDisbursementInput,
  RecordTimeEntryInput, RecordWipInput, SetClientRateInput, SetMatterRateInput, SetTimekeeperRateInput,
} from './commands.ts';
export { seedDemoFirm } from './demo.ts';
export type { DemoFirmOptions, DemoFirmResult } from './demo.ts';

/** The matters module's public factory: its pages, API and event subscriptions. */
export function createMattersModule(deps: ModuleDeps): WebModule {
  const cmds = createMattersCommands({ db: deps.db, clock: deps.clock, relay: deps.relay });
  registerMattersSubscriptions(deps.bus, { clock: deps.clock, logger: deps.logger, commands: cmds });
  return { name: 'matters', mount: '/matters', pages: createMattersPages(deps, cmds), api: createMattersApi(deps, cmds) };
}
