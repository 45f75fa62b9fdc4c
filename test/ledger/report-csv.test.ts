/**
 * A report as CSV carries what the page shows: header, rows, totals, and its notes after a
 * blank line (a statement's unallocated credit, "out of balance"...), cells a spreadsheet would
 * run as formulas defused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { reportToCsv } from '../../src/modules/ledger/index.ts';

type Report = Parameters<typeof reportToCsv>[0];
const base: Report = {
  name: 'debtor-statement', title: 'Debtor statement', subtitle: 'As at 2026-03-31', params: { from: null, to: '2026-03-31', clientId: 'c1' }, currency: 'USD',
  columns: [{ key: 'bill', label: 'Bill', kind: 'text' }, { key: 'due', label: 'Due', kind: 'money' }] as Report['columns'],
  rows: [{ bill: '1.1.2', due: 210_758 }, { bill: '=HYPERLINK("x")', due: 40_000 }], totals: { bill: 'Total payable', due: 250_758 }, notes: [], chartSvg: null,
};

test('reportToCsv: the notes follow the table after a blank line; none, nothing added', () => {
  const cases: [string, string[]][] = [
    ['no notes', []],
    ['one note (the walk\'s unallocated credit)', ['Unallocated credit held: 1219.82 (to be applied to the balances above)']],
    ['a note with a comma and a formula-like start', ['-Only amounts in USD are counted, others left out']],
  ];
  for (const [name, notes] of cases) {
    const csv = reportToCsv({ ...base, notes });
    const lines = csv.split('\r\n');
    assert.equal(lines.pop(), '', `${name}: ends with a line break`);
    assert.deepEqual(lines.slice(0, 4), ['Bill,Due', '1.1.2,2107.58', '"\'=HYPERLINK(""x"")",400.00', 'Total payable,2507.58'], name);
    if (notes.length === 0) assert.equal(lines.length, 4, name);
    else assert.deepEqual(lines.slice(4), ['', ...notes.map((n) => (/^[-=+@]/.test(n) ? `'${n}` : n)).map((n) => (/[",]/.test(n) ? `"${n.replace(/"/g, '""')}"` : n))], name);
  }
});
