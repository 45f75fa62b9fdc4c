/**
 * Migrating is all or nothing, and two processes migrating one database at once both end
 * with the database migrated exactly once, on SQLite as on Postgres.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { migrateToLatest, openDatabase } from '../../src/adapters/db/index.ts';
import { MIGRATIONS_DIR } from '../../src/adapters/db/migrate.ts';
import type { Dialect } from '../../src/shared/db.ts';
import { blankPostgres } from '../support/db.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const MIGRATIONS = readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.ts')).map((f) => f.replace(/\.ts$/, '')).sort();

function recordPostgresRun(): void {
  const marker = process.env.LEXBILL_PG_MARKER;
  if (marker) appendMarker(marker);
}
function appendMarker(file: string): void {
  writeFileSync(file, 'x', { flag: 'a' });
}

/** An EMPTY (never migrated) database of the dialect; drop() removes it. */
async function emptyDatabase(dialect: Dialect, dir: string): Promise<{ url: string; drop(): Promise<void> }> {
  if (dialect === 'sqlite') return { url: `sqlite:${join(dir, `empty-${randomBytes(4).toString('hex')}.db`)}`, drop: async () => undefined };
  return blankPostgres();
}

async function applied(url: string): Promise<string[]> {
  const d = openDatabase(url);
  try {
    return (await d.db.selectFrom('schema_migration').select('name').orderBy('name').execute()).map((r) => r.name as string);
  } finally { await d.close(); }
}

for (const dialect of ['sqlite', 'postgres'] as const) {
  test(`a migration that fails part way leaves nothing behind, and migrating again after the cause is gone succeeds [${dialect}]`, { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lexbill-audit-mig-'));
    const empty = await emptyDatabase(dialect, dir);
    try {
      const d = openDatabase(empty.url);
      try {
        // The foundation migration's LAST table already exists: it fails after creating the outbox, the audit log, ...
        await sql`create table auth_throttle (x text)`.execute(d.db);
        await assert.rejects(migrateToLatest(d.db), /migration 20261123_1400_foundation failed/);
        const tables = dialect === 'sqlite'
          ? (await sql<{ name: string }>`select name from sqlite_master where type = 'table' and name in ('outbox', 'audit_log', 'auth_user')`.execute(d.db)).rows
          : (await sql<{ name: string }>`select tablename as name from pg_tables where schemaname = current_schema() and tablename in ('outbox', 'audit_log', 'auth_user')`.execute(d.db)).rows;
        assert.deepEqual(tables, [], 'the failed migration left none of its tables');
        await sql`drop table auth_throttle`.execute(d.db);
        const done = await migrateToLatest(d.db);
        assert.deepEqual(done, MIGRATIONS, 'every migration applied on the second try');
      } finally { await d.close(); }
      assert.deepEqual(await applied(empty.url), MIGRATIONS);
    } finally {
      await empty.drop();
      rmSync(dir, { recursive: true, force: true });
    }
    if (dialect === 'postgres') recordPostgresRun();
  });

  test(`three processes migrating one empty database at once: every one succeeds, each migration applied once [${dialect}]`, { timeout: 180_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lexbill-audit-mig-'));
    const empty = await emptyDatabase(dialect, dir);
    const go = join(dir, 'go');
    const script = join(dir, 'child.mts');
    writeFileSync(script, `
import { existsSync } from 'node:fs';
import { openDatabase, migrateToLatest } from ${JSON.stringify(join(ROOT, 'src/adapters/db/index.ts'))};
const d = openDatabase(process.argv[2]!);
process.stdout.write('ready\\n');
while (!existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 2));
try {
  const done = await migrateToLatest(d.db);
  process.stdout.write('applied ' + done.length + '\\n');
} catch (e) {
  process.stderr.write(String((e as Error).message) + '\\n');
  process.exitCode = 1;
} finally { await d.close(); }
`);
    try {
      const children = [0, 1, 2].map(() => {
        const p = spawn(process.execPath, ['--import', 'tsx', script, empty.url], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        p.stdout.on('data', (b) => { out += String(b); });
        p.stderr.on('data', (b) => { err += String(b); });
        const exited = new Promise<{ code: number | null; out: string; err: string }>((res) => p.on('close', (code) => res({ code, out, err })));
        return { ready: () => out.includes('ready'), exited };
      });
      const deadline = Date.now() + 60_000;
      while (!children.every((c) => c.ready())) {
        assert.ok(Date.now() < deadline, `the children started: ${JSON.stringify(children.map((c) => c.ready()))}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      writeFileSync(go, 'go');
      const results = await Promise.all(children.map((c) => c.exited));
      for (const r of results) assert.equal(r.code, 0, `a migrating process failed: ${r.err}`);
      const counts = results.map((r) => Number(/applied (\d+)/.exec(r.out)?.[1])).sort((a, b) => a - b);
      assert.deepEqual(counts, [0, 0, MIGRATIONS.length], 'one process applied every migration, the others found nothing to do');
      assert.deepEqual(await applied(empty.url), MIGRATIONS);
      assert.ok(existsSync(go));
    } finally {
      await empty.drop();
      rmSync(dir, { recursive: true, force: true });
    }
    if (dialect === 'postgres') recordPostgresRun();
  });
}

test('SQLite: a migration waits for another process\'s long write transaction (longer than the 10 s busy timeout) instead of failing; an up-to-date database needs no write lock at all', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-audit-mig-'));
  const file = join(dir, 'firm.db');
  try {
    // A database one migration behind.
    const d = openDatabase(`sqlite:${file}`);
    await migrateToLatest(d.db);
    const latest = MIGRATIONS.at(-1)!;
    const mod = await import(join(MIGRATIONS_DIR, `${latest}.ts`)) as { down(db: unknown): Promise<void> };
    await mod.down(d.db);
    await d.db.deleteFrom('schema_migration').where('name', '=', latest).execute();
    await d.close();

    // Another process holds the write lock for 12 s (a long bill run chunk, another migration).
    const script = join(dir, 'holder.mts');
    writeFileSync(script, `
import { createRequire } from 'node:module';
const BetterSqlite3 = createRequire(${JSON.stringify(join(ROOT, 'package.json'))})('better-sqlite3');
const db = new BetterSqlite3(process.argv[2]!);
db.exec('begin immediate');
process.stdout.write('locked\\n');
setTimeout(() => { db.exec('commit'); db.close(); }, Number(process.argv[3]));
`);
    const hold = (ms: number) => new Promise<{ exited: Promise<number | null> }>((res, rej) => {
      const p = spawn(process.execPath, ['--import', 'tsx', script, file, String(ms)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise<number | null>((r) => p.on('close', (code) => { r(code); rej(new Error(`the lock holder exited (${code}) before locking`)); }));
      p.stdout.on('data', (b) => { if (String(b).includes('locked')) res({ exited }); });
      p.on('error', rej);
    });

    let h = await hold(12_000);
    const m = openDatabase(`sqlite:${file}`);
    try {
      const started = Date.now();
      assert.deepEqual(await migrateToLatest(m.db), [latest], 'the pending migration applied once the lock was free');
      assert.ok(Date.now() - started >= 10_000, 'it waited for the other process');
      assert.equal(await h.exited, 0);

      // Up to date: migrating again while another process writes returns at once.
      h = await hold(15_000);
      const again = Date.now();
      assert.deepEqual(await migrateToLatest(m.db), []);
      assert.ok(Date.now() - again < 5_000, `an up-to-date database was not kept waiting (${Date.now() - again} ms)`);
      assert.equal(await h.exited, 0);
    } finally { await m.close(); }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
