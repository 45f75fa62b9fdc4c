import type { Kysely } from 'kysely';

// Optimistic concurrency for the matters edit forms: each editable row carries a version,
// bumped on every update. An edit form sends the version it showed; the update command
// refuses (409) when the row has moved on, instead of silently overwriting another edit.

const TABLES = ['matters_matter', 'matters_time_entry', 'matters_disbursement', 'matters_fixed_charge'] as const;

export async function up(db: Kysely<any>): Promise<void> {
  for (const t of TABLES) {
    await db.schema.alterTable(t).addColumn('version', 'integer', (c) => c.notNull().defaultTo(1)).execute();
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of TABLES) await db.schema.alterTable(t).dropColumn('version').execute();
}
