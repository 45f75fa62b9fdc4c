/**
 * Raw statements for the bulk paths (the outbox, the audit log, mass billing): SQL text
 * built once and run as compiled queries, with `?` placeholders rewritten for Postgres.
 * Kysely builds everything else; these exist because building and compiling a query tree
 * per chunk is a measurable cost when a run writes hundreds of thousands of rows.
 */
import { CompiledQuery } from 'kysely';
import type { Executor } from './db.ts';
import { assert } from './assert.ts';

// ---------------------------------------------------------------------------------------
// Bulk inserts: the SQL text built once per (table, columns) and run as a compiled query,
// instead of building and compiling a query tree per call.
// ---------------------------------------------------------------------------------------

const placeholderStyles = new WeakMap<object, 'pg' | 'sqlite'>();
const insertTexts = new Map<string, string>();

/** A table or column name as an SQL identifier (both databases): double-quoted, a double quote inside doubled. */
export function quoteId(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function placeholderStyle(ex: Executor): 'pg' | 'sqlite' {
  const key = ex.getExecutor().adapter as object;
  let style = placeholderStyles.get(key);
  if (!style) {
    style = ex.selectFrom('any_table').select('id').where('id', '=', 'x').compile().sql.includes('$1') ? 'pg' : 'sqlite';
    placeholderStyles.set(key, style);
  }
  return style;
}

/** `insert into t (cols) values (...), ...` for n rows: `?` placeholders (SQLite) or `$1...` (Postgres), built once per shape. */
function valuesInsertText(style: 'pg' | 'sqlite', table: string, cols: readonly string[], n: number): string {
  const key = JSON.stringify([style, table, cols, n]);
  let text = insertTexts.get(key);
  if (!text) {
    let p = 0;
    const rows: string[] = [];
    for (let r = 0; r < n; r++) rows.push(`(${cols.map(() => (style === 'pg' ? `$${++p}` : '?')).join(',')})`);
    text = `insert into ${quoteId(table)} (${cols.map(quoteId).join(',')}) values ${rows.join(',')}`;
    if (insertTexts.size > 100) insertTexts.clear();
    insertTexts.set(key, text);
  }
  return text;
}

/**
 * Insert rows into `table` (the given columns of each row; undefined is stored as null), in
 * the given order: see insertTuples.
 */
export async function insertMany(ex: Executor, table: string, cols: readonly string[], rows: readonly Record<string, unknown>[]): Promise<void> {
  if (rows.length === 0) return;
  const tuples: unknown[][] = new Array(rows.length);
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    const t: unknown[] = new Array(cols.length);
    for (let c = 0; c < cols.length; c++) t[c] = row[cols[c]!] ?? null;
    tuples[r] = t;
  }
  await insertTuples(ex, table, cols, tuples);
}

/**
 * Insert rows given as arrays of the columns' values (in `cols` order; undefined is stored
 * as null), in the given order. SQLite: one single-row statement, kept prepared, run once
 * per row by the adapter (EACH_ROW_MARK), since parsing a statement of thousands of
 * placeholders costs more than stepping a prepared one thousands of times in-process.
 * Postgres: one statement per 1,000 rows, the values sent as one array per column; rows
 * holding long text, multi-row VALUES statements instead (at most 1,000 rows each).
 */
