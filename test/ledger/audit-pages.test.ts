/**
 * Audit regressions on the ledger's pages, on both databases: the periods page's "Posted"
 * column adds up only the firm's currency (a bill in yen is not added to dollars as cents).
 * The reports API refuses a from date on a report as at a date.
 * A client's page totals the credit of all its receipts.
 */
import assert from 'node:assert/strict';
import { withApp } from '../support/app.ts';
import { eachDialect } from '../support/db.ts';
import { createLedgerCommands } from '../../src/modules/ledger/index.ts';
import { approvedYenBill, billedWithAdmin, ctx } from './support.ts';

eachDialect('audit: the periods page totals each period in the firm\'s currency only, never adding a yen bill\'s journal to dollars', async (db) => {
  await withApp(db, async (t) => {
    const { f, bill, admin } = await billedWithAdmin(t);
    const yen = await approvedYenBill(t, f, 4_500_000);
    assert.equal(yen.totalMinor, 4_500_000);
    const page = await admin.get('/ledger/periods');
    assert.equal(page.status, 200);
    const row = /<tr id="period-2026-02">([\s\S]*?)<\/tr>/.exec(page.text)?.[1] ?? '';
    const cells = [...row.matchAll(/<td class="num">([^<]*)<\/td>/g)].map((m) => m[1]);
    // Two billing journals in February (one in USD, one in JPY); posted: the USD bill's total only.
    const usd = bill.totals.totalMinor;
    assert.deepEqual(cells, ['2', `$${(usd / 100).toLocaleString('en-US', { minimumFractionDigits: 2 })}`], `before the fix: $${((usd + yen.totalMinor) / 100).toLocaleString('en-US', { minimumFractionDigits: 2 })} (the yen bill's ${yen.totalMinor} yen added as cents)`);
  });
});

eachDialect('audit: the reports API refuses from on a report as at a date (422 naming from), instead of answering as if it applied', async (db) => {
  await withApp(db, async (t) => {
    await billedWithAdmin(t);
    await t.user('billing');
    const auth = { authorization: `Bearer ${await t.token('billing@firm.test')}` };
    const api = t.browser();
    let r = await api.request('GET', '/api/v1/reports/aged-debtors?from=2026-03-01&to=2026-03-31', { headers: auth });
    assert.equal(r.status, 422, r.text.slice(0, 300));
    assert.deepEqual(Object.keys(r.json().error.fields), ['from']);
    r = await api.request('GET', '/api/v1/reports/gl-detail?from=2026-03-01&to=2026-03-31', { headers: auth });
    assert.equal(r.status, 200);
  });
});

eachDialect('audit: a client\'s page totals the unallocated credit of all its receipts, not only the 500 latest it lists', async (db) => {
  await withApp(db, async (t) => {
    const { f, admin } = await billedWithAdmin(t);
    const ledger = createLedgerCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    // An old payment on account of 25.00, then 500 later ones of 0.01 each, all held as credit.
    await ledger.recordReceipt(ctx, { clientId: f.client.id, receivedOn: '2026-03-01', amountMinor: 2_500, order: 'on_account' });
    for (let i = 0; i < 500; i++) await ledger.recordReceipt(ctx, { clientId: f.client.id, receivedOn: '2026-03-02', amountMinor: 1, order: 'on_account' });
    const page = await admin.get(`/ledger/clients/${f.client.id}`);
    assert.equal(page.status, 200);
    // Before the fix: 5.00 (the 500 latest receipts only; the 25.00 was left out).
    assert.equal(Number(/data-minor="(-?\d+)" id="credit"/.exec(page.text)?.[1]), 3_000);
  });
});
