import type { Kysely } from 'kysely';
import { sql } from 'kysely';

// Matters' copy of the names of billing's bill and email templates (`billing.template_saved`;
// templates are only ever added or changed, never removed). A matter's, or the firm's default,
// bill or email template set to a name no template has was saved as typed and only refused at
// production; matters now refuses it at the field. Billing's built-in templates (which need no
// row) and the names it has stored are carried over once. (A test holds these built-in names to
// billing's DEFAULT_BILL_TEMPLATES and DEFAULT_EMAIL_TEMPLATES.)

const BUILT_IN: Record<'bill' | 'email', readonly string[]> = { bill: ['standard', 'itemised', 'total-only', 'fixed-fee'], email: ['standard'] };

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('matters_template')
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('bill', 'email')`))
    .addColumn('name', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('matters_template_pk', ['kind', 'name'])
    .execute();
  for (const [kind, table] of [['bill', 'billing_bill_template'], ['email', 'billing_email_template']] as const) {
    const stored = (await db.selectFrom(table).select('name').orderBy('name').limit(100_000).execute()).map((r) => String(r.name));
    const names = [...new Set([...BUILT_IN[kind], ...stored])];
    for (let i = 0; i < names.length; i += 500) {
      await db.insertInto('matters_template').values(names.slice(i, i + 500).map((name) => ({ kind, name }))).execute();
    }
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('matters_template').execute();
}
