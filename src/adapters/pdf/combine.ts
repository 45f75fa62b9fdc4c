/**
 * Printing several documents in one Chromium render, then cutting the PDF into one PDF per
 * document (production's speed, issue 5).
 *
 * Most of Chromium's work on a one-page bill is per document, not per page: on the 2-core
 * machine a bill took about 37 ms of render time alone, ten bills printed as one document about
 * 12 ms each (a blank page: 5 ms; a page with two words in two faces of one font: 19 ms, so
 * the fonts a PDF embeds cost most of it). So renders that wait for a tab while others print are
 * printed together, each document a section starting on a new page, and the PDF is cut where
 * each section starts (`splitCombined`).
 *
 * Only documents a caller marks `combinable` take part (the port's contract: the same head but
 * for the title, a plain `<body>`, nothing fixed to every page, no page counters), and only
 * documents of the same shape (head, paper) go together. Where each section starts is read from
 * the PDF's named destinations: each section has an id and a link to it, so Chromium records the
 * page it starts on. Anything unexpected (a document of another shape, a destination missing or
 * out of order, a combined render failing) prints those documents one by one instead, so a
 * document is never cut wrongly and one bad document fails alone.
 */
import { randomBytes } from 'node:crypto';
import { PDFArray, PDFDict, PDFDocument, PDFName, PDFRef, PDFString } from 'pdf-lib';
import type { PdfRenderOptions } from '../../shared/ports.ts';
import { stampPageNumbers } from './page-numbers.ts';

/** The most documents printed as one (a limit on everything). */
export const COMBINE_MAX_DOCS = 32;
/** The most HTML printed as one, in UTF-16 code units (a few hundred pages of bill lines). */
export const COMBINE_MAX_CHARS = 1_000_000;

/** A document split into the parts a combined document is built from; null when it has not the plain shape. */
export interface DocumentParts {
  /** `<!doctype html>…<head>`: the same for documents that go together. */
  opening: string;
  /** The head without its title's text: the same for documents that go together. */
  headKey: string;
  head: string;
  /** The title's text as written (HTML-escaped). */
  titleHtml: string;
  body: string;
}

const SHAPE = /^(\s*<!doctype html>\s*<html(?:\s[^>]*)?>\s*<head>)([\s\S]*?)<\/head>\s*<body>([\s\S]*)<\/body>\s*<\/html>\s*$/i;
const TITLE = /<title>([^<]*)<\/title>/i;

export function documentParts(html: string): DocumentParts | null {
  const m = SHAPE.exec(html);
  if (!m) return null;
  const head = m[2]!;
  const title = TITLE.exec(head);
  // A body that closes early or holds another document is not one section of a combined document.
  if (/<\/?(?:body|html|head)[\s>]/i.test(m[3]!)) return null;
  return { opening: m[1]!, head, headKey: head.replace(TITLE, '<title></title>'), titleHtml: title ? title[1]! : '', body: m[3]! };
}

/** The text of HTML-escaped text (the escapes templates write: named ones for markup, numeric ones). */
export function unescapeHtml(text: string): string {
  return text.replace(/&(?:#(\d{1,7})|#x([0-9a-f]{1,6})|(amp|lt|gt|quot|apos|nbsp));/gi, (all, dec: string | undefined, hex: string | undefined, name: string | undefined) => {
    if (dec !== undefined || hex !== undefined) {
      const code = dec !== undefined ? Number(dec) : parseInt(hex!, 16);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : all;
    }
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' } as Record<string, string>)[name!.toLowerCase()]!;
  });
}

/** A document's title as Chromium gives it to the PDF: unescaped, runs of white space made one space, trimmed. */
export function documentTitle(parts: DocumentParts): string {
  return unescapeHtml(parts.titleHtml).replace(/[\t\n\f\r ]+/g, ' ').trim();
}

/** Whether two documents can be printed as one. */
export function sameShape(a: DocumentParts, b: DocumentParts): boolean {
  return a.opening === b.opening && a.headKey === b.headKey;
}

/**
 * One document holding `parts` in order, each in a section starting on a new page, each
 * section the target of a link (so the PDF names the page it starts on). `anchors`: the
 * sections' ids, unique to this document (a random prefix: no id of a document's own).
 */
