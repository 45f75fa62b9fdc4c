/**
 * Seed 001's last-minute changes, on both databases: a mass billing row's composer link opens
 * the bill with the run's choices; saving it goes back to the list, which names the draft
 * "changed by hand"; Bill all (or Bill selected) takes it into the run's batch as it is (not
 * composed again, no item taken twice), audited; a draft no longer a draft outside a run is
 * named and not taken; an unticked one is left out.
 */
import assert from 'node:assert/strict';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { createBillingCommands } from '../../src/modules/billing/index.ts';
import { eachDialect } from '../support/db.ts';
import { demoClerk, followed, ok, postMany, waitForRun } from './web-support.ts';
import { withApp } from '../support/app.ts';
import type { Browser, TestApp } from '../support/app.ts';
import { ctx } from './support.ts';

const DATE = '2026-03-01';

const clerk = (t: TestApp): Promise<Browser> => demoClerk(t, { matters: 6, seed: 5, fixedCharges: true, asOf: DATE });

/** The composer link of a mass billing row (the file number's). */
function composerLinkOf(html: string, matterId: string): string {
  const row = new RegExp(`<tr id="mass-${matterId}"[^>]*>[\\s\\S]*?<td class="file-no"><a href="([^"]+)">`).exec(html);
  assert.ok(row, `a row for ${matterId}`);
  return row[1]!;
}


