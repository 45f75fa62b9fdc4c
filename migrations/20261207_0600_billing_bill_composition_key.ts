import type { Kysely } from 'kysely';

// billing_bill.composition_key: the matter's billing options and the firm's billing settings a
// bill was composed under, as a hash (what of them feeds its amounts, lines and dates). A draft
// whose key is not that of the options in force now is refused approval until it is composed
// again. Null: composed before this column (no check), or never composed.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('billing_bill').addColumn('composition_key', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('billing_bill').dropColumn('composition_key').execute();
}
