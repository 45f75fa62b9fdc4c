/**
 * Bill production (seed 000): for each approved bill, render the final PDF and keep it with
 * the bill, send the matter's copies to the print output, email it with the matter's email
 * template to its send-to addresses, and finalise it (the existing `finalise` command).
 *
 * Idempotent per bill and approval (the cycle is the bill's approved_at): each step is
 * recorded in billing_bill_production once done and never done again; a process first takes
 * the bill's lease with a conditional update, so two processes never produce one bill at
 * once; while a process holds bills it renews their leases every LEASE_RENEW_MS (however long
 * a render or an SMTP server takes), so a crashed process's bills are free again within
 * LEASE_MS and a retry finishes what is left.
 * The print and mail adapters are idempotent by key too (a file already written is not
 * written again; a resent email carries the same Message-ID), which covers the moment
 * between an output and the row that records it. SMTP cannot be asked whether a message went:
 * an email the server did not confirm (a timeout or a dropped connection once the session was
 * under way, `mailMayHaveGone`), or one whose process stopped while sending it, is recorded as
 * unconfirmed (email_unconfirmed_at), shown per bill as "may have been sent", and not sent again
 * by a retry; the clerk chooses Send again or Mark as sent (`decideUnconfirmedEmail`, audited).
 * A refusal the server answered, or any failure before the message data was handed over (a
 * connection never made, a server that never greets, one that stalls or drops the connection
 * during the envelope: the SMTP adapter says so on its error, `messageDataSent`), stays a plain
 * failure a retry resends.
 *
 * Throughput (issue 5: 1,000 bills in 30 s on 2 cores; each commit costs an fsync on SQLite):
 * a run's workers claim a few bills in one transaction; a bill's PDF and its print copies are
 * recorded in one commit (the copies are written first: the print folder skips a job whose
 * files exist), the email in the next, then `finalise`; outcomes and lease releases are
 * written for several bills in one commit. About 3 commits a bill instead of 7; the
 * run's timekeeper initials are looked up once.
 *
 * Also here: the PDF preview of any bill (watermarked), the letterhead and template
 * settings, the manual email, and the test email.
 */
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { assert } from '../../shared/assert.ts';
import { audit } from '../../shared/audit.ts';
import type { Clock } from '../../shared/clock.ts';
import { displayTime } from '../../shared/clock.ts';
import type { Db, Executor } from '../../shared/db.ts';
import { addressKey, isEmailAddress } from '../../shared/email.ts';
import { isUniqueViolation } from '../../shared/db.ts';
import { systemContext } from '../../shared/events.ts';
import type { CommandContext } from '../../shared/events.ts';
import { createGate } from '../../shared/gate.ts';
import { settledWithin } from '../../shared/settle.ts';
import type { Gate } from '../../shared/gate.ts';
import { newId, newToken } from '../../shared/ids.ts';
import { mulDiv, sumMinor } from '../../shared/money.ts';
import type { Mailer, MailMessage, MailReceipt, MailRefusal, MailTransportChoice, OpenedSecret, Outputs } from '../../shared/ports.ts';
import { mailTransportFrom, mailTransportView, retryMayResend, sameMailTransport } from './domain/mail-transport.ts';
import type { MailTransportForm } from './domain/mail-transport.ts';
import { HttpError, conflict, invalid, notFound } from '../../shared/web/errors.ts';
import { createViews } from '../../shared/web/views.ts';
import type { Bill } from './bill-store.ts';
import { receiptsAllocated } from './mass-store.ts';
import type { BillingCommands } from './commands.ts';
import {
  emailAwaitsDecision,
  PREVIEW_PDF_BILLS, addressesToReach, combineBillDocuments, combinedPreviewFileName, mailMayHaveGone, manualEmailCovering, manualEmailPending, pdfFileName, printJobKey, productionMessageKey, remainingSteps,
} from './domain/production.ts';
import type { ManualEmail, ProductionStep } from './domain/production.ts';
import {
  billTaxRows, billTemplateErrors, billTemplateFor, effectiveLayout, emailTemplateErrors, mergeEmail, mergeValues, missingClientAddress, missingTemplate, pickTemplate, recipients,
} from './domain/templates.ts';
import type { BillTemplate, EmailTemplate } from './domain/templates.ts';
import type { BillingEvents, BillLineData } from './events.ts';
import { appendEvent } from '../../shared/outbox.ts';
import * as ps from './production-store.ts';
import type { BillingSettings, Run, RunItem } from './production-store.ts';
import * as store from './store.ts';
import type { MatterCopy } from './store.ts';

/**
 * How long a bill's lease lasts unless renewed: after a crash, the bills the dead process held
 * show "busy" (and cannot be reverted) for at most this long.
 */
export const LEASE_MS = 2 * 60_000;
/** A run marked running whose heartbeat is older than this has no process working it: it shows as interrupted, with Resume. */
export const RUN_STALE_MS = 60_000;
/** How often a running production renews the leases it holds (well inside LEASE_MS: a slow commit or a busy event loop must not let one lapse). */
export const LEASE_RENEW_MS = 20_000;
/** At most this many bills in one run. */
export const MAX_RUN_BILLS = 10_000;
const MAX_ERROR_CHARS = 500;
/** What the SMTP password's sealed text is for (it opens only as that). */
const SMTP_PASSWORD_PURPOSE = 'billing_mail_transport.smtp_password';
/** How long a manual email posted again waits for another process sending the same message, and how often it looks. */
const MANUAL_WAIT_MS = 30_000;
const MANUAL_POLL_MS = 100;
/** Bills a run's worker claims in one transaction. */
const CLAIM_BATCH = 4;
/** Outcomes recorded (leases released) in one transaction, at most this many... */
const RELEASE_BATCH = 16;
/** ...and at most this late. */
const RELEASE_DELAY_MS = 250;
const VIEWS_DIR = fileURLToPath(new URL('../../../views', import.meta.url));

/** How a template's page saves it: a new one (its name must be free), or an edit of the one the form showed (its version; 0: a built-in one not yet stored). */
export type TemplateSaveMode = { create: true } | { expectedVersion: number };

export interface ProductionDeps {
  readonly db: Db;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly outputs: Outputs;
}

/**
 * Bills worked on at once by default. Enough that bills wait for Chromium while others
 * print, so the renderer prints the waiting ones together (adapters/pdf/combine.ts): 1,000
 * bills on SQLite on the 2-core machine took 33.6 s with 4 at once, 23.6 s with 8, 20.3 s with
 * 12 and 20.0 s with 16 (two tabs). With one tab (the default since) and 24 at once, a
 * combined render held about 7.6 bills, against 4.1 to 4.8 with two tabs and 12, and 1,000
 * bills on Postgres took 24.0-26.6 s against 25.9-27.2 s in runs taken in turn; `npm run
 * bench` then gave 20.4 s on SQLite and 25.2 s on Postgres (medians of 3; 4.38x and 5.13x a
 * blank page before, 3.33x and 3.77x after). A bill's printing takes less time
 * the more are printed with it (one bill's HTML printed 600 times: 43 ms each alone, 26 ms in
 * twos, 14 ms in tens). SMTP sends are held to SMTP_SENDS_AT_ONCE.
 */
export const PRODUCE_CONCURRENCY = 24;
/**
 * A bill is marked as having its email tried (so a crash leaves "may have been sent") only
 * once its send can start: the SMTP adapter's pool holds 2 connections, so with 24 bills at
 * once the rest would otherwise wait in its queue already marked, and a crash would leave
 * them all for a clerk to decide. File-drop sends are not held (a retry resends through the
 * drop folder's journal).
 */
const SMTP_SENDS_AT_ONCE = 2;
/** The most bills worked on at once (a limit on everything). */
export const MAX_PRODUCE_CONCURRENCY = 32;

export interface ProduceOptions {
  /** Bills worked on at once (default PRODUCE_CONCURRENCY, at most MAX_PRODUCE_CONCURRENCY). */
  concurrency?: number;
  /** How often the held leases are renewed (tests shorten it; default LEASE_RENEW_MS). */
  leaseRenewMs?: number;
}

export interface ProductionSummary {
  runId: string;
  total: number;
  done: number;
  failed: number;
  busy: number;
  items: RunItem[];
}

export interface RunView {
  run: Run;
  /**
   * `emailUnconfirmed`: the bill's email may have been sent (a clerk decides); `decisionKey`: the key of that decision's form;
   * `retryKey`: the key of a failed or busy bill's Retry form (the same form posted twice is one run); `producedSince`: a
   * bill failed or busy here and produced since by another run (no Retry); `unrecorded`: in an interrupted run, a bill still
   * pending here but produced since the run began (its stopped process produced it and stopped before recording that, or
   * another run did).
   */
  items: (RunItem & { emailUnconfirmed: boolean; notApproved: string | null; decisionKey: string | null; retryKey: string | null; already: { at: string | null } | null; producedSince: { at: string } | null; unrecorded: { at: string } | null })[];
  /** `already`: of the done, those this run found produced already (it did nothing to them); `unrecorded`: of the pending, those produced (items' `unrecorded`). */
  counts: { pending: number; done: number; failed: number; busy: number; already: number; producedSince: number; unrecorded: number };
  /** Running, but no process has touched it for a while: it was interrupted. */
  stale: boolean;
  /**
   * Interrupted, and the stopped process's hold on the bills it had not finished (the latest lease
   * it took or renewed) not yet run out: Resume would find them held, so it is offered from this
   * time. Null: now (or not interrupted).
   */
  resumableAt: string | null;
}

const KIND_LABELS: Record<string, string> = {
  time: 'Professional fees', disbursement: 'Disbursement', fixed_charge: 'Fixed charge', fixed_fee: 'Fixed fee', quote_fee: 'As quoted',
  adhoc_fee: 'Fee', adhoc_disbursement: 'Disbursement', discount: 'Discount', interest: 'Interest',
};

/**
 * A manual email that may have been sent (its outcome is unknown): not sent again from the same
 * form; the page offers a fresh form for the clerk to send it again if it did not arrive.
 */
export const EMAIL_UNCONFIRMED = 'email_unconfirmed';

/**
 * A manual email refused because production emailed the bill after the compose form was shown
 * (409): nothing sent; the page shows what production sent and the form again, now knowing it.
 */
export const PRODUCED_SINCE = 'produced_since';
/** The compose form's `seen` field: addresses production had reached, whether it may have sent it, and of which approval (productionMark). */
const SEEN_MARK = /^\d{1,4}\.[01](\.\d{1,15})?$/;

/** A production email that may have been sent: shown per bill; a retry does not send it again. */
class UnconfirmedEmail extends Error {
  /** `byHand`: the email that may have gone was sent by hand (Email manually), not by production. */
  constructor(why: string, readonly retried: boolean, byHand = false) {
    super(byHand
      ? `may have been sent by hand (Email manually: ${why}); Produce did not send it: choose Send again or Mark as sent`
      : `may have been sent (${why}); ${retried ? 'not sent again' : 'not sent again by a retry'}: choose Send again or Mark as sent`);
  }
}
/** Why a manual email may have gone (manualEmailPending). */
const manualWhy = (pending: 'unconfirmed' | 'stopped'): string => (pending === 'unconfirmed' ? 'the mail server did not confirm it' : 'its sender stopped part way');
const emailUnconfirmed = (why: string): HttpError => new HttpError(409, EMAIL_UNCONFIRMED,
  `The email may have been sent: ${why}. It was not sent again. Check with the recipient; if it did not arrive, press Send again below (a new message)`);

function hours(minutes: number | null): string {
  if (minutes === null) return '';
  return `${Math.floor(minutes / 60)}:${String(minutes % 60).padStart(2, '0')}`;
}

/** What a system error code means to a clerk (the code is kept beside it for whoever mends it). */
const SYSTEM_ERRORS: Readonly<Record<string, { text: string; file?: true }>> = {
  ECONNREFUSED: { text: 'the server refused the connection (is it running, at that address and port?)' },
  ETIMEDOUT: { text: 'the server did not answer in time' },
  ECONNRESET: { text: 'the server dropped the connection' },
  ENOTFOUND: { text: 'the server\'s host name was not found' },
  EAI_AGAIN: { text: 'the server\'s host name could not be looked up' },
  EAUTH: { text: 'the mail server refused the login (user name or password)' },
  ENOTDIR: { text: 'the folder cannot be written: part of its path is a file, not a folder', file: true },
  ENOENT: { text: 'the folder cannot be written: it does not exist', file: true },
  EACCES: { text: 'the folder cannot be written: no permission', file: true },
  EPERM: { text: 'the folder cannot be written: no permission', file: true },
  ENOSPC: { text: 'the folder cannot be written: the disk is full', file: true },
  EROFS: { text: 'the folder cannot be written: the disk is read-only', file: true },
};

