import type { Kysely } from 'kysely';
import { sql } from 'kysely';

// CSV imports applied, one row each, keyed by the import id the preview page renders into
// its apply form (an idempotency key). The row is written inside the apply's transaction,
// so the primary key lets one apply of a preview through: a repeated or parallel apply
// with the same id finds it (or loses the key race) and is answered with the outcome
// stored here, writing nothing. sha256 is the applied CSV text's, so the same id with
// another file or kind is refused. Portable types: text ids, ISO-8601 times as text.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('matters_import')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('clients', 'matters', 'time-entries', 'disbursements')`))
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('row_count', 'integer', (c) => c.notNull().check(sql`row_count >= 0`))
    .addColumn('imported', 'integer', (c) => c.notNull().check(sql`imported >= 0`))
    /** JSON: accepted, created (row, id, reference) and warnings, to answer a repeat with. */
    .addColumn('result', 'text', (c) => c.notNull())
    .addColumn('actor_id', 'text')
    .addColumn('actor_label', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('matters_import').execute();
}
