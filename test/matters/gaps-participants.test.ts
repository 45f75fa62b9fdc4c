/**
 * Gaps closed: a matter's billable party (the client itself or one of its contacts) and its
 * participants with roles, on the matter page and through the API, validated by field and
 * copied to billing through matter_changed; and timekeepers shown with their LEDES
 * classification on the pages and the API (a LEDES code left as it was follows a new
 * classification).
 */
import assert from 'node:assert/strict';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { systemContext } from '../../src/shared/events.ts';
import type { Role } from '../../src/shared/web/types.ts';
import { unescapeHtml, withApp } from '../support/app.ts';
import type { Browser, Page, TestApp } from '../support/app.ts';
import { eachDialect } from '../support/db.ts';

const ctx = systemContext('gaps-participants-test', 'test');

async function firm(t: TestApp) {
  const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: { kick: () => undefined } });
  const mh = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  const client = await cmds.createClient(ctx, { name: 'Northwind Logistics Inc.', email: 'ap@northwind.example' });
  const dana = await cmds.addContact(ctx, { clientId: client.id, name: 'Dana Reyes', email: 'dana@northwind.example', role: 'Accounts payable' });
  const sam = await cmds.addContact(ctx, { clientId: client.id, name: 'Sam Ortiz', email: 'sam@northwind.example', role: 'General counsel' });
  const other = await cmds.createClient(ctx, { name: 'Acme Widgets LLC' });
  const stranger = await cmds.addContact(ctx, { clientId: other.id, name: 'Riley Acme', email: 'riley@acme.example' });
  const matter = await cmds.openMatter(ctx, { clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: mh.id, openedOn: '2026-01-15' });
  return { cmds, mh, client, dana, sam, other, stranger, matter };
}

async function signedIn(t: TestApp, role: Role): Promise<Browser> {
  const u = await t.user(role);
  const b = t.browser();
  assert.equal((await b.login(u.email)).status, 303);
  return b;
}

/** A form as the page renders it: [name, value] pairs of its inputs, selects and checked boxes. */
function formPairs(html: string): [string, string][] {
  const pairs: [string, string][] = [];
  const attr = (tag: string, a: string): string | null => {
    const m = new RegExp(`\\s${a}="([^"]*)"`).exec(tag);
    return m ? unescapeHtml(m[1]!) : null;
  };
  for (const m of html.matchAll(/<input\b[^>]*>|<select\b[^>]*>[\s\S]*?<\/select>/g)) {
    const el = m[0];
    const open = /^<[^>]*>/.exec(el)![0];
    const name = attr(open, 'name');
    if (!name || name === '_csrf') continue;
    if (el.startsWith('<select')) {
      const opts = [...el.matchAll(/<option\b[^>]*>/g)].map((o) => o[0]);
      const sel = opts.find((o) => /\sselected/.test(o)) ?? opts[0];
      pairs.push([name, sel ? attr(sel, 'value') ?? '' : '']);
      continue;
    }
    const type = (attr(open, 'type') ?? 'text').toLowerCase();
    if (type === 'checkbox' || type === 'radio') { if (/\schecked/.test(open)) pairs.push([name, attr(open, 'value') ?? 'on']); }
    else pairs.push([name, attr(open, 'value') ?? '']);
  }
  return pairs;
}

function sectionOf(html: string, id: string): string {
  const start = html.indexOf(`<section id="${id}"`);
  assert.ok(start >= 0, `section #${id} on the page`);
  return html.slice(start, html.indexOf('</section>', start));
}

