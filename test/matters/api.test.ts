/**
 * The matters JSON API over the real app on both databases: round trips with decimal
 * strings, paging totals, 422s naming the field with nothing changed, 409 on billed work,
 * role refusals, and the OpenAPI document listing every route.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { withApp } from '../support/app.ts';
import type { Browser, Page, TestApp } from '../support/app.ts';

const TABLES = [
  'matters_counter', 'matters_timekeeper', 'matters_timekeeper_rate', 'matters_client', 'matters_client_rate', 'matters_matter',
  'matters_matter_rate', 'matters_time_entry', 'matters_disbursement', 'outbox', 'audit_log',
];

async function snapshot(db: TestDb): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const t of TABLES) out[t] = (await db.db.selectFrom(t).selectAll().execute()).map((r) => JSON.stringify(r)).sort();
  return out;
}

/** A JSON client for one role's token. */
class Api {
  constructor(private readonly b: Browser, private readonly token: string) {}
  private get auth() { return { authorization: `Bearer ${this.token}` }; }
  get(path: string): Promise<Page> { return this.b.get(`/api/v1${path}`, { ...this.auth, accept: 'application/json' }); }
  post(path: string, body: unknown): Promise<Page> { return this.b.postJson(`/api/v1${path}`, body, { headers: this.auth }); }
  patch(path: string, body: unknown): Promise<Page> { return this.b.postJson(`/api/v1${path}`, body, { method: 'PATCH', headers: this.auth }); }
  put(path: string, body: unknown): Promise<Page> { return this.b.postJson(`/api/v1${path}`, body, { method: 'PUT', headers: this.auth }); }
  delete(path: string): Promise<Page> { return this.b.request('DELETE', `/api/v1${path}`, { headers: { ...this.auth, accept: 'application/json' } }); }
}

async function apiAs(t: TestApp, role: 'admin' | 'billing' | 'timekeeper' | 'readonly'): Promise<Api> {
  const u = await t.user(role);
  return new Api(t.browser(), await t.token(u.email));
}

function ok(res: Page, status = 200): any {
  assert.equal(res.status, status, `${res.status}: ${res.text}`);
  return res.status === 204 ? null : res.json();
}

/** The sorted field names of a 422. */
function names(res: Page): string[] {
  return Object.keys(fields(res)).sort();
}

function fields(res: Page, status = 422): Record<string, string> {
  assert.equal(res.status, status, res.text);
  const body = res.json();
  assert.equal(body.error.code, status === 422 ? 'validation_failed' : body.error.code);
  return body.error.fields;
}

/** A partner (300.00 from 2025, 320.00 from 2026), a client and a matter with a 500.00 WIP cap. */
async function firm(api: Api) {
  // Linked to the timekeeper-role sign-in (apiAs(t, 'timekeeper')), which records MH's time only.
  const tk = ok(await api.post('/timekeepers', { initials: 'MH', name: 'Margaret Holloway', classification: 'partner', staffEmail: 'timekeeper@firm.test' }), 201);
  ok(await api.post(`/timekeepers/${tk.id}/rates`, { effectiveFrom: '2025-01-01', rate: '300.00' }), 201);
  ok(await api.post(`/timekeepers/${tk.id}/rates`, { effectiveFrom: '2026-01-01', rate: '320.00' }), 201);
  const client = ok(await api.post('/clients', { name: 'Northwind Logistics Inc.', email: 'ap@northwind.example' }), 201);
  const matter = ok(await api.post('/matters', {
    clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: tk.id, openedOn: '2025-06-01', billingCycle: 'MONTH', wipCap: '500.00',
  }), 201);
  return { tk, client, matter };
}

