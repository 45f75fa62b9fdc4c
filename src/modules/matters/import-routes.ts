/**
 * The CSV import pages (a Hono sub-app; the matters pages mount it at /matters/import):
 *
 *   GET  /         choose the kind, upload a file or paste the CSV; the formats are listed
 *   POST /preview  parse and check every row against the database (a dry run that rolls
 *                  back); shows the rows and every rejected row with its column and reason
 *   POST /apply    import it all in one transaction, or nothing (rejections shown again)
 *
 * The preview carries the CSV to the apply step in a hidden base64 field (exact bytes, no
 * server-side state); the apply checks everything again. Each preview also renders a fresh
 * import id (hidden `importId`): the apply records it (matters_import) in its transaction,
 * so "Apply" pressed twice, or posted twice at once, imports once; the repeat is answered
 * with the first apply's page, saying it was already applied. An apply without an id (a
 * preview page shown before ids existed) imports as before.
 */
import type { Context } from 'hono';
import { Hono } from 'hono';
import { newId } from '../../shared/ids.ts';
import { HttpError } from '../../shared/web/errors.ts';
import { allow } from '../../shared/web/guard.ts';
import type { ModuleDeps } from '../../shared/web/module.ts';
import { render } from '../../shared/web/render.ts';
import type { AppEnv } from '../../shared/web/types.ts';
import type { MattersCommands } from './commands.ts';
import {
  createImportLog, createImportReads, decodeUtf8, IMPORT_FORMATS, IMPORT_KINDS, IMPORT_LIMITS, ImportFileError, isImportKind, runImport,
} from './import.ts';
import type { ImportKind, ImportOutcome } from './import.ts';

/** Rows of the file shown in the preview table (every rejection is listed regardless). */
const PREVIEW_ROWS = 200;
/** Rejections listed on the page. */
const LISTED_REJECTIONS = 1000;

type ImportCommands = Pick<MattersCommands, 'batch' | 'within' | 'listTimekeepers' | 'getFirmSettings'>;

