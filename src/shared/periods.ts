/**
 * Accounting periods: calendar months, YYYY-MM. The ledger keeps which are closed and which
 * is current; billing warns with the same arithmetic when a bill it approves posts outside
 * the current period or into a closed one.
 */
import { assert } from './assert.ts';

export function isPeriod(s: string): boolean {
  return /^\d{4}-(0[1-9]|1[0-2])$/.test(s);
}

export function periodOf(date: string): string {
  assert(/^\d{4}-\d{2}/.test(date), `not a date: ${date}`);
  return date.slice(0, 7);
}

export function nextPeriod(period: string): string {
  assert(isPeriod(period), `not a period: ${period}`);
  const y = Number(period.slice(0, 4));
  const m = Number(period.slice(5, 7));
  return m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, '0')}`;
}

/** The first period from `period` on that is not closed (months with no record are open). */
export function firstOpenPeriod(period: string, closed: ReadonlySet<string>): string {
  let p = period;
  for (let i = 0; i < 1200; i++) {
    if (!closed.has(p)) return p;
    p = nextPeriod(p);
  }
  assert(false, 'no open period within a hundred years');
}
