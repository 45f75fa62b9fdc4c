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

export type WipItem = TimeWip | DisbursementWip;

export interface WipDeleted {
  kind: 'time' | 'disbursement';
  id: string;
  matterId: string;
}

export type MattersEvents = {
  'matters.timekeeper_created': TimekeeperCreated;
  'matters.client_created': ClientCreated;
  'matters.matter_opened': MatterOpened;
  'matters.rate_set': RateSet;
  /** A time entry or disbursement was recorded (unbilled). */
  'matters.wip_recorded': WipItem;
  /** An unbilled item changed: the payload is the whole item as it now is. */
  'matters.wip_updated': WipItem;
  /** An unbilled item was deleted. */
  'matters.wip_deleted': WipDeleted;
};
