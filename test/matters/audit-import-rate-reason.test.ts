/**
 * Audit: a time-entries CSV row giving rate_reason but no rate (the rate cell left empty, or
 * lost in a spreadsheet) was imported at the resolved standard rate, the reason silently
 * dropped; the API refuses the same input ("rate is required with rateReason"). Now the row is
 * rejected naming the rate column, and nothing is imported.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { withApp } from '../support/app.ts';
import { systemContext } from '../../src/shared/events.ts';
import { mattersCommands } from './support.ts';

const ctx = systemContext('corr-audit-import-rate', 'test');

eachDialect('a time-entries row with rate_reason and no rate is rejected naming the rate, importing nothing', async (db) => {
  await withApp(db, async (t) => {
    const cmds = mattersCommands(db, t);
    const tk = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
    await cmds.setTimekeeperRate(ctx, { timekeeperId: tk.id, effectiveFrom: '2026-01-01', rateMinor: 30_000 });
    const client = await cmds.createClient(ctx, { name: 'Northwind' });
    const matter = await cmds.openMatter(ctx, { clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: tk.id, openedOn: '2026-01-01' });
    const u = await t.user('billing');
    const auth = { authorization: `Bearer ${await t.token(u.email)}`, 'content-type': 'text/csv', accept: 'application/json' };
    const b = t.browser();
    const csv = [
      'file_number,date,timekeeper,hours,narrative,rate,rate_reason',
      `${matter.fileNumber},2026-03-02,MH,1,Advice,,`,
      `${matter.fileNumber},2026-03-03,MH,2,Agreed discount,,Agreed 150.00 for this call`,
      `${matter.fileNumber},2026-03-04,MH,1,Overridden,250.00,Agreed`,
    ].join('\n');
    const res = await b.request('POST', '/api/v1/imports/time-entries', { headers: auth, body: csv });
    assert.equal(res.status, 422, res.text);
    assert.deepEqual(res.json().rejected.map((r: { row: number; field: string | null }) => [r.row, r.field]), [[3, 'rate']]);
    assert.equal((await cmds.listTimeEntries(matter.id)).length, 0, 'nothing was imported');

    const fixed = csv.replace(',,Agreed 150.00 for this call', ',150.00,Agreed 150.00 for this call');
    const ok = await b.request('POST', '/api/v1/imports/time-entries', { headers: auth, body: fixed });
    assert.equal(ok.status, 201, ok.text);
    const entries = await cmds.listTimeEntries(matter.id);
    assert.deepEqual(entries.map((e) => [e.workDate, e.rateMinor, e.rateSource, e.amountMinor]), [
      ['2026-03-02', 30_000, 'timekeeper', 30_000], ['2026-03-03', 15_000, 'override', 30_000], ['2026-03-04', 25_000, 'override', 25_000],
    ]);
  });
});
