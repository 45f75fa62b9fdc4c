import type { Kysely } from 'kysely';
import { sql } from 'kysely';

// Billing's copy of the ledger's accounting periods (`ledger.periods_changed`): the current
// period as set (null: the month of today) and the closed months. Billing tells the clerk,
// on the drafts list, the bill page and as bills are approved, which post outside the
// current period or into a closed one (seed 004: "alerted ... when posting the Bills, and
// asked to verify the Accounting Period"). A firm that set periods before this migration has
// them carried over from the ledger's own tables, once.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('billing_ledger_periods')
    .addColumn('id', 'text', (c) => c.primaryKey().check(sql`id = 'periods'`))
    .addColumn('current_period', 'text', (c) => c.check(sql`current_period is null or length(current_period) = 7`))
    .addColumn('closed_json', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  const current = await db.selectFrom('ledger_setting').select('value').where('key', '=', 'current_period').executeTakeFirst() as { value: string } | undefined;
  const closed = (await db.selectFrom('ledger_period').select('period').where('status', '=', 'closed').orderBy('period').limit(100_000).execute()).map((r) => String(r.period));
  if (current || closed.length > 0) {
    await db.insertInto('billing_ledger_periods').values({
      id: 'periods', current_period: current?.value ?? null, closed_json: JSON.stringify(closed), event_id: null, updated_at: new Date().toISOString(),
    }).execute();
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('billing_ledger_periods').execute();
}
