/**
 * Audit of the composer: saving a draft another tab has approved or deleted since the page
 * showed it. The version the page showed is checked first, so the refusal is "changed by
 * someone else" with its code (BILL_CHANGED, what the pages and lists test), not the new
 * status's reason ("revert it to draft first", advice for a bill the clerk never saw approved);
 * and nothing changes.
 */
import assert from 'node:assert/strict';
import { BILL_CHANGED } from '../../src/modules/billing/commands.ts';
import { eachDialect } from '../support/db.ts';
import { unescapeHtml, withApp } from '../support/app.ts';
import { createBillingCommands } from '../../src/modules/billing/index.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { ctx, firm, refused, setup, work } from './support.ts';
import { composerSubmission, postMany } from './web-support.ts';

eachDialect('audit composer: saving a draft approved or deleted by another tab since is refused as changed (BILL_CHANGED), and changes nothing', async (db) => {
  const s = await setup(db);
  const { partner, associate, matter } = await firm(s.cmds);
  await work(s.cmds, matter.id, { partner, associate });
  await s.drain();
  const B = s.billing;

  const cases: { name: string; act: (id: string, version: number) => Promise<unknown>; status: string }[] = [
    { name: 'approved by another tab', act: (id, v) => B.approve(ctx, id, v), status: 'approved' },
    { name: 'deleted by another tab', act: (id, v) => B.deleteDraft(ctx, id, v), status: 'deleted' },
  ];
  for (const c of cases) {
    const draft = await B.createDraft(ctx, { matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' });
    await c.act(draft.billId, draft.version);
    const moved = (await B.findBill(draft.billId))!;
    const e = await refused(B.updateDraft(ctx, draft.billId, { request: { interestMinor: 1_000 }, expectedVersion: draft.version }));
    assert.equal(e.code, BILL_CHANGED, `${c.name}: ${e.message}`);
    assert.match(e.message, /changed by someone else/, c.name);
    assert.doesNotMatch(e.message, /revert it|re-draft it/, `${c.name}: no advice for a status the clerk never saw`);
    assert.deepEqual(await B.findBill(draft.billId), moved, `${c.name}: nothing changed`);
    assert.equal(moved.status, c.status);
    await s.drain();
    if (c.status === 'approved') await B.revert(ctx, draft.billId).then((r) => B.deleteBill(ctx, r.billId));
    await s.drain();
  }
  // The same version still saves.
  const draft = await B.createDraft(ctx, { matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' });
  const saved = await B.updateDraft(ctx, draft.billId, { request: { interestMinor: 1_000 }, expectedVersion: draft.version });
  assert.equal(saved.totals.interestMinor, 1_000);
});

eachDialect('audit composer page: Save on a draft another tab approved says it changed (409), not "revert it to draft first"; the bill stays approved', async (db) => {
  await withApp(db, async (t) => {
    const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const billing = createBillingCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const f = await firm(cmds);
    await work(cmds, f.matter.id, f);
    await t.runtime.relay.drain();
    const draft = await billing.createDraft(ctx, { matterId: f.matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' });
    await t.user('billing', { email: 'clerk@firm.test' });
    const b = t.browser();
    assert.equal((await b.login('clerk@firm.test')).status, 303);
    const fields = composerSubmission((await b.get(`/billing/matters/${f.matter.id}/compose?bill=${draft.billId}`)).text);
    const approved = await billing.approve(ctx, draft.billId);
    const res = await postMany(b, `/billing/matters/${f.matter.id}/compose`, fields);
    assert.equal(res.status, 409, res.text.slice(0, 1500));
    const text = unescapeHtml(res.text);
    assert.match(text, /changed by someone else/);
    assert.doesNotMatch(text, /revert it to draft first/);
    assert.deepEqual(await billing.findBill(draft.billId), approved, 'the approved bill is untouched');
  });
});

eachDialect('audit composer page: a form naming another matter\'s draft is refused at billId (422); that draft is not changed or shown as this matter\'s', async (db) => {
  await withApp(db, async (t) => {
    const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const billing = createBillingCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const f = await firm(cmds);
    await work(cmds, f.matter.id, f);
    const other = await cmds.openMatter(ctx, { clientId: f.client.id, name: 'Other matter', responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH' });
    const otherWork = await work(cmds, other.id, f);
    await t.runtime.relay.drain();
    const otherDraft = await billing.createDraft(ctx, { matterId: other.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' });
    await t.user('billing', { email: 'clerk@firm.test' });
    const b = t.browser();
    assert.equal((await b.login('clerk@firm.test')).status, 303);
    // The first matter's composer, its form pointed at the other matter's draft.
    const fields = composerSubmission((await b.get(`/billing/matters/${f.matter.id}/compose?invoiceDate=2026-02-28`)).text)
      .filter(([k]) => k !== 'billId' && k !== 'version');
    const pointed: [string, string][] = [...fields, ['billId', otherDraft.billId], ['version', String(otherDraft.version)], ['interest', '10.00']];

    const saved = await postMany(b, `/billing/matters/${f.matter.id}/compose`, pointed);
    assert.equal(saved.status, 422, saved.text.slice(0, 1500));
    assert.match(saved.text, /data-error-for="billId"/);
    assert.deepEqual(await billing.findBill(otherDraft.billId), otherDraft, 'the other matter\'s draft is untouched');
    assert.equal((await db.db.selectFrom('billing_bill').select('id').execute()).length, 1, 'nothing drafted');

    const preview = await postMany(b, `/billing/matters/${f.matter.id}/compose/preview`, pointed);
    assert.match(preview.text, /data-error-for="billId"/);
    assert.doesNotMatch(preview.text, new RegExp(otherWork.t1.id), 'the other matter\'s items are not offered here');
    // The command refuses it too.
    const e = await billing.preview({ matterId: f.matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28', billId: otherDraft.billId }).then(() => null, (err: unknown) => err as { status: number; fields: Record<string, string> });
    assert.deepEqual([e?.status, Object.keys(e?.fields ?? {})], [422, ['billId']]);
  });
});
