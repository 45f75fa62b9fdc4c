import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { manualClock } from '../src/shared/clock.ts';
import { isId, newId, newIds, newToken } from '../src/shared/ids.ts';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The 48-bit millisecond timestamp at the front of a UUIDv7. */
function timestampOf(id: string): number {
  return Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16);
}

test('newId returns a lowercase UUIDv7 (version nibble 7, variant 10xx)', () => {
  for (let i = 0; i < 200; i++) {
    const id = newId();
    assert.match(id, UUID_V7);
    assert.equal(id.length, 36);
    assert.equal(id[14], '7', `version nibble of ${id}`);
    assert.ok('89ab'.includes(id[19]!), `variant nibble of ${id}`);
  }
});

test('newId embeds the clock time in milliseconds', () => {
  const clock = manualClock('2026-03-14T15:09:26.535Z');
  const id = newId(clock);
  assert.equal(timestampOf(id), Date.parse('2026-03-14T15:09:26.535Z'));
  assert.ok(id.startsWith('019cece5-2687-7'), id);
  // the default clock is the system clock
  const before = Date.now();
  const sys = newId();
  const after = Date.now();
  const t = timestampOf(sys);
  assert.ok(t >= before && t <= after, `${t} not in [${before}, ${after}]`);
});

test('property: newId encodes any clock time in the first 48 bits and stays a valid id', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 48 - 1 }), (ms) => {
      const id = newId(manualClock(new Date(ms)));
      assert.match(id, UUID_V7);
      assert.ok(isId(id));
      assert.equal(timestampOf(id), ms);
    }),
  );
});

test('isId accepts ids from newId', () => {
  const clock = manualClock('2026-01-01T00:00:00Z');
  for (let i = 0; i < 100; i++) assert.equal(isId(newId(clock)), true);
  assert.equal(isId(newId()), true);
});

test('isId rejects junk', () => {
  const id = newId();
  const junk: unknown[] = [
    '',
    'abc',
    'not-an-id',
    id.replaceAll('-', ''),
    id.slice(0, 35),
    id + '0',
    `{${id}}`,
    ` ${id}`,
    `${id} `,
    `${id}\n`,
    'g' + id.slice(1),
    id.slice(0, 8) + '_' + id.slice(9),
    '0000000-00000-0000-0000-000000000000',
    123,
    null,
    undefined,
    {},
    [id],
    new String(id),
  ];
  for (const value of junk) {
    assert.equal(isId(value), false, `isId(${JSON.stringify(value)})`);
  }
});

test('ids from a clock advancing by 1 ms sort in creation order', () => {
  // start just before a byte boundary so the timestamp carries across bytes
  const clock = manualClock(new Date(0x01_9b_00_00_ff_00));
  const ids: string[] = [];
  for (let i = 0; i < 2000; i++) {
    ids.push(newId(clock));
    clock.advanceMs(1);
  }
  const sorted = [...ids].sort();
  assert.deepStrictEqual(sorted, ids);
  for (let i = 1; i < ids.length; i++) {
    assert.equal(timestampOf(ids[i]!) - timestampOf(ids[i - 1]!), 1);
  }
});

test('ids sort by time even when created out of time order', () => {
  const clock = manualClock('2026-01-01T00:00:00Z');
  const later = (() => { clock.advanceMs(5000); return newId(clock); })();
  clock.set('2025-12-31T23:59:59.999Z');
  const earlier = newId(clock);
  assert.ok(earlier < later, `${earlier} should sort before ${later}`);
});

test('10,000 ids are unique, even within a single millisecond', () => {
  const fixed = manualClock('2026-01-01T00:00:00Z');
  const sameMs = new Set<string>();
  for (let i = 0; i < 10_000; i++) sameMs.add(newId(fixed));
  assert.equal(sameMs.size, 10_000);

  const system = new Set<string>();
  for (let i = 0; i < 10_000; i++) system.add(newId());
  assert.equal(system.size, 10_000);
});

test('newToken is base64url of the expected length', () => {
  const token = newToken();
  assert.match(token, /^[A-Za-z0-9_-]+$/);
  assert.equal(token.length, 43); // 32 bytes, unpadded
  assert.equal(Buffer.from(token, 'base64url').length, 32);
  assert.equal(newToken(16).length, 22);
  assert.equal(newToken(1).length, 2);
  assert.equal(newToken(3).length, 4);
});

test('property: newToken(n) is unpadded base64url of n random bytes', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 256 }), (n) => {
      const token = newToken(n);
      assert.match(token, /^[A-Za-z0-9_-]+$/);
      assert.equal(token.length, Math.ceil((n * 4) / 3));
      const bytes = Buffer.from(token, 'base64url');
      assert.equal(bytes.length, n);
      assert.equal(bytes.toString('base64url'), token);
    }),
  );
});

test('newToken values are unique', () => {
  const tokens = new Set<string>();
  for (let i = 0; i < 10_000; i++) tokens.add(newToken());
  assert.equal(tokens.size, 10_000);
});

test('newIds: n distinct UUIDv7 ids in newId\'s format, carrying the clock\'s millisecond, across the 4,096 draw boundary', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 9_000 }), fc.integer({ min: 0, max: 2 ** 47 }), (n, ms) => {
    const clock = manualClock(new Date(ms));
    const ids = newIds(clock, n);
    assert.equal(ids.length, n);
    assert.equal(new Set(ids).size, n, 'distinct');
    const prefix = ms.toString(16).padStart(12, '0');
    for (const id of ids) {
      assert.match(id, UUID_V7);
      assert.ok(isId(id));
      assert.equal(id.replace(/-/g, '').slice(0, 12), prefix, 'the first 48 bits are the millisecond');
    }
    const single = newId(clock);
    assert.equal(single.replace(/-/g, '').slice(0, 12), prefix, 'newId agrees');
  }), { numRuns: 40 });
});
