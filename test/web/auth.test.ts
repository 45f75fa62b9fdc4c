/**
 * Signing in and out through the real app: the login page, sessions (cookie flags,
 * rotation, idle and absolute expiry), logout, and throttling of bad logins.
 */
import assert from 'node:assert/strict';
import { DEMO_ADMIN_EMAIL, DEMO_PASSWORD } from '../../src/cli/demo.ts';
import { SESSION_ABSOLUTE_MS, SESSION_IDLE_MS, THROTTLE, sha256 } from '../../src/web/auth/service.ts';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { PASSWORD, withApp } from '../support/app.ts';

const MIN = 60_000;

async function sessionRows(db: TestDb, userId?: string) {
  let q = db.db.selectFrom('auth_session').selectAll();
  if (userId) q = q.where('user_id', '=', userId);
  return await q.execute() as { id_hash: string; user_id: string; last_seen_at: string; expires_at: string }[];
}

async function auditActions(db: TestDb, action: string) {
  return await db.db.selectFrom('audit_log').selectAll().where('action', '=', action).execute() as
    { actor_id: string | null; actor_label: string; entity_id: string; ip: string | null }[];
}

eachDialect('the login page renders a form with a CSRF token and a pre-session cookie', async (db) => {
  await withApp(db, async ({ browser }) => {
    const b = browser();
    const page = await b.get('/login');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(page.text, /<form method="post" action="\/login">/);
    assert.match(page.text, /<input type="email" name="email"/);
    assert.match(page.text, /<input type="password" name="password"/);
    const meta = /<meta name="csrf-token" content="([^"]+)"/.exec(page.text)?.[1];
    const hidden = /name="_csrf" value="([^"]+)"/.exec(page.text)?.[1];
    assert.ok(meta && meta.length >= 20, 'the page carries a CSRF token');
    assert.equal(hidden, meta, 'the form posts the same token');
    assert.ok(b.cookies.get('lb_pre'), 'an anonymous pre-session cookie is set');
    assert.equal(b.cookies.has('lb_session'), false);
    // The same browser keeps the same anonymous token; another browser gets another.
    assert.equal(csrfOf((await b.get('/login')).text), meta);
    assert.notEqual(csrfOf((await browser().get('/login')).text), meta);
  });
});

function csrfOf(html: string): string | undefined {
  return /<meta name="csrf-token" content="([^"]+)"/.exec(html)?.[1];
}

eachDialect('a demo-style login sets an HttpOnly SameSite=Lax session cookie and the home page greets the user', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const admin = await user('admin', { email: DEMO_ADMIN_EMAIL, name: 'Alex Admin', password: DEMO_PASSWORD });
    const b = browser();
    const anonymous = await b.get('/');
    assert.equal(anonymous.status, 303, 'the home page needs a session');
    assert.equal(anonymous.location, '/login?next=%2F');

    const res = await b.login('  Admin@Demo.Lexbill.test ', DEMO_PASSWORD);
    assert.equal(res.status, 303);
    assert.equal(res.location, '/');
    const cookie = res.cookie('lb_session');
    assert.ok(cookie, 'a session cookie is set');
    assert.match(cookie, /;\s*HttpOnly/i);
    assert.match(cookie, /;\s*SameSite=Lax/i);
    assert.match(cookie, /;\s*Path=\//);
    assert.doesNotMatch(cookie, /;\s*Secure/i, 'secureCookies is off in this config');
    const token = b.cookies.get('lb_session')!;
    assert.ok(token.length >= 40);

    const rows = await sessionRows(db);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.user_id, admin.id);
    assert.equal(rows[0]!.id_hash, sha256(token), 'only the hash of the session id is stored');

    const home = await b.get('/');
    assert.equal(home.status, 200);
    assert.match(home.text, /Welcome, Alex Admin/);
    assert.match(home.text, /Alex Admin \(admin\)/);
    // Signed in, the login page sends you on.
    const again = await b.get('/login?next=/admin/users');
    assert.equal(again.status, 302);
    assert.equal(again.location, '/admin/users');
    const logins = await auditActions(db, 'auth.login');
    assert.equal(logins.length, 1);
    assert.equal(logins[0]!.actor_id, admin.id);
  });
});

eachDialect('a wrong password gets a 401 page with a message and no session', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    await user('billing', { email: 'bea@firm.test' });
    const b = browser('192.0.2.44');
    const res = await b.login('bea@firm.test', 'not the right password');
    assert.equal(res.status, 401);
    assert.match(res.text, /That email and password do not match an active account\./);
    assert.match(res.text, /value="bea@firm.test"/, 'the email is kept in the form');
    assert.equal(res.cookie('lb_session'), undefined);
    assert.equal(b.cookies.has('lb_session'), false);
    assert.equal((await sessionRows(db)).length, 0);
    assert.equal((await b.get('/')).status, 303, 'still signed out');
    const failed = await auditActions(db, 'auth.login_failed');
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.ip, '192.0.2.44', 'the forwarded client address is recorded');
    // An unknown account gets the same answer.
    const unknown = await b.post('/login', { email: 'nobody@firm.test', password: PASSWORD });
    assert.equal(unknown.status, 401);
    assert.match(unknown.text, /That email and password do not match an active account\./);
    // Missing fields are a 422, not a login attempt.
    const empty = await b.post('/login', { email: 'bea@firm.test', password: '' });
    assert.equal(empty.status, 422);
    assert.match(empty.text, /Enter your email and password\./);
    assert.equal((await auditActions(db, 'auth.login_failed')).length, 2);
  });
});