eachDialect('mass billing: a draft changed by hand from a row goes back to the list and into the run as it is', async (db) => {
  await withApp(db, async (t) => {
    const b = await clerk(t);
    const q = `invoiceDate=${DATE}&upTo=${DATE}&terms=21`;
    let html = ok(await b.get(`/billing/mass?${q}`));
    const rowIds = [...html.matchAll(/<tr id="mass-([0-9a-f-]{36})"/g)].map((m) => m[1]!);
    assert.ok(rowIds.length >= 3, `eligible ${rowIds.length}`);
    const [handMatter, other] = rowIds;

    // The row's link opens the composer with the run's choices and says where saving leads.
    const link = composerLinkOf(html, handMatter!);
    assert.match(link, /[?&]back=/);
    html = ok(await b.get(link));
    assert.match(html, /id="from-mass"/);
    const back = /<input type="hidden" name="back" value="([^"]*)">/.exec(html)![1]!;
    assert.equal(new URLSearchParams(back).get('terms'), '21', 'the list\'s choices are carried');

    // A last-minute change (the payment terms), saved: back to the list, which names the draft.
    const saved = await postMany(b, `/billing/matters/${handMatter}/compose`, [['invoiceDate', DATE], ['upTo', DATE], ['paymentTermsDays', '45'], ['back', back]]);
    assert.equal(saved.status, 303, saved.text.slice(0, 800));
    assert.match(saved.location ?? '', /^\/billing\/mass\?.*handDraft=[0-9a-f-]{36}#hand-drafts$/);
    const draft = await t.db.db.selectFrom('billing_bill').selectAll().where('matter_id', '=', handMatter!).where('status', '=', 'draft').executeTakeFirstOrThrow();
    assert.equal(draft.batch_id, null);
    assert.equal(draft.due_date, '2026-04-15', 'the change made by hand: 45 days');
    const lineCount = async () => Number((await t.db.db.selectFrom('billing_bill_line').select((eb) => eb.fn.countAll().as('n')).where('bill_id', '=', draft.id).executeTakeFirstOrThrow()).n);
    const linesBefore = await lineCount();
    html = ok(await b.get(saved.location!));
    assert.match(html, new RegExp(`<section id="hand-drafts">[\\s\\S]*<tr data-bill="${draft.id}"><td><input type="checkbox" name="handDraft" value="${draft.id}" checked`));
    assert.doesNotMatch(html, new RegExp(`<tr id="mass-${handMatter}"`), 'the matter has a draft: not listed to draft again');
    // Changing a filter keeps it listed (the filters form carries it).
    assert.match(html, new RegExp(`<form method="get" action="/billing/mass" id="mass-filters"[^>]*>\\s*(?:\\{#[^#]*#\\}\\s*)?<input type="hidden" name="handDraft" value="${draft.id}">`));

    // Bill all: the confirmation names it; nothing is created before confirming.
    const runId = /name="runId" value="([^"]+)"/.exec(html)![1]!;
    const form: [string, string][] = [['invoiceDate', DATE], ['upTo', DATE], ['terms', '21'], ['runId', runId], ['scope', 'all'], ['handDraft', draft.id]];
    html = ok(await postMany(b, '/billing/mass/runs', form));
    assert.match(html, /and take in 1 draft\(s\) changed by hand\?/);
    assert.match(html, new RegExp(`<input type="hidden" name="handDraft" value="${draft.id}">`));
    assert.equal((await t.db.db.selectFrom('billing_batch').select('id').execute()).length, 0, 'nothing before the confirmation');
    const res = await postMany(b, '/billing/mass/runs', [...form, ['confirm', 'yes']]);
    assert.equal(res.status, 303, res.text.slice(0, 800));
    html = await waitForRun(b, `/billing/mass/runs/${runId}`);
    // The run's page marks it among the drafted, and only it.
    assert.match(html, new RegExp(`<tr data-matter="${handMatter}">(?:(?!</tr>)[\\s\\S])*<span class="badge" data-col="hand-draft" title="Changed by hand in the composer: taken in as drafted \\(invoice date ${DATE}\\)">Changed by hand</span>`));
    assert.equal([...html.matchAll(/data-col="hand-draft"/g)].length, 1);

    // In the run's batch, as it was saved: its terms, its lines, its total; the version moved on; audited.
    const after = await t.db.db.selectFrom('billing_bill').selectAll().where('id', '=', draft.id).executeTakeFirstOrThrow();
    assert.equal(after.batch_id, runId);
    assert.equal(after.status, 'draft');
    assert.equal(after.due_date, '2026-04-15', 'not composed again with the run\'s 21 days');
    assert.equal(Number(after.total_minor), Number(draft.total_minor));
    assert.equal(Number(after.version), Number(draft.version) + 1);
    assert.equal(await lineCount(), linesBefore);
    const audits = await t.db.db.selectFrom('audit_log').select(['action', 'after_json']).where('entity_id', '=', draft.id).where('action', '=', 'billing.bill_added_to_batch').execute();
    assert.equal(audits.length, 1);
    assert.deepEqual(JSON.parse(String(audits[0]!.after_json)), { batchId: runId });
    // One draft per matter, every item on one live line at most.
    const drafts = await t.db.db.selectFrom('billing_bill').select(['matter_id']).where('status', '=', 'draft').execute();
    assert.equal(new Set(drafts.map((d) => d.matter_id)).size, drafts.length);
    const items = await t.db.db.selectFrom('billing_bill_line').select('item_id').where('live', '=', 1).where('item_id', 'is not', null).execute();
    assert.equal(new Set(items.map((i) => i.item_id)).size, items.length, 'no item on two bills');
    // The run counts it drafted, with the others; its row says it was changed by hand.
    const row = await t.db.db.selectFrom('billing_batch_matter').selectAll().where('batch_id', '=', runId).where('matter_id', '=', handMatter!).executeTakeFirstOrThrow();
    assert.deepEqual([row.state, row.bill_id, Number(row.total_minor)], ['drafted', draft.id, Number(draft.total_minor)]);
    assert.match(String(row.reason), /^Changed by hand in the composer: taken in as drafted/);
    const batch = await t.db.db.selectFrom('billing_batch').selectAll().where('id', '=', runId).executeTakeFirstOrThrow();
    assert.equal(Number(batch.drafted_count), drafts.length);
    assert.equal(Number(batch.matter_count), Number(batch.drafted_count) + Number(batch.skipped_count));
    // Draft bills for the run lists it with the others.
    html = ok(await b.get(`/billing/drafts?batch=${runId}`));
    assert.match(html, new RegExp(`value="${draft.id}@`));

    // A second run naming it again (a page kept from before): not taken (it is in a run now), said so, nothing moved.
    html = ok(await b.get(`/billing/mass?${q}&handDraft=${draft.id}`));
    assert.doesNotMatch(html, /id="hand-drafts"/, 'a draft in a run is not offered again');
    const run2 = /name="runId" value="([^"]+)"/.exec(html)![1]!;
    const again = await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['runId', run2], ['scope', 'selected'], ['matterId', other!], ['handDraft', draft.id], ['confirm', 'yes']]);
    assert.equal(again.status, 303, again.text.slice(0, 800));
    await waitForRun(b, `/billing/mass/runs/${run2}`);
    assert.equal((await t.db.db.selectFrom('billing_bill').select('batch_id').where('id', '=', draft.id).executeTakeFirstOrThrow()).batch_id, runId, 'still in the first run');
    const named = await t.db.db.selectFrom('billing_batch_matter').selectAll().where('batch_id', '=', run2).where('matter_id', '=', handMatter!).executeTakeFirstOrThrow();
    assert.equal(named.state, 'skipped');
    assert.match(String(named.reason), /^Changed by hand in the composer \([^)]+\), but it is in another run now: not taken in/);
    // The same run posted again (a second click) is the same run: its hand-drafted row is not a ticked matter.
    const same = await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['runId', run2], ['scope', 'selected'], ['matterId', other!], ['handDraft', draft.id], ['confirm', 'yes']]);
    assert.equal(same.status, 303, same.text.slice(0, 800));
    assert.equal(same.location, `/billing/mass/runs/${run2}`);
  });
});

