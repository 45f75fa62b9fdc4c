/**
 * The matters list in real Chromium (htmx 4), on both databases: a "WIP at least" the list
 * cannot read shows its error by the input and keeps the list; corrected, the list filters
 * in place (the filter form stays); the address bar follows the filters, so a reload keeps them.
 */
import assert from 'node:assert/strict';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { systemContext } from '../../src/shared/events.ts';
import { PASSWORD, startApp } from '../support/app.ts';
import { launchChromium, serveRuntime, signIn, watchedPage } from '../support/browser.ts';
import { eachDialect } from '../support/db.ts';

const ctx = systemContext('list-browser-test', 'test');

eachDialect('in Chromium: a bad "WIP at least" is named by its input, the list stays, and the address keeps the filters', async (db) => {
  const t = await startApp(db);
  const server = await serveRuntime(t.runtime);
  const chrome = await launchChromium();
  try {
    const cmds = createMattersCommands({ db: db.db, clock: t.clock, relay: { kick: () => undefined } });
    const mh = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
    await cmds.setTimekeeperRate(ctx, { timekeeperId: mh.id, effectiveFrom: '2025-01-01', rateMinor: 32_000 });
    const client = await cmds.createClient(ctx, { name: 'Northwind Logistics Inc.' });
    const kestrel = await cmds.openMatter(ctx, { clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: mh.id, openedOn: '2025-06-01' });
    await cmds.openMatter(ctx, { clientId: client.id, name: 'Warehouse lease review', responsibleTimekeeperId: mh.id, openedOn: '2025-09-01' });
    await cmds.recordTimeEntry(ctx, { matterId: kestrel.id, timekeeperId: mh.id, workDate: '2026-02-27', rawMinutes: 60, narrative: 'Draft complaint' });
    await t.user('billing', { email: 'clerk@firm.test' });

    const { page, problems } = await watchedPage(chrome.browser);
    await signIn(page, server.url, 'clerk@firm.test', PASSWORD);
    await page.goto(`${server.url}/matters`);
    const names = () => page.$$eval('#matters tbody tr td:nth-child(2)', (tds) => tds.map((td) => td.textContent?.trim() ?? ''));
    // The filter form, the list (beside it, not inside it) and the input, each once.
    const layout = () => page.evaluate(`({
      forms: document.querySelectorAll('form.filters').length,
      lists: document.querySelectorAll('#matters').length,
      listInForm: document.querySelector('form.filters #matters') !== null,
      wipInput: document.querySelectorAll('form.filters input[name="wipAtLeast"]').length,
    })`);
    assert.deepEqual((await names()).sort(), ['Northwind v. Kestrel', 'Warehouse lease review']);

    // A bad amount: the error appears by the input; the list and the form stay as they were.
    await page.type('input[name="wipAtLeast"]', 'abc');
    await page.keyboard.press('Tab');
    await page.waitForSelector('#filter-error-wipAtLeast [data-error-for="wipAtLeast"]');
    assert.match(await page.$eval('#filter-error-wipAtLeast', (e) => e.textContent ?? ''), /is not an amount/);
    assert.deepEqual(await layout(), { forms: 1, lists: 1, listInForm: false, wipInput: 1 });
    assert.deepEqual((await names()).sort(), ['Northwind v. Kestrel', 'Warehouse lease review']);

    // Corrected: the list filters in place, the error goes, the form is still the form.
    await page.click('input[name="wipAtLeast"]', { count: 3 });
    await page.keyboard.press('Backspace');
    await page.type('input[name="wipAtLeast"]', '100.00');
    await page.keyboard.press('Tab');
    await page.waitForFunction("document.querySelectorAll('#matters tbody tr').length === 1");
    assert.deepEqual(await names(), ['Northwind v. Kestrel']);
    assert.equal(await page.$('#filter-error-wipAtLeast [data-error-for]'), null);
    assert.deepEqual(await layout(), { forms: 1, lists: 1, listInForm: false, wipInput: 1 });
    await page.waitForFunction("location.search.includes('wipAtLeast=100.00')");
    assert.match(page.url(), /\/matters\?status=open&wipAtLeast=100\.00$/);

    // A reload (or the link shared) shows the same list with the same filter.
    await page.reload();
    assert.equal(await page.$eval('input[name="wipAtLeast"]', (e) => (e as unknown as { value: string }).value), '100.00');
    assert.deepEqual(await names(), ['Northwind v. Kestrel']);
    assert.deepEqual(problems.filter((p) => !/status of 4\d\d/.test(p)), [], 'no console errors, no CSP violations');
  } finally {
    await chrome.close();
    await server.close();
    await t.close();
  }
}, { timeout: 120_000 });
