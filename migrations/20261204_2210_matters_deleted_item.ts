import type { Kysely } from 'kysely';
import { sql } from 'kysely';

// The ids of deleted WIP items (time entries, disbursements, fixed charges). A deleted item's
// row is gone, so its id (the create form's idempotency key) was free again: the same form
// posted again (the browser's back button, a retry) recorded the item anew under that id,
// which billing's copy ignores (it keeps a tombstone of the deleted item), so the new item
// would never be billed. Matters keeps its own tombstone and refuses the id. Items deleted
// before this migration are carried over from the audit log (one row per delete).

const ACTIONS: Record<string, string> = {
  'matters.time_deleted': 'time', 'matters.disbursement_deleted': 'disbursement', 'matters.fixed_charge_deleted': 'fixed_charge',
};

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('matters_deleted_item')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('time', 'disbursement', 'fixed_charge')`))
    .addColumn('matter_id', 'text', (c) => c.notNull())
    .addColumn('deleted_at', 'text', (c) => c.notNull())
    .execute();
  const seen = new Set<string>();
  let after = '';
  // Paged by audit id, 1,000 at a time, so a long history is never read at once.
  for (;;) {
    const rows = await db.selectFrom('audit_log').select(['id', 'action', 'entity_id', 'at', 'before_json'])
      .where('action', 'in', Object.keys(ACTIONS)).where('id', '>', after).orderBy('id').limit(1_000).execute();
    if (rows.length === 0) break;
    after = rows[rows.length - 1]!.id as string;
    const values = [];
    for (const r of rows) {
      const id = r.entity_id as string;
      if (seen.has(id)) continue;
      seen.add(id);
      let matterId = '';
      try { matterId = String((JSON.parse(String(r.before_json ?? '{}')) as { matterId?: unknown }).matterId ?? ''); } catch { matterId = ''; }
      values.push({ id, kind: ACTIONS[r.action as string]!, matter_id: matterId, deleted_at: r.at as string });
    }
    if (values.length > 0) await db.insertInto('matters_deleted_item').values(values).onConflict((oc) => oc.column('id').doNothing()).execute();
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('matters_deleted_item').execute();
}
