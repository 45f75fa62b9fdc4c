/**
 * Creating work once: the forms that record a time entry, a disbursement or a fixed charge
 * carry a hidden id rendered with the form (fresh each time it is shown, kept when it is shown
 * again after a refusal), and the record commands take it as the new item's id. The same form
 * posted twice, or five times at once, is one item (one row, one event, one audit row) on both
 * databases; an id of another matter's item, or of an item of another kind, is refused (409
 * naming `id`). The JSON API takes the same optional id, and returns each row's `version` for
 * a client to send back as `expectedVersion`.
 */
import assert from 'node:assert/strict';
import { systemContext } from '../../src/shared/events.ts';
import { HttpError } from '../../src/shared/web/errors.ts';
import { formFields, unescapeHtml, withApp } from '../support/app.ts';
import type { Browser, Page, TestApp } from '../support/app.ts';
import { eachDialect } from '../support/db.ts';
import { mattersCommands as commands } from './support.ts';

const ctx = systemContext('create-idempotency-test', 'test');
const HX = { 'hx-request': 'true' };

async function firm(cmds: ReturnType<typeof commands>) {
  const mh = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  await cmds.setTimekeeperRate(ctx, { timekeeperId: mh.id, effectiveFrom: '2025-01-01', rateMinor: 32_000 });
  const client = await cmds.createClient(ctx, { name: 'Northwind Logistics Inc.' });
  const matter = await cmds.openMatter(ctx, { clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: mh.id, openedOn: '2025-06-01' });
  const other = await cmds.openMatter(ctx, { clientId: client.id, name: 'Northwind lease', responsibleTimekeeperId: mh.id, openedOn: '2025-06-01' });
  const type = await cmds.createChargeType(ctx, { code: 'LEASE', name: 'Lease review', defaultPriceMinor: 75_000 });
  // An item of the other matter, whose id a form of this matter must not take over.
  const elsewhere = await cmds.recordTimeEntry(ctx, { matterId: other.id, timekeeperId: mh.id, workDate: '2026-02-27', rawMinutes: 30, narrative: 'Lease call' });
  return { mh, client, matter, other, type, elsewhere };
}

async function signedIn(t: TestApp): Promise<Browser> {
  const u = await t.user('billing');
  const b = t.browser();
  assert.equal((await b.login(u.email)).status, 303);
  return b;
}

type Kind = 'time' | 'disbursement' | 'fixed';
const TABLE = { time: 'matters_time_entry', disbursement: 'matters_disbursement', fixed: 'matters_fixed_charge' } as const;
const RECORDED = { time: 'matters.time_recorded', disbursement: 'matters.disbursement_recorded', fixed: 'matters.fixed_charge_recorded' } as const;
/** Each add row: its form id, where it posts, and what a clerk types into it. */
const FORMS: Record<Kind, { fid: string; seg: string; typed: Record<string, string> }> = {
  time: { fid: 'add-time', seg: 'time', typed: { hours: '1.5', narrative: 'Draft complaint' } },
  disbursement: { fid: 'add-disb', seg: 'disbursements', typed: { code: 'COURT', unitCost: '350.00', description: 'Filing fee' } },
  fixed: { fid: 'add-fixed', seg: 'fixed-charges', typed: { description: 'Lease review for the depot' } },
};

async function rowsOf(t: TestApp, kind: Kind, matterId: string): Promise<{ id: string }[]> {
  return await t.db.db.selectFrom(TABLE[kind]).select('id').where('matter_id', '=', matterId).orderBy('id').execute() as { id: string }[];
}
/** Rows of the audit log with this action, or events of the outbox with this type. */
async function countOf(ex: TestApp['db']['db'], table: 'audit_log' | 'outbox', value: string): Promise<number> {
  const r = await ex.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).where(table === 'audit_log' ? 'action' : 'type', '=', value).executeTakeFirstOrThrow() as { n: number | string };
  return Number(r.n);
}

