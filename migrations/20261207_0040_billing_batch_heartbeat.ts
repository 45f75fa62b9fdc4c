import type { Kysely } from 'kysely';

// billing_batch.heartbeat_at: when the process drafting a bill run last said it was alive (every
// few seconds while it drafts). Another server process shows the run as going on while it is
// fresh, and offers Resume only once it is stale. Null: no process has drafted it since (every
// run before this column, and a run not started).

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('billing_batch').addColumn('heartbeat_at', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('billing_batch').dropColumn('heartbeat_at').execute();
}
