/**
 * A bill run's page lists its skipped and drafted matters a page at a time (500 skipped, 200
 * drafted per page), with where the clerk is ("Skipped 501–730 of 730") and Previous/Next;
 * polling keeps the pages; a page number that is not one is refused naming the field. On both
 * databases. The run is a real one over the demo firm; rows beyond it are added to its batch
 * as a run of thousands of matters would leave them.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { demoClerk, ok, postMany, waitForRun } from './web-support.ts';
import { withApp } from '../support/app.ts';

const DATE = '2026-03-01';

eachDialect('a bill run\'s page: its skipped and drafted matters a page at a time, polling keeping the page; a bad page refused', async (db) => {
  await withApp(db, async (t) => {
    const b = await demoClerk(t, { matters: 4, seed: 7, fixedCharges: false, asOf: DATE });
    let html = ok(await b.get(`/billing/mass?invoiceDate=${DATE}&upTo=${DATE}`));
    const runId = /name="runId" value="([^"]+)"/.exec(html)![1]!;
    const res = await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['runId', runId], ['scope', 'all'], ['confirm', 'yes']]);
    assert.equal(res.status, 303, res.text.slice(0, 800));
    await waitForRun(b, `/billing/mass/runs/${runId}`);
    const batch = await t.db.db.selectFrom('billing_batch').selectAll().where('id', '=', runId).executeTakeFirstOrThrow();
    const realDrafted = Number(batch.drafted_count);
    const realSkipped = Number(batch.skipped_count);
    assert.ok(realDrafted >= 1, `drafted ${realDrafted}`);

    // As a run over thousands of matters leaves its rows: 700 more skipped, 500 more drafted.
    const at = new Date(t.clock.now()).toISOString();
    const extra = [
      ...Array.from({ length: 700 }, (_, i) => ({ batch_id: runId, matter_id: `skipped-${String(i).padStart(4, '0')}`, position: 10_000 + i, state: 'skipped', bill_id: null, item_count: 0, total_minor: null, reason: `Reason ${i}`, updated_at: at })),
      ...Array.from({ length: 500 }, (_, i) => ({ batch_id: runId, matter_id: `drafted-${String(i).padStart(4, '0')}`, position: 20_000 + i, state: 'drafted', bill_id: `bill-${i}`, item_count: 1, total_minor: 100, reason: null, updated_at: at })),
    ];
    for (let i = 0; i < extra.length; i += 200) await t.db.db.insertInto('billing_batch_matter').values(extra.slice(i, i + 200)).execute();
    const skippedTotal = realSkipped + 700;
    const draftedTotal = realDrafted + 500;
    await t.db.db.updateTable('billing_batch').set({ matter_count: skippedTotal + draftedTotal, skipped_count: skippedTotal, drafted_count: draftedTotal }).where('id', '=', runId).execute();

    const rowsOf = (h: string, list: 'skipped' | 'drafted') => {
      const table = new RegExp(`<table class="list" id="run-${list}-list">([\\s\\S]*?)</table>`).exec(h);
      return table ? [...table[1]!.matchAll(/<tr data-matter="([^"]+)"/g)].map((m) => m[1]!) : [];
    };
    const pagerOf = (h: string, list: 'skipped' | 'drafted') => /<nav class="pager" id="run-(?:skipped|drafted)-pager"[^>]*>[\s\S]*?<\/nav>/g.exec(h.slice(h.indexOf(`id="run-${list}-pager"`) - 30))?.[0] ?? '';

    // First pages: 500 skipped, 200 drafted, each with Next only.
    const url = `/billing/mass/runs/${runId}`;
    html = ok(await b.get(url));
    assert.equal(rowsOf(html, 'skipped').length, 500);
    assert.equal(rowsOf(html, 'drafted').length, 200);
    let p = pagerOf(html, 'skipped');
    assert.match(p, new RegExp(`Skipped 1–500 of ${skippedTotal}`));
    assert.doesNotMatch(p, /rel="prev"/);
    assert.match(p, new RegExp(`<a href="${url}\\?skipped=2#run-skipped-list" rel="next">Next</a>`));
    assert.match(pagerOf(html, 'drafted'), new RegExp(`Drafted 1–200 of ${draftedTotal}`));

    // The second page of skipped, keeping the drafted page; every skipped row seen once over the two pages.
    const first = rowsOf(html, 'skipped');
    html = ok(await b.get(`${url}?skipped=2&drafted=2`));
    const second = rowsOf(html, 'skipped');
    assert.equal(second.length, skippedTotal - 500);
    assert.equal(new Set([...first, ...second]).size, skippedTotal, 'each skipped matter listed once');
    p = pagerOf(html, 'skipped');
    assert.match(p, new RegExp(`Skipped 501–${skippedTotal} of ${skippedTotal}`));
    assert.match(p, new RegExp(`<a href="${url}\\?drafted=2#run-skipped-list" rel="prev">Previous</a>`));
    assert.doesNotMatch(p, /rel="next"/);
    assert.equal(rowsOf(html, 'drafted').length, 200);
    assert.match(pagerOf(html, 'drafted'), new RegExp(`Drafted 201–400 of ${draftedTotal}`));
    assert.match(pagerOf(html, 'drafted'), new RegExp(`<a href="${url}\\?skipped=2&drafted=3#run-drafted-list" rel="next">Next</a>`));
    html = ok(await b.get(`${url}?drafted=3`));
    assert.equal(rowsOf(html, 'drafted').length, draftedTotal - 400);

    // A page past the end is the last page (an old link).
    html = ok(await b.get(`${url}?skipped=9`));
    assert.deepEqual(rowsOf(html, 'skipped'), second);
    assert.match(pagerOf(html, 'skipped'), new RegExp(`Skipped 501–${skippedTotal} of ${skippedTotal}`));
    // A running run polls the page the clerk is on.
    await t.db.db.updateTable('billing_batch').set({ status: 'running' }).where('id', '=', runId).execute();
    html = ok(await b.get(`${url}?skipped=2`, { 'hx-request': 'true' }));
    assert.match(html, new RegExp(`hx-get="${url}\\?skipped=2"`));
    await t.db.db.updateTable('billing_batch').set({ status: 'done' }).where('id', '=', runId).execute();

    // Not a page number: refused, naming the field.
    for (const bad of ['0', 'abc', '-1', '10001', '1.5']) {
      const r = await b.get(`${url}?skipped=${bad}`);
      assert.equal(r.status, 422, `skipped=${bad}`);
      assert.match(r.text, /skipped/);
      assert.match(r.text, /must be a page number from 1 to 10000/);
    }
  });
});