/** A fresh firm's matter page, signed in as a clerk; `shown(kind)` is that add form's fields as the page renders them. */
async function matterPage(db: Parameters<typeof commands>[0], t: TestApp) {
  const f = await firm(commands(db, t));
  const b = await signedIn(t);
  const url = `/matters/${f.matter.id}`;
  const shown = async (kind: Kind) => formFields((await b.get(url)).text, FORMS[kind].fid);
  return { f, b, url, shown };
}
/** The quick-entry form's hidden id (the form has no id attribute: its inputs are inside it). */
const quickId = (p: Page): string => {
  const m = /<input type="hidden" name="id" value="([^"]*)">/.exec(p.text);
  assert.ok(m && m[1], 'the quick-entry form carries a hidden id');
  return m[1]!;
};

eachDialect('each add form of the matter page posted twice, or five times at once, records one item', async (db) => {
  await withApp(db, async (t) => {
    const { f, b, url, shown: showForm } = await matterPage(db, t);
    for (const kind of ['time', 'disbursement', 'fixed'] as const) {
      const { fid, seg, typed } = FORMS[kind];
      const eventsBefore = await countOf(t.db.db, 'outbox', 'matters.wip_recorded');
      const shown = await showForm(kind);
      assert.match(shown.id ?? '', /^[0-9a-zA-Z-]{8,64}$/, `${kind}: the form carries an id`);
      const form = { ...shown, ...typed };

      // The same form posted twice (a double click, a browser retry): one item, under the form's id.
      const first = await b.post(`${url}/${seg}`, form);
      assert.equal(first.status, 303, first.text.slice(0, 400));
      const again = await b.post(`${url}/${seg}`, form);
      assert.equal(again.status, 303, `${kind}: the repeat answers like the first`);
      assert.deepEqual(await rowsOf(t, kind, f.matter.id), [{ id: shown.id }], `${kind}: one item`);

      // A fresh load of the form is a fresh id; its first post is five requests at once
      // (plain and htmx): every one answers as a success, and they record one item.
      const fresh = await showForm(kind);
      assert.ok(fresh.id && fresh.id !== shown.id, `${kind}: a fresh id each time the form is shown`);
      const five = await Promise.all([
        ...[1, 2, 3].map(() => b.post(`${url}/${seg}`, { ...fresh, ...typed })),
        ...[1, 2].map(() => b.post(`${url}/${seg}`, { ...fresh, ...typed }, { headers: HX })),
      ]);
      assert.deepEqual(five.map((r) => r.status), [303, 303, 303, 200, 200], five.map((r) => r.text.slice(0, 300)).join('\n'));
      assert.deepEqual((await rowsOf(t, kind, f.matter.id)).map((r) => r.id).sort(), [shown.id, fresh.id].sort(), `${kind}: two forms, two items`);
      assert.equal(await countOf(t.db.db, 'audit_log', RECORDED[kind]), kind === 'time' ? 3 : 2, `${kind}: one audit row per item (time: and the fixture's)`);
      assert.equal(await countOf(t.db.db, 'outbox', 'matters.wip_recorded'), eventsBefore + 2, `${kind}: one event per item`);

      // The htmx fragment after a success carries a fresh id, for the next item.
      const fragment = formFields(five[3]!.text, fid);
      assert.ok(fragment.id && fragment.id !== fresh.id && fragment.id !== shown.id, `${kind}: the fragment after a success carries a fresh id`);
    }
  });
});

eachDialect('the quick time entry form posted twice, or five times at once, records one entry', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(commands(db, t));
    const b = await signedIn(t);
    let p = await b.get(`/matters/time?tk=${f.mh.id}`);
    const id = quickId(p);
    const form = { id, timekeeperId: f.mh.id, fileNumber: f.matter.fileNumber, workDate: '2026-03-02', hours: '0.5', narrative: 'Call with client' };
    const twice = [await b.post('/matters/time', form), await b.post('/matters/time', form)];
    assert.deepEqual(twice.map((r) => [r.status, r.location]), twice.map(() => [303, `/matters/time?tk=${f.mh.id}&recorded=${id}`]));
    assert.deepEqual(await rowsOf(t, 'time', f.matter.id), [{ id }]);

    // A fresh form, posted five times at once (plain and htmx): one entry.
    p = await b.get(`/matters/time?tk=${f.mh.id}`);
    const id2 = quickId(p);
    assert.notEqual(id2, id);
    const five = await Promise.all([
      ...[1, 2, 3].map(() => b.post('/matters/time', { ...form, id: id2 })),
      ...[1, 2].map(() => b.post('/matters/time', { ...form, id: id2 }, { headers: HX })),
    ]);
    assert.deepEqual(five.map((r) => r.status), [303, 303, 303, 200, 200], five.map((r) => r.text.slice(0, 300)).join('\n'));
    assert.ok(five.slice(0, 3).every((r) => r.location?.endsWith(`recorded=${id2}`)), 'every answer points at the one entry');
    assert.deepEqual((await rowsOf(t, 'time', f.matter.id)).map((r) => r.id).sort(), [id, id2].sort());

    // The htmx fragment after a success carries a fresh id.
    assert.ok(![id, id2].includes(quickId(five[3]!)));
    // The htmx timekeeper switch (the same URL's fragment) too.
    assert.ok(![id, id2].includes(quickId(await b.get(`/matters/time?tk=${f.mh.id}`, HX))));
  });
});

