/** An itemised bill heads fees billed as quoted "As quoted", not "Fixed fees". */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { ctx, firm } from './support.ts';
import { htmlText, outputDirs, productionSetup, removeDirs, testOutputs } from './production-support.ts';

eachDialect('an itemised bill heads its "As quoted" line "As quoted", not "Fixed fees"', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const f = await firm(s.matters);
    // Quoted fees of 500.00, billing the quote whatever the WIP; only a court fee recorded: no fee line
    // can carry the quote, so the bill has an "As quoted" line of its own.
    await s.matters.setBillingOptions(ctx, f.matter.id, { set: { quote: { amountMinor: 50_000, includes: 'fees', ifWipBelow: 'bill_quote', ifWipAbove: 'bill_quote' } } });
    await s.matters.recordDisbursement(ctx, { matterId: f.matter.id, incurredOn: '2026-02-12', code: 'COURT', unitCostMinor: 3_500, description: 'Filing fee' });
    await s.drain();
    const quotedDraft = await s.billing.createDraft(ctx, { matterId: f.matter.id, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
    assert.ok(quotedDraft.lines.some((l) => l.kind === 'quote_fee'), 'the bill carries the "As quoted" line');
    const quoted = htmlText((await s.production.billHtml((await s.billing.findBill(quotedDraft.billId))!, { preview: false })).html);
    assert.match(quoted, /As quoted/);
    assert.doesNotMatch(quoted, /Fixed fees/, 'before: the quote line was headed "Fixed fees"');
    assert.match(quoted, /Payment is due by \d{4}-\d{2}-\d{2}\./);
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});
