/**
 * Billing's copy of matters, fed by matters' events. Billing never reads matters' tables;
 * these handlers keep billing_timekeeper, billing_client, billing_contact, billing_matter
 * (with its effective billing options), billing_firm_settings, billing_charge_type and
 * billing_wip (store.ts), and the composer reads only those.
 *
 * Delivery (src/shared/outbox.ts): after commit, each handler in its own transaction with
 * its inbox row, so a redelivered event is a no-op. One handler NAME per aggregate follows
 * every event type of that aggregate, so the relay keeps their order (it orders per name):
 * `billing.copy_matter` sees matter_opened before that matter's billing_options_changed.
 * Handlers for different aggregates run independently, so none depends on another's rows
 * (a WIP item may be copied before its matter).
 *
 * Every write is idempotent and ordered by the event's source key (a payload `version`
 * when present, then the payload's `updatedAt` or the event's occurredAt): an event applied
 * twice writes the same values, and an older event after a newer one changes nothing.
 * A deleted WIP item leaves a tombstone so a late record/update cannot bring it back.
 *
 * Adding a matters event: write its `apply` and add one line to PROJECTIONS.
 */
import type { Logger } from 'pino';
import type { Bus, HandlerContext } from '../../shared/bus.ts';
import type { Clock } from '../../shared/clock.ts';
import { isOlder, notNewerSql, rowNotNewerThan, sourceKey, upsertIfNewer } from '../../shared/copies.ts';
import type { Tx } from '../../shared/db.ts';
import type { EventEnvelope } from '../../shared/events.ts';
import { execRaw, pgArray, runEachRow, writersSerialised } from '../../shared/sql.ts';
import { newId } from '../../shared/ids.ts';
import type { BillableParty, MattersEvents, WipItem } from '../matters/events.ts';
import * as store from './store.ts';
import type { WipCopyRow } from './store.ts';
import { foldName } from './domain/mass.ts';

/** Stable handler names: recorded in the inbox, so renaming one makes undelivered events run again under the new name. */
export const BILLING_HANDLERS = {
  timekeeper: 'billing.copy_timekeeper',
  client: 'billing.copy_client',
  matter: 'billing.copy_matter',
  wip: 'billing.copy_wip',
  firmSettings: 'billing.copy_firm_settings',
  chargeType: 'billing.copy_charge_type',
} as const;

/** Matters events billing deliberately does not copy, and why. */
export const IGNORED_MATTERS_EVENTS = {
  /** WIP arrives priced (rate, source, amount); billing prices nothing itself. */
  'matters.rate_set': 'WIP items carry their own rate and amount',
} as const satisfies { [K in keyof MattersEvents]?: string };

type MattersType = keyof MattersEvents & string;
type MattersEnvelope<K extends MattersType> = EventEnvelope<K, MattersEvents[K]>;

export interface ProjectionContext extends HandlerContext {
  readonly clock: Clock;
  readonly logger: Logger;
}

interface Projection<K extends MattersType> {
  readonly handler: string;
  apply(event: MattersEnvelope<K>, ctx: ProjectionContext): Promise<void>;
}

type Projections = { [K in MattersType]?: Projection<K> };

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/** The ordering key of an event: payload version (else 0), then payload updatedAt (else occurredAt). */

const copiedAt = (ctx: ProjectionContext): string => ctx.clock.now().toISOString();


