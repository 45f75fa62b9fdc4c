/**
 * Seed 004: "the user may be alerted with a message when posting the Bills, and asked to
 * verify the Accounting Period". Billing keeps a copy of the ledger's periods
 * (`ledger.periods_changed`) and tells the clerk, on the drafts list and the bill page, which
 * drafts would post outside the current period or into a closed one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { approvalPeriodNote, periodNote, periodRefusal, undoPeriodRefusal } from '../../src/modules/billing/domain/lifecycle.ts';
import { ledgerPeriods } from '../../src/modules/billing/balances.ts';
import { createBillingCommands, createMassBilling } from '../../src/modules/billing/index.ts';
import { createLedgerCommands } from '../../src/modules/ledger/index.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { eachDialect } from '../support/db.ts';
import { unescapeHtml, withApp } from '../support/app.ts';
import type { TestApp } from '../support/app.ts';
import { ctx, firm, refused, work } from './support.ts';
import { followed, ok, postMany } from './web-support.ts';

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
    assert.match(ok(await b.get('/ledger/periods')), /Billing asks the clerk to check a bill dated outside the current period before approving it/);
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

test('the firm refusing postings outside the current period: undoing a posted bill is refused where the books would post the undoing outside it (a closed month: the first open one after it)', () => {
  const cases: [string, string, string | null, string[], 'warn' | 'refuse' | undefined, string | null][] = [
    // [invoice date, today, current period as set, closed, policy, refusal]
    ['2026-03-10', '2026-03-20', null, [], 'refuse', null],
    ['2026-02-28', '2026-03-02', null, [], 'refuse', 'Undoing the bill would post on its invoice date 2026-02-28, in 2026-02, not in the current accounting period 2026-03, and the firm refuses postings outside the current period'],
    // February closed: the books undo it on 1 March, the current period: allowed.
    ['2026-02-28', '2026-03-02', '2026-03', ['2026-02'], 'refuse', null],
    // January and February closed, current April: the undoing lands in March, not April.
    ['2026-01-31', '2026-04-02', '2026-04', ['2026-01', '2026-02'], 'refuse', 'Undoing the bill would post in 2026-03 (its invoice date 2026-01-31 is in closed 2026-01), not in the current accounting period 2026-04, and the firm refuses postings outside the current period'],
    ['2026-02-28', '2026-03-02', null, [], 'warn', null],
    ['2026-02-28', '2026-03-02', null, [], undefined, null],
  ];
  for (const [date, today, currentPeriod, closedPeriods, policy, refusal] of cases) {
    assert.equal(undoPeriodRefusal(date, today, { currentPeriod, closedPeriods }, policy), refusal, `${date} on ${today}, current ${currentPeriod}, closed ${closedPeriods.join(' ')}, ${policy}`);
  }
});

/** A firm with a matter with work, whose rule refuses postings outside the current period; the commands over the app's database. */
async function refusingFirm(t: TestApp) {
  const deps = { db: t.db.db, clock: t.clock, relay: t.runtime.relay };
  const cmds = createMattersCommands(deps);
  const billing = createBillingCommands(deps);
  const f = await firm(cmds);
  await work(cmds, f.matter.id, f);
  await cmds.updateFirmSettings(ctx, { postingOutsideCurrentPeriod: 'refuse' });
  await t.runtime.relay.drain();
  return { cmds, billing, ledger: createLedgerCommands(deps), mass: createMassBilling(deps, billing), f };
}

