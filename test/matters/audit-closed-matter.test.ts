/**
 * Audit: a closed matter takes no work, and its page offers no edit or delete on its WIP; but
 * the commands, the page's POST routes (a tab opened before the close) and the API still
 * changed and deleted its unbilled items: 1 hour became 10 on a closed file. Now each is a 409
 * saying the matter is closed, with nothing changed; reopened, the work can be changed again.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { withApp } from '../support/app.ts';
import { systemContext } from '../../src/shared/events.ts';
import { HttpError } from '../../src/shared/web/errors.ts';
import { mattersCommands } from './support.ts';

const ctx = systemContext('corr-audit-closed', 'test');
const TABLES = ['matters_time_entry', 'matters_disbursement', 'matters_fixed_charge', 'outbox', 'audit_log'];

async function snapshot(db: TestDb): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const t of TABLES) out[t] = (await db.db.selectFrom(t).selectAll().execute()).map((r) => JSON.stringify(r)).sort();
  return out;
}

const closedConflict = (e: unknown) => {
  assert.ok(e instanceof HttpError, `expected a 409, got ${String(e)}`);
  assert.equal(e.status, 409);
  assert.match(e.message, /matter 1\.1, which is closed/);
  return true;
};

async function firm(cmds: ReturnType<typeof mattersCommands>) {
  const tk = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  await cmds.setTimekeeperRate(ctx, { timekeeperId: tk.id, effectiveFrom: '2026-01-01', rateMinor: 30_000 });
  const client = await cmds.createClient(ctx, { name: 'Northwind' });
  const matter = await cmds.openMatter(ctx, { clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: tk.id, openedOn: '2026-01-01' });
  const type = await cmds.createChargeType(ctx, { code: 'LEASE', name: 'Lease review', defaultPriceMinor: 75_000 });
  const time = await cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: tk.id, workDate: '2026-03-02', rawMinutes: 60, narrative: 'Advice' });
  const disb = await cmds.recordDisbursement(ctx, { matterId: matter.id, incurredOn: '2026-03-02', code: 'COURT', unitCostMinor: 27_500, description: 'Filing fee' });
  const fixed = await cmds.recordFixedCharge(ctx, { matterId: matter.id, chargedOn: '2026-03-02', chargeTypeId: type.id });
  return { tk, matter, time, disb, fixed };
}

eachDialect('the unbilled work of a closed matter cannot be changed or deleted until it is reopened', async (db) => {
  const cmds = mattersCommands(db);
  const { matter, time, disb, fixed } = await firm(cmds);
  await cmds.closeMatter(ctx, matter.id, '2026-03-02');
  const before = await snapshot(db);

  await assert.rejects(cmds.updateTimeEntry(ctx, time.id, { rawMinutes: 600 }), closedConflict);
  await assert.rejects(cmds.updateDisbursement(ctx, disb.id, { unitCostMinor: 99_900 }), closedConflict);
  await assert.rejects(cmds.updateFixedCharge(ctx, fixed.id, { quantityMilli: 5_000 }), closedConflict);
  await assert.rejects(cmds.deleteTimeEntry(ctx, time.id), closedConflict);
  await assert.rejects(cmds.deleteDisbursement(ctx, disb.id), closedConflict);
  await assert.rejects(cmds.deleteFixedCharge(ctx, fixed.id), closedConflict);
  assert.deepEqual(await snapshot(db), before, 'nothing was changed');

  await cmds.reopenMatter(ctx, matter.id);
  assert.equal((await cmds.updateTimeEntry(ctx, time.id, { rawMinutes: 90 })).amountMinor, 45_000);
  await cmds.deleteDisbursement(ctx, disb.id);
  assert.equal((await cmds.listDisbursements(matter.id)).length, 0);
});

eachDialect('the matter page and the API refuse changing a closed matter\'s work (409), changing nothing', async (db) => {
  await withApp(db, async (t) => {
    const cmds = mattersCommands(db, t);
    const { tk, matter, time } = await firm(cmds);
    const u = await t.user('billing');
    const b = t.browser();
    await b.login(u.email);
    const auth = { authorization: `Bearer ${await t.token(u.email)}` };
    // The edit form, opened before the matter is closed.
    const form = await b.get(`/matters/${matter.id}/time/${time.id}/edit`);
    assert.equal(form.status, 200);
    await cmds.closeMatter(ctx, matter.id, '2026-03-02');
    const before = await snapshot(db);

    const saved = await b.post(`/matters/${matter.id}/time/${time.id}`, {
      timekeeperId: tk.id, workDate: '2026-03-02', hours: '10', narrative: 'Advice', behaviour: 'bill', version: String(await cmds.findVersion('matters_time_entry', time.id)),
    });
    assert.equal(saved.status, 409, saved.text);
    const deleted = await b.post(`/matters/${matter.id}/time/${time.id}/delete`, {});
    assert.equal(deleted.status, 409, deleted.text);

    const patched = await b.postJson(`/api/v1/time-entries/${time.id}`, { hours: '10' }, { method: 'PATCH', headers: auth });
    assert.equal(patched.status, 409, patched.text);
    const removed = await b.request('DELETE', `/api/v1/time-entries/${time.id}`, { headers: { ...auth, accept: 'application/json' } });
    assert.equal(removed.status, 409, removed.text);
    assert.deepEqual(await snapshot(db), before, 'nothing was changed');
    assert.equal((await cmds.findTimeEntry(time.id))?.rawMinutes, 60);
    // The edit form is not offered again on the closed matter.
    assert.equal((await b.get(`/matters/${matter.id}/time/${time.id}/edit`)).status, 409);
  });
});