eachDialect('login rotates the session id: neither a signed-in nor a planted cookie value is reused', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const u = await user('billing');
    const b = browser();
    assert.equal((await b.login(u.email)).status, 303);
    const first = b.cookies.get('lb_session')!;
    assert.equal((await b.get('/')).status, 200);

    // Signing in again from the signed-in browser: the old session is ended, a new id issued.
    const res = await b.post('/login', { email: u.email, password: PASSWORD });
    assert.equal(res.status, 303);
    const second = b.cookies.get('lb_session')!;
    assert.notEqual(second, first);
    const rows = await sessionRows(db, u.id);
    assert.deepEqual(rows.map((r) => r.id_hash), [sha256(second)], 'the old session row is gone');
    const thief = browser();
    thief.cookies.set('lb_session', first);
    const stale = await thief.get('/');
    assert.equal(stale.status, 303, 'the old id no longer works');
    assert.equal((await b.get('/')).status, 200);

    // A session id planted before login (fixation) is not adopted.
    const c = browser();
    await c.get('/login');
    const planted = 'planted-session-id-0123456789abcdef';
    c.cookies.set('lb_session', planted);
    const fixed = await c.post('/login', { email: u.email, password: PASSWORD });
    assert.equal(fixed.status, 303);
    assert.notEqual(c.cookies.get('lb_session'), planted);
    const all = await sessionRows(db, u.id);
    assert.equal(all.length, 2);
    assert.ok(!all.some((r) => r.id_hash === sha256(planted)));
  });
});

eachDialect('logout ends the session and is audit-logged', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const u = await user('timekeeper', { name: 'Sam Associate' });
    const b = browser();
    await b.login(u.email);
    const token = b.cookies.get('lb_session')!;
    const home = await b.get('/');
    assert.match(home.text, /Sam Associate/);

    const out = await b.post('/logout', {});
    assert.equal(out.status, 303);
    assert.equal(out.location, '/login');
    assert.match(out.cookie('lb_session') ?? '', /Max-Age=0/i, 'the cookie is cleared');
    assert.equal(b.cookies.has('lb_session'), false);
    assert.equal((await sessionRows(db, u.id)).length, 0);

    // Replaying the old cookie gets nowhere.
    const replay = await b.get('/', { cookie: `lb_session=${token}` });
    assert.equal(replay.status, 303);
    assert.match(replay.location ?? '', /^\/login/);
    const logouts = await auditActions(db, 'auth.logout');
    assert.equal(logouts.length, 1);
    assert.equal(logouts[0]!.actor_id, u.id);
    assert.equal(logouts[0]!.actor_label, u.email);
    assert.equal(logouts[0]!.entity_id, u.id);
  });
});

eachDialect('five bad passwords lock the account: the right password gets 429 with Retry-After until the lock passes', async (db) => {
  await withApp(db, async ({ browser, user, clock }) => {
    const u = await user('billing');
    const b = browser('198.51.100.77');
    await b.get('/login');
    for (let i = 1; i <= THROTTLE.account.maxFailures; i++) {
      const r = await b.post('/login', { email: u.email, password: `wrong password ${i}` });
      assert.equal(r.status, 401, `failure ${i} is a plain 401`);
      assert.equal(r.headers.get('retry-after'), null);
    }
    const locked = await b.post('/login', { email: u.email, password: PASSWORD });
    assert.equal(locked.status, 429);
    assert.equal(locked.headers.get('retry-after'), String(THROTTLE.account.lockMs / 1000));
    assert.match(locked.text, /Too many failed sign-ins\. Try again in 15 minutes\./);
    assert.equal(b.cookies.has('lb_session'), false);
    assert.equal((await sessionRows(db)).length, 0);
    assert.equal((await auditActions(db, 'auth.login_throttled')).length, 1);
    // More attempts during the same lock are refused, and not audited again (no one unsigned in grows the audit log).
    for (let i = 0; i < 5; i++) assert.equal((await b.post('/login', { email: u.email, password: PASSWORD })).status, 429);
    assert.equal((await auditActions(db, 'auth.login_throttled')).length, 1, 'one audit row per lock');

    // The lock is per account: a different address is still refused.
    const elsewhere = browser('198.51.100.78');
    await elsewhere.get('/login');
    clock.advanceMs(10 * MIN);
    const stillLocked = await elsewhere.post('/login', { email: u.email, password: PASSWORD });
    assert.equal(stillLocked.status, 429);
    assert.equal(stillLocked.headers.get('retry-after'), String(5 * 60));

    clock.advanceMs(5 * MIN + 1000);
    const ok = await b.post('/login', { email: u.email, password: PASSWORD });
    assert.equal(ok.status, 303);
    assert.ok(b.cookies.get('lb_session'));
    assert.equal((await b.get('/')).status, 200);
  });
});

