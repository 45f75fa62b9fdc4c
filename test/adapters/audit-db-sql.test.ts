/**
 * src/shared/sql.ts's bulk insert builds its SQL text from the table's and columns' names:
 * they are quoted as identifiers (a double quote inside doubled), and what it learns of a
 * Postgres table (its column types) is kept per database, not per name across databases.
 */
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { eachDialect, freshDatabase } from '../support/db.ts';
import { insertMany, insertTuples, selectArrays } from '../../src/shared/sql.ts';

eachDialect('insertTuples and insertMany quote table and column names holding double quotes, spaces and keywords', async (db) => {
  await sql.raw(`create table "odd ""t"" name" ("a""b" text primary key, "select" bigint, "x y" text)`).execute(db.db);
  const long = 'z'.repeat(1_500); // Postgres: rows with long text go as VALUES, the others as arrays
  await db.db.transaction().execute((trx) => insertTuples(trx, 'odd "t" name', ['a"b', 'select', 'x y'], [['r1', 1, 'one'], ['r2', 2, null]]));
  await db.db.transaction().execute((trx) => insertTuples(trx, 'odd "t" name', ['a"b', 'select', 'x y'], [['r3', 3, long]]));
  await db.db.transaction().execute((trx) => insertMany(trx, 'odd "t" name', ['a"b', 'select', 'x y'], [{ 'a"b': 'r4', select: 4 }]));
  const got = await selectArrays(db.db, 'select "a""b", "select", "x y" from "odd ""t"" name" order by "a""b"', []);
  assert.deepEqual(got.map((r) => [r[0], Number(r[1]), r[2]]), [['r1', 1, 'one'], ['r2', 2, null], ['r3', 3, long], ['r4', 4, null]]);
});

eachDialect('insertTuples into a table of the same name in two databases of different column types writes each as its own', async (db) => {
  const other = await freshDatabase(db.dialect);
  try {
    await sql`create table audit_sql_same_name (id text primary key, v integer)`.execute(db.db);
    await sql`create table audit_sql_same_name (id text primary key, v text)`.execute(other.db);
    await db.db.transaction().execute((trx) => insertTuples(trx, 'audit_sql_same_name', ['id', 'v'], [['a', 7]]));
    await other.db.transaction().execute((trx) => insertTuples(trx, 'audit_sql_same_name', ['id', 'v'], [['b', 'not a number']]));
    assert.deepEqual((await selectArrays(db.db, 'select id, v from audit_sql_same_name', [])).map((r) => [r[0], Number(r[1])]), [['a', 7]]);
    assert.deepEqual(await selectArrays(other.db, 'select id, v from audit_sql_same_name', []), [['b', 'not a number']]);
  } finally {
    await other.close();
  }
});
