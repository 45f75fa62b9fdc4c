import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DIALECTS, freshDatabase } from './support/db.ts';
import { resolveApiToken } from '../src/web/auth/service.ts';
import { systemClock } from '../src/shared/clock.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'lexbill');

for (const dialect of DIALECTS) {
  test(`bin/lexbill manages users, tokens and the demo firm from any directory [${dialect}]`, { timeout: 180_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lexbill-cli-'));
    const db = await freshDatabase(dialect, { file: join(dir, 'cli.db') });
    const run = (args: string[], input = '') => {
      // cwd is a foreign folder: the CLI must find its own code and migrations
      const r = spawnSync(BIN, args, { cwd: dir, input, encoding: 'utf8', env: { ...process.env, DATABASE_URL: db.url, LOG_LEVEL: 'silent' } });
      return { code: r.status, out: r.stdout, err: r.stderr };
    };
    try {
      let r = run(['migrate']);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /up to date/);

      r = run(['user', 'add', '--email', 'Clerk@Firm.test', '--role', 'billing', '--name', 'Casey Clerk'], 'a-long-enough-password\n');
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /Created billing account clerk@firm\.test/);
      const user = await db.db.selectFrom('auth_user').selectAll().where('email', '=', 'clerk@firm.test').executeTakeFirstOrThrow();
      assert.equal(user.name, 'Casey Clerk');

      r = run(['user', 'add', '--email', 'x@firm.test', '--role', 'boss'], 'a-long-enough-password\n');
      assert.equal(r.code, 2);
      assert.match(r.err, /--role must be one of: admin, billing, timekeeper, readonly/);

      r = run(['user', 'add', '--email', 'y@firm.test', '--role', 'readonly'], 'short\n');
      assert.equal(r.code, 1);
      assert.match(r.err, /password must be at least 12 characters/);
      assert.equal((await db.db.selectFrom('auth_user').select('id').execute()).length, 1, 'refused adds change nothing');

      r = run(['user', 'token', '--email', 'clerk@firm.test']);
      assert.equal(r.code, 0, r.err);
      const token = r.out.trim();
      assert.match(token, /^lbt_[A-Za-z0-9_-]{43}$/);
      const viaToken = await resolveApiToken({ db: db.db, clock: systemClock }, token);
      assert.equal(viaToken?.email, 'clerk@firm.test');

      const before = user.password_hash as string;
      r = run(['user', 'reset-password', '--email', 'clerk@firm.test'], 'another-long-password\n');
      assert.equal(r.code, 0, r.err);
      const after = await db.db.selectFrom('auth_user').select('password_hash').where('email', '=', 'clerk@firm.test').executeTakeFirstOrThrow();
      assert.notEqual(after.password_hash, before);
      // The reset revoked the token issued under the old password, in the same transaction.
      assert.equal(await resolveApiToken({ db: db.db, clock: systemClock }, token), null, 'the reset revoked the token');
      const actions = (await db.db.selectFrom('audit_log').select('action').orderBy('at').execute()).map((a) => a.action);
      assert.deepEqual(actions.filter((a) => a.startsWith('auth.')).slice(0, 2), ['auth.user_created', 'auth.api_token_created']);
      assert.deepEqual(actions.filter((a) => a.startsWith('auth.')).slice(2).sort(), ['auth.api_tokens_revoked', 'auth.password_reset']);

      // revoke-tokens ends every live token of the user, and says how many.
      const t1 = run(['user', 'token', '--email', 'clerk@firm.test', '--label', 'one']).out.trim();
      const t2 = run(['user', 'token', '--email', 'clerk@firm.test', '--label', 'two']).out.trim();
      assert.equal((await resolveApiToken({ db: db.db, clock: systemClock }, t1))?.email, 'clerk@firm.test');
      r = run(['user', 'revoke-tokens', '--email', 'Clerk@Firm.test']);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /Revoked 2 API token\(s\) for clerk@firm\.test/);
      for (const t of [t1, t2]) assert.equal(await resolveApiToken({ db: db.db, clock: systemClock }, t), null);
      const live = await db.db.selectFrom('auth_api_token').select('id').where('revoked_at', 'is', null).execute();
      assert.equal(live.length, 0, 'no live token is left');
      const revoked = await db.db.selectFrom('audit_log').select(['actor_label', 'after_json']).where('action', '=', 'auth.api_tokens_revoked').execute();
      assert.equal(revoked.length, 2);
      assert.ok(revoked.some((x) => x.actor_label === 'cli:revoke-tokens' && JSON.parse(x.after_json as string).tokenIds.length === 2));
      r = run(['user', 'revoke-tokens', '--email', 'clerk@firm.test']);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /Revoked 0 API token\(s\)/);
      r = run(['user', 'revoke-tokens', '--email', 'nobody@firm.test']);
      assert.equal(r.code, 1);
      assert.match(r.err, /email no account has this email/);
      r = run(['user', 'revoke-tokens']);
      assert.equal(r.code, 2);
      assert.match(r.err, /--email is required/);

      r = run(['seed-demo', '--matters', '3', '--entries-per-matter', '2', '--seed', '5']);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /3 matters, 6 time entries/);
      const matters = await db.db.selectFrom('matters_matter').select('file_number').execute();
      assert.equal(matters.length, 3);
      r = run(['seed-demo', '--matters', '3', '--seed', '5']);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /already present/);
      assert.equal((await db.db.selectFrom('matters_matter').select('id').execute()).length, 3, 'a second seed adds no matters');

      r = run(['seed-demo', '--matters', 'many']);
      assert.equal(r.code, 2);
      assert.match(r.err, /--matters must be a whole number/);

      r = run(['--help']);
      assert.equal(r.code, 0);
      assert.match(r.out, /user token --email E/);
      assert.match(r.out, /user revoke-tokens --email E/);
      r = run(['frobnicate']);
      assert.equal(r.code, 2);
      assert.match(r.err, /unknown command "frobnicate"/);
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
    if (dialect === 'postgres' && process.env.LEXBILL_PG_MARKER) {
      const { appendFileSync } = await import('node:fs');
      appendFileSync(process.env.LEXBILL_PG_MARKER, 'x');
    }
  });
}
