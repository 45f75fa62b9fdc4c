/** Small helpers for the billing web tests (mass billing and drafts pages). */
import assert from 'node:assert/strict';
import { unescapeHtml } from '../support/app.ts';
import type { Browser, Page } from '../support/app.ts';

/** The page's HTML (entities decoded) after checking its status. */
export function ok(res: Page, status = 200): string {
  assert.equal(res.status, status, `${res.status}: ${res.text.slice(0, 1500)}`);
  return unescapeHtml(res.text);
}

/** Post a form with repeated fields (e.g. several matterId), with the session's CSRF token. */
export function postMany(b: Browser, path: string, pairs: [string, string][]): Promise<Page> {
  const body = new URLSearchParams([...pairs, ['_csrf', b.csrf ?? '']]).toString();
  return b.request('POST', path, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
}

/**
 * An action answered with a redirect to the page that shows its outcome (post/redirect/get,
 * as the draft bills actions do): that page, fetched as the browser would; any other answer as it is.
 */
export async function followed(b: Browser, res: Page | Promise<Page>): Promise<Page> {
  const r = await res;
  if (r.status !== 303 || !r.location) return r;
  return b.get(r.location);
}
