/**
 * Mass billing's selection rules as pure functions (seeds 001 and 004, issue 5): which
 * matters a run offers, why a matter is not offered, the WIP-cap filter, when a fixed-fee
 * row is due, and the words that explain what a row will bill. The store gathers the facts
 * (mass-store.ts); the page, the API and the CLI show the same reasons.
 *
 * A matter is eligible when it has a client and a billable party, billing is on for it, it
 * is active for billing, it has unbilled WIP or disbursements (or a fixed-fee row due),
 * it has no bill in draft, and it is not excluded from mass billing. An excluded matter
 * can still be hand-picked: picking it waives only the exclusion.
 */
import type { FixedFeeMode, MatterBillingOptions } from '../../matters/events.ts';
import { billingRefusals } from './lifecycle.ts';
import type { QuoteOutcome } from './rules.ts';

export type MassReasonCode =
  | 'no_options' | 'no_client' | 'no_billable_party' | 'billing_off' | 'not_active' | 'nothing_to_bill' | 'expenses_only_no_disbursements'
  | 'has_draft' | 'queued' | 'excluded' | 'foreign_defaults'
  // The run's own filters leave it out (said where a matter named by the clerk is not listed: the lookup, bill-run --matter).
  | 'filtered';

export interface MassReason {
  code: MassReasonCode;
  text: string;
}

/** What the store knows about one matter for a run (counts under the run's filters and cut-off). */
export interface MassFacts {
  matterStatus: 'open' | 'closed';
  /** The effective options (the matter's own or the firm's defaults); null: billing has not received them. */
  options: (Pick<MatterBillingOptions, 'billingEnabled' | 'billingStatus' | 'massBilling'> & Partial<Pick<MatterBillingOptions, 'arrangement'>>) | null;
  hasClient: boolean;
  hasBillableParty: boolean;
  /**
   * Chargeable unbilled items on no bill, up to the cut-off and under the run's filters: fees
   * (time and fixed charges) and disbursements. Hidden and no-charge items never make a matter
   * billable on their own (they go on the next bill that charges something).
   */
  unbilledFeeItems: number;
  /** Of the fee items, time entries: on a fixed-fee matter they wait for an instalment (default 0). */
  unbilledTimeItems?: number;
  unbilledDisbursementItems: number;
  /** A fixed-fee instalment (or an every-cycle fixed fee) is due on the invoice date: the matter is billable for it alone. */
  fixedFeeDue: boolean;
  /**
   * A bill made now would carry the matter's every-cycle fixed fee though it is not due on its
   * own (a matter with no billing cycle: the fee rides on each bill), so its time is written to
   * the fee rather than waiting. Default false.
   */
  cycleFeeOnBill?: boolean;
  /** The matter's draft, by number or "unnumbered" (null: none). */
  draft: string | null;
  /** A bill run not finished (drafting, or stopped and resumable) that has the matter queued (its id), or null (or absent). */
  queuedRun?: string | null;
  /** Why its options cannot bill it in its currency (amounts taken from the firm's defaults: foreignDefaultsRefusal), or null. */
  foreignDefaults?: string | null;
}

/**
 * Why the matter is not offered (empty: it is). `handPicked`: the user chose it by name,
 * which waives the mass-billing exclusion and nothing else.
 */
