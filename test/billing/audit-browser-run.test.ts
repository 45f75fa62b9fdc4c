/**
 * Audit: a bill run watched to its end in Chromium (htmx polling the run's status) shows the
 * same page as one loaded after it ended: the drafted matters with their totals, without a reload.
 * And a run can be left and come back to (the mass billing page lists it under Recent runs).
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { eachDialect } from '../support/db.ts';
import { closeSharedPdf } from './production-support.ts';
import { click, INVOICE_DATE, UP_TO, withDemoClerk } from './browser-support.ts';

after(closeSharedPdf);

const WAIT_MS = 60_000;

eachDialect('audit: a bill run watched until done shows its drafted list without a reload', async (db) => {
  await withDemoClerk(db, { matters: 300, entriesPerMatter: 4 }, async ({ page, problems, url }) => {
    await page.goto(`${url}/billing/mass?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}`);
    await click(page, '#mass-run button[data-action="bill-all"]');
    await click(page, '#mass-confirm button[data-action="confirm"]');
    const firstStatus = await page.$eval('#run-status', (e) => e.getAttribute('data-status'));
    await page.waitForFunction("document.querySelector('#run-status')?.getAttribute('data-status') === 'done'", { timeout: WAIT_MS });
    const drafted = Number(await page.$eval('#run-drafted', (e) => e.textContent));
    assert.ok(drafted > 0);
    if (firstStatus !== 'done') {
      // Watched to its end: the drafted list is there as on a fresh load.
      const watched = await page.$$eval('#run-drafted-list tbody tr', (trs) => trs.length);
      await page.reload();
      const fresh = await page.$$eval('#run-drafted-list tbody tr', (trs) => trs.length);
      assert.ok(fresh > 0);
      assert.equal(watched, fresh, `watched the run from "${firstStatus}" to done: the drafted list shows as after a reload`);
    }
    // Left and come back to: the mass billing page lists the run.
    await page.goto(`${url}/billing/mass`);
    const runs = await page.$$eval('#recent-runs a[href^="/billing/mass/runs/"]', (els) => els.map((e) => e.getAttribute('href')));
    assert.equal(runs.length, 1);
    // What the last poll swaps in (the run's fragment once it is done) carries the drafted list.
    const runUrl = runs[0]!;
    const fragment = await page.evaluate(async (h) => (await fetch(h, { headers: { 'HX-Request': 'true' } })).text(), runUrl);
    assert.doesNotMatch(fragment, /<html/i, 'the fragment');
    assert.match(fragment, /id="run-drafted-list"/, 'the polled fragment of a done run lists the drafted matters');
    assert.deepEqual(problems, [], 'no console errors');
  });
}, { timeout: 240_000 });
