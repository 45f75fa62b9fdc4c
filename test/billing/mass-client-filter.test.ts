/**
 * Mass billing's Client filter is typed (a client's number, or a name only one client has),
 * not chosen from a list of every client: a firm of thousands of clients could not be listed.
 * As the clerk types, htmx fills the field's datalist from /billing/mass/clients; without
 * JavaScript that address is a page linking each match to the list. A name two clients share
 * is refused naming the field, with their numbers; an old link naming a client by id still
 * filters by it. On both databases.
 */
import assert from 'node:assert/strict';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import type { MattersCommands } from '../../src/modules/matters/index.ts';
import { withApp } from '../support/app.ts';
import { eachDialect } from '../support/db.ts';
import { ok, postMany, waitForRun } from './web-support.ts';
import { ctx, firm } from './support.ts';

const DATE = '2026-03-01';
const Q = `invoiceDate=${DATE}&upTo=${DATE}`;

async function clientWithMatter(cmds: MattersCommands, name: string, partnerId: string) {
  const client = await cmds.createClient(ctx, { name, email: null });
  const matter = await cmds.openMatter(ctx, { clientId: client.id, name: `${name} matter`, responsibleTimekeeperId: partnerId, openedOn: '2025-06-01', billingCycle: 'MONTH' });
  await cmds.recordDisbursement(ctx, { matterId: matter.id, incurredOn: '2026-02-12', code: 'COURT', unitCostMinor: 10_000, taxCode: 'EXEMPT', description: 'Filing fee' });
  return { client, matter };
}

/** The file numbers the list shows, in order. */
const listed = (html: string): string[] => [...html.matchAll(/<td class="file-no"><a [^>]*>([^<]+)<\/a><\/td>/g)].map((m) => m[1]!);

