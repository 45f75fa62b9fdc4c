/**
 * The lexbill command line. `lexbill --help` lists the commands.
 */
import { parseArgs } from 'node:util';
import { serve } from '@hono/node-server';
import pino from 'pino';
import { copyDatabase, CopyRefusedError, DEFAULT_DATABASE_URL, loadConfig, maskUrl, migrateDatabase, openRuntime } from '../main.ts';
import type { Runtime } from '../main.ts';
import { systemContext } from '../shared/events.ts';
import { ROLES } from '../shared/web/types.ts';
import type { Role } from '../shared/web/types.ts';
import { HttpError } from '../shared/web/errors.ts';
import { createApiToken, createUser, listUsers, resetPassword, revokeApiTokens } from '../web/auth/service.ts';
import { DEMO_ADMIN_EMAIL, DEMO_LIMITS, DEMO_PASSWORD, seedDemo } from './demo.ts';
import { isParseArgsError, repeatedOptions } from './args.ts';
import { LEDES_HELP, ledesCommand, LedesUsageError } from './ledes.ts';
import { BILL_RUN_HELP, billRun, BillRunUsageError } from './bill-run.ts';
import { REPORT_HELP, reportCommand, ReportUsageError } from './report.ts';
import { firmTimeZone } from '../shared/clock.ts';
import { keepHeapSmall } from '../shared/heap.ts';

// The server, a bill run and an import stay within the memory a small firm's server has (shared/heap.ts).
keepHeapSmall();

const HELP = `lexbill: legal billing

Usage: lexbill <command> [options]

  start                       migrate, seed the demo firm into an empty database, serve
  serve                       serve the web app (PORT, HOST, DATABASE_URL)
  migrate                     apply pending database migrations
  copy-database --to postgres://... [--from sqlite:PATH]
                              copy the whole firm from SQLite (default: DATABASE_URL if
                              sqlite:, else the default file) into an empty PostgreSQL
                              database, all or nothing; stop the server first
  seed-demo [--matters N] [--entries-per-matter M] [--seed S]
                              add the deterministic demo firm
${BILL_RUN_HELP}
  user add --email E --role R [--name NAME]
                              create a staff account; password read from stdin
                              (typed at a terminal, it is not shown)
  user reset-password --email E
                              set a new password (read from stdin); ends the user's
                              sessions and revokes their API tokens
  user token --email E [--label L]
                              print a new API token for scripts (Authorization: Bearer ...)
  user revoke-tokens --email E
                              revoke every API token of the user
${LEDES_HELP}
${REPORT_HELP}

Roles: ${ROLES.join(', ')}
Environment: DATABASE_URL (default sqlite:<install>/data/lexbill.db, or postgres://...),
PORT (3000), HOST (127.0.0.1), LOG_LEVEL (info; on stderr, except under serve and start),
COOKIE_SECURE, TRUST_PROXY. An option given twice is refused. Exit status: 0 done, 1 failed,
2 bad usage.
`;

