/**
 * E-billing's copy of matters and bills, fed by their events. E-billing never reads other
 * modules' tables: these handlers keep ebilling_timekeeper, ebilling_client, ebilling_matter
 * (with its effective e-billing options), ebilling_firm_tax, ebilling_item (quantities and
 * unit costs of disbursements and fixed charges) and ebilling_bill (the whole bill).
 *
 * One handler name per aggregate keeps each aggregate's events in order (the relay orders
 * per handler). Writes are idempotent upserts ordered by the event's source key (a payload
 * `version` when present, then `updatedAt` or occurredAt), so a replayed or late event
 * never regresses the copy.
 */
import type { Logger } from 'pino';
import type { Bus, HandlerContext } from '../../shared/bus.ts';
import type { Clock } from '../../shared/clock.ts';
import type { EventEnvelope } from '../../shared/events.ts';
import type { BillData, BillingEvents } from '../billing/events.ts';
import type { MattersEvents } from '../matters/events.ts';
import { sourceKey, upsertIfNewer } from '../../shared/copies.ts';

export const EBILLING_HANDLERS = {
  timekeeper: 'ebilling.copy_timekeeper',
  client: 'ebilling.copy_client',
  matter: 'ebilling.copy_matter',
  firmSettings: 'ebilling.copy_firm_settings',
  wip: 'ebilling.copy_wip',
  bill: 'ebilling.copy_bill',
} as const;

type AllEvents = MattersEvents & BillingEvents;
type Envelope<K extends keyof AllEvents & string> = EventEnvelope<K, AllEvents[K]>;
interface Ctx extends HandlerContext { readonly clock: Clock; readonly logger: Logger }


const now = (ctx: Ctx): string => ctx.clock.now().toISOString();

async function copyTimekeeper(e: Envelope<'matters.timekeeper_created' | 'matters.timekeeper_changed'>, ctx: Ctx): Promise<void> {
  const p = e.payload;
  await upsertIfNewer(ctx.trx, 'ebilling_timekeeper', { id: p.timekeeperId, initials: p.initials, name: p.name, ledes_classification: p.ledesClassification }, sourceKey(e), now(ctx));
}

async function copyClient(e: Envelope<'matters.client_created' | 'matters.client_changed'>, ctx: Ctx): Promise<void> {
  const p = e.payload;
  await upsertIfNewer(ctx.trx, 'ebilling_client', { id: p.clientId, name: p.name, address: p.address, tax_id: p.taxId }, sourceKey(e), now(ctx));
}

async function copyMatter(e: Envelope<'matters.matter_opened' | 'matters.matter_changed'>, ctx: Ctx): Promise<void> {
  const p = e.payload;
  await upsertIfNewer(ctx.trx, 'ebilling_matter', {
    id: p.matterId, client_id: p.clientId, file_number: p.fileNumber, name: p.name, responsible_timekeeper_id: p.responsibleTimekeeperId,
    billing_timekeeper_id: p.billingTimekeeperId, currency: p.currency,
  }, sourceKey(e), now(ctx));
}

async function copyOptions(e: Envelope<'matters.billing_options_changed'>, ctx: Ctx): Promise<void> {
  const p = e.payload;
  const key = sourceKey(e);
  const r = await ctx.trx.updateTable('ebilling_matter')
    .set({ ebilling_json: JSON.stringify(p.effective.ebilling), options_version: key.version, options_at: key.at, copied_at: now(ctx) })
    .where('id', '=', p.matterId)
    .where((eb) => eb.or([
      eb('options_version', 'is', null), eb('options_version', '<', key.version),
      eb.and([eb('options_version', '=', key.version), eb('options_at', '<=', key.at)]),
    ]))
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) > 0) return;
  const exists = await ctx.trx.selectFrom('ebilling_matter').select('id').where('id', '=', p.matterId).executeTakeFirst();
  if (exists) return; // newer options already copied
  // Same handler as matter_opened, so the matter is normally here: fail so the relay retries.
  throw new Error(`e-billing has no copy of matter ${p.matterId} to set e-billing options on`);
}

async function copyFirmSettings(e: Envelope<'matters.firm_settings_changed'>, ctx: Ctx): Promise<void> {
  const rates = e.payload.settings.taxRates.map((t) => ({ code: t.code, basisPoints: t.basisPoints }));
  await upsertIfNewer(ctx.trx, 'ebilling_firm_tax', { id: 'firm', tax_rates_json: JSON.stringify(rates) }, sourceKey(e), now(ctx));
}

