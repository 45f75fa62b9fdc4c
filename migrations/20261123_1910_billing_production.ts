import type { Kysely } from 'kysely';
import { sql } from 'kysely';

// Bill production (src/modules/billing/production.ts): firm letterhead and output settings,
// bill and email templates, the final PDF kept with each bill, and the per-bill, per-step
// production state that makes producing idempotent.
//
// - billing_bill_production: one row per bill and approval (cycle = the bill's approved_at),
//   a step column each (pdf stored, printed, emailed, finalised: a time once done) and a
//   lease (claim_token, claimed_until) that a process must take with a conditional update
//   before it does anything for the bill; two processes never work on one bill at once, and
//   a crashed process's lease runs out so another can finish what it left.
// - billing_bill_pdf: the final PDF bytes in the database (bytea / blob) so a backup of the
//   database is a backup of every bill sent, and the row is written in the same transaction
//   that records the step.
// - billing_production_run / _run_item: what the page shows (progress, failures per bill).
// Portable types: text ids, integer counts, ISO times as text, bytes as bytea/blob.

function isPostgres(db: Kysely<any>): boolean {
  return db.getExecutor().adapter.constructor.name === 'PostgresAdapter';
}

export async function up(db: Kysely<any>): Promise<void> {
  const bytes = isPostgres(db) ? 'bytea' : 'blob';

  await db.schema.createTable('billing_settings')
    .addColumn('id', 'text', (c) => c.primaryKey().check(sql`id = 'firm'`))
    .addColumn('firm_name', 'text', (c) => c.notNull())
    .addColumn('address', 'text', (c) => c.notNull())
    .addColumn('tax_id', 'text', (c) => c.notNull())
    .addColumn('phone', 'text', (c) => c.notNull())
    .addColumn('email', 'text', (c) => c.notNull())
    /** Sender for bills; empty: the configured MAIL_FROM. */
    .addColumn('mail_from', 'text', (c) => c.notNull())
    .addColumn('payment_note', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .execute();

  await db.schema.createTable('billing_bill_template')
    /** The name a matter's billTemplate option gives (e.g. "standard"). */
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('layout', 'text', (c) => c.notNull().check(sql`layout in ('itemised', 'total_only', 'fixed_fee')`))
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('footer', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema.createTable('billing_email_template')
    /** The name a matter's emailTemplate option gives. */
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema.createTable('billing_bill_pdf')
    .addColumn('bill_id', 'text', (c) => c.primaryKey().references('billing_bill.id'))
    /** The approval it was produced for (the bill's approved_at). */
    .addColumn('cycle', 'text', (c) => c.notNull())
    .addColumn('number', 'text', (c) => c.notNull())
    .addColumn('template', 'text', (c) => c.notNull())
    .addColumn('pdf', bytes, (c) => c.notNull())
    .addColumn('size_bytes', 'integer', (c) => c.notNull().check(sql`size_bytes > 0`))
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema.createTable('billing_bill_production')
    .addColumn('bill_id', 'text', (c) => c.notNull().references('billing_bill.id'))
    .addColumn('cycle', 'text', (c) => c.notNull())
    .addColumn('claim_token', 'text')
    .addColumn('claimed_until', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('pdf_stored_at', 'text')
    /** Print: the copies asked for, when they were written, and where. */
    .addColumn('copies', 'integer')
    .addColumn('printed_at', 'text')
    .addColumn('print_detail', 'text')
    /** Email: set before a send is tried (so a crash mid-send is visible), then when sent. */
    .addColumn('email_to', 'text')
    .addColumn('email_tried_at', 'text')
    .addColumn('emailed_at', 'text')
    .addColumn('email_message_id', 'text')
    .addColumn('email_detail', 'text')
    .addColumn('finalised_at', 'text')
    .addColumn('last_error', 'text')
    .addColumn('failed_step', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('billing_bill_production_pk', ['bill_id', 'cycle'])
    .execute();

  await db.schema.createTable('billing_production_run')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('total', 'integer', (c) => c.notNull().check(sql`total >= 0`))
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('running', 'done')`))
    /** Refreshed while a process works on the run: a stale heartbeat means it was interrupted. */
    .addColumn('heartbeat_at', 'text', (c) => c.notNull())
    .addColumn('finished_at', 'text')
    .execute();

  await db.schema.createTable('billing_production_run_item')
    .addColumn('run_id', 'text', (c) => c.notNull().references('billing_production_run.id'))
    .addColumn('bill_id', 'text', (c) => c.notNull())
    .addColumn('position', 'integer', (c) => c.notNull())
    .addColumn('number', 'text')
    .addColumn('outcome', 'text', (c) => c.notNull().check(sql`outcome in ('pending', 'done', 'failed', 'busy')`))
    .addColumn('error', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('billing_production_run_item_pk', ['run_id', 'bill_id'])
    .execute();
  await db.schema.createIndex('billing_production_run_item_bill_idx').on('billing_production_run_item').columns(['bill_id', 'updated_at']).execute();

  await db.schema.createTable('billing_manual_email')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('bill_id', 'text', (c) => c.notNull().references('billing_bill.id'))
    .addColumn('to_json', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('message_id', 'text')
    .addColumn('detail', 'text')
    .addColumn('sent_at', 'text', (c) => c.notNull())
    .addColumn('sent_by', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('billing_manual_email_bill_idx').on('billing_manual_email').columns(['bill_id', 'sent_at']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['billing_manual_email', 'billing_production_run_item', 'billing_production_run', 'billing_bill_production', 'billing_bill_pdf',
    'billing_email_template', 'billing_bill_template', 'billing_settings']) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
