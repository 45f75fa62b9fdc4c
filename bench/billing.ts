/**
 * Mass billing benchmark (issue 5): draft every eligible matter of a demo firm of 10,000
 * matters x 50 entries (~500,000 WIP items) in one run, deliver the drafting events (matters
 * marks the items as on a draft), and approve every draft; on SQLite and Postgres; median of
 * --runs; each beside a baseline measured in the same run: the same number of rows inserted
 * with raw prepared statements. Resident memory is sampled throughout (peak reported).
 *
 * The firm is seeded ONCE with the demo seeder (seed-demo: matters' commands, then the relay
 * delivering every event into billing's copy) and kept as a SQLite file in a cache folder
 * (LEXBILL_BENCH_CACHE, default <tmp>/lexbill-bench-cache), keyed by size, migrations, seeder and page size;
 * each run copies that file. Postgres gets the same rows copied into a template database
 * once per bench, and each run is `create database ... template` of it.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { migrateToLatest, openDatabase } from '../src/adapters/db/index.ts';
import { SQLITE_PAGE_BYTES } from '../src/adapters/db/sqlite.ts';
import { seedDemo } from '../src/cli/demo.ts';
import { buildRuntime } from '../src/main.ts';
import { createBillingCommands, createMassBilling } from '../src/modules/billing/index.ts';
import { systemClock } from '../src/shared/clock.ts';
import type { Database } from '../src/shared/db.ts';
import { systemContext } from '../src/shared/events.ts';

type Report = (name: string, dialect: string, count: number, ms: number[], baselineMs: number[], baselineName: string) => void;

export interface BillingBenchOptions {
  runs: number;
  /** Scratch folder for this bench (deleted by the caller). */
  dir: string;
  /** A Postgres server's URL (…/postgres), or null to skip Postgres. */
  pgUrl: string | null;
  report: Report;
  /** Which databases to run on (default both; Postgres only with pgUrl). */
  dialects?: readonly ('sqlite' | 'postgres')[];
  matters?: number;
  entriesPerMatter?: number;
}

const silent = pino({ level: 'silent' });
const MIGRATIONS_DIR = join(import.meta.dirname, '..', 'migrations');

/**
 * Peak resident memory while `fn` runs, sampled every 25 ms (the bulk paths yield to the
 * event loop between transactions, so the sampler runs on SQLite too), overall and per phase
 * (`fn` names the phase it is in).
 */
async function withRss<T>(fn: (phase: (name: string) => void) => Promise<T>): Promise<{ result: T; peakMb: number; phasesMb: Record<string, number>; peakHeapMb: number }> {
  let peak = process.memoryUsage().rss;
  // V8's heap (used and reserved) at the peak sample: the rest of RSS is native memory.
  let peakHeap = process.memoryUsage().heapTotal;
  const phases: Record<string, number> = {};
  let current = 'start';
  const sample = () => {
    const m = process.memoryUsage();
    if (m.rss > peak) { peak = m.rss; peakHeap = m.heapTotal; }
    phases[current] = Math.max(phases[current] ?? 0, m.rss);
  };
  const timer = setInterval(sample, 25);
  try {
    const result = await fn((name) => { sample(); current = name; sample(); });
    sample();
    return { result, peakMb: Math.round(peak / 1e6), peakHeapMb: Math.round(peakHeap / 1e6), phasesMb: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, Math.round(v / 1e6)])) };
  } finally {
    clearInterval(timer);
  }
}

/** Wall time of `fn`, and the CPU time this process spent meanwhile (user + system; SQLite works in-process, so its work counts; waiting on disk or on Postgres does not). */
async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; cpuMs: number; result: T }> {
  const t = performance.now();
  const cpu = process.cpuUsage();
  const result = await fn();
  const used = process.cpuUsage(cpu);
  return { ms: performance.now() - t, cpuMs: (used.user + used.system) / 1000, result };
}

