/**
 * Billing follows the ledger's bill balances (ledger.bill_balance_changed): a receipted bill
 * cannot be deleted; interest on overdue bills by the firm's policy charges each day once;
 * a manual amount or "no" replaces the policy; expired time-sensitive discounts are raised.
 * The real runtime: matters, billing and ledger commands with the relay between them.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { interestFirm, setup as ledgerSetup, tenPct } from '../ledger/support.ts';
import { ctx, firm, refused, work } from './support.ts';
import { addDays, daysBetween } from '../../src/modules/billing/domain/rules.ts';


eachDialect('receipts stop deletion; interest by policy charges each overdue day once; manual or no interest replaces it', async (db) => {
  const { s, t } = await interestFirm(db);

  // Bill 1: 2026-03-02, due 2026-04-01; finalised; a part payment of 100.00.
  const b1 = await s.billing.createDraft(ctx, { matterId: t.matter.id, invoiceDate: '2026-03-02', upTo: '2026-02-28' });
  assert.equal(b1.totals.interestMinor, 0, 'nothing overdue yet');
  const number1 = (await s.billing.approve(ctx, b1.billId)).number!;
  await s.billing.finalise(ctx, b1.billId);
  await s.drain();
  const total1 = b1.totals.totalMinor;
  assert.equal(b1.dueDate, '2026-04-01');
  await s.ledger.recordReceipt(ctx, { billId: b1.billId, receivedOn: '2026-03-05', amountMinor: 10_000 });
  await s.drain();
  const e = await refused(s.billing.deleteBill(ctx, b1.billId));
  assert.match(e.message, /Receipts are allocated to this bill/);
  const redraftable = await s.billing.actionsFor((await s.billing.findBill(b1.billId))!);
  assert.equal(redraftable.redraft.allowed, true, 'a receipted bill can still be re-drafted');

  // Bill 2 on 2026-05-01: 30 days overdue on 1's balance.
  await s.cmds.recordTimeEntry(ctx, { matterId: t.matter.id, timekeeperId: t.partner.id, workDate: '2026-04-10', rawMinutes: 60, narrative: 'Advice' });
  await s.drain();
  const owed = total1 - 10_000;
  const b2 = await s.billing.createDraft(ctx, { matterId: t.matter.id, invoiceDate: '2026-05-01', upTo: '2026-04-30' });
  const want2 = tenPct(owed, daysBetween('2026-04-01', '2026-05-01'));
  assert.ok(want2 > 0);
  assert.equal(b2.totals.interestMinor, want2);
  const line = b2.lines.find((l) => l.kind === 'interest')!;
  assert.equal(line.amountMinor, want2);
  assert.match(line.description, new RegExp(`overdue bill ${number1.replace(/\./g, '\\.')} \\(2026-04-01 to 2026-05-01\\)`));
  await s.billing.approve(ctx, b2.billId);
  await s.drain();

  // A preview on 2026-06-01: bill 1 only from 2026-05-01 (charged before); bill 2 is due 2026-05-31: one day.
  const total2 = (await s.billing.findBill(b2.billId))!.totals.totalMinor;
  await s.cmds.recordTimeEntry(ctx, { matterId: t.matter.id, timekeeperId: t.partner.id, workDate: '2026-05-10', rawMinutes: 30, narrative: 'Call' });
  await s.drain();
  const p3 = await s.billing.preview({ matterId: t.matter.id, invoiceDate: '2026-06-01', upTo: '2026-05-31' });
  assert.deepEqual(p3.interestCharges.map((c) => [c.overdueBillId, c.fromDate, c.throughDate, c.balanceMinor, c.amountMinor]), [
    [b1.billId, '2026-05-01', '2026-06-01', owed, tenPct(owed, 31)],
    [b2.billId, addDays('2026-05-01', 30), '2026-06-01', total2, tenPct(total2, 1)],
  ].filter((r) => (r[4] as number) > 0));
  assert.equal(p3.composed.totals.interestMinor, p3.interestCharges.reduce((a, c) => a + c.amountMinor, 0));

  // Manual amount, or no policy: the policy is not applied.
  assert.equal((await s.billing.preview({ matterId: t.matter.id, invoiceDate: '2026-06-01', upTo: '2026-05-31', request: { interestMinor: 0 } })).composed.totals.interestMinor, 0);
  assert.equal((await s.billing.preview({ matterId: t.matter.id, invoiceDate: '2026-06-01', upTo: '2026-05-31', request: { interestMinor: 1_234 } })).composed.totals.interestMinor, 1_234);
  assert.equal((await s.billing.preview({ matterId: t.matter.id, invoiceDate: '2026-06-01', upTo: '2026-05-31', request: { interestByPolicy: false } })).interestCharges.length, 0);

  // Bill 2 reverted then deleted: its charge no longer counts, so bill 1's days from 2026-04-01 are chargeable again.
  await s.billing.revert(ctx, b2.billId);
  await s.billing.deleteBill(ctx, b2.billId);
  await s.drain();
  const p3b = await s.billing.preview({ matterId: t.matter.id, invoiceDate: '2026-06-01', upTo: '2026-05-31' });
  assert.deepEqual(p3b.interestCharges.map((c) => [c.overdueBillId, c.fromDate, c.amountMinor]), [[b1.billId, '2026-04-01', tenPct(owed, 61)]]);

  // Paid in full (in May's books): no interest.
  s.clock.set('2026-05-20T09:00:00Z');
  await s.ledger.recordReceipt(ctx, { billId: b1.billId, receivedOn: '2026-05-20', amountMinor: owed });
  await s.drain();
  assert.equal((await s.billing.preview({ matterId: t.matter.id, invoiceDate: '2026-06-01', upTo: '2026-05-31' })).interestCharges.length, 0);
});

eachDialect('an expired, undecided time-sensitive discount is raised when the next bill is composed', async (db) => {
  const s = await ledgerSetup(db);
  const t = await firm(s.cmds);
  await work(s.cmds, t.matter.id, t);
  await s.drain();
  const b1 = await s.billing.createDraft(ctx, {
    matterId: t.matter.id, invoiceDate: '2026-03-02', upTo: '2026-02-28',
    request: { discount: { kind: 'percentage', percentBasisPoints: 1_000, amountMinor: 0, validUntil: '2026-03-16' } },
  });
  assert.ok(b1.totals.discountMinor > 0);
  const number1 = (await s.billing.approve(ctx, b1.billId)).number!;
  await s.drain();
  await s.cmds.recordTimeEntry(ctx, { matterId: t.matter.id, timekeeperId: t.partner.id, workDate: '2026-03-20', rawMinutes: 60, narrative: 'Advice' });
  await s.drain();
  const before = await s.billing.preview({ matterId: t.matter.id, invoiceDate: '2026-03-16', upTo: '2026-03-16' });
  assert.deepEqual(before.expiredDiscounts, [], 'still valid on its last day');
  const after = await s.billing.preview({ matterId: t.matter.id, invoiceDate: '2026-04-01', upTo: '2026-03-31' });
  assert.deepEqual(after.expiredDiscounts.map((x) => [x.billId, x.billNumber, x.validUntil]), [[b1.billId, number1, '2026-03-16']]);
});

eachDialect('a receipted bill back in draft (re-drafted or reverted) is still not deleted; approved again, its receipt is back on it', async (db) => {
  const s = await ledgerSetup(db);
  const t = await firm(s.cmds);
  await work(s.cmds, t.matter.id, t);
  await s.drain();
  const b1 = await s.billing.createDraft(ctx, { matterId: t.matter.id, invoiceDate: '2026-03-02', upTo: '2026-02-28' });
  const number1 = (await s.billing.approve(ctx, b1.billId)).number!;
  await s.billing.finalise(ctx, b1.billId);
  await s.drain();
  await s.ledger.recordReceipt(ctx, { billId: b1.billId, receivedOn: '2026-03-02', amountMinor: 10_000 });
  await s.drain();
  // Seed 003: only the most recent, unreceipted bill may be deleted; going back to draft is no way round it.
  const steps = [
    { back: () => s.billing.redraft(ctx, b1.billId), then: () => s.billing.approve(ctx, b1.billId) },
    { back: () => s.billing.revert(ctx, b1.billId), then: async () => { await s.billing.approve(ctx, b1.billId); return s.billing.finalise(ctx, b1.billId); } },
  ];
  for (const [i, step] of steps.entries()) {
    const draft = await step.back();
    assert.deepEqual([draft.status, draft.number, draft.receiptsToReallocateMinor], ['draft', number1, 10_000], `step ${i}: the receipt waits to go back on`);
    await s.drain();
    const refusal = await refused(s.billing.deleteBill(ctx, b1.billId));
    assert.match(refusal.message, /Receipts were allocated to this bill before it went back to draft: approve it again/, `step ${i}`);
    assert.equal((await s.billing.actionsFor((await s.billing.findBill(b1.billId))!)).delete.allowed, false, `step ${i}: no Delete offered`);
    await step.then();
    await s.drain();
    const again = (await s.billing.findBill(b1.billId))!;
    assert.deepEqual([again.number, again.receiptsToReallocateMinor], [number1, 0], `step ${i}: approved again, nothing left to reallocate`);
    assert.match((await refused(s.billing.deleteBill(ctx, b1.billId))).message, /Receipts are allocated to this bill/, `step ${i}: the receipt is back on the bill`);
  }
  // The bill as the books see it: still paid 100.00 of its total.
  const ledgerBill = await db.db.selectFrom('ledger_bill').select(['paid_minor', 'status']).where('id', '=', b1.billId).executeTakeFirstOrThrow();
  assert.deepEqual([Number(ledgerBill.paid_minor), ledgerBill.status], [10_000, 'open']);
  await s.rt.relay.stop();
});
