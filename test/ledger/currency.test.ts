/**
 * A bill in another currency than the firm's (a matter billed in JPY), approved in bulk by
 * mass billing beside the firm's USD bills: its billing journal is posted in its own currency
 * and balances there, and the firm's books never add its yen to dollars: the trial balance,
 * aged debtors, debtor statement and breakdown, GL detail and fee allocation count only USD
 * postings and name the other currency in a note.
 */
import assert from 'node:assert/strict';
import { createMassBilling } from '../../src/modules/billing/mass-commands.ts';
import { createLedgerReports } from '../../src/modules/ledger/index.ts';
import { systemContext } from '../../src/shared/events.ts';
import { withApp } from '../support/app.ts';
import { eachDialect } from '../support/db.ts';
import { approvedYenBill, billedWithAdmin, ctx, setup } from './support.ts';
import { firm } from './support.ts';

eachDialect('a bill in another currency posts in that currency and is never added to the firm currency\'s books', async (db) => {
  const s = await setup(db);
  const { partner, client, matter } = await firm(s.cmds);
  const yen = await s.cmds.openMatter(ctx, { clientId: client.id, name: 'Tokyo lease', responsibleTimekeeperId: partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH', currency: 'JPY' });
  await s.cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-02-10', rawMinutes: 120, narrative: 'Hearing' });
  await s.cmds.recordTimeEntry(ctx, { matterId: yen.id, timekeeperId: partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Lease review', override: { rateMinor: 45_000, reason: 'yen rate' } });
  await s.cmds.recordDisbursement(ctx, { matterId: yen.id, incurredOn: '2026-02-12', code: 'COURT', unitCostMinor: 3_333, taxCode: 'SALES', description: 'Stamp duty' });
  await s.drain();
  const m = createMassBilling({ db: db.db, clock: s.clock, relay: s.rt.relay }, s.billing);
  const drafted = await m.draftMatters(systemContext('draft', 'test'), [matter.id, yen.id], { invoiceDate: '2026-02-28', upTo: '2026-02-28', request: {} });
  assert.ok(drafted.every((d) => d.ok), JSON.stringify(drafted));
  const drafts = await db.db.selectFrom('billing_bill').select(['id', 'currency', 'total_minor']).where('status', '=', 'draft').execute();
  const approved = await m.approveMany(systemContext('approve', 'test'), drafts.map((d) => d.id as string));
  assert.ok(approved.every((a) => a.ok), JSON.stringify(approved));
  await s.drain();
  const totalOf = (currency: string) => Number(drafts.find((d) => d.currency === currency)!.total_minor);
  const usd = totalOf('USD');
  const jpy = totalOf('JPY');
  assert.equal(usd, 60_000);
  assert.equal(jpy, 45_000 + 3_333 + 275, '450.00 yen-minor fee, stamp duty and its sales tax');

  // Each bill's journal is in the bill's currency, balanced, its debtors line the bill's total.
  for (const d of drafts) {
    const j = await db.db.selectFrom('ledger_journal').selectAll().where('bill_id', '=', d.id as string).executeTakeFirstOrThrow();
    assert.equal(j.currency, d.currency);
    const lines = await db.db.selectFrom('ledger_journal_line as l').innerJoin('ledger_account as a', 'a.id', 'l.account_id')
      .select(['a.role', 'l.debit_minor', 'l.credit_minor']).where('l.journal_id', '=', j.id as string).execute();
    assert.equal(lines.reduce((a, l) => a + Number(l.debit_minor) - Number(l.credit_minor), 0), 0);
    assert.equal(lines.filter((l) => l.role === 'debtors').reduce((a, l) => a + Number(l.debit_minor) - Number(l.credit_minor), 0), Number(d.total_minor));
  }

  // The firm's (USD) reports: only the USD bill, and a note naming JPY.
  const reports = createLedgerReports(db.db, s.clock);
  const note = /Only amounts in USD are counted: postings in JPY/;
  const tb = await reports.run('trial-balance', { to: '2026-03-31' });
  assert.equal(tb.currency, 'USD');
  assert.deepEqual(tb.rows.find((r) => r.code === '1100')?.debit, usd, 'debtors control: the USD bill only (yen are not cents)');
  assert.equal(tb.totals!.debit, usd);
  assert.equal(tb.totals!.credit, usd);
  assert.match(tb.notes.join(' '), note);
  const aged = await reports.run('aged-debtors', { to: '2026-03-31' });
  assert.equal(aged.totals!.total, usd);
  assert.match(aged.notes.join(' '), note);
  const statement = await reports.run('debtor-statement', { to: '2026-03-31', clientId: client.id });
  assert.equal(statement.totals!.outstanding, usd);
  assert.match(statement.notes.join(' '), note, 'the client has a yen matter: said');
  // A client with nothing in yen is not told of yen postings (review 62 F9): the note is the client's, not the firm's.
  const other = await s.cmds.createClient(ctx, { name: 'Dollar Only LLC', email: 'ap@dollar.example' });
  await s.drain();
  assert.doesNotMatch((await reports.run('debtor-statement', { to: '2026-03-31', clientId: other.id })).notes.join(' '), /Only amounts in/);
  const breakdown = await reports.run('debtor-breakdown', { to: '2026-03-31' });
  assert.deepEqual(breakdown.rows.map((r) => r.total), [usd]);
  const gl = await reports.run('gl-detail', { from: '2026-02-01', to: '2026-03-31' });
  assert.equal(gl.totals!.debit, usd);
  const fees = await reports.run('fee-allocation', { from: '2026-01-01', to: '2026-03-31' });
  assert.equal(fees.totals!.earned, 60_000);
  await s.rt.relay.stop();
});

eachDialect('the ledger overview and a client\'s account never add a bill in another currency to the firm currency\'s balances', async (db) => {
  await withApp(db, async (t) => {
    const { f, bill, admin } = await billedWithAdmin(t);
    await approvedYenBill(t, f, 45_000);
    const minorOf = (text: string, id: string) => Number(new RegExp(`data-minor="(-?\\d+)" id="${id}"`).exec(text)?.[1] ?? NaN);
    const usd = bill.totals.totalMinor;
    const overview = await admin.get('/ledger');
    assert.equal(overview.status, 200);
    assert.match(overview.text, new RegExp(`<th>Debtors control</th><td class="num" data-minor="${usd}">`), 'debtors control: the USD bill only, not plus 45,000 yen as cents');
    const page = await admin.get(`/ledger/clients/${f.client.id}`);
    assert.equal(page.status, 200);
    assert.equal(minorOf(page.text, 'outstanding'), usd);
    assert.match(page.text, /in JPY: outstanding <strong data-minor="45000" data-currency="JPY"/);
  });
});

eachDialect('writing off small balances measures only bills in the firm\'s currency against the amount given (in that currency)', async (db) => {
  const s = await setup(db);
  const { partner, client, matter } = await firm(s.cmds);
  const yen = await s.cmds.openMatter(ctx, { clientId: client.id, name: 'Tokyo lease', responsibleTimekeeperId: partner.id, openedOn: '2025-06-01', currency: 'JPY' });
  await s.cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice' });
  await s.cmds.recordTimeEntry(ctx, { matterId: yen.id, timekeeperId: partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Lease review', override: { rateMinor: 4_000, reason: 'yen rate' } });
  await s.drain();
  const m = createMassBilling({ db: db.db, clock: s.clock, relay: s.rt.relay }, s.billing);
  await m.draftMatters(ctx, [matter.id, yen.id], { invoiceDate: '2026-02-28', upTo: '2026-02-28', request: {} });
  const drafts = await db.db.selectFrom('billing_bill').select(['id', 'currency', 'total_minor']).where('status', '=', 'draft').execute();
  assert.ok((await m.approveMany(ctx, drafts.map((d) => d.id as string))).every((a) => a.ok));
  await s.drain();
  const usdBill = drafts.find((d) => d.currency === 'USD')!;
  const yenBill = drafts.find((d) => d.currency === 'JPY')!;
  assert.equal(Number(yenBill.total_minor), 4_000, '¥4,000');
  // 300.00 of 300.00 paid but 40.00: a USD small balance.
  await s.ledger.recordReceipt(ctx, { billId: usdBill.id as string, receivedOn: '2026-03-02', amountMinor: 26_000, order: 'this_bill_only' });
  // "At most 50.00" (USD): the 40.00 balance goes; the ¥4,000 bill (4,000 minor units, but yen) stays owing.
  const done = (await s.ledger.writeOffSmallBalances(ctx, { maxMinor: 5_000, on: '2026-03-02' })).written;
  assert.deepEqual(done.map((b) => b.id), [usdBill.id]);
  await s.drain();
  const open = await db.db.selectFrom('ledger_bill').select(['id', 'written_off_minor']).orderBy('currency').execute();
  assert.deepEqual(open.map((b) => [b.id, Number(b.written_off_minor)]), [[yenBill.id, 0], [usdBill.id, 4_000]]);
  await s.rt.relay.stop();
});

eachDialect('a bill in another currency is written off only under a limit set for that currency (the firm\'s limit is in its own); the pages show each', async (db) => {
  await withApp(db, async (t) => {
    const { f, admin } = await billedWithAdmin(t);
    const yenBill = (await approvedYenBill(t, f, 4_000)).billId;
    const writtenOff = async () => Number((await db.db.selectFrom('ledger_bill').select('written_off_minor').where('id', '=', yenBill).executeTakeFirstOrThrow()).written_off_minor);
    const audits = async () => Number(((await db.db.selectFrom('audit_log').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()) as { n: unknown }).n);

    // The firm's limit is 50.00 (USD): it says nothing about yen, so the ¥4,000 bill is not written off (before: 4,000 <= 5,000 minor units went).
    const page = await admin.get(`/ledger/bills/${yenBill}`);
    assert.equal(page.status, 200);
    assert.match(page.text, /No write-off limit is set for JPY/);
    assert.doesNotMatch(page.text, /action="\/ledger\/bills\/[^"]+\/write-off"/, 'no write-off form');
    const before = await audits();
    const refusedPost = await admin.post(`/ledger/bills/${yenBill}/write-off`, { amount: '', on: '2026-03-02', reason: 'Small balance' });
    assert.equal(refusedPost.status, 409);
    assert.match(refusedPost.text, /No write-off limit is set for JPY/);
    assert.equal(await writtenOff(), 0);
    assert.equal(await audits(), before, 'nothing audited');

    // An administrator sets ¥3,000 for JPY: the periods page lists both limits; a bad currency is named.
    const bad = await admin.post('/ledger/periods', { action: 'write-off-limit', limit: '3000', currency: 'yen!' });
    assert.equal(bad.status, 422);
    assert.match(bad.text, /data-error-for="currency"/);
    const set = await admin.post('/ledger/periods', { action: 'write-off-limit', limit: '3000', currency: 'JPY' });
    assert.equal(set.status, 303);
    const periods = await admin.get('/ledger/periods');
    assert.match(periods.text, /<td>USD \(the firm's\)<\/td><td class="num">\$50\.00<\/td>/);
    assert.match(periods.text, /<td>JPY<\/td><td class="num">¥3,000<\/td>/);
    // The firm's own limit is unchanged by it.
    assert.match(periods.text, /name="limit"[^>]*value="50.00"/);
    // ¥4,000 is over ¥3,000: refused; ¥2,500 of it is written off.
    const over = await admin.post(`/ledger/bills/${yenBill}/write-off`, { amount: '', on: '2026-03-02', reason: 'Small balance' });
    assert.equal(over.status, 409);
    assert.match(over.text, /at most ¥3,000 per bill/);
    const ok = await admin.post(`/ledger/bills/${yenBill}/write-off`, { amount: '2500', on: '2026-03-02', reason: 'Small balance' });
    assert.equal(ok.status, 303);
    assert.equal(await writtenOff(), 2_500);
    const audit = await db.db.selectFrom('audit_log').select(['entity_id', 'after_json']).where('action', '=', 'ledger.write_off_limit_set').execute();
    assert.deepEqual(audit.map((a) => JSON.parse(String(a.after_json))), [{ limitMinor: 3_000, currency: 'JPY' }]);
  });
});

eachDialect('a report can be asked for in another currency the books hold: only its amounts, the firm\'s named; page, CSV, API; an unknown currency is named', async (db) => {
  await withApp(db, async (t) => {
    const { f, bill, admin } = await billedWithAdmin(t);
    // Unbilled yen work after the bill's cut-off, for the WIP report.
    const { totalMinor: jpy } = await approvedYenBill(t, f, 45_000, (cmds, matterId) =>
      cmds.recordTimeEntry(ctx, { matterId, timekeeperId: f.partner.id, workDate: '2026-03-10', rawMinutes: 30, narrative: 'Call', override: { rateMinor: 20_000, reason: 'yen rate' } }));
    assert.equal(jpy, 45_000);
    const usd = bill.totals.totalMinor;

    const reports = createLedgerReports(db.db, t.clock);
    const tb = await reports.run('trial-balance', { to: '2026-03-31', currency: 'JPY' });
    assert.equal(tb.currency, 'JPY');
    assert.equal(tb.rows.find((r) => r.code === '1100')?.debit, jpy, 'debtors control: the yen bill only');
    assert.equal(tb.totals!.debit, tb.totals!.credit);
    assert.match(tb.notes.join(' '), /Only amounts in JPY are counted: postings in USD/);
    const aged = await reports.run('aged-debtors', { to: '2026-03-31', currency: 'JPY' });
    assert.equal(aged.totals!.total, jpy);
    const wip = await reports.run('wip-by-timekeeper', { to: '2026-03-31', currency: 'JPY' });
    assert.equal(wip.totals!.value, 10_000, 'half an hour at ¥20,000');
    // The firm's currency by default, as before.
    assert.equal((await reports.run('aged-debtors', { to: '2026-03-31' })).totals!.total, usd);
    // A currency the books hold nothing in, or not a code: refused, naming the currency.
    for (const bad of ['EUR', 'yen']) {
      await assert.rejects(reports.run('aged-debtors', { to: '2026-03-31', currency: bad }), (e: Error & { fields?: Record<string, string> }) => Object.keys(e.fields ?? {}).join() === 'currency');
    }

    // The page offers the currencies and keeps the choice in its downloads.
    let p = await admin.get('/ledger/reports/aged-debtors?to=2026-03-31&currency=JPY');
    assert.equal(p.status, 200);
    assert.match(p.text, /<select name="currency"[^>]*><option value="JPY" selected>JPY<\/option><option value="USD">USD<\/option>/);
    assert.match(p.text, /format=csv[^"]*"|currency=JPY&amp;format=csv/);
    p = await admin.get('/ledger/reports/aged-debtors?to=2026-03-31&currency=JPY&format=csv');
    assert.equal(p.status, 200);
    assert.match(p.text, /\r\nTotal,0,45000,0,0,0,45000\r\n\r\nOnly amounts in JPY are counted: postings in USD \([^\r\n]*\r\n$/, 'yen have no minor unit: ¥45,000; the note on the other currency follows, as on the page');
    p = await admin.get('/ledger/reports/aged-debtors?to=2026-03-31&currency=EUR');
    assert.equal(p.status, 422);
    assert.match(p.text, /data-error-for="currency"[^>]*>has no amounts in the books \(they hold JPY, USD\)/);
    await t.user('billing');
    const auth = { authorization: `Bearer ${await t.token('billing@firm.test')}` };
    const api = t.browser();
    let r = await api.request('GET', '/api/v1/reports/aged-debtors?to=2026-03-31&currency=JPY', { headers: auth });
    assert.equal(r.status, 200);
    assert.equal(r.json().currency, 'JPY');
    assert.equal(r.json().totals.total, '45000');
    r = await api.request('GET', '/api/v1/reports/aged-debtors?to=2026-03-31&currency=jpy', { headers: auth });
    assert.equal(r.status, 422);
    assert.deepEqual(Object.keys(r.json().error.fields), ['currency']);
  });
});
