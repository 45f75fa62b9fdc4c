/**
 * The ledger's forms and report pages over HTTP on both databases: releasing (and allocating)
 * outside the current period with a date and a confirm box; refused forms keep what was typed
 * and show each error against its field; the periods form refuses an unknown action; the report
 * page offers a client filter only where the report takes one (the API and page refuse it,
 * naming `client`) and shows its form again for bad dates; the statement API is as at its
 * date; a receipt API error names only the real problem; a bill without a discount shows none.
 */
import assert from 'node:assert/strict';
import { createBillingCommands } from '../../src/modules/billing/index.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { toDecimalString } from '../../src/shared/money.ts';
import type { Page, TestApp } from '../support/app.ts';
import { unescapeHtml, withApp } from '../support/app.ts';
import { eachDialect } from '../support/db.ts';
import { assertLedgerInvariants, billedWithAdmin, ctx } from './support.ts';

/** The HTML of the one form posting to `action`. */
function form(p: Page, action: string): string {
  const m = new RegExp(`<form method="post" action="${action.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}"[\\s\\S]*?</form>`).exec(p.text);
  assert.ok(m, `a form posting to ${action}`);
  return m[0];
}


const count = async (t: TestApp, table: 'ledger_journal' | 'ledger_period' | 'audit_log') => (await t.db.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n;

eachDialect('release to credit and allocate outside the current period: a date and a confirm box, passed through', async (db) => {
  await withApp(db, async (t) => {
    const { bill, admin } = await billedWithAdmin(t);
    let p = await admin.post('/ledger/receipts', { bill: bill.billId, receivedOn: '2026-03-05', amount: '100.00', order: 'this_bill_first', discount: 'auto' });
    assert.equal(p.status, 303);
    const receiptUrl = p.location!;
    const receiptId = receiptUrl.split('?')[0]!.split('/').at(-1)!;
    const alloc = await db.db.selectFrom('ledger_allocation').select('id').where('receipt_id', '=', receiptId).executeTakeFirstOrThrow();
    p = await admin.get(receiptUrl);
    const release = form(p, `/ledger/allocations/${alloc.id}/release`);
    assert.match(release, /<input type="date" name="on" value="2026-03-02"/);
    assert.match(release, /<input type="checkbox" name="confirm"/);

    // April is not the current period (March): refused until confirmed; the date typed stays.
    const journals = await count(t, 'ledger_journal');
    p = await admin.post(`/ledger/allocations/${alloc.id}/release`, { on: '2026-04-02' });
    assert.equal(p.status, 409);
    assert.match(unescapeHtml(p.text), /2026-04-02 is in 2026-04, not the current accounting period 2026-03: confirm to post outside the current period/);
    assert.match(form(p, `/ledger/allocations/${alloc.id}/release`), /name="on" value="2026-04-02"/);
    assert.equal(await count(t, 'ledger_journal'), journals, 'a refusal changes nothing');
    p = await admin.post(`/ledger/allocations/${alloc.id}/release`, { on: '2026-04-02', confirm: 'on' });
    assert.equal(p.status, 303, p.text.slice(0, 500));
    const released = await db.db.selectFrom('ledger_allocation').select(['released_on', 'release_reason']).where('id', '=', alloc.id).executeTakeFirstOrThrow();
    assert.deepEqual(released, { released_on: '2026-04-02', release_reason: 'released' });
    const aj = await db.db.selectFrom('ledger_journal').select(['date', 'period']).where('prefix', '=', 'AJ').execute();
    assert.deepEqual(aj, [{ date: '2026-04-02', period: '2026-04' }]);
    assert.ok(await db.db.selectFrom('audit_log').select('id').where('action', '=', 'ledger.allocation_released').executeTakeFirst(), 'audited');

    // The credit allocated again in April: the allocate form's confirm box works too.
    p = await admin.get(receiptUrl);
    p = await admin.post(`/ledger/receipts/${receiptId}/allocate`, { bill: bill.billId, on: '2026-04-03' });
    assert.equal(p.status, 409);
    assert.match(form(p, `/ledger/receipts/${receiptId}/allocate`), /name="on" value="2026-04-03"/);
    p = await admin.post(`/ledger/receipts/${receiptId}/allocate`, { bill: bill.billId, on: '2026-04-03', confirm: 'on' });
    assert.equal(p.status, 303, p.text.slice(0, 500));
    assert.equal(Number((await db.db.selectFrom('ledger_receipt').select('unallocated_minor').where('id', '=', receiptId).executeTakeFirstOrThrow()).unallocated_minor), 0);
    await assertLedgerInvariants(db.db, { billing: true });
  });
}, { timeout: 180_000 });

eachDialect('refused ledger forms keep what was typed and show the error at its field; an unknown periods action is refused', async (db) => {
  await withApp(db, async (t) => {
    const { bill, admin } = await billedWithAdmin(t);
    const total = bill.totals.totalMinor;
    // Paid all but 30.00, within the 50.00 write-off limit.
    let p = await admin.post('/ledger/receipts', { bill: bill.billId, receivedOn: '2026-03-05', amount: toDecimalString(total - 3_000, 'USD'), order: 'this_bill_first' });
    assert.equal(p.status, 303);
    const receiptId = p.location!.split('?')[0]!.split('/').at(-1)!;

    // Reverse the receipt: a missing reason (422) and an April date (409) keep the fields.
    await admin.get(`/ledger/receipts/${receiptId}`);
    p = await admin.post(`/ledger/receipts/${receiptId}/reverse`, { reason: '', on: '2026-03-31' });
    assert.equal(p.status, 422);
    let f = form(p, `/ledger/receipts/${receiptId}/reverse`);
    assert.match(f, /data-error-for="reason"/);
    assert.match(f, /name="on" value="2026-03-31"/);
    p = await admin.post(`/ledger/receipts/${receiptId}/reverse`, { reason: 'Cheque dishonoured', on: '2026-04-05' });
    assert.equal(p.status, 409);
    f = form(p, `/ledger/receipts/${receiptId}/reverse`);
    assert.match(f, /name="reason" value="Cheque dishonoured"/);
    assert.match(f, /name="on" value="2026-04-05"/);

    // Write off on the bill: a bad amount (422) at its field; more than is outstanding (409) in money.
    await admin.get(`/ledger/bills/${bill.billId}`);
    p = await admin.post(`/ledger/bills/${bill.billId}/write-off`, { amount: '12.345', on: '2026-03-20', reason: 'Rounding' });
    assert.equal(p.status, 422);
    f = form(p, `/ledger/bills/${bill.billId}/write-off`);
    assert.match(f, /name="amount" value="12\.345" aria-invalid="true"/);
    assert.match(f, /data-error-for="amount"/);
    assert.match(f, /name="on" value="2026-03-20"/);
    assert.match(f, /name="reason" value="Rounding"/);
    p = await admin.post(`/ledger/bills/${bill.billId}/write-off`, { amount: '40.00', on: '2026-03-20', reason: 'Rounding', confirm: 'on' });
    assert.equal(p.status, 409);
    assert.match(unescapeHtml(p.text), /Only \$30\.00 is outstanding on bill 1\.1\.1/);
    f = form(p, `/ledger/bills/${bill.billId}/write-off`);
    assert.match(f, /name="amount" value="40\.00"/);
    assert.match(f, /name="confirm" checked/);
    assert.equal(await db.db.selectFrom('ledger_write_off').select('id').executeTakeFirst(), undefined);

    // Periods: a bad period, a bad limit, a bulk write-off over the limit.
    await admin.get('/ledger/periods');
    p = await admin.post('/ledger/periods', { period: '2026-3', action: 'close' });
    assert.equal(p.status, 422);
    assert.match(p.text, /name="period" value="2026-3" aria-invalid="true"/);
    assert.match(p.text, /data-error-for="period"/);
    p = await admin.post('/ledger/periods', { limit: 'abc', action: 'write-off-limit' });
    assert.equal(p.status, 422);
    assert.match(p.text, /name="limit" value="abc" aria-invalid="true"/);
    p = await admin.post('/ledger/write-offs', { max: '60.00', on: '2026-03-20', reason: 'Tidy up' });
    assert.equal(p.status, 409);
    assert.match(unescapeHtml(p.text), /Write-offs are limited to \$50\.00 per bill/);
    f = form(p, '/ledger/write-offs');
    assert.match(f, /name="max" value="60\.00"/);
    assert.match(f, /name="on" value="2026-03-20"/);
    assert.match(f, /name="reason" value="Tidy up"/);

    // An unknown action closes nothing (it used to close the period).
    const audits = await count(t, 'audit_log');
    for (const action of ['constructor', 'toString', '', 'closed']) {
      p = await admin.post('/ledger/periods', { period: '2026-02', action });
      assert.equal(p.status, 422, `action=${action}`);
      assert.match(p.text, /data-error-for="action"/);
    }
    assert.equal(await count(t, 'ledger_period'), 0);
    assert.equal(await count(t, 'audit_log'), audits, 'nothing audited: nothing changed');

    // GL detail with from after to: the report page again with its form and the field error.
    p = await admin.get('/ledger/reports/gl-detail?from=2026-04-01&to=2026-03-01');
    assert.equal(p.status, 422);
    assert.match(p.text, /<form method="get" action="\/ledger\/reports\/gl-detail" class="filters" id="params">/);
    assert.match(p.text, /name="from" value="2026-04-01" aria-invalid="true"/);
    assert.match(p.text, /data-error-for="from">must be on or before to/);
    // A report as at a date asks for that date only (no From it would ignore); a range report asks for both.
    for (const name of ['trial-balance', 'aged-debtors', 'debtor-statement', 'debtor-breakdown', 'wip-by-timekeeper']) {
      p = await admin.get(`/ledger/reports/${name}?to=2026-03-01`);
      assert.equal(p.status, 200, name);
      assert.doesNotMatch(p.text, /name="from"/, name);
      assert.match(p.text, /<label>As at <input type="date" name="to" value="2026-03-01"/, name);
    }
    p = await admin.get('/ledger/reports/fee-allocation?from=2026-01-01&to=2026-03-01');
    assert.match(p.text, /<label>From <input type="date" name="from" value="2026-01-01"/);
    assert.match(p.text, /<label>To <input type="date" name="to" value="2026-03-01"/);
    await assertLedgerInvariants(db.db, { billing: true });
  });
}, { timeout: 180_000 });

eachDialect('reports: a client filter only where it applies (page and API refuse it, naming client); the statement API is as at its date', async (db) => {
  await withApp(db, async (t) => {
    const { f, bill, admin } = await billedWithAdmin(t);
    let p = await admin.post('/ledger/receipts', { bill: bill.billId, receivedOn: '2026-03-05', amount: '200.00', order: 'this_bill_first' });
    assert.equal(p.status, 303);
    for (const name of ['trial-balance', 'gl-detail']) {
      p = await admin.get(`/ledger/reports/${name}`);
      assert.equal(p.status, 200);
      assert.doesNotMatch(p.text, /name="client"/, `${name} offers no client filter`);
      p = await admin.get(`/ledger/reports/${name}?client=${f.client.id}`);
      assert.equal(p.status, 422);
      assert.match(p.text, /id="params"/);
      assert.match(p.text, /data-error-for="client"/);
      p = await admin.get(`/ledger/reports/${name}?client=${f.client.id}&format=csv`);
      assert.equal(p.status, 422);
    }
    for (const name of ['aged-debtors', 'debtor-statement', 'debtor-breakdown', 'fee-allocation', 'wip-by-timekeeper']) {
      p = await admin.get(`/ledger/reports/${name}?client=${f.client.id}`);
      assert.equal(p.status, 200, name);
      assert.match(p.text, /<input type="text" id="report-client" name="client" value="[^"]*" list="client-options"/);
    }
    await t.user('billing');
    const auth = { authorization: `Bearer ${await t.token('billing@firm.test')}` };
    const api = t.browser();
    let r = await api.request('GET', `/api/v1/reports/trial-balance?to=2026-03-31&client=${f.client.id}`, { headers: auth });
    assert.equal(r.status, 422);
    assert.deepEqual(Object.keys(r.json().error.fields), ['client']);
    r = await api.request('GET', `/api/v1/reports/gl-detail?client=${f.client.id}`, { headers: auth });
    assert.equal(r.status, 422);
    assert.deepEqual(Object.keys(r.json().error.fields), ['client']);
    // A client id the books do not know is named on every report that takes a client, not answered as "nothing owed" (review 62 F4).
    for (const name of ['aged-debtors', 'debtor-statement', 'debtor-breakdown', 'fee-allocation', 'wip-by-timekeeper']) {
      for (const id of ['nope', '00000000-0000-0000-0000-000000000000']) {
        r = await api.request('GET', `/api/v1/reports/${name}?to=2026-03-31&client=${id}`, { headers: auth });
        assert.equal(r.status, 422, `${name} ${id}`);
        assert.deepEqual(r.json().error.fields, { client: "is no client of the firm's (no client has this id)" });
      }
    }
    // Named with whatever else is wrong, not after it is mended (review 63 F13).
    r = await api.request('GET', '/api/v1/reports/aged-debtors?to=2026-02-30&client=00000000-0000-0000-0000-000000000000', { headers: auth });
    assert.deepEqual(Object.keys(r.json().error.fields).sort(), ['client', 'to']);
    // The statement as at 1 March: the whole bill (the receipt came on 5 March).
    r = await api.request('GET', '/api/v1/reports/debtor-statement?to=2026-03-01', { headers: auth });
    assert.equal(r.status, 200);
    assert.equal(r.json().totals.outstanding, toDecimalString(bill.totals.totalMinor, 'USD'));
    r = await api.request('GET', '/api/v1/reports/debtor-breakdown?to=2026-03-01', { headers: auth });
    assert.deepEqual(r.json().rows.map((x: Record<string, string>) => [x.bill, x.received, x.outstanding]), [['1.1.1', '0.00', toDecimalString(bill.totals.totalMinor, 'USD')]]);

    // A receipt for an unknown bill names the bill, not a missing client too.
    r = await api.postJson('/api/v1/receipts', { billId: 'nope', receivedOn: '2026-03-05', amount: '1.00' }, { headers: auth });
    assert.equal(r.status, 422);
    assert.deepEqual(r.json().error.fields, { billId: 'is not a bill on the debtors ledger' });
    r = await api.postJson('/api/v1/receipts', { receivedOn: '2026-03-05', amount: '1.00' }, { headers: auth });
    assert.equal(r.status, 422);
    assert.deepEqual(Object.keys(r.json().error.fields), ['clientId'], 'with neither, the client is asked for');
  });
}, { timeout: 180_000 });

eachDialect('a bill page shows a discount row only when the bill has a discount', async (db) => {
  await withApp(db, async (t) => {
    const { f, bill, admin } = await billedWithAdmin(t);
    let p = await admin.get(`/ledger/bills/${bill.billId}`);
    assert.equal(p.status, 200);
    assert.doesNotMatch(p.text, /<th>Discount<\/th>/);
    assert.doesNotMatch(p.text, /-\$0\.00/);
    // A 10% discount on a second bill shows as a negative amount.
    const cmds = createMattersCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const billing = createBillingCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const m2 = await cmds.openMatter(ctx, { clientId: f.client.id, name: 'Second', responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01' });
    await cmds.recordTimeEntry(ctx, { matterId: m2.id, timekeeperId: f.partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice' });
    await t.runtime.relay.drain();
    const d = await billing.createDraft(ctx, { matterId: m2.id, invoiceDate: '2026-02-28', upTo: '2026-02-28', request: { discount: { kind: 'percentage', percentBasisPoints: 1_000, amountMinor: 0, validUntil: '2026-03-31' } } });
    const discounted = await billing.approve(ctx, d.billId);
    await t.runtime.relay.drain();
    p = await admin.get(`/ledger/bills/${discounted.billId}`);
    assert.match(p.text, /<tr><th>Discount<\/th><td class="num">-\$30\.00 \(if paid by 2026-03-31: pending\)<\/td><\/tr>/);
    const minorOf = (text: string, id: string) => Number(new RegExp(`id="${id}"[^>]*data-minor="(-?\\d+)"|data-minor="(-?\\d+)"[^>]*id="${id}"`).exec(text)?.slice(1).find((x) => x !== undefined) ?? NaN);
    const outstandingBefore = minorOf(p.text, 'outstanding');
    assert.doesNotMatch(p.text, /id="forecast"/, 'no forecast before the discount expires');

    // Seed 003: past its expiry, undecided, the debtor balance is forecast at the undiscounted amount; the books are unchanged.
    t.clock.set('2026-04-02T09:00:00Z');
    await admin.login('admin@firm.test'); // a month on: a new session
    await admin.get('/ledger');
    const row = await db.db.selectFrom('ledger_bill').select(['discount_debtors_minor']).where('id', '=', discounted.billId).executeTakeFirstOrThrow();
    const back = Number(row.discount_debtors_minor);
    assert.ok(back >= 3_000, 'the discount and its tax');
    p = await admin.get(`/ledger/bills/${discounted.billId}`);
    assert.equal(p.status, 200, p.text.slice(0, 3000));
    assert.deepEqual([minorOf(p.text, 'outstanding'), minorOf(p.text, 'forecast')], [outstandingBefore, outstandingBefore + back], p.text.slice(p.text.indexOf('Outstanding') - 200, p.text.indexOf('Outstanding') + 800));
    const clientPage = await admin.get(`/ledger/clients/${f.client.id}`);
    assert.equal(minorOf(clientPage.text, 'forecast'), minorOf(clientPage.text, 'outstanding') + back);
    await t.user('billing', { email: 'statements@firm.test' });
    const auth = { authorization: `Bearer ${await t.token('statements@firm.test')}` };
    const report = async (to: string) => {
      const r = await t.browser().request('GET', `/api/v1/reports/debtor-statement?to=${to}&client=${f.client.id}`, { headers: auth });
      assert.equal(r.status, 200, r.text.slice(0, 500));
      return r.json() as { columns: { key: string }[]; totals: Record<string, string>; notes: string[] };
    };
    const st = await report('2026-04-02');
    assert.ok(st.columns.some((c) => c.key === 'forecast'), JSON.stringify(st.columns));
    assert.equal(Math.round(Number(st.totals.forecast) * 100) - Math.round(Number(st.totals.outstanding) * 100), back);
    assert.match(st.notes.join(' '), /Forecast: .* of time-sensitive discounts expired by 2026-04-02 and not yet decided is counted back/);
    // As at a date before the expiry there is nothing to forecast.
    const earlier = await report('2026-03-15');
    assert.ok(!earlier.columns.some((c) => c.key === 'forecast'));

    // Reversed, the books owe what was forecast, and there is no forecast left.
    const reversed = await admin.post(`/ledger/bills/${discounted.billId}/discount`, { on: '2026-04-02', decision: 'reverse' });
    assert.ok([200, 303].includes(reversed.status), reversed.text.slice(0, 500));
    p = await admin.get(`/ledger/bills/${discounted.billId}`);
    assert.equal(minorOf(p.text, 'outstanding'), outstandingBefore + back);
    assert.doesNotMatch(p.text, /id="forecast"/);
  });
}, { timeout: 180_000 });

eachDialect('reverting or re-drafting a bill with a write-off says, before it is done, that the write-off is reversed and not made again', async (db) => {
  await withApp(db, async (t) => {
    const { bill, admin } = await billedWithAdmin(t);
    const confirm = async () => unescapeHtml((await admin.post(`/billing/bills/${bill.billId}/revert`, { version: String((await t.db.db.selectFrom('billing_bill').select('version').where('id', '=', bill.billId).executeTakeFirstOrThrow()).version) })).text);
    assert.doesNotMatch(await confirm(), /was written off on this bill/, 'nothing written off: nothing said');
    assert.equal((await admin.post('/ledger/receipts', { bill: bill.billId, receivedOn: '2026-03-02', amount: '299.50', order: 'this_bill_only', discount: 'auto' })).status, 303);
    await admin.get(`/ledger/bills/${bill.billId}`);
    const w = await admin.post(`/ledger/bills/${bill.billId}/write-off`, { amount: '0.50', reason: 'Bank charges' });
    assert.equal(w.status, 303, w.text.slice(0, 400));
    await t.runtime.relay.drain();
    assert.match(await confirm(), /id="confirm-written-off" role="alert">\$0\.50 was written off on this bill\. The write-off is reversed with its postings and is not made again when the bill is approved again/);
  });
}, { timeout: 180_000 });
