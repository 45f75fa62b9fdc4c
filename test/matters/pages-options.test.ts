/**
 * The matter billing options page (seed 002) and the firm's billing settings page, through
 * the real app: every section shows whether it follows the firm or is overridden, a save
 * round-trips, "Use firm default" goes back to inheriting, command errors land next to
 * their inputs, and the fixed-fee schedule rows are added, deleted and auto-filled.
 */
import assert from 'node:assert/strict';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { systemContext } from '../../src/shared/events.ts';
import type { Role } from '../../src/shared/web/types.ts';
import { unescapeHtml, withApp } from '../support/app.ts';
import type { Browser, Page, TestApp } from '../support/app.ts';
import { eachDialect } from '../support/db.ts';

const ctx = systemContext('options-pages-test', 'test');

async function firm(t: TestApp) {
  const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: { kick: () => undefined } });
  const mh = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  await cmds.setTimekeeperRate(ctx, { timekeeperId: mh.id, effectiveFrom: '2025-01-01', rateMinor: 32_000 });
  const client = await cmds.createClient(ctx, { name: 'Northwind Logistics Inc.', email: 'ap@northwind.example' });
  const matter = await cmds.openMatter(ctx, {
    clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: mh.id, openedOn: '2026-01-15', billingCycle: 'MONTH',
    nextBillingDate: '2026-04-01',
  });
  const other = await cmds.openMatter(ctx, { clientId: client.id, name: 'Northwind lease', responsibleTimekeeperId: mh.id });
  return { cmds, mh, client, matter, other };
}

async function signedIn(t: TestApp, role: Role): Promise<Browser> {
  const u = await t.user(role);
  const b = t.browser();
  assert.equal((await b.login(u.email)).status, 303);
  return b;
}

/** The HTML of one section of the options page. */
function section(html: string, key: string): string {
  const start = html.indexOf(`<section id="bo-${key}"`);
  assert.ok(start >= 0, `section ${key} on the page`);
  const end = html.indexOf('</section>', start);
  return html.slice(start, end);
}

function status(html: string, key: string): string {
  return /data-status="(\w+)"/.exec(section(html, key))?.[1] ?? 'none';
}

function fieldError(p: Page | string, field: string): string {
  const text = typeof p === 'string' ? p : p.text;
  const m = new RegExp(`data-error-for="${field.replaceAll('.', '\\.')}"[^>]*>([^<]*)<`).exec(text);
  assert.ok(m, `an error shown for ${field}`);
  return unescapeHtml(m[1]!.trim());
}

const DISCOUNT = { 'discount.kind': 'percentage', 'discount.percentBasisPoints': '12.5', 'discount.amountMinor': '' };

