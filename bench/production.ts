/**
 * Producing 1,000 bills (issue 5): final PDF rendered by Chromium and stored in the
 * database, print files for the matters that ask for copies, file-drop email for those
 * with send-to addresses, each bill finalised through the `finalise` command (its event
 * delivered by the relay meanwhile). SQLite and Postgres; median of runs.
 *
 * Setup (not timed): the demo firm (seed-demo's `seedDemoFirm`) with enough matters, one
 * draft each through the real composer, approved; between runs the bills are put back to
 * approved and their production state cleared with plain SQL (bench-only shortcut).
 *
 * Baseline, same run, same Chromium settings: rendering one blank page, one at a time on a
 * warm browser; the figure is the median per-page time x 1000.
 * Memory: the Node process's peak RSS during the runs, and Chromium's own (the PSS of all its
 * processes, sampled every second of a run), reported apart. At most MAX_RUNS runs per database.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import pino from 'pino';
import { migrateToLatest, openDatabase } from '../src/adapters/db/index.ts';
import { createFileDropMailer } from '../src/adapters/mail/file-drop.ts';
import { createSecretBox } from '../src/adapters/secrets.ts';
import { outputsConfigFromEnv } from '../src/adapters/outputs.ts';
import { createChromiumPdf } from '../src/adapters/pdf/chromium.ts';
import type { ChromiumPdfRenderer } from '../src/adapters/pdf/chromium.ts';
import { createFolderPrint } from '../src/adapters/print/folder.ts';
import { prng } from '../src/cli/demo.ts';
import { buildRuntime } from '../src/main.ts';
import { createBillingCommands, createProduction, PRODUCE_CONCURRENCY } from '../src/modules/billing/index.ts';
import { createMattersCommands, seedDemoFirm } from '../src/modules/matters/index.ts';
import { onStopSignal, startPgServer } from '../scripts/pg-server.ts';
import { manualClock } from '../src/shared/clock.ts';
import type { Database } from '../src/shared/db.ts';
import { systemContext } from '../src/shared/events.ts';
import type { Outputs } from '../src/shared/ports.ts';

export const PRODUCTION_BILLS = 1_000;
/** The app's default (production.ts) unless told. */
const CONCURRENCY = Number(process.env.BENCH_PRODUCE_CONCURRENCY ?? PRODUCE_CONCURRENCY);
/** The app's own PDF settings (the same PDF_* variables, see the README); BENCH_PDF_POOL overrides the pool size. */
const PDF = outputsConfigFromEnv(process.env, tmpdir());
/** The app's default (PDF_POOL_SIZE, see the README) unless told. */
const POOL_SIZE = Number(process.env.BENCH_PDF_POOL ?? PDF.pdfPoolSize);

/** Each run produces 1,000 bills (about a minute here): at most this many runs per database. */
const MAX_RUNS = 3;

type Report = (name: string, dialect: string, count: number, ms: number[], baselineMs: number[], baselineName: string) => void;

export interface ProductionBenchOptions {
  runs: number;
  dir: string;
  pgUrl: string;
  timeMs: (fn: () => Promise<void> | void) => Promise<number>;
  report: Report;
  /** Only these databases (default both). */
  dialects?: readonly ('sqlite' | 'postgres')[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Memory of every process of the Chromium whose profile directory is given (MB): the
 * proportional set size (shared pages split between the processes sharing them), since a
 * plain sum of RSS counts Chromium's shared memory once per process.
 */
function chromiumPssMb(profile: string | undefined): number {
  if (!profile) return 0;
  let kb = 0;
  // Straight from /proc: spawning `ps` from this process (about 350 MB of Node) blocked the event
  // loop for about 19 ms a sample here (median of 10), once a second inside the timed run.
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(profile)) continue;
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
      kb += Number(m?.[1] ?? 0);
    } catch {
      // gone meanwhile
    }
  }
  return Math.round(kb / 1024);
}

async function openSqlite(dir: string, name: string): Promise<Database> {
  const d = openDatabase(`sqlite:${join(dir, `${name}.db`)}`);
  await migrateToLatest(d.db);
  return d;
}

