/**
 * Bill production rules, pure: which actions the production page offers for a selection
 * (seed 000), which steps a bill still needs, and the idempotency keys of its outputs.
 */

import { assert } from '../../../shared/assert.ts';
import { addressKey } from '../../../shared/email.ts';
export type ProductionAction = 'produce_all' | 'preview_all' | 'revert_all' | 'produce' | 'preview' | 'ebilling' | 'revert' | 'email_manually' | 'create_payment';

export const PRODUCTION_ACTION_LABELS: Record<ProductionAction, string> = {
  produce_all: 'Produce all', preview_all: 'Preview all', revert_all: 'Revert all to draft',
  produce: 'Produce', preview: 'Preview', ebilling: 'E-billing', revert: 'Revert to draft', email_manually: 'Email manually', create_payment: 'Create payment',
};

/**
 * Seed 000: nothing selected offers Produce all, Preview all and Revert all to draft; one
 * bill offers Produce, Preview, E-billing, Revert to draft, Email manually and Create payment;
 * two or more offer Produce, Preview, E-billing and Revert to draft. An empty list offers nothing.
 */
export function productionActions(selectedCount: number, listedCount: number): ProductionAction[] {
  if (!Number.isInteger(selectedCount) || selectedCount < 0) throw new RangeError(`selectedCount must be a count, got ${selectedCount}`);
  if (selectedCount === 0) return listedCount > 0 ? ['produce_all', 'preview_all', 'revert_all'] : [];
  if (selectedCount === 1) return ['produce', 'preview', 'ebilling', 'revert', 'email_manually', 'create_payment'];
  return ['produce', 'preview', 'ebilling', 'revert'];
}

export type ProductionStep = 'pdf' | 'print' | 'email' | 'finalise';
export const PRODUCTION_STEPS: readonly ProductionStep[] = ['pdf', 'print', 'email', 'finalise'];

/** What has been done for a bill in this approval cycle. */
export interface StepState {
  pdfStored: boolean;
  printed: boolean;
  emailed: boolean;
  finalised: boolean;
}

/** The steps still to do, in order: a step done is never done again; a step not wanted is skipped. */
export function remainingSteps(state: StepState, wants: { copies: number; recipients: number }): ProductionStep[] {
  const out: ProductionStep[] = [];
  if (!state.pdfStored) out.push('pdf');
  if (!state.printed && wants.copies > 0) out.push('print');
  if (!state.emailed && wants.recipients > 0) out.push('email');
  if (!state.finalised) out.push('finalise');
  return out;
}

/** The print job key: one per bill and approval, so a retry finds its files. */
export function printJobKey(billId: string, cycle: string): string {
  return `bill:${billId}:${cycle}:print`;
}

/** The production email's key (its Message-ID derives from it). */
export function productionMessageKey(billId: string, cycle: string): string {
  return `bill:${billId}:${cycle}:production-email`;
}

/** A file name for a bill's PDF: the number with anything odd replaced. */
export function pdfFileName(number: string | null, billId: string, preview: boolean, fileNumber?: string): string {
  // A draft (no number yet): its matter's file number and the random end of its id (ids of one
  // run share their time-ordered start, so downloads named by it overwrote each other).
  const stem = (number ?? `${fileNumber ? `${fileNumber}-` : ''}draft-${billId.replace(/-/g, '').slice(-8)}`).replace(/[^A-Za-z0-9._-]+/g, '_');
  return `${preview ? 'PREVIEW-' : ''}bill-${stem}.pdf`;
}

/** Bills in one combined preview PDF (one Chromium render within its timeout); a larger selection is offered in groups of this many. */
export const PREVIEW_PDF_BILLS = 25;

/**
 * Several bills' documents as one, for one preview PDF: the first document's head (every bill
 * template shares it), each bill's body on new pages, and each watermark once (it is fixed
 * in place, so it shows on every page; the same one repeated would darken).
 */
