/**
 * Audit (pricing): how a time entry is priced, with worked figures. Standard rates by effective
 * date (inclusive; one added later with an earlier date applies from its date to new work), the
 * precedence override > matter (only with custom matter rates on) > client > standard (seed 002),
 * minutes rounded to the matter's unit, amounts rounded half up once in integers, an unbilled
 * entry re-priced when its date or timekeeper changes and kept when only its text does, an
 * entry on a bill never re-priced, and currencies with 0 and 3 decimals through the API.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { eachDialect } from '../support/db.ts';
import { withApp } from '../support/app.ts';
import type { Browser, Page, TestApp } from '../support/app.ts';
import { systemContext } from '../../src/shared/events.ts';
import { roundMinutes, timeAmountMinor, disbursementAmountMinor, resolveRate } from '../../src/modules/matters/domain.ts';
import { mattersCommands, refused } from './support.ts';

const ctx = systemContext('corr-audit-pricing-rates', 'test');

/** round_half_up(n / d) for non-negative integers, by BigInt. */
const halfUp = (n: bigint, d: bigint): bigint => (2n * n + d) / (2n * d);

test('time amounts: round_half_up(billed minutes x rate / 60), never a float', () => {
  // [billed minutes, rate per hour (minor units), amount]
  const table: [number, number, number][] = [
    [60, 30_000, 30_000], [6, 30_000, 3_000], [90, 32_500, 48_750], [6, 33_333, 3_333], [12, 33_333, 6_667],
    [6, 5, 1], [6, 4, 0], [1, 30, 1], [1, 29, 0], [1_440, 100_000_000, 2_400_000_000], [0, 30_000, 0],
  ];
  for (const [minutes, rate, amount] of table) assert.equal(timeAmountMinor(minutes, rate), amount, `${minutes} min at ${rate}`);
  fc.assert(fc.property(fc.integer({ min: 0, max: 1_440 }), fc.integer({ min: 0, max: 100_000_000 }), (m, r) =>
    timeAmountMinor(m, r) === Number(halfUp(BigInt(m) * BigInt(r), 60n))), { numRuns: 2_000 });
  fc.assert(fc.property(fc.integer({ min: 1, max: 1_000_000_000 }), fc.integer({ min: 0, max: 1_000_000_000 }), (q, u) =>
    disbursementAmountMinor(q, u) === Number(halfUp(BigInt(q) * BigInt(u), 1_000n))), { numRuns: 2_000 });
});

test('minutes rounded to the unit: up charges a started unit, nearest rounds half up, down drops a part', () => {
  const table: [number, number, 'up' | 'nearest' | 'down', number][] = [
    [1, 6, 'up', 6], [6, 6, 'up', 6], [7, 6, 'up', 12], [2, 6, 'nearest', 0], [3, 6, 'nearest', 6], [8, 6, 'nearest', 6],
    [9, 6, 'nearest', 12], [7, 15, 'nearest', 0], [8, 15, 'nearest', 15], [14, 15, 'down', 0], [29, 15, 'down', 15], [61, 60, 'up', 120],
  ];
  for (const [raw, unit, mode, billed] of table) assert.equal(roundMinutes(raw, unit, mode), billed, `${raw} min, ${unit}-minute unit, ${mode}`);
  fc.assert(fc.property(fc.integer({ min: 0, max: 1_440 }), fc.integer({ min: 1, max: 60 }), (raw, unit) => {
    const up = roundMinutes(raw, unit, 'up');
    const down = roundMinutes(raw, unit, 'down');
    const near = roundMinutes(raw, unit, 'nearest');
    return up % unit === 0 && down % unit === 0 && up >= raw && up - raw < unit && down <= raw && raw - down < unit
      && (near === up || near === down) && (2 * (raw - down) >= unit ? near === up : near === down);
  }), { numRuns: 2_000 });
});

