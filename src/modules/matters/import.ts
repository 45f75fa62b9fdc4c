/**
 * CSV import: the way a firm moving in brings its clients, matters, time entries and
 * disbursements. One kind per file. The steps:
 *
 * 1. `parseCsv` reads RFC 4180 text (quoted fields with embedded commas, newlines and
 *    doubled quotes; CRLF, LF or CR line ends; a UTF-8 byte order mark; a trailing line
 *    end), refusing what is not well formed with the row number.
 * 2. `readTable` checks the header against the kind's documented columns and refuses
 *    ragged rows (a different number of fields than the header).
 * 3. Each row becomes a command input; text that is not a date, an amount or hours is
 *    named by row and column.
 * 4. The rows run through the real commands in ONE transaction (`cmds.batch`): a dry run
 *    (the preview) always rolls back, and an apply rolls back when any row is rejected,
 *    so a file with one bad row imports nothing and says which row and column.
 *
 * Row numbers count the header as row 1, as a spreadsheet shows them.
 *
 * An apply may carry an import id (the preview page renders a fresh one into its apply
 * form): it is recorded in `matters_import` inside the apply's transaction, so the same
 * preview applied twice, one after the other or at once, imports once. The repeat writes
 * nothing and is answered with the first apply's outcome (`alreadyApplied` set); on
 * Postgres a parallel repeat waits on the id's primary key, loses, and is answered the
 * same way. An apply without an id imports each time, as before.
 *
 * The decimal text helpers at the top (amounts, hours, quantities, percentages) are also
 * what the JSON API uses: exact conversion to integers, never through a float.
 */
import { createHash, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { audit } from '../../shared/audit.ts';
import type { Clock } from '../../shared/clock.ts';
import type { Db, Executor, Tx as DbTx } from '../../shared/db.ts';
import { isUniqueViolation } from '../../shared/db.ts';
import { writersSerialised } from '../../shared/sql.ts';
import type { CommandContext } from '../../shared/events.ts';
import { currencyExponent, isCurrencyCode, isKnownCurrency, MoneyParseError, parseAmount, toDecimalString, UNKNOWN_CURRENCY } from '../../shared/money.ts';
import { HttpError, invalid } from '../../shared/web/errors.ts';
import type { MattersCommands, RecordDisbursementInput, RecordTimeEntryInput } from './commands.ts';
import {
  BILLING_CYCLES, ENTRY_BEHAVIOURS, isIsoDate, LIMITS, QUANTITY_SCALE, validateClient, validateDisbursement, validateMatter,
  validateTimeEntry,
} from './domain.ts';
import type { BillingCycle, EntryBehaviour, FieldErrors } from './domain.ts';

// ---------------------------------------------------------------------------------------
// Decimal text <-> integers (exact)
// ---------------------------------------------------------------------------------------

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(error: string): Parsed<T> => ({ ok: false, error });

/** An amount in `currency` ("1234.50", also "1,234.50") to minor units; never rounded. */
export function parseMoneyText(text: string, currency: string, opts: { allowNegative?: boolean } = {}): Parsed<number> {
  if (!isCurrencyCode(currency)) return bad(`cannot be read: ${currency} is not a currency code`);
  const t = text.trim();
  if (t === '') return bad('is required');
  try {
    const v = parseAmount(t, currency);
    if (v < 0 && !opts.allowNegative) return bad('must not be negative');
    return ok(v);
  } catch (err) {
    if (err instanceof MoneyParseError) {
      const exp = currencyExponent(currency);
      return bad(/decimal places/.test(err.message)
        ? `has more than ${exp} decimal places for ${currency}`
        : `must be an amount such as ${exp === 0 ? '1234' : `1234.${'5'.padEnd(exp, '0')}`}`);
    }
    throw err;
  }
}

/** A parsed amount checked against [min, max] minor units, the message in decimal terms. */
export function limited(p: Parsed<number>, maxMinor: number, currency: string, minMinor = 0): Parsed<number> {
  if (!p.ok) return p;
  if (p.value < minMinor) return bad(minMinor === 1 ? 'must be more than 0' : `must be at least ${toDecimalString(minMinor, currency)}`);
  if (p.value > maxMinor) return bad(`must be at most ${toDecimalString(maxMinor, currency)}`);
  return p;
}

/** Null when minutes are a valid entry length (1 minute to 24 hours), else the message. */
export function minutesRangeError(minutes: number): string | null {
  if (minutes < 1) return 'must be more than 0';
  if (minutes > LIMITS.rawMinutes) return `must be at most ${LIMITS.rawMinutes / 60} hours`;
  return null;
}

/** Minor units to the API's decimal string ("525.00"). */
export function moneyText(minor: number, currency: string): string {
  return toDecimalString(minor, currency);
}

/** Integer and fraction digits of a plain non-negative decimal, or null. */
function decimalParts(text: string): { int: string; frac: string } | null {
  const m = /^(\d+)(?:\.(\d*))?$|^\.(\d+)$/.exec(text.trim());
  if (!m) return null;
  if (m[3] !== undefined) return { int: '0', frac: m[3] };
  return { int: m[1]!, frac: m[2] ?? '' };
}

/** Hours as decimal text ("1.5", "0.25") to whole minutes, exactly; refused when not whole minutes. */
export function parseHoursText(text: string): Parsed<number> {
  const t = text.trim();
  if (t === '') return bad('is required');
  const p = decimalParts(t);
  if (!p || p.int.length > 4 || p.frac.length > 6) return bad('must be hours as a decimal number, e.g. 1.5');
  const scale = 10n ** BigInt(p.frac.length);
  const scaled = BigInt(p.int) * scale + BigInt(p.frac === '' ? '0' : p.frac);
  const minutes60 = scaled * 60n;
  if (minutes60 % scale !== 0n) return bad(`is not a whole number of minutes (${t} h); use e.g. 0.1 for 6 minutes or 0.25 for 15`);
  return ok(Number(minutes60 / scale));
}

/** Minutes to hours text: exact when it terminates ("1.5", "0.25"), else rounded half up to 4 places. */
export function hoursText(minutes: number): string {
  const tenThousandths = (BigInt(minutes) * 10_000n * 2n + 60n) / 120n; // half up
  const whole = tenThousandths / 10_000n;
  const frac = (tenThousandths % 10_000n).toString().padStart(4, '0').replace(/0+$/, '');
  return frac === '' ? whole.toString() : `${whole}.${frac}`;
}

/** Quantity text ("1", "2.5") to integer thousandths; at most 3 decimals. */
export function parseQuantityText(text: string): Parsed<number> {
  const t = text.trim();
  if (t === '') return bad('is required');
  const p = decimalParts(t);
  if (!p) return bad('must be a number such as 1 or 2.5');
  if (p.frac.length > 3) return bad('must have at most 3 decimal places');
  const max = LIMITS.quantityMilli / QUANTITY_SCALE;
  if (p.int.replace(/^0+/, '').length > String(max).length) return bad(`must be at most ${max}`);
  const v = Number(p.int) * QUANTITY_SCALE + Number(p.frac.padEnd(3, '0') || '0');
  if (v <= 0) return bad('must be more than 0');
  if (v > LIMITS.quantityMilli) return bad(`must be at most ${max}`);
  return ok(v);
}

/** Thousandths to quantity text: "1", "2.5", "0.125". */
export function quantityText(milli: number): string {
  const whole = Math.floor(milli / QUANTITY_SCALE);
  const frac = String(milli % QUANTITY_SCALE).padStart(3, '0').replace(/0+$/, '');
  return frac === '' ? String(whole) : `${whole}.${frac}`;
}

/** Percent text ("12.5") to basis points (1250); at most 2 decimals, 0 to 100. */
export function parsePercentText(text: string): Parsed<number> {
  const p = decimalParts(text);
  if (!p) return bad('must be a percentage such as 12.5');
  if (p.frac.length > 2) return bad('must have at most 2 decimal places');
  if (p.int.replace(/^0+/, '').length > 3) return bad('must be between 0 and 100');
  const v = Number(p.int) * 100 + Number(p.frac.padEnd(2, '0') || '0');
  if (v > 10_000) return bad('must be between 0 and 100');
  return ok(v);
}

/** Basis points to percent text: 1250 -> "12.5", 1000 -> "10". */
export function percentText(basisPoints: number): string {
  const neg = basisPoints < 0;
  const a = Math.abs(basisPoints);
  const frac = String(a % 100).padStart(2, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${Math.floor(a / 100)}${frac === '' ? '' : `.${frac}`}`;
}

/** A domain message about basis points, said in the percent that pages, API and CSV take ("between 0.01% and 100%"). */
export function percentMessage(message: string): string {
  return message
    .replace(/between (\d+) and (\d+) basis points \(100 = 1%\)/, (_m, a: string, b: string) => `between ${percentText(Number(a))}% and ${percentText(Number(b))}%`)
    .replace('a whole number of basis points (100 = 1%)', 'a percentage with at most 2 decimals, such as 12.5');
}

// ---------------------------------------------------------------------------------------
// RFC 4180 parsing
// ---------------------------------------------------------------------------------------

/** A CSV that is not well formed; `row` is the 1-based record where the problem is. */
export class CsvError extends Error {
  override name = 'CsvError';
  constructor(readonly row: number, message: string) {
    super(`Row ${row}: ${message}`);
  }
}

/**
 * Parse CSV text into records of fields. Fields may be quoted ("a, b", "say ""hi""",
 * multi-line); records end at CRLF, LF or CR; a leading byte order mark and a final line
 * end are ignored. A quote inside an unquoted field, text after a closing quote, or a
 * quote never closed is an error naming the row. Blank lines come back as `['']`.
 */
export function parseCsv(input: string, opts: { maxRecords?: number } = {}): string[][] {
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  // NUL is in no text a person types (and Postgres cannot store it): not a CSV file of text.
  const nul = text.indexOf('\u0000');
  if (nul >= 0) throw new CsvError(text.slice(0, nul).split('\n').length, 'the file holds the NUL character (U+0000): save it as a text CSV file');
  const n = text.length;
  const records: string[][] = [];
  const max = opts.maxRecords ?? Infinity;
  if (n === 0) return records;
  let record: string[] = [];
  let i = 0;
  // Blank lines (every field empty: a spreadsheet's empty rows) do not count towards the limit; they are skipped later.
  let counted = 0;
  const endRecord = (): void => {
    records.push(record);
    if (record.some((f) => f.trim() !== '') && ++counted > max) throw new CsvError(records.length, `the file has more than ${max} rows`);
    record = [];
  };
  for (;;) {
    // At the start of a field.
    if (text[i] === '"') {
      let value = '';
      let j = i + 1;
      for (;;) {
        const q = text.indexOf('"', j);
        if (q === -1) throw new CsvError(records.length + 1, 'a quoted field is never closed (a " is missing)');
        value += text.slice(j, q);
        if (text[q + 1] === '"') { value += '"'; j = q + 2; continue; }
        i = q + 1;
        break;
      }
      record.push(value);
      const c = text[i];
      if (i < n && c !== ',' && c !== '\r' && c !== '\n') {
        throw new CsvError(records.length + 1, `text after a closing quote in field ${record.length}: quote the whole field, doubling any " inside it`);
      }
    } else {
      let j = i;
      while (j < n) {
        const c = text[j];
        if (c === ',' || c === '\r' || c === '\n') break;
        if (c === '"') throw new CsvError(records.length + 1, `a " inside unquoted field ${record.length + 1}: quote the whole field and double the " inside it`);
        j++;
      }
      record.push(text.slice(i, j));
      i = j;
    }
    if (i >= n) { endRecord(); break; }
    const c = text[i];
    if (c === ',') { i++; continue; }
    // A line end: CRLF, LF or CR.
    i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
    endRecord();
    if (i >= n) break; // a final line end does not start another record
  }
  return records;
}

