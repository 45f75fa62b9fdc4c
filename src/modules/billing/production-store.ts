/**
 * Kysely queries for bill production on billing's own tables: billing_settings (letterhead),
 * billing_mail_transport (the transport chosen on the settings page),
 * billing_bill_template, billing_email_template, billing_bill_pdf (and billing_bill_pdf_earlier), billing_bill_production
 * (per-bill step state and its lease), billing_production_run(_item), billing_manual_email and
 * its claims (billing_manual_email_claim);
 * plus the approved-bills list the production page shows (billing_bill with billing's own
 * matter copy).
 */
import { assert } from '../../shared/assert.ts';
import type { Executor } from '../../shared/db.ts';
import { execRaw, IN_CHUNK, writersSerialised } from '../../shared/sql.ts';
import { sql } from 'kysely';
import { DEFAULT_BILL_TEMPLATES, DEFAULT_EMAIL_TEMPLATES, withDefaults } from './domain/templates.ts';
import type { BillLayout, BillTemplate, EmailTemplate } from './domain/templates.ts';
import type { MailTransportFields } from './domain/mail-transport.ts';
import type { ManualClaim, ManualEmail } from './domain/production.ts';

const num = (v: unknown): number => Number(v);

// ---- letterhead and settings -------------------------------------------------------------

export interface BillingSettings {
  firmName: string;
  address: string;
  taxId: string;
  phone: string;
  email: string;
  /** Empty: the configured MAIL_FROM. */
  mailFrom: string;
  paymentNote: string;
  version: number;
  updatedAt: string | null;
  updatedBy: string | null;
}

export const EMPTY_SETTINGS: BillingSettings = {
  firmName: 'Your firm', address: '', taxId: '', phone: '', email: '', mailFrom: '', paymentNote: '', version: 0, updatedAt: null, updatedBy: null,
};

export async function getSettings(db: Executor): Promise<BillingSettings> {
  const r = await db.selectFrom('billing_settings').selectAll().where('id', '=', 'firm').executeTakeFirst() as Record<string, any> | undefined;
  if (!r) return { ...EMPTY_SETTINGS };
  return {
    firmName: r.firm_name, address: r.address, taxId: r.tax_id, phone: r.phone, email: r.email, mailFrom: r.mail_from, paymentNote: r.payment_note,
    version: num(r.version), updatedAt: r.updated_at, updatedBy: r.updated_by,
  };
}

/** Save the settings if still at `expectedVersion` (0: none yet); false when someone else saved first. */
export async function saveSettings(trx: Executor, s: BillingSettings, expectedVersion: number): Promise<boolean> {
  const cols = {
    firm_name: s.firmName, address: s.address, tax_id: s.taxId, phone: s.phone, email: s.email, mail_from: s.mailFrom, payment_note: s.paymentNote,
    version: s.version, updated_at: s.updatedAt!, updated_by: s.updatedBy!,
  };
  return saveFirmRow(trx, 'billing_settings', cols, expectedVersion);
}

/** Write the firm's one row of a settings table if still at `expectedVersion` (0: none yet, inserted); false when someone else saved first. */
async function saveFirmRow(trx: Executor, table: 'billing_settings' | 'billing_mail_transport', cols: Record<string, unknown>, expectedVersion: number): Promise<boolean> {
  if (expectedVersion === 0) {
    const r = await trx.insertInto(table).values({ id: 'firm', ...cols }).onConflict((oc) => oc.column('id').doNothing()).executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) === 1;
  }
  const r = await trx.updateTable(table).set(cols).where('id', '=', 'firm').where('version', '=', expectedVersion).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

// ---- the mail transport chosen on the settings page ------------------------------------------

/** The chosen transport and its SMTP fields ('server': the server's configuration decides, as with no row). */
export interface StoredMailTransport extends MailTransportFields {
  version: number;
  updatedAt: string | null;
  updatedBy: string | null;
}

export const SERVER_MAIL_TRANSPORT: StoredMailTransport = {
  transport: 'server', smtpHost: null, smtpPort: null, smtpSecure: false, smtpUser: null, smtpPassword: null, version: 0, updatedAt: null, updatedBy: null,
};

export async function getMailTransport(db: Executor): Promise<StoredMailTransport> {
  const r = await db.selectFrom('billing_mail_transport').selectAll().where('id', '=', 'firm').executeTakeFirst() as Record<string, any> | undefined;
  if (!r) return { ...SERVER_MAIL_TRANSPORT };
  return {
    transport: r.transport, smtpHost: r.smtp_host, smtpPort: r.smtp_port === null ? null : num(r.smtp_port), smtpSecure: num(r.smtp_secure) === 1,
    smtpUser: r.smtp_user, smtpPassword: r.smtp_password, version: num(r.version), updatedAt: r.updated_at, updatedBy: r.updated_by,
  };
}

/** Save the choice if still at `expectedVersion` (0: none yet); false when someone else saved first. */
export async function saveMailTransport(trx: Executor, t: StoredMailTransport, expectedVersion: number): Promise<boolean> {
  const cols = {
    transport: t.transport, smtp_host: t.smtpHost, smtp_port: t.smtpPort, smtp_secure: t.smtpSecure ? 1 : 0, smtp_user: t.smtpUser, smtp_password: t.smtpPassword,
    version: t.version, updated_at: t.updatedAt!, updated_by: t.updatedBy!,
  };
  return saveFirmRow(trx, 'billing_mail_transport', cols, expectedVersion);
}

