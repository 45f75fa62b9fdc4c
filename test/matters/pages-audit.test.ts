/**
 * The matters pages' audit findings, through the real app and a cookie-jar browser: the
 * matters list with a filter it cannot read, WIP edits that change only what the form
 * offers, range messages in the units typed, the import form keeping its input, the firm's
 * currency, the firm settings page (no matter rates; tax rows removed as it says) and the
 * billing options page (the settings link by role, the way back from the rate form).
 */
import assert from 'node:assert/strict';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { standardRatesOf } from '../../src/modules/matters/queries.ts';
import { validateDisbursement, validateFixedCharge, validateStandardRate } from '../../src/modules/matters/domain.ts';
import { systemContext } from '../../src/shared/events.ts';
import type { Role } from '../../src/shared/web/types.ts';
import { formFields, unescapeHtml, withApp } from '../support/app.ts';
import type { Browser, Page, TestApp } from '../support/app.ts';
import { eachDialect } from '../support/db.ts';

const ctx = systemContext('pages-audit-test', 'test');
const HX = { 'hx-request': 'true' };

async function firm(t: TestApp) {
  const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: { kick: () => undefined } });
  const mh = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  await cmds.setTimekeeperRate(ctx, { timekeeperId: mh.id, effectiveFrom: '2025-01-01', rateMinor: 32_000 });
  const northwind = await cmds.createClient(ctx, { name: 'Northwind Logistics Inc.' });
  const acme = await cmds.createClient(ctx, { name: 'Acme Widgets LLC' });
  const kestrel = await cmds.openMatter(ctx, { clientId: northwind.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: mh.id, openedOn: '2025-06-01' });
  const lease = await cmds.openMatter(ctx, { clientId: acme.id, name: 'Warehouse lease review', responsibleTimekeeperId: mh.id, openedOn: '2025-09-01' });
  await cmds.recordTimeEntry(ctx, { matterId: kestrel.id, timekeeperId: mh.id, workDate: '2026-02-27', rawMinutes: 60, narrative: 'Draft complaint' });
  return { cmds, mh, northwind, acme, kestrel, lease };
}

async function signedIn(t: TestApp, role: Role): Promise<Browser> {
  const u = await t.user(role);
  const b = t.browser();
  assert.equal((await b.login(u.email)).status, 303);
  return b;
}

function fieldError(p: Page | string, field: string): string {
  const text = typeof p === 'string' ? p : p.text;
  const m = new RegExp(`data-error-for="${field.replaceAll('.', '\\.')}"[^>]*>([^<]*)<`).exec(text);
  assert.ok(m, `an error shown for ${field}`);
  return unescapeHtml(m[1]!.trim());
}


function post(b: Browser, path: string, pairs: [string, string][]): Promise<Page> {
  return b.request('POST', path, {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams([...pairs, ['_csrf', b.csrf ?? '']]).toString(),
  });
}

async function auditCount(t: TestApp, action: string): Promise<number> {
  const r = await t.db.db.selectFrom('audit_log').select((eb) => eb.fn.countAll().as('n')).where('action', '=', action).executeTakeFirstOrThrow() as { n: number | string };
  return Number(r.n);
}

