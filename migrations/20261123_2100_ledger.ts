import type { Kysely } from 'kysely';
import { PostgresAdapter, sql } from 'kysely';

// The ledger (src/modules/ledger): the firm's general ledger and debtors ledger, fed only
// by events from matters and billing, plus its own receipts, write-offs and periods.
//
//  - ledger_account: the chart of accounts (defaults inserted here; a professional-fees
//    sub-account per timekeeper and an account per fixed-charge type are added as their
//    events arrive).
//  - ledger_period: months that were closed (a month with no row is open); the current
//    period lives in ledger_setting.
//  - ledger_journal / ledger_journal_line: immutable, balanced journals. The header keeps
//    its debit and credit totals and the database checks they are equal; every line is a
//    debit or a credit, never both, never negative. A journal is posted once per source
//    (source_key unique: the event id and purpose, or the receipt id) and a journal is
//    reversed at most once (reverses_journal_id unique).
//    Journals are immutable in the database too: triggers refuse any UPDATE or DELETE of a
//    journal or its lines. PostgreSQL checks each journal balances (lines = header totals)
//    at commit with a deferred constraint trigger; SQLite refuses lines beyond the header's
//    totals (the app asserts the balance before writing and re-reads the sums after).
//  - ledger_bill: the debtors ledger (one row per bill, as posted), ledger_receipt and
//    ledger_allocation (receipts to bills), ledger_write_off.
//  - copies of what matters publishes (timekeepers, clients, matters, charge types, firm
//    settings, WIP) and which items are on a posted bill, for the reports.
// Portable types: text ids, bigint minor units, ISO dates and times as text.

const list = (values: readonly string[]) => sql.raw(values.map((v) => `'${v}'`).join(','));

const ACCOUNT_TYPES = ['asset', 'liability', 'equity', 'income', 'expense'] as const;
const ROLES = ['office_bank', 'debtors', 'unallocated', 'tax_payable', 'fees', 'fee_timekeeper', 'fixed_charges', 'fixed_charge_type', 'disbursements', 'interest', 'discounts', 'write_offs', 'other'] as const;

