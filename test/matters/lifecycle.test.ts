/**
 * A matter's life on both databases: its details change, it closes and reopens; products
 * (charge types) and fixed charges; the WIP cap (warn or refuse); the demo firm's billing mix.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { createMattersCommands, seedDemoFirm } from '../../src/modules/matters/index.ts';
import type { MattersCommands } from '../../src/modules/matters/index.ts';
import type { MattersEvents } from '../../src/modules/matters/events.ts';
import { prng } from '../../src/cli/demo.ts';
import { manualClock } from '../../src/shared/clock.ts';
import { systemContext } from '../../src/shared/events.ts';
import { HttpError } from '../../src/shared/web/errors.ts';

const ctx = systemContext('corr-lifecycle', 'test');

function setup(db: TestDb) {
  const clock = manualClock('2026-03-02T09:00:00Z');
  return { clock, cmds: createMattersCommands({ db: db.db, clock, relay: { kick() {} } }) };
}

/** A partner at 300.00 an hour, a client, and a matter with a 1,000.00 WIP cap. */
async function firm(cmds: MattersCommands) {
  const partner = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  await cmds.setTimekeeperRate(ctx, { timekeeperId: partner.id, effectiveFrom: '2025-01-01', rateMinor: 30_000 });
  const associate = await cmds.createTimekeeper(ctx, { initials: 'SC', name: 'Sofia Castellano', classification: 'associate' });
  const client = await cmds.createClient(ctx, { name: 'Northwind Logistics Inc.' });
  const matter = await cmds.openMatter(ctx, {
    clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: partner.id, openedOn: '2026-01-15', wipCapMinor: 100_000,
  });
  return { partner, associate, client, matter };
}

async function rejectsFields(p: Promise<unknown>, fields: string[]): Promise<Record<string, string>> {
  let got: Record<string, string> = {};
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof HttpError, `expected HttpError, got ${String(e)}`);
    assert.equal(e.status, 422, e.message);
    got = { ...e.fields };
    assert.deepEqual(Object.keys(e.fields).sort(), [...fields].sort(), JSON.stringify(e.fields));
    return true;
  });
  return got;
}

const is409 = (re: RegExp) => (e: unknown) => e instanceof HttpError && e.status === 409 && re.test(e.message);

async function events<K extends keyof MattersEvents>(db: TestDb, type: K): Promise<MattersEvents[K][]> {
  const rows = await db.db.selectFrom('outbox').select('payload').where('type', '=', type).orderBy('seq').execute() as { payload: string }[];
  return rows.map((r) => JSON.parse(r.payload) as MattersEvents[K]);
}

