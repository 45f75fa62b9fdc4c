/**
 * The ledger's reports at a date, on both databases, with bills made by the real matters and
 * billing commands: the debtor statement and breakdown say what was owed AS AT their date and
 * agree with the aged debtors and the trial balance's debtors for it; the client filter applies
 * where a report can take one and is refused (naming `client`) where the report is firm-wide;
 * the GL detail lists every account with a balance, with its opening and closing balances;
 * money in messages is money ("$12.34"), never minor units.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { ReportParamError } from '../../src/modules/ledger/index.ts';
import type { LedgerSetup } from './support.ts';
import { assertLedgerInvariants, ctx, firm, refused, setup, setupWithApprovedBill, work } from './support.ts';

async function twoClients(s: LedgerSetup) {
  const t = await firm(s.cmds);
  await work(s.cmds, t.matter.id, t);
  const client2 = await s.cmds.createClient(ctx, { name: 'Contoso Shipping Ltd', email: 'ap@contoso.example' });
  const matter2 = await s.cmds.openMatter(ctx, { clientId: client2.id, name: 'Contoso charter dispute', responsibleTimekeeperId: t.partner.id, openedOn: '2025-06-01' });
  await s.cmds.recordTimeEntry(ctx, { matterId: matter2.id, timekeeperId: t.partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice' });
  await s.drain();
  // Bill A, 28 Feb, for the first client; 200.00 received on 5 March.
  const a = await s.billing.createDraft(ctx, { matterId: t.matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' });
  const billA = await s.billing.approve(ctx, a.billId);
  await s.drain();
  await s.ledger.recordReceipt(ctx, { billId: billA.billId, receivedOn: '2026-03-05', amountMinor: 20_000 });
  // Bill B, 20 March, for the second client; paid in full on 25 March with 50.00 over (credit).
  s.clock.set('2026-03-25T09:00:00Z');
  const b = await s.billing.createDraft(ctx, { matterId: matter2.id, invoiceDate: '2026-03-20', upTo: '2026-03-20' });
  const billB = await s.billing.approve(ctx, b.billId);
  await s.drain();
  await s.ledger.recordReceipt(ctx, { billId: billB.billId, receivedOn: '2026-03-25', amountMinor: billB.totals.totalMinor + 5_000 });
  return { ...t, client2, matter2, billA, billB };
}

async function debtorsFigures(s: LedgerSetup, to: string) {
  const tb = await s.reports.run('trial-balance', { to });
  const aged = await s.reports.run('aged-debtors', { to });
  return { trialBalance: Number(tb.rows.find((r) => r.code === '1100')?.debit ?? 0), aged: Number(aged.totals!.total) };
}

eachDialect('debtor statement and breakdown are as at their date and agree with aged debtors and the trial balance', async (db) => {
  const s = await setup(db);
  const f = await twoClients(s);
  const totalA = f.billA.totals.totalMinor;

  // 1 March: bill A was owed in full; bill B (20 March) did not exist; no credit was held.
  let st = await s.reports.run('debtor-statement', { to: '2026-03-01' });
  assert.deepEqual(st.rows.map((r) => [r.file, r.bills, r.outstanding]), [['1.1', '1.1.1', totalA]]);
  assert.equal(st.totals!.outstanding, totalA);
  assert.deepEqual(st.notes, []);
  let br = await s.reports.run('debtor-breakdown', { to: '2026-03-01' });
  assert.deepEqual(br.rows.map((r) => [r.bill, r.total, r.received, r.outstanding]), [['1.1.1', totalA, 0, totalA]]);
  assert.deepEqual(await debtorsFigures(s, '2026-03-01'), { trialBalance: totalA, aged: totalA });

  // 10 March: the receipt of 5 March counts; B still not invoiced.
  st = await s.reports.run('debtor-statement', { to: '2026-03-10' });
  assert.deepEqual(st.rows.map((r) => [r.file, r.outstanding]), [['1.1', totalA - 20_000]]);
  br = await s.reports.run('debtor-breakdown', { to: '2026-03-10' });
  assert.deepEqual(br.rows.map((r) => [r.bill, r.received, r.outstanding]), [['1.1.1', 20_000, totalA - 20_000]]);
  assert.deepEqual(await debtorsFigures(s, '2026-03-10'), { trialBalance: totalA - 20_000, aged: totalA - 20_000 });

  // 22 March: B was invoiced and not yet paid.
  st = await s.reports.run('debtor-statement', { to: '2026-03-22' });
  assert.deepEqual(st.rows.map((r) => [r.file, r.outstanding]), [['1.1', totalA - 20_000], ['2.1', f.billB.totals.totalMinor]]);
  const owed22 = totalA - 20_000 + f.billB.totals.totalMinor;
  assert.equal(st.totals!.outstanding, owed22);
  assert.deepEqual(await debtorsFigures(s, '2026-03-22'), { trialBalance: owed22, aged: owed22 });
  // For one client only, the same figures.
  st = await s.reports.run('debtor-statement', { to: '2026-03-22', clientId: f.client2.id });
  assert.deepEqual(st.rows.map((r) => [r.file, r.outstanding]), [['2.1', f.billB.totals.totalMinor]]);

  // 31 March: B paid with 50.00 over, held as credit by the second client only.
  st = await s.reports.run('debtor-statement', { to: '2026-03-31' });
  assert.deepEqual(st.rows.map((r) => [r.file, r.outstanding]), [['1.1', totalA - 20_000]]);
  assert.deepEqual(st.notes, ['Unallocated credit held: 50.00 (to be applied to the balances above)']);
  assert.deepEqual((await s.reports.run('debtor-statement', { to: '2026-03-31', clientId: f.client.id })).notes, []);
  // The second client owes nothing and holds the credit: said as such, not "to be applied to the balances above" (review 62 F9).
  assert.deepEqual((await s.reports.run('debtor-statement', { to: '2026-03-31', clientId: f.client2.id })).notes, ['Unallocated credit held: 50.00 (nothing is owing: the client is in credit)']);
  assert.deepEqual((await s.reports.run('debtor-statement', { to: '2026-03-24', clientId: f.client2.id })).notes, [], 'no credit before the overpayment');
  assert.deepEqual(await debtorsFigures(s, '2026-03-31'), { trialBalance: totalA - 20_000, aged: totalA - 20_000 });
  await assertLedgerInvariants(db.db, { billing: true });
});

eachDialect('client filter: debtors, fee and WIP reports take one; the trial balance and GL detail refuse it, naming client', async (db) => {
  const s = await setup(db);
  const f = await twoClients(s);
  for (const name of ['trial-balance', 'gl-detail'] as const) {
    await assert.rejects(s.reports.run(name, { to: '2026-03-31', clientId: f.client.id }), (e: unknown) => {
      assert.ok(e instanceof ReportParamError);
      assert.deepEqual(Object.keys(e.fields), ['client']);
      assert.match(e.fields.client!, /covers the whole firm/);
      return true;
    });
  }
  // Fee allocation for one client: only the fees billed to that client.
  const all = await s.reports.run('fee-allocation', { from: '2026-01-01', to: '2026-03-31' });
  const first = await s.reports.run('fee-allocation', { from: '2026-01-01', to: '2026-03-31', clientId: f.client.id });
  const second = await s.reports.run('fee-allocation', { from: '2026-01-01', to: '2026-03-31', clientId: f.client2.id });
  const view = (r: typeof all) => r.rows.map((x) => [x.period, x.timekeeper, x.earned]);
  assert.deepEqual(view(first), [['2026-02', 'JS Jonah Stern', 30_000], ['2026-02', 'MH Margaret Holloway', 60_000]]);
  assert.deepEqual(view(second), [['2026-03', 'MH Margaret Holloway', 30_000]]);
  assert.equal(Number(all.totals!.earned), Number(first.totals!.earned) + Number(second.totals!.earned));
});

eachDialect('GL detail: every account with an opening balance is listed with it and its closing balance, even with no lines in the range', async (db) => {
  const s = await setup(db);
  const f = await twoClients(s);
  const totalA = f.billA.totals.totalMinor;
  // April has no activity at all: every account with a balance still shows, opening = closing.
  const net = (r: Record<string, unknown>) => Number(r.debit) - Number(r.credit);
  const byCode = (a: Record<string, unknown>, b: Record<string, unknown>) => (String(a.code) < String(b.code) ? -1 : 1);
  const tb = (await s.reports.run('trial-balance', { to: '2026-03-31' })).rows.filter((r) => net(r) !== 0).sort(byCode);
  assert.ok(tb.length >= 5);
  const april = await s.reports.run('gl-detail', { from: '2026-04-01', to: '2026-04-30' });
  assert.deepEqual(april.rows.map((r) => [r.code, r.memo, r.balance]), tb.flatMap((r) => [[r.code, 'Opening balance', net(r)], [r.code, 'Closing balance', net(r)]]));
  // March: the fee accounts (posted in February, nothing in March) keep their opening balances.
  const march = await s.reports.run('gl-detail', { from: '2026-03-01', to: '2026-03-31' });
  assert.deepEqual(march.rows.filter((r) => r.code === '4000.002').map((r) => [r.date, r.memo, r.balance]), [['2026-03-01', 'Opening balance', -30_000], ['2026-03-31', 'Closing balance', -30_000]]);
  assert.deepEqual(march.rows.filter((r) => r.code === '1100').map((r) => [r.memo, r.debit, r.credit, r.balance]).slice(0, 2), [['Opening balance', null, null, totalA], ['Bill 1.1.1: receipt R000001', null, 20_000, totalA - 20_000]]);
  const closing = march.rows.filter((r) => r.memo === 'Closing balance' && r.balance !== 0);
  assert.deepEqual(closing.map((r) => [r.code, r.balance]), tb.map((r) => [r.code, net(r)]), 'closing balances are the trial balance at the end date');
});

eachDialect('GL detail: a day\'s lines run in the order they were posted, not by journal number (review 53 L1)', async (db) => {
  const { s, f, bill } = await setupWithApprovedBill(db);
  // 10 March: a payment on account (RJ000001 puts 300.00 of credit in 2100), then, later that day, its credit pays
  // the bill (AJ000001 takes it out). AJ numbers before RJ, but it was posted after.
  s.clock.set('2026-03-10T09:00:00Z');
  const r = await s.ledger.recordReceipt(ctx, { clientId: f.client.id, receivedOn: '2026-03-10', amountMinor: 30_000, order: 'on_account' });
  assert.equal(r.receipt.unallocatedMinor, 30_000);
  s.clock.set('2026-03-10T15:00:00Z');
  await s.ledger.allocateCredit(ctx, { receiptId: r.receipt.id, billId: bill.billId, on: '2026-03-10' });
  const gl = await s.reports.run('gl-detail', { from: '2026-03-10', to: '2026-03-10' });
  const of = (code: string) => gl.rows.filter((x) => x.code === code).map((x) => [x.journal, x.debit, x.credit, x.balance]);
  // The credit is there before it is used: the liability never shows a debit balance.
  assert.deepEqual(of('2100'), [['', null, null, 0], ['RJ000001', null, 30_000, -30_000], ['AJ000001', 30_000, null, 0], ['', null, null, 0]]);
  assert.deepEqual(of('1100').map((x) => x[0]), ['', 'AJ000001', '']);
  // Posted the other way round on another day (the allocation of older credit first), they list that way round.
  s.clock.set('2026-03-12T09:00:00Z');
  const older = await s.ledger.recordReceipt(ctx, { clientId: f.client.id, receivedOn: '2026-03-11', amountMinor: 1_000, order: 'on_account' });
  await s.ledger.allocateCredit(ctx, { receiptId: older.receipt.id, billId: bill.billId, on: '2026-03-12' });
  s.clock.set('2026-03-12T10:00:00Z');
  await s.ledger.recordReceipt(ctx, { clientId: f.client.id, receivedOn: '2026-03-12', amountMinor: 2_000, order: 'on_account' });
  const gl12 = await s.reports.run('gl-detail', { from: '2026-03-12', to: '2026-03-12' });
  assert.deepEqual(gl12.rows.filter((x) => x.code === '2100').map((x) => [x.journal, x.balance]), [['', -1_000], ['AJ000002', 0], ['RJ000003', -2_000], ['', -2_000]]);
  await assertLedgerInvariants(db.db, { billing: true });
});

eachDialect('a bill reverted, changed and approved again: an earlier date\'s (a closed month\'s) debtors reports age and describe the posting that stood then (review 62 F1, F2)', async (db) => {
  const { s, bill } = await setupWithApprovedBill(db);
  // 1.1.1: 28 February, its whole total owing. February and March are closed; on 10 April it is reverted (undone on
  // 1 April, the first open day), given a 500.00 credit line and a new date (5 April), and approved again.
  const total = bill.totals.totalMinor;
  const asAt = async (to: string) => {
    const aged = await s.reports.run('aged-debtors', { to });
    const st = await s.reports.run('debtor-statement', { to });
    const br = await s.reports.run('debtor-breakdown', { to });
    const row = br.rows[0]!;
    return {
      aged: aged.rows.map((r) => [r.current, r.d30, r.d60, r.total]), oldest: st.rows.map((r) => r.oldest),
      breakdown: br.rows.map((r) => [r.bill, r.date, r.products, r.disbursements, r.interest, r.other, r.total, r.outstanding]),
      adds: br.rows.length === 0 || Number(row.products) + Number(row.disbursements) + Number(row.interest) + Number(row.other) === Number(row.total),
    };
  };
  const before = { march31: await asAt('2026-03-31'), feb28: await asAt('2026-02-28') };
  assert.deepEqual(before.march31.aged, [[0, total, 0, total]], '30 days old on 31 March');
  assert.deepEqual(before.march31.oldest, ['2026-02-28']);
  assert.ok(before.march31.adds);
  s.clock.set('2026-04-10T09:00:00Z');
  await s.ledger.setPeriod(ctx, { period: '2026-02', status: 'closed' });
  await s.ledger.setPeriod(ctx, { period: '2026-03', status: 'closed' });
  const reverted = await s.billing.revert(ctx, bill.billId);
  await s.drain();
  await s.billing.updateDraft(ctx, bill.billId, {
    invoiceDate: '2026-04-05', upTo: '2026-02-28', request: { ...reverted.request, adHoc: [{ kind: 'fee', description: 'Courtesy credit', amountMinor: -50_000, taxCode: null, timekeeperId: null }] },
  });
  const again = await s.billing.approve(ctx, bill.billId);
  await s.drain();
  assert.ok(again.totals.totalMinor < total && again.invoiceDate === '2026-04-05');
  // Before the re-approval's day nothing changed: the same ages, dates and parts, and the breakdown row adds up.
  assert.deepEqual(await asAt('2026-03-31'), before.march31);
  assert.deepEqual(await asAt('2026-02-28'), before.feb28);
  // From it, the new posting: its date, its parts.
  const april = await asAt('2026-04-30');
  assert.deepEqual(april.oldest, ['2026-04-05']);
  assert.deepEqual(april.aged, [[again.totals.totalMinor, 0, 0, again.totals.totalMinor]]);
  assert.equal(april.breakdown[0]![1], '2026-04-05');
  assert.ok(april.adds, 'the new posting\'s parts add up to its total');
  await assertLedgerInvariants(db.db, { billing: true });
});

eachDialect('money in messages is money: write-off refusals and an out-of-balance trial balance', async (db) => {
  const { s, bill } = await setupWithApprovedBill(db);
  await s.ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-03-05', amountMinor: bill.totals.totalMinor - 300 });
  let e = await refused(s.ledger.writeOff(ctx, { billId: bill.billId, amountMinor: 301, on: '2026-03-11' }), 409);
  assert.equal(e.message, 'Only $3.00 is outstanding on bill 1.1.1');
  await s.ledger.setWriteOffLimit(ctx, 200);
  e = await refused(s.ledger.writeOff(ctx, { billId: bill.billId, on: '2026-03-11' }), 409);
  assert.equal(e.message, 'Write-offs are limited to small balances (at most $2.00 per bill); this is $3.00');
  e = await refused(s.ledger.writeOffSmallBalances(ctx, { maxMinor: 5_000, on: '2026-03-11' }), 409);
  assert.equal(e.message, 'Write-offs are limited to $2.00 per bill');

  // A balanced journal whose two lines fall either side of the report date: the trial balance
  // at that date is out of balance, and says by how much in money.
  await db.db.transaction().execute(async (trx) => {
    await trx.insertInto('ledger_journal').values({
      id: 'j-split', number: 'XX000001', prefix: 'RJ', source_key: 'test:split', source_type: 'test', date: '2026-03-20', period: '2026-03', memo: 'split', note: null,
      currency: 'USD', total_debit_minor: 1_234, total_credit_minor: 1_234, bill_id: null, receipt_id: null, client_id: null, matter_id: null,
      reverses_journal_id: null, event_id: null, posted_at: '2026-03-20T09:00:00Z', posted_by: 'test',
    }).execute();
    await trx.insertInto('ledger_journal_line').values([
      { journal_id: 'j-split', line_no: 1, account_id: 'acct-1000', debit_minor: 1_234, credit_minor: 0, date: '2026-03-20', memo: 'x', bill_id: null, client_id: null, matter_id: null, timekeeper_id: null },
      { journal_id: 'j-split', line_no: 2, account_id: 'acct-2100', debit_minor: 0, credit_minor: 1_234, date: '2026-04-20', memo: 'x', bill_id: null, client_id: null, matter_id: null, timekeeper_id: null },
    ]).execute();
  });
  const tb = await s.reports.run('trial-balance', { to: '2026-03-31' });
  assert.deepEqual(tb.notes, ['OUT OF BALANCE by $12.34']);
});

eachDialect('aged debtors lists clients by client number (2 before 10), on the page\'s rows and in the same order as the CSV takes them', async (db) => {
  const s = await setup(db);
  const t = await firm(s.cmds);
  // Clients 2 to 11 (client 1 is the firm's first), each with one bill: numbers that sort differently as text.
  for (let i = 2; i <= 11; i++) {
    const client = await s.cmds.createClient(ctx, { name: `Client ${i}`, email: `ap${i}@example.test` });
    const matter = await s.cmds.openMatter(ctx, { clientId: client.id, name: `Matter ${i}`, responsibleTimekeeperId: t.partner.id, openedOn: '2025-06-01' });
    await s.cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: t.partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice' });
    await s.drain();
    await s.billing.approve(ctx, (await s.billing.createDraft(ctx, { matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' })).billId);
  }
  await s.drain();
  const aged = await s.reports.run('aged-debtors', { to: '2026-03-31' });
  const numbers = aged.rows.map((r) => Number(String(r.client).split(' ')[0]));
  assert.deepEqual(numbers, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
});

eachDialect('a report read while receipts are posted agrees with itself: GL detail\'s running balances reach its closing balances (review 62 F12)', async (db) => {
  const { s, f, bill } = await setupWithApprovedBill(db);
  s.clock.set('2026-03-20T09:00:00Z');
  let posting = true;
  const writer = (async () => {
    for (let i = 0; posting && i < 200; i++) {
      await s.ledger.recordReceipt(ctx, { clientId: f.client.id, receivedOn: '2026-03-10', amountMinor: 100 + i, order: 'on_account' });
    }
  })();
  let reads = 0;
  try {
    for (; reads < 40; reads++) {
      const gl = await s.reports.run('gl-detail', { from: '2026-03-01', to: '2026-03-31' });
      for (const code of new Set(gl.rows.map((r) => String(r.code)))) {
        const rows = gl.rows.filter((r) => r.code === code);
        assert.equal(rows.at(-2)!.balance, rows.at(-1)!.balance, `read ${reads}, account ${code}: the last line's running balance is the closing balance`);
      }
      await new Promise((r) => setImmediate(r));
    }
  } finally {
    posting = false;
    await writer;
  }
  assert.ok(bill.totals.totalMinor > 0 && reads === 40);
});
