/**
 * Copies of another module's data, kept from its events (billing's and e-billing's copies of
 * matters): each copied row remembers the event it was written from, and an event older than
 * the row's changes nothing, so redelivered or late events are harmless.
 */
import { sql } from 'kysely';
import type { Executor } from './db.ts';
import type { EventEnvelope } from './events.ts';

/** Where a copied row's data came from, and how new it is. */
export interface SourceKey {
  /** The entity's version when the payload carries one, else 0. */
  readonly version: number;
  /** The payload's updatedAt when present, else the event's occurredAt (ISO-8601). */
  readonly at: string;
  readonly eventId: string;
}

export function sourceKey(event: EventEnvelope): SourceKey {
  const p = (event.payload ?? {}) as Record<string, unknown>;
  const version = typeof p.version === 'number' && Number.isSafeInteger(p.version) ? p.version : 0;
  const at = typeof p.updatedAt === 'string' && p.updatedAt !== '' ? p.updatedAt : event.occurredAt;
  return { version, at, eventId: event.id };
}

/** True when `a` is older than `b` (so a write from `a` must not replace `b`). */
export function isOlder(a: Pick<SourceKey, 'version' | 'at'>, b: Pick<SourceKey, 'version' | 'at'>): boolean {
  return a.version < b.version || (a.version === b.version && a.at < b.at);
}

/**
 * SQL: the row of `table` was written from a source no newer than `key` (version, then time;
 * equal keys pass: events delivered in order within one millisecond must all land, and a true
 * duplicate writes the same values).
 */
export function rowNotNewerThan(table: string, key: Pick<SourceKey, 'version' | 'at'>) {
  // The same rule as notNewerSql, with the key's values bound.
  const version = sql.ref(`${table}.source_version`);
  return sql<boolean>`(${version} < ${key.version} or (${version} = ${key.version} and ${sql.ref(`${table}.source_at`)} <= ${key.at}))`;
}

/**
 * Insert the row, or update an existing row's columns (all but id) unless the row was
 * written from a newer source. Returns true when the row now holds this source's data.
 */
export async function upsertIfNewer(trx: Executor, table: string, values: object, key: SourceKey, copiedAt: string): Promise<boolean> {
  const row: Record<string, unknown> = { ...values, source_version: key.version, source_at: key.at, event_id: key.eventId, copied_at: copiedAt };
  const update = Object.fromEntries(Object.keys(row).filter((k) => k !== 'id').map((k) => [k, sql.ref(`excluded.${k}`)]));
  const result = await trx.insertInto(table).values(row)
    .onConflict((oc) => oc.column('id').doUpdateSet(update).where(rowNotNewerThan(table, key)))
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) > 0;
}

/**
 * rowNotNewerThan as SQL text over expressions, for bulk statements that take each row's key
 * from their parameters: `row` names the copied row's columns, `key` the key's expressions
 * (each used as written: pass `?` and bind the values in order version, version, at).
 */
export function notNewerSql(row: { version: string; at: string }, key: { version: string; at: string }): string {
  return `(${row.version} < ${key.version} or (${row.version} = ${key.version} and ${row.at} <= ${key.at}))`;
}