eachDialect('the matters list with a filter it cannot read keeps the list and names the filter by its input; htmx keeps the address bar in step', async (db) => {
  await withApp(db, async (t) => {
    await firm(t);
    const b = await signedIn(t, 'billing');

    for (const typed of ['abc', '$100']) {
      // htmx: the list (its #matters wrapper, filtered by the rest), and the error swapped in by the field.
      const hx = await b.get(`/matters?q=kestrel&wipAtLeast=${encodeURIComponent(typed)}`, HX);
      assert.equal(hx.status, 422, typed);
      assert.doesNotMatch(hx.text, /<html/i);
      assert.match(hx.text.trimStart(), /^<div id="matters">/, 'the list replaces the list');
      assert.match(hx.text, /Northwind v\. Kestrel/);
      assert.doesNotMatch(hx.text, /Warehouse lease review/, 'the other filters still apply');
      const slot = /<span id="filter-error-wipAtLeast"[^>]*hx-swap-oob="true"[^>]*>[\s\S]*?<\/span><\/span>/.exec(hx.text)?.[0] ?? '';
      assert.match(fieldError(slot, 'wipAtLeast'), /is not an amount/);
      assert.equal(hx.headers.get('hx-replace-url'), '/matters?q=kestrel', 'the address carries the filters applied');

      // The page: the form keeps what was typed with the error by the input, and the list is there.
      const full = await b.get(`/matters?wipAtLeast=${encodeURIComponent(typed)}`);
      assert.equal(full.status, 422);
      const form = /<form method="get" action="\/matters"[\s\S]*?<\/form>/.exec(full.text)?.[0] ?? '';
      assert.match(form, new RegExp(`name="wipAtLeast" value="${typed.replace('$', '\\$')}"[^>]*aria-invalid="true"`));
      assert.match(fieldError(form, 'wipAtLeast'), /is not an amount/);
      assert.match(full.text, /<div id="matters">[\s\S]*Northwind v\. Kestrel[\s\S]*Warehouse lease review/);
    }

    // Corrected: the list filters and the error slot comes back empty.
    const fixed = await b.get('/matters?q=&status=open&wipAtLeast=100.00&cap=', HX);
    assert.equal(fixed.status, 200);
    assert.match(fixed.text, /Northwind v\. Kestrel/);
    assert.doesNotMatch(fixed.text, /Warehouse lease review/);
    assert.match(fixed.text, /<span id="filter-error-wipAtLeast" class="filter-error" hx-swap-oob="true"><\/span>/);
    assert.equal(fixed.headers.get('hx-replace-url'), '/matters?status=open&wipAtLeast=100.00');
    // A bad date is named too, and the page (not htmx) sets no history header.
    const date = await b.get('/matters?nextFrom=soon');
    assert.equal(date.status, 422);
    assert.match(fieldError(date, 'nextFrom'), /date/);
    assert.match(date.text, /<div id="matters">/);
    assert.equal(date.headers.get('hx-replace-url'), null);
    // A date that is no date, a range ending before it starts, a timekeeper the firm does not have: named, not "No matters".
    for (const [qs, field, message] of [
      ['nextFrom=2026-02-30', 'nextFrom', /must be a date \(YYYY-MM-DD\)/],
      ['nextTo=2026-13-45', 'nextTo', /must be a date \(YYYY-MM-DD\)/],
      ['nextFrom=2027-01-01&nextTo=2026-01-01', 'nextTo', /must be on or after the date from \(2027-01-01\)/],
      ['timekeeperId=nope', 'timekeeperId', /is not one of the firm's timekeepers/],
    ] as const) {
      const res = await b.get(`/matters?${qs}`);
      assert.equal(res.status, 422, qs);
      assert.match(unescapeHtml(fieldError(res, field)), message, qs);
      // The list without that filter (the reversed range keeps its start, which leaves this matter out).
      if (field !== 'nextTo' || !qs.includes('nextFrom')) assert.match(res.text, /Northwind v\. Kestrel/, `${qs}: the list without that filter`);
    }
  });
});

eachDialect('editing a disbursement keeps its tax code; a fixed charge edit clears a blank task or activity code', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    const b = await signedIn(t, 'billing');
    const url = `/matters/${f.kestrel.id}`;

    const d = await f.cmds.recordDisbursement(ctx, {
      matterId: f.kestrel.id, incurredOn: '2026-02-27', code: 'COURT', unitCostMinor: 40_000, description: 'Filing fee', taxCode: 'SALES', payee: 'Clerk',
    });
    const edit = await b.get(`${url}/disbursements/${d.id}/edit`, HX);
    const fields = formFields(edit.text, `edit-disb-${d.id}`);
    assert.equal(fields.description, 'Filing fee');
    assert.equal(fields.taxCode, 'SALES', 'the edit row shows its tax code');
    // A form that does not carry the tax code (an older page, a script) keeps it.
    const { taxCode: _shown, ...withoutTax } = fields;
    const saved = await b.post(`${url}/disbursements/${d.id}`, { ...withoutTax, description: 'Court filing fee' });
    assert.equal(saved.status, 303);
    const after = await f.cmds.findDisbursement(d.id);
    assert.equal(after?.description, 'Court filing fee');
    assert.equal(after?.taxCode, 'SALES', 'what the form does not carry stays');
    assert.equal(after?.payee, 'Clerk');
    // A form that offers the tax code and leaves it blank clears it (opened again after the save: it carries the version it shows).
    const reopened = formFields((await b.get(`${url}/disbursements/${d.id}/edit`, HX)).text, `edit-disb-${d.id}`);
    assert.equal((await b.post(`${url}/disbursements/${d.id}`, { ...fields, version: reopened.version!, taxCode: '' })).status, 303);
    assert.equal((await f.cmds.findDisbursement(d.id))?.taxCode, null);

    const type = await f.cmds.createChargeType(ctx, { code: 'LEASE', name: 'Lease review', defaultPriceMinor: 15_000, taskCode: 'L120', activityCode: 'A104' });
    const fc = await f.cmds.recordFixedCharge(ctx, { matterId: f.kestrel.id, chargeTypeId: type.id, chargedOn: '2026-03-01' });
    assert.deepEqual([fc.taskCode, fc.activityCode], ['L120', 'A104']);
    const fixedEdit = await b.get(`${url}/fixed-charges/${fc.id}/edit`, HX);
    const ff = formFields(fixedEdit.text, `edit-fixed-${fc.id}`);
    assert.equal(ff.taskCode, 'L120');
    const before = await auditCount(t, 'matters.fixed_charge_updated');
    const cleared = await b.post(`${url}/fixed-charges/${fc.id}`, { ...ff, taskCode: '', activityCode: '' }, { headers: HX });
    assert.equal(cleared.status, 200);
    const fcAfter = await f.cmds.findFixedCharge(fc.id);
    assert.deepEqual([fcAfter?.taskCode, fcAfter?.activityCode], [null, null], 'blank means clear');
    assert.equal(fcAfter?.amountMinor, fc.amountMinor);
    assert.equal(await auditCount(t, 'matters.fixed_charge_updated'), before + 1);
    // Recording with a blank task still takes the charge type's codes.
    const added = await b.post(`${url}/fixed-charges`, { chargeTypeId: type.id, chargedOn: '2026-03-01', quantity: '1', taskCode: '', activityCode: '', behaviour: 'bill' });
    assert.equal(added.status, 303);
    const recorded = (await f.cmds.listFixedCharges(f.kestrel.id)).find((x) => x.id !== fc.id)!;
    assert.deepEqual([recorded.taskCode, recorded.activityCode], ['L120', 'A104']);
  });
});