eachDialect('mass billing: a draft changed by hand and unticked stays out of the run; a composer opened elsewhere saves as before', async (db) => {
  await withApp(db, async (t) => {
    const b = await clerk(t);
    const q = `invoiceDate=${DATE}&upTo=${DATE}`;
    let html = ok(await b.get(`/billing/mass?${q}`));
    const [handMatter, elsewhere] = [...html.matchAll(/<tr id="mass-([0-9a-f-]{36})"/g)].map((m) => m[1]!);
    // A composer opened without a list to go back to (from the matter's bills) saves to the bill's page, as before.
    const plain = await postMany(b, `/billing/matters/${elsewhere}/compose`, [['invoiceDate', DATE], ['upTo', DATE]]);
    assert.equal(plain.status, 303);
    assert.match(plain.location ?? '', /^\/billing\/bills\/[0-9a-f-]{36}$/);
    html = ok(await b.get(composerLinkOf(html, handMatter!)));
    const back = /<input type="hidden" name="back" value="([^"]*)">/.exec(html)![1]!;
    const saved = await followed(b, postMany(b, `/billing/matters/${handMatter}/compose`, [['invoiceDate', DATE], ['upTo', DATE], ['back', back]]));
    html = ok(saved);
    const draftId = /<tr data-bill="([0-9a-f-]{36})"><td><input type="checkbox" name="handDraft"/.exec(html)![1]!;
    // Unticked (not posted): Bill all leaves it out of the run.
    const runId = /name="runId" value="([^"]+)"/.exec(html)![1]!;
    const res = await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['runId', runId], ['scope', 'all'], ['confirm', 'yes']]);
    assert.equal(res.status, 303);
    await waitForRun(b, `/billing/mass/runs/${runId}`);
    assert.equal((await t.db.db.selectFrom('billing_bill').select('batch_id').where('id', '=', draftId).executeTakeFirstOrThrow()).batch_id, null);
  });
});

