import type { Hono } from 'hono';
import { createApi } from '../../shared/web/api.ts';
import type { ModuleDeps } from '../../shared/web/module.ts';
import type { AppEnv } from '../../shared/web/types.ts';
import type { MattersCommands } from './commands.ts';

/** The matters JSON API, mounted at /api/v1 (routes registered in the OpenAPI document). */
export function createMattersApi(deps: ModuleDeps, _cmds: MattersCommands): Hono<AppEnv> {
  const api = createApi(deps.apiRegistry);
  return api.app;
}
