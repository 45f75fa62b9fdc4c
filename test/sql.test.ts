import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { eachDialect } from './support/db.ts';
import { insertMany, insertTuples, marks, pgArray, runEachRow, selectArrays, selectColumns } from '../src/shared/sql.ts';

// The bulk-write helper the outbox, the audit log and mass billing share: on SQLite one
// prepared single-row statement run per row by the adapter, on Postgres one array per column.

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

// Values a bill line, an audit row or an event can hold, written and read back exactly: on
// Postgres they travel inside array literals (quoting and escaping), on SQLite as bound values.
const AWKWARD = [
  '', ' ', 'NULL', 'null', '"', '\\', '\\"', '""', 'a,b', '{a}', '{}', '(x)', 'tab\there', 'line\nbreak', 'carriage\r\n',
  'trailing space ', ' leading', 'ünïcödé', 'emoji 🧾 bill', 'e\u0301', '{"json": "with \\"quotes\\" and \\\\ slashes"}', "it's", 'x'.repeat(5_000),
];

eachDialect('insertTuples writes awkward text, extreme numbers and nulls back exactly, in order, across statements (short rows and rows with long text)', async (db) => {
  // Postgres sends short rows as arrays and rows holding a text over 1,000 characters as VALUES parameters: both ways here.
  for (const [table, texts] of [['sql_helper_short', AWKWARD.filter((t) => t.length <= 1_000)], ['sql_helper_long', AWKWARD]] as const) {
    if (db.dialect === 'postgres') await sql.raw(`create table ${table} (seq serial primary key, id text not null unique, n bigint, k integer, note text)`).execute(db.db);
    else await sql.raw(`create table ${table} (seq integer primary key autoincrement, id text not null unique, n bigint, k integer, note text)`).execute(db.db);
    const numbers = [0, -1, 1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 123_456_789_012, null];
    // 11,000 rows: more than two Postgres statements either way, and two SQLite calls.
    const rows = Array.from({ length: 11_000 }, (_, i) => [
      `id-${String(10_999 - i).padStart(5, '0')}`, numbers[i % numbers.length], i % 5 === 0 ? undefined : (i % 2 === 0 ? -i : i), texts[i % (texts.length + 1)] ?? null,
    ]);
    await db.db.transaction().execute((trx) => insertTuples(trx, table, ['id', 'n', 'k', 'note'], rows));
    const got = await selectArrays(db.db, `select seq, id, n, k, note from ${table} order by seq`, []);
    assert.equal(got.length, rows.length);
    // Serial numbers follow the order the rows were given (ids run the other way, so a sort by id would show).
    for (let i = 0; i < rows.length; i++) {
      const [, id, n, k, note] = got[i]!;
      const want = rows[i]!;
      assert.deepEqual([id, n === null ? null : Number(n), k === null ? null : Number(k), note], [want[0], want[1], want[2] ?? null, want[3]], `${table} row ${i}`);
    }
    assert.ok(got.every((r, i) => i === 0 || Number(r[0]) > Number(got[i - 1]![0])));
    for (const text of texts) {
      const [[count]] = await selectArrays(db.db, `select count(*) from ${table} where note = ?`, [text]) as [[unknown]];
      assert.equal(Number(count), rows.filter((r) => r[3] === text).length, `${table} ${JSON.stringify(text).slice(0, 40)}`);
    }
  }
});

eachDialect('insertTuples refuses a value that is not text, a number or null, and writes nothing', async (db) => {
  await scratchTable(db);
  await assert.rejects(db.db.transaction().execute((trx) => insertTuples(trx, 'sql_helper_t', ['id', 'n', 'note'], [['a', 1, null], ['b', 2, { not: 'text' }]])),
    // Postgres names the column; better-sqlite3 reads an object as named parameters and refuses the statement.
    db.dialect === 'postgres' ? /insertTuples sql_helper_t\.note: a object value/ : /Too few parameter values/);
  const [[count]] = await selectArrays(db.db, 'select count(*) from sql_helper_t', []) as [[unknown]];
  assert.equal(Number(count), 0);
});

eachDialect('pgArray passes a list as one Postgres array parameter that matches the same values as an IN list', async (db) => {
  await scratchTable(db);
  const ids = [...AWKWARD.map((t, i) => `${i}:${t}`), 'plain', 'x'.repeat(300)];
  await db.db.transaction().execute((trx) => insertTuples(trx, 'sql_helper_t', ['id', 'n', 'note'], ids.map((id, i) => [id, i, null])));
  const probe = [...ids.filter((_, i) => i % 2 === 0), 'missing', '"missing"', 'NULL'];
  const want = ids.filter((_, i) => i % 2 === 0).sort();
  const viaIn = (await selectArrays(db.db, `select id from sql_helper_t where id in (${marks(probe.length)})`, probe)).map((r) => r[0]).sort();
  assert.deepEqual(viaIn, want);
  if (db.dialect === 'postgres') {
    const viaArray = (await selectArrays(db.db, 'select id from sql_helper_t where id = any(?::text[])', [pgArray(probe)])).map((r) => r[0]).sort();
    assert.deepEqual(viaArray, want);
    assert.deepEqual(pgArray(['a"b', null, 7, 'c\\d']), '{"a\\"b",NULL,7,"c\\\\d"}');
  }
});

