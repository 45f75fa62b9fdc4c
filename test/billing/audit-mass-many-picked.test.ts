/**
 * A run may hand-pick up to 50,000 matters; the candidates query named every picked id in one
 * `in (...)` list, past SQLite's 32,766 variables ("too many SQL variables"). A long list now
 * reads the matters the filters give and keeps the picked ones, in the same order.
 */
import assert from 'node:assert/strict';
import { HAND_PICKED_IN_QUERY, massCandidates } from '../../src/modules/billing/mass-store.ts';
import { eachDialect } from '../support/db.ts';
import { ctx, firm, setup } from './support.ts';

eachDialect('hand-picked matters past SQLite\'s variable limit: the picked matters, in client and matter order', async (db) => {
  const s = await setup(db);
  const f = await firm(s.cmds);
  const second = await s.cmds.openMatter(ctx, { clientId: f.client.id, name: 'Second matter', responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01' });
  await s.cmds.openMatter(ctx, { clientId: f.client.id, name: 'Not picked', responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01' });
  await s.drain();
  const filters = { invoiceDate: '2026-03-01', upTo: '2026-02-28' };
  // 33,000 ids that are no matter, with the two picked ones among them (second first).
  const ids = Array.from({ length: 33_000 }, (_, i) => `no-such-matter-${i}`);
  ids.splice(100, 0, second.id);
  ids.splice(20_000, 0, f.matter.id);
  assert.ok(ids.length > 32_766 && ids.length > HAND_PICKED_IN_QUERY);
  const got = await massCandidates(db.db, filters, { matterIds: ids });
  assert.deepEqual(got.map((c) => c.matterId), [f.matter.id, second.id]);
  // A short list is named in the query: the same answer.
  const short = await massCandidates(db.db, filters, { matterIds: [second.id, f.matter.id] });
  assert.deepEqual(short.map((c) => c.matterId), [f.matter.id, second.id]);
  assert.deepEqual(short, got);
  await s.rt.relay.stop();
});
