/**
 * Mends from the audit comparing the single-matter composer (createDraft) with mass billing:
 * 1. the "As quoted" adjustment is taxed as the lines it adjusts (split per tax code);
 * 2. an every-cycle fixed fee on a matter with no billing cycle never makes a bill on its own;
 * 3. a quote never bills on its own: a bill needs something chargeable (the rule mass billing uses);
 * 4. interest-only drafts and quoted products: what each path does, pinned.
 * Domain tests first (no database), then flows on both databases.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { composeBill } from '../../src/modules/billing/domain/compose.ts';
import type { BillLine, ComposeFirm, ComposeItem, ComposeOptions, ComposeRequest } from '../../src/modules/billing/domain/compose.ts';
import { splitByTaxCode } from '../../src/modules/billing/domain/rules.ts';
import type { QuoteChoice, QuoteIncludes } from '../../src/modules/billing/domain/rules.ts';
import { percentOf, sumMinor } from '../../src/shared/money.ts';
import { hasSomethingToBill, massReasons } from '../../src/modules/billing/domain/mass.ts';
import type { BillContent, MassFacts } from '../../src/modules/billing/domain/mass.ts';
import { createMassBilling } from '../../src/modules/billing/mass-commands.ts';
import { eachDialect } from '../support/db.ts';
import { setup as ledgerSetup } from '../ledger/support.ts';
import { assertBillInvariants, ctx, firm, refused, setup } from './support.ts';
import type { Setup } from './support.ts';
import { HOURLY_OPTIONS } from './compose-fixtures.ts';

/* ------------------------------ 1. "As quoted" tax ------------------------------ */

const RATES = [{ code: 'EXEMPT', basisPoints: 0 }, { code: 'GST', basisPoints: 1_000 }, { code: 'SALES', basisPoints: 825 }];
const firmOf = (taxRounding: 'per_line' | 'per_bill'): ComposeFirm => ({ taxRates: RATES, defaultFeeTaxCode: 'SALES', taxRounding, paymentTermsDays: 30 });
const matter = { responsibleTimekeeperId: 'PP', currency: 'USD' };
const baseOptions = HOURLY_OPTIONS;
const quoted = (amountMinor: number, includes: QuoteIncludes, below: QuoteChoice = 'bill_quote', above: QuoteChoice = 'bill_quote'): ComposeOptions =>
  ({ ...baseOptions, quote: { amountMinor, includes, ifWipBelow: below, ifWipAbove: above } });
const item = (id: string, kind: ComposeItem['kind'], amountMinor: number, taxCode: string | null, extra: Partial<ComposeItem> = {}): ComposeItem => ({
  id, kind, date: '2026-02-10', timekeeperId: kind === 'time' ? 'PP' : null, code: kind === 'disbursement' ? 'COURT' : null, description: id,
  minutes: kind === 'time' ? 60 : null, rateMinor: null, amountMinor, behaviour: 'bill', taxCode, ...extra,
});
const req: ComposeRequest = { invoiceDate: '2026-03-01', upTo: '2026-03-01' };
// The audit's bill: fees 600.00 (SALES 8.25%), a 350.00 EXEMPT filing fee, 50.00 of copies with 10% GST.
const auditItems = [item('hearing', 'time', 60_000, null), item('filing', 'disbursement', 35_000, 'EXEMPT'), item('copies', 'disbursement', 5_000, 'GST')];
const asQuoted = (lines: readonly BillLine[]) => lines.filter((l) => l.itemId === null && l.description.startsWith('As quoted'));
const taxByCode = (lines: readonly BillLine[]) => {
  const out: Record<string, number> = {};
  for (const l of lines) if (l.taxMinor !== 0 || l.taxCode) out[l.taxCode ?? '-'] = (out[l.taxCode ?? '-'] ?? 0) + l.taxMinor;
  return out;
};