// ---------------------------------------------------------------------------------------
// Formats
// ---------------------------------------------------------------------------------------

export const IMPORT_KINDS = ['clients', 'matters', 'time-entries', 'disbursements'] as const;
export type ImportKind = (typeof IMPORT_KINDS)[number];
export const isImportKind = (v: unknown): v is ImportKind => typeof v === 'string' && (IMPORT_KINDS as readonly string[]).includes(v);

export const IMPORT_LIMITS = {
  /** Largest file accepted. */
  maxBytes: 10 * 1024 * 1024,
  /** Most data rows in one file (the header not counted). */
  maxRows: 50_000,
} as const;

export interface ImportColumn {
  readonly name: string;
  readonly required: boolean;
  readonly description: string;
}

export interface ImportFormat {
  readonly kind: ImportKind;
  readonly title: string;
  readonly intro: string;
  readonly columns: readonly ImportColumn[];
  readonly example: string;
}

const col = (name: string, required: boolean, description: string): ImportColumn => ({ name, required, description });
const behaviours = ENTRY_BEHAVIOURS.join(', ');

export const IMPORT_FORMATS: Readonly<Record<ImportKind, ImportFormat>> = {
  clients: {
    kind: 'clients', title: 'Clients',
    intro: 'One client per row. Lexbill numbers clients in sequence; give client_number to check that your numbers are kept.',
    columns: [
      col('client_number', false, 'If given, must be the number Lexbill assigns (the next in sequence): import clients in number order into an empty system to keep your numbers.'),
      col('name', true, 'The client\'s name.'),
      col('email', false, 'Billing email address.'),
      col('address', false, 'Postal address (may span lines inside quotes).'),
      col('tax_id', false, 'Tax identifier.'),
    ],
    example: 'client_number,name,email,address,tax_id\n1,Northwind Logistics Inc.,ap@northwind.example,"1 Harbour Rd\nPortsmouth",GB123\n',
  },
  matters: {
    kind: 'matters', title: 'Matters',
    intro: 'One matter per row, for clients that already exist. Timekeepers are given by their initials.',
    columns: [
      col('client_number', true, 'The client\'s number.'),
      col('name', true, 'The matter\'s name.'),
      col('responsible', true, 'Initials of the responsible timekeeper.'),
      col('billing', false, 'Initials of the billing timekeeper (defaults to the responsible one).'),
      col('originating', false, 'Initials of the originating timekeeper.'),
      col('practice_area', false, 'Practice area.'),
      col('billing_cycle', false, `One of ${BILLING_CYCLES.join(', ')} (default none: billed on demand).`),
      col('next_billing_date', false, 'YYYY-MM-DD; defaults to one cycle after opening. Leave empty when the cycle is none.'),
      col('wip_cap', false, 'WIP amount at which the matter must be billed, e.g. 5000.00.'),
      col('opened_on', false, 'YYYY-MM-DD; defaults to today.'),
      col('currency', false, 'Three-letter code such as USD (default USD).'),
      col('file_number', false, 'If given, must be the file number Lexbill assigns (client.matter, e.g. 12.3).'),
    ],
    example: 'client_number,name,responsible,billing,originating,practice_area,billing_cycle,next_billing_date,wip_cap\n1,Northwind v. Kestrel,MH,,MH,Litigation,MONTH,2026-04-01,25000.00\n',
  },
  'time-entries': {
    kind: 'time-entries', title: 'Time entries',
    intro: 'Unbilled time on open matters. The rate comes from the matter, client or timekeeper rates unless the row gives one.',
    columns: [
      col('file_number', true, 'The matter\'s file number, e.g. 12.3.'),
      col('date', true, 'Work date, YYYY-MM-DD.'),
      col('timekeeper', true, 'Initials of the timekeeper.'),
      col('hours', true, 'Hours as a decimal, e.g. 1.5 (must be whole minutes).'),
      col('narrative', true, 'What was done.'),
      col('task_code', false, 'UTBMS task code, e.g. L120.'),
      col('activity_code', false, 'UTBMS activity code, e.g. A104.'),
      col('behaviour', false, `One of ${behaviours} (default: the matter's default).`),
      col('rate', false, 'An hourly rate for this entry only (an override), e.g. 350.00.'),
      col('rate_reason', false, 'Why the rate is overridden (default "Imported rate").'),
    ],
    example: 'file_number,date,timekeeper,hours,narrative,task_code,activity_code,behaviour,rate\n1.1,2026-02-03,MH,1.5,"Review pleadings, call client",L120,A104,bill,\n',
  },
  disbursements: {
    kind: 'disbursements', title: 'Disbursements',
    intro: 'Unbilled costs on open matters.',
    columns: [
      col('file_number', true, 'The matter\'s file number, e.g. 12.3.'),
      col('date', true, 'Date incurred, YYYY-MM-DD.'),
      col('code', true, 'The firm\'s code, e.g. COURT, COURIER, COPY (capitals, digits, - or _).'),
      col('expense_code', false, 'UTBMS expense code, e.g. E112.'),
      col('quantity', false, 'Units, e.g. 1 or 2.5 (default 1).'),
      col('unit_cost', true, 'Cost of one unit in the matter\'s currency, e.g. 45.00.'),
      col('description', true, 'Description.'),
      col('payee', false, 'Who was paid.'),
      col('tax_code', false, 'One of the firm\'s tax codes (billing settings), e.g. SALES; empty for none.'),
      col('behaviour', false, `One of ${behaviours} (default bill).`),
    ],
    example: 'file_number,date,code,expense_code,quantity,unit_cost,description,payee,tax_code\n1.1,2026-02-04,COURT,E112,1,275.00,Filing fee,County Court,\n',
  },
};

