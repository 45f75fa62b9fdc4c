/**
 * Firm billing settings and matter billing options (seed 002) through the commands, on both
 * databases: inheritance and its events, validation that names the field and writes nothing,
 * the billing-off rule, the fixed-fee schedule and its billed rows, e-billing code rules.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import type { MattersCommands } from '../../src/modules/matters/index.ts';
import type { MattersEvents } from '../../src/modules/matters/events.ts';
import { manualClock } from '../../src/shared/clock.ts';
import { systemContext } from '../../src/shared/events.ts';
import { HttpError } from '../../src/shared/web/errors.ts';

const ctx = systemContext('corr-options', 'test');

function setup(db: TestDb) {
  const clock = manualClock('2026-03-02T09:00:00Z');
  const cmds = createMattersCommands({ db: db.db, clock, relay: { kick() {} } });
  return { clock, cmds };
}

/** One partner (320.00 an hour), one client and `n` monthly matters. */
async function firm(cmds: MattersCommands, n = 1) {
  const partner = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  await cmds.setTimekeeperRate(ctx, { timekeeperId: partner.id, effectiveFrom: '2025-01-01', rateMinor: 32_000 });
  const client = await cmds.createClient(ctx, { name: 'Northwind Logistics Inc.', email: 'ap@northwind.example' });
  const matters = [];
  for (let i = 0; i < n; i++) {
    matters.push(await cmds.openMatter(ctx, {
      clientId: client.id, name: `Matter ${i + 1}`, responsibleTimekeeperId: partner.id, openedOn: '2026-01-15', billingCycle: 'MONTH',
      nextBillingDate: '2026-03-31',
    }));
  }
  return { partner, client, matters, matter: matters[0]! };
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

const TABLES = ['matters_firm_settings', 'matters_matter_options', 'matters_matter', 'matters_time_entry', 'outbox', 'audit_log'];

async function snapshot(db: TestDb): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const t of TABLES) out[t] = (await db.db.selectFrom(t).selectAll().execute()).map((r) => JSON.stringify(r)).sort();
  return out;
}

async function events<K extends keyof MattersEvents>(db: TestDb, type: K): Promise<MattersEvents[K][]> {
  const rows = await db.db.selectFrom('outbox').select('payload').where('type', '=', type).orderBy('seq').execute() as { payload: string }[];
  return rows.map((r) => JSON.parse(r.payload) as MattersEvents[K]);
}

eachDialect('firm settings: sensible defaults, saved and announced once on the first read', async (db) => {
  const { cmds } = setup(db);
  const s = await cmds.getFirmSettings();
  assert.deepEqual([s.currency, s.timeUnitMinutes, s.timeRounding, s.paymentTermsDays, s.wipCapPolicy, s.defaultFeeTaxCode],
    ['USD', 6, 'up', 30, 'warn', 'EXEMPT']);
  assert.deepEqual(await cmds.getFirmSettings(), s);
  const announced = await events(db, 'matters.firm_settings_changed');
  assert.equal(announced.length, 1, 'the defaults are published once, so subscribers know them');
  assert.deepEqual(announced[0]!.settings, s);
  const rows = await db.db.selectFrom('matters_firm_settings').select(['id', 'version']).execute();
  assert.deepEqual(rows.map((r) => [r.id, Number(r.version)]), [['firm', 1]]);

  const r = await cmds.updateFirmSettings(ctx, { paymentTermsDays: 14, taxRates: [...s.taxRates, { code: 'VAT20', name: 'VAT', basisPoints: 2_000 }] });
  assert.equal(r.settings.paymentTermsDays, 14);
  assert.equal(r.mattersChanged, 0);
  assert.deepEqual((await cmds.getFirmSettings()).taxRates.map((t) => t.code), ['EXEMPT', 'SALES', 'VAT20']);
  const audit = await db.db.selectFrom('audit_log').select(['action', 'before_json', 'after_json']).where('action', '=', 'matters.firm_settings_changed').execute();
  assert.equal(audit.length, 1);
  assert.equal(JSON.parse(String(audit[0]!.before_json)).paymentTermsDays, 30);
  assert.equal(JSON.parse(String(audit[0]!.after_json)).paymentTermsDays, 14);
  assert.equal((await events(db, 'matters.firm_settings_changed')).length, 2);

  // New matters take the firm's time unit, rounding and currency.
  await cmds.updateFirmSettings(ctx, { timeUnitMinutes: 15, timeRounding: 'nearest', currency: 'EUR' });
  const { matter } = await firm(cmds);
  assert.deepEqual([matter.timeUnitMinutes, matter.roundingMode, matter.currency], [15, 'nearest', 'EUR']);
  // Saving the same settings again writes nothing.
  const before = await snapshot(db);
  assert.equal((await cmds.updateFirmSettings(ctx, { paymentTermsDays: 14 })).mattersChanged, 0);
  assert.deepEqual(await snapshot(db), before);
});

