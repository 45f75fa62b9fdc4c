/**
 * Events the billing module publishes: type name to payload (plain data: ids and primitives).
 * Other modules may import these types (type-only) to subscribe.
 *
 * Amounts are integer minor units of the bill's currency; dates are YYYY-MM-DD; times ISO-8601.
 * Every bill event carries the whole bill as it is (or, for a reversal, exactly as it was
 * posted), so the ledger, e-billing and trust need nothing but the event.
 */

export type BillStatusName = 'draft' | 'approved' | 'finalised' | 'deleted';
export type BillItemKindName = 'time' | 'disbursement' | 'fixed_charge';
export type BillLineKindName =
  | 'time' | 'disbursement' | 'fixed_charge' | 'fixed_fee' | 'quote_fee' | 'adhoc_fee' | 'adhoc_disbursement' | 'discount' | 'interest';

/** A WIP item (owned by matters) on a bill. */
export interface BillItemRef {
  kind: BillItemKindName;
  id: string;
}

export interface BillLineData {
  lineNo: number;
  /** Stable within the bill: the item id, or kind:n for lines without an item. */
  key: string;
  kind: BillLineKindName;
  /** The WIP item the line bills (null: fixed fee, quote, ad hoc, discount, interest lines). */
  itemId: string | null;
  itemKind: BillItemKindName | null;
  /** The fixed-fee schedule instalment the line bills. */
  scheduleRowId: string | null;
  date: string;
  /** Fee lines: whose fee it is. */
  timekeeperId: string | null;
  /** The firm's code: disbursement code (COURT) or charge type code (LEASE). */
  code: string | null;
  /** Fixed charges: the charge type (product), for the ledger's account. */
  chargeTypeId: string | null;
  description: string;
  minutes: number | null;
  rateMinor: number | null;
  /** The item's recorded value. */
  recordedMinor: number;
  /** What the bill charges (after quotes, write-ups/downs, a hidden discount). A discount line is negative. */
  amountMinor: number;
  noCharge: boolean;
  taxCode: string | null;
  taxMinor: number;
  /** UTBMS codes, for LEDES. */
  taskCode: string | null;
  activityCode: string | null;
  expenseCode: string | null;
}

export interface BillTotals {
  feesMinor: number;
  fixedChargesMinor: number;
  disbursementsMinor: number;
  /** Positive: what the discount line takes off. */
  discountMinor: number;
  interestMinor: number;
  taxMinor: number;
  /** fees + fixed charges + disbursements - discount + interest + tax. */
  totalMinor: number;
  /** Fees less their share of a discount line: what the allocation splits. */
  netFeesMinor: number;
}

/** The whole bill. */
export interface BillData {
  billId: string;
  status: BillStatusName;
  /** file.sequence (12.8.1) once approved; kept for ever after. */
  number: string | null;
  sequence: number | null;
  matterId: string;
  clientId: string;
  fileNumber: string;
  currency: string;
  invoiceDate: string;
  upTo: string;
  dueDate: string;
  lines: BillLineData[];
  /** Fee income per timekeeper; sums to totals.netFeesMinor. */
  allocations: { timekeeperId: string; amountMinor: number }[];
  totals: BillTotals;
  /** A discount line (shown as a discount), time-sensitive when validUntil is set. */
  discount: { amountMinor: number; validUntil: string | null; undiscountedTotalMinor: number } | null;
  /** The recorded retainer balance used, and what the bill asks to replenish it. */
  retainerBalanceMinor: number | null;
  retainerRequestMinor: number;
  /**
   * The part of the total the general retainer pays (it applies to the bill, seed 002): the bill
   * shows it and what is left to pay. 0 when it does not apply; absent in events from before it was kept.
   */
  retainerAppliedMinor?: number;
  /** Fixed-fee schedule instalments billed. */
  scheduleRowIds: string[];
  /** The WIP items on the bill. */
  items: BillItemRef[];
  hideLinePricing: boolean;
  batchId: string | null;
  version: number;
}

/**
 * A draft was composed: the bill without its lines. A draft's lines are billing's own
 * business until it is approved (bill_approved carries them); what others need of a draft is
 * its items (matters marks them draft), its totals and its allocations.
 */
export type BillDrafted = Omit<BillData, 'lines'>;

/** A draft changed: the bill as it now is, and the items that came on and went off it. */
export interface DraftUpdated extends BillData {
  addedItems: BillItemRef[];
  releasedItems: BillItemRef[];
}

/** A draft was deleted: its items are unbilled again. A numbered draft (reverted earlier) stays as a void bill. */
export interface DraftDeleted {
  billId: string;
  matterId: string;
  clientId: string;
  fileNumber: string;
  /** Set when the draft had been approved before: the number is void, never reused. */
  number: string | null;
  releasedItems: BillItemRef[];
}

/** draft -> approved: numbered and posted. */
export interface BillApproved extends BillData {
  /** Receipts the ledger took off the bill when it went back to draft (revert, re-draft), to put back on it as it posts it; 0 on a first approval. */
  receiptsToReallocateMinor: number;
}

/** approved -> draft: the postings of the bill (exactly as approved) are undone. */
export interface BillReverted extends BillData {
  /** The bill as it was posted (status approved); the payload's own status is draft. */
  reversed: BillData;
}

/** finalised -> draft: the bill's postings (exactly as finalised) are reversed. */
export interface BillRedrafted extends BillData {
  reversed: BillData;
  /** Receipts allocated to the bill that must be allocated again when it is finalised again. */
  receiptsToReallocateMinor: number;
}

/** An approved or finalised bill was deleted: its postings are reversed, its items unbilled, its number void. */
export interface BillDeleted extends BillData {
  previousStatus: 'approved' | 'finalised';
  reversed: BillData;
  releasedItems: BillItemRef[];
}

/** A bill or email template was saved (templates are only ever added or changed, never removed): its kind and name. */
export interface TemplateSaved {
  kind: 'bill' | 'email';
  name: string;
}

export type BillingEvents = {
  /** A draft was composed: its items are on it (matters: status draft). */
  'billing.bill_drafted': BillDrafted;
  /** A draft was recomposed. */
  'billing.draft_updated': DraftUpdated;
  'billing.draft_deleted': DraftDeleted;
  /** Numbered and posted (ledger: debit debtors, credit fees per allocation, disbursements, interest, tax; discount). */
  'billing.bill_approved': BillApproved;
  'billing.bill_reverted': BillReverted;
  /** Produced and locked. */
  'billing.bill_finalised': BillData;
  'billing.bill_redrafted': BillRedrafted;
  'billing.bill_deleted': BillDeleted;
  /** Matters keeps the names, to refuse a matter's template that does not exist. */
  'billing.template_saved': TemplateSaved;
};
