/**
 * Audit of export requests and the e-billing pages: the export form carries a request id, so
 * posting it twice (a double click, Reload) keeps one file; a request id is one export (the
 * same id for other bills or another format is a 409 naming requestId that writes nothing,
 * and two posts racing on one id make one file); the validate page reports a file whose
 * INVOICE_CURRENCY is no ISO code instead of failing (500).
 */
import assert from 'node:assert/strict';
import { createEbillingCommands } from '../../src/modules/ebilling/index.ts';
import { buildInvoice, writeLedes } from '../../src/modules/ebilling/domain/export.ts';
import { COLUMNS } from '../../src/modules/ebilling/domain/format.ts';
import { HttpError } from '../../src/shared/web/errors.ts';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { withApp } from '../support/app.ts';
import type { Browser, Page } from '../support/app.ts';
import { ctx, firm, setup } from '../billing/support.ts';
import { approvedEbilledBill, bill, codes, facts, line, settings } from './support.ts';

function postForm(b: Browser, path: string, pairs: [string, string][]): Promise<Page> {
  const body = new URLSearchParams(pairs);
  if (b.csrf) body.set('_csrf', b.csrf);
  return b.request('POST', path, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: body.toString() });
}

const count = async (db: TestDb, table: string, where?: [string, string]) => {
  let q = db.db.selectFrom(table).select((eb: any) => eb.fn.countAll().as('n'));
  if (where) q = q.where(where[0] as never, '=', where[1] as never);
  return Number((await q.executeTakeFirstOrThrow() as { n: number | string }).n);
};
const written = async (db: TestDb) => ({
  exports: await count(db, 'ebilling_export'), audit: await count(db, 'audit_log', ['action', 'ebilling.file_exported']), events: await count(db, 'outbox', ['type', 'ebilling.file_exported']),
});

