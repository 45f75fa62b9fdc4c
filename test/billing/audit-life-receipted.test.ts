/**
 * Seed 003: only the most recent, UNRECEIPTED bill may be deleted, and a re-drafted or
 * reverted bill's receipts go back on it when it is approved again. Billing knows a bill's
 * receipts from its copy of the ledger's balances (`ledger.bill_balance_changed`), which the
 * relay delivers after the ledger's commit. While the ledger's latest figures for a bill have
 * not reached billing's copy yet (a receipt just recorded, a delivery backlog or a failing
 * handler), billing decides on what the ledger last said, not on the stale copy: a receipted
 * bill is not deleted (409, the receipt stays on it), and revert and re-draft record the
 * receipts to allocate again (so the draft is not deleted either).
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { HttpError } from '../../src/shared/web/errors.ts';
import { createMassBilling } from '../../src/modules/billing/index.ts';
import { assertLedgerInvariants, ctx, setup, setupWithApprovedBill } from '../ledger/support.ts';

async function billWithReceiptNotYetDelivered(db: Parameters<typeof setup>[0]) {
  const { s, bill } = await setupWithApprovedBill(db);
  await s.ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-03-01', amountMinor: 10_000, order: 'this_bill_only' });
  return { s, bill };
}

/** A receipted bill reverted to draft, everything delivered: the ledger released the receipt, to put back when it is approved again. */
async function revertedWithReceipt(db: Parameters<typeof setup>[0]) {
  const { s, bill } = await billWithReceiptNotYetDelivered(db);
  await s.drain();
  await s.billing.revert(ctx, bill.billId);
  await s.drain();
  return { s, bill };
}

const paidInLedger = async (db: Parameters<typeof setup>[0], billId: string) => {
  const r = await db.db.selectFrom('ledger_bill').select(['status', 'paid_minor']).where('id', '=', billId).executeTakeFirstOrThrow();
  return [String(r.status), Number(r.paid_minor)];
};

async function refusedAsReceipted(p: Promise<unknown>): Promise<void> {
  const e = await p.then(() => null, (x: unknown) => x);
  assert.ok(e instanceof HttpError && e.status === 409, `refused with a 409, got ${String(e)}`);
  assert.match(e.message, /Receipts (are allocated|were allocated)/, e.message);
}

eachDialect('a receipted bill is not deleted while the receipt has not reached billing\'s copy yet, nor after', async (db) => {
  const { s, bill } = await billWithReceiptNotYetDelivered(db);
  await refusedAsReceipted(s.billing.deleteBill(ctx, bill.billId));
  assert.equal((await s.billing.findBill(bill.billId))!.status, 'approved', 'the bill is not deleted');
  assert.equal((await s.billing.actionsFor((await s.billing.findBill(bill.billId))!)).delete.allowed, false, 'the page and API offer no Delete');
  await s.drain();
  assert.deepEqual(await paidInLedger(db, bill.billId), ['open', 10_000], 'the receipt stays on the bill');
  await refusedAsReceipted(s.billing.deleteBill(ctx, bill.billId));
  await assertLedgerInvariants(db.db, { billing: true });
});

eachDialect('a bill reverted or re-drafted before its receipts reached billing\'s copy records them to allocate again, and its draft is not deleted', async (db) => {
  const { s, bill } = await billWithReceiptNotYetDelivered(db);
  const reverted = await s.billing.revert(ctx, bill.billId);
  assert.equal(reverted.receiptsToReallocateMinor, 10_000, 'the receipt is recorded to go back on the bill');
  await refusedAsReceipted(s.billing.deleteBill(ctx, bill.billId));
  await s.drain();
  await refusedAsReceipted(s.billing.deleteBill(ctx, bill.billId));
  assert.equal((await s.billing.findBill(bill.billId))!.status, 'draft', 'the reverted draft with receipts to allocate again is not deleted');
  // Approved again: the receipt goes back on it.
  await s.billing.approve(ctx, bill.billId);
  await s.drain();
  assert.deepEqual(await paidInLedger(db, bill.billId), ['open', 10_000]);
  // Finalised, paid more, re-drafted before that reaches billing: refused until it does.
  await s.billing.finalise(ctx, bill.billId);
  await s.drain();
  await s.ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-03-02', amountMinor: 5_000, order: 'this_bill_only' });
  const redrafted = await s.billing.redraft(ctx, bill.billId);
  assert.equal(redrafted.receiptsToReallocateMinor, 15_000);
  await s.drain();
  await assertLedgerInvariants(db.db, { billing: true });
});

