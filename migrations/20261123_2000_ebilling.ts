import type { Kysely } from 'kysely';
import { sql } from 'kysely';

// E-billing's own tables. Its copy of what it needs from matters and billing, fed only by
// their events (src/modules/ebilling/projections.ts): timekeepers, clients, matters with
// their e-billing options, the firm's tax rates, the quantities of WIP items, and bills as
// their events carry them. Every copied row keeps the ordering key of the event that last
// wrote it (source_version, source_at) so an older or repeated event never regresses it.
// Then what e-billing owns: the firm's LEDES settings and every exported file, kept with
// the bills it holds. Portable: text ids, bigint minor units, ISO text times, JSON as text.

export async function up(db: Kysely<any>): Promise<void> {
  const source = <T extends { addColumn: (...a: any[]) => T }>(t: T): T => t
    .addColumn('source_version', 'bigint', (c: any) => c.notNull())
    .addColumn('source_at', 'text', (c: any) => c.notNull())
    .addColumn('event_id', 'text', (c: any) => c.notNull())
    .addColumn('copied_at', 'text', (c: any) => c.notNull());

  await source(db.schema.createTable('ebilling_timekeeper')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('initials', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('ledes_classification', 'text')).execute();

  await source(db.schema.createTable('ebilling_client')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('address', 'text')
    .addColumn('tax_id', 'text')).execute();

  await source(db.schema.createTable('ebilling_matter')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('file_number', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('responsible_timekeeper_id', 'text', (c) => c.notNull())
    .addColumn('billing_timekeeper_id', 'text', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    // The effective e-billing options (null until matters sends them), with their own ordering key.
    .addColumn('ebilling_json', 'text')
    .addColumn('options_version', 'bigint')
    .addColumn('options_at', 'text')).execute();

  await source(db.schema.createTable('ebilling_firm_tax')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tax_rates_json', 'text', (c) => c.notNull())).execute();

  await source(db.schema.createTable('ebilling_item')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('matter_id', 'text', (c) => c.notNull())
    .addColumn('quantity_milli', 'bigint', (c) => c.notNull())
    .addColumn('unit_cost_minor', 'bigint', (c) => c.notNull())).execute();

  // Bills as billing's events carry them (the whole bill), newest version wins.
  await source(db.schema.createTable('ebilling_bill')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('matter_id', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('file_number', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('number', 'text')
    .addColumn('invoice_date', 'text', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('total_minor', 'bigint', (c) => c.notNull())
    .addColumn('line_count', 'integer', (c) => c.notNull())
    .addColumn('bill_json', 'text', (c) => c.notNull())).execute();
  await db.schema.createIndex('ebilling_bill_status_idx').on('ebilling_bill').columns(['status', 'invoice_date']).execute();
  await db.schema.createIndex('ebilling_bill_number_idx').on('ebilling_bill').column('number').execute();

  await db.schema.createTable('ebilling_settings')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('settings_json', 'text', (c) => c.notNull())
    .addColumn('version', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .execute();

  // Every exported file, kept as written, and the bills it holds.
  await db.schema.createTable('ebilling_export')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('format', 'text', (c) => c.notNull().check(sql`format in ('LEDES1998B', 'LEDES1998BI')`))
    .addColumn('file_name', 'text', (c) => c.notNull())
    .addColumn('content', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('byte_count', 'bigint', (c) => c.notNull())
    .addColumn('invoice_count', 'integer', (c) => c.notNull())
    .addColumn('line_count', 'integer', (c) => c.notNull())
    .addColumn('request_id', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('ebilling_export_created_idx').on('ebilling_export').column('created_at').execute();
  await db.schema.createIndex('ebilling_export_request_idx').on('ebilling_export').column('request_id').execute();

  await db.schema.createTable('ebilling_export_bill')
    .addColumn('export_id', 'text', (c) => c.notNull().references('ebilling_export.id'))
    .addColumn('bill_id', 'text', (c) => c.notNull())
    .addColumn('bill_number', 'text', (c) => c.notNull())
    .addColumn('bill_version', 'bigint', (c) => c.notNull())
    .addColumn('invoice_total_minor', 'bigint', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('ebilling_export_bill_pk', ['export_id', 'bill_id'])
    .execute();
  await db.schema.createIndex('ebilling_export_bill_bill_idx').on('ebilling_export_bill').column('bill_id').execute();

  // Backfill: e-billing's handlers are new, and the relay only delivers events not yet marked
  // delivered. Mark the event types e-billing copies as undelivered again so an existing
  // database's history reaches e-billing; the inbox keeps every other handler from running twice.
  await db.updateTable('outbox').set({ delivered_at: null }).where('type', 'in', EBILLING_SOURCE_TYPES).where('delivered_at', 'is not', null).execute();
}

/** The event types src/modules/ebilling/projections.ts subscribes to (kept here: migrations import no app code). */
export const EBILLING_SOURCE_TYPES = [
  'matters.timekeeper_created', 'matters.timekeeper_changed', 'matters.client_created', 'matters.client_changed', 'matters.matter_opened',
  'matters.matter_changed', 'matters.billing_options_changed', 'matters.firm_settings_changed', 'matters.wip_recorded', 'matters.wip_updated',
  'billing.bill_approved', 'billing.bill_finalised', 'billing.bill_reverted', 'billing.bill_redrafted', 'billing.bill_deleted', 'billing.draft_deleted',
];

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['ebilling_export_bill', 'ebilling_export', 'ebilling_settings', 'ebilling_bill', 'ebilling_item', 'ebilling_firm_tax', 'ebilling_matter', 'ebilling_client', 'ebilling_timekeeper']) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
