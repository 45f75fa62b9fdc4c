import type { Kysely } from 'kysely';
import { sql } from 'kysely';

// Which bill holds a WIP item is recorded once: by the bill's live line for it
// (billing_bill_line.item_id, unique among live lines since 20261123_1800). The copy's own
// billing_wip.bill_id said the same thing a second time, and keeping it meant rewriting
// every item's whole row (payload and all) when a bill took it: the slowest write of mass
// billing. Unbilled now reads "matters says unbilled and no live line holds it"; the index
// for that keeps to the items matters reports unbilled, so a matter's billed history is
// not read each time its unbilled work is.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('billing_wip_unbilled_idx').execute();
  await db.schema.dropIndex('billing_wip_bill_idx').execute();
  await db.schema.alterTable('billing_wip').dropColumn('bill_id').execute();
  await db.schema.createIndex('billing_wip_open_idx').on('billing_wip').columns(['matter_id', 'date', 'kind'])
    .where(sql<boolean>`matters_status = 'unbilled'`).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('billing_wip_open_idx').execute();
  await db.schema.alterTable('billing_wip').addColumn('bill_id', 'text').execute();
  await sql`update billing_wip set bill_id = (select l.bill_id from billing_bill_line l where l.item_id = billing_wip.id and l.live = 1)`.execute(db);
  await db.schema.createIndex('billing_wip_unbilled_idx').on('billing_wip').columns(['matter_id', 'date', 'kind'])
    .where(sql<boolean>`bill_id is null`).execute();
  await db.schema.createIndex('billing_wip_bill_idx').on('billing_wip').column('bill_id')
    .where(sql<boolean>`bill_id is not null`).execute();
}
