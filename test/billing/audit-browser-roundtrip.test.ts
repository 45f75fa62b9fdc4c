/**
 * Audit: the way back through the run keeps the figures. A bill reverted from Bill production
 * is on the draft bills page with its number and the same total; a draft deleted there is
 * offered again by mass billing with the WIP and Will bill it had before it was billed.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import type { Page } from 'puppeteer-core';
import { eachDialect } from '../support/db.ts';
import { closeSharedPdf } from './production-support.ts';
import { click, INVOICE_DATE, UP_TO, WAIT_MS, withDemoClerk } from './browser-support.ts';

after(closeSharedPdf);

const massRows = (page: Page) => page.$$eval('#mass-list tr[data-matter]', (trs) => Object.fromEntries(trs.map((tr) => {
  const tds = tr.querySelectorAll('td');
  return [tr.querySelector('.file-no')!.textContent!.trim(), [tds[4]!.getAttribute('data-minor'), tds[5]!.getAttribute('data-minor'), tr.querySelector('.will-bill')!.getAttribute('data-minor')].join('/')];
})));

eachDialect('audit: revert and delete bring the bill back with the same figures (production → drafts → mass billing)', async (db) => {
  await withDemoClerk(db, { matters: 6, entriesPerMatter: 6 }, async ({ page, problems, url, t }) => {
    const massUrl = `${url}/billing/mass?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}`;
    await page.goto(massUrl);
    const before = await massRows(page);
    await click(page, '#mass-run button[data-action="bill-all"]');
    await click(page, '#mass-confirm button[data-action="confirm"]');
    await page.waitForFunction("document.querySelector('#run-status')?.getAttribute('data-status') === 'done'", { timeout: WAIT_MS });
    await click(page, '#run-status a[data-action="review"]');
    await page.click('#select-every');
    await click(page, '#drafts-form button[data-action="approve"]');
    await click(page, 'button[data-action="confirm-approve"]');
    await t.runtime.relay.drain();

    await page.goto(`${url}/billing/production`);
    const row = await page.$eval('#production-bills tr[data-bill]', (tr) => ({
      id: tr.getAttribute('data-bill')!, number: tr.querySelector('.file-no')!.textContent!.trim(), total: tr.querySelectorAll('td.num')[0]!.textContent!.trim(),
      file: tr.querySelectorAll('td')[2]!.textContent!.trim().split(' ')[0]!,
    }));
    await page.goto(`${url}/billing/production?bill=${row.id}`);
    await click(page, '#production-toolbar [data-action="revert"]');
    await click(page, '[data-action="confirm-revert"]');
    await t.runtime.relay.drain();

    await page.goto(`${url}/billing/drafts`);
    const draft = await page.$eval(`#drafts tr[data-bill="${row.id}"]`, (tr) => ({
      number: tr.querySelectorAll('td')[2]!.textContent!.trim(), total: tr.querySelectorAll('td.num')[5]!.textContent!.trim(),
    }));
    assert.deepEqual(draft, { number: row.number, total: row.total }, 'the reverted bill is a draft with its number and total');

    await page.click(`#drafts input[name="id"][value^="${row.id}@"]`);
    await click(page, '#drafts-form button[data-action="delete"]');
    assert.deepEqual(await page.$$eval('#delete-drafts tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-bill'))), [row.id], 'Delete asks first, naming the draft');
    await click(page, '[data-action="confirm-delete"]');
    assert.equal(await page.$eval('#results', (e) => e.getAttribute('data-done')), '1');
    await t.runtime.relay.drain();
    await page.goto(massUrl);
    const again = await massRows(page);
    assert.deepEqual(Object.keys(again), [row.file], 'only the deleted draft\'s matter is offered again');
    assert.equal(again[row.file], before[row.file], 'with the WIP, disbursements and Will bill it had before');
    assert.deepEqual(problems, [], 'no console errors');
  });
}, { timeout: 180_000 });
