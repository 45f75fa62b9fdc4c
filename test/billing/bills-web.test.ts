/**
 * The bill composer and the life of a bill over HTTP, on both databases: the JSON API
 * round trip (money as decimal strings, 422 naming the field, 409 with the reason, roles,
 * the OpenAPI document) and the pages (composer preview through htmx updates the totals
 * without saving; save the draft; approve; refusal reasons shown; forms carry _csrf).
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { unescapeHtml, withApp } from '../support/app.ts';
import type { Browser, Page, TestApp } from '../support/app.ts';
import { createBillingCommands } from '../../src/modules/billing/index.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { ctx, firm, work } from './support.ts';
import { followed } from './web-support.ts';
import { closeSharedPdf, outputDirs, removeDirs, testOutputs } from './production-support.ts';
import { readdirSync } from 'node:fs';
import { after } from 'node:test';

after(closeSharedPdf);

class Api {
  constructor(private readonly b: Browser, private readonly token: string) {}
  private get auth() { return { authorization: `Bearer ${this.token}` }; }
  get(path: string): Promise<Page> { return this.b.get(`/api/v1${path}`, { ...this.auth, accept: 'application/json' }); }
  post(path: string, body?: unknown): Promise<Page> {
    return body === undefined
      ? this.b.request('POST', `/api/v1${path}`, { headers: { ...this.auth, accept: 'application/json' } })
      : this.b.postJson(`/api/v1${path}`, body, { headers: this.auth });
  }
  patch(path: string, body: unknown): Promise<Page> { return this.b.postJson(`/api/v1${path}`, body, { method: 'PATCH', headers: this.auth }); }
  put(path: string, body: unknown): Promise<Page> { return this.b.postJson(`/api/v1${path}`, body, { method: 'PUT', headers: this.auth }); }
  delete(path: string): Promise<Page> { return this.b.request('DELETE', `/api/v1${path}`, { headers: { ...this.auth, accept: 'application/json' } }); }
}

async function apiAs(t: TestApp, role: 'admin' | 'billing' | 'timekeeper' | 'readonly'): Promise<Api> {
  const u = await t.user(role);
  return new Api(t.browser(), await t.token(u.email));
}

function ok(res: Page, status = 200): any {
  assert.equal(res.status, status, `${res.status}: ${res.text.slice(0, 2000)}`);
  return res.status === 204 ? null : res.json();
}
function fields(res: Page): string[] {
  assert.equal(res.status, 422, res.text);
  return Object.keys(res.json().error.fields).sort();
}
function conflictOf(res: Page): string {
  assert.equal(res.status, 409, res.text);
  return res.json().error.message;
}

async function seed(t: TestApp) {
  const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
  const f = await firm(cmds);
  const w = await work(cmds, f.matter.id, f);
  await t.runtime.relay.drain();
  return { cmds, ...f, ...w };
}

/** Another matter of the seeded client, with the same work recorded on it. */
async function openWithWork(cmds: Awaited<ReturnType<typeof seed>>['cmds'], f: { client: { id: string }; partner: { id: string }; associate: { id: string } }, name: string) {
  const m = await cmds.openMatter(ctx, { clientId: f.client.id, name, responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH' });
  await work(cmds, m.id, f);
  return m;
}

eachDialect('API: compose a draft, read it, change it, carry it through its life; 422 names fields, 409 gives reasons', async (db) => {
  const dirs = outputDirs();
  await withApp(db, async (t) => {
    const { matter, partner, associate, t1, t2, d2 } = await seed(t);
    const api = await apiAs(t, 'billing');
    const base = { matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' };

    // Bad input: 422 naming each field, nothing written.
    assert.deepEqual(fields(await api.post('/bills', { ...base, invoiceDate: 'soon' })), ['invoiceDate']);
    assert.deepEqual(fields(await api.post('/bills', { ...base, upTo: '2026-03-31' })), ['upTo']);
    assert.deepEqual(fields(await api.post('/bills', { ...base, options: { writeTo: { timekeepers: { [partner.id]: '12.345' } } } })), [`options.writeTo.timekeepers.${partner.id}`]);
    assert.deepEqual(fields(await api.post('/bills', { ...base, options: { adHoc: [{ kind: 'fee', description: 'Urgency', amount: '10.00', taxCode: 'NOPE' }] } })), ['options.adHoc.0.taxCode']);
    assert.deepEqual(fields(await api.post('/bills', { ...base, options: { discount: { kind: 'percentage' } } })), ['options.discount.percent']);
    assert.deepEqual(fields(await api.post('/bills', { ...base, options: { bogus: true } })), ['options.bogus']);
    assert.deepEqual(fields(await api.post('/bills', { ...base, options: { writeTo: { timekeepers: { nobody: '1.00' } } } })), ['options']);
    const noTemplate = await api.post('/bills', { ...base, options: { template: 'letterhead-2019' } });
    assert.deepEqual(fields(noTemplate), ['options.template']);
    assert.match(noTemplate.json().error.fields['options.template'], /^no bill template named "letterhead-2019" \(templates: /);
    assert.deepEqual(fields(await api.post('/bills', { ...base, options: { paymentTermsDays: 400 } })), ['options.paymentTermsDays']);
    assert.equal((await api.post('/bills', { ...base, matterId: 'nope' })).status, 404);
    assert.equal((await db.db.selectFrom('billing_bill').selectAll().execute()).length, 0);

    // Preview, then create: lines, totals, allocation, money as decimal strings.
    const options = {
      writeTo: { timekeepers: { [partner.id]: '500.00' } }, exclude: [d2.id],
      discount: { kind: 'percentage', percent: '10', validUntil: '2026-03-14' }, interest: '12.34',
      adHoc: [{ kind: 'fee', description: 'Urgency', amount: '50.00', taxCode: 'SALES' }], template: 'total-only', paymentTermsDays: 14,
    };
    const preview = ok(await api.post('/bills/preview', { ...base, options }));
    const bill = ok(await api.post('/bills', { ...base, options }), 201);
    assert.deepEqual(preview.totals, bill.totals, 'the preview is what is saved');
    assert.deepEqual(bill.options, options, 'the choices come back as sent');
    assert.deepEqual(bill.totals, {
      fees: '850.00', fixedCharges: '0.00', disbursements: '350.00', discount: '85.00', interest: '12.34', tax: '3.71', total: '1131.05',
      netFees: '765.00', retainerRequest: '0.00', retainerApplied: '0.00', leftToPay: '1131.05',
    });
    assert.deepEqual([bill.status, bill.number, bill.currency, bill.dueDate, bill.discount.validUntil, bill.version], ['draft', null, 'USD', '2026-03-14', '2026-03-14', 1], 'due in the 14 days chosen');
    const line = bill.lines.find((l: any) => l.itemId === t1.id);
    assert.deepEqual([line.kind, line.minutes, line.rate, line.recorded, line.amount, line.taskCode], ['time', 120, '300.00', '600.00', '500.00', 'L110']);
    // The net fees (765.00) split pro rata to the recorded work (600.00 : 300.00).
    assert.deepEqual(Object.fromEntries(bill.allocations.map((a: any) => [a.timekeeperId, a.amount])), { [partner.id]: '510.00', [associate.id]: '255.00' });
    assert.deepEqual([bill.actions.approve, bill.actions.finalise.allowed], [{ allowed: true, reason: null }, false]);
    assert.match(bill.actions.finalise.reason, /Only an approved bill can be finalised/);

    // A second draft: 409 with the reason.
    assert.match(conflictOf(await api.post('/bills', base)), /already has a draft/);
    assert.deepEqual(ok(await api.get(`/bills/${bill.id}`)).lines, bill.lines);

    // Change it: defer the associate, stale version refused.
    assert.match(conflictOf(await api.patch(`/bills/${bill.id}`, { version: 9, options: {} })), /changed by someone else/);
    const changed = ok(await api.patch(`/bills/${bill.id}`, { version: 1, options: { exclude: [t2.id] } }));
    assert.deepEqual([changed.version, changed.lines.some((l: any) => l.itemId === t2.id), changed.totals.total], [2, false, '965.00'], 'new options replace the old: 600.00 + 350.00 + 15.00');

    // Approve, revert, approve, finalise, redraft, delete.
    const approved = ok(await api.post(`/bills/${bill.id}/approve`));
    assert.deepEqual([approved.status, approved.number, approved.sequence], ['approved', '1.1.1', 1]);
    assert.match(conflictOf(await api.post(`/bills/${bill.id}/approve`)), /Only a draft can be approved/);
    assert.match(conflictOf(await api.patch(`/bills/${bill.id}`, { options: {} })), /revert it to draft first/);
    assert.deepEqual([ok(await api.post(`/bills/${bill.id}/revert`)).status, ok(await api.post(`/bills/${bill.id}/approve`)).number], ['draft', '1.1.1']);
    // Finalising through the API produces the bill (PDF stored, printed, emailed), as the pages do: never a bare status change.
    assert.equal(ok(await api.post(`/bills/${bill.id}/finalise`)).status, 'finalised');
    assert.equal(ok(await api.post(`/bills/${bill.id}/finalise`)).status, 'finalised', 'again: produced once, nothing sent twice');
    const clerk = t.browser();
    await clerk.login((await t.user('billing', { email: 'page-clerk@firm.test' })).email);
    const finalisedPage = unescapeHtml((await clerk.get(`/billing/bills/${bill.id}`)).text);
    assert.match(finalisedPage, /data-pdf="final"/, 'the produced PDF is kept with the bill');
    assert.equal((await t.db.db.selectFrom('billing_bill_pdf').select('bill_id').where('bill_id', '=', bill.id).execute()).length, 1);
    assert.equal(readdirSync(dirs.mail).filter((f) => f.endsWith('.eml')).length, 1, 'emailed once');
    const redrafted = ok(await api.post(`/bills/${bill.id}/redraft`));
    assert.deepEqual([redrafted.status, redrafted.number, redrafted.receiptsToReallocate], ['draft', '1.1.1', '0.00']);
    ok(await api.post(`/bills/${bill.id}/hold`, { onHold: true }));
    assert.match(conflictOf(await api.post(`/bills/${bill.id}/approve`)), /on hold/);
    const deleted = ok(await api.delete(`/bills/${bill.id}`));
    assert.deepEqual([deleted.status, deleted.number], ['deleted', '1.1.1']);
    assert.equal((await api.get('/bills/nope')).status, 404);

    // The matter's bills; deleted ones on request.
    assert.deepEqual(ok(await api.get(`/matters/${matter.id}/bills`)).items, []);
    assert.deepEqual(ok(await api.get(`/matters/${matter.id}/bills?includeDeleted=true`)).items.map((b: any) => [b.number, b.status]), [['1.1.1', 'deleted']]);

    // Retainer balance.
    assert.equal((await api.get(`/matters/${matter.id}/retainer-balance`)).status, 404);
    assert.deepEqual(fields(await api.put(`/matters/${matter.id}/retainer-balance`, { balance: 'lots', asOf: '2026-02-28' })), ['balance']);
    assert.deepEqual(fields(await api.put(`/matters/${matter.id}/retainer-balance`, { balance: '-5.00', asOf: '2026-02-28' })), ['balance'], 'not below zero, as the document says');
    const r = ok(await api.put(`/matters/${matter.id}/retainer-balance`, { balance: '6000.00', asOf: '2026-02-28' }));
    assert.deepEqual([r.balance, r.version], ['6000.00', 1]);
    assert.equal(ok(await api.get(`/matters/${matter.id}/retainer-balance`)).balance, '6000.00');

    // Roles: readers read, only admin and billing write.
    const reader = await apiAs(t, 'readonly');
    assert.equal((await reader.get(`/bills/${bill.id}`)).status, 200);
    assert.equal((await reader.post('/bills', base)).status, 403);
    assert.equal((await reader.post(`/bills/${bill.id}/approve`)).status, 403);
    const tk = await apiAs(t, 'timekeeper');
    assert.equal((await tk.get(`/bills/${bill.id}`)).status, 403);

    // The OpenAPI document lists the routes.
    const doc = ok(await t.browser().get('/api/openapi.json'));
    for (const p of ['/api/v1/bills', '/api/v1/bills/preview', '/api/v1/bills/{id}', '/api/v1/bills/{id}/approve', '/api/v1/bills/{id}/revert',
      '/api/v1/bills/{id}/finalise', '/api/v1/bills/{id}/redraft', '/api/v1/matters/{id}/bills', '/api/v1/matters/{id}/retainer-balance']) {
      assert.ok(doc.paths[p], `${p} documented`);
    }
    assert.ok(doc.paths['/api/v1/bills/{id}'].delete && doc.paths['/api/v1/bills/{id}'].patch);
    // The register's status filter says its words and what a void bill's row says.
    const statusParam = doc.paths['/api/v1/bills'].get.parameters.find((p: { name: string }) => p.name === 'status');
    assert.deepEqual(statusParam.schema.anyOf.map((x: { const: string }) => x.const), ['all', 'draft', 'approved', 'finalised', 'issued', 'void']);
    assert.match(statusParam.schema.description, /void \(bills deleted: their rows say status "deleted"\)/);
  }, { outputs: testOutputs(dirs) });
  removeDirs(dirs);
});

/** Submit a form with repeated fields (item/include), carrying the last page's CSRF token. */
function postForm(b: Browser, path: string, pairs: [string, string][], headers: Record<string, string> = {}): Promise<Page> {
  const body = new URLSearchParams(pairs);
  if (b.csrf) body.set('_csrf', b.csrf);
  return b.request('POST', path, { headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: body.toString() });
}

/** The version a bill page's forms carry (every action form sends the one the page showed). */
const versionOf = (html: string): string => /name="version" value="(\d+)"/.exec(html)![1]!;

const minorOf = (html: string, total: string): number => Number(new RegExp(`data-total="${total}" data-minor="(-?\\d+)"`).exec(html)?.[1]);

eachDialect('pages: the composer previews totals through htmx without saving, saves a draft; the bill page approves and shows refusals', async (db) => {
  await withApp(db, async (t) => {
    const { matter, partner, t1, t2, d1, d2 } = await seed(t);
    await t.user('billing', { email: 'clerk@firm.test' });
    const b = t.browser();
    assert.equal((await b.login('clerk@firm.test')).status, 303);

    const page = await b.get(`/billing/matters/${matter.id}/compose?invoiceDate=2026-02-28`);
    assert.equal(page.status, 200, page.text);
    assert.match(page.text, /<form id="composer" method="post" action="\/billing\/matters\/[^"]+\/compose"/);
    assert.match(page.text, /name="_csrf" value="[^"]+"/);
    assert.match(page.text, /hx-post="\/billing\/matters\/[^"]+\/compose\/preview"/);
    assert.equal(minorOf(page.text, 'total'), 60_000 + 30_000 + 35_000 + 1_500);
    assert.match(page.text, new RegExp(`name="wt_tk_${partner.id}"`), 'a write-up/down input per timekeeper');

    // The htmx preview: write the partner down, toggle the copies out; only the fragment comes back.
    const items: [string, string][] = [t1.id, t2.id, d1.id, d2.id].map((id) => ['item', id]);
    const includes: [string, string][] = [t1.id, t2.id, d1.id].map((id) => ['include', id]);
    const form: [string, string][] = [['invoiceDate', '2026-02-28'], ['upTo', '2026-02-28'], ['applyQuote', 'yes'], ['discountKind', 'matter'], ...items, ...includes, [`wt_tk_${partner.id}`, '450.00']];
    const preview = await postForm(b, `/billing/matters/${matter.id}/compose/preview`, form, { 'HX-Request': 'true' });
    assert.equal(preview.status, 200, preview.text);
    assert.ok(preview.text.trimStart().startsWith('<section id="composer-preview"'), 'the fragment alone');
    assert.ok(!preview.text.includes('<html'), 'no page around it');
    assert.equal(minorOf(preview.text, 'fees'), 45_000 + 30_000);
    assert.equal(minorOf(preview.text, 'total'), 45_000 + 30_000 + 35_000);
    assert.match(preview.text, new RegExp(`name="include" value="${d2.id}" aria-label="[^"]*">`), 'the copies are shown, unticked');
    assert.equal((await db.db.selectFrom('billing_bill').selectAll().execute()).length, 0, 'the preview saves nothing');
    // An invoice date Save would refuse (past its range) is said by the live preview too, with the bill still shown.
    const late = await postForm(b, `/billing/matters/${matter.id}/compose/preview`, [...form.filter(([k]) => k !== 'invoiceDate'), ['invoiceDate', '2027-06-01']], { 'HX-Request': 'true' });
    assert.equal(late.status, 200);
    assert.match(unescapeHtml(late.text), /must be on or before 2027-03-03 \(at most 366 days after today\)/);
    assert.equal(minorOf(late.text, 'total'), 45_000 + 30_000 + 35_000, 'the bill is still shown');
    // A disbursement code none of the matter's disbursements has (a typo) is said at its field, not a bill silently without disbursements;
    // saving with it is refused, nothing saved.
    const typo = await postForm(b, `/billing/matters/${matter.id}/compose/preview`, [...form, ['disbCodes', 'COURTT']], { 'HX-Request': 'true' });
    assert.match(unescapeHtml(typo.text), /no disbursement of this matter has code "COURTT" \(its codes: COPY, COURT\)/);
    const typoSaved = await postForm(b, `/billing/matters/${matter.id}/compose`, [...form, ['disbCodes', 'COURTT']]);
    assert.equal(typoSaved.status, 422);
    assert.equal((await db.db.selectFrom('billing_bill').selectAll().execute()).length, 0, 'nothing saved');
    const court = await postForm(b, `/billing/matters/${matter.id}/compose/preview`, [...form, ['disbCodes', 'court']], { 'HX-Request': 'true' });
    assert.ok(!unescapeHtml(court.text).includes('no disbursement of this matter has code'), 'a code the matter has (any case) is fine');
    // A draft whose code came with it (a bill run filtered on a code gives it to every draft, with such disbursements or not)
    // still saves unchanged: the preview says so, Save does not refuse it.
    const billing = createBillingCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const run = await billing.createDraft(ctx, { matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28', request: { filters: { disbursements: { codes: ['FILING'] } } } });
    const runVersion = /name="version" value="(\d+)"/.exec((await b.get(`/billing/matters/${matter.id}/compose?bill=${run.billId}`)).text)![1]!;
    const kept = await postForm(b, `/billing/matters/${matter.id}/compose`, [['billId', run.billId], ['version', runVersion], ['invoiceDate', '2026-02-28'], ['upTo', '2026-02-28'], ['applyQuote', 'yes'], ['discountKind', 'matter'], ['disbCodes', 'FILING']]);
    assert.equal(kept.status, 303, unescapeHtml(kept.text).slice(0, 600));
    await billing.deleteDraft(ctx, run.billId);
    await t.runtime.relay.drain();
    // A bad amount comes back next to its input.
    const bad = await postForm(b, `/billing/matters/${matter.id}/compose/preview`, [...form.filter(([k]) => !k.startsWith('wt_')), [`wt_tk_${partner.id}`, 'lots']], { 'HX-Request': 'true' });
    assert.match(bad.text, new RegExp(`data-error-for="wt_tk_${partner.id}"`));

    // Without JavaScript: Recalculate re-renders the page; Save creates the draft and redirects.
    const recalculated = await postForm(b, `/billing/matters/${matter.id}/compose`, [...form, ['_action', 'preview']]);
    assert.equal(recalculated.status, 200);
    assert.equal(minorOf(recalculated.text, 'total'), 110_000);
    const saved = await postForm(b, `/billing/matters/${matter.id}/compose`, form);
    assert.equal(saved.status, 303, saved.text);
    assert.match(saved.location ?? '', /^\/billing\/bills\/[0-9a-f-]{36}$/);
    // (Besides the draft deleted above.)
    const bills = await db.db.selectFrom('billing_bill').select(['id', 'total_minor', 'status']).where('status', '<>', 'deleted').execute();
    assert.equal(bills.length, 1);
    assert.equal(Number(bills[0]!.total_minor), 110_000);
    const billId = bills[0]!.id as string;

    // The bill page: approve is offered; put on hold, the reason shows instead.
    let billPage = await b.get(`/billing/bills/${billId}`);
    assert.equal(billPage.status, 200);
    assert.match(billPage.text, /data-action="approve"/);
    assert.match(billPage.text, /data-action="delete"/);
    assert.doesNotMatch(billPage.text, /data-action="finalise"/);
    assert.equal((await b.post(`/billing/bills/${billId}/hold`, { version: versionOf(billPage.text), onHold: 'yes' })).status, 303);
    billPage = await b.get(`/billing/bills/${billId}`);
    assert.doesNotMatch(billPage.text, /data-action="approve"/);
    assert.match(unescapeHtml(billPage.text), /data-refused="Approve"><strong>Approve:<\/strong> The bill is on hold/);
    const refusedPage = await b.post(`/billing/bills/${billId}/approve`, { version: versionOf(billPage.text) });
    assert.equal(refusedPage.status, 409);
    assert.match(refusedPage.text, /data-refusal>The bill is on hold/);
    assert.equal((await b.post(`/billing/bills/${billId}/hold`, { version: versionOf(billPage.text), onHold: 'no' })).status, 303);

    // Editing it reopens the composer with its choices.
    const edit = await b.get(`/billing/matters/${matter.id}/compose?bill=${billId}`);
    assert.match(edit.text, new RegExp(`name="billId" value="${billId}"`));
    assert.match(edit.text, new RegExp(`name="wt_tk_${partner.id}" value="450.00"`));

    // Approve: numbered, finalise and revert offered.
    const approved = await b.post(`/billing/bills/${billId}/approve`, { version: versionOf((await b.get(`/billing/bills/${billId}`)).text) });
    assert.equal(approved.status, 303);
    // The address names the action; the page says it in its own words. Words of a link's own are not shown.
    assert.equal(approved.location, `/billing/bills/${billId}?done=approve`);
    billPage = await b.get(approved.location!);
    assert.match(billPage.text, /data-bill-number>1\.1\.1</);
    assert.match(billPage.text, /<p class="flash" role="status">Approved<\/p>/);
    const spoofed = await b.get(`/billing/bills/${billId}?done=${encodeURIComponent('Paid in full. Wire any balance to account 12345')}`);
    assert.doesNotMatch(spoofed.text, /class="flash"|Wire any balance/);
    assert.doesNotMatch((await b.get(`/billing/bills/${billId}?done=constructor`)).text, /class="flash"/);
    assert.doesNotMatch((await b.get(`/billing/bills/${billId}?done=delete`)).text, /class="flash"/, 'an approved bill is not called deleted by a link');
    // Finalising is producing (seed 000): the page links to production's confirmation for this bill, and no form finalises it bare.
    assert.match(billPage.text, new RegExp(`<a class="button" href="/billing/production/produce\\?bill=${billId}" data-action="produce">`));
    assert.doesNotMatch(billPage.text, /data-action="finalise"/);
    assert.equal((await b.post(`/billing/bills/${billId}/finalise`, {})).status, 404);
    assert.equal((await db.db.selectFrom('billing_bill').select('status').where('id', '=', billId).executeTakeFirstOrThrow()).status, 'approved');
    const confirm = await b.get(`/billing/production/produce?bill=${billId}`);
    assert.equal(confirm.status, 200);
    assert.match(confirm.text, /1\.1\.1/);
    assert.match(billPage.text, /data-action="revert"/);
    assert.doesNotMatch(billPage.text, /data-action="approve"/);
    // Without the CSRF token a form post is refused.
    assert.equal((await b.post(`/billing/bills/${billId}/revert`, {}, { csrf: false })).status, 403);

    // The matter's bills.
    const list = await b.get(`/billing/matters/${matter.id}/bills`);
    assert.match(list.text, /1\.1\.1/);
    assert.match(list.text, /name="_csrf"/);
    await t.runtime.relay.drain();
    const statuses = await db.db.selectFrom('matters_time_entry').select(['id', 'status']).where('matter_id', '=', matter.id).execute();
    assert.deepEqual(Object.fromEntries(statuses.map((s) => [s.id, s.status])), { [t1.id]: 'billed', [t2.id]: 'billed' });

    // A reader sees the bill without the buttons and cannot post.
    await t.user('readonly', { email: 'reader@firm.test' });
    const r = t.browser();
    await r.login('reader@firm.test');
    const seen = await r.get(`/billing/bills/${billId}`);
    assert.equal(seen.status, 200);
    assert.doesNotMatch(seen.text, /data-action=/);
    assert.equal((await r.post(`/billing/bills/${billId}/revert`, {})).status, 403);
    assert.equal((await r.get(`/billing/matters/${matter.id}/compose`)).status, 200);
    assert.equal((await postForm(r, `/billing/matters/${matter.id}/compose/preview`, form)).status, 403);
    void ctx;
  });
});

eachDialect('composer: a write-up/down survives a refused preview and a refused save; below zero is refused at its input; read-only staff get a read-only composer', async (db) => {
  await withApp(db, async (t) => {
    const { matter, partner, t1, t2, d1, d2 } = await seed(t);
    await t.user('billing', { email: 'clerk@firm.test' });
    const b = t.browser();
    assert.equal((await b.login('clerk@firm.test')).status, 303);
    await b.get(`/billing/matters/${matter.id}/compose?invoiceDate=2026-02-28`);
    const items: [string, string][] = [t1.id, t2.id, d1.id, d2.id].flatMap((id): [string, string][] => [['item', id], ['include', id]]);
    const wt = `wt_tk_${partner.id}`;
    const form = (invoiceDate: string, amount: string): [string, string][] => [['invoiceDate', invoiceDate], ['upTo', '2026-02-28'], ['applyQuote', 'yes'], ['discountKind', 'matter'], ...items, [wt, amount]];
    const savedRequest = async () => JSON.parse(String((await db.db.selectFrom('billing_bill').select('request_json').executeTakeFirstOrThrow()).request_json)) as { writeTo?: { timekeeper: Record<string, number> } };

    // A bad invoice date: the bill cannot be shown, the typed write-down stays in the page.
    const refused = await postForm(b, `/billing/matters/${matter.id}/compose`, form('2026-02-3', '450.00'));
    assert.equal(refused.status, 422);
    assert.match(refused.text, new RegExp(`<input type="text" inputmode="decimal" name="${wt}" value="450.00"`));
    assert.match(refused.text, /id="composer-kept-write-to"/);
    // The same through htmx (a date cleared mid-edit).
    const hx = await postForm(b, `/billing/matters/${matter.id}/compose/preview`, form('', '450.00'), { 'HX-Request': 'true' });
    assert.match(hx.text, new RegExp(`name="${wt}" value="450.00"`));
    // The partner's time toggled out, the write-down left in: refused at its input, the timekeeper named as the clerk knows them.
    const noTime = await postForm(b, `/billing/matters/${matter.id}/compose/preview`, form('2026-02-28', '450.00').filter(([k, v]) => !(k === 'include' && v === t1.id)), { 'HX-Request': 'true' });
    assert.match(unescapeHtml(noTime.text), /no billable time for timekeeper MH Margaret Holloway on this bill to write up or down: clear it/);
    assert.ok(!noTime.text.includes(`timekeeper ${partner.id}`), 'not by its id');
    // Corrected and saved: the write-down is on the draft.
    assert.equal((await postForm(b, `/billing/matters/${matter.id}/compose`, form('2026-02-28', '450.00'))).status, 303);
    assert.deepEqual((await savedRequest()).writeTo?.timekeeper, { [partner.id]: 45_000 });
    const billId = String((await db.db.selectFrom('billing_bill').select('id').executeTakeFirstOrThrow()).id);
    const version = /name="version" value="(\d+)"/.exec((await b.get(`/billing/matters/${matter.id}/compose?bill=${billId}`)).text)![1]!;
    const editing = (invoiceDate: string, amount: string): [string, string][] => [['billId', billId], ['version', version], ...form(invoiceDate, amount)];
    // Editing the draft: a refused save keeps it, and the draft keeps it too.
    const again = await postForm(b, `/billing/matters/${matter.id}/compose`, editing('2026-13-01', '450.00'));
    assert.equal(again.status, 422);
    assert.match(again.text, new RegExp(`name="${wt}" value="450.00"`));
    assert.deepEqual((await savedRequest()).writeTo?.timekeeper, { [partner.id]: 45_000 });

    // Below zero: refused at its input, the rest of the bill still shown, nothing saved.
    const negative = await postForm(b, `/billing/matters/${matter.id}/compose`, editing('2026-02-28', '-100'));
    assert.equal(negative.status, 422);
    assert.match(unescapeHtml(negative.text), new RegExp(`data-error-for="${wt}">must be an amount of zero or more`));
    assert.match(negative.text, /data-minor/, 'the bill is still composed');
    assert.deepEqual((await savedRequest()).writeTo?.timekeeper, { [partner.id]: 45_000 });

    // A negative retainer balance is refused (the money held cannot be below nothing).
    const retainer = await b.post(`/billing/matters/${matter.id}/retainer`, { balance: '-10.00', asOf: '2026-02-28', note: '', version: '0' });
    assert.equal(retainer.status, 422, retainer.text.slice(0, 500));
    assert.match(unescapeHtml(retainer.text), /zero or more/);

    // Read-only staff: a notice, every input disabled, no live preview to post to.
    await t.user('readonly', { email: 'reader@firm.test' });
    const r = t.browser();
    await r.login('reader@firm.test');
    const ro = await r.get(`/billing/matters/${matter.id}/compose?bill=${billId}`);
    assert.equal(ro.status, 200);
    assert.match(ro.text, /data-read-only/);
    assert.match(ro.text, /<fieldset class="plain" disabled>/);
    assert.doesNotMatch(ro.text, /hx-post=/);
    const clerkView = await b.get(`/billing/matters/${matter.id}/compose?bill=${billId}`);
    assert.doesNotMatch(clerkView.text, /data-read-only|<fieldset class="plain" disabled>/);
  });
});

eachDialect('composer: each bill\'s template and payment terms (chosen from the firm\'s templates; an unknown one or terms past a year refused at the field)', async (db) => {
  await withApp(db, async (t) => {
    const { matter, t1, t2, d1, d2 } = await seed(t);
    await t.user('billing', { email: 'clerk@firm.test' });
    const b = t.browser();
    assert.equal((await b.login('clerk@firm.test')).status, 303);
    const page = await b.get(`/billing/matters/${matter.id}/compose?invoiceDate=2026-02-28`);
    // The choice lists the firm's templates, blank first (the matter's own).
    const options = [...unescapeHtml(/<select name="template"[^>]*>([\s\S]*?)<\/select>/.exec(page.text)![1]!).matchAll(/<option value="([^"]*)"/g)].map((m) => m[1]);
    assert.deepEqual(options, ['', 'fixed-fee', 'itemised', 'standard', 'total-only']);
    assert.match(unescapeHtml(page.text), /<option value="" selected>The matter's \(standard\)<\/option>/);
    const items: [string, string][] = [t1.id, t2.id, d1.id, d2.id].flatMap((id): [string, string][] => [['item', id], ['include', id]]);
    const form = (template: string, terms: string): [string, string][] => [['invoiceDate', '2026-02-28'], ['upTo', '2026-02-28'], ['applyQuote', 'yes'], ['discountKind', 'matter'], ...items, ['template', template], ['paymentTermsDays', terms]];
    const bills = () => db.db.selectFrom('billing_bill').select(['id', 'request_json', 'due_date']).execute();

    // Refused at their fields, nothing saved, what was typed kept.
    const unknown = await postForm(b, `/billing/matters/${matter.id}/compose`, form('letterhead-2019', '14'));
    assert.equal(unknown.status, 422);
    assert.match(unescapeHtml(unknown.text), /data-error-for="template">no bill template named "letterhead-2019"/);
    assert.match(unescapeHtml(unknown.text), /<option value="letterhead-2019" selected>letterhead-2019 \(not a bill template\)<\/option>/);
    const terms = await postForm(b, `/billing/matters/${matter.id}/compose`, form('total-only', '400'));
    assert.equal(terms.status, 422);
    assert.match(unescapeHtml(terms.text), /data-error-for="paymentTermsDays">must be a whole number of days from 0 to 365/);
    assert.match(terms.text, /name="paymentTermsDays" value="400"/);
    assert.equal((await bills()).length, 0);

    // Saved: the draft keeps both; its due date follows the terms; reopening shows them.
    assert.equal((await postForm(b, `/billing/matters/${matter.id}/compose`, form('total-only', '14'))).status, 303);
    const [saved] = await bills();
    assert.deepEqual(JSON.parse(String(saved!.request_json)), { template: 'total-only', paymentTermsDays: 14 });
    assert.equal(saved!.due_date, '2026-03-14');
    const reopened = unescapeHtml((await b.get(`/billing/matters/${matter.id}/compose?bill=${saved!.id}`)).text);
    assert.match(reopened, /<option value="total-only" selected>total-only<\/option>/);
    assert.match(reopened, /name="paymentTermsDays" value="14" inputmode="numeric" list="payment-terms"/);
    // The usual terms are offered (a drop-down in the browser), any other number may be typed.
    assert.match(unescapeHtml(reopened), /<datalist id="payment-terms"><option value="0" label="Due on receipt"><\/option><option value="7" label="7 days">/);
    const billPage = unescapeHtml((await b.get(`/billing/bills/${saved!.id}`)).text);
    assert.match(billPage, /2026-03-14 <span class="hint">\(14 days, chosen for this bill\)/);
    assert.match(billPage, /<dd data-template>total-only <span class="hint">\(chosen for this bill\)/);

    // The drafts page changes the template of the drafts listed from the same list; an unknown one is refused naming it.
    const drafts = await b.get('/billing/drafts');
    assert.match(unescapeHtml(drafts.text), /<select name="newTemplate"[^>]*>\s*<option value="" selected>Unchanged<\/option><option value="\*matter">Each matter's own<\/option><option value="fixed-fee">/);
    const listing = /name="listing" value="([^"]+)"/.exec(drafts.text)![1]!;
    const bad = await followed(b, b.post('/billing/drafts/modify', { every: 'yes', listing, newTemplate: 'nope', newTerms: '7' }));
    assert.equal(bad.status, 422);
    assert.match(unescapeHtml(bad.text), /data-error-for="newTemplate">no bill template named "nope"/);
    assert.match(bad.text, /name="newTerms" value="7"/, 'what was typed is kept');
    assert.equal(JSON.parse(String((await bills())[0]!.request_json)).template, 'total-only', 'unchanged');
    const tooLong = await followed(b, b.post('/billing/drafts/modify', { every: 'yes', listing, newTerms: '400' }));
    assert.equal(tooLong.status, 422);
    assert.match(unescapeHtml(tooLong.text), /data-error-for="newTerms">must be a whole number of days from 0 to 365/);
    const changed = await followed(b, b.post('/billing/drafts/modify', { every: 'yes', listing, newTemplate: 'itemised', confirmed: 'yes' }));
    assert.equal(changed.status, 200);
    assert.equal(JSON.parse(String((await bills())[0]!.request_json)).template, 'itemised');

    // The mass billing page offers the same list for the run.
    const massPage = unescapeHtml((await b.get('/billing/mass')).text);
    assert.match(massPage, /name="terms" value="" inputmode="numeric" list="payment-terms"/);
    assert.match(massPage, /<datalist id="payment-terms">/);
    assert.match(massPage, /<select name="template"[^>]*>\s*<option value="" selected>Each matter's own<\/option><option value="fixed-fee">/);
    const massBad = await b.get('/billing/mass?terms=400');
    assert.equal(massBad.status, 422, 'a choice that cannot be read is named, 422');
    assert.match(unescapeHtml(massBad.text), /data-error-for="terms">must be a whole number of days from 0 to 365/);
  });
});

eachDialect('bill page: an action on a bill another tab changed meanwhile is refused, so Delete on a draft never voids the bill just approved', async (db) => {
  await withApp(db, async (t) => {
    const { matter } = await seed(t);
    await t.user('billing', { email: 'clerk@firm.test' });
    const a = t.browser();
    const b = t.browser();
    assert.equal((await a.login('clerk@firm.test')).status, 303);
    assert.equal((await b.login('clerk@firm.test')).status, 303);
    const draftOf = async () => {
      await a.get(`/billing/matters/${matter.id}/compose?invoiceDate=2026-02-28`);
      const saved = await postForm(a, `/billing/matters/${matter.id}/compose`, [['invoiceDate', '2026-02-28'], ['upTo', '2026-02-28']]);
      assert.equal(saved.status, 303, saved.text.slice(0, 500));
      return saved.location!.split('/').pop()!;
    };
    const versionOn = (html: string, action: string) => new RegExp(`action="/billing/bills/[^"]+/${action}"[^>]*>\\s*<input type="hidden" name="_csrf" value="[^"]*"><input type="hidden" name="version" value="(\\d+)"`).exec(html)?.[1];
    const status = async (id: string) => (await db.db.selectFrom('billing_bill').select(['status', 'number']).where('id', '=', id).executeTakeFirstOrThrow()) as { status: string; number: string | null };

    // Two tabs on the same draft: A approves; B's Delete (from the page as it was) is refused.
    let id = await draftOf();
    const pageA = await a.get(`/billing/bills/${id}`);
    const pageB = await b.get(`/billing/bills/${id}`);
    const v = versionOn(pageB.text, 'delete');
    assert.ok(v && versionOn(pageA.text, 'approve') === v, 'the forms carry the version shown');
    assert.equal((await a.post(`/billing/bills/${id}/approve`, { version: versionOn(pageA.text, 'approve')! })).status, 303);
    const refused = await b.post(`/billing/bills/${id}/delete`, { version: v! });
    assert.equal(refused.status, 409);
    assert.match(unescapeHtml(refused.text), /changed after the page was opened \(it is now approved, 1\.1\.1\)/);
    assert.deepEqual(await status(id), { status: 'approved', number: '1.1.1' }, 'approved, not voided');
    // Delete and Re-draft ask first: a confirmation page says what voiding does (its work billed
    // again), and writes nothing; the page's Cancel goes back to the bill.
    const audits = async () => Number((await db.db.selectFrom('audit_log').select((eb) => eb.fn.countAll().as('n')).where('entity_id', '=', id).executeTakeFirstOrThrow()).n);
    const approvedPage = await b.get(`/billing/bills/${id}`);
    const auditsBefore = await audits();
    const asked = await b.post(`/billing/bills/${id}/delete`, { version: versionOn(approvedPage.text, 'delete')! });
    assert.equal(asked.status, 200, asked.text.slice(0, 1500));
    const askedHtml = unescapeHtml(asked.text);
    assert.match(askedHtml, /<h1>Void bill 1\.1\.1\?<\/h1>/);
    assert.match(askedHtml, /Bill 1\.1\.1 is deleted and its number kept as void; its postings are reversed in the books\./);
    assert.match(askedHtml, /go back to mass billing, unbilled: the next run bills them again/);
    assert.match(askedHtml, /<input type="hidden" name="confirmed" value="yes">/);
    assert.match(askedHtml, new RegExp(`<a href="/billing/bills/${id}" data-action="back">Cancel</a>`));
    assert.deepEqual(await status(id), { status: 'approved', number: '1.1.1' }, 'nothing done before confirming');
    assert.equal(await audits(), auditsBefore, 'nothing audited before confirming');
    // A current page acts as before.
    const fresh = await b.get(`/billing/bills/${id}`);
    assert.equal((await b.post(`/billing/bills/${id}/revert`, { version: versionOn(fresh.text, 'revert')!, confirmed: 'yes' })).status, 303);
    assert.equal((await status(id)).status, 'draft');
    // A reverted (numbered) draft: Delete voids its number; an action it does not allow is refused before any confirmation.
    const reverted = await b.get(`/billing/bills/${id}`);
    assert.match(unescapeHtml((await b.post(`/billing/bills/${id}/delete`, { version: versionOn(reverted.text, 'delete')! })).text), /<h1>Void bill 1\.1\.1\?<\/h1>[\s\S]*Bill 1\.1\.1 is deleted and its number kept as void\.<\/p>/);
    const redraftDraft = await b.post(`/billing/bills/${id}/redraft`, { version: versionOn(reverted.text, 'delete')! });
    assert.equal(redraftDraft.status, 409);
    assert.match(unescapeHtml(redraftDraft.text), /Only a finalised bill can be re-drafted; this bill is draft/, 'refused for what it is, not as changed');
    // Hold from a stale page is refused too.
    const stale = await a.get(`/billing/bills/${id}`);
    assert.equal((await b.post(`/billing/bills/${id}/hold`, { version: versionOn(stale.text, 'hold')!, onHold: 'yes' })).status, 303);
    assert.equal((await a.post(`/billing/bills/${id}/hold`, { version: versionOn(stale.text, 'hold')!, onHold: 'yes' })).status, 409);

    // Both at once, five times over: one wins; a deleted bill is always one that was never approved.
    for (let round = 0; round < 5; round++) {
      if (round > 0) {
        const s = await status(id);
        if (s.status === 'approved') await b.post(`/billing/bills/${id}/revert`, { version: versionOf((await b.get(`/billing/bills/${id}`)).text), confirmed: 'yes' });
        if (s.status !== 'deleted') await b.post(`/billing/bills/${id}/delete`, { version: versionOf((await b.get(`/billing/bills/${id}`)).text), confirmed: 'yes' });
        id = await draftOf();
      } else {
        await b.post(`/billing/bills/${id}/hold`, { version: versionOf((await b.get(`/billing/bills/${id}`)).text), onHold: 'no' });
      }
      const page = await a.get(`/billing/bills/${id}`);
      const ver = versionOn(page.text, 'approve')!;
      const [approved, deleted] = await Promise.all([
        a.post(`/billing/bills/${id}/approve`, { version: ver }),
        b.post(`/billing/bills/${id}/delete`, { version: ver, confirmed: 'yes' }),
      ]);
      assert.deepEqual([approved.status, deleted.status].sort(), [303, 409], `round ${round}: one of the two`);
      const s = await status(id);
      if (s.status === 'deleted') assert.equal(deleted.status, 303);
      else assert.equal(s.status, 'approved');
    }
  });
});

eachDialect('a fixed-fee instalment\'s "Inv #" on the matter\'s billing options opens the bill it was billed on (by number); an unknown number is 404', async (db) => {
  await withApp(db, async (t) => {
    const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const { matter } = await firm(cmds);
    await cmds.setBillingOptions(ctx, matter.id, {
      set: {
        arrangement: 'fixed_fee', quote: { amountMinor: 100_000 },
        fixedFee: { mode: 'custom_schedule', schedule: [
          { rowId: 'r1', amountMinor: 40_000, description: 'Instalment 1', billOn: '2026-02-01', billOnStep: null, payOnStep: null, invoiceNumber: null },
        ] },
      },
    });
    await t.runtime.relay.drain();
    const api = await apiAs(t, 'billing');
    const draft = ok(await api.post('/bills', { matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' }), 201);
    ok(await api.post(`/bills/${draft.id}/approve`, {}));
    await t.runtime.relay.drain();
    await t.user('billing', { email: 'clerk@firm.test' });
    const b = t.browser();
    await b.login('clerk@firm.test');
    const options = await b.get(`/matters/${matter.id}/billing-options`);
    assert.equal(options.status, 200);
    const href = /<a href="([^"]+)">1\.1\.1<\/a>/.exec(options.text)?.[1];
    assert.equal(href, '/billing/bills/by-number/1.1.1', 'the instalment links to its invoice');
    const go = await b.get(href!);
    assert.deepEqual([go.status, go.location], [303, `/billing/bills/${draft.id}`]);
    const bill = await b.get(go.location!);
    assert.equal(bill.status, 200);
    assert.match(bill.text, /1\.1\.1/);
    // The bill page leads to the bill in the books (its balance, receipts, a time-sensitive discount's decision: seed 003).
    assert.match(bill.text, new RegExp(`<a href="/ledger/bills/${draft.id}" data-ledger-link>Balance and receipts in the ledger</a>`));
    assert.equal((await b.get(`/ledger/bills/${draft.id}`)).status, 200);
    // A matter template the firm does not have is said on the bill page before production refuses it.
    assert.doesNotMatch(bill.text, /data-template-missing/);
    // (Matters now refuses a name billing has not told it of; a matter saved before it knew the names can still hold one.)
    await t.db.db.deleteFrom('matters_template').execute();
    await cmds.setBillingOptions(ctx, matter.id, { set: { billTemplate: 'total only' } });
    await t.runtime.relay.drain();
    const warned = await b.get(go.location!);
    assert.match(unescapeHtml(warned.text), /<span class="field-error" data-template-missing>The matter's bill template "total only" is not one of the firm's/);
    assert.equal((await b.get('/billing/bills/by-number/9.9.9')).status, 404);
  });
});

eachDialect('bill page and composer: a missing or malformed version, hold choice, discount kind or percentage is refused naming the field (422) and changes nothing', async (db) => {
  await withApp(db, async (t) => {
    const { matter, cmds } = await seed(t);
    await t.user('billing', { email: 'clerk@firm.test' });
    const b = t.browser();
    assert.equal((await b.login('clerk@firm.test')).status, 303);
    const composeUrl = `/billing/matters/${matter.id}/compose`;
    const base: [string, string][] = [['invoiceDate', '2026-02-28'], ['upTo', '2026-02-28']];
    const count = async (table: 'audit_log' | 'outbox' | 'billing_bill' | 'ledger_journal') => Number((await db.db.selectFrom(table).select((e) => e.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    const snapshot = async () => {
      await t.runtime.relay.drain();
      const bills = await db.db.selectFrom('billing_bill').select(['id', 'status', 'number', 'version', 'on_hold', 'request_json']).orderBy('id').execute();
      return { bills: bills.map((r) => ({ ...r, on_hold: Number(r.on_hold), version: Number(r.version) })), audit: await count('audit_log'), outbox: await count('outbox'), journals: await count('ledger_journal') };
    };
    /** A 422 page naming exactly these fields, with the reason shown. */
    const refusedNaming = (res: Page, names: string[]) => {
      assert.equal(res.status, 422, res.text.slice(0, 800));
      const named = [...res.text.matchAll(/data-error-for="([^"]+)"/g)].map((m) => m[1]!);
      for (const n of names) assert.ok(named.includes(n), `names ${n} (named: ${named.join(', ')})`);
    };

    // Bad choices on a new bill: refused at their fields, no draft created.
    await b.get(`${composeUrl}?invoiceDate=2026-02-28`);
    const before0 = await snapshot();
    refusedNaming(await postForm(b, composeUrl, [...base, ['discountKind', 'bogus']]), ['discountKind']);
    refusedNaming(await postForm(b, composeUrl, [...base, ['discountKind', 'percentage'], ['discountPercent', '12,5']]), ['discountPercent']);
    refusedNaming(await postForm(b, composeUrl, [...base, ['discountKind', 'matter'], ['discountPercent', 'abc']]), ['discountPercent']);
    refusedNaming(await postForm(b, composeUrl, [...base, ['applyQuote', 'maybe']]), ['applyQuote']);
    refusedNaming(await postForm(b, composeUrl, [...base, ['noTime', 'maybe']]), ['noTime']);
    refusedNaming(await postForm(b, composeUrl, [...base, ['interestByPolicy', 'perhaps'], ['applyRetainer', 'sometimes']]), ['interestByPolicy', 'applyRetainer']);
    // Choices that would do nothing here (the firm's interest policy is off; the firm uses no general retainers): said at their fields.
    const idle = await postForm(b, composeUrl, [...base, ['interestByPolicy', 'yes'], ['applyRetainer', 'yes']]);
    refusedNaming(idle, ['interestByPolicy', 'applyRetainer']);
    assert.match(unescapeHtml(idle.text), /the firm's interest policy is off \(Matters › Firm billing settings\), so it charges nothing/);
    assert.match(unescapeHtml(idle.text), /the firm does not use general retainers, so nothing would be applied/);
    // A fixed fee typed on an hourly matter would do nothing (and stayed in the draft's request, to take effect if the
    // matter became fixed fee): refused at its field, and the field's hint says so before anything is typed.
    const idleFee = await postForm(b, composeUrl, [...base, ['fixedFee', '100.00']]);
    refusedNaming(idleFee, ['fixedFee']);
    assert.match(unescapeHtml(idleFee.text), /this matter is not billed by a fixed fee, so it would do nothing: leave it blank/);
    assert.match(unescapeHtml((await b.get(`${composeUrl}?invoiceDate=2026-02-28`)).text), /Leave blank: this matter is not billed by a fixed fee/);
    // A fixed discount larger than the fees is capped at them, and the live preview says so.
    const capped = await postForm(b, `${composeUrl}/preview`, [...base, ['discountKind', 'fixed'], ['discountAmount', '999999.00']], { 'hx-request': 'true' });
    assert.equal(capped.status, 200);
    const cap = /id="composer-discount-shortfall" data-given-minor="(\d+)">The fixed discount of \$999,999\.00 is more than the fees and products it discounts: it is capped at \$([\d,]+\.\d\d)\./.exec(unescapeHtml(capped.text));
    assert.ok(cap, capped.text.slice(0, 3000));
    assert.equal(Number(cap[2]!.replace(/[,.]/g, '')), Number(cap[1]), 'capped at the fees it discounts, as given');
    assert.match(capped.text, new RegExp(`data-total="discount" data-minor="${cap[1]}"`));
    // An ad hoc amount past what one bill can carry (a typo of digits): refused at its line, in dollars, not as raw minor units under "options".
    const huge = await postForm(b, composeUrl, [...base, ['adhoc_kind_0', 'fee'], ['adhoc_desc_0', 'Typo'], ['adhoc_amount_0', '9999999999999']]);
    refusedNaming(huge, ['adhoc_amount_0']);
    assert.match(unescapeHtml(huge.text), /would take the bill past the most one bill can carry \(\$10,000,000,000,000\.00\)/);
    assert.doesNotMatch(huge.text, /1000000000000000/);
    refusedNaming(await postForm(b, composeUrl, [...base, ['adhoc_kind_0', 'gift'], ['adhoc_desc_0', 'Urgency'], ['adhoc_amount_0', '10.00']]), ['adhoc_kind_0']);
    refusedNaming(await postForm(b, composeUrl, [...base, ['version', 'abc']]), ['version']);
    // A valid-until date that is no date, or with no discount chosen here to time; an ad hoc description past 4,000 characters.
    refusedNaming(await postForm(b, composeUrl, [...base, ['discountKind', 'matter'], ['discountValidUntil', '2026-02-30']]), ['discountValidUntil']);
    refusedNaming(await postForm(b, composeUrl, [...base, ['discountKind', 'matter'], ['discountValidUntil', '2026-03-31']]), ['discountValidUntil']);
    refusedNaming(await postForm(b, composeUrl, [...base, ['adhoc_kind_0', 'fee'], ['adhoc_desc_0', 'x'.repeat(4_001)], ['adhoc_amount_0', '10.00']]), ['adhoc_desc_0']);
    // An ad hoc line that takes the bill below zero: refused at that line, in words (no internal field name), no draft.
    const negative = await postForm(b, composeUrl, [...base, ['adhoc_kind_0', 'fee'], ['adhoc_desc_0', 'Credit'], ['adhoc_amount_0', '-100000.00']]);
    refusedNaming(negative, ['adhoc_amount_0']);
    assert.match(unescapeHtml(negative.text), /data-error-for="adhoc_amount_0">[^<]*takes the bill's total below zero \(-?\$/);
    assert.doesNotMatch(negative.text, /adHoc\.0/);
    assert.deepEqual(await snapshot(), before0, 'no draft, no audit row, no event');

    // A draft, changed once (version 2), as two tabs see it.
    const created = await postForm(b, composeUrl, base);
    assert.equal(created.status, 303, created.text.slice(0, 500));
    const billId = created.location!.split('/').pop()!;
    const tabA = await b.get(`${composeUrl}?bill=${billId}`);
    const v1 = versionOf(tabA.text);
    const adhoc: [string, string][] = [['adhoc_kind_0', 'fee'], ['adhoc_desc_0', 'Urgency'], ['adhoc_amount_0', '50.00']];
    assert.equal((await postForm(b, composeUrl, [['billId', billId], ['version', v1], ...base, ...adhoc])).status, 303, 'tab A adds an ad hoc line');
    const draft = await snapshot();
    assert.equal(draft.bills[0]!.version, Number(v1) + 1);
    assert.match(String(draft.bills[0]!.request_json), /Urgency/);
    // Tab B (still at v1, or with its version mangled or dropped) cannot overwrite it.
    assert.equal((await postForm(b, composeUrl, [['billId', billId], ['version', v1], ...base])).status, 409, 'stale: refused as before');
    for (const version of ['abc', '0', '-1', '2.5', '']) {
      const res = await postForm(b, composeUrl, [['billId', billId], ...(version === '' ? [] : [['version', version] as [string, string]]), ...base]);
      refusedNaming(res, ['version']);
      assert.match(unescapeHtml(res.text), /data-error-for="version"><strong>version<\/strong> (must be the version number|is required)/);
    }
    refusedNaming(await postForm(b, composeUrl, [['billId', billId], ['version', String(Number(v1) + 1)], ...base, ...adhoc, ['discountKind', 'bogus']]), ['discountKind']);
    assert.deepEqual(await snapshot(), draft, 'the draft keeps its ad hoc line and version; no audit row');

    // Approve it: numbered, version moved on.
    const page = await b.get(`/billing/bills/${billId}`);
    assert.equal((await b.post(`/billing/bills/${billId}/approve`, { version: versionOf(page.text) })).status, 303);
    const approved = await snapshot();
    assert.deepEqual([approved.bills[0]!.status, approved.bills[0]!.number], ['approved', '1.1.1']);
    assert.ok(approved.journals > draft.journals, 'approval posted');

    // A stale version is 409 as before; a malformed or missing one is 422 naming version, never "Deleted".
    assert.equal((await b.post(`/billing/bills/${billId}/delete`, { version: String(approved.bills[0]!.version - 1) })).status, 409);
    for (const action of ['delete', 'revert', 'approve', 'redraft']) {
      for (const body of [{ version: 'abc' }, { version: '' }, {}, { version: '1e1' }] as Record<string, string>[]) {
        const res = await b.post(`/billing/bills/${billId}/${action}`, body);
        refusedNaming(res, ['version']);
        assert.doesNotMatch(res.text, /Deleted|Reverted/);
      }
    }
    // Hold: version checked, and only yes or no.
    refusedNaming(await b.post(`/billing/bills/${billId}/hold`, { version: 'abc', onHold: 'yes' }), ['version']);
    refusedNaming(await b.post(`/billing/bills/${billId}/hold`, { onHold: 'yes' }), ['version']);
    const current = String(approved.bills[0]!.version);
    for (const onHold of ['banana', 'YES', 'true', '']) refusedNaming(await b.post(`/billing/bills/${billId}/hold`, { version: current, onHold }), ['onHold']);
    refusedNaming(await b.post(`/billing/bills/${billId}/hold`, { version: current }), ['onHold']);
    refusedNaming(await b.post(`/billing/bills/${billId}/hold`, { version: 'x', onHold: 'banana' }), ['version', 'onHold']);
    assert.deepEqual(await snapshot(), approved, 'still approved, same version, postings not reversed, no audit row');

    // The page's own forms still act (they carry the version, and yes/no).
    // Revert asks first (the bill may be with the client), writing nothing; confirmed, it reverts.
    const version = versionOf((await b.get(`/billing/bills/${billId}`)).text);
    const asked = await b.post(`/billing/bills/${billId}/revert`, { version });
    assert.equal(asked.status, 200, asked.text.slice(0, 800));
    assert.match(unescapeHtml(asked.text), /<h1>Revert bill 1\.1\.1 to draft\?<\/h1>/);
    assert.match(unescapeHtml(asked.text), /Receipts allocated to it are released to the client's credit until it is approved again\./);
    assert.match(asked.text, /<input type="hidden" name="confirmed" value="yes">/);
    assert.deepEqual(await snapshot(), approved, 'asking changes nothing');
    const reverted = await b.post(`/billing/bills/${billId}/revert`, { version, confirmed: 'yes' });
    assert.equal(reverted.status, 303, reverted.text.slice(0, 800));
    const held = await b.post(`/billing/bills/${billId}/hold`, { version: versionOf((await b.get(`/billing/bills/${billId}`)).text), onHold: 'yes' });
    assert.equal(held.status, 303, held.text.slice(0, 800));
    assert.deepEqual([(await snapshot()).bills[0]!.status, (await snapshot()).bills[0]!.on_hold], ['draft', 1]);
    // The matter set to bill expenses only: its time is still listed, ticked, and said to be left off for that reason (not "outside the filters").
    await cmds.setBillingOptions(ctx, matter.id, { set: { massBilling: { exclude: false, onlyExpenses: true } } } as never);
    await t.runtime.relay.drain();
    const expensesOnly = await b.get(`${composeUrl}?bill=${billId}`);
    assert.equal(expensesOnly.status, 200);
    assert.match(expensesOnly.text, /data-off-bill>left off: this matter bills expenses only<\/small>/);
    assert.doesNotMatch(expensesOnly.text, /outside the filters/);
    // ...and a fixed fee typed there would do nothing: the hint says so.
    assert.match(unescapeHtml(expensesOnly.text), /Leave blank: this matter is not billed by a fixed fee/);
  });
});

eachDialect('drafts page: "all drafts listed" is the drafts the page showed; a draft added or changed since stops the action (409, nothing done); a ticked draft changed since is refused, the others approved', async (db) => {
  await withApp(db, async (t) => {
    const { cmds, client, partner, associate, matter } = await seed(t);
    const billing = createBillingCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const open = (name: string) => openWithWork(cmds, { client, partner, associate }, name);
    const second = await open('Northwind lease review');
    const third = await open('Northwind customs appeal');
    await t.runtime.relay.drain();
    const draft = (matterId: string) => billing.createDraft(ctx, { matterId, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
    const a = await draft(matter.id);
    const b2 = await draft(second.id);
    await t.runtime.relay.drain();
    const statuses = async () => (await db.db.selectFrom('billing_bill').select(['id', 'status']).execute()).map((r) => r.status).sort();
    const listingOf = (html: string) => /name="listing" value="([^"]+)"/.exec(html)![1]!;

    await t.user('billing', { email: 'clerk@firm.test' });
    const clerk = t.browser();
    assert.equal((await clerk.login('clerk@firm.test')).status, 303);
    const page = await clerk.get('/billing/drafts');
    const listing = listingOf(page.text);
    assert.ok(page.text.includes(`value="${a.billId}@${a.version}"`), 'a ticked draft posts the version the list showed');

    // A third draft made after the page was shown: "approve all listed" would approve it unseen.
    const c3 = await draft(third.id);
    await t.runtime.relay.drain();
    const stale = await followed(clerk, postForm(clerk, '/billing/drafts/act', [['every', 'yes'], ['listing', listing], ['action', 'approve']]));
    assert.equal(stale.status, 409);
    assert.match(unescapeHtml(stale.text), /The drafts listed have changed since the page was shown/);
    assert.deepEqual(await statuses(), ['draft', 'draft', 'draft'], 'nothing approved');
    const modifyStale = await followed(clerk, postForm(clerk, '/billing/drafts/modify', [['every', 'yes'], ['listing', listing], ['newTerms', '7']]));
    assert.equal(modifyStale.status, 409);
    assert.equal((await db.db.selectFrom('billing_bill').select('due_date').where('id', '=', c3.billId).executeTakeFirstOrThrow()).due_date, c3.dueDate, 'nothing changed');
    // Without the page's stamp: refused, naming the field.
    const missing = await followed(clerk, postForm(clerk, '/billing/drafts/act', [['every', 'yes'], ['action', 'hold']]));
    assert.equal(missing.status, 422);
    assert.match(missing.text, /data-error-for="listing"|listing/);
    assert.equal(await db.db.selectFrom('billing_bill').select('id').where('on_hold', '=', 1).executeTakeFirst(), undefined);

    // Ticked drafts: one recomposed after the list showed it is refused with the reason; the other is approved.
    const shown = await clerk.get('/billing/drafts');
    const versionOf = (id: string) => new RegExp(`value="${id}@(\\d+)"`).exec(shown.text)![1]!;
    const aShown = versionOf(a.billId);
    await billing.updateDraft(ctx, a.billId, { request: { ...a.request, interestMinor: 500 } });
    const ticked = await followed(clerk, postForm(clerk, '/billing/drafts/act', [['id', `${a.billId}@${aShown}`], ['id', `${b2.billId}@${versionOf(b2.billId)}`], ['action', 'approve'], ['confirmed', 'yes']]));
    assert.equal(ticked.status, 200);
    assert.match(ticked.text, /data-done="1" data-refused="1"/);
    assert.match(unescapeHtml(ticked.text), new RegExp(`data-refused="${a.billId}">.*It changed after the list was shown`));
    const byId = async (id: string) => (await db.db.selectFrom('billing_bill').select('status').where('id', '=', id).executeTakeFirstOrThrow()).status;
    assert.deepEqual([await byId(a.billId), await byId(b2.billId)], ['draft', 'approved']);
    assert.equal((await followed(clerk, postForm(clerk, '/billing/drafts/act', [['id', `${a.billId}@x`], ['action', 'approve']]))).status, 422, 'a malformed id is refused');

    // The current list's stamp: every draft it lists is approved.
    const fresh = listingOf((await clerk.get('/billing/drafts')).text);
    const approved = await followed(clerk, postForm(clerk, '/billing/drafts/act', [['every', 'yes'], ['listing', fresh], ['action', 'approve'], ['confirmed', 'yes']]));
    assert.equal(approved.status, 200);
    assert.match(approved.text, /data-done="2" data-refused="0"/);
    assert.deepEqual(await statuses(), ['approved', 'approved', 'approved']);
  });
});

eachDialect('drafts page: a ticked draft changed since the list showed it is not deleted, held, released or modified (refused with the reason), the others are; sorting by Fees follows the column (fees and fixed charges)', async (db) => {
  await withApp(db, async (t) => {
    const { cmds, client, partner, associate, matter } = await seed(t);
    const billing = createBillingCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const open = (name: string) => openWithWork(cmds, { client, partner, associate }, name);
    const second = await open('Northwind lease review');
    await t.runtime.relay.drain();
    const a = await billing.createDraft(ctx, { matterId: matter.id, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
    const b2 = await billing.createDraft(ctx, { matterId: second.id, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
    await t.runtime.relay.drain();
    await t.user('billing', { email: 'clerk@firm.test' });
    const clerk = t.browser();
    assert.equal((await clerk.login('clerk@firm.test')).status, 303);
    const row = async (id: string) => db.db.selectFrom('billing_bill').select(['status', 'on_hold', 'version', 'due_date', 'total_minor']).where('id', '=', id).executeTakeFirstOrThrow();

    for (const [action, field] of [['hold', 'on_hold'], ['release', 'on_hold'], ['delete', 'status']] as const) {
      const shown = await clerk.get('/billing/drafts');
      const versionOf = (id: string) => new RegExp(`value="${id}@(\\d+)"`).exec(shown.text)![1]!;
      const [aShown, bShown] = [versionOf(a.billId), versionOf(b2.billId)];
      // Another clerk adds a line to the first draft after the list was shown.
      const current = (await billing.findBill(a.billId))!;
      await billing.updateDraft(ctx, a.billId, { request: { ...current.request, adHoc: [...(current.request.adHoc ?? []), { kind: 'fee', description: `Added before ${action}`, amountMinor: 25_000, taxCode: null, timekeeperId: null }] } });
      const before = await row(a.billId);
      const res = await followed(clerk, postForm(clerk, '/billing/drafts/act', [['id', `${a.billId}@${aShown}`], ['id', `${b2.billId}@${bShown}`], ['action', action], ...(action === 'delete' ? [['confirmed', 'yes'] as [string, string]] : [])]));
      assert.equal(res.status, 200, res.text);
      assert.match(res.text, /data-done="1" data-refused="1"/, `${action}: one done, one refused`);
      assert.match(unescapeHtml(res.text), new RegExp(`data-refused="${a.billId}">.*It changed after the list was shown`), action);
      assert.deepEqual(await row(a.billId), before, `${action}: the changed draft as it was`);
      const other = await row(b2.billId);
      assert.equal(action === 'delete' ? other.status : String(other[field]), action === 'delete' ? 'deleted' : action === 'hold' ? '1' : '0', `${action}: the unchanged draft acted on`);
    }

    // Modify batch, ticked: the changed draft keeps its terms.
    await t.runtime.relay.drain();
    const again = await billing.createDraft(ctx, { matterId: second.id, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
    const shown = await clerk.get('/billing/drafts');
    const versionOf = (id: string) => new RegExp(`value="${id}@(\\d+)"`).exec(shown.text)![1]!;
    const [aShown, cShown] = [versionOf(a.billId), versionOf(again.billId)];
    await billing.setOnHold(ctx, a.billId, true);
    await billing.setOnHold(ctx, a.billId, false);
    const before = await row(a.billId);
    const modified = await followed(clerk, postForm(clerk, '/billing/drafts/modify', [['id', `${a.billId}@${aShown}`], ['id', `${again.billId}@${cShown}`], ['newTerms', '7'], ['confirmed', 'yes']]));
    assert.equal(modified.status, 200, modified.text);
    assert.match(modified.text, /data-done="1" data-refused="1"/);
    assert.deepEqual(await row(a.billId), before);
    assert.equal((await row(again.billId)).due_date, '2026-03-08');

    // The Fees column is fees and fixed charges: sorting by it follows what it shows.
    const charge = await cmds.createChargeType(ctx, { code: 'SEARCH', name: 'Title search', defaultPriceMinor: 2_000_000, taxCode: null });
    const third = await cmds.openMatter(ctx, { clientId: client.id, name: 'Northwind title search', responsibleTimekeeperId: partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH' });
    await cmds.recordFixedCharge(ctx, { matterId: third.id, chargedOn: '2026-02-15', chargeTypeId: charge.id });
    await t.runtime.relay.drain();
    const onlyCharges = await billing.createDraft(ctx, { matterId: third.id, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
    assert.equal(onlyCharges.totals.feesMinor, 0);
    assert.equal(onlyCharges.totals.fixedChargesMinor, 2_000_000);
    for (const dir of ['asc', 'desc']) {
      const page = await clerk.get(`/billing/drafts?sort=fees&dir=${dir}`);
      const shownFees = [...page.text.matchAll(/<td class="num" data-minor="(-?\d+)">/g)].map((m) => Number(m[1]));
      assert.ok(shownFees.length >= 3, page.text.slice(0, 500));
      const column = shownFees.filter((_, i) => i % 4 === 0); // each row: fees, disbursements, tax, total (discount and interest carry data-col)
      const sorted = [...column].sort((x, y) => (dir === 'asc' ? x - y : y - x));
      assert.deepEqual(column, sorted, `sorted ${dir} by the Fees column`);
      // The column it is sorted by says so (to a screen reader, and with an arrow); no other does.
      assert.match(page.text, new RegExp(`<th class="num" aria-sort="${dir === 'asc' ? 'ascending' : 'descending'}"><a [^>]*sort=fees[^>]*>Fees <span aria-hidden="true">${dir === 'asc' ? '▲' : '▼'}</span>`));
      assert.equal((page.text.match(/aria-sort=/g) ?? []).length, 1);
      assert.equal(column[dir === 'asc' ? column.length - 1 : 0], 2_000_000);
    }
  });
});

eachDialect('composer: a fixed fee typed that cannot be read keeps the draft\'s saved fee in the figures shown (not the quote), and says so; nothing is saved', async (db) => {
  await withApp(db, async (t) => {
    const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const { matter, partner } = await firm(cmds);
    await cmds.setBillingOptions(ctx, matter.id, { set: { arrangement: 'fixed_fee', quote: { amountMinor: 470_000 }, fixedFee: { mode: 'every_cycle', schedule: [] } } as never });
    await cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice' });
    await t.runtime.relay.drain();
    await t.user('billing', { email: 'clerk@firm.test' });
    const b = t.browser();
    await b.login('clerk@firm.test');
    // A draft with a fee of the clerk's own (not the quote).
    await b.get(`/billing/matters/${matter.id}/compose?invoiceDate=2026-02-28`);
    const saved = await postForm(b, `/billing/matters/${matter.id}/compose`, [['invoiceDate', '2026-02-28'], ['upTo', '2026-02-28'], ['fixedFee', '1000.00']]);
    assert.equal(saved.status, 303, saved.text.slice(0, 800));
    const billId = saved.location!.split('/').pop()!;
    const draft = await db.db.selectFrom('billing_bill').select(['total_minor', 'version']).where('id', '=', billId).executeTakeFirstOrThrow();
    const total = (html: string) => Number(/data-total="total" data-minor="(-?\d+)"/.exec(html)![1]);
    for (const typed of ['abc', '10.999']) {
      for (const path of [`/billing/matters/${matter.id}/compose/preview`, `/billing/matters/${matter.id}/compose`]) {
        const res = await postForm(b, path, [['billId', billId], ['version', String(draft.version)], ['invoiceDate', '2026-02-28'], ['upTo', '2026-02-28'], ['fixedFee', typed]]);
        assert.equal(res.status, path.endsWith('/preview') ? 200 : 422, `${path} ${typed}`);
        assert.match(res.text, /data-error-for="fixedFee"/);
        assert.match(res.text, /id="fixed-fee-kept">Until it is corrected, the figures shown keep the fixed fee as the draft was saved/);
        assert.equal(total(res.text), Number(draft.total_minor), `${path} ${typed}: the draft's figures, not the quote's`);
      }
    }
    // The live preview (htmx: its part alone) lists the errors of the fields outside it, with the same note.
    const live = await postForm(b, `/billing/matters/${matter.id}/compose/preview`, [['billId', billId], ['version', String(draft.version)], ['invoiceDate', '2026-02-30'], ['upTo', '2026-02-28'], ['fixedFee', 'abc'], ['adhoc_desc_0', 'Filing'], ['adhoc_amount_0', 'x']], { 'hx-request': 'true' });
    assert.doesNotMatch(live.text, /<html/, 'the fragment alone');
    const listed = /<div class="error-box" role="alert" id="preview-field-errors">([\s\S]*?)<\/div>/.exec(live.text);
    assert.ok(listed, live.text.slice(0, 1500));
    assert.deepEqual([...listed[1]!.matchAll(/<li data-error-for="([^"]+)"><strong>([^<]+)<\/strong>/g)].map((m) => [m[1], m[2]]),
      [['invoiceDate', 'Invoice date'], ['fixedFee', 'Fixed fee this bill'], ['adhoc_amount_0', 'Ad hoc line “Filing”, amount']]);
    assert.match(listed[1]!, /id="fixed-fee-kept-preview">Until the fixed fee is corrected, the figures below keep the fixed fee as the draft was saved/);
    const clean = await postForm(b, `/billing/matters/${matter.id}/compose/preview`, [['billId', billId], ['version', String(draft.version)], ['invoiceDate', '2026-02-28'], ['upTo', '2026-02-28'], ['fixedFee', '900.00']], { 'hx-request': 'true' });
    assert.doesNotMatch(clean.text, /preview-field-errors/);
    assert.deepEqual(await db.db.selectFrom('billing_bill').select(['total_minor', 'version']).where('id', '=', billId).executeTakeFirstOrThrow(), draft, 'nothing saved');
    // No fee on this bill (0): the recorded time waits for the next instalment, and the item list says so (not "outside the filters").
    const none = await postForm(b, `/billing/matters/${matter.id}/compose/preview`, [['billId', billId], ['version', String(draft.version)], ['invoiceDate', '2026-02-28'], ['upTo', '2026-02-28'], ['fixedFee', '0.00']]);
    assert.equal(none.status, 200);
    assert.match(none.text, /data-off-bill>waits for the next fixed-fee cycle<\/small>/);
    assert.doesNotMatch(none.text, /outside the filters/);
    // The field's hint says what a blank field bills on this matter and date (monthly, no next billing date: every bill is the cycle's).
    assert.match(unescapeHtml(none.text), /Blank: the quote \(\$4,700\.00\); this bill is the cycle's/);
    const withFee = await postForm(b, `/billing/matters/${matter.id}/compose/preview`, [['billId', billId], ['version', String(draft.version)], ['invoiceDate', '2026-02-28'], ['upTo', '2026-02-28'], ['fixedFee', '1000.00']]);
    assert.doesNotMatch(withFee.text, /data-off-bill/, 'with a fee, the time is on the bill (written to the fee)');
  });
});

eachDialect('composer: on a draft a blank fixed fee means what it means on a new bill (none off the cycle, as the hint says); a fee the draft was saved with saves unchanged where it now does nothing, a fee typed there is refused', async (db) => {
  await withApp(db, async (t) => {
    const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const { matter, partner } = await firm(cmds);
    await cmds.setBillingOptions(ctx, matter.id, { set: { arrangement: 'fixed_fee', quote: { amountMinor: 470_000 }, fixedFee: { mode: 'every_cycle', schedule: [] } } as never });
    await cmds.updateMatter(ctx, matter.id, { nextBillingDate: '2026-03-31' });
    await cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice' });
    await cmds.recordDisbursement(ctx, { matterId: matter.id, incurredOn: '2026-02-12', code: 'COURT', unitCostMinor: 36_500, taxCode: 'EXEMPT', description: 'Filing fee' });
    await t.runtime.relay.drain();
    await t.user('billing', { email: 'clerk@firm.test' });
    const b = t.browser();
    await b.login('clerk@firm.test');
    const url = `/billing/matters/${matter.id}/compose`;
    const dates: [string, string][] = [['invoiceDate', '2026-02-28'], ['upTo', '2026-02-28']];
    await b.get(`${url}?invoiceDate=2026-02-28`);
    // Off the cycle (next billing date 2026-03-31): no fee on this bill, the filing fee alone.
    const saved = await postForm(b, url, dates);
    assert.equal(saved.status, 303, saved.text.slice(0, 800));
    const billId = saved.location!.split('/').pop()!;
    const stored = async () => {
      const r = await db.db.selectFrom('billing_bill').select(['total_minor', 'request_json', 'version']).where('id', '=', billId).executeTakeFirstOrThrow();
      return { totalMinor: Number(r.total_minor), fee: (JSON.parse(String(r.request_json)) as { fixedFeeAmountMinor?: number }).fixedFeeAmountMinor, version: Number(r.version) };
    };
    assert.deepEqual([(await stored()).totalMinor, (await stored()).fee], [36_500, 0]);
    const page = await b.get(`${url}?bill=${billId}`);
    assert.match(unescapeHtml(page.text), /Blank: none, as the cycle is not due on this invoice date \(next billing date 2026-03-31\); type an amount to bill one/);
    // The clerk clears the 0.00 the draft shows: still no fee (it was the quote, $4,700, on top).
    const blank = await postForm(b, url, [['billId', billId], ['version', versionOf(page.text)], ...dates, ['fixedFee', '']]);
    assert.equal(blank.status, 303, blank.text.slice(0, 800));
    assert.equal((await stored()).totalMinor, 36_500);

    // The matter now bills expenses only: the draft, saved with a fee of 0.00, saves unchanged; a fee typed there is refused.
    await cmds.setBillingOptions(ctx, matter.id, { set: { massBilling: { exclude: false, onlyExpenses: true } } } as never);
    await t.runtime.relay.drain();
    const again = await b.get(`${url}?bill=${billId}`);
    assert.match(unescapeHtml(again.text), /Leave blank: this matter bills expenses only/);
    const unchanged = await postForm(b, url, [['billId', billId], ['version', versionOf(again.text)], ...dates, ['fixedFee', '0.00']]);
    assert.equal(unchanged.status, 303, unchanged.text.slice(0, 800));
    const before = await stored();
    const typed = await postForm(b, url, [['billId', billId], ['version', String(before.version)], ...dates, ['fixedFee', '100.00']]);
    assert.equal(typed.status, 422);
    assert.match(unescapeHtml(typed.text), /data-error-for="fixedFee">this matter bills expenses only, so it would do nothing: leave it blank/);
    assert.deepEqual(await stored(), before, 'nothing saved');
    // A schedule of instalments: the hint says so.
    await cmds.setBillingOptions(ctx, matter.id, { set: { massBilling: { exclude: false, onlyExpenses: false }, fixedFee: { mode: 'custom_schedule', schedule: [] } } as never });
    await t.runtime.relay.drain();
    assert.match(unescapeHtml((await b.get(`${url}?bill=${billId}`)).text), /Leave blank: this matter's fixed fee is billed by its schedule of instalments/);
  });
});
