/**
 * The ledger pages, mounted at /ledger: overview, chart of accounts (admin page), periods,
 * journals, receipts (new receipt against a bill: Bill Production's "Create payment" links
 * to /ledger/receipts/new?bill=BILL_ID), a bill on the debtors ledger (write-off, discount
 * decision), a client's account (credit to allocate), and the reports (page, CSV, PDF).
 *
 * Forms work without JavaScript (303 after success; 409/422 re-render with the reason, what was
 * typed, and each error at its field) and
 * carry `_csrf`. Money is typed as decimal text and parsed exactly with parseAmount.
 */
import { Hono } from 'hono';
import type { Context } from 'hono';
import { isoDate } from '../../shared/clock.ts';
import { newId } from '../../shared/ids.ts';
import type { ClientChoice } from '../../shared/client-names.ts';
import { formatMoney, isCurrencyCode, MoneyParseError, parseAmount, toDecimalString } from '../../shared/money.ts';
import { HttpError, fieldLabel, invalid, notFound } from '../../shared/web/errors.ts';
import { allow } from '../../shared/web/guard.ts';
import { createFlashes } from '../../shared/web/flash.ts';
import type { ModuleDeps } from '../../shared/web/module.ts';
import { isHtmx, redirectAfterPost, render } from '../../shared/web/render.ts';
import type { AppEnv, Role } from '../../shared/web/types.ts';
import { periodSettings, writeOffLimitFor } from './books.ts';
import type { LedgerCommands } from './commands.ts';
import { RECEIPT_METHODS, REFUND_METHODS } from './commands.ts';
import { AGE_LABELS, isDate, receiptCurrencies } from './domain.ts';
import type { AllocationOrder, DiscountChoice } from './domain.ts';
import { cellText, createLedgerReports, isReportName, REPORT_NAMES, REPORT_TAKES_CLIENT, REPORT_TAKES_FROM, REPORT_TITLES, ReportParamError, reportToCsv } from './reports.ts';
import type { Report } from './reports.ts';
import * as store from './store.ts';
import type { LedgerBill } from './store.ts';

const READERS: readonly Role[] = ['admin', 'billing', 'readonly'];
const WRITERS: readonly Role[] = ['admin', 'billing'];
const ADMIN: readonly Role[] = ['admin'];
const ID = '{[0-9a-zA-Z-]{1,64}}';
const JOURNAL_PREFIXES: readonly string[] = ['BJ', 'RJ', 'AJ', 'WJ', 'DJ'];

type Raw = Record<string, string | File>;
const str = (raw: Raw, k: string): string => (typeof raw[k] === 'string' ? (raw[k] as string).trim() : '');

/** Receipts a page of the receipts list shows. */
const RECEIPTS_PAGE = 100;

const ORDER_LABELS: Record<AllocationOrder, string> = {
  this_bill_first: 'This bill first, then the oldest', oldest_first: 'Oldest bill first', this_bill_only: 'This bill only (rest held as credit)', on_account: 'On account (held as credit)',
};

