/**
 * Where the app sends a browser after signing in and out: `next` is only ever a plain
 * same-site path (no open redirect, never a 500), the sign-in redirect keeps the query
 * string, and signing out without a live session just lands on the login page.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { PASSWORD, withApp } from '../support/app.ts';

/** Values of `next` that must never be followed: each one must send the browser to "/". */
const HOSTILE_NEXT = [
  '/\n/evil.example', // not a valid Location header: was a 500 after the session was made
  '/\t/evil.example', // browsers strip the tab: //evil.example
  '/\r\n/evil.example',
  '\t//evil.example',
  '/\x00/evil.example',
  '/\x7f/evil.example',
  '//evil.example',
  '/\\evil.example',
  '/\\/evil.example',
  '/a/..//evil.example', // resolves to //evil.example
  '/%2e%2e//evil.example',
  '\\\\evil.example',
  'https://evil.example/',
  'http:/evil.example',
  'javascript:alert(1)',
  'evil.example',
  ' /admin/users',
  '/ /evil.example',
  '\n',
  '',
  `/${'a'.repeat(5000)}`,
];

async function sessionCount(db: TestDb): Promise<number> {
  return (await db.db.selectFrom('auth_session').select('id_hash').execute()).length;
}

eachDialect('POST /login never redirects off the site, and a control character in next is not a 500', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const u = await user('billing');
    for (const next of HOSTILE_NEXT) {
      const b = browser();
      await b.get('/login');
      const res = await b.post('/login', { email: u.email, password: PASSWORD, next });
      if (next.includes('\x00')) {
        // No field takes NUL (validate.ts unsafeInput): refused naming the field, before signing in.
        assert.equal(res.status, 422, JSON.stringify(next));
        assert.equal(res.location, null);
        continue;
      }
      assert.equal(res.status, 303, JSON.stringify(next));
      assert.equal(res.location, '/', JSON.stringify(next));
    }
    const nul = HOSTILE_NEXT.filter((n) => n.includes('\x00')).length;
    assert.equal(nul, 1);
    assert.equal(await sessionCount(db), HOSTILE_NEXT.length - nul, 'each sign-in made exactly one session; a refused one none');
    // A plain same-site path, with its query string, is kept.
    const b = browser();
    await b.get('/login');
    const ok = await b.post('/login', { email: u.email, password: PASSWORD, next: '/billing/drafts?sort=number&q=12.8' });
    assert.equal(ok.status, 303);
    assert.equal(ok.location, '/billing/drafts?sort=number&q=12.8');
  });
});

eachDialect('GET /login?next=... while signed in never redirects off the site and is never a 500', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const u = await user('billing');
    const b = browser();
    assert.equal((await b.login(u.email)).status, 303);
    for (const next of HOSTILE_NEXT) {
      const res = await b.get(`/login?next=${encodeURIComponent(next)}`);
      if (next.includes('\x00')) { assert.equal(res.status, 422, JSON.stringify(next)); continue; }
      assert.equal(res.status, 302, JSON.stringify(next));
      assert.equal(res.location, '/', JSON.stringify(next));
    }
    const raw = await b.get('/login?next=/%09/evil.example');
    assert.equal(raw.location, '/');
    const nl = await b.get('/login?next=%0a');
    assert.equal(nl.status, 302);
    assert.equal(nl.location, '/');
    assert.equal((await b.get('/login?next=%2Fadmin%2Fusers')).location, '/admin/users');

    // Signed out, the login form carries only a safe next.
    const anon = browser();
    const page = await anon.get('/login?next=/%09/evil.example');
    assert.equal(page.status, 200);
    assert.match(page.text, /<input type="hidden" name="next" value="\/">/);
  });
});

eachDialect('signing in keeps the query string of the page that asked for it', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const admin = await user('admin');
    const b = browser();
    const target = '/admin/audit?entityType=user&entityId=abc';
    const res = await b.get(target);
    assert.equal(res.status, 303);
    assert.equal(res.location, `/login?next=${encodeURIComponent(target)}`);
    const form = await b.get(res.location!);
    assert.equal(form.status, 200);
    const next = /name="next" value="([^"]*)"/.exec(form.text)?.[1]?.replaceAll('&amp;', '&');
    assert.equal(next, target);
    const signedIn = await b.post('/login', { email: admin.email, password: PASSWORD, next: next! });
    assert.equal(signedIn.status, 303);
    assert.equal(signedIn.location, target);
    const audit = await b.get(signedIn.location!);
    assert.equal(audit.status, 200);
    assert.match(audit.text, /name="entityId" value="abc"/, 'the filter arrived');
  });
});

eachDialect('signing out after the session expired lands on /login, not on a CSRF error', async (db) => {
  await withApp(db, async ({ browser, user, clock }) => {
    const u = await user('timekeeper');
    const b = browser();
    await b.login(u.email);
    assert.equal((await b.get('/')).status, 200);
    clock.advanceMs(31 * 60_000);
    // The page's form still carries the dead session's token.
    const out = await b.post('/logout', {});
    assert.equal(out.status, 303);
    assert.equal(out.location, '/login');
    assert.equal(b.cookies.has('lb_session'), false);
    assert.equal(await sessionCount(db), 0);
    // With no token at all and no session: the same.
    const again = await b.post('/logout', {}, { csrf: false });
    assert.equal(again.status, 303);
    assert.equal(again.location, '/login');

    // A live session still needs the token to sign out (no forced logout from another site).
    await b.login(u.email);
    await b.get('/');
    const forged = await b.post('/logout', {}, { csrf: false });
    assert.equal(forged.status, 403);
    assert.equal(await sessionCount(db), 1, 'still signed in');
    const real = await b.post('/logout', {});
    assert.equal(real.status, 303);
    assert.equal(real.location, '/login');
    assert.equal(await sessionCount(db), 0);
  });
});

eachDialect('redirects vary on HX-Request as the pages do (an htmx request gets a fragment or an HX-Redirect), once; static files do not', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const u = await user('timekeeper');
    const b = browser();
    const varies = (h: Headers) => (h.get('vary') ?? '').split(',').filter((v) => v.trim().toLowerCase() === 'hx-request').length;
    const asked = await b.get('/matters');
    assert.equal(asked.status, 303, 'signed out: sent to sign in');
    assert.equal(varies(asked.headers), 1, `sign-in redirect: ${asked.headers.get('vary')}`);
    await b.login(u.email);
    const home = await b.get('/');
    assert.equal(home.status, 200);
    assert.equal(varies(home.headers), 1, `a page says it once: ${home.headers.get('vary')}`);
    const out = await b.post('/logout', {});
    assert.equal(out.status, 303);
    assert.equal(varies(out.headers), 1, `post/redirect: ${out.headers.get('vary')}`);
    const css = await b.get('/static/app.css');
    assert.equal(css.status, 200);
    assert.equal(varies(css.headers), 0);
  });
});
