/**
 * The migration adding ledger_bill_posting fills it for the postings made before it: each BJ's
 * days from its lines and its reversal's, its dates and figures from the approval event it posted
 * (review 63 F1: not the bill's latest), or without that event the BJ's own date.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { FileMigrationProvider, Migrator } from 'kysely';
import { MIGRATIONS_DIR, migrateToLatest } from '../../src/adapters/db/migrate.ts';
import { eachDialect } from '../support/db.ts';
import { ctx, setupWithApprovedBill } from './support.ts';

const BEFORE = '20261207_2200_web_flash';

eachDialect('ledger_bill_posting is filled for the postings made before it', async (db) => {
  const { s, bill } = await setupWithApprovedBill(db);
  // The bill reverted in April (February and March closed: undone on 1 April) and approved again, dated 5 April.
  s.clock.set('2026-04-10T09:00:00Z');
  await s.ledger.setPeriod(ctx, { period: '2026-02', status: 'closed' });
  await s.ledger.setPeriod(ctx, { period: '2026-03', status: 'closed' });
  await s.billing.revert(ctx, bill.billId);
  await s.drain();
  await s.billing.updateDraft(ctx, bill.billId, { invoiceDate: '2026-04-05' });
  await s.billing.approve(ctx, bill.billId);
  await s.drain();
  const rows = () => db.db.selectFrom('ledger_bill_posting').selectAll().orderBy('counts_from').execute();
  const recorded = await rows();
  assert.deepEqual(recorded.map((r) => [r.invoice_date, r.counts_from, r.undone_on]), [['2026-02-28', '2026-02-28', '2026-04-01'], ['2026-04-05', '2026-04-05', null]]);

  const migrator = new Migrator({ db: db.db, provider: new FileMigrationProvider({ fs, path, migrationFolder: MIGRATIONS_DIR }), migrationTableName: 'schema_migration', migrationLockTableName: 'schema_migration_lock' });
  const down = await migrator.migrateTo(BEFORE);
  assert.equal(down.error, undefined, String(down.error));
  assert.ok(down.results?.some((r) => r.migrationName === '20261207_2210_ledger_bill_posting'), 'the table\'s migration was undone');
  const applied = await migrateToLatest(db.db);
  assert.ok(applied.includes('20261207_2210_ledger_bill_posting'), applied.join(', '));
  const filled = await rows();
  const norm = (r: Record<string, unknown>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' || (typeof v === 'string' && /_minor$/.test(k)) ? Number(v) : v]));
  // Both exactly as recorded when they were posted: each from its own approval's event.
  assert.deepEqual(filled.map(norm), recorded.map(norm));
  // Without the event (an outbox row gone): the BJ's own date, the bill's figures as they are now.
  await db.db.deleteFrom('ledger_bill_posting').execute();
  const first = recorded[0]!.journal_id as string;
  const event = (await db.db.selectFrom('ledger_journal').select('event_id').where('id', '=', first).executeTakeFirstOrThrow()).event_id as string;
  await db.db.updateTable('outbox').set({ type: 'test.not_an_approval' }).where('id', '=', event).execute();
  await migrator.migrateTo(BEFORE);
  await migrateToLatest(db.db);
  const again = await rows();
  assert.deepEqual([again[0]!.journal_id, again[0]!.invoice_date, again[0]!.counts_from, again[0]!.undone_on], [first, '2026-02-28', '2026-02-28', '2026-04-01']);
  assert.deepEqual(norm(again[1]!), norm(recorded[1]!));
});
