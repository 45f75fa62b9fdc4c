/**
 * Audit of the monthly billing run in real Chromium (the demo firm, signed in as its billing
 * clerk): every address an htmx request fetches on the mass billing, draft and production
 * pages answers the fragment for an htmx request and the whole page otherwise, with
 * `Vary: HX-Request` on both; and no console errors along the way.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import type { Page } from 'puppeteer-core';
import { eachDialect } from '../support/db.ts';
import { closeSharedPdf } from './production-support.ts';
import { click, INVOICE_DATE, UP_TO, WAIT_MS, withDemoClerk } from './browser-support.ts';

after(closeSharedPdf);

/** Fetch an address from the page, as htmx would (HX-Request) or as a plain load. */
async function fetchShape(page: Page, href: string, htmx: boolean): Promise<{ status: number; vary: string; page: boolean; body: string }> {
  return page.evaluate(async (h, hx) => {
    const r = await fetch(h, { headers: hx ? { 'HX-Request': 'true', 'HX-Request-Type': 'partial' } : {}, redirect: 'manual' });
    const body = await r.text();
    return { status: r.status, vary: r.headers.get('vary') ?? '', page: /<html/i.test(body), body: body.slice(0, 300) };
  }, href, htmx);
}

async function checkBothShapes(page: Page, href: string): Promise<void> {
  const frag = await fetchShape(page, href, true);
  const full = await fetchShape(page, href, false);
  assert.ok(!frag.page, `${href}: an htmx request gets the fragment, got ${frag.body}`);
  assert.ok(full.page, `${href}: a plain request gets the page, got ${full.body}`);
  assert.match(frag.vary, /HX-Request/i, `${href}: Vary on the fragment`);
  assert.match(full.vary, /HX-Request/i, `${href}: Vary on the page`);
}

