/**
 * `lexbill report NAME [--from D] [--to D] [--client C] [--currency C] [--format csv|json]`: a
 * ledger report on standard output (CSV by default), for scripts and spreadsheets. `--from` is
 * for the reports over a range (GL detail, fee allocation); the others are as at `--to`.
 * `--client`: a client number, name or "number name" (as the pages take it), or an id.
 */
import { parseArgs } from 'node:util';
import type { Runtime } from '../main.ts';
import { repeatedOptions } from './args.ts';
import { createLedgerReports, REPORT_NAMES, REPORT_TAKES_CLIENT, REPORT_TAKES_FROM, ReportParamError, reportToCsv } from '../modules/ledger/index.ts';
import type { ReportName } from '../modules/ledger/index.ts';

export const REPORT_HELP = `  report NAME [--from D] [--to D] [--client C] [--currency C] [--format csv|json]
                              a ledger report on stdout (in the firm's currency unless --currency);
                              NAME: ${REPORT_NAMES.join(', ')};
                              --from for ${REPORT_NAMES.filter((n) => REPORT_TAKES_FROM[n]).join(' and ')} only (the others are as at --to)`;

export class ReportUsageError extends Error {}

type WithRuntime = <T>(fn: (rt: Runtime) => Promise<T>) => Promise<T>;

/** Runs the command; returns the exit code. Output goes to `write` (stdout by default). */
export async function reportCommand(args: string[], withRuntime: WithRuntime, write: (s: string) => void = (s) => { process.stdout.write(s); }): Promise<number> {
  let parsed;
  try {
    const options = { from: { type: 'string' }, to: { type: 'string' }, client: { type: 'string' }, currency: { type: 'string' }, format: { type: 'string' } } as const;
    parsed = parseArgs({ args, allowPositionals: true, strict: true, tokens: true, options });
    const twice = repeatedOptions(parsed.tokens, options);
    if (twice) throw new ReportUsageError(twice);
    // An option given empty (an unset variable in a scheduled script: `--client "$CLIENT"`) is
    // a mistake, never "no filter" (the whole firm's report) or "as at today".
    const empty = Object.entries(parsed.values).filter(([, x]) => typeof x === 'string' && x.trim() === '').map(([k]) => `--${k} must have a value (it was given empty; leave the option out instead)`);
    if (empty.length > 0) throw new ReportUsageError(empty.join('; '));
  } catch (e) {
    throw e instanceof ReportUsageError ? e : new ReportUsageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  const name = positionals[0];
  if (!name || positionals.length > 1 || !(REPORT_NAMES as readonly string[]).includes(name)) {
    throw new ReportUsageError(`report needs one NAME: ${REPORT_NAMES.join(', ')}`);
  }
  const format = values.format ?? 'csv';
  if (format !== 'csv' && format !== 'json') throw new ReportUsageError('--format must be csv or json');
  return withRuntime(async (rt) => {
    // Deliver anything pending so the ledger has every posted bill.
    await rt.relay.drain();
    const reports = createLedgerReports(rt.database.db, rt.clock);
    try {
      const asked = { ...(values.from ? { from: values.from } : {}), ...(values.to ? { to: values.to } : {}), ...(values.currency ? { currency: values.currency } : {}) };
      // --client as the pages take it: a number, a name or "number name", or an id. One not found is refused (exit 2),
      // never an empty report; with whatever else is wrong.
      // (A report that takes no client refuses it as such.)
      let clientId = values.client;
      if (values.client !== undefined && REPORT_TAKES_CLIENT[name as ReportName]) {
        const typed = values.client.length > 200 ? { client: null, error: 'must be at most 200 characters' } : await reports.clientTyped(values.client);
        if (!typed.client) throw new ReportParamError({ ...await reports.paramErrors(name as ReportName, asked), client: `${JSON.stringify(values.client)}: ${typed.error ?? 'no client with this number or name'}` });
        clientId = typed.client.id;
      }
      const r = await reports.run(name as ReportName, { ...asked, ...(clientId ? { clientId } : {}) });
      write(format === 'csv' ? reportToCsv(r) : JSON.stringify(r, null, 2) + '\n');
      return 0;
    } catch (e) {
      if (e instanceof ReportParamError) throw new ReportUsageError(Object.entries(e.fields).map(([k, v]) => `--${k} ${v}`).join('; '));
      throw e;
    }
  });
}
