import { Hono } from 'hono';
import type { Context } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import Type from 'typebox';
import type { createApi } from '../../shared/web/api.ts';
import { HttpError, invalid } from '../../shared/web/errors.ts';
import { allow } from '../../shared/web/guard.ts';
import { page, render } from '../../shared/web/render.ts';
import { ROLES } from '../../shared/web/types.ts';
import type { AppEnv } from '../../shared/web/types.ts';
import { parseForm } from '../../shared/web/validate.ts';
import type { AuthDeps, UserView } from './service.ts';
import { changeOwnPassword, createUser, getUser, listLiveApiTokens, listUsers, resetPassword, revokeApiTokens, updateUser } from './service.ts';

const RoleSchema = Type.Union([Type.Literal('admin'), Type.Literal('billing'), Type.Literal('timekeeper'), Type.Literal('readonly')]);
const NewUserSchema = Type.Object({
  email: Type.String({ maxLength: 254 }),
  name: Type.String({ minLength: 1, maxLength: 200 }),
  role: RoleSchema,
  password: Type.String({ minLength: 1, maxLength: 256 }),
}, { additionalProperties: false });
const UserChangeSchema = Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  role: Type.Optional(RoleSchema),
  disabled: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });
/** The edit form always carries name and role: an emptied name is refused, not ignored. */
const UserFormSchema = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }),
  role: RoleSchema,
  disabled: Type.Boolean(),
}, { additionalProperties: false });
const UserSchema = Type.Object({
  id: Type.String(), email: Type.String(), name: Type.String(), role: RoleSchema,
  disabled: Type.Boolean(), createdAt: Type.String(), updatedAt: Type.String(),
});
const AuditQuery = Type.Object({
  entityType: Type.Optional(Type.String({ maxLength: 50 })),
  entityId: Type.Optional(Type.String({ maxLength: 100 })),
  /** The cursor: the last row shown (its time and id); older rows follow it. */
  before: Type.Optional(Type.String({ maxLength: 40 })),
  beforeId: Type.Optional(Type.String({ maxLength: 100 })),
}, { additionalProperties: false });
const AUDIT_PAGE = 100;

/** The audit page's URL for a filter and cursor: one URL for the plain link and for htmx. */
function auditUrl(q: { entityType?: string | undefined; entityId?: string | undefined }, cursor: { at: string; id: string }): string {
  const p = new URLSearchParams();
  if (q.entityType) p.set('entityType', q.entityType);
  if (q.entityId) p.set('entityId', q.entityId);
  p.set('before', cursor.at);
  p.set('beforeId', cursor.id);
  return `/admin/audit?${p.toString()}`;
}

interface AuditRow { id: string; at: string; actor_label: string; action: string; entity_type: string; entity_id: string; before_json: string | null; after_json: string | null; ip: string | null }

export function adminRoutes(deps: AuthDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const admin = allow(['admin']);

  app.get('/users', admin, async (c) => page(c, { page: 'admin/users.njk', fragment: 'admin/_users.njk' }, { users: await listUsers(deps), roles: ROLES }));

  app.post('/users', admin, async (c) => {
    const raw = await c.req.parseBody();
    try {
      const input = parseForm(NewUserSchema, raw);
      await createUser(deps, c.get('command'), input);
    } catch (err) {
      if (err instanceof HttpError && err.status === 422) {
        return page(c, { page: 'admin/users.njk', fragment: 'admin/_users.njk' }, { users: await listUsers(deps), roles: ROLES, form: raw, errors: err.fields }, 422);
      }
      throw err;
    }
    return c.redirect('/admin/users', 303);
  });

  const userPage = async (c: Context<AppEnv>, user: UserView, extra: Record<string, unknown> = {}, status: 200 | 422 = 200) =>
    render(c, 'admin/user.njk', { user, roles: ROLES, tokens: await listLiveApiTokens(deps, user.id), self: user.id === c.get('user')!.id, ...extra }, status);

  app.get('/users/:id', admin, async (c) => {
    const user = await getUser(deps, c.req.param('id'));
    if (!user) throw new HttpError(404, 'not_found', 'User not found');
    return userPage(c, user, { passwordSet: c.req.query('password') === 'set', self: user.id === c.get('user')!.id });
  });

  app.post('/users/:id', admin, async (c) => {
    const raw = await c.req.parseBody();
    const user = await getUser(deps, c.req.param('id'));
    if (!user) throw new HttpError(404, 'not_found', 'User not found');
    const submitted = {
      name: typeof raw.name === 'string' ? raw.name : undefined,
      role: typeof raw.role === 'string' ? raw.role : undefined,
      disabled: raw.disabled === 'on' || raw.disabled === 'true',
    };
    try {
      const input = parseForm(UserFormSchema, { name: submitted.name, role: submitted.role, disabled: submitted.disabled ? 'true' : 'false' });
      await updateUser(deps, c.get('command'), user.id, input);
    } catch (err) {
      if (err instanceof HttpError && err.status === 422) {
        // Show what was submitted (an unticked box included), on the stored account's id and email.
        const shown = { ...user, name: submitted.name ?? '', role: submitted.role ?? '', disabled: submitted.disabled };
        return userPage(c, user, { user: shown, errors: err.fields }, 422);
      }
      throw err;
    }
    return c.redirect('/admin/users', 303);
  });

  // An admin sets another account's password (it was forgotten, or the one typed at "Add" must go):
  // that account's sessions end and its API tokens are revoked. Their own goes through /account/password.
  app.post('/users/:id/password', admin, async (c) => {
    const raw = await c.req.parseBody();
    const user = await getUser(deps, c.req.param('id'));
    if (!user) throw new HttpError(404, 'not_found', 'User not found');
    const password = typeof raw.password === 'string' ? raw.password : '';
    const confirm = typeof raw.confirmPassword === 'string' ? raw.confirmPassword : '';
    try {
      if (user.id === c.get('user')!.id) throw invalid({ password: 'change your own password on the Change password page, which asks for the current one' });
      if (password !== '' && confirm !== password) throw invalid({ confirmPassword: 'does not match the new password' });
      await resetPassword(deps, c.get('command'), { userId: user.id }, password);
    } catch (err) {
      if (err instanceof HttpError && err.status === 422) return userPage(c, user, { passwordErrors: err.fields }, 422);
      throw err;
    }
    return c.redirect(`/admin/users/${encodeURIComponent(user.id)}?password=set`, 303);
  });

  app.post('/users/:id/revoke-tokens', admin, async (c) => {
    const { user } = await revokeApiTokens(deps, c.get('command'), { userId: c.req.param('id') });
    return c.redirect(`/admin/users/${encodeURIComponent(user.id)}`, 303);
  });

  app.get('/audit', admin, async (c) => {
    const q = parseForm(AuditQuery, c.req.query());
    let query = deps.db.selectFrom('audit_log').selectAll().orderBy('at', 'desc').orderBy('id', 'desc').limit(AUDIT_PAGE);
    if (q.entityType) query = query.where('entity_type', '=', q.entityType);
    if (q.entityId) query = query.where('entity_id', '=', q.entityId);
    // Rows after the cursor in (at, id) order, so rows sharing a time are neither skipped nor repeated.
    const before = q.before;
    const beforeId = q.beforeId;
    if (before !== undefined && beforeId !== undefined) {
      query = query.where((eb) => eb.or([eb('at', '<', before), eb.and([eb('at', '=', before), eb('id', '<', beforeId)])]));
    } else if (before !== undefined) {
      query = query.where('at', '<', before);
    }
    const rows = await query.execute() as AuditRow[];
    const last = rows.length === AUDIT_PAGE ? rows[rows.length - 1]! : null;
    return page(c, { page: 'admin/audit.njk', fragment: 'admin/_audit.njk' }, { rows, q, olderUrl: last ? auditUrl(q, last) : null });
  });

  return app;
}

