/**
 * `lexbill ledes export --bills all-approved|NUMBER... [--format 1998B|1998BI] --out FILE [--per-bill] [--include-exported]`
 * `lexbill ledes validate FILE [--require-period] [--require-client-matter-id]`
 *
 * Export writes nothing when any bill is refused: it prints every offending line and how to
 * fix it and exits 1. Validate prints every violation by line and field and exits 1 when
 * there is one. Both exit 2 on a usage error.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Runtime } from '../main.ts';
import { createEbillingCommands, describeProblem, EXPORT_LIMITS, fileAmountText, LedesRefusal, readLedes, utbmsCodes } from '../modules/ebilling/index.ts';
import { systemContext } from '../shared/events.ts';
import { repeatedOptions } from './args.ts';

export const LEDES_HELP = `  ledes export --bills all-approved|NUMBER... [--format 1998B|1998BI] --out FILE [--per-bill] [--include-exported]
                              write approved bills as LEDES (format: each matter's, unless given);
                              all-approved: the approved bills of e-billed matters not yet exported
                              as they are (--include-exported: those too);
                              --per-bill writes one file per bill into the directory FILE
  ledes validate FILE [--require-period] [--require-client-matter-id]
                              check a LEDES 1998B/1998BI file: every violation by line and field`;

export class LedesUsageError extends Error {}

const MAX_FILE_BYTES = 200 * 1024 * 1024;

function formatOf(v: string | undefined): 'LEDES1998B' | 'LEDES1998BI' | null {
  if (v === undefined) return null;
  const f = v.toUpperCase().replace(/^LEDES/, '');
  if (f === '1998B') return 'LEDES1998B';
  if (f === '1998BI' || f === '98BI') return 'LEDES1998BI';
  throw new LedesUsageError('--format must be 1998B or 1998BI');
}

/** Validate a file without opening the database. */
export function ledesValidate(args: string[], out: (s: string) => void = console.log): number {
  const options = { 'require-period': { type: 'boolean' }, 'require-client-matter-id': { type: 'boolean' } } as const;
  const { values, positionals, tokens } = parseArgs({ args, allowPositionals: true, strict: true, tokens: true, options });
  const twice = repeatedOptions(tokens, options);
  if (twice) throw new LedesUsageError(twice);
  if (positionals.length !== 1) throw new LedesUsageError('ledes validate takes one FILE');
  const file = positionals[0]!;
  // A file that is not there (a mistyped path) is a usage error, not "the file has violations".
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new LedesUsageError(`${file} is not a file`);
    size = st.size;
  } catch (e) {
    if (e instanceof LedesUsageError) throw e;
    throw new LedesUsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  if (size > MAX_FILE_BYTES) throw new LedesUsageError(`${file} is larger than ${MAX_FILE_BYTES / 1024 / 1024} MB`);
  const r = readLedes(readFileSync(file, 'utf8'), { codes: utbmsCodes(), requireBillingPeriod: values['require-period'], requireClientMatterId: values['require-client-matter-id'] });
  for (const v of r.violations) out(`line ${v.line} ${v.field}: ${v.message}`);
  if (r.moreViolations) out(`...and ${r.moreViolations} more violations`);
  for (const i of r.invoices) {
    const show = (minor: number) => fileAmountText(minor, i.currency);
    out(`invoice ${i.number}: ${i.lines.length} line(s), total ${show(i.totalMinor)}${r.format === 'LEDES1998BI' ? `, tax ${show(i.taxMinor)}` : ''}`);
  }
  out(r.valid ? `${file}: valid ${r.format}, ${r.invoices.length} invoice(s)` : `${file}: ${r.violations.length + r.moreViolations} violation(s)`);
  return r.valid ? 0 : 1;
}

/**
 * `--bills all-approved`: the bills in Approved status (waiting in bill production) of matters
 * e-billing is on for, leaving out those already exported as they are now (a scheduled run
 * sends each invoice once; `--include-exported` takes them again), up to the bills one export
 * takes (EXPORT_LIMITS.bills; `maxBills` for tests). More than that is refused with the count,
 * not cut short: a file must never leave bills out without saying so. What was left out is
 * said on stderr; none left to export writes no file and exits 0 (nothing to do is not a failure).
 */
