import assert from 'node:assert/strict';
import pino from 'pino';
import { eachDialect } from './support/db.ts';
import { createBus } from '../src/shared/bus.ts';
import { manualClock } from '../src/shared/clock.ts';
import { systemContext } from '../src/shared/events.ts';
import { appendEvent, createRelay } from '../src/shared/outbox.ts';

type TestEvents = {
  'test.thing_happened': { n: number };
  'test.other_happened': { label: string };
};

const logger = pino({ level: 'silent' });
const ctx = systemContext('corr-1', 'test');

function setup(db: Parameters<Parameters<typeof eachDialect>[1]>[0]) {
  const clock = manualClock('2026-01-01T00:00:00Z');
  const bus = createBus<TestEvents>();
  const relay = createRelay({ db: db.db, bus, clock, logger, retryBaseMs: 1000 });
  return { clock, bus, relay };
}

eachDialect('an event appended in a rolled-back transaction is never delivered', async (db) => {
  const { clock, bus, relay } = setup(db);
  const seen: number[] = [];
  bus.subscribe('test.thing_happened', 'test.recorder', async (e) => { seen.push(e.payload.n); });
  await assert.rejects(db.db.transaction().execute(async (trx) => {
    await appendEvent<TestEvents, 'test.thing_happened'>(trx, clock, ctx, 'test.thing_happened', { n: 1 });
    throw new Error('command failed after appending');
  }), /command failed/);
  await db.db.transaction().execute(async (trx) => {
    await appendEvent<TestEvents, 'test.thing_happened'>(trx, clock, ctx, 'test.thing_happened', { n: 2 });
  });
  const r = await relay.drain();
  assert.deepEqual(seen, [2]);
  assert.equal(r.pending, 0);
  const rows = await db.db.selectFrom('outbox').select('payload').execute();
  assert.equal(rows.length, 1, 'the rolled-back event left no row');
});

eachDialect('a failing handler is retried with its error recorded, and delivered once it succeeds', async (db) => {
  const { clock, bus, relay } = setup(db);
  let failing = true;
  const delivered: number[] = [];
  const other: string[] = [];
  bus.subscribe('test.thing_happened', 'test.flaky', async (e, { trx }) => {
    // the handler's own write commits with its inbox record, or not at all
    await trx.insertInto('app_setting').values({ key: `seen-${e.payload.n}`, value: 'x', updated_at: clock.now().toISOString() }).execute();
    if (failing && e.payload.n === 1) throw new Error('flaky failure on event 1');
    delivered.push(e.payload.n);
  });
  bus.subscribe('test.thing_happened', 'test.steady', async (e) => { other.push(String(e.payload.n)); });
  await db.db.transaction().execute(async (trx) => {
    await appendEvent<TestEvents, 'test.thing_happened'>(trx, clock, ctx, 'test.thing_happened', { n: 1 });
    await appendEvent<TestEvents, 'test.thing_happened'>(trx, clock, ctx, 'test.thing_happened', { n: 2 });
  });

  let r = await relay.runOnce();
  assert.equal(r.failed, 1);
  assert.deepEqual(delivered, []);
  assert.deepEqual(other, ['1', '2'], 'a failing handler does not hold up other handlers');
  const failure = await db.db.selectFrom('outbox_delivery').selectAll().executeTakeFirstOrThrow();
  assert.equal(failure.handler, 'test.flaky');
  assert.equal(Number(failure.attempts), 1);
  assert.match(failure.last_error, /flaky failure on event 1/);
  assert.equal(failure.next_attempt_at, '2026-01-01T00:00:01.000Z');
  const leaked = await db.db.selectFrom('app_setting').selectAll().execute();
  assert.equal(leaked.length, 0, 'a failed handler leaves none of its writes');

  r = await relay.runOnce();
  assert.equal(r.failed, 0, 'not retried before its backoff elapses');
  assert.equal(r.handled, 0);

  clock.advanceMs(1000);
  r = await relay.runOnce();
  assert.equal(r.failed, 1);
  const again = await db.db.selectFrom('outbox_delivery').selectAll().executeTakeFirstOrThrow();
  assert.equal(Number(again.attempts), 2);
  assert.equal(again.next_attempt_at, '2026-01-01T00:00:03.000Z', 'backoff doubles');

  assert.deepEqual(delivered, [], 'event 2 waits behind event 1 for the same handler');

  failing = false;
  clock.advanceMs(2000);
  r = await relay.drain();
  assert.deepEqual(delivered, [1, 2], 'delivered in order once the handler succeeds');
  assert.equal(r.pending, 0);
  assert.deepEqual(other, ['1', '2'], 'the steady handler saw each event once');
});

