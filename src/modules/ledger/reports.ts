/**
 * The ledger's reports, each one table (columns and rows) plus totals, notes and an optional
 * chart, so the same report is a page, a CSV file, a PDF, a JSON API answer and a CLI output:
 *  - trial-balance: every account's balance at a date; debits equal credits;
 *  - gl-detail: every journal line between two dates, per account with running balances;
 *  - aged-debtors: what each client owes at a date, by age of bill (current, 30, 60, 90, 120+),
 *    from the debtors lines of the journals (so it is right for any past date), with a chart;
 *  - debtor-statement: per client, each file's balance owed at a date and the total payable,
 *    from the same debtors lines as aged-debtors (so the two and the trial balance agree);
 *  - debtor-breakdown: the bills owing at a date by file with products, disbursements, interest and other items;
 *  - fee-allocation: fee income per timekeeper by period, and fees on the matters each originated;
 *  - wip-by-timekeeper: unbilled work at a date per timekeeper, with a chart.
 * A client filter applies to the debtors, fee and WIP reports; the trial balance and GL detail
 * are firm-wide and refuse one (REPORT_TAKES_CLIENT).
 */
import { assert } from '../../shared/assert.ts';
import type { Clock } from '../../shared/clock.ts';
import { isoDate } from '../../shared/clock.ts';
import type { Executor } from '../../shared/db.ts';
import type { Kysely } from 'kysely';
import { writersSerialised } from '../../shared/sql.ts';
import { formatMoney, isCurrencyCode, toDecimalString } from '../../shared/money.ts';
import { barChart } from './charts.ts';
import { AGE_BUCKETS, AGE_LABELS, ageBucket, compareNumbers, isDate, periodOf } from './domain.ts';
import type { AgeBucket } from './domain.ts';
import * as store from './store.ts';
import type { BillPosting, LedgerBill } from './store.ts';

export const REPORT_NAMES = ['trial-balance', 'gl-detail', 'aged-debtors', 'debtor-statement', 'debtor-breakdown', 'fee-allocation', 'wip-by-timekeeper'] as const;
export type ReportName = (typeof REPORT_NAMES)[number];
export const REPORT_TITLES: Record<ReportName, string> = {
  'trial-balance': 'Trial balance', 'gl-detail': 'General ledger detail', 'aged-debtors': 'Aged debtors', 'debtor-statement': 'Debtor statement',
  'debtor-breakdown': 'Debtor breakdown', 'fee-allocation': 'Fee allocation and origination', 'wip-by-timekeeper': 'WIP by timekeeper',
};

export interface ReportParams {
  from?: string;
  to?: string;
  clientId?: string;
  /** The currency reported (default: the firm's). Amounts in other currencies are never added in. */
  currency?: string;
}

export type Cell = string | number | null;

export interface ReportColumn {
  key: string;
  label: string;
  kind: 'text' | 'money' | 'number' | 'date';
}

export interface Report {
  name: ReportName;
  title: string;
  /** What the report covers, in words. */
  subtitle: string;
  params: { from: string | null; to: string; clientId: string | null };
  currency: string;
  columns: ReportColumn[];
  rows: Record<string, Cell>[];
  totals: Record<string, Cell> | null;
  notes: string[];
  /** Server-rendered SVG. */
  chartSvg: string | null;
}

/** Rows a report returns at most (a page, a file); beyond that it says so in its notes. */
export const MAX_REPORT_ROWS = 50_000;

export class ReportParamError extends Error {
  constructor(readonly fields: Record<string, string>) { super(Object.entries(fields).map(([k, v]) => `${k} ${v}`).join('; ')); }
}

/**
 * The reports a client filter applies to. The trial balance and the GL detail are the firm's
 * books (every account, balancing): a client's slice of them would not balance, so they refuse one.
 */
export const REPORT_TAKES_CLIENT: Readonly<Record<ReportName, boolean>> = {
  'trial-balance': false, 'gl-detail': false, 'aged-debtors': true, 'debtor-statement': true, 'debtor-breakdown': true, 'fee-allocation': true, 'wip-by-timekeeper': true,
};

