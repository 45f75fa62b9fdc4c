/**
 * Every migration's `down` undoes its `up`: from the latest schema down to nothing and back up
 * again, on both databases, with the schema after the round trip the same as before.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { sql, FileMigrationProvider, Migrator, NO_MIGRATIONS } from 'kysely';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { MIGRATIONS_DIR } from '../../src/adapters/db/migrate.ts';

async function schema(db: TestDb): Promise<string[]> {
  if (db.dialect === 'sqlite') {
    const rows = (await sql<{ type: string; name: string; sql: string | null }>`select type, name, sql from sqlite_master where name not like 'sqlite\\_%' escape '\\' order by type, name`.execute(db.db)).rows;
    return rows.map((r) => `${r.type} ${r.name}: ${(r.sql ?? '').replace(/\s+/g, ' ')}`);
  }
  const cols = (await sql<{ d: string }>`select table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') as d from information_schema.columns where table_schema = current_schema() order by 1`.execute(db.db)).rows.map((r) => r.d);
  const idx = (await sql<{ d: string }>`select indexdef as d from pg_indexes where schemaname = current_schema() order by 1`.execute(db.db)).rows.map((r) => r.d);
  const cons = (await sql<{ d: string }>`select conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) as d from pg_constraint where connamespace = current_schema()::regnamespace order by 1`.execute(db.db)).rows.map((r) => r.d);
  return [...cols, ...idx, ...cons];
}

eachDialect('every migration can be undone, down to nothing, and applied again to the same schema', async (db) => {
  const migrator = new Migrator({ db: db.db, provider: new FileMigrationProvider({ fs, path, migrationFolder: MIGRATIONS_DIR }), migrationTableName: 'schema_migration', migrationLockTableName: 'schema_migration_lock' });
  const before = await schema(db);
  const down = await migrator.migrateTo(NO_MIGRATIONS);
  assert.equal(down.error, undefined, `down: ${String(down.error)} ${JSON.stringify(down.results?.filter((r) => r.status !== 'Success'))}`);
  const left = (await schema(db)).filter((s) => !/schema_migration/.test(s));
  assert.deepEqual(left, [], 'nothing but the migrator\'s own tables is left');
  const up = await migrator.migrateToLatest();
  assert.equal(up.error, undefined, `up again: ${String(up.error)}`);
  assert.deepEqual(await schema(db), before);
}, { timeout: 120_000 });