eachDialect('twenty failures from one address lock that address, not others', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const u = await user('billing');
    const bad = browser('203.0.113.66');
    await bad.get('/login');
    for (let i = 0; i < THROTTLE.address.maxFailures; i++) {
      // Every other attempt prepends a made-up address: the proxy appends the real one last,
      // and only that one counts, so the client cannot spread its failures.
      const headers: Record<string, string> = i % 2 ? { 'x-forwarded-for': `10.9.8.${i}, 203.0.113.66` } : {};
      const r = await bad.post('/login', { email: `guess${i}@firm.test`, password: 'not a real password' }, { headers });
      assert.equal(r.status, 401, `attempt ${i + 1} is a plain 401`);
    }
    const blocked = await bad.post('/login', { email: 'fresh-guess@firm.test', password: 'not a real password' });
    assert.equal(blocked.status, 429);
    assert.equal(blocked.headers.get('retry-after'), String(THROTTLE.address.lockMs / 1000));
    const blockedGood = await bad.post('/login', { email: u.email, password: PASSWORD });
    assert.equal(blockedGood.status, 429, 'even a right password is refused from that address');

    const other = browser('203.0.113.67');
    await other.get('/login');
    const normal = await other.post('/login', { email: 'fresh-guess@firm.test', password: 'not a real password' });
    assert.equal(normal.status, 401, 'another address gets a normal answer');
    const good = await other.post('/login', { email: u.email, password: PASSWORD });
    assert.equal(good.status, 303);
    const row = await db.db.selectFrom('auth_throttle').selectAll().where('key', '=', 'ip:203.0.113.66').executeTakeFirstOrThrow() as { failures: number; locked_until: string | null };
    assert.equal(Number(row.failures), THROTTLE.address.maxFailures);
    assert.equal(row.locked_until, '2026-03-02T09:15:00.000Z');
    const spoofed = await db.db.selectFrom('auth_throttle').select('key').where('key', 'like', 'ip:10.9.8.%').execute();
    assert.deepEqual(spoofed, [], 'client-supplied forwarding entries are not used as the address');
    const ips = await db.db.selectFrom('audit_log').select('ip').where('action', '=', 'auth.login_failed').where('entity_id', 'like', 'guess%').execute() as { ip: string }[];
    assert.equal(ips.length, THROTTLE.address.maxFailures);
    assert.ok(ips.every((r) => r.ip === '203.0.113.66'));
  });
});

eachDialect('a session expires after 30 minutes idle, and activity keeps it alive', async (db) => {
  await withApp(db, async ({ browser, user, clock }) => {
    const u = await user('readonly');
    const b = browser();
    await b.login(u.email);
    assert.equal((await b.get('/')).status, 200);

    clock.advanceMs(20 * MIN);
    assert.equal((await b.get('/')).status, 200, 'active after 20 minutes');
    clock.advanceMs(20 * MIN);
    assert.equal((await b.get('/')).status, 200, 'the earlier request reset the idle timer');
    const [row] = await sessionRows(db, u.id);
    assert.equal(row?.last_seen_at, '2026-03-02T09:40:00.000Z');

    clock.advanceMs(SESSION_IDLE_MS - 1000);
    assert.equal((await b.get('/')).status, 200, 'one second short of the idle limit');
    clock.advanceMs(SESSION_IDLE_MS);
    const expired = await b.get('/');
    assert.equal(expired.status, 303);
    assert.equal(expired.location, '/login?next=%2F');
    assert.equal((await sessionRows(db, u.id)).length, 0, 'the expired session row is deleted');
    assert.equal(b.cookies.has('lb_session'), false, 'the dead cookie is cleared');
  });
});

eachDialect('a session ends 12 hours after login even with constant activity', async (db) => {
  await withApp(db, async ({ browser, user, clock }) => {
    const u = await user('readonly');
    const b = browser();
    await b.login(u.email);
    const step = 20 * MIN;
    let elapsed = 0;
    while (elapsed + step < SESSION_ABSOLUTE_MS) {
      clock.advanceMs(step);
      elapsed += step;
      assert.equal((await b.get('/')).status, 200, `alive after ${elapsed / MIN} minutes`);
    }
    clock.advanceMs(SESSION_ABSOLUTE_MS - elapsed - 1000);
    assert.equal((await b.get('/')).status, 200, 'alive one second before the absolute limit');
    clock.advanceMs(1000);
    const res = await b.get('/');
    assert.equal(res.status, 303, 'gone at 12 hours though it was used a second ago');
    assert.equal((await sessionRows(db, u.id)).length, 0);
  });
});
