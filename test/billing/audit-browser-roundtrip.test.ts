/**
 * Audit: the way back through the run keeps the figures. A bill reverted from Bill production
 * is on the draft bills page with its number and the same total; a draft deleted there is
 * offered again by mass billing with the WIP and Will bill it had before it was billed.
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
const WAIT_MS = 45_000;

async function click(page: Page, selector: string): Promise<void> {
  await page.waitForSelector(selector);
  await Promise.all([page.waitForNavigation(), page.click(selector)]);
}
const massRows = (page: Page) => page.$$eval('#mass-list tr[data-matter]', (trs) => Object.fromEntries(trs.map((tr) => {
  const tds = tr.querySelectorAll('td');
  return [tr.querySelector('.file-no')!.textContent!.trim(), [tds[4]!.getAttribute('data-minor'), tds[5]!.getAttribute('data-minor'), tr.querySelector('.will-bill')!.getAttribute('data-minor')].join('/')];
})));

eachDialect('audit: revert and delete bring the bill back with the same figures (production → drafts → mass billing)', async (db) => {
  const dirs = outputDirs();
  const outputs = testOutputs(dirs);
  const t = await startApp(db, { outputs, start: `${INVOICE_DATE}T09:00:00Z` });
  const server = await serveRuntime(t.runtime);
  const chrome = await launchChromium();
  try {
    await seedDemo(t.runtime, { matters: 6, entriesPerMatter: 6, seed: 17 });
    await t.runtime.relay.drain();
    const { page, problems } = await watchedPage(chrome.browser);
    await signIn(page, server.url, 'billing@demo.lexbill.test', DEMO_PASSWORD);
    const url = server.url;
    const massUrl = `${url}/billing/mass?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}`;
    await page.goto(massUrl);
    const before = await massRows(page);
    await click(page, '#mass-run button[data-action="bill-all"]');
    await click(page, '#mass-confirm button[data-action="confirm"]');
    await page.waitForFunction("document.querySelector('#run-status')?.getAttribute('data-status') === 'done'", { timeout: WAIT_MS });
    await click(page, '#run-status a[data-action="review"]');
    await page.click('#select-every');
    await click(page, '#drafts-form button[data-action="approve"]');
    await t.runtime.relay.drain();

    await page.goto(`${url}/billing/production`);
    const row = await page.$eval('#production-bills tr[data-bill]', (tr) => ({
      id: tr.getAttribute('data-bill')!, number: tr.querySelector('.file-no')!.textContent!.trim(), total: tr.querySelectorAll('td.num')[0]!.textContent!.trim(),
      file: tr.querySelectorAll('td')[2]!.textContent!.trim().split(' ')[0]!,
    }));
    await page.goto(`${url}/billing/production?bill=${row.id}`);
    await click(page, '#production-toolbar [data-action="revert"]');
    await click(page, '[data-action="confirm-revert"]');
    await t.runtime.relay.drain();

    await page.goto(`${url}/billing/drafts`);
    const draft = await page.$eval(`#drafts tr[data-bill="${row.id}"]`, (tr) => ({
      number: tr.querySelectorAll('td')[2]!.textContent!.trim(), total: tr.querySelectorAll('td.num')[5]!.textContent!.trim(),
    }));
    assert.deepEqual(draft, { number: row.number, total: row.total }, 'the reverted bill is a draft with its number and total');

    await page.click(`#drafts input[name="id"][value^="${row.id}@"]`);
    await click(page, '#drafts-form button[data-action="delete"]');
    assert.equal(await page.$eval('#results', (e) => e.getAttribute('data-done')), '1');
    await t.runtime.relay.drain();
    await page.goto(massUrl);
    const again = await massRows(page);
    assert.deepEqual(Object.keys(again), [row.file], 'only the deleted draft\'s matter is offered again');
    assert.equal(again[row.file], before[row.file], 'with the WIP, disbursements and Will bill it had before');
    assert.deepEqual(problems, [], 'no console errors');
  } finally {
    await chrome.close();
    await server.close();
    await t.close();
    await outputs.close();
    removeDirs(dirs);
  }
}, { timeout: 180_000 });
