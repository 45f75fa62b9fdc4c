import { Hono } from 'hono';
import { allow } from '../../shared/web/guard.ts';
import type { ModuleDeps } from '../../shared/web/module.ts';
import { render } from '../../shared/web/render.ts';
import type { AppEnv } from '../../shared/web/types.ts';
import type { MattersCommands } from './commands.ts';

/** The matters pages, mounted at /matters. */
export function createMattersPages(_deps: ModuleDeps, _cmds: MattersCommands): Hono<AppEnv> {
  const pages = new Hono<AppEnv>();
  pages.get('/', allow(['admin', 'billing', 'timekeeper', 'readonly']), (c) => render(c, 'matters/index.njk'));
  return pages;
}
