import type { Kysely } from 'kysely';
import { sql } from 'kysely';

// Matters core data: timekeepers and their effective-dated standard rates, clients,
// matters (numbered client.matter from counters that never reuse a number), client and
// matter rates, and work in progress (time entries and disbursements).
// Portable types: text ids, integer minor units (bigint: amounts reach 10^15), ISO dates
// (YYYY-MM-DD) and ISO-8601 times as text. Enums and non-negative amounts are CHECKed.

const list = (values: readonly string[]) => sql.raw(values.map((v) => `'${v}'`).join(','));

const BEHAVIOURS = ['bill', 'hide', 'no_charge'] as const;
const WIP_STATUSES = ['unbilled', 'draft', 'billed'] as const;

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('matters_counter')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('last_value', 'bigint', (c) => c.notNull().check(sql`last_value >= 0`))
    .execute();

  await db.schema.createTable('matters_timekeeper')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('initials', 'text', (c) => c.notNull().unique())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('classification', 'text', (c) => c.notNull().check(sql`classification in (${list(['partner', 'associate', 'paralegal', 'other'])})`))
    .addColumn('ledes_classification', 'text', (c) => c.notNull().check(sql`ledes_classification in (${list(['PT', 'AS', 'OC', 'PL', 'LA', 'OT'])})`))
    .addColumn('active', 'integer', (c) => c.notNull().defaultTo(1).check(sql`active in (0, 1)`))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema.createTable('matters_timekeeper_rate')
    .addColumn('timekeeper_id', 'text', (c) => c.notNull().references('matters_timekeeper.id'))
    .addColumn('effective_from', 'text', (c) => c.notNull())
    .addColumn('rate_minor', 'bigint', (c) => c.notNull().check(sql`rate_minor >= 0`))
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('matters_timekeeper_rate_pk', ['timekeeper_id', 'effective_from'])
    .execute();

  await db.schema.createTable('matters_client')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('client_number', 'bigint', (c) => c.notNull().unique().check(sql`client_number > 0`))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('email', 'text')
    .addColumn('address', 'text')
    .addColumn('tax_id', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema.createTable('matters_client_rate')
    .addColumn('client_id', 'text', (c) => c.notNull().references('matters_client.id'))
    .addColumn('timekeeper_id', 'text', (c) => c.notNull().references('matters_timekeeper.id'))
    .addColumn('rate_minor', 'bigint', (c) => c.notNull().check(sql`rate_minor >= 0`))
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('matters_client_rate_pk', ['client_id', 'timekeeper_id'])
    .execute();

  await db.schema.createTable('matters_matter')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('client_id', 'text', (c) => c.notNull().references('matters_client.id'))
    .addColumn('matter_number', 'bigint', (c) => c.notNull().check(sql`matter_number > 0`))
    .addColumn('file_number', 'text', (c) => c.notNull().unique())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('open', 'closed')`))
    .addColumn('responsible_timekeeper_id', 'text', (c) => c.notNull().references('matters_timekeeper.id'))
    .addColumn('billing_timekeeper_id', 'text', (c) => c.notNull().references('matters_timekeeper.id'))
    .addColumn('originating_timekeeper_id', 'text', (c) => c.references('matters_timekeeper.id'))
    .addColumn('practice_area', 'text')
    .addColumn('opened_on', 'text', (c) => c.notNull())
    .addColumn('closed_on', 'text')
    .addColumn('billing_cycle', 'text', (c) => c.notNull().check(sql`billing_cycle in (${list(['none', 'WEEK', 'MONTH', 'QUARTER', 'HALF', 'YEAR'])})`))
    .addColumn('next_billing_date', 'text')
    .addColumn('wip_cap_minor', 'bigint', (c) => c.check(sql`wip_cap_minor is null or wip_cap_minor > 0`))
    .addColumn('currency', 'text', (c) => c.notNull().check(sql`length(currency) = 3`))
    .addColumn('time_unit_minutes', 'integer', (c) => c.notNull().defaultTo(6).check(sql`time_unit_minutes between 1 and 60`))
    .addColumn('rounding_mode', 'text', (c) => c.notNull().defaultTo('up').check(sql`rounding_mode in ('up', 'nearest', 'down')`))
    .addColumn('default_behaviour', 'text', (c) => c.notNull().defaultTo('bill').check(sql`default_behaviour in (${list(BEHAVIOURS)})`))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('matters_matter_client_number_uq', ['client_id', 'matter_number'])
    .addCheckConstraint('matters_matter_closed_ck', sql`(status = 'open' and closed_on is null) or (status = 'closed' and closed_on is not null)`)
    .addCheckConstraint('matters_matter_cycle_ck', sql`billing_cycle = 'none' or next_billing_date is not null`)
    .execute();
  await db.schema.createIndex('matters_matter_cycle_idx').on('matters_matter').columns(['billing_cycle', 'next_billing_date']).execute();

  await db.schema.createTable('matters_matter_rate')
    .addColumn('matter_id', 'text', (c) => c.notNull().references('matters_matter.id'))
    .addColumn('timekeeper_id', 'text', (c) => c.notNull().references('matters_timekeeper.id'))
    .addColumn('rate_minor', 'bigint', (c) => c.notNull().check(sql`rate_minor >= 0`))
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('matters_matter_rate_pk', ['matter_id', 'timekeeper_id'])
    .execute();

  await db.schema.createTable('matters_time_entry')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('matter_id', 'text', (c) => c.notNull().references('matters_matter.id'))
    .addColumn('timekeeper_id', 'text', (c) => c.notNull().references('matters_timekeeper.id'))
    .addColumn('work_date', 'text', (c) => c.notNull())
    .addColumn('raw_minutes', 'integer', (c) => c.notNull().check(sql`raw_minutes > 0`))
    .addColumn('billed_minutes', 'integer', (c) => c.notNull().check(sql`billed_minutes >= 0`))
    .addColumn('rate_minor', 'bigint', (c) => c.notNull().check(sql`rate_minor >= 0`))
    .addColumn('rate_source', 'text', (c) => c.notNull().check(sql`rate_source in ('matter', 'client', 'timekeeper', 'override')`))
    .addColumn('override_reason', 'text')
    .addColumn('amount_minor', 'bigint', (c) => c.notNull().check(sql`amount_minor >= 0`))
    .addColumn('narrative', 'text', (c) => c.notNull())
    .addColumn('task_code', 'text')
    .addColumn('activity_code', 'text')
    .addColumn('behaviour', 'text', (c) => c.notNull().check(sql`behaviour in (${list(BEHAVIOURS)})`))
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in (${list(WIP_STATUSES)})`))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addCheckConstraint('matters_time_entry_override_ck', sql`(rate_source = 'override') = (override_reason is not null)`)
    .execute();
  await db.schema.createIndex('matters_time_entry_matter_idx').on('matters_time_entry').columns(['matter_id', 'status', 'work_date']).execute();
  await db.schema.createIndex('matters_time_entry_timekeeper_idx').on('matters_time_entry').columns(['timekeeper_id', 'work_date']).execute();

  await db.schema.createTable('matters_disbursement')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('matter_id', 'text', (c) => c.notNull().references('matters_matter.id'))
    .addColumn('incurred_on', 'text', (c) => c.notNull())
    .addColumn('code', 'text', (c) => c.notNull())
    .addColumn('expense_code', 'text')
    .addColumn('quantity_milli', 'bigint', (c) => c.notNull().check(sql`quantity_milli > 0`))
    .addColumn('unit_cost_minor', 'bigint', (c) => c.notNull().check(sql`unit_cost_minor >= 0`))
    .addColumn('amount_minor', 'bigint', (c) => c.notNull().check(sql`amount_minor >= 0`))
    .addColumn('tax_code', 'text')
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('payee', 'text')
    .addColumn('behaviour', 'text', (c) => c.notNull().check(sql`behaviour in (${list(BEHAVIOURS)})`))
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in (${list(WIP_STATUSES)})`))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('matters_disbursement_matter_idx').on('matters_disbursement').columns(['matter_id', 'status', 'incurred_on']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of [
    'matters_disbursement', 'matters_time_entry', 'matters_matter_rate', 'matters_matter', 'matters_client_rate',
    'matters_client', 'matters_timekeeper_rate', 'matters_timekeeper', 'matters_counter',
  ]) {
    await db.schema.dropTable(t).execute();
  }
}
