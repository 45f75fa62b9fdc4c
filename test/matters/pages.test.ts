/**
 * The matters pages through the real app and a cookie-jar browser: who may see and
 * change what, instant search and paging, the forms (303 on success, 422 naming the
 * field with nothing changed), and the matter's WIP table with its running totals.
 */
import assert from 'node:assert/strict';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import type { MattersCommands } from '../../src/modules/matters/index.ts';
import { systemContext } from '../../src/shared/events.ts';
import type { Role } from '../../src/shared/web/types.ts';
import { formFields, unescapeHtml, withApp } from '../support/app.ts';
import type { Browser, Page, TestApp } from '../support/app.ts';
import { eachDialect } from '../support/db.ts';

const ctx = systemContext('pages-test', 'test');

/** Two timekeepers with rates, three clients and three matters, one time entry and one disbursement. */
async function firm(t: TestApp) {
  const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: { kick: () => undefined } });
  const mh = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  await cmds.setTimekeeperRate(ctx, { timekeeperId: mh.id, effectiveFrom: '2025-01-01', rateMinor: 32_000 });
  const sc = await cmds.createTimekeeper(ctx, { initials: 'SC', name: 'Sofia Castellano', classification: 'associate' });
  await cmds.setTimekeeperRate(ctx, { timekeeperId: sc.id, effectiveFrom: '2025-01-01', rateMinor: 18_500 });
  const northwind = await cmds.createClient(ctx, { name: 'Northwind Logistics Inc.', email: 'ap@northwind.example' });
  const acme = await cmds.createClient(ctx, { name: 'Acme Widgets LLC' });
  const zenith = await cmds.createClient(ctx, { name: 'Zenith Holdings' });
  const kestrel = await cmds.openMatter(ctx, {
    clientId: northwind.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: mh.id, openedOn: '2025-06-01', billingCycle: 'MONTH', wipCapMinor: 500_000,
  });
  const lease = await cmds.openMatter(ctx, { clientId: acme.id, name: 'Warehouse lease review', responsibleTimekeeperId: sc.id, billingCycle: 'QUARTER', openedOn: '2025-09-01' });
  const merger = await cmds.openMatter(ctx, { clientId: zenith.id, name: 'Zenith merger', responsibleTimekeeperId: mh.id, openedOn: '2025-10-01' });
  const entry = await cmds.recordTimeEntry(ctx, { matterId: kestrel.id, timekeeperId: mh.id, workDate: '2026-02-27', rawMinutes: 60, narrative: 'Draft complaint' });
  const filing = await cmds.recordDisbursement(ctx, { matterId: kestrel.id, incurredOn: '2026-02-27', code: 'COURT', unitCostMinor: 40_000, description: 'Filing fee' });
  return { cmds, mh, sc, northwind, acme, zenith, kestrel, lease, merger, entry, filing };
}

async function signedIn(t: TestApp, role: Role, name?: string): Promise<Browser> {
  const u = await t.user(role, name ? { name, email: `${role}-${name.split(' ')[0]!.toLowerCase()}@firm.test` } : {});
  const b = t.browser();
  const res = await b.login(u.email);
  assert.equal(res.status, 303, 'signed in');
  return b;
}

/** The minor-unit total shown for one of the WIP totals (fees, disbursements, wip, hidden, no-charge). */
function total(html: string, key: string): number {
  const m = new RegExp(`data-total="${key}" data-minor="(-?\\d+)"`).exec(html);
  assert.ok(m, `total ${key} on the page`);
  return Number(m[1]);
}

function isFragment(p: Page): void {
  assert.doesNotMatch(p.text, /<html|<!doctype|<head/i, 'a fragment, not a page');
}

function fieldError(p: Page, field: string): string {
  const m = new RegExp(`data-error-for="${field.replace('.', '\\.')}"[^>]*>([^<]*)<`).exec(p.text);
  assert.ok(m, `an error shown for ${field}: ${p.text.slice(0, 0)}`);
  return unescapeHtml(m[1]!.trim());
}

async function count(t: TestApp, table: string): Promise<number> {
  const r = await t.db.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow() as { n: number | string };
  return Number(r.n);
}