test('"As quoted" is taxed as the lines it adjusts: one line per tax code, pro rata (the audit\'s figures)', () => {
  type Case = { name: string; options: ComposeOptions; items?: ComposeItem[]; rounding: 'per_line' | 'per_bill'; lines: [string, string, number, number][]; tax: Record<string, number>; total: number };
  const cases: Case[] = [
    // Costs 400.00 above a 10.00 quote: -390.00 split 350:50 over EXEMPT and GST. Sales tax stays 49.50 (the fees'); GST on the 12.50 of copies billed.
    { name: 'costs quote 10.00, per line', options: quoted(1_000, 'costs'), rounding: 'per_line',
      lines: [['adhoc_disbursement', 'EXEMPT', -34_125, 0], ['adhoc_disbursement', 'GST', -4_875, -488]], tax: { SALES: 4_950, EXEMPT: 0, GST: 12 }, total: 60_000 + 1_000 + 4_962 },
    // Per bill: GST is 10% of the 125 net (12.50, 13 half up); the bill's rounding unit goes to the larger line (the copies: 501).
    { name: 'costs quote 10.00, per bill', options: quoted(1_000, 'costs'), rounding: 'per_bill',
      lines: [['adhoc_disbursement', 'EXEMPT', -34_125, 0], ['adhoc_disbursement', 'GST', -4_875, -488]], tax: { SALES: 4_950, EXEMPT: 0, GST: 13 }, total: 60_000 + 1_000 + 4_963 },
    // Costs 400.00 below a 2,000.00 quote: +1,600.00 split 1,400.00 EXEMPT and 200.00 GST (+20.00 GST, no sales tax).
    { name: 'costs quote 2,000.00, per line', options: quoted(200_000, 'costs'), rounding: 'per_line',
      lines: [['adhoc_disbursement', 'EXEMPT', 140_000, 0], ['adhoc_disbursement', 'GST', 20_000, 2_000]], tax: { SALES: 4_950, EXEMPT: 0, GST: 2_500 }, total: 60_000 + 200_000 + 7_450 },
    { name: 'costs quote 2,000.00, per bill', options: quoted(200_000, 'costs'), rounding: 'per_bill',
      lines: [['adhoc_disbursement', 'EXEMPT', 140_000, 0], ['adhoc_disbursement', 'GST', 20_000, 2_000]], tax: { SALES: 4_950, EXEMPT: 0, GST: 2_500 }, total: 60_000 + 200_000 + 7_450 },
    // Fees and costs 1,000.00 above a 300.00 quote (below the costs alone): -700.00 over all of them, 600:350:50.
    { name: 'fees and costs quote 300.00, per line', options: quoted(30_000, 'fees_and_costs'), rounding: 'per_line',
      lines: [['quote_fee', 'EXEMPT', -24_500, 0], ['quote_fee', 'GST', -3_500, -350], ['quote_fee', 'SALES', -42_000, -3_465]], tax: { SALES: 1_485, EXEMPT: 0, GST: 150 }, total: 30_000 + 1_635 },
    { name: 'fees and costs quote 300.00, per bill', options: quoted(30_000, 'fees_and_costs'), rounding: 'per_bill',
      lines: [['quote_fee', 'EXEMPT', -24_500, 0], ['quote_fee', 'GST', -3_500, -350], ['quote_fee', 'SALES', -42_000, -3_465]], tax: { SALES: 1_485, EXEMPT: 0, GST: 150 }, total: 30_000 + 1_635 },
    // One code only: one line, named as before.
    { name: 'costs of one code', options: quoted(1_000, 'costs'), items: [item('hearing', 'time', 60_000, null), item('filing', 'disbursement', 35_000, 'EXEMPT')], rounding: 'per_line',
      lines: [['adhoc_disbursement', 'EXEMPT', -34_000, 0]], tax: { SALES: 4_950, EXEMPT: 0 }, total: 60_000 + 1_000 + 4_950 },
    // Nothing to adjust: new charges, a fee at the firm's fee tax code (a quote of fees with no fee work; fees and costs above the costs).
    { name: 'fees quote, no fee work', options: quoted(80_000, 'fees'), items: [item('filing', 'disbursement', 35_000, 'EXEMPT')], rounding: 'per_line',
      lines: [['quote_fee', 'SALES', 80_000, 6_600]], tax: { EXEMPT: 0, SALES: 6_600 }, total: 115_000 + 6_600 },
    { name: 'fees and costs quote above the costs, no fee work', options: quoted(100_000, 'fees_and_costs'), items: [item('filing', 'disbursement', 35_000, 'EXEMPT'), item('copies', 'disbursement', 5_000, 'GST')], rounding: 'per_line',
      lines: [['quote_fee', 'SALES', 60_000, 4_950]], tax: { EXEMPT: 0, GST: 500, SALES: 4_950 }, total: 100_000 + 5_450 },
  ];
  for (const c of cases) {
    const b = composeBill(matter, c.options, firmOf(c.rounding), c.items ?? auditItems, req);
    const aq = asQuoted(b.lines);
    assert.deepEqual(aq.map((l) => [l.kind, l.taxCode, l.amountMinor, l.taxMinor]), c.lines, c.name);
    assert.deepEqual(aq.map((l) => l.description), aq.length === 1 ? ['As quoted'] : aq.map((l) => `As quoted (${l.taxCode})`), c.name);
    assert.deepEqual(taxByCode(b.lines), c.tax, c.name);
    assert.equal(b.totals.totalMinor, c.total, c.name);
    assert.equal(b.totals.taxMinor, sumMinor(Object.values(c.tax)), c.name);
  }
});

