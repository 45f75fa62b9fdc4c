/**
 * Audit (what a bill looks like): the PDF renderer fetches nothing a document names (a URL that
 * reached a bill's HTML must not make Chromium reach the network or the disk), and a fixed-fee
 * bill that marks a line "*" (written up or down) says what the mark means.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { createChromiumPdf } from '../../src/adapters/pdf/chromium.ts';
import { chromiumPath } from '../support/browser.ts';
import { billTaxRows, taxByRate } from '../../src/modules/billing/domain/templates.ts';
import { formatMoney } from '../../src/shared/money.ts';
import { eachDialect } from '../support/db.ts';
import { pdfText } from '../adapters/pdf.ts';
import { ctx, firm, twoInstalments } from './support.ts';
import { closeSharedPdf, outputDirs, productionSetup, removeDirs, sharedPdf, testOutputs } from './production-support.ts';

after(closeSharedPdf);

test('the PDF renderer fetches nothing a document names: images, styles, frames, fonts, objects', async () => {
  const hits: string[] = [];
  const server = createServer((req, res) => { hits.push(req.url ?? ''); res.writeHead(200, { 'content-type': 'text/plain' }); res.end('FETCHED-FROM-THE-NETWORK'); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const pdf = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 1 });
  try {
    const html = `<!doctype html><html><head><meta charset="utf-8">
      <link rel="stylesheet" href="${base}/style.css">
      <style>@import url("${base}/import.css"); @font-face { font-family: X; src: url("${base}/font.woff2"); }
        body { background: url("${base}/bg.png"); font-family: X, sans-serif; }</style></head>
      <body><h1>Invoice 12.8.1</h1><img src="${base}/pixel.png"><iframe src="${base}/frame.html"></iframe>
      <object data="${base}/object.txt" type="text/plain"></object><iframe src="file:///etc/hostname"></iframe></body></html>`;
    const text = pdfText(await pdf.render(html, { timeoutMs: 15_000 }));
    assert.match(text, /Invoice 12\.8\.1/, 'the document itself is printed');
    assert.doesNotMatch(text, /FETCHED-FROM-THE-NETWORK/, 'nothing fetched is printed');
    assert.deepEqual(hits, [], 'Chromium made no request');
    // And the next document renders as before (the blocking does not stick a tab).
    assert.match(pdfText(await pdf.render('<!doctype html><p>Second bill</p>')), /Second bill/);
    assert.deepEqual(hits, []);
  } finally {
    await pdf.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

/**
 * A tax invoice with lines at more than one tax rate shows the tax per rate (its code), each the
 * sum of its lines' stored tax, adding up to the bill's stored tax; the taxable amount per rate
 * only where the bill shows line prices (a total-only bill shows no sum a single line could be).
 */
