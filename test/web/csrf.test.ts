/**
 * CSRF: every unsafe browser request must echo its session's token (form field or the
 * X-CSRF-Token header htmx sends); anonymous forms use a token bound to the pre-session
 * cookie; API-token calls need none.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { PASSWORD, withApp } from '../support/app.ts';

async function userByEmail(db: TestDb, email: string) {
  return await db.db.selectFrom('auth_user').selectAll().where('email', '=', email).executeTakeFirst() as { id: string; name: string; role: string } | undefined;
}
async function userCount(db: TestDb): Promise<number> {
  const r = await db.db.selectFrom('auth_user').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

eachDialect('a signed-in POST without the CSRF token is refused and changes nothing; with it, it works', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const admin = await user('admin');
    const b = browser();
    await b.login(admin.email);
    const list = await b.get('/admin/users');
    assert.equal(list.status, 200);
    assert.ok(b.csrf, 'the page carries the session token');
    const before = await userCount(db);
    const form = { email: 'new.person@firm.test', name: 'New Person', role: 'billing', password: 'a long enough password' };

    const missing = await b.post('/admin/users', form, { csrf: false });
    assert.equal(missing.status, 403);
    assert.match(missing.text, /did not come from this site/);
    const wrong = await b.post('/admin/users', form, { csrf: 'x'.repeat(43) });
    assert.equal(wrong.status, 403);
    const emptyHeader = await b.request('POST', '/admin/users', {
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-csrf-token': '' },
      body: new URLSearchParams(form).toString(),
    });
    assert.equal(emptyHeader.status, 403);
    assert.equal(await userCount(db), before, 'nothing was created');
    assert.equal(await userByEmail(db, form.email), undefined);
    const created = await db.db.selectFrom('audit_log').selectAll().where('action', '=', 'auth.user_created').where('actor_id', '=', admin.id).execute();
    assert.equal(created.length, 0);

    const ok = await b.post('/admin/users', form);
    assert.equal(ok.status, 303);
    assert.equal(ok.location, '/admin/users');
    const row = await userByEmail(db, form.email);
    assert.equal(row?.role, 'billing');
    assert.equal(await userCount(db), before + 1);
  });
});

eachDialect('the token works in the X-CSRF-Token header (as htmx sends it) for forms and JSON', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const admin = await user('admin');
    const target = await user('timekeeper', { name: 'Old Name' });
    const b = browser();
    await b.login(admin.email);
    await b.get('/admin/users');
    const token = b.csrf!;

    // htmx form post: the token travels in the header, not the body.
    const noToken = await b.post(`/admin/users/${target.id}`, { name: 'Header Name', role: 'timekeeper' }, { csrf: false, headers: { 'hx-request': 'true' } });
    assert.equal(noToken.status, 403);
    assert.equal((await userByEmail(db, target.email))?.name, 'Old Name');
    const viaHeader = await b.post(`/admin/users/${target.id}`, { name: 'Header Name', role: 'timekeeper' }, { csrf: false, headers: { 'hx-request': 'true', 'x-csrf-token': token } });
    assert.equal(viaHeader.status, 303);
    assert.equal((await userByEmail(db, target.email))?.name, 'Header Name');

    // The JSON API from the browser session: header required.
    const jsonNoToken = await b.postJson(`/api/v1/users/${target.id}`, { name: 'Json Name' }, { method: 'PATCH' });
    assert.equal(jsonNoToken.status, 403);
    assert.equal(jsonNoToken.json().error.code, 'csrf_failed');
    assert.equal((await userByEmail(db, target.email))?.name, 'Header Name');
    const jsonOk = await b.postJson(`/api/v1/users/${target.id}`, { name: 'Json Name' }, { method: 'PATCH', headers: { 'x-csrf-token': token } });
    assert.equal(jsonOk.status, 200);
    assert.equal(jsonOk.json().name, 'Json Name');
    assert.equal((await userByEmail(db, target.email))?.name, 'Json Name');
  });
});

eachDialect("a token from another session is refused", async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const admin = await user('admin');
    const other = await user('billing');
    const mine = browser();
    const theirs = browser();
    await mine.login(admin.email);
    await theirs.login(other.email);
    await mine.get('/');
    await theirs.get('/');
    assert.ok(mine.csrf && theirs.csrf);
    assert.notEqual(mine.csrf, theirs.csrf, 'each session has its own token');

    const form = { email: 'planted@firm.test', name: 'Planted', role: 'admin', password: 'a long enough password' };
    const crossed = await mine.post('/admin/users', form, { csrf: theirs.csrf });
    assert.equal(crossed.status, 403);
    const crossedHeader = await mine.post('/admin/users', form, { csrf: false, headers: { 'x-csrf-token': theirs.csrf } });
    assert.equal(crossedHeader.status, 403);
    // Nor does an anonymous (pre-session) token count once signed in.
    const anon = browser();
    await anon.get('/login');
    const anonToken = await mine.post('/admin/users', form, { csrf: anon.csrf! });
    assert.equal(anonToken.status, 403);
    assert.equal(await userByEmail(db, form.email), undefined);
    // Logout is a POST too: a foreign token cannot sign someone out.
    const logout = await mine.post('/logout', {}, { csrf: theirs.csrf });
    assert.equal(logout.status, 403);
    assert.equal((await mine.get('/')).status, 200, 'still signed in');
  });
});

eachDialect('POST /login needs the pre-session token', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const u = await user('billing');
    const b = browser();
    await b.get('/login');
    const preToken = b.csrf!;

    const without = await b.post('/login', { email: u.email, password: PASSWORD }, { csrf: false });
    assert.equal(without.status, 403);
    assert.equal(without.cookie('lb_session'), undefined);

    // A token minted for another browser's pre-session cookie does not fit this one.
    const other = browser();
    await other.get('/login');
    assert.notEqual(other.csrf, preToken);
    const foreign = await b.post('/login', { email: u.email, password: PASSWORD }, { csrf: other.csrf! });
    assert.equal(foreign.status, 403);

    // A forged request with no cookies at all fails too.
    const forged = browser();
    const blind = await forged.post('/login', { email: u.email, password: PASSWORD }, { csrf: preToken });
    assert.equal(blind.status, 403);

    assert.equal((await db.db.selectFrom('auth_session').selectAll().execute()).length, 0, 'no session was created');
    assert.equal((await db.db.selectFrom('audit_log').selectAll().where('action', 'in', ['auth.login', 'auth.login_failed']).execute()).length, 0,
      'the refused posts never reached the login check');

    const ok = await b.post('/login', { email: u.email, password: PASSWORD });
    assert.equal(ok.status, 303);
    assert.ok(b.cookies.get('lb_session'));
    assert.equal(b.cookies.has('lb_pre'), false, 'the pre-session cookie is dropped at login');
  });
});

eachDialect('API calls with a Bearer token need no CSRF token', async (db) => {
  await withApp(db, async ({ browser, user, token }) => {
    const admin = await user('admin');
    const target = await user('timekeeper');
    const apiToken = await token(admin.email);
    const client = browser();
    const res = await client.postJson(`/api/v1/users/${target.id}`, { role: 'billing' }, { method: 'PATCH', headers: { authorization: `Bearer ${apiToken}` } });
    assert.equal(res.status, 200);
    assert.equal(res.json().role, 'billing');
    assert.equal((await userByEmail(db, target.email))?.role, 'billing');
    assert.equal(res.cookie('lb_pre'), undefined, 'token calls get no browser cookies');
    // Without the token (nor a session) the same call is refused as not signed in, changing nothing.
    const noAuth = await browser().postJson(`/api/v1/users/${target.id}`, { role: 'readonly' }, { method: 'PATCH' });
    assert.equal(noAuth.status, 401);
    assert.equal(noAuth.json().error.code, 'unauthenticated');
    assert.equal((await userByEmail(db, target.email))?.role, 'billing');
  });
});

eachDialect('a form sent after the session ended is answered with the sign-in page (coming back to the page it was sent from), not as a forged form; nothing changes', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const admin = await user('admin');
    const b = browser();
    await b.login(admin.email);
    assert.equal((await b.get('/admin/users')).status, 200);
    const before = await userCount(db);
    // The session ends while the page is open (idle, or signed out in another tab).
    await db.db.deleteFrom('auth_session').execute();
    const form = { email: 'late.person@firm.test', name: 'Late Person', role: 'billing', password: 'a long enough password' };
    const sent = await b.post('/admin/users', form, { headers: { referer: 'http://lexbill.test/admin/users?q=a' } });
    assert.equal(sent.status, 303);
    assert.equal(sent.location, `/login?next=${encodeURIComponent('/admin/users?q=a')}`);
    // Through htmx: HX-Redirect to the sign-in page.
    const viaHtmx = await b.post('/admin/users', form, { headers: { 'hx-request': 'true', 'hx-current-url': 'http://lexbill.test/admin/users' } });
    assert.equal(viaHtmx.status, 401);
    assert.match(viaHtmx.headers.get('hx-redirect') ?? '', /^\/login\?next=%2Fadmin%2Fusers/);
    // A referer of another site is not followed.
    const foreign = await b.post('/admin/users', form, { headers: { referer: 'https://elsewhere.example/admin/users' } });
    assert.equal(foreign.location, `/login?next=${encodeURIComponent('/')}`);
    assert.equal(await userCount(db), before, 'nothing created');
  });
});
