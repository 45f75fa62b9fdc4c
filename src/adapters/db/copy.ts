/**
 * Copy a firm's whole database from SQLite to an empty PostgreSQL database, all or nothing
 * (`lexbill copy-database`). Generic: it knows no module's tables. It reads the source
 * read-only in one snapshot; refuses, before the target changes at all, a source whose
 * migrations differ from this Lexbill's, a target not in UTF8, one holding tables Lexbill
 * never migrated, one migrated by a newer Lexbill and one holding a firm's rows; migrates the
 * target with the project's migrator; checks again (seeded tables too) under its lock, then
 * copies every table but the migration bookkeeping in ONE Postgres transaction:
 *
 * - tables in foreign-key dependency order (read from pg_constraint, topologically sorted);
 *   a self-referencing table's rows are ordered so a referenced row goes first (no
 *   constraint is deferred and session_replication_role is never touched, so every
 *   constraint and trigger checks the copied rows as it would the app's own);
 * - integers read exactly (better-sqlite3 safe integers, BigInt) and refused when they do
 *   not fit the target column; batches of multi-row VALUES under Postgres's 65,535
 *   parameters;
 * - rows the migrations seed (a fresh database's own rows, e.g. the default chart of
 *   accounts) are replaced by the source's in the same transaction;
 * - every serial / identity sequence set past the copied maximum;
 * - verified before commit: each table's row count, and per column the non-null count,
 *   the sum of integers and the bytes of text and binary values, equal the source's.
 * ANALYZE runs after the commit.
 */
import { isAbsolute, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, sql } from 'kysely';
import type { Transaction } from 'kysely';
import type { Database } from '../../shared/db.ts';
import { maskUrl, openDatabase, migrateToLatest } from './index.ts';

/** The migrator's own tables: never copied (the target's are its own). */
const BOOKKEEPING_TABLES = new Set(['schema_migration', 'schema_migration_lock']);
/** Postgres's limit is 65,535 bind parameters per statement. */
const MAX_PARAMS = 65_000;
const MAX_ROWS_PER_INSERT = 1_000;
/** A batch is also sent once its values reach this many bytes (PDFs, event payloads). */
const MAX_BATCH_BYTES = 8 * 1024 * 1024;
/** Serialises two copies into the same target (pg_advisory_xact_lock key). */
const COPY_LOCK_KEY = 712_404;

/** The copy was refused before anything changed (exit code 1 from the CLI, with the reason). */
export class CopyRefusedError extends Error {}

export interface CopyTableResult { table: string; rows: number }
export interface CopyResult {
  tables: CopyTableResult[];
  rows: number;
  /** Tables whose migration-seeded rows were replaced by the source's. */
  replacedSeeds: string[];
}

export interface CopyOptions {
  /** `sqlite:PATH` (relative paths resolve against baseDir). */
  from: string;
  /** `postgres://...` or `postgresql://...`. */
  to: string;
  baseDir?: string;
  log?: (line: string) => void;
}

type IntKind = 'int2' | 'int4' | 'int8';
type Kind = IntKind | 'numeric' | 'bool' | 'bytea' | 'float' | 'text';

export interface Column { name: string; sqlType: string; kind: Kind; identityAlways: boolean }
export interface ForeignKey { table: string; refTable: string; columns: string[]; refColumns: string[]; deferrable: boolean }
export interface Table { name: string; columns: Column[] }

const INT_RANGE: Record<IntKind, [bigint, bigint]> = {
  int2: [-32_768n, 32_767n],
  int4: [-2_147_483_648n, 2_147_483_647n],
  int8: [-9_223_372_036_854_775_808n, 9_223_372_036_854_775_807n],
};

function kindOf(typname: string): Kind {
  if (typname === 'int2' || typname === 'int4' || typname === 'int8') return typname;
  if (typname === 'numeric') return 'numeric';
  if (typname === 'bool') return 'bool';
  if (typname === 'bytea') return 'bytea';
  if (typname === 'float4' || typname === 'float8') return 'float';
  return 'text';
}

export { maskUrl };

