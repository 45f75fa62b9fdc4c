/**
 * The JSON API: Bearer tokens, the error shape, validation that names every bad field,
 * content types, and the OpenAPI document generated from the same schemas.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { withApp } from '../support/app.ts';
import { errorStatuses } from '../../src/shared/web/api.ts';

async function userCount(db: TestDb): Promise<number> {
  const r = await db.db.selectFrom('auth_user').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

function assertErrorShape(body: any, code: string): void {
  assert.equal(typeof body?.error, 'object');
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'fields', 'message']);
  assert.equal(body.error.code, code);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0);
  assert.equal(typeof body.error.fields, 'object');
}

eachDialect('GET /api/v1/me with a Bearer token; unknown or revoked tokens get a 401 JSON error', async (db) => {
  await withApp(db, async ({ browser, user, token, clock }) => {
    const u = await user('billing', { email: 'bea@firm.test', name: 'Bea Billing' });
    const t = await token(u.email);
    assert.match(t, /^lbt_/);
    const client = browser();
    const me = await client.get('/api/v1/me', { authorization: `Bearer ${t}` });
    assert.equal(me.status, 200);
    assert.match(me.headers.get('content-type') ?? '', /application\/json/);
    assert.deepEqual(me.json(), { id: u.id, email: 'bea@firm.test', name: 'Bea Billing', role: 'billing' });
    const used = await db.db.selectFrom('auth_api_token').select('last_used_at').executeTakeFirstOrThrow() as { last_used_at: string | null };
    assert.equal(used.last_used_at, clock.now().toISOString(), 'use is recorded');

    for (const bad of ['lbt_unknown-token-value', 'not-even-our-prefix', `${t}x`]) {
      const res = await client.get('/api/v1/me', { authorization: `Bearer ${bad}` });
      assert.equal(res.status, 401, bad);
      assertErrorShape(res.json(), 'unauthenticated');
      assert.deepEqual(res.json().error.fields, {});
    }
    // No credentials at all: a JSON 401 too (not a redirect to the login page).
    const none = await client.get('/api/v1/me');
    assert.equal(none.status, 401);
    assertErrorShape(none.json(), 'unauthenticated');

    await db.db.updateTable('auth_api_token').set({ revoked_at: clock.now().toISOString() }).execute();
    const revoked = await client.get('/api/v1/me', { authorization: `Bearer ${t}` });
    assert.equal(revoked.status, 401);
    assertErrorShape(revoked.json(), 'unauthenticated');
    assert.match(revoked.json().error.message, /unknown or revoked/);
    // A bad token is refused even on a public page: a caller never silently falls back to anonymous.
    const pub = await client.get('/healthz', { authorization: 'Bearer lbt_nope', accept: 'application/json' });
    assert.equal(pub.status, 401);
    assertErrorShape(pub.json(), 'unauthenticated');
  });
});

eachDialect('a disabled account\'s token stops working', async (db) => {
  await withApp(db, async ({ browser, user, token }) => {
    const u = await user('timekeeper');
    const t = await token(u.email);
    const client = browser();
    assert.equal((await client.get('/api/v1/me', { authorization: `Bearer ${t}` })).status, 200);
    await db.db.updateTable('auth_user').set({ disabled: 1 }).where('id', '=', u.id).execute();
    const res = await client.get('/api/v1/me', { authorization: `Bearer ${t}` });
    assert.equal(res.status, 401);
    assertErrorShape(res.json(), 'unauthenticated');
  });
});

eachDialect('POST /api/v1/users with a bad body gets 422 naming each bad field, and creates nothing', async (db) => {
  await withApp(db, async ({ browser, user, token }) => {
    const admin = await user('admin');
    const auth = { authorization: `Bearer ${await token(admin.email)}` };
    const client = browser();
    const before = await userCount(db);

    const res = await client.postJson('/api/v1/users', { email: 42, name: 'Someone', role: 'boss', nickname: 'Sly' }, { headers: auth });
    assert.equal(res.status, 422);
    const body = res.json();
    assertErrorShape(body, 'validation_failed');
    assert.deepEqual(Object.keys(body.error.fields).sort(), ['email', 'nickname', 'password', 'role']);
    assert.match(body.error.fields.role, /must be one of: admin, billing, timekeeper, readonly/);
    assert.equal(body.error.fields.nickname, 'is not a known field');
    assert.equal(body.error.fields.password, 'is required');
    assert.equal(typeof body.error.fields.email, 'string');
    for (const f of ['email', 'role', 'nickname', 'password']) assert.match(body.error.message, new RegExp(f));

    // Well-typed but wrong values are named too (email shape, password length).
    const weak = await client.postJson('/api/v1/users', { email: 'not-an-email', name: 'Someone', role: 'billing', password: 'short' }, { headers: auth });
    assert.equal(weak.status, 422);
    assertErrorShape(weak.json(), 'validation_failed');
    assert.deepEqual(Object.keys(weak.json().error.fields).sort(), ['email', 'password']);
    assert.match(weak.json().error.fields.password, /at least 12 characters/);

    // Not an object at all, and malformed JSON.
    const arr = await client.postJson('/api/v1/users', [1, 2], { headers: auth });
    assert.equal(arr.status, 422);
    const broken = await client.request('POST', '/api/v1/users', { headers: { ...auth, 'content-type': 'application/json' }, body: '{"email":' });
    assert.equal(broken.status, 400);
    assertErrorShape(broken.json(), 'bad_json');

    assert.equal(await userCount(db), before, 'nothing was created');
    assert.equal((await db.db.selectFrom('audit_log').selectAll().where('action', '=', 'auth.user_created').where('actor_id', '=', admin.id).execute()).length, 0);

    // The good body works, so the refusals above were about the body.
    const good = await client.postJson('/api/v1/users', { email: 'New.Person@Firm.test', name: 'New Person', role: 'billing', password: 'a long enough password' }, { headers: auth });
    assert.equal(good.status, 201);
    assert.equal(good.json().email, 'new.person@firm.test');
    assert.equal(good.json().role, 'billing');
    assert.equal('password' in good.json() || 'passwordHash' in good.json(), false);
    assert.equal(await userCount(db), before + 1);
    // A duplicate email names the field.
    const dup = await client.postJson('/api/v1/users', { email: 'new.person@firm.test', name: 'Again', role: 'billing', password: 'a long enough password' }, { headers: auth });
    assert.equal(dup.status, 422);
    assert.deepEqual(Object.keys(dup.json().error.fields), ['email']);
  });
});

eachDialect('a body that is not JSON gets 415 and creates nothing', async (db) => {
  await withApp(db, async ({ browser, user, token }) => {
    const admin = await user('admin');
    const auth = { authorization: `Bearer ${await token(admin.email)}` };
    const client = browser();
    const before = await userCount(db);
    const payload = JSON.stringify({ email: 'x@firm.test', name: 'X', role: 'billing', password: 'a long enough password' });
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
      const res = await client.request('POST', '/api/v1/users', { headers: { ...auth, 'content-type': type }, body: payload });
      assert.equal(res.status, 415, type);
      assertErrorShape(res.json(), 'unsupported_media_type');
    }
    const patch = await client.request('PATCH', `/api/v1/users/${admin.id}`, { headers: { ...auth, 'content-type': 'text/plain' }, body: '{"name":"Y"}' });
    assert.equal(patch.status, 415);
    assert.equal(await userCount(db), before);
  });
});

eachDialect('PATCH /api/v1/users/:id validates and 404s on an unknown id', async (db) => {
  await withApp(db, async ({ browser, user, token }) => {
    const admin = await user('admin');
    const auth = { authorization: `Bearer ${await token(admin.email)}` };
    const client = browser();
    const bad = await client.postJson(`/api/v1/users/${admin.id}`, { role: 'owner', disabled: 'yes', email: 'x@y.z' }, { method: 'PATCH', headers: auth });
    assert.equal(bad.status, 422);
    assert.deepEqual(Object.keys(bad.json().error.fields).sort(), ['disabled', 'email', 'role']);
    const missing = await client.postJson('/api/v1/users/00000000-0000-7000-8000-000000000000', { name: 'Nobody' }, { method: 'PATCH', headers: auth });
    assert.equal(missing.status, 404);
    assertErrorShape(missing.json(), 'not_found');
    const list = await client.get('/api/v1/users', auth);
    assert.equal(list.status, 200);
    assert.deepEqual(list.json().users.map((u: { email: string }) => u.email), [admin.email]);
  });
});

eachDialect('/api/openapi.json is an OpenAPI 3.1 document listing the user and me routes with request schemas', async (db) => {
  await withApp(db, async ({ browser }) => {
    const res = await browser().get('/api/openapi.json');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    const doc = res.json();
    assert.match(doc.openapi, /^3\.1\.\d+$/);
    assert.equal(typeof doc.info?.title, 'string');
    assert.equal(typeof doc.info?.version, 'string');
    for (const p of ['/api/v1/users', '/api/v1/users/{id}', '/api/v1/me']) assert.ok(doc.paths[p], `${p} is documented`);
    for (const p of Object.keys(doc.paths)) assert.doesNotMatch(p, /:/, 'paths use {param}, not :param');

    const create = doc.paths['/api/v1/users'].post;
    assert.ok(create, 'POST /api/v1/users');
    assert.ok(doc.paths['/api/v1/users'].get, 'GET /api/v1/users');
    const createSchema = create.requestBody?.content?.['application/json']?.schema;
    assert.equal(createSchema?.type, 'object');
    assert.deepEqual(Object.keys(createSchema.properties).sort(), ['email', 'name', 'password', 'role']);
    assert.deepEqual([...createSchema.required].sort(), ['email', 'name', 'password', 'role']);
    assert.equal(createSchema.additionalProperties, false);
    assert.ok(create.responses['201'], 'the create documents its 201');
    assert.equal(create.responses.default.content['application/json'].schema.$ref, '#/components/schemas/Error');
    assert.deepEqual(create['x-roles'], ['admin']);

    const patch = doc.paths['/api/v1/users/{id}'].patch;
    assert.ok(patch);
    assert.deepEqual(patch.parameters.find((p: { in: string }) => p.in === 'path'), { name: 'id', in: 'path', required: true, schema: { type: 'string' } });
    const patchSchema = patch.requestBody?.content?.['application/json']?.schema;
    assert.deepEqual(Object.keys(patchSchema.properties).sort(), ['disabled', 'name', 'role']);
    assert.equal(patchSchema.required, undefined, 'every change field is optional');

    const me = doc.paths['/api/v1/me'].get;
    assert.ok(me.responses['200'].content['application/json'].schema.properties.email);
    assert.equal(me.requestBody, undefined);

    // The error answers each route can give are listed (review 57 F7), each an Error body: what a write with a body, a
    // path id and an admin-only audience meets, and what a signed-in read of no id meets.
    const codes = (op: { responses: Record<string, unknown> }) => Object.keys(op.responses).sort();
    assert.deepEqual(codes(create), ['201', '400', '401', '403', '409', '413', '415', '422', 'default']);
    assert.deepEqual(codes(patch), ['200', '400', '401', '403', '404', '409', '413', '415', '422', 'default']);
    assert.deepEqual(codes(me), ['200', '401', '422', 'default']);
    assert.equal(create.responses['403'].content['application/json'].schema.$ref, '#/components/schemas/Error');
    assert.match(create.responses['403'].description, /admin.*; or a browser session's write without its CSRF token/);
    // A public read (none is in the API yet) would list no 401 or 403.
    assert.deepEqual(errorStatuses({ method: 'get', path: '/x', audience: 'public' }).map(([status]) => status), [422]);

    assert.ok(doc.components.schemas.Error.properties.error);
    assert.deepEqual(Object.keys(doc.components.securitySchemes).sort(), ['bearer', 'session']);
    assert.deepEqual(create.security, [{ bearer: [] }, { session: [] }]);
  });
});