class UsageError extends Error {}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return readHidden();
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** A password typed at a terminal: one line, not shown as it is typed (Backspace mends it, Ctrl-C stops). */
function readHidden(): Promise<string> {
  const stdin = process.stdin;
  // Echo off before the prompt: whatever is typed once it shows is not shown.
  stdin.setRawMode(true);
  process.stderr.write('Password (not shown; then Enter): ');
  stdin.setEncoding('utf8');
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = '';
    const done = () => { stdin.off('data', onData); stdin.setRawMode(false); stdin.pause(); process.stderr.write('\n'); };
    const onData = (text: string) => {
      for (const ch of text) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') { done(); resolve(value); return; }
        if (ch === '\u0003') { done(); reject(new UsageError('interrupted: no password given')); return; }
        if (ch === '\u007f' || ch === '\b') { value = [...value].slice(0, -1).join(''); continue; }
        value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

function cliContext(label: string) {
  return systemContext(`cli-${Date.now()}`, `cli:${label}`);
}

/**
 * The runtime of a one-shot command. Its log goes to standard error: standard output is the
 * command's own (a report's CSV, bill-run's --json document), read by scripts and cron jobs.
 */
async function withRuntime<T>(fn: (rt: Runtime) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const rt = await openRuntime(config, { logger: pino({ level: config.logLevel }, pino.destination({ fd: 2, sync: true })) });
  try { return await fn(rt); } finally { await rt.close(); }
}

/**
 * How long a graceful shutdown waits for runs in progress: a bill being produced finishes its
 * email (the SMTP greeting and connection timeouts are 30 s each by default) and is recorded.
 * Under systemd's default stop timeout (90 s).
 */
const SHUTDOWN_WAIT_MS = 60_000;

async function serveApp(rt: Runtime, opts: { announceDemo: boolean }): Promise<void> {
  const config = loadConfig();
  rt.relay.start();
  const server = serve({ fetch: rt.app.fetch, port: config.port, hostname: config.host }, (info) => {
    const url = `http://${config.host}:${info.port}`;
    console.log(`Lexbill is serving on ${url} (${rt.database.dialect}); dates are the firm's in time zone ${firmTimeZone()} (set TZ to change it)`);
    if (opts.announceDemo) console.log(`Sign in as ${DEMO_ADMIN_EMAIL} with password ${DEMO_PASSWORD} (demo firm)`);
  });
  await new Promise<void>((resolve) => {
    let signalled = 0;
    const stop = (signal: NodeJS.Signals) => {
      // A second signal: stop at once (runs in progress are taken up by Resume, as after a crash).
      if (++signalled > 1) { console.log('Stopping at once'); process.exit(signal === 'SIGTERM' ? 143 : 130); }
      console.log(`Shutting down: runs in progress stop at their next bill or chunk (waiting at most ${SHUTDOWN_WAIT_MS / 1000} s; ${signal} again to stop at once)`);
      // Runs stop and record what they finished while the server stops taking requests; the database closes after both.
      void Promise.all([
        new Promise<void>((done) => server.close(() => done())),
        rt.stopWork(SHUTDOWN_WAIT_MS).catch((err: unknown) => rt.logger.error({ err }, 'stopping runs failed')),
      ]).then(() => resolve());
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await rt.close();
}

/** `copy-database --to postgres://... [--from sqlite:PATH]`: SQLite to an empty PostgreSQL database. */
async function copyDatabaseCommand(args: string[]): Promise<number> {
  let values: { to?: string; from?: string };
  try {
    const options = { to: { type: 'string' }, from: { type: 'string' } } as const;
    const parsed = parseArgs({ args, options, strict: true, allowPositionals: false, tokens: true });
    const twice = repeatedOptions(parsed.tokens, options);
    if (twice) throw new UsageError(twice);
    values = parsed.values;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError((e as Error).message);
  }
  if (!values.to) throw new UsageError('copy-database needs --to postgres://user:pass@host/db (an empty database)');
  if (!/^postgres(ql)?:\/\//.test(values.to)) throw new UsageError(`--to must be a postgres:// URL (got "${maskUrl(values.to)}")`);
  const configured = loadConfig().databaseUrl;
  const from = values.from ?? (configured.startsWith('sqlite:') ? configured : DEFAULT_DATABASE_URL);
  if (!from.startsWith('sqlite:')) throw new UsageError(`--from must be a sqlite: URL (got "${maskUrl(from)}")`);
  console.log(`Copying ${from} to ${maskUrl(values.to)}`);
  try {
    const r = await copyDatabase({ from, to: values.to, log: (line) => console.log(line) });
    console.log(`Copied ${r.rows} row(s) in ${r.tables.length} table(s), verified, in one transaction.`);
    console.log(`Now set DATABASE_URL=${maskUrl(values.to)} and run lexbill serve.`);
    return 0;
  } catch (e) {
    if (e instanceof CopyRefusedError) { console.error(`lexbill: copy refused, no data copied: ${e.message}`); return 1; }
    throw e;
  }
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  // Help asked for anywhere (`lexbill report trial-balance --help`): the help, exit 0, nothing opened.
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h' || rest.includes('--help') || rest.includes('-h')) { console.log(HELP); return 0; }
  if (cmd === 'bill-run' && !rest.includes('--help') && !rest.includes('-h')) {
    try { return await withRuntime((rt) => billRun(rt, rest)); } catch (e) { throw e instanceof BillRunUsageError ? new UsageError(e.message) : e; }
  }
  if (cmd === 'ledes' && !rest.includes('--help') && !rest.includes('-h')) {
    try { return await ledesCommand(rest, withRuntime); } catch (e) { throw e instanceof LedesUsageError || isParseArgsError(e) ? new UsageError((e as Error).message) : e; }
  }
  if (cmd === 'copy-database' && !rest.includes('--help') && !rest.includes('-h')) return copyDatabaseCommand(rest);
  if (cmd === 'report' && !rest.includes('--help') && !rest.includes('-h')) {
    try { return await reportCommand(rest, withRuntime); } catch (e) { throw e instanceof ReportUsageError ? new UsageError(e.message) : e; }
  }
  const sub = cmd === 'user' ? rest.shift() : undefined;
  const options = {
    email: { type: 'string' }, role: { type: 'string' }, name: { type: 'string' }, label: { type: 'string' },
    matters: { type: 'string' }, 'entries-per-matter': { type: 'string' }, seed: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  } as const;
  const parsed = parseArgs({ args: rest, options, strict: true, tokens: true });
  const twice = repeatedOptions(parsed.tokens, options);
  if (twice) throw new UsageError(twice);
  const { values } = parsed;
  const int = (v: string | undefined, name: string, dflt: number, max = Number.MAX_SAFE_INTEGER): number => {
    if (v === undefined) return dflt;
    if (!/^\d+$/.test(v) || Number(v) > max) throw new UsageError(`--${name} must be a whole number${max < Number.MAX_SAFE_INTEGER ? ` from 0 to ${max}` : ''}`);
    return Number(v);
  };
  if (!cmd || values.help || cmd === 'help' || cmd === '--help') { console.log(HELP); return 0; }
  switch (cmd) {
    case 'migrate': {
      const applied = await migrateDatabase(loadConfig().databaseUrl);
      console.log(applied.length ? `Applied ${applied.length} migration(s): ${applied.join(', ')}` : 'Database is up to date');
      return 0;
    }
    case 'serve': {
      const rt = await openRuntime();
      await serveApp(rt, { announceDemo: false });
      return 0;
    }
    case 'start': {
      const rt = await openRuntime();
      const users = await listUsers({ db: rt.database.db, clock: rt.clock });
      let demo = users.some((u) => u.email === DEMO_ADMIN_EMAIL);
      if (users.length === 0) {
        console.log('Empty database: seeding the demo firm');
        await seedDemo(rt, { matters: 40, entriesPerMatter: 25, seed: 1 });
        demo = true;
      }
      await serveApp(rt, { announceDemo: demo });
      return 0;
    }
    case 'seed-demo': {
      const opts = { matters: int(values.matters, 'matters', 40, DEMO_LIMITS.matters), entriesPerMatter: int(values['entries-per-matter'], 'entries-per-matter', 25, DEMO_LIMITS.entriesPerMatter), seed: int(values.seed, 'seed', 1) };
      const r = await withRuntime((rt) => seedDemo(rt, opts));
      console.log(r.firmAlreadySeeded
        ? `Demo firm already present: ${r.usersCreated} staff account(s) added, no matters added.`
        : `Demo firm seeded (seed ${opts.seed}): ${r.usersCreated} staff accounts, ${r.timekeepers} timekeepers, ${r.clients} clients, ${r.matters} matters, ${r.timeEntries} time entries, ${r.disbursements} disbursements.`);
      console.log(`Sign in as ${DEMO_ADMIN_EMAIL} / ${DEMO_PASSWORD}`);
      return 0;
    }
    case 'user': {
      if (!values.email) throw new UsageError('--email is required');
      const email = values.email;
      if (sub === 'add') {
        if (!values.role || !(ROLES as readonly string[]).includes(values.role)) throw new UsageError(`--role must be one of: ${ROLES.join(', ')}`);
        const password = await readStdin();
        const u = await withRuntime((rt) => createUser({ db: rt.database.db, clock: rt.clock }, cliContext('user-add'), {
          email, role: values.role as Role, name: values.name ?? email.split('@')[0]!, password,
        }));
        console.log(`Created ${u.role} account ${u.email} (${u.id})`);
        return 0;
      }
      if (sub === 'reset-password') {
        const password = await readStdin();
        await withRuntime((rt) => resetPassword({ db: rt.database.db, clock: rt.clock }, cliContext('reset-password'), email, password));
        console.log(`Password changed for ${email}; their sessions were ended and their API tokens revoked`);
        return 0;
      }
      if (sub === 'revoke-tokens') {
        const r = await withRuntime((rt) => revokeApiTokens({ db: rt.database.db, clock: rt.clock }, cliContext('revoke-tokens'), { email }));
        console.log(`Revoked ${r.revoked} API token(s) for ${r.user.email}`);
        return 0;
      }
      if (sub === 'token') {
        const t = await withRuntime((rt) => createApiToken({ db: rt.database.db, clock: rt.clock }, cliContext('token'), email, values.label ?? 'cli'));
        console.log(t.token);
        return 0;
      }
      throw new UsageError(`unknown user command "${sub ?? ''}" (add, reset-password, token, revoke-tokens)`);
    }
    default:
      throw new UsageError(`unknown command "${cmd}"`);
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: unknown) => {
  // Every refusal of the arguments (an unknown option, a missing value, a stray argument) is usage: exit 2.
  if (err instanceof UsageError || isParseArgsError(err)) {
    console.error(`lexbill: ${(err as Error).message}\nRun "lexbill --help" for usage.`);
    process.exitCode = 2;
  } else if (err instanceof HttpError) {
    const fields = Object.entries(err.fields).map(([k, v]) => `${k} ${v}`).join('; ');
    console.error(`lexbill: ${fields || err.message}`);
    process.exitCode = 1;
  } else {
    console.error(`lexbill: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
});
