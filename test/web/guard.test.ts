/**
 * Deny by default: a route that declares no audience is refused before its handler runs,
 * every route of the real app declares one, and roles are enforced.
 */
import assert from 'node:assert/strict';
import { Hono } from 'hono';
import pino from 'pino';
import { ROOT_DIR } from '../../src/main.ts';
import { manualClock } from '../../src/shared/clock.ts';
import { systemContext } from '../../src/shared/events.ts';
import { allow, declaredAudience } from '../../src/shared/web/guard.ts';
import type { Audience } from '../../src/shared/web/guard.ts';
import type { WebModule } from '../../src/shared/web/module.ts';
import type { AppEnv } from '../../src/shared/web/types.ts';
import { createApp, newApiRegistry } from '../../src/web/app.ts';
import { createApiToken, createUser } from '../../src/web/auth/service.ts';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { Browser, PASSWORD, START, withApp } from '../support/app.ts';

type RouteInfo = { method: string; path: string; handler: Function };

/**
 * The audience a route declared, found the way the shell finds it: mount the route's
 * handlers (exactly as registered) in a probe app whose first middleware asks
 * declaredAudience() and answers without running them.
 */
/** A path that matches the route: params become a UUID (which also satisfies id-pattern constraints). */
function concretePath(path: string): string {
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const ch = path[i]!;
    if (ch === '*') { out += 'x'; continue; }
    if (ch !== ':') { out += ch; continue; }
    while (i + 1 < path.length && /[A-Za-z0-9_]/.test(path[i + 1]!)) i++;
    if (path[i + 1] === '{') {
      let depth = 0;
      do { i++; if (path[i] === '{') depth++; else if (path[i] === '}') depth--; } while (depth > 0 && i < path.length);
    }
    out += '01a208c6-eede-76f0-a6de-38a91c615946';
  }
  return out;
}

async function audienceOf(group: readonly RouteInfo[]): Promise<Audience | null | 'unmatched'> {
  const first = group[0]!;
  const probe = new Hono();
  let found: Audience | null | 'unmatched' = 'unmatched';
  probe.use('*', async (c) => {
    found = declaredAudience(c);
    return c.body(null, 204);
  });
  for (const r of group) probe.on(r.method, r.path, r.handler as never);
  const concrete = concretePath(first.path);
  await probe.request(`http://probe.test${concrete}`, { method: first.method });
  return found;
}

/** Routes of an app grouped by method and path, skipping `use` middleware (method ALL). */
function routeGroups(app: Hono<any>): Map<string, RouteInfo[]> {
  const groups = new Map<string, RouteInfo[]>();
  for (const r of app.routes) {
    if (r.method === 'ALL') continue;
    const key = `${r.method} ${r.path}`;
    const list = groups.get(key) ?? [];
    list.push(r);
    groups.set(key, list);
  }
  return groups;
}

/** An app built through the real createApp, with deps as src/main.ts wires them, plus the given modules. */
async function appWith(db: TestDb, modules: WebModule[]) {
  const clock = manualClock(START);
  const app = createApp({
    db: db.db, dialect: db.dialect, clock, logger: pino({ level: 'silent' }), secret: 'test-secret-0123456789abcdef',
    config: { trustProxy: true, secureCookies: false, maxBodyBytes: 1_000_000 },
    modules, apiRegistry: newApiRegistry(), rootDir: ROOT_DIR,
    outboxHealth: async () => ({ pending: 0, failing: 0 }),
  });
  return { app, clock };
}

