/**
 * billing_bill_line as stored and read back: the database's own checks on a line's values
 * (written for SQLite in OR form by migration 20261203_0400, the same rules as Postgres's
 * lists), and lines read back whole through the packed columns bill-store reads them in;
 * and the same lines as the JSON bulk approving's events carry (SQLite builds it).
 */
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { eachDialect } from '../support/db.ts';
import fc from 'fast-check';
import { billDataJson, billsWithLineJson, findBill } from '../../src/modules/billing/bill-store.ts';
import { billData } from '../../src/modules/billing/commands.ts';
import { firm, insertTestBill, setup } from './support.ts';

const line = (lineNo: number, over: Record<string, unknown> = {}) => ({
  bill_id: 'bill-lines', line_no: lineNo, key: `k${lineNo}`, item_id: null, item_kind: null, kind: 'adhoc_fee', date: '2026-02-10', description: 'Ad hoc',
  recorded_minor: 0, amount_minor: 0, no_charge: 0, tax_minor: 0, live: 1, ...over,
});

async function billFor(db: Parameters<Parameters<typeof eachDialect>[1]>[0]) {
  const s = await setup(db);
  const { matter } = await firm(s.cmds);
  await s.drain();
  await insertTestBill(db.db, 'bill-lines', { id: matter.id, clientId: matter.clientId, fileNumber: matter.fileNumber });
  return s;
}

eachDialect('the database refuses a bill line whose kind, item kind, no-charge or live flag is not one of its values', async (db) => {
  await billFor(db);
  // Every value each rule allows goes in.
  const kinds = ['time', 'disbursement', 'fixed_charge', 'fixed_fee', 'quote_fee', 'adhoc_fee', 'adhoc_disbursement', 'discount', 'interest'];
  let n = 0;
  for (const kind of kinds) await db.db.insertInto('billing_bill_line').values(line(++n, { kind })).execute();
  for (const itemKind of ['time', 'disbursement', 'fixed_charge']) await db.db.insertInto('billing_bill_line').values(line(++n, { item_kind: itemKind, item_id: `item-${n}`, kind: itemKind })).execute();
  await db.db.insertInto('billing_bill_line').values(line(++n, { no_charge: 1, live: 0 })).execute();
  // Anything else is refused, and nothing of it is written.
  const bad: Record<string, unknown>[] = [
    { kind: 'bogus' }, { kind: 'Time' }, { kind: '' }, { item_kind: 'fixed_fee' }, { item_kind: 'bogus' },
    { no_charge: 2 }, { no_charge: -1 }, { live: 2 }, { line_no: 0 },
  ];
  for (const over of bad) {
    await assert.rejects(db.db.insertInto('billing_bill_line').values(line(++n, over)).execute(), /check|constraint/i, JSON.stringify(over));
  }
  const [row] = await db.db.selectFrom('billing_bill_line').select((eb) => eb.fn.countAll().as('n')).where('bill_id', '=', 'bill-lines').execute();
  assert.equal(Number(row!.n), kinds.length + 3 + 1);
  if (db.dialect === 'sqlite') {
    const ddl = await sql<{ sql: string }>`select sql from sqlite_master where type = 'table' and name = 'billing_bill_line'`.execute(db.db);
    assert.doesNotMatch(ddl.rows[0]!.sql, / in \(/, 'no value list for SQLite to build per statement run');
    const idx = await sql<{ name: string }>`select name from sqlite_master where type = 'index' and tbl_name = 'billing_bill_line' and sql is not null`.execute(db.db);
    assert.deepEqual(idx.rows.map((r) => r.name), ['billing_bill_line_live_item_uq'], 'the rebuilt table keeps its index');
  }
});

eachDialect('bill lines read back exactly as written, whatever their descriptions and amounts hold', async (db) => {
  await billFor(db);
  const lines = [
    line(1, { kind: 'time', item_kind: 'time', item_id: 'item-1', key: 'item-1', description: 'Call: re terms: 10:30', minutes: 90, rate_minor: 30_000, recorded_minor: 45_000, amount_minor: 40_000, tax_minor: 4_000, timekeeper_id: 'tk-1', tax_code: 'GST', task_code: 'L110', activity_code: 'A101' }),
    line(2, { kind: 'discount', key: 'discount', description: ':', recorded_minor: -12_345, amount_minor: -12_345, tax_minor: -1_234 }),
    line(3, { kind: 'disbursement', item_kind: 'disbursement', item_id: 'item-3', key: 'item-3', description: '', code: 'E101', expense_code: 'E101', recorded_minor: 9_007_199_254_740, amount_minor: 9_007_199_254_740, no_charge: 1 }),
    line(4, { kind: 'fixed_fee', key: 'fixed:row-1', schedule_row_id: 'row-1', description: 'Stage 1 – ünïcode ✓ and a:colon', charge_type_id: null, recorded_minor: 0, amount_minor: 0 }),
  ];
  await db.db.insertInto('billing_bill_line').values(lines).execute();
  const bill = await findBill(db.db, 'bill-lines');
  assert.ok(bill);
  assert.deepEqual(bill.lines.map((l) => [l.lineNo, l.key, l.kind, l.itemId, l.itemKind, l.scheduleRowId, l.date, l.description, l.recordedMinor, l.amountMinor, l.taxMinor, l.noCharge, l.minutes, l.rateMinor, l.timekeeperId, l.code, l.taxCode, l.taskCode, l.activityCode, l.expenseCode]), [
    [1, 'item-1', 'time', 'item-1', 'time', null, '2026-02-10', 'Call: re terms: 10:30', 45_000, 40_000, 4_000, false, 90, 30_000, 'tk-1', null, 'GST', 'L110', 'A101', null],
    [2, 'discount', 'discount', null, null, null, '2026-02-10', ':', -12_345, -12_345, -1_234, false, null, null, null, null, null, null, null, null],
    [3, 'item-3', 'disbursement', 'item-3', 'disbursement', null, '2026-02-10', '', 9_007_199_254_740, 9_007_199_254_740, 0, true, null, null, null, 'E101', null, null, null, 'E101'],
    [4, 'fixed:row-1', 'fixed_fee', null, null, 'row-1', '2026-02-10', 'Stage 1 – ünïcode ✓ and a:colon', 0, 0, 0, false, null, null, null, null, null, null, null, null],
  ]);
  assert.deepEqual(bill.items, [{ kind: 'time', id: 'item-1' }, { kind: 'disbursement', id: 'item-3' }]);
});

// Descriptions with everything JSON must escape (quotes, backslashes, control characters) and text it must not mangle.
const textArb = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.string({ unit: fc.constantFrom('"', '\\', '\n', '\r', '\t', '\u0001', '\u001f', '\u007f', '\u2028', '/', '<', 'é', '✓', '😀', 'a', ' '), maxLength: 12 }),
);
const lineArb = fc.record({
  kind: fc.constantFrom('time', 'disbursement', 'fixed_charge', 'fixed_fee', 'adhoc_fee', 'discount', 'interest'),
  holds: fc.boolean(), description: textArb, noCharge: fc.boolean(),
  amountMinor: fc.integer({ min: -1_000_000_000, max: 9_007_199_254_740 }), minutes: fc.option(fc.integer({ min: 0, max: 6_000 }), { nil: null }),
  code: fc.option(fc.constantFrom('E101', 'COURT', 'x"y'), { nil: null }),
});

