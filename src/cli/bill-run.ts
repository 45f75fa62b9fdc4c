/**
 * `lexbill bill-run`: the monthly mass-billing run from the command line, for firms that
 * schedule it. Delivers pending events first (so billing's copy of matters is current),
 * creates ONE run with the filters (the same eligibility rules as the mass billing page),
 * drafts every eligible matter, then optionally approves the drafts and produces them.
 * Prints each matter billed, skipped (taken into the run and not drafted) or ineligible (left
 * out of it), with the reason, and a summary line; ineligible matters with nothing to bill are
 * counted on one line unless --all-skipped.
 *
 *   lexbill bill-run --invoice-date 2026-03-31 --up-to 2026-03-31 [--client NUMBER|NAME|ID] [--matter FILE]
 *     [--responsible INITIALS|ID] [--billing-timekeeper INITIALS|ID] [--cycle C] [--next-from D] [--next-to D]
 *     [--wip-cap matter|AMOUNT] [--time-from D] [--time-to D] [--time-timekeeper INITIALS|ID]
 *     [--time-cap matter|AMOUNT] [--disb-from D] [--disb-to D] [--disb-code CODE] [--expenses-only]
 *     [--template NAME] [--terms DAYS] [--run-id ID] [--approve] [--produce] [--json] [--all-skipped]
 *
 * The run's id is printed before it drafts (on stderr with --json), and a run that stops part
 * way says so with its id: the same command with `--run-id ID` takes it up where it stopped.
 * An option given twice is bad usage, never "the last one wins".
 *
 * Exit status: 0 when the run finished (matters skipped for a reason, and bills whose
 * approval is refused for a reason such as a hold, are not errors), 1 when something failed
 * (a run that stopped, a failed or busy production), 2 for bad usage.
 */
import { parseArgs } from 'node:util';
import type { Runtime } from '../main.ts';
import { isParseArgsError, repeatedOptions } from './args.ts';
// filterErrors, MAX_PAYMENT_TERMS_DAYS: the run's own checks of its choices, applied before anything is delivered or written.
import { ALREADY_PRODUCED, capChoice, createBillingCommands, createMassBilling, filterErrors, MAX_PAYMENT_TERMS_DAYS, produceBills, RUN_HEARTBEAT_STALE_MS, RunDraftingElsewhere, runDraftingElsewhere, RunQueuedElsewhere } from '../modules/billing/index.ts';
import { isoDate } from '../shared/clock.ts';
import { systemContext } from '../shared/events.ts';
import { formatMoney } from '../shared/money.ts';
import { HttpError } from '../shared/web/errors.ts';

export const BILL_RUN_HELP = `  bill-run --invoice-date D --up-to D [filters] [--approve] [--produce]
                              draft every eligible matter in one batch (mass billing);
                              filters: --client NUMBER|NAME|ID --matter FILE --responsible INITIALS|ID
                              --billing-timekeeper INITIALS|ID --cycle C --next-from D --next-to D
                              --wip-cap matter|AMOUNT --time-from D --time-to D
                              --time-timekeeper INITIALS|ID --time-cap matter|AMOUNT
                              --disb-from D --disb-to D --disb-code C
                              --expenses-only; --template NAME --terms DAYS --run-id ID --json;
                              --approve numbers the run's drafts (one totalling nothing
                              is left as a draft), --produce (with --approve) produces
                              them; prints each matter billed, skipped (in the run,
                              not drafted) or ineligible (left out of it) and why; ineligible
                              matters with nothing to bill are counted, not listed, unless
                              --all-skipped; with no matter eligible no run is made;
                              the run's id is printed first: a run that stopped is resumed by
                              the same command with --run-id ID; --json: one JSON document
                              on stdout; exit 0 done, 1 something failed, 2 bad usage`;

export class BillRunUsageError extends Error {}

/**
 * A matter left out with nothing to bill up to the date, counted rather than listed: closed,
 * billing off or excluded as well changes nothing (nothing would be billed anyway), but one
 * with a draft, or queued in another run, is listed (its work is on that draft or run).
 */
export const nothingToBill = (r: { reasons: readonly { code: string }[] }): boolean =>
  r.reasons.some((x) => x.code === 'nothing_to_bill' || x.code === 'expenses_only_no_disbursements')
  && !r.reasons.some((x) => x.code === 'has_draft' || x.code === 'queued');