test('splitByTaxCode: table', () => {
  const lines = [{ taxCode: 'GST', amountMinor: 5_000 }, { taxCode: 'EXEMPT', amountMinor: 20_000 }, { taxCode: 'EXEMPT', amountMinor: 15_000 }];
  assert.deepEqual(splitByTaxCode(-39_000, lines, 'SALES'), [{ taxCode: 'EXEMPT', amountMinor: -34_125 }, { taxCode: 'GST', amountMinor: -4_875 }]);
  assert.deepEqual(splitByTaxCode(160_000, lines, 'SALES'), [{ taxCode: 'EXEMPT', amountMinor: 140_000 }, { taxCode: 'GST', amountMinor: 20_000 }]);
  // 1 unit over 3 equal codes: largest remainder, ties to the earlier code; zero parts left out.
  assert.deepEqual(splitByTaxCode(1, [{ taxCode: 'C', amountMinor: 1 }, { taxCode: 'A', amountMinor: 1 }, { taxCode: 'B', amountMinor: 1 }], 'X'), [{ taxCode: 'A', amountMinor: 1 }]);
  assert.deepEqual(splitByTaxCode(-2, [{ taxCode: 'C', amountMinor: 1 }, { taxCode: 'A', amountMinor: 1 }, { taxCode: 'B', amountMinor: 1 }], 'X'), [{ taxCode: 'A', amountMinor: -1 }, { taxCode: 'B', amountMinor: -1 }]);
  // Nothing to weigh by: one part at the fallback code.
  assert.deepEqual(splitByTaxCode(500, [], 'SALES'), [{ taxCode: 'SALES', amountMinor: 500 }]);
  assert.deepEqual(splitByTaxCode(500, [{ taxCode: 'GST', amountMinor: 0 }], 'SALES'), [{ taxCode: 'SALES', amountMinor: 500 }]);
  // A code whose lines net to nothing or less takes no part.
  assert.deepEqual(splitByTaxCode(-300, [{ taxCode: 'GST', amountMinor: 1_000 }, { taxCode: 'EXEMPT', amountMinor: 100 }, { taxCode: 'EXEMPT', amountMinor: -100 }], 'SALES'), [{ taxCode: 'GST', amountMinor: -300 }]);
  assert.deepEqual(splitByTaxCode(0, lines, 'SALES'), []);
});

test('property: splitByTaxCode parts sum to the adjustment, only at the lines\' codes, each within a unit of its exact share', () => {
  fc.assert(fc.property(
    fc.array(fc.record({ taxCode: fc.constantFrom('A', 'B', 'C', 'D'), amountMinor: fc.integer({ min: 0, max: 50_000_000 }) }), { maxLength: 12 }),
    fc.integer({ min: -100_000_000, max: 100_000_000 }),
    (lines, adjustment) => {
      const parts = splitByTaxCode(adjustment, lines, 'FALLBACK');
      assert.equal(sumMinor(parts.map((p) => p.amountMinor)), adjustment);
      const weights = new Map<string, number>();
      for (const l of lines) weights.set(l.taxCode, (weights.get(l.taxCode) ?? 0) + l.amountMinor);
      const total = sumMinor([...weights.values()]);
      assert.equal(new Set(parts.map((p) => p.taxCode)).size, parts.length, 'one part per code');
      for (const p of parts) {
        assert.notEqual(p.amountMinor, 0);
        if (total === 0) { assert.equal(p.taxCode, 'FALLBACK'); continue; }
        assert.ok(weights.has(p.taxCode) && weights.get(p.taxCode)! > 0, `no part at a code its lines do not have: ${p.taxCode}`);
        assert.equal(Math.sign(p.amountMinor), Math.sign(adjustment));
        const exact = (adjustment * weights.get(p.taxCode)!) / total;
        assert.ok(Math.abs(p.amountMinor - exact) < 1 + 1e-6, `${p.amountMinor} within a unit of ${exact}`);
      }
    },
  ), { numRuns: 500 });
});

