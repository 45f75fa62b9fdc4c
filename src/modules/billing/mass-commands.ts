/**
 * Mass billing: the eligible list, runs ("batches") that draft many matters, and the bulk
 * paths that draft and approve thousands of bills quickly.
 *
 * The bulk paths keep exactly the single-bill rules: they read the same copy (in a few
 * queries per chunk of matters instead of a few per matter), compose with the same
 * `composeFrom`, decide with the same `draftRefusal`/`verdict`, and write the same rows,
 * audit rows and events (`billData`, `auditView`) as createDraft and approve, in one
 * transaction per chunk. If a chunk meets a concurrent writer (Postgres: another process
 * drafting the same matter or taking the same item), the chunk rolls back and its matters
 * go one by one through the single-bill commands, each skipping cleanly with the reason.
 *
 * A run is created with its matters listed (billing_batch_matter) and worked through in
 * chunks; each chunk records its outcomes in the same transaction as its drafts, so a run
 * interrupted by a crash resumes exactly where it stopped, and the page can poll progress.
 */
import { settledWithin } from '../../shared/settle.ts';
import { setImmediate as setImmediatePromise } from 'node:timers/promises';
import { assert } from '../../shared/assert.ts';
import { audit, auditMany } from '../../shared/audit.ts';
import type { AuditEntry } from '../../shared/audit.ts';
import type { Executor, Tx } from '../../shared/db.ts';
import { insertTuples, runEachRow, writersSerialised } from '../../shared/sql.ts';
import { isUniqueViolation } from '../../shared/db.ts';
import type { CommandContext } from '../../shared/events.ts';
import { isoDate } from '../../shared/clock.ts';
import { isId, newId } from '../../shared/ids.ts';
import { formatMoney, MoneyParseError, parseAmount, sumByCurrency } from '../../shared/money.ts';
import { appendEvents } from '../../shared/outbox.ts';
import { conflict, HttpError, invalid, notFound } from '../../shared/web/errors.ts';
import * as billBalances from './balances.ts';
import * as bills from './bill-store.ts';
import type { Bill, BillHead, LineJson } from './bill-store.ts';
import {
  auditView, auditViewOf, BILL_CHANGED, composedContent, composedUnderOtherOptions, composeFrom, draftedData, draftRefusal, foreignDefaultsOf, interestPolicyApplies, loadedMatter, newDraftBase, nothingToBill, payRetainer, requestCheck, withComposition, withCycleFee,
} from './commands.ts';
import type { BillingCommands, BillingDeps, Composition, LoadedMatter } from './commands.ts';
import { approvalTime, billingRefusals, invoiceDateRangeError, isCalendarDate, MAX_PAYMENT_TERMS_DAYS, periodRefusal, retainerApplies, sequenceDateRefusal, verdict } from './domain/lifecycle.ts';
import type { BillFacts, BillRequest } from './domain/lifecycle.ts';
import { billingExplanation, everyCycleFeeOnBill, fixedFeeDue, hasSomethingToBill, isEligible, itemFiltersText, massReasons, matterFiltersText, passesCap, queuedReason } from './domain/mass.ts';
import type { CapFilter, MassFacts, MassReason } from './domain/mass.ts';
import type { InterestCharge } from './domain/interest.ts';
import { billNumber } from './domain/rules.ts';
import { unknownTemplate } from './domain/templates.ts';
import type { MatterBillingOptions } from '../matters/events.ts';
import * as mass from './mass-store.ts';
import type { Batch, MassCandidate, MassFilters } from './mass-store.ts';
import { execRaw, insertRows, marks, selectRaw } from './mass-store.ts';
import * as store from './store.ts';
import type { WipCopy } from './store.ts';

/** Matters per drafting transaction (about 50 items each in a busy firm: ~10,000 items). */
export const DRAFT_CHUNK = 200;

/** Why a draft ticked on a list is not approved: it changed after the list was shown. */
export const CHANGED_SINCE_LISTED = 'It changed after the list was shown (recomposed or edited): review it and try again';
/**
 * Drafting (and approving) transactions kept in flight at once on Postgres, each on its own
 * chunk of matters (SQLite runs one write transaction at a time). Chunks hold disjoint
 * matters, so they write disjoint rows; a run's progress row is the one they share, updated
 * last in each. While one chunk waits on the server the other composes.
 */
export const PG_DRAFT_LANES = 2;

/**
 * `fn` on consecutive parts of `items` (`size` each), all at once; the results in part order.
 * Every part settles before the first failure is thrown, so none is left running.
 */
async function inParts<T, R>(items: readonly T[], size: number, fn: (part: T[]) => Promise<R>): Promise<R[]> {
  assert(Number.isSafeInteger(size) && size >= 1, 'a part holds at least one item');
  const parts: T[][] = [];
  for (let i = 0; i < items.length; i += size) parts.push(items.slice(i, i + size));
  const settled = await Promise.allSettled(parts.map(fn));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<R>).value);
}

/** Bills per approving transaction. */
export const APPROVE_CHUNK = 200;
/** The most matters one run takes. */
export const MAX_RUN_MATTERS = 50_000;
/** Drafts changed by hand from the mass billing page that one run takes in, at most. */
export const MAX_HAND_DRAFTS = 100;
/** The start of a run's row for a draft changed by hand from the mass billing page (taken in, or not). */
export const HAND_DRAFT_REASON = 'Changed by hand in the composer';
/**
 * A run not finished that has not moved for this long (each chunk it drafts moves it) is taken
 * to have stopped with its process: its queued matters are offered to other runs again (a
 * matter queued in a run still drafting is not: "queued").
 */
export const RUN_STALLED_MS = 10 * 60_000;
/** How often the process drafting a run says it is alive (billing_batch.heartbeat_at). */
export const RUN_HEARTBEAT_MS = 10_000;
/** A run whose heartbeat is older than this has no process drafting it: another server offers Resume. */
export const RUN_HEARTBEAT_STALE_MS = 60_000;

/** Whether a run is being drafted by some server process, as its heartbeat says (this process knows its own runs itself). */
export function runDraftingElsewhere(run: { status: string; heartbeatAt: string | null }, nowMs: number): boolean {
  return run.status === 'running' && run.heartbeatAt !== null && nowMs - Date.parse(run.heartbeatAt) < RUN_HEARTBEAT_STALE_MS;
}

/** Put on hold or released when it already was: nothing written (the drafts page counts these apart from refusals). */
export const ALREADY_HELD = 'It is on hold already';
export const NOTHING_TO_RELEASE = 'It is not on hold: nothing to release';

/** Bill all refused because another run, not finished, queued every matter it would bill (the clerk is sent to that run). */
export class RunQueuedElsewhere extends HttpError {
  constructor(readonly runId: string) {
    super(409, 'queued_elsewhere', `Every matter these choices would bill is already queued in bill run ${runId}, which has not finished: nothing was created (a run that stopped part way is resumed on its page)`);
  }
}

/** A run another server process is drafting (its heartbeat fresh): not taken up here. */
export class RunDraftingElsewhere extends HttpError {
  constructor(readonly runId: string, readonly heartbeatAt: string) {
    super(409, 'drafting_elsewhere', `Bill run ${runId} is being drafted by another server process (last heard from at ${heartbeatAt}): it was not started again here. It goes on there; if that process stopped, take it up a minute after it was last heard from`);
  }
}

export type DraftOutcome =
  | { matterId: string; ok: true; bill: DraftSummary }
  | { matterId: string; ok: false; reason: string };

/** A drafted bill as a run reports it (the bill itself is in the database; runs keep no lines in memory). */
export interface DraftSummary { billId: string; fileNumber: string; currency: string; totals: Bill['totals']; itemCount: number }
const summary = (b: Bill): DraftSummary => ({ billId: b.billId, fileNumber: b.fileNumber, currency: b.currency, totals: { ...b.totals }, itemCount: b.items.length });

export type ApproveOutcome = { billId: string; ok: true; number: string } | { billId: string; ok: false; reason: string };

export interface MassRow extends MassCandidate {
  eligible: boolean;
  reasons: MassReason[];
  fixedFeeDue: boolean;
  /** Billable unbilled WIP (fees and disbursements) under the filters. */
  wipMinor: number;
  overCap: boolean;
}

/** Unbilled WIP of many matters in one currency (minor units of that currency). */
export interface WipTotal { currency: string; wipMinor: number }

/** Each currency's WIP, summed apart (in currency code order). */
export function wipByCurrency(rows: readonly { currency: string; wipMinor: number }[]): WipTotal[] {
  return sumByCurrency(rows, (r) => r.wipMinor).map(({ currency, amountMinor }) => ({ currency, wipMinor: amountMinor }));
}

export interface MassRowPreview {
  totalMinor: number;
  feesMinor: number;
  disbursementsMinor: number;
  quote: string | null;
  why: string;
  error: string | null;
  /** A "To a cap" time filter leaves this matter's time off its bill (it waits). */
  timeWaits: boolean;
}

export interface RunInput {
  /** Idempotency key: the same id twice (a second click, a retried request) is the same run. */
  id?: string;
  invoiceDate: string;
  upTo: string;
  template?: string | null;
  paymentTermsDays?: number | null;
  filters?: Omit<MassFilters, 'invoiceDate' | 'upTo'>;
  /** Bill these matters (hand-picked: an excluded matter may be among them); absent: every eligible matter under the filters. */
  matterIds?: readonly string[];
  /**
   * Drafts the clerk made from a mass billing row's composer link (seed 001: open a row's bill
   * for last-minute changes) to take into the run as they are: each must still be a draft in
   * no run. Not recomposed, no item taken: only counted in the run and put in its batch.
   */
  handDraftIds?: readonly string[];
}

/** JSON with every object's keys in order: the same choices however they were built. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** A run as a clerk tells it apart: its dates and how many matters it took. */
const runSummary = (b: Batch): string => `invoice date ${b.invoiceDate}, up to ${b.upTo}, ${b.mode === 'selected' ? `${b.matterCount} matter(s) picked` : `every eligible matter under its filters (${b.matterCount})`}`;

/** Why an amount cap leaves a matter out when the matter is billed in another currency, else null. */
function otherCurrency(cap: CapFilter, matterCurrency: string, what = 'The WIP cap filter leaves it out'): string | null {
  if (cap.kind !== 'amount' || cap.currency === undefined || cap.currency === matterCurrency) return null;
  return `${what} (the matter is billed in ${matterCurrency}; the amount given is in ${cap.currency}, and amounts in two currencies are not compared)`;
}

/** Names a clerk knows for the fields a bill's change is refused on. */
const FIELD_LABELS: Record<string, string> = {
  invoiceDate: 'Invoice date', upTo: 'Up-to date', paymentTermsDays: 'Payment terms', template: 'Bill template', fixedFeeAmount: 'Fixed fee',
};

/** A refusal in a clerk's words: each field's message under its label (not just "Please correct: upTo"). */
function refusalText(e: HttpError): string {
  const fields = Object.entries(e.fields);
  return fields.length ? fields.map(([k, v]) => `${FIELD_LABELS[k] ?? k} ${v}`).join('; ') : e.message;
}

/** A skip or refusal reason: an HttpError in the clerk's words, anything else as it says. */
const errText = (e: unknown): string => (e instanceof HttpError ? refusalText(e) : String(e));