eachDialect('clients: create, read, search, and paging with totals', async (db) => {
  await withApp(db, async (t) => {
    const api = await apiAs(t, 'billing');
    const clientNames = ['Acme Widgets', 'Bravo Shipping', 'Charlie & Sons', 'Delta 100% Ltd', 'acme holdings'];
    const made = [];
    for (const name of clientNames) made.push(ok(await api.post('/clients', { name, email: `${name.split(' ')[0]!.toLowerCase()}@x.example` }), 201));
    assert.deepEqual(made.map((c) => c.clientNumber), [1, 2, 3, 4, 5]);
    assert.equal(typeof made[0].id, 'string');
    assert.equal(made[0].address, null);

    const one = ok(await api.get(`/clients/${made[2].id}`));
    assert.equal(one.name, 'Charlie & Sons');
    assert.equal((await api.get('/clients/nope')).status, 404);

    const p1 = ok(await api.get('/clients?limit=2'));
    assert.equal(p1.total, 5);
    assert.deepEqual(p1.items.map((c: any) => c.clientNumber), [1, 2]);
    assert.deepEqual([p1.limit, p1.offset], [2, 0]);
    const p3 = ok(await api.get('/clients?limit=2&offset=4'));
    assert.deepEqual(p3.items.map((c: any) => c.clientNumber), [5]);
    assert.equal(p3.total, 5);

    const acme = ok(await api.get('/clients?q=ACME'));
    assert.deepEqual(acme.items.map((c: any) => c.name), ['Acme Widgets', 'acme holdings'], 'case-insensitive on both databases');
    assert.equal(acme.total, 2);
    const pct = ok(await api.get(`/clients?q=${encodeURIComponent('100%')}`));
    assert.deepEqual(pct.items.map((c: any) => c.name), ['Delta 100% Ltd'], '% is literal');
    const byNumber = ok(await api.get('/clients?q=3'));
    assert.deepEqual(byNumber.items.map((c: any) => c.clientNumber), [3]);

    assert.deepEqual(names(await api.get('/clients?limit=500')), ['limit']);
    assert.deepEqual(names(await api.get('/clients?offset=-1')), ['offset']);
    // Past what the databases' integers hold: named, not a 500 (review 57 F10).
    for (const huge of ['100000000000000000000', '1e20', '9223372036854775807', '10000001']) {
      for (const list of ['/clients', '/matters', '/time-entries', '/timekeepers']) assert.deepEqual(names(await api.get(`${list}?offset=${huge}`)), ['offset'], `${list} ${huge}`);
    }
    assert.equal((await api.get('/clients?offset=10000000')).status, 200, 'the most');
  });
});

