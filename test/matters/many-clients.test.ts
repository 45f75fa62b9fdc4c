/**
 * A firm with more clients than a select lists (CLIENT_CHOICES, 1,000 by name): the Open a
 * matter form and a timekeeper's client-rate form say so and where to go, and a client past
 * the first 1,000 can still be chosen from its own page (its "Open a matter" link), and is
 * kept when the form comes back with an error. On both databases.
 */
import assert from 'node:assert/strict';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { CLIENT_CHOICES, clientChoices } from '../../src/modules/matters/queries.ts';
import { systemContext } from '../../src/shared/events.ts';
import { withApp } from '../support/app.ts';
import { eachDialect } from '../support/db.ts';

const ctx = systemContext('many-clients-test', 'test');

eachDialect('more clients than a select lists: the forms say so, and a client past the first 1,000 is chosen from its page', async (db) => {
  await withApp(db, async (t) => {
    const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: { kick: () => undefined } });
    const mh = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
    const first = await cmds.createClient(ctx, { name: 'Aardvark Ltd' });
    const last = await cmds.createClient(ctx, { name: 'Zz Last Client' });
    // Filler clients sorting between them by name (rows as the matters module keeps them).
    const at = t.clock.now().toISOString();
    const filler = Array.from({ length: CLIENT_CHOICES }, (_, i) => ({
      id: `filler-${String(i).padStart(5, '0')}`, client_number: 900_000 + i, name: `Middle ${String(i).padStart(5, '0')}`, email: null, address: null, tax_id: null, created_at: at, updated_at: at,
    }));
    for (let i = 0; i < filler.length; i += 200) await t.db.db.insertInto('matters_client').values(filler.slice(i, i + 200)).execute();

    // The query: the first 1,000 by name, `more` set, and a chosen client past them included in name order.
    const plain = await clientChoices(t.db.db);
    assert.equal(plain.list.length, CLIENT_CHOICES);
    assert.equal(plain.more, true);
    assert.equal(plain.list[0]!.id, first.id);
    assert.ok(!plain.list.some((cl) => cl.id === last.id));
    const withLast = await clientChoices(t.db.db, { include: last.id });
    assert.equal(withLast.list.length, CLIENT_CHOICES + 1);
    assert.equal(withLast.list.at(-1)!.id, last.id, 'in name order');
    assert.equal((await clientChoices(t.db.db, { include: 'no-such-client' })).list.length, CLIENT_CHOICES);
    const few = await clientChoices(t.db.db, { limit: 5000 });
    assert.equal(few.more, false);
    assert.equal(few.list.length, CLIENT_CHOICES + 2);

    const admin = await t.user('admin');
    const b = t.browser();
    await b.login(admin.email);
    // Open a matter from the menu: the first 1,000 listed, and the page says where the others are.
    let page = await b.get('/matters/new');
    assert.equal(page.status, 200);
    assert.match(page.text, /id="more-clients">The first 1,000 clients by name are listed/);
    assert.doesNotMatch(page.text, new RegExp(`<option value="${last.id}"`));
    // From the last client's page: offered and chosen.
    const clientPage = await b.get(`/matters/clients/${last.id}`);
    assert.match(clientPage.text, new RegExp(`href="/matters/new\\?clientId=${last.id}"`));
    page = await b.get(`/matters/new?clientId=${last.id}`);
    assert.match(page.text, new RegExp(`<option value="${last.id}" selected>`));
    const fields = { clientId: last.id, name: 'Last v. First', responsibleTimekeeperId: mh.id, billingCycle: 'MONTH', openedOn: '2026-03-02' };
    // Sent back with an error: still chosen.
    const bad = await b.post('/matters', { ...fields, wipCap: '1.234' });
    assert.equal(bad.status, 422);
    assert.match(bad.text, new RegExp(`<option value="${last.id}" selected>`));
    const opened = await b.post('/matters', fields);
    assert.equal(opened.status, 303, opened.text.slice(0, 500));
    assert.equal((await cmds.listMatters({ clientId: last.id })).length, 1);

    // A timekeeper's client rates: the same note; a rate refused for the last client keeps it chosen.
    page = await b.get(`/matters/timekeepers/${mh.id}`);
    assert.match(page.text, /id="more-clients">The first 1,000 clients by name are listed/);
    const refused = await b.post(`/matters/timekeepers/${mh.id}/client-rates`, { clientId: last.id, rate: 'lots' });
    assert.equal(refused.status, 422, refused.text.slice(0, 300));
    assert.match(refused.text, new RegExp(`<option value="${last.id}" selected>`));
  });
});
