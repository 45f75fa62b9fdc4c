/**
 * Audit: production progress can be left and come back to. A clerk who confirms Produce all
 * and goes back to Bill production while the run is still going finds, on each bill still
 * being produced, a link to the run's progress page (the bills stay listed until finalised).
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { eachDialect } from '../support/db.ts';
import { closeSharedPdf } from './production-support.ts';
import { billAllAndReview, click, withDemoClerk } from './browser-support.ts';

after(closeSharedPdf);

const WAIT_MS = 90_000;

eachDialect('audit: leaving a production run and coming back to Bill production leads back to its progress', async (db) => {
  await withDemoClerk(db, { matters: 40, entriesPerMatter: 3 }, async ({ page, problems, url, t }) => {
    await billAllAndReview(page, url);
    await page.click('#select-every');
    await click(page, '#drafts-form button[data-action="approve"]');
    await click(page, 'button[data-action="confirm-approve"]');
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
  });
}, { timeout: 240_000 });
