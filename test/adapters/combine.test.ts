/**
 * Printing documents together and cutting the PDF (adapters/pdf/combine.ts): the documents'
 * shapes, and against the real Chromium, each cut PDF printing what the document alone
 * prints (its pages, its text, its title); documents of other shapes printed alone; a combined
 * render that fails, or a PDF that cannot be cut, printing its documents one by one.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, test } from 'node:test';
import { COMBINE_MAX_DOCS, combineDocuments, createCombiner, documentParts, documentTitle, sameShape, unescapeHtml } from '../../src/adapters/pdf/combine.ts';
import { createChromiumPdf } from '../../src/adapters/pdf/chromium.ts';
import { chromiumPath } from '../support/browser.ts';
import { pageFooterText } from '../../src/adapters/pdf/page-numbers.ts';
import { pdfText } from './pdf.ts';

const STYLE = '<style>@page { size: A4; margin: 15mm; } body { font-family: "Liberation Sans", sans-serif; font-size: 10pt; margin: 0; } h1 { margin: 0 0 4mm; } td { padding: 1mm; }</style>';
/** A document of the bills' shape; `rows` table rows (about 45 fill an A4 page). */
const doc = (title: string, heading: string, rows: number, style = STYLE) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${title}</title>
${style}
</head>
<body>
<h1>${heading}</h1>
<table>${Array.from({ length: rows }, (_, i) => `<tr><td>${heading} line ${i + 1}</td><td>${(i + 1) * 7}.00</td></tr>`).join('')}</table>
<p>Total for ${heading}</p>
</body>
</html>
`;

function pdfInfo(bytes: Uint8Array): { pages: number; title: string } {
  const out = execFileSync('pdfinfo', ['-'], { input: Buffer.from(bytes) }).toString('utf8');
  return { pages: Number(/^Pages:\s+(\d+)/m.exec(out)?.[1]), title: /^Title:\s+(.*)$/m.exec(out)?.[1] ?? '' };
}

const alone = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 1, combineMax: 1 });
after(async () => { await alone.close(); });

test('a document\'s parts: the plain shape is read, its title apart; other shapes are not combined', () => {
  const a = documentParts(doc('Bill 1 &amp; co', 'A', 2))!;
  const b = documentParts(doc('Bill 2', 'B', 5))!;
  assert.ok(a && b);
  assert.equal(a.titleHtml, 'Bill 1 &amp; co');
  assert.ok(a.body.includes('<h1>A</h1>') && !a.body.includes('<title>'));
  assert.ok(sameShape(a, b), 'heads that differ only in their titles');
  assert.ok(!sameShape(a, documentParts(doc('Bill 3', 'C', 1, '<style>body { color: red; }</style>'))!), 'another style');
  assert.equal(documentParts('<!doctype html><html><head></head><body class="x">y</body></html>'), null, 'a body with attributes');
  assert.equal(documentParts('<html><head></head><body>y</body></html>'), null, 'no doctype');
  assert.equal(documentParts('<!doctype html><html><head></head><body>y</body></html><body>z</body></html>'), null, 'two bodies');
  assert.equal(documentParts('<p>a fragment</p>'), null);
  assert.equal(unescapeHtml('A &amp; B &lt;C&gt; &quot;D&quot; &#39;E&#39; &#x263A; &bogus; &#0;'), 'A & B <C> "D" \'E\' \u263a &bogus; &#0;');
  assert.equal(documentTitle(documentParts(doc(' Tax  invoice\n 7.1 &amp;  co ', 'T', 1))!), 'Tax invoice 7.1 & co', 'white space as Chromium gives the title');
  const c = combineDocuments([a, b]);
  assert.equal(c.anchors.length, 2);
  assert.notEqual(c.anchors[0], c.anchors[1]);
  assert.ok(c.html.includes(`id="${c.anchors[1]}" style="display: block; break-before: page"`));
  assert.ok(c.html.indexOf('<h1>A</h1>') < c.html.indexOf('<h1>B</h1>'));
  assert.notEqual(combineDocuments([a, b]).anchors[0], c.anchors[0], 'ids differ from one combined document to the next');
  assert.throws(() => combineDocuments([a]), /2\.\./);
  assert.throws(() => combineDocuments(Array.from({ length: COMBINE_MAX_DOCS + 1 }, () => a)), /2\.\./);
  assert.throws(() => combineDocuments([a, documentParts(doc('x', 'C', 1, '<style>p{}</style>'))!]), /different shapes/);
});

test('documents waiting for a tab print together, and each cut PDF has the pages, text and title the document has alone', async () => {
  const pdf = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 1, combineMax: 10 });
  try {
    // The second document runs over three pages: the cut must give it all three and the next its own.
    const docs = [doc('Tax invoice 1.1', 'Alpha', 3), doc('Tax invoice 2.1', 'Bravo', 110), doc('Tax invoice 3.1 &amp; more', 'Charlie', 1), doc(' Tax  invoice\n4.1 ', 'Delta', 30), doc('Tax invoice 5.1', 'Echo', 60)];
    // Five at once on one tab: the first prints alone, the four waiting go together.
    const together = await Promise.all(docs.map((d) => pdf.render(d, { combinable: true })));
    assert.equal(pdf.stats.combined, 1);
    assert.equal(pdf.stats.combinedDocuments, 4);
    assert.equal(pdf.stats.combineFellBack, 0);
    assert.equal(pdf.stats.renders, 2, 'two renders for five documents');
    for (const [i, d] of docs.entries()) {
      const own = await alone.render(d);
      const a = pdfInfo(own);
      const b = pdfInfo(together[i]!);
      assert.deepEqual(b, a, `document ${i + 1}: pages and title`);
      assert.equal(pdfText(together[i]!), pdfText(own), `document ${i + 1}: text`);
    }
    assert.equal(pdfInfo(together[1]!).pages, 3);
    assert.equal(pdfInfo(together[2]!).title, 'Tax invoice 3.1 & more');
    // Not marked combinable: printed alone however many wait.
    const before = pdf.stats.renders;
    const plain = await Promise.all(docs.slice(0, 3).map((d) => pdf.render(d)));
    assert.equal(pdf.stats.renders - before, 3);
    assert.equal(pdf.stats.combined, 1);
    for (const [i, p] of plain.entries()) assert.equal(pdfText(p), pdfText(together[i]!));
  } finally {
    await pdf.close();
  }
});

test('documents of different shapes or paper are not printed together', async () => {
  const pdf = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 1, combineMax: 10 });
  try {
    const red = '<style>@page { size: A4; margin: 15mm; } body { color: #a00; }</style>';
    const outs = await Promise.all([
      pdf.render(doc('First', 'First', 2), { combinable: true }),
      pdf.render(doc('Red', 'Red', 2, red), { combinable: true }),
      pdf.render(doc('Letter', 'Letter', 2), { combinable: true, format: 'Letter' }),
      pdf.render(doc('Plain', 'Plain', 2), { combinable: true }),
    ]);
    // Red and Letter each alone; Plain alone too (nothing of its shape and paper waited with it).
    assert.equal(pdf.stats.combined, 0);
    assert.equal(pdf.stats.renders, 4);
    assert.ok(pdfText(outs[1]!).includes('Red line 2'));
    assert.ok(pdfText(outs[2]!).includes('Letter line 1'));
    assert.ok(!pdfText(outs[3]!).includes('Red'));
  } finally {
    await pdf.close();
  }
});

test('a combined render that fails, or a combined PDF that cannot be cut, prints its documents one by one', async () => {
  const docs = [doc('One', 'One', 2), doc('Two', 'Two', 50), doc('Three', 'Three', 2), doc('Four', 'Four', 2)];
  const expected = await Promise.all(docs.map((d) => alone.render(d).then(pdfText)));
  const seen: string[] = [];
  const limits: string[] = [];
  const told: string[] = [];
  // The real renderer beneath; a combined document (it holds the sections' ids) fails, or loses the links that name its pages.
  for (const failure of ['render fails', 'no destinations'] as const) {
    seen.length = 0;
    limits.length = 0;
    told.length = 0;
    const combiner = createCombiner(async (html, opts, documents) => {
      const combined = html.includes('lexbill-part-');
      seen.push(combined ? 'combined' : 'alone');
      limits.push(`${documents}:${opts.timeoutMs ?? 'default'}`);
      if (combined && failure === 'render fails') throw new Error('Chromium gave up');
      return alone.render(combined ? html.replaceAll('<a href="#', '<b data-href="#').replaceAll('</a>', '</b>') : html, opts);
    }, { slots: 1, maxDocs: 10, defaultTimeoutMs: 30_000, onFallback: (err, n) => { told.push(`${n}: ${(err as Error).message}`); } });
    const outs = await Promise.all(docs.map((d) => combiner.render(d, { timeoutMs: 20_000 })));
    assert.deepEqual(outs.map(pdfText), expected, failure);
    assert.deepEqual(seen, ['alone', 'combined', 'alone', 'alone', 'alone'], `${failure}: the first alone, three together, then those three alone`);
    assert.deepEqual(combiner.stats, { combined: 0, documents: 0, fellBack: 1 }, failure);
    // Told how many documents and why; the combined render had twice a document's limit.
    assert.equal(told.length, 1);
    assert.match(told[0]!, failure === 'render fails' ? /^3: Chromium gave up$/ : /^3: the combined PDF (names no destinations|has no destination)/);
    assert.deepEqual(limits, ['1:20000', '3:40000', '1:20000', '1:20000', '1:20000']);
  }
  // One document the renderer refuses fails alone; the others print.
  const combiner = createCombiner(async (html, opts) => {
    if (html.includes('<h1>Three</h1>')) throw new Error('this one is broken');
    return alone.render(html, opts);
  }, { slots: 1, maxDocs: 10, defaultTimeoutMs: 30_000 });
  const settled = await Promise.allSettled(docs.map((d) => combiner.render(d, {})));
  assert.deepEqual(settled.map((s) => s.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
  assert.equal(pdfText((settled[3] as PromiseFulfilledResult<Uint8Array>).value), expected[3]);
  assert.throws(() => createCombiner(async () => new Uint8Array(), { slots: 0, maxDocs: 2, defaultTimeoutMs: 1 }), /slots/);
  assert.throws(() => createCombiner(async () => new Uint8Array(), { slots: 1, maxDocs: 1, defaultTimeoutMs: 1 }), /maxDocs/);
  assert.throws(() => createCombiner(async () => new Uint8Array(), { slots: 1, maxDocs: 2, defaultTimeoutMs: 0 }), /defaultTimeoutMs/);
  assert.throws(() => createChromiumPdf({ executablePath: chromiumPath(), combineMax: 0 }), /combineMax/);
});

test('a combined render counts each of its documents towards replacing the browser', async () => {
  const pdf = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 1, combineMax: 10, restartEvery: 4 });
  try {
    // One alone, then four together: five documents in two renders, past restartEvery.
    await Promise.all(Array.from({ length: 5 }, (_, i) => pdf.render(doc(`D${i}`, `D${i}`, 1), { combinable: true })));
    assert.equal(pdf.stats.renders, 2);
    assert.equal(pdf.stats.combinedDocuments, 4);
    assert.equal(pdf.stats.launches, 1);
    await pdf.render(doc('Next', 'Next', 1));
    assert.equal(pdf.stats.launches, 2, 'the next render is on a new browser');
  } finally {
    await pdf.close();
  }
});

test('a browser that dies during a combined render: its documents are printed one by one on a new browser (the combined render is not tried again)', async () => {
  const pdf = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 1, combineMax: 10 });
  try {
    await pdf.render(doc('Warm up', 'Warm up', 1));
    const pid = pdf.pid()!;
    // A light one prints alone first; the three long ones wait, then go together (seconds of work).
    const renders = [doc('Light', 'Light', 1), doc('Long A', 'LongA', 2_500), doc('Long B', 'LongB', 2_500), doc('Long C', 'LongC', 2_500)]
      .map((d) => pdf.render(d, { combinable: true }));
    await renders[0];
    await new Promise((r) => setTimeout(r, 300));
    process.kill(pid, 'SIGKILL');
    const outs = await Promise.all(renders);
    for (const [i, name] of ['LongA', 'LongB', 'LongC'].entries()) {
      const text = pdfText(outs[i + 1]!);
      assert.ok(text.includes(`${name} line 2500`) && !text.includes(`${['LongA', 'LongB', 'LongC'][(i + 1) % 3]} line`), `${name}: its own pages only`);
    }
    assert.deepEqual({ crashes: pdf.stats.crashes, launches: pdf.stats.launches, fellBack: pdf.stats.combineFellBack, combined: pdf.stats.combined }, { crashes: 1, launches: 2, fellBack: 1, combined: 0 });
    assert.notEqual(pdf.pid(), pid);
  } finally {
    await pdf.close();
  }
});

test('page numbers: each page of a document of several says which of how many, after its label; a one-page document says nothing', () => {
  const cases: [string | null | undefined, number, number, string][] = [
    ['Tax invoice 2026.14', 1, 3, 'Tax invoice 2026.14  ·  Page 1 of 3'],
    ['  Tax   invoice\n7.1 ', 3, 3, 'Tax invoice 7.1  ·  Page 3 of 3'],
    // The standard font has no glyphs for these: the page number alone.
    ['請求書 7.1', 2, 2, 'Page 2 of 2'],
    ['Facture é', 1, 2, 'Page 1 of 2'],
    ['x'.repeat(81), 1, 2, 'Page 1 of 2'],
    ['', 1, 2, 'Page 1 of 2'],
    [null, 2, 4, 'Page 2 of 4'],
    [undefined, 4, 4, 'Page 4 of 4'],
  ];
  for (const [label, n, of, want] of cases) assert.equal(pageFooterText(label, n, of), want, `${label} ${n}/${of}`);
  for (const [n, of] of [[0, 2], [3, 2], [1.5, 2], [1, 0]] as const) assert.throws(() => pageFooterText('x', n, of), /page/);
});

test('page numbers on the real Chromium: alone and printed together, each document numbered on its own; none unless asked', async () => {
  const pdf = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 1, combineMax: 10 });
  try {
    const pageLines = (bytes: Uint8Array) => pdfText(bytes).split('\n').map((l) => l.replace(/\s+/g, ' ').trim()).filter((l) => /Page \d+ of \d+/.test(l));
    // Alone: three pages numbered; one page, and no label asked, left exactly as printed.
    const long = await pdf.render(doc('Tax invoice 2.1', 'Bravo', 110), { pageLabel: 'Tax invoice 2.1' });
    assert.equal(pdfInfo(long).pages, 3);
    assert.deepEqual(pageLines(long), ['Tax invoice 2.1 · Page 1 of 3', 'Tax invoice 2.1 · Page 2 of 3', 'Tax invoice 2.1 · Page 3 of 3']);
    assert.ok(pdfText(long).includes('Bravo line 110'), 'the document\'s own text is all there');
    assert.deepEqual(pageLines(await pdf.render(doc('Tax invoice 1.1', 'Alpha', 3), { pageLabel: 'Tax invoice 1.1' })), []);
    assert.deepEqual(pageLines(await pdf.render(doc('Tax invoice 2.1', 'Bravo', 110))), [], 'no page numbers unless asked');
    // Printed together (the first alone, the other three combined): each numbered by its own pages.
    const docs: [string, number][] = [['Tax invoice 5.1', 60], ['Tax invoice 6.1', 110], ['Tax invoice 7.1', 1], ['Tax invoice 8.1', 60]];
    const before = pdf.stats.combined;
    const outs = await Promise.all(docs.map(([t, rows]) => pdf.render(doc(t, t, rows), { combinable: true, pageLabel: t })));
    assert.equal(pdf.stats.combined - before, 1, 'three printed together');
    assert.deepEqual(outs.map((o) => pdfInfo(o).pages), [2, 3, 1, 2]);
    assert.deepEqual(outs.map((o) => pageLines(o).length), [2, 3, 0, 2]);
    assert.ok(pageLines(outs[1]!).every((l, i) => l === `Tax invoice 6.1 · Page ${i + 1} of 3`), pageLines(outs[1]!).join(' | '));
    assert.ok(pageLines(outs[3]!).every((l, i) => l === `Tax invoice 8.1 · Page ${i + 1} of 2`), pageLines(outs[3]!).join(' | '));
  } finally {
    await pdf.close();
  }
});
