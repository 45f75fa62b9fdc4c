/**
 * The draft bills page, mounted at /billing/drafts: every draft with its batch, bill,
 * client, matter, fees, disbursements, tax, total and hold; sorted and filtered; select
 * some or all (every draft under the filters). Approve (each refused with its reason: on
 * hold, invalid), Preview (the PDF, served by the production pages), Delete (back to mass
 * billing: items unbilled, no work deleted), put on hold or release, open in the composer,
 * and modify a batch (seed 004: new invoice date, up-to date, template or terms for its
 * drafts, or take bills out of it). Results come back per bill, on the list the browser is
 * sent to after the action (post/redirect/get: Reload shows them again, it does not act again).
 */
import { createHash } from 'node:crypto';
import { Hono } from 'hono';
import type { Context } from 'hono';
import { newToken } from '../../shared/ids.ts';
import { HttpError, invalid } from '../../shared/web/errors.ts';
import { allow } from '../../shared/web/guard.ts';
import type { ModuleDeps } from '../../shared/web/module.ts';
import { render } from '../../shared/web/render.ts';
import type { AppEnv, Role } from '../../shared/web/types.ts';
import { parseListedDraft } from './domain/mass.ts';
import { approvalPeriodNotes } from './balances.ts';
import { isoDate } from '../../shared/clock.ts';
import { previewPdfGroups } from './domain/production.ts';
import { templateChoices } from './domain/templates.ts';
import type { MassBilling } from './mass-commands.ts';
import { ALREADY_HELD, NOTHING_TO_RELEASE } from './mass-commands.ts';
import { DRAFT_SORT_LABELS, DRAFT_SORTS } from './mass-store.ts';
import type { DraftFilters, DraftSort } from './mass-store.ts';
import { sumByCurrency } from '../../shared/money.ts';

const READERS: readonly Role[] = ['admin', 'billing', 'readonly'];
const WRITERS: readonly Role[] = ['admin', 'billing'];
const PAGE_ROWS = 200;
/** Modify's template choice "Each matter's own" (no template name has a '*': billTemplateErrors). */
const MATTER_TEMPLATE = '*matter';

/** Modify's template choices: unchanged, each matter's own again, or one of the firm's templates. */
function modifyTemplateChoices(names: readonly string[], current: string): [string, string][] {
  const [unchanged, ...rest] = templateChoices(names, current === MATTER_TEMPLATE ? '' : current, 'Unchanged');
  return [unchanged!, [MATTER_TEMPLATE, 'Each matter\'s own'], ...rest];
}
const MAX_SELECTED = 100_000;

type Raw = Record<string, string | string[] | File>;
const first = (v: string | string[] | File | undefined): string => (typeof v === 'string' ? v.trim() : Array.isArray(v) && typeof v[0] === 'string' ? v[0].trim() : '');
const all = (raw: Raw, name: string): string[] => {
  const v = raw[name];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string' && x.trim() !== '').map((x) => x.trim());
};

/** The list's filters from the query string (or the action form's hidden copy). */
export function draftFilters(raw: Raw): DraftFilters & { page: number } {
  const sort = first(raw.sort);
  const hold = first(raw.hold);
  const page = Math.max(1, Math.min(10_000, Number(first(raw.page)) || 1));
  return {
    ...(first(raw.batch) ? { batchId: first(raw.batch) } : {}), ...(first(raw.q) ? { q: first(raw.q).slice(0, 100) } : {}),
    ...(hold === 'yes' ? { onHold: true } : hold === 'no' ? { onHold: false } : {}),
    sort: (Object.hasOwn(DRAFT_SORTS, sort) ? sort : 'matter') as DraftSort, dir: first(raw.dir) === 'desc' ? 'desc' : 'asc', page,
  };
}

/** The list's choices that are not choices it offers (an unknown order, hold or page), by field: shown, not silently read as the default. */
export function draftFilterErrors(raw: Raw): Record<string, string> {
  const e: Record<string, string> = {};
  const sort = first(raw.sort);
  if (sort && !Object.hasOwn(DRAFT_SORTS, sort)) e.sort = `must be one of ${Object.keys(DRAFT_SORTS).join(', ')}`;
  const dir = first(raw.dir);
  if (dir && dir !== 'asc' && dir !== 'desc') e.dir = 'must be asc or desc';
  const hold = first(raw.hold);
  if (hold && hold !== 'yes' && hold !== 'no') e.hold = 'must be yes, no, or left out (any)';
  const page = first(raw.page);
  if (page && !(/^[1-9][0-9]{0,4}$/.test(page) && Number(page) <= 10_000)) e.page = 'must be a page number from 1 to 10000';
  return e;
}

