/**
 * Audit: the draft bills page in Chromium. The clerk sorts the list (a column heading),
 * filters it, ticks bills and acts on them: the list that comes back keeps the sort and the
 * filters the clerk chose; the sort headings keep the filters.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import type { Page } from 'puppeteer-core';
import { eachDialect } from '../support/db.ts';
import { closeSharedPdf } from './production-support.ts';
import { billAllAndReview, click, withDemoClerk } from './browser-support.ts';

after(closeSharedPdf);

const totals = (page: Page) => page.$$eval('#drafts tr[data-bill]', (trs) => trs.map((tr) => Number(tr.querySelectorAll('td.num')[5]!.getAttribute('data-minor'))));
const isDesc = (xs: number[]) => xs.every((x, i) => i === 0 || xs[i - 1]! >= x);

eachDialect('audit: draft bills keep the clerk\'s sort and filters through hold, release and modify', async (db) => {
  await withDemoClerk(db, { matters: 12, entriesPerMatter: 10 }, async ({ page, problems, url }) => {

    await billAllAndReview(page, url);
    const batchUrl = page.url();

    // Sort by total, then again for descending (the headings).
    await click(page, '#drafts thead a[href*="sort=total"]');
    await click(page, '#drafts thead a[href*="sort=total"]');
    assert.match(page.url(), /sort=total&dir=desc/);
    assert.match(page.url(), /batch=/, 'the heading keeps the batch filter');
    const before = await totals(page);
    assert.ok(before.length >= 4 && isDesc(before), `sorted by total, descending: ${before}`);
    assert.notDeepEqual(before, [...before].reverse(), 'the totals differ');

    // Hold the first: the list comes back still sorted by total, descending, in the batch.
    const first = await page.$eval('#drafts tr[data-bill]', (e) => e.getAttribute('data-bill')!);
    await page.click(`#drafts input[name="id"][value^="${first}@"]`);
    await click(page, '#drafts-form button[data-action="hold"]');
    assert.equal(await page.$eval('#results', (e) => e.getAttribute('data-done')), '1');
    assert.ok(isDesc(await totals(page)), `still sorted by total, descending, after the hold: ${await totals(page)}`);
    assert.equal(await page.$eval('#drafts-filter select[name=sort]', (e) => (e as unknown as { value: string }).value), 'total');
    assert.equal(await page.$eval('#drafts-filter select[name=dir]', (e) => (e as unknown as { value: string }).value), 'desc');

    // Filter to those on hold: releasing it keeps the filter.
    await page.goto(`${batchUrl}&hold=yes&sort=total&dir=desc`);
    assert.equal(await page.$eval('#drafts-total', (e) => e.getAttribute('data-count')), '1');
    await page.click(`#drafts input[name="id"][value^="${first}@"]`);
    await click(page, '#drafts-form button[data-action="release"]');
    assert.equal(await page.$eval('#drafts-filter select[name=hold]', (e) => (e as unknown as { value: string }).value), 'yes', 'the hold filter is kept');
    assert.equal(await page.$eval('#drafts-filter select[name=sort]', (e) => (e as unknown as { value: string }).value), 'total', 'the sort is kept');

    // Modify the batch's terms: the list comes back sorted as it was.
    await page.goto(`${batchUrl}&sort=total&dir=desc`);
    await page.type('#modify-batch input[name=newTerms]', '14');
    await click(page, '#modify-batch button[data-action="modify"]');
    // It asks first, naming the change.
    assert.match(await page.$eval('#modify-change', (e) => e.textContent ?? ''), /Payment terms: 14 days/);
    await click(page, 'button[data-action="confirm-modify"]');
    assert.equal(await page.$eval('#results', (e) => e.getAttribute('data-action')), 'modify');
    assert.ok(isDesc(await totals(page)), 'still sorted after modify');
    assert.equal(await page.$eval('#drafts-filter select[name=sort]', (e) => (e as unknown as { value: string }).value), 'total', 'the sort is kept after modify');
    assert.deepEqual(problems, [], 'no console errors');
  });
}, { timeout: 180_000 });
