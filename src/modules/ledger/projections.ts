/**
 * The ledger's event handlers. It is fed only by events:
 *  - matters: timekeepers (each gets a professional-fees sub-account), clients, matters,
 *    charge types (each gets a fixed-charges account), firm settings (currency, the
 *    outside-current-period policy) and WIP (for the WIP report), copied into ledger_*;
 *  - billing: approved bills are posted (BJ), finalised ones marked produced, reverted,
 *    re-drafted and deleted ones reversed exactly (receipts released for re-allocation).
 *
 * Delivery is idempotent twice over: the relay's inbox runs a handler once per event, and
 * every journal is unique per source key (`<event id>:<purpose>`), so a redelivered event
 * posts nothing again. All bill events go to ONE handler (`ledger.post_bills`) so the relay
 * keeps their order. Copies are upserts that an older event never overwrites.
 *
 * An event is never refused for its period: a bill dated in a closed period is posted to the
 * first open period after it, and the journal carries a note the bookkeeper sees on the
 * periods page (never lost, never silently moved).
 */
import type { Logger } from 'pino';
import type { Bus, HandlerContext } from '../../shared/bus.ts';
import { isoDate, type Clock } from '../../shared/clock.ts';
import type { EventEnvelope } from '../../shared/events.ts';
import type { BillingEvents } from '../billing/events.ts';
import type { MattersEvents } from '../matters/events.ts';
import { accountFor, markProduced, postBill, reverseBill } from './books.ts';
import type { Books } from './books.ts';
import * as store from './store.ts';
import { foldName } from '../../shared/client-names.ts';

export const LEDGER_HANDLERS = {
  timekeeper: 'ledger.copy_timekeeper',
  client: 'ledger.copy_client',
  matter: 'ledger.copy_matter',
  chargeType: 'ledger.copy_charge_type',
  firmSettings: 'ledger.copy_firm_settings',
  wip: 'ledger.copy_wip',
  bills: 'ledger.post_bills',
} as const;

type Env<M, K extends keyof M & string> = EventEnvelope<K, M[K]>;
type Ctx = HandlerContext & { clock: Clock; logger: Logger };

const at = (e: EventEnvelope): string => {
  const p = (e.payload ?? {}) as { updatedAt?: unknown };
  return typeof p.updatedAt === 'string' && p.updatedAt !== '' ? p.updatedAt : e.occurredAt;
};
const books = (ctx: Ctx): Books => ({ trx: ctx.trx, clock: ctx.clock, ctx: ctx.command });