eachDialect('mass billing: the Client filter takes a client number or a name one client has, suggests as the clerk types, and refuses a shared name naming the field', async (db) => {
  await withApp(db, async (t) => {
    const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const f = await firm(cmds);
    await cmds.recordDisbursement(ctx, { matterId: f.matter.id, incurredOn: '2026-02-12', code: 'COURT', unitCostMinor: 10_000, taxCode: 'EXEMPT', description: 'Filing fee' });
    const k1 = await clientWithMatter(cmds, 'Kestrel Holdings', f.partner.id);
    const k2 = await clientWithMatter(cmds, 'Kestrel Holdings', f.partner.id);
    const pct = await clientWithMatter(cmds, 'Acme 100% Ltd', f.partner.id);
    // Names a wildcard would match too: "100%" is searched for as typed.
    await cmds.createClient(ctx, { name: 'Acme 1005 Ltd' });
    await cmds.createClient(ctx, { name: 'Acme 100 Ltd' });
    // Digits no client's number is are not part of a name: "99999" is not this client.
    await cmds.createClient(ctx, { name: 'Suite 99999 Holdings' });
    await t.runtime.relay.drain();
    const clerk = await t.user('billing');
    const b = t.browser();
    await b.login(clerk.email);

    // No client typed: every matter; the field is a text input with a datalist, not a select of clients.
    let html = ok(await b.get(`/billing/mass?${Q}`));
    assert.match(html, /data-count="4"/);
    assert.match(html, /<input type="text" id="mass-client" name="client" value="" list="client-options"/);
    // Labelled by its own label; the "Find a client" link beside it is not inside that label.
    const field = /<div class="field" id="client-field">([\s\S]*?)<\/div>/.exec(html)![1]!;
    assert.match(field, /<label for="mass-client">Client \(number or name\)<\/label>/);
    assert.match(field, /data-action="find-client"/);
    assert.doesNotMatch(field.slice(0, field.indexOf('</label>')), /<a /);
    assert.doesNotMatch(html, /<select name="clientId"/);
    assert.doesNotMatch(html, /Kestrel Holdings<\/option>/, 'clients are not listed in the page');

    // By number: that client's matter only, named beside the field.
    html = ok(await b.get(`/billing/mass?${Q}&client=${k2.client.clientNumber}`));
    assert.match(html, /data-count="1"/);
    assert.deepEqual(listed(html), [k2.matter.fileNumber]);
    assert.match(html, new RegExp(`<small class="hint" id="client-chosen">${k2.client.clientNumber} Kestrel Holdings</small>`));

    // By a name only one client has, case aside: carried on as its number (the links, the run).
    html = ok(await b.get(`/billing/mass?${Q}&client=${encodeURIComponent('  northwind LOGISTICS inc. ')}`));
    assert.deepEqual(listed(html), [f.matter.fileNumber]);
    assert.match(html, new RegExp(`name="client" value="${f.client.clientNumber}"`));
    // As the page and the suggestions show it ("12 Kestrel Holdings"), and with leading zeros.
    html = ok(await b.get(`/billing/mass?${Q}&client=${encodeURIComponent(`${k2.client.clientNumber} kestrel holdings`)}`));
    assert.deepEqual(listed(html), [k2.matter.fileNumber]);
    html = ok(await b.get(`/billing/mass?${Q}&client=00${k1.client.clientNumber}`));
    assert.deepEqual(listed(html), [k1.matter.fileNumber]);
    // The number with another client's name: not that client.
    ok(await b.get(`/billing/mass?${Q}&client=${encodeURIComponent(`${k2.client.clientNumber} Northwind Logistics Inc.`)}`), 422);
    // Spaces only: any client.
    assert.match(ok(await b.get(`/billing/mass?${Q}&client=%20%20`)), /data-count="4"/);

    // A name two clients share: refused naming the field, with both numbers; nothing listed.
    html = ok(await b.get(`/billing/mass?${Q}&client=Kestrel%20Holdings`), 422);
    assert.match(html, /<span class="field-error" data-error-for="client">2 clients have or hold this name: type the client number/);
    assert.match(html, new RegExp(`\\(${k1.client.clientNumber} Kestrel Holdings; ${k2.client.clientNumber} Kestrel Holdings\\)`));
    assert.match(html, /data-count="0"/);
    assert.doesNotMatch(html, /data-check-all="matterId"/, 'no box to tick every row of an empty list');
    // A number or name no client has.
    // Part of a name one client's holds: that client; part several hold: refused with their numbers.
    html = ok(await b.get(`/billing/mass?${Q}&client=logistics`));
    assert.deepEqual(listed(html), [f.matter.fileNumber]);
    html = ok(await b.get(`/billing/mass?${Q}&client=acme`), 422);
    // Each with its name: the clerk sees which to type.
    assert.match(html, new RegExp(`data-error-for="client">3 clients have or hold this name: type the client number \\(${pct.client.clientNumber} Acme 100% Ltd; \\d+ Acme 1005 Ltd; \\d+ Acme 100 Ltd\\)`));
    // "%" is a character, not a wildcard: only the one name holding it.
    assert.deepEqual(listed(ok(await b.get(`/billing/mass?${Q}&client=%25`))), [pct.matter.fileNumber]);
    for (const text of ['99999', 'Nobody Ltd', '_']) {
      html = ok(await b.get(`/billing/mass?${Q}&client=${encodeURIComponent(text)}`), 422);
      assert.match(html, /data-error-for="client">no client with this number or name/, text);
      assert.match(html, /data-count="0"/, text);
    }

    // An old link naming the client by id: filtered by it, the field showing its number.
    html = ok(await b.get(`/billing/mass?${Q}&clientId=${k1.client.id}`));
    assert.deepEqual(listed(html), [k1.matter.fileNumber]);
    assert.match(html, new RegExp(`name="client" value="${k1.client.clientNumber}"`));

    // Suggestions for htmx: the datalist's options, by number prefix or a part of the name; % and _ taken literally.
    const options = async (text: string) => {
      const res = await b.get(`/billing/mass/clients?client=${encodeURIComponent(text)}`, { 'HX-Request': 'true' });
      assert.equal(res.status, 200, res.text);
      assert.match(res.headers.get('vary') ?? '', /HX-Request/);
      assert.doesNotMatch(res.text, /<html/i, 'a fragment');
      return [...res.text.matchAll(/<option value="(\d+)"/g)].map((m) => Number(m[1]));
    };
    assert.deepEqual((await options('kestrel')).sort(), [k1.client.clientNumber, k2.client.clientNumber].sort());
    assert.deepEqual(await options('100%'), [pct.client.clientNumber]);
    assert.equal((await options('100')).length, 3, 'without the % all three');
    // The client whose number is typed comes first, then numbers starting with it, then names; leading zeros ignored.
    assert.equal((await options(String(k2.client.clientNumber)))[0], k2.client.clientNumber);
    assert.equal((await options(`00${k2.client.clientNumber}`))[0], k2.client.clientNumber);
    assert.deepEqual(await options('_'), []);
    assert.deepEqual(await options(''), []);
    assert.ok((await options(String(f.client.clientNumber))).includes(f.client.clientNumber));

    // Without JavaScript: a page linking each match to the list filtered by it.
    html = ok(await b.get('/billing/mass/clients?client=kestrel'));
    assert.match(html, /<html/i);
    assert.match(html, new RegExp(`href="/billing/mass\\?client=${k1.client.clientNumber}"`));
    assert.match(html, new RegExp(`href="/billing/mass\\?client=${k2.client.clientNumber}"`));
    assert.match(ok(await b.get('/billing/mass/clients?client=zzz')), /id="client-none"/);
    // Reached from the list ("Find a client"), its links keep the list's other choices.
    html = ok(await b.get(`/billing/mass?${Q}&client=nobody&cycle=MONTH`), 422);
    const find = /<a href="([^"]+)" data-action="find-client">/.exec(html)![1]!.replaceAll('&amp;', '&');
    html = ok(await b.get(find.replace('client=nobody', 'client=kestrel')));
    const link = new RegExp(`href="/billing/mass\\?([^"]*client=${k1.client.clientNumber})"`).exec(html)![1]!.replaceAll('&amp;', '&');
    assert.deepEqual(Object.fromEntries(new URLSearchParams(link)), { invoiceDate: DATE, upTo: DATE, cycle: 'MONTH', client: String(k1.client.clientNumber) });
    // Only the list's own fields are carried back.
    html = ok(await b.get(`/billing/mass/clients?client=kestrel&back=${encodeURIComponent('cycle=MONTH&evil=1')}`));
    assert.match(html, new RegExp(`href="/billing/mass\\?cycle=MONTH&client=${k1.client.clientNumber}"`), 'ok() decodes entities');

    // Bill all under the filter drafts that client's matter only.
    html = ok(await b.get(`/billing/mass?${Q}&client=${pct.client.clientNumber}`));
    const runId = /name="runId" value="([^"]+)"/.exec(html)![1]!;
    // The confirmation says whose matters it bills, and so does the run's page.
    const confirm = ok(await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['client', String(pct.client.clientNumber)], ['runId', runId], ['scope', 'all']]));
    assert.match(confirm, new RegExp(`<p class="notice" id="confirm-matter-filters">Only the matters of client ${pct.client.clientNumber} Acme 100% Ltd\\.</p>`));
    const res = await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['client', String(pct.client.clientNumber)], ['runId', runId], ['scope', 'all'], ['confirm', 'yes']]);
    assert.equal(res.status, 303, res.text.slice(0, 800));
    await waitForRun(b, `/billing/mass/runs/${runId}`);
    const runPage = ok(await b.get(`/billing/mass/runs/${runId}`));
    assert.match(runPage, new RegExp(`id="run-matter-filters">Only the matters of client ${pct.client.clientNumber} Acme 100% Ltd\\.`));
    // Its link back to the list carries the run's dates and client (by number): the list as the run chose from it, now without the matter it billed.
    const back = /<a href="\/billing\/mass\?([^"]*)" id="run-list-link">/.exec(runPage)![1]!;
    assert.deepEqual(Object.fromEntries(new URLSearchParams(back)), { invoiceDate: DATE, client: String(pct.client.clientNumber) }, 'the up-to date, the invoice date, left to follow it');
    const left = ok(await b.get(`/billing/mass?${back}`));
    assert.match(left, new RegExp(`id="client-chosen">${pct.client.clientNumber} Acme 100% Ltd<`), 'the list of that client');
    assert.match(left, /id="eligible-count" data-count="0"/, 'its one matter billed: none left');
    assert.doesNotMatch(left, new RegExp(`value="${pct.matter.id}"`));
    const drafted = await t.db.db.selectFrom('billing_bill').select('matter_id').where('batch_id', '=', runId).execute();
    assert.deepEqual(drafted.map((r) => r.matter_id), [pct.matter.id]);
    const batch = await t.db.db.selectFrom('billing_batch').select('filters_json').where('id', '=', runId).executeTakeFirstOrThrow();
    assert.equal(JSON.parse(String(batch.filters_json)).clientId, pct.client.id);
  });
});

