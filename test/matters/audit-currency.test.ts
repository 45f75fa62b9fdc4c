/**
 * A currency a matter or the firm is set to must be one in circulation (ISO 4217), not any
 * three capitals: "QQQ" or "NAN" saved as a currency bills in a currency no client can pay in.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isKnownCurrency } from '../../src/shared/money.ts';
import { systemContext } from '../../src/shared/events.ts';
import { eachDialect } from '../support/db.ts';
import { mattersCommands, refused } from './support.ts';

const ctx = systemContext('audit-currency', 'test');

test('known currencies: the ones in circulation, not any three capitals', () => {
  for (const c of ['USD', 'EUR', 'GBP', 'AUD', 'NZD', 'JPY', 'KWD', 'BHD', 'CAD', 'CHF', 'SGD', 'INR']) assert.equal(isKnownCurrency(c), true, c);
  for (const c of ['QQQ', 'NAN', 'XYZ', 'usd', 'US', 'USDD', '', 'XXX']) assert.equal(isKnownCurrency(c), false, c);
});

eachDialect('a matter opened or changed to a currency not in circulation is refused at currency, and nothing is written', async (db) => {
  const cmds = mattersCommands(db);
  const tk = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  const client = await cmds.createClient(ctx, { name: 'Northwind' });
  const before = (await db.db.selectFrom('matters_matter').select('id').execute()).length;
  for (const currency of ['XYZ', 'QQQ']) {
    const e = await refused(cmds.openMatter(ctx, { clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: tk.id, openedOn: '2026-01-01', currency }));
    assert.equal(e.status, 422);
    assert.match(e.fields.currency ?? '', /ISO 4217 currency code in use/);
  }
  assert.equal((await db.db.selectFrom('matters_matter').select('id').execute()).length, before);
  const m = await cmds.openMatter(ctx, { clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: tk.id, openedOn: '2026-01-01', currency: 'AUD' });
  assert.equal(m.currency, 'AUD');
});