/**
 * A failure as a clerk reads it: a system error said in words with its code (a file error
 * without the server's path, which billing staff need not see; the log keeps it), else its message.
 */
const errorText = (err: unknown): string => {
  const message = err instanceof Error ? err.message : String(err);
  // The error's code, or (nodemailer wraps a socket's error as ESOCKET) the system code its message names.
  const own = typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : '';
  const code = SYSTEM_ERRORS[own] ? own : (/\b(E[A-Z_]{2,})\b/.exec(message)?.[1] ?? '');
  const known = SYSTEM_ERRORS[code];
  const text = known ? (known.file ? `${known.text} (${code})` : `${known.text} (${message})`) : message;
  return text.slice(0, MAX_ERROR_CHARS);
};

/**
 * A manually composed email's key: the compose form's key, the bill and what was composed.
 * The same form posted again (a second click, a resubmit) is the same message, sent once;
 * the form changed after sending (Back, corrected, sent again) or posted for another bill is
 * another message.
 */
export function manualEmailKey(formKey: string, billId: string, m: { to: readonly string[]; cc: readonly string[]; subject: string; text: string }): string {
  assert(formKey.length > 0 && billId.length > 0, 'manualEmailKey needs the form key and the bill');
  const content = JSON.stringify([billId, m.to.map((a) => a.toLowerCase()), m.cc.map((a) => a.toLowerCase()), m.subject, m.text]);
  return `${formKey}.${createHash('sha256').update(content).digest('hex').slice(0, 32)}`;
}

/** A quantity held in thousandths, as a clerk writes it: 250, 2.5, 0.333. */
function quantityOf(milli: number): string {
  const whole = Math.trunc(milli / 1_000);
  const frac = String(Math.abs(milli % 1_000)).padStart(3, '0').replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : String(whole);
}

