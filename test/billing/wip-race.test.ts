/**
 * A WIP item changed or deleted in matters while a bill is being made of it: the bill is never
 * approved at a value matters no longer holds. Postgres runs writers side by side, so a second
 * server (its own connections and relay) changes the items while the drafting transaction is
 * open: the change waits for the bill's lock on the items and is then recorded as a conflict on
 * the bill; a change committed between the bill's read and its lock refuses the bill (409), to
 * be made again from the items as they are. SQLite runs one writer at a time: a second
 * connection cannot write while the drafting transaction is open, so the change comes after it,
 * with the same outcome.
 */
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src/adapters/db/index.ts';
import { openSqlite } from '../../src/adapters/db/sqlite.ts';
import { buildRuntime } from '../../src/main.ts';
import { createBillingCommands, createMassBilling } from '../../src/modules/billing/index.ts';
import * as store from '../../src/modules/billing/store.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import type { Clock } from '../../src/shared/clock.ts';
import { HttpError } from '../../src/shared/web/errors.ts';
import { eachDialect, freshDatabase } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { ctx, firm, logger, setup, work } from './support.ts';

const isPostgres = (db: TestDb) => !db.url.startsWith('sqlite:');

/** A second server on the same database: its own connections, matters commands and relay. */
async function secondServer(db: TestDb, clock: Clock) {
  const database = openDatabase(db.url);
  const rt = await buildRuntime(database, { clock, logger });
  const cmds = createMattersCommands({ db: database.db, clock, relay: rt.relay });
  return { cmds, drain: () => rt.relay.drain(), close: async () => { await rt.relay.stop(); await database.close(); } };
}

/**
 * Who changes the items: on Postgres a second server; on SQLite the app's one connection (an
 * in-memory database has no other), so the change comes after the transaction under test.
 */
async function changer(db: TestDb, s: Awaited<ReturnType<typeof setup>>) {
  return isPostgres(db) ? secondServer(db, s.clock) : { cmds: s.cmds, drain: () => s.rt.relay.drain(), close: async () => undefined };
}