/** Mass billing → Bill all → confirm → run done → drafts → approve all → production. Returns the run's id. */
export async function runToProduction(page: Page, url: string): Promise<string> {
  await page.goto(`${url}/billing/mass?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}`);
  await click(page, '#mass-run button[data-action="bill-all"]');
  await click(page, '#mass-confirm button[data-action="confirm"]');
  const runId = /\/billing\/mass\/runs\/([^/?#]+)$/.exec(page.url())![1]!;
  await page.waitForFunction("document.querySelector('#run-status')?.getAttribute('data-status') === 'done'", { timeout: WAIT_MS });
  await click(page, '#run-status a[data-action="review"]');
  await page.click('#select-every');
  await click(page, '#drafts-form button[data-action="approve"]');
  await click(page, 'button[data-action="confirm-approve"]');
  return runId;
}

eachDialect('audit: htmx-fetched billing addresses answer fragment or page, with Vary: HX-Request', async (db) => {
  await withDemoClerk(db, { matters: 6, entriesPerMatter: 6 }, async ({ page, url, problems }) => {
    // The why lookup, through htmx in the page.
    await page.goto(`${url}/billing/mass?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}`);
    await page.waitForFunction("typeof window.htmx !== 'undefined'");
    await page.type('#why-lookup input[name=lookup]', '1.1');
    await page.click('#why-lookup button[type=submit]');
    await page.waitForFunction("/1\\.1/.test(document.querySelector('#why-result').textContent)", { timeout: WAIT_MS });
    await checkBothShapes(page, `/billing/mass/why?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}&lookup=1.1`);

    const runId = await runToProduction(page, url);
    await checkBothShapes(page, `/billing/mass/runs/${runId}`);

    await click(page, '#results a[href="/billing/production"]');
    await page.waitForFunction("typeof window.htmx !== 'undefined'");
    const bills = await page.$$eval('#production-bills tr[data-bill]', (els) => els.map((e) => e.getAttribute('data-bill')!));
    assert.ok(bills.length >= 2, `bills ${bills.length}`);
    // The toolbar the checkboxes fetch: the fragment for htmx, and a page a clerk can use otherwise.
    await checkBothShapes(page, `/billing/production/toolbar?bill=${bills[0]}`);
    const full = await page.evaluate(async (h) => (await fetch(h)).text(), `/billing/production/toolbar?bill=${bills[0]}`);
    assert.match(full, /id="production-bills"/, 'the page is the production list');
    assert.match(full, /id="production-toolbar" data-selected="1"/, 'with the one-bill toolbar');

    // The heading box ticks every bill, and the toolbar follows (the rows ticked before htmx reads them).
    const selected = (n: number) => page.waitForFunction(`document.querySelector('#production-toolbar').getAttribute('data-selected') === '${n}'`, { timeout: WAIT_MS });
    const headChecked = () => page.$eval('input[data-check-all="bill"]', (b) => (b as unknown as { checked: boolean }).checked);
    assert.equal(await page.$eval('input[data-check-all="bill"]', (b) => (b as unknown as { hidden: boolean }).hidden), false, 'shown with JavaScript');
    await page.click('input[data-check-all="bill"]');
    await selected(bills.length);
    assert.ok(!(await page.$$eval('#production-toolbar [data-action]', (els) => els.map((e) => e.getAttribute('data-action')))).includes('email_manually'), 'the many-bills toolbar');
    // One unticked: the heading box shows not all.
    await page.click(`input[name="bill"][value="${bills[1]}"]`);
    await selected(bills.length - 1);
    assert.equal(await headChecked(), false);
    await page.click(`input[name="bill"][value="${bills[1]}"]`);
    await selected(bills.length);
    assert.equal(await headChecked(), true, 'every row ticked again: the heading box is');
    await page.click('input[data-check-all="bill"]');
    await selected(0);
    // Three ticks in one go (as fast as a script): the toolbar ends on all three, not on an earlier tick
    // (htmx by default queues one request behind the one in flight and drops the rest).
    assert.ok(bills.length >= 3, `bills ${bills.length}`);
    await page.evaluate((ids) => {
      const d = (globalThis as any).document;
      for (const id of ids) { const b = d.querySelector(`input[name="bill"][value="${id}"]`); b.checked = true; b.dispatchEvent(new (globalThis as any).Event('change', { bubbles: true })); }
    }, bills.slice(0, 3));
    await selected(3);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await page.$eval('#production-toolbar', (e) => e.getAttribute('data-selected')), '3', 'still all three once every request settled');
    for (const [i, id] of bills.slice(1, 3).entries()) {
      await page.click(`input[name="bill"][value="${id}"]`);
      await selected(2 - i);
    }
    await page.click(`input[name="bill"][value="${bills[0]}"]`);
    await selected(0);
    // Opened with every bill ticked (the list's address names them): the heading box shows ticked.
    await page.goto(`${url}/billing/production?${bills.map((b) => `bill=${b}`).join('&')}`);
    assert.equal(await headChecked(), true, 'every bill ticked on arrival');
    await page.goto(`${url}/billing/production`);
    await page.waitForFunction("typeof window.htmx !== 'undefined'");

    // Produce one: its progress polls.
    await page.click(`input[name="bill"][value="${bills[0]}"]`);
    await page.waitForFunction("document.querySelector('#production-toolbar').getAttribute('data-selected') === '1'");
    await click(page, '#production-toolbar [data-action="produce"]');
    await click(page, '[data-action="confirm-produce"]');
    const prodRun = /\/billing\/production\/runs\/([0-9a-f-]{36})$/.exec(page.url())![1]!;
    await page.waitForFunction("document.querySelector('#production-progress')?.getAttribute('data-status') === 'done'", { timeout: WAIT_MS });
    await checkBothShapes(page, `/billing/production/runs/${prodRun}`);
    assert.deepEqual(problems, [], 'no console errors');
  });
}, { timeout: 180_000 });

eachDialect('audit: the composer\'s live preview (opened from a mass billing row) answers the page to a plain post', async (db) => {
  await withDemoClerk(db, { matters: 6, entriesPerMatter: 6 }, async ({ page, url, problems }) => {
    await page.goto(`${url}/billing/mass?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}`);
    await Promise.all([page.waitForNavigation(), page.click('#mass-list a[data-compose]')]);
    await page.waitForFunction("typeof window.htmx !== 'undefined'");
    const action = await page.$eval('#composer', (e) => e.getAttribute('hx-post')!);
    const post = (hx: boolean) => page.evaluate(async (a, h) => {
      const w = globalThis as any;
      const form = w.document.querySelector('#composer');
      const token = w.document.querySelector('meta[name="csrf-token"]').getAttribute('content') as string;
      const r = await fetch(a, { method: 'POST', body: new URLSearchParams(new w.FormData(form)), headers: { 'X-CSRF-Token': token, ...(h ? { 'HX-Request': 'true', 'HX-Request-Type': 'partial' } : {}) } });
      const body = await r.text();
      return { status: r.status, vary: r.headers.get('vary') ?? '', page: /<html/i.test(body) };
    }, action, hx);
    const frag = await post(true);
    const full = await post(false);
    assert.equal(frag.status, 200);
    assert.ok(!frag.page, 'htmx gets the preview fragment');
    assert.ok(full.page, 'a plain post gets the composer page, not a bare fragment');
    assert.match(frag.vary, /HX-Request/i);
    assert.match(full.vary, /HX-Request/i);
    assert.deepEqual(problems, [], 'no console errors');
  });
}, { timeout: 120_000 });