const DEFAULT_ACCOUNTS: ReadonlyArray<[string, string, (typeof ACCOUNT_TYPES)[number], (typeof ROLES)[number]]> = [
  ['1000', 'Office bank', 'asset', 'office_bank'],
  ['1100', 'Debtors control', 'asset', 'debtors'],
  ['2100', 'Unallocated receipts (client credit)', 'liability', 'unallocated'],
  ['2200', 'Tax payable', 'liability', 'tax_payable'],
  ['4000', 'Professional fees', 'income', 'fees'],
  ['4100', 'Fixed charges', 'income', 'fixed_charges'],
  ['4300', 'Disbursements recovered', 'income', 'disbursements'],
  ['4400', 'Interest on overdue bills', 'income', 'interest'],
  ['5100', 'Discounts allowed', 'expense', 'discounts'],
  ['5200', 'Write-offs (bad debts)', 'expense', 'write_offs'],
];

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('ledger_account')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('code', 'text', (c) => c.notNull().unique())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull().check(sql`type in (${list(ACCOUNT_TYPES)})`))
    /** What the ledger uses the account for; system roles other than the per-timekeeper/charge-type ones are unique. */
    .addColumn('role', 'text', (c) => c.notNull().check(sql`role in (${list(ROLES)})`))
    .addColumn('parent_code', 'text')
    .addColumn('timekeeper_id', 'text', (c) => c.unique())
    .addColumn('charge_type_id', 'text', (c) => c.unique())
    .addColumn('active', 'integer', (c) => c.notNull().defaultTo(1).check(sql`active in (0, 1)`))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('ledger_account_role_uq').on('ledger_account').column('role').unique()
    .where(sql<boolean>`role not in ('fee_timekeeper', 'fixed_charge_type', 'other')`).execute();
  const at = '2026-01-01T00:00:00.000Z';
  await db.insertInto('ledger_account').values(DEFAULT_ACCOUNTS.map(([code, name, type, role]) => ({
    id: `acct-${code}`, code, name, type, role, parent_code: null, timekeeper_id: null, charge_type_id: null, active: 1, created_at: at, updated_at: at,
  }))).execute();

  await db.schema.createTable('ledger_setting')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema.createTable('ledger_period')
    .addColumn('period', 'text', (c) => c.primaryKey().check(sql`length(period) = 7`))
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('open', 'closed')`))
    .addColumn('changed_at', 'text', (c) => c.notNull())
    .addColumn('changed_by', 'text', (c) => c.notNull())
    .execute();

  await db.schema.createTable('ledger_sequence')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('last_value', 'integer', (c) => c.notNull().check(sql`last_value >= 0`))
    .execute();

  await db.schema.createTable('ledger_journal')
    .addColumn('id', 'text', (c) => c.primaryKey())
    /** Prefix and sequence: BJ000001. */
    .addColumn('number', 'text', (c) => c.notNull().unique())
    .addColumn('prefix', 'text', (c) => c.notNull().check(sql`prefix in ('BJ', 'RJ', 'AJ', 'WJ', 'DJ')`))
    /** Posted once per source: `<event id>:<purpose>` or `receipt:<id>` and so on. */
    .addColumn('source_key', 'text', (c) => c.notNull().unique())
    .addColumn('source_type', 'text', (c) => c.notNull())
    /** The transaction's own date (invoice date, receipt date). */
    .addColumn('date', 'text', (c) => c.notNull())
    /** The accounting period (YYYY-MM) it is posted in. */
    .addColumn('period', 'text', (c) => c.notNull())
    .addColumn('memo', 'text', (c) => c.notNull())
    /** Why the period differs from the date's month (an event landing in a closed period), or a period warning. */
    .addColumn('note', 'text')
    .addColumn('currency', 'text', (c) => c.notNull().check(sql`length(currency) = 3`))
    .addColumn('total_debit_minor', 'bigint', (c) => c.notNull())
    .addColumn('total_credit_minor', 'bigint', (c) => c.notNull())
    .addColumn('bill_id', 'text')
    .addColumn('receipt_id', 'text')
    .addColumn('client_id', 'text')
    .addColumn('matter_id', 'text')
    .addColumn('reverses_journal_id', 'text', (c) => c.unique().references('ledger_journal.id'))
    .addColumn('event_id', 'text')
    .addColumn('posted_at', 'text', (c) => c.notNull())
    .addColumn('posted_by', 'text', (c) => c.notNull())
    .addCheckConstraint('ledger_journal_balanced', sql`total_debit_minor = total_credit_minor and total_debit_minor >= 0`)
    .execute();
  await db.schema.createIndex('ledger_journal_date_idx').on('ledger_journal').columns(['date', 'number']).execute();
  await db.schema.createIndex('ledger_journal_bill_idx').on('ledger_journal').column('bill_id').execute();
  await db.schema.createIndex('ledger_journal_period_idx').on('ledger_journal').column('period').execute();

  await db.schema.createTable('ledger_journal_line')
    .addColumn('journal_id', 'text', (c) => c.notNull().references('ledger_journal.id'))
    .addColumn('line_no', 'integer', (c) => c.notNull().check(sql`line_no >= 1`))
    .addColumn('account_id', 'text', (c) => c.notNull().references('ledger_account.id'))
    .addColumn('debit_minor', 'bigint', (c) => c.notNull())
    .addColumn('credit_minor', 'bigint', (c) => c.notNull())
    .addColumn('date', 'text', (c) => c.notNull())
    .addColumn('memo', 'text', (c) => c.notNull())
    .addColumn('bill_id', 'text')
    .addColumn('client_id', 'text')
    .addColumn('matter_id', 'text')
    .addColumn('timekeeper_id', 'text')
    .addPrimaryKeyConstraint('ledger_journal_line_pk', ['journal_id', 'line_no'])
    .addCheckConstraint('ledger_line_one_side', sql`debit_minor >= 0 and credit_minor >= 0 and (debit_minor = 0 or credit_minor = 0) and debit_minor + credit_minor > 0`)
    .execute();
  await db.schema.createIndex('ledger_line_account_idx').on('ledger_journal_line').columns(['account_id', 'date']).execute();
  await db.schema.createIndex('ledger_line_bill_idx').on('ledger_journal_line').column('bill_id').execute();

  await journalTriggers(db);

  await db.schema.createTable('ledger_bill')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('matter_id', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('file_number', 'text', (c) => c.notNull())
    .addColumn('number', 'text', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    /** open: posted and live; reversed: reverted, re-drafted or deleted (nothing left on debtors). */
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('open', 'reversed')`))
    .addColumn('produced', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('invoice_date', 'text', (c) => c.notNull())
    .addColumn('due_date', 'text', (c) => c.notNull())
    .addColumn('fees_minor', 'bigint', (c) => c.notNull())
    .addColumn('fixed_charges_minor', 'bigint', (c) => c.notNull())
    .addColumn('disbursements_minor', 'bigint', (c) => c.notNull())
    .addColumn('interest_minor', 'bigint', (c) => c.notNull())
    .addColumn('tax_minor', 'bigint', (c) => c.notNull())
    .addColumn('discount_minor', 'bigint', (c) => c.notNull())
    /** What the bill put on debtors when posted (its total, after any discount line). */
    .addColumn('total_minor', 'bigint', (c) => c.notNull())
    /** A discount on debtors (discount and its tax) that may be reversed: time-sensitive ones. */
    .addColumn('discount_debtors_minor', 'bigint', (c) => c.notNull())
    .addColumn('discount_valid_until', 'text')
    .addColumn('discount_status', 'text', (c) => c.notNull().check(sql`discount_status in ('none', 'pending', 'honoured', 'reversed')`))
    .addColumn('discount_reversed_minor', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('paid_minor', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('written_off_minor', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('last_receipt_on', 'text')
    .addColumn('posting_journal_id', 'text')
    .addColumn('lines_json', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('ledger_bill_client_idx').on('ledger_bill').columns(['client_id', 'status', 'invoice_date']).execute();

  await db.schema.createTable('ledger_receipt')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('number', 'text', (c) => c.notNull().unique())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('bill_id', 'text')
    .addColumn('received_on', 'text', (c) => c.notNull())
    .addColumn('amount_minor', 'bigint', (c) => c.notNull().check(sql`amount_minor > 0`))
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('reference', 'text')
    .addColumn('allocation_order', 'text', (c) => c.notNull())
    .addColumn('unallocated_minor', 'bigint', (c) => c.notNull().check(sql`unallocated_minor >= 0`))
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('posted', 'reversed')`))
    .addColumn('journal_id', 'text', (c) => c.notNull())
    .addColumn('reversal_journal_id', 'text')
    .addColumn('reversed_on', 'text')
    .addColumn('reversal_reason', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addCheckConstraint('ledger_receipt_unallocated', sql`unallocated_minor <= amount_minor`)
    .execute();
  await db.schema.createIndex('ledger_receipt_client_idx').on('ledger_receipt').columns(['client_id', 'received_on']).execute();

  await db.schema.createTable('ledger_allocation')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('receipt_id', 'text', (c) => c.notNull().references('ledger_receipt.id'))
    .addColumn('bill_id', 'text', (c) => c.notNull().references('ledger_bill.id'))
    .addColumn('amount_minor', 'bigint', (c) => c.notNull().check(sql`amount_minor > 0`))
    .addColumn('allocated_on', 'text', (c) => c.notNull())
    .addColumn('journal_id', 'text', (c) => c.notNull())
    /** Set when released (bill re-drafted or reverted, receipt reversed): the money goes back to the receipt's credit. */
    .addColumn('released_on', 'text')
    .addColumn('release_journal_id', 'text')
    .addColumn('release_reason', 'text')
    .execute();
  await db.schema.createIndex('ledger_allocation_bill_idx').on('ledger_allocation').column('bill_id').execute();
  await db.schema.createIndex('ledger_allocation_receipt_idx').on('ledger_allocation').column('receipt_id').execute();

  await db.schema.createTable('ledger_write_off')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('bill_id', 'text', (c) => c.notNull().references('ledger_bill.id'))
    .addColumn('amount_minor', 'bigint', (c) => c.notNull().check(sql`amount_minor > 0`))
    .addColumn('written_off_on', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('journal_id', 'text', (c) => c.notNull())
    .addColumn('reversal_journal_id', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('ledger_write_off_bill_idx').on('ledger_write_off').column('bill_id').execute();

  /** Bill events the ledger has applied: a redelivery that got past the relay's inbox is still applied once. */
  await db.schema.createTable('ledger_applied_event')
    .addColumn('event_id', 'text', (c) => c.primaryKey())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('bill_id', 'text', (c) => c.notNull())
    .addColumn('applied_at', 'text', (c) => c.notNull())
    .execute();

  // Copies of matters (source_at: the event's updatedAt or occurredAt; an older event never overwrites).
  await db.schema.createTable('ledger_timekeeper')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('initials', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('active', 'integer', (c) => c.notNull())
    .addColumn('source_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createTable('ledger_client')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('client_number', 'integer', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('email', 'text')
    .addColumn('address', 'text')
    .addColumn('source_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createTable('ledger_matter')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('file_number', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('responsible_timekeeper_id', 'text', (c) => c.notNull())
    .addColumn('originating_timekeeper_id', 'text')
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('source_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createTable('ledger_charge_type')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('code', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('source_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createTable('ledger_wip')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('matter_id', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('timekeeper_id', 'text')
    .addColumn('date', 'text', (c) => c.notNull())
    .addColumn('minutes', 'integer')
    .addColumn('amount_minor', 'bigint', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('behaviour', 'text', (c) => c.notNull())
    .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('source_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('ledger_wip_matter_idx').on('ledger_wip').column('matter_id').execute();
  /** Items on a posted (approved or finalised) bill: no longer WIP. */
  await db.schema.createTable('ledger_wip_billed')
    .addColumn('item_id', 'text', (c) => c.primaryKey())
    .addColumn('bill_id', 'text', (c) => c.notNull())
    .execute();
}

async function journalTriggers(db: Kysely<any>): Promise<void> {
  const immutable = 'ledger journals are immutable: post a reversing journal';
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    await sql.raw(`create or replace function ledger_journal_balanced() returns trigger language plpgsql as $$
      declare d bigint; c bigint; td bigint; tc bigint;
      begin
        select coalesce(sum(debit_minor), 0), coalesce(sum(credit_minor), 0) into d, c from ledger_journal_line where journal_id = new.journal_id;
        select total_debit_minor, total_credit_minor into td, tc from ledger_journal where id = new.journal_id;
        if d <> c or d <> td or c <> tc then
          raise exception 'ledger journal % does not balance: debits %, credits %, header % / %', new.journal_id, d, c, td, tc;
        end if;
        return null;
      end $$`).execute(db);
    await sql.raw(`create constraint trigger ledger_journal_line_balanced after insert on ledger_journal_line
      deferrable initially deferred for each row execute function ledger_journal_balanced()`).execute(db);
    await sql.raw(`create or replace function ledger_journal_immutable() returns trigger language plpgsql as $$
      begin raise exception '${immutable}'; end $$`).execute(db);
    for (const t of ['ledger_journal', 'ledger_journal_line']) {
      await sql.raw(`create trigger ${t}_immutable before update or delete on ${t} for each row execute function ledger_journal_immutable()`).execute(db);
    }
    return;
  }
  await sql.raw(`create trigger ledger_journal_line_within_totals after insert on ledger_journal_line
    begin
      select raise(abort, 'ledger journal lines exceed the journal totals')
      where (select sum(debit_minor) from ledger_journal_line where journal_id = new.journal_id) > (select total_debit_minor from ledger_journal where id = new.journal_id)
         or (select sum(credit_minor) from ledger_journal_line where journal_id = new.journal_id) > (select total_credit_minor from ledger_journal where id = new.journal_id);
    end`).execute(db);
  for (const t of ['ledger_journal', 'ledger_journal_line']) {
    for (const op of ['update', 'delete']) {
      await sql.raw(`create trigger ${t}_no_${op} before ${op} on ${t} begin select raise(abort, '${immutable}'); end`).execute(db);
    }
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    await sql.raw('drop function if exists ledger_journal_balanced() cascade').execute(db);
    await sql.raw('drop function if exists ledger_journal_immutable() cascade').execute(db);
  }
  for (const t of [
    'ledger_applied_event', 'ledger_wip_billed', 'ledger_wip', 'ledger_charge_type', 'ledger_matter', 'ledger_client', 'ledger_timekeeper', 'ledger_write_off',
    'ledger_allocation', 'ledger_receipt', 'ledger_bill', 'ledger_journal_line', 'ledger_journal', 'ledger_sequence', 'ledger_period',
    'ledger_setting', 'ledger_account',
  ]) await db.schema.dropTable(t).ifExists().execute();
}
