import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import type { MattersCommands } from '../../src/modules/matters/index.ts';
import type { MattersEvents } from '../../src/modules/matters/events.ts';
import { manualClock } from '../../src/shared/clock.ts';
import { systemContext } from '../../src/shared/events.ts';
import type { CommandContext } from '../../src/shared/events.ts';
import { HttpError } from '../../src/shared/web/errors.ts';

const ctx = systemContext('corr-matters', 'test');

function setup(db: TestDb) {
  const clock = manualClock('2026-03-02T09:00:00Z');
  let kicks = 0;
  const cmds = createMattersCommands({ db: db.db, clock, relay: { kick: () => { kicks++; } } });
  return { clock, cmds, kicks: () => kicks };
}

/** A firm with one partner (standard rates 300.00 from 2025, 320.00 from 2026), one client and one matter. */
async function firm(cmds: MattersCommands) {
  const partner = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  await cmds.setTimekeeperRate(ctx, { timekeeperId: partner.id, effectiveFrom: '2025-01-01', rateMinor: 30_000 });
  await cmds.setTimekeeperRate(ctx, { timekeeperId: partner.id, effectiveFrom: '2026-01-01', rateMinor: 32_000 });
  const client = await cmds.createClient(ctx, { name: 'Northwind Logistics Inc.', email: 'ap@northwind.example' });
  const matter = await cmds.openMatter(ctx, {
    clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: partner.id, openedOn: '2025-06-01',
    billingCycle: 'MONTH', wipCapMinor: 500_000,
  });
  return { partner, client, matter };
}

/** Expect a 422 naming exactly these fields. */
async function rejectsFields(p: Promise<unknown>, fields: string[]): Promise<Record<string, string>> {
  let got: Record<string, string> = {};
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof HttpError, `expected HttpError, got ${String(e)}`);
    assert.equal(e.status, 422);
    got = { ...e.fields };
    assert.deepEqual(Object.keys(e.fields).sort(), [...fields].sort(), JSON.stringify(e.fields));
    return true;
  });
  return got;
}

const TABLES = [
  'matters_counter', 'matters_timekeeper', 'matters_timekeeper_rate', 'matters_client', 'matters_client_rate', 'matters_matter',
  'matters_matter_rate', 'matters_time_entry', 'matters_disbursement', 'outbox', 'audit_log',
];

async function snapshot(db: TestDb): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const t of TABLES) {
    const rows = await db.db.selectFrom(t).selectAll().execute();
    out[t] = rows.map((r) => JSON.stringify(r)).sort();
  }
  return out;
}

async function events(db: TestDb, type?: keyof MattersEvents) {
  let q = db.db.selectFrom('outbox').selectAll().orderBy('seq');
  if (type) q = q.where('type', '=', type);
  const rows = await q.execute() as { type: string; payload: string; correlation_id: string }[];
  return rows.map((r) => ({ type: r.type, payload: JSON.parse(r.payload) as any, correlationId: r.correlation_id }));
}

