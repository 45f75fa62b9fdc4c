/**
 * Mass billing and the draft bills page over HTTP, on both databases: the eligible list
 * with what each row will bill and why, the "why not listed" lookup, field errors, Bill
 * selected with its confirmation creating one run, the run's page polled until done (the
 * same form posted twice is one run), the drafts page (sort, filter, approve with reasons,
 * hold, delete back to mass billing, modify a batch), roles and CSRF; and the JSON API
 * (POST /bill-runs, GET /bill-runs/{id}, POST /bills/approve).
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { prng } from '../../src/cli/demo.ts';
import { seedDemoFirm } from '../../src/modules/matters/index.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { createBillingCommands } from '../../src/modules/billing/index.ts';
import { eachDialect } from '../support/db.ts';
import { followed, ok, postMany, waitForRun } from './web-support.ts';
import { unescapeHtml, withApp } from '../support/app.ts';
import type { Browser, Page, TestApp } from '../support/app.ts';
import { ctx } from './support.ts';
import { closeSharedPdf, outputDirs, removeDirs, testOutputs } from './production-support.ts';

// The preview PDFs render on one shared Chromium, closed when the file's tests end.
after(closeSharedPdf);

const DATE = '2026-03-01';

async function seed(t: TestApp, size: { matters: number; entriesPerMatter: number } = { matters: 16, entriesPerMatter: 3 }) {
  const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
  await seedDemoFirm(cmds, { ...size, seed: 5, random: prng, ctx, fixedCharges: true, asOf: DATE });
  await t.runtime.relay.drain();
}

/** A small demo firm (6 matters) and a billing clerk signed in: its commands, the clerk's browser, and the list's dates as a query. */
async function clerkOnSmallFirm(t: TestApp) {
  await seed(t, { matters: 6, entriesPerMatter: 2 });
  const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
  const clerk = await t.user('billing');
  const b = t.browser();
  await b.login(clerk.email);
  return { cmds, b, q: `invoiceDate=${DATE}&upTo=${DATE}` };
}

/** The stamp of the drafts a drafts page listed (its forms post it with "all drafts listed"). */
const listingOf = (html: string): string => /name="listing" value="([^"]+)"/.exec(html)![1]!;