const q = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** The SQLite file a `sqlite:` URL names. */
function sqlitePath(url: string, baseDir: string): string {
  if (!url.startsWith('sqlite:')) throw new CopyRefusedError(`--from must be a sqlite: URL (got "${maskUrl(url)}")`);
  const path = url.slice('sqlite:'.length);
  if (path.length === 0 || path === ':memory:') throw new CopyRefusedError('--from must name a SQLite file, e.g. sqlite:./data/lexbill.db');
  return isAbsolute(path) ? path : resolve(baseDir, path);
}

export async function copyDatabase(opts: CopyOptions): Promise<CopyResult> {
  const log = opts.log ?? (() => undefined);
  if (!/^postgres(ql)?:\/\//.test(opts.to)) throw new CopyRefusedError(`--to must be a postgres:// URL (got "${maskUrl(opts.to)}")`);
  const path = sqlitePath(opts.from, opts.baseDir ?? process.cwd());

  let src: BetterSqlite3.Database;
  try {
    src = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
  } catch (e) {
    throw new CopyRefusedError(`cannot open the source ${path}: ${(e as Error).message}`);
  }
  // A second connection, never in a transaction: its data_version changes when another connection (a server still
  // running on the file) commits, so a copy that would leave out what was written while it ran is refused.
  let watch: BetterSqlite3.Database;
  try {
    watch = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
  } catch (e) {
    src.close();
    throw new CopyRefusedError(`cannot open the source ${path}: ${(e as Error).message}`);
  }
  const dataVersion = (): number => Number(watch.pragma('data_version', { simple: true }));
  const versionAtStart = dataVersion();
  let target: Database | null = null;
  try {
    src.defaultSafeIntegers(true);
    // One read transaction: every table is read from the same snapshot.
    src.exec('begin');
    const srcTables = (src.prepare(`select name from sqlite_master where type = 'table' and name not like 'sqlite\\_%' escape '\\'`).all() as { name: string }[]).map((r) => r.name);
    if (!srcTables.includes('schema_migration')) throw new CopyRefusedError(`${path} is not a Lexbill database (it has no schema_migration table)`);
    const srcMigrations = (src.prepare('select name from schema_migration').all() as { name: string }[]).map((r) => r.name);

    const { seeds, migrations: known } = await migrationSeeds();
    // The source at this Lexbill's migrations, checked before the target is touched.
    refuseOtherMigrations(srcMigrations, known, path);

    target = openDatabase(opts.to);
    // Refused before the target is migrated: a firm's database (an older Lexbill still serving
    // it) or another application's must not be changed by a copy that is then refused.
    const [encoding] = await rawRows<{ e: string }>(target.db, `select current_setting('server_encoding') as e`);
    if (encoding?.e !== 'UTF8') throw new CopyRefusedError(`the target database must use UTF8 encoding (it uses ${encoding?.e})`);
    await refuseBeforeMigrating(target.db, seeds, known);
    const applied = await migrateToLatest(target.db);
    if (applied.length) log(`Migrated the target: ${applied.length} migration(s)`);
    const tgtMigrations = (await target.db.selectFrom('schema_migration').select('name').execute()).map((r) => r.name as string);
    refuseOtherMigrations(srcMigrations, tgtMigrations, path);

    const { tables, fks } = await readCatalog(target.db);
    const copied = tables.filter((t) => !BOOKKEEPING_TABLES.has(t.name));
    checkSameTables(src, srcTables.filter((t) => !BOOKKEEPING_TABLES.has(t)), copied);
    const order = dependencyOrder(copied, fks);
    const byName = new Map(copied.map((t) => [t.name, t]));

    const result = await target.db.transaction().execute(async (trx) => {
      await exec(trx, `select pg_advisory_xact_lock(${COPY_LOCK_KEY})`);
      const replacedSeeds = await refuseUnlessEmpty(trx, copied, seeds);
      // The seeded rows go (dependants first), the source's take their place.
      for (const name of [...order].reverse()) if (replacedSeeds.includes(name)) await exec(trx, `delete from ${q(name)}`);
      const results: CopyTableResult[] = [];
      const expected = new Map<string, Map<string, string>>();
      for (const name of order) {
        const t = byName.get(name)!;
        const selfFks = fks.filter((f) => f.table === name && f.refTable === name);
        const { rows, sums } = await copyTable(src, trx, t, selfFks);
        results.push({ table: name, rows });
        expected.set(name, sums);
        log(`  ${name}: ${rows} row(s)`);
      }
      await resetSequences(trx);
      await verify(trx, copied, expected);
      if (dataVersion() !== versionAtStart) {
        throw new CopyRefusedError(`the source ${path} changed while it was copied (is a server still running on it?): stop every Lexbill process using it, then copy again`);
      }
      return { tables: results, rows: results.reduce((n, r) => n + r.rows, 0), replacedSeeds };
    });
    await sql.raw('analyze').execute(target.db);
    return result;
  } finally {
    if (src.inTransaction) src.exec('commit');
    src.close();
    watch.close();
    if (target) await target.close();
  }
}

/** Refuse a source whose migrations are not exactly `expected` (this Lexbill's, the target's). */
function refuseOtherMigrations(srcMigrations: readonly string[], expected: readonly string[], path: string): void {
  const missing = expected.filter((m) => !srcMigrations.includes(m)).sort();
  if (missing.length) {
    throw new CopyRefusedError(`the source database is older than this version of Lexbill: migrate it first `
      + `(stop the server, then DATABASE_URL=sqlite:${path} bin/lexbill migrate); it lacks ${missing.join(', ')}`);
  }
  const unknown = srcMigrations.filter((m) => !expected.includes(m)).sort();
  if (unknown.length) {
    throw new CopyRefusedError(`the source database was migrated by a newer version of Lexbill (${unknown.join(', ')}): upgrade Lexbill, then copy`);
  }
}

async function rawRows<T>(db: { executeQuery: Transaction<any>['executeQuery'] }, text: string, params: readonly unknown[] = []): Promise<T[]> {
  return (await db.executeQuery(CompiledQuery.raw(text, params as unknown[]))).rows as T[];
}
async function exec(db: { executeQuery: Transaction<any>['executeQuery'] }, text: string, params: readonly unknown[] = []): Promise<void> {
  await db.executeQuery(CompiledQuery.raw(text, params as unknown[]));
}

/**
 * Before anything in the target changes: refuse a database that holds tables but no Lexbill
 * migrations (another application's), one migrated by a newer Lexbill (this one's migrator
 * would fail on it, or worse), and one that already holds a firm: rows in a table the
 * migrations do not seed (a firm always has some: its events, users, settings). The seeded
 * tables are compared with the seeds after migrating, under the copy's lock (refuseUnlessEmpty).
 */
async function refuseBeforeMigrating(db: Database['db'], seeds: Map<string, string[]>, known: readonly string[]): Promise<void> {
  const tables = (await rawRows<{ t: string }>(db, `
    select c.relname as t from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = current_schema() and c.relkind in ('r', 'p') order by 1`)).map((r) => r.t);
  if (tables.length === 0) return;
  if (!tables.includes('schema_migration')) {
    throw new CopyRefusedError(`the target database is not empty and Lexbill never migrated it (tables ${tables.slice(0, 8).join(', ')}${tables.length > 8 ? ', ...' : ''}): copy only into an empty database`);
  }
  const names = (await rawRows<{ name: string }>(db, 'select name from schema_migration')).map((r) => r.name);
  const unknown = names.filter((m) => !known.includes(m)).sort();
  if (unknown.length) {
    throw new CopyRefusedError(`the target database was migrated by a newer version of Lexbill (${unknown.join(', ')}): copy only into an empty database`);
  }
  const holding: string[] = [];
  for (const t of tables) {
    if (BOOKKEEPING_TABLES.has(t) || seeds.has(t)) continue;
    if ((await rawRows<{ x: number }>(db, `select 1 as x from ${q(t)}${onlyFirmRows(t)} limit 1`)).length) holding.push(t);
  }
  if (holding.length) {
    throw new CopyRefusedError(`the target database already holds a firm (rows in ${holding.slice(0, 8).join(', ')}${holding.length > 8 ? ', ...' : ''}): copy only into an empty database`);
  }
}

/** The rows a freshly migrated database holds (the migrations' seeds), by table, as sorted JSON texts; and the migrations' names. */
async function migrationSeeds(): Promise<{ seeds: Map<string, string[]>; migrations: string[] }> {
  const fresh = openDatabase('sqlite::memory:');
  try {
    await migrateToLatest(fresh.db);
    const migrations = (await rawRows<{ name: string }>(fresh.db, 'select name from schema_migration')).map((r) => r.name);
    const names = await rawRows<{ name: string }>(fresh.db, `select name from sqlite_master where type = 'table' and name not like 'sqlite\\_%' escape '\\'`);
    const seeds = new Map<string, string[]>();
    for (const { name } of names) {
      if (BOOKKEEPING_TABLES.has(name)) continue;
      const rows = await rawRows<Record<string, unknown>>(fresh.db, `select * from ${q(name)}`);
      if (rows.length) seeds.set(name, rows.map(canonicalRow).sort());
    }
    return { seeds, migrations };
  } finally {
    await fresh.close();
  }
}

/** A row as text independent of the driver: columns by name, values as strings. */
function canonicalRow(row: Record<string, unknown>): string {
  return JSON.stringify(Object.keys(row).sort().map((k) => [k, row[k] === null || row[k] === undefined ? null : Buffer.isBuffer(row[k]) ? (row[k] as Buffer).toString('hex') : String(row[k])]));
}

async function readCatalog(db: Database['db']): Promise<{ tables: Table[]; fks: ForeignKey[] }> {
  const cols = await rawRows<{ tbl: string; col: string; typname: string; sqltype: string; identity: string }>(db, `
    select c.relname as tbl, a.attname as col, t.typname, format_type(a.atttypid, a.atttypmod) as sqltype, a.attidentity as identity
    from pg_attribute a
    join pg_class c on c.oid = a.attrelid
    join pg_namespace n on n.oid = c.relnamespace
    join pg_type t on t.oid = a.atttypid
    where n.nspname = current_schema() and c.relkind in ('r', 'p') and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
    order by c.relname, a.attnum`);
  const tables = new Map<string, Table>();
  for (const r of cols) {
    let t = tables.get(r.tbl);
    if (!t) tables.set(r.tbl, t = { name: r.tbl, columns: [] });
    t.columns.push({ name: r.col, sqlType: r.sqltype, kind: kindOf(r.typname), identityAlways: r.identity === 'a' });
  }
  const fkRows = await rawRows<{ tbl: string; ref: string; cols: string; refcols: string; deferrable: boolean }>(db, `
    select c.relname as tbl, r.relname as ref, k.condeferrable as deferrable,
      (select json_agg(a.attname order by x.i) from unnest(k.conkey) with ordinality x(n, i) join pg_attribute a on a.attrelid = k.conrelid and a.attnum = x.n)::text as cols,
      (select json_agg(a.attname order by x.i) from unnest(k.confkey) with ordinality x(n, i) join pg_attribute a on a.attrelid = k.confrelid and a.attnum = x.n)::text as refcols
    from pg_constraint k
    join pg_class c on c.oid = k.conrelid
    join pg_class r on r.oid = k.confrelid
    join pg_namespace n on n.oid = c.relnamespace
    where k.contype = 'f' and n.nspname = current_schema()
    order by c.relname, k.conname`);
  const fks = fkRows.map((r) => ({ table: r.tbl, refTable: r.ref, columns: JSON.parse(r.cols) as string[], refColumns: JSON.parse(r.refcols) as string[], deferrable: r.deferrable }));
  return { tables: [...tables.values()], fks };
}

/** The source must hold exactly the target's tables and columns (the same migrations made both). */
function checkSameTables(src: BetterSqlite3.Database, srcTables: string[], tables: Table[]): void {
  const tgt = new Set(tables.map((t) => t.name));
  const onlySrc = srcTables.filter((t) => !tgt.has(t));
  const onlyTgt = [...tgt].filter((t) => !srcTables.includes(t));
  if (onlySrc.length || onlyTgt.length) {
    throw new CopyRefusedError(`the databases' tables differ although their migrations agree: only in the source ${onlySrc.join(', ') || '-'}; only in the target ${onlyTgt.join(', ') || '-'}`);
  }
  for (const t of tables) {
    const srcCols = (src.prepare(`select name from pragma_table_info(?)`).all(t.name) as { name: string }[]).map((r) => r.name).sort();
    const tgtCols = t.columns.map((c) => c.name).sort();
    if (srcCols.join(',') !== tgtCols.join(',')) {
      throw new CopyRefusedError(`table ${t.name} has columns (${srcCols.join(', ')}) in the source but (${tgtCols.join(', ')}) in the target`);
    }
  }
}

/** Tables ordered so every table comes after the tables its foreign keys reference. */
export function dependencyOrder(tables: readonly { name: string }[], fks: readonly ForeignKey[]): string[] {
  const names = new Set(tables.map((t) => t.name));
  const deps = new Map<string, Set<string>>([...names].map((n) => [n, new Set<string>()]));
  for (const f of fks) {
    if (f.table === f.refTable || !names.has(f.table) || !names.has(f.refTable)) continue;
    deps.get(f.table)!.add(f.refTable);
  }
  const out: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (n: string, path: string[]) => {
    const s = state.get(n);
    if (s === 'done') return;
    if (s === 'visiting') throw new Error(`foreign keys form a cycle between tables: ${[...path, n].join(' -> ')}`);
    state.set(n, 'visiting');
    for (const d of [...deps.get(n)!].sort()) visit(d, [...path, n]);
    state.set(n, 'done');
    out.push(n);
  };
  for (const n of [...names].sort()) visit(n, []);
  return out;
}

/**
 * The rows of a table that make a database a firm's, as a where clause: all of them, but for
 * app_setting's server secret, which every Lexbill process writes on first opening a database
 * (starting the server on the new, empty database to try it is not a firm).
 */
function onlyFirmRows(table: string): string {
  return table === 'app_setting' ? ` where ${q('key')} <> 'secret'` : '';
}

/** Refuse a target holding any row but the migrations' seeds (and the server secret); returns the tables whose rows the source's replace. */
async function refuseUnlessEmpty(trx: Transaction<any>, tables: Table[], seeds: Map<string, string[]>): Promise<string[]> {
  const holding: string[] = [];
  const replace: string[] = [];
  for (const t of tables) {
    const seed = seeds.get(t.name);
    if (!seed) {
      const r = await rawRows<{ x: number }>(trx, `select 1 as x from ${q(t.name)}${onlyFirmRows(t.name)} limit 1`);
      if (r.length) holding.push(t.name);
      // The server's secret, written when any process first opened the target (serve, migrate then a look at it): the source's replaces it.
      else if (onlyFirmRows(t.name) !== '' && (await rawRows<{ x: number }>(trx, `select 1 as x from ${q(t.name)} limit 1`)).length) replace.push(t.name);
      continue;
    }
    const rows = (await rawRows<Record<string, unknown>>(trx, `select * from ${q(t.name)}`)).map(canonicalRow).sort();
    if (rows.length && JSON.stringify(rows) !== JSON.stringify(seed)) holding.push(t.name);
    else replace.push(t.name);
  }
  if (holding.length) {
    throw new CopyRefusedError(`the target database already holds a firm (rows in ${holding.slice(0, 8).join(', ')}${holding.length > 8 ? ', ...' : ''}): copy only into an empty database`);
  }
  return replace;
}

/** A value read from SQLite as the target column takes it; refuses what would not be exact. */
function convert(v: unknown, col: Column, table: string): unknown {
  if (v === null || v === undefined) return null;
  const refuse = (why: string): never => {
    const shown = Buffer.isBuffer(v) ? `${v.length} bytes` : String(v).slice(0, 60);
    throw new CopyRefusedError(`${table}.${col.name}: the value ${shown} ${why} (${col.sqlType})`);
  };
  switch (col.kind) {
    case 'int2': case 'int4': case 'int8': {
      let n: bigint;
      if (typeof v === 'bigint') n = v;
      else if (typeof v === 'number' && Number.isSafeInteger(v)) n = BigInt(v);
      else return refuse('is not an integer');
      const [lo, hi] = INT_RANGE[col.kind];
      if (n < lo || n > hi) refuse('does not fit the target column');
      return n.toString();
    }
    case 'numeric':
      if (typeof v === 'bigint') return v.toString();
      if (typeof v === 'number' && Number.isFinite(v)) return String(v);
      if (typeof v === 'string') return v;
      return refuse('is not a number');
    case 'bool':
      if (v === 0n || v === 0) return false;
      if (v === 1n || v === 1) return true;
      return refuse('is not a boolean (0 or 1)');
    case 'bytea':
      if (Buffer.isBuffer(v)) return v;
      return refuse('is not binary');
    case 'float':
      if (typeof v === 'number') return v;
      if (typeof v === 'bigint') return v.toString();
      return refuse('is not a number');
    case 'text':
      if (typeof v === 'string') {
        if (v.includes('\u0000')) refuse('holds a NUL character, which PostgreSQL text cannot');
        return v;
      }
      if (typeof v === 'bigint' || typeof v === 'number') return String(v);
      return refuse('is not text');
  }
}

/** What verify() compares per column: non-null count, integer sum, bytes of text/binary, trues. */
function measure(col: Column, v: unknown, acc: bigint[]): void {
  if (v === null) return;
  acc[0]! += 1n;
  switch (col.kind) {
    case 'int2': case 'int4': case 'int8': acc[1]! += BigInt(v as string); break;
    case 'text': acc[1]! += BigInt(Buffer.byteLength(v as string, 'utf8')); break;
    case 'bytea': acc[1]! += BigInt((v as Buffer).length); break;
    case 'bool': if (v === true) acc[1]! += 1n; break;
    default: break;
  }
}
function measureSql(col: Column): string {
  const c = q(col.name);
  switch (col.kind) {
    case 'int2': case 'int4': case 'int8': return `coalesce(sum(${c}::numeric), 0)::text`;
    case 'text': return `coalesce(sum(octet_length(${c})::numeric), 0)::text`;
    case 'bytea': return `coalesce(sum(octet_length(${c})::numeric), 0)::text`;
    case 'bool': return `(count(*) filter (where ${c}))::text`;
    default: return `'0'`;
  }
}

/** Order a self-referencing table's rows so each referenced row is inserted before its referrers. */
export function orderSelfReferencing(rows: unknown[][], t: Table, selfFks: ForeignKey[]): unknown[][] {
  const idx = (c: string) => t.columns.findIndex((x) => x.name === c);
  const key = (row: unknown[], cols: number[]) => cols.some((i) => row[i] === null) ? null : cols.map((i) => `${typeof row[i]}:${String(row[i])}`).join('\u0000');
  const links = selfFks.map((f) => ({ from: f.columns.map(idx), to: f.refColumns.map(idx) }));
  const indexes = links.map((l) => {
    const m = new Map<string, number>();
    rows.forEach((r, i) => { const k = key(r, l.to); if (k !== null) m.set(k, i); });
    return m;
  });
  const state = new Uint8Array(rows.length); // 0 new, 1 visiting, 2 placed
  const out: unknown[][] = [];
  const place = (start: number) => {
    // Iterative: a chain of reversals can be long.
    const stack: [number, number][] = [[start, 0]];
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const [i, li] = top;
      if (li === 0 && state[i] === 2) { stack.pop(); continue; }
      state[i] = 1;
      if (li < links.length) {
        top[1] = li + 1;
        const k = key(rows[i]!, links[li]!.from);
        const parent = k === null ? undefined : indexes[li]!.get(k);
        if (parent !== undefined && parent !== i) {
          if (state[parent] === 1) throw new CopyRefusedError(`rows of ${t.name} reference each other in a cycle: they cannot be inserted without deferring the constraint`);
          if (state[parent] === 0) stack.push([parent, 0]);
        }
        continue;
      }
      state[i] = 2;
      out.push(rows[i]!);
      stack.pop();
    }
  };
  for (let i = 0; i < rows.length; i++) if (state[i] !== 2) place(i);
  return out;
}

