import type { Kysely } from 'kysely';

// billing_bill_production.print_targets: the print folders (absolute paths, a JSON array) a bill
// cycle's copies may have been handed over in: each claim that finds the cycle not recorded as
// printed adds the folder it prints to, before any copy is written. A retry after a crash looks
// in the earlier ones (the server's PRINT_DIR changed between the crash and the retry) and does
// not print again a copy their journals say was handed over. Null: none recorded.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('billing_bill_production').addColumn('print_targets', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('billing_bill_production').dropColumn('print_targets').execute();
}
