/**
 * Audit: the monthly billing run in Chromium with JavaScript off (page.setJavaScriptEnabled(false)).
 * Filters are GET forms, the why lookup and confirmations are pages, forms post and redirect,
 * and the progress pages reload themselves; on Bill production a clerk who ticks bills can
 * still reach the choices seed 000 gives for that selection (one bill: Email manually,
 * Create payment).
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import type { Page } from 'puppeteer-core';
import { eachDialect } from '../support/db.ts';
import { closeSharedPdf } from './production-support.ts';
import { click, INVOICE_DATE, UP_TO, withDemoClerk } from './browser-support.ts';

after(closeSharedPdf);

const attr = (page: Page, sel: string, name: string) => page.$eval(sel, (e, n) => e.getAttribute(n as string), name);
const actions = (page: Page) => page.$$eval('#production-toolbar [data-action]', (els) => els.map((e) => e.getAttribute('data-action')));

/** Reload (as the page's own refresh would) until the selector's attribute has the value. */
async function waitByReload(page: Page, sel: string, name: string, value: string): Promise<void> {
  for (let i = 0; i < 60; i++) {
    if (await page.$(sel) && await attr(page, sel, name) === value) return;
    await new Promise((r) => setTimeout(r, 500));
    await page.reload();
  }
  assert.fail(`${sel} never had ${name}=${value}`);
}

