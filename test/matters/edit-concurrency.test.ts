/**
 * Optimistic concurrency on the matters edit forms: each form carries the version it showed;
 * a save from a form opened before someone else's save is refused (409, the form again with
 * what was typed, nothing changed) instead of silently undoing the other edit. Two saves of
 * the same version at once: exactly one wins.
 */
import assert from 'node:assert/strict';
import { systemContext } from '../../src/shared/events.ts';
import { HttpError } from '../../src/shared/web/errors.ts';
import { formFields, unescapeHtml, withApp } from '../support/app.ts';
import type { Browser, TestApp } from '../support/app.ts';
import { eachDialect } from '../support/db.ts';
import { mattersCommands as commands } from './support.ts';

const ctx = systemContext('edit-concurrency-test', 'test');
const STALE = /changed by someone else since you opened it: reload/;

async function firm(cmds: ReturnType<typeof commands>) {
  const mh = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  await cmds.setTimekeeperRate(ctx, { timekeeperId: mh.id, effectiveFrom: '2025-01-01', rateMinor: 32_000 });
  const client = await cmds.createClient(ctx, { name: 'Northwind Logistics Inc.' });
  const matter = await cmds.openMatter(ctx, { clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: mh.id, openedOn: '2025-06-01' });
  const entry = await cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: mh.id, workDate: '2026-02-27', rawMinutes: 90, narrative: 'Draft complaint' });
  return { mh, client, matter, entry };
}

async function signedIn(t: TestApp): Promise<Browser> {
  const u = await t.user('billing');
  const b = t.browser();
  assert.equal((await b.login(u.email)).status, 303);
  return b;
}


async function auditCount(t: TestApp, action: string): Promise<number> {
  const r = await t.db.db.selectFrom('audit_log').select((eb) => eb.fn.countAll().as('n')).where('action', '=', action).executeTakeFirstOrThrow() as { n: number | string };
  return Number(r.n);
}

eachDialect('two tabs edit one time entry: the stale save is refused with 409, the first kept, the typed values shown again', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(commands(db, t));
    const cmds = commands(db, t);
    const b = await signedIn(t);
    const url = `/matters/${f.matter.id}`;
    const fid = `edit-time-${f.entry.id}`;

    const tabA = formFields((await b.get(`${url}/time/${f.entry.id}/edit`)).text, fid);
    const tabB = formFields((await b.get(`${url}/time/${f.entry.id}/edit`)).text, fid);
    assert.equal(tabA.version, '1', 'the form carries the version it shows');
    assert.equal(tabB.narrative, 'Draft complaint');

    // A: 1.5 h -> 3.0 h.
    assert.equal((await b.post(`${url}/time/${f.entry.id}`, { ...tabA, hours: '3.0' })).status, 303);
    assert.equal((await cmds.findTimeEntry(f.entry.id))?.rawMinutes, 180);
    assert.equal(await cmds.findVersion('matters_time_entry', f.entry.id), 2, 'the save bumped the version');

    // B, opened before A saved: refused, nothing changed, its typed values shown again.
    const stale = await b.post(`${url}/time/${f.entry.id}`, { ...tabB, narrative: 'Draft and file complaint' });
    assert.equal(stale.status, 409);
    assert.match(unescapeHtml(stale.text), STALE);
    const shown = formFields(stale.text, fid);
    assert.equal(shown.narrative, 'Draft and file complaint', 'what B typed is shown again');
    assert.equal(shown.hours, tabB.hours);
    const now = await cmds.findTimeEntry(f.entry.id);
    assert.equal(now?.rawMinutes, 180, "A's hours are kept");
    assert.equal(now?.narrative, 'Draft complaint');
    assert.equal(await auditCount(t, 'matters.time_updated'), 1, 'only A saved');

    // htmx too: 409 with the message and the row still being edited.
    const hx = await b.post(`${url}/time/${f.entry.id}`, { ...tabB, narrative: 'Again' }, { headers: { 'hx-request': 'true' } });
    assert.equal(hx.status, 409);
    assert.match(unescapeHtml(hx.text), STALE);
    assert.equal(formFields(hx.text, fid).narrative, 'Again');

    // Reloaded: B's form now carries version 2 and saves.
    const reloaded = formFields((await b.get(`${url}/time/${f.entry.id}/edit`)).text, fid);
    assert.equal(reloaded.version, '2');
    assert.equal((await b.post(`${url}/time/${f.entry.id}`, { ...reloaded, narrative: 'Draft and file complaint' })).status, 303);
    const last = await cmds.findTimeEntry(f.entry.id);
    assert.equal(last?.rawMinutes, 180);
    assert.equal(last?.narrative, 'Draft and file complaint');
  });
});

