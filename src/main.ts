/**
 * Wiring: the one place that opens adapters and hands them to the modules and the web
 * shell. Plain factory functions; no container.
 */
import { assert } from './shared/assert.ts';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type { Logger } from 'pino';
import { migrateToLatest, openDatabase } from './adapters/db/index.ts';
import { createOutputs, outputsConfigFromEnv } from './adapters/outputs.ts';
// `lexbill copy-database` (SQLite to PostgreSQL): the CLI reaches adapters only through this file.
export { copyDatabase, CopyRefusedError, maskUrl } from './adapters/db/copy.ts';
import { createBus } from './shared/bus.ts';
import type { Bus } from './shared/bus.ts';
import { firmTimeZone, systemClock } from './shared/clock.ts';
import type { Clock } from './shared/clock.ts';
import type { Database } from './shared/db.ts';
import type { Outputs } from './shared/ports.ts';
import { isUniqueViolation } from './shared/db.ts';
import type { EventMap } from './shared/events.ts';
import { newToken } from './shared/ids.ts';
import { createRelay } from './shared/outbox.ts';
import type { Relay } from './shared/outbox.ts';
import type { ModuleDeps, WebModule } from './shared/web/module.ts';
import { createApp, newApiRegistry } from './web/app.ts';
import type { AppConfig } from './web/app.ts';
import { createMattersModule } from './modules/matters/index.ts';
import { createBillingModule } from './modules/billing/index.ts';
import { createLedgerModule } from './modules/ledger/index.ts';
import { createTrustModule } from './modules/trust/index.ts';
import { createEbillingModule } from './modules/ebilling/index.ts';
import type { MattersEvents } from './modules/matters/events.ts';
import type { BillingEvents } from './modules/billing/events.ts';
import type { LedgerEvents } from './modules/ledger/events.ts';
import type { TrustEvents } from './modules/trust/events.ts';
import type { EbillingEvents } from './modules/ebilling/events.ts';

export const ROOT_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const DEFAULT_DATABASE_URL = `sqlite:${join(ROOT_DIR, 'data', 'lexbill.db')}`;

/** Every event in the system, by type name. */
export type AllEvents = MattersEvents & BillingEvents & LedgerEvents & TrustEvents & EbillingEvents & EventMap;

export interface RuntimeConfig extends AppConfig {
  databaseUrl: string;
  host: string;
  port: number;
  logLevel: string;
}

/** MAX_BODY_BYTES unset: 20 MiB. */
export const MAX_BODY_BYTES_DEFAULT = 20 * 1024 * 1024;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): RuntimeConfig {
  const port = Number(env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, got ${env.PORT}`);
  // Node takes an unknown TZ for UTC without a word: the firm's dates would silently be UTC's.
  if (env.TZ !== undefined && env.TZ !== '' && firmTimeZone() === undefined) {
    throw new Error(`TZ must be a time zone such as Australia/Sydney (the firm's: it decides what "today" is), got ${env.TZ}`);
  }
  // The largest request body taken (413 above it): an upload of a LEDES file is the largest a clerk sends.
  const maxBodyBytes = env.MAX_BODY_BYTES === undefined || env.MAX_BODY_BYTES === '' ? MAX_BODY_BYTES_DEFAULT : /^\d{1,10}$/.test(env.MAX_BODY_BYTES) ? Number(env.MAX_BODY_BYTES) : NaN;
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 64 * 1024 || maxBodyBytes > 1024 * 1024 * 1024) {
    throw new Error(`MAX_BODY_BYTES must be a whole number of bytes from 65536 (64 KiB) to 1073741824 (1 GiB), got ${env.MAX_BODY_BYTES}`);
  }
  return {
    databaseUrl: env.DATABASE_URL ?? DEFAULT_DATABASE_URL,
    host: env.HOST ?? '127.0.0.1',
    port,
    logLevel: env.LOG_LEVEL ?? 'info',
    secureCookies: env.COOKIE_SECURE === '1' || env.COOKIE_SECURE === 'true',
    trustProxy: env.TRUST_PROXY === '1' || env.TRUST_PROXY === 'true',
    maxBodyBytes,
  };
}