/** The seeded firm as a SQLite file, made once and cached. */
export async function seededTemplate(matters: number, entries: number): Promise<string> {
  const cache = process.env.LEXBILL_BENCH_CACHE ?? join(tmpdir(), 'lexbill-bench-cache');
  mkdirSync(cache, { recursive: true });
  // Keyed by the migrations' contents (and the seeder's), so a changed schema or seeder never reuses a stale firm.
  const hash = createHash('sha256');
  for (const f of readdirSync(MIGRATIONS_DIR).filter((x) => x.endsWith('.ts')).sort()) hash.update(f).update(readFileSync(join(MIGRATIONS_DIR, f)));
  hash.update(readFileSync(join(import.meta.dirname, '..', 'src', 'cli', 'demo.ts')));
  // A template made with another page size would measure another layout than a new database gets.
  hash.update(`page_size ${SQLITE_PAGE_BYTES}`);
  const file = join(cache, `firm-${matters}x${entries}-seed1-${hash.digest('hex').slice(0, 16)}.db`);
  if (existsSync(file)) return file;
  const building = `${file}.building`;
  rmSync(building, { force: true });
  console.log(`seeding the demo firm (${matters} matters x ${entries} entries) once into ${file}; later runs reuse it`);
  const database = openDatabase(`sqlite:${building}`);
  await migrateToLatest(database.db);
  // Seeding is set-up, not measured: no fsync per commit while the firm is built (the file
  // is checkpointed whole before it is used). Every run then opens its copy as the app does.
  await sql`pragma synchronous = OFF`.execute(database.db);
  const rt = await buildRuntime(database, { logger: silent });
  const t = performance.now();
  await seedDemo(rt, { matters, entriesPerMatter: entries, seed: 1 });
  const seeded = performance.now();
  const drained = await rt.relay.drain(10_000_000);
  if (drained.pending > 0) throw new Error(`seeding left ${drained.pending} events undelivered`);
  console.log(`  seeded in ${Math.round((seeded - t) / 1000)} s, events delivered in ${Math.round((performance.now() - seeded) / 1000)} s`);
  await rt.close();
  const raw = new BetterSqlite3(building);
  raw.pragma('wal_checkpoint(TRUNCATE)');
  raw.pragma('journal_mode = DELETE');
  raw.close();
  renameSync(building, file);
  return file;
}

/**
 * Copy every table of the SQLite firm into a migrated Postgres database (the same rows),
 * except the history of seeding: the delivered events, the inbox and the audit log, which
 * drafting and approving never read.
 */
async function copyToPostgres(sqliteFile: string, url: string): Promise<void> {
  const src = new BetterSqlite3(sqliteFile, { readonly: true });
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query('set session_replication_role = replica');
    // Every table but the migrations' own record (the target is migrated already).
    const tables = (src.prepare(`select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name not like 'kysely_%' and name not like 'schema_migration%' and name not in ('outbox', 'inbox', 'outbox_delivery', 'audit_log')`).all() as { name: string }[]).map((t) => t.name);
    for (const table of tables) {
      const cols = (src.prepare(`pragma table_info("${table}")`).all() as { name: string }[]).map((r) => r.name);
      const per = Math.floor(30_000 / cols.length);
      let batch: unknown[][] = [];
      const flush = async () => {
        if (batch.length === 0) return;
        let p = 0;
        const values = batch.map(() => `(${cols.map(() => `$${++p}`).join(',')})`).join(',');
        await c.query(`insert into "${table}" (${cols.map((x) => `"${x}"`).join(',')}) values ${values}`, batch.flat());
        batch = [];
      };
      await c.query('begin');
      // Rows a migration put there (chart of accounts, settings) come with the copy.
      await c.query(`delete from "${table}"`);
      for (const row of src.prepare(`select * from "${table}"`).raw().iterate() as Iterable<unknown[]>) {
        batch.push(row);
        if (batch.length >= per) await flush();
      }
      await flush();
      await c.query('commit');
    }
    await c.query('analyze');
  } finally {
    await c.end();
    src.close();
  }
}

interface RunFigures {
  items: number;
  bills: number;
  draftMs: number;
  deliverMs: number;
  approveMs: number;
  draftRows: number;
  approveRows: number;
  rawDraftMs: number;
  rawApproveMs: number;
  peakMb: number;
  /** V8's heap (heapTotal, MB) when RSS peaked. */
  peakHeapMb: number;
  /** Peak RSS per phase (MB). */
  phasesMb: Record<string, number>;
  /** Events still pending after the drafting events were delivered (matters' per-item follow-ups). */
  followUps: number;
  /** CPU time of this process in each phase (steadier than wall time on a shared machine). */
  draftCpuMs: number;
  deliverCpuMs: number;
  approveCpuMs: number;
}

