/**
 * The admin user pages: passwords are kept exactly as typed, the last-active-admin rule
 * counts active admins only, an emptied name is refused by name, a refused form shows
 * what was submitted; and the home page offers only the areas the user's role may open.
 */
import assert from 'node:assert/strict';
import { systemContext } from '../../src/shared/events.ts';
import Type from 'typebox';
import { parseForm } from '../../src/shared/web/validate.ts';
import { updateUser } from '../../src/web/auth/service.ts';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { withApp } from '../support/app.ts';
import { test } from 'node:test';

async function userRow(db: TestDb, id: string) {
  return await db.db.selectFrom('auth_user').selectAll().where('id', '=', id).executeTakeFirstOrThrow() as { name: string; role: string; disabled: number };
}
async function changes(db: TestDb) {
  return (await db.db.selectFrom('audit_log').select('id').where('action', '=', 'auth.user_changed').execute()).length;
}

test('parseForm keeps password fields exactly as typed and trims the others', () => {
  const schema = Type.Object({ name: Type.String(), password: Type.String(), newPassword: Type.Optional(Type.String()) });
  const out = parseForm(schema, { name: '  Ann  ', password: '  two spaces  ', newPassword: '   ' });
  assert.deepEqual(out, { name: 'Ann', password: '  two spaces  ', newPassword: '   ' });
});

eachDialect('a password set on the web form keeps its spaces, and signs in exactly as typed', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const admin = await user('admin');
    const b = browser();
    await b.login(admin.email);
    await b.get('/admin/users');
    const password = '  spaced out password  ';
    const res = await b.post('/admin/users', { email: 'sp@firm.test', name: 'Spacey', role: 'billing', password });
    assert.equal(res.status, 303);

    const exact = browser();
    assert.equal((await exact.login('sp@firm.test', password)).status, 303, 'the password as typed signs in');
    const trimmed = browser();
    assert.equal((await trimmed.login('sp@firm.test', password.trim())).status, 401, 'the trimmed password is a different password');

    // Too short as typed is too short: spaces count, nothing is silently dropped.
    const short = await b.post('/admin/users', { email: 'sh@firm.test', name: 'Shorty', role: 'billing', password: '   short   ' });
    assert.equal(short.status, 422);
    assert.match(short.text, /must be at least 12 characters/);
  });
});

eachDialect('a disabled admin can be edited and demoted; only leaving no active admin is refused', async (db) => {
  await withApp(db, async ({ browser, user, clock }) => {
    const ada = await user('admin', { email: 'ada@firm.test', name: 'Ada Admin' });
    const old = await user('admin', { email: 'old@firm.test', name: 'Old Admin' });
    const b = browser();
    await b.login(ada.email);
    await b.get(`/admin/users/${old.id}`);
    assert.equal((await b.post(`/admin/users/${old.id}`, { name: 'Old Admin', role: 'admin', disabled: 'on' })).status, 303);

    // Ada is the only active admin; the disabled one can still be renamed and demoted.
    await b.get(`/admin/users/${old.id}`);
    const renamed = await b.post(`/admin/users/${old.id}`, { name: 'Former Admin', role: 'admin', disabled: 'on' });
    assert.equal(renamed.status, 303, renamed.text);
    assert.equal((await userRow(db, old.id)).name, 'Former Admin');
    const demoted = await b.post(`/admin/users/${old.id}`, { name: 'Former Admin', role: 'readonly', disabled: 'on' });
    assert.equal(demoted.status, 303, demoted.text);
    assert.deepEqual([(await userRow(db, old.id)).role, Number((await userRow(db, old.id)).disabled)], ['readonly', 1]);

    // Another active admin may be demoted while one stays.
    const bob = await user('admin', { email: 'bob@firm.test', name: 'Bob Admin' });
    assert.equal((await b.post(`/admin/users/${bob.id}`, { name: 'Bob Admin', role: 'billing' })).status, 303);

    // Leaving no active admin is refused, by anyone, and changes nothing.
    const deps = { db: db.db, clock };
    const before = await changes(db);
    // Refused at the field the change asked for: the role, or the Disabled box.
    for (const [change, field] of [[{ role: 'billing' as const }, 'role'], [{ disabled: true }, 'disabled']] as const) {
      await assert.rejects(updateUser(deps, systemContext('last-admin', 'cli'), ada.id, change),
        (err: { status?: number; fields?: Record<string, string> }) => err.status === 422 && /last active admin/.test(err.fields?.[field] ?? ''));
    }
    assert.deepEqual([(await userRow(db, ada.id)).role, Number((await userRow(db, ada.id)).disabled)], ['admin', 0]);
    assert.equal(await changes(db), before);
    // Re-enabling the disabled ex-admin as an admin is fine, and then Ada may be demoted.
    await updateUser(deps, systemContext('t', 'cli'), old.id, { role: 'admin', disabled: false });
    const adaDemoted = await updateUser(deps, systemContext('t', 'cli'), ada.id, { role: 'billing' });
    assert.equal(adaDemoted.role, 'billing');
  });
});

eachDialect('clearing a user\'s name is a 422 naming name, and nothing changes', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const admin = await user('admin');
    const u = await user('billing', { name: 'Bea Billing' });
    const b = browser();
    await b.login(admin.email);
    await b.get(`/admin/users/${u.id}`);
    const before = await changes(db);
    for (const name of ['', '   ']) {
      const res = await b.post(`/admin/users/${u.id}`, { name, role: 'billing' });
      assert.equal(res.status, 422, JSON.stringify(name));
      assert.match(res.text, /<label>Name <input name="name" value="\s*"[^>]*>\s*<span class="field-error">is required<\/span>/);
      assert.equal((await userRow(db, u.id)).name, 'Bea Billing');
    }
    assert.equal(await changes(db), before, 'nothing was audit-logged');
    // A form without the name field at all is refused the same way.
    const missing = await b.post(`/admin/users/${u.id}`, { role: 'billing' });
    assert.equal(missing.status, 422);
    assert.equal((await userRow(db, u.id)).name, 'Bea Billing');
  });
});