async function copyWip(e: Envelope<'matters.wip_recorded' | 'matters.wip_updated'>, ctx: Ctx): Promise<void> {
  const item = e.payload;
  if (item.kind === 'time') return; // time carries minutes and rate on the bill line itself
  const unitCost = item.kind === 'disbursement' ? item.unitCostMinor : item.unitPriceMinor;
  await upsertIfNewer(ctx.trx, 'ebilling_item', {
    id: item.id, kind: item.kind, matter_id: item.matterId, quantity_milli: item.quantityMilli, unit_cost_minor: unitCost,
  }, sourceKey(e), now(ctx));
}

async function copyBill(e: Envelope<'billing.bill_approved' | 'billing.bill_finalised' | 'billing.bill_reverted' | 'billing.bill_redrafted' | 'billing.bill_deleted'>, ctx: Ctx): Promise<void> {
  const p = e.payload;
  // The event's bill as it now is (a reversal's `reversed` is history, not kept).
  const bill: BillData = {
    billId: p.billId, status: p.status, number: p.number, sequence: p.sequence, matterId: p.matterId, clientId: p.clientId, fileNumber: p.fileNumber,
    currency: p.currency, invoiceDate: p.invoiceDate, upTo: p.upTo, dueDate: p.dueDate, lines: p.lines, allocations: p.allocations, totals: p.totals,
    discount: p.discount, retainerBalanceMinor: p.retainerBalanceMinor, retainerRequestMinor: p.retainerRequestMinor, scheduleRowIds: p.scheduleRowIds,
    items: p.items, hideLinePricing: p.hideLinePricing, batchId: p.batchId, version: p.version,
  };
  await upsertIfNewer(ctx.trx, 'ebilling_bill', {
    id: bill.billId, matter_id: bill.matterId, client_id: bill.clientId, file_number: bill.fileNumber, status: bill.status, number: bill.number,
    invoice_date: bill.invoiceDate, currency: bill.currency, total_minor: bill.totals.totalMinor, line_count: bill.lines.length, bill_json: JSON.stringify(bill),
  }, sourceKey(e), now(ctx));
}

/** A deleted draft that had been numbered: a copy (from an earlier approval) becomes deleted. */
async function dropDraft(e: Envelope<'billing.draft_deleted'>, ctx: Ctx): Promise<void> {
  await ctx.trx.updateTable('ebilling_bill').set({ status: 'deleted', copied_at: now(ctx) }).where('id', '=', e.payload.billId).execute();
}

export const PROJECTIONS = {
  'matters.timekeeper_created': { handler: EBILLING_HANDLERS.timekeeper, apply: copyTimekeeper },
  'matters.timekeeper_changed': { handler: EBILLING_HANDLERS.timekeeper, apply: copyTimekeeper },
  'matters.client_created': { handler: EBILLING_HANDLERS.client, apply: copyClient },
  'matters.client_changed': { handler: EBILLING_HANDLERS.client, apply: copyClient },
  'matters.matter_opened': { handler: EBILLING_HANDLERS.matter, apply: copyMatter },
  'matters.matter_changed': { handler: EBILLING_HANDLERS.matter, apply: copyMatter },
  'matters.billing_options_changed': { handler: EBILLING_HANDLERS.matter, apply: copyOptions },
  'matters.firm_settings_changed': { handler: EBILLING_HANDLERS.firmSettings, apply: copyFirmSettings },
  'matters.wip_recorded': { handler: EBILLING_HANDLERS.wip, apply: copyWip },
  'matters.wip_updated': { handler: EBILLING_HANDLERS.wip, apply: copyWip },
  'billing.bill_approved': { handler: EBILLING_HANDLERS.bill, apply: copyBill },
  'billing.bill_finalised': { handler: EBILLING_HANDLERS.bill, apply: copyBill },
  'billing.bill_reverted': { handler: EBILLING_HANDLERS.bill, apply: copyBill },
  'billing.bill_redrafted': { handler: EBILLING_HANDLERS.bill, apply: copyBill },
  'billing.bill_deleted': { handler: EBILLING_HANDLERS.bill, apply: copyBill },
  'billing.draft_deleted': { handler: EBILLING_HANDLERS.bill, apply: dropDraft },
} as const;

export function ebillingSubscriptions(): Array<{ type: string; handler: string }> {
  return Object.entries(PROJECTIONS).map(([type, p]) => ({ type, handler: p.handler }));
}

export function registerEbillingProjections(bus: Bus<any>, deps: { clock: Clock; logger: Logger }): void {
  const logger = deps.logger.child({ module: 'ebilling' });
  for (const [type, p] of Object.entries(PROJECTIONS) as Array<[string, { handler: string; apply: (e: any, ctx: Ctx) => Promise<void> }]>) {
    bus.subscribe(type, p.handler, (event, ctx) => p.apply(event, { ...ctx, clock: deps.clock, logger }));
  }
}
