/**
 * Audit (pricing): the matter page's time row took an override reason without an override rate
 * and recorded the entry at the resolved rate, the reason silently dropped, where the API
 * ("rate is required with rateReason") and the CSV import ("rate is required with rate_reason")
 * refuse the same input. The clerk who typed "Agreed 150.00 for this call" and forgot the rate
 * billed the client the standard 300.00. Now the page refuses it too (422 naming overrideRate),
 * recording and changing nothing; on the edit row an override is removed by clearing both.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { unescapeHtml, withApp } from '../support/app.ts';
import { systemContext } from '../../src/shared/events.ts';
import { mattersCommands } from './support.ts';

const ctx = systemContext('corr-audit-pricing-page-override', 'test');
const HX = { 'hx-request': 'true' };

function fieldError(text: string, field: string): string | null {
  const m = new RegExp(`data-error-for="${field}"[^>]*>([^<]*)<`).exec(text);
  return m ? unescapeHtml(m[1]!.trim()) : null;
}

eachDialect('audit pricing: the matter page refuses an override reason without a rate, as the API and CSV do', async (db) => {
  await withApp(db, async (t) => {
    const cmds = mattersCommands(db, t);
    const mh = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
    await cmds.setTimekeeperRate(ctx, { timekeeperId: mh.id, effectiveFrom: '2026-01-01', rateMinor: 30_000 });
    const client = await cmds.createClient(ctx, { name: 'Northwind' });
    const matter = await cmds.openMatter(ctx, { clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: mh.id, openedOn: '2026-01-01' });
    const u = await t.user('billing');
    const b = t.browser();
    assert.equal((await b.login(u.email)).status, 303);
    const url = `/matters/${matter.id}`;
    assert.equal((await b.get(url)).status, 200);
    const row = { timekeeperId: mh.id, workDate: '2026-03-02', hours: '1', narrative: 'Call', behaviour: 'bill' };

    const reasonOnly = await b.post(`${url}/time`, { ...row, overrideRate: '', overrideReason: 'Agreed 150.00 for this call' }, { headers: HX });
    assert.equal(reasonOnly.status, 422, 'refused, not recorded at 300.00');
    assert.match(fieldError(reasonOnly.text, 'overrideRate') ?? '', /required/);
    assert.equal((await cmds.listTimeEntries(matter.id)).length, 0, 'nothing recorded');

    // Both given: an override (1 h at 150.00); neither: the standard rate.
    assert.equal((await b.post(`${url}/time`, { ...row, overrideRate: '150.00', overrideReason: 'Agreed' }, { headers: HX })).status, 200);
    assert.equal((await b.post(`${url}/time`, { ...row, overrideRate: '', overrideReason: '' }, { headers: HX })).status, 200);
    const [over, std] = (await cmds.listTimeEntries(matter.id)).sort((a, c) => a.rateMinor - c.rateMinor);
    assert.deepEqual([over!.rateMinor, over!.rateSource, over!.overrideReason, over!.amountMinor], [15_000, 'override', 'Agreed', 15_000]);
    assert.deepEqual([std!.rateMinor, std!.rateSource, std!.amountMinor], [30_000, 'timekeeper', 30_000]);

    // The edit row: clearing the rate but keeping the reason is refused and changes nothing; clearing both removes the override.
    const edit = { ...row, overrideRate: '', overrideReason: 'Agreed' };
    const kept = await b.post(`${url}/time/${over!.id}`, edit, { headers: HX });
    assert.equal(kept.status, 422);
    assert.match(fieldError(kept.text, 'overrideRate') ?? '', /required/);
    const still = await cmds.findTimeEntry(over!.id);
    assert.deepEqual([still!.rateMinor, still!.rateSource, still!.amountMinor], [15_000, 'override', 15_000]);
    assert.equal((await b.post(`${url}/time/${over!.id}`, { ...edit, overrideReason: '' }, { headers: HX })).status, 200);
    const cleared = await cmds.findTimeEntry(over!.id);
    assert.deepEqual([cleared!.rateMinor, cleared!.rateSource, cleared!.overrideReason, cleared!.amountMinor], [30_000, 'timekeeper', null, 30_000]);
  });
});
