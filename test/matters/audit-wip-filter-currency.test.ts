/**
 * Audit: the matters list's "WIP at least" amount is typed in the firm's currency, but it was
 * compared with every matter's WIP in that matter's own minor units: a yen matter with
 * ¥150,000 of WIP was listed as having "at least 1,000.00" (150,000 >= 100,000 cents). A
 * matter billed in another currency is not measured against it (no exchange rates), as mass
 * billing's WIP filters do: it is left out, and the label says the currency.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { withApp } from '../support/app.ts';
import { systemContext } from '../../src/shared/events.ts';
import { mattersCommands } from './support.ts';

const ctx = systemContext('corr-audit-wip-filter', 'test');

eachDialect('"WIP at least" (firm currency) lists only matters billed in the firm\'s currency with that much WIP', async (db) => {
  await withApp(db, async (t) => {
    const cmds = mattersCommands(db, t);
    const tk = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
    const client = await cmds.createClient(ctx, { name: 'Northwind' });
    const open = (name: string, currency: string) => cmds.openMatter(ctx, { clientId: client.id, name, responsibleTimekeeperId: tk.id, openedOn: '2026-01-01', currency });
    const disb = (matterId: string, unitCostMinor: number) => cmds.recordDisbursement(ctx, { matterId, incurredOn: '2026-03-02', code: 'COURT', unitCostMinor, description: 'Fee' });
    const yen = await open('Tokyo arbitration', 'JPY');
    await disb(yen.id, 150_000); // ¥150,000
    const small = await open('Small dollar matter', 'USD');
    await disb(small.id, 30_000); // $300.00
    const big = await open('Big dollar matter', 'USD');
    await disb(big.id, 250_000); // $2,500.00

    const u = await t.user('billing');
    const b = t.browser();
    await b.login(u.email);
    const page = await b.get('/matters?status=all&wipAtLeast=1000.00');
    assert.equal(page.status, 200, page.text);
    assert.match(page.text, /Big dollar matter/);
    assert.doesNotMatch(page.text, /Small dollar matter/);
    assert.doesNotMatch(page.text, /Tokyo arbitration/, 'a yen matter is not measured against a dollar amount');
    assert.match(page.text, /WIP at least \(USD\)/);
  });
});
