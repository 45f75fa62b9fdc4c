/**
 * The API's bill actions (approve, revert, re-draft, finalise, hold, delete) take the version
 * the caller read, as the bill page's forms do: a bill changed since (another tab, another
 * client) is refused (409, code bill_changed) and nothing changes. Without a version they act
 * as before. A version that is not a whole number from 1 is a 422 naming `version`.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { withApp } from '../support/app.ts';
import type { Browser, Page, TestApp } from '../support/app.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { firm, work } from './support.ts';

function api(b: Browser, token: string) {
  const auth = { authorization: `Bearer ${token}`, accept: 'application/json' };
  return {
    get: (path: string) => b.get(`/api/v1${path}`, auth),
    post: (path: string, body?: unknown): Promise<Page> => body === undefined
      ? b.request('POST', `/api/v1${path}`, { headers: auth })
      : b.postJson(`/api/v1${path}`, body, { headers: auth }),
    patch: (path: string, body: unknown) => b.postJson(`/api/v1${path}`, body, { method: 'PATCH', headers: auth }),
    delete: (path: string) => b.request('DELETE', `/api/v1${path}`, { headers: auth }),
  };
}

function ok(res: Page, status = 200): any {
  assert.equal(res.status, status, `${res.status}: ${res.text.slice(0, 1000)}`);
  return res.json();
}

function changed(res: Page): void {
  assert.equal(res.status, 409, res.text);
  assert.equal(res.json().error.code, 'bill_changed', res.text);
}

async function seed(t: TestApp) {
  const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
  const f = await firm(cmds);
  await work(cmds, f.matter.id, f);
  await t.runtime.relay.drain();
  const u = await t.user('billing');
  return { f, a: api(t.browser(), await t.token(u.email)) };
}

eachDialect('API: a bill action at a stale version is refused (409 bill_changed) and changes nothing', async (db) => {
  await withApp(db, async (t) => {
    const { f, a } = await seed(t);
    const draft = ok(await a.post('/bills', { matterId: f.matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' }), 201);
    const seen = draft.version as number;
    // Another client changes the draft (its version moves on).
    const moved = ok(await a.patch(`/bills/${draft.id}`, { upTo: '2026-02-27', version: seen }));
    assert.equal(moved.version, seen + 1);

    // Acting on what was seen: refused, the bill as it was.
    changed(await a.post(`/bills/${draft.id}/approve?version=${seen}`));
    changed(await a.post(`/bills/${draft.id}/hold`, { onHold: true, version: seen }));
    changed(await a.delete(`/bills/${draft.id}?version=${seen}`));
    let now = ok(await a.get(`/bills/${draft.id}`));
    assert.deepEqual([now.status, now.version, now.onHold, now.number], ['draft', seen + 1, false, null]);

    // A version that is not one: 422 naming it, nothing done.
    const bad = await a.post(`/bills/${draft.id}/approve?version=abc`);
    assert.equal(bad.status, 422, bad.text);
    assert.ok('version' in bad.json().error.fields, bad.text);
    assert.equal(ok(await a.get(`/bills/${draft.id}`)).status, 'draft');
    // The check under another name (the matters API's), or in a body the action does not take: named, not skipped (review 57 F4).
    for (const [res, field] of [
      [await a.post(`/bills/${draft.id}/approve?expectedVersion=${seen}`), 'expectedVersion'],
      [await a.delete(`/bills/${draft.id}?expectedVersion=${seen}`), 'expectedVersion'],
      [await a.post(`/bills/${draft.id}/approve`, { version: seen }), 'version'],
      [await a.get(`/matters/${f.matter.id}/bills?includeDeleted=true&bogus=1`), 'bogus'],
    ] as const) {
      assert.equal(res.status, 422, res.text);
      assert.deepEqual(Object.keys(res.json().error.fields), [field], res.text);
    }
    const junk = await a.post(`/bills/${draft.id}/approve`, 'not json');
    assert.equal(junk.status, 400, junk.text);
    assert.equal(ok(await a.get(`/bills/${draft.id}`)).status, 'draft', 'nothing done');

    // At the version now: acts.
    // A JSON null body (how some generated clients say "no body") is no body (review 59 F3).
    const approved = ok(await a.post(`/bills/${draft.id}/approve?version=${seen + 1}`, null));
    assert.equal(approved.status, 'approved');
    changed(await a.post(`/bills/${draft.id}/revert?version=${seen + 1}`));
    changed(await a.post(`/bills/${draft.id}/finalise?version=${seen + 1}`));
    now = ok(await a.get(`/bills/${draft.id}`));
    assert.deepEqual([now.status, now.version], ['approved', approved.version]);
    const reverted = ok(await a.post(`/bills/${draft.id}/revert?version=${approved.version}`));
    assert.equal(reverted.status, 'draft');
    assert.equal(reverted.number, approved.number, 'a reverted bill keeps its number');

    // Without a version the actions act as before.
    const again = ok(await a.post(`/bills/${draft.id}/approve`));
    assert.equal(again.number, approved.number);
    await t.runtime.relay.drain();
  });
});

eachDialect('API: approving many drafts with the versions reviewed refuses a draft changed since (review 57 F9)', async (db) => {
  await withApp(db, async (t) => {
    const { f, a } = await seed(t);
    const draft = ok(await a.post('/bills', { matterId: f.matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' }), 201);
    const seen = draft.version as number;
    ok(await a.patch(`/bills/${draft.id}`, { upTo: '2026-02-27', version: seen }));
    const stale = ok(await a.post('/bills/approve', { billIds: [draft.id], versions: [{ billId: draft.id, version: seen }] }));
    assert.deepEqual([stale.approved, stale.refused], [0, 1]);
    assert.equal(ok(await a.get(`/bills/${draft.id}`)).status, 'draft', 'not approved');
    const stray = await a.post('/bills/approve', { billIds: [draft.id], versions: [{ billId: f.matter.id, version: 1 }] });
    assert.equal(stray.status, 422, stray.text);
    assert.deepEqual(Object.keys(stray.json().error.fields), ['versions.0.billId']);
    const now = ok(await a.post('/bills/approve', { billIds: [draft.id], versions: [{ billId: draft.id, version: seen + 1 }] }));
    assert.deepEqual([now.approved, now.refused], [1, 0]);
  });
});

eachDialect('API: a time filter naming no timekeeper is refused naming it, not a bill without time (review 57 F6)', async (db) => {
  await withApp(db, async (t) => {
    const { f, a } = await seed(t);
    const body = (ids: string[]) => ({ matterId: f.matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28', options: { filters: { time: { timekeeperIds: ids } } } });
    for (const path of ['/bills/preview', '/bills']) {
      const res = await a.post(path, body([f.partner.id, f.matter.id]));
      assert.equal(res.status, 422, res.text);
      assert.deepEqual(Object.keys(res.json().error.fields).map((k) => k.replace(/^options\./, '')), ['filters.time.timekeeperIds.1'], res.text);
    }
    assert.equal((await t.db.db.selectFrom('billing_bill').select('id').execute()).length, 0, 'nothing drafted');
    const fine = ok(await a.post('/bills/preview', body([f.partner.id])));
    assert.ok(fine.lines.some((l: { kind: string }) => l.kind === 'time'), 'the partner\'s time');
    // With a draft on the matter, the preview is refused as creating would be, not an empty bill (review 57 F12).
    const draft = ok(await a.post('/bills', body([f.partner.id])), 201);
    const held = await a.post('/bills/preview', body([f.partner.id]));
    assert.equal(held.status, 409, held.text);
    assert.match(held.json().error.message, new RegExp(`already has a draft bill: change or delete it \\(GET /bills/${draft.id}\\)`));
  });
});
