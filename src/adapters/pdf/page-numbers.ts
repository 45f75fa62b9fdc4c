/**
 * "Page 2 of 3" at the foot of each page of a document of more than one page, written into the
 * PDF after Chromium printed it. (CSS page counters cannot do it here: documents printed
 * together as one (combine.ts) would count each other's pages.) A one-page document is left
 * exactly as printed.
 *
 * The text is set in the PDF's standard Helvetica (nothing embedded), small and grey, in the
 * bottom margin at the right. The label goes before the page number only when the standard
 * font can show it (printable ASCII); otherwise the page number stands alone.
 */
import { PDFDocument, StandardFonts, rgb } from 'pdf-lib';

/** Points per millimetre. */
const PT_PER_MM = 72 / 25.4;
/** The most pages numbered (a limit on everything): a bill of more is left as printed. */
export const PAGE_NUMBERS_MAX_PAGES = 2_000;
/** The longest label printed. */
const LABEL_MAX_CHARS = 80;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** The footer of page `pageNo` of `pageCount`: the label when it can be printed, then the page. */
export function pageFooterText(label: string | null | undefined, pageNo: number, pageCount: number): string {
  if (!Number.isInteger(pageNo) || !Number.isInteger(pageCount) || pageNo < 1 || pageNo > pageCount) throw new Error(`page ${pageNo} of ${pageCount}`);
  const clean = (label ?? '').replace(/\s+/g, ' ').trim();
  const shown = clean.length > 0 && clean.length <= LABEL_MAX_CHARS && PRINTABLE_ASCII.test(clean) ? `${clean}  ·  ` : '';
  // "·" is in WinAnsi (Helvetica's encoding); the label was checked to be ASCII.
  return `${shown}Page ${pageNo} of ${pageCount}`;
}

/** Number the pages of `doc` in place when it has more than one; true when it did. */
export async function stampPageNumbers(doc: PDFDocument, label: string | null | undefined): Promise<boolean> {
  const pages = doc.getPages();
  if (pages.length < 2 || pages.length > PAGE_NUMBERS_MAX_PAGES) return false;
  const font = await doc.embedFont(StandardFonts.Helvetica);
  const size = 7.5;
  pages.forEach((page, i) => {
    const text = pageFooterText(label, i + 1, pages.length);
    const { width } = page.getSize();
    const x = width - 16 * PT_PER_MM - font.widthOfTextAtSize(text, size);
    page.drawText(text, { x, y: 9 * PT_PER_MM, size, font, color: rgb(0.416, 0.459, 0.502) });
  });
  return true;
}

/** `pdf` with its pages numbered when it has more than one; the same bytes otherwise. */
export async function numberPages(pdf: Uint8Array, label: string | null | undefined): Promise<Uint8Array> {
  const doc = await PDFDocument.load(pdf, { updateMetadata: false });
  if (!(await stampPageNumbers(doc, label))) return pdf;
  return doc.save({ useObjectStreams: false });
}