eachDialect('matters pages render for every reader and refuse writes to those who may not write', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    const readable = ['/matters', '/matters/clients', `/matters/clients/${f.northwind.id}`, '/matters/timekeepers', `/matters/timekeepers/${f.mh.id}`,
      '/matters/time', `/matters/${f.kestrel.id}`];
    for (const role of ['admin', 'billing', 'timekeeper', 'readonly'] as const) {
      const b = await signedIn(t, role);
      for (const path of readable) {
        const res = await b.get(path);
        assert.equal(res.status, 200, `${role} reads ${path}`);
        assert.match(res.text, /^<!doctype html>/i);
      }
      const matter = await b.get(`/matters/${f.kestrel.id}`);
      assert.match(matter.text, /Northwind v\. Kestrel/);
      assert.match(matter.text, new RegExp(`${f.kestrel.fileNumber.replace('.', '\\.')}`));
      const canEnter = role !== 'readonly';
      assert.equal(/id="add-time"/.test(matter.text), canEnter, `${role} sees the add-time row: ${canEnter}`);
      const canWrite = role === 'admin' || role === 'billing';
      assert.equal((await b.get('/matters/new')).status, canWrite ? 200 : 403, `${role} open-matter form`);
      assert.equal(/id="new-client"/.test((await b.get('/matters/clients')).text), canWrite);
    }
    // Refused changes leave nothing behind.
    const clients = await count(t, 'matters_client');
    const entries = await count(t, 'matters_time_entry');
    const tkUser = await signedIn(t, 'timekeeper', 'Tess Keeper');
    await tkUser.get('/matters/clients');
    assert.equal((await tkUser.post('/matters/clients', { name: 'Sneaky Co' })).status, 403);
    assert.equal((await tkUser.post('/matters/timekeepers', { initials: 'XX', name: 'X', classification: 'other' })).status, 403);
    assert.equal((await tkUser.post(`/matters/timekeepers/${f.mh.id}/rates`, { effectiveFrom: '2026-01-01', rate: '1.00' })).status, 403);
    const ro = await signedIn(t, 'readonly', 'Rhea Only');
    await ro.get(`/matters/${f.kestrel.id}`);
    assert.equal((await ro.post(`/matters/${f.kestrel.id}/time`, { timekeeperId: f.mh.id, workDate: '2026-03-01', hours: '1', narrative: 'x' })).status, 403);
    assert.equal((await ro.post(`/matters/${f.kestrel.id}/time/${f.entry.id}/delete`, {})).status, 403);
    assert.equal((await ro.post('/matters/time', { fileNumber: f.kestrel.fileNumber, timekeeperId: f.mh.id, workDate: '2026-03-01', hours: '1', narrative: 'x' })).status, 403);
    assert.equal(await count(t, 'matters_client'), clients);
    assert.equal(await count(t, 'matters_time_entry'), entries);
    // Anonymous visitors are sent to sign in.
    const anon = await t.browser().get('/matters/clients');
    assert.equal(anon.status, 303);
    assert.match(anon.location ?? '', /^\/login/);
  });
});

