/**
 * E-billing in real Chromium, on both databases: from the e-billing page pick a bill, export
 * it in the matter's format (refused: the list of problems, no file), choose 1998BI, get the
 * kept file; upload a file to the validate page and see its violations by line and field.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eachDialect } from '../support/db.ts';
import { PASSWORD, startApp } from '../support/app.ts';
import { launchChromium, serveRuntime, signIn, watchedPage } from '../support/browser.ts';
import { createEbillingCommands } from '../../src/modules/ebilling/index.ts';
import { ctx } from '../billing/support.ts';
import { approvedEbilledBill, settings } from './support.ts';

eachDialect('in Chromium: pick a bill, see why 1998B is refused, export 1998BI, validate an uploaded file', async (db) => {
  const t = await startApp(db);
  const server = await serveRuntime(t.runtime);
  const chrome = await launchChromium();
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-ledes-ui-'));
  try {
    const relay = t.runtime.relay;
    const bill = await approvedEbilledBill(db, t);
    await createEbillingCommands({ db: db.db, clock: t.clock, relay }).saveSettings(ctx, settings(), 0);
    await t.user('billing', { email: 'clerk@firm.test' });

    const { page, problems } = await watchedPage(chrome.browser);
    await signIn(page, server.url, 'clerk@firm.test', PASSWORD);

    await page.goto(`${server.url}/ebilling`);
    await page.click(`input[name="bill"][value="${bill.billId}"]`);
    await Promise.all([page.waitForNavigation(), page.click('#pick-bills button[type=submit]')]);
    assert.match(page.url(), new RegExp(`/ebilling/export\\?bill=${bill.billId}$`));
    assert.equal(await page.$eval(`input[name="bill"][value="${bill.billId}"]`, (e) => (e as unknown as { checked: boolean }).checked), true);

    // The matter says 1998B, which cannot carry the copies' tax: refused, listed, no file.
    await Promise.all([page.waitForNavigation(), page.click('#export-form button[type=submit]')]);
    const listed = await page.$$eval('[data-problem]', (rows) => rows.map((r) => [r.getAttribute('data-field'), r.textContent ?? '']));
    assert.equal(listed.length, 1);
    assert.equal(listed[0]![0], 'INVOICE_TOTAL');
    assert.match(listed[0]![1], /export it as LEDES 1998BI/);
    assert.equal((await db.db.selectFrom('ebilling_export').select('id').execute()).length, 0);

    await page.select('select[name="format"]', 'LEDES1998BI');
    await Promise.all([page.waitForNavigation(), page.click('#export-form button[type=submit]')]);
    const href = await page.$eval('#exports a[download]', (a) => a.getAttribute('href'));
    assert.match(href ?? '', /^\/ebilling\/exports\/[0-9a-f-]{36}$/);
    const content = await page.evaluate(async (u) => (await fetch(u)).text(), href!);
    assert.ok(content.startsWith('LEDES98BI V2[]\n'));

    // Upload a damaged copy to the validate page.
    const file = join(dir, 'damaged.txt');
    writeFileSync(file, content.replace('|F|2.00|', '|F|2.0O|'));
    await page.goto(`${server.url}/ebilling/validate`);
    const input = await page.$('input[type=file]');
    await (input as unknown as { uploadFile(p: string): Promise<void> }).uploadFile(file);
    await Promise.all([page.waitForNavigation(), page.click('#validate-form button[type=submit]')]);
    const violations = await page.$$eval('[data-violation]', (rows) => rows.map((r) => [r.getAttribute('data-line'), r.getAttribute('data-field')]));
    assert.deepEqual(violations, [['3', 'LINE_ITEM_NUMBER_OF_UNITS']]);
    assert.match(await page.$eval('#result h2', (e) => e.textContent ?? ''), /damaged\.txt: 1 violation/);
    assert.deepEqual(problems.filter((p) => !/status of 4\d\d/.test(p)), [], 'no console errors, no CSP violations');
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await chrome.close();
    await server.close();
    await t.close();
  }
}, { timeout: 120_000 });