async function openPostgres(pgUrl: string, name: string): Promise<Database> {
  const admin = new pg.Client({ connectionString: pgUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const d = openDatabase(pgUrl.replace(/\/postgres$/, `/${name}`));
  await migrateToLatest(d.db);
  return d;
}

async function benchDialect(o: ProductionBenchOptions, dialect: 'sqlite' | 'postgres', database: Database, pdf: ChromiumPdfRenderer): Promise<void> {
  const out = join(o.dir, `production-${dialect}`);
  const mailDir = join(out, 'mail');
  const printDir = join(out, 'print');
  const mailer = createFileDropMailer({ dir: mailDir });
  // File-drop as the server's fixed transport (no choice on the settings page is read into it).
  const outputs: Outputs = {
    pdf: { render: (html, opts) => pdf.render(html, opts), close: async () => undefined },
    mailer, print: createFolderPrint({ dir: printDir }), mailFrom: 'billing@bench.example',
    mailFixedByServer: true, mailerFor: () => mailer, secrets: createSecretBox({ file: join(out, 'secret.key') }),
    describe: () => [], close: async () => undefined,
  };
  const logger = pino({ level: 'silent' });
  const clock = manualClock('2026-06-30T09:00:00Z');
  const rt = await buildRuntime(database, { clock, logger, outputs });
  const ctx = systemContext(`bench-production-${dialect}`, 'bench');
  try {
    // Setup: the demo firm, one approved bill per matter until there are 1,000.
    const matters = createMattersCommands({ db: database.db, clock, relay: rt.relay });
    await seedDemoFirm(matters, { matters: Math.ceil(PRODUCTION_BILLS * 1.3), entriesPerMatter: 6, seed: 42, random: prng });
    await rt.relay.drain(60_000);
    const billing = createBillingCommands({ db: database.db, clock, relay: rt.relay });
    const ids: string[] = [];
    const candidates = await database.db.selectFrom('billing_matter').select('id').orderBy('file_number').execute() as { id: string }[];
    for (const { id } of candidates) {
      if (ids.length >= PRODUCTION_BILLS) break;
      try {
        const d = await billing.createDraft(ctx, { matterId: id, invoiceDate: '2026-06-30', upTo: '2026-06-30' });
        ids.push((await billing.approve(ctx, d.billId)).billId);
      } catch {
        // Not billable (billing off, nothing to bill): the next matter.
      }
    }
    if (ids.length < PRODUCTION_BILLS) throw new Error(`only ${ids.length} bills could be approved`);
    await rt.relay.drain(60_000);
    const production = createProduction({ db: database.db, clock, logger, outputs }, billing);

    const ms: number[] = [];
    /** CPU time of this Node process (all its threads) during each run: the rest of the machine's is Chromium's (and the disk's). */
    const nodeCpuMs: number[] = [];
    let peakRss = 0;
    let chromeRss = 0;
    let printed = 0;
    let mailed = 0;
    for (let run = 0; run < Math.min(o.runs, MAX_RUNS); run++) {
      // Back to approved, nothing produced (bench-only shortcut; the clock moves so the cycle is new).
      clock.advanceMs(60_000);
      const at = clock.now().toISOString();
      for (let i = 0; i < ids.length; i += 500) {
        await database.db.updateTable('billing_bill').set({ status: 'approved', finalised_at: null, approved_at: at }).where('id', 'in', ids.slice(i, i + 500)).execute();
      }
      for (const t of ['billing_bill_pdf', 'billing_bill_production', 'billing_production_run_item', 'billing_production_run']) await database.db.deleteFrom(t).execute();
      rmSync(out, { recursive: true, force: true });
      mkdirSync(out, { recursive: true });
      await rt.relay.drain(60_000);

      const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss); }, 100);
      // Chromium's memory through the run (its browser is replaced every PDF_RESTART_EVERY documents).
      const chromeSampler = setInterval(() => { chromeRss = Math.max(chromeRss, chromiumPssMb(pdf.profileDir())); }, 1_000);
      let failed = 0;
      const cpu0 = process.cpuUsage();
      ms.push(await o.timeMs(async () => {
        const r = await production.produceBills(ctx, ids, { concurrency: CONCURRENCY });
        failed = r.failed + r.busy;
      }));
      const cpu = process.cpuUsage(cpu0);
      nodeCpuMs.push((cpu.user + cpu.system) / 1000);
      clearInterval(sampler);
      clearInterval(chromeSampler);
      chromeRss = Math.max(chromeRss, chromiumPssMb(pdf.profileDir()));
      if (failed > 0) throw new Error(`${failed} bills failed`);
      // The files a print server or a pickup service would take (not the adapters' hidden records).
      printed = filesOf(printDir, '.pdf').length;
      mailed = filesOf(mailDir, '.eml').length;
    }
    const finalised = await database.db.selectFrom('billing_bill').select((eb) => eb.fn.countAll<number>().as('n')).where('id', 'in', ids.slice(0, 500)).where('status', '=', 'finalised').executeTakeFirstOrThrow();
    if (Number(finalised.n) !== Math.min(500, ids.length)) throw new Error('bills were not finalised');

    // Baseline: a blank page, one at a time, warm browser; median per page x 1000.
    const blank: number[] = [];
    for (let i = 0; i < 40; i++) blank.push(await o.timeMs(async () => { await pdf.render('<!doctype html><html><body></body></html>'); }));
    const perPage = median(blank.slice(5));
    o.report(`produce ${PRODUCTION_BILLS} bills (pdf+mail+print)`, dialect, PRODUCTION_BILLS, ms, [perPage * PRODUCTION_BILLS], 'blank page x1000');
    console.log(`  ${dialect}: median ${(median(ms) / 1000).toFixed(1)} s for ${PRODUCTION_BILLS} bills (target <= 30 s); runs ${ms.map((m) => (m / 1000).toFixed(1)).join(', ')} s; `
      + `pool ${POOL_SIZE} tabs, browser replaced every ${PDF.pdfRestartEvery} documents, ${CONCURRENCY} bills at once; ${printed} print files, ${mailed} emails in the last run; `
      + `final PDFs printed up to ${PDF.pdfCombineMax} at a time (so far ${pdf.stats.combinedDocuments} bills in ${pdf.stats.combined} combined renders, ${pdf.stats.combineFellBack} fell back to one by one); Node CPU ${(median(nodeCpuMs) / 1000).toFixed(1)} s of the run; peak Node RSS ${Math.round(peakRss / 1e6)} MB, Chromium PSS ${chromeRss} MB; blank page ${perPage.toFixed(1)} ms`);
    const sample = filesOf(mailDir, '.eml')[0];
    if (sample && !readFileSync(join(mailDir, sample), 'utf8').includes('application/pdf')) throw new Error('an email without its PDF');
  } finally {
    await rt.relay.stop();
  }
}

