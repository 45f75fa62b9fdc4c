/**
 * Benchmarks (`npm run bench [-- --json FILE] [--runs N]`). Each figure is the median of
 * several runs, printed beside a baseline measured in the same run so the ratio shows.
 * SQLite uses a temporary file; Postgres a throwaway server on 127.0.0.1.
 *
 * Each part runs in a Node process of its own (this file again, with --part), the way a
 * firm's server runs one database: resident memory measured for Postgres bill runs is then
 * theirs, not what three SQLite runs (or the LEDES export) left behind in the same process.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import pino from 'pino';
import { migrateToLatest, openDatabase } from '../src/adapters/db/index.ts';
import { createBus } from '../src/shared/bus.ts';
import { systemClock } from '../src/shared/clock.ts';
import type { Database } from '../src/shared/db.ts';
import { systemContext } from '../src/shared/events.ts';
import { allocate } from '../src/shared/money.ts';
import { appendEvent, createRelay } from '../src/shared/outbox.ts';
import { billingBench } from './billing.ts';
import { onStopSignal, startPgServer } from '../scripts/pg-server.ts';
import { ledesBench } from './ledes.ts';
import { productionBench } from './production.ts';
import { keepHeapSmall } from '../src/shared/heap.ts';

// As the app's own process does (src/cli/main.ts): memory is measured as a firm's server would use it.
keepHeapSmall();

const { values } = parseArgs({
  options: {
    json: { type: 'string' }, runs: { type: 'string' },
    // Internal: the orchestrator starts each part with these.
    part: { type: 'string' }, 'pg-url': { type: 'string' }, dir: { type: 'string' }, out: { type: 'string' },
  },
});
const RUNS = Number(values.runs ?? 5);
if (!Number.isInteger(RUNS) || RUNS < 1 || RUNS > 50) throw new Error('--runs takes a whole number from 1 to 50');
const EVENTS = 20_000;
const results: Record<string, unknown>[] = [];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function timeMs(fn: () => Promise<void> | void): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

function report(name: string, dialect: string, count: number, ms: number[], baselineMs: number[], baselineName: string): void {
  const m = median(ms);
  const b = median(baselineMs);
  const perSec = Math.round(count / (m / 1000));
  const basePerSec = Math.round(count / (b / 1000));
  const rssMb = Math.round(process.memoryUsage().rss / 1e6);
  console.log(`${name.padEnd(34)} ${dialect.padEnd(8)} ${String(perSec).padStart(9)}/s  median ${m.toFixed(0)} ms  | baseline (${baselineName}) ${basePerSec}/s  ratio ${(m / b).toFixed(2)}x  rss ${rssMb} MB`);
  results.push({ name, dialect, count, runs: ms.length, medianMs: Math.round(m), perSecond: perSec, baselineName, baselineMedianMs: Math.round(b), baselinePerSecond: basePerSec, ratio: Number((m / b).toFixed(3)), rssMb });
}

async function outboxBench(open: () => Promise<{ database: Database; rawInsert: (n: number) => Promise<void>; cleanup: () => Promise<void> }>, dialect: string): Promise<void> {
  const append: number[] = [];
  const deliver: number[] = [];
  const raw: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const { database, rawInsert, cleanup } = await open();
    try {
      const bus = createBus();
      let seen = 0;
      bus.subscribe('bench.happened', 'bench.counter', async () => { seen++; });
      const relay = createRelay({ db: database.db, bus, clock: systemClock, logger: pino({ level: 'silent' }), batchSize: 1000 });
      const ctx = systemContext('bench');
      append.push(await timeMs(async () => {
        for (let i = 0; i < EVENTS; i += 1000) {
          await database.db.transaction().execute(async (trx) => {
            for (let j = i; j < i + 1000; j++) await appendEvent(trx, systemClock, ctx, 'bench.happened', { n: j });
          });
        }
      }));
      deliver.push(await timeMs(async () => { await relay.drain(10_000); }));
      if (seen !== EVENTS) throw new Error(`delivered ${seen} of ${EVENTS}`);
      raw.push(await timeMs(() => rawInsert(EVENTS)));
    } finally {
      await cleanup();
    }
  }
  report('outbox append (1000 per tx)', dialect, EVENTS, append, raw, 'raw prepared inserts');
  report('outbox relay delivery', dialect, EVENTS, deliver, raw, 'raw prepared inserts');
}

/** The parts, in the order they run; each in its own process. */
const PARTS: Record<string, (dir: string, pgUrl: string) => Promise<void>> = {
  // Kernel: exact allocation of a bill's fees over 50 timekeepers; e-billing: 100,000 LEDES 1998BI line items built and written (target: under one second).
  kernels: async () => {
    const weights = Array.from({ length: 50 }, (_, i) => 1000 + i * 37);
    const n = 200_000;
    const ms: number[] = [];
    const base: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      ms.push(await timeMs(() => { for (let i = 0; i < n; i++) allocate(123_456_789 + i, weights); }));
      base.push(await timeMs(() => { let s = 0; for (let i = 0; i < n; i++) for (const w of weights) s += Math.floor(((123_456_789 + i) * w) / 51_000); if (s < 0) throw new Error('x'); }));
    }
    report('allocate over 50 weights', 'memory', n, ms, base, 'float proportional split');
    const r = await ledesBench(RUNS, timeMs);
    report('LEDES export (100k line items)', 'memory', r.count, r.ms, r.baselineMs, 'join pre-formatted lines');
  },
  'outbox-sqlite': async (dir) => {
    let k = 0;
    await outboxBench(async () => {
      const file = join(dir, `bench-${k++}.db`);
      const database = openDatabase(`sqlite:${file}`);
      await migrateToLatest(database.db);
      return {
        database,
        async rawInsert(n) {
          const rawDb = new BetterSqlite3(file);
          rawDb.pragma('journal_mode = WAL');
          rawDb.pragma('synchronous = FULL');
          rawDb.exec('create table raw_bench (id text primary key, type text, payload text)');
          const stmt = rawDb.prepare('insert into raw_bench values (?, ?, ?)');
          const tx = rawDb.transaction((from: number) => { for (let j = from; j < from + 1000; j++) stmt.run(`id-${j}`, 'bench.happened', `{"n":${j}}`); });
          for (let i = 0; i < n; i += 1000) tx(i);
          rawDb.close();
        },
        cleanup: () => database.close(),
      };
    }, 'sqlite');
  },
  'outbox-postgres': async (_dir, pgUrl) => {
    let k = 0;
    await outboxBench(async () => {
      const name = `bench_${process.pid}_${k++}`;
      const admin = new pg.Client({ connectionString: pgUrl });
      await admin.connect();
      await admin.query(`create database ${name}`);
      await admin.end();
      const url = pgUrl.replace(/\/postgres$/, `/${name}`);
      const database = openDatabase(url);
      await migrateToLatest(database.db);
      return {
        database,
        async rawInsert(n) {
          const c = new pg.Client({ connectionString: url });
          await c.connect();
          await c.query('create table raw_bench (id text primary key, type text, payload text)');
          for (let i = 0; i < n; i += 1000) {
            await c.query('begin');
            for (let j = i; j < i + 1000; j++) await c.query({ name: 'ins', text: 'insert into raw_bench values ($1, $2, $3)', values: [`id-${j}`, 'bench.happened', `{"n":${j}}`] });
            await c.query('commit');
          }
          await c.end();
        },
        cleanup: () => database.close(),
      };
    }, 'postgres');
  },
  // Mass billing: draft 10,000 matters (~500,000 WIP items) and approve them (target: 100,000 items/s on SQLite).
  'billing-sqlite': (dir, pgUrl) => billingBench({ runs: RUNS, dir, pgUrl, report, dialects: ['sqlite'] }),
  'billing-postgres': (dir, pgUrl) => billingBench({ runs: RUNS, dir, pgUrl, report, dialects: ['postgres'] }),
  // Bill production: 1,000 bills with PDFs, print files and file-drop mail (target: 30 s or less).
  'production-sqlite': (dir, pgUrl) => productionBench({ runs: RUNS, dir, pgUrl, timeMs, report, dialects: ['sqlite'] }),
  'production-postgres': (dir, pgUrl) => productionBench({ runs: RUNS, dir, pgUrl, timeMs, report, dialects: ['postgres'] }),
};