eachDialect('mass billing page: list, lookup, confirm, one run with live progress; drafts page: approve, hold, delete, modify', async (db) => {
  await withApp(db, async (t) => {
    await seed(t);
    const clerk = await t.user('billing');
    const b = t.browser();
    await b.login(clerk.email);
    const q = `invoiceDate=${DATE}&upTo=${DATE}`;

    // The list: rows with WIP, disbursements, quote, what will be billed and why, and the composer.
    let html = ok(await b.get(`/billing/mass?${q}`));
    const count = Number(/id="eligible-count" data-count="(\d+)"/.exec(html)![1]);
    // The disbursement code is chosen from a list: the codes on unbilled disbursements.
    const codes = (await t.db.db.selectFrom('billing_wip').select('code').distinct().where('kind', '=', 'disbursement').where('matters_status', '=', 'unbilled').where('code', 'is not', null).execute()).map((r) => String(r.code)).sort();
    assert.ok(codes.length > 0);
    assert.match(html, /<input type="text" name="disbCode" value="" list="disb-codes"/);
    assert.deepEqual([...(/<datalist id="disb-codes">(.*?)<\/datalist>/s.exec(html)?.[1] ?? '').matchAll(/<option value="([^"]+)">/g)].map((m) => unescapeHtml(m[1]!)), codes);
    assert.ok(count >= 8, `eligible ${count}`);
    const rowIds = [...html.matchAll(/<tr id="mass-([0-9a-f-]{36})"/g)].map((m) => m[1]!);
    assert.equal(rowIds.length, count);
    assert.match(html, /class="num will-bill" data-minor="\d+"/);
    assert.match(html, /Work in progress|quote|Fixed fee|instalment/);
    assert.match(html, /href="\/billing\/matters\/[0-9a-f-]{36}\/compose/);
    assert.match(html, /name="_csrf"/);

    // Field errors name the field; nothing is created.
    html = ok(await b.get(`/billing/mass?invoiceDate=2026-02-30&upTo=${DATE}`), 422);
    assert.match(html, /data-error-for="invoiceDate"/);
    html = ok(await b.get(`/billing/mass?${q}&cap=amount&capAmount=12.345`), 422);
    assert.match(html, /data-error-for="capAmount"/);
    // Filters: an amount nobody reaches leaves nothing; the matter's own cap keeps only matters at or over it.
    html = ok(await b.get(`/billing/mass?${q}&cap=amount&capAmount=99999999`));
    assert.match(html, /data-count="0"/);
    // A page past the end shows the last page, not an empty list beside a count.
    html = ok(await b.get(`/billing/mass?${q}&page=1000000000`));
    assert.equal([...html.matchAll(/<tr id="mass-/g)].length, count);

    // Why is a matter not listed? (The hx request answers with the fragment.)
    const all = await t.db.db.selectFrom('billing_matter').select(['id', 'file_number']).execute();
    const missing = all.find((m) => !rowIds.includes(m.id as string))!;
    html = ok(await b.get(`/billing/mass/why?${q}&lookup=${missing.file_number}`, { 'hx-request': 'true' }));
    assert.match(html, /data-reason/);
    assert.doesNotMatch(html, /<html/);
    html = ok(await b.get(`/billing/mass/why?${q}&lookup=999.999`));
    assert.match(html, /no matter with file number 999\.999/);
    // A date that cannot be read is named (422), not answered as "no such matter".
    for (const bad of ['invoiceDate=2026-02-30', 'upTo=04/12/2026']) {
      const res = await b.get(`/billing/mass/why?${bad.startsWith('upTo') ? `invoiceDate=${DATE}` : `upTo=${DATE}`}&${bad}&lookup=${missing.file_number}`);
      assert.equal(res.status, 422, bad);
      assert.match(unescapeHtml(res.text), new RegExp(`data-error-for="${bad.split('=')[0]}"><strong>(Invoice date|Invoice up to)</strong> must be a date`));
      assert.doesNotMatch(res.text, /Billing has no matter with file number/);
    }

    // Readonly users see the list but cannot bill; a POST without the CSRF token is refused.
    const reader = await t.user('readonly');
    const rb = t.browser('203.0.113.20');
    await rb.login(reader.email);
    html = ok(await rb.get(`/billing/mass?${q}`));
    assert.doesNotMatch(html, /data-action="bill-all"/);
    assert.equal((await rb.post('/billing/mass/runs', { invoiceDate: DATE, upTo: DATE, scope: 'all', confirm: 'yes' })).status, 403);
    assert.equal((await b.post('/billing/mass/runs', { invoiceDate: DATE, upTo: DATE, scope: 'all' }, { csrf: false })).status, 403);

    // Bill selected: the confirmation first (nothing created), then one run.
    await b.get(`/billing/mass?${q}`);
    const runId = /name="runId" value="([^"]+)"/.exec(b.last!.text)![1]!;
    const picked = rowIds.slice(0, 3);
    // The list shown with its up-to date left blank says so in its run form (the run bills up to the invoice date).
    assert.match(ok(await b.get(`/billing/mass?invoiceDate=${DATE}`)), /<input type="hidden" name="upToBlank" value="yes">/);
    html = ok(await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['upToBlank', 'yes'], ['terms', '21'], ['runId', runId], ['scope', 'selected'], ...picked.map((id): [string, string] => ['matterId', id])]));
    assert.match(html, /Bill 3 matter\(s\)\?/);
    // The matters picked are named, in file number order.
    const pickedNames = (await t.db.db.selectFrom('billing_matter').select(['file_number', 'name']).where('id', 'in', picked).execute())
      .map((m) => `${m.file_number} ${m.name}`).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    assert.equal(/<p class="notice" id="confirm-picked">The matters picked: ([^<]*)\.<\/p>/.exec(html)?.[1], pickedNames.join('; '));
    // Cancel posts the confirmation's form back (no address could hold a page of ticked ids):
    // the list as it was left, its choices kept and the three matters ticked, no other.
    const tickedOn = (page: string) => [...page.matchAll(/<input type="checkbox" name="matterId" value="([^"]+)"( checked)?/g)].filter((m) => m[2]).map((m) => m[1]!).sort();
    const confirmFields = (page: string): [string, string][] => {
      const form = /<form method="post" action="\/billing\/mass\/runs" id="mass-confirm">([\s\S]*?)<\/form>/.exec(page)![1]!;
      return [...form.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m): [string, string] => [m[1]!, m[2]!]).filter(([k]) => k !== '_csrf');
    };
    assert.match(html, /<button type="submit" name="cancel" value="yes" class="secondary" data-action="cancel">Cancel<\/button>/);
    let listed = ok(await postMany(b, '/billing/mass/runs', [...confirmFields(html), ['cancel', 'yes']]));
    assert.match(listed, /<h1>Mass billing<\/h1>/);
    assert.deepEqual(tickedOn(listed), [...picked].sort());
    assert.match(listed, /name="terms" value="21"/, 'the choices kept');
    // The up-to date left blank on the list stays blank (it follows the invoice date), not filled in with the date it stood for.
    assert.match(listed, /<input type="date" name="upTo" value=""/);
    assert.equal((await t.db.db.selectFrom('billing_batch').select('id').execute()).length, 0, 'Cancel creates nothing');
    assert.equal(tickedOn(ok(await b.get(`/billing/mass?${q}`))).length, 0, 'the list opened afresh has nothing ticked');
    // ... on the page they were ticked on (the run form carries it for that).
    html = ok(await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['terms', '21'], ['runId', runId], ['scope', 'selected'], ['page', '2'], ...picked.map((id): [string, string] => ['matterId', id])]));
    assert.ok(confirmFields(html).some(([k, v]) => k === 'page' && v === '2'));
    assert.ok(!confirmFields(html).some(([k]) => k === 'upToBlank'), 'an up-to date typed stays typed');
    // Bill all's Cancel keeps what was ticked too (it billed every matter, not the ticked).
    html = ok(await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['runId', runId], ['scope', 'all'], ['matterId', picked[0]!]]));
    assert.match(html, /Bill \d+ matter\(s\)\?/);
    listed = ok(await postMany(b, '/billing/mass/runs', [...confirmFields(html), ['cancel', 'yes']]));
    assert.deepEqual(tickedOn(listed), [picked[0]]);
    // A page: digits only ("0x10" is no page 16, carried on to the confirmation's Cancel).
    html = ok(await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['runId', runId], ['scope', 'selected'], ['page', '0x10'], ['matterId', picked[0]!]]));
    assert.ok(!confirmFields(html).some(([k]) => k === 'page'), 'no page carried');
    html = ok(await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['runId', runId], ['scope', 'selected'], ['page', '16'], ['matterId', picked[0]!]]));
    assert.ok(confirmFields(html).some(([k, v]) => k === 'page' && v === '16'));
    assert.equal((await t.db.db.selectFrom('billing_batch').select('id').execute()).length, 0, 'nothing before the confirmation');
    const confirm: [string, string][] = [['invoiceDate', DATE], ['upTo', DATE], ['terms', '21'], ['runId', runId], ['scope', 'selected'], ['confirm', 'yes'], ...picked.map((id): [string, string] => ['matterId', id])];
    let res = await postMany(b, '/billing/mass/runs', confirm);
    assert.equal(res.status, 303, res.text);
    assert.equal(res.location, `/billing/mass/runs/${runId}`);
    // A second click (the same form again) is the same run.
    res = await postMany(b, '/billing/mass/runs', confirm);
    assert.equal(res.location, `/billing/mass/runs/${runId}`);
    html = await waitForRun(b, `/billing/mass/runs/${runId}`);
    assert.match(html, /3 of 3 matter\(s\)/);
    assert.equal((await t.db.db.selectFrom('billing_batch').select('id').execute()).length, 1, 'one run');
    html = ok(await b.get(`/billing/mass/runs/${runId}`));
    assert.match(html, /Review the drafts/);
    let drafts = await t.db.db.selectFrom('billing_bill').select(['id', 'matter_id', 'due_date', 'batch_id']).where('status', '=', 'draft').execute();
    assert.equal(drafts.length, 3);
    assert.ok(drafts.every((d) => d.batch_id === runId && d.due_date === '2026-03-22'));
    // Billed matters leave the list.
    html = ok(await b.get(`/billing/mass?${q}`));
    assert.equal(Number(/data-count="(\d+)"/.exec(html)![1]), count - 3);

    // Bill all: the rest, in one more run.
    await b.get(`/billing/mass?${q}`);
    const runAll = /name="runId" value="([^"]+)"/.exec(b.last!.text)![1]!;
    res = await b.post('/billing/mass/runs', { invoiceDate: DATE, upTo: DATE, runId: runAll, scope: 'all', confirm: 'yes' });
    assert.equal(res.status, 303, res.text);
    await waitForRun(b, `/billing/mass/runs/${runAll}`);
    drafts = await t.db.db.selectFrom('billing_bill').select(['id', 'matter_id', 'due_date', 'batch_id']).where('status', '=', 'draft').execute();
    assert.equal(drafts.length, count);
    // The list page kept from before (another tab): Bill all now has nothing to bill. No "Bill 0 matters?", no empty run.
    const runs = (await t.db.db.selectFrom('billing_batch').select('id').execute()).length;
    for (const confirm of [{}, { confirm: 'yes' }] as Record<string, string>[]) {
      res = await b.post('/billing/mass/runs', { invoiceDate: DATE, upTo: DATE, runId: `stale-page-${Object.keys(confirm).length}`, scope: 'all', ...confirm });
      assert.equal(res.status, 409, res.text.slice(0, 300));
      assert.match(res.text, /No matter is eligible to bill now/);
      assert.doesNotMatch(res.text, /Bill 0 matter/);
    }
    assert.equal((await t.db.db.selectFrom('billing_batch').select('id').execute()).length, runs, 'no run was created');
    // The run itself again (a second click on its confirmation) is still that run.
    res = await b.post('/billing/mass/runs', { invoiceDate: DATE, upTo: DATE, runId: runAll, scope: 'all', confirm: 'yes' });
    assert.equal(res.status, 303, res.text.slice(0, 300));

    // Drafts page: the batch's drafts with the columns; sorted by total descending.
    html = ok(await b.get(`/billing/drafts?batch=${runId}&sort=total&dir=desc`));
    assert.match(html, /data-count="3"/);
    // Seed 004's columns: the billing date, the billing timekeeper and who created the draft.
    assert.equal([...html.matchAll(new RegExp(`<td data-col="invoice">${DATE}</td>`, 'g'))].length, 3);
    assert.equal([...html.matchAll(/<td data-col="billing-timekeeper">[A-Z]{2,4}<\/td>/g)].length, 3, 'each draft names its matter\'s billing timekeeper');
    assert.equal([...html.matchAll(/<td data-col="created-by" title="[^"]+">[^<]+@[^<]+<\/td>/g)].length, 3, 'each draft names who created it');
    for (const sort of ['invoice', 'billing', 'creator']) assert.match(ok(await b.get(`/billing/drafts?batch=${runId}&sort=${sort}&dir=desc`)), /data-count="3"/);
    const totals = [...html.matchAll(/<td class="num" data-minor="(-?\d+)">[^<]*<\/td>\s*<td>/g)].map((m) => Number(m[1]));
    assert.deepEqual(totals, [...totals].sort((x, y) => y - x));
    // Each row adds up: fees + disbursements - discount + interest + tax = total.
    for (const row of html.split('<tr id="draft-').slice(1)) {
      const cells = [...row.split('</tr>')[0]!.matchAll(/<td class="num" data-minor="(-?\d+)"/g)].map((m) => Number(m[1]));
      assert.equal(cells.length, 6, row.slice(0, 300));
      const [fees, disbursements, discount, interest, tax, total] = cells as [number, number, number, number, number, number];
      assert.equal(fees + disbursements + discount + interest + tax, total, row.slice(0, 300));
    }
    assert.match(html, /\/billing\/bills\/[0-9a-f-]{36}\/pdf\?preview=1/);
    assert.match(html, /compose\?bill=/);
    const [first, second, third] = [...html.matchAll(/data-bill="([0-9a-f-]{36})"/g)].map((m) => m[1]!);

    // Hold one, then approve the whole batch: the held one is refused with its reason.
    html = ok(await followed(b, b.post('/billing/drafts/act', { id: first!, action: 'hold', batch: runId })));
    assert.match(html, /data-done="1"/);
    // Approving asks first: how many, the held one named as refused, the total; nothing is posted before confirming.
    const listing = listingOf(html);
    const asked = ok(await b.post('/billing/drafts/act', { every: 'yes', listing, action: 'approve', batch: runId }));
    assert.match(asked, /<h1>Approve 3 draft bills\?<\/h1>/);
    assert.match(asked, /id="approve-held">1 of them is on hold: refused/);
    assert.equal((asked.match(/<tr data-bill="/g) ?? []).length, 3);
    // The total is what the button approves: the two not held, not the held one too.
    const totalsOf = await t.db.db.selectFrom('billing_bill').select(['id', 'total_minor', 'currency']).where('id', 'in', [first!, second!, third!]).execute();
    const toApprove = totalsOf.filter((r) => r.id !== first).reduce((n, r) => n + Number(r.total_minor), 0);
    assert.ok(Number(totalsOf.find((r) => r.id === first)!.total_minor) > 0, 'the held one has a total of its own');
    assert.match(asked, new RegExp(`<th colspan="4">Total of the 2 approved \\(the other is refused\\)</th><td class="num" data-total="${totalsOf[0]!.currency}">[^<]+</td>`));
    assert.match(asked, new RegExp(`data-total="${totalsOf[0]!.currency}">\\$${(toApprove / 100).toLocaleString('en-US', { minimumFractionDigits: 2 }).replace(/\./g, '\\.')}<`));
    assert.match(asked, /<input type="hidden" name="confirmed" value="yes">/);
    assert.equal((await t.db.db.selectFrom('billing_bill').select('id').where('status', '=', 'approved').execute()).length, 0, 'nothing approved before confirming');
    html = ok(await followed(b, b.post('/billing/drafts/act', { every: 'yes', listing, action: 'approve', batch: runId, confirmed: 'yes' })));
    assert.match(html, /data-done="2" data-refused="1"/);
    assert.match(html, new RegExp(`data-refused="${first}">.*on hold`, 's'));
    const approved = await t.db.db.selectFrom('billing_bill').select(['id', 'number', 'file_number']).where('status', '=', 'approved').execute();
    assert.deepEqual(new Set(approved.map((a) => a.id)), new Set([second, third]));
    assert.ok(approved.every((a) => a.number === `${a.file_number}.1`));

    // Modify the batch: a new invoice date and terms for its (remaining) drafts.
    html = ok(await followed(b, b.post('/billing/drafts/modify', { batch: runId, every: 'yes', listing: listingOf(html), newInvoiceDate: '2026-03-02', newTerms: '5', confirmed: 'yes' })));
    assert.match(html, /data-done="1"/);
    const changed = await t.db.db.selectFrom('billing_bill').select(['invoice_date', 'due_date']).where('id', '=', first!).executeTakeFirstOrThrow();
    assert.deepEqual(changed, { invoice_date: '2026-03-02', due_date: '2026-03-07' });
    // An invoice date alone, before the drafts' up-to date: refused once at the up-to date, in words, and nothing changes.
    html = ok(await followed(b, b.post('/billing/drafts/modify', { batch: runId, every: 'yes', listing: listingOf(html), newInvoiceDate: '2026-02-20' })), 422);
    assert.match(html, /data-error-for="newUpTo"><strong>[^<]+<\/strong> 1 of the drafts bill fees and disbursements up to a date after the new invoice date 2026-02-20 \(up to 2026-03-01\): give a new up-to date on or before it too/);
    assert.deepEqual(await t.db.db.selectFrom('billing_bill').select(['invoice_date', 'due_date']).where('id', '=', first!).executeTakeFirstOrThrow(), changed);
    // With an up-to date before it, each draft is recomposed on the new dates.
    html = ok(await followed(b, b.post('/billing/drafts/modify', { batch: runId, every: 'yes', listing: listingOf(html), newInvoiceDate: '2026-02-20', newUpTo: '2026-02-20', confirmed: 'yes' })));
    assert.match(html, /data-done="1"/);
    assert.equal((await t.db.db.selectFrom('billing_bill').select('up_to').where('id', '=', first!).executeTakeFirstOrThrow()).up_to, '2026-02-20');
    html = ok(await followed(b, b.post('/billing/drafts/modify', { batch: runId, every: 'yes', listing: listingOf(html), newTerms: 'soon' })), 422);
    assert.match(html, /data-error-for="newTerms"><strong>Payment terms<\/strong> must be a whole number of days/);
    // A new up-to date alone, after the drafts' invoice date: refused up front, naming it, nothing changed.
    const before = await t.db.db.selectFrom('billing_bill').select(['invoice_date', 'up_to', 'due_date', 'version']).where('id', '=', first!).executeTakeFirstOrThrow();
    html = ok(await followed(b, b.post('/billing/drafts/modify', { batch: runId, every: 'yes', listing: listingOf(html), newUpTo: '2026-02-25' })), 422);
    assert.match(html, /data-error-for="newUpTo"><strong>[^<]+<\/strong> 1 of the drafts are dated before the new up-to date 2026-02-25 \(from 2026-02-20\): give an up-to date on or before their invoice date, or a new invoice date too/);
    assert.deepEqual(await t.db.db.selectFrom('billing_bill').select(['invoice_date', 'up_to', 'due_date', 'version']).where('id', '=', first!).executeTakeFirstOrThrow(), before);
    // Days and the firm's terms at once: refused naming the terms.
    html = ok(await followed(b, b.post('/billing/drafts/modify', { batch: runId, every: 'yes', listing: listingOf(html), newTerms: '7', firmTerms: 'yes' })), 422);
    assert.match(html, /data-error-for="newTerms"><strong>Payment terms<\/strong> give a number of days, or choose the firm's terms: not both/);
    // A template for the batch, then each matter's own and the firm's terms again: the overrides come off the drafts.
    html = ok(await followed(b, b.post('/billing/drafts/modify', { batch: runId, every: 'yes', listing: listingOf(html), newTemplate: 'itemised', confirmed: 'yes' })));
    assert.match(html, /data-done="1"/);
    const requestOf = async () => JSON.parse(String((await t.db.db.selectFrom('billing_bill').select('request_json').where('id', '=', first!).executeTakeFirstOrThrow()).request_json)) as Record<string, unknown>;
    assert.deepEqual([(await requestOf()).template, (await requestOf()).paymentTermsDays], ['itemised', 5]);
    assert.match(ok(await b.get(`/billing/drafts?batch=${runId}`)), /<option value="\*matter">Each matter's own<\/option>/);
    const asking = ok(await b.post('/billing/drafts/modify', { batch: runId, every: 'yes', listing: listingOf(html), newTemplate: '*matter', firmTerms: 'yes' }));
    assert.match(asking, /<li>Bill template: each matter's own<\/li>/);
    assert.match(asking, /<li>Payment terms: the firm's \(or the matter's own, where it has them\), due dates following them<\/li>/);
    html = ok(await followed(b, b.post('/billing/drafts/modify', { batch: runId, every: 'yes', listing: listingOf(html), newTemplate: '*matter', firmTerms: 'yes', confirmed: 'yes' })));
    assert.match(html, /data-done="1"/);
    const cleared = await requestOf();
    assert.ok(!('template' in cleared) && !('paymentTermsDays' in cleared), JSON.stringify(cleared));
    assert.notEqual((await t.db.db.selectFrom('billing_bill').select('due_date').where('id', '=', first!).executeTakeFirstOrThrow()).due_date, '2026-02-25', 'no longer 5 days from the invoice date');

    // Delete: back to mass billing (items unbilled, the work kept).
    const matterOfFirst = drafts.find((d) => d.id === first)!.matter_id as string;
    // It asks first, naming the draft and what deleting does; nothing is deleted until confirmed.
    html = ok(await b.post('/billing/drafts/act', { id: first!, action: 'delete', batch: runId }));
    assert.match(html, /<h1>Delete 1 draft bill\?<\/h1>/);
    assert.match(html, new RegExp(`data-bill="${first}"`));
    assert.match(html, /go back to mass billing, unbilled/);
    assert.match(html, /name="confirmed" value="yes"/);
    assert.equal((await t.db.db.selectFrom('billing_bill').select('status').where('id', '=', first!).executeTakeFirstOrThrow()).status, 'draft', 'not deleted before it is confirmed');
    html = ok(await followed(b, b.post('/billing/drafts/act', { id: first!, action: 'delete', batch: runId, confirmed: 'yes' })));
    assert.match(html, /data-done="1"/);
    await t.runtime.relay.drain();
    html = ok(await b.get(`/billing/mass?${q}`));
    assert.match(html, new RegExp(`id="mass-${matterOfFirst}"`));
    const work = await t.db.db.selectFrom('billing_wip').select('id').where('matter_id', '=', matterOfFirst).execute();
    assert.ok(work.length > 0, 'no work deleted');
  });
}, { timeout: 300_000 });

/** A form as the page renders it: its hidden fields (what a browser submits besides what the clerk fills in). */
function hiddenFieldsOf(html: string, formStart: RegExp): [string, string][] {
  const at = html.search(formStart);
  assert.ok(at >= 0, `no form ${formStart}`);
  const form = html.slice(at, html.indexOf('</form>', at));
  return [...form.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1]!, unescapeHtml(m[2]!)]);
}

eachDialect('drafts page: the list keeps its filters and sort, and "all drafts listed" acts on the drafts listed only (the forms as rendered)', async (db) => {
  const dirs = outputDirs();
  try {
  await withApp(db, async (t) => {
    await seed(t, { matters: 32, entriesPerMatter: 2 }); // clients numbered past 10
    const clerk = await t.user('billing');
    const b = t.browser();
    await b.login(clerk.email);
    const q = `invoiceDate=${DATE}&upTo=${DATE}`;
    const rowIds = [...ok(await b.get(`/billing/mass?${q}`)).matchAll(/<tr id="mass-([0-9a-f-]{36})"/g)].map((m) => m[1]!);
    assert.ok(rowIds.length >= 6);
    // Two runs: three matters, then two others.
    const runs: string[] = [];
    for (const picked of [rowIds.slice(0, 3), rowIds.slice(3, 5)]) {
      await b.get(`/billing/mass?${q}`);
      const runId = /name="runId" value="([^"]+)"/.exec(b.last!.text)![1]!;
      const res = await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['runId', runId], ['scope', 'selected'], ['confirm', 'yes'], ...picked.map((id): [string, string] => ['matterId', id])]);
      assert.equal(res.status, 303, res.text);
      await waitForRun(b, `/billing/mass/runs/${runId}`);
      runs.push(runId);
    }
    const [run1, run2] = runs as [string, string];
    const drafts = async () => t.db.db.selectFrom('billing_bill').select(['id', 'batch_id', 'file_number', 'on_hold', 'due_date']).where('status', '=', 'draft').execute();
    assert.equal((await drafts()).length, 5);

    // One batch, by total ascending: the filter form shows what is chosen, the Total heading
    // offers the other direction, and the action form carries the batch.
    let html = ok(await b.get(`/billing/drafts?batch=${run1}&sort=total&dir=asc`));
    assert.match(html, /data-count="3"/);
    assert.match(html, new RegExp(`<option value="${run1}" selected>`));
    assert.match(html, /<option value="total" selected>Total<\/option>/);
    assert.match(html, /<option value="asc">ascending<\/option><option value="desc">descending<\/option>/);
    // (The column sorted by shows its direction: an arrow, and aria-sort for screen readers.)
    assert.match(html, new RegExp(`aria-sort="ascending"><a href="/billing/drafts\\?batch=${run1}&sort=total&dir=desc">Total <span aria-hidden="true">▲</span><`));
    assert.match(html, /data-action="remove"/, 'a batch listed can have drafts taken out of it');
    const actionForm = hiddenFieldsOf(html, /<form method="post" action="\/billing\/drafts\/act"/);
    assert.deepEqual(actionForm.filter(([k]) => k !== '_csrf' && k !== 'listing'), [['batch', run1], ['sort', 'total'], ['dir', 'asc']]);
    assert.equal(actionForm.find(([k]) => k === 'listing')?.[1], listingOf(html), 'the form says which drafts it listed');

    // "All 3 drafts listed", put on hold: the three of this batch, none of the other.
    html = ok(await followed(b, postMany(b, '/billing/drafts/act', [...actionForm.filter(([k]) => k !== '_csrf'), ['every', 'yes'], ['action', 'hold']])));
    assert.match(html, /data-done="3"/);
    let now = await drafts();
    assert.deepEqual(now.filter((d) => Number(d.on_hold) === 1).map((d) => d.batch_id), [run1, run1, run1]);

    // A search: the box keeps it, the hold filter too, and "all drafts listed" is the one found.
    const target = now.find((d) => d.batch_id === run2)!;
    // % and _ are searched for as typed, not as wildcards (no draft's file number, matter or client holds them).
    for (const q of ['%', '_', '1%', '\\']) assert.match(ok(await b.get(`/billing/drafts?q=${encodeURIComponent(q)}`)), /<span id="drafts-total" data-count="0">/, `q=${q}`);
    html = ok(await b.get(`/billing/drafts?q=${encodeURIComponent(target.file_number as string)}&hold=no`));
    assert.match(html, /data-count="1"/);
    assert.match(html, new RegExp(`type="search" name="q" value="${String(target.file_number).replace('.', '\\.')}"`));
    assert.match(html, /<option value="no" selected>Not on hold<\/option>/);
    const found = hiddenFieldsOf(html, /<form method="post" action="\/billing\/drafts\/act"/).filter(([k]) => k !== '_csrf');
    assert.deepEqual(found.filter(([k]) => k !== 'listing'), [['q', target.file_number], ['hold', 'no'], ['sort', 'matter'], ['dir', 'asc']]);
    html = ok(await followed(b, postMany(b, '/billing/drafts/act', [...found, ['every', 'yes'], ['action', 'hold']])));
    assert.match(html, /data-done="1"/);
    now = await drafts();
    assert.deepEqual(now.filter((d) => Number(d.on_hold) === 1).map((d) => d.id).sort(), [...now.filter((d) => d.batch_id === run1).map((d) => d.id), target.id].sort());

    // Modify this batch (as its form is rendered): new terms for the other run's drafts only.
    html = ok(await b.get(`/billing/drafts?batch=${run2}`));
    const modifyForm = hiddenFieldsOf(html, /<form method="post" action="\/billing\/drafts\/modify"/).filter(([k]) => k !== '_csrf');
    assert.deepEqual(modifyForm.filter(([k]) => k !== 'listing'), [['every', 'yes'], ['batch', run2], ['sort', 'matter'], ['dir', 'asc']]);
    const before = new Map(now.map((d) => [d.id, d.due_date]));
    // It asks first (seed 004's modify acts on what the clerk sees): how many, which, and what changes; nothing is written.
    const auditBefore = await t.db.db.selectFrom('audit_log').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    html = ok(await followed(b, postMany(b, '/billing/drafts/modify', [...modifyForm, ['newTerms', '7']])));
    assert.match(html, /<h1>Change 2 draft bills\?<\/h1>/);
    assert.match(html, /<li>Payment terms: 7 days<\/li>/);
    assert.match(html, /Every draft of the batch listed is changed/);
    assert.equal((html.match(/<tr data-bill="/g) ?? []).length, 2);
    for (const d of await drafts()) assert.equal(d.due_date, before.get(d.id), 'nothing changed before confirming');
    assert.deepEqual(await t.db.db.selectFrom('audit_log').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow(), auditBefore, 'nothing audited before confirming');
    const confirmForm = hiddenFieldsOf(html, /<form method="post" action="\/billing\/drafts\/modify"/).filter(([k]) => k !== '_csrf');
    assert.deepEqual(confirmForm.filter(([k]) => k !== 'listing'), [['every', 'yes'], ['batch', run2], ['sort', 'matter'], ['dir', 'asc'], ['newTerms', '7'], ['confirmed', 'yes']]);
    html = ok(await followed(b, postMany(b, '/billing/drafts/modify', confirmForm)));
    assert.match(html, /data-done="2"/);
    for (const d of await drafts()) {
      if (d.batch_id === run2) assert.equal(d.due_date, '2026-03-08');
      else assert.equal(d.due_date, before.get(d.id), 'the other batch is unchanged');
    }
    // Modify the drafts listed under the hold filter: the ones not on hold only (its form carries the filter).
    html = ok(await b.get('/billing/drafts?hold=no'));
    const notHeld = hiddenFieldsOf(html, /<form method="post" action="\/billing\/drafts\/modify"/).filter(([k]) => k !== '_csrf');
    assert.deepEqual(notHeld.filter(([k]) => k !== 'listing'), [['every', 'yes'], ['hold', 'no'], ['sort', 'matter'], ['dir', 'asc']]);
    const dueBefore = new Map((await drafts()).map((d) => [d.id, d.due_date]));
    // No batch chosen: the confirmation says every run's drafts (and the composer's) are changed.
    html = ok(await followed(b, postMany(b, '/billing/drafts/modify', [...notHeld, ['newTerms', '21']])));
    assert.match(html, /id="modify-scope">No batch is chosen: every draft listed is changed, whichever run made it/);
    for (const d of await drafts()) assert.equal(d.due_date, dueBefore.get(d.id), 'nothing changed before confirming');
    html = ok(await followed(b, postMany(b, '/billing/drafts/modify', [...notHeld, ['newTerms', '21'], ['confirmed', 'yes']])));
    for (const d of await drafts()) assert.equal(d.due_date, Number(d.on_hold) === 1 ? dueBefore.get(d.id) : '2026-03-22', `${d.file_number} on hold ${d.on_hold}`);
    // Preview the selected drafts (seed 001): one opens its PDF; all of a batch listed are listed by file number, each a PDF.
    const one = (await drafts())[0]!;
    const single = await postMany(b, '/billing/drafts/act', [['id', String(one.id)], ['action', 'preview']]);
    assert.equal(single.status, 303);
    assert.equal(single.location, `/billing/bills/${one.id}/pdf?preview=1`);
    html = ok(await postMany(b, '/billing/drafts/act', [['batch', run1], ['every', 'yes'], ['action', 'preview']]));
    const previews = [...html.matchAll(/<a href="\/billing\/bills\/([0-9a-f-]{36})\/pdf\?preview=1" target="_blank" rel="noopener" data-preview="[^"]+">([^<]+)<\/a>/g)].map((m) => [m[1], m[2]]);
    assert.deepEqual(previews.map(([id]) => id).sort(), (await drafts()).filter((d) => d.batch_id === run1).map((d) => String(d.id)).sort());
    for (const [id, label] of previews) assert.equal(label, `${(await drafts()).find((d) => d.id === id)!.file_number} draft`);
    assert.match(html, /<h1>Preview 3 draft bills<\/h1>/);
    assert.match(html, new RegExp(`href="/billing/drafts\\?batch=${run1}&sort=matter&dir=asc" data-action="back"`), 'back to the batch listed');
    const allThree = /href="([^"]+)"[^>]*data-preview-pdf="1-3">All 3 in one PDF</.exec(html);
    assert.ok(allThree, 'one PDF of the three');
    const combined = await b.get(unescapeHtml(allThree[1]!));
    assert.equal(combined.status, 200);

    // Bill the rest; the list (by matter, the default) runs in file number order, 2.1 before 10.1,
    // and the batch column says when each batch ran.
    await b.get(`/billing/mass?${q}`);
    const rest = /name="runId" value="([^"]+)"/.exec(b.last!.text)![1]!;
    assert.equal((await b.post('/billing/mass/runs', { invoiceDate: DATE, upTo: DATE, runId: rest, scope: 'all', confirm: 'yes' })).status, 303);
    await waitForRun(b, `/billing/mass/runs/${rest}`);
    html = ok(await b.get('/billing/drafts'));
    const listed = [...html.matchAll(/<span class="file-no">([0-9.]+)<\/span>/g)].map((m) => m[1]!);
    const numeric = (f: string) => f.split('.').map(Number) as [number, number];
    assert.ok(listed.some((f) => numeric(f)[0] >= 10) && listed.some((f) => numeric(f)[0] < 10), `file numbers either side of 10: ${listed.join(' ')}`);
    assert.deepEqual(listed, [...listed].sort((x, y) => numeric(x)[0] - numeric(y)[0] || numeric(x)[1] - numeric(y)[1]));
    assert.equal(listed.length, (await drafts()).length);
    assert.doesNotMatch(html, /title="Batch [0-9a-f-]{36}">[0-9a-f]{8}-/, 'batches shown by when they ran, not by id');
    // Approved, they wait in bill production in the same order.
    html = ok(await followed(b, postMany(b, '/billing/drafts/act', [['every', 'yes'], ['listing', listingOf(html)], ['action', 'approve'], ['confirmed', 'yes']])));
    assert.match(html, /data-refused="4"/, 'the four on hold stay drafts');
    // Each refused bill is named by its file number, not its id.
    const refusedNames = [...html.matchAll(/<li data-refused="[^"]+"><a href="[^"]+">([^<]+)<\/a>: ([^<]+)<\/li>/g)].map((m) => [m[1], m[2]]);
    assert.equal(refusedNames.length, 4);
    for (const [name, reason] of refusedNames) { assert.match(name!, /^\d+\.\d+ draft$/); assert.match(reason!, /on hold/); }
    html = ok(await b.get('/billing/production'));
    const producing = [...html.matchAll(/<td>([0-9.]+) [^<]*<\/td>\s*<td>[^<]*<\/td>\s*<td>\d{4}-/g)].map((m) => m[1]!);
    assert.equal(producing.length, listed.length - 4);
    assert.deepEqual(producing, [...producing].sort((x, y) => numeric(x)[0] - numeric(y)[0] || numeric(x)[1] - numeric(y)[1]));
    assert.ok(producing.some((f) => numeric(f)[0] >= 10));
    // A sort that is not one of the list's (even an object's own property name) is refused naming it, not a 500.
    assert.match(ok(await b.get('/billing/drafts?sort=constructor'), 422), /data-error-for="sort"/);
    const proto = ok(await b.get('/billing/drafts?sort=__proto__&dir=sideways'), 422);
    assert.match(proto, /data-error-for="sort"/);
    assert.match(proto, /data-error-for="dir"/);
  }, { outputs: testOutputs(dirs) });
  } finally {
    removeDirs(dirs);
  }
}, { timeout: 300_000 });

