import assert from 'node:assert/strict';
import pino from 'pino';
import { eachDialect } from './support/db.ts';
import { createBus } from '../src/shared/bus.ts';
import { manualClock } from '../src/shared/clock.ts';
import { systemContext } from '../src/shared/events.ts';
import { appendEvent, createRelay } from '../src/shared/outbox.ts';

type TestEvents = { 'test.thing_happened': { n: number }; 'test.other_happened': { label: string } };
const logger = pino({ level: 'silent' });
const ctx = systemContext('corr-1', 'test');

async function append(db: { db: any }, clock: ReturnType<typeof manualClock>, from: number, to: number): Promise<void> {
  await db.db.transaction().execute(async (trx: any) => {
    for (let n = from; n <= to; n++) await appendEvent<TestEvents, 'test.thing_happened'>(trx, clock, ctx, 'test.thing_happened', { n });
  });
}

eachDialect('a handler stuck on an early event does not starve the other handlers of events past one batch', async (db) => {
  const clock = manualClock('2026-01-01T00:00:00Z');
  const bus = createBus<TestEvents>();
  const relay = createRelay({ db: db.db, bus, clock, logger, batchSize: 3, retryBaseMs: 1000 });
  let stuckOn: number | null = 2;
  const steady: number[] = [];
  // What the stuck handler committed, in the order it committed it (a rolled-back chunk leaves nothing).
  bus.subscribe('test.thing_happened', 'test.stuck', async (e, { trx }) => {
    if (e.payload.n === stuckOn) throw new Error(`cannot take ${e.payload.n}`);
    const prior = await trx.selectFrom('app_setting').select('key').where('key', 'like', 'k-%').execute();
    await trx.insertInto('app_setting').values({ key: `k-${String(prior.length).padStart(3, '0')}`, value: String(e.payload.n), updated_at: clock.now().toISOString() }).execute();
  });
  const committed = async (): Promise<number[]> =>
    (await db.db.selectFrom('app_setting').select('value').where('key', 'like', 'k-%').orderBy('key').execute()).map((x: { value: string }) => Number(x.value));
  bus.subscribe('test.thing_happened', 'test.steady', async (e) => { steady.push(e.payload.n); });
  await append(db, clock, 1, 8);
  await relay.drain();
  assert.deepEqual(steady, [1, 2, 3, 4, 5, 6, 7, 8], 'the steady handler got every event, past the first batch');
  assert.deepEqual(await committed(), [1], 'the stuck handler waits at its failing event');
  // More events while the handler is still backing off: the steady one takes them too.
  await append(db, clock, 9, 11);
  await relay.drain();
  assert.deepEqual(steady, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  assert.deepEqual(await committed(), [1]);
  // Still failing at its retry: still in order, nothing past it.
  clock.advanceMs(1000);
  await relay.drain();
  assert.deepEqual(await committed(), [1]);
  const failure = await db.db.selectFrom('outbox_delivery').selectAll().executeTakeFirstOrThrow();
  assert.equal(Number(failure.attempts), 2);
  // Fixed: it takes its backlog in order, each event once.
  stuckOn = null;
  clock.advanceMs(2000);
  const r = await relay.drain();
  assert.deepEqual(await committed(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  assert.deepEqual(steady, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 'nothing delivered twice');
  assert.equal(r.pending, 0);
});

eachDialect('a handler failing past the first batch keeps its order when it recovers, while others go on', async (db) => {
  const clock = manualClock('2026-01-01T00:00:00Z');
  const bus = createBus<TestEvents>();
  const relay = createRelay({ db: db.db, bus, clock, logger, batchSize: 2, retryBaseMs: 1000 });
  let stuckOn: number | null = 5;
  const stuck: number[] = [];
  const steady: number[] = [];
  bus.subscribe('test.thing_happened', 'test.stuck', async (e, { trx }) => {
    if (e.payload.n === stuckOn) throw new Error(`cannot take ${e.payload.n}`);
    await trx.insertInto('app_setting').values({ key: `s-${String(e.payload.n).padStart(2, '0')}`, value: 'x', updated_at: clock.now().toISOString() }).execute();
    stuck.push(e.payload.n);
  });
  bus.subscribe('test.thing_happened', 'test.steady', async (e) => { steady.push(e.payload.n); });
  await append(db, clock, 1, 9);
  await relay.drain();
  assert.deepEqual(stuck, [1, 2, 3, 4]);
  assert.deepEqual(steady, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  await append(db, clock, 10, 10);
  stuckOn = null;
  clock.advanceMs(1000);
  await relay.drain();
  assert.deepEqual(stuck, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(steady, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const keys = (await db.db.selectFrom('app_setting').select('key').where('key', 'like', 's-%').orderBy('key').execute()).map((x: { key: string }) => x.key);
  assert.equal(keys.length, 10, 'each event written once');
  const pending = await db.db.selectFrom('outbox').select('seq').where('delivered_at', 'is', null).execute();
  assert.equal(pending.length, 0);
});

eachDialect('while a handler is held, events cleared for a backfill below where the relay reached are still delivered', async (db) => {
  const clock = manualClock('2026-01-01T00:00:00Z');
  const bus = createBus<TestEvents>();
  const relay = createRelay({ db: db.db, bus, clock, logger, batchSize: 2, retryBaseMs: 60_000 });
  bus.subscribe('test.thing_happened', 'test.stuck', async (e) => {
    if (e.payload.n === 1) throw new Error('never takes 1');
  });
  const steady: string[] = [];
  bus.subscribe('test.other_happened', 'test.steady', async (e) => { steady.push(e.payload.label); });
  await append(db, clock, 1, 3);
  await db.db.transaction().execute(async (trx: any) => {
    for (const label of ['a', 'b']) await appendEvent<TestEvents, 'test.other_happened'>(trx, clock, ctx, 'test.other_happened', { label });
  });
  await append(db, clock, 4, 5);
  await relay.drain();
  assert.deepEqual(steady, ['a', 'b']);
  // A subscriber added later, backfilled by clearing delivered_at (docs/ARCHITECTURE.md).
  const late: string[] = [];
  bus.subscribe('test.other_happened', 'test.late', async (e) => { late.push(e.payload.label); });
  await db.db.updateTable('outbox').set({ delivered_at: null }).where('type', '=', 'test.other_happened').execute();
  await relay.drain();
  assert.deepEqual(late, ['a', 'b'], 'the new subscriber gets the cleared events without waiting for the held handler');
  assert.deepEqual(steady, ['a', 'b'], 'the inbox keeps the others from running twice');
});

eachDialect('a started relay delivers past a held handler on its own, and stop() leaves no pass running', async (db) => {
  const clock = manualClock('2026-01-01T00:00:00Z');
  const bus = createBus<TestEvents>();
  const relay = createRelay({ db: db.db, bus, clock, logger, batchSize: 2, intervalMs: 50, retryBaseMs: 60_000 });
  bus.subscribe('test.thing_happened', 'test.stuck', async (e) => { if (e.payload.n === 1) throw new Error('never takes 1'); });
  const steady: number[] = [];
  bus.subscribe('test.thing_happened', 'test.steady', async (e) => { steady.push(e.payload.n); });
  await append(db, clock, 1, 7);
  relay.start();
  try {
    for (let waited = 0; steady.length < 7 && waited < 10_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    relay.kick();
    assert.deepEqual(steady, [1, 2, 3, 4, 5, 6, 7]);
  } finally {
    await relay.stop();
  }
  // Stopped: nothing more runs, even when kicked.
  await append(db, clock, 8, 8);
  relay.kick();
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(steady, [1, 2, 3, 4, 5, 6, 7]);
});
