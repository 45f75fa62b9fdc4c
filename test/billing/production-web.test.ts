/**
 * The bill production pages over HTTP on both databases: the toolbar's choices per
 * selection and role, produce with confirmation and progress (a run in the database), the
 * stored PDF and the watermarked preview, revert to draft, email manually, the settings
 * (letterhead shown on the PDF, email template validation, the test email), and CSRF.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { createLedgerCommands } from '../../src/modules/ledger/index.ts';
import { PRODUCTION_LIST_ROWS } from '../../src/modules/billing/production-routes.ts';
import { LEASE_MS } from '../../src/modules/billing/production.ts';
import { claimMany, insertRun } from '../../src/modules/billing/production-store.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { eachDialect } from '../support/db.ts';
import { unescapeHtml, withApp } from '../support/app.ts';
import type { Browser, Page, TestApp } from '../support/app.ts';
import { pdfText } from '../adapters/pdf.ts';
import { attachmentOf } from '../adapters/smtp.ts';
import { approvedBills, setupFrom, closeSharedPdf, fetchPdf, filesIn, outputDirs, readEml, removeDirs, scriptedSmtp, smtpOutputs, testOutputs } from './production-support.ts';
import { ctx, work } from './support.ts';

after(closeSharedPdf);

function postMany(b: Browser, path: string, pairs: [string, string][], csrf = true): Promise<Page> {
  const body = new URLSearchParams(pairs);
  if (csrf && b.csrf) body.append('_csrf', b.csrf);
  return b.request('POST', path, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: body.toString() });
}
/** The hidden fields of the page's form posting to `action` (its `_csrf` left out: postMany adds the session's). */
function hiddenFields(html: string, action: string): [string, string][] {
  const form = new RegExp(`<form method="post" action="${action}"[\\s\\S]*?</form>`).exec(unescapeHtml(html))![0];
  return [...form.matchAll(/<input type="hidden" name="([a-zA-Z_]+)" value="([^"]*)"/g)].map((m): [string, string] => [m[1]!, m[2]!]).filter(([k]) => k !== '_csrf');
}
const actionsOn = (html: string): string[] => [...html.matchAll(/data-action="([a-z_]+)"/g)].map((m) => m[1]!);

