/**
 * The bills register (/billing/bills and GET /api/v1/bills), on both databases: every bill
 * across matters with its ledger balance (paid, written off, outstanding), filtered by text,
 * status, balance and invoice dates, sorted (bill numbers as numbers), paged, with totals per
 * currency of the approved and finalised bills the filters take; a void bill shows no amount
 * owed and counts in no total; bad filters are named (422) and left out; htmx gets the list alone.
 */
import assert from 'node:assert/strict';
import { createLedgerCommands } from '../../src/modules/ledger/index.ts';
import { listRegister } from '../../src/modules/billing/register-store.ts';
import { createBillingCommands } from '../../src/modules/billing/index.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { eachDialect } from '../support/db.ts';
import { unescapeHtml, withApp } from '../support/app.ts';
import type { Page } from '../support/app.ts';
import { ctx, firm, work } from './support.ts';

/** The register's rows as the page shows them: number, status and the four amounts (data attributes: minor units). */
function rows(page: Page): { number: string; status: string; total: string; paid: string | null; outstanding: string | null; overdue: boolean }[] {
  const body = page.text.match(/<tbody>([^]*?)<\/tbody>/)?.[1] ?? '';
  return [...body.matchAll(/<tr id="bill-[^"]+" class="s-(\w+)( overdue)?">([^]*?)<\/tr>/g)].map((m) => ({
    status: m[1]!,
    number: unescapeHtml(m[3]!.match(/<a href="\/billing\/bills\/[^"]+">([^<]+)<\/a>/)![1]!),
    total: m[3]!.match(/data-minor="(-?\d+)"/)![1]!,
    paid: m[3]!.match(/data-paid="(-?\d+)"/)?.[1] ?? null,
    outstanding: m[3]!.match(/data-outstanding="(-?\d+)"/)?.[1] ?? null,
    overdue: m[2] !== undefined,
  }));
}

