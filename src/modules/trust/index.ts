import { Hono } from 'hono';
import { allow } from '../../shared/web/guard.ts';
import type { ModuleDeps, WebModule } from '../../shared/web/module.ts';
import { render } from '../../shared/web/render.ts';
import type { AppEnv } from '../../shared/web/types.ts';

/** The trust module's public factory: its pages, API and event subscriptions. */
export function createTrustModule(_deps: ModuleDeps): WebModule {
  const pages = new Hono<AppEnv>();
  pages.get('/', allow(['admin', 'billing', 'readonly']), (c) => render(c, 'trust/index.njk'));
  return { name: 'trust', mount: '/trust', pages };
}