/** Replace a password stored plain (before sealing) by its sealed text, if it is still that plain text; false when it changed meanwhile. */
export async function sealStoredPassword(trx: Executor, plain: string, sealed: string): Promise<boolean> {
  const r = await trx.updateTable('billing_mail_transport').set({ smtp_password: sealed }).where('id', '=', 'firm').where('smtp_password', '=', plain).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

// ---- templates -----------------------------------------------------------------------------

export async function listBillTemplates(db: Executor): Promise<BillTemplate[]> {
  const rows = await db.selectFrom('billing_bill_template').selectAll().execute() as Record<string, any>[];
  return withDefaults(DEFAULT_BILL_TEMPLATES, rows.map((r) => ({ name: r.name, layout: r.layout as BillLayout, title: r.title, footer: r.footer })));
}

export async function listEmailTemplates(db: Executor): Promise<EmailTemplate[]> {
  const rows = await db.selectFrom('billing_email_template').selectAll().execute() as Record<string, any>[];
  return withDefaults(DEFAULT_EMAIL_TEMPLATES, rows.map((r) => ({ name: r.name, subject: r.subject, body: r.body })));
}

export async function storedBillTemplate(db: Executor, name: string): Promise<(BillTemplate & { version: number }) | null> {
  const r = await db.selectFrom('billing_bill_template').selectAll().where('name', '=', name).executeTakeFirst() as Record<string, any> | undefined;
  return r ? { name: r.name, layout: r.layout, title: r.title, footer: r.footer, version: num(r.version) } : null;
}

export async function storedEmailTemplate(db: Executor, name: string): Promise<(EmailTemplate & { version: number }) | null> {
  const r = await db.selectFrom('billing_email_template').selectAll().where('name', '=', name).executeTakeFirst() as Record<string, any> | undefined;
  return r ? { name: r.name, subject: r.subject, body: r.body, version: num(r.version) } : null;
}

export async function saveBillTemplate(trx: Executor, t: BillTemplate, at: string): Promise<void> {
  await trx.insertInto('billing_bill_template').values({ name: t.name, layout: t.layout, title: t.title, footer: t.footer, version: 1, updated_at: at })
    .onConflict((oc) => oc.column('name').doUpdateSet((eb) => ({
      layout: t.layout, title: t.title, footer: t.footer, updated_at: at, version: eb('billing_bill_template.version', '+', 1),
    }))).execute();
}

/**
 * A template saved from its page's form: `create` adds one only under a name not in use
 * (false: one was added meanwhile); otherwise the stored one is replaced only while still at
 * `expectedVersion` (0: a built-in template not stored yet; false: changed meanwhile).
 */
export async function saveTemplateChecked(trx: Executor, table: 'billing_bill_template' | 'billing_email_template', values: Record<string, string>, at: string, mode: { create: true } | { expectedVersion: number }): Promise<boolean> {
  if ('create' in mode || mode.expectedVersion === 0) {
    const r = await trx.insertInto(table).values({ ...values, version: 1, updated_at: at }).onConflict((oc) => oc.column('name').doNothing()).executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) === 1;
  }
  const { name, ...rest } = values;
  const r = await trx.updateTable(table).set({ ...rest, updated_at: at, version: sql`version + 1` })
    .where('name', '=', name!).where('version', '=', mode.expectedVersion).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Names in use among stored and built-in templates, as typed (a new one may not differ only in case). */
export async function templateNamesFolded(db: Executor, table: 'billing_bill_template' | 'billing_email_template'): Promise<Map<string, string>> {
  const names = table === 'billing_bill_template' ? (await listBillTemplates(db)).map((t) => t.name) : (await listEmailTemplates(db)).map((t) => t.name);
  return new Map(names.map((n) => [n.toLowerCase(), n]));
}

export async function saveEmailTemplate(trx: Executor, t: EmailTemplate, at: string): Promise<void> {
  await trx.insertInto('billing_email_template').values({ name: t.name, subject: t.subject, body: t.body, version: 1, updated_at: at })
    .onConflict((oc) => oc.column('name').doUpdateSet((eb) => ({
      subject: t.subject, body: t.body, updated_at: at, version: eb('billing_email_template.version', '+', 1),
    }))).execute();
}

// ---- the final PDF -------------------------------------------------------------------------

export interface StoredPdf {
  billId: string;
  cycle: string;
  number: string;
  template: string;
  pdf: Uint8Array;
  sizeBytes: number;
  sha256: string;
  createdAt: string;
}

/** A row of billing_bill_pdf (or billing_bill_pdf_earlier, the same columns and more) as a StoredPdf. */
function toStoredPdf(r: Record<string, any>): StoredPdf {
  const raw = r.pdf as Buffer | Uint8Array;
  return {
    billId: r.bill_id, cycle: r.cycle, number: r.number, template: r.template, pdf: new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength),
    sizeBytes: num(r.size_bytes), sha256: r.sha256, createdAt: r.created_at,
  };
}

export async function findPdf(db: Executor, billId: string): Promise<StoredPdf | null> {
  const r = await db.selectFrom('billing_bill_pdf').selectAll().where('bill_id', '=', billId).executeTakeFirst() as Record<string, any> | undefined;
  return r ? toStoredPdf(r) : null;
}

/**
 * Store (or replace, for a new approval cycle) a bill's final PDF. The PDF of an earlier approval
 * it replaces is kept (billing_bill_pdf_earlier): the client holds that document.
 */
