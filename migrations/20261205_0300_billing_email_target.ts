import type { Kysely } from 'kysely';

// billing_bill_production.email_target: where the send recorded as tried went (the file-drop
// folder's absolute path, or the SMTP server's host:port). A retry after a process stopped
// mid-send resends through file-drop only into the folder it was tried into: the folder's
// journal is what makes a resend idempotent, and a folder changed since (MAIL_DROP_DIR) has none.
// Rows tried before this column have null (taken as the same folder, as before).

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('billing_bill_production').addColumn('email_target', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('billing_bill_production').dropColumn('email_target').execute();
}