export async function insertTuples(ex: Executor, table: string, cols: readonly string[], tuples: readonly (readonly unknown[])[]): Promise<void> {
  if (tuples.length === 0) return;
  for (const t of tuples) if (t.length !== cols.length) throw new Error(`insertTuples ${table}: a row of ${t.length} values for ${cols.length} columns`);
  const style = placeholderStyle(ex);
  if (style === 'sqlite') {
    await runEachRow(ex, valuesInsertText(style, table, cols, 1), tuples);
    return;
  }
  // Postgres, rows holding long text (event payloads, audit snapshots of whole bills): each
  // value its own parameter of a multi-row VALUES list. Escaping such text into an array
  // literal and parsing it back cost more than the statement (approving 9,471 bills: 8.4 s
  // as VALUES, 14.7 s as arrays).
  if (tuples.some((t) => t.some((v) => typeof v === 'string' && v.length > LONG_TEXT_CHARS))) {
    const per = Math.max(1, Math.min(MAX_ROWS_PER_VALUES, Math.floor(MAX_PARAMS_PER_VALUES / cols.length)));
    for (let i = 0; i < tuples.length; i += per) {
      const end = Math.min(tuples.length, i + per);
      const params: unknown[] = [];
      for (let r = i; r < end; r++) for (const v of tuples[r]!) params.push(v ?? null);
      await ex.executeQuery(CompiledQuery.raw(valuesInsertText(style, table, cols, end - i), params));
    }
    return;
  }
  // Otherwise one array per column, unnested into rows, so a statement's text and plan stay
  // the same whatever the row count (a 1,000-row VALUES list was parsed and planned afresh
  // each time: 2.5 ms of its 10). WITH ORDINALITY keeps the rows' order (serial columns
  // number them in it). A bill run's 470,000 lines: 9.9 s as VALUES lists, 5.8 s so.
  const text = await unnestInsertText(ex, table, cols);
  for (let i = 0; i < tuples.length; i += MAX_ROWS_PER_UNNEST) {
    const end = Math.min(tuples.length, i + MAX_ROWS_PER_UNNEST);
    const arrays: string[] = new Array(cols.length);
    for (let c = 0; c < cols.length; c++) arrays[c] = arrayLiteral(tuples, i, end, c, table, cols[c]!);
    await ex.executeQuery(CompiledQuery.raw(text, arrays));
  }
}

/**
 * Rows per Postgres insert: bounds the arrays one statement sends, and keeps each array's
 * text small enough for V8's young generation (an id column of 5,000 rows is a 190 KB
 * string, allocated where only a full collection frees it). As fast as 5,000 per statement.
 */
const MAX_ROWS_PER_UNNEST = 1_000;
/** A text longer than this sends its rows as VALUES parameters instead. */
const LONG_TEXT_CHARS = 1_000;
/** Postgres VALUES inserts: rows, and parameters (under its 65,535), per statement. */
const MAX_ROWS_PER_VALUES = 1_000;
const MAX_PARAMS_PER_VALUES = 30_000;

/** Per database handle (its Kysely adapter, as placeholderStyles): a table of one name may differ between two databases. */
const unnestTexts = new WeakMap<object, Map<string, Promise<string>>>();

/**
 * `insert into t (cols) select … from unnest($1::type[], …) with ordinality … order by ord`,
 * each array cast to its column's type, read once from the catalog (unnest needs the element
 * types, and an insert does not cast text to a number by itself).
 */
function unnestInsertText(ex: Executor, table: string, cols: readonly string[]): Promise<string> {
  const adapter = ex.getExecutor().adapter as object;
  let texts = unnestTexts.get(adapter);
  if (!texts) unnestTexts.set(adapter, texts = new Map());
  const key = JSON.stringify([table, cols]);
  let text = texts.get(key);
  if (!text) {
    text = (async () => {
      const r = await ex.executeQuery<{ name: string; type: string }>(CompiledQuery.raw(
        'select attname as name, format_type(atttypid, atttypmod) as type from pg_attribute where attrelid = to_regclass($1) and attnum > 0 and not attisdropped',
        [quoteId(table)]));
      const types = new Map(r.rows.map((c) => [c.name, c.type]));
      const missing = cols.filter((c) => !types.has(c));
      if (missing.length) throw new Error(`insertTuples ${table}: no column ${missing.join(', ')}`);
      const names = cols.map((_, i) => `c${i}`);
      return `insert into ${quoteId(table)} (${cols.map(quoteId).join(',')}) select ${names.join(',')} from unnest(${cols.map((c, i) => `$${i + 1}::${types.get(c)}[]`).join(',')}) with ordinality as u(${names.join(',')}, ord) order by ord`;
    })();
    // A failed lookup (a table not there yet) is not kept.
    text.catch(() => { if (texts.get(key) === text) texts.delete(key); });
    if (texts.size > 100) texts.clear();
    texts.set(key, text);
  }
  return text;
}

