/**
 * What an action's redirect shows (a message, warnings, notes), kept in the database (web_flash)
 * under a random key for the user who acted and named in the address as `?done=KEY` (a page
 * without JavaScript follows the redirect; the htmx path swaps the fragment with them directly).
 * Text in the address itself would let any link show any words as the firm's message. Kept in
 * the database, not in one process's memory, so that behind one address with several server
 * processes the page after the redirect shows it whichever process serves it (review 60 F8).
 * Short-lived (FLASH_TTL_MS: each new one clears those past their time) and bounded in size
 * (FLASH_MAX_JSON_CHARS); a key of another user, another page (its scope), or past its time
 * shows nothing. Shown again on a reload of that address, as the page it was said on.
 */
import type { Context } from 'hono';
import { assert } from '../assert.ts';
import type { Clock } from '../clock.ts';
import type { Executor } from '../db.ts';
import { newToken } from '../ids.ts';
import type { AppEnv } from './types.ts';

export const FLASH_TTL_MS = 30 * 60_000;
/** A flash is a few sentences; anything near this is a bug (a list of every bill, say), refused loudly. */
export const FLASH_MAX_JSON_CHARS = 32_000;
/** Keys are newToken(12): 16 URL-safe characters. */
const KEY_RE = /^[A-Za-z0-9_-]{16}$/;

export interface Flashes<T> {
  /** Keeps `value` for the acting user and the page it is for (`scope`: a matter's id, say); the key for `?done=`. */
  keep(c: Context<AppEnv>, value: T, scope?: string): Promise<string>;
  /** The value kept under this request's `?done=KEY` for its user and this page's scope, or null. */
  of(c: Context<AppEnv>, scope?: string): Promise<T | null>;
}

/**
 * A message too long to keep (a bulk action listing thousands of bills) is cut, never refused: the action it reports has
 * committed, and a refusal here would answer it with an error (review 63 F2). A list keeps its first items and says how
 * many more there were; a text keeps its start.
 */
function fitted(value: unknown): string {
  const json = JSON.stringify(value);
  if (json.length <= FLASH_MAX_JSON_CHARS) return json;
  if (Array.isArray(value)) {
    let keep = value.length;
    while (keep > 0 && JSON.stringify([...value.slice(0, keep), `… and ${value.length - keep} more`]).length > FLASH_MAX_JSON_CHARS) keep = Math.floor(keep / 2);
    return JSON.stringify([...value.slice(0, keep), `… and ${value.length - keep} more`]);
  }
  if (typeof value === 'string') return JSON.stringify(`${value.slice(0, FLASH_MAX_JSON_CHARS / 2)}…`);
  // An object (a page's own small shape) this long is a bug: kept as nothing rather than answered as an error.
  return JSON.stringify(null);
}

/**
 * `name`: the store's own name (one per kind of message): a key kept by one store is never read by another, whose
 * values have another shape (review 63 F3).
 */
export function createFlashes<T>(db: Executor, clock: Clock, name: string): Flashes<T> {
  assert(/^[a-z][a-z0-9_.-]{0,59}$/.test(name), 'a flash store is named by a short lower-case word');
  const userOf = (c: Context<AppEnv>): string => c.get('user')?.id ?? '';
  return {
    async keep(c, value, pageScope = '') {
      const json = fitted(value);
      assert(pageScope.length <= 200, 'a flash scope is at most 200 characters');
      const scope = `${name}:${pageScope}`;
      const now = clock.now();
      const key = newToken(12);
      // One statement each, no transaction: the action it reports has committed already, and a flash lost to a crash
      // between them loses only the message.
      await db.deleteFrom('web_flash').where('created_at', '<', new Date(now.getTime() - FLASH_TTL_MS).toISOString()).execute();
      await db.insertInto('web_flash').values({ key, user_id: userOf(c), scope, value_json: json, created_at: now.toISOString() }).execute();
      return key;
    },
    async of(c, pageScope = '') {
      const scope = `${name}:${pageScope}`;
      const key = c.req.query('done');
      if (!key || !KEY_RE.test(key)) return null;
      const f = await db.selectFrom('web_flash').select(['user_id', 'scope', 'value_json', 'created_at']).where('key', '=', key).executeTakeFirst() as
        { user_id: string; scope: string; value_json: string; created_at: string } | undefined;
      if (!f || f.user_id !== userOf(c) || f.scope !== scope) return null;
      if (clock.now().getTime() - Date.parse(f.created_at) > FLASH_TTL_MS) return null;
      return JSON.parse(f.value_json) as T;
    },
  };
}