/** Two matters e-billed in LEDES 1998B, each with an approved bill of an hour's coded time. */
async function twoBills(db: TestDb) {
  const s = await setup(db);
  const { partner, client, matter } = await firm(s.cmds);
  const other = await s.cmds.openMatter(ctx, { clientId: client.id, name: 'Second matter', responsibleTimekeeperId: partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH' });
  const E = createEbillingCommands({ db: db.db, clock: s.clock, relay: s.rt.relay });
  await E.saveSettings(ctx, settings(), 0);
  const bills = [];
  for (const [m, cm] of [[matter.id, 'NW-M-77'], [other.id, 'NW-M-78']] as const) {
    await s.cmds.setBillingOptions(ctx, m, { set: { ebilling: { enabled: true, codeSet: 'litigation', format: 'LEDES1998B', clientLedesId: 'NW-001', matterLedesId: cm } } });
    await s.cmds.recordTimeEntry(ctx, { matterId: m, timekeeperId: partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice', taskCode: 'L110', activityCode: 'A101' });
    await s.drain();
    bills.push(await s.billing.approve(ctx, (await s.billing.createDraft(ctx, { matterId: m, invoiceDate: '2026-02-28', upTo: '2026-02-28' })).billId));
  }
  await s.drain();
  return { E, a: bills[0]!, b: bills[1]! };
}

eachDialect('a request id is one export: the same id for other bills, another format or another mode is a 409 naming requestId, nothing written', async (db) => {
  const { E, a, b } = await twoBills(db);
  const requestId = '01937a4e-0000-7000-8000-0000000000a1';
  const first = await E.exportBills(ctx, { billIds: [a.billId], format: 'LEDES1998B', mode: 'single', requestId });
  assert.equal(first.replayed, false);
  const before = await written(db);
  assert.deepEqual(before, { exports: 1, audit: 1, events: 1 });
  // The same request again: the same file.
  const again = await E.exportBills(ctx, { billIds: [a.billId], format: 'LEDES1998B', mode: 'single', requestId });
  assert.equal(again.replayed, true);
  assert.deepEqual(again.files.map((f) => [f.id, f.content]), first.files.map((f) => [f.id, f.content]));
  // Not the same request: refused by its field, never another request's files handed back as these bills'.
  for (const [name, req] of [
    ['other bills', { billIds: [b.billId], format: 'LEDES1998B' as const, mode: 'single' as const }],
    ['more bills', { billIds: [a.billId, b.billId], format: 'LEDES1998B' as const, mode: 'single' as const }],
    ['another format', { billIds: [a.billId], format: 'LEDES1998BI' as const, mode: 'single' as const }],
  ] as const) {
    await assert.rejects(E.exportBills(ctx, { ...req, requestId }), (e: unknown) => e instanceof HttpError && e.status === 409 && Object.keys(e.fields).join() === 'requestId', name);
  }
  const perBill = '01937a4e-0000-7000-8000-0000000000a2';
  await E.exportBills(ctx, { billIds: [a.billId, b.billId], mode: 'per_bill', requestId: perBill });
  await assert.rejects(E.exportBills(ctx, { billIds: [a.billId, b.billId], mode: 'single', requestId: perBill }), (e: unknown) => e instanceof HttpError && e.status === 409 && 'requestId' in e.fields);
  assert.deepEqual(await written(db), { exports: 3, audit: 3, events: 3 });
});

eachDialect('two exports racing on one request id make one file (the second returns the first\'s)', async (db) => {
  const { E, a, b } = await twoBills(db);
  const requestId = '01937a4e-0000-7000-8000-0000000000b1';
  const req = { billIds: [a.billId, b.billId], format: 'LEDES1998B' as const, mode: 'single' as const, requestId };
  const results = await Promise.all([E.exportBills(ctx, req), E.exportBills(ctx, req), E.exportBills(ctx, req)]);
  assert.deepEqual(await written(db), { exports: 1, audit: 1, events: 1 });
  assert.equal(new Set(results.map((r) => r.files[0]!.id)).size, 1);
  assert.deepEqual(results.map((r) => r.replayed).sort(), [false, true, true]);
});

eachDialect('export page: the form carries a request id, so posting it twice keeps one file; the form reused for another choice is refused (409), nothing written', async (db) => {
  await withApp(db, async (t) => {
    const bill = await approvedEbilledBill(db, t);
    const E = createEbillingCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    await E.saveSettings(ctx, settings(), 0);
    const clerk = await t.user('billing', { email: 'clerk@firm.test' });
    const b = t.browser();
    assert.equal((await b.login(clerk.email)).status, 303);
    const form = await b.get(`/ebilling/export?bill=${bill.billId}`);
    const requestId = /name="requestId" value="([0-9a-f-]{36})"/.exec(form.text)?.[1];
    assert.ok(requestId, 'the form carries a request id');
    const fields: [string, string][] = [['bill', bill.billId], ['format', 'LEDES1998BI'], ['mode', 'single'], ['requestId', requestId]];
    const first = await postForm(b, '/ebilling/export', fields);
    assert.equal(first.status, 201, first.text.slice(0, 500));
    const second = await postForm(b, '/ebilling/export', fields);
    assert.equal(second.status, 201, second.text.slice(0, 500));
    const idOf = (p: Page) => /href="\/ebilling\/exports\/([0-9a-f-]{36})"/.exec(p.text)![1];
    assert.equal(idOf(second), idOf(first), 'the same file');
    assert.deepEqual(await written(db), { exports: 1, audit: 1, events: 1 });
    // Back, another format, Export again with the same form: refused, nothing written, a fresh form to export it.
    const other = await postForm(b, '/ebilling/export', [['bill', bill.billId], ['format', 'LEDES1998B'], ['mode', 'single'], ['requestId', requestId]]);
    assert.equal(other.status, 409, other.text.slice(0, 500));
    assert.match(other.text, /data-error="bills"/);
    const fresh = /name="requestId" value="([0-9a-f-]{36})"/.exec(other.text)?.[1];
    assert.ok(fresh && fresh !== requestId, 'the page comes back with a new request id');
    assert.deepEqual(await written(db), { exports: 1, audit: 1, events: 1 });
    // A request id that is not one the page rendered is named.
    const bad = await postForm(b, '/ebilling/export', [['bill', bill.billId], ['format', 'LEDES1998BI'], ['mode', 'single'], ['requestId', 'x']]);
    assert.equal(bad.status, 422);
    assert.match(bad.text, /data-error="requestId"/);
    assert.deepEqual(await written(db), { exports: 1, audit: 1, events: 1 });
  });
});

eachDialect('validate page: a 1998BI file whose INVOICE_CURRENCY is no ISO code is reported (422, the field named), not a server error', async (db) => {
  await withApp(db, async (t) => {
    const clerk = await t.user('billing', { email: 'clerk@firm.test' });
    const b = t.browser();
    assert.equal((await b.login(clerk.email)).status, 303);
    const r = buildInvoice(facts(bill([line()], { currency: 'GBP' })), 'LEDES1998BI', settings(), codes);
    assert.ok(r.ok);
    const good = writeLedes('LEDES1998BI', [r.invoice], settings());
    const cols = COLUMNS.LEDES1998BI;
    const lines = good.split('\n');
    const f = lines[2]!.slice(0, -2).split('|');
    f[cols.indexOf('INVOICE_CURRENCY')] = 'gbp';
    lines[2] = `${f.join('|')}[]`;
    await b.get('/ebilling/validate');
    for (const content of [lines.join('\n'), lines.join('\n').replace('|gbp|', '|Pounds|')]) {
      const page = await postForm(b, '/ebilling/validate', [['content', content]]);
      assert.equal(page.status, 422, page.text.slice(0, 300));
      assert.match(page.text, /data-violation data-line="3" data-field="INVOICE_CURRENCY"/);
      assert.match(page.text, /<td class="num">700\.00<\/td>/, 'amounts shown as plain numbers');
    }
    const ok = await postForm(b, '/ebilling/validate', [['content', good]]);
    assert.equal(ok.status, 200);
    assert.match(ok.text, /£700\.00|GBP 700\.00/);
  });
});
