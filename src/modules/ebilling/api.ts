/**
 * The e-billing JSON API under /api/v1/ledes: export bills (by id or number) as LEDES
 * 1998B/1998BI, list and fetch kept files, validate a file, read and save the firm's LEDES
 * settings, and the shipped UTBMS code sets. A refused export is a 422 whose `fields` name
 * every offending bill, line and LEDES field with how to fix it; nothing is written.
 */
import type { Hono } from 'hono';
import Type from 'typebox';
import type { TSchema } from 'typebox';
import { toDecimalString } from '../../shared/money.ts';
import { createApi } from '../../shared/web/api.ts';
import { invalid, notFound } from '../../shared/web/errors.ts';
import type { ModuleDeps } from '../../shared/web/module.ts';
import type { AppEnv, Role } from '../../shared/web/types.ts';
import type { EbillingCommands, ExportFile } from './commands.ts';
import type { LedesSettings } from './domain/export.ts';
import { LEDES_FORMATS } from './domain/format.ts';
import type { ExportRow } from './store.ts';

const READ: readonly Role[] = ['admin', 'billing', 'readonly'];
const WRITE: readonly Role[] = ['admin', 'billing'];
const TAG = 'ebilling';
const literals = <T extends string>(values: readonly T[]) => Type.Unsafe<T>(Type.Union(values.map((v) => Type.Literal(v))));
const Nullable = <T extends TSchema>(s: T) => Type.Union([s, Type.Null()]);
const Format = literals(LEDES_FORMATS);

const ExportBody = Type.Object({
  billIds: Type.Optional(Type.Array(Type.String({ maxLength: 36 }), { maxItems: 5_000 })),
  billNumbers: Type.Optional(Type.Array(Type.String({ maxLength: 40 }), { maxItems: 5_000 })),
  format: Type.Optional(Nullable(Format)),
  mode: Type.Optional(literals(['single', 'per_bill'] as const)),
  requestId: Type.Optional(Type.String({
    maxLength: 36, format: 'uuid', pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$', errorMessage: 'must be a UUID',
    description: 'Idempotency key, a UUID of lower-case hex: the same id again answers the files it made then (replayed: true) and makes none',
  })),
}, { additionalProperties: false });

const ExportBill = Type.Object({ billId: Type.String(), number: Type.String(), billVersion: Type.Integer(), total: Type.String(), currency: Type.String() });
const ExportSchema = Type.Object({
  id: Type.String(), format: Format, fileName: Type.String(), sha256: Type.String(), byteCount: Type.Integer(), invoiceCount: Type.Integer(),
  lineCount: Type.Integer(), createdAt: Type.String(), createdBy: Type.String(), bills: Type.Array(ExportBill), content: Type.Optional(Type.String()),
});
const ExportResult = Type.Object({ replayed: Type.Boolean(), exports: Type.Array(ExportSchema) });

const ValidateBody = Type.Object({
  content: Type.String({ maxLength: 20 * 1024 * 1024 }),
  requireBillingPeriod: Type.Optional(Type.Boolean()),
  requireClientMatterId: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });
const ValidateResult = Type.Object({
  valid: Type.Boolean(), format: Nullable(Format), lineCount: Type.Integer(), moreViolations: Type.Integer(),
  violations: Type.Array(Type.Object({ line: Type.Integer(), field: Type.String(), message: Type.String() })),
  invoices: Type.Array(Type.Object({
    number: Type.String(), clientId: Type.String(), lawFirmMatterId: Type.String(), currency: Nullable(Type.String()), lineCount: Type.Integer(),
    // Integers of minor units, unlike the API's other money (decimal strings): a file being checked may carry no
    // currency, or one that is not valid, to format them in (review 57 F7).
    totalMinor: Type.Integer({ description: 'INVOICE_TOTAL as the file states it, in minor units (cents) of the invoice\'s currency' }),
    linesTotalMinor: Type.Integer({ description: 'The sum of the invoice\'s LINE_ITEM_TOTALs, in minor units' }),
    taxMinor: Type.Integer({ description: 'INVOICE_TAX_TOTAL (1998BI; 0 for 1998B), in minor units' }),
    netMinor: Type.Integer({ description: 'INVOICE_NET_TOTAL (1998BI; INVOICE_TOTAL for 1998B), in minor units' }),
  })),
});

const SettingsFields = {
  lawFirmId: Type.String({ maxLength: 20 }), lawFirmName: Type.String({ maxLength: 200 }), address1: Type.String({ maxLength: 200 }),
  address2: Type.String({ maxLength: 200 }), city: Type.String({ maxLength: 200 }), region: Type.String({ maxLength: 200 }),
  postcode: Type.String({ maxLength: 20 }), country: Type.String({ maxLength: 3 }), clientCountry: Type.String({ maxLength: 3 }),
  invoiceDescription: Type.String({ maxLength: 500 }), classificationStyle: literals(['words', 'codes'] as const),
  noChargeLines: literals(['include', 'omit'] as const), requireClientMatterId: Type.Boolean(), accountType: literals(['O', 'T'] as const),
  defaultTaskCode: Type.String({ maxLength: 4 }), defaultActivityCode: Type.String({ maxLength: 4 }), defaultExpenseCode: Type.String({ maxLength: 4 }),
};
const SettingsSchema = Type.Object({ ...SettingsFields, version: Type.Integer(), updatedAt: Nullable(Type.String()) });
const SettingsBody = Type.Object({ ...SettingsFields, version: Type.Integer({ minimum: 0 }) }, { additionalProperties: false });

