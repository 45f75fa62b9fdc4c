/**
 * Write-offs and periods as a bookkeeper expects them, on both databases (review 53): a small
 * balance is not written off to bad debts while its client holds unallocated credit in its
 * currency (the bulk run leaves it and says so; the bill's page shows the credit); a write-off
 * dated ahead is said on the bill's page; "write off all of it" with nothing left is said as
 * such; a month not yet begun is not closed, and closing a closed month changes nothing.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { Browser, startApp, withApp } from '../support/app.ts';
import { createBillingCommands } from '../../src/modules/billing/index.ts';
import { createLedgerCommands } from '../../src/modules/ledger/index.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { approvedBill, assertLedgerInvariants, refused } from './support.ts';
import { ctx } from '../billing/support.ts';

eachDialect('write-offs: not while the client holds credit (left and said), dated ahead said, nothing outstanding said as such; periods: no future month closed, a closed one closed again changes nothing', async (db) => {
  await withApp(db, async (t) => {
    const { f, bill } = await approvedBill({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const ledger = createLedgerCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    t.clock.set('2026-03-10T09:00:00Z');
    // Paid all but 20.00; then 50.00 more arrives on account (unallocated credit of the same client).
    await ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-03-05', amountMinor: bill.totals.totalMinor - 2_000, order: 'this_bill_only' });
    await ledger.recordReceipt(ctx, { clientId: f.client.id, receivedOn: '2026-03-06', amountMinor: 5_000, order: 'on_account' });
    await t.runtime.relay.drain();
    const outstanding = async () => Number((await db.db.selectFrom('ledger_bill').select(['total_minor', 'paid_minor', 'written_off_minor']).where('id', '=', bill.billId).executeTakeFirstOrThrow().then((b) => Number(b.total_minor) - Number(b.paid_minor) - Number(b.written_off_minor))));
    assert.equal(await outstanding(), 2_000);

    // The bulk run leaves it (the client's own 50.00 would pay it), and says so on the page it leads to.
    const r = await ledger.writeOffSmallBalances(ctx, { maxMinor: 5_000, on: '2026-03-10' });
    assert.deepEqual([r.written.length, r.heldCredit.map((h) => [h.bill.id, h.creditMinor])], [0, [[bill.billId, 5_000]]]);
    assert.equal(await outstanding(), 2_000, 'nothing written off');
    await t.user('admin');
    const admin = t.browser();
    await admin.login('admin@firm.test');
    await admin.get('/ledger/periods');
    const run = await admin.post('/ledger/write-offs', { max: '50.00', on: '2026-03-10', reason: 'Small balances' });
    assert.equal(run.status, 303);
    const report = await admin.get(run.location!);
    assert.match(report.text, /data-notice>0 small balances written off\./);
    assert.match(report.text, new RegExp(`data-notice>Left alone: bill ${bill.number!.replaceAll('.', '\\.')} owes \\$20\\.00, and its client holds \\$50\\.00 of unallocated credit`));
    // The bill's page shows the credit beside "Write off the balance".
    const page = await admin.get(`/ledger/bills/${bill.billId}`);
    assert.match(page.text, /data-client-credit="5000">The client holds \$50\.00 of unallocated credit in USD/);

    // The bookkeeper may still write it off by hand; dated ahead (as a receipt may be), the bill's page says so once (review 53, L10).
    const ahead = await admin.post(`/ledger/bills/${bill.billId}/write-off`, { on: '2026-03-11', reason: 'Small balance' });
    assert.equal(ahead.status, 303);
    assert.match((await admin.get(ahead.location!)).text, /data-notice>Written off with the date 2026-03-11, after today: reports as at an earlier date do not count it/);
    // Said at the address the post led to (again on a reload of it, as every page's message is), never on the page itself.
    assert.match(ahead.location!, /\?done=[\w-]{16}$/);
    assert.match((await admin.get(ahead.location!)).text, /data-notice>Written off with the date 2026-03-11/, 'a reload says it again');
    assert.doesNotMatch((await admin.get(ahead.location!.replace(/\?.*$/, ''))).text, /data-notice>/, 'the page visited again says nothing');
    // Another server process on the same database (behind one address, review 60 F8) shows it too, to the same session.
    const second = await startApp(db);
    try {
      const elsewhere = new Browser(second.app);
      for (const [k, v] of admin.cookies) elsewhere.cookies.set(k, v);
      assert.match((await elsewhere.get(ahead.location!)).text, /data-notice>Written off with the date 2026-03-11/);
    } finally {
      await second.close();
    }
    assert.equal(await outstanding(), 0);
    const nothing = await refused(ledger.writeOff(ctx, { billId: bill.billId, on: '2026-03-11' }), 409);
    assert.match(nothing.message, new RegExp(`^Nothing is outstanding on bill ${bill.number!.replaceAll('.', '\\.')}`));

    // The write-off taken back on its own (review 53, M1: only reverting the whole bill undid it): the bill owes it again.
    const [w] = await db.db.selectFrom('ledger_write_off').select(['id', 'journal_id']).where('bill_id', '=', bill.billId).execute();
    // Dated ahead of today, its reverse form offers its own date, not today's, which would be refused (review 58 F5).
    assert.match((await admin.get(`/ledger/bills/${bill.billId}`)).text, new RegExp(`data-reverse-write-off="${w!.id}">[^]*?name="on" value="2026-03-11"`));
    const early = await admin.post(`/ledger/write-offs/${w!.id}/reverse`, { on: '2026-03-10', reason: 'Paid after all' });
    assert.equal(early.status, 422, 'not before it was written off');
    assert.match(early.text, /must be on or after the day it was written off \(2026-03-11\)/);
    const back = await admin.post(`/ledger/write-offs/${w!.id}/reverse`, { on: '2026-03-11', reason: 'Paid after all' });
    assert.equal(back.status, 303);
    const billPage = await admin.get(back.location!);
    assert.match(billPage.text, /data-notice>The write-off of \$20\.00 \(2026-03-11\) was reversed: the bill owes it again\./);
    assert.match(billPage.text, new RegExp(`data-write-off="${w!.id}"[^]*?data-reversed>reversed by <a href="/ledger/journals/[^"]+">WJ`));
    assert.equal(await outstanding(), 2_000);
    // Its journals list every journal with a line on the bill: the receipt's (RJ) too (review 53, L3).
    const receiptJournals = await db.db.selectFrom('ledger_journal as j').innerJoin('ledger_journal_line as l', 'l.journal_id', 'j.id').select('j.number').distinct()
      .where('l.bill_id', '=', bill.billId).where('j.prefix', '=', 'RJ').execute();
    assert.ok(receiptJournals.length > 0);
    for (const j of receiptJournals) assert.match(billPage.text, new RegExp(`>${j.number}<`), `${j.number} listed`);
    const reversal = await db.db.selectFrom('ledger_journal').select(['id', 'prefix']).where('reverses_journal_id', '=', w!.journal_id).executeTakeFirstOrThrow();
    assert.equal(reversal.prefix, 'WJ');
    await assertLedgerInvariants(db.db);
    assert.equal((await admin.post(`/ledger/write-offs/${w!.id}/reverse`, { on: '2026-03-11' })).status, 409, 'once only');
    assert.equal((await db.db.selectFrom('audit_log').select('id').where('action', '=', 'ledger.write_off_reversed').execute()).length, 1);

    // Periods: April has not begun (today is 10 March); February closed twice is one change, one audit row.
    const future = await refused(ledger.setPeriod(ctx, { period: '2026-04', status: 'closed' }), 409);
    assert.match(future.message, /2026-04 has not begun/);
    await ledger.setPeriod(ctx, { period: '2026-01', status: 'closed' });
    await ledger.setPeriod(ctx, { period: '2026-01', status: 'closed' });
    const audits = await db.db.selectFrom('audit_log').select('id').where('action', '=', 'ledger.period_closed').where('entity_id', '=', '2026-01').execute();
    assert.equal(audits.length, 1);
  });
});

eachDialect('write off small balances leaves a bill whose discount expired undecided, and one whose write-off was reversed, naming each (review 58 F8, F10)', async (db) => {
  await withApp(db, async (t) => {
    const { f, bill } = await approvedBill({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const ledger = createLedgerCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    t.clock.set('2026-03-10T09:00:00Z');
    await ledger.setWriteOffLimit(ctx, 5_000);
    // Paid all but 20.00; written off, and the write-off reversed on purpose.
    await ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-03-05', amountMinor: bill.totals.totalMinor - 2_000, order: 'this_bill_only' });
    await ledger.writeOff(ctx, { billId: bill.billId, on: '2026-03-06' });
    const [w] = await db.db.selectFrom('ledger_write_off').select('id').where('bill_id', '=', bill.billId).execute();
    await ledger.reverseWriteOff(ctx, { writeOffId: String(w!.id), on: '2026-03-07', reason: 'Client will pay' });
    // A second matter's bill with a 10% discount valid until 8 March, paid on time all but 5.00: undecided after the 8th.
    const matters = createMattersCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const billing = createBillingCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const other = await matters.openMatter(ctx, { clientId: f.client.id, name: 'Second', responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01' });
    await matters.recordTimeEntry(ctx, { matterId: other.id, timekeeperId: f.partner.id, workDate: '2026-03-01', rawMinutes: 60, narrative: 'Advice' });
    await t.runtime.relay.drain();
    const d = await billing.approve(ctx, (await billing.createDraft(ctx, { matterId: other.id, invoiceDate: '2026-03-02', upTo: '2026-03-02', request: { discount: { kind: 'percentage', percentBasisPoints: 1_000, amountMinor: 0, validUntil: '2026-03-08' } } })).billId);
    await t.runtime.relay.drain();
    await ledger.recordReceipt(ctx, { billId: d.billId, receivedOn: '2026-03-04', amountMinor: d.totals.totalMinor - 500, order: 'this_bill_only' });
    await t.runtime.relay.drain();

    const r = await ledger.writeOffSmallBalances(ctx, { maxMinor: 5_000, on: '2026-03-10' });
    assert.deepEqual(r.written.map((b) => b.number), [], 'nothing written off');
    assert.deepEqual(r.leftAlone.map((l) => [l.bill.number, l.why, l.on]).sort(), [[bill.number, 'write_off_reversed', '2026-03-06'], [d.number, 'discount_expired', '2026-03-08']].sort());
    assert.equal((await db.db.selectFrom('ledger_write_off').select('id').execute()).length, 1);
    // Said on the page the form leads to.
    await t.user('admin');
    const admin = t.browser();
    await admin.login('admin@firm.test');
    await admin.get('/ledger/periods');
    const run = await admin.post('/ledger/write-offs', { max: '50.00', on: '2026-03-10' });
    const page = (await admin.get(run.location!)).text;
    assert.match(page, new RegExp(`data-notice>Left alone: bill ${d.number!.replaceAll('.', '\\.')} owes \\$5\\.00, but its discount expired on 2026-03-08 undecided`));
    assert.match(page, new RegExp(`data-notice>Left alone: bill ${bill.number!.replaceAll('.', '\\.')} owes \\$20\\.00; its write-off of 2026-03-06 was reversed`));
    await assertLedgerInvariants(db.db);
    // Re-drafted and approved again (a new posting): that reversal was of the old posting and no longer holds it back (review 59 F1).
    t.clock.advanceMs(60_000);
    await billing.finalise(ctx, bill.billId);
    await billing.redraft(ctx, bill.billId);
    await t.runtime.relay.drain();
    await billing.approve(ctx, bill.billId);
    await t.runtime.relay.drain();
    const again = await ledger.writeOffSmallBalances(ctx, { maxMinor: 5_000, on: '2026-03-10', confirmOutsidePeriod: true });
    assert.deepEqual(again.written.map((b) => b.number), [bill.number]);
    assert.deepEqual(again.leftAlone.map((l) => l.bill.number), [d.number]);
    await assertLedgerInvariants(db.db);
  });
});