eachDialect('a module route without allow(...) is refused with 403 and its handler never runs', async (db) => {
  const ran: string[] = [];
  const pages = new Hono<AppEnv>();
  pages.get('/', (c) => { ran.push('GET /rogue'); return c.text('secret page'); });
  pages.post('/wipe', (c) => { ran.push('POST /rogue/wipe'); return c.text('wiped'); });
  pages.get('/fine', allow('authenticated'), (c) => { ran.push('GET /rogue/fine'); return c.text('fine page'); });
  const api = new Hono<AppEnv>();
  api.get('/rogue', (c) => { ran.push('GET /api/v1/rogue'); return c.json({ secret: true }); });
  const { app, clock } = await appWith(db, [{ name: 'rogue', mount: '/rogue', pages, api }]);

  const ctx = systemContext('guard-test', 'test');
  const admin = await createUser({ db: db.db, clock }, ctx, { email: 'admin@firm.test', name: 'Ada Admin', role: 'admin', password: PASSWORD });
  const { token } = await createApiToken({ db: db.db, clock }, ctx, admin.email, 'guard');

  // Anonymous: refused outright (not even sent to sign in).
  const anon = new Browser(app);
  const a = await anon.get('/rogue');
  assert.equal(a.status, 403);
  assert.match(a.text, /declares no roles/);
  assert.doesNotMatch(a.text, /secret page/);

  // An admin with a session: still refused, for GET and for a POST with a valid CSRF token.
  const b = new Browser(app);
  assert.equal((await b.login(admin.email)).status, 303);
  assert.equal((await b.get('/')).status, 200);
  const page = await b.get('/rogue');
  assert.equal(page.status, 403);
  assert.match(page.text, /This route declares no roles, so nobody may use it/);
  const post = await b.post('/rogue/wipe', {});
  assert.equal(post.status, 403);
  assert.doesNotMatch(post.text, /wiped/);

  // An admin API token on the module's API route: a JSON 403.
  const apiRes = await b.request('GET', '/api/v1/rogue', { headers: { authorization: `Bearer ${token}` } });
  assert.equal(apiRes.status, 403);
  assert.deepEqual(apiRes.json(), { error: { code: 'forbidden', message: 'This route declares no roles, so nobody may use it', fields: {} } });

  assert.deepEqual(ran, [], 'no undeclared handler ran');
  // The guarded route in the same module works, so the refusals above are the guard's doing.
  const fine = await b.get('/rogue/fine');
  assert.equal(fine.status, 200);
  assert.equal(fine.text, 'fine page');
  assert.deepEqual(ran, ['GET /rogue/fine']);
});

eachDialect('an all(...) route without allow(...) is refused too, while use(...) middleware alone is not a route', async (db) => {
  const ran: string[] = [];
  const pages = new Hono<AppEnv>();
  pages.use('*', async (c, next) => { ran.push(`mw ${c.req.path}`); await next(); });
  pages.all('/hook', (c) => { ran.push('hook'); return c.text('hook ran'); });
  pages.all('/hooks/*', (c) => { ran.push('hooks'); return c.text('hooks ran'); });
  pages.all('/open', allow('public'), (c) => { ran.push('open'); return c.text('open ran'); });
  const { app } = await appWith(db, [{ name: 'hooks', mount: '/hooks-module', pages }]);
  const b = new Browser(app);

  for (const path of ['/hooks-module/hook', '/hooks-module/hooks/deep']) {
    const res = await b.get(path);
    assert.equal(res.status, 403, path);
    assert.match(res.text, /declares no roles/);
    const post = await b.request('PUT', path, { headers: { accept: 'application/json' } });
    assert.equal(post.status, 403, `PUT ${path}`);
    assert.equal(post.json().error.code, 'forbidden', 'refused by the guard, before the CSRF check');
  }
  assert.deepEqual(ran.filter((r) => !r.startsWith('mw')), [], 'no undeclared all() handler ran');
  const open = await b.get('/hooks-module/open');
  assert.equal(open.status, 200);
  assert.equal(open.text, 'open ran');
  // A path only the module's middleware matches is still a plain 404, not a refusal.
  const missing = await b.get('/hooks-module/nothing-here');
  assert.equal(missing.status, 404);
  assert.match(missing.text, /There is no page at this address/);
});

