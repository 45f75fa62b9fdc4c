/**
 * Audit of the firm's LEDES settings: two clerks saving the first settings at once get one
 * save and one 409 (someone saved first), never a server error from the primary key; one
 * audit row and one event.
 */
import assert from 'node:assert/strict';
import { createEbillingCommands } from '../../src/modules/ebilling/index.ts';
import { HttpError } from '../../src/shared/web/errors.ts';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { ctx, setup } from '../billing/support.ts';
import { settings } from './support.ts';

const count = async (db: TestDb, table: string, where: [string, string]) =>
  Number((await db.db.selectFrom(table).select((eb: any) => eb.fn.countAll().as('n')).where(where[0] as never, '=', where[1] as never).executeTakeFirstOrThrow() as { n: number | string }).n);

eachDialect('first settings saved by two clerks at once: one is saved, the other is a 409, one audit row and one event', async (db) => {
  const s = await setup(db);
  const E = createEbillingCommands({ db: db.db, clock: s.clock, relay: s.rt.relay });
  const results = await Promise.allSettled([
    E.saveSettings(ctx, settings({ lawFirmName: 'First LLP' }), 0),
    E.saveSettings(ctx, settings({ lawFirmName: 'Second LLP' }), 0),
  ]);
  const saved = results.filter((r): r is PromiseFulfilledResult<Awaited<ReturnType<typeof E.saveSettings>>> => r.status === 'fulfilled');
  const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  assert.equal(saved.length, 1, JSON.stringify(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'saved'))));
  assert.equal(refused.length, 1);
  assert.ok(refused[0]!.reason instanceof HttpError && refused[0]!.reason.status === 409, String(refused[0]!.reason));
  const stored = await E.loadSettings();
  assert.equal(stored.version, 1);
  assert.equal(stored.settings.lawFirmName, saved[0]!.value.settings.lawFirmName);
  assert.equal(await count(db, 'audit_log', ['action', 'ebilling.settings_changed']), 1);
  assert.equal(await count(db, 'outbox', ['type', 'ebilling.settings_changed']), 1);
  // The next save goes on from the version read.
  await E.saveSettings(ctx, settings({ lawFirmName: 'Third LLP' }), 1);
  assert.equal((await E.loadSettings()).version, 2);
});
