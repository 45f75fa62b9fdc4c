/**
 * Mass billing's selection rules (domain/mass.ts), table-driven from issue 5 and seeds
 * 001/004, plus properties: an eligible matter has no reason against it; hand-picking waives
 * the exclusion and nothing else; the cap filter is monotonic in the WIP.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { billingExplanation, fixedFeeDue, cycleFeeDue, foldName, isEligible, itemFiltersText, massReasons, matterFiltersText, parseListedDraft, passesCap } from '../../src/modules/billing/domain/mass.ts';
import type { MassFacts } from '../../src/modules/billing/domain/mass.ts';
import { listingStamp } from '../../src/modules/billing/drafts-routes.ts';
import { nothingToBill } from '../../src/cli/bill-run.ts';
import { foreignDefaultsRefusal, invoiceDateRangeError } from '../../src/modules/billing/domain/lifecycle.ts';
import { addDays } from '../../src/modules/billing/domain/rules.ts';
import { defaultMatterOptions } from '../../src/modules/matters/domain.ts';
import type { MatterBillingOptions } from '../../src/modules/matters/events.ts';

const opts = (o: Partial<{ billingEnabled: boolean; billingStatus: 'active' | 'closed' | 'use_matter_status'; exclude: boolean; onlyExpenses: boolean }> = {}) => ({
  billingEnabled: o.billingEnabled ?? true, billingStatus: o.billingStatus ?? 'active',
  massBilling: { exclude: o.exclude ?? false, onlyExpenses: o.onlyExpenses ?? false },
}) as MassFacts['options'];

const base: MassFacts = {
  matterStatus: 'open', options: opts(), hasClient: true, hasBillableParty: true, unbilledFeeItems: 3, unbilledDisbursementItems: 1, fixedFeeDue: false, draft: null,
};

test('eligibility: issue 5\'s rules, one at a time', () => {
  const cases: { name: string; facts: Partial<MassFacts>; handPicked?: boolean; codes: string[] }[] = [
    { name: 'a matter with unbilled work is eligible', facts: {}, codes: [] },
    { name: 'billing has not received its options', facts: { options: null }, codes: ['no_options'] },
    { name: 'no client copy', facts: { hasClient: false }, codes: ['no_client'] },
    { name: 'no billable party', facts: { hasBillableParty: false }, codes: ['no_billable_party'] },
    { name: 'billing turned off (not billable)', facts: { options: opts({ billingEnabled: false }) }, codes: ['billing_off'] },
    { name: 'closed for billing (not active)', facts: { options: opts({ billingStatus: 'closed' }) }, codes: ['not_active'] },
    { name: 'billing follows the matter status: closed matter', facts: { matterStatus: 'closed', options: opts({ billingStatus: 'use_matter_status' }) }, codes: ['not_active'] },
    { name: 'billing follows the matter status: open matter', facts: { options: opts({ billingStatus: 'use_matter_status' }) }, codes: [] },
    { name: 'an active-for-billing matter that is closed is still billable', facts: { matterStatus: 'closed', options: opts({ billingStatus: 'active' }) }, codes: [] },
    { name: 'nothing unbilled, no fixed fee due', facts: { unbilledFeeItems: 0, unbilledDisbursementItems: 0 }, codes: ['nothing_to_bill'] },
    { name: 'only disbursements unbilled', facts: { unbilledFeeItems: 0 }, codes: [] },
    { name: 'nothing unbilled but a fixed-fee row is due', facts: { unbilledFeeItems: 0, unbilledDisbursementItems: 0, fixedFeeDue: true }, codes: [] },
    // Fixed fee: time waits for an instalment; fixed charges and disbursements still bill.
    { name: 'fixed fee, no instalment due, only time unbilled', facts: { options: { ...opts()!, arrangement: 'fixed_fee' }, unbilledFeeItems: 3, unbilledTimeItems: 3, unbilledDisbursementItems: 0 }, codes: ['nothing_to_bill'] },
    { name: 'fixed fee, no instalment due, a fixed charge unbilled', facts: { options: { ...opts()!, arrangement: 'fixed_fee' }, unbilledFeeItems: 3, unbilledTimeItems: 2, unbilledDisbursementItems: 0 }, codes: [] },
    { name: 'fixed fee, no instalment due, a disbursement unbilled', facts: { options: { ...opts()!, arrangement: 'fixed_fee' }, unbilledFeeItems: 3, unbilledTimeItems: 3 }, codes: [] },
    { name: 'fixed fee with an instalment due bills its time too', facts: { options: { ...opts()!, arrangement: 'fixed_fee' }, unbilledFeeItems: 3, unbilledTimeItems: 3, unbilledDisbursementItems: 0, fixedFeeDue: true }, codes: [] },
    { name: 'hourly: time alone is billable', facts: { options: { ...opts()!, arrangement: 'hourly' }, unbilledFeeItems: 3, unbilledTimeItems: 3, unbilledDisbursementItems: 0 }, codes: [] },
    { name: 'a bill in draft already', facts: { draft: '12.8.3' }, codes: ['has_draft'] },
    { name: 'excluded from mass billing', facts: { options: opts({ exclude: true }) }, codes: ['excluded'] },
    { name: 'excluded but hand-picked', facts: { options: opts({ exclude: true }) }, handPicked: true, codes: [] },
    { name: 'hand-picking waives only the exclusion', facts: { options: opts({ exclude: true }), draft: 'unnumbered' }, handPicked: true, codes: ['has_draft'] },
    { name: 'expenses only with disbursements', facts: { options: opts({ onlyExpenses: true }) }, codes: [] },
    { name: 'expenses only with fees but no disbursements', facts: { options: opts({ onlyExpenses: true }), unbilledDisbursementItems: 0 }, codes: ['expenses_only_no_disbursements'] },
    { name: 'every reason at once', facts: { hasClient: false, hasBillableParty: false, options: opts({ billingEnabled: false, exclude: true }), unbilledFeeItems: 0, unbilledDisbursementItems: 0 }, codes: ['no_client', 'no_billable_party', 'billing_off', 'nothing_to_bill', 'excluded'] },
    { name: 'a draft holding all the work: the draft is the reason, not "nothing to bill"', facts: { unbilledFeeItems: 0, unbilledDisbursementItems: 0, draft: '12.8.3' }, codes: ['has_draft'] },
    { name: 'queued in a run still drafting', facts: { queuedRun: 'run-1234' }, codes: ['queued'] },
    { name: 'queued and hand-picked: still queued', facts: { queuedRun: 'run-1234' }, handPicked: true, codes: ['queued'] },
    { name: 'queued, and its run drafted it already: the draft is the reason', facts: { queuedRun: 'run-1234', draft: 'unnumbered' }, codes: ['has_draft'] },
    { name: 'no run queues it', facts: { queuedRun: null }, codes: [] },
  ];
  for (const c of cases) {
    const reasons = massReasons({ ...base, ...c.facts }, { handPicked: c.handPicked });
    assert.deepEqual(reasons.map((r) => r.code), c.codes, c.name);
    assert.equal(isEligible({ ...base, ...c.facts }, { handPicked: c.handPicked }), c.codes.length === 0, c.name);
    for (const r of reasons) assert.ok(r.text.length > 10, `${c.name}: a reason in words`);
  }
});

test('bill-run counts, not lists, the matters with nothing to bill, unless a draft or another run holds their work', () => {
  const cases: { name: string; facts: Partial<MassFacts>; counted: boolean }[] = [
    { name: 'nothing unbilled', facts: { unbilledFeeItems: 0, unbilledDisbursementItems: 0 }, counted: true },
    { name: 'closed, and nothing unbilled', facts: { options: opts({ billingStatus: 'closed' }), unbilledFeeItems: 0, unbilledDisbursementItems: 0 }, counted: true },
    { name: 'billing off and excluded, nothing unbilled', facts: { options: opts({ billingEnabled: false, exclude: true }), unbilledFeeItems: 0, unbilledDisbursementItems: 0 }, counted: true },
    { name: 'expenses only with no unbilled disbursement', facts: { options: opts({ onlyExpenses: true }), unbilledDisbursementItems: 0 }, counted: true },
    { name: 'expenses only, its disbursements on its draft: listed (the draft)', facts: { options: opts({ onlyExpenses: true }), unbilledDisbursementItems: 0, draft: '4.2.1' }, counted: false },
    { name: 'expenses only with nothing unbilled, queued in another run: listed', facts: { options: opts({ onlyExpenses: true }), unbilledDisbursementItems: 0, queuedRun: 'run-1234' }, counted: false },
    { name: 'a draft holding all the work', facts: { unbilledFeeItems: 0, unbilledDisbursementItems: 0, draft: '12.8.3' }, counted: false },
    { name: 'closed with work to bill', facts: { options: opts({ billingStatus: 'closed' }) }, counted: false },
    { name: 'excluded with work to bill', facts: { options: opts({ exclude: true }) }, counted: false },
    { name: 'no billable party, work to bill', facts: { hasBillableParty: false }, counted: false },
  ];
  for (const c of cases) assert.equal(nothingToBill({ reasons: massReasons({ ...base, ...c.facts }) }), c.counted, c.name);
});

test('a run\'s matter filters in words, for its confirmation and its page', () => {
  const names = { client: (id: string) => `7 ${id} Ltd`, matter: (id: string) => `3.1 ${id}`, timekeeper: (id: string) => `MH ${id}`, amount: (m: number, c?: string) => `${c ?? 'USD'} ${(m / 100).toFixed(2)}` };
  const cases: { f: Parameters<typeof matterFiltersText>[0]; want: string | null }[] = [
    { f: {}, want: null },
    { f: { clientId: 'Acme' }, want: 'Only the matters of client 7 Acme Ltd.' },
    { f: { matterId: 'Lease' }, want: 'Only matter 3.1 Lease.' },
    { f: { matterId: 'Lease', billingCycle: 'QUARTER' }, want: 'Only matter 3.1 Lease, if it is one billed quarterly.' },
    { f: { clientId: 'Acme', billingTimekeeperId: 'Holloway', billingCycle: 'MONTH' }, want: 'Only the matters of client 7 Acme Ltd, with billing timekeeper MH Holloway, billed monthly.' },
    { f: { responsibleTimekeeperId: 'X', nextBillingFrom: '2026-03-01', nextBillingTo: '2026-03-31' }, want: 'Only the matters with responsible timekeeper MH X, next billed 2026-03-01 to 2026-03-31.' },
    { f: { nextBillingTo: '2026-03-31' }, want: 'Only the matters next billed on or before 2026-03-31.' },
    { f: { cap: { kind: 'matter' } }, want: 'Only the matters with unbilled WIP at or over their own cap.' },
    { f: { cap: { kind: 'amount', amountMinor: 50_000 }, expensesOnly: true }, want: 'Only the matters with unbilled WIP of at least USD 500.00, set to bill expenses only.' },
    { f: { cap: { kind: 'none' } }, want: null },
  ];
  for (const c of cases) assert.equal(matterFiltersText(c.f, names), c.want, JSON.stringify(c.f));
});

test('client names as typed names are compared with them: case and accents aside, letters of their own kept', () => {
  const cases: [string, string][] = [
    ['Müller GmbH', 'muller gmbh'],
    ['MÜLLER', 'muller'],
    ['Émile Zola SARL', 'emile zola sarl'],
    ['İstanbul Ticaret', 'istanbul ticaret'],
    ['Zoë & Cie', 'zoe & cie'],
    ['Ørsted A/S', 'orsted a/s'],
    ['Æbeltoft', 'aebeltoft'],
    ['Straße', 'strasse'],
    ['Łódź', 'lodz'],
    // A mark that is part of the letter is kept: these are other names.
    ['कमल', 'कमल'],
    ['कोमल', 'कोमल'],
    ['Ｆｕｌｌｗｉｄｔｈ', 'fullwidth'],
    ['ﬁnance', 'finance'],
    ['Acme 100% Ltd', 'acme 100% ltd'],
    ['', ''],
  ];
  for (const [name, folded] of cases) assert.equal(foldName(name), folded, name);
  assert.notEqual(foldName('ガス'), foldName('カス'), 'a Japanese voiced mark is part of its letter');
  assert.notEqual(foldName('Йогурт'), foldName('Иогурт'), 'Cyrillic й is a letter of its own');
  assert.equal(foldName('ЙОГУРТ'), foldName('йогурт'));
  assert.equal(foldName('Ελλάδα'), 'ελλαδα', 'Greek accents go as Latin ones do');
  fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (name) => {
    // Folding twice is folding once (a name folded on the way in, and the text typed, meet); no capital is left, nor any Latin or Greek accent.
    const folded = foldName(name);
    assert.equal(foldName(folded), folded);
    assert.equal(folded.toLowerCase(), folded);
    assert.doesNotMatch(folded, /[\p{Script=Latin}\p{Script=Greek}][\u0300-\u036f]/u);
  }));
});

test('seed 004\'s WIP cap: "Default From Matters" or "Or Specify" an amount, at or over', () => {
  const cases: { name: string; filter: Parameters<typeof passesCap>[0]; wip: number; cap: number | null; want: boolean; currency?: string }[] = [
    { name: 'no cap filter keeps everything', filter: { kind: 'none' }, wip: 0, cap: null, want: true },
    { name: 'seed: cap $500.00 reached', filter: { kind: 'matter' }, wip: 50_000, cap: 50_000, want: true },
    { name: 'over the cap', filter: { kind: 'matter' }, wip: 50_001, cap: 50_000, want: true },
    { name: 'under the cap', filter: { kind: 'matter' }, wip: 49_999, cap: 50_000, want: false },
    { name: 'a matter without a cap is left out', filter: { kind: 'matter' }, wip: 10_000_000, cap: null, want: false },
    { name: 'specified amount reached', filter: { kind: 'amount', amountMinor: 50_000 }, wip: 50_000, cap: null, want: true },
    { name: 'specified amount ignores the matter cap', filter: { kind: 'amount', amountMinor: 50_000 }, wip: 40_000, cap: 10_000, want: false },
    { name: 'an amount in the matter\'s currency', filter: { kind: 'amount', amountMinor: 50_000, currency: 'USD' }, wip: 50_000, cap: null, want: true },
    // $500.00 typed (50,000 cents) is not 50,000 yen: a matter billed in yen is not measured against dollars.
    { name: 'an amount in another currency leaves the matter out', filter: { kind: 'amount', amountMinor: 50_000, currency: 'USD' }, wip: 9_000_000, cap: null, want: false, currency: 'JPY' },
    { name: 'the matter\'s own cap is in its own currency', filter: { kind: 'matter' }, wip: 60_000, cap: 50_000, want: true, currency: 'JPY' },
  ];
  for (const c of cases) assert.equal(passesCap(c.filter, c.wip, c.cap, c.currency ?? 'USD'), c.want, c.name);
});

test('fixed fee due on the invoice date', () => {
  const row = (rowId: string, billOn: string, invoiceNumber: string | null = null) => ({ rowId, billOn, invoiceNumber });
  const custom = (rows: ReturnType<typeof row>[]) => ({ arrangement: 'fixed_fee', fixedFee: { mode: 'custom_schedule' as const, schedule: rows } });
  const cases: { name: string; o: Parameters<typeof fixedFeeDue>[0]; date: string; next: string | null; cycle?: string; taken?: string[]; want: boolean }[] = [
    { name: 'hourly matters have no fixed fee', o: { arrangement: 'hourly', fixedFee: { mode: 'every_cycle', schedule: [] } }, date: '2026-03-31', next: null, want: false },
    { name: 'every cycle, next billing date reached', o: { arrangement: 'fixed_fee', fixedFee: { mode: 'every_cycle', schedule: [] } }, date: '2026-03-31', next: '2026-03-31', want: true },
    { name: 'every cycle, next billing date later', o: { arrangement: 'fixed_fee', fixedFee: { mode: 'every_cycle', schedule: [] } }, date: '2026-03-31', next: '2026-04-30', want: false },
    { name: 'every cycle, no next billing date', o: { arrangement: 'fixed_fee', fixedFee: { mode: 'every_cycle', schedule: [] } }, date: '2026-03-31', next: null, want: true },
    { name: 'every cycle with no billing cycle: never due on its own (it rides on bills made for work)', o: { arrangement: 'fixed_fee', fixedFee: { mode: 'every_cycle', schedule: [] } }, date: '2026-03-31', next: null, cycle: 'none', want: false },
    { name: 'every cycle with no billing cycle, even with a date reached', o: { arrangement: 'fixed_fee', fixedFee: { mode: 'every_cycle', schedule: [] } }, date: '2026-03-31', next: '2026-03-01', cycle: 'none', want: false },
    { name: 'a schedule row dated on the invoice date', o: custom([row('a', '2026-03-31')]), date: '2026-03-31', next: null, want: true },
    { name: 'a schedule row dated later', o: custom([row('a', '2026-04-01')]), date: '2026-03-31', next: null, want: false },
    { name: 'a row billed already (invoice number)', o: custom([row('a', '2026-01-31', '1.1.1')]), date: '2026-03-31', next: null, want: false },
    { name: 'a row on another live bill', o: custom([row('a', '2026-01-31')]), date: '2026-03-31', next: null, taken: ['a'], want: false },
    { name: 'one of several rows still due', o: custom([row('a', '2026-01-31', '1.1.1'), row('b', '2026-02-28')]), date: '2026-03-31', next: null, want: true },
  ];
  for (const c of cases) assert.equal(fixedFeeDue(c.o, c.date, c.cycle ?? 'MONTH', c.next, new Set(c.taken ?? [])), c.want, c.name);
});

test('the every-cycle fixed fee rides on the bill of the cycle: every bill with no cycle; the first with no date; none earlier in the cycle', () => {
  const cases: [cycle: string, next: string | null, invoiceDate: string, want: boolean][] = [
    ['none', null, '2026-03-31', true], ['none', '2026-05-01', '2026-03-31', true],
    ['MONTH', null, '2026-03-31', true], ['MONTH', '2026-03-31', '2026-03-31', true], ['MONTH', '2026-03-01', '2026-03-31', true],
    ['MONTH', '2026-04-30', '2026-03-31', false], ['QUARTER', '2026-04-01', '2026-03-31', false],
  ];
  for (const [cycle, next, date, want] of cases) assert.equal(cycleFeeDue(cycle, next, date), want, `${cycle} ${next} ${date}`);
});

test('why a row bills what it bills (seed 001: quote rules applied without prompting)', () => {
  const q = { comparedWipMinor: 100, position: 'below' as const, choice: 'bill_quote' as const, targetMinor: 500, reason: 'Work in progress is below the quote: bill the quoted amount' };
  assert.equal(billingExplanation({ onlyExpenses: false, quote: q, scheduleRows: 0, fixedFeeEveryCycle: false, totalMinor: 500, wipMinor: 100 }), q.reason);
  assert.equal(billingExplanation({ onlyExpenses: false, quote: null, scheduleRows: 2, fixedFeeEveryCycle: false, totalMinor: 500, wipMinor: 0 }), '2 fixed-fee instalments due');
  assert.equal(billingExplanation({ onlyExpenses: true, quote: null, scheduleRows: 0, fixedFeeEveryCycle: false, totalMinor: 80, wipMinor: 80 }), 'Expenses only: fees stay unbilled');
  assert.equal(billingExplanation({ onlyExpenses: false, quote: null, scheduleRows: 0, fixedFeeEveryCycle: false, totalMinor: 100, wipMinor: 100 }), 'Work in progress as recorded');
  assert.match(billingExplanation({ onlyExpenses: false, quote: null, scheduleRows: 0, fixedFeeEveryCycle: true, totalMinor: 100, wipMinor: 0 }), /Fixed fee for the cycle/);
  assert.equal(billingExplanation({ onlyExpenses: false, quote: null, scheduleRows: 0, fixedFeeEveryCycle: false, totalMinor: 89_986, wipMinor: 605_136, timeWaits: true }),
    'No fixed-fee instalment due: the recorded time waits for the next one; fixed charges and disbursements billed');
});

test('properties: eligible means no reason; hand-picking waives only the exclusion; the cap is monotonic', () => {
  const facts = fc.record({
    matterStatus: fc.constantFrom('open' as const, 'closed' as const),
    options: fc.option(fc.record({
      billingEnabled: fc.boolean(), billingStatus: fc.constantFrom('active' as const, 'closed' as const, 'use_matter_status' as const),
      massBilling: fc.record({ exclude: fc.boolean(), onlyExpenses: fc.boolean() }),
    }), { nil: null }),
    hasClient: fc.boolean(), hasBillableParty: fc.boolean(), unbilledFeeItems: fc.nat(5), unbilledDisbursementItems: fc.nat(5), fixedFeeDue: fc.boolean(),
    draft: fc.option(fc.constant('1.1.1'), { nil: null }),
  }) as fc.Arbitrary<MassFacts>;
  fc.assert(fc.property(facts, (f) => {
    const plain = massReasons(f).map((r) => r.code);
    const picked = massReasons(f, { handPicked: true }).map((r) => r.code);
    assert.deepEqual(picked, plain.filter((c) => c !== 'excluded'));
    assert.equal(isEligible(f), plain.length === 0);
    if (f.draft !== null && f.options) assert.ok(plain.includes('has_draft'));
  }));
  fc.assert(fc.property(fc.nat(10_000_000), fc.nat(10_000_000), fc.option(fc.nat(10_000_000), { nil: null }), fc.nat(10_000_000), (a, b, cap, amount) => {
    const [lo, hi] = a <= b ? [a, b] : [b, a];
    for (const filter of [{ kind: 'matter' as const }, { kind: 'amount' as const, amountMinor: amount }]) {
      if (passesCap(filter, lo, cap, 'USD')) assert.ok(passesCap(filter, hi, cap, 'USD'), 'more WIP never leaves the cap filter');
    }
  }));
});

test('the drafts list\'s stamp: the same drafts and versions in any order are one stamp; a draft added, removed or changed is another', () => {
  const a = { id: '0192a7b0-0000-7000-8000-000000000001', version: 1 };
  const b = { id: '0192a7b0-0000-7000-8000-000000000002', version: 3 };
  const c = { id: '0192a7b0-0000-7000-8000-000000000003', version: 1 };
  const stamp = listingStamp([a, b]);
  assert.equal(listingStamp([b, a]), stamp);
  const others = [listingStamp([a]), listingStamp([a, b, c]), listingStamp([a, { ...b, version: 4 }]), listingStamp([a, c]), listingStamp([])];
  assert.equal(new Set([stamp, ...others]).size, others.length + 1);
  fc.assert(fc.property(fc.uniqueArray(fc.record({ id: fc.uuid(), version: fc.nat(1000) }), { selector: (d) => d.id, maxLength: 20 }), (drafts) => {
    assert.equal(listingStamp([...drafts].reverse()), listingStamp(drafts));
  }));
});

test('a ticked draft as the list posts it: an id, or id@version; anything else is not one', () => {
  const id = '0192A7B0-0000-7000-8000-000000000001';
  const table: [string, { id: string; version: number | null } | null][] = [
    [id, { id: id.toLowerCase(), version: null }],
    [`${id}@7`, { id: id.toLowerCase(), version: 7 }],
    [`${id}@`, null], [`${id}@x`, null], [`${id}@-1`, null], ['not-an-id@1', null], ['', null], [`${id}@1234567890`, null],
  ];
  for (const [value, expected] of table) assert.deepEqual(parseListedDraft(value), expected, value);
});

test('amounts a matter in another currency takes from the firm\'s defaults are refused, naming each; its own, or any in the firm\'s currency, are not', () => {
  const base = defaultMatterOptions();
  const amounts: MatterBillingOptions = {
    ...base, quote: { ...base.quote, amountMinor: 100_000 }, discount: { kind: 'fixed', percentBasisPoints: 0, amountMinor: 5_000 },
    retainerReplenishment: { enabled: true, minimumBalanceMinor: 50_000, triggerMinor: 20_000 },
  };
  const all = () => true;
  const table: [name: string, o: MatterBillingOptions, inherited: (s: string) => boolean, currency: string, expected: RegExp | null][] = [
    ['the firm\'s currency: nothing to convert', amounts, all, 'USD', null],
    ['no amounts in the defaults', base, all, 'JPY', null],
    ['a percentage discount is no amount', { ...base, discount: { kind: 'percentage', percentBasisPoints: 1_000, amountMinor: 0 } }, all, 'JPY', null],
    ['each inherited amount named', amounts, all, 'JPY', /^The matter bills in JPY, but its quoted amount, fixed discount and retainer replenishment amounts come from the firm's defaults, in USD: set them/],
    ['the sections it sets itself are its own', amounts, (s) => s !== 'quote' && s !== 'retainerReplenishment', 'EUR', /^The matter bills in EUR, but its fixed discount comes from the firm's defaults, in USD: set it on the matter's own billing options, in EUR$/],
    ['every amount section its own', amounts, () => false, 'JPY', null],
  ];
  for (const [name, o, inherited, currency, expected] of table) {
    const r = foreignDefaultsRefusal(o, inherited as (s: keyof MatterBillingOptions) => boolean, currency, 'USD');
    if (expected === null) assert.equal(r, null, name); else assert.match(r ?? '', expected, name);
  }
});

test('an invoice date is at most 366 days after today and at most 10 years before it: a mistyped year is refused', () => {
  const cases: [string, string, RegExp | null][] = [
    ['2026-12-04', '2026-12-04', null],
    ['2027-12-05', '2026-12-04', null],
    ['2027-12-06', '2026-12-04', /on or before 2027-12-05/],
    ['3026-12-04', '2026-12-04', /on or before 2027-12-05 \(at most 366 days after today\)/],
    ['9999-12-31', '2026-12-04', /on or before 2027-12-05/],
    ['2016-12-04', '2026-12-04', null],
    ['2016-12-03', '2026-12-04', /on or after 2016-12-04 \(at most 10 years before today\)/],
    ['1026-12-04', '2026-12-04', /on or after 2016-12-04/],
    // Today a leap day: ten years before is the 28th (there is no 29 February then).
    ['2018-02-28', '2028-02-29', null],
    ['2018-02-27', '2028-02-29', /on or after 2018-02-28/],
  ];
  for (const [date, today, want] of cases) {
    const got = invoiceDateRangeError(date, today);
    if (want === null) assert.equal(got, null, `${date} on ${today}`);
    else assert.match(got ?? '', want, `${date} on ${today}`);
  }
  // Every date from today to 366 days on is taken; the next is not.
  fc.assert(fc.property(fc.integer({ min: 0, max: 4_000 }), fc.integer({ min: -4_000, max: 400 }), (todayOffset, ahead) => {
    const today = addDays('2020-01-01', todayOffset);
    const date = addDays(today, ahead);
    const err = invoiceDateRangeError(date, today);
    if (ahead > 366) return err !== null && err.startsWith('must be on or before');
    if (ahead >= 0) return err === null;
    return err === null || (err.startsWith('must be on or after') && ahead < -3_640);
  }));
});

test('itemFiltersText: the time and disbursement filters in words, or null', () => {
  const tk = (id: string) => (id === 'tk1' ? 'MH Margaret Holloway' : id);
  const tail = "; the matters' other unbilled work waits for a later bill.";
  const cases: [Parameters<typeof itemFiltersText>[0], string | null][] = [
    [{}, null],
    [{ time: {}, disbursements: {} }, null],
    [{ time: { from: '2026-01-01', to: '2026-01-31' } }, `Each bill takes only time dated 2026-01-01 to 2026-01-31${tail}`],
    [{ time: { to: '2026-01-31', timekeeperId: 'tk1' } }, `Each bill takes only time dated up to 2026-01-31 of MH Margaret Holloway${tail}`],
    [{ time: { timekeeperId: 'gone' } }, `Each bill takes only time of gone${tail}`],
    [{ disbursements: { code: 'COPY' } }, `Each bill takes only disbursements with code COPY${tail}`],
    [{ time: { from: '2026-01-01' }, disbursements: { from: '2026-02-01', code: 'COURT' } }, `Each bill takes only time dated from 2026-01-01, and only disbursements dated from 2026-02-01 with code COURT${tail}`],
  ];
  for (const [f, want] of cases) assert.equal(itemFiltersText(f, tk), want, JSON.stringify(f));
});
