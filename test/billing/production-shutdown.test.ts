/**
 * A graceful shutdown while bills are being produced (the server's SIGTERM or Ctrl-C), over a
 * real SMTP server on 127.0.0.1, on both databases: the bill whose email is in flight finishes
 * and is recorded as produced; bills claimed but not begun are let go and stay pending; the
 * run shows as stopped part way at once, with nothing held, so Resume is offered at once; and
 * resumed, it produces the rest: every bill emailed exactly once.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { createProduction } from '../../src/modules/billing/production.ts';
import { eachDialect } from '../support/db.ts';
import { ctx } from './support.ts';
import { approvedBills, closeSharedPdf, logger, outputDirs, productionSetup, removeDirs, smtpHoldingFirst, smtpOutputs } from './production-support.ts';

after(closeSharedPdf);

async function until(what: string, ok: () => boolean | Promise<boolean>, limitMs = 20_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!await ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

eachDialect('a shutdown mid-production: the bill in flight is finished and recorded, the rest stay pending, the run is resumable at once and Resume emails each bill once', async (db) => {
  // The first message is held by the server until `open()`; the others are answered at once.
  const { smtp, open } = await smtpHoldingFirst();
  const dirs = outputDirs();
  const outputs = smtpOutputs(dirs, smtp.port, 20_000);
  const s = await productionSetup(db, outputs);
  try {
    const bills = await approvedBills(s, 6, { copiesToPrint: 0, useClientAddress: false, sendTo: ['ap@northwind.example'] });
    const ids = bills.map((b) => b.billId);
    const runId = await s.production.startRun(ctx, ids, { concurrency: 1 });
    await until('the first email to reach the server', () => smtp.received.length === 1);

    // The shutdown begins while that email waits for the server's answer; then the server answers.
    const stopping = s.production.stopRuns(30_000);
    open();
    await stopping;

    const view = (await s.production.runView(runId))!;
    const outcomes = view.items.map((i) => i.outcome);
    assert.equal(outcomes.filter((o) => o === 'done').length, 1, `the bill in flight is produced and recorded: ${outcomes.join(', ')}`);
    assert.equal(outcomes.filter((o) => o === 'pending').length, bills.length - 1, 'the others are left pending, none failed');
    assert.equal(smtp.received.length, 1, 'no bill begun after the shutdown began');
    assert.equal(view.stale, true, 'shown as stopped part way at once');
    assert.equal(view.resumableAt, null, 'nothing held: Resume at once');
    const claims = await db.db.selectFrom('billing_bill_production').select(['bill_id', 'claim_token']).where('bill_id', 'in', ids).execute();
    assert.deepEqual(claims.filter((c) => c.claim_token !== null), [], 'every lease let go');
    assert.equal((await db.db.selectFrom('billing_bill').select('status').where('id', 'in', ids).where('status', '=', 'finalised').execute()).length, 1);
    const stopAudit = await db.db.selectFrom('audit_log').select(['action', 'after_json']).where('entity_id', '=', runId).where('action', '=', 'billing.production_run_stopped').execute();
    assert.equal(stopAudit.length, 1, 'the stop is audited');

    // Two servers started again, Resume posted to both at once (review 61 F6): one takes the run up, the other leaves it to
    // that one; Resume produces the rest, each bill's email sent once in all, none shown as another process's.
    const again = createProduction({ db: db.db, clock: s.clock, logger, outputs }, s.billing);
    const other = createProduction({ db: db.db, clock: s.clock, logger, outputs }, s.billing);
    // (The other finds it taken: going on already, a 409 on its page, or taken between its read and its take: nothing to do.)
    const answers = await Promise.allSettled([again.resumeRun(ctx, runId), other.resumeRun(ctx, runId)]);
    for (const a of answers) if (a.status === 'rejected') assert.match(String((a.reason as Error).message), /^This run is going on: nothing to resume$/);
    assert.ok(answers.some((a) => a.status === 'fulfilled'));
    const resumed = await db.db.selectFrom('audit_log').select('action').where('entity_id', '=', runId).where('action', '=', 'billing.production_run_resumed').execute();
    assert.equal(resumed.length, 1, 'taken up once, and audited');
    await until('the resumed run to finish', async () => (await again.runView(runId))!.run.status === 'done');
    const done = (await again.runView(runId))!;
    assert.deepEqual(done.items.map((i) => i.outcome), bills.map(() => 'done'));
    assert.equal(smtp.received.length, bills.length, 'each bill emailed once');
    assert.equal(new Set(smtp.received.map((m) => m.messageId)).size, bills.length);
    assert.equal((await db.db.selectFrom('billing_bill').select('status').where('id', 'in', ids).where('status', '=', 'finalised').execute()).length, bills.length);
    const finished = await db.db.selectFrom('audit_log').select('after_json').where('entity_id', '=', runId).where('action', '=', 'billing.production_run_finished').execute();
    assert.deepEqual(finished.map((f) => JSON.parse(String(f.after_json))), [{ done: bills.length, failed: 0, busy: 0, pending: 0 }], 'its end audited once');
  } finally {
    open();
    await s.stop();
    await outputs.close();
    await smtp.close();
    removeDirs(dirs);
  }
});
