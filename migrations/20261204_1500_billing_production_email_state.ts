import type { Kysely } from 'kysely';
import { sql } from 'kysely';

// Emails whose outcome is not known, and manual emails claimed before they are sent.
// - billing_bill_production.email_unconfirmed_at: production handed the bill's email to the
//   SMTP server and did not hear back (a timeout or a dropped connection after the message
//   went), or a process stopped while sending it. The email may have been sent: a retry does not
//   send it again; a clerk chooses to send it again or to mark it as sent (each audit-logged).
// - billing_manual_email_claim: a manual email (one compose form's message, keyed as
//   billing_manual_email.id) claimed in its own commit before it is sent, so the same form
//   posted to several server processes at once is sent by one of them. The claim is a lease
//   (claimed_until, renewed while the send lasts). A send that failed for certain drops the
//   claim (the form posted again sends it); one whose outcome is unknown (the server did not
//   confirm) leaves it 'unconfirmed', and so does a sender that stopped mid-send (its lease ran
//   out): the same form posted again is then refused with the reason, never sent twice by
//   itself; the clerk sends it again from a fresh form. The row goes once the email is recorded.
// Portable types: text ids, ISO times as text.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('billing_bill_production').addColumn('email_unconfirmed_at', 'text').execute();
  await db.schema.createTable('billing_manual_email_claim')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('bill_id', 'text', (c) => c.notNull().references('billing_bill.id'))
    .addColumn('token', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('sending').check(sql`state = 'sending' or state = 'unconfirmed'`))
    .addColumn('claimed_until', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('billing_manual_email_claim').execute();
  await db.schema.alterTable('billing_bill_production').dropColumn('email_unconfirmed_at').execute();
}
