/**
 * The web shell: createApp(deps) returns the Hono app without listening, so tests call
 * app.request(). Middleware order: request id and logging, security headers, static
 * files, authentication (session cookie or API token), deny-by-default route guard,
 * CSRF check for unsafe methods, then the routes of the shell and of each module.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Hono } from 'hono';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { secureHeaders } from 'hono/secure-headers';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Logger } from 'pino';
import Type from 'typebox';
import type { Clock } from '../shared/clock.ts';
import type { Db, Dialect } from '../shared/db.ts';
import { newId, newToken } from '../shared/ids.ts';
import { createApi, createApiRegistry } from '../shared/web/api.ts';
import type { ApiRegistry } from '../shared/web/api.ts';
import { HttpError, errorBody, invalid } from '../shared/web/errors.ts';
import { NUL_MESSAGE, unsafeInput } from '../shared/web/validate.ts';
import { allow, declaredAudience, routeMatched } from '../shared/web/guard.ts';
import type { WebModule } from '../shared/web/module.ts';
import { isHtmx, render } from '../shared/web/render.ts';
import type { AppEnv } from '../shared/web/types.ts';
import { createViews } from '../shared/web/views.ts';
import { accountRoutes, adminRoutes, userApi } from './auth/routes.ts';
import { login, logout, resolveApiToken, resolveSession } from './auth/service.ts';

export interface AppConfig {
  /** Set the Secure flag on cookies (serve over HTTPS). */
  secureCookies: boolean;
  /** Trust X-Forwarded-For for the client address (behind a reverse proxy). */
  trustProxy: boolean;
  /** Largest request body accepted. */
  maxBodyBytes: number;
}

export interface AppDeps {
  db: Db;
  dialect: Dialect;
  clock: Clock;
  logger: Logger;
  /** Server secret (from app_setting) for anonymous CSRF tokens. */
  secret: string;
  config: AppConfig;
  modules: readonly WebModule[];
  /** The registry the modules' APIs registered in. */
  apiRegistry: ApiRegistry;
  /** Outbox health for /healthz. */
  outboxHealth(): Promise<{ pending: number; failing: number }>;
  rootDir: string;
}

