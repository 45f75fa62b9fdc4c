/**
 * The mass billing pages, mounted under /billing/mass: the run's dates, template and terms;
 * seed 004's filters; the eligible list with WIP, disbursements, quote, what each row will
 * bill and why (a page of rows at a time, composed without saving); a lookup that explains
 * why a matter is not listed; Bill all / Bill selected with a confirmation step that
 * creates ONE run, and the run's page with live progress (htmx polls the run's status
 * stored in the database, so the user can leave and come back).
 *
 * Forms work without JavaScript and carry `_csrf`. A run's id is minted when the form is
 * shown and travels with it, so a second click or a resubmitted form is the same run; the id
 * sent with other choices (Back, other matters ticked) is refused (409), the list shown again
 * with a fresh id, and the list page is not kept by the browser (no-store); the confirmation is
 * (private, no-cache), so Back from a run page shows it, and confirming it again is the same run.
 */
import { Hono } from 'hono';
import type { Context } from 'hono';
import { isoDate } from '../../shared/clock.ts';
import { toDecimalString } from '../../shared/money.ts';
import { isId, newId } from '../../shared/ids.ts';
import { HttpError, invalid, notFound } from '../../shared/web/errors.ts';
import { allow } from '../../shared/web/guard.ts';
import type { ModuleDeps } from '../../shared/web/module.ts';
import { isHtmx, redirectAfterPost, render } from '../../shared/web/render.ts';
import type { AppEnv, Role } from '../../shared/web/types.ts';
import { MAX_PAYMENT_TERMS_DAYS } from './domain/lifecycle.ts';
import { clientLookup, cycleLabel, itemFiltersText } from './domain/mass.ts';
import type { ClientLookup } from './domain/mass.ts';
import type { CapFilter } from './domain/mass.ts';
import { templateChoices } from './domain/templates.ts';
import { MAX_BACK_CHARS } from './routes.ts';
import type { MassBilling, MassRow, RunInput } from './mass-commands.ts';
import { capChoice, filterErrors, HAND_DRAFT_REASON, MAX_HAND_DRAFTS, MAX_RUN_MATTERS, runDraftingElsewhere, RunQueuedElsewhere, runRequest } from './mass-commands.ts';
import type { Batch, ClientChoice, MassFilters } from './mass-store.ts';
import * as store from './store.ts';

const READERS: readonly Role[] = ['admin', 'billing', 'readonly'];
const WRITERS: readonly Role[] = ['admin', 'billing'];
const ID = '{[0-9a-zA-Z-]{8,64}}';
const PAGE_ROWS = 100;
/** A run's page lists its skipped and drafted matters a page at a time (a run holds up to MAX_RUN_MATTERS). */
const RUN_SKIPPED_ROWS = 500;
const RUN_DRAFTED_ROWS = 200;
const MAX_RUN_LIST_PAGE = 10_000;

type Raw = Record<string, string | string[] | File>;

const first = (v: string | string[] | File | undefined): string => (typeof v === 'string' ? v.trim() : Array.isArray(v) && typeof v[0] === 'string' ? v[0].trim() : '');
const all = (raw: Raw, name: string): string[] => {
  const v = raw[name];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string' && x.trim() !== '').map((x) => x.trim());
};

/** The form's fields (query string on GET, body on POST). */
export const FILTER_FIELDS = [
  'invoiceDate', 'upTo', 'template', 'terms', 'client', 'matter', 'responsible', 'billingTk', 'cycle', 'nextFrom', 'nextTo', 'cap', 'capAmount',
  'timeFrom', 'timeTo', 'timeTk', 'timeCap', 'timeCapAmount', 'disbFrom', 'disbTo', 'disbCode', 'expensesOnly', 'showExcluded',
] as const;
export type MassForm = Record<(typeof FILTER_FIELDS)[number], string>;
/** The mass-billing commands' field names as this form's inputs. */
const FORM_FIELD_OF: Record<string, string> = {
  clientId: 'client', nextBillingFrom: 'nextFrom', nextBillingTo: 'nextTo', responsibleTimekeeperId: 'responsible', billingTimekeeperId: 'billingTk', timeTimekeeperId: 'timeTk', billingCycle: 'cycle',
};

/** The form's fields as the page labels them, for a refusal shown above the form. */
const FORM_LABELS: Record<string, string> = {
  invoiceDate: 'Invoice date', upTo: 'Invoice up to', template: 'Bill template', terms: 'Payment terms', client: 'Client', matter: 'Matter',
  responsible: 'Responsible timekeeper', billingTk: 'Billing timekeeper', cycle: 'Billing cycle', nextFrom: 'Next billing date from',
  nextTo: 'Next billing date to', cap: 'WIP cap', capAmount: 'WIP amount', timeFrom: 'Time dated from', timeTo: 'Time dated to', timeTk: 'Time timekeeper',
  timeCap: 'Time to a cap', timeCapAmount: 'Unbilled time amount',
  disbFrom: 'Disbursements dated from', disbTo: 'Disbursements dated to', disbCode: 'Disbursement code', expensesOnly: 'Expenses only',
  showExcluded: 'Show excluded matters', scope: 'Bill', matterIds: 'Matters', filters: 'Filters', id: 'Run', paymentTermsDays: 'Payment terms',
};

