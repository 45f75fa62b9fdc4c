/**
 * Audit: commands that read a matter (or its billing options) and write it back whole must not
 * overwrite a change committed in between. On Postgres (READ COMMITTED) a close, a reopen, a
 * change without a version, or the next billing date a bill moves used to read the row, wait
 * for a concurrent change's row lock at their UPDATE, and then write back what they had read:
 * the other clerk's WIP cap, name or billed instalment silently went back. Each case below
 * holds the first change's transaction open until the second command is waiting on it
 * (Postgres); SQLite runs one writer at a time, so there the two simply run in turn.
 */
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { systemContext } from '../../src/shared/events.ts';
import { HttpError } from '../../src/shared/web/errors.ts';
import { mattersCommands } from './support.ts';

const ctx = systemContext('corr-audit-races', 'test');
type Cmds = ReturnType<typeof mattersCommands>;
type Tx = Parameters<Parameters<Cmds['batch']>[0]>[0];

/** Until some backend of this database waits on a lock (the second command is blocked) or `finished()`, at most 5 s. */
async function someoneWaits(db: TestDb, finished: () => boolean): Promise<void> {
  for (let i = 0; i < 250; i++) {
    if (finished()) return;
    const r = await sql<{ n: string | number }>`select count(*) as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`.execute(db.db);
    if (Number(r.rows[0]!.n) > 0) return;
    await new Promise((res) => setTimeout(res, 20));
  }
  throw new Error('the second command neither waited on the first nor finished');
}

/**
 * `first` runs in a transaction kept open until `second` (its own transaction) is waiting on
 * it, then commits; on SQLite the two run in turn. Returns second's outcome.
 */
async function whileHeld<T>(db: TestDb, cmds: Cmds, first: (tx: Tx) => Promise<unknown>, second: () => Promise<T>): Promise<PromiseSettledResult<T>> {
  if (db.dialect !== 'postgres') {
    await cmds.batch(first);
    return (await Promise.allSettled([second()]))[0]!;
  }
  let release!: () => void;
  const gate = new Promise<void>((res) => { release = res; });
  let started!: () => void;
  const inside = new Promise<void>((res) => { started = res; });
  const held = cmds.batch(async (tx) => { await first(tx); started(); await gate; });
  await inside;
  let finished = false;
  const out = Promise.allSettled([second()]).then((r) => { finished = true; return r; });
  try {
    await someoneWaits(db, () => finished);
  } finally {
    release();
  }
  await held;
  return (await out)[0]!;
}

async function firm(cmds: Cmds) {
  const tk = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  const client = await cmds.createClient(ctx, { name: 'Northwind' });
  const matter = await cmds.openMatter(ctx, {
    clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: tk.id, openedOn: '2026-01-01',
    billingCycle: 'MONTH', nextBillingDate: '2026-03-31', wipCapMinor: 500_000,
  });
  return { tk, client, matter };
}

eachDialect('closing, reopening or changing a matter keeps a change another clerk committed meanwhile', async (db) => {
  const cmds = mattersCommands(db);
  const { matter } = await firm(cmds);

  // Clerk A raises the WIP cap; clerk B closes the matter at the same moment.
  const closed = await whileHeld(db, cmds, (tx) => tx.updateMatter(ctx, matter.id, { wipCapMinor: 900_000 }), () => cmds.closeMatter(ctx, matter.id, '2026-03-02'));
  assert.equal(closed.status, 'fulfilled', String((closed as PromiseRejectedResult).reason));
  let now = await cmds.findMatter(matter.id);
  assert.equal(now?.status, 'closed');
  assert.equal(now?.wipCapMinor, 900_000, 'the close kept the cap raised meanwhile (it wrote back 5,000.00)');

  // Renamed while being reopened.
  const reopened = await whileHeld(db, cmds, (tx) => tx.updateMatter(ctx, matter.id, { name: 'Northwind v. Kestrel (appeal)' }), () => cmds.reopenMatter(ctx, matter.id));
  assert.equal(reopened.status, 'fulfilled', String((reopened as PromiseRejectedResult).reason));
  now = await cmds.findMatter(matter.id);
  assert.equal(now?.status, 'open');
  assert.equal(now?.name, 'Northwind v. Kestrel (appeal)', 'the reopen kept the new name');

  // Two changes without a version (API clients that send none): each keeps the other's field.
  const changed = await whileHeld(db, cmds, (tx) => tx.updateMatter(ctx, matter.id, { practiceArea: 'Litigation' }), () => cmds.updateMatter(ctx, matter.id, { wipCapMinor: 750_000 }));
  assert.equal(changed.status, 'fulfilled', String((changed as PromiseRejectedResult).reason));
  now = await cmds.findMatter(matter.id);
  assert.deepEqual([now?.practiceArea, now?.wipCapMinor], ['Litigation', 750_000]);

  // Closing twice at once: one closes, the other is told it is closed already (409).
  const twice = await whileHeld(db, cmds, (tx) => tx.closeMatter(ctx, matter.id, '2026-03-01'), () => cmds.closeMatter(ctx, matter.id, '2026-03-02'));
  assert.equal(twice.status, 'rejected');
  assert.ok((twice as PromiseRejectedResult).reason instanceof HttpError && (twice as PromiseRejectedResult).reason.status === 409);
  assert.equal((await cmds.findMatter(matter.id))?.closedOn, '2026-03-01');
});