/** One WIP item as billing_wip columns. A new kind is one more case here. */
export function wipRow(item: WipItem): WipCopyRow {
  const common = {
    id: item.id, kind: item.kind, matter_id: item.matterId, client_id: item.clientId, amount_minor: item.amountMinor,
    currency: item.currency, behaviour: item.behaviour, matters_status: item.status, payload_json: JSON.stringify(item),
    charge_type_id: null, charge_name: null, quoted: 0 as const,
  };
  switch (item.kind) {
    case 'time':
      return {
        ...common, kind: 'time', date: item.workDate, timekeeper_id: item.timekeeperId, raw_minutes: item.rawMinutes,
        billed_minutes: item.billedMinutes, rate_minor: item.rateMinor, rate_source: item.rateSource,
        override_reason: item.overrideReason, quantity_milli: null, unit_cost_minor: null, code: null, task_code: item.taskCode,
        activity_code: item.activityCode, expense_code: null, tax_code: null, description: item.narrative, payee: null,
      };
    case 'disbursement':
      return {
        ...common, kind: 'disbursement', date: item.incurredOn, timekeeper_id: null, raw_minutes: null, billed_minutes: null,
        rate_minor: null, rate_source: null, override_reason: null, quantity_milli: item.quantityMilli,
        unit_cost_minor: item.unitCostMinor, code: item.code, task_code: null, activity_code: null, expense_code: item.expenseCode,
        tax_code: item.taxCode, description: item.description, payee: item.payee,
      };
    case 'fixed_charge':
      return {
        ...common, kind: 'fixed_charge', date: item.chargedOn, timekeeper_id: null, raw_minutes: null, billed_minutes: null,
        rate_minor: null, rate_source: null, override_reason: null, quantity_milli: item.quantityMilli,
        unit_cost_minor: item.unitPriceMinor, code: item.chargeCode, charge_type_id: item.chargeTypeId, charge_name: item.chargeName,
        quoted: item.quoted ? 1 : 0, task_code: item.taskCode, activity_code: item.activityCode, expense_code: null,
        tax_code: item.taxCode, description: item.description, payee: null,
      };
    default: {
      const unknown: never = item;
      throw new Error(`billing cannot copy WIP of kind ${(unknown as { kind?: string }).kind}`);
    }
  }
}

async function conflict(ctx: ProjectionContext, event: EventEnvelope, c: { entityType: string; entityId: string; matterId: string | null; billId: string | null; reason: string; detail?: unknown }): Promise<void> {
  ctx.logger.warn({ eventId: event.id, type: event.type, ...c }, 'billing copy conflict');
  await store.insertConflict(ctx.trx, {
    id: newId(ctx.clock), eventId: event.id, eventType: event.type, entityType: c.entityType, entityId: c.entityId,
    matterId: c.matterId, billId: c.billId, reason: c.reason, detail: c.detail, detectedAt: copiedAt(ctx),
  });
}

// ---------------------------------------------------------------------------------------
// The projections
// ---------------------------------------------------------------------------------------

async function copyTimekeeper(event: MattersEnvelope<'matters.timekeeper_created' | 'matters.timekeeper_changed'>, ctx: ProjectionContext): Promise<void> {
  const p = event.payload;
  const values = {
    id: p.timekeeperId, initials: p.initials, name: p.name, classification: p.classification,
    ledes_classification: p.ledesClassification, active: p.active ? 1 : 0,
  };
  await upsertIfNewer(ctx.trx, 'billing_timekeeper', values, sourceKey(event), copiedAt(ctx));
}

async function copyClient(event: MattersEnvelope<'matters.client_created' | 'matters.client_changed'>, ctx: ProjectionContext): Promise<void> {
  const p = event.payload;
  const values = {
    id: p.clientId, client_number: p.clientNumber, name: p.name, name_fold: foldName(p.name), email: p.email, address: p.address, tax_id: p.taxId,
    // A change event has no creation time: keep the one copied (null if billing never saw the creation).
    ...('createdAt' in p ? { created_at: p.createdAt } : {}),
  };
  await upsertIfNewer(ctx.trx, 'billing_client', values, sourceKey(event), copiedAt(ctx));
}

async function copyContact(event: MattersEnvelope<'matters.contact_changed'>, ctx: ProjectionContext): Promise<void> {
  const p = event.payload;
  const values = {
    id: p.contactId, client_id: p.clientId, name: p.name, email: p.email, phone: p.phone, address: p.address, role: p.role,
    removed: p.removed ? 1 : 0,
  };
  await upsertIfNewer(ctx.trx, 'billing_contact', values, sourceKey(event), copiedAt(ctx));
}

