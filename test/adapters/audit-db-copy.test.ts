/**
 * `copy-database` (src/adapters/db/copy.ts): a target that is not an empty Lexbill database
 * is refused BEFORE anything changes in it (not migrated first), and awkward values (integers
 * near and past 2^53, emoji, long text, empty text against NULL, undelivered events, the
 * numbering counters) arrive exactly.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { copyDatabase, CopyRefusedError, maskUrl } from '../../src/adapters/db/copy.ts';
import { openDatabase } from '../../src/adapters/db/index.ts';
import { MIGRATIONS_DIR } from '../../src/adapters/db/migrate.ts';
import { blankPostgres, freshDatabase } from '../support/db.ts';

const LATEST = readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.ts')).sort().at(-1)!.replace(/\.ts$/, '');

function recordPostgresRun(): void {
  const marker = process.env.LEXBILL_PG_MARKER;
  if (marker) writeFileSync(marker, 'x', { flag: 'a' });
}

/** A migrated SQLite file with no firm in it (only the migrations' seeds). */
async function emptySource(dir: string): Promise<string> {
  const file = join(dir, `src-${randomBytes(4).toString('hex')}.db`);
  const d = await freshDatabase('sqlite', { file });
  await d.close();
  return file;
}


/** Query a Postgres database with int8 read as text (exact). */
async function pgQuery<T>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, types: { getTypeParser: (oid: number, format?: any) => (oid === 20 ? (v: string) => v : pg.types.getTypeParser(oid, format)) } as any });
  await client.connect();
  try { return (await client.query(text, params)).rows as T[]; } finally { await client.end(); }
}

test('a target holding a firm at an OLDER migration is refused without being migrated', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-audit-copy-'));
  const target = await freshDatabase('postgres');
  try {
    const source = await emptySource(dir);
    // The firm's database, one migration behind this Lexbill: an older server still runs on it.
    const latest = await import(join(MIGRATIONS_DIR, `${LATEST}.ts`)) as { down(db: unknown): Promise<void> };
    await latest.down(target.db);
    await target.db.deleteFrom('schema_migration').where('name', '=', LATEST).execute();
    await target.db.insertInto('app_setting').values({ key: 'firm', value: 'Holloway & Stern', updated_at: '2026-01-01T00:00:00.000Z' }).execute();
    await assert.rejects(copyDatabase({ from: `sqlite:${source}`, to: target.url }), (e: unknown) => e instanceof CopyRefusedError && /already holds a firm/.test(e.message) && /app_setting/.test(e.message));
    const names = (await target.db.selectFrom('schema_migration').select('name').execute()).map((r) => r.name);
    assert.ok(!names.includes(LATEST), 'the refused copy did not migrate the firm\'s database');
  } finally {
    await target.close();
    rmSync(dir, { recursive: true, force: true });
  }
  recordPostgresRun();
});

test('a target migrated by a NEWER Lexbill is refused as such (a CopyRefusedError), and left as it was', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-audit-copy-'));
  const target = await freshDatabase('postgres');
  try {
    const source = await emptySource(dir);
    await target.db.insertInto('schema_migration').values({ name: '29991231_0000_future', timestamp: '2999-12-31T00:00:00.000Z' }).execute();
    await assert.rejects(copyDatabase({ from: `sqlite:${source}`, to: target.url }), (e: unknown) => e instanceof CopyRefusedError && /newer version of Lexbill/.test(e.message) && /29991231_0000_future/.test(e.message));
    const left = await pgQuery<{ n: string }>(target.url, 'select count(*) as n from schema_migration');
    assert.equal(left[0]!.n, String(readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.ts')).length + 1));
  } finally {
    await target.close();
    rmSync(dir, { recursive: true, force: true });
  }
  recordPostgresRun();
});

test('a target holding another application\'s tables (no Lexbill migrations) is refused, and no Lexbill table is created in it', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-audit-copy-'));
  const target = await blankPostgres();
  try {
    const source = await emptySource(dir);
    await pgQuery(target.url, 'create table customers (id int primary key, name text)');
    await pgQuery(target.url, `insert into customers values (1, 'kept')`);
    await assert.rejects(copyDatabase({ from: `sqlite:${source}`, to: target.url }), (e: unknown) => e instanceof CopyRefusedError && /customers/.test(e.message));
    const tables = (await pgQuery<{ t: string }>(target.url, 'select tablename as t from pg_tables where schemaname = current_schema() order by 1')).map((r) => r.t);
    assert.deepEqual(tables, ['customers'], 'nothing created in a database that is not Lexbill\'s');
  } finally {
    await target.drop();
    rmSync(dir, { recursive: true, force: true });
  }
  recordPostgresRun();
});

