/**
 * Audit: the figures a clerk reads on the way through the monthly run agree with each other:
 * the mass billing list (each row's WIP, disbursements and Will bill; the WIP total above it),
 * the run page's drafted totals, the draft bills page (each row's parts add up to its total),
 * the bill page, the production list and the produce confirmation.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { eachDialect } from '../support/db.ts';
import { closeSharedPdf } from './production-support.ts';
import { click, INVOICE_DATE, UP_TO, WAIT_MS, withDemoClerk } from './browser-support.ts';

after(closeSharedPdf);

eachDialect('audit: WIP, totals and counts agree across mass billing, the run, drafts, the bill and production', async (db) => {
  await withDemoClerk(db, { matters: 12, entriesPerMatter: 10 }, async ({ page, problems, url }) => {

    await page.goto(`${url}/billing/mass?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}`);
    const mass = await page.$$eval('#mass-list tr[data-matter]', (trs) => trs.map((tr) => {
      const tds = tr.querySelectorAll('td');
      return {
        file: tr.querySelector('.file-no')!.textContent!.trim(), fees: Number(tds[4]!.getAttribute('data-minor')), disb: Number(tds[5]!.getAttribute('data-minor')),
        willBill: Number(tr.querySelector('.will-bill')!.getAttribute('data-minor')), willBillText: tr.querySelector('.will-bill')!.textContent!.trim(),
      };
    }));
    const count = Number(await page.$eval('#eligible-count', (e) => e.getAttribute('data-count')));
    assert.equal(mass.length, count, 'the count is the rows listed');
    const wipTotal = await page.$$eval('#eligible-wip [data-minor]', (els) => els.reduce((s, e) => s + Number(e.getAttribute('data-minor')), 0));
    assert.equal(wipTotal, mass.reduce((s, r) => s + r.fees + r.disb, 0), 'the WIP above the list is the rows\' WIP and disbursements');

    await click(page, '#mass-run button[data-action="bill-all"]');
    assert.match(await page.$eval('h1', (e) => e.textContent ?? ''), new RegExp(`Bill ${count} matter`));
    await click(page, '#mass-confirm button[data-action="confirm"]');
    await page.waitForFunction("document.querySelector('#run-status')?.getAttribute('data-status') === 'done'", { timeout: WAIT_MS });
    // The run's page, loaded afresh once the run is done, lists each draft with its total.
    await page.reload();
    assert.equal(await page.$eval('#run-drafted', (e) => e.textContent), String(count));
    const run = await page.$$eval('#run-drafted-list tbody tr', (trs) => trs.map((tr) => ({
      file: tr.querySelector('.file-no')!.textContent!.trim(), total: Number(tr.querySelector('[data-minor]')!.getAttribute('data-minor')),
    })));
    const willBill = new Map(mass.map((r) => [r.file, r.willBill]));
    for (const r of run) assert.equal(r.total, willBill.get(r.file), `${r.file}: the run drafted what the list said it will bill`);
    assert.equal(run.length, count);

    await click(page, '#run-status a[data-action="review"]');
    assert.equal(await page.$eval('#drafts-total', (e) => e.getAttribute('data-count')), String(count));
    const drafts = await page.$$eval('#drafts tr[data-bill]', (trs) => trs.map((tr) => {
      const m = [...tr.querySelectorAll('td.num')].map((td) => Number(td.getAttribute('data-minor')));
      return { id: tr.getAttribute('data-bill')!, file: tr.querySelector('.file-no')!.textContent!.trim(), fees: m[0]!, disb: m[1]!, discount: m[2]!, interest: m[3]!, tax: m[4]!, total: m[5]!, totalText: tr.querySelectorAll('td.num')[5]!.textContent!.trim() };
    }));
    for (const d of drafts) {
      assert.equal(d.fees + d.disb + d.discount + d.interest + d.tax, d.total, `${d.file}: the draft row's parts add up to its total`);
      assert.equal(d.total, willBill.get(d.file), `${d.file}: the draft is what the list said it will bill`);
    }
    // The bill page of each draft says the same.
    for (const d of drafts.slice(0, 4)) {
      await page.goto(`${url}/billing/bills/${d.id}`);
      assert.equal(Number(await page.$eval('[data-total="total"]', (e) => e.getAttribute('data-minor'))), d.total, `${d.file}: bill page total`);
      const parts = await page.$$eval('[data-total]', (els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-total'), Number(e.getAttribute('data-minor'))])));
      assert.equal(parts.fees! + parts['fixed-charges']!, d.fees, `${d.file}: fees`);
      assert.equal(parts.disbursements, d.disb, `${d.file}: disbursements`);
      assert.equal(parts.tax, d.tax, `${d.file}: tax`);
    }

    // Approve all; production lists each with the same total, and so does its confirmation.
    await page.goto(`${url}/billing/drafts`);
    await page.click('#select-every');
    await click(page, '#drafts-form button[data-action="approve"]');
    await click(page, 'button[data-action="confirm-approve"]');
    const approved = Number(await page.$eval('#results', (e) => e.getAttribute('data-done')));
    await click(page, '#results a[href="/billing/production"]');
    const prod = await page.$$eval('#production-bills tr[data-bill]', (trs) => trs.map((tr) => ({ id: tr.getAttribute('data-bill')!, total: tr.querySelectorAll('td.num')[0]!.textContent!.trim() })));
    assert.equal(prod.length, approved);
    const draftText = new Map(drafts.map((d) => [d.id, d.totalText]));
    for (const p of prod) assert.equal(p.total, draftText.get(p.id), `production total of ${p.id}`);
    await click(page, '#production-toolbar [data-action="produce_all"]');
    const confirm = await page.$$eval('#produce-bills tbody tr', (trs) => trs.map((tr) => tr.querySelectorAll('td.num')[0]!.textContent!.trim()));
    assert.deepEqual([...confirm].sort(), prod.map((p) => p.total).sort(), 'the confirmation lists the same totals');
    assert.deepEqual(problems, [], 'no console errors');
  });
}, { timeout: 180_000 });
