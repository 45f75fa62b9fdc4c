/**
 * Audit of the mass billing pages and API against the input rules, on both databases: bad
 * input is refused naming the field (the API names the body's own field) and changes nothing;
 * hand-picked matters are counted once and bounded; roles and CSRF on every write.
 */
import assert from 'node:assert/strict';
import { prng } from '../../src/cli/demo.ts';
import { MAX_RUN_MATTERS } from '../../src/modules/billing/mass-commands.ts';
import { createMattersCommands, seedDemoFirm } from '../../src/modules/matters/index.ts';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { unescapeHtml, withApp } from '../support/app.ts';
import type { TestApp } from '../support/app.ts';
import { ctx } from './support.ts';
import { ok, postMany } from './web-support.ts';

const DATE = '2026-03-01';

async function seed(t: TestApp) {
  const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
  await seedDemoFirm(cmds, { matters: 8, entriesPerMatter: 2, seed: 5, random: prng, ctx, fixedCharges: true, asOf: DATE });
  await t.runtime.relay.drain();
}

async function counts(db: TestDb) {
  const n = async (table: 'billing_batch' | 'billing_batch_matter' | 'audit_log' | 'outbox' | 'billing_bill') =>
    Number((await db.db.selectFrom(table).select((e) => e.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  return { batches: await n('billing_batch'), rows: await n('billing_batch_matter'), audit: await n('audit_log'), outbox: await n('outbox'), bills: await n('billing_bill') };
}

eachDialect('audit: API POST /bill-runs refuses a filters.matterId billing does not know, and bad dates, types and choices, writing nothing', async (db) => {
  await withApp(db, async (t) => {
    await seed(t);
    const clerk = await t.user('billing');
    const token = await t.token(clerk.email);
    const b = t.browser();
    const post = (body: unknown) => b.postJson('/api/v1/bill-runs', body, { headers: { authorization: `Bearer ${token}` } });
    const before = await counts(db);

    // An unknown matter id in the filters: a run of it would bill nothing. (Refusals name the body's paths.)
    let res = await post({ id: 'audit-run-0001', invoiceDate: DATE, upTo: DATE, filters: { matterId: 'no-such-matter' }, wait: true });
    assert.equal(res.status, 422, res.text);
    assert.deepEqual(Object.keys(res.json().error.fields), ['filters.matterId']);
    assert.match(res.json().error.fields['filters.matterId'], /billing has no matter with id no-such-matter/);
    assert.deepEqual(await counts(db), before, 'no run, no audit row, no event');

    // Calendar dates that do not exist, unknown choices, a range ending before it starts: each named.
    res = await post({ invoiceDate: DATE, upTo: DATE, filters: { nextBillingFrom: '2026-02-30', time: { from: '2026-02-30' }, disbursements: { to: '2026-13-01' } } });
    assert.equal(res.status, 422, res.text);
    assert.deepEqual(Object.keys(res.json().error.fields).sort(), ['filters.disbursements.to', 'filters.nextBillingFrom', 'filters.time.from'], res.text);
    res = await post({ invoiceDate: DATE, upTo: DATE, filters: { clientId: 'nope', time: { timekeeperId: 'nope' }, responsibleTimekeeperId: 'nope', billingCycle: 'NEVER' } });
    assert.equal(res.status, 422, res.text);
    assert.deepEqual(Object.keys(res.json().error.fields).sort(), ['filters.billingCycle', 'filters.clientId', 'filters.responsibleTimekeeperId', 'filters.time.timekeeperId'], res.text);
    res = await post({ invoiceDate: DATE, upTo: DATE, filters: { time: { from: '2026-02-10', to: '2026-02-01' } } });
    assert.equal(res.status, 422, res.text);
    assert.deepEqual(Object.keys(res.json().error.fields), ['filters.time.to'], res.text);
    // Wrong types, unknown fields, negative and fractional terms, an overlong template.
    for (const body of [
      { invoiceDate: DATE, upTo: DATE, paymentTermsDays: -1 }, { invoiceDate: DATE, upTo: DATE, paymentTermsDays: 1.5 }, { invoiceDate: DATE, upTo: DATE, paymentTermsDays: '7' },
      { invoiceDate: DATE, upTo: DATE, template: 'x'.repeat(101) }, { invoiceDate: DATE, upTo: DATE, matterIds: [] }, { invoiceDate: DATE, upTo: DATE, bogus: 1 },
      { invoiceDate: DATE, upTo: DATE, filters: { wipCap: '-5.00' } }, { invoiceDate: DATE, upTo: DATE, id: 'short' },
    ]) {
      res = await post(body);
      assert.equal(res.status, 422, `${JSON.stringify(body)}: ${res.text}`);
      assert.ok(Object.keys(res.json().error.fields).length > 0, res.text);
    }
    assert.deepEqual(await counts(db), before, 'nothing written by any refusal');
  });
}, { timeout: 300_000 });

eachDialect('audit: Bill selected counts each ticked matter once, and a selection over the run limit is refused before the confirmation', async (db) => {
  await withApp(db, async (t) => {
    await seed(t);
    const clerk = await t.user('billing');
    const b = t.browser();
    await b.login(clerk.email);
    const html = ok(await b.get(`/billing/mass?invoiceDate=${DATE}&upTo=${DATE}`));
    const rowIds = [...html.matchAll(/<tr id="mass-([0-9a-f-]{36})"/g)].map((m) => m[1]!);
    assert.ok(rowIds.length >= 1);
    const one = rowIds[0]!;
    // The same matter ticked three times (a form posted with a repeated field) is one matter.
    const confirm = ok(await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['runId', 'audit-dup-0001'], ['scope', 'selected'], ['matterId', one], ['matterId', one], ['matterId', one]]));
    assert.match(confirm, /Bill 1 matter\(s\)\?/);
    assert.equal([...confirm.matchAll(new RegExp(`name="matterId" value="${one}"`, 'g'))].length, 1, 'each matter once on the confirmation');

    // A run id that is no run id: refused at the confirmation already (not only once confirmed).
    const badId = await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['runId', 'bad id!'], ['scope', 'selected'], ['matterId', one]]);
    assert.equal(badId.status, 422, unescapeHtml(badId.text).slice(0, 500));
    assert.match(unescapeHtml(badId.text), /data-error-for="id"|Run: must be 8 to 64 letters/);
    assert.doesNotMatch(badId.text, /data-action="confirm"/);

    // Over the limit: refused naming Matters, without the lookups of each id, and nothing created.
    const before = await counts(db);
    const many: [string, string][] = Array.from({ length: MAX_RUN_MATTERS + 1 }, (_, i) => ['matterId', `m-${String(i).padStart(6, '0')}`]);
    const res = await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['runId', 'audit-big-0001'], ['scope', 'selected'], ...many]);
    const text = unescapeHtml(res.text);
    assert.equal(res.status, 422, text.slice(0, 500));
    assert.match(text, new RegExp(`data-error-for="matterIds"><strong>Matters</strong> at most ${MAX_RUN_MATTERS} matters in one run`));
    assert.deepEqual(await counts(db), before);
  });
}, { timeout: 300_000 });