eachDialect('a redelivered event is handled once', async (db) => {
  const { clock, bus, relay } = setup(db);
  let count = 0;
  bus.subscribe('test.other_happened', 'test.counter', async () => { count++; });
  await db.db.transaction().execute(async (trx) => {
    await appendEvent<TestEvents, 'test.other_happened'>(trx, clock, ctx, 'test.other_happened', { label: 'a' });
  });
  await relay.drain();
  assert.equal(count, 1);
  // Simulate a redelivery: the relay crashed after handling but before marking delivered.
  await db.db.updateTable('outbox').set({ delivered_at: null }).execute();
  const r = await relay.drain();
  assert.equal(count, 1, 'the inbox stops a second handling');
  assert.equal(r.pending, 0);
  // A second relay (another process) over the same database does nothing more.
  const relay2 = createRelay({ db: db.db, bus, clock, logger });
  await db.db.updateTable('outbox').set({ delivered_at: null }).execute();
  await Promise.all([relay.drain(), relay2.drain()]);
  assert.equal(count, 1);
});

eachDialect('events keep their envelope through the outbox', async (db) => {
  const { clock, bus, relay } = setup(db);
  const got: unknown[] = [];
  bus.subscribe('test.other_happened', 'test.envelope', async (e) => { got.push(e); });
  const sent = await db.db.transaction().execute((trx) =>
    appendEvent<TestEvents, 'test.other_happened'>(trx, clock, { ...ctx, actorId: 'user-1', causationId: 'cause-1' }, 'test.other_happened', { label: 'ünïcode ✓' }));
  await relay.drain();
  assert.deepEqual(got, [sent]);
});

eachDialect('a failure in the middle of a batch commits the events before it and holds the ones after', async (db) => {
  const { clock, bus, relay } = setup(db);
  let failOn: number | null = 3;
  const seen: number[] = [];
  bus.subscribe('test.thing_happened', 'test.batch', async (e, { trx }) => {
    if (e.payload.n === failOn) throw new Error(`no ${e.payload.n}`);
    await trx.insertInto('app_setting').values({ key: `n-${e.payload.n}`, value: String(e.payload.n), updated_at: clock.now().toISOString() }).execute();
    seen.push(e.payload.n);
  });
  await db.db.transaction().execute(async (trx) => {
    for (let n = 1; n <= 5; n++) await appendEvent<TestEvents, 'test.thing_happened'>(trx, clock, ctx, 'test.thing_happened', { n });
  });
  const r = await relay.runOnce();
  assert.equal(r.failed, 1);
  assert.equal(r.completed, 2);
  const keys = (await db.db.selectFrom('app_setting').select('key').orderBy('key').execute()).map((x) => x.key);
  assert.deepEqual(keys, ['n-1', 'n-2'], 'writes of the events before the failure are committed once');
  const inbox = await db.db.selectFrom('inbox').select('event_id').execute();
  assert.equal(inbox.length, 2);
  failOn = null;
  clock.advanceMs(1000);
  await relay.drain();
  const all = (await db.db.selectFrom('app_setting').select('key').orderBy('key').execute()).map((x) => x.key);
  assert.deepEqual(all, ['n-1', 'n-2', 'n-3', 'n-4', 'n-5']);
  assert.deepEqual(seen.filter((n) => n >= 3), [3, 4, 5], 'the held events follow in order');
});

eachDialect('a handler following two event types sees them in the order they were appended', async (db) => {
  const { clock, bus, relay } = setup(db);
  const order: string[] = [];
  bus.subscribe('test.thing_happened', 'test.both', async (e) => { order.push(`t${e.payload.n}`); });
  bus.subscribe('test.other_happened', 'test.both', async (e) => { order.push(e.payload.label); });
  await db.db.transaction().execute(async (trx) => {
    await appendEvent<TestEvents, 'test.thing_happened'>(trx, clock, ctx, 'test.thing_happened', { n: 1 });
    await appendEvent<TestEvents, 'test.other_happened'>(trx, clock, ctx, 'test.other_happened', { label: 'o1' });
    await appendEvent<TestEvents, 'test.thing_happened'>(trx, clock, ctx, 'test.thing_happened', { n: 2 });
  });
  await relay.drain();
  assert.deepEqual(order, ['t1', 'o1', 't2']);
});

