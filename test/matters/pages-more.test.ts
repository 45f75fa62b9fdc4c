/**
 * More of the matters pages: fixed charges in the WIP table, WIP-cap warnings, editing,
 * closing and reopening a matter, client details and contacts, timekeeper edits and the
 * charge types page.
 */
import assert from 'node:assert/strict';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { systemContext } from '../../src/shared/events.ts';
import type { Role } from '../../src/shared/web/types.ts';
import { unescapeHtml, withApp } from '../support/app.ts';
import type { Browser, Page, TestApp } from '../support/app.ts';
import { eachDialect } from '../support/db.ts';

const ctx = systemContext('more-pages-test', 'test');

async function firm(t: TestApp) {
  const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: { kick: () => undefined } });
  const mh = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  await cmds.setTimekeeperRate(ctx, { timekeeperId: mh.id, effectiveFrom: '2025-01-01', rateMinor: 32_000 });
  const client = await cmds.createClient(ctx, { name: 'Northwind Logistics Inc.', email: 'ap@northwind.example' });
  const matter = await cmds.openMatter(ctx, {
    clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: mh.id, openedOn: '2026-01-15', billingCycle: 'MONTH', wipCapMinor: 50_000,
  });
  return { cmds, mh, client, matter };
}

async function signedIn(t: TestApp, role: Role): Promise<Browser> {
  const u = await t.user(role);
  const b = t.browser();
  assert.equal((await b.login(u.email)).status, 303);
  return b;
}

function total(html: string, key: string): number {
  const m = new RegExp(`data-total="${key}" data-minor="(-?\\d+)"`).exec(html);
  assert.ok(m, `total ${key} on the page`);
  return Number(m[1]);
}

function fieldError(p: Page, field: string): string {
  const m = new RegExp(`data-error-for="${field.replaceAll('.', '\\.')}"[^>]*>([^<]*)<`).exec(p.text);
  assert.ok(m, `an error shown for ${field}`);
  return unescapeHtml(m[1]!.trim());
}

