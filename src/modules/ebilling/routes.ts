/**
 * The e-billing pages, mounted at /ebilling: export bills as LEDES (from the Bill Production
 * page's E-Billing action, GET /ebilling/export?bill=ID&bill=ID, or by picking bills here),
 * download kept files, the exports of a bill, validate an uploaded file, the firm's LEDES
 * settings and the shipped UTBMS code sets. Forms work without JavaScript and carry `_csrf`.
 */
import { Hono } from 'hono';
import type { Context } from 'hono';
import { notFound } from '../../shared/web/errors.ts';
import { allow } from '../../shared/web/guard.ts';
import type { ModuleDeps } from '../../shared/web/module.ts';
import { render } from '../../shared/web/render.ts';
import type { AppEnv, Role } from '../../shared/web/types.ts';
import type { EbillingCommands, ExportMode } from './commands.ts';
import { LedesRefusal } from './commands.ts';
import { CLASSIFICATION_WORDS, describeProblem, isLedesFormat } from './domain/export.ts';
import type { LedesSettings } from './domain/export.ts';
import { FORMAT_LABELS, fileAmountText, LEDES_FORMATS } from './domain/format.ts';
import { HttpError } from '../../shared/web/errors.ts';
import { isId, newId } from '../../shared/ids.ts';

const READERS: readonly Role[] = ['admin', 'billing', 'readonly'];
const WRITERS: readonly Role[] = ['admin', 'billing'];
const ID = '{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}}';
/** Largest file the validate page takes (the shell's body limit applies too). */
const MAX_UPLOAD_CHARS = 20 * 1024 * 1024;

type Raw = Record<string, string | File | (string | File)[]>;
const str = (raw: Raw, name: string): string => {
  const v = raw[name];
  const x = Array.isArray(v) ? v[0] : v;
  return typeof x === 'string' ? x.trim() : '';
};
const all = (raw: Raw, name: string): string[] => {
  const v = raw[name];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string' && x.trim() !== '').map((x) => x.trim());
};

export const SETTINGS_TEXT_FIELDS = [
  'lawFirmId', 'lawFirmName', 'address1', 'address2', 'city', 'region', 'postcode', 'country', 'clientCountry', 'invoiceDescription',
  'defaultTaskCode', 'defaultActivityCode', 'defaultExpenseCode',
] as const;

/** Settings from a form: text fields as typed (trimmed), choices, and a checkbox. */
export function settingsFromForm(raw: Raw): LedesSettings {
  const s = Object.fromEntries(SETTINGS_TEXT_FIELDS.map((k) => [k, str(raw, k)])) as Record<(typeof SETTINGS_TEXT_FIELDS)[number], string>;
  return {
    ...s,
    country: s.country.toUpperCase(), clientCountry: s.clientCountry.toUpperCase(),
    classificationStyle: str(raw, 'classificationStyle') as LedesSettings['classificationStyle'],
    noChargeLines: str(raw, 'noChargeLines') as LedesSettings['noChargeLines'],
    accountType: str(raw, 'accountType') as LedesSettings['accountType'],
    requireClientMatterId: str(raw, 'requireClientMatterId') === 'on' || str(raw, 'requireClientMatterId') === 'true',
  };
}

