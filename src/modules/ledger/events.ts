/**
 * Events the ledger module publishes: type name to payload (plain data: ids and primitives).
 * Other modules may import these types (type-only) to subscribe.
 *
 * Amounts are integer minor units of the bill's or receipt's currency; dates YYYY-MM-DD.
 */

/**
 * A bill's balance on the debtors ledger changed: posted, receipted, allocated, released,
 * written off, its discount reversed or honoured, or its postings reversed. Published in the
 * transaction that changed it. outstandingMinor = totalMinor - paidMinor - writtenOffMinor.
 */
export interface BillBalanceChanged {
  billId: string;
  matterId: string;
  clientId: string;
  billNumber: string;
  currency: string;
  /** What the bill now asks for: its posted total plus any time-sensitive discount reversed. 0 once its postings are reversed. */
  totalMinor: number;
  /** Receipts allocated to the bill (live allocations). */
  paidMinor: number;
  /** The discount still taken on the bill (0 when there is none or it was reversed). */
  discountTakenMinor: number;
  writtenOffMinor: number;
  outstandingMinor: number;
  /** The latest receipt allocated to the bill, or null. */
  lastReceiptOn: string | null;
  /** A time-sensitive discount: pending (not yet decided), honoured, reversed; none otherwise. */
  discountStatus: 'none' | 'pending' | 'honoured' | 'reversed';
  discountValidUntil: string | null;
  /** open: posted; reversed: reverted, re-drafted or deleted (everything on it undone). */
  status: 'open' | 'reversed';
  dueDate: string;
  /** The date of the change. */
  occurredOn: string;
}

export interface ReceiptRecorded {
  receiptId: string;
  number: string;
  clientId: string;
  billId: string | null;
  receivedOn: string;
  amountMinor: number;
  currency: string;
  allocations: { billId: string; amountMinor: number }[];
  unallocatedMinor: number;
}

export interface ReceiptReversed {
  receiptId: string;
  number: string;
  clientId: string;
  reversedOn: string;
  amountMinor: number;
  currency: string;
  reason: string;
}

/** A receipt's unallocated credit paid back to the client (a refund), or such a refund taken back (`reversed`). */
export interface CreditRefunded {
  refundId: string;
  receiptId: string;
  receiptNumber: string;
  clientId: string;
  /** The day the money left (or, reversed, came back). */
  on: string;
  amountMinor: number;
  currency: string;
  /** The receipt's unallocated credit after it. */
  unallocatedMinor: number;
  reversed: boolean;
}

export interface JournalPosted {
  journalId: string;
  number: string;
  prefix: 'BJ' | 'RJ' | 'AJ' | 'WJ' | 'DJ';
  date: string;
  period: string;
  memo: string;
  currency: string;
  totalMinor: number;
  billId: string | null;
  receiptId: string | null;
  reversesJournalId: string | null;
  /** Set when the journal went to another period than its date's (closed period) or outside the current one. */
  note: string | null;
}

/**
 * The accounting periods changed: a month closed or opened again, or the current period
 * moved. Billing keeps a copy to tell the clerk, before and as bills are approved, which post
 * outside the current period or into a closed one.
 */
export interface PeriodsChanged {
  /** The current period as set (YYYY-MM), or null: the month of the firm's today. */
  currentPeriod: string | null;
  /** Every closed month, ascending. */
  closedPeriods: string[];
}

export type LedgerEvents = {
  'ledger.bill_balance_changed': BillBalanceChanged;
  'ledger.receipt_recorded': ReceiptRecorded;
  'ledger.receipt_reversed': ReceiptReversed;
  'ledger.credit_refunded': CreditRefunded;
  'ledger.journal_posted': JournalPosted;
  'ledger.periods_changed': PeriodsChanged;
};
