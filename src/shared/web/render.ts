import type { Context } from 'hono';
import type { AppEnv } from './types.ts';

/** True for an htmx request that wants a fragment (not a boosted full-page load). */
export function isHtmx(c: Context<AppEnv>): boolean {
  return c.req.header('HX-Request') === 'true' && c.req.header('HX-Request-Type') !== 'full';
}

/** Render a template with the shell's common context (user, CSRF token, request id). */
export function render(c: Context<AppEnv>, template: string, ctx: Record<string, unknown> = {}, status: 200 | 201 | 400 | 401 | 403 | 404 | 409 | 422 | 429 | 500 | 503 = 200): Response {
  const html = c.get('views').render(template, {
    ...ctx,
    currentUser: c.get('user'),
    csrfToken: c.get('csrfToken'),
    requestId: c.get('requestId'),
    currentPath: c.req.path,
  });
  c.header('Vary', 'HX-Request');
  return c.html(html, status);
}

/**
 * One URL, two shapes: the full page, or for an htmx request the fragment
 * (`views/<module>/_fragment.njk`) that the page itself includes.
 */
export function page(c: Context<AppEnv>, templates: { page: string; fragment: string }, ctx: Record<string, unknown> = {}, status: Parameters<typeof render>[3] = 200): Response {
  return render(c, isHtmx(c) ? templates.fragment : templates.page, ctx, status);
}

/**
 * After a successful post: 303 for a plain form (post/redirect/get), HX-Redirect for htmx
 * (fetch would follow a 303 and swap the page in).
 */
export function redirectAfterPost(c: Context<AppEnv>, url: string): Response {
  c.header('Vary', 'HX-Request');
  if (c.req.header('HX-Request') === 'true') {
    c.header('HX-Redirect', url);
    return c.body(null, 200);
  }
  return c.redirect(url, 303);
}
