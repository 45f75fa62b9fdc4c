/**
 * The LEDES writer and reader as pure functions: the format's arithmetic to the cent for
 * every kind of bill line, multi-invoice files, taxes, every refusal, the validator's
 * violations by line and field, and a property test that any bill exported reads back to
 * the same totals.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { BillLineData } from '../../src/modules/billing/events.ts';
import { buildInvoice, writeLedes } from '../../src/modules/ebilling/domain/export.ts';
import type { BillFacts, LedesInvoice, LedesSettings, Problem } from '../../src/modules/ebilling/domain/export.ts';
import { amountText, cleanText, COLUMN_LINE, COLUMNS, FIRST_LINE, rateText, unitsText } from '../../src/modules/ebilling/domain/format.ts';
import type { LedesFormat } from '../../src/modules/ebilling/domain/format.ts';
import { readLedes } from '../../src/modules/ebilling/domain/reader.ts';
import { ASSOCIATE, bill, codes, facts, line, settings } from './support.ts';

function ok(f: BillFacts, format: LedesFormat = 'LEDES1998B', s: LedesSettings = settings()): LedesInvoice {
  const r = buildInvoice(f, format, s, codes);
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.problems, null, 1));
  return r.invoice;
}
function refused(f: BillFacts, format: LedesFormat = 'LEDES1998B', s: LedesSettings = settings()): Problem[] {
  const r = buildInvoice(f, format, s, codes);
  assert.ok(!r.ok, 'expected a refusal');
  return r.problems;
}
/** Write one file and read it back: must be valid; returns rows as column->value maps. */
function roundTrip(invoices: LedesInvoice[], format: LedesFormat, s: LedesSettings = settings()) {
  const text = writeLedes(format, invoices, s);
  const r = readLedes(text, { codes, requireClientMatterId: true });
  assert.deepEqual(r.violations, [], text);
  const cols = COLUMNS[format];
  const rows = text.split('\n').slice(2, -1).map((l) => Object.fromEntries(l.slice(0, -2).split('|').map((v, i) => [cols[i]!, v])));
  return { text, read: r, rows };
}

test('format basics: headers, columns, numbers and text cleaning', () => {
  assert.equal(FIRST_LINE.LEDES1998B, 'LEDES1998B[]');
  assert.equal(FIRST_LINE.LEDES1998BI, 'LEDES98BI V2[]');
  assert.equal(COLUMNS.LEDES1998B.length, 24);
  assert.equal(COLUMNS.LEDES1998BI.length, 52);
  assert.ok(COLUMN_LINE.LEDES1998B.startsWith('INVOICE_DATE|INVOICE_NUMBER|CLIENT_ID|') && COLUMN_LINE.LEDES1998B.endsWith('|TIMEKEEPER_CLASSIFICATION|CLIENT_MATTER_ID[]'));
  assert.ok(COLUMN_LINE.LEDES1998BI.endsWith('|LINE_ITEM_TAX_TYPE|INVOICE_REPORTED_TAX_TOTAL|INVOICE_TAX_CURRENCY[]'));
  for (const [micro, text] of [[2_000_000, '2.00'], [2_500_000, '2.50'], [1_250_000, '1.25'], [1_255_000, '1.255'], [100_000, '0.10'], [0, '0.00'], [116_700, '0.1167'], [833_300, '0.8333'], [1_000_100, '1.0001']] as const) assert.equal(unitsText(micro), text);
  for (const [minor, exp, text] of [[-5, 2, '-0.05'], [0, 2, '0.00'], [123_456_789, 2, '1234567.89'], [7, 3, '0.007'], [-1234, 0, '-1234'], [-100, 2, '-1.00'], [1_000_000_000_000_000, 2, '10000000000000.00']] as const) {
    assert.equal(amountText(minor, exp), text);
  }
  for (const [bp, text] of [[2000, '0.20'], [825, '0.0825'], [0, '0.00'], [10_000, '1.00'], [1250, '0.125']] as const) assert.equal(rateText(bp), text);
  for (const [raw, clean] of [
    ['Call with [client] | re: terms\nand more', 'Call with client re: terms and more'],
    ['Tab\there\r\nCRLF', 'Tab here CRLF'],
    ['  spaces   inside  ', 'spaces inside'],
    ['Ünïcode stays: Müller', 'Ünïcode stays: Müller'],
    ['ctl\u0000\u0007x\u2028y', 'ctl x y'],
  ] as const) assert.equal(cleanText(raw), clean);
});

test('LEDES.md example: units 2.00, cost 350, adjustment -70, total 630 (a write-down)', () => {
  const inv = ok(facts(bill([line({ minutes: 120, rateMinor: 35_000, recordedMinor: 70_000, amountMinor: 63_000 })])));
  const { rows } = roundTrip([inv], 'LEDES1998B');
  assert.equal(rows.length, 1);
  const r = rows[0]!;
  assert.deepEqual([r.LINE_ITEM_NUMBER_OF_UNITS, r.LINE_ITEM_UNIT_COST, r['LINE_ITEM_ADJUSTMENT_AMOUNT'], r.LINE_ITEM_TOTAL, r.INVOICE_TOTAL], ['2.00', '350.00', '-70.00', '630.00', '630.00']);
  assert.deepEqual([r['EXP/FEE/INV_ADJ_TYPE'], r.LINE_ITEM_TASK_CODE, r.LINE_ITEM_ACTIVITY_CODE, r.LINE_ITEM_EXPENSE_CODE], ['F', 'L110', 'A102', '']);
  assert.deepEqual([r.TIMEKEEPER_ID, r.TIMEKEEPER_NAME, r.TIMEKEEPER_CLASSIFICATION], ['MH', 'Holloway, Margaret', 'PARTNR']);
  assert.deepEqual([r.INVOICE_DATE, r.INVOICE_NUMBER, r.CLIENT_ID, r.LAW_FIRM_MATTER_ID, r.CLIENT_MATTER_ID, r.LAW_FIRM_ID], ['20260228', '12.8.3', 'NW-001', '12.8', 'NW-M-77', '24-6437381']);
  assert.deepEqual([r.BILLING_START_DATE, r.BILLING_END_DATE, r.LINE_ITEM_DATE], ['20260210', '20260228', '20260210']);
});

