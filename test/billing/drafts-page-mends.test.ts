/**
 * The draft bills page at its edges, on both databases: a page past the last one shows the last
 * page; a batch older than the 50 newest stays chosen in the filter; "all drafts listed" when
 * every listed draft has gone since is the listing-changed refusal (409), not "select the bills
 * first"; and Modify with only bills that are no longer drafts asks nothing (409, nothing changed).
 */
import assert from 'node:assert/strict';
import { prng } from '../../src/cli/demo.ts';
import { createBillingCommands, createMassBilling } from '../../src/modules/billing/index.ts';
import { createMattersCommands, seedDemoFirm } from '../../src/modules/matters/index.ts';
import { withApp } from '../support/app.ts';
import { eachDialect } from '../support/db.ts';
import { ctx } from './support.ts';
import { followed, ok } from './web-support.ts';

const DATE = '2026-03-01';

eachDialect('draft bills page: past the last page, an old batch kept in the filter, every listed draft gone, Modify of no draft', async (db) => {
  await withApp(db, async (t) => {
    const matters = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    await seedDemoFirm(matters, { matters: 6, entriesPerMatter: 2, seed: 5, random: prng, ctx, asOf: DATE });
    await t.runtime.relay.drain();
    const billing = createBillingCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const mass = createMassBilling({ db: t.db.db, clock: t.clock, relay: t.runtime.relay }, billing);
    const first = await mass.createRun(ctx, { invoiceDate: DATE, upTo: DATE });
    const drafted = await mass.runBatch(ctx, first.id);
    assert.ok(drafted.draftedCount >= 3, `drafted ${drafted.draftedCount}`);
    const clerk = await t.user('billing');
    const b = t.browser();
    await b.login(clerk.email);

    // Past the last page (an old link, or the last page's drafts all acted on): the last page, its drafts listed.
    let html = ok(await b.get('/billing/drafts?page=99'));
    assert.equal((html.match(/<tr id="draft-/g) ?? []).length, drafted.draftedCount);
    assert.doesNotMatch(html, /No draft bills/);

    // 50 runs made since (each picking a matter that has its draft: skipped): the first run is older than the 50 the filter lists.
    const matterId = String((await t.db.db.selectFrom('billing_bill').select('matter_id').where('batch_id', '=', first.id).executeTakeFirstOrThrow()).matter_id);
    for (let i = 0; i < 50; i++) {
      t.clock.advanceMs(1_000);
      await mass.createRun(ctx, { invoiceDate: DATE, upTo: DATE, matterIds: [matterId] });
    }
    html = ok(await b.get(`/billing/drafts?batch=${first.id}`));
    assert.match(html, new RegExp(`<option value="${first.id}" selected>`), 'the batch chosen stays chosen');
    assert.equal((html.match(/<select name="batch">[\s\S]*?<\/select>/)![0].match(/<option value="[0-9a-f-]{36}"/g) ?? []).length, 51, 'the 50 newest and the one chosen');

    // Every draft the page listed deleted since: approving "all drafts listed" is refused as a changed list, nothing done.
    const listing = /name="listing" value="([^"]+)"/.exec(html)![1]!;
    const ids = (await t.db.db.selectFrom('billing_bill').select('id').where('status', '=', 'draft').where('batch_id', '=', first.id).execute()).map((r) => String(r.id));
    for (const id of ids) await billing.deleteDraft(ctx, id);
    const gone = await b.post('/billing/drafts/act', { every: 'yes', listing, batch: first.id, action: 'approve', confirmed: 'yes' });
    assert.equal(gone.status, 409, gone.text.slice(0, 500));
    assert.match(ok(gone, 409), /The drafts listed have changed since the page was shown/);
    assert.equal((await t.db.db.selectFrom('billing_bill').select('id').where('status', '=', 'approved').execute()).length, 0, 'nothing approved');

    // Modify with only bills that are drafts no longer (a crafted post): no "Change 0 draft bills?", nothing changed.
    const audits = (await t.db.db.selectFrom('audit_log').select('id').execute()).length;
    const none = await followed(b, b.post('/billing/drafts/modify', { id: `${ids[0]!}@1`, newTerms: '7' }));
    assert.equal(none.status, 409);
    const page = ok(none, 409);
    assert.match(page, /None of the chosen bills is a draft now \(approved or deleted since the list was shown\): nothing was changed/);
    assert.doesNotMatch(page, /Change 0 draft/);
    assert.equal((await t.db.db.selectFrom('audit_log').select('id').execute()).length, audits, 'nothing audited');
  });
}, { timeout: 300_000 });