export const SESSION_COOKIE = 'lb_session';
const PRE_COOKIE = 'lb_pre';
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function newApiRegistry(): ApiRegistry {
  return createApiRegistry({ title: 'Lexbill API', version: '1' });
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function clientIp(c: Context<AppEnv>, trustProxy: boolean): string | null {
  if (trustProxy) {
    // The last entry is the one our proxy appended; earlier ones are whatever the client sent.
    const fwd = c.req.header('x-forwarded-for')?.split(',').at(-1)?.trim();
    if (fwd) return fwd.slice(0, 64);
  }
  try {
    return getConnInfo(c).remote.address ?? null;
  } catch {
    return null;
  }
}

/** Printable ASCII without spaces, starting with one "/" not followed by "/" or "\\". */
const PLAIN_PATH = /^\/(?![/\\])[\x21-\x7e]*$/;
const NEXT_BASE = 'http://lexbill.invalid';
const MAX_NEXT = 2000;

/**
 * Where to send a browser after signing in: a plain path on this site, else "/".
 * Browsers drop tabs and newlines from URLs and read "\\" as "/" in a path, so anything
 * with a control character, a space, or a backslash in its path could turn into
 * "//host" on the way; it is refused rather than cleaned. The result is what the URL
 * parser resolves, so it is printable ASCII and always a valid Location header.
 */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || next.length > MAX_NEXT || !PLAIN_PATH.test(next)) return '/';
  if (next.split(/[?#]/, 1)[0]!.includes('\\')) return '/';
  let url: URL;
  try {
    url = new URL(next, NEXT_BASE);
  } catch {
    return '/';
  }
  if (url.origin !== NEXT_BASE) return '/';
  const path = url.pathname + url.search + url.hash;
  return PLAIN_PATH.test(path) ? path : '/';
}

/** The sign-in page, returning to `current` (a URL of this site) afterwards; else plain. */
function loginAfter(current: string | undefined, requestUrl: string): string {
  if (!current) return '/login';
  let url: URL;
  try {
    url = new URL(current);
  } catch {
    return '/login';
  }
  if (url.host !== new URL(requestUrl).host) return '/login';
  const next = safeNext(url.pathname + url.search);
  return next === '/' ? '/login' : `/login?next=${encodeURIComponent(next)}`;
}

export function createApp(deps: AppDeps): Hono<AppEnv> {
  const { db, clock, logger, config } = deps;
  const authDeps = { db, clock };
  const views = createViews(join(deps.rootDir, 'views'));
  const statics = new Map<string, { body: Buffer; type: string }>([
    ['/static/htmx.min.js', { body: readFileSync(join(deps.rootDir, 'node_modules/htmx.org/dist/htmx.min.js')), type: 'text/javascript; charset=utf-8' }],
    ['/static/app.js', { body: readFileSync(join(deps.rootDir, 'public/app.js')), type: 'text/javascript; charset=utf-8' }],
    ['/static/app.css', { body: readFileSync(join(deps.rootDir, 'public/app.css')), type: 'text/css; charset=utf-8' }],
    ['/static/favicon.svg', { body: readFileSync(join(deps.rootDir, 'public/favicon.svg')), type: 'image/svg+xml' }],
  ]);
  const anonCsrf = (pre: string): string => createHmac('sha256', deps.secret).update(`csrf:${pre}`).digest('base64url');

  const app = new Hono<AppEnv>();

  // Request id, logger and command context for every request.
  app.use('*', async (c, next) => {
    const given = c.req.header('x-request-id');
    const requestId = given && /^[A-Za-z0-9._-]{8,80}$/.test(given) ? given : newId(clock);
    const log = logger.child({ reqId: requestId });
    c.set('requestId', requestId);
    c.set('log', log);
    c.set('views', views);
    c.set('user', null);
    c.set('authVia', null);
    c.set('csrfToken', '');
    c.set('command', { actorId: null, actorLabel: 'anonymous', correlationId: requestId, causationId: null, ip: clientIp(c, config.trustProxy) });
    const started = performance.now();
    await next();
    c.header('X-Request-Id', requestId);
    // Pages, fragments and redirects answer an htmx request differently (a fragment, an
    // HX-Redirect): every answer but a static file says so to caches.
    if (!c.req.path.startsWith('/static/') && !/(^|,)\s*hx-request\s*(,|$)/i.test(c.res.headers.get('Vary') ?? '')) c.header('Vary', 'HX-Request', { append: true });
    log.info({ method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - started) }, 'request');
  });

  app.use('*', secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'self'"], scriptSrc: ["'self'"], styleSrc: ["'self'"], imgSrc: ["'self'", 'data:'],
      connectSrc: ["'self'"], formAction: ["'self'"], frameAncestors: ["'none'"], baseUri: ["'self'"], objectSrc: ["'none'"],
    },
    referrerPolicy: 'same-origin',
    strictTransportSecurity: config.secureCookies ? 'max-age=31536000' : false,
  }));
  app.use('*', bodyLimit({ maxSize: config.maxBodyBytes, onError: () => { throw new HttpError(413, 'too_large', `Request body over ${config.maxBodyBytes} bytes`); } }));

  app.get('/static/*', allow('public'), (c) => {
    const f = statics.get(c.req.path);
    if (!f) throw new HttpError(404, 'not_found', 'File not found');
    c.header('Cache-Control', 'public, max-age=3600');
    return c.body(new Uint8Array(f.body), 200, { 'Content-Type': f.type });
  });

  app.get('/favicon.ico', allow('public'), (c) => c.redirect('/static/favicon.svg', 301));

  // Authentication: an API token (Bearer) or the session cookie.
  app.use('*', async (c, next) => {
    const authz = c.req.header('authorization');
    // The scheme is case-insensitive (RFC 9110 11.1): "bearer" as some clients send it (review 57 F8).
    const bearer = authz !== undefined ? /^bearer\s+(.*)$/is.exec(authz) : null;
    if (bearer) {
      const user = await resolveApiToken(authDeps, bearer[1]!.trim());
      if (!user) throw new HttpError(401, 'unauthenticated', 'The API token is unknown or revoked');
      c.set('user', user);
      c.set('authVia', 'token');
    } else {
      const token = getCookie(c, SESSION_COOKIE);
      const session = token ? await resolveSession(authDeps, token) : null;
      if (session) {
        c.set('user', session.user);
        c.set('authVia', 'session');
        c.set('csrfToken', session.csrfToken);
      } else {
        if (token) deleteCookie(c, SESSION_COOKIE, { path: '/' });
        let pre = getCookie(c, PRE_COOKIE);
        if (!pre || !/^[A-Za-z0-9_-]{20,80}$/.test(pre)) {
          pre = newToken(24);
          setCookie(c, PRE_COOKIE, pre, { httpOnly: true, sameSite: 'Lax', path: '/', secure: config.secureCookies });
        }
        c.set('csrfToken', anonCsrf(pre));
      }
    }
    const user = c.get('user');
    if (user) c.set('command', { ...c.get('command'), actorId: user.id, actorLabel: user.email });
    await next();
    // What a signed-in user is shown is not kept by the browser (Back after signing out shows nothing of the firm's),
    // unless the route chose otherwise (a PDF; the mass billing confirmation Back returns to).
    if (user && !c.res.headers.has('Cache-Control')) c.header('Cache-Control', 'no-store');
  });

  // Deny by default: a matched route that declared no audience is refused before it runs.
  app.use('*', async (c, next) => {
    if (routeMatched(c) && declaredAudience(c) === null) {
      c.get('log').error({ path: c.req.path, method: c.req.method }, 'route declares no roles; refused');
      throw new HttpError(403, 'forbidden', 'This route declares no roles, so nobody may use it');
    }
    await next();
  });

  // A form body is read once here (routes reuse the parsed form): one that cannot be read
  // (a broken multipart body, no boundary) is the sender's error, a 400, never a 500.
  // Pages take forms, the API JSON: a page's form route sent another body (JSON read as an empty
  // form would apply "nothing ticked") is refused. Text holding NUL, in a query or a form, is
  // refused naming the field (Postgres cannot store it; nobody types it).
  app.use('*', async (c, next) => {
    if (/%00/i.test(c.req.url)) {
      // A path holding NUL names no page, bill or record (and reached SQL through a route's parameter: a 500 on Postgres).
      let path = c.req.path;
      try { path = decodeURIComponent(c.req.path); } catch { /* a malformed escape: the router answers it */ }
      if (path.includes('\u0000')) throw new HttpError(404, 'not_found', 'No such page: the address holds the NUL character (U+0000)');
      const bad = unsafeInput(c.req.queries());
      if (Object.keys(bad).length > 0) throw invalid(Object.fromEntries(Object.keys(bad).map((k) => [k.replace(/\.\d+$/, ''), NUL_MESSAGE])));
    }
    const media = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    const form = media === 'multipart/form-data' || media === 'application/x-www-form-urlencoded';
    if (UNSAFE.has(c.req.method) && media !== '' && !form && !c.req.path.startsWith('/api/')) {
      throw new HttpError(415, 'unsupported_media_type', 'Pages take forms (application/x-www-form-urlencoded or multipart/form-data); send JSON to the API under /api/v1');
    }
    if (UNSAFE.has(c.req.method) && form) {
      let body: Record<string, unknown>;
      try {
        body = await c.req.parseBody({ all: true });
      } catch (err) {
        if (err instanceof HttpError) throw err;
        throw new HttpError(400, 'bad_form', 'The form could not be read. Reload the page and try again.');
      }
      const text = Object.fromEntries(Object.entries(body).map(([k, v]) => [k, Array.isArray(v) ? v.filter((x) => typeof x === 'string') : typeof v === 'string' ? v : '']));
      const bad = unsafeInput(text);
      if (Object.keys(bad).length > 0) throw invalid(Object.fromEntries(Object.keys(bad).map((k) => [k.replace(/\.\d+$/, ''), NUL_MESSAGE])));
    }
    await next();
  });

  // CSRF: unsafe methods from a browser must echo the session's token (form field or header).
  // Signing out with no live session changes nothing (there is nothing to end), so it needs
  // no token: an expired session's "Sign out" lands on the login page instead of a 403.
  app.use('*', async (c, next) => {
    const signOutWithoutSession = c.req.method === 'POST' && c.req.path === '/logout' && c.get('authVia') === null;
    // Not signed in (the session ended while the page was open) on a route that is not public: the route refuses it
    // anyway, so it is answered as such (the sign-in page, coming back to the page the form was on), not as a forged form.
    const audience = routeMatched(c) ? declaredAudience(c) : null;
    if (UNSAFE.has(c.req.method) && c.get('authVia') === null && !signOutWithoutSession && audience !== null && audience !== 'public') {
      throw new HttpError(401, 'unauthenticated', 'Your session has ended: sign in again');
    }
    if (UNSAFE.has(c.req.method) && c.get('authVia') !== 'token' && !signOutWithoutSession) {
      let sent = c.req.header('x-csrf-token') ?? '';
      if (!sent) {
        const type = c.req.header('content-type') ?? '';
        if (type.includes('application/x-www-form-urlencoded') || type.includes('multipart/form-data')) {
          const body = await c.req.parseBody();
          sent = typeof body._csrf === 'string' ? body._csrf : '';
        }
      }
      const expected = c.get('csrfToken');
      if (!expected || !sent || !safeEqual(sent, expected)) {
        throw new HttpError(403, 'csrf_failed', 'The form had expired or did not come from this site. Reload the page and try again.');
      }
    }
    await next();
  });

  /* ---------- shell routes ---------- */

  app.get('/healthz', allow('public'), async (c) => {
    try {
      const started = performance.now();
      await db.selectFrom('app_setting').select('key').limit(1).execute();
      const outbox = await deps.outboxHealth();
      return c.json({ status: 'ok', database: { dialect: deps.dialect, ms: Math.round(performance.now() - started) }, outbox });
    } catch (err) {
      c.get('log').error({ err }, 'health check failed');
      return c.json({ status: 'error', database: 'unreachable' }, 503);
    }
  });

  app.get('/login', allow('public'), (c) => {
    if (c.get('user')) return c.redirect(safeNext(c.req.query('next')));
    return render(c, 'auth/login.njk', { next: safeNext(c.req.query('next')) });
  });

  app.post('/login', allow('public'), async (c) => {
    const body = await c.req.parseBody();
    const email = typeof body.email === 'string' ? body.email : '';
    const password = typeof body.password === 'string' ? body.password : '';
    const next = safeNext(body.next);
    if (!email || !password) {
      return render(c, 'auth/login.njk', { next, email, error: 'Enter your email and password.' }, 422);
    }
    const result = await login(authDeps, {
      email, password, ip: c.get('command').ip, userAgent: c.req.header('user-agent') ?? null,
      previousSessionToken: getCookie(c, SESSION_COOKIE) ?? null, correlationId: c.get('requestId'),
    });
    if (!result.ok) {
      if (result.reason === 'throttled') {
        c.header('Retry-After', String(result.retryAfterSec ?? 900));
        return render(c, 'auth/login.njk', { next, email, error: `Too many failed sign-ins. Try again in ${Math.ceil((result.retryAfterSec ?? 900) / 60)} minutes.` }, 429);
      }
      return render(c, 'auth/login.njk', { next, email, error: 'That email and password do not match an active account.' }, 401);
    }
    setCookie(c, SESSION_COOKIE, result.sessionToken, { httpOnly: true, sameSite: 'Lax', path: '/', secure: config.secureCookies });
    deleteCookie(c, PRE_COOKIE, { path: '/' });
    return c.redirect(next, 303);
  });

  // Public so that a browser whose session already ended is simply sent to sign in again;
  // a live session is ended only with its CSRF token (checked above).
  app.post('/logout', allow('public'), async (c) => {
    const token = getCookie(c, SESSION_COOKIE);
    if (token && c.get('authVia') === 'session') await logout(authDeps, c.get('command'), token);
    deleteCookie(c, SESSION_COOKIE, { path: '/' });
    return c.redirect('/login', 303);
  });

  app.get('/', allow('authenticated'), (c) => render(c, 'home.njk', { modules: deps.modules.map((m) => m.name) }));

  app.route('/admin', adminRoutes({ db, clock }));
  app.route('/account', accountRoutes({ db, clock }, SESSION_COOKIE, config.secureCookies));

  const shellApi = createApi(deps.apiRegistry);
  shellApi.route({
    method: 'get', path: '/me', summary: 'The signed-in user', tag: 'auth', audience: 'authenticated',
    response: Type.Object({ id: Type.String(), email: Type.String(), name: Type.String(), role: Type.String() }),
  }, async (c) => {
    const u = c.get('user')!;
    return { id: u.id, email: u.email, name: u.name, role: u.role };
  });
  userApi(shellApi, { db, clock });
  app.route('/api/v1', shellApi.app);
  for (const m of deps.modules) {
    app.route(m.mount, m.pages);
    if (m.api) app.route('/api/v1', m.api);
  }
  app.get('/api/openapi.json', allow('public'), (c) => c.json(deps.apiRegistry.document()));

  /* ---------- errors ---------- */

  app.notFound((c) => {
    if (c.req.path.startsWith('/api/')) return c.json(errorBody(new HttpError(404, 'not_found', `No API route ${c.req.method} ${c.req.path}`)), 404);
    return render(c, isHtmx(c) ? 'errors/_error.njk' : 'errors/error.njk', { status: 404, title: 'Not found', message: 'There is no page at this address.' }, 404);
  });

  app.onError((err, c) => {
    const wantsJson = c.req.path.startsWith('/api/') || c.get('authVia') === 'token' || /^bearer\s/i.test(c.req.header('authorization') ?? '') || (c.req.header('accept') ?? '').startsWith('application/json');
    if (err instanceof HttpError) {
      if (err.status === 401 && !wantsJson) {
        if (isHtmx(c)) {
          // Back to the page the browser shows (htmx sends it), not the fragment's URL.
          c.header('HX-Redirect', loginAfter(c.req.header('hx-current-url'), c.req.url));
          return c.body(null, 401);
        }
        // Back to the page asked for after signing in, query string included; for a form sent (not a page asked
        // for), to the page it was sent from, when that is this site's.
        const asked = new URL(c.req.url);
        let back = asked.pathname + asked.search;
        if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
          const referer = c.req.header('referer');
          try { const from = referer ? new URL(referer) : null; back = from && from.origin === asked.origin ? from.pathname + from.search : '/'; } catch { back = '/'; }
        }
        return c.redirect(`/login?next=${encodeURIComponent(safeNext(back))}`, 303);
      }
      if (wantsJson) {
        // What to send instead (RFC 9110 11.6.1): a token, as "Authorization: Bearer <token>".
        if (err.status === 401) c.header('WWW-Authenticate', 'Bearer realm="lexbill"');
        return c.json(errorBody(err), err.status);
      }
      return render(c, isHtmx(c) ? 'errors/_error.njk' : 'errors/error.njk', { status: err.status, title: err.code.replaceAll('_', ' '), message: err.message, fields: err.fields }, err.status as 400);
    }
    const log = c.get('log') ?? logger;
    log.error({ err }, 'unhandled error');
    const requestId = c.get('requestId') ?? '';
    if (wantsJson) return c.json(errorBody(new HttpError(500, 'internal', `Something went wrong (request ${requestId})`)), 500);
    return render(c, isHtmx(c) ? 'errors/_error.njk' : 'errors/error.njk', { status: 500, title: 'Something went wrong', message: `The error was logged with request id ${requestId}. Nothing was changed.` }, 500);
  });

  return app;
}