eachDialect('range errors are said in what was typed: money in the currency, quantities as decimals; nothing changes', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    const b = await signedIn(t, 'billing');
    const noMinor = (msg: string) => assert.doesNotMatch(msg, /between|100000000|1000000000/, msg);

    await b.get(`/matters/timekeepers/${f.mh.id}`);
    const rate = await b.post(`/matters/timekeepers/${f.mh.id}/rates`, { effectiveFrom: '2026-01-01', rate: '5000000' });
    assert.equal(rate.status, 422);
    assert.equal(fieldError(rate, 'rate'), 'must be at most $1,000,000.00');
    const clientRate = await b.post(`/matters/clients/${f.northwind.id}/rates`, { timekeeperId: f.mh.id, rate: '1000000.01' });
    assert.equal(clientRate.status, 422);
    assert.equal(fieldError(clientRate, 'rate'), 'must be at most $1,000,000.00');
    assert.equal(fieldError(await b.post(`/matters/timekeepers/${f.mh.id}/rates`, { effectiveFrom: '2026-01-01', rate: '-5' }), 'rate'), 'must not be negative');

    const cap = await b.post('/matters', { clientId: f.northwind.id, name: 'Capped', responsibleTimekeeperId: f.mh.id, wipCap: '0' });
    assert.equal(cap.status, 422);
    assert.equal(fieldError(cap, 'wipCap'), 'must be more than 0');
    const editCap = await b.post(`/matters/${f.kestrel.id}/edit`, { name: 'Northwind v. Kestrel', responsibleTimekeeperId: f.mh.id, wipCap: '0' });
    assert.equal(editCap.status, 422);
    assert.equal(fieldError(editCap, 'wipCap'), 'must be more than 0');

    const url = `/matters/${f.kestrel.id}`;
    const disb = { incurredOn: '2026-03-01', code: 'COPY', unitCost: '0.10', description: 'Copies', behaviour: 'bill' };
    const zero = await b.post(`${url}/disbursements`, { ...disb, quantity: '0' }, { headers: HX });
    assert.equal(zero.status, 422);
    assert.equal(fieldError(zero, 'quantity'), 'must be more than 0');
    assert.equal(fieldError(await b.post(`${url}/disbursements`, { ...disb, quantity: '2000000' }, { headers: HX }), 'quantity'), 'must be at most 1000000');
    assert.equal(fieldError(await b.post(`${url}/disbursements`, { ...disb, quantity: '1', unitCost: '200000000' }, { headers: HX }), 'unitCost'), 'must be at most $100,000,000.00');
    const override = await b.post(`${url}/time`, { timekeeperId: f.mh.id, workDate: '2026-03-01', hours: '1', narrative: 'Call', overrideRate: '5000000', overrideReason: 'Agreed', behaviour: 'bill' }, { headers: HX });
    assert.equal(override.status, 422);
    assert.equal(fieldError(override, 'overrideRate'), 'must be at most $1,000,000.00');

    await b.get('/matters/charge-types');
    const price = await b.post('/matters/charge-types', { code: 'BIG', name: 'Big', defaultPrice: '100000000.01' });
    assert.equal(price.status, 422);
    assert.equal(fieldError(price, 'defaultPrice'), 'must be at most $100,000,000.00');
    const type = await f.cmds.createChargeType(ctx, { code: 'LEASE', name: 'Lease review', defaultPriceMinor: 15_000 });
    const fixedZero = await b.post(`${url}/fixed-charges`, { chargeTypeId: type.id, chargedOn: '2026-03-01', quantity: '0', behaviour: 'bill' }, { headers: HX });
    assert.equal(fieldError(fixedZero, 'quantity'), 'must be more than 0');

    // Nothing was changed by any of them.
    assert.equal((await f.cmds.listDisbursements(f.kestrel.id)).length, 0);
    assert.equal((await f.cmds.listFixedCharges(f.kestrel.id)).length, 0);
    assert.equal((await f.cmds.listTimeEntries(f.kestrel.id)).length, 1);
    assert.equal((await f.cmds.listChargeTypes()).length, 1);
    assert.equal((await f.cmds.findMatter(f.kestrel.id))?.wipCapMinor, null);

    // The domain, the backstop for any other caller, never quotes minor units or thousandths either.
    const e1 = validateStandardRate({ effectiveFrom: '2026-01-01', rateMinor: 100_000_001 });
    assert.equal(e1.rateMinor, 'is too large');
    const e2 = validateDisbursement({ incurredOn: '2026-01-01', code: 'X', unitCostMinor: -1, description: 'x', quantityMilli: 0 });
    assert.deepEqual([e2.unitCostMinor, e2.quantityMilli], ['must not be negative', 'must be more than 0']);
    assert.equal(validateFixedCharge({ chargedOn: '2026-01-01', chargeTypeId: 'x', quantityMilli: 1_000_000_001 }).quantityMilli, 'must be at most 1000000');
    await assert.rejects(f.cmds.openMatter(ctx, { clientId: f.northwind.id, name: 'X', responsibleTimekeeperId: f.mh.id, wipCapMinor: 0 }),
      (e: { fields: Record<string, string> }) => { assert.equal(e.fields.wipCapMinor, 'must be more than 0'); noMinor(e.fields.wipCapMinor!); return true; });
  });
});

