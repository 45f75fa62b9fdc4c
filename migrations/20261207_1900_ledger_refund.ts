import { sql } from 'kysely';
import type { Kysely } from 'kysely';

// ledger_refund: a receipt's unallocated credit paid back to the client (an RJ journal: the
// unallocated receipts account debited, the office bank credited). The receipt's
// unallocated_minor falls by the amount; a refund taken back (reversal_journal_id set) gives
// it back. The id is the form's idempotency key.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('ledger_refund')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('receipt_id', 'text', (c) => c.notNull().references('ledger_receipt.id'))
    .addColumn('amount_minor', 'bigint', (c) => c.notNull().check(sql`amount_minor > 0`))
    .addColumn('refunded_on', 'text', (c) => c.notNull())
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('reference', 'text')
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('journal_id', 'text', (c) => c.notNull())
    .addColumn('reversal_journal_id', 'text')
    .addColumn('reversed_on', 'text')
    .addColumn('reversal_reason', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('ledger_refund_receipt_idx').on('ledger_refund').column('receipt_id').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('ledger_refund').execute();
}
