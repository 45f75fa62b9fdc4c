/**
 * The test suite: starts a throwaway PostgreSQL server on 127.0.0.1, runs every
 * test/**\/*.test.ts file with node's test runner (through tsx), stops the server, and
 * fails when a test failed, when no test ran, or when no Postgres test ran.
 * Extra arguments narrow the files: `npm test -- test/money.test.ts`.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { startPgServer } from './pg-server.ts';

const root = join(import.meta.dirname, '..');

function collect(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...collect(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const args = process.argv.slice(2);
const files = (args.length ? args.map((a) => join(process.cwd(), a)) : collect(join(root, 'test'))).map((f) => relative(root, f));
if (files.length === 0) { console.error('no test files found'); process.exit(1); }

// Stopped by a signal (Ctrl-C, a CI runner's timeout): the tests stop, then the server too.
// Listening from before the server starts: startPgServer handles a signal while it starts
// (nothing of it is left), and this listener one from then on.
let stoppedBy: NodeJS.Signals | null = null;
let child: ChildProcess | null = null;
const onSignal = (signal: NodeJS.Signals) => { stoppedBy = signal; child?.kill(signal); };
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
const pgServer = await startPgServer({ callerHandlesSignals: true });
const work = mkdtempSync(join(tmpdir(), 'lexbill-test-'));
const marker = join(work, 'pg-marker');
const tap = join(work, 'report.tap');
let status = 1;
try {
  // A signal while the server started ended the process there (startPgServer); from here on,
  // onSignal stops the tests (child is set before the next turn of the event loop).
  child = spawn(process.execPath, [
    '--import', 'tsx', '--test', '--test-concurrency=2',
    '--test-reporter=spec', '--test-reporter-destination=stdout',
    '--test-reporter=tap', `--test-reporter-destination=${tap}`,
    ...files,
  ], { cwd: root, stdio: 'inherit', env: { ...process.env, TZ: 'UTC', LEXBILL_TEST_PG_URL: pgServer.url, LEXBILL_PG_MARKER: marker, LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent' } });
  const running = child;
  status = await new Promise<number>((resolve) => {
    running.on('error', () => resolve(1));
    running.on('exit', (code) => resolve(code ?? 1));
  });
} finally {
  pgServer.stop();
}
if (stoppedBy) {
  rmSync(work, { recursive: true, force: true });
  console.error(`lexbill: stopped by ${stoppedBy}`);
  process.exit(stoppedBy === 'SIGINT' ? 130 : 143);
}
const report = existsSync(tap) ? readFileSync(tap, 'utf8') : '';
const count = (k: string): number => Number(new RegExp(`^# ${k} (\\d+)$`, 'm').exec(report)?.[1] ?? 0);
const pgRuns = existsSync(marker) ? readFileSync(marker, 'utf8').length : 0;
rmSync(work, { recursive: true, force: true });
const [pass, fail] = [count('pass'), count('fail')];
console.log(`\nlexbill: ${count('tests')} tests, ${pgRuns} on PostgreSQL`);
if (pass + fail === 0) { console.error('lexbill: no test executed: failing the run'); process.exit(1); }
if (args.length === 0 && pgRuns === 0) { console.error('lexbill: no PostgreSQL test ran: failing the run'); process.exit(1); }
process.exit(status);