test('every kind of line: amounts exact to the cent (table)', () => {
  const cases: { name: string; lines: BillLineData[]; expect: [type: string, units: string, cost: string, adj: string, total: string][]; s?: Partial<LedesSettings> }[] = [
    { name: 'time charged as recorded', lines: [line({ minutes: 90, rateMinor: 20_000, recordedMinor: 30_000, amountMinor: 30_000, timekeeperId: 'tk-a' })], expect: [['F', '1.50', '200.00', '0.00', '300.00']] },
    { name: 'write-up is a positive adjustment', lines: [line({ minutes: 60, rateMinor: 30_000, recordedMinor: 30_000, amountMinor: 33_333 })], expect: [['F', '1.00', '300.00', '33.33', '333.33']] },
    // Hours with the fewest decimals (2 to 4) that are the minutes, else 4: the adjustment holds only that rounding (review 49, M1: 0.12 x 300.00 wrote -1.00).
    { name: '7 minutes at 300.00: 0.1167 hours, the rounding a cent', lines: [line({ minutes: 7, rateMinor: 30_000, recordedMinor: 3_500, amountMinor: 3_500 })], expect: [['F', '0.1167', '300.00', '-0.01', '35.00']] },
    { name: '50 minutes at 300.00 (review 49\'s repro)', lines: [line({ minutes: 50, rateMinor: 30_000, recordedMinor: 25_000, amountMinor: 25_000 })], expect: [['F', '0.8333', '300.00', '0.01', '250.00']] },
    { name: '13 minutes at 300.00', lines: [line({ minutes: 13, rateMinor: 30_000, recordedMinor: 6_500, amountMinor: 6_500 })], expect: [['F', '0.2167', '300.00', '-0.01', '65.00']] },
    { name: '10 minutes at 1,000.00: 0.1667 x 1,000.00 = 166.70, so -0.03', lines: [line({ minutes: 10, rateMinor: 100_000, recordedMinor: 16_667, amountMinor: 16_667 })], expect: [['F', '0.1667', '1000.00', '-0.03', '166.67']] },
    { name: '45 minutes: two decimals suffice', lines: [line({ minutes: 45, rateMinor: 30_000, recordedMinor: 22_500, amountMinor: 22_500 })], expect: [['F', '0.75', '300.00', '0.00', '225.00']] },
    { name: '5 minutes written down to 20.00: the adjustment is the write-down and the rounding', lines: [line({ minutes: 5, rateMinor: 30_000, recordedMinor: 2_500, amountMinor: 2_000 })], expect: [['F', '0.0833', '300.00', '-4.99', '20.00']] },
    { name: 'line discount (hidden in the line) is a negative adjustment', lines: [line({ minutes: 60, rateMinor: 40_000, recordedMinor: 40_000, amountMinor: 36_000 })], expect: [['F', '1.00', '400.00', '-40.00', '360.00']] },
    { name: 'no-charge item at zero', lines: [line({ minutes: 30, rateMinor: 30_000, recordedMinor: 15_000, amountMinor: 0, noCharge: true })], expect: [['F', '0.50', '300.00', '-150.00', '0.00']] },
    {
      name: 'no-charge items left out when the firm says so',
      lines: [line({ minutes: 30, recordedMinor: 17_500, amountMinor: 0, noCharge: true }), line({ minutes: 60, recordedMinor: 35_000, amountMinor: 35_000 })],
      expect: [['F', '1.00', '350.00', '0.00', '350.00']], s: { noChargeLines: 'omit' },
    },
    { name: 'disbursement without known quantity: 1 x recorded', lines: [line({ kind: 'disbursement', itemKind: 'disbursement', timekeeperId: null, minutes: null, rateMinor: null, recordedMinor: 35_000, amountMinor: 35_000, taskCode: null, activityCode: null, expenseCode: 'E112' })], expect: [['E', '1.00', '350.00', '0.00', '350.00']] },
    {
      name: 'fixed fee line uses the default codes and the billing timekeeper',
      lines: [line({ kind: 'fixed_fee', itemId: null, itemKind: null, timekeeperId: null, minutes: null, rateMinor: null, recordedMinor: 0, amountMinor: 250_000, taskCode: null, activityCode: null })],
      expect: [['F', '1.00', '2500.00', '0.00', '2500.00']], s: { defaultTaskCode: 'L120', defaultActivityCode: 'A101' },
    },
    {
      name: 'as-quoted line below the work: negative adjustment at zero cost',
      lines: [line({ amountMinor: 70_000 }), line({ kind: 'quote_fee', itemId: null, itemKind: null, minutes: null, rateMinor: null, recordedMinor: 0, amountMinor: -20_000, taskCode: null, activityCode: null })],
      expect: [['F', '2.00', '350.00', '0.00', '700.00'], ['F', '1.00', '0.00', '-200.00', '-200.00']], s: { defaultTaskCode: 'L120', defaultActivityCode: 'A101' },
    },
    {
      name: 'invoice-level discount is an IF line: units 1, adjustment = total = -discount',
      lines: [line({ amountMinor: 70_000 }), line({ kind: 'discount', itemId: null, itemKind: null, timekeeperId: null, minutes: null, rateMinor: null, recordedMinor: 0, amountMinor: -7_000, taskCode: null, activityCode: null, taxCode: null })],
      expect: [['F', '2.00', '350.00', '0.00', '700.00'], ['IF', '1.00', '0.00', '-70.00', '-70.00']],
    },
    {
      name: 'interest is an IE line',
      lines: [line({ amountMinor: 70_000 }), line({ kind: 'interest', itemId: null, itemKind: null, timekeeperId: null, minutes: null, rateMinor: null, recordedMinor: 0, amountMinor: 1_234, taskCode: null, activityCode: null })],
      expect: [['F', '2.00', '350.00', '0.00', '700.00'], ['IE', '1.00', '0.00', '12.34', '12.34']],
    },
  ];
  for (const c of cases) {
    const b = bill(c.lines);
    const s = settings(c.s);
    const inv = ok(facts(b), 'LEDES1998B', s);
    const { rows, read } = roundTrip([inv], 'LEDES1998B', s);
    assert.deepEqual(rows.map((r) => [r['EXP/FEE/INV_ADJ_TYPE'], r.LINE_ITEM_NUMBER_OF_UNITS, r.LINE_ITEM_UNIT_COST, r.LINE_ITEM_ADJUSTMENT_AMOUNT, r.LINE_ITEM_TOTAL]), c.expect, c.name);
    assert.equal(read.invoices[0]!.totalMinor, b.totals.totalMinor, c.name);
    assert.equal(read.invoices[0]!.linesTotalMinor, b.totals.totalMinor, c.name);
  }
});

