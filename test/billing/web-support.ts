/** Small helpers for the billing web tests (mass billing and drafts pages). */
import assert from 'node:assert/strict';
import { prng } from '../../src/cli/demo.ts';
import { createMattersCommands, seedDemoFirm } from '../../src/modules/matters/index.ts';
import { unescapeHtml } from '../support/app.ts';
import type { Browser, Page, TestApp } from '../support/app.ts';
import { ctx } from './support.ts';

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

/**
 * The fields a browser submits for the composer form as the page shows it: hidden, text and
 * date inputs, ticked checkboxes (repeated names kept), and each select's chosen option; not
 * the CSRF token (postMany adds the session's) nor the submit action.
 */
export function composerSubmission(html: string): [string, string][] {
  const start = html.indexOf('<form id="composer"');
  assert.ok(start >= 0, 'the composer form is on the page');
  const form = html.slice(start, html.indexOf('</form>', start));
  const out: [string, string][] = [];
  const attr = (tag: string, name: string) => new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1];
  for (const m of form.matchAll(/<input\b([^>]*)>|<select\b([^>]*)>([\s\S]*?)<\/select>/g)) {
    const kind = m[1] !== undefined ? 'input' : 'select';
    const attrs = m[1] ?? m[2]!;
    const body = m[3] ?? '';
    const name = attr(attrs, 'name');
    if (!name || name === '_action' || name === '_csrf') continue;
    if (kind === 'input') {
      const type = attr(attrs, 'type') ?? 'text';
      if (type === 'checkbox' && !/\schecked\b/.test(attrs)) continue;
      out.push([name, unescapeHtml(attr(attrs, 'value') ?? '')]);
    } else {
      const chosen = /<option value="([^"]*)"[^>]*\sselected/.exec(body)?.[1] ?? /<option value="([^"]*)"/.exec(body)?.[1] ?? '';
      out.push([name, unescapeHtml(chosen)]);
    }
  }
  return out;
}

/** A bill run's page, polled as the page polls it (htmx, Vary: HX-Request), until the run is done; failing on a failed run. */
export async function waitForRun(b: Browser, url: string): Promise<string> {
  for (let i = 0; i < 400; i++) {
    const page = await b.get(url, { 'hx-request': 'true' });
    const html = ok(page);
    assert.match(page.headers.get('vary') ?? '', /HX-Request/);
    if (/data-status="done"/.test(html)) return html;
    assert.doesNotMatch(html, /data-status="failed"/, html);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail('the run did not finish');
}

/** The demo firm (`matters` matters of two entries each, as of `asOf`) and a billing clerk signed in. */
export async function demoClerk(t: TestApp, opts: { matters: number; seed: number; fixedCharges: boolean; asOf: string }): Promise<Browser> {
  const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
  await seedDemoFirm(cmds, { matters: opts.matters, entriesPerMatter: 2, seed: opts.seed, random: prng, ctx, fixedCharges: opts.fixedCharges, asOf: opts.asOf });
  await t.runtime.relay.drain();
  const user = await t.user('billing');
  const b = t.browser();
  await b.login(user.email);
  return b;
}