eachDialect('a matter excluded from mass billing is not listed, but naming it in the Matter filter picks it by name: listed and billed', async (db) => {
  await withApp(db, async (t) => {
    const { cmds, b, q } = await clerkOnSmallFirm(t);
    const listedIds = async (extra = '') => [...ok(await b.get(`/billing/mass?${q}${extra}`)).matchAll(/<tr id="mass-([0-9a-f-]{36})"/g)].map((m) => m[1]!);
    const all = await listedIds();
    assert.ok(all.length >= 3);
    const target = all[1]!;
    await cmds.setBillingOptions(ctx, target, { set: { massBilling: { exclude: true, onlyExpenses: false } } });
    await t.runtime.relay.drain();
    const fileNumber = String((await t.db.db.selectFrom('billing_matter').select('file_number').where('id', '=', target).executeTakeFirstOrThrow()).file_number);
    assert.ok(!(await listedIds()).includes(target), 'not on the list');
    assert.match(ok(await b.get(`/billing/mass/why?${q}&lookup=${fileNumber}`)), /excluded from mass billing \(it can still be picked by name\)/);
    // Named in the Matter filter: listed, and Bill all under that filter drafts it.
    assert.deepEqual(await listedIds(`&matter=${fileNumber}`), [target]);
    await b.get(`/billing/mass?${q}&matter=${fileNumber}`);
    const runId = /name="runId" value="([^"]+)"/.exec(b.last!.text)![1]!;
    const res = await b.post('/billing/mass/runs', { invoiceDate: DATE, upTo: DATE, matter: fileNumber, runId, scope: 'all', confirm: 'yes' });
    assert.equal(res.status, 303, res.text);
    await waitForRun(b, `/billing/mass/runs/${runId}`);
    const drafted = await t.db.db.selectFrom('billing_bill').select(['matter_id', 'batch_id']).where('status', '=', 'draft').execute();
    assert.deepEqual(drafted.map((d) => [d.matter_id, d.batch_id]), [[target, runId]]);
  });
});