eachDialect('audit: every mass billing, drafts and production write is refused to readonly and timekeeper users and without the CSRF token, writing nothing', async (db) => {
  await withApp(db, async (t) => {
    await seed(t);
    const posts: [string, Record<string, string>][] = [
      ['/billing/mass/runs', { invoiceDate: DATE, upTo: DATE, scope: 'all', confirm: 'yes', runId: 'audit-role-0001' }],
      ['/billing/mass/runs/audit-role-0001/resume', {}],
      ['/billing/drafts/act', { action: 'approve', every: 'yes', listing: 'x' }],
      ['/billing/drafts/modify', { every: 'yes', listing: 'x', newTerms: '5' }],
      ['/billing/production/runs', { bill: '00000000-0000-0000-0000-000000000000' }],
      ['/billing/production/revert', { bill: '00000000-0000-0000-0000-000000000000' }],
      ['/billing/production/bills/00000000-0000-0000-0000-000000000000/email-decision', { choice: 'resend', runId: '00000000-0000-0000-0000-000000000001' }],
      ['/billing/bills/00000000-0000-0000-0000-000000000000/email', { to: 'a@b.example', subject: 's', text: 't', key: '00000000-0000-0000-0000-000000000002' }],
      ['/billing/settings/letterhead', { firmName: 'X', version: '0' }],
      ['/billing/settings/bill-templates', { name: 'x', layout: 'itemised', title: 'x' }],
      ['/billing/settings/email-templates', { name: 'x', subject: 'x', body: 'x' }],
      ['/billing/settings/test-email', { to: 'a@b.example' }],
    ];
    const before = await counts(db);
    for (const role of ['readonly', 'timekeeper'] as const) {
      const u = await t.user(role);
      const b = t.browser();
      await b.login(u.email);
      await b.get('/');
      for (const [path, form] of posts) assert.equal((await b.post(path, form)).status, 403, `${role} ${path}`);
      const api = await t.token(u.email);
      for (const [path, body] of [['/api/v1/bill-runs', { invoiceDate: DATE, upTo: DATE }], ['/api/v1/bills/approve', { billIds: ['x'] }]] as const) {
        assert.equal((await b.postJson(path, body, { headers: { authorization: `Bearer ${api}` } })).status, 403, `${role} ${path}`);
      }
    }
    const clerk = await t.user('billing');
    const b = t.browser();
    await b.login(clerk.email);
    await b.get('/billing/mass');
    for (const [path, form] of posts) assert.equal((await b.post(path, form, { csrf: false })).status, 403, `no CSRF ${path}`);
    // Signed out: sent to sign in (or 401), never acted on.
    const anon = t.browser();
    await anon.get('/login');
    for (const [path, form] of posts) assert.ok([401, 403, 302, 303].includes((await anon.post(path, form)).status), `signed out ${path}`);
    const after = await counts(db);
    assert.equal(after.batches, before.batches);
    assert.equal(after.bills, before.bills);
    assert.equal(after.outbox, before.outbox);
  });
}, { timeout: 300_000 });