eachDialect('timekeepers and rates: effective-dated standard rates, client and matter rates, as decimal strings', async (db) => {
  await withApp(db, async (t) => {
    const api = await apiAs(t, 'admin');
    const { tk, client, matter } = await firm(api);
    const detail = ok(await api.get(`/timekeepers/${tk.id}`));
    assert.equal(detail.currentRate, '320.00', 'the 2026 rate is in effect on 2026-03-02');
    assert.equal(detail.ledesClassification, 'PT');
    assert.deepEqual(detail.rates, [{ effectiveFrom: '2025-01-01', rate: '300.00' }, { effectiveFrom: '2026-01-01', rate: '320.00' }]);
    assert.deepEqual(ok(await api.get(`/timekeepers/${tk.id}/rates`)).rates.length, 2);
    const list = ok(await api.get('/timekeepers'));
    assert.equal(list.total, 1);
    assert.equal(list.items[0].currentRate, '320.00');

    const cr = ok(await api.put(`/clients/${client.id}/rates/${tk.id}`, { rate: '310.50' }));
    assert.deepEqual(cr.rates.map((r: any) => [r.initials, r.rate]), [['MH', '310.50']]);
    // A matter's own rate needs custom matter rates turned on for it (seed 002).
    const off = await api.put(`/matters/${matter.id}/rates/${tk.id}`, { rate: '350.00' });
    assert.equal(off.status, 422);
    assert.match(off.json().error.fields.customRatesEnabled, /is off for \d+\.\d+: turn on custom matter rates/);
    assert.deepEqual(ok(await api.get(`/matters/${matter.id}/rates`)).rates, []);
    ok(await api.patch(`/matters/${matter.id}/billing-options`, { set: { customRatesEnabled: true } }));
    const mr = ok(await api.put(`/matters/${matter.id}/rates/${tk.id}`, { rate: '350.00' }));
    assert.deepEqual(mr.rates.map((r: any) => r.rate), ['350.00']);
    assert.equal(mr.currency, 'USD');
    // The matter rate wins: 1.5 h at 350.00 is 525.00.
    const te = ok(await api.post('/time-entries', { matterId: matter.id, timekeeperId: tk.id, workDate: '2026-02-10', hours: '1.5', narrative: 'Draft complaint' }), 201);
    assert.deepEqual([te.rate, te.rateSource, te.amount], ['350.00', 'matter', '525.00']);
    ok(await api.delete(`/matters/${matter.id}/rates/${tk.id}`), 204);
    assert.deepEqual(ok(await api.get(`/matters/${matter.id}/rates`)).rates, []);
    const te2 = ok(await api.post('/time-entries', { matterId: matter.id, timekeeperId: tk.id, workDate: '2026-02-10', hours: '1', narrative: 'Call' }), 201);
    assert.deepEqual([te2.rate, te2.rateSource], ['310.50', 'client']);
    ok(await api.delete(`/clients/${client.id}/rates/${tk.id}`), 204);
    const te3 = ok(await api.post('/time-entries', { matterId: matter.id, timekeeperId: tk.id, workDate: '2025-12-31', minutes: 30, narrative: 'Review' }), 201);
    assert.deepEqual([te3.rate, te3.rateSource, te3.amount, te3.hours], ['300.00', 'timekeeper', '150.00', '0.5']);

    // Bad rates are named and change nothing.
    const before = await snapshot(db);
    assert.match(fields(await api.post(`/timekeepers/${tk.id}/rates`, { effectiveFrom: '2026-06-01', rate: 350 })).rate!, /decimal string/);
    assert.match(fields(await api.post(`/timekeepers/${tk.id}/rates`, { effectiveFrom: '2026-06-01', rate: '350.001' })).rate!, /more than 2 decimal places/);
    assert.match(fields(await api.post(`/timekeepers/${tk.id}/rates`, { effectiveFrom: '2026-06-01', rate: '99999999.00' })).rate!, /at most 1000000.00/);
    assert.deepEqual(names(await api.post(`/timekeepers/${tk.id}/rates`, { effectiveFrom: '2026-02-30', rate: '1.00' })), ['effectiveFrom']);
    assert.deepEqual(names(await api.put(`/clients/${client.id}/rates/${tk.id}`, { rate: '-5.00' })), ['rate']);
    assert.deepEqual(names(await api.post('/timekeepers', { initials: 'MH', name: 'Again', classification: 'partner' })), ['initials']);
    assert.deepEqual(names(await api.post('/timekeepers', { initials: 'jd', name: 'J', classification: 'boss' })), ['classification', 'initials']);
    assert.equal((await api.put(`/clients/${client.id}/rates/unknown`, { rate: '1.00' })).status, 404);
    assert.deepEqual(await snapshot(db), before);
  });
});