eachDialect('a mass billing row\'s Composer link opens the bill the row says will be billed: the run\'s template, terms and time filter carried', async (db) => {
  await withApp(db, async (t) => {
    await seed(t, { matters: 6, entriesPerMatter: 4 });
    const clerk = await t.user('billing');
    const b = t.browser();
    await b.login(clerk.email);
    const tks = (await t.db.db.selectFrom('billing_timekeeper').select('id').orderBy('id').execute()).map((r) => String(r.id));
    let checked = 0;
    for (const tk of tks) {
      const html = ok(await b.get(`/billing/mass?invoiceDate=${DATE}&upTo=${DATE}&template=total-only&terms=7&timeTk=${tk}`));
      for (const m of html.matchAll(/data-minor="(\d+)">[^<]*<\/td>\s*<td class="why">[^<]*(?:<small[^>]*>[^<]*<\/small>)?<\/td>\s*<td><a href="([^"]+)" data-compose>/g)) {
        const [, willBill, href] = m as unknown as [string, string, string];
        // The run's choices, and the list to come back to once the draft is saved (seed 001's last-minute changes).
        assert.match(href, new RegExp(`\\?invoiceDate=${DATE}&upTo=${DATE}&template=total-only&paymentTermsDays=7&tk=${tk}&back=([^&]+)$`));
        assert.equal(new URLSearchParams(href.slice(href.indexOf('?'))).get('back'), `invoiceDate=${DATE}&upTo=${DATE}&template=total-only&terms=7&timeTk=${tk}`);
        const composer = ok(await b.get(href));
        assert.equal(Number(/data-total="total" data-minor="(-?\d+)"/.exec(composer)![1]), Number(willBill), `${href}: the composer's total is the row's`);
        assert.match(composer, /<option value="total-only" selected>total-only<\/option>/);
        assert.match(composer, /name="paymentTermsDays" value="7"/);
        assert.match(composer, new RegExp(`<input type="checkbox" name="tk" value="${tk}" checked>`), /Only these timekeepers[\s\S]{0,600}/.exec(composer)?.[0]);
        checked++;
      }
      if (checked >= 2) break;
    }
    assert.ok(checked >= 2, `rows checked: ${checked}`);
  });
});

