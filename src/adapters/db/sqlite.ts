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

/** Statements kept prepared: only short SQL (the app's ordinary queries, parsed again and again). */
const KEPT_SQL_MAX_CHARS = 4_000;
const KEPT_STATEMENTS = 500;

/**
 * The better-sqlite3 handle as Kysely's driver sees it, with two differences. SQL marked with
 * ARRAY_ROWS_MARK returns its rows as arrays. And short statements stay prepared (the most
 * recently used KEPT_STATEMENTS): Kysely prepares every query afresh, and on the paths that
 * run many small transactions (producing bills, the relay) parsing was the largest single
 * cost. Bulk statements (thousands of placeholders) are not kept: each would hold megabytes.
 * A kept statement is never busy when asked for again: the driver runs one query at a time,
 * and a streamed (iterated) query gets a statement of its own.
 */
function sqliteHandle(raw: BetterSqlite3.Database) {
  const kept = new Map<string, BetterSqlite3.Statement>();
  const prepare = (text: string): BetterSqlite3.Statement => {
    const st = raw.prepare(text);
    if (text.startsWith(ARRAY_ROWS_MARK) && st.reader) st.raw(true);
    return st;
  };
  return {
    close: () => { kept.clear(); raw.close(); },
    prepare(text: string) {
      if (text.length > KEPT_SQL_MAX_CHARS) return prepare(text);
      let st = kept.get(text);
      if (st) kept.delete(text);
      else {
        st = prepare(text);
        if (kept.size >= KEPT_STATEMENTS) kept.delete(kept.keys().next().value!);
      }
      kept.set(text, st);
      const statement = st;
      return { reader: statement.reader, all: (p: unknown[]) => statement.all(p), run: (p: unknown[]) => statement.run(p), iterate: (p: unknown[]) => prepare(text).iterate(p) };
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
