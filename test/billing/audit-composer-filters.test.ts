/**
 * A bill's time or disbursement date range that ends before it starts takes nothing: the bill
 * would silently leave that work out. Refused naming the range's end, nothing drafted.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requestErrors } from '../../src/modules/billing/domain/lifecycle.ts';
import type { BillRequest } from '../../src/modules/billing/domain/lifecycle.ts';
import { eachDialect } from '../support/db.ts';
import { ctx, firm, refused, setup, work } from './support.ts';

test('requestErrors: a filter range ending before it starts is refused at its end; a one-day or open range stands', () => {
  const cases: [string, BillRequest['filters'], Record<string, string>][] = [
    ['time backwards', { time: { from: '2026-02-10', to: '2026-02-01' } }, { 'filters.time.to': 'must be on or after the from date' }],
    ['disbursements backwards', { disbursements: { from: '2026-02-10', to: '2026-02-09' } }, { 'filters.disbursements.to': 'must be on or after the from date' }],
    ['both backwards', { time: { from: '2026-02-02', to: '2026-02-01' }, disbursements: { from: '2026-02-02', to: '2026-02-01' } },
      { 'filters.time.to': 'must be on or after the from date', 'filters.disbursements.to': 'must be on or after the from date' }],
    ['one day', { time: { from: '2026-02-10', to: '2026-02-10' } }, {}],
    ['from only', { time: { from: '2026-02-10' } }, {}],
    ['to only', { disbursements: { to: '2026-02-10' } }, {}],
    ['not a date is said so, not compared', { time: { from: '2026-02-31', to: '2026-02-01' } }, { 'filters.time.from': 'must be a date (YYYY-MM-DD)' }],
  ];
  for (const [name, filters, expected] of cases) {
    assert.deepEqual(requestErrors('2026-02-28', '2026-02-28', { filters }), expected, name);
  }
});

eachDialect('a draft whose time range ends before it starts is refused naming filters.time.to; nothing drafted', async (db) => {
  const s = await setup(db);
  const { partner, associate, matter } = await firm(s.cmds);
  await work(s.cmds, matter.id, { partner, associate });
  await s.drain();
  const e = await refused(s.billing.createDraft(ctx, { matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28', request: { filters: { time: { from: '2026-02-20', to: '2026-02-01' } } } }), 422);
  assert.equal(e.status, 422);
  assert.deepEqual(Object.keys(e.fields), ['filters.time.to']);
  assert.equal(await db.db.selectFrom('billing_bill').select('id').executeTakeFirst(), undefined, 'no bill');
});
