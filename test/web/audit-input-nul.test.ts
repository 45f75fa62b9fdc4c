/**
 * Input no field may take: text holding NUL (Postgres cannot store it in text, so it was a 500
 * there and stored as typed on SQLite), a `__proto__` key (JSON.parse makes it an own key that
 * the known-fields check passed over), and a JSON body sent to a page's form route (read as an
 * empty form, it applied "nothing ticked"). Each is a 4xx naming the field, and changes nothing.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { withApp } from '../support/app.ts';
import type { TestDb } from '../support/db.ts';

const count = async (db: TestDb, table: string) => Number((await db.db.selectFrom(table as 'audit_log').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

eachDialect('text holding NUL, a __proto__ key, or JSON sent to a page is refused naming the field, and nothing changes', async (db) => {
  await withApp(db, async ({ browser, user, token }) => {
    const admin = await user('admin');
    const auth = { authorization: `Bearer ${await token(admin.email)}` };
    const b = browser();
    await b.login(admin.email);
    const before = { clients: await count(db, 'matters_client'), audit: await count(db, 'audit_log') };

    // The API: a NUL in a name, anywhere in a nested body, and a __proto__ key.
    let res = await b.postJson('/api/v1/clients', { name: 'Acme\u0000Ltd' }, { headers: auth });
    assert.equal(res.status, 422, res.text);
    assert.match(res.json().error.fields.name, /NUL character/);
    res = await b.request('POST', '/api/v1/clients', { headers: { 'content-type': 'application/json', ...auth }, body: '{"__proto__":{"x":1},"name":"P"}' });
    assert.equal(res.status, 422, res.text);
    assert.equal(res.json().error.fields.__proto__, 'is not a known field');
    // Keys named like Object's own members are unknown fields too (review 57 F1: they passed unnamed).
    for (const key of ['constructor', 'toString', 'hasOwnProperty', 'valueOf']) {
      res = await b.request('POST', '/api/v1/clients', { headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify({ name: 'P', [key]: 1 }) });
      assert.equal(res.status, 422, `${key}: ${res.text}`);
      assert.deepEqual(res.json().error.fields, { [key]: 'is not a known field' });
    }

    // A page's form: the field is named on the page.
    await b.get('/matters/clients');
    res = await b.post('/matters/clients', { name: 'Acme\u0000Ltd' });
    assert.equal(res.status, 422, res.text.slice(0, 300));
    assert.match(res.text, /NUL character/);
    // A query: a search for NUL is refused, not a 500.
    res = await b.get('/matters?q=%00');
    assert.equal(res.status, 422, res.text.slice(0, 300));
    // A path: an id holding NUL names nothing (404), on the API and the pages, never a 500 (Postgres).
    for (const [method, path] of [['GET', '/api/v1/clients/%00x'], ['GET', '/api/v1/matters/a%00b'], ['GET', '/api/v1/time-entries/a%00'], ['PATCH', '/api/v1/clients/a%00b'], ['GET', '/billing/bills/a%00b']] as const) {
      res = await b.request(method, path, { headers: { ...auth, 'content-type': 'application/json' }, ...(method === 'PATCH' ? { body: '{"name":"x"}' } : {}) });
      assert.equal(res.status, 404, `${method} ${path}: ${res.text.slice(0, 200)}`);
    }

    // JSON to a page's form route, with the CSRF header a script would send: 415, nothing applied.
    res = await b.request('POST', '/matters/clients', { headers: { 'content-type': 'application/json', 'x-csrf-token': b.csrf! }, body: JSON.stringify({ name: 'By JSON' }) });
    assert.equal(res.status, 415, res.text.slice(0, 300));

    assert.deepEqual({ clients: await count(db, 'matters_client'), audit: await count(db, 'audit_log') }, before, 'nothing changed, nothing audited');
    // A good request still goes through.
    res = await b.post('/matters/clients', { name: 'Acme Ltd' });
    assert.ok(res.status === 303 || res.status === 200, `${res.status}`);
    assert.equal(await count(db, 'matters_client'), before.clients + 1);
  });
});