eachDialect('client and matter search narrow the list; an htmx search gets only the fragment; paging shows the total', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    const b = await signedIn(t, 'billing');

    const all = await b.get('/matters/clients');
    for (const name of ['Northwind Logistics', 'Acme Widgets', 'Zenith Holdings']) assert.match(all.text, new RegExp(name));
    assert.match(all.text, /hx-trigger="input changed delay:300ms"/);

    const byName = await b.get('/matters/clients?q=acme', { 'hx-request': 'true' });
    assert.equal(byName.status, 200);
    isFragment(byName);
    assert.match(byName.text.trimStart(), /^<div id="clients">/);
    assert.match(byName.text, /Acme Widgets/);
    assert.doesNotMatch(byName.text, /Northwind|Zenith/);
    const byNumber = await b.get(`/matters/clients?q=${f.zenith.clientNumber}`);
    assert.match(byNumber.text, /Zenith Holdings/);
    assert.doesNotMatch(byNumber.text, /Northwind Logistics|Acme Widgets/);
    const literal = await b.get('/matters/clients?q=%25');
    assert.match(literal.text, /No clients match/, '% is taken literally');

    const matters = await b.get('/matters');
    for (const name of ['Northwind v. Kestrel', 'Warehouse lease review', 'Zenith merger']) assert.match(unescapeHtml(matters.text), new RegExp(name.replace('.', '\\.')));
    const byClient = await b.get('/matters?q=northwind', { 'hx-request': 'true' });
    isFragment(byClient);
    assert.match(byClient.text.trimStart(), /^<div id="matters">/);
    assert.match(byClient.text, /Northwind v\. Kestrel/);
    assert.doesNotMatch(byClient.text, /Warehouse lease|Zenith merger/);
    const byFile = await b.get(`/matters?q=${f.lease.fileNumber}`);
    assert.match(byFile.text, /Warehouse lease review/);
    assert.doesNotMatch(byFile.text, /Kestrel|Zenith merger/);
    const byTk = await b.get(`/matters?timekeeperId=${f.sc.id}`);
    assert.match(byTk.text, /Warehouse lease review/);
    assert.doesNotMatch(byTk.text, /Kestrel|Zenith merger/);
    const byCycle = await b.get('/matters?billingCycle=MONTH');
    assert.match(byCycle.text, /Kestrel/);
    assert.doesNotMatch(byCycle.text, /Warehouse lease|Zenith merger/);
    const closed = await b.get('/matters?status=closed');
    assert.match(closed.text, /No matters match/);
    // Seed 004's filters: next billing date between, WIP at least an amount, WIP cap reached.
    const due = await b.get('/matters?nextFrom=2025-11-01&nextTo=2025-12-31');
    assert.match(due.text, /Warehouse lease review/);
    assert.doesNotMatch(due.text, /Kestrel|Zenith merger/);
    const wipAtLeast = await b.get('/matters?wipAtLeast=700.00');
    assert.match(wipAtLeast.text, /Kestrel/);
    assert.doesNotMatch(wipAtLeast.text, /Warehouse lease|Zenith merger/);
    assert.match((await b.get('/matters?wipAtLeast=720.01')).text, /No matters match/);
    assert.match((await b.get('/matters?cap=reached')).text, /No matters match/);
    await f.cmds.recordTimeEntry(ctx, { matterId: f.kestrel.id, timekeeperId: f.mh.id, workDate: '2026-03-01', rawMinutes: 900, narrative: 'Trial day' });
    const atCap = await b.get('/matters?cap=reached');
    assert.match(atCap.text, /Kestrel/);
    assert.match(atCap.text, /over cap/);
    assert.doesNotMatch(atCap.text, /Warehouse lease|Zenith merger/);
    assert.equal((await b.get('/matters?nextFrom=soon')).status, 422);

    // Paging: 30 more clients make two pages of 25.
    for (let i = 0; i < 30; i++) await f.cmds.createClient(ctx, { name: `Paged Client ${String(i).padStart(2, '0')}` });
    const first = await b.get('/matters/clients?q=paged');
    assert.match(first.text, /1–25 of 30/);
    assert.match(first.text, /Paged Client 24/);
    assert.doesNotMatch(first.text, /Paged Client 25/);
    assert.match(first.text, /href="\/matters\/clients\?q=paged&amp;offset=25"/);
    const second = await b.get('/matters/clients?q=paged&offset=25', { 'hx-request': 'true' });
    isFragment(second);
    assert.match(second.text, /26–30 of 30/);
    assert.match(second.text, /Paged Client 29/);
    assert.doesNotMatch(second.text, /Paged Client 24/);
  });
});