test('a target that is not UTF8 is refused before it is migrated', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-audit-copy-'));
  const target = await blankPostgres(`template template0 encoding 'LATIN1' lc_collate 'C' lc_ctype 'C'`);
  try {
    const source = await emptySource(dir);
    await assert.rejects(copyDatabase({ from: `sqlite:${source}`, to: target.url }), (e: unknown) => e instanceof CopyRefusedError && /must use UTF8 encoding \(it uses LATIN1\)/.test(e.message));
    assert.deepEqual(await pgQuery(target.url, 'select tablename from pg_tables where schemaname = current_schema()'), [], 'nothing created');
  } finally {
    await target.drop();
    rmSync(dir, { recursive: true, force: true });
  }
  recordPostgresRun();
});

test('a source at other migrations is refused before the (never migrated) target is touched', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-audit-copy-'));
  const target = await blankPostgres();
  try {
    for (const [change, reason] of [
      [`delete from schema_migration where name = (select max(name) from schema_migration)`, /older than this version of Lexbill/],
      [`insert into schema_migration (name, timestamp) values ('29991231_0000_future', '2999-12-31T00:00:00.000Z')`, /newer version of Lexbill/],
    ] as const) {
      const source = await emptySource(dir);
      const w = new BetterSqlite3(source);
      w.exec(change);
      w.close();
      await assert.rejects(copyDatabase({ from: `sqlite:${source}`, to: target.url }), (e: unknown) => e instanceof CopyRefusedError && reason.test(e.message));
      assert.deepEqual(await pgQuery(target.url, 'select tablename from pg_tables where schemaname = current_schema()'), [], 'nothing created');
    }
  } finally {
    await target.drop();
    rmSync(dir, { recursive: true, force: true });
  }
  recordPostgresRun();
});

