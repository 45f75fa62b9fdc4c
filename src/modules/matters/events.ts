/**
 * Events the matters module publishes: type name to payload (plain data: ids and primitives).
 * Other modules may import these types (type-only) to subscribe.
 *
 * Amounts are integer minor units of the matter's currency; dates are YYYY-MM-DD; times ISO-8601.
 * Enum-like strings are spelled out here so subscribers need nothing but this file.
 */

export type TimekeeperClassificationName = 'partner' | 'associate' | 'paralegal' | 'other';
export type LedesClassificationCode = 'PT' | 'AS' | 'OC' | 'PL' | 'LA' | 'OT';
export type BillingCycleName = 'none' | 'WEEK' | 'MONTH' | 'QUARTER' | 'HALF' | 'YEAR';
export type EntryBehaviourName = 'bill' | 'hide' | 'no_charge';
export type WipStatusName = 'unbilled' | 'draft' | 'billed';
export type RateSourceName = 'matter' | 'client' | 'timekeeper' | 'override';

export interface TimekeeperCreated {
  timekeeperId: string;
  initials: string;
  name: string;
  classification: TimekeeperClassificationName;
  ledesClassification: LedesClassificationCode;
  active: boolean;
}

export interface ClientCreated {
  clientId: string;
  clientNumber: number;
  name: string;
  email: string | null;
  address: string | null;
  taxId: string | null;
  createdAt: string;
}

export interface MatterOpened {
  matterId: string;
  clientId: string;
  clientNumber: number;
  clientName: string;
  matterNumber: number;
  /** client.matter, e.g. "12.8"; bills number as fileNumber.sequence. */
  fileNumber: string;
  name: string;
  status: 'open' | 'closed';
  practiceArea: string | null;
  openedOn: string;
  responsibleTimekeeperId: string;
  billingTimekeeperId: string;
  originatingTimekeeperId: string | null;
  billingCycle: BillingCycleName;
  nextBillingDate: string | null;
  /** Unbilled WIP at which the matter must be billed; null for no cap. */
  wipCapMinor: number | null;
  currency: string;
  timeUnitMinutes: number;
  roundingMode: 'up' | 'nearest' | 'down';
  defaultBehaviour: EntryBehaviourName;
}

/** A standard (timekeeper), client or matter rate was set (rateMinor null: removed). */
export interface RateSet {
  level: 'timekeeper' | 'client' | 'matter';
  timekeeperId: string;
  clientId: string | null;
  matterId: string | null;
  /** Only for standard rates. */
  effectiveFrom: string | null;
  rateMinor: number | null;
}

export interface TimeWip {
  kind: 'time';
  /** The time entry's id. */
  id: string;
  matterId: string;
  clientId: string;
  timekeeperId: string;
  workDate: string;
  rawMinutes: number;
  /** Rounded to the matter's time unit; what is charged. */
  billedMinutes: number;
  /** Hourly rate in minor units. */
  rateMinor: number;
  rateSource: RateSourceName;
  overrideReason: string | null;
  /** billedMinutes x rate / 60, rounded half up; recorded whatever the behaviour. */
  amountMinor: number;
  currency: string;
  narrative: string;
  taskCode: string | null;
  activityCode: string | null;
  behaviour: EntryBehaviourName;
  status: WipStatusName;
}

export interface DisbursementWip {
  kind: 'disbursement';
  /** The disbursement's id. */
  id: string;
  matterId: string;
  clientId: string;
  incurredOn: string;
  /** The firm's own code, e.g. COURT, COURIER, COPY. */
  code: string;
  expenseCode: string | null;
  /** Integer thousandths of a unit: 1.5 = 1500. */
  quantityMilli: number;
  unitCostMinor: number;
  /** quantity x unit cost, rounded half up. */
  amountMinor: number;
  currency: string;
  taxCode: string | null;
  description: string;
  payee: string | null;
  behaviour: EntryBehaviourName;
  status: WipStatusName;
}

/**
 * A fixed charge (a product or priced service, seed 003), e.g. "Lease review". Recorded
 * charges are WIP like time; `quoted` charges are the products quoted/estimated for the
 * matter: billing includes them in the bill's product set but they add nothing to WIP or
 * to the WIP cap until billed.
 */
export interface FixedChargeWip {
  kind: 'fixed_charge';
  /** The fixed charge's id. */
  id: string;
  matterId: string;
  clientId: string;
  chargedOn: string;
  chargeTypeId: string;
  /** The charge type's code, e.g. LEASE. */
  chargeCode: string;
  chargeName: string;
  /** Integer thousandths of a unit: 1.5 = 1500. */
  quantityMilli: number;
  unitPriceMinor: number;
  /** quantity x unit price, rounded half up. */
  amountMinor: number;
  currency: string;
  /** Null: the firm's default fee tax code. */
  taxCode: string | null;
  taskCode: string | null;
  activityCode: string | null;
  description: string;
  quoted: boolean;
  behaviour: EntryBehaviourName;
  status: WipStatusName;
}

