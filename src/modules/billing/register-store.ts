/**
 * The firm's bills register: every bill across matters (drafts, approved, finalised, void),
 * with what the debtors ledger last reported of its balance (billing's copy,
 * `billing_bill_balance`): paid, written off, outstanding. Filtered, sorted, paged, with
 * totals per currency over everything the filters take (not only the page shown).
 */
import { foldName } from '../../shared/client-names.ts';
import { literalLike } from '../../shared/clients.ts';
import type { Executor } from '../../shared/db.ts';
import { selectRaw } from '../../shared/sql.ts';

export const REGISTER_STATUSES = ['all', 'draft', 'approved', 'finalised', 'issued', 'void'] as const;
export type RegisterStatus = (typeof REGISTER_STATUSES)[number];
export const REGISTER_STATUS_LABELS: Record<RegisterStatus, string> = {
  all: 'All', draft: 'Draft', approved: 'Approved', finalised: 'Finalised', issued: 'Approved or finalised', void: 'Void',
};
export const REGISTER_BALANCES = ['any', 'outstanding', 'overdue', 'paid', 'settled', 'written_off'] as const;
export type RegisterBalance = (typeof REGISTER_BALANCES)[number];
/** "Paid in full" is paid: nothing outstanding and nothing written off (review 58 F3: a bill written off in full is not paid). */
export const REGISTER_BALANCE_LABELS: Record<RegisterBalance, string> = {
  any: 'Any', outstanding: 'Outstanding', overdue: 'Overdue', paid: 'Paid in full', settled: 'Nothing outstanding (paid or written off)', written_off: 'Written off (in part or in full)',
};
/** An unnumbered draft sorts after its matter's numbered bills (both databases: they put nulls at opposite ends). */
const UNNUMBERED_LAST = 2_000_000_000;
/** Sort keys, each a list of SQL expressions (the bill number sorts as numbers: client, matter, sequence). */
export const REGISTER_SORTS = {
  invoice: ['b.invoice_date'], number: ['m.client_number', 'm.matter_number', `coalesce(b.sequence, ${UNNUMBERED_LAST})`], due: ['b.due_date'],
  client: ['m.client_name'], matter: ['m.client_number', 'm.matter_number'], total: ['b.currency', 'coalesce(bb.total_minor, b.total_minor)'], outstanding: ['b.currency', 'coalesce(bb.outstanding_minor, 0)'],
} as const;
export type RegisterSort = keyof typeof REGISTER_SORTS;
export const REGISTER_SORT_LABELS: Record<RegisterSort, string> = {
  invoice: 'Invoice date', number: 'Bill number', due: 'Due date', client: 'Client', matter: 'Matter (file number)', total: 'Total', outstanding: 'Outstanding',
};
/** Rows a page shows, and the most one request may ask for. */
export const REGISTER_PAGE_ROWS = 100;
export const REGISTER_MAX_ROWS = 1_000;

export interface RegisterFilters {
  q?: string;
  status?: RegisterStatus;
  balance?: RegisterBalance;
  clientId?: string;
  matterId?: string;
  /** Invoice dates, inclusive (YYYY-MM-DD). */
  from?: string;
  to?: string;
  sort?: RegisterSort;
  dir?: 'asc' | 'desc';
  limit?: number;
  offset?: number;
}

export interface RegisterRow {
  billId: string;
  number: string | null;
  status: 'draft' | 'approved' | 'finalised' | 'deleted';
  onHold: boolean;
  matterId: string;
  fileNumber: string;
  matterName: string;
  clientId: string;
  clientName: string;
  invoiceDate: string;
  dueDate: string;
  currency: string;
  /** What the bill asks for: as the ledger last reported it once posted (a time-sensitive discount reversed counts back), else as composed. */
  totalMinor: number;
  /** The ledger's balance (posted bills only; null for drafts, void bills, or before the ledger has reported it). */
  balance: { paidMinor: number; writtenOffMinor: number; outstandingMinor: number } | null;
  overdue: boolean;
}

/** Totals of the approved and finalised bills the filters take, per currency. */
export interface RegisterTotal {
  currency: string;
  bills: number;
  totalMinor: number;
  paidMinor: number;
  writtenOffMinor: number;
  outstandingMinor: number;
}

const num = (v: unknown): number => Number(v ?? 0);

