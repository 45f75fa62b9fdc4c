/**
 * Events that cannot be lost. A command appends its events to `outbox` inside its own
 * transaction; the relay delivers them after commit (on kick) and on a timer, in order
 * of appending. Each delivery runs in its own transaction that also records
 * (event_id, handler) in `inbox`, so a redelivered event is handled once. A failing
 * handler is retried with backoff and its error recorded; it blocks only its own later
 * events (per-handler order is kept), never other handlers: a pass reads the outbox a page
 * at a time and, while a handler is held, goes on to later pages for the others (see pass).
 */
import type { Logger } from 'pino';
import { assert } from './assert.ts';
import type { Bus, Subscription } from './bus.ts';
import type { Clock } from './clock.ts';
import type { Db, Executor } from './db.ts';
import { isUniqueViolation } from './db.ts';
import type { CommandContext, EventEnvelope, EventMap } from './events.ts';
import { newId, newIds } from './ids.ts';
import { sql } from 'kysely';
import { insertMany } from './sql.ts';

export interface OutboxRow {
  seq: number;
  id: string;
  type: string;
  version: number;
  occurred_at: string;
  correlation_id: string;
  causation_id: string | null;
  actor_id: string | null;
  payload: string;
  delivered_at: string | null;
}

const MAX_PAYLOAD_CHARS = 4_000_000;
/** Events one handler takes in one transaction when none of them has failed before. */
const HANDLER_CHUNK = 100;

function envelopeFor<K extends string, P>(clock: Clock, ctx: CommandContext, type: K, payload: P, version: number, occurredAt: string, id: string = newId(clock), payloadJson?: string): { envelope: EventEnvelope<K, P>; row: Omit<OutboxRow, 'seq'> } {
  assert(/^[a-z]+\.[a-z0-9_]+$/.test(type), `event type ${type} must be module.snake_name`);
  const json = payloadJson ?? JSON.stringify(payload);
  assert(json.length <= MAX_PAYLOAD_CHARS, `event ${type} payload too large (${json.length} chars)`);
  const envelope: EventEnvelope<K, P> = {
    id, type, version, occurredAt,
    correlationId: ctx.correlationId, causationId: ctx.causationId, actorId: ctx.actorId, payload,
  };
  const row = {
    id: envelope.id, type, version, occurred_at: occurredAt, correlation_id: envelope.correlationId,
    causation_id: envelope.causationId, actor_id: envelope.actorId, payload: json, delivered_at: null,
  };
  return { envelope, row };
}

/** Append one event to the outbox in the caller's transaction. Returns the envelope. */
export async function appendEvent<M extends EventMap, K extends keyof M & string>(
  trx: Executor,
  clock: Clock,
  ctx: CommandContext,
  type: K,
  payload: M[K],
  version = 1,
): Promise<EventEnvelope<K, M[K]>> {
  const { envelope, row } = envelopeFor(clock, ctx, type, payload, version, clock.now().toISOString());
  await trx.insertInto('outbox').values(row).execute();
  return envelope;
}

/**
 * Append many events in multi-row inserts (bulk recording, seeding, imports): the same
 * rows appendEvent writes, in the given order, sharing one occurredAt. A payload may come
 * as its JSON already (`payloadJson`: built by the database, as bulk approving does).
 */
export async function appendEvents(
  trx: Executor,
  clock: Clock,
  ctx: CommandContext,
  events: readonly ({ type: string; version?: number } & ({ payload: unknown } | { payloadJson: string }))[],
): Promise<void> {
  await appendEventsEach(trx, clock, events.map((e) => ({ ...e, ctx })));
}