export function massReasons(f: MassFacts, opts: { handPicked?: boolean } = {}): MassReason[] {
  const out: MassReason[] = [];
  if (!f.options) return [{ code: 'no_options', text: 'Billing has not received this matter\'s billing options yet' }];
  if (!f.hasClient) out.push({ code: 'no_client', text: 'Billing has no copy of the matter\'s client yet' });
  if (!f.hasBillableParty) out.push({ code: 'no_billable_party', text: 'The matter has no billable party yet' });
  if (!f.options.billingEnabled) out.push({ code: 'billing_off', text: 'Billing is turned off for this matter' });
  else {
    const refusals = billingRefusals(f.matterStatus, f.options as MatterBillingOptions);
    if (refusals.length > 0) out.push({ code: 'not_active', text: refusals.join('; ') });
  }
  if (f.foreignDefaults) out.push({ code: 'foreign_defaults', text: f.foreignDefaults });
  const onlyExpenses = f.options.massBilling.onlyExpenses;
  if (onlyExpenses) {
    if (f.unbilledDisbursementItems === 0) out.push({ code: 'expenses_only_no_disbursements', text: 'The matter bills expenses only and has no unbilled disbursements up to the date' });
  } else if (f.draft === null && !hasSomethingToBill({ chargeableItems: chargeableFeeItems(f) + f.unbilledDisbursementItems, fixedFeeDue: f.fixedFeeDue })) {
    // (A matter with a draft has its work on the draft: that, not "nothing to bill", is why.)
    out.push({ code: 'nothing_to_bill', text: f.options.arrangement === 'fixed_fee' && f.unbilledFeeItems > 0
      ? 'Fixed fee with no instalment due: its time waits for the next instalment, and there are no chargeable disbursements or fixed charges'
      : 'No chargeable unbilled WIP or disbursements up to the date, and no fixed-fee row due' });
  }
  if (f.draft !== null) out.push({ code: 'has_draft', text: `The matter already has a bill in draft (${f.draft})` });
  // Another run would only find the draft that run is about to make (and split the matters between two batches).
  else if (f.queuedRun) out.push(queuedReason(f.queuedRun));
  if (f.options.massBilling.exclude && !opts.handPicked) out.push({ code: 'excluded', text: 'The matter is excluded from mass billing (it can still be picked by name)' });
  return out;
}

/** A matter queued in another run not finished yet (`runId`): drafting, or stopped part way and resumable. */
export function queuedReason(runId: string): MassReason {
  return { code: 'queued', text: `The matter is queued in bill run ${runId}, which has not finished: it bills the matter (a run that stopped part way is resumed on its page)` };
}

/**
 * What a bill has to bill on its own: seed 001 bills a matter that "has work in progress or any
 * disbursements to be billed", and seed 002 keeps a no-charge entry out of WIP. So: chargeable
 * items (behaviour "bill"), a fixed fee due on its own (a schedule row, or an every-cycle fee whose
 * cycle has come: fixedFeeDue; or a fee the clerk gave for the bill), or lines the clerk built for
 * the bill (ad hoc lines: seed 003's items "added at the point of billing"). A quote's amount, an
 * every-cycle fee on a matter with no cycle (it rides on bills made for work), no-charge items and
 * interest never make a bill on their own (the composer drafts interest alone as an interest-only
 * bill, a clerk's deliberate act; a run does not). Mass billing (massReasons) and the composer
 * (createDraft) decide by this one rule.
 */
export interface BillContent {
  chargeableItems: number;
  fixedFeeDue: boolean;
  /** Lines the clerk built for this bill (a run builds none). Default 0. */
  clerkLines?: number;
}

export function hasSomethingToBill(c: BillContent): boolean {
  return c.chargeableItems > 0 || c.fixedFeeDue || (c.clerkLines ?? 0) > 0;
}

/** Fee items that can carry a bill: on a fixed-fee matter with no instalment due, time waits (the composer holds it back). */
function chargeableFeeItems(f: MassFacts): number {
  if (f.options?.arrangement === 'fixed_fee' && !f.fixedFeeDue && !f.cycleFeeOnBill) return f.unbilledFeeItems - (f.unbilledTimeItems ?? 0);
  return f.unbilledFeeItems;
}

export const isEligible = (f: MassFacts, opts: { handPicked?: boolean } = {}): boolean => massReasons(f, opts).length === 0;

/**
 * Seed 004's WIP-cap filter: "Default From Matters" keeps matters whose unbilled WIP is at
 * or over their own cap (a matter with no cap is left out); "Or Specify" keeps matters whose
 * unbilled WIP is at or over the amount given.
 */
/**
 * Seed 004's WIP cap filter: none, the matter's own cap, or an amount. An amount is in one
 * currency (the firm's, as typed): a matter billed in another currency is never measured
 * against it (there is no exchange rate to compare yen with dollars), so it is left out.
 * `currency` is absent only in runs stored before amounts carried one: those compare as they did.
 */
export type CapFilter = { kind: 'none' } | { kind: 'matter' } | { kind: 'amount'; amountMinor: number; currency?: string };

