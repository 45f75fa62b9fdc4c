import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, Kysely, SqliteAdapter, SqliteDriver, SqliteIntrospector, SqliteQueryCompiler } from 'kysely';
import type { DatabaseConnection, Dialect as KyselyDialect, Driver } from 'kysely';
import type { Database } from '../../shared/db.ts';

/**
 * SQLite through better-sqlite3: WAL, synchronous=FULL (a committed bill survives power
 * loss), foreign keys on, a busy timeout for a second process. Write transactions begin
 * IMMEDIATE so two processes never deadlock upgrading a read lock.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

/** SQL starting with this comment returns its rows as arrays of column values, in select order (see sql.ts selectArrays). */
export const ARRAY_ROWS_MARK = '/*arrays*/';
/** Prepared statements kept per connection (most recently used; each is SQL text and SQLite's compiled program). */
const STATEMENT_CACHE_SIZE = 256;

/**
 * The better-sqlite3 handle as Kysely's driver sees it, with a cache of prepared statements:
 * Kysely prepares every query afresh, and parsing a bulk statement (thousands of
 * placeholders) costs more than running it. A streamed query gets its own statement, so a
 * cached one is never busy when the next query wants it.
 */
function cachingDatabase(raw: BetterSqlite3.Database) {
  const cache = new Map<string, BetterSqlite3.Statement>();
  const statement = (text: string): BetterSqlite3.Statement => {
    let st = cache.get(text);
    if (st) {
      cache.delete(text);
    } else {
      st = raw.prepare(text);
      if (text.startsWith(ARRAY_ROWS_MARK) && st.reader) st.raw(true);
      if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
    }
    cache.set(text, st);
    return st;
  };
  return {
    close: () => { cache.clear(); raw.close(); },
    prepare(text: string) {
      const st = statement(text);
      return {
        reader: st.reader,
        all: (params: readonly unknown[]) => st.all(params),
        run: (params: readonly unknown[]) => st.run(params),
        iterate: (params: readonly unknown[]) => raw.prepare(text).iterate(params),
      };
    },
  };
}

export function openSqlite(path: string, opts: { busyTimeoutMs?: number } = {}): Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const raw = new BetterSqlite3(path);
  raw.pragma('journal_mode = WAL');
  raw.pragma('synchronous = FULL');
  raw.pragma('foreign_keys = ON');
  raw.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 10_000}`);
  const dialect: KyselyDialect = {
    createAdapter: () => new SqliteAdapter(),
    createDriver: (): Driver => new ImmediateSqliteDriver({ database: cachingDatabase(raw) }),
    createIntrospector: (db) => new SqliteIntrospector(db),
    createQueryCompiler: () => new SqliteQueryCompiler(),
  };
  const db = new Kysely<any>({ dialect });
  return {
    db,
    dialect: 'sqlite',
    async close() { await db.destroy(); },
  };
}