eachDialect('a client is created through the form; a bad email re-renders 422 naming the field and adds nothing', async (db) => {
  await withApp(db, async (t) => {
    await firm(t);
    const b = await signedIn(t, 'billing');
    await b.get('/matters/clients');
    const before = await count(t, 'matters_client');
    const bad = await b.post('/matters/clients', { name: 'Globex Corporation', email: 'not-an-email' });
    assert.equal(bad.status, 422);
    assert.match(fieldError(bad, 'email'), /email/);
    assert.match(bad.text, /value="Globex Corporation"/, 'what was typed is kept');
    assert.equal(await count(t, 'matters_client'), before);
    const missing = await b.post('/matters/clients', { name: '' }, { headers: { 'hx-request': 'true' } });
    assert.equal(missing.status, 422);
    isFragment(missing);
    assert.equal(fieldError(missing, 'name'), 'is required');

    const ok = await b.post('/matters/clients', { name: 'Globex Corporation', email: 'billing@globex.example' });
    assert.equal(ok.status, 303);
    assert.match(ok.location ?? '', /^\/matters\/clients\/[0-9a-f-]{36}$/);
    const page = await b.get(ok.location!);
    assert.match(page.text, /Globex Corporation/);
    assert.match(page.text, /billing@globex\.example/);
    assert.equal(await count(t, 'matters_client'), before + 1);
    // An htmx post is told where to go rather than redirected.
    const hx = await b.post('/matters/clients', { name: 'Initech' }, { headers: { 'hx-request': 'true' } });
    assert.equal(hx.status, 200);
    assert.match(hx.headers.get('hx-redirect') ?? '', /^\/matters\/clients\/[0-9a-f-]{36}$/);
  });
});

eachDialect('a matter is opened through the form; a bad WIP cap or missing timekeeper re-renders 422 with nothing opened', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    const b = await signedIn(t, 'admin');
    const form = await b.get(`/matters/new?clientId=${f.acme.id}`);
    assert.equal(form.status, 200);
    assert.match(form.text, new RegExp(`<option value="${f.acme.id}" selected>`));
    const before = await count(t, 'matters_matter');
    const fields = { clientId: f.acme.id, name: 'Acme v. Roadrunner', responsibleTimekeeperId: f.mh.id, billingCycle: 'MONTH', openedOn: '2026-03-02' };
    const bad = await b.post('/matters', { ...fields, wipCap: '12.345' });
    assert.equal(bad.status, 422);
    assert.match(fieldError(bad, 'wipCap'), /decimal places/);
    const noTk = await b.post('/matters', { ...fields, responsibleTimekeeperId: '' });
    assert.equal(noTk.status, 422);
    assert.equal(fieldError(noTk, 'responsibleTimekeeperId'), 'is required');
    assert.equal(await count(t, 'matters_matter'), before);

    const ok = await b.post('/matters', { ...fields, wipCap: '2,500.00', practiceArea: 'Litigation' });
    assert.equal(ok.status, 303);
    const page = await b.get(ok.location!);
    assert.match(page.text, /Acme v\. Roadrunner/);
    assert.match(page.text, /\$2,500\.00 below the cap of \$2,500\.00/);
    assert.match(page.text, /Litigation/);
    const matter = (await f.cmds.listMatters({ clientId: f.acme.id })).find((m) => m.name === 'Acme v. Roadrunner');
    assert.equal(matter?.wipCapMinor, 250_000);
    assert.equal(matter?.nextBillingDate, '2026-04-02');
  });
});