eachDialect('the Client filter folds case and accents alike on both databases: "muller" and "MÜLLER GMBH" find Müller GmbH, "emile" Émile Zola SARL, "orsted" Ørsted (SQLite\'s lower() folds ASCII only)', async (db) => {
  await withApp(db, async (t) => {
    const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const f = await firm(cmds);
    const muller = await clientWithMatter(cmds, 'Müller GmbH', f.partner.id);
    const emile = await clientWithMatter(cmds, 'Émile Zola SARL', f.partner.id);
    const orsted = await clientWithMatter(cmds, 'Ørsted A/S', f.partner.id);
    const istanbul = await clientWithMatter(cmds, 'İstanbul Ticaret', f.partner.id);
    await t.runtime.relay.drain();
    const clerk = await t.user('billing');
    const b = t.browser();
    await b.login(clerk.email);
    const cases: [string, { matter: { fileNumber: string }; client: { clientNumber: number } }][] = [
      ['MÜLLER GMBH', muller], ['müller gmbh', muller], ['muller', muller], ['ÜLLER', muller],
      ['emile zola sarl', emile], ['ÉMILE', emile], ['zola', emile],
      ['ørsted a/s', orsted], ['ØRSTED', orsted], ['oersted'.replace('oe', 'ø'), orsted],
      ['istanbul ticaret', istanbul], ['İSTANBUL', istanbul],
      [`${emile.client.clientNumber} EMILE ZOLA SARL`, emile],
    ];
    for (const [typed, want] of cases) {
      const html = ok(await b.get(`/billing/mass?${Q}&client=${encodeURIComponent(typed)}`));
      assert.deepEqual(listed(html), [want.matter.fileNumber], typed);
      assert.match(html, new RegExp(`name="client" value="${want.client.clientNumber}"`), typed);
    }
    // The suggestions fold the same way.
    const suggested = ok(await b.get('/billing/mass/clients?client=mull', { 'hx-request': 'true' }));
    assert.match(suggested, new RegExp(`<option value="${muller.client.clientNumber}" label="${muller.client.clientNumber} Müller GmbH"`));
    // Ø as typed without it; and a name told from another only by accents, by typing it exactly.
    assert.deepEqual(listed(ok(await b.get(`/billing/mass?${Q}&client=orsted`))), [orsted.matter.fileNumber]);
    const plain = await clientWithMatter(cmds, 'Muller GmbH', f.partner.id);
    const kamal = await clientWithMatter(cmds, 'कमल', f.partner.id);
    const komal = await clientWithMatter(cmds, 'कोमल', f.partner.id);
    await t.runtime.relay.drain();
    for (const [typed, want] of [['Müller GmbH', muller], ['Muller GmbH', plain], ['कमल', kamal], ['कोमल', komal]] as const) {
      assert.deepEqual(listed(ok(await b.get(`/billing/mass?${Q}&client=${encodeURIComponent(typed)}`))), [want.matter.fileNumber], typed);
    }
    // Told apart only by accents and typed otherwise than either is written: both asked about, neither guessed.
    for (const typed of ['müller gmbh', 'MULLER GMBH', 'mùller gmbh']) {
      assert.match(ok(await b.get(`/billing/mass?${Q}&client=${encodeURIComponent(typed)}`), 422), new RegExp(`2 clients have or hold this name: type the client number \\(${muller.client.clientNumber} Müller GmbH; ${plain.client.clientNumber} Muller GmbH\\)`), typed);
    }
    // Marks alone hold no name (they would match every client).
    assert.doesNotMatch(ok(await b.get('/billing/mass/clients?client=%CC%81%CC%88', { 'hx-request': 'true' })), /<option/);
    // A client renamed in matters is found by its new name.
    await cmds.updateClient(ctx, emile.client.id, { name: 'Zoë Émile & Cie' });
    await t.runtime.relay.drain();
    assert.deepEqual(listed(ok(await b.get(`/billing/mass?${Q}&client=${encodeURIComponent('zoe emile')}`))), [emile.matter.fileNumber]);
    ok(await b.get(`/billing/mass?${Q}&client=sarl`), 422);
  });
});