eachDialect('every route of the real app declares an audience, and only the expected ones are public', async (db) => {
  await withApp(db, async ({ app, browser }) => {
    const groups = routeGroups(app);
    const audiences = new Map<string, Audience | null | 'unmatched'>();
    for (const [key, group] of groups) audiences.set(key, await audienceOf(group));
    const undeclared = [...audiences].filter(([, a]) => a === null || a === 'unmatched').map(([k]) => k);
    assert.deepEqual(undeclared, [], 'routes without allow(...)');

    for (const expected of ['GET /', 'GET /login', 'POST /login', 'POST /logout', 'GET /healthz', 'GET /admin/users', 'POST /admin/users',
      'GET /admin/users/:id', 'POST /admin/users/:id', 'GET /admin/audit', 'GET /api/v1/me', 'GET /api/v1/users', 'POST /api/v1/users',
      'PATCH /api/v1/users/:id', 'GET /api/openapi.json', 'GET /matters', 'GET /billing', 'GET /ledger', 'GET /trust', 'GET /ebilling']) {
      assert.ok(audiences.has(expected), `${expected} is registered`);
    }
    assert.deepEqual(audiences.get('GET /admin/users'), ['admin']);
    assert.deepEqual(audiences.get('PATCH /api/v1/users/:id'), ['admin']);
    assert.equal(audiences.get('GET /api/v1/me'), 'authenticated');
    // Signing out is public so that a browser whose session already ended lands on /login
    // (a live session is still ended only with its CSRF token: test/web/redirects.test.ts).
    assert.equal(audiences.get('POST /logout'), 'public');
    const publicRoutes = [...audiences].filter(([, a]) => a === 'public').map(([k]) => k).sort();
    assert.deepEqual(publicRoutes, ['GET /api/openapi.json', 'GET /favicon.ico', 'GET /healthz', 'GET /login', 'GET /static/*', 'POST /login', 'POST /logout']);

    // The probe can tell: a bare handler has no audience.
    assert.equal(await audienceOf([{ method: 'GET', path: '/bare', handler: () => new Response('x') }]), null);

    // And the app agrees: every non-public GET page refuses an anonymous visitor.
    const anon = browser();
    for (const [key, a] of audiences) {
      const [method, path] = key.split(' ') as [string, string];
      if (method !== 'GET' || a === 'public') continue;
      const res = await anon.get(concretePath(path));
      if (path.startsWith('/api/')) {
        assert.equal(res.status, 401, key);
        assert.equal(res.json().error.code, 'unauthenticated', key);
      } else {
        assert.equal(res.status, 303, key);
        assert.match(res.location ?? '', /^\/login\?next=/, key);
      }
    }
  });
});

eachDialect('a readonly user gets 403 on /admin/users and on POST /api/v1/users', async (db) => {
  await withApp(db, async ({ browser, user, token }) => {
    const reader = await user('readonly', { name: 'Riley Reader' });
    const b = browser();
    await b.login(reader.email);
    const home = await b.get('/');
    assert.equal(home.status, 200);
    assert.doesNotMatch(home.text, /href="\/admin\/users"/, 'no Admin link for a reader');

    const admin = await b.get('/admin/users');
    assert.equal(admin.status, 403);
    assert.match(admin.text, /This needs one of the roles: admin/);
    assert.doesNotMatch(admin.text, /Add a staff account/);
    assert.equal((await b.get('/billing')).status, 200, 'readers may read billing');

    const readerToken = await token(reader.email);
    const before = await db.db.selectFrom('auth_user').select('id').execute();
    const create = await b.postJson('/api/v1/users', { email: 'sneaky@firm.test', name: 'Sneaky', role: 'admin', password: 'a long enough password' },
      { headers: { authorization: `Bearer ${readerToken}` } });
    assert.equal(create.status, 403);
    assert.equal(create.json().error.code, 'forbidden');
    const list = await b.request('GET', '/api/v1/users', { headers: { authorization: `Bearer ${readerToken}` } });
    assert.equal(list.status, 403);
    const after = await db.db.selectFrom('auth_user').select('id').execute();
    assert.equal(after.length, before.length, 'nothing was created');
    const me = await b.request('GET', '/api/v1/me', { headers: { authorization: `Bearer ${readerToken}` } });
    assert.equal(me.status, 200, 'the token itself is fine');
  });
});

eachDialect('a timekeeper cannot reach /admin', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const keeper = await user('timekeeper', { name: 'Priya Partner' });
    const b = browser();
    await b.login(keeper.email);
    assert.equal((await b.get('/matters')).status, 200);
    for (const path of ['/admin/users', '/admin/audit', `/admin/users/${keeper.id}`, '/billing']) {
      const res = await b.get(path);
      assert.equal(res.status, 403, path);
    }
    assert.notEqual((await b.get('/admin')).status, 200);
    // Even with a valid CSRF token, a timekeeper cannot change accounts.
    await b.get('/');
    const promote = await b.post(`/admin/users/${keeper.id}`, { name: 'Priya Partner', role: 'admin' });
    assert.equal(promote.status, 403);
    const create = await b.post('/admin/users', { email: 'x@firm.test', name: 'X', role: 'admin', password: 'a long enough password' });
    assert.equal(create.status, 403);
    const rows = await db.db.selectFrom('auth_user').select(['email', 'role']).execute() as { email: string; role: string }[];
    assert.deepEqual(rows, [{ email: keeper.email, role: 'timekeeper' }]);
  });
});