test('disbursements and fixed charges carry their quantity and unit cost when they extend exactly', () => {
  const copies = line({ kind: 'disbursement', itemKind: 'disbursement', itemId: 'd-1', timekeeperId: null, minutes: null, rateMinor: null, recordedMinor: 1_500, amountMinor: 1_500, taskCode: null, activityCode: null, expenseCode: 'E101', description: 'Copies' });
  const miles = line({ kind: 'disbursement', itemKind: 'disbursement', itemId: 'd-2', timekeeperId: null, minutes: null, rateMinor: null, recordedMinor: 838, amountMinor: 838, taskCode: null, activityCode: null, expenseCode: 'E109', description: 'Mileage' });
  const stale = line({ kind: 'disbursement', itemKind: 'disbursement', itemId: 'd-3', timekeeperId: null, minutes: null, rateMinor: null, recordedMinor: 999, amountMinor: 999, taskCode: null, activityCode: null, expenseCode: 'E101' });
  const binders = line({ kind: 'fixed_charge', itemKind: 'fixed_charge', itemId: 'f-1', timekeeperId: null, minutes: null, rateMinor: null, recordedMinor: 37_500, amountMinor: 30_000, taskCode: 'L440', activityCode: 'A110', description: 'Trial binders' });
  const items = new Map([
    ['d-1', { id: 'd-1', quantityMilli: 100_000, unitCostMinor: 15 }],
    ['d-2', { id: 'd-2', quantityMilli: 12_500, unitCostMinor: 67 }],
    ['d-3', { id: 'd-3', quantityMilli: 2_000, unitCostMinor: 100 }],
    ['f-1', { id: 'f-1', quantityMilli: 3_000, unitCostMinor: 12_500 }],
  ]);
  const b = bill([copies, miles, stale, binders]);
  const { rows } = roundTrip([ok(facts(b, { items }))], 'LEDES1998B');
  assert.deepEqual(rows.map((r) => [r['EXP/FEE/INV_ADJ_TYPE'], r.LINE_ITEM_NUMBER_OF_UNITS, r.LINE_ITEM_UNIT_COST, r.LINE_ITEM_ADJUSTMENT_AMOUNT, r.LINE_ITEM_TOTAL, r.TIMEKEEPER_ID]), [
    ['E', '100.00', '0.15', '0.00', '15.00', ''],
    ['E', '12.50', '0.67', '0.00', '8.38', ''],
    ['E', '1.00', '9.99', '0.00', '9.99', ''], // 2 x 1.00 is not what was recorded: 1 x recorded
    ['F', '3.00', '125.00', '-75.00', '300.00', 'MH'], // written down; the matter's billing timekeeper
  ]);
});

test('hidden items are not on the bill, and line pricing hidden on the PDF still prices every LEDES line', () => {
  // billing leaves `hide` items off the bill; hideLinePricing only changes the PDF.
  const b = bill([line({ amountMinor: 70_000 })], { hideLinePricing: true });
  const { rows } = roundTrip([ok(facts(b))], 'LEDES1998B');
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.LINE_ITEM_UNIT_COST, '350.00');
});

test('1998BI: a discount over fees at two tax rates, as the composer writes it (one discount line per tax code), goes out with each line at its own rate', () => {
  // 10% off 700.00 taxed at VAT 20% and 300.00 exempt: -70.00 saving 14.00 of VAT, and -30.00 exempt.
  const taxed = line({ amountMinor: 70_000, taxCode: 'VAT', taxMinor: 14_000 });
  const exempt = line({ timekeeperId: 'tk-a', minutes: 90, rateMinor: 20_000, recordedMinor: 30_000, amountMinor: 30_000, taxCode: 'EXEMPT', taxMinor: 0 });
  const discount = (amountMinor: number, taxCode: string, taxMinor: number) => line({ kind: 'discount', itemId: null, itemKind: null, timekeeperId: null, minutes: null, rateMinor: null, recordedMinor: 0, amountMinor, taskCode: null, activityCode: null, taxCode, taxMinor });
  const b = bill([taxed, exempt, discount(-3_000, 'EXEMPT', 0), discount(-7_000, 'VAT', -1_400)], { currency: 'GBP' });
  const { rows, read } = roundTrip([ok(facts(b), 'LEDES1998BI')], 'LEDES1998BI');
  assert.deepEqual(rows.slice(2).map((r) => [r['EXP/FEE/INV_ADJ_TYPE'], r.LINE_ITEM_ADJUSTMENT_AMOUNT, r.LINE_ITEM_TAX_RATE, r.LINE_ITEM_TAX_TOTAL, r.LINE_ITEM_TAX_TYPE, r.LINE_ITEM_TOTAL]), [
    ['IF', '-30.00', '0.00', '0.00', 'EXEMPT', '-30.00'],
    ['IF', '-70.00', '0.20', '-14.00', 'VAT', '-84.00'],
  ]);
  assert.equal(read.invoices[0]!.totalMinor, b.totals.totalMinor);
  assert.equal(read.invoices[0]!.taxMinor, b.totals.taxMinor);
});

