import type { Kysely } from 'kysely';

// billing_manual_email_claim, what Produce needs of a manual email under way or maybe sent:
// - cycle: the approval (the bill's approved_at) the email is for, read when its send began:
//   Produce holds its own email only for a claim of the bill's current approval (compared as
//   text, not by the clocks of two servers);
// - to_json: the addresses it went to (to and cc): one to other addresses than Produce's does
//   not hold Produce's email;
// - decided_at: when the clerk decided on the bill's email in production (Send again or Mark
//   as sent): the claim no longer holds Produce's email (it still stops the same form being
//   sent again).
// Claims made before these columns have nulls: compared by time, counted whatever their addresses.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('billing_manual_email_claim').addColumn('cycle', 'text').execute();
  await db.schema.alterTable('billing_manual_email_claim').addColumn('to_json', 'text').execute();
  await db.schema.alterTable('billing_manual_email_claim').addColumn('decided_at', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('billing_manual_email_claim').dropColumn('decided_at').execute();
  await db.schema.alterTable('billing_manual_email_claim').dropColumn('to_json').execute();
  await db.schema.alterTable('billing_manual_email_claim').dropColumn('cycle').execute();
}
