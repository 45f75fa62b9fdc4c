/**
 * Audit of the draft bills page against the input rules, on both databases: a draft changed
 * since the list showed it is recognised by the error's code (not its wording); bad ids,
 * actions, dates, terms and templates are refused naming the field, and change nothing.
 */
import assert from 'node:assert/strict';
import { prng } from '../../src/cli/demo.ts';
import { BILL_CHANGED, CHANGED_SINCE_OPENED } from '../../src/modules/billing/commands.ts';
import { createBillingCommands } from '../../src/modules/billing/index.ts';
import { CHANGED_SINCE_LISTED } from '../../src/modules/billing/mass-commands.ts';
import { createMattersCommands, seedDemoFirm } from '../../src/modules/matters/index.ts';
import { HttpError } from '../../src/shared/web/errors.ts';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { unescapeHtml, withApp } from '../support/app.ts';
import type { TestApp } from '../support/app.ts';
import { ctx } from './support.ts';
import { followed, ok, postMany } from './web-support.ts';

const DATE = '2026-03-01';

/** A firm with a run's drafts (a batch), and a signed-in billing clerk. */
async function withDrafts(t: TestApp) {
  const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
  await seedDemoFirm(cmds, { matters: 8, entriesPerMatter: 2, seed: 5, random: prng, ctx, fixedCharges: true, asOf: DATE });
  await t.runtime.relay.drain();
  const clerk = await t.user('billing');
  const token = await t.token(clerk.email);
  const b = t.browser();
  await b.login(clerk.email);
  const res = await b.postJson('/api/v1/bill-runs', { id: 'audit-drafts-0001', invoiceDate: DATE, upTo: DATE, wait: true }, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 202, res.text);
  await t.runtime.relay.drain();
  const billing = createBillingCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
  ok(await b.get('/billing/drafts'));
  return { b, billing, batch: 'audit-drafts-0001' };
}

