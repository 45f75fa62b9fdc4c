/**
 * Audit (pricing): a disbursement's tax code was stored as typed, never checked against the
 * firm's tax codes (fixed charges and charge types are checked). Billing prices each line's
 * tax from the firm's rates and refuses a code it does not know with an internal assertion,
 * so one disbursement recorded as "GST" (the CSV template's own example) on a firm whose
 * codes are EXEMPT and SALES made every bill of that matter fail ("The bill cannot be
 * composed: unknown tax code GST"), and the WIP page's edit row offers no tax code to mend it.
 * Now the command, the API, the page and the CSV import refuse it (422 naming the tax code
 * field), nothing is recorded, and a known code still bills at its rate.
 */
import assert from 'node:assert/strict';
import { refused } from './support.ts';
import { eachDialect } from '../support/db.ts';
import { withApp } from '../support/app.ts';
import type { TestApp } from '../support/app.ts';
import { systemContext } from '../../src/shared/events.ts';
import { createBillingCommands } from '../../src/modules/billing/index.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';

const ctx = systemContext('corr-audit-pricing-disb-tax', 'test');

async function seed(t: TestApp) {
  const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
  const tk = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  await cmds.setTimekeeperRate(ctx, { timekeeperId: tk.id, effectiveFrom: '2026-01-01', rateMinor: 30_000 });
  const client = await cmds.createClient(ctx, { name: 'Northwind' });
  const matter = await cmds.openMatter(ctx, { clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: tk.id, openedOn: '2026-01-01' });
  return { cmds, tk, client, matter };
}

eachDialect('audit pricing: a disbursement tax code the firm does not have is refused everywhere; a known one bills at its rate', async (db) => {
  await withApp(db, async (t) => {
    const { cmds, matter } = await seed(t);
    await cmds.getFirmSettings();
    const base = { matterId: matter.id, incurredOn: '2026-02-10', code: 'COURT', unitCostMinor: 27_500, description: 'Filing fee' };

    // The command.
    const e1 = await refused(cmds.recordDisbursement(ctx, { ...base, taxCode: 'GST' }));
    assert.equal(e1.status, 422);
    assert.match(e1.fields.taxCode ?? '', /EXEMPT, SALES/);
    assert.equal((await cmds.listDisbursements(matter.id)).length, 0, 'nothing recorded');

    // The API.
    const u = await t.user('billing');
    const token = await t.token(u.email);
    const b = t.browser();
    const api = await b.request('POST', '/api/v1/disbursements', {
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ matterId: matter.id, incurredOn: '2026-02-10', code: 'COURT', unitCost: '275.00', description: 'Filing fee', taxCode: 'GST' }),
    });
    assert.equal(api.status, 422, api.text);
    assert.ok(api.json().error.fields.taxCode, api.text);

    // The CSV import.
    const csv = 'file_number,date,code,quantity,unit_cost,description,tax_code\n'
      + `${matter.fileNumber},2026-02-10,COURT,1,275.00,Filing fee,SALES\n`
      + `${matter.fileNumber},2026-02-11,COURIER,2,12.50,Courier,GST\n`;
    const imp = await b.request('POST', '/api/v1/imports/disbursements', { headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv', accept: 'application/json' }, body: csv });
    assert.equal(imp.status, 422, imp.text);
    assert.deepEqual(imp.json().rejected.map((r: { row: number; field: string | null }) => [r.row, r.field]), [[3, 'tax_code']]);
    assert.equal((await cmds.listDisbursements(matter.id)).length, 0, 'a file with one bad row imports nothing');

    // A known code is recorded; changing it to an unknown one is refused and changes nothing.
    const ok = await cmds.recordDisbursement(ctx, { ...base, quantityMilli: 2_000, taxCode: 'SALES' });
    assert.deepEqual([ok.taxCode, ok.amountMinor], ['SALES', 55_000]);
    const e2 = await refused(cmds.updateDisbursement(ctx, ok.id, { taxCode: 'VAT' }));
    assert.equal(e2.status, 422);
    assert.ok(e2.fields.taxCode);
    assert.equal((await cmds.findDisbursement(ok.id))?.taxCode, 'SALES');
    const patched = await b.request('PATCH', `/api/v1/disbursements/${ok.id}`, {
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ taxCode: 'VAT' }),
    });
    assert.equal(patched.status, 422, patched.text);
    assert.equal((await cmds.findDisbursement(ok.id))?.taxCode, 'SALES');

    // The page (a form posting a tax code).
    await t.user('billing', { email: 'clerk@firm.test' });
    const page = t.browser();
    assert.equal((await page.login('clerk@firm.test')).status, 303);
    assert.equal((await page.get(`/matters/${matter.id}`)).status, 200);
    const posted = await page.post(`/matters/${matter.id}/disbursements`, {
      incurredOn: '2026-02-12', code: 'COPY', unitCost: '10.00', quantity: '1', description: 'Copies', taxCode: 'GST', behaviour: 'bill',
    });
    assert.equal(posted.status, 422, posted.text.slice(0, 500));
    assert.equal((await cmds.listDisbursements(matter.id)).length, 1, 'only the SALES disbursement');

    // A CSV tax code is read in capitals, as its other codes are: "sales" is SALES.
    const lower = 'file_number,date,code,quantity,unit_cost,description,tax_code\n' + `${matter.fileNumber},2026-02-13,courier,1,0.00,Courier (no charge),sales\n`;
    const lowerImp = await b.request('POST', '/api/v1/imports/disbursements', { headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv', accept: 'application/json' }, body: lower });
    assert.equal(lowerImp.status, 201, lowerImp.text);
    assert.deepEqual((await cmds.listDisbursements(matter.id)).map((d) => d.taxCode).sort(), ['SALES', 'SALES']);

    // The bill of the matter: 550.00 at 8.25% sales tax = 45.375 -> 45.38 (half up).
    await t.runtime.relay.drain();
    const billing = createBillingCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const bill = await billing.createDraft(ctx, { matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' });
    assert.deepEqual([bill.totals.disbursementsMinor, bill.totals.taxMinor], [55_000, 4_538]);
  });
});
