import type { Kysely } from 'kysely';
import { sql, SqliteAdapter } from 'kysely';

// The same CHECK constraints on billing_bill_line, written so that SQLite checks them
// cheaply. SQLite evaluates `kind in ('time', …)` by building a small lookup table each
// time the statement runs, and a bill's lines are inserted one row per run of a kept
// statement: the nine-value list on `kind` and the three smaller ones cost more than
// writing the row itself (470,492 lines: 3.2 s with the lists, 2.0 s with each written
// as `kind = 'time' or kind = …`, 1.9 s with no checks at all). The rule for each column
// is unchanged; Postgres, which compares against the list directly, keeps its form.
//
// SQLite cannot alter a table's checks, so the table is rebuilt (the documented way: a new
// table, the rows copied, the old one dropped, the new one renamed, its index made again).
// Nothing refers to billing_bill_line, so dropping it leaves no foreign key dangling.

const LIST_CHECK = /\b([a-z_]+) in \(((?:\s*'[a-z_]+'\s*,?)+|(?:\s*-?\d+\s*,?)+)\)/g;

/** `x in ('a','b')` as `(x = 'a' or x = 'b')`; literal lists only. */
function orForm(ddl: string): string {
  return ddl.replace(LIST_CHECK, (_m, column: string, list: string) =>
    `(${list.split(',').map((v) => v.trim()).filter(Boolean).map((v) => `${column} = ${v}`).join(' or ')})`);
}

function inForm(ddl: string): string {
  return ddl.replace(/\(((?:[a-z_]+) = (?:'[a-z_]+'|-?\d+)(?: or [a-z_]+ = (?:'[a-z_]+'|-?\d+))+)\)/g, (m, body: string) => {
    const parts = body.split(' or ').map((p) => p.split(' = ') as [string, string]);
    const column = parts[0]![0];
    if (!parts.every(([c]) => c === column)) return m;
    return `${column} in (${parts.map(([, v]) => v).join(',')})`;
  });
}

async function rebuild(db: Kysely<any>, rewrite: (ddl: string) => string): Promise<void> {
  if (!(db.getExecutor().adapter instanceof SqliteAdapter)) return;
  const table = await sql<{ sql: string }>`select sql from sqlite_master where type = 'table' and name = 'billing_bill_line'`.execute(db);
  const indexes = await sql<{ sql: string }>`select sql from sqlite_master where type = 'index' and tbl_name = 'billing_bill_line' and sql is not null`.execute(db);
  const ddl = table.rows[0]?.sql;
  if (!ddl) throw new Error('billing_bill_line is missing');
  const next = rewrite(ddl).replace(/^CREATE TABLE (?:IF NOT EXISTS )?"billing_bill_line"/i, 'CREATE TABLE "billing_bill_line_next"');
  if (!next.startsWith('CREATE TABLE "billing_bill_line_next"')) throw new Error('billing_bill_line: unexpected definition');
  await sql.raw(next).execute(db);
  await sql`insert into billing_bill_line_next select * from billing_bill_line`.execute(db);
  await sql`drop table billing_bill_line`.execute(db);
  await sql`alter table billing_bill_line_next rename to billing_bill_line`.execute(db);
  for (const i of indexes.rows) await sql.raw(i.sql).execute(db);
}

export async function up(db: Kysely<any>): Promise<void> {
  await rebuild(db, orForm);
}

export async function down(db: Kysely<any>): Promise<void> {
  await rebuild(db, inForm);
}
