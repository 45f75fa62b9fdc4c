import assert from 'node:assert/strict';
import pino from 'pino';
import { eachDialect, freshDatabase } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { createMattersCommands, seedDemoFirm } from '../../src/modules/matters/index.ts';
import { isActivityCode, isExpenseCode, isTaskCode } from '../../src/modules/matters/domain.ts';
import { buildRuntime } from '../../src/main.ts';
import { DEMO_LETTERHEAD, prng, seedDemo } from '../../src/cli/demo.ts';
import { manualClock } from '../../src/shared/clock.ts';

const AS_OF = '2026-11-20';

async function seed(db: TestDb, seedValue: number, matters = 14, entriesPerMatter = 9) {
  const clock = manualClock(`${AS_OF}T12:00:00Z`);
  const cmds = createMattersCommands({ db: db.db, clock, relay: { kick() {} } });
  return seedDemoFirm(cmds, { matters, entriesPerMatter, seed: seedValue, random: prng });
}

/** Everything a person would see of the firm, without ids and timestamps, in a stable order. */
async function picture(db: TestDb) {
  const sorted = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).sort();
  const timekeepers = await db.db.selectFrom('matters_timekeeper as t')
    .leftJoin('matters_timekeeper_rate as r', 'r.timekeeper_id', 't.id')
    .select(['t.initials', 't.name', 't.classification', 't.ledes_classification', 'r.effective_from', 'r.rate_minor']).execute();
  const clients = await db.db.selectFrom('matters_client')
    .select(['client_number', 'name', 'email', 'address', 'tax_id']).execute();
  const clientRates = await db.db.selectFrom('matters_client_rate as r').innerJoin('matters_client as c', 'c.id', 'r.client_id')
    .innerJoin('matters_timekeeper as t', 't.id', 'r.timekeeper_id').select(['c.client_number', 't.initials', 'r.rate_minor']).execute();
  const matters = await db.db.selectFrom('matters_matter as m').innerJoin('matters_timekeeper as t', 't.id', 'm.responsible_timekeeper_id')
    .select(['m.file_number', 'm.name', 'm.practice_area', 'm.opened_on', 'm.billing_cycle', 'm.next_billing_date', 'm.wip_cap_minor', 'm.currency', 't.initials']).execute();
  const entries = await db.db.selectFrom('matters_time_entry as e').innerJoin('matters_matter as m', 'm.id', 'e.matter_id')
    .innerJoin('matters_timekeeper as t', 't.id', 'e.timekeeper_id')
    .select(['m.file_number', 't.initials', 'e.work_date', 'e.raw_minutes', 'e.billed_minutes', 'e.rate_minor', 'e.rate_source', 'e.override_reason',
      'e.amount_minor', 'e.narrative', 'e.task_code', 'e.activity_code', 'e.behaviour', 'e.status']).execute();
  const disbursements = await db.db.selectFrom('matters_disbursement as d').innerJoin('matters_matter as m', 'm.id', 'd.matter_id')
    .select(['m.file_number', 'd.incurred_on', 'd.code', 'd.expense_code', 'd.quantity_milli', 'd.unit_cost_minor', 'd.amount_minor',
      'd.description', 'd.payee', 'd.behaviour']).execute();
  return {
    timekeepers: sorted(timekeepers), clients: sorted(clients), clientRates: sorted(clientRates), matters: sorted(matters),
    entries: sorted(entries), disbursements: sorted(disbursements),
    raw: { matters, entries, disbursements },
  };
}