eachDialect('a refused add form is shown again with its id; the corrected form then records once', async (db) => {
  await withApp(db, async (t) => {
    const { f, b, url, shown: showForm } = await matterPage(db, t);
    for (const kind of ['time', 'disbursement', 'fixed'] as const) {
      const { fid, seg, typed } = FORMS[kind];
      const shown = await showForm(kind);
      const wrong: Record<string, string> = kind === 'time' ? { hours: 'soon' } : kind === 'disbursement' ? { unitCost: '3.505' } : { quantity: 'two' };
      for (const headers of [{}, HX]) {
        const refused = await b.post(`${url}/${seg}`, { ...shown, ...typed, ...wrong }, { headers });
        assert.equal(refused.status, 422, `${kind}: refused`);
        assert.equal(formFields(refused.text, fid).id, shown.id, `${kind}: the id is kept when the form is shown again`);
      }
      const fixed = await Promise.all([1, 2].map(() => b.post(`${url}/${seg}`, { ...shown, ...typed })));
      assert.deepEqual(fixed.map((r) => r.status), [303, 303]);
      assert.deepEqual(await rowsOf(t, kind, f.matter.id), [{ id: shown.id }], `${kind}: the corrected form is one item`);
    }

    // The quick entry form too.
    const id = quickId(await b.get(`/matters/time?tk=${f.mh.id}`));
    const form = { id, timekeeperId: f.mh.id, fileNumber: f.matter.fileNumber, workDate: '2026-03-02', hours: '0.5', narrative: 'Call' };
    const refused = await b.post('/matters/time', { ...form, fileNumber: '99.99' });
    assert.equal(refused.status, 422);
    assert.equal(quickId(refused), id, 'the quick-entry id is kept when the form is shown again');
    const ok = await Promise.all([1, 2].map(() => b.post('/matters/time', form)));
    assert.deepEqual(ok.map((r) => r.status), [303, 303]);
    assert.equal((await rowsOf(t, 'time', f.matter.id)).filter((r) => r.id === id).length, 1);
  });
});

eachDialect('an add form posted with the id of another matter\'s item is refused (409 naming id), with a fresh id to record anew', async (db) => {
  await withApp(db, async (t) => {
    const { f, b, url, shown: showForm } = await matterPage(db, t);
    for (const kind of ['time', 'disbursement', 'fixed'] as const) {
      const { fid, seg, typed } = FORMS[kind];
      const shown = await showForm(kind);
      const r = await b.post(`${url}/${seg}`, { ...shown, ...typed, id: f.elsewhere.id });
      assert.equal(r.status, 409, `${kind}: ${r.text.slice(0, 300)}`);
      assert.match(r.text, /data-error-for="id"/, `${kind}: the refusal names the id`);
      assert.match(unescapeHtml(r.text), kind === 'time' ? /time entry recorded on another matter/ : /time entry already recorded/);
      const again = formFields(r.text, fid);
      assert.ok(again.id && again.id !== f.elsewhere.id, `${kind}: the form comes back with a fresh id`);
      assert.deepEqual(await rowsOf(t, kind, f.matter.id), [], `${kind}: nothing recorded`);
      assert.equal((await b.post(`${url}/${seg}`, { ...again, ...typed })).status, 303, `${kind}: the re-shown form records`);
    }
    // A form posted, then sent again with its hours changed (Back, edit, send): refused naming
    // id and what differs, with a fresh id; the entry keeps its hours.
    const shown = await showForm('time');
    assert.equal((await b.post(`${url}/time`, { ...shown, ...FORMS.time.typed })).status, 303);
    const changed = await b.post(`${url}/time`, { ...shown, ...FORMS.time.typed, hours: '2' });
    assert.equal(changed.status, 409, changed.text.slice(0, 300));
    assert.match(unescapeHtml(changed.text), /is the id of a time entry already recorded with another time/);
    assert.notEqual(formFields(changed.text, 'add-time').id, shown.id, 'a fresh id to record it as a new entry');
    assert.equal((await commands(db, t).findTimeEntry(shown.id!))?.rawMinutes, 90, 'the entry keeps its 1.5 hours');
    const other = await commands(db, t).findTimeEntry(f.elsewhere.id);
    assert.equal(other?.matterId, f.other.id, 'the other matter\'s entry is untouched');
    assert.equal(other?.narrative, 'Lease call');
  });
});

