import type { Kysely } from 'kysely';
import { sql } from 'kysely';

// Mass billing runs (src/modules/billing/mass-commands.ts). A run ("batch") is created
// with the matters it will bill, one row each, then worked through in chunks; its status
// and counters are kept here so the page can poll them and a user can leave and come back.
// Each matter row ends drafted (with its bill) or skipped (with the reason), once.
// The rules against billing an item twice stay where they are (billing_wip.bill_id claim,
// live-line and one-draft unique indexes): a run that loses a race skips the matter.
// Portable types: text ids, integer counters, ISO dates and times as text, JSON as text.

const list = (values: readonly string[]) => sql.raw(values.map((v) => `'${v}'`).join(','));
const BATCH_STATUSES = ['pending', 'running', 'done', 'failed'] as const;
const ROW_STATES = ['pending', 'drafted', 'skipped'] as const;

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('billing_batch')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in (${list(BATCH_STATUSES)})`))
    .addColumn('invoice_date', 'text', (c) => c.notNull())
    .addColumn('up_to', 'text', (c) => c.notNull())
    /** The run's bill template (null: each matter's own). */
    .addColumn('template', 'text')
    /** The run's payment terms in days (null: the firm's). */
    .addColumn('payment_terms_days', 'integer', (c) => c.check(sql`payment_terms_days is null or (payment_terms_days >= 0 and payment_terms_days <= 3650)`))
    /** What the user chose: 'all' (every eligible matter under the filters) or 'selected'. */
    .addColumn('mode', 'text', (c) => c.notNull().check(sql`mode in ('all', 'selected')`))
    .addColumn('filters_json', 'text', (c) => c.notNull())
    .addColumn('matter_count', 'integer', (c) => c.notNull().check(sql`matter_count >= 0`))
    .addColumn('drafted_count', 'integer', (c) => c.notNull().defaultTo(0).check(sql`drafted_count >= 0`))
    .addColumn('skipped_count', 'integer', (c) => c.notNull().defaultTo(0).check(sql`skipped_count >= 0`))
    .addColumn('item_count', 'integer', (c) => c.notNull().defaultTo(0).check(sql`item_count >= 0`))
    .addColumn('error', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('finished_at', 'text')
    .addCheckConstraint('billing_batch_counts', sql`drafted_count + skipped_count <= matter_count`)
    .execute();
  await db.schema.createIndex('billing_batch_created_idx').on('billing_batch').columns(['created_at']).execute();

  await db.schema.createTable('billing_batch_matter')
    .addColumn('batch_id', 'text', (c) => c.notNull().references('billing_batch.id'))
    .addColumn('matter_id', 'text', (c) => c.notNull())
    /** Order within the run (client number, then matter number). */
    .addColumn('position', 'integer', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull().check(sql`state in (${list(ROW_STATES)})`))
    .addColumn('bill_id', 'text')
    .addColumn('item_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('total_minor', 'bigint')
    .addColumn('reason', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('billing_batch_matter_pk', ['batch_id', 'matter_id'])
    .addCheckConstraint('billing_batch_matter_outcome', sql`(state <> 'drafted' or bill_id is not null) and (state <> 'skipped' or reason is not null)`)
    .execute();
  await db.schema.createIndex('billing_batch_matter_pos_idx').on('billing_batch_matter').columns(['batch_id', 'state', 'position']).execute();
  await db.schema.createIndex('billing_bill_batch_idx').on('billing_bill').columns(['batch_id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('billing_bill_batch_idx').execute();
  await db.schema.dropTable('billing_batch_matter').execute();
  await db.schema.dropTable('billing_batch').execute();
}