export function createEbillingPages(deps: ModuleDeps, cmds: EbillingCommands): Hono<AppEnv> {
  const pages = new Hono<AppEnv>();
  const can = (c: Context<AppEnv>) => ({ write: WRITERS.includes(c.get('user')!.role) });

  pages.get('/', allow(READERS), async (c) => {
    const [bills, exports, settings] = await Promise.all([cmds.exportableBills({ limit: 200 }), cmds.listExports({ limit: 50 }), cmds.loadSettings()]);
    return render(c, 'ebilling/index.njk', { bills, exports, settingsMissing: settings.version === 0, can: can(c) });
  });

  /**
   * The export form carries a request id rendered with it: posting it twice (a double click,
   * Reload after the files were made) returns the files the first post made, never a second set.
   */
  async function exportPage(c: Context<AppEnv>, form: { billIds: string[]; format: string; mode: ExportMode; requestId: string }, extra: Record<string, unknown> = {}, status: 200 | 409 | 422 = 200) {
    const [bills, selected] = await Promise.all([cmds.exportableBills({ limit: 500 }), cmds.billSummaries(form.billIds)]);
    const known = new Set(bills.map((b) => b.billId));
    // Bills sent here that are not exportable still show, so the clerk sees why.
    const shown = [...selected.filter((b) => !known.has(b.billId)), ...bills];
    return render(c, 'ebilling/export.njk', {
      bills: shown, selected: new Set(form.billIds), selectedIds: form.billIds, form, formats: LEDES_FORMATS.map((f) => [f, FORMAT_LABELS[f]]),
      unknownIds: form.billIds.filter((id) => !selected.some((b) => b.billId === id)), can: can(c), ...extra,
    }, status);
  }

  pages.get('/export', allow(READERS), async (c) => {
    const q = c.req.queries();
    const billIds = [...new Set(q.bill ?? [])].slice(0, 5_000);
    return exportPage(c, { billIds, format: c.req.query('format') ?? '', mode: c.req.query('mode') === 'per_bill' ? 'per_bill' : 'single', requestId: newId(deps.clock) });
  });

  pages.post('/export', allow(WRITERS), async (c) => {
    const raw = await c.req.parseBody({ all: true }) as Raw;
    // A post without a request id (a page rendered before the form had one) is exported once as it is.
    const postedId = str(raw, 'requestId');
    const form = {
      billIds: [...new Set(all(raw, 'bill'))], format: str(raw, 'format'), mode: (str(raw, 'mode') === 'per_bill' ? 'per_bill' : 'single') as ExportMode,
      requestId: isId(postedId) ? postedId : newId(deps.clock),
    };
    // Blank format: each matter's own; anything else must be a LEDES format the page offers
    // (a typo is refused at its field, never exported in another format). Likewise the mode.
    const errors: Record<string, string> = {};
    if (form.format !== '' && !isLedesFormat(form.format)) errors.format = `must be one of: ${LEDES_FORMATS.join(', ')} (or blank for each matter's own)`;
    const mode = str(raw, 'mode');
    if (mode !== '' && mode !== 'single' && mode !== 'per_bill') errors.mode = 'must be single or per_bill';
    if (postedId !== '' && !isId(postedId)) errors.requestId = 'must be the id the form was rendered with (a UUID): reload the page';
    if (Object.keys(errors).length) return exportPage(c, form, { errors }, 422);
    try {
      const { files } = await cmds.exportBills(c.get('command'), {
        billIds: form.billIds, format: isLedesFormat(form.format) ? form.format : null, mode: form.mode, requestId: isId(postedId) ? postedId : null,
      });
      return render(c, 'ebilling/exported.njk', { files, formats: FORMAT_LABELS }, 201);
    } catch (e) {
      if (e instanceof LedesRefusal) return exportPage(c, form, { problems: e.problems.map((p) => ({ ...p, text: describeProblem(p) })) }, 422);
      // The command names its request's fields; this form's bill checkboxes are "bills".
      if (e instanceof HttpError && e.status === 422) return exportPage(c, form, { errors: Object.fromEntries(Object.entries(e.fields).map(([k, v]) => [k === 'billIds' ? 'bills' : k, v])) }, 422);
      // This form already exported other bills (Back, another choice, Export again): nothing is
      // written; the page shows the choice again with a new request id to export it.
      if (e instanceof HttpError && e.status === 409 && e.fields.requestId) {
        return exportPage(c, { ...form, requestId: newId(deps.clock) }, { errors: { bills: 'this form already exported other bills or another format; nothing was written: check the choice and export again' } }, 409);
      }
      throw e;
    }
  });

  pages.get(`/exports/:id${ID}`, allow(READERS), async (c) => {
    const file = await cmds.findExport(c.req.param('id'));
    if (!file) throw notFound('Export');
    return c.body(file.content, 200, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Disposition': `attachment; filename="${file.fileName.replace(/[^A-Za-z0-9._-]/g, '_')}"`,
      'X-Content-SHA256': file.sha256,
    });
  });

  pages.get(`/bills/:id${ID}`, allow(READERS), async (c) => {
    const id = c.req.param('id');
    const [bill] = await cmds.billSummaries([id]);
    if (!bill) throw notFound('Bill');
    return render(c, 'ebilling/bill.njk', { bill, exports: await cmds.listExports({ billId: id, limit: 200 }), can: can(c) });
  });

  pages.get('/validate', allow(READERS), (c) => render(c, 'ebilling/validate.njk', { result: null }));
  pages.post('/validate', allow(READERS), async (c) => {
    const raw = await c.req.parseBody({ all: true }) as Raw;
    const upload = Array.isArray(raw.file) ? raw.file[0] : raw.file;
    let text = str(raw, 'content') ? String(Array.isArray(raw.content) ? raw.content[0] : raw.content) : '';
    let name = 'pasted text';
    if (upload instanceof File && upload.size > 0) {
      if (upload.size > MAX_UPLOAD_CHARS) return render(c, 'ebilling/validate.njk', { result: null, error: `The file is larger than ${MAX_UPLOAD_CHARS / 1024 / 1024} MB` }, 422);
      text = await upload.text();
      name = upload.name;
    }
    if (text === '') return render(c, 'ebilling/validate.njk', { result: null, error: 'Choose a LEDES file or paste its text' }, 422);
    const result = cmds.validate(text, { requireBillingPeriod: str(raw, 'requireBillingPeriod') === 'on', requireClientMatterId: str(raw, 'requireClientMatterId') === 'on' });
    // Amounts in the file's currency; a file whose INVOICE_CURRENCY is no ISO code (a violation
    // listed above) shows them as plain numbers rather than failing the page.
    const amounts = result.invoices.map((i) => ({
      total: fileAmountText(i.totalMinor, i.currency), linesTotal: fileAmountText(i.linesTotalMinor, i.currency), tax: fileAmountText(i.taxMinor, i.currency),
    }));
    return render(c, 'ebilling/validate.njk', { result, amounts, name, formats: FORMAT_LABELS }, result.valid ? 200 : 422);
  });

  async function settingsPage(c: Context<AppEnv>, extra: { form?: LedesSettings; errors?: Record<string, string>; saved?: boolean; version?: number } = {}, status: 200 | 409 | 422 = 200) {
    const stored = await cmds.loadSettings();
    const codes = cmds.codes();
    return render(c, 'ebilling/settings.njk', {
      form: extra.form ?? stored.settings, errors: extra.errors ?? {}, saved: extra.saved ?? false, version: extra.version ?? stored.version, stored,
      words: CLASSIFICATION_WORDS, can: can(c),
      tasks: codes.entries.filter((e) => e.kind === 'task'), activities: codes.entries.filter((e) => e.kind === 'activity'), expenses: codes.entries.filter((e) => e.kind === 'expense'),
    }, status);
  }

  pages.get('/settings', allow(READERS), (c) => settingsPage(c, { saved: c.req.query('saved') === '1' }));
  pages.post('/settings', allow(WRITERS), async (c) => {
    const raw = await c.req.parseBody({ all: true }) as Raw;
    const form = settingsFromForm(raw);
    const version = /^\d{1,12}$/.test(str(raw, 'version')) ? Number(str(raw, 'version')) : -1;
    try {
      await cmds.saveSettings(c.get('command'), form, version);
    } catch (e) {
      if (e instanceof HttpError && e.status === 422) return settingsPage(c, { form, errors: e.fields, version }, 422);
      if (e instanceof HttpError && e.status === 409) {
        // Saved by someone else meanwhile: what was typed is shown against the version now stored, so Save again replaces theirs knowingly.
        const now = (await cmds.loadSettings()).version;
        return settingsPage(c, { form, errors: { version: `${e.message} What you typed is below: Save again to replace their settings with it, or reload to see theirs.` }, version: now }, 409);
      }
      throw e;
    }
    return c.redirect('/ebilling/settings?saved=1', 303);
  });

  pages.get('/codes', allow('authenticated'), (c) => {
    const codes = cmds.codes();
    const sets = [...new Set(codes.entries.map((e) => e.codeSet))].map((name) => ({ name, entries: codes.entries.filter((e) => e.codeSet === name) }));
    // A timekeeper may read the codes but not the e-billing pages: no crumb leading to a 403.
    return render(c, 'ebilling/codes.njk', { sets, canOpenEbilling: READERS.includes(c.get('user')!.role) });
  });

  return pages;
}