export type WipItem = TimeWip | DisbursementWip | FixedChargeWip;

export interface WipDeleted {
  kind: 'time' | 'disbursement' | 'fixed_charge';
  id: string;
  matterId: string;
}

/**
 * Items moved to a billing status together (billing put them on a draft, approved the bill,
 * released them): one event for all of them, since nothing else of the items changed. The
 * items' other fields are as last published (wip_recorded / wip_updated).
 */
export interface WipStatusChanged {
  status: WipStatusName;
  items: { kind: 'time' | 'disbursement' | 'fixed_charge'; id: string; matterId: string }[];
}

/** A timekeeper's name, classification or active flag changed: the timekeeper as it now is. */
export interface TimekeeperChanged extends TimekeeperCreated {
  updatedAt: string;
}

/** A client's details changed: the client as it now is. */
export interface ClientChanged {
  clientId: string;
  clientNumber: number;
  name: string;
  email: string | null;
  address: string | null;
  taxId: string | null;
  updatedAt: string;
}

/** A client's contact was added, changed or removed (`removed` true: the last state). */
export interface ContactChanged {
  contactId: string;
  clientId: string;
  name: string;
  email: string | null;
  phone: string | null;
  address: string | null;
  /** What the contact is to the client, e.g. "Accounts payable", "General counsel". */
  role: string | null;
  removed: boolean;
  updatedAt: string;
}

/** Who a matter's bills go to: one of the client's contacts, or the client itself. */
export interface BillableParty {
  kind: 'client' | 'contact';
  /** Null when the client itself is the billable party. */
  contactId: string | null;
  name: string;
  email: string | null;
  address: string | null;
}

export interface MatterParticipantInfo {
  contactId: string;
  /** The contact's part in the matter, e.g. "Instructing", "Witness". */
  role: string;
  name: string;
  email: string | null;
}

/**
 * A matter changed (details, timekeepers, cycle, cap, status, billable party, participants,
 * or the client/contact details its bills carry): the whole matter as it now is.
 */
export interface MatterChanged extends MatterOpened {
  closedOn: string | null;
  billableParty: BillableParty;
  participants: MatterParticipantInfo[];
  updatedAt: string;
}

/** A fixed-charge type (product) was created or changed. */
export interface ChargeTypeChanged {
  chargeTypeId: string;
  code: string;
  name: string;
  /** Default unit price in minor units of the firm's currency. */
  defaultPriceMinor: number;
  taxCode: string | null;
  taskCode: string | null;
  activityCode: string | null;
  active: boolean;
  updatedAt: string;
}

/* ------------------------------------------------------------------------------------
 * Billing options (seed 002) and firm billing settings. A matter's effective options are
 * the firm's `matterDefaults` with the matter's overridden sections laid over them, key by
 * top-level key ("Settings will automatically be inherited from Billing Settings").
 * ---------------------------------------------------------------------------------- */

export type BillingStatusMode = 'use_matter_status' | 'active' | 'closed';
export type ApplyFundsTo = 'new_charges' | 'new_charges_and_ar';
export type FundsAutomation = 'automatic' | 'manual';
export type BillingArrangementName = 'hourly' | 'fixed_fee';
/** What to bill when WIP is below / above the quote. */
export type QuoteChoice = 'bill_quote' | 'quote_plus_wip' | 'wip_only';
export type QuoteIncludes = 'fees' | 'fees_and_costs' | 'costs';
export type FixedFeeMode = 'every_cycle' | 'custom_schedule';
export type DiscountKind = 'none' | 'percentage' | 'fixed';
export type FeeAllocationRule = 'pro_rata' | 'responsible' | 'selected';
export type AdjustmentAllocationRule = 'original_split' | 'responsible' | 'selected';
export type LedesFormatName = 'LEDES1998B' | 'LEDES1998BI';

/** One instalment of a fixed-fee custom schedule. */
export interface FixedFeeRow {
  rowId: string;
  amountMinor: number;
  /** Populates the time entry created for the bill. */
  description: string;
  /** Bill on (or after) this date. */
  billOn: string;
  /** Must be billed on (or before) this step, free text such as "Filing". */
  billOnStep: string | null;
  /** Must be paid on (or before) this step. */
  payOnStep: string | null;
  /** Set once billed: the bill number, e.g. "12.8.3". */
  invoiceNumber: string | null;
}