eachDialect('numbers are client.matter from counters and are never reused', async (db) => {
  const { cmds } = setup(db);
  const tk = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  const clients = [];
  for (let i = 1; i <= 12; i++) clients.push(await cmds.createClient(ctx, { name: `Client ${i}` }));
  assert.deepEqual(clients.map((c) => c.clientNumber), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  const twelve = clients[11]!;
  const files = [];
  for (let i = 1; i <= 8; i++) files.push((await cmds.openMatter(ctx, { clientId: twelve.id, name: `Matter ${i}`, responsibleTimekeeperId: tk.id })).fileNumber);
  assert.equal(files.at(-1), '12.8');
  const other = await cmds.openMatter(ctx, { clientId: clients[0]!.id, name: 'First matter of client 1', responsibleTimekeeperId: tk.id });
  assert.equal(other.fileNumber, '1.1', 'matter numbers count per client');

  // Remove the newest matter and the newest client behind the commands' back: a max()+1
  // scheme would hand their numbers out again; the counters do not.
  const last = (await cmds.findMatterByFileNumber('12.8'))!;
  await db.db.deleteFrom('matters_matter').where('id', '=', last.id).execute();
  const next = await cmds.openMatter(ctx, { clientId: twelve.id, name: 'After the removal', responsibleTimekeeperId: tk.id });
  assert.equal(next.fileNumber, '12.9');
  const extra = await cmds.createClient(ctx, { name: 'Client 13' });
  await db.db.deleteFrom('matters_client').where('id', '=', extra.id).execute();
  assert.equal((await cmds.createClient(ctx, { name: 'Client 14' })).clientNumber, 14);
});

eachDialect('concurrent openMatter and createClient calls get distinct numbers', async (db) => {
  const { cmds } = setup(db);
  const tk = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  const client = await cmds.createClient(ctx, { name: 'Busy client' });
  const opened = await Promise.all(Array.from({ length: 6 }, (_, i) =>
    cmds.openMatter(ctx, { clientId: client.id, name: `Parallel ${i}`, responsibleTimekeeperId: tk.id })));
  assert.deepEqual(opened.map((m) => m.matterNumber).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6]);
  assert.equal(new Set(opened.map((m) => m.fileNumber)).size, 6);
  const more = await Promise.all(Array.from({ length: 5 }, (_, i) => cmds.createClient(ctx, { name: `Parallel client ${i}` })));
  assert.deepEqual(more.map((c) => c.clientNumber).sort((a, b) => a - b), [2, 3, 4, 5, 6]);
});

eachDialect('recordTimeEntry rounds the minutes and stores the resolved rate, source and amount', async (db) => {
  const { cmds } = setup(db);
  const { partner, client, matter } = await firm(cmds);
  assert.equal(matter.nextBillingDate, '2025-07-01', 'one cycle after opening by default');
  const record = (workDate: string, extra: object = {}) => cmds.recordTimeEntry(ctx, {
    matterId: matter.id, timekeeperId: partner.id, workDate, rawMinutes: 7, narrative: 'Draft complaint', taskCode: 'L210', activityCode: 'A103', ...extra,
  });

  const old = await record('2025-12-31');
  assert.deepEqual([old.billedMinutes, old.rateMinor, old.rateSource, old.amountMinor], [12, 30_000, 'timekeeper', 6_000]);
  const current = await record('2026-01-01');
  assert.deepEqual([current.rateMinor, current.rateSource, current.amountMinor], [32_000, 'timekeeper', 6_400]);

  await cmds.setClientRate(ctx, { clientId: client.id, timekeeperId: partner.id, rateMinor: 28_000 });
  const byClient = await record('2026-02-02');
  assert.deepEqual([byClient.rateMinor, byClient.rateSource, byClient.amountMinor], [28_000, 'client', 5_600]);

  await cmds.setMatterRate(ctx, { matterId: matter.id, timekeeperId: partner.id, rateMinor: 25_000 });
  const customOff = await record('2026-02-03');
  assert.deepEqual([customOff.rateMinor, customOff.rateSource], [28_000, 'client'], 'a matter rate applies only with custom matter rates on (seed 002)');
  assert.deepEqual(await cmds.previewRate(matter.id, partner.id, '2026-02-03'), { rateMinor: 28_000, source: 'client' });
  await cmds.setBillingOptions(ctx, matter.id, { set: { customRatesEnabled: true } });
  assert.deepEqual(await cmds.previewRate(matter.id, partner.id, '2026-02-03'), { rateMinor: 25_000, source: 'matter' });
  const byMatter = await record('2026-02-03');
  assert.deepEqual([byMatter.rateMinor, byMatter.rateSource, byMatter.amountMinor], [25_000, 'matter', 5_000]);

  const overridden = await record('2026-02-04', { override: { rateMinor: 10_000, reason: ' Travel time ' }, rawMinutes: 95 });
  assert.deepEqual([overridden.billedMinutes, overridden.rateMinor, overridden.rateSource, overridden.overrideReason, overridden.amountMinor],
    [96, 10_000, 'override', 'Travel time', 16_000]);

  await cmds.setMatterRate(ctx, { matterId: matter.id, timekeeperId: partner.id, rateMinor: null });
  const backToClient = await record('2026-02-05');
  assert.equal(backToClient.rateSource, 'client');

  // What was recorded is stored as recorded: later rate changes do not touch it.
  await cmds.setTimekeeperRate(ctx, { timekeeperId: partner.id, effectiveFrom: '2025-01-01', rateMinor: 99_000 });
  assert.deepEqual(await cmds.findTimeEntry(old.id), old);
  assert.deepEqual(await cmds.findTimeEntry(overridden.id), overridden);

  const wip = (await events(db, 'matters.wip_recorded')).map((e) => e.payload);
  assert.equal(wip.length, 7);
  assert.deepEqual(wip[0], {
    kind: 'time', id: old.id, matterId: matter.id, clientId: client.id, timekeeperId: partner.id, workDate: '2025-12-31',
    rawMinutes: 7, billedMinutes: 12, rateMinor: 30_000, rateSource: 'timekeeper', overrideReason: null, amountMinor: 6_000,
    currency: 'USD', narrative: 'Draft complaint', taskCode: 'L210', activityCode: 'A103', behaviour: 'bill', status: 'unbilled',
  });

  const d = await cmds.recordDisbursement(ctx, {
    matterId: matter.id, incurredOn: '2026-02-06', code: 'MILEAGE', expenseCode: 'E109', quantityMilli: 12_500, unitCostMinor: 67,
    description: 'Mileage to courthouse',
  });
  assert.deepEqual([d.amountMinor, d.behaviour, d.status], [838, 'bill', 'unbilled']);
  const hidden = await record('2026-02-07', { behaviour: 'hide' });
  const total = (await cmds.unbilledWipMinor([matter.id])).get(matter.id);
  assert.equal(total, 6_000 + 6_400 + 5_600 + 5_600 + 5_000 + 16_000 + 5_600 + 838, 'hidden work adds nothing to WIP');
  assert.equal(hidden.amountMinor, 5_600, 'a hidden entry still records its value');
});