eachDialect('a firm default reaches the matters that inherit it, not those that override it', async (db) => {
  const { cmds } = setup(db);
  const { matters: [a, b, c] } = await firm(cmds, 3);
  await cmds.setBillingOptions(ctx, b!.id, { set: { discount: { kind: 'fixed', amountMinor: 25_000 } } });
  await cmds.setBillingOptions(ctx, c!.id, { set: { copiesToPrint: 2 } });
  const optionEventsBefore = (await events(db, 'matters.billing_options_changed')).length;
  assert.equal(optionEventsBefore, 2);

  const r = await cmds.updateFirmSettings(ctx, { matterDefaults: { discount: { kind: 'percentage', percentBasisPoints: 500 } } });
  assert.equal(r.mattersChanged, 2);
  assert.deepEqual(r.settings.matterDefaults.discount, { kind: 'percentage', percentBasisPoints: 500, amountMinor: 0 });
  const changed = (await events(db, 'matters.billing_options_changed')).slice(optionEventsBefore);
  assert.deepEqual(changed.map((e) => e.matterId).sort(), [a!.id, c!.id].sort(), 'only the matters that inherit the discount');
  for (const e of changed) assert.deepEqual(e.effective.discount, { kind: 'percentage', percentBasisPoints: 500, amountMinor: 0 });
  assert.deepEqual(changed.find((e) => e.matterId === c!.id)!.overridden, ['copiesToPrint']);
  assert.equal(changed.find((e) => e.matterId === c!.id)!.effective.copiesToPrint, 2);
  const firmEvents = await events(db, 'matters.firm_settings_changed');
  assert.deepEqual(firmEvents.at(-1)!.settings.matterDefaults.discount.percentBasisPoints, 500);

  const ob = await cmds.getBillingOptions(b!.id);
  assert.deepEqual(ob.effective.discount, { kind: 'fixed', percentBasisPoints: 0, amountMinor: 25_000 });
  assert.deepEqual(ob.overridden, ['discount']);
  assert.equal(ob.inherited.length, 19);
  assert.equal((await cmds.getBillingOptions(a!.id)).effective.discount.percentBasisPoints, 500);

  // Inheriting again drops the override: the firm's value applies.
  const back = await cmds.setBillingOptions(ctx, b!.id, { inherit: ['discount'] });
  assert.deepEqual(back.overridden, []);
  assert.equal(back.effective.discount.percentBasisPoints, 500);
  // A default every matter overrides reaches none.
  await cmds.setBillingOptions(ctx, a!.id, { set: { copiesToPrint: 0 } });
  await cmds.setBillingOptions(ctx, b!.id, { set: { copiesToPrint: 1 } });
  assert.equal((await cmds.updateFirmSettings(ctx, { matterDefaults: { copiesToPrint: 2 } })).mattersChanged, 0);

  // The default entry behaviour follows the options, for the matters that inherit it.
  const { partner } = { partner: (await cmds.listTimekeepers())[0]! };
  await cmds.setBillingOptions(ctx, c!.id, { set: { defaultTimeEntryBehaviour: 'bill' } });
  assert.equal((await cmds.updateFirmSettings(ctx, { matterDefaults: { defaultTimeEntryBehaviour: 'no_charge' } })).mattersChanged, 2);
  assert.equal((await cmds.findMatter(a!.id))!.defaultBehaviour, 'no_charge');
  assert.equal((await cmds.findMatter(c!.id))!.defaultBehaviour, 'bill');
  const entry = { timekeeperId: partner.id, workDate: '2026-03-02', rawMinutes: 6, narrative: 'Call' };
  assert.equal((await cmds.recordTimeEntry(ctx, { ...entry, matterId: a!.id })).behaviour, 'no_charge');
  assert.equal((await cmds.recordTimeEntry(ctx, { ...entry, matterId: c!.id })).behaviour, 'bill');
  await cmds.setBillingOptions(ctx, a!.id, { set: { defaultTimeEntryBehaviour: 'hide' } });
  assert.equal((await cmds.findMatter(a!.id))!.defaultBehaviour, 'hide');
  // A matter opened with its own default behaviour overrides that option.
  const client = (await cmds.listClients())[0]!;
  const own = await cmds.openMatter(ctx, { clientId: client.id, name: 'Own default', responsibleTimekeeperId: partner.id, defaultBehaviour: 'bill' });
  assert.deepEqual((await cmds.getBillingOptions(own.id)).overridden, ['defaultTimeEntryBehaviour']);
});

