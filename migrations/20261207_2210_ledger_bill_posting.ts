import type { Kysely } from 'kysely';

// ledger_bill_posting: each posting of a bill (its BJ journal) as it was posted: the invoice and due
// dates, the parts of its total, the day its debtors line counts from and the day it was undone
// (its reversal). A bill reverted, changed and approved again is posted again, and its ledger_bill
// row then says only what the newest posting says; the debtors reports as at an earlier date (a
// closed month's) age and describe the posting that stood on that date, from here (review 62 F1, F2).
//
// Filled for the postings made before this table from what the books hold: the dates from each
// BJ's lines and its reversal's, the rest from the bill's row (for a bill posted more than once, its
// latest posting's figures; the earlier ones' were not kept).

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('ledger_bill_posting')
    .addColumn('journal_id', 'text', (c) => c.primaryKey().references('ledger_journal.id'))
    .addColumn('bill_id', 'text', (c) => c.notNull())
    .addColumn('invoice_date', 'text', (c) => c.notNull())
    .addColumn('due_date', 'text', (c) => c.notNull())
    .addColumn('fees_minor', 'bigint', (c) => c.notNull())
    .addColumn('fixed_charges_minor', 'bigint', (c) => c.notNull())
    .addColumn('disbursements_minor', 'bigint', (c) => c.notNull())
    .addColumn('interest_minor', 'bigint', (c) => c.notNull())
    .addColumn('tax_minor', 'bigint', (c) => c.notNull())
    .addColumn('discount_minor', 'bigint', (c) => c.notNull())
    .addColumn('total_minor', 'bigint', (c) => c.notNull())
    .addColumn('counts_from', 'text', (c) => c.notNull())
    .addColumn('undone_on', 'text')
    .execute();
  await db.schema.createIndex('ledger_bill_posting_bill_idx').on('ledger_bill_posting').column('bill_id').execute();

  const postings = await db.selectFrom('ledger_journal as j').innerJoin('ledger_bill as b', 'b.id', 'j.bill_id')
    .select(['j.id as journal_id', 'j.bill_id', 'b.invoice_date', 'b.due_date', 'b.fees_minor', 'b.fixed_charges_minor', 'b.disbursements_minor',
      'b.interest_minor', 'b.tax_minor', 'b.discount_minor', 'b.total_minor'])
    .select((eb) => [
      eb.selectFrom('ledger_journal_line as l').select((e2) => e2.fn.min('l.date').as('d')).whereRef('l.journal_id', '=', 'j.id').as('counts_from'),
      eb.selectFrom('ledger_journal as r').innerJoin('ledger_journal_line as rl', 'rl.journal_id', 'r.id').select((e2) => e2.fn.min('rl.date').as('d'))
        .whereRef('r.reverses_journal_id', '=', 'j.id').as('undone_on'),
    ])
    .where('j.prefix', '=', 'BJ').where('j.reverses_journal_id', 'is', null).orderBy('j.id').execute() as Record<string, unknown>[];
  for (let i = 0; i < postings.length; i += 500) {
    const part = postings.slice(i, i + 500).map((p) => ({ ...p, counts_from: p.counts_from ?? p.invoice_date }));
    if (part.length > 0) await db.insertInto('ledger_bill_posting').values(part).execute();
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('ledger_bill_posting').execute();
}
