/**
 * Audit of the composer's fee allocation: a fixed-fee line (an every-cycle fee, or a custom
 * schedule's instalment, billed with no time to carry it) is a flat fee entry, the responsible
 * lawyer's. Seed 002 allocates "fee adjustments" by their own rule, and those are the fees "not
 * tied to a time or flat fee entry". Before the mend the flat fee counted as nobody's work: beside
 * an associate's 200.00 ad hoc fee, the partner's 1,000.00 fixed fee was credited to the associate
 * (original split of 200.00 of work), and with adjustments to a selected timekeeper it all went
 * to that timekeeper. Allocations still sum exactly to the net fees.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { composeBill } from '../../src/modules/billing/domain/compose.ts';
import type { ComposeFirm, ComposeItem, ComposeOptions, ComposeRequest } from '../../src/modules/billing/domain/compose.ts';
import { sumMinor } from '../../src/shared/money.ts';
import { eachDialect } from '../support/db.ts';
import { assertBillInvariants, ctx, firm, setup, twoInstalments } from './support.ts';
import { HOURLY_OPTIONS } from './compose-fixtures.ts';

const FIRM: ComposeFirm = { taxRates: [{ code: 'GST', basisPoints: 1_000 }], defaultFeeTaxCode: 'GST', taxRounding: 'per_line', paymentTermsDays: 30 };
const MATTER = { responsibleTimekeeperId: 'PP', currency: 'USD' };
const REQ: ComposeRequest = { invoiceDate: '2026-02-28', upTo: '2026-02-28' };
const fixedFee = (o: Partial<ComposeOptions> = {}, alloc: Partial<ComposeOptions['feeAllocation']> = {}): ComposeOptions => ({
  ...HOURLY_OPTIONS, arrangement: 'fixed_fee', quote: { ...HOURLY_OPTIONS.quote, amountMinor: 100_000 }, ...o,
  feeAllocation: { ...HOURLY_OPTIONS.feeAllocation, ...alloc },
});
const time = (id: string, tk: string, amountMinor: number): ComposeItem => ({
  id, kind: 'time', date: '2026-02-10', timekeeperId: tk, code: null, description: id, minutes: 60, rateMinor: amountMinor, amountMinor, behaviour: 'bill', taxCode: null,
});
const adHocFee = (tk: string | null, amountMinor: number) => ({ kind: 'fee' as const, description: 'Opinion', amountMinor, taxCode: null, timekeeperId: tk });

test('audit composer: a fixed-fee line is the responsible lawyer\'s work in the fee allocation, not an adjustment', () => {
  const cases: { name: string; options: ComposeOptions; items?: ComposeItem[]; req?: Partial<ComposeRequest>; want: Record<string, number> }[] = [
    { name: 'every-cycle fee beside an associate\'s ad hoc fee, original split', options: fixedFee(), req: { adHoc: [adHocFee('AA', 20_000)] }, want: { PP: 100_000, AA: 20_000 } },
    { name: 'custom-schedule instalment beside an associate\'s ad hoc fee', req: { adHoc: [adHocFee('AA', 5_000)] },
      options: fixedFee({ fixedFee: { mode: 'custom_schedule', schedule: [{ rowId: 'r1', amountMinor: 40_000, description: 'Instalment 1', billOn: '2026-02-01', invoiceNumber: null }] } }), want: { PP: 40_000, AA: 5_000 } },
    { name: 'adjustments to a selected timekeeper: the flat fee stays with the responsible lawyer', options: fixedFee({}, { allocateAdjustments: 'selected', adjustmentsTimekeeperId: 'XX' }), want: { PP: 100_000, XX: 0 } },
    { name: 'a discount on the fee is the adjustment the selected timekeeper bears',
      options: fixedFee({ discount: { kind: 'percentage', percentBasisPoints: 1_000, amountMinor: 0 }, feeReductions: { appearAsDiscount: true, hideLinePricing: false } }, { allocateAdjustments: 'selected', adjustmentsTimekeeperId: 'XX' }),
      want: { PP: 100_000, XX: -10_000 } },
    // (The associate's fee counts at the 200.00 given; the whole 100.00 written into the lines is the adjustment, the responsible lawyer's.)
    { name: 'the discount hidden in the lines is an adjustment too', options: fixedFee({ discount: { kind: 'fixed', percentBasisPoints: 0, amountMinor: 10_000 } }, { allocateAdjustments: 'responsible' }),
      req: { adHoc: [adHocFee('AA', 20_000)] }, want: { PP: 100_000 - 10_000, AA: 20_000 } },
    { name: 'an ad hoc fee with no timekeeper is still an adjustment (original split of the flat fee and the associate\'s fee)', options: fixedFee(),
      req: { adHoc: [adHocFee('AA', 20_000), adHocFee(null, 12_000)] }, want: { PP: 110_000, AA: 22_000 } },
    { name: 'time written to the fee: the allocation follows the recorded time, as before', options: fixedFee(), items: [time('t1', 'PP', 30_000), time('t2', 'AA', 20_000)], want: { PP: 60_000, AA: 40_000 } },
    { name: 'origination comes off the top', options: fixedFee({}, { originationEnabled: true, originatorTimekeeperId: 'OO', originationBasisPoints: 1_000 }),
      req: { adHoc: [adHocFee('AA', 20_000)] }, want: { PP: 90_000, AA: 18_000, OO: 12_000 } },
  ];
  for (const c of cases) {
    const b = composeBill(MATTER, c.options, FIRM, c.items ?? [], { ...REQ, ...c.req });
    const got = Object.fromEntries(b.feeAllocation.map((a) => [a.timekeeperId, a.amountMinor]));
    assert.deepEqual(got, c.want, c.name);
    assert.equal(sumMinor(b.feeAllocation.map((a) => a.amountMinor)), b.netFeesMinor, `${c.name}: the allocation sums to the net fees`);
  }
});

eachDialect('audit composer: a fixed-fee instalment billed with an associate\'s ad hoc fee is credited to the responsible lawyer (draft, approved)', async (db) => {
  const s = await setup(db);
  const { partner, associate, matter } = await firm(s.cmds);
  await s.cmds.setBillingOptions(ctx, matter.id, { set: twoInstalments() });
  await s.drain();
  const bill = await s.billing.createDraft(ctx, {
    matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28',
    request: { adHoc: [{ kind: 'fee', description: 'Urgent opinion', amountMinor: 5_000, taxCode: null, timekeeperId: associate.id }] },
  });
  const allocation = (b: typeof bill) => Object.fromEntries(b.allocations.map((a) => [a.timekeeperId, a.amountMinor]));
  assert.deepEqual(bill.scheduleRowIds, ['r1']);
  assert.deepEqual(allocation(bill), { [partner.id]: 40_000, [associate.id]: 5_000 });
  const approved = await s.billing.approve(ctx, bill.billId);
  assert.deepEqual(allocation(approved), { [partner.id]: 40_000, [associate.id]: 5_000 });
  await s.drain();
  await assertBillInvariants(db.db, s.billing, [matter.id]);
});