test('property: a quote that includes costs: "As quoted" lines sum to the difference, carry only the adjusted lines\' codes, and each code is taxed on its net base', () => {
  const codes = ['EXEMPT', 'GST', 'SALES'];
  const bp = new Map(RATES.map((r) => [r.code, r.basisPoints]));
  fc.assert(fc.property(
    fc.array(fc.record({ kind: fc.constantFrom('time', 'disbursement', 'fixed_charge') as fc.Arbitrary<ComposeItem['kind']>, amountMinor: fc.integer({ min: 0, max: 5_000_000 }),
      taxCode: fc.option(fc.constantFrom(...codes)), noCharge: fc.boolean() }), { maxLength: 10 }),
    fc.integer({ min: 0, max: 20_000_000 }),
    fc.constantFrom('costs', 'fees_and_costs') as fc.Arbitrary<QuoteIncludes>,
    fc.constantFrom('bill_quote', 'quote_plus_wip', 'wip_only') as fc.Arbitrary<QuoteChoice>,
    fc.constantFrom('bill_quote', 'quote_plus_wip', 'wip_only') as fc.Arbitrary<QuoteChoice>,
    fc.constantFrom('per_line', 'per_bill') as fc.Arbitrary<'per_line' | 'per_bill'>,
    (specs, quote, includes, below, above, rounding) => {
      const items = specs.map((s, i) => item(`i${i}`, s.kind, s.amountMinor, s.taxCode, { behaviour: s.noCharge ? 'no_charge' : 'bill' }));
      const b = composeBill(matter, quoted(quote, includes, below, above), firmOf(rounding), items, req);
      const code = (c: string | null) => c ?? 'SALES';
      const charged = items.filter((i) => i.behaviour === 'bill');
      const costs = charged.filter((i) => i.kind === 'disbursement');
      const fees = charged.filter((i) => i.kind !== 'disbursement');
      const aq = asQuoted(b.lines);
      const difference = b.quote!.targetMinor - b.quote!.comparedWipMinor;
      if (aq.length > 0) {
        assert.equal(sumMinor(aq.map((l) => l.amountMinor)), difference, 'the "As quoted" lines sum to the difference');
        assert.equal(new Set(aq.map((l) => l.taxCode)).size, aq.length, 'one line per tax code');
        const adjusted = includes === 'costs' ? costs : difference < 0 ? [...fees, ...costs] : [];
        const adjustedCodes = new Set(adjusted.filter((i) => i.amountMinor > 0).map((i) => code(i.taxCode)));
        for (const l of aq) {
          if (adjustedCodes.size > 0) assert.ok(adjustedCodes.has(l.taxCode!), `"As quoted" at ${l.taxCode}: not a code of the lines it adjusts`);
          else assert.equal(l.taxCode, 'SALES', 'nothing to adjust: new charges at the fee tax code');
        }
      } else {
        assert.ok(difference === 0 || (includes === 'fees_and_costs' && fees.some((f) => f.amountMinor > 0)), 'the fees carried the difference');
      }
      // Each code's tax is the tax on its net base (per bill), or the sum of its lines' own taxes (per line).
      const byCode = new Map<string, BillLine[]>();
      for (const l of b.lines) byCode.set(l.taxCode!, [...(byCode.get(l.taxCode!) ?? []), l]);
      for (const [c, ls] of byCode) {
        const expected = rounding === 'per_bill' ? percentOf(sumMinor(ls.map((l) => l.amountMinor)), bp.get(c)!, 'half_up')
          : sumMinor(ls.map((l) => percentOf(l.amountMinor, bp.get(c)!, 'half_up')));
        assert.equal(sumMinor(ls.map((l) => l.taxMinor)), expected, `tax at ${c}`);
      }
      assert.equal(b.totals.totalMinor, sumMinor(b.lines.map((l) => l.amountMinor)) + sumMinor(b.lines.map((l) => l.taxMinor)), 'the total is the lines plus their tax');
    },
  ), { numRuns: 400 });
});

