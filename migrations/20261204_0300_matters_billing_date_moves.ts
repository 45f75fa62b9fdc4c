import type { Kysely } from 'kysely';
import { sql } from 'kysely';

// Next billing dates that keep their day and can be put back.
//  - matters_matter.billing_anchor_day: the day of month a person last set the next billing
//    date on. Advancing by months counts to that day (clamped to the month's length), so a
//    date on the 31st goes 31 Jan -> 28 Feb -> 31 Mar, not on to 28 Mar and the 28th for good.
//    Existing matters take the day of their stored date.
//  - matters_billing_date_move: what each approved bill did to its matter's next billing date
//    (before and after), so a bill reverted, re-drafted or deleted puts the date back when no
//    later bill has moved it since: the cycle's bill is gone, so the cycle is due again.
// Portable types: text ids and dates, integer day.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('matters_matter')
    .addColumn('billing_anchor_day', 'integer', (c) => c.check(sql`billing_anchor_day is null or (billing_anchor_day >= 1 and billing_anchor_day <= 31)`))
    .execute();
  await sql`update matters_matter set billing_anchor_day = cast(substr(next_billing_date, 9, 2) as integer) where next_billing_date is not null`.execute(db);
  await db.schema.createTable('matters_billing_date_move')
    .addColumn('bill_id', 'text', (c) => c.primaryKey())
    .addColumn('matter_id', 'text', (c) => c.notNull())
    .addColumn('before_date', 'text')
    .addColumn('after_date', 'text', (c) => c.notNull())
    .addColumn('moved_at', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('matters_billing_date_move').execute();
  await db.schema.alterTable('matters_matter').dropColumn('billing_anchor_day').execute();
}