eachDialect('a bill approved again is not deleted before the ledger has posted it and put its receipts back on it', async (db) => {
  const { s, bill } = await revertedWithReceipt(db);
  assert.deepEqual(await paidInLedger(db, bill.billId), ['reversed', 0], 'the revert released the receipt');
  // Approved again: until the ledger takes the approval, billing neither knows of receipts on it nor has any to allocate again.
  const again = await s.billing.approve(ctx, bill.billId);
  const e = await s.billing.deleteBill(ctx, bill.billId).then(() => null, (x: unknown) => x);
  assert.ok(e instanceof HttpError && e.status === 409, `refused with a 409, got ${String(e)}`);
  assert.match(e.message, /putting them back on it/, e.message);
  assert.equal((await s.billing.actionsFor((await s.billing.findBill(bill.billId))!)).delete.allowed, false, 'the page and API offer no Delete');
  assert.equal((await s.billing.findBill(bill.billId))!.status, 'approved');
  await s.drain();
  assert.deepEqual(await paidInLedger(db, bill.billId), ['open', 10_000], 'the receipt is back on the bill');
  await refusedAsReceipted(s.billing.deleteBill(ctx, again.billId));
  await assertLedgerInvariants(db.db, { billing: true });
});

eachDialect('an unreceipted bill approved again is deleted at once, before the other modules have taken the approval', async (db) => {
  const { s, bill: d } = await setupWithApprovedBill(db);
  await s.billing.revert(ctx, d.billId);
  await s.drain();
  await s.billing.approve(ctx, d.billId);
  assert.equal((await s.billing.deleteBill(ctx, d.billId)).status, 'deleted');
  await s.drain();
  await assertLedgerInvariants(db.db, { billing: true });
});

eachDialect('a bill approved again from the drafts page (bulk approve) is not deleted before the ledger has put its receipts back on it', async (db) => {
  const { s, bill } = await revertedWithReceipt(db);
  const m = createMassBilling({ db: db.db, clock: s.clock, relay: s.rt.relay }, s.billing);
  const [outcome] = await m.approveMany(ctx, [bill.billId]);
  assert.ok(outcome!.ok, JSON.stringify(outcome));
  const e = await s.billing.deleteBill(ctx, bill.billId).then(() => null, (x: unknown) => x);
  assert.ok(e instanceof HttpError && e.status === 409, `refused with a 409, got ${String(e)}`);
  assert.match(e.message, /putting them back on it/, e.message);
  await s.drain();
  assert.deepEqual(await paidInLedger(db, bill.billId), ['open', 10_000], 'the receipt is back on the bill');
  await refusedAsReceipted(s.billing.deleteBill(ctx, bill.billId));
  await assertLedgerInvariants(db.db, { billing: true });
});

for (const path of ['revert', 'finalise', 'finalise-redraft'] as const) {
  eachDialect(`a bill approved again, then (${path}) before the ledger takes the approval, keeps its receipts: not deletable, none lost`, async (db) => {
    const { s, bill } = await revertedWithReceipt(db);
    await s.billing.approve(ctx, bill.billId); // carries the receipt to put back; not delivered yet
    if (path === 'revert') {
      const r = await s.billing.revert(ctx, bill.billId);
      assert.equal(r.receiptsToReallocateMinor, 10_000, `${path}: the receipt is still to be put back`);
    } else {
      await s.billing.finalise(ctx, bill.billId);
      if (path === 'finalise-redraft') {
        const r = await s.billing.redraft(ctx, bill.billId);
        assert.equal(r.receiptsToReallocateMinor, 10_000, `${path}: the receipt is still to be put back`);
      }
    }
    const e = await s.billing.deleteBill(ctx, bill.billId).then(() => null, (x: unknown) => x);
    assert.ok(e instanceof HttpError && e.status === 409, `${path}: refused with a 409, got ${String(e)}`);
    assert.match(e.message, /Receipts (are allocated|were allocated)/, e.message);
    await s.drain();
    // Approved again where it went back to draft: the receipt is on the bill, none is left unallocated.
    if (path !== 'finalise') await s.billing.approve(ctx, bill.billId);
    await s.drain();
    assert.deepEqual(await paidInLedger(db, bill.billId), ['open', 10_000], `${path}: the receipt is on the bill`);
    await assertLedgerInvariants(db.db, { billing: true });
  });
}