// ---------------------------------------------------------------------------------------
// Tables: header and rows
// ---------------------------------------------------------------------------------------

export interface Rejection {
  /** 1-based, the header being row 1. */
  row: number;
  /** The CSV column, or null for the whole row or file. */
  field: string | null;
  message: string;
}

export interface CsvRow {
  row: number;
  /** Column name to the cell's text. */
  values: Record<string, string>;
}

export interface CsvTable {
  columns: string[];
  rows: CsvRow[];
  /** Ragged rows; the header's problems come as a thrown ImportFileError. */
  problems: Rejection[];
}

/** The file as a whole cannot be imported (not CSV, wrong header, too big). */
export class ImportFileError extends Error {
  override name = 'ImportFileError';
  constructor(message: string, readonly status: 413 | 422 = 422, readonly row: number | null = null) {
    super(message);
  }
}

/** "Client Number" -> "client_number". */
export const columnKey = (h: string): string => h.trim().toLowerCase().replace(/[\s-]+/g, '_');

/** Parse and check the header against the kind's columns; refuse ragged rows per row. */
export function readTable(kind: ImportKind, text: string, limits: { maxRows?: number } = {}): CsvTable {
  const maxRows = limits.maxRows ?? IMPORT_LIMITS.maxRows;
  let records: string[][];
  try {
    records = parseCsv(text, { maxRecords: maxRows + 1 });
  } catch (err) {
    if (err instanceof CsvError) {
      if (/more than \d+ rows/.test(err.message)) {
        throw new ImportFileError(`The file has more than ${maxRows} rows (the limit per file): split it into several files.`, 422);
      }
      throw new ImportFileError(`The file is not valid CSV. ${err.message}`, 422, err.row);
    }
    throw err;
  }
  const format = IMPORT_FORMATS[kind];
  const headerRecord = records[0];
  if (!headerRecord || headerRecord.every((h) => h.trim() === '')) {
    throw new ImportFileError(`The file is empty: the first row must be the header (${format.columns.filter((c) => c.required).map((c) => c.name).join(', ')}, ...).`, 422, 1);
  }
  // A header of one column holding semicolons or tabs: the file was saved with another separator.
  if (headerRecord.length === 1) {
    const sep = headerRecord[0]!.includes(';') ? 'semicolons (;)' : headerRecord[0]!.includes('\t') ? 'tabs' : null;
    if (sep) throw new ImportFileError(`The file's columns are separated by ${sep}, not commas: save it as "CSV UTF-8 (comma delimited)" and choose it again.`, 422, 1);
  }
  // Nameless columns at the end of the header whose cells are all empty (a spreadsheet's stray formatting) are left out.
  let width = headerRecord.length;
  while (width > 1 && headerRecord[width - 1]!.trim() === '') width--;
  if (width < headerRecord.length) {
    for (let r = 1; r < records.length; r++) {
      const extra = records[r]!.slice(width);
      const at = extra.findIndex((f) => f.trim() !== '');
      if (at >= 0) throw new ImportFileError(`The header (row 1) has no name for column ${width + at + 1}, which holds "${extra[at]!.trim().slice(0, 40)}" in row ${r + 1}: name the column or remove it.`, 422, 1);
    }
    for (let r = 0; r < records.length; r++) if (records[r]!.length > width) records[r] = records[r]!.slice(0, width);
  }
  const nameless = headerRecord.slice(0, width).findIndex((h) => h.trim() === '');
  if (nameless >= 0) throw new ImportFileError(`The header (row 1) has no name for column ${nameless + 1}: name it or remove the column.`, 422, 1);
  const columns = headerRecord.slice(0, width).map(columnKey);
  const known = new Set(format.columns.map((c) => c.name));
  const unknown = columns.filter((c) => !known.has(c));
  const seen = new Set<string>();
  const dupes = columns.filter((c) => (seen.has(c) ? true : (seen.add(c), false)));
  const missing = format.columns.filter((c) => c.required && !columns.includes(c.name)).map((c) => c.name);
  const problems: string[] = [];
  if (unknown.length) problems.push(`unknown column${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${u}"`).join(', ')} (the ${format.title.toLowerCase()} columns are ${format.columns.map((c) => c.name).join(', ')})`);
  if (missing.length) problems.push(`missing required column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  if (dupes.length) problems.push(`column${dupes.length > 1 ? 's' : ''} ${[...new Set(dupes)].join(', ')} given twice`);
  if (problems.length) throw new ImportFileError(`The header (row 1) has ${problems.join('; ')}.`, 422, 1);

  const rows: CsvRow[] = [];
  const rowProblems: Rejection[] = [];
  for (let r = 1; r < records.length; r++) {
    const rec = records[r]!;
    const row = r + 1;
    if (rec.every((f) => f.trim() === '')) continue; // a blank line
    if (rec.length !== columns.length) {
      rowProblems.push({ row, field: null, message: `has ${rec.length} field${rec.length === 1 ? '' : 's'} but the header has ${columns.length}: check for a missing or extra comma, or an unquoted comma inside a value` });
      continue;
    }
    const values: Record<string, string> = {};
    columns.forEach((c, k) => { values[c] = rec[k]!.replace(/\r\n?/g, '\n'); });
    rows.push({ row, values });
  }
  return { columns, rows, problems: rowProblems };
}