export interface MatterBillingOptions {
  /** Billing on/off; cannot be turned off while billable or billed items remain. */
  billingEnabled: boolean;
  billingStatus: BillingStatusMode;
  billTemplate: string;
  /** Validated email addresses; empty means bills are not emailed. */
  sendTo: string[];
  /** Send to the client's email address too (with every address of `sendTo`). */
  useClientAddress: boolean;
  emailTemplate: string;
  /** 0 = do not print. */
  copiesToPrint: 0 | 1 | 2;
  customRatesEnabled: boolean;
  generalRetainer: { enabled: boolean; toPay: ApplyFundsTo; automation: FundsAutomation };
  retainerReplenishment: { enabled: boolean; minimumBalanceMinor: number; triggerMinor: number };
  trust: { toPay: ApplyFundsTo; automation: FundsAutomation };
  massBilling: { exclude: boolean; onlyExpenses: boolean };
  arrangement: BillingArrangementName;
  defaultTimeEntryBehaviour: EntryBehaviourName;
  quote: { amountMinor: number | null; includes: QuoteIncludes; ifWipBelow: QuoteChoice; ifWipAbove: QuoteChoice };
  feeReductions: { appearAsDiscount: boolean; hideLinePricing: boolean };
  fixedFee: { mode: FixedFeeMode; schedule: FixedFeeRow[] };
  discount: { kind: DiscountKind; percentBasisPoints: number; amountMinor: number };
  feeAllocation: {
    allocateFees: FeeAllocationRule;
    feesTimekeeperId: string | null;
    allocateAdjustments: AdjustmentAllocationRule;
    adjustmentsTimekeeperId: string | null;
    originationEnabled: boolean;
    originatorTimekeeperId: string | null;
    originationBasisPoints: number;
  };
  ebilling: { enabled: boolean; codeSet: string; format: LedesFormatName; clientLedesId: string; matterLedesId: string };
}

export type BillingOptionSection = keyof MatterBillingOptions;

export interface TaxRate {
  /** e.g. "GST", "VAT20", "EXEMPT". */
  code: string;
  name: string;
  basisPoints: number;
}

export interface FirmBillingSettings {
  currency: string;
  taxRates: TaxRate[];
  /** Tax code applied to fees unless an item says otherwise. */
  defaultFeeTaxCode: string;
  /** Round tax on each line, or once on the bill's taxable total per code. */
  taxRounding: 'per_line' | 'per_bill';
  paymentTermsDays: number;
  timeUnitMinutes: number;
  timeRounding: 'up' | 'nearest' | 'down';
  generalRetainersEnabled: boolean;
  /** Recording past a matter's WIP cap warns or is refused. */
  wipCapPolicy: 'warn' | 'refuse';
  interest: { enabled: boolean; annualRateBasisPoints: number; graceDays: number };
  /** Posting into a period other than the current one warns or is refused (seed 004). */
  postingOutsideCurrentPeriod: 'warn' | 'refuse';
  /** What every matter inherits unless it overrides a section. */
  matterDefaults: MatterBillingOptions;
}

export interface BillingOptionsChanged {
  matterId: string;
  /** The sections this matter overrides (others follow the firm's defaults). */
  overridden: BillingOptionSection[];
  /** The options now in force for the matter: what billing uses for future bills. */
  effective: MatterBillingOptions;
}

export interface FirmSettingsChanged {
  settings: FirmBillingSettings;
}

export type MattersEvents = {
  'matters.timekeeper_created': TimekeeperCreated;
  'matters.client_created': ClientCreated;
  'matters.matter_opened': MatterOpened;
  'matters.rate_set': RateSet;
  /** A time entry, disbursement or fixed charge was recorded (unbilled). */
  'matters.wip_recorded': WipItem;
  /** An unbilled item changed: the payload is the whole item as it now is. */
  'matters.wip_updated': WipItem;
  /** An unbilled item was deleted. */
  'matters.wip_deleted': WipDeleted;
  /** Items moved to a billing status (unbilled, draft, billed), many at once. */
  'matters.wip_status_changed': WipStatusChanged;
  /** A matter's effective billing options changed (its own edit, or a firm default it inherits). */
  'matters.billing_options_changed': BillingOptionsChanged;
  /** The firm's billing settings changed (also published once when the defaults are first created). */
  'matters.firm_settings_changed': FirmSettingsChanged;
  'matters.timekeeper_changed': TimekeeperChanged;
  'matters.client_changed': ClientChanged;
  'matters.contact_changed': ContactChanged;
  'matters.matter_changed': MatterChanged;
  'matters.charge_type_changed': ChargeTypeChanged;
};