/** Whether a matter passes the cap filter: its unbilled WIP (minor units of `matterCurrency`) at or over the cap. */
export function passesCap(filter: CapFilter, unbilledMinor: number, matterCapMinor: number | null, matterCurrency: string): boolean {
  if (filter.kind === 'none') return true;
  if (filter.kind === 'matter') return matterCapMinor !== null && unbilledMinor >= matterCapMinor;
  if (filter.currency !== undefined && filter.currency !== matterCurrency) return false;
  return unbilledMinor >= filter.amountMinor;
}

/**
 * Whether a bill dated `invoiceDate` carries a matter's every-cycle fixed fee (seed 002: "each
 * bill created will inherit the quoted amount"). With no billing cycle, every bill does. With
 * one, the bill of the cycle does: on or after the next billing date, or the first bill when
 * no date is set (approving it sets the date a cycle on). A bill made earlier in the cycle
 * (for costs recorded since, say) does not bill the cycle's fee again; the clerk can still
 * give the fee for that bill.
 */
export function cycleFeeDue(billingCycle: string, nextBillingDate: string | null, invoiceDate: string): boolean {
  return billingCycle === 'none' || nextBillingDate === null || nextBillingDate <= invoiceDate;
}

/** Whether a bill dated `invoiceDate` on this matter carries an every-cycle fixed fee (none for other arrangements). */
export function everyCycleFeeOnBill(
  o: { arrangement: string; fixedFee: { mode: FixedFeeMode } }, billingCycle: string, nextBillingDate: string | null, invoiceDate: string,
): boolean {
  return o.arrangement === 'fixed_fee' && o.fixedFee.mode === 'every_cycle' && cycleFeeDue(billingCycle, nextBillingDate, invoiceDate);
}

/**
 * Whether a fixed fee falls due on this invoice date, making the matter billable on its own:
 * an every-cycle fixed fee whose cycle has come (cycleFeeDue; with no cycle the fee rides on
 * bills made for work, never alone, or every run would bill it again); a custom-schedule row
 * dated on or before the invoice date that no bill has taken (`taken`: row ids on live bills).
 */
export function fixedFeeDue(
  o: { arrangement: string; fixedFee: { mode: FixedFeeMode; schedule: readonly { rowId: string; billOn: string; invoiceNumber: string | null }[] } },
  invoiceDate: string, billingCycle: string, nextBillingDate: string | null, taken: ReadonlySet<string>,
): boolean {
  if (o.arrangement !== 'fixed_fee') return false;
  if (o.fixedFee.mode === 'every_cycle') return billingCycle !== 'none' && cycleFeeDue(billingCycle, nextBillingDate, invoiceDate);
  return o.fixedFee.schedule.some((r) => r.invoiceNumber === null && !taken.has(r.rowId) && r.billOn <= invoiceDate);
}

/** Why a row bills what it bills, in the clerk's words (seed 001: quote rules are applied without prompting). */
export function billingExplanation(x: {
  onlyExpenses: boolean; quote: QuoteOutcome | null; scheduleRows: number; fixedFeeEveryCycle: boolean; totalMinor: number; wipMinor: number;
  /** A fixed-fee matter with no fee on this bill: its recorded time waits for the next instalment or cycle. Default false. */
  timeWaits?: boolean;
  /** The run's time "To a cap" leaves this matter's time out: it waits for a later bill. Default false. */
  timeUnderCap?: boolean;
}): string {
  const parts: string[] = [];
  if (x.onlyExpenses) parts.push('Expenses only: fees stay unbilled');
  if (x.timeUnderCap) parts.push('Time not at the cap chosen: it waits for a later bill');
  if (x.scheduleRows > 0) parts.push(`${x.scheduleRows} fixed-fee instalment${x.scheduleRows === 1 ? '' : 's'} due`);
  else if (x.fixedFeeEveryCycle) parts.push('Fixed fee for the cycle');
  else if (x.timeWaits) parts.push('No fixed-fee instalment due: the recorded time waits for the next one; fixed charges and disbursements billed');
  if (x.quote && x.quote.position !== 'none') parts.push(x.quote.reason);
  if (parts.length === 0) parts.push(x.totalMinor === x.wipMinor ? 'Work in progress as recorded' : 'Work in progress, with the matter\'s discount, tax and no-charge items');
  return parts.join('; ');
}


/**
 * A ticked draft as a list posts it: its id, or its id and the version the list showed
 * (`id@version`). Null: not that shape.
 */