/** Postgres: true once a session of this database waits for a lock (within about 5 s), or as soon as `done` settles: false. */
async function someoneWaitsForALock(db: TestDb, done: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void done.then(() => { settled = true; }, () => { settled = true; });
  for (let i = 0; i < 250 && !settled; i++) {
    const n = await sql<{ n: string }>`select count(*) as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`.execute(db.db);
    if (Number(n.rows[0]!.n) > 0) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

/** A firm with a matter's work delivered, mass billing, and who changes the items (changer); both stopped afterwards. */
async function withRace(db: TestDb, fn: (r: { s: Awaited<ReturnType<typeof setup>>; other: Awaited<ReturnType<typeof changer>>; f: Awaited<ReturnType<typeof firm>>; w: Awaited<ReturnType<typeof work>>; mass: ReturnType<typeof createMassBilling> }) => Promise<void>): Promise<void> {
  const s = await setup(db);
  const other = await changer(db, s);
  try {
    const f = await firm(s.cmds);
    const w = await work(s.cmds, f.matter.id, f);
    await s.drain();
    await fn({ s, other, f, w, mass: createMassBilling({ db: db.db, clock: s.clock, relay: s.rt.relay }, s.billing) });
  } finally {
    await other.close();
    await s.rt.relay.stop();
  }
}

eachDialect('items changed and deleted in matters while a bill run drafts them: the bill records the conflicts and is not approved until recomposed from them as they are', async (db) => {
  await withRace(db, async ({ s, other, f, w, mass }) => {
    let delivering: Promise<unknown> | null = null;
    const change = async () => {
      await other.cmds.updateTimeEntry(ctx, w.t1.id, { rawMinutes: 600 });
      await other.cmds.deleteTimeEntry(ctx, w.t2.id);
      // The second server's relay copies the changes to billing: on Postgres it waits for the bill's lock on the items.
      delivering = other.drain();
    };
    // Postgres: hold the drafting transaction open until the copy of the changes has been made, or is waiting for a lock.
    const copiedOrWaiting = async () => { await someoneWaitsForALock(db, delivering!); };
    const [outcome] = await mass.draftMatters(ctx, [f.matter.id], { invoiceDate: '2026-03-01', upTo: '2026-02-28', request: {} }, {
      // Inside the drafting transaction, its lines written: only Postgres lets another server write now.
      onChunk: async () => { if (isPostgres(db)) { await change(); await copiedOrWaiting(); } },
    });
    if (!isPostgres(db)) await change();
    await delivering;
    assert.ok(outcome?.ok, JSON.stringify(outcome));
    const billId = outcome.bill.billId;
    await s.drain();
    const drafted = (await s.billing.findBill(billId))!;
    assert.equal(drafted.lines.find((l) => l.itemId === w.t1.id)?.minutes, 120, 'drafted from the items as read');

    const conflicts = await db.db.selectFrom('billing_copy_conflict').select(['entity_id', 'reason']).where('bill_id', '=', billId).where('resolved_at', 'is', null).orderBy('reason').execute();
    assert.deepEqual(conflicts.map((c) => [c.entity_id, c.reason]), [[w.t1.id, 'changed_while_on_bill'], [w.t2.id, 'deleted_while_on_bill']]);
    const [refusal] = await mass.approveMany(ctx, [billId]);
    assert.equal(refusal?.ok, false, 'not approved while matters disagrees with its lines');

    // Recomposed: the changed entry at its new time, the deleted one gone; then it is approved.
    const again = await s.billing.updateDraft(ctx, billId, {});
    assert.equal(again.lines.find((l) => l.itemId === w.t1.id)?.minutes, 600);
    assert.equal(again.lines.some((l) => l.itemId === w.t2.id), false);
    const [approved] = await mass.approveMany(ctx, [billId]);
    assert.equal(approved?.ok, true, JSON.stringify(approved));
  });
});

eachDialect('a bill takes its items only as it read them: an item changed or deleted since is refused (409) on Postgres; on SQLite no other writer can change it meanwhile', async (db) => {
  if (!isPostgres(db)) {
    // The premise: while a bill's transaction is open, another connection's write is refused, not interleaved.
    const dir = mkdtempSync(join(tmpdir(), 'lexbill-wip-race-'));
    const file = join(dir, 'firm.db');
    const first = await freshDatabase('sqlite', { file });
    const second = openSqlite(file, { busyTimeoutMs: 0 });
    try {
      await first.db.transaction().execute(async (trx) => {
        await trx.updateTable('billing_batch').set({ updated_at: 'x' }).where('id', '=', 'none').execute();
        await assert.rejects(second.db.transaction().execute((t2) => t2.updateTable('billing_batch').set({ updated_at: 'y' }).where('id', '=', 'none').execute()),
          (e: Error & { code?: string }) => e.code === 'SQLITE_BUSY');
      });
    } finally {
      await second.close();
      await first.close();
      rmSync(dir, { recursive: true, force: true });
    }
    return;
  }
  const s = await setup(db);
  const other = await secondServer(db, s.clock);
  try {
    const f = await firm(s.cmds);
    const w = await work(s.cmds, f.matter.id, f);
    await s.drain();
    const read = await store.unbilledWip(db.db, f.matter.id, '2026-02-28');
    assert.equal(read.length, 4);
    // As read: taken.
    await db.db.transaction().execute((trx) => store.lockItemsAsComposed(trx, read));
    await other.cmds.updateTimeEntry(ctx, w.t1.id, { rawMinutes: 600 });
    await other.drain();
    const stale = db.db.transaction().execute((trx) => store.lockItemsAsComposed(trx, read));
    await assert.rejects(stale, (e: unknown) => e instanceof HttpError && e.status === 409 && /changed or deleted in matters/.test(e.message));
    const fresh = await store.unbilledWip(db.db, f.matter.id, '2026-02-28');
    await db.db.transaction().execute((trx) => store.lockItemsAsComposed(trx, fresh));
    // As a bill run reads them (the composer's columns only).
    const slim = (await store.unbilledWipOf(db.db, [f.matter.id], '2026-02-28', { payload: false })).get(f.matter.id)!;
    assert.equal(slim.length, 4);
    await db.db.transaction().execute((trx) => store.lockItemsAsComposed(trx, slim));
    // Matters sends an item again on an edit that leaves what a bill is made of as it was: the
    // copy is written again (a later write), and the item is still taken.
    await other.cmds.updateTimeEntry(ctx, w.t1.id, { behaviour: 'bill' });
    await other.drain();
    const rewritten = await db.db.selectFrom('billing_wip').select('event_id').where('id', '=', w.t1.id).executeTakeFirstOrThrow();
    assert.notEqual(rewritten.event_id, fresh.find((x) => x.id === w.t1.id)!.eventId, 'the copy was written again');
    await db.db.transaction().execute((trx) => store.lockItemsAsComposed(trx, fresh));
    await db.db.transaction().execute((trx) => store.lockItemsAsComposed(trx, slim));
    await other.cmds.deleteTimeEntry(ctx, w.t2.id);
    await other.drain();
    await assert.rejects(db.db.transaction().execute((trx) => store.lockItemsAsComposed(trx, fresh)), (e: unknown) => e instanceof HttpError && e.status === 409);
    await assert.rejects(db.db.transaction().execute((trx) => store.lockItemsAsComposed(trx, slim)), (e: unknown) => e instanceof HttpError && e.status === 409);
  } finally {
    await other.close();
    await s.rt.relay.stop();
  }
});

eachDialect('approving holds the bills while it reads their conflicts: a change copied meanwhile waits for the approval on Postgres and is then recorded against the bill; one copied before refuses the approval', async (db) => {
  await withRace(db, async ({ s, other, f, w, mass }) => {
    // Matters has not heard of the draft yet (its event not delivered): it still lets the entry be changed.
    const d = await s.billing.createDraft(ctx, { matterId: f.matter.id, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
    const openConflicts = async () => (await db.db.selectFrom('billing_copy_conflict').select('reason').where('bill_id', '=', d.billId).where('resolved_at', 'is', null).execute()).map((r) => r.reason);
    if (isPostgres(db)) {
      let delivering: Promise<unknown> | null = null;
      await db.db.transaction().execute(async (trx) => {
        await store.lockBillsAgainstConflicts(trx, [d.billId]);
        await other.cmds.updateTimeEntry(ctx, w.t1.id, { rawMinutes: 600 });
        delivering = other.drain();
        // The copy waits for the lock (it would otherwise have recorded the conflict by now, unseen by this transaction's read).
        const waited = await someoneWaitsForALock(db, delivering);
        assert.ok(waited, 'the copy of the change waits for the approving transaction');
        assert.deepEqual(await openConflicts(), [], 'nothing recorded while the approval holds the bill');
      });
      await delivering;
      assert.deepEqual(await openConflicts(), ['changed_while_on_bill'], 'recorded once the approval let go');
    } else {
      await other.cmds.updateTimeEntry(ctx, w.t1.id, { rawMinutes: 600 });
      await other.drain();
      assert.deepEqual(await openConflicts(), ['changed_while_on_bill']);
    }
    const [refused] = await mass.approveMany(ctx, [d.billId]);
    assert.equal(refused?.ok, false, 'a bill with a conflict is not approved');
  });
});

/** A conflict as the projection records it when an item on a bill changes in matters (store.insertConflict's input). */
function conflictRecord(billId: string, matterId: string, itemId: string) {
  return {
    id: `c-${billId}`, eventId: `e-${billId}`, eventType: 'matters.wip_updated', entityType: 'wip', entityId: itemId, matterId,
    billId, reason: 'changed_while_on_bill', detail: undefined, detectedAt: '2026-03-01T00:00:00.000Z',
  };
}

eachDialect('a conflict being recorded holds its bill: an approval meanwhile waits for it on Postgres, then sees it and refuses', async (db) => {
  await withRace(db, async ({ s, f, w, mass }) => {
    const d = await s.billing.createDraft(ctx, { matterId: f.matter.id, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
    if (isPostgres(db)) {
      let approving: Promise<Awaited<ReturnType<typeof mass.approveMany>>> | null = null;
      await db.db.transaction().execute(async (trx) => {
        // A projection recording the conflict, not yet committed (it holds the bill's conflicts lock, shared).
        await store.insertConflict(trx, conflictRecord(d.billId, f.matter.id, w.t1.id));
        approving = mass.approveMany(ctx, [d.billId]);
        assert.ok(await someoneWaitsForALock(db, approving), 'the approval waits for the conflict being recorded');
      });
      const [refused] = await approving!;
      assert.equal(refused?.ok, false, 'the conflict committed meanwhile refuses the approval');
      assert.match(refused?.ok === false ? refused.reason : '', /changed or were deleted in matters/);
    } else {
      await db.db.transaction().execute((trx) => store.insertConflict(trx, conflictRecord(d.billId, f.matter.id, w.t1.id)));
      const [refused] = await mass.approveMany(ctx, [d.billId]);
      assert.equal(refused?.ok, false, 'a bill with a conflict is not approved');
    }
    const bill = await db.db.selectFrom('billing_bill').select(['status', 'number']).where('id', '=', d.billId).executeTakeFirstOrThrow();
    assert.deepEqual(bill, { status: 'draft', number: null }, 'still a draft, unnumbered');
  });
});

eachDialect('a draft saved while a conflict is being recorded waits for it on Postgres, so the save composes from the change it records (never resolving a conflict it did not see)', async (db) => {
  await withRace(db, async ({ s, f, w }) => {
    const d = await s.billing.createDraft(ctx, { matterId: f.matter.id, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
    const recording = conflictRecord(d.billId, f.matter.id, w.t1.id);
    const resolvedAt = async () => (await db.db.selectFrom('billing_copy_conflict').select('resolved_at').where('id', '=', recording.id).executeTakeFirstOrThrow()).resolved_at;
    if (isPostgres(db)) {
      let saving: Promise<unknown> | null = null;
      await db.db.transaction().execute(async (trx) => {
        await store.insertConflict(trx, recording);
        saving = s.billing.updateDraft(ctx, d.billId, {});
        assert.ok(await someoneWaitsForALock(db, saving), 'the save waits for the conflict being recorded');
      });
      await saving;
    } else {
      await db.db.transaction().execute((trx) => store.insertConflict(trx, recording));
      await s.billing.updateDraft(ctx, d.billId, {});
    }
    assert.notEqual(await resolvedAt(), null, 'the save came after the conflict: it recomposed the bill and resolved it');
  });
});
