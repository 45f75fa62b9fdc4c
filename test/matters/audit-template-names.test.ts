/**
 * A matter's (or the firm's default) bill or email template is one billing has: a name no
 * template has was saved as typed and only refused at production. Matters keeps a copy of the
 * names (`billing.template_saved`, billing's built-in templates from the migration) and refuses
 * an unknown one at the field; a template saved in billing is taken from then on; a name saved
 * before is not refused with an unrelated change.
 */
import assert from 'node:assert/strict';
import { DEFAULT_BILL_TEMPLATES, DEFAULT_EMAIL_TEMPLATES } from '../../src/modules/billing/domain/templates.ts';
import { eachDialect } from '../support/db.ts';
import { ctx, firm } from '../billing/support.ts';
import { testOutputs, outputDirs, removeDirs, productionSetup } from '../billing/production-support.ts';
import { refused } from './support.ts';

eachDialect('a matter\'s or the firm\'s bill and email template must name a template billing has', async (db) => {
  const dirs = outputDirs();
  try {
    const s = await productionSetup(db, testOutputs(dirs));
    const f = await firm(s.matters);
    // The built-in templates are known from the start (the migration), exactly billing's.
    const names = async (kind: string) => (await db.db.selectFrom('matters_template').select('name').where('kind', '=', kind).execute()).map((r) => String(r.name)).sort();
    assert.deepEqual(await names('bill'), DEFAULT_BILL_TEMPLATES.map((t) => t.name).sort());
    assert.deepEqual(await names('email'), DEFAULT_EMAIL_TEMPLATES.map((t) => t.name).sort());

    const options = async () => (await s.matters.getBillingOptions(f.matter.id)).effective;
    const before = await options();
    let e = await refused(s.matters.setBillingOptions(ctx, f.matter.id, { set: { billTemplate: 'letterhead-2019', emailTemplate: 'no-such-email' } }));
    assert.equal(e.status, 422);
    assert.match(e.fields.billTemplate ?? '', /^no bill template named "letterhead-2019" \(templates: .*standard/);
    assert.match(e.fields.emailTemplate ?? '', /^no email template named "no-such-email" \(templates: standard\)/);
    assert.deepEqual(await options(), before, 'nothing changed');
    e = await refused(s.matters.updateFirmSettings(ctx, { matterDefaults: { billTemplate: 'letterhead-2019' } } as never));
    assert.match(e.fields['matterDefaults.billTemplate'] ?? '', /no bill template named "letterhead-2019"/);

    // A built-in one is taken; a template saved in billing is taken once matters hears of it.
    await s.matters.setBillingOptions(ctx, f.matter.id, { set: { billTemplate: 'total-only' } });
    await s.production.saveBillTemplate(ctx, { name: 'letterhead-2019', layout: 'itemised', title: 'Tax invoice', footer: 'Thank you' });
    await s.drain();
    await s.matters.setBillingOptions(ctx, f.matter.id, { set: { billTemplate: 'letterhead-2019' } });
    assert.equal((await options()).billTemplate, 'letterhead-2019');
    await s.stop();
  } finally {
    removeDirs(dirs);
  }
});
