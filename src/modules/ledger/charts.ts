/**
 * Server-rendered SVG charts (readable without JavaScript): a horizontal bar chart with
 * its values written beside the bars. Pure string building; every text is escaped.
 */
import { mulDiv } from '../../shared/money.ts';

export interface Bar {
  label: string;
  /** Integer value the bar length is proportional to (negative values draw as zero). */
  value: number;
  /** The value as shown. */
  display: string;
}

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

export function barChart(title: string, bars: readonly Bar[], opts: { width?: number } = {}): string {
  const width = opts.width ?? 640;
  const labelW = 180;
  const valueW = 130;
  const rowH = 28;
  const top = 34;
  const plotW = width - labelW - valueW - 20;
  const max = Math.max(1, ...bars.map((b) => Math.max(0, b.value)));
  const height = top + Math.max(1, bars.length) * rowH + 10;
  const rows = bars.map((b, i) => {
    const y = top + i * rowH;
    // Proportional length in whole pixels, in integer arithmetic.
    const w = b.value <= 0 ? 0 : Math.max(1, mulDiv(plotW, b.value, max, 'half_up'));
    return [
      `<g class="bar" data-value="${b.value}">`,
      `<text x="${labelW - 8}" y="${y + 18}" text-anchor="end" font-size="13">${escapeXml(b.label)}</text>`,
      `<rect x="${labelW}" y="${y + 5}" width="${w}" height="${rowH - 10}" fill="#3b6ea5"><title>${escapeXml(`${b.label}: ${b.display}`)}</title></rect>`,
      `<text x="${labelW + w + 6}" y="${y + 18}" font-size="13">${escapeXml(b.display)}</text>`,
      '</g>',
    ].join('');
  });
  if (bars.length === 0) rows.push(`<text x="${labelW}" y="${top + 18}" font-size="13">Nothing to show</text>`);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="${escapeXml(title)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<title>${escapeXml(title)}</title>`,
    `<text x="0" y="20" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
    ...rows,
    '</svg>',
  ].join('');
}