async function copyChargeType(event: MattersEnvelope<'matters.charge_type_changed'>, ctx: ProjectionContext): Promise<void> {
  const p = event.payload;
  const values = {
    id: p.chargeTypeId, code: p.code, name: p.name, default_price_minor: p.defaultPriceMinor, tax_code: p.taxCode,
    task_code: p.taskCode, activity_code: p.activityCode, active: p.active ? 1 : 0,
  };
  await upsertIfNewer(ctx.trx, 'billing_charge_type', values, sourceKey(event), copiedAt(ctx));
}

async function copyMatter(event: MattersEnvelope<'matters.matter_opened' | 'matters.matter_changed'>, ctx: ProjectionContext): Promise<void> {
  const p = event.payload;
  // matter_changed is the whole matter as it now is, with its billable party and participants.
  const changed = 'billableParty' in p
    ? {
      closed_on: p.closedOn, billable_party_id: p.billableParty.contactId, billable_party_json: JSON.stringify(p.billableParty),
      participants_json: JSON.stringify(p.participants),
    }
    // A matter is opened with the client itself as its billable party (matters sets a contact
    // later, with matter_changed); the client's contact details are in billing_client.
    : {
      closed_on: null, billable_party_id: null,
      billable_party_json: JSON.stringify({ kind: 'client', contactId: null, name: p.clientName, email: null, address: null } satisfies BillableParty),
    };
  const values = {
    id: p.matterId, client_id: p.clientId, client_number: p.clientNumber, client_name: p.clientName, matter_number: p.matterNumber,
    file_number: p.fileNumber, name: p.name, status: p.status, practice_area: p.practiceArea, opened_on: p.openedOn,
    responsible_timekeeper_id: p.responsibleTimekeeperId, billing_timekeeper_id: p.billingTimekeeperId,
    originating_timekeeper_id: p.originatingTimekeeperId, billing_cycle: p.billingCycle, next_billing_date: p.nextBillingDate,
    wip_cap_minor: p.wipCapMinor, currency: p.currency, time_unit_minutes: p.timeUnitMinutes, rounding_mode: p.roundingMode,
    default_behaviour: p.defaultBehaviour, ...changed,
  };
  await upsertIfNewer(ctx.trx, 'billing_matter', values, sourceKey(event), copiedAt(ctx));
}

async function copyBillingOptions(event: MattersEnvelope<'matters.billing_options_changed'>, ctx: ProjectionContext): Promise<void> {
  const p = event.payload;
  const key = sourceKey(event);
  const r = await ctx.trx.updateTable('billing_matter')
    .set({
      options_json: JSON.stringify(p.effective), overridden_json: JSON.stringify(p.overridden), options_version: key.version,
      options_at: key.at, options_event_id: key.eventId, copied_at: copiedAt(ctx),
    })
    .where('id', '=', p.matterId)
    .where((eb) => eb.or([
      eb('options_version', 'is', null),
      eb('options_version', '<', key.version),
      eb.and([eb('options_version', '=', key.version), eb('options_at', '<=', key.at)]),
    ]))
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) > 0) return;
  if (await store.sourceKeyOf(ctx.trx, 'billing_matter', p.matterId)) return; // newer options already copied
  // Same handler as matter_opened, so the matter is normally here; when it is not (history
  // delivered from a gap), fail so the relay retries and /healthz shows it.
  throw new Error(`billing has no copy of matter ${p.matterId} to set billing options on`);
}

async function copyFirmSettings(event: MattersEnvelope<'matters.firm_settings_changed'>, ctx: ProjectionContext): Promise<void> {
  const values = { id: 'firm', settings_json: JSON.stringify(event.payload.settings) };
  await upsertIfNewer(ctx.trx, 'billing_firm_settings', values, sourceKey(event), copiedAt(ctx));
}