eachDialect('a run of one subscription goes to its handleMany in order, each event with its own causation; single events and other types to handle', async (db) => {
  const { clock, bus, relay } = setup(db);
  const calls: string[] = [];
  const causes: string[] = [];
  bus.subscribe('test.thing_happened', 'test.many', async (e, c) => { calls.push(`one:${e.payload.n}`); causes.push(c.command.causationId!); },
    async (events, trx) => {
      calls.push(`many:${events.map(({ event }) => event.payload.n).join(',')}`);
      for (const { event, command } of events) {
        causes.push(command.causationId!);
        await trx.insertInto('app_setting').values({ key: `m-${event.payload.n}`, value: command.causationId!, updated_at: clock.now().toISOString() }).execute();
      }
    });
  bus.subscribe('test.other_happened', 'test.many', async (e) => { calls.push(`other:${e.payload.label}`); });
  await db.db.transaction().execute(async (trx) => {
    for (const n of [1, 2, 3]) await appendEvent<TestEvents, 'test.thing_happened'>(trx, clock, ctx, 'test.thing_happened', { n });
    await appendEvent<TestEvents, 'test.other_happened'>(trx, clock, ctx, 'test.other_happened', { label: 'o' });
    await appendEvent<TestEvents, 'test.thing_happened'>(trx, clock, ctx, 'test.thing_happened', { n: 4 });
    for (const n of [5, 6]) await appendEvent<TestEvents, 'test.thing_happened'>(trx, clock, ctx, 'test.thing_happened', { n });
  });
  await relay.drain();
  // o breaks the run; 4, 5 and 6 after it are a run again.
  assert.deepEqual(calls, ['many:1,2,3', 'other:o', 'many:4,5,6']);
  const ids = (await db.db.selectFrom('outbox').select(['id', 'payload']).where('type', '=', 'test.thing_happened').orderBy('seq').execute()).map((r) => r.id);
  assert.deepEqual(causes, ids, 'each event handled under its own causation');
  const written = await db.db.selectFrom('app_setting').select(['key', 'value']).where('key', 'like', 'm-%').orderBy('key').execute();
  assert.deepEqual(written.map((w) => w.value), ids);
  assert.equal((await db.db.selectFrom('inbox').select('event_id').where('handler', '=', 'test.many').execute()).length, 7);
});

eachDialect('a run whose handleMany fails is replayed one event at a time through handle: the good ones commit, the bad one is held', async (db) => {
  const { clock, bus, relay } = setup(db);
  let bad: number | null = 2;
  const single: number[] = [];
  bus.subscribe('test.thing_happened', 'test.many', async (e, { trx }) => {
    if (e.payload.n === bad) throw new Error(`no ${e.payload.n}`);
    await trx.insertInto('app_setting').values({ key: `s-${e.payload.n}`, value: 'one', updated_at: clock.now().toISOString() }).execute();
    single.push(e.payload.n);
  }, async (events, trx) => {
    for (const { event } of events) {
      if (event.payload.n === bad) throw new Error(`no ${event.payload.n}`);
      await trx.insertInto('app_setting').values({ key: `s-${event.payload.n}`, value: 'many', updated_at: clock.now().toISOString() }).execute();
    }
  });
  await db.db.transaction().execute(async (trx) => {
    for (const n of [1, 2, 3]) await appendEvent<TestEvents, 'test.thing_happened'>(trx, clock, ctx, 'test.thing_happened', { n });
  });
  const r = await relay.runOnce();
  assert.equal(r.failed, 1);
  assert.deepEqual(single, [1], 'the run rolled back whole; 1 went alone, 2 failed alone, 3 waits behind it');
  assert.deepEqual((await db.db.selectFrom('app_setting').select(['key', 'value']).where('key', 'like', 's-%').execute()).map((x) => [x.key, x.value]), [['s-1', 'one']]);
  bad = null;
  clock.advanceMs(1000);
  await relay.drain();
  const all = (await db.db.selectFrom('app_setting').select('key').where('key', 'like', 's-%').orderBy('key').execute()).map((x) => x.key);
  assert.deepEqual(all, ['s-1', 's-2', 's-3']);
});

eachDialect('the relay lets other work in between handler chunks, not only between pages: a request waits one chunk at most', async (db) => {
  const { clock, bus, relay } = setup(db);
  let handled = 0;
  bus.subscribe('test.thing_happened', 'test.counter', async () => { handled++; });
  await db.db.transaction().execute(async (trx) => {
    for (let n = 0; n < 600; n++) await appendEvent<TestEvents, 'test.thing_happened'>(trx, clock, ctx, 'test.thing_happened', { n });
  });
  // A "request" arriving as the pass starts: it runs at the first turn of the event loop the relay gives up.
  let seenAt: number | null = null;
  const pass = relay.runOnce();
  setImmediate(() => { seenAt = handled; });
  const r = await pass;
  assert.equal(r.handled, 600);
  assert.ok(seenAt !== null && seenAt <= 100, `the request ran after ${seenAt} of 600 events (one chunk is 100)`);
});
