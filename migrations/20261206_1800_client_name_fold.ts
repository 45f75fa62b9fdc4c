import { sql } from 'kysely';
import type { Kysely } from 'kysely';

// billing_client.name_fold and ledger_client.name_fold: the client's name as typed names are
// compared with it (mass billing's Client filter; the ledger's receipt and report forms; their
// suggestions), folded in the application rather than by the database: SQLite's lower() folds
// ASCII only, so "müller" did not find "Müller GmbH" there, and Postgres's lower() depends on
// the server's locale. Lower case, accents dropped (the combining marks after Latin and Greek
// letters only), compatibility forms as their plain letters, ø, æ, ß and the like as
// typed without them. The names copied before it are folded here the same way as the
// modules' foldName (src/shared/client-names.ts) folds new ones (a migration imports no app code).

const PLAIN: Readonly<Record<string, string>> = { 'ø': 'o', 'æ': 'ae', 'œ': 'oe', 'ß': 'ss', 'đ': 'd', 'ð': 'd', 'ł': 'l', 'þ': 'th', 'ı': 'i', 'ħ': 'h', 'ŀ': 'l' };
const fold = (name: string): string => name.normalize('NFKD').replace(/([\p{Script=Latin}\p{Script=Greek}])[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+/gu, '$1')
  .toLowerCase().replace(/[øæœßđðłþıħŀ]/g, (ch) => PLAIN[ch]!);

const TABLES = ['billing_client', 'ledger_client'] as const;
/** Clients folded per statement (two parameters each, under SQLite's and Postgres's limits). */
const PAGE = 500;

export async function up(db: Kysely<any>): Promise<void> {
  for (const table of TABLES) {
    await db.schema.alterTable(table).addColumn('name_fold', 'text', (c) => c.notNull().defaultTo('')).execute();
    // A page of clients at a time, each page one statement (not a round trip per client).
    let after = '';
    for (;;) {
      const rows = (await sql<{ id: string; name: string }>`select id, name from ${sql.table(table)} where id > ${after} order by id limit ${PAGE}`.execute(db)).rows;
      if (rows.length === 0) break;
      const cases = sql.join(rows.map((r) => sql`when ${r.id} then ${fold(r.name)}`), sql` `);
      await sql`update ${sql.table(table)} set name_fold = case id ${cases} end where id in (${sql.join(rows.map((r) => r.id))})`.execute(db);
      after = rows[rows.length - 1]!.id;
    }
    await db.schema.createIndex(`${table}_name_fold_idx`).on(table).column('name_fold').execute();
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of TABLES) {
    await db.schema.dropIndex(`${table}_name_fold_idx`).execute();
    await db.schema.alterTable(table).dropColumn('name_fold').execute();
  }
}
