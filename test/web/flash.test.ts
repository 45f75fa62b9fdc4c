/**
 * The no-JavaScript flash store: a message kept under ?done=KEY shows only to the user who acted,
 * only on the page (scope) it was kept for, only for a while, and the store stays bounded.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Hono } from 'hono';
import { createFlashes, FLASH_TTL_MS, FLASHES_KEPT } from '../../src/shared/web/flash.ts';
import type { AppEnv } from '../../src/shared/web/types.ts';

function app() {
  const flashes = createFlashes<string>();
  const a = new Hono<AppEnv>();
  a.use('*', async (c, next) => { c.set('user', { id: c.req.header('x-user') ?? '' } as never); await next(); });
  a.post('/keep/:scope', async (c) => c.text(flashes.keep(c, `said to ${c.req.header('x-user')} on ${c.req.param('scope')}`, c.req.param('scope'))));
  a.get('/page/:scope', (c) => c.text(flashes.of(c, c.req.param('scope')) ?? '(nothing)'));
  return a;
}
const keep = async (a: Hono<AppEnv>, user: string, scope: string) => (await a.request(`/keep/${scope}`, { method: 'POST', headers: { 'x-user': user } })).text();
const read = async (a: Hono<AppEnv>, user: string, scope: string, key: string) => (await a.request(`/page/${scope}?done=${encodeURIComponent(key)}`, { headers: { 'x-user': user } })).text();

test('a flash shows to its user on its page only: not another user, not another page, not an unknown key', async () => {
  const a = app();
  const key = await keep(a, 'u1', 'matter-a');
  assert.match(key, /^[\w-]{16}$/, 'a random key');
  const cases: [string, string, string, string][] = [
    ['its user, its page', 'u1', 'matter-a', 'said to u1 on matter-a'],
    ['again (a reload)', 'u1', 'matter-a', 'said to u1 on matter-a'],
    ['another user', 'u2', 'matter-a', '(nothing)'],
    ['another page', 'u1', 'matter-b', '(nothing)'],
  ];
  for (const [name, user, scope, expected] of cases) assert.equal(await read(a, user, scope, key), expected, name);
  assert.equal(await read(a, 'u1', 'matter-a', 'not-a-key'), '(nothing)');
  assert.equal(await read(a, 'u1', 'matter-a', ''), '(nothing)');
});

test('a flash expires, and the store keeps at most its bound (the oldest dropped first)', async (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const a = app();
  const first = await keep(a, 'u1', 'p');
  t.mock.timers.tick(FLASH_TTL_MS + 1);
  assert.equal(await read(a, 'u1', 'p', first), '(nothing)', 'past its time');
  const keys: string[] = [];
  for (let i = 0; i < FLASHES_KEPT + 5; i++) keys.push(await keep(a, 'u1', 'p'));
  assert.equal(await read(a, 'u1', 'p', keys[0]!), '(nothing)', 'the oldest dropped');
  assert.equal(await read(a, 'u1', 'p', keys[4]!), '(nothing)');
  assert.equal(await read(a, 'u1', 'p', keys.at(-1)!), 'said to u1 on p', 'the newest kept');
  assert.equal(await read(a, 'u1', 'p', keys[5]!), 'said to u1 on p', 'exactly the bound kept');
});