function moneyField(errors: Record<string, string>, name: string, text: string, currency: string): number | undefined {
  if (text === '') { errors[name] = 'is required'; return undefined; }
  try { return parseAmount(text, currency); } catch (e) {
    if (e instanceof MoneyParseError) { errors[name] = e.message.replace(/^"[^"]*" /, ''); return undefined; }
    throw e;
  }
}

/** What a page shows again after a refused form: the reason, field errors, and the submitted values (`form` names which form). */
interface Shown {
  error?: string | null;
  errors?: Record<string, string>;
  fv?: Record<string, string>;
}

export function billView(b: LedgerBill, asOf: string) {
  const outstandingMinor = store.outstandingOf(b);
  // The forecast (seed 003): an expired, undecided discount counted back; the books are unchanged.
  const expiredDiscountMinor = store.expiredDiscountMinor(b, asOf);
  return { ...b, outstandingMinor, totalNowMinor: b.totalMinor + b.discountReversedMinor, expiredDiscountMinor, forecastMinor: outstandingMinor + expiredDiscountMinor };
}

/** A self-contained HTML document (inline CSS, no network) for the PDF renderer. */
export function reportHtml(r: Report, generatedAt: string): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  const head = r.columns.map((c) => `<th class="${c.kind}">${esc(c.label)}</th>`).join('');
  const row = (cells: Record<string, unknown>, cls = '') => `<tr class="${cls}">${r.columns.map((c) => `<td class="${c.kind}">${esc(cellText(r, c, (cells[c.key] ?? null) as string | number | null))}</td>`).join('')}</tr>`;
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(r.title)}</title><style>
@page{margin:15mm 15mm 18mm 15mm}body{font-family:sans-serif;font-size:10pt;margin:0}h1{font-size:16pt;margin:0}p.sub{color:#444;margin:.2em 0 1em}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ccc;padding:3px 5px;text-align:left}td.money,th.money,td.number,th.number{text-align:right}
tr.total td{font-weight:bold;border-top:2px solid #000}.notes{margin-top:1em}svg{margin:1em 0}</style></head><body>
<h1>${esc(r.title)}</h1><p class="sub">${esc(r.subtitle)} · ${esc(r.currency)} · generated ${esc(generatedAt)}</p>
${r.chartSvg ?? ''}
<table><thead><tr>${head}</tr></thead><tbody>${r.rows.map((x) => row(x)).join('')}${r.totals ? row(r.totals, 'total') : ''}</tbody></table>
${r.notes.length ? `<div class="notes">${r.notes.map((n) => `<p>${esc(n)}</p>`).join('')}</div>` : ''}
</body></html>`;
}

/** The clients the overview lists (the others are found by typing: /ledger/clients/find). */
const INDEX_CLIENTS = 500;
/** The expired discounts awaiting a decision the overview lists (the oldest first). */
const INDEX_PENDING = 500;
/** Suggestions for a typed Client field, at most. */
const CLIENT_SUGGESTIONS = 20;

export function createLedgerPages(deps: ModuleDeps, cmds: LedgerCommands): Hono<AppEnv> {
  const pages = new Hono<AppEnv>();
  const db = deps.db;
  const reports = createLedgerReports(db, deps.clock);
  const today = (): string => isoDate(deps.clock.now());
  const can = (c: Context<AppEnv>) => ({ write: WRITERS.includes(c.get('user')?.role as Role), admin: c.get('user')?.role === 'admin' });
  const settings = () => db.transaction().execute((trx) => periodSettings({ trx, clock: deps.clock }));

  /** After a successful post: the page that shows its outcome (post/redirect/get). */
  const done = redirectAfterPost;
  /**
   * What a post has to say on the page it leads to (a receipt's warnings, a bulk write-off's bills
   * left alone, a write-off dated ahead), kept for that user and page under `?done=KEY`
   * (src/shared/web/flash.ts): shown on that address, on whichever server process serves it, and
   * on no other tab or later visit of the page (review 56 L5, review 60 F8).
   */
  const postNotes = createFlashes<string[]>(db, deps.clock, 'ledger.notes');
  const doneSaying = async (c: Context<AppEnv>, url: string, notes: readonly string[], scope: string) => {
    if (notes.length === 0) return done(c, url);
    const key = await postNotes.keep(c, [...notes], scope);
    const hashAt = url.indexOf('#');
    const [path, hash] = hashAt < 0 ? [url, ''] : [url.slice(0, hashAt), url.slice(hashAt)];
    return done(c, `${path}${path.includes('?') ? '&' : '?'}done=${key}${hash}`);
  };
  const notesFor = async (c: Context<AppEnv>, scope: string): Promise<string[]> => (await postNotes.of(c, scope)) ?? [];
  const refusal = (e: unknown): e is HttpError => e instanceof HttpError && (e.status === 409 || e.status === 422 || e.status === 404);
  /** A refused form shown again: the reason, each field's error under the form's own name for it, and what was typed. */
  const refused = (e: HttpError, fv: Record<string, string>, names: Record<string, string> = {}): Shown => ({
    error: e.message, errors: Object.fromEntries(Object.entries(e.fields).map(([k, v]) => [names[k] ?? k, v])), fv,
  });
  const refusedStatus = (e: HttpError) => (e.status === 404 ? 422 : e.status) as 409 | 422;

  /**
   * A Client field as typed (the receipt and report forms; a firm may have thousands of
   * clients, too many to list): the client's id (a link, an older page's form), its number,
   * its name (case and accents aside) or "number name" as the pages show it. Not part of a
   * name: nothing shows the client found before a receipt posts. '' is no client.
   */
  async function typedClient(text: string): Promise<{ client: ClientChoice | null; error?: string }> {
    if (text.trim().length > 200) return { client: null, error: 'must be at most 200 characters' };
    return store.clientTyped(db, text);
  }

  /**
   * The Client field's suggestions as the clerk types: the clients whose number starts with, or
   * whose name holds, the text. For htmx, the options of the field's datalist; without
   * JavaScript, a page linking each back to the form it came from (`for`: the receipt form or a
   * report, with the report's dates and currency) with the client chosen.
   */
  pages.get('/clients/find', allow(READERS), async (c) => {
    const text = (c.req.query('client') ?? '').slice(0, 200);
    const found = await store.clientsMatching(db, text, CLIENT_SUGGESTIONS);
    // Where its links go: a report taking a client (with its dates and currency), a client's page, or the receipt form.
    const wanted = c.req.query('for') ?? 'receipt';
    const report = isReportName(wanted) && REPORT_TAKES_CLIENT[wanted] ? wanted : null;
    const forName = report ?? (wanted === 'client' ? 'client' : 'receipt');
    const keep = report ? (['from', 'to', 'currency'] as const).flatMap((k) => { const v = c.req.query(k); return v ? [[k, v.slice(0, 40)] as [string, string]] : []; }) : [];
    const links = found.map((cl) => ({
      ...cl,
      href: forName === 'client' ? `/ledger/clients/${encodeURIComponent(cl.id)}`
        : `${report ? `/ledger/reports/${report}` : '/ledger/receipts/new'}?${new URLSearchParams([...keep, ['client', String(cl.clientNumber)]]).toString()}`,
    }));
    return render(c, isHtmx(c) ? 'layout/_client_options.njk' : 'ledger/clients_find.njk', { text, clients: links, max: CLIENT_SUGGESTIONS, forName, keep });
  });

  // ---- overview --------------------------------------------------------------------------

  pages.get('/', allow(READERS), async (c) => {
    const s = await settings();
    const accounts = await store.listAccounts(db);
    // As at today, as the reports read the books by default (a bill dated ahead counts from its date).
    const asOf = today();
    const bal = await store.accountBalances(db, { to: asOf, currency: s.currency });
    const all = await store.accountBalances(db, { currency: s.currency });
    const of = (role: string, m = bal) => { const a = accounts.find((x) => x.role === role); const b = a ? m.get(a.id) : undefined; return b ? b.debit - b.credit : 0; };
    // Read in SQL: a firm may have tens of thousands of open bills.
    const pending = (await store.listBills(db, { expiredBy: asOf, limit: INDEX_PENDING })).map((b) => billView(b, asOf));
    return render(c, 'ledger/index.njk', {
      s, closedList: [...s.closed].sort(), currency: s.currency, debtorsMinor: of('debtors'), creditMinor: 0 - of('unallocated'), bankMinor: of('office_bank'), asOf,
      laterDebtorsMinor: of('debtors', all) - of('debtors'),
      openBills: await store.openBillCount(db), pending, pendingMax: INDEX_PENDING, noted: await store.notedJournals(db, 50),
      recent: await store.listJournals(db, { limit: 10 }), reports: REPORT_NAMES.map((n) => ({ name: n, title: REPORT_TITLES[n] })),
      clients: await store.listClients(db, INDEX_CLIENTS), clientCount: await store.clientCount(db), can: can(c),
    });
  });

  // ---- chart of accounts -----------------------------------------------------------------

  async function accountsPage(c: Context<AppEnv>, extra: { errors?: Record<string, string>; error?: string | null; fv?: Record<string, string> } = {}, status: 200 | 409 | 422 = 200) {
    const accounts = await store.listAccounts(db);
    const s = await settings();
    const bal = await store.accountBalances(db, { currency: s.currency });
    return render(c, 'ledger/accounts.njk', {
      accounts: accounts.map((a) => ({ ...a, balanceMinor: (bal.get(a.id)?.debit ?? 0) - (bal.get(a.id)?.credit ?? 0) })), currency: s.currency,
      can: can(c), errors: extra.errors ?? {}, error: extra.error ?? null, fv: extra.fv ?? {},
    }, status);
  }
  pages.get('/accounts', allow(READERS), (c) => accountsPage(c));
  pages.post('/accounts', allow(ADMIN), async (c) => {
    const raw = await c.req.parseBody() as Raw;
    try {
      await cmds.addAccount(c.get('command'), { code: str(raw, 'code'), name: str(raw, 'name'), type: str(raw, 'type') as 'asset' });
      return done(c, '/ledger/accounts');
    } catch (e) {
      if (refusal(e)) return accountsPage(c, { errors: { ...e.fields }, error: e.message, fv: { code: str(raw, 'code'), name: str(raw, 'name'), type: str(raw, 'type') } }, e.status as 409 | 422);
      throw e;
    }
  });
  pages.post(`/accounts/:id${ID}`, allow(ADMIN), async (c) => {
    const raw = await c.req.parseBody() as Raw;
    try {
      // A field the form sent is a change to check (a blank name is refused, not dropped); active is yes or no, nothing else.
      const sent = (k: string) => typeof raw[k] === 'string';
      if (!sent('name') && !sent('code') && !sent('active')) throw invalid({ name: 'give a code, name or active to change' });
      if (sent('active') && !['yes', 'no'].includes(str(raw, 'active'))) throw invalid({ active: 'must be yes (active) or no (inactive)' });
      await cmds.changeAccount(c.get('command'), c.req.param('id'), {
        ...(sent('name') ? { name: str(raw, 'name') } : {}), ...(sent('code') ? { code: str(raw, 'code') } : {}),
        ...(sent('active') ? { active: str(raw, 'active') === 'yes' } : {}),
      });
      return done(c, '/ledger/accounts');
    } catch (e) {
      if (refusal(e)) return accountsPage(c, { errors: { ...e.fields }, error: e.message }, (e.status === 404 ? 422 : e.status) as 409 | 422);
      throw e;
    }
  });

  // ---- periods ---------------------------------------------------------------------------

  async function periodsPage(c: Context<AppEnv>, shown: Shown = {}, status: 200 | 409 | 422 = 200) {
    const s = await settings();
    const activity = await store.periodActivity(db, s.currency);
    const rows = await store.listPeriodRows(db);
    const all = new Set<string>([...activity.keys(), ...rows.map((r) => r.period), s.current]);
    const periods = [...all].sort().reverse().map((p) => ({
      period: p, closed: s.closed.has(p), current: p === s.current, journals: activity.get(p)?.journals ?? 0, totalMinor: activity.get(p)?.totalMinor ?? 0,
      changed: rows.find((r) => r.period === p) ?? null,
    }));
    return render(c, 'ledger/periods.njk', {
      // Under "refuse", no form offers to confirm a posting outside the current period (review 53 L9): it would be refused.
      confirmOffered: s.policy !== 'refuse',
      s, periods, noted: await store.notedJournals(db, 200), error: shown.error ?? null, errors: shown.errors ?? {}, fv: shown.fv ?? {}, can: can(c),
      writeOffLimit: toDecimalString(s.writeOffLimitMinor, s.currency),
      // Every currency the books hold bills in, with its limit (none set: its bills are not written off).
      writeOffLimits: [s.currency, ...new Set([...await store.otherCurrencies(db, s.currency), ...Object.keys(s.otherWriteOffLimits)])].sort()
        .map((cur) => ({ currency: cur, limitMinor: writeOffLimitFor(s, cur), firm: cur === s.currency })),
    }, status);
  }
  pages.get('/periods', allow(READERS), (c) => periodsPage(c));
  pages.post('/periods', allow(ADMIN), async (c) => {
    const raw = await c.req.parseBody() as Raw;
    const action = str(raw, 'action');
    const fv = { form: action === 'write-off-limit' ? 'limit' : 'periods', action, period: str(raw, 'period'), limit: str(raw, 'limit'), currency: str(raw, 'currency').trim().toUpperCase() };
    try {
      switch (action) {
        case 'current':
          await cmds.setCurrentPeriod(c.get('command'), fv.period);
          break;
        case 'write-off-limit': {
          const s = await settings();
          const e: Record<string, string> = {};
          const currency = fv.currency || s.currency;
          if (!isCurrencyCode(currency)) throw invalid({ currency: 'must be a currency code (three capital letters)' });
          const v = moneyField(e, 'limit', fv.limit, currency);
          if (v === undefined) throw invalid(e);
          await cmds.setWriteOffLimit(c.get('command'), v, currency);
          break;
        }
        case 'open':
        case 'close':
          await cmds.setPeriod(c.get('command'), { period: fv.period, status: action === 'open' ? 'open' : 'closed' });
          break;
        default:
          throw invalid({ action: 'must be close, open, current or write-off-limit' });
      }
      return done(c, '/ledger/periods');
    } catch (e) {
      if (refusal(e)) return periodsPage(c, refused(e, fv), refusedStatus(e));
      throw e;
    }
  });

  // ---- journals --------------------------------------------------------------------------

  /**
   * The journals, newest first, 100 a page, by prefix and dates: a bad prefix, date or page is named at its input (422)
   * and left out, not silently ignored (review 62 F10).
   */
  pages.get('/journals', allow(READERS), async (c) => {
    const q = c.req.query();
    const fv = { prefix: (q.prefix ?? '').trim(), from: (q.from ?? '').trim(), to: (q.to ?? '').trim(), page: (q.page ?? '').trim() };
    const errors: Record<string, string> = {};
    if (fv.prefix && !JOURNAL_PREFIXES.includes(fv.prefix)) errors.prefix = `must be one of ${JOURNAL_PREFIXES.join(', ')}`;
    if (fv.from && !isDate(fv.from)) errors.from = 'must be a date (YYYY-MM-DD)';
    if (fv.to && !isDate(fv.to)) errors.to = 'must be a date (YYYY-MM-DD)';
    if (!errors.from && !errors.to && fv.from && fv.to && fv.to < fv.from) errors.to = `must be on or after the date from (${fv.from})`;
    if (fv.page && !(/^\d{1,5}$/.test(fv.page) && Number(fv.page) <= 10_000)) errors.page = 'must be a page number from 0 to 10,000';
    const page = errors.page ? 0 : Number(fv.page || 0);
    const journals = await store.listJournals(db, {
      limit: 100, offset: page * 100, ...(fv.prefix && !errors.prefix ? { prefix: fv.prefix } : {}),
      ...(fv.from && !errors.from ? { from: fv.from } : {}), ...(fv.to && !errors.to ? { to: fv.to } : {}),
    });
    const more = new URLSearchParams(Object.entries({ prefix: fv.prefix, from: fv.from, to: fv.to }).filter(([k, v]) => v !== '' && !errors[k])).toString();
    return render(c, 'ledger/journals.njk', { journals, fv, errors, page, more }, Object.keys(errors).length > 0 ? 422 : 200);
  });
  pages.get(`/journals/:id${ID}`, allow(READERS), async (c) => {
    const j = await store.findJournal(db, c.req.param('id'));
    if (!j) throw notFound('Journal');
    const accounts = new Map((await store.listAccounts(db)).map((a) => [a.id, a]));
    const lines = (await store.journalLines(db, j.id)).map((l) => ({ ...l, account: accounts.get(l.accountId) }));
    const reversedBy = (await db.selectFrom('ledger_journal').select(['id', 'number']).where('reverses_journal_id', '=', j.id).executeTakeFirst()) ?? null;
    const reverses = j.reversesJournalId ? await store.findJournal(db, j.reversesJournalId) : null;
    return render(c, 'ledger/journal.njk', { j, lines, reversedBy, reverses });
  });

  // ---- receipts --------------------------------------------------------------------------

  /**
   * The receipts, newest first, RECEIPTS_PAGE a page, filtered by dates received, number or reference, and unallocated
   * credit, with what they received per currency over every page (those reversed since said apart): a bank statement's
   * receipts are found and totalled (review 53 L8, review 62 F6). Bad filters are named at their inputs (422) and left out.
   */
  pages.get('/receipts', allow(READERS), async (c) => {
    const q = c.req.query();
    const fv = { from: (q.from ?? '').trim(), to: (q.to ?? '').trim(), q: (q.q ?? '').trim(), credit: q.credit === '1' ? '1' : '', offset: (q.offset ?? '').trim() };
    const errors: Record<string, string> = {};
    if (fv.from && !isDate(fv.from)) errors.from = 'must be a date (YYYY-MM-DD)';
    if (fv.to && !isDate(fv.to)) errors.to = 'must be a date (YYYY-MM-DD)';
    if (!errors.from && !errors.to && fv.from && fv.to && fv.to < fv.from) errors.to = `must be on or after the date from (${fv.from})`;
    if (fv.q.length > 100) errors.q = 'must be at most 100 characters';
    const offset = fv.offset === '' ? 0 : /^\d{1,8}$/.test(fv.offset) ? Number(fv.offset) : null;
    if (offset === null) errors.offset = 'must be a whole number from 0';
    const filter: store.ReceiptFilter = {
      ...(fv.from && !errors.from ? { from: fv.from } : {}), ...(fv.to && !errors.to ? { to: fv.to } : {}),
      ...(fv.q && !errors.q ? { text: fv.q } : {}), ...(fv.credit ? { withCredit: true } : {}),
    };
    const at = offset ?? 0;
    const receipts = await store.listReceipts(db, { ...filter, limit: RECEIPTS_PAGE, offset: at });
    const totals = await store.receiptTotals(db, filter);
    const names = await store.namesOf(db, { clients: receipts.map((r) => r.clientId) });
    const keep = Object.entries({ from: filter.from, to: filter.to, q: filter.text, credit: fv.credit || undefined }).filter(([, v]) => v) as [string, string][];
    const link = (o: number) => `/ledger/receipts?${new URLSearchParams([...keep, ...(o > 0 ? [['offset', String(o)] as [string, string]] : [])]).toString()}`;
    const pager = {
      total: totals.count, from: totals.count === 0 || at >= totals.count ? 0 : at + 1, to: at >= totals.count ? 0 : Math.min(at + RECEIPTS_PAGE, totals.count),
      prevUrl: at > 0 ? link(Math.max(0, at - RECEIPTS_PAGE)) : null, nextUrl: at + RECEIPTS_PAGE < totals.count ? link(at + RECEIPTS_PAGE) : null,
    };
    return render(c, 'ledger/receipts.njk', { receipts, names, can: can(c), fv, errors, totals: totals.perCurrency, pager }, Object.keys(errors).length ? 422 : 200);
  });

  async function receiptForm(c: Context<AppEnv>, fv: Record<string, string>, extra: { errors?: Record<string, string>; error?: string | null } = {}, status: 200 | 404 | 409 | 422 = 200) {
    const s = await settings();
    const bill = fv.bill ? await store.findBill(db, fv.bill) : null;
    // The client typed (or named by a link): shown with its open bills once found; one that names none is said beside the field.
    const typed = bill ? null : await typedClient(fv.client ?? '');
    const errors = { ...(typed?.error && !extra.errors?.client ? { client: typed.error } : {}), ...(extra.errors ?? {}) };
    if (typed?.error && status === 200) status = 422;
    const clientId = bill?.clientId ?? typed?.client?.id ?? '';
    const names = await store.namesOf(db, { clients: [clientId] });
    const open = clientId ? (await store.listBills(db, { clientId, status: 'open' })).filter((b) => store.outstandingOf(b) > 0).map((b) => billView(b, today())) : [];
    // On account: the firm's currency, or one the client (any client, until one is chosen) is billed in.
    const currencies = bill ? [bill.currency] : receiptCurrencies(s.currency, await store.clientCurrencies(db, clientId || null));
    const currency = bill?.currency ?? (fv.currency && currencies.includes(fv.currency) ? fv.currency : s.currency);
    return render(c, 'ledger/receipt_new.njk', {
      confirmOffered: s.policy !== 'refuse',
      // A fresh idempotency key each time the form is shown, kept when it is shown again after
      // a refusal: submitting the same form twice (or five times at once) is one receipt.
      // The client found is carried on as its number (the field shows what the pages show); one not found, as typed.
      fv: { receivedOn: today(), order: bill ? 'this_bill_first' : 'oldest_first', discount: 'auto', method: 'bank_transfer', ...fv, client: bill ? bill.clientId : typed?.client ? String(typed.client.clientNumber) : (fv.client ?? '').trim(), receiptId: fv.receiptId || newId(deps.clock) },
      bill: bill ? billView(bill, today()) : null, client: clientId ? names.clients.get(clientId) ?? null : null, open,
      orders: Object.entries(ORDER_LABELS), methods: RECEIPT_METHODS, s, currency, currencies, errors, error: extra.error ?? (typed?.error ? `Please correct: ${fieldLabel('client')}` : null),
      today: today(),
    }, status);
  }
  pages.get('/receipts/new', allow(WRITERS), async (c) => {
    const q = c.req.query();
    // Bill Production's toolbar sends the selected bills as bill=..&bill=..: one receipt is for one bill.
    const selected = (c.req.queries('bill') ?? []).filter((b) => b !== '');
    const billId = selected[0];
    if (billId && !(await store.findBill(db, billId))) {
      return receiptForm(c, {}, { error: 'That bill is not on the debtors ledger yet (it posts when it is approved; reload in a moment)' }, 404);
    }
    return receiptForm(c, { ...(billId ? { bill: billId } : {}), ...(q.client ? { client: q.client } : {}) },
      selected.length > 1 ? { error: `${selected.length} bills were selected: this receipt is for the first; record the others one by one, or a receipt on account allocated oldest first` } : {});
  });
  pages.post('/receipts', allow(WRITERS), async (c) => {
    const raw = await c.req.parseBody() as Raw;
    const fv: Record<string, string> = {};
    for (const k of ['bill', 'client', 'receivedOn', 'amount', 'method', 'reference', 'order', 'discount', 'confirm', 'receiptId', 'currency']) fv[k] = str(raw, k);
    const s = await settings();
    const bill = fv.bill ? await store.findBill(db, fv.bill) : null;
    const errors: Record<string, string> = {};
    // The amount is read in the currency chosen (yen has no decimals); the command checks the currency.
    if (fv.currency && !bill && !isCurrencyCode(fv.currency)) errors.currency = 'must be a currency code (ISO 4217, e.g. USD)';
    const amount = moneyField(errors, 'amount', fv.amount!, bill?.currency ?? (fv.currency && !errors.currency ? fv.currency : s.currency));
    // The client typed: its number, its name or "number name" as the pages show it, or an id (the form of an older page).
    const typed = bill || fv.bill ? null : await typedClient(fv.client ?? '');
    if (typed?.error) errors.client = typed.error;
    try {
      if (amount === undefined || errors.currency || errors.client) throw invalid(errors);
      const r = await cmds.recordReceipt(c.get('command'), {
        currency: fv.currency || null,
        ...(fv.receiptId ? { receiptId: fv.receiptId } : {}), billId: fv.bill || null, clientId: typed?.client?.id ?? (fv.bill ? fv.client || null : null), receivedOn: fv.receivedOn!, amountMinor: amount,
        method: fv.method || 'bank_transfer', reference: fv.reference || null, order: (fv.order || undefined) as AllocationOrder | undefined,
        discount: (fv.discount || 'auto') as DiscountChoice, confirmOutsidePeriod: fv.confirm === 'on' || fv.confirm === 'yes' || fv.confirm === 'true',
      });
      const notes: string[] = [];
      if (r.warning) notes.push(r.warning);
      for (const billId of r.discountsReversed) {
        const lb = await store.findBill(db, billId);
        if (lb) notes.push(`Bill ${lb.number}'s discount (valid until ${lb.discountValidUntil ?? 'its date'}) was reversed: the receipt came after it; ${formatMoney(store.outstandingOf(lb), lb.currency)} is still owing on it`);
      }
      return doneSaying(c, `/ledger/receipts/${r.receipt.id}`, notes, r.receipt.id);
    } catch (e) {
      if (refusal(e)) {
        const fieldMap: Record<string, string> = { billId: 'bill', clientId: 'client' };
        const errs = Object.fromEntries(Object.entries(e.fields).map(([k, v]) => [fieldMap[k] ?? k, v]));
        return receiptForm(c, fv, { errors: { ...errors, ...errs }, error: e.message }, (e.status === 404 ? 422 : e.status) as 409 | 422);
      }
      throw e;
    }
  });

  async function receiptPage(c: Context<AppEnv>, id: string, shown: Shown = {}, status: 200 | 409 | 422 = 200) {
    const r = await store.findReceipt(db, id);
    if (!r) throw notFound('Receipt');
    const allocs = await store.allocations(db, { receiptId: id });
    const bills = new Map<string, LedgerBill>();
    for (const a of allocs) { const b = await store.findBill(db, a.billId); if (b) bills.set(b.id, b); }
    const names = await store.namesOf(db, { clients: [r.clientId] });
    const open = (await store.listBills(db, { clientId: r.clientId, status: 'open' })).filter((b) => store.outstandingOf(b) > 0).map((b) => billView(b, today()));
    const refunds = await store.refunds(db, id);
    const journalNumbers: Record<string, string> = {};
    for (const jid of refunds.flatMap((x) => [x.journalId, ...(x.reversalJournalId ? [x.reversalJournalId] : [])])) {
      const j = await store.findJournal(db, jid);
      if (j) journalNumbers[jid] = j.number;
    }
    const fv = (shown.fv ?? {}) as Record<string, string>;
    return render(c, 'ledger/receipt.njk', {
      confirmOffered: (await settings()).policy !== 'refuse',
      refunds, journalNumbers, refundMethods: REFUND_METHODS.map((m) => [m, m.replace('_', ' ')]),
      // The refund form's idempotency key: fresh when shown, kept when shown again after a refusal.
      // (A fresh one after a 409: that id's refund was made, so sending the form again under it would only repeat the 409.)
      refundId: (fv.form === 'refund' && status !== 409 && fv.refundId) || newId(deps.clock),
      refundAmount: toDecimalString(r.unallocatedMinor, r.currency),
      notices: await notesFor(c, id),
      r, allocs: allocs.map((a) => ({ ...a, bill: bills.get(a.billId) })), client: names.clients.get(r.clientId) ?? null, open, can: can(c), today: today(),
      error: shown.error ?? null, errors: shown.errors ?? {}, fv: shown.fv ?? {},
      journal: await store.findJournal(db, r.journalId), reversal: r.reversalJournalId ? await store.findJournal(db, r.reversalJournalId) : null,
    }, status);
  }
  pages.get(`/receipts/:id${ID}`, allow(READERS), (c) => receiptPage(c, c.req.param('id')));
  pages.post(`/receipts/:id${ID}/reverse`, allow(WRITERS), async (c) => {
    const raw = await c.req.parseBody() as Raw;
    const fv = { form: 'reverse', reason: str(raw, 'reason'), on: str(raw, 'on'), confirm: str(raw, 'confirm') };
    try {
      await cmds.reverseReceipt(c.get('command'), { receiptId: c.req.param('id'), reason: fv.reason, on: fv.on || undefined, confirmOutsidePeriod: fv.confirm !== '' });
      return done(c, `/ledger/receipts/${c.req.param('id')}`);
    } catch (e) {
      if (refusal(e) && e.status !== 404) return receiptPage(c, c.req.param('id'), refused(e, fv), refusedStatus(e));
      throw e;
    }
  });
  pages.post(`/receipts/:id${ID}/refund`, allow(WRITERS), async (c) => {
    const raw = await c.req.parseBody() as Raw;
    const r = await store.findReceipt(db, c.req.param('id'));
    if (!r) throw notFound('Receipt');
    const fv = { form: 'refund', amount: str(raw, 'amount'), on: str(raw, 'on'), method: str(raw, 'method'), reference: str(raw, 'reference'), reason: str(raw, 'reason'), confirm: str(raw, 'confirm'), refundId: str(raw, 'refundId') };
    try {
      const e: Record<string, string> = {};
      const amount = moneyField(e, 'amount', fv.amount, r.currency);
      if (amount === undefined) throw invalid(e);
      const after = await cmds.refundCredit(c.get('command'), {
        receiptId: r.id, ...(fv.refundId ? { refundId: fv.refundId } : {}), amountMinor: amount, on: fv.on || undefined, method: fv.method || undefined,
        reference: fv.reference || undefined, reason: fv.reason, confirmOutsidePeriod: fv.confirm !== '',
      });
      // Said from the refund as stored (the form sent again is the refund made then: review 60 F3).
      const made = fv.refundId ? await store.findRefund(db, fv.refundId) : null;
      const amountMinor = made?.amountMinor ?? amount;
      const on = made?.refundedOn ?? fv.on;
      const notes = made?.reversalJournalId
        ? [`This refund form was sent before: its refund of ${formatMoney(amountMinor, r.currency)} (${on}) was made then, and reversed on ${made.reversedOn}; nothing more was refunded.`]
        : [`${formatMoney(amountMinor, r.currency)} of the credit was refunded to the client; ${formatMoney(after.unallocatedMinor, r.currency)} is left unallocated.`,
          ...(on && on > today() ? [`Refunded with the date ${on}, after today: reports as at an earlier date do not count it`] : [])];
      return doneSaying(c, `/ledger/receipts/${r.id}`, notes, r.id);
    } catch (e) {
      if (refusal(e) && e.status !== 404) return receiptPage(c, r.id, refused(e, fv), refusedStatus(e));
      throw e;
    }
  });
  pages.post(`/refunds/:rid${ID}/reverse`, allow(WRITERS), async (c) => {
    const raw = await c.req.parseBody() as Raw;
    const x = await store.findRefund(db, c.req.param('rid'));
    if (!x) throw notFound('Refund');
    const fv = { form: `reverse-refund-${x.id}`, on: str(raw, 'on'), reason: str(raw, 'reason'), confirm: str(raw, 'confirm') };
    try {
      const after = await cmds.reverseRefund(c.get('command'), { refundId: x.id, on: fv.on || undefined, reason: fv.reason || undefined, confirmOutsidePeriod: fv.confirm !== '' });
      const back = (await store.findRefund(db, x.id))?.reversedOn ?? null;
      return doneSaying(c, `/ledger/receipts/${x.receiptId}`, [`The refund of ${formatMoney(x.amountMinor, after.currency)} (${x.refundedOn}) was reversed: it is unallocated credit again${back && back > today() ? ` from ${back} (after today: until then it cannot be allocated or refunded, and reports as at an earlier date do not count it)` : ''}.`], x.receiptId);
    } catch (e) {
      if (refusal(e) && e.status !== 404) return receiptPage(c, x.receiptId, refused(e, fv), refusedStatus(e));
      throw e;
    }
  });
  pages.post(`/receipts/:id${ID}/allocate`, allow(WRITERS), async (c) => {
    const raw = await c.req.parseBody() as Raw;
    const fv = { form: 'allocate', bill: str(raw, 'bill'), order: str(raw, 'order'), on: str(raw, 'on'), confirm: str(raw, 'confirm') };
    try {
      await cmds.allocateCredit(c.get('command'), {
        receiptId: c.req.param('id'), billId: fv.bill || null, order: (fv.order || undefined) as AllocationOrder | undefined,
        on: fv.on || undefined, confirmOutsidePeriod: fv.confirm !== '',
      });
      return done(c, `/ledger/receipts/${c.req.param('id')}`);
    } catch (e) {
      if (refusal(e) && e.status !== 404) return receiptPage(c, c.req.param('id'), refused(e, fv, { billId: 'bill' }), refusedStatus(e));
      throw e;
    }
  });

  pages.post(`/allocations/:id${ID}/release`, allow(WRITERS), async (c) => {
    const raw = await c.req.parseBody() as Raw;
    const a = await db.selectFrom('ledger_allocation').select(['receipt_id']).where('id', '=', c.req.param('id')).executeTakeFirst() as { receipt_id: string } | undefined;
    if (!a) throw notFound('Allocation');
    const fv = { form: 'release', allocation: c.req.param('id'), on: str(raw, 'on'), confirm: str(raw, 'confirm') };
    try {
      await cmds.releaseAllocation(c.get('command'), c.req.param('id'), fv.on || undefined, fv.confirm !== '');
      return done(c, `/ledger/receipts/${a.receipt_id}`);
    } catch (e) {
      if (refusal(e) && e.status !== 404) return receiptPage(c, a.receipt_id, refused(e, fv), refusedStatus(e));
      throw e;
    }
  });

  // ---- a bill on the debtors ledger --------------------------------------------------------

  async function billPage(c: Context<AppEnv>, id: string, shown: Shown = {}, status: 200 | 409 | 422 = 200) {
    const b = await store.findBill(db, id);
    if (!b) throw notFound('Bill');
    const s = await settings();
    // The limit for the bill's currency (null: none set for it, so it is not written off).
    const limit = writeOffLimitFor(s, b.currency);
    const names = await store.namesOf(db, { clients: [b.clientId], matters: [b.matterId] });
    const allocs = await store.allocations(db, { billId: id });
    const receipts = new Map<string, string>();
    for (const a of allocs) { const r = await store.findReceipt(db, a.receiptId); if (r) receipts.set(r.id, r.number); }
    const writeOffs = await store.writeOffs(db, id);
    const journals = await store.listJournals(db, { billId: id, limit: 200 });
    // The numbers of the write-offs' journals and their reversals (one read each, beyond those listed).
    const journalNumbers: Record<string, string> = Object.fromEntries(journals.map((j) => [j.id, j.number]));
    for (const jid of writeOffs.flatMap((w) => [w.journalId, ...(w.reversalJournalId ? [w.reversalJournalId] : [])])) {
      if (!journalNumbers[jid]) { const j = await store.findJournal(db, jid); if (j) journalNumbers[jid] = j.number; }
    }
    return render(c, 'ledger/bill.njk', {
      confirmOffered: (await settings()).policy !== 'refuse',
      b: billView(b, today()), client: names.clients.get(b.clientId) ?? null, matter: names.matters.get(b.matterId) ?? null, allocs: allocs.map((a) => ({ ...a, receipt: receipts.get(a.receiptId) })),
      writeOffs, journalNumbers, journals, can: can(c), today: today(),
      error: shown.error ?? null, errors: shown.errors ?? {}, fv: shown.fv ?? {},
      writeOffLimitMinor: limit, writeOffLeftMinor: limit === null ? 0 : Math.max(0, limit - (b.status === 'open' ? b.writtenOffMinor : 0)),
      // The write-off form's idempotency key: fresh when shown, kept when shown again after a refusal.
      writeOffId: (shown.fv as Record<string, string> | undefined)?.writeOffId || newId(deps.clock),
      expired: b.discountValidUntil !== null && b.discountValidUntil < today(),
      notices: status === 200 ? await notesFor(c, id) : [],
      // The client's own money not yet allocated, in the bill's currency: to allocate before anything is written off.
      clientCreditMinor: (await store.clientCreditByCurrency(db, b.clientId)).get(b.currency) ?? 0,
    }, status);
  }
  pages.get(`/bills/:id${ID}`, allow(READERS), (c) => billPage(c, c.req.param('id')));
  pages.post(`/bills/:id${ID}/write-off`, allow(WRITERS), async (c) => {
    const raw = await c.req.parseBody() as Raw;
    const b = await store.findBill(db, c.req.param('id'));
    if (!b) throw notFound('Bill');
    const fv = { form: 'write-off', amount: str(raw, 'amount'), on: str(raw, 'on'), reason: str(raw, 'reason'), confirm: str(raw, 'confirm'), writeOffId: str(raw, 'writeOffId') };
    try {
      const e: Record<string, string> = {};
      const amount = fv.amount ? moneyField(e, 'amount', fv.amount, b.currency) : undefined;
      if (Object.keys(e).length) throw invalid(e);
      await cmds.writeOff(c.get('command'), { billId: b.id, ...(fv.writeOffId ? { writeOffId: fv.writeOffId } : {}), ...(amount !== undefined ? { amountMinor: amount } : {}), on: fv.on || undefined, reason: fv.reason || undefined, confirmOutsidePeriod: fv.confirm !== '' });
      // Dated ahead, as a receipt can be: said, since the reports as at today do not count it while this page does.
      const ahead = fv.on && fv.on > today() ? [`Written off with the date ${fv.on}, after today: reports as at an earlier date do not count it`] : [];
      return doneSaying(c, `/ledger/bills/${b.id}`, ahead, b.id);
    } catch (e) {
      if (refusal(e)) return billPage(c, b.id, refused(e, fv), refusedStatus(e));
      throw e;
    }
  });
  pages.post(`/write-offs/:wid${ID}/reverse`, allow(WRITERS), async (c) => {
    const raw = await c.req.parseBody() as Raw;
    const w = await store.findWriteOff(db, c.req.param('wid'));
    if (!w) throw notFound('Write-off');
    const fv = { form: `reverse-${w.id}`, on: str(raw, 'on'), reason: str(raw, 'reason'), confirm: str(raw, 'confirm') };
    try {
      await cmds.reverseWriteOff(c.get('command'), { writeOffId: w.id, on: fv.on || undefined, reason: fv.reason || undefined, confirmOutsidePeriod: fv.confirm !== '' });
      return doneSaying(c, `/ledger/bills/${w.billId}`, [`The write-off of ${formatMoney(w.amountMinor, (await store.findBill(db, w.billId))?.currency ?? 'USD')} (${w.writtenOffOn}) was reversed: the bill owes it again.`], w.billId);
    } catch (e) {
      if (refusal(e)) return billPage(c, w.billId, refused(e, fv), refusedStatus(e));
      throw e;
    }
  });
  pages.post(`/bills/:id${ID}/discount`, allow(WRITERS), async (c) => {
    const raw = await c.req.parseBody() as Raw;
    const fv = { form: 'discount', decision: str(raw, 'decision'), on: str(raw, 'on'), confirm: str(raw, 'confirm') };
    try {
      await cmds.decideDiscount(c.get('command'), { billId: c.req.param('id'), decision: fv.decision as 'honour', on: fv.on || undefined, confirmOutsidePeriod: fv.confirm !== '' });
      return done(c, `/ledger/bills/${c.req.param('id')}`);
    } catch (e) {
      if (refusal(e) && e.status !== 404) return billPage(c, c.req.param('id'), refused(e, fv), refusedStatus(e));
      throw e;
    }
  });

  // ---- a client's account ----------------------------------------------------------------

  pages.get(`/clients/:id${ID}`, allow(READERS), async (c) => {
    const id = c.req.param('id');
    const names = await store.namesOf(db, { clients: [id] });
    const client = names.clients.get(id);
    if (!client) throw notFound('Client');
    const asOf = today();
    const bills = (await store.listBills(db, { clientId: id })).map((b) => billView(b, asOf));
    const receipts = await store.listReceipts(db, { clientId: id, limit: 500 });
    const s = await settings();
    // Amounts in different currencies are never added together: the headline is the firm's currency; bills and credit in
    // another (a matter billed in it) are totalled per currency beside it.
    const byCurrency = new Map<string, { outstandingMinor: number; creditMinor: number; forecastMinor: number }>();
    const of = (cur: string) => { let t = byCurrency.get(cur); if (!t) { t = { outstandingMinor: 0, creditMinor: 0, forecastMinor: 0 }; byCurrency.set(cur, t); } return t; };
    of(s.currency);
    for (const b of bills) { const t = of(b.currency); t.outstandingMinor += b.outstandingMinor; t.forecastMinor += b.forecastMinor; }
    // Credit from every receipt of the client, not only the latest listed below.
    for (const [cur, credit] of await store.clientCreditByCurrency(db, id)) of(cur).creditMinor += credit;
    const firm = of(s.currency);
    const others = [...byCurrency].filter(([cur, t]) => cur !== s.currency && (t.outstandingMinor !== 0 || t.creditMinor !== 0 || t.forecastMinor !== 0))
      .sort(([x], [y]) => (x < y ? -1 : 1)).map(([cur, t]) => ({ currency: cur, ...t }));
    return render(c, 'ledger/client.njk', {
      // What stands refunded of each receipt: its credit fell by that (review 60 F1: refunds showed only on the receipt).
      refunded: await store.refundedOf(db, receipts.map((r) => r.id)),
      id, client, bills, receipts, currency: s.currency, can: can(c), asOf,
      outstandingMinor: firm.outstandingMinor, creditMinor: firm.creditMinor, forecastMinor: firm.forecastMinor, otherCurrencies: others,
    });
  });

  // ---- bulk write-off of small balances ------------------------------------------------------

  pages.post('/write-offs', allow(WRITERS), async (c) => {
    const raw = await c.req.parseBody() as Raw;
    const s = await settings();
    const fv = { form: 'write-offs', max: str(raw, 'max'), on: str(raw, 'on'), reason: str(raw, 'reason'), confirm: str(raw, 'confirm') };
    const e: Record<string, string> = {};
    const max = moneyField(e, 'max', fv.max, s.currency);
    try {
      if (max === undefined) throw invalid(e);
      const r = await cmds.writeOffSmallBalances(c.get('command'), { maxMinor: max, on: fv.on || undefined, reason: fv.reason || undefined, confirmOutsidePeriod: fv.confirm !== '' });
      const notes = [`${r.written.length} small balance${r.written.length === 1 ? '' : 's'} written off${r.written.length ? `: ${r.written.map((b) => b.number).join(', ')}` : ''}.`];
      for (const h of r.heldCredit) {
        notes.push(`Left alone: bill ${h.bill.number} owes ${formatMoney(store.outstandingOf(h.bill), h.bill.currency)}, and its client holds ${formatMoney(h.creditMinor, h.bill.currency)} of unallocated credit: allocate that to it (the client's receipts) rather than writing it off.`);
      }
      for (const l of r.leftAlone) {
        const owes = formatMoney(store.outstandingOf(l.bill), l.bill.currency);
        notes.push(l.why === 'discount_expired'
          ? `Left alone: bill ${l.bill.number} owes ${owes}, but its discount expired on ${l.on} undecided (the client may owe ${formatMoney(l.bill.discountDebtorsMinor, l.bill.currency)} more): decide the discount on the bill's page first.`
          : `Left alone: bill ${l.bill.number} owes ${owes}; its write-off of ${l.on} was reversed, so it is not written off again here (write it off on the bill's page if meant).`);
      }
      return doneSaying(c, '/ledger/reports/aged-debtors', notes, 'aged-debtors');
    } catch (err) {
      if (refusal(err)) return periodsPage(c, refused(err, fv), refusedStatus(err));
      throw err;
    }
  });

  // ---- reports ---------------------------------------------------------------------------

  pages.get('/reports', allow(READERS), (c) => render(c, 'ledger/reports.njk', { reports: REPORT_NAMES.map((n) => ({ name: n, title: REPORT_TITLES[n] })) }));
  pages.get('/reports/:name', allow(READERS), async (c) => {
    const name = c.req.param('name');
    if (!isReportName(name)) throw notFound('Report');
    const q = c.req.query();
    const takesClient = REPORT_TAKES_CLIENT[name];
    const takesFrom = REPORT_TAKES_FROM[name];
    // The currencies a report can be in (a choice shown only when there is more than one).
    const currencies = await reports.currencies();
    // The client typed (number, name, "number name") or named by id (a link); a report that takes none refuses it below.
    const typed = takesClient ? await typedClient(q.client ?? '') : null;
    const clientId = typed ? typed.client?.id : q.client || undefined;
    const clientText = typed?.client ? String(typed.client.clientNumber) : (q.client ?? '').trim();
    // The downloads name the client found by its number (the same client however it was typed).
    const qs = new URLSearchParams({ ...(q.from ? { from: q.from } : {}), ...(q.to ? { to: q.to } : {}), ...(clientText ? { client: clientText } : {}), ...(q.currency ? { currency: q.currency } : {}) }).toString();
    let r: Report;
    try {
      const asked = { ...(q.from ? { from: q.from } : {}), ...(q.to ? { to: q.to } : {}), ...(q.currency ? { currency: q.currency } : {}) };
      // A client not found is said with whatever else is wrong (the dates, the currency), not one after the other.
      if (typed?.error) throw new ReportParamError({ ...await reports.paramErrors(name, asked), client: typed.error });
      r = await reports.run(name, { ...asked, ...(clientId ? { clientId } : {}) });
    } catch (e) {
      if (!(e instanceof ReportParamError)) throw e;
      // The report page again, its form holding what was asked, each bad parameter named.
      return render(c, 'ledger/report.njk', {
        r: { name, title: REPORT_TITLES[name], subtitle: '', currency: q.currency ?? '', params: { from: q.from ?? null, to: q.to ?? '', clientId: q.client ?? null }, columns: [], rows: [], totals: null, notes: [], chartSvg: null },
        qs, currencies, takesClient, takesFrom, clientText, clientChosen: null, errors: e.fields, error: `Please correct: ${Object.keys(e.fields).map(fieldLabel).join(', ')}`, cells: [], totals: null,
      }, 422);
    }
    // One client's download is named for that client (by number), so two clients' statements of a day are two files (review 62 F9).
    const file = `${name}${typed?.client ? `-client-${typed.client.clientNumber}` : ''}-${r.params.to}`;
    if (q.format === 'csv') {
      c.header('Content-Type', 'text/csv; charset=utf-8');
      c.header('Content-Disposition', `attachment; filename="${file}.csv"`);
      return c.body(reportToCsv(r));
    }
    if (q.format === 'pdf') {
      const pdf = await deps.outputs.pdf.render(reportHtml(r, deps.clock.now().toISOString()), { landscape: r.columns.length > 6, timeoutMs: 60_000, pageLabel: `${r.title} to ${r.params.to}` });
      c.header('Content-Type', 'application/pdf');
      c.header('Content-Disposition', `attachment; filename="${file}.pdf"`);
      return c.body(pdf as Uint8Array<ArrayBuffer>);
    }
    return render(c, 'ledger/report.njk', {
      notices: await notesFor(c, name),
      r, qs, currencies, takesClient, takesFrom, clientText, clientChosen: typed?.client ?? null, ageLabels: AGE_LABELS, errors: {}, error: null,
      cells: r.rows.map((row) => r.columns.map((col) => ({ kind: col.kind, text: cellText(r, col, row[col.key] ?? null) }))),
      totals: r.totals ? r.columns.map((col) => ({ kind: col.kind, text: cellText(r, col, r.totals![col.key] ?? null) })) : null,
    });
  });

  return pages;
}
