/**
 * Deny by default: every route declares who may use it with `allow(...)`. The shell
 * refuses (403) any matched route that did not declare roles, before its handler runs.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { HttpError } from './errors.ts';
import type { AppEnv, Role } from './types.ts';

export type Audience = readonly Role[] | 'public' | 'authenticated';

const declared = new WeakMap<Function, Audience>();
const COMPOSED = '__COMPOSED_HANDLER';

/** Route guard: `app.get('/x', allow(['admin', 'billing']), handler)`. */
export function allow(audience: Audience): MiddlewareHandler<AppEnv> {
  const mw: MiddlewareHandler<AppEnv> = async (c, next) => {
    if (audience === 'public') return next();
    const user = c.get('user');
    if (!user) throw new HttpError(401, 'unauthenticated', 'Please sign in');
    if (audience !== 'authenticated' && !audience.includes(user.role)) {
      throw new HttpError(403, 'forbidden', `This needs one of the roles: ${audience.join(', ')}`);
    }
    return next();
  };
  declared.set(mw, audience);
  return mw;
}

/** The audience a matched request declared, or null when its route declared none. */
export function declaredAudience(c: Context): Audience | null {
  for (const r of matchedRoutes(c)) {
    let h: Function | undefined = r.handler;
    while (h) {
      const a = declared.get(h);
      if (a) return a;
      h = (h as unknown as Record<string, Function | undefined>)[COMPOSED];
    }
  }
  return null;
}

/**
 * True when a real route (not only `use` middleware) matched the request. Hono records
 * both `use(...)` and `all(...)` as method ALL, so an ALL entry counts as a route when
 * its path has no trailing wildcard or its handler cannot call next (an endpoint).
 */
export function routeMatched(c: Context): boolean {
  return matchedRoutes(c).some((r) => {
    if (r.method !== 'ALL') return true;
    let h: Function = r.handler;
    while ((h as unknown as Record<string, Function | undefined>)[COMPOSED]) h = (h as unknown as Record<string, Function>)[COMPOSED]!;
    return !r.path.endsWith('*') || h.length < 2;
  });
}