export function createProduction(deps: ProductionDeps, cmds: BillingCommands) {
  const { db, clock, logger, outputs } = deps;
  const views = createViews(VIEWS_DIR);
  const now = (): string => clock.now().toISOString();
  const leaseUntil = (): string => new Date(clock.now().getTime() + LEASE_MS).toISOString();
  const processToken = newToken(12);
  /** Runs this process is working on (a second start of one is ignored). */
  const active = new Map<string, Promise<ProductionSummary>>();
  /** Set when the server shuts down (stopRuns): runs take no more bills. */
  let stopping = false;

  // ---- rendering ---------------------------------------------------------------------------

  async function billView(bill: Bill, matter: MatterCopy | null, opts: { watermark: string | null; settings?: BillingSettings; templates?: BillTemplate[]; initials?: Map<string, string | null>; taxRounding?: string | null }) {
    const settings = opts.settings ?? await ps.getSettings(db);
    const taxRounding = opts.taxRounding !== undefined ? opts.taxRounding : (await store.getFirmSettings(db))?.taxRounding ?? null;
    const templates = opts.templates ?? await ps.listBillTemplates(db);
    const template = billTemplateFor(templates, bill.request.template, matter?.options?.billTemplate);
    const { layout, showLinePricing } = effectiveLayout(template.layout, bill);
    const tkIds = [...new Set(bill.lines.flatMap((l) => (l.timekeeperId ? [l.timekeeperId] : [])))];
    const tks = new Map<string, string>();
    for (const id of tkIds) {
      // A run looks each timekeeper up once (initials hardly change during one run).
      let initials = opts.initials?.get(id);
      if (initials === undefined) {
        initials = (await store.getTimekeeperCopy(db, id))?.initials ?? null;
        opts.initials?.set(id, initials);
      }
      if (initials !== null) tks.set(id, initials);
    }
    const line = (l: BillLineData) => {
      // The rate shows only beside an amount that is the hours at that rate: a line written up or
      // down (by the clerk, a quote or a fixed fee) shows its amount, marked, not a product that is not it.
      const adjusted = !l.noCharge && l.rateMinor !== null && l.amountMinor !== l.recordedMinor;
      return {
        ...l, kindLabel: KIND_LABELS[l.kind] ?? l.kind, hours: hours(l.minutes), timekeeper: l.timekeeperId ? tks.get(l.timekeeperId) ?? '' : '',
        rateShownMinor: adjusted ? null : l.rateMinor, adjusted,
      };
    };
    // Sections that add up to the totals below them: professional fees (fixed fees, then the
    // services: time and ad hoc fees), fixed charges, disbursements, adjustments.
    const fees = bill.lines.filter((l) => l.kind === 'time' || l.kind === 'adhoc_fee').map(line);
    const chargeLines = bill.lines.filter((l) => l.kind === 'fixed_charge');
    const fixed = bill.lines.filter((l) => l.kind === 'fixed_fee' || l.kind === 'quote_fee').map(line);
    // Their heading says what they are: fixed fees, fees billed as quoted, or both.
    const quoted = fixed.filter((l) => l.kind === 'quote_fee').length;
    const fixedHeading = quoted === 0 ? 'Fixed fees' : quoted === fixed.length ? 'As quoted' : 'Fixed and quoted fees';
    // A disbursement of more than one unit shows its quantity and unit cost (250 x $0.10) where prices show,
    // from the item it bills (when its quantity times its cost is the amount recorded).
    // So does a fixed charge (3 x $333.33): a figure like $0.02 otherwise says nothing of how it was reached.
    const disbLines = bill.lines.filter((l) => l.kind === 'disbursement' || l.kind === 'adhoc_disbursement');
    const units = await store.itemUnits(db, [...disbLines, ...chargeLines].flatMap((l) => (l.itemId !== null ? [l.itemId] : [])));
    const withUnits = (l: BillLineData) => {
      const u = l.itemId !== null ? units.get(l.itemId) : undefined;
      const shown = u !== undefined && u.quantityMilli !== 1_000 && mulDiv(u.unitCostMinor, u.quantityMilli, 1_000, 'half_up') === l.recordedMinor;
      return { ...line(l), units: shown ? { quantity: quantityOf(u.quantityMilli), unitCostMinor: u.unitCostMinor } : null };
    };
    const disbursements = disbLines.map(withUnits);
    const charges = chargeLines.map(withUnits);
    const other = bill.lines.filter((l) => l.kind === 'discount' || l.kind === 'interest').map(line);
    const party = matter?.billableParty;
    // Fixed-fee instalments this bill takes: each at the amount the bill charges for it (its fixed-fee
    // line), or, where its recorded time was written to the instalments, at the schedule's amount with
    // the difference the bill made (a discount written into the lines, a write-down) shown apart.
    const schedule = new Map((matter?.options?.fixedFee.schedule ?? []).map((r) => [r.rowId, r]));
    const feeLineOf = new Map(bill.lines.filter((l) => l.kind === 'fixed_fee' && l.scheduleRowId !== null).map((l) => [l.scheduleRowId!, l]));
    const instalments = bill.scheduleRowIds.map((id) => {
      const r = schedule.get(id);
      const l = feeLineOf.get(id);
      return { description: l?.description ?? r?.description ?? 'Fixed fee instalment', billOn: r?.billOn ?? '', amountMinor: l ? l.amountMinor : (r?.amountMinor ?? 0) };
    });
    // A fixed fee billed by writing the recorded time to it (the composer adds no fixed-fee line
    // then): the fee is what that time now bills.
    const timeLines = bill.lines.filter((l) => l.kind === 'time');
    const timeFeeMinor = sumMinor(timeLines.filter((l) => !l.noCharge).map((l) => l.amountMinor));
    const feeWrittenToFixed = matter?.options?.arrangement === 'fixed_fee' && instalments.length === 0 && fixed.length === 0 && timeLines.length > 0;
    const fixedFeeMinor = feeWrittenToFixed ? timeFeeMinor : 0;
    const instalmentsFromTime = instalments.length > 0 && feeLineOf.size === 0;
    const instalmentsBilledMinor = instalmentsFromTime ? timeFeeMinor : sumMinor(instalments.map((i) => i.amountMinor));
    const instalmentsAdjustmentMinor = instalmentsBilledMinor - sumMinor(instalments.map((i) => i.amountMinor));
    return {
      template: layout, ctx: {
        bill, settings, title: template.title, footer: template.footer, showLinePricing, watermark: opts.watermark, currency: bill.currency,
        matter: matter ? { name: matter.name, fileNumber: matter.fileNumber } : { name: '', fileNumber: bill.fileNumber },
        billTo: {
          name: party?.name ?? matter?.clientName ?? '', address: party?.address ?? matter?.client?.address ?? '', taxId: matter?.client?.taxId ?? '',
          // A bill addressed to one of the client's contacts still names the client it is the invoice of (whose tax id it shows).
          client: party?.kind === 'contact' ? (matter?.client?.name ?? matter?.clientName ?? '') : '',
        },
        fees, charges, fixed, fixedHeading, disbursements, other, instalments, instalmentsBilledMinor, instalmentsAdjustmentMinor, feeWrittenToFixed, fixedFeeMinor,
        // The tax per rate above the tax total (lines at more than one rate).
        tax: billTaxRows(layout, bill),
        // Tax rounded on each line can differ by a cent from the rate applied to a subtotal: said, so no reader takes it for an error.
        taxPerLine: bill.totals.taxMinor !== 0 && taxRounding === 'per_line',
        anyAdjusted: [...fees, ...charges].some((l) => l.adjusted),
        // The fixed-fee layout: the time the fee covers, apart from fees charged on top of it.
        workCovered: fees.filter((l) => l.kind === 'time'), otherFees: fees.filter((l) => l.kind !== 'time'),
        feeMinutes: fees.reduce((a, l) => a + (l.minutes ?? 0), 0),
        feesHours: hours(fees.reduce((a, l) => a + (l.minutes ?? 0), 0)),
        mergedDiscount: mergeValues({
          clientName: '', matterName: '', fileNumber: '', number: bill.number, currency: bill.currency, totalMinor: bill.totals.totalMinor,
          dueDate: bill.dueDate, invoiceDate: bill.invoiceDate, retainerRequestMinor: bill.retainerRequestMinor, retainerAppliedMinor: bill.retainerAppliedMinor, discount: bill.discount, firmName: '',
        }),
      },
    };
  }

  /** `pageLabel`: what the foot of each page of a bill of several names before its page number ("Tax invoice 2026.14"). */
  async function billHtml(bill: Bill, opts: { preview: boolean; settings?: BillingSettings; templates?: BillTemplate[]; matter?: MatterCopy | null; initials?: Map<string, string | null>; taxRounding?: string | null }): Promise<{ html: string; template: string; pageLabel: string }> {
    const matter = opts.matter !== undefined ? opts.matter : await store.getMatterCopy(db, bill.matterId);
    const watermark = opts.preview ? (bill.status === 'draft' ? 'DRAFT' : 'PREVIEW') : null;
    const v = await billView(bill, matter, {
      watermark, ...(opts.settings ? { settings: opts.settings } : {}), ...(opts.templates ? { templates: opts.templates } : {}), ...(opts.initials ? { initials: opts.initials } : {}),
      ...(opts.taxRounding !== undefined ? { taxRounding: opts.taxRounding } : {}),
    });
    return { html: views.render(`billing/pdf/${v.template}.njk`, v.ctx), template: v.template, pageLabel: `${v.ctx.title} ${bill.number ?? (watermark ?? 'draft')}` };
  }

  /** A watermarked PDF of any bill (drafts too), rendered now and kept nowhere. */
  async function previewPdf(billId: string): Promise<{ pdf: Uint8Array; filename: string }> {
    const bill = await cmds.findBill(billId);
    if (!bill || bill.status === 'deleted') throw notFound('Bill');
    const { html, pageLabel } = await billHtml(bill, { preview: true });
    return { pdf: await outputs.pdf.render(html, { pageLabel }), filename: pdfFileName(bill.number, bill.billId, true, bill.fileNumber) };
  }

  /**
   * One watermarked PDF of several bills (up to PREVIEW_PDF_BILLS), each starting on a new
   * page, in the order given: "Preview" of several bills is one download.
   */
  async function previewPdfOf(billIds: readonly string[]): Promise<{ pdf: Uint8Array; filename: string }> {
    const ids = [...new Set(billIds)];
    if (ids.length === 0 || ids.length > PREVIEW_PDF_BILLS) throw invalid({ bill: `choose 1 to ${PREVIEW_PDF_BILLS} bills for one PDF` });
    const found = await cmds.findBills(ids);
    const gone = ids.filter((id) => { const b = found.get(id); return !b || b.status === 'deleted'; });
    if (gone.length > 0) throw notFound(gone.length === 1 ? 'Bill' : `${gone.length} of the bills`);
    const settings = await ps.getSettings(db);
    const templates = await ps.listBillTemplates(db);
    const initials = new Map<string, string | null>();
    const docs: string[] = [];
    for (const id of ids) docs.push((await billHtml(found.get(id)!, { preview: true, settings, templates, initials })).html);
    return { pdf: await outputs.pdf.render(combineBillDocuments(docs)), filename: combinedPreviewFileName(ids.length) };
  }

  /**
   * The final PDF of the bill as it stands: produced for its current approval. A bill
   * re-drafted (and perhaps changed and approved again) or deleted keeps the old PDF's row
   * until it is produced again, but that PDF is no longer the bill's.
   */
  async function currentPdf(bill: Bill): Promise<ps.StoredPdf | null> {
    if ((bill.status !== 'approved' && bill.status !== 'finalised') || !bill.approvedAt) return null;
    const p = await ps.findPdf(db, bill.billId);
    return p && p.cycle === bill.approvedAt ? p : null;
  }

  /** The final PDF kept with the bill (null: not produced for its current approval). */
  async function storedPdf(billId: string): Promise<{ pdf: Uint8Array; filename: string; sha256: string } | null> {
    const bill = await cmds.findBill(billId);
    if (!bill || bill.status === 'deleted') throw notFound('Bill');
    const p = await currentPdf(bill);
    return p ? { pdf: p.pdf, filename: pdfFileName(p.number, billId, false), sha256: p.sha256 } : null;
  }

  /** A final PDF of an earlier approval of the bill, kept when it was produced again (null: none for that approval). */
  async function earlierPdf(billId: string, cycle: string): Promise<{ pdf: Uint8Array; filename: string; sha256: string } | null> {
    const bill = await cmds.findBill(billId);
    if (!bill || bill.status === 'deleted') throw notFound('Bill');
    const p = await ps.findEarlierPdf(db, billId, cycle);
    return p ? { pdf: p.pdf, filename: pdfFileName(p.number, billId, false), sha256: p.sha256 } : null;
  }

  // ---- email -------------------------------------------------------------------------------

  async function mailFrom(settings: BillingSettings): Promise<string> {
    return settings.mailFrom.trim() || outputs.mailFrom;
  }

  function mergeFor(bill: Bill, matter: MatterCopy | null, settings: BillingSettings) {
    return mergeValues({
      clientName: matter?.billableParty?.name ?? matter?.clientName ?? '', matterName: matter?.name ?? '', fileNumber: bill.fileNumber,
      number: bill.number, currency: bill.currency, totalMinor: bill.totals.totalMinor, dueDate: bill.dueDate, invoiceDate: bill.invoiceDate,
      retainerRequestMinor: bill.retainerRequestMinor, retainerAppliedMinor: bill.retainerAppliedMinor, discount: bill.discount, firmName: settings.firmName,
    });
  }

  function addressesOf(matter: MatterCopy | null) {
    return { billablePartyEmail: matter?.billableParty?.email ?? null, clientEmail: matter?.client?.email ?? null };
  }

  function recipientsFor(matter: MatterCopy | null): string[] {
    return recipients(matter?.options ?? null, addressesOf(matter));
  }

  /**
   * Where production emails each matter's bills (its options, or the firm's defaults), a
   * warning when the matter uses the client's address and the client has none, and the copies
   * it prints: for many bills in a few queries.
   */
  async function emailTargets(matterIds: readonly string[]): Promise<Map<string, { to: string[]; warning: string | null; copies: number }>> {
    const copies = await store.getMatterCopies(db, [...new Set(matterIds)]);
    const out = new Map<string, { to: string[]; warning: string | null; copies: number }>();
    for (const id of matterIds) {
      const m = copies.get(id) ?? null;
      out.set(id, { to: recipientsFor(m), warning: missingClientAddress(m?.options ?? null, addressesOf(m)), copies: m?.options?.copiesToPrint ?? 0 });
    }
    return out;
  }

  async function emailFor(bill: Bill, matter: MatterCopy | null, settings: BillingSettings, templates?: EmailTemplate[]): Promise<{ subject: string; text: string; template: string }> {
    const t = pickTemplate(templates ?? await ps.listEmailTemplates(db), matter?.options?.emailTemplate);
    return { ...mergeEmail(t, mergeFor(bill, matter, settings)), template: t.name };
  }

  // ---- producing bills -------------------------------------------------------------------------

  // The SMTP sends of all runs through one mailer (its pool of connections) at once.
  const smtpSends = new WeakMap<Mailer, Gate>();
  function smtpSendsOf(mailer: Mailer): Gate {
    let gate = smtpSends.get(mailer);
    if (!gate) { gate = createGate(SMTP_SENDS_AT_ONCE); smtpSends.set(mailer, gate); }
    return gate;
  }

  interface RunCache {
    settings: BillingSettings;
    billTemplates: BillTemplate[];
    emailTemplates: EmailTemplate[];
    /** Timekeepers' initials looked up so far in this run. */
    initials: Map<string, string | null>;
    /** The firm's tax rounding (the bill says when tax is rounded on each line). */
    taxRounding: string | null;
  }

  /** What producing one bill came to, and what its state row gets when its lease is released. */
  interface BillOutcome { outcome: 'done' | 'failed' | 'busy'; error: string | null }
  interface Release { billId: string; cycle: string; token: string; update: ps.StepUpdate; outcome: BillOutcome }

  /** A claimed bill: its lease is held with `token`; `st` is its state when claimed; its matter as billing's copy had it then. */
  interface Claimed { bill: Bill; cycle: string; token: string; st: ps.ProductionState; matter: MatterCopy | null }

  const lost = () => conflict('Lost the bill to another process');

  /**
   * Take the next bills of a run: those not approved (or already produced) get their outcome
   * at once; the others are claimed together in one transaction.
   */
  async function claimBatch(billIds: readonly string[]): Promise<{ claimed: Claimed[]; settled: { billId: string; outcome: BillOutcome }[] }> {
    const settled: { billId: string; outcome: BillOutcome }[] = [];
    const wanted: { bill: Bill; cycle: string }[] = [];
    const found = await cmds.findBills(billIds);
    for (const billId of billIds) {
      const bill = found.get(billId);
      if (!bill) { settled.push({ billId, outcome: { outcome: 'failed', error: 'No such bill' } }); continue; }
      if (bill.status !== 'approved' && bill.status !== 'finalised') { settled.push({ billId, outcome: { outcome: 'failed', error: `The bill is ${bill.status}, not approved` } }); continue; }
      const cycle = bill.approvedAt;
      if (!cycle) { settled.push({ billId, outcome: { outcome: 'failed', error: 'The bill has no approval time' } }); continue; }
      if (bill.status === 'finalised') {
        // Produced in this cycle: done. A bill finalised some other way (no production state)
        // still gets its PDF, copies and email; it is not finalised again.
        const st = await ps.findState(db, billId, cycle);
        if (st?.finalisedAt) { settled.push({ billId, outcome: { outcome: 'done', error: ps.ALREADY_PRODUCED } }); continue; }
      }
      wanted.push({ bill, cycle });
    }
    const token = `${processToken}:${newToken(6)}`;
    const states = wanted.length === 0 ? new Map<string, ps.ProductionState>()
      : await db.transaction().execute((trx) => ps.claimMany(trx, wanted.map((w) => ({ billId: w.bill.billId, cycle: w.cycle })), token, now(), leaseUntil(), outputs.print.target));
    const claimed: Claimed[] = [];
    const matters = await store.getMatterCopies(db, [...new Set(wanted.filter((w) => states.has(w.bill.billId)).map((w) => w.bill.matterId))]);
    // A bill not claimed is held by another process, or was reverted, re-drafted or deleted since it was read.
    const missed = wanted.filter((w) => !states.has(w.bill.billId)).map((w) => w.bill.billId);
    const reread = missed.length ? await cmds.findBills(missed) : new Map<string, Bill>();
    for (const w of wanted) {
      const st = states.get(w.bill.billId);
      if (st) { claimed.push({ ...w, token, st, matter: matters.get(w.bill.matterId) ?? null }); continue; }
      const b = reread.get(w.bill.billId);
      if (b && (b.status === 'approved' || b.status === 'finalised') && b.approvedAt === w.cycle) settled.push({ billId: w.bill.billId, outcome: { outcome: 'busy', error: 'Another process is producing this bill' } });
      else settled.push({ billId: w.bill.billId, outcome: { outcome: 'failed', error: `The bill is ${b ? b.status : 'gone'} now, not the approved bill it was when production began` } });
    }
    return { claimed, settled };
  }

  /**
   * Produce one claimed bill: the steps it still needs, each recorded once done (the PDF and its
   * print copies in one commit, the email in the next, then the `finalise` command). Returns
   * what its state row gets when the lease is released (the caller releases leases in batches).
   */
  async function produceClaimed(ctx: CommandContext, c: Claimed, cache: RunCache): Promise<Release> {
    const { bill, cycle, token, st, matter } = c;
    const billId = bill.billId;
    const mailer = await currentMailer();
    let step: ProductionStep = 'pdf';
    // Whether the email may have left: its send was started and did not fail for certain.
    let sendStarted = false;
    let sendFailedForCertain = false;
    // The place held among the run's SMTP sends, given back once the send's outcome is recorded.
    const smtpSend: { release: (() => void) | null } = { release: null };
    try {
      const copies = matter?.options?.copiesToPrint ?? 0;
      const to = recipientsFor(matter);
      // The addresses an earlier attempt this cycle reached while the mail server refused others: not sent to again.
      const toReach = addressesToReach(to, st.emailSentTo);
      const todo = remainingSteps({ pdfStored: st.pdfStoredAt !== null, printed: st.printedAt !== null, emailed: st.emailedAt !== null, finalised: st.finalisedAt !== null || bill.status === 'finalised' },
        { copies, recipients: to.length });
      const number = bill.number!;
      const wantPrint = todo.includes('print');
      const wantEmail = todo.includes('email');
      // An email that may have been sent already is not sent again by a retry: a clerk decides
      // (Send again, or Mark as sent). It may have been when the server did not confirm it (that
      // attempt recorded so), or when an attempt stopped while sending it: the send was recorded
      // as tried and neither its success nor a failure was recorded. File-drop is idempotent by
      // the message key (its journal), so a retry resends through it safely, but only through it
      // (the transport may have been changed on the settings page since), into the same folder
      // (the server's MAIL_DROP_DIR may have been changed since: its journal is in the old one).
      const stoppedMidSend = st.emailTriedAt !== null && st.emailedAt === null && st.failedStep !== 'email' && !retryMayResend({ transport: st.emailTransport, target: st.emailTarget }, outputs.mailer.kind, mailer);
      // An email that may have left is decided by the clerk even when the matter has no address now (its send-to emptied
      // since): the bill is not finalised as if no email had gone (review 61 F7).
      const mayHaveLeft = st.emailedAt === null && (st.emailUnconfirmedAt !== null || stoppedMidSend);
      const unconfirmed = (wantEmail || (to.length === 0 && st.finalisedAt === null && bill.status !== 'finalised')) && mayHaveLeft;
      const wantSend = wantEmail && !unconfirmed;
      const holdSmtpSend = async () => {
        if (wantSend && mailer.kind === 'smtp' && !smtpSend.release) smtpSend.release = await smtpSendsOf(mailer).acquire();
      };
      // Recorded before the send (with the last failure cleared): a crash mid-send leaves a trace
      // the retry reads; a send that fails for certain clears it again.
      // (Its time when it is written, after any wait for a place among the SMTP sends.)
      const emailTried = (): ps.StepUpdate => (wantSend ? { email_tried_at: now(), email_transport: mailer.kind, email_target: mailer.target, email_to: JSON.stringify(to), last_error: null, failed_step: null } : {});
      let pdf: Uint8Array | null = null;
      let printedPaths: string[] | null = null;
      const print = async (bytes: Uint8Array) => {
        step = 'print';
        // Copies an earlier attempt handed over in another print folder (PRINT_DIR changed since) are not printed again.
        printedPaths = await outputs.print.print({ jobKey: printJobKey(billId, cycle), name: number, pdf: bytes, copies }, { alsoDoneIn: st.printTargets.filter((t) => t !== outputs.print.target) });
      };
      const printedUpdate = (at: string): ps.StepUpdate => (printedPaths ? { printed_at: at, copies, print_detail: printedPaths.join('\n') } : {});
      const auditPrinted = (trx: Executor) => (printedPaths
        ? audit(trx, clock, ctx, { action: 'billing.bill_printed', entityType: 'billing_bill', entityId: billId, after: { number, copies, paths: printedPaths } })
        : Promise.resolve());
      // Email manually, read again just before the send, in the commit that records the send as
      // tried, under the bill's email lock (a manual email takes its claim under it, refused while
      // this lease is held): one sent by hand to every address meanwhile (recorded here as done by
      // hand), one being sent (this attempt stops; a retry finds it recorded), or one that may have
      // gone (held for the clerk's Send again or Mark as sent). Null: nothing by hand; send.
      type LateCheck = { covering: ManualEmail | null; pending: 'sending' | 'unconfirmed' | 'stopped' | null };
      let late: LateCheck | null = null;
      const checkManual = async (trx: Executor, at: string): Promise<ps.StepUpdate> => {
        if (!wantSend) return {};
        await ps.holdBillEmail(trx, billId);
        // The claims before the emails: a manual send that records its email and drops its claim
        // between the two reads (on Postgres each read sees what was committed before it) is seen
        // by the one or the other.
        const claims = await ps.manualClaims(trx, billId);
        const covering = manualEmailCovering(await ps.manualEmails(trx, billId), cycle, toReach);
        late = covering ? { covering, pending: null } : { covering: null, pending: manualEmailPending(claims, cycle, at, to) };
        if (covering) {
          await audit(trx, clock, ctx, { action: 'billing.bill_email_skipped', entityType: 'billing_bill', entityId: billId, after: { number, to, cycle, emailedManually: { at: covering.sentAt, by: covering.sentBy, to: covering.to } } });
          const detail = `Emailed manually by ${covering.sentBy} at ${displayTime(covering.sentAt)} to ${covering.to.join(', ')}: not sent again`;
          return { emailed_at: at, email_to: JSON.stringify(to), email_detail: detail.slice(0, 1000) };
        }
        if (late.pending === 'unconfirmed' || late.pending === 'stopped') {
          await audit(trx, clock, ctx, { action: 'billing.bill_email_unconfirmed', entityType: 'billing_bill', entityId: billId, after: { number, to, cycle, reason: manualWhy(late.pending), manual: true } });
          return { email_unconfirmed_at: at };
        }
        return late.pending === 'sending' ? {} : emailTried();
      };
      if (todo.includes('pdf')) {
        step = 'pdf';
        const noTemplate = missingTemplate(cache.billTemplates, 'bill', bill.request.template, matter?.options?.billTemplate);
        if (noTemplate) throw conflict(noTemplate);
        const { html, template, pageLabel } = await billHtml(bill, { preview: false, settings: cache.settings, templates: cache.billTemplates, matter, initials: cache.initials, taxRounding: cache.taxRounding });
        // A final bill (no watermark, one shape for all): printed with others waiting for a tab, when there are.
        const bytes = await outputs.pdf.render(html, { combinable: true, pageLabel });
        const sha256 = createHash('sha256').update(bytes).digest('hex');
        // The print folder skips a job whose files exist, so printing before the commit that
        // records the PDF and the copies cannot print twice after a crash in between.
        let printError: unknown = null;
        if (wantPrint) {
          try { await print(bytes); } catch (err) { printError = err; }
        }
        if (!printError) await holdSmtpSend();
        const at = now();
        await db.transaction().execute(async (trx) => {
          await ps.savePdf(trx, { billId, cycle, number, template, pdf: bytes, sizeBytes: bytes.byteLength, sha256, createdAt: at });
          const update = { pdf_stored_at: at, ...printedUpdate(at), ...(printError ? {} : await checkManual(trx, at)), claimed_until: leaseUntil() };
          if (!await ps.recordStep(trx, billId, cycle, token, at, update)) throw lost();
          await audit(trx, clock, ctx, { action: 'billing.bill_pdf_stored', entityType: 'billing_bill', entityId: billId, after: { number, cycle, template, sizeBytes: bytes.byteLength, sha256 } });
          await auditPrinted(trx);
        });
        if (printError) throw printError;
        pdf = bytes;
      } else if (wantPrint || wantEmail) {
        const stored = await ps.findPdf(db, billId);
        if (!stored || stored.cycle !== cycle) throw new Error('The stored PDF is missing');
        pdf = stored.pdf;
        if (wantPrint) await print(pdf);
        await holdSmtpSend();
        const at = now();
        await db.transaction().execute(async (trx) => {
          if (!await ps.recordStep(trx, billId, cycle, token, at, { ...printedUpdate(at), ...await checkManual(trx, at), claimed_until: leaseUntil() })) throw lost();
          await auditPrinted(trx);
        });
      }
      if (wantEmail || unconfirmed) {
        step = 'email';
        if (unconfirmed) {
          const why = st.emailUnconfirmedAt !== null ? null : 'an earlier attempt stopped while sending it';
          if (why) {
            const at = now();
            await db.transaction().execute(async (trx) => {
              if (!await ps.recordStep(trx, billId, cycle, token, at, { email_unconfirmed_at: at })) throw lost();
              await audit(trx, clock, ctx, { action: 'billing.bill_email_unconfirmed', entityType: 'billing_bill', entityId: billId, after: { number, to, cycle, reason: why, triedAt: st.emailTriedAt } });
            });
          }
          throw new UnconfirmedEmail(why ?? 'the mail server did not confirm it', true);
        }
      }
      // What the check just before the send found (recorded with it): emailed by hand, or not to be sent now.
      const found = late as LateCheck | null;
      if (wantSend) {
        step = 'email';
        // (Checked in the commit before the send on every path that sends.)
        if (found === null) throw new Error('The email was not checked against Email manually before its send');
        if (found.pending === 'sending') {
          throw conflict('an email of this bill is being sent by hand (Email manually) just now: produce it again in a minute (it is not emailed again when that email reached every address)');
        }
        if (found.pending !== null) throw new UnconfirmedEmail(manualWhy(found.pending), true, true);
      }
      if (found?.covering) {
        // Emailed by hand to every address: recorded as such above, nothing sent.
      } else if (wantEmail) {
        step = 'email';
        const noEmailTemplate = missingTemplate(cache.emailTemplates, 'email', null, matter?.options?.emailTemplate);
        if (noEmailTemplate) throw conflict(noEmailTemplate);
        const mail = await emailFor(bill, matter, cache.settings, cache.emailTemplates);
        // Only to the addresses no earlier attempt reached. (A manual email to some of the addresses only does not
        // count: production's email goes to every address, as the list and the confirmation say.)
        let receipt: MailReceipt = { messageId: st.emailMessageId ?? '', detail: 'every address an earlier attempt did not reach has been taken off the matter: not sent again', refused: [] };
        try {
          // Every address reached already (the one refused was taken off the matter since): nothing to send.
          if (toReach.length > 0) {
            sendStarted = true;
            receipt = await mailer.send({
              messageKey: productionMessageKey(billId, cycle), from: await mailFrom(cache.settings), to: toReach,
              ...(cache.settings.email ? { replyTo: cache.settings.email } : {}),
              subject: mail.subject, text: mail.text,
              attachments: [{ filename: pdfFileName(number, billId, false), contentType: 'application/pdf', content: pdf! }],
            });
          }
        } catch (err) {
          if (!mailMayHaveGone(mailer.kind, err)) { sendFailedForCertain = true; throw err; }
          // The server was handed the message and did not answer in time (or the connection
          // dropped): it may have gone. Recorded so, and not sent again by a retry.
          const at = now();
          await db.transaction().execute(async (trx) => {
            if (!await ps.recordStep(trx, billId, cycle, token, at, { email_unconfirmed_at: at })) throw lost();
            await audit(trx, clock, ctx, { action: 'billing.bill_email_unconfirmed', entityType: 'billing_bill', entityId: billId, after: { number, to, cycle, reason: errorText(err), transport: mailer.kind } });
          });
          throw new UnconfirmedEmail(`the mail server did not confirm it: ${errorText(err)}`, false);
        }
        const at = now();
        // Addresses the server refused while it took the message for the others: the email step fails naming them (the
        // bill is not finalised), the ones reached are kept, and the retry sends it only to those not reached.
        const refused = new Set(receipt.refused.map((r) => addressKey(r.address)));
        const sentNow = toReach.filter((a) => !refused.has(addressKey(a)));
        const sentTo = [...st.emailSentTo, ...sentNow];
        if (receipt.refused.length > 0) {
          await db.transaction().execute(async (trx) => {
            // (No message id yet: the email step is done only when every address is reached.)
            if (!await ps.recordStep(trx, billId, cycle, token, at, { email_sent_to: JSON.stringify(sentTo), email_tried_at: null })) throw lost();
            await audit(trx, clock, ctx, { action: 'billing.bill_email_refused', entityType: 'billing_bill', entityId: billId, after: { number, cycle, sentTo: sentNow, refused: receipt.refused, messageId: receipt.messageId, transport: mailer.kind } });
          });
          sendFailedForCertain = true;
          throw conflict(`the mail server refused ${receipt.refused.map((r) => `${r.address} (${r.reason})`).join(', ')}${sentNow.length > 0 ? `; it was sent to ${sentNow.join(', ')}` : ''}. Correct the address (the matter's send-to), then Retry: it is sent only to the addresses not reached`);
        }
        await db.transaction().execute(async (trx) => {
          // A message id only when production sent it now (else the detail says how every address was reached).
          const sentHere = toReach.length > 0;
          if (!await ps.recordStep(trx, billId, cycle, token, at, { emailed_at: at, ...(sentHere ? { email_message_id: receipt.messageId } : {}), email_detail: receipt.detail.slice(0, 1000), email_sent_to: JSON.stringify(sentTo) })) throw lost();
          await audit(trx, clock, ctx, {
            action: sentHere ? 'billing.bill_emailed' : 'billing.bill_email_skipped', entityType: 'billing_bill', entityId: billId,
            after: { number, to: toReach, ...(st.emailSentTo.length > 0 ? { sentEarlierTo: st.emailSentTo } : {}), subject: mail.subject, template: mail.template, messageId: receipt.messageId, transport: mailer.kind },
          });
        });
        smtpSend.release?.();
      }
      let finalisedNow = false;
      if (todo.includes('finalise')) {
        step = 'finalise';
        try {
          // The bill as claimed: refused if anyone changed it since (then read afresh below).
          await cmds.finaliseRead(ctx, bill);
        } catch (err) {
          // Finalised meanwhile (by hand, or by another process): done; anything else is a failure.
          const fresh = await cmds.findBill(billId);
          if (fresh?.status !== 'finalised') throw fresh?.status === 'approved' ? err : conflict(`The bill is ${fresh?.status ?? 'gone'} now, not approved`);
        }
        finalisedNow = true;
      }
      // (Finalised meanwhile by hand, the finalise step was not needed: the state says so too.)
      const done: ps.StepUpdate = finalisedNow || (st.finalisedAt === null && !todo.includes('finalise')) ? { finalised_at: now() } : {};
      // Claimed already produced (another run finished it between this run's read and its claim): nothing was done, said so.
      const already = todo.length === 0 && st.finalisedAt !== null;
      return { billId, cycle, token, update: { last_error: null, failed_step: null, ...done }, outcome: { outcome: 'done', error: already ? ps.ALREADY_PRODUCED : null } };
    } catch (err) {
      const message = `${step}: ${errorText(err)}`;
      logger.warn({ err, billId, step }, 'bill production step failed');
      // Nothing can have been emailed in this attempt: the trace of a send tried is cleared, so
      // the retry sends it (one that may have gone keeps it, as does an email sent and not recorded).
      const untried: ps.StepUpdate = !(err instanceof UnconfirmedEmail) && (!sendStarted || sendFailedForCertain) ? { email_tried_at: null } : {};
      return { billId, cycle, token, update: { last_error: message, failed_step: step, ...untried }, outcome: { outcome: 'failed', error: message } };
    } finally {
      smtpSend.release?.();
    }
  }

  // ---- runs ---------------------------------------------------------------------------------

  /** Create a run over the given bills (approved ones; others are recorded as failed with the reason). */
  /**
   * A run over these bills. `runId` (the confirmation form's) makes it idempotent: the same
   * confirmation posted again, or several times at once, is the same run (started once).
   */
  async function createRun(ctx: CommandContext, billIds: readonly string[], runId?: string): Promise<{ id: string; created: boolean }> {
    if (runId !== undefined && !/^[0-9a-f-]{36}$/i.test(runId)) throw invalid({ runId: 'is not a run id: reload the page' });
    if (runId !== undefined && await ps.findRun(db, runId)) return { id: runId, created: false };
    const ids = [...new Set(billIds)];
    if (ids.length === 0) throw invalid({ bill: 'select at least one bill' }, 'No bills to produce');
    if (ids.length > MAX_RUN_BILLS) throw invalid({ bill: `at most ${MAX_RUN_BILLS} bills in one run` });
    await refuseNeverApproved(ids, 'produce');
    const rows = new Map((await ps.approvedBills(db, { billIds: ids, limit: MAX_RUN_BILLS })).map((r) => [r.billId, r]));
    const heads = await ps.billHeads(db, ids.filter((id) => !rows.has(id)));
    const at = now();
    const run: Run = { id: runId ?? newId(clock), createdAt: at, createdBy: ctx.actorLabel, total: ids.length, status: 'running', heartbeatAt: at, finishedAt: null };
    try {
      await db.transaction().execute(async (trx) => {
        // Each bill by its number, produced already or not (a finalised one is named too, not by its id).
        await ps.insertRun(trx, run, ids.map((id) => ({ billId: id, number: rows.get(id)?.number ?? heads.get(id)?.number ?? null })));
        await audit(trx, clock, ctx, { action: 'billing.production_started', entityType: 'billing_production_run', entityId: run.id, after: { total: ids.length } });
      });
    } catch (err) {
      // The same confirmation posted at the same moment: the other post created the run.
      if (runId !== undefined && isUniqueViolation(err)) return { id: runId, created: false };
      throw err;
    }
    return { id: run.id, created: true };
  }

  /**
   * Refuse (422 naming `bill`), before anything is written, a list of bills to produce or to
   * revert to draft holding bills no such action could ever apply to: ids billing has no bill
   * for, and bills never approved (a draft, or a draft deleted). A bill that was approved (it has
   * a number and an approval time) and has been reverted, re-drafted or deleted since the page
   * listed it is not refused here: the others are acted on and that one is shown as failed or
   * refused with the reason, as for a bill that changes while a run works.
   */
  async function refuseNeverApproved(ids: readonly string[], action: 'produce' | 'revert'): Promise<void> {
    // The bills' heads only: a run of 10,000 bills reads no lines here.
    const found = await ps.billHeads(db, ids);
    const unknown = ids.filter((id) => !found.has(id));
    const never = ids.flatMap((id) => {
      const b = found.get(id);
      return b && b.number === null && b.approvedAt === null ? [b] : [];
    });
    if (unknown.length === 0 && never.length === 0) return;
    const list = (xs: readonly string[]) => xs.slice(0, 20).join(', ') + (xs.length > 20 ? ` and ${xs.length - 20} more` : '');
    const parts: string[] = [];
    if (unknown.length > 0) parts.push(`no bill has ${unknown.length === 1 ? 'id' : 'ids'} ${list(unknown)}`);
    if (never.length > 0) {
      const why = action === 'produce' ? 'not producible' : 'nothing to revert';
      parts.push(`never approved, so ${why}: ${list(never.map((b) => `the ${b.fileNumber} ${b.status === 'deleted' ? 'deleted draft' : 'draft'} (${b.billId})`))}`);
    }
    const text = parts.join('; ');
    throw invalid({ bill: text }, `Nothing was ${action === 'produce' ? 'produced' : 'reverted'}: ${text}. Go back to Bill production and choose again.`);
  }

  async function processRun(ctx: CommandContext, runId: string, opts: ProduceOptions = {}): Promise<ProductionSummary> {
    const existing = active.get(runId);
    if (existing) return existing;
    const p = (async () => {
      const concurrency = Math.min(Math.max(opts.concurrency ?? PRODUCE_CONCURRENCY, 1), MAX_PRODUCE_CONCURRENCY);
      const items = (await ps.runItems(db, runId)).filter((i) => i.outcome === 'pending' || i.outcome === 'busy');
      const cache: RunCache = {
        settings: await ps.getSettings(db), billTemplates: await ps.listBillTemplates(db), emailTemplates: await ps.listEmailTemplates(db), initials: new Map(),
        taxRounding: (await store.getFirmSettings(db))?.taxRounding ?? null,
      };
      // Outcomes are written (and leases released) in batches: one commit for several bills.
      const queued: { release: Release | null; billId: string; outcome: BillOutcome }[] = [];
      // Bills claimed and not begun when the server began shutting down: their leases let go, their outcome left pending.
      const letGo: { billId: string; cycle: string; token: string }[] = [];
      let left = 0;
      let flushing: Promise<void> = Promise.resolve();
      let flushError: unknown = null;
      let timer: NodeJS.Timeout | null = null;
      const flush = (): Promise<void> => {
        if (timer) { clearTimeout(timer); timer = null; }
        const batch = queued.splice(0, queued.length);
        const freed = letGo.splice(0, letGo.length);
        if (batch.length === 0 && freed.length === 0) return flushing;
        flushing = flushing.then(() => db.transaction().execute(async (trx) => {
          const at = now();
          for (const f of ps.inBillOrder(freed)) await ps.release(trx, f.billId, f.cycle, f.token, at);
          // In bill-id order, as the lease renewal takes the same rows (ps.inBillOrder).
          for (const q of ps.inBillOrder(batch)) {
            if (q.release) await ps.release(trx, q.billId, q.release.cycle, q.release.token, at, q.release.update);
            await ps.setItemOutcome(trx, runId, q.billId, q.outcome.outcome, q.outcome.error, at);
          }
        })).catch((err) => {
          flushError ??= err;
          logger.error({ err, runId }, 'recording production outcomes failed');
        });
        return flushing;
      };
      const settle = (billId: string, outcome: BillOutcome, release: Release | null) => {
        held.delete(billId);
        queued.push({ billId, outcome, release });
        if (queued.length >= RELEASE_BATCH) void flush();
        else timer ??= setTimeout(() => { timer = null; void flush(); }, RELEASE_DELAY_MS);
      };
      // The leases this run holds, renewed on a timer until released, and the run's heartbeat (a run
      // not beaten for a minute shows as interrupted):
      // a bill whose email waits minutes on a slow SMTP server is not taken over meanwhile.
      const held = new Map<string, { billId: string; cycle: string; token: string }>();
      let renewing: Promise<void> | null = null;
      const renew = () => {
        renewing ??= (async () => {
          try {
            const leases = [...held.values()];
            await db.transaction().execute(async (trx) => {
              const at = now();
              if (leases.length > 0) await ps.renewLeases(trx, leases, at, leaseUntil());
              await ps.heartbeat(trx, runId, at);
            });
          } catch (err) {
            logger.warn({ err, runId }, 'renewing production leases failed (retried at the next beat)');
          } finally {
            renewing = null;
          }
        })();
      };
      const renewMs = opts.leaseRenewMs ?? LEASE_RENEW_MS;
      assert(Number.isSafeInteger(renewMs) && renewMs >= 1 && renewMs < LEASE_MS / 2, 'leases are renewed well inside their length');
      const renewTimer = setInterval(renew, renewMs);
      renewTimer.unref();
      let next = 0;
      const workers = Math.min(concurrency, Math.max(items.length, 1));
      const worker = async () => {
        // The server shutting down: no more bills are taken (those begun finish and are recorded).
        while (next < items.length && !stopping) {
          // A few bills at a time (fewer near the end, so the workers finish together).
          const take = Math.max(1, Math.min(CLAIM_BATCH, Math.floor((items.length - next) / workers)));
          const batch = items.slice(next, next + take).map((i) => i.billId);
          next += batch.length;
          let claimed: Claimed[] = [];
          try {
            const r = await claimBatch(batch);
            claimed = r.claimed;
            for (const c of claimed) held.set(c.bill.billId, { billId: c.bill.billId, cycle: c.cycle, token: c.token });
            for (const s of r.settled) settle(s.billId, s.outcome, null);
          } catch (err) {
            for (const billId of batch) settle(billId, { outcome: 'failed', error: errorText(err) }, null);
          }
          for (const c of claimed) {
            if (stopping) {
              held.delete(c.bill.billId);
              letGo.push({ billId: c.bill.billId, cycle: c.cycle, token: c.token });
              left++;
              continue;
            }
            const r = await produceClaimed(ctx, c, cache);
            settle(c.bill.billId, r.outcome, r);
          }
        }
      };
      try {
        await Promise.all(Array.from({ length: workers }, worker));
        await flush();
      } finally {
        clearInterval(renewTimer);
        await renewing;
      }
      if (flushError) throw flushError;
      left += items.length - next;
      if (left > 0) {
        // Stopped by the shutdown with bills not taken: left running with its heartbeat set back past RUN_STALE_MS, so that
        // it shows as stopped part way, with Resume, at once (its bills hold no lease: those begun were released above).
        await db.transaction().execute(async (trx) => {
          await ps.heartbeat(trx, runId, new Date(clock.now().getTime() - RUN_STALE_MS - 1_000).toISOString());
          await audit(trx, clock, ctx, { action: 'billing.production_run_stopped', entityType: 'billing_production_run', entityId: runId, after: { reason: 'The server was shut down', billsLeft: left } });
        });
        logger.info({ runId, left }, 'production run stopped for the shutdown: resume it on its page');
      } else {
        // Finished, and audited with what it came to (review 61: a run's end was not in the audit log).
        await db.transaction().execute(async (trx) => {
          await ps.finishRun(trx, runId, now());
          const counts = { done: 0, failed: 0, busy: 0, pending: 0 };
          for (const i of await ps.runItems(trx, runId)) counts[i.outcome]++;
          await audit(trx, clock, ctx, { action: 'billing.production_run_finished', entityType: 'billing_production_run', entityId: runId, after: counts });
        });
      }
      const all = await ps.runItems(db, runId);
      return {
        runId, total: all.length, items: all,
        done: all.filter((i) => i.outcome === 'done').length, failed: all.filter((i) => i.outcome === 'failed').length, busy: all.filter((i) => i.outcome === 'busy').length,
      };
    })().finally(() => active.delete(runId));
    active.set(runId, p);
    return p;
  }

  /** Produce these bills now (the CLI's and tests' entry): a run, worked to its end. */
  async function produceBills(ctx: CommandContext, billIds: readonly string[], opts: ProduceOptions = {}): Promise<ProductionSummary> {
    const { id: runId } = await createRun(ctx, billIds);
    return processRun(ctx, runId, opts);
  }

  /** Start a run and work it in the background (the page polls runView). */
  async function startRun(ctx: CommandContext, billIds: readonly string[], opts: ProduceOptions & { runId?: string } = {}): Promise<string> {
    const { runId: key, ...produce } = opts;
    const { id: runId, created } = await createRun(ctx, billIds, key);
    if (created) processRun(ctx, runId, produce).catch((err) => logger.error({ err, runId }, 'production run failed'));
    return runId;
  }

  /** Resume a run left unfinished (its process stopped): the bills still pending or busy. */
  async function resumeRun(ctx: CommandContext, runId: string, opts: ProduceOptions = {}): Promise<void> {
    const run = await ps.findRun(db, runId);
    if (!run) throw notFound('Production run');
    // Only a run that stopped, once its stopped process's hold on its bills has run out (resuming before would only find them held).
    const view = await runView(runId);
    if (view && !view.stale) throw conflict(view.run.status === 'done' ? 'This run has finished: nothing to resume' : 'This run is going on: nothing to resume');
    if (view?.resumableAt) throw conflict(`The process that ran this run stopped; its hold on the bills runs out at ${displayTime(view.resumableAt, true)}: resume it then`);
    // Taken by this process only if no one took it since it was read (another Resume at once: that one works it), and audited.
    const took = await db.transaction().execute(async (trx) => {
      if (!(await ps.takeStoppedRun(trx, runId, run.heartbeatAt, now()))) return false;
      const pending = (await ps.runItems(trx, runId)).filter((i) => i.outcome === 'pending' || i.outcome === 'busy').length;
      await audit(trx, clock, ctx, { action: 'billing.production_run_resumed', entityType: 'billing_production_run', entityId: runId, after: { pending } });
      return true;
    });
    if (!took) return;
    processRun(ctx, runId, opts).catch((err) => logger.error({ err, runId }, 'production run failed'));
  }

  /**
   * The server is shutting down: runs in progress take no more bills; the bills they have begun
   * finish (each within its own timeouts) and are recorded; the rest stay pending, the run
   * resumable at once. Resolves when they have stopped, or after `timeoutMs` (then the database
   * closes under them, as a crash would: their bills are taken up by Resume once their leases end).
   */
  async function stopRuns(timeoutMs: number): Promise<void> {
    stopping = true;
    await settledWithin([...active.values()], timeoutMs);
  }

  /** A run marked running that no process here runs and none has beaten for a minute: its process stopped (interrupted). */
  function runStopped(run: ps.Run): boolean {
    return run.status === 'running' && !active.has(run.id) && clock.now().getTime() - Date.parse(run.heartbeatAt) > RUN_STALE_MS;
  }

  /** Of these runs, those whose process stopped (runStopped): the production list says so rather than "being produced". */
  async function stoppedRuns(runIds: readonly string[]): Promise<Set<string>> {
    return new Set((await ps.findRuns(db, runIds)).filter(runStopped).map((r) => r.id));
  }

  async function runView(runId: string): Promise<RunView | null> {
    const run = await ps.findRun(db, runId);
    if (!run) return null;
    const rows = await ps.runItems(db, runId);
    const counts = { pending: 0, done: 0, failed: 0, busy: 0 };
    for (const i of rows) counts[i.outcome]++;
    const stale = runStopped(run);
    const settledIds = rows.filter((i) => i.outcome !== 'pending').map((i) => i.billId);
    const states = settledIds.length > 0 ? await ps.statesFor(db, settledIds) : new Map<string, ps.ProductionState>();
    // Interrupted: its pending bills as they are now, for those it produced but had not yet recorded (outcomes, and the
    // production record's own finalised time, are written in batches after the bill is finalised in its own commit).
    const pendingIds = stale ? rows.filter((i) => i.outcome === 'pending').map((i) => i.billId) : [];
    const finalised = pendingIds.length > 0 ? await ps.finalisedSince(db, pendingIds, run.createdAt) : new Map<string, string>();
    // The bills that failed or were busy here and are no longer approved (reverted, re-drafted or deleted since): no Retry
    // for them, it could only fail again (review 61 F4); the note says what to do.
    const unsettled = rows.filter((i) => i.outcome === 'failed' || i.outcome === 'busy').map((i) => i.billId);
    const heads = unsettled.length > 0 ? await ps.billHeads(db, unsettled) : new Map<string, { status: string }>();
    const items = rows.map((i) => {
      const st = states.get(i.billId);
      const status = heads.get(i.billId)?.status;
      const notApproved = status !== undefined && status !== 'approved' && status !== 'finalised' ? status : null;
      // Still pending in an interrupted run, and finalised (produced: production's last step) since the run began, by its
      // stopped process before it recorded that, or by another run: counted as produced; a Resume finds it produced and sends
      // or prints nothing again. (Reverted, or re-drafted and approved again since: not finalised now; Resume produces it.)
      const finalisedAt = finalised.get(i.billId);
      const unrecorded = finalisedAt !== undefined ? { at: finalisedAt } : null;
      // Failed or busy here, and produced since (by the process that held it, or a retry in another run): said so, no Retry.
      const producedSince = (i.outcome === 'failed' || i.outcome === 'busy') && st !== undefined && st.finalisedAt !== null && st.finalisedAt >= i.updatedAt
        ? { at: st.finalisedAt } : null;
      const emailUnconfirmed = !producedSince && i.outcome === 'failed' && st !== undefined && emailAwaitsDecision(st);
      const retryable = !emailUnconfirmed && !producedSince && notApproved === null && (i.outcome === 'failed' || i.outcome === 'busy');
      // What a produced bill's outputs were: copies printed, where it was emailed (or why not by
      // production). Only from the approval this run finalised (finalised no later than the run
      // recorded it): a bill approved again since has another approval's state, not this run's.
      // Found produced already: nothing this run did, said so with when it was produced (not another run's outputs as this run's).
      const already = i.outcome === 'done' && i.error === ps.ALREADY_PRODUCED ? { at: st?.finalisedAt ?? null } : null;
      const done = !already && i.outcome === 'done' && st !== undefined && st.finalisedAt !== null && st.finalisedAt <= i.updatedAt ? {
        printedCopies: st.printedAt !== null ? (st.copies ?? 0) : 0,
        // Where production's own sends reached (an attempt that reached some addresses while others were refused counts,
        // even when the email step was then done otherwise), and how the step was done when production did not send it.
        emailedTo: productionEmailOf(st).emailedTo,
        emailNote: st.emailedAt !== null && st.emailMessageId === null ? st.emailDetail : null,
      } : null;
      return { ...i, done, already, producedSince, unrecorded, emailUnconfirmed, notApproved, decisionKey: emailUnconfirmed ? newId(clock) : null, retryKey: retryable ? newId(clock) : null };
    });
    // The holds its stopped process still has on the bills it had not finished (a claim or a step renews one between heartbeats).
    const resumableAt = stale ? await ps.heldUntil(db, items.filter((i) => i.outcome === 'pending' && !i.unrecorded).map((i) => i.billId), now()) : null;
    return {
      run, items, stale, resumableAt,
      counts: { ...counts, already: items.filter((i) => i.already).length, producedSince: items.filter((i) => i.producedSince).length, unrecorded: items.filter((i) => i.unrecorded).length },
    };
  }

  /**
   * The clerk's decision on a bill's email that may have been sent (the mail server did not
   * confirm it, or a process stopped while sending it): 'resend' lets the next production send it
   * again (same Message-ID); 'mark_sent' records it as sent, so production goes on to finalise
   * without sending. Audit-logged; refused (409) when there is nothing to decide (decided
   * meanwhile, or the bill is being produced now).
   */
  async function decideUnconfirmedEmail(ctx: CommandContext, billId: string, choice: 'resend' | 'mark_sent'): Promise<void> {
    const bill = await cmds.findBill(billId);
    if (!bill) throw notFound('Bill');
    if ((bill.status !== 'approved' && bill.status !== 'finalised') || !bill.approvedAt) throw conflict(`Bill ${bill.number ?? bill.fileNumber} is ${bill.status}, not approved: there is no email to decide on`);
    const cycle = bill.approvedAt;
    await db.transaction().execute(async (trx) => {
      await ps.holdBillEmail(trx, billId);
      const before = await ps.findState(trx, billId, cycle);
      const at = now();
      const update: ps.StepUpdate = choice === 'resend'
        ? { email_unconfirmed_at: null, email_tried_at: null, email_transport: null, email_target: null, last_error: null, failed_step: null }
        : { emailed_at: at, email_detail: `Marked as sent by ${ctx.actorLabel} (the mail server had not confirmed it)`.slice(0, 1000), email_unconfirmed_at: null, last_error: null, failed_step: null };
      if (!before || !await ps.decideUnconfirmedEmail(trx, billId, cycle, at, update)) {
        throw conflict(`Bill ${bill.number}: its email has no unconfirmed send to decide on (it was decided meanwhile, or the bill is being produced now)`);
      }
      // A manual email of this approval that may have gone is decided on too: it no longer holds production's email.
      await ps.decideManualClaims(trx, billId, cycle, at);
      await audit(trx, clock, ctx, {
        action: choice === 'resend' ? 'billing.bill_email_resend_chosen' : 'billing.bill_email_marked_sent', entityType: 'billing_bill', entityId: billId,
        before: { number: bill.number, cycle, emailUnconfirmedAt: before.emailUnconfirmedAt, emailTriedAt: before.emailTriedAt, lastError: before.lastError },
        after: { number: bill.number, cycle, ...(choice === 'mark_sent' ? { emailedAt: at } : { resend: true }) },
      });
    });
  }

  // ---- settings ------------------------------------------------------------------------------

  async function saveSettings(ctx: CommandContext, input: Omit<BillingSettings, 'version' | 'updatedAt' | 'updatedBy'> & { expectedVersion: number }): Promise<BillingSettings> {
    const e: Record<string, string> = {};
    const limits: [keyof typeof input, number, boolean][] = [
      ['firmName', 200, true], ['address', 1_000, false], ['taxId', 100, false], ['phone', 100, false], ['email', 254, false], ['mailFrom', 254, false], ['paymentNote', 2_000, false],
    ];
    for (const [k, max, required] of limits) {
      const v = String(input[k] ?? '');
      if (required && !v.trim()) e[k] = 'is required';
      else if (v.length > max) e[k] = `must be at most ${max} characters`;
    }
    const emailRe = /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/;
    if (input.email && !emailRe.test(input.email) && !e.email) e.email = 'must be an email address';
    if (input.mailFrom && !emailRe.test(input.mailFrom.replace(/^.*<(.+)>\s*$/, '$1')) && !e.mailFrom) e.mailFrom = 'must be an email address (or Name <address>)';
    if (Object.keys(e).length > 0) throw invalid(e);
    return db.transaction().execute(async (trx) => {
      const before = await ps.getSettings(trx);
      const after: BillingSettings = {
        firmName: input.firmName.trim(), address: input.address.trim(), taxId: input.taxId.trim(), phone: input.phone.trim(), email: input.email.trim(),
        mailFrom: input.mailFrom.trim(), paymentNote: input.paymentNote.trim(), version: before.version + 1, updatedAt: now(), updatedBy: ctx.actorLabel,
      };
      if (before.version !== input.expectedVersion || !await ps.saveSettings(trx, after, before.version)) {
        throw conflict('The settings were changed by someone else meanwhile: reload and try again');
      }
      await audit(trx, clock, ctx, { action: 'billing.settings_changed', entityType: 'billing_settings', entityId: 'firm', before, after });
      return after;
    });
  }

  /** The transport chosen on the settings page, as the outputs take it (null: the server's configuration decides). */
  function choiceOf(t: ps.StoredMailTransport): MailTransportChoice | null {
    if (t.transport === 'file-drop') return { transport: 'file-drop' };
    if (t.transport === 'smtp') return { transport: 'smtp', host: t.smtpHost!, port: t.smtpPort!, secure: t.smtpSecure, user: t.smtpUser, pass: t.smtpPassword };
    return null;
  }

  /**
   * The stored choice with its password opened (the database keeps it sealed: adapters/secrets.ts).
   * `unreadable`: why a kept password cannot be opened (the key changed or is lost); the
   * password then reads as none. `legacy`: it was stored plain, before sealing.
   */
  function opened(stored: ps.StoredMailTransport): { t: ps.StoredMailTransport; unreadable: string | null; legacy: boolean } {
    if (stored.smtpPassword === null) return { t: stored, unreadable: null, legacy: false };
    let o: OpenedSecret;
    try {
      o = outputs.secrets.open(stored.smtpPassword, SMTP_PASSWORD_PURPOSE);
    } catch (err) {
      o = { ok: false, reason: `the server's secret key cannot be read: ${(err as Error).message}` };
    }
    if (!o.ok) return { t: { ...stored, smtpPassword: null }, unreadable: o.reason, legacy: false };
    return { t: { ...stored, smtpPassword: o.plain }, unreadable: null, legacy: o.legacy };
  }

  /** The stored choice, opened; a password still stored plain (kept before sealing) is sealed now, once (audited). */
  async function readMailTransport(): Promise<{ t: ps.StoredMailTransport; unreadable: string | null }> {
    const stored = await ps.getMailTransport(db);
    const o = opened(stored);
    if (o.legacy && stored.smtpPassword !== null) {
      try {
        const plain = stored.smtpPassword;
        const sealed = outputs.secrets.seal(plain, SMTP_PASSWORD_PURPOSE);
        await db.transaction().execute(async (trx) => {
          if (!await ps.sealStoredPassword(trx, plain, sealed)) return;
          await audit(trx, clock, systemContext(newId(clock), 'lexbill'), {
            action: 'billing.mail_password_sealed', entityType: 'billing_settings', entityId: 'mail', after: { sealed: true },
          });
        });
      } catch (err) {
        // Sending still works with the plain one; sealing is tried again on the next read.
        logger.warn({ err: (err as Error).message }, 'the SMTP password kept plain could not be sealed');
      }
    }
    return { t: o.t, unreadable: o.unreadable };
  }

  /** The mailer a send uses now: the page's choice, unless the server's configuration fixes the transport. */
  async function currentMailer(): Promise<Mailer> {
    const { t, unreadable } = await readMailTransport();
    const choice = choiceOf(t);
    if (unreadable && choice?.transport === 'smtp' && choice.user && !outputs.mailFixedByServer) {
      // Nothing is sent without the password: each send fails for certain (no message data was
      // handed over: mailMayHaveGone), saying why.
      const reason = `The SMTP password kept on the billing settings page cannot be read: ${unreadable}. An admin types it again there`;
      return {
        kind: 'smtp', target: `${choice.host}:${choice.port}`,
        send: () => Promise.reject(Object.assign(new Error(reason), { messageDataSent: false })), close: async () => undefined,
      };
    }
    return outputs.mailerFor(choice);
  }

  /** The page's choice (no password, only whether one is kept, or why it cannot be read), and whether the server's configuration fixes it. */
  async function mailTransport() {
    const { t, unreadable } = await readMailTransport();
    return { ...mailTransportView(t), passwordUnreadable: unreadable, version: t.version, updatedAt: t.updatedAt, updatedBy: t.updatedBy, fixedByServer: outputs.mailFixedByServer };
  }

  /** Choose the mail transport (admins; refused while the server's configuration fixes it). Returns false when nothing changed. */
  async function saveMailTransport(ctx: CommandContext, form: MailTransportForm & { expectedVersion: number }): Promise<boolean> {
    if (outputs.mailFixedByServer) throw conflict("The server's configuration sets the mail transport (MAIL_TRANSPORT): change it there, or unset it to choose here");
    return db.transaction().execute(async (trx) => {
      const stored = await ps.getMailTransport(trx);
      if (stored.version !== form.expectedVersion) throw conflict('The mail transport was changed by someone else meanwhile: reload and try again');
      // The rules compare and keep passwords as typed: the stored one opened.
      const { t: before, unreadable, legacy } = opened(stored);
      const made = mailTransportFrom(form, before);
      if ('errors' in made) throw invalid(made.errors);
      if (unreadable && made.fields.transport === 'smtp' && made.fields.smtpUser && form.password === '') {
        throw invalid({ password: `The kept password cannot be read (${unreadable}): type it again` });
      }
      if (sameMailTransport(made.fields, before) && !legacy) return false;
      const plain = made.fields.smtpPassword;
      // The same password kept: its sealed text as stored (not sealed afresh); any other sealed
      // now. One that cannot be opened, kept while another transport is chosen: kept as stored
      // (it opens again if the key comes back).
      const keptUnread = unreadable !== null && made.fields.transport !== 'smtp' && made.fields.smtpUser === stored.smtpUser;
      let sealed: string | null;
      if (keptUnread) sealed = stored.smtpPassword;
      else if (plain === null) sealed = null;
      else if (plain === before.smtpPassword && !legacy && unreadable === null) sealed = stored.smtpPassword;
      else {
        try {
          sealed = outputs.secrets.seal(plain, SMTP_PASSWORD_PURPOSE);
        } catch (err) {
          throw conflict(`The password cannot be kept: the server's secret key cannot be used (${(err as Error).message}). Nothing was changed`);
        }
      }
      const after: ps.StoredMailTransport = { ...made.fields, smtpPassword: sealed, version: stored.version + 1, updatedAt: now(), updatedBy: ctx.actorLabel };
      if (!await ps.saveMailTransport(trx, after, stored.version)) throw conflict('The mail transport was changed by someone else meanwhile: reload and try again');
      // The audit row tells what the column holds: a kept password that cannot be read still counts as kept.
      const passwordChanged = unreadable !== null ? sealed !== stored.smtpPassword : plain !== before.smtpPassword;
      await audit(trx, clock, ctx, {
        action: 'billing.mail_transport_changed', entityType: 'billing_settings', entityId: 'mail',
        before: { ...mailTransportView(before), passwordSet: stored.smtpPassword !== null, ...(unreadable !== null ? { passwordUnreadable: true } : {}) },
        after: { ...mailTransportView(made.fields), passwordSet: sealed !== null, passwordChanged },
      });
      return true;
    });
  }

  /** A template saved from its page: refused (nothing written) when the name is taken or the template changed since the form showed it. */
  async function checkedTemplateSave(trx: Executor, table: 'billing_bill_template' | 'billing_email_template', kind: 'bill' | 'email', values: Record<string, string>, mode: TemplateSaveMode): Promise<void> {
    const name = values.name!;
    if ('create' in mode) {
      const taken = (await ps.templateNamesFolded(trx, table)).get(name.toLowerCase());
      if (taken !== undefined) throw invalid({ name: `${taken === name ? 'is' : `differs only in case from "${taken}", which is`} the name of a ${kind} template already: choose Edit beside it to change it, or another name` });
    }
    if (!await ps.saveTemplateChecked(trx, table, values, now(), mode)) {
      throw conflict(`The ${kind} template ${name} was ${'create' in mode ? 'added' : 'changed'} by someone else meanwhile: reload the page to see it, then make your change again`);
    }
  }

  /**
   * Save a bill template. From its page (`mode`): a new one only under a name not in use (case
   * aside), an edited one only while still as the form showed it (its version); without a mode
   * (the demo seeder, scripts) the name's template is replaced.
   */
  async function saveBillTemplate(ctx: CommandContext, t: BillTemplate, mode?: TemplateSaveMode): Promise<void> {
    const clean = { name: t.name.trim(), layout: t.layout, title: t.title.trim(), footer: t.footer.trim() };
    const e = billTemplateErrors(clean);
    if (Object.keys(e).length > 0) throw invalid(e);
    await db.transaction().execute(async (trx) => {
      const before = await ps.storedBillTemplate(trx, clean.name);
      if (mode) await checkedTemplateSave(trx, 'billing_bill_template', 'bill', clean, mode);
      else await ps.saveBillTemplate(trx, clean, now());
      if (!before) await appendEvent<BillingEvents, 'billing.template_saved'>(trx, clock, ctx, 'billing.template_saved', { kind: 'bill', name: clean.name });
      await audit(trx, clock, ctx, { action: 'billing.bill_template_saved', entityType: 'billing_bill_template', entityId: clean.name, before: before ?? undefined, after: clean });
    });
  }

  /** Save an email template; `mode` as for saveBillTemplate. */
  async function saveEmailTemplate(ctx: CommandContext, t: EmailTemplate, mode?: TemplateSaveMode): Promise<void> {
    const clean = { name: t.name.trim(), subject: t.subject.trim(), body: t.body.replace(/\r\n/g, '\n') };
    const e = emailTemplateErrors(clean);
    if (Object.keys(e).length > 0) throw invalid(e);
    await db.transaction().execute(async (trx) => {
      const before = await ps.storedEmailTemplate(trx, clean.name);
      if (mode) await checkedTemplateSave(trx, 'billing_email_template', 'email', clean, mode);
      else await ps.saveEmailTemplate(trx, clean, now());
      if (!before) await appendEvent<BillingEvents, 'billing.template_saved'>(trx, clock, ctx, 'billing.template_saved', { kind: 'email', name: clean.name });
      await audit(trx, clock, ctx, { action: 'billing.email_template_saved', entityType: 'billing_email_template', entityId: clean.name, before: before ?? undefined, after: clean });
    });
  }

  function parseAddresses(text: string, field: string): string[] {
    const list = text.split(/[,;\s]+/).map((s) => s.trim()).filter(Boolean);
    if (list.length === 0) throw invalid({ [field]: 'give at least one email address' });
    if (list.length > 50) throw invalid({ [field]: 'at most 50 addresses' });
    const bad = list.filter((a) => !isEmailAddress(a));
    if (bad.length > 0) throw invalid({ [field]: `not an email address: ${bad.join(', ')}` });
    return list;
  }

  /** Send a test email through the configured transport (recorded in the audit log). */
  async function sendTestEmail(ctx: CommandContext, toText: string): Promise<MailReceipt> {
    const to = parseAddresses(toText, 'to');
    const settings = await ps.getSettings(db);
    const key = `test:${newId(clock)}`;
    const mailer = await currentMailer();
    const receipt = await mailer.send({
      messageKey: key, from: await mailFrom(settings), to, subject: `Lexbill test email from ${settings.firmName}`,
      text: `This is a test email from Lexbill (${mailer.kind} transport).\n`,
    });
    await db.transaction().execute((trx) => audit(trx, clock, ctx, { action: 'billing.test_email_sent', entityType: 'billing_settings', entityId: 'mail', after: { to, messageId: receipt.messageId, transport: mailer.kind } }));
    return receipt;
  }

  // ---- email manually -------------------------------------------------------------------------

  /**
   * What production emailed of a bill's approval (its state): the addresses it sent to itself (an
   * email step done by a manual email, or marked as sent, is not production's), when, and whether
   * it may have emailed it (a send not confirmed, or one its process stopped in).
   */
  function productionEmailOf(st: ps.ProductionState): { emailedTo: string[]; at: string | null; mayHave: boolean } {
    const sentItself = st.emailedAt !== null && st.emailMessageId !== null;
    return {
      emailedTo: sentItself ? (st.emailSentTo.length > 0 ? st.emailSentTo : st.emailTo ?? []) : st.emailSentTo,
      at: sentItself ? st.emailedAt : null,
      mayHave: st.emailedAt === null && (st.emailUnconfirmedAt !== null || (st.emailTriedAt !== null && st.failedStep !== 'email')),
    };
  }

  /**
   * What production had emailed of a bill's approval when the compose form was shown (its `seen`
   * field): the number of addresses it reached and whether it may have sent it. A form posted
   * after production emailed the bill since is refused (PRODUCED_SINCE) rather than sending a
   * second copy the clerk did not know of.
   */
  function productionMark(st: ps.ProductionState | null, cycle: string | null): string {
    // The approval it was shown under (its time, in ms): what production sent of an earlier approval says nothing of this one's.
    const of = cycle === null ? '' : `.${Date.parse(cycle)}`;
    if (!st) return `0.0${of}`;
    const p = productionEmailOf(st);
    return `${p.emailedTo.length}.${p.mayHave ? 1 : 0}${of}`;
  }

  /** The compose page's starting point: the matter's template merged, its send-to addresses, a key for this one message. */
  async function manualDraft(billId: string) {
    const bill = await cmds.findBill(billId);
    if (!bill || bill.status === 'deleted') throw notFound('Bill');
    // As sending refuses it: no form to fill for nothing.
    if (bill.status === 'draft') throw conflict('A draft cannot be emailed: approve it first (Preview shows it)');
    const matter = await store.getMatterCopy(db, bill.matterId);
    const settings = await ps.getSettings(db);
    const mail = await emailFor(bill, matter, settings);
    // What production sent of this approval (or may have: a send the mail server did not confirm), said above the form.
    const st = bill.approvedAt ? await ps.findState(db, billId, bill.approvedAt) : null;
    const produced = st === null ? null : productionEmailOf(st);
    // Production reached some addresses and not yet the others (the mail server refused them): the form goes to those others.
    const to = recipientsFor(matter);
    const partly = st !== null && st.emailedAt === null && st.emailSentTo.length > 0;
    const stillToReach = partly ? addressesToReach(to, st.emailSentTo) : [];
    return {
      seen: productionMark(st, bill.approvedAt),
      bill, matter, to: stillToReach.length > 0 ? stillToReach : to, stillToReach, subject: mail.subject, text: mail.text, key: newId(clock), hasStoredPdf: (await currentPdf(bill)) !== null, sent: await ps.manualEmails(db, billId),
      produced: produced && (produced.emailedTo.length > 0 || produced.mayHave) ? produced : null,
    };
  }

  /** A manual email sent (messageId '': sent before, by this form); `refused`: the addresses the mail server refused (not reached). */
  type ManualSent = { messageId: string; refused: readonly MailRefusal[] };

  /** Manual emails being sent by this process, by the compose form's key. */
  const sending = new Map<string, Promise<ManualSent>>();

  /**
   * Email a bill as the clerk composed it, once per compose form (its key): a repeat of the
   * form (a second click, a resubmit, the same form posted several times at once, to one server
   * process or to several) waits for the first and sends nothing more. Within a process the
   * repeat waits on the first; across processes the message is claimed in the database, in a
   * commit of its own, before it is sent (billing_manual_email_claim): a process finding it
   * claimed waits until it is recorded as sent (then sends nothing), or until the claim is let go
   * (the send failed for certain: then it claims and sends it itself). A send whose outcome is
   * unknown (the server did not confirm it) leaves the claim 'unconfirmed', and a claim whose
   * lease (LEASE_MS, renewed while the send lasts) ran out is taken as such too (its sender
   * stopped mid-send): the same form posted again is then refused with the reason (409,
   * EMAIL_UNCONFIRMED) and sends nothing; the page offers a fresh form, so sending it again is
   * the clerk's choice.
   */
  async function sendManual(ctx: CommandContext, billId: string, input: { key: string; to: string; cc: string; subject: string; text: string; seen?: string }): Promise<ManualSent> {
    const message = checkedManual(billId, input);
    const inFlight = sending.get(message.key);
    if (inFlight) { await inFlight; return { messageId: '', refused: [] }; }
    const p = sendManualOnce(ctx, billId, message);
    sending.set(message.key, p);
    try { return await p; } finally { sending.delete(message.key); }
  }

  /** The compose form checked, with its message key (the form, the bill and the content). */
  function checkedManual(billId: string, input: { key: string; to: string; cc: string; subject: string; text: string; seen?: string }) {
    const e: Record<string, string> = {};
    if (!/^[0-9a-f-]{36}$/i.test(input.key)) e.key = 'is missing: reload the page';
    if (!input.subject.trim()) e.subject = 'is required';
    else if (input.subject.length > 200) e.subject = 'must be at most 200 characters';
    if (!input.text.trim()) e.text = 'is required';
    else if (input.text.length > 20_000) e.text = 'must be at most 20000 characters';
    if (input.seen !== undefined && input.seen !== '' && !SEEN_MARK.test(input.seen)) e.seen = 'is not as the page wrote it: reload the page';
    let to: string[] = [];
    let cc: string[] = [];
    try { to = parseAddresses(input.to, 'to'); } catch (err) { e.to = (err as { fields?: Record<string, string> }).fields?.to ?? 'is invalid'; }
    if (input.cc.trim()) {
      try { cc = parseAddresses(input.cc, 'cc'); } catch (err) { e.cc = (err as { fields?: Record<string, string> }).fields?.cc ?? 'is invalid'; }
    }
    // Named as the compose form labels them (Message, not "text"), in its order.
    const labels: [string, string][] = [['to', 'To'], ['cc', 'Cc'], ['subject', 'Subject'], ['text', 'Message']];
    if (Object.keys(e).length > 0) {
      const named = labels.filter(([k]) => k in e).map(([, l]) => l);
      // The hidden fields the page writes (its key, what production had sent): only a reload mends them.
      if ('key' in e || 'seen' in e) named.push('the form itself (reload the page)');
      throw invalid(e, `Please correct: ${named.join(', ')}`);
    }
    const subject = input.subject.trim();
    return { key: manualEmailKey(input.key, billId, { to, cc, subject, text: input.text }), to, cc, subject, text: input.text, seen: input.seen || null };
  }

  /**
   * Take the manual email's claim (committed before anything is sent), or learn that it was sent
   * already. While another process holds it, wait (MANUAL_WAIT_MS at most) for its outcome.
   */
  async function claimManual(billId: string, key: string, token: string, cycle: string | null, to: readonly string[], seen: string | null): Promise<'claimed' | 'sent'> {
    const deadline = Date.now() + MANUAL_WAIT_MS;
    for (;;) {
      const got = await db.transaction().execute(async (trx) => {
        const g = await ps.claimManualEmail(trx, { id: key, billId, cycle, to, token, now: now(), until: leaseUntil() });
        // Reverted, re-drafted or voided since its PDF was read (under the email hold the change takes too): nothing is sent, the claim rolled back.
        if (g === 'claimed' && !await ps.stillApprovedAt(trx, billId, cycle)) {
          throw conflict('The bill was changed (reverted to draft, re-drafted or voided) while this email was being prepared: nothing was sent. Reload the bill');
        }
        // Production emailed the bill (or may have) after the form was shown: refused, the claim rolled back. Read
        // under the bill's email hold, with production not holding the bill: its email step, if any, is recorded.
        if (g === 'claimed' && seen !== null && cycle !== null) {
          const since = producedSince(seen, await ps.findState(trx, billId, cycle), cycle);
          if (since) throw new HttpError(409, PRODUCED_SINCE, since);
        }
        return g;
      });
      if (got === 'unconfirmed') {
        throw emailUnconfirmed('an earlier send of this email got no confirmation from the mail server, or stopped part way');
      }
      if (got === 'producing') {
        throw conflict('The bill is being produced just now (its PDF, print copies and any email it is set to get): nothing was sent from here. Reload the page once production has finished to see what it sent, then send this if it is still needed');
      }
      if (got !== 'busy') return got;
      if (Date.now() >= deadline) {
        throw conflict('This email is being sent by another request just now: reload the page in a minute to see whether it was sent');
      }
      await new Promise((r) => setTimeout(r, MANUAL_POLL_MS));
    }
  }

  /** Why a compose form shown at `seen` must not send now (production emailed the bill since), or null. */
  function producedSince(seen: string, st: ps.ProductionState | null, cycle: string): string | null {
    if (!st) return null;
    const [shownN, shownMay, shownCycle] = seen.split('.').map(Number) as [number, number, number | undefined];
    // Shown under another approval (the bill was reverted and approved again since): nothing of this one was seen.
    const sameApproval = shownCycle === undefined || shownCycle === Date.parse(cycle);
    const n = sameApproval ? shownN : 0;
    const may = sameApproval ? shownMay : 0;
    const p = productionEmailOf(st);
    if (p.emailedTo.length > n) {
      return `Production emailed this bill to ${p.emailedTo.join(', ')}${p.at ? ` (${displayTime(p.at)})` : ''} after this page was opened: nothing was sent from here. The page now says what production sent; send this only if it is still needed`;
    }
    if (p.mayHave && may === 0) {
      return 'Production may have emailed this bill after this page was opened (a send the mail server did not confirm, or one its process stopped in): nothing was sent from here. Decide on the production run (Send again or Mark as sent) rather than sending another copy from here';
    }
    return null;
  }

  async function sendManualOnce(ctx: CommandContext, billId: string, input: { key: string; to: string[]; cc: string[]; subject: string; text: string; seen: string | null }): Promise<ManualSent> {
    const { to, cc } = input;
    const bill = await cmds.findBill(billId);
    if (!bill || bill.status === 'deleted') throw notFound('Bill');
    if (bill.status === 'draft') throw conflict('A draft cannot be emailed: approve it first (Preview shows it)');
    if (await ps.manualEmailSent(db, input.key)) return { messageId: '', refused: [] };
    const stored = await currentPdf(bill);
    let pdf = stored?.pdf;
    if (!pdf) {
      const doc = await billHtml(bill, { preview: false });
      pdf = await outputs.pdf.render(doc.html, { pageLabel: doc.pageLabel });
    }
    const settings = await ps.getSettings(db);
    const message: MailMessage = {
      messageKey: `manual:${input.key}`, from: await mailFrom(settings), to, ...(cc.length > 0 ? { cc } : {}),
      ...(settings.email ? { replyTo: settings.email } : {}), subject: input.subject, text: input.text,
      attachments: [{ filename: pdfFileName(bill.number, billId, false), contentType: 'application/pdf', content: pdf }],
    };
    const mailer = await currentMailer();
    const token = `${processToken}:${newToken(6)}`;
    if (await claimManual(billId, input.key, token, bill.approvedAt, [...to, ...cc], input.seen) === 'sent') return { messageId: '', refused: [] };
    // The claim is renewed while the server takes its time (a lapsed claim could be taken over and the email sent twice).
    const renewTimer = setInterval(() => {
      ps.renewManualEmailClaim(db, input.key, token, leaseUntil()).catch((err) => logger.warn({ err, billId }, 'renewing a manual email claim failed'));
    }, LEASE_RENEW_MS);
    renewTimer.unref();
    let receipt: MailReceipt;
    try {
      receipt = await mailer.send(message);
    } catch (err) {
      clearInterval(renewTimer);
      if (mailMayHaveGone(mailer.kind, err)) {
        // Kept as unconfirmed: the same form posted again (by this clerk or a retried request) sends nothing.
        await db.transaction().execute(async (trx) => {
          await ps.markManualEmailUnconfirmed(trx, input.key, token);
          await audit(trx, clock, ctx, { action: 'billing.bill_email_unconfirmed', entityType: 'billing_bill', entityId: billId, after: { number: bill.number, to, cc, subject: message.subject, manual: true, error: errorText(err) } });
        }).catch((e) => logger.warn({ err: e, billId }, 'recording an unconfirmed manual email failed'));
        throw emailUnconfirmed(`the mail server did not confirm it (${errorText(err)})`);
      }
      // Failed for certain: let go, so the same form posted again sends it; said on the form, which keeps what the clerk wrote.
      await ps.releaseManualEmailClaim(db, input.key, token).catch((e) => logger.warn({ err: e, billId }, 'releasing a manual email claim failed'));
      logger.warn({ err, billId }, 'a manual email was not sent');
      throw conflict(`Nothing was sent: ${errorText(err)}`);
    }
    clearInterval(renewTimer);
    const at = now();
    // Recorded as sent to the addresses the server took (one it refused was not reached: production sends to it, and the page says so).
    const refused = new Set(receipt.refused.map((r) => addressKey(r.address)));
    const reached = [...to, ...cc].filter((a) => !refused.has(addressKey(a)));
    try {
      await db.transaction().execute(async (trx) => {
        // Under the bill's email lock, as production reads the manual emails before its send.
        await ps.holdBillEmail(trx, billId);
        await ps.recordManualEmail(trx, { id: input.key, billId, cycle: bill.approvedAt, to: reached, subject: message.subject, messageId: receipt.messageId, detail: receipt.detail.slice(0, 1000), sentAt: at, sentBy: ctx.actorLabel });
        await audit(trx, clock, ctx, { action: 'billing.bill_emailed_manually', entityType: 'billing_bill', entityId: billId, after: { number: bill.number, to, cc, subject: message.subject, messageId: receipt.messageId, ...(receipt.refused.length > 0 ? { refused: receipt.refused } : {}) } });
        await ps.releaseManualEmailClaim(trx, input.key, token);
      });
    } catch (err) {
      // Recorded already by another process (claims are never taken over, so only defensively).
      if (isUniqueViolation(err)) return { messageId: '', refused: [] };
      throw err;
    }
    return { messageId: receipt.messageId, refused: receipt.refused };
  }

  return {
    produceBills, startRun, resumeRun, runView, stoppedRuns, createRun, processRun, decideUnconfirmedEmail, refuseNeverApproved, stopRuns,
    findRun: (id: string) => ps.findRun(db, id),
    billHeads: (ids: readonly string[]) => ps.billHeads(db, ids),
    previewPdf, previewPdfOf, storedPdf, earlierPdf, billHtml,
    saveSettings, saveBillTemplate, saveEmailTemplate, sendTestEmail,
    manualDraft, sendManual, productionEmailOf,
    getSettings: () => ps.getSettings(db),
    listBillTemplates: () => ps.listBillTemplates(db),
    /** A template as its edit form shows it, with the version to save it at (0: a built-in one not stored yet); null: none of that name. */
    billTemplateForEdit: async (name: string): Promise<{ template: BillTemplate; version: number } | null> => {
      const stored = await ps.storedBillTemplate(db, name);
      if (stored) { const { version, ...template } = stored; return { template, version }; }
      const builtIn = (await ps.listBillTemplates(db)).find((t) => t.name === name);
      return builtIn ? { template: builtIn, version: 0 } : null;
    },
    emailTemplateForEdit: async (name: string): Promise<{ template: EmailTemplate; version: number } | null> => {
      const stored = await ps.storedEmailTemplate(db, name);
      if (stored) { const { version, ...template } = stored; return { template, version }; }
      const builtIn = (await ps.listEmailTemplates(db)).find((t) => t.name === name);
      return builtIn ? { template: builtIn, version: 0 } : null;
    },
    listEmailTemplates: () => ps.listEmailTemplates(db),
    approvedBills: (opts: { limit?: number; offset?: number; billIds?: readonly string[] } = {}) => ps.approvedBills(db, opts),
    countApproved: () => ps.countApproved(db),
    statesFor: (ids: readonly string[]) => ps.statesFor(db, ids),
    manualEmailsOfApproved: () => ps.manualEmailsOfApproved(db),
    /** Receipts allocated to each of these bills (billing's copy of the ledger's balances): what a revert releases to credit. */
    receiptsAllocated: (ids: readonly string[]) => receiptsAllocated(db, ids),
    latestOutcomes: (ids: readonly string[]) => ps.latestOutcomes(db, ids),
    pendingOutcomes: (ids: readonly string[]) => ps.pendingOutcomes(db, ids),
    emailTargets,
    describeOutputs: async () => outputs.describe(choiceOf(await ps.getMailTransport(db))),
    mailTransport, saveMailTransport,
    recipientsFor,
  };
}

export type Production = ReturnType<typeof createProduction>;