const refusal = (status: number, field: string) => (e: unknown) => e instanceof HttpError && e.status === status && Object.keys(e.fields).includes(field);

eachDialect('the record commands take an optional id: the same id again is the same item, five at once are one item', async (db) => {
  const cmds = commands(db);
  const f = await firm(cmds);
  const time = { matterId: f.matter.id, timekeeperId: f.mh.id, workDate: '2026-03-01', rawMinutes: 45, narrative: 'Research' };
  const disb = { matterId: f.matter.id, incurredOn: '2026-03-01', code: 'COURT', unitCostMinor: 35_000, description: 'Filing fee' };
  const fixed = { matterId: f.matter.id, chargedOn: '2026-03-01', chargeTypeId: f.type.id };
  const audit = (action: string) => countOf(db.db, 'audit_log', action);

  const a = await cmds.recordTimeEntry(ctx, { ...time, id: 'entry-0001' });
  assert.equal(a.id, 'entry-0001');
  const b = await cmds.recordTimeEntry(ctx, { ...time, id: 'entry-0001', narrative: ' Research ' });
  assert.deepEqual(b, a, 'the row already recorded, unchanged (the narrative is trimmed as when recorded)');
  assert.equal(await audit('matters.time_recorded'), 2, 'no new audit row (one for the fixture)');
  // The same id with other details is not a retry: refused naming id and what differs, nothing changed.
  for (const [input, differs] of [
    [{ ...time, id: 'entry-0001', narrative: 'Research (again)' }, /another narrative/],
    [{ ...time, id: 'entry-0001', rawMinutes: 90, workDate: '2026-03-02' }, /another work date, time/],
    [{ ...time, id: 'entry-0001', override: { rateMinor: 10_000, reason: 'agreed' } }, /another rate/],
  ] as const) {
    await assert.rejects(cmds.recordTimeEntry(ctx, input), (e: unknown) => refusal(409, 'id')(e) && differs.test((e as HttpError).fields.id ?? ''), JSON.stringify(input));
  }
  await assert.rejects(cmds.recordDisbursement(ctx, { ...disb, id: 'disb-0001' }).then(() => cmds.recordDisbursement(ctx, { ...disb, id: 'disb-0001', unitCostMinor: 35_001 })),
    (e: unknown) => refusal(409, 'id')(e) && /another unit cost/.test((e as HttpError).fields.id ?? ''));
  await assert.rejects(cmds.recordFixedCharge(ctx, { ...fixed, id: 'fixed-0001' }).then(() => cmds.recordFixedCharge(ctx, { ...fixed, id: 'fixed-0001', quantityMilli: 2_000 })),
    (e: unknown) => refusal(409, 'id')(e) && /another quantity/.test((e as HttpError).fields.id ?? ''));
  assert.deepEqual(await cmds.findTimeEntry('entry-0001'), a, 'the entry is as first recorded');
  assert.equal((await cmds.listDisbursements(f.matter.id)).find((d) => d.id === 'disb-0001')?.unitCostMinor, 35_000);
  assert.equal(await audit('matters.time_recorded'), 2, 'no audit row for the refusals');

  // Five at once, each kind: all succeed with the same item; one row, one audit row each.
  for (const [name, run, action] of [
    ['time', (id: string) => cmds.recordTimeEntry(ctx, { ...time, id }), 'matters.time_recorded'],
    ['disbursement', (id: string) => cmds.recordDisbursement(ctx, { ...disb, id }), 'matters.disbursement_recorded'],
    ['fixed', (id: string) => cmds.recordFixedCharge(ctx, { ...fixed, id }), 'matters.fixed_charge_recorded'],
  ] as const) {
    const before = await audit(action);
    const id = `race-${name}-0001`;
    const five = await Promise.allSettled(Array.from({ length: 5 }, () => run(id)));
    assert.deepEqual(five.map((r) => r.status), five.map(() => 'fulfilled'), `${name}: ${five.map((r) => (r.status === 'rejected' ? String(r.reason) : '')).join(' ')}`);
    assert.deepEqual(new Set(five.map((r) => (r as PromiseFulfilledResult<{ id: string }>).value.id)), new Set([id]));
    assert.equal(await audit(action), before + 1, `${name}: one audit row`);
  }
  assert.equal((await cmds.listTimeEntries(f.matter.id)).length, 2);
  assert.equal((await cmds.listDisbursements(f.matter.id)).length, 2);
  assert.equal((await cmds.listFixedCharges(f.matter.id)).length, 2);

  // Refusals: another matter's id or another kind's is 409 naming id; a bad shape is 422.
  await assert.rejects(cmds.recordTimeEntry(ctx, { ...time, id: f.elsewhere.id }), refusal(409, 'id'));
  await assert.rejects(cmds.recordDisbursement(ctx, { ...disb, id: 'entry-0001' }), refusal(409, 'id'));
  await assert.rejects(cmds.recordFixedCharge(ctx, { ...fixed, id: 'race-disbursement-0001' }), refusal(409, 'id'));
  for (const bad of ['short', 'has spaces in it', 'x'.repeat(65), 'semi;colon-id']) {
    await assert.rejects(cmds.recordTimeEntry(ctx, { ...time, id: bad }), refusal(422, 'id'), bad);
  }
  await assert.rejects(cmds.recordWip(ctx, { timeEntries: [{ ...time, id: 'twice-0001' }, { ...time, id: 'twice-0001' }] }), refusal(422, 'timeEntries.1.id'));
  assert.equal((await cmds.listTimeEntries(f.matter.id)).length, 2, 'nothing recorded by the refusals');

  // One id created as two kinds at once (each kind has its own table): one is recorded, the other refused.
  for (let round = 0; round < 5; round++) {
    const id = `kinds-race-${round}000`;
    const both = await Promise.allSettled([cmds.recordTimeEntry(ctx, { ...time, id }), cmds.recordDisbursement(ctx, { ...disb, id }), cmds.recordFixedCharge(ctx, { ...fixed, id })]);
    assert.equal(both.filter((r) => r.status === 'fulfilled').length, 1, `round ${round}: ${both.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok')).join(' | ')}`);
    for (const r of both) if (r.status === 'rejected') assert.ok(r.reason instanceof HttpError && r.reason.status === 409, String(r.reason));
    const rows = (await Promise.all(['matters_time_entry', 'matters_disbursement', 'matters_fixed_charge'].map((tb) => db.db.selectFrom(tb).select('id').where('id', '=', id).execute()))).flat();
    assert.equal(rows.length, 1, `round ${round}: one row for the id`);
  }
});