eachDialect('bills register: every bill with its balance, filters, number order, totals per currency, void and drafts, bad filters named', async (db) => {
  await withApp(db, async (t) => {
    const matters = createMattersCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const billing = createBillingCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const ledger = createLedgerCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const f = await firm(matters);
    const other = await matters.openMatter(ctx, { clientId: f.client.id, name: 'Northwind lease', responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH' });
    const acme = await matters.createClient(ctx, { name: 'Acme Holdings', email: 'ap@acme.example' });
    const acmeMatter = await matters.openMatter(ctx, { clientId: acme.id, name: 'Acme audit', responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH' });
    for (const m of [f.matter, other, acmeMatter]) await work(matters, m.id, f);
    await t.runtime.relay.drain();
    const dates = { invoiceDate: '2026-02-28', upTo: '2026-02-28' };
    // 1.1.1 finalised, part paid; 1.2.1 approved, unpaid (overdue by today 2026-05-01); 2.1.1 paid in full; 1.1.2 a draft; then a void bill.
    const a = await billing.approve(ctx, (await billing.createDraft(ctx, { matterId: f.matter.id, ...dates })).billId);
    await billing.finalise(ctx, a.billId);
    const b = await billing.approve(ctx, (await billing.createDraft(ctx, { matterId: other.id, ...dates })).billId);
    const c = await billing.approve(ctx, (await billing.createDraft(ctx, { matterId: acmeMatter.id, ...dates })).billId);
    await t.runtime.relay.drain();
    await ledger.recordReceipt(ctx, { billId: a.billId, receivedOn: '2026-03-05', amountMinor: 10_000 });
    await ledger.recordReceipt(ctx, { billId: c.billId, receivedOn: '2026-03-06', amountMinor: c.totals.totalMinor });
    await matters.recordTimeEntry(ctx, { matterId: f.matter.id, timekeeperId: f.partner.id, workDate: '2026-03-10', rawMinutes: 60, narrative: 'Advice' });
    await t.runtime.relay.drain();
    const draft = await billing.createDraft(ctx, { matterId: f.matter.id, invoiceDate: '2026-03-31', upTo: '2026-03-31' });
    // A void bill: the matter's latest and unreceipted.
    await matters.recordTimeEntry(ctx, { matterId: acmeMatter.id, timekeeperId: f.partner.id, workDate: '2026-03-11', rawMinutes: 30, narrative: 'Call' });
    await t.runtime.relay.drain();
    const v = await billing.approve(ctx, (await billing.createDraft(ctx, { matterId: acmeMatter.id, invoiceDate: '2026-03-31', upTo: '2026-03-31' })).billId);
    await t.runtime.relay.drain();
    await billing.deleteBill(ctx, v.billId);
    await t.runtime.relay.drain();
    t.clock.set('2026-05-01T09:00:00Z');

    await t.user('billing');
    const clerk = t.browser();
    await clerk.login('billing@firm.test');
    const all = await clerk.get('/billing/bills?sort=number&dir=asc');
    assert.equal(all.status, 200);
    // Bill numbers in number order (client, matter, sequence), drafts by their matter; the void bill shows "void", not its old total.
    assert.deepEqual([a.number, b.number, c.number, v.number], ['1.1.1', '1.2.1', '2.1.1', '2.1.2']);
    assert.deepEqual(rows(all).map((r) => [r.number, r.status]), [
      ['1.1.1', 'finalised'], ['Draft', 'draft'], ['1.2.1', 'approved'], ['2.1.1', 'approved'], ['2.1.2', 'deleted'],
    ]);
    const byNumber = new Map(rows(all).map((r) => [r.number, r]));
    assert.deepEqual(byNumber.get(a.number!), { number: a.number!, status: 'finalised', total: String(a.totals.totalMinor), paid: '10000', outstanding: String(a.totals.totalMinor - 10_000), overdue: true });
    assert.deepEqual(byNumber.get(b.number!), { number: b.number!, status: 'approved', total: String(b.totals.totalMinor), paid: '0', outstanding: String(b.totals.totalMinor), overdue: true });
    assert.deepEqual(byNumber.get(c.number!), { number: c.number!, status: 'approved', total: String(c.totals.totalMinor), paid: String(c.totals.totalMinor), outstanding: '0', overdue: false });
    assert.deepEqual([byNumber.get(v.number!)!.total, byNumber.get(v.number!)!.outstanding], ['0', null], 'void: nothing owed');
    assert.match(all.text, new RegExp(`href="/billing/bills/${draft.billId}">Draft<`));
    // Totals: approved and finalised bills only (not the draft, not the void bill), all pages.
    const issued = a.totals.totalMinor + b.totals.totalMinor + c.totals.totalMinor;
    assert.match(all.text, new RegExp(`<tr class="totals" data-currency="USD">[^]*?3 approved or finalised bills \\(USD\\), all pages[^]*?data-total="${issued}"[^]*?data-total-paid="${10_000 + c.totals.totalMinor}"[^]*?data-total-outstanding="${issued - 10_000 - c.totals.totalMinor}"`));

    // Filters: outstanding, overdue, paid, status, text, dates.
    const numbers = async (query: string) => rows(await clerk.get(`/billing/bills?sort=number&dir=asc&${query}`)).map((r) => r.number);
    assert.deepEqual(await numbers('balance=outstanding'), [a.number, b.number]);
    assert.deepEqual(await numbers('balance=overdue'), [a.number, b.number]);
    assert.deepEqual(await numbers('balance=paid'), [c.number]);
    assert.deepEqual(await numbers('status=draft'), ['Draft']);
    assert.deepEqual(await numbers('status=void'), [v.number]);
    assert.deepEqual(await numbers('status=issued&q=acme'), [c.number], 'client name, any case');
    assert.deepEqual(await numbers(`q=${encodeURIComponent(b.number!)}`), [b.number]);
    assert.deepEqual(await numbers('from=2026-03-01&to=2026-03-31'), ['Draft', v.number]);
    assert.deepEqual(await numbers('q=%25'), [], 'a % is searched for, not a wildcard');

    // Bad filters: named at their inputs (422), left out of the list.
    const bad = await clerk.get('/billing/bills?status=paidish&from=2026-02-30&sort=colour&bogus=1');
    assert.equal(bad.status, 422);
    for (const field of ['status', 'from', 'sort', 'bogus']) assert.match(bad.text, new RegExp(`data-error-for="${field}"`), field);
    assert.equal(rows(bad).length, 5, 'the list as the other filters give it');
    const backwards = await clerk.get('/billing/bills?from=2026-03-01&to=2026-02-01');
    assert.equal(backwards.status, 422);
    assert.match(backwards.text, /data-error-for="to">must be on or after the date from \(2026-03-01\)/);
    assert.equal(rows(backwards).length, 2, 'from 2026-03-01 only');

    // htmx: the list alone, the address following the filters.
    const hx = await clerk.get('/billing/bills?balance=paid', { 'HX-Request': 'true' });
    assert.equal(hx.status, 200);
    assert.doesNotMatch(hx.text, /<title>/);
    assert.ok(hx.text.trimStart().startsWith('<div id="register">'));
    assert.equal(hx.headers.get('hx-replace-url'), '/billing/bills?balance=paid');
    assert.match(hx.headers.get('vary') ?? '', /HX-Request/);

    // The API: the same register, amounts as decimals.
    const token = await t.token('billing@firm.test');
    const api = await t.browser().get('/api/v1/bills?balance=outstanding&sort=number&dir=asc', { authorization: `Bearer ${token}`, accept: 'application/json' });
    assert.equal(api.status, 200, api.text);
    const body = api.json();
    assert.equal(body.total, 2);
    assert.deepEqual(body.items.map((i: { number: string; outstanding: string; overdue: boolean }) => [i.number, i.outstanding, i.overdue]), [
      [a.number, ((a.totals.totalMinor - 10_000) / 100).toFixed(2), true], [b.number, (b.totals.totalMinor / 100).toFixed(2), true],
    ]);
    assert.deepEqual(body.totals.map((x: { currency: string; bills: number }) => [x.currency, x.bills]), [['USD', 2]]);
    const apiBad = await t.browser().get('/api/v1/bills?from=2026-02-30', { authorization: `Bearer ${token}`, accept: 'application/json' });
    assert.equal(apiBad.status, 422);
    assert.deepEqual(Object.keys(apiBad.json().error.fields), ['from']);

    // Paging: limit and offset; the totals are of every bill the filters take, not the page.
    const p1 = await listRegister(db.db, { sort: 'number', dir: 'asc', limit: 2, offset: 0 }, '2026-05-01');
    const p2 = await listRegister(db.db, { sort: 'number', dir: 'asc', limit: 2, offset: 2 }, '2026-05-01');
    const p3 = await listRegister(db.db, { sort: 'number', dir: 'asc', limit: 2, offset: 4 }, '2026-05-01');
    assert.deepEqual([p1.total, p1.rows.length, p2.rows.length, p3.rows.length], [5, 2, 2, 1]);
    assert.deepEqual([...p1.rows, ...p2.rows, ...p3.rows].map((r) => r.number ?? 'Draft'), rows(all).map((r) => r.number));
    assert.deepEqual(p1.totals, p2.totals);
    assert.equal(p1.totals[0]!.totalMinor, issued);

    // Roles: a timekeeper has no billing pages.
    await t.user('timekeeper');
    const tk = t.browser();
    await tk.login('timekeeper@firm.test');
    assert.equal((await tk.get('/billing/bills')).status, 403);
  }, { start: '2026-03-02T09:00:00Z' });
});

eachDialect('bills register (review 58): the total as the ledger has it, "paid in full" is paid, accents aside in search, file numbers as numbers, past the last page said', async (db) => {
  await withApp(db, async (t) => {
    const matters = createMattersCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const billing = createBillingCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const ledger = createLedgerCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const f = await firm(matters);
    const emile = await matters.createClient(ctx, { name: 'Émile Müller ÅS' });
    const m = await matters.openMatter(ctx, { clientId: emile.id, name: 'Lease', responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01' });
    // Matters 1.2 to 1.10: the bill on 1.10 sorts after the one on 1.2 by file number (as numbers, not text).
    const more = [];
    for (let i = 2; i <= 10; i++) more.push(await matters.openMatter(ctx, { clientId: f.client.id, name: `Matter ${i}`, responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01' }));
    for (const x of [m, more[0]!, more[8]!]) await work(matters, x.id, f);
    await t.runtime.relay.drain();
    const dates = { invoiceDate: '2026-02-28', upTo: '2026-02-28' };
    // A 10% discount valid until 10 March, reversed on the 20th: the bill then asks for its undiscounted total.
    const d = await billing.approve(ctx, (await billing.createDraft(ctx, { matterId: m.id, ...dates, request: { discount: { kind: 'percentage', percentBasisPoints: 1_000, amountMinor: 0, validUntil: '2026-03-10' } } })).billId);
    const two = await billing.approve(ctx, (await billing.createDraft(ctx, { matterId: more[0]!.id, ...dates })).billId);
    const ten = await billing.approve(ctx, (await billing.createDraft(ctx, { matterId: more[8]!.id, ...dates })).billId);
    await t.runtime.relay.drain();
    t.clock.set('2026-03-20T09:00:00Z');
    await ledger.decideDiscount(ctx, { billId: d.billId, decision: 'reverse', on: '2026-03-20' });
    // 1.2.1 paid all but 5.00, the 5.00 written off; 1.10.1 paid in full.
    await ledger.recordReceipt(ctx, { billId: two.billId, receivedOn: '2026-03-05', amountMinor: two.totals.totalMinor - 500 });
    await ledger.setWriteOffLimit(ctx, 1_000);
    await ledger.writeOff(ctx, { billId: two.billId, on: '2026-03-06' });
    await ledger.recordReceipt(ctx, { billId: ten.billId, receivedOn: '2026-03-05', amountMinor: ten.totals.totalMinor });
    await t.runtime.relay.drain();
    const reversed = Number((await db.db.selectFrom('ledger_bill').select(['total_minor', 'discount_reversed_minor']).where('id', '=', d.billId).executeTakeFirstOrThrow()).discount_reversed_minor);
    assert.ok(reversed > 0);

    const page = await listRegister(db.db, { sort: 'number', dir: 'asc' }, '2026-03-20');
    const row = page.rows.find((r) => r.billId === d.billId)!;
    assert.equal(row.totalMinor, d.totals.totalMinor + reversed, 'the total the ledger asks for');
    assert.equal(row.totalMinor - row.balance!.paidMinor - row.balance!.writtenOffMinor, row.balance!.outstandingMinor, 'the row adds up');
    const usd = page.totals.find((x) => x.currency === 'USD')!;
    assert.equal(usd.totalMinor - usd.paidMinor - usd.writtenOffMinor, usd.outstandingMinor, 'the totals add up');

    const numbers = async (q: Parameters<typeof listRegister>[1]) => (await listRegister(db.db, { sort: 'number', dir: 'asc', ...q }, '2026-03-20')).rows.map((r) => r.number);
    assert.deepEqual(await numbers({ balance: 'paid' }), [ten.number], 'written off is not paid');
    assert.deepEqual(await numbers({ balance: 'settled' }), [two.number, ten.number]);
    assert.deepEqual(await numbers({ balance: 'written_off' }), [two.number]);
    for (const q of ['Émile', 'émile', 'emile', 'EMILE', 'muller', 'Müller', 'ÅS']) assert.deepEqual(await numbers({ q }), [d.number], q);
    assert.deepEqual((await listRegister(db.db, { sort: 'matter', dir: 'asc' }, '2026-03-20')).rows.map((r) => r.fileNumber), ['1.2', '1.10', '2.1']);

    await t.user('billing');
    const clerk = t.browser();
    await clerk.login('billing@firm.test');
    const past = await clerk.get('/billing/bills?offset=200');
    assert.equal(past.status, 200);
    assert.match(past.text, /Past the last of 3/);
    assert.doesNotMatch(past.text, /201–/);
    const badOffset = await clerk.get('/billing/bills?offset=abc');
    assert.equal(badOffset.status, 422);
    assert.match(badOffset.text, /offset/i, 'the refusal says which part of the address was wrong');
  }, { start: '2026-03-02T09:00:00Z' });
});
