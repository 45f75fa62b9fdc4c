import { Hono } from 'hono';
import { allow } from '../../shared/web/guard.ts';
import type { ModuleDeps, WebModule } from '../../shared/web/module.ts';
import { render } from '../../shared/web/render.ts';
import type { AppEnv } from '../../shared/web/types.ts';

/** The ledger module's public factory: its pages, API and event subscriptions. */
export function createLedgerModule(_deps: ModuleDeps): WebModule {
  const pages = new Hono<AppEnv>();
  pages.get('/', allow(['admin', 'billing', 'readonly']), (c) => render(c, 'ledger/index.njk'));
  return { name: 'ledger', mount: '/ledger', pages };
}