function isRaceError(e: unknown): boolean {
  if (e instanceof HttpError && e.status === 409) return true;
  const code = (e as { code?: string } | null)?.code;
  return isUniqueViolation(e) || code === '40P01' || code === '40001' || code === 'SQLITE_BUSY';
}

/** The request each bill of a run starts from: the run's template and terms (each changeable per bill later). */
export function runRequest(input: { template?: string | null; paymentTermsDays?: number | null }, filters?: MassFilters | Omit<MassFilters, 'invoiceDate' | 'upTo'>): BillRequest {
  const r: BillRequest = {};
  if (input.template) r.template = input.template;
  if (input.paymentTermsDays !== undefined && input.paymentTermsDays !== null) r.paymentTermsDays = input.paymentTermsDays;
  const time = filters?.time;
  const disb = filters?.disbursements;
  const f: NonNullable<BillRequest['filters']> = {};
  if (time && (time.from || time.to || time.timekeeperId)) f.time = { ...(time.from ? { from: time.from } : {}), ...(time.to ? { to: time.to } : {}), ...(time.timekeeperId ? { timekeeperIds: [time.timekeeperId] } : {}) };
  if (disb && (disb.from || disb.to || disb.code)) f.disbursements = { ...(disb.from ? { from: disb.from } : {}), ...(disb.to ? { to: disb.to } : {}), ...(disb.code ? { codes: [disb.code] } : {}) };
  if (f.time || f.disbursements) r.filters = f;
  return r;
}

/**
 * A cap as typed in a run's choices (seed 004's WIP cap and time "To a cap"): "matter" (the
 * matter's own cap) or an amount in `currency`; nothing for an empty choice; else why it is
 * no choice (for the page, the API or the CLI to name its own field).
 */
