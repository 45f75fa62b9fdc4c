/**
 * Mass billing against the real database: the bulk drafting and approving paths write
 * exactly what the single-bill commands write (two identical firms, one billed one bill at
 * a time, the other in bulk: bills, lines, allocations, audit rows and events compared with
 * ids canonicalised), the eligible list and its reasons, and runs (one batch, resumable,
 * each matter once even when run twice).
 */
import assert from 'node:assert/strict';
import { prng } from '../../src/cli/demo.ts';
import { RUN_HEARTBEAT_STALE_MS, RUN_STALLED_MS, RunQueuedElsewhere, createMassBilling } from '../../src/modules/billing/mass-commands.ts';
import { seedDemoFirm } from '../../src/modules/matters/index.ts';
import type { Executor } from '../../src/shared/db.ts';
import { systemContext } from '../../src/shared/events.ts';
import { HttpError } from '../../src/shared/web/errors.ts';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { ctx, firm, mattersStatus, setup } from './support.ts';
import { holderColumn } from '../../src/modules/billing/store.ts';

/** Live bills with their lines, allocations, items, and the events and audit rows one phase (correlation id) wrote. */
async function snapshot(db: Executor, eventType: string, action: string, correlationId: string, opts: { number?: boolean } = {}) {
  const bills = await db.selectFrom('billing_bill').selectAll().where('status', '<>', 'deleted').orderBy('file_number').execute();
  const order = new Map(bills.map((b, i) => [b.id as string, i]));
  const ids = [...order.keys()];
  const byBill = <T extends { bill_id: string }>(rows: T[]) => rows.filter((r) => order.has(r.bill_id)).sort((a, b) => order.get(a.bill_id)! - order.get(b.bill_id)!);
  const lines = byBill(await db.selectFrom('billing_bill_line').selectAll().orderBy('line_no').execute() as { bill_id: string }[]);
  const allocs = byBill(await db.selectFrom('billing_bill_allocation').selectAll().orderBy('timekeeper_id').execute() as { bill_id: string }[]);
  const events = (await db.selectFrom('outbox').select(['type', 'payload', 'correlation_id', 'actor_id', 'occurred_at', 'version']).where('type', '=', eventType)
    .where('correlation_id', '=', correlationId).orderBy('seq').execute())
    .map((e) => ({ ...e, payload: JSON.parse(e.payload as string) as { billId: string } }))
    .sort((a, b) => order.get(a.payload.billId)! - order.get(b.payload.billId)!);
  const audits = (await db.selectFrom('audit_log').select(['action', 'entity_type', 'entity_id', 'before_json', 'after_json', 'actor_label', 'correlation_id', 'at'])
    .where('action', '=', action).where('correlation_id', '=', correlationId).execute()).sort((a, b) => order.get(a.entity_id as string)! - order.get(b.entity_id as string)!);
  // The items each bill holds (its live lines), as the copy has them.
  const wip = ids.length ? await db.selectFrom('billing_wip').select(['id', holderColumn()]).where('id', 'in', db.selectFrom('billing_bill_line').select('item_id').where('bill_id', 'in', ids).where('live', '=', 1)).orderBy('id').execute() : [];
  let text = JSON.stringify({ bills, lines, allocs, events, audits, wip: wip.map((w) => [w.id, order.get(w.bill_id as string)]) });
  // Bill ids differ between phases: each becomes its position.
  for (const [id, i] of order) text = text.split(id).join(`bill#${i}`);
  const out = JSON.parse(text) as Record<string, unknown>;
  if (opts.number === false) {
    // Numbers: checked apart (a matter's second approval takes the next sequence).
    text = JSON.stringify(out).replace(/"(number|sequence)":("[^"]*"|\d+)/g, '"$1":"n"').replace(/\\"number\\":\\"[^\\]*\\"/g, '\\"number\\":\\"n\\"');
    return JSON.parse(text) as unknown;
  }
  return out;
}

async function demoFirm(db: TestDb, matters: number, entries: number) {
  const s = await setup(db, { start: '2026-03-02T09:00:00Z' });
  await seedDemoFirm(s.cmds, { matters, entriesPerMatter: entries, seed: 7, random: prng, ctx, fixedCharges: true, asOf: '2026-03-01' });
  await s.drain();
  return s;
}

eachDialect('bulk drafting and approving write exactly what the single-bill commands write', async (db) => {
  const s = await demoFirm(db, 24, 6);
  const m = createMassBilling({ db: db.db, clock: s.clock, relay: s.rt.relay }, s.billing);
  const f = { invoiceDate: '2026-03-01', upTo: '2026-03-01' };
  const ids = (await m.candidates(f)).filter((r) => r.eligible).map((r) => r.matterId);
  assert.ok(ids.length >= 15, `most demo matters are eligible (${ids.length})`);
  const request = { template: 'standard', paymentTermsDays: 14 };
  const phase = (n: string) => systemContext(`phase-${n}`, 'test');

  // Drafting: one bill at a time, then (the drafts deleted: items unbilled again) in chunks of 7.
  const refusedOne: string[] = [];
  for (const id of ids) {
    try { await s.billing.createDraft(phase('1'), { matterId: id, ...f, request }); } catch (e) { refusedOne.push((e as Error).message); }
  }
  const single = await snapshot(db.db, 'billing.bill_drafted', 'billing.bill_drafted', 'phase-1');
  for (const b of await db.db.selectFrom('billing_bill').select('id').where('status', '=', 'draft').execute()) await s.billing.deleteDraft(ctx, b.id as string);
  const outcomes = await m.draftMatters(phase('2'), ids, { ...f, request }, { chunk: 7 });
  assert.deepEqual(outcomes.filter((o) => !o.ok).map((o) => (o as { reason: string }).reason), refusedOne, 'the same matters refused, for the same reasons');
  const bulk = await snapshot(db.db, 'billing.bill_drafted', 'billing.bill_drafted', 'phase-2');
  assert.ok((bulk as { bills: unknown[] }).bills.length >= 15);
  assert.deepEqual(JSON.parse(JSON.stringify(bulk).split('phase-2').join('phase-1')), single);
  // The run's payment terms: due 14 days after the invoice date.
  const due = await db.db.selectFrom('billing_bill').select('due_date').where('status', '=', 'draft').distinct().execute();
  assert.deepEqual(due.map((d) => d.due_date), ['2026-03-15']);

  // Approving: one at a time, then (those bills deleted and the matters drafted again) in bulk; a bill on hold is refused the same way.
  const drafts = async () => (await db.db.selectFrom('billing_bill').select(['id', 'file_number']).where('status', '=', 'draft').orderBy('file_number').execute()).map((b) => b.id as string);
  let list = await drafts();
  await s.billing.setOnHold(ctx, list[0]!, true);
  const refusals: string[] = [];
  for (const id of list) {
    try { await s.billing.approve(phase('3'), id); } catch (e) { refusals.push((e as Error).message); }
  }
  assert.match(refusals[0]!, /on hold/);
  const approvedOne = await snapshot(db.db, 'billing.bill_approved', 'billing.bill_approved', 'phase-3', { number: false });
  const numbersOne = await db.db.selectFrom('billing_bill').select(['number', 'file_number']).where('status', '=', 'approved').execute();
  assert.ok(numbersOne.every((b) => b.number === `${b.file_number}.1`));
  for (const b of await db.db.selectFrom('billing_bill').select('id').where('status', '=', 'approved').execute()) await s.billing.deleteBill(ctx, b.id as string);
  await s.billing.deleteDraft(ctx, list[0]!);
  await m.draftMatters(phase('4'), ids, { ...f, request });
  list = await drafts();
  await s.billing.setOnHold(ctx, list[0]!, true);
  const approved = await m.approveMany(phase('5'), list, { chunk: 5 });
  assert.deepEqual(approved.filter((a) => !a.ok).map((a) => (a as { reason: string }).reason), refusals);
  const approvedMany = await snapshot(db.db, 'billing.bill_approved', 'billing.bill_approved', 'phase-5', { number: false });
  assert.deepEqual(JSON.parse(JSON.stringify(approvedMany).split('phase-5').join('phase-3')), approvedOne);
  const numbersMany = await db.db.selectFrom('billing_bill').select(['number', 'file_number']).where('status', '=', 'approved').execute();
  assert.equal(numbersMany.length, numbersOne.length);
  assert.ok(numbersMany.every((b) => b.number === `${b.file_number}.2`), 'the next number of each matter');

  // Matters follows the bulk path's events as it follows the single path's (items billed).
  await s.drain();
  const billed = await db.db.selectFrom('billing_bill_line').select('item_id').where('item_id', 'is not', null).where('live', '=', 1)
    .where('bill_id', 'in', (await db.db.selectFrom('billing_bill').select('id').where('status', '=', 'approved').execute()).map((b) => b.id as string)).execute();
  const st = await mattersStatus(db.db, billed.map((b) => b.item_id as string));
  assert.ok(Object.values(st).length > 0 && Object.values(st).every((v) => v === 'billed'), JSON.stringify(st));
  await s.rt.relay.stop();
}, { timeout: 300_000 });

eachDialect('a run: eligible list and reasons, one batch, each matter once, resumable', async (db) => {
  const s = await demoFirm(db, 20, 4);
  const m = createMassBilling({ db: db.db, clock: s.clock, relay: s.rt.relay }, s.billing);
  const f = { invoiceDate: '2026-03-01', upTo: '2026-03-01' };
  const rows = await m.candidates(f);
  const eligible = rows.filter((r) => r.eligible);
  const excluded = rows.filter((r) => r.reasons.some((x) => x.code === 'excluded'));
  for (const r of rows) assert.equal(r.eligible, r.reasons.length === 0);
  const listed = await m.eligible(f);
  assert.deepEqual(listed.rows.map((r) => r.matterId), eligible.map((r) => r.matterId));

  // Looking up a matter that is not listed explains why.
  if (excluded.length) {
    const why = await m.whyNot(f, { fileNumber: excluded[0]!.fileNumber });
    assert.ok(why && why.reasons.some((r) => /excluded from mass billing/.test(r)));
  }
  // An eligible matter left out by the run's filters: the lookup names each filter that does it, and only those.
  {
    const target = eligible[0]!;
    const otherCycle = target.billingCycle === 'MONTH' ? 'QUARTER' : 'MONTH';
    const otherClient = rows.find((r) => r.clientId !== target.clientId)!;
    const table: [Record<string, unknown>, RegExp[]][] = [
      [{ billingCycle: otherCycle }, [/^The Billing cycle filter leaves it out \(its cycle is \w+, not \w+\)$/]],
      [{ clientId: otherClient.clientId }, [/^The Client filter/]],
      [{ clientId: otherClient.clientId, billingCycle: otherCycle }, [/^The Client filter/, /^The Billing cycle filter/]],
      [{ clientId: target.clientId, billingCycle: otherCycle }, [/^The Billing cycle filter/]],
      [{ nextBillingFrom: '2999-01-01' }, [/^The Next billing date filter leaves it out \(/]],
      [{ cap: { kind: 'amount', amountMinor: target.wipMinor + 1 } }, [/^The WIP cap filter leaves it out \(its unbilled WIP is under the amount given\)$/]],
    ];
    for (const [filters, expected] of table) {
      const why = await m.whyNot({ ...f, ...filters }, { id: target.matterId });
      assert.ok(why, JSON.stringify(filters));
      assert.equal(why.reasons.length, expected.length, JSON.stringify([filters, why.reasons]));
      expected.forEach((re, i) => assert.match(why.reasons[i]!, re));
    }
    assert.deepEqual((await m.whyNot({ ...f, clientId: target.clientId }, { id: target.matterId }))!.reasons, [], 'a filter that keeps it: no reason');
  }

  // Bill all: one batch; a second create with the same id is the same run.
  const run = await m.createRun(ctx, { id: 'run-00000001', ...f, paymentTermsDays: 30 });
  const again = await m.createRun(ctx, { id: 'run-00000001', ...f, paymentTermsDays: 30 });
  assert.equal(again.id, run.id);
  assert.equal(run.matterCount, eligible.length);
  // Two workers on the same run at once (a second tab): each matter settles once.
  const [a, b] = await Promise.all([m.runBatch(ctx, run.id, { chunk: 3 }), m.runBatch(ctx, run.id, { chunk: 3 })]);
  assert.equal(a.status, 'done');
  assert.equal(b.id, a.id);
  const done = (await m.findBatch(run.id))!;
  assert.equal(done.draftedCount + done.skippedCount, done.matterCount);
  const drafts = await db.db.selectFrom('billing_bill').select(['id', 'batch_id', 'matter_id']).where('status', '=', 'draft').execute();
  assert.equal(drafts.length, done.draftedCount);
  assert.ok(drafts.every((d) => d.batch_id === run.id));
  // A second run finds nothing left: every matter has a draft.
  const second = await m.createRun(ctx, { ...f });
  assert.equal(second.matterCount, 0);
  // Resuming a finished run changes nothing.
  const resumed = await m.runBatch(ctx, run.id);
  assert.equal(resumed.draftedCount, done.draftedCount);
  const items = await db.db.selectFrom('billing_bill_line').select('item_id').where('item_id', 'is not', null).where('live', '=', 1).execute();
  assert.equal(new Set(items.map((i) => i.item_id)).size, items.length, 'no item on two bills');

  // Hand-picking an excluded matter bills it; picking one with a draft skips it with the reason.
  if (excluded.length) {
    const picked = await m.createRun(ctx, { ...f, matterIds: [excluded[0]!.matterId, drafts[0]!.matter_id as string] });
    const settled = await m.runBatch(ctx, picked.id);
    const prow = await m.batchRows(picked.id);
    assert.equal(prow.length, 2);
    const skipped = prow.find((r) => r.matterId === drafts[0]!.matter_id)!;
    assert.equal(skipped.state, 'skipped');
    assert.match(skipped.reason!, /already has a bill in draft/);
    const ex = prow.find((r) => r.matterId === excluded[0]!.matterId)!;
    assert.ok(ex.state === 'drafted' || /No billable|no fixed-fee|Billing is turned off|closed/i.test(ex.reason ?? ''), JSON.stringify(ex));
    assert.equal(settled.status, 'done');
  }

  // Modify the batch: new invoice date and terms for all its drafts, then delete one (back to mass billing).
  const ids = drafts.slice(0, 3).map((d) => d.id as string);
  // A new invoice date alone, before the drafts' up-to date: refused once, at the up-to date, and nothing changes.
  const upTo = String((await db.db.selectFrom('billing_bill').select('up_to').where('id', '=', ids[0]!).executeTakeFirstOrThrow()).up_to);
  const earlier = new Date(Date.parse(`${upTo}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
  const versions = async () => (await db.db.selectFrom('billing_bill').select(['id', 'version', 'invoice_date']).where('id', 'in', ids).orderBy('id').execute()).map((r) => `${r.id}:${r.version}:${r.invoice_date}`);
  const unchanged = await versions();
  await assert.rejects(m.modifyDrafts(ctx, ids, { invoiceDate: earlier }), (e: unknown) => e instanceof HttpError && e.status === 422
    && Object.keys(e.fields).join() === 'upTo' && e.fields.upTo!.includes(`up to ${upTo}`) && e.fields.upTo!.startsWith('3 of the drafts'));
  assert.deepEqual(await versions(), unchanged, 'nothing changed');
  const mod = await m.modifyDrafts(ctx, ids, { invoiceDate: '2026-03-05', paymentTermsDays: 7 });
  assert.ok(mod.every((r) => r.ok), JSON.stringify(mod));
  const changed = await db.db.selectFrom('billing_bill').select(['invoice_date', 'due_date', 'request_json']).where('id', 'in', ids).execute();
  assert.ok(changed.every((c) => c.invoice_date === '2026-03-05' && c.due_date === '2026-03-12'));
  const del = await m.deleteDrafts(ctx, [ids[0]!]);
  assert.ok(del[0]!.ok);
  const back = await m.candidates(f, { matterIds: [drafts[0]!.matter_id as string] });
  assert.equal(back[0]!.eligible, true, 'a deleted draft\'s matter is back on the list');
  await s.rt.relay.stop();
}, { timeout: 300_000 });

eachDialect('an approved bill moves its matter\'s next billing date past it: an every-cycle fixed fee is due once a cycle, not on every run', async (db) => {
  const s = await setup(db, { start: '2026-03-02T09:00:00Z' });
  const { matter, partner } = await firm(s.cmds);
  const other = await s.cmds.openMatter(ctx, { clientId: matter.clientId, name: 'Second', responsibleTimekeeperId: partner.id, openedOn: '2025-06-01' });
  for (const id of [matter.id, other.id]) {
    await s.cmds.updateMatter(ctx, id, { billingCycle: 'QUARTER', nextBillingDate: '2026-03-01' });
    await s.cmds.setBillingOptions(ctx, id, { set: { arrangement: 'fixed_fee', quote: { amountMinor: 270_000 }, fixedFee: { mode: 'every_cycle', schedule: [] } } });
  }
  await s.drain();
  const m = createMassBilling({ db: db.db, clock: s.clock, relay: s.rt.relay }, s.billing);
  const row = async (invoiceDate: string) => (await m.candidates({ invoiceDate, upTo: invoiceDate })).find((r) => r.matterId === matter.id)!;
  const nextDate = async () => [(await db.db.selectFrom('matters_matter').select('next_billing_date').where('id', '=', matter.id).executeTakeFirstOrThrow()).next_billing_date, (await db.db.selectFrom('billing_matter').select('next_billing_date').where('id', '=', matter.id).executeTakeFirstOrThrow()).next_billing_date];
  assert.deepEqual([(await row('2026-03-05')).eligible, (await row('2026-03-05')).fixedFeeDue], [true, true], 'the quarter\'s fee is due');
  // Both approved in bulk, their events delivered together: each matter moves once.
  const drafted = await m.draftMatters(ctx, [matter.id, other.id], { invoiceDate: '2026-03-05', upTo: '2026-03-05', request: {} });
  assert.ok(drafted.every((d) => d.ok));
  const [billId, otherBillId] = drafted.map((d) => (d as { bill: { billId: string } }).bill.billId) as [string, string];
  assert.ok((await m.approveMany(ctx, [billId, otherBillId])).every((a) => a.ok));
  await s.drain();
  assert.deepEqual(await nextDate(), ['2026-06-01', '2026-06-01'], 'matters and billing\'s copy: the next quarter');
  assert.equal((await db.db.selectFrom('matters_matter').select('next_billing_date').where('id', '=', other.id).executeTakeFirstOrThrow()).next_billing_date, '2026-06-01');
  // A month on, nothing is due; the next quarter, the fee is due again.
  assert.deepEqual([(await row('2026-04-05')).eligible, (await row('2026-04-05')).fixedFeeDue], [false, false]);
  assert.equal((await row('2026-06-02')).fixedFeeDue, true);
  // The same bill reverted: the date goes back (the quarter's bill is gone); approved again, it moves once more.
  await s.billing.revert(ctx, billId);
  await s.drain();
  assert.deepEqual(await nextDate(), ['2026-03-01', '2026-03-01'], 'reverted: the quarter is due again');
  await s.billing.approve(ctx, billId);
  await s.drain();
  assert.deepEqual(await nextDate(), ['2026-06-01', '2026-06-01']);
  const moves = async (action: string) => (await db.db.selectFrom('audit_log').select(['before_json', 'after_json']).where('action', '=', action).where('entity_id', '=', matter.id).orderBy('at').execute())
    .map((a) => [JSON.parse(a.before_json as string).nextBillingDate, JSON.parse(a.after_json as string).nextBillingDate]);
  assert.deepEqual(await moves('matters.next_billing_date_advanced'), [['2026-03-01', '2026-06-01'], ['2026-03-01', '2026-06-01']]);
  assert.deepEqual(await moves('matters.next_billing_date_restored'), [['2026-06-01', '2026-03-01']]);
  // Reverted and deleted: the date goes back and stays back, so the quarter's fee is billed (not lost).
  await s.billing.revert(ctx, billId);
  await s.drain();
  await s.billing.deleteBill(ctx, billId);
  await s.drain();
  assert.deepEqual(await nextDate(), ['2026-03-01', '2026-03-01']);
  assert.deepEqual([(await row('2026-03-05')).eligible, (await row('2026-03-05')).fixedFeeDue], [true, true], 'the quarter\'s fee is due again');
  const again = await m.draftMatters(ctx, [matter.id], { invoiceDate: '2026-03-05', upTo: '2026-03-05', request: {} });
  assert.equal((again[0] as { bill: { totals: { totalMinor: number } } }).bill.totals.totalMinor, 270_000);
  // A bill moved later by another bill is not put back by the first one's deletion.
  await s.billing.revert(ctx, otherBillId);
  await s.drain();
  await s.cmds.updateMatter(ctx, other.id, { nextBillingDate: '2026-09-01' });
  await s.billing.deleteBill(ctx, otherBillId);
  await s.drain();
  assert.equal((await db.db.selectFrom('matters_matter').select('next_billing_date').where('id', '=', other.id).executeTakeFirstOrThrow()).next_billing_date, '2026-09-01', 'set by a person since: left alone');
  await s.rt.relay.stop();
});

eachDialect('an every-cycle fixed fee is billed once a cycle: not again on a bill made later in the cycle, nor on its own with no cycle', async (db) => {
  const s = await setup(db, { start: '2026-03-02T09:00:00Z' });
  const { matter, partner } = await firm(s.cmds);
  const noCycle = await s.cmds.openMatter(ctx, { clientId: matter.clientId, name: 'No cycle', responsibleTimekeeperId: partner.id, openedOn: '2025-06-01' });
  // A monthly cycle, and no cycle at all.
  await s.cmds.updateMatter(ctx, matter.id, { billingCycle: 'MONTH' });
  for (const id of [matter.id, noCycle.id]) {
    await s.cmds.setBillingOptions(ctx, id, { set: { arrangement: 'fixed_fee', quote: { amountMinor: 270_000 }, fixedFee: { mode: 'every_cycle', schedule: [] } } });
    await s.cmds.recordTimeEntry(ctx, { matterId: id, timekeeperId: partner.id, workDate: '2026-03-02', rawMinutes: 60, narrative: 'Advice' });
  }
  await s.drain();
  const m = createMassBilling({ db: db.db, clock: s.clock, relay: s.rt.relay }, s.billing);
  const run = async (date: string) => {
    const ids = (await m.candidates({ invoiceDate: date, upTo: date })).filter((r) => r.eligible).map((r) => r.matterId).filter((id) => id === matter.id || id === noCycle.id);
    const drafted = await m.draftMatters(ctx, ids, { invoiceDate: date, upTo: date, request: {} });
    const billIds = drafted.flatMap((d) => (d.ok ? [d.bill.billId] : []));
    assert.ok((await m.approveMany(ctx, billIds)).every((a) => a.ok));
    await s.drain();
    const rows = billIds.length === 0 ? [] : await db.db.selectFrom('billing_bill').select(['matter_id', 'fees_minor', 'total_minor', 'request_json']).where('id', 'in', billIds).execute();
    return Object.fromEntries(rows.map((r) => [r.matter_id === matter.id ? 'monthly' : 'none', Number(r.fees_minor)]));
  };
  // The first run bills both fees (the recorded hour written to the fee).
  assert.deepEqual(await run('2026-03-05'), { monthly: 270_000, none: 270_000 });
  // Approving moved the monthly matter's next billing date (set by matters with the cycle) past the bill.
  assert.equal((await db.db.selectFrom('matters_matter').select('next_billing_date').where('id', '=', matter.id).executeTakeFirstOrThrow()).next_billing_date, '2026-04-01');
  // The same day again: nothing is due (no work, and no fee on its own), so nothing is billed twice.
  assert.deepEqual(await run('2026-03-05'), {});
  // Costs recorded mid-cycle: the monthly matter's bill carries them without the month's fee again
  // (its request says 0.00, for the clerk to change); with no cycle, each bill carries the fee (seed 002).
  for (const id of [matter.id, noCycle.id]) await s.cmds.recordDisbursement(ctx, { matterId: id, incurredOn: '2026-03-10', code: 'COURT', unitCostMinor: 15_000, taxCode: 'EXEMPT', description: 'Filing fee' });
  await s.cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-03-11', rawMinutes: 30, narrative: 'Mid-cycle call' });
  await s.drain();
  // The list says why the monthly matter bills only its costs, and what it will bill.
  const f12 = { invoiceDate: '2026-03-12', upTo: '2026-03-12' };
  const row12 = (await m.candidates(f12)).find((r) => r.matterId === matter.id)!;
  const preview12 = (await m.previewRows([row12], f12, {})).get(matter.id)!;
  assert.deepEqual([preview12.totalMinor, preview12.why], [15_000, 'No fixed-fee instalment due: the recorded time waits for the next one; fixed charges and disbursements billed']);
  assert.deepEqual(await run('2026-03-12'), { monthly: 0, none: 270_000 });
  const monthlyDraft = await db.db.selectFrom('billing_bill').select('request_json').where('matter_id', '=', matter.id).orderBy('created_at', 'desc').executeTakeFirstOrThrow();
  assert.equal(JSON.parse(monthlyDraft.request_json as string).fixedFeeAmountMinor, 0);
  // The next month's bill carries the fee again (the waiting call written to it).
  assert.deepEqual(await run('2026-04-06'), { monthly: 270_000 });
  await s.rt.relay.stop();
});

eachDialect('seed 004\'s WIP cap filter measures all the matter\'s unbilled WIP, not just what the cut-off leaves', async (db) => {
  const s = await setup(db, { start: '2026-03-10T09:00:00Z' });
  const { matter, partner } = await firm(s.cmds);
  await s.cmds.updateMatter(ctx, matter.id, { wipCapMinor: 100_000 });
  // 600.00 before the cut-off, 600.00 after it: 1,200.00 unbilled, over the 1,000.00 cap.
  await s.cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-02-10', rawMinutes: 120, narrative: 'Before' });
  await s.cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-03-05', rawMinutes: 120, narrative: 'After' });
  await s.drain();
  const m = createMassBilling({ db: db.db, clock: s.clock, relay: s.rt.relay }, s.billing);
  const listed = async (cap: NonNullable<Parameters<typeof m.candidates>[0]['cap']>) =>
    (await m.candidates({ invoiceDate: '2026-03-10', upTo: '2026-02-28', cap })).filter((r) => r.matterId === matter.id).map((r) => [r.wipMinor, r.overCap]);
  assert.deepEqual(await listed({ kind: 'matter' }), [[60_000, true]], 'over its own cap: listed, the run bills 600.00 to the cut-off');
  assert.deepEqual(await listed({ kind: 'amount', amountMinor: 110_000 }), [[60_000, true]]);
  assert.deepEqual(await listed({ kind: 'amount', amountMinor: 130_000 }), []);
  // Without a cap filter the row shows what the run would bill, and the matter is over its cap all the same (the
  // badge does not flip with the filter), its unbilled WIP of all dates read to say so.
  assert.deepEqual((await m.candidates({ invoiceDate: '2026-03-10', upTo: '2026-02-28' })).filter((r) => r.matterId === matter.id).map((r) => [r.wipMinor, r.overCap, r.unbilledTotalMinor]), [[60_000, true, 120_000]]);
  assert.deepEqual((await m.candidates({ invoiceDate: '2026-03-10', upTo: '2026-02-28', cap: { kind: 'matter' } })).filter((r) => r.matterId === matter.id).map((r) => [r.wipMinor, r.overCap, r.unbilledTotalMinor]), [[60_000, true, 120_000]]);
  await s.rt.relay.stop();
});

eachDialect('seed 004\'s time "To a cap": only the time of matters at their cap (or with that much unbilled time) is billed; the rest waits, toggled out, while their costs are billed', async (db) => {
  const s = await setup(db, { start: '2026-03-02T09:00:00Z' });
  const { partner, client } = await firm(s.cmds);
  const open = (name: string, wipCapMinor: number | null) => s.cmds.openMatter(ctx, { clientId: client.id, name, responsibleTimekeeperId: partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH', ...(wipCapMinor !== null ? { wipCapMinor } : {}) });
  // At cap: 2 h at 300.00 (600.00) and 100.00 of costs against a 500.00 cap. Under: 1 h (300.00) and 50.00 against 5,000.00. No cap: 1 h only.
  const atCap = await open('At cap', 50_000);
  const under = await open('Under cap', 500_000);
  const noCap = await open('No cap', null);
  const time = async (matterId: string, rawMinutes: number) => s.cmds.recordTimeEntry(ctx, { matterId, timekeeperId: partner.id, workDate: '2026-02-10', rawMinutes, narrative: 'Advice' });
  const cost = (matterId: string, unitCostMinor: number) => s.cmds.recordDisbursement(ctx, { matterId, incurredOn: '2026-02-12', code: 'COURT', unitCostMinor, taxCode: 'EXEMPT', description: 'Filing fee' });
  const atCapTime = await time(atCap.id, 120);
  await cost(atCap.id, 10_000);
  const underTime = await time(under.id, 60);
  await cost(under.id, 5_000);
  await time(noCap.id, 60);
  await s.drain();
  const m = createMassBilling({ db: db.db, clock: s.clock, relay: s.rt.relay }, s.billing);
  const dates = { invoiceDate: '2026-03-01', upTo: '2026-03-01' };
  const table: [name: string, cap: { kind: 'matter' } | { kind: 'amount'; amountMinor: number }, timeBilled: string[]][] = [
    ['the matter\'s own cap', { kind: 'matter' }, [atCap.id]],
    ['500.00 of unbilled time', { kind: 'amount', amountMinor: 50_000 }, [atCap.id]],
    ['300.00 of unbilled time', { kind: 'amount', amountMinor: 30_000 }, [atCap.id, under.id, noCap.id]],
  ];
  for (const [name, cap, timeBilled] of table) {
    const f = { ...dates, time: { cap } };
    const rows = await m.candidates(f);
    const eligible = rows.filter((r) => r.eligible).map((r) => r.matterId).sort();
    // A matter with nothing but waiting time is not listed; the others are, their costs at least.
    const expected = [atCap.id, under.id, ...(timeBilled.includes(noCap.id) ? [noCap.id] : [])].sort();
    assert.deepEqual(eligible, expected, name);
    const previews = await m.previewRows(rows.filter((r) => r.eligible), f, {});
    for (const id of expected) assert.equal(previews.get(id)!.timeWaits, !timeBilled.includes(id), `${name}: ${id}`);
  }
  // The matter with only time, left out by the cap: the lookup names that filter.
  const why = await m.whyNot({ ...dates, time: { cap: { kind: 'matter' } } }, { id: noCap.id });
  assert.deepEqual(why!.reasons, ['The time "To a cap" filter leaves its time out (its unbilled WIP is under its own cap, or it has none)']);
  const whyDisb = await m.whyNot({ ...dates, disbursements: { code: 'NONE' }, time: { cap: { kind: 'amount', amountMinor: 99_999_900 } } }, { id: under.id });
  assert.deepEqual(whyDisb!.reasons, ['The time "To a cap" filter leaves its time out (its unbilled time is under the amount given)', 'The disbursement filters (dates, code) leave none of its disbursements']);
  // A run under the matter's own cap: the at-cap matter's time billed; the other's time toggled out (it waits), its costs billed.
  const run = await m.createRun(ctx, { ...dates, filters: { time: { cap: { kind: 'matter' } } } });
  assert.equal((await m.runBatch(ctx, run.id)).status, 'done');
  await s.drain();
  const billOf = async (matterId: string) => (await s.billing.findBill((await db.db.selectFrom('billing_bill').select('id').where('matter_id', '=', matterId).where('status', '=', 'draft').executeTakeFirstOrThrow()).id as string))!;
  const a = await billOf(atCap.id);
  assert.ok(a.lines.some((l) => l.itemId === atCapTime.id));
  assert.equal(a.totals.totalMinor, 60_000 + 10_000);
  const u = await billOf(under.id);
  assert.deepEqual(u.lines.map((l) => l.kind), ['disbursement']);
  assert.equal(u.request.filters?.time?.none, true, 'kept in the draft\'s request: the composer shows "Leave time off this bill"');
  assert.equal((await mattersStatus(db.db, [underTime.id]))[underTime.id], 'unbilled', 'the waiting time is still unbilled');
  // Time recorded later, the draft recomposed (a batch change): it waits too.
  const later = await time(under.id, 30);
  await s.drain();
  const recomposed = await s.billing.updateDraft(ctx, u.billId, { invoiceDate: '2026-03-02', expectedVersion: u.version });
  assert.deepEqual(recomposed.lines.map((l) => l.kind), ['disbursement']);
  assert.equal((await mattersStatus(db.db, [later.id]))[later.id], 'unbilled');
  assert.equal(await db.db.selectFrom('billing_bill').select('id').where('matter_id', '=', noCap.id).executeTakeFirst(), undefined, 'nothing drafted for time alone under the cap');
  await s.rt.relay.stop();
});

eachDialect('a next billing date keeps the day a person set through approvals and a change of cycle alone (31 Jan -> 28 Feb -> QUARTER -> 31 May)', async (db) => {
  const s = await setup(db, { start: '2026-01-31T09:00:00Z' });
  const { matter, partner } = await firm(s.cmds);
  await s.cmds.updateMatter(ctx, matter.id, { billingCycle: 'MONTH', nextBillingDate: '2026-01-31' });
  const next = async () => (await db.db.selectFrom('matters_matter').select('next_billing_date').where('id', '=', matter.id).executeTakeFirstOrThrow()).next_billing_date;
  const billOn = async (date: string) => {
    await s.cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate: date, rawMinutes: 60, narrative: 'Advice' });
    await s.drain();
    await s.billing.approve(ctx, (await s.billing.createDraft(ctx, { matterId: matter.id, invoiceDate: date, upTo: date })).billId);
    await s.drain();
  };
  await billOn('2026-01-31');
  assert.equal(await next(), '2026-02-28');
  // The cycle changed, the date left as it is: the 31st a person set is still the day kept.
  await s.cmds.updateMatter(ctx, matter.id, { billingCycle: 'QUARTER' });
  s.clock.set('2026-03-01T09:00:00Z');
  await billOn('2026-03-01');
  assert.equal(await next(), '2026-05-31');
  // A date a person sets is the new day kept.
  await s.cmds.updateMatter(ctx, matter.id, { nextBillingDate: '2026-06-15' });
  s.clock.set('2026-06-15T09:00:00Z');
  await billOn('2026-06-15');
  assert.equal(await next(), '2026-09-15');
  await s.rt.relay.stop();
});

/** A small demo firm, mass billing over it, the run's dates, and the matters eligible on them (at least four). */
async function smallRunFirm(db: TestDb) {
  const s = await demoFirm(db, 8, 3);
  const m = createMassBilling({ db: db.db, clock: s.clock, relay: s.rt.relay }, s.billing);
  const f = { invoiceDate: '2026-03-01', upTo: '2026-03-01' };
  const eligible = (await m.candidates(f)).filter((r) => r.eligible).map((r) => r.matterId);
  assert.ok(eligible.length >= 4, `eligible: ${eligible.length}`);
  return { s, m, f, eligible };
}

eachDialect('a matter queued in a bill run still drafting is not offered to another run (Bill all or picked), until that run drafts it or stops moving', async (db) => {
  const { s, m, f, eligible } = await smallRunFirm(db);
  const [a, b, ...rest] = eligible;
  // Run 1 takes two matters and has not drafted them yet (its page was left as it started).
  const run1 = await m.createRun(ctx, { ...f, matterIds: [a!, b!] });
  const rows = await m.candidates(f);
  for (const id of [a!, b!]) {
    const row = rows.find((r) => r.matterId === id)!;
    assert.equal(row.eligible, false);
    assert.deepEqual(row.reasons.map((r) => r.code), ['queued']);
    assert.match(row.reasons[0]!.text, new RegExp(`queued in bill run ${run1.id}, which has not finished`));
  }
  for (const id of rest) assert.equal(rows.find((r) => r.matterId === id)!.eligible, true, 'the others are offered');

  // Bill all now makes a run of the others only; picking a queued matter skips it with the reason.
  const run2 = await m.createRun(ctx, f);
  const run2Matters = await db.db.selectFrom('billing_batch_matter').select(['matter_id', 'state']).where('batch_id', '=', run2.id).execute();
  assert.deepEqual(run2Matters.map((r) => r.matter_id).sort(), [...rest].sort());
  const run3 = await m.createRun(ctx, { ...f, matterIds: [a!] });
  const [picked] = await db.db.selectFrom('billing_batch_matter').select(['state', 'reason']).where('batch_id', '=', run3.id).execute();
  assert.equal(picked!.state, 'skipped');
  assert.match(String(picked!.reason), /queued in bill run/);

  // Run 1 drafts them: each has its draft, from run 1, and is not offered for that reason now.
  assert.equal((await m.runBatch(ctx, run2.id)).draftedCount, rest.length);
  const done = await m.runBatch(ctx, run1.id);
  assert.equal(done.draftedCount, 2);
  const after = await m.candidates(f);
  for (const id of [a!, b!]) assert.deepEqual(after.find((r) => r.matterId === id)!.reasons.map((r) => r.code), ['has_draft']);
  const drafts = await db.db.selectFrom('billing_bill').select(['matter_id', 'batch_id']).where('status', '=', 'draft').where('matter_id', 'in', [a!, b!]).execute();
  assert.deepEqual(drafts.map((d) => d.batch_id), [run1.id, run1.id]);

  // A run whose process stopped mid-run holds nothing back once it has not moved for RUN_STALLED_MS.
  const c = rest[0]!;
  const cDraft = await db.db.selectFrom('billing_bill').select('id').where('status', '=', 'draft').where('matter_id', '=', c).executeTakeFirstOrThrow();
  await s.billing.deleteDraft(ctx, cDraft.id as string);
  await s.drain();
  assert.equal((await m.candidates(f)).find((r) => r.matterId === c)!.eligible, true, 'its draft deleted: offered again');
  const run4 = await m.createRun(ctx, { ...f, matterIds: [c!] });
  await db.db.updateTable('billing_batch').set({ status: 'running' }).where('id', '=', run4.id).execute();
  assert.deepEqual((await m.candidates(f)).find((r) => r.matterId === c)!.reasons.map((r) => r.code), ['queued']);
  s.clock.advanceMs(RUN_STALLED_MS - 1_000);
  assert.deepEqual((await m.candidates(f)).find((r) => r.matterId === c)!.reasons.map((r) => r.code), ['queued'], 'still drafting within the limit');
  s.clock.advanceMs(2_000);
  assert.equal((await m.candidates(f)).find((r) => r.matterId === c)!.eligible, true, 'offered again once the run stopped moving');

  // A run whose process says it is drafting it (its heartbeat) holds its matters while the heartbeat is fresh, and lets them go a
  // minute after the last one (the process was killed), not RUN_STALLED_MS after it last moved.
  const run5 = await m.createRun(ctx, { ...f, matterIds: [c!] });
  await db.db.updateTable('billing_batch').set({ status: 'running', heartbeat_at: s.clock.now().toISOString() }).where('id', '=', run5.id).execute();
  s.clock.advanceMs(RUN_HEARTBEAT_STALE_MS - 1_000);
  assert.deepEqual((await m.candidates(f)).find((r) => r.matterId === c)!.reasons.map((r) => r.code), ['queued'], 'its heartbeat fresh');
  s.clock.advanceMs(2_000);
  assert.equal((await m.candidates(f)).find((r) => r.matterId === c)!.eligible, true, 'its heartbeat stale: offered again');
  const run6 = await m.createRun(ctx, { ...f, matterIds: [c!] });
  assert.equal((await db.db.selectFrom('billing_batch_matter').select('state').where('batch_id', '=', run6.id).executeTakeFirstOrThrow()).state, 'pending', 'a new run takes it');
});

eachDialect('two bill runs created at the same moment take disjoint matters; a run that failed holds its queued matters until it has not moved for RUN_STALLED_MS', async (db) => {
  const { s, m, f, eligible } = await smallRunFirm(db);
  // Both read the list before either is created (two clicks, two processes).
  const settled = await Promise.allSettled([m.createRun(ctx, f), m.createRun(ctx, f)]);
  const made = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const refused = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  assert.equal(made.length, 1, 'Bill all takes the lot in one run');
  const one = made[0]!;
  // The other makes no empty run: it is refused (409) and names the run that bills them.
  assert.equal(refused.length, 1);
  assert.ok(refused[0] instanceof RunQueuedElsewhere, String(refused[0]));
  assert.equal((refused[0] as RunQueuedElsewhere).status, 409);
  assert.equal((refused[0] as RunQueuedElsewhere).runId, one.id);
  assert.match((refused[0] as Error).message, new RegExp(`already queued in bill run ${one.id}, which has not finished: nothing was created`));
  // A third Bill all, after the run was made (its list already shows them queued): refused the same way.
  await assert.rejects(m.createRun(ctx, f), (e: unknown) => e instanceof RunQueuedElsewhere && e.runId === one.id);
  assert.deepEqual((await db.db.selectFrom('billing_batch').select('id').execute()).map((r) => r.id), [one.id], 'no second run');
  const mattersOf = async (id: string) => (await db.db.selectFrom('billing_batch_matter').select(['matter_id', 'state', 'reason']).where('batch_id', '=', id).execute());
  const a = await mattersOf(one.id);
  const taken = a.filter((r) => r.state === 'pending').map((r) => r.matter_id as string);
  assert.deepEqual([...taken].sort(), [...eligible].sort(), 'every eligible matter queued in the one run');
  // Picked while queued: skipped with the reason (the picked list read before the first run existed).
  const picked = await m.createRun(ctx, { ...f, matterIds: [eligible[0]!] });
  const [row] = await mattersOf(picked.id);
  assert.equal(row!.state, 'skipped');
  assert.match(String(row!.reason), /queued in bill run/);

  // The run that took them fails: its matters stay held until it has not moved for RUN_STALLED_MS.
  const runId = one.id;
  await db.db.updateTable('billing_batch').set({ status: 'failed', error: 'stopped', updated_at: s.clock.now().toISOString() }).where('id', '=', runId).execute();
  assert.deepEqual((await m.candidates(f)).find((r) => r.matterId === eligible[0])!.reasons.map((r) => r.code), ['queued']);
  s.clock.advanceMs(RUN_STALLED_MS + 1_000);
  assert.equal((await m.candidates(f)).find((r) => r.matterId === eligible[0])!.eligible, true);
});

eachDialect('a bill run lets the process answer between its chunks (the run page, a signal): timers fire while it drafts, and read it part way', async (db) => {
  const { m, f, eligible } = await smallRunFirm(db);
  const run = await m.createRun(ctx, f);
  const order: string[] = [];
  // What the run's page would read, each time the process is free to answer it.
  const seen: number[] = [];
  const reads: Promise<unknown>[] = [];
  const tick = setInterval(() => {
    if (order.length === 0) order.push('timer');
    reads.push(db.db.selectFrom('billing_batch_matter').select((eb) => eb.fn.countAll().as('n')).where('batch_id', '=', run.id).where('state', '<>', 'pending')
      .executeTakeFirstOrThrow().then((r) => { seen.push(Number(r.n)); }));
  }, 1);
  const done = await m.runBatch(ctx, run.id, { chunk: 1 });
  order.push('run finished');
  clearInterval(tick);
  await Promise.all(reads);
  assert.equal(done.status, 'done');
  assert.equal(done.draftedCount, eligible.length);
  assert.deepEqual(order, ['timer', 'run finished'], 'on SQLite a run of many chunks never left the microtask queue: no request was answered until it ended');
  assert.ok(seen.some((n) => n > 0 && n < eligible.length), `the page read the run part way: ${seen.join(', ')} of ${eligible.length} settled`);
});

eachDialect('a shutdown mid-run: the run stops before its next chunk, marked stopped (audited, resumable at once); resumed, it drafts the rest, each matter once', async (db) => {
  const { s, m, f, eligible } = await smallRunFirm(db);
  const run = await m.createRun(ctx, f);
  const settled = async () => Number((await db.db.selectFrom('billing_batch_matter').select((eb) => eb.fn.countAll().as('n'))
    .where('batch_id', '=', run.id).where('state', '<>', 'pending').executeTakeFirstOrThrow()).n);
  // The shutdown begins once the run has drafted something (a chunk of one matter at a time).
  let stopping: Promise<void> | null = null;
  const watch = setInterval(() => {
    if (stopping) return;
    void settled().then((n) => { if (n > 0 && !stopping) stopping = m.stopRuns(10_000); });
  }, 1);
  const stopped = await m.runBatch(ctx, run.id, { chunk: 1 });
  clearInterval(watch);
  assert.ok(stopping, 'the shutdown began during the run');
  await stopping;
  assert.equal(stopped.status, 'failed', 'marked stopped part way');
  assert.match(String(stopped.error), /The server was shut down while it drafted: it stopped part way; what it drafted is kept/);
  assert.equal(stopped.heartbeatAt, null, 'resumable at once');
  assert.ok(stopped.draftedCount > 0 && stopped.draftedCount < eligible.length, `part way: ${stopped.draftedCount} of ${eligible.length}`);
  const audited = await db.db.selectFrom('audit_log').select('action').where('entity_id', '=', run.id).where('action', '=', 'billing.bill_run_failed').execute();
  assert.equal(audited.length, 1);
  // The server started again: the run is resumed and drafts the rest.
  const again = createMassBilling({ db: db.db, clock: s.clock, relay: s.rt.relay }, s.billing);
  const done = await again.runBatch(ctx, run.id);
  assert.equal(done.status, 'done');
  assert.equal(done.draftedCount, eligible.length);
  const drafts = await db.db.selectFrom('billing_bill').select('matter_id').where('status', '=', 'draft').where('batch_id', '=', run.id).execute();
  assert.deepEqual(drafts.map((d) => d.matter_id).sort(), [...eligible].sort(), 'each matter drafted once');
});

eachDialect('approving many: a draft whose matter\'s billing options changed since it was composed is refused with the reason, the others are approved', async (db) => {
  const { s, m, f, eligible } = await smallRunFirm(db);
  const run = await m.createRun(ctx, f);
  const done = await m.runBatch(ctx, run.id);
  assert.equal(done.draftedCount, eligible.length);
  const drafts = await db.db.selectFrom('billing_bill').select(['id', 'matter_id']).where('batch_id', '=', run.id).where('status', '=', 'draft').execute();
  const changed = drafts[0]!;
  await s.cmds.setBillingOptions(ctx, changed.matter_id, { set: { discount: { kind: 'fixed', percentBasisPoints: 0, amountMinor: 1_00 } } });
  await s.drain();
  const outcomes = await m.approveMany(ctx, drafts.map((d) => d.id));
  const refusedOne = outcomes.filter((o) => !o.ok);
  assert.deepEqual(refusedOne.map((o) => o.billId), [changed.id]);
  assert.match((refusedOne[0] as { reason: string }).reason, /changed after this draft was composed/);
  assert.equal(outcomes.filter((o) => o.ok).length, drafts.length - 1);
  // Modify batch recomposes it under the options in force: then it is approved.
  await m.modifyDrafts(ctx, [changed.id], {});
  const again = await m.approveMany(ctx, [changed.id]);
  assert.equal(again[0]!.ok, true, JSON.stringify(again));
});
