/**
 * API tokens end with the credentials they were issued under: a password reset or a
 * disabled account revokes them for good (revoked_at), and an admin can revoke a user's
 * tokens from the user page. Every revocation is audit-logged.
 */
import assert from 'node:assert/strict';
import { systemContext } from '../../src/shared/events.ts';
import { resetPassword, revokeApiTokens } from '../../src/web/auth/service.ts';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { withApp } from '../support/app.ts';

async function tokenRows(db: TestDb, userId: string) {
  return await db.db.selectFrom('auth_api_token').selectAll().where('user_id', '=', userId).orderBy('created_at').execute() as
    { id: string; label: string; revoked_at: string | null }[];
}
async function revocations(db: TestDb, userId: string) {
  const rows = await db.db.selectFrom('audit_log').selectAll().where('action', '=', 'auth.api_tokens_revoked').where('entity_id', '=', userId).execute() as
    { actor_label: string; after_json: string | null }[];
  return rows.map((r) => ({ actor: r.actor_label, after: JSON.parse(r.after_json ?? 'null') as { tokenIds: string[]; reason: string } }));
}

eachDialect('a password reset revokes the user\'s API tokens, and a revoked token is refused', async (db) => {
  await withApp(db, async ({ browser, user, token, clock }) => {
    const u = await user('billing');
    const other = await user('readonly');
    const t1 = await token(u.email);
    const t2 = await token(u.email);
    const keep = await token(other.email);
    const client = browser();
    const me = (t: string) => client.get('/api/v1/me', { authorization: `Bearer ${t}` });
    assert.equal((await me(t1)).status, 200);
    assert.equal((await me(t2)).status, 200);
    // The scheme in any case (review 57 F8); a refusal says what to send.
    for (const scheme of ['bearer', 'BEARER']) assert.equal((await client.get('/api/v1/me', { authorization: `${scheme} ${t1}` })).status, 200, scheme);
    const none = await client.get('/api/v1/me', { authorization: 'bearer lbt_not-a-token' });
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="lexbill"');

    clock.advanceMs(60_000);
    await resetPassword({ db: db.db, clock }, systemContext('reset-test', 'cli:reset-password'), u.email, 'a brand new long password');
    const rows = await tokenRows(db, u.id);
    assert.equal(rows.length, 2);
    assert.ok(rows.every((r) => r.revoked_at === clock.now().toISOString()), 'every token of the user is revoked');
    for (const t of [t1, t2]) {
      const res = await me(t);
      assert.equal(res.status, 401);
      assert.match(res.json().error.message, /unknown or revoked/);
    }
    assert.equal((await me(keep)).status, 200, 'another user\'s token is untouched');
    const logged = await revocations(db, u.id);
    assert.equal(logged.length, 1);
    assert.equal(logged[0]!.actor, 'cli:reset-password');
    assert.equal(logged[0]!.after.reason, 'password_reset');
    assert.deepEqual([...logged[0]!.after.tokenIds].sort(), rows.map((r) => r.id).sort());

    // A second reset has nothing left to revoke and logs no revocation.
    await resetPassword({ db: db.db, clock }, systemContext('reset-test-2', 'cli:reset-password'), u.email, 'another brand new password');
    assert.equal((await revocations(db, u.id)).length, 1);
    // A token issued after the reset works.
    assert.equal((await me(await token(u.email))).status, 200);
  });
});

eachDialect('disabling an account revokes its tokens for good: enabling it again does not bring them back', async (db) => {
  await withApp(db, async ({ browser, user, token }) => {
    const admin = await user('admin');
    const u = await user('timekeeper', { name: 'Tess Keeper' });
    const t = await token(u.email);
    const client = browser();
    const me = () => client.get('/api/v1/me', { authorization: `Bearer ${t}` });
    assert.equal((await me()).status, 200);

    const b = browser();
    await b.login(admin.email);
    await b.get(`/admin/users/${u.id}`);
    assert.equal((await b.post(`/admin/users/${u.id}`, { name: 'Tess Keeper', role: 'timekeeper', disabled: 'on' })).status, 303);
    assert.equal((await me()).status, 401);
    const [row] = await tokenRows(db, u.id);
    assert.ok(row?.revoked_at, 'revoked_at is set');
    const logged = await revocations(db, u.id);
    assert.equal(logged.length, 1);
    assert.equal(logged[0]!.actor, admin.email);
    assert.equal(logged[0]!.after.reason, 'user_disabled');

    await b.get(`/admin/users/${u.id}`);
    assert.equal((await b.post(`/admin/users/${u.id}`, { name: 'Tess Keeper', role: 'timekeeper' })).status, 303);
    const enabled = await db.db.selectFrom('auth_user').select('disabled').where('id', '=', u.id).executeTakeFirstOrThrow();
    assert.equal(Number(enabled.disabled), 0);
    assert.equal((await me()).status, 401, 'the old token stays revoked');
  });
});

eachDialect('an admin revokes a user\'s API tokens from the user page; the change is audit-logged', async (db) => {
  await withApp(db, async ({ browser, user, token, clock }) => {
    const admin = await user('admin');
    const u = await user('billing');
    const t1 = await token(u.email);
    const t2 = await token(u.email);
    const client = browser();
    const me = (t: string) => client.get('/api/v1/me', { authorization: `Bearer ${t}` });

    const b = browser();
    await b.login(admin.email);
    const page = await b.get(`/admin/users/${u.id}`);
    assert.equal(page.status, 200);
    assert.match(page.text, /2 active API tokens/);
    assert.match(page.text, new RegExp(`<form method="post" action="/admin/users/${u.id}/revoke-tokens"`));

    // Without the CSRF token nothing is revoked.
    assert.equal((await b.post(`/admin/users/${u.id}/revoke-tokens`, {}, { csrf: false })).status, 403);
    assert.equal((await me(t1)).status, 200);

    clock.advanceMs(1000);
    const res = await b.post(`/admin/users/${u.id}/revoke-tokens`, {});
    assert.equal(res.status, 303);
    assert.equal(res.location, `/admin/users/${u.id}`);
    assert.equal((await me(t1)).status, 401);
    assert.equal((await me(t2)).status, 401);
    const rows = await tokenRows(db, u.id);
    assert.ok(rows.every((r) => r.revoked_at === clock.now().toISOString()));
    const logged = await revocations(db, u.id);
    assert.equal(logged.length, 1);
    assert.equal(logged[0]!.actor, admin.email);
    assert.equal(logged[0]!.after.reason, 'revoked');
    assert.equal(logged[0]!.after.tokenIds.length, 2);
    assert.match((await b.get(`/admin/users/${u.id}`)).text, /No active API tokens/);

    // A non-admin may not; an unknown user is a 404.
    const reader = await user('readonly');
    const r = browser();
    await r.login(reader.email);
    await r.get('/');
    assert.equal((await r.post(`/admin/users/${u.id}/revoke-tokens`, {})).status, 403);
    assert.equal((await b.post('/admin/users/00000000-0000-7000-8000-000000000000/revoke-tokens', {})).status, 404);

    // The service refuses an unknown email by naming the field.
    await assert.rejects(revokeApiTokens({ db: db.db, clock }, systemContext('t', 'cli'), { email: 'nobody@firm.test' }),
      (err: { status?: number; fields?: Record<string, string> }) => err.status === 422 && 'email' in (err.fields ?? {}));
  });
});
