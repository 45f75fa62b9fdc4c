/**
 * The bills register, mounted at /billing/bills: every bill of the firm across matters, with
 * its ledger balance (paid, written off, outstanding), filtered by text, status, balance and
 * invoice dates, sorted, paged, and totalled per currency. One URL: the page, or for htmx the
 * list alone (`billing/_register.njk`). A filter that cannot be read is named at its input and
 * left out (422), never an error page in place of the list.
 */
import { Hono } from 'hono';
import type { Context } from 'hono';
import Type from 'typebox';
import type { Static } from 'typebox';
import { isoDate } from '../../shared/clock.ts';
import type { Executor } from '../../shared/db.ts';
import { HttpError } from '../../shared/web/errors.ts';
import { allow } from '../../shared/web/guard.ts';
import { isHtmx, page } from '../../shared/web/render.ts';
import type { AppEnv, Role } from '../../shared/web/types.ts';
import { parseForm } from '../../shared/web/validate.ts';
import type { Clock } from '../../shared/clock.ts';
import { isCalendarDate } from './domain/lifecycle.ts';
import {
  listRegister, REGISTER_BALANCE_LABELS, REGISTER_BALANCES, REGISTER_PAGE_ROWS, REGISTER_SORT_LABELS, REGISTER_SORTS, REGISTER_STATUS_LABELS, REGISTER_STATUSES,
} from './register-store.ts';
import type { RegisterFilters, RegisterSort } from './register-store.ts';

const READERS: readonly Role[] = ['admin', 'billing', 'readonly'];
const WRITERS: readonly Role[] = ['admin', 'billing'];
const STATUS_LABELS: Record<string, string> = { draft: 'Draft', approved: 'Approved', finalised: 'Finalised', deleted: 'Void' };

const lit = <T extends string>(values: readonly T[], description?: string) => Type.Union(values.map((v) => Type.Literal(v)), description ? { description } : {});
const dateText = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', errorMessage: 'must be a date (YYYY-MM-DD)' });
export const RegisterQuery = Type.Object({
  q: Type.Optional(Type.String({ maxLength: 100 })),
  // The filter's words are the page's; the rows' status says `deleted` for a void bill (review 57 F7).
  status: Type.Optional(lit(REGISTER_STATUSES, 'all (the default); draft; approved; finalised; issued (approved or finalised); void (bills deleted: their rows say status "deleted")')),
  balance: Type.Optional(lit(REGISTER_BALANCES)),
  from: Type.Optional(dateText),
  to: Type.Optional(dateText),
  sort: Type.Optional(lit(Object.keys(REGISTER_SORTS) as RegisterSort[])),
  dir: Type.Optional(lit(['asc', 'desc'] as const)),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000 })),
}, { additionalProperties: false });
export type RegisterQueryInput = Static<typeof RegisterQuery>;
/** The register's filter inputs, each with its error slot on the page. */
const FILTER_FIELDS = ['q', 'status', 'balance', 'from', 'to', 'sort', 'dir', 'offset'] as const;

/**
 * The filters from a query string: those that cannot be read are named (errors) and left out.
 * Dates must be real days, and the range must not end before it starts.
 */
export function registerFilters(query: Record<string, string>): { f: RegisterQueryInput; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  let f: RegisterQueryInput;
  const known = Object.fromEntries(Object.entries(query).filter(([k]) => (FILTER_FIELDS as readonly string[]).includes(k)));
  for (const k of Object.keys(query)) if (!(FILTER_FIELDS as readonly string[]).includes(k)) errors[k] = 'is not a filter of the bills list';
  try {
    f = parseForm(RegisterQuery, known);
  } catch (e) {
    if (!(e instanceof HttpError) || e.status !== 422) throw e;
    Object.assign(errors, e.fields);
    f = parseForm(RegisterQuery, Object.fromEntries(Object.entries(known).filter(([k]) => !Object.hasOwn(e.fields, k))));
  }
  for (const k of ['from', 'to'] as const) {
    if (f[k] !== undefined && !isCalendarDate(f[k])) { errors[k] = 'must be a date (YYYY-MM-DD)'; f = { ...f, [k]: undefined }; }
  }
  if (f.from && f.to && f.to < f.from) { errors.to = `must be on or after the date from (${f.from})`; f = { ...f, to: undefined }; }
  return { f, errors };
}

