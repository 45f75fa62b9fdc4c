/**
 * Audit of the bill composer: an ad hoc fee given a timekeeper counts as their work in the fee
 * allocation. Saving the draft again in the composer (as the page shows it, nothing changed)
 * must keep that timekeeper: before the mend the form had no field for it, so every save turned
 * the fee into an adjustment and moved fee income between timekeepers. A timekeeper billing
 * does not know is refused naming the field (422), on the page and in the API, and nothing is written.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { unescapeHtml, withApp } from '../support/app.ts';
import type { TestApp } from '../support/app.ts';
import { createBillingCommands } from '../../src/modules/billing/index.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { ctx, firm, work } from './support.ts';
import { composerSubmission, postMany } from './web-support.ts';

async function seed(t: TestApp) {
  const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
  const billing = createBillingCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
  const f = await firm(cmds);
  const w = await work(cmds, f.matter.id, f);
  await t.runtime.relay.drain();
  return { cmds, billing, ...f, ...w };
}

const allocationOf = (allocations: readonly { timekeeperId: string; amountMinor: number }[]) =>
  Object.fromEntries(allocations.map((a) => [a.timekeeperId, a.amountMinor]));

eachDialect('audit composer: a draft saved again in the composer keeps its ad hoc fee\'s timekeeper, and so its fee allocation', async (db) => {
  await withApp(db, async (t) => {
    const { billing, matter, partner, associate } = await seed(t);
    // 2 h partner (600.00) and 1.5 h associate (300.00) recorded; a 500.00 fee the associate earned, added at billing.
    const bill = await billing.createDraft(ctx, {
      matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28',
      request: { adHoc: [{ kind: 'fee', description: 'Urgent opinion', amountMinor: 50_000, taxCode: null, timekeeperId: associate.id }] },
    });
    // Pro rata by work: the associate's 300.00 of time and the 500.00 fee are theirs.
    assert.deepEqual(allocationOf(bill.allocations), { [partner.id]: 60_000, [associate.id]: 80_000 });
    await t.runtime.relay.drain();

    await t.user('billing', { email: 'clerk@firm.test' });
    const b = t.browser();
    assert.equal((await b.login('clerk@firm.test')).status, 303);
    const page = await b.get(`/billing/matters/${matter.id}/compose?bill=${bill.billId}`);
    assert.equal(page.status, 200, page.text);
    const fields = composerSubmission(page.text);
    // The preview of the draft as shown bills the same.
    const preview = await postMany(b, `/billing/matters/${matter.id}/compose/preview`, fields);
    assert.equal(preview.status, 200, preview.text);
    assert.match(preview.text, new RegExp(`data-allocation="${associate.id}" data-minor="80000"`), 'the preview allocates the fee to the associate');

    // Save, changing nothing.
    const saved = await postMany(b, `/billing/matters/${matter.id}/compose`, fields);
    assert.equal(saved.status, 303, saved.text.slice(0, 2000));
    const after = (await billing.findBill(bill.billId))!;
    assert.equal(after.version, bill.version + 1);
    assert.deepEqual(allocationOf(after.allocations), allocationOf(bill.allocations), 'fee income stays with who earned it');
    assert.deepEqual(after.request.adHoc?.map((a) => a.timekeeperId), [associate.id], 'the fee is still the associate\'s');
    assert.equal(after.totals.totalMinor, bill.totals.totalMinor);
    assert.deepEqual(fields.filter(([k]) => k === 'adhoc_tk_0'), [['adhoc_tk_0', associate.id]], 'the page shows the fee\'s timekeeper');

    // The clerk may make it an adjustment (none): split by the matter's rule (pro rata to the recorded 600 : 300).
    const asAdjustment = composerSubmission((await b.get(`/billing/matters/${matter.id}/compose?bill=${bill.billId}`)).text)
      .map(([k, v]): [string, string] => [k, k === 'adhoc_tk_0' ? '' : v]);
    assert.equal((await postMany(b, `/billing/matters/${matter.id}/compose`, asAdjustment)).status, 303);
    const adjusted = (await billing.findBill(bill.billId))!;
    assert.deepEqual(allocationOf(adjusted.allocations), { [partner.id]: 93_333, [associate.id]: 46_667 });
  });
});

eachDialect('audit composer: an ad hoc fee for a timekeeper billing does not know is refused naming the field (page and API), nothing written', async (db) => {
  await withApp(db, async (t) => {
    const { matter } = await seed(t);
    const stranger = '0190aaaa-0000-7000-8000-000000000001';
    const rows = async () => (await db.db.selectFrom('billing_bill').select('id').execute()).length;

    const u = await t.user('billing', { email: 'clerk@firm.test' });
    const api = t.browser();
    const token = await t.token(u.email);
    const res = await api.postJson('/api/v1/bills', {
      matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28',
      options: { adHoc: [{ kind: 'fee', description: 'Urgent opinion', amount: '500.00', timekeeperId: stranger }] },
    }, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 422, res.text);
    assert.deepEqual(Object.keys(res.json().error.fields), ['options.adHoc.0.timekeeperId']);
    assert.equal(await rows(), 0, 'nothing drafted');

    const b = t.browser();
    assert.equal((await b.login('clerk@firm.test')).status, 303);
    const page = await b.get(`/billing/matters/${matter.id}/compose?invoiceDate=2026-02-28`);
    const fields = composerSubmission(page.text).filter(([k]) => !k.startsWith('adhoc_'));
    const typed: [string, string][] = [...fields, ['adhoc_kind_0', 'fee'], ['adhoc_desc_0', 'Urgent opinion'], ['adhoc_amount_0', '500.00'], ['adhoc_tax_0', ''], ['adhoc_tk_0', stranger]];
    const saved = await postMany(b, `/billing/matters/${matter.id}/compose`, typed);
    assert.equal(saved.status, 422, saved.text.slice(0, 2000));
    assert.match(saved.text, /data-error-for="adhoc_tk_0"/);
    assert.equal(await rows(), 0, 'nothing drafted');
  });
});