test('rate precedence: override with a reason, then matter, then client, then the standard rate on the date', () => {
  const standardRates = [{ effectiveFrom: '2026-03-01', rateMinor: 35_000 }, { effectiveFrom: '2026-01-01', rateMinor: 30_000 }, { effectiveFrom: '2026-02-15', rateMinor: 32_500 }];
  const at = (workDate: string, matter: number | null, client: number | null, override: { rateMinor: number; reason: string } | null = null) =>
    resolveRate({ workDate, matterRateMinor: matter, clientRateMinor: client, standardRates, override });
  assert.equal(at('2025-12-31', null, null), null);
  assert.deepEqual(at('2026-01-01', null, null), { rateMinor: 30_000, source: 'timekeeper' });
  assert.deepEqual(at('2026-02-14', null, null), { rateMinor: 30_000, source: 'timekeeper' });
  assert.deepEqual(at('2026-02-15', null, null), { rateMinor: 32_500, source: 'timekeeper' });
  assert.deepEqual(at('2026-03-01', null, null), { rateMinor: 35_000, source: 'timekeeper' });
  assert.deepEqual(at('2026-03-01', null, 28_000), { rateMinor: 28_000, source: 'client' });
  assert.deepEqual(at('2026-03-01', 25_000, 28_000), { rateMinor: 25_000, source: 'matter' });
  assert.deepEqual(at('2026-03-01', 25_000, 28_000, { rateMinor: 40_000, reason: 'Agreed' }), { rateMinor: 40_000, source: 'override' });
  assert.deepEqual(at('2026-03-01', 25_000, 28_000, { rateMinor: 40_000, reason: '  ' }), { rateMinor: 25_000, source: 'matter' });
  assert.deepEqual(at('2026-03-01', 0, 28_000), { rateMinor: 0, source: 'matter' }, 'a matter rate of 0 is a rate');
});