/** appendEvents with each event's own context (a handler taking many events: each caused by its own). */
export async function appendEventsEach(
  trx: Executor,
  clock: Clock,
  events: readonly ({ ctx: CommandContext; type: string; version?: number } & ({ payload: unknown } | { payloadJson: string }))[],
): Promise<void> {
  if (events.length === 0) return;
  const occurredAt = clock.now().toISOString();
  const ids = newIds(clock, events.length);
  const rows = events.map((e, i) => ('payloadJson' in e
    ? envelopeFor(clock, e.ctx, e.type, null, e.version ?? 1, occurredAt, ids[i]!, e.payloadJson)
    : envelopeFor(clock, e.ctx, e.type, e.payload, e.version ?? 1, occurredAt, ids[i]!)).row);
  await insertMany(trx, 'outbox', OUTBOX_COLUMNS, rows);
}


const OUTBOX_COLUMNS = ['id', 'type', 'version', 'occurred_at', 'correlation_id', 'causation_id', 'actor_id', 'payload', 'delivered_at'] as const;

/**
 * The payloads of events of `type` (one type or several) that `handler` has not handled yet,
 * or, without `handler`, that some handler has not handled yet, newest first: what a
 * module's copy is still to take in (a backlog, a failing handler), or what other modules
 * have not yet heard of. `mentions` narrows the read to payloads holding that text (a JSON
 * fragment such as `"billId":"..."`); the caller still checks each payload it gets. At most
 * `limit` rows.
 */
export async function pendingPayloads(ex: Executor, q: { type: string | readonly string[]; handler?: string; mentions?: string; limit?: number }): Promise<unknown[]> {
  const types = typeof q.type === 'string' ? [q.type] : [...q.type];
  assert(types.length > 0, 'pendingPayloads: at least one type');
  let query = ex.selectFrom('outbox as o').select(['o.payload'])
    .where('o.delivered_at', 'is', null).where('o.type', 'in', types);
  if (q.handler !== undefined) {
    const handler = q.handler;
    query = query.where((eb) => eb.not(eb.exists(eb.selectFrom('inbox as i').select('i.event_id')
      .whereRef('i.event_id', '=', 'o.id').where('i.handler', '=', handler))));
  }
  if (q.mentions !== undefined) {
    // LIKE escapes differ between the databases: the fragment carries no wildcard to escape.
    assert(!/[%_\\]/.test(q.mentions), 'mentions holds no LIKE wildcard');
    query = query.where('o.payload', 'like', `%${q.mentions}%`);
  }
  const rows = await query.orderBy('o.seq', 'desc').limit(q.limit ?? 1_000).execute() as { payload: string }[];
  return rows.map((r) => JSON.parse(r.payload) as unknown);
}

export function rowToEnvelope(row: OutboxRow): EventEnvelope {
  return {
    id: row.id,
    type: row.type,
    version: Number(row.version),
    occurredAt: row.occurred_at,
    correlationId: row.correlation_id,
    causationId: row.causation_id,
    actorId: row.actor_id,
    payload: JSON.parse(row.payload) as unknown,
  };
}

export interface RelayOptions {
  db: Db;
  bus: Bus<any>;
  clock: Clock;
  logger: Logger;
  /** Events read per pass. */
  batchSize?: number;
  /** Timer period for the background pass. */
  intervalMs?: number;
  /** First retry delay; doubles per attempt up to maxBackoffMs. */
  retryBaseMs?: number;
  maxBackoffMs?: number;
}

export interface PassResult {
  /** Handler deliveries that succeeded in this pass. */
  handled: number;
  /** Handler deliveries that failed in this pass. */
  failed: number;
  /** Events fully delivered (every handler done) in this pass. */
  completed: number;
  /** Events still pending after the pass. */
  pending: number;
}

export interface Relay {
  /** Run one pass now (serialised with any pass already running). */
  runOnce(): Promise<PassResult>;
  /** Ask for a pass soon; used after a command commits. */
  kick(): void;
  /** Passes until a pass delivers nothing more; for tests and the CLI. */
  drain(maxPasses?: number): Promise<PassResult>;
  start(): void;
  stop(): Promise<void>;
}

