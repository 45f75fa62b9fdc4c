/**
 * Bill and email templates on the billing settings page, on both databases: a new template takes
 * a name not in use (case aside), so "Save" never silently replaces one; a template is changed
 * through its Edit form, which carries the version it showed, so a second tab's save made since
 * is refused (409) and keeps what was typed, at the version now; nothing is written by a refusal.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { unescapeHtml, withApp } from '../support/app.ts';

eachDialect('templates: new ones take a free name (case aside), edits carry their version, a stale edit is refused and keeps the typed form (review 54, M3)', async (db) => {
  await withApp(db, async (t) => {
    await t.user('billing');
    const clerk = t.browser();
    await clerk.login('billing@firm.test');
    await clerk.get('/billing/settings');
    const audits = async () => Number((await db.db.selectFrom('audit_log').select((eb) => eb.fn.countAll().as('n')).where('action', 'in', ['billing.bill_template_saved', 'billing.email_template_saved']).executeTakeFirstOrThrow()).n);
    const versionIn = (html: string, form: string) => new RegExp(`id="${form}"[^]*?name="version" value="(\\d+)"`).exec(html)?.[1];

    // A new template under a built-in's name, or one differing only in case from one stored: refused at the name.
    const taken = await clerk.post('/billing/settings/bill-templates', { mode: 'new', name: 'standard', layout: 'total_only', title: 'Overwritten', footer: '' });
    assert.equal(taken.status, 422);
    assert.match(unescapeHtml(taken.text), /is the name of a bill template already: choose Edit beside it to change it, or another name/);
    assert.equal((await clerk.post('/billing/settings/bill-templates', { mode: 'new', name: 'TotalOnly', layout: 'total_only', title: 'Statement', footer: 'Thank you' })).status, 303);
    const caseOnly = await clerk.post('/billing/settings/bill-templates', { mode: 'new', name: 'totalonly', layout: 'itemised', title: 'Overwritten', footer: '' });
    assert.equal(caseOnly.status, 422);
    assert.match(unescapeHtml(caseOnly.text), /differs only in case from "TotalOnly"/);
    assert.equal(await audits(), 1, 'refusals write nothing');

    // Two tabs edit TotalOnly: the first saves, the second (at the version it showed) is refused and keeps what was typed.
    const tab1 = await clerk.get('/billing/settings?editBill=TotalOnly');
    const tab2 = await clerk.get('/billing/settings?editBill=TotalOnly');
    assert.match(tab1.text, /Edit bill template <code>TotalOnly<\/code>/);
    assert.match(tab1.text, /name="footer"[^>]*>Thank you</, 'the form opens with the template, not blank');
    const v = versionIn(tab1.text, 'bill-template-form')!;
    assert.equal(versionIn(tab2.text, 'bill-template-form'), v);
    assert.equal((await clerk.post('/billing/settings/bill-templates', { mode: 'edit', version: v, name: 'TotalOnly', layout: 'total_only', title: 'Statement of account', footer: 'Thank you' })).status, 303);
    const stale = await clerk.post('/billing/settings/bill-templates', { mode: 'edit', version: v, name: 'TotalOnly', layout: 'itemised', title: 'Statement', footer: '' });
    assert.equal(stale.status, 409);
    assert.match(unescapeHtml(stale.text), /The bill template TotalOnly was changed by someone else meanwhile/);
    const stored = await db.db.selectFrom('billing_bill_template').select(['layout', 'title', 'footer', 'version']).where('name', '=', 'TotalOnly').executeTakeFirstOrThrow();
    assert.deepEqual([stored.layout, stored.title, stored.footer], ['total_only', 'Statement of account', 'Thank you'], 'tab 1\'s save stands');
    assert.match(stale.text, /name="title" value="Statement"/, 'the typed form comes back');
    assert.equal(versionIn(stale.text, 'bill-template-form'), String(stored.version), 'at the version now');
    // A form without a version cannot be checked: refused, naming it.
    assert.equal((await clerk.post('/billing/settings/bill-templates', { mode: 'edit', name: 'TotalOnly', layout: 'itemised', title: 'x', footer: '' })).status, 422);

    // Email templates: the same (a built-in one edited at version 0; a second edit at 0 is then stale).
    const email = { mode: 'edit', version: '0', name: 'standard', subject: 'Bill {{bill_number}}', body: 'Dear {{client}}' };
    assert.equal((await clerk.post('/billing/settings/email-templates', email)).status, 303);
    assert.equal((await clerk.post('/billing/settings/email-templates', { ...email, body: 'Other' })).status, 409);
    assert.equal((await clerk.post('/billing/settings/email-templates', { mode: 'new', name: 'Standard', subject: 'x', body: 'y' })).status, 422);
    assert.equal(await audits(), 3);

    // Read-only staff get no Edit links or forms.
    await t.user('readonly');
    const reader = t.browser();
    await reader.login('readonly@firm.test');
    const page = await reader.get('/billing/settings?editBill=TotalOnly');
    assert.equal(page.status, 200);
    assert.doesNotMatch(page.text, /editBill=|id="bill-template-form"/);
  });
});
