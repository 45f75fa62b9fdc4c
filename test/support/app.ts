/**
 * The real application over a test database, plus a tiny cookie-jar browser that talks
 * to it through `app.request()` (no sockets). The browser keeps cookies from Set-Cookie,
 * remembers the CSRF token of the last page it saw (the `csrf-token` meta tag or a hidden
 * `_csrf` input) and sends X-Forwarded-For with its own address (the app trusts the proxy).
 */
import pino from 'pino';
import { buildRuntime } from '../../src/main.ts';
import type { Runtime } from '../../src/main.ts';
import { manualClock } from '../../src/shared/clock.ts';
import type { Outputs } from '../../src/shared/ports.ts';
import { systemContext } from '../../src/shared/events.ts';
import type { Role } from '../../src/shared/web/types.ts';
import { createApiToken, createUser } from '../../src/web/auth/service.ts';
import type { UserView } from '../../src/web/auth/service.ts';
import type { TestDb } from './db.ts';

export const START = '2026-03-02T09:00:00Z';
export const PASSWORD = 'correct horse battery staple';

export type TestClock = ReturnType<typeof manualClock>;
type Fetchable = { request(input: string, init?: RequestInit): Response | Promise<Response> };

/** A response read once: status, headers, body text and the cookies it set. */
export interface Page {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** Raw Set-Cookie header values. */
  readonly setCookies: string[];
  /** The Location header, or null. */
  readonly location: string | null;
  json<T = any>(): T;
  /** The raw Set-Cookie header for one cookie name, or undefined. */
  cookie(name: string): string | undefined;
}

/** Undo the HTML escaping Nunjucks applies, for assertions on text. */
export function unescapeHtml(s: string): string {
  return s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** The CSRF token a page carries: the meta tag, else the first hidden `_csrf` input. */
export function csrfFrom(html: string): string | null {
  const meta = /<meta name="csrf-token" content="([^"]*)"/.exec(html)?.[1];
  if (meta) return meta;
  const input = /name="_csrf" value="([^"]*)"/.exec(html)?.[1];
  return input || null;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  body?: RequestInit['body'];
}

export class Browser {
  readonly cookies = new Map<string, string>();
  /** CSRF token from the last page that carried one. */
  csrf: string | null = null;
  last: Page | null = null;

  constructor(private readonly app: Fetchable, public ip: string = '203.0.113.10') {}

  async request(method: string, path: string, opts: RequestOptions = {}): Promise<Page> {
    const headers = new Headers(opts.headers);
    if (!headers.has('x-forwarded-for')) headers.set('x-forwarded-for', this.ip);
    if (this.cookies.size > 0 && !headers.has('cookie')) {
      headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    const res = await this.app.request(`http://lexbill.test${path}`, { method, headers, body: opts.body ?? null });
    const text = await res.text();
    const setCookies = res.headers.getSetCookie();
    for (const sc of setCookies) this.store(sc);
    if ((res.headers.get('content-type') ?? '').includes('text/html')) {
      const token = csrfFrom(text);
      if (token) this.csrf = token;
    }
    const page: Page = {
      status: res.status,
      headers: res.headers,
      text,
      setCookies,
      location: res.headers.get('location'),
      json: () => JSON.parse(text),
      cookie: (name) => setCookies.find((c) => c.startsWith(`${name}=`)),
    };
    this.last = page;
    return page;
  }

  private store(setCookie: string): void {
    const [pair, ...attrs] = setCookie.split(';');
    const eq = pair!.indexOf('=');
    const name = pair!.slice(0, eq).trim();
    const value = pair!.slice(eq + 1).trim();
    const expired = attrs.some((a) => {
      const [k, v] = a.split('=').map((s) => s.trim());
      if (k?.toLowerCase() === 'max-age') return Number(v) <= 0;
      if (k?.toLowerCase() === 'expires') return new Date(v ?? '').getTime() <= Date.now();
      return false;
    });
    if (expired || value === '') this.cookies.delete(name);
    else this.cookies.set(name, value);
  }

  get(path: string, headers: Record<string, string> = {}): Promise<Page> {
    return this.request('GET', path, { headers });
  }

  /**
   * Submit a form. The last page's CSRF token is added as `_csrf` unless `csrf` is
   * false (send none) or a string (send that instead).
   */
  post(path: string, form: Record<string, string>, opts: { csrf?: boolean | string; headers?: Record<string, string> } = {}): Promise<Page> {
    const fields = { ...form };
    if (opts.csrf !== false) {
      const token = typeof opts.csrf === 'string' ? opts.csrf : this.csrf;
      if (token) fields._csrf = token;
    }
    return this.request('POST', path, {
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...opts.headers },
      body: new URLSearchParams(fields).toString(),
    });
  }