eachDialect('fixed charges are added, edited and deleted in the WIP table; quoted ones add nothing; a charge type is made on its page', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    const b = await signedIn(t, 'billing');
    const empty = await b.get(`/matters/${f.matter.id}`);
    assert.match(empty.text, /No charge types yet/);

    await b.get('/matters/charge-types');
    const badType = await b.post('/matters/charge-types', { code: 'lease', name: 'Lease review', defaultPrice: '12.345' });
    assert.equal(badType.status, 422);
    assert.match(fieldError(badType, 'defaultPrice'), /decimal places/);
    assert.equal((await b.post('/matters/charge-types', { code: 'lease', name: 'Lease review', defaultPrice: '150.00', taskCode: 'L120' })).status, 303);
    const types = await f.cmds.listChargeTypes();
    assert.deepEqual(types.map((x) => [x.code, x.defaultPriceMinor, x.taskCode]), [['LEASE', 15_000, 'L120']]);

    const page = await b.get(`/matters/${f.matter.id}`);
    assert.match(page.text, /id="add-fixed"/);
    const added = await b.post(`/matters/${f.matter.id}/fixed-charges`, { chargeTypeId: types[0]!.id, chargedOn: '2026-03-01', quantity: '2', unitPrice: '', behaviour: 'bill' }, { headers: { 'hx-request': 'true' } });
    assert.equal(added.status, 200);
    assert.equal(total(added.text, 'fixed-charges'), 30_000, 'two at the default price');
    assert.equal(total(added.text, 'wip'), 30_000);
    const quoted = await b.post(`/matters/${f.matter.id}/fixed-charges`, { chargeTypeId: types[0]!.id, chargedOn: '2026-03-01', quantity: '1', quoted: 'on', behaviour: 'bill' });
    assert.equal(quoted.status, 303);
    const charges = await f.cmds.listFixedCharges(f.matter.id);
    assert.equal(charges.length, 2);
    const after = await b.get(`/matters/${f.matter.id}`);
    assert.equal(total(after.text, 'wip'), 30_000, 'a quoted charge adds nothing to WIP');
    assert.match(after.text, /<span class="badge">quoted<\/span>/);

    const first = charges.find((x) => !x.quoted)!;
    const edit = await b.get(`/matters/${f.matter.id}/fixed-charges/${first.id}/edit`, { 'hx-request': 'true' });
    assert.match(edit.text, new RegExp(`<form id="edit-fixed-${first.id}"`));
    const saved = await b.post(`/matters/${f.matter.id}/fixed-charges/${first.id}`, {
      chargedOn: '2026-03-01', quantity: '2', unitPrice: '175.00', description: 'Lease review', behaviour: 'bill',
    }, { headers: { 'hx-request': 'true' } });
    assert.equal(saved.status, 200);
    assert.equal(total(saved.text, 'fixed-charges'), 35_000, 'exactly 2 x 25.00 more');
    // The tax code is chosen, shown and changed on the page (review 54, L4), a bad one refused at its field.
    assert.match(edit.text, /<select name="taxCode"[^>]*aria-label="Tax code"[^>]*><option value="">Firm default \(EXEMPT\)<\/option>/, 'blank is the firm default, not "no tax" (review 56, H2)');
    const fields = { chargedOn: '2026-03-01', quantity: '2', unitPrice: '175.00', description: 'Lease review', behaviour: 'bill' };
    const taxed = await b.post(`/matters/${f.matter.id}/fixed-charges/${first.id}`, { ...fields, taxCode: 'SALES' }, { headers: { 'hx-request': 'true' } });
    assert.equal(taxed.status, 200);
    assert.equal((await f.cmds.listFixedCharges(f.matter.id)).find((x) => x.id === first.id)!.taxCode, 'SALES');
    assert.match(taxed.text, /· tax SALES/);
    const badTax = await b.post(`/matters/${f.matter.id}/fixed-charges/${first.id}`, { ...fields, taxCode: 'NOPE' }, { headers: { 'hx-request': 'true' } });
    assert.equal(badTax.status, 422);
    assert.match(badTax.text, /data-error-for="taxCode"/);
    const untaxed = await b.post(`/matters/${f.matter.id}/fixed-charges/${first.id}`, { ...fields, taxCode: '' }, { headers: { 'hx-request': 'true' } });
    assert.equal(untaxed.status, 200);
    assert.equal((await f.cmds.listFixedCharges(f.matter.id)).find((x) => x.id === first.id)!.taxCode, null, 'blank on an edit: the code cleared (the firm default when billed)');
    const deleted = await b.post(`/matters/${f.matter.id}/fixed-charges/${first.id}/delete`, {}, { headers: { 'hx-request': 'true' } });
    assert.equal(total(deleted.text, 'fixed-charges'), 0);
  });
});

eachDialect('recording past the WIP cap warns with the firm policy "warn" and is refused with "refuse", naming the hours', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    const b = await signedIn(t, 'billing');
    await b.get(`/matters/${f.matter.id}`);
    const entry = { timekeeperId: f.mh.id, workDate: '2026-03-01', narrative: 'Trial preparation', behaviour: 'bill' };
    const warned = await b.post(`/matters/${f.matter.id}/time`, { ...entry, hours: '2' }, { headers: { 'hx-request': 'true' } });
    assert.equal(warned.status, 200);
    assert.match(unescapeHtml(warned.text), /over its WIP cap: WIP not yet billed \(unbilled or on a draft\) is now \$640\.00, over the cap of \$500\.00/);
    assert.match(warned.text, /data-cap-state="over"/);
    assert.match(warned.text, /\$140\.00 over the cap of \$500\.00/);

    const settings = await f.cmds.getFirmSettings();
    await f.cmds.updateFirmSettings(ctx, { wipCapPolicy: 'refuse' });
    assert.equal(settings.wipCapPolicy, 'warn');
    const refused = await b.post(`/matters/${f.matter.id}/time`, { ...entry, hours: '1' });
    assert.equal(refused.status, 422);
    assert.match(fieldError(refused, 'hours'), /over the cap of \$500\.00/);
    assert.equal((await f.cmds.listTimeEntries(f.matter.id)).length, 1);
  });
});

