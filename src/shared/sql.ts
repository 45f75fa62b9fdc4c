/**
 * Raw statements for the bulk paths (the outbox, the audit log, mass billing): SQL text
 * built once and run as compiled queries, with `?` placeholders rewritten for Postgres.
 * Kysely builds everything else; these exist because building and compiling a query tree
 * per chunk is a measurable cost when a run writes hundreds of thousands of rows.
 */
import { CompiledQuery } from 'kysely';
import type { Executor } from './db.ts';

// ---------------------------------------------------------------------------------------
// Bulk inserts: the SQL text of a multi-row insert built once per (table, columns, rows)
// and run as a compiled query, instead of building and compiling a query tree per call.
// ---------------------------------------------------------------------------------------

/** Parameters per statement: under SQLite's 32,766 and Postgres' 65,535. */
const MAX_BOUND_PARAMS = 30_000;
/** The most rows one statement takes (bounds the SQL text kept in the cache). */
const MAX_ROWS_PER_INSERT = 1_000;
const placeholderStyles = new WeakMap<object, 'pg' | 'sqlite'>();
const insertTexts = new Map<string, string>();

function placeholderStyle(ex: Executor): 'pg' | 'sqlite' {
  const key = ex.getExecutor().adapter as object;
  let style = placeholderStyles.get(key);
  if (!style) {
    style = ex.selectFrom('any_table').select('id').where('id', '=', 'x').compile().sql.includes('$1') ? 'pg' : 'sqlite';
    placeholderStyles.set(key, style);
  }
  return style;
}

function insertText(style: 'pg' | 'sqlite', table: string, cols: readonly string[], n: number): string {
  const key = `${style}|${table}|${cols.join(',')}|${n}`;
  let text = insertTexts.get(key);
  if (!text) {
    let p = 0;
    const tuples: string[] = [];
    for (let r = 0; r < n; r++) tuples.push(`(${cols.map(() => (style === 'pg' ? `$${++p}` : '?')).join(',')})`);
    text = `insert into "${table}" (${cols.map((c) => `"${c}"`).join(',')}) values ${tuples.join(',')}`;
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
 * Postgres: as few multi-row statements as the parameter limits allow (each a round trip).
 */
export async function insertTuples(ex: Executor, table: string, cols: readonly string[], tuples: readonly (readonly unknown[])[]): Promise<void> {
  if (tuples.length === 0) return;
  for (const t of tuples) if (t.length !== cols.length) throw new Error(`insertTuples ${table}: a row of ${t.length} values for ${cols.length} columns`);
  const style = placeholderStyle(ex);
  if (style === 'sqlite') {
    await runEachRow(ex, insertText(style, table, cols, 1), tuples);
    return;
  }
  const per = Math.max(1, Math.min(MAX_ROWS_PER_INSERT, Math.floor(MAX_BOUND_PARAMS / cols.length)));
  for (let i = 0; i < tuples.length; i += per) {
    const end = Math.min(tuples.length, i + per);
    const params: unknown[] = [];
    for (let r = i; r < end; r++) for (const v of tuples[r]!) params.push(v ?? null);
    await ex.executeQuery(CompiledQuery.raw(insertText(style, table, cols, end - i), params));
  }
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

/** Run one statement written with `?` placeholders (rewritten to $n on Postgres); the rows changed. */
export async function execRaw(ex: Executor, text: string, params: readonly unknown[]): Promise<number> {
  let q = text;
  if (placeholderStyle(ex) === 'pg') { let p = 0; q = text.replace(/\?/g, () => `$${++p}`); }
  const r = await ex.executeQuery(CompiledQuery.raw(q, [...params]));
  return Number(r.numAffectedRows ?? 0n);
}

/** A select written with `?` placeholders. */
export async function selectRaw<T>(ex: Executor, text: string, params: readonly unknown[]): Promise<T[]> {
  let q = text;
  if (placeholderStyle(ex) === 'pg') { let p = 0; q = text.replace(/\?/g, () => `$${++p}`); }
  return (await ex.executeQuery(CompiledQuery.raw(q, [...params]))).rows as T[];
}

/**
 * SQL starting with this comment is a single-row statement (no result rows) whose
 * parameters are rows, each an array of that statement's parameters: the SQLite adapter
 * runs it once per row.
 */
export const EACH_ROW_MARK = '/*each-row*/';
/** The most rows one EACH_ROW_MARK call takes (bounds the parameter array built for it). */
const MAX_ROWS_PER_EACH = 5_000;

/** SQL starting with this comment gets its rows as arrays of column values, in select order (the SQLite adapter honours it). */
export const ARRAY_ROWS_MARK = '/*arrays*/';

/**
 * A select written with `?` placeholders whose rows come back as arrays of the selected
 * columns, in select order: for reads of hundreds of thousands of rows, where building an
 * object per row is a measurable share of the read. (SQLite returns arrays directly;
 * Postgres rows are turned into arrays, so select distinct column names.)
 */
export async function selectArrays(ex: Executor, text: string, params: readonly unknown[]): Promise<unknown[][]> {
  if (placeholderStyle(ex) === 'pg') {
    return (await selectRaw<Record<string, unknown>>(ex, text, params)).map((r) => Object.values(r));
  }
  return (await ex.executeQuery(CompiledQuery.raw(ARRAY_ROWS_MARK + text, [...params]))).rows as unknown[][];
}

export const marks = (n: number): string => Array.from({ length: n }, () => '?').join(',');

