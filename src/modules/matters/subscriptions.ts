/**
 * Matters follows billing's bills: matters owns the WIP items' status (unbilled, draft,
 * billed) and the fixed-fee schedule's invoice numbers, and billing tells it through
 * events. One handler for every bill event, so they are applied in the order billing
 * published them. Each runs in the relay's transaction for that delivery and writes only
 * through matters' own commands bound to that transaction (setWipStatus and the schedule
 * row marks emit matters.wip_updated / billing_options_changed in the same transaction).
 *
 *   bill_drafted                     -> items draft
 *   draft_updated                    -> released items unbilled, added items draft
 *   draft_deleted                    -> items unbilled
 *   bill_approved, bill_finalised    -> items billed (billed on approval); schedule rows get the number
 *   bill_reverted, bill_redrafted    -> items draft; schedule rows' number cleared
 *   bill_deleted                     -> items unbilled; schedule rows' number cleared
 *
 * Every step is idempotent and skips what no longer applies (an item matters deleted, a
 * schedule row already marked with another number), so a redelivery or an odd order never
 * blocks the handler. A run of drafted, approved or finalised bills (a bill run publishes
 * thousands) is taken in one go (the bus's handleMany, setWipStatusMany): the same rows,
 * events and audit rows, each under the event that caused it, in a few statements.
 */
import type { Logger } from 'pino';
import type { Bus, HandlerContext, ManyHandler } from '../../shared/bus.ts';
import type { Clock } from '../../shared/clock.ts';
import type { EventEnvelope } from '../../shared/events.ts';
import type { BillingEvents, BillItemRef } from '../billing/events.ts';
import type { MattersCommands } from './commands.ts';

/** Stable handler name (recorded in the inbox). */
export const MATTERS_BILL_HANDLER = 'matters.follow_bills';

/** The bill events matters follows (a template's name is copied by its own handler). */
type BillingType = Exclude<keyof BillingEvents & string, 'billing.template_saved'>;

/** Stable handler name of matters' copy of billing's template names. */
export const MATTERS_TEMPLATE_HANDLER = 'matters.copy_templates';
type Envelope<K extends BillingType> = EventEnvelope<K, BillingEvents[K]>;
type WipStatus = 'unbilled' | 'draft' | 'billed';

interface FollowDeps {
  clock: Clock;
  logger: Logger;
  commands: MattersCommands;
}

