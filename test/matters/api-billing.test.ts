/**
 * The matters API beyond the basics, on both databases: client changes and contacts,
 * billable party and participants, matter changes, closing and reopening, timekeeper
 * changes, billing options (effective, overridden, inherited; amounts as decimal strings),
 * firm settings (admin only), charge types and fixed charges, WIP-cap warnings and refusals.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { withApp } from '../support/app.ts';
import type { Browser, Page, TestApp } from '../support/app.ts';

const TABLES = [
  'matters_counter', 'matters_timekeeper', 'matters_timekeeper_rate', 'matters_client', 'matters_client_rate', 'matters_matter',
  'matters_matter_rate', 'matters_time_entry', 'matters_disbursement', 'matters_contact', 'matters_matter_participant',
  'matters_matter_options', 'matters_firm_settings', 'matters_charge_type', 'matters_fixed_charge', 'outbox', 'audit_log',
];

async function snapshot(db: TestDb): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const t of TABLES) out[t] = (await db.db.selectFrom(t).selectAll().execute()).map((r) => JSON.stringify(r)).sort();
  return out;
}

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

function fields(res: Page): Record<string, string> {
  assert.equal(res.status, 422, res.text);
  return res.json().error.fields;
}
const names = (res: Page): string[] => Object.keys(fields(res)).sort();

async function firm(api: Api) {
  const tk = ok(await api.post('/timekeepers', { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' }), 201);
  ok(await api.post(`/timekeepers/${tk.id}/rates`, { effectiveFrom: '2025-01-01', rate: '300.00' }), 201);
  const client = ok(await api.post('/clients', { name: 'Northwind Logistics Inc.', email: 'ap@northwind.example' }), 201);
  const matter = ok(await api.post('/matters', {
    clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: tk.id, openedOn: '2025-06-01', billingCycle: 'MONTH', wipCap: '500.00',
  }), 201);
  return { tk, client, matter };
}

eachDialect('clients change; contacts are a sub-resource; a matter bills a contact and lists participants', async (db) => {
  await withApp(db, async (t) => {
    const api = await apiAs(t, 'billing');
    const { client, matter } = await firm(api);
    const changed = ok(await api.patch(`/clients/${client.id}`, { name: 'Northwind Logistics plc', taxId: 'GB999', email: null }));
    assert.deepEqual([changed.name, changed.taxId, changed.email, changed.clientNumber], ['Northwind Logistics plc', 'GB999', null, 1]);
    assert.deepEqual(names(await api.patch(`/clients/${client.id}`, { email: 'not-an-email' })), ['email']);
    assert.deepEqual(names(await api.patch(`/clients/${client.id}`, { clientNumber: 7 })), ['clientNumber']);
    assert.equal((await api.patch('/clients/nope', { name: 'X' })).status, 404);

    const ap = ok(await api.post(`/clients/${client.id}/contacts`, { name: 'Accounts Payable', email: 'ap@northwind.example', role: 'Accounts payable' }), 201);
    const gc = ok(await api.post(`/clients/${client.id}/contacts`, { name: 'Grace Counsel', phone: '+44 20 7946 0000' }), 201);
    assert.deepEqual(names(await api.post(`/clients/${client.id}/contacts`, { name: '', email: 'x' })), ['email', 'name']);
    assert.deepEqual(ok(await api.get(`/clients/${client.id}/contacts`)).items.map((k: any) => k.name).sort(), ['Accounts Payable', 'Grace Counsel']);
    const renamed = ok(await api.patch(`/clients/${client.id}/contacts/${gc.id}`, { name: 'Grace Counsel KC', role: 'General counsel' }));
    assert.deepEqual([renamed.name, renamed.role, renamed.phone], ['Grace Counsel KC', 'General counsel', '+44 20 7946 0000']);
    const other = ok(await api.post('/clients', { name: 'Kestrel Holdings' }), 201);
    assert.equal((await api.get(`/clients/${other.id}/contacts/${gc.id}`)).status, 404, 'a contact belongs to its client');

    const before = ok(await api.get(`/matters/${matter.id}/participants`));
    assert.deepEqual([before.billableParty.kind, before.billableParty.contactId, before.participants], ['client', null, []]);
    const set = ok(await api.put(`/matters/${matter.id}/participants`, { billablePartyContactId: ap.id, participants: [{ contactId: gc.id, role: 'Instructing' }] }));
    assert.deepEqual([set.billableParty.kind, set.billableParty.contactId, set.billableParty.name], ['contact', ap.id, 'Accounts Payable']);
    assert.deepEqual(set.participants.map((p: any) => [p.contactId, p.role]), [[gc.id, 'Instructing']]);
    assert.deepEqual(ok(await api.get(`/matters/${matter.id}/participants`)), set);

    const busy = await api.delete(`/clients/${client.id}/contacts/${ap.id}`);
    assert.equal(busy.status, 409, busy.text);
    assert.match(busy.json().error.message, /billable party/);
    ok(await api.put(`/matters/${matter.id}/participants`, { billablePartyContactId: null, participants: [] }));
    ok(await api.delete(`/clients/${client.id}/contacts/${ap.id}`), 204);
    assert.equal((await api.get(`/clients/${client.id}/contacts/${ap.id}`)).status, 404);
  });
});

eachDialect('matters change, close and reopen; a closed matter takes no work; timekeepers change', async (db) => {
  await withApp(db, async (t) => {
    const api = await apiAs(t, 'billing');
    const { tk, matter } = await firm(api);
    const changed = ok(await api.patch(`/matters/${matter.id}`, { name: 'Northwind v. Kestrel (appeal)', wipCap: '750.50', billingCycle: 'none', nextBillingDate: null }));
    assert.deepEqual([changed.name, changed.wipCap, changed.billingCycle, changed.nextBillingDate, changed.cap.cap], ['Northwind v. Kestrel (appeal)', '750.50', 'none', null, '750.50']);
    const noCap = ok(await api.patch(`/matters/${matter.id}`, { wipCap: null }));
    assert.deepEqual([noCap.wipCap, noCap.cap.state], [null, 'none']);
    const before = await snapshot(db);
    assert.deepEqual(names(await api.patch(`/matters/${matter.id}`, { currency: 'EUR' })), ['currency'], 'the currency cannot change');
    assert.deepEqual(names(await api.patch(`/matters/${matter.id}`, { wipCap: '1.234' })), ['wipCap']);
    assert.deepEqual(names(await api.patch(`/matters/${matter.id}`, { billingCycle: 'none', nextBillingDate: '2026-05-01' })), ['nextBillingDate']);
    assert.deepEqual(names(await api.patch(`/matters/${matter.id}`, { responsibleTimekeeperId: 'nope' })), ['responsibleTimekeeperId']);
    assert.deepEqual(await snapshot(db), before);

    const closed = ok(await api.post(`/matters/${matter.id}/close`, { closedOn: '2026-03-01' }));
    assert.deepEqual([closed.status, closed.closedOn], ['closed', '2026-03-01']);
    assert.equal((await api.post(`/matters/${matter.id}/close`, {})).status, 409);
    assert.deepEqual(ok(await api.get('/matters?status=closed')).items.map((m: any) => m.id), [matter.id]);
    const refused = fields(await api.post('/time-entries', { matterId: matter.id, timekeeperId: tk.id, workDate: '2026-03-02', hours: '1', narrative: 'x' }));
    assert.match(refused.matterId!, /is closed/);
    const reopened = ok(await api.post(`/matters/${matter.id}/reopen`, {}));
    assert.deepEqual([reopened.status, reopened.closedOn], ['open', null]);
    assert.equal((await api.post(`/matters/${matter.id}/reopen`, {})).status, 409);
    const today = ok(await api.post(`/matters/${matter.id}/close`, {}));
    assert.equal(today.closedOn, '2026-03-02', 'closed today by default');
    ok(await api.post(`/matters/${matter.id}/reopen`, {}));

    const ro = await apiAs(t, 'readonly');
    assert.equal((await ro.post(`/matters/${matter.id}/close`, {})).status, 403);
    assert.equal((await ro.patch(`/matters/${matter.id}`, { name: 'X' })).status, 403);

    const tkChanged = ok(await api.patch(`/timekeepers/${tk.id}`, { classification: 'associate', name: 'Margaret Holloway-Smith' }));
    assert.deepEqual([tkChanged.classification, tkChanged.ledesClassification, tkChanged.name, tkChanged.rates.length], ['associate', 'AS', 'Margaret Holloway-Smith', 1]);
    ok(await api.patch(`/timekeepers/${tk.id}`, { active: false }));
    assert.equal(ok(await api.get('/timekeepers?active=false')).total, 1);
    const inactive = fields(await api.post('/time-entries', { matterId: matter.id, timekeeperId: tk.id, workDate: '2026-03-02', hours: '1', narrative: 'x' }));
    assert.match(inactive.timekeeperId!, /inactive/);
    assert.deepEqual(names(await api.patch(`/timekeepers/${tk.id}`, { initials: 'XX' })), ['initials']);
  });
});

eachDialect('billing options: effective, overridden and inherited, with decimal strings; set, inherit and auto-fill', async (db) => {
  await withApp(db, async (t) => {
    const api = await apiAs(t, 'billing');
    const { matter } = await firm(api);
    const start = ok(await api.get(`/matters/${matter.id}/billing-options`));
    assert.equal(start.currency, 'USD');
    assert.deepEqual(start.overridden, []);
    assert.ok(start.inherited.includes('quote') && start.inherited.includes('discount'));
    assert.deepEqual(start.effective.quote, { amount: null, includes: 'fees', ifWipBelow: 'wip_only', ifWipAbove: 'wip_only' });
    assert.deepEqual(start.effective.discount, { kind: 'none', percent: '0', amount: '0.00' });
    assert.deepEqual(start.effective.retainerReplenishment, { enabled: false, minimumBalance: '0.00', trigger: '0.00' });
    assert.equal(start.effective.feeAllocation.originationPercent, '0');

    const set = ok(await api.patch(`/matters/${matter.id}/billing-options`, {
      set: {
        arrangement: 'fixed_fee', quote: { amount: '1000.00' }, discount: { kind: 'percentage', percent: '12.5' },
        fixedFee: { mode: 'custom_schedule', schedule: [
          { amount: '400.00', description: 'On instruction', billOn: '2026-04-01' },
          { amount: '600.00', description: 'On completion', billOn: '2026-05-01', billOnStep: 'Completion' },
        ] },
      },
    }));
    assert.deepEqual([...set.overridden].sort(), ['arrangement', 'discount', 'fixedFee', 'quote']);
    assert.equal(set.inherited.includes('quote'), false);
    assert.deepEqual(set.effective.quote, { amount: '1000.00', includes: 'fees', ifWipBelow: 'wip_only', ifWipAbove: 'wip_only' }, 'a section is merged over the current one');
    assert.deepEqual(set.effective.discount, { kind: 'percentage', percent: '12.5', amount: '0.00' });
    assert.deepEqual(set.effective.fixedFee.schedule.map((r: any) => [r.amount, r.billOnStep, r.invoiceNumber]), [['400.00', null, null], ['600.00', 'Completion', null]]);
    assert.ok(set.effective.fixedFee.schedule.every((r: any) => typeof r.rowId === 'string' && r.rowId.length > 0), 'new rows get ids');
    assert.deepEqual(ok(await api.get(`/matters/${matter.id}/billing-options`)).effective, set.effective);
    const stored = await db.db.selectFrom('matters_matter_options').select('overrides_json').where('matter_id', '=', matter.id).executeTakeFirstOrThrow() as { overrides_json: string };
    assert.equal(JSON.parse(stored.overrides_json).quote.amountMinor, 100_000, 'stored exactly in minor units');

    const before = await snapshot(db);
    assert.deepEqual(names(await api.patch(`/matters/${matter.id}/billing-options`, { set: { quote: { amount: '10.001' } } })), ['set.quote.amount']);
    assert.deepEqual(names(await api.patch(`/matters/${matter.id}/billing-options`, { set: { quote: { amount: 10 } } })), ['set.quote.amount']);
    assert.deepEqual(names(await api.patch(`/matters/${matter.id}/billing-options`, { set: { discount: { percent: '101' } } })), ['set.discount.percent']);
    assert.deepEqual(names(await api.patch(`/matters/${matter.id}/billing-options`, { set: { colour: 'blue' } })), ['set.colour']);
    assert.deepEqual(names(await api.patch(`/matters/${matter.id}/billing-options`, { inherit: ['nope'] })), ['inherit.0']);
    assert.deepEqual(names(await api.patch(`/matters/${matter.id}/billing-options`, { set: { sendTo: ['not-an-email'] } })), ['set.sendTo.0']);
    assert.deepEqual(names(await api.patch(`/matters/${matter.id}/billing-options`, { set: { fixedFee: { mode: 'every_cycle' } }, inherit: ['quote'] })), ['set.quote.amount'],
      'a fixed fee billed every cycle needs a quote');
    assert.deepEqual(await snapshot(db), before);

    const inherited = ok(await api.patch(`/matters/${matter.id}/billing-options`, { inherit: ['discount'] }));
    assert.equal(inherited.overridden.includes('discount'), false);
    assert.deepEqual(inherited.effective.discount, { kind: 'none', percent: '0', amount: '0.00' });

    const filled = ok(await api.post(`/matters/${matter.id}/billing-options/auto-fill`, { firstAmount: '300.00', startDate: '2026-04-01' }));
    assert.deepEqual(filled.effective.fixedFee.schedule.map((r: any) => r.amount), ['300.00', '300.00', '300.00', '100.00']);
    assert.deepEqual(names(await api.post(`/matters/${matter.id}/billing-options/auto-fill`, { firstAmount: '2000.00' })), ['firstAmount']);

    const ro = await apiAs(t, 'readonly');
    ok(await ro.get(`/matters/${matter.id}/billing-options`));
    assert.equal((await ro.patch(`/matters/${matter.id}/billing-options`, { inherit: ['quote'] })).status, 403);
    assert.equal((await api.get('/matters/nope/billing-options')).status, 404);
  });
});

eachDialect('firm settings: everyone reads, only admin changes; inheriting matters follow; the WIP cap can refuse', async (db) => {
  await withApp(db, async (t) => {
    const admin = await apiAs(t, 'admin');
    const billing = await apiAs(t, 'billing');
    const { tk, matter } = await firm(billing);
    const s = ok(await billing.get('/settings/billing'));
    assert.equal(s.currency, 'USD');
    assert.deepEqual(s.taxRates.map((r: any) => [r.code, r.percent]), [['EXEMPT', '0'], ['SALES', '8.25']]);
    assert.deepEqual(s.interest, { enabled: false, annualRatePercent: '10', graceDays: 30 });
    assert.equal(s.matterDefaults.quote.amount, null);
    assert.equal((await billing.patch('/settings/billing', { paymentTermsDays: 14 })).status, 403);

    const before = await snapshot(db);
    assert.deepEqual(names(await admin.patch('/settings/billing', { taxRates: [{ code: 'GST', name: 'GST', percent: '10.123' }] })), ['taxRates.0.percent']);
    assert.deepEqual(names(await admin.patch('/settings/billing', { paymentTermsDays: -1 })), ['paymentTermsDays']);
    assert.deepEqual(names(await admin.patch('/settings/billing', { defaultFeeTaxCode: 'NOPE' })), ['defaultFeeTaxCode']);
    assert.deepEqual(names(await admin.patch('/settings/billing', { matterDefaults: { discount: { amount: '5.555' } } })), ['matterDefaults.discount.amount']);
    assert.deepEqual(await snapshot(db), before);

    const changed = ok(await admin.patch('/settings/billing', {
      paymentTermsDays: 14, taxRates: [{ code: 'EXEMPT', name: 'Exempt', percent: '0' }, { code: 'GST', name: 'GST', percent: '10' }],
      matterDefaults: { discount: { kind: 'fixed', amount: '50.00' } }, wipCapPolicy: 'refuse',
    }));
    assert.deepEqual([changed.paymentTermsDays, changed.wipCapPolicy, changed.mattersChanged], [14, 'refuse', 1]);
    assert.deepEqual(changed.matterDefaults.discount, { kind: 'fixed', percent: '0', amount: '50.00' });
    assert.deepEqual(ok(await billing.get(`/matters/${matter.id}/billing-options`)).effective.discount, { kind: 'fixed', percent: '0', amount: '50.00' });

    // Past the 500.00 cap is now refused: 2 h at 300.00 = 600.00.
    const wip = await snapshot(db);
    const over = await billing.post('/time-entries', { matterId: matter.id, timekeeperId: tk.id, workDate: '2026-03-02', hours: '2', narrative: 'Trial prep' });
    assert.equal(over.status, 422, over.text);
    assert.match(Object.values(over.json().error.fields).join(' '), /cap/);
    assert.deepEqual(await snapshot(db), wip);
    ok(await admin.patch('/settings/billing', { wipCapPolicy: 'warn' }));
    const warned = ok(await billing.post('/time-entries', { matterId: matter.id, timekeeperId: tk.id, workDate: '2026-03-02', hours: '2', narrative: 'Trial prep' }), 201);
    assert.equal(warned.amount, '600.00');
    assert.match(warned.warnings.join(' '), /over its WIP cap/);
    const m = ok(await billing.get(`/matters/${matter.id}`));
    assert.deepEqual(m.cap, { cap: '500.00', state: 'over', distance: '-100.00', mustBill: true, policy: 'warn' });
  });
});

eachDialect('the WIP cap counts work on a draft bill: drafting makes no room under a refusing cap, and deleting the draft leaves the matter where it was', async (db) => {
  await withApp(db, async (t) => {
    const admin = await apiAs(t, 'admin');
    const billing = await apiAs(t, 'billing');
    const { tk, matter } = await firm(billing);
    ok(await admin.patch('/settings/billing', { wipCapPolicy: 'refuse' }));
    const hour = { matterId: matter.id, timekeeperId: tk.id, workDate: '2026-03-02', hours: '1', narrative: 'Review the file' };
    ok(await billing.post('/time-entries', hour), 201);
    await t.runtime.relay.drain();
    const draft = ok(await billing.post('/bills', { matterId: matter.id, invoiceDate: '2026-03-31', upTo: '2026-03-31' }), 201);
    await t.runtime.relay.drain();
    // The 300.00 is on the draft, not billed: the cap (500.00) still counts it.
    assert.deepEqual(ok(await billing.get(`/matters/${matter.id}`)).cap, { cap: '500.00', state: 'under', distance: '200.00', mustBill: false, policy: 'refuse' });
    // The matter's page says where it is: no unbilled WIP, 300.00 on draft bills.
    const page = t.browser();
    await page.login((await t.user('readonly')).email);
    const html = (await page.get(`/matters/${matter.id}`)).text;
    assert.match(html, /data-total="wip" data-minor="0"/);
    assert.match(html, /data-total="on-drafts" data-minor="30000"/);
    // The matters list: "WIP at least" reads the Unbilled WIP column beside it (none here); the at-cap filter, the cap's measure.
    const listed = async (q: string) => (await page.get(`/matters?${q}`)).text.includes(`/matters/${matter.id}"`);
    assert.equal(await listed('wipAtLeast=100.00'), false, 'no unbilled WIP: not "at least 100.00"');
    assert.equal(await listed('wipAtLeast=0.00'), true);
    // Hours at 300.00 against 500.00, with the draft's 300.00 counted: 600.00 no; 450.00 yes; 510.00 no; 480.00 yes; 510.00 no.
    const table: [string, number][] = [['1', 422], ['0.5', 201], ['0.2', 422], ['0.1', 201], ['0.1', 422]];
    for (const [hours, status] of table) {
      const res = await billing.post('/time-entries', { ...hour, hours });
      assert.equal(res.status, status, `${hours} h: ${res.text}`);
      if (status === 422) assert.match(Object.values(res.json().error.fields).join(' '), /cap/);
    }
    assert.deepEqual(ok(await billing.get(`/matters/${matter.id}`)).cap, { cap: '500.00', state: 'under', distance: '20.00', mustBill: false, policy: 'refuse' });
    // Deleting the draft puts its item back: the matter is where it was (under its cap, not over it).
    ok(await billing.delete(`/bills/${draft.id}`));
    await t.runtime.relay.drain();
    assert.deepEqual(ok(await billing.get(`/matters/${matter.id}`)).cap, { cap: '500.00', state: 'under', distance: '20.00', mustBill: false, policy: 'refuse' });
  });
});

eachDialect('a matter billed in another currency takes no firm-currency rate or price: its own rate or an override, and a fixed charge\'s price given', async (db) => {
  await withApp(db, async (t) => {
    const api = await apiAs(t, 'billing');
    const { tk, client } = await firm(api);
    const type = ok(await api.post('/charge-types', { code: 'LEASE', name: 'Lease review', defaultPrice: '750.00' }), 201);
    ok(await api.put(`/clients/${client.id}/rates/${tk.id}`, { rate: '310.50' }));
    const jpy = ok(await api.post('/matters', { clientId: client.id, name: 'Tokyo lease', responsibleTimekeeperId: tk.id, openedOn: '2025-06-01', currency: 'JPY' }), 201);
    const entry = { matterId: jpy.id, timekeeperId: tk.id, workDate: '2026-03-02', hours: '1', narrative: 'Review the lease' };
    // USD 300.00 standard and 310.50 client rates are not read as yen: refused, naming the timekeeper and what to do.
    const refused = await api.post('/time-entries', entry);
    assert.equal(refused.status, 422, refused.text);
    assert.match(refused.json().error.fields.timekeeperId, /has no rate in JPY: the firm's standard and client rates are in USD/);
    const charge = await api.post('/fixed-charges', { matterId: jpy.id, chargeTypeId: type.id, chargedOn: '2026-03-02' });
    assert.equal(charge.status, 422, charge.text);
    assert.match(charge.json().error.fields.unitPrice, /is required: LEASE's default price is in USD and matter \d+\.\d+ bills in JPY/);
    // An override, a matter rate in yen, a price given: priced in yen.
    assert.equal(ok(await api.post('/time-entries', { ...entry, rate: '45000', rateReason: 'Agreed yen rate' }), 201).amount, '45000');
    ok(await api.patch(`/matters/${jpy.id}/billing-options`, { set: { customRatesEnabled: true } }));
    ok(await api.put(`/matters/${jpy.id}/rates/${tk.id}`, { rate: '42000' }));
    const priced = ok(await api.post('/time-entries', entry), 201);
    assert.deepEqual([priced.rate, priced.rateSource, priced.amount, priced.currency], ['42000', 'matter', '42000', 'JPY']);
    assert.equal(ok(await api.post('/fixed-charges', { matterId: jpy.id, chargeTypeId: type.id, chargedOn: '2026-03-02', unitPrice: '110000' }), 201).amount, '110000');
    // The matter's page offers the charge type at its firm-currency price, asking for a price in yen (not showing USD as yen).
    const page = t.browser();
    await page.login((await t.user('admin')).email);
    const html = (await page.get(`/matters/${jpy.id}`)).text;
    assert.match(html, /LEASE Lease review \(\$750\.00: give a price in JPY\)/);
    assert.match(html, /name="unitPrice"[^>]*placeholder="required"/);
    // The firm's own currency is priced as before.
    const usd = ok(await api.post('/matters', { clientId: client.id, name: 'Domestic', responsibleTimekeeperId: tk.id, openedOn: '2025-06-01' }), 201);
    assert.deepEqual(ok(await api.post('/time-entries', { ...entry, matterId: usd.id }), 201).amount, '310.50');
  });
});

eachDialect('charge types and fixed charges: decimal prices, list, change, delete, 409 once billed', async (db) => {
  await withApp(db, async (t) => {
    const api = await apiAs(t, 'billing');
    const { matter } = await firm(api);
    const type = ok(await api.post('/charge-types', { code: 'LEASE', name: 'Lease review', defaultPrice: '750.00', taskCode: 'L120' }), 201);
    assert.deepEqual([type.defaultPrice, type.currency, type.active], ['750.00', 'USD', true]);
    assert.deepEqual(names(await api.post('/charge-types', { code: 'LEASE', name: 'Again', defaultPrice: '1.00' })), ['code']);
    assert.deepEqual(names(await api.post('/charge-types', { code: 'X', name: 'X', defaultPrice: '1.001' })), ['defaultPrice']);
    const cheaper = ok(await api.patch(`/charge-types/${type.id}`, { defaultPrice: '700.00' }));
    assert.equal(cheaper.defaultPrice, '700.00');
    assert.deepEqual(ok(await api.get('/charge-types')).items.map((x: any) => x.code), ['LEASE']);

    const tkApi = await apiAs(t, 'timekeeper');
    const one = ok(await tkApi.post('/fixed-charges', { matterId: matter.id, chargedOn: '2026-02-10', chargeTypeId: type.id }), 201);
    assert.deepEqual([one.quantity, one.unitPrice, one.amount, one.description, one.taskCode, one.quoted], ['1', '700.00', '700.00', 'Lease review', 'L120', false]);
    assert.match(one.warnings.join(' '), /over its WIP cap/, '700.00 passes the 500.00 cap');
    const two = ok(await tkApi.post('/fixed-charges', { matterId: matter.id, chargedOn: '2026-02-11', chargeTypeId: type.id, quantity: '2', unitPrice: '700.50', description: 'Two leases' }), 201);
    assert.equal(two.amount, '1401.00');
    const list = ok(await api.get(`/fixed-charges?matterId=${matter.id}`));
    assert.deepEqual([list.total, list.items[0].id], [2, two.id]);
    const quoted = ok(await api.post('/fixed-charges', { matterId: matter.id, chargedOn: '2026-02-12', chargeTypeId: type.id, quoted: true }), 201);
    const wip = ok(await api.get(`/matters/${matter.id}`)).wip;
    assert.deepEqual([wip.fixedCharges, wip.total, wip.unbilledItems], ['2101.00', '2101.00', 3], 'a quoted product adds nothing to WIP');
    ok(await api.delete(`/fixed-charges/${quoted.id}`), 204);

    const before = await snapshot(db);
    assert.deepEqual(names(await api.post('/fixed-charges', { matterId: matter.id, chargedOn: '2026-02-11', chargeTypeId: type.id, unitPrice: '1.001' })), ['unitPrice']);
    assert.deepEqual(names(await api.post('/fixed-charges', { matterId: matter.id, chargedOn: '2026-02-11', chargeTypeId: 'nope' })), ['chargeTypeId']);
    assert.deepEqual(names(await api.post('/fixed-charges', { matterId: 'nope', chargedOn: '2026-02-11', chargeTypeId: type.id })), ['matterId']);
    assert.deepEqual(await snapshot(db), before);

    const changed = ok(await api.patch(`/fixed-charges/${one.id}`, { quantity: '3' }));
    assert.deepEqual([changed.quantity, changed.amount], ['3', '2100.00']);
    ok(await api.delete(`/fixed-charges/${one.id}`), 204);
    assert.equal((await api.get(`/fixed-charges/${one.id}`)).status, 404);
    await db.db.updateTable('matters_fixed_charge').set({ status: 'billed' }).where('id', '=', two.id).execute();
    assert.equal((await api.patch(`/fixed-charges/${two.id}`, { quantity: '1' })).status, 409);
    assert.equal((await api.delete(`/fixed-charges/${two.id}`)).status, 409);
    assert.equal((await tkApi.post('/charge-types', { code: 'Y', name: 'Y', defaultPrice: '1.00' })).status, 403);
  });
});

eachDialect('the OpenAPI document lists the change, contact, options, settings and fixed-charge routes', async (db) => {
  await withApp(db, async (t) => {
    const doc = (await t.browser().get('/api/openapi.json')).json();
    const expected: Record<string, Record<string, string[]>> = {
      '/api/v1/clients/{id}': { patch: ['admin', 'billing'] },
      '/api/v1/clients/{id}/contacts': { get: ['admin', 'billing', 'timekeeper', 'readonly'], post: ['admin', 'billing'] },
      '/api/v1/clients/{id}/contacts/{contactId}': { get: ['admin', 'billing', 'timekeeper', 'readonly'], patch: ['admin', 'billing'], delete: ['admin', 'billing'] },
      '/api/v1/timekeepers/{id}': { patch: ['admin', 'billing'] },
      '/api/v1/matters/{id}': { patch: ['admin', 'billing'] },
      '/api/v1/matters/{id}/close': { post: ['admin', 'billing'] },
      '/api/v1/matters/{id}/reopen': { post: ['admin', 'billing'] },
      '/api/v1/matters/{id}/participants': { get: ['admin', 'billing', 'timekeeper', 'readonly'], put: ['admin', 'billing'] },
      '/api/v1/matters/{id}/billing-options': { get: ['admin', 'billing', 'timekeeper', 'readonly'], patch: ['admin', 'billing'] },
      '/api/v1/matters/{id}/billing-options/auto-fill': { post: ['admin', 'billing'] },
      '/api/v1/settings/billing': { get: ['admin', 'billing'], patch: ['admin'] },
      '/api/v1/charge-types': { get: ['admin', 'billing', 'timekeeper', 'readonly'], post: ['admin', 'billing'] },
      '/api/v1/charge-types/{id}': { get: ['admin', 'billing', 'timekeeper', 'readonly'], patch: ['admin', 'billing'] },
      '/api/v1/fixed-charges': { get: ['admin', 'billing', 'timekeeper', 'readonly'], post: ['admin', 'billing', 'timekeeper'] },
      '/api/v1/fixed-charges/{id}': { get: ['admin', 'billing', 'timekeeper', 'readonly'], patch: ['admin', 'billing', 'timekeeper'], delete: ['admin', 'billing', 'timekeeper'] },
    };
    for (const [path, methods] of Object.entries(expected)) {
      for (const [m, roles] of Object.entries(methods)) {
        assert.ok(doc.paths[path]?.[m], `${m.toUpperCase()} ${path} is documented`);
        assert.deepEqual(doc.paths[path][m]['x-roles'], roles, `${m} ${path}`);
      }
    }
    const options = doc.paths['/api/v1/matters/{id}/billing-options'].patch.requestBody.content['application/json'].schema;
    assert.equal(options.properties.set.properties.quote.properties.amount.anyOf[0].type, 'string', 'amounts are decimal strings');
    assert.equal(options.properties.set.properties.discount.properties.percent.type, 'string');
    assert.equal(options.properties.set.additionalProperties, false);
    const settings = doc.paths['/api/v1/settings/billing'].get.responses['200'].content['application/json'].schema;
    assert.ok(settings.properties.matterDefaults.properties.retainerReplenishment.properties.minimumBalance);
  });
});

eachDialect('a change sent with the `seen` of what was read is refused (409) once someone changed it since: billing options, firm settings, charge types (review 57 F9)', async (db) => {
  await withApp(db, async (t) => {
    const api = await apiAs(t, 'admin');
    const client = ok(await api.post('/clients', { name: 'Seen Ltd' }), 201);
    const tk = ok(await api.post('/timekeepers', { initials: 'SN', name: 'Sam Seen', classification: 'partner' }), 201);
    const matter = ok(await api.post('/matters', { clientId: client.id, name: 'Seen matter', responsibleTimekeeperId: tk.id, openedOn: '2025-06-01' }), 201);

    // Billing options: A reads; B adds an instalment; A's change against what it read is refused, B's instalment kept.
    const read = ok(await api.get(`/matters/${matter.id}/billing-options`));
    assert.match(read.seen, /^[0-9a-f]{24}$/);
    const schedule = [{ amount: '1000.00', description: 'Stage 1', billOn: '2027-02-01' }];
    const b = ok(await api.patch(`/matters/${matter.id}/billing-options`, { set: { quote: { amount: '5000.00' }, fixedFee: { mode: 'custom_schedule', schedule: [...schedule, { amount: '2000.00', description: 'Stage 2', billOn: '2027-03-01' }] } }, seen: read.seen }));
    assert.notEqual(b.seen, read.seen, 'the fingerprint moves with the options');
    const stale = await api.patch(`/matters/${matter.id}/billing-options`, { set: { fixedFee: { schedule: [{ ...schedule[0]!, amount: '1200.00' }] } }, seen: read.seen });
    assert.equal(stale.status, 409, stale.text);
    assert.deepEqual(ok(await api.get(`/matters/${matter.id}/billing-options`)).effective.fixedFee.schedule.map((r: any) => r.amount), ['1000.00', '2000.00']);
    // Without `seen`, as before: the last change wins.
    ok(await api.patch(`/matters/${matter.id}/billing-options`, { inherit: ['discount'] }));

    // Firm settings.
    const s = ok(await api.get('/settings/billing'));
    ok(await api.patch('/settings/billing', { paymentTermsDays: 21, seen: s.seen }));
    const staleSettings = await api.patch('/settings/billing', { paymentTermsDays: 45, seen: s.seen });
    assert.equal(staleSettings.status, 409, staleSettings.text);
    assert.equal(ok(await api.get('/settings/billing')).paymentTermsDays, 21);

    // Charge types.
    const ct = ok(await api.post('/charge-types', { code: 'LEASE', name: 'Lease review', defaultPrice: '750.00' }), 201);
    ok(await api.patch(`/charge-types/${ct.id}`, { defaultPrice: '800.00', seen: ct.seen }));
    const staleType = await api.patch(`/charge-types/${ct.id}`, { name: 'Lease check', seen: ct.seen });
    assert.equal(staleType.status, 409, staleType.text);
    assert.deepEqual([ok(await api.get(`/charge-types/${ct.id}`)).name, ok(await api.get(`/charge-types/${ct.id}`)).defaultPrice], ['Lease review', '800.00']);
  });
});
