import type { Kysely } from 'kysely';
import { sql } from 'kysely';

// Matters billing setup: the firm's billing settings (one row), each matter's overridden
// billing-option sections (JSON), client contacts, matter participants and the billable
// party, fixed-charge types (products) and fixed charges (WIP of kind fixed_charge).
// Portable types as in 20261123_1500_matters: text ids, bigint minor units, ISO text dates.

const list = (values: readonly string[]) => sql.raw(values.map((v) => `'${v}'`).join(','));

const BEHAVIOURS = ['bill', 'hide', 'no_charge'] as const;
const WIP_STATUSES = ['unbilled', 'draft', 'billed'] as const;

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('matters_firm_settings')
    .addColumn('id', 'text', (c) => c.primaryKey().check(sql`id = 'firm'`))
    .addColumn('currency', 'text', (c) => c.notNull().check(sql`length(currency) = 3`))
    .addColumn('tax_rates_json', 'text', (c) => c.notNull())
    .addColumn('default_fee_tax_code', 'text', (c) => c.notNull())
    .addColumn('tax_rounding', 'text', (c) => c.notNull().check(sql`tax_rounding in ('per_line', 'per_bill')`))
    .addColumn('payment_terms_days', 'integer', (c) => c.notNull().check(sql`payment_terms_days >= 0`))
    .addColumn('time_unit_minutes', 'integer', (c) => c.notNull().check(sql`time_unit_minutes between 1 and 60`))
    .addColumn('time_rounding', 'text', (c) => c.notNull().check(sql`time_rounding in ('up', 'nearest', 'down')`))
    .addColumn('general_retainers_enabled', 'integer', (c) => c.notNull().check(sql`general_retainers_enabled in (0, 1)`))
    .addColumn('wip_cap_policy', 'text', (c) => c.notNull().check(sql`wip_cap_policy in ('warn', 'refuse')`))
    .addColumn('interest_json', 'text', (c) => c.notNull())
    .addColumn('posting_outside_current_period', 'text', (c) => c.notNull().check(sql`posting_outside_current_period in ('warn', 'refuse')`))
    .addColumn('matter_defaults_json', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull().check(sql`version >= 1`))
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema.createTable('matters_matter_options')
    .addColumn('matter_id', 'text', (c) => c.primaryKey().references('matters_matter.id'))
    /** The sections of MatterBillingOptions this matter overrides, each whole. */
    .addColumn('overrides_json', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull().check(sql`version >= 1`))
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  // A matter opened before options existed with a default behaviour other than the default
  // ('bill') keeps it, as its own option.
  await sql`insert into matters_matter_options (matter_id, overrides_json, version, updated_at)
    select id, '{"defaultTimeEntryBehaviour":"' || default_behaviour || '"}', 1, updated_at
    from matters_matter where default_behaviour <> 'bill'`.execute(db);

  await db.schema.createTable('matters_contact')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('client_id', 'text', (c) => c.notNull().references('matters_client.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('email', 'text')
    .addColumn('phone', 'text')
    .addColumn('address', 'text')
    .addColumn('role', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('matters_contact_client_idx').on('matters_contact').columns(['client_id', 'name']).execute();

  await db.schema.alterTable('matters_matter')
    .addColumn('billable_party_contact_id', 'text', (c) => c.references('matters_contact.id'))
    .execute();

  await db.schema.createTable('matters_matter_participant')
    .addColumn('matter_id', 'text', (c) => c.notNull().references('matters_matter.id'))
    .addColumn('contact_id', 'text', (c) => c.notNull().references('matters_contact.id'))
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('position', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('matters_matter_participant_pk', ['matter_id', 'contact_id'])
    .execute();
  await db.schema.createIndex('matters_matter_participant_contact_idx').on('matters_matter_participant').columns(['contact_id']).execute();

  await db.schema.createTable('matters_charge_type')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('code', 'text', (c) => c.notNull().unique())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('default_price_minor', 'bigint', (c) => c.notNull().check(sql`default_price_minor >= 0`))
    .addColumn('tax_code', 'text')
    .addColumn('task_code', 'text')
    .addColumn('activity_code', 'text')
    .addColumn('active', 'integer', (c) => c.notNull().defaultTo(1).check(sql`active in (0, 1)`))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema.createTable('matters_fixed_charge')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('matter_id', 'text', (c) => c.notNull().references('matters_matter.id'))
    .addColumn('charge_type_id', 'text', (c) => c.notNull().references('matters_charge_type.id'))
    .addColumn('charged_on', 'text', (c) => c.notNull())
    .addColumn('quantity_milli', 'bigint', (c) => c.notNull().check(sql`quantity_milli > 0`))
    .addColumn('unit_price_minor', 'bigint', (c) => c.notNull().check(sql`unit_price_minor >= 0`))
    .addColumn('amount_minor', 'bigint', (c) => c.notNull().check(sql`amount_minor >= 0`))
    .addColumn('tax_code', 'text')
    .addColumn('task_code', 'text')
    .addColumn('activity_code', 'text')
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('quoted', 'integer', (c) => c.notNull().defaultTo(0).check(sql`quoted in (0, 1)`))
    .addColumn('behaviour', 'text', (c) => c.notNull().check(sql`behaviour in (${list(BEHAVIOURS)})`))
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in (${list(WIP_STATUSES)})`))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('matters_fixed_charge_matter_idx').on('matters_fixed_charge').columns(['matter_id', 'status', 'charged_on']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['matters_fixed_charge', 'matters_charge_type', 'matters_matter_participant']) await db.schema.dropTable(t).execute();
  await db.schema.alterTable('matters_matter').dropColumn('billable_party_contact_id').execute();
  for (const t of ['matters_contact', 'matters_matter_options', 'matters_firm_settings']) await db.schema.dropTable(t).execute();
}
