/**
 * E-billing over HTTP on both databases: the JSON API (settings, export by bill number, the
 * 422 listing every offending line, kept files, validation, roles) and the pages (export
 * from GET /ebilling/export?bill=ID as the Bill Production page links, refusal list, the
 * download, the validate page, the settings page), with CSRF-carrying forms.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { withApp } from '../support/app.ts';
import type { Browser, Page } from '../support/app.ts';
import { readLedes } from '../../src/modules/ebilling/domain/reader.ts';
import { approvedEbilledBill, codes } from './support.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { ctx } from '../billing/support.ts';

function postForm(b: Browser, path: string, pairs: [string, string][]): Promise<Page> {
  const body = new URLSearchParams(pairs);
  if (b.csrf) body.set('_csrf', b.csrf);
  return b.request('POST', path, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: body.toString() });
}

const SETTINGS = {
  lawFirmId: '24-6437381', lawFirmName: 'Holloway & Stern LLP', address1: '1 Main St', address2: '', city: 'Springfield', region: 'IL', postcode: '62701',
  country: 'USA', clientCountry: 'USA', invoiceDescription: 'Professional services: {matter}', classificationStyle: 'words', noChargeLines: 'include',
  requireClientMatterId: true, accountType: 'O', defaultTaskCode: '', defaultActivityCode: '', defaultExpenseCode: '',
};

eachDialect('API and pages: settings, export by number, refusals listed by line, kept files, validation, roles', async (db) => {
  await withApp(db, async (t) => {
    const bill = await approvedEbilledBill(db, t);

    const clerk = await t.user('billing', { email: 'clerk@firm.test' });
    const reader = await t.user('readonly', { email: 'reader@firm.test' });
    const api = t.browser();
    const auth = { authorization: `Bearer ${await t.token(clerk.email)}` };
    const readAuth = { authorization: `Bearer ${await t.token(reader.email)}` };

    // Settings: 422 naming the field, then saved at version 1.
    let res = await api.postJson('/api/v1/ledes/settings', { ...SETTINGS, country: 'US', version: 0 }, { method: 'PUT', headers: auth });
    assert.equal(res.status, 422, res.text);
    assert.deepEqual(Object.keys(res.json().error.fields), ['country']);
    res = await api.postJson('/api/v1/ledes/settings', { ...SETTINGS, version: 0 }, { method: 'PUT', headers: auth });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json().version, 1);
    res = await api.postJson('/api/v1/ledes/settings', { ...SETTINGS, version: 0 }, { method: 'PUT', headers: auth });
    assert.equal(res.status, 409, 'a stale version is refused');

    // 1998B cannot carry the copies' sales tax: 422 naming the bill and field, no file.
    res = await api.postJson('/api/v1/ledes/exports', { billNumbers: [bill.number], format: 'LEDES1998B' }, { headers: auth });
    assert.equal(res.status, 422, res.text);
    assert.deepEqual(Object.keys(res.json().error.fields), [`bills.${bill.number}.INVOICE_TOTAL`]);
    assert.match(res.json().error.fields[`bills.${bill.number}.INVOICE_TOTAL`], /Fix: export it as LEDES 1998BI/);
    assert.equal((await db.db.selectFrom('ebilling_export').select('id').execute()).length, 0);
    res = await api.postJson('/api/v1/ledes/exports', { billNumbers: [bill.number], format: 'LEDES1998BI' }, { headers: readAuth });
    assert.equal(res.status, 403, 'read-only staff cannot export');
    res = await api.postJson('/api/v1/ledes/exports', { billNumbers: ['99.9.9'] }, { headers: auth });
    assert.deepEqual(Object.keys(res.json().error.fields), ['billNumbers']);

    // The request id is a UUID, as documented (review 57 F7): anything else is named, nothing written.
    res = await api.postJson('/api/v1/ledes/exports', { billNumbers: [bill.number], format: 'LEDES1998BI', requestId: 'req-abc-1' }, { headers: auth });
    assert.equal(res.status, 422, res.text);
    assert.deepEqual(res.json().error.fields, { requestId: 'must be a UUID' });
    assert.equal((await db.db.selectFrom('ebilling_export').select('id').execute()).length, 0);
    const apiDoc = (await api.get('/api/openapi.json')).json();
    const requestIdDoc = apiDoc.paths['/api/v1/ledes/exports'].post.requestBody.content['application/json'].schema.properties.requestId;
    assert.equal(requestIdDoc.format, 'uuid');
    assert.match(requestIdDoc.description, /Idempotency key/);
    assert.ok(new RegExp(requestIdDoc.pattern).test('01937a4e-0000-7000-8000-0000000000a1') && !new RegExp(requestIdDoc.pattern).test('req-abc-1'));

    res = await api.postJson('/api/v1/ledes/exports', { billNumbers: [bill.number], format: 'LEDES1998BI' }, { headers: auth });
    assert.equal(res.status, 201, res.text);
    const exported = res.json().exports[0];
    assert.equal(exported.bills[0].total, (bill.totals.totalMinor / 100).toFixed(2));
    const read = readLedes(exported.content, { codes });
    assert.deepEqual(read.violations, []);
    assert.equal(read.invoices[0]!.totalMinor, bill.totals.totalMinor);
    res = await api.get(`/api/v1/ledes/exports?bill=${bill.billId}`, { ...readAuth, accept: 'application/json' });
    assert.deepEqual(res.json().exports.map((e: { id: string }) => e.id), [exported.id]);

    // Validation through the API: a broken total is reported by line and field.
    const fileLines = (exported.content as string).split('\n');
    const fieldsOf3 = fileLines[2]!.split('|');
    fieldsOf3[4] = '1.00'; // INVOICE_TOTAL of the first line item
    fileLines[2] = fieldsOf3.join('|');
    const broken = fileLines.join('\n');
    res = await api.postJson('/api/v1/ledes/validate', { content: broken }, { headers: readAuth });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json().valid, false);
    assert.ok(res.json().violations.some((v: { line: number; field: string }) => v.line === 3 && v.field === 'INVOICE_TOTAL'), JSON.stringify(res.json().violations));

    // OpenAPI documents the routes.
    const doc = (await api.get('/api/openapi.json')).json();
    for (const p of ['/api/v1/ledes/exports', '/api/v1/ledes/exports/{id}', '/api/v1/ledes/validate', '/api/v1/ledes/settings', '/api/v1/ledes/code-sets']) assert.ok(doc.paths[p], p);

    // Pages, as the clerk: the Bill Production page's link preselects the bill.
    const b = t.browser();
    assert.equal((await b.login(clerk.email)).status, 303);
    let page = await b.get(`/ebilling/export?bill=${bill.billId}`);
    assert.equal(page.status, 200, page.text);
    assert.match(page.text, new RegExp(`name="bill" value="${bill.billId}" id="b-${bill.billId}" checked`));
    assert.match(page.text, /name="_csrf" value="[^"]+"/);
    page = await postForm(b, '/ebilling/export', [['bill', bill.billId], ['format', 'LEDES1998B'], ['mode', 'single']]);
    assert.equal(page.status, 422);
    assert.match(page.text, /data-problem data-bill="[^"]+" data-field="INVOICE_TOTAL"/);
    assert.match(page.text, /No file was written/);
    page = await postForm(b, '/ebilling/export', [['bill', bill.billId], ['format', 'LEDES1998BI'], ['mode', 'per_bill']]);
    assert.equal(page.status, 201, page.text);
    const id = /href="\/ebilling\/exports\/([0-9a-f-]{36})"/.exec(page.text)![1]!;
    const download = await b.get(`/ebilling/exports/${id}`);
    assert.equal(download.status, 200);
    assert.match(download.headers.get('content-disposition') ?? '', /attachment; filename="LEDES98BI_/);
    assert.deepEqual(readLedes(download.text, { codes }).violations, []);
    page = await b.get(`/ebilling/bills/${bill.billId}`);
    assert.equal((page.text.match(/id="export-/g) ?? []).length, 2, 'both kept files listed with the bill');
    page = await b.get('/ebilling');
    assert.match(page.text, new RegExp(`id="bill-${bill.billId}"`));

    // The validate page reports every violation by line and field.
    for (const path of ['/ebilling/validate', '/ebilling/codes', '/ebilling/settings']) assert.equal((await b.get(path)).status, 200, path);
    assert.match((await b.get('/ebilling/codes')).text, /L110[\s\S]*Fact Investigation\/Development/);
    assert.match((await b.get('/ebilling/settings')).text, /name="lawFirmId" id="s-lawFirmId" value="24-6437381"/);
    await b.get('/ebilling/validate');
    page = await postForm(b, '/ebilling/validate', [['content', download.text.replace('LEDES98BI V2[]', 'LEDES98BI[]')]]);
    assert.equal(page.status, 422);
    assert.match(page.text, /data-violation data-line="1" data-field="header"/);
    page = await postForm(b, '/ebilling/validate', [['content', download.text]]);
    assert.equal(page.status, 200);
    assert.match(page.text, /data-valid="yes"/);

    // The settings page: a bad country is named; nothing changes.
    await b.get('/ebilling/settings');
    page = await postForm(b, '/ebilling/settings', [...Object.entries({ ...SETTINGS, country: 'usa1', requireClientMatterId: 'on' }).map(([k, v]) => [k, String(v)] as [string, string]), ['version', '1']]);
    assert.equal(page.status, 422);
    assert.match(page.text, /data-error="country"/);
    const csrfless = await b.request('POST', '/ebilling/settings', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'lawFirmId=x&version=1' });
    assert.equal(csrfless.status, 403, 'forms need the CSRF token');

    // Read-only staff see the pages but cannot post exports.
    const r = t.browser();
    await r.login(reader.email);
    assert.equal((await r.get('/ebilling/export')).status, 200);
    assert.equal((await postForm(r, '/ebilling/export', [['bill', bill.billId]])).status, 403);
    // ... and are not offered an export they cannot make (review 49, L9); a clerk is.
    const listed = await r.get('/ebilling');
    assert.match(listed.text, new RegExp(`id="bill-${bill.billId}"`));
    assert.doesNotMatch(listed.text, /Export selected/);
    assert.match((await b.get('/ebilling')).text, /Export selected/);
    // A timekeeper reads the UTBMS codes, with no crumb to the e-billing pages it may not open.
    const tk = t.browser();
    await tk.login((await t.user('timekeeper', { email: 'tk@firm.test' })).email);
    const codesPage = await tk.get('/ebilling/codes');
    assert.equal(codesPage.status, 200);
    assert.equal((await tk.get('/ebilling')).status, 403);
    assert.doesNotMatch(codesPage.text, /href="\/ebilling"/);
    assert.match((await r.get('/ebilling/codes')).text, /href="\/ebilling"/);
  });
});

eachDialect('export errors name the caller\'s own field: billIds in the API, bills on the page', async (db) => {
  await withApp(db, async (t) => {
    const clerk = await t.user('billing', { email: 'clerk@firm.test' });
    const api = t.browser();
    const auth = { authorization: `Bearer ${await t.token(clerk.email)}` };
    let res = await api.postJson('/api/v1/ledes/exports', { billIds: ['nope'] }, { headers: auth });
    assert.equal(res.status, 422, res.text);
    assert.deepEqual(res.json().error.fields, { billIds: 'must be bill ids' });
    res = await api.postJson('/api/v1/ledes/exports', { billIds: ['01937a4e-0000-7000-8000-00000000abcd'] }, { headers: auth });
    assert.equal(res.status, 422, res.text);
    assert.deepEqual(Object.keys(res.json().error.fields), ['billIds']);
    assert.match(res.json().error.fields.billIds, /not known to e-billing/);

    const page = t.browser();
    await page.login(clerk.email);
    await page.get('/ebilling/export');
    const p = await postForm(page, '/ebilling/export', [['mode', 'single']]);
    assert.equal(p.status, 422);
    assert.match(p.text, /data-error="bills">bills choose at least one bill/);
    assert.equal((await db.db.selectFrom('ebilling_export').select('id').execute()).length, 0);
  });
});

eachDialect('export page: a format (or mode) that is not one offered is refused naming it (422), never exported in the matter\'s own format', async (db) => {
  await withApp(db, async (t) => {
    const bill = await approvedEbilledBill(db, t);
    const clerk = await t.user('billing', { email: 'clerk@firm.test' });
    const auth = { authorization: `Bearer ${await t.token(clerk.email)}` };
    const api = t.browser();
    assert.equal((await api.postJson('/api/v1/ledes/settings', { ...SETTINGS, version: 0 }, { method: 'PUT', headers: auth })).status, 200);
    // The matter's own format exports this bill cleanly (1998BI carries its tax), so a fallback would succeed.
    const cmds = createMattersCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    await cmds.setBillingOptions(ctx, bill.matterId, { set: { ebilling: { enabled: true, codeSet: 'litigation', format: 'LEDES1998BI', clientLedesId: 'NW-001', matterLedesId: 'NW-M-77' } } });
    await t.runtime.relay.drain();
    const count = async (table: 'audit_log' | 'outbox' | 'ebilling_export') => Number((await db.db.selectFrom(table).select((e) => e.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    const b = t.browser();
    assert.equal((await b.login(clerk.email)).status, 303);
    await b.get(`/ebilling/export?bill=${bill.billId}`);
    const before = { audit: await count('audit_log'), outbox: await count('outbox'), exports: await count('ebilling_export') };
    assert.equal(before.exports, 0);
    for (const format of ['BOGUS', 'ledes1998bi', 'LEDES1998']) {
      const page = await postForm(b, '/ebilling/export', [['bill', bill.billId], ['format', format], ['mode', 'single']]);
      assert.equal(page.status, 422, page.text.slice(0, 500));
      assert.match(page.text, /data-error="format">format must be one of: LEDES1998B, LEDES1998BI/);
      assert.match(page.text, new RegExp(`name="bill" value="${bill.billId}" id="b-${bill.billId}" checked`), 'the choice is kept');
    }
    const mode = await postForm(b, '/ebilling/export', [['bill', bill.billId], ['format', 'LEDES1998BI'], ['mode', 'every']]);
    assert.equal(mode.status, 422);
    assert.match(mode.text, /data-error="mode">mode must be single or per_bill/);
    assert.deepEqual({ audit: await count('audit_log'), outbox: await count('outbox'), exports: await count('ebilling_export') }, before, 'no file, no audit row, no event');

    // Blank is the matter's own format, as before.
    const own = await postForm(b, '/ebilling/export', [['bill', bill.billId], ['format', ''], ['mode', 'single']]);
    assert.equal(own.status, 201, own.text.slice(0, 500));
    assert.equal(await count('ebilling_export'), 1);
  });
});

eachDialect('a bill e-billed in its approval: reverting or voiding it says so first; its export is then marked as no longer the bill', async (db) => {
  await withApp(db, async (t) => {
    const bill = await approvedEbilledBill(db, t);
    const clerk = await t.user('billing', { email: 'clerk@firm.test' });
    const auth = { authorization: `Bearer ${await t.token(clerk.email)}` };
    const api = t.browser();
    assert.equal((await api.postJson('/api/v1/ledes/settings', { ...SETTINGS, version: 0 }, { method: 'PUT', headers: auth })).status, 200);
    const b = t.browser();
    await b.login(clerk.email);
    const version = async () => String((await db.db.selectFrom('billing_bill').select('version').where('id', '=', bill.billId).executeTakeFirstOrThrow()).version);
    const confirmation = async (action: string) => (await b.post(`/billing/bills/${bill.billId}/${action}`, { version: await version() })).text;
    await b.get(`/billing/bills/${bill.billId}`);
    assert.doesNotMatch(await confirmation('revert'), /id="confirm-ebilled"/, 'not exported: nothing said');

    const res = await api.postJson('/api/v1/ledes/exports', { billNumbers: [bill.number], format: 'LEDES1998BI' }, { headers: auth });
    assert.equal(res.status, 201, res.text);
    const fileName = res.json().exports[0].fileName as string;
    await t.runtime.relay.drain();
    const money = `$${(bill.totals.totalMinor / 100).toFixed(2)}`;
    assert.match(await confirmation('revert'), new RegExp(`id="confirm-ebilled" role="alert">E-billed already: ${fileName.replaceAll('.', '\\.')} \\(LEDES1998BI, \\${money}\\) exported [^.]+\\. The client's e-billing system may hold this invoice: send the changed bill as a replacement once it is approved again\\.`));
    assert.match(await confirmation('delete'), /may hold this invoice: withdraw it there \(or send a credit\)/);

    // Reverted: the export is marked as not the bill now, on the e-billing pages.
    assert.equal((await b.post(`/billing/bills/${bill.billId}/revert`, { version: await version(), confirmed: 'yes' })).status, 303);
    await t.runtime.relay.drain();
    const index = await b.get('/ebilling');
    assert.match(index.text, new RegExp(`data-superseded="${bill.billId}">bill back in draft since<`));
    // Its e-billing page offers no export of a draft, and says why (review 49, L3).
    const page = await b.get(`/ebilling/bills/${bill.billId}`);
    assert.doesNotMatch(page.text, /Export it</);
    assert.match(page.text, /back in draft: it can be exported again once it is approved\. An export listed below is of an earlier approval/);
    // Deleted (void) as a draft: the page says it is not e-billed, and an export of it is refused with a fix that can be followed.
    assert.equal((await b.post(`/billing/bills/${bill.billId}/delete`, { version: await version(), confirmed: 'yes' })).status, 303);
    await t.runtime.relay.drain();
    const voided = await b.get(`/ebilling/bills/${bill.billId}`);
    assert.doesNotMatch(voided.text, /Export it</);
    assert.match(voided.text, /This bill is void: it is not e-billed/);
    const refused = await api.postJson('/api/v1/ledes/exports', { billIds: [bill.billId], format: 'LEDES1998BI' }, { headers: auth });
    assert.equal(refused.status, 422, refused.text);
    assert.match(refused.text, /void \(deleted\)[^]*withdraw it there/);
  });
});

eachDialect('settings page: a bad account type or no-charge choice is named at its field; after a 409 the typed form saves on Save again', async (db) => {
  await withApp(db, async (t) => {
    const clerk = await t.user('billing', { email: 'clerk@firm.test' });
    const b = t.browser();
    await b.login(clerk.email);
    await b.get('/ebilling/settings');
    const form = (over: Record<string, string>): [string, string][] => Object.entries({ ...SETTINGS, requireClientMatterId: 'on', version: '0', ...over }).map(([k, v]) => [k, String(v)]);
    const bad = await postForm(b, '/ebilling/settings', form({ accountType: 'Z', noChargeLines: 'maybe' }));
    assert.equal(bad.status, 422);
    assert.match(bad.text, /data-error="accountType">[^<]+</);
    assert.match(bad.text, /data-error="noChargeLines">[^<]+</);
    // Another clerk saves first; this one's save is a 409 showing what was typed, and Save again replaces theirs.
    const api = t.browser();
    const auth = { authorization: `Bearer ${await t.token(clerk.email)}` };
    assert.equal((await api.postJson('/api/v1/ledes/settings', { ...SETTINGS, lawFirmName: 'Theirs LLP', version: 0 }, { method: 'PUT', headers: auth })).status, 200);
    const stale = await postForm(b, '/ebilling/settings', form({ lawFirmName: 'Mine LLP' }));
    assert.equal(stale.status, 409);
    assert.match(stale.text, /Save again to replace their settings/);
    const version = /name="version" value="(\d+)"/.exec(stale.text)?.[1];
    assert.equal(version, '1', 'the form now carries the version stored');
    assert.equal((await postForm(b, '/ebilling/settings', form({ lawFirmName: 'Mine LLP', version: version! }))).status, 303);
    assert.equal(JSON.parse((await db.db.selectFrom('ebilling_settings').select('settings_json').executeTakeFirstOrThrow()).settings_json as string).lawFirmName, 'Mine LLP');
  });
});