eachDialect('time "To a cap" on the page: refused naming the amount when it is no amount; a row whose time waits links to the composer with that time toggled out, at the row\'s total', async (db) => {
  await withApp(db, async (t) => {
    await seed(t, { matters: 6, entriesPerMatter: 4 });
    const clerk = await t.user('billing');
    const b = t.browser();
    await b.login(clerk.email);
    const bad = await b.get(`/billing/mass?invoiceDate=${DATE}&upTo=${DATE}&timeCap=amount&timeCapAmount=lots`);
    assert.equal(bad.status, 422);
    assert.match(unescapeHtml(bad.text), /data-error-for="timeCapAmount"/);
    // An amount no matter's time reaches: every row's time waits; the rows left bill their costs.
    const html = ok(await b.get(`/billing/mass?invoiceDate=${DATE}&upTo=${DATE}&timeCap=amount&timeCapAmount=99999999.00`));
    let checked = 0;
    for (const m of html.matchAll(/data-minor="(\d+)">[^<]*<\/td>\s*<td class="why">([^<]*)(?:<small[^>]*>[^<]*<\/small>)?<\/td>\s*<td><a href="([^"]+)" data-compose>/g)) {
      const [, willBill, why, href] = m as unknown as [string, string, string, string];
      if (!/[?&]noTime=yes/.test(unescapeHtml(href))) continue;
      assert.match(why, /Time not at the cap chosen: it waits/);
      const composer = ok(await b.get(unescapeHtml(href)));
      assert.equal(Number(/data-total="total" data-minor="(-?\d+)"/.exec(composer)![1]), Number(willBill), `${href}: the composer's total is the row's`);
      assert.match(composer, /<input type="checkbox" name="noTime" value="yes" checked> Leave time off this bill/);
      checked++;
    }
    assert.ok(checked >= 1, `rows checked: ${checked}`);
    // A template the firm does not have is named on the page at once (422), not at the run's last step.
    const noTemplate = await b.get(`/billing/mass?invoiceDate=${DATE}&upTo=${DATE}&template=nope`);
    assert.equal(noTemplate.status, 422);
    assert.match(unescapeHtml(noTemplate.text), /data-error-for="template"><strong>Bill template<\/strong> /);
    // The confirmation says what the cap does to the run.
    await b.get(`/billing/mass?invoiceDate=${DATE}&upTo=${DATE}&timeCap=matter`);
    const confirm = await b.post('/billing/mass/runs', { invoiceDate: DATE, upTo: DATE, timeCap: 'matter', scope: 'all' });
    assert.match(unescapeHtml(confirm.text), /Time is billed only for matters at their WIP cap; the others' time waits\./);
    assert.match(confirm.text, /name="timeCap" value="matter"/);
  });
});

