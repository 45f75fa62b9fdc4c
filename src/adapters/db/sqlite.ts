import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, Kysely, SqliteAdapter, SqliteDriver, SqliteIntrospector, SqliteQueryCompiler } from 'kysely';
import type { DatabaseConnection, Dialect as KyselyDialect, Driver } from 'kysely';
import type { Database } from '../../shared/db.ts';
import { ARRAY_ROWS_MARK } from '../../shared/sql.ts';

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

/**
 * The better-sqlite3 handle as Kysely's driver sees it, except that SQL marked with
 * ARRAY_ROWS_MARK returns its rows as arrays. (Keeping bulk statements prepared was tried
 * here: each costs megabytes of resident memory, and the benchmark could not tell the
 * parsing saved from noise.)
 */
function sqliteHandle(raw: BetterSqlite3.Database) {
  return {
    close: () => raw.close(),
    prepare(text: string) {
      const st = raw.prepare(text);
      if (text.startsWith(ARRAY_ROWS_MARK) && st.reader) st.raw(true);
      return st;
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
    createDriver: (): Driver => new ImmediateSqliteDriver({ database: sqliteHandle(raw) }),
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
