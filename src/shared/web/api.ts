/**
 * JSON API routes declared once: the typebox schemas validate input and also produce the
 * OpenAPI document, so the documentation cannot drift from what the server accepts.
 */
import { Hono } from 'hono';
import type { Context } from 'hono';
import type { Static, TSchema } from 'typebox';
import Type from 'typebox';
import { HttpError, invalid } from './errors.ts';
import { allow } from './guard.ts';
import type { Audience } from './guard.ts';
import type { AppEnv } from './types.ts';
import { parseForm, parseWith } from './validate.ts';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface ApiSpec<B extends TSchema = TSchema, Q extends TSchema = TSchema, R extends TSchema = TSchema> {
  method: HttpMethod;
  /** Path under /api/v1, Hono style: `/clients/:id`. */
  path: string;
  summary: string;
  tag: string;
  audience: Audience;
  body?: B;
  query?: Q;
  response: R;
  /** Success status; 200 unless given. */
  status?: 200 | 201 | 202 | 204;
  /** Other answers with the response schema (a route registered by hand that answers 200 or 201), described. */
  otherStatuses?: readonly { status: 200 | 201 | 202; description: string }[];
  /** Media types the body is taken in besides JSON (described as text). */
  otherBodyTypes?: readonly string[];
  /** A path parameter's only values. */
  pathValues?: Readonly<Record<string, readonly string[]>>;
}

export interface ApiRegistry {
  readonly specs: ApiSpec[];
  document(): Record<string, unknown>;
}

export const ErrorSchema = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    fields: Type.Record(Type.String(), Type.String()),
  }),
}, { $id: 'Error' });

/**
 * The error answers a route can give, from what it declares (review 57 F7): the shell's and createApi's own
 * refusals, and the ones every write may meet. Each is an `Error` body; `default` stays for the rest (a 500).
 */
export function errorStatuses(s: Pick<ApiSpec, 'method' | 'path' | 'audience' | 'body' | 'otherBodyTypes'>): [number, string][] {
  const out: [number, string][] = [];
  const writes = s.method !== 'get';
  if (writes) out.push([400, s.body ? 'The body is not valid JSON' : 'A body was sent to a request that takes none']);
  if (s.audience !== 'public') out.push([401, 'Not signed in: no session, or no valid API token']);
  // A write sent with a browser session needs its CSRF token (X-CSRF-Token) whatever the audience (review 63 F7).
  const roles = Array.isArray(s.audience) ? `signed in without one of the roles: ${(s.audience as readonly string[]).join(', ')}` : null;
  const csrf = writes && s.audience !== 'public' ? 'a browser session\'s write without its CSRF token (X-CSRF-Token)' : null;
  if (roles || csrf) out.push([403, [roles, csrf].filter(Boolean).join('; or ').replace(/^./, (ch) => ch.toUpperCase())]);
  if (/:[A-Za-z_]+/.test(s.path)) out.push([404, 'No such record (or a path value the route does not take)']);
  if (writes) out.push([409, 'Refused as things stand: the record changed since it was read, or its state does not allow this (the message says which)']);
  if (writes) out.push([413, 'The body is larger than the server takes']);
  if (s.body) out.push([415, `The body is not sent as ${['application/json', ...(s.otherBodyTypes ?? [])].join(' or ')}`]);
  out.push([422, writes ? 'A field (of the query or the body) is missing, unknown or invalid: `fields` names each' : 'A query field is unknown or invalid: `fields` names each']);
  return out;
}