eachDialect('selectColumns (SQLite: as JSON) reads awkward text, extreme integers and nulls exactly as selectArrays does; no rows is an empty list', async (db) => {
  await scratchTable(db);
  const numbers = [0, -1, 1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 123_456_789_012];
  const rows = AWKWARD.flatMap((t, i) => [[`a${i}`, numbers[i % numbers.length], t], [`b${i}`, -i, null]]);
  await db.db.transaction().execute((trx) => insertTuples(trx, 'sql_helper_t', ['id', 'n', 'note'], rows));
  const viaJson = await selectColumns(db.db, ['id', 'n', 'note', "id || ':' || coalesce(note, '-')"], 'from sql_helper_t where n <= ?', [Number.MAX_SAFE_INTEGER]);
  const viaRows = await selectArrays(db.db, "select id, n, note, id || ':' || coalesce(note, '-') as joined from sql_helper_t", []);
  const byId = (a: unknown[][]) => a.map((r) => [r[0], Number(r[1]), r[2], r[3]]).sort((x, y) => String(x[0]).localeCompare(String(y[0])));
  assert.equal(viaJson.length, rows.length);
  assert.deepEqual(byId(viaJson), byId(viaRows));
  // Integers come back as numbers.
  assert.ok(viaJson.every((r) => typeof r[1] === 'number'));
  assert.deepEqual(await selectColumns(db.db, ['id'], 'from sql_helper_t where n > ?', [Number.MAX_SAFE_INTEGER]), []);
});

eachDialect('selectColumns with groupBy (SQLite: a JSON text per group) reads the same rows as without; no rows is an empty list', async (db) => {
  await scratchTable(db);
  const numbers = [0, -1, 1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 123_456_789_012];
  // Groups of one to 40 rows (note is the group: some null), awkward text in the ids' rows.
  const rows: unknown[][] = [];
  for (let g = 0; g < 30; g++) for (let k = 0; k <= g + (g % 3) * 5; k++) rows.push([`g${g}-${k}-${AWKWARD[(g + k) % AWKWARD.length]}`, numbers[(g * k) % numbers.length]!, g % 7 === 0 ? null : `group ${g}`]);
  await db.db.transaction().execute((trx) => insertTuples(trx, 'sql_helper_t', ['id', 'n', 'note'], rows));
  const exprs = ['note', 'id', 'n'];
  const from = 'from sql_helper_t where n <= ?';
  const grouped = await selectColumns(db.db, exprs, from, [Number.MAX_SAFE_INTEGER], { groupBy: 'note' });
  const whole = await selectColumns(db.db, exprs, from, [Number.MAX_SAFE_INTEGER]);
  const byId = (a: unknown[][]) => a.map((r) => [r[0], r[1], Number(r[2])]).sort((x, y) => String(x[1]).localeCompare(String(y[1])));
  assert.equal(grouped.length, rows.length);
  assert.deepEqual(byId(grouped), byId(whole));
  assert.ok(grouped.every((r) => typeof r[2] === 'number'));
  assert.equal(new Set(grouped.map((r) => r[0])).size, 30 - 5 + 1, 'every group is read, the rows of no note as one');
  assert.deepEqual(await selectColumns(db.db, ['id'], 'from sql_helper_t where n > ?', [Number.MAX_SAFE_INTEGER], { groupBy: 'note' }), []);
  await assert.rejects(selectColumns(db.db, ['id'], 'from sql_helper_t', [], { groupBy: 'note; drop table sql_helper_t' }), /groups by a column/);
  await assert.rejects(selectColumns(db.db, ['id'], 'from sql_helper_t where n > 0 order by id', [], { groupBy: 'note' }), /GROUP BY can follow/);
  await assert.rejects(selectColumns(db.db, ['id'], 'from sql_helper_t limit 5', [], { groupBy: 'note' }), /GROUP BY can follow/);
  await assert.rejects(selectColumns(db.db, ['id'], 'from sql_helper_t where n > 0 -- open (see x)', [], { groupBy: 'note' }), /GROUP BY can follow/);
  // A LIMIT inside a subquery is its own.
  assert.equal((await selectColumns(db.db, ['id'], 'from sql_helper_t where id in (select id from sql_helper_t limit 5)', [], { groupBy: 'note' })).length, 5);
  // On SQLite the clause reaches the statement (a column that does not exist is an error there).
  if (db.dialect === 'sqlite') await assert.rejects(selectColumns(db.db, ['id'], 'from sql_helper_t', [], { groupBy: 'no_such_column' }), /no such column/);
});

eachDialect('selectColumns refuses a grouped query (on SQLite it would aggregate the groups into one row)', async (db) => {
  await scratchTable(db);
  await assert.rejects(selectColumns(db.db, ['n', 'count(*)'], 'from sql_helper_t group by n', []), /reads rows, not groups/);
});

eachDialect('selectArrays returns every selected column in select order, even columns of the same name, inside and outside a transaction', async (db) => {
  await scratchTable(db);
  await db.db.transaction().execute((trx) => insertTuples(trx, 'sql_helper_t', ['id', 'n', 'note'], [['a', 1, 'x'], ['b', 2, null]]));
  // Rows built as objects would keep one value per name: both n's must be there.
  const got = await selectArrays(db.db, 'select t.n, t.id, u.n, t.note from sql_helper_t t join sql_helper_t u on u.id = t.id order by t.id', []);
  assert.deepEqual(got.map((r) => [Number(r[0]), r[1], Number(r[2]), r[3]]), [[1, 'a', 1, 'x'], [2, 'b', 2, null]]);
  const inTx = await db.db.transaction().execute((trx) => selectArrays(trx, 'select id, id from sql_helper_t where n = ?', [2]));
  assert.deepEqual(inTx, [['b', 'b']]);
  // The same connections still give objects to every other query.
  const objects = await db.db.selectFrom('sql_helper_t').select(['id', 'n']).orderBy('id').execute();
  assert.deepEqual(objects.map((o) => ({ id: o.id, n: Number(o.n) })), [{ id: 'a', n: 1 }, { id: 'b', n: 2 }]);
});
