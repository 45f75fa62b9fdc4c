/**
 * Audit: a quantity and a unit price each within its own limit can still multiply to an
 * amount past the largest one an item may have (MAX_AMOUNT_MINOR). Recording, changing or
 * importing such an item is a 422 naming the amount, and nothing is written; before, the
 * amount's arithmetic threw an assertion (a 500 on the API, "the database refused the file"
 * with no row on an import).
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { withApp } from '../support/app.ts';
import { systemContext } from '../../src/shared/events.ts';
import { HttpError } from '../../src/shared/web/errors.ts';
import { mattersCommands } from './support.ts';

const ctx = systemContext('corr-audit-amounts', 'test');

const TABLES = ['matters_disbursement', 'matters_fixed_charge', 'outbox', 'audit_log'];

async function snapshot(db: TestDb): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const t of TABLES) out[t] = (await db.db.selectFrom(t).selectAll().execute()).map((r) => JSON.stringify(r)).sort();
  return out;
}

function rejectsNaming(fields: string[]) {
  return (e: unknown) => {
    assert.ok(e instanceof HttpError, `expected a 422, got ${String(e)}`);
    assert.equal(e.status, 422);
    assert.deepEqual(Object.keys(e.fields).sort(), [...fields].sort(), JSON.stringify(e.fields));
    for (const f of fields) assert.match(e.fields[f]!, /largest amount an item may have/);
    return true;
  };
}

/** 1,000,000 units at 100,000,000.00: each at its own limit, their product 10^16 minor units. */
const HUGE_QUANTITY = 1_000_000_000;
const HUGE_UNIT = 10_000_000_000;

eachDialect('a quantity times unit price past the largest amount is a 422 naming the amount, and nothing is written', async (db) => {
  const cmds = mattersCommands(db);
  const tk = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  const client = await cmds.createClient(ctx, { name: 'Northwind' });
  const matter = await cmds.openMatter(ctx, { clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: tk.id, openedOn: '2026-01-01' });
  const type = await cmds.createChargeType(ctx, { code: 'LEASE', name: 'Lease review', defaultPriceMinor: HUGE_UNIT });
  const disb = await cmds.recordDisbursement(ctx, { matterId: matter.id, incurredOn: '2026-02-01', code: 'COURT', unitCostMinor: 27_500, description: 'Filing fee' });
  const fixed = await cmds.recordFixedCharge(ctx, { matterId: matter.id, chargedOn: '2026-02-01', chargeTypeId: type.id });
  const before = await snapshot(db);

  await assert.rejects(cmds.recordDisbursement(ctx, {
    matterId: matter.id, incurredOn: '2026-02-02', code: 'COURT', quantityMilli: HUGE_QUANTITY, unitCostMinor: HUGE_UNIT, description: 'x',
  }), rejectsNaming(['amount']));
  // 500,000 units: a safe integer, but five times the largest amount.
  await assert.rejects(cmds.recordDisbursement(ctx, {
    matterId: matter.id, incurredOn: '2026-02-02', code: 'COURT', quantityMilli: 500_000_000, unitCostMinor: HUGE_UNIT, description: 'x',
  }), rejectsNaming(['amount']));
  await assert.rejects(cmds.recordFixedCharge(ctx, { matterId: matter.id, chargedOn: '2026-02-02', chargeTypeId: type.id, quantityMilli: HUGE_QUANTITY }), rejectsNaming(['amount']));
  await assert.rejects(cmds.recordWip(ctx, {
    disbursements: [
      { matterId: matter.id, incurredOn: '2026-02-02', code: 'COURT', unitCostMinor: 100, description: 'fine' },
      { matterId: matter.id, incurredOn: '2026-02-02', code: 'COURT', quantityMilli: HUGE_QUANTITY, unitCostMinor: HUGE_UNIT, description: 'x' },
    ],
    fixedCharges: [{ matterId: matter.id, chargedOn: '2026-02-02', chargeTypeId: type.id, quantityMilli: HUGE_QUANTITY }],
  }), rejectsNaming(['disbursements.1.amount', 'fixedCharges.0.amount']));
  await assert.rejects(cmds.updateDisbursement(ctx, disb.id, { quantityMilli: HUGE_QUANTITY, unitCostMinor: HUGE_UNIT }), rejectsNaming(['amount']));
  await assert.rejects(cmds.updateFixedCharge(ctx, fixed.id, { quantityMilli: HUGE_QUANTITY }), rejectsNaming(['amount']));
  assert.deepEqual(await snapshot(db), before, 'nothing was written');

  // At the limit exactly is fine: 100,000 units at 100,000,000.00 is 10^15 minor units.
  const atLimit = await cmds.recordDisbursement(ctx, {
    matterId: matter.id, incurredOn: '2026-02-02', code: 'COURT', quantityMilli: 100_000_000, unitCostMinor: HUGE_UNIT, description: 'at the limit',
  });
  assert.equal(atLimit.amountMinor, 1_000_000_000_000_000);
});

eachDialect('the API and a CSV import name the amount of such an item (422), writing nothing', async (db) => {
  await withApp(db, async (t) => {
    const cmds = mattersCommands(db, t);
    const tk = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
    const client = await cmds.createClient(ctx, { name: 'Northwind' });
    const matter = await cmds.openMatter(ctx, { clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: tk.id, openedOn: '2026-01-01' });
    const u = await t.user('billing');
    const b = t.browser();
    const auth = { authorization: `Bearer ${await t.token(u.email)}` };
    const before = await snapshot(db);

    const res = await b.postJson('/api/v1/disbursements', {
      matterId: matter.id, incurredOn: '2026-02-02', code: 'COURT', quantity: '1000000', unitCost: '100000000.00', description: 'x',
    }, { headers: auth });
    assert.equal(res.status, 422, res.text);
    assert.deepEqual(Object.keys(res.json().error.fields), ['amount']);

    const csv = `file_number,date,code,quantity,unit_cost,description\n${matter.fileNumber},2026-02-02,COURT,1,10.00,Fine\n${matter.fileNumber},2026-02-03,COURT,1000000,100000000.00,Too much\n`;
    const imp = await b.request('POST', '/api/v1/imports/disbursements', { headers: { ...auth, 'content-type': 'text/csv', accept: 'application/json' }, body: csv });
    assert.equal(imp.status, 422, imp.text);
    assert.deepEqual(imp.json().rejected.map((r: { row: number; field: string | null }) => [r.row, r.field]), [[3, 'unit_cost']]);
    assert.deepEqual(await snapshot(db), before, 'nothing was written');
  });
});
