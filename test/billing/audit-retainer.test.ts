/**
 * The recorded retainer balance is saved over the version the clerk saw: a balance someone else
 * recorded since (another tab, a second clerk at the same moment) is refused (409), not
 * overwritten; the page's form carries that version, and a form without it is refused (422).
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { unescapeHtml, withApp } from '../support/app.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { HttpError } from '../../src/shared/web/errors.ts';
import { ctx, firm, refused, setup } from './support.ts';

eachDialect('retainer balance: saved over the version seen; a stale or simultaneous save is refused (409) and writes nothing', async (db) => {
  const s = await setup(db);
  const { matter } = await firm(s.cmds);
  await s.drain();
  const B = s.billing;
  const audits = async () => (await db.db.selectFrom('audit_log').select('id').where('action', '=', 'billing.retainer_balance_set').execute()).length;
  const first = await B.setRetainerBalance(ctx, matter.id, { balanceMinor: 600_000, asOf: '2026-02-01', expectedVersion: 0 });
  assert.equal(first.version, 1);
  const e = await refused(B.setRetainerBalance(ctx, matter.id, { balanceMinor: 1, asOf: '2026-02-02', expectedVersion: 0 }));
  assert.match(e.message, /recorded by someone else since \(now \$?6,000\.00.* as of 2026-02-01/);
  assert.equal((await B.findRetainerBalance(matter.id))!.balanceMinor, 600_000, 'not overwritten');
  assert.equal(await audits(), 1);
  await refused(B.setRetainerBalance(ctx, matter.id, { balanceMinor: 1, asOf: '2026-02-02', expectedVersion: -1 }), 422);

  // Two clerks who both saw version 1 save at once: one is recorded, the other refused.
  const results = await Promise.allSettled([700_000, 800_000].map((balanceMinor) => B.setRetainerBalance(ctx, matter.id, { balanceMinor, asOf: '2026-02-03', expectedVersion: 1 })));
  const done = results.filter((r) => r.status === 'fulfilled');
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  assert.equal(done.length, 1, JSON.stringify(results.map((r) => r.status)));
  assert.ok(failed[0]!.reason instanceof HttpError && failed[0]!.reason.status === 409, String(failed[0]!.reason));
  const now = (await B.findRetainerBalance(matter.id))!;
  assert.equal(now.version, 2);
  assert.equal(now.balanceMinor, (done[0] as PromiseFulfilledResult<{ balanceMinor: number }>).value.balanceMinor);
  assert.equal(await audits(), 2);
  // Without a version (the API's older callers): recorded over whatever is there.
  assert.equal((await B.setRetainerBalance(ctx, matter.id, { balanceMinor: 5, asOf: '2026-02-04' })).version, 3);
});

eachDialect('retainer balance form: carries the version shown; posted again after another save it is a 409 naming what is recorded; without a version a 422', async (db) => {
  await withApp(db, async (t) => {
    const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const { matter } = await firm(cmds);
    await t.runtime.relay.drain();
    await t.user('billing');
    const b = t.browser();
    await b.login('billing@firm.test');
    const page = await b.get(`/billing/matters/${matter.id}/bills`);
    assert.equal(page.status, 200);
    const version = /<input type="hidden" name="version" value="(\d+)">/.exec(page.text)?.[1];
    assert.equal(version, '0', 'no balance recorded yet');
    const form = { balance: '6000.00', asOf: '2026-02-01', note: '' };
    const saved = await b.post(`/billing/matters/${matter.id}/retainer`, { ...form, version: version! });
    assert.equal(saved.status, 303);
    const stale = await b.post(`/billing/matters/${matter.id}/retainer`, { ...form, balance: '10.00', version: version! });
    assert.equal(stale.status, 409, stale.text.slice(0, 400));
    const text = unescapeHtml(stale.text);
    assert.match(text, /data-error-for="retainer">The retainer balance was recorded by someone else since \(now \$6,000\.00 as of 2026-02-01/);
    assert.match(text, /<input type="hidden" name="version" value="1">/, 'the page now offers the current version');
    assert.match(text, /name="balance"[^>]*value="10\.00"|value="10\.00"[^>]*name="balance"/, 'what was typed is kept');
    const missing = await b.post(`/billing/matters/${matter.id}/retainer`, { ...form, balance: '20.00' });
    assert.equal(missing.status, 422);
    assert.match(missing.text, /data-error-for="version"/);
    const recorded = await t.db.db.selectFrom('billing_retainer_balance').select(['balance_minor', 'version']).where('matter_id', '=', matter.id).executeTakeFirstOrThrow();
    assert.deepEqual([Number(recorded.balance_minor), Number(recorded.version)], [600_000, 1]);
  });
});