eachDialect('the billing options page has the seed sections, each inherited until saved; a save round-trips and "Use firm default" inherits again', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    const b = await signedIn(t, 'billing');
    const url = `/matters/${f.matter.id}/billing-options`;
    const page = await b.get(url);
    assert.equal(page.status, 200);
    for (const title of ['Matter billing', 'Custom matter rates', 'General retainer', 'Retainer replenishment', 'Trust accounting',
      'Mass billing settings', 'Billing arrangement', 'Discount', 'Fee allocation', 'E-billing']) {
      assert.match(page.text, new RegExp(`<h2>${title}</h2>`), title);
    }
    for (const key of ['matter-billing', 'custom-rates', 'retainer-replenishment', 'trust', 'mass-billing', 'arrangement', 'discount', 'fee-allocation', 'ebilling']) {
      assert.equal(status(page.text, key), 'inherited', key);
    }
    // Seed options are all offered.
    for (const label of ['Use matter status for billing', 'Active for billing', 'Closed for billing', 'Do not print', 'Bill quoted amount plus WIP',
      'Fees and costs', 'Every billing cycle', 'Custom schedule', 'Pro-rate', 'Based on original fee split', 'Enable origination fee', 'LEDES 1998B']) {
      assert.match(unescapeHtml(page.text), new RegExp(label), label);
    }
    assert.match(section(page.text, 'matter-billing'), /ap@northwind\.example/, "the client's address is shown by its checkbox");
    assert.match(section(page.text, 'general-retainer'), /must be enabled in the firm's billing settings/);

    // A percentage discount of 12.5% is saved as 1250 basis points and shown again as 12.5.
    const saved = await b.post(`${url}/discount`, DISCOUNT);
    assert.equal(saved.status, 303);
    const done = new RegExp(`^${url.replace(/[/.]/g, '\\$&')}\\?done=[\\w-]+#bo-discount$`);
    assert.match(saved.location ?? '', done);
    // Without JavaScript the page it is sent back to says what the save said (once it is read, by its key).
    assert.match(section((await b.get(saved.location!.split('#')[0]!)).text, 'discount'), /Saved: this section is now overridden for this matter\./);
    assert.doesNotMatch(section((await b.get(url)).text, 'discount'), /Saved: this section/, 'not without the key');
    const after = await b.get(url);
    assert.equal(status(after.text, 'discount'), 'overridden');
    assert.match(section(after.text, 'discount'), /name="discount\.percentBasisPoints" value="12\.5"/);
    assert.match(section(after.text, 'discount'), /value="percentage" checked/);
    assert.match(section(after.text, 'discount'), /Use firm default/);
    assert.equal(status(after.text, 'fee-allocation'), 'inherited', 'other sections still inherit');
    const options = await f.cmds.getBillingOptions(f.matter.id);
    assert.deepEqual(options.effective.discount, { kind: 'percentage', percentBasisPoints: 1250, amountMinor: 0 });
    assert.deepEqual(options.overridden, ['discount']);
    assert.deepEqual((await f.cmds.getBillingOptions(f.other.id)).overridden, [], 'only this matter');

    // Through htmx the response is the section alone.
    const hx = await b.post(`${url}/matter-billing`, {
      billingEnabled: 'on', billingStatus: 'active', billTemplate: 'itemised', sendTo: 'ap@northwind.example, cfo@northwind.example',
      emailTemplate: 'standard', copiesToPrint: '0',
    }, { headers: { 'hx-request': 'true' } });
    assert.equal(hx.status, 200);
    assert.doesNotMatch(hx.text, /<html/);
    assert.match(hx.text.trimStart(), /^(<!--.*?-->\s*)?<section id="bo-matter-billing"/s);
    assert.match(hx.text, /data-status="overridden"/);
    assert.match(hx.text, /value="ap@northwind\.example, cfo@northwind\.example"/);
    const mb = (await f.cmds.getBillingOptions(f.matter.id)).effective;
    assert.deepEqual(mb.sendTo, ['ap@northwind.example', 'cfo@northwind.example']);
    assert.equal(mb.useClientAddress, false, 'an unticked checkbox is false');
    assert.equal(mb.copiesToPrint, 0);
    assert.equal(mb.billingStatus, 'active');

    // Use firm default: the section inherits again and shows the firm's value.
    const reset = await b.post(`${url}/discount/reset`, {});
    assert.equal(reset.status, 303);
    const inherited = await b.get(url);
    assert.equal(status(inherited.text, 'discount'), 'inherited');
    assert.match(section(inherited.text, 'discount'), /value="none" checked/);
    assert.doesNotMatch(section(inherited.text, 'discount'), /Use firm default/);
    assert.deepEqual((await f.cmds.getBillingOptions(f.matter.id)).overridden,
      ['billingEnabled', 'billingStatus', 'billTemplate', 'sendTo', 'useClientAddress', 'emailTemplate', 'copiesToPrint'], 'the matter billing section stays overridden');
    const hxReset = await b.post(`${url}/matter-billing/reset`, {}, { headers: { 'hx-request': 'true' } });
    assert.equal(hxReset.status, 200);
    assert.match(hxReset.text, /data-status="inherited"/);
    assert.match(hxReset.text, /Now following the firm&#39;s default/);
    assert.deepEqual((await f.cmds.getBillingOptions(f.matter.id)).overridden, []);
  });
});