eachDialect('API: POST /bill-runs, GET /bill-runs/{id}, POST /bills/approve', async (db) => {
  await withApp(db, async (t) => {
    await seed(t);
    const clerk = await t.user('billing');
    const token = await t.token(clerk.email);
    const b = t.browser();
    const auth = { authorization: `Bearer ${token}` };
    const post = (path: string, body: unknown) => b.postJson(`/api/v1${path}`, body, { headers: auth });

    let res = await post('/bill-runs', { invoiceDate: 'soon', upTo: DATE, filters: { wipCap: '1.2345' } });
    assert.equal(res.status, 422, res.text);
    assert.deepEqual(Object.keys(res.json().error.fields).sort(), ['filters.wipCap', 'invoiceDate']);
    res = await post('/bill-runs', { invoiceDate: DATE, upTo: DATE, filters: { time: { cap: 'lots' } } });
    assert.equal(res.status, 422, res.text);
    assert.deepEqual(Object.keys(res.json().error.fields), ['filters.time.cap']);
    res = await post('/bill-runs', { invoiceDate: DATE, upTo: '2026-03-05' });
    assert.equal(res.status, 422);
    assert.deepEqual(Object.keys(res.json().error.fields), ['upTo']);

    res = await post('/bill-runs', { id: 'api-run-0001', invoiceDate: DATE, upTo: DATE, paymentTermsDays: 7, wait: true });
    assert.equal(res.status, 202, res.text);
    const run = res.json();
    assert.equal(run.status, 'done');
    assert.ok(run.draftedCount >= 8);
    assert.equal(run.matters.length, run.matterCount);
    const drafted = run.matters.filter((m: { state: string }) => m.state === 'drafted');
    assert.ok(drafted.every((m: { total: string }) => /^-?\d+\.\d{2}$/.test(m.total)));
    // Idempotent: the same id with the same choices is the same run; with other choices it is refused (409 naming id).
    res = await post('/bill-runs', { id: 'api-run-0001', invoiceDate: DATE, upTo: DATE, paymentTermsDays: 7, wait: true });
    assert.equal(res.json().draftedCount, run.draftedCount);
    res = await post('/bill-runs', { id: 'api-run-0001', invoiceDate: DATE, upTo: DATE, wait: true });
    assert.equal(res.status, 409, res.text);
    assert.deepEqual(Object.keys(res.json().error.fields), ['id']);
    res = await b.get('/api/v1/bill-runs/api-run-0001', { ...auth, accept: 'application/json' });
    assert.equal(res.status, 200);
    assert.equal(res.json().id, 'api-run-0001');
    assert.equal((await b.get('/api/v1/bill-runs/nope-nope-nope', { ...auth, accept: 'application/json' })).status, 404);

    const ids = drafted.map((m: { billId: string }) => m.billId);
    await b.postJson(`/api/v1/bills/${ids[0]}/hold`, { onHold: true }, { headers: auth });
    res = await post('/bills/approve', { billIds: [...ids, 'not-a-bill'] });
    assert.equal(res.status, 200, res.text);
    const out = res.json();
    assert.equal(out.approved, ids.length - 1);
    assert.equal(out.refused, 2);
    assert.match(out.results.find((r: { billId: string }) => r.billId === ids[0]).reason, /on hold/);
    assert.match(out.results.find((r: { billId: string }) => r.billId === 'not-a-bill').reason, /not found/);

    // Roles: readonly may read a run, not create one or approve.
    const reader = await t.user('readonly');
    const rt = await t.token(reader.email);
    assert.equal((await b.postJson('/api/v1/bill-runs', { invoiceDate: DATE, upTo: DATE }, { headers: { authorization: `Bearer ${rt}` } })).status, 403);
    assert.equal((await b.get('/api/v1/bill-runs/api-run-0001', { authorization: `Bearer ${rt}`, accept: 'application/json' })).status, 200);
    const doc = (await b.get('/api/openapi.json')).json();
    assert.ok(doc.paths['/api/v1/bill-runs'] && doc.paths['/api/v1/bill-runs/{id}'] && doc.paths['/api/v1/bills/approve']);
  });
}, { timeout: 300_000 });

eachDialect('bill runs: hand-picked ids billing has no copy of (a bill id as matterId) are refused naming matterIds, nothing created; known but ineligible matters are still taken; an unknown scope is refused', async (db) => {
  await withApp(db, async (t) => {
    await seed(t);
    const clerk = await t.user('billing');
    const token = await t.token(clerk.email);
    const auth = { authorization: `Bearer ${token}` };
    const b = t.browser();
    await b.login(clerk.email);
    const api = (body: unknown) => b.postJson('/api/v1/bill-runs', body, { headers: auth });

    const html = ok(await b.get(`/billing/mass?invoiceDate=${DATE}&upTo=${DATE}`));
    const rowIds = [...html.matchAll(/<tr id="mass-([0-9a-f-]{36})"/g)].map((m) => m[1]!);
    assert.ok(rowIds.length >= 3, `eligible ${rowIds.length}`);
    // A draft on the first matter: its id is a bill's, and the matter is now known to billing but not eligible.
    const draft = await b.postJson('/api/v1/bills', { matterId: rowIds[0], invoiceDate: DATE, upTo: DATE }, { headers: auth });
    assert.equal(draft.status, 201, draft.text);
    const billId = draft.json().id as string;
    await t.runtime.relay.drain();

    const count = async (table: 'billing_batch' | 'billing_batch_matter' | 'audit_log' | 'outbox') => Number((await db.db.selectFrom(table).select((e) => e.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    const counts = async () => ({ batches: await count('billing_batch'), rows: await count('billing_batch_matter'), audit: await count('audit_log'), outbox: await count('outbox') });
    const before = await counts();
    assert.equal(before.batches, 0);

    // The page: refused at the confirmation and at the run, listing the unknown ids (and not the known one).
    const picked = (ids: string[], extra: [string, string][] = []): [string, string][] => [['invoiceDate', DATE], ['upTo', DATE], ['runId', 'run-unknown-0001'], ['scope', 'selected'], ...extra, ...ids.map((id): [string, string] => ['matterId', id])];
    for (const extra of [[['confirm', 'yes']], []] as [string, string][][]) {
      const res = await postMany(b, '/billing/mass/runs', picked([rowIds[1]!, billId, 'not-a-matter-0001'], extra));
      const text = unescapeHtml(res.text);
      assert.equal(res.status, 422, text.slice(0, 800));
      const named = /data-error-for="matterIds"><strong>Matters<\/strong> ([^<]*)</.exec(text)?.[1] ?? '';
      assert.match(named, new RegExp(`billing has no matter with ids ${billId}, not-a-matter-0001`));
      assert.ok(!named.includes(rowIds[1]!), 'a matter billing knows is not listed');
      // The refusal above the form says it in the page's words, not the field's internal name.
      assert.match(text, /data-refusal>Matters: billing has no matter with ids /);
    }
    // An unknown scope is not "Bill all".
    for (const scope of ['bogus', '']) {
      const res = await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['runId', 'run-unknown-0002'], ['scope', scope], ['confirm', 'yes']]);
      assert.equal(res.status, 422, res.text.slice(0, 800));
      assert.match(res.text, /data-error-for="scope"><strong>Bill<\/strong> /);
      assert.doesNotMatch(res.text, /data-refusal>scope /);
    }
    // The API: 422 naming matterIds with the unknown id.
    let res = await api({ id: 'api-unknown-0001', invoiceDate: DATE, upTo: DATE, matterIds: [rowIds[1], billId], wait: true });
    assert.equal(res.status, 422, res.text);
    assert.deepEqual(Object.keys(res.json().error.fields), ['matterIds']);
    assert.equal(res.json().error.fields.matterIds, `billing has no matter with id ${billId}`);
    assert.deepEqual(await counts(), before, 'no run, no batch rows, no audit row, no event');
    assert.equal((await b.get('/api/v1/bill-runs/api-unknown-0001', { ...auth, accept: 'application/json' })).status, 404);

    // Hand-picked matters billing knows are taken, an ineligible one skipped with its reason.
    res = await api({ id: 'api-known-0001', invoiceDate: DATE, upTo: DATE, matterIds: [rowIds[0], rowIds[1]], wait: true });
    assert.equal(res.status, 202, res.text);
    const run = res.json();
    const state = (id: string) => run.matters.find((m: { matterId: string }) => m.matterId === id);
    assert.equal(state(rowIds[0]!).state, 'skipped');
    assert.ok(state(rowIds[0]!).reason, 'skipped with its reason');
    assert.equal(state(rowIds[1]!).state, 'drafted');
    const page = await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['runId', 'run-known-0001'], ['scope', 'selected'], ['confirm', 'yes'], ['matterId', rowIds[2]!]]);
    assert.equal(page.status, 303, page.text.slice(0, 800));
    await waitForRun(b, '/billing/mass/runs/run-known-0001');
  });
}, { timeout: 300_000 });

