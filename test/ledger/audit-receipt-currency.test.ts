/**
 * A client billed in another currency pays on account in that currency (API and page): the
 * receipt is recorded, posted and allocated in yen, paying the yen bill only. A currency the
 * client is not billed in, or one that is not the named bill's, is refused naming the field,
 * with nothing written.
 */
import assert from 'node:assert/strict';
import { withApp } from '../support/app.ts';
import { eachDialect } from '../support/db.ts';
import { approvedYenBill, billedWithAdmin } from './support.ts';

eachDialect('audit: a client billed in yen pays on account in yen through the API and the page; other currencies are refused at currency', async (db) => {
  await withApp(db, async (t) => {
    const { f, bill, admin } = await billedWithAdmin(t);
    const yen = await approvedYenBill(t, f, 45_000);
    await t.user('billing');
    const auth = { authorization: `Bearer ${await t.token('billing@firm.test')}` };
    const api = t.browser();
    const receipts = async () => Number(((await db.db.selectFrom('ledger_receipt').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()) as { n: unknown }).n);

    // On account in yen: 50,000 yen (no decimals) pays the yen bill oldest first; the dollar bill is untouched.
    let r = await api.postJson('/api/v1/receipts', { clientId: f.client.id, receivedOn: '2026-03-05', amount: '50000', currency: 'JPY', order: 'oldest_first' }, { headers: auth });
    assert.equal(r.status, 201, r.text.slice(0, 400));
    const body = r.json();
    assert.equal(body.currency, 'JPY');
    assert.deepEqual(body.allocations.map((a: { billId: string }) => a.billId), [yen.billId]);
    const yenBill = await db.db.selectFrom('ledger_bill').select(['paid_minor']).where('id', '=', yen.billId).executeTakeFirstOrThrow();
    assert.equal(Number(yenBill.paid_minor), yen.totalMinor);
    const usdBill = await db.db.selectFrom('ledger_bill').select(['paid_minor']).where('id', '=', bill.billId).executeTakeFirstOrThrow();
    assert.equal(Number(usdBill.paid_minor), 0);
    const journal = await db.db.selectFrom('ledger_receipt as r').innerJoin('ledger_journal as j', 'j.id', 'r.journal_id').select(['j.currency', 'r.amount_minor', 'r.unallocated_minor'])
      .where('r.id', '=', body.id).executeTakeFirstOrThrow();
    assert.deepEqual([journal.currency, Number(journal.amount_minor), Number(journal.unallocated_minor)], ['JPY', 50_000, 50_000 - yen.totalMinor]);

    // A currency the client has no bills in, or not the named bill's: 422 at currency, nothing written.
    const before = await receipts();
    for (const bad of [
      { clientId: f.client.id, receivedOn: '2026-03-05', amount: '10.00', currency: 'EUR', order: 'on_account' },
      { billId: bill.billId, receivedOn: '2026-03-05', amount: '10.00', currency: 'JPY' },
    ]) {
      r = await api.postJson('/api/v1/receipts', bad, { headers: auth });
      assert.equal(r.status, 422, r.text.slice(0, 400));
      assert.deepEqual(Object.keys(r.json().error.fields), ['currency'], r.text.slice(0, 400));
    }
    assert.equal(await receipts(), before);

    // The page: the on-account form offers the client's currencies; 1000 in yen is 1,000 yen, not 100,000.
    const form = await admin.get(`/ledger/receipts/new?client=${f.client.id}`);
    assert.equal(form.status, 200);
    assert.match(form.text, /<select name="currency"[^>]*><option value="USD" selected>USD<\/option><option value="JPY">JPY<\/option><\/select>/);
    const posted = await admin.post('/ledger/receipts', { client: f.client.id, currency: 'JPY', receivedOn: '2026-03-06', amount: '1000', method: 'bank_transfer', order: 'on_account', discount: 'auto', receiptId: 'R-yen-page-1' });
    assert.equal(posted.status, 303, posted.text.slice(0, 400));
    const onPage = await db.db.selectFrom('ledger_receipt').select(['currency', 'amount_minor', 'unallocated_minor']).where('id', '=', 'R-yen-page-1').executeTakeFirstOrThrow();
    assert.deepEqual([onPage.currency, Number(onPage.amount_minor), Number(onPage.unallocated_minor)], ['JPY', 1_000, 1_000]);
    const refusedPage = await admin.post('/ledger/receipts', { client: f.client.id, currency: 'EUR', receivedOn: '2026-03-06', amount: '10', method: 'bank_transfer', order: 'on_account', discount: 'auto', receiptId: 'R-eur-page-1' });
    assert.equal(refusedPage.status, 422);
    assert.match(refusedPage.text, /data-error-for="currency">must be the firm&#39;s currency \(USD\) or JPY: the client has no bills in EUR</);
    assert.equal(await receipts(), before + 1);
  });
});