eachDialect('mass billing: two drafts changed by hand from one list are both listed and taken in; a post naming a hand draft\'s matter too is one row per matter, and the same run posted again is that run', async (db) => {
  await withApp(db, async (t) => {
    const b = await clerk(t);
    let html = ok(await b.get(`/billing/mass?invoiceDate=${DATE}&upTo=${DATE}`));
    const [m1, m2, m3] = [...html.matchAll(/<tr id="mass-([0-9a-f-]{36})"/g)].map((m) => m[1]!);
    const fileOf = (id: string) => new RegExp(`<tr id="mass-${id}"[^>]*>[\\s\\S]*?<td class="file-no"><a href="[^"]+">([^<]+)<`).exec(html)![1]!;
    const m3File = fileOf(m3!);
    const save = async (matterId: string, list: string): Promise<string> => {
      const page = ok(await b.get(composerLinkOf(list, matterId)));
      const back = /<input type="hidden" name="back" value="([^"]*)">/.exec(page)![1]!;
      const res = await postMany(b, `/billing/matters/${matterId}/compose`, [['invoiceDate', DATE], ['upTo', DATE], ['back', back]]);
      assert.equal(res.status, 303, res.text.slice(0, 500));
      return res.location!;
    };
    html = ok(await b.get(await save(m1!, html)));
    const second = await save(m2!, html);
    assert.equal((second.match(/handDraft=/g) ?? []).length, 2, 'the list\'s address names both');
    html = ok(await b.get(second));
    const listed = [...html.matchAll(/name="handDraft" value="([0-9a-f-]{36})" checked/g)].map((m) => m[1]!);
    assert.equal(listed.length, 2, 'both listed, ticked');
    const [d1, d2] = listed;
    // The run form says which drafts it listed, so one left unticked comes back unticked after
    // the confirmation's Cancel (not dropped from the list), and stays unticked when the filters change.
    assert.equal([...html.matchAll(/<input type="hidden" name="handListed" value="([0-9a-f-]{36})">/g)].length, 2);
    const listRunId = /name="runId" value="([^"]+)"/.exec(html)![1]!;
    const confirmation = ok(await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['runId', listRunId], ['scope', 'all'], ['handListed', d1!], ['handListed', d2!], ['handDraft', d1!]]));
    assert.match(confirmation, /take in 1 draft\(s\) changed by hand/);
    // Its crumb back to the list names both drafts: d1 ticked, d2 left unticked (still listed).
    const crumb = new URLSearchParams(/<nav class="crumbs">.*?<a href="\/billing\/mass\?([^"]*)">Mass billing<\/a>/.exec(confirmation)![1]!);
    assert.deepEqual([crumb.getAll('handDraft'), crumb.getAll('handOff')], [[d1!], [d2!]]);
    const cancelForm = /<form method="post" action="\/billing\/mass\/runs" id="mass-confirm">([\s\S]*?)<\/form>/.exec(confirmation)![1]!;
    const fields = [...cancelForm.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m): [string, string] => [m[1]!, m[2]!]).filter(([k]) => k !== '_csrf');
    const back = ok(await postMany(b, '/billing/mass/runs', [...fields, ['cancel', 'yes']]));
    assert.match(back, new RegExp(`name="handDraft" value="${d1}" checked`));
    assert.match(back, new RegExp(`name="handDraft" value="${d2}" aria-label`), 'listed, unticked');
    assert.match(back, new RegExp(`<input type="hidden" name="handOff" value="${d2}">`), 'the filters form keeps it unticked');
    // A draft in no run this list does not name: "List it here" lists it ticked, keeping d2 unticked.
    const loose = await createBillingCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay }).createDraft(ctx, { matterId: m3!, invoiceDate: DATE, upTo: DATE });
    const withLoose = ok(await postMany(b, '/billing/mass/runs', [...fields, ['cancel', 'yes']]));
    const looseLink = /<a href="([^"]+)" data-action="list-loose">/.exec(withLoose)![1]!;
    const looseParams = new URLSearchParams(looseLink.split('?')[1]!.split('#')[0]!);
    assert.deepEqual(looseParams.getAll('handDraft').sort(), [d1!, loose.billId].sort());
    assert.deepEqual(looseParams.getAll('handOff'), [d2!]);
    const listedLoose = ok(await b.get(looseLink.split('#')[0]!));
    assert.match(listedLoose, new RegExp(`name="handDraft" value="${loose.billId}" checked`));
    assert.match(listedLoose, new RegExp(`name="handDraft" value="${d2}" aria-label`), 'still unticked');
    await createBillingCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay }).deleteDraft(ctx, loose.billId);
    assert.equal((await t.db.db.selectFrom('billing_batch').select('id').execute()).length, 0, 'Cancel creates nothing');

    // A crafted Bill selected: m1 ticked (its draft changed by hand named too) while the filter names m3 only.
    const runId = /name="runId" value="([^"]+)"/.exec(html)![1]!;
    const form: [string, string][] = [['invoiceDate', DATE], ['upTo', DATE], ['matter', m3File], ['runId', runId], ['scope', 'selected'], ['matterId', m1!], ['handDraft', d1!], ['handDraft', d2!], ['confirm', 'yes']];
    const res = await postMany(b, '/billing/mass/runs', form);
    assert.equal(res.status, 303, res.text.slice(0, 800));
    await waitForRun(b, `/billing/mass/runs/${runId}`);
    const rows = await t.db.db.selectFrom('billing_batch_matter').select(['matter_id', 'state', 'bill_id']).where('batch_id', '=', runId).execute();
    assert.equal(new Set(rows.map((r) => r.matter_id)).size, rows.length, 'one row per matter');
    assert.deepEqual(rows.filter((r) => r.bill_id !== null).map((r) => r.bill_id).sort(), [d1, d2].sort(), 'both drafts taken in');
    for (const d of [d1, d2]) assert.equal((await t.db.db.selectFrom('billing_bill').select('batch_id').where('id', '=', d!).executeTakeFirstOrThrow()).batch_id, runId);
    const batch = await t.db.db.selectFrom('billing_batch').selectAll().where('id', '=', runId).executeTakeFirstOrThrow();
    assert.equal(Number(batch.matter_count), rows.length);
    assert.equal(Number(batch.drafted_count) + Number(batch.skipped_count), rows.length);
    // The same run posted again (a second click): that run, not "made for other choices".
    const again = await postMany(b, '/billing/mass/runs', form);
    assert.equal(again.status, 303, again.text.slice(0, 800));
    assert.equal(again.location, `/billing/mass/runs/${runId}`);
  });
});