test('1998BI: tax per line, totals include tax, net and reported tax, currency and firm/client blocks', () => {
  const fees = line({ amountMinor: 70_000, taxCode: 'VAT', taxMinor: 14_000 });
  const assoc = line({ timekeeperId: 'tk-a', minutes: 90, rateMinor: 20_000, recordedMinor: 30_000, amountMinor: 27_000, taxCode: 'VAT', taxMinor: 5_400 });
  const court = line({ kind: 'disbursement', itemKind: 'disbursement', timekeeperId: null, minutes: null, rateMinor: null, recordedMinor: 35_000, amountMinor: 35_000, taskCode: null, activityCode: null, expenseCode: 'E112', taxCode: 'EXEMPT', taxMinor: 0 });
  const discount = line({ kind: 'discount', itemId: null, itemKind: null, timekeeperId: null, minutes: null, rateMinor: null, recordedMinor: 0, amountMinor: -9_700, taskCode: null, activityCode: null, taxCode: null, taxMinor: -1_940 });
  const b = bill([fees, assoc, court, discount], { currency: 'GBP' });
  const inv = ok(facts(b), 'LEDES1998BI');
  const { rows, read } = roundTrip([inv], 'LEDES1998BI');
  assert.deepEqual(rows.map((r) => [r['EXP/FEE/INV_ADJ_TYPE'], r.LINE_ITEM_ADJUSTMENT_AMOUNT, r.LINE_ITEM_TAX_RATE, r.LINE_ITEM_TAX_TOTAL, r.LINE_ITEM_TAX_TYPE, r.LINE_ITEM_TOTAL]), [
    ['F', '0.00', '0.20', '140.00', 'VAT', '840.00'],
    ['F', '-30.00', '0.20', '54.00', 'VAT', '324.00'],
    ['E', '0.00', '0.00', '0.00', 'EXEMPT', '350.00'],
    ['IF', '-97.00', '0.20', '-19.40', 'VAT', '-116.40'],
  ]);
  const r = rows[0]!;
  assert.equal(b.totals.totalMinor, 139_760);
  assert.deepEqual([r.INVOICE_TOTAL, r.INVOICE_TAX_TOTAL, r.INVOICE_NET_TOTAL, r.INVOICE_CURRENCY, r.INVOICE_REPORTED_TAX_TOTAL, r.INVOICE_TAX_CURRENCY], ['1397.60', '174.60', '1223.00', 'GBP', '174.60', 'GBP']);
  assert.deepEqual([r.TIMEKEEPER_LAST_NAME, r.TIMEKEEPER_FIRST_NAME, rows[1]!.TIMEKEEPER_CLASSIFICATION, r.ACCOUNT_TYPE], ['Holloway', 'Margaret', 'ASSOC', 'O']);
  assert.deepEqual([r.LAW_FIRM_NAME, r.LAW_FIRM_COUNTRY, r.CLIENT_NAME, r.CLIENT_TAX_ID, r.MATTER_NAME, r.CLIENT_COUNTRY], ['Holloway & Stern LLP', 'USA', 'Northwind Logistics Inc.', '36-1234567', 'Northwind v. Kestrel', 'USA']);
  assert.equal(read.invoices[0]!.taxMinor, b.totals.taxMinor);
  assert.equal(read.invoices[0]!.netMinor, b.totals.totalMinor - b.totals.taxMinor);
  // A tax-exempt invoice still states zeros and its currency.
  const exempt = roundTrip([ok(facts(bill([line()])), 'LEDES1998BI')], 'LEDES1998BI').rows[0]!;
  assert.deepEqual([exempt.INVOICE_TAX_TOTAL, exempt.LINE_ITEM_TAX_RATE, exempt.LINE_ITEM_TAX_TOTAL, exempt.INVOICE_CURRENCY], ['0.00', '0.00', '0.00', 'USD']);
  // UTBMS codes as classification when the firm prefers them.
  assert.equal(roundTrip([ok(facts(bill([line({ timekeeperId: 'tk-a' })])), 'LEDES1998BI', settings({ classificationStyle: 'codes' }))], 'LEDES1998BI', settings({ classificationStyle: 'codes' })).rows[0]!.TIMEKEEPER_CLASSIFICATION, 'AS');
  // Three-decimal currencies.
  const kwd = bill([line({ minutes: 60, rateMinor: 100_000, recordedMinor: 100_000, amountMinor: 100_000 })], { currency: 'KWD' });
  assert.equal(roundTrip([ok(facts(kwd), 'LEDES1998BI')], 'LEDES1998BI').rows[0]!.LINE_ITEM_TOTAL, '100.000');
});

