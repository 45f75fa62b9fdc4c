import type { Kysely } from 'kysely';

// auth_throttle.lock_audited: the lock (its locked_until) whose refused sign-ins were audited.
// A sign-in refused during a lock is audited once per lock: the row, locked by the attempt's
// transaction, says whether that lock was audited already (by any process). Null: not yet.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('auth_throttle').addColumn('lock_audited', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('auth_throttle').dropColumn('lock_audited').execute();
}