eachDialect('updateMatter: details, timekeepers, cycle and cap change; matter_changed carries the whole matter', async (db) => {
  const { cmds } = setup(db);
  const { matter, associate } = await firm(cmds);
  assert.equal(matter.billingCycle, 'none');
  await rejectsFields(cmds.updateMatter(ctx, matter.id, { name: '', wipCapMinor: 0, billingCycle: 'monthly' as never, currency: 'EUR' } as never),
    ['name', 'wipCapMinor', 'billingCycle', 'currency']);
  await rejectsFields(cmds.updateMatter(ctx, matter.id, { responsibleTimekeeperId: 'ghost', nextBillingDate: '2026-04-01' }),
    ['responsibleTimekeeperId', 'nextBillingDate']);
  assert.equal((await events(db, 'matters.matter_changed')).length, 0);

  // Taking a cycle without a date bills one cycle from today.
  const monthly = await cmds.updateMatter(ctx, matter.id, { billingCycle: 'MONTH', billingTimekeeperId: associate.id, wipCapMinor: 250_000, practiceArea: ' Commercial Litigation ' });
  assert.deepEqual([monthly.billingCycle, monthly.nextBillingDate, monthly.billingTimekeeperId, monthly.wipCapMinor, monthly.practiceArea],
    ['MONTH', '2026-04-02', associate.id, 250_000, 'Commercial Litigation']);
  await rejectsFields(cmds.updateMatter(ctx, matter.id, { nextBillingDate: null }), ['nextBillingDate']);
  const quarterly = await cmds.updateMatter(ctx, matter.id, { billingCycle: 'QUARTER', nextBillingDate: '2026-06-30', timeUnitMinutes: 15, roundingMode: 'nearest' });
  assert.deepEqual([quarterly.nextBillingDate, quarterly.timeUnitMinutes, quarterly.roundingMode], ['2026-06-30', 15, 'nearest']);
  const none = await cmds.updateMatter(ctx, matter.id, { billingCycle: 'none', wipCapMinor: null, name: 'Northwind v. Kestrel Foods' });
  assert.deepEqual([none.nextBillingDate, none.wipCapMinor, none.name], [null, null, 'Northwind v. Kestrel Foods']);
  assert.deepEqual(await cmds.findMatter(matter.id), none);
  // The default behaviour is a billing option too.
  const hidden = await cmds.updateMatter(ctx, matter.id, { defaultBehaviour: 'no_charge' });
  assert.equal(hidden.defaultBehaviour, 'no_charge');
  const opts = await cmds.getBillingOptions(matter.id);
  assert.deepEqual([opts.effective.defaultTimeEntryBehaviour, opts.overridden], ['no_charge', ['defaultTimeEntryBehaviour']]);

  const changed = await events(db, 'matters.matter_changed');
  assert.equal(changed.length, 4);
  assert.deepEqual(changed[0], {
    matterId: matter.id, clientId: matter.clientId, clientNumber: 1, clientName: 'Northwind Logistics Inc.', matterNumber: 1, fileNumber: '1.1',
    name: 'Northwind v. Kestrel', status: 'open', practiceArea: 'Commercial Litigation', openedOn: '2026-01-15',
    responsibleTimekeeperId: matter.responsibleTimekeeperId, billingTimekeeperId: associate.id, originatingTimekeeperId: null,
    billingCycle: 'MONTH', nextBillingDate: '2026-04-02', wipCapMinor: 250_000, currency: 'USD', timeUnitMinutes: 6, roundingMode: 'up',
    defaultBehaviour: 'bill', closedOn: null, billableParty: { kind: 'client', contactId: null, name: 'Northwind Logistics Inc.', email: null, address: null },
    participants: [], updatedAt: '2026-03-02T09:00:00.000Z',
  });
  assert.equal(changed[3]!.defaultBehaviour, 'no_charge');
  // Nothing to change, nothing written.
  assert.deepEqual(await cmds.updateMatter(ctx, matter.id, { name: 'Northwind v. Kestrel Foods' }), hidden);
  assert.equal((await events(db, 'matters.matter_changed')).length, 4);
});