test('an empty, never migrated target is migrated and takes the copy: extreme integers, emoji, long text, empty text and NULL, undelivered events, counters', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-audit-copy-'));
  const target = await blankPostgres();
  try {
    const source = await emptySource(dir);
    const w = new BetterSqlite3(source);
    w.defaultSafeIntegers(true);
    const big = [9_007_199_254_740_991n, 9_007_199_254_740_993n, -9_007_199_254_740_993n, 9_223_372_036_854_775_807n, -9_223_372_036_854_775_808n, 0n];
    const ins = w.prepare('insert into billing_retainer_balance (matter_id, balance_minor, currency, as_of, note, version, updated_at, updated_by) values (?, ?, ?, ?, ?, ?, ?, ?)');
    const notes = ['', null, 'emoji 🧾💼 ünïcödé e\u0301', 'x'.repeat(200_000), 'quote " back\\slash \'single\' tab\t nl\n', ' '];
    big.forEach((b, i) => ins.run(`m${i}`, b, 'USD', '2026-01-01T00:00:00.000Z', notes[i], 1, '2026-01-01T00:00:00.000Z', 'u'));
    // Events not yet delivered, and delivered ones; a handler failing; the numbering counters.
    const ev = w.prepare('insert into outbox (id, type, version, occurred_at, correlation_id, causation_id, actor_id, payload, delivered_at) values (?, ?, 1, ?, ?, null, null, ?, ?)');
    for (let i = 0; i < 5; i++) ev.run(`e${i}`, 'billing.bill_approved', '2026-01-01T00:00:00.000Z', 'c', JSON.stringify({ n: i, amount: '9007199254740993', text: '🧾' }), i < 2 ? '2026-01-01T00:00:01.000Z' : null);
    w.prepare(`insert into outbox_delivery (event_id, handler, attempts, last_error, last_attempt_at, next_attempt_at) values ('e3', 'ledger.post_bills', 4, '', '2026-01-01T00:00:02.000Z', '2026-01-01T00:00:10.000Z')`).run();
    w.prepare(`insert into billing_matter_sequence (matter_id, last_sequence) values ('m0', 41), ('m1', 2147483647)`).run();
    w.prepare(`insert or replace into ledger_sequence (name, last_value) values ('BJ', 1207)`).run();
    const seqs = w.prepare('select name, last_value from ledger_sequence order by name').raw(true).all() as [string, bigint][];
    w.close();

    await copyDatabase({ from: `sqlite:${source}`, to: target.url });

    const rows = await pgQuery<{ matter_id: string; balance_minor: string; note: string | null }>(target.url, 'select matter_id, balance_minor, note from billing_retainer_balance order by matter_id');
    assert.deepEqual(rows.map((r) => r.balance_minor), big.map(String), 'bigint values exact past 2^53');
    assert.deepEqual(rows.map((r) => r.note), notes, 'text exact; empty text stays empty, NULL stays NULL');
    const events = await pgQuery<{ id: string; seq: string; delivered_at: string | null; payload: string }>(target.url, 'select id, seq, delivered_at, payload from outbox order by seq');
    assert.deepEqual(events.map((e) => [e.id, e.delivered_at === null]), [['e0', false], ['e1', false], ['e2', true], ['e3', true], ['e4', true]], 'undelivered events stay undelivered');
    assert.equal(JSON.parse(events[4]!.payload).text, '🧾');
    assert.deepEqual(await pgQuery(target.url, 'select event_id, handler, attempts from outbox_delivery'), [{ event_id: 'e3', handler: 'ledger.post_bills', attempts: 4 }]);
    assert.deepEqual(await pgQuery(target.url, 'select matter_id, last_sequence from billing_matter_sequence order by matter_id'), [{ matter_id: 'm0', last_sequence: 41 }, { matter_id: 'm1', last_sequence: 2147483647 }], 'bill numbering continues where it stopped');
    assert.deepEqual((await pgQuery<{ name: string; last_value: number }>(target.url, 'select name, last_value from ledger_sequence order by name')).map((r) => [r.name, BigInt(r.last_value)]), seqs, 'journal numbering continues where it stopped');
    const [next] = await pgQuery<{ s: string }>(target.url, `select nextval(pg_get_serial_sequence('outbox', 'seq')) as s`);
    assert.equal(next!.s, String(Number(events.at(-1)!.seq) + 1), 'the outbox sequence continues after the copied events');
  } finally {
    await target.drop();
    rmSync(dir, { recursive: true, force: true });
  }
  recordPostgresRun();
});

