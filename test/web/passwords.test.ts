/**
 * Changing passwords from the web: a signed-in user changes their own on /account/password
 * (the current one asked for, wrong ones counted against the account's sign-in throttle, the
 * other sessions signed out and API tokens revoked, this browser kept signed in); an admin
 * sets another account's password on its user page (that account signed out everywhere, its
 * tokens revoked). Every change is audit-logged; a refusal names its field and changes nothing.
 * Also: an admin's save that changes nothing writes no audit row.
 */
import assert from 'node:assert/strict';
import { PASSWORD, unescapeHtml, withApp } from '../support/app.ts';
import type { Page } from '../support/app.ts';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';

async function actions(db: TestDb, action: string, entityId: string): Promise<number> {
  return (await db.db.selectFrom('audit_log').select('id').where('action', '=', action).where('entity_id', '=', entityId).execute()).length;
}
async function hashOf(db: TestDb, id: string): Promise<string> {
  return ((await db.db.selectFrom('auth_user').select('password_hash').where('id', '=', id).executeTakeFirstOrThrow()) as { password_hash: string }).password_hash;
}
function fieldError(p: Page, field: string): string {
  const m = new RegExp(`data-error-for="${field}"[^>]*>([^<]*)<`).exec(p.text);
  assert.ok(m, `an error shown for ${field}: ${p.text.slice(0, 300)}`);
  return unescapeHtml(m[1]!.trim());
}

eachDialect('a user changes their own password: the current one is asked for, other sessions end, tokens are revoked, this browser stays', async (db) => {
  await withApp(db, async (t) => {
    const u = await t.user('timekeeper');
    const here = t.browser();
    const elsewhere = t.browser();
    assert.equal((await here.login(u.email)).status, 303);
    assert.equal((await elsewhere.login(u.email)).status, 303);
    const tok = await t.token(u.email);
    const me = () => t.browser().get('/api/v1/me', { authorization: `Bearer ${tok}` });
    assert.equal((await me()).status, 200);
    const page = await here.get('/account/password');
    assert.equal(page.status, 200);
    assert.match(page.text, /name="currentPassword"/);
    assert.match((await here.get('/')).text, /href="\/account\/password"/, 'every page links to it');
    const hash = await hashOf(db, u.id);
    const next = 'a new long password 2026';

    // Refusals, each naming its field; nothing changes.
    for (const [form, field, message] of [
      [{ currentPassword: 'not the password', newPassword: next, confirmPassword: next }, 'currentPassword', /Current password is not your current password/],
      [{ currentPassword: PASSWORD, newPassword: 'short', confirmPassword: 'short' }, 'newPassword', /at least 12 characters/],
      [{ currentPassword: PASSWORD, newPassword: PASSWORD, confirmPassword: PASSWORD }, 'newPassword', /must differ from the current password/],
      [{ currentPassword: PASSWORD, newPassword: next, confirmPassword: `${next}!` }, 'confirmPassword', /does not match the new password/],
      [{ currentPassword: '', newPassword: next, confirmPassword: next }, 'currentPassword', /is required/],
    ] as const) {
      const r = await here.post('/account/password', form);
      assert.equal(r.status, 422, JSON.stringify(form));
      assert.match(fieldError(r, field), message);
    }
    assert.equal(await hashOf(db, u.id), hash, 'the password is unchanged');
    assert.equal(await actions(db, 'auth.password_change_refused', u.id), 1, 'the wrong current password is audited');
    assert.equal((await elsewhere.get('/')).status, 200, 'the other session lives on');

    // One who copied this browser's session cookie (a shared machine): signed out by the change too.
    const copied = t.browser();
    copied.cookies.set('lb_session', here.cookies.get('lb_session')!);
    assert.equal((await copied.get('/')).status, 200, 'the copied cookie works before');
    const ok = await here.post('/account/password', { currentPassword: PASSWORD, newPassword: next, confirmPassword: next });
    assert.equal(ok.status, 303);
    assert.ok(ok.cookie('lb_session'), 'this browser is given a new session id');
    assert.match((await copied.get('/')).location ?? '', /^\/login/, 'the old session id is ended');
    const done = await here.get(ok.location!);
    assert.match(unescapeHtml(done.text), /Your password is changed\.\s+1 other session signed out\.\s+1 API token revoked/);
    assert.equal((await here.get('/')).status, 200, 'this browser stays signed in');
    assert.match((await elsewhere.get('/')).location ?? '', /^\/login/, 'the other session is signed out');
    assert.equal((await me()).status, 401, 'the API token is revoked');
    assert.equal(await actions(db, 'auth.password_changed', u.id), 1);
    assert.equal((await t.browser().login(u.email)).status, 401, 'the old password no longer signs in');
    assert.equal((await t.browser().login(u.email, next)).status, 303, 'the new one does');
  });
});

eachDialect('wrong current passwords count against the account\'s sign-in throttle', async (db) => {
  await withApp(db, async (t) => {
    const u = await t.user('billing');
    const b = t.browser();
    await b.login(u.email);
    await b.get('/account/password');
    const next = 'a new long password 2026';
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await b.post('/account/password', { currentPassword: `guess ${i}`, newPassword: next, confirmPassword: next })).status);
    assert.deepEqual(statuses, [422, 422, 422, 422, 422, 429], 'five wrong guesses lock the account, as five failed sign-ins do');
    const locked = await b.post('/account/password', { currentPassword: PASSWORD, newPassword: next, confirmPassword: next });
    assert.equal(locked.status, 429, 'the right password is refused while locked');
    assert.match(unescapeHtml(locked.text), /Too many wrong passwords for this account/);
    assert.equal((await t.browser().login(u.email)).status, 429, 'and signing in is locked too');
    t.clock.advanceMs(16 * 60_000);
    // The session idled out meanwhile: sign in again, then the change goes through.
    const again = t.browser();
    assert.equal((await again.login(u.email)).status, 303);
    await again.get('/account/password');
    assert.equal((await again.post('/account/password', { currentPassword: PASSWORD, newPassword: next, confirmPassword: next })).status, 303);
  });
});

