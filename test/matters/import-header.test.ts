/**
 * What spreadsheets write around a CSV's data: blank rows do not count towards the row
 * limit, nameless empty columns at the end are left out (a nameless column holding values is
 * named in the refusal), and a file separated by semicolons or tabs is told so.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ImportFileError, readTable } from '../../src/modules/matters/import.ts';

const HEADER = 'file_number,date,timekeeper,hours,narrative';
const row = (n: number) => `1.1,2026-03-0${1 + (n % 9)},MH,0.5,Call ${n}`;

test('blank rows do not count towards the row limit; data rows past it are refused', () => {
  const rows = Array.from({ length: 5 }, (_, n) => row(n));
  const withBlanks = [HEADER, ...rows, ',,,,', '', ',,,,'].join('\r\n');
  const t = readTable('time-entries', withBlanks, { maxRows: 5 });
  assert.equal(t.rows.length, 5);
  assert.throws(() => readTable('time-entries', [HEADER, ...rows, row(6)].join('\n'), { maxRows: 5 }),
    (e: unknown) => e instanceof ImportFileError && /more than 5 rows \(the limit per file\)/.test(e.message));
});

test('nameless empty columns at the end are left out; one holding a value, or a nameless column inside, is named', () => {
  const t = readTable('time-entries', `${HEADER},,\n${row(1)},,\n${row(2)},, \n`);
  assert.deepEqual(t.columns, ['file_number', 'date', 'timekeeper', 'hours', 'narrative']);
  assert.equal(t.rows.length, 2);
  assert.deepEqual(t.problems, []);
  assert.throws(() => readTable('time-entries', `${HEADER},,\n${row(1)},,\n${row(2)},,oops\n`),
    (e: unknown) => e instanceof ImportFileError && /no name for column 7, which holds "oops" in row 3: name the column or remove it/.test(e.message));
  assert.throws(() => readTable('time-entries', 'file_number,,date,timekeeper,hours,narrative\n1.1,,2026-03-01,MH,1,x\n'),
    (e: unknown) => e instanceof ImportFileError && /no name for column 2: name it or remove the column/.test(e.message));
});

test('a file separated by semicolons or tabs is told so, not "unknown column"', () => {
  for (const [sep, said] of [[';', /separated by semicolons \(;\), not commas: save it as "CSV UTF-8 \(comma delimited\)"/], ['\t', /separated by tabs, not commas/]] as const) {
    const text = `${HEADER.replaceAll(',', sep)}\n${row(1).replaceAll(',', sep)}\n`;
    assert.throws(() => readTable('time-entries', text), (e: unknown) => e instanceof ImportFileError && said.test(e.message), JSON.stringify(sep));
  }
});
