/**
 * Interest by the firm's policy charges every overdue day once, even when the days left are
 * not one run: an older bill saved again after a newer bill charged later days keeps its own
 * days; days an older bill gives up (dated back) between two live charges go to the next bill. The
 * real runtime: matters, billing and ledger with the relay between them.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { interestFirm, setup as ledgerSetup, tenPct } from '../ledger/support.ts';
import { ctx, firm, work } from './support.ts';


eachDialect('an older bill saved again after a newer one charged later days still charges its own days; days it gives up between two charges are charged by the next bill', async (db) => {
  const { s, t } = await interestFirm(db);

  // Bill 1: 2026-03-02, due 2026-04-01, unpaid.
  const b1 = await s.billing.createDraft(ctx, { matterId: t.matter.id, invoiceDate: '2026-03-02', upTo: '2026-02-28' });
  await s.billing.approve(ctx, b1.billId);
  await s.drain();
  const owed = b1.totals.totalMinor;

  const entry = async (day: string) => {
    await s.cmds.recordTimeEntry(ctx, { matterId: t.matter.id, timekeeperId: t.partner.id, workDate: day, rawMinutes: 60, narrative: `Work ${day}` });
    await s.drain();
  };
  const charges = async (billId: string) => (await db.db.selectFrom('billing_interest_charge').select(['overdue_bill_id', 'from_date', 'through_date', 'amount_minor'])
    .where('charging_bill_id', '=', billId).orderBy('from_date').execute()).map((r) => [r.overdue_bill_id, r.from_date, r.through_date, Number(r.amount_minor)]);

  // Bill 2 (2026-05-01) charges bill 1 for 2026-04-01 .. 2026-05-01; bill 3 (2026-06-01) for 2026-05-01 .. 2026-06-01.
  await entry('2026-04-10');
  const b2 = await s.billing.createDraft(ctx, { matterId: t.matter.id, invoiceDate: '2026-05-01', upTo: '2026-04-30' });
  await s.billing.approve(ctx, b2.billId);
  await entry('2026-05-10');
  const b3 = await s.billing.createDraft(ctx, { matterId: t.matter.id, invoiceDate: '2026-06-01', upTo: '2026-05-31', request: { interestByPolicy: true } });
  assert.deepEqual((await charges(b3.billId)).filter((c) => c[0] === b1.billId), [[b1.billId, '2026-05-01', '2026-06-01', tenPct(owed, 31)]]);
  await s.billing.approve(ctx, b3.billId);
  await s.drain();

  // Bill 2 reverted and saved again: its days 2026-04-01 .. 2026-05-01 are still its own (before: none, as bill 3 had charged later days).
  await s.billing.revert(ctx, b2.billId);
  const again = await s.billing.updateDraft(ctx, b2.billId, {});
  assert.deepEqual(await charges(b2.billId), [[b1.billId, '2026-04-01', '2026-05-01', tenPct(owed, 30)]]);
  assert.equal(again.totals.interestMinor, tenPct(owed, 30));

  // Bill 2 dated back to 2026-04-15 and approved again: it charges 2026-04-01 .. 2026-04-15 only, so bill 4
  // (2026-07-01) charges the days it gave up and the days after bill 3's, as two periods on one bill.
  const earlier = await s.billing.updateDraft(ctx, b2.billId, { invoiceDate: '2026-04-15', upTo: '2026-04-15' });
  assert.deepEqual(await charges(b2.billId), [[b1.billId, '2026-04-01', '2026-04-15', tenPct(owed, 14)]]);
  assert.equal(earlier.totals.interestMinor, tenPct(owed, 14));
  await s.billing.approve(ctx, b2.billId);
  await s.drain();
  await entry('2026-06-10');
  const b4 = await s.billing.createDraft(ctx, { matterId: t.matter.id, invoiceDate: '2026-07-01', upTo: '2026-06-30' });
  const onB1 = (await charges(b4.billId)).filter((c) => c[0] === b1.billId);
  assert.deepEqual(onB1, [[b1.billId, '2026-04-15', '2026-05-01', tenPct(owed, 16)], [b1.billId, '2026-06-01', '2026-07-01', tenPct(owed, 30)]]);
  const all = await charges(b4.billId);
  assert.equal(b4.totals.interestMinor, all.reduce((a, c) => a + (c[3] as number), 0), 'the interest line is the sum of the charges');
  const line = b4.lines.find((l) => l.kind === 'interest')!;
  assert.match(line.description, /\(2026-04-15 to 2026-05-01\), .*\(2026-06-01 to 2026-07-01\)/);
  await s.rt.relay.stop();
});
