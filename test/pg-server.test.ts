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

/** Start a server in a child process with its own TMPDIR; send SIGTERM once `when` holds; return how it ended. */
async function signalWhen(when: (tmp: string, said: string) => boolean): Promise<{ code: number | null; tmp: string }> {
  const tmp = mkdtempSync(join(tmpdir(), 'lexbill-pgsig-'));
  // As root the server runs as the postgres user, who must reach its folder inside this one.
  chmodSync(tmp, 0o755);
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/support/pg-start-child.ts')], {
    cwd: root, env: { ...process.env, TMPDIR: tmp, HOLD_MS: String(WAIT_MS) }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  let said = '';
  child.stdout.on('data', (d: Buffer) => { said += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + WAIT_MS;
  while (!when(tmp, said)) {
    if (Date.now() > deadline || child.exitCode !== null) { child.kill('SIGKILL'); throw new Error(`the moment to signal never came (said: ${JSON.stringify(said)})`); }
    await new Promise((r) => setTimeout(r, 2));
  }
  child.kill('SIGTERM');
  return { code: await exited, tmp };
}

function assertNothingLeft(tmp: string): void {
  try {
    assert.deepEqual(serverFolders(tmp), [], 'no server folder is left');
    assert.deepEqual(processesNaming(tmp), [], 'no server is left running');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const inServerFolder = (tmp: string, path: string): boolean => serverFolders(tmp).some((f) => existsSync(join(tmp, f, path)));

test('a stop signal while initdb runs: the process exits 143, leaving no folder', async () => {
  const { code, tmp } = await signalWhen((t) => inServerFolder(t, 'data'));
  assert.equal(code, 143);
  assertNothingLeft(tmp);
});

test('a stop signal while the server starts (its pid file written): the process exits 143, leaving no folder and no server', async () => {
  const { code, tmp } = await signalWhen((t) => inServerFolder(t, 'data/postmaster.pid'));
  assert.equal(code, 143);
  assertNothingLeft(tmp);
});

test('a stop signal once the server is up: onStopSignal stops it and the process exits 143', async () => {
  const { code, tmp } = await signalWhen((_t, said) => said.includes('up'));
  assert.equal(code, 143);
  assertNothingLeft(tmp);
});
