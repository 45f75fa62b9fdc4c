import type { Kysely } from 'kysely';

// Drafts in no run (made or changed in the composer), which mass billing counts and lists on
// every load (batch_id is null, status 'draft', oldest first), and a run's drafts (batch_id =,
// status 'draft'): one index in that order, in place of the index on batch_id alone. (A
// partial index on drafts in no run was measured: SQLite's planner kept to the status index.)

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('billing_bill_batch_status_idx').on('billing_bill').columns(['batch_id', 'status', 'created_at', 'id']).execute();
  await db.schema.dropIndex('billing_bill_batch_idx').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('billing_bill_batch_idx').on('billing_bill').columns(['batch_id']).execute();
  await db.schema.dropIndex('billing_bill_batch_status_idx').execute();
}
