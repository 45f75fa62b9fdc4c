/**
 * Audit of the bill production pages and settings against the input rules, on both
 * databases: ids of no bill or of a bill never approved, fields missing or overlong, choices
 * that are not offered: each refused naming the field, and nothing changed (no bill moved, no
 * audit row, no event, no run).
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { unescapeHtml, withApp } from '../support/app.ts';
import type { Browser } from '../support/app.ts';
import { approvedBills, setupFrom, outputDirs, removeDirs, testOutputs } from './production-support.ts';
import { ctx } from './support.ts';


function postMany(b: Browser, path: string, pairs: [string, string][]) {
  const body = new URLSearchParams(pairs);
  if (b.csrf) body.append('_csrf', b.csrf);
  return b.request('POST', path, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: body.toString() });
}

async function snapshot(db: TestDb) {
  const bills = await db.db.selectFrom('billing_bill').select(['id', 'status', 'version', 'number']).orderBy('id').execute();
  const n = async (table: 'audit_log' | 'outbox' | 'billing_production_run' | 'billing_bill_template' | 'billing_email_template') =>
    Number((await db.db.selectFrom(table).select((e) => e.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  const settings = await db.db.selectFrom('billing_settings').selectAll().execute();
  return { bills, settings, audit: await n('audit_log'), outbox: await n('outbox'), runs: await n('billing_production_run'), templates: await n('billing_bill_template'), emailTemplates: await n('billing_email_template') };
}

eachDialect('audit: revert to draft with an id of no bill, or of a bill never approved, is refused whole naming the bill field: no bill is reverted', async (db) => {
  const dirs = outputDirs();
  try {
    await withApp(db, async (t) => {
      const s = setupFrom(t);
      const [a, b] = await approvedBills(s, 2, { copiesToPrint: 0, useClientAddress: false, sendTo: ['ap@northwind.example'] });
      await t.user('billing');
      const clerk = t.browser();
      await clerk.login('billing@firm.test');
      await clerk.get('/billing/production');
      const before = await snapshot(db);
      const unknown = '00000000-0000-4000-8000-000000000000';
      let res = await postMany(clerk, '/billing/production/revert', [['bill', a!.billId], ['bill', unknown]]);
      let text = unescapeHtml(res.text);
      assert.equal(res.status, 422, text.slice(0, 600));
      assert.match(text, new RegExp(`no bill has id ${unknown}`));
      assert.deepEqual(await snapshot(db), before, 'nothing reverted, no audit row, no event');

      // A bill never approved (a draft): refused whole too.
      await s.billing.revert(ctx, b!.billId);
      await s.billing.deleteDraft(ctx, b!.billId);
      await t.runtime.relay.drain();
      const fresh = await s.billing.createDraft(ctx, { matterId: b!.matterId, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
      await t.runtime.relay.drain();
      const before2 = await snapshot(db);
      res = await postMany(clerk, '/billing/production/revert', [['bill', a!.billId], ['bill', fresh.billId]]);
      text = unescapeHtml(res.text);
      assert.equal(res.status, 422, text.slice(0, 600));
      assert.match(text, /never approved/);
      assert.deepEqual(await snapshot(db), before2, 'nothing reverted');
      // Ids that are not ids at all.
      res = await postMany(clerk, '/billing/production/revert', [['bill', 'not-an-id']]);
      assert.equal(res.status, 422);
      assert.deepEqual(await snapshot(db), before2);
    }, { outputs: testOutputs(dirs) });
  } finally {
    removeDirs(dirs);
  }
}, { timeout: 300_000 });

eachDialect('audit: production and settings forms refuse missing, malformed and overlong fields naming them, and change nothing', async (db) => {
  const dirs = outputDirs();
  try {
    await withApp(db, async (t) => {
      const [a] = await approvedBills(setupFrom(t), 1, { copiesToPrint: 0, useClientAddress: false, sendTo: ['ap@northwind.example'] });
      await t.user('billing');
      const clerk = t.browser();
      await clerk.login('billing@firm.test');
      const settingsPage = unescapeHtml((await clerk.get('/billing/settings')).text);
      const version = /name="version" value="(\d+)"/.exec(settingsPage)?.[1] ?? '0';
      const before = await snapshot(db);
      const refused = async (path: string, pairs: [string, string][], field: string) => {
        const res = await postMany(clerk, path, pairs);
        const text = unescapeHtml(res.text);
        assert.equal(res.status, 422, `${path} ${JSON.stringify(pairs).slice(0, 200)}: ${res.status} ${text.slice(text.indexOf('<main'), text.indexOf('<main') + 600)}`);
        assert.ok(text.includes(field), `${path} names ${field}`);
      };
      const letterhead = (extra: Record<string, string>): [string, string][] => Object.entries({ firmName: 'Holloway & Stern', address: '', taxId: '', phone: '', email: '', mailFrom: '', paymentNote: '', version, ...extra });
      // A version that is not a number is a form that cannot be read, not "changed by someone else".
      await refused('/billing/settings/letterhead', letterhead({ version: 'abc' }), 'version');
      await refused('/billing/settings/letterhead', letterhead({ version: '-1' }), 'version');
      await refused('/billing/settings/letterhead', letterhead({ firmName: ' ' }), 'firmName');
      await refused('/billing/settings/letterhead', letterhead({ firmName: 'x'.repeat(201) }), 'firmName');
      await refused('/billing/settings/letterhead', letterhead({ email: 'not-an-address' }), 'email');
      await refused('/billing/settings/bill-templates', [['name', 'audit'], ['layout', 'sideways'], ['title', 'Invoice'], ['footer', '']], 'layout');
      await refused('/billing/settings/bill-templates', [['name', ''], ['layout', 'itemised'], ['title', 'Invoice'], ['footer', '']], 'name');
      await refused('/billing/settings/bill-templates', [['name', 'x'.repeat(500)], ['layout', 'itemised'], ['title', 'Invoice'], ['footer', '']], 'name');
      await refused('/billing/settings/email-templates', [['name', 'audit'], ['subject', ''], ['body', 'x']], 'subject');
      await refused('/billing/settings/test-email', [['to', 'nobody']], 'to');
      // Email manually: the key, the subject, the text and the addresses.
      const compose = (extra: Record<string, string>): [string, string][] => Object.entries({ key: '0199aaaa-0000-7000-8000-000000000001', to: 'ap@northwind.example', cc: '', subject: 'Your bill', text: 'Attached.', ...extra });
      const email = `/billing/bills/${a!.billId}/email`;
      await refused(email, compose({ key: '' }), 'key');
      await refused(email, compose({ subject: 'x'.repeat(201) }), 'subject');
      await refused(email, compose({ text: ' ' }), 'text');
      await refused(email, compose({ to: 'ap@northwind.example, nope' }), 'to');
      await refused(email, compose({ cc: 'nope' }), 'cc');
      // The produce and email-decision forms.
      await refused('/billing/production/runs', [['bill', a!.billId], ['runId', 'not-a-run-id']], 'runId');
      await refused('/billing/production/runs', [['bill', 'x']], 'bill');
      // Without the form's run id each post would be a new run (a Retry clicked twice, two runs).
      await refused('/billing/production/runs', [['bill', a!.billId]], 'runId');
      const decision = `/billing/production/bills/${a!.billId}/email-decision`;
      await refused(decision, [['choice', 'maybe'], ['runId', '0199aaaa-0000-7000-8000-000000000002']], 'choice');
      await refused(decision, [['choice', 'resend'], ['runId', '']], 'runId');
      assert.deepEqual(await snapshot(db), before, 'no bill moved, no run, no template, no audit row, no event');
    }, { outputs: testOutputs(dirs) });
  } finally {
    removeDirs(dirs);
  }
}, { timeout: 300_000 });