eachDialect('the JSON API: an id posted twice (or five times at once) is one item; another matter\'s id is 409; a bad one 422', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(commands(db, t));
    const u = await t.user('billing');
    const b = t.browser();
    const auth = { authorization: `Bearer ${await t.token(u.email)}` };
    const post = (path: string, body: unknown) => b.postJson(`/api/v1${path}`, body, { headers: auth });
    const bodies = {
      time: ['/time-entries', { matterId: f.matter.id, timekeeperId: f.mh.id, workDate: '2026-03-01', hours: '1.5', narrative: 'Draft complaint' }],
      disbursement: ['/disbursements', { matterId: f.matter.id, incurredOn: '2026-03-01', code: 'COURT', unitCost: '350.00', description: 'Filing fee' }],
      fixed: ['/fixed-charges', { matterId: f.matter.id, chargedOn: '2026-03-01', chargeTypeId: f.type.id }],
    } as const;
    for (const kind of ['time', 'disbursement', 'fixed'] as const) {
      const [path, body] = bodies[kind];
      const id = `api-${kind}-0001`;
      const first = await post(path, { ...body, id });
      assert.equal(first.status, 201, first.text);
      const again = await post(path, { ...body, id });
      assert.equal(again.status, 201, again.text);
      const { warnings: _w1, ...one } = first.json() as Record<string, unknown>;
      const { warnings: _w2, ...two } = again.json() as Record<string, unknown>;
      assert.deepEqual(two, one, `${kind}: the repeat returns the item already recorded`);
      assert.equal(one.id, id);
      const five = await Promise.all(Array.from({ length: 5 }, () => post(path, { ...body, id: `api-${kind}-race` })));
      assert.deepEqual(five.map((r) => r.status), [201, 201, 201, 201, 201], five.map((r) => r.text).join('\n'));
      assert.deepEqual(new Set(five.map((r) => (r.json() as { id: string }).id)), new Set([`api-${kind}-race`]));
      assert.deepEqual((await rowsOf(t, kind, f.matter.id)).map((r) => r.id).sort(), [id, `api-${kind}-race`].sort(), `${kind}: two items`);

      const taken = await post(path, { ...body, id: f.elsewhere.id });
      assert.equal(taken.status, 409, taken.text);
      assert.ok((taken.json() as { error: { fields: Record<string, string> } }).error.fields.id, `${kind}: the 409 names id`);
      const bad = await post(path, { ...body, id: 'short' });
      assert.equal(bad.status, 422, bad.text);
      assert.match((bad.json() as { error: { fields: Record<string, string> } }).error.fields.id ?? '', /8 to 64 letters, digits or dashes/);
      assert.equal((await rowsOf(t, kind, f.matter.id)).length, 2, `${kind}: nothing more recorded`);
    }
    // An item recorded under an API client's id can be edited from the matter page.
    const bw = t.browser();
    assert.equal((await bw.login(u.email)).status, 303);
    const edit = await bw.get(`/matters/${f.matter.id}/time/api-time-0001/edit`);
    assert.equal(edit.status, 200);
    assert.equal(formFields(edit.text, 'edit-time-api-time-0001').narrative, 'Draft complaint');
  });
});