eachDialect('the import form keeps the kind chosen and the CSV pasted when the file is refused', async (db) => {
  await withApp(db, async (t) => {
    const b = await signedIn(t, 'billing');
    await b.get('/matters/import');
    const csv = 'file_number,timekeeper,date,hours\n1.1,MH,2026-03-01,"open\n';
    const broken = await b.post('/matters/import/preview', { kind: 'time-entries', csv });
    assert.equal(broken.status, 422);
    assert.match(broken.text, /<option value="time-entries" selected>/);
    assert.match(broken.text, /<textarea name="csv"[^>]*>file_number,timekeeper,date,hours\n1\.1,MH,2026-03-01,&quot;open\n<\/textarea>/);
    const header = await b.post('/matters/import/preview', { kind: 'disbursements', csv: 'what,ever\n1,2\n' });
    assert.equal(header.status, 422);
    assert.match(header.text, /The header \(row 1\)/);
    assert.match(header.text, /<option value="disbursements" selected>/);
    assert.match(header.text, /<textarea name="csv"[^>]*>what,ever\n1,2\n<\/textarea>/);
    // Refused before the kind was read (no file): the kind is kept all the same.
    const none = await b.post('/matters/import/preview', { kind: 'matters', csv: '' });
    assert.equal(none.status, 422);
    assert.match(none.text, /Choose a CSV file/);
    assert.match(none.text, /<option value="matters" selected>/);
    // An unknown kind: the form falls back to the first, with the text kept.
    const kindless = await b.post('/matters/import/preview', { kind: 'invoices', csv: 'name\nX\n' });
    assert.equal(kindless.status, 422);
    assert.match(kindless.text, /Choose what the file holds/);
    assert.match(kindless.text, /<textarea name="csv"[^>]*>name\nX\n<\/textarea>/);
  });
});