eachDialect('invalid options name the field and change nothing', async (db) => {
  const { cmds } = setup(db);
  const { matter, partner } = await firm(cmds);
  await cmds.getFirmSettings();
  const before = await snapshot(db);
  const set = (s: object) => cmds.setBillingOptions(ctx, matter.id, { set: s as never });

  const bad = await rejectsFields(set({ sendTo: ['ap@northwind.example', 'accounts at northwind'], copiesToPrint: 3, discount: { kind: 'percentage', percentBasisPoints: 20_000 } }),
    ['sendTo.1', 'copiesToPrint', 'discount.percentBasisPoints']);
  assert.match(bad['sendTo.1']!, /is not an email address/);
  await rejectsFields(set({ colour: 'blue' }), ['colour']);
  await rejectsFields(cmds.setBillingOptions(ctx, matter.id, { set: { copiesToPrint: 2 }, inherit: ['copiesToPrint', 'nonsense' as never] }), ['inherit', 'copiesToPrint']);
  await rejectsFields(set({ feeAllocation: { allocateFees: 'selected', originationEnabled: true, originationBasisPoints: 1_000 } }),
    ['feeAllocation.feesTimekeeperId', 'feeAllocation.originatorTimekeeperId']);
  await rejectsFields(set({ feeAllocation: { allocateFees: 'selected', feesTimekeeperId: 'someone-else' } }), ['feeAllocation.feesTimekeeperId']);
  await rejectsFields(set({ quote: { amountMinor: -100 }, retainerReplenishment: { enabled: true, minimumBalanceMinor: 500_000, triggerMinor: 300_000 } }),
    ['quote.amountMinor', 'retainerReplenishment.enabled']);
  await rejectsFields(set({ generalRetainer: { enabled: true } }), ['generalRetainer.enabled']);
  await rejectsFields(set({ arrangement: 'fixed_fee' }), ['quote.amountMinor']);
  await rejectsFields(set({ fixedFee: { mode: 'custom_schedule', schedule: [{ amountMinor: 0, billOn: 'soon' }] } }),
    ['fixedFee.schedule.0.amountMinor', 'fixedFee.schedule.0.billOn']);
  await rejectsFields(set({ ebilling: { enabled: true } }), ['ebilling.clientLedesId', 'ebilling.matterLedesId']);
  await rejectsFields(cmds.updateFirmSettings(ctx, { matterDefaults: { discount: { kind: 'percentage', percentBasisPoints: 10_001 } }, paymentTermsDays: 1.5 }),
    ['matterDefaults.discount.percentBasisPoints', 'paymentTermsDays']);
  await rejectsFields(cmds.updateFirmSettings(ctx, { defaultFeeTaxCode: 'GST' }), ['defaultFeeTaxCode']);
  await rejectsFields(cmds.updateFirmSettings(ctx, { matterDefaults: { feeAllocation: { allocateFees: 'selected', feesTimekeeperId: 'ghost' } } }),
    ['matterDefaults.feeAllocation.feesTimekeeperId']);
  await assert.rejects(cmds.setBillingOptions(ctx, 'no-such-matter', { set: { copiesToPrint: 1 } }), (e: unknown) => e instanceof HttpError && e.status === 404);
  assert.deepEqual(await snapshot(db), before, 'no row, event or audit entry was written');

  const ok = await set({ sendTo: [' ap@northwind.example ', 'gc@northwind.example'], useClientAddress: false, feeAllocation: { allocateFees: 'selected', feesTimekeeperId: partner.id } });
  assert.deepEqual(ok.effective.sendTo, ['ap@northwind.example', 'gc@northwind.example']);
  assert.deepEqual(ok.overridden, ['sendTo', 'useClientAddress', 'feeAllocation']);
  assert.deepEqual(ok.warnings, []);
  const audit = await db.db.selectFrom('audit_log').select(['after_json']).where('action', '=', 'matters.billing_options_changed').execute();
  assert.deepEqual(Object.keys(JSON.parse(String(audit[0]!.after_json)).overrides).sort(), ['feeAllocation', 'sendTo', 'useClientAddress']);
});

