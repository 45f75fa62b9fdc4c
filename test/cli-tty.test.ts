/**
 * A password typed at a terminal for `user add` / `user reset-password` is not shown as it is
 * typed (the command runs under a pseudo-terminal from util-linux's `script`), and is stored.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DIALECTS, freshDatabase } from './support/db.ts';
import { verifyPassword } from '../src/web/auth/passwords.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'lexbill');

/** Runs the command on a terminal, types `typed` once it asks for the password, and gives back all the terminal showed. */
function onTerminal(args: string[], typed: string, env: NodeJS.ProcessEnv, cwd: string): Promise<{ code: number | null; screen: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn('script', ['-qec', [BIN, ...args].map((a) => `'${a}'`).join(' '), '/dev/null'], { cwd, env });
    let screen = '';
    let sent = false;
    c.stdout.on('data', (d: Buffer) => {
      screen += d.toString();
      if (!sent && screen.includes('Password (not shown; then Enter): ')) { sent = true; c.stdin.write(`${typed}\r`); }
    });
    c.stderr.on('data', (d: Buffer) => { screen += d.toString(); });
    c.on('error', reject);
    c.on('close', (code) => resolve({ code, screen }));
  });
}

for (const dialect of DIALECTS) {
  test(`a password typed at a terminal is not shown [${dialect}]`, { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lexbill-cli-tty-'));
    const db = await freshDatabase(dialect, { file: join(dir, 'cli.db') });
    const env = { ...process.env, DATABASE_URL: db.url, LOG_LEVEL: 'silent' };
    try {
      const added = await onTerminal(['user', 'add', '--email', 'tty@firm.test', '--role', 'billing'], 'Typed-at-a-terminal-1', env, dir);
      assert.equal(added.code, 0, added.screen);
      assert.match(added.screen, /Created billing account tty@firm\.test/);
      assert.doesNotMatch(added.screen, /Typed-at-a-terminal/, `the password is not shown:\n${added.screen}`);
      const reset = await onTerminal(['user', 'reset-password', '--email', 'tty@firm.test'], 'Another-typed-password-2', env, dir);
      assert.equal(reset.code, 0, reset.screen);
      assert.doesNotMatch(reset.screen, /Another-typed-password/, `not shown:\n${reset.screen}`);
      const row = await db.db.selectFrom('auth_user').select('password_hash').where('email', '=', 'tty@firm.test').executeTakeFirstOrThrow();
      assert.ok(await verifyPassword('Another-typed-password-2', String(row.password_hash)), 'the password typed is the one stored');
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
