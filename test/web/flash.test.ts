/**
 * The no-JavaScript flash store, on both databases: a message kept under ?done=KEY shows only to
 * the user who acted, only on the page (scope) it was kept for, only for a while; it is kept in
 * the database, so another server process (another store, sharing nothing but the database)
 * shows it; expired rows are cleared as new ones are kept; a value past the size bound is cut to fit;
 * one store never reads another's keys.
 */
import assert from 'node:assert/strict';
import { Hono } from 'hono';
import { eachDialect } from '../support/db.ts';
import { manualClock } from '../../src/shared/clock.ts';
import type { Clock } from '../../src/shared/clock.ts';
import type { Executor } from '../../src/shared/db.ts';
import { createFlashes, FLASH_MAX_JSON_CHARS, FLASH_TTL_MS } from '../../src/shared/web/flash.ts';
import type { AppEnv } from '../../src/shared/web/types.ts';

/** One server process's pages: its own flash store over the shared database. */
function app(db: Executor, clock: Clock, name = 'test.page') {
  const flashes = createFlashes<string>(db, clock, name);
  const lists = createFlashes<string[]>(db, clock, 'test.list');
  const a = new Hono<AppEnv>();
  a.use('*', async (c, next) => { c.set('user', { id: c.req.header('x-user') ?? '' } as never); await next(); });
  a.post('/keep/:scope', async (c) => c.text(await flashes.keep(c, `said to ${c.req.header('x-user')} on ${c.req.param('scope')}`, c.req.param('scope'))));
  a.post('/big', async (c) => c.text(await flashes.keep(c, 'x'.repeat(FLASH_MAX_JSON_CHARS), 'p')));
  a.post('/many', async (c) => c.text(await lists.keep(c, Array.from({ length: 5_000 }, (_, i) => `Left alone: bill ${i + 1} owes $20.00, and its client holds credit`))));
  a.get('/list', async (c) => c.json(await lists.of(c)));
  a.get('/page/:scope', async (c) => c.text((await flashes.of(c, c.req.param('scope'))) ?? '(nothing)'));
  return a;
}
const keep = async (a: Hono<AppEnv>, user: string, scope: string) => (await a.request(`/keep/${scope}`, { method: 'POST', headers: { 'x-user': user } })).text();
const read = async (a: Hono<AppEnv>, user: string, scope: string, key: string) => (await a.request(`/page/${scope}?done=${encodeURIComponent(key)}`, { headers: { 'x-user': user } })).text();
const rows = async (db: Executor) => Number(((await db.selectFrom('web_flash').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()) as { n: unknown }).n);

eachDialect('a flash shows to its user on its page only, on any server process: not another user, not another page, not an unknown key', async (d) => {
  const clock = manualClock('2026-12-07T10:00:00Z');
  const one = app(d.db, clock);
  const other = app(d.db, clock);
  const key = await keep(one, 'u1', 'matter-a');
  assert.match(key, /^[\w-]{16}$/, 'a random key');
  const cases: [string, Hono<AppEnv>, string, string, string][] = [
    ['its user, its page', one, 'u1', 'matter-a', 'said to u1 on matter-a'],
    ['again (a reload)', one, 'u1', 'matter-a', 'said to u1 on matter-a'],
    ['another server process (review 60 F8)', other, 'u1', 'matter-a', 'said to u1 on matter-a'],
    ['another user', one, 'u2', 'matter-a', '(nothing)'],
    ['another page', other, 'u1', 'matter-b', '(nothing)'],
  ];
  for (const [name, a, user, scope, expected] of cases) assert.equal(await read(a, user, scope, key), expected, name);
  for (const bad of ['not-a-key', '', 'x'.repeat(16), `${key}x`, "' or 1=1 --aaaaa"]) assert.equal(await read(one, 'u1', 'matter-a', bad), '(nothing)', `key ${bad}`);
});

eachDialect('a flash expires; keeping one clears those past their time; a value past the bound is cut to fit; a store reads only its own keys', async (d) => {
  const clock = manualClock('2026-12-07T10:00:00Z');
  const a = app(d.db, clock);
  const first = await keep(a, 'u1', 'p');
  clock.advanceMs(FLASH_TTL_MS);
  assert.equal(await read(a, 'u1', 'p', first), 'said to u1 on p', 'at its time still');
  clock.advanceMs(1);
  assert.equal(await read(a, 'u1', 'p', first), '(nothing)', 'past its time');
  assert.equal(await rows(d.db), 1, 'read, not cleared');
  const second = await keep(a, 'u2', 'p');
  assert.equal(await rows(d.db), 1, 'the expired one cleared as another is kept');
  assert.equal(await read(a, 'u2', 'p', second), 'said to u2 on p');
  // Too long to keep whole (the action it reports has committed: never an error, review 63 F2): cut to fit.
  const big = await a.request('/big', { method: 'POST', headers: { 'x-user': 'u1' } });
  assert.equal(big.status, 200);
  const bigKey = await big.text();
  const cut = await read(a, 'u1', 'p', bigKey);
  assert.ok(cut.endsWith('…') && cut.length <= FLASH_MAX_JSON_CHARS, `${cut.length}`);
  const many = await (await a.request('/many', { method: 'POST', headers: { 'x-user': 'u1' } })).text();
  const list = await (await a.request(`/list?done=${many}`, { headers: { 'x-user': 'u1' } })).json() as string[];
  assert.ok(list.length > 10 && list.length < 5_000 && JSON.stringify(list).length <= FLASH_MAX_JSON_CHARS);
  assert.deepEqual([list[0], list.at(-1)], ['Left alone: bill 1 owes $20.00, and its client holds credit', `… and ${5_000 - (list.length - 1)} more`]);
  // Another store's key (another kind of message, another shape) shows nothing here (review 63 F3).
  assert.equal(await read(app(d.db, clock, 'test.other'), 'u1', 'p', bigKey), '(nothing)');
  assert.equal(await (await a.request(`/list?done=${bigKey}`, { headers: { 'x-user': 'u1' } })).text(), 'null');
});