/** One run on an open copy of the firm: draft all, deliver, approve all; and the raw baselines. */
async function oneRun(database: Database, rawInsert: (rows: number) => Promise<number>): Promise<RunFigures> {
  const rt = await buildRuntime(database, { logger: silent });
  try {
    const db = database.db;
    const cmds = createBillingCommands({ db, clock: systemClock, relay: { kick() {} } });
    const mass = createMassBilling({ db, clock: systemClock, relay: { kick() {} } }, cmds);
    const maxDate = (await db.selectFrom('billing_wip').select((eb) => eb.fn.max('date').as('d')).executeTakeFirstOrThrow()) as { d: string };
    const date = maxDate.d;
    const ctx = systemContext(`bench-${Date.now()}`, 'bench');
    const count = async (table: string) => Number(((await db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()) as { n: unknown }).n);
    const tables = ['billing_bill', 'billing_bill_line', 'billing_bill_allocation', 'outbox', 'audit_log', 'billing_batch_matter'];
    const before = await Promise.all(tables.map(count));
    const { result: fig, peakMb, peakHeapMb, phasesMb } = await withRss(async (phase) => {
      // Drafting: one run over every eligible matter (the list is part of it).
      phase('drafting');
      const draft = await timed(async () => {
        const run = await mass.createRun(ctx, { invoiceDate: date, upTo: date });
        return mass.runBatch(ctx, run.id);
      });
      if (draft.result.status !== 'done') throw new Error(`run ${draft.result.status}: ${draft.result.error}`);
      const after = await Promise.all(tables.map(count));
      // Rows the drafting wrote (a bill's live lines hold its items: no WIP row is updated).
      const draftRows = after.reduce((s, n, i) => s + n - before[i]!, 0);
      // The relay delivering the drafting events: matters marks each bill's items as on a
      // draft. (Matters then publishes one wip_updated per item for billing's copy: that
      // follow-up is matters' and the copy's work, counted apart below, not in this figure.)
      const undelivered = async () => Number(((await db.selectFrom('outbox').select((eb) => eb.fn.countAll().as('n'))
        .where('type', '=', 'billing.bill_drafted').where('delivered_at', 'is', null).executeTakeFirstOrThrow()) as { n: unknown }).n);
      phase('delivery');
      const deliver = await timed(async () => {
        for (let pass = 0; pass < 100_000 && (await undelivered()) > 0; pass++) await rt.relay.runOnce();
      });
      if ((await undelivered()) > 0) throw new Error('drafting events left undelivered');
      const followUps = Number(((await db.selectFrom('outbox').select((eb) => eb.fn.countAll().as('n')).where('delivered_at', 'is', null).executeTakeFirstOrThrow()) as { n: unknown }).n);
      const ids = (await db.selectFrom('billing_bill').select('id').where('batch_id', '=', draft.result.id).execute()).map((r) => r.id as string);
      const beforeApprove = await Promise.all(['outbox', 'audit_log', 'billing_matter_sequence'].map(count));
      phase('approving');
      const approve = await timed(() => mass.approveMany(ctx, ids));
      const refused = approve.result.filter((a) => !a.ok).length;
      if (refused > 0) throw new Error(`${refused} bills refused approval`);
      const afterApprove = await Promise.all(['outbox', 'audit_log', 'billing_matter_sequence'].map(count));
      const approveRows = afterApprove.reduce((s, n, i) => s + n - beforeApprove[i]!, 0) + ids.length;
      return {
        items: draft.result.itemCount, bills: ids.length, draftMs: draft.ms, deliverMs: deliver.ms, approveMs: approve.ms, draftRows, approveRows, followUps,
        draftCpuMs: draft.cpuMs, deliverCpuMs: deliver.cpuMs, approveCpuMs: approve.cpuMs,
      };
    });
    const rawDraftMs = await rawInsert(fig.draftRows);
    const rawApproveMs = await rawInsert(fig.approveRows);
    return { ...fig, rawDraftMs, rawApproveMs, peakMb, peakHeapMb, phasesMb };
  } finally {
    await rt.close();
  }
}

