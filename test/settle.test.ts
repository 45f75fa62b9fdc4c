/** settledWithin: a graceful shutdown's bounded wait. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { settledWithin } from '../src/shared/settle.ts';

test('settledWithin: true once every promise settles (resolved or rejected), false when the wait runs out first', async () => {
  assert.equal(await settledWithin([], 0), true, 'nothing to wait for');
  assert.equal(await settledWithin([Promise.resolve(1), new Promise((r) => setTimeout(r, 5))], 1_000), true);
  const failed = Promise.reject(new Error('a run failed'));
  assert.equal(await settledWithin([failed], 1_000), true, 'a failure is settled too');
  const started = Date.now();
  assert.equal(await settledWithin([new Promise(() => undefined)], 30), false, 'never settles: the wait ends');
  assert.ok(Date.now() - started < 1_000, 'at the wait, not later');
  await assert.rejects(settledWithin([], -1), /a wait of 0 ms or more/);
});
