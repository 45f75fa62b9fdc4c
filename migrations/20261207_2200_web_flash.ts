import type { Kysely } from 'kysely';

// web_flash: what an action's redirect shows (its message, warnings, notes), kept under a random
// key named in the address (`?done=KEY`) for the user who acted and the page it is for. Kept in
// the database, not in one process's memory, so that with several server processes behind one
// address the page after the redirect shows it whichever process serves it. Rows are short-lived:
// each new one clears those past their time (src/shared/web/flash.ts).

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('web_flash')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('value_json', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('web_flash_created_idx').on('web_flash').column('created_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('web_flash').execute();
}
