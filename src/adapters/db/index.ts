import { isAbsolute, resolve } from 'node:path';
import type { Database } from '../../shared/db.ts';
import { openPostgres } from './postgres.ts';
import { openSqlite } from './sqlite.ts';

export { migrateToLatest } from './migrate.ts';

/**
 * A database URL fit to print: the password (everything between the user's colon and the last
 * `@` of the authority, which may itself hold `:` or `@`) as `***`.
 */
export function maskUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/?#]*):[^/?#]*@/i, '$1:***@');
}

/**
 * Open the database a URL names: `sqlite:PATH` (relative to baseDir), `sqlite::memory:`,
 * or `postgres://...` / `postgresql://...`.
 */
export function openDatabase(url: string, baseDir = process.cwd()): Database {
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return openPostgres(url);
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path === ':memory:') return openSqlite(':memory:');
    if (path.length === 0) throw new Error('DATABASE_URL sqlite: needs a file path, e.g. sqlite:./data/lexbill.db');
    return openSqlite(isAbsolute(path) ? path : resolve(baseDir, path));
  }
  throw new Error(`DATABASE_URL must start with sqlite: or postgres:// (got "${maskUrl(url)}")`);
}
