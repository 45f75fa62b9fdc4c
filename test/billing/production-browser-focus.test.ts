/**
 * The production run page in real Chromium while a run goes on (its first email held by a
 * real SMTP server on 127.0.0.1), on both databases: each second's poll morphs the section
 * instead of replacing it, so the keyboard focus stays on the bill link the clerk is on and the
 * live-region announcer keeps its node (a screen reader hears a change of state, not every
 * count); once the run finishes the announcer says so and the polling stops.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { eachDialect } from '../support/db.ts';
import { PASSWORD, startApp } from '../support/app.ts';
import { launchChromium, serveRuntime, signIn, watchedPage } from '../support/browser.ts';
import { approvedBills, setupFrom, closeSharedPdf, outputDirs, removeDirs, smtpHoldingFirst, smtpOutputs } from './production-support.ts';

after(closeSharedPdf);

eachDialect('in Chromium: the production run page keeps the focus and its announcer through each poll, announces the end and stops polling', async (db) => {
  // The first message is held by the server until `open()`; the others are answered at once.
  const { smtp, open } = await smtpHoldingFirst();
  const dirs = outputDirs();
  const outputs = smtpOutputs(dirs, smtp.port, 60_000);
  const t = await startApp(db, { outputs });
  const server = await serveRuntime(t.runtime);
  const chrome = await launchChromium();
  try {
    const s = setupFrom(t);
    const bills = await approvedBills(s, 2, { copiesToPrint: 0, useClientAddress: false, sendTo: ['ap@northwind.example'] });
    await t.user('billing', { email: 'clerk@firm.test' });
    const { page, problems } = await watchedPage(chrome.browser);
    await signIn(page, server.url, 'clerk@firm.test', PASSWORD);
    await page.goto(`${server.url}/billing/production/produce?${bills.map((b) => `bill=${b.billId}`).join('&')}`);
    await Promise.all([page.waitForNavigation(), page.click('[data-action="confirm-produce"]')]);
    assert.match(page.url(), /\/billing\/production\/runs\/[0-9a-f-]{36}$/);
    await page.waitForFunction("typeof window.htmx !== 'undefined'");

    // The clerk tabs onto the first bill's link while the run waits on the mail server.
    const polls: string[] = [];
    page.on('request', (r) => { if (r.url().includes('/billing/production/runs/')) polls.push(r.url()); });
    await page.focus('#production-items a');
    await page.evaluate("window.focused = document.activeElement; window.announcer = document.getElementById('production-announce');");
    assert.equal(await page.$eval('#production-announce', (e) => e.textContent), 'Producing the bills.');
    const before = polls.length;
    await new Promise((r) => setTimeout(r, 2_600));
    assert.ok(polls.length - before >= 2, `the page polled meanwhile (${polls.length - before})`);
    const kept = await page.evaluate("({ focus: document.activeElement === window.focused, tag: document.activeElement && document.activeElement.tagName, announcer: document.getElementById('production-announce') === window.announcer })");
    assert.deepEqual(kept, { focus: true, tag: 'A', announcer: true }, 'focus and the announcer survive the polls');

    // Meanwhile the revert confirmation says the bills are being produced, and offers no revert.
    const revertPage = await page.evaluate(`fetch('/billing/production/revert?${bills.map((b) => `bill=${b.billId}`).join('&')}').then((r) => r.text())`) as string;
    assert.match(revertPage, /id="revert-producing"/);
    // (The other bill may be produced meanwhile, beside the held one: then only the held one is still approved.)
    assert.match(revertPage, /(It is being produced now: it is not reverted while its production run goes on|2 of them are being produced now: they are not reverted while their production run goes on)/);
    assert.match(revertPage, /id="revert-none"/);
    assert.ok(!revertPage.includes('data-action="confirm-revert"'));
    assert.ok(!/<input type="hidden" name="bill" value="/.test(revertPage), 'a bill being produced is not posted');

    // The mail server answers: the run finishes, the announcer says so, and the page stops polling.
    open();
    await page.waitForFunction("document.querySelector('#production-progress').getAttribute('data-status') === 'done'", { timeout: 60_000 });
    assert.equal(await page.$eval('#production-announce', (e) => e.textContent), 'The production run has finished.');
    assert.equal(await page.evaluate("document.getElementById('production-announce') === window.announcer"), true, 'the same announcer node');
    const atEnd = polls.length;
    await new Promise((r) => setTimeout(r, 2_500));
    assert.equal(polls.length, atEnd, 'no polling once finished');
    assert.equal(smtp.received.length, bills.length);
    assert.deepEqual(problems, [], 'no console errors, no CSP violations');
  } finally {
    open();
    await chrome.close();
    await server.close();
    await t.close();
    await outputs.close();
    await smtp.close();
    removeDirs(dirs);
  }
});
