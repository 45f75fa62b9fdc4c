/**
 * Un-posting a bill (revert, re-draft, delete) and posting it again, against the books as at
 * every date (the way the reports read them), on both databases: money that came back late is
 * re-allocated no earlier than it came back; only the last reversal's releases come back; a
 * revert with closed and reopened months never leaves a bill half undone at any date; money
 * is not reversed or allocated before it paid, nor before a bill's date; a discount honoured by
 * payment is undecided again when the payment does not come back, one honoured by a person
 * stays honoured.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import type { LedgerSetup } from './support.ts';
import { assertBooksAsAt, assertLedgerInvariants, ctx, firm, refused, setup } from './support.ts';

/** Every date from `from` to `to`, inclusive (YYYY-MM-DD). */
function everyDay(from: string, to: string): string[] {
  const out: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += 86_400_000) out.push(new Date(t).toISOString().slice(0, 10));
  return out;
}

async function twoBills(s: LedgerSetup, opts: { discount?: { bp: number; validUntil: string } } = {}) {
  const t = await firm(s.cmds);
  const m2 = await s.cmds.openMatter(ctx, { clientId: t.client.id, name: 'Second', responsibleTimekeeperId: t.partner.id, openedOn: '2025-06-01' });
  for (const m of [t.matter.id, m2.id]) await s.cmds.recordTimeEntry(ctx, { matterId: m, timekeeperId: t.partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice' });
  await s.drain();
  const bill = async (matterId: string) => {
    const draft = await s.billing.createDraft(ctx, {
      matterId, invoiceDate: '2026-02-28', upTo: '2026-02-28',
      request: opts.discount ? { discount: { kind: 'percentage', percentBasisPoints: opts.discount.bp, amountMinor: 0, validUntil: opts.discount.validUntil } } : {},
    });
    const approved = await s.billing.approve(ctx, draft.billId);
    await s.drain();
    return approved;
  };
  return { t, a: await bill(t.matter.id), b: await bill(m2.id) };
}

const status = async (s: LedgerSetup, billId: string) => {
  const r = await s.rt.database.db.selectFrom('ledger_bill').select(['status', 'paid_minor', 'discount_status']).where('id', '=', billId).executeTakeFirstOrThrow();
  return [r.status, Number(r.paid_minor), r.discount_status];
};
const live = (s: LedgerSetup, billId: string) => s.rt.database.db.selectFrom('ledger_allocation').select(['id', 'allocated_on']).where('bill_id', '=', billId).where('released_on', 'is', null).execute();

eachDialect('money used for another bill meanwhile comes back to a re-approved bill only from the day it came back; only the last reversal\'s releases come back', async (db) => {
  const s = await setup(db);
  const { a, b } = await twoBills(s);
  const r = await s.ledger.recordReceipt(ctx, { billId: a.billId, receivedOn: '2026-03-05', amountMinor: 30_000, order: 'this_bill_only' });
  s.clock.set('2026-03-10T09:00:00Z');
  await s.billing.revert(ctx, a.billId);
  await s.drain();
  // The credit pays B (from 5 March), then is released by hand on 12 March.
  await s.ledger.allocateCredit(ctx, { receiptId: r.receipt.id, billId: b.billId, order: 'this_bill_only', on: '2026-03-05' });
  // While it pays B, it cannot pay anything from an earlier day (it was in use then).
  s.clock.set('2026-03-12T09:00:00Z');
  await s.ledger.releaseAllocation(ctx, String((await live(s, b.billId))[0]!.id));
  await refused(s.ledger.allocateCredit(ctx, { receiptId: r.receipt.id, billId: b.billId, order: 'this_bill_only', on: '2026-03-06' }), 422);
  await s.billing.approve(ctx, a.billId);
  await s.drain();
  assert.deepEqual(await status(s, a.billId), ['open', 30_000, 'none']);
  assert.deepEqual((await live(s, a.billId)).map((x) => x.allocated_on), ['2026-03-12'], 'not back-dated to a day the money paid B');
  await assertLedgerInvariants(db.db, { billing: true });
  await assertBooksAsAt(db.db, everyDay('2026-02-27', '2026-03-13'));

  // Reverted again (the money goes to credit), the credit pays B, A approved (nothing comes back), reverted (releasing
  // nothing), B's allocation released: approved again, A gets nothing (its last reversal released nothing).
  s.clock.set('2026-03-14T09:00:00Z');
  await s.billing.revert(ctx, a.billId);
  await s.drain();
  await s.ledger.allocateCredit(ctx, { receiptId: r.receipt.id, billId: b.billId, order: 'this_bill_only' });
  await s.billing.approve(ctx, a.billId);
  await s.drain();
  await s.billing.revert(ctx, a.billId);
  await s.drain();
  s.clock.set('2026-03-16T09:00:00Z');
  await s.ledger.releaseAllocation(ctx, String((await live(s, b.billId))[0]!.id));
  await s.billing.approve(ctx, a.billId);
  await s.drain();
  assert.deepEqual(await status(s, a.billId), ['open', 0, 'none']);
  assert.equal(Number((await db.db.selectFrom('ledger_receipt').select('unallocated_minor').where('id', '=', r.receipt.id).executeTakeFirstOrThrow()).unallocated_minor), 30_000);
  await assertLedgerInvariants(db.db, { billing: true });
  await assertBooksAsAt(db.db, everyDay('2026-02-27', '2026-03-17'));
});

eachDialect('a revert with a closed month among its pieces undoes them all from the first open day: a closed month\'s reports do not change, no date shows the bill half undone', async (db) => {
  const s = await setup(db);
  const { a } = await twoBills(s);
  await s.ledger.recordReceipt(ctx, { billId: a.billId, receivedOn: '2026-03-05', amountMinor: 30_000, order: 'this_bill_only' });
  s.clock.set('2026-04-05T09:00:00Z');
  await s.ledger.setCurrentPeriod(ctx, '2026-04');
  await s.ledger.setPeriod(ctx, { period: '2026-02', status: 'closed' });
  await s.ledger.setPeriod(ctx, { period: '2026-03', status: 'closed' });
  await s.ledger.setPeriod(ctx, { period: '2026-02', status: 'open' });
  const aged = async () => (await s.reports.run('aged-debtors', { to: '2026-03-31' })).totals!.total;
  const before = await aged();
  await s.billing.revert(ctx, a.billId);
  await s.drain();
  assert.equal(await aged(), before, 'March is closed: its aged debtors do not change');
  // The bill's reversal and the receipt's release both count from 1 April (the receipt in March could not be undone there).
  const undone = await db.db.selectFrom('ledger_journal_line as l').innerJoin('ledger_journal as j', 'j.id', 'l.journal_id')
    .select(['j.prefix', 'l.date']).where('j.bill_id', '=', a.billId).where('j.source_type', '=', 'billing.bill_reverted').execute();
  assert.ok(undone.length > 0 && undone.every((l) => l.date === '2026-04-01'), JSON.stringify(undone));
  await assertLedgerInvariants(db.db, { billing: true });
  await assertBooksAsAt(db.db, everyDay('2026-02-27', '2026-04-06'));
});

eachDialect('money is not reversed before it paid, nor paid to a bill before the bill\'s date', async (db) => {
  const s = await setup(db);
  const { t, a } = await twoBills(s);
  // On account on 5 March, allocated to A on 12 March: reversing it on 8 March is refused (A would owe it twice for a while).
  s.clock.set('2026-03-12T09:00:00Z');
  const r = await s.ledger.recordReceipt(ctx, { clientId: t.client.id, receivedOn: '2026-03-05', amountMinor: 30_000, order: 'on_account' });
  await s.ledger.allocateCredit(ctx, { receiptId: r.receipt.id, billId: a.billId, order: 'this_bill_only', on: '2026-03-12' });
  const e = await refused(s.ledger.reverseReceipt(ctx, { receiptId: r.receipt.id, on: '2026-03-08', reason: 'Cheque dishonoured' }), 422);
  assert.match(e.fields.on ?? '', /on or after 2026-03-12/);
  await s.ledger.reverseReceipt(ctx, { receiptId: r.receipt.id, on: '2026-03-12', reason: 'Cheque dishonoured' });
  // A bill dated 15 March is not paid by money allocated on 10 March.
  s.clock.set('2026-03-15T09:00:00Z');
  const m3 = await s.cmds.openMatter(ctx, { clientId: t.client.id, name: 'Third', responsibleTimekeeperId: t.partner.id, openedOn: '2025-06-01' });
  await s.cmds.recordTimeEntry(ctx, { matterId: m3.id, timekeeperId: t.partner.id, workDate: '2026-03-01', rawMinutes: 60, narrative: 'Advice' });
  await s.drain();
  const late = await s.billing.approve(ctx, (await s.billing.createDraft(ctx, { matterId: m3.id, invoiceDate: '2026-03-15', upTo: '2026-03-15' })).billId);
  await s.drain();
  const credit = await s.ledger.recordReceipt(ctx, { clientId: t.client.id, receivedOn: '2026-03-10', amountMinor: 10_000, order: 'on_account' });
  await refused(s.ledger.allocateCredit(ctx, { receiptId: credit.receipt.id, billId: late.billId, order: 'this_bill_only', on: '2026-03-10' }), 422);
  // A day before every bill still owing is named as such (422 on the date).
  const early = await s.ledger.recordReceipt(ctx, { clientId: t.client.id, receivedOn: '2026-02-20', amountMinor: 1_000, order: 'on_account', confirmOutsidePeriod: true });
  const e2 = await refused(s.ledger.allocateCredit(ctx, { receiptId: early.receipt.id, order: 'oldest_first', on: '2026-02-25', confirmOutsidePeriod: true }), 422);
  assert.match(e2.fields.on ?? '', /before every bill with something outstanding \(the earliest is dated 2026-02-28\)/);
  // Oldest first on 10 March takes the bills of that date or before (A), not the later one.
  await s.ledger.allocateCredit(ctx, { receiptId: credit.receipt.id, order: 'oldest_first', on: '2026-03-10' });
  assert.deepEqual((await live(s, late.billId)).length, 0);
  assert.deepEqual((await live(s, a.billId)).map((x) => x.allocated_on), ['2026-03-10']);
  await assertLedgerInvariants(db.db, { billing: true });
  await assertBooksAsAt(db.db, everyDay('2026-02-27', '2026-03-16'));
});

eachDialect('a discount honoured by payment is undecided again when that payment does not come back; one honoured by a person stays honoured', async (db) => {
  const s = await setup(db);
  const { t, a, b } = await twoBills(s, { discount: { bp: 1_000, validUntil: '2026-03-14' } });
  // A paid in time (270.00): honoured. Reverted on the 20th; its money goes to B; A approved again without it.
  const r = await s.ledger.recordReceipt(ctx, { billId: a.billId, receivedOn: '2026-03-10', amountMinor: 27_000, order: 'this_bill_only' });
  assert.deepEqual(await status(s, a.billId), ['open', 27_000, 'honoured']);
  s.clock.set('2026-03-20T09:00:00Z');
  await s.billing.revert(ctx, a.billId);
  await s.drain();
  await s.ledger.allocateCredit(ctx, { receiptId: r.receipt.id, billId: b.billId, order: 'this_bill_only' });
  await s.billing.approve(ctx, a.billId);
  await s.drain();
  assert.deepEqual(await status(s, a.billId), ['open', 0, 'pending']);
  // Paid after the date: the discount is reversed, the full 300.00 is due.
  const lateReceipt = await s.ledger.recordReceipt(ctx, { billId: a.billId, receivedOn: '2026-03-20', amountMinor: 30_000, order: 'this_bill_only' });
  assert.deepEqual(lateReceipt.discountsReversed, [a.billId]);
  assert.deepEqual(await status(s, a.billId), ['open', 30_000, 'reversed']);
  // A third bill's discount honoured by the bookkeeper's decision: a part payment released does not undo the decision.
  const c = await s.cmds.openMatter(ctx, { clientId: t.client.id, name: 'Third', responsibleTimekeeperId: t.partner.id, openedOn: '2025-06-01' });
  await s.cmds.recordTimeEntry(ctx, { matterId: c.id, timekeeperId: t.partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice' });
  await s.drain();
  const third = await s.billing.approve(ctx, (await s.billing.createDraft(ctx, { matterId: c.id, invoiceDate: '2026-03-01', upTo: '2026-03-01', request: { discount: { kind: 'percentage', percentBasisPoints: 1_000, amountMinor: 0, validUntil: '2026-03-14' } } })).billId);
  await s.drain();
  await s.ledger.decideDiscount(ctx, { billId: third.billId, decision: 'honour', on: '2026-03-20' });
  await s.ledger.recordReceipt(ctx, { billId: third.billId, receivedOn: '2026-03-20', amountMinor: 10_000, order: 'this_bill_only' });
  await s.ledger.releaseAllocation(ctx, String((await live(s, third.billId))[0]!.id));
  assert.deepEqual(await status(s, third.billId), ['open', 0, 'honoured']);
  await assertLedgerInvariants(db.db, { billing: true });
  await assertBooksAsAt(db.db, everyDay('2026-02-27', '2026-03-21'));
});
