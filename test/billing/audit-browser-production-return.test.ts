/**
 * Audit: production progress can be left and come back to. A clerk who confirms Produce all
 * and goes back to Bill production while the run is still going finds, on each bill still
 * being produced, a link to the run's progress page (the bills stay listed until finalised).
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
const WAIT_MS = 90_000;

async function click(page: Page, selector: string): Promise<void> {
  await page.waitForSelector(selector);
  await Promise.all([page.waitForNavigation(), page.click(selector)]);
}

eachDialect('audit: leaving a production run and coming back to Bill production leads back to its progress', async (db) => {
  const dirs = outputDirs();
  const outputs = testOutputs(dirs);
  const t = await startApp(db, { outputs, start: `${INVOICE_DATE}T09:00:00Z` });
  const server = await serveRuntime(t.runtime);
  const chrome = await launchChromium();
  try {
    await seedDemo(t.runtime, { matters: 40, entriesPerMatter: 3, seed: 17 });
    await t.runtime.relay.drain();
    const { page, problems } = await watchedPage(chrome.browser);
    await signIn(page, server.url, 'billing@demo.lexbill.test', DEMO_PASSWORD);
    const url = server.url;
    await page.goto(`${url}/billing/mass?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}`);
    await click(page, '#mass-run button[data-action="bill-all"]');
    await click(page, '#mass-confirm button[data-action="confirm"]');
    await page.waitForFunction("document.querySelector('#run-status')?.getAttribute('data-status') === 'done'", { timeout: WAIT_MS });
    await click(page, '#run-status a[data-action="review"]');
    await page.click('#select-every');
    await click(page, '#drafts-form button[data-action="approve"]');
    await t.runtime.relay.drain();

    await page.goto(`${url}/billing/production`);
    await click(page, '#production-toolbar [data-action="produce_all"]');
    await click(page, '[data-action="confirm-produce"]');
    const runPath = new URL(page.url()).pathname;
    assert.match(runPath, /^\/billing\/production\/runs\/[0-9a-f-]{36}$/);
    // Leave at once, and come back to Bill production.
    await page.goto(`${url}/billing/production`);
    const waiting = await page.$$eval('#production-bills tr[data-bill]', (trs) => trs.length);
    const links = await page.$$eval('#production-bills a[data-producing]', (els) => els.map((e) => e.getAttribute('href')));
    if (waiting > 0) {
      assert.ok(links.length > 0, `${waiting} bill(s) still listed while the run goes on: each leads to the run`);
      assert.ok(links.every((h) => h === runPath), `${links}`);
      await click(page, '#production-bills a[data-producing]');
      assert.equal(new URL(page.url()).pathname, runPath);
    } else {
      assert.fail('the run finished before Bill production was shown again (the test needs a slower run)');
    }
    await page.waitForFunction("document.querySelector('#production-progress')?.getAttribute('data-status') === 'done'", { timeout: WAIT_MS });
    assert.deepEqual(problems, [], 'no console errors');
  } finally {
    await chrome.close();
    await server.close();
    await t.close();
    await outputs.close();
    removeDirs(dirs);
  }
}, { timeout: 240_000 });
