import type { Kysely } from 'kysely';

// billing_bill.retainer_applied_minor: the part of the bill's total its general retainer pays
// (the retainer applies to the bill, automatically or by the clerk's choice, seed 002): the
// bill shows it and what is left to pay, and asks for a top-up from the balance after it.
// 0 on every bill before this column (they asked for their whole total).

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('billing_bill').addColumn('retainer_applied_minor', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('billing_bill').dropColumn('retainer_applied_minor').execute();
}