eachDialect('audit: without JavaScript the run works: filters, lookup, bill all, drafts, production choices by selection', async (db) => {
  await withDemoClerk(db, { matters: 6, entriesPerMatter: 6, javaScript: false }, async ({ page, problems, url }) => {

    // Mass billing: the filters are a GET form.
    await page.goto(`${url}/billing/mass`);
    await page.$eval('#mass-filters input[name=invoiceDate]', (e, v) => { (e as unknown as { value: string }).value = v as string; }, INVOICE_DATE);
    await page.$eval('#mass-filters input[name=upTo]', (e, v) => { (e as unknown as { value: string }).value = v as string; }, UP_TO);
    await click(page, '#mass-filters button[type=submit]');
    assert.match(page.url(), new RegExp(`invoiceDate=${INVOICE_DATE}.*upTo=${UP_TO}`));
    const count = Number(await attr(page, '#eligible-count', 'data-count'));
    assert.ok(count >= 3, `eligible ${count}`);
    // Without JavaScript nothing stops Bill selected after a choice is changed above: the page says which choices it bills with.
    const choices = await page.$eval('#mass-run-choices', (e) => e.textContent ?? '');
    assert.match(choices, new RegExp(`invoice date ${INVOICE_DATE}, up to ${UP_TO}, each matter's own bill template, the firm's payment terms \\(30 days\\).*Press "Show matters" first`));

    // The why lookup is a page.
    await page.type('#why-lookup input[name=lookup]', '9.9');
    await click(page, '#why-lookup button[type=submit]');
    assert.match(page.url(), /\/billing\/mass\/why\?/);
    assert.match(await page.$eval('main', (e) => e.textContent ?? ''), /no matter with file number 9\.9/);
    await page.goBack();

    // Bill selected: two ticked → the confirmation page → the run page, which refreshes itself.
    const ticks = await page.$$eval('#mass-list input[name=matterId]', (els) => els.map((e) => (e as unknown as { value: string }).value));
    await page.click(`#mass-list input[value="${ticks[0]}"]`);
    await page.click(`#mass-list input[value="${ticks[1]}"]`);
    await click(page, '#mass-run button[data-action="bill-selected"]');
    assert.match(await page.$eval('h1', (e) => e.textContent ?? ''), /Bill 2 matter/);
    await click(page, '#mass-confirm button[data-action="confirm"]');
    assert.match(page.url(), /\/billing\/mass\/runs\//);
    await waitByReload(page, '#run-status', 'data-status', 'done');
    assert.equal(await page.$eval('#run-drafted', (e) => e.textContent), '2');

    // Drafts: hold one (plain post), then approve every draft listed.
    await click(page, '#run-status a[data-action="review"]');
    const drafts = await page.$$eval('#drafts tr[data-bill]', (els) => els.map((e) => e.getAttribute('data-bill')!));
    assert.equal(drafts.length, 2);
    await page.click(`#drafts input[name="id"][value^="${drafts[0]}@"]`);
    await click(page, '#drafts-form button[data-action="hold"]');
    assert.equal(await attr(page, '#results', 'data-done'), '1');
    await page.click(`#drafts input[name="id"][value^="${drafts[0]}@"]`);
    await click(page, '#drafts-form button[data-action="release"]');
    assert.equal(await attr(page, '#results', 'data-done'), '1');
    await page.click('#select-every');
    await click(page, '#drafts-form button[data-action="approve"]');
    await click(page, 'button[data-action="confirm-approve"]');
    assert.equal(await attr(page, '#results', 'data-done'), '2');

    // Production: tick one bill; without JavaScript the toolbar cannot follow the ticks by itself,
    // so the page offers a button that shows the choices for the ticked bills (seed 000).
    await click(page, '#results a[href="/billing/production"]');
    assert.deepEqual(await actions(page), ['produce_all', 'preview_all', 'revert_all']);
    await page.click(`input[name="bill"][value="${drafts[0]}"]`);
    const update = await page.$('#production-form [data-action="update-choices"]');
    assert.ok(update, 'a "show the choices for the ticked bills" button without JavaScript');
    // ...and the toolbar says its buttons act on the bills ticked when pressed, whatever their labels (not redrawn).
    assert.match(await page.$eval('#production-toolbar [data-no-js-toolbar]', (e) => e.textContent ?? ''), /^Each button acts on the bills ticked when you press it \(every approved bill when none is ticked\), whatever it is labelled/);
    await click(page, '#production-form [data-action="update-choices"]');
    assert.equal(await attr(page, '#production-toolbar', 'data-selected'), '1');
    assert.deepEqual(await actions(page), ['produce', 'preview', 'ebilling', 'revert', 'email_manually', 'create_payment']);
    assert.equal(await page.$eval(`input[name="bill"][value="${drafts[0]}"]`, (e) => (e as unknown as { checked: boolean }).checked), true, 'the tick is kept');

    // Email manually: a form page; a bad address is named next to its field and the values are kept.
    await click(page, '#production-toolbar [data-action="email_manually"]');
    assert.match(page.url(), new RegExp(`/billing/bills/${drafts[0]}/email`));
    await page.$eval('#email-form input[name=to]', (e) => { (e as unknown as { value: string }).value = 'not an address'; });
    await page.$eval('#email-form input[name=subject]', (e) => { (e as unknown as { value: string }).value = 'My subject'; });
    await click(page, '#email-form [data-action="send-email"]');
    assert.equal(await page.$eval('#email-form input[name=to]', (e) => (e as unknown as { value: string }).value), 'not an address');
    assert.equal(await page.$eval('#email-form input[name=subject]', (e) => (e as unknown as { value: string }).value), 'My subject');
    assert.ok(await page.$('#email-form .field-error'), 'the error next to the field');

    // Revert the other bill to draft (a confirmation page), then produce the rest with the confirmation.
    await page.goto(`${url}/billing/production?bill=${drafts[1]}`);
    await click(page, '#production-toolbar [data-action="revert"]');
    await click(page, '[data-action="confirm-revert"]');
    assert.match(await page.$eval('main', (e) => e.textContent ?? ''), /Reverted 1 bill to draft/);
    await click(page, '#production-toolbar [data-action="produce_all"]');
    await click(page, '[data-action="confirm-produce"]');
    await waitByReload(page, '#production-progress', 'data-status', 'done');
    assert.equal(await attr(page, '#production-progress', 'data-done'), '1');
    assert.deepEqual(problems.filter((p) => !p.includes('422')), [], 'no console errors (the refused email is a 422)');
  });
}, { timeout: 180_000 });
