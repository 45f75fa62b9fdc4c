import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, Kysely, SqliteAdapter, SqliteDriver, SqliteIntrospector, SqliteQueryCompiler } from 'kysely';
import type { DatabaseConnection, Dialect as KyselyDialect, Driver, TransactionSettings } from 'kysely';
import type { Database } from '../../shared/db.ts';
import { ARRAY_ROWS_MARK, EACH_ROW_MARK } from '../../shared/sql.ts';

/**
 * SQLite through better-sqlite3: WAL, synchronous=FULL (a committed bill survives power
 * loss), foreign keys on, a busy timeout for a second process. Write transactions begin
 * IMMEDIATE so two processes never deadlock upgrading a read lock.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  readonly #raw: BetterSqlite3.Database;
  constructor(raw: BetterSqlite3.Database, database: ConstructorParameters<typeof SqliteDriver>[0]['database']) {
    super({ database });
    this.#raw = raw;
  }
  /**
   * A write transaction begins IMMEDIATE (the write lock taken first: no deadlock upgrading a read). One asked for
   * read only (`setAccessMode('read only')`: a report) begins DEFERRED: one snapshot of the database for all its
   * reads, without the write lock (another process writes meanwhile; this process's writers wait for the connection).
   */
  override async beginTransaction(connection: DatabaseConnection, settings?: TransactionSettings): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(settings?.accessMode === 'read only' ? 'begin deferred' : 'begin immediate'));
  }
  /**
   * SQLite rolls a transaction back by itself on some errors (a full disk, an I/O error): a
   * second rollback then fails ("cannot rollback - no transaction is active") and that error,
   * not the cause, is what the caller saw. Only a transaction still open is rolled back.
   */
  override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    if (!this.#raw.inTransaction) return;
    await super.rollbackTransaction(connection);
  }
}

/**
 * SQLite runs DDL inside transactions, but Kysely's SqliteAdapter says it does not, so its
 * migrator ran each migration statement by statement in autocommit and took no lock: a
 * migration failing part way (or a process stopped in it) left its first tables behind and
 * unrecorded (every later start then failed on "table already exists"), and two processes
 * starting on one new file both applied the same migrations, one failing. Saying yes makes the
 * migrator run the pending migrations in ONE transaction, begun IMMEDIATE (below): all or
 * nothing, and a second process waits for the first's commit, then finds nothing pending.
 * (Inside a transaction `pragma foreign_keys` cannot change: a migration rebuilding a table
 * that others reference uses `pragma defer_foreign_keys = on` instead.)
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean { return true; }
}

/** Statements kept prepared: only short SQL (the app's ordinary queries, parsed again and again). */
const KEPT_SQL_MAX_CHARS = 4_000;
const KEPT_STATEMENTS = 500;
/**
 * Page size of a new database. 16 KiB rather than SQLite's 4 KiB: bill lines, audit rows and
 * events are written by the hundred thousand, and on the mass billing benchmark (10,000
 * matters, 469,666 items; medians of 5 runs each, alternating) drafting took 7.26 s against
 * 7.67 s, delivering its events 8.08 s against 8.47 s and approving 3.95 s against 4.26 s.
 * An existing database keeps its page size (VACUUM outside WAL mode converts it).
 */
export const SQLITE_PAGE_BYTES = 16_384;
/** Bytes of WAL after which a commit checkpoints: 64 MB. */
const WAL_AUTOCHECKPOINT_BYTES = 64 * 1024 * 1024;

/**
 * The better-sqlite3 handle as Kysely's driver sees it, with three differences. SQL marked with
 * ARRAY_ROWS_MARK returns its rows as arrays; SQL marked with EACH_ROW_MARK runs once per
 * row of its parameters (bulk inserts). And short statements stay prepared (the most
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
      let st: BetterSqlite3.Statement;
      if (text.length > KEPT_SQL_MAX_CHARS) st = prepare(text);
      else {
        const found = kept.get(text);
        if (found) kept.delete(text);
        else if (kept.size >= KEPT_STATEMENTS) kept.delete(kept.keys().next().value!);
        st = found ?? prepare(text);
        kept.set(text, st);
      }
      const statement = st;
      if (text.startsWith(EACH_ROW_MARK)) {
        // One run per row (see EACH_ROW_MARK); the changes summed.
        const fail = () => { throw new Error('an each-row statement returns no rows'); };
        return {
          reader: false, all: fail, iterate: fail,
          run: (rows: unknown[]) => {
            let changes = 0;
            let lastInsertRowid: number | bigint = 0;
            for (const row of rows) {
              if (!Array.isArray(row)) throw new Error('each-row statement: every parameter must be a row (an array)');
              // Spread: better-sqlite3 binds separate arguments faster than one array of them
              // (470,000 bill lines of 23 columns: about 10% less time).
              const r = statement.run(...row);
              changes += r.changes;
              lastInsertRowid = r.lastInsertRowid;
            }
            return { changes, lastInsertRowid };
          },
        };
      }
      return { reader: statement.reader, all: (p: unknown[]) => statement.all(p), run: (p: unknown[]) => statement.run(p), iterate: (p: unknown[]) => prepare(text).iterate(p) };
    },
  };
}

export function openSqlite(path: string, opts: { busyTimeoutMs?: number } = {}): Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const raw = new BetterSqlite3(path);
  // Takes effect only while the database is empty (before WAL mode and the first table).
  raw.pragma(`page_size = ${SQLITE_PAGE_BYTES}`);
  raw.pragma('journal_mode = WAL');
  raw.pragma('synchronous = FULL');
  raw.pragma('foreign_keys = ON');
  // Copy the WAL back into the database every 64 MB instead of every 1,000 pages (the default): a
  // bulk transaction (a chunk of a bill run) writes megabytes, and checkpointing after nearly
  // every commit wrote the same hot index pages to the database file again and again.
  raw.pragma(`wal_autocheckpoint = ${Math.ceil(WAL_AUTOCHECKPOINT_BYTES / (raw.pragma('page_size', { simple: true }) as number))}`);
  raw.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 10_000}`);
  const dialect: KyselyDialect = {
    createAdapter: () => new TransactionalDdlSqliteAdapter(),
    createDriver: (): Driver => new ImmediateSqliteDriver(raw, sqliteHandle(raw)),
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
