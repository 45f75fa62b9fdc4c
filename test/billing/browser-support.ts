/**
 * A billing clerk in Chromium on a demo firm, for the browser tests of the monthly billing run:
 * the app served on 127.0.0.1 with file outputs, the demo firm seeded, the clerk signed in; all
 * of it stopped afterwards. Plus the steps those tests share.
 */
import type { Page } from 'puppeteer-core';
import { DEMO_PASSWORD, seedDemo } from '../../src/cli/demo.ts';
import type { TestDb } from '../support/db.ts';
import { startApp } from '../support/app.ts';
import type { TestApp } from '../support/app.ts';
import { launchChromium, serveRuntime, signIn, watchedPage } from '../support/browser.ts';
import { outputDirs, removeDirs, testOutputs } from './production-support.ts';

export const INVOICE_DATE = '2026-03-02';
export const UP_TO = '2026-02-27';
export const CLERK = 'billing@demo.lexbill.test';
/** How long a step waits for a run to finish. */
export const WAIT_MS = 45_000;

/** Click what navigates, and wait for the page it leads to; its HTTP status (0 if none). */
export async function click(page: Page, selector: string): Promise<number> {
  await page.waitForSelector(selector);
  const [res] = await Promise.all([page.waitForNavigation(), page.click(selector)]);
  return res?.status() ?? 0;
}

export interface ClerkSession {
  page: Page;
  /** The app's address (http://127.0.0.1:port). */
  url: string;
  /** Console errors and failed requests the page met (watchedPage). */
  problems: string[];
  t: TestApp;
}

/** The demo firm (`matters` x `entriesPerMatter`, seed 17) on the app dated the invoice date, a clerk signed in. */
export async function withDemoClerk(db: TestDb, opts: { matters: number; entriesPerMatter: number; javaScript?: boolean }, fn: (s: ClerkSession) => Promise<void>): Promise<void> {
  const dirs = outputDirs();
  const outputs = testOutputs(dirs);
  const t = await startApp(db, { outputs, start: `${INVOICE_DATE}T09:00:00Z` });
  const server = await serveRuntime(t.runtime);
  const chrome = await launchChromium();
  try {
    await seedDemo(t.runtime, { matters: opts.matters, entriesPerMatter: opts.entriesPerMatter, seed: 17 });
    await t.runtime.relay.drain();
    const { page, problems } = await watchedPage(chrome.browser);
    if (opts.javaScript === false) await page.setJavaScriptEnabled(false);
    await signIn(page, server.url, CLERK, DEMO_PASSWORD);
    await fn({ page, url: server.url, problems, t });
  } finally {
    await chrome.close();
    await server.close();
    await t.close();
    await outputs.close();
    removeDirs(dirs);
  }
}

/** Mass billing's Bill all, confirmed, watched to the end, then the run's drafts (its Review button). */
export async function billAllAndReview(page: Page, url: string): Promise<void> {
  await page.goto(`${url}/billing/mass?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}`);
  await click(page, '#mass-run button[data-action="bill-all"]');
  await click(page, '#mass-confirm button[data-action="confirm"]');
  await page.waitForFunction("document.querySelector('#run-status')?.getAttribute('data-status') === 'done'", { timeout: WAIT_MS });
  await click(page, '#run-status a[data-action="review"]');
}
