/**
 * Staff accounts, sessions, API tokens and login throttling. Every state change runs in
 * one transaction with its audit row. Session and token secrets are stored only as
 * SHA-256 hashes, so a leaked database does not leak live sessions.
 */
import { createHash } from 'node:crypto';
import { assert } from '../../shared/assert.ts';
import { audit } from '../../shared/audit.ts';
import type { Clock } from '../../shared/clock.ts';
import type { Db, Executor } from '../../shared/db.ts';
import { isEmailAddress } from '../../shared/email.ts';
import { isUniqueViolation } from '../../shared/db.ts';
import { writersSerialised } from '../../shared/sql.ts';
import type { CommandContext } from '../../shared/events.ts';
import { newId, newToken } from '../../shared/ids.ts';
import { HttpError, invalid } from '../../shared/web/errors.ts';
import { ROLES } from '../../shared/web/types.ts';
import type { CurrentUser, Role } from '../../shared/web/types.ts';
import { dummyHash, hashPassword, passwordProblem, verifyPassword } from './passwords.ts';

export const SESSION_IDLE_MS = 30 * 60_000;
export const SESSION_ABSOLUTE_MS = 12 * 60 * 60_000;
/** Last-seen is written at most this often, so reads do not each cost a write. */
const TOUCH_EVERY_MS = 30_000;

export const THROTTLE = {
  account: { maxFailures: 5, windowMs: 15 * 60_000, lockMs: 15 * 60_000 },
  address: { maxFailures: 20, windowMs: 15 * 60_000, lockMs: 15 * 60_000 },
} as const;

export interface AuthDeps {
  db: Db;
  clock: Clock;
}

interface UserRow {
  id: string; email: string; name: string; role: Role; password_hash: string;
  disabled: number; created_at: string; updated_at: string; password_changed_at: string;
}

export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
export const normaliseEmail = (e: string): string => e.trim().toLowerCase();

function publicUser(r: UserRow): CurrentUser & { disabled: boolean; createdAt: string; updatedAt: string } {
  return { id: r.id, email: r.email, name: r.name, role: r.role, disabled: Number(r.disabled) === 1, createdAt: r.created_at, updatedAt: r.updated_at };
}
export type UserView = ReturnType<typeof publicUser>;

async function findUserByEmail(db: Executor, email: string): Promise<UserRow | undefined> {
  return await db.selectFrom('auth_user').selectAll().where('email', '=', normaliseEmail(email)).executeTakeFirst() as UserRow | undefined;
}

async function findUser(db: Executor, id: string): Promise<UserRow | undefined> {
  return await db.selectFrom('auth_user').selectAll().where('id', '=', id).executeTakeFirst() as UserRow | undefined;
}

export async function listUsers(deps: AuthDeps): Promise<UserView[]> {
  const rows = await deps.db.selectFrom('auth_user').selectAll().orderBy('email').limit(1000).execute() as UserRow[];
  return rows.map(publicUser);
}

export async function getUser(deps: AuthDeps, id: string): Promise<UserView | null> {
  const r = await findUser(deps.db, id);
  return r ? publicUser(r) : null;
}

function checkUserFields(input: { email?: string; name?: string; role?: string; password?: string }): void {
  const fields: Record<string, string> = {};
  if (input.email !== undefined && !isEmailAddress(input.email.trim())) fields.email = 'must be an email address';
  if (input.name !== undefined && (input.name.trim().length === 0 || input.name.length > 200)) fields.name = 'must be 1 to 200 characters';
  if (input.role !== undefined && !(ROLES as readonly string[]).includes(input.role)) fields.role = `must be one of: ${ROLES.join(', ')}`;
  if (input.password !== undefined) {
    const p = passwordProblem(input.password);
    if (p) fields.password = p;
  }
  if (Object.keys(fields).length) throw invalid(fields);
}

