import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AssertionError } from '../../src/shared/assert.ts';
import {
  addDays, addMonths, isEmail, advanceBillingDate, nextBillingDateAfter, onDay, capStatus, disbursementAmountMinor, fileNumber, isIsoDate, parseFileNumber, resolveRate, roundMinutes,
  standardRateOn, timeAmountMinor, validateClient, validateDisbursement, validateMatter, validateTimekeeper, validateTimeEntry,
} from '../../src/modules/matters/domain.ts';
import type { BillingCycle, MinuteRounding, RateInputs, ResolvedRate } from '../../src/modules/matters/domain.ts';

const STANDARD = [
  { effectiveFrom: '2026-01-01', rateMinor: 32_000 },
  { effectiveFrom: '2025-01-01', rateMinor: 30_000 },
  { effectiveFrom: '2025-07-01', rateMinor: 31_000 },
];

test('resolveRate: override with a reason, then matter, then client, then the standard rate on the work date', () => {
  const base: RateInputs = { workDate: '2026-03-02', matterRateMinor: null, clientRateMinor: null, standardRates: STANDARD };
  const cases: { name: string; input: Partial<RateInputs>; want: ResolvedRate | null }[] = [
    { name: 'standard rate in effect', input: {}, want: { rateMinor: 32_000, source: 'timekeeper' } },
    { name: 'the day a new rate starts', input: { workDate: '2026-01-01' }, want: { rateMinor: 32_000, source: 'timekeeper' } },
    { name: 'the day before it starts', input: { workDate: '2025-12-31' }, want: { rateMinor: 31_000, source: 'timekeeper' } },
    { name: 'rates given out of order', input: { workDate: '2025-06-30' }, want: { rateMinor: 30_000, source: 'timekeeper' } },
    { name: 'before any standard rate', input: { workDate: '2024-12-31' }, want: null },
    { name: 'no standard rates at all', input: { standardRates: [] }, want: null },
    { name: 'client rate beats standard', input: { clientRateMinor: 28_000 }, want: { rateMinor: 28_000, source: 'client' } },
    { name: 'client rate even before any standard rate', input: { clientRateMinor: 28_000, workDate: '2020-01-01' }, want: { rateMinor: 28_000, source: 'client' } },
    { name: 'matter rate beats client', input: { clientRateMinor: 28_000, matterRateMinor: 25_000 }, want: { rateMinor: 25_000, source: 'matter' } },
    { name: 'a zero matter rate is a rate', input: { clientRateMinor: 28_000, matterRateMinor: 0 }, want: { rateMinor: 0, source: 'matter' } },
    {
      name: 'override with a reason beats everything',
      input: { matterRateMinor: 25_000, override: { rateMinor: 10_000, reason: 'Travel time' } },
      want: { rateMinor: 10_000, source: 'override' },
    },
    {
      name: 'override with a blank reason is ignored',
      input: { matterRateMinor: 25_000, override: { rateMinor: 10_000, reason: '   ' } },
      want: { rateMinor: 25_000, source: 'matter' },
    },
    { name: 'null override', input: { override: null }, want: { rateMinor: 32_000, source: 'timekeeper' } },
  ];
  for (const c of cases) assert.deepEqual(resolveRate({ ...base, ...c.input }), c.want, c.name);
  assert.equal(standardRateOn(STANDARD, '2025-07-01')?.rateMinor, 31_000);
});

test('roundMinutes: up, nearest (half up) and down to the billing unit', () => {
  const cases: [raw: number, unit: number, mode: MinuteRounding, want: number][] = [
    [0, 6, 'up', 0], [1, 6, 'up', 6], [6, 6, 'up', 6], [7, 6, 'up', 12], [12, 6, 'up', 12], [13, 6, 'up', 18], [239, 6, 'up', 240],
    [2, 6, 'nearest', 0], [3, 6, 'nearest', 6], [8, 6, 'nearest', 6], [9, 6, 'nearest', 12], [12, 6, 'nearest', 12],
    [1, 6, 'down', 0], [11, 6, 'down', 6], [12, 6, 'down', 12],
    [7, 15, 'nearest', 0], [8, 15, 'nearest', 15], [22, 15, 'nearest', 15], [23, 15, 'nearest', 30],
    [61, 60, 'up', 120], [59, 1, 'up', 59], [1, 10, 'up', 10], [5, 10, 'nearest', 10], [4, 10, 'nearest', 0],
  ];
  for (const [raw, unit, mode, want] of cases) assert.equal(roundMinutes(raw, unit, mode), want, `${raw} min, ${unit}-minute units, ${mode}`);
  assert.throws(() => roundMinutes(-1, 6, 'up'), AssertionError);
  assert.throws(() => roundMinutes(1.5, 6, 'up'), AssertionError);
  assert.throws(() => roundMinutes(5, 0, 'up'), AssertionError);
});

