import type { Hono } from 'hono';
import type { AppEnv } from './types.ts';

/** What a module hands the shell: its pages (mounted at `mount`) and its API sub-app (at /api/v1). */
export interface WebModule {
  readonly name: string;
  readonly mount: string;
  readonly pages: Hono<AppEnv>;
  readonly api?: Hono<AppEnv>;
  /**
   * The server is shutting down: stop the module's background work (runs in progress) at its
   * next safe point, recording what it finished, within `timeoutMs`; resolves then, or when the
   * time is up (the database closes after it either way).
   */
  stopWork?(timeoutMs: number): Promise<void>;
}

import type { Logger } from 'pino';
import type { Bus } from '../bus.ts';
import type { Clock } from '../clock.ts';
import type { Db, Dialect } from '../db.ts';
import type { Relay } from '../outbox.ts';
import type { Outputs } from '../ports.ts';
import type { ApiRegistry } from './api.ts';

/** What main.ts hands every module factory. */
export interface ModuleDeps {
  readonly db: Db;
  readonly dialect: Dialect;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly bus: Bus<any>;
  /** Kick after a command commits so its events are delivered promptly. */
  readonly relay: Relay;
  readonly apiRegistry: ApiRegistry;
  /** PDF rendering, mail and print (lazy: nothing starts until first used). */
  readonly outputs: Outputs;
}
