import { assert } from './assert.ts';
import type { Tx } from './db.ts';
import type { CommandContext, EventEnvelope, EventMap } from './events.ts';

/** What a handler gets: the transaction its own writes (and its inbox record) commit in. */
export interface HandlerContext {
  readonly trx: Tx;
  /** Context for events or audit rows the handler writes; causation is the handled event. */
  readonly command: CommandContext;
}

export type Handler<E extends EventEnvelope = EventEnvelope> = (event: E, ctx: HandlerContext) => Promise<void>;

/**
 * Consecutive events of one type, in order, in one transaction: it must have exactly the
 * effect of `handle` on each in turn (each event's own context for what it writes), only
 * in fewer statements. The relay uses it for runs of two or more; a run that fails is
 * replayed one event at a time through `handle`.
 */
export type ManyHandler<E extends EventEnvelope = EventEnvelope> = (events: readonly { event: E; command: CommandContext }[], trx: Tx) => Promise<void>;

export interface Subscription {
  readonly type: string;
  /** Stable name, recorded in the inbox: renaming a handler redelivers history to it. */
  readonly name: string;
  readonly handle: Handler;
  readonly handleMany?: ManyHandler;
}

/**
 * The in-process bus: a registry of subscriptions. Publishing never calls handlers
 * directly; events go through the outbox and the relay delivers them after commit.
 */
export interface Bus<M extends EventMap = EventMap> {
  subscribe<K extends keyof M & string>(type: K, name: string, handle: Handler<EventEnvelope<K, M[K]>>, handleMany?: ManyHandler<EventEnvelope<K, M[K]>>): void;
  subscriptionsFor(type: string): readonly Subscription[];
  subscriptions(): readonly Subscription[];
}

export function createBus<M extends EventMap = EventMap>(): Bus<M> {
  const byType = new Map<string, Subscription[]>();
  const names = new Set<string>();
  return {
    subscribe(type, name, handle, handleMany) {
      assert(/^[a-z][a-z0-9_.:-]{0,99}$/.test(name), `invalid handler name ${name}`);
      const key = `${type}|${name}`;
      assert(!names.has(key), `handler ${name} already subscribed to ${type}`);
      names.add(key);
      const list = byType.get(type) ?? [];
      list.push({ type, name, handle: handle as Handler, ...(handleMany ? { handleMany: handleMany as ManyHandler } : {}) });
      byType.set(type, list);
    },
    subscriptionsFor(type) {
      return byType.get(type) ?? [];
    },
    subscriptions() {
      return [...byType.values()].flat();
    },
  };
}