eachDialect('time entries: 1.5 h at 350.00 is 525.00; hours and minutes exact; list filters and paging; change and delete', async (db) => {
  await withApp(db, async (t) => {
    const api = await apiAs(t, 'billing');
    const { tk, matter } = await firm(api);
    const assoc = ok(await api.post('/timekeepers', { initials: 'JD', name: 'Jo Doe', classification: 'associate' }), 201);
    ok(await api.post(`/timekeepers/${assoc.id}/rates`, { effectiveFrom: '2020-01-01', rate: '200.00' }), 201);

    const { warnings: noWarnings, ...e } = ok(await api.post('/time-entries', {
      matterId: matter.id, timekeeperId: tk.id, workDate: '2026-02-03', hours: '1.5', narrative: 'Review pleadings, call client',
      taskCode: 'L120', activityCode: 'A104', rate: '350.00', rateReason: 'Agreed rate',
    }), 201);
    assert.deepEqual(
      { minutes: e.minutes, hours: e.hours, billedMinutes: e.billedMinutes, rate: e.rate, amount: e.amount, rateSource: e.rateSource, rateReason: e.rateReason, currency: e.currency, fileNumber: e.fileNumber, status: e.status },
      { minutes: 90, hours: '1.5', billedMinutes: 90, rate: '350.00', amount: '525.00', rateSource: 'override', rateReason: 'Agreed rate', currency: 'USD', fileNumber: '1.1', status: 'unbilled' },
    );
    assert.equal(noWarnings.length, 1, 'the cap is 500.00: 525.00 of WIP passes it');
    assert.match(noWarnings[0], /Matter 1\.1 is over its WIP cap/);
    // 20 minutes round up to 24 (tenths of an hour): 0.4 h at 320.00 = 128.00.
    const f = ok(await api.post('/time-entries', { matterId: matter.id, timekeeperId: tk.id, workDate: '2026-02-04', minutes: 20, narrative: 'Email' }), 201);
    assert.deepEqual([f.minutes, f.hours, f.billedMinutes, f.billedHours, f.amount], [20, '0.3333', 24, '0.4', '128.00']);
    const g = ok(await api.post('/time-entries', { matterId: matter.id, timekeeperId: assoc.id, workDate: '2026-02-05', hours: '0.25', narrative: 'Research', behaviour: 'no_charge' }), 201);
    assert.deepEqual([g.billedMinutes, g.amount, g.behaviour], [18, '60.00', 'no_charge']);

    assert.deepEqual(ok(await api.get(`/time-entries/${e.id}`)), e);
    const all = ok(await api.get(`/time-entries?matterId=${matter.id}`));
    assert.equal(all.total, 3);
    assert.deepEqual(all.items.map((x: any) => x.workDate), ['2026-02-05', '2026-02-04', '2026-02-03'], 'newest first');
    assert.equal(ok(await api.get(`/time-entries?timekeeperId=${assoc.id}`)).total, 1);
    const range = ok(await api.get('/time-entries?from=2026-02-04&to=2026-02-04'));
    assert.deepEqual(range.items.map((x: any) => x.id), [f.id]);
    const paged = ok(await api.get('/time-entries?limit=1&offset=1'));
    assert.deepEqual([paged.total, paged.items.length, paged.items[0].id], [3, 1, f.id]);
    assert.equal(ok(await api.get('/time-entries?status=billed')).total, 0);

    // Matter detail: unbilled WIP totals and the cap (500.00): 525 + 128 billable, the no-charge entry adds nothing.
    const m = ok(await api.get(`/matters/${matter.id}`));
    assert.deepEqual(m.wip, { time: '653.00', disbursements: '0.00', fixedCharges: '0.00', total: '653.00', unbilledMinutes: 132, unbilledHours: '2.2', unbilledItems: 3 });
    assert.deepEqual(m.cap, { cap: '500.00', state: 'over', distance: '-153.00', mustBill: true, policy: 'warn' });

    // Change: hours, and drop the override back to the resolved rate.
    const changed = ok(await api.patch(`/time-entries/${e.id}`, { hours: '2', rate: null }));
    assert.deepEqual([changed.minutes, changed.rate, changed.rateSource, changed.amount, changed.rateReason], [120, '320.00', 'timekeeper', '640.00', null]);
    const reasoned = ok(await api.patch(`/time-entries/${e.id}`, { rate: '100.00', rateReason: 'Courtesy' }));
    assert.deepEqual([reasoned.amount, reasoned.rateReason], ['200.00', 'Courtesy']);
    const reworded = ok(await api.patch(`/time-entries/${e.id}`, { rateReason: 'Courtesy discount' }));
    assert.deepEqual([reworded.rate, reworded.rateReason], ['100.00', 'Courtesy discount']);

    // A delete with the version read: refused (409) once the entry changed since, done at the current one.
    const gv = ok(await api.get(`/time-entries/${g.id}`)).version as number;
    ok(await api.patch(`/time-entries/${g.id}`, { narrative: 'Changed meanwhile' }));
    const stale = await api.delete(`/time-entries/${g.id}?expectedVersion=${gv}`);
    assert.equal(stale.status, 409);
    assert.match(stale.json().error.message, /changed by someone else/);
    assert.equal((await api.delete(`/time-entries/${g.id}?expectedVersion=x`)).status, 422);
    ok(await api.delete(`/time-entries/${g.id}?expectedVersion=${gv + 1}`), 204);
    assert.equal((await api.get(`/time-entries/${g.id}`)).status, 404);
    assert.equal((await api.delete(`/time-entries/${g.id}`)).status, 404);
  });
});