export async function savePdf(trx: Executor, p: StoredPdf): Promise<void> {
  const bytes = Buffer.from(p.pdf.buffer, p.pdf.byteOffset, p.pdf.byteLength);
  const cols = { cycle: p.cycle, number: p.number, template: p.template, pdf: bytes, size_bytes: p.sizeBytes, sha256: p.sha256, created_at: p.createdAt };
  await execRaw(trx, `insert into billing_bill_pdf_earlier (bill_id, cycle, number, template, pdf, size_bytes, sha256, created_at, replaced_at)
    select bill_id, cycle, number, template, pdf, size_bytes, sha256, created_at, ? from billing_bill_pdf where bill_id = ? and cycle <> ?
    on conflict (bill_id, cycle) do nothing`, [p.createdAt, p.billId, p.cycle]);
  await trx.insertInto('billing_bill_pdf').values({ bill_id: p.billId, ...cols })
    .onConflict((oc) => oc.column('bill_id').doUpdateSet(cols)).execute();
}

/** A bill's final PDFs of earlier approvals (kept when it was produced again), the latest first: without their bytes. */
export async function earlierPdfs(db: Executor, billId: string): Promise<Omit<StoredPdf, 'pdf'>[]> {
  const rows = await db.selectFrom('billing_bill_pdf_earlier').select(['bill_id', 'cycle', 'number', 'template', 'size_bytes', 'sha256', 'created_at'])
    .where('bill_id', '=', billId).orderBy('cycle', 'desc').limit(100).execute() as Record<string, any>[];
  return rows.map((r) => ({ billId: r.bill_id, cycle: r.cycle, number: r.number, template: r.template, sizeBytes: num(r.size_bytes), sha256: r.sha256, createdAt: r.created_at }));
}

/** One of them, with its bytes (null: no such earlier PDF). */
export async function findEarlierPdf(db: Executor, billId: string, cycle: string): Promise<StoredPdf | null> {
  const r = await db.selectFrom('billing_bill_pdf_earlier').selectAll().where('bill_id', '=', billId).where('cycle', '=', cycle).executeTakeFirst() as Record<string, any> | undefined;
  return r ? toStoredPdf(r) : null;
}

// ---- per-bill production state and its lease ------------------------------------------------

export interface ProductionState {
  billId: string;
  cycle: string;
  claimToken: string | null;
  claimedUntil: string | null;
  attempts: number;
  pdfStoredAt: string | null;
  copies: number | null;
  printedAt: string | null;
  printDetail: string | null;
  /**
   * The print folders this cycle's copies may have been handed over in (each claim that finds
   * them not recorded as printed adds the folder it prints to): a retry after the server's
   * PRINT_DIR changed does not print again a copy handed over in an earlier one.
   */
  printTargets: string[];
  emailTo: string[] | null;
  emailTriedAt: string | null;
  /** The transport the send recorded as tried went through (null: tried before this was recorded). */
  emailTransport: 'smtp' | 'file-drop' | null;
  /** Where that send went (`Mailer.target`: host and drop folder, or SMTP host:port; null: tried before this was recorded). */
  emailTarget: string | null;
  emailedAt: string | null;
  emailMessageId: string | null;
  emailDetail: string | null;
  /** The email was handed to the mail server, which did not confirm it: it may have been sent (a clerk decides). */
  emailUnconfirmedAt: string | null;
  /** The addresses the mail server took this cycle's email for, when it refused others (the retry sends to the rest only). */
  emailSentTo: string[];
  finalisedAt: string | null;
  lastError: string | null;
  failedStep: string | null;
  updatedAt: string;
}

function toState(r: Record<string, any>): ProductionState {
  return {
    billId: r.bill_id, cycle: r.cycle, claimToken: r.claim_token, claimedUntil: r.claimed_until, attempts: num(r.attempts),
    pdfStoredAt: r.pdf_stored_at, copies: r.copies === null ? null : num(r.copies), printedAt: r.printed_at, printDetail: r.print_detail, printTargets: r.print_targets ? JSON.parse(r.print_targets) as string[] : [],
    emailTo: r.email_to ? JSON.parse(r.email_to) as string[] : null, emailTriedAt: r.email_tried_at, emailTransport: r.email_transport ?? null, emailTarget: r.email_target ?? null, emailedAt: r.emailed_at,
    emailMessageId: r.email_message_id, emailDetail: r.email_detail, emailUnconfirmedAt: r.email_unconfirmed_at ?? null, emailSentTo: r.email_sent_to ? JSON.parse(r.email_sent_to) as string[] : [], finalisedAt: r.finalised_at, lastError: r.last_error,
    failedStep: r.failed_step, updatedAt: r.updated_at,
  };
}

export async function findState(db: Executor, billId: string, cycle: string): Promise<ProductionState | null> {
  const r = await db.selectFrom('billing_bill_production').selectAll().where('bill_id', '=', billId).where('cycle', '=', cycle).executeTakeFirst();
  return r ? toState(r) : null;
}

/** The latest state of each bill (any cycle), for the lists. */
export async function statesFor(db: Executor, billIds: readonly string[]): Promise<Map<string, ProductionState>> {
  const out = new Map<string, ProductionState>();
  for (let i = 0; i < billIds.length; i += 500) {
    const rows = await db.selectFrom('billing_bill_production').selectAll().where('bill_id', 'in', billIds.slice(i, i + 500)).orderBy('updated_at').execute();
    for (const r of rows) out.set(r.bill_id as string, toState(r));
  }
  return out;
}