/* --------------- 2-4. what makes a bill: one rule for the composer and mass billing --------------- */

test('hasSomethingToBill: chargeable items, a fee due on its own, or the clerk\'s ad hoc lines; nothing else', () => {
  const cases: [string, BillContent, boolean][] = [
    ['nothing', { chargeableItems: 0, fixedFeeDue: false }, false],
    ['nothing, no clerk lines', { chargeableItems: 0, fixedFeeDue: false, clerkLines: 0 }, false],
    ['a chargeable item', { chargeableItems: 1, fixedFeeDue: false }, true],
    ['a fee due on its own', { chargeableItems: 0, fixedFeeDue: true }, true],
    ['an ad hoc line', { chargeableItems: 0, fixedFeeDue: false, clerkLines: 1 }, true],
  ];
  for (const [name, c, want] of cases) assert.equal(hasSomethingToBill(c), want, name);
  // massReasons says nothing_to_bill exactly when the rule says there is nothing.
  fc.assert(fc.property(fc.nat(3), fc.nat(3), fc.nat(3), fc.boolean(), fc.boolean(), fc.boolean(), (fee, timeOf, disb, due, onBill, fixed) => {
    const time = Math.min(timeOf, fee);
    const facts: MassFacts = {
      matterStatus: 'open', options: { billingEnabled: true, billingStatus: 'active', massBilling: { exclude: false, onlyExpenses: false }, arrangement: fixed ? 'fixed_fee' : 'hourly' } as MassFacts['options'],
      hasClient: true, hasBillableParty: true, unbilledFeeItems: fee, unbilledTimeItems: time, unbilledDisbursementItems: disb, fixedFeeDue: due, cycleFeeOnBill: onBill, draft: null,
    };
    const chargeable = (fixed && !due && !onBill ? fee - time : fee) + disb;
    assert.equal(massReasons(facts).some((r) => r.code === 'nothing_to_bill'), !hasSomethingToBill({ chargeableItems: chargeable, fixedFeeDue: due }));
  }), { numRuns: 300 });
});