test('timeAmountMinor: rate x minutes / 60, rounded half up once', () => {
  const cases: [minutes: number, rate: number, want: number][] = [
    [6, 30_000, 3_000], [60, 32_500, 32_500], [42, 52_500, 36_750], [0, 50_000, 0],
    [1, 100, 2], // 1.666...
    [1, 90, 2], // 1.5 exactly: half up
    [1, 30, 1], // 0.5
    [1, 29, 0], // 0.483...
    [7, 12_345, 1_440], // 1440.25
    [18, 28_333, 8_500], // 8499.9
    [1_440, 100_000_000, 2_400_000_000],
  ];
  for (const [minutes, rate, want] of cases) assert.equal(timeAmountMinor(minutes, rate), want, `${minutes} min at ${rate}`);
  assert.throws(() => timeAmountMinor(-6, 100), AssertionError);
  assert.throws(() => timeAmountMinor(6, -100), AssertionError);
});

test('disbursementAmountMinor: quantity in thousandths x unit cost, half up', () => {
  const cases: [qty: number, unit: number, want: number][] = [
    [1_000, 4_500, 4_500], [120_000, 15, 1_800], [12_500, 67, 838], [1_500, 333, 500], [1, 1, 0], [500, 1, 1], [2_000, 0, 0],
  ];
  for (const [qty, unit, want] of cases) assert.equal(disbursementAmountMinor(qty, unit), want, `${qty}/1000 x ${unit}`);
  assert.throws(() => disbursementAmountMinor(0, 100), AssertionError);
});

test('fileNumber is client.matter and parses back', () => {
  const cases: [client: number, matter: number, want: string][] = [[12, 8, '12.8'], [1, 1, '1.1'], [100, 10, '100.10'], [7, 123, '7.123']];
  for (const [c, m, want] of cases) {
    assert.equal(fileNumber(c, m), want);
    assert.deepEqual(parseFileNumber(want), { clientNumber: c, matterNumber: m });
  }
  for (const bad of ['12', '12.08', '0.1', '1.0', '12.8.1', 'a.b', '']) assert.equal(parseFileNumber(bad), null, bad);
  assert.throws(() => fileNumber(0, 1), AssertionError);
  assert.throws(() => fileNumber(1, 0), AssertionError);
  assert.throws(() => fileNumber(1.5, 1), AssertionError);
});

test('capStatus: under, at or over the WIP cap, with the distance', () => {
  const cases: [wip: number, cap: number | null, want: ReturnType<typeof capStatus>][] = [
    [123_456, null, { state: 'none', distanceMinor: null, mustBill: false }],
    [0, 500_000, { state: 'under', distanceMinor: 500_000, mustBill: false }],
    [499_999, 500_000, { state: 'under', distanceMinor: 1, mustBill: false }],
    [500_000, 500_000, { state: 'at', distanceMinor: 0, mustBill: true }],
    [500_001, 500_000, { state: 'over', distanceMinor: -1, mustBill: true }],
    [1_250_000, 500_000, { state: 'over', distanceMinor: -750_000, mustBill: true }],
  ];
  for (const [wip, cap, want] of cases) assert.deepEqual(capStatus(wip, cap), want, `${wip} against ${cap}`);
});

test('advanceBillingDate moves one cycle, clamping to month ends', () => {
  const cases: [date: string, cycle: BillingCycle, want: string | null][] = [
    ['2026-01-31', 'MONTH', '2026-02-28'], ['2024-01-31', 'MONTH', '2024-02-29'], ['2026-12-15', 'MONTH', '2027-01-15'],
    ['2026-11-30', 'QUARTER', '2027-02-28'], ['2026-08-31', 'HALF', '2027-02-28'], ['2024-02-29', 'YEAR', '2025-02-28'],
    ['2026-12-29', 'WEEK', '2027-01-05'], ['2026-05-05', 'none', null],
  ];
  for (const [date, cycle, want] of cases) assert.equal(advanceBillingDate(date, cycle), want, `${date} + ${cycle}`);
});