function post(b: Browser, path: string, pairs: [string, string][], headers: Record<string, string> = {}): Promise<Page> {
  const body = new URLSearchParams([...pairs, ['_csrf', b.csrf ?? '']]).toString();
  return b.request('POST', path, { headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
}

function fieldError(text: string, field: string): string {
  const m = new RegExp(`data-error-for="${field.replaceAll('.', '\\.')}"[^>]*>([\\s\\S]*?)</(span|li)>`).exec(text);
  assert.ok(m, `an error shown for ${field}`);
  return unescapeHtml(m[1]!.replace(/<[^>]*>/g, '').trim());
}

/** Replace the n-th (0-based) occurrence of a field's value. */
function setNth(pairs: [string, string][], name: string, n: number, value: string): [string, string][] {
  let i = -1;
  const out = pairs.map(([k, v]): [string, string] => (k === name && ++i === n ? [k, value] : [k, v]));
  assert.ok(i >= n, `the form has ${n + 1} ${name} inputs`);
  return out;
}

const setOne = (pairs: [string, string][], name: string, value: string): [string, string][] =>
  [...pairs.filter(([k]) => k !== name), [name, value]];

class Api {
  constructor(private readonly b: Browser, private readonly token: string) {}
  private get auth() { return { authorization: `Bearer ${this.token}` }; }
  get(path: string): Promise<Page> { return this.b.get(`/api/v1${path}`, { ...this.auth, accept: 'application/json' }); }
  post(path: string, body: unknown): Promise<Page> { return this.b.postJson(`/api/v1${path}`, body, { headers: this.auth }); }
  patch(path: string, body: unknown): Promise<Page> { return this.b.postJson(`/api/v1${path}`, body, { method: 'PATCH', headers: this.auth }); }
  put(path: string, body: unknown): Promise<Page> { return this.b.postJson(`/api/v1${path}`, body, { method: 'PUT', headers: this.auth }); }
}

function ok(res: Page, status = 200): any {
  assert.equal(res.status, status, `${res.status}: ${res.text.slice(0, 500)}`);
  return res.json();
}

function apiFields(res: Page): Record<string, string> {
  assert.equal(res.status, 422, res.text.slice(0, 500));
  return res.json().error.fields;
}

eachDialect('the matter page sets the billable party and participants with roles; errors are named and change nothing; billing gets the copy', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    const b = await signedIn(t, 'billing');
    const url = `/matters/${f.matter.id}`;
    const details = () => f.cmds.getMatterDetails(f.matter.id);

    // The matter page shows the section: bills go to the client itself until a contact is chosen.
    const first = await b.get(url);
    assert.equal(first.status, 200);
    let sec = sectionOf(first.text, 'participants');
    assert.match(sec, /Billable party &amp; participants/);
    assert.match(sec, /data-billable-party="client"/);
    assert.match(unescapeHtml(sec), /Bills go to <strong>Northwind Logistics Inc\.<\/strong>/);
    assert.match(sec, new RegExp(`name="billablePartyContactId" value="${f.dana.id}"`), 'each contact of the client can be the billable party');
    assert.match(sec, new RegExp(`name="billablePartyContactId" value="${f.sam.id}"`));
    assert.doesNotMatch(sec, new RegExp(f.stranger.id), "another client's contacts are not offered");
    assert.match(first.text, /href="\/matters\/[^"]+\/participants">Participants</);

    // Choose Dana as billable party and add Sam as a participant in the blank row.
    let form = formPairs(sec);
    form = setOne(form, 'billablePartyContactId', f.dana.id);
    form = setNth(form, 'participants.contactId', 0, f.sam.id);
    form = setNth(form, 'participants.role', 0, 'Instructing');
    const saved = await post(b, `${url}/participants`, form);
    assert.equal(saved.status, 303, saved.text.slice(0, 300));
    assert.equal(saved.location, `${url}#participants`);
    let d = await details();
    assert.deepEqual({ kind: d.billableParty.kind, contactId: d.billableParty.contactId, email: d.billableParty.email },
      { kind: 'contact', contactId: f.dana.id, email: 'dana@northwind.example' });
    assert.deepEqual(d.participants.map((p) => [p.name, p.role]), [['Sam Ortiz', 'Instructing']]);

    // The page now shows Dana and the saved row, plus a blank row to add another (Dana as a witness).
    const second = await b.get(url);
    sec = sectionOf(second.text, 'participants');
    assert.match(unescapeHtml(sec), /Bills go to <strong>Dana Reyes<\/strong>/);
    assert.match(unescapeHtml(second.text), /<dt>Bills go to<\/dt><dd><a id="bills-to" href="#participants">Dana Reyes<\/a>/);
    form = formPairs(sec);
    assert.equal(form.filter(([k]) => k === 'participants.contactId').length, 2, 'the saved row and a blank one');
    form = setNth(form, 'participants.contactId', 1, f.dana.id);
    form = setNth(form, 'participants.role', 1, 'Witness');
    const hx = await post(b, `${url}/participants`, form, { 'hx-request': 'true' });
    assert.equal(hx.status, 200);
    assert.doesNotMatch(hx.text, /<html/i, 'htmx gets the section alone');
    assert.match(hx.text, /<section id="participants"/);
    assert.match(hx.text, /Saved: bills go to Dana Reyes; 2 participants\./);
    assert.match(hx.text, /<a id="bills-to" href="#participants" hx-swap-oob="true">Dana Reyes<\/a>/, "the header's fact follows out of band");
    d = await details();
    assert.deepEqual(d.participants.map((p) => [p.name, p.role]).sort(), [['Dana Reyes', 'Witness'], ['Sam Ortiz', 'Instructing']]);

    // Errors: a row with no role, a contact listed twice, a contact of another client. Each is named, nothing changes.
    const before = JSON.stringify(await details());
    const page = sectionOf((await b.get(url)).text, 'participants');
    const base = formPairs(page);
    const cases: { edit: (p: [string, string][]) => [string, string][]; field: string; message: RegExp }[] = [
      { edit: (p) => setNth(setNth(p, 'participants.contactId', 2, f.sam.id), 'participants.role', 2, ''), field: 'participants.2.role', message: /is required/ },
      { edit: (p) => setNth(setNth(p, 'participants.contactId', 2, f.sam.id), 'participants.role', 2, 'Again'), field: 'participants.2.contactId', message: /is listed twice/ },
      { edit: (p) => setOne(p, 'billablePartyContactId', f.stranger.id), field: 'billablePartyContactId', message: /is not a contact of the matter's client/ },
      { edit: (p) => setNth(setNth(p, 'participants.contactId', 2, f.stranger.id), 'participants.role', 2, 'Expert'), field: 'participants.2.contactId', message: /is not a contact of the matter's client/ },
      { edit: (p) => setNth(p, 'participants.role', 0, 'x'.repeat(101)), field: 'participants.0.role', message: /at most 100 characters/ },
    ];
    for (const c of cases) {
      const res = await post(b, `${url}/participants`, c.edit(base));
      assert.equal(res.status, 422, `${c.field}: ${res.status}`);
      assert.match(fieldError(res.text, c.field), c.message, c.field);
      assert.equal(JSON.stringify(await details()), before, `${c.field}: nothing changed`);
    }

    // Remove the first participant: the rest is saved; back to the client itself as billable party.
    let removeForm = setOne(base, '_action', 'remove:0');
    removeForm = setOne(removeForm, 'billablePartyContactId', '');
    const removed = await post(b, `${url}/participants`, removeForm);
    assert.equal(removed.status, 303);
    d = await details();
    assert.equal(d.billableParty.kind, 'client');
    assert.equal(d.billableParty.contactId, null);
    assert.equal(d.participants.length, 1);

    // Billing's own copy follows through matter_changed.
    await t.runtime.relay.drain();
    const copy = await t.db.db.selectFrom('billing_matter').select(['billable_party_json', 'participants_json']).where('id', '=', f.matter.id).executeTakeFirstOrThrow() as Record<string, string>;
    assert.deepEqual(JSON.parse(copy.billable_party_json!), d.billableParty);
    assert.deepEqual(JSON.parse(copy.participants_json!), d.participants);

    // A reader sees who the bills go to but gets no form, and cannot post.
    const r = await signedIn(t, 'readonly');
    const ro = await r.get(`${url}/participants`);
    assert.equal(ro.status, 200);
    assert.match(unescapeHtml(ro.text), /Bills go to <strong>Northwind Logistics Inc\.<\/strong>/);
    assert.doesNotMatch(sectionOf(ro.text, 'participants'), /<form/);
    assert.equal((await post(r, `${url}/participants`, [['billablePartyContactId', f.dana.id]])).status, 403);
  });
});

eachDialect('the participants API sets and reads them, naming bad fields with nothing changed', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    const u = await t.user('billing');
    const api = new Api(t.browser(), await t.token(u.email));
    const path = `/matters/${f.matter.id}/participants`;
    const set = ok(await api.put(path, { billablePartyContactId: f.sam.id, participants: [{ contactId: f.dana.id, role: 'Accounts' }] }));
    assert.equal(set.billableParty.contactId, f.sam.id);
    assert.deepEqual(set.participants.map((p: { role: string }) => p.role), ['Accounts']);
    const before = (await api.get(path)).text;
    const bad: [unknown, string, RegExp][] = [
      [{ billablePartyContactId: f.stranger.id, participants: [] }, 'billablePartyContactId', /is not a contact of the matter's client/],
      [{ billablePartyContactId: null, participants: [{ contactId: f.dana.id, role: '' }] }, 'participants.0.role', /./],
      [{ billablePartyContactId: null, participants: [{ contactId: f.dana.id, role: 'A' }, { contactId: f.dana.id, role: 'B' }] }, 'participants.1.contactId', /listed twice/],
      [{ billablePartyContactId: 'no-such-contact', participants: [] }, 'billablePartyContactId', /does not exist/],
    ];
    for (const [body, field, message] of bad) {
      const fields = apiFields(await api.put(path, body));
      assert.match(fields[field] ?? '', message, `${field}: ${JSON.stringify(fields)}`);
      assert.equal((await api.get(path)).text, before, `${field}: nothing changed`);
    }
  });
});