async function copyWip(event: MattersEnvelope<'matters.wip_recorded' | 'matters.wip_updated'>, ctx: ProjectionContext): Promise<void> {
  const item = event.payload;
  // Postgres: the row locked first, so a bill taking the item meanwhile is seen (store.lockItemsAsComposed).
  await store.lockWipRow(ctx.trx, item.id);
  const existing = await store.findWipRow(ctx.trx, item.id);
  // Deleted in matters: a kept row (it was on a bill) is flagged; otherwise only the tombstone is left.
  if (existing ? existing.deleted_in_matters_at !== null : await store.isWipDeleted(ctx.trx, item.id)) {
    ctx.logger.debug({ eventId: event.id, wipId: item.id }, 'billing: ignoring a change to WIP already deleted');
    return;
  }
  const row = wipRow(item);
  const key = sourceKey(event);
  if (existing?.bill_id && !isOlder(key, { version: Number(existing.source_version), at: existing.source_at })) {
    const changed = store.WIP_CONTENT_COLUMNS.filter((c) => !sameValue(existing[c], row[c]));
    if (changed.length > 0) {
      await conflict(ctx, event, {
        entityType: 'wip', entityId: item.id, matterId: item.matterId, billId: existing.bill_id, reason: 'changed_while_on_bill',
        detail: { changed, before: Object.fromEntries(changed.map((c) => [c, existing[c]])), after: Object.fromEntries(changed.map((c) => [c, row[c]])) },
      });
    }
  }
  await upsertIfNewer(ctx.trx, 'billing_wip', row, key, copiedAt(ctx));
}

/**
 * Items moved to a billing status together: the status of each copied row, where the row is
 * not newer than the event (the same ordering rule as upsertIfNewer) and matters has not
 * deleted the item. Nothing else of an item changes with its status.
 */
async function copyWipStatus(event: MattersEnvelope<'matters.wip_status_changed'>, ctx: ProjectionContext): Promise<void> {
  const key = sourceKey(event);
  const ids = event.payload.items.map((i) => i.id);
  for (let i = 0; i < ids.length; i += 500) {
    await ctx.trx.updateTable('billing_wip')
      .set({ matters_status: event.payload.status, source_version: key.version, source_at: key.at, event_id: key.eventId, copied_at: copiedAt(ctx) })
      .where('id', 'in', ids.slice(i, i + 500)).where('deleted_in_matters_at', 'is', null)
      .where(rowNotNewerThan('billing_wip', key))
      .execute();
  }
}

/**
 * A run of status changes (a bill run's thousands): the same as copyWipStatus on each in
 * turn, in a few statements. SQLite steps a kept one-item UPDATE per item, in order;
 * Postgres updates from arrays, in stretches where no item repeats (so each item gets its
 * changes in order, as one by one).
 */
async function copyWipStatusMany(events: readonly { event: MattersEnvelope<'matters.wip_status_changed'> }[], trx: Tx, clock: Clock): Promise<void> {
  const at = clock.now().toISOString();
  const rows: { id: string; status: string; version: number; at: string; eventId: string }[] = [];
  for (const { event } of events) {
    const key = sourceKey(event);
    for (const item of event.payload.items) rows.push({ id: item.id, status: event.payload.status, version: key.version, at: key.at, eventId: key.eventId });
  }
  if (writersSerialised(trx)) {
    await runEachRow(trx, `update billing_wip set matters_status = ?, source_version = ?, source_at = ?, event_id = ?, copied_at = ?
      where id = ? and deleted_in_matters_at is null and ${notNewerSql({ version: 'source_version', at: 'source_at' }, { version: '?', at: '?' })}`,
    rows.map((r) => [r.status, r.version, r.at, r.eventId, at, r.id, r.version, r.version, r.at]));
    return;
  }
  const MAX_ROWS = 5_000;
  let stretch: typeof rows = [];
  const seen = new Set<string>();
  const flush = async () => {
    if (stretch.length === 0) return;
    await execRaw(trx, `update billing_wip w set matters_status = v.status, source_version = v.version, source_at = v.at, event_id = v.event_id, copied_at = ?
      from unnest(?::text[], ?::text[], ?::bigint[], ?::text[], ?::text[]) as v(id, status, version, at, event_id)
      where w.id = v.id and w.deleted_in_matters_at is null and ${notNewerSql({ version: 'w.source_version', at: 'w.source_at' }, { version: 'v.version', at: 'v.at' })}`,
    [at, pgArray(stretch.map((r) => r.id)), pgArray(stretch.map((r) => r.status)), pgArray(stretch.map((r) => r.version)), pgArray(stretch.map((r) => r.at)), pgArray(stretch.map((r) => r.eventId))]);
    stretch = [];
    seen.clear();
  };
  for (const r of rows) {
    if (seen.has(r.id) || stretch.length >= MAX_ROWS) await flush();
    stretch.push(r);
    seen.add(r.id);
  }
  await flush();
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === null || a === undefined || b === null || b === undefined) return (a ?? null) === (b ?? null);
  return typeof a === 'number' || typeof b === 'number' ? Number(a) === Number(b) : String(a) === String(b);
}

