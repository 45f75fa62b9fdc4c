import { Hono } from 'hono';
import { allow } from '../../shared/web/guard.ts';
import type { ModuleDeps, WebModule } from '../../shared/web/module.ts';
import { render } from '../../shared/web/render.ts';
import type { AppEnv } from '../../shared/web/types.ts';

export { createMattersCommands } from './commands.ts';
export type {
  CreateClientInput, CreateTimekeeperInput, MattersCommands, MattersDeps, MattersTx, OpenMatterInput, RecordDisbursementInput,
  RecordTimeEntryInput, RecordWipInput, SetClientRateInput, SetMatterRateInput, SetTimekeeperRateInput,
} from './commands.ts';
export { seedDemoFirm } from './demo.ts';
export type { DemoFirmOptions, DemoFirmResult } from './demo.ts';

/** The matters module's public factory: its pages, API and event subscriptions. */
export function createMattersModule(_deps: ModuleDeps): WebModule {
  const pages = new Hono<AppEnv>();
  pages.get('/', allow(['admin', 'billing', 'timekeeper', 'readonly']), (c) => render(c, 'matters/index.njk'));
  return { name: 'matters', mount: '/matters', pages };
}
