/**
 * The receipts list (review 53 L8), on both databases: found by the dates received, by number
 * or reference, and by unallocated credit; 100 a page with the others reached by Next; the
 * filtered receipts totalled per currency over every page (those reversed since counted, and said apart); bad filters named.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { withApp } from '../support/app.ts';
import { createLedgerCommands } from '../../src/modules/ledger/index.ts';
import { ctx } from '../billing/support.ts';
import { approvedBill } from './support.ts';

eachDialect('receipts list: dates, number or reference, credit only, pages of 100, totals of every page, bad filters named', async (db) => {
  await withApp(db, async (t) => {
    const { f, bill } = await approvedBill({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const ledger = createLedgerCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    t.clock.set('2026-04-30T09:00:00Z');
    // 104 receipts on account of 1.00 each, in March; one of 50.00 against the bill in April with a reference; one reversed.
    for (let i = 0; i < 104; i++) await ledger.recordReceipt(ctx, { clientId: f.client.id, receivedOn: `2026-03-${String(1 + (i % 28)).padStart(2, '0')}`, amountMinor: 100, order: 'on_account', confirmOutsidePeriod: true });
    const { receipt: paid } = await ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-04-02', amountMinor: 5_000, reference: 'BANK 50%_X', order: 'this_bill_only' });
    const { receipt: gone } = await ledger.recordReceipt(ctx, { clientId: f.client.id, receivedOn: '2026-04-03', amountMinor: 700, order: 'on_account' });
    await ledger.reverseReceipt(ctx, { receiptId: gone.id, reason: 'Dishonoured', on: '2026-04-03' });
    await t.runtime.relay.drain();
    await t.user('billing');
    const clerk = t.browser();
    await clerk.login('billing@firm.test');
    const numbers = (text: string) => [...text.matchAll(/<a href="\/ledger\/receipts\/[^"]+">(R\d+)<\/a>/g)].map((m) => m[1]!);

    const first = await clerk.get('/ledger/receipts');
    assert.equal(first.status, 200);
    assert.equal(numbers(first.text).length, 100, 'a page of 100');
    assert.match(first.text, /1–100 of 106/);
    // Received, all pages: 104 × 1.00 + 50.00 + the 7.00 reversed since (it came in, and went out on its own date: review 62 F6).
    assert.match(first.text, /data-currency="USD"><td colspan="5">106 receipts received \(USD\), all pages<\/td>\s*<td class="num" data-total-amount="16100">/);
    assert.match(first.text, /data-reversed-currency="USD"><td colspan="5">of which 1 reversed since, each on its own date \(USD\)<\/td>\s*<td class="num" data-total-reversed="700">/);
    const next = /<a href="([^"]+)" rel="next">/.exec(first.text)![1]!.replaceAll('&amp;', '&');
    const second = await clerk.get(next);
    assert.deepEqual(numbers(second.text).length, 6);
    assert.equal(new Set([...numbers(first.text), ...numbers(second.text)]).size, 106, 'every receipt once');

    const april = await clerk.get('/ledger/receipts?from=2026-04-01&to=2026-04-30');
    assert.deepEqual(numbers(april.text).sort(), [paid.number, gone.number].sort());
    assert.match(april.text, /2 receipts received \(USD\), all pages<\/td>\s*<td class="num" data-total-amount="5700">/);
    // March: nothing reversed among them, no such line.
    assert.doesNotMatch((await clerk.get('/ledger/receipts?from=2026-03-01&to=2026-03-31')).text, /data-reversed-currency/);
    assert.deepEqual(numbers((await clerk.get(`/ledger/receipts?q=${encodeURIComponent('50%_x')}`)).text), [paid.number], 'the reference, any case, % and _ as typed');
    assert.deepEqual(numbers((await clerk.get('/ledger/receipts?q=%25')).text), [paid.number]);
    assert.deepEqual(numbers((await clerk.get(`/ledger/receipts?q=${paid.number}`)).text), [paid.number], 'the number');
    const credit = await clerk.get('/ledger/receipts?credit=1&from=2026-03-01&to=2026-03-01');
    assert.equal(numbers(credit.text).length, 4, 'credit only: the 1st of March\'s four on account');

    const bad = await clerk.get('/ledger/receipts?from=2026-02-30&to=2026-01-01&offset=x');
    assert.equal(bad.status, 422);
    assert.match(bad.text, /data-error-for="from">must be a date/);
    assert.match(bad.text, /data-error-for="offset">/);
    assert.equal(numbers(bad.text).length, 0, 'to 2026-01-01: nothing then');
    const backwards = await clerk.get('/ledger/receipts?from=2026-04-01&to=2026-03-01');
    assert.equal(backwards.status, 422);
    assert.match(backwards.text, /data-error-for="to">must be on or after the date from \(2026-04-01\)/);
    const past = await clerk.get('/ledger/receipts?offset=500');
    assert.match(past.text, /Past the last of 106/);
  });
});