/** The reports over a range of dates (from, to); the others are as at a date (to) and take no from. */
export const REPORT_TAKES_FROM: Readonly<Record<ReportName, boolean>> = {
  'trial-balance': false, 'gl-detail': true, 'aged-debtors': false, 'debtor-statement': false, 'debtor-breakdown': false, 'fee-allocation': true, 'wip-by-timekeeper': false,
};

export function isReportName(s: string): s is ReportName {
  return (REPORT_NAMES as readonly string[]).includes(s);
}

const money = (kind: 'money', key: string, label: string): ReportColumn => ({ key, label, kind });
const text = (key: string, label: string): ReportColumn => ({ key, label, kind: 'text' });

function sumBy<T>(rows: readonly T[], f: (r: T) => number): number {
  let s = 0;
  for (const r of rows) s += f(r);
  return s;
}


/**
 * The bill as its posting that stood at `to` (counting from on or before it, not undone by it); with none standing
 * then (its balance is what a reversal left over), the latest posted by then; with none at all, the bill as it is.
 */
export function asPostedAt(b: LedgerBill, postings: readonly BillPosting[], to: string): LedgerBill {
  const byThen = postings.filter((p) => p.countsFrom <= to);
  const standing = byThen.filter((p) => p.undoneOn === null || p.undoneOn > to);
  const p = (standing.length > 0 ? standing : byThen).reduce<BillPosting | null>((best, x) => (best === null || x.countsFrom >= best.countsFrom ? x : best), null);
  if (p === null || p.journalId === b.postingJournalId) return b;
  return {
    ...b, invoiceDate: p.invoiceDate, dueDate: p.dueDate, feesMinor: p.feesMinor, fixedChargesMinor: p.fixedChargesMinor, disbursementsMinor: p.disbursementsMinor,
    interestMinor: p.interestMinor, taxMinor: p.taxMinor, discountMinor: p.discountMinor, totalMinor: p.totalMinor,
  };
}

const NO_SUCH_CLIENT = 'is no client of the firm\'s (no client has this id)';