eachDialect('two tabs edit one matter: the stale save is refused with 409, the rename kept, the typed values shown again', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(commands(db, t));
    const cmds = commands(db, t);
    const b = await signedIn(t);
    const versionOf = (html: string) => /name="version" value="([^"]*)"/.exec(html)?.[1];
    const tabA = versionOf((await b.get(`/matters/${f.matter.id}/edit`)).text) ?? '';
    const tabB = versionOf((await b.get(`/matters/${f.matter.id}/edit`)).text) ?? '';
    assert.ok(tabA && tabA === tabB);
    const base = { responsibleTimekeeperId: f.mh.id, billingCycle: f.matter.billingCycle, nextBillingDate: f.matter.nextBillingDate ?? '', timeUnitMinutes: String(f.matter.timeUnitMinutes), roundingMode: f.matter.roundingMode, defaultBehaviour: f.matter.defaultBehaviour };

    assert.equal((await b.post(`/matters/${f.matter.id}/edit`, { ...base, name: 'Northwind v. Kestrel Air', practiceArea: '', version: tabA })).status, 303);
    assert.equal((await cmds.findMatter(f.matter.id))?.name, 'Northwind v. Kestrel Air');

    const stale = await b.post(`/matters/${f.matter.id}/edit`, { ...base, name: 'Northwind v. Kestrel', practiceArea: 'Litigation', version: tabB });
    assert.equal(stale.status, 409);
    assert.match(unescapeHtml(stale.text), STALE);
    assert.match(stale.text, /name="practiceArea"[^>]*value="Litigation"|value="Litigation"[^>]*name="practiceArea"/, 'what B typed is shown again');
    assert.equal(versionOf(stale.text), tabB, 'the form keeps the version it was opened at');
    const now = await cmds.findMatter(f.matter.id);
    assert.equal(now?.name, 'Northwind v. Kestrel Air', "A's rename is kept");
    assert.equal(now?.practiceArea, null);

    // Reloaded, B saves on top of A's rename.
    const fresh = versionOf((await b.get(`/matters/${f.matter.id}/edit`)).text) ?? '';
    assert.notEqual(fresh, tabB);
    assert.equal((await b.post(`/matters/${f.matter.id}/edit`, { ...base, name: 'Northwind v. Kestrel Air', practiceArea: 'Litigation', version: fresh })).status, 303);
    const last = await cmds.findMatter(f.matter.id);
    assert.equal(last?.name, 'Northwind v. Kestrel Air');
    assert.equal(last?.practiceArea, 'Litigation');

    // A time unit the form's list does not name (the API takes 1 to 60 minutes) is offered as it is, selected, so a
    // save that changes something else keeps it (it was shown unselected and saved as 1 minute).
    await cmds.updateMatter(ctx, f.matter.id, { timeUnitMinutes: 7 });
    const page = (await b.get(`/matters/${f.matter.id}/edit`)).text;
    const unit = /<select name="timeUnitMinutes"[^>]*>([\s\S]*?)<\/select>/.exec(page)?.[1] ?? '';
    assert.match(unit, /<option value="7" selected>7 minutes<\/option>/, unit);
    assert.equal([...unit.matchAll(/ selected/g)].length, 1);
    const selectedUnit = /<option value="([^"]*)" selected/.exec(unit)![1]!;
    assert.equal((await b.post(`/matters/${f.matter.id}/edit`, { ...base, timeUnitMinutes: selectedUnit, name: 'Northwind v. Kestrel Airways', practiceArea: 'Litigation', version: versionOf(page) ?? '' })).status, 303);
    assert.deepEqual([(await cmds.findMatter(f.matter.id))?.name, (await cmds.findMatter(f.matter.id))?.timeUnitMinutes], ['Northwind v. Kestrel Airways', 7]);
  });
});