if (values.part !== undefined) {
  // One part, started by the orchestrator below: its figures go to --out as JSON.
  const part = PARTS[values.part];
  if (!part || !values.dir || !values['pg-url'] || !values.out) throw new Error(`--part takes one of ${Object.keys(PARTS).join(', ')}, with --dir, --pg-url and --out`);
  await part(values.dir, values['pg-url']);
  writeFileSync(values.out, JSON.stringify(results));
} else {
  const pgServer = await startPgServer({ callerHandlesSignals: true });
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-bench-'));
  // Ctrl-C reaches the running part too; the server and the scratch folder go with us.
  onStopSignal(() => { try { pgServer.stop(); } finally { rmSync(dir, { recursive: true, force: true }); } });
  const all: unknown[] = [];
  try {
    for (const name of Object.keys(PARTS)) {
      const out = join(dir, `${name}.json`);
      const child = spawnSync(process.execPath, [...process.execArgv, import.meta.filename, '--part', name, '--runs', String(RUNS), '--dir', dir, '--pg-url', pgServer.url, '--out', out], { stdio: 'inherit' });
      if (child.status !== 0) throw new Error(`benchmark part ${name} failed (exit ${child.status ?? child.signal})`);
      all.push(...(JSON.parse(readFileSync(out, 'utf8')) as unknown[]));
    }
  } finally {
    pgServer.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  if (values.json) writeFileSync(values.json, JSON.stringify({ runs: RUNS, results: all }, null, 2));
}