export function parseListedDraft(value: string): { id: string; version: number | null } | null {
  const m = /^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(?:@(\d{1,9}))?$/.exec(value);
  if (!m) return null;
  return { id: m[1]!.toLowerCase(), version: m[2] === undefined ? null : Number(m[2]) };
}

/**
 * Seed 004's time and disbursement filters in a clerk's words, for the run's confirmation and
 * its page: they leave work off each bill (it waits for a later one), which the matter count
 * does not show. Null when neither is set. `timekeeper` names a timekeeper by id.
 */
export function itemFiltersText(f: { time?: { from?: string; to?: string; timekeeperId?: string }; disbursements?: { from?: string; to?: string; code?: string } },
  timekeeper: (id: string) => string): string | null {
  const dated = (from?: string, to?: string) => (from && to ? `dated ${from} to ${to}` : from ? `dated from ${from}` : to ? `dated up to ${to}` : '');
  const parts: string[] = [];
  const t = f.time;
  if (t && (t.from || t.to || t.timekeeperId)) {
    parts.push(`only time ${[dated(t.from, t.to), t.timekeeperId ? `of ${timekeeper(t.timekeeperId)}` : ''].filter(Boolean).join(' ')}`);
  }
  const d = f.disbursements;
  if (d && (d.from || d.to || d.code)) {
    parts.push(`only disbursements ${[dated(d.from, d.to), d.code ? `with code ${d.code}` : ''].filter(Boolean).join(' ')}`);
  }
  if (parts.length === 0) return null;
  return `Each bill takes ${parts.join(', and ')}; the matters' other unbilled work waits for a later bill.`;
}

/**
 * The matter filters a run was made under, in words (its confirmation and its page say which
 * matters it took: a client's, a timekeeper's...). Null: every eligible matter.
 */
export function matterFiltersText(f: { clientId?: string; matterId?: string; responsibleTimekeeperId?: string; billingTimekeeperId?: string; billingCycle?: string;
  nextBillingFrom?: string; nextBillingTo?: string; cap?: CapFilter; expensesOnly?: boolean },
  names: { client: (id: string) => string; matter: (id: string) => string; timekeeper: (id: string) => string; amount: (amountMinor: number, currency?: string) => string }): string | null {
  const parts: string[] = [];
  if (f.clientId) parts.push(`of client ${names.client(f.clientId)}`);
  if (f.responsibleTimekeeperId) parts.push(`with responsible timekeeper ${names.timekeeper(f.responsibleTimekeeperId)}`);
  if (f.billingTimekeeperId) parts.push(`with billing timekeeper ${names.timekeeper(f.billingTimekeeperId)}`);
  if (f.billingCycle) parts.push(`billed ${cycleLabel(f.billingCycle).toLowerCase()}`);
  if (f.nextBillingFrom || f.nextBillingTo) {
    parts.push(`next billed ${f.nextBillingFrom && f.nextBillingTo ? `${f.nextBillingFrom} to ${f.nextBillingTo}` : f.nextBillingFrom ? `on or after ${f.nextBillingFrom}` : `on or before ${f.nextBillingTo}`}`);
  }
  if (f.cap?.kind === 'matter') parts.push('with unbilled WIP at or over their own cap');
  if (f.cap?.kind === 'amount') parts.push(`with unbilled WIP of at least ${names.amount(f.cap.amountMinor, f.cap.currency)}`);
  if (f.expensesOnly) parts.push('set to bill expenses only');
  if (f.matterId) return `Only matter ${names.matter(f.matterId)}${parts.length ? `, if it is one ${parts.join(', ')}` : ''}.`;
  return parts.length === 0 ? null : `Only the matters ${parts.join(', ')}.`;
}

/** A billing cycle as the clerk reads it (matters' cycle names: none, WEEK, MONTH, QUARTER, HALF, YEAR); an unknown one as it is. */
export function cycleLabel(cycle: string): string {
  const labels: Record<string, string> = { none: 'On demand', WEEK: 'Weekly', MONTH: 'Monthly', QUARTER: 'Quarterly', HALF: 'Half-yearly', YEAR: 'Yearly' };
  return Object.hasOwn(labels, cycle) ? labels[cycle]! : cycle;
}

// A typed client (the Client filter): shared with the ledger's forms.
export { clientLookup, foldName } from '../../../shared/client-names.ts';
export type { ClientLookup } from '../../../shared/client-names.ts';
