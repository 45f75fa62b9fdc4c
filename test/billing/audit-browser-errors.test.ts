/**
 * Audit: field errors on the monthly run's forms are shown next to the field they are about
 * (inside the field's label, `data-error-for`), and what the clerk typed is kept.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import type { Page } from 'puppeteer-core';
import { DEMO_PASSWORD, seedDemo } from '../../src/cli/demo.ts';
import { eachDialect } from '../support/db.ts';
import { startApp } from '../support/app.ts';
import { launchChromium, serveRuntime, signIn, watchedPage } from '../support/browser.ts';
import { closeSharedPdf, outputDirs, removeDirs, testOutputs } from './production-support.ts';

after(closeSharedPdf);

const INVOICE_DATE = '2026-03-02';
const UP_TO = '2026-02-27';
const CLERK = 'billing@demo.lexbill.test';
const WAIT_MS = 45_000;

async function click(page: Page, selector: string): Promise<void> {
  await page.waitForSelector(selector);
  await Promise.all([page.waitForNavigation(), page.click(selector)]);
}

/** The error shown inside the field (its label) for the named control, and the control's value. */
async function fieldState(page: Page, scope: string, name: string): Promise<{ error: string | null; value: string }> {
  return page.$eval(`${scope} [name="${name}"]`, (el, n) => {
    const field = el.closest('label');
    const err = field?.querySelector(`[data-error-for="${n as string}"]`);
    return { error: err ? (err.textContent ?? '').trim() : null, value: (el as unknown as { value: string }).value };
  }, name);
}

eachDialect('audit: field errors sit next to their fields with the values kept (mass filters, modify batch)', async (db) => {
  const dirs = outputDirs();
  const outputs = testOutputs(dirs);
  const t = await startApp(db, { outputs, start: `${INVOICE_DATE}T09:00:00Z` });
  const server = await serveRuntime(t.runtime);
  const chrome = await launchChromium();
  try {
    await seedDemo(t.runtime, { matters: 6, entriesPerMatter: 6, seed: 17 });
    await t.runtime.relay.drain();
    const { page, problems } = await watchedPage(chrome.browser);
    await signIn(page, server.url, CLERK, DEMO_PASSWORD);
    const url = server.url;

    // Mass billing: typed choices that cannot be read.
    const res = await page.goto(`${url}/billing/mass?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}&terms=abc&cap=amount&capAmount=lots&matter=99.99`);
    assert.equal(res?.status(), 422);
    for (const [name, value] of [['terms', 'abc'], ['capAmount', 'lots'], ['matter', '99.99']] as const) {
      const s = await fieldState(page, '#mass-filters', name);
      assert.ok(s.error, `${name}: the error is next to the field`);
      assert.equal(s.value, value, `${name}: the typed value is kept`);
    }
    // A WIP cap choice the select does not offer is named next to the select, as the time cap's is.
    await page.goto(`${url}/billing/mass?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}&cap=yes&timeCap=yes`);
    assert.ok((await fieldState(page, '#mass-filters', 'timeCap')).error, 'timeCap: next to the field');
    assert.ok((await fieldState(page, '#mass-filters', 'cap')).error, 'cap: next to the field');

    // Draft bills: modify the batch with terms that are not a number of days.
    await page.goto(`${url}/billing/mass?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}`);
    await click(page, '#mass-run button[data-action="bill-all"]');
    await click(page, '#mass-confirm button[data-action="confirm"]');
    await page.waitForFunction("document.querySelector('#run-status')?.getAttribute('data-status') === 'done'", { timeout: WAIT_MS });
    await click(page, '#run-status a[data-action="review"]');
    await page.type('#modify-batch input[name=newTerms]', 'soon');
    await page.$eval('#modify-batch input[name=newInvoiceDate]', (e) => { (e as unknown as { value: string }).value = '2026-03-05'; });
    await click(page, '#modify-batch button[data-action="modify"]');
    const terms = await fieldState(page, '#modify-batch', 'newTerms');
    assert.ok(terms.error, 'newTerms: next to the field');
    assert.equal(terms.value, 'soon');
    assert.equal((await fieldState(page, '#modify-batch', 'newInvoiceDate')).value, '2026-03-05', 'the other typed value is kept');
    assert.deepEqual(problems.filter((p) => !p.includes('422')), [], 'no console errors');
  } finally {
    await chrome.close();
    await server.close();
    await t.close();
    await outputs.close();
    removeDirs(dirs);
  }
}, { timeout: 180_000 });