/** The latest time a live hold (lease) on any of these bills runs out, or null when none is held after `now`. */
export async function heldUntil(db: Executor, billIds: readonly string[], now: string): Promise<string | null> {
  let latest: string | null = null;
  for (let i = 0; i < billIds.length; i += IN_CHUNK) {
    const r = await db.selectFrom('billing_bill_production').select((eb) => eb.fn.max('claimed_until').as('until'))
      .where('bill_id', 'in', billIds.slice(i, i + IN_CHUNK)).where('claim_token', 'is not', null).where('claimed_until', '>', now).executeTakeFirst() as { until: string | null } | undefined;
    if (r?.until && (latest === null || r.until > latest)) latest = r.until;
  }
  return latest;
}

/**
 * Take the bill's lease for this cycle: create its state row if missing, then a conditional
 * update that succeeds only when no live lease is held (Postgres re-checks the condition
 * after a concurrent claim commits; SQLite serialises writers). Returns the state, or null
 * when another process holds the bill.
 */
export async function claim(db: Executor, billId: string, cycle: string, token: string, now: string, until: string): Promise<ProductionState | null> {
  return (await claimMany(db, [{ billId, cycle }], token, now, until)).get(billId) ?? null;
}

/**
 * In bill-id order: the order in which every transaction that writes several bills' production
 * rows takes them (claiming, renewing leases, a run's batched releases), so two of them
 * wanting the same rows wait for each other instead of deadlocking (Postgres).
 */
export function inBillOrder<T extends { billId: string }>(xs: readonly T[]): T[] {
  return [...xs].sort((a, b) => (a.billId < b.billId ? -1 : a.billId > b.billId ? 1 : 0));
}

/** The most print folders recorded for one bill cycle (each a change of PRINT_DIR between a crash and a retry). */
export const MAX_PRINT_TARGETS = 50;

/**
 * Take the leases of several bills in one transaction (a production run claims a few bills at
 * a time, saving a commit per bill). Same rule as claim(): a bill whose lease another process
 * holds is left out. Returns the states of the bills claimed, by bill id.
 */
export async function claimMany(trx: Executor, entries: readonly { billId: string; cycle: string }[], token: string, now: string, until: string, printTarget?: string): Promise<Map<string, ProductionState>> {
  const out = new Map<string, ProductionState>();
  if (entries.length === 0) return out;
  // Rows locked in bill-id order (inBillOrder): two runs claiming overlapping batches in
  // different orders wait for each other instead of deadlocking (Postgres).
  const sorted = inBillOrder(entries);
  await trx.insertInto('billing_bill_production').values(sorted.map((e) => ({ bill_id: e.billId, cycle: e.cycle, attempts: 0, updated_at: now })))
    .onConflict((oc) => oc.columns(['bill_id', 'cycle']).doNothing()).execute();
  for (const e of sorted) {
    await trx.updateTable('billing_bill_production')
      .set((eb) => ({ claim_token: token, claimed_until: until, attempts: eb('attempts', '+', 1), updated_at: now }))
      .where('bill_id', '=', e.billId).where('cycle', '=', e.cycle)
      .where((eb) => eb.or([eb('claim_token', 'is', null), eb('claimed_until', '<', now)]))
      .execute();
  }
  const cycles = new Map(entries.map((e) => [e.billId, e.cycle]));
  // Each bill must still be the approved (or finalised) bill of its cycle: one reverted,
  // re-drafted or deleted since the caller read it is let go. The bill rows are locked
  // (Postgres) so a revert either commits before this read (and is seen) or waits for this
  // commit and then finds the lease (revert, redraft and delete refuse a bill being produced).
  const ids = [...cycles.keys()];
  const current = new Set<string>();
  for (let i = 0; i < ids.length; i += 500) {
    const part = ids.slice(i, i + 500);
    const q = trx.selectFrom('billing_bill').select(['id', 'status', 'approved_at']).where('id', 'in', part);
    for (const b of await (writersSerialised(trx) ? q : q.forUpdate()).execute()) {
      if ((b.status === 'approved' || b.status === 'finalised') && b.approved_at === cycles.get(b.id as string)) current.add(b.id as string);
    }
  }
  const gone = ids.filter((id) => !current.has(id));
  for (const billId of gone) {
    await trx.updateTable('billing_bill_production').set({ claim_token: null, claimed_until: null, updated_at: now })
      .where('bill_id', '=', billId).where('cycle', '=', cycles.get(billId)!).where('claim_token', '=', token).execute();
  }
  const rows = await trx.selectFrom('billing_bill_production').selectAll().where('bill_id', 'in', ids).where('claim_token', '=', token).execute();
  for (const r of rows) if (cycles.get(r.bill_id as string) === r.cycle && current.has(r.bill_id as string)) out.set(r.bill_id as string, toState(r));
  // The folder this claim prints to, recorded before any copy is written (with the claim), for
  // a retry after a crash to look in when the server's print folder has changed since.
  if (printTarget !== undefined) {
    for (const [billId, st] of out) {
      if (st.printedAt !== null || st.printTargets.includes(printTarget)) continue;
      const targets = [...st.printTargets, printTarget];
      assert(targets.length <= MAX_PRINT_TARGETS, 'a bill cycle is printed into at most 50 folders');
      await trx.updateTable('billing_bill_production').set({ print_targets: JSON.stringify(targets) })
        .where('bill_id', '=', billId).where('cycle', '=', st.cycle).where('claim_token', '=', token).execute();
      out.set(billId, { ...st, printTargets: targets });
    }
  }
  return out;
}

/** Whether a process holds the bill's production lease now (any cycle): it may be printing or emailing it. */
export async function beingProduced(db: Executor, billId: string, now: string): Promise<boolean> {
  const r = await db.selectFrom('billing_bill_production').select('bill_id').where('bill_id', '=', billId)
    .where('claim_token', 'is not', null).where('claimed_until', '>=', now).executeTakeFirst();
  return r !== undefined;
}