/**
 * A stamp of the drafts a list showed: each draft and its version, in any order. An action on
 * "all drafts listed" carries the stamp the page showed; a different stamp now means a draft
 * was added, changed or taken away since, and the action would touch drafts nobody reviewed.
 */
export function listingStamp(drafts: readonly { id: string; version: number }[]): string {
  const h = createHash('sha256');
  for (const d of [...drafts].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) h.update(`${d.id}:${d.version};`);
  return `${drafts.length}.${h.digest('hex').slice(0, 32)}`;
}

/** The filters that choose the drafts (not their order or page): what "all drafts listed" covers. */
function listFilters(f: DraftFilters): DraftFilters {
  return { ...(f.batchId ? { batchId: f.batchId } : {}), ...(f.q ? { q: f.q } : {}), ...(f.onHold !== undefined ? { onHold: f.onHold } : {}) };
}

/** An action's results as the list shows them. */
interface ActionResults {
  action: string; done: number; refused: { billId: string; reason?: string; label: string }[];
  /** Put on hold or released when already so: nothing to do, not a refusal (over "all drafts listed", most of them). */
  already: { billId: string; reason?: string; label: string }[];
}

/** How many actions' results are held (per process), and for how long: the list the browser is sent to reads them. */
const RESULTS_KEPT = 500;
const RESULTS_TTL_MS = 30 * 60_000;

/** The fields a form posted, to post again from its confirmation page (all but the token, the confirmation and `also`). */
function carriedFields(raw: Raw, also: readonly string[] = []): { name: string; value: string }[] {
  return Object.entries(raw).filter(([k]) => k !== '_csrf' && k !== 'confirmed' && !also.includes(k))
    .flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string').map((value) => ({ name: k, value })));
}

/** The query string of the list an action came from: its filters, order and page (for the redirect after it). */

function listQuery(raw: Raw): URLSearchParams {
  const f = draftFilters(raw);
  const q = new URLSearchParams();
  if (f.batchId) q.set('batch', f.batchId);
  if (f.q) q.set('q', f.q);
  if (f.onHold !== undefined) q.set('hold', f.onHold ? 'yes' : 'no');
  q.set('sort', f.sort ?? 'matter');
  q.set('dir', f.dir ?? 'asc');
  if (f.page > 1) q.set('page', String(f.page));
  return q;
}

const LISTING_CHANGED = 'The drafts listed have changed since the page was shown (a draft was added, changed or taken away): nothing was done. The list below is current: check it and try again.';

