/**
 * The billing pages, mounted at /billing: the single-matter bill composer (choose dates and
 * filters, see the lines grouped by timekeeper and charge type, write groups up or down,
 * toggle items, add ad hoc lines, discount and interest; totals recalculate through an
 * htmx preview that saves nothing), a matter's bills, and a bill page with the actions
 * allowed now (and why the others are not).
 *
 * Forms work without JavaScript (303 after success; 409/422 re-render with the reason) and
 * carry `_csrf`. Money is typed as decimal text and parsed exactly with parseAmount.
 */
import { Hono } from 'hono';
import type { Context } from 'hono';
import { isoDate } from '../../shared/clock.ts';
import { formatMoney, MoneyParseError, parseAmount, toDecimalString } from '../../shared/money.ts';
import { HttpError, invalid, notFound } from '../../shared/web/errors.ts';
import { allow } from '../../shared/web/guard.ts';
import type { ModuleDeps } from '../../shared/web/module.ts';
import { isHtmx, redirectAfterPost, render } from '../../shared/web/render.ts';
import type { AppEnv, Role } from '../../shared/web/types.ts';
import type { Bill } from './bill-store.ts';
import type { BillingCommands, Composition } from './commands.ts';
import { isCalendarDate, MAX_ADHOC_DESCRIPTION_CHARS, MAX_PAYMENT_TERMS_DAYS } from './domain/lifecycle.ts';
import { approvalPeriodNotes, ledesExportsSince, writtenOffMinor } from './balances.ts';
import type { BillAction, BillRequest, Verdict } from './domain/lifecycle.ts';
import { missingTemplate, templateChoices } from './domain/templates.ts';
import type { BillLineData } from './events.ts';
import type { MatterCopy, TimekeeperCopy, WipCopy } from './store.ts';
import { earlierPdfs, hasStoredPdf, manualEmails } from './production-store.ts';
import { manualEmailsOfCycle } from './domain/production.ts';
import { everyCycleFeeOnBill } from './domain/mass.ts';
import { createBillingReads } from './reads.ts';

const READERS: readonly Role[] = ['admin', 'billing', 'readonly'];
const WRITERS: readonly Role[] = ['admin', 'billing'];
/** Record ids are UUIDs. */
const ID = '{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}}';
/**
 * The longest mass billing list address (back) a composer returns to: its filters and up to
 * MAX_HAND_DRAFTS drafts changed by hand (47 characters each), and the boxes ticked (the list's
 * page sets its links' back to it, public/app.js).
 */
export const MAX_BACK_CHARS = 8_000;

type Raw = Record<string, string | string[] | File>;
type Errors = Record<string, string>;

const STATUS_LABELS: Record<string, string> = { draft: 'Draft', approved: 'Approved', finalised: 'Finalised', deleted: 'Deleted' };
const KIND_LABELS: Record<string, string> = {
  time: 'Time', disbursement: 'Disbursement', fixed_charge: 'Fixed charge', fixed_fee: 'Fixed fee', quote_fee: 'As quoted',
  adhoc_fee: 'Ad hoc fee', adhoc_disbursement: 'Ad hoc disbursement', discount: 'Discount', interest: 'Interest',
};
/** The actions worth explaining for each status (others are plainly not for it). */
const RELEVANT: Record<string, BillAction[]> = {
  draft: ['approve', 'delete'], approved: ['finalise', 'revert', 'delete'], finalised: ['redraft', 'delete'], deleted: [],
};
const ACTION_LABELS: Record<string, string> = { approve: 'Approve', revert: 'Revert to draft', finalise: 'Finalise', redraft: 'Re-draft', delete: 'Delete' };

const str = (raw: Raw, name: string): string => {
  const v = raw[name];
  return typeof v === 'string' ? v.trim() : Array.isArray(v) && typeof v[0] === 'string' ? v[0].trim() : '';
};
const all = (raw: Raw, name: string): string[] => {
  const v = raw[name];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string' && x.trim() !== '').map((x) => x.trim());
};

/** What the composer form says: dates, the clerk's choices, and the errors in them. */
interface ComposerForm {
  billId: string | null;
  version: number | null;
  invoiceDate: string;
  upTo: string;
  request: BillRequest;
  /** The form's values as typed, to show them again. */
  fv: Record<string, string>;
  /** Every ad hoc row typed (with the blank one); timekeeperId: the fee's timekeeper ('' : an adjustment). */
  adHoc: { kind: string; description: string; amount: string; taxCode: string; timekeeperId: string }[];
  errors: Errors;
}