export type StepUpdate = Partial<{
  pdf_stored_at: string; copies: number; printed_at: string; print_detail: string; email_to: string; email_tried_at: string | null; email_transport: 'smtp' | 'file-drop' | null; email_target: string | null; email_unconfirmed_at: string | null;
  emailed_at: string; email_message_id: string; email_detail: string; email_sent_to: string | null; finalised_at: string; last_error: string | null; failed_step: string | null;
  claimed_until: string;
}>;

/**
 * Extend the leases still held with these tokens to `until` (one lost meanwhile is left alone).
 * Row by row in bill-id order (inBillOrder), as the run's batched releases take them: renewing
 * claim by claim took the rows in another order, and a release batch written at the same time
 * could deadlock with it on Postgres (the run's outcomes then failed to record).
 */
export async function renewLeases(trx: Executor, leases: readonly { billId: string; token: string }[], now: string, until: string): Promise<void> {
  for (const l of inBillOrder(leases)) {
    // A token is one claim's: only the row that claim took (the bill's current cycle) carries it.
    await trx.updateTable('billing_bill_production').set({ claimed_until: until, updated_at: now })
      .where('bill_id', '=', l.billId).where('claim_token', '=', l.token).execute();
  }
}

/** Record a step, only while this process still holds the lease; false if it lost it. */
export async function recordStep(db: Executor, billId: string, cycle: string, token: string, now: string, update: StepUpdate): Promise<boolean> {
  const r = await db.updateTable('billing_bill_production').set({ ...update, updated_at: now })
    .where('bill_id', '=', billId).where('cycle', '=', cycle).where('claim_token', '=', token).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export async function release(db: Executor, billId: string, cycle: string, token: string, now: string, update: StepUpdate = {}): Promise<void> {
  await db.updateTable('billing_bill_production').set({ ...update, claim_token: null, claimed_until: null, updated_at: now })
    .where('bill_id', '=', billId).where('cycle', '=', cycle).where('claim_token', '=', token).execute();
}

// ---- runs ------------------------------------------------------------------------------------

export type RunOutcome = 'pending' | 'done' | 'failed' | 'busy';

export interface RunItem {
  billId: string;
  position: number;
  number: string | null;
  outcome: RunOutcome;
  /** Why a bill failed or is busy; for a done one, ALREADY_PRODUCED when this run found it produced and did nothing. */
  error: string | null;
  updatedAt: string;
}

/** A run's note on a bill it found produced already (by an earlier run, or another tab's at the same moment): nothing was done again. */
export const ALREADY_PRODUCED = 'Already produced before this run reached it: nothing was sent or printed again';

export interface Run {
  id: string;
  createdAt: string;
  createdBy: string;
  total: number;
  status: 'running' | 'done';
  heartbeatAt: string;
  finishedAt: string | null;
}

export async function insertRun(trx: Executor, run: Run, items: readonly { billId: string; number: string | null }[]): Promise<void> {
  await trx.insertInto('billing_production_run').values({
    id: run.id, created_at: run.createdAt, created_by: run.createdBy, total: run.total, status: run.status, heartbeat_at: run.heartbeatAt, finished_at: null,
  }).execute();
  const rows = items.map((it, i) => ({ run_id: run.id, bill_id: it.billId, position: i + 1, number: it.number, outcome: 'pending', error: null, updated_at: run.createdAt }));
  for (let i = 0; i < rows.length; i += 200) await trx.insertInto('billing_production_run_item').values(rows.slice(i, i + 200)).execute();
}

function toRun(r: Record<string, any>): Run {
  return { id: r.id, createdAt: r.created_at, createdBy: r.created_by, total: num(r.total), status: r.status, heartbeatAt: r.heartbeat_at, finishedAt: r.finished_at };
}

export async function findRun(db: Executor, id: string): Promise<Run | null> {
  const r = await db.selectFrom('billing_production_run').selectAll().where('id', '=', id).executeTakeFirst() as Record<string, any> | undefined;
  return r ? toRun(r) : null;
}

/** Of these bills, those finalised now and at or after `since`, with when (the bill rows alone, no lines: a run page polls it). */
export async function finalisedSince(db: Executor, billIds: readonly string[], since: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < billIds.length; i += IN_CHUNK) {
    const rows = await db.selectFrom('billing_bill').select(['id', 'finalised_at']).where('id', 'in', billIds.slice(i, i + IN_CHUNK))
      .where('status', '=', 'finalised').where('finalised_at', '>=', since).execute() as { id: string; finalised_at: string }[];
    for (const r of rows) out.set(r.id, r.finalised_at);
  }
  return out;
}

/** These runs (each once; ids of no run left out), read by the IN_CHUNK. */
export async function findRuns(db: Executor, ids: readonly string[]): Promise<Run[]> {
  const unique = [...new Set(ids)];
  const out: Run[] = [];
  for (let i = 0; i < unique.length; i += IN_CHUNK) {
    const rows = await db.selectFrom('billing_production_run').selectAll().where('id', 'in', unique.slice(i, i + IN_CHUNK)).execute() as Record<string, any>[];
    out.push(...rows.map(toRun));
  }
  return out;
}

export async function runItems(db: Executor, runId: string): Promise<RunItem[]> {
  const rows = await db.selectFrom('billing_production_run_item').selectAll().where('run_id', '=', runId).orderBy('position').execute() as Record<string, any>[];
  return rows.map((r) => ({ billId: r.bill_id, position: num(r.position), number: r.number, outcome: r.outcome as RunOutcome, error: r.error, updatedAt: r.updated_at }));
}