function follower(deps: FollowDeps) {
  const logger = deps.logger.child({ module: 'matters', handler: MATTERS_BILL_HANDLER });

  const commandsIn = (ctx: HandlerContext) => deps.commands.within(ctx.trx);

  /** Move the items that still exist and are not already there to `status`. */
  async function setStatus(ctx: HandlerContext, items: readonly BillItemRef[], status: WipStatus): Promise<void> {
    if (items.length === 0) return;
    const { missing } = await commandsIn(ctx).setWipStatus(ctx.command, items, status, { leaveAlone: true });
    if (missing.length > 0) logger.info({ missing: missing.map((m) => m.id) }, 'bill items no longer in matters: skipped');
  }

  /** Mark (or clear) fixed-fee schedule rows with a bill number, where the matter's own schedule has them. */
  async function scheduleRows(ctx: HandlerContext, matterId: string, rowIds: readonly string[], number: string | null, mode: 'mark' | 'clear'): Promise<void> {
    if (rowIds.length === 0 || !number) return;
    const cmds = commandsIn(ctx);
    for (const rowId of rowIds) {
      const view = await cmds.getBillingOptions(matterId);
      const row = view.effective.fixedFee.schedule.find((r) => r.rowId === rowId);
      if (!row || !view.overridden.includes('fixedFee')) {
        logger.warn({ matterId, rowId, number }, 'schedule row not in the matter\'s own schedule: skipped');
        continue;
      }
      if (mode === 'mark') {
        if (row.invoiceNumber === number) continue;
        if (row.invoiceNumber !== null) {
          logger.warn({ matterId, rowId, number, billedOn: row.invoiceNumber }, 'schedule row already billed on another bill: left as it is');
          continue;
        }
        await cmds.markScheduleRowBilled(ctx.command, matterId, rowId, number);
      } else {
        if (row.invoiceNumber !== number) continue;
        await cmds.clearScheduleRowBilled(ctx.command, matterId, rowId, number);
      }
    }
  }

  /**
   * A run of events that each move their items to `status` (a bill run's drafts, or its
   * approvals), as one setWipStatusMany: the same effect as handling them one by one.
   * `after` runs for each event in turn once the items have moved (schedule rows, which
   * the item statuses do not touch); `dated` gives each event's matter and bill date, and the
   * matters' next billing dates move for the whole run at once.
   */
  function many<K extends BillingType>(itemsOf: (e: Envelope<K>) => readonly BillItemRef[], status: WipStatus,
    after?: (e: Envelope<K>, ctx: HandlerContext) => Promise<void>, dated?: (e: Envelope<K>) => { matterId: string; billId: string; billedOn: string }): ManyHandler<Envelope<K>> {
    return async (events, trx) => {
      const cmds = deps.commands.within(trx);
      const results = await cmds.setWipStatusMany(events.map(({ event, command }) => ({ ctx: command, items: itemsOf(event) })), status, { leaveAlone: true });
      const missing = results.flatMap((r) => r.missing);
      if (missing.length > 0) logger.info({ missing: missing.map((m) => m.id) }, 'bill items no longer in matters: skipped');
      // The run's matters held at once, in id order, before their schedules and next billing dates
      // change one event at a time: so this run and a clerk's recording on several of them cannot
      // each hold a matter the other waits for.
      if (dated) await cmds.holdMatters(events.map(({ event }) => dated(event).matterId));
      if (after) for (const { event, command } of events) await after(event, { trx, command });
      if (dated) await cmds.advanceNextBillingDates(events.map(({ event, command }) => ({ ctx: command, ...dated(event) })));
    };
  }

  /**
   * An approved or finalised bill's fixed-fee schedule rows get its number, and the matter's
   * next billing date moves past the bill's date (once: the same date again moves nothing).
   */
  const markApproved = (e: Envelope<'billing.bill_approved'> | Envelope<'billing.bill_finalised'>, ctx: HandlerContext) =>
    scheduleRows(ctx, e.payload.matterId, e.payload.scheduleRowIds, e.payload.number, 'mark');
  const billedOn = (e: Envelope<'billing.bill_approved'> | Envelope<'billing.bill_finalised'>) => ({ matterId: e.payload.matterId, billId: e.payload.billId, billedOn: e.payload.invoiceDate });
  const approved = async (e: Envelope<'billing.bill_approved'> | Envelope<'billing.bill_finalised'>, ctx: HandlerContext) => {
    await markApproved(e, ctx);
    await commandsIn(ctx).advanceNextBillingDates([{ ctx: ctx.command, ...billedOn(e) }]);
  };

  const handlers = {
    'billing.bill_drafted': async (e: Envelope<'billing.bill_drafted'>, ctx: HandlerContext) => {
      await setStatus(ctx, e.payload.items, 'draft');
    },
    'billing.draft_updated': async (e: Envelope<'billing.draft_updated'>, ctx: HandlerContext) => {
      await setStatus(ctx, e.payload.releasedItems, 'unbilled');
      await setStatus(ctx, e.payload.addedItems, 'draft');
    },
    'billing.draft_deleted': async (e: Envelope<'billing.draft_deleted'>, ctx: HandlerContext) => {
      await setStatus(ctx, e.payload.releasedItems, 'unbilled');
    },
    'billing.bill_approved': async (e: Envelope<'billing.bill_approved'>, ctx: HandlerContext) => {
      await setStatus(ctx, e.payload.items, 'billed');
      await approved(e, ctx);
    },
    'billing.bill_finalised': async (e: Envelope<'billing.bill_finalised'>, ctx: HandlerContext) => {
      await setStatus(ctx, e.payload.items, 'billed');
      await approved(e, ctx);
    },
    'billing.bill_reverted': async (e: Envelope<'billing.bill_reverted'>, ctx: HandlerContext) => {
      await setStatus(ctx, e.payload.items, 'draft');
      await scheduleRows(ctx, e.payload.matterId, e.payload.reversed.scheduleRowIds, e.payload.reversed.number, 'clear');
      await commandsIn(ctx).restoreNextBillingDate(ctx.command, e.payload.billId);
    },
    'billing.bill_redrafted': async (e: Envelope<'billing.bill_redrafted'>, ctx: HandlerContext) => {
      await setStatus(ctx, e.payload.items, 'draft');
      await scheduleRows(ctx, e.payload.matterId, e.payload.reversed.scheduleRowIds, e.payload.reversed.number, 'clear');
      await commandsIn(ctx).restoreNextBillingDate(ctx.command, e.payload.billId);
    },
    'billing.bill_deleted': async (e: Envelope<'billing.bill_deleted'>, ctx: HandlerContext) => {
      await setStatus(ctx, e.payload.releasedItems, 'unbilled');
      await scheduleRows(ctx, e.payload.matterId, e.payload.reversed.scheduleRowIds, e.payload.reversed.number, 'clear');
      await commandsIn(ctx).restoreNextBillingDate(ctx.command, e.payload.billId);
    },
  } satisfies { [K in BillingType]: (e: Envelope<K>, ctx: HandlerContext) => Promise<void> };

  // Runs of the events a bill run publishes by the thousand.
  const manyHandlers: { [K in BillingType]?: ManyHandler<Envelope<K>> } = {
    'billing.bill_drafted': many<'billing.bill_drafted'>((e) => e.payload.items, 'draft'),
    'billing.bill_approved': many<'billing.bill_approved'>((e) => e.payload.items, 'billed', markApproved, billedOn),
    'billing.bill_finalised': many<'billing.bill_finalised'>((e) => e.payload.items, 'billed', markApproved, billedOn),
  };
  return { handlers, manyHandlers };
}

/** (event type, handler name) for every subscription matters makes to billing. */
export function mattersBillSubscriptions(): Array<{ type: BillingType; handler: string }> {
  const types: BillingType[] = [
    'billing.bill_drafted', 'billing.draft_updated', 'billing.draft_deleted', 'billing.bill_approved', 'billing.bill_finalised',
    'billing.bill_reverted', 'billing.bill_redrafted', 'billing.bill_deleted',
  ];
  return types.map((type) => ({ type, handler: MATTERS_BILL_HANDLER }));
}

/** Subscribe matters to every bill event, under one stable handler name, and to billing's template names. */
export function registerMattersSubscriptions(bus: Bus<any>, deps: FollowDeps): void {
  const { handlers, manyHandlers } = follower(deps);
  for (const { type, handler } of mattersBillSubscriptions()) {
    bus.subscribe(type, handler, handlers[type] as (e: EventEnvelope, ctx: HandlerContext) => Promise<void>, manyHandlers[type] as ManyHandler | undefined);
  }
  // The names a matter's bill and email template may take (matters_template): templates are only ever added.
  bus.subscribe('billing.template_saved', MATTERS_TEMPLATE_HANDLER, async (e, ctx) => {
    const p = (e as EventEnvelope<'billing.template_saved', BillingEvents['billing.template_saved']>).payload;
    await ctx.trx.insertInto('matters_template').values({ kind: p.kind, name: p.name }).onConflict((oc) => oc.columns(['kind', 'name']).doNothing()).execute();
  });
}