/** A production run's progress page (the htmx fragment) polled until the run is done (20 s at most): its last answer. */
async function runDone(b: Browser, runUrl: string): Promise<Page> {
  let progress: Page | null = null;
  for (let i = 0; i < 200; i++) {
    progress = await b.get(runUrl, { 'HX-Request': 'true' });
    if (progress.text.includes('data-status="done"')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return progress!;
}



/**
 * Two approved bills (a print copy each, no email) and a production run over them that a process
 * started and stopped without recording anything: with `holdFirst`, it had taken bill a, its hold
 * renewed by a step 20 s after its last heartbeat. The billing clerk signed in.
 */
async function stoppedRunOfTwo(t: TestApp, holdFirst: boolean) {
  const [a, b] = await approvedBills(setupFrom(t), 2, { copiesToPrint: 1, useClientAddress: false, sendTo: [] });
  await t.user('billing');
  const clerk = t.browser();
  assert.equal((await clerk.login('billing@firm.test')).status, 303);
  const startedAt = t.clock.now();
  const runId = crypto.randomUUID();
  await t.db.db.transaction().execute(async (trx) => {
    await insertRun(trx, { id: runId, createdAt: startedAt.toISOString(), createdBy: 'billing@firm.test', total: 2, status: 'running', heartbeatAt: startedAt.toISOString(), finishedAt: null },
      [a!, b!].map((x) => ({ billId: x.billId, number: x.number })));
    if (holdFirst) await claimMany(trx, [{ billId: a!.billId, cycle: a!.approvedAt! }], 'stopped-process', startedAt.toISOString(), new Date(startedAt.getTime() + 20_000 + LEASE_MS).toISOString());
  });
  return { a: a!, b: b!, clerk, runId };
}

eachDialect('bill production pages: choices, produce with progress, PDFs, revert, email manually, settings', async (db) => {
  const dirs = outputDirs();
  await withApp(db, async (t) => {
    const [a, b] = await approvedBills(setupFrom(t), 2, { copiesToPrint: 1, useClientAddress: false, sendTo: ['ap@northwind.example'] });
    await t.user('billing');
    await t.user('readonly');
    const clerk = t.browser();
    assert.equal((await clerk.login('billing@firm.test')).status, 303);

    // A form's address opened again (history, a copied link, after signing in again): the list it belongs to, not 404.
    for (const [path, to] of [['/billing/production/runs', '/billing/production'], ['/billing/drafts/act', '/billing/drafts'], ['/billing/drafts/modify', '/billing/drafts'], ['/billing/mass/runs', '/billing/mass']]) {
      const again = await clerk.get(path!);
      assert.deepEqual([again.status, again.location], [303, to], path);
    }

    // The list and seed 000's choices.
    const list = await clerk.get('/billing/production');
    assert.equal(list.status, 200);
    assert.ok(list.text.includes(a!.number!) && list.text.includes(b!.number!));
    assert.deepEqual(actionsOn(list.text), ['produce_all', 'preview_all', 'revert_all']);
    // A tick the server refuses (a tampered value) comes back as the toolbar with the reason: htmx swaps it in, so the
    // page keeps its toolbar (an error box in its place took the toolbar away until a reload).
    const tampered = await clerk.get('/billing/production/toolbar?bill=nonsense', { 'HX-Request': 'true' });
    assert.equal(tampered.status, 422);
    assert.ok(tampered.text.trimStart().startsWith('<div class="actions" id="production-toolbar"'), tampered.text);
    assert.match(tampered.text, /data-toolbar-error>A selected bill id is not an id: tick the bills again/);
    assert.ok(!tampered.text.includes('No bill selected'), 'no word on the selection it could not read');
    const one = await clerk.get(`/billing/production/toolbar?bill=${a!.billId}`, { 'HX-Request': 'true' });
    assert.deepEqual(actionsOn(one.text), ['produce', 'preview', 'ebilling', 'revert', 'email_manually', 'create_payment']);
    assert.ok(one.text.includes('formaction="/ebilling/export"') && one.text.includes('formaction="/ledger/receipts/new"'));
    const two = await clerk.get(`/billing/production/toolbar?bill=${a!.billId}&bill=${b!.billId}`, { 'HX-Request': 'true' });
    assert.deepEqual(actionsOn(two.text), ['produce', 'preview', 'ebilling', 'revert']);
    assert.equal((await clerk.get('/billing/production/toolbar?bill=not-an-id')).status, 422);
    const reader = t.browser();
    await reader.login('readonly@firm.test');
    assert.deepEqual(actionsOn((await reader.get(`/billing/production/toolbar?bill=${a!.billId}`)).text), ['preview', 'ebilling'], 'read-only staff only look');
    assert.equal((await reader.get(`/billing/production/produce?bill=${a!.billId}`)).status, 403);

    // Produce one: confirmation, then a run whose progress the page polls.
    const confirm = await clerk.get(`/billing/production/produce?bill=${a!.billId}`);
    assert.equal(confirm.status, 200);
    assert.ok(confirm.text.includes('ap@northwind.example') && confirm.text.includes('data-action="confirm-produce"'));
    assert.match(confirm.text, /id="letterhead-unset"[\s\S]*go out under the name "Your firm"/, 'warned: the letterhead was never set');
    // Where the output goes, in a clerk's words: no server paths or tuning for a clerk; an admin sees them.
    assert.match(confirm.text, /data-output="mail">Emails are saved as files for the firm's mail system to send \(file drop\)/);
    assert.match(confirm.text, /data-output="print">Copies go to the firm's print folder/);
    for (const path of [dirs.print, dirs.mail, dirs.root]) assert.ok(!confirm.text.includes(path), `no server path on the clerk's page (${path})`);
    assert.doesNotMatch(confirm.text, /data-output-detail|timeout|tab\(s\)/);
    await t.user('admin', { email: 'admin@firm.test' });
    const admin = t.browser();
    await admin.login('admin@firm.test');
    const adminConfirm = (await admin.get(`/billing/production/produce?bill=${a!.billId}`)).text;
    assert.ok(adminConfirm.includes(`data-output-detail>(folder: ${dirs.print})`), 'an admin sees where the copies go');
    assert.equal((await postMany(clerk, '/billing/production/runs', [['bill', a!.billId], ['runId', crypto.randomUUID()]], false)).status, 403, 'CSRF token required');
    const started = await postMany(clerk, '/billing/production/runs', [['bill', a!.billId], ['runId', crypto.randomUUID()]]);
    assert.equal(started.status, 303);
    const runUrl = started.location!;
    assert.match(runUrl, /^\/billing\/production\/runs\/[0-9a-f-]{36}$/);
    const progress = await runDone(clerk, runUrl);
    assert.ok(progress.text.includes('data-status="done"') && progress.text.includes('data-done="1"'), progress.text);
    assert.ok(!progress.text.includes('hx-trigger="every 1s"'), 'polling stops once finished');
    assert.match(progress.text, /data-outputs>; printed 1 copy; emailed to ap@northwind\.example<\/span>/, 'the run says what went out');
    assert.equal((await clerk.get('/billing/production')).text.includes(a!.number!), false, 'a produced bill leaves the list');
    assert.equal(filesIn(dirs.print).length, 1);
    // A new run over the produced bill (a page kept from before, another tab): nothing is done
    // again, and its page says so, naming the bill by its number (not as if it had emailed it).
    const mailBefore = filesIn(dirs.mail).length;
    const rerun = await postMany(clerk, '/billing/production/runs', [['bill', a!.billId], ['runId', crypto.randomUUID()]]);
    assert.equal(rerun.status, 303);
    const againPage = unescapeHtml((await runDone(clerk, rerun.location!)).text);
    assert.match(againPage, /Finished: 1 of 1 produced \(1 of them produced already: nothing sent or printed again\)/);
    assert.match(againPage, new RegExp(`<a href="/billing/bills/${a!.billId}">${a!.number!.replace(/\./g, '\\.')}</a>`), 'named by its number');
    assert.match(againPage, /Produced already<\/span>[\s\S]*data-already> \([^)]+\): nothing was sent or printed again by this run/);
    assert.doesNotMatch(againPage, /data-outputs>/, 'no outputs claimed');
    assert.equal(filesIn(dirs.print).length, 1, 'not printed again');
    assert.equal(filesIn(dirs.mail).length, mailBefore, 'not emailed again');

    const finalPdf = await fetchPdf(t.app, clerk, `/billing/bills/${a!.billId}/pdf`);
    assert.equal(finalPdf.status, 200);
    assert.equal(finalPdf.type, 'application/pdf');
    assert.ok(pdfText(finalPdf.bytes).includes(a!.number!));
    assert.equal((await fetchPdf(t.app, clerk, `/billing/bills/${b!.billId}/pdf`)).status, 404, 'not produced yet');
    const preview = await fetchPdf(t.app, clerk, `/billing/bills/${b!.billId}/pdf?preview=1`);
    assert.equal(preview.status, 200);
    assert.match(pdfText(preview.bytes), /PREVIEW/);
    assert.equal((await fetchPdf(t.app, reader, `/billing/bills/${b!.billId}/pdf?preview=1`)).status, 200, 'readers may preview');
    // Preview of several bills: one PDF of all of them, each bill on pages of its own.
    const listedPreview = await reader.get(`/billing/production/preview?bill=${b!.billId}&bill=${a!.billId}`);
    assert.equal(listedPreview.status, 200);
    // (a is produced now: the page lists the approved one; the combined PDF takes any bill.)
    const link = /<a class="button" href="([^"]+)"[^>]*data-preview-pdf="1-1">Open its PDF<\/a>/.exec(listedPreview.text);
    assert.ok(link && unescapeHtml(link[1]!) === `/billing/bills/preview.pdf?bill=${b!.billId}`, listedPreview.text);
    const combined = await fetchPdf(t.app, reader, `/billing/bills/preview.pdf?bill=${b!.billId}&bill=${a!.billId}`);
    assert.equal(combined.status, 200);
    assert.equal(combined.type, 'application/pdf');
    const pages = pdfText(combined.bytes).split('\f');
    const onPage = (n: string) => pages.findIndex((p) => p.includes(n));
    assert.ok(onPage(b!.number!) >= 0 && onPage(a!.number!) > onPage(b!.number!), `${b!.number} then ${a!.number}, each on its own pages`);
    assert.ok(!pages[onPage(a!.number!)]!.includes(b!.number!), 'the second bill starts a new page');
    assert.match(pages.join(''), /PREVIEW/);
    assert.equal((await fetchPdf(t.app, reader, `/billing/bills/preview.pdf?bill=${a!.billId}&bill=not-an-id`)).status, 422, 'ids only');
    assert.equal((await fetchPdf(t.app, reader, `/billing/bills/preview.pdf`)).status, 422, 'at least one bill');
    assert.equal((await fetchPdf(t.app, reader, `/billing/bills/preview.pdf?${Array.from({ length: 26 }, (_, i) => `bill=00000000-0000-4000-8000-${String(i).padStart(12, '0')}`).join('&')}`)).status, 422, 'at most 25 in one PDF');
    assert.equal((await fetchPdf(t.app, reader, `/billing/bills/preview.pdf?bill=00000000-0000-4000-8000-000000000000`)).status, 404, 'an unknown bill');

    // Letterhead from the settings page shows on the bill.
    const settings = await clerk.get('/billing/settings');
    assert.equal(settings.status, 200);
    assert.ok(settings.text.includes('data-output="mail"'));
    const badLetterhead = await clerk.post('/billing/settings/letterhead', { firmName: 'Holloway & Stern LLP', email: 'not-an-email', version: '0' });
    assert.equal(badLetterhead.status, 422);
    assert.match(unescapeHtml(badLetterhead.text), /must be an email address/);
    assert.equal((await clerk.post('/billing/settings/letterhead', { firmName: 'Holloway & Stern LLP', address: '1 Court St\nSpringfield', taxId: 'EIN 12-3456789', phone: '', email: 'accounts@holloway.example', mailFrom: '', paymentNote: 'Wire to account 123', version: '0' })).status, 303);
    assert.equal((await clerk.post('/billing/settings/letterhead', { firmName: 'Stale', version: '0' })).status, 409, 'a stale form is refused');
    assert.doesNotMatch((await clerk.get(`/billing/production/produce?bill=${a!.billId}`)).text, /id="letterhead-unset"/, 'set: no warning');
    const lettered = pdfText((await fetchPdf(t.app, clerk, `/billing/bills/${b!.billId}/pdf?preview=1`)).bytes);
    assert.ok(lettered.includes('Holloway & Stern LLP') && lettered.includes('EIN 12-3456789') && lettered.includes('Wire to account 123'), lettered);

    // Email templates: unknown merge fields refused naming the field; a good one saved.
    await clerk.get('/billing/settings');
    // The built-in templates are changed through their Edit forms (at version 0: not stored yet).
    const editStandard = await clerk.get('/billing/settings?editEmail=standard');
    assert.match(editStandard.text, /Edit email template <code>standard<\/code>[^]*name="mode" value="edit"><input type="hidden" name="version" value="0">/);
    const edit = { mode: 'edit', version: '0' };
    const badTemplate = await clerk.post('/billing/settings/email-templates', { ...edit, name: 'standard', subject: 'Bill {{bill_number}}', body: 'Pay {{amount}}' });
    assert.equal(badTemplate.status, 422);
    assert.match(unescapeHtml(badTemplate.text), /unknown merge field \{\{amount\}\}/);
    assert.equal((await clerk.post('/billing/settings/email-templates', { ...edit, name: 'standard', subject: 'Bill {{bill_number}} ({{total}})', body: 'Dear {{client}}, see attached. Due {{due_date}}.' })).status, 303);
    assert.equal((await clerk.post('/billing/settings/bill-templates', { ...edit, name: 'total-only', layout: 'total_only', title: 'Statement of account', footer: 'Thank you' })).status, 303);

    // Revert the other one to draft from production; its preview says DRAFT.
    assert.equal((await clerk.get(`/billing/production/revert?bill=${b!.billId}`)).status, 200);
    const reverted = await postMany(clerk, '/billing/production/revert', [['bill', b!.billId]]);
    assert.equal(reverted.status, 303);
    assert.equal((await t.runtime.database.db.selectFrom('billing_bill').select('status').where('id', '=', b!.billId).executeTakeFirstOrThrow()).status, 'draft');
    assert.match(pdfText((await fetchPdf(t.app, clerk, `/billing/bills/${b!.billId}/pdf?preview=1`)).bytes), /DRAFT/);

    // Email manually: prefilled from the (new) template, PDF attached, a double submit sends once.
    const compose = await clerk.get(`/billing/bills/${a!.billId}/email`);
    assert.equal(compose.status, 200);
    const key = /name="key" value="([^"]+)"/.exec(compose.text)![1]!;
    const subject = unescapeHtml(/name="subject" value="([^"]*)"/.exec(compose.text)![1]!);
    assert.equal(subject, `Bill ${a!.number} ($${(a!.totals.totalMinor / 100).toFixed(2).replace(/\B(?=(\d{3})+(?!\d))/g, ',')})`);
    const badMail = await clerk.post(`/billing/bills/${a!.billId}/email`, { key, to: 'nope', cc: '', subject, text: ' ' });
    assert.equal(badMail.status, 422);
    assert.match(badMail.text, /role="alert">Please correct: To, Message</, 'named as the form labels them');
    assert.match(badMail.text, /name="to"[^>]*aria-invalid="true" aria-describedby="email-to-error"/);
    assert.match(badMail.text, /<p class="field-error" id="email-to-error">/, 'each error tied to its input');
    const form = { key, to: 'ap@northwind.example', cc: 'partner@holloway.example', subject, text: 'Dear Northwind, our bill is attached.' };
    const sentOnce = await clerk.post(`/billing/bills/${a!.billId}/email`, form);
    assert.equal(sentOnce.status, 303);
    assert.equal((await clerk.post(`/billing/bills/${a!.billId}/email`, form)).status, 303);
    // Back on the page after sending: the form is folded away behind "Send another copy" (no live Send a click away).
    const afterSend = unescapeHtml((await clerk.get(sentOnce.location!)).text);
    assert.match(afterSend, /<p class="flash" role="status">Email sent<\/p>/);
    assert.match(afterSend, /<details id="send-another"><summary>Send another copy<\/summary>\s*<form method="post" action="[^"]+\/email"/);
    // The message is kept by the server under a key, not read from the address: typed text shows nothing and folds nothing.
    assert.doesNotMatch(sentOnce.location!, /Email/);
    const spoofed = unescapeHtml((await clerk.get(`/billing/bills/${a!.billId}/email?done=${encodeURIComponent('Email sent. Call 555-0100')}`)).text);
    assert.ok(!spoofed.includes('Call 555-0100') && !spoofed.includes('class="flash"'), 'no message from the address');
    assert.ok(!spoofed.includes('<details id="send-another">'), 'the form is not folded as if sent');
    const listSpoof = unescapeHtml((await clerk.get(`/billing/production?done=${encodeURIComponent('All bills voided')}`)).text);
    assert.ok(!listSpoof.includes('All bills voided'));
    // The same compose form posted three times at once: every post answers as sent (no 500), one email goes.
    const again = await clerk.get(`/billing/bills/${a!.billId}/email`);
    const key2 = /name="key" value="([^"]+)"/.exec(again.text)![1]!;
    const form2 = { ...form, key: key2, text: 'Sent once, clicked thrice.' };
    const posts = await Promise.all([1, 2, 3].map(() => clerk.post(`/billing/bills/${a!.billId}/email`, form2)));
    assert.deepEqual(posts.map((p) => p.status), [303, 303, 303]);
    assert.equal(readEml(dirs.mail).filter((m) => m.includes('clicked thrice')).length, 1);
    // The same form, corrected after sending (Back, edit, send): another message, sent.
    assert.equal((await clerk.post(`/billing/bills/${a!.billId}/email`, { ...form2, text: 'Corrected: sent once more.' })).status, 303);
    assert.equal(readEml(dirs.mail).filter((m) => m.includes('Corrected: sent once more.')).length, 1, 'the corrected form is sent');
    const mails = readEml(dirs.mail).filter((m) => !m.includes('clicked thrice') && !m.includes('Corrected: sent once more.'));
    assert.equal(mails.length, 2, 'the production email and one manual email');
    const manual = mails.find((m) => m.includes('our bill is attached'))!;
    assert.match(manual, /Cc: partner@holloway\.example/);
    assert.deepEqual(new Uint8Array(attachmentOf(manual)!.bytes), finalPdf.bytes, 'the produced PDF is attached');

    // The test email.
    await clerk.get('/billing/settings');
    assert.equal((await clerk.post('/billing/settings/test-email', { to: 'not an address' })).status, 422);
    assert.equal((await clerk.post('/billing/settings/test-email', { to: 'it@holloway.example' })).status, 303);
    assert.equal(readEml(dirs.mail).length, 5, "the two before, the one of the three at once, the corrected one, and the test email");
    const audit = await t.runtime.database.db.selectFrom('audit_log').select('action').where('action', 'like', 'billing.%').execute();
    for (const action of ['billing.settings_changed', 'billing.email_template_saved', 'billing.bill_template_saved', 'billing.bill_emailed_manually', 'billing.test_email_sent', 'billing.production_started']) {
      assert.ok(audit.some((r) => r.action === action), `audited: ${action}`);
    }
  }, { outputs: testOutputs(dirs) });
  removeDirs(dirs);
});

