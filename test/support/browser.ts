/**
 * Real Chromium (Debian's, through puppeteer-core) against the real app served on a free
 * 127.0.0.1 port. Nothing leaves the machine: background networking is off.
 */
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import puppeteer from 'puppeteer-core';
import type { Browser, Page } from 'puppeteer-core';
import assert from 'node:assert/strict';
import type { Runtime } from '../../src/main.ts';
import { chromiumTempDir, removeProfile } from '../../src/adapters/pdf/chromium.ts';

export const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
  '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync',
];

export function chromiumPath(): string {
  const p = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(p)) throw new Error(`Chromium not found at ${p}: apt-get install -y chromium (npm test installs it as root)`);
  return p;
}

export async function launchChromium(): Promise<{ browser: Browser; profileDir: string; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'lexbill-chrome-'));
  // Chromium's socket folder inside the profile (as the PDF adapter does), so a browser that
  // does not close cleanly leaves nothing behind in the system's temp folder.
  const temp = chromiumTempDir(profile);
  if (temp) mkdirSync(temp);
  let browser: Browser;
  try {
    browser = await puppeteer.launch({
      executablePath: chromiumPath(), args: [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`], headless: true,
      ...(temp ? { env: { ...process.env, TMPDIR: temp } } : {}),
    });
  } catch (err) {
    removeProfile(profile);
    throw err;
  }
  return {
    browser,
    profileDir: profile,
    async close() {
      try { await browser.close(); } finally { removeProfile(profile); }
    },
  };
}

/** Serve the runtime's app on 127.0.0.1 at a free port. */
export async function serveRuntime(rt: Runtime): Promise<{ url: string; close(): Promise<void> }> {
  return new Promise((resolve) => {
    const server = serve({ fetch: rt.app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) => {
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        close: () => new Promise<void>((done) => { server.close(() => done()); }),
      });
    });
  });
}

/** Sign in through the login page as a user would, and check the app let them in. */
export async function signIn(page: Page, baseUrl: string, email: string, password: string): Promise<void> {
  await page.goto(`${baseUrl}/login`);
  await page.type('input[name=email]', email);
  await page.type('input[name=password]', password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  assert.doesNotMatch(page.url(), /\/login/, `signed in as ${email}`);
}

/**
 * A new tab that collects what a user would never see but a test must: console errors and
 * uncaught page errors (CSP violations among them). Tests end with `problems` empty.
 */
export async function watchedPage(browser: Browser): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  return { page, problems };
}