eachDialect('mass billing lists excluded matters on request, to tick and bill with the others; Bill all still leaves them out', async (db) => {
  await withApp(db, async (t) => {
    const { cmds, b, q } = await clerkOnSmallFirm(t);
    // Exclude one of the listed matters.
    let html = ok(await b.get(`/billing/mass?${q}`));
    const listed = [...html.matchAll(/<tr id="mass-([0-9a-f-]{36})"/g)].map((m) => m[1]!);
    assert.ok(listed.length >= 3, `${listed.length} listed`);
    const [excludedId, otherId, laterExcluded] = listed as [string, string, string];
    await cmds.setBillingOptions(ctx, excludedId, { set: { massBilling: { exclude: true } } });
    await t.runtime.relay.drain();
    html = ok(await b.get(`/billing/mass?${q}`));
    assert.doesNotMatch(html, new RegExp(`id="mass-${excludedId}"`), 'off the list');
    assert.doesNotMatch(html, /id="mass-excluded"/, 'excluded matters are listed only on request');
    html = ok(await b.get(`/billing/mass?${q}&showExcluded=yes`));
    assert.match(html, new RegExp(`<tr id="excluded-${excludedId}" data-matter="${excludedId}">\\s*<td><input type="checkbox" name="matterId" value="${excludedId}"`));
    assert.equal([...html.matchAll(/<tr id="excluded-/g)].length, 1);
    // The same columns and links as a listed row: its quote, and its bill in the composer.
    const excludedRow = new RegExp(`<tr id="excluded-${excludedId}"[\\s\\S]*?</tr>`).exec(html)![0];
    assert.match(excludedRow, /<td class="num" data-quote>/);
    assert.match(excludedRow, new RegExp(`<a href="/billing/matters/${excludedId}/compose\\?[^"]*" data-compose>Composer</a>`));
    assert.match(html, /name="showExcluded" value="yes" checked/);
    // The lookup agrees with the page: listed among the excluded when they are shown, else not listed for its exclusion.
    const fileNo = />([0-9]+\.[0-9]+)<\/a><\/td>/.exec(excludedRow)![1]!;
    assert.match(ok(await b.get(`/billing/mass/why?${q}&showExcluded=yes&lookup=${fileNo}`, { 'HX-Request': 'true' })), /data-reason>[^<]* is listed under Excluded from mass billing: tick it there/);
    assert.match(ok(await b.get(`/billing/mass/why?${q}&lookup=${fileNo}`, { 'HX-Request': 'true' })), /is not listed because:[\s\S]*data-reason>The matter is excluded from mass billing/);
    // A quote says what it covers (a quote of costs is not compared with the fees).
    await cmds.setBillingOptions(ctx, otherId, { set: { quote: { amountMinor: 50_000, includes: 'costs', ifWipBelow: 'wip_only', ifWipAbove: 'wip_only' } } });
    await t.runtime.relay.drain();
    assert.match(new RegExp(`<tr id="mass-${otherId}"[\\s\\S]*?</tr>`).exec(ok(await b.get(`/billing/mass?${q}&showExcluded=yes`)))![0], /data-quote>\$500\.00 <small class="muted">\(costs\)<\/small>/);
    assert.equal(ok(await b.get(`/billing/mass?${q}&showExcluded=maybe`), 422).includes('data-error-for="showExcluded"'), true);

    // Ticked with another: both billed in one run; the confirmation says which of them is excluded.
    const runId = /name="runId" value="([^"]+)"/.exec(html)![1]!;
    const confirmation = ok(await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['showExcluded', 'yes'], ['runId', runId], ['scope', 'selected'], ['matterId', excludedId], ['matterId', otherId]]));
    const names = Object.fromEntries((await t.db.db.selectFrom('billing_matter').select(['id', 'file_number', 'name']).where('id', 'in', [excludedId, otherId]).execute()).map((m) => [m.id as string, `${m.file_number} ${m.name}`]));
    const picked = /id="confirm-picked">The matters picked: ([^<]*)\.<\/p>/.exec(confirmation)![1]!.split('; ');
    assert.deepEqual(picked.sort(), [`${names[excludedId]} (excluded from mass billing)`, names[otherId]].sort());
    const res = await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['showExcluded', 'yes'], ['runId', runId], ['scope', 'selected'], ['confirm', 'yes'], ['matterId', excludedId], ['matterId', otherId]]);
    assert.equal(res.status, 303, res.text.slice(0, 300));
    await waitForRun(b, `/billing/mass/runs/${runId}`);
    const drafted = (await t.db.db.selectFrom('billing_bill').select('matter_id').where('batch_id', '=', runId).execute()).map((r) => String(r.matter_id)).sort();
    assert.deepEqual(drafted, [excludedId, otherId].sort());

    // Another excluded matter with work: Bill all leaves it out even when listed.
    await cmds.setBillingOptions(ctx, laterExcluded, { set: { massBilling: { exclude: true } } });
    await t.runtime.relay.drain();
    html = ok(await b.get(`/billing/mass?${q}&showExcluded=yes`));
    const all = /name="runId" value="([^"]+)"/.exec(html)![1]!;
    assert.match(html, new RegExp(`<tr id="excluded-${laterExcluded}"`));
    assert.ok(Number(/id="eligible-count" data-count="(\d+)"/.exec(html)![1]) > 0, 'other matters to bill');
    assert.equal((await b.post('/billing/mass/runs', { invoiceDate: DATE, upTo: DATE, showExcluded: 'yes', runId: all, scope: 'all', confirm: 'yes' })).status, 303);
    await waitForRun(b, `/billing/mass/runs/${all}`);
    const billedAll = (await t.db.db.selectFrom('billing_bill').select('matter_id').where('batch_id', '=', all).execute()).map((r) => String(r.matter_id));
    assert.ok(billedAll.length > 0);
    assert.ok(!billedAll.includes(laterExcluded), 'Bill all leaves the excluded matter out');
  });
});

eachDialect('the confirmation and the run page say which time and disbursements the bills take, when those filters leave work off', async (db) => {
  await withApp(db, async (t) => {
    const { b, q } = await clerkOnSmallFirm(t);
    const tk = await t.db.db.selectFrom('billing_timekeeper').select(['id', 'initials', 'name']).orderBy('initials').executeTakeFirstOrThrow();
    const code = (await t.db.db.selectFrom('billing_wip').select('code').where('kind', '=', 'disbursement').where('code', 'is not', null).orderBy('code').executeTakeFirstOrThrow()).code as string;
    await b.get(`/billing/mass?${q}`);
    const runId = /name="runId" value="([^"]+)"/.exec(b.last!.text)![1]!;
    const filters: [string, string][] = [['invoiceDate', DATE], ['upTo', DATE], ['timeFrom', '2026-01-01'], ['timeTk', tk.id], ['disbCode', code], ['runId', runId], ['scope', 'all']];
    const html = ok(await postMany(b, '/billing/mass/runs', filters));
    const text = `Each bill takes only time dated from 2026-01-01 of ${tk.initials} ${tk.name}, and only disbursements with code ${code}; the matters' other unbilled work waits for a later bill.`;
    assert.equal(unescapeHtml(/<p class="notice" id="confirm-item-filters">([^<]*)<\/p>/.exec(html)?.[1] ?? ''), text);
    const res = await postMany(b, '/billing/mass/runs', [...filters, ['confirm', 'yes']]);
    assert.equal(res.status, 303, res.text);
    await waitForRun(b, res.location!);
    assert.equal(unescapeHtml(/<p class="notice" id="run-item-filters">([^<]*)<\/p>/.exec(ok(await b.get(res.location!)))?.[1] ?? ''), text);
    // Without those filters: no such note.
    await b.get(`/billing/mass?${q}`);
    const plain = ok(await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['runId', /name="runId" value="([^"]+)"/.exec(b.last!.text)![1]!], ['scope', 'all']]));
    assert.doesNotMatch(plain, /confirm-item-filters/);
  });
});

eachDialect('the up-to date left blank follows the invoice date: a month-end invoice date changed alone lists the work up to it, not a refusal', async (db) => {
  await withApp(db, async (t) => {
    const { b } = await clerkOnSmallFirm(t);
    const upToInput = (html: string) => /<input[^>]*name="upTo"[^>]*>/.exec(html)![0];
    const first = ok(await b.get('/billing/mass'));
    assert.match(upToInput(first), /value=""/, 'blank on a first visit: the invoice date');
    const monthEnd = ok(await b.get('/billing/mass?invoiceDate=2026-02-28'));
    assert.doesNotMatch(monthEnd, /data-error-for="upTo"/);
    assert.match(upToInput(monthEnd), /value=""/);
    // The hidden fields of Bill all carry the date the list used.
    assert.match(monthEnd, /<input type="hidden" name="upTo" value="2026-02-28">/);
    // Typed, it is kept (and still refused after the invoice date).
    assert.match(upToInput(ok(await b.get('/billing/mass?invoiceDate=2026-02-28&upTo=2026-02-15'))), /value="2026-02-15"/);
    const late = await b.get('/billing/mass?invoiceDate=2026-02-28&upTo=2026-03-01');
    assert.equal(late.status, 422);
    assert.match(upToInput(late.text), /value="2026-03-01"/);
  });
});

eachDialect('Bill selected with nothing ticked: refused (422) with the reason at the top of the page, above the filters, where the page opens', async (db) => {
  await withApp(db, async (t) => {
    const { b, q } = await clerkOnSmallFirm(t);
    await b.get(`/billing/mass?${q}`);
    const runId = /name="runId" value="([^"]+)"/.exec(b.last!.text)![1]!;
    const res = await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['runId', runId], ['scope', 'selected']]);
    assert.equal(res.status, 422);
    const refusal = res.text.indexOf('data-refusal>Tick the matters to bill, or use Bill all');
    assert.ok(refusal > 0, 'the reason is given');
    assert.ok(refusal < res.text.indexOf('id="mass-filters"'), 'above the filters');
    assert.equal((await t.db.db.selectFrom('billing_batch').select('id').execute()).length, 0, 'nothing created');
  });
});