eachDialect("the firm's currency: a new matter starts in it, and standard and client rates are typed and shown in it", async (db) => {
  await withApp(db, async (t) => {
    // The firm's currency is set before its rates and matters are (changed after, it is refused: their amounts would be read in it).
    await createMattersCommands({ db: t.db.db, clock: t.clock, relay: { kick: () => undefined } }).updateFirmSettings(ctx, { currency: 'GBP' });
    const f = await firm(t);
    await f.cmds.setClientRate(ctx, { clientId: f.northwind.id, timekeeperId: f.mh.id, rateMinor: 28_000 });
    const b = await signedIn(t, 'admin');

    const form = await b.get('/matters/new');
    assert.match(form.text, /name="currency" value="GBP"/);
    assert.match((await b.get('/matters/timekeepers')).text, /£320\.00/);
    const tk = await b.get(`/matters/timekeepers/${f.mh.id}`);
    assert.match(tk.text, /£320\.00/);
    assert.match(tk.text, /£280\.00/);
    assert.doesNotMatch(tk.text, /\$/);
    assert.match((await b.get(`/matters/clients/${f.northwind.id}`)).text, /£280\.00/);
    // A matter's options page: standard and client rates in the firm's currency, the matter's own rate in the matter's.
    const usd = await f.cmds.openMatter(ctx, { clientId: f.northwind.id, name: 'US matter', responsibleTimekeeperId: f.mh.id, openedOn: '2025-06-01', currency: 'USD' });
    await f.cmds.setBillingOptions(ctx, usd.id, { set: { customRatesEnabled: true } });
    await f.cmds.setMatterRate(ctx, { matterId: usd.id, timekeeperId: f.mh.id, rateMinor: 25_000 });
    const rates = /<div class="matter-rates">[\s\S]*?<\/table>/.exec((await b.get(`/matters/${usd.id}/billing-options`)).text)?.[0] ?? '';
    assert.match(rates, /£320\.00[\s\S]*£280\.00[\s\S]*\$250\.00/);
  });
});

eachDialect("a firm in a currency without decimals: its amounts are typed and read in it (30000 yen, not 300.00 dollars)", async (db) => {
  await withApp(db, async (t) => {
    await createMattersCommands({ db: t.db.db, clock: t.clock, relay: { kick: () => undefined } }).updateFirmSettings(ctx, { currency: 'JPY' });
    const f = await firm(t);
    const b = await signedIn(t, 'admin');
    await b.get(`/matters/timekeepers/${f.mh.id}`);
    assert.equal((await b.post(`/matters/timekeepers/${f.mh.id}/rates`, { effectiveFrom: '2026-01-01', rate: '30000' })).status, 303);
    assert.equal((await standardRatesOf(t.db.db, f.mh.id)).find((r) => r.effectiveFrom === '2026-01-01')?.rateMinor, 30_000);
    const cents = await b.post(`/matters/timekeepers/${f.mh.id}/client-rates`, { clientId: f.acme.id, rate: '250.50' });
    assert.equal(cents.status, 422);
    assert.match(fieldError(cents, 'rate'), /decimal places for JPY/);
    assert.equal((await b.post(`/matters/timekeepers/${f.mh.id}/client-rates`, { clientId: f.acme.id, rate: '25000' })).status, 303);
    assert.match((await b.get(`/matters/clients/${f.acme.id}`)).text, /¥25,000/);
    const filter = await b.get('/matters?wipAtLeast=1.5');
    assert.equal(filter.status, 422);
    assert.match(fieldError(filter, 'wipAtLeast'), /decimal places for JPY/);
    // A matter opened with the currency left blank: in yen, its WIP cap read in yen.
    await b.get('/matters/new');
    const opened = await b.post('/matters', { clientId: f.acme.id, name: 'Tokyo office', responsibleTimekeeperId: f.mh.id, wipCap: '500000', currency: '' });
    assert.equal(opened.status, 303);
    const m = await f.cmds.findMatter(opened.location!.split('/').pop()!);
    assert.deepEqual([m?.currency, m?.wipCapMinor], ['JPY', 500_000]);
  });
});

