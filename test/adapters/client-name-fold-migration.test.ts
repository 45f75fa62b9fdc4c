/**
 * The migrations adding billing_client.name_fold and ledger_client.name_fold fold the names of
 * the clients copied before them as the modules fold new ones (foldName), so a firm upgrading
 * finds its existing clients by "muller" as well as its new ones. On both databases.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { FileMigrationProvider, Migrator } from 'kysely';
import { MIGRATIONS_DIR, migrateToLatest } from '../../src/adapters/db/migrate.ts';
import { foldName } from '../../src/shared/client-names.ts';
import { eachDialect } from '../support/db.ts';

const BEFORE = '20261206_1100_billing_bill_batch_status_idx';

eachDialect('billing_client.name_fold and ledger_client.name_fold: the clients copied before the column are folded as new ones are', async (db) => {
  const migrator = new Migrator({ db: db.db, provider: new FileMigrationProvider({ fs, path, migrationFolder: MIGRATIONS_DIR }), migrationTableName: 'schema_migration', migrationLockTableName: 'schema_migration_lock' });
  const down = await migrator.migrateTo(BEFORE);
  assert.equal(down.error, undefined, String(down.error));
  assert.ok(down.results?.some((r) => r.migrationName === '20261206_1800_client_name_fold'), 'the columns\' migration was undone');
  const names = ['Müller GmbH', 'Émile Zola SARL', 'İstanbul Ticaret', 'Ørsted A/S', 'Plain Name Ltd', 'Straße Œuvre Łódź', 'कोमल', 'ガス', 'Ｆｕｌｌ', 'Йогурт', 'Ελλάδα'];
  await db.db.insertInto('billing_client').values(names.map((name, i) => ({
    id: `client-${i}`, client_number: i + 1, name, source_version: 1, source_at: '2026-01-01T00:00:00.000Z', event_id: `event-${i}`, copied_at: '2026-01-01T00:00:00.000Z',
  }))).execute();
  await db.db.insertInto('ledger_client').values(names.map((name, i) => ({ id: `client-${i}`, client_number: i + 1, name, source_at: '2026-01-01T00:00:00.000Z' }))).execute();
  // More clients than the migration folds per statement (500): every page folded.
  const many = Array.from({ length: 1_203 }, (_, i) => ({ id: `many-${String(i).padStart(5, '0')}`, client_number: 1_000 + i, name: `Société Ä${i}` }));
  for (let i = 0; i < many.length; i += 200) {
    const part = many.slice(i, i + 200);
    await db.db.insertInto('billing_client').values(part.map((c) => ({ ...c, source_version: 1, source_at: '2026-01-01T00:00:00.000Z', event_id: `e-${c.id}`, copied_at: '2026-01-01T00:00:00.000Z' }))).execute();
    await db.db.insertInto('ledger_client').values(part.map((c) => ({ ...c, source_at: '2026-01-01T00:00:00.000Z' }))).execute();
  }
  const applied = await migrateToLatest(db.db);
  assert.ok(applied.includes('20261206_1800_client_name_fold'), applied.join(', '));
  for (const table of ['billing_client', 'ledger_client'] as const) {
    const all = await db.db.selectFrom(table).select(['name', 'name_fold']).orderBy('client_number').execute();
    assert.equal(all.length, names.length + many.length);
    for (const r of all.slice(names.length)) assert.equal(r.name_fold, `societe a${String(r.name).slice('Société Ä'.length)}`, `${table}: ${String(r.name)}`);
    const rows = all.slice(0, names.length);
    assert.deepEqual(rows.map((r) => r.name_fold), names.map(foldName), table);
    assert.deepEqual(rows.map((r) => r.name_fold).slice(0, 6), ['muller gmbh', 'emile zola sarl', 'istanbul ticaret', 'orsted a/s', 'plain name ltd', 'strasse oeuvre lodz'], table);
  }
});