export function registerLedgerProjections(bus: Bus<any>, deps: { clock: Clock; logger: Logger }): void {
  const logger = deps.logger.child({ module: 'ledger' });
  const on = <M, K extends keyof M & string>(type: K, handler: string, fn: (e: Env<M, K>, ctx: Ctx) => Promise<void>) =>
    bus.subscribe(type, handler, (e, ctx) => fn(e as Env<M, K>, { ...ctx, clock: deps.clock, logger }));

  const timekeeper = async (e: Env<MattersEvents, 'matters.timekeeper_created' | 'matters.timekeeper_changed'>, ctx: Ctx) => {
    const p = e.payload;
    const applied = await store.upsertCopy(ctx.trx, 'ledger_timekeeper', { id: p.timekeeperId, initials: p.initials, name: p.name, active: p.active ? 1 : 0 }, at(e));
    const account = await accountFor({ trx: ctx.trx, clock: ctx.clock }, { role: 'fee_timekeeper', timekeeperId: p.timekeeperId });
    if (applied) await store.updateAccount(ctx.trx, account.id, { name: `Professional fees: ${p.initials} ${p.name}` }, ctx.clock.now().toISOString());
  };
  on<MattersEvents, 'matters.timekeeper_created'>('matters.timekeeper_created', LEDGER_HANDLERS.timekeeper, timekeeper);
  on<MattersEvents, 'matters.timekeeper_changed'>('matters.timekeeper_changed', LEDGER_HANDLERS.timekeeper, timekeeper);

  const client = async (e: Env<MattersEvents, 'matters.client_created' | 'matters.client_changed'>, ctx: Ctx) => {
    const p = e.payload;
    await store.upsertCopy(ctx.trx, 'ledger_client', { id: p.clientId, client_number: p.clientNumber, name: p.name, name_fold: foldName(p.name), email: p.email, address: p.address }, at(e));
  };
  on<MattersEvents, 'matters.client_created'>('matters.client_created', LEDGER_HANDLERS.client, client);
  on<MattersEvents, 'matters.client_changed'>('matters.client_changed', LEDGER_HANDLERS.client, client);

  const matter = async (e: Env<MattersEvents, 'matters.matter_opened' | 'matters.matter_changed'>, ctx: Ctx) => {
    const p = e.payload;
    await store.upsertCopy(ctx.trx, 'ledger_matter', {
      id: p.matterId, client_id: p.clientId, file_number: p.fileNumber, name: p.name, responsible_timekeeper_id: p.responsibleTimekeeperId,
      originating_timekeeper_id: p.originatingTimekeeperId, currency: p.currency,
    }, at(e));
  };
  on<MattersEvents, 'matters.matter_opened'>('matters.matter_opened', LEDGER_HANDLERS.matter, matter);
  on<MattersEvents, 'matters.matter_changed'>('matters.matter_changed', LEDGER_HANDLERS.matter, matter);

  on<MattersEvents, 'matters.charge_type_changed'>('matters.charge_type_changed', LEDGER_HANDLERS.chargeType, async (e, ctx) => {
    const p = e.payload;
    const applied = await store.upsertCopy(ctx.trx, 'ledger_charge_type', { id: p.chargeTypeId, code: p.code, name: p.name }, at(e));
    const account = await accountFor({ trx: ctx.trx, clock: ctx.clock }, { role: 'fixed_charge_type', chargeTypeId: p.chargeTypeId });
    if (applied) await store.updateAccount(ctx.trx, account.id, { name: `Fixed charges: ${p.code} ${p.name}` }, ctx.clock.now().toISOString());
  });

  on<MattersEvents, 'matters.firm_settings_changed'>('matters.firm_settings_changed', LEDGER_HANDLERS.firmSettings, async (e, ctx) => {
    const s = e.payload.settings;
    const prev = JSON.parse((await store.getSetting(ctx.trx, 'firm')) ?? '{}') as { at?: string };
    if (prev.at && prev.at > e.occurredAt) return;
    await store.setSetting(ctx.trx, 'firm', JSON.stringify({ currency: s.currency, postingOutsideCurrentPeriod: s.postingOutsideCurrentPeriod, at: e.occurredAt }), ctx.clock.now().toISOString());
  });

  const wip = async (e: Env<MattersEvents, 'matters.wip_recorded' | 'matters.wip_updated'>, ctx: Ctx) => {
    const w = e.payload;
    const existing = await ctx.trx.selectFrom('ledger_wip').select('deleted').where('id', '=', w.id).executeTakeFirst() as { deleted: unknown } | undefined;
    if (existing && Number(existing.deleted) === 1) return;
    const date = w.kind === 'time' ? w.workDate : w.kind === 'disbursement' ? w.incurredOn : w.chargedOn;
    if (w.kind === 'fixed_charge' && w.quoted) return; // quoted products are not WIP until billed
    await store.upsertCopy(ctx.trx, 'ledger_wip', {
      id: w.id, kind: w.kind, matter_id: w.matterId, client_id: w.clientId, timekeeper_id: w.kind === 'time' ? w.timekeeperId : null, date,
      minutes: w.kind === 'time' ? w.billedMinutes : null, amount_minor: w.amountMinor, currency: w.currency, behaviour: w.behaviour, deleted: 0,
    }, at(e));
  };
  on<MattersEvents, 'matters.wip_recorded'>('matters.wip_recorded', LEDGER_HANDLERS.wip, wip);
  on<MattersEvents, 'matters.wip_updated'>('matters.wip_updated', LEDGER_HANDLERS.wip, wip);
  on<MattersEvents, 'matters.wip_deleted'>('matters.wip_deleted', LEDGER_HANDLERS.wip, async (e, ctx) => {
    const p = e.payload;
    const r = await ctx.trx.updateTable('ledger_wip').set({ deleted: 1, source_at: e.occurredAt }).where('id', '=', p.id).executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) {
      await ctx.trx.insertInto('ledger_wip').values({
        id: p.id, kind: p.kind, matter_id: p.matterId, client_id: '', timekeeper_id: null, date: '0000-00-00', minutes: null, amount_minor: 0,
        currency: 'XXX', behaviour: 'hide', deleted: 1, source_at: e.occurredAt,
      }).execute();
    }
  });

  // Bills: one handler, in order; each event applied once even if it gets past the inbox again.
  // The firm's calendar day the change happened on (isoDate: the firm's time zone), not UTC's.
  const day = (e: EventEnvelope) => isoDate(new Date(e.occurredAt));
  const once = <K extends 'billing.bill_approved' | 'billing.bill_finalised' | 'billing.bill_reverted' | 'billing.bill_redrafted' | 'billing.bill_deleted'>(
    type: K, fn: (e: Env<BillingEvents, K>, ctx: Ctx) => Promise<void>,
  ) => on<BillingEvents, K>(type, LEDGER_HANDLERS.bills, async (e, ctx) => {
    const seen = await ctx.trx.selectFrom('ledger_applied_event').select('event_id').where('event_id', '=', e.id).executeTakeFirst();
    if (seen) { ctx.logger.info({ eventId: e.id, type: e.type }, 'ledger: bill event already applied'); return; }
    await ctx.trx.insertInto('ledger_applied_event').values({ event_id: e.id, type: e.type, bill_id: (e.payload as { billId: string }).billId, applied_at: ctx.clock.now().toISOString() }).execute();
    await fn(e, ctx);
  });
  once('billing.bill_approved', (e, ctx) => postBill(books(ctx), e.id, e.payload));
  once('billing.bill_finalised', (e, ctx) => markProduced(books(ctx), e.payload));
  once('billing.bill_reverted', (e, ctx) => reverseBill(books(ctx), e.id, e.type, e.payload, e.payload.reversed, day(e)));
  once('billing.bill_redrafted', (e, ctx) => reverseBill(books(ctx), e.id, e.type, e.payload, e.payload.reversed, day(e)));
  once('billing.bill_deleted', (e, ctx) => reverseBill(books(ctx), e.id, e.type, e.payload, e.payload.reversed, day(e)));
}

/** (event type, handler name) for every subscription the ledger makes. */
export function ledgerSubscriptions(): Array<{ type: string; handler: string }> {
  return [
    ['matters.timekeeper_created', 'timekeeper'], ['matters.timekeeper_changed', 'timekeeper'], ['matters.client_created', 'client'], ['matters.client_changed', 'client'],
    ['matters.matter_opened', 'matter'], ['matters.matter_changed', 'matter'], ['matters.charge_type_changed', 'chargeType'], ['matters.firm_settings_changed', 'firmSettings'],
    ['matters.wip_recorded', 'wip'], ['matters.wip_updated', 'wip'], ['matters.wip_deleted', 'wip'], ['billing.bill_approved', 'bills'], ['billing.bill_finalised', 'bills'],
    ['billing.bill_reverted', 'bills'], ['billing.bill_redrafted', 'bills'], ['billing.bill_deleted', 'bills'],
  ].map(([type, k]) => ({ type: type!, handler: LEDGER_HANDLERS[k as keyof typeof LEDGER_HANDLERS] }));
}
