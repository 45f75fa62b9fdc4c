import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import { migrateToLatest, openDatabase } from '../../src/adapters/db/index.ts';
import { SQLITE_PAGE_BYTES } from '../../src/adapters/db/sqlite.ts';

const pragma = async (db: ReturnType<typeof openDatabase>['db'], name: string): Promise<unknown> =>
  Object.values((await sql.raw(`pragma ${name}`).execute(db)).rows[0] as Record<string, unknown>)[0];

test('a new SQLite database gets 16 KiB pages, WAL, full sync and foreign keys; an existing one keeps its page size and still migrates', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-sqlite-'));
  try {
    const fresh = openDatabase(`sqlite:${join(dir, 'new.db')}`);
    await migrateToLatest(fresh.db);
    assert.equal(await pragma(fresh.db, 'page_size'), SQLITE_PAGE_BYTES);
    assert.equal(SQLITE_PAGE_BYTES, 16_384);
    assert.equal(await pragma(fresh.db, 'journal_mode'), 'wal');
    assert.equal(await pragma(fresh.db, 'synchronous'), 2, 'FULL');
    assert.equal(await pragma(fresh.db, 'foreign_keys'), 1);
    // 64 MB of WAL between checkpoints, whatever the page size.
    assert.equal(await pragma(fresh.db, 'wal_autocheckpoint'), 64 * 1024 * 1024 / SQLITE_PAGE_BYTES);
    await fresh.close();

    // A database made before (SQLite's default 4 KiB pages, WAL) is opened as it is.
    const oldFile = join(dir, 'old.db');
    const made = new BetterSqlite3(oldFile);
    made.pragma('journal_mode = WAL');
    made.exec('create table kept (id text primary key)');
    made.close();
    const old = openDatabase(`sqlite:${oldFile}`);
    await migrateToLatest(old.db);
    assert.equal(await pragma(old.db, 'page_size'), 4_096);
    assert.equal(await pragma(old.db, 'wal_autocheckpoint'), 64 * 1024 * 1024 / 4_096);
    const tables = (await sql<{ name: string }>`select name from sqlite_master where type = 'table' and name in ('kept', 'billing_bill')`.execute(old.db)).rows.map((r) => r.name).sort();
    assert.deepEqual(tables, ['billing_bill', 'kept']);
    await old.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
