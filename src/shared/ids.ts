import { randomBytes } from 'node:crypto';
import { assert } from './assert.ts';
import type { Clock } from './clock.ts';
import { systemClock } from './clock.ts';

/**
 * Time-ordered UUIDv7 text ids. Sorting ids sorts by creation time (to the millisecond),
 * which keeps indexes compact and lists stable. Ids double as idempotency keys.
 */
export function newId(clock: Clock = systemClock): string {
  const ms = BigInt(clock.now().getTime());
  const b = randomBytes(16);
  for (let i = 0; i < 6; i++) b[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export function isId(value: unknown): value is string {
  return typeof value === 'string' && UUID_RE.test(value);
}

/** A random secret token, URL-safe. */
export function newToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/**
 * `n` ids as newId makes them (time-ordered UUIDv7 text: the clock's millisecond, version
 * and variant bits, the rest random), from one clock reading and one random draw per 4,096
 * ids instead of one of each per id: for the bulk writers (outbox.ts appendEvents, audit.ts auditMany).
 */
export function newIds(clock: Clock, n: number): string[] {
  const out: string[] = [];
  const ms = clock.now().getTime();
  assert(Number.isSafeInteger(ms) && ms >= 0 && ms < 2 ** 48, 'clock time out of range for an id');
  for (let done = 0; done < n; done += 4_096) {
    const k = Math.min(4_096, n - done);
    const b = randomBytes(16 * k);
    for (let j = 0; j < k; j++) {
      const o = 16 * j;
      let t = ms;
      for (let i = 5; i >= 0; i--) { b[o + i] = t % 256; t = Math.floor(t / 256); }
      b[o + 6] = (b[o + 6]! & 0x0f) | 0x70;
      b[o + 8] = (b[o + 8]! & 0x3f) | 0x80;
      const h = b.toString('hex', o, o + 16);
      out.push(`${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`);
    }
  }
  return out;
}
