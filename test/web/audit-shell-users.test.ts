/**
 * Refusals name the field the person changed: disabling oneself is refused at "disabled",
 * not at "role"; and a body that cannot be read as a form is a 400, not a 500.
 */
import assert from 'node:assert/strict';
import { systemContext } from '../../src/shared/events.ts';
import { updateUser } from '../../src/web/auth/service.ts';
import { HttpError } from '../../src/shared/web/errors.ts';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { withApp } from '../support/app.ts';

async function userRow(db: TestDb, id: string) {
  return await db.db.selectFrom('auth_user').selectAll().where('id', '=', id).executeTakeFirstOrThrow() as { name: string; role: string; disabled: number };
}
async function changes(db: TestDb) {
  return (await db.db.selectFrom('audit_log').select('id').where('action', '=', 'auth.user_changed').execute()).length;
}

eachDialect('an admin ticking Disabled on their own account is refused at the Disabled box, and nothing changes', async (db) => {
  await withApp(db, async ({ browser, user, token }) => {
    const ada = await user('admin', { email: 'ada@firm.test', name: 'Ada Admin' });
    await user('admin', { email: 'bob@firm.test', name: 'Bob Admin' });
    const b = browser();
    await b.login(ada.email);
    await b.get(`/admin/users/${ada.id}`);
    const res = await b.post(`/admin/users/${ada.id}`, { name: 'Ada Admin', role: 'admin', disabled: 'on' });
    assert.equal(res.status, 422);
    // The message sits under the Disabled box, not under Role.
    assert.match(res.text, /Disabled \(signs the user out[^<]*<\/label>\s*<span class="field-error">[^<]+<\/span>/);
    assert.doesNotMatch(res.text, /<\/select>\s*<span class="field-error">/);
    assert.equal(Number((await userRow(db, ada.id)).disabled), 0);
    assert.equal(await changes(db), 0);

    const auth = { authorization: `Bearer ${await token(ada.email)}` };
    const api = await browser().postJson(`/api/v1/users/${ada.id}`, { disabled: true }, { method: 'PATCH', headers: auth });
    assert.equal(api.status, 422);
    assert.deepEqual(Object.keys(api.json().error.fields), ['disabled']);
    const demote = await browser().postJson(`/api/v1/users/${ada.id}`, { role: 'billing' }, { method: 'PATCH', headers: auth });
    assert.equal(demote.status, 422);
    assert.deepEqual(Object.keys(demote.json().error.fields), ['role']);
    assert.equal(await changes(db), 0);
  });
});

eachDialect('disabling the last active admin from the command line is refused at "disabled"; demoting it at "role"', async (db) => {
  await withApp(db, async ({ user, clock }) => {
    const ada = await user('admin', { email: 'ada@firm.test', name: 'Ada Admin' });
    const ctx = systemContext('cli', 'test');
    const deps = { db: db.db, clock };
    await assert.rejects(updateUser(deps, ctx, ada.id, { disabled: true }), (e: unknown) => e instanceof HttpError && e.status === 422 && Object.keys(e.fields).join() === 'disabled');
    await assert.rejects(updateUser(deps, ctx, ada.id, { role: 'billing' }), (e: unknown) => e instanceof HttpError && e.status === 422 && Object.keys(e.fields).join() === 'role');
    assert.equal(Number((await userRow(db, ada.id)).disabled), 0);
    assert.equal((await userRow(db, ada.id)).role, 'admin');
    assert.equal(await changes(db), 0);
  });
});

eachDialect('a form post whose body cannot be read is a 400, not a 500, and changes nothing', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const admin = await user('admin');
    const b = browser();
    await b.login(admin.email);
    await b.get('/admin/users');
    const before = (await db.db.selectFrom('auth_user').select('id').execute()).length;
    const res = await b.request('POST', '/admin/users', {
      headers: { 'content-type': 'multipart/form-data; boundary=XYZ' },
      body: 'this is not multipart at all',
    });
    assert.equal(res.status, 400, res.text.slice(0, 300));
    assert.doesNotMatch(res.text, /Something went wrong/);
    const login = browser();
    await login.get('/login');
    const res2 = await login.request('POST', '/login', { headers: { 'content-type': 'multipart/form-data' }, body: 'garbage' });
    assert.equal(res2.status, 400);
    assert.equal((await db.db.selectFrom('auth_user').select('id').execute()).length, before);
  });
});

eachDialect('renaming an account while another admin demotes it does not give the admin role back', async (db) => {
  await withApp(db, async ({ user, clock }) => {
    const deps = { db: db.db, clock };
    await user('admin', { email: 'ada@firm.test', name: 'Ada Admin' });
    const bob = await user('admin', { email: 'bob@firm.test', name: 'Bob Admin' });
    if (db.dialect === 'postgres') {
      // Another admin's demotion holds Bob's row; the rename reads and writes meanwhile.
      let rename: Promise<unknown> | null = null;
      await db.db.transaction().execute(async (trx) => {
        await trx.selectFrom('auth_user').select('id').where('id', '=', bob.id).forUpdate().execute();
        rename = updateUser(deps, systemContext('r1', 'rename'), bob.id, { name: 'Robert Admin' });
        await new Promise((r) => setTimeout(r, 400));
        await trx.updateTable('auth_user').set({ role: 'readonly' }).where('id', '=', bob.id).execute();
      });
      await rename;
    } else {
      // SQLite runs one writer at a time: the demotion and the rename follow each other.
      await updateUser(deps, systemContext('d1', 'demote'), bob.id, { role: 'readonly' });
      await updateUser(deps, systemContext('r1', 'rename'), bob.id, { name: 'Robert Admin' });
    }
    const row = await userRow(db, bob.id);
    assert.deepEqual([row.name, row.role], ['Robert Admin', 'readonly']);
    const logged = await db.db.selectFrom('audit_log').select(['before_json', 'after_json']).where('action', '=', 'auth.user_changed').where('actor_label', '=', 'rename').executeTakeFirstOrThrow() as { before_json: string; after_json: string };
    assert.equal(JSON.parse(logged.before_json).role, 'readonly', 'the audit row shows the role the rename found');
    assert.equal(JSON.parse(logged.after_json).role, 'readonly');
  });
});