const CodeSets = Type.Object({
  codeSets: Type.Array(Type.Object({ name: Type.String(), codes: Type.Array(Type.Object({ code: Type.String(), kind: Type.String(), parent: Nullable(Type.String()), name: Type.String() })) })),
});
const ListQuery = Type.Object({ bill: Type.Optional(Type.String({ maxLength: 36 })), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) });
const Empty = Type.Object({});

function exportOut(e: ExportRow | ExportFile, withContent: boolean) {
  return {
    id: e.id, format: e.format, fileName: e.fileName, sha256: e.sha256, byteCount: e.byteCount, invoiceCount: e.invoiceCount, lineCount: e.lineCount,
    createdAt: e.createdAt, createdBy: e.createdBy,
    bills: e.bills.map((b) => ({ billId: b.billId, number: b.number, billVersion: b.version, total: toDecimalString(b.totalMinor, b.currency), currency: b.currency })),
    ...(withContent && 'content' in e ? { content: e.content } : {}),
  };
}

export function createEbillingApi(deps: ModuleDeps, cmds: EbillingCommands): Hono<AppEnv> {
  const api = createApi(deps.apiRegistry);

  api.route({ method: 'post', path: '/ledes/exports', summary: 'Export bills as LEDES 1998B or 1998BI (one file, or one per bill); 422 lists every offending line', tag: TAG, audience: WRITE, body: ExportBody, response: ExportResult, status: 201 },
    async (c, { body }) => {
      const ids = [...(body.billIds ?? [])];
      if (body.billNumbers?.length) {
        const byNumber = await cmds.billIdsByNumber(body.billNumbers);
        const unknown = body.billNumbers.filter((n) => !byNumber.has(n));
        if (unknown.length > 0) throw invalid({ billNumbers: `no approved or finalised bill numbered ${unknown.slice(0, 10).join(', ')}` });
        for (const n of body.billNumbers) ids.push(...byNumber.get(n)!);
      }
      if (ids.length === 0) throw invalid({ billIds: 'give billIds or billNumbers' });
      const { files, replayed } = await cmds.exportBills(c.get('command'), { billIds: ids, format: body.format ?? null, mode: body.mode ?? 'single', requestId: body.requestId ?? null });
      return { replayed, exports: files.map((f) => exportOut(f, true)) };
    });

  api.route({ method: 'get', path: '/ledes/exports', summary: 'Kept LEDES files, newest first; ?bill=ID for one bill\'s', tag: TAG, audience: READ, query: ListQuery, response: Type.Object({ exports: Type.Array(ExportSchema) }) },
    async (_c, { query }) => ({ exports: (await cmds.listExports({ billId: query.bill, limit: query.limit ?? 100 })).map((e) => exportOut(e, false)) }));

  api.route({ method: 'get', path: '/ledes/exports/:id', summary: 'One kept LEDES file with its content', tag: TAG, audience: READ, response: ExportSchema },
    async (c) => {
      const e = await cmds.findExport(c.req.param('id') ?? '');
      if (!e) throw notFound('Export');
      return exportOut(e, true);
    });

  api.route({ method: 'post', path: '/ledes/validate', summary: 'Validate a LEDES 1998B/1998BI file: every violation by line and field, and its invoices\' totals', tag: TAG, audience: READ, body: ValidateBody, response: ValidateResult },
    async (_c, { body }) => {
      const r = cmds.validate(body.content, { requireBillingPeriod: body.requireBillingPeriod, requireClientMatterId: body.requireClientMatterId });
      return {
        valid: r.valid, format: r.format, lineCount: r.lineCount, moreViolations: r.moreViolations, violations: r.violations,
        invoices: r.invoices.map((i) => ({
          number: i.number, clientId: i.clientId, lawFirmMatterId: i.lawFirmMatterId, currency: i.currency, lineCount: i.lines.length, totalMinor: i.totalMinor,
          linesTotalMinor: i.linesTotalMinor, taxMinor: i.taxMinor, netMinor: i.netMinor,
        })),
      };
    });

  api.route({ method: 'get', path: '/ledes/settings', summary: 'The firm\'s LEDES identity and export choices', tag: TAG, audience: READ, response: SettingsSchema },
    async () => {
      const s = await cmds.loadSettings();
      return { ...s.settings, version: s.version, updatedAt: s.updatedAt };
    });

  api.route({ method: 'put', path: '/ledes/settings', summary: 'Save the firm\'s LEDES settings (409 unless `version` is the one read)', tag: TAG, audience: WRITE, body: SettingsBody, response: SettingsSchema },
    async (c, { body }) => {
      const { version, ...settings } = body;
      const s = await cmds.saveSettings(c.get('command'), settings as LedesSettings, version);
      return { ...s.settings, version: s.version, updatedAt: s.updatedAt };
    });

  api.route({ method: 'get', path: '/ledes/code-sets', summary: 'The UTBMS code sets shipped as reference data', tag: TAG, audience: 'authenticated', query: Empty, response: CodeSets },
    async () => {
      const codes = cmds.codes();
      const names = [...new Set(codes.entries.map((e) => e.codeSet))];
      return { codeSets: names.map((name) => ({ name, codes: codes.entries.filter((e) => e.codeSet === name).map((e) => ({ code: e.code, kind: e.kind, parent: e.parent, name: e.name })) })) };
    });

  return api.app;
}