const is409 = (r: PromiseSettledResult<unknown>) => r.status === 'rejected' && r.reason instanceof HttpError && r.reason.status === 409;

eachDialect('two saves of the same version at once: exactly one wins, the other is refused (409)', async (db) => {
  const cmds = commands(db);
  const f = await firm(cmds);
  for (let round = 0; round < 5; round++) {
    const v = await cmds.findVersion('matters_time_entry', f.entry.id);
    assert.ok(v !== null);
    const results = await Promise.allSettled([
      cmds.updateTimeEntry(ctx, f.entry.id, { rawMinutes: 180 + round }, v),
      cmds.updateTimeEntry(ctx, f.entry.id, { narrative: `Narrative ${round}` }, v),
    ]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, `time entry, round ${round}: exactly one wins`);
    assert.ok(results.some(is409), 'the other is refused as stale');
    assert.equal(await cmds.findVersion('matters_time_entry', f.entry.id), v + 1);

    const mv = await cmds.findVersion('matters_matter', f.matter.id);
    assert.ok(mv !== null);
    const matters = await Promise.allSettled([
      cmds.updateMatter(ctx, f.matter.id, { name: `Renamed ${round}` }, mv),
      cmds.updateMatter(ctx, f.matter.id, { practiceArea: `Area ${round}` }, mv),
    ]);
    assert.equal(matters.filter((r) => r.status === 'fulfilled').length, 1, `matter, round ${round}: exactly one wins`);
    assert.ok(matters.some(is409));
  }
  // Without a version (existing API clients) an update still applies, and bumps the version.
  const v = await cmds.findVersion('matters_time_entry', f.entry.id);
  await cmds.updateTimeEntry(ctx, f.entry.id, { narrative: 'No version given' });
  assert.equal(await cmds.findVersion('matters_time_entry', f.entry.id), v! + 1);
  await assert.rejects(cmds.updateTimeEntry(ctx, f.entry.id, { narrative: 'Stale' }, v!), (e: unknown) => e instanceof HttpError && e.status === 409 && STALE.test(e.message));
});

eachDialect('the JSON API takes an optional expectedVersion: a stale one is refused (409), none applies as before', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(commands(db, t));
    const cmds = commands(db, t);
    const u = await t.user('billing');
    const b = t.browser();
    const auth = { authorization: `Bearer ${await t.token(u.email)}` };
    const patch = (path: string, body: unknown) => b.postJson(`/api/v1${path}`, body, { method: 'PATCH', headers: auth });

    assert.equal((await patch(`/time-entries/${f.entry.id}`, { hours: '3.0', expectedVersion: 1 })).status, 200);
    const stale = await patch(`/time-entries/${f.entry.id}`, { narrative: 'Stale', expectedVersion: 1 });
    assert.equal(stale.status, 409);
    assert.match(stale.text, STALE);
    assert.equal((await cmds.findTimeEntry(f.entry.id))?.narrative, 'Draft complaint');
    assert.equal((await patch(`/time-entries/${f.entry.id}`, { narrative: 'No version' })).status, 200, 'existing clients work');
    assert.equal((await cmds.findTimeEntry(f.entry.id))?.rawMinutes, 180);

    assert.equal((await patch(`/matters/${f.matter.id}`, { name: 'Renamed', expectedVersion: 1 })).status, 200);
    assert.equal((await patch(`/matters/${f.matter.id}`, { practiceArea: 'Litigation', expectedVersion: 1 })).status, 409);
    assert.equal((await cmds.findMatter(f.matter.id))?.practiceArea, null);
    assert.equal((await patch(`/matters/${f.matter.id}`, { practiceArea: 'Litigation' })).status, 200);
  });
});
