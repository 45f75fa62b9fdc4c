/**
 * A tax code cannot be removed from the firm's rates while work not yet billed (unbilled or
 * on a draft) or a charge type still carries it: every bill of those matters would then fail
 * to compose ("unknown tax code"). The refusal names taxRates and the uses, and changes
 * nothing; once the work is billed (or given another code) the code can go.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { ctx, firm, setup } from '../billing/support.ts';
import { refused } from './support.ts';

const RATES = [{ code: 'EXEMPT', name: 'Exempt', basisPoints: 0 }, { code: 'SALES', name: 'Sales', basisPoints: 825 }];
const GST = { code: 'GST', name: 'Goods and services tax', basisPoints: 1_000 };

eachDialect('removing a tax code still on work not yet billed is refused at taxRates; once billed it may go', async (db) => {
  const s = await setup(db);
  const f = await firm(s.cmds);
  await s.cmds.updateFirmSettings(ctx, { taxRates: [...RATES, GST] });
  await s.cmds.recordDisbursement(ctx, { matterId: f.matter.id, incurredOn: '2026-02-12', code: 'COURT', unitCostMinor: 27_500, quantityMilli: 2_000, taxCode: 'GST', description: 'Filing fees' });
  await s.drain();

  const unbilled = await refused(s.cmds.updateFirmSettings(ctx, { taxRates: RATES }));
  assert.equal(unbilled.status, 422);
  assert.deepEqual(Object.keys(unbilled.fields), ['taxRates']);
  assert.match(unbilled.fields.taxRates!, /GST is still used by 1 disbursement not yet billed: give them another tax code first/);
  const settings = async () => (await db.db.selectFrom('matters_firm_settings').select('tax_rates_json').executeTakeFirstOrThrow()).tax_rates_json as string;
  assert.match(await settings(), /"GST"/, 'nothing changed');

  // On a draft: still refused (the draft is recomposed when it is saved again).
  const draft = await s.billing.createDraft(ctx, { matterId: f.matter.id, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
  await s.drain();
  assert.match((await refused(s.cmds.updateFirmSettings(ctx, { taxRates: RATES }))).fields.taxRates!, /GST is still used by 1 disbursement not yet billed/);

  // Billed: the code may go.
  await s.billing.approve(ctx, draft.billId);
  await s.drain();
  await s.cmds.updateFirmSettings(ctx, { taxRates: RATES });
  assert.doesNotMatch(await settings(), /"GST"/);
  await s.rt.relay.stop();
});
