import type { Kysely } from 'kysely';

// ledger_bill_posting: each posting of a bill (its BJ journal) as it was posted: the invoice and due
// dates, the parts of its total, the day its debtors line counts from and the day it was undone
// (its reversal). A bill reverted, changed and approved again is posted again, and its ledger_bill
// row then says only what the newest posting says; the debtors reports as at an earlier date (a
// closed month's) age and describe the posting that stood on that date, from here (review 62 F1, F2).
//
// Filled for the postings made before this table: the days from each BJ's lines and its reversal's;
// the dates and figures from the approval event the BJ posted (the outbox keeps them), or, without
// it, the BJ's own date and the bill's figures as they are now.

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
    .leftJoin('outbox as o', 'o.id', 'j.event_id')
    .select(['j.id as journal_id', 'j.bill_id', 'j.date as posted_date', 'o.type as event_type', 'o.payload as event_payload',
      'b.invoice_date', 'b.due_date', 'b.fees_minor', 'b.fixed_charges_minor', 'b.disbursements_minor', 'b.interest_minor', 'b.tax_minor', 'b.discount_minor', 'b.total_minor'])
    .select((eb) => [
      eb.selectFrom('ledger_journal_line as l').select((e2) => e2.fn.min('l.date').as('d')).whereRef('l.journal_id', '=', 'j.id').as('counts_from'),
      eb.selectFrom('ledger_journal as r').innerJoin('ledger_journal_line as rl', 'rl.journal_id', 'r.id').select((e2) => e2.fn.min('rl.date').as('d'))
        .whereRef('r.reverses_journal_id', '=', 'j.id').as('undone_on'),
    ])
    .where('j.prefix', '=', 'BJ').where('j.reverses_journal_id', 'is', null).orderBy('j.id').execute() as Record<string, unknown>[];
  const rows = postings.map((p) => {
    // The approval each BJ posted, as its event said (the outbox keeps every event): its own dates and figures.
    type Approved = { invoiceDate?: string; dueDate?: string; totals?: Record<string, number> };
    const payload = p.event_payload;
    const e = p.event_type !== 'billing.bill_approved' ? null
      : typeof payload === 'string' ? JSON.parse(payload) as Approved : payload !== null && typeof payload === 'object' ? payload as Approved : null;
    const t = e?.totals;
    const own = e !== null && typeof e.invoiceDate === 'string' && typeof e.dueDate === 'string' && t !== undefined
      && ['feesMinor', 'fixedChargesMinor', 'disbursementsMinor', 'interestMinor', 'taxMinor', 'discountMinor', 'totalMinor'].every((k) => Number.isSafeInteger(t[k]));
    return {
      journal_id: p.journal_id, bill_id: p.bill_id,
      // Without it: the BJ's own date (the bill's invoice date when posted), and the bill's figures as they are now.
      invoice_date: own ? e!.invoiceDate : p.posted_date, due_date: own ? e!.dueDate : p.due_date,
      fees_minor: own ? t!.feesMinor : p.fees_minor, fixed_charges_minor: own ? t!.fixedChargesMinor : p.fixed_charges_minor,
      disbursements_minor: own ? t!.disbursementsMinor : p.disbursements_minor, interest_minor: own ? t!.interestMinor : p.interest_minor,
      tax_minor: own ? t!.taxMinor : p.tax_minor, discount_minor: own ? t!.discountMinor : p.discount_minor, total_minor: own ? t!.totalMinor : p.total_minor,
      counts_from: p.counts_from ?? p.posted_date, undone_on: p.undone_on ?? null,
    };
  });
  for (let i = 0; i < rows.length; i += 500) await db.insertInto('ledger_bill_posting').values(rows.slice(i, i + 500)).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('ledger_bill_posting').execute();
}