export async function ledesExport(rt: Runtime, args: string[], out: (s: string) => void = console.log, err: (s: string) => void = console.error,
  opts: { maxBills?: number } = {}): Promise<number> {
  const maxBills = opts.maxBills ?? EXPORT_LIMITS.bills;
  const options = { bills: { type: 'string', multiple: true }, format: { type: 'string' }, out: { type: 'string' }, 'per-bill': { type: 'boolean' }, 'include-exported': { type: 'boolean' } } as const;
  const { values, positionals, tokens } = parseArgs({ args, allowPositionals: true, strict: true, tokens: true, options });
  const twice = repeatedOptions(tokens, options);
  if (twice) throw new LedesUsageError(twice);
  // A bill named twice is one bill: one invoice in the file, not two.
  const wanted = [...new Set([...(values.bills ?? []), ...positionals])];
  if (wanted.length === 0) throw new LedesUsageError('--bills is required: all-approved, or bill numbers');
  if (!values.out) throw new LedesUsageError('--out FILE is required');
  const format = formatOf(values.format);
  // Where the file goes is checked before the export is made and kept: a path that cannot be
  // written must not leave an export recorded (and its event published) with no file.
  const outPath = resolve(values.out);
  if (values['per-bill']) {
    if (existsSync(outPath) && !statSync(outPath).isDirectory()) throw new LedesUsageError(`--out ${values.out} is a file; --per-bill writes into a directory`);
  } else {
    if (existsSync(outPath) && statSync(outPath).isDirectory()) throw new LedesUsageError(`--out ${values.out} is a directory; give a file name (or --per-bill)`);
    if (!existsSync(dirname(outPath)) || !statSync(dirname(outPath)).isDirectory()) throw new LedesUsageError(`--out ${values.out}: the directory ${dirname(outPath)} does not exist`);
  }
  const cmds = createEbillingCommands({ db: rt.database.db, clock: rt.clock, relay: rt.relay });
  await rt.relay.drain(); // bring e-billing's copy up to date with every committed bill event
  let ids: string[];
  if (wanted.length === 1 && wanted[0] === 'all-approved') {
    const includeExported = values['include-exported'] === true;
    const found = await cmds.billsToEbill({ limit: maxBills + 1, includeExported });
    ids = found.bills.map((b) => b.billId);
    const left = [
      ...(found.notEbilled > 0 ? [`${found.notEbilled} approved bill(s) of matters that are not e-billed`] : []),
      ...(found.exported > 0 ? [`${found.exported} already exported as they are (--include-exported to export them again)`] : []),
    ];
    if (left.length > 0) err(`lexbill: left out: ${left.join('; ')}`);
    if (ids.length === 0) { err('lexbill: no approved bills to export; no file was written'); return 0; }
    if (ids.length > maxBills) {
      err(`lexbill: more than ${maxBills} approved bills; one export takes at most ${maxBills}: export them by bill number, in parts. No file was written`);
      return 1;
    }
  } else {
    if (wanted.includes('all-approved')) throw new LedesUsageError('--bills all-approved cannot be mixed with bill numbers');
    if (values['include-exported']) throw new LedesUsageError('--include-exported goes with --bills all-approved (bills named by number are exported whether or not they were before)');
    const byNumber = await cmds.billIdsByNumber(wanted);
    const unknown = wanted.filter((n) => !byNumber.has(n));
    if (unknown.length > 0) { err(`lexbill: no bill numbered ${unknown.join(', ')}`); return 1; }
    ids = wanted.flatMap((n) => byNumber.get(n)!);
  }
  const perBill = values['per-bill'] === true;
  const dir = values.out;
  const target = (f: { fileName: string }) => (perBill ? join(dir, f.fileName) : dir);
  // The files are written inside the export's transaction (each under a temporary name beside
  // it, then renamed into place: never half a file): a directory that refuses them (no
  // permission, a read-only mount, a full disk) rolls the export back, so nothing is recorded as
  // sent that was not. Should the commit itself fail, the files written are removed again.
  const placed: string[] = [];
  let writeFailure: string | null = null;
  const deliver = (files: readonly { fileName: string; content: string }[]) => {
    const temps: string[] = [];
    try {
      if (perBill) mkdirSync(dir, { recursive: true });
      for (const f of files) {
        // A name of this export's own (a run stopped part way leaves nothing a later one would stumble on), created here
        // (never one already there), so only what this export made is removed on failure; on disk before it is renamed.
        const tmp = `${target(f)}.${randomUUID()}.tmp`;
        const fd = openSync(tmp, 'wx');
        temps.push(tmp);
        try { writeFileSync(fd, f.content); fsyncSync(fd); } finally { closeSync(fd); }
      }
      files.forEach((f, i) => { renameSync(temps[i]!, target(f)); placed.push(target(f)); });
    } catch (e) {
      for (const t of temps) rmSync(t, { force: true });
      for (const p of placed.splice(0)) rmSync(p, { force: true });
      writeFailure = (e as Error).message;
      throw e;
    }
  };
  try {
    const { files } = await cmds.exportBills(systemContext(`cli-ledes-${Date.now()}`, 'cli:ledes-export'), { billIds: ids, format, mode: perBill ? 'per_bill' : 'single' }, deliver);
    for (const f of files) out(`${target(f)}: ${f.format}, ${f.invoiceCount} invoice(s), ${f.lineCount} line(s), sha256 ${f.sha256}`);
    return 0;
  } catch (e) {
    for (const p of placed) rmSync(p, { force: true });
    if (e instanceof LedesRefusal) {
      err(`lexbill: no file was written; ${e.problems.length} problem(s) to fix first:`);
      for (const p of e.problems) err(`  ${describeProblem(p)}`);
      return 1;
    }
    if (writeFailure !== null) {
      err(`lexbill: --out ${values.out} could not be written (${writeFailure}); no file was written and no export recorded`);
      return 1;
    }
    throw e;
  }
}

/** `lexbill ledes ...`: the one entry main.ts dispatches to. */
export async function ledesCommand(args: string[], withRuntime: <T>(fn: (rt: Runtime) => Promise<T>) => Promise<T>): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'validate') return ledesValidate(rest);
  if (sub === 'export') return withRuntime((rt) => ledesExport(rt, rest));
  throw new LedesUsageError(`unknown ledes command "${sub ?? ''}" (export, validate)`);
}