test('1998BI validator: a line\'s tax is its rate x its amount before tax, within the composer\'s rounding; a discount\'s within that a discounted line (review 49, M2)', () => {
  // Two VAT lines (181.50 and 300.00 at 0.0825) and a discount whose tax sums the lines' tax changes.
  const a = line({ minutes: 60, rateMinor: 18_150, recordedMinor: 18_150, amountMinor: 18_150, taxCode: 'SALES', taxMinor: 1_497 });
  const b = line({ timekeeperId: 'tk-a', minutes: 60, rateMinor: 30_000, recordedMinor: 30_000, amountMinor: 30_000, taxCode: 'SALES', taxMinor: 2_475 });
  const discount = (taxMinor: number) => line({ kind: 'discount', itemId: null, itemKind: null, timekeeperId: null, minutes: null, rateMinor: null, recordedMinor: 0, amountMinor: -4_815, taskCode: null, activityCode: null, taxCode: 'SALES', taxMinor });
  const text = roundTrip([ok(facts(bill([a, b, discount(-397)])), 'LEDES1998BI')], 'LEDES1998BI').text;
  const cols = COLUMNS.LEDES1998BI;
  // Change a line's tax (and its total and the invoice's totals with it, so only the tax is wrong).
  const withTax = (fileLine: number, taxText: string) => {
    const lines = text.split('\n');
    const fields = lines.map((l, i) => (i >= 2 && l ? l.slice(0, -2).split('|') : null));
    const f = fields[fileLine - 1]!;
    const toMinor = (v: string) => Math.round(Number(v) * 100);
    const delta = toMinor(taxText) - toMinor(f[cols.indexOf('LINE_ITEM_TAX_TOTAL')]!);
    const bump = (row: string[], c: (typeof cols)[number]) => { row[cols.indexOf(c)] = (toMinor(row[cols.indexOf(c)]!) + delta < 0 ? '-' : '') + (Math.abs(toMinor(row[cols.indexOf(c)]!) + delta) / 100).toFixed(2); };
    f[cols.indexOf('LINE_ITEM_TAX_TOTAL')] = taxText;
    bump(f, 'LINE_ITEM_TOTAL');
    for (const row of fields) if (row) for (const c of ['INVOICE_TOTAL', 'INVOICE_TAX_TOTAL', 'INVOICE_REPORTED_TAX_TOTAL'] as const) bump(row, c);
    return fields.map((row, i) => (row ? `${row.join('|')}[]` : lines[i])).join('\n');
  };
  const taxViolations = (t: string) => readLedes(t, { codes }).violations.filter((v) => v.field === 'LINE_ITEM_TAX_TOTAL' || v.field === 'INVOICE_TOTAL' || v.field === 'LINE_ITEM_TOTAL');
  // The reviewer's case: 181.50 at 0.0825 carrying 99.99 of tax, every total made to agree: refused, naming the expected tax.
  const wrong = taxViolations(withTax(3, '99.99'));
  assert.deepEqual(wrong.map((v) => [v.line, v.field]), [[3, 'LINE_ITEM_TAX_TOTAL']], JSON.stringify(wrong));
  assert.match(wrong[0]!.message, /^99\.99 is not LINE_ITEM_TAX_RATE x the line's amount before tax \(0\.0825 x 181\.50 = 14\.97\)$/);
  // Within the composer's rounding (two cents a line): accepted.
  assert.deepEqual(taxViolations(withTax(3, '14.99')), []);
  assert.deepEqual(taxViolations(withTax(3, '15.00')).map((v) => v.line), [3]);
  // The discount (-48.15 at 0.0825 = -3.97): off by up to 3 cents a discounted line + 2 (here 8) is its lines' rounding; more is refused.
  assert.deepEqual(taxViolations(withTax(5, '-4.05')), []);
  assert.deepEqual(taxViolations(withTax(5, '-4.06')).map((v) => [v.line, v.field]), [[5, 'LINE_ITEM_TAX_TOTAL']]);
});

test('several invoices in one file, each with its own total; text cleaned', () => {
  const a = bill([line({ description: 'Draft | revise [motion]\nto dismiss' }), line({ timekeeperId: 'tk-a', minutes: 30, rateMinor: 20_000, recordedMinor: 10_000, amountMinor: 10_000 })], { number: '12.8.3' });
  const b = bill([line({ minutes: 12, recordedMinor: 7_000, amountMinor: 7_000 })], { number: '12.8.4', invoiceDate: '2026-03-31', upTo: '2026-03-31' });
  const { read, rows, text } = roundTrip([ok(facts(a)), ok(facts(b))], 'LEDES1998B');
  assert.deepEqual(read.invoices.map((i) => [i.number, i.totalMinor, i.lines.length]), [['12.8.3', 80_000, 2], ['12.8.4', 7_000, 1]]);
  assert.deepEqual(rows.map((r) => r.LINE_ITEM_NUMBER), ['1', '2', '1']);
  assert.equal(rows[0]!.LINE_ITEM_DESCRIPTION, 'Draft revise motion to dismiss');
  assert.equal(text.split('\n').length, 6); // 2 header lines + 3 items + the final line break
  assert.ok(text.split('\n').slice(0, -1).every((l) => l.endsWith('[]')));
});

test('INVOICE_DESCRIPTION: the matter\'s name as written, whatever it holds ($& and $\' are text)', () => {
  const names: [template: string, name: string, want: string][] = [
    ['Professional services: {matter}', 'Smith $& Sons v. Jones $\' appeal', 'Professional services: Smith $& Sons v. Jones $\' appeal'],
    ['Matter {matter} - fees', 'Re: O\'Brien $` estate $$', 'Matter Re: O\'Brien $` estate $$ - fees'],
    ['', 'Plain name', 'Plain name'],
  ];
  for (const [template, name, want] of names) {
    const f = facts(bill([line()]));
    const invoice = ok({ ...f, matter: { ...f.matter!, name } }, 'LEDES1998B', settings({ invoiceDescription: template }));
    assert.equal(roundTrip([invoice], 'LEDES1998B').rows[0]!.INVOICE_DESCRIPTION, want, template);
  }
});

test('refusals: every offending line and field, with how to fix it (table)', () => {
  const noCodes = { taskCode: null, activityCode: null };
  const adhoc = line({ kind: 'adhoc_fee', itemId: null, itemKind: null, minutes: null, rateMinor: null, recordedMinor: 0, amountMinor: 10_000, ...noCodes });
  const expenseNoCode = line({ kind: 'disbursement', itemKind: 'disbursement', timekeeperId: null, minutes: null, rateMinor: null, recordedMinor: 500, amountMinor: 500, ...noCodes, expenseCode: null });
  const adhocExpense = line({ kind: 'adhoc_disbursement', itemId: null, itemKind: null, timekeeperId: null, minutes: null, rateMinor: null, recordedMinor: 0, amountMinor: 500, ...noCodes });
  const cases: { name: string; f: BillFacts; format?: LedesFormat; s?: Partial<LedesSettings>; expect: [line: number | null, field: string, message: RegExp, fix: RegExp][] }[] = [
    { name: 'draft bill', f: facts(bill([line()], { status: 'draft', number: null })), expect: [[null, 'bill', /is draft/, /approve/], [null, 'INVOICE_NUMBER', /no number/, /approve/]] },
    { name: 'void (deleted) bill: no fix that cannot be followed', f: facts(bill([line()], { status: 'deleted' })), expect: [[null, 'bill', /is void \(deleted\)/, /not e-billed: if the client's platform holds it, withdraw it there/]] },
    { name: 'invoice number too long', f: facts(bill([line()], { number: '123456789.123456789.1' })), expect: [[null, 'INVOICE_NUMBER', /21 characters; LEDES allows 20/, /shorter/]] },
    { name: 'missing task and activity codes', f: facts(bill([line(), line(noCodes)])), expect: [[2, 'LINE_ITEM_TASK_CODE', /no UTBMS task code/, /leave the time entry off it in the composer, add task and activity codes to it on the matter page, put it back on the bill/], [2, 'LINE_ITEM_ACTIVITY_CODE', /no UTBMS activity code/, /time entry/]] },
    { name: 'task code not in the matter\'s code set (a phase, an unknown code)', f: facts(bill([line({ taskCode: 'L100' }), line({ taskCode: 'X999' })])), expect: [[1, 'LINE_ITEM_TASK_CODE', /L100 is not a task code of the litigation code set/, /litigation codes/], [2, 'LINE_ITEM_TASK_CODE', /X999/, /litigation/]] },
    { name: 'unknown activity code', f: facts(bill([line({ activityCode: 'A999' })])), expect: [[1, 'LINE_ITEM_ACTIVITY_CODE', /A999 is not a UTBMS activity code/, /A101 to A111/]] },
    { name: 'expense without a code; unknown expense code', f: facts(bill([expenseNoCode, line({ ...expenseNoCode, expenseCode: 'E999' })])), expect: [[1, 'LINE_ITEM_EXPENSE_CODE', /no UTBMS expense code/, /disbursement/], [2, 'LINE_ITEM_EXPENSE_CODE', /E999 is not a UTBMS expense code/, /E101 to E124/]] },
    { name: 'lines without codes of their own and no defaults', f: facts(bill([adhoc, adhocExpense])), expect: [[1, 'LINE_ITEM_TASK_CODE', /no UTBMS task code/, /e-billing settings/], [1, 'LINE_ITEM_ACTIVITY_CODE', /no UTBMS activity code/, /e-billing settings/], [2, 'LINE_ITEM_EXPENSE_CODE', /no UTBMS expense code/, /e-billing settings/]] },
    { name: 'missing timekeeper classification', f: facts(bill([line({ timekeeperId: 'tk-a' })]), { timekeepers: new Map([['tk-a', { ...ASSOCIATE, ledesClassification: null }]]) }), expect: [[1, 'TIMEKEEPER_CLASSIFICATION', /JS has no LEDES classification/, /timekeepers page/]] },
    { name: 'unknown timekeeper', f: facts(bill([line({ timekeeperId: 'tk-x' })])), expect: [[1, 'TIMEKEEPER_ID', /no known timekeeper/, /timekeeper/]] },
    { name: 'missing client ids', f: facts(bill([line()]), { matter: { ...facts(bill([])).matter!, ebilling: { enabled: true, codeSet: 'litigation', format: 'LEDES1998B', clientLedesId: '', matterLedesId: '' } } }), expect: [[null, 'CLIENT_ID', /no client LEDES id/, /e-billing options/], [null, 'CLIENT_MATTER_ID', /no client matter id/, /e-billing options/]] },
    { name: 'client ids too long', f: facts(bill([line()]), { matter: { ...facts(bill([])).matter!, ebilling: { enabled: true, codeSet: 'litigation', format: 'LEDES1998B', clientLedesId: 'C'.repeat(21), matterLedesId: 'M'.repeat(25) } } }), expect: [[null, 'CLIENT_ID', /21 characters; LEDES allows 20/, /shorten/], [null, 'CLIENT_MATTER_ID', /25 characters/, /shorten/]] },
    { name: 'matter not e-billed', f: facts(bill([line()]), { matter: { ...facts(bill([])).matter!, ebilling: null } }), expect: [[null, 'CLIENT_ID', /is not e-billed/, /turn e-billing on/]] },
    { name: 'matter not copied yet', f: facts(bill([line()]), { matter: null }), expect: [[null, 'LAW_FIRM_MATTER_ID', /not known to e-billing/, /try again/]] },
    { name: 'no law firm id', f: facts(bill([line()])), s: { lawFirmId: '' }, expect: [[null, 'LAW_FIRM_ID', /no LEDES law firm id/, /e-billing settings page/]] },
    { name: 'tax cannot be carried by 1998B', f: facts(bill([line({ taxCode: 'SALES', taxMinor: 5_775 })])), expect: [[null, 'INVOICE_TOTAL', /tax of 57.75, which LEDES 1998B cannot carry/, /LEDES 1998BI/]] },
    { name: '1998B states no currency: a 0-decimal currency goes as 1998BI', f: facts(bill([line({ rateMinor: 35_000, recordedMinor: 70_000 })], { currency: 'JPY' })), expect: [[null, 'INVOICE_TOTAL', /JPY amounts have 0 decimals/, /1998BI/]] },
    { name: 'only no-charge lines, no-charge lines omitted: nothing to send', f: facts(bill([line({ noCharge: true, amountMinor: 0 })])), s: { noChargeLines: 'omit' }, expect: [[null, 'bill', /no lines to send/, /add work/]] },
    { name: '1998BI needs the firm country', f: facts(bill([line()])), format: 'LEDES1998BI', s: { country: '' }, expect: [[null, 'LAW_FIRM_COUNTRY', /no ISO 3166 alpha-3 country/, /settings page/]] },
    {
      name: '1998BI: a discount whose tax spans two rates',
      f: facts(bill([line({ taxCode: 'VAT', taxMinor: 14_000 }), line({ taxCode: 'SALES', taxMinor: 5_775 }), line({ kind: 'discount', itemId: null, itemKind: null, timekeeperId: null, minutes: null, rateMinor: null, recordedMinor: 0, amountMinor: -14_000, taxCode: null, taxMinor: -1_977, taskCode: null, activityCode: null })])),
      format: 'LEDES1998BI', expect: [[3, 'LINE_ITEM_TAX_RATE', /spans 2 tax rates/, /within the lines/]],
    },
    {
      // 10% off 700.00 taxed at 20% and 700.00 exempt: the discount's -140.00 carries -14.00 of tax, which 0.20 does not state.
      name: '1998BI: a discount over taxed and exempt fees',
      f: facts(bill([line({ taxCode: 'VAT', taxMinor: 14_000 }), line({ taxCode: 'EXEMPT', taxMinor: 0 }), line({ kind: 'discount', itemId: null, itemKind: null, timekeeperId: null, minutes: null, rateMinor: null, recordedMinor: 0, amountMinor: -14_000, taxCode: null, taxMinor: -1_400, taskCode: null, activityCode: null })])),
      format: 'LEDES1998BI', expect: [[3, 'LINE_ITEM_TAX_RATE', /spans 2 tax rates/, /within the lines/]],
    },
  ];
  for (const c of cases) {
    const problems = refused(c.f, c.format ?? 'LEDES1998B', settings(c.s));
    const got = problems.map((p) => [p.lineNo, p.field]);
    assert.deepEqual(got, c.expect.map((e) => [e[0], e[1]]), `${c.name}: ${JSON.stringify(problems)}`);
    c.expect.forEach((e, i) => {
      assert.match(problems[i]!.message, e[2], c.name);
      assert.match(problems[i]!.fix, e[3], c.name);
      assert.equal(problems[i]!.bill, c.f.bill.number ?? c.f.bill.billId);
    });
  }
  // Not required by the firm: no client matter id is fine.
  ok(facts(bill([line()]), { matter: { ...facts(bill([])).matter!, ebilling: { enabled: true, codeSet: 'litigation', format: 'LEDES1998B', clientLedesId: 'NW', matterLedesId: '' } } }), 'LEDES1998B', settings({ requireClientMatterId: false }));
});

test('validator: every violation by file line and field (table)', () => {
  const good = writeLedes('LEDES1998B', [ok(facts(bill([line(), line({ timekeeperId: 'tk-a', minutes: 30, rateMinor: 20_000, recordedMinor: 10_000, amountMinor: 10_000 })])))], settings());
  assert.deepEqual(readLedes(good, { codes }).violations, []);
  const lines = good.split('\n');
  const cols = COLUMNS.LEDES1998B;
  /** Set one field of file line `at` (1-based). */
  const edit = (at: number, column: string, value: string): string => {
    const copy = [...lines];
    const f = copy[at - 1]!.slice(0, -2).split('|');
    f[cols.indexOf(column as never)] = value;
    copy[at - 1] = `${f.join('|')}[]`;
    return copy.join('\n');
  };
  const cases: [name: string, text: string, expect: [line: number, field: string][]][] = [
    ['wrong first line', good.replace('LEDES1998B[]', 'LEDES1998[]'), [[1, 'header']]],
    ['wrong column name', good.replace('|LINE_ITEM_TOTAL|', '|LINE_TOTAL|'), [[2, 'columns']]],
    ['line without [] (and so the invoice total misses it)', good.replace(/\[\]\n$/, '\n'), [[4, 'line'], [3, 'INVOICE_TOTAL']]],
    ['no final line break', good.slice(0, -1), [[4, 'line']]],
    ['too few fields', good.replace(/\|NW-M-77\[\]\n$/, '[]\n'), [[4, 'line'], [3, 'INVOICE_TOTAL']]],
    ['bad date', edit(3, 'LINE_ITEM_DATE', '20260231'), [[3, 'LINE_ITEM_DATE']]],
    ['units with more than four decimals (platforms read four)', edit(3, 'LINE_ITEM_NUMBER_OF_UNITS', '2.00000'), [[3, 'LINE_ITEM_NUMBER_OF_UNITS']]],
    ['thousands separator', edit(3, 'LINE_ITEM_UNIT_COST', '1,350.00'), [[3, 'LINE_ITEM_UNIT_COST']]],
    ['line arithmetic', edit(3, 'LINE_ITEM_ADJUSTMENT_AMOUNT', '-1.00'), [[3, 'LINE_ITEM_TOTAL']]],
    ['line total changed: invoice total no longer the sum', edit(3, 'LINE_ITEM_TOTAL', '701.00'), [[3, 'LINE_ITEM_TOTAL'], [3, 'INVOICE_TOTAL']]],
    ['invoice id too long (and no longer the same on the invoice\'s next line)', edit(3, 'CLIENT_ID', 'X'.repeat(21)), [[3, 'CLIENT_ID'], [4, 'CLIENT_ID']]],
    ['unknown type', edit(3, 'EXP/FEE/INV_ADJ_TYPE', 'X'), [[3, 'EXP/FEE/INV_ADJ_TYPE']]],
    ['fee line without task code', edit(3, 'LINE_ITEM_TASK_CODE', ''), [[3, 'LINE_ITEM_TASK_CODE']]],
    ['unknown activity code', edit(3, 'LINE_ITEM_ACTIVITY_CODE', 'A999'), [[3, 'LINE_ITEM_ACTIVITY_CODE']]],
    ['fee line without timekeeper class', edit(3, 'TIMEKEEPER_CLASSIFICATION', ''), [[3, 'TIMEKEEPER_CLASSIFICATION']]],
    ['repeated line number', edit(4, 'LINE_ITEM_NUMBER', '1'), [[4, 'LINE_ITEM_NUMBER']]],
    ['missing law firm id', edit(4, 'LAW_FIRM_ID', ''), [[4, 'LAW_FIRM_ID'], [4, 'LAW_FIRM_ID']]],
    ['line date outside the billing period', edit(4, 'LINE_ITEM_DATE', '20260301'), [[4, 'LINE_ITEM_DATE']]],
  ];
  for (const [name, text, expect] of cases) {
    const r = readLedes(text, { codes });
    assert.equal(r.valid, false, name);
    assert.deepEqual(r.violations.map((v) => [v.line, v.field]), expect, `${name}: ${JSON.stringify(r.violations)}`);
  }
  // The invoice total's message states amounts as the file does, not minor units (review 49, L7).
  const off = readLedes(edit(3, 'LINE_ITEM_TOTAL', '701.00'), { codes }).violations.find((v) => v.field === 'INVOICE_TOTAL')!;
  assert.match(off.message, /INVOICE_TOTAL \d+\.\d\d is not the sum of its line totals, \d+\.\d\d$/);
  // An empty file and a file of only headers.
  assert.deepEqual(readLedes('', { codes }).violations.map((v) => v.field), ['file']);
  assert.deepEqual(readLedes(`${FIRST_LINE.LEDES1998B}\n${COLUMN_LINE.LEDES1998B}\n`).violations.map((v) => v.field), ['file']);
  // Platform options.
  const noPeriod = edit(3, 'BILLING_START_DATE', '');
  assert.deepEqual(readLedes(noPeriod, { codes, requireBillingPeriod: true }).violations.map((v) => [v.line, v.field]), [[3, 'BILLING_START_DATE'], [4, 'BILLING_START_DATE']]);
});

// ---------------------------------------------------------------------------------------
// Property: any bill exported and read back gives the same totals; lines sum to the total
// ---------------------------------------------------------------------------------------

const TAX: Record<string, number> = { EXEMPT: 0, SALES: 825, VAT: 2000 };
const arbLine = fc.oneof(
  fc.record({ minutes: fc.integer({ min: 1, max: 6000 }), rate: fc.integer({ min: 0, max: 200_000 }), delta: fc.integer({ min: -50_000, max: 50_000 }), noCharge: fc.boolean(), tax: fc.constantFrom('EXEMPT', 'SALES', 'VAT'), tk: fc.constantFrom('tk-p', 'tk-a') })
    .map((x) => {
      const recorded = Math.floor((x.minutes * x.rate * 2 + 60) / 120);
      const amount = x.noCharge ? 0 : Math.max(0, recorded + x.delta);
      return line({ minutes: x.minutes, rateMinor: x.rate, recordedMinor: recorded, amountMinor: amount, noCharge: x.noCharge, timekeeperId: x.tk, taxCode: x.tax, taxMinor: Math.floor((amount * TAX[x.tax]! + 5_000) / 10_000) });
    }),
  fc.record({ q: fc.integer({ min: 1, max: 500_000 }), cost: fc.integer({ min: 0, max: 100_000 }), tax: fc.constantFrom('EXEMPT', 'SALES'), known: fc.boolean() })
    .map((x) => {
      const recorded = Math.floor((x.q * x.cost * 2 + 1000) / 2000);
      return line({ kind: 'disbursement', itemKind: 'disbursement', itemId: `d-${x.q}-${x.cost}-${x.known}`, timekeeperId: null, minutes: null, rateMinor: null, recordedMinor: recorded, amountMinor: recorded, taskCode: null, activityCode: null, expenseCode: 'E101', taxCode: x.tax, taxMinor: Math.floor((recorded * TAX[x.tax]! + 5_000) / 10_000) });
    }),
  fc.integer({ min: -100_000, max: 1_000_000 }).map((amount) => line({ kind: 'adhoc_fee', itemId: null, itemKind: null, minutes: null, rateMinor: null, recordedMinor: 0, amountMinor: amount, taskCode: 'L120', activityCode: 'A103' })),
  fc.integer({ min: 1, max: 100_000 }).map((amount) => line({ kind: 'interest', itemId: null, itemKind: null, timekeeperId: null, minutes: null, rateMinor: null, recordedMinor: 0, amountMinor: amount, taskCode: null, activityCode: null, taxCode: 'EXEMPT' })),
);

test('property: a time line charged at its minutes x rate carries no adjustment beyond the rounding of its hours (to up to 4 decimals)', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 100_000 }), fc.integer({ min: 0, max: 1_000_000 }), (minutes, rate) => {
    const amount = Math.floor((minutes * rate * 2 + 60) / 120);
    const inv = ok(facts(bill([line({ minutes, rateMinor: rate, recordedMinor: amount, amountMinor: amount })])));
    const l = inv.lines[0]!;
    // Half a ten-thousandth of an hour at the rate, and a cent of rounding; none when the hours are exact.
    const bound = minutes % 3 === 0 ? 0 : Math.ceil(rate / 20_000) + 1;
    assert.ok(Math.abs(l.adjustmentMinor) <= bound, `${minutes} min at ${rate}: adjustment ${l.adjustmentMinor}`);
    assert.ok(l.unitsMicro % 100 === 0, 'at most four decimals');
    // The hours stated: exact where a decimal can be (multiples of 3 minutes, at two decimals), else to at least four decimals.
    if (minutes % 3 === 0) assert.deepEqual([l.unitsMicro * 60, l.unitsMicro % 10_000], [minutes * 1_000_000, 0], `${minutes} min stated as ${l.unitsMicro}`);
    else assert.ok(Math.abs(l.unitsMicro * 60 - minutes * 1_000_000) <= 3_000, `${minutes} min stated as ${l.unitsMicro}`);
    // The file reads back valid (no more decimals than platforms read).
    assert.deepEqual(roundTrip([inv], 'LEDES1998B').read.violations, []);
  }), { numRuns: 2_000 });
});

