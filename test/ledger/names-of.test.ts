/**
 * The ledger's pages and reports name the clients, matters and timekeepers on them by reading
 * only those ids from its copies (a firm may hold tens of thousands; a page shows a few), in
 * statements of at most 500 ids. Asked for none, it reads none. On both databases.
 */
import assert from 'node:assert/strict';
import * as store from '../../src/modules/ledger/store.ts';
import { eachDialect } from '../support/db.ts';

const AT = '2026-01-01T00:00:00.000Z';

eachDialect('ledger namesOf: only the ids asked for, across statements of 500, none when none are asked', async (db) => {
  const clients = Array.from({ length: 1_203 }, (_, i) => ({ id: `c-${String(i).padStart(5, '0')}`, client_number: i + 1, name: `Client ${i}`, email: null, address: i === 7 ? 'Line 1\nLine 2' : null, source_at: AT }));
  for (let i = 0; i < clients.length; i += 200) await db.db.insertInto('ledger_client').values(clients.slice(i, i + 200)).execute();
  await db.db.insertInto('ledger_timekeeper').values([
    { id: 'tk-a', initials: 'AA', name: 'Ann Able', active: 1, source_at: AT },
    { id: 'tk-b', initials: 'BB', name: 'Bob Baker', active: 1, source_at: AT },
  ]).execute();
  await db.db.insertInto('ledger_matter').values([
    { id: 'm-1', client_id: 'c-00001', file_number: '2.1', name: 'Lease', responsible_timekeeper_id: 'tk-a', originating_timekeeper_id: 'tk-b', currency: 'AUD', source_at: AT },
    { id: 'm-2', client_id: 'c-00002', file_number: '3.1', name: 'Sale', responsible_timekeeper_id: 'tk-b', originating_timekeeper_id: null, currency: 'AUD', source_at: AT },
  ]).execute();

  // Asked for none (nothing, or only blanks and nulls): none read.
  for (const want of [{}, { clients: [], matters: [null, undefined, ''], timekeepers: [] }]) {
    const none = await store.namesOf(db.db, want);
    assert.deepEqual([none.clients.size, none.matters.size, none.timekeepers.size], [0, 0, 0]);
  }

  // Some: only those, each as the pages show it; an unknown id is simply absent; repeats read once.
  const some = await store.namesOf(db.db, { clients: ['c-00007', 'c-00007', 'nobody', 'c-01202'], matters: ['m-1'], timekeepers: ['tk-b'] });
  assert.deepEqual([...some.clients.keys()].sort(), ['c-00007', 'c-01202']);
  assert.deepEqual(some.clients.get('c-00007'), { number: 8, name: 'Client 7', email: null, address: 'Line 1\nLine 2' });
  assert.deepEqual(some.clients.get('c-01202'), { number: 1_203, name: 'Client 1202', email: null, address: null });
  assert.deepEqual([...some.matters.entries()], [['m-1', { clientId: 'c-00001', fileNumber: '2.1', name: 'Lease', responsibleTimekeeperId: 'tk-a', originatingTimekeeperId: 'tk-b' }]]);
  assert.deepEqual([...some.timekeepers.entries()], [['tk-b', { initials: 'BB', name: 'Bob Baker' }]]);

  // More than one statement holds (1,203 ids: three of 500): every one found, from any iterable.
  const all = await store.namesOf(db.db, { clients: new Set(clients.map((c) => c.id)).values() });
  assert.equal(all.clients.size, clients.length);
  for (const c of clients) assert.equal(all.clients.get(c.id)?.name, c.name, c.id);
  assert.equal(all.matters.size + all.timekeepers.size, 0);
});
