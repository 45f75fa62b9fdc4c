/**
 * `lexbill copy-database`: a billed demo firm copied from a SQLite file into a fresh
 * PostgreSQL database holds exactly the same rows in every table (outbox, inbox and audit
 * trail too), the app runs on the copy (same trial balance, sequences past the copied
 * rows), and refused copies (a target that holds a firm, a source with other migrations)
 * change nothing. The CLI's usage errors exit 2.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { copyDatabase, CopyRefusedError, dependencyOrder, orderSelfReferencing } from '../../src/adapters/db/copy.ts';
import { openDatabase } from '../../src/adapters/db/index.ts';
import { prng } from '../../src/cli/demo.ts';
import { createMassBilling } from '../../src/modules/billing/mass-commands.ts';
import { createLedgerReports } from '../../src/modules/ledger/index.ts';
import { seedDemoFirm } from '../../src/modules/matters/index.ts';
import { manualClock } from '../../src/shared/clock.ts';
import { createUser } from '../../src/web/auth/service.ts';
import { freshDatabase } from '../support/db.ts';
import { ctx, setup } from '../billing/support.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'lexbill');
const BOOKKEEPING = new Set(['schema_migration', 'schema_migration_lock']);

function recordPostgresRun(): void {
  const marker = process.env.LEXBILL_PG_MARKER;
  if (marker) appendFileSync(marker, 'x');
}

const canon = (v: unknown) => (v === null || v === undefined ? null : Buffer.isBuffer(v) ? `x${v.toString('hex')}` : String(v));

/** Every table's rows (sorted, values as text) of a SQLite file, read with exact integers. */
function sqliteDump(path: string): Map<string, string[]> {
  const db = new BetterSqlite3(path, { readonly: true });
  db.defaultSafeIntegers(true);
  try {
    const out = new Map<string, string[]>();
    const tables = (db.prepare(`select name from sqlite_master where type = 'table' and name not like 'sqlite_%'`).all() as { name: string }[]).map((r) => r.name);
    for (const t of tables.filter((n) => !BOOKKEEPING.has(n)).sort()) {
      const cols = (db.prepare('select name from pragma_table_info(?)').all(t) as { name: string }[]).map((c) => c.name).sort();
      const rows = db.prepare(`select ${cols.map((c) => `"${c}"`).join(', ')} from "${t}"`).raw(true).all() as unknown[][];
      out.set(t, rows.map((r) => JSON.stringify(r.map(canon))).sort());
    }
    return out;
  } finally { db.close(); }
}

/** The same from Postgres, with int8 read as text (exact). */
async function pgDump(url: string): Promise<Map<string, string[]>> {
  const client = new pg.Client({ connectionString: url, types: { getTypeParser: (oid: number, format?: any) => (oid === 20 ? (v: string) => v : pg.types.getTypeParser(oid, format)) } as any });
  await client.connect();
  try {
    const out = new Map<string, string[]>();
    const tables = (await client.query(`select tablename from pg_tables where schemaname = current_schema()`)).rows.map((r) => r.tablename as string);
    for (const t of tables.filter((n) => !BOOKKEEPING.has(n)).sort()) {
      const cols = (await client.query(`select attname from pg_attribute where attrelid = $1::regclass and attnum > 0 and not attisdropped`, [`"${t}"`])).rows.map((r) => r.attname as string).sort();
      const rows = (await client.query({ text: `select ${cols.map((c) => `"${c}"`).join(', ')} from "${t}"`, rowMode: 'array' })).rows as unknown[][];
      out.set(t, rows.map((r) => JSON.stringify(r.map(canon))).sort());
    }
    return out;
  } finally { await client.end(); }
}

const counts = (d: Map<string, string[]>) => Object.fromEntries([...d].map(([t, rows]) => [t, rows.length]));