export function combineBillDocuments(docs: readonly string[]): string {
  assert(docs.length >= 1 && docs.length <= PREVIEW_PDF_BILLS, 'one to PREVIEW_PDF_BILLS documents');
  const head = /<head>[\s\S]*?<\/head>/.exec(docs[0]!);
  assert(head !== null, 'a bill document has a head');
  const seen = new Set<string>();
  // Bills watermarked differently (a draft and an approved bill): each mark stays on its own bill's first page.
  const marks = new Set(docs.flatMap((d) => [...d.matchAll(/<div class="watermark">([^<]*)<\/div>/g)].map((m) => m[1]!)));
  const bodies = docs.map((doc, i) => {
    const body = /<body>([\s\S]*)<\/body>/.exec(doc);
    assert(body !== null, 'a bill document has a body');
    const once = body[1]!.replace(/<div class="watermark">([^<]*)<\/div>/g, (all, text: string) => {
      if (marks.size > 1) return `<div class="watermark" style="position: absolute; top: 90mm">${text}</div>`;
      if (seen.has(text)) return '';
      seen.add(text);
      return all;
    });
    return `<section class="bill-document" style="position: relative${i > 0 ? '; break-before: page' : ''}">${once}</section>`;
  });
  return `<!doctype html>\n<html lang="en">\n${head[0]}\n<body>\n${bodies.join('\n')}\n</body>\n</html>\n`;
}

/** The file name of a combined preview. */
export function combinedPreviewFileName(count: number): string {
  assert(Number.isSafeInteger(count) && count >= 1, 'at least one bill');
  return `PREVIEW-${count}-bills.pdf`;
}

/** Links to the combined preview PDFs of these bills, PREVIEW_PDF_BILLS per PDF, in order. */
export function previewPdfGroups(billIds: readonly string[]): { href: string; from: number; to: number }[] {
  const out: { href: string; from: number; to: number }[] = [];
  for (let i = 0; i < billIds.length; i += PREVIEW_PDF_BILLS) {
    const part = billIds.slice(i, i + PREVIEW_PDF_BILLS);
    out.push({ href: `/billing/bills/preview.pdf?${part.map((id) => `bill=${encodeURIComponent(id)}`).join('&')}`, from: i + 1, to: i + part.length });
  }
  return out;
}

/** What a failed send's error says (the SMTP adapter passes nodemailer's errors on as they are). */
interface MailErrorShape { code?: unknown; command?: unknown; responseCode?: unknown; timeoutType?: unknown; originalCode?: unknown; messageDataSent?: unknown }

/** Failures before the server was handed a message: nothing went. */
const NOT_SENT_CODES = new Set(['EAUTH', 'EENVELOPE', 'EDNS', 'ETLS', 'EREQUIRETLS', 'ECONFIG']);
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EADDRNOTAVAIL']);
const SETUP_TIMEOUTS = new Set(['CONNECT_TIMEOUT', 'GREETING_TIMEOUT', 'UPGRADE_TIMEOUT', 'DNS_TIMEOUT']);
const SETUP_COMMANDS = new Set(['API', 'EHLO', 'HELO', 'LHLO', 'STARTTLS', 'MAIL FROM', 'RCPT TO', 'RSET']);

/**
 * A send of the bill's email that may have gone (the mail server did not confirm it, or a process
 * stopped while sending it) and is not recorded as sent: production does not send it again until
 * a clerk chooses Send again or Mark as sent.
 */
export function emailAwaitsDecision(st: { emailUnconfirmedAt: string | null; emailedAt: string | null }): boolean {
  return st.emailUnconfirmedAt !== null && st.emailedAt === null;
}

/**
 * Whether a send that failed may nevertheless have delivered the message: the outcome is
 * unknown, so sending again could send it twice. Over SMTP, a failure before the message data
 * was handed over (the adapter's `messageDataSent: false`: never greeted, a stall or a dropped
 * connection during the envelope, a refusal at MAIL FROM or RCPT TO) is definite: nothing went;
 * so is a refusal the server answered (a 4xx or 5xx reply, to the data too). For an error that
 * does not say (another adapter), a connection never made (refused, no such host, no greeting)
 * and a failure at a command before the data (login, sender, recipients) are definite. A timeout or a dropped connection once the session was under way is not: the
 * server may have taken the message and not said so in time. File-drop writes each message once
 * by its key, so its failures are always definite (a retry finds a message already written).
 */
export function mailMayHaveGone(transport: 'smtp' | 'file-drop', err: unknown): boolean {
  if (transport !== 'smtp') return false;
  if (typeof err !== 'object' || err === null) return true;
  const e = err as MailErrorShape;
  if (typeof e.responseCode === 'number' && e.responseCode >= 400) return false;
  // The SMTP adapter says whether the message data was handed over (the server had answered
  // DATA): before that nothing can have gone, whatever failed (no greeting, a stall or a drop
  // during the envelope); after it, only an answered refusal (above) is definite.
  if (typeof e.messageDataSent === 'boolean') return e.messageDataSent;
  const code = typeof e.code === 'string' ? e.code : '';
  const original = typeof e.originalCode === 'string' ? e.originalCode : code;
  if (NOT_SENT_CODES.has(code)) return false;
  if (NOT_CONNECTED.has(original) || NOT_CONNECTED.has(code)) return false;
  if (code === 'ETIMEDOUT' && typeof e.timeoutType === 'string' && SETUP_TIMEOUTS.has(e.timeoutType)) return false;
  const command = typeof e.command === 'string' ? e.command : '';
  if (SETUP_COMMANDS.has(command) || command.startsWith('AUTH')) return false;
  return true;
}

