/**
 * A throwaway PostgreSQL server for tests and benchmarks: initdb into a temp folder,
 * listening on 127.0.0.1 only, on a free port; stop() shuts it down and deletes the folder.
 * initdb refuses to run as root, so as root it runs as the `postgres` system user.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
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

/** Ms given to a signal that came during a synchronous step (initdb, pg_ctl) to reach its listener. */
const SIGNAL_SETTLE_MS = 20;

export async function startPgServer(): Promise<PgServer> {
  const bin = binDir();
  const isRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-pg-'));
  const data = join(dir, 'data');
  const uid = isRoot ? Number(execFileSync('id', ['-u', 'postgres']).toString().trim()) : -1;
  const gid = isRoot ? Number(execFileSync('id', ['-g', 'postgres']).toString().trim()) : -1;
  if (isRoot) chownSync(dir, uid, gid);
  const run = (cmd: string, args: string[]): void => {
    const [file, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]] : [join(bin, cmd), args];
    execFileSync(file, argv, { stdio: ['ignore', 'ignore', 'inherit'], cwd: dir });
  };
  /** Stop the server if one is running in the folder, then remove the folder. */
  const remove = (): void => {
    try {
      if (existsSync(join(data, 'postmaster.pid'))) {
        try { run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']); } catch { run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']); }
      }
    } catch {
      // No server answers for the pid file (it died with the signal): nothing to stop.
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  // A stop signal while starting (Ctrl-C during initdb, a runner's timeout) would otherwise end the
  // process at once, leaving the folder and perhaps a running server. It is noted (a synchronous
  // step runs to its end first), then the server and the folder go, and the process exits as
  // onStopSignal's would. Once started, the caller's own handler (onStopSignal) takes over.
  let signalled: NodeJS.Signals | null = null;
  const note = (sig: NodeJS.Signals): void => { signalled ??= sig; };
  const exitIfSignalled = async (): Promise<void> => {
    await new Promise((resolve) => setTimeout(resolve, SIGNAL_SETTLE_MS));
    if (signalled === null) return;
    remove();
    process.exit(signalled === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', note);
  process.on('SIGTERM', note);
  let port: number;
  try {
    try {
      run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
      port = await freePort();
      await exitIfSignalled();
      const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
      run('pg_ctl', ['-D', data, '-o', opts, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start']);
      await exitIfSignalled();
    } catch (err) {
      // A step failed, perhaps because Ctrl-C reached it too: exit as for the signal, else report the failure.
      await exitIfSignalled();
      remove();
      throw err;
    }
  } finally {
    process.off('SIGINT', note);
    process.off('SIGTERM', note);
  }
  let stopped = false;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop() {
      if (stopped) return;
      stopped = true;
      try { run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']); } finally { rmSync(dir, { recursive: true, force: true }); }
    },
  };
}
