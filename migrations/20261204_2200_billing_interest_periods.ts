import type { Kysely } from 'kysely';
import { sql } from 'kysely';

// Interest by the firm's policy may charge one overdue bill for more than one period on one
// bill: the days no other live bill has charged are not always one run (an older bill
// re-drafted after a newer bill charged later days; a deleted bill's days between two live
// charges). billing_interest_charge's key becomes (charging bill, overdue bill, first day);
// the rows are carried over as they are. The table is rebuilt, because SQLite cannot change
// a primary key in place.

const COLUMNS = ['charging_bill_id', 'overdue_bill_id', 'overdue_bill_number', 'from_date', 'through_date', 'balance_minor', 'amount_minor'];

async function rebuild(db: Kysely<any>, key: string[], keyName: string): Promise<void> {
  await db.schema.createTable('billing_interest_charge_next')
    .addColumn('charging_bill_id', 'text', (c) => c.notNull())
    .addColumn('overdue_bill_id', 'text', (c) => c.notNull())
    .addColumn('overdue_bill_number', 'text', (c) => c.notNull())
    .addColumn('from_date', 'text', (c) => c.notNull())
    .addColumn('through_date', 'text', (c) => c.notNull())
    .addColumn('balance_minor', 'bigint', (c) => c.notNull().check(sql`balance_minor > 0`))
    .addColumn('amount_minor', 'bigint', (c) => c.notNull().check(sql`amount_minor >= 0`))
    .addPrimaryKeyConstraint(keyName, key as any)
    .addCheckConstraint('billing_interest_charge_days', sql`from_date < through_date`)
    .execute();
  await db.insertInto('billing_interest_charge_next').columns(COLUMNS)
    .expression(db.selectFrom('billing_interest_charge').select(COLUMNS)).execute();
  await db.schema.dropIndex('billing_interest_charge_overdue').execute();
  await db.schema.dropTable('billing_interest_charge').execute();
  await db.schema.alterTable('billing_interest_charge_next').renameTo('billing_interest_charge').execute();
  await db.schema.createIndex('billing_interest_charge_overdue').on('billing_interest_charge').columns(['overdue_bill_id', 'through_date']).execute();
}

export async function up(db: Kysely<any>): Promise<void> {
  await rebuild(db, ['charging_bill_id', 'overdue_bill_id', 'from_date'], 'billing_interest_charge_period_pk');
}

export async function down(db: Kysely<any>): Promise<void> {
  const split = await db.selectFrom('billing_interest_charge').select(['charging_bill_id', 'overdue_bill_id'])
    .groupBy(['charging_bill_id', 'overdue_bill_id']).having(sql`count(*)`, '>', 1).limit(1).execute();
  if (split.length > 0) throw new Error('billing_interest_charge: a bill charges interest on an overdue bill for more than one period; the older key cannot hold it');
  await rebuild(db, ['charging_bill_id', 'overdue_bill_id'], 'billing_interest_charge_pk');
}