test('property: export then read back gives the bill\'s totals, line totals sum to the invoice total, the file is valid', () => {
  fc.assert(fc.property(
    fc.array(fc.record({ lines: fc.array(arbLine, { minLength: 1, maxLength: 12 }), discount: fc.integer({ min: 0, max: 20_000 }), currency: fc.constantFrom('USD', 'GBP', 'EUR', 'KWD') }), { minLength: 1, maxLength: 4 }),
    fc.constantFrom<LedesFormat>('LEDES1998B', 'LEDES1998BI'),
    fc.boolean(),
    (specs, format, omitNoCharge) => {
      const s = settings({ noChargeLines: omitNoCharge ? 'omit' : 'include' });
      const invoices: LedesInvoice[] = [];
      const bills = specs.map((spec, i) => {
        const lines = [...spec.lines];
        // An invoice-level discount on fees taxed at one rate (VAT), as billing composes it.
        if (spec.discount > 0) lines.push(line({ kind: 'discount', itemId: null, itemKind: null, timekeeperId: null, minutes: null, rateMinor: null, recordedMinor: 0, amountMinor: -spec.discount, taskCode: null, activityCode: null, taxCode: null, taxMinor: 0 }));
        const taxFree = format === 'LEDES1998B' || spec.currency === 'KWD' ? lines.map((l) => ({ ...l, taxMinor: 0 })) : lines;
        return bill(taxFree, { number: `7.${i + 1}.1`, currency: format === 'LEDES1998B' ? 'USD' : spec.currency });
      });
      const items = new Map(bills.flatMap((b) => b.lines.filter((l) => l.kind === 'disbursement' && l.itemId!.endsWith('true')).map((l) => {
        const [, q, cost] = l.itemId!.split('-');
        return [l.itemId!, { id: l.itemId!, quantityMilli: Number(q), unitCostMinor: Number(cost) }] as const;
      })));
      // A bill whose every line is no-charge, with no-charge lines omitted, has nothing to
      // send: it is refused (and left out of the file), never written as an empty invoice.
      const sendable = (b: (typeof bills)[number]) => b.lines.some((l) => !(omitNoCharge && l.noCharge));
      for (const b of bills.filter((x) => !sendable(x))) {
        assert.deepEqual(refused(facts(b, { items }), format, s).map((p) => [p.field, p.message]), [['bill', 'bill has no lines to send']]);
      }
      const sent = bills.filter(sendable);
      if (sent.length === 0) return;
      for (const b of sent) invoices.push(ok(facts(b, { items }), format, s));
      const text = writeLedes(format, invoices, s);
      const read = readLedes(text, { codes });
      assert.deepEqual(read.violations, []);
      assert.equal(read.invoices.length, sent.length);
      sent.forEach((b, i) => {
        const inv = read.invoices[i]!;
        assert.equal(inv.number, b.number);
        assert.equal(inv.totalMinor, b.totals.totalMinor);
        assert.equal(inv.lines.reduce((a, l) => a + l.totalMinor, 0), inv.totalMinor);
        assert.equal(inv.taxMinor, format === 'LEDES1998BI' ? b.totals.taxMinor : 0);
        const omitted = omitNoCharge ? b.lines.filter((l) => l.noCharge).length : 0;
        assert.equal(inv.lines.length, b.lines.length - omitted);
      });
    },
  ), { numRuns: 300 });
});