eachDialect('a matter is edited, closed (no more work) and reopened through its page', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    const b = await signedIn(t, 'admin');
    const form = await b.get(`/matters/${f.matter.id}/edit`);
    assert.equal(form.status, 200);
    assert.match(form.text, /name="wipCap" value="500\.00"/);
    const bad = await b.post(`/matters/${f.matter.id}/edit`, { name: '', responsibleTimekeeperId: f.mh.id, billingCycle: 'MONTH', nextBillingDate: '2026-04-01' });
    assert.equal(bad.status, 422);
    assert.equal(fieldError(bad, 'name'), 'is required');
    const ok = await b.post(`/matters/${f.matter.id}/edit`, {
      name: 'Northwind v. Kestrel Freight', practiceArea: 'Litigation', responsibleTimekeeperId: f.mh.id, billingTimekeeperId: f.mh.id,
      billingCycle: 'QUARTER', nextBillingDate: '2026-06-30', wipCap: '7,500.00', defaultBehaviour: 'bill', timeUnitMinutes: '6', roundingMode: 'up',
    });
    assert.equal(ok.status, 303);
    const m = await f.cmds.findMatter(f.matter.id);
    assert.equal(m?.name, 'Northwind v. Kestrel Freight');
    assert.equal(m?.wipCapMinor, 750_000);
    assert.equal(m?.billingCycle, 'QUARTER');

    // A close date to come is refused (closing takes effect at once), naming the field; nothing changes.
    const future = await b.post(`/matters/${f.matter.id}/close`, { closedOn: '2099-01-01' });
    assert.equal(future.status, 422);
    assert.match(unescapeHtml(future.text), /closedOn must be on or before today, \d{4}-\d{2}-\d{2}: a matter is closed from the day it is closed/);
    assert.equal((await f.cmds.findMatter(f.matter.id))?.status, 'open');
    // Work left on it is said first, with its amount; closing needs a second, confirmed post.
    // (Recorded through the page without JavaScript: sent back to the matter, which says what was recorded.)
    const recorded = await b.post(`/matters/${f.matter.id}/time`, { timekeeperId: f.mh.id, workDate: '2026-03-01', hours: '1', narrative: 'Last call' });
    assert.equal(recorded.status, 303, recorded.text.slice(0, 500));
    assert.match(recorded.location ?? '', new RegExp(`^/matters/${f.matter.id}\\?done=[\\w-]+#wip$`));
    assert.match(unescapeHtml((await b.get(recorded.location!.split('#')[0]!)).text), /Recorded 1(\.0+)? h at [\d,.]+\/h \(/);
    const asked = await b.post(`/matters/${f.matter.id}/close`, { closedOn: '2026-03-02' });
    assert.equal(asked.status, 200);
    const wipMinor = (await f.cmds.listTimeEntries(f.matter.id)).filter((e) => e.status === 'unbilled' && e.behaviour === 'bill').reduce((a, e) => a + e.amountMinor, 0);
    assert.ok(wipMinor > 0);
    const dollars = `$${(wipMinor / 100).toLocaleString('en-US', { minimumFractionDigits: 2 })}`;
    assert.match(unescapeHtml(asked.text), new RegExp(`<h2>Close ${f.matter.fileNumber.replace('.', '\\.')} with work left on it\\?</h2>\\s*<p>It has \\d+ unbilled items? \\(${dollars.replace(/[$.]/g, '\\$&')} billable\\)\\.`));
    assert.match(asked.text, /<input type="hidden" name="confirmed" value="yes">/);
    assert.equal((await f.cmds.findMatter(f.matter.id))?.status, 'open', 'asking closes nothing');
    assert.equal((await b.post(`/matters/${f.matter.id}/close`, { closedOn: '2026-03-02', confirmed: 'yes' })).status, 303);
    const closed = await b.get(`/matters/${f.matter.id}`);
    assert.match(closed.text, /This matter is closed: reopen it to record work/);
    assert.doesNotMatch(closed.text, /id="add-time"/);
    assert.match(closed.text, /Reopen matter/);
    const refused = await b.post(`/matters/${f.matter.id}/time`, { timekeeperId: f.mh.id, workDate: '2026-03-02', hours: '1', narrative: 'Late call' });
    assert.equal(refused.status, 422);
    assert.match(refused.text, /is closed/);
    assert.equal((await b.post(`/matters/${f.matter.id}/reopen`, {})).status, 303);
    assert.match((await b.get(`/matters/${f.matter.id}`)).text, /id="add-time"/);
  });
});