export function createDraftsPages(deps: ModuleDeps, mass: MassBilling): Hono<AppEnv> {
  const pages = new Hono<AppEnv>();
  const can = (c: Context<AppEnv>) => ({ write: WRITERS.includes(c.get('user')?.role as Role) });

  async function listContext(c: Context<AppEnv>, raw: Raw, extra: Record<string, unknown> = {}) {
    const f = draftFilters(raw);
    let list = await mass.listDrafts({ ...f, limit: PAGE_ROWS, offset: (f.page - 1) * PAGE_ROWS });
    // A page past the end (the last page's drafts all approved or deleted, an old link): the last page, as the mass list does.
    if (list.rows.length === 0 && list.total > 0 && f.page > 1) {
      f.page = Math.ceil(list.total / PAGE_ROWS);
      list = await mass.listDrafts({ ...f, limit: PAGE_ROWS, offset: (f.page - 1) * PAGE_ROWS });
    }
    const { total } = list;
    // Each draft's period, as approving it would post it (the ledger's periods, billing's copy).
    const { noteOf, refuses: periodRefuses } = await approvalPeriodNotes(deps.db, isoDate(deps.clock.now()));
    const rows = list.rows.map((r) => ({ ...r, periodNote: noteOf(r.invoiceDate) }));
    const batch = f.batchId ? await mass.findBatch(f.batchId) : null;
    // What "all drafts listed" means on this page: these drafts as they are now (see chosen).
    const listing = total > 0 ? listingStamp(await mass.draftVersions(listFilters(f))) : '';
    // The filters alone (the headings' links add their own order).
    const filtersQs = listQuery(raw);
    for (const k of ['sort', 'dir', 'page']) filtersQs.delete(k);
    const qs = filtersQs.toString();
    // Each batch labelled by when it was made (to the second) and the drafts it holds now.
    const newest = await mass.listBatches({ limit: 50 });
    // The batch chosen stays a choice when it is older than those (Filter would otherwise drop it).
    const listed = batch && !newest.some((b) => b.id === batch.id) ? [...newest, batch] : newest;
    const now = await mass.draftsNowIn(listed.map((b) => b.id));
    return {
      rows, total, f, batch, qs, listing, periodRefuses, can: can(c), pages: Math.max(1, Math.ceil(total / PAGE_ROWS)), sorts: (Object.keys(DRAFT_SORTS) as DraftSort[]).map((value) => ({ value, label: DRAFT_SORT_LABELS[value] })),
      batches: listed.map((b) => ({ ...b, draftsNow: now.get(b.id) ?? 0 })), results: null,
      templateOptions: modifyTemplateChoices(await mass.billTemplateNames(), first(raw.newTemplate)),
      // What the modify form was sent (kept when it is shown again with its errors).
      modify: { newInvoiceDate: first(raw.newInvoiceDate), newUpTo: first(raw.newUpTo), newTemplate: first(raw.newTemplate), newTerms: first(raw.newTerms), firmTerms: first(raw.firmTerms) === 'yes' }, ...extra,
    };
  }

  /** Drafts listed by the Delete confirmation (it says how many more were chosen). */
  const CONFIRM_LISTED = 500;

  /** Draft PDFs listed by one Preview (each is rendered when opened). */
  const PREVIEW_LINKS = 500;

  /** Refused bills named as the clerk knows them (file number), not by id. */
  async function labelled<T extends { billId: string }>(refused: T[]): Promise<(T & { label: string })[]> {
    const labels = await mass.billLabels(refused.map((r) => r.billId));
    return refused.map((r) => ({ ...r, label: labels.get(r.billId) ?? r.billId }));
  }

  // Post/redirect/get: an action's results are held here under a random key the redirect names,
  // for the clerk who acted, a while, and read (not taken) by the list, so Reload shows them again.
  const kept = new Map<string, { userId: string; atMs: number; results: ActionResults }>();
  function keepResults(c: Context<AppEnv>, results: ActionResults): string {
    const nowMs = deps.clock.now().getTime();
    for (const [k, v] of kept) if (kept.size >= RESULTS_KEPT || nowMs - v.atMs > RESULTS_TTL_MS) kept.delete(k); else break;
    const key = newToken(12);
    kept.set(key, { userId: c.get('user')?.id ?? '', atMs: nowMs, results });
    return key;
  }
  /** After an action: the list it came from (filters, order, page), with its results. */
  function showResults(c: Context<AppEnv>, raw: Raw, results: ActionResults): Response {
    const q = listQuery(raw);
    q.set('results', keepResults(c, results));
    return c.redirect(`/billing/drafts?${q.toString()}`, 303);
  }

  pages.get('/', allow(READERS), async (c) => {
    const raw = c.req.query() as Raw;
    const key = first(raw.results);
    const held = key ? kept.get(key) : undefined;
    const mine = held && held.userId === (c.get('user')?.id ?? '') && deps.clock.now().getTime() - held.atMs <= RESULTS_TTL_MS ? held.results : null;
    const errors = draftFilterErrors(raw);
    // (An action's results page keeps the batch the action was posted with, whatever it was: the action said so.)
    const batchId = first(raw.batch);
    if (batchId && !key && !(await mass.findBatch(batchId))) errors.batch = 'is no bill run: choose one from the list';
    if (Object.keys(errors).length > 0) {
      // The list as the defaults give it (every draft), with what was wrong named.
      const clean: Raw = Object.fromEntries(Object.entries(raw).filter(([k]) => !(k in errors)));
      return render(c, 'billing/drafts.njk', await listContext(c, clean, { errors, actionError: 'The list\'s choices need correcting: the drafts are listed without them' }), 422);
    }
    return render(c, 'billing/drafts.njk', await listContext(c, raw, { results: mine, resultsGone: key !== '' && mine === null }));
  });

  /**
   * The bills an action applies to, with the versions the list showed: the ticked ones
   * (`id@version`), or every draft under the filters ("all drafts listed"), which must still
   * be the drafts the page listed (its stamp): a draft added, changed or taken away since
   * would be acted on unseen, so nothing is done (409) and the current list is shown.
   */
  async function chosen(raw: Raw, opts: { readOnly?: boolean; everyWhenNoneTicked?: boolean } = {}): Promise<{ ids: string[]; versions: Map<string, number> }> {
    const ticked = all(raw, 'id');
    if (first(raw.every) === 'yes' || (opts.everyWhenNoneTicked && ticked.length === 0)) {
      const drafts = await mass.draftVersions(listFilters(draftFilters(raw)));
      if (!opts.readOnly) {
        const posted = first(raw.listing);
        if (!posted) throw invalid({ listing: 'is missing: reload the page' }, 'The page did not say which drafts it listed: reload it and try again');
        // (Every draft listed gone since, the list now empty, is a change too: not "select the bills first".)
        if (posted !== (drafts.length > 0 ? listingStamp(drafts) : '')) throw new HttpError(409, 'conflict', LISTING_CHANGED);
      }
      return { ids: drafts.map((d) => d.id), versions: new Map(drafts.map((d) => [d.id, d.version])) };
    }
    if (ticked.length > MAX_SELECTED) throw invalid({ id: `at most ${MAX_SELECTED} bills at once` });
    const versions = new Map<string, number>();
    const ids: string[] = [];
    const seen = new Set<string>();
    for (const value of ticked) {
      const d = parseListedDraft(value);
      if (!d) throw invalid({ id: 'must be draft bill ids' }, 'A selected bill is not a bill id');
      // A bill ticked twice (the same field posted twice) is one bill.
      if (seen.has(d.id)) continue;
      seen.add(d.id);
      ids.push(d.id);
      if (d.version !== null) versions.set(d.id, d.version);
    }
    return { ids, versions };
  }

  /** The action refused as a whole: the list shown again, current, with the reason. */
  async function refused(c: Context<AppEnv>, raw: Raw, e: unknown): Promise<Response> {
    if (!(e instanceof HttpError) || (e.status !== 409 && e.status !== 422)) throw e;
    return render(c, 'billing/drafts.njk', await listContext(c, raw, { actionError: e.message, errors: e.fields ?? {} }), e.status);
  }

  // The address a confirmation (approve, delete, modify) was shown at, opened again (history, a copied link, after
  // signing in again): the list, not "no page at this address".
  pages.get('/act', allow(READERS), (c) => c.redirect('/billing/drafts', 303));
  pages.get('/modify', allow(READERS), (c) => c.redirect('/billing/drafts', 303));

  pages.post('/act', allow(WRITERS), async (c) => {
    const raw = await c.req.parseBody({ all: true }) as Raw;
    const action = first(raw.action);
    const ctx = c.get('command');
    let picked: Awaited<ReturnType<typeof chosen>>;
    try { picked = await chosen(raw, { readOnly: action === 'preview' }); } catch (e) { return refused(c, raw, e); }
    const { ids, versions } = picked;
    if (ids.length === 0) return render(c, 'billing/drafts.njk', await listContext(c, raw, { actionError: 'Select the bills first (or "all drafts listed")' }), 422);
    if (action === 'preview') {
      // Seed 001: "Click Preview to generate a PDF preview of the selected bills": one opens
      // its PDF, several are listed (each a PDF), up to PREVIEW_LINKS of them.
      if (ids.length === 1) return c.redirect(`/billing/bills/${ids[0]}/pdf?preview=1`, 303);
      const labels = await mass.billLabels(ids.slice(0, PREVIEW_LINKS));
      return render(c, 'billing/drafts_preview.njk', {
        // Back to the list as it was (its batch, search, hold filter, order and page).
        backQs: listQuery(raw).toString(),
        groups: previewPdfGroups(ids.slice(0, PREVIEW_LINKS)),
        rows: ids.slice(0, PREVIEW_LINKS).map((id) => ({ billId: id, label: labels.get(id) ?? id })), total: ids.length, more: Math.max(ids.length - PREVIEW_LINKS, 0),
      });
    }
    if (action === 'delete' && first(raw.confirmed) !== 'yes') {
      // Deleting throws away the drafts and whatever was changed on them in the composer: the
      // clerk sees which first (seed 004's Delete asks too), and confirms with the same choice.
      const listed = await mass.listDrafts({ ids: ids.slice(0, CONFIRM_LISTED), sort: 'matter', limit: CONFIRM_LISTED });
      // What the list posted, posted again with the confirmation (the ticked drafts with the
      // versions shown, or "all drafts listed" with its stamp and filters; the list's order).
      const carried = carriedFields(raw, ['action']);
      // The drafts among them now (one approved or deleted since the list was shown is left out, and said so).
      const groups = await mass.draftDatesAndHolds(ids);
      const drafts = groups.reduce((n, g) => n + g.count, 0);
      return render(c, 'billing/drafts_delete.njk', {
        rows: listed.rows, count: drafts, more: Math.max(drafts - listed.rows.length, 0), gone: ids.length - drafts,
        // What they come to, every one of them (not only those listed).
        totals: sumByCurrency(groups, (g) => g.totalMinor), carried, backQs: listQuery(raw).toString(),
      });
    }
    if (action === 'approve' && first(raw.confirmed) !== 'yes') {
      // Approving numbers the bills and posts them to the books: the clerk sees how many, their
      // total, which are held (refused) and which post outside the current accounting period
      // (seed 004: asked to verify the period), and confirms with the same choice.
      const listed = await mass.listDrafts({ ids: ids.slice(0, CONFIRM_LISTED), sort: 'matter', limit: CONFIRM_LISTED });
      const { noteOf, refuses, currentPeriod } = await approvalPeriodNotes(deps.db, isoDate(deps.clock.now()));
      const rows = listed.rows.map((r) => ({ ...r, periodNote: noteOf(r.invoiceDate) }));
      // Held and out-of-period drafts counted over all the chosen, not only those listed.
      const groups = await mass.draftDatesAndHolds(ids);
      const drafts = groups.reduce((n, g) => n + g.count, 0);
      // Those approving will refuse for what the page knows (held, or dated where the firm refuses postings): the button approves the others.
      const refusedGroup = (g: (typeof groups)[number]) => g.onHold || (refuses && noteOf(g.invoiceDate) !== null);
      return render(c, 'billing/drafts_approve.njk', {
        rows, count: drafts, more: Math.max(drafts - rows.length, 0), gone: ids.length - drafts,
        held: groups.filter((g) => g.onHold).reduce((n, g) => n + g.count, 0),
        refused: groups.filter(refusedGroup).reduce((n, g) => n + g.count, 0),
        outside: groups.filter((g) => noteOf(g.invoiceDate) !== null).reduce((n, g) => n + g.count, 0), currentPeriod, refuses,
        // What the button approves comes to: every one of them (not only those listed), less those it will refuse.
        totals: sumByCurrency(groups.filter((g) => !refusedGroup(g)), (g) => g.totalMinor), carried: carriedFields(raw, ['action']), backQs: listQuery(raw).toString(),
      });
    }
    let results: { billId: string; ok: boolean; reason?: string; number?: string }[];
    switch (action) {
      case 'approve': results = await mass.approveMany(ctx, ids, { expectedVersions: versions }); break;
      case 'delete': results = await mass.deleteDrafts(ctx, ids, versions); break;
      case 'hold': results = await mass.holdDrafts(ctx, ids, true, versions); break;
      case 'release': results = await mass.holdDrafts(ctx, ids, false, versions); break;
      case 'remove': {
        const batchId = first(raw.batch);
        if (!batchId) return render(c, 'billing/drafts.njk', await listContext(c, raw, { actionError: 'Choose a batch first' }), 422);
        results = await mass.removeFromBatch(ctx, batchId, ids, versions);
        break;
      }
      default:
        return render(c, 'billing/drafts.njk', await listContext(c, raw, { actionError: 'Unknown action' }), 422);
    }
    const done = results.filter((r) => r.ok).length;
    const alreadySo = (r: { ok: boolean; reason?: string }) => !r.ok && (r.reason === ALREADY_HELD || r.reason === NOTHING_TO_RELEASE);
    return showResults(c, raw, { action, done, refused: await labelled(results.filter((r) => !r.ok && !alreadySo(r))), already: await labelled(results.filter(alreadySo)) });
  });

  /** Modify a batch: dates, template or terms for its drafts (all of them, or the ticked ones). */
  pages.post('/modify', allow(WRITERS), async (c) => {
    const raw = await c.req.parseBody({ all: true }) as Raw;
    let picked: Awaited<ReturnType<typeof chosen>>;
    try { picked = await chosen(raw, { everyWhenNoneTicked: true }); } catch (e) { return refused(c, raw, e); }
    const { ids, versions } = picked;
    const change: Parameters<MassBilling['modifyDrafts']>[2] = {};
    if (first(raw.newInvoiceDate)) change.invoiceDate = first(raw.newInvoiceDate);
    if (first(raw.newUpTo)) change.upTo = first(raw.newUpTo);
    // Each matter's own template (the run's or a change's taken off again): no template on the bills' requests.
    if (first(raw.newTemplate) === MATTER_TEMPLATE) change.template = null;
    else if (first(raw.newTemplate)) change.template = first(raw.newTemplate);
    const terms = first(raw.newTerms);
    const errors: Record<string, string> = {};
    if (terms) { if (/^\d{1,4}$/.test(terms)) change.paymentTermsDays = Number(terms); else errors.newTerms = 'must be a whole number of days'; }
    // The firm's payment terms (each matter's, where it has its own) again: no terms on the bills' requests.
    if (first(raw.firmTerms) === 'yes') {
      if (terms) errors.newTerms = 'give a number of days, or choose the firm\'s terms: not both';
      else change.paymentTermsDays = null;
    }
    if (Object.keys(change).length === 0 && !errors.newTerms) errors.newInvoiceDate = 'give a new invoice date, up-to date, template or terms';
    if (Object.keys(errors).length) return render(c, 'billing/drafts.njk', await listContext(c, raw, { errors }), 422);
    const rename: Record<string, string> = { invoiceDate: 'newInvoiceDate', upTo: 'newUpTo', template: 'newTemplate', paymentTermsDays: 'newTerms' };
    const refusal = await mass.modifyErrors(ids, change);
    if (Object.keys(refusal).length) return render(c, 'billing/drafts.njk', await listContext(c, raw, { errors: Object.fromEntries(Object.entries(refusal).map(([k, v]) => [rename[k] ?? k, v])) }), 422);
    if (first(raw.confirmed) !== 'yes') {
      // Every draft listed, on every page, is recomposed: the clerk sees how many and which
      // first, above all with no batch chosen (every run's drafts and the composer's), and
      // confirms with the same form posted again. Nothing is written before.
      const listed = await mass.listDrafts({ ids: ids.slice(0, CONFIRM_LISTED), sort: 'matter', limit: CONFIRM_LISTED });
      const drafts = ids.length > CONFIRM_LISTED ? await mass.draftCount(ids) : listed.total;
      // None of them a draft now (approved or deleted since they were ticked): nothing to ask about.
      if (drafts === 0) return render(c, 'billing/drafts.njk', await listContext(c, raw, { actionError: 'None of the chosen bills is a draft now (approved or deleted since the list was shown): nothing was changed' }), 409);
      const changes = [
        ...(change.invoiceDate ? [`Invoice date: ${change.invoiceDate} (due dates follow it)`] : []),
        ...(change.upTo ? [`Fees and disbursements up to ${change.upTo}`] : []),
        ...(change.template ? [`Bill template: ${change.template}`] : change.template === null ? ['Bill template: each matter\'s own'] : []),
        ...(change.paymentTermsDays !== undefined && change.paymentTermsDays !== null ? [`Payment terms: ${change.paymentTermsDays} days`] : []),
        ...(change.paymentTermsDays === null ? ['Payment terms: the firm\'s (or the matter\'s own, where it has them), due dates following them'] : []),
      ];
      return render(c, 'billing/drafts_modify.njk', {
        rows: listed.rows, count: drafts, more: Math.max(drafts - listed.rows.length, 0), changes, batchChosen: Boolean(first(raw.batch)), ticked: first(raw.every) !== 'yes' && all(raw, 'id').length > 0,
        pages: Math.max(1, Math.ceil(drafts / PAGE_ROWS)), carried: carriedFields(raw), backQs: listQuery(raw).toString(),
      });
    }
    try {
      const results = await mass.modifyDrafts(c.get('command'), ids, change, versions);
      return showResults(c, raw, { action: 'modify', done: results.filter((r) => r.ok).length, refused: await labelled(results.filter((r) => !r.ok)), already: [] });
    } catch (e) {
      if (!(e instanceof HttpError) || e.status !== 422) throw e;
      return render(c, 'billing/drafts.njk', await listContext(c, raw, { errors: Object.fromEntries(Object.entries(e.fields).map(([k, v]) => [rename[k] ?? k, v])) }), 422);
    }
  });

  return pages;
}