eachDialect('close and reopen: a closed matter takes no work; dates and states are checked', async (db) => {
  const { cmds, clock } = setup(db);
  const { matter, partner } = await firm(cmds);
  await rejectsFields(cmds.closeMatter(ctx, matter.id, '2026-02-30'), ['closedOn']);
  await rejectsFields(cmds.closeMatter(ctx, matter.id, '2026-01-14'), ['closedOn']);
  // A day after the clock's today: closing takes effect now, so a date to come is refused.
  const tomorrow = new Date(clock.now().getTime() + 86_400_000).toISOString().slice(0, 10);
  await rejectsFields(cmds.closeMatter(ctx, matter.id, tomorrow), ['closedOn']);
  await assert.rejects(cmds.reopenMatter(ctx, matter.id), is409(/open already/));
  clock.advanceMs(1_000);
  const closed = await cmds.closeMatter(ctx, matter.id, '2026-02-27');
  assert.deepEqual([closed.status, closed.closedOn], ['closed', '2026-02-27']);
  await assert.rejects(cmds.closeMatter(ctx, matter.id, '2026-02-28'), is409(/already closed \(on 2026-02-27\)/));
  const entry = { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-03-02', rawMinutes: 6, narrative: 'Call' };
  const refused = await rejectsFields(cmds.recordTimeEntry(ctx, entry), ['matterId']);
  assert.match(refused.matterId!, /is closed \(1\.1\): reopen it/);
  clock.advanceMs(1_000);
  const open = await cmds.reopenMatter(ctx, matter.id);
  assert.deepEqual([open.status, open.closedOn], ['open', null]);
  await cmds.recordTimeEntry(ctx, entry);
  const changed = await events(db, 'matters.matter_changed');
  assert.deepEqual(changed.map((m) => [m.status, m.closedOn]), [['closed', '2026-02-27'], ['open', null]]);
  const audit = await db.db.selectFrom('audit_log').select('action').where('entity_id', '=', matter.id).orderBy('at').execute();
  assert.deepEqual(audit.map((a) => a.action), ['matters.matter_opened', 'matters.matter_closed', 'matters.matter_reopened']);
  await assert.rejects(cmds.closeMatter(ctx, 'gone', '2026-03-01'), (e: unknown) => e instanceof HttpError && e.status === 404);
});

eachDialect('charge types and fixed charges: priced from the product, WIP like disbursements, quoted ones add no WIP', async (db) => {
  const { cmds } = setup(db);
  const { matter } = await firm(cmds);
  await cmds.updateMatter(ctx, matter.id, { wipCapMinor: null });
  await rejectsFields(cmds.createChargeType(ctx, { code: 'lease review', name: '', defaultPriceMinor: -1, taxCode: 'GST', taskCode: 'L100' }),
    ['code', 'name', 'defaultPriceMinor', 'taskCode', 'taxCode']);
  await rejectsFields(cmds.createChargeType(ctx, { code: 'LEASE', name: 'Lease review', defaultPriceMinor: 75_000, taxCode: 'GST' }), ['taxCode']);
  const lease = await cmds.createChargeType(ctx, { code: 'LEASE', name: 'Commercial lease review', defaultPriceMinor: 75_000, taskCode: 'L120', activityCode: 'A104' });
  await rejectsFields(cmds.createChargeType(ctx, { code: 'LEASE', name: 'Again', defaultPriceMinor: 1 }), ['code']);
  const binders = await cmds.createChargeType(ctx, { code: 'BINDERS', name: 'Trial binder set', defaultPriceMinor: 12_500, taxCode: 'SALES' });
  assert.deepEqual((await cmds.listChargeTypes()).map((t) => t.code), ['BINDERS', 'LEASE']);
  const renamed = await cmds.updateChargeType(ctx, binders.id, { name: 'Trial binder preparation (per set)', defaultPriceMinor: 15_000 });
  assert.deepEqual([renamed.name, renamed.defaultPriceMinor, renamed.taxCode], ['Trial binder preparation (per set)', 15_000, 'SALES']);
  assert.deepEqual((await events(db, 'matters.charge_type_changed')).map((t) => [t.code, t.defaultPriceMinor]), [['LEASE', 75_000], ['BINDERS', 12_500], ['BINDERS', 15_000]]);

  await rejectsFields(cmds.recordFixedCharge(ctx, { matterId: matter.id, chargedOn: '2026-13-01', chargeTypeId: '', quantityMilli: 0 }), ['chargedOn', 'chargeTypeId', 'quantityMilli']);
  await rejectsFields(cmds.recordFixedCharge(ctx, { matterId: matter.id, chargedOn: '2026-03-02', chargeTypeId: 'ghost' }), ['chargeTypeId']);
  const f1 = await cmds.recordFixedCharge(ctx, { matterId: matter.id, chargedOn: '2026-03-02', chargeTypeId: lease.id });
  assert.deepEqual([f1.unitPriceMinor, f1.quantityMilli, f1.amountMinor, f1.description, f1.taskCode, f1.taxCode, f1.quoted, f1.behaviour, f1.status],
    [75_000, 1_000, 75_000, 'Commercial lease review', 'L120', null, false, 'bill', 'unbilled']);
  const f2 = await cmds.recordFixedCharge(ctx, { matterId: matter.id, chargedOn: '2026-03-03', chargeTypeId: binders.id, quantityMilli: 2_500, description: 'Binders for the hearing' });
  assert.deepEqual([f2.unitPriceMinor, f2.amountMinor, f2.taxCode], [15_000, 37_500, 'SALES']);
  const quoted = await cmds.recordFixedCharge(ctx, { matterId: matter.id, chargedOn: '2026-03-04', chargeTypeId: lease.id, quoted: true, unitPriceMinor: 60_000 });
  assert.equal((await cmds.unbilledWipMinor([matter.id])).get(matter.id), 75_000 + 37_500, 'a quoted product adds nothing to WIP');
  assert.deepEqual((await cmds.listFixedCharges(matter.id)).map((f) => f.id), [f1.id, f2.id, quoted.id]);

  const recorded = await events(db, 'matters.wip_recorded');
  assert.deepEqual(recorded[1], {
    kind: 'fixed_charge', id: f2.id, matterId: matter.id, clientId: matter.clientId, chargedOn: '2026-03-03', chargeTypeId: binders.id,
    chargeCode: 'BINDERS', chargeName: 'Trial binder preparation (per set)', quantityMilli: 2_500, unitPriceMinor: 15_000, amountMinor: 37_500,
    currency: 'USD', taxCode: 'SALES', taskCode: null, activityCode: null, description: 'Binders for the hearing', quoted: false, behaviour: 'bill',
    status: 'unbilled',
  });
  assert.equal(recorded[2]!.kind === 'fixed_charge' && recorded[2]!.quoted, true);

  const edited = await cmds.updateFixedCharge(ctx, f2.id, { quantityMilli: 3_000, behaviour: 'no_charge' });
  assert.deepEqual([edited.amountMinor, edited.behaviour], [45_000, 'no_charge']);
  await rejectsFields(cmds.updateFixedCharge(ctx, f2.id, { description: ' ', taxCode: 'GST' }), ['description']);
  await rejectsFields(cmds.updateFixedCharge(ctx, f2.id, { taxCode: 'GST' }), ['taxCode']);
  await cmds.setWipStatus(ctx, [{ kind: 'fixed_charge', id: f1.id }], 'draft');
  await assert.rejects(cmds.updateFixedCharge(ctx, f1.id, { quantityMilli: 2_000 }), is409(/draft/));
  await assert.rejects(cmds.deleteFixedCharge(ctx, f1.id), is409(/draft/));
  await cmds.deleteFixedCharge(ctx, f2.id);
  assert.equal(await cmds.findFixedCharge(f2.id), null);
  assert.deepEqual((await events(db, 'matters.wip_deleted')).at(-1), { kind: 'fixed_charge', id: f2.id, matterId: matter.id });
  assert.deepEqual((await events(db, 'matters.wip_updated')).map((e) => [e.kind, e.status, e.amountMinor]), [['fixed_charge', 'unbilled', 45_000]]);
  assert.deepEqual(await events(db, 'matters.wip_status_changed'), [{ status: 'draft', items: [{ kind: 'fixed_charge', id: f1.id, matterId: matter.id }] }]);

  // An inactive product takes no new charges; in a batch the item is named.
  await cmds.updateChargeType(ctx, lease.id, { active: false });
  const inactive = await rejectsFields(cmds.recordWip(ctx, { fixedCharges: [{ matterId: matter.id, chargedOn: '2026-03-04', chargeTypeId: lease.id }] }), ['fixedCharges.0.chargeTypeId']);
  assert.match(inactive['fixedCharges.0.chargeTypeId']!, /inactive \(LEASE\)/);
  assert.deepEqual((await cmds.listChargeTypes({ activeOnly: true })).map((t) => t.code), ['BINDERS']);
});

eachDialect("WIP cap: over the cap warns under the firm's 'warn' policy and is refused under 'refuse'", async (db) => {
  const { cmds } = setup(db);
  const { matter, partner } = await firm(cmds);
  const entry = { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-03-02', narrative: 'Draft motion' };
  // 3 hours at 300.00 = 900.00: under the 1,000.00 cap.
  const first = await cmds.recordTimeEntryChecked(ctx, { ...entry, rawMinutes: 180 });
  assert.deepEqual([first.item.amountMinor, first.warnings], [90_000, []]);
  assert.deepEqual(await cmds.capStatusFor(matter.id), {
    matterId: matter.id, fileNumber: '1.1', currency: 'USD', wipMinor: 90_000, capMinor: 100_000, policy: 'warn', state: 'under', distanceMinor: 10_000, mustBill: false,
  });
  // Hidden work adds nothing; reaching the cap exactly is not over it.
  assert.deepEqual((await cmds.recordTimeEntryChecked(ctx, { ...entry, rawMinutes: 600, behaviour: 'hide' })).warnings, []);
  assert.deepEqual((await cmds.recordDisbursementChecked(ctx, { matterId: matter.id, incurredOn: '2026-03-02', code: 'COURT', unitCostMinor: 10_000, description: 'Fee' })).warnings, []);
  assert.equal((await cmds.capStatusFor(matter.id)).state, 'at');
  const over = await cmds.recordTimeEntryChecked(ctx, { ...entry, rawMinutes: 6 });
  assert.deepEqual(over.warnings, ['Matter 1.1 is over its WIP cap: WIP not yet billed (unbilled or on a draft) is now $1,030.00, over the cap of $1,000.00. Bill the matter.']);
  assert.equal((await cmds.recordTimeEntry(ctx, { ...entry, rawMinutes: 6 })).amountMinor, 3_000, 'the plain command still records under warn');
  assert.deepEqual((await cmds.capStatusFor(matter.id)).state, 'over');
  // Work dated after today is taken, and said (no bill up to today takes it; a mistyped year shows here).
  const ahead = await cmds.recordTimeEntryChecked(ctx, { ...entry, workDate: '2062-03-02', rawMinutes: 6, behaviour: 'hide' });
  assert.deepEqual(ahead.warnings, ['Dated 2062-03-02, after today (2026-03-02): no bill up to today takes it. Check the date.']);

  await cmds.updateFirmSettings(ctx, { wipCapPolicy: 'refuse' });
  const outbox = (await db.db.selectFrom('outbox').select('id').execute()).length;
  const refused = await rejectsFields(cmds.recordTimeEntry(ctx, { ...entry, rawMinutes: 6 }), ['amount']);
  assert.equal(refused.amount, 'would take WIP to $1,090.00, over the cap of $1,000.00');
  await rejectsFields(cmds.recordDisbursement(ctx, { matterId: matter.id, incurredOn: '2026-03-02', code: 'COPY', unitCostMinor: 1, description: 'Copy' }), ['amount']);
  const product = await cmds.createChargeType(ctx, { code: 'NDA', name: 'NDA review', defaultPriceMinor: 40_000 });
  await rejectsFields(cmds.recordFixedCharge(ctx, { matterId: matter.id, chargedOn: '2026-03-02', chargeTypeId: product.id }), ['amount']);
  assert.equal((await db.db.selectFrom('outbox').select('id').execute()).length, outbox + 1, 'only the charge type was added');
  // What adds nothing is still recorded; a quoted product is not WIP.
  await cmds.recordTimeEntry(ctx, { ...entry, rawMinutes: 60, behaviour: 'no_charge' });
  await cmds.recordFixedCharge(ctx, { matterId: matter.id, chargedOn: '2026-03-02', chargeTypeId: product.id, quoted: true });

  // In a batch, the cap counts the items in order and names the one that goes over.
  await cmds.updateMatter(ctx, matter.id, { wipCapMinor: 112_000 });
  const batch = await rejectsFields(cmds.recordWip(ctx, {
    timeEntries: [{ ...entry, rawMinutes: 6 }, { ...entry, rawMinutes: 6 }],
    disbursements: [{ matterId: matter.id, incurredOn: '2026-03-02', code: 'COPY', unitCostMinor: 1, description: 'Copy' }],
  }), ['disbursements.0.amount']);
  assert.match(batch['disbursements.0.amount']!, /\$1,120\.01, over the cap of \$1,120\.00/);
  await cmds.updateFirmSettings(ctx, { wipCapPolicy: 'warn' });
  const warned = await cmds.recordWip(ctx, { timeEntries: [{ ...entry, rawMinutes: 6 }, { ...entry, rawMinutes: 6 }, { ...entry, rawMinutes: 6 }] });
  assert.equal(warned.warnings.length, 1, 'one warning per matter');
  assert.match(warned.warnings[0]!, /\$1,150\.00, over the cap of \$1,120\.00/);
  assert.deepEqual(warned.fixedCharges, []);

  // Editing is no way round a refusing cap: hidden work turned to bill, more time, a dearer
  // disbursement or product are refused as recording them would be; what adds nothing passes.
  await cmds.updateMatter(ctx, matter.id, { wipCapMinor: 120_000 });
  await cmds.updateFirmSettings(ctx, { wipCapPolicy: 'refuse' });
  const hidden = await cmds.recordTimeEntry(ctx, { ...entry, rawMinutes: 600, behaviour: 'hide' });
  assert.match((await rejectsFields(cmds.updateTimeEntry(ctx, hidden.id, { behaviour: 'bill' }), ['behaviour'])).behaviour!, /would take WIP to \$4,150\.00, over the cap of \$1,200\.00/);
  const small = await cmds.recordTimeEntry(ctx, { ...entry, rawMinutes: 6, behaviour: 'hide' });
  await cmds.updateTimeEntry(ctx, small.id, { behaviour: 'bill' }); // 1,150.00 + 30.00: under the cap
  assert.match((await rejectsFields(cmds.updateTimeEntry(ctx, small.id, { rawMinutes: 60 }), ['amount'])).amount!, /\$1,450\.00/);
  const copy = await cmds.recordDisbursement(ctx, { matterId: matter.id, incurredOn: '2026-03-02', code: 'COPY', unitCostMinor: 100, description: 'Copy' });
  await rejectsFields(cmds.updateDisbursement(ctx, copy.id, { unitCostMinor: 10_000 }), ['amount']);
  const nda = await cmds.recordFixedCharge(ctx, { matterId: matter.id, chargedOn: '2026-03-02', chargeTypeId: product.id, quoted: true });
  await rejectsFields(cmds.updateFixedCharge(ctx, nda.id, { quoted: false }), ['amount']);
  // Less, or nothing billable: fine.
  await cmds.updateTimeEntry(ctx, small.id, { narrative: 'Call (re-worded)' });
  await cmds.updateDisbursement(ctx, copy.id, { unitCostMinor: 50 });
  await cmds.updateTimeEntry(ctx, hidden.id, { rawMinutes: 900 });
  assert.equal((await cmds.capStatusFor(matter.id)).wipMinor, 118_050);
});

eachDialect('the demo firm mixes billing options, contacts, products and fixed charges, deterministically', async (db) => {
  const clock = manualClock('2026-11-20T12:00:00Z');
  const cmds = createMattersCommands({ db: db.db, clock, relay: { kick() {} } });
  const r = await seedDemoFirm(cmds, { matters: 60, entriesPerMatter: 6, seed: 5, random: prng, fixedCharges: true });
  assert.equal(r.matters, 60);
  const byFile = <T extends { fileNumber: string }>(ms: T[]) => ms.sort((a, b) => a.fileNumber.localeCompare(b.fileNumber, 'en', { numeric: true }));
  const matters = byFile(await cmds.listMatters());
  // One query at a time: parallel reads would open many pooled connections for nothing.
  const each = async <T>(f: (id: string) => Promise<T>, ms = matters): Promise<T[]> => {
    const out: T[] = [];
    for (const m of ms) out.push(await f(m.id));
    return out;
  };
  const views = await each((id) => cmds.getBillingOptions(id));
  const eff = views.map((v) => v.effective);
  const some = (p: (o: (typeof eff)[number]) => boolean) => eff.filter(p).length;
  assert.ok(some((o) => o.arrangement === 'fixed_fee' && o.fixedFee.mode === 'custom_schedule' && o.fixedFee.schedule.length > 1) > 0, 'fixed fee on a custom schedule');
  assert.ok(some((o) => o.arrangement === 'fixed_fee' && o.fixedFee.mode === 'every_cycle' && o.quote.amountMinor !== null) > 0, 'fixed fee every cycle');
  assert.ok(new Set(eff.filter((o) => o.quote.amountMinor !== null).map((o) => `${o.quote.ifWipBelow}/${o.quote.ifWipAbove}`)).size >= 3, 'quotes with different choices');
  assert.ok(some((o) => o.discount.kind !== 'none') > 0, 'discounts');
  assert.ok(some((o) => o.feeAllocation.originationEnabled) > 0, 'origination');
  assert.ok(some((o) => o.ebilling.enabled && o.ebilling.clientLedesId !== '' && o.ebilling.matterLedesId.length <= 20) > 0, 'e-billing');
  assert.ok(some((o) => o.sendTo.length > 0) > 0, 'bills emailed');
  assert.ok(views.some((v) => v.overridden.length === 0) && views.some((v) => v.overridden.length >= 3), 'some inherit everything, some override several sections');
  const settings = await cmds.getFirmSettings();
  assert.equal(settings.generalRetainersEnabled, true);
  // Every schedule adds up to its quote; e-billed work carries UTBMS codes.
  for (const o of eff) {
    if (o.fixedFee.mode === 'custom_schedule' && o.fixedFee.schedule.length > 0) assert.equal(o.fixedFee.schedule.reduce((a, x) => a + x.amountMinor, 0), o.quote.amountMinor);
  }
  const details = await each((id) => cmds.getMatterDetails(id));
  assert.ok(details.some((d) => d.billableParty.kind === 'contact') && details.some((d) => d.billableParty.kind === 'client'));
  assert.ok(details.some((d) => d.participants.length > 0));
  const fixed = (await each((id) => cmds.listFixedCharges(id))).flat();
  assert.ok(fixed.length > 0 && fixed.some((f) => f.quoted) && fixed.some((f) => !f.quoted));
  assert.equal((await cmds.listChargeTypes()).length, 6);
  const ebilled = matters.filter((_, i) => eff[i]!.ebilling.enabled).map((m) => m.id);
  const uncoded = await db.db.selectFrom('matters_time_entry').select('id').where('matter_id', 'in', ebilled).where('task_code', 'is', null).execute();
  assert.equal(uncoded.length, 0);

  // Deterministic: the same seed gives the same options.
  const other = await import('../support/db.ts').then((m) => m.freshDatabase(db.dialect));
  try {
    const cmds2 = createMattersCommands({ db: other.db, clock, relay: { kick() {} } });
    await seedDemoFirm(cmds2, { matters: 60, entriesPerMatter: 6, seed: 5, random: prng, fixedCharges: true });
    const matters2 = byFile(await cmds2.listMatters());
    const strip = (o: unknown) => JSON.stringify(o).replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, 'ID');
    const eff2 = await each((id) => cmds2.getBillingOptions(id), matters2);
    assert.deepEqual(eff2.map(strip), views.map(strip));
  } finally {
    await other.close();
  }
}, { timeout: 300_000 });

eachDialect('billable time that rounds to nothing under the matter\'s unit is refused naming the minutes (it would bill $0 unsaid); no-charge time is taken', async (db) => {
  const { cmds } = setup(db);
  const { matter, partner } = await firm(cmds);
  const entry = (rawMinutes: number, extra: { behaviour?: 'bill' | 'no_charge' } = {}) =>
    ({ matterId: matter.id, timekeeperId: partner.id, workDate: '2026-02-27', rawMinutes, narrative: 'Short call', ...extra });
  // Table: unit and rounding, minutes, refused?
  const cases: [number, 'up' | 'down' | 'nearest', number, boolean][] = [
    [6, 'down', 2, true], [6, 'down', 5, true], [6, 'down', 6, false],
    [6, 'nearest', 2, true], [6, 'nearest', 3, false], [6, 'up', 1, false], [15, 'nearest', 7, true], [15, 'nearest', 8, false],
  ];
  for (const [unit, mode, minutes, refusedIt] of cases) {
    await cmds.updateMatter(ctx, matter.id, { timeUnitMinutes: unit, roundingMode: mode });
    if (refusedIt) {
      const fields = await rejectsFields(cmds.recordTimeEntry(ctx, entry(minutes)), ['rawMinutes']);
      const least = mode === 'nearest' ? Math.ceil(unit / 2) : unit;
      assert.match(fields.rawMinutes!, new RegExp(`^${minutes} minutes? rounds? to nothing with this matter's ${unit}-minute unit \\(rounding ${mode}\\), which would bill nothing: record at least ${least} minutes, or record it as no charge$`));
    } else {
      const t = await cmds.recordTimeEntry(ctx, entry(minutes));
      assert.ok(t.billedMinutes > 0, `${unit} ${mode} ${minutes}`);
    }
  }
  await cmds.updateMatter(ctx, matter.id, { timeUnitMinutes: 6, roundingMode: 'down' });
  const free = await cmds.recordTimeEntry(ctx, entry(2, { behaviour: 'no_charge' }));
  assert.deepEqual([free.billedMinutes, free.amountMinor], [0, 0]);
  // ...but not made billable as it is.
  await rejectsFields(cmds.updateTimeEntry(ctx, free.id, { behaviour: 'bill' }, (await cmds.findVersion('matters_time_entry', free.id)) ?? undefined), ['rawMinutes']);
  // Edited down to nothing: refused the same way, the entry as it was.
  const kept = await cmds.recordTimeEntry(ctx, entry(12));
  await rejectsFields(cmds.updateTimeEntry(ctx, kept.id, { rawMinutes: 4 }, (await cmds.findVersion('matters_time_entry', kept.id)) ?? undefined), ['rawMinutes']);
  assert.equal((await cmds.listTimeEntries(matter.id)).find((t) => t.id === kept.id)?.rawMinutes, 12);
});