function reportsOver(db: Executor, clock: Clock) {
  async function currency(): Promise<string> {
    const firm = JSON.parse((await store.getSetting(db, 'firm')) ?? '{}') as { currency?: string };
    return firm.currency ?? 'USD';
  }

  function checkParams(name: ReportName, p: ReportParams): { from: string | null; to: string } {
    const e: Record<string, string> = {};
    if (p.to !== undefined && !isDate(p.to)) e.to = 'must be a date (YYYY-MM-DD)';
    if (p.from !== undefined && !isDate(p.from)) e.from = 'must be a date (YYYY-MM-DD)';
    if (p.from !== undefined && !REPORT_TAKES_FROM[name]) e.from = `is not a parameter of the ${REPORT_TITLES[name].toLowerCase()}: it is as at a date (to)`;
    else if (p.from && p.to && isDate(p.from) && isDate(p.to) && p.from > p.to) e.from = 'must be on or before to';
    if (p.clientId !== undefined && !REPORT_TAKES_CLIENT[name]) e.client = `is not a filter of the ${REPORT_TITLES[name].toLowerCase()}: it covers the whole firm`;
    else if (p.clientId !== undefined && !/^[0-9a-zA-Z-]{1,64}$/.test(p.clientId)) e.client = 'must be a client id';
    if (p.currency !== undefined && !isCurrencyCode(p.currency)) e.currency = 'must be a currency code (three capital letters)';
    if (Object.keys(e).length) throw new ReportParamError(e);
    return { from: p.from ?? null, to: p.to ?? isoDate(clock.now()) };
  }

  async function debtorsAccountId(): Promise<string> {
    const a = await store.findAccountBy(db, 'role', 'debtors');
    assert(a, 'no debtors account');
    return a.id;
  }

  /**
   * The bills that owed something at a date, with what the debtors ledger said of each then
   * (bills posted on or before it, less receipts, credits and write-offs dated on or before it):
   * the same journal lines the aged debtors and the trial balance's debtors sum.
   */
  /**
   * The bills owing at `to`, each as its posting that stood then (review 62 F1, F2): a bill reverted, changed and
   * approved again since is aged and described by that day's posting (its invoice date, its parts), so a closed
   * month's reports stay as they were. Its balance is the journals' at the date (debtorsByBillAsAt).
   */
  async function billsOwingAt(to: string, clientId: string | null, cur: string) {
    const asAt = await store.debtorsByBillAsAt(db, await debtorsAccountId(), to, cur);
    const owing = (await store.listBills(db, clientId ? { clientId } : {})).filter((b) => b.currency === cur && (asAt.get(b.id)?.outstandingMinor ?? 0) !== 0);
    const postings = await store.postingsOf(db, owing.map((b) => b.id));
    return owing.map((b) => ({ b: asPostedAt(b, postings.get(b.id) ?? [], to), d: asAt.get(b.id)! }));
  }

  const builders: Record<ReportName, (p: { from: string | null; to: string; clientId: string | null }, cur: string) => Promise<Omit<Report, 'name' | 'title' | 'params' | 'currency'>>> = {
    async 'trial-balance'(p, cur) {
      const accounts = await store.listAccounts(db);
      const bal = await store.accountBalances(db, { to: p.to, currency: cur });
      const rows = accounts.flatMap((a) => {
        const b = bal.get(a.id);
        if (!b) return [];
        const net = b.debit - b.credit;
        if (net === 0 && b.debit === 0) return [];
        return [{ code: a.code, account: a.name, type: a.type, debit: net > 0 ? net : 0, credit: net < 0 ? 0 - net : 0 }];
      });
      const debit = sumBy(rows, (r) => r.debit);
      const credit = sumBy(rows, (r) => r.credit);
      return {
        subtitle: `As at ${p.to}`, columns: [text('code', 'Code'), text('account', 'Account'), text('type', 'Type'), money('money', 'debit', 'Debit'), money('money', 'credit', 'Credit')],
        rows, totals: { code: '', account: 'Total', type: '', debit, credit }, notes: [debit === credit ? 'Debits equal credits.' : `OUT OF BALANCE by ${formatMoney(debit - credit, cur)}`], chartSvg: null,
      };
    },

    async 'gl-detail'(p, cur) {
      const accounts = (await store.listAccounts(db)).sort((a, b) => (a.code < b.code ? -1 : a.code > b.code ? 1 : 0));
      const byId = new Map(accounts.map((a) => [a.id, a]));
      const from = p.from ?? `${p.to.slice(0, 7)}-01`;
      const before = new Date(Date.parse(`${from}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
      const opening = await store.accountBalances(db, { to: before, currency: cur });
      const closing = await store.accountBalances(db, { to: p.to, currency: cur });
      const net = (m: Map<string, { debit: number; credit: number }>, id: string) => { const b = m.get(id); return b ? b.debit - b.credit : 0; };
      const lines = await store.linesBetween(db, { from, to: p.to, currency: cur, limit: MAX_REPORT_ROWS + 1 });
      const ordered = [...lines].sort((a, b) => {
        const ca = byId.get(a.accountId)!.code;
        const cb = byId.get(b.accountId)!.code;
        // Each account's lines by date and, within a day, as they were posted (store.linesBetween), so the running balance
        // passes only through balances the account had.
        return ca < cb ? -1 : ca > cb ? 1 : a.date < b.date ? -1 : a.date > b.date ? 1 : a.postedAt < b.postedAt ? -1 : a.postedAt > b.postedAt ? 1
          : a.number < b.number ? -1 : a.number > b.number ? 1 : a.lineNo - b.lineNo;
      });
      const perAccount = new Map<string, typeof ordered>();
      for (const l of ordered.slice(0, MAX_REPORT_ROWS)) {
        const list = perAccount.get(l.accountId) ?? [];
        list.push(l);
        perAccount.set(l.accountId, list);
      }
      // Every account with a balance at either end or a line between: its opening balance, its
      // lines with the running balance, and its closing balance (read from the books, so it is
      // right even when the lines are cut short).
      const rows: Record<string, Cell>[] = [];
      for (const a of accounts) {
        const own = perAccount.get(a.id) ?? [];
        const ob = net(opening, a.id);
        const cb = net(closing, a.id);
        if (own.length === 0 && ob === 0 && cb === 0) continue;
        rows.push({ code: a.code, account: a.name, date: from, journal: '', memo: 'Opening balance', debit: null, credit: null, balance: ob });
        let bal = ob;
        for (const l of own) {
          bal += l.debitMinor - l.creditMinor;
          rows.push({ code: a.code, account: a.name, date: l.date, journal: l.number, memo: l.memo, debit: l.debitMinor || null, credit: l.creditMinor || null, balance: bal });
        }
        rows.push({ code: a.code, account: a.name, date: p.to, journal: '', memo: 'Closing balance', debit: null, credit: null, balance: cb });
      }
      return {
        subtitle: `${from} to ${p.to}`,
        columns: [text('code', 'Code'), text('account', 'Account'), { key: 'date', label: 'Date', kind: 'date' }, text('journal', 'Journal'), text('memo', 'Memo'), money('money', 'debit', 'Debit'), money('money', 'credit', 'Credit'), money('money', 'balance', 'Balance')],
        rows, totals: { code: '', account: 'Total', date: '', journal: '', memo: '', debit: sumBy(ordered, (l) => l.debitMinor), credit: sumBy(ordered, (l) => l.creditMinor), balance: null },
        notes: lines.length > MAX_REPORT_ROWS ? [`Only the first ${MAX_REPORT_ROWS} lines are shown: narrow the dates`] : [], chartSvg: null,
      };
    },

    async 'aged-debtors'(p, cur) {
      const byBill = await store.debtorsByBill(db, await debtorsAccountId(), p.to, cur);
      const bills = new Map((await store.listBills(db, p.clientId ? { clientId: p.clientId } : {})).filter((b) => b.currency === cur).map((b) => [b.id, b]));
      const perClient = new Map<string, Record<AgeBucket, number>>();
      // Aged from the invoice date of the posting that stood at the date (asPostedAt): a bill re-dated later keeps its age then.
      const postings = await store.postingsOf(db, [...byBill].filter(([id, amount]) => amount !== 0 && bills.has(id)).map(([id]) => id));
      for (const [billId, amount] of byBill) {
        const b = bills.get(billId);
        if (!b || amount === 0) continue;
        const row = perClient.get(b.clientId) ?? { current: 0, d30: 0, d60: 0, d90: 0, d120: 0 };
        row[ageBucket(asPostedAt(b, postings.get(billId) ?? [], p.to).invoiceDate, p.to)] += amount;
        perClient.set(b.clientId, row);
      }
      const names = await store.namesOf(db, { clients: perClient.keys() });
      // By client number (2 before 10), then name.
      const rows = [...perClient.entries()].map(([clientId, r]) => {
        const c = names.clients.get(clientId);
        return { clientNumber: c ? Number(c.number) : Number.MAX_SAFE_INTEGER, client: c ? `${c.number} ${c.name}` : clientId, ...r, total: sumBy(AGE_BUCKETS, (k) => r[k]) };
      }).sort((a, b) => a.clientNumber - b.clientNumber || (a.client < b.client ? -1 : a.client > b.client ? 1 : 0)).map(({ clientNumber: _n, ...r }) => r);
      const totals: Record<string, Cell> = { client: 'Total', total: sumBy(rows, (r) => r.total) };
      for (const k of AGE_BUCKETS) totals[k] = sumBy(rows, (r) => r[k]);
      return {
        subtitle: `As at ${p.to}, aged by invoice date`,
        columns: [text('client', 'Client'), ...AGE_BUCKETS.map((k) => money('money', k, AGE_LABELS[k])), money('money', 'total', 'Total')],
        rows, totals, notes: [],
        chartSvg: barChart(`Debtors by age at ${p.to}`, AGE_BUCKETS.map((k) => ({ label: AGE_LABELS[k], value: Number(totals[k]), display: toDecimalString(Number(totals[k]), cur) }))),
      };
    },

    async 'debtor-statement'(p, cur) {
      const owing = await billsOwingAt(p.to, p.clientId, cur);
      const names = await store.namesOf(db, { clients: [p.clientId, ...owing.map(({ b }) => b.clientId)], matters: owing.map(({ b }) => b.matterId) });
      const perFile = new Map<string, { clientId: string; matterId: string; file: string; bills: string[]; outstanding: number; expired: number; oldest: string }>();
      for (const { b, d } of owing) {
        const k = b.matterId;
        const r = perFile.get(k) ?? { clientId: b.clientId, matterId: b.matterId, file: b.fileNumber, bills: [], outstanding: 0, expired: 0, oldest: b.invoiceDate };
        r.bills.push(b.number);
        r.outstanding += d.outstandingMinor;
        // Seed 003: a time-sensitive discount expired by the date and still undecided is forecast back on the balance.
        r.expired += store.expiredDiscountMinor(b, p.to);
        if (b.invoiceDate < r.oldest) r.oldest = b.invoiceDate;
        perFile.set(k, r);
      }
      const rows = [...perFile.values()].sort((a, b) => compareNumbers(a.file, b.file)).map((r) => {
        const c = names.clients.get(r.clientId);
        return {
          client: c ? `${c.number} ${c.name}` : r.clientId, file: r.file, matter: names.matters.get(r.matterId)?.name ?? '', bills: r.bills.sort(compareNumbers).join(' '), oldest: r.oldest,
          outstanding: r.outstanding, forecast: r.outstanding + r.expired,
        };
      });
      const expired = sumBy(rows, (r) => r.forecast - r.outstanding);
      // Credit held at the date: the unallocated receipts account's lines up to it (credit is negative).
      const unallocated = await store.findAccountBy(db, 'role', 'unallocated');
      const held = unallocated ? await store.balanceByClient(db, unallocated.id, p.to, p.clientId ?? undefined, cur) : new Map<string, number>();
      const credit = 0 - sumBy([...held.values()], (v) => v);
      const total = sumBy(rows, (r) => r.outstanding);
      const client = p.clientId ? names.clients.get(p.clientId) : null;
      return {
        subtitle: `${client ? `${client.number} ${client.name}${client.address ? `, ${client.address.replace(/\n/g, ', ')}` : ''}` : 'All clients'}, as at ${p.to}`,
        columns: [
          text('client', 'Client'), text('file', 'File'), text('matter', 'Matter'), text('bills', 'Bills'), { key: 'oldest', label: 'Oldest bill', kind: 'date' }, money('money', 'outstanding', 'Outstanding'),
          ...(expired !== 0 ? [money('money', 'forecast', 'Forecast')] : []),
        ],
        rows: expired !== 0 ? rows : rows.map(({ forecast: _f, ...r }) => r),
        totals: { client: 'Total payable', file: '', matter: '', bills: '', oldest: '', outstanding: total, ...(expired !== 0 ? { forecast: total + expired } : {}) },
        notes: [
          ...(expired !== 0 ? [`Forecast: ${toDecimalString(expired, cur)} of time-sensitive discounts expired by ${p.to} and not yet decided is counted back (the books change only when each is decided)`] : []),
          ...(credit > 0 ? [`Unallocated credit held: ${toDecimalString(credit, cur)} ${rows.length > 0 ? '(to be applied to the balances above)' : '(nothing is owing: the client is in credit)'}`] : []),
        ], chartSvg: null,
      };
    },

    async 'debtor-breakdown'(p, cur) {
      const owing = (await billsOwingAt(p.to, p.clientId, cur))
        .sort((x, y) => compareNumbers(x.b.fileNumber, y.b.fileNumber) || compareNumbers(x.b.number, y.b.number));
      const names = await store.namesOf(db, { clients: [p.clientId], matters: owing.map(({ b }) => b.matterId) });
      const rows = owing.map(({ b, d }) => ({
        file: b.fileNumber, matter: names.matters.get(b.matterId)?.name ?? '', bill: b.number, date: b.invoiceDate,
        products: b.feesMinor + b.fixedChargesMinor, disbursements: b.disbursementsMinor, interest: b.interestMinor,
        other: b.taxMinor - b.discountMinor + d.discountReversedMinor, total: d.billedMinor + d.discountReversedMinor,
        received: d.receivedMinor, outstanding: d.outstandingMinor,
      }));
      const totals: Record<string, Cell> = { file: 'Total', matter: '', bill: '', date: '' };
      for (const k of ['products', 'disbursements', 'interest', 'other', 'total', 'received', 'outstanding'] as const) totals[k] = sumBy(rows, (r) => r[k]);
      return {
        subtitle: `Bills owing by file${p.clientId ? ` for ${names.clients.get(p.clientId)?.name ?? p.clientId}` : ''}, as at ${p.to}`,
        columns: [text('file', 'File'), text('matter', 'Matter'), text('bill', 'Bill'), { key: 'date', label: 'Date', kind: 'date' }, money('money', 'products', 'Products (fees, charges)'),
          money('money', 'disbursements', 'Disbursements'), money('money', 'interest', 'Interest'), money('money', 'other', 'Other (tax, discount)'), money('money', 'total', 'Total'),
          money('money', 'received', 'Received, written off'), money('money', 'outstanding', 'Outstanding')],
        rows, totals, notes: [], chartSvg: null,
      };
    },

    async 'fee-allocation'(p, cur) {
      const from = p.from ?? `${p.to.slice(0, 4)}-01-01`;
      const accounts = await store.listAccounts(db);
      const feeAccounts = new Set(accounts.filter((a) => a.role === 'fee_timekeeper' || a.role === 'fees').map((a) => a.id));
      const lines = (await store.linesBetween(db, { from, to: p.to, currency: cur, limit: 1_000_000, ...(p.clientId ? { clientId: p.clientId } : {}) })).filter((l) => feeAccounts.has(l.accountId));
      // The matters first (their originators are timekeepers to name too).
      const { matters, clients } = await store.namesOf(db, { clients: [p.clientId], matters: lines.map((l) => l.matterId) });
      const { timekeepers } = await store.namesOf(db, { timekeepers: [...lines.map((l) => l.timekeeperId), ...[...matters.values()].map((m) => m.originatingTimekeeperId)] });
      const names = { matters, clients, timekeepers };
      const key = (period: string, tk: string) => `${period}|${tk}`;
      const agg = new Map<string, { period: string; tk: string; earned: number; originated: number }>();
      const bump = (period: string, tk: string, field: 'earned' | 'originated', v: number) => {
        const r = agg.get(key(period, tk)) ?? { period, tk, earned: 0, originated: 0 };
        r[field] += v;
        agg.set(key(period, tk), r);
      };
      for (const l of lines) {
        const v = l.creditMinor - l.debitMinor;
        const period = periodOf(l.date);
        bump(period, l.timekeeperId ?? '(unallocated)', 'earned', v);
        const originator = l.matterId ? names.matters.get(l.matterId)?.originatingTimekeeperId : null;
        if (originator) bump(period, originator, 'originated', v);
      }
      const rows = [...agg.values()].map((r) => {
        const t = names.timekeepers.get(r.tk);
        return { period: r.period, timekeeper: t ? `${t.initials} ${t.name}` : r.tk, earned: r.earned, originated: r.originated };
      }).sort((a, b) => (a.period < b.period ? -1 : a.period > b.period ? 1 : a.timekeeper < b.timekeeper ? -1 : a.timekeeper > b.timekeeper ? 1 : 0));
      return {
        subtitle: `${from} to ${p.to}${p.clientId ? ` for ${names.clients.get(p.clientId)?.name ?? p.clientId}` : ''}: fee income credited to each timekeeper (the bills' fee allocation, with origination shares) and fees on the matters each originated`,
        columns: [text('period', 'Period'), text('timekeeper', 'Timekeeper'), money('money', 'earned', 'Fees allocated'), money('money', 'originated', 'Fees on matters originated')],
        rows, totals: { period: 'Total', timekeeper: '', earned: sumBy(rows, (r) => r.earned), originated: sumBy(rows, (r) => r.originated) }, notes: [], chartSvg: null,
      };
    },

    async 'wip-by-timekeeper'(p, cur) {
      // Added up per kind and timekeeper by the database; time is shown per timekeeper, other kinds one row each.
      const groups = await store.unbilledWipTotals(db, p.to, cur, p.clientId ?? null);
      const names = await store.namesOf(db, { timekeepers: groups.flatMap((g) => (g.timekeeperId ? [g.timekeeperId] : [])) });
      const agg = new Map<string, { label: string; minutes: number; value: number; items: number; oldest: string }>();
      for (const g of groups) {
        const k = g.kind === 'time' ? (g.timekeeperId ?? '?') : `~${g.kind}`;
        const t = g.timekeeperId ? names.timekeepers.get(g.timekeeperId) : null;
        const label = g.kind === 'time' ? (t ? `${t.initials} ${t.name}` : (g.timekeeperId ?? '?')) : g.kind === 'disbursement' ? 'Disbursements' : 'Fixed charges';
        const r = agg.get(k) ?? { label, minutes: 0, value: 0, items: 0, oldest: g.oldest };
        r.minutes += g.minutes;
        r.value += g.valueMinor;
        r.items += g.items;
        if (g.oldest < r.oldest) r.oldest = g.oldest;
        agg.set(k, r);
      }
      const rows = [...agg.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, r]) => ({
        timekeeper: r.label, hours: `${Math.floor(r.minutes / 60)}:${String(r.minutes % 60).padStart(2, '0')}`, items: r.items, oldest: r.oldest, value: r.value,
      }));
      const timeRows = rows.filter((r) => r.timekeeper !== 'Disbursements' && r.timekeeper !== 'Fixed charges');
      return {
        subtitle: `Unbilled work recorded up to ${p.to} (items on no approved or finalised bill dated on or before it)`,
        columns: [text('timekeeper', 'Timekeeper'), text('hours', 'Hours'), { key: 'items', label: 'Items', kind: 'number' }, { key: 'oldest', label: 'Oldest', kind: 'date' }, money('money', 'value', 'Value')],
        rows, totals: { timekeeper: 'Total', hours: '', items: sumBy(rows, (r) => r.items), oldest: '', value: sumBy(rows, (r) => r.value) }, notes: [],
        chartSvg: barChart(`Unbilled time by timekeeper at ${p.to}`, timeRows.map((r) => ({ label: r.timekeeper, value: r.value, display: toDecimalString(r.value, cur) }))),
      };
    },
  };

  /** The currencies a report can be in: the firm's and every other the books hold amounts in, sorted. */
  async function currencies(): Promise<string[]> {
    return [...new Set([await currency(), ...await store.currenciesHeld(db)])].sort();
  }

  /** The dates and the currency the report is in; a currency the books hold nothing in is refused. */
  async function checkedParams(name: ReportName, params: ReportParams): Promise<{ p: { from: string | null; to: string }; cur: string }> {
    // A client the books do not know is named, not answered with an empty report (review 62 F4: the API took any id),
    // with whatever else is wrong (review 63 F13).
    const unknownClient = params.clientId !== undefined && REPORT_TAKES_CLIENT[name] && /^[0-9a-zA-Z-]{1,64}$/.test(params.clientId) && !(await store.clientExists(db, params.clientId));
    let p: { from: string | null; to: string };
    try {
      p = checkParams(name, params);
    } catch (e) {
      if (e instanceof ReportParamError && unknownClient) throw new ReportParamError({ ...e.fields, client: NO_SUCH_CLIENT });
      throw e;
    }
    if (unknownClient) throw new ReportParamError({ client: NO_SUCH_CLIENT });
    const firmCurrency = await currency();
    const cur = params.currency ?? firmCurrency;
    if (cur !== firmCurrency) {
      const held = await currencies();
      if (!held.includes(cur)) throw new ReportParamError({ currency: `has no amounts in the books (they hold ${held.join(', ')})` });
    }
    return { p, cur };
  }

  return {
    currencies,
    /** A client as typed on the command line or a form: its id, number, name (case and accents aside) or "number name" (store.clientTyped). */
    clientTyped: (text: string) => store.clientTyped(db, text),
    /** Every bad parameter at once (field: message), or none: a page refusing one field (its client) names the others too. */
    async paramErrors(name: ReportName, params: ReportParams): Promise<Record<string, string>> {
      try {
        await checkedParams(name, params);
        return {};
      } catch (e) {
        if (e instanceof ReportParamError) return e.fields;
        throw e;
      }
    },
    async run(name: ReportName, params: ReportParams): Promise<Report> {
      const { p, cur } = await checkedParams(name, params);
      const built = await builders[name]({ ...p, clientId: params.clientId ?? null }, cur);
      // Amounts in different currencies are never added together: every report is in one currency (the firm's unless asked) and counts only
      // what was posted (or, for WIP, recorded) in it; what was posted in another currency is named, not added in.
      const others = await store.otherCurrencies(db, cur, params.clientId ?? null);
      const notes = others.length > 0
        ? [...built.notes, `Only amounts in ${cur} are counted: postings in ${others.join(', ')} (bills of matters billed in ${others.length === 1 ? 'that currency' : 'those currencies'}) are not added to ${cur} amounts`]
        : built.notes;
      return { name, title: REPORT_TITLES[name], params: { ...p, clientId: params.clientId ?? null }, currency: cur, ...built, notes };
    },
  };
}