eachDialect('the demo firm is deterministic: same seed, same firm; another seed, another firm', async (db) => {
  const other = await freshDatabase(db.dialect);
  const third = await freshDatabase(db.dialect);
  try {
    const a = await seed(db, 7);
    const b = await seed(other, 7);
    const c = await seed(third, 8);
    assert.deepEqual(a, b);
    assert.deepEqual(a, { alreadySeeded: false, timekeepers: 6, clients: a.clients, matters: 14, timeEntries: 14 * 9, disbursements: 14 });
    assert.ok(a.clients >= 3 && a.clients <= 14, `clients ${a.clients}`);

    const pa = await picture(db);
    const pb = await picture(other);
    const pc = await picture(third);
    const { raw, ...same } = pa;
    assert.deepEqual(same, (({ raw: _r, ...rest }) => rest)(pb));
    assert.notDeepEqual(pa.matters, pc.matters);
    assert.notDeepEqual(pa.entries, pc.entries);

    // Realistic: litigation codes, 6-minute units, rates from the rate tables, a mix of behaviours.
    assert.equal(raw.entries.length, 126);
    for (const e of raw.entries as any[]) {
      assert.ok(isTaskCode(e.task_code) && e.task_code.startsWith('L'), e.task_code);
      assert.ok(isActivityCode(e.activity_code), e.activity_code);
      assert.equal(Number(e.billed_minutes) % 6, 0);
      assert.ok(Number(e.billed_minutes) >= Number(e.raw_minutes) && Number(e.billed_minutes) - Number(e.raw_minutes) < 6);
      assert.equal(Number(e.amount_minor), Math.floor((Number(e.rate_minor) * Number(e.billed_minutes) * 2 + 60) / 120));
      assert.ok(e.work_date <= AS_OF && e.work_date >= '2026-05-24', e.work_date);
    }
    for (const d of raw.disbursements as any[]) assert.ok(isExpenseCode(d.expense_code), d.expense_code);
    assert.ok(new Set((raw.matters as any[]).map((m) => m.billing_cycle)).size >= 2, 'a mix of billing cycles');
    assert.ok(new Set((raw.entries as any[]).map((e) => e.rate_source)).size >= 1);
    assert.match((raw.matters as any[])[0].file_number, /^\d+\.\d+$/);

    // Every item was announced to billing.
    const n = await db.db.selectFrom('outbox').select('id').where('type', '=', 'matters.wip_recorded').execute();
    assert.equal(n.length, 14 * 9 + 14);
    const opened = await db.db.selectFrom('outbox').select('id').where('type', '=', 'matters.matter_opened').execute();
    assert.equal(opened.length, 14);

    // Seeding again adds nothing.
    assert.deepEqual(await seed(db, 7), { alreadySeeded: true, timekeepers: 0, clients: 0, matters: 0, timeEntries: 0, disbursements: 0 });
  } finally {
    await other.close();
    await third.close();
  }
});

eachDialect('a bigger demo firm spans several chunked transactions', async (db) => {
  const r = await seed(db, 3, 120, 40);
  assert.deepEqual([r.matters, r.timeEntries, r.disbursements], [120, 4_800, 600]);
  const counted = await db.db.selectFrom('matters_time_entry').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  assert.equal(Number(counted.n), 4_800);
  const caps = await db.db.selectFrom('matters_matter').select('wip_cap_minor').where('wip_cap_minor', 'is not', null).execute();
  assert.ok(caps.length > 0, 'some matters have WIP caps');
  const behaviours = await db.db.selectFrom('matters_time_entry').select('behaviour').distinct().execute();
  assert.deepEqual(behaviours.map((b) => b.behaviour).sort(), ['bill', 'hide', 'no_charge']);
  const sources = await db.db.selectFrom('matters_time_entry').select('rate_source').distinct().execute();
  assert.deepEqual(sources.map((s) => s.rate_source).sort(), ['client', 'matter', 'override', 'timekeeper']);
}, { timeout: 300_000 });

eachDialect('seed-demo adds staff and the firm, and reports the counts', async (db) => {
  const clock = manualClock(`${AS_OF}T12:00:00Z`);
  const rt = await buildRuntime(db, { clock, logger: pino({ level: 'silent' }) });
  const first = await seedDemo(rt, { matters: 5, entriesPerMatter: 4, seed: 11 });
  assert.deepEqual({ ...first, clients: 0 }, {
    usersCreated: 5, firmAlreadySeeded: false, timekeepers: 6, clients: 0, matters: 5, timeEntries: 20, disbursements: 5,
  });
  assert.ok(first.clients >= 1);
  // The demo firm's letterhead is set, so its bills are not signed "Your firm".
  const letterhead = await db.db.selectFrom('billing_settings').select(['firm_name', 'version']).where('id', '=', 'firm').executeTakeFirstOrThrow();
  assert.deepEqual([letterhead.firm_name, Number(letterhead.version)], [DEMO_LETTERHEAD.firmName, 1]);
  // The demo's timekeeper sign-ins record their own timekeeper's time.
  const linked = await db.db.selectFrom('matters_timekeeper').select(['initials', 'staff_email']).where('staff_email', 'is not', null).orderBy('initials').execute();
  assert.deepEqual(linked, [{ initials: 'MH', staff_email: 'partner@demo.lexbill.test' }, { initials: 'SC', staff_email: 'associate@demo.lexbill.test' }]);
  const again = await seedDemo(rt, { matters: 5, entriesPerMatter: 4, seed: 11 });
  assert.deepEqual(again, { usersCreated: 0, firmAlreadySeeded: true, timekeepers: 0, clients: 0, matters: 0, timeEntries: 0, disbursements: 0 });
  assert.equal(Number((await db.db.selectFrom('billing_settings').select('version').where('id', '=', 'firm').executeTakeFirstOrThrow()).version), 1, 'seeded again: the letterhead as it was');
  await rt.relay.stop();
}, { timeout: 300_000 });