eachDialect('bad time entries get 422 naming each field, and nothing is written', async (db) => {
  await withApp(db, async (t) => {
    const api = await apiAs(t, 'timekeeper');
    const admin = await apiAs(t, 'admin');
    const { tk, matter } = await firm(admin);
    const base = { matterId: matter.id, timekeeperId: tk.id, workDate: '2026-02-03', hours: '1.5', narrative: 'Work' };
    const before = await snapshot(db);
    const cases: Array<[Record<string, unknown>, string[], RegExp?]> = [
      [{ ...base, hours: 1.5 }, ['hours'], /decimal string/],
      [{ ...base, hours: '0.333' }, ['hours'], /whole number of minutes/],
      [{ ...base, hours: '0' }, ['hours'], /more than 0/],
      [{ ...base, hours: '25' }, ['hours'], /at most 24 hours/],
      [{ ...base, hours: undefined }, ['hours'], /required/],
      [{ ...base, minutes: 30 }, ['hours'], /not both/],
      [{ ...base, rate: '350.00' }, ['rateReason']],
      [{ ...base, rate: '350.005', rateReason: 'x' }, ['rate'], /decimal places/],
      [{ ...base, rate: 'abc', rateReason: 'x' }, ['rate']],
      [{ ...base, narrative: undefined, workDate: '03/02/2026' }, ['narrative', 'workDate']],
      [{ ...base, narrative: '   ' }, ['narrative']],
      [{ ...base, taskCode: 'L999', activityCode: 'A999' }, ['activityCode', 'taskCode']],
      [{ ...base, behaviour: 'maybe' }, ['behaviour'], /one of: bill, hide, no_charge/],
      [{ ...base, matterId: 'nope' }, ['matterId']],
      [{ ...base, timekeeperId: 'nope' }, ['timekeeperId']],
      [{ ...base, workDate: '2024-01-01' }, ['timekeeperId'], /no rate on 2024-01-01/],
      [{ ...base, extra: 1 }, ['extra']],
    ];
    for (const [body, expected, message] of cases) {
      const f = fields(await api.post('/time-entries', body));
      assert.deepEqual(Object.keys(f).sort(), expected, JSON.stringify(body));
      if (message) assert.match(f[expected[0]!]!, message, JSON.stringify(body));
    }
    assert.deepEqual(await snapshot(db), before, 'nothing was written');
  });
});

eachDialect('billed work cannot be changed or deleted: 409 with the reason', async (db) => {
  await withApp(db, async (t) => {
    const api = await apiAs(t, 'billing');
    const { tk, matter } = await firm(api);
    const { warnings: noWarnings, ...e } = ok(await api.post('/time-entries', { matterId: matter.id, timekeeperId: tk.id, workDate: '2026-02-03', hours: '1', narrative: 'Work' }), 201);
    const d = ok(await api.post('/disbursements', { matterId: matter.id, incurredOn: '2026-02-03', code: 'COURT', unitCost: '275.00', description: 'Filing fee' }), 201);
    await db.db.updateTable('matters_time_entry').set({ status: 'billed' }).where('id', '=', e.id).execute();
    await db.db.updateTable('matters_disbursement').set({ status: 'draft' }).where('id', '=', d.id).execute();
    const before = await snapshot(db);
    for (const res of [
      await api.patch(`/time-entries/${e.id}`, { narrative: 'Changed' }),
      await api.delete(`/time-entries/${e.id}`),
      await api.patch(`/disbursements/${d.id}`, { unitCost: '1.00' }),
      await api.delete(`/disbursements/${d.id}`),
    ]) {
      assert.equal(res.status, 409, res.text);
      assert.equal(res.json().error.code, 'conflict');
      assert.match(res.json().error.message, /only unbilled work can be changed/);
    }
    assert.deepEqual(await snapshot(db), before);
    assert.equal(ok(await api.get(`/time-entries/${e.id}`)).status, 'billed');
  });
});