eachDialect('quick time entry records by file number and shows the resolved rate; bad hours re-render 422 with nothing recorded', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    await f.cmds.setClientRate(ctx, { clientId: f.northwind.id, timekeeperId: f.sc.id, rateMinor: 21_000 });
    const b = await signedIn(t, 'timekeeper', 'Sofia Castellano');
    await f.cmds.updateTimekeeper(ctx, f.sc.id, { staffEmail: 'Timekeeper-Sofia@firm.test ' });
    assert.equal((await f.cmds.findTimekeeper(f.sc.id))?.staffEmail, 'timekeeper-sofia@firm.test', 'kept as sign-in takes it');
    const page = await b.get('/matters/time');
    assert.equal(page.status, 200);
    assert.match(page.text, /Quick entry for SC Sofia Castellano/, 'the signed-in timekeeper\'s own is chosen');
    // Another timekeeper's time: not recorded, changed or deleted from this sign-in.
    const others = await count(t, 'matters_time_entry');
    const forMh = await b.post('/matters/time', { fileNumber: f.kestrel.fileNumber, timekeeperId: f.mh.id, workDate: '2026-03-02', hours: '1', narrative: 'Not mine' });
    assert.equal(forMh.status, 422);
    assert.match(unescapeHtml(forMh.text), /<strong>Timekeeper MH<\/strong> is not your timekeeper: your sign-in records the time of SC Sofia Castellano only/);
    await b.get(`/matters/${f.kestrel.id}`);
    for (const res of [await b.get(`/matters/${f.kestrel.id}/time/${f.entry.id}/edit`), await b.post(`/matters/${f.kestrel.id}/time/${f.entry.id}/delete`, {})]) {
      assert.equal(res.status, 403);
      assert.match(unescapeHtml(res.text), /This is MH Margaret Holloway's time: your sign-in changes the time of its own timekeeper only/);
    }
    assert.equal(await count(t, 'matters_time_entry'), others, 'nothing recorded or deleted');
    const before = await count(t, 'matters_time_entry');
    const entry = { fileNumber: f.kestrel.fileNumber, timekeeperId: f.sc.id, workDate: '2026-03-02', narrative: 'Review discovery', taskCode: 'L310', activityCode: 'A104' };
    for (const [hours, message] of [['1.234', /whole number of minutes/], ['abc', /hours such as/], ['25', /at most 24 hours/]] as const) {
      const bad = await b.post('/matters/time', { ...entry, hours });
      assert.equal(bad.status, 422, hours);
      assert.match(fieldError(bad, 'hours'), message);
      assert.match(bad.text, /value="Review discovery"|>Review discovery</);
    }
    // No rate on the date: said of the timekeeper the form is for (its id is a hidden field, not named).
    const noRate = await b.post('/matters/time', { ...entry, fileNumber: f.lease.fileNumber, hours: '1', workDate: '1999-01-01' });
    assert.equal(noRate.status, 422, noRate.text.slice(0, 300));
    assert.match(noRate.text, /<li data-error-for="timekeeperId"><strong>Timekeeper SC<\/strong> has no rate on 1999-01-01/);
    const noMatter = await b.post('/matters/time', { ...entry, fileNumber: '999.1', hours: '1' });
    assert.equal(noMatter.status, 422);
    assert.match(fieldError(noMatter, 'fileNumber'), /not a matter/);
    assert.equal(await count(t, 'matters_time_entry'), before);

    const ok = await b.post('/matters/time', { ...entry, hours: '1:30' });
    assert.equal(ok.status, 303);
    const after = await b.get(ok.location!);
    assert.match(after.text, /Recorded 1\.5 h on/);
    assert.match(after.text, /<strong class="rate">\$210\.00\/h<\/strong> \(client rate\)/);
    assert.match(after.text, /\$315\.00/);
    const saved = (await f.cmds.listTimeEntries(f.kestrel.id)).find((e) => e.narrative === 'Review discovery');
    assert.equal(saved?.rawMinutes, 90);
    assert.equal(saved?.amountMinor, 31_500);
    assert.equal(saved?.taskCode, 'L310');

    const hx = await b.post('/matters/time', { ...entry, hours: '0.1', narrative: 'Call with client' }, { headers: { 'hx-request': 'true' } });
    assert.equal(hx.status, 200);
    isFragment(hx);
    assert.match(hx.text, /Recorded 0\.1 h/);
    assert.match(hx.text, /\$21\.00/);

    // Work dated after today: taken, and said, with and without JavaScript (the redirect's page shows it for this user only).
    const future = { ...entry, hours: '0.5', narrative: 'Hearing prep', workDate: '2027-03-02' };
    const said = /Dated 2027-03-02, after today \(2026-03-02\): no bill up to today takes it/;
    const nojs = await b.post('/matters/time', future);
    assert.equal(nojs.status, 303);
    assert.match(nojs.location ?? '', /[?&]done=/);
    assert.match(unescapeHtml((await b.get(nojs.location!)).text), said);
    assert.doesNotMatch(unescapeHtml((await (await signedIn(t, 'billing')).get(nojs.location!)).text), said, 'not shown to another user');
    assert.match(unescapeHtml((await b.post('/matters/time', { ...future, narrative: 'Hearing prep 2' }, { headers: { 'hx-request': 'true' } })).text), said);

    const preview = await b.get(`/matters/time/rate?fileNumber=${f.lease.fileNumber}&timekeeperId=${f.sc.id}&workDate=2026-03-02`, { 'hx-request': 'true' });
    assert.match(preview.text, /\$185\.00\/h<\/strong> \(standard rate/);
  });
});