eachDialect('a bill moving the next billing date keeps a change of the matter committed meanwhile', async (db) => {
  const cmds = mattersCommands(db);
  const { matter } = await firm(cmds);
  const bctx = systemContext('corr-bill', 'test');
  const moved = await whileHeld(db, cmds, (tx) => tx.updateMatter(ctx, matter.id, { wipCapMinor: 1_200_000, name: 'Renamed' }),
    () => cmds.batch((tx) => tx.advanceNextBillingDates([{ ctx: bctx, matterId: matter.id, billId: 'bill-1', billedOn: '2026-03-31' }])));
  assert.equal(moved.status, 'fulfilled', String((moved as PromiseRejectedResult).reason));
  const now = await cmds.findMatter(matter.id);
  assert.equal(now?.nextBillingDate, '2026-04-30');
  assert.deepEqual([now?.wipCapMinor, now?.name], [1_200_000, 'Renamed'], 'the clerk\'s change survived the bill follower');

  // The bill is deleted while the clerk renames again: the date goes back, the name stays.
  const restored = await whileHeld(db, cmds, (tx) => tx.updateMatter(ctx, matter.id, { name: 'Renamed again' }),
    () => cmds.batch((tx) => tx.restoreNextBillingDate(bctx, 'bill-1')));
  assert.equal(restored.status, 'fulfilled', String((restored as PromiseRejectedResult).reason));
  const after = await cmds.findMatter(matter.id);
  assert.deepEqual([after?.nextBillingDate, after?.name], ['2026-03-31', 'Renamed again']);
});

eachDialect('an instalment billed while a clerk saves the schedule stays billed: the stale save is refused', async (db) => {
  const cmds = mattersCommands(db);
  const { matter } = await firm(cmds);
  const set = await cmds.setBillingOptions(ctx, matter.id, { set: {
    arrangement: 'fixed_fee', quote: { amountMinor: 100_000 },
    fixedFee: { mode: 'custom_schedule', schedule: [
      { rowId: 'row-1', amountMinor: 40_000, description: 'First', billOn: '2026-03-01', billOnStep: null, payOnStep: null, invoiceNumber: null },
      { rowId: 'row-2', amountMinor: 60_000, description: 'Second', billOn: '2026-04-01', billOnStep: null, payOnStep: null, invoiceNumber: null },
    ] },
  } });
  // The schedule as the clerk's form shows it (nothing billed yet), with the second row's description changed.
  const typed = set.effective.fixedFee.schedule.map((r) => (r.rowId === 'row-2' ? { ...r, description: 'Second and last' } : { ...r }));
  const saved = await whileHeld(db, cmds, (tx) => tx.markScheduleRowBilled(ctx, matter.id, 'row-1', '1.1.1'),
    () => cmds.setBillingOptions(ctx, matter.id, { set: { fixedFee: { mode: 'custom_schedule', schedule: typed } } }));
  const row1 = (await cmds.getBillingOptions(matter.id)).effective.fixedFee.schedule.find((r) => r.rowId === 'row-1');
  assert.equal(row1?.invoiceNumber, '1.1.1', 'the billed instalment keeps its invoice number (else it would be billed again)');
  assert.equal(saved.status, 'rejected', 'the save made from the schedule before it was billed is refused');
  assert.ok((saved as PromiseRejectedResult).reason instanceof HttpError && (saved as PromiseRejectedResult).reason.status === 422);
});

eachDialect('under a refusing WIP cap, two recordings at once cannot together pass the cap', async (db) => {
  const cmds = mattersCommands(db);
  const { tk, matter } = await firm(cmds);
  await cmds.setTimekeeperRate(ctx, { timekeeperId: tk.id, effectiveFrom: '2026-01-01', rateMinor: 30_000 });
  await cmds.updateFirmSettings(ctx, { wipCapPolicy: 'refuse' });
  // Cap 5,000.00: 10 hours at 300.00 is 3,000.00, so only one of two such entries fits.
  const entry = (narrative: string) => ({ matterId: matter.id, timekeeperId: tk.id, workDate: '2026-03-02', rawMinutes: 600, narrative });
  const second = await whileHeld(db, cmds, (tx) => tx.recordTimeEntry(ctx, entry('Trial preparation')), () => cmds.recordTimeEntry(ctx, entry('Trial preparation, day 2')));
  assert.equal(second.status, 'rejected', 'the second entry is refused: with the first it passes the cap');
  assert.ok((second as PromiseRejectedResult).reason instanceof HttpError && (second as PromiseRejectedResult).reason.status === 422);
  assert.deepEqual(Object.keys((second as PromiseRejectedResult).reason.fields), ['amount']);
  const wip = (await cmds.capStatusFor(matter.id)).wipMinor;
  assert.equal(wip, 300_000, 'WIP stays within the cap');

  // An edit that adds WIP, while another entry is recorded: the same.
  const small = await cmds.recordTimeEntry(ctx, { ...entry('Call'), rawMinutes: 60 });
  const edited = await whileHeld(db, cmds, (tx) => tx.recordTimeEntry(ctx, { ...entry('Drafting'), rawMinutes: 180 }),
    () => cmds.updateTimeEntry(ctx, small.id, { rawMinutes: 300 }));
  assert.equal(edited.status, 'rejected', 'the edit is refused: with the entry recorded meanwhile it passes the cap');
  assert.equal((await cmds.capStatusFor(matter.id)).wipMinor, 420_000, 'WIP stays within the cap: 10 h + 1 h + 3 h');
});