eachDialect('the JSON API returns each row\'s version: editing with it applies, editing again with the old one is 409', async (db) => {
  await withApp(db, async (t) => {
    const cmds = commands(db, t);
    const f = await firm(cmds);
    const entry = await cmds.recordTimeEntry(ctx, { matterId: f.matter.id, timekeeperId: f.mh.id, workDate: '2026-03-01', rawMinutes: 60, narrative: 'Research' });
    const disb = await cmds.recordDisbursement(ctx, { matterId: f.matter.id, incurredOn: '2026-03-01', code: 'COURT', unitCostMinor: 35_000, description: 'Filing fee' });
    const charge = await cmds.recordFixedCharge(ctx, { matterId: f.matter.id, chargedOn: '2026-03-01', chargeTypeId: f.type.id });
    const u = await t.user('billing');
    const b = t.browser();
    const auth = { authorization: `Bearer ${await t.token(u.email)}` };
    const get = async (path: string) => (await b.get(`/api/v1${path}`, { ...auth, accept: 'application/json' })).json() as Record<string, unknown>;
    const patch = (path: string, body: unknown) => b.postJson(`/api/v1${path}`, body, { method: 'PATCH', headers: auth });

    for (const [path, list, change, table, id] of [
      [`/matters/${f.matter.id}`, `/matters?clientId=${f.client.id}`, { name: 'Northwind v. Kestrel Air' }, 'matters_matter', f.matter.id],
      [`/time-entries/${entry.id}`, `/time-entries?matterId=${f.matter.id}`, { narrative: 'Research and memo' }, 'matters_time_entry', entry.id],
      [`/disbursements/${disb.id}`, `/disbursements?matterId=${f.matter.id}`, { description: 'Filing fee (court)' }, 'matters_disbursement', disb.id],
      [`/fixed-charges/${charge.id}`, `/fixed-charges?matterId=${f.matter.id}`, { description: 'Lease review (depot)' }, 'matters_fixed_charge', charge.id],
    ] as const) {
      const read = await get(path);
      const version = read.version;
      assert.equal(typeof version, 'number', `${path}: the response carries the version`);
      assert.equal(version, await cmds.findVersion(table, id), `${path}: the row's version`);
      const listed = ((await get(list)).items as Record<string, unknown>[]).find((x) => x.id === id);
      assert.equal(listed?.version, version, `${list}: the list carries it too`);

      const ok = await patch(path, { ...change, expectedVersion: version });
      assert.equal(ok.status, 200, ok.text);
      const after = ok.json() as Record<string, unknown>;
      assert.equal(after.version, (version as number) + 1, `${path}: the change answers with the new version`);
      assert.equal((await get(path)).version, after.version);

      const stale = await patch(path, { ...change, expectedVersion: version });
      assert.equal(stale.status, 409, `${path}: the old version is refused: ${stale.text}`);
      assert.match(stale.text, /changed by someone else/);
      assert.equal(await cmds.findVersion(table, id), after.version, `${path}: nothing changed by the refusal`);
      assert.equal((await patch(path, { ...change, expectedVersion: after.version })).status, 200, `${path}: the new version applies`);
    }
    // A new item's response carries its first version.
    const created = await b.postJson('/api/v1/time-entries', { matterId: f.matter.id, timekeeperId: f.mh.id, workDate: '2026-03-02', hours: '0.5', narrative: 'Call' }, { headers: auth });
    assert.equal(created.status, 201);
    assert.equal((created.json() as { version: number }).version, 1);
  });
});

