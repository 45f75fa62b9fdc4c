import nunjucks from 'nunjucks';
import { formatMoney } from '../money.ts';
import { fieldLabel } from './errors.ts';
import { displayTime } from '../clock.ts';

/** The Nunjucks environment: autoescaping on, with money and date filters. */
export function createViews(viewsDir: string, opts: { watch?: boolean } = {}): nunjucks.Environment {
  const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(viewsDir, { noCache: opts.watch ?? false }), {
    autoescape: true,
    throwOnUndefined: false,
    trimBlocks: true,
    lstripBlocks: true,
  });
  env.addFilter('money', (amountMinor: unknown, currency: unknown = 'USD') =>
    typeof amountMinor === 'number' ? formatMoney(amountMinor, String(currency)) : '');
  /** An amount on a bill (its PDF): a dollar other than the US one named, as the bill's email names it. */
  env.addFilter('billMoney', (amountMinor: unknown, currency: unknown = 'USD') =>
    typeof amountMinor === 'number' ? formatMoney(amountMinor, String(currency), { named: true }) : '');
  // A stored time (ISO, UTC) as the firm reads it: its own time zone's date and time (isoDate's), named.
  // `seconds`: to the second (to tell apart things made in the same minute, such as bill runs).
  env.addFilter('datetime', (iso: unknown, seconds: unknown = false) => (typeof iso === 'string' ? displayTime(iso, seconds === true) : ''));
  env.addFilter('json', (v: unknown) => JSON.stringify(v, null, 2));
  /** A field path in words (see fieldLabel), for error lists. */
  env.addFilter('fieldLabel', (k: unknown) => fieldLabel(String(k)));
  return env;
}
