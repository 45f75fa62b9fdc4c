import type { Clock } from './clock.ts';
import type { Executor } from './db.ts';
import type { CommandContext } from './events.ts';
import { newId } from './ids.ts';
import { newIds } from './ids.ts';
import { insertMany } from './sql.ts';

const AUDIT_COLUMNS = ['id', 'at', 'actor_id', 'actor_label', 'action', 'entity_type', 'entity_id', 'before_json', 'after_json', 'correlation_id', 'ip'] as const;

export interface AuditEntry {
  /** Verb in past tense, module-prefixed: "auth.login", "auth.user_changed". */
  action: string;
  entityType: string;
  entityId: string;
  before?: unknown;
  after?: unknown;
}

function auditRow(clock: Clock, ctx: CommandContext, entry: AuditEntry, at: string, id: string = newId(clock)) {
  return {
    id,
    at,
    actor_id: ctx.actorId,
    actor_label: ctx.actorLabel,
    action: entry.action,
    entity_type: entry.entityType,
    entity_id: entry.entityId,
    before_json: entry.before === undefined ? null : JSON.stringify(entry.before),
    after_json: entry.after === undefined ? null : JSON.stringify(entry.after),
    correlation_id: ctx.correlationId,
    ip: ctx.ip,
  };
}

/** Record who did what to which record, before and after; call inside the change's transaction. */
export async function audit(trx: Executor, clock: Clock, ctx: CommandContext, entry: AuditEntry): Promise<void> {
  await trx.insertInto('audit_log').values(auditRow(clock, ctx, entry, clock.now().toISOString())).execute();
}

/** Many audit rows in multi-row inserts: exactly the rows `audit` writes. */
export async function auditMany(trx: Executor, clock: Clock, ctx: CommandContext, entries: readonly AuditEntry[]): Promise<void> {
  await auditEach(trx, clock, entries.map((entry) => ({ ctx, entry })));
}

/** auditMany with each row's own context (a handler taking many events: each row under the event it handled). */
export async function auditEach(trx: Executor, clock: Clock, rows: readonly { ctx: CommandContext; entry: AuditEntry }[]): Promise<void> {
  if (rows.length === 0) return;
  const at = clock.now().toISOString();
  const ids = newIds(clock, rows.length);
  await insertMany(trx, 'audit_log', AUDIT_COLUMNS, rows.map((r, i) => auditRow(clock, r.ctx, r.entry, at, ids[i]!)));
}
