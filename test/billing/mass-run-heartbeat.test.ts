/**
 * A bill run drafted by another server process (its heartbeat fresh) is shown going on, with no
 * Resume, and a Resume posted anyway starts nothing here; once its heartbeat is stale (the
 * process stopped), the page offers Resume and Resume finishes it. A run drafting here beats.
 * On both databases.
 */
import assert from 'node:assert/strict';
import { createMassBilling, RUN_HEARTBEAT_STALE_MS, RunDraftingElsewhere } from '../../src/modules/billing/mass-commands.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { createBillingCommands } from '../../src/modules/billing/commands.ts';
import { withApp } from '../support/app.ts';
import type { TestApp } from '../support/app.ts';
import { eachDialect } from '../support/db.ts';
import { ok } from './web-support.ts';
import { ctx, firm, work } from './support.ts';

const DATE = '2026-03-01';

/** A firm with one matter's work to bill, delivered to billing; its billing commands, and a mass billing per "process" (each knows only its own runs). */
async function oneMatterToBill(t: TestApp) {
  const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
  const f = await firm(cmds);
  await work(cmds, f.matter.id, f);
  await t.runtime.relay.drain();
  const billing = createBillingCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
  return { billing, massOf: () => createMassBilling({ db: t.db.db, clock: t.clock, relay: t.runtime.relay }, billing) };
}

