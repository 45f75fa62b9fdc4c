/**
 * An htmx request whose session has ended sends the browser to sign in and then back to
 * the page it was on (htmx's HX-Current-URL), never to another site.
 */
import assert from 'node:assert/strict';
import { SESSION_IDLE_MS } from '../../src/web/auth/service.ts';
import { eachDialect } from '../support/db.ts';
import { withApp } from '../support/app.ts';

eachDialect('an htmx request after the session ended redirects to sign in with the page it was on as next', async (db) => {
  await withApp(db, async ({ browser, user, clock }) => {
    const admin = await user('admin');
    const b = browser();
    await b.login(admin.email);
    clock.advanceMs(SESSION_IDLE_MS + 1000);
    const res = await b.get('/admin/audit?before=2026-03-02T09:00:00.000Z', {
      'hx-request': 'true', 'hx-current-url': 'http://lexbill.test/admin/audit?entityType=user',
    });
    assert.equal(res.status, 401);
    const to = res.headers.get('hx-redirect') ?? '';
    assert.equal(to, `/login?next=${encodeURIComponent('/admin/audit?entityType=user')}`);

    await b.get(to);
    const signedIn = await b.post('/login', { email: admin.email, password: 'correct horse battery staple', next: '/admin/audit?entityType=user' });
    assert.equal(signedIn.location, '/admin/audit?entityType=user');

    // Another site's address or a protocol-relative path is never a destination.
    const anon = browser();
    for (const current of ['https://evil.example/steal', 'http://lexbill.test//evil.example/x', 'not a url']) {
      const r = await anon.get('/admin/users', { 'hx-request': 'true', 'hx-current-url': current });
      assert.equal(r.status, 401);
      const target = r.headers.get('hx-redirect') ?? '';
      assert.match(target, /^\/login(\?next=%2F[^%]|$)/, `${current} -> ${target}`);
      assert.doesNotMatch(decodeURIComponent(target), /evil/);
    }
  });
});
