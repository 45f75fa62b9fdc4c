/**
 * The draft bills page's actions (approve, hold, release, delete, take out, modify) redirect to
 * the list with their results (post/redirect/get): the browser is not left on
 * /billing/drafts/act, so Reload shows the results again rather than posting the action again,
 * and Back from a bill opened from the results does not ask to resubmit a form.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { eachDialect } from '../support/db.ts';
import { closeSharedPdf } from './production-support.ts';
import { billAllAndReview, click, withDemoClerk } from './browser-support.ts';

after(closeSharedPdf);

eachDialect('a draft bills action redirects to the list (post/redirect/get), so Reload shows its results and does not post it again', async (db) => {
  await withDemoClerk(db, { matters: 6, entriesPerMatter: 6 }, async ({ page, url }) => {
    await billAllAndReview(page, url);
    const first = await page.$eval('#drafts tr[data-bill]', (e) => e.getAttribute('data-bill')!);
    await page.click(`#drafts input[name="id"][value^="${first}@"]`);
    await click(page, '#drafts-form button[data-action="hold"]');
    assert.equal(await page.$eval('#results', (e) => e.getAttribute('data-done')), '1');
    assert.doesNotMatch(page.url(), /\/billing\/drafts\/act$/, 'the browser is sent back to the list, not left on the POST');
    let posts = 0;
    page.on('request', (r) => { if (r.method() === 'POST') posts++; });
    await page.reload();
    assert.equal(posts, 0, 'Reload does not post the action again');
    assert.equal(await page.$eval('#results', (e) => e.getAttribute('data-done')), '1', 'the results are shown again');
    assert.equal(await page.$eval(`#drafts tr[data-bill="${first}"]`, (e) => e.textContent!.includes('On hold') || e.outerHTML.includes('on-hold')), true, 'the draft held once');
  });
}, { timeout: 120_000 });
