/**
 * E-billing use cases, one transaction each: export bills as LEDES files (refusing, with
 * every offending line, before anything is written), and save the firm's LEDES settings.
 * Each writes its rows, its audit row and its event in the same transaction.
 */
import { createHash } from 'node:crypto';
import { assert } from '../../shared/assert.ts';
import { audit } from '../../shared/audit.ts';
import { isoDate, type Clock } from '../../shared/clock.ts';
import type { Db, Tx } from '../../shared/db.ts';
import type { CommandContext } from '../../shared/events.ts';
import { isId, newId } from '../../shared/ids.ts';
import { appendEvent } from '../../shared/outbox.ts';
import type { Relay } from '../../shared/outbox.ts';
import { conflict, HttpError, invalid } from '../../shared/web/errors.ts';
import type { EbillingEvents } from './events.ts';
import { buildInvoice, describeProblem, exportFileName, isLedesFormat, settingsErrors, writeLedes } from './domain/export.ts';
import type { LedesInvoice, LedesSettings, Problem } from './domain/export.ts';
import { FORMAT_LABELS } from './domain/format.ts';
import type { LedesFormat } from './domain/format.ts';
import { readLedes } from './domain/reader.ts';
import type { ReadOptions, ReadResult } from './domain/reader.ts';
import * as store from './store.ts';
import type { ExportRow, StoredSettings } from './store.ts';

export interface EbillingDeps {
  readonly db: Db;
  readonly clock: Clock;
  readonly relay: Pick<Relay, 'kick'>;
}

export const EXPORT_LIMITS = { bills: 5_000 } as const;

export type ExportMode = 'single' | 'per_bill';

export interface ExportRequest {
  billIds: readonly string[];
  /** Null: each bill's matter chooses (its e-billing options). */
  format?: LedesFormat | null;
  /** One file holding every invoice, or one file per bill. */
  mode: ExportMode;
  /** Idempotency key: a repeated request returns the files it made the first time. */
  requestId?: string | null;
}

export type ExportFile = ExportRow & { content: string };

/** Refused: the problems, each with its bill, line, field and fix. Nothing was written. */
export class LedesRefusal extends HttpError {
  constructor(readonly problems: readonly Problem[]) {
    const fields: Record<string, string> = {};
    for (const p of problems) {
      const key = `bills.${p.bill}${p.lineNo !== null ? `.lines.${p.lineNo}` : ''}.${p.field}`;
      fields[key] = fields[key] ? `${fields[key]}; ${p.message}. Fix: ${p.fix}` : `${p.message}. Fix: ${p.fix}`;
    }
    super(422, 'ledes_refused', `No file was written: ${problems.length} problem${problems.length === 1 ? '' : 's'} to fix first. ${problems.slice(0, 3).map(describeProblem).join(' ')}`, fields);
  }
}

/** Why an export kept under a request id is not the one now asked for under it; null when it is. */
function replayMismatch(earlier: readonly ExportRow[], ids: readonly string[], req: ExportRequest): string | null {
  const had = new Set(earlier.flatMap((e) => e.bills.map((b) => b.billId)));
  if (had.size !== ids.length || !ids.every((id) => had.has(id))) return 'other bills';
  if (req.format != null && earlier.some((e) => e.format !== req.format)) return `format ${earlier[0]!.format}`;
  const perBill = earlier.every((e) => e.bills.length === 1);
  if (req.mode === 'single' && earlier.length > 1) return 'one file per bill';
  if (req.mode === 'per_bill' && !perBill) return 'one file holding every invoice';
  return null;
}

