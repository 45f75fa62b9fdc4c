/**
 * Rules of domain/lifecycle.ts, table-driven: a numbered bill's date order (seed 003) and what a
 * bill's composition basis holds (a change to it makes a draft out of date; a change to what
 * only the outputs read does not).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compositionBasis, sequenceDateRefusal, verdict } from '../../src/modules/billing/domain/lifecycle.ts';
import type { BillFacts } from '../../src/modules/billing/domain/lifecycle.ts';
import { defaultFirmSettings } from '../../src/modules/matters/domain.ts';
import type { FirmBillingSettings, MatterBillingOptions } from '../../src/modules/matters/events.ts';

test('sequenceDateRefusal: a numbered draft keeps its number\'s place in date order', () => {
  const before = { number: '12.8.1', invoiceDate: '2026-02-10' };
  const after = { number: '12.8.3', invoiceDate: '2026-02-20' };
  const rows: [string, string, { before: typeof before | null; after: typeof after | null }, RegExp | null][] = [
    ['between its neighbours', '2026-02-15', { before, after }, null],
    ['on the earlier bill\'s date', '2026-02-10', { before, after }, null],
    ['on the later bill\'s date', '2026-02-20', { before, after }, null],
    ['a day before the earlier bill', '2026-02-09', { before, after }, /^must not be before 2026-02-10, the date of bill 12\.8\.1 \(numbered before this one\)/],
    ['a day after the later bill', '2026-02-21', { before, after }, /^must not be after 2026-02-20, the date of bill 12\.8\.3 \(numbered after this one\)/],
    ['the first bill: nothing before it', '2000-01-01', { before: null, after }, null],
    ['the latest bill: nothing after it', '2030-12-31', { before, after: null }, null],
    ['alone on its matter', '2026-02-15', { before: null, after: null }, null],
  ];
  for (const [name, date, n, want] of rows) {
    const got = sequenceDateRefusal(date, n);
    if (want === null) assert.equal(got, null, name);
    else assert.match(got ?? '', want, name);
  }
});

const facts = (over: Partial<BillFacts>): BillFacts => ({
  status: 'draft', number: null, sequence: null, onHold: false, lineCount: 3, totalMinor: 10_000, openConflicts: 0, matterRefusals: [],
  otherDraft: null, latestLiveSequence: null, receiptsMinor: 0, receiptsToReallocateMinor: 0, receiptsAwaitingPostingMinor: 0,
  periodRefusal: null, undoPeriodRefusal: null, composedUnderOtherOptions: false, sequenceDateRefusal: null, ...over,
});

test('approve refuses a draft composed under other options, and a numbered draft out of date order, each with its reason', () => {
  assert.deepEqual(verdict('approve', facts({})), { allowed: true, reason: null });
  assert.match(verdict('approve', facts({ composedUnderOtherOptions: true })).reason ?? '', /changed after this draft was composed: open it in the composer and save it/);
  assert.match(verdict('approve', facts({ sequence: 2, number: '1.1.2', sequenceDateRefusal: 'must not be after 2026-02-20, the date of bill 1.1.3 (numbered after this one): bill numbers follow their dates' })).reason ?? '',
    /^Its invoice date must not be after 2026-02-20.*: change the date in the composer$/);
  // Held is said first: releasing the hold comes before anything else.
  assert.match(verdict('approve', facts({ onHold: true, composedUnderOtherOptions: true })).reason ?? '', /on hold/);
});

test('compositionBasis: what feeds the bill changes it; what only the outputs read, and invoice numbers billing writes back, do not', () => {
  const firm = defaultFirmSettings();
  const base = firm.matterDefaults;
  const basis = (o: Partial<MatterBillingOptions>, f: Partial<FirmBillingSettings> = {}) => compositionBasis({ ...base, ...o }, { ...firm, ...f });
  const same: [string, Partial<MatterBillingOptions>, Partial<FirmBillingSettings>][] = [
    ['send-to addresses', { sendTo: ['ap@northwind.example'], useClientAddress: !base.useClientAddress }, {}],
    ['copies to print and the templates', { copiesToPrint: 2, billTemplate: 'total-only', emailTemplate: 'reminder' }, {}],
    ['e-billing codes', { ebilling: { ...base.ebilling, enabled: !base.ebilling.enabled, matterLedesId: 'M-1' } }, {}],
    ['the mass billing exclusion', { massBilling: { ...base.massBilling, exclude: !base.massBilling.exclude } }, {}],
    ['a schedule row billed (its invoice number)', { fixedFee: { mode: 'custom_schedule', schedule: [{ rowId: 'r1', amountMinor: 100_00, description: 'Stage 1', billOn: '2026-02-01', invoiceNumber: '1.1.1' } as never] } }, {}],
    ['the firm\'s period policy and WIP cap policy', {}, { postingOutsideCurrentPeriod: 'refuse', wipCapPolicy: 'refuse' }],
  ];
  for (const [name, o, f] of same) {
    const withRow = name.startsWith('a schedule row') ? basis({ fixedFee: { mode: 'custom_schedule', schedule: [{ rowId: 'r1', amountMinor: 100_00, description: 'Stage 1', billOn: '2026-02-01', invoiceNumber: null } as never] } }) : basis({});
    assert.equal(basis(o, f), withRow, name);
  }
  const changed: [string, Partial<MatterBillingOptions>, Partial<FirmBillingSettings>][] = [
    ['a percentage discount', { discount: { kind: 'percentage', percentBasisPoints: 1_000, amountMinor: 0 } }, {}],
    ['hourly to fixed fee', { arrangement: base.arrangement === 'fixed_fee' ? 'hourly' : 'fixed_fee' } as Partial<MatterBillingOptions>, {}],
    ['hidden line pricing', { feeReductions: { ...base.feeReductions, hideLinePricing: !base.feeReductions.hideLinePricing } }, {}],
    ['a quote', { quote: { ...base.quote, amountMinor: 5_000_00 } }, {}],
    ['retainer replenishment', { retainerReplenishment: { enabled: true, minimumBalanceMinor: 5_000_00, triggerMinor: 3_000_00 } }, {}],
    ['bill expenses only', { massBilling: { ...base.massBilling, onlyExpenses: !base.massBilling.onlyExpenses } }, {}],
    ['the firm\'s tax rounding', {}, { taxRounding: firm.taxRounding === 'per_line' ? 'per_bill' : 'per_line' }],
    ['the firm\'s payment terms', {}, { paymentTermsDays: firm.paymentTermsDays + 7 }],
    ['the firm\'s interest policy', {}, { interest: { ...firm.interest, enabled: !firm.interest.enabled } }],
  ];
  for (const [name, o, f] of changed) assert.notEqual(basis(o, f), basis({}), name);
});