eachDialect('a refused user form shows what was submitted, including an unticked Disabled', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const admin = await user('admin');
    const u = await user('timekeeper', { name: 'Tim Keeper' });
    const b = browser();
    await b.login(admin.email);
    await b.get(`/admin/users/${u.id}`);
    assert.equal((await b.post(`/admin/users/${u.id}`, { name: 'Tim Keeper', role: 'timekeeper', disabled: 'on' })).status, 303);
    const checkbox = (html: string) => /<input type="checkbox" name="disabled"[^>]*>/.exec(html)?.[0] ?? '';
    assert.match(checkbox((await b.get(`/admin/users/${u.id}`)).text), /checked/);

    // Unticked Disabled, a new name, but an unknown role: refused, and the form shows the submission.
    const res = await b.post(`/admin/users/${u.id}`, { name: 'Timothy Keeper', role: 'boss' });
    assert.equal(res.status, 422);
    assert.doesNotMatch(checkbox(res.text), /checked/, 'Disabled is shown unticked, as submitted');
    assert.match(res.text, /<input name="name" value="Timothy Keeper">/);
    assert.match(res.text, /<span class="field-error">must be one of: admin, billing, timekeeper, readonly<\/span>/);
    assert.match(res.text, new RegExp(`<form method="post" action="/admin/users/${u.id}"`));
    // Ticked Disabled with a bad role: shown ticked.
    const res2 = await b.post(`/admin/users/${u.id}`, { name: 'Tim', role: 'boss', disabled: 'on', id: 'not-this-user' });
    assert.equal(res2.status, 422);
    assert.match(checkbox(res2.text), /checked/);
    assert.match(res2.text, new RegExp(`<form method="post" action="/admin/users/${u.id}"`), 'submitted fields cannot replace the user\'s id');
    const row = await userRow(db, u.id);
    assert.deepEqual([row.name, row.role, Number(row.disabled)], ['Tim Keeper', 'timekeeper', 1]);
  });
});

eachDialect('the home page offers only the areas the role may open, as the navigation does', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const expect: Record<string, { shown: string[]; hidden: string[] }> = {
      timekeeper: { shown: ['/matters'], hidden: ['/billing', '/ledger', '/trust', '/admin/users'] },
      readonly: { shown: ['/matters', '/billing', '/ledger', '/trust'], hidden: ['/admin/users'] },
      billing: { shown: ['/matters', '/billing', '/ledger', '/trust'], hidden: ['/admin/users'] },
      admin: { shown: ['/matters', '/billing', '/ledger', '/trust', '/admin/users'], hidden: [] },
    };
    for (const [role, { shown, hidden }] of Object.entries(expect)) {
      const u = await user(role as 'admin');
      const b = browser();
      await b.login(u.email);
      const home = await b.get('/');
      assert.equal(home.status, 200);
      const tiles = /<ul class="tiles">([\s\S]*?)<\/ul>/.exec(home.text)?.[1] ?? '';
      const links = [...tiles.matchAll(/<a href="([^"]+)">/g)].map((m) => m[1]!);
      assert.deepEqual(links, shown, role);
      for (const href of hidden) assert.ok(!links.includes(href), `${role}: no ${href} tile`);
      // Every tile shown opens for this role.
      for (const href of links) assert.equal((await b.get(href)).status, 200, `${role} ${href}`);
      for (const href of hidden) assert.equal((await b.get(href)).status, 403, `${role} ${href}`);
    }
  });
});

eachDialect('two admins demoting each other at the same moment: one change wins, an active admin always remains', async (db) => {
  await withApp(db, async ({ user, clock }) => {
    const deps = { db: db.db, clock };
    const a = await user('admin', { email: 'a@firm.test', name: 'A Admin' });
    const b = await user('admin', { email: 'b@firm.test', name: 'B Admin' });
    // The seeded admin of the test firm steps down first, so A and B are the only active admins.
    for (const u of await db.db.selectFrom('auth_user').select('id').where('role', '=', 'admin').where('id', 'not in', [a.id, b.id]).execute()) {
      await updateUser(deps, systemContext('setup', 'cli'), u.id as string, { role: 'billing' });
    }
    for (let round = 0; round < 15; round++) {
      const results = await Promise.allSettled([
        updateUser(deps, systemContext(`r${round}a`, 'cli'), a.id, { role: 'billing' }),
        updateUser(deps, systemContext(`r${round}b`, 'cli'), b.id, { role: 'billing' }),
      ]);
      const active = await db.db.selectFrom('auth_user').select('id').where('role', '=', 'admin').where('disabled', '=', 0).execute();
      assert.equal(active.length, 1, `round ${round}: one active admin is left`);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, `round ${round}: one change wins`);
      const refused = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')!;
      assert.match(String((refused.reason as { fields?: Record<string, string> }).fields?.role), /last active admin/);
      // Both admins again for the next round.
      const demoted = [a.id, b.id].find((id) => !active.some((x) => x.id === id))!;
      await updateUser(deps, systemContext(`r${round}c`, 'cli'), demoted, { role: 'admin' });
    }
  });
});