eachDialect('disbursements: quantity x unit cost in decimal strings; list, change, delete', async (db) => {
  await withApp(db, async (t) => {
    const api = await apiAs(t, 'timekeeper');
    const { matter } = await firm(await apiAs(t, 'admin'));
    const d = ok(await api.post('/disbursements', {
      matterId: matter.id, incurredOn: '2026-02-04', code: 'COPY', expenseCode: 'E101', quantity: '2.5', unitCost: '10.10', description: 'Copies', payee: 'Copy Shop',
    }), 201);
    assert.deepEqual([d.quantity, d.unitCost, d.amount, d.currency, d.behaviour, d.fileNumber], ['2.5', '10.10', '25.25', 'USD', 'bill', '1.1']);
    const one = ok(await api.post('/disbursements', { matterId: matter.id, incurredOn: '2026-02-05', code: 'COURT', unitCost: '275.00', description: 'Filing fee' }), 201);
    assert.deepEqual([one.quantity, one.amount], ['1', '275.00']);
    const list = ok(await api.get(`/disbursements?matterId=${matter.id}`));
    assert.deepEqual([list.total, list.items[0].id], [2, one.id]);
    assert.equal(ok(await api.get('/disbursements?from=2026-02-05')).total, 1);
    const m = ok(await api.get(`/matters/${matter.id}`));
    assert.deepEqual([m.wip.disbursements, m.wip.total, m.cap.state], ['300.25', '300.25', 'under']);

    const changed = ok(await api.patch(`/disbursements/${d.id}`, { quantity: '3', unitCost: '0.34' }));
    assert.deepEqual([changed.quantity, changed.amount], ['3', '1.02']);
    const before = await snapshot(db);
    assert.deepEqual(names(await api.patch(`/disbursements/${d.id}`, { quantity: '0.0001' })), ['quantity']);
    assert.deepEqual(names(await api.patch(`/disbursements/${d.id}`, { quantity: '0' })), ['quantity']);
    assert.deepEqual(names(await api.patch(`/disbursements/${d.id}`, { unitCost: '1.234' })), ['unitCost']);
    assert.deepEqual(names(await api.post('/disbursements', { matterId: matter.id, incurredOn: '2026-02-05', code: 'bad code', unitCost: '1.00', description: '' })), ['code', 'description']);
    assert.deepEqual(names(await api.post('/disbursements', { matterId: matter.id, incurredOn: '2026-02-05', code: 'X', expenseCode: 'E999', unitCost: '1.00', description: 'x' })), ['expenseCode']);
    assert.deepEqual(await snapshot(db), before);
    ok(await api.delete(`/disbursements/${d.id}`), 204);
    assert.equal(ok(await api.get('/disbursements')).total, 1);
  });
});

eachDialect('matters: open with a decimal WIP cap, read, list by search, client and status with totals', async (db) => {
  await withApp(db, async (t) => {
    const api = await apiAs(t, 'billing');
    const { tk, client, matter } = await firm(api);
    assert.deepEqual(
      { fileNumber: matter.fileNumber, wipCap: matter.wipCap, currency: matter.currency, clientNumber: matter.clientNumber, nextBillingDate: matter.nextBillingDate, status: matter.status },
      { fileNumber: '1.1', wipCap: '500.00', currency: 'USD', clientNumber: 1, nextBillingDate: '2025-07-01', status: 'open' },
    );
    assert.deepEqual(matter.cap, { cap: '500.00', state: 'under', distance: '500.00', mustBill: false, policy: 'warn' });
    const other = ok(await api.post('/clients', { name: 'Kestrel Holdings' }), 201);
    ok(await api.post('/matters', { clientId: client.id, name: 'Lease review', responsibleTimekeeperId: tk.id }), 201);
    const yen = ok(await api.post('/matters', { clientId: other.id, name: 'Tokyo office', responsibleTimekeeperId: tk.id, currency: 'JPY', wipCap: '100000' }), 201);
    assert.deepEqual([yen.fileNumber, yen.wipCap, yen.cap.cap], ['2.1', '100000', '100000']);
    assert.deepEqual(names(await api.post('/matters', { clientId: other.id, name: 'X', responsibleTimekeeperId: tk.id, currency: 'JPY', wipCap: '1.50' })), ['wipCap']);
    assert.deepEqual(names(await api.post('/matters', { clientId: other.id, name: 'X', responsibleTimekeeperId: tk.id, wipCap: '0' })), ['wipCap']);
    assert.deepEqual(names(await api.post('/matters', { clientId: 'nope', name: '', responsibleTimekeeperId: tk.id, billingCycle: 'DAILY' })), ['billingCycle', 'name']);
    assert.deepEqual(names(await api.post('/matters', { clientId: 'nope', name: 'X', responsibleTimekeeperId: 'nope' })), ['clientId', 'responsibleTimekeeperId']);

    const all = ok(await api.get('/matters'));
    assert.deepEqual(all.items.map((m: any) => m.fileNumber), ['1.1', '1.2', '2.1']);
    assert.equal(all.total, 3);
    assert.deepEqual(ok(await api.get(`/matters?clientId=${client.id}`)).items.map((m: any) => m.fileNumber), ['1.1', '1.2']);
    assert.deepEqual(ok(await api.get('/matters?q=kestrel')).items.map((m: any) => m.fileNumber), ['1.1', '2.1'], 'matter or client name');
    assert.deepEqual(ok(await api.get('/matters?q=2.1')).items.map((m: any) => m.fileNumber), ['2.1']);
    const paged = ok(await api.get('/matters?limit=1&offset=2'));
    assert.deepEqual([paged.total, paged.items[0].fileNumber, paged.items[0].clientName], [3, '2.1', 'Kestrel Holdings']);
    assert.equal(ok(await api.get('/matters?status=closed')).total, 0);
    assert.deepEqual(names(await api.get('/matters?status=gone')), ['status']);
    assert.equal((await api.get('/matters/nope')).status, 404);
  });
});