// ---------------------------------------------------------------------------------------
// Rows to command inputs
// ---------------------------------------------------------------------------------------

/** Cell text, trimmed; empty or missing -> undefined. */
function cell(values: Record<string, string>, name: string): string | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const t = v.trim();
  return t === '' ? undefined : t;
}

function dateCell(errors: FieldErrors, values: Record<string, string>, name: string, required: boolean): string | undefined {
  const v = cell(values, name);
  if (v === undefined) { if (required) errors[name] = 'is required'; return undefined; }
  if (!isIsoDate(v)) { errors[name] = `must be a date written YYYY-MM-DD (got "${v}")`; return undefined; }
  return v;
}

function behaviourCell(errors: FieldErrors, values: Record<string, string>): EntryBehaviour | undefined {
  const v = cell(values, 'behaviour');
  if (v === undefined) return undefined;
  const k = v.toLowerCase().replace(/[\s-]+/g, '_');
  if ((ENTRY_BEHAVIOURS as readonly string[]).includes(k)) return k as EntryBehaviour;
  errors.behaviour = `must be one of: ${ENTRY_BEHAVIOURS.join(', ')}`;
  return undefined;
}

function positiveIntCell(errors: FieldErrors, values: Record<string, string>, name: string): number | undefined {
  const v = cell(values, name);
  if (v === undefined) return undefined;
  if (!/^[1-9]\d{0,14}$/.test(v)) { errors[name] = 'must be a whole number'; return undefined; }
  return Number(v);
}

/** Rename command fields (`rawMinutes`) to CSV columns (`hours`). */
function renamed(errors: Readonly<Record<string, string>>, map: Readonly<Record<string, string>>): FieldErrors {
  const out: FieldErrors = {};
  for (const [k, v] of Object.entries(errors)) out[map[k] ?? k] = v;
  return out;
}

const CLIENT_FIELDS = { name: 'name', email: 'email', address: 'address', taxId: 'tax_id' } as const;
const MATTER_FIELDS = {
  clientId: 'client_number', name: 'name', responsibleTimekeeperId: 'responsible', billingTimekeeperId: 'billing',
  originatingTimekeeperId: 'originating', practiceArea: 'practice_area', billingCycle: 'billing_cycle',
  nextBillingDate: 'next_billing_date', wipCapMinor: 'wip_cap', openedOn: 'opened_on', currency: 'currency',
} as const;
const TIME_FIELDS = {
  matterId: 'file_number', timekeeperId: 'timekeeper', workDate: 'date', rawMinutes: 'hours', narrative: 'narrative',
  taskCode: 'task_code', activityCode: 'activity_code', behaviour: 'behaviour', 'override.rateMinor': 'rate',
  'override.reason': 'rate_reason', override: 'rate',
  /** The amount (hours x rate) would pass the matter's WIP cap under a 'refuse' policy. */
  amount: 'hours',
} as const;
const DISBURSEMENT_FIELDS = {
  matterId: 'file_number', incurredOn: 'date', code: 'code', expenseCode: 'expense_code', quantityMilli: 'quantity',
  unitCostMinor: 'unit_cost', taxCode: 'tax_code', description: 'description', payee: 'payee', behaviour: 'behaviour',
  amount: 'unit_cost',
} as const;

// ---------------------------------------------------------------------------------------
// Running an import
// ---------------------------------------------------------------------------------------

export interface ImportOutcome {
  kind: ImportKind;
  dryRun: boolean;
  /** Data rows read (blank lines not counted). */
  rows: number;
  /** Rows that passed every check. */
  accepted: number;
  /** Every rejected row and column, in row order. */
  rejected: Rejection[];
  /** Rows written: 0 for a dry run or when anything was rejected. */
  imported: number;
  /** What each row created (or would create): its id and number. */
  created: Array<{ row: number; id: string; reference: string | null }>;
  /** Accepted but worth saying, e.g. a matter is now over its WIP cap. */
  warnings: string[];
  /** The table, for the preview page. */
  table: CsvTable;
  /** Set when this import id was already applied: the outcome is that apply's, nothing more was written. */
  alreadyApplied?: { at: string; by: string } | null;
  /** The same file (kind and content) imported before under another id: applying it again needs `importAgain`. */
  earlierImport?: { at: string; by: string; imported: number } | null;
}

/** Rows of a file repeated in it, listed as warnings at most this many. */
const MAX_REPEATED_ROWS_SAID = 20;

/** "Row 5 is the same as row 3", for each data row that repeats an earlier one cell for cell. */
export function repeatedRows(table: CsvTable): string[] {
  const seen = new Map<string, number>();
  const out: string[] = [];
  let more = 0;
  for (const r of table.rows) {
    const key = JSON.stringify(table.columns.map((c) => (r.values[c] ?? '').trim()));
    const first = seen.get(key);
    if (first === undefined) { seen.set(key, r.row); continue; }
    if (out.length < MAX_REPEATED_ROWS_SAID) out.push(`Row ${r.row} is the same as row ${first}: both are imported (remove one if it is not meant twice)`);
    else more++;
  }
  if (more > 0) out.push(`… and ${more} more rows the same as an earlier row`);
  return out;
}

