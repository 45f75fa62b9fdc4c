import type { Kysely } from 'kysely';

// billing_manual_email.cycle: the approval (the bill's approved_at) the manual email was sent
// for, read when its send began. Produce does not email again a bill emailed by hand to every
// address in its current approval; comparing the send's finish time with the approval could
// count an email of the bill as it was before a revert and re-approval that happened while the
// email was being sent. Rows sent before this column have null (compared by their time, as before).

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('billing_manual_email').addColumn('cycle', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('billing_manual_email').dropColumn('cycle').execute();
}
