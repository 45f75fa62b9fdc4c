/**
 * The bill production pages, mounted under /billing: the Bill Production page (approved
 * bills; the toolbar offers exactly seed 000's choices for the selection), the produce
 * confirmation and its progress (a run stored in the database, polled with htmx), revert to
 * draft, the PDF of a bill (the stored final one, or a watermarked preview of any bill),
 * email manually, and the output settings (letterhead, bill and email templates, the active
 * outputs, a test email).
 *
 * The production list is a GET form: its buttons go (formaction) to confirmation pages that
 * carry the CSRF token, to the e-billing export (GET /ebilling/export?bill=..) and to a new
 * receipt (GET /ledger/receipts/new?bill=..).
 */
import { randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import type { Context } from 'hono';
import { displayTime } from '../../shared/clock.ts';
import type { MailRefusal } from '../../shared/ports.ts';
import { HttpError, invalid, notFound } from '../../shared/web/errors.ts';
import type { Flashes } from '../../shared/web/flash.ts';
import { allow } from '../../shared/web/guard.ts';
import { isHtmx, redirectAfterPost, render } from '../../shared/web/render.ts';
import type { AppEnv, Role } from '../../shared/web/types.ts';
import type { BillingCommands } from './commands.ts';
import { PRODUCTION_ACTION_LABELS, addressesToReach, emailAwaitsDecision, manualEmailCovering, manualEmailsOfCycle, previewPdfGroups, productionActions } from './domain/production.ts';
import type { ManualEmail, ProductionAction } from './domain/production.ts';
import { BILL_LAYOUT_LABELS, BILL_LAYOUTS, MERGE_FIELD_HELP, MERGE_FIELDS } from './domain/templates.ts';
import type { BillLayout, BillTemplate, EmailTemplate } from './domain/templates.ts';
import { EMAIL_UNCONFIRMED, MAX_RUN_BILLS, PRODUCED_SINCE } from './production.ts';
import type { Production, TemplateSaveMode } from './production.ts';

const READERS: readonly Role[] = ['admin', 'billing', 'readonly'];
const WRITERS: readonly Role[] = ['admin', 'billing'];
const ID = '{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}}';
const ID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const MAX_SELECTED = 10_000;

type Raw = Record<string, string | string[] | File>;

const str = (raw: Raw, name: string): string => {
  const v = raw[name];
  return typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : '';
};
const all = (raw: Raw, name: string): string[] => {
  const v = raw[name];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string' && x.trim() !== '').map((x) => x.trim());
};

/** Bills the production list shows on a page (a run takes up to MAX_RUN_BILLS: "Produce all" is not limited to those shown). */
export const PRODUCTION_LIST_ROWS = 200;
/** The last page the production list pages to (MAX_RUN_BILLS and more approved bills). */
const MAX_PRODUCTION_PAGE = 1_000;

/** A PDF shown in the browser (inline), named. */
/** The addresses a mail server refused while it took a message for the others, as the page says them ('' when none). */
function refusedText(refused: readonly MailRefusal[]): string {
  return refused.length === 0 ? '' : `, but the mail server refused ${refused.map((r) => `${r.address} (${r.reason})`).join(', ')}: it was not sent to ${refused.length === 1 ? 'that address' : 'those addresses'}`;
}

function pdfResponse(c: Context<AppEnv>, out: { pdf: Uint8Array; filename: string }, cacheControl: string): Response {
  c.header('Content-Type', 'application/pdf');
  c.header('Content-Disposition', `inline; filename="${out.filename}"`);
  c.header('Cache-Control', cacheControl);
  c.header('X-Content-Type-Options', 'nosniff');
  return c.body(out.pdf.buffer.slice(out.pdf.byteOffset, out.pdf.byteOffset + out.pdf.byteLength) as ArrayBuffer, 200);
}

/** Selected bill ids from a query or form: ids only, each once, bounded. */
function selectedIds(values: readonly string[]): string[] {
  const ids = [...new Set(values.filter((v) => ID_RE.test(v)))];
  if (ids.length > MAX_SELECTED) throw new HttpError(422, 'invalid', `At most ${MAX_SELECTED} bills at once`, { bill: `at most ${MAX_SELECTED}` });
  if (values.some((v) => !ID_RE.test(v))) throw new HttpError(422, 'invalid', 'A selected bill id is not an id', { bill: 'must be bill ids' });
  return ids;
}

/** Where a toolbar action goes (the list form is a GET form). */
const ACTION_TARGETS: Record<ProductionAction, string> = {
  produce_all: '/billing/production/produce', produce: '/billing/production/produce',
  preview_all: '/billing/production/preview', preview: '/billing/production/preview',
  revert_all: '/billing/production/revert', revert: '/billing/production/revert',
  ebilling: '/ebilling/export', email_manually: '/billing/production/email', create_payment: '/ledger/receipts/new',
};

/** `flashes`: the message an action's redirect shows (?done=KEY), kept for the user who acted (src/shared/web/flash.ts). */
export function createProductionPages(cmds: BillingCommands, production: Production, flashes: Flashes<string>): Hono<AppEnv> {
  const pages = new Hono<AppEnv>();
  /** `page`: the page it is for (the list, a bill's email page, the settings), so one page's key shows nothing on another. */
  const keepFlash = (c: Context<AppEnv>, page: string, text: string): Promise<string> => flashes.keep(c, text, page);
  const flashOf = (c: Context<AppEnv>, page: string): Promise<string | null> => flashes.of(c, page);
  /**
   * The bills a confirmation listed that were approved again since (reverted, changed and approved: review 61 F1): each
   * form carries `seen` = "<bill id> <its approval time>" per bill, and a bill approved at another time since is not the
   * bill the clerk confirmed. The numbers of those bills, or none. (A bill reverted and not approved again fails on its own.)
   */
  async function approvedAgainSince(raw: Raw): Promise<string[]> {
    const seen = new Map<string, string>();
    for (const v of all(raw, 'seen').slice(0, MAX_RUN_BILLS)) {
      const [id, at] = v.split(' ');
      if (id && at) seen.set(id, at);
    }
    if (seen.size === 0) return [];
    const heads = await production.billHeads([...seen.keys()]);
    return [...seen].flatMap(([id, at]) => {
      const h = heads.get(id);
      return h && h.approvedAt !== null && h.approvedAt !== at ? [h.number ?? h.fileNumber] : [];
    });
  }
  const approvedAgainText = (numbers: readonly string[], action: string) =>
    `${numbers.length === 1 ? `Bill ${numbers[0]} was` : `Bills ${numbers.join(', ')} were`} approved again after this confirmation was shown (changed, perhaps): nothing was ${action}. Look at ${numbers.length === 1 ? 'it' : 'them'} again, then ${action === 'produced' ? 'produce' : 'revert'}.`;
  const canWrite = (c: Context<AppEnv>) => WRITERS.includes(c.get('user')?.role as Role);


  /** The list page a confirmation came from (its form and links go back there), or null for the first. */
  function fromPage(c: Context<AppEnv>): number | null {
    const p = c.req.query('page') ?? '';
    return /^\d{1,4}$/.test(p) && Number(p) > 1 ? Number(p) : null;
  }

  function toolbar(selected: number, listed: number, write: boolean) {
    return productionActions(selected, listed)
      .filter((a) => write || a === 'preview' || a === 'preview_all' || a === 'ebilling')
      .map((a) => ({ action: a, label: PRODUCTION_ACTION_LABELS[a], target: ACTION_TARGETS[a] }));
  }


  /**
   * A bill's manual emails of this approval (Email manually): the one that reached every address
   * production sends to (production records the email as sent by hand and sends nothing), or
   * those that reached only other addresses (production emails the bill as usual).
   */
  function byHand(manual: ReadonlyMap<string, readonly ManualEmail[]>, r: { billId: string; approvedAt: string }, to: readonly string[]) {
    const sent = manual.get(r.billId) ?? [];
    const covering = manualEmailCovering(sent, r.approvedAt, to);
    return { emailedByHand: covering, emailedElsewhere: covering ? [] : sent };
  }

  /**
   * Where production still emails a bill (as production's email step reckons it): its send-to
   * addresses less those an earlier attempt of this approval reached (`sentEarlier`) while the
   * mail server refused others.
   */
  function stillToEmail(to: readonly string[], st: { cycle: string; emailSentTo: string[] } | undefined, approvedAt: string) {
    const sentEarlier = st && st.cycle === approvedAt ? st.emailSentTo : [];
    return { toReach: addressesToReach(to, sentEarlier), sentEarlier };
  }

  /**
   * Each bill's latest production outcome, and which of the runs still holding one of them as
   * pending have stopped with their process (said "stopped part way: resume it", not "being produced").
   */
  async function latestWithStoppedRuns(ids: readonly string[]) {
    const outcomes = await production.latestOutcomes(ids);
    // "Busy" says only that another process held the bill when a run came to it: the run that process was working (still
    // holding the bill as pending, going on or stopped with its process) is what the clerk needs (review 61 F2).
    const busy = [...outcomes.values()].filter((o) => o.outcome === 'busy').map((o) => o.billId);
    if (busy.length > 0) for (const [id, p] of await production.pendingOutcomes(busy)) outcomes.set(id, p);
    const stopped = await production.stoppedRuns([...outcomes.values()].filter((o) => o.outcome === 'pending').map((o) => o.runId));
    return { outcomes, stopped };
  }

  /**
   * `pageAsked`: the list page the clerk came from (?page=N; a confirmation's form posts it back,
   * so a refused Produce or Revert shows the list where the clerk left it).
   */
  async function listContext(c: Context<AppEnv>, selected: readonly string[], extra: Record<string, unknown> = {}, pageAsked: string = c.req.query('page') ?? '') {
    // A page of the approved bills (digits only; past the last: the last).
    const total = await production.countApproved();
    const asked = /^\d{1,4}$/.test(pageAsked) ? Math.max(1, Number(pageAsked)) : 1;
    const page = Math.min(asked, MAX_PRODUCTION_PAGE, Math.max(1, Math.ceil(total / PRODUCTION_LIST_ROWS)));
    const rows = await production.approvedBills({ limit: PRODUCTION_LIST_ROWS, offset: (page - 1) * PRODUCTION_LIST_ROWS });
    const ids = rows.map((r) => r.billId);
    const { outcomes, stopped } = await latestWithStoppedRuns(ids);
    const states = await production.statesFor(ids);
    // Where production sends each bill: the client's address (when the matter uses it and there is one) and every typed address.
    const targets = await production.emailTargets(rows.map((r) => r.matterId));
    const manual = await production.manualEmailsOfApproved();
    const chosen = new Set(selected);
    return {
      bills: rows.map((r) => {
        // This approval's production only: a bill reverted or re-drafted and approved again shows
        // nothing of an earlier approval's outcome (its failure, or its PDF, print and email). A
        // run still waiting to produce it (pending) is shown whenever it was made: it will produce this approval.
        const latest = outcomes.get(r.billId);
        const failed = latest && (latest.outcome === 'pending' || latest.updatedAt >= r.approvedAt) ? latest : undefined;
        const st = states.get(r.billId);
        const target = targets.get(r.matterId);
        const { toReach, sentEarlier } = stillToEmail(target?.to ?? [], st, r.approvedAt);
        return {
          ...r, selected: chosen.has(r.billId), copies: target?.copies ?? 0,
          emails: toReach.join(', '), sentEarlier, emailWarning: target?.warning ?? null, ...byHand(manual, r, toReach),
          failure: failed && (failed.outcome === 'failed' || failed.outcome === 'busy') ? failed.error : null,
          failureRun: failed && failed.outcome === 'failed' ? failed.runId : null,
          // Waiting in a run (going on, or stopped): the clerk who left its progress page finds it again here.
          producingRun: failed && failed.outcome === 'pending' ? failed.runId : null,
          producingStopped: failed !== undefined && failed.outcome === 'pending' && stopped.has(failed.runId),
          state: st && st.cycle === r.approvedAt ? st : null,
        };
      }),
      total, page, from: total === 0 ? 0 : (page - 1) * PRODUCTION_LIST_ROWS + 1, to: (page - 1) * PRODUCTION_LIST_ROWS + rows.length,
      prevPage: page > 1 ? page - 1 : null, nextPage: page * PRODUCTION_LIST_ROWS < total && page < MAX_PRODUCTION_PAGE ? page + 1 : null,
      toolbar: toolbar(selected.length, rows.length, canWrite(c)), selectedCount: selected.length, can: { write: canWrite(c) }, ...extra,
    };
  }

  // ---- the production list ------------------------------------------------------------------

  pages.get('/production', allow(READERS), async (c) => {
    const selected = selectedIds(c.req.queries('bill') ?? []);
    const ctx = await listContext(c, selected, { flash: await flashOf(c, 'list') });
    return render(c, 'billing/production.njk', ctx);
  });

  /** The toolbar for a selection (htmx, on each checkbox change). */
  pages.get('/production/toolbar', allow(READERS), async (c) => {
    let selected: string[];
    try {
      selected = selectedIds(c.req.queries('bill') ?? []);
    } catch (e) {
      // htmx swaps the toolbar itself: a refusal comes back as the toolbar (no choices but the note), so the page keeps
      // its toolbar and the next tick asks again; an error box in its place took the toolbar away until a reload.
      if (!(e instanceof HttpError) || !isHtmx(c)) throw e;
      return render(c, 'billing/_production_toolbar.njk', { toolbar: [], selectedCount: 0, error: e.message }, e.status as 422);
    }
    // Not htmx (a link opened, JavaScript off): the production list with the selection and its toolbar.
    if (!isHtmx(c)) return render(c, 'billing/production.njk', await listContext(c, selected));
    // (The bills a page lists: a count, not the rows.)
    const listed = Math.min(await production.countApproved(), PRODUCTION_LIST_ROWS);
    return render(c, 'billing/_production_toolbar.njk', { toolbar: toolbar(selected.length, listed, canWrite(c)), selectedCount: selected.length });
  });

  /** The selected approved bills, or with none selected every one (as many as one run takes). */
  async function billsFor(selected: string[]) {
    return production.approvedBills(selected.length === 0 ? { limit: MAX_RUN_BILLS } : { billIds: selected, limit: MAX_RUN_BILLS });
  }

  // ---- produce -------------------------------------------------------------------------------

  pages.get('/production/produce', allow(WRITERS), async (c) => {
    const selected = selectedIds(c.req.queries('bill') ?? []);
    const rows = await billsFor(selected);
    const bills = [];
    const targets = await production.emailTargets(rows.map((r) => r.matterId));
    const manual = await production.manualEmailsOfApproved();
    const states = await production.statesFor(rows.map((r) => r.billId));
    // Each bill of the run: the addresses production still emails, and its manual emails of this approval (byHand), read once.
    const reach = rows.map((r) => stillToEmail(targets.get(r.matterId)?.to ?? [], states.get(r.billId), r.approvedAt));
    const hand = rows.map((r, i) => byHand(manual, r, reach[i]!.toReach));
    for (const [i, r] of rows.slice(0, 200).entries()) {
      const target = targets.get(r.matterId);
      // A send of this approval that may have gone (the mail server did not confirm it): Produce does not send it until a clerk decides.
      const st = states.get(r.billId);
      const emailUnconfirmed = st !== undefined && st.cycle === r.approvedAt && emailAwaitsDecision(st);
      bills.push({ ...r, copies: target?.copies ?? 0, to: reach[i]!.toReach, sentEarlier: reach[i]!.sentEarlier, emailWarning: target?.warning ?? null, emailUnconfirmed, ...hand[i]! });
    }
    // Every bill of the run already emailed by hand to all its addresses: not emailed again.
    const emailedByHand = hand.filter((h) => h.emailedByHand).length;
    // Every bill of the run whose client has no address (not only those shown): each is finalised without that email.
    const unaddressed = rows.filter((r) => targets.get(r.matterId)?.warning).map((r) => ({ number: r.number, fileNumber: r.fileNumber, otherAddresses: targets.get(r.matterId)!.to.length }));
    return render(c, 'billing/production_confirm.njk', {
      // Never saved: the bills and their emails would go out under the placeholder firm name.
      letterheadUnset: (await production.getSettings()).version === 0,
      gone: selected.length - rows.length,
      rows, bills, unaddressed, emailedByHand, more: Math.max(rows.length - bills.length, 0), all: selected.length === 0, outputs: await production.describeOutputs(),
      total: selected.length === 0 ? await production.countApproved() : rows.length, maxRun: MAX_RUN_BILLS, runId: randomUUID(),
      can: { admin: c.get('user')?.role === 'admin' }, listPage: fromPage(c),
    });
  });

  // A run's form address opened again: the production list, not "no page at this address".
  pages.get('/production/runs', allow(READERS), (c) => c.redirect('/billing/production', 303));

  pages.post('/production/runs', allow(WRITERS), async (c) => {
    const raw = await c.req.parseBody({ all: true }) as Raw;
    // The bills the confirmation listed (as Revert all): "Produce all" is every bill shown when it was confirmed.
    const ids = selectedIds(all(raw, 'bill'));
    if (ids.length === 0) {
      return render(c, 'billing/production.njk', await listContext(c, [], { error: 'Select the bills to produce' }, str(raw, 'page')), 422);
    }
    // The confirmation's (or Retry's) run id: the same form posted again (or at once) is the same
    // run. A post without one would make a new run each time it is sent: refused.
    const key = str(raw, 'runId');
    if (key === '') {
      return render(c, 'billing/production.njk', await listContext(c, [], { error: 'The form has no key: reload the page', errors: { runId: 'is missing: reload the page' } }, str(raw, 'page')), 422);
    }
    const again = await approvedAgainSince(raw);
    if (again.length > 0) {
      return render(c, 'billing/production.njk', await listContext(c, [], { error: approvedAgainText(again, 'produced') }, str(raw, 'page')), 409);
    }
    let runId: string;
    try {
      runId = await production.startRun(c.get('command'), ids, { runId: key });
    } catch (e) {
      // Ids of no bill, or bills never approved: refused whole, nothing written (the list shows why).
      if (!(e instanceof HttpError) || e.status !== 422) throw e;
      return render(c, 'billing/production.njk', await listContext(c, [], { error: e.message, errors: e.fields }, str(raw, 'page')), 422);
    }
    return redirectAfterPost(c, `/billing/production/runs/${runId}`);
  });

  pages.get(`/production/runs/:id${ID}`, allow(READERS), async (c) => {
    const view = await production.runView(c.req.param('id'));
    if (!view) throw notFound('Production run');
    const ctx = { ...view, can: { write: canWrite(c) }, finished: view.run.status === 'done' };
    if (isHtmx(c)) return render(c, 'billing/_production_progress.njk', ctx);
    return render(c, 'billing/production_run.njk', ctx);
  });

  pages.post(`/production/runs/:id${ID}/resume`, allow(WRITERS), async (c) => {
    const id = c.req.param('id');
    try {
      await production.resumeRun(c.get('command'), id);
    } catch (e) {
      // Too early (the stopped process still holds the bills): the run's page again, saying until when.
      if (!(e instanceof HttpError) || e.status !== 409) throw e;
      const view = (await production.runView(id))!;
      return render(c, 'billing/production_run.njk', { ...view, can: { write: canWrite(c) }, finished: view.run.status === 'done', error: e.message }, 409);
    }
    return redirectAfterPost(c, `/billing/production/runs/${id}`);
  });

  /**
   * A bill whose email may have been sent (the mail server did not confirm it): the clerk sends it
   * again or marks it as sent, then a run (the form's key: the same form posted again is that
   * run) finishes the bill.
   */
  pages.post(`/production/bills/:id${ID}/email-decision`, allow(WRITERS), async (c) => {
    const id = c.req.param('id');
    const raw = await c.req.parseBody() as Raw;
    const choice = str(raw, 'choice');
    const key = str(raw, 'runId');
    if (choice !== 'resend' && choice !== 'mark_sent') throw new HttpError(422, 'invalid', 'Choose Send again or Mark as sent', { choice: 'must be resend or mark_sent' });
    if (!ID_RE.test(key)) throw new HttpError(422, 'invalid', 'The form has no key: reload the page', { runId: 'is missing: reload the page' });
    if (await production.findRun(key)) return redirectAfterPost(c, `/billing/production/runs/${key}`);
    try {
      await production.decideUnconfirmedEmail(c.get('command'), id, choice);
    } catch (e) {
      if (!(e instanceof HttpError) || e.status !== 409) throw e;
      // Posted twice at once: the other post decided and started the run.
      if (await production.findRun(key)) return redirectAfterPost(c, `/billing/production/runs/${key}`);
      return render(c, 'billing/production.njk', await listContext(c, [], { error: e.message }), 409);
    }
    const runId = await production.startRun(c.get('command'), [id], { runId: key });
    return redirectAfterPost(c, `/billing/production/runs/${runId}`);
  });

  // ---- preview --------------------------------------------------------------------------------

  pages.get('/production/preview', allow(READERS), async (c) => {
    const selected = selectedIds(c.req.queries('bill') ?? []);
    if (selected.length === 1) return c.redirect(`/billing/bills/${selected[0]}/pdf?preview=1`, 303);
    const rows = await billsFor(selected);
    return render(c, 'billing/production_preview.njk', { rows, groups: previewPdfGroups(rows.map((r) => r.billId)) });
  });

  // ---- revert to draft --------------------------------------------------------------------------

  pages.get('/production/revert', allow(WRITERS), async (c) => {
    const selected = selectedIds(c.req.queries('bill') ?? []);
    const rows = await billsFor(selected);
    const paid = await production.receiptsAllocated(rows.map((r) => r.billId));
    // Bills carrying receipts: the revert releases them to the client's credit until the bill is approved again.
    const receipted = rows.filter((r) => (paid.get(r.billId) ?? 0) > 0).map((r) => ({ ...r, paidMinor: paid.get(r.billId)! }));
    // Bills already emailed manually in this approval: the client holds the version being reverted.
    const manual = await production.manualEmailsOfApproved();
    const emailed = rows.flatMap((r) => {
      const sent = manualEmailsOfCycle(manual.get(r.billId) ?? [], r.approvedAt);
      return sent.length ? [{ ...r, emails: sent }] : [];
    });
    // Bills production has emailed or printed in this approval (or may have emailed: a send not confirmed): the client or
    // the print room holds them. Approved again after a change, they are produced again (emailed and printed again).
    const states = await production.statesFor(rows.map((r) => r.billId));
    const produced = rows.flatMap((r) => {
      const st = states.get(r.billId);
      if (!st || st.cycle !== r.approvedAt) return [];
      const { emailedTo, at, mayHave } = production.productionEmailOf(st);
      const printed = st.printedAt !== null ? st.copies ?? 0 : 0;
      const what = [
        ...(emailedTo.length > 0 ? [`emailed to ${emailedTo.join(', ')}${at ? ` ${displayTime(at)}` : ''}`] : []),
        ...(mayHave ? [emailedTo.length > 0 ? 'may have been emailed to the others' : 'may have been emailed (not confirmed)'] : []),
        ...(printed > 0 ? [`${printed} cop${printed === 1 ? 'y' : 'ies'} printed ${displayTime(st.printedAt!)}`] : []),
      ];
      return what.length > 0 ? [{ ...r, what: what.join('; ') }] : [];
    });
    // Bills the firm's period rule keeps posted (undoing them would post in their own, past period): named, and refused when posted.
    const { undoRefusalOf } = await cmds.periodNotes();
    const kept = rows.flatMap((r) => { const why = undoRefusalOf(r.invoiceDate); return why ? [{ ...r, why }] : []; });
    // Bills a production run is producing now (pending in a run going on): the revert refuses them; said first.
    const { outcomes, stopped } = await latestWithStoppedRuns(rows.map((r) => r.billId));
    const producing = rows.flatMap((r) => {
      const o = outcomes.get(r.billId);
      return o && o.outcome === 'pending' && !stopped.has(o.runId) ? [{ ...r, runId: o.runId }] : [];
    });
    return render(c, 'billing/production_revert.njk', {
      rows, receipted, emailed, emailedIds: [...emailed, ...produced].map((r) => r.billId), produced, kept, producing, producingIds: producing.map((r) => r.billId),
      blocked: new Set([...kept, ...producing].map((r) => r.billId)).size, all: selected.length === 0, gone: selected.length - rows.length, listPage: fromPage(c),
    });
  });

  pages.post('/production/revert', allow(WRITERS), async (c) => {
    const raw = await c.req.parseBody({ all: true }) as Raw;
    const ids = selectedIds(all(raw, 'bill'));
    if (ids.length === 0) return render(c, 'billing/production.njk', await listContext(c, [], { error: 'Select the bills to revert' }, str(raw, 'page')), 422);
    const failures: string[] = [];
    let reverted = 0;
    // Ids of no bill, or of bills never approved (no revert confirmation listed them): refused
    // whole before any bill is reverted, as producing them is. A bill approved when listed and
    // changed since is refused on its own below (the others are reverted).
    try {
      await production.refuseNeverApproved(ids, 'revert');
    } catch (e) {
      if (!(e instanceof HttpError) || e.status !== 422) throw e;
      return render(c, 'billing/production.njk', await listContext(c, [], { error: e.message, errors: e.fields }, str(raw, 'page')), 422);
    }
    const again = await approvedAgainSince(raw);
    if (again.length > 0) {
      return render(c, 'billing/production.njk', await listContext(c, [], { error: approvedAgainText(again, 'reverted') }, str(raw, 'page')), 409);
    }
    // Refusals name each bill as the clerk knows it (its number), not by id.
    const found = await cmds.findBills(ids);
    const label = (id: string) => {
      const b = found.get(id);
      return b ? b.number ?? `the ${b.fileNumber} draft` : id;
    };
    for (const id of ids) {
      try {
        await cmds.revert(c.get('command'), id);
        reverted++;
      } catch (e) {
        if (!(e instanceof HttpError) || (e.status !== 409 && e.status !== 404)) throw e;
        failures.push(`${label(id)}: ${e.message}`);
      }
    }
    if (failures.length > 0) {
      return render(c, 'billing/production.njk', await listContext(c, [], { error: `Reverted ${reverted}; not reverted: ${failures.join('; ')}` }, str(raw, 'page')), 409);
    }
    return redirectAfterPost(c, `/billing/production?done=${await keepFlash(c, 'list', `Reverted ${reverted} bill${reverted === 1 ? '' : 's'} to draft`)}`);
  });

  // ---- email manually ------------------------------------------------------------------------------

  pages.get('/production/email', allow(WRITERS), async (c) => {
    const selected = selectedIds(c.req.queries('bill') ?? []);
    if (selected.length !== 1) throw new HttpError(422, 'invalid', 'Email manually needs exactly one bill', { bill: 'select one bill' });
    return c.redirect(`/billing/bills/${selected[0]}/email`, 303);
  });

  pages.get(`/bills/:id${ID}/email`, allow(WRITERS), async (c) => {
    const d = await production.manualDraft(c.req.param('id'));
    return render(c, 'billing/email_compose.njk', {
      ...d, form: { to: d.to.join(', '), cc: '', subject: d.subject, text: d.text, key: d.key, seen: d.seen }, errors: {}, flash: await flashOf(c, `email:${c.req.param("id")}`),
    });
  });

  pages.post(`/bills/:id${ID}/email`, allow(WRITERS), async (c) => {
    const id = c.req.param('id');
    const raw = await c.req.parseBody() as Raw;
    const form = { key: str(raw, 'key'), to: str(raw, 'to'), cc: str(raw, 'cc'), subject: str(raw, 'subject'), text: str(raw, 'text'), seen: str(raw, 'seen') };
    try {
      const sent = await production.sendManual(c.get('command'), id, form);
      return redirectAfterPost(c, `/billing/bills/${id}/email?done=${await keepFlash(c, `email:${id}`, `Email sent${refusedText(sent.refused)}`)}`);
    } catch (e) {
      if (!(e instanceof HttpError) || (e.status !== 409 && e.status !== 422)) throw e;
      const d = await production.manualDraft(id);
      // An email that may have been sent: Send on this page again is a new message (a fresh key), sent only when the clerk chooses.
      // Production emailed it since the form was shown: the form again as typed, now knowing what production sent (posted again, it sends).
      const shown = e.code === EMAIL_UNCONFIRMED ? { ...form, key: d.key, seen: d.seen } : e.code === PRODUCED_SINCE ? { ...form, seen: d.seen } : form;
      return render(c, 'billing/email_compose.njk', { ...d, form: shown, errors: e.fields, error: e.message, unconfirmed: e.code === EMAIL_UNCONFIRMED }, e.status);
    }
  });

  // ---- the PDF ----------------------------------------------------------------------------------------

  // Several bills' previews as one PDF (the preview pages link groups of them).
  pages.get('/bills/preview.pdf', allow(READERS), async (c) => {
    return pdfResponse(c, await production.previewPdfOf(selectedIds(c.req.queries('bill') ?? [])), 'no-store');
  });

  pages.get(`/bills/:id${ID}/pdf`, allow(READERS), async (c) => {
    const id = c.req.param('id');
    const preview = c.req.query('preview') === '1';
    // ?earlier=APPROVAL: the PDF of an earlier approval, kept when the bill was produced again.
    const earlier = c.req.query('earlier');
    if (earlier !== undefined) {
      if (!/^\d{4}-\d\d-\d\dT[0-9:.]{8,12}Z$/.test(earlier)) throw invalid({ earlier: 'must be the approval time the bill page links to' });
      const kept = await production.earlierPdf(id, earlier);
      if (!kept) throw notFound('Earlier PDF (the bill has none for that approval)');
      return pdfResponse(c, kept, 'private, max-age=0');
    }
    const out = preview ? await production.previewPdf(id) : await production.storedPdf(id);
    if (!out) throw notFound('PDF (the bill has not been produced: use ?preview=1)');
    return pdfResponse(c, out, preview ? 'no-store' : 'private, max-age=0');
  });

  // ---- settings ------------------------------------------------------------------------------------------

  async function settingsContext(c: Context<AppEnv>, extra: Record<string, unknown> = {}) {
    const settings = await production.getSettings();
    const mail = await production.mailTransport();
    return {
      settings, letterhead: settings, letterheadErrors: {}, billTemplates: await production.listBillTemplates(), emailTemplates: await production.listEmailTemplates(),
      layouts: BILL_LAYOUTS.map((l) => ({ value: l, label: BILL_LAYOUT_LABELS[l] })), mergeFields: MERGE_FIELDS.map((f) => ({ name: f, help: MERGE_FIELD_HELP[f] })),
      outputs: await production.describeOutputs(), can: { write: canWrite(c), mail: c.get('user')?.role === 'admin' },
      mail, mailForm: { transport: mail.transport, host: mail.host ?? '', port: mail.port === null ? '587' : String(mail.port), secure: mail.secure, user: mail.user ?? '' }, mailErrors: {},
      billForm: { name: '', layout: 'itemised', title: 'Tax invoice', footer: '' }, billErrors: {},
      emailForm: { name: '', subject: '', body: '' }, emailErrors: {}, testErrors: {}, testTo: '',
      flash: await flashOf(c, 'settings'), error: null, ...extra,
    };
  }

  // ?editBill=NAME / ?editEmail=NAME: the template's form filled in with it, at its version (writers only; others see the lists).
  pages.get('/settings', allow(READERS), async (c) => {
    const extra: Record<string, unknown> = {};
    const editBill = c.req.query('editBill');
    const editEmail = c.req.query('editEmail');
    if (canWrite(c) && editBill) {
      const found = await production.billTemplateForEdit(editBill);
      if (!found) throw notFound('Bill template');
      Object.assign(extra, { billForm: found.template, billEdit: { name: found.template.name, version: found.version } });
    }
    if (canWrite(c) && editEmail) {
      const found = await production.emailTemplateForEdit(editEmail);
      if (!found) throw notFound('Email template');
      Object.assign(extra, { emailForm: found.template, emailEdit: { name: found.template.name, version: found.version } });
    }
    return render(c, 'billing/settings.njk', await settingsContext(c, extra));
  });

  /** A template form's mode: an edit (at the version it showed) or a new template; null when the form is not as the page wrote it. */
  function templateMode(raw: Raw): TemplateSaveMode | null {
    if (str(raw, 'mode') !== 'edit') return { create: true };
    const v = str(raw, 'version').trim();
    return /^\d{1,9}$/.test(v) ? { expectedVersion: Number(v) } : null;
  }

  async function settingsPost(c: Context<AppEnv>, run: () => Promise<string>, onError: (fields: Record<string, string>, message: string, status: 409 | 422) => Record<string, unknown> | Promise<Record<string, unknown>>): Promise<Response> {
    try {
      const done = await run();
      return redirectAfterPost(c, `/billing/settings?done=${await keepFlash(c, 'settings', done)}`);
    } catch (e) {
      if (!(e instanceof HttpError) || (e.status !== 409 && e.status !== 422)) throw e;
      return render(c, 'billing/settings.njk', await settingsContext(c, { ...await onError(e.fields ?? {}, e.message, e.status), error: e.message }), e.status);
    }
  }

  pages.post('/settings/letterhead', allow(WRITERS), async (c) => {
    const raw = await c.req.parseBody() as Raw;
    // The version the form showed: a form without one (or with garbage) cannot be checked against the settings now.
    const version = str(raw, 'version').trim();
    if (!/^\d{1,9}$/.test(version)) {
      const fields = { version: 'is missing or not a version number: reload the page and try again' };
      return render(c, 'billing/settings.njk', await settingsContext(c, { letterheadErrors: fields, error: 'The form did not say which version of the settings it showed (version): reload the page and try again' }), 422);
    }
    const input = {
      firmName: str(raw, 'firmName'), address: str(raw, 'address'), taxId: str(raw, 'taxId'), phone: str(raw, 'phone'), email: str(raw, 'email'),
      mailFrom: str(raw, 'mailFrom'), paymentNote: str(raw, 'paymentNote'), expectedVersion: Number(version),
    };
    return settingsPost(c, async () => { await production.saveSettings(c.get('command'), input); return 'Letterhead saved'; },
      (fields) => ({ letterhead: input, letterheadErrors: fields }));
  });

  /**
   * A bill or email template's form saved: a new one (its name free), or an edit at the version
   * it showed. Refused, the form comes back with what was typed; after a 409 at the version
   * stored now, so Save again applies it knowingly.
   */
  async function templatePost(c: Context<AppEnv>, kind: 'bill' | 'email'): Promise<Response> {
    const raw = await c.req.parseBody() as Raw;
    const t: BillTemplate | EmailTemplate = kind === 'bill'
      ? { name: str(raw, 'name'), layout: str(raw, 'layout') as BillLayout, title: str(raw, 'title'), footer: str(raw, 'footer') }
      : { name: str(raw, 'name'), subject: str(raw, 'subject'), body: str(raw, 'body') };
    const mode = templateMode(raw);
    const edit = mode && 'expectedVersion' in mode ? { name: t.name.trim(), version: mode.expectedVersion } : null;
    return settingsPost(c, async () => {
      if (!mode) throw invalid({ version: 'is missing or not a version number: reload the page and try again' });
      if ('layout' in t) await production.saveBillTemplate(c.get('command'), t, mode);
      else await production.saveEmailTemplate(c.get('command'), t, mode);
      return `${kind === 'bill' ? 'Bill' : 'Email'} template ${t.name.trim()} saved`;
    }, async (fields, _message, status) => {
      const current = status === 409 && edit ? await (kind === 'bill' ? production.billTemplateForEdit(edit.name) : production.emailTemplateForEdit(edit.name)) : undefined;
      const shownEdit = current === undefined ? edit : current ? { name: current.template.name, version: current.version } : null;
      return { [`${kind}Form`]: t, [`${kind}Errors`]: fields, [`${kind}Edit`]: shownEdit };
    });
  }

  pages.post('/settings/bill-templates', allow(WRITERS), (c) => templatePost(c, 'bill'));
  pages.post('/settings/email-templates', allow(WRITERS), (c) => templatePost(c, 'email'));

  // The mail transport: admins only (it holds the SMTP server's password).
  pages.post('/settings/mail-transport', allow(['admin']), async (c) => {
    const raw = await c.req.parseBody() as Raw;
    const version = str(raw, 'version').trim();
    const form = { transport: str(raw, 'transport'), host: str(raw, 'host'), port: str(raw, 'port'), secure: str(raw, 'secure'), user: str(raw, 'user'), password: str(raw, 'password') };
    // The password is never sent back to the page: one typed on a refused form is asked for again.
    const shown = { transport: form.transport, host: form.host, port: form.port, secure: form.secure === 'yes', user: form.user, passwordTyped: form.password !== '' };
    if (!/^\d{1,9}$/.test(version)) {
      return render(c, 'billing/settings.njk', await settingsContext(c, { mailForm: shown, mailErrors: { version: 'is missing or not a version number: reload the page and try again' }, error: 'The form did not say which version of the mail transport it showed (version): reload the page and try again' }), 422);
    }
    return settingsPost(c, async () => (await production.saveMailTransport(c.get('command'), { ...form, expectedVersion: Number(version) }) ? 'Mail transport saved' : 'Mail transport unchanged'),
      (fields) => ({ mailForm: shown, mailErrors: fields }));
  });

  pages.post('/settings/test-email', allow(WRITERS), async (c) => {
    const raw = await c.req.parseBody() as Raw;
    const to = str(raw, 'to');
    try {
      const r = await production.sendTestEmail(c.get('command'), to);
      return redirectAfterPost(c, `/billing/settings?done=${await keepFlash(c, 'settings', `Test email sent (${r.detail || r.messageId})${refusedText(r.refused)}`)}`);
    } catch (e) {
      if (e instanceof HttpError && e.status === 422) {
        return render(c, 'billing/settings.njk', await settingsContext(c, { testErrors: e.fields, testTo: to, error: e.message }), 422);
      }
      if (e instanceof HttpError) throw e;
      // The transport refused: say so on the page (the settings are not at fault).
      return render(c, 'billing/settings.njk', await settingsContext(c, { testTo: to, error: `The test email was not sent: ${(e as Error).message}` }), 409);
    }
  });

  return pages;
}
