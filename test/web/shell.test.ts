/**
 * The web shell around every page: security headers, request ids, static files, the
 * health check, friendly 404s, body limits, and htmx fragments versus full pages.
 */
import assert from 'node:assert/strict';
import { appendEvent } from '../../src/shared/outbox.ts';
import { systemContext } from '../../src/shared/events.ts';
import type { EventMap } from '../../src/shared/events.ts';
import { eachDialect } from '../support/db.ts';
import { withApp } from '../support/app.ts';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

eachDialect('pages carry security headers: a CSP with script-src self, no framing, nosniff', async (db) => {
  await withApp(db, async ({ browser }) => {
    const b = browser();
    for (const path of ['/login', '/no/such/page', '/healthz']) {
      const res = await b.get(path);
      const csp = res.headers.get('content-security-policy') ?? '';
      assert.match(csp, /(^|;)\s*script-src 'self'(;|$)/, `${path}: only same-origin scripts`);
      assert.match(csp, /(^|;)\s*default-src 'self'/, path);
      assert.match(csp, /(^|;)\s*frame-ancestors 'none'/, path);
      assert.match(csp, /(^|;)\s*object-src 'none'/, path);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
      assert.equal(res.headers.get('x-frame-options'), 'SAMEORIGIN', path);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
      assert.equal(res.headers.get('referrer-policy'), 'same-origin', path);
      assert.equal(res.headers.get('strict-transport-security'), null, `${path}: no HSTS without secure cookies`);
    }
    // The pages themselves use no inline script the CSP would block.
    const login = await b.get('/login');
    assert.doesNotMatch(login.text, /<script(?![^>]*\bsrc=)[^>]*>/);
    assert.match(login.text, /<script src="\/static\/htmx\.min\.js"/);
  });
});

eachDialect('X-Request-Id is echoed when given and generated otherwise, on errors too', async (db) => {
  await withApp(db, async ({ browser }) => {
    const b = browser();
    const given = await b.get('/login', { 'x-request-id': 'req-0123456789' });
    assert.equal(given.headers.get('x-request-id'), 'req-0123456789');
    const missing = await b.get('/no/such/page', { 'x-request-id': 'trace.abc_DEF-42' });
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('x-request-id'), 'trace.abc_DEF-42');
    const denied = await b.get('/api/v1/me', { 'x-request-id': 'denied-request-1' });
    assert.equal(denied.status, 401);
    assert.equal(denied.headers.get('x-request-id'), 'denied-request-1');

    const hostile = await b.get('/login', { 'x-request-id': 'bad id\u00e9<script>' });
    assert.match(hostile.headers.get('x-request-id') ?? '', UUID_RE, 'an unusable id is replaced');
    const short = await b.get('/login', { 'x-request-id': 'abc' });
    assert.match(short.headers.get('x-request-id') ?? '', UUID_RE);
    const one = (await b.get('/login')).headers.get('x-request-id');
    const two = (await b.get('/login')).headers.get('x-request-id');
    assert.match(one ?? '', UUID_RE);
    assert.notEqual(one, two);
  });
});

eachDialect('static files are served with their content types', async (db) => {
  await withApp(db, async ({ browser }) => {
    const b = browser();
    const js = await b.get('/static/htmx.min.js');
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /^(text|application)\/javascript/);
    assert.ok(js.text.length > 10_000, 'the real htmx bundle');
    assert.match(js.text, /htmx/);
    assert.match(js.headers.get('cache-control') ?? '', /max-age=\d+/);
    const app = await b.get('/static/app.js');
    assert.equal(app.status, 200);
    assert.match(app.headers.get('content-type') ?? '', /javascript/);
    const css = await b.get('/static/app.css');
    assert.equal(css.status, 200);
    assert.match(css.headers.get('content-type') ?? '', /^text\/css/);
    const none = await b.get('/static/missing.js');
    assert.equal(none.status, 404);
    const escape = await b.get('/static/..%2F..%2Fpackage.json');
    assert.equal(escape.status, 404);
    assert.doesNotMatch(escape.text, /"lexbill"/);
  });
});

