import { Hono } from 'hono';
import { allow } from '../../shared/web/guard.ts';
import type { ModuleDeps, WebModule } from '../../shared/web/module.ts';
import { render } from '../../shared/web/render.ts';
import type { AppEnv } from '../../shared/web/types.ts';

/** The ebilling module's public factory: its pages, API and event subscriptions. */
export function createEbillingModule(_deps: ModuleDeps): WebModule {
  const pages = new Hono<AppEnv>();
  pages.get('/', allow(['admin', 'billing', 'readonly']), (c) => render(c, 'ebilling/index.njk'));
  return { name: 'ebilling', mount: '/ebilling', pages };
}