eachDialect('command validation errors appear next to the right inputs and change nothing', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    const b = await signedIn(t, 'admin');
    const url = `/matters/${f.matter.id}/billing-options`;
    await b.get(url);

    const zero = await b.post(`${url}/discount`, { ...DISCOUNT, 'discount.percentBasisPoints': '0' });
    assert.equal(zero.status, 422);
    assert.match(fieldError(section(zero.text, 'discount'), 'discount.percentBasisPoints'), /between 0.01% and 100%/);
    assert.match(section(zero.text, 'discount'), /aria-invalid="true"/);
    const typo = await b.post(`${url}/discount`, { ...DISCOUNT, 'discount.percentBasisPoints': '12.345' });
    assert.equal(typo.status, 422);
    assert.match(fieldError(typo, 'discount.percentBasisPoints'), /at most 2 decimal places/);

    const emails = await b.post(`${url}/matter-billing`, {
      billingEnabled: 'on', billingStatus: 'use_matter_status', billTemplate: 'standard', sendTo: 'ap@northwind.example, not an email',
      emailTemplate: 'standard', copiesToPrint: '1',
    }, { headers: { 'hx-request': 'true' } });
    assert.equal(emails.status, 422);
    assert.match(fieldError(emails, 'sendTo.1'), /not an email address/);
    assert.match(emails.text, /value="ap@northwind\.example, not an email"/, 'what was typed is kept');

    const origination = await b.post(`${url}/fee-allocation`, {
      'feeAllocation.allocateFees': 'pro_rata', 'feeAllocation.allocateAdjustments': 'original_split', 'feeAllocation.originationEnabled': 'on',
      'feeAllocation.originationBasisPoints': '10',
    });
    assert.equal(origination.status, 422);
    assert.match(fieldError(origination, 'feeAllocation.originatorTimekeeperId'), /is required when the origination fee is on/);

    // Billing cannot be turned off while items remain (the seed's rule), shown by the checkbox.
    await f.cmds.recordTimeEntry(ctx, { matterId: f.matter.id, timekeeperId: f.mh.id, workDate: '2026-03-01', rawMinutes: 30, narrative: 'Call' });
    const off = await b.post(`${url}/matter-billing`, {
      billingStatus: 'use_matter_status', billTemplate: 'standard', sendTo: '', useClientAddress: 'on', emailTemplate: 'standard', copiesToPrint: '1',
    });
    assert.equal(off.status, 422);
    assert.match(fieldError(off, 'billingEnabled'), /can not turn this off/);

    assert.deepEqual((await f.cmds.getBillingOptions(f.matter.id)).overridden, [], 'nothing was saved');
  });
});

