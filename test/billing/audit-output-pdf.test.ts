/**
 * Audit (output adapters) on both databases: a bill's PDF and its production email show the
 * bill's stored totals (integer minor units) exactly, in currencies of every exponent (JPY 0,
 * EUR and GBP 2, BHD 3), in each bill layout.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { formatMoney } from '../../src/shared/money.ts';
import { eachDialect } from '../support/db.ts';
import { pdfText } from '../adapters/pdf.ts';
import { ctx, firm } from './support.ts';
import { closeSharedPdf, outputDirs, productionSetup, readEml, removeDirs, testOutputs } from './production-support.ts';

after(closeSharedPdf);

eachDialect('PDF and email amounts equal the stored totals in JPY, EUR, GBP and BHD, itemised, total-only and fixed-fee layouts', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const f = await firm(s.matters);
    const cases: { currency: string; template: string }[] = [
      { currency: 'JPY', template: 'itemised' }, { currency: 'EUR', template: 'total-only' }, { currency: 'GBP', template: 'fixed-fee' }, { currency: 'BHD', template: 'itemised' },
    ];
    const bills: { billId: string; currency: string; template: string }[] = [];
    for (const [i, c] of cases.entries()) {
      const m = await s.matters.openMatter(ctx, { clientId: f.client.id, name: `Matter ${c.currency}`, responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH', currency: c.currency });
      await s.matters.setBillingOptions(ctx, m.id, { set: { billTemplate: c.template, useClientAddress: false, sendTo: ['ap@northwind.example'], copiesToPrint: 0 } });
      const override = { rateMinor: 123_457 + i, reason: 'agreed rate' };
      await s.matters.recordTimeEntry(ctx, { matterId: m.id, timekeeperId: f.partner.id, workDate: '2026-02-10', rawMinutes: 37, override, narrative: 'Advice' });
      await s.matters.recordTimeEntry(ctx, { matterId: m.id, timekeeperId: f.partner.id, workDate: '2026-02-11', rawMinutes: 101, override, narrative: 'Drafting' });
      await s.matters.recordDisbursement(ctx, { matterId: m.id, incurredOn: '2026-02-12', code: 'COURT', unitCostMinor: 98_765, taxCode: 'EXEMPT', description: 'Filing fee' });
      await s.drain();
      const d = await s.billing.createDraft(ctx, { matterId: m.id, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
      await s.billing.approve(ctx, d.billId);
      bills.push({ billId: d.billId, ...c });
    }
    await s.drain();
    const produced = await s.production.produceBills(ctx, bills.map((b) => b.billId));
    assert.equal(produced.done, bills.length, JSON.stringify(produced.items));
    const emails = readEml(dirs.mail);
    for (const b of bills) {
      const bill = (await s.billing.findBill(b.billId))!;
      assert.equal(bill.currency, b.currency);
      const text = pdfText((await s.production.storedPdf(b.billId))!.pdf);
      const money = (v: number) => formatMoney(v, b.currency, { named: true });
      const t = bill.totals;
      assert.ok(new RegExp(`Total due\\s+${escape(money(t.totalMinor))}(\\s|$)`).test(text), `${b.currency} ${b.template}: total ${money(t.totalMinor)} (${t.totalMinor} minor):\n${text}`);
      assert.ok(new RegExp(`Tax\\s+${escape(money(t.taxMinor))}(\\s|$)`).test(text), `${b.currency}: tax ${money(t.taxMinor)}`);
      if (t.disbursementsMinor) assert.ok(new RegExp(`Disbursements\\s+${escape(money(t.disbursementsMinor))}(\\s|$)`).test(text), `${b.currency}: disbursements ${money(t.disbursementsMinor)}:\n${text}`);
      if (t.feesMinor) assert.ok(new RegExp(`Professional fees\\s+${escape(money(t.feesMinor))}(\\s|$)`).test(text), `${b.currency}: fees ${money(t.feesMinor)}:\n${text}`);
      assert.equal(t.totalMinor, t.feesMinor + t.fixedChargesMinor + t.disbursementsMinor - t.discountMinor + t.interestMinor + t.taxMinor);
      // The email names the same total.
      const eml = emails.find((e) => e.includes(bill.number!));
      assert.ok(eml, `an email for ${bill.number}`);
      const body = decodeBody(eml);
      assert.ok(body.includes(money(t.totalMinor)), `${b.currency}: the email's total ${money(t.totalMinor)}:\n${body}`);
    }
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The text part of an .eml (quoted-printable or plain), decoded. */
function decodeBody(eml: string): string {
  const qp = /Content-Transfer-Encoding: quoted-printable\r?\n\r?\n([\s\S]*?)\r?\n----/i.exec(eml);
  if (!qp) return eml;
  return Buffer.from(qp[1]!.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
}