/** Field errors as one sentence a clerk can read: each under the label the page shows for it. */
export function labelledErrors(errors: Record<string, string>): string {
  return Object.entries(errors).map(([k, v]) => `${FORM_LABELS[k] ?? k}: ${v}`).join('; ');
}

export interface ParsedMassForm {
  form: MassForm;
  filters: MassFilters;
  template: string | null;
  paymentTermsDays: number | null;
  errors: Record<string, string>;
}

/** The most clients the Client filter suggests at once. */
export const CLIENT_SUGGESTIONS = 20;

/** The page's form as the run's filters, with field errors under the form's names. */
export function parseMassForm(raw: Raw, today: string, currency: string, matterIdFor: (fileNumber: string) => string | null, clientFound: ClientLookup | null): ParsedMassForm {
  const form = Object.fromEntries(FILTER_FIELDS.map((k) => [k, first(raw[k])])) as MassForm;
  if (!form.invoiceDate) form.invoiceDate = today;
  if (!form.upTo) form.upTo = form.invoiceDate;
  const errors: Record<string, string> = {};
  // Seed 004's WIP cap and time "To a cap": a select (the matter's own cap, or an amount) and the amount.
  // A choice the select does not offer ("Matter", "yes") is named, not read as "Any WIP" (which would bill every matter).
  // An amount typed with the select left at "Any" is an amount filter, and the select is shown
  // so; an amount typed with "the matter's cap" chosen is refused (one of the two must go), not
  // ignored: the list must say what filtered it.
  const capOf = (choiceKey: 'cap' | 'timeCap', amountKey: 'capAmount' | 'timeCapAmount', required: string): CapFilter => {
    const choice = form[choiceKey];
    const amount = form[amountKey];
    if (choice === 'matter') {
      if (amount !== '') errors[amountKey] = 'leave it blank to use each matter\'s own cap, or choose "at or over the amount"';
      return { kind: 'matter' };
    }
    if (choice !== '' && choice !== 'amount') { errors[choiceKey] = 'must be the matter\'s cap or an amount'; return { kind: 'none' }; }
    if (choice === '' && amount === '') return { kind: 'none' };
    if (amount === '') { errors[amountKey] = required; return { kind: 'none' }; }
    form[choiceKey] = 'amount';
    const c = capChoice(amount, currency);
    if (c.error) errors[amountKey] = c.error;
    return c.cap ?? { kind: 'none' };
  };
  const cap = capOf('cap', 'capAmount', 'is required for a WIP amount');
  const timeCap = capOf('timeCap', 'timeCapAmount', 'is required for an amount of time');
  // The client by its number (or a name only one client has): typed, as a firm of thousands of
  // clients has too many to list, and looked up by the caller (clientFound: null when none typed).
  let clientId: string | undefined;
  if (form.client && clientFound) {
    if ('error' in clientFound) errors.client = clientFound.error;
    else clientId = clientFound.id;
  }
  let matterId: string | undefined;
  if (form.matter) {
    const id = matterIdFor(form.matter);
    if (!id) errors.matter = 'no matter with this file number';
    else matterId = id;
  }
  const filters: MassFilters = {
    invoiceDate: form.invoiceDate, upTo: form.upTo,
    ...(clientId ? { clientId } : {}), ...(matterId ? { matterId } : {}),
    ...(form.responsible ? { responsibleTimekeeperId: form.responsible } : {}), ...(form.billingTk ? { billingTimekeeperId: form.billingTk } : {}),
    ...(form.cycle ? { billingCycle: form.cycle } : {}), ...(form.nextFrom ? { nextBillingFrom: form.nextFrom } : {}), ...(form.nextTo ? { nextBillingTo: form.nextTo } : {}),
    ...(cap.kind !== 'none' ? { cap } : {}),
    ...(form.timeFrom || form.timeTo || form.timeTk || timeCap.kind !== 'none' ? { time: { ...(form.timeFrom ? { from: form.timeFrom } : {}), ...(form.timeTo ? { to: form.timeTo } : {}), ...(form.timeTk ? { timekeeperId: form.timeTk } : {}), ...(timeCap.kind !== 'none' ? { cap: timeCap } : {}) } } : {}),
    ...(form.disbFrom || form.disbTo || form.disbCode ? { disbursements: { ...(form.disbFrom ? { from: form.disbFrom } : {}), ...(form.disbTo ? { to: form.disbTo } : {}), ...(form.disbCode ? { code: form.disbCode.toUpperCase() } : {}) } } : {}),
    ...(form.expensesOnly === 'yes' ? { expensesOnly: true } : {}),
  };
  // A choice the checkbox does not offer is named, not read as "no filter".
  if (form.expensesOnly !== '' && form.expensesOnly !== 'yes') errors.expensesOnly = 'must be ticked (yes) or left out';
  if (form.showExcluded !== '' && form.showExcluded !== 'yes') errors.showExcluded = 'must be ticked (yes) or left out';
  const fe = filterErrors(filters, today);
  for (const [k, v] of Object.entries(fe)) errors[FORM_FIELD_OF[k] ?? k] = v;
  let paymentTermsDays: number | null = null;
  if (form.terms !== '') {
    if (!/^\d{1,4}$/.test(form.terms) || Number(form.terms) > MAX_PAYMENT_TERMS_DAYS) errors.terms = `must be a whole number of days from 0 to ${MAX_PAYMENT_TERMS_DAYS}`;
    else paymentTermsDays = Number(form.terms);
  }
  if (form.template.length > 100) errors.template = 'must be at most 100 characters';
  return { form, filters, template: form.template || null, paymentTermsDays, errors };
}

