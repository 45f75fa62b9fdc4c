/** Shared by the matters tests. */
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import type { TestApp } from '../support/app.ts';
import type { TestDb } from '../support/db.ts';

/** Matters commands over a test database: the app's clock when there is an app, else a fixed one; nothing kicks a relay. */
export function mattersCommands(db: TestDb, t?: TestApp) {
  return createMattersCommands({ db: db.db, clock: t?.clock ?? { now: () => new Date('2026-03-02T10:00:00Z') } as never, relay: { kick: () => undefined } });
}