test('a target a server was started on (it holds only the server secret) takes the copy, with the source\'s secret', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-audit-copy-'));
  const target = await freshDatabase('postgres');
  try {
    const source = await emptySource(dir);
    const w = new BetterSqlite3(source);
    w.prepare(`insert into app_setting (key, value, updated_at) values ('secret', 'the-source-secret', '2026-01-01T00:00:00.000Z')`).run();
    w.close();
    // What starting the server on the new database writes.
    await target.db.insertInto('app_setting').values({ key: 'secret', value: 'the-target-secret', updated_at: '2026-02-01T00:00:00.000Z' }).execute();
    const r = await copyDatabase({ from: `sqlite:${source}`, to: target.url });
    assert.ok(r.replacedSeeds.includes('app_setting'));
    assert.deepEqual(await pgQuery(target.url, `select key, value from app_setting where key = 'secret'`), [{ key: 'secret', value: 'the-source-secret' }], 'sessions and CSRF tokens signed by the source stay valid');
    // Any other setting is a firm's: refused.
    const again = await freshDatabase('postgres');
    try {
      await again.db.insertInto('app_setting').values([{ key: 'secret', value: 's', updated_at: '2026-02-01T00:00:00.000Z' }, { key: 'write_off_limit_minor', value: '5000', updated_at: '2026-02-01T00:00:00.000Z' }]).execute();
      await assert.rejects(copyDatabase({ from: `sqlite:${source}`, to: again.url }), (e: unknown) => e instanceof CopyRefusedError && /already holds a firm \(rows in app_setting\)/.test(e.message));
    } finally { await again.close(); }
  } finally {
    await target.close();
    rmSync(dir, { recursive: true, force: true });
  }
  recordPostgresRun();
});

test('a source written while it is copied (a server still running on it) is refused, and nothing is copied', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-audit-copy-'));
  const target = await blankPostgres();
  try {
    const source = await emptySource(dir);
    let wrote = false;
    const write = () => {
      if (wrote) return;
      wrote = true;
      // Another connection commits, as a server's request would, while the copy reads its snapshot.
      const w = new BetterSqlite3(source);
      w.prepare(`insert into app_setting (key, value, updated_at) values ('written-meanwhile', 'x', '2026-01-01T00:00:00.000Z')`).run();
      w.close();
    };
    await assert.rejects(copyDatabase({ from: `sqlite:${source}`, to: target.url, log: (line) => { if (/row\(s\)$/.test(line)) write(); } }),
      (e: unknown) => e instanceof CopyRefusedError && /changed while it was copied \(is a server still running on it\?\): stop every Lexbill process using it, then copy again/.test(e.message));
    assert.ok(wrote, 'the write happened during the copy');
    assert.deepEqual(await pgQuery(target.url, 'select count(*)::int as n from app_setting'), [{ n: 0 }], 'nothing copied');
    assert.deepEqual(await pgQuery(target.url, 'select count(*)::int as n from auth_user'), [{ n: 0 }]);
    // Copied again with nothing writing: it goes through.
    await copyDatabase({ from: `sqlite:${source}`, to: target.url });
    assert.deepEqual(await pgQuery(target.url, `select value from app_setting where key = 'written-meanwhile'`), [{ value: 'x' }]);
  } finally {
    await target.drop();
    rmSync(dir, { recursive: true, force: true });
  }
  recordPostgresRun();
});

test('maskUrl hides the whole password, whatever it holds (a colon, an at sign), and the database URL error does too', () => {
  for (const [url, secret] of [
    ['postgres://lex:secret:x@127.0.0.1:5432/firm', 'secret'],
    ['postgres://lex:se@cret@127.0.0.1/firm', 'cret'],
    ['postgresql://lex:plain@127.0.0.1/firm', 'plain'],
    ['mysql://lex:my:secret@127.0.0.1/firm', 'secret'],
  ] as const) {
    const shown = maskUrl(url);
    assert.doesNotMatch(shown, new RegExp(secret), `${url} -> ${shown}`);
    assert.match(shown, /^[a-z]+:\/\/lex:\*\*\*@127\.0\.0\.1/, shown);
  }
  assert.equal(maskUrl('postgres://127.0.0.1/firm'), 'postgres://127.0.0.1/firm');
  assert.equal(maskUrl('sqlite:./data/a:b@c.db'), 'sqlite:./data/a:b@c.db');
  assert.throws(() => openDatabase('mysql://lex:my:secret@127.0.0.1/firm'), (e: Error) => !/secret/.test(e.message) && /\*\*\*/.test(e.message));
});
