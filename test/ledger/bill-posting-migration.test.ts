/**
 * The migration adding ledger_bill_posting fills it for the postings made before it, from the
 * books: each BJ's dates from its lines and its reversal's, its figures from the bill's row. A
 * bill posted once comes out exactly as the books now record it; for a bill posted again, the
 * earlier posting has its own dates and the latest one's figures (the earlier ones' were not kept).
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
  // The latest posting exactly as recorded; the earlier one with its own dates and journal, the bill's (latest) figures.
  assert.deepEqual(norm(filled[1]!), norm(recorded[1]!));
  assert.deepEqual([filled[0]!.journal_id, filled[0]!.counts_from, filled[0]!.undone_on], [recorded[0]!.journal_id, '2026-02-28', '2026-04-01']);
  assert.equal(filled[0]!.invoice_date, '2026-04-05');
  assert.equal(filled.length, 2);
});