eachDialect('a firm change that would leave inheriting matters with invalid options is refused, naming them', async (db) => {
  const { cmds } = setup(db);
  const { matters: [a, b] } = await firm(cmds, 2);
  await cmds.updateFirmSettings(ctx, { generalRetainersEnabled: true, matterDefaults: { generalRetainer: { enabled: true } } });
  await cmds.setBillingOptions(ctx, a!.id, { set: { retainerReplenishment: { enabled: true, minimumBalanceMinor: 500_000, triggerMinor: 300_000 } } });
  const before = await snapshot(db);
  const refused = await rejectsFields(cmds.updateFirmSettings(ctx, { matterDefaults: { generalRetainer: { enabled: false } } }),
    ['matterDefaults.retainerReplenishment.enabled']);
  assert.match(refused['matterDefaults.retainerReplenishment.enabled']!, /1 matter .*\(1\.1\)/);
  const off = await rejectsFields(cmds.updateFirmSettings(ctx, { generalRetainersEnabled: false }), ['matterDefaults.generalRetainer.enabled']);
  assert.ok(off);
  assert.deepEqual(await snapshot(db), before);
  await cmds.setBillingOptions(ctx, b!.id, { set: { generalRetainer: { enabled: true } } });
  const beforeAgain = await snapshot(db);
  const offAgain = await rejectsFields(cmds.updateFirmSettings(ctx, { generalRetainersEnabled: false, matterDefaults: { generalRetainer: { enabled: false } } }),
    ['generalRetainersEnabled', 'matterDefaults.retainerReplenishment.enabled']);
  assert.match(offAgain.generalRetainersEnabled!, /1 matter still uses a general retainer \(1\.2\)/);
  assert.deepEqual(await snapshot(db), beforeAgain, 'a refused firm change writes nothing');
});