export function combineDocuments(parts: readonly DocumentParts[]): { html: string; anchors: string[] } {
  if (parts.length < 2 || parts.length > COMBINE_MAX_DOCS) throw new Error(`2..${COMBINE_MAX_DOCS} documents are combined, got ${parts.length}`);
  const first = parts[0]!;
  for (const p of parts) if (!sameShape(first, p)) throw new Error('documents of different shapes cannot be combined');
  const prefix = `lexbill-part-${randomBytes(6).toString('hex')}`;
  const anchors = parts.map((_, i) => `${prefix}-${i}`);
  // The links have no content (no box, no link annotation on the page); a block of no height holds them.
  const links = `<div style="height: 0; overflow: hidden">${anchors.map((a) => `<a href="#${a}"></a>`).join('')}</div>`;
  const sections = parts.map((p, i) => `<section id="${anchors[i]}" style="display: block${i > 0 ? '; break-before: page' : ''}">${p.body}</section>`);
  return { html: `${first.opening}${first.head}</head>\n<body>${links}\n${sections.join('\n')}\n</body>\n</html>\n`, anchors };
}

/** The page (0-based) each anchor's named destination points at, in the order given. */
function destinationPages(doc: PDFDocument, anchors: readonly string[]): number[] {
  const dests = doc.catalog.lookupMaybe(PDFName.of('Dests'), PDFDict);
  if (!dests) throw new Error('the combined PDF names no destinations');
  const pages = new Map<string, number>();
  doc.getPages().forEach((p, i) => pages.set(p.ref.toString(), i));
  return anchors.map((a) => {
    let dest = dests.get(PDFName.of(a));
    if (dest instanceof PDFRef) dest = doc.context.lookup(dest);
    if (dest instanceof PDFDict) dest = dest.get(PDFName.of('D'));
    if (dest instanceof PDFRef) dest = doc.context.lookup(dest);
    if (!(dest instanceof PDFArray)) throw new Error(`the combined PDF has no destination ${a}`);
    const page = dest.get(0);
    const index = page instanceof PDFRef ? pages.get(page.toString()) : undefined;
    if (index === undefined) throw new Error(`destination ${a} points at no page`);
    return index;
  });
}

/**
 * The PDF of each section of a combined document: its pages, with the combined PDF's document
 * information (creator, producer, dates, language) and the section's own `titles[i]`; its pages
 * numbered after `pageLabels[i]` when that is given (page-numbers.ts: a one-page section is not).
 * Throws (nothing is guessed) unless every section starts on a page after the one before.
 */
export async function splitCombined(pdf: Uint8Array, anchors: readonly string[], titles: readonly string[], pageLabels?: readonly (string | undefined)[]): Promise<Uint8Array[]> {
  if (anchors.length !== titles.length) throw new Error('one title per section');
  if (pageLabels && pageLabels.length !== titles.length) throw new Error('one page label (or none) per section');
  const src = await PDFDocument.load(pdf, { updateMetadata: false });
  const pageCount = src.getPageCount();
  const starts = destinationPages(src, anchors);
  if (starts[0] !== 0) throw new Error('the first section does not start on the first page');
  for (let i = 1; i < starts.length; i++) {
    if (!(starts[i]! > starts[i - 1]!)) throw new Error(`section ${i} does not start after section ${i - 1}`);
  }
  if (starts[starts.length - 1]! >= pageCount) throw new Error('a section starts after the last page');
  const lang = src.catalog.get(PDFName.of('Lang'));
  const out: Uint8Array[] = [];
  for (let i = 0; i < starts.length; i++) {
    const end = starts[i + 1] ?? pageCount;
    const part = await PDFDocument.create({ updateMetadata: false });
    const pages = await part.copyPages(src, Array.from({ length: end - starts[i]! }, (_, k) => starts[i]! + k));
    for (const p of pages) part.addPage(p);
    part.setTitle(titles[i]!);
    const creator = src.getCreator();
    const producer = src.getProducer();
    const created = src.getCreationDate();
    const modified = src.getModificationDate();
    if (creator !== undefined) part.setCreator(creator);
    if (producer !== undefined) part.setProducer(producer);
    if (created !== undefined) part.setCreationDate(created);
    if (modified !== undefined) part.setModificationDate(modified);
    if (lang instanceof PDFString) part.catalog.set(PDFName.of('Lang'), PDFString.of(lang.asString()));
    const label = pageLabels?.[i];
    if (label !== undefined) await stampPageNumbers(part, label);
    out.push(await part.save({ useObjectStreams: false }));
  }
  return out;
}

interface Job {
  html: string;
  opts: PdfRenderOptions;
  parts: DocumentParts | null;
  resolve: (pdf: Uint8Array) => void;
  reject: (err: unknown) => void;
}

