/**
 * `bin/lexbill ledes validate` (ledesValidate, no database): a 1998BI file whose
 * INVOICE_CURRENCY is no ISO code is reported as a violation with its amounts as plain
 * numbers (exit 1), not a crash; a good file prints its amounts in its currency (exit 0).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ledesValidate } from '../../src/cli/ledes.ts';
import { buildInvoice, writeLedes } from '../../src/modules/ebilling/domain/export.ts';
import { COLUMNS } from '../../src/modules/ebilling/domain/format.ts';
import { bill, codes, facts, line, settings } from './support.ts';

test('ledes validate: a 1998BI file whose INVOICE_CURRENCY is no ISO code is reported, amounts as plain numbers, exit 1; a good one exits 0', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-ledes-'));
  try {
    const r = buildInvoice(facts(bill([line()], { currency: 'GBP' })), 'LEDES1998BI', settings(), codes);
    assert.ok(r.ok);
    const good = writeLedes('LEDES1998BI', [r.invoice], settings());
    const lines = good.split('\n');
    const f = lines[2]!.slice(0, -2).split('|');
    f[COLUMNS.LEDES1998BI.indexOf('INVOICE_CURRENCY')] = 'gbp';
    lines[2] = `${f.join('|')}[]`;
    for (const [name, content, code] of [['bad.txt', lines.join('\n'), 1], ['good.txt', good, 0]] as const) {
      const file = join(dir, name);
      writeFileSync(file, content);
      const said: string[] = [];
      assert.equal(ledesValidate([file], (s) => said.push(s)), code, said.join('\n'));
      const text = said.join('\n');
      if (code === 1) {
        assert.match(text, /line 3 INVOICE_CURRENCY:/);
        assert.match(text, /total 700\.00, tax /, text);
      } else {
        assert.match(text, /total (£|GBP ?)700\.00/, text);
        assert.match(text, /valid LEDES1998BI, 1 invoice/);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