export function createApiRegistry(info: { title: string; version: string }): ApiRegistry {
  const specs: ApiSpec[] = [];
  return {
    specs,
    document() {
      const paths: Record<string, Record<string, unknown>> = {};
      for (const s of specs) {
        const p = '/api/v1' + s.path.replace(/:([A-Za-z_]+)/g, '{$1}');
        const params = [...s.path.matchAll(/:([A-Za-z_]+)/g)].map((m) => ({
          name: m[1], in: 'path', required: true, schema: { type: 'string', ...(s.pathValues?.[m[1]!] ? { enum: [...s.pathValues[m[1]!]!] } : {}) },
        }));
        const query = s.query ? Object.entries((s.query as { properties?: Record<string, unknown> }).properties ?? {}).map(([name, schema]) => ({
          name, in: 'query', required: ((s.query as { required?: string[] }).required ?? []).includes(name), schema,
        })) : [];
        const ok = String(s.status ?? 200);
        paths[p] ??= {};
        paths[p][s.method] = {
          summary: s.summary,
          tags: [s.tag],
          'x-roles': s.audience,
          parameters: [...params, ...query],
          ...(s.body ? { requestBody: { required: true, content: { 'application/json': { schema: s.body }, ...Object.fromEntries((s.otherBodyTypes ?? []).map((t) => [t, { schema: { type: 'string' } }])) } } } : {}),
          responses: {
            [ok]: ok === '204' ? { description: 'No content' } : { description: 'OK', content: { 'application/json': { schema: s.response } } },
            ...Object.fromEntries((s.otherStatuses ?? []).map((o) => [String(o.status), { description: o.description, content: { 'application/json': { schema: s.response } } }])),
            ...Object.fromEntries(errorStatuses(s).map(([status, description]) => [String(status), { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }])),
            default: { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
          },
          security: s.audience === 'public' ? [] : [{ bearer: [] }, { session: [] }],
        };
      }
      return {
        openapi: '3.1.0',
        info,
        paths,
        components: {
          schemas: { Error: ErrorSchema },
          securitySchemes: {
            bearer: { type: 'http', scheme: 'bearer', description: 'API token from `lexbill user token --email E`' },
            session: { type: 'apiKey', in: 'cookie', name: 'lb_session', description: 'Browser session; unsafe methods also need the X-CSRF-Token header' },
          },
        },
      };
    },
  };
}

export interface ApiInput<B extends TSchema, Q extends TSchema> {
  body: Static<B>;
  query: Static<Q>;
}

/** A sub-app of API routes, mounted by the shell at /api/v1. */
export function createApi(registry: ApiRegistry) {
  const app = new Hono<AppEnv>();
  function route<B extends TSchema, Q extends TSchema, R extends TSchema>(
    spec: ApiSpec<B, Q, R>,
    handler: (c: Context<AppEnv>, input: ApiInput<B, Q>) => Promise<Static<R> | null>,
  ): void {
    registry.specs.push(spec as unknown as ApiSpec);
    app.on(spec.method.toUpperCase(), spec.path, allow(spec.audience), async (c) => {
      // A query key or a body the route does not take is named, not ignored (review 57 F4: "?expectedVersion=1", the
      // matters API's name for billing's "version", approved a bill that had changed, the check silently skipped).
      const known = new Set(Object.keys((spec.query as { properties?: Record<string, unknown> } | undefined)?.properties ?? {}));
      const strangers = Object.keys(c.req.queries()).filter((k) => !known.has(k));
      if (strangers.length > 0) throw invalid(Object.fromEntries(strangers.slice(0, 20).map((k) => [k, 'is not a known field'])));
      let body: unknown = undefined;
      if (!spec.body && c.req.method !== 'GET' && c.req.method !== 'HEAD') {
        const raw = await c.req.text();
        const type = (c.req.header('content-type') ?? '').toLowerCase();
        // A form of the session's CSRF token alone (a browser client's way to send it) is no body; nor is JSON null.
        const formKeys = type.startsWith('application/x-www-form-urlencoded') ? [...new URLSearchParams(raw).keys()].filter((k) => k !== '_csrf') : null;
        if (formKeys !== null) {
          if (formKeys.length > 0) throw invalid(Object.fromEntries(formKeys.slice(0, 20).map((k) => [k, 'is not a known field (this request takes no body)'])));
        } else if (raw.trim() !== '' && raw.trim() !== 'null') {
          let sent: unknown;
          try { sent = JSON.parse(raw); } catch { throw new HttpError(400, 'unexpected_body', 'This request takes no body (send none, or {})'); }
          if (sent === null || typeof sent !== 'object' || Array.isArray(sent)) throw new HttpError(400, 'unexpected_body', 'This request takes no body (send none, or {})');
          const keys = Object.keys(sent);
          if (keys.length > 0) throw invalid(Object.fromEntries(keys.slice(0, 20).map((k) => [k, 'is not a known field (this request takes no body)'])));
        }
      }
      if (spec.body) {
        const type = c.req.header('content-type') ?? '';
        if (!type.includes('application/json')) throw new HttpError(415, 'unsupported_media_type', 'Send the body as application/json');
        try { body = await c.req.json(); } catch { throw new HttpError(400, 'bad_json', 'The body is not valid JSON'); }
        body = parseWith(spec.body, body);
      }
      const query = spec.query ? parseForm(spec.query, c.req.query()) : {};
      const result = await handler(c, { body: body as Static<B>, query: query as Static<Q> });
      if ((spec.status ?? 200) === 204 || result === null) return c.body(null, 204);
      return c.json(result as object, (spec.status ?? 200) as 200 | 201 | 202);
    });
  }
  return { app, route };
}
