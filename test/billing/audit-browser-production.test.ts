/**
 * Audit: every choice of the Bill Production toolbar (seed 000), for no bill, one bill and
 * two bills selected, leads in Chromium to a working page: no error page, and the figures on
 * it (Create payment's outstanding amount, the revert and preview lists) agree with the list.
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

async function click(page: Page, selector: string): Promise<number> {
  await page.waitForSelector(selector);
  const [res] = await Promise.all([page.waitForNavigation(), page.click(selector)]);
  return res?.status() ?? 0;
}

eachDialect('audit: each production toolbar choice for 0, 1 and 2 bills opens a working page', async (db) => {
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
    await page.goto(`${url}/billing/mass?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}`);
    await click(page, '#mass-run button[data-action="bill-all"]');
    await click(page, '#mass-confirm button[data-action="confirm"]');
    await page.waitForFunction("document.querySelector('#run-status')?.getAttribute('data-status') === 'done'", { timeout: WAIT_MS });
    await click(page, '#run-status a[data-action="review"]');
    await page.click('#select-every');
    await click(page, '#drafts-form button[data-action="approve"]');
    await t.runtime.relay.drain();

    await page.goto(`${url}/billing/production`);
    const rows = await page.$$eval('#production-bills tr[data-bill]', (trs) => trs.map((tr) => ({
      id: tr.getAttribute('data-bill')!, number: tr.querySelector('.file-no')!.textContent!.trim(), total: tr.querySelectorAll('td.num')[0]!.textContent!.trim(),
    })));
    assert.ok(rows.length >= 3);
    const labels = await page.$$eval('#production-toolbar [data-action]', (els) => els.map((e) => e.textContent!.trim()));
    assert.deepEqual(labels, ['Produce all', 'Preview all', 'Revert all to draft']);

    const open = async (qs: string, action: string): Promise<string> => {
      await page.goto(`${url}/billing/production?${qs}`);
      await page.waitForFunction("typeof window.htmx !== 'undefined'");
      const status = await click(page, `#production-toolbar [data-action="${action}"]`);
      assert.ok(status > 0 && status < 400, `${action} with ${qs || 'nothing'} selected: ${status} at ${page.url()}`);
      return page.$eval('main', (e) => e.textContent ?? '');
    };
    // Nothing selected: every bill listed.
    assert.match(await open('', 'preview_all'), new RegExp(`Preview ${rows.length} bills`));
    assert.match(await open('', 'revert_all'), new RegExp(`Revert ${rows.length} bills to draft`));
    assert.match(await open('', 'produce_all'), new RegExp(`Produce ${rows.length} bills`));
    // One bill.
    const one = `bill=${rows[0]!.id}`;
    assert.match(await open(one, 'revert'), new RegExp(`Revert 1 bill to draft[\\s\\S]*${rows[0]!.number.replace(/\./g, '\\.')}`));
    assert.match(await open(one, 'produce'), /Produce 1 bill/);
    assert.match(await open(one, 'ebilling'), new RegExp(rows[0]!.number.replace(/\./g, '\\.')));
    await open(one, 'email_manually');
    assert.match(page.url(), new RegExp(`/billing/bills/${rows[0]!.id}/email$`));
    const payment = await open(one, 'create_payment');
    assert.match(payment, new RegExp(`Against bill ${rows[0]!.number.replace(/\./g, '\\.')}`));
    assert.equal(await page.$eval('main [data-minor]', (e) => e.textContent!.trim()), rows[0]!.total, 'the receipt form\'s outstanding is the bill\'s total');
    // Two bills.
    const two = `bill=${rows[0]!.id}&bill=${rows[1]!.id}`;
    assert.match(await open(two, 'preview'), /Preview 2 bills/);
    assert.match(await open(two, 'revert'), /Revert 2 bills to draft/);
    assert.match(await open(two, 'produce'), /Produce 2 bills/);
    assert.match(await open(two, 'ebilling'), new RegExp(rows[1]!.number.replace(/\./g, '\\.')));
    assert.deepEqual(problems, [], 'no console errors');
  } finally {
    await chrome.close();
    await server.close();
    await t.close();
    await outputs.close();
    removeDirs(dirs);
  }
}, { timeout: 180_000 });
