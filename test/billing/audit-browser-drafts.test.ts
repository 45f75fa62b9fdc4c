/**
 * Audit: the draft bills page in Chromium. The clerk sorts the list (a column heading),
 * filters it, ticks bills and acts on them: the list that comes back keeps the sort and the
 * filters the clerk chose; the sort headings keep the filters.
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
const totals = (page: Page) => page.$$eval('#drafts tr[data-bill]', (trs) => trs.map((tr) => Number(tr.querySelectorAll('td.num')[5]!.getAttribute('data-minor'))));
const isDesc = (xs: number[]) => xs.every((x, i) => i === 0 || xs[i - 1]! >= x);

eachDialect('audit: draft bills keep the clerk\'s sort and filters through hold, release and modify', async (db) => {
  const dirs = outputDirs();
  const outputs = testOutputs(dirs);
  const t = await startApp(db, { outputs, start: `${INVOICE_DATE}T09:00:00Z` });
  const server = await serveRuntime(t.runtime);
  const chrome = await launchChromium();
  try {
    await seedDemo(t.runtime, { matters: 12, entriesPerMatter: 10, seed: 17 });
    await t.runtime.relay.drain();
    const { page, problems } = await watchedPage(chrome.browser);
    await signIn(page, server.url, CLERK, DEMO_PASSWORD);
    const url = server.url;

    await page.goto(`${url}/billing/mass?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}`);
    await click(page, '#mass-run button[data-action="bill-all"]');
    await click(page, '#mass-confirm button[data-action="confirm"]');
    await page.waitForFunction("document.querySelector('#run-status')?.getAttribute('data-status') === 'done'", { timeout: WAIT_MS });
    await click(page, '#run-status a[data-action="review"]');
    const batchUrl = page.url();

    // Sort by total, then again for descending (the headings).
    await click(page, '#drafts thead a[href*="sort=total"]');
    await click(page, '#drafts thead a[href*="sort=total"]');
    assert.match(page.url(), /sort=total&dir=desc/);
    assert.match(page.url(), /batch=/, 'the heading keeps the batch filter');
    const before = await totals(page);
    assert.ok(before.length >= 4 && isDesc(before), `sorted by total, descending: ${before}`);
    assert.notDeepEqual(before, [...before].reverse(), 'the totals differ');

    // Hold the first: the list comes back still sorted by total, descending, in the batch.
    const first = await page.$eval('#drafts tr[data-bill]', (e) => e.getAttribute('data-bill')!);
    await page.click(`#drafts input[name="id"][value^="${first}@"]`);
    await click(page, '#drafts-form button[data-action="hold"]');
    assert.equal(await page.$eval('#results', (e) => e.getAttribute('data-done')), '1');
    assert.ok(isDesc(await totals(page)), `still sorted by total, descending, after the hold: ${await totals(page)}`);
    assert.equal(await page.$eval('#drafts-filter select[name=sort]', (e) => (e as unknown as { value: string }).value), 'total');
    assert.equal(await page.$eval('#drafts-filter select[name=dir]', (e) => (e as unknown as { value: string }).value), 'desc');

    // Filter to those on hold: releasing it keeps the filter.
    await page.goto(`${batchUrl}&hold=yes&sort=total&dir=desc`);
    assert.equal(await page.$eval('#drafts-total', (e) => e.getAttribute('data-count')), '1');
    await page.click(`#drafts input[name="id"][value^="${first}@"]`);
    await click(page, '#drafts-form button[data-action="release"]');
    assert.equal(await page.$eval('#drafts-filter select[name=hold]', (e) => (e as unknown as { value: string }).value), 'yes', 'the hold filter is kept');
    assert.equal(await page.$eval('#drafts-filter select[name=sort]', (e) => (e as unknown as { value: string }).value), 'total', 'the sort is kept');

    // Modify the batch's terms: the list comes back sorted as it was.
    await page.goto(`${batchUrl}&sort=total&dir=desc`);
    await page.type('#modify-batch input[name=newTerms]', '14');
    await click(page, '#modify-batch button[data-action="modify"]');
    assert.equal(await page.$eval('#results', (e) => e.getAttribute('data-action')), 'modify');
    assert.ok(isDesc(await totals(page)), 'still sorted after modify');
    assert.equal(await page.$eval('#drafts-filter select[name=sort]', (e) => (e as unknown as { value: string }).value), 'total', 'the sort is kept after modify');
    assert.deepEqual(problems, [], 'no console errors');
  } finally {
    await chrome.close();
    await server.close();
    await t.close();
    await outputs.close();
    removeDirs(dirs);
  }
}, { timeout: 180_000 });
