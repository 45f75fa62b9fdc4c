import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

// The throwaway PostgreSQL server the tests and benchmarks start (scripts/pg-server.ts): a stop
// signal at any moment of its start or its life leaves no folder and no server running.

const root = join(import.meta.dirname, '..');
const WAIT_MS = 60_000;

/** The process ids whose command line names `path` (the servers started in a test's folder). */
function processesNaming(path: string): number[] {
  const out: number[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(path)) out.push(Number(pid));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** The server folders (lexbill-pg-*) in `tmp`. */
const serverFolders = (tmp: string): string[] => readdirSync(tmp).filter((n) => n.startsWith('lexbill-pg-'));

/**
 * Start a server in a child process with its own TMPDIR; once `when` holds, send `signal` to
 * the child alone, or with `group` to its whole process group (as Ctrl-C in a terminal does:
 * initdb and pg_ctl get it too). Returns how the child ended and what it said.
 */
async function signalWhen(when: (tmp: string, said: string) => boolean, signal: NodeJS.Signals, opts: { group?: boolean; noCallerListener?: boolean } = {}): Promise<{ code: number | null; said: string; tmp: string }> {
  const tmp = mkdtempSync(join(tmpdir(), 'lexbill-pgsig-'));
  // As root the server runs as the postgres user, who must reach its folder inside this one.
  chmodSync(tmp, 0o755);
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/support/pg-start-child.ts')], {
    cwd: root, env: { ...process.env, TMPDIR: tmp, HOLD_MS: String(WAIT_MS), NO_CALLER_LISTENER: opts.noCallerListener ? '1' : '0' }, stdio: ['ignore', 'pipe', 'inherit'], detached: opts.group === true,
  });
  let said = '';
  child.stdout.on('data', (d: Buffer) => { said += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + WAIT_MS;
    while (!when(tmp, said)) {
      if (Date.now() > deadline || child.exitCode !== null || child.signalCode !== null) throw new Error(`the moment to signal never came (said: ${JSON.stringify(said)})`);
      await new Promise((r) => setTimeout(r, 2));
    }
    if (opts.group) process.kill(-child.pid!, signal); else child.kill(signal);
    // A child that hangs after the signal fails the test (and is killed below) instead of holding the suite.
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no exit ${WAIT_MS} ms after ${signal}`)), WAIT_MS); })]).finally(() => clearTimeout(timer));
    return { code, said, tmp };
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    leaveNothing(tmp);
    throw err;
  }
}

/** After a test: stop a server it left (by the PIDs naming its folder: this test's only), remove its folder. */
function leaveNothing(tmp: string): void {
  for (const pid of processesNaming(tmp)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  rmSync(tmp, { recursive: true, force: true });
}

/** What a stopped start must leave: no server folder, no server running (checked, then cleared whatever the outcome). */
function assertNothingLeft(tmp: string): void {
  assert.deepEqual(serverFolders(tmp), [], 'no server folder is left');
  assert.deepEqual(processesNaming(tmp), [], 'no server is left running');
}

const inServerFolder = (tmp: string, path: string): boolean => serverFolders(tmp).some((f) => existsSync(join(tmp, f, path)));
const duringInitdb = (t: string): boolean => inServerFolder(t, 'data');
/**
 * pg_ctl start has launched the postmaster: its log exists and the pid file names a positive PID
 * (initdb's standalone backends write postmaster.pid too, with a negative one).
 */
const duringStart = (t: string): boolean => serverFolders(t).some((f) => {
  if (!existsSync(join(t, f, 'server.log'))) return false;
  try {
    return Number(readFileSync(join(t, f, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]) > 0;
  } catch {
    return false;
  }
});

/** The child ended with `code`, before it was up when `whileStarting`, and left nothing (cleared whatever the outcome). */
function assertStopped(r: { code: number | null; said: string; tmp: string }, code: number, whileStarting: boolean): void {
  try {
    if (whileStarting) assert.equal(r.said.includes('up'), false, 'stopped while starting, not once up');
    assert.equal(r.code, code);
    assertNothingLeft(r.tmp);
  } finally {
    leaveNothing(r.tmp);
  }
}

const up = (_t: string, said: string): boolean => said.includes('up');

for (const [moment, when] of [['while initdb runs', duringInitdb], ['while pg_ctl starts the server (its pid written)', duringStart]] as const) {
  test(`SIGTERM to the process ${moment}: it exits 143 before the server is up, leaving no folder and no server`, async () => {
    assertStopped(await signalWhen(when, 'SIGTERM'), 143, true);
  });

  test(`Ctrl-C (SIGINT to the process group) ${moment}: it exits 130, leaving no folder and no server`, async () => {
    assertStopped(await signalWhen(when, 'SIGINT', { group: true }), 130, true);
  });
}

test('a stop signal once the server is up, no caller listening: startPgServer stops it and the process exits 143', async () => {
  assertStopped(await signalWhen(up, 'SIGTERM', { noCallerListener: true }), 143, false);
});

test('a stop signal once the server is up: onStopSignal stops it and the process exits 143', async () => {
  assertStopped(await signalWhen(up, 'SIGTERM'), 143, false);
});
