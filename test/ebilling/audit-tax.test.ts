/**
 * Audit of LEDES 1998BI tax rates: a bill's lines carry their tax code and tax, not the rate.
 * After the firm changes a code's rate (VAT 20% to 17.5%), a bill taxed before still goes out
 * at the rate its tax was worked at (0.20 beside 20% of the line), never today's 0.175 beside
 * a tax of 20%; lines whose tax agrees with no one rate are refused naming LINE_ITEM_TAX_RATE.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEbillingCommands } from '../../src/modules/ebilling/index.ts';
import { buildInvoice, writeLedes } from '../../src/modules/ebilling/domain/export.ts';
import { COLUMNS } from '../../src/modules/ebilling/domain/format.ts';
import { readLedes } from '../../src/modules/ebilling/domain/reader.ts';
import { eachDialect } from '../support/db.ts';
import { ctx, firm, setup } from '../billing/support.ts';
import { bill, codes, facts, line, settings } from './support.ts';

const rows = (text: string) => text.split('\n').slice(2, -1).map((l) => Object.fromEntries(l.slice(0, -2).split('|').map((v, i) => [COLUMNS.LEDES1998BI[i]!, v])));
const discount = (amountMinor: number, taxMinor: number, taxCode: string | null) => line({ kind: 'discount', itemId: null, itemKind: null, timekeeperId: null, minutes: null, rateMinor: null, recordedMinor: 0, amountMinor, taskCode: null, activityCode: null, taxCode, taxMinor });

test('the rate each line was taxed at, not the firm\'s rate now: lines, a credit, a discount without a code; rounding slack kept', () => {
  // Taxed at VAT 20% (the last line rounded the bill's way), the firm's VAT now 17.5%.
  const b = bill([
    line({ amountMinor: 70_000, taxCode: 'VAT', taxMinor: 14_000 }),
    line({ timekeeperId: 'tk-a', minutes: 7, rateMinor: 20_000, recordedMinor: 2_333, amountMinor: 2_333, taxCode: 'VAT', taxMinor: 467 }),
    line({ kind: 'adhoc_fee', itemId: null, itemKind: null, minutes: null, rateMinor: null, recordedMinor: 0, amountMinor: -5_000, taskCode: 'L120', activityCode: 'A101', taxCode: 'VAT', taxMinor: -1_000 }),
    line({ kind: 'disbursement', itemKind: 'disbursement', timekeeperId: null, minutes: null, rateMinor: null, recordedMinor: 35_000, amountMinor: 35_000, taskCode: null, activityCode: null, expenseCode: 'E112', taxCode: 'EXEMPT', taxMinor: 0 }),
    discount(-6_733, -1_347, null),
  ], { currency: 'GBP' });
  const taxRates = new Map([['EXEMPT', 0], ['SALES', 825], ['VAT', 1750]]);
  const r = buildInvoice(facts(b, { taxRates }), 'LEDES1998BI', settings(), codes);
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.problems));
  const text = writeLedes('LEDES1998BI', [r.invoice], settings());
  assert.deepEqual(readLedes(text, { codes }).violations, []);
  assert.deepEqual(rows(text).map((x) => [x.LINE_ITEM_TAX_TYPE, x.LINE_ITEM_TAX_RATE, x.LINE_ITEM_TAX_TOTAL]), [
    ['VAT', '0.20', '140.00'], ['VAT', '0.20', '4.67'], ['VAT', '0.20', '-10.00'], ['EXEMPT', '0.00', '0.00'], ['VAT', '0.20', '-13.47'],
  ]);
  // Unchanged rates are written as they are (a tax within rounding of today's rate).
  const same = buildInvoice(facts(b), 'LEDES1998BI', settings(), codes);
  assert.ok(same.ok);
  assert.deepEqual(same.invoice.lines.map((l) => l.taxRateBasisPoints), [2000, 2000, 2000, 0, 2000]);
  // A code taxed at 0 when the bill was made (zero-rated then, 20% now): 0.00, not 0.20 beside no tax.
  const zero = buildInvoice(facts(bill([line({ amountMinor: 70_000, taxCode: 'VAT', taxMinor: 0 })], { currency: 'GBP' })), 'LEDES1998BI', settings(), codes);
  assert.ok(zero.ok);
  assert.deepEqual(zero.invoice.lines.map((l) => [l.taxType, l.taxRateBasisPoints]), [['VAT', 0]]);
});

test('lines of one code whose tax agrees with no one rate: refused naming LINE_ITEM_TAX_RATE once, with how to fix it', () => {
  const b = bill([line({ amountMinor: 70_000, taxCode: 'VAT', taxMinor: 14_000 }), line({ amountMinor: 70_000, taxCode: 'VAT', taxMinor: 12_250 })], { currency: 'GBP' });
  const r = buildInvoice(facts(b), 'LEDES1998BI', settings(), codes);
  assert.ok(!r.ok);
  assert.deepEqual(r.problems.map((p) => [p.lineNo, p.field]), [[1, 'LINE_ITEM_TAX_RATE']]);
  assert.match(r.problems[0]!.message, /agrees with no one rate/);
  assert.match(r.problems[0]!.fix, /re-draft/);
  // 1998B carries no tax: the bill is refused for its tax there as before, not for rates.
  assert.deepEqual(buildInvoice(facts(bill([line({ amountMinor: 70_000, taxCode: 'VAT', taxMinor: 0 })])), 'LEDES1998B', settings(), codes).ok, true);
});

eachDialect('real bill: taxed at VAT 20%, the firm\'s VAT then changed to 17.5%: the 1998BI export still states 0.20 beside each line\'s 20% tax', async (db) => {
  const s = await setup(db);
  const { partner, associate, matter } = await firm(s.cmds);
  const vat = (bp: number) => [{ code: 'EXEMPT', name: 'Exempt', basisPoints: 0 }, { code: 'SALES', name: 'Sales', basisPoints: 825 }, { code: 'VAT', name: 'VAT', basisPoints: bp }];
  await s.cmds.updateFirmSettings(ctx, { taxRates: vat(2000), defaultFeeTaxCode: 'VAT', taxRounding: 'per_bill' });
  const E = createEbillingCommands({ db: db.db, clock: s.clock, relay: s.rt.relay });
  await E.saveSettings(ctx, settings(), 0);
  await s.cmds.setBillingOptions(ctx, matter.id, { set: {
    feeReductions: { appearAsDiscount: true, hideLinePricing: false }, discount: { kind: 'percentage', percentBasisPoints: 1_000, amountMinor: 0 },
    ebilling: { enabled: true, codeSet: 'litigation', format: 'LEDES1998BI', clientLedesId: 'NW-001', matterLedesId: 'NW-M-77' },
  } });
  for (const [tk, date, minutes] of [[partner.id, '2026-02-10', 127], [associate.id, '2026-02-11', 93], [associate.id, '2026-02-12', 7]] as const) {
    await s.cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: tk, workDate: date, rawMinutes: minutes, narrative: `Work ${date}`, taskCode: 'L110', activityCode: 'A101' });
  }
  await s.drain();
  const b = await s.billing.approve(ctx, (await s.billing.createDraft(ctx, { matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' })).billId);
  await s.drain();
  assert.ok(b.totals.taxMinor > 0 && b.lines.some((l) => l.kind === 'discount'));
  const before = (await E.exportBills(ctx, { billIds: [b.billId], mode: 'single' })).files[0]!.content;

  await s.cmds.updateFirmSettings(ctx, { taxRates: vat(1750) });
  await s.drain();
  const after = (await E.exportBills(ctx, { billIds: [b.billId], mode: 'single' })).files[0]!.content;
  const read = readLedes(after, { codes, requireClientMatterId: true });
  assert.deepEqual(read.violations, []);
  assert.equal(read.invoices[0]!.taxMinor, b.totals.taxMinor);
  assert.deepEqual(rows(after).map((x) => [x.LINE_ITEM_TAX_TYPE, x.LINE_ITEM_TAX_RATE]), rows(before).map((x) => [x.LINE_ITEM_TAX_TYPE, x.LINE_ITEM_TAX_RATE]));
  assert.ok(rows(after).every((x) => x.LINE_ITEM_TAX_TYPE !== 'VAT' || x.LINE_ITEM_TAX_RATE === '0.20'), after);
});