/** A demo firm in a SQLite file with bills drafted and approved by a mass billing run; the runtime closed. */
async function billedFirm(file: string): Promise<void> {
  const db = await freshDatabase('sqlite', { file });
  const s = await setup(db, { start: '2026-03-02T09:00:00Z' });
  try {
    await createUser({ db: db.db, clock: s.clock }, ctx, { email: 'admin@firm.test', role: 'admin', name: 'Admin', password: 'a-long-enough-password' });
    await seedDemoFirm(s.cmds, { matters: 16, entriesPerMatter: 5, seed: 7, random: prng, ctx, fixedCharges: true, asOf: '2026-03-01' });
    await s.drain();
    const m = createMassBilling({ db: db.db, clock: s.clock, relay: s.rt.relay }, s.billing);
    const f = { invoiceDate: '2026-03-01', upTo: '2026-03-01' };
    const ids = (await m.candidates(f)).filter((r) => r.eligible).map((r) => r.matterId);
    assert.ok(ids.length >= 8, `demo matters are eligible (${ids.length})`);
    await m.draftMatters(ctx, ids, { ...f, request: { template: 'standard', paymentTermsDays: 14 } }, { chunk: 5 });
    const drafts = (await db.db.selectFrom('billing_bill').select('id').where('status', '=', 'draft').orderBy('file_number').execute()).map((b) => b.id as string);
    // Approve most; one stays a draft.
    const approved = await m.approveMany(ctx, drafts.slice(1), { chunk: 4 });
    assert.ok(approved.filter((o) => o.ok).length >= 6);
    await s.drain();
    // A reverted bill: a reversing journal that references the journal it reverses (a self-reference).
    const [first, second] = approved.filter((o) => o.ok).map((o) => o.billId);
    await s.billing.revert(ctx, first!);
    await s.drain();
    // A stored PDF (production needs Chromium; the bytes are what matters here): every byte value, 300 KB.
    const pdf = Buffer.alloc(300_000);
    for (let i = 0; i < pdf.length; i++) pdf[i] = (i * 7919) % 256;
    await db.db.insertInto('billing_bill_pdf').values({ bill_id: second!, cycle: '2026-03-02T09:00:00.000Z', number: 'x', template: 'standard', pdf, size_bytes: pdf.length, sha256: 'test', created_at: '2026-03-02T09:00:00.000Z' }).execute();
  } finally {
    await s.rt.close();
  }
}

async function trialBalance(db: ReturnType<typeof openDatabase>) {
  const r = await createLedgerReports(db.db, manualClock('2026-03-02T09:00:00Z')).run('trial-balance', { to: '2026-12-31' });
  return { rows: r.rows, totals: r.totals };
}

