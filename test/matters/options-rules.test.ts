/**
 * The pure billing-option rules (seed 002): auto-fill, validation with field paths,
 * inheritance, billed-instalment protection, warnings, the billing-off reason, firm
 * settings, the UTBMS reference and e-billing code rules, the WIP-cap sentence.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { AssertionError } from '../../src/shared/assert.ts';
import {
  autoFillSchedule, billingOffRefusal, scheduleItemCounts, withScheduleItems, capExcess, changedSections, defaultFirmSettings, defaultMatterOptions, ebillingCodeErrors,
  effectiveOptions, indexUtbms, nthBillingDate, optionWarnings, overriddenAndInherited, parseUtbmsCsv, patchFirmSettings, patchSection,
  scheduleChangeErrors, splitEmailList, UTBMS_ACTIVITIES, UTBMS_EXPENSES, UTBMS_PHASES, UTBMS_TASKS, validateAutoFill,
  validateBillingOptions, validateFirmSettings,
} from '../../src/modules/matters/domain.ts';
import type { BillingCycle, OptionsContext } from '../../src/modules/matters/domain.ts';
import type { FixedFeeRow, MatterBillingOptions } from '../../src/modules/matters/events.ts';

const CSV = readFileSync(new URL('../../reference/utbms.csv', import.meta.url), 'utf8');
const UTBMS = indexUtbms(parseUtbmsCsv(CSV));

const TK = new Set(['tk-1', 'tk-2']);
const CTX: OptionsContext = { timekeeperExists: (id) => TK.has(id), codeSets: ['litigation'], generalRetainersEnabled: true, scope: 'matter' };

const row = (over: Partial<FixedFeeRow> = {}): FixedFeeRow => ({
  rowId: 'r1', amountMinor: 10_000, description: 'Instalment', billOn: '2026-01-31', billOnStep: null, payOnStep: null, invoiceNumber: null, ...over,
});

test('auto-fill: seed 002 examples exactly (quote 1,000.00; first 100.00 and 90.00)', () => {
  const opts = { startDate: '2026-01-31', cycle: 'MONTH' as BillingCycle };
  const ten = autoFillSchedule(100_000, 10_000, opts);
  assert.equal(ten.length, 10);
  assert.deepEqual(ten.map((r) => r.amountMinor), Array.from({ length: 10 }, () => 10_000));

  const twelve = autoFillSchedule(100_000, 9_000, opts);
  assert.equal(twelve.length, 12, '11 rows of 90.00 and one of 10.00');
  assert.deepEqual(twelve.map((r) => r.amountMinor), [...Array.from({ length: 11 }, () => 9_000), 1_000]);
  assert.equal(twelve.reduce((a, r) => a + r.amountMinor, 0), 100_000);
  assert.deepEqual(twelve.slice(0, 4).map((r) => r.billOn), ['2026-01-31', '2026-02-28', '2026-03-31', '2026-04-30'], 'month ends do not drift');
  assert.deepEqual(twelve.map((r) => r.invoiceNumber), Array.from({ length: 12 }, () => null));
  assert.equal(twelve[0]!.description, 'Instalment 1 of 12');
  assert.equal(new Set(twelve.map((r) => r.rowId)).size, 12);

  const cases: [quote: number, first: number, cycle: BillingCycle, amounts: number[], dates: string[]][] = [
    [100_000, 100_000, 'MONTH', [100_000], ['2026-01-31']],
    [100_000, 30_000, 'QUARTER', [30_000, 30_000, 30_000, 10_000], ['2026-01-31', '2026-04-30', '2026-07-31', '2026-10-31']],
    [1_000, 999, 'WEEK', [999, 1], ['2026-01-31', '2026-02-07']],
    [50_000, 25_000, 'none', [25_000, 25_000], ['2026-01-31', '2026-02-28']],
    [60_000, 20_000, 'HALF', [20_000, 20_000, 20_000], ['2026-01-31', '2026-07-31', '2027-01-31']],
    [20_000, 10_000, 'YEAR', [10_000, 10_000], ['2026-01-31', '2027-01-31']],
  ];
  for (const [quote, first, cycle, amounts, dates] of cases) {
    const rows = autoFillSchedule(quote, first, { startDate: '2026-01-31', cycle, newRowId: (i) => `id-${i}`, description: 'Fixed fee' });
    assert.deepEqual(rows.map((r) => r.amountMinor), amounts, `${quote}/${first}`);
    assert.deepEqual(rows.map((r) => r.billOn), dates, `${quote}/${first} ${cycle}`);
    assert.deepEqual(rows.map((r) => r.rowId), amounts.map((_, i) => `id-${i}`));
    assert.ok(rows.every((r) => r.description === 'Fixed fee'));
  }
  assert.throws(() => autoFillSchedule(100_000, 0, opts), AssertionError);
  assert.throws(() => autoFillSchedule(100_000, 100_001, opts), AssertionError);
  assert.equal(nthBillingDate('2026-02-28', 'MONTH', 1), '2026-03-28');
});

test('auto-fill input is checked with field names', () => {
  const cases: [quote: number | null, first: unknown, fields: string[]][] = [
    [100_000, 10_000, []],
    [null, 10_000, ['quote.amountMinor']],
    [0, 10_000, ['quote.amountMinor']],
    [100_000, 0, ['firstAmountMinor']],
    [100_000, -5, ['firstAmountMinor']],
    [100_000, 12.5, ['firstAmountMinor']],
    [100_000, 100_001, ['firstAmountMinor']],
    [100_000, 100, ['firstAmountMinor']], // 1,000 rows
  ];
  for (const [quote, first, fields] of cases) assert.deepEqual(Object.keys(validateAutoFill(quote, first)).sort(), fields, `${quote}/${String(first)}`);
});

test('billing options: the defaults are valid and each bad value is named by its field path', () => {
  assert.deepEqual(validateBillingOptions(defaultMatterOptions(), CTX), {});
  const d = defaultMatterOptions();
  type Case = [name: string, change: (o: MatterBillingOptions) => void, fields: string[], ctx?: Partial<OptionsContext>];
  const cases: Case[] = [
    ['emails each checked', (o) => { o.sendTo = ['ap@client.example', 'not an email', 'x@y']; }, ['sendTo.1', 'sendTo.2']],
    ['too many emails', (o) => { o.sendTo = Array.from({ length: 21 }, (_, i) => `a${i}@x.example`); }, ['sendTo']],
    ['copies 0, 1 or 2', (o) => { (o as { copiesToPrint: number }).copiesToPrint = 3; }, ['copiesToPrint']],
    ['billing flag a boolean', (o) => { (o as { billingEnabled: unknown }).billingEnabled = 'yes'; }, ['billingEnabled']],
    ['enum values', (o) => { (o as { billingStatus: string }).billingStatus = 'open'; (o.trust as { toPay: string }).toPay = 'everything'; }, ['billingStatus', 'trust.toPay']],
    ['templates required', (o) => { o.billTemplate = ' '; }, ['billTemplate']],
    ['percent in 0..10000 basis points', (o) => { o.discount = { kind: 'percentage', percentBasisPoints: 10_001, amountMinor: 0 }; }, ['discount.percentBasisPoints']],
    ['a percentage discount needs a percentage', (o) => { o.discount = { kind: 'percentage', percentBasisPoints: 0, amountMinor: 0 }; }, ['discount.percentBasisPoints']],
    ['a fixed discount needs an amount', (o) => { o.discount = { kind: 'fixed', percentBasisPoints: 0, amountMinor: 0 }; }, ['discount.amountMinor']],
    ['amounts are non-negative integers', (o) => { o.quote.amountMinor = -1; o.retainerReplenishment.triggerMinor = 1.5; }, ['quote.amountMinor', 'retainerReplenishment.triggerMinor']],
    ['selected timekeeper required', (o) => { o.feeAllocation.allocateFees = 'selected'; }, ['feeAllocation.feesTimekeeperId']],
    ['selected timekeeper must exist', (o) => { o.feeAllocation.allocateAdjustments = 'selected'; o.feeAllocation.adjustmentsTimekeeperId = 'nobody'; }, ['feeAllocation.adjustmentsTimekeeperId']],
    ['selected timekeeper that exists', (o) => { o.feeAllocation.allocateFees = 'selected'; o.feeAllocation.feesTimekeeperId = 'tk-2'; }, []],
    ['originator required when origination is on', (o) => { o.feeAllocation.originationEnabled = true; o.feeAllocation.originationBasisPoints = 1_000; }, ['feeAllocation.originatorTimekeeperId']],
    ['origination needs a share', (o) => { o.feeAllocation.originationEnabled = true; o.feeAllocation.originatorTimekeeperId = 'tk-1'; }, ['feeAllocation.originationBasisPoints']],
    ['schedule rows: amount > 0 and a date', (o) => { o.fixedFee.schedule = [row({ amountMinor: 0, billOn: '2026-02-30' }), row({ rowId: 'r1' })]; },
      ['fixedFee.schedule.0.amountMinor', 'fixedFee.schedule.0.billOn', 'fixedFee.schedule.1.rowId']],
    ['fixed fee every cycle needs a quote', (o) => { o.arrangement = 'fixed_fee'; }, ['quote.amountMinor']],
    ['fixed fee custom schedule may go without a quote', (o) => { o.arrangement = 'fixed_fee'; o.fixedFee = { mode: 'custom_schedule', schedule: [row()] }; }, []],
    ['replenishment: trigger not over the minimum', (o) => {
      o.generalRetainer.enabled = true;
      o.retainerReplenishment = { enabled: true, minimumBalanceMinor: 300_000, triggerMinor: 500_000 };
    }, ['retainerReplenishment.triggerMinor']],
    ['replenishment needs the general retainer', (o) => { o.retainerReplenishment = { enabled: true, minimumBalanceMinor: 500_000, triggerMinor: 300_000 }; }, ['retainerReplenishment.enabled']],
    ['general retainer needs the firm switch', (o) => { o.generalRetainer.enabled = true; }, ['generalRetainer.enabled'], { generalRetainersEnabled: false }],
    ['e-billing needs its ids', (o) => { o.ebilling = { ...o.ebilling, enabled: true, codeSet: '' }; }, ['ebilling.codeSet', 'ebilling.clientLedesId', 'ebilling.matterLedesId']],
    ['LEDES ids at most 20 characters, no delimiters', (o) => {
      o.ebilling = { enabled: true, codeSet: 'litigation', format: 'LEDES1998B', clientLedesId: 'X'.repeat(21), matterLedesId: 'A|B' };
    }, ['ebilling.clientLedesId', 'ebilling.matterLedesId']],
    ['an unknown code set or format', (o) => { o.ebilling = { ...o.ebilling, codeSet: 'bankruptcy', format: 'LEDES2000' as never }; }, ['ebilling.codeSet', 'ebilling.format']],
    ['e-billing complete', (o) => { o.ebilling = { enabled: true, codeSet: 'litigation', format: 'LEDES1998BI', clientLedesId: 'ACME-001', matterLedesId: 'LF-12.8' }; }, []],
    ['a missing section', (o) => { delete (o as Partial<MatterBillingOptions>).massBilling; }, ['massBilling']],
    ['an unknown section', (o) => { (o as unknown as Record<string, unknown>).colour = 'blue'; }, ['colour']],
  ];
  for (const [name, change, fields, ctx] of cases) {
    const o = structuredClone(d);
    change(o);
    const errors = validateBillingOptions(o, { ...CTX, ...ctx });
    assert.deepEqual(Object.keys(errors).sort(), [...fields].sort(), `${name}: ${JSON.stringify(errors)}`);
  }
  const firm = validateBillingOptions({ ...d, fixedFee: { mode: 'custom_schedule', schedule: [row()] } }, { ...CTX, scope: 'firm' });
  assert.deepEqual(Object.keys(firm), ['fixedFee.schedule'], 'a custom schedule belongs to a matter');
  assert.match(validateBillingOptions({ ...d, sendTo: ['nope'] }, CTX)['sendTo.0']!, /"nope" is not an email address/);
  assert.deepEqual(splitEmailList(' a@x.example, b@y.example ,, '), ['a@x.example', 'b@y.example']);
});

test('inheritance: effective = firm defaults with the overridden sections laid over them', () => {
  const firm = defaultMatterOptions();
  const overrides: Partial<MatterBillingOptions> = { discount: { kind: 'percentage', percentBasisPoints: 1_000, amountMinor: 0 }, copiesToPrint: 2 };
  const eff = effectiveOptions(firm, overrides);
  assert.equal(eff.copiesToPrint, 2);
  assert.deepEqual(eff.discount, overrides.discount);
  assert.deepEqual(eff.quote, firm.quote);
  eff.quote.amountMinor = 5;
  assert.equal(firm.quote.amountMinor, null, 'the result is a copy');
  const split = overriddenAndInherited(overrides);
  assert.deepEqual(split.overridden, ['copiesToPrint', 'discount']);
  assert.equal(split.inherited.length, 18);

  // A patch of an object section keeps the keys it does not name; unknown keys are dropped.
  assert.deepEqual(patchSection('discount', firm.discount, { kind: 'fixed', amountMinor: 2_500, bogus: 1 }), { kind: 'fixed', percentBasisPoints: 0, amountMinor: 2_500 });
  assert.deepEqual(patchSection('sendTo', [], [' a@x.example ', '']), ['a@x.example']);
  const rows = patchSection('fixedFee', firm.fixedFee, { schedule: [{ rowId: 'x', amountMinor: 5, billOn: '2026-01-01' }] }) as MatterBillingOptions['fixedFee'];
  assert.deepEqual(rows, { mode: 'every_cycle', schedule: [{ rowId: 'x', amountMinor: 5, description: '', billOn: '2026-01-01', billOnStep: null, payOnStep: null, invoiceNumber: null }] });

  const next = patchFirmSettings(defaultFirmSettings(), {
    paymentTermsDays: 14, interest: { enabled: true, extra: 1 } as never, matterDefaults: { copiesToPrint: 2, quote: { includes: 'costs' } },
  });
  assert.equal(next.paymentTermsDays, 14);
  assert.deepEqual(next.interest, { enabled: true, annualRateBasisPoints: 1_000, graceDays: 30 });
  assert.deepEqual(changedSections(defaultMatterOptions(), next.matterDefaults), ['copiesToPrint', 'quote']);
  assert.equal(next.matterDefaults.quote.ifWipAbove, 'wip_only');
});

test('billed schedule instalments can be neither changed nor deleted, and only billing sets invoice numbers', () => {
  const billed = row({ rowId: 'b', invoiceNumber: '12.8.1' });
  const open = row({ rowId: 'o', billOn: '2026-02-28' });
  const cases: [name: string, after: FixedFeeRow[], fields: string[]][] = [
    ['unchanged', [billed, open], []],
    ['open row changed and a new row', [billed, { ...open, amountMinor: 1 }, row({ rowId: 'n' })], []],
    ['billed row deleted', [open], ['fixedFee.schedule']],
    ['billed row changed', [open, { ...billed, amountMinor: 20_000 }], ['fixedFee.schedule.1']],
    ['billed row re-dated', [{ ...billed, billOn: '2026-03-01' }], ['fixedFee.schedule.0']],
    ['an invoice number typed in', [billed, { ...open, invoiceNumber: '12.8.2' }], ['fixedFee.schedule.1.invoiceNumber']],
  ];
  for (const [name, after, fields] of cases) {
    assert.deepEqual(Object.keys(scheduleChangeErrors([billed, open], after, 'USD')).sort(), fields.sort(), name);
  }
  assert.match(scheduleChangeErrors([billed, open], [open], 'USD')['fixedFee.schedule']!, /\$100\.00 billed on 12\.8\.1/);
});

test('warnings: a custom schedule that differs from the quote is reported, not refused', () => {
  const o = defaultMatterOptions();
  o.arrangement = 'fixed_fee';
  o.quote.amountMinor = 100_000;
  o.fixedFee = { mode: 'custom_schedule', schedule: [row({ amountMinor: 90_000 })] };
  assert.deepEqual(optionWarnings(o, 'USD'), ['The custom schedule totals $900.00, $100.00 less than the quote of $1,000.00.']);
  o.fixedFee.schedule = [row({ amountMinor: 60_000 }), row({ rowId: 'r2', amountMinor: 60_000 })];
  assert.match(optionWarnings(o, 'USD')[0]!, /\$1,200\.00, \$200\.00 more than/);
  o.fixedFee.schedule = autoFillSchedule(100_000, 9_000, { startDate: '2026-01-01', cycle: 'MONTH' });
  assert.deepEqual(optionWarnings(o, 'USD'), []);
  o.fixedFee.schedule = [];
  assert.deepEqual(optionWarnings(o, 'USD'), ['The fixed-fee custom schedule has no instalments yet.']);
  assert.deepEqual(optionWarnings(defaultMatterOptions(), 'USD'), []);
});

test('billing off: refused with the seed reason and the counts while items remain', () => {
  const cases: [billable: number, billed: number, want: string | null][] = [
    [0, 0, null],
    [3, 0, 'You can not turn this off while there are any billable or billed items remaining (3 billable items not yet billed)'],
    [1, 2, 'You can not turn this off while there are any billable or billed items remaining (1 billable item not yet billed and 2 billed items)'],
    [0, 1, 'You can not turn this off while there are any billable or billed items remaining (1 billed item)'],
  ];
  for (const [billable, billed, want] of cases) assert.equal(billingOffRefusal({ billable, billed }), want);
});

test('billing off: a custom schedule\'s instalments count, unbilled ones only while the schedule bills', () => {
  const row = (invoiceNumber: string | null) => ({ rowId: 'r', amountMinor: 100, description: 'i', billOn: '2026-01-01', billOnStep: null, payOnStep: null, invoiceNumber });
  const base = defaultMatterOptions();
  const cases: [arrangement: 'hourly' | 'fixed_fee', mode: 'every_cycle' | 'custom_schedule', numbers: (string | null)[], want: { billable: number; billed: number }][] = [
    ['fixed_fee', 'custom_schedule', [], { billable: 0, billed: 0 }],
    ['fixed_fee', 'custom_schedule', [null, null, '1.1.1'], { billable: 2, billed: 1 }],
    ['fixed_fee', 'every_cycle', [null, '1.1.1'], { billable: 0, billed: 1 }],
    ['hourly', 'custom_schedule', [null, '1.1.1', '1.1.2'], { billable: 0, billed: 2 }],
  ];
  for (const [arrangement, mode, numbers, want] of cases) {
    const o = { ...base, arrangement, fixedFee: { ...base.fixedFee, mode, schedule: numbers.map(row) } };
    assert.deepEqual(scheduleItemCounts(o), want, JSON.stringify([arrangement, mode, numbers]));
    assert.deepEqual(withScheduleItems({ billable: 3, billed: 4 }, o), { billable: 3 + want.billable, billed: 4 + want.billed });
  }
});

test('firm settings: defaults are valid; bad values are named, matter defaults under matterDefaults.', () => {
  const c = { timekeeperExists: (id: string) => TK.has(id), codeSets: ['litigation'] };
  assert.deepEqual(validateFirmSettings(defaultFirmSettings(), c), {});
  const s = defaultFirmSettings();
  assert.deepEqual([s.currency, s.timeUnitMinutes, s.timeRounding, s.paymentTermsDays, s.wipCapPolicy], ['USD', 6, 'up', 30, 'warn']);
  assert.deepEqual(s.taxRates.map((r) => r.code), ['EXEMPT', 'SALES']);
  const bad = {
    ...s, currency: 'usd', paymentTermsDays: -1, timeUnitMinutes: 0, wipCapPolicy: 'block', defaultFeeTaxCode: 'VAT',
    taxRates: [{ code: 'EXEMPT', name: 'Exempt', basisPoints: 0 }, { code: 'EXEMPT', name: 'Again', basisPoints: 20_000 }],
    interest: { enabled: true, annualRateBasisPoints: 1_000, graceDays: 400 }, extra: 1,
    matterDefaults: { ...s.matterDefaults, discount: { kind: 'percentage', percentBasisPoints: 12_000, amountMinor: 0 } },
  };
  assert.deepEqual(Object.keys(validateFirmSettings(bad, c)).sort(), [
    'currency', 'defaultFeeTaxCode', 'extra', 'interest.graceDays', 'matterDefaults.discount.percentBasisPoints', 'paymentTermsDays',
    'taxRates.1.basisPoints', 'taxRates.1.code', 'timeUnitMinutes', 'wipCapPolicy',
  ]);
  const retainer = { ...s, matterDefaults: { ...s.matterDefaults, generalRetainer: { enabled: true, toPay: 'new_charges', automation: 'manual' } } };
  assert.deepEqual(Object.keys(validateFirmSettings(retainer, c)), ['matterDefaults.generalRetainer.enabled']);
  assert.deepEqual(validateFirmSettings({ ...retainer, generalRetainersEnabled: true }, c), {});
});

test('UTBMS reference: reference/utbms.csv parses to the code tables the domain knows', () => {
  const codes = parseUtbmsCsv(CSV);
  const of = (kind: string) => Object.fromEntries(codes.filter((c) => c.kind === kind).map((c) => [c.code, c.name]));
  assert.deepEqual(of('phase'), UTBMS_PHASES);
  assert.deepEqual(of('task'), UTBMS_TASKS);
  assert.deepEqual(of('activity'), UTBMS_ACTIVITIES);
  assert.deepEqual(of('expense'), UTBMS_EXPENSES);
  assert.equal(codes.find((c) => c.code === 'L110')?.parent, 'L100');
  assert.equal(codes.find((c) => c.code === 'L100')?.name, 'Case Assessment, Development and Administration', 'quoted field with commas');
  assert.deepEqual([...UTBMS.taskSets.keys()], ['litigation']);
  assert.deepEqual(parseUtbmsCsv('code_set,kind,code,parent,name\r\nx,task,X100,,"A ""quoted"" name"\r\n'),
    [{ codeSet: 'x', kind: 'task', code: 'X100', parent: null, name: 'A "quoted" name' }]);
  for (const bad of ['', 'a,b\n', 'code_set,kind,code,parent,name\nx,thing,X100,,N', 'code_set,kind,code,parent,name\nx,task,X100,,"open', 'code_set,kind,code,parent,name\nx,task,X1,,N']) {
    assert.throws(() => parseUtbmsCsv(bad), AssertionError, JSON.stringify(bad));
  }
});

test('e-billing code rules: required on an e-billed matter, and from its code set', () => {
  const on = { enabled: true, codeSet: 'litigation', format: 'LEDES1998B' as const, clientLedesId: 'C1', matterLedesId: 'M1' };
  const off = { ...on, enabled: false };
  const cases: [name: string, item: Parameters<typeof ebillingCodeErrors>[0], eb: typeof on, fields: string[]][] = [
    ['off: nothing required', { kind: 'time', taskCode: null, activityCode: null }, off, []],
    ['time without codes', { kind: 'time', taskCode: null, activityCode: undefined }, on, ['taskCode', 'activityCode']],
    ['time with codes', { kind: 'time', taskCode: 'L210', activityCode: 'A103' }, on, []],
    ['a phase is not a task', { kind: 'time', taskCode: 'L200', activityCode: 'A103' }, on, ['taskCode']],
    ['an expense code is not an activity', { kind: 'fixed_charge', taskCode: 'L120', activityCode: 'E101' }, on, ['activityCode']],
    ['disbursement without expense code', { kind: 'disbursement', expenseCode: null }, on, ['expenseCode']],
    ['disbursement with an expense code', { kind: 'disbursement', expenseCode: 'E112' }, on, []],
    ['a code outside the set', { kind: 'time', taskCode: 'L210', activityCode: 'A103' }, { ...on, codeSet: 'bankruptcy' }, ['taskCode']],
  ];
  for (const [name, item, eb, fields] of cases) assert.deepEqual(Object.keys(ebillingCodeErrors(item, eb, UTBMS, '12.8')).sort(), fields.sort(), name);
  assert.equal(ebillingCodeErrors({ kind: 'time', taskCode: null, activityCode: 'A101' }, on, UTBMS, '12.8').taskCode,
    'is required: matter 12.8 is e-billed (LEDES1998B, litigation codes)');
});

test('WIP cap sentence: only past the cap', () => {
  assert.equal(capExcess(500_000, 500_000, 'USD'), null, 'at the cap is not over it');
  assert.equal(capExcess(1, null, 'USD'), null);
  assert.equal(capExcess(525_000, 500_000, 'USD'), 'would take WIP to $5,250.00, over the cap of $5,000.00');
});
