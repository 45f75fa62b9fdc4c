import type { Kysely } from 'kysely';
import { sql } from 'kysely';

// The mail transport chosen on billing's settings page, and the transport each bill's email was
// last tried through.
// - billing_mail_transport: one row ('firm') once an admin chose on the page: SMTP (host, port,
//   TLS from the start or not, user and password), the file-drop folder, or 'server'. No row, or
//   'server': the server's configuration (MAIL_TRANSPORT, SMTP_*) decides, as before. When the server's
//   configuration sets MAIL_TRANSPORT, it wins and the page cannot change it. The password is
//   kept as given (the server needs it to sign in) and never shown again.
// - billing_bill_production.email_transport: the transport of the send recorded as tried. A retry
//   after a process stopped mid-send resends only through the file-drop folder it was tried
//   through (idempotent there by the message key); a send tried over SMTP, or through a transport
//   changed since, may have gone and is left for a clerk to decide.
// Portable types: text ids, integer port and flag, ISO times as text.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('billing_mail_transport')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('transport', 'text', (c) => c.notNull().check(sql`transport = 'server' or transport = 'smtp' or transport = 'file-drop'`))
    .addColumn('smtp_host', 'text')
    .addColumn('smtp_port', 'integer', (c) => c.check(sql`smtp_port is null or (smtp_port >= 1 and smtp_port <= 65535)`))
    .addColumn('smtp_secure', 'integer', (c) => c.notNull().defaultTo(0).check(sql`smtp_secure = 0 or smtp_secure = 1`))
    .addColumn('smtp_user', 'text')
    .addColumn('smtp_password', 'text')
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .execute();
  await db.schema.alterTable('billing_bill_production').addColumn('email_transport', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('billing_bill_production').dropColumn('email_transport').execute();
  await db.schema.dropTable('billing_mail_transport').execute();
}