test('the firm refusing postings outside the current period: approving a draft dated in another period is refused; warn only notes it', () => {
  const cases: [string, string, string | null, string[], 'warn' | 'refuse' | undefined, boolean][] = [
    // [invoice date, today, current period as set, closed, policy, refused]
    ['2026-03-15', '2026-03-20', null, [], 'refuse', false],
    ['2026-02-28', '2026-03-02', null, [], 'refuse', true],
    ['2026-02-28', '2026-03-02', '2026-02', [], 'refuse', false],
    ['2026-03-31', '2026-03-02', '2026-02', [], 'refuse', true],
    ['2026-01-31', '2026-03-02', '2026-03', ['2026-01'], 'refuse', true],
    // No current period set and the month of today closed (closed ahead of time): refused too.
    ['2026-04-02', '2026-04-02', null, ['2026-04'], 'refuse', true],
    ['2026-04-02', '2026-04-02', '2026-04', ['2026-04'], 'refuse', true],
    ['2026-04-01', '2026-03-31', null, [], 'refuse', true],
    ['2026-02-28', '2026-03-02', null, [], 'warn', false],
    ['2026-01-31', '2026-03-02', '2026-03', ['2026-01'], 'warn', false],
    // Billing has not heard the firm's settings yet: the default (warn).
    ['2026-02-28', '2026-03-02', null, [], undefined, false],
  ];
  for (const [date, today, currentPeriod, closedPeriods, policy, isRefused] of cases) {
    const periods = { currentPeriod, closedPeriods };
    const why = `${date} on ${today}, current ${currentPeriod}, closed ${closedPeriods.join(' ')}, ${policy}`;
    const r = periodRefusal(date, today, periods, policy);
    assert.equal(r !== null, isRefused, why);
    const note = approvalPeriodNote(date, today, periods, policy);
    if (isRefused) {
      const current = currentPeriod ?? today.slice(0, 7);
      const month = date.slice(0, 7);
      if (closedPeriods.includes(month)) {
        assert.equal(r, `Its invoice date ${date} is in ${month}, a closed accounting period, and the firm refuses postings outside the current period: change the invoice date to approve it`, why);
        assert.equal(note, `Not approved while dated in ${month}: the period is closed and the firm refuses postings outside the current accounting period`, why);
      } else {
        assert.equal(r, `Its invoice date ${date} is in ${month}, not the current accounting period ${current}, and the firm refuses postings outside the current period: change the invoice date to approve it`, why);
        assert.equal(note, `Not approved while dated in ${month}: the firm refuses postings outside the current accounting period ${current}`, why);
      }
    } else {
      // Not refused: the note is the warning one (or none in the current period).
      assert.equal(note, policy === 'refuse' ? null : periodNote(date, today, periods), why);
    }
  }
});

eachDialect('the firm refusing postings outside the current period: the draft dated in February is refused by Approve, bulk approve and the pages say so; dated in March it is approved', async (db) => {
  await withApp(db, async (t) => {
    const { billing, mass, f } = await refusingFirm(t);
    // Today is 2 March (the app's clock); the draft is dated 28 February.
    const d = await billing.createDraft(ctx, { matterId: f.matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' });
    const reason = 'Its invoice date 2026-02-28 is in 2026-02, not the current accounting period 2026-03, and the firm refuses postings outside the current period: change the invoice date to approve it';
    const e = await refused(billing.approve(ctx, d.billId), 409);
    assert.equal(e.message, reason);
    assert.deepEqual(await mass.approveMany(ctx, [d.billId]), [{ billId: d.billId, ok: false, reason }]);
    const statusOf = async () => (await db.db.selectFrom('billing_bill').select(['status', 'number']).where('id', '=', d.billId).executeTakeFirstOrThrow());
    assert.deepEqual(await statusOf(), { status: 'draft', number: null }, 'not approved, not numbered');

    const clerk = await t.user('billing');
    const b = t.browser();
    await b.login(clerk.email);
    const list = (await b.get('/billing/drafts')).text;
    assert.match(list, /1 of the drafts shown is dated outside the current accounting period, and the firm refuses postings outside it \(marked below\): change its invoice date \(Modify\) to approve it\./);
    assert.match(list, /data-col="period-note" title="Not approved while dated in 2026-02: the firm refuses postings outside the current accounting period 2026-03"/);
    // The ledger's periods page says what billing does under the rule.
    assert.match(ok(await b.get('/ledger/periods')), /Billing refuses to approve a bill dated outside the current period, and to revert, re-draft or void a bill whose undoing would post outside it/);
    const bill = (await b.get(`/billing/bills/${d.billId}`)).text;
    assert.match(bill, /Not approved while dated in 2026-02: the firm refuses postings outside the current accounting period 2026-03: change the invoice date to approve it\./);
    assert.doesNotMatch(bill, /data-action="approve"/, 'no Approve button');
    assert.doesNotMatch(bill, /data-refused="Approve"/, 'said once, by the period alert');
    // Approve from the list: the confirmation says it will be refused; confirmed, it is refused and named.
    const listing = /name="listing" value="([^"]+)"/.exec(list)![1]!;
    const asked = await b.post('/billing/drafts/act', { every: 'yes', listing, action: 'approve' });
    assert.equal(asked.status, 200);
    assert.match(asked.text, /id="approve-period" role="alert">1 of them is dated outside the current accounting period, and the firm refuses postings outside it \(marked below\): it is not approved until its invoice date changes\./);
    assert.match(asked.text, /id="approve-none" role="alert">None of them can be approved as it is\./);
    assert.doesNotMatch(asked.text, /data-action="confirm-approve"/, 'no button to approve what will be refused');
    // Posted all the same (a page kept from before): refused and named.
    const done = ok(await followed(b, b.post('/billing/drafts/act', { every: 'yes', listing, action: 'approve', confirmed: 'yes' })));
    assert.match(done, /firm refuses postings outside the current period: change the invoice date to approve it/);
    assert.deepEqual(await statusOf(), { status: 'draft', number: null });
    const audits = await db.db.selectFrom('audit_log').select('action').where('entity_id', '=', d.billId).where('action', '=', 'billing.bill_approved').execute();
    assert.equal(audits.length, 0, 'nothing approved, nothing audited');

    // The composer says so where the date is changed, and stops saying it once the date is in March (its live preview too).
    assert.match(ok(await b.get(`/billing/matters/${f.matter.id}/compose?bill=${d.billId}`)), /id="composer-period" role="status">Invoice date 2026-02-28: Not approved while dated in 2026-02: the firm refuses postings outside the current accounting period 2026-03\./);
    const live = ok(await postMany(b, `/billing/matters/${f.matter.id}/compose/preview`, [['billId', d.billId], ['invoiceDate', '2026-03-02'], ['upTo', '2026-02-28']]));
    assert.doesNotMatch(live, /composer-period/);
    // Dated in March, the same draft is approved.
    await billing.updateDraft(ctx, d.billId, { invoiceDate: '2026-03-02' });
    assert.doesNotMatch((await b.get(`/billing/bills/${d.billId}`)).text, /period-alert/);
    const approved = await billing.approve(ctx, d.billId);
    assert.equal(approved.status, 'approved');
    await t.runtime.relay.drain();
    assert.equal((await db.db.selectFrom('ledger_journal').select('period').where('bill_id', '=', d.billId).executeTakeFirstOrThrow()).period, '2026-03');
  });
});

