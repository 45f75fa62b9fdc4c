/**
 * The ledger in real Chromium on both databases: Bill Production's "Create payment" link
 * opens the receipt form for the bill; the clerk types an amount and records it (a plain
 * form post, no JavaScript needed); the bill's balance follows; the aged debtors chart is an
 * SVG drawn by the server and visible without any script; no console errors or CSP reports.
 */
import assert from 'node:assert/strict';
import { PASSWORD, startApp } from '../support/app.ts';
import { launchChromium, serveRuntime, signIn, watchedPage } from '../support/browser.ts';
import { eachDialect } from '../support/db.ts';
import { approvedBill } from './support.ts';

eachDialect('in Chromium: create payment for a bill, record it, see the balance and the aged debtors chart', async (db) => {
  const t = await startApp(db);
  const server = await serveRuntime(t.runtime);
  const chrome = await launchChromium();
  try {
    const { bill } = await approvedBill({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    await t.user('billing', { email: 'clerk@firm.test' });
    const { page, problems } = await watchedPage(chrome.browser);

    await signIn(page, server.url, 'clerk@firm.test', PASSWORD);

    await page.goto(`${server.url}/ledger/receipts/new?bill=${bill.billId}`);
    assert.match(await page.$eval('#bill', (e) => e.textContent ?? ''), /1\.1\.1/);
    await page.type('input[name=amount]', '250.00');
    await page.type('input[name=reference]', 'EFT 7781');
    await Promise.all([page.waitForNavigation(), page.click('#receipt-form button[type=submit]')]);
    assert.match(page.url(), /\/ledger\/receipts\/[0-9a-f-]{36}$/);
    assert.match(await page.$eval('h1', (e) => e.textContent ?? ''), /Receipt R000001/);
    await page.goto(`${server.url}/ledger/bills/${bill.billId}`);
    assert.equal(await page.$eval('#outstanding', (e) => Number(e.getAttribute('data-minor'))), bill.totals.totalMinor - 25_000);

    await page.goto(`${server.url}/ledger/reports/aged-debtors?to=2026-03-31`);
    const box = await page.$eval('figure.chart svg', (e) => { const r = e.getBoundingClientRect(); return { w: r.width, h: r.height, bars: e.querySelectorAll('g.bar').length }; });
    assert.ok(box.w > 300 && box.h > 100, `the chart is drawn (${JSON.stringify(box)})`);
    assert.equal(box.bars, 5, 'current, 30, 60, 90, 120+');
    assert.deepEqual(problems, [], 'no console errors, no CSP violations');
  } finally {
    await chrome.close();
    await server.close();
    await t.runtime.outputs.close();
    await t.close();
  }
}, { timeout: 180_000 });