/** The run's field names as this command's options (for messages about bad choices). */
const OPTION_OF: Record<string, string> = {
  invoiceDate: '--invoice-date', upTo: '--up-to', clientId: '--client', matterId: '--matter', responsibleTimekeeperId: '--responsible', billingTimekeeperId: '--billing-timekeeper',
  billingCycle: '--cycle', nextBillingFrom: '--next-from', nextBillingTo: '--next-to', capAmount: '--wip-cap', timeFrom: '--time-from', timeTo: '--time-to',
  timeTimekeeperId: '--time-timekeeper', timeCapAmount: '--time-cap', disbFrom: '--disb-from', disbTo: '--disb-to', disbCode: '--disb-code', template: '--template', paymentTermsDays: '--terms', id: '--run-id',
};

/**
 * A refused choice (422, or a 409 naming a choice: a --run-id already used for another run)
 * as a usage error naming the options; anything else unchanged.
 */
function asUsage(e: unknown): unknown {
  if (!(e instanceof HttpError) || (e.status !== 422 && e.status !== 409) || Object.keys(e.fields).length === 0) return e;
  // --client takes a number, a name or an id: a client it names nowhere is said so (the run says "no client with id").
  return new BillRunUsageError(Object.entries(e.fields).map(([k, v]) => `${OPTION_OF[k] ?? k} ${k === 'clientId' ? v.replace(/^no client with id /, 'no client with this number, name or id: ') : v}`).join('; '));
}

const OPTIONS = {
  'invoice-date': { type: 'string' }, 'up-to': { type: 'string' }, client: { type: 'string' }, matter: { type: 'string' },
  responsible: { type: 'string' }, 'billing-timekeeper': { type: 'string' }, cycle: { type: 'string' }, 'next-from': { type: 'string' },
  'next-to': { type: 'string' }, 'wip-cap': { type: 'string' }, 'time-from': { type: 'string' }, 'time-to': { type: 'string' },
  'time-timekeeper': { type: 'string' }, 'time-cap': { type: 'string' }, 'disb-from': { type: 'string' }, 'disb-to': { type: 'string' }, 'disb-code': { type: 'string' },
  'expenses-only': { type: 'boolean' }, template: { type: 'string' }, terms: { type: 'string' }, 'run-id': { type: 'string' },
  approve: { type: 'boolean' }, produce: { type: 'boolean' }, json: { type: 'boolean' }, 'all-skipped': { type: 'boolean' },
} as const;

/**
 * Options given empty (an unset variable in a scheduled script: `--client "$CLIENT"`), named:
 * an empty filter is a mistake, never "no filter" (which would bill the whole firm), and an
 * empty --run-id is not "a new run". Null when none is.
 */
export function emptyOptions(v: Record<string, string | boolean | undefined>): string | null {
  const empty = Object.keys(OPTIONS).filter((k) => { const x = v[k]; return typeof x === 'string' && x.trim() === ''; });
  if (empty.length === 0) return null;
  return empty.map((k) => (k === 'wip-cap' || k === 'time-cap'
    ? `--${k} must be "matter" or an amount (it was given empty)`
    : `--${k} must have a value (it was given empty; leave the option out instead)`)).join('; ');
}