export async function createUser(deps: AuthDeps, ctx: CommandContext, input: { email: string; name: string; role: Role; password: string }): Promise<UserView> {
  checkUserFields(input);
  const hash = await hashPassword(input.password);
  const now = deps.clock.now().toISOString();
  const row: UserRow = {
    id: newId(deps.clock), email: normaliseEmail(input.email), name: input.name.trim(), role: input.role,
    password_hash: hash, disabled: 0, created_at: now, updated_at: now, password_changed_at: now,
  };
  try {
    await deps.db.transaction().execute(async (trx) => {
      await trx.insertInto('auth_user').values(row).execute();
      await audit(trx, deps.clock, ctx, { action: 'auth.user_created', entityType: 'user', entityId: row.id, after: publicUser(row) });
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw invalid({ email: 'is already used by another account' });
    throw err;
  }
  return publicUser(row);
}

export async function updateUser(deps: AuthDeps, ctx: CommandContext, id: string, input: { name?: string; role?: Role; disabled?: boolean }): Promise<UserView> {
  checkUserFields(input);
  return deps.db.transaction().execute(async (trx) => {
    // Postgres: lock the account and every active admin, in id order, before reading them, so
    // a change made meanwhile (another admin's demotion) is read, not overwritten with what
    // was there before it, and two admins demoting each other queue rather than deadlock; the
    // second sees the first's change once it holds the locks. SQLite runs one writer at a time.
    let lockQuery = trx.selectFrom('auth_user').selectAll()
      .where((eb) => eb.or([eb('id', '=', id), eb.and([eb('role', '=', 'admin'), eb('disabled', '=', 0)])])).orderBy('id');
    if (!writersSerialised(trx)) lockQuery = lockQuery.forUpdate();
    const locked = await lockQuery.execute() as UserRow[];
    const before = locked.find((u) => u.id === id);
    if (!before) throw new HttpError(404, 'not_found', 'User not found');
    // A refusal names the field that asked for it: the role box, or the Disabled box.
    if (ctx.actorId === id && input.disabled && Number(before.disabled) === 0) {
      throw invalid({ disabled: 'you cannot disable your own account' });
    }
    if (ctx.actorId === id && input.role && input.role !== 'admin' && before.role === 'admin') {
      throw invalid({ role: 'you cannot remove your own admin role' });
    }
    const after: UserRow = {
      ...before,
      name: input.name?.trim() ?? before.name,
      role: input.role ?? before.role,
      disabled: input.disabled === undefined ? Number(before.disabled) : input.disabled ? 1 : 0,
      updated_at: deps.clock.now().toISOString(),
    };
    // Only a change that takes away the last active admin is refused: a disabled admin is
    // not counted and may be edited, demoted or left disabled freely.
    const activeAdmin = (u: UserRow) => u.role === 'admin' && Number(u.disabled) === 0;
    if (activeAdmin(before) && !activeAdmin(after)) {
      const others = locked.filter((u) => u.id !== id && activeAdmin(u));
      if (others.length === 0) {
        throw after.role !== 'admin'
          ? invalid({ role: 'the last active admin cannot lose the admin role' })
          : invalid({ disabled: 'the last active admin cannot be disabled' });
      }
    }
    // A save that changes nothing writes nothing: no new updated_at, no audit row.
    if (after.name === before.name && after.role === before.role && after.disabled === Number(before.disabled)) return publicUser(before);
    await trx.updateTable('auth_user').set({ name: after.name, role: after.role, disabled: after.disabled, updated_at: after.updated_at }).where('id', '=', id).execute();
    if (after.disabled === 1 || after.role !== before.role) {
      await trx.deleteFrom('auth_session').where('user_id', '=', id).execute();
    }
    await audit(trx, deps.clock, ctx, { action: 'auth.user_changed', entityType: 'user', entityId: id, before: publicUser(before), after: publicUser(after) });
    // Disabling ends the account's API tokens for good: enabling it again does not revive them.
    if (after.disabled === 1 && Number(before.disabled) === 0) await revokeTokensOf(trx, deps.clock, ctx, id, 'user_disabled');
    return publicUser(after);
  });
}

/**
 * Set an account's password for it (the CLI by email; an admin's page by id): every session of
 * the account ends and its API tokens are revoked, as they were given under the old password.
 */
export async function resetPassword(deps: AuthDeps, ctx: CommandContext, who: string | { userId: string }, password: string): Promise<UserView> {
  checkUserFields({ password });
  const hash = await hashPassword(password);
  return deps.db.transaction().execute(async (trx) => {
    const user = typeof who === 'string' ? await findUserByEmail(trx, who) : await findUser(trx, who.userId);
    if (!user) {
      if (typeof who === 'string') throw invalid({ email: 'no account has this email' });
      throw new HttpError(404, 'not_found', 'User not found');
    }
    const now = deps.clock.now().toISOString();
    await trx.updateTable('auth_user').set({ password_hash: hash, password_changed_at: now, updated_at: now }).where('id', '=', user.id).execute();
    await trx.deleteFrom('auth_session').where('user_id', '=', user.id).execute();
    await trx.deleteFrom('auth_throttle').where('key', '=', `acct:${user.email}`).execute();
    await audit(trx, deps.clock, ctx, { action: 'auth.password_reset', entityType: 'user', entityId: user.id });
    // Tokens issued under the old password end with it.
    await revokeTokensOf(trx, deps.clock, ctx, user.id, 'password_reset');
    return publicUser(user);
  });
}

/**
 * A signed-in user changes their own password: the current one is asked for (a session left
 * open on a shared machine cannot take the account over) and counted against the account's
 * sign-in throttle when wrong, as a failed sign-in is. The account's other sessions end and its
 * API tokens are revoked; the session it was changed in stays signed in under a new id (the
 * caller sets the returned token as the cookie). A password set meanwhile is not overwritten (409).
 */
export async function changeOwnPassword(deps: AuthDeps, ctx: CommandContext, input: { userId: string; sessionToken: string; currentPassword: string; newPassword: string; confirmPassword: string }): Promise<{ tokensRevoked: number; sessionsEnded: number; sessionToken: string }> {
  const fields: Record<string, string> = {};
  if (input.currentPassword === '') fields.currentPassword = 'is required';
  const problem = passwordProblem(input.newPassword);
  if (problem) fields.newPassword = problem;
  else if (input.newPassword === input.currentPassword) fields.newPassword = 'must differ from the current password';
  if (!fields.newPassword && input.confirmPassword !== input.newPassword) fields.confirmPassword = 'does not match the new password';
  if (Object.keys(fields).length) throw invalid(fields);
  const user = await findUser(deps.db, input.userId);
  if (!user || Number(user.disabled) === 1) throw new HttpError(401, 'unauthenticated', 'Your session has ended: sign in again');
  const now = deps.clock.now();
  const acctKey = `acct:${user.email}`;
  // Counted as a failure before the check, holding the account's throttle row (parallel guesses queue); a right password takes it back.
  const wait = await deps.db.transaction().execute(async (trx) => {
    const rows = await lockThrottleRows(trx, [acctKey], now);
    const w = lockedFor(rows.get(acctKey), now);
    if (w === 0) await countFailure(trx, rows.get(acctKey)!, now, THROTTLE.account);
    return w;
  });
  if (wait > 0) throw new HttpError(429, 'throttled', `Too many wrong passwords for this account. Try again in ${Math.ceil(wait / 60_000)} minutes.`);
  if (!(await verifyPassword(input.currentPassword, user.password_hash))) {
    await deps.db.transaction().execute((trx) => audit(trx, deps.clock, ctx, { action: 'auth.password_change_refused', entityType: 'user', entityId: user.id }));
    throw invalid({ currentPassword: 'is not your current password' });
  }
  const hash = await hashPassword(input.newPassword);
  return deps.db.transaction().execute(async (trx) => {
    const nowDate = deps.clock.now();
    const at = nowDate.toISOString();
    // Only over the password that was checked: one set meanwhile (an admin's reset, a change in another tab) is not
    // overwritten; and only from a session still live (a reset meanwhile ended it).
    const changed = await trx.updateTable('auth_user').set({ password_hash: hash, password_changed_at: at, updated_at: at })
      .where('id', '=', user.id).where('password_hash', '=', user.password_hash).where('disabled', '=', 0).executeTakeFirst();
    const current = await trx.selectFrom('auth_session').select(['csrf_token', 'expires_at', 'ip', 'user_agent']).where('id_hash', '=', sha256(input.sessionToken)).where('user_id', '=', user.id).executeTakeFirst() as
      { csrf_token: string; expires_at: string; ip: string | null; user_agent: string | null } | undefined;
    if (Number(changed.numUpdatedRows) !== 1 || !current) {
      throw new HttpError(409, 'conflict', 'Your password was changed meanwhile (by an admin, or in another window): nothing was changed. Sign in again with the password now set.');
    }
    // Every session of the account ends, this one too: it goes on under a new id (one who had this session's cookie is out).
    const ended = await trx.deleteFrom('auth_session').where('user_id', '=', user.id).where('id_hash', '<>', sha256(input.sessionToken)).executeTakeFirst();
    await trx.deleteFrom('auth_session').where('id_hash', '=', sha256(input.sessionToken)).execute();
    const { sessionToken } = await openSession(trx, user.id, { at, expiresAt: current.expires_at, ip: current.ip, userAgent: current.user_agent });
    await trx.deleteFrom('auth_throttle').where('key', '=', acctKey).execute();
    await audit(trx, deps.clock, ctx, { action: 'auth.password_changed', entityType: 'user', entityId: user.id, after: { otherSessionsEnded: Number(ended.numDeletedRows) } });
    const revoked = await revokeTokensOf(trx, deps.clock, ctx, user.id, 'password_reset');
    return { tokensRevoked: revoked.length, sessionsEnded: Number(ended.numDeletedRows), sessionToken };
  });
}

/* ---------------- throttling ---------------- */

interface ThrottleRow { key: string; failures: number; window_started_at: string; locked_until: string | null; lock_audited: string | null }
type ThrottlePolicy = { maxFailures: number; windowMs: number; lockMs: number };

/**
 * The throttle rows of these keys, created if missing and (on Postgres) locked to the end of
 * the caller's transaction in key order, so parallel attempts on one key queue for it.
 */
async function lockThrottleRows(trx: Executor, keys: readonly string[], now: Date): Promise<Map<string, ThrottleRow>> {
  const sorted = [...new Set(keys)].sort();
  for (const key of sorted) {
    await trx.insertInto('auth_throttle').values({ key, failures: 0, window_started_at: now.toISOString(), locked_until: null })
      .onConflict((oc) => oc.column('key').doNothing()).execute();
  }
  let q = trx.selectFrom('auth_throttle').selectAll().where('key', 'in', sorted).orderBy('key');
  if (!writersSerialised(trx)) q = q.forUpdate();
  const rows = await q.execute() as ThrottleRow[];
  return new Map(rows.map((r) => [r.key, r]));
}

function lockedFor(r: ThrottleRow | undefined, now: Date): number {
  if (!r?.locked_until) return 0;
  return Math.max(0, new Date(r.locked_until).getTime() - now.getTime());
}

/** Count one failure on a locked throttle row (a new window if the last one has passed). */
async function countFailure(trx: Executor, r: ThrottleRow, now: Date, policy: ThrottlePolicy): Promise<void> {
  const nowIso = now.toISOString();
  const inWindow = Number(r.failures) > 0 && now.getTime() - new Date(r.window_started_at).getTime() < policy.windowMs;
  const failures = inWindow ? Number(r.failures) + 1 : 1;
  const windowStart = inWindow ? r.window_started_at : nowIso;
  const locked = failures >= policy.maxFailures ? new Date(now.getTime() + policy.lockMs).toISOString() : null;
  await trx.updateTable('auth_throttle').set({ failures, window_started_at: windowStart, locked_until: locked }).where('key', '=', r.key).execute();
}

/** Take back the failure an attempt was counted as in advance, once its password proved right. */
async function uncountFailure(trx: Executor, key: string, now: Date, policy: ThrottlePolicy): Promise<void> {
  const r = (await lockThrottleRows(trx, [key], now)).get(key);
  if (!r || Number(r.failures) <= 0) return;
  const failures = Number(r.failures) - 1;
  await trx.updateTable('auth_throttle').set({ failures, locked_until: failures >= policy.maxFailures ? r.locked_until : null }).where('key', '=', key).execute();
}

/* ---------------- login, sessions ---------------- */

export type LoginResult =
  | { ok: true; sessionToken: string; csrfToken: string; user: CurrentUser }
  | { ok: false; reason: 'invalid' | 'throttled'; retryAfterSec?: number };

export async function login(deps: AuthDeps, input: { email: string; password: string; ip: string | null; userAgent: string | null; previousSessionToken?: string | null; correlationId: string }): Promise<LoginResult> {
  const now = deps.clock.now();
  const email = normaliseEmail(input.email).slice(0, 254);
  const acctKey = `acct:${email}`;
  const ipKey = `ip:${input.ip ?? 'unknown'}`;
  const ctx: CommandContext = { actorId: null, actorLabel: email || 'anonymous', correlationId: input.correlationId, causationId: null, ip: input.ip };
  // The attempt is counted as a failure on both keys before its password is checked, in a
  // transaction holding the keys' rows: parallel attempts queue here, so a burst gets no
  // more guesses than the same attempts one after another. A right password takes it back.
  const wait = await deps.db.transaction().execute(async (trx) => {
    const rows = await lockThrottleRows(trx, [acctKey, ipKey], now);
    const w = Math.max(lockedFor(rows.get(acctKey), now), lockedFor(rows.get(ipKey), now));
    if (w > 0) {
      // Audited once per lock (the locked rows say which lock was audited, for every process): every attempt refused
      // during a lock would let anyone, unsigned in, grow the audit log without bound and bury the firm's own entries.
      const unaudited = [...rows.values()].filter((r) => lockedFor(r, now) > 0 && r.lock_audited !== r.locked_until);
      if (unaudited.length > 0) {
        for (const r of unaudited) await trx.updateTable('auth_throttle').set({ lock_audited: r.locked_until }).where('key', '=', r.key).execute();
        await audit(trx, deps.clock, ctx, { action: 'auth.login_throttled', entityType: 'login', entityId: email });
      }
      return w;
    }
    await countFailure(trx, rows.get(acctKey)!, now, THROTTLE.account);
    if (ipKey !== acctKey) await countFailure(trx, rows.get(ipKey)!, now, THROTTLE.address);
    return 0;
  });
  if (wait > 0) return { ok: false, reason: 'throttled', retryAfterSec: Math.ceil(wait / 1000) };
  const user = await findUserByEmail(deps.db, email);
  const good = user && Number(user.disabled) === 0
    ? await verifyPassword(input.password, user.password_hash)
    : (await verifyPassword(input.password, await dummyHash()), false);
  if (!good || !user) {
    await deps.db.transaction().execute(async (trx) => {
      await audit(trx, deps.clock, ctx, { action: 'auth.login_failed', entityType: 'login', entityId: email });
    });
    return { ok: false, reason: 'invalid' };
  }
  const nowIso = now.toISOString();
  const { sessionToken, csrfToken } = await deps.db.transaction().execute(async (trx) => {
    // Rotate: whatever session the browser had is ended; a fresh id is issued.
    if (input.previousSessionToken) await trx.deleteFrom('auth_session').where('id_hash', '=', sha256(input.previousSessionToken)).execute();
    const opened = await openSession(trx, user.id, {
      at: nowIso, expiresAt: new Date(now.getTime() + SESSION_ABSOLUTE_MS).toISOString(), ip: input.ip, userAgent: input.userAgent?.slice(0, 300) ?? null,
    });
    await trx.deleteFrom('auth_throttle').where('key', '=', acctKey).execute();
    await uncountFailure(trx, ipKey, now, THROTTLE.address);
    await trx.deleteFrom('auth_session').where('user_id', '=', user.id).where('expires_at', '<', nowIso).execute();
    await audit(trx, deps.clock, { ...ctx, actorId: user.id }, { action: 'auth.login', entityType: 'user', entityId: user.id });
    return opened;
  });
  return { ok: true, sessionToken, csrfToken, user: publicUser(user) };
}

/** A new session of the user (a random id, stored only as its hash, and its CSRF token), in the caller's transaction. */
async function openSession(trx: Executor, userId: string, s: { at: string; expiresAt: string; ip: string | null; userAgent: string | null }): Promise<{ sessionToken: string; csrfToken: string }> {
  const sessionToken = newToken(32);
  const csrfToken = newToken(32);
  await trx.insertInto('auth_session').values({
    id_hash: sha256(sessionToken), user_id: userId, csrf_token: csrfToken, created_at: s.at, last_seen_at: s.at,
    expires_at: s.expiresAt, ip: s.ip, user_agent: s.userAgent,
  }).execute();
  return { sessionToken, csrfToken };
}

export interface ResolvedSession { user: CurrentUser; csrfToken: string; idHash: string }

/** The live session for a cookie value, or null if unknown, idle too long or past its absolute limit. */
export async function resolveSession(deps: AuthDeps, token: string): Promise<ResolvedSession | null> {
  if (token.length < 20 || token.length > 100) return null;
  const idHash = sha256(token);
  const row = await deps.db.selectFrom('auth_session as s').innerJoin('auth_user as u', 'u.id', 's.user_id')
    .select(['s.id_hash', 's.csrf_token', 's.last_seen_at', 's.expires_at', 'u.id', 'u.email', 'u.name', 'u.role', 'u.disabled'])
    .where('s.id_hash', '=', idHash).executeTakeFirst() as
    { id_hash: string; csrf_token: string; last_seen_at: string; expires_at: string; id: string; email: string; name: string; role: Role; disabled: number } | undefined;
  if (!row) return null;
  const now = deps.clock.now();
  const idleFor = now.getTime() - new Date(row.last_seen_at).getTime();
  if (Number(row.disabled) === 1 || idleFor >= SESSION_IDLE_MS || now.toISOString() >= row.expires_at) {
    await deps.db.deleteFrom('auth_session').where('id_hash', '=', idHash).execute();
    return null;
  }
  if (idleFor >= TOUCH_EVERY_MS) {
    await deps.db.updateTable('auth_session').set({ last_seen_at: now.toISOString() }).where('id_hash', '=', idHash).execute();
  }
  return { user: { id: row.id, email: row.email, name: row.name, role: row.role }, csrfToken: row.csrf_token, idHash };
}

export async function logout(deps: AuthDeps, ctx: CommandContext, token: string): Promise<void> {
  await deps.db.transaction().execute(async (trx) => {
    const n = await trx.deleteFrom('auth_session').where('id_hash', '=', sha256(token)).executeTakeFirst();
    if (Number(n.numDeletedRows) > 0 && ctx.actorId) {
      await audit(trx, deps.clock, ctx, { action: 'auth.logout', entityType: 'user', entityId: ctx.actorId });
    }
  });
}

/* ---------------- API tokens ---------------- */

export const API_TOKEN_PREFIX = 'lbt_';

export async function createApiToken(deps: AuthDeps, ctx: CommandContext, email: string, label: string): Promise<{ token: string; id: string }> {
  assert(label.length <= 200, 'label too long');
  const token = API_TOKEN_PREFIX + newToken(32);
  const id = newId(deps.clock);
  await deps.db.transaction().execute(async (trx) => {
    const user = await findUserByEmail(trx, email);
    if (!user) throw invalid({ email: 'no account has this email' });
    if (Number(user.disabled) === 1) throw invalid({ email: 'this account is disabled' });
    await trx.insertInto('auth_api_token').values({ id, user_id: user.id, token_hash: sha256(token), label, created_at: deps.clock.now().toISOString(), last_used_at: null, revoked_at: null }).execute();
    await audit(trx, deps.clock, ctx, { action: 'auth.api_token_created', entityType: 'user', entityId: user.id, after: { tokenId: id, label } });
  });
  return { token, id };
}

export type TokenRevocationReason = 'revoked' | 'password_reset' | 'user_disabled';

/**
 * Set revoked_at on every live token of the user (inside the caller's transaction) and
 * audit-log which ones; returns their ids. Nothing is logged when none was live.
 */
async function revokeTokensOf(trx: Executor, clock: Clock, ctx: CommandContext, userId: string, reason: TokenRevocationReason): Promise<string[]> {
  const live = await trx.selectFrom('auth_api_token').select('id').where('user_id', '=', userId).where('revoked_at', 'is', null).orderBy('id').execute() as { id: string }[];
  if (live.length === 0) return [];
  const tokenIds = live.map((t) => t.id);
  await trx.updateTable('auth_api_token').set({ revoked_at: clock.now().toISOString() }).where('id', 'in', tokenIds).where('revoked_at', 'is', null).execute();
  await audit(trx, clock, ctx, { action: 'auth.api_tokens_revoked', entityType: 'user', entityId: userId, after: { tokenIds, reason } });
  return tokenIds;
}

/** Revoke every live API token of one account (by email or id); returns how many. */
export async function revokeApiTokens(deps: AuthDeps, ctx: CommandContext, who: { email: string } | { userId: string }): Promise<{ user: UserView; revoked: number }> {
  return deps.db.transaction().execute(async (trx) => {
    const user = 'email' in who ? await findUserByEmail(trx, who.email) : await findUser(trx, who.userId);
    if (!user) {
      if ('email' in who) throw invalid({ email: 'no account has this email' });
      throw new HttpError(404, 'not_found', 'User not found');
    }
    const ids = await revokeTokensOf(trx, deps.clock, ctx, user.id, 'revoked');
    return { user: publicUser(user), revoked: ids.length };
  });
}

export interface ApiTokenView { id: string; label: string; createdAt: string; lastUsedAt: string | null }

/** The account's live (unrevoked) API tokens, newest first; never the secret. */
export async function listLiveApiTokens(deps: AuthDeps, userId: string): Promise<ApiTokenView[]> {
  const rows = await deps.db.selectFrom('auth_api_token').select(['id', 'label', 'created_at', 'last_used_at'])
    .where('user_id', '=', userId).where('revoked_at', 'is', null).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(1000).execute() as
    { id: string; label: string; created_at: string; last_used_at: string | null }[];
  return rows.map((r) => ({ id: r.id, label: r.label, createdAt: r.created_at, lastUsedAt: r.last_used_at }));
}

export async function resolveApiToken(deps: AuthDeps, token: string): Promise<CurrentUser | null> {
  if (!token.startsWith(API_TOKEN_PREFIX) || token.length > 100) return null;
  const row = await deps.db.selectFrom('auth_api_token as t').innerJoin('auth_user as u', 'u.id', 't.user_id')
    .select(['t.id as token_id', 't.last_used_at', 'u.id', 'u.email', 'u.name', 'u.role', 'u.disabled'])
    .where('t.token_hash', '=', sha256(token)).where('t.revoked_at', 'is', null).executeTakeFirst() as
    { token_id: string; last_used_at: string | null; id: string; email: string; name: string; role: Role; disabled: number } | undefined;
  if (!row || Number(row.disabled) === 1) return null;
  const now = deps.clock.now();
  if (!row.last_used_at || now.getTime() - new Date(row.last_used_at).getTime() > 60_000) {
    await deps.db.updateTable('auth_api_token').set({ last_used_at: now.toISOString() }).where('id', '=', row.token_id).execute();
  }
  return { id: row.id, email: row.email, name: row.name, role: row.role };
}