eachDialect('bad input changes nothing and names the field', async (db) => {
  const { cmds, kicks } = setup(db);
  const { partner, client, matter } = await firm(cmds);
  const paralegal = await cmds.createTimekeeper(ctx, { initials: 'TB', name: 'Tom Brennan', classification: 'paralegal' });
  const before = await snapshot(db);
  const kicksBefore = kicks();
  const entry = { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-03-02', rawMinutes: 30, narrative: 'Review pleadings' };

  await rejectsFields(cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Another', classification: 'partner' }), ['initials']);
  await rejectsFields(cmds.createTimekeeper(ctx, { initials: 'x', name: '', classification: 'boss' as never }), ['initials', 'name', 'classification']);
  await rejectsFields(cmds.setTimekeeperRate(ctx, { timekeeperId: partner.id, effectiveFrom: '2026-02-30', rateMinor: -5 }), ['effectiveFrom', 'rateMinor']);
  await rejectsFields(cmds.setTimekeeperRate(ctx, { timekeeperId: 'nobody', effectiveFrom: '2026-02-01', rateMinor: 5 }), ['timekeeperId']);
  await rejectsFields(cmds.createClient(ctx, { name: '  ', email: 'nope' }), ['name', 'email']);
  await rejectsFields(cmds.setClientRate(ctx, { clientId: 'nope', timekeeperId: partner.id, rateMinor: 100 }), ['clientId']);
  await rejectsFields(cmds.openMatter(ctx, { clientId: 'missing', name: 'X', responsibleTimekeeperId: 'missing-too' }), ['clientId', 'responsibleTimekeeperId']);
  await rejectsFields(cmds.openMatter(ctx, { clientId: client.id, name: 'X', responsibleTimekeeperId: partner.id, billingCycle: 'monthly' as never, wipCapMinor: -1 }),
    ['billingCycle', 'wipCapMinor']);
  await rejectsFields(cmds.setMatterRate(ctx, { matterId: matter.id, timekeeperId: partner.id, rateMinor: 1.5 }), ['rateMinor']);
  await rejectsFields(cmds.recordTimeEntry(ctx, { ...entry, rawMinutes: 0, taskCode: 'L100' }), ['rawMinutes', 'taskCode']);
  await rejectsFields(cmds.recordTimeEntry(ctx, { ...entry, override: { rateMinor: 100, reason: '' } }), ['override.reason']);
  await rejectsFields(cmds.recordTimeEntry(ctx, { ...entry, matterId: 'gone' }), ['matterId']);
  const noRate = await rejectsFields(cmds.recordTimeEntry(ctx, { ...entry, timekeeperId: paralegal.id }), ['timekeeperId']);
  assert.match(noRate.timekeeperId!, /has no rate on 2026-03-02/);
  await rejectsFields(cmds.recordTimeEntry(ctx, { ...entry, workDate: '2024-12-31' }), ['timekeeperId']);
  await rejectsFields(cmds.recordDisbursement(ctx, { matterId: matter.id, incurredOn: '2026-03-02', code: 'COURT', unitCostMinor: -1, description: 'Fee', expenseCode: 'E999' }),
    ['unitCostMinor', 'expenseCode']);
  // In a batch, one bad item refuses the whole batch, naming the item.
  await rejectsFields(cmds.recordWip(ctx, {
    timeEntries: [entry, { ...entry, narrative: '' }],
    disbursements: [{ matterId: matter.id, incurredOn: '2026-03-02', code: 'COPY', quantityMilli: 0, unitCostMinor: 15, description: 'Copies' }],
  }), ['timeEntries.1.narrative', 'disbursements.0.quantityMilli']);
  await rejectsFields(cmds.recordWip(ctx, { timeEntries: [entry, { ...entry, timekeeperId: paralegal.id }] }), ['timeEntries.1.timekeeperId']);

  assert.deepEqual(await snapshot(db), before, 'no row, event or audit entry was written');
  assert.equal(kicks(), kicksBefore, 'nothing committed, so the relay was not kicked');

  // A closed matter takes no more work.
  await db.db.updateTable('matters_matter').set({ status: 'closed', closed_on: '2026-03-01' }).where('id', '=', matter.id).execute();
  const closed = await rejectsFields(cmds.recordTimeEntry(ctx, entry), ['matterId']);
  assert.match(closed.matterId!, /closed/);
});

eachDialect('events land in the outbox with the rows, in the same transaction', async (db) => {
  const { cmds, kicks } = setup(db);
  const { partner, client, matter } = await firm(cmds);
  assert.ok(kicks() >= 5, 'the relay is kicked after each commit');
  const all = await events(db);
  assert.deepEqual(all.map((e) => e.type), [
    'matters.timekeeper_created', 'matters.rate_set', 'matters.rate_set', 'matters.client_created', 'matters.matter_opened',
  ]);
  assert.ok(all.every((e) => e.correlationId === 'corr-matters'));
  assert.deepEqual(all[4]!.payload, {
    matterId: matter.id, clientId: client.id, clientNumber: 1, clientName: 'Northwind Logistics Inc.', matterNumber: 1, fileNumber: '1.1',
    name: 'Northwind v. Kestrel', status: 'open', practiceArea: null, openedOn: '2025-06-01', responsibleTimekeeperId: partner.id,
    billingTimekeeperId: partner.id, originatingTimekeeperId: null, billingCycle: 'MONTH', nextBillingDate: '2025-07-01',
    wipCapMinor: 500_000, currency: 'USD', timeUnitMinutes: 6, roundingMode: 'up', defaultBehaviour: 'bill',
  });
  const audits = await db.db.selectFrom('audit_log').select(['action', 'entity_id']).where('entity_id', '=', matter.id).execute();
  assert.deepEqual(audits.map((a) => a.action), ['matters.matter_opened']);

  // A command that fails after appending its event (the audit insert refuses a null
  // actor label) leaves no event, no row and no consumed number.
  const broken: CommandContext = { ...ctx, actorLabel: null as unknown as string };
  const before = await snapshot(db);
  await assert.rejects(cmds.createClient(broken, { name: 'Never saved' }));
  await assert.rejects(cmds.openMatter(broken, { clientId: client.id, name: 'Never opened', responsibleTimekeeperId: partner.id }));
  await assert.rejects(cmds.recordWip(broken, {
    timeEntries: [1, 2].map((n) => ({ matterId: matter.id, timekeeperId: partner.id, workDate: '2026-03-02', rawMinutes: n, narrative: 'x' })),
  }));
  assert.deepEqual(await snapshot(db), before);
  assert.equal((await cmds.openMatter(ctx, { clientId: client.id, name: 'Second', responsibleTimekeeperId: partner.id })).fileNumber, '1.2');

  // A batch appends one event (and one audit row) per item, in order.
  const r = await cmds.recordWip(ctx, {
    timeEntries: [6, 12, 18].map((n) => ({ matterId: matter.id, timekeeperId: partner.id, workDate: '2026-03-02', rawMinutes: n, narrative: `Entry ${n}` })),
    disbursements: [{ matterId: matter.id, incurredOn: '2026-03-02', code: 'COURT', expenseCode: 'E112', unitCostMinor: 40_500, description: 'Filing fee', payee: 'Clerk' }],
  });
  const wip = await events(db, 'matters.wip_recorded');
  assert.deepEqual(wip.map((e) => e.payload.id), [...r.timeEntries.map((t) => t.id), r.disbursements[0]!.id]);
  assert.deepEqual(wip.map((e) => e.payload.amountMinor), [3_200, 6_400, 9_600, 40_500]);
  const auditCount = await db.db.selectFrom('audit_log').select('id').where('action', 'in', ['matters.time_recorded', 'matters.disbursement_recorded']).execute();
  assert.equal(auditCount.length, 4);
});

eachDialect('only unbilled work can be edited or deleted', async (db) => {
  const { cmds } = setup(db);
  const { partner, matter } = await firm(cmds);
  const t = await cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-02-02', rawMinutes: 7, narrative: 'Draft' });
  const edited = await cmds.updateTimeEntry(ctx, t.id, { rawMinutes: 13, narrative: 'Draft and revise complaint', taskCode: 'L210' });
  assert.deepEqual([edited.billedMinutes, edited.rateMinor, edited.amountMinor, edited.narrative, edited.taskCode], [18, 32_000, 9_600, 'Draft and revise complaint', 'L210']);
  const moved = await cmds.updateTimeEntry(ctx, t.id, { workDate: '2025-12-30' });
  assert.deepEqual([moved.rateMinor, moved.rateSource, moved.amountMinor], [30_000, 'timekeeper', 9_000], 'a new date re-resolves the rate');
  const updates = await events(db, 'matters.wip_updated');
  assert.equal(updates.length, 2);
  assert.equal(updates[1]!.payload.amountMinor, 9_000);
  await rejectsFields(cmds.updateTimeEntry(ctx, t.id, { narrative: '' }), ['narrative']);

  const d = await cmds.recordDisbursement(ctx, { matterId: matter.id, incurredOn: '2026-02-02', code: 'COPY', quantityMilli: 100_000, unitCostMinor: 15, description: 'Copies' });
  assert.equal((await cmds.updateDisbursement(ctx, d.id, { quantityMilli: 120_000 })).amountMinor, 1_800);

  for (const [table, id] of [['matters_time_entry', t.id], ['matters_disbursement', d.id]] as const) {
    await db.db.updateTable(table).set({ status: 'draft' }).where('id', '=', id).execute();
  }
  const before = await snapshot(db);
  const is409 = (e: unknown) => e instanceof HttpError && e.status === 409 && /draft/.test(e.message);
  await assert.rejects(cmds.updateTimeEntry(ctx, t.id, { narrative: 'Changed on a draft bill' }), is409);
  await assert.rejects(cmds.deleteTimeEntry(ctx, t.id), is409);
  await assert.rejects(cmds.updateDisbursement(ctx, d.id, { unitCostMinor: 1 }), is409);
  await assert.rejects(cmds.deleteDisbursement(ctx, d.id), is409);
  await assert.rejects(cmds.updateTimeEntry(ctx, 'no-such-entry', { narrative: 'x' }), (e: unknown) => e instanceof HttpError && e.status === 404);
  assert.deepEqual(await snapshot(db), before);

  await db.db.updateTable('matters_time_entry').set({ status: 'unbilled' }).where('id', '=', t.id).execute();
  await cmds.deleteTimeEntry(ctx, t.id);
  assert.equal(await cmds.findTimeEntry(t.id), null);
  const deleted = await events(db, 'matters.wip_deleted');
  assert.deepEqual(deleted.map((e) => e.payload), [{ kind: 'time', id: t.id, matterId: matter.id }]);
});

eachDialect('setWipStatus refuses items not in matters; for the bill follower (leaveAlone) it skips them and the items already there, naming the missing', async (db) => {
  const { cmds } = setup(db);
  const { partner, matter } = await firm(cmds);
  const entry = (workDate: string) => cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate, rawMinutes: 60, narrative: 'Review', taskCode: 'L210', activityCode: 'A103' });
  const t1 = await entry('2026-02-02');
  const t2 = await entry('2026-02-03');
  const gone = { kind: 'time' as const, id: '00000000-0000-7000-8000-000000000000' };
  const statusOf = async (id: string) => (await db.db.selectFrom('matters_time_entry').select('status').where('id', '=', id).executeTakeFirstOrThrow()).status;
  const auditsOf = async (id: string) => (await db.db.selectFrom('audit_log').select('id').where('action', '=', 'matters.wip_status_set').where('entity_id', '=', id).execute()).length;

  // A command call naming an item matters does not have changes nothing.
  await rejectsFields(cmds.setWipStatus(ctx, [{ kind: 'time', id: t1.id }, gone], 'draft'), ['items.1']);
  assert.equal(await statusOf(t1.id), 'unbilled');
  assert.deepEqual(await cmds.setWipStatus(ctx, [{ kind: 'time', id: t1.id }], 'draft'), { missing: [] });
  assert.equal(await auditsOf(t1.id), 1);

  // The follower: t1 is draft already (left alone: no second audit row, not in the event), t2 moves, the unknown item is named.
  const before = (await db.db.selectFrom('outbox').select('id').where('type', '=', 'matters.wip_status_changed').execute()).length;
  assert.deepEqual(await cmds.setWipStatus(ctx, [{ kind: 'time', id: t1.id }, { kind: 'time', id: t2.id }, gone], 'draft', { leaveAlone: true }), { missing: [gone] });
  assert.deepEqual([await statusOf(t1.id), await statusOf(t2.id)], ['draft', 'draft']);
  assert.deepEqual([await auditsOf(t1.id), await auditsOf(t2.id)], [1, 1]);
  const events = await db.db.selectFrom('outbox').select('payload').where('type', '=', 'matters.wip_status_changed').orderBy('seq').execute();
  assert.equal(events.length, before + 1);
  const payload = JSON.parse(String(events.at(-1)!.payload)) as MattersEvents['matters.wip_status_changed'];
  assert.deepEqual(payload.items.map((i) => i.id), [t2.id]);
  // Nothing left to move: no event at all.
  assert.deepEqual(await cmds.setWipStatus(ctx, [{ kind: 'time', id: t2.id }], 'draft', { leaveAlone: true }), { missing: [] });
  assert.equal((await db.db.selectFrom('outbox').select('id').where('type', '=', 'matters.wip_status_changed').execute()).length, before + 1);
});

