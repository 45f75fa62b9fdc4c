import type { Kysely } from 'kysely';

// billing_bill_production.email_sent_to: the addresses the mail server took this cycle's bill
// email for (a JSON array). A server that refuses some addresses and takes the message for the
// others leaves the email step failed; the retry sends it only to the addresses not reached yet.
// Null: none reached yet (every row before this column: their emails either went to every
// address or failed for all).

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('billing_bill_production').addColumn('email_sent_to', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('billing_bill_production').dropColumn('email_sent_to').execute();
}