/** Thrown inside the batch to roll it back; carries the outcome out. */
class Rollback extends Error {
  override name = 'Rollback';
}

/** The lookups an import needs; the matters commands provide them. */
type Lookups = Pick<MattersCommands, 'batch' | 'listTimekeepers'>;

interface MatterRef { id: string; currency: string }
interface ClientRef { id: string }

/** Read what rows refer to: clients by number, matters by file number (with currency). */
export interface ImportReads {
  clientsByNumber(numbers: readonly number[]): Promise<Map<number, ClientRef>>;
  mattersByFileNumber(fileNumbers: readonly string[]): Promise<Map<string, MatterRef>>;
  /** The currency a matter gets when the row names none. */
  defaultCurrency(): Promise<string>;
}

/**
 * Check (dryRun) or apply a CSV of one kind. Never partial: with any rejected row the
 * transaction rolls back and `imported` is 0. Throws ImportFileError when the file as a
 * whole is unusable (not CSV, bad header, too many rows).
 */
export async function runImport(
  cmds: Lookups, reads: ImportReads, ctx: CommandContext, kind: ImportKind, text: string,
  opts: {
    dryRun: boolean; maxRows?: number; maxBytes?: number;
    /** The import's id (idempotency key): applied once; ignored by a dry run. Needs `log`. */
    importId?: string;
    /** Applied imports: the id's, and earlier imports of the same file (said on a dry run; refused on an apply unless `importAgain`). */
    log?: ImportLog;
    /** Apply a file imported before, again: its rows are recorded a second time. */
    importAgain?: boolean;
  },
): Promise<ImportOutcome> {
  // An apply is recorded with the log under its id, or one of its own when none is given (so a later
  // apply of the same file, with or without an id, is known as a repeat).
  const importId = opts.dryRun ? undefined : importIdOf(opts.importId) ?? (opts.log ? randomUUID() : undefined);
  const log = opts.log;
  if (importId !== undefined && !log) throw new Error('runImport: an import id needs the import log');
  const maxBytes = opts.maxBytes ?? IMPORT_LIMITS.maxBytes;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) {
    throw new ImportFileError(`The file is ${formatBytes(bytes)}; the limit is ${formatBytes(maxBytes)}: split it into several files.`, 413);
  }
  const table = readTable(kind, text, { maxRows: opts.maxRows });
  if (table.rows.length === 0 && table.problems.length === 0) {
    throw new ImportFileError('The file has a header but no rows to import.', 422);
  }
  const rejected: Rejection[] = [...table.problems];
  const reject = (row: number, errors: Readonly<Record<string, string>>): void => {
    for (const [field, message] of Object.entries(errors)) rejected.push({ row, field: field === '(row)' ? null : field, message });
  };
  const created: ImportOutcome['created'] = [];
  const warnings: string[] = [];
  const total = table.rows.length + table.problems.length;
  const sha256 = createHash('sha256').update(text, 'utf8').digest('hex');
  const applied = { kind, sha256, table };
  if (importId !== undefined) {
    const prior = await log!.find(importId);
    if (prior) return replay(prior, applied);
  }
  // The same file imported before (a second upload of last week's export, a retry after an apply that seemed to hang):
  // its rows would be recorded twice, and billed twice. Said on the preview; the apply needs it confirmed.
  // Checked again inside the apply's transaction, holding the file's content (two applies of one file under two ids).
  const earlier = log ? await log.findByContent(kind, sha256, importId) : undefined;
  const earlierImport = earlier ? { at: earlier.appliedAt, by: earlier.actorLabel, imported: earlier.imported } : null;
  const confirmRepeat = !opts.dryRun && log !== undefined && opts.importAgain !== true;
  if (confirmRepeat && earlier) throw repeatRefusal(earlier);
  warnings.push(...repeatedRows(table));

  // What rows refer to is read before the transaction: on SQLite the transaction holds the
  // only connection, and the commands check every reference again inside it anyway.
  const refs = await loadRefs(kind, table, cmds, reads);
  const work = async (tx: Parameters<Parameters<Lookups['batch']>[0]>[0], trx?: DbTx): Promise<void> => {
    if (confirmRepeat) {
      // The file's content held to the end of this transaction (Postgres; SQLite runs one writer at a time): an apply
      // of the same file under another id that committed meanwhile is seen here.
      await log!.holdContent(trx!, kind, sha256);
      const meanwhile = await log!.findByContent(kind, sha256, importId, trx!);
      if (meanwhile) throw repeatRefusal(meanwhile);
    }
    // The id first: a parallel apply of the same id waits here (Postgres) until this one ends.
    if (importId !== undefined) await log!.begin(trx!, ctx, { id: importId, kind, sha256, rows: total });
    if (kind === 'clients') await importClients(tx, ctx, table, reject, created, rejected);
    else if (kind === 'matters') await importMatters(tx, ctx, refs, table, reject, created, rejected);
    else if (kind === 'time-entries') warnings.push(...await importTime(tx, ctx, refs, table, reject, created));
    else warnings.push(...await importDisbursements(tx, ctx, refs, table, reject, created));
    if (opts.dryRun || rejected.length > 0) throw new Rollback();
    if (importId !== undefined) {
      await log!.finish(trx!, ctx, importId, { kind, sha256, rows: total, accepted: total, imported: table.rows.length, created, warnings });
    }
  };
  let committed = false;
  try {
    if (importId !== undefined) await log!.transaction((tx, trx) => work(tx, trx));
    else await cmds.batch((tx) => work(tx));
    committed = true;
  } catch (err) {
    if (!(err instanceof Rollback)) {
      if (importId !== undefined && isUniqueViolation(err)) {
        // Another apply of this id committed first (it held the key; this one waited and lost).
        const prior = await log!.find(importId);
        if (prior) return replay(prior, applied);
      }
      if (err instanceof HttpError) throw err;
      // Anything else (a database refusal) imports nothing either; say so with the reason.
      throw new ImportFileError(`Nothing was imported: the database refused the file (${(err as Error).message}).`, 422);
    }
  }
  rejected.sort((a, b) => a.row - b.row);
  const rejectedRows = new Set(rejected.map((r) => r.row));
  return {
    kind, dryRun: opts.dryRun, rows: total, accepted: total - rejectedRows.size, rejected,
    imported: committed ? table.rows.length : 0, created: rejected.length ? created.filter((c) => !rejectedRows.has(c.row)) : created,
    warnings: rejected.length ? [] : warnings, table, earlierImport,
  };
}

// ---------------------------------------------------------------------------------------
// The import log: each import id applied once
// ---------------------------------------------------------------------------------------

/** The shape of an import id, as the matters item ids (idempotency keys). */
const IMPORT_ID_RE = /^[0-9a-zA-Z-]{8,64}$/;

/** The given import id, trimmed; none when absent or empty; a 422 naming `importId` when malformed. */
function importIdOf(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  const id = typeof v === 'string' ? v.trim() : v;
  if (id === '') return undefined;
  if (typeof id !== 'string' || !IMPORT_ID_RE.test(id)) throw invalid({ importId: 'must be 8 to 64 letters, digits or dashes' });
  return id;
}

