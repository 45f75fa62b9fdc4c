/**
 * The ledger's pages, JSON API and CLI on both databases: the "Create payment" page for a bill
 * (Bill Production links to /ledger/receipts/new?bill=ID), field errors and refusals, roles and
 * CSRF, the periods and chart pages, reports as pages (server-rendered SVG charts), CSV and
 * PDF (real Chromium, read back with pdftotext), the API, and `bin/lexbill report`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { buildRuntime } from '../../src/main.ts';
import { manualClock } from '../../src/shared/clock.ts';
import { toDecimalString } from '../../src/shared/money.ts';
import { pdfText } from '../adapters/pdf.ts';
import { unescapeHtml, withApp } from '../support/app.ts';
import { DIALECTS, eachDialect, freshDatabase } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { approvedBill } from './support.ts';

eachDialect('pages: create payment for a bill, errors, roles, periods, chart, reports with CSV and PDF; the JSON API', async (db) => {
  await withApp(db, async (t) => {
    try {
      const { f, bill, billing } = await approvedBill({ db: db.db, clock: t.clock, relay: t.runtime.relay });
      await t.user('admin');
      await t.user('readonly');
      const admin = t.browser();
      await admin.login('admin@firm.test');

      let p = await admin.get('/ledger');
      assert.equal(p.status, 200);
      assert.match(p.text, /Debtors control/);
      assert.ok(p.text.includes(`data-minor="${bill.totals.totalMinor}"`), 'debtors control shows the bill');

      // Bill Production's "Create payment".
      p = await admin.get(`/ledger/receipts/new?bill=${bill.billId}`);
      assert.equal(p.status, 200);
      assert.match(p.text, /Against bill <a[^>]*><strong>1\.1\.1<\/strong>/);
      p = await admin.post('/ledger/receipts', { bill: bill.billId, client: f.client.id, receivedOn: '2026-03-05', amount: '12.345', order: 'this_bill_first', discount: 'auto' });
      assert.equal(p.status, 422);
      assert.match(p.text, /data-error-for="amount"/);
      assert.equal(await db.db.selectFrom('ledger_receipt').select('id').execute().then((r) => r.length), 0, 'a refused form changes nothing');
      p = await admin.post('/ledger/receipts', { bill: bill.billId, client: f.client.id, receivedOn: '2026-03-05', amount: '100.00', order: 'this_bill_first', discount: 'auto' }, { csrf: false });
      assert.equal(p.status, 403);
      p = await admin.post('/ledger/receipts', { bill: bill.billId, client: f.client.id, receivedOn: '2026-03-05', amount: '100.00', order: 'this_bill_first', discount: 'auto', method: 'cheque', reference: 'CHQ 0042' });
      assert.equal(p.status, 303);
      // Dated after today: the receipt's page says so (review 53, L4: the warning was dropped).
      assert.match(p.location!, /^\/ledger\/receipts\/[0-9a-f-]{36}\?done=[\w-]{16}$/, 'its notes kept under ?done=KEY, for any server process');
      p = await admin.get(p.location!);
      assert.match(p.text, /Receipt R000001/);
      assert.match(p.text, /data-notice>Dated 2026-03-05, after today/);
      assert.match(p.text, /CHQ 0042/);
      p = await admin.get(`/ledger/bills/${bill.billId}`);
      assert.ok(p.text.includes(`id="outstanding" data-minor="${bill.totals.totalMinor - 10_000}"`));
      // The overview is as at today (2 March), as the reports are by default: the receipt dated 5 March
      // is named as a later posting, not counted yet.
      p = await admin.get('/ledger');
      assert.match(p.text, /As at today, 2026-03-02/);
      assert.ok(p.text.includes(`<td class="num" data-minor="${bill.totals.totalMinor}">`), 'debtors as at today: the bill, not yet the later receipt');
      assert.ok(p.text.includes('data-later-minor="-10000"'));

      // Periods: close February; a receipt dated in it is refused with the reason.
      p = await admin.get('/ledger/periods');
      assert.equal(p.status, 200);
      p = await admin.post('/ledger/periods', { period: '2026-02', action: 'close' });
      assert.equal(p.status, 303);
      await admin.get(`/ledger/receipts/new?bill=${bill.billId}`);
      p = await admin.post('/ledger/receipts', { bill: bill.billId, client: f.client.id, receivedOn: '2026-02-20', amount: '1.00', order: 'this_bill_first', confirm: 'on' });
      assert.equal(p.status, 409);
      assert.match(unescapeHtml(p.text), /The accounting period 2026-02 is closed/);

      // The chart of accounts: the timekeepers' sub-accounts are there; an admin renames one.
      p = await admin.get('/ledger/accounts');
      assert.match(p.text, /4000\.001/);
      assert.match(p.text, /Professional fees: MH Margaret Holloway/);
      p = await admin.post('/ledger/accounts/acct-1000', { name: 'Operating account', code: '1000' });
      assert.equal(p.status, 303);
      assert.match((await admin.get('/ledger/accounts')).text, /Operating account/);
      // Loose input is refused naming the field, and changes nothing: a blank name, an active that is neither yes nor no,
      // an empty form. Saving the row as it is writes no audit row.
      const account = async () => db.db.selectFrom('ledger_account').select(['code', 'name', 'active']).where('id', '=', 'acct-1000').executeTakeFirstOrThrow();
      const audits = async () => (await db.db.selectFrom('audit_log').select('id').where('action', '=', 'ledger.account_changed').execute()).length;
      const kept = { account: await account(), audits: await audits() };
      for (const [form, field] of [[{ name: '   ', code: '1000', active: 'yes' }, 'name'], [{ active: 'maybe' }, 'active'], [{ active: 'x'.repeat(100_000) }, 'active'], [{}, 'name']] as const) {
        p = await admin.post('/ledger/accounts/acct-1000', form);
        assert.equal(p.status, 422, JSON.stringify(form).slice(0, 80));
        assert.match(p.text, new RegExp(`data-error-for="${field}"|${field === 'name' ? 'Name' : 'Active'}`), JSON.stringify(form).slice(0, 80));
      }
      p = await admin.post('/ledger/accounts/acct-1000', { code: String(kept.account.code), name: String(kept.account.name), active: 'yes' });
      assert.equal(p.status, 303);
      assert.deepEqual({ account: await account(), audits: await audits() }, kept, 'nothing changed, nothing audited');

      // Reports: page with its SVG chart, CSV, PDF.
      p = await admin.get('/ledger/reports/aged-debtors?to=2026-03-31');
      assert.equal(p.status, 200);
      assert.match(p.text, /<svg[^>]*role="img"/);
      assert.match(p.text, /Northwind Logistics Inc\./);
      p = await admin.get('/ledger/reports/trial-balance?to=2026-03-31&format=csv');
      assert.equal(p.status, 200);
      assert.match(p.headers.get('content-type')!, /text\/csv/);
      const csv = p.text.trim().split('\r\n');
      assert.equal(csv[0], 'Code,Account,Type,Debit,Credit');
      const totals = csv.at(-1)!.split(',');
      assert.equal(totals[3], totals[4], 'the CSV totals balance');
      assert.ok(csv.includes(`1100,Debtors control,asset,${toDecimalString(bill.totals.totalMinor - 10_000, 'USD')},0.00`));
      p = await admin.get('/ledger/reports/bogus');
      assert.equal(p.status, 404);
      p = await admin.get('/ledger/reports/trial-balance?to=2026-13-01');
      assert.equal(p.status, 422);
      const pdf = await admin.request('GET', '/ledger/reports/debtor-statement?format=pdf');
      assert.equal(pdf.status, 200);
      assert.equal(pdf.headers.get('content-type'), 'application/pdf');
      const res = await t.app.request('http://lexbill.test/ledger/reports/debtor-statement?format=pdf', { headers: { cookie: [...admin.cookies].map(([k, v]) => `${k}=${v}`).join('; '), 'x-forwarded-for': admin.ip } });
      const text = pdfText(new Uint8Array(await res.arrayBuffer()));
      assert.match(text, /Debtor statement/);
      assert.match(text, /Total payable/);

      // Every page and report renders.
      const journal = await db.db.selectFrom('ledger_journal').select('id').orderBy('number').executeTakeFirstOrThrow();
      for (const path of ['/ledger/journals', '/ledger/journals?prefix=BJ', `/ledger/journals/${journal.id}`, '/ledger/receipts', `/ledger/clients/${f.client.id}`, '/ledger/reports',
        '/ledger/reports/trial-balance', '/ledger/reports/gl-detail?from=2026-02-01&to=2026-03-31', '/ledger/reports/debtor-statement?client=' + f.client.id,
        '/ledger/reports/debtor-breakdown', '/ledger/reports/fee-allocation', '/ledger/reports/wip-by-timekeeper', '/ledger/receipts/new', `/ledger/receipts/new?client=${f.client.id}`]) {
        const page = await admin.get(path);
        assert.equal(page.status, 200, `${path}: ${page.text.slice(0, 300)}`);
      }
      p = await admin.get(`/ledger/journals/${journal.id}`);
      assert.match(p.text, /BJ000001/);
      assert.match(p.text, /Dated 2026-02-28|Outside the current period/);
      // Two bills selected in Bill Production: the receipt is for the first, and the page says so.
      p = await admin.get(`/ledger/receipts/new?bill=${bill.billId}&bill=${bill.billId}`);
      assert.match(p.text, /2 bills were selected/);
      // Releasing an allocation puts its money back on the receipt's credit, to allocate again.
      const receiptRow = await db.db.selectFrom('ledger_receipt').select('id').executeTakeFirstOrThrow();
      const alloc = await db.db.selectFrom('ledger_allocation').select('id').where('receipt_id', '=', receiptRow.id).executeTakeFirstOrThrow();
      await admin.get(`/ledger/receipts/${receiptRow.id}`);
      p = await admin.post(`/ledger/allocations/${alloc.id}/release`, {});
      assert.equal(p.status, 303);
      p = await admin.get(`/ledger/receipts/${receiptRow.id}`);
      assert.match(p.text, /id="unallocated">\$100\.00/);
      p = await admin.post(`/ledger/receipts/${receiptRow.id}/allocate`, { bill: bill.billId, on: '2026-03-06' });
      assert.equal(p.status, 303);

      // Read-only staff read, never write.
      const ro = t.browser();
      await ro.login('readonly@firm.test');
      assert.equal((await ro.get('/ledger/reports/wip-by-timekeeper')).status, 200);
      assert.equal((await ro.get(`/ledger/receipts/new?bill=${bill.billId}`)).status, 403);
      assert.equal((await ro.post('/ledger/periods', { period: '2026-01', action: 'close' })).status, 403);

      // The JSON API.
      await t.user('billing');
      const token = await t.token('billing@firm.test');
      const api = t.browser();
      const auth = { authorization: `Bearer ${token}` };
      let r = await api.postJson('/api/v1/receipts', { billId: bill.billId, receivedOn: '2026-03-06', amount: 'ten' }, { headers: auth });
      assert.equal(r.status, 422);
      assert.ok(r.json().error.fields.amount);
      r = await api.postJson('/api/v1/receipts', { billId: bill.billId, receivedOn: '2026-03-06', amount: '50.00', order: 'this_bill_only' }, { headers: auth });
      assert.equal(r.status, 201, r.text);
      assert.deepEqual(r.json().allocations.map((a: { amount: string }) => a.amount), ['50.00']);
      r = await api.request('GET', `/api/v1/ledger/bills/${bill.billId}`, { headers: auth });
      assert.equal(r.json().outstanding, toDecimalString(bill.totals.totalMinor - 15_000, 'USD'));
      r = await api.request('GET', '/api/v1/reports/trial-balance?to=2026-03-31', { headers: auth });
      assert.equal(r.status, 200);
      assert.equal(r.json().totals.debit, r.json().totals.credit);
      r = await api.request('GET', '/api/openapi.json', { headers: auth });
      assert.ok(r.json().paths['/api/v1/receipts'].post, 'documented in OpenAPI');
    } finally {
      await t.runtime.outputs.close();
    }
  });
}, { timeout: 180_000 });

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'lexbill');

for (const dialect of DIALECTS) {
  test(`bin/lexbill report NAME --format csv [${dialect}]`, { timeout: 180_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lexbill-ledger-cli-'));
    // Made inside the try: the folder goes even when the database cannot be made.
    let db: TestDb | undefined;
    try {
      db = await freshDatabase(dialect, { file: join(dir, 'cli.db') });
      const clock = manualClock('2026-03-02T09:00:00Z');
      const rt = await buildRuntime(db, { clock, logger: pino({ level: 'silent' }) });
      const { bill } = await approvedBill({ db: db.db, clock, relay: rt.relay });
      await rt.relay.stop();
      await rt.outputs.close();
      const url = db.url;
      const run = (args: string[]) => spawnSync(BIN, args, { cwd: dir, encoding: 'utf8', env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'silent' } });
      let r = run(['report', 'trial-balance', '--to', '2026-03-31', '--format', 'csv']);
      assert.equal(r.status, 0, r.stderr);
      const lines = r.stdout.trim().split('\r\n');
      assert.equal(lines[0], 'Code,Account,Type,Debit,Credit');
      assert.ok(lines.includes(`1100,Debtors control,asset,${toDecimalString(bill.totals.totalMinor, 'USD')},0.00`), r.stdout);
      r = run(['report', 'aged-debtors', '--to', '2026-03-31']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^Client,Current,30 days,60 days,90 days,120\+ days,Total\r\n/);
      // --client as the pages take it: the client's number or name (or id); one that matches no client is refused, never an empty report.
      const client = await db.db.selectFrom('ledger_client').select(['id', 'client_number', 'name']).where('id', '=', bill.clientId).executeTakeFirstOrThrow();
      const owing = `${toDecimalString(bill.totals.totalMinor, 'USD')}\r\n`;
      for (const typed of [String(client.client_number), String(client.name).toUpperCase(), String(client.id)]) {
        r = run(['report', 'debtor-breakdown', '--to', '2026-03-31', '--client', typed, '--format', 'csv']);
        assert.equal(r.status, 0, `${typed}: ${r.stderr}`);
        assert.ok(r.stdout.includes(`,${bill.number},`) && r.stdout.endsWith(owing), `${typed}: ${r.stdout}`);
      }
      r = run(['report', 'aged-debtors', '--to', '2026-02-30', '--client', '999999']);
      assert.equal(r.status, 2, r.stdout);
      assert.match(r.stderr, /--client .*999999/, 'the client not found is named');
      assert.match(r.stderr, /--to /, 'with the other bad parameter');
      assert.equal(r.stdout, '');
      r = run(['report', 'trial-balance', '--to', '2026-03-31', '--client', String(client.client_number)]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /--client is not a filter of the trial balance/);
      r = run(['report', 'nonsense']);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /report needs one NAME/);
      r = run(['report', 'gl-detail', '--from', '2026-04-01', '--to', '2026-03-01']);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /--from must be on or before to/);
      r = run(['--help']);
      assert.match(r.stdout, /report NAME \[--from D\] \[--to D\]/);
    } finally {
      await db?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