/** Raw prepared inserts of `n` rows shaped like bill lines (10,000 per transaction), on SQLite. */
function rawSqlite(file: string) {
  return async (n: number): Promise<number> => {
    const raw = new BetterSqlite3(file);
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = FULL');
    raw.exec('drop table if exists raw_bench; create table raw_bench (id text primary key, bill_id text, line_no integer, description text, amount_minor integer, tax_minor integer, item_id text)');
    const stmt = raw.prepare('insert into raw_bench values (?, ?, ?, ?, ?, ?, ?)');
    const tx = raw.transaction((from: number, to: number) => { for (let j = from; j < to; j++) stmt.run(`row-${j}`, `bill-${j >> 6}`, j & 63, 'Work on the matter as recorded', j * 7, j, `item-${j}`); });
    const t = performance.now();
    for (let i = 0; i < n; i += 10_000) tx(i, Math.min(n, i + 10_000));
    const ms = performance.now() - t;
    raw.exec('drop table raw_bench');
    raw.close();
    return ms;
  };
}

/** The same on Postgres, with a prepared statement of 500 rows (one row per round trip would measure the network, not the database). */
function rawPostgres(url: string) {
  return async (n: number): Promise<number> => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query('drop table if exists raw_bench; create table raw_bench (id text primary key, bill_id text, line_no integer, description text, amount_minor bigint, tax_minor bigint, item_id text)');
    const PER = 500;
    const text = (k: number) => `insert into raw_bench values ${Array.from({ length: k }, (_, r) => `(${Array.from({ length: 7 }, (_, c2) => `$${r * 7 + c2 + 1}`).join(',')})`).join(',')}`;
    const full = text(PER);
    const t = performance.now();
    for (let i = 0; i < n; i += 10_000) {
      await c.query('begin');
      for (let j = i; j < Math.min(n, i + 10_000); j += PER) {
        const k = Math.min(PER, n - j, i + 10_000 - j);
        const values: unknown[] = [];
        for (let x = j; x < j + k; x++) values.push(`row-${x}`, `bill-${x >> 6}`, x & 63, 'Work on the matter as recorded', x * 7, x, `item-${x}`);
        await c.query(k === PER ? { name: 'raw-ins-500', text: full, values } : { text: text(k), values });
      }
      await c.query('commit');
    }
    const ms = performance.now() - t;
    await c.query('drop table raw_bench');
    await c.end();
    return ms;
  };
}

function summarise(dialect: string, runs: RunFigures[], report: Report): void {
  const items = runs[0]!.items;
  const bills = runs[0]!.bills;
  report(`draft ${bills} bills (items)`, dialect, items, runs.map((r) => r.draftMs), runs.map((r) => r.rawDraftMs), `raw inserts of the ${runs[0]!.draftRows} rows written`);
  report('  + relay delivers drafting events', dialect, items, runs.map((r) => r.deliverMs), runs.map((r) => r.rawDraftMs), 'raw inserts, as above');
  report('  drafting incl. delivery', dialect, items, runs.map((r) => r.draftMs + r.deliverMs), runs.map((r) => r.rawDraftMs), 'raw inserts, as above');
  report(`approve ${bills} bills (items)`, dialect, items, runs.map((r) => r.approveMs), runs.map((r) => r.rawApproveMs), `raw inserts of the ${runs[0]!.approveRows} rows written`);
  const cpu = (f: (r: RunFigures) => number) => Math.round(runs.map(f).sort((a, b) => a - b)[Math.floor(runs.length / 2)]!);
  console.log(`  ${dialect}: CPU time of this process (median): drafting ${cpu((r) => r.draftCpuMs)} ms, delivery ${cpu((r) => r.deliverCpuMs)} ms, approving ${cpu((r) => r.approveCpuMs)} ms`);
  console.log(`  ${dialect}: ${bills} bills, ${items} items; peak RSS during drafting, delivery and approving: ${Math.max(...runs.map((r) => r.peakMb))} MB (${['drafting', 'delivery', 'approving'].map((p) => `${p} ${Math.max(...runs.map((r) => r.phasesMb[p] ?? 0))}`).join(', ')}; each run's peak ${runs.map((r) => `${r.peakMb} (V8 heap ${r.peakHeapMb})`).join(', ')}); follow-up events left to the relay: ${runs[0]!.followUps}; MALLOC_ARENA_MAX ${process.env.MALLOC_ARENA_MAX ?? 'unset (glibc default)'}`);
}

