/**
 * Audit: every choice of the Bill Production toolbar (seed 000), for no bill, one bill and
 * two bills selected, leads in Chromium to a working page: no error page, and the figures on
 * it (Create payment's outstanding amount, the revert and preview lists) agree with the list.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { eachDialect } from '../support/db.ts';
import { closeSharedPdf } from './production-support.ts';
import { billAllAndReview, click, withDemoClerk } from './browser-support.ts';

after(closeSharedPdf);


eachDialect('audit: each production toolbar choice for 0, 1 and 2 bills opens a working page', async (db) => {
  await withDemoClerk(db, { matters: 6, entriesPerMatter: 6 }, async ({ page, problems, url, t }) => {
    await billAllAndReview(page, url);
    await page.click('#select-every');
    await click(page, '#drafts-form button[data-action="approve"]');
    await click(page, 'button[data-action="confirm-approve"]');
    await t.runtime.relay.drain();

    await page.goto(`${url}/billing/production`);
    const rows = await page.$$eval('#production-bills tr[data-bill]', (trs) => trs.map((tr) => ({
      id: tr.getAttribute('data-bill')!, number: tr.querySelector('.file-no')!.textContent!.trim(), total: tr.querySelectorAll('td.num')[0]!.textContent!.trim(),
    })));
    assert.ok(rows.length >= 3);
    const labels = await page.$$eval('#production-toolbar [data-action]', (els) => els.map((e) => e.textContent!.trim()));
    assert.deepEqual(labels, ['Produce all', 'Preview all', 'Revert all to draft']);

    const open = async (qs: string, action: string): Promise<string> => {
      await page.goto(`${url}/billing/production?${qs}`);
      await page.waitForFunction("typeof window.htmx !== 'undefined'");
      const status = await click(page, `#production-toolbar [data-action="${action}"]`);
      assert.ok(status > 0 && status < 400, `${action} with ${qs || 'nothing'} selected: ${status} at ${page.url()}`);
      return page.$eval('main', (e) => e.textContent ?? '');
    };
    // Nothing selected: every bill listed.
    assert.match(await open('', 'preview_all'), new RegExp(`Preview ${rows.length} bills`));
    assert.match(await open('', 'revert_all'), new RegExp(`Revert ${rows.length} bills to draft`));
    assert.match(await open('', 'produce_all'), new RegExp(`Produce ${rows.length} bills`));
    // One bill.
    const one = `bill=${rows[0]!.id}`;
    assert.match(await open(one, 'revert'), new RegExp(`Revert 1 bill to draft[\\s\\S]*${rows[0]!.number.replace(/\./g, '\\.')}`));
    assert.match(await open(one, 'produce'), /Produce 1 bill/);
    assert.match(await open(one, 'ebilling'), new RegExp(rows[0]!.number.replace(/\./g, '\\.')));
    await open(one, 'email_manually');
    assert.match(page.url(), new RegExp(`/billing/bills/${rows[0]!.id}/email$`));
    const payment = await open(one, 'create_payment');
    assert.match(payment, new RegExp(`Against bill ${rows[0]!.number.replace(/\./g, '\\.')}`));
    assert.equal(await page.$eval('main [data-minor]', (e) => e.textContent!.trim()), rows[0]!.total, 'the receipt form\'s outstanding is the bill\'s total');
    // Two bills.
    const two = `bill=${rows[0]!.id}&bill=${rows[1]!.id}`;
    assert.match(await open(two, 'preview'), /Preview 2 bills/);
    assert.match(await open(two, 'revert'), /Revert 2 bills to draft/);
    assert.match(await open(two, 'produce'), /Produce 2 bills/);
    assert.match(await open(two, 'ebilling'), new RegExp(rows[1]!.number.replace(/\./g, '\\.')));
    assert.deepEqual(problems, [], 'no console errors');
  });
}, { timeout: 180_000 });
