import type { Kysely } from 'kysely';

// billing_bill_pdf_earlier: a bill's final PDF of an earlier approval, kept when the bill is
// produced again under the same number (re-drafted or reverted, approved and produced anew).
// The client holds that document: a backup of the database still holds every bill sent, and the
// bill's page lists them. One row per bill and approval (cycle: that approval's approved_at).

function isPostgres(db: Kysely<any>): boolean {
  return db.getExecutor().adapter.constructor.name === 'PostgresAdapter';
}

export async function up(db: Kysely<any>): Promise<void> {
  const bytes = isPostgres(db) ? 'bytea' : 'blob';
  await db.schema.createTable('billing_bill_pdf_earlier')
    .addColumn('bill_id', 'text', (c) => c.notNull().references('billing_bill.id'))
    .addColumn('cycle', 'text', (c) => c.notNull())
    .addColumn('number', 'text', (c) => c.notNull())
    .addColumn('template', 'text', (c) => c.notNull())
    .addColumn('pdf', bytes, (c) => c.notNull())
    .addColumn('size_bytes', 'integer', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    /** When a PDF of a later approval replaced it as the bill's final PDF. */
    .addColumn('replaced_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('billing_bill_pdf_earlier_pk', ['bill_id', 'cycle'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('billing_bill_pdf_earlier').execute();
}