eachDialect('the fixed-fee schedule: add and delete rows in the form, auto-fill from the quote, save round-trips', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    const b = await signedIn(t, 'billing');
    const url = `/matters/${f.matter.id}/billing-options`;
    await b.get(url);
    const base = {
      arrangement: 'fixed_fee', defaultTimeEntryBehaviour: 'bill', 'quote.amountMinor': '1,000.00', 'quote.includes': 'fees',
      'quote.ifWipBelow': 'bill_quote', 'quote.ifWipAbove': 'bill_quote', 'feeReductions.appearAsDiscount': 'on', 'fixedFee.mode': 'custom_schedule',
    };

    // Auto-fill with 90.00: 11 rows of 90.00 and one of 10.00, a month apart from the next billing date.
    const filled = await b.post(`${url}/arrangement`, { ...base, autoFillAmount: '90.00', _action: 'autofill' }, { headers: { 'hx-request': 'true' } });
    assert.equal(filled.status, 200);
    assert.match(filled.text, /Auto-filled: 12 instalments/);
    const o = (await f.cmds.getBillingOptions(f.matter.id)).effective;
    assert.equal(o.arrangement, 'fixed_fee');
    assert.equal(o.quote.amountMinor, 100_000);
    assert.deepEqual(o.fixedFee.schedule.map((r) => r.amountMinor), [...Array(11).fill(9_000), 1_000]);
    assert.deepEqual(o.fixedFee.schedule.slice(0, 2).map((r) => r.billOn), ['2026-04-01', '2026-05-01']);
    assert.equal((filled.text.match(/name="fixedFee\.schedule\.amountMinor"/g) ?? []).length, 12);
    assert.match(filled.text, /<strong>1000\.00<\/strong>/, 'the schedule total');

    const rowFields = (rows: { rowId: string; amountMinor: string; description: string; billOn: string }[]) => {
      const sp = new URLSearchParams(Object.entries(base));
      for (const r of rows) {
        sp.append('fixedFee.schedule.rowId', r.rowId);
        sp.append('fixedFee.schedule.amountMinor', r.amountMinor);
        sp.append('fixedFee.schedule.description', r.description);
        sp.append('fixedFee.schedule.billOn', r.billOn);
        sp.append('fixedFee.schedule.billOnStep', '');
        sp.append('fixedFee.schedule.payOnStep', '');
      }
      return sp;
    };
    const post = (sp: URLSearchParams, action: string) => {
      sp.set('_action', action);
      sp.set('_csrf', b.csrf!);
      return b.request('POST', `${url}/arrangement`, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: sp.toString() });
    };
    const two = [
      { rowId: o.fixedFee.schedule[0]!.rowId, amountMinor: '600.00', description: 'On signing', billOn: '2026-04-01' },
      { rowId: '', amountMinor: '400.00', description: 'On completion', billOn: '2026-06-01' },
    ];
    // Add row: one more (empty) row in the form, nothing saved yet.
    const added = await post(rowFields(two), 'add-row');
    assert.equal(added.status, 200);
    assert.equal((added.text.match(/name="fixedFee\.schedule\.amountMinor"/g) ?? []).length, 3);
    assert.match(added.text, /Not saved yet/);
    assert.equal((await f.cmds.getBillingOptions(f.matter.id)).effective.fixedFee.schedule.length, 12);
    // Delete row (X) removes the row from the form.
    const deleted = await post(rowFields([...two, { rowId: '', amountMinor: '', description: '', billOn: '2026-06-01' }]), 'delete-row:2');
    assert.equal((deleted.text.match(/name="fixedFee\.schedule\.amountMinor"/g) ?? []).length, 2);
    // A bad amount in row 2 is shown in that row.
    const bad = await post(rowFields([two[0]!, { ...two[1]!, amountMinor: '4OO' }]), 'save');
    assert.equal(bad.status, 422);
    assert.match(fieldError(bad, 'fixedFee.schedule.1.amountMinor'), /not an amount/);
    // Two rows sent with one row id (a crafted or garbled form) are refused at the second row, saying why.
    const dup = await post(rowFields([two[0]!, { ...two[1]!, rowId: two[0]!.rowId }]), 'save');
    assert.equal(dup.status, 422);
    assert.match(fieldError(dup, 'fixedFee.schedule.1.rowId'), /Instalment 2: its row id is used by another instalment; reload the page/);
    // Save keeps exactly the two rows.
    const ok = await post(rowFields(two), 'save');
    assert.equal(ok.status, 303);
    const schedule = (await f.cmds.getBillingOptions(f.matter.id)).effective.fixedFee.schedule;
    assert.deepEqual(schedule.map((r) => [r.amountMinor, r.description, r.billOn]), [[60_000, 'On signing', '2026-04-01'], [40_000, 'On completion', '2026-06-01']]);
    assert.equal(schedule[0]!.rowId, two[0]!.rowId, 'an existing row keeps its id');
    assert.ok(schedule[1]!.rowId, 'a new row gets an id');
  });
});

eachDialect('custom matter rates can be set only when the matter turns them on; the rate then prices new time', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    const b = await signedIn(t, 'billing');
    const url = `/matters/${f.matter.id}/billing-options`;
    await b.get(url);
    const refused = await b.post(`/matters/${f.matter.id}/rates`, { timekeeperId: f.mh.id, rate: '250.00' });
    assert.equal(refused.status, 422);
    assert.match(refused.text, /turn on custom matter rates first/);
    assert.equal((await b.post(`${url}/custom-rates`, { customRatesEnabled: 'on' })).status, 303);
    const page = await b.get(url);
    assert.match(section(page.text, 'custom-rates'), /Rates on this matter/);
    assert.match(section(page.text, 'custom-rates'), /\$320\.00/, 'the standard rate is shown');
    const set = await b.post(`/matters/${f.matter.id}/rates`, { timekeeperId: f.mh.id, rate: '250.00' });
    assert.equal(set.status, 303);
    const entry = await f.cmds.recordTimeEntry(ctx, { matterId: f.matter.id, timekeeperId: f.mh.id, workDate: '2026-03-01', rawMinutes: 60, narrative: 'Call' });
    assert.equal(entry.rateMinor, 25_000);
    assert.equal(entry.rateSource, 'matter');
  });
});

