/**
 * The draft bills page's actions (approve, hold, release, delete, take out, modify) redirect to
 * the list with their results (post/redirect/get): the browser is not left on
 * /billing/drafts/act, so Reload shows the results again rather than posting the action again,
 * and Back from a bill opened from the results does not ask to resubmit a form.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { Page } from 'puppeteer-core';
import { DEMO_PASSWORD, seedDemo } from '../../src/cli/demo.ts';
import { freshDatabase } from '../support/db.ts';
import { startApp } from '../support/app.ts';
import { launchChromium, serveRuntime, signIn, watchedPage } from '../support/browser.ts';
import { closeSharedPdf, outputDirs, removeDirs, testOutputs } from './production-support.ts';

after(closeSharedPdf);

const INVOICE_DATE = '2026-03-02';
const UP_TO = '2026-02-27';
const WAIT_MS = 45_000;

async function click(page: Page, selector: string): Promise<void> {
  await page.waitForSelector(selector);
  await Promise.all([page.waitForNavigation(), page.click(selector)]);
}

test('audit: a draft bills action redirects to the list (post/redirect/get), so Reload does not post it again [sqlite]', { timeout: 120_000 }, async () => {
  const db = await freshDatabase('sqlite');
  const dirs = outputDirs();
  const outputs = testOutputs(dirs);
  const t = await startApp(db, { outputs, start: `${INVOICE_DATE}T09:00:00Z` });
  const server = await serveRuntime(t.runtime);
  const chrome = await launchChromium();
  try {
    await seedDemo(t.runtime, { matters: 6, entriesPerMatter: 6, seed: 17 });
    await t.runtime.relay.drain();
    const { page } = await watchedPage(chrome.browser);
    await signIn(page, server.url, 'billing@demo.lexbill.test', DEMO_PASSWORD);
    await page.goto(`${server.url}/billing/mass?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}`);
    await click(page, '#mass-run button[data-action="bill-all"]');
    await click(page, '#mass-confirm button[data-action="confirm"]');
    await page.waitForFunction("document.querySelector('#run-status')?.getAttribute('data-status') === 'done'", { timeout: WAIT_MS });
    await click(page, '#run-status a[data-action="review"]');
    const first = await page.$eval('#drafts tr[data-bill]', (e) => e.getAttribute('data-bill')!);
    await page.click(`#drafts input[name="id"][value^="${first}@"]`);
    await click(page, '#drafts-form button[data-action="hold"]');
    assert.equal(await page.$eval('#results', (e) => e.getAttribute('data-done')), '1');
    assert.doesNotMatch(page.url(), /\/billing\/drafts\/act$/, 'the browser is sent back to the list, not left on the POST');
    let posts = 0;
    page.on('request', (r) => { if (r.method() === 'POST') posts++; });
    await page.reload();
    assert.equal(posts, 0, 'Reload does not post the action again');
    assert.equal(await page.$eval('#results', (e) => e.getAttribute('data-done')), '1', 'the results are shown again');
    assert.equal(await page.$eval(`#drafts tr[data-bill="${first}"]`, (e) => e.textContent!.includes('On hold') || e.outerHTML.includes('on-hold')), true, 'the draft held once');
  } finally {
    await chrome.close();
    await server.close();
    await t.close();
    await outputs.close();
    removeDirs(dirs);
    await db.close();
  }
});