eachDialect('the lines and items the database gives as JSON are exactly the lines read back, and the event built from them is billData', async (db) => {
  const s = await billFor(db);
  let run = 0;
  await fc.assert(fc.asyncProperty(fc.array(lineArb, { maxLength: 6 }), async (gen) => {
    run++;
    await db.db.deleteFrom('billing_bill_line').where('bill_id', '=', 'bill-lines').execute();
    const rows = gen.map((g, i) => {
      const holds = g.holds && ['time', 'disbursement', 'fixed_charge'].includes(g.kind);
      const itemId = holds ? `item-${run}-${i}` : null;
      return line(i + 1, {
        kind: g.kind, item_id: itemId, item_kind: holds ? g.kind : null, key: itemId ?? `${g.kind}:${i}`, description: g.description, no_charge: g.noCharge ? 1 : 0,
        recorded_minor: g.amountMinor, amount_minor: g.amountMinor, minutes: g.minutes, rate_minor: g.minutes === null ? null : 30_000, code: g.code,
        timekeeper_id: g.kind === 'time' ? 'tk-1' : null,
      });
    });
    // Stored out of line order: both readers put them in line order.
    if (rows.length) await db.db.insertInto('billing_bill_line').values([...rows].reverse()).execute();
    const bill = (await findBill(db.db, 'bill-lines'))!;
    const row = await db.db.selectFrom('billing_bill').selectAll().where('id', '=', 'bill-lines').executeTakeFirstOrThrow();
    const [read] = await billsWithLineJson(db.db, [row]);
    assert.deepEqual(JSON.parse(read!.lines.linesJson), JSON.parse(JSON.stringify(bill.lines)));
    assert.deepEqual(JSON.parse(read!.lines.itemsJson), bill.items);
    assert.deepEqual([read!.lines.lineCount, read!.lines.itemCount], [bill.lines.length, bill.items.length]);
    const built = billDataJson(read!.head, read!.lines);
    assert.deepEqual(JSON.parse(built), JSON.parse(JSON.stringify(billData(bill))));
    // The very same text (SQLite builds it, Postgres serialises the lines it read): keys in the same order.
    assert.equal(built, JSON.stringify(billData(bill)));
  }), { numRuns: 60 });
  await s.rt.relay.stop();
});