/**
 * A run's choices as the list's form (its query string): the dates, template and terms it ran
 * with and the filters it took its matters by, the client by number and the matter by file
 * number (`null`: billing no longer has it: the client is then named by its id, which the list
 * refuses; the matter is left out). The inverse of parseMassForm for what a run keeps: the list
 * after a run shows what it left.
 */
export function runListQuery(run: Pick<Batch, 'invoiceDate' | 'upTo' | 'template' | 'paymentTermsDays' | 'filters'>, names: { clientNumber: number | null; fileNumber: string | null }, currency: string): string {
  const f = (run.filters ?? {}) as Partial<MassFilters>;
  const capFields = (cap: CapFilter | undefined): [string, string] => (cap?.kind === 'matter' ? ['matter', ''] : cap?.kind === 'amount' ? ['amount', toDecimalString(cap.amountMinor, cap.currency ?? currency)] : ['', '']);
  const [cap, capAmount] = capFields(f.cap);
  const [timeCap, timeCapAmount] = capFields(f.time?.cap);
  const form: Partial<MassForm> = {
    // An up-to date that is the invoice date is left blank, so the list's follows its invoice date as it does on a fresh page.
    invoiceDate: run.invoiceDate, upTo: run.upTo === run.invoiceDate ? '' : run.upTo, template: run.template ?? '', terms: run.paymentTermsDays === null ? '' : String(run.paymentTermsDays),
    client: f.clientId && names.clientNumber !== null ? String(names.clientNumber) : '', matter: f.matterId && names.fileNumber !== null ? names.fileNumber : '',
    responsible: f.responsibleTimekeeperId ?? '', billingTk: f.billingTimekeeperId ?? '', cycle: f.billingCycle ?? '', nextFrom: f.nextBillingFrom ?? '', nextTo: f.nextBillingTo ?? '',
    cap, capAmount, timeFrom: f.time?.from ?? '', timeTo: f.time?.to ?? '', timeTk: f.time?.timekeeperId ?? '', timeCap, timeCapAmount,
    disbFrom: f.disbursements?.from ?? '', disbTo: f.disbursements?.to ?? '', disbCode: f.disbursements?.code ?? '', expensesOnly: f.expensesOnly ? 'yes' : '',
  };
  const q = new URLSearchParams(Object.entries(form).filter(([, v]) => v !== ''));
  // A client billing no longer knows by number: named by its id, which the list refuses by name rather than listing every client's matters.
  if (f.clientId && names.clientNumber === null) q.set('clientId', f.clientId);
  return q.toString();
}