export async function billingBench(o: BillingBenchOptions): Promise<void> {
  const matters = o.matters ?? 10_000;
  const entries = o.entriesPerMatter ?? 50;
  const template = await seededTemplate(matters, entries);
  const dialects = o.dialects ?? ['sqlite', 'postgres'];

  const sqliteRuns: RunFigures[] = [];
  for (let run = 0; run < (dialects.includes('sqlite') ? o.runs : 0); run++) {
    const file = join(o.dir, `billing-${run}.db`);
    copyFileSync(template, file);
    const database = openDatabase(`sqlite:${file}`);
    try {
      await migrateToLatest(database.db);
      // The copy (and any migration) written out before the clock starts, so the run's own
      // commits do not queue behind gigabytes of the copy's writeback.
      await sql`pragma wal_checkpoint(TRUNCATE)`.execute(database.db);
      execFileSync('sync');
      sqliteRuns.push(await oneRun(database, rawSqlite(join(o.dir, `raw-${run}.db`))));
    } finally {
      await database.close();
      for (const f of [file, `${file}-wal`, `${file}-shm`, join(o.dir, `raw-${run}.db`), join(o.dir, `raw-${run}.db-wal`), join(o.dir, `raw-${run}.db-shm`)]) rmSync(f, { force: true });
    }
  }
  if (sqliteRuns.length > 0) summarise('sqlite', sqliteRuns, o.report);

  if (!o.pgUrl || !dialects.includes('postgres')) return;
  const admin = new pg.Client({ connectionString: o.pgUrl });
  await admin.connect();
  try {
    const tpl = `billing_tpl_${process.pid}`;
    await admin.query(`create database ${tpl}`);
    const tplUrl = o.pgUrl.replace(/\/[^/]*$/, `/${tpl}`);
    const t0 = performance.now();
    {
      const d = openDatabase(tplUrl);
      await migrateToLatest(d.db);
      await d.close();
    }
    await copyToPostgres(template, tplUrl);
    console.log(`  postgres: firm copied into a template database in ${Math.round((performance.now() - t0) / 1000)} s`);
    const pgRuns: RunFigures[] = [];
    for (let run = 0; run < o.runs; run++) {
      const name = `billing_run_${process.pid}_${run}`;
      await admin.query(`create database ${name} template ${tpl}`);
      const url = o.pgUrl.replace(/\/[^/]*$/, `/${name}`);
      const database = openDatabase(url);
      execFileSync('sync');
      try {
        pgRuns.push(await oneRun(database, rawPostgres(url)));
      } finally {
        await database.close();
        await admin.query(`drop database ${name}`);
      }
    }
    await admin.query(`drop database ${tpl}`);
    summarise('postgres', pgRuns, o.report);
  } finally {
    await admin.end();
  }
}

// `node --import tsx bench/billing.ts [--matters N] [--entries M] [--runs R] [--only sqlite|postgres]`: this bench alone.
if (import.meta.url === `file://${process.argv[1]}`) {
  // As the app's process and bench/run.ts do.
  (await import('../src/shared/heap.ts')).keepHeapSmall();
  const { parseArgs } = await import('node:util');
  const { mkdtempSync } = await import('node:fs');
  const { onStopSignal, startPgServer } = await import('../scripts/pg-server.ts');
  const { values } = parseArgs({ options: { matters: { type: 'string' }, entries: { type: 'string' }, runs: { type: 'string' }, only: { type: 'string' } } });
  if (values.only !== undefined && values.only !== 'sqlite' && values.only !== 'postgres') throw new Error('--only takes sqlite or postgres');
  const only = values.only as 'sqlite' | 'postgres' | undefined;
  const server = only === 'sqlite' ? null : await startPgServer({ callerHandlesSignals: true });
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-billing-bench-'));
  onStopSignal(() => { try { server?.stop(); } finally { rmSync(dir, { recursive: true, force: true }); } });
  const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = Math.floor(s.length / 2); return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };
  const report: Report = (name, dialect, count, ms, base, baseName) => {
    const m = median(ms);
    const b = median(base);
    console.log(`${name.padEnd(36)} ${dialect.padEnd(8)} ${String(Math.round(count / (m / 1000))).padStart(9)}/s  median ${m.toFixed(0)} ms | baseline (${baseName}) ${Math.round(count / (b / 1000))}/s ratio ${(m / b).toFixed(2)}x rss ${Math.round(process.memoryUsage().rss / 1e6)} MB`);
  };
  try {
    await billingBench({ runs: Number(values.runs ?? 3), dir, pgUrl: server?.url ?? null, report, ...(only ? { dialects: [only] } : {}), matters: Number(values.matters ?? 10_000), entriesPerMatter: Number(values.entries ?? 50) });
  } finally {
    server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
