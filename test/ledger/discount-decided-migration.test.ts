/**
 * The migration adding ledger_bill.discount_decided_on fills it for discounts decided before
 * it: a reversed discount's day from its DJ journal. On both databases.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { FileMigrationProvider, Migrator } from 'kysely';
import { MIGRATIONS_DIR, migrateToLatest } from '../../src/adapters/db/migrate.ts';
import { eachDialect } from '../support/db.ts';
import { ctx, oneHourBill, setup } from './support.ts';

eachDialect('ledger_bill.discount_decided_on is filled for the discounts decided before it', async (db) => {
  const s = await setup(db);
  // 300.00 less 10% if paid by 5 March; paid in full on 12 March: the discount reversed that day.
  const { bill } = await oneHourBill(s, { bp: 1_000, validUntil: '2026-03-05' });
  s.clock.set('2026-03-12T09:00:00Z');
  await s.ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-03-12', amountMinor: 30_000, order: 'this_bill_only' });
  const row = () => db.db.selectFrom('ledger_bill').select(['discount_status', 'discount_decided_on']).where('id', '=', bill.billId).executeTakeFirstOrThrow();
  assert.deepEqual(await row(), { discount_status: 'reversed', discount_decided_on: '2026-03-12' });

  const migrator = new Migrator({ db: db.db, provider: new FileMigrationProvider({ fs, path, migrationFolder: MIGRATIONS_DIR }), migrationTableName: 'schema_migration', migrationLockTableName: 'schema_migration_lock' });
  const down = await migrator.migrateTo('20261207_2210_ledger_bill_posting');
  assert.equal(down.error, undefined, String(down.error));
  assert.ok(down.results?.some((r) => r.migrationName === '20261207_2220_ledger_discount_decided_on'));
  await migrateToLatest(db.db);
  assert.deepEqual(await row(), { discount_status: 'reversed', discount_decided_on: '2026-03-12' }, 'the DJ journal\'s day');
});
