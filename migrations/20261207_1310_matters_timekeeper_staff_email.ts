import type { Kysely } from 'kysely';

// matters_timekeeper.staff_email: the staff account (its sign-in email) that records this
// timekeeper's time. A signed-in user with the timekeeper role records, changes and deletes
// the time of the timekeepers linked to their account only. Null: linked to no account.
// One account per timekeeper at most (a unique index; NULLs are not compared).

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('matters_timekeeper').addColumn('staff_email', 'text').execute();
  await db.schema.createIndex('matters_timekeeper_staff_email_idx').on('matters_timekeeper').column('staff_email').unique().execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('matters_timekeeper_staff_email_idx').execute();
  await db.schema.alterTable('matters_timekeeper').dropColumn('staff_email').execute();
}