eachDialect('/healthz reports the database dialect and outbox counts', async (db) => {
  await withApp(db, async ({ browser, runtime, clock }) => {
    const b = browser();
    const first = await b.get('/healthz');
    assert.equal(first.status, 200);
    assert.match(first.headers.get('content-type') ?? '', /application\/json/);
    const body = first.json();
    assert.equal(body.status, 'ok');
    assert.equal(body.database.dialect, db.dialect);
    assert.equal(typeof body.database.ms, 'number');
    assert.deepEqual(body.outbox, { pending: 0, failing: 0 });
    assert.equal(first.cookie('lb_session'), undefined);

    // One event delivered, one stuck behind a failing handler.
    runtime.bus.subscribe('healthtest.stuck', 'healthtest.always_fails', async () => { throw new Error('handler down'); });
    const ctx = systemContext('healthz-test');
    await db.db.transaction().execute(async (trx) => {
      await appendEvent<EventMap, 'healthtest.fine'>(trx, clock, ctx, 'healthtest.fine', { n: 1 });
      await appendEvent<EventMap, 'healthtest.stuck'>(trx, clock, ctx, 'healthtest.stuck', { n: 2 });
    });
    assert.deepEqual((await b.get('/healthz')).json().outbox, { pending: 2, failing: 0 });
    await runtime.relay.runOnce();
    const after = await b.get('/healthz');
    assert.equal(after.status, 200);
    assert.deepEqual(after.json().outbox, { pending: 1, failing: 1 });
  });
});

eachDialect('an unknown page is a friendly 404 page; an unknown API path is a 404 JSON error', async (db) => {
  await withApp(db, async ({ browser }) => {
    const b = browser();
    const page = await b.get('/no/such/page');
    assert.equal(page.status, 404);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(page.text, /^<!doctype html>/i);
    assert.match(page.text, /<h1>Not found<\/h1>/, 'the page\'s heading is its h1');
    assert.match(page.text, /<a class="skip-link" href="#main">Skip to the content<\/a>/, 'the first stop of the keyboard skips the menu');
    assert.match(page.text, /There is no page at this address\./);
    assert.match(page.text, /<a href="\/">Back to the start page<\/a>/);

    const api = await b.get('/api/v1/no-such-thing');
    assert.equal(api.status, 404);
    assert.match(api.headers.get('content-type') ?? '', /application\/json/);
    assert.deepEqual(api.json(), { error: { code: 'not_found', message: 'No API route GET /api/v1/no-such-thing', fields: {} } });
    const post = await b.request('DELETE', '/api/v1/users');
    assert.notEqual(post.status, 200);
    assert.match(post.headers.get('content-type') ?? '', /application\/json/);
  });
});

eachDialect('a body over the configured limit is refused with 413', async (db) => {
  await withApp(db, async ({ browser }) => {
    const b = browser();
    await b.get('/login');
    const res = await b.post('/login', { email: 'a@b.c', password: 'x'.repeat(1_100_000) });
    assert.equal(res.status, 413);
    assert.equal((await db.db.selectFrom('audit_log').selectAll().execute()).length, 0, 'no login was attempted');
  });
});

eachDialect('htmx requests get the fragment with Vary: HX-Request; normal requests get the full page', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const admin = await user('admin', { name: 'Ada Admin' });
    const b = browser();
    await b.login(admin.email);

    const full = await b.get('/admin/users');
    assert.equal(full.status, 200);
    assert.match(full.text, /^<!doctype html>/i);
    assert.match(full.text, /<html lang="en">/);
    assert.match(full.text, /<h1>Staff accounts<\/h1>/);
    assert.match(full.text, /<div id="users">/);
    assert.match(full.headers.get('vary') ?? '', /HX-Request/i);
    // What a signed-in user is shown is not kept by the browser (Back after signing out shows nothing); the sign-in page may be.
    assert.equal(full.headers.get('cache-control'), 'no-store');
    assert.equal((await browser().get('/login')).headers.get('cache-control'), null);

    const frag = await b.get('/admin/users', { 'hx-request': 'true' });
    assert.equal(frag.status, 200);
    assert.doesNotMatch(frag.text, /<html|<head|<!doctype/i);
    assert.doesNotMatch(frag.text, /<h1>Staff accounts<\/h1>/);
    assert.match(frag.text.trimStart(), /^<div id="users">/);
    assert.match(frag.text, new RegExp(admin.email.replace('.', '\\.')));
    assert.match(frag.headers.get('vary') ?? '', /HX-Request/i);

    // A boosted (full-page) htmx navigation gets the whole page.
    const boosted = await b.get('/admin/users', { 'hx-request': 'true', 'hx-request-type': 'full' });
    assert.match(boosted.text, /<html lang="en">/);

    // htmx error responses are fragments too; an expired session tells htmx to redirect.
    const missing = await b.get('/admin/users/00000000-0000-7000-8000-000000000000', { 'hx-request': 'true' });
    assert.equal(missing.status, 404);
    assert.doesNotMatch(missing.text, /<html/);
    assert.match(missing.text, /User not found/);
    const anon = await browser().get('/admin/users', { 'hx-request': 'true' });
    assert.equal(anon.status, 401);
    assert.equal(anon.headers.get('hx-redirect'), '/login');
  });
});
