/**
 * Audit of bill runs' state changes on both databases: a run that fails is recorded as failed
 * in the same transaction as its audit row, and started and resumed runs are audited too
 * (every state change of a run is audit-logged).
 */
import assert from 'node:assert/strict';
import { createBillingCommands, createMassBilling } from '../../src/modules/billing/index.ts';
import { eachDialect } from '../support/db.ts';
import { ctx, firm, setup, work } from './support.ts';

eachDialect('audit: a bill run that fails is marked failed with an audit row naming the error; starting and resuming it are audited', async (db) => {
  const s = await setup(db);
  const f = await firm(s.cmds);
  await work(s.cmds, f.matter.id, f);
  await s.drain();
  // A relay whose kick fails once armed: the run fails after its first chunk (an error that is no refusal).
  let armed = false;
  const relay = { kick: () => { if (armed) throw new Error('injected failure'); s.rt.relay.kick(); } } as unknown as typeof s.rt.relay;
  const cmds = createBillingCommands({ db: db.db, clock: s.clock, relay });
  const mass = createMassBilling({ db: db.db, clock: s.clock, relay }, cmds);
  const run = await mass.createRun(ctx, { id: 'audit-fail-0001', invoiceDate: '2026-03-01', upTo: '2026-03-01' });
  armed = true;
  await assert.rejects(mass.runBatch(ctx, run.id), /injected failure/);
  const batch = await mass.findBatch(run.id);
  assert.equal(batch?.status, 'failed');
  assert.match(batch?.error ?? '', /injected failure/);
  const rows = await db.db.selectFrom('audit_log').select(['action', 'entity_id']).where('entity_id', '=', run.id).execute();
  assert.deepEqual(rows.map((r) => r.action).sort(), ['billing.bill_run_created', 'billing.bill_run_failed', 'billing.bill_run_started']);

  // Resumed: audited with the failure it resumes from, then finished.
  armed = false;
  const done = await mass.runBatch(ctx, run.id);
  assert.equal(done.status, 'done');
  const after = await db.db.selectFrom('audit_log').select(['action', 'before_json']).where('entity_id', '=', run.id).execute();
  assert.deepEqual(after.map((r) => r.action).sort(), ['billing.bill_run_created', 'billing.bill_run_failed', 'billing.bill_run_finished', 'billing.bill_run_resumed', 'billing.bill_run_started']);
  const resumed = after.find((r) => r.action === 'billing.bill_run_resumed')!;
  assert.match(String(resumed.before_json), /"status":"failed".*injected failure/);
});
