/**
 * Run a store or flow test on both databases. Each test gets a fresh, migrated database:
 * SQLite in memory, or a Postgres database cloned from a migrated template on the server
 * that `npm test` starts (LEXBILL_TEST_PG_URL). Without that server the Postgres case
 * fails with a message; it never silently skips.
 */
import { appendFileSync, readdirSync, statSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import pg from 'pg';
import { openDatabase, migrateToLatest } from '../../src/adapters/db/index.ts';
import { MIGRATIONS_DIR } from '../../src/adapters/db/migrate.ts';
import type { Database, Dialect } from '../../src/shared/db.ts';

export const DIALECTS: readonly Dialect[] = ['sqlite', 'postgres'];

export interface TestDb extends Database {
  /** The URL another process (a CLI child, a second server) can open. */
  readonly url: string;
}

function templateName(): string {
  const h = createHash('sha256');
  for (const f of readdirSync(MIGRATIONS_DIR).sort()) {
    h.update(f);
    h.update(String(statSync(`${MIGRATIONS_DIR}/${f}`).mtimeMs));
  }
  return `lexbill_tpl_${h.digest('hex').slice(0, 12)}`;
}

function withDb(adminUrl: string, database: string): string {
  const u = new URL(adminUrl);
  u.pathname = `/${database}`;
  return u.toString();
}

async function ensureTemplate(adminUrl: string): Promise<string> {
  const name = templateName();
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query('select pg_advisory_lock(712001)');
    const exists = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (exists.rowCount === 0) {
      await client.query(`create database "${name}"`);
      const d = openDatabase(withDb(adminUrl, name));
      try { await migrateToLatest(d.db); } finally { await d.close(); }
    }
    return name;
  } finally {
    await client.query('select pg_advisory_unlock(712001)').catch(() => undefined);
    await client.end();
  }
}

/** A fresh migrated database of the given dialect; close() drops it. */
export async function freshDatabase(dialect: Dialect, opts: { file?: string } = {}): Promise<TestDb> {
  if (dialect === 'sqlite') {
    const url = opts.file ? `sqlite:${opts.file}` : 'sqlite::memory:';
    const d = openDatabase(url);
    await migrateToLatest(d.db);
    return { ...d, url };
  }
  const adminUrl = process.env.LEXBILL_TEST_PG_URL;
  if (!adminUrl) {
    throw new Error('LEXBILL_TEST_PG_URL is not set: run the suite with `npm test`, which starts a throwaway PostgreSQL server');
  }
  const tpl = await ensureTemplate(adminUrl);
  const name = `lexbill_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database "${name}" template "${tpl}"`);
  } finally {
    await admin.end();
  }
  const url = withDb(adminUrl, name);
  const d = openDatabase(url);
  return {
    ...d,
    url,
    async close() {
      await d.close();
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try { await c.query(`drop database if exists "${name}" with (force)`); } finally { await c.end(); }
    },
  };
}

function recordPostgresRun(): void {
  const marker = process.env.LEXBILL_PG_MARKER;
  if (marker) appendFileSync(marker, 'x');
}

/** Register `name [sqlite]` and `name [postgres]`, each with a fresh database. */
export function eachDialect(name: string, fn: (db: TestDb, t: TestContext) => Promise<void>, opts: { timeout?: number } = {}): void {
  for (const dialect of DIALECTS) {
    test(`${name} [${dialect}]`, { timeout: opts.timeout ?? 120_000 }, async (t) => {
      const db = await freshDatabase(dialect);
      try {
        await fn(db, t);
      } finally {
        await db.close();
      }
      if (dialect === 'postgres') recordPostgresRun();
    });
  }
}

/** A Postgres database on the test server that was never migrated (`options`: create database's own, e.g. an encoding); drop() removes it. */
export async function blankPostgres(options = ''): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = process.env.LEXBILL_TEST_PG_URL;
  if (!admin) throw new Error('LEXBILL_TEST_PG_URL is not set: run through scripts/run-tests.ts');
  const name = `lexbill_blank_${randomBytes(6).toString('hex')}`;
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  try { await c.query(`create database "${name}" ${options}`); } finally { await c.end(); }
  const u = new URL(admin);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const d = new pg.Client({ connectionString: admin });
      await d.connect();
      try { await d.query(`drop database if exists "${name}" with (force)`); } finally { await d.end(); }
    },
  };
}