function money(errors: Errors, name: string, text: string, currency: string): number | undefined {
  if (text === '') return undefined;
  try { return parseAmount(text, currency); } catch (e) {
    if (e instanceof MoneyParseError) { errors[name] = e.message.replace(/^"[^"]*" /, ''); return undefined; }
    throw e;
  }
}

const DISCOUNT_KINDS = ['matter', 'none', 'percentage', 'fixed'] as const;
const VERSION_MALFORMED = 'must be the version number the page showed (a whole number from 1): reload the bill and try again';
const VERSION_MISSING = 'is required (the version number the page showed): reload the bill and try again';

/** A bill version as a form sends it: a whole number from 1, else null. */
function versionNumber(text: string): number | null {
  if (!/^\d{1,15}$/.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

/**
 * A bill page's action form: the version the page showed (required, a version number) and,
 * for the hold form, "yes" or "no". A form without its version, or with a field that does
 * not parse, is refused naming each such field (422), so it can never act on a bill another
 * tab has changed meanwhile, nor read a choice it does not offer as "yes".
 */
export function billActionForm(raw: Raw, opts: { hold?: boolean } = {}): { version: number; onHold: boolean } {
  const errors: Errors = {};
  const text = str(raw, 'version');
  const version = versionNumber(text);
  if (version === null) errors.version = text === '' ? VERSION_MISSING : VERSION_MALFORMED;
  const hold = str(raw, 'onHold');
  if (opts.hold && hold !== 'yes' && hold !== 'no') errors.onHold = hold === '' ? 'is required (yes or no)' : 'must be yes or no';
  if (Object.keys(errors).length) throw invalid(errors, Object.entries(errors).map(([k, v]) => `${k} ${v}`).join('; '));
  return { version: version!, onHold: hold === 'yes' };
}

function percentBp(errors: Errors, name: string, text: string): number {
  const m = /^(\d{1,3})(?:\.(\d{1,2}))?$/.exec(text);
  if (!m) { errors[name] = 'must be a percentage such as 12.5'; return 0; }
  const bp = Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
  if (bp > 10_000) errors[name] = 'must be at most 100';
  return bp;
}

/** The composer form as the clerk's BillRequest (field errors under the form's input names). */
export function composerForm(raw: Raw, currency: string): ComposerForm {
  const errors: Errors = {};
  const fv: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) if (k !== '_csrf' && typeof v === 'string') fv[k] = v;
  const request: BillRequest = {};
  const time = { from: str(raw, 'timeFrom') || undefined, to: str(raw, 'timeTo') || undefined, timekeeperIds: all(raw, 'tk') };
  const disb = { from: str(raw, 'disbFrom') || undefined, to: str(raw, 'disbTo') || undefined, codes: str(raw, 'disbCodes').split(/[\s,]+/).filter(Boolean).map((c) => c.toUpperCase()) };
  const filters: NonNullable<BillRequest['filters']> = {};
  const noTime = str(raw, 'noTime');
  if (noTime !== '' && noTime !== 'yes') errors.noTime = 'must be yes or left unticked';
  if (time.from || time.to || time.timekeeperIds.length || noTime === 'yes') {
    filters.time = { ...(time.from ? { from: time.from } : {}), ...(time.to ? { to: time.to } : {}), ...(time.timekeeperIds.length ? { timekeeperIds: time.timekeeperIds } : {}), ...(noTime === 'yes' ? { none: true } : {}) };
  }
  if (disb.from || disb.to || disb.codes.length) filters.disbursements = { ...(disb.from ? { from: disb.from } : {}), ...(disb.to ? { to: disb.to } : {}), ...(disb.codes.length ? { codes: disb.codes } : {}) };
  if (filters.time || filters.disbursements) request.filters = filters;
  fv.tk = time.timekeeperIds.join(',');
  // Toggles: every item shown is listed (item); the ticked ones come back (include).
  const shown = all(raw, 'item');
  const included = new Set(all(raw, 'include'));
  const kept = new Set(all(raw, 'excluded'));
  const excluded = [...new Set([...shown.filter((id) => !included.has(id)), ...[...kept].filter((id) => !shown.includes(id))])];
  if (excluded.length) request.excludedIds = excluded;
  const writeTo: { timekeeper: Record<string, number>; chargeType: Record<string, number> } = { timekeeper: {}, chargeType: {} };
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string' || v.trim() === '') continue;
    const m = /^wt_(tk|ct)_(.+)$/.exec(k);
    if (!m) continue;
    const amount = money(errors, k, v.trim(), currency);
    if (amount !== undefined && amount < 0) errors[k] = 'must be an amount of zero or more (a write-down goes no lower than nothing)';
    else if (amount !== undefined) writeTo[m[1] === 'tk' ? 'timekeeper' : 'chargeType'][m[2]!] = amount;
  }
  if (Object.keys(writeTo.timekeeper).length || Object.keys(writeTo.chargeType).length) request.writeTo = writeTo;
  const ff = money(errors, 'fixedFee', str(raw, 'fixedFee'), currency);
  if (ff !== undefined) request.fixedFeeAmountMinor = ff;
  // A choice the form does not offer is refused at its field, never read as the default.
  const choice = (name: string, allowed: readonly string[]): string => {
    const v = str(raw, name);
    if (v !== '' && !allowed.includes(v)) errors[name] = `must be one of: ${allowed.join(', ')}`;
    return v;
  };
  if (choice('applyQuote', ['yes', 'no']) === 'no') request.applyQuote = false;
  const dk = choice('discountKind', DISCOUNT_KINDS);
  // A percentage or amount typed is checked whatever the kind chosen: a malformed one is not quietly dropped.
  const percentText = str(raw, 'discountPercent');
  const percent = percentText !== '' || dk === 'percentage' ? percentBp(errors, 'discountPercent', percentText) : 0;
  const amountText = str(raw, 'discountAmount');
  const amount = money(errors, 'discountAmount', amountText, currency);
  // A valid-until date typed is checked whatever the kind too; with "as the matter says" or none it would have no discount to time.
  const validText = str(raw, 'discountValidUntil');
  if (validText !== '' && !isCalendarDate(validText)) errors.discountValidUntil = 'must be a date (YYYY-MM-DD)';
  else if (validText !== '' && dk !== 'percentage' && dk !== 'fixed') errors.discountValidUntil = 'applies to a percentage or fixed discount chosen here: choose one, or clear the date';
  if (dk === 'none') request.discount = { kind: 'none', percentBasisPoints: 0, amountMinor: 0, validUntil: null };
  else if (dk === 'percentage' || dk === 'fixed') {
    const validUntil = str(raw, 'discountValidUntil') || null;
    request.discount = dk === 'percentage'
      ? { kind: 'percentage', percentBasisPoints: percent, amountMinor: 0, validUntil }
      : { kind: 'fixed', percentBasisPoints: 0, amountMinor: amount ?? (errors.discountAmount ??= 'is required for a fixed discount', 0), validUntil };
  }
  const interest = money(errors, 'interest', str(raw, 'interest'), currency);
  if (interest !== undefined) request.interestMinor = interest;
  const ip = choice('interestByPolicy', ['yes', 'no']);
  if (ip === 'yes' || ip === 'no') request.interestByPolicy = ip === 'yes';
  const ar = choice('applyRetainer', ['yes', 'no']);
  if (ar === 'yes' || ar === 'no') request.applyRetainer = ar === 'yes';
  // This bill's template and terms (blank: the matter's template, the firm's terms).
  const template = str(raw, 'template');
  if (template !== '') request.template = template;
  const terms = str(raw, 'paymentTermsDays');
  if (terms !== '') {
    if (!/^\d{1,4}$/.test(terms) || Number(terms) > MAX_PAYMENT_TERMS_DAYS) errors.paymentTermsDays = `must be a whole number of days from 0 to ${MAX_PAYMENT_TERMS_DAYS}`;
    else request.paymentTermsDays = Number(terms);
  }
  const adHocRows: ComposerForm['adHoc'] = [];
  const adHoc: NonNullable<BillRequest['adHoc']> = [];
  for (let i = 0; i < 200; i++) {
    if (!(`adhoc_desc_${i}` in raw) && !(`adhoc_amount_${i}` in raw)) break;
    const row = {
      kind: str(raw, `adhoc_kind_${i}`) || 'fee', description: str(raw, `adhoc_desc_${i}`), amount: str(raw, `adhoc_amount_${i}`), taxCode: str(raw, `adhoc_tax_${i}`),
      // The fee's timekeeper (it counts as their work in the fee allocation); blank: an adjustment split by the matter's rule.
      timekeeperId: str(raw, `adhoc_tk_${i}`),
    };
    if (row.description === '' && row.amount === '') continue;
    const n = adHocRows.length;
    adHocRows.push(row);
    if (row.kind !== 'fee' && row.kind !== 'disbursement') errors[`adhoc_kind_${n}`] = 'must be one of: fee, disbursement';
    if (row.description === '') errors[`adhoc_desc_${n}`] = 'is required';
    else if (row.description.length > MAX_ADHOC_DESCRIPTION_CHARS) errors[`adhoc_desc_${n}`] = `must be at most ${MAX_ADHOC_DESCRIPTION_CHARS} characters`;
    const amount = row.amount === '' ? (errors[`adhoc_amount_${n}`] = 'is required', 0) : money(errors, `adhoc_amount_${n}`, row.amount, currency) ?? 0;
    const kind = row.kind === 'disbursement' ? 'disbursement' : 'fee';
    adHoc.push({ kind, description: row.description, amountMinor: amount, taxCode: row.taxCode || null, timekeeperId: kind === 'fee' && row.timekeeperId !== '' ? row.timekeeperId : null });
  }
  if (adHoc.length) request.adHoc = adHoc;
  // The draft being edited is saved only over the version the form showed: without it (or
  // with one that is not a version number) another tab's newer draft would be overwritten.
  const billId = str(raw, 'billId') || null;
  const versionText = str(raw, 'version');
  const version = versionText === '' ? null : versionNumber(versionText);
  if (versionText !== '' && version === null) errors.version = VERSION_MALFORMED;
  else if (billId !== null && version === null) errors.version = VERSION_MISSING;
  return {
    billId, version,
    invoiceDate: str(raw, 'invoiceDate'), upTo: str(raw, 'upTo'), request, fv, adHoc: adHocRows, errors,
  };
}

/** A saved request as the composer form's values. */
function formFromRequest(r: BillRequest, currency: string, dates: { invoiceDate: string; upTo: string }): { fv: Record<string, string>; adHoc: ComposerForm['adHoc'] } {
  const d = (m: number) => toDecimalString(m, currency);
  const fv: Record<string, string> = {
    invoiceDate: dates.invoiceDate, upTo: dates.upTo,
    timeFrom: r.filters?.time?.from ?? '', timeTo: r.filters?.time?.to ?? '', tk: (r.filters?.time?.timekeeperIds ?? []).join(','), noTime: r.filters?.time?.none ? 'yes' : '',
    disbFrom: r.filters?.disbursements?.from ?? '', disbTo: r.filters?.disbursements?.to ?? '', disbCodes: (r.filters?.disbursements?.codes ?? []).join(', '),
    fixedFee: r.fixedFeeAmountMinor === undefined || r.fixedFeeAmountMinor === null ? '' : d(r.fixedFeeAmountMinor),
    applyQuote: r.applyQuote === false ? 'no' : 'yes',
    discountKind: r.discount ? r.discount.kind : 'matter',
    discountPercent: r.discount?.kind === 'percentage' ? String(r.discount.percentBasisPoints / 100) : '',
    discountAmount: r.discount?.kind === 'fixed' ? d(r.discount.amountMinor) : '',
    discountValidUntil: r.discount?.validUntil ?? '',
    interest: r.interestMinor !== undefined ? d(r.interestMinor) : '',
    interestByPolicy: r.interestByPolicy === true ? 'yes' : r.interestByPolicy === false ? 'no' : '',
    applyRetainer: r.applyRetainer === true ? 'yes' : r.applyRetainer === false ? 'no' : '',
    template: r.template ?? '', paymentTermsDays: r.paymentTermsDays === undefined || r.paymentTermsDays === null ? '' : String(r.paymentTermsDays),
  };
  for (const [tk, v] of Object.entries(r.writeTo?.timekeeper ?? {})) fv[`wt_tk_${tk}`] = d(v);
  for (const [ct, v] of Object.entries(r.writeTo?.chargeType ?? {})) fv[`wt_ct_${ct}`] = d(v);
  const adHoc = (r.adHoc ?? []).map((a) => ({ kind: a.kind, description: a.description, amount: d(a.amountMinor), taxCode: a.taxCode ?? '', timekeeperId: a.timekeeperId ?? '' }));
  return { fv, adHoc };
}

/** Lines grouped as the clerk works with them: time by timekeeper, fixed charges by charge type, disbursements, the rest. */
function groupLines(lines: readonly BillLineData[], tks: ReadonlyMap<string, TimekeeperCopy>, chargeNames: ReadonlyMap<string, string>) {
  // recordedMinor: the chargeable lines' (what a write-to works from); noChargeCount: the lines left out of it.
  const time = new Map<string, { id: string; label: string; lines: BillLineData[]; amountMinor: number; recordedMinor: number; minutes: number; noChargeCount: number }>();
  const fixed = new Map<string, { id: string; label: string; lines: BillLineData[]; amountMinor: number; recordedMinor: number; noChargeCount: number }>();
  const disbursements: BillLineData[] = [];
  const other: BillLineData[] = [];
  for (const l of lines) {
    if (l.kind === 'time' && l.timekeeperId) {
      const g = time.get(l.timekeeperId) ?? { id: l.timekeeperId, label: tkLabel(tks.get(l.timekeeperId), l.timekeeperId), lines: [], amountMinor: 0, recordedMinor: 0, minutes: 0, noChargeCount: 0 };
      g.lines.push(l); g.amountMinor += l.amountMinor; g.recordedMinor += l.noCharge ? 0 : l.recordedMinor; g.minutes += l.minutes ?? 0; g.noChargeCount += l.noCharge ? 1 : 0;
      time.set(l.timekeeperId, g);
    } else if (l.kind === 'fixed_charge' && l.chargeTypeId) {
      const g = fixed.get(l.chargeTypeId) ?? { id: l.chargeTypeId, label: chargeNames.get(l.chargeTypeId) ?? l.code ?? l.chargeTypeId, lines: [], amountMinor: 0, recordedMinor: 0, noChargeCount: 0 };
      g.lines.push(l); g.amountMinor += l.amountMinor; g.recordedMinor += l.noCharge ? 0 : l.recordedMinor; g.noChargeCount += l.noCharge ? 1 : 0;
      fixed.set(l.chargeTypeId, g);
    } else if (l.kind === 'disbursement') disbursements.push(l);
    else other.push(l);
  }
  return { time: [...time.values()], fixed: [...fixed.values()], disbursements, other };
}

/** The composer's fields outside its live preview, as the form labels them. */
const COMPOSER_FIELD_LABELS: Record<string, string> = {
  invoiceDate: 'Invoice date', upTo: 'Up to (cut-off)', paymentTermsDays: 'Payment terms (days)', template: 'Bill template', timeFrom: 'Time from', timeTo: 'Time to',
  tk: 'Timekeepers', noTime: 'Leave time off this bill', disbFrom: 'Disbursements from', disbTo: 'Disbursements to', disbCodes: 'Disbursement codes',
  applyQuote: 'Quote', fixedFee: 'Fixed fee this bill', discountKind: 'Discount', discountPercent: 'Discount %', discountAmount: 'Discount amount',
  discountValidUntil: 'Discount valid if paid by', interest: 'Interest by hand', interestByPolicy: 'Interest by the firm\'s policy', applyRetainer: 'Retainer',
  billId: 'Draft', version: 'Version',
};
const ADHOC_PARTS: Record<string, string> = { kind: 'kind', desc: 'description', amount: 'amount', tax: 'tax code', tk: 'timekeeper' };

/**
 * A composer form's errors on fields the live preview does not hold (its write-to inputs are in
 * it), labelled, in the form's order. An ad hoc line is named by its description where it has
 * one: the errors number the lines typed, while the form on screen (not swapped) keeps its blank rows.
 */
export function errorsOutsidePreview(errors: Readonly<Record<string, string>>, adHoc: readonly { description: string }[] = []): { name: string; label: string; message: string }[] {
  const order = Object.keys(COMPOSER_FIELD_LABELS);
  const rank = (k: string) => (order.includes(k) ? order.indexOf(k) : order.length);
  return Object.entries(errors).filter(([k]) => !/^wt_(tk|ct)_/.test(k)).sort(([a], [b]) => rank(a) - rank(b)).map(([name, message]) => {
    const adhoc = /^adhoc_(kind|desc|amount|tax|tk)_(\d+)$/.exec(name);
    const desc = adhoc ? adHoc[Number(adhoc[2])]?.description.trim() ?? '' : '';
    const label = adhoc ? `Ad hoc line ${desc ? `“${desc.slice(0, 60)}”` : Number(adhoc[2]) + 1}, ${ADHOC_PARTS[adhoc[1]!]}` : COMPOSER_FIELD_LABELS[name] ?? name;
    return { name, label, message };
  });
}

function tkLabel(t: TimekeeperCopy | undefined, id: string): string {
  return t ? `${t.initials} ${t.name}` : id;
}

function hours(minutes: number): string {
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return `${h}:${String(m).padStart(2, '0')}`;
}

/**
 * What the bill page says after each action's redirect (`?done=approve`): the action's name in the address, its words
 * from this table, so a link cannot put words of its own on the page as the firm's message.
 */
const BILL_DONE_TEXTS = { approve: 'Approved', revert: 'Reverted to draft', redraft: 'Re-drafted', delete: 'Deleted', hold: 'Hold changed' } as const;
/** The statuses each action leaves a bill in: its words are shown only on a bill that is so (a link cannot call a draft "Approved"). */
const DONE_LEAVES: Record<keyof typeof BILL_DONE_TEXTS, readonly string[]> = {
  approve: ['approved', 'finalised'], revert: ['draft'], redraft: ['draft'], delete: ['deleted'], hold: ['draft'],
};
const doneText = (name: string | undefined, status: string): string | null => {
  if (name === undefined || !Object.hasOwn(BILL_DONE_TEXTS, name)) return null;
  const action = name as keyof typeof BILL_DONE_TEXTS;
  return DONE_LEAVES[action].includes(status) ? BILL_DONE_TEXTS[action] : null;
};

export function createBillingPages(deps: ModuleDeps, cmds: BillingCommands): Hono<AppEnv> {
  const pages = new Hono<AppEnv>();
  const reads = createBillingReads(deps.db);
  const today = (): string => isoDate(deps.clock.now());
  const can = (c: Context<AppEnv>) => ({ write: WRITERS.includes(c.get('user')?.role as Role) });

  async function matterOr404(id: string): Promise<MatterCopy> {
    const m = await reads.getMatterCopy(id);
    if (!m) throw notFound('Matter');
    return m;
  }
  async function billOr404(id: string): Promise<Bill> {
    const b = await cmds.findBill(id);
    if (!b) throw notFound('Bill');
    return b;
  }
  async function timekeepers(ids: Iterable<string>): Promise<Map<string, TimekeeperCopy>> {
    const out = new Map<string, TimekeeperCopy>();
    for (const id of new Set(ids)) {
      const t = await reads.getTimekeeperCopy(id);
      if (t) out.set(id, t);
    }
    return out;
  }
  async function chargeNames(): Promise<Map<string, string>> {
    return new Map((await reads.listChargeTypes()).map((t) => [t.id, `${t.code} ${t.name}`]));
  }

  // ---- the composer ---------------------------------------------------------------------

  interface ComposerState {
    form: ComposerForm;
    composition: Composition | null;
    error: string | null;
    flash?: string | null;
    /** Opened from a mass billing row: that list's address (its query), to go back to with the draft saved. */
    back?: string | null;
  }

  /**
   * The mass billing list a composer was opened from (its query string), as given in `back`:
   * re-encoded, so it can only ever be the query of /billing/mass; null when absent or too long
   * (MAX_BACK_CHARS holds the list's filters and its MAX_HAND_DRAFTS drafts changed by hand).
   */
  const massBack = (v: unknown): string | null => {
    if (typeof v !== 'string' || v === '' || v.length > MAX_BACK_CHARS) return null;
    return new URLSearchParams(v).toString();
  };

  async function composerContext(c: Context<AppEnv>, matter: MatterCopy, s: ComposerState) {
    const state = await cmds.matterState(matter.id);
    const draft = state?.draft ?? null;
    const p = s.composition;
    const candidates = p?.candidates ?? [];
    // Write-up/down amounts typed in (or saved on the draft), by input name: without a
    // composition (a refused preview) their inputs are not in the bill's groups, so they are
    // shown on their own, keeping the values and any errors, and a save does not drop them.
    const typedWriteTo = Object.entries(s.form.fv).flatMap(([name, value]) => {
      const m = /^wt_(tk|ct)_(.+)$/.exec(name);
      return m && value.trim() !== '' ? [{ name, kind: m[1] as 'tk' | 'ct', id: m[2]!, value }] : [];
    });
    const tks = await timekeepers([
      ...candidates.flatMap((w) => (w.timekeeperId ? [w.timekeeperId] : [])), ...(p?.lines ?? []).flatMap((l) => (l.timekeeperId ? [l.timekeeperId] : [])),
      ...(p?.composed.feeAllocation ?? []).map((a) => a.timekeeperId), matter.responsibleTimekeeperId,
      ...typedWriteTo.filter((w) => w.kind === 'tk').map((w) => w.id),
      // The timekeepers the time filter names, even with no time here: their boxes stay ticked, so a save keeps the filter.
      ...(s.form.request.filters?.time?.timekeeperIds ?? []),
      // An ad hoc fee's timekeeper: offered (and chosen) again, so a save keeps the fee as their work.
      ...s.form.adHoc.flatMap((a) => (a.timekeeperId ? [a.timekeeperId] : [])),
    ]);
    const names = await chargeNames();
    // The composer's refusals name timekeepers and charge types by id: said as the clerk knows them (initials and name).
    const named = (text: string): string => text
      .replace(/timekeeper ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/g, (m, id: string) => (tks.has(id) ? `timekeeper ${tkLabel(tks.get(id), id)}` : m))
      .replace(/fixed charges of type (\S+) on this bill/g, (m, ct: string) => (names.has(ct) ? `fixed charges of type ${names.get(ct)} on this bill` : m));
    const excluded = new Set(s.form.request.excludedIds ?? []);
    const onBill = new Set((p?.lines ?? []).flatMap((l) => (l.itemId ? [l.itemId] : [])));
    const firm = await reads.getFirmSettings();
    // The period approving the bill would post it to, when not the current one (said where the invoice date is changed).
    const periodNoteOfDate = isCalendarDate(s.form.invoiceDate) && !s.form.errors.invoiceDate ? (await cmds.periodNotes()).noteOf(s.form.invoiceDate) : null;
    const composerPeriodNote = periodNoteOfDate ? `Invoice date ${s.form.invoiceDate}: ${periodNoteOfDate}` : null;
    return {
      composerPeriodNote,
      matter, refusals: state?.refusals ?? [], otherDraft: draft && draft.id !== s.form.billId ? draft : null, retainer: state?.retainer ?? null,
      billId: s.form.billId, version: s.form.version, fv: s.form.fv, errors: Object.fromEntries(Object.entries(s.form.errors).map(([k, v]) => [k, named(v)])), adHoc: [...s.form.adHoc, { kind: 'fee', description: '', amount: '', taxCode: '', timekeeperId: '' }].map((a) => ({ ...a, tkUnknown: a.timekeeperId !== '' && !tks.has(a.timekeeperId) })),
      tkFilter: new Set((s.form.fv.tk ?? '').split(',').filter(Boolean)),
      hiddenExcluded: [...excluded].filter((id) => !candidates.some((w) => w.id === id)),
      error: s.error === null || s.error === undefined ? s.error : named(s.error), flash: s.flash ?? null, can: can(c), preview: previewContext(matter, p, tks, names), back: s.back ?? null,
      keptWriteTo: p ? [] : typedWriteTo.map((w) => ({ ...w, label: w.kind === 'tk' ? tkLabel(tks.get(w.id), w.id) : names.get(w.id) ?? w.id })),
      candidates: candidates.map((w: WipCopy) => ({
        ...w, included: !excluded.has(w.id), onBill: onBill.has(w.id), tk: w.timekeeperId ? tkLabel(tks.get(w.timekeeperId), w.timekeeperId) : '',
        chargeLabel: w.chargeTypeId ? names.get(w.chargeTypeId) ?? w.code : w.code,
      })),
      timekeeperOptions: [...tks.values()].sort((a, b) => a.initials.localeCompare(b.initials)),
      taxCodes: firm?.taxRates.map((t) => t.code) ?? [], statusLabels: STATUS_LABELS,
      templateOptions: templateChoices(await cmds.billTemplateNames(), s.form.fv.template,
        `The matter's (${matter.options?.billTemplate ?? 'standard'})`),
      firmTermsDays: firm?.paymentTermsDays ?? null,
      fixedFeeHint: fixedFeeHint(matter, s.form.invoiceDate),
    };
  }

  function previewContext(matter: MatterCopy, p: Composition | null, tks: Map<string, TimekeeperCopy>, names: Map<string, string>) {
    if (!p) return null;
    const groups = groupLines(p.lines, tks, names);
    return {
      currency: matter.currency, totals: p.composed.totals, netFeesMinor: p.composed.netFeesMinor, discount: p.composed.discount, quote: p.composed.quote,
      retainerRequestMinor: p.composed.retainerRequestMinor, retainerAppliedMinor: p.composed.retainerAppliedMinor, retainerBalanceMinor: p.retainerBalanceMinor, hasRetainer: p.retainerBalanceMinor !== null, dueDate: p.dueDate,
      groups: { ...groups, time: groups.time.map((g) => ({ ...g, hours: hours(g.minutes) })) }, lineCount: p.lines.length,
      allocations: p.composed.feeAllocation.map((a) => ({ ...a, label: tkLabel(tks.get(a.timekeeperId), a.timekeeperId) })),
      scheduleRowIds: p.composed.scheduleRowIds, hideLinePricing: p.composed.hideLinePricing, kindLabels: KIND_LABELS,
      interestCharges: p.interestCharges, expiredDiscounts: p.expiredDiscounts, timeWaitsForInstalment: p.composed.timeWaitsForInstalment,
      discountShortfall: p.composed.discountShortfall, onlyExpenses: matter.options?.massBilling.onlyExpenses === true,
      feeSchedule: matter.options?.fixedFee.mode === 'custom_schedule',
    };
  }

  /** Why "Fixed fee this bill" does nothing on this matter (the composer reads it only for an every-cycle fixed fee), or null. */
  function fixedFeeIdleReason(matter: MatterCopy): string | null {
    const o = matter.options;
    if (!o || o.arrangement !== 'fixed_fee') return 'this matter is not billed by a fixed fee';
    if (o.massBilling.onlyExpenses) return 'this matter bills expenses only';
    if (o.fixedFee.mode !== 'every_cycle') return 'this matter\'s fixed fee is billed by its schedule of instalments';
    return null;
  }

  /** The hint under "Fixed fee this bill": what a blank field bills on this matter and invoice date. */
  function fixedFeeHint(matter: MatterCopy, invoiceDate: string): string {
    const idle = fixedFeeIdleReason(matter);
    if (idle !== null) return `Leave blank: ${idle}`;
    const o = matter.options!;
    if (o.quote.amountMinor === null || o.quote.amountMinor === 0) return 'Blank: none (the matter has no quote); type an amount to bill one';
    const quote = formatMoney(o.quote.amountMinor, matter.currency);
    if (!isCalendarDate(invoiceDate)) return `Blank: the quote (${quote}) on the bill of each billing cycle, else none`;
    return everyCycleFeeOnBill(o, matter.billingCycle, matter.nextBillingDate, invoiceDate)
      ? `Blank: the quote (${quote}); this bill is the cycle's`
      : `Blank: none, as the cycle is not due on this invoice date${matter.nextBillingDate ? ` (next billing date ${matter.nextBillingDate})` : ''}; type an amount to bill one`;
  }

  /**
   * Choices that would do nothing on this matter, said at their fields (the preview, and Save
   * refuses them): a fixed fee typed where none is read (`savedFee`: the one the draft was saved
   * with, not refused); interest by the firm's policy while the firm's policy is off; the general
   * retainer applied where the firm or the matter has none.
   */
  async function idleChoices(matter: MatterCopy, request: BillRequest, savedFee: number | null | undefined = undefined): Promise<Errors> {
    const e: Errors = {};
    // A fee typed here (0 does nothing anywhere; one the draft was saved with, decided by its cycle or kept from
    // before the matter's options changed, is not the clerk's doing and must not stop the draft saving unchanged).
    const fee = request.fixedFeeAmountMinor;
    const fixedFeeIdle = fixedFeeIdleReason(matter);
    if (fee !== undefined && fee !== null && fee !== 0 && fixedFeeIdle !== null && fee !== savedFee) e.fixedFee = `${fixedFeeIdle}, so it would do nothing: leave it blank`;
    if (request.interestByPolicy !== true && request.applyRetainer !== true) return e;
    const firm = await reads.getFirmSettings();
    if (!firm) return e;
    if (request.interestByPolicy === true && !firm.interest.enabled) e.interestByPolicy = 'the firm\'s interest policy is off (Matters › Firm billing settings), so it charges nothing: choose another, or charge interest by hand';
    if (request.applyRetainer === true && (!firm.generalRetainersEnabled || !matter.options?.generalRetainer.enabled)) {
      e.applyRetainer = !firm.generalRetainersEnabled ? 'the firm does not use general retainers, so nothing would be applied' : 'this matter has no general retainer, so nothing would be applied';
    }
    return e;
  }

  /**
   * Compose for the page: a refusal or a bad choice comes back as the page's error, not an
   * exception. Inputs that did not parse are left out of the composition (and shown with
   * their errors), so the clerk still sees the bill while fixing them.
   */
  async function tryPreview(matter: MatterCopy, f: ComposerForm, saved?: BillRequest): Promise<{ composition: Composition | null; error: string | null; errors: Errors }> {
    const matterId = matter.id;
    const formError = Object.keys(f.errors).length > 0 ? 'Please correct the highlighted fields' : null;
    try {
      const composition = await cmds.preview({ matterId, invoiceDate: f.invoiceDate, upTo: f.upTo, request: f.request, billId: f.billId });
      // The bill is shown; an invoice date that Save would refuse is said now, at its field, as is a disbursement code
      // none of the matter's disbursements has (a typo would leave every disbursement off the bill, unsaid).
      const errors: Errors = {};
      const dateError = f.errors.invoiceDate ? null : await cmds.invoiceDateError({ invoiceDate: f.invoiceDate, billId: f.billId });
      if (dateError) errors.invoiceDate = dateError;
      const codesError = unknownDisbursementCodes(f.request, composition);
      if (codesError) errors.disbCodes = codesError;
      const savedRequest = saved ?? (f.billId ? (await cmds.findBill(f.billId))?.request : undefined);
      Object.assign(errors, await idleChoices(matter, f.request, savedRequest?.fixedFeeAmountMinor));
      const first = Object.entries(errors)[0];
      return { composition, error: formError ?? (first ? `${COMPOSER_FIELD_LABELS[first[0]] ?? first[0]} ${first[1]}` : null), errors };
    } catch (e) {
      if (e instanceof HttpError && (e.status === 409 || e.status === 422)) return { composition: null, error: formError ?? e.message, errors: formFields(e.fields) };
      throw e;
    }
  }

  /** Codes of the disbursement filter that none of the matter's disbursements (unbilled, or on the draft) has, said; null when none. */
  function unknownDisbursementCodes(request: BillRequest, composition: Composition): string | null {
    const codes = request.filters?.disbursements?.codes ?? [];
    if (codes.length === 0) return null;
    const have = new Set(composition.candidates.filter((w) => w.kind === 'disbursement' && w.code !== null).map((w) => w.code!.toUpperCase()));
    const unknown = codes.filter((code) => !have.has(code.toUpperCase()));
    if (unknown.length === 0) return null;
    const inUse = [...have].sort();
    return `no disbursement of this matter has code ${unknown.map((code) => `"${code}"`).join(', ')} (its codes: ${inUse.slice(0, 20).join(', ') || 'none'}${inUse.length > 20 ? ', …' : ''})`;
  }

  /** The commands' field names as the composer's inputs. */
  function formFields(fields: Readonly<Record<string, string>>): Errors {
    const out: Errors = {};
    for (const [k, v] of Object.entries(fields)) {
      const wt = /^writeTo\.(timekeeper|chargeType)\.(.+)$/.exec(k);
      const ah = /^adHoc\.(\d+)\.(description|amount|taxCode|timekeeperId)$/.exec(k);
      const name = wt ? `wt_${wt[1] === 'timekeeper' ? 'tk' : 'ct'}_${wt[2]}`
        : ah ? `adhoc_${{ description: 'desc', amount: 'amount', taxCode: 'tax', timekeeperId: 'tk' }[ah[2] as 'description']}_${ah[1]}`
          : ({ 'discount.percent': 'discountPercent', 'discount.amount': 'discountAmount', 'discount.validUntil': 'discountValidUntil', fixedFeeAmount: 'fixedFee',
            'filters.time.from': 'timeFrom', 'filters.time.to': 'timeTo', 'filters.disbursements.from': 'disbFrom', 'filters.disbursements.to': 'disbTo' } as Record<string, string>)[k] ?? k;
      out[name] = v;
    }
    return out;
  }

  async function composerResponse(c: Context<AppEnv>, matter: MatterCopy, s: ComposerState, status: 200 | 409 | 422 = 200): Promise<Response> {
    const ctx = await composerContext(c, matter, s);
    // The live preview swaps only its own part: the errors of the form's other fields are listed in it.
    if (isHtmx(c)) return render(c, 'billing/_composer_preview.njk', { ...ctx, errorsOutside: errorsOutsidePreview(s.form.errors, s.form.adHoc) }, status);
    return render(c, 'billing/compose.njk', ctx, status);
  }

  pages.get('/', allow(READERS), async (c) => {
    const matters = await reads.listMattersForBilling({ withUnbilledWip: true });
    return render(c, 'billing/index.njk', { matters, can: can(c) });
  });

  pages.get(`/matters/:matterId${ID}/compose`, allow(READERS), async (c) => {
    const matter = await matterOr404(c.req.param('matterId'));
    const billId = c.req.query('bill');
    let form: ComposerForm;
    if (billId) {
      const b = await billOr404(billId);
      if (b.matterId !== matter.id) throw notFound('Bill');
      if (b.status !== 'draft') return c.redirect(`/billing/bills/${b.billId}`, 303);
      const { fv, adHoc } = formFromRequest(b.request, matter.currency, b);
      form = { billId: b.billId, version: b.version, invoiceDate: b.invoiceDate, upTo: b.upTo, request: b.request, fv, adHoc, errors: {} };
    } else {
      const invoiceDate = c.req.query('invoiceDate') ?? today();
      const upTo = c.req.query('upTo') ?? invoiceDate;
      // Choices given in the address (a mass billing row's link: template, terms, time and
      // disbursement filters) start the bill; the rest is the matter's.
      const query: Raw = Object.fromEntries(Object.entries(c.req.queries()).map(([k, v]) => [k, v.length === 1 ? v[0]! : v]));
      const given = composerForm({ ...query, invoiceDate, upTo }, matter.currency);
      const { fv, adHoc } = formFromRequest(given.request, matter.currency, { invoiceDate, upTo });
      form = { billId: null, version: null, invoiceDate, upTo, request: given.request, fv, adHoc, errors: given.errors };
    }
    const r = await tryPreview(matter, form);
    return composerResponse(c, matter, { form: { ...form, errors: { ...form.errors, ...r.errors } }, composition: r.composition, error: r.error, back: billId ? null : massBack(c.req.query('back')) });
  });

  /**
   * The draft a composer form names must be one of this matter's bills: another matter's would
   * be recomposed (or previewed, its items shown as this matter's) from choices typed and
   * parsed for this matter (its currency). Refused at the field, composing as a new bill.
   */
  async function ownDraft(matter: MatterCopy, form: ComposerForm): Promise<ComposerForm> {
    if (form.billId === null) return form;
    const b = await cmds.findBill(form.billId);
    if (b && b.matterId === matter.id) return form;
    return { ...form, billId: null, version: null, errors: { ...form.errors, billId: 'must be a draft bill of this matter: open the draft from its bill page' } };
  }

  /**
   * A fixed fee typed that cannot be read (`abc`, 10.999) is left out of the request, and left
   * out means "the quote": a draft's preview would then show a different bill (the walkthrough
   * saw a $997.99 draft shown at $5,697.99). While the field is in error, a draft's preview keeps
   * the fixed fee as the draft was saved; the page says which figures it shows.
   */
  async function keepSavedFixedFee(form: ComposerForm): Promise<ComposerForm> {
    if (!form.errors.fixedFee || form.billId === null) return form;
    const saved = (await cmds.findBill(form.billId))?.request.fixedFeeAmountMinor;
    const request = { ...form.request };
    if (saved === undefined || saved === null) delete request.fixedFeeAmountMinor;
    else request.fixedFeeAmountMinor = saved;
    return { ...form, request };
  }

  /** The live preview: recompose with the form's choices and return the totals and lines fragment; nothing is saved. */
  pages.post(`/matters/:matterId${ID}/compose/preview`, allow(WRITERS), async (c) => {
    const matter = await matterOr404(c.req.param('matterId'));
    const raw = await c.req.parseBody({ all: true }) as Raw;
    const form = await keepSavedFixedFee(await ownDraft(matter, composerForm(raw, matter.currency)));
    const r = await tryPreview(matter, form);
    // The fragment for htmx; a plain post (no JavaScript) gets the composer page.
    return composerResponse(c, matter, { form: { ...form, errors: { ...form.errors, ...r.errors } }, composition: r.composition, error: r.error, back: massBack(str(raw, 'back')) });
  });

  /** Save the draft (create, or recompose the draft being edited); `_action=preview` only recalculates (no JavaScript). */
  pages.post(`/matters/:matterId${ID}/compose`, allow(WRITERS), async (c) => {
    const matter = await matterOr404(c.req.param('matterId'));
    const raw = await c.req.parseBody({ all: true }) as Raw;
    const form = await keepSavedFixedFee(await ownDraft(matter, composerForm(raw, matter.currency)));
    const back = form.billId ? null : massBack(str(raw, 'back'));
    // A disbursement code the matter's disbursements do not have, or a choice that does nothing here: refused at its
    // field, as the preview says (nothing saved).
    // (Only codes the clerk typed here: a bill run filtered on a code gives every draft it makes that code, with or
    // without such disbursements, and such a draft must still save unchanged, as recomposing asks.)
    const typedCodes = form.request.filters?.disbursements?.codes ?? [];
    const savedRequest = form.billId ? (await cmds.findBill(form.billId))?.request : undefined;
    const savedCodes = savedRequest?.filters?.disbursements?.codes ?? [];
    const codesTyped = typedCodes.length > 0 && JSON.stringify([...typedCodes].sort()) !== JSON.stringify([...savedCodes].sort());
    // Composed once to check typed codes, and that composition shown if the save stops here.
    const checked = codesTyped ? await tryPreview(matter, form, savedRequest) : null;
    const codesUnknown = checked !== null && checked.errors.disbCodes !== undefined;
    const idle = Object.keys(await idleChoices(matter, form.request, savedRequest?.fixedFeeAmountMinor)).length > 0;
    if (str(raw, '_action') === 'preview' || Object.keys(form.errors).length > 0 || codesUnknown || idle) {
      const r = checked ?? await tryPreview(matter, form, savedRequest);
      const errors = { ...form.errors, ...r.errors };
      return composerResponse(c, matter, { form: { ...form, errors }, composition: r.composition, error: r.error, back }, Object.keys(errors).length > 0 ? 422 : 200);
    }
    try {
      const bill = form.billId
        ? await cmds.updateDraft(c.get('command'), form.billId, { invoiceDate: form.invoiceDate, upTo: form.upTo, request: form.request, expectedVersion: form.version! })
        : await cmds.createDraft(c.get('command'), { matterId: matter.id, invoiceDate: form.invoiceDate, upTo: form.upTo, request: form.request });
      // Opened from a mass billing row: back to that list, which names the draft to take into the run (seed 001's last-minute changes).
      if (back !== null) {
        const to = new URLSearchParams(back);
        to.append('handDraft', bill.billId);
        return redirectAfterPost(c, `/billing/mass?${to.toString()}#hand-drafts`);
      }
      return redirectAfterPost(c, `/billing/bills/${bill.billId}`);
    } catch (e) {
      if (!(e instanceof HttpError) || (e.status !== 409 && e.status !== 422)) throw e;
      const r = await tryPreview(matter, form);
      return composerResponse(c, matter, { form: { ...form, errors: { ...formFields(e.fields), ...r.errors } }, composition: r.composition, error: e.message, back }, e.status);
    }
  });

  // ---- a matter's bills -----------------------------------------------------------------

  async function billsContext(c: Context<AppEnv>, matter: MatterCopy, extra: Record<string, unknown> = {}) {
    const list = await cmds.listBills(matter.id, { includeDeleted: true });
    const state = await cmds.matterState(matter.id);
    return {
      matter, bills: list, statusLabels: STATUS_LABELS, can: can(c), refusals: state?.refusals ?? [], draft: state?.draft ?? null,
      retainer: state?.retainer ?? null, retainerErrors: {}, retainerError: null, retainerVersion: state?.retainer?.version ?? 0,
      retainerForm: { balance: state?.retainer ? toDecimalString(state.retainer.balanceMinor, state.retainer.currency) : '', asOf: today(), note: state?.retainer?.note ?? '' },
      ...extra,
    };
  }

  pages.get(`/matters/:matterId${ID}/bills`, allow(READERS), async (c) => {
    const matter = await matterOr404(c.req.param('matterId'));
    return render(c, 'billing/bills.njk', await billsContext(c, matter));
  });

  pages.post(`/matters/:matterId${ID}/retainer`, allow(WRITERS), async (c) => {
    const matter = await matterOr404(c.req.param('matterId'));
    const raw = await c.req.parseBody() as Raw;
    const errors: Errors = {};
    const balance = money(errors, 'balance', str(raw, 'balance'), matter.currency);
    if (balance === undefined && !errors.balance) errors.balance = 'is required';
    // The version of the balance the page showed (0: none recorded): a balance someone else recorded since is not overwritten.
    const version = /^\d{1,9}$/.test(str(raw, 'version')) ? Number(str(raw, 'version')) : undefined;
    if (version === undefined) errors.version = 'is missing: reload the page';
    let status: 409 | 422 = 422;
    let retainerError: string | null = null;
    if (Object.keys(errors).length === 0) {
      try {
        await cmds.setRetainerBalance(c.get('command'), matter.id, { balanceMinor: balance!, asOf: str(raw, 'asOf'), note: str(raw, 'note') || null, expectedVersion: version });
        return redirectAfterPost(c, `/billing/matters/${matter.id}/bills`);
      } catch (e) {
        if (!(e instanceof HttpError) || (e.status !== 422 && e.status !== 409)) throw e;
        if (e.status === 409) { status = 409; retainerError = e.message; } else Object.assign(errors, e.fields);
      }
    }
    // What was typed is shown again; after a 409 the page's version is the current one, to record it over.
    const retainerForm = { balance: str(raw, 'balance'), asOf: str(raw, 'asOf'), note: str(raw, 'note') };
    const ctx = await billsContext(c, matter, { retainerForm, retainerErrors: errors, retainerError });
    return render(c, 'billing/bills.njk', ctx, status);
  });

  // ---- a bill ---------------------------------------------------------------------------

  async function billContext(c: Context<AppEnv>, b: Bill, extra: { error?: string | null; errors?: Readonly<Record<string, string>>; flash?: string | null } = {}) {
    const matter = await reads.getMatterCopy(b.matterId);
    const actions = await cmds.actionsFor(b);
    const tks = await timekeepers([...b.lines.flatMap((l) => (l.timekeeperId ? [l.timekeeperId] : [])), ...b.allocations.map((a) => a.timekeeperId)]);
    const groups = groupLines(b.lines, tks, await chargeNames());
    // A draft: the period approving it would post it to, when not the current one (the ledger's periods, billing's copy).
    const pn = b.status === 'draft' ? await approvalPeriodNotes(deps.db, isoDate(deps.clock.now())) : null;
    // Approve refused for its period is said once, by the period alert.
    const periodReason = pn?.refusalOf(b.invoiceDate) ?? null;
    const reasons = (RELEVANT[b.status] ?? []).flatMap((a) => (actions[a].allowed || (a === 'approve' && actions[a].reason === periodReason) ? [] : [{ action: ACTION_LABELS[a], reason: actions[a].reason }]));
    return {
      bill: b, matter, actions, reasons, can: can(c), statusLabels: STATUS_LABELS, kindLabels: KIND_LABELS, currency: b.currency,
      groups: { ...groups, time: groups.time.map((g) => ({ ...g, hours: hours(g.minutes) })) },
      allocations: b.allocations.map((a) => ({ ...a, label: tkLabel(tks.get(a.timekeeperId), a.timekeeperId) })),
      error: extra.error ?? null, errors: extra.errors ?? {}, flash: extra.flash ?? doneText(c.req.query('done'), b.status),
      // The template its PDF uses: its own (the composer or the run chose it), else the matter's.
      template: b.request.template?.trim() || null, matterTemplate: matter?.options?.billTemplate ?? null,
      // A name that is not one of the firm's templates: production refuses the bill until it is put right (said here first).
      templateMissing: b.status === 'deleted' || b.status === 'finalised' ? null
        : missingTemplate((await cmds.billTemplateNames()).map((name) => ({ name })), 'bill', b.request.template, matter?.options?.billTemplate ?? null),
      // A finalised bill has its produced PDF, unless it was finalised through the API without production.
      produced: b.status === 'finalised' && await hasStoredPdf(deps.db, b.billId, b.approvedAt),
      // The PDFs of earlier approvals, kept when it was produced again (the client holds them).
      earlierPdfs: await earlierPdfs(deps.db, b.billId),
      periodNote: pn?.noteOf(b.invoiceDate) ?? null, periodRefuses: periodReason !== null,
    };
  }

  // A bill by its number (12.8.1): other pages know bills by number, e.g. a fixed-fee schedule's "Inv #".
  pages.get('/bills/by-number/:number', allow(READERS), async (c) => {
    const number = c.req.param('number');
    const id = number.length <= 100 ? await reads.billIdByNumber(number) : null;
    if (!id) throw notFound(`Bill ${number.slice(0, 100)}`);
    return c.redirect(`/billing/bills/${id}`, 303);
  });

    pages.get(`/bills/:id${ID}`, allow(READERS), async (c) => {
    const b = await billOr404(c.req.param('id'));
    return render(c, 'billing/bill.njk', await billContext(c, b));
  });

  pages.get(`/bills/:id${ID}/edit`, allow(READERS), async (c) => {
    const b = await billOr404(c.req.param('id'));
    return c.redirect(`/billing/matters/${b.matterId}/compose?bill=${b.billId}`, 303);
  });

  // The bill page's forms carry the version they showed: acting on a bill another tab has
  // changed meanwhile is refused (409) instead of, say, voiding a bill just approved.
  // An approved bill is finalised by producing it (PDF stored, printed, emailed: the bill
  // page links to production's confirmation), never bare from a page.
  // A form without its version, or with one (or a hold choice) that does not parse, is
  // refused naming the field (422) before anything is done.
  const transitions: Record<keyof typeof BILL_DONE_TEXTS, { run: (ctx: AppEnv['Variables']['command'], id: string, raw: Raw) => Promise<Bill> }> = {
    approve: { run: (ctx, id, raw) => cmds.approve(ctx, id, billActionForm(raw).version) },
    revert: { run: (ctx, id, raw) => cmds.revert(ctx, id, billActionForm(raw).version) },
    redraft: { run: (ctx, id, raw) => cmds.redraft(ctx, id, billActionForm(raw).version) },
    delete: { run: (ctx, id, raw) => cmds.deleteBill(ctx, id, billActionForm(raw).version) },
    hold: {
      run: (ctx, id, raw) => {
        const f = billActionForm(raw, { hold: true });
        return cmds.setOnHold(ctx, id, f.onHold, f.version);
      },
    },
  };
  /**
   * What Delete, Re-draft and Revert do to this bill, in a clerk's words, for their confirmation page:
   * one click on a bill the client may hold (voiding it puts its work back into mass billing,
   * to be billed again) would be too easy a slip.
   */
  function confirmationOf(action: 'delete' | 'redraft' | 'revert', b: Bill): { title: string; effect: string[] } {
    if (action === 'revert') {
      return {
        title: `Revert bill ${b.number ?? ''} to draft`.replace('  ', ' '),
        effect: [
          'The bill is un-posted (its postings reversed in the books) and goes back to Draft bills, where it can be changed, approved again or deleted. Its number is kept.',
          'Receipts allocated to it are released to the client\'s credit until it is approved again.',
        ],
      };
    }
    if (action === 'redraft') {
      return {
        title: `Re-draft bill ${b.number ?? ''}`.trim(),
        effect: [
          'The bill goes back to draft: its postings are reversed in the books, and it can be changed in the composer.',
          `Approved and produced again, it keeps its number${b.number ? ` ${b.number}` : ''}. Receipts already allocated to it are to be allocated again.`,
        ],
      };
    }
    if (b.status === 'draft' && b.sequence === null) {
      return {
        title: 'Delete the draft',
        effect: ['The draft is deleted, with every change made to it in the composer. Its time, disbursements and fixed charges are not deleted: they go back to mass billing, unbilled, to be billed again.'],
      };
    }
    return {
      title: `Void bill ${b.number ?? ''}`.trim(),
      effect: [
        `Bill ${b.number ?? ''} is deleted and its number kept as void${b.status === 'draft' ? '' : '; its postings are reversed in the books'}.`,
        'Its time, disbursements and fixed charges go back to mass billing, unbilled: the next run bills them again.',
      ],
    };
  }

  for (const [name, t] of Object.entries(transitions)) {
    pages.post(`/bills/:id${ID}/${name}`, allow(WRITERS), async (c) => {
      const b = await billOr404(c.req.param('id'));
      const raw = await c.req.parseBody() as Raw;
      if ((name === 'delete' || name === 'redraft' || name === 'revert') && str(raw, 'confirmed') !== 'yes') {
        // Asks first (nothing is written): the form's version is checked as acting would, and an action the bill does not allow is refused as acting would.
        let current: Bill;
        try {
          current = await cmds.checkAction(b.billId, name, billActionForm(raw).version);
        } catch (e) {
          if (!(e instanceof HttpError) || (e.status !== 409 && e.status !== 422)) throw e;
          return render(c, 'billing/bill.njk', await billContext(c, (await cmds.findBill(b.billId)) ?? b, { error: e.message, errors: e.status === 422 ? e.fields : {} }), e.status);
        }
        const matter = await reads.getMatterCopy(current.matterId);
        return render(c, 'billing/bill_confirm.njk', {
          ...confirmationOf(name, current), action: name, bill: current, version: current.version, matterName: matter?.name ?? '', statusLabels: STATUS_LABELS,
          produced: current.status === 'finalised' && await hasStoredPdf(deps.db, current.billId, current.approvedAt),
          // Emailed by hand in this approval: the client holds it (said whether or not it was produced).
          emailedByHand: current.approvedAt && current.status !== 'draft' ? manualEmailsOfCycle(await manualEmails(deps.db, current.billId), current.approvedAt) : [],
          // Reverting or re-drafting reverses the bill's write-offs with its postings, and approving it again does not make them again.
          writtenOffMinor: name !== 'delete' && current.status !== 'draft' ? await writtenOffMinor(deps.db, current.billId) : 0,
          // Exported as LEDES in this approval: the client's e-billing system may hold the invoice.
          ledesExports: current.approvedAt && current.status !== 'draft' ? await ledesExportsSince(deps.db, current.billId, current.approvedAt) : [],
        });
      }
      try {
        const after = await t.run(c.get('command'), b.billId, raw);
        return redirectAfterPost(c, `/billing/bills/${after.billId}?done=${name}`);
      } catch (e) {
        if (!(e instanceof HttpError) || (e.status !== 409 && e.status !== 422)) throw e;
        return render(c, 'billing/bill.njk', await billContext(c, (await cmds.findBill(b.billId)) ?? b, { error: e.message, errors: e.status === 422 ? e.fields : {} }), e.status);
      }
    });
  }

  return pages;
}

export type { Verdict };
