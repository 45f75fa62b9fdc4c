/**
 * The typed event envelope. Payloads are plain data: ids, strings, integers, booleans,
 * arrays and objects of those. A module declares the events it publishes in its own
 * events.ts as a map from type name ("billing.bill_approved") to payload type.
 */
export interface EventEnvelope<T extends string = string, P = unknown> {
  readonly id: string;
  readonly type: T;
  readonly version: number;
  readonly occurredAt: string;
  readonly correlationId: string;
  readonly causationId: string | null;
  readonly actorId: string | null;
  readonly payload: P;
}

/** A map of event type name to payload type. */
export type EventMap = { [type: string]: unknown };

export type EnvelopeOf<M extends EventMap, K extends keyof M & string> = EventEnvelope<K, M[K]>;

/** Who and what caused a change: carried into events and the audit log. */
export interface CommandContext {
  readonly actorId: string | null;
  /** Shown in the audit log: an email, "system", "cli". */
  readonly actorLabel: string;
  readonly correlationId: string;
  readonly causationId: string | null;
  readonly ip: string | null;
}

export function systemContext(correlationId: string, label = 'system'): CommandContext {
  return { actorId: null, actorLabel: label, correlationId, causationId: null, ip: null };
}
