import type { Kysely } from 'kysely';
import { sql } from 'kysely';

// Billing's own copy of what it needs from matters, fed only by matters' events
// (src/modules/billing/projections.ts): timekeepers, clients and their contacts, matters
// (with billable party, participants and effective billing options), the firm's billing
// settings, fixed-charge types (products), and every WIP item of any kind.
// The copy trusts its source: few CHECKs, no foreign keys between copy tables (handlers for
// different aggregates are delivered independently, so a WIP item may arrive before its
// matter). Every copied row keeps the ordering key of the event that last wrote it
// (`source_version`, `source_at`) so an older or repeated event never regresses it.
// Portable types: text ids, bigint minor units, ISO dates and times as text, JSON as text.

const list = (values: readonly string[]) => sql.raw(values.map((v) => `'${v}'`).join(','));

const WIP_KINDS = ['time', 'disbursement', 'fixed_charge'] as const;
const BEHAVIOURS = ['bill', 'hide', 'no_charge'] as const;

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('billing_timekeeper')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('initials', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('classification', 'text', (c) => c.notNull())
    .addColumn('ledes_classification', 'text', (c) => c.notNull())
    .addColumn('active', 'integer', (c) => c.notNull().check(sql`active in (0, 1)`))
    .addColumn('source_version', 'bigint', (c) => c.notNull())
    .addColumn('source_at', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('copied_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema.createTable('billing_client')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('client_number', 'bigint', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('email', 'text')
    .addColumn('address', 'text')
    .addColumn('tax_id', 'text')
    /** Contacts and other client details billing may need later, as JSON (null until known). */
    .addColumn('details_json', 'text')
    /** Null when billing first heard of the client from a change event. */
    .addColumn('created_at', 'text')
    .addColumn('source_version', 'bigint', (c) => c.notNull())
    .addColumn('source_at', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('copied_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('billing_client_number_idx').on('billing_client').column('client_number').execute();

  // A removed contact keeps its row (removed = 1) so a late change cannot bring it back.
  await db.schema.createTable('billing_contact')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('email', 'text')
    .addColumn('phone', 'text')
    .addColumn('address', 'text')
    .addColumn('role', 'text')
    .addColumn('removed', 'integer', (c) => c.notNull().check(sql`removed in (0, 1)`))
    .addColumn('source_version', 'bigint', (c) => c.notNull())
    .addColumn('source_at', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('copied_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('billing_contact_client_idx').on('billing_contact').columns(['client_id', 'name']).execute();

  await db.schema.createTable('billing_charge_type')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('code', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('default_price_minor', 'bigint', (c) => c.notNull())
    .addColumn('tax_code', 'text')
    .addColumn('task_code', 'text')
    .addColumn('activity_code', 'text')
    .addColumn('active', 'integer', (c) => c.notNull().check(sql`active in (0, 1)`))
    .addColumn('source_version', 'bigint', (c) => c.notNull())
    .addColumn('source_at', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('copied_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('billing_charge_type_code_idx').on('billing_charge_type').column('code').execute();

  await db.schema.createTable('billing_matter')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('client_number', 'bigint', (c) => c.notNull())
    /** The client's name when the matter was copied; billing_client has the current one. */
    .addColumn('client_name', 'text', (c) => c.notNull())
    .addColumn('matter_number', 'bigint', (c) => c.notNull())
    .addColumn('file_number', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('practice_area', 'text')
    .addColumn('opened_on', 'text', (c) => c.notNull())
    .addColumn('closed_on', 'text')
    .addColumn('responsible_timekeeper_id', 'text', (c) => c.notNull())
    .addColumn('billing_timekeeper_id', 'text', (c) => c.notNull())
    .addColumn('originating_timekeeper_id', 'text')
    .addColumn('billing_cycle', 'text', (c) => c.notNull())
    .addColumn('next_billing_date', 'text')
    .addColumn('wip_cap_minor', 'bigint')
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('time_unit_minutes', 'integer', (c) => c.notNull())
    .addColumn('rounding_mode', 'text', (c) => c.notNull())
    .addColumn('default_behaviour', 'text', (c) => c.notNull())
    /** The billable party (BillableParty JSON) once matters says who it is; its contact id, null for the client itself. */
    .addColumn('billable_party_id', 'text')
    .addColumn('billable_party_json', 'text')
    /** The matter's participants (JSON array), once known. */
    .addColumn('participants_json', 'text')
    .addColumn('source_version', 'bigint', (c) => c.notNull())
    .addColumn('source_at', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    /** The effective MatterBillingOptions (null until matters sends them: the firm defaults apply). */
    .addColumn('options_json', 'text')
    /** The option sections the matter overrides, as a JSON array. */
    .addColumn('overridden_json', 'text')
    .addColumn('options_version', 'bigint')
    .addColumn('options_at', 'text')
    .addColumn('options_event_id', 'text')
    .addColumn('copied_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('billing_matter_file_number_idx').on('billing_matter').column('file_number').execute();
  await db.schema.createIndex('billing_matter_client_idx').on('billing_matter').columns(['client_id', 'matter_number']).execute();
  await db.schema.createIndex('billing_matter_due_idx').on('billing_matter').columns(['status', 'next_billing_date']).execute();

  await db.schema.createTable('billing_firm_settings')
    /** One row, id 'firm'. */
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('settings_json', 'text', (c) => c.notNull())
    .addColumn('source_version', 'bigint', (c) => c.notNull())
    .addColumn('source_at', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('copied_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema.createTable('billing_wip')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in (${list(WIP_KINDS)})`))
    .addColumn('matter_id', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull())
    /** Work date (time), incurred date (disbursement) or charge date (fixed charge). */
    .addColumn('date', 'text', (c) => c.notNull())
    .addColumn('timekeeper_id', 'text')
    .addColumn('raw_minutes', 'integer')
    .addColumn('billed_minutes', 'integer')
    .addColumn('rate_minor', 'bigint')
    .addColumn('rate_source', 'text')
    .addColumn('override_reason', 'text')
    /** Thousandths of a unit, and the unit cost (disbursements) or unit price (fixed charges). */
    .addColumn('quantity_milli', 'bigint')
    .addColumn('unit_cost_minor', 'bigint')
    .addColumn('amount_minor', 'bigint', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    /** The firm's own code (disbursement code, charge type code). */
    .addColumn('code', 'text')
    /** Fixed charges: the charge type (product), its name, and whether it is only quoted (adds nothing to WIP until billed). */
    .addColumn('charge_type_id', 'text')
    .addColumn('charge_name', 'text')
    .addColumn('quoted', 'integer', (c) => c.notNull().defaultTo(0).check(sql`quoted in (0, 1)`))
    .addColumn('task_code', 'text')
    .addColumn('activity_code', 'text')
    .addColumn('expense_code', 'text')
    .addColumn('tax_code', 'text')
    /** Narrative (time) or description. */
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('payee', 'text')
    .addColumn('behaviour', 'text', (c) => c.notNull().check(sql`behaviour in (${list(BEHAVIOURS)})`))
    /** Matters' status as last known (unbilled, draft, billed). */
    .addColumn('matters_status', 'text', (c) => c.notNull())
    /** The whole payload last applied, for fields billing has no column for yet. */
    .addColumn('payload_json', 'text', (c) => c.notNull())
    .addColumn('source_version', 'bigint', (c) => c.notNull())
    .addColumn('source_at', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('copied_at', 'text', (c) => c.notNull())
    /** Billing's own: the bill the item is on (set by the composer), null while unbilled. */
    .addColumn('bill_id', 'text')
    /** Set when matters deleted the item while it was on a bill (the row is kept). */
    .addColumn('deleted_in_matters_at', 'text')
    .execute();
  await db.schema.createIndex('billing_wip_matter_date_idx').on('billing_wip').columns(['matter_id', 'date']).execute();
  await db.schema.createIndex('billing_wip_unbilled_idx').on('billing_wip').columns(['matter_id', 'date', 'kind'])
    .where(sql.ref('bill_id'), 'is', null).execute();
  await db.schema.createIndex('billing_wip_bill_idx').on('billing_wip').column('bill_id')
    .where(sql.ref('bill_id'), 'is not', null).execute();

  // Items matters deleted: a late record/update for one of them must not bring it back.
  await db.schema.createTable('billing_wip_deleted')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('matter_id', 'text', (c) => c.notNull())
    .addColumn('deleted_at', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .execute();

  // What the copy could not simply apply (an item on a bill changed or deleted in matters).
  await db.schema.createTable('billing_copy_conflict')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('event_type', 'text', (c) => c.notNull())
    .addColumn('entity_type', 'text', (c) => c.notNull())
    .addColumn('entity_id', 'text', (c) => c.notNull())
    .addColumn('matter_id', 'text')
    .addColumn('bill_id', 'text')
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('detail_json', 'text')
    .addColumn('detected_at', 'text', (c) => c.notNull())
    .addColumn('resolved_at', 'text')
    .execute();
  await db.schema.createIndex('billing_copy_conflict_open_idx').on('billing_copy_conflict').columns(['resolved_at', 'detected_at']).execute();
  await db.schema.createIndex('billing_copy_conflict_entity_idx').on('billing_copy_conflict').columns(['entity_type', 'entity_id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of [
    'billing_copy_conflict', 'billing_wip_deleted', 'billing_wip', 'billing_firm_settings', 'billing_matter', 'billing_charge_type',
    'billing_contact', 'billing_client', 'billing_timekeeper',
  ]) {
    await db.schema.dropTable(t).execute();
  }
}