/** Run it; the lines go to `out` (stdout). Returns the exit status. */
export async function billRun(rt: Runtime, args: string[], out: (line: string) => void = (l) => console.log(l), err: (line: string) => void = (l) => console.error(l)): Promise<number> {
  let v: ReturnType<typeof parseArgs<{ args: string[]; options: typeof OPTIONS; strict: true }>>['values'];
  // A flag without its value, a value given to a yes/no flag, a stray argument, an unknown flag: usage (exit 2), naming it.
  // A flag given twice too: which of the two was meant cannot be known (the last is not "the" one).
  try {
    const parsed = parseArgs({ args, options: OPTIONS, strict: true, tokens: true });
    const twice = repeatedOptions(parsed.tokens, OPTIONS);
    if (twice) throw new BillRunUsageError(twice);
    v = parsed.values;
  } catch (e) {
    if (isParseArgsError(e)) throw new BillRunUsageError((e as Error).message);
    throw e;
  }
  if (!v['invoice-date']) throw new BillRunUsageError('--invoice-date is required (YYYY-MM-DD)');
  if (!v['up-to']) throw new BillRunUsageError('--up-to is required (YYYY-MM-DD)');
  const empty = emptyOptions(v);
  if (empty) throw new BillRunUsageError(empty);
  if (v.terms !== undefined && !/^\d{1,4}$/.test(v.terms)) throw new BillRunUsageError('--terms must be a whole number of days');
  if (v.produce && !v.approve) throw new BillRunUsageError('--produce needs --approve (only approved bills are produced)');
  const db = rt.database.db;
  const ctx = systemContext(`cli-bill-run-${Date.now()}`, 'cli:bill-run');
  const cmds = createBillingCommands({ db, clock: rt.clock, relay: rt.relay });
  const mass = createMassBilling({ db, clock: rt.clock, relay: rt.relay }, cmds);
  const firm = await db.selectFrom('billing_firm_settings').select('settings_json').where('id', '=', 'firm').executeTakeFirst() as { settings_json: string } | undefined;
  const currency = firm ? (JSON.parse(firm.settings_json) as { currency: string }).currency : 'USD';

  const wipCap = capChoice(v['wip-cap'], currency);
  if (wipCap.error) throw new BillRunUsageError(`--wip-cap must be "matter" or an amount (${wipCap.error})`);
  const timeChoice = capChoice(v['time-cap'], currency);
  if (timeChoice.error) throw new BillRunUsageError(`--time-cap must be "matter" or an amount (${timeChoice.error})`);
  // Choices read without matters' copies (dates, ranges, amounts, terms, the run id, the template's length):
  // refused before pending events are delivered, so a refused run writes nothing at all.
  const early: Record<string, string> = filterErrors({
    invoiceDate: v['invoice-date'], upTo: v['up-to'], nextBillingFrom: v['next-from'], nextBillingTo: v['next-to'],
    time: { from: v['time-from'], to: v['time-to'], ...(timeChoice.cap ? { cap: timeChoice.cap } : {}) }, disbursements: { from: v['disb-from'], to: v['disb-to'] },
    ...(wipCap.cap ? { cap: wipCap.cap } : {}),
  }, isoDate(rt.clock.now()));
  if (v.terms !== undefined && Number(v.terms) > MAX_PAYMENT_TERMS_DAYS) early.paymentTermsDays = `must be a whole number of days from 0 to ${MAX_PAYMENT_TERMS_DAYS}`;
  if (v['run-id'] !== undefined && !/^[0-9a-zA-Z-]{8,64}$/.test(v['run-id'])) early.id = 'must be 8 to 64 letters, digits or dashes';
  if (v.template !== undefined && v.template.length > 100) early.template = 'must be a template name of 1 to 100 characters';
  if (Object.keys(early).length > 0) throw new BillRunUsageError(Object.entries(early).map(([k, x]) => `${OPTION_OF[k] ?? k} ${x}`).join('; '));
  // Billing's copy of matters made current before the choices naming them are checked.
  await rt.relay.drain();
  const cap = wipCap.cap;
  const timeCap = timeChoice.cap;
  // A client by its number (what the firm knows it by: 7) or id; a timekeeper by initials (MH) or id. One that names
  // nobody is left as given: the run refuses it with every other bad choice at once ("no client with id ...").
  const ambiguous: string[] = [];
  // The client as the web's Client filter takes it (its number, a name only one client has, "12 Kestrel Holdings"), or its id.
  const clientId = async (given: string): Promise<string> => {
    const found = await mass.clientTyped(given);
    if (found.client) return found.client.id;
    // Several: say which. None: left as given, refused by the run with every other bad choice.
    if (found.named.length > 1) ambiguous.push(`--client ${found.error}`);
    return given;
  };
  const timekeeperId = async (flag: string, given: string): Promise<string> => {
    const byId = await db.selectFrom('billing_timekeeper').select('id').where('id', '=', given).executeTakeFirst() as { id: string } | undefined;
    if (byId) return byId.id;
    const byInitials = await db.selectFrom('billing_timekeeper').select('id').where((eb) => eb(eb.fn('upper', ['initials']), '=', given.toUpperCase())).limit(2).execute() as { id: string }[];
    if (byInitials.length > 1) ambiguous.push(`${flag}: more than one timekeeper has initials ${given}: give the id`);
    return byInitials.length === 1 ? byInitials[0]!.id : given;
  };
  if (v.client) v.client = await clientId(v.client);
  for (const [flag, key] of [['--responsible', 'responsible'], ['--billing-timekeeper', 'billing-timekeeper'], ['--time-timekeeper', 'time-timekeeper']] as const) {
    const given = v[key];
    if (given) v[key] = await timekeeperId(flag, given);
  }
  if (ambiguous.length > 0) throw new BillRunUsageError(ambiguous.join('; '));
  let matterId: string | undefined;
  if (v.matter) {
    const r = await db.selectFrom('billing_matter').select('id').where('file_number', '=', v.matter).executeTakeFirst() as { id: string } | undefined;
    if (!r) throw new BillRunUsageError(`--matter: no matter with file number ${v.matter}`);
    matterId = r.id;
  }
  const filters = {
    ...(v.client ? { clientId: v.client } : {}), ...(matterId ? { matterId } : {}),
    ...(v.responsible ? { responsibleTimekeeperId: v.responsible } : {}), ...(v['billing-timekeeper'] ? { billingTimekeeperId: v['billing-timekeeper'] } : {}),
    ...(v.cycle ? { billingCycle: v.cycle } : {}), ...(v['next-from'] ? { nextBillingFrom: v['next-from'] } : {}), ...(v['next-to'] ? { nextBillingTo: v['next-to'] } : {}),
    ...(cap ? { cap } : {}),
    ...(v['time-from'] || v['time-to'] || v['time-timekeeper'] || timeCap ? { time: { ...(v['time-from'] ? { from: v['time-from'] } : {}), ...(v['time-to'] ? { to: v['time-to'] } : {}), ...(v['time-timekeeper'] ? { timekeeperId: v['time-timekeeper'] } : {}), ...(timeCap ? { cap: timeCap } : {}) } } : {}),
    ...(v['disb-from'] || v['disb-to'] || v['disb-code'] ? { disbursements: { ...(v['disb-from'] ? { from: v['disb-from'] } : {}), ...(v['disb-to'] ? { to: v['disb-to'] } : {}), ...(v['disb-code'] ? { code: v['disb-code'].toUpperCase() } : {}) } } : {}),
    ...(v['expenses-only'] ? { expensesOnly: true } : {}),
  };

  // What the filters leave out of an "all" run, and why (the run itself lists only eligible matters).
  let notListed: Awaited<ReturnType<typeof mass.candidates>>;
  let created: Awaited<ReturnType<typeof mass.createRun>>;
  /** A run given again by --run-id (one that exists): taken up, not made here (another process may be drafting it). */
  const givenAgain = v['run-id'] ? Boolean(await mass.findBatch(v['run-id'])) : false;
  /** The run was made by this command. */
  const madeHere = !givenAgain;
  // --approve where the firm refuses postings outside the current period and the invoice date
  // is outside it: every approval would be refused, so nothing is drafted (the matters' work
  // would be tied up in drafts no scheduled run could approve).
  // (A run taken up again under its --run-id finishes as it began: what it drafted and approved is kept.)
  if (v.approve && !givenAgain) {
    const refusal = (await mass.periodNotes()).refusalOf(v['invoice-date']);
    if (refusal) throw new BillRunUsageError(`--approve: the bills could not be approved: ${refusal.replace(/^Its invoice date/, 'their invoice date')}. Nothing was drafted`);
  }
  const runFilters = { ...filters, invoiceDate: v['invoice-date'], upTo: v['up-to'] };
  try {
    const candidates = await mass.candidates(runFilters);
    notListed = candidates.filter((r) => !r.eligible);
    // --matter with another filter that leaves that matter out: said, with why (the page's lookup), not "0 ineligible".
    if (matterId && !candidates.some((r) => r.matterId === matterId)) {
      const why = await mass.whyNot(runFilters, { id: matterId });
      if (why) notListed.push({ ...why.row, eligible: false, reasons: why.reasons.map((text) => ({ code: 'filtered' as const, text })) });
    }
    // No matter to bill (a scheduled run in a quiet week): no run is made, as the page makes none
    // (empty runs would crowd the page's recent runs); a run named by --run-id is still taken up.
    const input = {
      ...(v['run-id'] ? { id: v['run-id'] } : {}), invoiceDate: v['invoice-date'], upTo: v['up-to'], template: v.template ?? null,
      paymentTermsDays: v.terms === undefined ? null : Number(v.terms), filters,
    };
    // (A run id given again takes up that run; a new one is no run either.)
    if (candidates.every((r) => !r.eligible) && !givenAgain) {
      // Bad choices are refused all the same (they name nothing, so nothing is eligible).
      await mass.checkRunChoices(input);
      const stopped = await stoppedRunsHolding(notListed);
      const status = noRun(await mass.matterFiltersOf(runFilters), await mass.itemFiltersOf(runFilters), stopped);
      return stopped.length > 0 ? 1 : status;
    }
    try {
      created = await mass.createRun(ctx, input);
    } catch (e) {
      // Two scheduled runs started at once (two servers, a retry): the other queued every matter between this one's
      // list and its run. Those matters are being billed there: said per matter, and not a failure (exit 0), unless
      // that run stopped part way (then exit 1, as for a stopped run holding matters).
      if (!(e instanceof RunQueuedElsewhere)) throw e;
      return await queuedElsewhere(e.runId, candidates.filter((r) => r.eligible));
    }
  } catch (e) {
    throw asUsage(e);
  }
  // The run named before it drafts anything: a run stopped part way (Ctrl-C, a crash, a lost
  // connection) keeps what it drafted and is taken up again only under its own id.
  const resume = `run the same command again with --run-id ${created.id} to resume it`;
  // Ctrl-C (or the service stopped: SIGTERM) from here until the run is drafted stops it after the chunk being drafted
  // (it commits): marked stopped (failed, audited, its heartbeat cleared: resumable at once, here or on the page), the way
  // to resume it said, exit 130 (143 for SIGTERM). What it drafted is kept. A second signal stops at once. Taken before
  // the run is named, so a signal sent on seeing its id always finds it. A run another process drafts (--run-id given
  // again) is never marked from here: only one this command made, or took up itself.
  const runId = created.id;
  let signalled: NodeJS.Signals | null = null;
  const interruptedWhy = (signal: NodeJS.Signals) => `Interrupted (${signal}) on the command line: it stopped part way; what it drafted is kept`;
  const exitCodeOf = (signal: NodeJS.Signals) => (signal === 'SIGTERM' ? 143 : 130);
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) { err(`lexbill: stopped at once (${signal} again): bill run ${runId} is taken up again a minute after it was last heard from; ${resume}`); process.exit(exitCodeOf(signal)); }
    signalled = signal;
    // Drafting here: it stops after its chunk. Not yet: finishRun sees the signal before it drafts anything.
    if (mass.stopRun(runId, interruptedWhy(signal))) err(`lexbill: stopping bill run ${runId} after the chunk it is drafting (${signal} again to stop at once)`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const releaseSignals = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  // Which matters it takes, the client and timekeepers named (as the page's confirmation says).
  // And the work its time and disbursement filters leave off each bill (as the confirmation says it).
  let matterFilters: string | null;
  let itemFilters: string | null;
  try { [matterFilters, itemFilters] = [await mass.matterFiltersOf(runFilters), await mass.itemFiltersOf(runFilters)]; } catch (e) { releaseSignals(); throw e; }
  if (!v.json) {
    out(`Bill run ${created.id}: invoice date ${created.invoiceDate}, up to ${created.upTo}`);
    if (matterFilters) out(matterFilters);
    if (itemFilters) out(itemFilters);
  }
  else err(`lexbill: bill run ${created.id}: invoice date ${created.invoiceDate}, up to ${created.upTo} (if it stops, ${resume})`);
  try {
    return await finishRun(created);
  } catch (e) {
    if (e instanceof BillRunUsageError) throw e;
    // Another process is drafting it: nothing stopped, and taking it up again now would be refused again.
    if (e instanceof RunDraftingElsewhere) throw new Error(e.message, { cause: e });
    throw new Error(`bill run ${created.id} stopped: ${e instanceof Error ? e.message : String(e)}. What it did is kept; ${resume}`, { cause: e });
  } finally {
    releaseSignals();
  }

  /**
   * The matters left out of the run, each with why, except those with nothing to bill (most of
   * a firm's dormant ones, month after month): counted, so that the ones a clerk must see are
   * not lost among them. Then the summary line. "skipped": taken into the run and not drafted;
   * "ineligible": left out of it (as --json's notEligible and the run page count them).
   */
  function printIneligible(leftOut: typeof notListed, run: { upTo: string; draftedCount: number; itemCount: number; skippedCount: number }): void {
    const nothing = leftOut.filter(nothingToBill);
    // Counted in the summary either way; listed one by one only under --all-skipped.
    const idle = new Set(v['all-skipped'] ? [] : nothing);
    for (const r of leftOut) if (!idle.has(r)) out(`ineligible  ${r.fileNumber}  ${r.reasons.map((x) => x.text).join('; ')}`);
    if (idle.size > 0) out(`not listed: ${idle.size} ineligible matter(s) with nothing to bill up to ${run.upTo} (--all-skipped lists them)`);
    out(`${run.draftedCount} drafted (${run.itemCount} items), ${run.skippedCount} skipped, ${leftOut.length} ineligible${nothing.length > 0 ? ` (${nothing.length} with nothing to bill)` : ''}.`);
  }

  /**
   * Runs holding matters of this one (queued in them) that no process is drafting: stopped part
   * way, as after a crash. Each said on stderr with how to take it up again; the count (the
   * command then exits 1, so a scheduled retry does not read "nothing to bill" as success).
   * A run another process is drafting, or has just made and not begun, is not counted.
   */
  async function stoppedRunsHolding(leftOut: typeof notListed): Promise<{ runId: string; invoiceDate: string; upTo: string; matters: number }[]> {
    const ids = [...new Set(leftOut.flatMap((r) => (r.queuedRunId && r.reasons.some((x) => x.code === 'queued') ? [r.queuedRunId] : [])))];
    const stopped: { runId: string; invoiceDate: string; upTo: string; matters: number }[] = [];
    for (const id of ids) {
      const run = await mass.findBatch(id);
      const nowMs = rt.clock.now().getTime();
      if (!run || run.status === 'done' || runDraftingElsewhere(run, nowMs) || (run.status === 'pending' && nowMs - Date.parse(run.updatedAt) < RUN_HEARTBEAT_STALE_MS)) continue;
      const n = leftOut.filter((r) => r.queuedRunId === id).length;
      err(`lexbill: ${n} matter(s) are queued in bill run ${id} (invoice date ${run.invoiceDate}, up to ${run.upTo}), which stopped part way and is not being drafted: take it up again on its page, or with the command that made it and --run-id ${id}`);
      stopped.push({ runId: id, invoiceDate: run.invoiceDate, upTo: run.upTo, matters: n });
    }
    return stopped;
  }

  function notEligibleJson(leftOut: typeof notListed) {
    return leftOut.map((r) => ({ matterId: r.matterId, fileNumber: r.fileNumber, reasons: r.reasons.map((x) => x.text) }));
  }

  /** Nothing eligible: said, with why each matter is left out; no run, nothing written. Exit 0. */
  /** Every eligible matter queued in another run meanwhile: each reported skipped, with that run; exit 0 while it is being billed. */
  async function queuedElsewhere(runId: string, queued: typeof notListed): Promise<number> {
    const run = await mass.findBatch(runId);
    const nowMs = rt.clock.now().getTime();
    const stopped = run !== null && run.status !== 'done' && !runDraftingElsewhere(run, nowMs) && !(run.status === 'pending' && nowMs - Date.parse(run.updatedAt) < RUN_HEARTBEAT_STALE_MS);
    const reason = `queued in bill run ${runId}, which ${stopped ? 'stopped part way: take it up again on its page, or with --run-id' : 'another process is billing'}`;
    if (v.json) {
      out(JSON.stringify({ runId: null, queuedIn: runId, status: 'done', drafted: 0, skipped: queued.length, items: 0, notEligible: notEligibleJson(notListed),
        matters: queued.map((r) => ({ matterId: r.matterId, fileNumber: r.fileNumber, state: 'skipped', billId: null, items: 0, totalMinor: null, currency: null, reason })) }));
    } else {
      out(`No bill run made here: every matter these choices would bill is queued in bill run ${runId}.`);
      for (const r of queued) out(`skipped  ${r.fileNumber}  ${reason}`);
      printIneligible(notListed, { upTo: v['up-to']!, draftedCount: 0, itemCount: 0, skippedCount: queued.length });
    }
    if (stopped) err(`lexbill: bill run ${runId} holds these matters and stopped part way: take it up again on its page, or with the command that made it and --run-id ${runId}`);
    return stopped ? 1 : 0;
  }

  function noRun(matterFilters: string | null, itemFilters: string | null, stoppedRuns: readonly unknown[]): number {
    if (v.json) out(JSON.stringify({ runId: null, status: 'done', matterFilters, itemFilters, stoppedRuns, drafted: 0, skipped: 0, items: 0, notEligible: notEligibleJson(notListed), matters: [] }));
    else {
      out(`No bill run: no matter is eligible for invoice date ${v['invoice-date']}, up to ${v['up-to']}.`);
      if (matterFilters) out(matterFilters);
      if (itemFilters) out(itemFilters);
      printIneligible(notListed, { upTo: v['up-to']!, draftedCount: 0, itemCount: 0, skippedCount: 0 });
    }
    return 0;
  }

  async function finishRun(created: Awaited<ReturnType<typeof mass.createRun>>): Promise<number> {
    let run: typeof created;
    try {
      if (created.status === 'done') run = created;
      else if (signalled) {
        // Stopped before it drafted anything here: a run this command made is marked stopped; one given by --run-id is left as it is.
        if (madeHere) await mass.interruptRun(ctx, created.id, interruptedWhy(signalled));
        run = (await mass.findBatch(created.id)) ?? created;
      } else run = await mass.runBatch(ctx, created.id);
    } finally {
      releaseSignals();
    }
    if (signalled) {
      err(`lexbill: bill run ${created.id} interrupted (${signalled}): what it drafted is kept; ${resume}`);
      return exitCodeOf(signalled);
    }
    const rows = await mass.batchRows(run.id, { limit: 1_000_000 });
    // A run given again (the same --run-id) lists its own matters: one it drafted now "has a
    // draft" under the filters, but is reported once, as the run's, not also as left out.
    const inRun = new Set(rows.map((r) => r.matterId));
    const leftOut = notListed.filter((r) => !inRun.has(r.matterId));
    const report: Record<string, unknown> = { runId: run.id, status: run.status, matterFilters, itemFilters, drafted: run.draftedCount, skipped: run.skippedCount, items: run.itemCount };
    if (!v.json) {
      for (const r of rows) {
        // Each bill's total in its own currency (its matter's), not the firm's.
        if (r.state === 'drafted') out(`billed   ${r.fileNumber ?? r.matterId}  ${r.itemCount} item(s)  ${formatMoney(r.totalMinor ?? 0, r.currency ?? currency)}  bill ${r.billId}`);
        else out(`skipped  ${r.fileNumber ?? r.matterId}  ${r.reason}`);
      }
      printIneligible(leftOut, run);
    } else report.notEligible = notEligibleJson(leftOut);
    if (v.json) report.matters = rows.map((r) => ({ matterId: r.matterId, fileNumber: r.fileNumber, state: r.state, billId: r.billId, items: r.itemCount, totalMinor: r.totalMinor, currency: r.totalMinor === null ? null : r.currency ?? currency, reason: r.reason }));

    const stoppedRuns = await stoppedRunsHolding(leftOut);
    report.stoppedRuns = stoppedRuns;
    let status = run.status === 'done' && stoppedRuns.length === 0 ? 0 : 1;
    if (v.approve) {
      const billIds = rows.filter((r) => r.state === 'drafted' && r.billId).map((r) => r.billId!);
      // A run retried (the same --run-id, after a crash, say) finds some of its bills approved
      // already: they are not approved again, and --produce still produces them (production
      // skips what was done), so no bill of the run is left unproduced.
      const current = await cmds.findBills(billIds);
      const already = billIds.filter((id) => current.get(id)?.status === 'approved' || current.get(id)?.status === 'finalised');
      const alreadySet = new Set(already);
      // A draft that totals nothing (zero-value items, a discount as large as the fees) is not approved,
      // numbered and sent unattended: it is left as a draft for a clerk to approve by hand, or delete.
      const zero = billIds.filter((id) => !alreadySet.has(id) && current.get(id)?.status === 'draft' && current.get(id)!.totals.totalMinor === 0);
      const zeroSet = new Set(zero);
      const fileOf = new Map(rows.map((r) => [r.billId, r.fileNumber ?? r.matterId]));
      const approved = await mass.approveMany(ctx, billIds.filter((id) => !alreadySet.has(id) && !zeroSet.has(id)));
      const ok = approved.filter((a) => a.ok);
      // Posted outside the current accounting period (the firm warns rather than refuses): said, as the page's confirmation
      // says it, by each approved bill's own invoice date (a draft may have been re-dated on the drafts page).
      const notes = await mass.periodNotes();
      const byDate = new Map<string, number>();
      for (const a of ok) { const d = current.get(a.billId)?.invoiceDate ?? run.invoiceDate; byDate.set(d, (byDate.get(d) ?? 0) + 1); }
      const warnings = [...byDate].sort(([x], [y]) => (x < y ? -1 : 1)).flatMap(([d, n]) => { const note = notes.noteOf(d); return note ? [`the ${n} bill(s) approved dated ${d}: ${note}`] : []; });
      for (const w of warnings) err(`lexbill: warning: ${w}`);
      if (v.json) report.periodWarning = warnings.length > 0 ? warnings.join('; ') : null;
      if (!v.json) {
        for (const id of already) out(`approved ${current.get(id)!.number} (already)`);
        for (const a of approved) out(a.ok ? `approved ${a.number}` : `refused  ${a.billId}  ${a.reason}`);
        for (const id of zero) out(`left as draft  ${fileOf.get(id)}  bill ${id}  totals ${formatMoney(0, current.get(id)!.currency)}: approve it by hand if it is to be sent`);
        out(`${ok.length} approved${already.length ? ` (and ${already.length} approved before)` : ''}, ${approved.length - ok.length} refused${zero.length ? `, ${zero.length} left as draft (totalling nothing)` : ''}.`);
      }
      report.leftAsDraft = zero.map((id) => ({ billId: id, fileNumber: fileOf.get(id) ?? null, reason: 'totals nothing: approve it by hand if it is to be sent' }));
      report.approved = ok.length;
      report.alreadyApproved = already.length;
      report.approvedBills = [...already.map((id) => ({ billId: id, number: current.get(id)!.number, already: true })), ...ok.map((a) => ({ billId: a.billId, number: (a as { number: string }).number, already: false }))];
      report.refused = approved.filter((a) => !a.ok).map((a) => ({ billId: a.billId, reason: (a as { reason: string }).reason }));
      const toProduce = [...already, ...ok.map((a) => a.billId)];
      if (v.produce && toProduce.length > 0) {
        await rt.relay.drain();
        const produced = await produceBills({ db, clock: rt.clock, logger: rt.logger, relay: rt.relay, outputs: rt.outputs }, ctx, toProduce);
        // Bills produced before this command reached them (by the web, another run): counted apart, as approvals are.
        const producedBefore = produced.items.filter((it) => it.outcome === 'done' && it.error === ALREADY_PRODUCED).length;
        if (!v.json) {
          for (const it of produced.items) out(it.outcome === 'done' ? `produced ${it.number ?? it.billId}${it.error ? `  (${it.error})` : ''}` : `failed   ${it.number ?? it.billId}  ${it.error ?? it.outcome}`);
          out(`${produced.done - producedBefore} produced${producedBefore > 0 ? ` (and ${producedBefore} produced before)` : ''}, ${produced.failed} failed${produced.busy > 0 ? `, ${produced.busy} busy (being produced elsewhere; run again)` : ''}.`);
        }
        report.produced = produced.done - producedBefore;
        report.alreadyProduced = producedBefore;
        report.productionFailed = produced.failed;
        report.productionBusy = produced.busy;
        // Which bills, and why each not produced: a count alone tells no one what to do.
        // `error` for a bill not produced; `note` for one produced (e.g. found produced already: nothing sent again).
        report.production = produced.items.map((it) => ({ billId: it.billId, number: it.number ?? null, outcome: it.outcome, error: it.outcome === 'done' ? null : it.error ?? null, note: it.outcome === 'done' ? it.error ?? null : null }));
        if (produced.failed > 0 || produced.busy > 0) status = 1;
      }
    }
    await rt.relay.drain();
    if (v.json) out(JSON.stringify(report));
    return status;
  }
}