eachDialect('billing cannot be turned off while billable or billed items remain, and the reason says how many', async (db) => {
  const { cmds } = setup(db);
  const { matter, matters: [, other], partner } = await firm(cmds, 2);
  // No items: off and on again.
  assert.equal((await cmds.setBillingOptions(ctx, matter.id, { set: { billingEnabled: false } })).effective.billingEnabled, false);
  await cmds.setBillingOptions(ctx, matter.id, { inherit: ['billingEnabled'] });

  const entry = { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-03-02', rawMinutes: 30, narrative: 'Review' };
  const t1 = await cmds.recordTimeEntry(ctx, entry);
  await cmds.recordTimeEntry(ctx, { ...entry, behaviour: 'hide' });
  const before = await snapshot(db);
  const one = await rejectsFields(cmds.setBillingOptions(ctx, matter.id, { set: { billingEnabled: false } }), ['billingEnabled']);
  assert.equal(one.billingEnabled, 'You can not turn this off while there are any billable or billed items remaining (1 billable item not yet billed)');
  assert.deepEqual(await snapshot(db), before);

  const d = await cmds.recordDisbursement(ctx, { matterId: matter.id, incurredOn: '2026-03-02', code: 'COURT', unitCostMinor: 40_500, description: 'Filing fee' });
  await cmds.setWipStatus(ctx, [{ kind: 'time', id: t1.id }], 'billed');
  await cmds.setWipStatus(ctx, [{ kind: 'disbursement', id: d.id }], 'draft');
  const both = await rejectsFields(cmds.setBillingOptions(ctx, matter.id, { set: { billingEnabled: false } }), ['billingEnabled']);
  assert.match(both.billingEnabled!, /\(1 billable item not yet billed and 1 billed item\)$/);

  // A firm default turning billing off is refused for the matters that still have items.
  const firmOff = await rejectsFields(cmds.updateFirmSettings(ctx, { matterDefaults: { billingEnabled: false } }), ['matterDefaults.billingEnabled']);
  assert.match(firmOff['matterDefaults.billingEnabled']!, /1 matter .*\(1\.1\).*billable or billed items remaining/);
  // Another matter without items may still be turned off on its own.
  await cmds.setBillingOptions(ctx, other!.id, { set: { billingEnabled: false } });
  const statuses = await events(db, 'matters.wip_status_changed');
  assert.deepEqual(statuses.map((e) => [e.status, e.items.map((i) => [i.kind, i.id, i.matterId])]), [['billed', [['time', t1.id, matter.id]]], ['draft', [['disbursement', d.id, matter.id]]]]);
});

eachDialect('billing cannot be turned off while a custom schedule has instalments to bill or billed (seed 002: they are items too)', async (db) => {
  const { cmds } = setup(db);
  const { matter } = await firm(cmds);
  const row = (n: number) => ({ rowId: `r${n}`, amountMinor: 25_000, description: `Instalment ${n}`, billOn: `2026-0${n}-01`, billOnStep: null, payOnStep: null, invoiceNumber: null });
  await cmds.setBillingOptions(ctx, matter.id, { set: { arrangement: 'fixed_fee', quote: { amountMinor: 50_000 }, fixedFee: { mode: 'custom_schedule', schedule: [row(1), row(2)] } } });
  const before = await snapshot(db);
  const two = await rejectsFields(cmds.setBillingOptions(ctx, matter.id, { set: { billingEnabled: false } }), ['billingEnabled']);
  assert.equal(two.billingEnabled, 'You can not turn this off while there are any billable or billed items remaining (2 billable items not yet billed)');
  assert.deepEqual(await snapshot(db), before, 'refused: nothing written');
  await cmds.markScheduleRowBilled(ctx, matter.id, 'r1', '1.1.1');
  const one = await rejectsFields(cmds.setBillingOptions(ctx, matter.id, { set: { billingEnabled: false } }), ['billingEnabled']);
  assert.match(one.billingEnabled!, /\(1 billable item not yet billed and 1 billed item\)$/);
  // The firm default turning billing off is refused for it too.
  const firmOff = await rejectsFields(cmds.updateFirmSettings(ctx, { matterDefaults: { billingEnabled: false } }), ['matterDefaults.billingEnabled']);
  assert.match(firmOff['matterDefaults.billingEnabled']!, /\(1\.1\)/);
  // Billed on an hourly arrangement now, the instalment billed still counts; the unbilled one no longer bills.
  await cmds.setBillingOptions(ctx, matter.id, { set: { arrangement: 'hourly' } });
  const billed = await rejectsFields(cmds.setBillingOptions(ctx, matter.id, { set: { billingEnabled: false } }), ['billingEnabled']);
  assert.match(billed.billingEnabled!, /\(1 billed item\)$/);
  // Once the bill is gone (deleted: the instalment unmarked), nothing remains: billing goes off.
  await cmds.clearScheduleRowBilled(ctx, matter.id, 'r1', '1.1.1');
  assert.equal((await cmds.setBillingOptions(ctx, matter.id, { set: { billingEnabled: false } })).effective.billingEnabled, false);
});

eachDialect('fixed-fee schedule: auto-fill, billed instalments protected, differences reported', async (db) => {
  const { cmds, clock } = setup(db);
  const { matter } = await firm(cmds);
  await rejectsFields(cmds.autoFillSchedule(ctx, matter.id, { firstAmountMinor: 9_000 }), ['quote.amountMinor']);
  await cmds.setBillingOptions(ctx, matter.id, { set: { arrangement: 'fixed_fee', quote: { amountMinor: 100_000 }, fixedFee: { mode: 'custom_schedule', schedule: [] } } });
  const filled = await cmds.autoFillSchedule(ctx, matter.id, { firstAmountMinor: 9_000 });
  const rows = filled.effective.fixedFee.schedule;
  assert.deepEqual(rows.map((r) => r.amountMinor), [...Array.from({ length: 11 }, () => 9_000), 1_000], 'seed 002: 11 rows of 90.00 and one of 10.00');
  assert.deepEqual(rows.slice(0, 3).map((r) => r.billOn), ['2026-03-31', '2026-04-30', '2026-05-31'], 'from the next billing date, a month apart');
  assert.deepEqual(filled.warnings, []);
  assert.ok(rows.every((r) => /^[0-9a-f-]{36}$/.test(r.rowId)));

  // Billing marks the first instalment billed; doing it again is a no-op; another bill conflicts.
  const eventsBefore = (await events(db, 'matters.billing_options_changed')).length;
  const marked = await cmds.markScheduleRowBilled(ctx, matter.id, rows[0]!.rowId, '1.1.1');
  assert.equal(marked.effective.fixedFee.schedule[0]!.invoiceNumber, '1.1.1');
  await cmds.markScheduleRowBilled(ctx, matter.id, rows[0]!.rowId, '1.1.1');
  assert.equal((await events(db, 'matters.billing_options_changed')).length, eventsBefore + 1);
  await assert.rejects(cmds.markScheduleRowBilled(ctx, matter.id, rows[0]!.rowId, '1.1.2'), (e: unknown) => e instanceof HttpError && e.status === 409);
  await assert.rejects(cmds.markScheduleRowBilled(ctx, matter.id, 'no-row', '1.1.2'), (e: unknown) => e instanceof HttpError && e.status === 404);

  // The billed row can be neither deleted nor changed; an invoice number cannot be typed in.
  const current = marked.effective.fixedFee.schedule;
  const before = await snapshot(db);
  const setSchedule = (schedule: object[]) => cmds.setBillingOptions(ctx, matter.id, { set: { fixedFee: { schedule: schedule as never } } });
  const deleted = await rejectsFields(setSchedule(current.slice(1)), ['fixedFee.schedule']);
  assert.match(deleted['fixedFee.schedule']!, /billed instalments cannot be deleted: \$90\.00 billed on 1\.1\.1/);
  await rejectsFields(setSchedule([{ ...current[0]!, amountMinor: 10_000 }, ...current.slice(1)]), ['fixedFee.schedule.0']);
  await rejectsFields(setSchedule([...current.slice(0, 2), { ...current[2]!, invoiceNumber: '1.1.9' }]), ['fixedFee.schedule.2.invoiceNumber']);
  await rejectsFields(cmds.setBillingOptions(ctx, matter.id, { inherit: ['fixedFee'] }), ['fixedFee.schedule']);
  assert.deepEqual(await snapshot(db), before);

  // Unbilled rows may change; a total that differs from the quote is reported, not refused.
  const edited = await setSchedule([current[0]!, { ...current[1]!, amountMinor: 19_000 }, { amountMinor: 5_000, billOn: '2027-06-30', description: 'Final' }]);
  assert.equal(edited.effective.fixedFee.schedule.length, 3);
  assert.ok(edited.effective.fixedFee.schedule[2]!.rowId.length > 0, 'a new row gets an id');
  assert.deepEqual(edited.warnings, ['The custom schedule totals $330.00, $670.00 less than the quote of $1,000.00.']);

  // Auto-fill again keeps the billed row and schedules the rest of the quote.
  const again = await cmds.autoFillSchedule(ctx, matter.id, { firstAmountMinor: 25_000, startDate: '2026-06-15', description: 'Stage payment' });
  const s2 = again.effective.fixedFee.schedule;
  assert.deepEqual(s2.map((r) => [r.amountMinor, r.invoiceNumber]), [[9_000, '1.1.1'], [25_000, null], [25_000, null], [25_000, null], [16_000, null]]);
  assert.deepEqual(s2.slice(1).map((r) => r.billOn), ['2026-06-15', '2026-07-15', '2026-08-15', '2026-09-15']);
  assert.equal(s2[1]!.description, 'Stage payment');

  // Billing deleted the bill: the instalment is unbilled again (the invoice number must match).
  await assert.rejects(cmds.clearScheduleRowBilled(ctx, matter.id, s2[0]!.rowId, '1.1.7'), (e: unknown) => e instanceof HttpError && e.status === 409);
  clock.advanceMs(1_000);
  const cleared = await cmds.clearScheduleRowBilled(ctx, matter.id, s2[0]!.rowId, '1.1.1');
  assert.equal(cleared.effective.fixedFee.schedule[0]!.invoiceNumber, null);
  const audits = await db.db.selectFrom('audit_log').select('action').where('action', 'like', 'matters.schedule_row%').orderBy('at').execute();
  assert.deepEqual(audits.map((a) => a.action), ['matters.schedule_row_billed', 'matters.schedule_row_unbilled']);
});

eachDialect('e-billing: time needs task and activity codes, disbursements an expense code, from the matter code set', async (db) => {
  const { cmds } = setup(db);
  const { matter, partner } = await firm(cmds);
  const entry = { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-03-02', rawMinutes: 30, narrative: 'Review pleadings' };
  await cmds.recordTimeEntry(ctx, entry); // fine before e-billing
  await rejectsFields(cmds.setBillingOptions(ctx, matter.id, { set: { ebilling: { enabled: true, clientLedesId: 'NORTHWIND-CLIENT-00001', matterLedesId: 'M|1' } } }),
    ['ebilling.clientLedesId', 'ebilling.matterLedesId']);
  const on = await cmds.setBillingOptions(ctx, matter.id, { set: { ebilling: { enabled: true, clientLedesId: 'NW-001', matterLedesId: 'LF-1.1' } } });
  assert.deepEqual(on.effective.ebilling, { enabled: true, codeSet: 'litigation', format: 'LEDES1998B', clientLedesId: 'NW-001', matterLedesId: 'LF-1.1' });
  assert.deepEqual(on.warnings, ['1 unbilled item of 1.1 has no UTBMS codes: add them before e-billing.']);

  const before = await snapshot(db);
  const noCodes = await rejectsFields(cmds.recordTimeEntry(ctx, entry), ['taskCode', 'activityCode']);
  assert.match(noCodes.taskCode!, /is required: matter 1\.1 is e-billed \(LEDES1998B, litigation codes\)/);
  await rejectsFields(cmds.recordTimeEntry(ctx, { ...entry, taskCode: 'L200', activityCode: 'A103' }), ['taskCode']);
  await rejectsFields(cmds.recordDisbursement(ctx, { matterId: matter.id, incurredOn: '2026-03-02', code: 'COURT', unitCostMinor: 1_000, description: 'Fee' }), ['expenseCode']);
  await rejectsFields(cmds.recordWip(ctx, { timeEntries: [{ ...entry, taskCode: 'L210', activityCode: 'A103' }, { ...entry, taskCode: 'L210' }] }), ['timeEntries.1.activityCode']);
  // Codes are checked when given, e-billed or not.
  await rejectsFields(cmds.recordTimeEntry(ctx, { ...entry, taskCode: 'X999', activityCode: 'A103' }), ['taskCode']);
  assert.deepEqual(await snapshot(db), before);

  const t = await cmds.recordTimeEntry(ctx, { ...entry, taskCode: 'L210', activityCode: 'A103' });
  await cmds.recordDisbursement(ctx, { matterId: matter.id, incurredOn: '2026-03-02', code: 'COURT', expenseCode: 'E112', unitCostMinor: 1_000, description: 'Fee' });
  await rejectsFields(cmds.updateTimeEntry(ctx, t.id, { taskCode: null }), ['taskCode']);
  // Fixed charges carry codes from their charge type.
  const plain = await cmds.createChargeType(ctx, { code: 'MISC', name: 'Miscellaneous service', defaultPriceMinor: 10_000 });
  const coded = await cmds.createChargeType(ctx, { code: 'DEMAND', name: 'Demand letter', defaultPriceMinor: 35_000, taskCode: 'L160', activityCode: 'A103' });
  await rejectsFields(cmds.recordFixedCharge(ctx, { matterId: matter.id, chargedOn: '2026-03-02', chargeTypeId: plain.id }), ['taskCode', 'activityCode']);
  const f = await cmds.recordFixedCharge(ctx, { matterId: matter.id, chargedOn: '2026-03-02', chargeTypeId: coded.id });
  assert.deepEqual([f.taskCode, f.activityCode, f.amountMinor], ['L160', 'A103', 35_000]);

  assert.equal(cmds.utbmsCodes().length, 69);
  assert.equal(cmds.utbmsCodes('expense').length, 24);
  assert.deepEqual(cmds.utbmsCodes('litigation').filter((c) => c.kind === 'phase').map((c) => c.code), ['L100', 'L200', 'L300', 'L400', 'L500']);
});
