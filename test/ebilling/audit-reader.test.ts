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
