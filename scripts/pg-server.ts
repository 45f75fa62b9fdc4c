/**
 * A throwaway PostgreSQL server for tests and benchmarks: initdb into a temp folder,
 * listening on 127.0.0.1 only, on a free port; stop() shuts it down and deletes the folder.
 * initdb refuses to run as root, so as root it runs as the `postgres` system user.
 */
import { execFile, execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PgServer {
  readonly url: string;
  stop(): void;
}

function binDir(): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base)
    ? readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)');
  return join(base, versions[0]!, 'bin');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/**
 * On SIGINT or SIGTERM (Ctrl-C, a runner's timeout): run `cleanUp` (stop the throwaway server,
 * remove a folder) and exit with 130 or 143. For the benchmarks, once they hold their server.
 */
export function onStopSignal(cleanUp: () => void): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      try { cleanUp(); } finally { process.exit(sig === 'SIGINT' ? 130 : 143); }
    });
  }
}

/** Ms given to a signal to reach its listener after a step it stopped (the step's own exit can come first). */
const SIGNAL_SETTLE_MS = 20;
/** How long a server whose pg_ctl start was stopped part way gets to write its pid (so it can be stopped). */
const PID_FILE_WAIT_MS = 2_000;

const exitCodeOf = (sig: NodeJS.Signals): number => (sig === 'SIGINT' ? 130 : 143);

/** The server's pid from its pid file once the postmaster wrote it (initdb's own backends write a negative one), else null. */
function postmasterPid(pidFile: string): number | null {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Start a throwaway server. A stop signal (Ctrl-C, a runner's SIGTERM) while it starts is
 * handled here: the running step is told to stop (initdb stops at the end of its current
 * phase; as root, runuser passes the signal on and waits 2 s before killing), a server that
 * got as far as starting is stopped, the folder removed, and the process exits 130 or 143.
 * Once started, the same happens on a signal, unless `callerHandlesSignals`: then the caller
 * has its own listener (onStopSignal, the test runner's), installed before its next await,
 * which calls stop().
 */
export async function startPgServer(opts: { callerHandlesSignals?: boolean } = {}): Promise<PgServer> {
  const bin = binDir();
  const isRoot = process.getuid?.() === 0;
  let signalled: NodeJS.Signals | null = null;
  let started = false;
  let step: ChildProcess | null = null;
  let dir: string | null = null;
  let startAttempted = false;
  const args = (cmd: string, rest: string[]): [string, string[]] => (isRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...rest]] : [join(bin, cmd), rest]);
  const runSync = (cmd: string, rest: string[]): void => {
    const [file, argv] = args(cmd, rest);
    execFileSync(file, argv, { stdio: ['ignore', 'ignore', 'inherit'], cwd: dir! });
  };
  // A step the signal listener can stop (execFileSync would hold the process until it ended).
  const run = (cmd: string, rest: string[]): Promise<void> => new Promise((resolve, reject) => {
    const [file, argv] = args(cmd, rest);
    step = execFile(file, argv, { cwd: dir! }, (err, _out, errText) => {
      step = null;
      if (err) reject(new Error(`${cmd} failed: ${err.message}${errText ? `\n${errText}` : ''}`));
      else resolve();
    });
  });
  const data = (): string => join(dir!, 'data');
  /** Stop a server running in the folder (if any), then remove the folder. */
  const remove = (): void => {
    if (dir === null) return;
    try {
      const pidFile = join(data(), 'postmaster.pid');
      // pg_ctl stopped part way by the signal may have started the server (in a session of its own) before it wrote its pid.
      const pause = new Int32Array(new SharedArrayBuffer(4));
      for (const until = Date.now() + PID_FILE_WAIT_MS; startAttempted && signalled !== null && postmasterPid(pidFile) === null && Date.now() < until;) Atomics.wait(pause, 0, 0, 50);
      if (existsSync(pidFile)) {
        try { runSync('pg_ctl', ['-D', data(), '-m', 'fast', '-w', 'stop']); } catch { runSync('pg_ctl', ['-D', data(), '-m', 'immediate', '-w', 'stop']); }
      }
    } catch {
      // No server answers for the pid file (it died with the signal): nothing to stop.
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    if (started) {
      // Up: the caller's own listener stops the server, if the caller said it has one.
      if (opts.callerHandlesSignals) return;
      try { remove(); } finally { process.exit(exitCodeOf(sig)); }
    }
    signalled ??= sig;
    step?.kill('SIGTERM');
  };
  const exitIfSignalled = async (): Promise<void> => {
    await new Promise((resolve) => setTimeout(resolve, SIGNAL_SETTLE_MS));
    if (signalled === null) return;
    try { remove(); } finally { process.exit(exitCodeOf(signalled)); }
  };
  const listen = (on: boolean): void => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) { if (on) process.on(sig, onSignal); else process.off(sig, onSignal); }
  };
  listen(true);
  let port: number;
  try {
    dir = mkdtempSync(join(tmpdir(), 'lexbill-pg-'));
    if (isRoot) {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
      chownSync(dir, uid, gid);
    }
    await run('initdb', ['-D', data(), '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
    port = await freePort();
    await exitIfSignalled();
    const serverOptions = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
    startAttempted = true;
    await run('pg_ctl', ['-D', data(), '-o', serverOptions, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start']);
    await exitIfSignalled();
  } catch (err) {
    // A step failed, perhaps stopped by the signal: exit as for the signal, else report the failure.
    await exitIfSignalled();
    try { remove(); } finally { listen(false); }
    throw err;
  }
  started = true;
  const folder = dir;
  const dataDir = data();
  let stopped = false;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop() {
      if (stopped) return;
      stopped = true;
      listen(false);
      try { runSync('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', 'stop']); } finally { rmSync(folder, { recursive: true, force: true }); }
    },
  };
}
