/**
 * The ledger's receipt and report forms type the client (its number, its name case and accents
 * aside, or "number name" as the pages show it), as mass billing's filter does, rather than
 * listing every client in a select: a firm may have thousands. A name two clients share, or one
 * no client has, is refused naming the field and posts nothing; htmx suggests as the clerk
 * types, and without JavaScript the same address is a page linking back to the form. An id (a
 * link, an older page's form) still names its client. On both databases.
 */
import assert from 'node:assert/strict';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { unescapeHtml, withApp } from '../support/app.ts';
import { eachDialect } from '../support/db.ts';
import { billedWithAdmin, ctx } from './support.ts';

eachDialect('ledger forms: the client is typed by number or name (case and accents aside), a shared or unknown name is refused naming the field, and suggestions come as the clerk types', async (db) => {
  await withApp(db, async (t) => {
    const { f, admin } = await billedWithAdmin(t);
    const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const muller = await cmds.createClient(ctx, { name: 'Müller GmbH', email: null });
    const twinA = await cmds.createClient(ctx, { name: 'Twin Peaks Ltd', email: null });
    const twinB = await cmds.createClient(ctx, { name: 'Twin Peaks Ltd', email: null });
    await t.runtime.relay.drain();
    const receipts = async () => (await t.db.db.selectFrom('ledger_receipt').select(['id', 'client_id']).execute()).length;
    const form = (client: string, amount = '10.00') => ({ client, receivedOn: '2026-03-05', amount, method: 'bank_transfer', order: 'oldest_first', discount: 'auto' });

    // The form offers a text field with suggestions, not a select of every client.
    let p = await admin.get('/ledger/receipts/new');
    assert.equal(p.status, 200);
    assert.match(p.text, /<input type="text" id="receipt-client" name="client" value="" list="client-options"/);
    assert.doesNotMatch(p.text, /<select name="client"/);
    assert.doesNotMatch(p.text, /Twin Peaks Ltd<\/option>/);

    // Refused, naming the field, nothing posted: a name two clients share (with their numbers), one no client has, part of a name.
    const before = await receipts();
    for (const [typed, why] of [
      ['twin peaks ltd', new RegExp(`2 clients have or hold this name: type the client number \\(${twinA.clientNumber} Twin Peaks Ltd; ${twinB.clientNumber} Twin Peaks Ltd\\)`)],
      ['Nobody & Co', /no client with this number or name/],
      ['Mül', /no client with this number or name/],
      ['99999', /no client with this number or name/],
    ] as const) {
      p = await admin.post('/ledger/receipts', form(typed));
      assert.equal(p.status, 422, `${typed}: ${p.text.slice(0, 300)}`);
      assert.match(unescapeHtml(p.text), new RegExp(`data-error-for="client">${why.source}`), typed);
      assert.match(unescapeHtml(p.text), new RegExp(`name="client" value="${typed.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`), 'what was typed is kept');
    }
    assert.equal(await receipts(), before, 'nothing posted');

    // By number, by name (case and accents aside), as "number name", by id: each posts to that client.
    const cases: [string, string][] = [
      [String(muller.clientNumber), muller.id], ['MULLER GMBH', muller.id], [`${muller.clientNumber} müller gmbh`, muller.id],
      [String(twinB.clientNumber), twinB.id], [f.client.id, f.client.id], [`0${twinA.clientNumber}`, twinA.id],
    ];
    for (const [typed, id] of cases) {
      p = await admin.post('/ledger/receipts', form(typed, '1.00'));
      assert.equal(p.status, 303, `${typed}: ${p.text.slice(0, 400)}`);
      const receiptId = p.location!.split('?')[0]!.split('/').pop()!;
      const r = await t.db.db.selectFrom('ledger_receipt').select('client_id').where('id', '=', receiptId).executeTakeFirstOrThrow();
      assert.equal(r.client_id, id, typed);
    }

    // A link naming the client (by id or number) shows it found, with its open bills, carried on as its number.
    p = await admin.get(`/ledger/receipts/new?client=${f.client.id}`);
    assert.equal(p.status, 200);
    assert.match(unescapeHtml(p.text), new RegExp(`<small class="hint" id="client-chosen">${f.client.clientNumber} ${f.client.name}</small>`));
    assert.match(p.text, new RegExp(`name="client" value="${f.client.clientNumber}"`));
    assert.match(p.text, /Open bills of the client/);
    p = await admin.get('/ledger/receipts/new?client=twin%20peaks%20ltd');
    assert.equal(p.status, 422);
    assert.match(p.text, /data-error-for="client">2 clients have or hold this name/);

    // Suggestions: for htmx the datalist's options; without JavaScript a page linking back to the form.
    p = await admin.get('/ledger/clients/find?client=mull', { 'hx-request': 'true' });
    assert.equal(p.status, 200);
    assert.doesNotMatch(p.text, /<html/);
    assert.match(p.text, new RegExp(`<option value="${muller.clientNumber}" label="${muller.clientNumber} Müller GmbH">`));
    assert.match(p.headers.get('vary') ?? '', /HX-Request/i);
    p = await admin.get('/ledger/clients/find?client=twin');
    assert.match(p.text, /<html/);
    assert.match(unescapeHtml(p.text), new RegExp(`href="/ledger/receipts/new\\?client=${twinA.clientNumber}"`));
    // From a report: back to that report, its dates and currency kept.
    p = await admin.get('/ledger/clients/find?for=debtor-statement&client=twin&to=2026-03-31&currency=USD&evil=1');
    assert.match(unescapeHtml(p.text), new RegExp(`href="/ledger/reports/debtor-statement\\?to=2026-03-31&currency=USD&client=${twinB.clientNumber}"`));
    // A report that takes no client is not a place to go back to: the receipt form instead.
    p = await admin.get('/ledger/clients/find?for=trial-balance&client=twin');
    assert.match(unescapeHtml(p.text), new RegExp(`href="/ledger/receipts/new\\?client=${twinB.clientNumber}"`));

    // A report taking a client: typed by name, found and shown; shared, refused naming the field.
    p = await admin.get(`/ledger/reports/debtor-statement?to=2026-03-31&client=${encodeURIComponent(f.client.name.toUpperCase())}`);
    assert.equal(p.status, 200, p.text.slice(0, 300));
    assert.match(unescapeHtml(p.text), new RegExp(`id="client-chosen">${f.client.clientNumber} ${f.client.name}<`));
    const byId = await admin.get(`/ledger/reports/debtor-statement?to=2026-03-31&client=${f.client.id}&format=csv`);
    const byName = await admin.get(`/ledger/reports/debtor-statement?to=2026-03-31&client=${encodeURIComponent(f.client.name)}&format=csv`);
    assert.equal(byName.status, 200);
    assert.equal(byName.text, byId.text, 'the same statement by name as by id');
    assert.equal(byId.headers.get('content-disposition'), `attachment; filename="debtor-statement-client-${f.client.clientNumber}-2026-03-31.csv"`, 'named for its client');
    assert.equal((await admin.get('/ledger/reports/debtor-statement?to=2026-03-31&format=csv')).headers.get('content-disposition'), 'attachment; filename="debtor-statement-2026-03-31.csv"');
    p = await admin.get('/ledger/reports/debtor-statement?to=2026-03-31&client=twin%20peaks%20ltd');
    assert.equal(p.status, 422);
    assert.match(p.text, /data-error-for="client">2 clients have or hold this name/);
    // A client not found is said with the other bad parameters, not before them.
    p = await admin.get('/ledger/reports/debtor-statement?to=2026-02-30&currency=usd&client=Nobody%20%26%20Co');
    assert.equal(p.status, 422);
    assert.match(p.text, /data-error-for="client">no client with this number or name/);
    assert.match(p.text, /data-error-for="to">must be a date/);
    assert.match(p.text, /data-error-for="currency">must be a currency code/);
  });
});