/** The files in a folder with this ending (hidden names and folders left out). */
function filesOf(dir: string, ending: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile() && !e.name.startsWith('.') && e.name.endsWith(ending)).map((e) => e.name);
}

/** Run the production benchmark on SQLite and Postgres (called from bench/run.ts). */
export async function productionBench(o: ProductionBenchOptions): Promise<void> {
  const pdf = createChromiumPdf({
    executablePath: PDF.chromiumPath, poolSize: POOL_SIZE, timeoutMs: PDF.pdfTimeoutMs, restartEvery: PDF.pdfRestartEvery, tagged: PDF.pdfTagged, singleProcess: PDF.pdfSingleProcess, combineMax: PDF.pdfCombineMax,
  });
  try {
    const dialects = o.dialects ?? ['sqlite', 'postgres'];
    if (dialects.includes('sqlite')) {
      const sqlite = await openSqlite(o.dir, 'production');
      try { await benchDialect(o, 'sqlite', sqlite, pdf); } finally { await sqlite.close(); }
    }
    if (dialects.includes('postgres')) {
      const postgres = await openPostgres(o.pgUrl, 'bench_production');
      try { await benchDialect(o, 'postgres', postgres, pdf); } finally { await postgres.close(); }
    }
  } finally {
    await pdf.close();
  }
}

/**
 * Alone: `node --import tsx bench/production.ts [--runs N] [--json FILE] [--only sqlite|postgres]` runs only this
 * benchmark (a throwaway Postgres on 127.0.0.1, SQLite in a temp folder), for tuning it.
 */
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // As the app's process and bench/run.ts do.
  (await import('../src/shared/heap.ts')).keepHeapSmall();
  const { values } = parseArgs({ options: { runs: { type: 'string' }, json: { type: 'string' }, only: { type: 'string' } } });
  if (values.only !== undefined && values.only !== 'sqlite' && values.only !== 'postgres') throw new Error('--only takes sqlite or postgres');
  const runs = Number(values.runs ?? MAX_RUNS);
  const results: Record<string, unknown>[] = [];
  const pgServer = values.only === 'sqlite' ? null : await startPgServer({ callerHandlesSignals: true });
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-bench-production-'));
  // Stopped by Ctrl-C (or a runner's timeout): the throwaway server and the folder go too.
  onStopSignal(() => { try { pgServer?.stop(); } finally { rmSync(dir, { recursive: true, force: true }); } });
  try {
    await productionBench({
      runs, dir, pgUrl: pgServer?.url ?? '', ...(values.only ? { dialects: [values.only as 'sqlite' | 'postgres'] } : {}),
      timeMs: async (fn) => { const t = performance.now(); await fn(); return performance.now() - t; },
      report: (name, dialect, count, ms, baselineMs, baselineName) => {
        const m = median(ms);
        const b = median(baselineMs);
        console.log(`${name.padEnd(34)} ${dialect.padEnd(8)} median ${(m / 1000).toFixed(1)} s | baseline (${baselineName}) ${(b / 1000).toFixed(1)} s  ratio ${(m / b).toFixed(2)}x`);
        results.push({ name, dialect, count, runs: ms.length, medianMs: Math.round(m), runsMs: ms.map(Math.round), baselineName, baselineMedianMs: Math.round(b), ratio: Number((m / b).toFixed(3)) });
      },
    });
  } finally {
    pgServer?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  if (values.json) writeFileSync(values.json, JSON.stringify({ runs, results }, null, 2));
}