test('copy-database copies a billed firm from SQLite into an empty PostgreSQL database, exactly, once', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-copy-'));
  const file = join(dir, 'firm.db');
  const target = await freshDatabase('postgres');
  const spares: { close(): Promise<void> }[] = [];
  try {
    await billedFirm(file);
    const source = sqliteDump(file);
    for (const t of ['billing_bill_pdf', 'auth_user', 'outbox', 'inbox', 'audit_log', 'billing_bill', 'billing_bill_line', 'ledger_journal', 'ledger_journal_line', 'ledger_account', 'matters_matter']) {
      assert.ok((source.get(t)?.length ?? 0) > 0, `the source has rows in ${t}`);
    }

    const r = await copyDatabase({ from: `sqlite:${file}`, to: target.url });
    assert.equal(r.rows, [...source.values()].reduce((n, rows) => n + rows.length, 0));
    assert.deepEqual(r.replacedSeeds, ['ledger_account', 'matters_template'], 'the seeded chart of accounts and template names were replaced by the firm\'s');
    const copied = await pgDump(target.url);
    assert.deepEqual(counts(copied), counts(source), 'every table, every row count');
    for (const [t, rows] of source) assert.deepEqual(copied.get(t), rows, `${t}: the same rows`);
    console.log(`copied ${r.rows} rows in ${r.tables.length} tables:`, JSON.stringify(counts(copied)));

    // A second copy into the same target is refused and changes nothing.
    await assert.rejects(copyDatabase({ from: `sqlite:${file}`, to: target.url }), (e: unknown) => e instanceof CopyRefusedError && /already holds a firm/.test(e.message));
    assert.deepEqual(await pgDump(target.url), copied, 'the refused copy changed nothing');

    // A source migrated by a newer Lexbill, and one missing a migration: refused, target untouched.
    for (const [name, change, reason] of [
      ['newer', `insert into schema_migration (name, timestamp) values ('29991231_0000_future', '2999-12-31T00:00:00.000Z')`, /newer version of Lexbill/],
      ['older', `delete from schema_migration where name = (select max(name) from schema_migration)`, /older than this version of Lexbill: migrate it first/],
    ] as const) {
      const other = join(dir, `${name}.db`);
      copyFileSync(file, other);
      const w = new BetterSqlite3(other);
      w.exec(change);
      w.close();
      const empty = await freshDatabase('postgres');
      spares.push(empty);
      await assert.rejects(copyDatabase({ from: `sqlite:${other}`, to: empty.url }), (e: unknown) => e instanceof CopyRefusedError && reason.test(e.message));
      const left = await pgDump(empty.url);
      assert.deepEqual([...left].filter(([t, rows]) => rows.length && t !== 'ledger_account' && t !== 'matters_template').map(([t]) => t), [], `${name}: nothing copied (the migrations' seeds aside)`);
    }

    // A value that does not fit its target column (an int4) is refused, and the tables copied before it are rolled back.
    {
      const other = join(dir, 'overflow.db');
      copyFileSync(file, other);
      const w = new BetterSqlite3(other);
      w.exec('update matters_matter_participant set position = 5000000000 where rowid = (select max(rowid) from matters_matter_participant)');
      w.close();
      const empty = await freshDatabase('postgres');
      spares.push(empty);
      await assert.rejects(copyDatabase({ from: `sqlite:${other}`, to: empty.url }), (e: unknown) => e instanceof CopyRefusedError && /matters_matter_participant\.position: the value 5000000000 does not fit/.test(e.message));
      const left = await pgDump(empty.url);
      assert.deepEqual([...left].filter(([t, rows]) => rows.length && t !== 'ledger_account' && t !== 'matters_template').map(([t]) => t), [], 'all or nothing: no table kept its rows (the migrations\' seeds aside)');
      // The empty target can then take the good copy.
      await copyDatabase({ from: `sqlite:${file}`, to: empty.url });
      assert.deepEqual(counts(await pgDump(empty.url)), counts(source));
    }

    // The app works on the copy: the same trial balance, and new rows after the copied ones.
    const src = openDatabase(`sqlite:${file}`);
    const tbSource = await trialBalance(src);
    await src.close();
    const tbTarget = await trialBalance(target);
    assert.ok(tbSource.rows.length > 3);
    assert.deepEqual(tbTarget, tbSource, 'the trial balance on PostgreSQL equals the one on SQLite');
    const billTotals = async (db: ReturnType<typeof openDatabase>) => (await db.db.selectFrom('billing_bill').select(['status', (eb) => eb.fn.count('id').as('n'), (eb) => eb.fn.sum('total_minor').as('total')]).groupBy('status').orderBy('status').execute()).map((x) => [x.status, Number(x.n), Number(x.total)]);
    const src2 = openDatabase(`sqlite:${file}`);
    const totalsSource = await billTotals(src2);
    await src2.close();
    assert.deepEqual(await billTotals(target), totalsSource);

    const maxSeq = Number((await target.db.selectFrom('outbox').select((eb) => eb.fn.max('seq').as('m')).executeTakeFirstOrThrow()).m);
    const s = await setup(target, { start: '2026-03-03T09:00:00Z' });
    try {
      const tk = await s.cmds.createTimekeeper(ctx, { initials: 'NW', name: 'New Hire', classification: 'associate' });
      await s.drain();
      const ev = await target.db.selectFrom('outbox').select(['seq', 'type']).where('seq', '>', maxSeq).orderBy('seq').execute();
      assert.equal(Number(ev[0]?.seq), maxSeq + 1, 'the outbox sequence continues after the copied events');
      assert.ok(await target.db.selectFrom('billing_timekeeper').select('id').where('id', '=', tk.id).executeTakeFirst(), 'events are delivered on the copy');
    } finally {
      await s.rt.relay.stop();
    }
  } finally {
    for (const d of spares) await d.close();
    await target.close();
    rmSync(dir, { recursive: true, force: true });
  }
  recordPostgresRun();
});