  /** Send JSON (POST unless `method` says otherwise); headers as given, no CSRF added. */
  postJson(path: string, body: unknown, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Page> {
    return this.request(opts.method ?? 'POST', path, {
      headers: { 'content-type': 'application/json', accept: 'application/json', ...opts.headers },
      body: JSON.stringify(body),
    });
  }

  /** GET /login, then sign in with the form; returns the POST /login response. */
  async login(email: string, password: string = PASSWORD): Promise<Page> {
    await this.get('/login');
    return this.post('/login', { email, password, next: '/' });
  }
}

export interface TestApp {
  readonly runtime: Runtime;
  readonly app: Runtime['app'];
  readonly clock: TestClock;
  readonly db: TestDb;
  browser(ip?: string): Browser;
  /** Create a staff account directly through the auth service (one scrypt hash). */
  user(role: Role, opts?: { email?: string; name?: string; password?: string }): Promise<UserView>;
  /** An API token for an existing account. */
  token(email: string): Promise<string>;
  /** Stop background work. The database is left to eachDialect, which closes it. */
  close(): Promise<void>;
}

/** Build the real runtime over a test database, with a manual clock and silent logs. */
export async function startApp(db: TestDb, opts: { start?: string; outputs?: Outputs } = {}): Promise<TestApp> {
  const clock = manualClock(opts.start ?? START);
  const runtime = await buildRuntime(db, {
    clock,
    ...(opts.outputs ? { outputs: opts.outputs } : {}),
    logger: pino({ level: 'silent' }),
    config: { trustProxy: true, secureCookies: false, maxBodyBytes: 1_000_000 },
  });
  const deps = { db: db.db, clock };
  let ipSeq = 10;
  return {
    runtime,
    app: runtime.app,
    clock,
    db,
    browser: (ip) => new Browser(runtime.app, ip ?? `198.51.100.${ipSeq++}`),
    user: (role, o = {}) => createUser(deps, systemContext('test-setup', 'test'), {
      email: o.email ?? `${role}@firm.test`, name: o.name ?? `Test ${role[0]!.toUpperCase()}${role.slice(1)}`, role, password: o.password ?? PASSWORD,
    }),
    token: async (email) => (await createApiToken(deps, systemContext('test-setup', 'test'), email, 'test token')).token,
    // runtime.close() would also close the database, which eachDialect closes itself.
    close: () => runtime.relay.stop(),
  };
}

/** Run fn with a started app, stopping it afterwards. */
export async function withApp(db: TestDb, fn: (t: TestApp) => Promise<void>, opts: { start?: string; outputs?: Outputs } = {}): Promise<void> {
  const t = await startApp(db, opts);
  try {
    await fn(t);
  } finally {
    await t.close();
  }
}

/** The fields a browser would send for the form `formId` (its inputs, selects and textareas carrying form="formId"). */
export function formFields(html: string, formId: string): Record<string, string> {
  const out: Record<string, string> = {};
  const attr = (tag: string, name: string) => new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1];
  for (const m of html.matchAll(/<(input|select|textarea)\b([^>]*)>([\s\S]*?<\/\1>)?/g)) {
    const [, kind, attrs, body = ''] = m;
    const name = attr(attrs!, 'name');
    if (!name || attr(attrs!, 'form') !== formId) continue;
    if (kind === 'input') {
      const type = attr(attrs!, 'type') ?? 'text';
      if (type === 'checkbox') { if (/\schecked\b/.test(attrs!)) out[name] = 'on'; continue; }
      out[name] = unescapeHtml(attr(attrs!, 'value') ?? '');
    } else if (kind === 'textarea') out[name] = unescapeHtml(body.replace(/<\/textarea>$/, ''));
    else out[name] = unescapeHtml(/<option value="([^"]*)"[^>]*\sselected/.exec(body)?.[1] ?? /<option value="([^"]*)"/.exec(body)?.[1] ?? '');
  }
  return out;
}
