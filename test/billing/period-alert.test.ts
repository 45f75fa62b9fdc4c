/**
 * Seed 004: "the user may be alerted with a message when posting the Bills, and asked to
 * verify the Accounting Period". Billing keeps a copy of the ledger's periods
 * (`ledger.periods_changed`) and tells the clerk, on the drafts list and the bill page, which
 * drafts would post outside the current period or into a closed one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { periodNote } from '../../src/modules/billing/domain/lifecycle.ts';
import { ledgerPeriods } from '../../src/modules/billing/balances.ts';
import { createBillingCommands } from '../../src/modules/billing/index.ts';
import { createLedgerCommands } from '../../src/modules/ledger/index.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { eachDialect } from '../support/db.ts';
import { withApp } from '../support/app.ts';
import { ctx, firm, work } from './support.ts';

test('the period note: none in the current period; outside it; a closed month goes to the first open one', () => {
  const cases: [string, string, string | null, string[], string | null][] = [
    // [invoice date, today, current period as set, closed, note]
    ['2026-03-15', '2026-03-20', null, [], null],
    ['2026-02-28', '2026-03-02', null, [], 'Posts in 2026-02, outside the current accounting period 2026-03'],
    ['2026-02-28', '2026-03-02', '2026-02', [], null],
    ['2026-03-31', '2026-03-02', '2026-02', [], 'Posts in 2026-03, outside the current accounting period 2026-02'],
    ['2026-01-31', '2026-03-02', '2026-03', ['2026-01'], 'Period 2026-01 is closed: the books post this bill to 2026-02'],
    ['2026-01-31', '2026-03-02', '2026-03', ['2026-01', '2026-02'], 'Period 2026-01 is closed: the books post this bill to 2026-03'],
    ['2025-12-31', '2026-01-05', null, ['2025-12'], 'Period 2025-12 is closed: the books post this bill to 2026-01'],
  ];
  for (const [date, today, currentPeriod, closedPeriods, note] of cases) {
    assert.equal(periodNote(date, today, { currentPeriod, closedPeriods }), note, `${date} on ${today}, current ${currentPeriod}, closed ${closedPeriods.join(' ')}`);
  }
});

eachDialect('the drafts list and the bill page alert the clerk to a draft posting outside the current period, as the ledger\'s periods change', async (db) => {
  await withApp(db, async (t) => {
    const cmds = createMattersCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const billing = createBillingCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const ledger = createLedgerCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const f = await firm(cmds);
    await work(cmds, f.matter.id, f);
    await t.runtime.relay.drain();
    // Today is 2 March (the app's clock); the draft is dated 28 February.
    const d = await billing.createDraft(ctx, { matterId: f.matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' });
    const clerk = await t.user('billing');
    const b = t.browser();
    await b.login(clerk.email);
    const pages = async () => ({ list: (await b.get('/billing/drafts')).text, bill: (await b.get(`/billing/bills/${d.billId}`)).text });

    let p = await pages();
    assert.match(p.list, /id="period-alert" role="status" data-count="1"/);
    assert.match(p.list, /data-col="period-note" title="Posts in 2026-02, outside the current accounting period 2026-03"/);
    assert.match(p.bill, /id="period-alert" role="status">Posts in 2026-02, outside the current accounting period 2026-03: check the invoice date/);

    // The bookkeeper keeps February current: no alert.
    await ledger.setCurrentPeriod(ctx, '2026-02');
    await t.runtime.relay.drain();
    assert.deepEqual(await ledgerPeriods(db.db), { currentPeriod: '2026-02', closedPeriods: [] });
    p = await pages();
    assert.doesNotMatch(p.list, /period-alert|period-note/);
    assert.doesNotMatch(p.bill, /period-alert/);

    // March current, February closed: the draft would go to March.
    await ledger.setCurrentPeriod(ctx, '2026-03');
    await ledger.setPeriod(ctx, { period: '2026-02', status: 'closed' });
    await t.runtime.relay.drain();
    assert.deepEqual(await ledgerPeriods(db.db), { currentPeriod: '2026-03', closedPeriods: ['2026-02'] });
    p = await pages();
    assert.match(p.list, /title="Period 2026-02 is closed: the books post this bill to 2026-03"/);
    assert.match(p.bill, /Period 2026-02 is closed: the books post this bill to 2026-03: check the invoice date/);
    // Approving from the list asks first and says so (seed 004: the clerk verifies the period before posting).
    const listing = /name="listing" value="([^"]+)"/.exec(p.list)![1]!;
    const asked = await b.post('/billing/drafts/act', { every: 'yes', listing, action: 'approve' });
    assert.equal(asked.status, 200);
    assert.match(asked.text, /id="approve-period" role="alert">1 of them post outside the current accounting period \(2026-03\) or into a closed one/);
    assert.match(asked.text, /data-col="period-note">Period 2026-02 is closed: the books post this bill to 2026-03<\/span>/);
    assert.equal((await db.db.selectFrom('billing_bill').select('status').where('id', '=', d.billId).executeTakeFirstOrThrow()).status, 'draft', 'not approved before confirming');

    // Approved, it posts where the note said.
    await billing.approve(ctx, d.billId);
    await t.runtime.relay.drain();
    const j = await db.db.selectFrom('ledger_journal').select(['period', 'note']).where('bill_id', '=', d.billId).executeTakeFirstOrThrow();
    assert.equal(j.period, '2026-03');
    assert.match(String(j.note), /closed period 2026-02: posted to 2026-03/);
    assert.doesNotMatch((await b.get(`/billing/bills/${d.billId}`)).text, /period-alert/, 'an approved bill has no alert');
  });
});