eachDialect('a bill run another server process is drafting (fresh heartbeat) shows no Resume and a Resume posted starts nothing; once its heartbeat is stale the page offers Resume, which finishes it', async (db) => {
  await withApp(db, async (t) => {
    // "Another process": a mass billing of its own, whose run this app's process never runs.
    const { massOf } = await oneMatterToBill(t);
    const elsewhere = massOf();
    const run = await elsewhere.createRun(ctx, { id: 'beat-run-0001', invoiceDate: DATE, upTo: DATE });
    // That process took it up and beats (then it is killed: nothing drafts it).
    await t.db.db.updateTable('billing_batch').set({ status: 'running', heartbeat_at: t.clock.now().toISOString() }).where('id', '=', run.id).execute();
    const clerk = await t.user('billing');
    const b = t.browser();
    await b.login(clerk.email);

    let page = ok(await b.get(`/billing/mass/runs/${run.id}`));
    assert.match(page, /data-status="running"/);
    assert.doesNotMatch(page, /data-action="resume"/, 'going on elsewhere: nothing to resume');
    assert.match(page, /hx-trigger="every 1s"/, 'the page follows it');
    assert.equal((await b.post(`/billing/mass/runs/${run.id}/resume`, {})).status, 303);
    await new Promise((r) => setTimeout(r, 200));
    const still = await t.db.db.selectFrom('billing_batch').select(['status', 'drafted_count']).where('id', '=', run.id).executeTakeFirstOrThrow();
    assert.deepEqual([still.status, Number(still.drafted_count)], ['running', 0], 'Resume started no second worker here');

    // Taken up by a command here (the CLI's --run-id, the API's same id again): refused, nothing changed.
    const here = massOf();
    await assert.rejects(here.runBatch(ctx, run.id), (e: unknown) => e instanceof RunDraftingElsewhere && e.status === 409 && e.runId === run.id
      && /Bill run beat-run-0001 is being drafted by another server process \(last heard from at [^)]+\): it was not started again here/.test(e.message));
    const token = await t.token(clerk.email);
    const api = await b.postJson('/api/v1/bill-runs', { id: run.id, invoiceDate: DATE, upTo: DATE, wait: true }, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(api.status, 409, api.text);
    assert.equal(api.json().error.code, 'drafting_elsewhere');
    // A Bill all of its own (a new run) finds every matter queued in that run: refused naming it, no empty run.
    const all = await b.postJson('/api/v1/bill-runs', { invoiceDate: DATE, upTo: DATE }, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(all.status, 409, all.text);
    assert.equal(all.json().error.code, 'queued_elsewhere');
    assert.match(all.json().error.message, /already queued in bill run beat-run-0001, which has not finished: nothing was created/);
    assert.equal((await t.db.db.selectFrom('billing_batch').select('id').execute()).length, 1, 'no second run');
    const unmoved = await t.db.db.selectFrom('billing_batch').select(['status', 'drafted_count', 'updated_at']).where('id', '=', run.id).executeTakeFirstOrThrow();
    assert.deepEqual([unmoved.status, Number(unmoved.drafted_count)], ['running', 0]);
    assert.equal((await t.db.db.selectFrom('audit_log').select('action').where('entity_id', '=', run.id).where('action', 'in', ['billing.bill_run_started', 'billing.bill_run_resumed', 'billing.bill_run_failed']).execute()).length, 0, 'no start, resume or failure recorded');
    // The API says what the page says: drafted elsewhere, not stalled (review 57 F11).
    const runApi = async () => (await b.get(`/api/v1/bill-runs/${run.id}`, { authorization: `Bearer ${token}` })).json();
    assert.deepEqual([(await runApi()).status, (await runApi()).stalled], ['running', false]);

    // The heartbeat goes stale: stopped. Resume is offered, and finishes the run here (which beats as it drafts).
    t.clock.advanceMs(RUN_HEARTBEAT_STALE_MS + 1_000);
    assert.deepEqual([(await runApi()).status, (await runApi()).stalled], ['running', true], 'no process drafts it: stalled');
    page = ok(await b.get(`/billing/mass/runs/${run.id}`));
    assert.match(page, /data-action="resume"/);
    assert.equal((await b.post(`/billing/mass/runs/${run.id}/resume`, {})).status, 303);
    for (let i = 0; i < 200 && !/data-status="done"/.test(page); i++) {
      await new Promise((r) => setTimeout(r, 30));
      page = ok(await b.get(`/billing/mass/runs/${run.id}`));
    }
    assert.match(page, /data-status="done"/);
    const done = await t.db.db.selectFrom('billing_batch').select(['drafted_count', 'heartbeat_at']).where('id', '=', run.id).executeTakeFirstOrThrow();
    assert.equal(Number(done.drafted_count), 1);
    assert.equal(done.heartbeat_at, t.clock.now().toISOString(), 'this process said it was drafting it');
    assert.deepEqual([(await runApi()).status, (await runApi()).stalled], ['done', false]);
  });
});

eachDialect('two takers of one bill run at once (two server processes, a double post): one drafts it, the other is refused and records nothing', async (db) => {
  await withApp(db, async (t) => {
    // Two processes' mass billings (each knows only its own runs), both taking up the same pending run.
    const { massOf } = await oneMatterToBill(t);
    const [one, two] = [massOf(), massOf()];
    const run = await one.createRun(ctx, { id: 'twin-run-0001', invoiceDate: DATE, upTo: DATE });
    const outcomes = await Promise.allSettled([one.runBatch(ctx, run.id), two.runBatch(ctx, run.id)]);
    const done = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
    const refused = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []));
    // The other is refused while the first drafts it, or (on a busy machine, the first done before the second reads it)
    // finds it done and changes nothing: either way it is drafted once, started once.
    assert.ok(done.length >= 1 && done.every((b) => b.status === 'done'), 'one drafts it');
    for (const r of refused) assert.ok(r instanceof RunDraftingElsewhere, String(r));
    const started = await t.db.db.selectFrom('audit_log').select('action').where('entity_id', '=', run.id).where('action', '=', 'billing.bill_run_started').execute();
    assert.equal(started.length, 1, 'started once');
    const row = await t.db.db.selectFrom('billing_batch').select(['status', 'drafted_count']).where('id', '=', run.id).executeTakeFirstOrThrow();
    assert.deepEqual([row.status, Number(row.drafted_count)], ['done', 1]);
  });
});
