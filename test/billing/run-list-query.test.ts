/**
 * A run's page links to the mass billing list as the run chose from it: runListQuery writes the
 * run's dates, template, terms and filters back as the list's form, so parsing that link gives
 * the run's filters again. An up-to date that is the invoice date is left blank (it follows the
 * invoice date, as on a fresh list). A client billing no longer knows by number is named by its
 * id (the list refuses it, rather than listing every client); a matter it no longer has is left out.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseMassForm, runListQuery } from '../../src/modules/billing/mass-routes.ts';

const TODAY = '2026-12-06';

/** The run a list's form makes (as createRun keeps it: the filters without the dates, beside the dates). */
function runOf(raw: Record<string, string>, currency: string) {
  const parsed = parseMassForm(raw, TODAY, currency, (file) => (file === '7.1' ? 'matter-7-1' : null), raw.client ? { id: 'client-12' } : null);
  assert.deepEqual(parsed.errors, {}, JSON.stringify(raw));
  const { invoiceDate, upTo, ...filters } = parsed.filters;
  return { parsed, run: { invoiceDate, upTo, template: parsed.template, paymentTermsDays: parsed.paymentTermsDays, filters } };
}

const CASES: [string, Record<string, string>, string][] = [
  ['dates only', { invoiceDate: '2026-11-30', upTo: '2026-11-30' }, 'USD'],
  ['every filter, amounts as caps', {
    invoiceDate: '2026-11-30', upTo: '2026-11-15', template: 'total-only', terms: '14', client: '12', matter: '7.1', responsible: 'tk-1', billingTk: 'tk-2',
    cycle: 'monthly', nextFrom: '2026-11-01', nextTo: '2026-11-30', cap: 'amount', capAmount: '1500.00', timeFrom: '2026-10-01', timeTo: '2026-10-31',
    timeTk: 'tk-3', timeCap: 'amount', timeCapAmount: '250.50', disbFrom: '2026-09-01', disbTo: '2026-09-30', disbCode: 'COURT', expensesOnly: 'yes',
  }, 'USD'],
  ['the matters\' own caps, terms 0, yen', { invoiceDate: '2026-11-30', upTo: '2026-11-30', terms: '0', cap: 'matter', timeCap: 'matter' }, 'JPY'],
  ['a yen amount', { invoiceDate: '2026-11-30', upTo: '2026-11-30', cap: 'amount', capAmount: '120000' }, 'JPY'],
];

test('runListQuery: a run\'s choices as the list\'s form, parsed back to the same filters', () => {
  for (const [name, raw, currency] of CASES) {
    const { parsed, run } = runOf(raw, currency);
    const q = runListQuery(run, { clientNumber: 12, fileNumber: '7.1' }, currency);
    const { upTo, ...rest } = raw;
    assert.deepEqual(Object.fromEntries(new URLSearchParams(q)), upTo === raw.invoiceDate ? rest : raw, name);
    const again = runOf(Object.fromEntries(new URLSearchParams(q)), currency);
    assert.deepEqual(again.parsed.filters, parsed.filters, name);
  }
});

test('runListQuery: a client billing no longer knows is named by its id, a matter it no longer has is left out, the rest kept', () => {
  const { run } = runOf({ invoiceDate: '2026-11-30', upTo: '2026-11-30', client: '12', matter: '7.1', cycle: 'monthly' }, 'USD');
  assert.equal(runListQuery(run, { clientNumber: null, fileNumber: null }, 'USD'), 'invoiceDate=2026-11-30&cycle=monthly&clientId=client-12');
  // A run kept before its filters were (no filters at all): its dates only.
  assert.equal(runListQuery({ invoiceDate: '2026-11-30', upTo: '2026-11-01', template: null, paymentTermsDays: null, filters: null }, { clientNumber: null, fileNumber: null }, 'USD'),
    'invoiceDate=2026-11-30&upTo=2026-11-01');
});
