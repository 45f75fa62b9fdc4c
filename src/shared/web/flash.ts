/**
 * What an action's redirect shows (a message, warnings), kept in this process under a random
 * key for the user who acted and named in the address as `?done=KEY` (a page without
 * JavaScript follows the redirect; the htmx path swaps the fragment with them directly).
 * Text in the address itself would let any link show any words as the firm's message.
 * Bounded (FLASHES_KEPT, the oldest dropped first) and short-lived (FLASH_TTL_MS); a key of
 * another user, another page (its scope), another process, or past its time shows nothing.
 */
import type { Context } from 'hono';
import { newToken } from '../ids.ts';
import type { AppEnv } from './types.ts';

export const FLASHES_KEPT = 500;
export const FLASH_TTL_MS = 30 * 60_000;

export interface Flashes<T> {
  /** Keeps `value` for the acting user and the page it is for (`scope`: a matter's id, say); the key for `?done=`. */
  keep(c: Context<AppEnv>, value: T, scope?: string): string;
  /** The value kept under this request's `?done=KEY` for its user and this page's scope, or null. */
  of(c: Context<AppEnv>, scope?: string): T | null;
}

export function createFlashes<T>(): Flashes<T> {
  const kept = new Map<string, { userId: string; scope: string; atMs: number; value: T }>();
  return {
    keep(c, value, scope = '') {
      const nowMs = Date.now();
      // Oldest first (insertion order): drop the expired, and the oldest while full.
      for (const [k, v] of kept) if (kept.size >= FLASHES_KEPT || nowMs - v.atMs > FLASH_TTL_MS) kept.delete(k); else break;
      const key = newToken(12);
      kept.set(key, { userId: c.get('user')?.id ?? '', scope, atMs: nowMs, value });
      return key;
    },
    of(c, scope = '') {
      const key = c.req.query('done');
      const f = key ? kept.get(key) : undefined;
      return f && f.userId === (c.get('user')?.id ?? '') && f.scope === scope && Date.now() - f.atMs <= FLASH_TTL_MS ? f.value : null;
    },
  };
}