test('bin/lexbill copy-database: usage errors exit 2, a copy exits 0, a second copy is refused with 1', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-copy-cli-'));
  const run = (args: string[], env: Record<string, string> = {}) => {
    const r = spawnSync(BIN, args, { cwd: dir, encoding: 'utf8', env: { ...process.env, LOG_LEVEL: 'silent', ...env } });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  const target = await freshDatabase('postgres');
  try {
    let r = run(['copy-database']);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /needs --to postgres:\/\//);
    r = run(['copy-database', '--to', 'mysql://u:secret@h/db']);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /--to must be a postgres:\/\/ URL/);
    assert.doesNotMatch(r.err, /secret/, 'the password is not printed');
    r = run(['copy-database', '--to', 'sqlite:./x.db']);
    assert.equal(r.code, 2, r.err);
    r = run(['copy-database', '--to', target.url, '--from', 'postgres://h/db']);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /--from must be a sqlite: URL/);
    r = run(['copy-database', '--to', target.url, '--bogus']);
    assert.equal(r.code, 2, r.err);
    r = run(['--help']);
    assert.match(r.out, /copy-database --to postgres:\/\/\.\.\. \[--from sqlite:PATH\]/);

    // A real copy: --from defaults to DATABASE_URL when it is sqlite:.
    const file = join(dir, 'firm.db');
    r = run(['seed-demo', '--matters', '4', '--entries-per-matter', '3'], { DATABASE_URL: `sqlite:${file}` });
    assert.equal(r.code, 0, r.err);
    r = run(['copy-database', '--to', target.url], { DATABASE_URL: `sqlite:${file}` });
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /Copied \d+ row\(s\) in \d+ table\(s\)/);
    const users = await target.db.selectFrom('auth_user').select('email').execute();
    assert.ok(users.length > 0);
    r = run(['copy-database', '--to', target.url, '--from', `sqlite:${file}`]);
    assert.equal(r.code, 1);
    assert.match(r.err, /already holds a firm/);
  } finally {
    await target.close();
    rmSync(dir, { recursive: true, force: true });
  }
  recordPostgresRun();
});

test('dependency order: referenced tables first; self-referencing rows parents first', () => {
  const fk = (table: string, refTable: string, columns = ['x_id'], refColumns = ['id']) => ({ table, refTable, columns, refColumns, deferrable: false });
  assert.deepEqual(dependencyOrder([{ name: 'c' }, { name: 'b' }, { name: 'a' }], [fk('c', 'b'), fk('b', 'a'), fk('a', 'a')]), ['a', 'b', 'c']);
  assert.throws(() => dependencyOrder([{ name: 'a' }, { name: 'b' }], [fk('a', 'b'), fk('b', 'a')]), /cycle/);
  const t = { name: 'j', columns: [{ name: 'id', sqlType: 'text', kind: 'text' as const, identityAlways: false }, { name: 'rev', sqlType: 'text', kind: 'text' as const, identityAlways: false }] };
  const rows = [['r3', 'r2'], ['r2', 'r1'], ['x', null], ['r1', null]];
  const ordered = orderSelfReferencing(rows, t, [fk('j', 'j', ['rev'], ['id'])]);
  assert.deepEqual(ordered.map((r) => r[0]), ['r1', 'r2', 'r3', 'x']);
  assert.throws(() => orderSelfReferencing([['a', 'b'], ['b', 'a']], t, [fk('j', 'j', ['rev'], ['id'])]), /cycle/);
});