/**
 * The ledger's reports, each read in one read-only transaction, so that all its queries see the books as at one moment:
 * read while postings are made, a report's parts (GL detail's lines and its closing balances, the debtors and the bills)
 * always agree (review 62 F12). PostgreSQL: REPEATABLE READ. SQLite: a deferred transaction (one snapshot, no write lock).
 */
export function createLedgerReports(db: Executor, clock: Clock) {
  const direct = reportsOver(db, clock);
  if (db.isTransaction) return direct;
  const kysely = db as Kysely<any>;
  const readOnly = () => (writersSerialised(db) ? kysely.transaction() : kysely.transaction().setIsolationLevel('repeatable read')).setAccessMode('read only');
  return {
    ...direct,
    run: (name: ReportName, params: ReportParams): Promise<Report> => readOnly().execute((trx) => reportsOver(trx, clock).run(name, params)),
  };
}

export type LedgerReports = ReturnType<typeof createLedgerReports>;

function csvCell(v: Cell): string {
  if (v === null) return '';
  const s = String(v);
  // Cells that a spreadsheet would run as a formula are quoted with a leading apostrophe.
  const safe = /^[=+\-@\t\r]/.test(s) && !/^-?\d+(\.\d+)?$/.test(s) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** A cell as text: money as a decimal string in the report's currency. */
export function cellText(r: Report, c: ReportColumn, v: Cell): string {
  if (v === null || v === undefined) return '';
  if (c.kind === 'money' && typeof v === 'number') return toDecimalString(v, r.currency);
  return String(v);
}

/**
 * The report as CSV: the header, the rows and the totals; then, when the report has notes (a
 * statement's unallocated credit, "out of balance", a currency left out, lines cut short), a
 * blank line and each note in a line of its own, as the page shows them under the table.
 */
export function reportToCsv(r: Report): string {
  const out = [r.columns.map((c) => csvCell(c.label)).join(',')];
  for (const row of r.rows) out.push(r.columns.map((c) => csvCell(cellText(r, c, row[c.key] ?? null))).join(','));
  if (r.totals) out.push(r.columns.map((c) => csvCell(cellText(r, c, r.totals![c.key] ?? null))).join(','));
  if (r.notes.length > 0) out.push('', ...r.notes.map((n) => csvCell(n)));
  return out.join('\r\n') + '\r\n';
}
