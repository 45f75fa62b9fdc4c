/**
 * The journals list, on both databases: by prefix and by dates, 100 a page with the filters kept
 * on Older/Newer; a bad prefix, date or page is named at its input (422) and left out, never
 * silently ignored (review 62 F10).
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { withApp } from '../support/app.ts';
import { createLedgerCommands } from '../../src/modules/ledger/index.ts';
import { ctx } from '../billing/support.ts';
import { approvedBill } from './support.ts';

eachDialect('journals list: by prefix and dates, pages keep the filters, bad filters named', async (db) => {
  await withApp(db, async (t) => {
    const { f } = await approvedBill({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const ledger = createLedgerCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    t.clock.set('2026-04-30T09:00:00Z');
    // 101 receipts on account (RJ), in March and April.
    for (let i = 0; i < 101; i++) await ledger.recordReceipt(ctx, { clientId: f.client.id, receivedOn: i < 60 ? '2026-03-10' : '2026-04-10', amountMinor: 100, order: 'on_account', confirmOutsidePeriod: true });
    await t.runtime.relay.drain();
    await t.user('billing');
    const clerk = t.browser();
    await clerk.login('billing@firm.test');
    const numbers = (text: string) => [...text.matchAll(/<a href="\/ledger\/journals\/[^"]+">([A-Z]{2}\d+)<\/a>/g)].map((m) => m[1]!);

    const bj = await clerk.get('/ledger/journals?prefix=BJ');
    assert.deepEqual(numbers(bj.text), ['BJ000001']);
    const rj = await clerk.get('/ledger/journals?prefix=RJ');
    assert.equal(numbers(rj.text).length, 100);
    const older = /<a href="([^"]+)" rel="next">Older<\/a>/.exec(rj.text)![1]!.replaceAll('&amp;', '&');
    assert.equal(older, '?page=1&prefix=RJ', 'the next page keeps the prefix');
    assert.deepEqual(numbers((await clerk.get(`/ledger/journals${older}`)).text), ['RJ000001']);
    const april = await clerk.get('/ledger/journals?prefix=RJ&from=2026-04-01&to=2026-04-30');
    assert.equal(numbers(april.text).length, 41, 'dated in April only');

    const bad = await clerk.get('/ledger/journals?prefix=ZZ&page=-5&from=2026-02-30');
    assert.equal(bad.status, 422);
    assert.match(bad.text, /data-error-for="prefix">The prefix asked for \(ZZ\) must be one of BJ, RJ, AJ, WJ, DJ: every prefix is shown\./);
    assert.match(bad.text, /data-error-for="page">The page asked for must be a page number from 0 to 10,000: the first page is shown\./);
    assert.match(bad.text, /data-error-for="from">must be a date/);
    assert.equal(numbers(bad.text).length, 100, 'the first page of every journal, the bad filters left out');
    const backwards = await clerk.get('/ledger/journals?from=2026-04-01&to=2026-03-01');
    assert.equal(backwards.status, 422);
    assert.match(backwards.text, /data-error-for="to">must be on or after the date from \(2026-04-01\)/);
  });
});