/**
 * The signed-in user's own account: change password (asks for the current one). Mounted at
 * /account; any signed-in role. Signed in by an API token there is no session to keep, so the
 * page is for browser sessions only.
 */
export function accountRoutes(deps: AuthDeps, sessionCookie: string, secureCookies: boolean): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get('/password', allow('authenticated'), (c) => render(c, 'auth/password.njk', { changed: c.req.query('changed') === '1', revoked: Number(c.req.query('revoked') ?? 0) || 0, ended: Number(c.req.query('ended') ?? 0) || 0 }));
  app.post('/password', allow('authenticated'), async (c) => {
    const raw = await c.req.parseBody();
    const text = (k: string) => (typeof raw[k] === 'string' ? raw[k] as string : '');
    const token = getCookie(c, sessionCookie);
    if (c.get('authVia') !== 'session' || !token) throw new HttpError(403, 'forbidden', 'A password is changed from a signed-in browser session, not with an API token');
    try {
      const r = await changeOwnPassword(deps, c.get('command'), {
        userId: c.get('user')!.id, sessionToken: token, currentPassword: text('currentPassword'), newPassword: text('newPassword'), confirmPassword: text('confirmPassword'),
      });
      // The session goes on under its new id.
      setCookie(c, sessionCookie, r.sessionToken, { httpOnly: true, sameSite: 'Lax', path: '/', secure: secureCookies });
      return c.redirect(`/account/password?changed=1&ended=${r.sessionsEnded}&revoked=${r.tokensRevoked}`, 303);
    } catch (err) {
      if (err instanceof HttpError && (err.status === 422 || err.status === 429 || err.status === 409)) {
        return render(c, 'auth/password.njk', { errors: err.status === 422 ? err.fields : {}, error: err.status === 422 ? null : err.message }, err.status);
      }
      throw err;
    }
  });
  return app;
}

export function userApi(api: ReturnType<typeof createApi>, deps: AuthDeps): void {
  const view = (u: UserView) => u;
  api.route({ method: 'get', path: '/users', summary: 'List staff accounts', tag: 'auth', audience: ['admin'], response: Type.Object({ users: Type.Array(UserSchema) }) },
    async () => ({ users: (await listUsers(deps)).map(view) }));
  api.route({ method: 'post', path: '/users', summary: 'Create a staff account', tag: 'auth', audience: ['admin'], body: NewUserSchema, response: UserSchema, status: 201 },
    async (c, { body }) => view(await createUser(deps, c.get('command'), body)));
  api.route({ method: 'patch', path: '/users/:id', summary: 'Change a staff account (name, role, disabled)', tag: 'auth', audience: ['admin'], body: UserChangeSchema, response: UserSchema },
    async (c, { body }) => view(await updateUser(deps, c.get('command'), c.req.param('id')!, body)));
}
