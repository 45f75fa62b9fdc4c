import { sql } from 'kysely';
import type { Kysely } from 'kysely';

// ledger_client.name_fold: the client's name as typed names are compared with it (the
// receipt and report forms' Client field, typed rather than chosen from a list of every
// client), as billing_client.name_fold is: lower case, accents dropped, compatibility forms as
// their plain letters, ø, æ, ß and the like as typed without them. The names copied before it are folded here the
// same way as the ledger's projection folds new ones (a migration imports no app code).

const PLAIN: Readonly<Record<string, string>> = { 'ø': 'o', 'æ': 'ae', 'œ': 'oe', 'ß': 'ss', 'đ': 'd', 'ð': 'd', 'ł': 'l', 'þ': 'th', 'ı': 'i', 'ħ': 'h', 'ŀ': 'l' };
const fold = (name: string): string => name.normalize('NFKD').replace(/[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+/g, '')
  .toLowerCase().replace(/[øæœßđðłþıħŀ]/g, (ch) => PLAIN[ch]!);

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('ledger_client').addColumn('name_fold', 'text', (c) => c.notNull().defaultTo('')).execute();
  const rows = await sql<{ id: string; name: string }>`select id, name from ledger_client order by id`.execute(db);
  for (const r of rows.rows) {
    const folded = fold(r.name);
    await sql`update ledger_client set name_fold = ${folded} where id = ${r.id}`.execute(db);
  }
  await db.schema.createIndex('ledger_client_name_fold_idx').on('ledger_client').column('name_fold').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('ledger_client_name_fold_idx').execute();
  await db.schema.alterTable('ledger_client').dropColumn('name_fold').execute();
}
