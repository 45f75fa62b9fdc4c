/**
 * The audit log records who signed in and who changed an account (before and after),
 * and the admin audit page shows it.
 */
import assert from 'node:assert/strict';
import { audit } from '../../src/shared/audit.ts';
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

/** Follow the page's "Older" link (the plain href), returning its href and hx-get. */
function olderLink(html: string): { href: string; hxGet: string } | null {
  const m = /<a href="([^"]*)" hx-get="([^"]*)"[^>]*>Older<\/a>/.exec(html);
  return m ? { href: unescapeHtml(m[1]!), hxGet: unescapeHtml(m[2]!) } : null;
}
const rowIds = (html: string): string[] => [...html.matchAll(/<td>probe (p-\d+)<\/td>/g)].map((m) => m[1]!);

eachDialect('"Older" reaches every audit row exactly once, even when hundreds share one timestamp', async (db) => {
  await withApp(db, async ({ browser, user, clock }) => {
    const admin = await user('admin');
    const ctx = { actorId: null, actorLabel: 'test', correlationId: 'audit-paging', causationId: null, ip: null };
    // 250 rows in one millisecond, then 30 a minute later: three pages of 100 and the rest.
    await db.db.transaction().execute(async (trx) => {
      for (let i = 0; i < 250; i++) await audit(trx, clock, ctx, { action: 'test.probe', entityType: 'probe', entityId: `p-${i}` });
    });
    clock.advanceMs(60_000);
    await db.db.transaction().execute(async (trx) => {
      for (let i = 250; i < 280; i++) await audit(trx, clock, ctx, { action: 'test.probe', entityType: 'probe', entityId: `p-${i}` });
    });
    const b = browser();
    await b.login(admin.email);
    for (const hx of [false, true]) {
      const seen: string[] = [];
      let url: string | null = '/admin/audit?entityType=probe';
      let pages = 0;
      while (url) {
        const page = await b.get(url, hx ? { 'hx-request': 'true' } : {});
        assert.equal(page.status, 200, url);
        seen.push(...rowIds(page.text));
        const link = olderLink(page.text);
        url = link ? (hx ? link.hxGet : link.href) : null;
        assert.ok(++pages <= 4, 'no endless paging');
      }
      assert.equal(pages, 3);
      assert.equal(seen.length, 280, `${hx ? 'htmx' : 'plain'}: every row was shown`);
      assert.equal(new Set(seen).size, 280, 'and each once');
      assert.deepEqual(seen.slice(0, 30).sort(), Array.from({ length: 30 }, (_, i) => `p-${250 + i}`).sort(), 'newest first');
    }
  });
});

eachDialect('"Older" keeps the audit filters with JavaScript on and off: the same URL for both', async (db) => {
  await withApp(db, async ({ browser, user, clock }) => {
    const admin = await user('admin');
    const ctx = { actorId: null, actorLabel: 'test', correlationId: 'audit-filters', causationId: null, ip: null };
    await db.db.transaction().execute(async (trx) => {
      for (let i = 0; i < 220; i++) {
        clock.advanceMs(1000);
        await audit(trx, clock, ctx, { action: 'test.probe', entityType: 'probe', entityId: i % 2 ? 'p-1' : 'p-0' });
        await audit(trx, clock, ctx, { action: 'test.other', entityType: 'other', entityId: 'p-1' });
      }
    });
    const b = browser();
    await b.login(admin.email);
    for (const hx of [false, true]) {
      const first = await b.get('/admin/audit?entityType=probe&entityId=p-1', hx ? { 'hx-request': 'true' } : {});
      assert.equal(first.status, 200);
      const link = olderLink(first.text);
      assert.ok(link, 'there is an older page');
      assert.equal(link.hxGet, link.href, 'htmx and the plain link ask for the same page');
      const url = new URL(link.href, 'http://x');
      assert.equal(url.searchParams.get('entityType'), 'probe');
      assert.equal(url.searchParams.get('entityId'), 'p-1');
      const older = await b.get(hx ? link.hxGet : link.href, hx ? { 'hx-request': 'true' } : {});
      assert.equal(older.status, 200);
      assert.doesNotMatch(older.text, /<td>other /, 'the filter still applies on the older page');
      assert.doesNotMatch(older.text, /<td>probe p-0<\/td>/);
    }
  });
});