/** An import as applied, from `matters_import`. */
export interface AppliedImport {
  id: string;
  kind: ImportKind;
  /** Of the CSV text applied. */
  sha256: string;
  rows: number;
  accepted: number;
  imported: number;
  created: ImportOutcome['created'];
  warnings: string[];
  actorLabel: string;
  appliedAt: string;
}

type AppliedResult = Pick<AppliedImport, 'kind' | 'sha256' | 'rows' | 'accepted' | 'imported' | 'created' | 'warnings'>;

export interface ImportLog {
  /** Run `fn` in one transaction: the matters commands bound to it, and the transaction. Kicks the relay after commit. */
  transaction<T>(fn: (tx: Tx, trx: DbTx) => Promise<T>): Promise<T>;
  /** The import applied under this id, if any (committed). */
  find(id: string): Promise<AppliedImport | undefined>;
  /** The latest import of this kind whose file had this content (sha256) and recorded rows, other than `exceptId` (a parallel apply of the same id is a replay), if any; read in `ex` when given. */
  findByContent(kind: ImportKind, sha256: string, exceptId?: string, ex?: Executor): Promise<AppliedImport | undefined>;
  /** Hold this file's content to the end of the transaction (Postgres), so two applies of one file queue. */
  holdContent(trx: DbTx, kind: ImportKind, sha256: string): Promise<void>;
  /** Take the id inside the apply's transaction (the primary key lets one apply through). */
  begin(trx: DbTx, ctx: CommandContext, rec: { id: string; kind: ImportKind; sha256: string; rows: number }): Promise<void>;
  /** Record the apply's outcome and audit it, in the same transaction. */
  finish(trx: DbTx, ctx: CommandContext, id: string, result: AppliedResult): Promise<void>;
}

/** An apply of a file imported before, not confirmed: 409 naming importAgain. */
function repeatRefusal(earlier: AppliedImport): HttpError {
  const message = `this file was already imported on ${earlier.appliedAt.slice(0, 10)} by ${earlier.actorLabel} (${earlier.imported} row${earlier.imported === 1 ? '' : 's'}): confirm "Import it again" to record its rows a second time`;
  return new HttpError(409, 'conflict', `Already imported: ${message}`, { importAgain: message });
}

/** The first key of the Postgres advisory locks an apply takes on its file's content. */
const IMPORT_CONTENT_LOCK_CLASS = 7_402;

/** A `matters_import` row as an applied import. */
function appliedOf(r: Record<string, unknown> | undefined): AppliedImport | undefined {
  if (!r) return undefined;
  const result = JSON.parse(String(r.result)) as { accepted: number; created: ImportOutcome['created']; warnings: string[] };
  return {
    id: String(r.id), kind: r.kind as ImportKind, sha256: String(r.sha256), rows: Number(r.row_count), accepted: result.accepted,
    imported: Number(r.imported), created: result.created, warnings: result.warnings, actorLabel: String(r.actor_label), appliedAt: String(r.created_at),
  };
}

/** The log of applied imports over `matters_import`. */
export function createImportLog(deps: { db: Db; clock: Clock; relay?: { kick(): void } }, cmds: Pick<MattersCommands, 'within'>): ImportLog {
  const { db, clock } = deps;
  return {
    async transaction(fn) {
      const result = await db.transaction().execute((trx) => fn(cmds.within(trx), trx));
      deps.relay?.kick();
      return result;
    },
    async find(id) {
      return appliedOf(await db.selectFrom('matters_import').selectAll().where('id', '=', id).executeTakeFirst() as Record<string, unknown> | undefined);
    },
    async holdContent(trx, kind, sha256) {
      if (writersSerialised(trx)) return;
      await sql`select pg_advisory_xact_lock(${IMPORT_CONTENT_LOCK_CLASS}, hashtext(${`${kind}:${sha256}`}))`.execute(trx);
    },
    async findByContent(kind, sha256, exceptId, ex) {
      let q = (ex ?? db).selectFrom('matters_import').selectAll().where('kind', '=', kind).where('sha256', '=', sha256).where('imported', '>', 0);
      if (exceptId !== undefined) q = q.where('id', '<>', exceptId);
      return appliedOf(await q.orderBy('created_at', 'desc').limit(1).executeTakeFirst() as Record<string, unknown> | undefined);
    },
    async begin(trx, ctx, rec) {
      await trx.insertInto('matters_import').values({
        id: rec.id, kind: rec.kind, sha256: rec.sha256, row_count: rec.rows, imported: 0, result: '{}',
        actor_id: ctx.actorId, actor_label: ctx.actorLabel, created_at: clock.now().toISOString(),
      }).execute();
    },
    async finish(trx, ctx, id, r) {
      await trx.updateTable('matters_import')
        .set({ imported: r.imported, result: JSON.stringify({ accepted: r.accepted, created: r.created, warnings: r.warnings }) })
        .where('id', '=', id).execute();
      await audit(trx, clock, ctx, {
        action: 'matters.import_applied', entityType: 'matters_import', entityId: id,
        after: { kind: r.kind, sha256: r.sha256, rows: r.rows, imported: r.imported },
      });
    },
  };
}

/** A repeat of an applied import: the first apply's outcome; the id with another file or kind is a 409 naming `importId`. */
function replay(prior: AppliedImport, now: { kind: ImportKind; sha256: string; table: CsvTable }): ImportOutcome {
  if (prior.kind !== now.kind || prior.sha256 !== now.sha256) {
    const message = `is the id of another import (${prior.kind}, applied ${prior.appliedAt}): preview the file again to import it`;
    throw new HttpError(409, 'conflict', `Already used: importId ${message}`, { importId: message });
  }
  return {
    kind: prior.kind, dryRun: false, rows: prior.rows, accepted: prior.accepted, rejected: [], imported: prior.imported,
    created: prior.created, warnings: prior.warnings, table: now.table, alreadyApplied: { at: prior.appliedAt, by: prior.actorLabel },
  };
}

type Tx = Parameters<Parameters<MattersCommands['batch']>[0]>[0];
type Reject = (row: number, errors: Readonly<Record<string, string>>) => void;

/** Run one row's command; a 422 becomes the row's rejections (renamed to columns). */
async function attempt<T>(row: number, map: Readonly<Record<string, string>>, reject: Reject, fn: () => Promise<T>): Promise<T | null> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof HttpError && (err.status === 422 || err.status === 409 || err.status === 404)) {
      reject(row, Object.keys(err.fields).length ? renamed(err.fields, map) : { '(row)': err.message });
      return null;
    }
    throw err;
  }
}

