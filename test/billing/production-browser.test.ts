/**
 * Bill production in real Chromium against the served app, on both databases: select one
 * bill (the toolbar changes to the one-bill choices through htmx), Produce, Confirm, watch
 * the progress finish; a real SMTP server on 127.0.0.1 receives the email with the PDF,
 * whose text (pdftotext) shows the bill number and total.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { formatMoney } from '../../src/shared/money.ts';
import { eachDialect } from '../support/db.ts';
import { PASSWORD, startApp } from '../support/app.ts';
import { launchChromium, serveRuntime, signIn, watchedPage } from '../support/browser.ts';
import { pdfText } from '../adapters/pdf.ts';
import { attachmentOf, startSmtp } from '../adapters/smtp.ts';
import { approvedBills, setupFrom, closeSharedPdf, filesIn, outputDirs, removeDirs, testOutputs } from './production-support.ts';

after(closeSharedPdf);

eachDialect('in Chromium: select one bill, produce it, the SMTP server gets the email with the PDF', async (db) => {
  const smtp = await startSmtp();
  const dirs = outputDirs();
  const outputs = testOutputs(dirs, { smtpPort: smtp.port });
  const t = await startApp(db, { outputs });
  const server = await serveRuntime(t.runtime);
  const chrome = await launchChromium();
  try {
    const s = setupFrom(t);
    const [a, b] = await approvedBills(s, 2, { copiesToPrint: 1, useClientAddress: false, sendTo: ['ap@northwind.example'] });
    await t.user('billing', { email: 'clerk@firm.test' });
    const { page, problems } = await watchedPage(chrome.browser);

    await signIn(page, server.url, 'clerk@firm.test', PASSWORD);
    await page.goto(`${server.url}/billing/production`);
    await page.waitForFunction("typeof window.htmx !== 'undefined'");
    const actions = () => page.$$eval('#production-toolbar [data-action]', (els) => els.map((e) => e.getAttribute('data-action')));
    assert.deepEqual(await actions(), ['produce_all', 'preview_all', 'revert_all']);

    await page.click(`input[name="bill"][value="${a!.billId}"]`);
    await page.waitForFunction("document.querySelector('#production-toolbar').getAttribute('data-selected') === '1'");
    assert.deepEqual(await actions(), ['produce', 'preview', 'ebilling', 'revert', 'email_manually', 'create_payment']);
    await page.click(`input[name="bill"][value="${b!.billId}"]`);
    await page.waitForFunction("document.querySelector('#production-toolbar').getAttribute('data-selected') === '2'");
    assert.deepEqual(await actions(), ['produce', 'preview', 'ebilling', 'revert']);
    await page.click(`input[name="bill"][value="${b!.billId}"]`);
    await page.waitForFunction("document.querySelector('#production-toolbar').getAttribute('data-selected') === '1'");

    // Produce → the confirmation → Confirm → the progress page, which polls until done.
    await Promise.all([page.waitForNavigation(), page.click('#production-toolbar [data-action="produce"]')]);
    assert.match(page.url(), /\/billing\/production\/produce\?bill=/);
    await Promise.all([page.waitForNavigation(), page.click('[data-action="confirm-produce"]')]);
    assert.match(page.url(), /\/billing\/production\/runs\/[0-9a-f-]{36}$/);
    await page.waitForFunction("document.querySelector('#production-progress').getAttribute('data-status') === 'done'", { timeout: 60_000 });
    assert.equal(await page.$eval('#production-progress', (e) => e.getAttribute('data-done')), '1');

    assert.equal(smtp.messages.length, 1, 'one email');
    assert.deepEqual(smtp.messages[0]!.to, ['ap@northwind.example']);
    const att = attachmentOf(smtp.messages[0]!.raw);
    assert.ok(att, 'the PDF is attached');
    const text = pdfText(att.bytes);
    assert.ok(text.includes(a!.number!), `the PDF shows ${a!.number}`);
    assert.ok(text.includes(formatMoney(a!.totals.totalMinor, a!.currency)), 'the PDF shows the total');
    assert.equal(filesIn(dirs.print).length, 1, 'one copy printed');
    const status = await db.db.selectFrom('billing_bill').select(['id', 'status']).execute();
    assert.deepEqual(Object.fromEntries(status.map((r) => [r.id, r.status])), { [a!.billId]: 'finalised', [b!.billId]: 'approved' });

    // Back on the list only the other bill is left.
    await page.goto(`${server.url}/billing/production`);
    assert.deepEqual(await page.$$eval('#production-bills tr[data-bill]', (els) => els.map((e) => e.getAttribute('data-bill'))), [b!.billId]);
    assert.deepEqual(problems, [], 'no console errors, no CSP violations');
  } finally {
    await chrome.close();
    await server.close();
    await t.close();
    await outputs.close();
    await smtp.close();
    removeDirs(dirs);
  }
}, { timeout: 120_000 });