eachDialect('client details are edited and contacts added, changed and removed on the client page', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    const b = await signedIn(t, 'billing');
    const url = `/matters/clients/${f.client.id}`;
    await b.get(url);
    const bad = await b.post(url, { name: 'Northwind Logistics Inc.', email: 'nope' });
    assert.equal(bad.status, 422);
    assert.match(fieldError(bad, 'email'), /email/);
    assert.equal((await b.post(url, { name: 'Northwind Logistics Holdings', email: 'billing@northwind.example', address: '1 Dock Rd' })).status, 303);
    assert.equal((await f.cmds.findClient(f.client.id))?.name, 'Northwind Logistics Holdings');

    const badContact = await b.post(`${url}/contacts`, { name: 'Pat Payable', phone: 'call me' });
    assert.equal(badContact.status, 422);
    assert.match(fieldError(badContact, 'phone'), /phone number/);
    assert.equal((await b.post(`${url}/contacts`, { name: 'Pat Payable', role: 'Accounts payable', email: 'pat@northwind.example' })).status, 303);
    const [contact] = await f.cmds.listContacts(f.client.id);
    assert.equal(contact?.role, 'Accounts payable');
    const page = await b.get(url);
    assert.match(page.text, /Pat Payable/);
    assert.equal((await b.post(`${url}/contacts/${contact!.id}`, { name: 'Pat Payable', role: 'AP lead', email: 'pat@northwind.example' })).status, 303);
    assert.equal((await f.cmds.findContact(contact!.id))?.role, 'AP lead');
    assert.equal((await b.post(`${url}/contacts/${contact!.id}/delete`, {})).status, 303);
    assert.deepEqual(await f.cmds.listContacts(f.client.id), []);
  });
});

eachDialect('a timekeeper is edited on its page; a matter rate needs custom rates on the matter', async (db) => {
  await withApp(db, async (t) => {
    const f = await firm(t);
    const b = await signedIn(t, 'admin');
    const url = `/matters/timekeepers/${f.mh.id}`;
    await b.get(url);
    assert.equal((await b.post(url, { name: 'Margaret Holloway-Reyes', classification: 'partner', ledesClassification: 'PT', active: 'on' })).status, 303);
    assert.equal((await f.cmds.findTimekeeper(f.mh.id))?.name, 'Margaret Holloway-Reyes');
    const rate = await b.post(`${url}/rates`, { effectiveFrom: '2026-04-01', rate: '345.50' });
    assert.equal(rate.status, 303);
    const page = await b.get(url);
    assert.match(page.text, /2026-04-01<\/td><td class="num">\$345\.50/);
    const refused = await b.post(`${url}/matter-rates`, { fileNumber: f.matter.fileNumber, rate: '300.00' });
    assert.equal(refused.status, 422);
    assert.match(fieldError(refused, 'fileNumber'), /custom matter rates turned off/);
    await f.cmds.setBillingOptions(ctx, f.matter.id, { set: { customRatesEnabled: true } });
    assert.equal((await b.post(`${url}/matter-rates`, { fileNumber: f.matter.fileNumber, rate: '300.00' })).status, 303);
    assert.match((await b.get(url)).text, /\$300\.00/);
    // Inactive: not offered for new work.
    assert.equal((await b.post(url, { name: 'Margaret Holloway-Reyes', classification: 'partner', ledesClassification: 'PT' })).status, 303);
    assert.equal((await f.cmds.findTimekeeper(f.mh.id))?.active, false);
  });
});