eachDialect('inline WIP edits change the totals by the exact amount; billed and draft items are refused and say why', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    const b = await signedIn(t, 'billing');
    const page = await b.get(`/matters/${f.kestrel.id}`);
    assert.equal(total(page.text, 'fees'), 32_000);
    assert.equal(total(page.text, 'disbursements'), 40_000);
    assert.equal(total(page.text, 'wip'), 72_000);
    assert.match(page.text, /\$4,280\.00 below the cap of \$5,000\.00/);

    // The edit row comes as part of the WIP section for htmx.
    const edit = await b.get(`/matters/${f.kestrel.id}/time/${f.entry.id}/edit`, { 'hx-request': 'true' });
    assert.equal(edit.status, 200);
    isFragment(edit);
    assert.match(edit.text, new RegExp(`<form id="edit-time-${f.entry.id}"`));
    assert.match(edit.text, /name="hours" value="1"/);

    // 1.0 h -> 1.5 h at 320.00: fees and WIP rise by exactly 160.00; the cap is updated out of band.
    const saved = await b.post(`/matters/${f.kestrel.id}/time/${f.entry.id}`, {
      timekeeperId: f.mh.id, workDate: '2026-02-27', hours: '1.5', narrative: 'Draft complaint and exhibits', behaviour: 'bill',
    }, { headers: { 'hx-request': 'true' } });
    assert.equal(saved.status, 200);
    isFragment(saved);
    assert.equal(total(saved.text, 'fees'), 32_000 + 16_000);
    assert.equal(total(saved.text, 'wip'), 72_000 + 16_000);
    assert.match(saved.text, /<span id="wip-cap"[^>]*hx-swap-oob="true"/);
    assert.match(saved.text, /\$4,120\.00 below the cap/);
    assert.match(saved.text, /Draft complaint and exhibits/);

    // A bad value: 422 with the row still in edit mode and the error by the input; nothing changed.
    const bad = await b.post(`/matters/${f.kestrel.id}/time/${f.entry.id}`, {
      timekeeperId: f.mh.id, workDate: '2026-02-31', hours: '2', narrative: 'x', behaviour: 'bill',
    });
    assert.equal(bad.status, 422);
    assert.match(fieldError(bad, 'workDate'), /date/);
    assert.match(bad.text, new RegExp(`<form id="edit-time-${f.entry.id}"`));
    assert.equal((await f.cmds.findTimeEntry(f.entry.id))?.amountMinor, 48_000);

    // Hiding the disbursement moves 400.00 from disbursements to hidden; the total drops by it.
    const hidden = await b.post(`/matters/${f.kestrel.id}/disbursements/${f.filing.id}`, {
      incurredOn: '2026-02-27', code: 'COURT', quantity: '1', unitCost: '400.00', description: 'Filing fee', behaviour: 'hide',
    });
    assert.equal(hidden.status, 303);
    const afterHide = await b.get(`/matters/${f.kestrel.id}`);
    assert.equal(total(afterHide.text, 'disbursements'), 0);
    assert.equal(total(afterHide.text, 'hidden'), 40_000);
    assert.equal(total(afterHide.text, 'wip'), 48_000);

    // Inline add through htmx: a 422 keeps the add row's values; a good one adds its amount.
    const addBad = await b.post(`/matters/${f.kestrel.id}/time`, { timekeeperId: f.sc.id, workDate: '2026-03-01', hours: '0', narrative: 'Research' }, { headers: { 'hx-request': 'true' } });
    assert.equal(addBad.status, 422);
    assert.match(fieldError(addBad, 'hours'), /more than zero/);
    assert.match(addBad.text, />Research</);
    const added = await b.post(`/matters/${f.kestrel.id}/time`, { timekeeperId: f.sc.id, workDate: '2026-03-01', hours: '2', narrative: 'Research', behaviour: 'bill' }, { headers: { 'hx-request': 'true' } });
    assert.equal(added.status, 200);
    assert.equal(total(added.text, 'fees'), 48_000 + 37_000);
    assert.match(added.text, /Recorded 2 h at 185\.00\/h \(standard rate\)/);

    // Delete asks first, in the row, without JavaScript too (review 51, L4: hx-confirm only),
    // carrying the version shown: an entry changed since is refused (409), not deleted unseen.
    const entries = await f.cmds.listTimeEntries(f.kestrel.id);
    const research = entries.find((e) => e.narrative === 'Research')!;
    assert.match(added.text, new RegExp(`href="/matters/${f.kestrel.id}/time/${research.id}/delete"`));
    assert.doesNotMatch(added.text, /hx-confirm="Delete/);
    const ask = await b.get(`/matters/${f.kestrel.id}/time/${research.id}/delete`);
    assert.equal(ask.status, 200);
    assert.match(ask.text, /<title>/, 'a whole page without JavaScript');
    const confirmForm = (html: string) => html.match(new RegExp(`<form method="post" action="/matters/${f.kestrel.id}/time/${research.id}/delete"[^]*?</form>`))?.[0] ?? '';
    assert.match(confirmForm(ask.text), /Delete this time entry\?[^]*name="version" value="1"/);
    assert.equal(total(ask.text, 'fees'), 48_000 + 37_000, 'nothing deleted by asking');
    const askHx = await b.get(`/matters/${f.kestrel.id}/time/${research.id}/delete`, { 'hx-request': 'true' });
    assert.doesNotMatch(askHx.text, /<title>/);
    assert.match(confirmForm(askHx.text), /name="version" value="1"/);
    await f.cmds.updateTimeEntry(ctx, research.id, { narrative: 'Research, revised' }, 1);
    const stale = await b.post(`/matters/${f.kestrel.id}/time/${research.id}/delete`, { version: '1' }, { headers: { 'hx-request': 'true' } });
    assert.equal(stale.status, 409);
    assert.match(stale.text, /changed by someone else since you opened it/);
    assert.equal((await f.cmds.findTimeEntry(research.id))?.narrative, 'Research, revised');
    const deleted = await b.post(`/matters/${f.kestrel.id}/time/${research.id}/delete`, { version: '2' }, { headers: { 'hx-request': 'true' } });
    assert.equal(deleted.status, 200);
    assert.equal(total(deleted.text, 'fees'), 48_000);
    assert.equal(await f.cmds.findTimeEntry(research.id), null);

    // An item on a draft bill shows why it is locked and cannot be edited or deleted.
    await t.db.db.updateTable('matters_time_entry').set({ status: 'draft' }).where('id', '=', f.entry.id).execute();
    const locked = await b.get(`/matters/${f.kestrel.id}`);
    assert.match(locked.text, /On a draft bill: leave it off the draft in the composer \(or delete the draft\), then change it/);
    assert.doesNotMatch(locked.text, new RegExp(`/time/${f.entry.id}/edit`));
    assert.equal(total(locked.text, 'fees'), 0, 'draft items are no longer WIP');
    const refusedEdit = await b.post(`/matters/${f.kestrel.id}/time/${f.entry.id}`, {
      timekeeperId: f.mh.id, workDate: '2026-02-27', hours: '3', narrative: 'x', behaviour: 'bill',
    });
    assert.equal(refusedEdit.status, 409);
    assert.match(refusedEdit.text, /only unbilled work can be changed/);
    const refusedDelete = await b.post(`/matters/${f.kestrel.id}/time/${f.entry.id}/delete`, {});
    assert.equal(refusedDelete.status, 409);
    assert.equal((await f.cmds.findTimeEntry(f.entry.id))?.billedMinutes, 90);

    // Items of another matter are not found through this one.
    const other = await b.get(`/matters/${f.lease.id}/time/${f.entry.id}/edit`);
    assert.equal(other.status, 404);
  });
});