export function toRegisterFilters(f: RegisterQueryInput, limit = REGISTER_PAGE_ROWS): RegisterFilters {
  return {
    ...(f.q ? { q: f.q } : {}), status: f.status ?? 'all', balance: f.balance ?? 'any', ...(f.from ? { from: f.from } : {}), ...(f.to ? { to: f.to } : {}),
    sort: f.sort ?? 'invoice', dir: f.dir ?? (f.sort && f.sort !== 'invoice' && f.sort !== 'due' && f.sort !== 'total' && f.sort !== 'outstanding' ? 'asc' : 'desc'),
    limit, offset: f.offset ?? 0,
  };
}

function queryString(params: Record<string, string | number | undefined>): string {
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') sp.set(k, String(v));
  const s = sp.toString();
  return s ? `?${s}` : '';
}

export function createRegisterPages(deps: { db: Executor; clock: Clock }): Hono<AppEnv> {
  const pages = new Hono<AppEnv>();

  pages.get('/', allow(READERS), async (c: Context<AppEnv>) => {
    const { f, errors } = registerFilters(c.req.query());
    const filters = toRegisterFilters(f);
    const today = isoDate(deps.clock.now());
    const result = await listRegister(deps.db, filters, today);
    const params = { q: f.q, status: f.status, balance: f.balance, from: f.from, to: f.to, sort: f.sort, dir: f.dir };
    const offset = filters.offset ?? 0;
    const limit = filters.limit ?? REGISTER_PAGE_ROWS;
    const pager = {
      // Past the end (an old link after bills went): no rows, said as such rather than "201–109 of 109".
      total: result.total, from: result.total === 0 || offset >= result.total ? 0 : offset + 1, to: offset >= result.total ? 0 : Math.min(offset + limit, result.total),
      prevUrl: offset > 0 ? `/billing/bills${queryString({ ...params, offset: Math.max(0, offset - limit) || undefined })}` : null,
      nextUrl: offset + limit < result.total ? `/billing/bills${queryString({ ...params, offset: offset + limit })}` : null,
    };
    // htmx swaps only the list: the address bar follows the filters, so a reload or a shared link keeps them.
    if (isHtmx(c)) c.header('HX-Replace-Url', `/billing/bills${queryString({ ...params, offset: offset || undefined })}`);
    return page(c, { page: 'billing/register.njk', fragment: 'billing/_register.njk' }, {
      rows: result.rows, totals: result.totals, pager, errors, filterFields: FILTER_FIELDS, oob: isHtmx(c), today,
      // Errors no input on the form shows (the offset rides in the pager's links, not in an input) listed above the list.
      otherErrors: Object.entries(errors).filter(([k]) => k === 'offset' || !(FILTER_FIELDS as readonly string[]).includes(k)).map(([name, message]) => ({ name, message })),
      f: { ...params, status: filters.status, balance: filters.balance, sort: filters.sort, dir: filters.dir },
      statuses: REGISTER_STATUSES.map((s) => ({ value: s, label: REGISTER_STATUS_LABELS[s] })),
      balances: REGISTER_BALANCES.map((s) => ({ value: s, label: REGISTER_BALANCE_LABELS[s] })),
      sorts: (Object.keys(REGISTER_SORTS) as RegisterSort[]).map((s) => ({ value: s, label: REGISTER_SORT_LABELS[s] })),
      statusLabels: STATUS_LABELS, can: { write: WRITERS.includes(c.get('user')!.role) },
    }, Object.keys(errors).length > 0 ? 422 : 200);
  });

  return pages;
}
