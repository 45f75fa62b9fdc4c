/**
 * Email manually, opened before production emailed the bill and posted after: refused, nothing
 * sent (a second copy the clerk did not know of), the page saying what production sent; posted
 * again from that page (now knowing), it sends. A form opened after production emailed the bill
 * sends at once. On both databases, with file-drop mail.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { eachDialect } from '../support/db.ts';
import { unescapeHtml } from '../support/app.ts';
import { ctx } from './support.ts';
import { approvedBills, closeSharedPdf, filesIn, outputDirs, productionSetup, removeDirs, signedInClerk, testOutputs } from './production-support.ts';

after(closeSharedPdf);

/** The email form's fields as the page wrote them (inputs and the textarea). */
function emailForm(html: string): Record<string, string> {
  const form = /<form method="post" action="[^"]*" class="stack" id="email-form">([\s\S]*?)<\/form>/.exec(html)?.[1];
  assert.ok(form, 'the page has the email form');
  const out: Record<string, string> = {};
  for (const m of form.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">|<input name="([^"]+)" value="([^"]*)"/g)) out[m[1] ?? m[3]!] = unescapeHtml(m[2] ?? m[4] ?? '');
  out.text = unescapeHtml(/<textarea name="text"[^>]*>([\s\S]*?)<\/textarea>/.exec(form)?.[1] ?? '');
  delete out._csrf;
  return out;
}

eachDialect('Email manually opened before production emailed the bill: refused when posted after it, nothing sent, the page saying what production sent; posted again from that page it sends; a form opened after production sends at once', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const [bill, other] = await approvedBills(s, 2, { copiesToPrint: 0, useClientAddress: false, sendTo: ['ap@northwind.example'] });
    const clerk = await signedInClerk(db, s);
    const mails = () => filesIn(dirs.mail).length;

    const stale = emailForm((await clerk.get(`/billing/bills/${bill!.billId}/email`)).text);
    const approvedMs = Date.parse((await s.billing.findBill(bill!.billId))!.approvedAt!);
    assert.equal(stale.seen, `0.0.${approvedMs}`, 'production had sent nothing of this approval when the form was shown');
    assert.equal((await s.production.produceBills(ctx, [bill!.billId])).done, 1);
    assert.equal(mails(), 1, 'production emailed it');

    const refused = await clerk.post(`/billing/bills/${bill!.billId}/email`, stale);
    assert.equal(refused.status, 409);
    const page = unescapeHtml(refused.text);
    assert.match(page, /role="alert">Production emailed this bill to ap@northwind\.example \([^)]+\) after this page was opened: nothing was sent from here\./);
    assert.equal(mails(), 1, 'no second copy');
    assert.equal((await s.production.manualDraft(bill!.billId)).sent.length, 0, 'no manual email recorded');
    const again = emailForm(refused.text);
    assert.deepEqual([again.key, again.seen, again.subject], [stale.key, `1.0.${approvedMs}`, stale.subject], 'the form as typed, now knowing what production sent');

    // Sent again from that page: the clerk's choice, knowing production emailed it.
    const sent = await clerk.post(`/billing/bills/${bill!.billId}/email`, again);
    assert.equal(sent.status, 303, sent.text);
    assert.equal(mails(), 2);

    // A form opened after production emailed the bill sends at once.
    assert.equal((await s.production.produceBills(ctx, [other!.billId])).done, 1);
    const fresh = emailForm((await clerk.get(`/billing/bills/${other!.billId}/email`)).text);
    assert.equal(fresh.seen, `1.0.${Date.parse((await s.billing.findBill(other!.billId))!.approvedAt!)}`);
    assert.equal((await clerk.post(`/billing/bills/${other!.billId}/email`, fresh)).status, 303);
    assert.equal(mails(), 4);

    // The page's own field altered: refused naming it, nothing sent.
    const bad = await clerk.post(`/billing/bills/${other!.billId}/email`, { ...emailForm((await clerk.get(`/billing/bills/${other!.billId}/email`)).text), seen: 'x' });
    assert.equal(bad.status, 422);
    assert.match(unescapeHtml(bad.text), /Please correct: the form itself \(reload the page\)/);
    assert.equal(mails(), 4);
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});

eachDialect('Email manually opened under one approval and posted after the bill was re-drafted, approved again and emailed by production again: refused (what production sent of the earlier approval says nothing of this one), nothing sent', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const [bill] = await approvedBills(s, 1, { copiesToPrint: 0, useClientAddress: false, sendTo: ['ap@northwind.example'] });
    const clerk = await signedInClerk(db, s);
    const mails = () => filesIn(dirs.mail).length;
    assert.equal((await s.production.produceBills(ctx, [bill!.billId])).done, 1);
    assert.equal(mails(), 1);
    // Opened knowing production emailed it once (under the first approval).
    const shown = emailForm((await clerk.get(`/billing/bills/${bill!.billId}/email`)).text);
    assert.match(shown.seen!, /^1\.0\.\d+$/);
    // Re-drafted, approved again, produced again: production emails this approval to the same one address.
    s.clock.advanceMs(60_000);
    await s.billing.redraft(ctx, bill!.billId);
    s.clock.advanceMs(60_000);
    await s.billing.approve(ctx, bill!.billId);
    assert.equal((await s.production.produceBills(ctx, [bill!.billId])).done, 1);
    assert.equal(mails(), 2);
    const refused = await clerk.post(`/billing/bills/${bill!.billId}/email`, shown);
    assert.equal(refused.status, 409, refused.text);
    assert.match(unescapeHtml(refused.text), /role="alert">Production emailed this bill to ap@northwind\.example \([^)]+\) after this page was opened: nothing was sent from here\./);
    assert.equal(mails(), 2, 'no third copy');
    // From that page (now knowing), the clerk may still send it.
    const again = emailForm(refused.text);
    assert.equal(again.seen, `1.0.${Date.parse((await s.billing.findBill(bill!.billId))!.approvedAt!)}`);
    assert.equal((await clerk.post(`/billing/bills/${bill!.billId}/email`, again)).status, 303);
    assert.equal(mails(), 3);
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});