eachDialect('audit pricing: time entries priced by date, precedence and unit; re-priced on a date or timekeeper change; never once on a bill', async (db) => {
  const cmds = mattersCommands(db);
  const mh = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  const ab = await cmds.createTimekeeper(ctx, { initials: 'AB', name: 'Alex Brandt', classification: 'associate' });
  await cmds.setTimekeeperRate(ctx, { timekeeperId: mh.id, effectiveFrom: '2026-01-01', rateMinor: 30_000 });
  await cmds.setTimekeeperRate(ctx, { timekeeperId: mh.id, effectiveFrom: '2026-03-01', rateMinor: 35_000 });
  await cmds.setTimekeeperRate(ctx, { timekeeperId: ab.id, effectiveFrom: '2026-01-01', rateMinor: 20_000 });
  const client = await cmds.createClient(ctx, { name: 'Northwind' });
  const matter = await cmds.openMatter(ctx, { clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: mh.id, openedOn: '2026-01-01' });
  const rec = (workDate: string, rawMinutes: number, extra: Record<string, unknown> = {}) =>
    cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: mh.id, workDate, rawMinutes, narrative: 'Work', ...extra });

  const none = await refused(rec('2025-12-31', 60));
  assert.equal(none.status, 422);
  assert.match(none.fields.timekeeperId ?? '', /no rate on 2025-12-31/);

  const jan1 = await rec('2026-01-01', 7); // 7 min -> 12 billed at 300.00 = 60.00
  assert.deepEqual([jan1.billedMinutes, jan1.rateMinor, jan1.rateSource, jan1.amountMinor], [12, 30_000, 'timekeeper', 6_000]);
  const feb28 = await rec('2026-02-28', 90);
  assert.deepEqual([feb28.rateMinor, feb28.amountMinor], [30_000, 45_000]);
  const mar1 = await rec('2026-03-01', 60);
  assert.deepEqual([mar1.rateMinor, mar1.amountMinor], [35_000, 35_000]);

  // A rate added later with an earlier date: new work from that date takes it; recorded work keeps its price.
  await cmds.setTimekeeperRate(ctx, { timekeeperId: mh.id, effectiveFrom: '2026-02-15', rateMinor: 32_500 });
  const feb28b = await rec('2026-02-28', 90);
  assert.deepEqual([feb28b.rateMinor, feb28b.amountMinor], [32_500, 48_750]);
  assert.equal((await cmds.findTimeEntry(feb28.id))?.amountMinor, 45_000);
  const feb14 = await rec('2026-02-14', 60);
  assert.equal(feb14.rateMinor, 30_000, 'the day before the new rate');

  // Client rate beats the standard; a matter rate only with custom matter rates on; an override beats both.
  await cmds.setClientRate(ctx, { clientId: client.id, timekeeperId: mh.id, rateMinor: 28_000 });
  await cmds.setMatterRate(ctx, { matterId: matter.id, timekeeperId: mh.id, rateMinor: 25_000 });
  assert.deepEqual(pick(await rec('2026-03-02', 60)), [28_000, 'client', 28_000]);
  await cmds.setBillingOptions(ctx, matter.id, { set: { customRatesEnabled: true } });
  assert.deepEqual(pick(await rec('2026-03-02', 60)), [25_000, 'matter', 25_000]);
  assert.deepEqual(pick(await rec('2026-03-02', 60, { override: { rateMinor: 40_000, reason: ' Agreed uplift ' } })), [40_000, 'override', 40_000]);
  await cmds.setBillingOptions(ctx, matter.id, { set: { customRatesEnabled: false } });
  await cmds.setClientRate(ctx, { clientId: client.id, timekeeperId: mh.id, rateMinor: null });

  // Re-pricing an unbilled entry: its date, then its timekeeper; text alone keeps the price.
  const e = await rec('2026-02-10', 90);
  assert.deepEqual(pick(e), [30_000, 'timekeeper', 45_000]);
  const moved = await cmds.updateTimeEntry(ctx, e.id, { workDate: '2026-03-02' });
  assert.deepEqual(pick(moved), [35_000, 'timekeeper', 52_500]);
  const reassigned = await cmds.updateTimeEntry(ctx, e.id, { timekeeperId: ab.id });
  assert.deepEqual(pick(reassigned), [20_000, 'timekeeper', 30_000]);
  await cmds.setTimekeeperRate(ctx, { timekeeperId: ab.id, effectiveFrom: '2026-03-01', rateMinor: 22_000 });
  const retexted = await cmds.updateTimeEntry(ctx, e.id, { narrative: 'Review of the lease' });
  assert.deepEqual(pick(retexted), [20_000, 'timekeeper', 30_000], 'a text edit keeps the price');
  const longer = await cmds.updateTimeEntry(ctx, e.id, { rawMinutes: 100 }); // 100 -> 102 billed at 200.00 = 340.00
  assert.deepEqual([longer.billedMinutes, ...pick(longer)], [102, 20_000, 'timekeeper', 34_000]);
  const dated = await cmds.updateTimeEntry(ctx, e.id, { workDate: '2026-03-03' }); // 102 min at 220.00 = 374.00
  assert.deepEqual(pick(dated), [22_000, 'timekeeper', 37_400]);
  const overridden = await cmds.updateTimeEntry(ctx, e.id, { override: { rateMinor: 15_000, reason: 'Junior work' } });
  assert.deepEqual(pick(overridden), [15_000, 'override', 25_500]);
  const keepsOverride = await cmds.updateTimeEntry(ctx, e.id, { workDate: '2026-03-04' });
  assert.deepEqual(pick(keepsOverride), [15_000, 'override', 25_500], 'a date change keeps the entry\'s own rate');
  const back = await cmds.updateTimeEntry(ctx, e.id, { override: null });
  assert.deepEqual(pick(back), [22_000, 'timekeeper', 37_400]);
  // A date with no rate for the timekeeper: refused, nothing changed.
  const early = await refused(cmds.updateTimeEntry(ctx, e.id, { workDate: '2025-06-01' }));
  assert.equal(early.status, 422);
  assert.deepEqual(pick((await cmds.findTimeEntry(e.id))!), [22_000, 'timekeeper', 37_400]);

  // On a bill: a rate change re-prices nothing and the entry cannot be edited.
  await cmds.setWipStatus(ctx, [{ kind: 'time', id: e.id }], 'draft');
  await cmds.setTimekeeperRate(ctx, { timekeeperId: ab.id, effectiveFrom: '2026-03-01', rateMinor: 99_000 });
  const locked = await refused(cmds.updateTimeEntry(ctx, e.id, { workDate: '2026-03-05' }));
  assert.equal(locked.status, 409);
  assert.deepEqual(pick((await cmds.findTimeEntry(e.id))!), [22_000, 'timekeeper', 37_400]);

  // Every change audited.
  const audits = await db.db.selectFrom('audit_log').select(['action']).where('entity_id', '=', e.id).execute();
  assert.equal(audits.filter((a) => a.action === 'matters.time_updated').length, 8);
});

function pick(t: { rateMinor: number; rateSource: string; amountMinor: number }): [number, string, number] {
  return [t.rateMinor, t.rateSource, t.amountMinor];
}

class Api {
  constructor(private readonly b: Browser, private readonly token: string) {}
  private get auth() { return { authorization: `Bearer ${this.token}` }; }
  post(path: string, body: unknown): Promise<Page> { return this.b.postJson(`/api/v1${path}`, body, { headers: this.auth }); }
  put(path: string, body: unknown): Promise<Page> { return this.b.postJson(`/api/v1${path}`, body, { method: 'PUT', headers: this.auth }); }
  patch(path: string, body: unknown): Promise<Page> { return this.b.postJson(`/api/v1${path}`, body, { method: 'PATCH', headers: this.auth }); }
}
function ok(res: Page, status = 200): any {
  assert.equal(res.status, status, `${res.status}: ${res.text}`);
  return res.json();
}
async function apiOf(t: TestApp): Promise<Api> {
  const u = await t.user('admin');
  return new Api(t.browser(), await t.token(u.email));
}

