/**
 * Audit (what a bill looks like, on screen): the bill page of a bill in a dollar other than the
 * US one says which currency its "$" amounts are in, as its PDF does.
 */
import assert from 'node:assert/strict';
import { createBillingCommands } from '../../src/modules/billing/index.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { withApp } from '../support/app.ts';
import { eachDialect } from '../support/db.ts';
import { ctx, firm } from './support.ts';

eachDialect('the bill page names the bill\'s currency (a CAD bill\'s "$" is not the US dollar)', async (db) => {
  await withApp(db, async (t) => {
    const matters = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const billing = createBillingCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const f = await firm(matters);
    const m = await matters.openMatter(ctx, { clientId: f.client.id, name: 'Toronto matter', responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH', currency: 'CAD' });
    await matters.recordTimeEntry(ctx, { matterId: m.id, timekeeperId: f.partner.id, workDate: '2026-02-10', rawMinutes: 60, override: { rateMinor: 40_000, reason: 'agreed rate' }, narrative: 'Advice' });
    await t.runtime.relay.drain();
    const d = await billing.createDraft(ctx, { matterId: m.id, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
    const b = t.browser();
    await b.login((await t.user('billing', { email: 'cad-clerk@firm.test' })).email);
    const page = await b.get(`/billing/bills/${d.billId}`);
    assert.equal(page.status, 200);
    assert.match(page.text, /data-total="total" data-minor="40000">\$400\.00</, 'the amounts as the page shows them');
    assert.match(page.text, /<dt>Currency<\/dt><dd data-currency="CAD">CAD<\/dd>/, 'and the currency they are in');
  });
});