export interface Combiner {
  render(html: string, opts: PdfRenderOptions): Promise<Uint8Array>;
  readonly stats: { combined: number; documents: number; fellBack: number };
}

/**
 * Renders combinable documents through `renderOne`, at most `slots` renders at once: a
 * document that arrives while they are all busy waits, and those waiting go together when one
 * is free (up to maxDocs of one shape). A document arriving at an idle renderer is printed at
 * once, alone. A combined render or cut that fails prints its documents one by one.
 * `renderOne` is told how many documents a render prints (a browser's age in documents).
 */
export function createCombiner(
  renderOne: (html: string, opts: PdfRenderOptions, documents: number) => Promise<Uint8Array>,
  limits: {
    slots: number; maxDocs: number; maxChars?: number;
    /** A render's limit when its document was given none. */
    defaultTimeoutMs: number;
    /** Told when documents printed together could not be (then printed one by one), with why. */
    onFallback?: (err: unknown, documents: number) => void;
  },
): Combiner {
  const maxChars = limits.maxChars ?? COMBINE_MAX_CHARS;
  if (!Number.isInteger(limits.slots) || limits.slots < 1) throw new Error(`slots must be a positive integer, got ${limits.slots}`);
  if (!Number.isInteger(limits.maxDocs) || limits.maxDocs < 2 || limits.maxDocs > COMBINE_MAX_DOCS) throw new Error(`maxDocs must be 2..${COMBINE_MAX_DOCS}, got ${limits.maxDocs}`);
  if (!Number.isInteger(limits.defaultTimeoutMs) || limits.defaultTimeoutMs < 1) throw new Error(`defaultTimeoutMs must be a positive integer, got ${limits.defaultTimeoutMs}`);
  const queue: Job[] = [];
  let busy = 0;
  const stats = { combined: 0, documents: 0, fellBack: 0 };

  const samePaper = (a: PdfRenderOptions, b: PdfRenderOptions) => (a.format ?? 'A4') === (b.format ?? 'A4') && (a.landscape ?? false) === (b.landscape ?? false);

  /** The first waiting document and those waiting after it that go with it. */
  function take(): Job[] {
    const first = queue.shift()!;
    const batch = [first];
    if (!first.parts) return batch;
    let chars = first.html.length;
    for (let i = 0; i < queue.length && batch.length < limits.maxDocs; i++) {
      const j = queue[i]!;
      if (!j.parts || !sameShape(first.parts, j.parts) || !samePaper(first.opts, j.opts) || chars + j.html.length > maxChars) continue;
      batch.push(j);
      chars += j.html.length;
      queue.splice(i, 1);
      i--;
    }
    return batch;
  }

  function one(j: Job): Promise<void> {
    return renderOne(j.html, j.opts, 1).then(j.resolve, j.reject);
  }

  async function run(batch: Job[]): Promise<void> {
    if (batch.length === 1) return one(batch[0]!);
    try {
      const { html, anchors } = combineDocuments(batch.map((j) => j.parts!));
      // Twice the longest limit any of them was given (or the renderer's default): a combined
      // render does several documents' work, and one that overruns even that is retried one by one.
      const timeouts = batch.map((j) => j.opts.timeoutMs ?? limits.defaultTimeoutMs);
      const opts: PdfRenderOptions = { ...(batch[0]!.opts.format ? { format: batch[0]!.opts.format } : {}), ...(batch[0]!.opts.landscape ? { landscape: true } : {}), timeoutMs: 2 * Math.max(...timeouts) };
      const pdf = await renderOne(html, opts, batch.length);
      const pdfs = await splitCombined(pdf, anchors, batch.map((j) => documentTitle(j.parts!)), batch.map((j) => j.opts.pageLabel));
      stats.combined++;
      stats.documents += batch.length;
      batch.forEach((j, i) => j.resolve(pdfs[i]!));
    } catch (err) {
      stats.fellBack++;
      try { limits.onFallback?.(err, batch.length); } catch { /* telling is not printing: the documents are printed regardless */ }
      await Promise.all(batch.map(one));
    }
  }

  function pump(): void {
    while (busy < limits.slots && queue.length > 0) {
      const batch = take();
      busy++;
      void run(batch).finally(() => { busy--; pump(); });
    }
  }

  return {
    stats,
    render(html, opts) {
      return new Promise<Uint8Array>((resolve, reject) => {
        queue.push({ html, opts, parts: documentParts(html), resolve, reject });
        pump();
      });
    },
  };
}