eachDialect('the firm settings page never offers matter rates; a tax row is removed by clearing its code', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    const admin = await signedIn(t, 'admin');
    await admin.get('/matters/settings');
    assert.equal((await admin.post('/matters/settings/defaults/custom-rates', { customRatesEnabled: 'on' })).status, 303);
    assert.equal((await f.cmds.getFirmSettings()).matterDefaults.customRatesEnabled, true);
    const settings = await admin.get('/matters/settings');
    assert.doesNotMatch(settings.text, /Rates on this matter/);
    assert.doesNotMatch(settings.text, /action="\/matters\/\/rates"/);
    // The matter page inheriting the default does offer them.
    assert.match((await admin.get(`/matters/${f.kestrel.id}/billing-options`)).text, /Rates on this matter/);

    // The page shows EXEMPT and SALES: clearing SALES's code removes it (its name and rate still typed).
    const page = await admin.get('/matters/settings');
    assert.match(page.text, /name="taxRates\.saved" value="SALES"/);
    const general: [string, string][] = [
      ['currency', 'USD'], ['defaultFeeTaxCode', 'EXEMPT'], ['taxRounding', 'per_line'], ['paymentTermsDays', '30'], ['timeUnitMinutes', '6'],
      ['timeRounding', 'up'], ['wipCapPolicy', 'warn'], ['postingOutsideCurrentPeriod', 'warn'], ['interest.annualRateBasisPoints', '0'], ['interest.graceDays', '0'],
    ];
    const rows = (r: [string, string, string, string][]): [string, string][] =>
      r.flatMap(([saved, code, name, rate]) => [['taxRates.saved', saved], ['taxRates.code', code], ['taxRates.name', name], ['taxRates.basisPoints', rate]] as [string, string][]);
    // A new row with a name but no code is named, not dropped.
    const newRow = await post(admin, '/matters/settings/general', [...general, ...rows([['EXEMPT', 'EXEMPT', 'Exempt', '0'], ['SALES', 'SALES', 'Sales tax', '8.25'], ['', '', 'GST', '10']])]);
    assert.equal(newRow.status, 422);
    assert.ok(fieldError(newRow, 'taxRates.2.code'));
    const before = await auditCount(t, 'matters.firm_settings_changed');
    const removed = await post(admin, '/matters/settings/general', [...general, ...rows([['EXEMPT', 'EXEMPT', 'Exempt', '0'], ['SALES', '', 'Sales tax', '8.25'], ['', '', '', '']])]);
    assert.equal(removed.status, 303, removed.text.slice(0, 0));
    assert.deepEqual((await f.cmds.getFirmSettings()).taxRates, [{ code: 'EXEMPT', name: 'Exempt', basisPoints: 0 }]);
    assert.equal(await auditCount(t, 'matters.firm_settings_changed'), before + 1);
    assert.doesNotMatch((await admin.get('/matters/settings')).text, /value="SALES"/);
  });
});

eachDialect("the billing options page links to the firm's settings only for those who may open them; the rate form keeps the way back", async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    const url = `/matters/${f.kestrel.id}/billing-options`;
    for (const role of ['readonly', 'timekeeper'] as const) {
      const other = await signedIn(t, role);
      const page = await other.get(url);
      assert.equal(page.status, 200);
      assert.doesNotMatch(page.text, /href="\/matters\/settings"/, role);
      assert.match(unescapeHtml(page.text), /follows the firm's billing settings until/, role);
    }
    const b = await signedIn(t, 'billing');
    assert.match(unescapeHtml((await b.get(url)).text), /<a href="\/matters\/settings">firm's billing settings<\/a>/);

    await f.cmds.setBillingOptions(ctx, f.kestrel.id, { set: { customRatesEnabled: true } });
    const back = `${url}?back=%2Fbilling%2Fproduction`;
    const page = await b.get(back);
    assert.match(page.text, new RegExp(`<form method="post" action="/matters/${f.kestrel.id}/rates\\?back=%2Fbilling%2Fproduction"`));
    const bad = await b.post(`/matters/${f.kestrel.id}/rates?back=%2Fbilling%2Fproduction`, { timekeeperId: f.mh.id, rate: 'abc' });
    assert.equal(bad.status, 422);
    assert.match(bad.text, /href="\/billing\/production" data-back/);
    const set = await b.post(`/matters/${f.kestrel.id}/rates?back=%2Fbilling%2Fproduction`, { timekeeperId: f.mh.id, rate: '250.00' });
    assert.equal(set.status, 303);
    assert.equal(set.location, `${back}#bo-custom-rates`);
  });
});
