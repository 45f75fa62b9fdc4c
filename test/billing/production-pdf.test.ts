/**
 * The bill PDF's content as pdftotext reads it, on both databases: whatever a narrative,
 * description or name holds is shown whole and as text (a long word wraps rather than running
 * off the page with the amount columns; markup is escaped, not interpreted), and a bill in a
 * currency other than the US dollar says which (its code, and CA$, A$ or NZ$ on every amount).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after } from 'node:test';
import type { PdfRenderOptions } from '../../src/shared/ports.ts';
import { eachDialect } from '../support/db.ts';
import { pdfText } from '../adapters/pdf.ts';
import { ctx, firm } from './support.ts';
import { closeSharedPdf, outputDirs, productionSetup, removeDirs, sharedPdf, testOutputs } from './production-support.ts';

after(closeSharedPdf);

const LONG_WORD = `https://docs.example.invalid/${'exhibit-bundle-volume'.repeat(10)}/END-OF-LINK`;

eachDialect('a bill PDF shows every narrative and description whole, its amounts, and markup as text; a CAD bill names its currency and its amounts are in CA$', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const f = await firm(s.matters);
    const m = await s.matters.openMatter(ctx, {
      clientId: f.client.id, name: 'Acme <b>Holdings</b> & "Sons"', responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH', currency: 'CAD',
    });
    const override = { rateMinor: 25_000, reason: 'agreed rate' };
    await s.matters.recordTimeEntry(ctx, { matterId: m.id, timekeeperId: f.partner.id, workDate: '2026-02-10', rawMinutes: 60, override, narrative: `Reviewed <script>alert(1)</script><i>tagged</i> bundle at ${LONG_WORD}` });
    await s.matters.recordTimeEntry(ctx, { matterId: m.id, timekeeperId: f.partner.id, workDate: '2026-02-11', rawMinutes: 30, override, narrative: 'Call with client\nFollow-up letter' });
    await s.matters.recordDisbursement(ctx, { matterId: m.id, incurredOn: '2026-02-12', code: 'COURT', unitCostMinor: 35_000, taxCode: 'EXEMPT', description: `${'X'.repeat(150)}TAIL` });
    await s.drain();
    const d = await s.billing.createDraft(ctx, { matterId: m.id, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
    await s.billing.approve(ctx, d.billId);
    await s.drain();
    const produced = await s.production.produceBills(ctx, [d.billId]);
    assert.equal(produced.done, 1, JSON.stringify(produced.items));
    const text = pdfText((await s.production.storedPdf(d.billId))!.pdf);
    // The text as one string, without the amounts pdftotext sets beside a wrapped line's first row.
    const flat = text.replace(/\s+/g, '').replace(/(CA)?\$[\d,]+\.\d\d/g, '');
    assert.ok(flat.includes(LONG_WORD), `the long link whole (wrapped, not cut off):\n${text}`);
    assert.ok(flat.includes(`${'X'.repeat(150)}TAIL`), 'the long description whole');
    for (const amount of ['CA$250.00', 'CA$125.00', 'CA$350.00']) assert.ok(text.includes(amount), `the line amount ${amount} is on the page:\n${text}`);
    // Every amount names the Canadian dollar, as the bill's email does: a bare "$" reads as US dollars.
    assert.deepEqual(text.match(/(?<!CA)\$\d/g), null, `no amount in bare dollars:\n${text}`);
    assert.match(text, /Total due\s+CA\$/, 'the total in Canadian dollars');
    assert.ok(text.includes('<script>alert(1)</script><i>tagged</i>'), 'markup in a narrative shows as text');
    assert.ok(text.includes('Acme <b>Holdings</b> & "Sons"'), 'markup in a matter name shows as text');
    assert.match(text, /Call with client[^\n]*\n\s*Follow-up letter/, 'a narrative keeps its line breaks');
    assert.match(text, /Currency\s+CAD/, 'the currency by its code');
    assert.match(text, /\bMH\s+(Reviewed|Call)/, 'the narrow columns keep their text on one line');
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});

eachDialect('bills produced at once are printed together and each stored PDF holds its own bill alone: its number, its work, its total, its title', async (db) => {
  const dirs = outputDirs();
  const outputs = testOutputs(dirs);
  // The bills' renders are handed to the (real) renderer together once all ten are waiting: two
  // tabs take two alone, and the eight left are printed as one, whatever the timing.
  const waiting: (() => void)[] = [];
  const releaseAll = () => { for (const go of waiting.splice(0)) go(); };
  const safety = setTimeout(releaseAll, 20_000);
  const pdf = {
    ...outputs.pdf,
    render: async (html: string, o?: PdfRenderOptions) => {
      if (o?.combinable) {
        await new Promise<void>((go) => { waiting.push(go); if (waiting.length === 10) releaseAll(); });
      }
      return outputs.pdf.render(html, o);
    },
  };
  const s = await productionSetup(db, { ...outputs, pdf });
  try {
    const f = await firm(s.matters);
    const bills: { billId: string; number: string; narrative: string; total: string }[] = [];
    for (let i = 1; i <= 10; i++) {
      const m = await s.matters.openMatter(ctx, { clientId: f.client.id, name: `Matter ${i}`, responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH' });
      const narrative = `Work unique to bill ${i} zq${i}x`;
      // A longer bill now and then: two pages, so a cut in the wrong place shows.
      for (let k = 0; k < (i % 4 === 0 ? 40 : 1); k++) {
        await s.matters.recordTimeEntry(ctx, { matterId: m.id, timekeeperId: f.partner.id, workDate: '2026-02-10', rawMinutes: 6 * i, override: { rateMinor: 10_000, reason: 'agreed' }, narrative });
      }
      await s.drain();
      const d = await s.billing.createDraft(ctx, { matterId: m.id, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
      const a = await s.billing.approve(ctx, d.billId);
      bills.push({ billId: a.billId, number: a.number!, narrative, total: (a.totals.totalMinor / 100).toFixed(2) });
    }
    await s.drain();
    const before = sharedPdf().stats.combinedDocuments;
    const produced = await s.production.produceBills(ctx, bills.map((b) => b.billId));
    assert.equal(produced.done, 10, JSON.stringify(produced.items));
    assert.equal(sharedPdf().stats.combinedDocuments - before, 8, 'eight bills printed together');
    for (const b of bills) {
      const pdf = (await s.production.storedPdf(b.billId))!.pdf;
      const text = pdfText(pdf);
      assert.ok(text.includes(b.number), `bill ${b.number}: its number`);
      assert.ok(text.includes(b.narrative), `bill ${b.number}: its work`);
      assert.match(text, new RegExp(`Total due\\s+\\$${b.total.replace(/\B(?=(\d{3})+(?!\d))/g, ',').replace('.', '\\.')}`), `bill ${b.number}: its total ${b.total}`);
      for (const other of bills) if (other !== b) assert.ok(!text.includes(other.narrative.split(' ').at(-1)!), `bill ${b.number} holds nothing of bill ${other.number}`);
      const info = execFileSync('pdfinfo', ['-'], { input: Buffer.from(pdf) }).toString('utf8');
      assert.match(info, new RegExp(`^Title:\\s+.*${b.number.replaceAll('.', '\\.')}$`, 'm'), `bill ${b.number}: its own title`);
      assert.match(info, new RegExp(`^Pages:\\s+${b.narrative.endsWith('zq4x') || b.narrative.endsWith('zq8x') ? 2 : 1}$`, 'm'), `bill ${b.number}: its own pages`);
    }
  } finally {
    clearTimeout(safety);
    await s.stop();
    removeDirs(dirs);
  }
});

/** The fonts a PDF embeds (pdffonts): name (without the subset prefix) and type. */
function pdfFonts(bytes: Uint8Array): { name: string; type: string }[] {
  const out = execFileSync('pdffonts', ['-'], { input: Buffer.from(bytes) }).toString('utf8');
  return out.split('\n').slice(2).filter((l) => l.trim()).map((l) => {
    const [name, ...rest] = l.split(/\s+/);
    return { name: name!.replace(/^[A-Z]{6}\+/, ''), type: rest.slice(0, 2).join(' ') };
  });
}