test('nextBillingDateAfter: past the bill\'s date by whole cycles from the current date; unchanged when already past it', () => {
  const cases: [current: string | null, cycle: BillingCycle, billedOn: string, want: string | null][] = [
    ['2026-03-01', 'QUARTER', '2026-03-01', '2026-06-01'], // billed on the day: the next quarter
    ['2026-03-01', 'QUARTER', '2026-03-05', '2026-06-01'],
    ['2026-03-01', 'QUARTER', '2026-09-15', '2026-12-01'], // several cycles late: the first date after the bill
    ['2026-03-01', 'QUARTER', '2026-02-20', '2026-03-01'], // billed early: the date stands
    ['2026-01-31', 'MONTH', '2026-02-28', '2026-03-31'], // counted from the 31st: month ends kept (not 2026-03-28)
    ['2026-01-31', 'MONTH', '2026-01-31', '2026-02-28'],
    ['2026-12-29', 'WEEK', '2027-01-12', '2027-01-19'],
    ['2024-02-29', 'YEAR', '2024-03-01', '2025-02-28'],
    [null, 'MONTH', '2026-03-05', '2026-04-05'], // no date yet: one cycle after the bill (so a bill run does not bill it again)
    [null, 'none', '2026-03-05', null], ['2026-03-01', 'none', '2026-03-05', '2026-03-01'],
    // A year typed 1026 for 2026: a thousand years of cycles, computed (it was refused past 5,300 cycles, holding up every later event).
    ['1026-03-02', 'WEEK', '2026-12-04', '2026-12-10'],
    ['1026-03-31', 'MONTH', '2026-12-04', '2026-12-31'],
  ];
  for (const [current, cycle, billedOn, want] of cases) {
    const next = nextBillingDateAfter(current, cycle, billedOn);
    assert.equal(next, want, `${current} ${cycle} billed ${billedOn}`);
    assert.equal(nextBillingDateAfter(next, cycle, billedOn), next, 'the same bill again moves nothing');
  }
});

test('nextBillingDateAfter is the first cycle date after the bill, as counting cycle by cycle finds it, however far apart the dates', () => {
  const byCounting = (current: string, months: number, billedOn: string, anchor: number | null): string => {
    for (let k = 1; ; k++) {
      const d = months === 0 ? addDays(current, 7 * k) : onDay(addMonths(current, months * k), anchor);
      if (d > billedOn) return d;
    }
  };
  const day = fc.integer({ min: 0, max: 365 * 1200 }).map((n) => addDays('0900-01-01', n));
  fc.assert(fc.property(day, fc.integer({ min: 0, max: 365 * 3 }), fc.constantFrom<BillingCycle>('WEEK', 'MONTH', 'QUARTER', 'HALF', 'YEAR'), fc.option(fc.integer({ min: 1, max: 31 })), (current, laterDays, cycle, anchor) => {
    const billedOn = addDays(current, laterDays);
    const months = { WEEK: 0, MONTH: 1, QUARTER: 3, HALF: 6, YEAR: 12 }[cycle as Exclude<BillingCycle, 'none'>];
    assert.equal(nextBillingDateAfter(current, cycle, billedOn, anchor), byCounting(current, months, billedOn, anchor));
  }), { numRuns: 2_000 });
  // Centuries apart (a mistyped year), each cycle.
  for (const cycle of ['WEEK', 'MONTH', 'QUARTER', 'HALF', 'YEAR'] as const) {
    const months = { WEEK: 0, MONTH: 1, QUARTER: 3, HALF: 6, YEAR: 12 }[cycle];
    assert.equal(nextBillingDateAfter('1026-01-31', cycle, '2026-12-04', 31), byCounting('1026-01-31', months, '2026-12-04', 31), cycle);
  }
});

test('nextBillingDateAfter keeps the day a person set (anchorDay): bill after bill, a month end stays a month end and the 30th stays the 30th', () => {
  // [anchor day, cycle, the dates set by successive bills, each billed on its own next billing date]
  const chains: [anchor: number | null, cycle: BillingCycle, dates: string[]][] = [
    [31, 'MONTH', ['2026-01-31', '2026-02-28', '2026-03-31', '2026-04-30', '2026-05-31']],
    [30, 'MONTH', ['2026-01-30', '2026-02-28', '2026-03-30', '2026-04-30', '2026-05-30']],
    [29, 'YEAR', ['2024-02-29', '2025-02-28', '2026-02-28', '2027-02-28', '2028-02-29']],
    [31, 'QUARTER', ['2026-08-31', '2026-11-30', '2027-02-28', '2027-05-31', '2027-08-31']],
    [15, 'MONTH', ['2026-01-15', '2026-02-15', '2026-03-15']],
    // No anchor (a matter from before anchors): counted from the stored date, as before.
    [null, 'MONTH', ['2026-01-31', '2026-02-28', '2026-03-28']],
    [31, 'WEEK', ['2026-01-31', '2026-02-07', '2026-02-14']],
  ];
  for (const [anchor, cycle, dates] of chains) {
    for (let i = 0; i + 1 < dates.length; i++) {
      assert.equal(nextBillingDateAfter(dates[i]!, cycle, dates[i]!, anchor), dates[i + 1], `${cycle} anchored on ${anchor}: after ${dates[i]}`);
    }
  }
  // Several cycles late, anchored: the first anchored date after the bill.
  assert.equal(nextBillingDateAfter('2026-01-31', 'MONTH', '2026-04-02', 31), '2026-04-30');
  // No date yet: one cycle after the bill, whatever the anchor.
  assert.equal(nextBillingDateAfter(null, 'MONTH', '2026-03-05', 31), '2026-04-05');
});