async function snapshot(db: TestDb) {
  const bills = await db.db.selectFrom('billing_bill').select(['id', 'status', 'version', 'on_hold', 'batch_id', 'invoice_date', 'due_date']).orderBy('id').execute();
  const n = async (table: 'audit_log' | 'outbox') => Number((await db.db.selectFrom(table).select((e) => e.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  return { bills, audit: await n('audit_log'), outbox: await n('outbox') };
}

const draftsOf = async (db: TestDb) => db.db.selectFrom('billing_bill').select(['id', 'version', 'on_hold']).where('status', '=', 'draft').orderBy('id').execute() as Promise<{ id: string; version: number; on_hold: number }[]>;

eachDialect('audit: a draft changed since it was listed is refused by the error\'s code, in the list\'s words (hold, release, delete, remove from batch)', async (db) => {
  await withApp(db, async (t) => {
    const { b, billing, batch } = await withDrafts(t);
    const [d1, d2] = await draftsOf(db);
    assert.ok(d1 && d2);
    // The command's refusal carries a code a page can test, and keeps its words.
    const e = await billing.setOnHold(ctx, d1.id, true, Number(d1.version) + 5).then(() => null, (x: unknown) => x);
    assert.ok(e instanceof HttpError, String(e));
    assert.equal(e.status, 409);
    assert.equal(e.code, BILL_CHANGED);
    assert.ok(e.message.startsWith(CHANGED_SINCE_OPENED), e.message);

    // The page: ticked at a version it no longer has, each action refused with the list's words, nothing done.
    const before = await snapshot(db);
    for (const action of ['hold', 'release', 'delete', 'remove']) {
      const html = ok(await followed(b, postMany(b, '/billing/drafts/act', [['id', `${d1.id}@${Number(d1.version) + 1}`], ['action', action], ['batch', batch], ...(action === 'delete' ? [['confirmed', 'yes'] as [string, string]] : [])])));
      assert.match(html, /data-done="0" data-refused="1"/, action);
      assert.ok(html.includes(CHANGED_SINCE_LISTED), `${action}: ${html.slice(html.indexOf('data-refused'), html.indexOf('data-refused') + 400)}`);
    }
    assert.deepEqual(await snapshot(db), before, 'nothing changed');
    // At the version listed it is done.
    const html = ok(await followed(b, postMany(b, '/billing/drafts/act', [['id', `${d2.id}@${d2.version}`], ['action', 'hold']])));
    assert.match(html, /data-done="1"/);
    // Released when it is not on hold (d1): not counted as released, named with why, nothing written.
    const unheld = await snapshot(db);
    const none = ok(await followed(b, postMany(b, '/billing/drafts/act', [['id', `${d1.id}@${d1.version}`], ['action', 'release']])));
    // Not a refusal: counted apart, as nothing to do.
    assert.match(none, /data-done="0" data-refused="0" data-already="1"/);
    assert.match(none, /1 was not on hold: nothing to do/);
    assert.ok(none.includes('It is not on hold: nothing to release'), none.slice(none.indexOf('data-refused'), none.indexOf('data-refused') + 400));
    assert.deepEqual(await snapshot(db), unheld, 'nothing written');
    // Posted without the version (no list behind it): read first, named the same.
    const bare = ok(await followed(b, postMany(b, '/billing/drafts/act', [['id', d1.id], ['action', 'release']])));
    assert.match(bare, /data-done="0" data-refused="0" data-already="1"/);
    assert.ok(bare.includes('It is not on hold: nothing to release'));
    assert.deepEqual(await snapshot(db), unheld, 'still nothing written');
  });
}, { timeout: 300_000 });

eachDialect('audit: the drafts page refuses bad ids, actions, dates, terms and templates naming the field, and changes nothing', async (db) => {
  await withApp(db, async (t) => {
    const { b, batch } = await withDrafts(t);
    const [d1] = await draftsOf(db);
    assert.ok(d1);
    const before = await snapshot(db);
    const refusedWith = async (path: string, pairs: [string, string][], status: number, re: RegExp) => {
      const res = await postMany(b, path, pairs);
      const text = unescapeHtml(res.text);
      assert.equal(res.status, status, `${path} ${JSON.stringify(pairs)}: ${text.slice(0, 400)}`);
      assert.match(text, re, `${path} ${JSON.stringify(pairs)}`);
    };
    // Ids that are not bill ids, an unknown action, nothing chosen.
    await refusedWith('/billing/drafts/act', [['id', 'not-an-id'], ['action', 'approve']], 422, /A selected bill is not a bill id/);
    await refusedWith('/billing/drafts/act', [['id', `${d1.id}@-1`], ['action', 'approve']], 422, /A selected bill is not a bill id/);
    await refusedWith('/billing/drafts/act', [['id', d1.id], ['action', 'explode']], 422, /Unknown action/);
    await refusedWith('/billing/drafts/act', [['action', 'approve']], 422, /Select the bills first/);
    await refusedWith('/billing/drafts/act', [['every', 'yes'], ['action', 'approve']], 422, /did not say which drafts it listed/);
    await refusedWith('/billing/drafts/act', [['every', 'yes'], ['listing', '1.deadbeef'], ['action', 'delete'], ['batch', batch]], 409, /The drafts listed have changed/);
    // Modify: a date that does not exist, terms that are not whole days or too long, an unknown or overlong template.
    const modify = (extra: [string, string][]): [string, string][] => [['id', d1.id], ...extra];
    await refusedWith('/billing/drafts/modify', modify([['newInvoiceDate', '2026-02-30']]), 422, /data-error-for="newInvoiceDate"/);
    await refusedWith('/billing/drafts/modify', modify([['newUpTo', '2026-13-01']]), 422, /data-error-for="newUpTo"/);
    await refusedWith('/billing/drafts/modify', modify([['newTerms', '-1']]), 422, /data-error-for="newTerms"/);
    await refusedWith('/billing/drafts/modify', modify([['newTerms', '2.5']]), 422, /data-error-for="newTerms"/);
    await refusedWith('/billing/drafts/modify', modify([['newTerms', '9999']]), 422, /data-error-for="newTerms"/);
    await refusedWith('/billing/drafts/modify', modify([['newTemplate', 'x'.repeat(101)]]), 422, /data-error-for="newTemplate"/);
    await refusedWith('/billing/drafts/modify', modify([['newTemplate', 'no-such-template']]), 422, /data-error-for="newTemplate"/);
    await refusedWith('/billing/drafts/modify', modify([]), 422, /data-error-for="newInvoiceDate"/);
    // Too many ticked.
    const many: [string, string][] = Array.from({ length: 100_001 }, () => ['id', d1.id]);
    const res = await followed(b, postMany(b, '/billing/drafts/act', [...many, ['action', 'hold']]));
    assert.ok(res.status === 422 || res.status === 413, `${res.status}`);
    assert.deepEqual(await snapshot(db), before, 'nothing changed, no audit row, no event');

    // An id of no bill is refused for that bill, in words; a bill of another batch is not taken out of this one.
    const html = ok(await followed(b, postMany(b, '/billing/drafts/act', [['id', '00000000-0000-4000-8000-000000000000'], ['action', 'hold']])));
    assert.match(html, /data-refused="1"/);
    assert.match(html, /Bill not found/);
    // Approving only ids of no bill (a listed draft deleted by someone else meanwhile): refused per bill, not a 500 (Postgres).
    for (const id of ['00000000-0000-7000-8000-000000000000@1', '00000000-0000-7000-8000-000000000001']) {
      const approved = ok(await followed(b, postMany(b, '/billing/drafts/act', [['id', id], ['action', 'approve'], ['confirmed', 'yes']])));
      assert.match(approved, /data-refused="1"/);
      assert.match(approved, /Bill not found/);
    }
    const other = ok(await followed(b, postMany(b, '/billing/drafts/act', [['id', d1.id], ['action', 'remove'], ['batch', 'another-batch-0001']])));
    assert.match(other, /The bill is not in this batch/);
    assert.deepEqual(await snapshot(db), before, 'still nothing changed');
  });
}, { timeout: 300_000 });

eachDialect('Delete on the drafts page asks first: it lists the drafts chosen (ticked, or all drafts listed) with their total, and deletes only when confirmed; a listing changed meanwhile is refused on confirming', async (db) => {
  await withApp(db, async (t) => {
    const { b, batch } = await withDrafts(t);
    const drafts = await draftsOf(db);
    assert.ok(drafts.length >= 3, `${drafts.length} drafts`);
    const listed = ok(await b.get(`/billing/drafts?batch=${batch}`));
    const listing = /name="listing" value="([^"]+)"/.exec(listed)![1]!;
    const totals = await db.db.selectFrom('billing_bill').select(['id', 'total_minor']).where('status', '=', 'draft').execute();
    const sum = totals.reduce((n, r) => n + Number(r.total_minor), 0);
    const before = await snapshot(db);

    // All drafts listed: each named, their total summed, nothing deleted yet; the form carries the choice.
    let html = unescapeHtml(ok(await postMany(b, '/billing/drafts/act', [['every', 'yes'], ['listing', listing], ['batch', batch], ['action', 'delete'], ['sort', 'total'], ['dir', 'desc']])));
    assert.match(html, new RegExp(`<h1>Delete ${drafts.length} draft bills\\?</h1>`));
    assert.deepEqual([...html.matchAll(/<tr data-bill="([^"]+)"/g)].map((m) => m[1]).sort(), drafts.map((d) => d.id).sort());
    assert.match(html, new RegExp(`data-total="USD">\\$${(sum / 100).toLocaleString('en-US', { minimumFractionDigits: 2 })}<`));
    for (const [name, value] of [['every', 'yes'], ['listing', listing], ['batch', batch], ['sort', 'total'], ['dir', 'desc'], ['confirmed', 'yes']]) {
      assert.ok(html.includes(`name="${name}" value="${value}"`), `the confirmation carries ${name}`);
    }
    assert.match(html, new RegExp(`href="/billing/drafts\\?batch=${batch}&sort=total&dir=desc" data-action="back">Cancel`));
    assert.deepEqual(await snapshot(db), before, 'nothing deleted, audited or published by asking');

    // One ticked: that one only.
    const one = drafts[0]!;
    html = ok(await postMany(b, '/billing/drafts/act', [['id', `${one.id}@${one.version}`], ['action', 'delete']]));
    assert.deepEqual([...html.matchAll(/<tr data-bill="([^"]+)"/g)].map((m) => m[1]), [one.id]);
    assert.match(html, /<h1>Delete 1 draft bill\?<\/h1>/);
    // Ticked twice (the same field posted twice): one bill.
    html = ok(await postMany(b, '/billing/drafts/act', [['id', `${one.id}@${one.version}`], ['id', `${one.id}@${one.version}`], ['action', 'delete']]));
    assert.match(html, /<h1>Delete 1 draft bill\?<\/h1>/);
    assert.doesNotMatch(html, /id="selection-gone"/);
    // The list's page is posted with its actions, and carried back (Cancel, and the list after the action).
    // (Page 2 of a one-page list is past the end: the last page is listed, page 1, which posts no page.)
    assert.doesNotMatch(ok(await b.get(`/billing/drafts?batch=${batch}&page=2`)), /name="page" value="2"/);
    html = ok(await postMany(b, '/billing/drafts/act', [['id', `${one.id}@${one.version}`], ['action', 'delete'], ['page', '2']]));
    assert.match(unescapeHtml(html), /href="\/billing\/drafts\?sort=matter&dir=asc&page=2" data-action="back">Cancel/);

    // Another draft changes before the clerk confirms "all drafts listed": refused, nothing deleted.
    await b.post('/billing/drafts/act', { id: `${drafts[1]!.id}@${drafts[1]!.version}`, action: 'hold' });
    const held = await snapshot(db);
    const res = await postMany(b, '/billing/drafts/act', [['every', 'yes'], ['listing', listing], ['batch', batch], ['action', 'delete'], ['confirmed', 'yes']]);
    assert.equal(res.status, 409);
    assert.match(unescapeHtml(res.text), /The drafts listed have changed/);
    assert.deepEqual(await snapshot(db), held);

    // One of the ticked drafts deleted since: the confirmation counts the drafts left, and says so.
    const [x, y] = [drafts[2]!, drafts[3]!];
    await b.post('/billing/drafts/act', { id: `${x.id}@${x.version}`, action: 'delete', confirmed: 'yes' });
    html = ok(await postMany(b, '/billing/drafts/act', [['id', `${x.id}@${x.version}`], ['id', `${y.id}@${y.version}`], ['action', 'delete']]));
    assert.match(html, /<h1>Delete 1 draft bill\?<\/h1>/);
    assert.match(html, /id="selection-gone" role="alert">1 of the chosen bills is no longer a draft/);

    // Confirmed at the current listing: all deleted.
    const now = /name="listing" value="([^"]+)"/.exec(ok(await b.get(`/billing/drafts?batch=${batch}`)))![1]!;
    html = ok(await followed(b, postMany(b, '/billing/drafts/act', [['every', 'yes'], ['listing', now], ['batch', batch], ['action', 'delete'], ['confirmed', 'yes']])));
    assert.match(html, new RegExp(`data-done="${drafts.length - 1}"`));
    assert.deepEqual(await draftsOf(db), []);
  });
}, { timeout: 300_000 });

eachDialect('Delete on the drafts page names a numbered bill among the drafts (approved, then reverted): deleting voids its number and the client may hold it', async (db) => {
  await withApp(db, async (t) => {
    const { b } = await withDrafts(t);
    const [one, other] = await draftsOf(db);
    // Approved (numbered) and reverted to draft from its page.
    assert.equal((await b.post('/billing/drafts/act', { id: `${one!.id}@${one!.version}`, action: 'approve', confirmed: 'yes' })).status, 303);
    const page = ok(await b.get(`/billing/bills/${one!.id}`));
    const version = /name="version" value="(\d+)"/.exec(page)![1]!;
    assert.equal((await b.post(`/billing/bills/${one!.id}/revert`, { version, confirmed: 'yes' })).status, 303);
    const numbered = await db.db.selectFrom('billing_bill').select(['number', 'version', 'status']).where('id', '=', one!.id).executeTakeFirstOrThrow();
    assert.deepEqual([numbered.status, typeof numbered.number], ['draft', 'string']);
    const html = unescapeHtml(ok(await postMany(b, '/billing/drafts/act', [['id', `${one!.id}@${numbered.version}`], ['id', `${other!.id}@${other!.version}`], ['action', 'delete']])));
    assert.match(html, new RegExp(`id="delete-numbered" role="alert">1 of them is a numbered bill, approved before and then reverted or re-drafted \\(${numbered.number!.replace(/\./g, '\\.')}\\): deleting voids its number\\. It may have been produced, emailed or printed for the client already: tell the client it is withdrawn\\.`));
    assert.match(html, new RegExp(`<tr data-bill="${one!.id}"><td>${numbered.number!.replace(/\./g, '\\.')} <span class="note-inline" data-voids>its number is voided</span>`));
    assert.match(html, new RegExp(`<tr data-bill="${other!.id}"><td>Draft</td>`));
    // Unnumbered drafts alone: no such warning.
    assert.doesNotMatch(ok(await postMany(b, '/billing/drafts/act', [['id', `${other!.id}@${other!.version}`], ['action', 'delete']])), /delete-numbered/);
  });
});