export async function setItemOutcome(db: Executor, runId: string, billId: string, outcome: RunOutcome, error: string | null, at: string): Promise<void> {
  await db.updateTable('billing_production_run_item').set({ outcome, error, updated_at: at }).where('run_id', '=', runId).where('bill_id', '=', billId).execute();
}

/**
 * Take up a stopped run (its heartbeat as read, stale): its heartbeat set to now only if no one changed it since, so of
 * two Resumes at once (two tabs, two server processes: review 61 F6) one takes it and the other finds it taken.
 */
export async function takeStoppedRun(db: Executor, runId: string, staleHeartbeatAt: string, at: string): Promise<boolean> {
  const r = await db.updateTable('billing_production_run').set({ heartbeat_at: at })
    .where('id', '=', runId).where('status', '=', 'running').where('heartbeat_at', '=', staleHeartbeatAt).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export async function heartbeat(db: Executor, runId: string, at: string): Promise<void> {
  await db.updateTable('billing_production_run').set({ heartbeat_at: at }).where('id', '=', runId).execute();
}

export async function finishRun(db: Executor, runId: string, at: string): Promise<void> {
  await db.updateTable('billing_production_run').set({ status: 'done', finished_at: at, heartbeat_at: at }).where('id', '=', runId).execute();
}

/** The latest outcome of each bill in any run (for the failures column). */
export async function latestOutcomes(db: Executor, billIds: readonly string[]): Promise<Map<string, RunItem & { runId: string }>> {
  return latestItems(db, billIds, false);
}

/** Of these bills, each one's latest run item still pending (a run going on, or stopped with its process), by bill. */
export async function pendingOutcomes(db: Executor, billIds: readonly string[]): Promise<Map<string, RunItem & { runId: string }>> {
  return latestItems(db, billIds, true);
}

/** Each bill's latest run item (of those pending only, with `pendingOnly`), 500 bills a query. */
async function latestItems(db: Executor, billIds: readonly string[], pendingOnly: boolean): Promise<Map<string, RunItem & { runId: string }>> {
  const out = new Map<string, RunItem & { runId: string }>();
  for (let i = 0; i < billIds.length; i += 500) {
    let q = db.selectFrom('billing_production_run_item').selectAll().where('bill_id', 'in', billIds.slice(i, i + 500));
    if (pendingOnly) q = q.where('outcome', '=', 'pending');
    const rows = await q.orderBy('updated_at').execute() as Record<string, any>[];
    for (const r of rows) out.set(r.bill_id, { runId: r.run_id, billId: r.bill_id, position: num(r.position), number: r.number, outcome: r.outcome, error: r.error, updatedAt: r.updated_at });
  }
  return out;
}

// ---- the production list --------------------------------------------------------------------

export interface ProductionRow {
  billId: string;
  number: string;
  matterId: string;
  fileNumber: string;
  matterName: string;
  clientName: string;
  invoiceDate: string;
  dueDate: string;
  currency: string;
  totalMinor: number;
  approvedAt: string;
}

/** How many approved bills wait for production. */
/** What a run needs to know of bills before it is made: each one's status, number and approval (no lines), by id. */
export async function billHeads(db: Executor, billIds: readonly string[]): Promise<Map<string, { billId: string; status: string; number: string | null; approvedAt: string | null; fileNumber: string }>> {
  const out = new Map<string, { billId: string; status: string; number: string | null; approvedAt: string | null; fileNumber: string }>();
  for (let i = 0; i < billIds.length; i += 500) {
    const rows = await db.selectFrom('billing_bill').select(['id', 'status', 'number', 'approved_at', 'file_number']).where('id', 'in', billIds.slice(i, i + 500)).execute();
    for (const r of rows) out.set(r.id, { billId: r.id, status: r.status, number: r.number ?? null, approvedAt: r.approved_at ?? null, fileNumber: r.file_number });
  }
  return out;
}

export async function countApproved(db: Executor): Promise<number> {
  const row = await db.selectFrom('billing_bill').select((eb) => eb.fn.countAll().as('n')).where('status', '=', 'approved').executeTakeFirst();
  return num(row?.n ?? 0);
}

/** Approved bills (what production offers), by file number within invoice date. */
export async function approvedBills(db: Executor, opts: { limit?: number; offset?: number; billIds?: readonly string[] } = {}): Promise<ProductionRow[]> {
  let q = db.selectFrom('billing_bill as b').leftJoin('billing_matter as m', 'm.id', 'b.matter_id')
    .select(['b.id', 'b.number', 'b.matter_id', 'b.file_number', 'b.invoice_date', 'b.due_date', 'b.currency', 'b.total_minor', 'b.approved_at',
      'm.name as matter_name', 'm.client_name'])
    .where('b.status', '=', 'approved');
  if (opts.billIds) q = q.where('b.id', 'in', opts.billIds.length > 0 ? [...opts.billIds] : ['-']);
  // File numbers in number order (2.1 before 10.1), as the other billing lists.
  const rows = await q.orderBy('b.invoice_date').orderBy('m.client_number').orderBy('m.matter_number').orderBy('b.sequence').orderBy('b.id')
    .limit(opts.limit ?? 5_000).offset(opts.offset ?? 0).execute() as Record<string, any>[];
  return rows.map((r) => ({
    billId: r.id, number: r.number, matterId: r.matter_id, fileNumber: r.file_number, matterName: r.matter_name ?? '', clientName: r.client_name ?? '',
    invoiceDate: r.invoice_date, dueDate: r.due_date, currency: r.currency, totalMinor: num(r.total_minor), approvedAt: r.approved_at,
  }));
}

// ---- manual emails ----------------------------------------------------------------------------

/** `cycle`: the bill's approval the email was sent for (its approved_at when the send began). */
export async function recordManualEmail(trx: Executor, m: { id: string; billId: string; cycle: string | null; to: string[]; subject: string; messageId: string; detail: string; sentAt: string; sentBy: string }): Promise<void> {
  await trx.insertInto('billing_manual_email').values({
    id: m.id, bill_id: m.billId, cycle: m.cycle, to_json: JSON.stringify(m.to), subject: m.subject, message_id: m.messageId, detail: m.detail, sent_at: m.sentAt, sent_by: m.sentBy,
  }).execute();
}

/**
 * The manual emails of the approved bills sent since their approval (this cycle's), each bill's
 * in the order sent: what the production list and the Produce confirmation show.
 */
export async function manualEmailsOfApproved(db: Executor): Promise<Map<string, ManualEmail[]>> {
  // This approval's: sent for it (cycle), or, for emails recorded before the cycle was, sent since it.
  const rows = await db.selectFrom('billing_manual_email as e').innerJoin('billing_bill as b', 'b.id', 'e.bill_id')
    .select(['e.bill_id', 'e.cycle', 'e.to_json', 'e.sent_at', 'e.sent_by'])
    .where('b.status', '=', 'approved')
    .where((eb) => eb.or([eb('e.cycle', '=', eb.ref('b.approved_at')), eb.and([eb('e.cycle', 'is', null), eb('e.sent_at', '>=', eb.ref('b.approved_at'))])]))
    .orderBy('e.bill_id').orderBy('e.sent_at').limit(MANUAL_EMAILS_LISTED).execute() as { bill_id: string; cycle: string | null; to_json: string; sent_at: string; sent_by: string }[];
  const out = new Map<string, ManualEmail[]>();
  for (const r of rows) {
    const list = out.get(r.bill_id) ?? [];
    list.push({ cycle: r.cycle ?? null, to: JSON.parse(r.to_json) as string[], sentAt: r.sent_at, sentBy: r.sent_by });
    out.set(r.bill_id, list);
  }
  return out;
}
/** Manual emails read for the production pages, at most. */
const MANUAL_EMAILS_LISTED = 50_000;

export async function manualEmails(db: Executor, billId: string): Promise<(ManualEmail & { id: string; subject: string })[]> {
  const rows = await db.selectFrom('billing_manual_email').selectAll().where('bill_id', '=', billId).orderBy('sent_at').execute() as Record<string, any>[];
  return rows.map((r) => ({ id: r.id, cycle: r.cycle ?? null, to: JSON.parse(r.to_json), subject: r.subject, sentAt: r.sent_at, sentBy: r.sent_by }));
}

/**
 * The decision on an email whose outcome is unknown (email_unconfirmed_at set, not emailed):
 * `update` applied only while that is still so and no process holds the bill's lease. False
 * when there was nothing to decide (decided meanwhile, or the bill is being produced).
 */
export async function decideUnconfirmedEmail(trx: Executor, billId: string, cycle: string, now: string, update: StepUpdate): Promise<boolean> {
  const r = await trx.updateTable('billing_bill_production').set({ ...update, updated_at: now })
    .where('bill_id', '=', billId).where('cycle', '=', cycle)
    .where('email_unconfirmed_at', 'is not', null).where('emailed_at', 'is', null)
    .where((eb) => eb.or([eb('claim_token', 'is', null), eb('claimed_until', '<', now)]))
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

// ---- manual email claims -------------------------------------------------------------------------

/** Whether the manual email with this key was recorded as sent. */
export async function manualEmailSent(db: Executor, id: string): Promise<boolean> {
  return (await db.selectFrom('billing_manual_email').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
}

/**
 * Claim a manual email before sending it (call in its own transaction and commit it first):
 * 'claimed' when this token now holds it, 'sent' when it was recorded as sent (nothing is
 * claimed then), 'busy' when another sender holds it, 'unconfirmed' when an earlier send's
 * outcome is unknown: the server did not confirm it, or its sender stopped mid-send (its lease
 * ran out). An unconfirmed email is not sent again by posting the same form. 'producing' when a
 * process holds the bill's production lease (it may be emailing the bill): nothing is claimed.
 */
export async function claimManualEmail(trx: Executor, c: { id: string; billId: string; cycle: string | null; to: readonly string[]; token: string; now: string; until: string }): Promise<'claimed' | 'sent' | 'busy' | 'unconfirmed' | 'producing'> {
  // Production emailing the bill reads the manual emails under this lock before its send.
  await holdBillEmail(trx, c.billId);
  if (await beingProduced(trx, c.billId, c.now)) {
    // This form's own outcome first: sent, being sent, or maybe sent by an earlier post.
    if (await manualEmailSent(trx, c.id)) return 'sent';
    return await heldClaim(trx, c.id, c.now) ?? 'producing';
  }
  const inserted = await trx.insertInto('billing_manual_email_claim')
    .values({ id: c.id, bill_id: c.billId, token: c.token, state: 'sending', claimed_until: c.until, created_at: c.now, cycle: c.cycle, to_json: JSON.stringify(c.to) })
    .onConflict((oc) => oc.column('id').doNothing()).executeTakeFirst();
  const mine = Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1;
  // Read after the claim: a sender that recorded the email and dropped its claim has committed by now.
  if (await manualEmailSent(trx, c.id)) {
    if (mine) await trx.deleteFrom('billing_manual_email_claim').where('id', '=', c.id).where('token', '=', c.token).execute();
    return 'sent';
  }
  if (mine) return 'claimed';
  // Let go meanwhile (its send failed for certain): the caller tries again.
  return await heldClaim(trx, c.id, c.now) ?? 'busy';
}

/** A manual email's claim as another sender holds it: 'busy' while its send lasts, 'unconfirmed' when its outcome is unknown (or its lease ran out); null: none. */
async function heldClaim(trx: Executor, id: string, now: string): Promise<'busy' | 'unconfirmed' | null> {
  const held = await trx.selectFrom('billing_manual_email_claim').select(['state', 'claimed_until']).where('id', '=', id).executeTakeFirst();
  if (!held) return null;
  return held.state === 'unconfirmed' || (held.claimed_until as string) < now ? 'unconfirmed' : 'busy';
}

/** The first key of the Postgres advisory locks on a bill's email (the second: the hash of the bill's id). */
const BILL_EMAIL_LOCK_CLASS = 7_603;

/**
 * Hold the bill's email (Postgres: an advisory lock until the transaction ends; SQLite's writers
 * are serialised already) while deciding whether to send it: production, before its send, reads
 * the manual emails and their claims under it; a manual email checks production's lease and
 * takes its claim under it. So one of the two always sees the other.
 */
export async function holdBillEmail(trx: Executor, billId: string): Promise<void> {
  if (!writersSerialised(trx)) await sql`select pg_advisory_xact_lock(${BILL_EMAIL_LOCK_CLASS}, hashtext(${billId}))`.execute(trx);
}

/** Whether a manual email of the bill is being sent now (a claim in 'sending' whose lease has not run out). Read under holdBillEmail. */
export async function manualEmailSending(db: Executor, billId: string, now: string): Promise<boolean> {
  const r = await db.selectFrom('billing_manual_email_claim').select('id').where('bill_id', '=', billId)
    .where('state', '=', 'sending').where('claimed_until', '>=', now).executeTakeFirst();
  return r !== undefined;
}

/** Whether the bill is still approved or finalised under the approval `approvedAt` (not reverted, re-drafted or voided since). */
export async function stillApprovedAt(db: Executor, billId: string, approvedAt: string | null): Promise<boolean> {
  const r = await db.selectFrom('billing_bill').select(['status', 'approved_at']).where('id', '=', billId).executeTakeFirst();
  return r !== undefined && (r.status === 'approved' || r.status === 'finalised') && (r.approved_at as string | null) === approvedAt;
}

/** The bill's manual email claims (sends under way, or whose outcome is unknown). */
export async function manualClaims(db: Executor, billId: string): Promise<ManualClaim[]> {
  const rows = await db.selectFrom('billing_manual_email_claim').select(['state', 'claimed_until', 'created_at', 'cycle', 'to_json', 'decided_at']).where('bill_id', '=', billId).limit(1_000).execute();
  return rows.map((r) => ({
    state: r.state === 'unconfirmed' ? 'unconfirmed' : 'sending', claimedUntil: r.claimed_until as string, createdAt: r.created_at as string,
    cycle: (r.cycle as string | null) ?? null, to: r.to_json ? JSON.parse(r.to_json as string) as string[] : null, decidedAt: (r.decided_at as string | null) ?? null,
  }));
}

/**
 * The clerk decided on the bill's email in production (Send again or Mark as sent): the manual
 * emails of this approval that may have gone (unconfirmed, or their sender stopped) no longer
 * hold production's email. They still stop their own form being sent again.
 */
export async function decideManualClaims(trx: Executor, billId: string, cycle: string, now: string): Promise<void> {
  await trx.updateTable('billing_manual_email_claim').set({ decided_at: now })
    .where('bill_id', '=', billId).where('decided_at', 'is', null)
    .where((eb) => eb.or([eb('cycle', '=', cycle), eb.and([eb('cycle', 'is', null), eb('created_at', '>=', cycle)])]))
    .where((eb) => eb.or([eb('state', '=', 'unconfirmed'), eb('claimed_until', '<', now)]))
    .execute();
}

/** The claim's send ended without a confirmation: the email may have been sent. */
export async function markManualEmailUnconfirmed(db: Executor, id: string, token: string): Promise<void> {
  await db.updateTable('billing_manual_email_claim').set({ state: 'unconfirmed' }).where('id', '=', id).where('token', '=', token).execute();
}

/** Extend a held manual email claim; false when it is no longer this token's. */
export async function renewManualEmailClaim(db: Executor, id: string, token: string, until: string): Promise<boolean> {
  const r = await db.updateTable('billing_manual_email_claim').set({ claimed_until: until }).where('id', '=', id).where('token', '=', token)
    .where('state', '=', 'sending').executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Drop a manual email claim this token holds (the email was recorded, or its send failed). */
export async function releaseManualEmailClaim(db: Executor, id: string, token: string): Promise<void> {
  await db.deleteFrom('billing_manual_email_claim').where('id', '=', id).where('token', '=', token).execute();
}

/** Whether production stored the bill's final PDF for this approval (cycle: the bill's approved_at). */
export async function hasStoredPdf(db: Executor, billId: string, cycle: string | null): Promise<boolean> {
  if (!cycle) return false;
  return (await db.selectFrom('billing_bill_pdf').select('bill_id').where('bill_id', '=', billId).where('cycle', '=', cycle).executeTakeFirst()) !== undefined;
}