const NEEDS_ESCAPE = /["\\]/;

/**
 * Postgres: `values` as one array parameter (for `= any(?::text[])`): a statement of one
 * parameter instead of thousands of placeholders to parse.
 */
export function pgArray(values: readonly (string | number | null)[]): string {
  return `{${values.map((v) => arrayElement(v, 'pgArray')).join(',')}}`;
}

/**
 * Column `c` of tuples[from..to) as a Postgres array literal ('{"a",NULL,3}'). Built here
 * because the driver's own conversion (two regular-expression replaces per element) was the
 * largest client cost of a bill run's inserts on Postgres (1.5 s; 0.7 s so).
 */
function arrayLiteral(tuples: readonly (readonly unknown[])[], from: number, to: number, c: number, table: string, col: string): string {
  const parts: string[] = new Array(to - from);
  for (let r = from; r < to; r++) parts[r - from] = arrayElement(tuples[r]![c], `insertTuples ${table}.${col}`);
  return `{${parts.join(',')}}`;
}

/** One element of an array literal: strings quoted (backslash and double quote escaped), numbers as digits, null and undefined as NULL. */
function arrayElement(v: unknown, where: string): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'string') return NEEDS_ESCAPE.test(v) ? `"${v.replace(/[\\"]/g, '\\$&')}"` : `"${v}"`;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`${where}: ${v} is not a finite number`);
    return String(v);
  }
  if (typeof v === 'bigint') return v.toString();
  throw new Error(`${where}: a ${typeof v} value (give strings, numbers or null, as SQLite takes)`);
}

/**
 * SQLite only: one statement (positional `?`) run once per row of `rows`, in-process
 * (EACH_ROW_MARK); the rows it changed, summed. For bulk updates: stepping a kept
 * single-row UPDATE is far cheaper there than an UPDATE ... FROM (VALUES ...) of many rows
 * (200 bills approved: 1.2 ms against 67 ms).
 */
export async function runEachRow(ex: Executor, text: string, rows: readonly (readonly unknown[])[]): Promise<number> {
  if (placeholderStyle(ex) !== 'sqlite') throw new Error('runEachRow runs on SQLite only');
  let changed = 0;
  for (let i = 0; i < rows.length; i += MAX_ROWS_PER_EACH) {
    const part = rows.slice(i, i + MAX_ROWS_PER_EACH).map((t) => (t.includes(undefined) ? t.map((v) => v ?? null) : t));
    const r = await ex.executeQuery(CompiledQuery.raw(EACH_ROW_MARK + text, part));
    changed += Number(r.numAffectedRows ?? 0n);
  }
  return changed;
}

/**
 * True when the database runs one write transaction at a time (SQLite: write transactions
 * begin IMMEDIATE), so what a write transaction read cannot be changed by anyone else before
 * it commits; false on Postgres (read committed: another transaction's commit shows in the
 * next statement). Bulk writers use it to skip re-checks that only a concurrent writer needs.
 */
export function writersSerialised(ex: Executor): boolean {
  return placeholderStyle(ex) === 'sqlite';
}

/** SQL written with `?` placeholders, as the database takes it (Postgres numbers them: $1, $2...). */
function placeholders(ex: Executor, text: string): string {
  if (placeholderStyle(ex) !== 'pg') return text;
  let p = 0;
  return text.replace(/\?/g, () => `$${++p}`);
}

/** Run one statement written with `?` placeholders (rewritten to $n on Postgres); the rows changed. */
export async function execRaw(ex: Executor, text: string, params: readonly unknown[]): Promise<number> {
  const r = await ex.executeQuery(CompiledQuery.raw(placeholders(ex, text), [...params]));
  return Number(r.numAffectedRows ?? 0n);
}

/** A select written with `?` placeholders. */
export async function selectRaw<T>(ex: Executor, text: string, params: readonly unknown[]): Promise<T[]> {
  return (await ex.executeQuery(CompiledQuery.raw(placeholders(ex, text), [...params]))).rows as T[];
}

/**
 * SQL starting with this comment is a single-row statement (no result rows) whose
 * parameters are rows, each an array of that statement's parameters: the SQLite adapter
 * runs it once per row.
 */
export const EACH_ROW_MARK = '/*each-row*/';
/** The most rows one EACH_ROW_MARK call takes (bounds the parameter array built for it). */
const MAX_ROWS_PER_EACH = 5_000;

/** SQL starting with this comment gets its rows as arrays of column values, in select order (both database adapters honour it). */
export const ARRAY_ROWS_MARK = '/*arrays*/';

/**
 * A select written with `?` placeholders whose rows come back as arrays of the selected
 * columns, in select order: for reads of hundreds of thousands of rows, where building an
 * object per row is a measurable share of the read. Both adapters honour ARRAY_ROWS_MARK
 * (better-sqlite3's raw mode, pg's rowMode 'array'), so no object is built per row.
 */
