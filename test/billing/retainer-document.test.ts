/**
 * Seed 002's general retainer on the bill itself: a retainer that applies to the bill pays what
 * it holds of it, and the bill (its PDF and its email) says so and asks only for what is left,
 * with the top-up reckoned from the balance after it; a retainer that does not apply changes
 * nothing on the bill. On both databases.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { Browser, PASSWORD, unescapeHtml } from '../support/app.ts';
import { createUser } from '../../src/web/auth/service.ts';
import { systemContext } from '../../src/shared/events.ts';
import { ctx, firm } from './support.ts';
import { outputDirs, productionSetup, removeDirs, testOutputs } from './production-support.ts';

const textOf = (html: string) => html.replace(/<style[\s\S]*?<\/style>/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');

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
    await createUser({ db: db.db, clock: s.clock }, systemContext('test-setup', 'test'), { email: 'clerk@firm.test', name: 'Clerk', role: 'billing', password: PASSWORD });
    const clerk = new Browser(s.rt.app);
    await clerk.login('clerk@firm.test');
    const shown = async (path: string) => {
      const page = unescapeHtml((await clerk.get(path)).text);
      assert.ok(page.includes('<dt>Paid from retainer</dt><dd data-total="retainer-applied" data-minor="350000">-$3,500.00</dd>'), `${path}: ${page}`);
      assert.ok(page.includes('<dd data-total="left-to-pay" data-minor="0">$0.00 <small class="muted" data-retainer-hint>'), path);
    };
    await shown(`/billing/matters/${f.matter.id}/compose?invoiceDate=2026-03-01&upTo=2026-02-28`);
    const draft = await s.billing.createDraft(ctx, { matterId: f.matter.id, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
    assert.deepEqual([draft.totals.totalMinor, draft.retainerAppliedMinor, draft.retainerRequestMinor], [350_000, 350_000, 250_000]);
    await shown(`/billing/bills/${draft.billId}`);
    const bill = await s.billing.approve(ctx, draft.billId);

    const pdf = textOf((await s.production.billHtml(bill, { preview: false })).html);
    assert.ok(pdf.includes('Total $3,500.00 Paid from your general retainer -$3,500.00 Total due $0.00 Retainer top-up requested $2,500.00'), pdf);
    assert.ok(pdf.includes('$3,500.00 of this bill is paid from your general retainer, leaving $0.00 to pay. Please also pay $2,500.00 to replenish your retainer.'), pdf);
    const email = (await s.production.manualDraft(bill.billId)).text;
    assert.ok(email.includes('$3,500.00 of this bill is paid from your general retainer, leaving $0.00 to pay. Please also pay $2,500.00 to replenish your retainer.'), email);

    // The clerk chooses not to apply it: the bill asks for its whole total, and nothing to top up (6,000 is above the trigger).
    await s.billing.revert(ctx, bill.billId);
    const kept = await s.billing.updateDraft(ctx, bill.billId, { request: { applyRetainer: false } });
    assert.deepEqual([kept.retainerAppliedMinor, kept.retainerRequestMinor], [0, 0]);
    const plain = textOf((await s.production.billHtml(kept, { preview: true })).html);
    assert.ok(plain.includes('Total due $3,500.00'), plain);
    assert.doesNotMatch(plain, /general retainer|top-up/);
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});