eachDialect('a WIP or time amount typed with its select left at "Any" filters by the amount and the select says so; typed with "the matter\'s cap" chosen it is refused, not ignored', async (db) => {
  await withApp(db, async (t) => {
    const { b, q } = await clerkOnSmallFirm(t);
    const selected = (html: string, name: string) => new RegExp(`<select name="${name}">[\\s\\S]*?<option value="([a-z]*)" selected>`).exec(html)?.[1];
    const all = Number(/data-count="(\d+)"/.exec(ok(await b.get(`/billing/mass?${q}`)))![1]);
    const byAmount = ok(await b.get(`/billing/mass?${q}&capAmount=400.00`));
    assert.equal(selected(byAmount, 'cap'), 'amount');
    assert.equal(byAmount.match(/data-count="(\d+)"/)![1], ok(await b.get(`/billing/mass?${q}&cap=amount&capAmount=400.00`)).match(/data-count="(\d+)"/)![1], 'the same list as choosing the amount');
    assert.ok(Number(byAmount.match(/data-count="(\d+)"/)![1]) < all, 'the amount filtered the list');
    assert.equal(selected(ok(await b.get(`/billing/mass?${q}&timeCapAmount=100.00`)), 'timeCap'), 'amount');
    for (const [choice, amount] of [['cap', 'capAmount'], ['timeCap', 'timeCapAmount']] as const) {
      const html = ok(await b.get(`/billing/mass?${q}&${choice}=matter&${amount}=400.00`), 422);
      assert.match(unescapeHtml(html), new RegExp(`data-error-for="${amount}">.*leave it blank to use each matter's own cap, or choose "at or over the amount"`));
    }
  });
});

eachDialect('the drafts page tells batches apart: each labelled to the second, with the drafts it holds now', async (db) => {
  await withApp(db, async (t) => {
    const { b, q } = await clerkOnSmallFirm(t);
    const html = ok(await b.get(`/billing/mass?${q}`));
    const ids = [...html.matchAll(/<tr id="mass-([0-9a-f-]{36})"/g)].map((m) => m[1]!);
    const run = async (picked: string[]) => {
      const runId = /name="runId" value="([^"]+)"/.exec(ok(await b.get(`/billing/mass?${q}`)))![1]!;
      const res = await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['runId', runId], ['scope', 'selected'], ['confirm', 'yes'], ...picked.map((id): [string, string] => ['matterId', id])]);
      assert.equal(res.status, 303, res.text.slice(0, 300));
      await waitForRun(b, res.location!);
      return runId;
    };
    const first = await run(ids.slice(0, 2));
    t.clock.advanceMs(1_000);
    const second = await run(ids.slice(2, 3));
    // One of the first batch's drafts deleted: the batch holds one now.
    const gone = await t.db.db.selectFrom('billing_bill').select('id').where('batch_id', '=', first).orderBy('id').executeTakeFirstOrThrow();
    const billing = createBillingCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    await billing.deleteDraft(ctx, gone.id);
    const page = ok(await b.get('/billing/drafts'));
    const option = (id: string) => new RegExp(`<option value="${id}"[^>]*>([^<]*)</option>`).exec(page)?.[1] ?? '';
    assert.match(option(first), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \S+ \(1 draft now, of 2 drafted\)$/);
    assert.match(option(second), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \S+ \(1 draft now, of 1 drafted\)$/);
    assert.notEqual(option(first).slice(0, 19), option(second).slice(0, 19), 'told apart to the second');
  });
});

eachDialect('the drafts list refuses choices it does not offer (422 naming the field) and lists every draft, rather than reading them silently as the defaults', async (db) => {
  await withApp(db, async (t) => {
    const { b } = await clerkOnSmallFirm(t);
    for (const [query, field] of [['batch=no-such-run', 'batch'], ['sort=bogus', 'sort'], ['dir=sideways', 'dir'], ['hold=maybe', 'hold'], ['page=0', 'page'], ['page=x', 'page']] as const) {
      const res = await b.get(`/billing/drafts?${query}`);
      assert.equal(res.status, 422, query);
      assert.match(res.text, new RegExp(`data-error-for="${field}"`), query);
      assert.match(unescapeHtml(res.text), /data-refusal>The list's choices need correcting/, query);
    }
    for (const query of ['', 'sort=total&dir=desc', 'hold=yes', 'page=2']) assert.equal((await b.get(`/billing/drafts?${query}`)).status, 200, query);
  });
});

eachDialect('a matter named in the Matter filter and not listed is explained on the page, as the lookup would', async (db) => {
  await withApp(db, async (t) => {
    const { b, q } = await clerkOnSmallFirm(t);
    const html = ok(await b.get(`/billing/mass?${q}`));
    const [, id, fileNo] = /<tr id="mass-([0-9a-f-]{36})"[\s\S]*?<td class="file-no"><a [^>]*>([0-9.]+)<\/a>/.exec(html)!;
    const billing = createBillingCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    await billing.createDraft(ctx, { matterId: id!, invoiceDate: DATE, upTo: DATE });
    // Excluded from mass billing too: named in the filter it is picked by name, so that is no reason.
    await createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay }).setBillingOptions(ctx, id!, { set: { massBilling: { exclude: true } } });
    await t.runtime.relay.drain();
    const named = unescapeHtml(ok(await b.get(`/billing/mass?${q}&matter=${fileNo}`)));
    assert.match(named, /data-count="0"/);
    assert.match(named, new RegExp(`<div id="matter-why"><p>${fileNo!.replace('.', '\\.')} [^<]* is not listed because:</p><ul><li data-reason>The matter already has a bill in draft`));
    assert.doesNotMatch(named, /data-reason>The matter is excluded/);
    // Listed: nothing to explain.
    assert.doesNotMatch(ok(await b.get(`/billing/mass?${q}`)), /id="matter-why"/);
  });
});

eachDialect('more excluded matters than the page lists: it says how many, and the lookup of one left off says how to bill it (the Matter filter), not that it is listed', async (db) => {
  await withApp(db, async (t) => {
    await seed(t, { matters: 112, entriesPerMatter: 1 });
    const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const clerk = await t.user('billing');
    const b = t.browser();
    await b.login(clerk.email);
    const q = `invoiceDate=${DATE}&upTo=${DATE}`;
    // The matters to bill (two pages of 100), before they are excluded.
    const rowsOf = (html: string, kind: string) => [...html.matchAll(new RegExp(`<tr id="${kind}-([0-9a-f-]{36})"`, 'g'))].map((m) => m[1]!);
    const billable = [...rowsOf(ok(await b.get(`/billing/mass?${q}&page=1`)), 'mass'), ...rowsOf(ok(await b.get(`/billing/mass?${q}&page=2`)), 'mass')];
    const total = billable.length;
    assert.ok(total > 100, `${total} matters to bill`);
    // A composer opened from page 2 comes back to page 2 (its rows' links carry the page in `back`).
    const composeOn2 = /<a href="([^"]+)" data-compose>/.exec(ok(await b.get(`/billing/mass?${q}&page=2`)))![1]!;
    assert.equal(new URLSearchParams(composeOn2.slice(composeOn2.indexOf('?'))).get('back'), `${q}&page=2`);
    const composeOn1 = /<a href="([^"]+)" data-compose>/.exec(ok(await b.get(`/billing/mass?${q}&page=1`)))![1]!;
    assert.equal(new URLSearchParams(composeOn1.slice(composeOn1.indexOf('?'))).get('back'), q);
    for (const id of billable) await cmds.setBillingOptions(ctx, id, { set: { massBilling: { exclude: true } } });
    await t.runtime.relay.drain();

    const html = ok(await b.get(`/billing/mass?${q}&showExcluded=yes`));
    assert.match(html, /id="eligible-count" data-count="0"/);
    const shown = rowsOf(html, 'excluded');
    assert.equal(shown.length, 100, 'the first 100 listed');
    // (The demo firm excludes a few matters of its own.)
    const excludedTotal = Number(/id="excluded-more" data-total="(\d+)"/.exec(html)?.[1]);
    assert.ok(excludedTotal >= total, `${excludedTotal} excluded`);
    assert.match(html, new RegExp(`id="excluded-more" data-total="${excludedTotal}">The first 100 of ${excludedTotal} excluded matters are listed`));
    const fileOf = async (id: string) => (await t.db.db.selectFrom('billing_matter').select('file_number').where('id', '=', id).executeTakeFirstOrThrow()).file_number as string;
    const left = billable.filter((id) => !shown.includes(id));
    assert.ok(left.length >= total - 100, `${left.length} not listed`);
    const why = async (id: string) => unescapeHtml(ok(await b.get(`/billing/mass/why?${q}&showExcluded=yes&lookup=${await fileOf(id)}`, { 'HX-Request': 'true' })));
    assert.match(await why(shown[0]!), /is listed under Excluded from mass billing: tick it there/);
    const leftFile = await fileOf(left[0]!);
    const answer = await why(left[0]!);
    assert.doesNotMatch(answer, /is listed under Excluded/);
    assert.match(answer, new RegExp(`is excluded from mass billing and is not among the first 100 excluded matters listed: type ${leftFile.replace('.', '\\.')} in the Matter filter`));
    // As it says: named in the Matter filter, it is listed to bill.
    assert.match(ok(await b.get(`/billing/mass?${q}&matter=${leftFile}`)), new RegExp(`<tr id="mass-${left[0]}"`));
  });
}, { timeout: 300_000 });
