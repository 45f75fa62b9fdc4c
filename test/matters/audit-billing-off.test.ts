/**
 * Audit: seed 002 lets billing be turned off for a matter only while it has no billable or
 * billed items, and billing refuses to bill such a matter. Recording billable work on it
 * anyway (a time entry at the default "bill", a disbursement, a fixed charge, or an edit
 * turning a hidden entry to bill) made exactly the items the rule forbids, WIP no bill could
 * ever take. Now each is a 422 naming `behaviour`, with nothing written; hidden and no-charge
 * work is still recorded.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { withApp } from '../support/app.ts';
import { systemContext } from '../../src/shared/events.ts';
import { HttpError } from '../../src/shared/web/errors.ts';
import { mattersCommands } from './support.ts';

const ctx = systemContext('corr-audit-billing-off', 'test');
const TABLES = ['matters_time_entry', 'matters_disbursement', 'matters_fixed_charge', 'outbox', 'audit_log'];

async function snapshot(db: TestDb): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const t of TABLES) out[t] = (await db.db.selectFrom(t).selectAll().execute()).map((r) => JSON.stringify(r)).sort();
  return out;
}

const namesBehaviour = (field = 'behaviour') => (e: unknown) => {
  assert.ok(e instanceof HttpError, `expected a 422, got ${String(e)}`);
  assert.equal(e.status, 422);
  assert.deepEqual(Object.keys(e.fields), [field], JSON.stringify(e.fields));
  assert.match(e.fields[field]!, /billing is turned off for matter 1\.1/);
  return true;
};

eachDialect('a matter with billing turned off takes no billable work: recording or editing to bill is refused naming the behaviour', async (db) => {
  const cmds = mattersCommands(db);
  const tk = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  await cmds.setTimekeeperRate(ctx, { timekeeperId: tk.id, effectiveFrom: '2026-01-01', rateMinor: 30_000 });
  const client = await cmds.createClient(ctx, { name: 'Northwind' });
  const matter = await cmds.openMatter(ctx, { clientId: client.id, name: 'Pro bono', responsibleTimekeeperId: tk.id, openedOn: '2026-01-01' });
  const type = await cmds.createChargeType(ctx, { code: 'LEASE', name: 'Lease review', defaultPriceMinor: 75_000 });
  await cmds.setBillingOptions(ctx, matter.id, { set: { billingEnabled: false } });
  const entry = { matterId: matter.id, timekeeperId: tk.id, workDate: '2026-03-02', rawMinutes: 60, narrative: 'Advice' };
  const before = await snapshot(db);

  await assert.rejects(cmds.recordTimeEntry(ctx, entry), namesBehaviour());
  await assert.rejects(cmds.recordTimeEntry(ctx, { ...entry, behaviour: 'bill' }), namesBehaviour());
  await assert.rejects(cmds.recordDisbursement(ctx, { matterId: matter.id, incurredOn: '2026-03-02', code: 'COURT', unitCostMinor: 27_500, description: 'Filing fee' }), namesBehaviour());
  await assert.rejects(cmds.recordFixedCharge(ctx, { matterId: matter.id, chargedOn: '2026-03-02', chargeTypeId: type.id }), namesBehaviour());
  await assert.rejects(cmds.recordWip(ctx, { timeEntries: [{ ...entry, behaviour: 'hide' }, entry] }), namesBehaviour('timeEntries.1.behaviour'));
  assert.deepEqual(await snapshot(db), before, 'nothing was written');

  // Work that is not billed is recorded as before, and may be changed but not turned to bill.
  const hidden = await cmds.recordTimeEntry(ctx, { ...entry, behaviour: 'hide' });
  const noCharge = await cmds.recordDisbursement(ctx, { matterId: matter.id, incurredOn: '2026-03-02', code: 'COURT', unitCostMinor: 27_500, description: 'Filing fee', behaviour: 'no_charge' });
  const fixed = await cmds.recordFixedCharge(ctx, { matterId: matter.id, chargedOn: '2026-03-02', chargeTypeId: type.id, behaviour: 'hide' });
  assert.equal((await cmds.updateTimeEntry(ctx, hidden.id, { rawMinutes: 90 })).billedMinutes, 90);
  const edited = await snapshot(db);
  await assert.rejects(cmds.updateTimeEntry(ctx, hidden.id, { behaviour: 'bill' }), namesBehaviour());
  await assert.rejects(cmds.updateDisbursement(ctx, noCharge.id, { behaviour: 'bill' }), namesBehaviour());
  await assert.rejects(cmds.updateFixedCharge(ctx, fixed.id, { behaviour: 'bill' }), namesBehaviour());
  assert.deepEqual(await snapshot(db), edited, 'nothing was changed');

  // With billing on again, billable work is recorded.
  await cmds.setBillingOptions(ctx, matter.id, { inherit: ['billingEnabled'] });
  assert.equal((await cmds.recordTimeEntry(ctx, entry)).amountMinor, 30_000);
  assert.equal((await cmds.updateTimeEntry(ctx, hidden.id, { behaviour: 'bill' })).behaviour, 'bill');
});

eachDialect('the API refuses billable work on a matter with billing off (422 naming behaviour)', async (db) => {
  await withApp(db, async (t) => {
    const cmds = mattersCommands(db, t);
    const tk = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner', staffEmail: 'timekeeper@firm.test' });
    await cmds.setTimekeeperRate(ctx, { timekeeperId: tk.id, effectiveFrom: '2026-01-01', rateMinor: 30_000 });
    const client = await cmds.createClient(ctx, { name: 'Northwind' });
    const matter = await cmds.openMatter(ctx, { clientId: client.id, name: 'Pro bono', responsibleTimekeeperId: tk.id, openedOn: '2026-01-01' });
    await cmds.setBillingOptions(ctx, matter.id, { set: { billingEnabled: false } });
    const u = await t.user('timekeeper');
    const auth = { authorization: `Bearer ${await t.token(u.email)}` };
    const b = t.browser();
    const res = await b.postJson('/api/v1/time-entries', { matterId: matter.id, timekeeperId: tk.id, workDate: '2026-03-02', hours: '1', narrative: 'Advice' }, { headers: auth });
    assert.equal(res.status, 422, res.text);
    assert.deepEqual(Object.keys(res.json().error.fields), ['behaviour']);
    assert.equal((await cmds.listTimeEntries(matter.id)).length, 0);
    const hidden = await b.postJson('/api/v1/time-entries', { matterId: matter.id, timekeeperId: tk.id, workDate: '2026-03-02', hours: '1', narrative: 'Advice', behaviour: 'no_charge' }, { headers: auth });
    assert.equal(hidden.status, 201, hidden.text);
  });
});
