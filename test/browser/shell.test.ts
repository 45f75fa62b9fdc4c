import assert from 'node:assert/strict';
import { existsSync, readlinkSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { eachDialect } from '../support/db.ts';
import { PASSWORD, startApp } from '../support/app.ts';
import { launchChromium, serveRuntime, watchedPage } from '../support/browser.ts';

eachDialect('in Chromium: sign in, then an htmx form posts with the CSRF header under the CSP', async (db) => {
  const t = await startApp(db);
  const server = await serveRuntime(t.runtime);
  const chrome = await launchChromium();
  try {
    await t.user('admin', { email: 'boss@firm.test', name: 'Bo Boss' });
    const { page, problems } = await watchedPage(chrome.browser);
    const htmxPosts: string[] = [];
    page.on('request', (r) => { if (r.method() === 'POST' && r.headers()['hx-request'] === 'true') htmxPosts.push(r.headers()['x-csrf-token'] ?? ''); });

    await page.goto(`${server.url}/admin/users`);
    assert.match(page.url(), /\/login\?next=%2Fadmin%2Fusers$/, 'anonymous visitors are sent to sign in');
    await page.type('input[name=email]', 'boss@firm.test');
    await page.type('input[name=password]', PASSWORD);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    assert.match(page.url(), /\/admin\/users$/, 'back where the visitor was going');

    // htmx loaded and processed the form (no CSP violation stopped it)
    await page.waitForFunction("typeof window.htmx !== 'undefined'");
    await page.type('#users form input[name=email]', 'new.clerk@firm.test');
    await page.type('#users form input[name=name]', 'New Clerk');
    await page.select('#users form select[name=role]', 'billing');
    await page.type('#users form input[name=password]', 'a-long-enough-password');
    const before = page.url();
    await page.click('#users form button[type=submit]');
    await page.waitForFunction("document.querySelector('#users table')?.textContent?.includes('new.clerk@firm.test')");
    assert.equal(page.url(), before, 'swapped in place, no full navigation');
    assert.equal(htmxPosts.length, 1, 'the form was posted by htmx');
    assert.ok(htmxPosts[0]!.length > 20, 'htmx sent the X-CSRF-Token header');
    const row = await db.db.selectFrom('auth_user').select('role').where('email', '=', 'new.clerk@firm.test').executeTakeFirst();
    assert.equal(row?.role, 'billing');

    // a bad value comes back as a 422 fragment naming the field, and nothing is created
    await page.type('#users form input[name=email]', 'not-an-email@x');
    await page.type('#users form input[name=name]', 'Bad');
    await page.type('#users form input[name=password]', 'a-long-enough-password');
    await page.$eval('#users form input[name=email]', (el) => el.setAttribute('type', 'text'));
    await page.click('#users form button[type=submit]');
    await page.waitForFunction("document.querySelector('#users .field-error')?.textContent?.includes('email')");
    assert.equal((await db.db.selectFrom('auth_user').select('id').execute()).length, 2);
    assert.deepEqual(problems.filter((p) => !p.includes('422')), [], 'no console errors (CSP violations would show here)');
  } finally {
    await chrome.close();
    await server.close();
    await t.close();
  }
}, { timeout: 120_000 });

test('the test launcher keeps Chromium\'s socket folder inside its profile, and removes both on close', async () => {
  const chrome = await launchChromium();
  const profile = chrome.profileDir;
  try {
    const page = await chrome.browser.newPage();
    await page.goto('about:blank');
    const socket = resolve(profile, readlinkSync(`${profile}/SingletonSocket`));
    assert.ok(socket.startsWith(`${profile}/tmp/org.chromium.Chromium.`), `the singleton socket (${socket}) is in the profile`);
  } finally {
    await chrome.close();
  }
  assert.equal(existsSync(profile), false, 'the profile (and the socket folder in it) removed');
});
