import type { Kysely } from 'kysely';

// billing_bill_export: billing's copy of the LEDES files e-billing exported, one row per bill in
// a file (fed by ebilling.file_exported). Billing reads it to say, before a bill is reverted,
// re-drafted or voided, that the client's e-billing system may already hold the invoice.
// Backfill: files exported before this migration reach the new handler (the inbox keeps every
// other handler of those events from running twice).

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('billing_bill_export')
    .addColumn('export_id', 'text', (c) => c.notNull())
    .addColumn('bill_id', 'text', (c) => c.notNull())
    .addColumn('file_name', 'text', (c) => c.notNull())
    .addColumn('format', 'text', (c) => c.notNull())
    .addColumn('total_minor', 'bigint', (c) => c.notNull())
    .addColumn('exported_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('billing_bill_export_pk', ['export_id', 'bill_id'])
    .execute();
  await db.schema.createIndex('billing_bill_export_bill_idx').on('billing_bill_export').columns(['bill_id', 'exported_at']).execute();
  await db.updateTable('outbox').set({ delivered_at: null }).where('type', '=', 'ebilling.file_exported').where('delivered_at', 'is not', null).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('billing_bill_export').execute();
}
