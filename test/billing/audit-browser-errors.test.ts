/**
 * Audit: field errors on the monthly run's forms are shown next to the field they are about
 * (inside the field's label, `data-error-for`), and what the clerk typed is kept.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import type { Page } from 'puppeteer-core';
import { eachDialect } from '../support/db.ts';
import { closeSharedPdf } from './production-support.ts';
import { billAllAndReview, click, INVOICE_DATE, UP_TO, withDemoClerk } from './browser-support.ts';

after(closeSharedPdf);

/** The error shown inside the field (its label) for the named control, and the control's value. */
async function fieldState(page: Page, scope: string, name: string): Promise<{ error: string | null; value: string }> {
  return page.$eval(`${scope} [name="${name}"]`, (el, n) => {
    const field = el.closest('label');
    const err = field?.querySelector(`[data-error-for="${n as string}"]`);
    return { error: err ? (err.textContent ?? '').trim() : null, value: (el as unknown as { value: string }).value };
  }, name);
}

eachDialect('audit: field errors sit next to their fields with the values kept (mass filters, modify batch)', async (db) => {
  await withDemoClerk(db, { matters: 6, entriesPerMatter: 6 }, async ({ page, problems, url }) => {

    // Mass billing: typed choices that cannot be read.
    const res = await page.goto(`${url}/billing/mass?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}&terms=abc&cap=amount&capAmount=lots&matter=99.99`);
    assert.equal(res?.status(), 422);
    for (const [name, value] of [['terms', 'abc'], ['capAmount', 'lots'], ['matter', '99.99']] as const) {
      const s = await fieldState(page, '#mass-filters', name);
      assert.ok(s.error, `${name}: the error is next to the field`);
      assert.equal(s.value, value, `${name}: the typed value is kept`);
    }
    // A WIP cap choice the select does not offer is named next to the select, as the time cap's is.
    await page.goto(`${url}/billing/mass?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}&cap=yes&timeCap=yes`);
    assert.ok((await fieldState(page, '#mass-filters', 'timeCap')).error, 'timeCap: next to the field');
    assert.ok((await fieldState(page, '#mass-filters', 'cap')).error, 'cap: next to the field');

    // Draft bills: modify the batch with terms that are not a number of days.
    await billAllAndReview(page, url);
    await page.type('#modify-batch input[name=newTerms]', 'soon');
    await page.$eval('#modify-batch input[name=newInvoiceDate]', (e) => { (e as unknown as { value: string }).value = '2026-03-05'; });
    await click(page, '#modify-batch button[data-action="modify"]');
    const terms = await fieldState(page, '#modify-batch', 'newTerms');
    assert.ok(terms.error, 'newTerms: next to the field');
    assert.equal(terms.value, 'soon');
    assert.equal((await fieldState(page, '#modify-batch', 'newInvoiceDate')).value, '2026-03-05', 'the other typed value is kept');
    assert.deepEqual(problems.filter((p) => !p.includes('422')), [], 'no console errors');
  });
}, { timeout: 180_000 });