export function createEbillingCommands(deps: EbillingDeps) {
  const { db, clock } = deps;

  async function inTransaction<T>(fn: (trx: Tx) => Promise<T>): Promise<T> {
    const result = await db.transaction().execute(fn);
    deps.relay.kick();
    return result;
  }

  function emit<K extends keyof EbillingEvents & string>(trx: Tx, ctx: CommandContext, type: K, payload: EbillingEvents[K]) {
    return appendEvent<EbillingEvents, K>(trx, clock, ctx, type, payload);
  }

  /**
   * `deliver`: hands the new files on (the CLI writes them to disk) inside the transaction that
   * records them, so a file that cannot be delivered leaves no export recorded (nor its event
   * or audit row). Not called for a replayed request.
   */
  async function exportBills(ctx: CommandContext, req: ExportRequest, deliver?: (files: readonly ExportFile[]) => Promise<void> | void): Promise<{ files: ExportFile[]; replayed: boolean }> {
    const errors: Record<string, string> = {};
    const ids = [...new Set(req.billIds)];
    // Errors name the request's own fields (billIds, format, mode, requestId); a page maps them to its form's.
    if (ids.length === 0) errors.billIds = 'choose at least one bill';
    else if (ids.length > EXPORT_LIMITS.bills) errors.billIds = `at most ${EXPORT_LIMITS.bills} bills per export`;
    else if (!ids.every(isId)) errors.billIds = 'must be bill ids';
    if (req.format != null && !isLedesFormat(req.format)) errors.format = 'must be LEDES1998B or LEDES1998BI';
    if (req.mode !== 'single' && req.mode !== 'per_bill') errors.mode = 'must be single or per_bill';
    if (req.requestId != null && !isId(req.requestId)) errors.requestId = 'must be a UUID';
    if (Object.keys(errors).length > 0) throw invalid(errors);

    return inTransaction(async (trx) => {
      if (req.requestId) {
        // Looked up in the transaction that would write, with the id locked (Postgres), so two
        // posts of one form (a double click, a retry racing the first) make one set of files.
        await store.lockRequestId(trx, req.requestId);
        const earlier = await store.exportsByRequest(trx, req.requestId);
        if (earlier.length > 0) {
          const why = replayMismatch(earlier, ids, req);
          if (why) throw new HttpError(409, 'conflict', `requestId ${req.requestId} was used for another export (${why}): send a new requestId`, { requestId: `was used for another export (${why})` });
          return { files: await Promise.all(earlier.map(async (e) => (await store.findExport(trx, e.id))!)), replayed: true };
        }
      }
      const facts = await store.billFacts(trx, ids);
      const missing = ids.filter((id) => !facts.has(id));
      if (missing.length > 0) throw invalid({ billIds: `${missing.length} bill${missing.length === 1 ? ' is' : 's are'} not known to e-billing (approve them first): ${missing.slice(0, 5).join(', ')}` });
      const { settings } = await store.loadSettings(trx);
      const codes = store.utbmsCodes();
      const problems: Problem[] = [];
      const invoices: LedesInvoice[] = [];
      for (const id of ids) {
        const f = facts.get(id)!;
        const format = req.format ?? f.matter?.ebilling?.format ?? null;
        if (!format) {
          problems.push({ billId: id, bill: f.bill.number ?? id, lineNo: null, field: 'bill', message: `matter ${f.bill.fileNumber} has no LEDES format`, fix: 'choose a format for the export, or turn e-billing on for the matter' });
          continue;
        }
        const r = buildInvoice(f, format, settings, codes);
        if (r.ok) invoices.push(r.invoice); else problems.push(...r.problems);
      }
      if (problems.length > 0) throw new LedesRefusal(problems);
      const formats = [...new Set(invoices.map((i) => i.format))];
      if (req.mode === 'single' && formats.length > 1) {
        throw invalid({ format: `the bills' matters use different formats (${formats.map((f) => FORMAT_LABELS[f]).join(', ')}): choose one format, or one file per bill` });
      }
      const currencies = [...new Set(invoices.map((i) => i.currency))];
      if (req.mode === 'single' && formats[0] === 'LEDES1998B' && currencies.length > 1) {
        throw invalid({ format: `LEDES 1998B states no currency and these bills are in ${currencies.join(', ')}: export them as LEDES 1998BI, or one file per bill` });
      }
      invoices.sort((a, b) => a.number.localeCompare(b.number, 'en', { numeric: true }));
      const groups = req.mode === 'single' ? [invoices] : invoices.map((i) => [i]);
      const at = clock.now().toISOString();
      const out: ExportFile[] = [];
      for (const group of groups) {
        const format = group[0]!.format;
        const content = writeLedes(format, group, settings);
        // What we write must pass our own validator; anything else is a bug, never a file.
        const check = readLedes(content, { codes, requireClientMatterId: settings.requireClientMatterId });
        assert(check.valid, `export failed its own validation: ${check.violations.slice(0, 3).map((v) => `line ${v.line} ${v.field}: ${v.message}`).join('; ')}`);
        const file: ExportFile = {
          id: newId(clock), format, fileName: exportFileName(format, group.map((i) => i.number), isoDate(new Date(at))), content,
          sha256: createHash('sha256').update(content).digest('hex'), byteCount: Buffer.byteLength(content, 'utf8'), invoiceCount: group.length,
          lineCount: group.reduce((a, i) => a + i.lines.length, 0), requestId: req.requestId ?? null, createdAt: at, createdBy: ctx.actorLabel,
          bills: group.map((i) => ({ billId: i.billId, number: i.number, version: facts.get(i.billId)!.bill.version, totalMinor: i.totalMinor, currency: i.currency })),
        };
        await store.insertExport(trx, file);
        await emit(trx, ctx, 'ebilling.file_exported', {
          exportId: file.id, format, fileName: file.fileName, sha256: file.sha256, invoiceCount: file.invoiceCount, lineCount: file.lineCount,
          bills: file.bills.map((b) => ({ billId: b.billId, number: b.number, billVersion: b.version, totalMinor: b.totalMinor, currency: b.currency })), exportedAt: at,
        });
        await audit(trx, clock, ctx, {
          action: 'ebilling.file_exported', entityType: 'ebilling_export', entityId: file.id,
          after: { format, fileName: file.fileName, sha256: file.sha256, bills: file.bills.map((b) => b.number), lineCount: file.lineCount },
        });
        out.push(file);
      }
      if (deliver) await deliver(out);
      return { files: out, replayed: false };
    });
  }

  async function saveSettings(ctx: CommandContext, input: LedesSettings, expectedVersion: number): Promise<StoredSettings> {
    const e = settingsErrors(input, store.utbmsCodes());
    if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) e.version = 'must be the version you read';
    if (Object.keys(e).length > 0) throw invalid(e);
    return inTransaction(async (trx) => {
      const before = await store.loadSettings(trx);
      const at = clock.now().toISOString();
      if (!(await store.saveSettings(trx, input, expectedVersion, at, ctx.actorLabel))) {
        throw conflict('Someone else saved the e-billing settings first: reload and try again');
      }
      const version = expectedVersion + 1;
      await emit(trx, ctx, 'ebilling.settings_changed', {
        version, lawFirmId: input.lawFirmId, lawFirmName: input.lawFirmName, country: input.country, classificationStyle: input.classificationStyle,
        noChargeLines: input.noChargeLines, requireClientMatterId: input.requireClientMatterId, updatedAt: at,
      });
      await audit(trx, clock, ctx, { action: 'ebilling.settings_changed', entityType: 'ebilling_settings', entityId: 'firm', before: before.settings, after: input });
      return { settings: input, version, updatedAt: at, updatedBy: ctx.actorLabel };
    });
  }

  /** Validate a LEDES file against the format and the shipped UTBMS codes. Reads nothing, writes nothing. */
  function validate(text: string, opts: Omit<ReadOptions, 'codes'> = {}): ReadResult {
    return readLedes(text, { ...opts, codes: store.utbmsCodes() });
  }

  return {
    exportBills,
    saveSettings,
    validate,
    loadSettings: () => store.loadSettings(db),
    listExports: (opts: { billId?: string; limit?: number } = {}) => store.listExports(db, { billId: opts.billId, limit: Math.min(opts.limit ?? 100, 1000) }),
    findExport: (id: string) => (isId(id) ? store.findExport(db, id) : Promise.resolve(null)),
    exportableBills: (opts: { status?: 'approved' | 'finalised'; limit?: number } = {}) => store.exportableBills(db, { status: opts.status, limit: Math.min(opts.limit ?? 500, 10_000) }),
    billsToEbill: (opts: { limit: number; includeExported: boolean }) => store.billsToEbill(db, { limit: Math.min(opts.limit, 10_000), includeExported: opts.includeExported }),
    billSummaries: (ids: readonly string[]) => store.billSummaries(db, ids.filter(isId)),
    billIdsByNumber: (numbers: readonly string[]) => store.billIdsByNumber(db, numbers),
    codes: () => store.utbmsCodes(),
  };
}

export type EbillingCommands = ReturnType<typeof createEbillingCommands>;