eachDialect('a bill with lines at two tax rates shows the tax per rate, adding up to the stored tax, in every layout', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const f = await firm(s.matters);
    const cases = [
      // Discount over two codes (a discount line per code) and over one (one discount line, no code of its own).
      { template: 'itemised', feeTax: 'EXEMPT', base: true },
      { template: 'itemised', feeTax: 'SALES', base: true },
      { template: 'total-only', feeTax: 'EXEMPT', base: false },
      { template: 'fixed-fee', feeTax: 'SALES', base: true },
    ];
    let last: NonNullable<Awaited<ReturnType<typeof s.billing.findBill>>> | null = null;
    for (const [i, c] of cases.entries()) {
      const m = await s.matters.openMatter(ctx, { clientId: f.client.id, name: `Tax matter ${i}`, responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH' });
      await s.matters.setBillingOptions(ctx, m.id, { set: { billTemplate: c.template } });
      // Time is at the firm's fee code (EXEMPT): with it the discount spans two codes, without it one.
      if (c.feeTax === 'EXEMPT') await s.matters.recordTimeEntry(ctx, { matterId: m.id, timekeeperId: f.partner.id, workDate: '2026-02-10', rawMinutes: 125, narrative: 'Advice' });
      await s.matters.recordDisbursement(ctx, { matterId: m.id, incurredOn: '2026-02-12', code: 'COURT', unitCostMinor: 35_000, taxCode: 'EXEMPT', description: 'Filing fee' });
      await s.matters.recordDisbursement(ctx, { matterId: m.id, incurredOn: '2026-02-13', code: 'COPY', unitCostMinor: 12_345, taxCode: 'SALES', description: 'Copies' });
      await s.drain();
      const d = await s.billing.createDraft(ctx, { matterId: m.id, invoiceDate: '2026-03-01', upTo: '2026-02-28', request: {
        discount: { kind: 'percentage', percentBasisPoints: 1_000, amountMinor: 0 },
        adHoc: [{ kind: 'fee', description: 'Extra advice', amountMinor: 7_777, taxCode: 'SALES', timekeeperId: null }],
      } });
      const bill = (await s.billing.findBill(d.billId))!;
      const discounts = bill.lines.filter((l) => l.kind === 'discount');
      // Every fee at SALES: one discount line, its tax code left empty; else one per code.
      assert.deepEqual(discounts.map((l) => l.taxCode), c.feeTax === 'SALES' ? [null] : ['EXEMPT', 'SALES']);
      const byCode = new Map<string, { base: number; tax: number }>();
      for (const l of bill.lines) {
        const code = l.taxCode ?? 'SALES';
        const r = byCode.get(code) ?? { base: 0, tax: 0 };
        r.base += l.amountMinor;
        r.tax += l.taxMinor;
        byCode.set(code, r);
      }
      assert.equal([...byCode.values()].reduce((a, r) => a + r.tax, 0), bill.totals.taxMinor);
      assert.ok(byCode.get('SALES')!.tax > 0, 'tax at SALES');
      const text = pdfText(await sharedPdf().render((await s.production.billHtml(bill, { preview: false })).html));
      const money = (v: number) => formatMoney(v, 'USD', { named: true });
      for (const [code, r] of byCode) {
        const label = c.base ? `Tax ${code} on ${money(r.base)}` : `Tax ${code}`;
        assert.ok(new RegExp(`${escape(label)}\\s+${escape(money(r.tax))}(\\s|$)`).test(text), `${c.template}: "${label} ${money(r.tax)}":\n${text}`);
      }
      // The tax total, said to be rounded on each line where the firm rounds so (a cent off the rate on a subtotal is no error).
      const perLine = (await s.matters.getFirmSettings()).taxRounding === 'per_line';
      const note = perLine ? '\\s+\\(worked out on each line and rounded there\\)' : '';
      assert.ok(new RegExp(`\\n\\s*Tax${note}\\s+${escape(money(bill.totals.taxMinor))}(\\s|$)`).test(text), `${c.template}: the tax total${perLine ? ', rounded per line' : ''}:\n${text}`);
      assert.ok(perLine, 'the firm rounds tax per line (the default)');
      last = bill;
      if (!c.base) assert.doesNotMatch(text, / on \$/, 'a total-only bill shows no taxable amount');
    }
    // A firm rounding tax once per bill: no such note.
    await s.matters.updateFirmSettings(ctx, { taxRounding: 'per_bill' });
    await s.drain();
    assert.doesNotMatch(pdfText(await sharedPdf().render((await s.production.billHtml(last!, { preview: false })).html)), /rounded there/);
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

test('taxByRate: a split only when it is exact', () => {
  const line = (kind: string, taxCode: string | null, amountMinor: number, taxMinor: number, noCharge = false) => ({ kind, taxCode, amountMinor, taxMinor, noCharge });
  // A one-code discount (no code of its own) belongs to the one code of the fees it is taken on.
  assert.deepEqual(taxByRate([line('adhoc_fee', 'SALES', 10_000, 825), line('disbursement', 'EXEMPT', 5_000, 0), line('discount', null, -1_000, -83)], 742), [
    { code: 'EXEMPT', taxableMinor: 5_000, taxMinor: 0 }, { code: 'SALES', taxableMinor: 9_000, taxMinor: 742 },
  ]);
  // Such a line with fees at two codes cannot be placed: no split.
  assert.equal(taxByRate([line('time', 'SALES', 10_000, 825), line('time', 'EXEMPT', 5_000, 0), line('discount', null, -1_000, -83)], 742), null);
  // Rows that would not add up to the stored tax: no split.
  assert.equal(taxByRate([line('time', 'SALES', 10_000, 825), line('disbursement', 'EXEMPT', 5_000, 0)], 826), null);
  // One rate: no rows above the total.
  assert.deepEqual(billTaxRows('itemised', { hideLinePricing: false, lines: [line('time', 'SALES', 10_000, 825)], totals: { taxMinor: 825 } }), { rows: [], showTaxable: true });
  assert.equal(billTaxRows('total_only', { hideLinePricing: false, lines: [], totals: { taxMinor: 0 } }).showTaxable, false);
  assert.equal(billTaxRows('fixed_fee', { hideLinePricing: true, lines: [], totals: { taxMinor: 0 } }).showTaxable, false);
});

/**
 * A firm with a long name and address (words, as firms write them): the letterhead's bill number,
 * dates and currency stay whole beside it, in every layout, rather than squeezed into a sliver
 * that cuts "2026-03-31" to "202".
 */
eachDialect('a long firm name and address leave the bill number, invoice date and due date whole', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const f = await firm(s.matters);
    await s.production.saveSettings(ctx, {
      firmName: 'Holloway Stern Kestrel and Associates, Barristers, Solicitors and Notaries Public',
      address: 'Level 12, Northwind Tower, 200 Queen Street, Melbourne Victoria 3000, Australia (DX 123 Melbourne)',
      taxId: 'ABN 12 345 678 901', phone: '+61 3 9000 0000', email: 'accounts@holloway.example', mailFrom: '', paymentNote: 'Pay by EFT', expectedVersion: 0,
    });
    for (const [i, template] of ['itemised', 'total-only', 'fixed-fee'].entries()) {
      const m = await s.matters.openMatter(ctx, { clientId: f.client.id, name: `Letterhead matter ${i}`, responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH' });
      await s.matters.setBillingOptions(ctx, m.id, { set: { billTemplate: template } });
      await s.matters.recordTimeEntry(ctx, { matterId: m.id, timekeeperId: f.partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice' });
      await s.drain();
      const d = await s.billing.createDraft(ctx, { matterId: m.id, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
      const bill = await s.billing.approve(ctx, d.billId);
      const text = pdfText(await sharedPdf().render((await s.production.billHtml(bill, { preview: false })).html));
      assert.match(text, /Holloway Stern Kestrel/);
      assert.match(text, /Tax id ABN 12 345 678 901/);
      assert.ok(new RegExp(`Bill number\\s+${escape(bill.number!)}(\\s|$)`).test(text), `${template}: the bill number whole:\n${text}`);
      assert.match(text, /Invoice date\s+2026-03-01(\s|$)/, `${template}: the invoice date whole`);
      assert.ok(new RegExp(`Due date\\s+${bill.dueDate}(\\s|$)`).test(text), `${template}: the due date whole`);
      assert.match(text, /Services to\s+2026-02-28(\s|$)/, `${template}: the period whole`);
      assert.match(text, /Currency\s+USD(\s|$)/, `${template}: the currency whole`);
    }
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});

/**
 * A matter billed to one of its client's contacts (accounts payable): the bill is addressed to
 * that person, at their address, and still names the client it is the invoice of, whose tax id
 * it shows.
 */
eachDialect('a bill addressed to a client\'s contact names the client too, beside the client\'s tax id', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const f = await firm(s.matters);
    await s.matters.updateClient(ctx, f.client.id, { taxId: 'EIN 12-3456789' });
    const ada = await s.matters.addContact(ctx, { clientId: f.client.id, name: 'Ada Payable', email: 'ada@northwind.example', role: 'Accounts payable' });
    await s.matters.updateContact(ctx, ada.id, { address: '3 Quay St' });
    await s.matters.setMatterParticipants(ctx, f.matter.id, { billablePartyContactId: ada.id, participants: [{ contactId: ada.id, role: 'Accounts payable' }] });
    await s.matters.recordTimeEntry(ctx, { matterId: f.matter.id, timekeeperId: f.partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice' });
    await s.drain();
    const d = await s.billing.createDraft(ctx, { matterId: f.matter.id, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
    const bill = (await s.billing.findBill(d.billId))!;
    const text = pdfText(await sharedPdf().render((await s.production.billHtml(bill, { preview: false })).html));
    const billTo = text.slice(text.indexOf('BILL TO'), text.indexOf('Professional services'));
    assert.match(billTo, /Ada Payable/, `addressed to the contact:\n${billTo}`);
    assert.match(billTo, /3 Quay St/);
    assert.match(billTo, /Northwind Logistics Inc\./, `the client named:\n${billTo}`);
    assert.match(billTo, /Tax id EIN 12-3456789/);
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});

/**
 * A disbursement of more than one unit shows its quantity and unit cost where the bill shows line
 * prices (itemised), not on a total-only bill; one unit shows its amount alone.
 */
eachDialect('a disbursement of several units shows its quantity and unit cost on an itemised bill, not on a total-only one', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const f = await firm(s.matters);
    await s.matters.recordDisbursement(ctx, { matterId: f.matter.id, incurredOn: '2026-02-12', code: 'COPY', quantityMilli: 250_000, unitCostMinor: 10, taxCode: 'EXEMPT', description: 'Photocopies' });
    await s.matters.recordDisbursement(ctx, { matterId: f.matter.id, incurredOn: '2026-02-13', code: 'MILE', quantityMilli: 2_500, unitCostMinor: 35, taxCode: 'EXEMPT', description: 'Mileage' });
    await s.matters.recordDisbursement(ctx, { matterId: f.matter.id, incurredOn: '2026-02-14', code: 'COURT', unitCostMinor: 35_000, taxCode: 'EXEMPT', description: 'Filing fee' });
    await s.drain();
    const d = await s.billing.createDraft(ctx, { matterId: f.matter.id, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
    const render = async () => pdfText(await sharedPdf().render((await s.production.billHtml((await s.billing.findBill(d.billId))!, { preview: false })).html));
    const text = await render();
    // 250 x $0.10 = $25.00; 2.5 x $0.35 = $0.875, $0.88 (half up, as recorded).
    assert.match(text, /Photocopies \(250 × \$0\.10\)\s+\$25\.00/, text);
    assert.match(text, /Mileage \(2\.5 × \$0\.35\)\s+\$0\.88/, text);
    assert.match(text, /Filing fee\s+\$350\.00/);
    assert.doesNotMatch(text, /Filing fee \(/, 'one unit: the amount alone');
    await s.matters.setBillingOptions(ctx, f.matter.id, { set: { billTemplate: 'total-only' } });
    await s.drain();
    const totalOnly = await render();
    assert.doesNotMatch(totalOnly, /×/, `no unit prices on a total-only bill:\n${totalOnly}`);
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});