export function createMassPages(deps: ModuleDeps, mass: MassBilling): Hono<AppEnv> {
  const pages = new Hono<AppEnv>();
  const today = (): string => isoDate(deps.clock.now());
  const can = (c: Context<AppEnv>) => ({ write: WRITERS.includes(c.get('user')?.role as Role) });

  /** A timekeeper's label as the filters list it (its id when the firm no longer lists it). */
  const timekeeperLabel = (tks: readonly (readonly string[])[]) => (id: string): string => tks.find((t) => t[0] === id)?.[1] ?? id;

  async function lookups() {
    const firm = await store.getFirmSettings(deps.db);
    // Every timekeeper, the inactive last and marked: a timekeeper who has left may still have unbilled time to filter by.
    const tks = await deps.db.selectFrom('billing_timekeeper').select(['id', 'initials', 'name', 'active']).orderBy('active', 'desc').orderBy('initials').limit(5000).execute();
    const cycles = await deps.db.selectFrom('billing_matter').select('billing_cycle').distinct().orderBy('billing_cycle').execute();
    // Seed 004: the disbursement code is chosen from a list: the codes on unbilled disbursements (typing one still works).
    const disbCodes = await deps.db.selectFrom('billing_wip').select('code').distinct().where('kind', '=', 'disbursement').where('matters_status', '=', 'unbilled')
      .where('code', 'is not', null).orderBy('code').limit(500).execute();
    return {
      disbCodes: disbCodes.map((r) => String(r.code)),
      currency: firm?.currency ?? 'USD', paymentTermsDays: firm?.paymentTermsDays ?? 30,
      timekeepers: tks.map((t) => [t.id, `${t.initials} ${t.name}${Number(t.active) === 1 ? '' : ' (inactive)'}`]),
      cycles: cycles.map((r) => ({ value: r.billing_cycle as string, label: cycleLabel(r.billing_cycle as string) })),
    };
  }

  /** The clients a typed Client filter names (an old link naming a client by id: that client). */
  async function clientsOf(raw: Raw): Promise<{ text: string; named: ClientChoice[] }> {
    const text = first(raw.client);
    // Part of a name is taken here: the page shows the client found (beside the field, and on the confirmation) before billing.
    if (text !== '') return { text, named: await mass.clientsNamed(text, { partial: true }) };
    const id = first(raw.clientId);
    const byId = id && isId(id) ? await mass.clientById(id) : null;
    return byId ? { text: String(byId.clientNumber), named: [byId] } : { text: id, named: [] };
  }

  async function parse(raw: Raw) {
    const lk = await lookups();
    const clients = await clientsOf(raw);
    const files = new Map<string, string | null>();
    const fileNo = first(raw.matter);
    if (fileNo) {
      const r = await deps.db.selectFrom('billing_matter').select('id').where('file_number', '=', fileNo).executeTakeFirst() as { id: string } | undefined;
      files.set(fileNo, r?.id ?? null);
    }
    // A client found by its name is carried on as its number (links, the confirmation, the run), so it stays the client listed.
    const text = clients.named.length === 1 ? String(clients.named[0]!.clientNumber) : clients.text;
    const parsed = parseMassForm({ ...raw, client: text }, today(), lk.currency, (f) => files.get(f) ?? null, text ? clientLookup(clients.named) : null);
    // A client, timekeeper, cycle, disbursement code or template the firm does not have is
    // named now, on the list as on the run (an unknown time timekeeper would list every matter
    // with its time held back).
    for (const [k, v] of Object.entries(await mass.unknownChoices(parsed.filters, parsed.template))) parsed.errors[FORM_FIELD_OF[k] ?? k] ??= v;
    return { lk: { ...lk, clientChosen: clients.named.length === 1 ? clients.named[0]! : null }, parsed };
  }

  /**
   * A row's link to the composer carries the run's choices that shape the bill (dates,
   * template, terms, the time and disbursement filters), so it opens on the bill the row
   * says will be billed (seed 001: open the bills to make last-minute changes).
   */
  const composerQuery = (form: MassForm): string => new URLSearchParams(Object.entries({
    invoiceDate: form.invoiceDate, upTo: form.upTo, template: form.template, paymentTermsDays: form.terms,
    timeFrom: form.timeFrom, timeTo: form.timeTo, tk: form.timeTk, disbFrom: form.disbFrom, disbTo: form.disbTo, disbCodes: form.disbCode,
  }).filter(([, v]) => v !== '')).toString();

  const query = (form: MassForm, extra: Record<string, string> = {}) =>
    new URLSearchParams(Object.entries({ ...form, ...extra }).filter(([, v]) => v !== '')).toString();

  /** The matters ticked on the list (ids only, each once): at most a page of the list and a page of the excluded. */
  const tickedIds = (raw: Raw): string[] => [...new Set(all(raw, 'matterId').filter(isId))].slice(0, 2 * PAGE_ROWS);
  /** The drafts changed by hand from this list's composer links that the request names (`handDraft`): ids only, each once, at most MAX_HAND_DRAFTS. */
  const handDraftIds = (raw: Raw): string[] => [...new Set(all(raw, 'handDraft').filter(isId))].slice(0, MAX_HAND_DRAFTS);
  /** Of those, the ones still drafts in no run (what a run can take in), as the drafts list shows them. */
  const handDraftsOf = async (ids: readonly string[]) =>
    (ids.length ? (await mass.listDrafts({ ids, sort: 'matter', limit: MAX_HAND_DRAFTS })).rows.filter((d) => d.batchId === null) : []);
  /** The same, as a query to carry on (the list's links and forms, a composer opened from it). */
  const handQuery = (ids: readonly string[], off: readonly string[] = []): string => [...ids.map((id) => `handDraft=${id}`), ...off.map((id) => `handOff=${id}`)].join('&');
  /**
   * Drafts changed by hand listed and left unticked (`handOff`, or `handListed` by the list's run
   * form and not ticked): listed again unticked (the confirmation's Cancel, a refused run), not dropped.
   */
  const handOffIds = (raw: Raw): string[] => {
    const ticked = new Set(handDraftIds(raw));
    return [...new Set([...all(raw, 'handOff'), ...all(raw, 'handListed')].filter((id) => isId(id) && !ticked.has(id)))].slice(0, MAX_HAND_DRAFTS);
  };
  /** The list's page as the address or a form names it (digits only), else the first. */
  const pageOf = (raw: Raw): number => { const p = first(raw.page); return /^\d{1,5}$/.test(p) ? Math.max(1, Math.min(10_000, Number(p))) : 1; };
  /** The up-to date as the clerk typed it: left blank (the list's run form says so), it follows the invoice date. */
  const upToTypedOf = (raw: Raw, form: MassForm): string => (first(raw.upTo) && first(raw.upToBlank) !== 'yes' ? form.upTo : '');

  async function listContext(c: Context<AppEnv>, raw: Raw, extra: Record<string, unknown> = {}) {
    const { lk, parsed } = await parse(raw);
    let pageNo = pageOf(raw);
    let list: Awaited<ReturnType<MassBilling['eligible']>> = { total: 0, rows: [], totals: { wip: [] } };
    let previews = new Map<string, unknown>();
    if (Object.keys(parsed.errors).length === 0) {
      list = await mass.eligible(parsed.filters, { limit: PAGE_ROWS, offset: (pageNo - 1) * PAGE_ROWS });
      // A page past the end (an old link, fewer matters now): the last page.
      const last = Math.max(1, Math.ceil(list.total / PAGE_ROWS));
      if (pageNo > last) {
        pageNo = last;
        list = await mass.eligible(parsed.filters, { limit: PAGE_ROWS, offset: (pageNo - 1) * PAGE_ROWS });
      }
      previews = await mass.previewRows(list.rows, parsed.filters, runRequest(parsed, parsed.filters));
    }
    const rows = list.rows.map((r) => ({ ...r, preview: previews.get(r.matterId) ?? null }));
    // Matters the address names as ticked (the confirmation's Cancel, a refused Bill selected): ticked again where listed.
    const ticked = tickedIds(raw);
    // Matters excluded from mass billing, listed on request to be ticked and billed with the others (Bill selected; Bill all leaves them out).
    let excluded: (MassRow & { preview: unknown })[] = [];
    let excludedTotal = 0;
    if (Object.keys(parsed.errors).length === 0 && parsed.form.showExcluded === 'yes') {
      const found = await mass.excludedRows(parsed.filters, { limit: PAGE_ROWS });
      const excludedPreviews = await mass.previewRows(found.rows, parsed.filters, runRequest(parsed, parsed.filters));
      excluded = found.rows.map((r) => ({ ...r, preview: excludedPreviews.get(r.matterId) ?? null }));
      excludedTotal = found.total;
    }
    // A matter named in the Matter filter and not listed: why, as the lookup would say (no need to type it again there).
    const matterWhy = Object.keys(parsed.errors).length === 0 && parsed.form.matter && list.total === 0
      ? await mass.whyNot(parsed.filters, { fileNumber: parsed.form.matter }) : null;
    // The up-to date as the clerk typed it: left blank, it follows the invoice date (a month-end
    // invoice date changed alone is not refused for an up-to date the page filled in with today).
    const upToTyped = upToTypedOf(raw, parsed.form);
    // Drafts made from this list's composer links (seed 001's last-minute changes): still drafts
    // in no run, they are listed to be taken into the run as they are.
    const handOff = handOffIds(raw);
    const handDrafts = (await handDraftsOf([...handDraftIds(raw), ...handOff].slice(0, MAX_HAND_DRAFTS)));
    const handTicked = handDrafts.filter((d) => !handOff.includes(d.billId)).map((d) => d.billId);
    const handUnticked = handDrafts.filter((d) => handOff.includes(d.billId)).map((d) => d.billId);
    // More named than one run takes (a clerk who changed over MAX_HAND_DRAFTS bills by hand from one list): said, not dropped silently.
    const handDraftsOver = Math.max(0, new Set(all(raw, 'handDraft').filter(isId)).size - MAX_HAND_DRAFTS);
    // Drafts in no run that this list does not name (made in the composer, or the list opened
    // afresh from the menu): said, with a link listing them to take in, else Bill all leaves them out unseen.
    const loose = await mass.draftsInNoRun(MAX_HAND_DRAFTS);
    const named = new Set(handDrafts.map((d) => d.billId));
    // As many as the run has room for beside those named (a run takes MAX_HAND_DRAFTS).
    const looseUnlisted = loose.ids.filter((id) => !named.has(id)).slice(0, Math.max(0, MAX_HAND_DRAFTS - named.size));
    const handQs = handQuery(handTicked, handUnticked);
    const listQs = query({ ...parsed.form, upTo: upToTyped });
    // The page too: saving a draft from page 3 comes back to page 3.
    const back = [listQs, pageNo > 1 ? `page=${pageNo}` : '', handQs].filter(Boolean).join('&');
    // Those listed keep their ticks (one left unticked stays unticked); the loose ones come ticked.
    const looseQs = [listQs, handQuery([...handTicked, ...looseUnlisted].slice(0, Math.max(0, MAX_HAND_DRAFTS - handUnticked.length)), handUnticked)].filter(Boolean).join('&');
    return {
      excluded, excludedTotal, ticked, handDrafts, handUnticked, handQs, handDraftsOver, maxHandDrafts: MAX_HAND_DRAFTS,
      loose: { total: Math.max(0, loose.total - named.size), listable: looseUnlisted.length, qs: looseQs },
      ...lk, form: parsed.form, errors: parsed.errors, rows, total: list.total, totals: list.totals, page: pageNo, upToTyped, matterWhy,
      pages: Math.max(1, Math.ceil(list.total / PAGE_ROWS)), qs: [listQs, handQs].filter(Boolean).join('&'), runId: newId(deps.clock), can: can(c),
      batches: await mass.listBatches({ limit: 10 }), fields: FILTER_FIELDS, fieldLabels: FORM_LABELS,
      templateOptions: templateChoices(await mass.billTemplateNames(), parsed.form.template, "Each matter's own"),
      composeQs: `${composerQuery(parsed.form)}&back=${encodeURIComponent(back)}`, backMaxChars: MAX_BACK_CHARS,
      // "Find a client" (without JavaScript): the list's other choices, to come back to with the client found.
      clientBack: [query({ ...parsed.form, upTo: upToTyped, client: '' }), handQs].filter(Boolean).join('&'), ...extra,
    };
  }

  /**
   * The form pages carry a run id minted for them: never kept by the browser, so going Back
   * fetches the page again with a fresh run id (a kept page would send its used id again).
   */
  const noStore = (c: Context<AppEnv>): void => { c.header('Cache-Control', 'no-store'); };

  pages.get('/', allow(READERS), async (c) => {
    noStore(c);
    // Each field once, but every draft changed by hand and every matter ticked the address names (c.req.query keeps a repeated field's first value only).
    const ctx = await listContext(c, { ...c.req.query(), handDraft: c.req.queries('handDraft') ?? [], handOff: c.req.queries('handOff') ?? [], matterId: c.req.queries('matterId') ?? [] } as Raw);
    // Choices that cannot be read are named on the page (422), not listed as if they were not there.
    return render(c, 'billing/mass.njk', ctx, Object.keys(ctx.errors).length > 0 ? 422 : 200);
  });

  /**
   * The Client filter's suggestions: the clients whose number starts with, or whose name
   * holds, the text typed. For htmx, the options of the field's datalist; without
   * JavaScript, a page linking each to the list filtered by it.
   */
  pages.get('/clients', allow(READERS), async (c) => {
    const text = first(c.req.query('client')).slice(0, 200);
    const clients = await mass.clientsMatching(text, CLIENT_SUGGESTIONS);
    // The list's other choices (dates, filters) to go back with: only the form's own fields, the client left out.
    const from = new URLSearchParams(first(c.req.query('back')).slice(0, 8_000));
    const back = new URLSearchParams([...from].filter(([k]) => k !== 'client' && ((FILTER_FIELDS as readonly string[]).includes(k) || k === 'handDraft'))).toString();
    return render(c, isHtmx(c) ? 'layout/_client_options.njk' : 'billing/mass_clients.njk', { text, clients, max: CLIENT_SUGGESTIONS, back });
  });

  /** Why is a matter not on the list? */
  pages.get('/why', allow(READERS), async (c) => {
    const raw = c.req.query() as Raw;
    const { lk, parsed } = await parse({ ...raw, matter: '' });
    const fileNumber = first(raw.lookup);
    const found = fileNumber && Object.keys(parsed.errors).length === 0 ? await mass.whyNot(parsed.filters, { fileNumber }) : null;
    // Left out only for its exclusion, with excluded matters shown: whether the page lists it (it lists the first PAGE_ROWS).
    const excludedListed = found?.excludedOnly && parsed.form.showExcluded === 'yes'
      ? (await mass.excludedRows(parsed.filters, { limit: PAGE_ROWS })).rows.some((r) => r.matterId === found.row.matterId) : false;
    const ctx = { ...lk, form: parsed.form, errors: parsed.errors, fieldLabels: FORM_LABELS, lookup: fileNumber, found, excludedListed, excludedShown: PAGE_ROWS, qs: query(parsed.form) };
    // Choices that cannot be read (a date like 2026-02-30) are named, not answered as "no such matter".
    return render(c, isHtmx(c) ? 'billing/_mass_why.njk' : 'billing/mass_why.njk', ctx, Object.keys(parsed.errors).length > 0 ? 422 : 200);
  });

  /** Bill all / Bill selected: first a confirmation, then one run. */
  // The confirmation's address opened again (history, a copied link): the mass billing page, not "no page at this address".
  pages.get('/runs', allow(READERS), (c) => c.redirect('/billing/mass', 303));

  pages.post('/runs', allow(WRITERS), async (c) => {
    noStore(c);
    const raw = await c.req.parseBody({ all: true }) as Raw;
    // The confirmation's Cancel: the list as it was left (its page, the matters and drafts ticked
    // there, the up-to date blank if it was), from the form's fields: no address holds that many ids.
    if (first(raw.cancel) === 'yes') {
      const ctx = await listContext(c, raw);
      return render(c, 'billing/mass.njk', ctx, Object.keys(ctx.errors).length > 0 ? 422 : 200);
    }
    const { lk, parsed } = await parse(raw);
    const runId = first(raw.runId) || newId(deps.clock);
    const scope = first(raw.scope);
    // Each matter once (a repeated field is one matter ticked), as the run takes them.
    const selected = scope === 'selected' ? [...new Set(all(raw, 'matterId'))] : undefined;
    // Drafts changed by hand, ticked to take into the run (all of them unless unticked).
    const hand = handDraftIds(raw);
    if (Object.keys(parsed.errors).length) return render(c, 'billing/mass.njk', await listContext(c, raw, { flash: null }), 422);
    // Bill all or Bill selected, nothing else: an unknown scope is not read as "all".
    if (scope !== 'all' && scope !== 'selected') {
      const why = scope === '' ? 'is required (all or selected)' : 'must be all or selected';
      return render(c, 'billing/mass.njk', await listContext(c, raw, { actionError: labelledErrors({ scope: why }), errors: { scope: why } }), 422);
    }
    if (selected && selected.length === 0 && hand.length === 0) {
      return render(c, 'billing/mass.njk', await listContext(c, raw, { actionError: 'Tick the matters to bill, or use Bill all' }), 422);
    }
    // More than one run takes: refused before any id is looked up (the run would refuse it too).
    if (selected && selected.length > MAX_RUN_MATTERS) {
      const why = `at most ${MAX_RUN_MATTERS} matters in one run`;
      return render(c, 'billing/mass.njk', await listContext(c, raw, { actionError: labelledErrors({ matterIds: why }), errors: { matterIds: why } }), 422);
    }
    // Ids billing has no copy of are refused before the confirmation, listing them (the run would refuse them too).
    if (selected) {
      const why = await mass.unknownMattersRefusal(selected);
      if (why) return render(c, 'billing/mass.njk', await listContext(c, raw, { actionError: labelledErrors({ matterIds: why }), errors: { matterIds: why } }), 422);
    }
    const input: RunInput = {
      id: runId, invoiceDate: parsed.filters.invoiceDate, upTo: parsed.filters.upTo, template: parsed.template, paymentTermsDays: parsed.paymentTermsDays,
      filters: (({ invoiceDate: _i, upTo: _u, ...rest }) => rest)(parsed.filters), ...(selected ? { matterIds: selected } : {}),
      ...(hand.length ? { handDraftIds: hand } : {}),
    };
    /** A refused run: the list again (with a fresh run id), the reason above it, and a link to the earlier run its id named. */
    const refusedRun = async (e: unknown): Promise<Response> => {
      if (!(e instanceof HttpError) || (e.status !== 409 && e.status !== 422)) throw e;
      const fields = Object.fromEntries(Object.entries(e.fields).map(([k, v]) => [FORM_FIELD_OF[k] ?? k, v]));
      const usedRun = e.status === 409 && fields.id ? runId : null;
      // Every matter queued by a run started meanwhile (another click, tab or process): a link to it.
      const queuedRun = e instanceof RunQueuedElsewhere ? e.runId : null;
      return render(c, 'billing/mass.njk', await listContext(c, raw, { actionError: Object.keys(fields).length ? labelledErrors(fields) : e.message, errors: { ...parsed.errors, ...fields }, usedRun, queuedRun }), e.status);
    };
    // Bill all with nothing eligible now (a page or tab kept from before another run billed them): no empty run, no "Bill 0 matters?".
    const nothingEligible = async () => !selected && hand.length === 0 && (await mass.eligible(parsed.filters, { limit: 0 })).total === 0;
    const refusedEmpty = async () => render(c, 'billing/mass.njk', await listContext(c, raw, {
      actionError: 'No matter is eligible to bill now with these choices (another run or a clerk may have billed them since this page was loaded): nothing was created',
    }), 409);
    if (first(raw.confirm) !== 'yes') {
      // A run id that is no run id (the run would refuse it): refused before the confirmation, not after it.
      if (!/^[0-9a-zA-Z-]{8,64}$/.test(runId)) return refusedRun(invalid({ id: 'must be 8 to 64 letters, digits or dashes: reload the page' }));
      // A run id already used for other choices (the list page kept by the browser, Back): refused before the confirmation.
      try { await mass.checkRunId(input); } catch (e) { return refusedRun(e); }
      const count = selected ? selected.length : (await mass.eligible(parsed.filters, { limit: 0 })).total;
      const handDrafts = await handDraftsOf(hand);
      if (count === 0 && handDrafts.length === 0) return refusedEmpty();
      const itemFilters = itemFiltersText(parsed.filters, timekeeperLabel(lk.timekeepers));
      const matterFilters = selected ? null : await mass.matterFiltersOf(parsed.filters);
      // The matters picked, named (the first 20): the clerk sees whose bills these are.
      const picked = selected ? await mass.matterLabels(selected, 20) : null;
      // Drafts the firm's period rule would refuse to approve as dated: said before they are made.
      const periods = await mass.periodNotes();
      const periodRefusal = periods.refusalOf(parsed.form.invoiceDate);
      // A draft changed by hand keeps its own date: each said, as the run's date is.
      const handRefused = handDrafts.flatMap((h) => { const why = periods.refusalOf(h.invoiceDate); return why ? [{ fileNumber: h.fileNumber, invoiceDate: h.invoiceDate, why }] : []; });
      // Cancel posts the form back (Cancel below): the list as it was left, its page and the matters and drafts ticked there.
      // The crumb links to the list with the choices and the drafts changed by hand (those left unticked still listed, unticked).
      const upToBlank = upToTypedOf(raw, parsed.form) === '';
      const handOff = handOffIds(raw);
      const crumbQs = [query({ ...parsed.form, upTo: upToBlank ? '' : parsed.form.upTo }), handQuery(handDrafts.map((d) => d.billId), handOff)].filter(Boolean).join('&');
      // Kept by the browser (unlike the list): Back from the run page shows this confirmation again rather than asking to
      // send the form again. Its run id is this run's, so creating from it again is the same run (nothing billed twice).
      c.header('Cache-Control', 'private, no-cache');
      return render(c, 'billing/mass_confirm.njk', {
        ...lk, form: parsed.form, fields: FILTER_FIELDS, runId, selected: selected ?? [], scope: selected ? 'selected' : 'all', count, itemFilters, matterFilters, picked, handDrafts, periodRefusal, handRefused, qs: crumbQs,
        page: pageOf(raw), upToBlank, handOff, ticked: selected ? [] : tickedIds(raw),
      });
    }
    // A run id already used is the same run again (a second click): only a new one is checked for being empty.
    if (!(await mass.findBatch(runId)) && await nothingEligible()) return refusedEmpty();
    try {
      const run = await mass.createRun(c.get('command'), input);
      if (run.status !== 'done') mass.startRun(c.get('command'), run.id, (err) => deps.logger.error({ err, batchId: run.id }, 'bill run failed'));
      return redirectAfterPost(c, `/billing/mass/runs/${run.id}`);
    } catch (e) {
      return refusedRun(e);
    }
  });

  async function runContext(c: Context<AppEnv>, id: string) {
    const run = await mass.findBatch(id);
    if (!run) throw notFound('Bill run');
    // The run's lists a page at a time (?skipped=N, ?drafted=N): a run over thousands of matters lists them all.
    const pageErrors: Record<string, string> = {};
    const pageOf = (name: 'skipped' | 'drafted'): number => {
      const v = c.req.query(name);
      if (v === undefined || v === '') return 1;
      if (!/^[1-9][0-9]{0,4}$/.test(v) || Number(v) > MAX_RUN_LIST_PAGE) { pageErrors[name] = `must be a page number from 1 to ${MAX_RUN_LIST_PAGE}`; return 1; }
      return Number(v);
    };
    const asked = { skipped: pageOf('skipped'), drafted: pageOf('drafted') };
    if (Object.keys(pageErrors).length) throw invalid(pageErrors);
    // A page past the end (an old link, or a run re-read) is the last page, as the mass list does.
    const lastOf = (n: number, rows: number) => Math.max(1, Math.ceil(n / rows));
    const page = { skipped: Math.min(asked.skipped, lastOf(run.skippedCount, RUN_SKIPPED_ROWS)), drafted: Math.min(asked.drafted, lastOf(run.draftedCount, RUN_DRAFTED_ROWS)) };
    const skipped = await mass.batchRows(id, { state: 'skipped', limit: RUN_SKIPPED_ROWS, offset: (page.skipped - 1) * RUN_SKIPPED_ROWS });
    const drafted = await mass.batchRows(id, { state: 'drafted', limit: RUN_DRAFTED_ROWS, offset: (page.drafted - 1) * RUN_DRAFTED_ROWS });
    const settled = run.draftedCount + run.skippedCount;
    const percent = run.matterCount === 0 ? 100 : Math.floor((settled * 100) / run.matterCount);
    // Stopped (Resume offered): not being drafted here, nor by another server process whose heartbeat is fresh.
    const stalled = (run.status === 'running' || run.status === 'pending' || run.status === 'failed') && !mass.isRunningHere(id) && !runDraftingElsewhere(run, deps.clock.now().getTime());
    const currency = (await store.getFirmSettings(deps.db))?.currency ?? 'USD';
    const pager = (name: 'skipped' | 'drafted', rows: number, total: number) => {
      const other = name === 'skipped' ? 'drafted' : 'skipped';
      const link = (n: number) => {
        const q = new URLSearchParams();
        if (page[other] > 1) q.set(other, String(page[other]));
        if (n > 1) q.set(name, String(n));
        const qs = q.toString();
        return `/billing/mass/runs/${run.id}${qs ? `?${qs}` : ''}#run-${name}-list`;
      };
      const from = (page[name] - 1) * rows;
      return {
        from: total === 0 ? 0 : Math.min(from + 1, total), to: Math.min(from + rows, total), total,
        prev: page[name] > 1 ? link(page[name] - 1) : null, next: from + rows < total && page[name] < MAX_RUN_LIST_PAGE ? link(page[name] + 1) : null,
      };
    };
    // Polling keeps the pages the clerk is on.
    const here = new URLSearchParams();
    for (const k of ['skipped', 'drafted'] as const) if (page[k] > 1) here.set(k, String(page[k]));
    return {
      run, skipped, drafted, percent, settled, stalled, live: run.status === 'running' || run.status === 'pending', can: can(c), currency,
      skippedPages: pager('skipped', RUN_SKIPPED_ROWS, run.skippedCount), draftedPages: pager('drafted', RUN_DRAFTED_ROWS, run.draftedCount),
      pollUrl: `/billing/mass/runs/${run.id}${here.toString() ? `?${here.toString()}` : ''}`, handDraftReason: HAND_DRAFT_REASON,
    };
  }

  /** What the run's page says above its progress (not polled): the filters it ran with, and the list as it chose from it. */
  async function runHeading(run: Batch) {
    const lk = await lookups();
    const itemFilters = itemFiltersText(run.filters as Parameters<typeof itemFiltersText>[0], timekeeperLabel(lk.timekeepers));
    // The matters it took (a run of picked matters names them in its rows instead).
    const matterFilters = run.mode === 'all' ? await mass.matterFiltersOf(run.filters as MassFilters) : null;
    // The list as this run chose from it (what it left, once it is done).
    const rf = (run.filters ?? {}) as Partial<MassFilters>;
    const runClient = rf.clientId ? await mass.clientById(rf.clientId) : null;
    const runMatter = rf.matterId ? await deps.db.selectFrom('billing_matter').select('file_number').where('id', '=', rf.matterId).executeTakeFirst() as { file_number: string } | undefined : undefined;
    const listLink = `/billing/mass?${runListQuery(run, { clientNumber: runClient?.clientNumber ?? null, fileNumber: runMatter?.file_number ?? null }, lk.currency)}`;
    return { itemFilters, matterFilters, listLink };
  }

  pages.get(`/runs/:id${ID}`, allow(READERS), async (c) => {
    const ctx = await runContext(c, c.req.param('id'));
    // Polled (htmx): the progress only.
    if (isHtmx(c)) return render(c, 'billing/_mass_run.njk', ctx);
    return render(c, 'billing/mass_run.njk', { ...ctx, ...await runHeading(ctx.run) });
  });

  /** Resume a run that stopped (the server restarted mid-run, or it failed). */
  pages.post(`/runs/:id${ID}/resume`, allow(WRITERS), async (c) => {
    const id = c.req.param('id');
    const run = await mass.findBatch(id);
    if (!run) throw notFound('Bill run');
    // Being drafted by another server process (its heartbeat is fresh): nothing to resume; the page says it goes on.
    if (run.status !== 'done' && !runDraftingElsewhere(run, deps.clock.now().getTime())) mass.startRun(c.get('command'), id, (err) => deps.logger.error({ err, batchId: id }, 'bill run failed'));
    return c.redirect(`/billing/mass/runs/${id}`, 303);
  });

  return pages;
}