function registerFrom(f: RegisterFilters, today: string): { from: string; params: unknown[] } {
  // A deleted draft that was never numbered was never a bill: it is not in the register.
  const where: string[] = ["not (b.status = 'deleted' and b.number is null)"];
  const params: unknown[] = [];
  switch (f.status ?? 'all') {
    case 'draft': where.push("b.status = 'draft'"); break;
    case 'approved': where.push("b.status = 'approved'"); break;
    case 'finalised': where.push("b.status = 'finalised'"); break;
    case 'issued': where.push("b.status in ('approved', 'finalised')"); break;
    case 'void': where.push("b.status = 'deleted'"); break;
    case 'all': break;
  }
  switch (f.balance ?? 'any') {
    case 'outstanding': where.push('bb.outstanding_minor > 0'); break;
    case 'overdue': where.push('bb.outstanding_minor > 0 and b.due_date < ?'); params.push(today); break;
    case 'paid': where.push("b.status in ('approved', 'finalised') and bb.outstanding_minor = 0 and bb.written_off_minor = 0"); break;
    case 'settled': where.push("b.status in ('approved', 'finalised') and bb.outstanding_minor = 0"); break;
    case 'written_off': where.push("b.status in ('approved', 'finalised') and bb.written_off_minor > 0"); break;
    case 'any': break;
  }
  if (f.clientId) { where.push('b.client_id = ?'); params.push(f.clientId); }
  if (f.matterId) { where.push('b.matter_id = ?'); params.push(f.matterId); }
  if (f.from) { where.push('b.invoice_date >= ?'); params.push(f.from); }
  if (f.to) { where.push('b.invoice_date <= ?'); params.push(f.to); }
  if (f.q) {
    // The text as typed: % and _ are searched for, not wildcards (both databases take ESCAPE). The client's name
    // through its folded copy (case and accents aside, as every client look-up: review 58 F9): SQLite's lower() folds ASCII only.
    const like = `%${literalLike(f.q.toLowerCase())}%`;
    const folded = `%${literalLike(foldName(f.q))}%`;
    where.push("(lower(coalesce(b.number, '')) like ? escape '\\' or lower(b.file_number) like ? escape '\\' or lower(coalesce(m.name, '')) like ? escape '\\' or lower(coalesce(m.client_name, '')) like ? escape '\\' or b.client_id in (select c.id from billing_client c where c.name_fold like ? escape '\\'))");
    params.push(like, like, like, like, folded);
  }
  return {
    from: `from billing_bill b left join billing_matter m on m.id = b.matter_id
      left join billing_bill_balance bb on bb.bill_id = b.id and bb.status = 'open'
      where ${where.join(' and ')}`,
    params,
  };
}

/** One page of the register, the count of bills the filters take, and their totals per currency. */
export async function listRegister(ex: Executor, f: RegisterFilters, today: string): Promise<{ rows: RegisterRow[]; total: number; totals: RegisterTotal[] }> {
  const { from, params } = registerFrom(f, today);
  const total = num((await selectRaw<{ n: unknown }>(ex, `select count(*) as n ${from}`, params))[0]?.n);
  const dir = f.dir === 'asc' ? 'asc' : 'desc';
  const order = [...(REGISTER_SORTS[f.sort ?? 'invoice'] ?? REGISTER_SORTS.invoice).map((col) => `${col} ${dir}`), 'b.file_number', 'b.sequence', 'b.id'].join(', ');
  const limit = Math.max(1, Math.min(REGISTER_MAX_ROWS, Math.floor(f.limit ?? REGISTER_PAGE_ROWS)));
  const offset = Math.max(0, Math.floor(f.offset ?? 0));
  const rows = await selectRaw<Record<string, unknown>>(ex, `select b.id, b.number, b.status, b.on_hold, b.matter_id, b.file_number, m.name as matter_name,
      b.client_id, m.client_name, b.invoice_date, b.due_date, b.currency, coalesce(bb.total_minor, b.total_minor) as total_minor,
      bb.bill_id as balance_of, bb.paid_minor, bb.written_off_minor, bb.outstanding_minor
    ${from} order by ${order} limit ${limit} offset ${offset}`, params);
  const totals = await selectRaw<Record<string, unknown>>(ex, `select b.currency, count(*) as n, sum(coalesce(bb.total_minor, b.total_minor)) as total, sum(coalesce(bb.paid_minor, 0)) as paid,
      sum(coalesce(bb.written_off_minor, 0)) as written_off, sum(coalesce(bb.outstanding_minor, 0)) as outstanding
    ${from} and b.status in ('approved', 'finalised') group by b.currency order by b.currency`, params);
  return {
    total,
    rows: rows.map((r) => {
      const balance = r.balance_of ? { paidMinor: num(r.paid_minor), writtenOffMinor: num(r.written_off_minor), outstandingMinor: num(r.outstanding_minor) } : null;
      return {
        billId: String(r.id), number: (r.number as string | null) ?? null, status: r.status as RegisterRow['status'], onHold: num(r.on_hold) === 1,
        matterId: String(r.matter_id), fileNumber: String(r.file_number), matterName: String(r.matter_name ?? ''), clientId: String(r.client_id), clientName: String(r.client_name ?? ''),
        invoiceDate: String(r.invoice_date), dueDate: String(r.due_date), currency: String(r.currency), totalMinor: num(r.total_minor),
        balance, overdue: balance !== null && balance.outstandingMinor > 0 && String(r.due_date) < today,
      };
    }),
    totals: totals.map((t) => ({
      currency: String(t.currency), bills: num(t.n), totalMinor: num(t.total), paidMinor: num(t.paid), writtenOffMinor: num(t.written_off), outstandingMinor: num(t.outstanding),
    })),
  };
}