const dates = { invoiceDate: '2026-03-01', upTo: '2026-03-01' };
type Opened = { id: string };
async function openWith(s: Setup, clientId: string, partnerId: string, name: string, open: Record<string, unknown>, options: Record<string, unknown> | null): Promise<Opened> {
  const m = await s.cmds.openMatter(ctx, { clientId, name, responsibleTimekeeperId: partnerId, openedOn: '2025-06-01', billingCycle: 'MONTH', ...open } as never);
  if (options) await s.cmds.setBillingOptions(ctx, m.id, { set: options as never });
  return m;
}
const noChargeHour = (s: Setup, matterId: string, partnerId: string) =>
  s.cmds.recordTimeEntry(ctx, { matterId, timekeeperId: partnerId, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Call', behaviour: 'no_charge' });
const hour = (s: Setup, matterId: string, partnerId: string, workDate = '2026-02-10') =>
  s.cmds.recordTimeEntry(ctx, { matterId, timekeeperId: partnerId, workDate, rawMinutes: 60, narrative: 'Advice' });
const shape = (b: { lines: readonly { kind: string; amountMinor: number; noCharge: boolean }[] }) => b.lines.map((l) => [l.kind, l.amountMinor, l.noCharge]);

eachDialect('the composer refuses what mass billing skips: a fixed fee with no cycle and no work, a quote with nothing chargeable, no-charge items alone', async (db) => {
  const s = await setup(db);
  const { partner, client } = await firm(s.cmds);
  const ffNone = await openWith(s, client.id, partner.id, 'Fixed fee, no cycle', { billingCycle: 'none' }, { arrangement: 'fixed_fee', quote: { amountMinor: 250_000 }, fixedFee: { mode: 'every_cycle', schedule: [] } });
  const quoteFees = await openWith(s, client.id, partner.id, 'Quote of fees', {}, { quote: { amountMinor: 500_000, includes: 'fees', ifWipBelow: 'bill_quote', ifWipAbove: 'wip_only' } });
  await noChargeHour(s, quoteFees.id, partner.id);
  const quoteCosts = await openWith(s, client.id, partner.id, 'Quote of costs', {}, { quote: { amountMinor: 200_000, includes: 'costs', ifWipBelow: 'bill_quote', ifWipAbove: 'bill_quote' } });
  await noChargeHour(s, quoteCosts.id, partner.id);
  const noCharge = await openWith(s, client.id, partner.id, 'No charge only', {}, null);
  await noChargeHour(s, noCharge.id, partner.id);
  await s.drain();
  const all = [ffNone, quoteFees, quoteCosts, noCharge];

  // Mass billing does not offer them, even picked by name ...
  const mass = createMassBilling({ db: db.db, clock: s.clock, relay: s.rt.relay }, s.billing);
  const rows = await mass.candidates(dates, { matterIds: all.map((m) => m.id), handPicked: true });
  assert.equal(rows.length, all.length);
  for (const r of rows) assert.deepEqual(r.reasons.map((x) => x.code), ['nothing_to_bill'], r.name);
  // ... and the composer refuses them with the same words mass uses for a matter with no lines.
  for (const m of all) {
    const e = await refused(s.billing.createDraft(ctx, { matterId: m.id, ...dates }));
    assert.match(e.message, /^No billable items on or before 2026-03-01/);
    // The composer's preview says so too, rather than showing a bill that saving refuses.
    assert.match((await refused(s.billing.preview({ matterId: m.id, ...dates }))).message, /^No billable items on or before 2026-03-01/, `preview of ${m.id}`);
  }
  assert.deepEqual(await db.db.selectFrom('billing_bill').select('id').execute(), [], 'nothing drafted');

  // A fee the clerk gives for the bill stands; once approved, a second bill the same day without one is refused.
  const given = await s.billing.createDraft(ctx, { matterId: ffNone.id, ...dates, request: { fixedFeeAmountMinor: 250_000 } });
  assert.deepEqual(shape(given), [['fixed_fee', 250_000, false]]);
  await s.billing.approve(ctx, given.billId);
  await s.drain();
  assert.match((await refused(s.billing.createDraft(ctx, { matterId: ffNone.id, ...dates }))).message, /^No billable items on or before 2026-03-01/);
  // Work recorded: the fee rides on the bill made for it (the time written to the fee).
  await hour(s, ffNone.id, partner.id);
  // Some chargeable work below the quote: the quote is billed (seed 002); a disbursement below a quote of costs: the quote of costs.
  await hour(s, quoteFees.id, partner.id);
  await s.cmds.recordDisbursement(ctx, { matterId: quoteCosts.id, incurredOn: '2026-02-12', code: 'COURT', unitCostMinor: 10_000, taxCode: 'EXEMPT', description: 'Filing fee' });
  await s.drain();
  const ff = await s.billing.createDraft(ctx, { matterId: ffNone.id, ...dates });
  assert.deepEqual(shape(ff), [['time', 250_000, false]]);
  const qf = await s.billing.createDraft(ctx, { matterId: quoteFees.id, ...dates });
  assert.equal(qf.totals.feesMinor, 500_000);
  assert.deepEqual(shape(qf).filter(([, , nc]) => !nc).map(([k]) => k), ['time'], 'the quote written over the chargeable hour');
  const qc = await s.billing.createDraft(ctx, { matterId: quoteCosts.id, ...dates });
  assert.equal(qc.totals.disbursementsMinor, 200_000);
  assert.deepEqual(qc.lines.filter((l) => l.itemId === null).map((l) => [l.kind, l.description, l.amountMinor, l.taxCode]), [['adhoc_disbursement', 'As quoted', 190_000, 'EXEMPT']]);
  // An ad hoc line the clerk builds is something to bill (seed 003: items "added at the point of billing").
  const adHoc = await s.billing.createDraft(ctx, { matterId: noCharge.id, ...dates, request: { adHoc: [{ kind: 'fee', description: 'Advice at the counter', amountMinor: 10_000, taxCode: null, timekeeperId: null }] } });
  assert.deepEqual(shape(adHoc), [['time', 0, true], ['adhoc_fee', 10_000, false]]);
  await assertBillInvariants(db.db, s.billing, all.map((m) => m.id));
});

eachDialect('interest alone makes an interest-only draft in the composer (a fee or quote riding on work left off); a quoted product is billed by the composer; mass billing offers neither', async (db) => {
  const s = await ledgerSetup(db);
  const { partner, client } = await firm(s.cmds);
  await s.cmds.updateFirmSettings(ctx, { paymentTermsDays: 30, interest: { enabled: true, annualRateBasisPoints: 1_000, graceDays: 0 } });
  const lease = await s.cmds.createChargeType(ctx, { code: 'LEASE', name: 'Lease review', defaultPriceMinor: 75_000 });
  const plain = await openWith(s, client.id, partner.id, 'Hourly', {}, null);
  const ffNone = await openWith(s, client.id, partner.id, 'Fixed fee, no cycle', { billingCycle: 'none' }, { arrangement: 'fixed_fee', quote: { amountMinor: 250_000 }, fixedFee: { mode: 'every_cycle', schedule: [] } });
  const quote = await openWith(s, client.id, partner.id, 'Quote of fees', {}, { quote: { amountMinor: 500_000, includes: 'fees', ifWipBelow: 'bill_quote', ifWipAbove: 'wip_only' } });
  const overdue = [plain, ffNone, quote];
  for (const m of overdue) await hour(s, m.id, partner.id, '2025-10-10');
  const manual = await openWith(s, client.id, partner.id, 'No charge only', {}, null);
  await noChargeHour(s, manual.id, partner.id);
  const product = await openWith(s, client.id, partner.id, 'Quoted product', {}, null);
  await s.cmds.recordFixedCharge(ctx, { matterId: product.id, chargedOn: '2026-02-10', chargeTypeId: lease.id, quoted: true });
  await s.drain();
  // Bills of 2025-11-01, due 2025-12-01, unpaid.
  const old = new Map<string, number>();
  for (const m of overdue) {
    const b = await s.billing.createDraft(ctx, { matterId: m.id, invoiceDate: '2025-11-01', upTo: '2025-11-01' });
    old.set(m.id, b.totals.totalMinor);
    await s.billing.approve(ctx, b.billId);
  }
  await s.drain();
  assert.deepEqual([...old.values()], [30_000, 250_000, 500_000], 'the fee and the quote rode on the bills made for work');

  // Mass billing (seed 001: matters with WIP or disbursements to bill) offers none of them.
  const mass = createMassBilling({ db: db.db, clock: s.clock, relay: s.rt.relay }, s.billing);
  const ids = [...overdue, manual, product].map((m) => m.id);
  const rows = await mass.candidates(dates, { matterIds: ids, handPicked: true });
  for (const r of rows) assert.deepEqual(r.reasons.map((x) => x.code), ['nothing_to_bill'], r.name);

  // The composer drafts the interest by policy alone: 90 days at 10% on each old bill, nothing riding on it.
  for (const m of overdue) {
    // The preview is the bill saving makes: interest only.
    const previewed = await s.billing.preview({ matterId: m.id, ...dates });
    const b = await s.billing.createDraft(ctx, { matterId: m.id, ...dates });
    assert.deepEqual(previewed.lines.map((l) => [l.kind, l.amountMinor]), b.lines.map((l) => [l.kind, l.amountMinor]), `preview of ${m.id}`);
    const interest = Math.floor((old.get(m.id)! * 1_000 * 90 * 2 + 10_000 * 365) / (2 * 10_000 * 365));
    assert.deepEqual(b.lines.map((l) => [l.kind, l.amountMinor]), [['interest', interest]], m.id);
    assert.equal(b.totals.totalMinor, interest);
    const riding = m === ffNone ? { fixedFeeAmountMinor: 0 } : m === quote ? { applyQuote: false } : {};
    assert.deepEqual(b.request, riding, 'the request records what was left off, so editing keeps it');
  }
  // Interest charged by hand on a matter with only a no-charge hour: an interest-only bill too.
  const byHand = await s.billing.createDraft(ctx, { matterId: manual.id, ...dates, request: { interestMinor: 5_000 } });
  assert.deepEqual(shape(byHand), [['time', 0, true], ['interest', 5_000, false]]);
  // A quoted product: part of the bill's product set (seed 003), charged by the composer.
  const p = await s.billing.createDraft(ctx, { matterId: product.id, ...dates });
  assert.deepEqual(shape(p), [['fixed_charge', 75_000, false]]);
  await assertBillInvariants(db.db, s.billing, ids);
});

eachDialect('editing a draft down to nothing of its own (its work toggled out) is refused as a new bill would be; a fee the clerk gives or interest still stands', async (db) => {
  const s = await setup(db);
  const { partner, client } = await firm(s.cmds);
  const ffNone = await openWith(s, client.id, partner.id, 'Fixed fee, no cycle', { billingCycle: 'none' }, { arrangement: 'fixed_fee', quote: { amountMinor: 250_000 }, fixedFee: { mode: 'every_cycle', schedule: [] } });
  const quoteFees = await openWith(s, client.id, partner.id, 'Quote of fees', {}, { quote: { amountMinor: 500_000, includes: 'fees', ifWipBelow: 'bill_quote', ifWipAbove: 'wip_only' } });
  const plain = await openWith(s, client.id, partner.id, 'Hourly', {}, null);
  const withNoCharge = await openWith(s, client.id, partner.id, 'Hourly with a no-charge call', {}, null);
  for (const m of [ffNone, quoteFees, plain, withNoCharge]) await hour(s, m.id, partner.id);
  await noChargeHour(s, withNoCharge.id, partner.id);
  await s.drain();
  const drafts = new Map<string, Awaited<ReturnType<typeof s.billing.createDraft>>>();
  for (const m of [ffNone, quoteFees, plain, withNoCharge]) drafts.set(m.id, await s.billing.createDraft(ctx, { matterId: m.id, ...dates }));
  const chargeable = (b: { lines: readonly { itemId: string | null; noCharge: boolean }[] }) => b.lines.filter((l) => l.itemId !== null && !l.noCharge).map((l) => l.itemId!);
  const audits = async () => Number(((await db.db.selectFrom('audit_log').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()) as { n: unknown }).n);

  // The fee riding on the work, the quote written over it, a no-charge call: toggling the work out leaves nothing to bill.
  for (const [name, m] of [['fee riding on work', ffNone], ['quote', quoteFees], ['no-charge call', withNoCharge]] as const) {
    const d = drafts.get(m.id)!;
    const before = await audits();
    const e = await refused(s.billing.updateDraft(ctx, d.billId, { request: { ...d.request, excludedIds: chargeable(d) }, expectedVersion: d.version }));
    assert.match(e.message, /nothing of its own to bill/, name);
    const now = (await s.billing.findBill(d.billId))!;
    assert.equal(now.version, d.version, `${name}: unchanged`);
    assert.deepEqual(now.lines.map((l) => [l.kind, l.amountMinor]), d.lines.map((l) => [l.kind, l.amountMinor]), `${name}: lines unchanged`);
    assert.equal(await audits(), before, `${name}: nothing audited`);
  }
  // A plain hourly draft with its one hour toggled out has no lines at all: refused as before.
  const p = drafts.get(plain.id)!;
  assert.match((await refused(s.billing.updateDraft(ctx, p.billId, { request: { excludedIds: chargeable(p) }, expectedVersion: p.version }))).message, /no lines/);
  // A fee the clerk gives is something to bill; so is interest charged by hand.
  const ff = drafts.get(ffNone.id)!;
  const fee = await s.billing.updateDraft(ctx, ff.billId, { request: { ...ff.request, excludedIds: chargeable(ff), fixedFeeAmountMinor: 100_000 }, expectedVersion: ff.version });
  assert.deepEqual(shape(fee), [['fixed_fee', 100_000, false]]);
  const q = drafts.get(quoteFees.id)!;
  const interest = await s.billing.updateDraft(ctx, q.billId, { request: { ...q.request, excludedIds: chargeable(q), applyQuote: false, interestMinor: 2_500 }, expectedVersion: q.version });
  assert.deepEqual(shape(interest), [['interest', 2_500, false]]);
  await assertBillInvariants(db.db, s.billing, [ffNone.id, quoteFees.id, plain.id, withNoCharge.id]);
});