eachDialect('setWipStatusMany has exactly the effect of one setWipStatus per move in turn: statuses, events with each move\'s causation, audit rows', async (db) => {
  const { cmds } = setup(db);
  const gone = { kind: 'time' as const, id: '00000000-0000-7000-8000-000000000000' };
  // Two copies of the same items: one moved one call at a time, the other in one call.
  const { partner, matter } = await firm(cmds);
  async function items() {
    const time = [];
    for (let i = 0; i < 5; i++) {
      time.push(await cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate: `2026-02-0${i + 1}`, rawMinutes: 30 + i, narrative: `Work ${i}`, taskCode: 'L210', activityCode: 'A103' }));
    }
    const d = await cmds.recordDisbursement(ctx, { matterId: matter.id, incurredOn: '2026-02-03', code: 'COURT', unitCostMinor: 12_000, description: 'Filing fee', expenseCode: 'E112' });
    const refs = [...time.map((t) => ({ kind: 'time' as const, id: t.id })), { kind: 'disbursement' as const, id: d.id }];
    await cmds.setWipStatus(ctx, [refs[4]!], 'draft'); // already where the moves take it
    return refs;
  }
  const a = await items();
  const b = await items();
  const cause = (n: number) => ({ ...ctx, correlationId: `corr-move-${n}`, causationId: `cause-${n}` });
  // Overlapping moves: 1 moves i0 and i1 (and names a missing item); 2 repeats i1, adds i2, the
  // disbursement and i4 (already draft); 3 names i3 twice and i0 again; 4 moves nothing.
  const plan = (r: typeof a) => [
    { ctx: cause(1), items: [r[0]!, r[1]!, gone] },
    { ctx: cause(2), items: [r[1]!, r[2]!, r[5]!, r[4]!] },
    { ctx: cause(3), items: [r[3]!, r[3]!, r[0]!] },
    { ctx: cause(4), items: [r[2]!] },
  ];
  const one: { missing: unknown[] }[] = [];
  for (const m of plan(a)) one.push(await cmds.setWipStatus(m.ctx, m.items, 'draft', { leaveAlone: true }));
  const many = await db.db.transaction().execute((trx) => cmds.within(trx).setWipStatusMany(plan(b), 'draft', { leaveAlone: true }));
  assert.deepEqual(many, one);
  assert.deepEqual(one.map((r) => r.missing.length), [1, 0, 0, 0]);

  // Everything written about each copy, with its items named by position.
  async function written(refs: typeof a) {
    const pos = new Map(refs.map((r, i) => [r.id, i]));
    const statuses = [];
    for (const r of refs) {
      const table = r.kind === 'time' ? 'matters_time_entry' : 'matters_disbursement';
      statuses.push((await db.db.selectFrom(table).select('status').where('id', '=', r.id).executeTakeFirstOrThrow()).status);
    }
    const events = (await db.db.selectFrom('outbox').select(['payload', 'causation_id', 'correlation_id']).where('type', '=', 'matters.wip_status_changed').orderBy('seq').execute())
      .map((e) => ({ ...JSON.parse(String(e.payload)) as MattersEvents['matters.wip_status_changed'], causation: e.causation_id, correlation: e.correlation_id }))
      .filter((e) => e.items.every((i) => pos.has(i.id)))
      .map((e) => ({ status: e.status, items: e.items.map((i) => `${i.kind}:${pos.get(i.id)}`), causation: e.causation, correlation: e.correlation }));
    const audits = (await db.db.selectFrom('audit_log').select(['entity_id', 'entity_type', 'before_json', 'after_json', 'correlation_id']).where('action', '=', 'matters.wip_status_set').execute())
      .filter((x) => pos.has(String(x.entity_id)))
      .map((x) => `${x.entity_type}:${pos.get(String(x.entity_id))} ${x.before_json}->${x.after_json} ${x.correlation_id}`).sort();
    return { statuses, events, audits };
  }
  const wa = await written(a);
  const wb = await written(b);
  assert.deepEqual(wb, wa);
  assert.deepEqual(wa.statuses, ['draft', 'draft', 'draft', 'draft', 'draft', 'draft']);
  assert.deepEqual(wa.events.map((e) => [e.causation, e.items]), [
    [null, ['time:4']],
    ['cause-1', ['time:0', 'time:1']],
    ['cause-2', ['time:2', 'disbursement:5']],
    ['cause-3', ['time:3']],
  ]);
  assert.equal(wa.audits.length, 6, 'one audit row per item moved (the setup move included), none for items left alone');
});