eachDialect('the firm refusing postings outside the current period: the bookkeeper keeping February current lets the February draft be approved; with March current it is not reverted or voided (its undoing would post in February), with February current again it is', async (db) => {
  await withApp(db, async (t) => {
    const { billing, ledger, mass, f } = await refusingFirm(t);
    await ledger.setCurrentPeriod(ctx, '2026-02');
    await t.runtime.relay.drain();
    // Mass billing's confirmation says so before drafts dated in March are made; for February it says nothing.
    const clerk = await t.user('billing');
    const b = t.browser();
    await b.login(clerk.email);
    const confirmation = async (date: string) => {
      const runId = /name="runId" value="([^"]+)"/.exec(ok(await b.get(`/billing/mass?invoiceDate=${date}&upTo=2026-02-28`)))![1]!;
      return ok(await postMany(b, '/billing/mass/runs', [['invoiceDate', date], ['upTo', '2026-02-28'], ['runId', runId], ['scope', 'all']]));
    };
    assert.match(await confirmation('2026-03-02'), /id="confirm-period" role="alert">These drafts could not be approved as dated: their invoice date 2026-03-02 is in 2026-03, not the current accounting period 2026-02, and the firm refuses postings outside the current period/);
    assert.doesNotMatch(await confirmation('2026-02-28'), /confirm-period/);
    // A draft changed by hand keeps its own date: dated in March, it is named though the run is dated in February.
    const hand = await billing.createDraft(ctx, { matterId: f.matter.id, invoiceDate: '2026-03-02', upTo: '2026-02-28' });
    const handRun = /name="runId" value="([^"]+)"/.exec(ok(await b.get(`/billing/mass?invoiceDate=2026-02-28&upTo=2026-02-28&handDraft=${hand.billId}`)))![1]!;
    const withHand = ok(await postMany(b, '/billing/mass/runs', [['invoiceDate', '2026-02-28'], ['upTo', '2026-02-28'], ['runId', handRun], ['scope', 'all'], ['handDraft', hand.billId]]));
    assert.match(withHand, /id="confirm-hand-period" role="alert">A draft changed by hand could not be approved as dated, the firm refusing postings outside the current accounting period: \S+ \(invoice date 2026-03-02\)\./);
    assert.doesNotMatch(withHand, /id="confirm-period"/);
    // The run dated in March too, but drafting nothing (the one matter has its draft): only the hand draft is named.
    const onlyHand = ok(await postMany(b, '/billing/mass/runs', [['invoiceDate', '2026-03-02'], ['upTo', '2026-02-28'], ['runId', handRun], ['scope', 'all'], ['handDraft', hand.billId]]));
    assert.match(onlyHand, /<h1>Bill 0 matter\(s\) and take in 1 draft\(s\) changed by hand\?<\/h1>/);
    assert.match(onlyHand, /id="confirm-hand-period"/);
    assert.doesNotMatch(onlyHand, /id="confirm-period"/, 'no drafts of the run\'s date to warn of');
    await billing.deleteDraft(ctx, hand.billId);
    assert.equal((await db.db.selectFrom('billing_batch').select('id').execute()).length, 0, 'nothing made before confirming');
    const d = await billing.createDraft(ctx, { matterId: f.matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' });
    const [outcome] = await mass.approveMany(ctx, [d.billId]);
    assert.equal(outcome!.ok, true, JSON.stringify(outcome));
    await t.runtime.relay.drain();
    assert.equal((await db.db.selectFrom('ledger_journal').select('period').where('bill_id', '=', d.billId).executeTakeFirstOrThrow()).period, '2026-02');

    // March made current: undoing the February bill (revert, void) would post in February: refused, and the pages say so.
    await ledger.setCurrentPeriod(ctx, '2026-03');
    await t.runtime.relay.drain();
    const undo = 'Undoing the bill would post on its invoice date 2026-02-28, in 2026-02, not in the current accounting period 2026-03, and the firm refuses postings outside the current period';
    assert.equal((await refused(billing.revert(ctx, d.billId), 409)).message, undo);
    assert.equal((await refused(billing.deleteBill(ctx, d.billId), 409)).message, undo);
    const page = ok(await b.get(`/billing/bills/${d.billId}`));
    assert.match(page, new RegExp(`<li data-refused="Revert to draft"><strong>Revert to draft:</strong> ${undo.replace(/[()]/g, '\\$&')}</li>`));
    assert.doesNotMatch(page, /data-action="revert"/);
    const asked = ok(await b.get(`/billing/production/revert?bill=${d.billId}`));
    assert.match(asked, /id="revert-period" role="alert">\s*<p>It is posted where undoing it would post outside the current accounting period, and the firm refuses postings outside it: it is not reverted until the bookkeeper makes that period current/);
    assert.match(asked, new RegExp(`<li data-kept="${d.billId}">`));
    assert.match(asked, /id="revert-none" role="alert">None of them can be reverted now\./);
    assert.doesNotMatch(asked, /data-action="confirm-revert"/);
    const posted = await b.post('/billing/production/revert', { bill: d.billId });
    assert.equal(posted.status, 409);
    assert.match(unescapeHtml(posted.text), /Reverted 0; not reverted: [^:]+: Undoing the bill would post on its invoice date 2026-02-28/);
    const journals = async () => (await db.db.selectFrom('ledger_journal').select('id').where('bill_id', '=', d.billId).execute()).length;
    await t.runtime.relay.drain();
    assert.equal(await journals(), 1, 'nothing un-posted');
    assert.equal((await db.db.selectFrom('billing_bill').select('status').where('id', '=', d.billId).executeTakeFirstOrThrow()).status, 'approved');

    // February current again: reverted (its reversal posted in February).
    await ledger.setCurrentPeriod(ctx, '2026-02');
    await t.runtime.relay.drain();
    assert.doesNotMatch(ok(await b.get(`/billing/production/revert?bill=${d.billId}`)), /revert-period/);
    assert.equal((await billing.revert(ctx, d.billId)).status, 'draft');
    await t.runtime.relay.drain();
    assert.deepEqual((await db.db.selectFrom('ledger_journal').select('period').where('bill_id', '=', d.billId).execute()).map((j) => j.period), ['2026-02', '2026-02']);
  });
});
