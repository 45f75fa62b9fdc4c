/**
 * The firm's dates are its own time zone's (TZ), not UTC's: "today" and the date a reversal is
 * posted on. A Sydney firm working at 9 am on 1 April is on 1 April, while UTC is still on 31 March.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { displayTime, firmTimeZone, isoDate } from '../src/shared/clock.ts';
import { loadConfig } from '../src/main.ts';
import { eachDialect } from './support/db.ts';
import { ctx, journals, setupWithApprovedBill } from './ledger/support.ts';

/** Run `fn` with the process in time zone `tz` (Node reads TZ again when it changes), then put it back. */
async function inZone<T>(tz: string, fn: () => Promise<T> | T): Promise<T> {
  const was = process.env.TZ;
  process.env.TZ = tz;
  try { return await fn(); } finally {
    if (was === undefined) delete process.env.TZ; else process.env.TZ = was;
  }
}

test('the calendar date of an instant is the firm time zone\'s', async () => {
  const cases: [string, string, string][] = [
    // [zone, instant, the firm's date]
    ['UTC', '2026-03-31T22:00:00Z', '2026-03-31'],
    ['Australia/Sydney', '2026-03-31T22:00:00Z', '2026-04-01'],
    ['Australia/Sydney', '2026-03-31T12:59:59Z', '2026-03-31'],
    ['Australia/Sydney', '2026-03-31T13:00:00Z', '2026-04-01'],
    ['America/New_York', '2026-04-01T03:00:00Z', '2026-03-31'],
    ['Pacific/Kiritimati', '2026-12-31T10:00:00Z', '2027-01-01'],
    ['Asia/Kolkata', '2026-02-28T18:30:00Z', '2026-03-01'],
  ];
  for (const [tz, instant, date] of cases) {
    await inZone(tz, () => {
      assert.ok(firmTimeZone() !== undefined, tz);
      assert.equal(isoDate(new Date(instant)), date, `${instant} in ${tz}`);
    });
  }
  assert.throws(() => isoDate(new Date(Number.NaN)), RangeError);
});

test('a TZ that names no time zone is refused at start, naming TZ', async () => {
  await inZone('Mars/Olympus_Mons', () => {
    assert.throws(() => loadConfig({ TZ: 'Mars/Olympus_Mons' }), /TZ must be a time zone such as Australia\/Sydney/);
  });
  await inZone('Australia/Sydney', () => { assert.doesNotThrow(() => loadConfig({ TZ: 'Australia/Sydney' })); });
});

eachDialect('a bill reverted at 9 am in Sydney on 1 April: the books date the change 1 April and take April as the current period, not UTC\'s 31 March', async (db) => {
  await inZone('Australia/Sydney', async () => {
    const { s, bill: d } = await setupWithApprovedBill(db, { start: '2026-03-02T09:00:00Z' });
    s.clock.set('2026-03-31T22:00:00Z'); // 09:00 on 1 April in Sydney
    await s.billing.revert(ctx, d.billId);
    await s.drain();
    // The reversal is dated as the bill (its period is open), posted outside the current period: April, Sydney's.
    const reversal = (await journals(db.db, { billId: d.billId })).at(-1)!;
    assert.equal(reversal.note, 'Outside the current period 2026-04', JSON.stringify(reversal));
    // The day the bill's balance changed, as the ledger tells billing.
    const copy = await db.db.selectFrom('billing_bill_balance').select(['status', 'occurred_on']).where('bill_id', '=', d.billId).executeTakeFirstOrThrow();
    assert.deepEqual([copy.status, copy.occurred_on], ['reversed', '2026-04-01']);
    // Today, for the next bill: the default invoice date is Sydney's.
    assert.equal(isoDate(s.clock.now()), '2026-04-01');
  });
});

test('pages show stored times in the firm\'s time zone, named', async () => {
  const { createViews } = await import('../src/shared/web/views.ts');
  const env = createViews(new URL('../views', import.meta.url).pathname);
  const render = () => env.renderString('{{ t | datetime }}', { t: '2026-03-31T22:05:00.000Z' });
  assert.equal(await inZone('UTC', render), '2026-03-31 22:05 UTC');
  assert.equal(await inZone('Australia/Sydney', render), '2026-04-01 09:05 Australia/Sydney');
  // To the second on request (bill runs made in the same minute told apart).
  const seconds = () => env.renderString('{{ t | datetime(true) }}', { t: '2026-03-31T22:05:07.000Z' });
  assert.equal(await inZone('UTC', seconds), '2026-03-31 22:05:07 UTC');
  assert.equal(await inZone('Australia/Sydney', seconds), '2026-04-01 09:05:07 Australia/Sydney');
});

test('displayTime: a stored instant as the firm reads it, named by its zone, to the minute or second; other text as it is', () => {
  const at = '2026-12-06T07:44:19.051Z';
  const d = new Date(at);
  const two = (n: number) => String(n).padStart(2, '0');
  const zone = firmTimeZone() ?? 'UTC';
  assert.equal(displayTime(at), `${isoDate(d)} ${two(d.getHours())}:${two(d.getMinutes())} ${zone}`);
  assert.equal(displayTime(at, true), `${isoDate(d)} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${zone}`);
  assert.doesNotMatch(displayTime(at), /\dT\d|\.\d{3}Z/, 'no raw ISO');
  assert.equal(displayTime('not a time'), 'not a time');
});
