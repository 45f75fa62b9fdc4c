import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileMigrationProvider, Migrator, sql, SqliteAdapter } from 'kysely';
import type { Db } from '../../shared/db.ts';

export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../migrations');

/**
 * SQLite: how long a migration waits for another process's write transaction (another
 * process migrating a large database, a long bill run chunk) before giving up, instead of the
 * connection's usual 10 s. Postgres's migration lock waits up to an hour (Kysely).
 */
const SQLITE_MIGRATION_BUSY_MS = 10 * 60 * 1000;

/**
 * Apply every pending migration in `migrations/` (named by date, applied in name order), all in
 * one transaction on both databases (see TransactionalDdlSqliteAdapter) under the migrator's
 * lock: a second process migrating at the same time waits, then finds nothing pending. A
 * database already up to date is only read (no write lock taken on SQLite).
 */
export async function migrateToLatest(db: Db): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider: new FileMigrationProvider({ fs, path, migrationFolder: MIGRATIONS_DIR }),
    migrationTableName: 'schema_migration',
    migrationLockTableName: 'schema_migration_lock',
  });
  if (await upToDate(db, migrator)) return [];
  const sqlite = db.getExecutor().adapter instanceof SqliteAdapter;
  let busyMs: number | undefined;
  if (sqlite) {
    busyMs = Number(Object.values((await sql.raw('pragma busy_timeout').execute(db)).rows[0] as Record<string, unknown>)[0]);
    await sql.raw(`pragma busy_timeout = ${SQLITE_MIGRATION_BUSY_MS}`).execute(db);
  }
  try {
    const { error, results } = await migrator.migrateToLatest();
    const failed = results?.find((r) => r.status === 'Error');
    if (error || failed) {
      const msg = failed ? `migration ${failed.migrationName} failed` : 'migration failed';
      throw new Error(`${msg}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  } finally {
    if (busyMs !== undefined && Number.isSafeInteger(busyMs)) await sql.raw(`pragma busy_timeout = ${busyMs}`).execute(db);
  }
}

/** Every migration applied and none unknown (a newer Lexbill's goes to the migrator, which refuses it). */
async function upToDate(db: Db, migrator: Migrator): Promise<boolean> {
  const migrations = await migrator.getMigrations();
  if (migrations.some((m) => m.executedAt === undefined)) return false;
  const [row] = (await db.selectFrom('schema_migration').select((eb) => eb.fn.countAll().as('n')).execute()) as { n: unknown }[];
  return Number(row?.n) === migrations.length;
}