async function importClients(tx: Tx, ctx: CommandContext, table: CsvTable, reject: Reject, created: ImportOutcome['created'], rejected: Rejection[]): Promise<void> {
  for (const { row, values } of table.rows) {
    const errors: FieldErrors = {};
    const wanted = positiveIntCell(errors, values, 'client_number');
    const input = { name: cell(values, 'name') ?? '', email: cell(values, 'email') ?? null, address: cell(values, 'address') ?? null, taxId: cell(values, 'tax_id') ?? null };
    Object.assign(errors, renamed(validateClient(input), CLIENT_FIELDS));
    if (Object.keys(errors).length) { reject(row, errors); continue; }
    const hadRejections = rejected.length > 0;
    const c = await attempt(row, CLIENT_FIELDS, reject, () => tx.createClient(ctx, input));
    if (!c) continue;
    // Numbers shift after a rejected row, so only check them while every row so far was fine.
    if (wanted !== undefined && c.clientNumber !== wanted && !hadRejections) {
      reject(row, { client_number: `would be ${c.clientNumber}, not ${wanted}: Lexbill numbers clients in sequence (leave client_number empty to accept its numbers)` });
      continue;
    }
    created.push({ row, id: c.id, reference: String(c.clientNumber) });
  }
}

interface Refs {
  clients: Map<number, ClientRef>;
  matters: Map<string, MatterRef>;
  /** By upper-cased initials. */
  timekeepers: Map<string, { id: string }>;
  defaultCurrency: string;
}

async function loadRefs(kind: ImportKind, table: CsvTable, cmds: Lookups, reads: ImportReads): Promise<Refs> {
  const refs: Refs = { clients: new Map(), matters: new Map(), timekeepers: new Map(), defaultCurrency: 'USD' };
  if (kind === 'clients') return refs;
  const column = (name: string) => [...new Set(table.rows.map((r) => cell(r.values, name)).filter((v): v is string => v !== undefined))];
  if (kind === 'matters') {
    refs.clients = await reads.clientsByNumber(column('client_number').filter((v) => /^[1-9]\d{0,14}$/.test(v)).map(Number));
    refs.defaultCurrency = await reads.defaultCurrency();
  } else {
    refs.matters = await reads.mattersByFileNumber(column('file_number'));
  }
  if (kind !== 'disbursements') refs.timekeepers = new Map((await cmds.listTimekeepers()).map((t) => [t.initials.toUpperCase(), t]));
  return refs;
}

async function importMatters(tx: Tx, ctx: CommandContext, refs: Refs, table: CsvTable, reject: Reject, created: ImportOutcome['created'], rejected: Rejection[]): Promise<void> {
  const { clients, timekeepers: tks, defaultCurrency: fallbackCurrency } = refs;
  for (const { row, values } of table.rows) {
    const errors: FieldErrors = {};
    const clientNumber = positiveIntCell(errors, values, 'client_number');
    if (clientNumber === undefined && !errors.client_number) errors.client_number = 'is required';
    const client = clientNumber !== undefined ? clients.get(clientNumber) : undefined;
    if (clientNumber !== undefined && !client) errors.client_number = `no client numbered ${clientNumber}`;
    const initials = (name: string, required: boolean): string | undefined => {
      const v = cell(values, name);
      if (v === undefined) { if (required) errors[name] = 'is required'; return undefined; }
      const tk = tks.get(v.toUpperCase());
      if (!tk) { errors[name] = `no timekeeper with initials "${v}"`; return undefined; }
      return tk.id;
    };
    const responsible = initials('responsible', true);
    const billing = initials('billing', false);
    const originating = initials('originating', false);
    const currency = (cell(values, 'currency') ?? fallbackCurrency).toUpperCase();
    if (!isKnownCurrency(currency)) errors.currency = UNKNOWN_CURRENCY;
    let wipCapMinor: number | undefined;
    const cap = cell(values, 'wip_cap');
    if (cap !== undefined && !errors.currency) {
      const p = limited(parseMoneyText(cap, currency), LIMITS.wipCapMinor, currency, 1);
      if (p.ok) wipCapMinor = p.value; else errors.wip_cap = p.error;
    }
    let billingCycle: BillingCycle | undefined;
    const cycle = cell(values, 'billing_cycle');
    if (cycle !== undefined) {
      const found = BILLING_CYCLES.find((c) => c.toLowerCase() === cycle.toLowerCase());
      if (found) billingCycle = found; else errors.billing_cycle = `must be one of: ${BILLING_CYCLES.join(', ')}`;
    }
    const nextBillingDate = dateCell(errors, values, 'next_billing_date', false);
    const openedOn = dateCell(errors, values, 'opened_on', false);
    const input = {
      clientId: client?.id ?? '', name: cell(values, 'name') ?? '', practiceArea: cell(values, 'practice_area') ?? null,
      responsibleTimekeeperId: responsible ?? '', ...(billing ? { billingTimekeeperId: billing } : {}),
      originatingTimekeeperId: originating ?? null, ...(billingCycle ? { billingCycle } : {}),
      ...(nextBillingDate ? { nextBillingDate } : {}), ...(openedOn ? { openedOn } : {}),
      wipCapMinor: wipCapMinor ?? null, currency,
    };
    for (const [k, v] of Object.entries(renamed(validateMatter(input), MATTER_FIELDS))) errors[k] ??= v;
    if (Object.keys(errors).length) { reject(row, errors); continue; }
    const hadRejections = rejected.length > 0;
    const m = await attempt(row, MATTER_FIELDS, reject, () => tx.openMatter(ctx, input));
    if (!m) continue;
    const wantedFile = cell(values, 'file_number');
    if (wantedFile !== undefined && wantedFile !== m.fileNumber && !hadRejections) {
      reject(row, { file_number: `would be ${m.fileNumber}, not ${wantedFile}: Lexbill numbers each client's matters in sequence (leave file_number empty to accept its numbers)` });
      continue;
    }
    created.push({ row, id: m.id, reference: m.fileNumber });
  }
}

/** `timeEntries.3.narrative` -> index 3, field narrative. */
function splitIndexed(key: string, prefix: string): { index: number; field: string } | null {
  const m = new RegExp(`^${prefix}\\.(\\d+)\\.(.+)$`).exec(key);
  return m ? { index: Number(m[1]), field: m[2]! } : null;
}