eachDialect('firm billing settings: readable by billing, changed only by admin; matter defaults flow to inheriting matters', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    for (const role of ['timekeeper', 'readonly'] as const) {
      const other = await signedIn(t, role);
      assert.equal((await other.get('/matters/settings')).status, 403, role);
      assert.equal((await other.get(`/matters/${f.matter.id}/billing-options`)).status, 200, `${role} reads a matter's options`);
      assert.equal((await other.post(`/matters/${f.matter.id}/billing-options/discount`, DISCOUNT)).status, 403, role);
    }
    const billing = await signedIn(t, 'billing');
    const view = await billing.get('/matters/settings');
    assert.equal(view.status, 200);
    assert.match(view.text, /Only an administrator can change them/);
    assert.doesNotMatch(view.text, /<button type="submit">Save general settings/);
    assert.equal((await billing.post('/matters/settings/general', { currency: 'USD' })).status, 403);
    assert.equal((await billing.post('/matters/settings/defaults/discount', DISCOUNT)).status, 403);

    const admin = await signedIn(t, 'admin');
    const page = await admin.get('/matters/settings');
    assert.match(page.text, /Save general settings/);
    assert.match(page.text, /name="taxRates\.code" value="SALES"/);
    // A firm default discount reaches every matter that inherits it.
    const saved = await admin.post('/matters/settings/defaults/discount', { 'discount.kind': 'fixed', 'discount.amountMinor': '50.00', 'discount.percentBasisPoints': '' });
    assert.equal(saved.status, 303);
    assert.deepEqual((await f.cmds.getFirmSettings()).matterDefaults.discount, { kind: 'fixed', percentBasisPoints: 0, amountMinor: 5_000 });
    const matterPage = await admin.get(`/matters/${f.matter.id}/billing-options`);
    assert.equal(status(matterPage.text, 'discount'), 'inherited');
    assert.match(section(matterPage.text, 'discount'), /name="discount\.amountMinor" value="50\.00"/);

    // General settings round-trip; a bad value is named.
    const general = {
      currency: 'USD', 'taxRates.code': 'EXEMPT', 'taxRates.name': 'Exempt', 'taxRates.basisPoints': '0', defaultFeeTaxCode: 'EXEMPT',
      taxRounding: 'per_bill', paymentTermsDays: '14', timeUnitMinutes: '6', timeRounding: 'up', wipCapPolicy: 'refuse',
      postingOutsideCurrentPeriod: 'warn', 'interest.annualRateBasisPoints': '8.25', 'interest.graceDays': '30',
    };
    const bad = await admin.post('/matters/settings/general', { ...general, defaultFeeTaxCode: 'VAT' });
    assert.equal(bad.status, 422);
    assert.match(fieldError(bad, 'defaultFeeTaxCode'), /must be one of the tax codes: EXEMPT/);
    const ok = await admin.post('/matters/settings/general', general);
    assert.equal(ok.status, 303);
    const s = await f.cmds.getFirmSettings();
    assert.equal(s.paymentTermsDays, 14);
    assert.equal(s.wipCapPolicy, 'refuse');
    assert.equal(s.taxRounding, 'per_bill');
    assert.deepEqual(s.taxRates, [{ code: 'EXEMPT', name: 'Exempt', basisPoints: 0 }]);
    assert.equal(s.interest.annualRateBasisPoints, 825);
    assert.equal(s.interest.enabled, false);
  });
});

