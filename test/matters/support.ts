/** Shared by the matters tests. */
import assert from 'node:assert/strict';
import { HttpError } from '../../src/shared/web/errors.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import type { TestApp } from '../support/app.ts';
import type { TestDb } from '../support/db.ts';

/** Matters commands over a test database: the app's clock when there is an app, else a fixed one; nothing kicks a relay. */
export function mattersCommands(db: TestDb, t?: TestApp) {
  return createMattersCommands({ db: db.db, clock: t?.clock ?? { now: () => new Date('2026-03-02T10:00:00Z') } as never, relay: { kick: () => undefined } });
}

/** The HttpError a command refused with (any status); fails the test when it was not refused. */
export async function refused(p: Promise<unknown>): Promise<HttpError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof HttpError) return err;
    throw err;
  }
  assert.fail('expected the command to be refused');
}
