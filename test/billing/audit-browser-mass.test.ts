/**
 * Audit: seed 001 on the mass billing page: "You can click on the names or matter IDs of the
 * matters to open their respective bills and make any last-minute changes." Each listed row's
 * file number and matter name open the composer on the bill the row says it will bill.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { DEMO_PASSWORD, seedDemo } from '../../src/cli/demo.ts';
import { eachDialect } from '../support/db.ts';
import { startApp } from '../support/app.ts';
import { launchChromium, serveRuntime, signIn, watchedPage } from '../support/browser.ts';
import { closeSharedPdf, outputDirs, removeDirs, testOutputs } from './production-support.ts';

after(closeSharedPdf);

const INVOICE_DATE = '2026-03-02';
const UP_TO = '2026-02-27';

eachDialect('audit: seed 001: a mass billing row\'s file number and name open its bill in the composer', async (db) => {
  const dirs = outputDirs();
  const outputs = testOutputs(dirs);
  const t = await startApp(db, { outputs, start: `${INVOICE_DATE}T09:00:00Z` });
  const server = await serveRuntime(t.runtime);
  const chrome = await launchChromium();
  try {
    await seedDemo(t.runtime, { matters: 6, entriesPerMatter: 6, seed: 17 });
    await t.runtime.relay.drain();
    const { page, problems } = await watchedPage(chrome.browser);
    await signIn(page, server.url, 'billing@demo.lexbill.test', DEMO_PASSWORD);
    await page.goto(`${server.url}/billing/mass?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}`);
    const rows = await page.$$eval('#mass-list tr[data-matter]', (trs) => trs.map((tr) => ({
      file: tr.querySelector('.file-no a')?.getAttribute('href') ?? null,
      name: tr.querySelector('td:nth-child(3) a')?.getAttribute('href') ?? null,
      composer: tr.querySelector('a[data-compose]')!.getAttribute('href'),
      willBill: tr.querySelector('.will-bill')!.getAttribute('data-minor'),
    })));
    assert.ok(rows.length > 0);
    for (const r of rows) {
      assert.equal(r.file, r.composer, 'the file number opens the bill in the composer');
      assert.equal(r.name, r.composer, 'the matter name opens the bill in the composer');
    }
    // The composer opens on what the row said it will bill.
    await Promise.all([page.waitForNavigation(), page.click('#mass-list tr[data-matter] .file-no a')]);
    assert.equal(await page.$eval('[data-total="total"]', (e) => e.getAttribute('data-minor')), rows[0]!.willBill);
    assert.deepEqual(problems, [], 'no console errors');
  } finally {
    await chrome.close();
    await server.close();
    await t.close();
    await outputs.close();
    removeDirs(dirs);
  }
}, { timeout: 120_000 });
