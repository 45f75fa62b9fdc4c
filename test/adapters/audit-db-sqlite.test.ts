/**
 * SQLite running out of room mid-transaction: SQLite rolls the transaction back by itself on
 * some errors (a full disk among them). The caller must see THAT error ("database or disk is
 * full"), not the driver's failed rollback ("cannot rollback - no transaction is active"), and
 * the database must be usable again once there is room.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sql } from 'kysely';
import { openDatabase } from '../../src/adapters/db/index.ts';

const pragmaValue = async (db: ReturnType<typeof openDatabase>['db'], text: string): Promise<number> =>
  Number(Object.values((await sql.raw(text).execute(db)).rows[0] as Record<string, unknown>)[0]);

test('SQLite: a full disk in a transaction fails with SQLITE_FULL (not a failed rollback), writes nothing, and the database works again when there is room', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-audit-sqlite-'));
  const d = openDatabase(`sqlite:${join(dir, 'firm.db')}`);
  try {
    await sql`create table big (t text not null)`.execute(d.db);
    await sql`insert into big values ('kept')`.execute(d.db);
    // A disk with room for a few more pages only.
    const pages = await pragmaValue(d.db, 'pragma page_count');
    await pragmaValue(d.db, `pragma max_page_count = ${pages + 3}`);
    await assert.rejects(d.db.transaction().execute(async (trx) => {
      for (let i = 0; i < 100; i++) await sql`insert into big values (${'x'.repeat(50_000)})`.execute(trx);
    }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'SQLITE_FULL', `${e.code}: ${e.message}`);
      assert.match(e.message, /disk is full/);
      return true;
    });
    assert.deepEqual((await sql<{ t: string }>`select t from big`.execute(d.db)).rows, [{ t: 'kept' }], 'nothing of the failed transaction was kept');
    await pragmaValue(d.db, 'pragma max_page_count = 1073741823');
    await d.db.transaction().execute(async (trx) => { await sql`insert into big values ('after')`.execute(trx); });
    assert.equal((await sql<{ n: number }>`select count(*) as n from big`.execute(d.db)).rows[0]!.n, 2);
  } finally {
    await d.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