eachDialect('audit pricing: yen (0 decimals) and dinar (3 decimals) matters price in their own minor units through the API', async (db) => {
  await withApp(db, async (t) => {
    const api = await apiOf(t);
    const tk = ok(await api.post('/timekeepers', { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' }), 201);
    ok(await api.post(`/timekeepers/${tk.id}/rates`, { effectiveFrom: '2026-01-01', rate: '300.00' }), 201);
    const client = ok(await api.post('/clients', { name: 'Tokyo Trading KK' }), 201);
    const yen = ok(await api.post('/matters', { clientId: client.id, name: 'Tokyo lease', responsibleTimekeeperId: tk.id, openedOn: '2026-01-01', currency: 'JPY' }), 201);
    const bhd = ok(await api.post('/matters', { clientId: client.id, name: 'Manama office', responsibleTimekeeperId: tk.id, openedOn: '2026-01-01', currency: 'BHD' }), 201);

    // The firm's USD standard rate (30000 cents) is never read as 30000 yen.
    const noRate = await api.post('/time-entries', { matterId: yen.id, timekeeperId: tk.id, workDate: '2026-03-02', hours: '1', narrative: 'Call' });
    assert.equal(noRate.status, 422, noRate.text);
    assert.match(noRate.json().error.fields.timekeeperId, /no rate in JPY/);

    for (const m of [yen, bhd]) ok(await api.patch(`/matters/${m.id}/billing-options`, { set: { customRatesEnabled: true } }));
    const cents = await api.put(`/matters/${yen.id}/rates/${tk.id}`, { rate: '30000.50' });
    assert.equal(cents.status, 422);
    assert.match(cents.json().error.fields.rate, /decimal places for JPY/);
    ok(await api.put(`/matters/${yen.id}/rates/${tk.id}`, { rate: '30000' }));
    ok(await api.put(`/matters/${bhd.id}/rates/${tk.id}`, { rate: '100.125' }));

    // 1.5 h at 30,000 yen = 45,000 yen; 0.1 h at 100.125 BHD = 10.0125 -> 10.013 (half up).
    const y = ok(await api.post('/time-entries', { matterId: yen.id, timekeeperId: tk.id, workDate: '2026-03-02', hours: '1.5', narrative: 'Meeting' }), 201);
    assert.deepEqual([y.rate, y.rateSource, y.amount, y.currency], ['30000', 'matter', '45000', 'JPY']);
    const d = ok(await api.post('/time-entries', { matterId: bhd.id, timekeeperId: tk.id, workDate: '2026-03-02', hours: '0.1', narrative: 'Email' }), 201);
    assert.deepEqual([d.rate, d.billedMinutes, d.amount, d.currency], ['100.125', 6, '10.013', 'BHD']);
    // An override in yen: whole yen only; 0.25 h = 15 min, billed as 18 (6-minute unit, up) at 12,345 yen = 3,703.5 -> 3,704.
    const badOverride = await api.post('/time-entries', { matterId: yen.id, timekeeperId: tk.id, workDate: '2026-03-02', hours: '1', narrative: 'X', rate: '1.5', rateReason: 'Agreed' });
    assert.equal(badOverride.status, 422);
    assert.deepEqual(Object.keys(badOverride.json().error.fields), ['rate']);
    const o = ok(await api.post('/time-entries', { matterId: yen.id, timekeeperId: tk.id, workDate: '2026-03-02', hours: '0.25', narrative: 'Call', rate: '12345', rateReason: 'Agreed' }), 201);
    assert.deepEqual([o.rate, o.rateSource, o.amount], ['12345', 'override', '3704']);
    // Disbursements: 2.5 x 1,001 yen = 2,502.5 -> 2,503; 3 x 0.333 BHD = 0.999.
    const dy = ok(await api.post('/disbursements', { matterId: yen.id, incurredOn: '2026-03-02', code: 'COPY', quantity: '2.5', unitCost: '1001', description: 'Copies' }), 201);
    assert.equal(dy.amount, '2503');
    const db3 = ok(await api.post('/disbursements', { matterId: bhd.id, incurredOn: '2026-03-02', code: 'COPY', quantity: '3', unitCost: '0.333', description: 'Copies' }), 201);
    assert.equal(db3.amount, '0.999');
    const fils = await api.post('/disbursements', { matterId: bhd.id, incurredOn: '2026-03-02', code: 'COPY', unitCost: '0.3335', description: 'Copies' });
    assert.equal(fils.status, 422);
    assert.deepEqual(Object.keys(fils.json().error.fields), ['unitCost']);
  });
});