async function deleteWip(event: MattersEnvelope<'matters.wip_deleted'>, ctx: ProjectionContext): Promise<void> {
  const p = event.payload;
  await store.lockWipRow(ctx.trx, p.id);
  const existing = await store.findWipRow(ctx.trx, p.id);
  await store.recordWipDeleted(ctx.trx, { id: p.id, kind: p.kind, matterId: p.matterId, deletedAt: event.occurredAt, eventId: event.id });
  if (!existing || existing.deleted_in_matters_at !== null) return; // gone, or already flagged
  if (existing.bill_id) {
    // On a bill: keep the row (the bill refers to it) and flag it for the composer.
    await ctx.trx.updateTable('billing_wip').set({ deleted_in_matters_at: event.occurredAt }).where('id', '=', p.id).execute();
    await conflict(ctx, event, {
      entityType: 'wip', entityId: p.id, matterId: p.matterId, billId: existing.bill_id, reason: 'deleted_while_on_bill',
    });
    return;
  }
  await ctx.trx.deleteFrom('billing_wip').where('id', '=', p.id).execute();
}

/** Every matters event billing copies: its handler name and what it does. */
export const PROJECTIONS = {
  'matters.timekeeper_created': { handler: BILLING_HANDLERS.timekeeper, apply: copyTimekeeper },
  'matters.timekeeper_changed': { handler: BILLING_HANDLERS.timekeeper, apply: copyTimekeeper },
  'matters.client_created': { handler: BILLING_HANDLERS.client, apply: copyClient },
  'matters.client_changed': { handler: BILLING_HANDLERS.client, apply: copyClient },
  'matters.contact_changed': { handler: BILLING_HANDLERS.client, apply: copyContact },
  'matters.matter_opened': { handler: BILLING_HANDLERS.matter, apply: copyMatter },
  'matters.matter_changed': { handler: BILLING_HANDLERS.matter, apply: copyMatter },
  'matters.billing_options_changed': { handler: BILLING_HANDLERS.matter, apply: copyBillingOptions },
  'matters.charge_type_changed': { handler: BILLING_HANDLERS.chargeType, apply: copyChargeType },
  'matters.firm_settings_changed': { handler: BILLING_HANDLERS.firmSettings, apply: copyFirmSettings },
  'matters.wip_recorded': { handler: BILLING_HANDLERS.wip, apply: copyWip },
  'matters.wip_updated': { handler: BILLING_HANDLERS.wip, apply: copyWip },
  'matters.wip_deleted': { handler: BILLING_HANDLERS.wip, apply: deleteWip },
  'matters.wip_status_changed': { handler: BILLING_HANDLERS.wip, apply: copyWipStatus },
} as const satisfies Projections;

/** (event type, handler name) for every subscription billing makes. */
export function billingSubscriptions(): Array<{ type: string; handler: string }> {
  return Object.entries(PROJECTIONS).map(([type, p]) => ({ type, handler: p.handler }));
}

/** Subscribe every projection on the bus. */
export function registerBillingProjections(bus: Bus<any>, deps: { clock: Clock; logger: Logger }): void {
  const logger = deps.logger.child({ module: 'billing' });
  for (const [type, p] of Object.entries(PROJECTIONS) as Array<[MattersType, Projection<any>]>) {
    bus.subscribe(type, p.handler, (event, ctx) => p.apply(event as MattersEnvelope<any>, { ...ctx, clock: deps.clock, logger }),
      type === 'matters.wip_status_changed' ? (events, trx) => copyWipStatusMany(events as readonly { event: MattersEnvelope<'matters.wip_status_changed'> }[], trx, deps.clock) : undefined);
  }
}
