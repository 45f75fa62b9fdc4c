import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { eachDialect } from './support/db.ts';
import { insertMany, insertTuples, runEachRow, selectArrays } from '../src/shared/sql.ts';

// The bulk-write helper the outbox, the audit log and mass billing share: on SQLite one
// prepared single-row statement run per row by the adapter, on Postgres multi-row statements.

async function scratchTable(db: Parameters<Parameters<typeof eachDialect>[1]>[0]) {
  await sql`create table sql_helper_t (id text primary key, n bigint not null, note text)`.execute(db.db);
}

eachDialect('insertMany writes every row in order, nulls for missing values, across statement limits', async (db) => {
  await scratchTable(db);
  // 12,345 rows of 3 columns: more than one SQLite call (5,000 rows) and one Postgres statement (1,000 rows).
  const rows = Array.from({ length: 12_345 }, (_, i) => ({ id: `r${String(i).padStart(6, '0')}`, n: i * 3, note: i % 7 === 0 ? undefined : `note ${i}` }));
  await db.db.transaction().execute((trx) => insertMany(trx, 'sql_helper_t', ['id', 'n', 'note'], rows));
  const got = await selectArrays(db.db, 'select id, n, note from sql_helper_t order by id', []);
  assert.equal(got.length, rows.length);
  for (let i = 0; i < rows.length; i += 997) {
    assert.deepEqual([got[i]![0], Number(got[i]![1]), got[i]![2]], [rows[i]!.id, rows[i]!.n, rows[i]!.note ?? null]);
  }
  const sum = await selectArrays(db.db, 'select sum(n), count(note) from sql_helper_t', []);
  assert.equal(Number(sum[0]![0]), rows.reduce((s, r) => s + r.n, 0));
  assert.equal(Number(sum[0]![1]), rows.filter((r) => r.note !== undefined).length);
});

eachDialect('insertMany meeting a duplicate key fails and the transaction leaves no row', async (db) => {
  await scratchTable(db);
  const rows = Array.from({ length: 6_000 }, (_, i) => ({ id: `r${i}`, n: i, note: null }));
  rows.push({ id: 'r17', n: 0, note: null });
  await assert.rejects(db.db.transaction().execute((trx) => insertMany(trx, 'sql_helper_t', ['id', 'n', 'note'], rows)));
  const [[count]] = await selectArrays(db.db, 'select count(*) from sql_helper_t', []) as [[unknown]];
  assert.equal(Number(count), 0);
});

eachDialect('insertTuples refuses a row of the wrong width before writing anything', async (db) => {
  await scratchTable(db);
  await assert.rejects(db.db.transaction().execute((trx) => insertTuples(trx, 'sql_helper_t', ['id', 'n', 'note'], [['a', 1, null], ['b', 2]])), /a row of 2 values for 3 columns/);
  await db.db.transaction().execute((trx) => insertTuples(trx, 'sql_helper_t', ['id', 'n', 'note'], [['a', 1, undefined], ['b', 2, 'x']]));
  const got = await selectArrays(db.db, 'select id, n, note from sql_helper_t order by id', []);
  assert.deepEqual(got.map((r) => [r[0], Number(r[1]), r[2]]), [['a', 1, null], ['b', 2, 'x']]);
});

eachDialect('runEachRow (SQLite) steps one statement per row and counts the rows it changed; Postgres refuses it', async (db) => {
  await scratchTable(db);
  await db.db.transaction().execute((trx) => insertTuples(trx, 'sql_helper_t', ['id', 'n', 'note'], Array.from({ length: 7_000 }, (_, i) => [`r${i}`, i, null])));
  // A version-locked update: a row changes only where n is still what was read.
  const rows = Array.from({ length: 7_000 }, (_, i) => [`moved ${i}`, `r${i}`, i % 3 === 0 ? -1 : i]);
  const update = 'update sql_helper_t set note = ? where id = ? and n = ?';
  if (db.dialect === 'postgres') {
    await assert.rejects(db.db.transaction().execute((trx) => runEachRow(trx, update, rows)), /SQLite only/);
    return;
  }
  const changed = await db.db.transaction().execute((trx) => runEachRow(trx, update, rows));
  assert.equal(changed, rows.filter((r) => r[2] !== -1).length, 'across more than one call (5,000 rows each)');
  const got = await selectArrays(db.db, 'select id, note from sql_helper_t where id in (?, ?, ?)', ['r0', 'r1', 'r6999']);
  assert.deepEqual(new Map(got.map((r) => [r[0], r[1]])), new Map([['r0', null], ['r1', 'moved 1'], ['r6999', null]]));
});