export interface Runtime {
  readonly database: Database;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly bus: Bus<AllEvents>;
  readonly relay: Relay;
  readonly app: ReturnType<typeof createApp>;
  readonly modules: readonly WebModule[];
  /** PDF, mail and print outputs (built from the environment unless passed in). */
  readonly outputs: Outputs;
  /** Stop the modules' background work (bill runs, production runs) at a safe point, waiting at most `timeoutMs` (a graceful shutdown: before close). */
  stopWork(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** The server secret, created once per database. */
async function ensureSecret(database: Database, clock: Clock): Promise<string> {
  const read = async () => (await database.db.selectFrom('app_setting').select('value').where('key', '=', 'secret').executeTakeFirst()) as { value: string } | undefined;
  const found = await read();
  if (found) return found.value;
  try {
    await database.db.insertInto('app_setting').values({ key: 'secret', value: newToken(32), updated_at: clock.now().toISOString() }).execute();
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
  }
  return (await read())!.value;
}

/** Build the whole application over an open, migrated database. */
export async function buildRuntime(database: Database, opts: { config?: Partial<RuntimeConfig>; clock?: Clock; logger?: Logger; outputs?: Outputs } = {}): Promise<Runtime> {
  const config = { ...loadConfig(), ...opts.config };
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? pino({ level: config.logLevel });
  const bus = createBus<AllEvents>();
  const relay = createRelay({ db: database.db, bus, clock, logger: logger.child({ component: 'relay' }) });
  const apiRegistry = newApiRegistry();
  // Lazy: nothing launches (Chromium) or connects (SMTP) until first used.
  const outputs = opts.outputs ?? createOutputs(outputsConfigFromEnv(process.env, ROOT_DIR), { logger: logger.child({ component: 'pdf' }) });
  const deps: ModuleDeps = { db: database.db, dialect: database.dialect, clock, logger, bus, relay, apiRegistry, outputs };
  const modules = [
    createMattersModule(deps),
    createBillingModule(deps),
    createLedgerModule(deps),
    createTrustModule(deps),
    createEbillingModule(deps),
  ];
  const secret = await ensureSecret(database, clock);
  const app = createApp({
    db: database.db, dialect: database.dialect, clock, logger, secret, config, modules, apiRegistry, rootDir: ROOT_DIR,
    async outboxHealth() {
      const pending = await database.db.selectFrom('outbox').select((eb) => eb.fn.countAll<number>().as('n')).where('delivered_at', 'is', null).executeTakeFirstOrThrow();
      // A delivery is failing until its handler has handled the event (the failure row stays after a retry succeeds).
      const failing = await database.db.selectFrom('outbox_delivery as d').innerJoin('outbox as o', 'o.id', 'd.event_id')
        .leftJoin('inbox as i', (j) => j.onRef('i.event_id', '=', 'd.event_id').onRef('i.handler', '=', 'd.handler'))
        .select((eb) => eb.fn.countAll<number>().as('n')).where('o.delivered_at', 'is', null).where('i.event_id', 'is', null).executeTakeFirstOrThrow();
      return { pending: Number(pending.n), failing: Number(failing.n) };
    },
  });
  return {
    database, clock, logger, bus, relay, app, modules, outputs,
    async stopWork(timeoutMs: number) {
      assert(Number.isSafeInteger(timeoutMs) && timeoutMs >= 0 && timeoutMs <= 10 * 60_000, 'stopWork: a wait of 0 to 10 minutes');
      await Promise.all(modules.map((m) => m.stopWork?.(timeoutMs)));
    },
    async close() {
      await relay.stop();
      await outputs.close();
      await database.close();
    },
  };
}

/** Apply pending migrations to the configured database; returns the names applied. */
export async function migrateDatabase(databaseUrl: string): Promise<string[]> {
  const d = openDatabase(databaseUrl);
  try { return await migrateToLatest(d.db); } finally { await d.close(); }
}

/** Open the configured database, migrate it, and build the runtime. */
export async function openRuntime(config: RuntimeConfig = loadConfig(), opts: { clock?: Clock; logger?: Logger } = {}): Promise<Runtime> {
  const database = openDatabase(config.databaseUrl);
  try {
    await migrateToLatest(database.db);
    return await buildRuntime(database, { config, ...opts });
  } catch (err) {
    await database.close();
    throw err;
  }
}
