/**
 * Audit regressions on the ledger's reports as at a date, on both databases: WIP by timekeeper
 * as at a past date counts the work that was unbilled then, even when it was billed since; a
 * report as at a date refuses a from date rather than silently ignoring it.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { ReportParamError } from '../../src/modules/ledger/index.ts';
import { ctx, firm, setup } from './support.ts';

eachDialect('audit: WIP by timekeeper as at a date counts work billed only after that date (it was unbilled then)', async (db) => {
  const s = await setup(db);
  const t = await firm(s.cmds);
  await s.cmds.recordTimeEntry(ctx, { matterId: t.matter.id, timekeeperId: t.partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice' });
  await s.drain();
  const asAt = async (to: string) => {
    const r = await s.reports.run('wip-by-timekeeper', { to });
    return [r.totals!.items, r.totals!.value];
  };
  const before = await asAt('2026-02-20');
  assert.deepEqual(before, [1, 30_000], 'an hour of partner time recorded on 10 February');
  const draft = await s.billing.createDraft(ctx, { matterId: t.matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' });
  await s.billing.approve(ctx, draft.billId);
  await s.drain();
  // Billed on 28 February: on the 20th it was still unbilled, so the report as at the 20th does not change.
  assert.deepEqual(await asAt('2026-02-20'), before);
  assert.deepEqual(await asAt('2026-02-27'), before);
  assert.deepEqual(await asAt('2026-02-28'), [0, 0]);
  assert.deepEqual(await asAt('2026-03-02'), [0, 0]);
  // Reverted to draft: the bill is no bill (a draft is not a bill), the work is unbilled at every date again.
  await s.billing.revert(ctx, draft.billId);
  await s.drain();
  assert.deepEqual(await asAt('2026-03-02'), before);
});

eachDialect('audit: a report as at a date refuses a from date (naming from) instead of ignoring it; range reports take it', async (db) => {
  const s = await setup(db);
  await firm(s.cmds);
  await s.drain();
  for (const name of ['trial-balance', 'aged-debtors', 'debtor-statement', 'debtor-breakdown', 'wip-by-timekeeper'] as const) {
    await assert.rejects(s.reports.run(name, { from: '2026-01-01', to: '2026-03-31' }), (e: unknown) => {
      assert.ok(e instanceof ReportParamError, String(e));
      assert.deepEqual(Object.keys(e.fields), ['from'], name);
      assert.match(e.fields.from!, /as at a date/);
      return true;
    });
  }
  for (const name of ['gl-detail', 'fee-allocation'] as const) assert.equal((await s.reports.run(name, { from: '2026-01-01', to: '2026-03-31' })).params.from, '2026-01-01');
});
