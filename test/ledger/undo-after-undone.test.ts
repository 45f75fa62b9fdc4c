/**
 * Undoing a bill (re-draft; revert and delete take the same path) after a piece of it was already undone on a later
 * day (a write-off reversed, an allocation released by hand or by its receipt's reversal), on
 * both databases (review 58, F2): the books never show the bill below zero as at any day, and
 * the bill approved again is shown once at every date.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { withApp } from '../support/app.ts';
import { createLedgerCommands } from '../../src/modules/ledger/index.ts';
import { ctx } from '../billing/support.ts';
import { approvedBill, assertBooksAsAt, assertLedgerInvariants } from './support.ts';

const days = (from: string, to: string): string[] => {
  const out: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += 86_400_000) out.push(new Date(t).toISOString().slice(0, 10));
  return out;
};

eachDialect('a bill undone after its write-off was reversed, or after an allocation on it was released, is never below zero as at any day', async (db) => {
  await withApp(db, async (t) => {
    const { f, bill, billing } = await approvedBill({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const ledger = createLedgerCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    t.clock.set('2026-03-20T09:00:00Z');
    const total = bill.totals.totalMinor;
    // Paid all but 6.30 on the 5th.
    await ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-03-05', amountMinor: total - 630, order: 'this_bill_only' });
    // 6.30 more on account on the 6th, put on the bill on the 7th and released by hand on the 9th.
    const { receipt } = await ledger.recordReceipt(ctx, { clientId: f.client.id, receivedOn: '2026-03-06', amountMinor: 630, order: 'on_account' });
    await ledger.allocateCredit(ctx, { receiptId: receipt.id, billId: bill.billId, on: '2026-03-07' });
    const [a] = await db.db.selectFrom('ledger_allocation').select('id').where('receipt_id', '=', receipt.id).execute();
    await ledger.releaseAllocation(ctx, String(a!.id), '2026-03-09');
    // The 6.30 written off on the 10th and the write-off reversed on the 12th.
    await ledger.setWriteOffLimit(ctx, 1_000);
    await ledger.writeOff(ctx, { billId: bill.billId, on: '2026-03-10', reason: 'Small balance' });
    const [w] = await db.db.selectFrom('ledger_write_off').select('id').where('bill_id', '=', bill.billId).execute();
    await ledger.reverseWriteOff(ctx, { writeOffId: String(w!.id), on: '2026-03-12' });
    await t.runtime.relay.drain();
    await assertBooksAsAt(db.db, days('2026-02-27', '2026-03-20'));

    // Re-drafted (a bill paid in part is re-drafted, not reverted): before, the bill's posting was undone from its own date while the write-off (10th-12th) and the
    // allocation (7th-9th) stayed: the bill showed -6.30 between them.
    await billing.finalise(ctx, bill.billId);
    await billing.redraft(ctx, bill.billId);
    await t.runtime.relay.drain();
    await assertBooksAsAt(db.db, days('2026-02-27', '2026-03-20'));
    await assertLedgerInvariants(db.db, { billing: true });
    const bj = await db.db.selectFrom('ledger_journal as r').innerJoin('ledger_journal_line as l', 'l.journal_id', 'r.id').select('l.date').distinct()
      .where('r.bill_id', '=', bill.billId).where('r.prefix', '=', 'BJ').where('r.reverses_journal_id', 'is not', null).execute();
    assert.deepEqual(bj.map((x) => x.date), ['2026-03-12'], 'the posting undone on the day the last undone piece was');

    // Approved again (its receipt allocated again): shown once at every date (from the 12th, when the old posting
    // stops), then re-drafted again.
    await billing.approve(ctx, bill.billId);
    await t.runtime.relay.drain();
    await assertBooksAsAt(db.db, days('2026-02-27', '2026-03-20'));
    await assertLedgerInvariants(db.db, { billing: true });
    await billing.finalise(ctx, bill.billId);
    await billing.redraft(ctx, bill.billId);
    await t.runtime.relay.drain();
    await assertBooksAsAt(db.db, days('2026-02-27', '2026-03-20'));
    await assertLedgerInvariants(db.db, { billing: true });
  });
});