eachDialect('bill production: Edit options opens the matter\'s billing options; what is saved there is what the bill is produced with (seed 001)', async (db) => {
  const dirs = outputDirs();
  await withApp(db, async (t) => {
    const [a] = await approvedBills(setupFrom(t), 1, { copiesToPrint: 2, useClientAddress: false, sendTo: ['ap@northwind.example'] });
    await t.user('billing');
    const clerk = t.browser();
    assert.equal((await clerk.login('billing@firm.test')).status, 303);
    const rowOf = (html: string) => new RegExp(`<tr data-bill="${a!.billId}">([\\s\\S]*?)</tr>`).exec(html)![1]!;

    const list = await clerk.get('/billing/production');
    const row = rowOf(list.text);
    assert.ok(row.includes('ap@northwind.example') && />2</.test(row), row);
    const href = /<a href="([^"]+)" data-edit-options>Edit options<\/a>/.exec(row)![1]!;
    assert.equal(href, `/matters/${a!.matterId}/billing-options?back=%2Fbilling%2Fproduction#bo-matter-billing`);

    // The options page offers the way back, and its forms keep it.
    const page = await clerk.get(href.replace(/#.*$/, ''));
    assert.equal(page.status, 200);
    assert.match(page.text, /<a href="\/billing\/production" data-back>Back to bill production<\/a>/);
    assert.ok(page.text.includes(`action="/matters/${a!.matterId}/billing-options/matter-billing?back=%2Fbilling%2Fproduction"`));
    for (const bad of ['https://evil.example/', '//evil.example/x', '/\\evil.example', 'javascript:alert(1)', '/billing/production?x=1']) {
      const p = await clerk.get(`/matters/${a!.matterId}/billing-options?back=${encodeURIComponent(bad)}`);
      assert.equal(p.status, 200);
      assert.ok(!p.text.includes('data-back') && !p.text.includes('?back='), `not a way back: ${bad}`);
    }

    // Bad input changes nothing and keeps the way back.
    const fields = { billingEnabled: 'on', billingStatus: 'active', billTemplate: 'standard', emailTemplate: 'standard' };
    const bad = await clerk.post(`/matters/${a!.matterId}/billing-options/matter-billing?back=%2Fbilling%2Fproduction`, { ...fields, sendTo: 'not an address', copiesToPrint: '0' });
    assert.equal(bad.status, 422);
    assert.ok(bad.text.includes('data-back'));
    await t.runtime.relay.drain();
    assert.ok(rowOf((await clerk.get('/billing/production')).text).includes('ap@northwind.example'), 'nothing changed');

    // No printing and no email for this matter: saved, back to production (no JavaScript: a redirect that keeps the way back).
    const saved = await clerk.post(`/matters/${a!.matterId}/billing-options/matter-billing?back=%2Fbilling%2Fproduction`, { ...fields, sendTo: '', copiesToPrint: '0' });
    assert.equal(saved.status, 303);
    assert.match(saved.location ?? '', new RegExp(`^/matters/${a!.matterId}/billing-options\\?back=%2Fbilling%2Fproduction&done=[\\w-]+#bo-matter-billing$`));
    await t.runtime.relay.drain();
    const changed = rowOf((await clerk.get('/billing/production')).text);
    assert.ok(!changed.includes('ap@northwind.example') && />none</.test(changed), changed);

    // Produced with the new options: finalised, its PDF stored, nothing printed, nothing emailed.
    // The confirmation posted three times at once is one run.
    const confirmPage = await clerk.get(`/billing/production/produce?bill=${a!.billId}`);
    const runKey = /name="runId" value="([0-9a-f-]{36})"/.exec(confirmPage.text)![1]!;
    const posts = await Promise.all([1, 2, 3].map(() => clerk.post('/billing/production/runs', { bill: a!.billId, runId: runKey })));
    assert.deepEqual(posts.map((p) => [p.status, p.location]), [1, 2, 3].map(() => [303, `/billing/production/runs/${runKey}`]));
    const started = posts[0]!;
    assert.equal((await t.runtime.database.db.selectFrom('billing_production_run').select('id').execute()).length, 1, 'one run');
    let progress = '';
    for (let i = 0; i < 200 && !progress.includes('data-status="done"'); i++) {
      progress = (await clerk.get(started.location!, { 'HX-Request': 'true' })).text;
      if (!progress.includes('data-status="done"')) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(progress.includes('data-done="1"'), progress);
    assert.equal((await t.runtime.database.db.selectFrom('billing_bill').select('status').where('id', '=', a!.billId).executeTakeFirstOrThrow()).status, 'finalised');
    assert.equal(filesIn(dirs.print).length, 0, 'no copies printed');
    assert.equal(readEml(dirs.mail).length, 0, 'no email sent');
    assert.equal((await fetchPdf(t.app, clerk, `/billing/bills/${a!.billId}/pdf`)).status, 200, 'the final PDF is stored');
  }, { outputs: testOutputs(dirs) });
  removeDirs(dirs);
});

eachDialect('an interrupted production run counts a bill produced after it began but not yet recorded (outcomes are written in batches) as produced, and Resume sends or prints nothing again for it', async (db) => {
  const dirs = outputDirs();
  await withApp(db, async (t) => {
    // A run a process started over a and b; it stopped before recording anything.
    const { a, b, clerk, runId } = await stoppedRunOfTwo(t, false);
    // Bill a was produced meanwhile (as that process would have, before writing its outcome): another run here.
    t.clock.advanceMs(1_000);
    const confirmPage = await clerk.get(`/billing/production/produce?bill=${a!.billId}`);
    const runKey = /name="runId" value="([0-9a-f-]{36})"/.exec(confirmPage.text)![1]!;
    assert.equal((await clerk.post('/billing/production/runs', { bill: a!.billId, runId: runKey })).status, 303);
    assert.ok((await runDone(clerk, `/billing/production/runs/${runKey}`)).text.includes('data-done="1"'));
    assert.equal(filesIn(dirs.print).length, 1);
    // As a process killed after finalising the bill and before its batched writes: the production record not yet marked finalised.
    await t.db.db.updateTable('billing_bill_production').set({ finalised_at: null }).where('bill_id', '=', a.billId).execute();
    const page = async () => unescapeHtml((await clerk.get(`/billing/production/runs/${runId}`)).text);
    // The production list: b is waiting in the run, being produced while its heartbeat is fresh...
    const listRowOfB = async () => new RegExp(`<tr[^>]*data-bill="${b.billId}"[\\s\\S]*?</tr>`).exec((await clerk.get('/billing/production')).text)![0];
    assert.match(await listRowOfB(), new RegExp(`<a href="/billing/production/runs/${runId}" data-producing>Being produced: see the run</a>`));
    // Interrupted (a minute without a heartbeat, no hold left): 1 of 2, a shown produced with its PDF, b waiting.
    t.clock.advanceMs(70_000);
    // ... and then said to be in a run that stopped, to resume there.
    assert.match(await listRowOfB(), new RegExp(`<a href="/billing/production/runs/${runId}" data-producing data-stopped>Its production run stopped part way: see the run to resume it</a>`));
    let html = await page();
    assert.match(html, /This run was interrupted after 1 of 2\./);
    assert.match(html, /<progress max="2" value="1">/);
    const rowOf = (id: string) => new RegExp(`<tr data-bill="${id}"[\\s\\S]*?</tr>`).exec(html)![0];
    assert.match(rowOf(a!.billId), /data-unrecorded>Produced<\/span> <a href="\/billing\/bills\/[^"]+\/pdf">PDF<\/a>/);
    assert.match(rowOf(a!.billId), /the run stopped before recording it: Resume sends or prints nothing again/);
    assert.match(rowOf(b!.billId), /Waiting/);
    // Resume: b produced; a's steps found done (its record finishes), printed no second time.
    assert.equal((await clerk.post(`/billing/production/runs/${runId}/resume`, {})).status, 303);
    html = (await runDone(clerk, `/billing/production/runs/${runId}`)).text;
    assert.ok(html.includes('data-done="2"'), html);
    assert.match(unescapeHtml(html), /Finished: 2 of 2 produced/);
    assert.equal(filesIn(dirs.print).length, 2, 'each printed once');
  }, { outputs: testOutputs(dirs) });
  removeDirs(dirs);
});

eachDialect('bill production with more approved bills than a page lists: the list pages through them, and Produce all takes them all (up to a run\'s limit)', async (db) => {
  await withApp(db, async (t) => {
    const [a, b] = await approvedBills(setupFrom(t), 2);
    // 5,000 more approved bills: copies of one (the list shows 5,000; nothing here is produced).
    const kdb = t.runtime.database.db;
    const template = await kdb.selectFrom('billing_bill').selectAll().where('id', '=', a!.billId).executeTakeFirstOrThrow() as Record<string, unknown>;
    const extra = 5_000;
    const copyId = (n: number) => `ffffffff-ffff-7fff-8fff-${n.toString(16).padStart(12, '0')}`;
    for (let i = 0; i < extra; i += 500) {
      const rows = Array.from({ length: Math.min(500, extra - i) }, (_, j) => ({
        ...template, id: copyId(i + j), number: `${template.number}.c${i + j}`, sequence: 1_000 + i + j,
      }));
      await kdb.insertInto('billing_bill').values(rows).execute();
    }
    await t.user('billing');
    const clerk = t.browser();
    assert.equal((await clerk.login('billing@firm.test')).status, 303);

    const list = await clerk.get('/billing/production');
    assert.equal(list.status, 200);
    assert.match(list.text, new RegExp(`data-shown="${PRODUCTION_LIST_ROWS}" data-total="${extra + 2}">Bills 1 to ${PRODUCTION_LIST_ROWS} of ${extra + 2} approved`));
    const rowIds = (html: string) => [...html.matchAll(/<tr data-bill="([^"]+)"/g)].map((m) => m[1]!);
    assert.equal(rowIds(list.text).length, PRODUCTION_LIST_ROWS);
    assert.match(list.text, /<a href="\/billing\/production\?page=2" rel="next">/);
    assert.doesNotMatch(list.text, /rel="prev"/);
    assert.match(list.text, /No bill selected: the actions apply to every approved bill \(on every page\)\./);
    // Every bill on exactly one page; past the last page, the last; a page that is not a number, the first.
    const pages = Math.ceil((extra + 2) / PRODUCTION_LIST_ROWS);
    const seen = new Set(rowIds(list.text));
    for (let p = 2; p <= pages; p++) {
      const html = (await clerk.get(`/billing/production?page=${p}`)).text;
      for (const id of rowIds(html)) { assert.ok(!seen.has(id), `${id} on two pages`); seen.add(id); }
      if (p === pages) {
        assert.doesNotMatch(html, /rel="next"/);
        assert.match(html, new RegExp(`<a href="/billing/production\\?page=${p - 1}" rel="prev">`));
        assert.match(html, /<input type="hidden" name="page" value="\d+">/, 'the choices for ticked bills stay on the page (without JavaScript)');
        assert.deepEqual(rowIds((await clerk.get(`/billing/production?page=${p + 5}`)).text), rowIds(html));
      }
    }
    assert.equal(seen.size, extra + 2);
    assert.deepEqual(rowIds((await clerk.get('/billing/production?page=x1')).text), rowIds(list.text));
    // Nothing selected: Produce all is every approved bill, not only those shown.
    const all = await clerk.get('/billing/production/produce');
    assert.equal(all.status, 200);
    assert.match(all.text, new RegExp(`<h1>Produce ${extra + 2} bills</h1>`));
    assert.doesNotMatch(all.text, /data-total=/, 'no more than one run takes');
    // A selected bill is found even when the list does not show it (a bookmarked link).
    const last = copyId(extra - 1);
    const one = await clerk.get(`/billing/production/produce?bill=${last}`);
    assert.match(one.text, /<h1>Produce 1 bill<\/h1>/);
    assert.ok(one.text.includes(`name="bill" value="${last}"`));
    assert.match((await clerk.get(`/billing/production/produce?bill=${b!.billId}`)).text, /<h1>Produce 1 bill<\/h1>/);
    // Confirmed from page 3: the form and its links go back to page 3, and a refused post shows page 3 again.
    for (const action of ['produce', 'revert'] as const) {
      const confirm = await clerk.get(`/billing/production/${action}?page=3&bill=${last}`);
      assert.equal(confirm.status, 200, action);
      assert.ok(confirm.text.includes('<input type="hidden" name="page" value="3">'), `${action}: the form carries the page`);
      assert.ok(confirm.text.includes('<a href="/billing/production?page=3">Cancel</a>'), `${action}: Cancel goes back to page 3`);
      const refused = await clerk.post(action === 'produce' ? '/billing/production/runs' : '/billing/production/revert', { page: '3', ...(action === 'produce' ? { runId: '' } : {}) });
      assert.equal(refused.status, 422, action);
      assert.match(refused.text, new RegExp(`Bills ${2 * PRODUCTION_LIST_ROWS + 1} to ${3 * PRODUCTION_LIST_ROWS} of ${extra + 2} approved`), `${action}: the refusal shows the page the clerk came from`);
    }
    assert.doesNotMatch((await clerk.get(`/billing/production/produce?bill=${last}`)).text, /name="page"/, 'from the first page: no page carried');
  });
}, { timeout: 300_000 });

eachDialect('the production list says where each bill will be emailed: the client\'s address and every typed address, each once; a refused revert names the bill', async (db) => {
  const dirs = outputDirs();
  await withApp(db, async (t) => {
    const [bill] = await approvedBills(setupFrom(t), 1, { copiesToPrint: 0, useClientAddress: true, sendTo: ['ap@northwind.example', 'AP@northwind.example', 'cfo@northwind.example'] });
    await t.user('billing');
    const clerk = t.browser();
    await clerk.login('billing@firm.test');
    const list = unescapeHtml((await clerk.get('/billing/production')).text);
    // The client's address (ap@northwind.example) and the typed ones, each once.
    assert.match(list, /<td>ap@northwind\.example, cfo@northwind\.example<\/td>/);
    // A revert refused (the bill is being produced by another process) names the bill by its number.
    await t.db.db.insertInto('billing_bill_production').values({
      bill_id: bill!.billId, cycle: bill!.approvedAt!, claim_token: 'other-process', claimed_until: new Date(t.clock.now().getTime() + 60_000).toISOString(), attempts: 1, updated_at: t.clock.now().toISOString(),
    }).execute();
    const refused = await postMany(clerk, '/billing/production/revert', [['bill', bill!.billId]]);
    assert.equal(refused.status, 409);
    assert.ok(unescapeHtml(refused.text).includes(`Reverted 0; not reverted: ${bill!.number}: The bill is being produced now`), refused.text);
  }, { outputs: testOutputs(dirs) });
  removeDirs(dirs);
});

eachDialect('"Produce all" produces the bills its confirmation listed, not one approved after; a client without an email address is warned of; a compose form posted for another bill is that bill\'s message', async (db) => {
  const dirs = outputDirs();
  await withApp(db, async (t) => {
    const s = setupFrom(t);
    const [a, b, c] = await approvedBills(s, 3, { copiesToPrint: 0, useClientAddress: true, sendTo: [] });
    // The third is a draft when the confirmation is shown, and approved again before it is confirmed.
    await s.billing.revert(ctx, c!.billId);
    // The client has no email address now: its bills go nowhere, and both pages say so before producing.
    const matters = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const { client_id: clientId } = await t.db.db.selectFrom('billing_matter').select('client_id').where('id', '=', a!.matterId).executeTakeFirstOrThrow();
    await matters.updateClient(ctx, clientId, { email: null });
    await t.runtime.relay.drain();
    await t.user('billing');
    const clerk = t.browser();
    await clerk.login('billing@firm.test');
    const list = unescapeHtml((await clerk.get('/billing/production')).text);
    assert.doesNotMatch(list, /the client's address/);
    assert.equal([...list.matchAll(/<td>none <span class="warning">\(The client has no email address\)<\/span><\/td>/g)].length, 2, list);

    // Email manually: a form's key posted for the other bill is that bill's own message.
    const compose = await clerk.get(`/billing/bills/${a!.billId}/email`);
    const key = /name="key" value="([^"]+)"/.exec(compose.text)![1]!;
    const form = { key, to: 'ap@northwind.example', cc: '', subject: 'Your bill', text: 'Attached.' };
    assert.equal((await clerk.post(`/billing/bills/${a!.billId}/email`, form)).status, 303);
    assert.equal((await clerk.post(`/billing/bills/${b!.billId}/email`, form)).status, 303);
    const sent = readEml(dirs.mail).filter((m) => m.includes('Subject: Your bill'));
    assert.equal(sent.length, 2, 'one message for each bill');
    assert.deepEqual(sent.map((m) => /filename="?([^";\r\n]+)/.exec(m)![1]).sort(), [`bill-${a!.number}.pdf`, `bill-${b!.number}.pdf`].sort());

    // Produce all: the confirmation lists the two bills and warns that neither is emailed.
    const confirm = await clerk.get('/billing/production/produce');
    assert.equal(confirm.status, 200);
    const text = unescapeHtml(confirm.text);
    assert.match(text, /2 bills go to the client's email address, but the client has none/);
    assert.equal([...text.matchAll(/: not emailed at all<\/li>/g)].length, 2);
    const posted = [...confirm.text.matchAll(/<input type="hidden" name="([a-zA-Z_]+)" value="([^"]*)">/g)].map((m) => [m[1]!, m[2]!] as [string, string]);
    assert.deepEqual(posted.filter(([k]) => k === 'bill').map(([, v]) => v).sort(), [a!.billId, b!.billId].sort());
    assert.ok(!posted.some(([k]) => k === 'all'));
    // The third bill approved after the confirmation was shown.
    t.clock.advanceMs(60_000);
    await s.billing.approve(ctx, c!.billId);
    await t.runtime.relay.drain();
    const started = await postMany(clerk, '/billing/production/runs', posted.filter(([k]) => k !== '_csrf'));
    assert.equal(started.status, 303);
    const progress = await runDone(clerk, started.location!);
    assert.ok(progress.text.includes('data-done="2"'), progress.text);
    const status = async (id: string) => (await t.db.db.selectFrom('billing_bill').select('status').where('id', '=', id).executeTakeFirstOrThrow()).status;
    assert.deepEqual([await status(a!.billId), await status(b!.billId), await status(c!.billId)], ['finalised', 'finalised', 'approved']);
    assert.equal(readEml(dirs.mail).length, 2, 'production emailed neither bill (no address): only the two manual emails');
  }, { outputs: testOutputs(dirs) });
  removeDirs(dirs);
});

