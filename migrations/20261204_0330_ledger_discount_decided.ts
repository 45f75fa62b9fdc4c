import type { Kysely } from 'kysely';
import { sql } from 'kysely';

// How a time-sensitive discount came to be honoured: 1 when a person decided it (the bill's
// "Honour discount", or a receipt told to honour it), 0 when payment in time honoured it.
// Taking that payment back (a dishonoured cheque, a released allocation, a bill reverted and
// approved without its money) puts a discount honoured by payment back to pending; a
// person's decision stands (seed 003: decided once).

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('ledger_bill')
    .addColumn('discount_decided', 'integer', (c) => c.notNull().defaultTo(0).check(sql`discount_decided in (0, 1)`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('ledger_bill').dropColumn('discount_decided').execute();
}