/** A bill emailed by hand (Email manually): the approval it was sent for (null: recorded before that was), to and cc together, when. */
export interface ManualEmail { cycle: string | null; to: readonly string[]; sentAt: string; sentBy: string }

/** Whether a manual email sent this approval (`cycle`) of the bill: recorded for it, or, recorded without one, sent at or after it. */
function sentForCycle(m: ManualEmail, cycle: string): boolean {
  return m.cycle !== null ? m.cycle === cycle : m.sentAt >= cycle;
}

/** The manual emails that sent this approval of the bill (the client holds this version), oldest first. */
export function manualEmailsOfCycle(manual: readonly ManualEmail[], cycle: string): ManualEmail[] {
  return manual.filter((m) => sentForCycle(m, cycle)).sort((a, b) => (a.sentAt < b.sentAt ? -1 : a.sentAt > b.sentAt ? 1 : 0));
}

/**
 * The manual email that already sent this approval of the bill to every address production
 * would send it to, if any (the latest): production then records the email step as done by
 * hand and sends nothing, so the client does not get the bill twice. Only emails of this
 * approval count (sent for the approval `cycle`, read when the send began; one recorded
 * without it, sent at or after the approval: a bill reverted and approved again is another
 * bill to send), and only when they reached each address (case aside); one
 * that went elsewhere, or to some of them, leaves production to email the bill as usual.
 */
export function manualEmailCovering(manual: readonly ManualEmail[], cycle: string, to: readonly string[]): ManualEmail | null {
  if (to.length === 0) return null;
  let found: ManualEmail | null = null;
  for (const m of manual) {
    if (!sentForCycle(m, cycle)) continue;
    const reached = new Set(m.to.map(addressKey));
    if (to.every((a) => reached.has(addressKey(a))) && (found === null || m.sentAt >= found.sentAt)) found = m;
  }
  return found;
}

/**
 * The addresses production still emails a bill to: its send-to addresses less those an earlier
 * attempt of this approval reached (`sentTo`: the mail server took the message for them while
 * refusing others). Compared as addressKey compares them; in the order of `to`.
 */
export function addressesToReach(to: readonly string[], sentTo: readonly string[]): string[] {
  if (sentTo.length === 0) return [...to];
  const reached = new Set(sentTo.map(addressKey));
  return to.filter((a) => !reached.has(addressKey(a)));
}

/**
 * A manual email claimed before its send (billing_manual_email_claim): under way, or its outcome
 * unknown. `cycle`: the approval it is for; `to`: its addresses (to and cc); `decidedAt`: when the
 * clerk decided on the bill's email in production since (nulls: a claim made before these were kept).
 */
export interface ManualClaim { state: 'sending' | 'unconfirmed'; claimedUntil: string; createdAt: string; cycle: string | null; to: readonly string[] | null; decidedAt: string | null }

/**
 * Whether an email of this approval of the bill is being sent by hand to one of the addresses
 * production is about to email it to, or may have been (Email manually): 'sending' while a send
 * holds its claim (production waits: it emails once that send is recorded, and not at all when
 * it reached every address); 'unconfirmed' when one got no confirmation from the mail server,
 * 'stopped' when its sender stopped mid-send (its lease ran out): the bill may have reached the
 * client, so the clerk decides (Send again or Mark as sent), after which the claim no longer
 * counts. Claims of an earlier approval (a bill reverted and approved again is another bill),
 * or to none of production's addresses, do not count. Null: nothing is under way.
 */
export function manualEmailPending(claims: readonly ManualClaim[], cycle: string, now: string, to: readonly string[]): 'sending' | 'unconfirmed' | 'stopped' | null {
  const ours = new Set(to.map(addressKey));
  let pending: 'sending' | 'stopped' | null = null;
  for (const c of claims) {
    if (c.decidedAt !== null) continue;
    if (c.cycle !== null ? c.cycle !== cycle : c.createdAt < cycle) continue;
    if (c.to !== null && !c.to.some((a) => ours.has(addressKey(a)))) continue;
    if (c.state === 'unconfirmed') return 'unconfirmed';
    if (c.claimedUntil < now) pending = 'stopped';
    else if (pending === null) pending = 'sending';
  }
  return pending;
}
