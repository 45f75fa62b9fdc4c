/**
 * Separate processes relaying the same outbox at once (a second server, the server and the
 * CLI): every handler's effect happens once per event, and every event ends delivered.
 * This file is also its own racer: `node --import tsx test/audit-outbox-race.test.ts racer <url>`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { openDatabase } from '../src/adapters/db/index.ts';
import { createBus } from '../src/shared/bus.ts';
import type { Bus } from '../src/shared/bus.ts';
import { manualClock, systemClock } from '../src/shared/clock.ts';
import type { Clock } from '../src/shared/clock.ts';
import { systemContext } from '../src/shared/events.ts';
import { appendEvent, createRelay } from '../src/shared/outbox.ts';
import { eachDialect, freshDatabase } from './support/db.ts';
import { raceProcesses } from './support/race.ts';

type RaceEvents = { 'race.a_happened': { n: number }; 'race.b_happened': { n: number } };
const EVENTS = 150;
const RACERS = 3;

/** Two handlers, one following both types; each effect is a row of its own, so a second handling shows. */
function subscribe(bus: Bus<RaceEvents>, clock: Clock, who: string): void {
  const effect = (handler: string) => async (e: { id: string }, { trx }: { trx: any }) => {
    await trx.insertInto('app_setting').values({ key: `r-${randomBytes(8).toString('hex')}`, value: `${e.id}|${handler}|${who}`, updated_at: clock.now().toISOString() }).execute();
  };
  bus.subscribe('race.a_happened', 'race.first', effect('race.first'));
  bus.subscribe('race.b_happened', 'race.first', effect('race.first'));
  bus.subscribe('race.a_happened', 'race.second', effect('race.second'));
}

async function racer(url: string): Promise<void> {
  const database = openDatabase(url);
  const bus = createBus<RaceEvents>();
  subscribe(bus, systemClock, String(process.pid));
  const relay = createRelay({ db: database.db, bus, clock: systemClock, logger: pino({ level: 'silent' }), batchSize: 7, retryBaseMs: 50, maxBackoffMs: 200 });
  await database.db.selectFrom('outbox').select('id').limit(1).execute();
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
  let r = await relay.drain();
  for (let waited = 0; r.pending > 0 && waited < 20_000; waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    r = await relay.drain();
  }
  process.stdout.write(`${JSON.stringify({ pending: r.pending })}\n`);
  await database.close();
  process.exit(0);
}

if (process.argv[2] === 'racer') {
  await racer(process.argv[3]!);
} else {
  eachDialect(`${RACERS} processes relaying the same events at once handle each event once per handler and deliver them all`, async (testDb) => {
    const dir = mkdtempSync(join(tmpdir(), 'lexbill-outbox-race-'));
    // SQLite: a file the racers open too (the test's own database is in memory).
    const db = testDb.dialect === 'sqlite' ? await freshDatabase('sqlite', { file: join(dir, 'race.db') }) : testDb;
    try {
      const clock = manualClock('2026-01-01T00:00:00Z');
      const ctx = systemContext('race', 'test');
      await db.db.transaction().execute(async (trx) => {
        for (let n = 1; n <= EVENTS; n++) {
          if (n % 3 === 0) await appendEvent<RaceEvents, 'race.b_happened'>(trx, clock, ctx, 'race.b_happened', { n });
          else await appendEvent<RaceEvents, 'race.a_happened'>(trx, clock, ctx, 'race.a_happened', { n });
        }
      });
      const outs = await Promise.all(raceProcesses<{ pending: number }>(join(import.meta.dirname, 'audit-outbox-race.test.ts'), RACERS, ['racer', db.url]));
      assert.deepEqual(outs.map((o) => o.pending), Array(RACERS).fill(0));
      const effects = (await db.db.selectFrom('app_setting').select('value').where('key', 'like', 'r-%').execute()).map((r) => r.value.split('|').slice(0, 2).join('|'));
      const events = await db.db.selectFrom('outbox').select(['id', 'type', 'delivered_at']).orderBy('seq').execute();
      const expected = events.flatMap((e) => (e.type === 'race.a_happened' ? [`${e.id}|race.first`, `${e.id}|race.second`] : [`${e.id}|race.first`])).sort();
      assert.deepEqual(effects.sort(), expected, 'each handler took each of its events exactly once');
      assert.equal(events.filter((e) => e.delivered_at === null).length, 0, 'every event delivered');
      const inbox = await db.db.selectFrom('inbox').select('event_id').execute();
      assert.equal(inbox.length, expected.length);
    } finally {
      if (db !== testDb) await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, { timeout: 120_000 });
}
