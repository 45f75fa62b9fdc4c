/** /healthz counts as failing only deliveries still failing, not handlers that recovered. */
import assert from 'node:assert/strict';
import { appendEvent } from '../src/shared/outbox.ts';
import { systemContext } from '../src/shared/events.ts';
import type { EventMap } from '../src/shared/events.ts';
import { eachDialect } from './support/db.ts';
import { withApp } from './support/app.ts';

eachDialect('/healthz stops counting a handler as failing once it has handled the event, though another handler still waits on it', async (db) => {
  await withApp(db, async ({ browser, runtime, clock }) => {
    const b = browser();
    let flakyDown = true;
    runtime.bus.subscribe('healthtest.shared', 'healthtest.flaky', async () => { if (flakyDown) throw new Error('flaky down'); });
    runtime.bus.subscribe('healthtest.shared', 'healthtest.down', async () => { throw new Error('down for good'); });
    await db.db.transaction().execute(async (trx) => {
      await appendEvent<EventMap, 'healthtest.shared'>(trx, clock, systemContext('healthz-test'), 'healthtest.shared', { n: 1 });
    });
    await runtime.relay.runOnce();
    assert.deepEqual((await b.get('/healthz')).json().outbox, { pending: 1, failing: 2 });
    flakyDown = false;
    clock.advanceMs(60_000);
    await runtime.relay.runOnce();
    const inbox = await db.db.selectFrom('inbox').select('handler').where('handler', 'like', 'healthtest.%').execute();
    assert.deepEqual(inbox.map((r) => r.handler), ['healthtest.flaky'], 'the flaky handler has handled it');
    assert.deepEqual((await b.get('/healthz')).json().outbox, { pending: 1, failing: 1 }, 'only the handler still down is failing');
  });
});