async function copyTable(src: BetterSqlite3.Database, trx: Transaction<any>, t: Table, selfFks: ForeignKey[]): Promise<{ rows: number; sums: Map<string, string> }> {
  const cols = t.columns;
  const deferrableSelf = selfFks.filter((f) => f.deferrable);
  if (deferrableSelf.length) await exec(trx, 'set constraints all deferred');
  const toOrder = selfFks.filter((f) => !f.deferrable);
  const stmt = src.prepare(`select ${cols.map((c) => q(c.name)).join(', ')} from ${q(t.name)}`).raw(true).safeIntegers(true);
  const acc = cols.map(() => [0n, 0n]);
  const overriding = cols.some((c) => c.identityAlways) ? ' overriding system value' : '';
  const perInsert = Math.max(1, Math.min(MAX_ROWS_PER_INSERT, Math.floor(MAX_PARAMS / cols.length)));
  const head = `insert into ${q(t.name)} (${cols.map((c) => q(c.name)).join(', ')})${overriding} values `;
  let batch: unknown[] = [];
  let batchRows = 0;
  let batchBytes = 0;
  let count = 0;
  const flush = async () => {
    if (batchRows === 0) return;
    const tuples: string[] = [];
    let p = 0;
    for (let r = 0; r < batchRows; r++) tuples.push(`(${cols.map((c) => `$${++p}::${c.sqlType}`).join(', ')})`);
    await exec(trx, head + tuples.join(', '), batch);
    batch = [];
    batchRows = 0;
    batchBytes = 0;
  };
  const add = async (row: unknown[]) => {
    for (let i = 0; i < cols.length; i++) {
      const v = convert(row[i], cols[i]!, t.name);
      measure(cols[i]!, v, acc[i]!);
      batch.push(v);
      if (typeof v === 'string') batchBytes += v.length;
      else if (Buffer.isBuffer(v)) batchBytes += v.length;
    }
    batchRows++;
    count++;
    if (batchRows >= perInsert || batchBytes >= MAX_BATCH_BYTES) await flush();
  };
  if (toOrder.length) {
    const rows = stmt.all() as unknown[][];
    for (const row of orderSelfReferencing(rows, t, toOrder)) await add(row);
  } else {
    for (const row of stmt.iterate() as IterableIterator<unknown[]>) await add(row);
  }
  await flush();
  if (deferrableSelf.length) await exec(trx, 'set constraints all immediate');
  const sums = new Map<string, string>([['*', String(count)]]);
  cols.forEach((c, i) => sums.set(c.name, `${acc[i]![0]}/${acc[i]![1]}`));
  return { rows: count, sums };
}