export async function selectArrays(ex: Executor, text: string, params: readonly unknown[]): Promise<unknown[][]> {
  const rows = (await ex.executeQuery(CompiledQuery.raw(ARRAY_ROWS_MARK + placeholders(ex, text), [...params]))).rows;
  assert(rows.every(Array.isArray), 'a select marked for array rows returns arrays');
  return rows as unknown[][];
}

/**
 * A select whose rows come back as arrays of `exprs`' values, in order: for reads of hundreds
 * of thousands of rows. On SQLite the database builds JSON text (arrays of arrays) that
 * JSON.parse reads: better-sqlite3 builds each value of each row through the native boundary
 * (564,000 unbilled items of 19 columns: 2.4 s as rows, 1.3 s as JSON, 0.5 s of it the query).
 * `groupBy` (a column the query's index walks in order: the bill of a line, the matter of an
 * item) makes that one JSON text per group instead of one for the whole read: the same
 * 564,000 items read by the 200 matters, 1.17 s as one text per matter against 1.56-1.79 s
 * as one per read (Postgres ignores it). `from` then holds no comment, and no ORDER BY, LIMIT,
 * OFFSET or HAVING after its last parenthesis (where a GROUP BY could not follow). On
 * Postgres, rows (selectArrays): json_agg cost the server more than it saved the client (a
 * 10,000-matter bill run 0.8 s slower). `from` is the rest of the statement ("from ...
 * where ..."); expressions give text, integers within 2^53 or null; no row order is promised.
 */
export async function selectColumns(ex: Executor, exprs: readonly string[], from: string, params: readonly unknown[], opts: { groupBy?: string } = {}): Promise<unknown[][]> {
  assert(exprs.length > 0, 'a select names at least one expression');
  // On SQLite the expressions are aggregated into one row (or one per opts.groupBy): a grouped query would give one row per its own group.
  assert(!/\bgroup\s+by\b/i.test(from), 'selectColumns reads rows, not groups');
  assert(opts.groupBy === undefined || /^[a-z_][a-z0-9_.]*$/.test(opts.groupBy), 'selectColumns groups by a column');
  // The GROUP BY goes at the end: no comment may hide it, and what follows the last parenthesis
  // (subqueries may hold their own LIMIT) must take it after.
  assert(opts.groupBy === undefined || (!/--|\/\*/.test(from) && !/\b(order\s+by|limit|having|offset)\b/i.test(from.slice(from.lastIndexOf(')') + 1))),
    'selectColumns with groupBy: the statement must end where GROUP BY can follow, with no comment');
  if (placeholderStyle(ex) === 'pg') return selectArrays(ex, `select ${exprs.join(', ')} ${from}`, params);
  if (opts.groupBy === undefined) {
    const [row] = await selectRaw<{ rows_json: string }>(ex, `select json_group_array(json_array(${exprs.join(', ')})) as rows_json ${from}`, params);
    return parsedRows(row!.rows_json);
  }
  const out: unknown[][] = [];
  for (const g of await selectArrays(ex, `select json_group_array(json_array(${exprs.join(', ')})) ${from} group by ${opts.groupBy}`, params)) {
    for (const r of parsedRows(g[0] as string)) out.push(r);
  }
  return out;
}

function parsedRows(json: string): unknown[][] {
  const rows = JSON.parse(json) as unknown;
  assert(Array.isArray(rows), 'a JSON select returns an array');
  return rows as unknown[][];
}

export const marks = (n: number): string => Array.from({ length: n }, () => '?').join(',');

/** Ids per `in (...)` list when rows are read by id: well under every driver's parameter limit (SQLite's 32,766). */
export const IN_CHUNK = 500;

/** The rows of `table` whose `column` is one of `ids` (each asked once), IN_CHUNK ids per statement; none asked: none read. */
export async function selectIn(ex: Executor, table: string, column: string, ids: Iterable<string>): Promise<Record<string, any>[]> {
  const unique = [...new Set(ids)];
  const out: Record<string, any>[] = [];
  for (let i = 0; i < unique.length; i += IN_CHUNK) {
    out.push(...await ex.selectFrom(table).selectAll().where(column, 'in', unique.slice(i, i + IN_CHUNK)).execute() as Record<string, any>[]);
  }
  return out;
}
