/**
 * A bill run chooses its matters when it is created and drafts them later (in chunks, or days
 * later when a stopped run is resumed). A matter whose work was billed meanwhile must be
 * skipped as createDraft would refuse it: what rides on a bill made for work (the quote's
 * amount, an every-cycle fee with no billing cycle) never makes a bill alone, and a run never
 * drafts an interest-only bill. The same holds when a chunk meets a concurrent writer and the
 * run goes matter by matter; there, a draft the run itself made before it stopped counts as drafted.
 */
import assert from 'node:assert/strict';
import { createMassBilling } from '../../src/modules/billing/mass-commands.ts';
import { conflict } from '../../src/shared/web/errors.ts';
import { eachDialect } from '../support/db.ts';
import { setup as ledgerSetup } from '../ledger/support.ts';
import { assertBillInvariants, ctx, firm } from './support.ts';

const dates = { invoiceDate: '2026-03-01', upTo: '2026-03-01' };
const NOTHING = /^No billable items on or before 2026-03-01: no chargeable WIP or disbursements, and no fixed-fee instalment or cycle's fee due$/;

eachDialect('a run skips a matter whose work was billed after the run was created: no second quote or fixed fee, no interest-only bill, in chunks or matter by matter', async (db) => {
  const s = await ledgerSetup(db);
  const { partner, client } = await firm(s.cmds);
  await s.cmds.updateFirmSettings(ctx, { paymentTermsDays: 30, interest: { enabled: true, annualRateBasisPoints: 1_000, graceDays: 0 } });
  const open = async (name: string, extra: Record<string, unknown>, options: Record<string, unknown> | null) => {
    const m = await s.cmds.openMatter(ctx, { clientId: client.id, name, responsibleTimekeeperId: partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH', ...extra } as never);
    if (options) await s.cmds.setBillingOptions(ctx, m.id, { set: options as never });
    return m;
  };
  const hour = (matterId: string, workDate: string) => s.cmds.recordTimeEntry(ctx, { matterId, timekeeperId: partner.id, workDate, rawMinutes: 60, narrative: 'Advice' });
  const quote = await open('Quote of fees', {}, { quote: { amountMinor: 100_000, includes: 'fees', ifWipBelow: 'bill_quote', ifWipAbove: 'wip_only' } });
  // A fixed fee of 1,000.00 every cycle, with no billing cycle: the fee rides on each bill made for work.
  const ffNone = await open('Fixed fee, no cycle', { billingCycle: 'none' }, { arrangement: 'fixed_fee', quote: { amountMinor: 100_000 }, fixedFee: { mode: 'every_cycle', schedule: [] } });
  const overdue = await open('Hourly, an old bill unpaid', {}, null);
  // The hourly matter's old bill (2025-11-01, due 2025-12-01), unpaid: interest by policy is due on it.
  await hour(overdue.id, '2025-10-10');
  await s.drain();
  const old = await s.billing.createDraft(ctx, { matterId: overdue.id, invoiceDate: '2025-11-01', upTo: '2025-11-01' });
  await s.billing.approve(ctx, old.billId);
  const matters = [quote, ffNone, overdue];
  for (const m of matters) await hour(m.id, '2026-02-10');
  await s.drain();

  const mass = createMassBilling({ db: db.db, clock: s.clock, relay: s.rt.relay }, s.billing);
  const ids = matters.map((m) => m.id);
  const listed = await mass.candidates(dates, { matterIds: ids, handPicked: true });
  assert.deepEqual(listed.map((r) => [r.name, r.eligible]), matters.map((m) => [m.name, true]), 'each has an hour to bill when the run is created');
  const run = await mass.createRun(ctx, { id: 'run-recheck-1', ...dates, matterIds: ids });
  assert.equal(run.matterCount, 3);

  // Before the run reaches them, a clerk bills each matter's hour by hand, dated 2026-02-20: the
  // old bill's interest from then to the run's date is still due.
  const byHand = new Map<string, number>();
  for (const m of matters) {
    const b = await s.billing.createDraft(ctx, { matterId: m.id, invoiceDate: '2026-02-20', upTo: '2026-02-20' });
    byHand.set(m.id, b.totals.totalMinor);
    await s.billing.approve(ctx, b.billId);
  }
  await s.drain();
  assert.equal(byHand.get(quote.id), 100_000, 'the quote rode on the bill made for the hour');
  assert.equal(byHand.get(ffNone.id), 100_000, 'the fee rode on the bill made for the hour');
  assert.ok(byHand.get(overdue.id)! > 30_000, 'the hour and the interest due on the old bill');
  const billsOf = async () => (await db.db.selectFrom('billing_bill').select(['matter_id', 'status', 'batch_id']).where('status', '<>', 'deleted').execute())
    .map((b) => `${b.matter_id}:${b.status}:${b.batch_id ?? '-'}`).sort();
  const before = await billsOf();

  // The run: each matter skipped with createDraft's reason; nothing drafted.
  const done = await mass.runBatch(ctx, run.id);
  assert.deepEqual([done.status, done.draftedCount, done.skippedCount], ['done', 0, 3]);
  const rows = await mass.batchRows(run.id);
  assert.equal(rows.length, 3);
  for (const r of rows) {
    assert.equal(r.state, 'skipped', r.matterId);
    assert.match(r.reason ?? '', NOTHING, r.matterId);
  }
  assert.deepEqual(await billsOf(), before, 'no bill drafted by the run');

  // Matter by matter (a chunk that met a concurrent writer): the same refusals, and no interest-only bill.
  let raced = false;
  const outcomes = await mass.draftMatters(ctx, ids, { ...dates, request: {} }, {
    onChunk: async () => { if (!raced) { raced = true; throw conflict('another writer took an item meanwhile'); } },
  });
  assert.ok(raced, 'the chunk met the writer and the run went matter by matter');
  assert.deepEqual(outcomes.map((o) => o.matterId), ids);
  for (const o of outcomes) {
    assert.equal(o.ok, false, JSON.stringify(o));
    if (!o.ok) assert.match(o.reason, NOTHING, o.matterId);
  }
  assert.deepEqual(await billsOf(), before, 'nothing drafted matter by matter either');
  // The composer still drafts the interest alone when a clerk asks for it.
  const interest = await s.billing.createDraft(ctx, { matterId: overdue.id, ...dates });
  assert.deepEqual(interest.lines.map((l) => l.kind), ['interest']);
  await assertBillInvariants(db.db, s.billing, ids);
});

eachDialect('matter by matter, a draft the run made before it stopped (its row not yet settled) counts as drafted, not refused as the matter\'s other draft', async (db) => {
  const s = await ledgerSetup(db);
  const { partner, client, matter } = await firm(s.cmds);
  const second = await s.cmds.openMatter(ctx, { clientId: client.id, name: 'Second', responsibleTimekeeperId: partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH' });
  for (const m of [matter, second]) await s.cmds.recordTimeEntry(ctx, { matterId: m.id, timekeeperId: partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice' });
  await s.drain();
  const mass = createMassBilling({ db: db.db, clock: s.clock, relay: s.rt.relay }, s.billing);
  const run = await mass.createRun(ctx, { id: 'run-recheck-2', ...dates, matterIds: [matter.id, second.id] });
  // What matter by matter drafting committed for the first matter before the process stopped.
  const made = await s.billing.createDraft(ctx, { matterId: matter.id, ...dates, batchId: run.id, byRun: true });
  // Resumed, and the chunk meets a concurrent writer again: matter by matter.
  let raced = false;
  const outcomes = await mass.draftMatters(ctx, [matter.id, second.id], { ...dates, request: {}, batchId: run.id }, {
    onChunk: async () => { if (!raced) { raced = true; throw conflict('another writer took an item meanwhile'); } },
  });
  assert.ok(raced);
  assert.deepEqual(outcomes.map((o) => [o.matterId, o.ok]), [[matter.id, true], [second.id, true]], JSON.stringify(outcomes));
  assert.equal(outcomes[0]!.ok && outcomes[0]!.bill.billId, made.billId, 'the run\'s own draft, not a refusal');
  const drafts = await db.db.selectFrom('billing_bill').select(['matter_id', 'batch_id']).where('status', '=', 'draft').execute();
  assert.deepEqual(drafts.map((d) => d.batch_id), [run.id, run.id]);
  // A draft of the same matter made outside the run is still refused with its reason.
  const other = await mass.createRun(ctx, { id: 'run-recheck-3', ...dates, matterIds: [matter.id] });
  raced = false;
  const [o] = await mass.draftMatters(ctx, [matter.id], { ...dates, request: {}, batchId: other.id }, {
    onChunk: async () => { if (!raced) { raced = true; throw conflict('another writer took an item meanwhile'); } },
  });
  assert.equal(o?.ok, false);
  if (o && !o.ok) assert.match(o.reason, /draft/);
});