export function capChoice(text: string | undefined, currency: string): { cap?: CapFilter; error?: string } {
  if (text === undefined || text === '') return {};
  if (text === 'matter') return { cap: { kind: 'matter' } };
  try {
    return { cap: { kind: 'amount', amountMinor: parseAmount(text, currency), currency } };
  } catch (e) {
    if (e instanceof MoneyParseError) return { error: e.message.replace(/^"[^"]*" /, '') };
    throw e;
  }
}

/**
 * A matter's request when a "To a cap" time filter leaves it out (seed 004: only the time of
 * matters at their cap is billed): no time on its bill (`filters.time.none`), so its time waits,
 * unbilled, for a later bill, and so does time recorded later when the draft is recomposed. Kept
 * in the draft's request; the composer shows it as "Leave time off this bill".
 */
export function withTimeWaiting(request: BillRequest, timeWaits: boolean): BillRequest {
  if (!timeWaits) return request;
  return { ...request, filters: { ...request.filters, time: { ...request.filters?.time, none: true } } };
}

/**
 * Why a run does not draft a matter's composition (null: it does), as createDraft would refuse
 * it: no lines; or nothing of its own to bill (no chargeable item, no fee due on its own), so
 * that what rides on a bill made for work (the quote's amount, an every-cycle fee with no
 * billing cycle) or no-charge items never make a bill alone. The matter was chosen when the run
 * was created; its work may have been billed, deleted or set to no charge since. A run never
 * drafts an interest-only bill (createDraft does, when a clerk asks). `given`: the request
 * before withCycleFee, as createDraft gets it.
 */
export function runCompositionRefusal(m: LoadedMatter, invoiceDate: string, upTo: string, given: BillRequest, c: Composition): string | null {
  if (c.lines.length === 0) return `No billable items on or before ${upTo}`;
  if (!hasSomethingToBill(composedContent(m, invoiceDate, given, c))) return nothingToBill(upTo);
  return null;
}

export function filterErrors(f: Partial<MassFilters>, today: string): Record<string, string> {
  const e: Record<string, string> = {};
  const dates: [string, string | undefined][] = [
    ['invoiceDate', f.invoiceDate], ['upTo', f.upTo], ['nextBillingFrom', f.nextBillingFrom], ['nextBillingTo', f.nextBillingTo],
    ['timeFrom', f.time?.from], ['timeTo', f.time?.to], ['disbFrom', f.disbursements?.from], ['disbTo', f.disbursements?.to],
  ];
  for (const [k, v] of dates) if (v !== undefined && v !== '' && !isCalendarDate(v)) e[k] = 'must be a date (YYYY-MM-DD)';
  const range = !e.invoiceDate && f.invoiceDate ? invoiceDateRangeError(f.invoiceDate, today) : null;
  if (range) e.invoiceDate = range;
  if (!e.invoiceDate && !e.upTo && f.invoiceDate && f.upTo && f.upTo > f.invoiceDate) e.upTo = 'must be on or before the invoice date';
  // A range that ends before it starts selects nothing: say so rather than bill nothing.
  const ranges: [string, string, string | undefined, string | undefined][] = [
    ['nextBillingFrom', 'nextBillingTo', f.nextBillingFrom, f.nextBillingTo], ['timeFrom', 'timeTo', f.time?.from, f.time?.to], ['disbFrom', 'disbTo', f.disbursements?.from, f.disbursements?.to],
  ];
  for (const [from, to, a, b] of ranges) if (!e[from] && !e[to] && a && b && b < a) e[to] = `must be on or after the ${from === 'nextBillingFrom' ? 'next billing date from' : 'date from'} (${a})`;
  // Work dated from after the up-to date is never billed by this run: said, rather than every bill going out without it.
  for (const [from, a] of [['timeFrom', f.time?.from], ['disbFrom', f.disbursements?.from]] as const) {
    if (!e[from] && !e.upTo && a && f.upTo && isCalendarDate(f.upTo) && a > f.upTo) e[from] = `must be on or before the up-to date (${f.upTo}): work dated after it is not billed`;
  }
  if (f.cap?.kind === 'amount' && !(Number.isSafeInteger(f.cap.amountMinor) && f.cap.amountMinor >= 0)) e.capAmount = 'must be an amount of zero or more';
  const tc = f.time?.cap;
  if (tc?.kind === 'amount' && !(Number.isSafeInteger(tc.amountMinor) && tc.amountMinor >= 0)) e.timeCapAmount = 'must be an amount of zero or more';
  return e;
}

export function createMassBilling(deps: BillingDeps, cmds: BillingCommands) {
  const { db, clock } = deps;
  const now = (): string => clock.now().toISOString();
  const today = (): string => isoDate(clock.now());
  /** Chunk transactions kept in flight by a run or a bulk approve (see PG_DRAFT_LANES). */
  const lanes = writersSerialised(db) ? 1 : PG_DRAFT_LANES;

  // ---- the eligible list -----------------------------------------------------------------

  /** Runs not finished that have moved since this still hold their queued matters (RUN_STALLED_MS). */
  const liveRuns = (): mass.LiveRuns => ({
    movedSince: new Date(clock.now().getTime() - RUN_STALLED_MS).toISOString(), beatSince: new Date(clock.now().getTime() - RUN_HEARTBEAT_STALE_MS).toISOString(),
  });

  function factsOf(c: MassCandidate, invoiceDate: string, taken: ReadonlySet<string>, firmCurrency: string | null): MassFacts & { fixedFeeDue: boolean } {
    const due = c.options ? fixedFeeDue(c.options, invoiceDate, c.billingCycle, c.nextBillingDate, taken) : false;
    const cycleFeeOnBill = c.options ? everyCycleFeeOnBill(c.options, c.billingCycle, c.nextBillingDate, invoiceDate) : false;
    return {
      cycleFeeOnBill,
      matterStatus: c.status, options: c.options, hasClient: c.hasClient, hasBillableParty: c.hasBillableParty,
      unbilledFeeItems: c.feeItems, unbilledTimeItems: c.timeItems, unbilledDisbursementItems: c.disbursementItems, fixedFeeDue: due,
      draft: c.draftId ? (c.draftNumber ?? 'unnumbered') : null,
      queuedRun: c.queuedRunId,
      foreignDefaults: firmCurrency === null ? null : foreignDefaultsOf(c, firmCurrency),
    };
  }

  /** Every matter under the filters, with whether a run would bill it and why not. */
  async function candidates(f: MassFilters, opts: { matterIds?: readonly string[]; handPicked?: boolean; capStatus?: boolean } = {}): Promise<MassRow[]> {
    const e = filterErrors(f, today());
    if (Object.keys(e).length) throw invalid(e);
    const list = await mass.massCandidates(db, f, { matterIds: opts.matterIds, liveRuns: liveRuns(), ...(opts.capStatus === false ? { capStatus: false } : {}) });
    const withSchedule = list.filter((c) => c.options?.arrangement === 'fixed_fee' && c.options.fixedFee.mode === 'custom_schedule').map((c) => c.matterId);
    const taken = await mass.takenScheduleRows(db, withSchedule);
    const cap = f.cap ?? { kind: 'none' as const };
    const firmCurrency = (await store.getFirmSettings(db))?.currency ?? null;
    return list.map((c) => {
      const facts = factsOf(c, f.invoiceDate, new Set(taken.get(c.matterId)?.keys() ?? []), firmCurrency);
      const wipMinor = c.feesMinor + c.disbursementsMinor;
      // Naming one matter in the filters is picking it by name: an excluded matter can be billed so.
      const reasons = massReasons(facts, { handPicked: opts.handPicked || Boolean(f.matterId) });
      // The cap is measured on all the matter's unbilled WIP when the filter read it (seed 004), else on what the run bills.
      const capWipMinor = c.unbilledTotalMinor ?? wipMinor;
      const overCap = c.wipCapMinor !== null && capWipMinor >= c.wipCapMinor;
      return { ...c, eligible: reasons.length === 0, reasons, fixedFeeDue: facts.fixedFeeDue, wipMinor, overCap, capOk: passesCap(cap, capWipMinor, c.wipCapMinor, c.currency) };
    }).filter((r) => r.capOk).map(({ capOk: _c, ...r }) => r);
  }

  /**
   * The eligible matters under the filters (a page of them, and how many there are), and their
   * WIP totalled per currency (each matter's WIP is in its own currency: yen never adds to dollars).
   */
  async function eligible(f: MassFilters, opts: { limit?: number; offset?: number } = {}): Promise<{ total: number; rows: MassRow[]; totals: { wip: WipTotal[] } }> {
    const all = (await candidates(f)).filter((r) => r.eligible);
    const offset = opts.offset ?? 0;
    return { total: all.length, rows: all.slice(offset, offset + (opts.limit ?? all.length)), totals: { wip: wipByCurrency(all) } };
  }

  /**
   * Matters under the filters that only their exclusion from mass billing keeps off the list
   * (each would be billed if picked), at most `limit`: the page lists them on request so the
   * clerk can tick them with the others. `total`: how many there are in all.
   */
  async function excludedRows(f: MassFilters, opts: { limit?: number } = {}): Promise<{ rows: MassRow[]; total: number }> {
    const limit = Math.max(0, Math.min(opts.limit ?? 200, 5_000));
    const all = (await candidates(f)).filter((r) => r.reasons.length === 1 && r.reasons[0]!.code === 'excluded');
    return { rows: all.slice(0, limit), total: all.length };
  }

  /** Why a matter is not on the list (empty reasons: it is), looked up by id or file number. */
  async function whyNot(f: MassFilters, matter: { id?: string; fileNumber?: string }) {
    let id = matter.id;
    if (!id && matter.fileNumber) {
      const r = await db.selectFrom('billing_matter').select('id').where('file_number', '=', matter.fileNumber).executeTakeFirst() as { id: string } | undefined;
      id = r?.id;
    }
    if (!id) return null;
    // Named in the Matter filter, it is picked by name: its exclusion from mass billing is no reason then.
    const [row] = await candidates({ invoiceDate: f.invoiceDate, upTo: f.upTo }, { matterIds: [id], handPicked: Boolean(f.matterId) });
    if (!row) return null;
    // The run's own filters may leave it out too.
    const filtered: string[] = [];
    const [under] = await candidates(f, { matterIds: [id] });
    if (!under) filtered.push(...await filtersLeavingOut(f, row));
    else if (under.feeItems + under.disbursementItems === 0 && row.feeItems + row.disbursementItems > 0 && !under.fixedFeeDue) filtered.push(...await itemFiltersLeavingOut(f, row));
    // Left out only for its exclusion: the page lists it among the excluded matters on request (showExcluded).
    const excludedOnly = filtered.length === 0 && row.reasons.length > 0 && row.reasons.every((r) => r.code === 'excluded');
    return { row, reasons: [...row.reasons.map((r) => r.text), ...filtered], excludedOnly };
  }

  /**
   * Which of the run's matter filters leave this matter out, each named with the matter's
   * own value beside the filter's (tried one at a time: a lookup of one matter).
   */
  async function filtersLeavingOut(f: MassFilters, row: MassRow): Promise<string[]> {
    const id = row.matterId;
    const dates = { invoiceDate: f.invoiceDate, upTo: f.upTo };
    const tests: [MassFilters, string][] = [];
    if (f.clientId) tests.push([{ ...dates, clientId: f.clientId }, 'The Client filter leaves it out (it is another client\'s matter)']);
    if (f.matterId) tests.push([{ ...dates, matterId: f.matterId }, 'The Matter filter names another matter']);
    if (f.responsibleTimekeeperId) tests.push([{ ...dates, responsibleTimekeeperId: f.responsibleTimekeeperId }, 'The Responsible timekeeper filter leaves it out (another timekeeper is responsible)']);
    if (f.billingTimekeeperId) tests.push([{ ...dates, billingTimekeeperId: f.billingTimekeeperId }, 'The Billing timekeeper filter leaves it out (another timekeeper bills it)']);
    if (f.billingCycle) tests.push([{ ...dates, billingCycle: f.billingCycle }, `The Billing cycle filter leaves it out (its cycle is ${row.billingCycle}, not ${f.billingCycle})`]);
    if (f.nextBillingFrom || f.nextBillingTo) {
      tests.push([{ ...dates, ...(f.nextBillingFrom ? { nextBillingFrom: f.nextBillingFrom } : {}), ...(f.nextBillingTo ? { nextBillingTo: f.nextBillingTo } : {}) },
        `The Next billing date filter leaves it out (${row.nextBillingDate ? `its next billing date, ${row.nextBillingDate}, is` : 'it has no next billing date:'} outside ${f.nextBillingFrom ?? 'any date'} to ${f.nextBillingTo ?? 'any date'})`]);
    }
    if (f.cap && f.cap.kind !== 'none') {
      tests.push([{ ...dates, cap: f.cap }, f.cap.kind === 'matter' ? 'The WIP cap filter leaves it out (its unbilled WIP is under its cap, or it has no cap)'
        : otherCurrency(f.cap, row.currency) ?? 'The WIP cap filter leaves it out (its unbilled WIP is under the amount given)']);
    }
    if (f.expensesOnly) tests.push([{ ...dates, expensesOnly: true }, 'The expenses-only filter leaves it out (it is not set to bill expenses only)']);
    const out: string[] = [];
    for (const [filters, text] of tests) if ((await candidates(filters, { matterIds: [id] })).length === 0) out.push(text);
    // Each filter alone keeps it, yet all together do not: say so rather than nothing.
    return out.length > 0 ? out : ['The filters chosen, taken together, leave it out'];
  }

  /** Which of the run's item filters leave none of this matter's items, each named (tried one at a time). */
  async function itemFiltersLeavingOut(f: MassFilters, row: MassRow): Promise<string[]> {
    const dates = { invoiceDate: f.invoiceDate, upTo: f.upTo };
    const alone = async (filters: MassFilters) => (await candidates(filters, { matterIds: [row.matterId] }))[0];
    const out: string[] = [];
    const { cap, ...timeRest } = f.time ?? {};
    if (cap && cap.kind !== 'none' && row.timeItems > 0 && (await alone({ ...dates, time: { cap } }))?.timeItems === 0) {
      out.push(cap.kind === 'matter' ? 'The time "To a cap" filter leaves its time out (its unbilled WIP is under its own cap, or it has none)'
        : otherCurrency(cap, row.currency, 'The time "To a cap" filter leaves its time out') ?? 'The time "To a cap" filter leaves its time out (its unbilled time is under the amount given)');
    }
    if (Object.keys(timeRest).length > 0 && row.timeItems > 0 && (await alone({ ...dates, time: timeRest }))?.timeItems === 0) out.push('The time filters (dates, timekeeper) leave none of its time');
    if (f.disbursements && row.disbursementItems > 0 && (await alone({ ...dates, disbursements: f.disbursements }))?.disbursementItems === 0) out.push('The disbursement filters (dates, code) leave none of its disbursements');
    return out.length > 0 ? out : ['The time and disbursement filters, taken together, leave none of its items'];
  }

  /** What each row will bill and why: the composer run without saving, in bulk (quote rules applied, as a run does). */
  async function previewRows(rows: readonly MassCandidate[], f: MassFilters, request: BillRequest): Promise<Map<string, MassRowPreview>> {
    const out = new Map<string, MassRowPreview>();
    const prepared = await prepare(db, rows.map((r) => r.matterId), f.upTo, request, f.invoiceDate, f.time?.cap);
    for (const r of rows) {
      const p = prepared.get(r.matterId)!;
      if ('reason' in p) { out.set(r.matterId, { totalMinor: 0, feesMinor: 0, disbursementsMinor: 0, quote: null, why: p.reason, error: p.reason, timeWaits: false }); continue; }
      try {
        const rowRequest = withTimeWaiting(withCycleFee(p.m, f.invoiceDate, request), p.timeWaits);
        const c = composeFrom(p.m, f.invoiceDate, f.upTo, rowRequest, p.sources);
        const t = c.composed.totals;
        out.set(r.matterId, {
          totalMinor: t.totalMinor, feesMinor: t.feesMinor + t.fixedChargesMinor, disbursementsMinor: t.disbursementsMinor, quote: c.composed.quote?.reason ?? null,
          why: billingExplanation({
            onlyExpenses: p.m.options.massBilling.onlyExpenses, quote: c.composed.quote, scheduleRows: c.composed.scheduleRowIds.length,
            fixedFeeEveryCycle: p.m.options.arrangement === 'fixed_fee' && p.m.options.fixedFee.mode === 'every_cycle' && rowRequest.fixedFeeAmountMinor !== 0, totalMinor: t.totalMinor,
            timeWaits: p.m.options.arrangement === 'fixed_fee' && !p.m.options.massBilling.onlyExpenses && r.timeItems > 0 && !c.lines.some((l) => l.kind === 'time' || l.kind === 'fixed_fee'),
            wipMinor: r.feesMinor + r.disbursementsMinor, timeUnderCap: p.timeWaits && p.sources.unbilled.some((w) => w.kind === 'time'),
          }),
          error: runCompositionRefusal(p.m, f.invoiceDate, f.upTo, withTimeWaiting(request, p.timeWaits), c),
          timeWaits: p.timeWaits,
        });
      } catch (e) {
        out.set(r.matterId, { totalMinor: 0, feesMinor: 0, disbursementsMinor: 0, quote: null, why: errText(e), error: errText(e), timeWaits: p.timeWaits });
      }
    }
    return out;
  }

  // ---- bulk drafting ---------------------------------------------------------------------

  /** `timeWaits`: a "To a cap" time filter leaves the matter's time out (none on its bill: it waits). */
  type Prepared = { m: LoadedMatter; sources: Parameters<typeof composeFrom>[4]; draft: { id: string; number: string | null; batchId: string | null } | null; timeWaits: boolean } | { reason: string; draft?: { id: string; number: string | null; batchId: string | null } | null };

  /** Everything createDraft reads, for many matters at once. */
  async function prepare(ex: Parameters<typeof store.getFirmSettings>[0], matterIds: readonly string[], upTo: string, request: BillRequest, invoiceDate: string, timeCap?: CapFilter): Promise<Map<string, Prepared>> {
    const out = new Map<string, Prepared>();
    if (matterIds.length === 0) return out;
    const firm = await store.getFirmSettings(ex);
    const copies = await store.getMatterCopies(ex, matterIds, firm);
    const drafts = new Map<string, { id: string; number: string | null; batchId: string | null }>();
    for (const r of await selectRaw<{ matter_id: string; id: string; number: string | null; batch_id: string | null }>(ex,
      `select matter_id, id, number, batch_id from billing_bill where status = 'draft' and matter_id in (${marks(matterIds.length)})`, matterIds)) {
      drafts.set(r.matter_id, { id: r.id, number: r.number, batchId: r.batch_id });
    }
    const loaded: LoadedMatter[] = [];
    for (const id of matterIds) {
      const m = loadedMatter(copies.get(id), firm);
      if ('reason' in m) { out.set(id, { reason: m.reason }); continue; }
      const draft = drafts.get(id) ?? null;
      const refusal = draftRefusal(m, draft);
      if (refusal) { out.set(id, { reason: refusal, draft }); continue; }
      try { requestCheck(m, '2000-01-01', '2000-01-01', request); } catch (e) { out.set(id, { reason: errText(e) }); continue; }
      loaded.push(m);
    }
    const ids = loaded.map((m) => m.matter.id);
    const wip = await store.unbilledWipOf(ex, ids, upTo, { payload: false });
    const taken = await mass.takenScheduleRows(ex, ids.filter((id) => (copies.get(id)!.options!.fixedFee.schedule.length ?? 0) > 0));
    const needRetainer = loaded.filter((m) => m.options.retainerReplenishment.enabled || retainerApplies(m.firm, m.options, request.applyRetainer)).map((m) => m.matter.id);
    const balances = new Map<string, number>();
    if (needRetainer.length) {
      for (const r of await selectRaw<{ matter_id: string; balance_minor: unknown }>(ex,
        `select matter_id, balance_minor from billing_retainer_balance where matter_id in (${marks(needRetainer.length)})`, needRetainer)) balances.set(r.matter_id, Number(r.balance_minor));
    }
    // Interest by the firm's policy, and expired time-sensitive discounts: a few queries for the chunk.
    const policyIds = loaded.filter((m) => interestPolicyApplies(m, request)).map((m) => m.matter.id);
    const overdue = await billBalances.overdueCandidatesOf(ex, policyIds, invoiceDate, null);
    const expired = await billBalances.expiredDiscountsOf(ex, loaded.map((m) => m.matter.id), invoiceDate);
    const timeThrough = await mass.timeCapMatters(ex, loaded.map((m) => m.matter.id), timeCap);
    for (const m of loaded) {
      const overdueOf = overdue.get(m.matter.id) ?? [];
      const expiredDiscounts = expired.get(m.matter.id) ?? [];
      // A matter the cap leaves out: its bill takes no time, now or when it is recomposed later.
      const timeWaits = !timeThrough.has(m.matter.id);
      out.set(m.matter.id, {
        m, draft: null, timeWaits,
        sources: { onBill: [], unbilled: wip.get(m.matter.id) ?? [], taken: taken.get(m.matter.id) ?? new Map(), retainerBalanceMinor: balances.get(m.matter.id) ?? 0, overdue: overdueOf, expiredDiscounts },
      });
    }
    return out;
  }

  /**
   * Draft many matters in one transaction: the same checks, composition, rows, audit rows
   * and events as createDraft for each. A matter that cannot be drafted is skipped with
   * the reason createDraft would give. Throws (rolling back) only when a concurrent writer
   * took a matter's draft slot or an item meanwhile.
   */
  async function draftChunk(trx: Tx, ctx: CommandContext, matterIds: readonly string[], input: { invoiceDate: string; upTo: string; request: BillRequest; batchId: string | null; timeCap?: CapFilter }): Promise<DraftOutcome[]> {
    const prepared = await prepare(trx, matterIds, input.upTo, input.request, input.invoiceDate, input.timeCap);
    const outcomes: DraftOutcome[] = [];
    const made: Bill[] = [];
    const charges: [string, InterestCharge[]][] = [];
    // Postgres: the items the bills take, as read for their compositions (checked again under lock below).
    const taken: WipCopy[] = [];
    const serialised = writersSerialised(trx);
    for (const id of matterIds) {
      const p = prepared.get(id)!;
      if ('reason' in p) {
        // A draft this run made before (a resumed run): it counts as drafted.
        if (input.batchId && p.draft && p.draft.batchId === input.batchId) {
          const b = await bills.findBill(trx, p.draft.id);
          if (b) { outcomes.push({ matterId: id, ok: true, bill: summary(b) }); continue; }
        }
        outcomes.push({ matterId: id, ok: false, reason: p.reason });
        continue;
      }
      let c: Composition;
      const request = withTimeWaiting(withCycleFee(p.m, input.invoiceDate, input.request), p.timeWaits);
      try {
        requestCheck(p.m, input.invoiceDate, input.upTo, request);
        c = composeFrom(p.m, input.invoiceDate, input.upTo, request, p.sources);
      } catch (e) {
        if (e instanceof HttpError) { outcomes.push({ matterId: id, ok: false, reason: errText(e) }); continue; }
        throw e;
      }
      const refusal = runCompositionRefusal(p.m, input.invoiceDate, input.upTo, withTimeWaiting(input.request, p.timeWaits), c);
      if (refusal) { outcomes.push({ matterId: id, ok: false, reason: refusal }); continue; }
      const base = newDraftBase(newId(clock), p.m, input, request, c, now(), ctx.actorLabel);
      const bill = withComposition(base, c, input.invoiceDate, input.upTo, request);
      made.push(bill);
      if (!serialised) for (const i of bill.items) taken.push(c.itemsRead.get(i.id)!);
      if (c.interestCharges.length > 0) charges.push([bill.billId, c.interestCharges]);
      outcomes.push({ matterId: id, ok: true, bill: summary(bill) });
    }
    if (made.length === 0) return outcomes;
    // The same writes as createDraft, many rows per statement: bills, lines (holding the items), allocations.
    await insertRows(trx, 'billing_bill', made.map(bills.billColumns));
    // The lines take the items (unique among live lines: an item another bill took meanwhile
    // fails the insert and the chunk goes matter by matter). On Postgres each item must also
    // still be as the chunk read it, not deleted in matters (lockItemsAsComposed; on SQLite
    // nothing can change it meanwhile).
    await insertTuples(trx, 'billing_bill_line', bills.LINE_INSERT_COLUMNS, made.flatMap(bills.lineTuples));
    await store.lockItemsAsComposed(trx, taken);
    for (const [billId, cs] of charges) await billBalances.replaceInterestCharges(trx, billId, cs);
    await insertRows(trx, 'billing_bill_allocation', made.flatMap((b) => b.allocations.map((a) => ({ bill_id: b.billId, timekeeper_id: a.timekeeperId, amount_minor: a.amountMinor }))));
    await appendEvents(trx, clock, ctx, made.map((b) => ({ type: 'billing.bill_drafted', payload: draftedData(b) })));
    await auditMany(trx, clock, ctx, made.map((b): AuditEntry => ({ action: 'billing.bill_drafted', entityType: 'billing_bill', entityId: b.billId, after: auditView(b) })));
    return outcomes;
  }

  /**
   * Draft many matters, a chunk per transaction. `onChunk` runs inside each chunk's
   * transaction (a run records its outcomes there). A chunk that meets a concurrent writer
   * is retried matter by matter through createDraft.
   */
  async function draftMatters(ctx: CommandContext, matterIds: readonly string[], input: { invoiceDate: string; upTo: string; request: BillRequest; batchId?: string | null; timeCap?: CapFilter },
    opts: { chunk?: number; onChunk?: (trx: Tx, outcomes: DraftOutcome[]) => Promise<void> } = {}): Promise<DraftOutcome[]> {
    const e = filterErrors({ invoiceDate: input.invoiceDate, upTo: input.upTo }, today());
    if (Object.keys(e).length) throw invalid(e);
    const size = opts.chunk ?? DRAFT_CHUNK;
    const all: DraftOutcome[] = [];
    const full = { ...input, batchId: input.batchId ?? null };
    for (let i = 0; i < matterIds.length; i += size) {
      // Let the server answer requests (the run's progress page) between chunks: on SQLite a
      // chunk runs without ever leaving the microtask queue.
      if (i > 0) await setImmediatePromise();
      const chunk = matterIds.slice(i, i + size);
      try {
        const outcomes = await db.transaction().execute(async (trx) => {
          const o = await draftChunk(trx, ctx, chunk, full);
          if (opts.onChunk) await opts.onChunk(trx, o);
          return o;
        });
        deps.relay.kick();
        all.push(...outcomes);
      } catch (err) {
        if (!isRaceError(err)) throw err;
        for (const matterId of chunk) {
          let o: DraftOutcome;
          try {
            // The same request the chunk would have made for it (its time toggled out when a time cap leaves it out).
            const p = (await prepare(db, [matterId], input.upTo, input.request, input.invoiceDate, input.timeCap)).get(matterId)!;
            // A draft this run made before (drafted here, then the process stopped before its row was settled): drafted, as in draftChunk.
            const own = 'reason' in p && full.batchId !== null && p.draft && p.draft.batchId === full.batchId ? await bills.findBill(db, p.draft.id) : null;
            if (own) o = { matterId, ok: true, bill: summary(own) };
            else {
              const request = 'reason' in p ? input.request : withTimeWaiting(input.request, p.timeWaits);
              const bill = await cmds.createDraft(ctx, { matterId, invoiceDate: input.invoiceDate, upTo: input.upTo, request, batchId: full.batchId, byRun: true });
              o = { matterId, ok: true, bill: summary(bill) };
            }
          } catch (e2) {
            if (!(e2 instanceof HttpError)) throw e2;
            o = { matterId, ok: false, reason: errText(e2) };
          }
          if (opts.onChunk) await db.transaction().execute((trx) => opts.onChunk!(trx, [o]));
          all.push(o);
        }
      }
    }
    return all;
  }


  // ---- bulk approving --------------------------------------------------------------------

  /** `expected`: the version each bill had where the clerk reviewed it (a list); a bill changed since is refused. */
  async function approveChunk(trx: Tx, ctx: CommandContext, billIds: readonly string[], expected?: ReadonlyMap<string, number>): Promise<ApproveOutcome[]> {
    // Postgres: the bills' conflicts held while they are read (store.lockBillsAgainstConflicts).
    await store.lockBillsAgainstConflicts(trx, billIds);
    const rows = await selectRaw<Record<string, any>>(trx, `select * from billing_bill where id in (${marks(billIds.length)})`, billIds);
    // The lines stay JSON, built by the database, from the read to the event (no object per line).
    const found = new Map((await bills.billsWithLineJson(trx, rows)).map((b) => [b.head.billId, b]));
    // None of them is a bill (deleted meanwhile from under a list, a wrong id): each refused as such, with no matter to read.
    if (found.size === 0) return billIds.map((billId): ApproveOutcome => ({ billId, ok: false, reason: 'Bill not found' }));
    const matterIds = [...new Set([...found.values()].map((b) => b.head.matterId))];
    const firm = await store.getFirmSettings(trx);
    const periods = await billBalances.ledgerPeriods(trx);
    const copies = await store.getMatterCopies(trx, matterIds, firm);
    const drafts = await selectRaw<{ matter_id: string; id: string; number: string | null }>(trx,
      `select matter_id, id, number from billing_bill where status = 'draft' and matter_id in (${marks(matterIds.length)})`, matterIds);
    const conflicts = new Map((await selectRaw<{ bill_id: string; n: unknown }>(trx,
      `select bill_id, count(*) as n from billing_copy_conflict where resolved_at is null and bill_id in (${marks(billIds.length)}) group by bill_id`, billIds)).map((r) => [r.bill_id, Number(r.n)]));
    const latest = new Map((await selectRaw<{ matter_id: string; s: unknown }>(trx,
      `select matter_id, max(sequence) as s from billing_bill where status <> 'deleted' and sequence is not null and matter_id in (${marks(matterIds.length)}) group by matter_id`, matterIds)).map((r) => [r.matter_id, r.s === null ? null : Number(r.s)]));
    // Receipts allocated to each bill (as bills.receiptsAllocatedMinor, for the whole chunk in one query).
    const receipts = await mass.receiptsAllocated(trx, billIds);
    const outcomes: ApproveOutcome[] = [];
    const ok: { head: BillHead; lines: LineJson }[] = [];
    for (const id of billIds) {
      const read = found.get(id);
      if (!read) { outcomes.push({ billId: id, ok: false, reason: 'Bill not found' }); continue; }
      const b = read.head;
      const reviewed = expected?.get(id);
      if (reviewed !== undefined && reviewed !== b.version && b.status === 'draft') { outcomes.push({ billId: id, ok: false, reason: CHANGED_SINCE_LISTED }); continue; }
      const matter = copies.get(b.matterId);
      const other = drafts.find((d) => d.matter_id === b.matterId && d.id !== b.billId);
      const facts: BillFacts = {
        status: b.status, number: b.number, sequence: b.sequence, onHold: b.onHold, lineCount: read.lines.lineCount, totalMinor: b.totals.totalMinor,
        openConflicts: conflicts.get(id) ?? 0,
        matterRefusals: !matter ? ['Billing has no copy of this matter'] : matter.options ? billingRefusals(matter.status, matter.options) : ['Billing has not received this matter\'s billing options yet'],
        otherDraft: other ? (other.number ?? 'an unnumbered draft') : null, latestLiveSequence: latest.get(b.matterId) ?? null,
        receiptsMinor: receipts.get(id) ?? 0, receiptsToReallocateMinor: b.receiptsToReallocateMinor,
        // Read by deletion only: these are drafts.
        receiptsAwaitingPostingMinor: 0,
        periodRefusal: b.status === 'draft' ? periodRefusal(b.invoiceDate, today(), periods, firm?.postingOutsideCurrentPeriod) : null,
        // Read by revert, re-draft and void only.
        undoPeriodRefusal: null,
        composedUnderOtherOptions: composedUnderOtherOptions(b, matter?.options, firm),
        // Numbered drafts only (reverted or re-drafted: few in a batch): their neighbours read one by one.
        sequenceDateRefusal: b.status === 'draft' && b.sequence !== null ? sequenceDateRefusal(b.invoiceDate, await bills.sequenceNeighbours(trx, b.matterId, b.sequence)) : null,
      };
      const v = verdict('approve', facts);
      if (!v.allowed) { outcomes.push({ billId: id, ok: false, reason: v.reason! }); continue; }
      ok.push(read);
    }
    if (ok.length === 0) return outcomes;
    // Numbers: the next sequence of each matter, taken for good in this transaction (one draft per matter, so one each).
    const needing = ok.filter((b) => b.head.sequence === null).map((b) => b.head.matterId);
    const seq = new Map<string, number>();
    if (needing.length) {
      for (let i = 0; i < needing.length; i += 500) {
        const chunk = needing.slice(i, i + 500);
        await execRaw(trx, `insert into billing_matter_sequence (matter_id, last_sequence) values ${chunk.map(() => '(?, 0)').join(',')} on conflict (matter_id) do nothing`, chunk);
        for (const r of await selectRaw<{ matter_id: string; last_sequence: unknown }>(trx,
          `update billing_matter_sequence set last_sequence = last_sequence + 1 where matter_id in (${marks(chunk.length)}) returning matter_id, last_sequence`, chunk)) {
          seq.set(r.matter_id, Number(r.last_sequence));
        }
      }
    }
    const at = now();
    const approved: { before: BillHead; after: BillHead; lines: LineJson }[] = [];
    for (const { head: before, lines } of ok) {
      let { number, sequence } = before;
      if (sequence === null) {
        sequence = seq.get(before.matterId)!;
        number = billNumber(before.fileNumber, sequence);
      }
      const approvedAt = approvalTime(at, before.approvedAt);
      const after: BillHead = { ...before, status: 'approved', number, sequence, approvedAt, updatedAt: approvedAt, version: before.version + 1, receiptsToReallocateMinor: 0 };
      approved.push({ before, after, lines });
      outcomes.push({ billId: before.billId, ok: true, number: number! });
    }
    // Each bill moves only if it is still the draft at the version read (the optimistic lock
    // updateBill takes); any bill changed meanwhile refuses the chunk. SQLite: a kept one-bill
    // UPDATE stepped per bill (its UPDATE ... FROM took 50 times as long); Postgres: many
    // bills per statement (each statement a round trip).
    if (writersSerialised(trx)) {
      const moved = await runEachRow(trx,
        `update billing_bill set status = 'approved', number = ?, sequence = ?, approved_at = ?, updated_at = ?, version = ?, receipts_to_reallocate_minor = 0 where id = ? and status = 'draft' and version = ?`,
        approved.map(({ before, after }) => [after.number, after.sequence, after.approvedAt, after.updatedAt, after.version, after.billId, before.version]));
      if (moved !== approved.length) throw conflict('The bill was changed by someone else meanwhile: reload it and try again');
    } else {
      for (let i = 0; i < approved.length; i += 1_000) {
        const part = approved.slice(i, i + 1_000);
        const params: unknown[] = [];
        for (const { before, after } of part) params.push(after.billId, after.number, after.sequence, after.version, before.version, after.approvedAt);
        // Each bill's own approval time (approvalTime: later than its previous approval, the key of its outputs).
        const moved = await selectRaw<{ id: string }>(trx,
          `with v (id, number, sequence, version, expected, approved_at) as (values ${part.map(() => '(?, ?, cast(? as integer), cast(? as integer), cast(? as integer), ?)').join(',')})
          update billing_bill set status = 'approved', number = v.number, sequence = v.sequence, approved_at = v.approved_at, updated_at = v.approved_at, version = v.version, receipts_to_reallocate_minor = 0
          from v where billing_bill.id = v.id and billing_bill.status = 'draft' and billing_bill.version = v.expected
          returning billing_bill.id`, params);
        if (moved.length !== part.length) throw conflict('The bill was changed by someone else meanwhile: reload it and try again');
      }
    }
    // Bills the general retainer pays: its recorded balance falls by each (a balance recorded anew since one was composed
    // refuses the chunk, which then goes bill by bill, that one refused with the reason).
    for (const { after } of approved) if (after.retainerAppliedMinor > 0) await payRetainer(trx, clock, ctx, after, at);
    await appendEvents(trx, clock, ctx, approved.map(({ before, after, lines }) => ({ type: 'billing.bill_approved', payloadJson: bills.approvedDataJson(after, lines, before.receiptsToReallocateMinor) })));
    await auditMany(trx, clock, ctx, approved.map(({ before, after, lines }): AuditEntry => {
      const counts = { items: lines.itemCount, lines: lines.lineCount };
      return { action: 'billing.bill_approved', entityType: 'billing_bill', entityId: after.billId, before: auditViewOf(before, counts), after: auditViewOf(after, counts) };
    }));
    // Keep the caller's order.
    const order = new Map(billIds.map((id, i) => [id, i]));
    return outcomes.sort((a, b) => order.get(a.billId)! - order.get(b.billId)!);
  }

  /** Approve many drafts, a chunk per transaction; each refused with the reason approve would give. */
  /**
   * Approve many drafts, a chunk per transaction. `expectedVersions`: the versions a list
   * showed (a draft recomposed or changed since it was reviewed is refused, not approved).
   */
  async function approveMany(ctx: CommandContext, billIds: readonly string[], opts: { chunk?: number; expectedVersions?: ReadonlyMap<string, number> } = {}): Promise<ApproveOutcome[]> {
    const ids = [...new Set(billIds)];
    const size = opts.chunk ?? APPROVE_CHUNK;
    const expected = opts.expectedVersions;
    async function approvePart(chunk: string[]): Promise<ApproveOutcome[]> {
      try {
        const outcomes = await db.transaction().execute((trx) => approveChunk(trx, ctx, chunk, expected));
        deps.relay.kick();
        return outcomes;
      } catch (err) {
        if (!isRaceError(err)) throw err;
        const out: ApproveOutcome[] = [];
        for (const id of chunk) {
          try {
            const b = await listedOrRefuse(cmds.approve(ctx, id, expected?.get(id)));
            out.push({ billId: id, ok: true, number: b.number! });
          } catch (e2) {
            if (!(e2 instanceof HttpError)) throw e2;
            out.push({ billId: id, ok: false, reason: e2.message });
          }
        }
        return out;
      }
    }
    // As drafting: on Postgres two chunks in flight (a matter has one draft, so the chunks'
    // bills, sequences and rows are disjoint); on SQLite one at a time.
    const step = size * lanes;
    const out: ApproveOutcome[] = [];
    for (let i = 0; i < ids.length; i += step) {
      if (i > 0) await setImmediatePromise();
      for (const outcomes of await inParts(ids.slice(i, i + step), size, approvePart)) out.push(...outcomes);
    }
    return out;
  }

  /** Run a single-bill command on many bills, each in its own transaction, collecting refusals. */
  async function eachBill<T>(ids: readonly string[], fn: (id: string) => Promise<T>): Promise<({ billId: string; ok: true } | { billId: string; ok: false; reason: string })[]> {
    const out: ({ billId: string; ok: true } | { billId: string; ok: false; reason: string })[] = [];
    for (const id of [...new Set(ids)]) {
      try { await fn(id); out.push({ billId: id, ok: true }); } catch (e) {
        if (!(e instanceof HttpError)) throw e;
        out.push({ billId: id, ok: false, reason: refusalText(e) });
      }
    }
    return out;
  }

  // ---- runs ------------------------------------------------------------------------------

  /**
   * Create a run: the matters it will bill (every eligible matter under the filters, or the
   * ones picked), listed in one transaction. The same id twice returns the first run.
   */
  /**
   * Choices that name something billing does not know (a client, a timekeeper, a billing
   * cycle no matter has, a disbursement code no disbursement has, a bill template): a run
   * with them would bill nothing, leave every disbursement off, or bill with
   * another template than the one asked for, so it is refused naming the choice.
   */
  async function unknownChoices(f: MassFilters, template: string | null): Promise<Record<string, string>> {
    const e: Record<string, string> = {};
    if (f.clientId && !(await db.selectFrom('billing_client').select('id').where('id', '=', f.clientId).executeTakeFirst())) e.clientId = `no client with id ${f.clientId}`;
    // A matter billing has no copy of (an id mistyped, a bill's id) would make a run of nothing.
    if (f.matterId && !(await db.selectFrom('billing_matter').select('id').where('id', '=', f.matterId).executeTakeFirst())) e.matterId = `billing has no matter with id ${f.matterId}`;
    const tks: [string, string | undefined][] = [['responsibleTimekeeperId', f.responsibleTimekeeperId], ['billingTimekeeperId', f.billingTimekeeperId], ['timeTimekeeperId', f.time?.timekeeperId]];
    for (const [k, id] of tks) {
      if (id && !(await db.selectFrom('billing_timekeeper').select('id').where('id', '=', id).executeTakeFirst())) e[k] = `no timekeeper with id ${id}`;
    }
    if (f.billingCycle) {
      const cycles = (await db.selectFrom('billing_matter').select('billing_cycle').distinct().orderBy('billing_cycle').execute()).map((r) => String(r.billing_cycle));
      if (!cycles.includes(f.billingCycle)) e.billingCycle = `no matter has billing cycle "${f.billingCycle}" (cycles in use: ${cycles.join(', ') || 'none'})`;
    }
    // A code no disbursement has (a typo) would leave every disbursement off every bill.
    const code = f.disbursements?.code;
    if (code && !(await db.selectFrom('billing_wip').select('id').where('kind', '=', 'disbursement').where('code', '=', code).limit(1).executeTakeFirst())) {
      const codes = (await db.selectFrom('billing_wip').select('code').distinct().where('kind', '=', 'disbursement').where('code', 'is not', null).orderBy('code').limit(21).execute()).map((r) => String(r.code));
      e.disbCode = `no disbursement has code "${code}" (codes in use: ${codes.slice(0, 20).join(', ') || 'none'}${codes.length > 20 ? ', …' : ''})`;
    }
    if (template !== null && template.trim() !== '') {
      const refusal = unknownTemplate(template, await cmds.billTemplateNames());
      if (refusal) e.template = refusal;
    }
    return e;
  }

  /**
   * Why these hand-picked ids cannot be billed: the ids (the first 20) that are not matters
   * billing has a copy of; null when every one is. For the run and the page that confirms it.
   */
  async function unknownMattersRefusal(ids: readonly string[]): Promise<string | null> {
    const wanted = [...new Set(ids)];
    const known = new Set<string>();
    for (let i = 0; i < wanted.length; i += 1000) {
      const part = wanted.slice(i, i + 1000);
      for (const r of await db.selectFrom('billing_matter').select('id').where('id', 'in', part).execute()) known.add(String(r.id));
    }
    const unknown = wanted.filter((id) => !known.has(id));
    if (unknown.length === 0) return null;
    const shown = unknown.slice(0, 20).join(', ') + (unknown.length > 20 ? ` and ${unknown.length - 20} more` : '');
    return `billing has no matter with ${unknown.length === 1 ? 'id' : 'ids'} ${shown}`;
  }

  /**
   * A run id given again: the same run when it asks for the same (a second click, a retried
   * request: idempotent), else a 409 naming `id` (Back to the list, other matters ticked, and
   * the form's run id sent again would otherwise show the earlier run and bill nothing new).
   * The same: the same dates, template, terms, filters, and (hand-picked) the same matters.
   */
  async function sameRunOrRefuse(ex: Executor, existing: Batch, input: RunInput): Promise<Batch> {
    const { request: _r, ...storedFilters } = existing.filters as Record<string, unknown>;
    let same = existing.invoiceDate === input.invoiceDate && existing.upTo === input.upTo
      && existing.template === (input.template ?? null) && existing.paymentTermsDays === (input.paymentTermsDays ?? null)
      && existing.mode === (input.matterIds ? 'selected' : 'all')
      && canonicalJson(storedFilters) === canonicalJson(JSON.parse(JSON.stringify(input.filters ?? {})) as unknown);
    if (same && input.matterIds) {
      // The rows of drafts changed by hand are the run's too: each ticked matter is listed, or is
      // one of those; every other row is a ticked matter.
      const rows = await ex.selectFrom('billing_batch_matter').select(['matter_id', 'reason']).where('batch_id', '=', existing.id).execute();
      const isHand = (r: { reason: unknown }) => typeof r.reason === 'string' && r.reason.startsWith(HAND_DRAFT_REASON);
      const listed = new Set(rows.filter((r) => !isHand(r)).map((r) => String(r.matter_id)));
      const byHand = new Set(rows.filter(isHand).map((r) => String(r.matter_id)));
      const asked = new Set(input.matterIds);
      same = [...listed].every((m) => asked.has(m)) && [...asked].every((m) => listed.has(m) || byHand.has(m));
    }
    if (same) return existing;
    throw new HttpError(409, 'conflict', `Bill run ${existing.id} was already made, for other choices (${runSummary(existing)}): nothing was billed now. Start again from the list for a new run`, {
      id: `was already used for another bill run (${runSummary(existing)}); choose again to bill with a new run id`,
    });
  }

  /**
   * Take drafts changed by hand into run `batchId` (in its creating transaction): each still a
   * draft in no run is put in the run's batch as it is (its lines, items and total unchanged;
   * audited); one that is not (approved, deleted or taken by another run meanwhile) is named
   * with why. A run's row each, by the draft's matter.
   */
  async function takeHandDrafts(trx: Tx, ctx: CommandContext, batchId: string, ids: readonly string[], at: string) {
    assert(ids.length <= MAX_HAND_DRAFTS, 'takeHandDrafts: at most MAX_HAND_DRAFTS drafts');
    const out: { matterId: string; billId: string | null; itemCount: number; totalMinor: number | null; reason: string }[] = [];
    for (const billId of ids) {
      const b = await bills.findBill(trx, billId);
      if (!b) continue;
      const label = b.number ?? `${b.fileNumber}'s draft`;
      if (b.status !== 'draft' || b.batchId !== null) {
        out.push({ matterId: b.matterId, billId: null, itemCount: 0, totalMinor: null,
          reason: `${HAND_DRAFT_REASON} (${label}), but it is ${b.status !== 'draft' ? `no longer a draft (${b.status})` : 'in another run now'}: not taken in` });
        continue;
      }
      const after: Bill = { ...b, batchId, updatedAt: at, version: b.version + 1 };
      try {
        await bills.updateBill(trx, after, { status: 'draft', version: b.version });
      } catch (e) {
        // Changed by someone else since it was read (Postgres): not taken in, said so; the run goes on.
        if (!(e instanceof HttpError) || e.status !== 409) throw e;
        out.push({ matterId: b.matterId, billId: null, itemCount: 0, totalMinor: null, reason: `${HAND_DRAFT_REASON} (${label}), but it changed meanwhile: not taken in` });
        continue;
      }
      await audit(trx, clock, ctx, { action: 'billing.bill_added_to_batch', entityType: 'billing_bill', entityId: billId, before: { batchId: null }, after: { batchId } });
      out.push({ matterId: b.matterId, billId, itemCount: b.items.length, totalMinor: b.totals.totalMinor, reason: `${HAND_DRAFT_REASON}: taken in as drafted (invoice date ${b.invoiceDate})` });
    }
    return out;
  }

  /** The run's time and disbursement filters in words (the work they leave off each bill), its timekeeper named; null when none. */
  async function itemFiltersOf(f: MassFilters): Promise<string | null> {
    const id = f.time?.timekeeperId;
    const tk = id ? await store.getTimekeeperCopy(db, id) : null;
    return itemFiltersText(f, (x) => (tk ? `${tk.initials} ${tk.name}` : `${x} (a timekeeper billing no longer has)`));
  }

  /**
   * A run's matter filters in words (matterFiltersText), the client, matter and timekeepers
   * named as the pages show them; one billing no longer has is said so.
   */
  async function matterFiltersOf(f: MassFilters): Promise<string | null> {
    const firm = await store.getFirmSettings(db);
    const client = f.clientId ? await mass.clientById(db, f.clientId) : null;
    const matter = f.matterId ? (await selectRaw<{ file_number: string; name: string }>(db, 'select file_number, name from billing_matter where id = ?', [f.matterId]))[0] : undefined;
    const tkIds = [...new Set([f.responsibleTimekeeperId, f.billingTimekeeperId].filter((x): x is string => !!x))];
    const tks = new Map(tkIds.length === 0 ? [] : (await selectRaw<{ id: string; initials: string; name: string }>(db,
      `select id, initials, name from billing_timekeeper where id in (${marks(tkIds.length)})`, tkIds)).map((t) => [t.id, `${t.initials} ${t.name}`]));
    const gone = (what: string, id: string) => `${id} (a ${what} billing no longer has)`;
    return matterFiltersText(f, {
      client: (id) => (client ? `${client.clientNumber} ${client.name}` : gone('client', id)),
      matter: (id) => (matter ? `${matter.file_number} ${matter.name}` : gone('matter', id)),
      timekeeper: (id) => tks.get(id) ?? gone('timekeeper', id),
      amount: (minor, currency) => formatMoney(minor, currency ?? firm?.currency ?? 'USD'),
    });
  }

  /** A run's choices that cannot be read or name nothing billing knows, by field (empty: none). */
  async function runChoiceErrors(input: RunInput): Promise<Record<string, string>> {
    const f: MassFilters = { ...(input.filters ?? {}), invoiceDate: input.invoiceDate, upTo: input.upTo };
    const e = { ...filterErrors(f, today()) };
    if (input.template !== undefined && input.template !== null && (input.template.trim() === '' || input.template.length > 100)) e.template = 'must be a template name of 1 to 100 characters';
    if (input.paymentTermsDays !== undefined && input.paymentTermsDays !== null && !(Number.isSafeInteger(input.paymentTermsDays) && input.paymentTermsDays >= 0 && input.paymentTermsDays <= MAX_PAYMENT_TERMS_DAYS)) e.paymentTermsDays = `must be a whole number of days from 0 to ${MAX_PAYMENT_TERMS_DAYS}`;
    const handIds = [...new Set(input.handDraftIds ?? [])];
    if (input.matterIds && input.matterIds.length === 0 && handIds.length === 0) e.matterIds = 'choose at least one matter';
    if (input.matterIds && input.matterIds.length > MAX_RUN_MATTERS) e.matterIds = `at most ${MAX_RUN_MATTERS} matters in one run`;
    if (handIds.length > MAX_HAND_DRAFTS) e.handDraftIds = `at most ${MAX_HAND_DRAFTS} drafts changed by hand in one run`;
    else if (handIds.some((x) => !isId(x))) e.handDraftIds = 'must be draft bill ids';
    if (Object.keys(e).length === 0) Object.assign(e, await unknownChoices(f, input.template ?? null));
    // Hand-picked ids billing has no copy of (a bill's id, a typo) are refused, listing them:
    // a run of them would bill nothing. A matter billing knows is taken even if not eligible
    // (hand-picked), and skipped with its reason.
    if (Object.keys(e).length === 0 && input.matterIds) {
      const refusal = await unknownMattersRefusal(input.matterIds);
      if (refusal) e.matterIds = refusal;
    }
    return e;
  }

  async function createRun(ctx: CommandContext, input: RunInput): Promise<Batch> {
    const id = input.id ?? newId(clock);
    if (!/^[0-9a-zA-Z-]{8,64}$/.test(id)) throw invalid({ id: 'must be 8 to 64 letters, digits or dashes' });
    const existing = await mass.findBatch(db, id);
    if (existing) return sameRunOrRefuse(db, existing, input);
    const f: MassFilters = { ...(input.filters ?? {}), invoiceDate: input.invoiceDate, upTo: input.upTo };
    const request = runRequest(input, f);
    const e = await runChoiceErrors(input);
    if (Object.keys(e).length) throw invalid(e);
    const handIds = [...new Set(input.handDraftIds ?? [])];
    const rows = input.matterIds
      ? await candidates(f, { matterIds: [...new Set(input.matterIds)], handPicked: true, capStatus: false })
      : await candidates(f, { capStatus: false });
    const eligible = rows.filter((r) => r.eligible);
    if (eligible.length > MAX_RUN_MATTERS) throw invalid({ filters: `${eligible.length} matters: at most ${MAX_RUN_MATTERS} in one run; narrow the filters` });
    const notEligible = input.matterIds ? rows.filter((r) => !r.eligible) : [];
    const missing = input.matterIds ? [...new Set(input.matterIds)].filter((mid) => !rows.some((r) => r.matterId === mid)) : [];
    const at = now();
    const batch = await db.transaction().execute(async (trx) => {
      // One run creation at a time: another run created since the list was read (a second
      // click, another process) may have queued some of these matters, so they are read again
      // here. Bill all leaves them out; picked ones are skipped with the reason.
      await mass.lockRunCreation(trx);
      const again = await mass.findBatch(trx, id);
      if (again) return sameRunOrRefuse(trx, again, input);
      const queued = await mass.queuedIn(trx, eligible.map((r) => r.matterId), liveRuns());
      // Drafts changed by hand, taken in first: their matters are the run's through them (such a
      // matter has a draft, so drafting it again would only be skipped).
      const hand = await takeHandDrafts(trx, ctx, id, handIds, at);
      const handMatters = new Set(hand.filter((h) => h.billId !== null).map((h) => h.matterId));
      const chosen = eligible.filter((r) => !queued.has(r.matterId) && !handMatters.has(r.matterId));
      const skippedUpFront = [
        ...notEligible.map((r) => ({ matterId: r.matterId, reason: r.reasons.map((x) => x.text).join('; ') })),
        ...(input.matterIds ? eligible.filter((r) => queued.has(r.matterId)).map((r) => ({ matterId: r.matterId, reason: queuedReason(queued.get(r.matterId)!).text })) : []),
      ].filter((r) => !handMatters.has(r.matterId));
      // One row per matter (the run's key): a draft taken in is its matter's row; a draft not taken
      // in is named only when nothing else names its matter, once (a crafted post may name two).
      const missingNow = missing.filter((mid) => !handMatters.has(mid));
      const listedMatters = new Set([...chosen.map((r) => r.matterId), ...skippedUpFront.map((r) => r.matterId), ...missingNow, ...handMatters]);
      const handRows = hand.filter((h) => {
        if (h.billId !== null) return true;
        if (listedMatters.has(h.matterId)) return false;
        listedMatters.add(h.matterId);
        return true;
      });
      const handDrafted = handRows.filter((h) => h.billId !== null);
      const total = chosen.length + skippedUpFront.length + missingNow.length + handRows.length;
      // Bill all whose every matter another run queued meanwhile (two clicks of Bill all at once,
      // two tabs, two processes): no empty "0 of 0" run; the clerk is sent to the run that bills them.
      // (Also when the list, read before the lock, already showed them queued there and nothing else.)
      if (!input.matterIds && total === 0) {
        const heldBy = eligible.length > 0 ? queued.get(eligible[0]!.matterId)
          : (await mass.queuedIn(trx, rows.filter((r) => r.reasons.length > 0 && r.reasons.every((x) => x.code === 'queued')).slice(0, 1).map((r) => r.matterId), liveRuns())).values().next().value;
        if (heldBy !== undefined) throw new RunQueuedElsewhere(heldBy);
      }
      await trx.insertInto('billing_batch').values({
        id, status: 'pending', invoice_date: input.invoiceDate, up_to: input.upTo, template: input.template ?? null, payment_terms_days: input.paymentTermsDays ?? null,
        mode: input.matterIds ? 'selected' : 'all', filters_json: JSON.stringify({ ...(input.filters ?? {}), request }), matter_count: total,
        drafted_count: handDrafted.length, skipped_count: skippedUpFront.length + missingNow.length + handRows.length - handDrafted.length,
        item_count: handDrafted.reduce((n, h) => n + h.itemCount, 0), error: null, created_at: at, created_by: ctx.actorLabel,
        updated_at: at, finished_at: null,
      }).execute();
      let pos = 0;
      await insertRows(trx, 'billing_batch_matter', [
        ...chosen.map((r) => ({ batch_id: id, matter_id: r.matterId, position: pos++, state: 'pending', bill_id: null, item_count: 0, total_minor: null, reason: null, updated_at: at })),
        ...skippedUpFront.map((r) => ({ batch_id: id, matter_id: r.matterId, position: pos++, state: 'skipped', bill_id: null, item_count: 0, total_minor: null, reason: r.reason, updated_at: at })),
        ...missingNow.map((mid) => ({ batch_id: id, matter_id: mid, position: pos++, state: 'skipped', bill_id: null, item_count: 0, total_minor: null, reason: 'Billing has no copy of this matter, or the filters leave it out', updated_at: at })),
        ...handRows.map((h) => ({ batch_id: id, matter_id: h.matterId, position: pos++, state: h.billId ? 'drafted' : 'skipped', bill_id: h.billId, item_count: h.itemCount, total_minor: h.totalMinor, reason: h.reason, updated_at: at })),
      ]);
      await audit(trx, clock, ctx, { action: 'billing.bill_run_created', entityType: 'billing_batch', entityId: id, after: { invoiceDate: input.invoiceDate, upTo: input.upTo, template: input.template ?? null, paymentTermsDays: input.paymentTermsDays ?? null, mode: input.matterIds ? 'selected' : 'all', matters: total, ...(handDrafted.length ? { changedByHand: handDrafted.length } : {}) } });
      return (await mass.findBatch(trx, id))!;
    });
    deps.relay.kick();
    return batch;
  }

  /** Only one worker per run in this process; others (another process) are safe anyway (rows settle once). */
  const running = new Map<string, Promise<Batch>>();
  /** Set when the server shuts down (stopRuns): runs stop before their next chunk. */
  let stopping = false;
  const SHUTDOWN_REASON = 'The server was shut down while it drafted: it stopped part way; what it drafted is kept';
  /** Runs this process drafts that were asked to stop (stopRun), with why. */
  const stopAsked = new Map<string, string>();

  /**
   * Ask a run this process is drafting to stop before its next chunk (`bill-run` given Ctrl-C):
   * runBatch then marks it stopped with `why` (interruptRun) and returns. False when this process
   * is not drafting it (nothing asked: another process's run is never marked from here).
   */
  function stopRun(batchId: string, why: string): boolean {
    if (!running.has(batchId)) return false;
    stopAsked.set(batchId, why);
    return true;
  }

  /**
   * The server is shutting down: each run in progress stops before its next chunk (the chunk
   * being drafted commits), marked stopped (resumable at once, audited). Resolves when they have
   * stopped, or after `timeoutMs`.
   */
  async function stopRuns(timeoutMs: number): Promise<void> {
    stopping = true;
    await settledWithin([...running.values()], timeoutMs);
  }

  /** Work through a run's pending matters, a chunk per transaction, recording each outcome with its draft. */
  function runBatch(ctx: CommandContext, batchId: string, opts: { chunk?: number } = {}): Promise<Batch> {
    const current = running.get(batchId);
    if (current) return current;
    const p = (async () => {
      const b = await mass.findBatch(db, batchId);
      if (!b) throw notFound('Bill run');
      const request = (b.filters as { request?: BillRequest }).request ?? runRequest(b);
      // Started, or resumed after a failure (audited, with the failure it resumes from); a run
      // already marked running (a process that stopped mid-run) is taken up without a change of state.
      await db.transaction().execute(async (trx) => {
        const was = await mass.findBatch(trx, batchId);
        if (!was || (was.status !== 'pending' && was.status !== 'running' && was.status !== 'failed')) return;
        // Drafted by another server process now (its heartbeat fresh): no second worker here (the page's
        // Resume, the CLI's --run-id, the API's same id again); refused before anything changes.
        if (runDraftingElsewhere(was, clock.now().getTime())) throw new RunDraftingElsewhere(batchId, was.heartbeatAt!);
        // Taken only as it was read (and, marked running, its heartbeat absent or stale still; a run that failed moments
        // ago keeps a fresh one): of two takers at once (two processes, a double post), Postgres re-checks the second's
        // update once the first commits and it changes nothing; that one is refused.
        const at = now();
        const staleBefore = new Date(clock.now().getTime() - RUN_HEARTBEAT_STALE_MS).toISOString();
        const took = await execRaw(trx, `update billing_batch set status = 'running', updated_at = ?, heartbeat_at = ?
          where id = ? and status = ? and (status <> 'running' or heartbeat_at is null or heartbeat_at < ?)`, [at, at, batchId, was.status, staleBefore]);
        if (took !== 1) {
          const now2 = await mass.findBatch(trx, batchId);
          throw new RunDraftingElsewhere(batchId, now2?.heartbeatAt ?? at);
        }
        if (was.status === 'running') return;
        await audit(trx, clock, ctx, {
          action: was.status === 'failed' ? 'billing.bill_run_resumed' : 'billing.bill_run_started', entityType: 'billing_batch', entityId: batchId,
          before: { status: was.status, ...(was.status === 'failed' ? { error: was.error } : {}) }, after: { status: 'running' },
        });
      });
      // While this process drafts the run it says so every RUN_HEARTBEAT_MS, for the run's page on other server
      // processes (a missed beat only shows the run as stopped a little early: never an error of the run's).
      const beat = setInterval(() => {
        execRaw(db, `update billing_batch set heartbeat_at = ? where id = ? and status = 'running'`, [now(), batchId]).catch(() => undefined);
      }, RUN_HEARTBEAT_MS);
      beat.unref();
      try {
        const size = opts.chunk ?? DRAFT_CHUNK;
        const timeCap = (b.filters as { time?: { cap?: CapFilter } }).time?.cap;
        const draftPart = (part: string[]) => draftMatters(ctx, part, { invoiceDate: b.invoiceDate, upTo: b.upTo, request, batchId, ...(timeCap ? { timeCap } : {}) }, {
          chunk: size,
          onChunk: (trx, outcomes) => mass.settleRows(trx, batchId, outcomes.map((o) => (o.ok
            ? { matterId: o.matterId, billId: o.bill.billId, itemCount: o.bill.itemCount, totalMinor: o.bill.totals.totalMinor, reason: null }
            : { matterId: o.matterId, billId: null, itemCount: 0, totalMinor: null, reason: o.reason })), now()),
        });
        let stopped = false;
        for (let round = 0; ; round++) {
          // Between chunks the process answers requests (the run's page, other clerks) and signals (Ctrl-C on
          // bill-run): on SQLite a chunk, and the read of the next, never leave the microtask queue.
          if (round > 0) await setImmediatePromise();
          if (stopping || stopAsked.has(batchId)) { stopped = true; break; }
          const pending = await mass.pendingMatters(db, batchId, size * lanes);
          if (pending.length === 0) break;
          // Every part settles before the next read of pending matters (or before failing).
          await inParts(pending, size, draftPart);
        }
        if (stopped) {
          await interruptRun(ctx, batchId, stopAsked.get(batchId) ?? SHUTDOWN_REASON);
          return (await mass.findBatch(db, batchId))!;
        }
        await db.transaction().execute(async (trx) => {
          const n = await execRaw(trx, `update billing_batch set status = 'done', finished_at = ?, updated_at = ? where id = ? and status <> 'done'`, [now(), now(), batchId]);
          if (n === 1) {
            const done = (await mass.findBatch(trx, batchId))!;
            await audit(trx, clock, ctx, { action: 'billing.bill_run_finished', entityType: 'billing_batch', entityId: batchId, after: { drafted: done.draftedCount, skipped: done.skippedCount, items: done.itemCount } });
          }
        });
        deps.relay.kick();
      } catch (err) {
        // The run's failure and its audit row in one transaction.
        const error = String((err as Error).message ?? err).slice(0, 1000);
        await db.transaction().execute(async (trx) => {
          await trx.updateTable('billing_batch').set({ status: 'failed', error, updated_at: now() }).where('id', '=', batchId).execute();
          await audit(trx, clock, ctx, { action: 'billing.bill_run_failed', entityType: 'billing_batch', entityId: batchId, after: { error } });
        });
        throw err;
      } finally {
        clearInterval(beat);
      }
      return (await mass.findBatch(db, batchId))!;
    })().finally(() => { running.delete(batchId); stopAsked.delete(batchId); });
    running.set(batchId, p);
    return p;
  }

  /**
   * A run this process was drafting, stopped by the clerk (Ctrl-C on `bill-run`, the service
   * stopped): marked failed with `why`, audited, its heartbeat cleared, so that it is offered
   * for resuming at once (here or on any server) instead of a minute later. What it drafted is
   * kept. False when the run is neither pending nor running (it finished or failed meanwhile): nothing changes.
   */
  async function interruptRun(ctx: CommandContext, batchId: string, why: string): Promise<boolean> {
    assert(why.length > 0 && why.length <= 1000, 'interruptRun: a reason of 1 to 1000 characters');
    return db.transaction().execute(async (trx) => {
      const at = now();
      const n = await execRaw(trx, `update billing_batch set status = 'failed', error = ?, updated_at = ?, heartbeat_at = null where id = ? and status in ('pending', 'running')`, [why, at, batchId]);
      if (n !== 1) return false;
      await audit(trx, clock, ctx, { action: 'billing.bill_run_failed', entityType: 'billing_batch', entityId: batchId, after: { error: why } });
      return true;
    });
  }

  // ---- changing a batch's drafts (seed 004: modify a batch) -----------------------------

  interface BatchChange { invoiceDate?: string; upTo?: string; template?: string | null; paymentTermsDays?: number | null }

  /** Change every draft of a batch (or the chosen ones): new dates, template or terms, each recomposed through updateDraft. */
  /** Why a change to these drafts is refused as a whole (field: message), or nothing: read only, as modifyDrafts checks before changing any. */
  async function modifyErrors(billIds: readonly string[], change: BatchChange): Promise<Record<string, string>> {
    const e = filterErrors({ invoiceDate: change.invoiceDate, upTo: change.upTo }, today());
    if (change.paymentTermsDays !== undefined && change.paymentTermsDays !== null && !(Number.isSafeInteger(change.paymentTermsDays) && change.paymentTermsDays >= 0 && change.paymentTermsDays <= MAX_PAYMENT_TERMS_DAYS)) e.paymentTermsDays = `must be a whole number of days from 0 to ${MAX_PAYMENT_TERMS_DAYS}`;
    if (change.template !== undefined && change.template !== null && (change.template.trim() === '' || change.template.length > 100)) e.template = 'must be a template name of 1 to 100 characters';
    else if (change.template) {
      const refusal = unknownTemplate(change.template, await cmds.billTemplateNames());
      if (refusal) e.template = refusal;
    }
    // Of the drafts, those whose `column` is past `date` (`op`), and the furthest such date: one narrow read per 500 drafts,
    // not each bill with its lines.
    const across = async (column: 'up_to' | 'invoice_date', op: '>' | '<', date: string): Promise<{ count: number; furthest: string }> => {
      let count = 0;
      let furthest = '';
      const ids = [...new Set(billIds)];
      for (let i = 0; i < ids.length; i += 500) {
        const rows = await db.selectFrom('billing_bill').select(column).where('id', 'in', ids.slice(i, i + 500))
          .where('status', '=', 'draft').where(column, op, date).execute() as Record<typeof column, string>[];
        for (const r of rows) {
          count++;
          if (furthest === '' || (op === '>' ? r[column] > furthest : r[column] < furthest)) furthest = r[column];
        }
      }
      return { count, furthest };
    };
    // A new invoice date alone, before some drafts' up-to date: each draft would be refused for its up-to date. Refused
    // once, at the up-to date, changing nothing: the clerk gives one on or before the new invoice date too.
    if (Object.keys(e).length === 0 && change.invoiceDate && !change.upTo) {
      const later = await across('up_to', '>', change.invoiceDate);
      if (later.count > 0) e.upTo = `${later.count} of the drafts bill fees and disbursements up to a date after the new invoice date ${change.invoiceDate} (up to ${later.furthest}): give a new up-to date on or before it too`;
    }
    // The reverse: a new up-to date alone, after some drafts' invoice dates (each would be refused for it).
    if (Object.keys(e).length === 0 && change.upTo && !change.invoiceDate) {
      const earlier = await across('invoice_date', '<', change.upTo);
      if (earlier.count > 0) e.upTo = `${earlier.count} of the drafts are dated before the new up-to date ${change.upTo} (from ${earlier.furthest}): give an up-to date on or before their invoice date, or a new invoice date too`;
    }
    return e;
  }

  async function modifyDrafts(ctx: CommandContext, billIds: readonly string[], change: BatchChange, expected?: ReadonlyMap<string, number>) {
    const e = await modifyErrors(billIds, change);
    if (Object.keys(e).length) throw invalid(e);
    return eachBill(billIds, async (id) => {
      const b = await cmds.findBill(id);
      if (!b) throw notFound('Bill');
      const listed = expected?.get(id);
      if (listed !== undefined && listed !== b.version && b.status === 'draft') throw new HttpError(409, BILL_CHANGED, CHANGED_SINCE_LISTED);
      const request: BillRequest = { ...b.request };
      if (change.template !== undefined) { if (change.template) request.template = change.template; else delete request.template; }
      if (change.paymentTermsDays !== undefined) { if (change.paymentTermsDays !== null) request.paymentTermsDays = change.paymentTermsDays; else delete request.paymentTermsDays; }
      // A new invoice date decides the every-cycle fixed fee again, as a run drafting on it would (draftChunk's withCycleFee).
      return cmds.updateDraft(ctx, id, {
        ...(change.invoiceDate ? { invoiceDate: change.invoiceDate, redecideCycleFee: true } : {}), ...(change.upTo ? { upTo: change.upTo } : {}), request, expectedVersion: b.version,
      });
    });
  }

  /** A draft changed since a list showed it is refused with the list's words (CHANGED_SINCE_LISTED), as approving it is. */
  async function listedOrRefuse<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (e) {
      if (e instanceof HttpError && e.code === BILL_CHANGED) throw new HttpError(409, BILL_CHANGED, CHANGED_SINCE_LISTED);
      throw e;
    }
  }

  /** Take drafts out of their batch (they stay drafts). `expected`: the version each had where the clerk chose it (a list); one changed since is refused. */
  async function removeFromBatch(ctx: CommandContext, batchId: string, billIds: readonly string[], expected?: ReadonlyMap<string, number>) {
    return eachBill(billIds, (id) => db.transaction().execute(async (trx) => {
      const b = await bills.findBill(trx, id);
      if (!b) throw notFound('Bill');
      const listed = expected?.get(id);
      if (listed !== undefined && listed !== b.version) throw new HttpError(409, BILL_CHANGED, CHANGED_SINCE_LISTED);
      if (b.batchId !== batchId) throw conflict('The bill is not in this batch');
      if (b.status !== 'draft') throw conflict(`Only a draft can be taken out of its batch; this bill is ${b.status}`);
      const after: Bill = { ...b, batchId: null, updatedAt: now(), version: b.version + 1 };
      await bills.updateBill(trx, after, { status: 'draft', version: b.version });
      await audit(trx, clock, ctx, { action: 'billing.bill_removed_from_batch', entityType: 'billing_bill', entityId: id, before: { batchId }, after: { batchId: null } });
    }));
  }

  return {
    candidates, eligible, excludedRows, whyNot, previewRows, draftMatters, approveMany, createRun, runBatch, interruptRun, stopRuns, stopRun,
    modifyErrors, modifyDrafts, removeFromBatch, unknownMattersRefusal, unknownChoices,
    /** A run's choices checked as createRun checks them, without making it: throws the same 422. */
    async checkRunChoices(input: RunInput): Promise<void> {
      const e = await runChoiceErrors(input);
      if (Object.keys(e).length) throw invalid(e);
    },
    /** The firm's period rule today, as the pages say it (balances.approvalPeriodNotes). */
    periodNotes: () => billBalances.approvalPeriodNotes(db, today()),
    /** Before a run is confirmed: 409 when its id names a run made for other choices; nothing when the id is new or the run the same. */
    async checkRunId(input: RunInput): Promise<void> {
      const existing = input.id ? await mass.findBatch(db, input.id) : null;
      if (existing) await sameRunOrRefuse(db, existing, input);
    },
    /** Start a run in the background (the page polls its status). Errors are recorded on the run. */
    startRun(ctx: CommandContext, batchId: string, onError: (err: unknown) => void = () => {}): void {
      // Going on in another process: nothing failed (its page follows it there).
      runBatch(ctx, batchId).catch((err: unknown) => { if (!(err instanceof RunDraftingElsewhere)) onError(err); });
    },
    isRunningHere: (batchId: string) => running.has(batchId),
    /** The bill templates a run or a draft may name. */
    billTemplateNames: cmds.billTemplateNames,
    /** How a clerk knows each bill: its file number, and its number once it has one. */
    billLabels: (ids: readonly string[]) => mass.billLabels(db, ids),
    draftCount: (ids: readonly string[]) => mass.draftCount(db, ids),
    draftsInNoRun: (limit: number) => mass.draftsInNoRun(db, limit),
    /** The Client filter: suggestions as the clerk types, the clients a typed number or name names, and one by id. */
    clientsMatching: (text: string, limit: number) => mass.clientsMatching(db, text, limit),
    clientsNamed: (text: string, opts: { partial?: boolean } = {}) => mass.clientsNamed(db, text, opts),
    clientById: (id: string) => mass.clientById(db, id),
    clientTyped: (text: string) => mass.clientTyped(db, text),
    matterFiltersOf,
    itemFiltersOf,
    /** The first `limit` of these matters as the pages name them ("3.1 Lease review"), in file number order, and how many there are. */
    async matterLabels(ids: readonly string[], limit: number): Promise<{ labels: string[]; total: number }> {
      assert(Number.isSafeInteger(limit) && limit >= 1 && limit <= 100, 'matterLabels: a limit of 1 to 100');
      const unique = [...new Set(ids)].slice(0, MAX_RUN_MATTERS);
      const labels: string[] = [];
      // A matter excluded from mass billing, picked by hand (Bill all leaves it out): said so.
      let defaultsExclude: boolean | null = null;
      for (let i = 0; i < unique.length; i += 1_000) {
        const part = unique.slice(i, i + 1_000);
        for (const r of await selectRaw<{ file_number: string; name: string; options_json: string | null }>(db, `select file_number, name, options_json from billing_matter where id in (${marks(part.length)})`, part)) {
          if (r.options_json === null && defaultsExclude === null) defaultsExclude = (await store.getFirmSettings(db))?.matterDefaults.massBilling.exclude ?? false;
          const excluded = r.options_json === null ? defaultsExclude : (JSON.parse(r.options_json) as MatterBillingOptions).massBilling.exclude;
          labels.push(`${r.file_number} ${r.name}${excluded ? ' (excluded from mass billing)' : ''}`);
        }
      }
      labels.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
      return { labels: labels.slice(0, limit), total: labels.length };
    },
    draftDatesAndHolds: (ids: readonly string[]) => mass.draftDatesAndHolds(db, ids),
    /** `expected`: the version each draft had where the clerk chose it (a list); one changed since is refused, not deleted. */
    deleteDrafts: (ctx: CommandContext, ids: readonly string[], expected?: ReadonlyMap<string, number>) =>
      eachBill(ids, (id) => listedOrRefuse(cmds.deleteDraft(ctx, id, expected?.get(id)))),
    holdDrafts: (ctx: CommandContext, ids: readonly string[], onHold: boolean, expected?: ReadonlyMap<string, number>) =>
      eachBill(ids, async (id) => {
        // A draft already as asked is not counted as held or released: named, with why (changed since it was listed:
        // refused as such by setOnHold first). A hold that writes moves the version, so at the version listed (the
        // page always posts it) an unmoved one wrote nothing; only a bill posted without one is read before.
        const already = () => conflict(onHold ? ALREADY_HELD : NOTHING_TO_RELEASE);
        const listed = expected?.get(id);
        if (listed === undefined) {
          const was = await cmds.findBill(id);
          if (was && was.status === 'draft' && was.onHold === onHold) throw already();
        }
        const after = await listedOrRefuse(cmds.setOnHold(ctx, id, onHold, listed));
        if (listed !== undefined && after.version === listed) throw already();
        return after;
      }),
    findBatch: (id: string) => mass.findBatch(db, id),
    listBatches: (opts: { limit?: number } = {}) => mass.listBatches(db, opts),
    draftsNowIn: (batchIds: readonly string[]) => mass.draftsNowIn(db, batchIds),
    batchRows: (id: string, opts: Parameters<typeof mass.batchRows>[2] = {}) => mass.batchRows(db, id, opts),
    listDrafts: (f: mass.DraftFilters = {}) => mass.listDrafts(db, f),
    draftIds: (f: mass.DraftFilters = {}) => mass.draftIds(db, f),
    draftVersions: (f: mass.DraftFilters = {}) => mass.draftVersions(db, f),
    isEligible,
  };
}

export type MassBilling = ReturnType<typeof createMassBilling>;
