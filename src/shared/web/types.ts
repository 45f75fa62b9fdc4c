import type { Logger } from 'pino';
import type nunjucks from 'nunjucks';
import type { CommandContext } from '../events.ts';

export const ROLES = ['admin', 'billing', 'timekeeper', 'readonly'] as const;
export type Role = (typeof ROLES)[number];

export interface CurrentUser {
  readonly id: string;
  readonly email: string;
  readonly name: string;
  readonly role: Role;
}

/** Hono environment shared by the shell and every module's sub-app. */
export type AppEnv = {
  Variables: {
    requestId: string;
    log: Logger;
    user: CurrentUser | null;
    /** How the request authenticated: a browser session cookie or an API token. */
    authVia: 'session' | 'token' | null;
    /** Token to put in forms (`_csrf`) and htmx headers (`X-CSRF-Token`). */
    csrfToken: string;
    views: nunjucks.Environment;
    /** Who is acting, for events and the audit log. */
    command: CommandContext;
  };
};
