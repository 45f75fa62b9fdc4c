/**
 * Every report and page of the ledger names the clients, matters and timekeepers on it (each
 * reads only the names it shows, namesOf): a report row or page that lost a name would show an
 * id or nothing. The fee allocation names an originator who earned no fee line of their own. On
 * both databases.
 */
import assert from 'node:assert/strict';
import { withApp } from '../support/app.ts';
import { eachDialect } from '../support/db.ts';
import { createLedgerReports } from '../../src/modules/ledger/index.ts';
import { billedWithAdmin } from './support.ts';

eachDialect('ledger reports and pages name every client, matter and timekeeper they show', async (db) => {
  await withApp(db, async (t) => {
    const { f, bill, admin } = await billedWithAdmin(t);
    const reports = createLedgerReports(t.db.db, t.clock);
    const clientLabel = `${f.client.clientNumber} ${f.client.name}`;
    // An originator of the matter who earned no fee line of their own (a copy as the matters module's event writes it).
    await t.db.db.insertInto('ledger_timekeeper').values({ id: 'tk-originator', initials: 'OO', name: 'Olive Origin', active: 1, source_at: '2026-01-01T00:00:00.000Z' }).execute();
    await t.db.db.updateTable('ledger_matter').set({ originating_timekeeper_id: 'tk-originator' }).where('id', '=', f.matter.id).execute();

    const fees = await reports.run('fee-allocation', { from: '2026-01-01', to: '2026-03-31', clientId: f.client.id });
    assert.ok(fees.rows.some((r) => r.timekeeper === 'OO Olive Origin' && Number(r.originated) !== 0), JSON.stringify(fees.rows));
    assert.ok(fees.rows.some((r) => r.timekeeper === `${f.partner.initials} ${f.partner.name}` && Number(r.earned) !== 0), JSON.stringify(fees.rows));
    assert.match(fees.subtitle, new RegExp(` for ${f.client.name}: `));

    const statement = await reports.run('debtor-statement', { to: '2026-03-31' });
    assert.ok(statement.rows.length > 0);
    for (const r of statement.rows) assert.deepEqual([r.client, r.matter], [clientLabel, f.matter.name], JSON.stringify(r));
    assert.match((await reports.run('debtor-statement', { to: '2026-03-31', clientId: f.client.id })).subtitle, new RegExp(`^${clientLabel}`));

    const breakdown = await reports.run('debtor-breakdown', { to: '2026-03-31', clientId: f.client.id });
    assert.ok(breakdown.rows.length > 0);
    for (const r of breakdown.rows) assert.equal(r.matter, f.matter.name, JSON.stringify(r));
    assert.match(breakdown.subtitle, new RegExp(`^Bills owing by file for ${f.client.name}, `));

    const aged = await reports.run('aged-debtors', { to: '2026-03-31' });
    assert.deepEqual(aged.rows.map((r) => r.client), [clientLabel]);

    // The pages: a receipt on the bill, then the receipts list, the receipt, the bill and the client's account.
    const posted = await admin.post('/ledger/receipts', { bill: bill.billId, client: '', receivedOn: '2026-03-05', amount: '10.00', method: 'bank_transfer', order: 'this_bill_first', discount: 'auto' });
    assert.equal(posted.status, 303, posted.text.slice(0, 400));
    const receiptPage = (await admin.get(posted.location!)).text;
    assert.ok(receiptPage.includes(f.client.name), 'the receipt names its client');
    const list = (await admin.get('/ledger/receipts')).text;
    assert.match(list, new RegExp(`<td>[^<]*${f.client.name}`), 'the receipts list names the client');
    const billPage = (await admin.get(`/ledger/bills/${bill.billId}`)).text;
    assert.ok(billPage.includes(f.matter.name) && billPage.includes(f.client.name), 'the bill names its matter and client');
    assert.ok((await admin.get(`/ledger/clients/${f.client.id}`)).text.includes(f.client.name));
  });
});