test('validation names each bad field', () => {
  assert.equal(isIsoDate('2026-02-29'), false);
  assert.equal(isIsoDate('2028-02-29'), true);
  const cases: [name: string, errors: Record<string, string>, fields: string[]][] = [
    ['good timekeeper', validateTimekeeper({ initials: 'MH', name: 'Margaret', classification: 'partner' }), []],
    ['bad timekeeper', validateTimekeeper({ initials: 'm h', name: ' ', classification: 'senior', ledesClassification: 'PARTNR' }), ['initials', 'name', 'classification', 'ledesClassification']],
    ['good client', validateClient({ name: 'Acme', email: 'ap@acme.example' }), []],
    ['bad client', validateClient({ name: '', email: 'not-an-email' }), ['name', 'email']],
    ['good matter', validateMatter({ name: 'A v. B', billingCycle: 'MONTH', wipCapMinor: 500_000, currency: 'USD' }), []],
    ['bad matter', validateMatter({ name: 'x', billingCycle: 'monthly', wipCapMinor: 0, currency: 'usd', timeUnitMinutes: 0, roundingMode: 'ceil', openedOn: '2026-13-01' }),
      ['billingCycle', 'wipCapMinor', 'currency', 'timeUnitMinutes', 'roundingMode', 'openedOn']],
    ['next billing date without a cycle', validateMatter({ name: 'x', nextBillingDate: '2026-01-01' }), ['nextBillingDate']],
    ['good time entry', validateTimeEntry({ workDate: '2026-03-02', rawMinutes: 7, narrative: 'Draft complaint', taskCode: 'L210', activityCode: 'A103' }), []],
    ['bad time entry', validateTimeEntry({ workDate: '2026-3-2', rawMinutes: 0, narrative: ' ', taskCode: 'L100', activityCode: 'E101', behaviour: 'show' }),
      ['workDate', 'rawMinutes', 'narrative', 'taskCode', 'activityCode', 'behaviour']],
    ['override needs a reason', validateTimeEntry({ workDate: '2026-03-02', rawMinutes: 6, narrative: 'x', override: { rateMinor: 100, reason: '' } }), ['override.reason']],
    ['too long an entry', validateTimeEntry({ workDate: '2026-03-02', rawMinutes: 1441, narrative: 'x' }), ['rawMinutes']],
    ['partial time entry', validateTimeEntry({ narrative: 'new words' }, { partial: true }), []],
    ['good disbursement', validateDisbursement({ incurredOn: '2026-03-02', code: 'COURT', expenseCode: 'E112', unitCostMinor: 40_500, description: 'Filing fee' }), []],
    ['bad disbursement', validateDisbursement({ incurredOn: 'yesterday', code: 'court fee', expenseCode: 'L110', quantityMilli: 0, unitCostMinor: -1, description: '' }),
      ['incurredOn', 'code', 'expenseCode', 'quantityMilli', 'unitCostMinor', 'description']],
  ];
  for (const [name, errors, fields] of cases) assert.deepEqual(Object.keys(errors).sort(), [...fields].sort(), `${name}: ${JSON.stringify(errors)}`);
});

test('an email address is one plain address: what a mail library would read as other addresses, a group, a comment or another header is refused where it is typed', () => {
  const good = ['ap@acme.example', 'first.last+bills@sub.acme.example', 'ü@bücher.example'];
  const bad = [
    'a,evil@x.example', 'accounts:evil@x.example;', 'x(comment)evil@x.example', '"quoted"@x.example', 'a@x.example\r\nBcc: evil@y.example',
    'Name <a@x.example>', 'a@[127.0.0.1]', 'back\\slash@x.example', 'a;b@x.example', 'no-at.example', 'a@nodot', `${'a'.repeat(250)}@x.example`,
  ];
  for (const email of good) assert.deepEqual(Object.keys(validateClient({ name: 'Acme', email })), [], email);
  for (const email of bad) assert.deepEqual(Object.keys(validateClient({ name: 'Acme', email })), ['email'], JSON.stringify(email));
  assert.deepEqual(validateClient({ name: 'Acme', email: 'a,evil@x.example' }), { email: 'must be an email address' });
  // The same rule for a matter's send-to addresses (the bill's email goes to them).
  for (const email of bad) assert.equal(isEmail(email), false, JSON.stringify(email));
  for (const email of good) assert.equal(isEmail(email), true, email);
});