/** Every serial or identity sequence past its column's copied maximum. */
async function resetSequences(trx: Transaction<any>): Promise<void> {
  const seqs = await rawRows<{ tbl: string; col: string; seq: string }>(trx, `
    select c.relname as tbl, a.attname as col, pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname) as seq
    from pg_attribute a
    join pg_class c on c.oid = a.attrelid
    join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = current_schema() and c.relkind in ('r', 'p') and a.attnum > 0 and not a.attisdropped
      and pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname) is not null`);
  for (const s of seqs) {
    if (BOOKKEEPING_TABLES.has(s.tbl)) continue;
    await exec(trx, `select (case when m is null then setval($1::regclass, (select seqmin from pg_sequence where seqrelid = $1::regclass), false)
      else setval($1::regclass, m, true) end)::text from (select max(${q(s.col)})::bigint as m from ${q(s.tbl)}) x`, [s.seq]);
  }
}

/** Before commit: each table's rows and column measures on the target equal the source's. */
async function verify(trx: Transaction<any>, tables: Table[], expected: Map<string, Map<string, string>>): Promise<void> {
  const wrong: string[] = [];
  for (const t of tables) {
    const exp = expected.get(t.name)!;
    const parts = ['count(*)::text as "*"'];
    for (const c of t.columns) parts.push(`count(${q(c.name)})::text || '/' || ${measureSql(c)} as ${q(c.name)}`);
    const [got] = await rawRows<Record<string, string>>(trx, `select ${parts.join(', ')} from ${q(t.name)}`);
    for (const [k, v] of exp) {
      if (got?.[k] !== v) wrong.push(`${t.name}.${k}: source ${v}, target ${got?.[k]}`);
    }
  }
  if (wrong.length) throw new Error(`the copy does not match the source (rolled back): ${wrong.slice(0, 10).join('; ')}`);
}