eachDialect('mass billing: more drafts changed by hand named than a run takes are said to be left out; a list address holding a run\'s worth of them still leads back', async (db) => {
  await withApp(db, async (t) => {
    const b = await clerk(t);
    const q = `invoiceDate=${DATE}&upTo=${DATE}`;
    const ids = Array.from({ length: 102 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
    let html = ok(await b.get(`/billing/mass?${q}&${ids.map((id) => `handDraft=${id}`).join('&')}`));
    // (The billing cycle filter names cycles as the clerk reads them.)
    assert.match(html, /<option value="MONTH">Monthly<\/option>/);
    // (A timekeeper who has left is still offered by the timekeeper filters, marked and listed last: their time may be unbilled.)
    const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const leaver = await t.db.db.selectFrom('billing_timekeeper').select(['id', 'initials', 'name']).where('active', '=', 1).orderBy('initials').executeTakeFirstOrThrow();
    await cmds.updateTimekeeper(ctx, leaver.id, { active: false });
    await t.runtime.relay.drain();
    const withLeaver = ok(await b.get(`/billing/mass?${q}&timeTk=${leaver.id}`));
    const timeOptions = [.../<select name="timeTk">([\s\S]*?)<\/select>/.exec(withLeaver)![1]!.matchAll(/<option value="([^"]*)"[^>]*>([^<]*)<\/option>/g)].map((m) => [m[1], m[2]]);
    assert.deepEqual(timeOptions.at(-1), [leaver.id, `${leaver.initials} ${leaver.name} (inactive)`]);
    assert.match(withLeaver, new RegExp(`<option value="${leaver.id}" selected>`), 'chosen, and listing by it');
    assert.doesNotMatch(withLeaver, /data-error-for="timeTk"/);
    // None of these is a draft: nothing listed, but the two beyond a run's 100 are said to be left out.
    assert.match(html, /id="hand-drafts-over" role="alert">2 more draft\(s\) named in this list's address are not listed: a run takes at most 100 drafts changed by hand\./);
    html = ok(await b.get(`/billing/mass?${q}&${ids.slice(0, 100).map((id) => `handDraft=${id}`).join('&')}`));
    assert.doesNotMatch(html, /hand-drafts-over/);

    // A list address naming 100 drafts changed by hand (about 5,000 characters): the composer still leads back to it.
    html = ok(await b.get(`/billing/mass?${q}`));
    const matterId = /<tr id="mass-([0-9a-f-]{36})"/.exec(html)![1]!;
    const back = `${q}&${ids.slice(0, 100).map((id) => `handDraft=${id}`).join('&')}`;
    assert.ok(back.length > 4_000, `${back.length} characters`);
    html = ok(await b.get(`/billing/matters/${matterId}/compose?invoiceDate=${DATE}&upTo=${DATE}&back=${encodeURIComponent(back)}`));
    assert.match(html, /id="from-mass"/);
    assert.equal(new URLSearchParams(/<input type="hidden" name="back" value="([^"]*)">/.exec(html)![1]!).getAll('handDraft').length, 100);
  });
});

eachDialect('mass billing opened afresh says how many drafts are in no run (Bill all would leave them out) and lists them on request, ticked', async (db) => {
  await withApp(db, async (t) => {
    const b = await clerk(t);
    const q = `invoiceDate=${DATE}&upTo=${DATE}`;
    let html = ok(await b.get(`/billing/mass?${q}`));
    assert.doesNotMatch(html, /id="loose-drafts"/, 'no draft yet');
    const matterId = /<tr id="mass-([0-9a-f-]{36})"/.exec(html)![1]!;
    // A draft saved in the composer opened from the matter (not from this list).
    const saved = await postMany(b, `/billing/matters/${matterId}/compose`, [['invoiceDate', DATE], ['upTo', DATE]]);
    assert.equal(saved.status, 303, saved.text.slice(0, 800));
    const draftId = saved.location!.split('/').pop()!;
    html = ok(await b.get(`/billing/mass?${q}`));
    assert.match(html, /id="loose-drafts">1 draft in no run \(made or changed in the composer\) is not on this list: Bill all leaves it out\. <a href="([^"]+)" data-action="list-loose">List it here<\/a>/);
    const link = /<a href="([^"]+)" data-action="list-loose">/.exec(html)![1]!;
    html = ok(await b.get(link));
    assert.match(html, new RegExp(`<section id="hand-drafts">[\\s\\S]*<input type="checkbox" name="handDraft" value="${draftId}" checked`));
    assert.doesNotMatch(html, /id="loose-drafts"/, 'listed now');
  });
});