eachDialect('two tabs: a settings, billing options or charge type form saved against what changed since is refused (409), not silently put back; the firm currency does not change under amounts kept in it', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    const admin = await signedIn(t, 'admin');
    const hidden = (html: string, name: string, within?: string) => {
      const part = within ? section(html, within) : html;
      const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(part);
      assert.ok(m, `a ${name} in the form`);
      return m[1]!;
    };

    // Firm general settings: both tabs opened showing the same settings; the second save is refused and the first's change stays.
    const general = {
      currency: 'USD', 'taxRates.code': 'SALES', 'taxRates.name': 'Sales tax', 'taxRates.basisPoints': '8.25', defaultFeeTaxCode: 'SALES',
      taxRounding: 'per_line', paymentTermsDays: '30', timeUnitMinutes: '6', timeRounding: 'up', wipCapPolicy: 'warn',
      postingOutsideCurrentPeriod: 'warn', 'interest.annualRateBasisPoints': '0', 'interest.graceDays': '0',
    };
    const generalSeen = (html: string) => /id="firm-general"[^]*?name="seen" value="([^"]+)"/.exec(html)![1]!;
    const tab1 = await admin.get('/matters/settings');
    const tab2 = await admin.get('/matters/settings');
    const v = generalSeen(tab1.text);
    assert.equal(generalSeen(tab2.text), v);
    assert.equal((await admin.post('/matters/settings/general', { ...general, seen: v, paymentTermsDays: '45' })).status, 303);
    const stale = await admin.post('/matters/settings/general', { ...general, seen: v, 'interest.annualRateBasisPoints': '12' });
    assert.equal(stale.status, 409);
    assert.match(stale.text, /changed by someone else since you opened them/);
    assert.equal((await f.cmds.getFirmSettings()).paymentTermsDays, 45, 'tab 1\'s change stays');
    assert.equal((await f.cmds.getFirmSettings()).interest.annualRateBasisPoints, 0);
    // The refused form keeps what was typed, at what is current: saved again, knowingly, it applies.
    assert.match(stale.text, /name="interest\.annualRateBasisPoints" value="12"/);
    assert.equal((await admin.post('/matters/settings/general', { ...general, seen: generalSeen(stale.text), 'interest.annualRateBasisPoints': '12' })).status, 303);
    assert.equal((await f.cmds.getFirmSettings()).interest.annualRateBasisPoints, 1_200);
    // A form refused for what was typed (422) keeps the fingerprint it carried: a change made meanwhile is still caught (review 56, M1).
    const before422 = await admin.get('/matters/settings');
    const seen422 = generalSeen(before422.text);
    const typo = await admin.post('/matters/settings/general', { ...general, seen: seen422, paymentTermsDays: 'x', 'interest.annualRateBasisPoints': '12' });
    assert.equal(typo.status, 422);
    assert.equal(generalSeen(typo.text), seen422);
    await f.cmds.updateFirmSettings(ctx, { paymentTermsDays: 60 });
    assert.equal((await admin.post('/matters/settings/general', { ...general, seen: generalSeen(typo.text), 'interest.annualRateBasisPoints': '12' })).status, 409);
    assert.equal((await f.cmds.getFirmSettings()).paymentTermsDays, 60, 'the other change stands');

    // Each form on the page carries its own part: saving one (htmx, the page not reloaded) leaves the others' saves good (review 56, H1).
    const onePage = await admin.get('/matters/settings');
    assert.equal((await admin.post('/matters/settings/defaults/discount', { ...DISCOUNT, seen: hidden(onePage.text, 'seen', 'discount') }, { headers: { 'hx-request': 'true' } })).status, 200);
    assert.equal((await admin.post('/matters/settings/general', { ...general, paymentTermsDays: '60', seen: generalSeen(onePage.text), 'interest.annualRateBasisPoints': '12' }, { headers: { 'hx-request': 'true' } })).status, 200);
    assert.equal((await admin.post('/matters/settings/defaults/mass-billing', { seen: hidden(onePage.text, 'seen', 'mass-billing'), 'massBilling.onlyExpenses': 'on' }, { headers: { 'hx-request': 'true' } })).status, 200);
    assert.deepEqual((await f.cmds.getFirmSettings()).matterDefaults.massBilling, { exclude: false, onlyExpenses: true });

    // A matter-defaults section on the firm page: the same.
    const defaults = await admin.get('/matters/settings');
    const seen = hidden(defaults.text, 'seen', 'mass-billing');
    assert.equal((await admin.post('/matters/settings/defaults/mass-billing', { seen })).status, 303, 'only expenses turned off');
    const staleDefaults = await admin.post('/matters/settings/defaults/mass-billing', { seen, 'massBilling.exclude': 'on', 'massBilling.onlyExpenses': 'on' });
    assert.equal(staleDefaults.status, 409);
    assert.deepEqual((await f.cmds.getFirmSettings()).matterDefaults.massBilling, { exclude: false, onlyExpenses: false });

    // A matter's billing options section: tab 2's discount does not replace tab 1's unseen.
    const billing = await signedIn(t, 'billing');
    const m1 = await billing.get(`/matters/${f.matter.id}/billing-options`);
    const mSeen = hidden(m1.text, 'seen', 'discount');
    assert.equal((await billing.post(`/matters/${f.matter.id}/billing-options/discount`, { ...DISCOUNT, seen: mSeen })).status, 303);
    const staleOptions = await billing.post(`/matters/${f.matter.id}/billing-options/discount`, { 'discount.kind': 'fixed', 'discount.amountMinor': '50.00', 'discount.percentBasisPoints': '', seen: mSeen });
    assert.equal(staleOptions.status, 409);
    assert.match(section(staleOptions.text, 'discount'), /changed by someone else since you opened them/);
    assert.deepEqual((await f.cmds.getBillingOptions(f.matter.id)).effective.discount, { kind: 'percentage', percentBasisPoints: 1_250, amountMinor: 0 });
    // Rows added or a refusal of what was typed keep the fingerprint the form carried (review 56, M1).
    const optionsTypo = await billing.post(`/matters/${f.matter.id}/billing-options/discount`, { 'discount.kind': 'fixed', 'discount.amountMinor': 'abc', 'discount.percentBasisPoints': '', seen: mSeen });
    assert.equal(optionsTypo.status, 422);
    assert.equal(hidden(optionsTypo.text, 'seen', 'discount'), mSeen, 'still the fingerprint of what the form first showed');
    // "Use firm default" from a page showing an older section is refused too (review 56, L1).
    assert.equal((await billing.post(`/matters/${f.matter.id}/billing-options/discount/reset`, { seen: mSeen })).status, 409);
    assert.equal((await f.cmds.getBillingOptions(f.matter.id)).overridden.includes('discount'), true);
    // Another section of the same matter saved meanwhile does not refuse this one.
    const other = await billing.get(`/matters/${f.matter.id}/billing-options`);
    const copiesSeen = hidden(other.text, 'seen', 'mass-billing');
    assert.equal((await billing.post(`/matters/${f.matter.id}/billing-options/discount`, { 'discount.kind': 'fixed', 'discount.amountMinor': '50.00', 'discount.percentBasisPoints': '', seen: hidden(other.text, 'seen', 'discount') })).status, 303);
    assert.equal((await billing.post(`/matters/${f.matter.id}/billing-options/mass-billing`, { seen: copiesSeen, 'massBilling.exclude': 'on' })).status, 303);
    // The firm's defaults a section follows changed since: refused too (the other matter inherits mass billing).
    const inheriting = await billing.get(`/matters/${f.other.id}/billing-options`);
    await f.cmds.updateFirmSettings(ctx, { matterDefaults: { massBilling: { exclude: true, onlyExpenses: true } } });
    assert.equal((await billing.post(`/matters/${f.other.id}/billing-options/mass-billing`, { seen: hidden(inheriting.text, 'seen', 'mass-billing') })).status, 409);

    // A charge type's inline edit.
    const type = await f.cmds.createChargeType(ctx, { code: 'BINDERS', name: 'Trial binders', defaultPriceMinor: 12_500 });
    const list = await billing.get('/matters/charge-types');
    const typeSeen = new RegExp(`action="/matters/charge-types/${type.id}"[^]*?name="seen" value="([^"]+)"`).exec(list.text)![1]!;
    const row = { code: 'BINDERS', name: 'Trial binders', defaultPrice: '125.00', taxCode: '', taskCode: '', activityCode: '', active: 'on' };
    assert.equal((await billing.post(`/matters/charge-types/${type.id}`, { ...row, defaultPrice: '444.44', seen: typeSeen })).status, 303);
    const staleType = await billing.post(`/matters/charge-types/${type.id}`, { ...row, active: '', seen: typeSeen });
    assert.equal(staleType.status, 409);
    assert.match(staleType.text, /Charge type BINDERS was changed by someone else since you opened it/);
    const kept = (await f.cmds.listChargeTypes()).find((x) => x.id === type.id)!;
    assert.deepEqual([kept.defaultPriceMinor, kept.active], [44_444, true]);

    // The firm's currency: refused once rates, charge types or matters are kept in it (review 54, H2), naming them.
    const currency = await admin.get('/matters/settings');
    const jpy = await admin.post('/matters/settings/general', { ...general, 'interest.annualRateBasisPoints': '12', paymentTermsDays: '60', currency: 'JPY', seen: generalSeen(currency.text) });
    assert.equal(jpy.status, 422);
    assert.match(fieldError(jpy, 'currency'), /^cannot change from USD once amounts are kept in it \(1 standard rate, 1 charge type, 2 matters\)/);
    assert.equal((await f.cmds.getFirmSettings()).currency, 'USD');
  });
});

eachDialect('a new firm (no rates, charge types or matters yet) sets its currency', async (db) => {
  await withApp(db, async (t) => {
    const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: { kick: () => undefined } });
    await cmds.getFirmSettings();
    const r = await cmds.updateFirmSettings(ctx, { currency: 'GBP' });
    assert.equal(r.settings.currency, 'GBP');
  });
});
