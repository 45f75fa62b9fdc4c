/**
 * Seed 002's general retainer on the bill itself: a retainer that applies to the bill pays what
 * it holds of it, and the bill (its PDF and its email) says so and asks only for what is left,
 * with the top-up reckoned from the balance after it; a retainer that does not apply changes
 * nothing on the bill. On both databases.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { unescapeHtml } from '../support/app.ts';
import { ctx, firm } from './support.ts';
import { htmlText, outputDirs, productionSetup, removeDirs, signedInClerk, testOutputs } from './production-support.ts';

eachDialect('a bill its general retainer pays (seed 002: 6,000 held, a 3,500 bill, minimum 5,000, trigger 3,000): the PDF and the email show it paid and 0 left to pay, and ask 2,500 to top the retainer up', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const f = await firm(s.matters);
    await s.matters.updateFirmSettings(ctx, { generalRetainersEnabled: true });
    await s.matters.setBillingOptions(ctx, f.matter.id, {
      set: {
        generalRetainer: { enabled: true, toPay: 'new_charges', automation: 'automatic' },
        retainerReplenishment: { enabled: true, minimumBalanceMinor: 500_000, triggerMinor: 300_000 },
      },
    });
    await s.matters.recordDisbursement(ctx, { matterId: f.matter.id, incurredOn: '2026-02-12', code: 'COURT', unitCostMinor: 350_000, description: 'Expert report', taxCode: 'EXEMPT' });
    await s.drain();
    await s.billing.setRetainerBalance(ctx, f.matter.id, { balanceMinor: 600_000, asOf: '2026-02-28' });
    // The composer and the bill page show it too, with what is left to pay and that Lexbill moves no retainer money yet.
    const clerk = await signedInClerk(db, s);
    const shown = async (path: string) => {
      const page = unescapeHtml((await clerk.get(path)).text);
      assert.ok(page.includes('<dt>Paid from retainer</dt><dd data-total="retainer-applied" data-minor="350000">-$3,500.00</dd>'), `${path}: ${page}`);
      assert.ok(page.includes('<dd data-total="left-to-pay" data-minor="0">$0.00 <small class="muted" data-retainer-hint>'), path);
    };
    await shown(`/billing/matters/${f.matter.id}/compose?invoiceDate=2026-03-01&upTo=2026-02-28`);
    const draft = await s.billing.createDraft(ctx, { matterId: f.matter.id, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
    assert.deepEqual([draft.totals.totalMinor, draft.retainerAppliedMinor, draft.retainerRequestMinor], [350_000, 350_000, 250_000]);
    await shown(`/billing/bills/${draft.billId}`);
    const balance = async () => (await s.billing.findRetainerBalance(f.matter.id))!.balanceMinor;
    // The balance recorded anew after the bill was composed: approving it is refused (it would say the retainer paid
    // what it no longer holds); composed again, it pays what the retainer holds now.
    await s.billing.setRetainerBalance(ctx, f.matter.id, { balanceMinor: 200_000, asOf: '2026-02-28' });
    await assert.rejects(s.billing.approve(ctx, draft.billId), (e: Error & { status?: number }) => e.status === 409 && /retainer balance was recorded anew since this bill was composed/.test(e.message));
    assert.equal((await s.billing.findBill(draft.billId))!.status, 'draft', 'nothing approved');
    assert.equal(await balance(), 200_000, 'nothing taken');
    const recomposed = await s.billing.updateDraft(ctx, draft.billId, { request: {} });
    assert.deepEqual([recomposed.retainerAppliedMinor, recomposed.retainerRequestMinor], [200_000, 500_000], '2,000 pays part; 0 left: 5,000 to reach the minimum');
    await s.billing.setRetainerBalance(ctx, f.matter.id, { balanceMinor: 600_000, asOf: '2026-02-28' });
    await s.billing.updateDraft(ctx, draft.billId, { request: {} });

    const bill = await s.billing.approve(ctx, draft.billId);
    assert.equal(bill.retainerAppliedMinor, 350_000);
    assert.equal(await balance(), 250_000, 'approving lowers the recorded balance by what the retainer pays');

    const pdf = htmlText((await s.production.billHtml(bill, { preview: false })).html);
    assert.ok(pdf.includes('Total $3,500.00 Paid from your general retainer -$3,500.00 Total due $0.00 Retainer top-up requested $2,500.00'), pdf);
    assert.ok(pdf.includes('$3,500.00 of this bill is paid from your general retainer, leaving $0.00 to pay. Please also pay $2,500.00 to replenish your retainer.'), pdf);
    const email = (await s.production.manualDraft(bill.billId)).text;
    assert.ok(email.includes('$3,500.00 of this bill is paid from your general retainer, leaving $0.00 to pay. Please also pay $2,500.00 to replenish your retainer.'), email);

    // Reverted: what the retainer paid goes back on its balance.
    await s.billing.revert(ctx, bill.billId);
    assert.equal(await balance(), 600_000);
    // The clerk chooses not to apply it: the bill asks for its whole total, and nothing to top up (6,000 is above the trigger).
    const kept = await s.billing.updateDraft(ctx, bill.billId, { request: { applyRetainer: false } });
    assert.deepEqual([kept.retainerAppliedMinor, kept.retainerRequestMinor], [0, 0]);
    const plain = htmlText((await s.production.billHtml(kept, { preview: true })).html);
    assert.ok(plain.includes('Total due $3,500.00'), plain);
    assert.doesNotMatch(plain, /general retainer|top-up/);
    assert.equal((await s.billing.approve(ctx, kept.billId)).retainerAppliedMinor, 0);
    assert.equal(await balance(), 600_000, 'a bill the retainer does not pay leaves its balance');

    // Mass approval: the retainer pays each bill composed with the balance it still holds; one composed with an
    // older balance is refused with the reason, and the others are approved.
    await s.billing.revert(ctx, kept.billId);
    await s.billing.updateDraft(ctx, kept.billId, { request: { applyRetainer: true } });
    const [again] = await s.mass.approveMany(ctx, [kept.billId]);
    assert.equal(again!.ok, true, JSON.stringify(again));
    assert.equal(await balance(), 250_000);
    await s.billing.revert(ctx, kept.billId);
    assert.equal(await balance(), 600_000);
    await s.billing.setRetainerBalance(ctx, f.matter.id, { balanceMinor: 500_000, asOf: '2026-03-01' });
    const [stale] = await s.mass.approveMany(ctx, [kept.billId]);
    assert.deepEqual(stale, { billId: kept.billId, ok: false, reason: stale!.ok ? '' : stale!.reason });
    assert.match(stale!.ok ? '' : stale!.reason, /retainer balance was recorded anew since this bill was composed/);
    assert.equal(await balance(), 500_000);
    const audits = await db.db.selectFrom('audit_log').select('action').where('entity_type', '=', 'billing_retainer_balance').execute();
    assert.deepEqual([...new Set(audits.map((a) => a.action))].sort(), ['billing.retainer_balance_set', 'billing.retainer_paid_bill', 'billing.retainer_refunded']);
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});