eachDialect('roles: readonly reads only; timekeepers record work but not clients or rates; no token is 401', async (db) => {
  await withApp(db, async (t) => {
    const admin = await apiAs(t, 'admin');
    const { tk, matter } = await firm(admin);
    const ro = await apiAs(t, 'readonly');
    const tkApi = await apiAs(t, 'timekeeper');
    for (const path of ['/clients', '/matters', `/matters/${matter.id}`, '/timekeepers', '/time-entries', '/disbursements']) {
      ok(await ro.get(path));
      ok(await tkApi.get(path));
    }
    const before = await snapshot(db);
    const refused: Page[] = [
      await ro.post('/clients', { name: 'X' }),
      await ro.post('/time-entries', { matterId: matter.id, timekeeperId: tk.id, workDate: '2026-02-03', hours: '1', narrative: 'x' }),
      await ro.post('/disbursements', { matterId: matter.id, incurredOn: '2026-02-03', code: 'X', unitCost: '1.00', description: 'x' }),
      await tkApi.post('/clients', { name: 'X' }),
      await tkApi.post('/matters', { clientId: 'x', name: 'X', responsibleTimekeeperId: tk.id }),
      await tkApi.post('/timekeepers', { initials: 'ZZ', name: 'Z', classification: 'other' }),
      await tkApi.post(`/timekeepers/${tk.id}/rates`, { effectiveFrom: '2026-01-01', rate: '1.00' }),
      await tkApi.put(`/matters/${matter.id}/rates/${tk.id}`, { rate: '1.00' }),
      await tkApi.post('/imports/clients?dryRun=true', { csv: 'name\nX\n' }),
    ];
    for (const res of refused) {
      assert.equal(res.status, 403, res.text);
      assert.equal(res.json().error.code, 'forbidden');
    }
    assert.deepEqual(await snapshot(db), before);
    const own = ok(await tkApi.post('/time-entries', { matterId: matter.id, timekeeperId: tk.id, workDate: '2026-02-03', hours: '1', narrative: 'x' }), 201);
    // Another timekeeper's time: not recorded, changed or deleted by a timekeeper sign-in; billing staff may.
    const other = ok(await admin.post('/timekeepers', { initials: 'SC', name: 'Sofia Castellano', classification: 'associate' }), 201);
    ok(await admin.post(`/timekeepers/${other.id}/rates`, { effectiveFrom: '2025-01-01', rate: '200.00' }), 201);
    const theirs = ok(await admin.post('/time-entries', { matterId: matter.id, timekeeperId: other.id, workDate: '2026-02-03', hours: '2', narrative: 'Research' }), 201);
    const beforeOthers = await snapshot(db);
    const notMine = await tkApi.post('/time-entries', { matterId: matter.id, timekeeperId: other.id, workDate: '2026-02-03', hours: '1', narrative: 'x' });
    assert.equal(notMine.status, 422, notMine.text);
    assert.match(fields(notMine).timekeeperId ?? '', /is not your timekeeper: your sign-in records the time of MH Margaret Holloway only/);
    for (const res of [await tkApi.patch(`/time-entries/${theirs.id}`, { hours: '9' }), await tkApi.delete(`/time-entries/${theirs.id}`)]) {
      assert.equal(res.status, 403, res.text);
      assert.match(res.json().error.message, /This is SC Sofia Castellano's time: your sign-in changes the time of its own timekeeper only/);
    }
    const moved = await tkApi.patch(`/time-entries/${own.id}`, { timekeeperId: other.id });
    assert.equal(moved.status, 422, 'nor moved to another timekeeper');
    assert.deepEqual(await snapshot(db), beforeOthers, 'nothing changed');
    ok(await tkApi.patch(`/time-entries/${own.id}`, { hours: '1.5' }));
    const anon = await t.browser().get('/api/v1/clients', { accept: 'application/json' });
    assert.equal(anon.status, 401);
  });
});

eachDialect('the OpenAPI document lists every matters route with its roles and decimal-string money', async (db) => {
  await withApp(db, async (t) => {
    const doc = (await t.browser().get('/api/openapi.json')).json();
    const expected: Record<string, string[]> = {
      '/api/v1/clients': ['get', 'post'],
      '/api/v1/clients/{id}': ['get'],
      '/api/v1/clients/{id}/rates': ['get'],
      '/api/v1/clients/{id}/rates/{timekeeperId}': ['put', 'delete'],
      '/api/v1/matters': ['get', 'post'],
      '/api/v1/matters/{id}': ['get'],
      '/api/v1/matters/{id}/rates': ['get'],
      '/api/v1/matters/{id}/rates/{timekeeperId}': ['put', 'delete'],
      '/api/v1/timekeepers': ['get', 'post'],
      '/api/v1/timekeepers/{id}': ['get'],
      '/api/v1/timekeepers/{id}/rates': ['get', 'post'],
      '/api/v1/time-entries': ['get', 'post'],
      '/api/v1/time-entries/{id}': ['get', 'patch', 'delete'],
      '/api/v1/disbursements': ['get', 'post'],
      '/api/v1/disbursements/{id}': ['get', 'patch', 'delete'],
      '/api/v1/imports/{kind}': ['post'],
    };
    for (const [path, methods] of Object.entries(expected)) {
      assert.ok(doc.paths[path], `${path} is documented`);
      for (const m of methods) {
        const op = doc.paths[path][m];
        assert.ok(op, `${m.toUpperCase()} ${path} is documented`);
        assert.ok(Array.isArray(op['x-roles']) && op['x-roles'].length > 0, `${m} ${path} declares roles`);
        if (m === 'get') assert.deepEqual(op['x-roles'], ['admin', 'billing', 'timekeeper', 'readonly'], `${path} is readable by every role`);
        else if (path.startsWith('/api/v1/time-entries') || path.startsWith('/api/v1/disbursements')) assert.deepEqual(op['x-roles'], ['admin', 'billing', 'timekeeper']);
        else assert.deepEqual(op['x-roles'], ['admin', 'billing'], `${m} ${path}`);
      }
    }
    const create = doc.paths['/api/v1/time-entries'].post.requestBody.content['application/json'].schema;
    assert.equal(create.properties.hours.type, 'string');
    assert.equal(create.properties.rate.type, 'string');
    assert.equal(create.additionalProperties, false);
    const entry = doc.paths['/api/v1/time-entries/{id}'].get.responses['200'].content['application/json'].schema;
    assert.equal(entry.properties.amount.type, 'string');
    const list = doc.paths['/api/v1/time-entries'].get.parameters.map((p: any) => p.name).sort();
    assert.deepEqual(list, ['from', 'id', 'limit', 'matterId', 'offset', 'status', 'timekeeperId', 'to'].filter((n) => n !== 'id'));
    assert.ok(doc.paths['/api/v1/imports/{kind}'].post.parameters.some((p: any) => p.name === 'dryRun'));
    // As the import answers (review 57 F3): 200 for a dry run, 201 applied; CSV bodies; the kinds there are.
    const imp = doc.paths['/api/v1/imports/{kind}'].post;
    assert.deepEqual(Object.keys(imp.responses).sort(), ['200', '201', '400', '401', '403', '404', '409', '413', '415', '422', 'default']);
    assert.equal(imp.responses['415'].description, 'The body is not sent as application/json or text/csv or text/plain');
    assert.deepEqual(Object.keys(imp.requestBody.content).sort(), ['application/json', 'text/csv', 'text/plain']);
    assert.deepEqual(imp.parameters.find((p: any) => p.name === 'kind').schema.enum, ['clients', 'matters', 'time-entries', 'disbursements']);
  });
});