eachDialect('producing ids of no bill, or of a bill never approved, is refused naming the bill field and the bills, and writes nothing; a bill approved when listed and reverted since still fails in the run, and its Retry posted twice is one run', async (db) => {
  const dirs = outputDirs();
  await withApp(db, async (t) => {
    const s = setupFrom(t);
    const [a, b] = await approvedBills(s, 2, { copiesToPrint: 0, useClientAddress: false, sendTo: [] });
    // A draft never approved: more work on the first matter, drafted.
    const tks = await t.db.db.selectFrom('matters_timekeeper').select(['id', 'initials']).execute();
    const tk = (initials: string) => ({ id: tks.find((r) => r.initials === initials)!.id as string });
    await work(s.matters, a!.matterId, { partner: tk('MH'), associate: tk('JS') });
    await t.runtime.relay.drain();
    const draft = await s.billing.createDraft(ctx, { matterId: a!.matterId, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
    assert.equal(draft.number, null);
    await t.user('billing');
    const clerk = t.browser();
    await clerk.login('billing@firm.test');
    await clerk.get('/billing/production');
    const rows = async () => {
      const n = async (table: string) => Number((await t.db.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
      return { runs: await n('billing_production_run'), items: await n('billing_production_run_item'), audit: await n('audit_log'), states: await n('billing_bill_production') };
    };
    const before = await rows();
    const unknown = '11111111-2222-3333-4444-555555555555';
    for (const [label, ids, expected] of [
      ['an unknown id', [unknown], [unknown]],
      ['a draft never approved', [draft.billId], [draft.billId, draft.fileNumber]],
      ['an approved bill with an unknown id and a draft', [b!.billId, unknown, draft.billId], [unknown, draft.billId]],
    ] as [string, string[], string[]][]) {
      const r = await postMany(clerk, '/billing/production/runs', [...ids.map((id): [string, string] => ['bill', id]), ['runId', crypto.randomUUID()]]);
      assert.equal(r.status, 422, `${label}: ${r.status} ${r.location ?? ''}`);
      const text = unescapeHtml(r.text);
      assert.match(text, /Nothing was produced/, label);
      for (const e of expected) assert.ok(text.includes(e), `${label}: names ${e}\n${text.slice(0, 2000)}`);
      assert.deepEqual(await rows(), before, `${label}: nothing written`);
    }
    assert.equal((await s.billing.findBill(b!.billId))!.status, 'approved', 'the approved bill posted with them was not produced either');

    // A bill approved when the confirmation listed it and reverted before Confirm: the run produces the other and shows it failed.
    const confirm = await clerk.get(`/billing/production/produce?bill=${a!.billId}&bill=${b!.billId}`);
    const posted = [...confirm.text.matchAll(/<input type="hidden" name="([a-zA-Z_]+)" value="([^"]*)">/g)].map((m) => [m[1]!, m[2]!] as [string, string]);
    await s.billing.deleteDraft(ctx, draft.billId);
    await s.billing.revert(ctx, a!.billId);
    await t.runtime.relay.drain();
    const started = await postMany(clerk, '/billing/production/runs', posted.filter(([k]) => k !== '_csrf'));
    assert.equal(started.status, 303);
    const progress = await runDone(clerk, started.location!);
    assert.ok(progress.text.includes('data-done="1"') && progress.text.includes('data-failed="1"'), progress.text);
    assert.match(unescapeHtml(progress.text), /The bill is draft, not approved/);
    // While it is a draft no Retry is offered (it could only fail again): the page says what to do (review 61 F4).
    assert.match(unescapeHtml(progress.text), /data-not-approved>Reverted to draft since: approve it again to produce it</);
    assert.doesNotMatch(progress.text, /data-action="retry"/);

    // Approved again, the failed bill's Retry: the form carries its run id, so posting it twice is one run.
    const rowOf = (html: string, id: string) => new RegExp(`<tr data-bill="${id}">[\\s\\S]*?</tr>`).exec(html)?.[0] ?? '';
    await s.billing.approve(ctx, a!.billId);
    await t.runtime.relay.drain();
    // The list shows this approval's production only: the failure was the earlier approval's run.
    const listedRow = rowOf((await clerk.get('/billing/production')).text, a!.billId);
    assert.ok(listedRow, 'listed');
    assert.doesNotMatch(listedRow, /data-failure/);
    // Approved again: the run's page offers Retry for it.
    const progressNow = await runDone(clerk, started.location!);
    const retry = /<form method="post" action="\/billing\/production\/runs" class="inline">(.*?)<\/form>/s.exec(progressNow.text);
    assert.ok(retry && retry[1]!.includes('data-action="retry"'), progressNow.text);
    const retryFields = [...retry![1]!.matchAll(/<input type="hidden" name="([a-zA-Z_]+)" value="([^"]*)">/g)].map((m) => [m[1]!, m[2]!] as [string, string]);
    assert.ok(retryFields.some(([k, v]) => k === 'runId' && v !== ''), 'the Retry form has a run id');
    const runsBefore = (await rows()).runs;
    const again = await Promise.all([1, 2].map(() => postMany(clerk, '/billing/production/runs', retryFields.filter(([k]) => k !== '_csrf'))));
    assert.deepEqual(again.map((r) => r.status), [303, 303]);
    assert.equal(again[0]!.location, again[1]!.location, 'the same run');
    assert.equal((await rows()).runs, runsBefore + 1, 'one run for the two posts');
    const retried = await runDone(clerk, again[0]!.location!);
    assert.ok(retried.text.includes('data-done="1"') && retried.text.includes('data-failed="0"'), retried.text);
  }, { outputs: testOutputs(dirs) });
  removeDirs(dirs);
});

eachDialect('a bill whose email the SMTP server did not confirm: the run page says it may have been sent and offers Send again and Mark as sent instead of Retry; the choice is recorded once and finishes the bill', async (db) => {
  let late = true;
  const smtp = await scriptedSmtp(() => (late ? { delayMs: 1_500 } : {}));
  const dirs = outputDirs();
  const outputs = smtpOutputs(dirs, smtp.port, 400);
  await withApp(db, async (t) => {
    const [a, b] = await approvedBills(setupFrom(t), 2, { copiesToPrint: 1, useClientAddress: false, sendTo: ['ap@northwind.example'] });
    await t.user('billing');
    const clerk = t.browser();
    await clerk.login('billing@firm.test');
    await clerk.get('/billing/production');
    const waitDone = async (url: string): Promise<string> => unescapeHtml((await runDone(clerk, url)).text);
    const started = await postMany(clerk, '/billing/production/runs', [['bill', a!.billId], ['bill', b!.billId], ['runId', crypto.randomUUID()]]);
    assert.equal(started.status, 303);
    const run = await waitDone(started.location!);
    assert.ok(run.includes('data-failed="2"'), run);
    assert.match(run, /may have been sent \(the mail server did not confirm it/);
    assert.equal([...run.matchAll(/data-email-unconfirmed/g)].length, 2, 'each bill offers the choice');
    assert.doesNotMatch(run, /data-action="retry"/, 'no plain Retry for an email that may have gone');
    assert.equal(smtp.received.length, 2);
    late = false;
    await new Promise((r) => setTimeout(r, 1_600));
    const list = unescapeHtml((await clerk.get('/billing/production')).text);
    assert.equal([...list.matchAll(/data-decide-email/g)].length, 2, 'the list links each to its decision');
    // Reverting one now: its confirmation says it may already be with the client (approved again, it would be emailed again).
    const revertPage = unescapeHtml((await clerk.get(`/billing/production/revert?bill=${a!.billId}`)).text);
    assert.match(revertPage, /id="revert-produced" role="alert">\s*<p>Production has already emailed or printed it \(or may have emailed it/);
    assert.match(revertPage, new RegExp(`<li data-produced="${a!.billId}">${a!.number} \\([^)]*\\): may have been emailed \\(not confirmed\\); 1 copy printed [^<]+</li>`));
    // Email manually says so too, pointing at the decision on the run.
    assert.match(unescapeHtml((await clerk.get(`/billing/bills/${a!.billId}/email`)).text), /id="produced-email" role="alert"> Production may have emailed this bill already \(a send the mail server did not confirm, or one its process stopped in\)\. Decide on the production run/);

    const formFor = (html: string, billId: string) => {
      const m = new RegExp(`action="/billing/production/bills/${billId}/email-decision"[^>]*>\\s*<input type="hidden" name="_csrf" value="[^"]*"><input type="hidden" name="runId" value="([^"]+)">`).exec(html);
      assert.ok(m, html);
      return m[1]!;
    };
    const keyA = formFor(run, a!.billId);
    const keyB = formFor(run, b!.billId);
    assert.equal((await postMany(clerk, `/billing/production/bills/${a!.billId}/email-decision`, [['choice', 'maybe'], ['runId', keyA]])).status, 422);
    const marked = await postMany(clerk, `/billing/production/bills/${a!.billId}/email-decision`, [['choice', 'mark_sent'], ['runId', keyA]]);
    assert.equal(marked.status, 303);
    assert.equal(marked.location, `/billing/production/runs/${keyA}`);
    const again = await postMany(clerk, `/billing/production/bills/${a!.billId}/email-decision`, [['choice', 'mark_sent'], ['runId', keyA]]);
    assert.equal(again.location, marked.location, 'the same form posted again is the same decision');
    assert.ok((await waitDone(marked.location!)).includes('data-done="1"'));
    const resent = await postMany(clerk, `/billing/production/bills/${b!.billId}/email-decision`, [['choice', 'resend'], ['runId', keyB]]);
    assert.equal(resent.status, 303);
    assert.ok((await waitDone(resent.location!)).includes('data-done="1"'));
    // Deciding again from an old page: refused, nothing changes.
    const stale = await postMany(clerk, `/billing/production/bills/${b!.billId}/email-decision`, [['choice', 'mark_sent'], ['runId', crypto.randomUUID()]]);
    assert.equal(stale.status, 409);
    const status = async (id: string) => (await t.db.db.selectFrom('billing_bill').select('status').where('id', '=', id).executeTakeFirstOrThrow()).status;
    assert.deepEqual([await status(a!.billId), await status(b!.billId)], ['finalised', 'finalised']);
    const subjects = smtp.received.map((m) => m.subject);
    assert.equal(subjects.filter((x) => x.includes(a!.number!)).length, 1, 'marked as sent: not sent again');
    assert.equal(subjects.filter((x) => x.includes(b!.number!)).length, 2, 'sent again as chosen');
    const audits = async (action: string) => (await t.db.db.selectFrom('audit_log').select('id').where('action', '=', action).execute()).length;
    assert.equal(await audits('billing.bill_email_marked_sent'), 1);
    assert.equal(await audits('billing.bill_email_resend_chosen'), 1);
  }, { outputs });
  await smtp.close();
  removeDirs(dirs);
});

eachDialect('a bill emailed manually to every address is not emailed again by Produce (the list and the confirmation say so); one emailed elsewhere is; approved again, it is', async (db) => {
  const dirs = outputDirs();
  await withApp(db, async (t) => {
    const setup = setupFrom(t);
    const [a, b, c] = await approvedBills(setup, 3, { copiesToPrint: 0, useClientAddress: false, sendTo: ['ap@northwind.example', 'cfo@northwind.example'] });
    await t.user('billing');
    const clerk = t.browser();
    assert.equal((await clerk.login('billing@firm.test')).status, 303);
    const rowOf = (html: string, id: string) => new RegExp(`<tr data-bill="${id}">([\\s\\S]*?)</tr>`).exec(html)![1]!;
    const emailManually = async (billId: string, to: string, cc: string) => {
      const compose = await clerk.get(`/billing/bills/${billId}/email`);
      const key = /name="key" value="([^"]+)"/.exec(compose.text)![1]!;
      assert.equal((await clerk.post(`/billing/bills/${billId}/email`, { key, to, cc, subject: 'Your bill', text: 'Attached.' })).status, 303);
    };
    // a: to both addresses (one in cc, another case); b: to one of them only; c: to both, then reverted and approved again.
    t.clock.advanceMs(60_000);
    await emailManually(a!.billId, 'AP@northwind.example', 'cfo@northwind.example');
    await emailManually(b!.billId, 'ap@northwind.example', '');
    await emailManually(c!.billId, 'ap@northwind.example', 'cfo@northwind.example');
    assert.equal(readEml(dirs.mail).length, 3);
    assert.match(rowOf((await clerk.get('/billing/production')).text, c!.billId), /data-emailed-by-hand/);
    // Reverting a bill the client was emailed: its confirmation says so, naming where and when (the others are not marked).
    const revertPage = unescapeHtml((await clerk.get(`/billing/production/revert?bill=${c!.billId}&bill=${a!.billId}`)).text);
    assert.match(revertPage, /id="revert-emailed" role="alert">\s*<p>2 of them were emailed to the client already \(Email manually\)/);
    assert.match(revertPage, new RegExp(`<li data-emailed="${c!.billId}">[^<]*: emailed to ap@northwind\\.example, cfo@northwind\\.example [^<]* by `));
    // Voiding it from its page says so too, before anything is done.
    const aPage = (await clerk.get(`/billing/bills/${a!.billId}`)).text;
    const aVersion = /action="\/billing\/bills\/[^"]+\/delete"[^>]*>\s*<input type="hidden" name="_csrf" value="[^"]*"><input type="hidden" name="version" value="(\d+)"/.exec(aPage)![1]!;
    const voidPage = await clerk.post(`/billing/bills/${a!.billId}/delete`, { version: aVersion });
    assert.equal(voidPage.status, 200);
    assert.match(unescapeHtml(voidPage.text), /id="confirm-emailed" role="alert">Emailed to the client by hand already: to AP@northwind\.example, cfo@northwind\.example [^<]* by [^<]*\. The client holds this bill: tell them it is withdrawn\./);
    assert.equal((await t.db.db.selectFrom('billing_bill').select('status').where('id', '=', a!.billId).executeTakeFirstOrThrow()).status, 'approved', 'not voided before confirming');
    const plainRevert = unescapeHtml((await clerk.get(`/billing/production/revert?bill=${b!.billId}`)).text);
    assert.match(plainRevert, /id="revert-emailed"/, 'b was emailed too (to one address)');
    assert.equal((await postMany(clerk, '/billing/production/revert', [['bill', c!.billId]])).status, 303);
    t.clock.advanceMs(60_000);
    await setup.billing.approve(ctx, c!.billId);
    await t.runtime.relay.drain();
    // Its email as if the send had finished only after the approval again (a slow mail server): it was
    // sent for the bill as approved before, and does not count for this approval.
    t.clock.advanceMs(60_000);
    await t.db.db.updateTable('billing_manual_email').set({ sent_at: t.clock.now().toISOString() }).where('bill_id', '=', c!.billId).execute();

    const list = await clerk.get('/billing/production');
    assert.match(rowOf(list.text, a!.billId), /data-emailed-by-hand[\s\S]*Produce does not email it again/);
    assert.doesNotMatch(rowOf(list.text, a!.billId), /data-emailed-elsewhere/);
    assert.match(rowOf(list.text, b!.billId), /data-emailed-elsewhere>Emailed manually to ap@northwind\.example only/);
    assert.doesNotMatch(rowOf(list.text, b!.billId), /data-emailed-by-hand/);
    assert.doesNotMatch(rowOf(list.text, c!.billId), /data-emailed-by-hand|data-emailed-elsewhere/, 'approved again: its earlier email was of the bill before');
    const confirm = await clerk.get('/billing/production/produce');
    assert.match(confirm.text, /id="emailed-by-hand">1 bill was emailed manually to every address/);
    assert.match(confirm.text, /data-emailed-by-hand>none: emailed manually .* to AP@northwind\.example, cfo@northwind\.example/);

    const runId = /name="runId" value="([0-9a-f-]{36})"/.exec(confirm.text)![1]!;
    const started = await postMany(clerk, '/billing/production/runs', [['bill', a!.billId], ['bill', b!.billId], ['bill', c!.billId], ['runId', runId]]);
    assert.equal(started.status, 303);
    const finished = (await runDone(clerk, started.location!)).text;
    assert.match(finished, /data-done="3"/);
    // The run says what each bill's outputs were.
    const outputsOf = (id: string) => new RegExp(`<tr data-bill="${id}"[\\s\\S]*?data-outputs>([^<]*)</span>`).exec(finished)?.[1] ?? '';
    assert.equal(outputsOf(b!.billId), '; emailed to ap@northwind.example, cfo@northwind.example');
    assert.match(outputsOf(a!.billId), /^; Emailed manually by .* at \d{4}-\d{2}-\d{2} \d{2}:\d{2} [A-Za-z_/]+ to AP@northwind\.example, cfo@northwind\.example: not sent again$/);
    const statuses = await t.db.db.selectFrom('billing_bill').select('status').where('id', 'in', [a!.billId, b!.billId, c!.billId]).execute();
    assert.deepEqual(statuses.map((r) => r.status), ['finalised', 'finalised', 'finalised']);
    // a: nothing more sent, its email step recorded as done by hand; b and c: emailed by Produce to both addresses.
    const produced = readEml(dirs.mail).filter((m) => /cfo@northwind\.example/i.test(m) && /ap@northwind\.example/i.test(m));
    assert.equal(readEml(dirs.mail).length, 5, 'three sent by hand, two by Produce (b and c), none for a');
    assert.equal(produced.length, 4, 'a and c by hand, b and c by Produce, each to both addresses');
    const state = await t.db.db.selectFrom('billing_bill_production').select(['bill_id', 'emailed_at', 'email_detail']).where('bill_id', '=', a!.billId).executeTakeFirstOrThrow();
    assert.ok(state.emailed_at);
    assert.match(state.email_detail ?? '', /^Emailed manually by .* at \d{4}-\d{2}-\d{2} \d{2}:\d{2} [A-Za-z_/]+ to AP@northwind\.example, cfo@northwind\.example: not sent again$/);
    const skipped = await t.db.db.selectFrom('audit_log').select('action').where('entity_id', '=', a!.billId).where('action', '=', 'billing.bill_email_skipped').execute();
    assert.equal(skipped.length, 1);
  }, { outputs: testOutputs(dirs) });
  removeDirs(dirs);
});

eachDialect('the Revert confirmation names the bills carrying receipts and what reverting does to them (released to credit, back on approval, no delete meanwhile)', async (db) => {
  const dirs = outputDirs();
  await withApp(db, async (t) => {
    const [a, b] = await approvedBills(setupFrom(t), 2, { copiesToPrint: 0, useClientAddress: false, sendTo: [] });
    const ledger = createLedgerCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    await ledger.recordReceipt(ctx, { billId: a!.billId, receivedOn: '2026-03-02', amountMinor: 10_000, order: 'this_bill_only' });
    await t.runtime.relay.drain();
    await t.user('billing');
    const clerk = t.browser();
    assert.equal((await clerk.login('billing@firm.test')).status, 303);

    const both = await clerk.get(`/billing/production/revert?bill=${a!.billId}&bill=${b!.billId}`);
    assert.equal(both.status, 200);
    const warning = /<div class="notice warning" id="revert-receipts"[\s\S]*?<\/div>/.exec(both.text)?.[0] ?? '';
    assert.match(unescapeHtml(warning), /1 of them has receipts allocated\. Reverting releases those receipts to the client's credit\./);
    assert.match(warning, new RegExp(`data-receipted="${a!.billId}">${a!.number!.replace(/\./g, '\\.')} \\([^)]*\\): \\$100\\.00 received of`));
    assert.doesNotMatch(warning, new RegExp(`data-receipted="${b!.billId}"`));
    assert.match(unescapeHtml((await clerk.get(`/billing/production/revert?bill=${a!.billId}`)).text), /id="revert-receipts" role="alert">\s*<p>It has receipts allocated\./, 'one bill: "it"');
    // A bill with no receipt: no warning.
    assert.doesNotMatch((await clerk.get(`/billing/production/revert?bill=${b!.billId}`)).text, /id="revert-receipts"/);
  }, { outputs: testOutputs(dirs) });
  removeDirs(dirs);
});

eachDialect('Produce and Revert confirmations for ticked bills some of which are no longer approved say so, and list the rest', async (db) => {
  const dirs = outputDirs();
  await withApp(db, async (t) => {
    const setup = setupFrom(t);
    const [a, b] = await approvedBills(setup, 2, { copiesToPrint: 0, useClientAddress: false, sendTo: [] });
    await setup.billing.revert(ctx, a!.billId);
    await t.runtime.relay.drain();
    await t.user('billing');
    const clerk = t.browser();
    assert.equal((await clerk.login('billing@firm.test')).status, 303);
    for (const path of ['produce', 'revert']) {
      const both = unescapeHtml((await clerk.get(`/billing/production/${path}?bill=${a!.billId}&bill=${b!.billId}`)).text);
      assert.match(both, /id="selection-gone" role="alert">1 of the ticked bills is no longer approved \(produced, reverted or deleted since the list was shown\): it is left out\./, path);
      assert.ok(both.includes(b!.number!) && !both.includes(`value="${a!.billId}"`), `${path}: the other listed, the reverted one not posted`);
      const onlyGone = unescapeHtml((await clerk.get(`/billing/production/${path}?bill=${a!.billId}`)).text);
      assert.match(onlyGone, /id="selection-gone"/, path);
      assert.doesNotMatch(onlyGone, /There are no approved bills/, `${path}: not "no approved bills" while there are`);
    }
  }, { outputs: testOutputs(dirs) });
  removeDirs(dirs);
});

eachDialect('a production run whose process stopped: its page says when it can be resumed (the stopped process\'s hold on its bills runs out), Resume before then is refused saying so, and after it finishes the bills once', async (db) => {
  const dirs = outputDirs();
  await withApp(db, async (t) => {
    // A run a process started: it took bill a (its hold LEASE_MS from then, renewed by a step 20 s after its last heartbeat) and stopped without a word.
    const { a, b, clerk, runId } = await stoppedRunOfTwo(t, true);
    const page = async () => unescapeHtml((await clerk.get(`/billing/production/runs/${runId}`)).text);
    // Within its first minute: still shown as producing.
    assert.match(await page(), /Producing… 0 of 2 done/);
    // After a minute without a heartbeat: stopped, resumable once the hold runs out; no Resume yet, and the page keeps polling.
    t.clock.advanceMs(70_000);
    let html = await page();
    assert.match(html, /This run stopped after 0 of 2 \(the server was restarted, or its process stopped\)\. It can be resumed from [^,]+, when that process's hold on its bills runs out\./);
    assert.doesNotMatch(html, /\/resume"/);
    assert.match(html, /hx-trigger="every 1s"/);
    const early = await clerk.post(`/billing/production/runs/${runId}/resume`, {});
    assert.equal(early.status, 409);
    assert.match(unescapeHtml(early.text), /class="error-box" role="alert">The process that ran this run stopped; its hold on the bills runs out at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: resume it then</);
    assert.equal((await t.db.db.selectFrom('billing_production_run_item').select('outcome').where('run_id', '=', runId).execute()).filter((r) => r.outcome !== 'pending').length, 0, 'nothing tried');
    // A heartbeat's LEASE_MS on, the hold a later step renewed still runs: still refused.
    t.clock.advanceMs(LEASE_MS - 70_000 + 10_000);
    assert.equal((await clerk.post(`/billing/production/runs/${runId}/resume`, {})).status, 409);
    // Once the hold has run out: Resume is offered and finishes both, each once.
    t.clock.advanceMs(15_000);
    html = await page();
    assert.match(html, /This run was interrupted after 0 of 2\./);
    assert.match(html, /\/resume"/);
    assert.equal((await clerk.post(`/billing/production/runs/${runId}/resume`, {})).status, 303);
    assert.ok((await runDone(clerk, `/billing/production/runs/${runId}`)).text.includes('data-done="2"'));
    assert.equal(filesIn(dirs.print).length, 2, 'each printed once');
  }, { outputs: testOutputs(dirs) });
  removeDirs(dirs);
});

eachDialect('a Produce or Revert confirmation of a bill approved again since is refused whole: nothing produced or reverted (review 61 F1)', async (db) => {
  const dirs = outputDirs();
  await withApp(db, async (t) => {
    const s = setupFrom(t);
    const [a, b] = await approvedBills(s, 2, { copiesToPrint: 1, useClientAddress: false, sendTo: ['ap@northwind.example'] });
    await t.user('billing');
    const clerk = t.browser();
    assert.equal((await clerk.login('billing@firm.test')).status, 303);
    // Both confirmations shown for a and b; then a is reverted, changed (a new invoice date) and approved again.
    const produceForm = hiddenFields((await clerk.get(`/billing/production/produce?bill=${a!.billId}&bill=${b!.billId}`)).text, '/billing/production/runs');
    assert.deepEqual(produceForm.filter(([k]) => k === 'seen').map(([, v]) => v), [a!, b!].map((x) => `${x.billId} ${x.approvedAt}`));
    const revertForm = hiddenFields((await clerk.get(`/billing/production/revert?bill=${a!.billId}&bill=${b!.billId}`)).text, '/billing/production/revert');
    t.clock.advanceMs(60_000);
    await s.billing.revert(ctx, a!.billId);
    await s.billing.updateDraft(ctx, a!.billId, { invoiceDate: a!.invoiceDate < '2026-03-01' ? '2026-03-01' : a!.invoiceDate });
    await s.billing.approve(ctx, a!.billId);
    await s.drain();
    const runsBefore = (await t.db.db.selectFrom('billing_production_run').select('id').execute()).length;
    const produced = await postMany(clerk, '/billing/production/runs', produceForm);
    assert.equal(produced.status, 409);
    assert.match(unescapeHtml(produced.text), new RegExp(`Bill ${a!.number!.replace(/\./g, '\\.')} was approved again after this confirmation was shown \\(changed, perhaps\\): nothing was produced`));
    assert.equal((await t.db.db.selectFrom('billing_production_run').select('id').execute()).length, runsBefore, 'no run');
    assert.equal(filesIn(dirs.print).length + filesIn(dirs.mail).length, 0, 'nothing printed or emailed');
    const reverted = await postMany(clerk, '/billing/production/revert', revertForm);
    assert.equal(reverted.status, 409);
    assert.match(unescapeHtml(reverted.text), /approved again after this confirmation was shown \(changed, perhaps\): nothing was reverted/);
    assert.deepEqual((await s.billing.findBills([a!.billId, b!.billId])).size, 2);
    for (const x of [a!, b!]) assert.equal((await s.billing.findBill(x.billId))!.status, 'approved', 'neither reverted');
    // Confirmed again (the new approval), it is produced.
    const fresh = hiddenFields((await clerk.get(`/billing/production/produce?bill=${a!.billId}`)).text, '/billing/production/runs');
    assert.equal((await postMany(clerk, '/billing/production/runs', fresh)).status, 303);
  }, { outputs: testOutputs(dirs) });
  removeDirs(dirs);
});

eachDialect('a bill another run found held by a stopped process: the list leads to that stopped run, not "Failed: another process is producing" (review 61 F2)', async (db) => {
  const dirs = outputDirs();
  await withApp(db, async (t) => {
    const { a, clerk, runId } = await stoppedRunOfTwo(t, true);
    // A second run (another server's Produce) over bill a: the stopped process still holds it, so that run leaves it.
    await clerk.get('/billing/production');
    const other = await postMany(clerk, '/billing/production/runs', [['bill', a.billId], ['runId', crypto.randomUUID()]]);
    assert.equal(other.status, 303);
    await runDone(clerk, other.location!);
    const outcomes = await t.db.db.selectFrom('billing_production_run_item').select(['run_id', 'outcome']).where('bill_id', '=', a.billId).execute();
    assert.deepEqual(outcomes.map((o) => o.run_id === runId ? ['stopped run', o.outcome] : ['other run', o.outcome]).sort(), [['other run', 'busy'], ['stopped run', 'pending']]);
    // A minute on, no heartbeat: the list says the bill's run stopped part way and links to it.
    t.clock.advanceMs(70_000);
    const row = new RegExp(`<tr[^>]*>(?:(?!</tr>)[\\s\\S])*?${a.number!.replace(/\./g, '\\.')}(?:(?!</tr>)[\\s\\S])*</tr>`).exec(unescapeHtml((await clerk.get('/billing/production')).text))![0];
    assert.match(row, new RegExp(`<a href="/billing/production/runs/${runId}" data-producing data-stopped>Its production run stopped part way: see the run to resume it</a>`));
    assert.doesNotMatch(row, /data-failure|Another process is producing/);
  }, { outputs: testOutputs(dirs) });
  removeDirs(dirs);
});

eachDialect('a run\'s bill reverted to draft since it was confirmed: failed, no Retry offered, the page says what to do (review 61 F4)', async (db) => {
  const dirs = outputDirs();
  await withApp(db, async (t) => {
    const s = setupFrom(t);
    const [a] = await approvedBills(s, 1, { copiesToPrint: 1, useClientAddress: false, sendTo: [] });
    await t.user('billing');
    const clerk = t.browser();
    assert.equal((await clerk.login('billing@firm.test')).status, 303);
    const fields = hiddenFields((await clerk.get(`/billing/production/produce?bill=${a!.billId}`)).text, '/billing/production/runs');
    await s.billing.revert(ctx, a!.billId);
    await s.drain();
    const started = await postMany(clerk, '/billing/production/runs', fields);
    assert.equal(started.status, 303, started.text.slice(0, 300));
    const page = unescapeHtml((await runDone(clerk, started.location!)).text);
    assert.match(page, /data-failed="1"/);
    assert.match(page, /data-not-approved>Reverted to draft since: approve it again to produce it</);
    assert.doesNotMatch(page, /data-action="retry"/);
    assert.equal(filesIn(dirs.print).length, 0);
  }, { outputs: testOutputs(dirs) });
  removeDirs(dirs);
});
