import type { Kysely } from 'kysely';
import { sql } from 'kysely';

// Billing's copy of the debtors ledger's bill balances (ledger.bill_balance_changed), and
// the interest the firm's policy has charged on overdue bills.
//  - billing_bill_balance: one row per posted bill, as the ledger last reported it. Billing
//    uses it to refuse deleting a receipted bill and to charge interest on overdue balances.
//  - billing_interest_charge: which later bill charged interest on which overdue bill, and
//    for which days (from_date exclusive .. through_date inclusive), so a day is charged once.
//    Rows belong to the charging bill and go when that bill is deleted or recomposed.
// Portable types: text ids, bigint minor units, ISO dates as text.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('billing_bill_balance')
    .addColumn('bill_id', 'text', (c) => c.primaryKey())
    .addColumn('matter_id', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('bill_number', 'text', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('total_minor', 'bigint', (c) => c.notNull())
    .addColumn('paid_minor', 'bigint', (c) => c.notNull().check(sql`paid_minor >= 0`))
    .addColumn('written_off_minor', 'bigint', (c) => c.notNull())
    .addColumn('outstanding_minor', 'bigint', (c) => c.notNull())
    .addColumn('last_receipt_on', 'text')
    .addColumn('due_date', 'text', (c) => c.notNull())
    /** A time-sensitive discount: pending (undecided), honoured, reversed; none otherwise. */
    .addColumn('discount_status', 'text', (c) => c.notNull().check(sql`discount_status in ('none', 'pending', 'honoured', 'reversed')`))
    .addColumn('discount_valid_until', 'text')
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('open', 'reversed')`))
    .addColumn('occurred_on', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('billing_bill_balance_matter').on('billing_bill_balance').columns(['matter_id', 'status']).execute();

  await db.schema.createTable('billing_interest_charge')
    .addColumn('charging_bill_id', 'text', (c) => c.notNull())
    .addColumn('overdue_bill_id', 'text', (c) => c.notNull())
    .addColumn('overdue_bill_number', 'text', (c) => c.notNull())
    .addColumn('from_date', 'text', (c) => c.notNull())
    .addColumn('through_date', 'text', (c) => c.notNull())
    .addColumn('balance_minor', 'bigint', (c) => c.notNull().check(sql`balance_minor > 0`))
    .addColumn('amount_minor', 'bigint', (c) => c.notNull().check(sql`amount_minor >= 0`))
    .addPrimaryKeyConstraint('billing_interest_charge_pk', ['charging_bill_id', 'overdue_bill_id'])
    .addCheckConstraint('billing_interest_charge_days', sql`from_date < through_date`)
    .execute();
  await db.schema.createIndex('billing_interest_charge_overdue').on('billing_interest_charge').columns(['overdue_bill_id', 'through_date']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('billing_interest_charge').execute();
  await db.schema.dropTable('billing_bill_balance').execute();
}