async function importTime(tx: Tx, ctx: CommandContext, refs: Refs, table: CsvTable, reject: Reject, created: ImportOutcome['created']): Promise<string[]> {
  const { matters, timekeepers: tks } = refs;
  const inputs: RecordTimeEntryInput[] = [];
  const rowsOf: number[] = [];
  for (const { row, values } of table.rows) {
    const errors: FieldErrors = {};
    const file = cell(values, 'file_number');
    const matter = file !== undefined ? matters.get(file) : undefined;
    if (file === undefined) errors.file_number = 'is required';
    else if (!matter) errors.file_number = `no matter with file number ${file}`;
    const ini = cell(values, 'timekeeper');
    const tk = ini !== undefined ? tks.get(ini.toUpperCase()) : undefined;
    if (ini === undefined) errors.timekeeper = 'is required';
    else if (!tk) errors.timekeeper = `no timekeeper with initials "${ini}"`;
    const workDate = dateCell(errors, values, 'date', true);
    let rawMinutes: number | undefined;
    const hours = parseHoursText(values.hours ?? '');
    const hoursProblem = hours.ok ? minutesRangeError(hours.value) : hours.error;
    if (hoursProblem) errors.hours = hoursProblem; else if (hours.ok) rawMinutes = hours.value;
    const behaviour = behaviourCell(errors, values);
    let override: RecordTimeEntryInput['override'] = null;
    const rate = cell(values, 'rate');
    if (rate !== undefined && matter) {
      const p = limited(parseMoneyText(rate, matter.currency), LIMITS.rateMinor, matter.currency);
      if (p.ok) override = { rateMinor: p.value, reason: cell(values, 'rate_reason') ?? 'Imported rate' };
      else errors.rate = p.error;
    } else if (rate === undefined && cell(values, 'rate_reason') !== undefined) {
      // A reason for a rate the row does not give: the entry would be priced at the resolved rate, not the one meant.
      errors.rate = 'is required with rate_reason (the reason is for a rate given in this row)';
    }
    const input: RecordTimeEntryInput = {
      matterId: matter?.id ?? '', timekeeperId: tk?.id ?? '', workDate: workDate ?? '', rawMinutes: rawMinutes ?? 0,
      narrative: cell(values, 'narrative') ?? '', taskCode: cell(values, 'task_code')?.toUpperCase() ?? null,
      activityCode: cell(values, 'activity_code')?.toUpperCase() ?? null, ...(behaviour ? { behaviour } : {}), override,
    };
    for (const [k, v] of Object.entries(renamed(validateTimeEntry(input), TIME_FIELDS))) errors[k] ??= v;
    if (Object.keys(errors).length) { reject(row, errors); continue; }
    inputs.push(input);
    rowsOf.push(row);
  }
  return recordRows(tx, ctx, 'timeEntries', inputs, rowsOf, TIME_FIELDS, reject, created);
}

async function importDisbursements(tx: Tx, ctx: CommandContext, refs: Refs, table: CsvTable, reject: Reject, created: ImportOutcome['created']): Promise<string[]> {
  const { matters } = refs;
  const inputs: RecordDisbursementInput[] = [];
  const rowsOf: number[] = [];
  for (const { row, values } of table.rows) {
    const errors: FieldErrors = {};
    const file = cell(values, 'file_number');
    const matter = file !== undefined ? matters.get(file) : undefined;
    if (file === undefined) errors.file_number = 'is required';
    else if (!matter) errors.file_number = `no matter with file number ${file}`;
    const incurredOn = dateCell(errors, values, 'date', true);
    let quantityMilli: number | undefined;
    const q = cell(values, 'quantity');
    if (q !== undefined) {
      const p = parseQuantityText(q);
      if (p.ok) quantityMilli = p.value; else errors.quantity = p.error;
    }
    let unitCostMinor: number | undefined;
    if (matter) {
      const p = limited(parseMoneyText(values.unit_cost ?? '', matter.currency), LIMITS.unitCostMinor, matter.currency);
      if (p.ok) unitCostMinor = p.value; else errors.unit_cost = p.error;
    } else if (cell(values, 'unit_cost') === undefined) errors.unit_cost = 'is required';
    const behaviour = behaviourCell(errors, values);
    const input: RecordDisbursementInput = {
      matterId: matter?.id ?? '', incurredOn: incurredOn ?? '', code: cell(values, 'code')?.toUpperCase() ?? '',
      expenseCode: cell(values, 'expense_code')?.toUpperCase() ?? null, ...(quantityMilli !== undefined ? { quantityMilli } : {}),
      unitCostMinor: unitCostMinor ?? 0, taxCode: cell(values, 'tax_code')?.toUpperCase() ?? null, description: cell(values, 'description') ?? '',
      payee: cell(values, 'payee') ?? null, ...(behaviour ? { behaviour } : {}),
    };
    for (const [k, v] of Object.entries(renamed(validateDisbursement(input), DISBURSEMENT_FIELDS))) errors[k] ??= v;
    if (Object.keys(errors).length) { reject(row, errors); continue; }
    inputs.push(input);
    rowsOf.push(row);
  }
  return recordRows(tx, ctx, 'disbursements', inputs, rowsOf, DISBURSEMENT_FIELDS, reject, created);
}

/**
 * Record the valid rows of one kind in one recordWip call; a 422 from the command is mapped
 * back to spreadsheet rows and CSV column names (`timeEntries.3.narrative` -> row, narrative).
 */
async function recordRows<K extends 'timeEntries' | 'disbursements'>(
  tx: Tx, ctx: CommandContext, kind: K,
  inputs: K extends 'timeEntries' ? RecordTimeEntryInput[] : RecordDisbursementInput[],
  rowsOf: readonly number[], columns: Readonly<Record<string, string>>, reject: Reject, created: ImportOutcome['created'],
): Promise<string[]> {
  if (inputs.length === 0) return [];
  try {
    const r = await tx.recordWip(ctx, { [kind]: inputs });
    r[kind].forEach((item, i) => created.push({ row: rowsOf[i]!, id: item.id, reference: null }));
    return r.warnings;
  } catch (err) {
    if (!(err instanceof HttpError) || err.status !== 422) throw err;
    for (const [key, message] of Object.entries(err.fields)) {
      const at = splitIndexed(key, kind);
      if (at && rowsOf[at.index] !== undefined) reject(rowsOf[at.index]!, { [columns[at.field] ?? at.field]: message });
      else reject(rowsOf[0]!, { '(row)': `${key} ${message}` });
    }
    return [];
  }
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(Math.round((n / (1024 * 1024)) * 10) / 10).toString()} MB`;
  if (n >= 1024) return `${Math.round(n / 1024)} KB`;
  return `${n} bytes`;
}

/** The reads an import needs, over the matters tables. */
export function createImportReads(db: Executor, defaultCurrency: () => Promise<string> = async () => 'USD'): ImportReads {
  return {
    async clientsByNumber(numbers) {
      const out = new Map<number, ClientRef>();
      for (let i = 0; i < numbers.length; i += 500) {
        const rows = await db.selectFrom('matters_client').select(['id', 'client_number']).where('client_number', 'in', numbers.slice(i, i + 500)).execute() as Array<{ id: string; client_number: number | string }>;
        for (const r of rows) out.set(Number(r.client_number), { id: String(r.id) });
      }
      return out;
    },
    async mattersByFileNumber(files) {
      const out = new Map<string, MatterRef>();
      for (let i = 0; i < files.length; i += 500) {
        const rows = await db.selectFrom('matters_matter').select(['id', 'file_number', 'currency']).where('file_number', 'in', files.slice(i, i + 500)).execute() as Array<{ id: string; file_number: string; currency: string }>;
        for (const r of rows) out.set(String(r.file_number), { id: String(r.id), currency: String(r.currency) });
      }
      return out;
    },
    defaultCurrency,
  };
}

/** Decode uploaded bytes as UTF-8, refusing other encodings with advice. */
export function decodeUtf8(bytes: ArrayBuffer | Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ImportFileError('The file is not UTF-8 text: in a spreadsheet, save it as "CSV UTF-8".', 422);
  }
}
