/**
 * A bill produced, re-drafted, approved and produced again under the same number keeps the PDF
 * of its first approval (the client holds it): listed on the bill's page, served as it was, and
 * produced again nothing more is kept twice. On both databases, with file-drop mail.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after } from 'node:test';
import { eachDialect } from '../support/db.ts';
import { ctx } from './support.ts';
import { approvedBills, closeSharedPdf, fetchPdf, outputDirs, productionSetup, removeDirs, signedInClerk, testOutputs } from './production-support.ts';

after(closeSharedPdf);

eachDialect('a bill produced again after a re-draft keeps the PDF of its earlier approval: listed on its page and served as it was', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const [bill] = await approvedBills(s, 1, { copiesToPrint: 0, useClientAddress: false, sendTo: [] });
    const clerk = await signedInClerk(db, s);
    const firstApproval = (await s.billing.findBill(bill!.billId))!.approvedAt!;
    assert.equal((await s.production.produceBills(ctx, [bill!.billId])).done, 1);
    const first = (await s.production.storedPdf(bill!.billId))!;
    assert.ok(first, 'produced: its PDF stored');
    // Nothing earlier yet.
    assert.doesNotMatch((await clerk.get(`/billing/bills/${bill!.billId}`)).text, /id="earlier-pdfs"/);

    // Re-drafted, approved again and produced again: the same number, a new approval.
    s.clock.advanceMs(60_000);
    await s.billing.redraft(ctx, bill!.billId);
    s.clock.advanceMs(60_000);
    await s.billing.approve(ctx, bill!.billId);
    assert.equal((await s.production.produceBills(ctx, [bill!.billId])).done, 1);
    const now = (await s.billing.findBill(bill!.billId))!;
    assert.notEqual(now.approvedAt, firstApproval);
    assert.equal(now.number, bill!.number, 'the same number');

    // The first approval's PDF is kept, byte for byte, and the bill's page links it.
    const kept = await db.db.selectFrom('billing_bill_pdf_earlier').select(['cycle', 'number', 'sha256', 'replaced_at']).where('bill_id', '=', bill!.billId).execute();
    assert.deepEqual(kept.map((k) => [k.cycle, k.number, k.sha256]), [[firstApproval, bill!.number, first.sha256]]);
    const page = (await clerk.get(`/billing/bills/${bill!.billId}`)).text;
    const link = new RegExp(`<a href="/billing/bills/${bill!.billId}/pdf\\?earlier=([^"]+)" data-pdf="earlier">${bill!.number!.replace(/\./g, '\\.')}, produced [^<]+</a>`).exec(page);
    assert.ok(link, page.slice(page.indexOf('<dl'), page.indexOf('<dl') + 2_000));
    const res = await fetchPdf(s.rt.app, clerk, `/billing/bills/${bill!.billId}/pdf?earlier=${link[1]}`);
    assert.equal(res.status, 200);
    assert.equal(res.type, 'application/pdf');
    assert.equal(createHash('sha256').update(res.bytes).digest('hex'), first.sha256, 'served as it was produced');
    // The current PDF is the new approval's.
    assert.equal((await db.db.selectFrom('billing_bill_pdf').select('cycle').where('bill_id', '=', bill!.billId).executeTakeFirstOrThrow()).cycle, now.approvedAt);

    // An approval it has no earlier PDF of, or no approval time at all: 404 and 422, naming the parameter.
    assert.equal((await clerk.get(`/billing/bills/${bill!.billId}/pdf?earlier=${encodeURIComponent('2020-01-01T00:00:00.000Z')}`)).status, 404);
    const bad = await clerk.get(`/billing/bills/${bill!.billId}/pdf?earlier=yesterday`);
    assert.equal(bad.status, 422);
    assert.match(bad.text, /earlier/);
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});
