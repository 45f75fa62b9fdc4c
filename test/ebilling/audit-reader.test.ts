/**
 * Audit of the validator (validate page, API and CLI): INVOICE_REPORTED_TAX_TOTAL is compared
 * with INVOICE_TAX_TOTAL as an amount, so "140.0" is the same tax as "140.00" (the format's
 * numbers need not carry every decimal), while another amount is still a violation.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildInvoice, writeLedes } from '../../src/modules/ebilling/domain/export.ts';
import { COLUMNS } from '../../src/modules/ebilling/domain/format.ts';
import { readLedes } from '../../src/modules/ebilling/domain/reader.ts';
import { bill, codes, facts, line, settings } from './support.ts';

test('INVOICE_REPORTED_TAX_TOTAL is compared as an amount, not as text', () => {
  const r = buildInvoice(facts(bill([line({ taxCode: 'VAT', taxMinor: 14_000 }), line({ taxCode: 'VAT', taxMinor: 14_000 })], { currency: 'GBP' })), 'LEDES1998BI', settings(), codes);
  assert.ok(r.ok);
  const good = writeLedes('LEDES1998BI', [r.invoice], settings());
  const col = COLUMNS.LEDES1998BI.indexOf('INVOICE_REPORTED_TAX_TOTAL');
  const withReported = (v: string) => good.split('\n').map((l, i) => {
    if (i < 2 || l === '') return l;
    const f = l.slice(0, -2).split('|');
    f[col] = v;
    return `${f.join('|')}[]`;
  }).join('\n');
  assert.equal(good.split('\n')[2]!.slice(0, -2).split('|')[col], '280.00');
  for (const same of ['280.00', '280.0', '280']) assert.deepEqual(readLedes(withReported(same), { codes }).violations, [], same);
  for (const other of ['280.01', '28.00']) {
    assert.deepEqual(readLedes(withReported(other), { codes }).violations.map((v) => [v.line, v.field]), [[3, 'INVOICE_REPORTED_TAX_TOTAL'], [4, 'INVOICE_REPORTED_TAX_TOTAL']], other);
  }
});

test('the validator refuses what a platform refuses: codes on expense lines, timekeeper classifications, negative units, unknown currencies', () => {
  const r = buildInvoice(facts(bill([
    line(),
    line({ kind: 'disbursement', itemKind: 'disbursement', minutes: null, rateMinor: null, timekeeperId: null, description: 'Copies', recordedMinor: 1_500, amountMinor: 1_500, taskCode: null, activityCode: null, expenseCode: 'E101' }),
  ])), 'LEDES1998BI', settings(), codes);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
  const good = writeLedes('LEDES1998BI', [r.invoice], settings());
  assert.deepEqual(readLedes(good, { codes }).violations, [], 'the exporter\'s own file passes');
  const cols = COLUMNS.LEDES1998BI;
  const edit = (lineNo: number, changes: Record<string, string>) => good.split('\n').map((l, i) => {
    if (i !== lineNo - 1) return l;
    const f = l.slice(0, -2).split('|');
    for (const [k, v] of Object.entries(changes)) f[cols.indexOf(k as (typeof cols)[number])] = v;
    return `${f.join('|')}[]`;
  }).join('\n');
  const fields = (text: string) => readLedes(text, { codes }).violations.map((v) => `${v.line} ${v.field}: ${v.message}`);
  const typeCol = cols.indexOf('EXP/FEE/INV_ADJ_TYPE');
  const eLine = good.split('\n').findIndex((l) => l.split('|')[typeCol] === 'E') + 1;
  const fLine = good.split('\n').findIndex((l) => l.split('|')[typeCol] === 'F') + 1;
  assert.ok(eLine > 2 && fLine > 2);
  assert.deepEqual(fields(edit(eLine, { LINE_ITEM_TASK_CODE: 'L999', LINE_ITEM_ACTIVITY_CODE: 'Z123' })),
    [`${eLine} LINE_ITEM_TASK_CODE: L999 is not a UTBMS task code`, `${eLine} LINE_ITEM_ACTIVITY_CODE: Z123 is not a UTBMS activity code`]);
  assert.deepEqual(fields(edit(eLine, { LINE_ITEM_TASK_CODE: 'L110' })), [], 'an expense may carry the task it was for');
  assert.match(fields(edit(fLine, { TIMEKEEPER_CLASSIFICATION: 'FOO' })).join('\n'), /TIMEKEEPER_CLASSIFICATION: "FOO" is not a timekeeper classification/);
  assert.deepEqual(fields(edit(fLine, { TIMEKEEPER_CLASSIFICATION: 'PT' })), [], 'a UTBMS code is a classification too');
  assert.match(fields(edit(fLine, { LINE_ITEM_NUMBER_OF_UNITS: '-2.00', LINE_ITEM_ADJUSTMENT_AMOUNT: '1400.00' })).join('\n'), /LINE_ITEM_NUMBER_OF_UNITS: must not be negative/);
  const qqq = good.split('\n').map((l, i) => (i < 2 || l === '' ? l : l.replaceAll('|USD|', '|QQQ|'))).join('\n');
  assert.match(fields(qqq).join('\n'), /INVOICE_CURRENCY: "QQQ" is not an ISO 4217 currency code/);
});
