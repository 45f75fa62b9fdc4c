import type { Kysely } from 'kysely';
import { sql } from 'kysely';

// ledger_bill.discount_decided_on: the day a time-sensitive discount was decided (honoured by a
// person or by payment in time, or reversed), null while it is undecided. A statement as at an
// earlier day forecasts the discount back if it had expired undecided then, whatever was decided
// since (review 62 F5). Filled for the bills decided before this column: a reversal's day from its
// DJ journal; honoured by payment, the bill's last receipt; honoured by a person, unknown (null:
// decided at every date, as before).

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('ledger_bill').addColumn('discount_decided_on', 'text').execute();
  await sql`update ledger_bill set discount_decided_on = (
      select max(l.date) from ledger_journal j join ledger_journal_line l on l.journal_id = j.id
      where j.bill_id = ledger_bill.id and j.prefix = 'DJ' and j.reverses_journal_id is null
    ) where discount_status = 'reversed'`.execute(db);
  await sql`update ledger_bill set discount_decided_on = last_receipt_on where discount_status = 'honoured' and discount_decided = 0`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('ledger_bill').dropColumn('discount_decided_on').execute();
}