eachDialect('a bill for a client named in Japanese prints the name with a CJK font, not empty boxes (review 54, M1)', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const f = await firm(s.matters);
    const client = await s.matters.createClient(ctx, { name: '株式会社 東京ロジスティクス', email: 'ap@tokyo.example' });
    const m = await s.matters.openMatter(ctx, { clientId: client.id, name: '東京地方裁判所 事件', responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH' });
    await s.matters.recordTimeEntry(ctx, { matterId: m.id, timekeeperId: f.partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: '契約書のレビュー (contract review)' });
    await s.drain();
    const d = await s.billing.createDraft(ctx, { matterId: m.id, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
    const { pdf } = await s.production.previewPdf(d.billId);
    // Chromium draws Noto Sans CJK's outlines (CFF) as Type 3 fonts (pdffonts names them "[none]"); with no CJK font
    // installed the PDF held Liberation Sans alone, the Japanese drawn as its empty box.
    const fonts = pdfFonts(pdf);
    assert.ok(fonts.some((x) => x.type === 'Type 3'), `the Japanese drawn from a CJK font: ${JSON.stringify(fonts)}`);
    assert.ok(fonts.some((x) => /LiberationSans/.test(x.name)), 'Latin text stays in Liberation Sans');
    assert.match(pdfText(pdf).replace(/\s+/g, ''), /株式会社東京ロジスティクス/);
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});

eachDialect('a bill PDF never splits its totals box across pages, nor leaves a section heading at the foot of a page (review 54, M2)', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const f = await firm(s.matters);
    const entries = [];
    for (let i = 0; i < 30; i++) {
      entries.push(await s.matters.recordTimeEntry(ctx, { matterId: f.matter.id, timekeeperId: f.partner.id, workDate: '2026-02-02', rawMinutes: 60, narrative: `Work item ${i + 1}` }));
    }
    await s.matters.recordDisbursement(ctx, { matterId: f.matter.id, incurredOn: '2026-02-12', code: 'COPY', quantityMilli: 3_000, unitCostMinor: 35, description: 'Copies' });
    await s.drain();
    const splits: string[] = [];
    const pageCounts = new Set<number>();
    // Enough line counts that the page ends at every row of the totals and at the disbursements' heading.
    for (let n = 14; n <= 30; n++) {
      const d = await s.billing.createDraft(ctx, { matterId: f.matter.id, invoiceDate: '2026-03-01', upTo: '2026-02-28', request: { excludedIds: entries.slice(n).map((e) => e.id) } });
      const pages = pdfText((await s.production.previewPdf(d.billId)).pdf).split('\f').filter((p) => p.trim() !== '');
      pageCounts.add(pages.length);
      const totalOn = pages.findIndex((p) => /Total due/.test(p));
      const firstRowOn = pages.findIndex((p) => /Professional fees\s+\$[\d,]+\.\d\d/.test(p));
      if (totalOn !== firstRowOn) splits.push(`${n} lines: the totals start on page ${firstRowOn + 1} and end on page ${totalOn + 1}`);
      // Each page of a bill of several is numbered at its foot (below the page's own text: not its last line here).
      const numbered = pages.map((p) => /Tax invoice \S+ · Page (\d+) of (\d+)/.exec(p.replace(/[ \t]+/g, ' ')));
      if (pages.length > 1 && numbered.some((m, i) => !m || m[1] !== String(i + 1) || m[2] !== String(pages.length))) splits.push(`${n} lines: pages not numbered 1 to ${pages.length}`);
      if (pages.length === 1 && numbered[0]) splits.push(`${n} lines: a one-page bill numbered`);
      pages.slice(0, -1).forEach((p, i) => {
        const last = p.trim().split('\n').filter((l) => !/Page \d+ of \d+/.test(l)).at(-1)!.trim();
        if (/^(Professional fees|Disbursements|Fixed charges)$/.test(last)) splits.push(`${n} lines: the heading "${last}" ends page ${i + 1}`);
      });
      await s.billing.deleteBill(ctx, d.billId);
    }
    assert.deepEqual(splits, []);
    assert.ok(pageCounts.has(1) && pageCounts.has(2), `bills of one page and of two among them: ${[...pageCounts].join(', ')}`);
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});

eachDialect('a fixed charge of more than one unit shows its quantity and unit price on the bill, as a disbursement does (review 54, L1)', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const f = await firm(s.matters);
    const binders = await s.matters.createChargeType(ctx, { code: 'BINDERS', name: 'Trial binders', defaultPriceMinor: 33_333 });
    await s.matters.recordFixedCharge(ctx, { matterId: f.matter.id, chargeTypeId: binders.id, chargedOn: '2026-02-15', quantityMilli: 3_000 });
    await s.matters.recordFixedCharge(ctx, { matterId: f.matter.id, chargeTypeId: binders.id, chargedOn: '2026-02-16', quantityMilli: 1_000, description: 'One binder' });
    await s.drain();
    const d = await s.billing.createDraft(ctx, { matterId: f.matter.id, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
    const text = pdfText((await s.production.previewPdf(d.billId)).pdf).replace(/\s+/g, ' ');
    assert.match(text, /Trial binders \(3 × \$333\.33\) \$999\.99/);
    assert.match(text, /One binder \$333\.33/, 'one unit: the amount alone');
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});
