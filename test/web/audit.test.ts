/**
 * The audit log records who signed in and who changed an account (before and after),
 * and the admin audit page shows it.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { unescapeHtml, withApp } from '../support/app.ts';

interface AuditRow {
  id: string; at: string; actor_id: string | null; actor_label: string; action: string; entity_type: string; entity_id: string;
  before_json: string | null; after_json: string | null; correlation_id: string; ip: string | null;
}

eachDialect('a login and a role change are audit-logged with actor, before and after, and shown on /admin/audit', async (db) => {
  await withApp(db, async ({ browser, user, clock }) => {
    const admin = await user('admin', { email: 'ada@firm.test', name: 'Ada Admin' });
    const target = await user('timekeeper', { email: 'tim@firm.test', name: 'Tim Keeper' });
    const b = browser('192.0.2.10');
    assert.equal((await b.login(admin.email)).status, 303);
    await b.get('/admin/users');

    clock.advanceMs(60_000);
    const res = await b.postJson(`/api/v1/users/${target.id}`, { role: 'billing' },
      { method: 'PATCH', headers: { 'x-csrf-token': b.csrf!, 'x-request-id': 'audit-test-request-1' } });
    assert.equal(res.status, 200);
    assert.equal(res.json().role, 'billing');

    const rows = await db.db.selectFrom('audit_log').selectAll().orderBy('at').orderBy('id').execute() as AuditRow[];
    const login = rows.filter((r) => r.action === 'auth.login');
    assert.equal(login.length, 1);
    assert.equal(login[0]!.actor_id, admin.id);
    assert.equal(login[0]!.entity_type, 'user');
    assert.equal(login[0]!.entity_id, admin.id);
    assert.equal(login[0]!.ip, '192.0.2.10');
    assert.equal(login[0]!.at, '2026-03-02T09:00:00.000Z');

    const changed = rows.filter((r) => r.action === 'auth.user_changed');
    assert.equal(changed.length, 1);
    const c = changed[0]!;
    assert.equal(c.actor_id, admin.id);
    assert.equal(c.actor_label, 'ada@firm.test');
    assert.equal(c.entity_type, 'user');
    assert.equal(c.entity_id, target.id);
    assert.equal(c.correlation_id, 'audit-test-request-1', 'the request id ties the row to the request');
    assert.equal(c.at, '2026-03-02T09:01:00.000Z');
    const before = JSON.parse(c.before_json ?? 'null');
    const after = JSON.parse(c.after_json ?? 'null');
    assert.equal(before.role, 'timekeeper');
    assert.equal(after.role, 'billing');
    assert.equal(before.email, 'tim@firm.test');
    assert.equal(after.name, 'Tim Keeper');
    assert.equal('password_hash' in after || 'passwordHash' in after, false, 'no password hash in the log');

    const page = await b.get('/admin/audit');
    assert.equal(page.status, 200);
    const text = unescapeHtml(page.text);
    assert.match(text, /<td>auth\.login<\/td>/);
    assert.match(text, /<td>auth\.user_changed<\/td>/);
    assert.match(text, /"role":"timekeeper"/);
    assert.match(text, /"role":"billing"/);
    assert.match(text, /<td>ada@firm\.test<\/td>/);
    // The newest entry comes first.
    assert.ok(text.indexOf('auth.user_changed') < text.indexOf('auth.login'));

    // Filtered to the changed user's history: the change, not the admin's login.
    const history = unescapeHtml((await b.get(`/admin/audit?entityType=user&entityId=${target.id}`)).text);
    assert.match(history, /auth\.user_changed/);
    assert.doesNotMatch(history, /<td>auth\.login<\/td>/);
    assert.match(history, /auth\.user_created/);
  });
});

eachDialect('a change through the admin form is audit-logged too, and a refused change is not', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const admin = await user('admin');
    const target = await user('readonly', { name: 'Riley Reader' });
    const b = browser();
    await b.login(admin.email);
    await b.get(`/admin/users/${target.id}`);
    const ok = await b.post(`/admin/users/${target.id}`, { name: 'Riley Reader', role: 'timekeeper', disabled: 'on' });
    assert.equal(ok.status, 303);
    // Demoting the only admin (yourself) is refused and leaves no audit row.
    const refused = await b.post(`/admin/users/${admin.id}`, { name: admin.name, role: 'readonly' });
    assert.equal(refused.status, 422);
    const rows = await db.db.selectFrom('audit_log').selectAll().where('action', '=', 'auth.user_changed').execute() as AuditRow[];
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.entity_id, target.id);
    const before = JSON.parse(rows[0]!.before_json!);
    const after = JSON.parse(rows[0]!.after_json!);
    assert.deepEqual([before.role, before.disabled], ['readonly', false]);
    assert.deepEqual([after.role, after.disabled], ['timekeeper', true]);
  });
});