eachDialect('an add form posted again after its item was deleted is refused (409 naming id), not recorded anew under the deleted id', async (db) => {
  await withApp(db, async (t) => {
    const { f, b, url, shown: showForm } = await matterPage(db, t);
    for (const kind of ['time', 'disbursement', 'fixed'] as const) {
      const { seg, typed } = FORMS[kind];
      const shown = await showForm(kind);
      const form = { ...shown, ...typed };
      assert.equal((await b.post(`${url}/${seg}`, form)).status, 303);
      await t.runtime.relay.drain();
      const del = await b.post(`${url}/${seg}/${shown.id}/delete`, { _csrf: shown._csrf ?? '' });
      assert.equal(del.status, 303, `${kind}: deleted: ${del.text.slice(0, 300)}`);
      await t.runtime.relay.drain();
      const recordedBefore = await countOf(t.db.db, 'outbox', 'matters.wip_recorded');
      // The browser's back button and the form posted again: before, the item came back under the
      // deleted id, and billing's copy (which keeps the deleted id's tombstone) never saw it.
      const again = await b.post(`${url}/${seg}`, form);
      assert.equal(again.status, 409, `${kind}: ${again.text.slice(0, 300)}`);
      assert.match(unescapeHtml(again.text), /id is the id of a (time entry|disbursement|fixed charge) that was deleted/);
      assert.deepEqual(await rowsOf(t, kind, f.matter.id), [], `${kind}: nothing recorded`);
      assert.equal(await countOf(t.db.db, 'outbox', 'matters.wip_recorded'), recordedBefore, `${kind}: no event`);
    }
    // The JSON API: the same.
    await t.user('admin');
    const auth = { authorization: `Bearer ${await t.token('admin@firm.test')}` };
    const api = t.browser();
    const body = { matterId: f.matter.id, timekeeperId: f.mh.id, workDate: '2026-02-27', minutes: 30, narrative: 'Call', id: 'api-item-deleted-1' };
    const made = await api.postJson('/api/v1/time-entries', body, { headers: auth });
    assert.equal(made.status, 201, made.text.slice(0, 300));
    const gone = await api.postJson(`/api/v1/time-entries/api-item-deleted-1`, {}, { method: 'DELETE', headers: auth });
    assert.ok(gone.status === 200 || gone.status === 204, gone.text.slice(0, 300));
    const again = await api.postJson('/api/v1/time-entries', body, { headers: auth });
    assert.equal(again.status, 409, again.text.slice(0, 300));
    assert.deepEqual(Object.keys(again.json().error.fields), ['id']);
  });
});