eachDialect('timekeepers show their classification with its LEDES code on the pages and the API; a kept code follows a new classification', async (db) => {
  await withApp(db, async (t) => {
    const b = await signedIn(t, 'admin');
    const list = await b.get('/matters/timekeepers');
    assert.equal(list.status, 200);
    assert.match(list.text, /<th>Classification<\/th><th>LEDES classification<\/th>/);
    assert.match(unescapeHtml(list.text), /<option value="LA">LA Legal assistant<\/option>/, 'the LEDES choices are named');

    // A paralegal gets PL by default; an override to LA is kept.
    const pl = await b.post('/matters/timekeepers', { initials: 'PR', name: 'Pat Rowe', classification: 'paralegal' });
    assert.equal(pl.status, 303);
    const la = await b.post('/matters/timekeepers', { initials: 'LQ', name: 'Lee Quinn', classification: 'paralegal', ledesClassification: 'LA' });
    assert.equal(la.status, 303);
    const bad = await b.post('/matters/timekeepers', { initials: 'ZZ', name: 'Zed', classification: 'paralegal', ledesClassification: 'XX' });
    assert.equal(bad.status, 422);
    assert.match(fieldError(bad.text, 'ledesClassification'), /must be one of: PT, AS, OC, PL, LA, OT/);
    const page = unescapeHtml((await b.get('/matters/timekeepers')).text);
    assert.match(page, /Pat Rowe<\/a><\/td>\s*<td>paralegal<\/td><td data-ledes="PL">PL <small class="muted">Paralegal<\/small>/);
    assert.match(page, /Lee Quinn<\/a><\/td>\s*<td>paralegal<\/td><td data-ledes="LA">LA <small class="muted">Legal assistant<\/small>/);
    assert.doesNotMatch(page, /Zed/);

    // The edit page: classification partner with the LEDES code left as it was -> PT follows.
    const id = /\/matters\/timekeepers\/([0-9a-f-]{36})$/.exec(pl.location ?? '')![1]!;
    const tkPage = await b.get(`/matters/timekeepers/${id}`);
    assert.match(unescapeHtml(tkPage.text), /<dd data-ledes="PL">PL <small class="muted">Paralegal<\/small><\/dd>/);
    const edited = await b.post(`/matters/timekeepers/${id}`, { name: 'Pat Rowe', classification: 'partner', ledesClassification: 'PL', active: 'on' });
    assert.equal(edited.status, 303);
    assert.match(unescapeHtml((await b.get(`/matters/timekeepers/${id}`)).text), /<dd data-ledes="PT">PT <small class="muted">Partner<\/small><\/dd>/);
    // A code chosen on purpose is kept.
    assert.equal((await b.post(`/matters/timekeepers/${id}`, { name: 'Pat Rowe', classification: 'partner', ledesClassification: 'OC', active: 'on' })).status, 303);
    assert.match((await b.get(`/matters/timekeepers/${id}`)).text, /data-ledes="OC"/);

    // The API lists both, changes the LEDES code, and names bad values.
    const u = await t.user('billing');
    const api = new Api(t.browser(), await t.token(u.email));
    const items = ok(await api.get('/timekeepers')).items as { initials: string; classification: string; ledesClassification: string }[];
    assert.deepEqual(items.map((x) => [x.initials, x.classification, x.ledesClassification]).sort(), [['LQ', 'paralegal', 'LA'], ['PR', 'partner', 'OC']]);
    const patched = ok(await api.patch(`/timekeepers/${id}`, { classification: 'associate', ledesClassification: 'AS' }));
    assert.deepEqual([patched.classification, patched.ledesClassification], ['associate', 'AS']);
    assert.match(apiFields(await api.patch(`/timekeepers/${id}`, { ledesClassification: 'XX' })).ledesClassification ?? '', /must be one of: PT, AS, OC, PL, LA, OT/);
    assert.match(apiFields(await api.post('/timekeepers', { initials: 'QQ', name: 'Q', classification: 'intern' })).classification ?? '', /must be one of: partner, associate, paralegal, other/);
    assert.equal(ok(await api.get(`/timekeepers/${id}`)).ledesClassification, 'AS', 'nothing changed by the refused patch');
  });
});