export function createRelay(opts: RelayOptions): Relay {
  const batchSize = opts.batchSize ?? 1000;
  const intervalMs = opts.intervalMs ?? 2_000;
  const retryBaseMs = opts.retryBaseMs ?? 1_000;
  const maxBackoffMs = opts.maxBackoffMs ?? 5 * 60_000;
  assert(batchSize > 0 && batchSize <= 10_000, 'batchSize out of range');
  const { db, bus, clock, logger } = opts;

  let running: Promise<PassResult> | null = null;
  let again = false;
  let timer: NodeJS.Timeout | null = null;
  let stopped = true;
  /** Set by stop(): a pass ends after the page it is on. */
  let stopping = false;
  /**
   * Where the next pass may start while handlers are held at a failing event: every
   * undelivered event at or below `afterSeq` waited only on the `blocked` handlers when the
   * last pass went over it. Dropped (the next pass starts from the beginning) once a held
   * handler may retry (`until`), or when the undelivered count at or below `afterSeq` is no
   * longer `below` (an event committed late, another process delivered some, a backfill).
   */
  let resume: { afterSeq: number; below: number; blocked: Map<string, string>; until: string } | null = null;

  async function pendingCounts(afterSeq: number): Promise<{ total: number; below: number }> {
    const r = await db.selectFrom('outbox')
      .select([
        sql<number>`count(*)`.as('n'),
        sql<number>`count(case when seq <= ${afterSeq} then 1 end)`.as('below'),
      ])
      .where('delivered_at', 'is', null).executeTakeFirstOrThrow();
    return { total: Number(r.n), below: Number(r.below) };
  }

  /**
   * One pass: pages of undelivered events in seq order. While some handler is held at a
   * failing event (its later events wait, to keep its order), the pass goes on to later
   * pages for the other handlers, so a held handler never starves them however long its
   * backlog grows; the pass reads payloads only for the events it hands to a handler.
   */
  async function pass(): Promise<PassResult> {
    const now = clock.now();
    const nowIso = now.toISOString();
    // Handlers held at a failing event in this pass, each with when it may try again.
    let blocked = new Map<string, string>();
    let afterSeq = 0;
    if (resume && nowIso < resume.until) {
      const { below } = await pendingCounts(resume.afterSeq);
      if (below === resume.below) { afterSeq = resume.afterSeq; blocked = new Map(resume.blocked); }
    }
    resume = null;
    const total: PassResult = { handled: 0, failed: 0, completed: 0, pending: 0 };
    let pages = 0;
    for (;;) {
      if (pages++ > 0) await new Promise((resolve) => setImmediate(resolve)); // let requests in between pages
      const rows = (await db.selectFrom('outbox')
        .select(['seq', 'id', 'type', 'version', 'occurred_at', 'correlation_id', 'causation_id', 'actor_id', 'delivered_at'])
        .where('delivered_at', 'is', null).where('seq', '>', afterSeq)
        .orderBy('seq').limit(batchSize).execute()) as Omit<OutboxRow, 'payload'>[];
      if (rows.length === 0) {
        if (afterSeq === 0) return total; // nothing undelivered at all
        break;
      }
      const r = await deliverPage(rows, blocked, now, nowIso);
      total.handled += r.handled;
      total.failed += r.failed;
      total.completed += r.completed;
      afterSeq = Number(rows[rows.length - 1]!.seq);
      if (rows.length < batchSize || blocked.size === 0 || stopping) break;
    }
    const counts = await pendingCounts(afterSeq);
    total.pending = counts.total;
    if (blocked.size > 0) {
      const until = [...blocked.values()].reduce((a, b) => (b < a ? b : a));
      resume = { afterSeq, below: counts.below, blocked, until };
    }
    return total;
  }

  async function deliverPage(pageRows: Omit<OutboxRow, 'payload'>[], blocked: Map<string, string>, now: Date, nowIso: string): Promise<Omit<PassResult, 'pending'>> {
    const rows = pageRows as OutboxRow[];
    const ids = rows.map((r) => r.id);
    const failures = await db.selectFrom('outbox_delivery').selectAll()
      .where('event_id', 'in', ids).execute() as { event_id: string; handler: string; attempts: number; next_attempt_at: string }[];
    const failureKey = new Map(failures.map((f) => [`${f.event_id}|${f.handler}`, f]));
    const done = await db.selectFrom('inbox').select(['event_id', 'handler'])
      .where('event_id', 'in', ids).execute() as { event_id: string; handler: string }[];
    const doneKey = new Set(done.map((d) => `${d.event_id}|${d.handler}`));

    // Work per handler, each handler's events in seq order (a handler may follow several types).
    // A handler held at an earlier event takes none of these: its order comes first.
    const queues = new Map<string, { row: OutboxRow; sub: Subscription }[]>();
    for (const row of rows) {
      for (const sub of bus.subscriptionsFor(row.type)) {
        if (blocked.has(sub.name) || doneKey.has(`${row.id}|${sub.name}`)) continue;
        const q = queues.get(sub.name) ?? [];
        q.push({ row, sub });
        queues.set(sub.name, q);
      }
    }
    // Payloads only for the events some handler takes.
    const wanted = [...new Set([...queues.values()].flatMap((q) => q.map((w) => w.row.id)))];
    const payloads = new Map<string, string>();
    for (let k = 0; k < wanted.length; k += 500) {
      const got = await db.selectFrom('outbox').select(['id', 'payload']).where('id', 'in', wanted.slice(k, k + 500)).execute() as { id: string; payload: string }[];
      for (const g of got) payloads.set(g.id, g.payload);
    }
    for (const row of rows) { const p = payloads.get(row.id); if (p !== undefined) row.payload = p; }

    let handled = 0, failed = 0;
    // Each event is handled under its own causation.
    const commandFor = (row: OutboxRow): CommandContext =>
      ({ actorId: row.actor_id, actorLabel: `event:${row.type}`, correlationId: row.correlation_id, causationId: row.id, ip: null });
    const runChunk = async (chunk: { row: OutboxRow; sub: Subscription }[]): Promise<void> => {
      await db.transaction().execute(async (trx) => {
        await trx.insertInto('inbox').values(chunk.map(({ row, sub }) => ({ event_id: row.id, handler: sub.name, handled_at: nowIso }))).execute();
        for (let k = 0; k < chunk.length;) {
          const { row, sub } = chunk[k]!;
          // A run of the same subscription goes to its handleMany, when it has one.
          let m = k + 1;
          if (sub.handleMany) while (m < chunk.length && chunk[m]!.sub === sub) m++;
          if (m - k > 1) {
            await sub.handleMany!(chunk.slice(k, m).map((c) => ({ event: rowToEnvelope(c.row), command: commandFor(c.row) })), trx);
          } else {
            await sub.handle(rowToEnvelope(row), { trx, command: commandFor(row) });
          }
          k = m;
        }
      });
      for (const { row, sub } of chunk) doneKey.add(`${row.id}|${sub.name}`);
      handled += chunk.length;
    };
    for (const [name, queue] of queues) {
      let i = 0;
      while (i < queue.length) {
        const first = queue[i]!;
        const prior = failureKey.get(`${first.row.id}|${name}`);
        if (prior && prior.next_attempt_at > nowIso) { blocked.set(name, prior.next_attempt_at); break; } // still backing off: later events wait
        // A previously failed event runs alone; otherwise up to HANDLER_CHUNK in one transaction.
        let j = i + 1;
        if (!prior) while (j < queue.length && j - i < HANDLER_CHUNK && !failureKey.has(`${queue[j]!.row.id}|${name}`)) j++;
        const chunk = queue.slice(i, j);
        try {
          await runChunk(chunk);
          i = j;
          // Let requests in between chunks: on SQLite a chunk's transaction never leaves the microtask queue, so a page
          // of a big import's events would hold every request for seconds.
          await new Promise((resolve) => setImmediate(resolve));
          continue;
        } catch (err) {
          if (chunk.length === 1) {
            if (isUniqueViolation(err) && await alreadyHandled(first.row.id, name)) { doneKey.add(`${first.row.id}|${name}`); i = j; continue; }
            failed++;
            const attempts = (prior?.attempts ?? 0) + 1;
            const delay = Math.min(maxBackoffMs, retryBaseMs * 2 ** Math.min(attempts - 1, 20));
            const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
            logger.warn({ eventId: first.row.id, type: first.row.type, handler: name, attempts, err: message }, 'event handler failed; will retry');
            const nextAt = new Date(now.getTime() + delay).toISOString();
            await recordFailure(first.row.id, name, Number(attempts), message.slice(0, 4000), nextAt, nowIso);
            blocked.set(name, nextAt);
            break; // this handler's later events wait, to keep its order
          }
          // Find the failing event: replay the chunk one event per transaction.
          failureKey.set(`${first.row.id}|${name}`, { event_id: first.row.id, handler: name, attempts: 0, next_attempt_at: '' });
          for (let k = i + 1; k < j; k++) failureKey.set(`${queue[k]!.row.id}|${name}`, { event_id: queue[k]!.row.id, handler: name, attempts: 0, next_attempt_at: '' });
          continue;
        }
      }
    }
    const complete = rows.filter((row) => bus.subscriptionsFor(row.type).every((sub) => doneKey.has(`${row.id}|${sub.name}`))).map((r) => r.id);
    for (let k = 0; k < complete.length; k += 500) {
      await db.updateTable('outbox').set({ delivered_at: nowIso }).where('id', 'in', complete.slice(k, k + 500)).where('delivered_at', 'is', null).execute();
    }
    return { handled, failed, completed: complete.length };
  }

  async function alreadyHandled(eventId: string, handler: string): Promise<boolean> {
    const r = await db.selectFrom('inbox').select('event_id').where('event_id', '=', eventId).where('handler', '=', handler).executeTakeFirst();
    return r !== undefined;
  }

  async function recordFailure(eventId: string, handler: string, attempts: number, error: string, nextAt: string, nowIso: string): Promise<void> {
    await db.insertInto('outbox_delivery')
      .values({ event_id: eventId, handler, attempts, last_error: error, last_attempt_at: nowIso, next_attempt_at: nextAt })
      .onConflict((oc) => oc.columns(['event_id', 'handler']).doUpdateSet({ attempts, last_error: error, last_attempt_at: nowIso, next_attempt_at: nextAt }))
      .execute();
  }

  async function runOnce(): Promise<PassResult> {
    while (running) {
      again = true;
      await running.catch(() => undefined);
    }
    running = pass();
    try {
      return await running;
    } finally {
      running = null;
    }
  }

  function kick(): void {
    if (stopped) return;
    if (running) { again = true; return; }
    setImmediate(() => {
      if (stopped) return; // stop() may have come between the kick and now
      runOnce().then((r) => {
        // Keep going while there is a backlog this pass made progress on.
        const backlog = r.pending > 0 && r.handled + r.completed > 0;
        if ((again || backlog) && !stopped) { again = false; kick(); }
        return r;
      }).catch((err: unknown) => logger.error({ err }, 'outbox relay pass failed'));
    });
  }

  return {
    runOnce,
    kick,
    async drain(maxPasses = 1000) {
      let last: PassResult = { handled: 0, failed: 0, completed: 0, pending: 0 };
      for (let i = 0; i < maxPasses; i++) {
        last = await runOnce();
        if (last.handled === 0 && last.completed === 0) return last;
      }
      return last;
    },
    start() {
      if (!stopped) return;
      stopped = false;
      stopping = false;
      timer = setInterval(() => kick(), intervalMs);
      timer.unref();
      kick();
    },
    async stop() {
      stopped = true;
      stopping = true;
      if (timer) clearInterval(timer);
      timer = null;
      if (running) await running.catch(() => undefined);
    },
  };
}
