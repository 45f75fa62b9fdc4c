/**
 * The composer in real Chromium (htmx 4 under the CSP), on both databases: typing a
 * write-down and unticking an item recompose the totals in place through the htmx preview
 * (no navigation, nothing saved); "Save as draft" is a plain form post to the bill page;
 * Approve numbers the bill.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { PASSWORD, startApp } from '../support/app.ts';
import { launchChromium, serveRuntime, signIn, watchedPage } from '../support/browser.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { firm, work } from './support.ts';

eachDialect('in Chromium: the composer recomposes totals in place, saves a draft, approves it', async (db) => {
  const t = await startApp(db);
  const server = await serveRuntime(t.runtime);
  const chrome = await launchChromium();
  try {
    const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const { matter, partner, d2 } = await (async () => { const f = await firm(cmds); return { ...f, ...await work(cmds, f.matter.id, f) }; })();
    await t.runtime.relay.drain();
    await t.user('billing', { email: 'clerk@firm.test' });
    const { page, problems } = await watchedPage(chrome.browser);
    const previews: string[] = [];
    page.on('request', (r) => { if (r.method() === 'POST' && r.url().endsWith('/compose/preview')) previews.push(r.headers()['x-csrf-token'] ?? ''); });

    await signIn(page, server.url, 'clerk@firm.test', PASSWORD);
    await page.goto(`${server.url}/billing/matters/${matter.id}/compose?invoiceDate=2026-02-28`);
    await page.waitForFunction("typeof window.htmx !== 'undefined'");
    const total = () => page.$eval('[data-total="total"]', (e) => Number(e.getAttribute('data-minor')));
    assert.equal(await total(), 126_500);
    const url = page.url();

    // Write the partner down to 450.00: the preview swaps the totals in.
    await page.type(`input[name="wt_tk_${partner.id}"]`, '450.00');
    await page.focus('input[name="interest"]');
    await page.waitForFunction("document.querySelector('[data-total=\"total\"]').getAttribute('data-minor') === '111500'");
    // Untick the copies.
    await page.click(`input[name="include"][value="${d2.id}"]`);
    await page.waitForFunction("document.querySelector('[data-total=\"total\"]').getAttribute('data-minor') === '110000'");
    assert.equal(page.url(), url, 'recomposed in place');
    assert.ok(previews.length >= 2 && previews.every((h) => h.length > 20), 'htmx posted the preview with the CSRF header');
    assert.equal((await db.db.selectFrom('billing_bill').selectAll().execute()).length, 0, 'nothing saved yet');
    assert.equal(await page.$eval(`input[name="wt_tk_${partner.id}"]`, (e) => (e as unknown as { value: string }).value), '450.00', 'the typed value survives the swap');

    // Save: a plain form post, to the bill page.
    await Promise.all([page.waitForNavigation(), page.click('button[name="_action"][value="save"]')]);
    assert.match(page.url(), /\/billing\/bills\/[0-9a-f-]{36}$/);
    assert.equal(await page.$eval('[data-total="total"]', (e) => e.getAttribute('data-minor')), '110000');
    await Promise.all([page.waitForNavigation(), page.click('button[data-action="approve"]')]);
    assert.equal(await page.$eval('[data-bill-number]', (e) => e.textContent), '1.1.1');
    assert.deepEqual(problems, [], 'no console errors, no CSP violations');
  } finally {
    await chrome.close();
    await server.close();
    await t.close();
  }
}, { timeout: 120_000 });