eachDialect('the matter page links to its bills and, for billing staff, to the composer', async (db) => {
  await withApp(db, async ({ runtime, browser, user }) => {
    const cmds = createMattersCommands({ db: db.db, clock: runtime.clock, relay: runtime.relay });
    const ctx = systemContext('test', 'test');
    const tk = await cmds.createTimekeeper(ctx, { initials: 'PP', name: 'Pat Partner', classification: 'partner' });
    const client = await cmds.createClient(ctx, { name: 'Acme Ltd' });
    const matter = await cmds.openMatter(ctx, { clientId: client.id, name: 'Acme v Road Runner', responsibleTimekeeperId: tk.id, billingTimekeeperId: tk.id, openedOn: '2026-01-05' });
    await user('billing', { email: 'clerk@firm.test' });
    const clerk = browser();
    await clerk.login('clerk@firm.test');
    const page = await clerk.get(`/matters/${matter.id}`);
    assert.equal(page.status, 200);
    assert.ok(page.text.includes(`href="/billing/matters/${matter.id}/compose"`), 'composer link');
    assert.ok(page.text.includes(`href="/billing/matters/${matter.id}/bills"`), 'bills link');
    await user('timekeeper', { email: 'tk@firm.test' });
    const lawyer = browser();
    await lawyer.login('tk@firm.test');
    const seen = await lawyer.get(`/matters/${matter.id}`);
    assert.equal(seen.status, 200);
    assert.ok(!seen.text.includes('/billing/matters/'), 'timekeepers, who cannot use billing, get no billing links');
  });
});