export function createImportPages(deps: Pick<ModuleDeps, 'db' | 'clock' | 'relay'>, cmds: ImportCommands): Hono<AppEnv> {
  const pages = new Hono<AppEnv>();
  const writers = allow(['admin', 'billing']);
  const reads = createImportReads(deps.db, async () => (await cmds.getFirmSettings()).currency);
  const log = createImportLog(deps, cmds);
  const formats = IMPORT_KINDS.map((k) => IMPORT_FORMATS[k]);
  const common = { formats, kinds: IMPORT_KINDS, limits: { maxRows: IMPORT_LIMITS.maxRows, maxMb: IMPORT_LIMITS.maxBytes / (1024 * 1024) } };

  // 413 is not among render's statuses; the response carries it all the same.
  const formPage = (c: Context<AppEnv>, ctx: { kind?: string; csv?: string; error?: string }, status: 200 | 409 | 413 | 422 = 200) =>
    render(c, 'matters/import.njk', { ...common, kind: ctx.kind ?? 'clients', csv: ctx.csv ?? '', error: ctx.error ?? null }, status as 422);

  pages.get('/', writers, (c) => {
    const k = c.req.query('kind');
    return formPage(c, { kind: isImportKind(k) ? k : 'clients' });
  });

  type Body = Awaited<ReturnType<Context<AppEnv>['req']['parseBody']>>;

  /**
   * What the form is shown again with when the file is refused: the kind chosen and the CSV
   * text sent (pasted, or the text the preview carried), so nothing typed or chosen is lost.
   */
  function typed(body: Body): { kind?: string; csv?: string } {
    const kind = isImportKind(body.kind) ? body.kind : undefined;
    if (typeof body.csv === 'string' && body.csv !== '') return { kind, csv: body.csv };
    if (typeof body.payload === 'string' && body.payload !== '') {
      try { return { kind, csv: decodeUtf8(Buffer.from(body.payload, 'base64')) }; } catch { return { kind }; }
    }
    return { kind };
  }

  /** The kind and CSV text of a submitted form: an uploaded file, pasted text, or the preview's base64. */
  async function submitted(body: Body): Promise<{ kind: ImportKind; text: string }> {
    const kind = body.kind;
    if (!isImportKind(kind)) throw new ImportFileError(`Choose what the file holds: ${IMPORT_KINDS.join(', ')}.`);
    const file = body.file;
    if (typeof body.payload === 'string' && body.payload !== '') {
      return { kind, text: decodeUtf8(Buffer.from(body.payload, 'base64')) };
    }
    if (file instanceof File && file.size > 0) {
      if (file.size > IMPORT_LIMITS.maxBytes) {
        throw new ImportFileError(`The file is larger than ${common.limits.maxMb} MB, the limit: split it into several files.`, 413);
      }
      return { kind, text: decodeUtf8(await file.arrayBuffer()) };
    }
    if (typeof body.csv === 'string' && body.csv.trim() !== '') return { kind, text: body.csv };
    throw new ImportFileError('Choose a CSV file to upload, or paste the CSV text.');
  }

  function previewContext(outcome: ImportOutcome, text: string) {
    const { table } = outcome;
    const byRow = new Map<number, Map<string | null, string>>();
    for (const r of outcome.rejected) {
      const m = byRow.get(r.row) ?? new Map<string | null, string>();
      if (!m.has(r.field)) m.set(r.field, r.message);
      byRow.set(r.row, m);
    }
    const created = new Map(outcome.created.map((x) => [x.row, x.reference]));
    const shown = table.rows.slice(0, PREVIEW_ROWS).map((r) => {
      const problems = byRow.get(r.row);
      return {
        row: r.row,
        rejected: problems !== undefined,
        rowProblem: problems?.get(null) ?? null,
        reference: created.get(r.row) ?? null,
        cells: table.columns.map((col) => ({ value: r.values[col] ?? '', error: problems?.get(col) ?? null })),
      };
    });
    const rejectedRows = new Set(outcome.rejected.map((r) => r.row)).size;
    return {
      ...common, outcome, kind: outcome.kind, format: IMPORT_FORMATS[outcome.kind], columns: table.columns, shown,
      moreRows: Math.max(0, table.rows.length - PREVIEW_ROWS), rejected: outcome.rejected.slice(0, LISTED_REJECTIONS),
      moreRejected: Math.max(0, outcome.rejected.length - LISTED_REJECTIONS), rejectedRows,
      payload: outcome.rejected.length === 0 ? Buffer.from(text, 'utf8').toString('base64') : null,
      // This preview's import id: the apply form sends it back, so the file is applied once.
      importId: newId(deps.clock),
    };
  }

  pages.post('/preview', writers, async (c) => {
    const body = await c.req.parseBody();
    try {
      const s = await submitted(body);
      const outcome = await runImport(cmds, reads, c.get('command'), s.kind, s.text, { dryRun: true, log });
      return render(c, 'matters/import-preview.njk', previewContext(outcome, s.text));
    } catch (err) {
      if (err instanceof ImportFileError) return formPage(c, { ...typed(body), error: err.message }, err.status);
      throw err;
    }
  });

  pages.post('/apply', writers, async (c) => {
    const body = await c.req.parseBody();
    try {
      const s = await submitted(body);
      const importId = typeof body.importId === 'string' ? body.importId : undefined;
      let outcome: ImportOutcome;
      try {
        outcome = await runImport(cmds, reads, c.get('command'), s.kind, s.text, { dryRun: false, importId, log, importAgain: body.importAgain === 'yes' });
      } catch (err) {
        // The file was imported before and "Import it again" was not ticked: the preview again, saying so.
        if (!(err instanceof HttpError) || err.fields.importAgain === undefined) throw err;
        const again = await runImport(cmds, reads, c.get('command'), s.kind, s.text, { dryRun: true, log });
        return render(c, 'matters/import-preview.njk', { ...previewContext(again, s.text), repeatError: err.fields.importAgain }, 409);
      }
      if (outcome.rejected.length > 0) {
        return render(c, 'matters/import-preview.njk', { ...previewContext(outcome, s.text), applyFailed: true }, 422);
      }
      // A repeat of an applied import gets the first apply's page (and status), saying so.
      return render(c, 'matters/import-done.njk', {
        ...common, outcome, kind: outcome.kind, format: IMPORT_FORMATS[outcome.kind], alreadyApplied: outcome.alreadyApplied ?? null,
        created: outcome.created.slice(0, PREVIEW_ROWS), moreCreated: Math.max(0, outcome.created.length - PREVIEW_ROWS),
      }, 201);
    } catch (err) {
      if (err instanceof ImportFileError) return formPage(c, { ...typed(body), error: err.message }, err.status);
      // The import id malformed (422) or already used for another file (409): say so on the form.
      if (err instanceof HttpError && err.fields.importId !== undefined && (err.status === 409 || err.status === 422)) {
        return formPage(c, { ...typed(body), error: `Import id ${err.fields.importId}.` }, err.status);
      }
      throw err;
    }
  });

  return pages;
}