eachDialect('an admin sets another account\'s password: it is signed out everywhere and its tokens revoked; their own is refused there', async (db) => {
  await withApp(db, async (t) => {
    const admin = await t.user('admin');
    const u = await t.user('billing');
    const a = t.browser();
    await a.login(admin.email);
    const ub = t.browser();
    await ub.login(u.email);
    const tok = await t.token(u.email);
    const page = await a.get(`/admin/users/${u.id}`);
    assert.match(page.text, /Set a new password/);
    const hash = await hashOf(db, u.id);

    const short = await a.post(`/admin/users/${u.id}/password`, { password: 'short', confirmPassword: 'short' });
    assert.equal(short.status, 422);
    assert.match(fieldError(short, 'password'), /at least 12 characters/);
    const mismatch = await a.post(`/admin/users/${u.id}/password`, { password: 'a long enough password', confirmPassword: 'another long password' });
    assert.equal(mismatch.status, 422);
    assert.match(fieldError(mismatch, 'confirmPassword'), /does not match/);
    assert.equal(await hashOf(db, u.id), hash, 'nothing changed');

    const set = await a.post(`/admin/users/${u.id}/password`, { password: 'set by the admin 2026', confirmPassword: 'set by the admin 2026' });
    assert.equal(set.status, 303);
    assert.match((await a.get(set.location!)).text, /A new password is set/);
    assert.match((await ub.get('/')).location ?? '', /^\/login/, 'the account is signed out');
    assert.equal((await t.browser().get('/api/v1/me', { authorization: `Bearer ${tok}` })).status, 401, 'its token is revoked');
    assert.equal(await actions(db, 'auth.password_reset', u.id), 1);
    assert.equal((await t.browser().login(u.email, 'set by the admin 2026')).status, 303);

    // Their own account's page sends them to Change password; a crafted post is refused.
    const own = await a.get(`/admin/users/${admin.id}`);
    assert.doesNotMatch(own.text, /Set a new password/);
    assert.match(own.text, /href="\/account\/password"/);
    const refused = await a.post(`/admin/users/${admin.id}/password`, { password: 'my own new password', confirmPassword: 'my own new password' });
    assert.equal(refused.status, 422);
    assert.match(fieldError(refused, 'password'), /Change password page/);
    assert.equal((await a.get('/')).status, 200, 'the admin is still signed in');

    // Not an admin: refused.
    await ub.login(u.email, 'set by the admin 2026');
    await ub.get('/');
    const notAdmin = await ub.post(`/admin/users/${admin.id}/password`, { password: 'taking over now', confirmPassword: 'taking over now' });
    assert.equal(notAdmin.status, 403);
    assert.doesNotMatch(notAdmin.text, /did not come from this site/, 'refused for the role, not for a missing CSRF token');
    assert.equal((await t.browser().login(admin.email)).status, 303, 'the admin\'s password is unchanged');
  });
});

eachDialect('an admin\'s save that changes nothing writes no audit row and keeps updated_at', async (db) => {
  await withApp(db, async (t) => {
    const admin = await t.user('admin');
    const u = await t.user('billing', { name: 'Bea Billing' });
    const a = t.browser();
    await a.login(admin.email);
    await a.get(`/admin/users/${u.id}`);
    const before = await db.db.selectFrom('auth_user').select('updated_at').where('id', '=', u.id).executeTakeFirstOrThrow();
    t.clock.advanceMs(60_000);
    assert.equal((await a.post(`/admin/users/${u.id}`, { name: 'Bea Billing', role: 'billing' })).status, 303);
    assert.equal(await actions(db, 'auth.user_changed', u.id), 0);
    assert.deepEqual(await db.db.selectFrom('auth_user').select('updated_at').where('id', '=', u.id).executeTakeFirstOrThrow(), before);
    assert.equal((await a.post(`/admin/users/${u.id}`, { name: 'Bea Billing-Jones', role: 'billing' })).status, 303);
    assert.equal(await actions(db, 'auth.user_changed', u.id), 1, 'a real change is audited');
  });
});

eachDialect('a password set by an admin while the user\'s own change is in flight is not overwritten (409, sign in again)', async (db) => {
  await withApp(db, async (t) => {
    const admin = await t.user('admin');
    const u = await t.user('billing');
    const b = t.browser();
    await b.login(u.email);
    await b.get('/account/password');
    const deps = { db: db.db, clock: t.clock };
    const { resetPassword } = await import('../../src/web/auth/service.ts');
    const { systemContext } = await import('../../src/shared/events.ts');
    // The user's change verifies the current password (a slow hash), and meanwhile the admin sets one.
    const mine = b.post('/account/password', { currentPassword: PASSWORD, newPassword: 'the user chose this 2026', confirmPassword: 'the user chose this 2026' });
    await resetPassword(deps, { ...systemContext('admin-reset', admin.email), actorId: admin.id }, { userId: u.id }, 'the admin set this 2026');
    const r = await mine;
    assert.equal(r.status, 409, r.text.slice(0, 400));
    assert.match(unescapeHtml(r.text), /Your password was changed meanwhile/);
    assert.equal((await t.browser().login(u.email, 'the admin set this 2026')).status, 303, 'the admin\'s password holds');
    assert.equal((await t.browser().login(u.email, 'the user chose this 2026')).status, 401);
  });
});