eachDialect('a disbursement\'s tax code is chosen, shown and changed on the matter page; an unknown one is refused at its field', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    const b = await signedIn(t, 'billing');
    const url = `/matters/${f.kestrel.id}`;
    const shown = formFields((await b.get(url)).text, 'add-disb');
    assert.equal(shown.taxCode, '', 'no code of its own by default (the firm default when billed)');
    const typed = { ...shown, incurredOn: '2026-03-01', code: 'COPY', quantity: '2', unitCost: '19.99', description: 'Binders' };
    const bad = await b.post(`${url}/disbursements`, { ...typed, taxCode: 'GST' });
    assert.equal(bad.status, 422);
    assert.match(fieldError(bad, 'taxCode'), /must be one of the firm's tax codes: EXEMPT, SALES/);
    assert.equal((await f.cmds.listDisbursements(f.kestrel.id)).length, 1, 'nothing recorded');
    assert.equal((await b.post(`${url}/disbursements`, { ...typed, taxCode: 'SALES' })).status, 303);
    const d = (await f.cmds.listDisbursements(f.kestrel.id)).find((x) => x.description === 'Binders')!;
    assert.deepEqual([d.taxCode, d.amountMinor], ['SALES', 3_998]);
    const page = await b.get(url);
    assert.match(page.text, new RegExp(`id="di-${d.id}"[\\s\\S]*?· tax SALES`), 'the row shows its tax code');
    // Its edit form shows the code chosen; choosing the firm default clears it.
    const edit = await b.get(`${url}/disbursements/${d.id}/edit`);
    const fields = formFields(edit.text, `edit-disb-${d.id}`);
    assert.equal(fields.taxCode, 'SALES');
    assert.equal((await b.post(`${url}/disbursements/${d.id}`, { ...fields, taxCode: '' })).status, 303);
    assert.equal((await f.cmds.listDisbursements(f.kestrel.id)).find((x) => x.id === d.id)!.taxCode, null);
  });
});

eachDialect('a timekeeper is linked to a staff account on its page; one account links one timekeeper', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    const b = await signedIn(t, 'billing');
    const url = `/matters/timekeepers/${f.mh.id}`;
    const page = await b.get(url);
    assert.match(page.text, /none: a sign-in with the timekeeper role cannot record this timekeeper's time/);
    const base = { name: 'Margaret Holloway', classification: 'partner', ledesClassification: 'PT', active: 'on' };
    assert.equal((await b.post(url, { ...base, staffEmail: 'MH@firm.test' })).status, 303);
    assert.match((await b.get(url)).text, /id="staff-account">mh@firm\.test/);
    const bad = await b.post(url, { ...base, staffEmail: 'not an email' });
    assert.equal(bad.status, 422);
    assert.match(fieldError(bad, 'staffEmail'), /must be a staff account's email/);
    const taken = await b.post(`/matters/timekeepers/${f.sc.id}`, { name: 'Sofia Castellano', classification: 'associate', ledesClassification: 'AS', active: 'on', staffEmail: 'mh@firm.test' });
    assert.equal(taken.status, 422);
    assert.match(fieldError(taken, 'staffEmail'), /is linked to MH Margaret Holloway: unlink it there first/);
    assert.equal((await f.cmds.findTimekeeper(f.sc.id))?.staffEmail, null);
    // Emptied: unlinked (audited as a change).
    assert.equal((await b.post(url, { ...base, staffEmail: '' })).status, 303);
    assert.equal((await f.cmds.findTimekeeper(f.mh.id))?.staffEmail, null);
  });
});
