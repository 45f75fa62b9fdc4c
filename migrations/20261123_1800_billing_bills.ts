import type { Kysely } from 'kysely';
import { sql } from 'kysely';

// Bills and their life (src/modules/billing/commands.ts): the bill, its lines and fee
// allocation, each matter's bill sequence (gapless numbers file.sequence), and the
// recorded retainer balance the composer uses until the trust module owns retainers.
//
// An item is on one live bill at most, and the database enforces it twice:
//  - billing_wip.bill_id holds one bill; the composer claims items with
//    `update billing_wip set bill_id = :bill where id in (...) and bill_id is null` and
//    refuses unless every row was updated (Postgres re-checks the condition after a
//    concurrent claim commits; SQLite write transactions are serialised);
//  - billing_bill_line(item_id) is unique among live lines (lines of deleted bills are
//    kept with live = 0 for the record).
// A matter has one draft at most (partial unique index), and a bill number is used once.
// Portable types: text ids, bigint minor units, ISO dates and times as text, JSON as text.

const list = (values: readonly string[]) => sql.raw(values.map((v) => `'${v}'`).join(','));

const BILL_STATUSES = ['draft', 'approved', 'finalised', 'deleted'] as const;
const LINE_KINDS = ['time', 'disbursement', 'fixed_charge', 'fixed_fee', 'quote_fee', 'adhoc_fee', 'adhoc_disbursement', 'discount', 'interest'] as const;
const ITEM_KINDS = ['time', 'disbursement', 'fixed_charge'] as const;

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('billing_bill')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('matter_id', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('file_number', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in (${list(BILL_STATUSES)})`))
    /** file.sequence, set at first approval and kept for ever (a deleted bill keeps it: void). */
    .addColumn('number', 'text')
    .addColumn('sequence', 'integer', (c) => c.check(sql`sequence is null or sequence >= 1`))
    .addColumn('invoice_date', 'text', (c) => c.notNull())
    .addColumn('up_to', 'text', (c) => c.notNull())
    .addColumn('due_date', 'text', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull().check(sql`length(currency) = 3`))
    .addColumn('fees_minor', 'bigint', (c) => c.notNull())
    .addColumn('fixed_charges_minor', 'bigint', (c) => c.notNull())
    .addColumn('disbursements_minor', 'bigint', (c) => c.notNull())
    /** Positive: what the discount line takes off. */
    .addColumn('discount_minor', 'bigint', (c) => c.notNull())
    .addColumn('interest_minor', 'bigint', (c) => c.notNull())
    .addColumn('tax_minor', 'bigint', (c) => c.notNull())
    .addColumn('total_minor', 'bigint', (c) => c.notNull())
    /** Fees less their share of a discount line: what the fee allocation splits. */
    .addColumn('net_fees_minor', 'bigint', (c) => c.notNull())
    /** The recorded retainer balance the bill was composed with (null: no retainer). */
    .addColumn('retainer_balance_minor', 'bigint')
    .addColumn('retainer_request_minor', 'bigint', (c) => c.notNull())
    /** The discount the composer applied, shown as a line or written into the fee lines (0: none). */
    .addColumn('discount_applied_minor', 'bigint', (c) => c.notNull().defaultTo(0))
    /** A time-sensitive discount: valid if paid by this date; and the total once it expires. */
    .addColumn('discount_valid_until', 'text')
    .addColumn('undiscounted_total_minor', 'bigint')
    .addColumn('hide_line_pricing', 'integer', (c) => c.notNull().check(sql`hide_line_pricing in (0, 1)`))
    .addColumn('on_hold', 'integer', (c) => c.notNull().defaultTo(0).check(sql`on_hold in (0, 1)`))
    /** A mass-billing run, when the bill came from one. */
    .addColumn('batch_id', 'text')
    /** The clerk's choices (filters, toggles, write-to targets, fixed fee, discount, interest, ad hoc lines), JSON. */
    .addColumn('request_json', 'text', (c) => c.notNull())
    /** The quote rule applied (QuoteOutcome JSON) and its words for the clerk. */
    .addColumn('quote_json', 'text')
    .addColumn('quote_reason', 'text')
    /** Fixed-fee schedule rows billed on this bill (JSON array of row ids). */
    .addColumn('schedule_rows_json', 'text', (c) => c.notNull())
    /** Receipts that were allocated to the bill when it was re-drafted: to allocate again when it is finalised. */
    .addColumn('receipts_to_reallocate_minor', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('version', 'integer', (c) => c.notNull().check(sql`version >= 1`))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('approved_at', 'text')
    .addColumn('finalised_at', 'text')
    .addColumn('redrafted_at', 'text')
    .addColumn('deleted_at', 'text')
    .addCheckConstraint('billing_bill_number_with_sequence', sql`(number is null) = (sequence is null)`)
    .addCheckConstraint('billing_bill_posted_numbered', sql`status not in ('approved', 'finalised') or number is not null`)
    .execute();
  await db.schema.createIndex('billing_bill_matter_idx').on('billing_bill').columns(['matter_id', 'created_at']).execute();
  await db.schema.createIndex('billing_bill_status_idx').on('billing_bill').columns(['status', 'invoice_date']).execute();
  await db.schema.createIndex('billing_bill_number_uq').on('billing_bill').column('number').unique()
    .where(sql.ref('number'), 'is not', null).execute();
  await db.schema.createIndex('billing_bill_sequence_uq').on('billing_bill').columns(['matter_id', 'sequence']).unique()
    .where(sql.ref('sequence'), 'is not', null).execute();
  await db.schema.createIndex('billing_bill_one_draft_uq').on('billing_bill').column('matter_id').unique()
    .where(sql.ref('status'), '=', 'draft').execute();

  await db.schema.createTable('billing_bill_line')
    .addColumn('bill_id', 'text', (c) => c.notNull().references('billing_bill.id'))
    .addColumn('line_no', 'integer', (c) => c.notNull().check(sql`line_no >= 1`))
    /** Stable within the bill: the item id, or kind:n for lines without an item. */
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('item_id', 'text')
    .addColumn('item_kind', 'text', (c) => c.check(sql`item_kind is null or item_kind in (${list(ITEM_KINDS)})`))
    .addColumn('schedule_row_id', 'text')
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in (${list(LINE_KINDS)})`))
    .addColumn('date', 'text', (c) => c.notNull())
    .addColumn('timekeeper_id', 'text')
    /** The firm's code: disbursement code or charge type code. */
    .addColumn('code', 'text')
    .addColumn('charge_type_id', 'text')
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('minutes', 'integer')
    .addColumn('rate_minor', 'bigint')
    .addColumn('recorded_minor', 'bigint', (c) => c.notNull())
    .addColumn('amount_minor', 'bigint', (c) => c.notNull())
    .addColumn('no_charge', 'integer', (c) => c.notNull().check(sql`no_charge in (0, 1)`))
    .addColumn('tax_code', 'text')
    .addColumn('tax_minor', 'bigint', (c) => c.notNull())
    .addColumn('task_code', 'text')
    .addColumn('activity_code', 'text')
    .addColumn('expense_code', 'text')
    /** 1 while the bill is not deleted. */
    .addColumn('live', 'integer', (c) => c.notNull().check(sql`live in (0, 1)`))
    .addPrimaryKeyConstraint('billing_bill_line_pk', ['bill_id', 'line_no'])
    .execute();
  await db.schema.createIndex('billing_bill_line_live_item_uq').on('billing_bill_line').column('item_id').unique()
    .where(sql<boolean>`item_id is not null and live = 1`).execute();

  await db.schema.createTable('billing_bill_allocation')
    .addColumn('bill_id', 'text', (c) => c.notNull().references('billing_bill.id'))
    .addColumn('timekeeper_id', 'text', (c) => c.notNull())
    .addColumn('amount_minor', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('billing_bill_allocation_pk', ['bill_id', 'timekeeper_id'])
    .execute();

  // The last bill sequence used on each matter: numbers are taken in the approving
  // transaction and never given back, so they are gapless and never reused.
  await db.schema.createTable('billing_matter_sequence')
    .addColumn('matter_id', 'text', (c) => c.primaryKey())
    .addColumn('last_sequence', 'integer', (c) => c.notNull().check(sql`last_sequence >= 0`))
    .execute();

  // Until the trust module owns retainers: a recorded opening balance per matter.
  await db.schema.createTable('billing_retainer_balance')
    .addColumn('matter_id', 'text', (c) => c.primaryKey())
    .addColumn('balance_minor', 'bigint', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull().check(sql`length(currency) = 3`))
    .addColumn('as_of', 'text', (c) => c.notNull())
    .addColumn('note', 'text')
    .addColumn('version', 'integer', (c) => c.notNull().check(sql`version >= 1`))
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['billing_retainer_balance', 'billing_matter_sequence', 'billing_bill_allocation', 'billing_bill_line', 'billing_bill']) {
    await db.schema.dropTable(t).execute();
  }
}
