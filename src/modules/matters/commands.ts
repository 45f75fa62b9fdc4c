/**
 * The matters use cases. Each command validates its input (a 422 naming the fields, before
 * anything is written), then runs in ONE transaction that writes its rows, appends its
 * events to the outbox and writes the audit log; the relay is kicked after commit.
 * `batch(fn)` runs several commands in one transaction (seeding, imports) and
 * `recordWip` records many items with multi-row inserts.
 */
import { assert } from '../../shared/assert.ts';
import { audit, auditEach, auditMany } from '../../shared/audit.ts';
import type { AuditEntry } from '../../shared/audit.ts';
import type { Clock } from '../../shared/clock.ts';
import { isoDate } from '../../shared/clock.ts';
import type { Db, Executor, Tx } from '../../shared/db.ts';
import { isUniqueViolation } from '../../shared/db.ts';
import type { CommandContext } from '../../shared/events.ts';
import { newId } from '../../shared/ids.ts';
import { appendEvent, appendEvents, appendEventsEach } from '../../shared/outbox.ts';
import type { Relay } from '../../shared/outbox.ts';
import { systemContext } from '../../shared/events.ts';
import { formatMoney } from '../../shared/money.ts';
import { conflict, HttpError, invalid, notFound } from '../../shared/web/errors.ts';
import {
  advanceBillingDate, nextBillingDateAfter, autoFillSchedule as fillSchedule, billingOffRefusal, withScheduleItems, capExcess, capStatus, changedSections,
  defaultFirmSettings, defaultLedesClassification, disbursementAmountMinor, ebillingCodeErrors, effectiveOptions,
  fileNumber, fixedChargeAmountMinor, isBillingOptionSection, isIsoDate, lineAmountError, optionWarnings, overriddenAndInherited,
  patchFirmSettings, patchSection, QUANTITY_SCALE, resolveRate, roundMinutes, scheduleChangeErrors, timeAmountMinor,
  validateAutoFill, validateBillingOptions, validateChargeType, validateClient, validateContact, validateDisbursement,
  validateFirmSettings, validateFixedCharge, validateMatter, validateParticipants, validateRateMinor, validateStandardRate,
  staffEmailOf, validateTimekeeper, validateTimeEntry,
} from './domain.ts';
import { chargeTypeSeen, firmSettingsSeen, optionsSeen } from './fingerprints.ts';
import type {
  BillingCycle, BillingOptionsPatch, CapStatus, CodedItem, EntryBehaviour, FieldErrors, FirmSettingsPatch,
  LedesClassification, MinuteRounding, RateOverride, StandardRate, TimekeeperClassification, UtbmsCode, WipStatus,
} from './domain.ts';
import type {
  BillingOptionSection, ChargeTypeChanged, DisbursementWip, FirmBillingSettings, FixedChargeWip, FixedFeeRow,
  MatterBillingOptions, MatterChanged, MatterOpened, MattersEvents, TimeWip,
} from './events.ts';
import * as store from './store.ts';
import type { ChargeType, Client, Contact, Disbursement, FixedCharge, Matter, StoredFirmSettings, TimeEntry, Timekeeper } from './store.ts';

/** What the commands need; ModuleDeps satisfies it. */
export interface MattersDeps {
  readonly db: Db;
  readonly clock: Clock;
  readonly relay: Pick<Relay, 'kick'>;
}

// ---------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------

export interface CreateTimekeeperInput {
  initials: string;
  name: string;
  classification: TimekeeperClassification;
  /** Defaults from the classification: partner PT, associate AS, paralegal PL, other OT. */
  ledesClassification?: LedesClassification;
  active?: boolean;
  /** The staff account that records this timekeeper's time (its sign-in email); none by default. */
  staffEmail?: string | null;
}

export interface SetTimekeeperRateInput {
  timekeeperId: string;
  effectiveFrom: string;
  rateMinor: number;
}

export interface CreateClientInput {
  name: string;
  email?: string | null;
  address?: string | null;
  taxId?: string | null;
}

export interface SetClientRateInput {
  clientId: string;
  timekeeperId: string;
  /** null removes the client's rate for the timekeeper. */
  rateMinor: number | null;
}

export interface OpenMatterInput {
  clientId: string;
  name: string;
  practiceArea?: string | null;
  /** Defaults to today. */
  openedOn?: string;
  responsibleTimekeeperId: string;
  /** Defaults to the responsible timekeeper. */
  billingTimekeeperId?: string;
  originatingTimekeeperId?: string | null;
  /** Defaults to none (billed on demand). */
  billingCycle?: BillingCycle;
  /** Defaults to one cycle after the opening date. */
  nextBillingDate?: string | null;
  wipCapMinor?: number | null;
  /** Defaults to USD. */
  currency?: string;
  /** Defaults to 6 (tenths of an hour). */
  timeUnitMinutes?: number;
  /** Defaults to up. */
  roundingMode?: MinuteRounding;
  /** Defaults to bill. */
  defaultBehaviour?: EntryBehaviour;
}

export interface SetMatterRateInput {
  matterId: string;
  timekeeperId: string;
  /** null removes the matter's rate for the timekeeper. */
  rateMinor: number | null;
}

export interface RecordTimeEntryInput {
  /**
   * Idempotency key: the item's id (8 to 64 letters, digits or dashes; default a new one).
   * An id already recorded for this matter with the same details returns that item unchanged;
   * with other details, or one of another matter or kind, it is refused (409 naming `id`).
   */
  id?: string;
  matterId: string;
  timekeeperId: string;
  workDate: string;
  rawMinutes: number;
  narrative: string;
  taskCode?: string | null;
  activityCode?: string | null;
  /** Defaults to the matter's default behaviour. */
  behaviour?: EntryBehaviour;
  /** A rate for this entry only; needs a reason. */
  override?: RateOverride | null;
}

export interface RecordDisbursementInput {
  /** Idempotency key, as for a time entry. */
  id?: string;
  matterId: string;
  incurredOn: string;
  code: string;
  expenseCode?: string | null;
  /** Integer thousandths of a unit; defaults to 1000 (one unit). */
  quantityMilli?: number;
  unitCostMinor: number;
  taxCode?: string | null;
  description: string;
  payee?: string | null;
  /** Defaults to bill. */
  behaviour?: EntryBehaviour;
}

export interface RecordFixedChargeInput {
  /** Idempotency key, as for a time entry. */
  id?: string;
  matterId: string;
  chargedOn: string;
  chargeTypeId: string;
  /** Integer thousandths of a unit; defaults to 1000 (one unit). */
  quantityMilli?: number;
  /** Defaults to the charge type's default price. */
  unitPriceMinor?: number;
  /** Defaults to the charge type's name. */
  description?: string;
  /** Defaults to the charge type's tax code (null: the firm's default fee tax code). */
  taxCode?: string | null;
  /** Default to the charge type's UTBMS codes. */
  taskCode?: string | null;
  activityCode?: string | null;
  /** Defaults to bill. */
  behaviour?: EntryBehaviour;
  /** A product quoted for the matter rather than work recorded (seed 003); adds nothing to WIP. Defaults to false. */
  quoted?: boolean;
}

export type UpdateTimeEntryInput = Partial<Omit<RecordTimeEntryInput, 'id' | 'matterId'>>;
export type UpdateDisbursementInput = Partial<Omit<RecordDisbursementInput, 'id' | 'matterId'>>;
export type UpdateFixedChargeInput = Partial<Omit<RecordFixedChargeInput, 'id' | 'matterId' | 'chargeTypeId'>>;

export interface RecordWipInput {
  timeEntries?: readonly RecordTimeEntryInput[];
  disbursements?: readonly RecordDisbursementInput[];
  fixedCharges?: readonly RecordFixedChargeInput[];
}

export interface RecordWipResult {
  timeEntries: TimeEntry[];
  disbursements: Disbursement[];
  fixedCharges: FixedCharge[];
  /** WIP-cap warnings (firm policy 'warn'), one per matter now over its cap. */
  warnings: string[];
}

/** One recorded item and the warnings recording it raised (e.g. the matter is now over its WIP cap). */
export interface Recorded<T> {
  item: T;
  warnings: string[];
}

export interface UpdateTimekeeperInput {
  name?: string;
  classification?: TimekeeperClassification;
  /** When the classification changes without this, a default LEDES code follows it. */
  ledesClassification?: LedesClassification;
  active?: boolean;
  /** Null or empty: linked to no staff account. */
  staffEmail?: string | null;
}

export interface UpdateClientInput {
  name?: string;
  email?: string | null;
  address?: string | null;
  taxId?: string | null;
}

export interface AddContactInput {
  clientId: string;
  name: string;
  email?: string | null;
  phone?: string | null;
  address?: string | null;
  /** What the contact is to the client, e.g. "Accounts payable". */
  role?: string | null;
}

export type UpdateContactInput = Partial<Omit<AddContactInput, 'clientId'>>;

export interface SetMatterParticipantsInput {
  /** The contact bills go to; null: the client itself. Must be a contact of the matter's client. */
  billablePartyContactId: string | null;
  /** Replaces the matter's participants (contacts of the matter's client). */
  participants: readonly { contactId: string; role: string }[];
}

export interface UpdateMatterInput {
  name?: string;
  practiceArea?: string | null;
  responsibleTimekeeperId?: string;
  billingTimekeeperId?: string;
  originatingTimekeeperId?: string | null;
  billingCycle?: BillingCycle;
  /** Must be null with no cycle; switching to a cycle without one sets it one cycle after today. */
  nextBillingDate?: string | null;
  wipCapMinor?: number | null;
  timeUnitMinutes?: number;
  roundingMode?: MinuteRounding;
  /** The same as the billing option defaultTimeEntryBehaviour (setting one sets the other). */
  defaultBehaviour?: EntryBehaviour;
}

export interface SetBillingOptionsInput {
  /** Sections to override; an object section is merged over the matter's current value of it. */
  set?: BillingOptionsPatch;
  /** Sections to stop overriding: they follow the firm's defaults again. */
  inherit?: readonly BillingOptionSection[];
  /** These sections as the form showed them (optionsSeen): changed since, the save is refused (409). */
  expected?: { sections: readonly BillingOptionSection[]; seen: string };
}

export interface BillingOptionsView {
  effective: MatterBillingOptions;
  overridden: BillingOptionSection[];
  inherited: BillingOptionSection[];
}

export interface BillingOptionsResult extends BillingOptionsView {
  /** Accepted, but worth saying (a schedule that differs from the quote, unbilled work without UTBMS codes...). */
  warnings: string[];
}

export interface AutoFillScheduleInput {
  /** The first instalment's amount: as many of these as fit in the quote, then the remainder. */
  firstAmountMinor: number;
  /** Defaults to the matter's next billing date (else today). */
  startDate?: string;
  description?: string;
}

export interface FirmSettingsResult {
  settings: FirmBillingSettings;
  /** Matters whose effective options changed because they inherit a changed default. */
  mattersChanged: number;
}

export interface CreateChargeTypeInput {
  code: string;
  name: string;
  defaultPriceMinor: number;
  /** One of the firm's tax codes; null: the firm's default fee tax code. */
  taxCode?: string | null;
  taskCode?: string | null;
  activityCode?: string | null;
  active?: boolean;
}

export type UpdateChargeTypeInput = Partial<CreateChargeTypeInput>;

export type WipKindName = 'time' | 'disbursement' | 'fixed_charge';

export interface MatterCapStatus extends CapStatus {
  matterId: string;
  fileNumber: string;
  currency: string;
  wipMinor: number;
  capMinor: number | null;
  policy: FirmBillingSettings['wipCapPolicy'];
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

function fail(errors: FieldErrors): void {
  if (Object.keys(errors).length > 0) throw invalid(errors);
}

function requireId(errors: FieldErrors, field: string, v: unknown): void {
  if (typeof v !== 'string' || v.trim() === '') errors[field] = 'is required';
}

/** The shape of a caller-given item id (an idempotency key), as billing's run ids. */
const ITEM_ID_RE = /^[0-9a-zA-Z-]{8,64}$/;
const ITEM_ID_MESSAGE = 'must be 8 to 64 letters, digits or dashes';

/** Optional text: trimmed, empty becomes null. */
function opt(v: string | null | undefined): string | null {
  if (v === undefined || v === null) return null;
  const t = v.trim();
  return t === '' ? null : t;
}

function prefixed(prefix: string, errors: FieldErrors): FieldErrors {
  if (prefix === '') return errors;
  const out: FieldErrors = {};
  for (const [k, v] of Object.entries(errors)) out[`${prefix}.${k}`] = v;
  return out;
}

function timeWip(t: TimeEntry, m: Matter): TimeWip {
  return {
    kind: 'time', id: t.id, matterId: t.matterId, clientId: m.clientId, timekeeperId: t.timekeeperId, workDate: t.workDate,
    rawMinutes: t.rawMinutes, billedMinutes: t.billedMinutes, rateMinor: t.rateMinor, rateSource: t.rateSource,
    overrideReason: t.overrideReason, amountMinor: t.amountMinor, currency: m.currency, narrative: t.narrative,
    taskCode: t.taskCode, activityCode: t.activityCode, behaviour: t.behaviour, status: t.status,
  };
}

function disbursementWip(d: Disbursement, m: Matter): DisbursementWip {
  return {
    kind: 'disbursement', id: d.id, matterId: d.matterId, clientId: m.clientId, incurredOn: d.incurredOn, code: d.code,
    expenseCode: d.expenseCode, quantityMilli: d.quantityMilli, unitCostMinor: d.unitCostMinor, amountMinor: d.amountMinor,
    currency: m.currency, taxCode: d.taxCode, description: d.description, payee: d.payee, behaviour: d.behaviour, status: d.status,
  };
}

function fixedChargeWip(f: FixedCharge, m: Matter, t: ChargeType): FixedChargeWip {
  return {
    kind: 'fixed_charge', id: f.id, matterId: f.matterId, clientId: m.clientId, chargedOn: f.chargedOn, chargeTypeId: f.chargeTypeId,
    chargeCode: t.code, chargeName: t.name, quantityMilli: f.quantityMilli, unitPriceMinor: f.unitPriceMinor, amountMinor: f.amountMinor,
    currency: m.currency, taxCode: f.taxCode, taskCode: f.taskCode, activityCode: f.activityCode, description: f.description,
    quoted: f.quoted, behaviour: f.behaviour, status: f.status,
  };
}

function chargeTypeChanged(t: ChargeType): ChargeTypeChanged {
  return {
    chargeTypeId: t.id, code: t.code, name: t.name, defaultPriceMinor: t.defaultPriceMinor, taxCode: t.taxCode, taskCode: t.taskCode,
    activityCode: t.activityCode, active: t.active, updatedAt: t.updatedAt,
  };
}

/** The matter as matter_changed carries it: with its billable party's details and its participants. */
function matterChanged(m: Matter, c: Client, contacts: ReadonlyMap<string, Contact>, participants: readonly store.Participant[]): MatterChanged {
  const bp = m.billablePartyContactId === null ? undefined : contacts.get(m.billablePartyContactId);
  return {
    ...matterOpened(m, c),
    closedOn: m.closedOn,
    billableParty: bp
      ? { kind: 'contact', contactId: bp.id, name: bp.name, email: bp.email, address: bp.address ?? c.address }
      : { kind: 'client', contactId: null, name: c.name, email: c.email, address: c.address },
    participants: participants.map((p) => {
      const ct = contacts.get(p.contactId);
      return { contactId: p.contactId, role: p.role, name: ct?.name ?? '', email: ct?.email ?? null };
    }),
    updatedAt: m.updatedAt,
  };
}

const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

function matterOpened(m: Matter, c: Client): MatterOpened {
  return {
    matterId: m.id, clientId: c.id, clientNumber: c.clientNumber, clientName: c.name, matterNumber: m.matterNumber,
    fileNumber: m.fileNumber, name: m.name, status: m.status, practiceArea: m.practiceArea, openedOn: m.openedOn,
    responsibleTimekeeperId: m.responsibleTimekeeperId, billingTimekeeperId: m.billingTimekeeperId,
    originatingTimekeeperId: m.originatingTimekeeperId, billingCycle: m.billingCycle, nextBillingDate: m.nextBillingDate,
    wipCapMinor: m.wipCapMinor, currency: m.currency, timeUnitMinutes: m.timeUnitMinutes, roundingMode: m.roundingMode,
    defaultBehaviour: m.defaultBehaviour,
  };
}

type EventName = keyof MattersEvents & string;

interface PendingEvent<K extends EventName = EventName> {
  type: K;
  payload: MattersEvents[K];
}

// ---------------------------------------------------------------------------------------
// The commands
// ---------------------------------------------------------------------------------------

/** Billable time rounded to nothing by the matter's unit and rounding: said, naming both. */
function zeroTimeMessage(rawMinutes: number, matter: { timeUnitMinutes: number; roundingMode: string }): string {
  // The fewest minutes that bill one unit: any under 'up', half a unit under 'nearest', a whole one under 'down'.
  const least = matter.roundingMode === 'up' ? 1 : matter.roundingMode === 'nearest' ? Math.ceil(matter.timeUnitMinutes / 2) : matter.timeUnitMinutes;
  return `${rawMinutes} minute${rawMinutes === 1 ? '' : 's'} round${rawMinutes === 1 ? 's' : ''} to nothing with this matter's ${matter.timeUnitMinutes}-minute unit (rounding ${matter.roundingMode}), which would bill nothing: record at least ${least} minute${least === 1 ? '' : 's'}, or record it as no charge`;
}

export function createMattersCommands(deps: MattersDeps) {
  const { db, clock } = deps;
  const now = (): string => clock.now().toISOString();

  function emit<K extends EventName>(trx: Tx, ctx: CommandContext, type: K, payload: MattersEvents[K]) {
    return appendEvent<MattersEvents, K>(trx, clock, ctx, type, payload);
  }

  // ---- timekeepers --------------------------------------------------------------------

  /** One staff account records one timekeeper's time: a link to an account another timekeeper has is refused, naming it. */
  async function refuseLinkedElsewhere(trx: Tx, t: Timekeeper): Promise<void> {
    if (t.staffEmail === null) return;
    const other = await store.findTimekeeperByStaffEmail(trx, t.staffEmail);
    if (other && other.id !== t.id) throw invalid({ staffEmail: `is linked to ${other.initials} ${other.name}: unlink it there first` });
  }

  async function createTimekeeper(trx: Tx, ctx: CommandContext, input: CreateTimekeeperInput): Promise<Timekeeper> {
    fail(validateTimekeeper(input));
    const existing = await store.findTimekeeperByInitials(trx, input.initials);
    if (existing) throw invalid({ initials: `are already used by ${existing.name}` });
    const at = now();
    const t: Timekeeper = {
      id: newId(clock), initials: input.initials, name: input.name.trim(), classification: input.classification,
      ledesClassification: input.ledesClassification ?? defaultLedesClassification(input.classification),
      active: input.active ?? true, staffEmail: staffEmailOf(input.staffEmail), createdAt: at, updatedAt: at,
    };
    await refuseLinkedElsewhere(trx, t);
    try {
      await store.insertTimekeeper(trx, t);
    } catch (err) {
      if (isUniqueViolation(err)) throw invalid(t.staffEmail && await store.findTimekeeperByStaffEmail(trx, t.staffEmail) ? { staffEmail: 'is linked to another timekeeper' } : { initials: 'are already used by another timekeeper' });
      throw err;
    }
    await emit(trx, ctx, 'matters.timekeeper_created', {
      timekeeperId: t.id, initials: t.initials, name: t.name, classification: t.classification,
      ledesClassification: t.ledesClassification, active: t.active,
    });
    await audit(trx, clock, ctx, { action: 'matters.timekeeper_created', entityType: 'matters_timekeeper', entityId: t.id, after: t });
    return t;
  }

  async function setTimekeeperRate(trx: Tx, ctx: CommandContext, input: SetTimekeeperRateInput): Promise<StandardRate> {
    const errors = validateStandardRate(input);
    requireId(errors, 'timekeeperId', input.timekeeperId);
    fail(errors);
    if (!await store.findTimekeeper(trx, input.timekeeperId)) throw invalid({ timekeeperId: 'does not exist' });
    const rate: StandardRate = { effectiveFrom: input.effectiveFrom, rateMinor: input.rateMinor };
    const before = await store.upsertStandardRate(trx, input.timekeeperId, rate, now());
    await emit(trx, ctx, 'matters.rate_set', {
      level: 'timekeeper', timekeeperId: input.timekeeperId, clientId: null, matterId: null,
      effectiveFrom: rate.effectiveFrom, rateMinor: rate.rateMinor,
    });
    await audit(trx, clock, ctx, {
      action: 'matters.timekeeper_rate_set', entityType: 'matters_timekeeper', entityId: input.timekeeperId,
      before: before ?? undefined, after: rate,
    });
    return rate;
  }

  // ---- clients ------------------------------------------------------------------------

  async function createClient(trx: Tx, ctx: CommandContext, input: CreateClientInput): Promise<Client> {
    fail(validateClient(input));
    const at = now();
    const c: Client = {
      id: newId(clock), clientNumber: await store.nextNumber(trx, store.CLIENT_COUNTER), name: input.name.trim(),
      email: opt(input.email), address: opt(input.address), taxId: opt(input.taxId), createdAt: at, updatedAt: at,
    };
    await store.insertClient(trx, c);
    await emit(trx, ctx, 'matters.client_created', {
      clientId: c.id, clientNumber: c.clientNumber, name: c.name, email: c.email, address: c.address, taxId: c.taxId, createdAt: c.createdAt,
    });
    await audit(trx, clock, ctx, { action: 'matters.client_created', entityType: 'matters_client', entityId: c.id, after: c });
    return c;
  }

  async function setClientRate(trx: Tx, ctx: CommandContext, input: SetClientRateInput): Promise<void> {
    const errors: FieldErrors = {};
    requireId(errors, 'clientId', input.clientId);
    requireId(errors, 'timekeeperId', input.timekeeperId);
    validateRateMinor(errors, 'rateMinor', input.rateMinor, { nullable: true });
    fail(errors);
    if (!await store.findClient(trx, input.clientId)) errors.clientId = 'does not exist';
    if (!await store.findTimekeeper(trx, input.timekeeperId)) errors.timekeeperId = 'does not exist';
    fail(errors);
    const before = await store.setOwnerRate(trx, 'matters_client_rate', input.clientId, input.timekeeperId, input.rateMinor, now());
    await emit(trx, ctx, 'matters.rate_set', {
      level: 'client', timekeeperId: input.timekeeperId, clientId: input.clientId, matterId: null, effectiveFrom: null, rateMinor: input.rateMinor,
    });
    await audit(trx, clock, ctx, {
      action: 'matters.client_rate_set', entityType: 'matters_client', entityId: input.clientId,
      before: { timekeeperId: input.timekeeperId, rateMinor: before }, after: { timekeeperId: input.timekeeperId, rateMinor: input.rateMinor },
    });
  }

  // ---- matters ------------------------------------------------------------------------

  async function openMatter(trx: Tx, ctx: CommandContext, input: OpenMatterInput): Promise<Matter> {
    const errors = validateMatter(input);
    requireId(errors, 'clientId', input.clientId);
    requireId(errors, 'responsibleTimekeeperId', input.responsibleTimekeeperId);
    if (input.billingTimekeeperId !== undefined) requireId(errors, 'billingTimekeeperId', input.billingTimekeeperId);
    if (input.originatingTimekeeperId !== undefined && input.originatingTimekeeperId !== null) requireId(errors, 'originatingTimekeeperId', input.originatingTimekeeperId);
    fail(errors);

    const client = await store.findClient(trx, input.clientId);
    if (!client) errors.clientId = 'does not exist';
    const roles = {
      responsibleTimekeeperId: input.responsibleTimekeeperId,
      billingTimekeeperId: input.billingTimekeeperId ?? input.responsibleTimekeeperId,
      originatingTimekeeperId: input.originatingTimekeeperId ?? null,
    };
    const tks = await store.findTimekeepers(trx, Object.values(roles).filter((v): v is string => v !== null));
    for (const [field, id] of Object.entries(roles)) {
      // The billing timekeeper defaulted from the responsible one: report the field given.
      if (id === null || (field === 'billingTimekeeperId' && input.billingTimekeeperId === undefined)) continue;
      const tk = tks.get(id);
      if (!tk) errors[field] = 'does not exist';
      else if (!tk.active && field !== 'originatingTimekeeperId') errors[field] = `is inactive (${tk.initials})`;
    }
    fail(errors);
    assert(client, 'client checked above');

    const openedOn = input.openedOn ?? isoDate(clock.now());
    const cycle = input.billingCycle ?? 'none';
    const firm = (await loadFirm(trx)).settings;
    const inheritedBehaviour = firm.matterDefaults.defaultTimeEntryBehaviour;
    const matterNumber = await store.nextNumber(trx, store.matterCounter(client.id));
    const at = now();
    const m: Matter = {
      id: newId(clock), clientId: client.id, matterNumber, fileNumber: fileNumber(client.clientNumber, matterNumber),
      name: input.name.trim(), status: 'open', ...roles, practiceArea: opt(input.practiceArea), openedOn, closedOn: null,
      billingCycle: cycle, nextBillingDate: cycle === 'none' ? null : (input.nextBillingDate ?? advanceBillingDate(openedOn, cycle)),
      wipCapMinor: input.wipCapMinor ?? null, currency: input.currency ?? firm.currency, timeUnitMinutes: input.timeUnitMinutes ?? firm.timeUnitMinutes,
      roundingMode: input.roundingMode ?? firm.timeRounding, defaultBehaviour: input.defaultBehaviour ?? inheritedBehaviour,
      billablePartyContactId: null, createdAt: at, updatedAt: at,
    };
    await store.insertMatter(trx, m);
    // The day of month the cycle keeps: the date given, else the opening date it is counted from
    // (opened 31 Jan: due 28 Feb, then 31 Mar, not the 28th of every month from then on).
    await store.setBillingAnchor(trx, m.id, cycle === 'none' ? null : (input.nextBillingDate ?? openedOn));
    // A default behaviour other than the firm's is the matter's own billing option.
    if (m.defaultBehaviour !== inheritedBehaviour) {
      await store.saveOverrides(trx, [{ matterId: m.id, overrides: { defaultTimeEntryBehaviour: m.defaultBehaviour } }], at);
    }
    await emit(trx, ctx, 'matters.matter_opened', matterOpened(m, client));
    await audit(trx, clock, ctx, { action: 'matters.matter_opened', entityType: 'matters_matter', entityId: m.id, after: m });
    return m;
  }

  async function setMatterRate(trx: Tx, ctx: CommandContext, input: SetMatterRateInput): Promise<void> {
    const errors: FieldErrors = {};
    requireId(errors, 'matterId', input.matterId);
    requireId(errors, 'timekeeperId', input.timekeeperId);
    validateRateMinor(errors, 'rateMinor', input.rateMinor, { nullable: true });
    fail(errors);
    const matter = await store.findMatter(trx, input.matterId);
    if (!matter) errors.matterId = 'does not exist';
    if (!await store.findTimekeeper(trx, input.timekeeperId)) errors.timekeeperId = 'does not exist';
    fail(errors);
    assert(matter, 'matter checked above');
    const before = await store.setOwnerRate(trx, 'matters_matter_rate', input.matterId, input.timekeeperId, input.rateMinor, now());
    await emit(trx, ctx, 'matters.rate_set', {
      level: 'matter', timekeeperId: input.timekeeperId, clientId: matter.clientId, matterId: matter.id, effectiveFrom: null, rateMinor: input.rateMinor,
    });
    await audit(trx, clock, ctx, {
      action: 'matters.matter_rate_set', entityType: 'matters_matter', entityId: input.matterId,
      before: { timekeeperId: input.timekeeperId, rateMinor: before }, after: { timekeeperId: input.timekeeperId, rateMinor: input.rateMinor },
    });
  }

  // ---- work in progress ---------------------------------------------------------------

  /** What pricing needs: matters, timekeepers and every rate that could apply. */
  async function loadPricing(trx: Executor, matterIds: readonly string[], timekeeperIds: readonly string[]) {
    const matters = await store.findMatters(trx, matterIds);
    const clientIds = [...new Set([...matters.values()].map((m) => m.clientId))];
    // Matter rates apply only where the matter's "custom matter rates" option is on (seed 002).
    const firmSettings = (await loadFirm(trx)).settings;
    const firmDefaults = firmSettings.matterDefaults;
    const overrides = await store.overridesFor(trx, [...matters.keys()]);
    const effective = new Map([...matters.keys()].map((id) => [id, effectiveOptions(firmDefaults, overrides.get(id)?.overrides ?? {})]));
    const customRates = new Set([...matters.keys()].filter((id) => effective.get(id)!.customRatesEnabled));
    return {
      matters,
      customRates,
      /** Matters with billing turned off (seed 002): they take no billable work. */
      billingOff: new Set([...matters.keys()].filter((id) => !effective.get(id)!.billingEnabled)),
      /** Standard and client rates are in this currency: they price only matters billed in it. */
      firmCurrency: firmSettings.currency,
      timekeepers: await store.findTimekeepers(trx, timekeeperIds),
      matterRates: await store.ownerRates(trx, 'matters_matter_rate', [...matters.keys()]),
      clientRates: await store.ownerRates(trx, 'matters_client_rate', clientIds),
      standard: await store.standardRates(trx, timekeeperIds),
    };
  }
  type Pricing = Awaited<ReturnType<typeof loadPricing>>;

  function priceTime(p: Pricing, matter: Matter, timekeeperId: string, workDate: string, override: RateOverride | null) {
    // A matter billed in another currency than the firm's takes no firm-currency rate (its minor
    // units would be read as the matter's): only its own matter rate or an override prices it.
    const firmCurrency = matter.currency === p.firmCurrency;
    return resolveRate({
      workDate,
      matterRateMinor: p.customRates.has(matter.id) ? (p.matterRates.get(`${matter.id}|${timekeeperId}`) ?? null) : null,
      clientRateMinor: firmCurrency ? (p.clientRates.get(`${matter.clientId}|${timekeeperId}`) ?? null) : null,
      standardRates: firmCurrency ? (p.standard.get(timekeeperId) ?? []) : [],
      override,
    });
  }

  const noRate = (workDate: string, matter: Matter, p: Pricing) => (matter.currency === p.firmCurrency
    ? `has no rate on ${workDate}: set a standard rate effective on or before that date, or give an override rate with a reason`
    : `has no rate in ${matter.currency}: the firm's standard and client rates are in ${p.firmCurrency}, so matter ${matter.fileNumber} needs its own rate for this timekeeper (custom matter rates) or an override rate with a reason`);

  function checkMatterOpen(errors: FieldErrors, field: string, m: Matter | undefined): m is Matter {
    if (!m) { errors[field] = 'does not exist'; return false; }
    if (m.status !== 'open') { errors[field] = `is closed (${m.fileNumber}): reopen it to record work`; return false; }
    return true;
  }

  /** The firm's settings as stored, or the defaults (version 0) before anyone saved them. Never writes. */
  async function loadFirm(trx: Executor): Promise<StoredFirmSettings> {
    return await store.findFirmSettings(trx) ?? { settings: defaultFirmSettings(), version: 0, updatedAt: '' };
  }

  /** Each matter's effective e-billing section (firm default unless overridden). */
  async function ebillingOf(trx: Executor, firm: FirmBillingSettings, matterIds: readonly string[]): Promise<Map<string, MatterBillingOptions['ebilling']>> {
    const overrides = await store.overridesFor(trx, matterIds);
    return new Map(matterIds.map((id) => [id, overrides.get(id)?.overrides.ebilling ?? firm.matterDefaults.ebilling]));
  }

  function codeErrors(item: CodedItem, ebilling: MatterBillingOptions['ebilling'] | undefined, m: Matter): FieldErrors {
    return ebilling ? ebillingCodeErrors(item, ebilling, store.utbmsIndex(), m.fileNumber) : {};
  }

  interface BuiltWip {
    /** The new items, to insert. */
    time: TimeEntry[];
    disb: Disbursement[];
    fixed: FixedCharge[];
    /** Each input's item, in input order: the new one, or the one already recorded under its id. */
    all: { time: TimeEntry[]; disb: Disbursement[]; fixed: FixedCharge[] };
    pricing: Pricing;
    chargeTypes: Map<string, ChargeType>;
    warnings: string[];
  }

  /**
   * Inputs whose id (idempotency key) is already recorded, by input position: the same kind
   * on the same matter is that item, taken as it is (a repeated or parallel post of one
   * form); an id of another matter's item or of another kind is refused (409 naming `id`).
   */
  async function alreadyRecorded(trx: Tx, input: { timeIn: readonly RecordTimeEntryInput[]; disbIn: readonly RecordDisbursementInput[]; fixedIn: readonly RecordFixedChargeInput[] }, single: boolean) {
    const out = { time: new Map<number, TimeEntry>(), disb: new Map<number, Disbursement>(), fixed: new Map<number, FixedCharge>() };
    const ids = [...input.timeIn, ...input.disbIn, ...input.fixedIn].flatMap((x) => (x.id === undefined ? [] : [x.id]));
    if (ids.length === 0) return out;
    await store.lockItemIds(trx, ids);
    const found = await store.findWipByIds(trx, ids);
    // A deleted item's id stays used: the same form posted again must not bring the item back
    // (billing's copy would ignore it as deleted, so it would never be billed).
    const deleted = await store.deletedItemKinds(trx, ids);
    const labels: Record<WipKindName, string> = { time: 'time entry', disbursement: 'disbursement', fixed_charge: 'fixed charge' };
    const conflicts: FieldErrors = {};
    const messages: string[] = [];
    const check = <T extends { matterId: string }>(kind: WipKindName, list: string, inputs: readonly { id?: string; matterId: string }[], own: ReadonlyMap<string, T>, into: Map<number, T>) => {
      inputs.forEach((x, i) => {
        if (x.id === undefined) return;
        const field = single ? 'id' : `${list}.${i}.id`;
        const same = own.get(x.id);
        let problem: string | null = null;
        if (same) {
          if (same.matterId !== x.matterId) problem = `is the id of a ${labels[kind]} recorded on another matter`;
          else {
            // A retry is the same request again; the same id with other details is a new entry given a used id.
            const differ = replayDifferences(kind, x, same);
            if (differ.length > 0) problem = `is the id of a ${labels[kind]} already recorded with another ${differ.join(', ')}`;
            else into.set(i, same);
          }
        } else {
          const other = (['time', 'disbursement', 'fixed_charge'] as const).find((k) => k !== kind && found[k].has(x.id!));
          const gone = deleted.get(x.id);
          if (other) problem = `is the id of a ${labels[other]} already recorded`;
          else if (gone) problem = `is the id of a ${labels[gone]} that was deleted`;
        }
        if (problem) { conflicts[field] = problem; messages.push(`${field} ${problem}`); }
      });
    };
    check('time', 'timeEntries', input.timeIn, found.time, out.time);
    check('disbursement', 'disbursements', input.disbIn, found.disbursement, out.disb);
    check('fixed_charge', 'fixedCharges', input.fixedIn, found.fixed_charge, out.fixed);
    if (messages.length > 0) throw new HttpError(409, 'conflict', `Already used: ${messages.join('; ')}. Reload the form to record a new item`, conflicts);
    return out;
  }

  /**
   * What an input given an id already recorded states otherwise than that item (a field it
   * leaves out takes the item's own). Empty: the input is a retry of the item's request.
   * An item edited since is compared as it is now.
   */
  function replayDifferences(kind: WipKindName, input: object, item: object): string[] {
    const given = input as Record<string, unknown>;
    const held = item as Record<string, unknown>;
    const fields: Record<WipKindName, readonly [string, string][]> = {
      time: [['timekeeperId', 'timekeeper'], ['workDate', 'work date'], ['rawMinutes', 'time'], ['narrative', 'narrative'], ['taskCode', 'task code'], ['activityCode', 'activity code'], ['behaviour', 'behaviour']],
      disbursement: [['incurredOn', 'date'], ['code', 'code'], ['expenseCode', 'expense code'], ['quantityMilli', 'quantity'], ['unitCostMinor', 'unit cost'], ['taxCode', 'tax code'], ['description', 'description'], ['payee', 'payee'], ['behaviour', 'behaviour']],
      fixed_charge: [['chargeTypeId', 'charge type'], ['chargedOn', 'date'], ['quantityMilli', 'quantity'], ['unitPriceMinor', 'unit price'], ['taxCode', 'tax code'], ['taskCode', 'task code'], ['activityCode', 'activity code'], ['description', 'description'], ['behaviour', 'behaviour']],
    };
    const norm = (v: unknown): unknown => (typeof v === 'string' ? (v.trim() === '' ? null : v.trim()) : v);
    const out: string[] = [];
    for (const [key, label] of fields[kind]) {
      if (given[key] === undefined) continue;
      if (norm(given[key]) !== norm(held[key])) out.push(label);
    }
    if (kind === 'time' && given.override != null) {
      const o = given.override as { rateMinor?: unknown };
      if (held.rateSource !== 'override' || o.rateMinor !== held.rateMinor) out.push('rate');
    }
    return out;
  }

  /**
   * Validate, price and build time entries, disbursements and fixed charges; throws one 422
   * for all bad fields. An item given an id already recorded is that item (nothing built or
   * checked again: see alreadyRecorded). E-billed matters need UTBMS codes; a matter's WIP
   * cap is then checked in item order (firm policy: warn, or refuse naming the item's `amount`).
   */
  async function buildWip(trx: Tx, input: RecordWipInput, single: boolean): Promise<BuiltWip> {
    const timeIn = input.timeEntries ?? [];
    const disbIn = input.disbursements ?? [];
    const fixedIn = input.fixedCharges ?? [];
    const errors: FieldErrors = {};
    const prefixOf = (kind: string, i: number) => (single ? '' : `${kind}.${i}`);
    const keys = new Set<string>();
    const checkKey = (e: FieldErrors, id: unknown) => {
      if (id === undefined) return;
      if (typeof id !== 'string' || !ITEM_ID_RE.test(id)) e.id = ITEM_ID_MESSAGE;
      else if (keys.has(id)) e.id = 'is given to another item of the same request';
      else keys.add(id);
    };
    timeIn.forEach((t, i) => {
      const e = validateTimeEntry(t);
      requireId(e, 'matterId', t.matterId);
      requireId(e, 'timekeeperId', t.timekeeperId);
      checkKey(e, t.id);
      Object.assign(errors, prefixed(prefixOf('timeEntries', i), e));
    });
    disbIn.forEach((d, i) => {
      const e = validateDisbursement(d);
      requireId(e, 'matterId', d.matterId);
      checkKey(e, d.id);
      Object.assign(errors, prefixed(prefixOf('disbursements', i), e));
    });
    fixedIn.forEach((f, i) => {
      const e = validateFixedCharge(f);
      requireId(e, 'matterId', f.matterId);
      checkKey(e, f.id);
      Object.assign(errors, prefixed(prefixOf('fixedCharges', i), e));
    });
    fail(errors);

    const recorded = await alreadyRecorded(trx, { timeIn, disbIn, fixedIn }, single);
    const fresh = <T>(xs: readonly T[], done: ReadonlyMap<number, unknown>) => (done.size === 0 ? xs : xs.filter((_, i) => !done.has(i)));
    const newTime = fresh(timeIn, recorded.time);
    const newDisb = fresh(disbIn, recorded.disb);
    const newFixed = fresh(fixedIn, recorded.fixed);
    const matterIds = [...newTime.map((t) => t.matterId), ...newDisb.map((d) => d.matterId), ...newFixed.map((f) => f.matterId)];
    // What is checked against each matter (billing on, its WIP cap) is read with the matter held: a
    // recording at the same moment, or billing being turned off, waits (Postgres) rather than slipping
    // past the check (two recordings each finding room under a refusing cap, together passing it).
    await store.lockMatters(trx, matterIds);
    const pricing = await loadPricing(trx, matterIds, newTime.map((t) => t.timekeeperId));
    const chargeTypes = newFixed.length > 0 ? await store.findChargeTypes(trx, newFixed.map((f) => f.chargeTypeId)) : new Map<string, ChargeType>();
    const firm = (await loadFirm(trx)).settings;
    const ebilling = await ebillingOf(trx, firm, [...pricing.matters.keys()]);
    const at = now();
    const time: TimeEntry[] = [];
    /** Position of each built item in its input list, for naming the item's fields. */
    const timeAt: number[] = [];
    timeIn.forEach((t, i) => {
      if (recorded.time.has(i)) return;
      const e: FieldErrors = {};
      const matter = pricing.matters.get(t.matterId);
      const tk = pricing.timekeepers.get(t.timekeeperId);
      if (!tk) e.timekeeperId = 'does not exist';
      else if (!tk.active) e.timekeeperId = `is inactive (${tk.initials})`;
      if (checkMatterOpen(e, 'matterId', matter)) {
        Object.assign(e, codeErrors({ kind: 'time', taskCode: t.taskCode, activityCode: t.activityCode }, ebilling.get(matter.id), matter));
        if ((t.behaviour ?? matter.defaultBehaviour) === 'bill' && pricing.billingOff.has(matter.id)) e.behaviour = billingOffMessage(matter);
      }
      if (matter && matter.status === 'open' && tk) {
        const override = t.override ?? null;
        const rate = priceTime(pricing, matter, t.timekeeperId, t.workDate, override);
        if (!rate) e.timekeeperId = noRate(t.workDate, matter, pricing);
        else {
          const billedMinutes = roundMinutes(t.rawMinutes, matter.timeUnitMinutes, matter.roundingMode);
          // Billable time that rounds to nothing would be a $0.00 line on the next bill, unsaid.
          if (billedMinutes === 0 && (t.behaviour ?? matter.defaultBehaviour) === 'bill') e.rawMinutes = zeroTimeMessage(t.rawMinutes, matter);
          else {
            time.push({
              id: t.id ?? newId(clock), matterId: matter.id, timekeeperId: t.timekeeperId, workDate: t.workDate, rawMinutes: t.rawMinutes,
              billedMinutes, rateMinor: rate.rateMinor, rateSource: rate.source,
              overrideReason: rate.source === 'override' ? override!.reason.trim() : null,
              amountMinor: timeAmountMinor(billedMinutes, rate.rateMinor), narrative: t.narrative.trim(),
              taskCode: t.taskCode ?? null, activityCode: t.activityCode ?? null, behaviour: t.behaviour ?? matter.defaultBehaviour,
              status: 'unbilled', createdAt: at, updatedAt: at,
            });
            timeAt.push(i);
          }
        }
      }
      Object.assign(errors, prefixed(prefixOf('timeEntries', i), e));
    });
    // Billing prices every line's tax from the firm's codes and cannot compose a bill with one it does not know.
    const taxCodes = firm.taxRates.map((r) => r.code);
    const disb: Disbursement[] = [];
    const disbAt: number[] = [];
    disbIn.forEach((d, i) => {
      if (recorded.disb.has(i)) return;
      const e: FieldErrors = {};
      const matter = pricing.matters.get(d.matterId);
      if (checkMatterOpen(e, 'matterId', matter)) {
        Object.assign(e, codeErrors({ kind: 'disbursement', expenseCode: d.expenseCode }, ebilling.get(matter.id), matter));
        if ((d.behaviour ?? 'bill') === 'bill' && pricing.billingOff.has(matter.id)) e.behaviour = billingOffMessage(matter);
        Object.assign(e, taxCodeErrors(opt(d.taxCode), taxCodes));
        const quantityMilli = d.quantityMilli ?? QUANTITY_SCALE;
        const tooLarge = lineAmountError(quantityMilli, d.unitCostMinor, matter.currency);
        if (tooLarge) { e.amount = tooLarge; Object.assign(errors, prefixed(prefixOf('disbursements', i), e)); return; }
        disb.push({
          id: d.id ?? newId(clock), matterId: matter.id, incurredOn: d.incurredOn, code: d.code, expenseCode: d.expenseCode ?? null,
          quantityMilli, unitCostMinor: d.unitCostMinor, amountMinor: disbursementAmountMinor(quantityMilli, d.unitCostMinor),
          taxCode: opt(d.taxCode), description: d.description.trim(), payee: opt(d.payee), behaviour: d.behaviour ?? 'bill',
          status: 'unbilled', createdAt: at, updatedAt: at,
        });
        disbAt.push(i);
      }
      Object.assign(errors, prefixed(prefixOf('disbursements', i), e));
    });
    const fixed: FixedCharge[] = [];
    const fixedAt: number[] = [];
    fixedIn.forEach((f, i) => {
      if (recorded.fixed.has(i)) return;
      const e: FieldErrors = {};
      const matter = pricing.matters.get(f.matterId);
      const type = chargeTypes.get(f.chargeTypeId);
      if (!type) e.chargeTypeId = 'does not exist';
      else if (!type.active) e.chargeTypeId = `is inactive (${type.code})`;
      if (checkMatterOpen(e, 'matterId', matter) && type && f.unitPriceMinor === undefined && matter.currency !== firm.currency) {
        // The charge type's default price is in the firm's currency: a matter in another one needs the price given.
        e.unitPrice = `is required: ${type.code}'s default price is in ${firm.currency} and matter ${matter.fileNumber} bills in ${matter.currency}`;
      } else if (matter && matter.status === 'open' && type) {
        const tooLarge = lineAmountError(f.quantityMilli ?? QUANTITY_SCALE, f.unitPriceMinor ?? type.defaultPriceMinor, matter.currency);
        if (tooLarge) { e.amount = tooLarge; Object.assign(errors, prefixed(prefixOf('fixedCharges', i), e)); return; }
        const c = buildFixedCharge(f, type, matter, at);
        if (c.behaviour === 'bill' && pricing.billingOff.has(matter.id)) e.behaviour = billingOffMessage(matter);
        Object.assign(e, taxCodeErrors(c.taxCode, taxCodes));
        Object.assign(e, codeErrors({ kind: 'fixed_charge', taskCode: c.taskCode, activityCode: c.activityCode }, ebilling.get(matter.id), matter));
        fixed.push(c);
        fixedAt.push(i);
      }
      Object.assign(errors, prefixed(prefixOf('fixedCharges', i), e));
    });
    fail(errors);

    // The WIP cap, item by item in recording order.
    const capped = [...pricing.matters.values()].filter((m) => m.wipCapMinor !== null);
    const warnings: string[] = [];
    if (capped.length > 0) {
      const running = await store.capWipMinor(trx, capped.map((m) => m.id));
      const over = new Map<string, string>();
      const check = (matterId: string, added: number, field: string) => {
        const m = pricing.matters.get(matterId)!;
        if (added <= 0 || m.wipCapMinor === null) return;
        const wip = (running.get(matterId) ?? 0) + added;
        running.set(matterId, wip);
        const excess = capExcess(wip, m.wipCapMinor, m.currency);
        if (excess === null) return;
        if (firm.wipCapPolicy === 'refuse') errors[field] = excess;
        else {
          over.set(matterId, `Matter ${m.fileNumber} is over its WIP cap: WIP not yet billed (unbilled or on a draft) is now ${formatMoney(wip, m.currency)}, `
            + `over the cap of ${formatMoney(m.wipCapMinor, m.currency)}. Bill the matter.`);
        }
      };
      const field = (kind: string, i: number) => (single ? 'amount' : `${kind}.${i}.amount`);
      time.forEach((t, k) => check(t.matterId, t.behaviour === 'bill' ? t.amountMinor : 0, field('timeEntries', timeAt[k]!)));
      disb.forEach((d, k) => check(d.matterId, d.behaviour === 'bill' ? d.amountMinor : 0, field('disbursements', disbAt[k]!)));
      fixed.forEach((f, k) => check(f.matterId, f.behaviour === 'bill' && !f.quoted ? f.amountMinor : 0, field('fixedCharges', fixedAt[k]!)));
      fail(errors);
      warnings.push(...over.values());
    }
    // Work dated after today is taken (a disbursement booked ahead), but said: no bill run up to today bills it,
    // and a mistyped year (2062 for 2026) would otherwise sit unseen in WIP and in the cap.
    const todayIso = isoDate(clock.now());
    const ahead = [...time.map((t) => t.workDate), ...disb.map((d) => d.incurredOn), ...fixed.map((f) => f.chargedOn)].filter((d) => d > todayIso).sort();
    if (ahead.length > 0) {
      warnings.push(ahead.length === 1
        ? `Dated ${ahead[0]}, after today (${todayIso}): no bill up to today takes it. Check the date.`
        : `${ahead.length} items are dated after today (${todayIso}), the latest ${ahead.at(-1)}: no bill up to today takes them. Check the dates.`);
    }
    /** Each input's item in input order: the one already recorded, else the next one built. */
    const merged = <T>(n: number, done: ReadonlyMap<number, T>, built: readonly T[]): T[] => {
      if (done.size === 0) return [...built];
      let k = 0;
      return Array.from({ length: n }, (_, i) => done.get(i) ?? built[k++]!);
    };
    const all = { time: merged(timeIn.length, recorded.time, time), disb: merged(disbIn.length, recorded.disb, disb), fixed: merged(fixedIn.length, recorded.fixed, fixed) };
    return { time, disb, fixed, all, pricing, chargeTypes, warnings };
  }

  /** Seed 002: billing may be off only while a matter has no billable items, so an off matter takes none. */
  const billingOffMessage = (m: Matter): string =>
    `must be hide or no charge: billing is turned off for matter ${m.fileNumber} (turn billing on in its billing options to bill this work)`;

  /** An edit turning an item to bill on a matter with billing off is refused, as recording it would be. */
  async function billingOffOnEdit(trx: Tx, matter: Matter, item: { table: store.WipTable; id: string }, before: EntryBehaviour, after: EntryBehaviour): Promise<void> {
    if (after !== 'bill' || before === 'bill') return;
    // The item first, then its matter: the bill follower's order.
    await store.lockWipRow(trx, item.table, item.id);
    await store.lockMatters(trx, [matter.id]);
    const firm = (await loadFirm(trx)).settings;
    const options = effectiveOptions(firm.matterDefaults, (await store.findOverrides(trx, matter.id))?.overrides ?? {});
    if (!options.billingEnabled) throw invalid({ behaviour: billingOffMessage(matter) });
  }

  function taxCodeErrors(taxCode: string | null, codes: readonly string[]): FieldErrors {
    return taxCode !== null && !codes.includes(taxCode) ? { taxCode: `must be one of the firm's tax codes: ${codes.join(', ')}` } : {};
  }

  function buildFixedCharge(f: RecordFixedChargeInput, type: ChargeType, matter: Matter, at: string): FixedCharge {
    const quantityMilli = f.quantityMilli ?? QUANTITY_SCALE;
    const unitPriceMinor = f.unitPriceMinor ?? type.defaultPriceMinor;
    return {
      id: f.id ?? newId(clock), matterId: matter.id, chargeTypeId: type.id, chargedOn: f.chargedOn, quantityMilli, unitPriceMinor,
      amountMinor: fixedChargeAmountMinor(quantityMilli, unitPriceMinor),
      taxCode: f.taxCode !== undefined ? opt(f.taxCode) : type.taxCode,
      taskCode: f.taskCode !== undefined ? f.taskCode : type.taskCode,
      activityCode: f.activityCode !== undefined ? f.activityCode : type.activityCode,
      description: f.description !== undefined ? f.description.trim() : type.name,
      quoted: f.quoted ?? false, behaviour: f.behaviour ?? 'bill', status: 'unbilled', createdAt: at, updatedAt: at,
    };
  }

  async function recordWip(trx: Tx, ctx: CommandContext, input: RecordWipInput, single = false): Promise<RecordWipResult> {
    const { time, disb, fixed, all, pricing, chargeTypes, warnings } = await buildWip(trx, input, single);
    // Only new items are written: one already recorded under its id is returned as it is (no event, no audit row).
    await store.insertTimeEntries(trx, time);
    await store.insertDisbursements(trx, disb);
    await store.insertFixedCharges(trx, fixed);
    const matterOf = (id: string): Matter => pricing.matters.get(id)!;
    const events: PendingEvent<'matters.wip_recorded'>[] = [
      ...time.map((t) => ({ type: 'matters.wip_recorded' as const, payload: timeWip(t, matterOf(t.matterId)) })),
      ...disb.map((d) => ({ type: 'matters.wip_recorded' as const, payload: disbursementWip(d, matterOf(d.matterId)) })),
      ...fixed.map((f) => ({ type: 'matters.wip_recorded' as const, payload: fixedChargeWip(f, matterOf(f.matterId), chargeTypes.get(f.chargeTypeId)!) })),
    ];
    const audits: AuditEntry[] = [
      ...time.map((t) => ({ action: 'matters.time_recorded', entityType: 'matters_time_entry', entityId: t.id, after: t })),
      ...disb.map((d) => ({ action: 'matters.disbursement_recorded', entityType: 'matters_disbursement', entityId: d.id, after: d })),
      ...fixed.map((f) => ({ action: 'matters.fixed_charge_recorded', entityType: 'matters_fixed_charge', entityId: f.id, after: f })),
    ];
    await emitMany(trx, ctx, events, audits);
    return { timeEntries: all.time, disbursements: all.disb, fixedCharges: all.fixed, warnings };
  }

  /** Events and audit rows: single inserts for one, multi-row inserts for many. */
  async function emitMany(trx: Tx, ctx: CommandContext, events: readonly PendingEvent[], audits: readonly AuditEntry[]): Promise<void> {
    if (events.length === 1) await appendEvent<MattersEvents, EventName>(trx, clock, ctx, events[0]!.type, events[0]!.payload);
    else if (events.length > 1) await appendEvents(trx, clock, ctx, events);
    if (audits.length === 1) await audit(trx, clock, ctx, audits[0]!);
    else if (audits.length > 1) await auditMany(trx, clock, ctx, audits);
  }

  async function recordTimeEntryChecked(trx: Tx, ctx: CommandContext, input: RecordTimeEntryInput): Promise<Recorded<TimeEntry>> {
    const r = await recordWip(trx, ctx, { timeEntries: [input] }, true);
    return { item: r.timeEntries[0]!, warnings: r.warnings };
  }

  async function recordDisbursementChecked(trx: Tx, ctx: CommandContext, input: RecordDisbursementInput): Promise<Recorded<Disbursement>> {
    const r = await recordWip(trx, ctx, { disbursements: [input] }, true);
    return { item: r.disbursements[0]!, warnings: r.warnings };
  }

  async function recordFixedChargeChecked(trx: Tx, ctx: CommandContext, input: RecordFixedChargeInput): Promise<Recorded<FixedCharge>> {
    const r = await recordWip(trx, ctx, { fixedCharges: [input] }, true);
    return { item: r.fixedCharges[0]!, warnings: r.warnings };
  }

  async function recordTimeEntry(trx: Tx, ctx: CommandContext, input: RecordTimeEntryInput): Promise<TimeEntry> {
    return (await recordTimeEntryChecked(trx, ctx, input)).item;
  }

  async function recordDisbursement(trx: Tx, ctx: CommandContext, input: RecordDisbursementInput): Promise<Disbursement> {
    return (await recordDisbursementChecked(trx, ctx, input)).item;
  }

  async function recordFixedCharge(trx: Tx, ctx: CommandContext, input: RecordFixedChargeInput): Promise<FixedCharge> {
    return (await recordFixedChargeChecked(trx, ctx, input)).item;
  }

  const notEditable = (what: string, status: string) => conflict(`This ${what} is ${status}: only unbilled work can be changed`);

  /**
   * A closed matter's work is locked as recording on it is (its page offers no edit or delete):
   * a change or deletion is refused (409) until the matter is reopened. The item and then its
   * matter are held (the bill follower's order), so a close at the same moment cannot slip between.
   */
  async function matterOpenForChange(trx: Tx, table: store.WipTable, id: string, matterId: string, what: string): Promise<void> {
    await store.lockWipRow(trx, table, id);
    await store.lockMatters(trx, [matterId]);
    const m = await store.findMatter(trx, matterId);
    if (m && m.status !== 'open') throw conflict(`This ${what} is on matter ${m.fileNumber}, which is closed: reopen the matter to change or delete its work`);
  }
  const stale = (what: string) => conflict(`This ${what} was changed by someone else since you opened it: reload to see their changes, then make yours again`);

  /**
   * Optimistic concurrency: with an `expectedVersion`, refuse (409) a row that has moved on.
   * This early check gives the message; the UPDATE itself is guarded by the version too, so
   * an edit committed between this read and the write is still caught.
   */
  async function checkVersion(trx: Tx, table: store.VersionedTable, id: string, what: string, expectedVersion: number | undefined): Promise<void> {
    if (expectedVersion === undefined) return;
    if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 1) throw invalid({ expectedVersion: 'must be a whole number of 1 or more' });
    const current = await store.findVersion(trx, table, id);
    if (current !== null && current !== expectedVersion) throw stale(what);
  }

  /** A guarded WIP update changed nothing: either the item left unbilled or (with a version) someone else saved first. */
  async function wipNotUpdated(trx: Tx, table: store.WipTable, id: string, what: string, expectedVersion: number | undefined): Promise<never> {
    const heads = await store.wipHeads(trx, table, [id]);
    const status = heads.get(id)?.status;
    if (expectedVersion !== undefined && status === 'unbilled') throw stale(what);
    throw notEditable(what, 'no longer unbilled');
  }

  /**
   * Seed 004's WIP cap on an edit: an item whose change adds billable WIP (more time, a higher
   * cost, hidden or no-charge turned to bill) is refused, as recording it would be, when the
   * firm refuses work over the cap. `counted`: what the item adds to the cap's WIP before and
   * after the edit. The field named is the behaviour when that is what changed, else the amount.
   */
  async function capOnEdit(trx: Tx, matter: Matter, item: { table: store.WipTable; id: string }, counted: { before: number; after: number }, behaviourChanged: boolean, loaded?: FirmBillingSettings): Promise<void> {
    if (matter.wipCapMinor === null || counted.after <= counted.before) return;
    const firm = loaded ?? (await loadFirm(trx)).settings;
    if (firm.wipCapPolicy !== 'refuse') return;
    // As when recording: the matter held while its WIP is measured (the item first, as the bill follower locks them).
    await store.lockWipRow(trx, item.table, item.id);
    await store.lockMatters(trx, [matter.id]);
    const wip = ((await store.capWipMinor(trx, [matter.id])).get(matter.id) ?? 0) - counted.before + counted.after;
    const excess = capExcess(wip, matter.wipCapMinor, matter.currency);
    if (excess) throw invalid({ [behaviourChanged ? 'behaviour' : 'amount']: excess });
  }

  async function updateTimeEntry(trx: Tx, ctx: CommandContext, id: string, patch: UpdateTimeEntryInput, expectedVersion?: number): Promise<TimeEntry> {
    const errors = validateTimeEntry(patch, { partial: true });
    if (patch.timekeeperId !== undefined) requireId(errors, 'timekeeperId', patch.timekeeperId);
    fail(errors);
    const before = await store.findTimeEntry(trx, id);
    if (!before) throw notFound('Time entry');
    if (before.status !== 'unbilled') throw notEditable('time entry', before.status);
    await matterOpenForChange(trx, 'matters_time_entry', id, before.matterId, 'time entry');
    await checkVersion(trx, 'matters_time_entry', id, 'time entry', expectedVersion);
    const timekeeperId = patch.timekeeperId ?? before.timekeeperId;
    const pricing = await loadPricing(trx, [before.matterId], [timekeeperId]);
    const matter = pricing.matters.get(before.matterId);
    assert(matter, 'a time entry has a matter');
    const tk = pricing.timekeepers.get(timekeeperId);
    if (!tk) throw invalid({ timekeeperId: 'does not exist' });
    if (!tk.active && timekeeperId !== before.timekeeperId) throw invalid({ timekeeperId: `is inactive (${tk.initials})` });

    const workDate = patch.workDate ?? before.workDate;
    let rateMinor = before.rateMinor;
    let rateSource = before.rateSource;
    let overrideReason = before.overrideReason;
    if (patch.timekeeperId !== undefined || patch.workDate !== undefined || patch.override !== undefined) {
      const override = patch.override !== undefined ? patch.override
        : before.rateSource === 'override' ? { rateMinor: before.rateMinor, reason: before.overrideReason ?? '' } : null;
      const rate = priceTime(pricing, matter, timekeeperId, workDate, override);
      if (!rate) throw invalid({ timekeeperId: noRate(workDate, matter, pricing) });
      rateMinor = rate.rateMinor;
      rateSource = rate.source;
      overrideReason = rate.source === 'override' ? override!.reason.trim() : null;
    }
    const rawMinutes = patch.rawMinutes ?? before.rawMinutes;
    const billedMinutes = patch.rawMinutes !== undefined ? roundMinutes(rawMinutes, matter.timeUnitMinutes, matter.roundingMode) : before.billedMinutes;
    // (Also when a no-charge entry of no billed minutes is made billable.)
    if ((patch.rawMinutes !== undefined || patch.behaviour === 'bill') && billedMinutes === 0 && (patch.behaviour ?? before.behaviour) === 'bill') throw invalid({ rawMinutes: zeroTimeMessage(rawMinutes, matter) });
    const after: TimeEntry = {
      ...before, timekeeperId, workDate, rawMinutes, billedMinutes, rateMinor, rateSource, overrideReason,
      amountMinor: timeAmountMinor(billedMinutes, rateMinor),
      narrative: patch.narrative !== undefined ? patch.narrative.trim() : before.narrative,
      taskCode: patch.taskCode !== undefined ? patch.taskCode : before.taskCode,
      activityCode: patch.activityCode !== undefined ? patch.activityCode : before.activityCode,
      behaviour: patch.behaviour ?? before.behaviour,
      updatedAt: now(),
    };
    fail(await updateCodeErrors(trx, matter, { kind: 'time', taskCode: after.taskCode, activityCode: after.activityCode }));
    await billingOffOnEdit(trx, matter, { table: 'matters_time_entry', id }, before.behaviour, after.behaviour);
    await capOnEdit(trx, matter, { table: 'matters_time_entry', id }, { before: before.behaviour === 'bill' ? before.amountMinor : 0, after: after.behaviour === 'bill' ? after.amountMinor : 0 }, after.behaviour !== before.behaviour);
    if (!await store.updateUnbilledTimeEntry(trx, after, expectedVersion)) await wipNotUpdated(trx, 'matters_time_entry', id, 'time entry', expectedVersion);
    await emit(trx, ctx, 'matters.wip_updated', timeWip(after, matter));
    await audit(trx, clock, ctx, { action: 'matters.time_updated', entityType: 'matters_time_entry', entityId: id, before, after });
    return after;
  }

  async function updateDisbursement(trx: Tx, ctx: CommandContext, id: string, patch: UpdateDisbursementInput, expectedVersion?: number): Promise<Disbursement> {
    fail(validateDisbursement(patch, { partial: true }));
    const before = await store.findDisbursement(trx, id);
    if (!before) throw notFound('Disbursement');
    if (before.status !== 'unbilled') throw notEditable('disbursement', before.status);
    await matterOpenForChange(trx, 'matters_disbursement', id, before.matterId, 'disbursement');
    await checkVersion(trx, 'matters_disbursement', id, 'disbursement', expectedVersion);
    const matter = await store.findMatter(trx, before.matterId);
    assert(matter, 'a disbursement has a matter');
    const quantityMilli = patch.quantityMilli ?? before.quantityMilli;
    const unitCostMinor = patch.unitCostMinor ?? before.unitCostMinor;
    const tooLarge = lineAmountError(quantityMilli, unitCostMinor, matter.currency);
    if (tooLarge) throw invalid({ amount: tooLarge });
    const after: Disbursement = {
      ...before,
      incurredOn: patch.incurredOn ?? before.incurredOn,
      code: patch.code ?? before.code,
      expenseCode: patch.expenseCode !== undefined ? patch.expenseCode : before.expenseCode,
      quantityMilli, unitCostMinor, amountMinor: disbursementAmountMinor(quantityMilli, unitCostMinor),
      taxCode: patch.taxCode !== undefined ? opt(patch.taxCode) : before.taxCode,
      description: patch.description !== undefined ? patch.description.trim() : before.description,
      payee: patch.payee !== undefined ? opt(patch.payee) : before.payee,
      behaviour: patch.behaviour ?? before.behaviour,
      updatedAt: now(),
    };
    fail({
      ...(after.taxCode !== before.taxCode ? taxCodeErrors(after.taxCode, (await loadFirm(trx)).settings.taxRates.map((r) => r.code)) : {}),
      ...await updateCodeErrors(trx, matter, { kind: 'disbursement', expenseCode: after.expenseCode }),
    });
    await billingOffOnEdit(trx, matter, { table: 'matters_disbursement', id }, before.behaviour, after.behaviour);
    await capOnEdit(trx, matter, { table: 'matters_disbursement', id }, { before: before.behaviour === 'bill' ? before.amountMinor : 0, after: after.behaviour === 'bill' ? after.amountMinor : 0 }, after.behaviour !== before.behaviour);
    if (!await store.updateUnbilledDisbursement(trx, after, expectedVersion)) await wipNotUpdated(trx, 'matters_disbursement', id, 'disbursement', expectedVersion);
    await emit(trx, ctx, 'matters.wip_updated', disbursementWip(after, matter));
    await audit(trx, clock, ctx, { action: 'matters.disbursement_updated', entityType: 'matters_disbursement', entityId: id, before, after });
    return after;
  }

  async function deleteTimeEntry(trx: Tx, ctx: CommandContext, id: string, expectedVersion?: number): Promise<void> {
    const before = await store.findTimeEntry(trx, id);
    if (!before) throw notFound('Time entry');
    if (before.status === 'unbilled') await matterOpenForChange(trx, 'matters_time_entry', id, before.matterId, 'time entry');
    await checkVersion(trx, 'matters_time_entry', id, 'time entry', expectedVersion);
    if (before.status !== 'unbilled' || !await store.deleteUnbilled(trx, 'matters_time_entry', id, expectedVersion)) {
      if (before.status === 'unbilled') await wipNotUpdated(trx, 'matters_time_entry', id, 'time entry', expectedVersion);
      throw notEditable('time entry', before.status);
    }
    await store.recordDeletedItem(trx, { id, kind: 'time', matterId: before.matterId, at: now() });
    await emit(trx, ctx, 'matters.wip_deleted', { kind: 'time', id, matterId: before.matterId });
    await audit(trx, clock, ctx, { action: 'matters.time_deleted', entityType: 'matters_time_entry', entityId: id, before });
  }

  async function deleteDisbursement(trx: Tx, ctx: CommandContext, id: string, expectedVersion?: number): Promise<void> {
    const before = await store.findDisbursement(trx, id);
    if (!before) throw notFound('Disbursement');
    if (before.status === 'unbilled') await matterOpenForChange(trx, 'matters_disbursement', id, before.matterId, 'disbursement');
    await checkVersion(trx, 'matters_disbursement', id, 'disbursement', expectedVersion);
    if (before.status !== 'unbilled' || !await store.deleteUnbilled(trx, 'matters_disbursement', id, expectedVersion)) {
      if (before.status === 'unbilled') await wipNotUpdated(trx, 'matters_disbursement', id, 'disbursement', expectedVersion);
      throw notEditable('disbursement', before.status);
    }
    await store.recordDeletedItem(trx, { id, kind: 'disbursement', matterId: before.matterId, at: now() });
    await emit(trx, ctx, 'matters.wip_deleted', { kind: 'disbursement', id, matterId: before.matterId });
    await audit(trx, clock, ctx, { action: 'matters.disbursement_deleted', entityType: 'matters_disbursement', entityId: id, before });
  }

  // ---- firm billing settings ----------------------------------------------------------

  /** The stored settings; the defaults are saved (and announced to subscribers) the first time. */
  async function ensureFirm(trx: Tx, ctx: CommandContext): Promise<StoredFirmSettings> {
    const found = await store.findFirmSettings(trx);
    if (found) return found;
    const settings = defaultFirmSettings();
    if (await store.insertFirmSettings(trx, settings, now())) {
      await emit(trx, ctx, 'matters.firm_settings_changed', { settings });
      await audit(trx, clock, ctx, { action: 'matters.firm_settings_created', entityType: 'matters_firm_settings', entityId: 'firm', after: settings });
    }
    const stored = await store.findFirmSettings(trx);
    assert(stored, 'the firm settings row exists');
    return stored;
  }

  /** The names of billing's bill and email templates (matters' copy); empty when billing has told of none yet. */
  async function templateNames(ex: Executor): Promise<{ bill: string[]; email: string[] }> {
    const rows = await ex.selectFrom('matters_template').select(['kind', 'name']).orderBy('name').execute() as { kind: 'bill' | 'email'; name: string }[];
    return { bill: rows.filter((r) => r.kind === 'bill').map((r) => r.name), email: rows.filter((r) => r.kind === 'email').map((r) => r.name) };
  }

  /**
   * A bill or email template set to a name no template has (only when it changes: a name
   * saved before is not refused with an unrelated change), at its field. No check while billing
   * has told of no template of that kind.
   */
  function unknownTemplates(before: MatterBillingOptions, after: MatterBillingOptions, names: { bill: string[]; email: string[] }): FieldErrors {
    const e: FieldErrors = {};
    const check = (field: 'billTemplate' | 'emailTemplate', kind: 'bill' | 'email') => {
      const name = after[field];
      if (typeof name !== 'string' || name.trim() === '' || name === before[field] || names[kind].length === 0 || names[kind].includes(name)) return;
      const list = names[kind].slice(0, 20).join(', ') + (names[kind].length > 20 ? ', …' : '');
      e[field] = `no ${kind} template named "${name}" (templates: ${list})`;
    };
    check('billTemplate', 'bill');
    check('emailTemplate', 'email');
    return e;
  }
  const prefixedTemplates = (e: FieldErrors): FieldErrors => Object.fromEntries(Object.entries(e).map(([k, v]) => [`matterDefaults.${k}`, v]));

  const codeSets = (): string[] => [...store.utbmsIndex().taskSets.keys()];

  function referencedTimekeepers(o: unknown): string[] {
    const fa = (o as { feeAllocation?: Record<string, unknown> } | null)?.feeAllocation;
    if (!fa || typeof fa !== 'object') return [];
    return [fa.feesTimekeeperId, fa.adjustmentsTimekeeperId, fa.originatorTimekeeperId].filter((v): v is string => typeof v === 'string' && v !== '');
  }

  const listFiles = (files: readonly string[]): string => (files.length <= 5 ? files.join(', ') : `${files.slice(0, 5).join(', ')} and ${files.length - 5} more`);
  const matterCount = (n: number): string => `${n} matter${n === 1 ? '' : 's'}`;

  /**
   * Change the firm's billing settings. Matters that inherit a changed default section get
   * the new effective options (one billing_options_changed each, bulk-inserted); a change that
   * would leave any of them with invalid options, or turn billing off where items remain, is
   * refused naming them. Only future bills are affected.
   */
  /**
   * `expected`: the part of the settings a page's form showed (firmSettingsSeen): changed since
   * (another tab, another admin), the save is refused (409) rather than putting back what the
   * form showed. Read in this transaction, under the settings row's update guard below.
   */
  async function updateFirmSettings(trx: Tx, ctx: CommandContext, patch: FirmSettingsPatch, expected?: { part: 'general' | 'all' | readonly BillingOptionSection[]; seen: string }): Promise<FirmSettingsResult> {
    if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) throw invalid({ settings: 'must be an object of billing settings' });
    const stored = await ensureFirm(trx, ctx);
    if (expected && firmSettingsSeen(stored.settings, expected.part) !== expected.seen) {
      throw conflict('These billing settings were changed by someone else since you opened them: the form below still holds what you typed; check it against the current settings (reload to see them) and save again');
    }
    const before = stored.settings;
    const after = patchFirmSettings(before, patch);
    const timekeepers = new Set((await store.listTimekeepers(trx)).map((t) => t.id));
    const timekeeperExists = (id: string) => timekeepers.has(id);
    fail(validateFirmSettings(after, { timekeeperExists, codeSets: codeSets() }));
    fail(prefixedTemplates(unknownTemplates(before.matterDefaults, after.matterDefaults, await templateNames(trx))));
    if (after.currency !== before.currency) {
      const uses = await store.firmCurrencyUses(trx);
      const said = [[uses.timekeeperRates, 'standard rate'], [uses.clientRates, 'client rate'], [uses.chargeTypes, 'charge type'], [uses.matters, 'matter']]
        .filter(([n]) => (n as number) > 0).map(([n, what]) => `${n} ${what}${n === 1 ? '' : 's'}`);
      // The firm's own matter defaults hold amounts too (a quote, a fixed discount, retainer figures).
      const d = before.matterDefaults;
      if ([d.quote.amountMinor, d.discount.amountMinor, d.retainerReplenishment.minimumBalanceMinor, d.retainerReplenishment.triggerMinor].some((m) => (m ?? 0) !== 0)) said.push('amounts in the matter defaults');
      if (said.length > 0) {
        throw invalid({ currency: `cannot change from ${before.currency} once amounts are kept in it (${said.join(', ')}): their amounts would be read in ${after.currency} unconverted. The currency is set before rates, charge types and matters are recorded` });
      }
    }
    if (sameJson(before, after)) return { settings: before, mattersChanged: 0 };
    // A tax code still on work not yet billed (unbilled or on a draft) or on a charge type stays: removed, those bills would fail to compose.
    const removedCodes = before.taxRates.map((r) => r.code).filter((code) => !after.taxRates.some((r) => r.code === code));
    const inUse = await store.taxCodeUses(trx, removedCodes);
    if (inUse.length > 0) {
      const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
      throw invalid({
        taxRates: inUse.map((u) => `${u.code} is still used by ${[
          u.disbursements ? plural(u.disbursements, 'disbursement not yet billed', 'disbursements not yet billed') : '',
          u.fixedCharges ? plural(u.fixedCharges, 'fixed charge not yet billed', 'fixed charges not yet billed') : '',
          u.chargeTypes ? plural(u.chargeTypes, 'charge type', 'charge types') : '',
        ].filter((x) => x !== '').join(', ')}`).join('; ') + ': give them another tax code first',
      });
    }

    const changed = changedSections(before.matterDefaults, after.matterDefaults);
    const retainersOff = before.generalRetainersEnabled && !after.generalRetainersEnabled;
    const affected: { id: string; overrides: Partial<MatterBillingOptions>; before: MatterBillingOptions; after: MatterBillingOptions }[] = [];
    if (changed.length > 0 || retainersOff) {
      const refs = await store.listMatterRefs(trx);
      const overrides = await store.allOverrides(trx);
      const octx = { timekeeperExists, codeSets: codeSets(), generalRetainersEnabled: after.generalRetainersEnabled, scope: 'matter' as const };
      const problems = new Map<string, { files: string[]; message: string }>();
      const problem = (key: string, file: string, message: string) => {
        const p = problems.get(key) ?? { files: [], message };
        p.files.push(file);
        problems.set(key, p);
      };
      const fileOf = new Map(refs.map((r) => [r.id, r.fileNumber]));
      for (const ref of refs) {
        const ov = overrides.get(ref.id)?.overrides ?? {};
        const inherits = changed.some((s) => ov[s] === undefined);
        if (!inherits && !retainersOff) continue;
        const newEff = effectiveOptions(after.matterDefaults, ov);
        for (const [field, message] of Object.entries(validateBillingOptions(newEff, octx))) {
          problem(field === 'generalRetainer.enabled' && retainersOff ? 'generalRetainersEnabled' : `matterDefaults.${field}`, ref.fileNumber, message);
        }
        if (inherits) affected.push({ id: ref.id, overrides: ov, before: effectiveOptions(before.matterDefaults, ov), after: newEff });
      }
      const turningOff = affected.filter((a) => a.before.billingEnabled && !a.after.billingEnabled);
      if (turningOff.length > 0) {
        const counts = await store.billingItemCounts(trx, turningOff.map((a) => a.id));
        for (const a of turningOff) {
          if (billingOffRefusal(withScheduleItems(counts.get(a.id)!, a.after)) !== null) {
            problem('matterDefaults.billingEnabled', fileOf.get(a.id)!, 'You can not turn billing off while there are any billable or billed items remaining');
          }
        }
      }
      if (problems.size > 0) {
        const fields: FieldErrors = {};
        for (const [key, p] of problems) {
          fields[key] = key === 'generalRetainersEnabled'
            ? `${matterCount(p.files.length)} ${p.files.length === 1 ? "still uses" : "still use"} a general retainer (${listFiles(p.files)}): turn it off on them first`
            : `would leave ${matterCount(p.files.length)} that follow the firm's defaults with invalid billing options (${listFiles(p.files)}): ${p.message}`;
        }
        throw invalid(fields);
      }
    }

    const at = now();
    if (!await store.updateFirmSettings(trx, after, stored.version, at)) {
      throw conflict('The billing settings were changed by someone else in the meantime: reload them and try again');
    }
    if (changed.includes('defaultTimeEntryBehaviour')) {
      await store.setDefaultBehaviour(trx, affected.filter((a) => a.overrides.defaultTimeEntryBehaviour === undefined).map((a) => a.id),
        after.matterDefaults.defaultTimeEntryBehaviour, at);
    }
    await emit(trx, ctx, 'matters.firm_settings_changed', { settings: after });
    await audit(trx, clock, ctx, { action: 'matters.firm_settings_changed', entityType: 'matters_firm_settings', entityId: 'firm', before, after });
    if (affected.length > 0) {
      await appendEvents(trx, clock, ctx, affected.map((a) => ({
        type: 'matters.billing_options_changed' as const,
        payload: { matterId: a.id, overridden: overriddenAndInherited(a.overrides).overridden, effective: a.after },
      })));
    }
    return { settings: after, mattersChanged: affected.length };
  }

  // ---- matter billing options ---------------------------------------------------------

  interface OptionsChange extends SetBillingOptionsInput {
    matterId: string;
  }

  /** Fresh ids for schedule rows given without one (new rows from a form). */
  function withRowIds(v: unknown): unknown {
    if (typeof v !== 'object' || v === null || !Array.isArray((v as { schedule?: unknown }).schedule)) return v;
    const f = v as { schedule: unknown[] };
    return {
      ...f,
      schedule: f.schedule.map((r) => (typeof r === 'object' && r !== null && !(r as { rowId?: unknown }).rowId ? { ...r, rowId: newId(clock) } : r)),
    };
  }

  /**
   * Set or inherit option sections of one or many matters. Errors name `section.field`
   * (prefixed `items.N.` for many). Billing cannot be turned off while billable or billed items
   * remain; billed schedule instalments cannot change. Only future bills are affected.
   */
  async function applyOptions(trx: Tx, ctx: CommandContext, changes: readonly OptionsChange[], single: boolean): Promise<BillingOptionsResult[]> {
    const errors: FieldErrors = {};
    const pre = (i: number) => (single ? '' : `items.${i}`);
    const seen = new Set<string>();
    changes.forEach((c, i) => {
      const e: FieldErrors = {};
      if (!single) {
        requireId(e, 'matterId', c.matterId);
        if (seen.has(c.matterId)) e.matterId = 'is listed twice';
        seen.add(c.matterId);
      }
      const set = c.set as Record<string, unknown> | undefined;
      if (set !== undefined && (typeof set !== 'object' || set === null || Array.isArray(set))) e.set = 'must be an object of billing option sections';
      else for (const k of Object.keys(set ?? {})) if (!isBillingOptionSection(k)) e[k] = 'is not a billing option';
      if (c.inherit !== undefined) {
        if (!Array.isArray(c.inherit)) e.inherit = 'must be a list of billing option sections';
        else {
          const unknown = c.inherit.filter((s) => !isBillingOptionSection(s));
          if (unknown.length > 0) e.inherit = `lists unknown sections: ${unknown.join(', ')}`;
          for (const s of c.inherit) if (set && typeof set === 'object' && set[s] !== undefined) e[s] = 'cannot be set and inherited at once';
        }
      }
      Object.assign(errors, prefixed(pre(i), e));
    });
    fail(errors);
    // The options are read, checked against billed instalments and written back whole: hold the matters meanwhile.
    await store.lockMatters(trx, changes.map((c) => c.matterId));
    const matters = await store.findMatters(trx, changes.map((c) => c.matterId));
    if (single && !matters.has(changes[0]!.matterId)) throw notFound('Matter');
    changes.forEach((c, i) => { if (!matters.has(c.matterId)) errors[`${pre(i)}.matterId`] = 'does not exist'; });
    fail(errors);

    const firm = (await loadFirm(trx)).settings;
    const stored = await store.overridesFor(trx, [...matters.keys()]);
    const plans = changes.map((c) => {
      const current = stored.get(c.matterId)?.overrides ?? {};
      const before = effectiveOptions(firm.matterDefaults, current);
      if (c.expected && optionsSeen(before, Object.keys(current), c.expected.sections) !== c.expected.seen) {
        throw conflict(`These billing options of matter ${matters.get(c.matterId)!.fileNumber} were changed by someone else since you opened them (or the firm's defaults they follow): the form below still holds what you typed; check it against the current options (reload to see them) and save again`);
      }
      const next: Record<string, unknown> = { ...current };
      for (const s of c.inherit ?? []) delete next[s];
      for (const [k, v] of Object.entries(c.set ?? {})) {
        if (v === undefined) continue;
        const s = k as BillingOptionSection;
        next[s] = patchSection(s, before[s], s === 'fixedFee' ? withRowIds(v) : v);
      }
      const overrides = next as Partial<MatterBillingOptions>;
      return { matter: matters.get(c.matterId)!, current, overrides, before, after: effectiveOptions(firm.matterDefaults, overrides) };
    });

    const tks = await store.findTimekeepers(trx, plans.flatMap((p) => referencedTimekeepers(p.after)));
    const octx = { timekeeperExists: (id: string) => tks.has(id), codeSets: codeSets(), generalRetainersEnabled: firm.generalRetainersEnabled, scope: 'matter' as const };
    const templates = await templateNames(trx);
    plans.forEach((p, i) => {
      // A field's own rule first (a blank name is "required", not an unknown template).
      const e = { ...unknownTemplates(p.before, p.after, templates), ...validateBillingOptions(p.after, octx) };
      if (!Object.keys(e).some((k) => k.startsWith('fixedFee'))) {
        Object.assign(e, scheduleChangeErrors(p.before.fixedFee.schedule, p.after.fixedFee.schedule, p.matter.currency));
      }
      Object.assign(errors, prefixed(pre(i), e));
    });
    fail(errors);
    const turningOff = plans.filter((p) => p.before.billingEnabled && !p.after.billingEnabled);
    if (turningOff.length > 0) {
      const counts = await store.billingItemCounts(trx, turningOff.map((p) => p.matter.id));
      plans.forEach((p, i) => {
        if (!turningOff.includes(p)) return;
        const refusal = billingOffRefusal(withScheduleItems(counts.get(p.matter.id)!, p.after));
        if (refusal) Object.assign(errors, prefixed(pre(i), { billingEnabled: refusal }));
      });
      fail(errors);
    }

    const at = now();
    const saved = plans.filter((p) => !sameJson(p.overrides, p.current));
    await store.saveOverrides(trx, saved.map((p) => ({ matterId: p.matter.id, overrides: p.overrides })), at);
    for (const behaviour of ['bill', 'hide', 'no_charge'] as const) {
      const ids = plans.filter((p) => p.after.defaultTimeEntryBehaviour === behaviour && p.matter.defaultBehaviour !== behaviour).map((p) => p.matter.id);
      if (ids.length > 0) await store.setDefaultBehaviour(trx, ids, behaviour, at);
    }
    const events: PendingEvent[] = [];
    const audits: AuditEntry[] = [];
    for (const p of saved) {
      const { overridden } = overriddenAndInherited(p.overrides);
      events.push({ type: 'matters.billing_options_changed', payload: { matterId: p.matter.id, overridden, effective: p.after } });
      audits.push({ action: 'matters.billing_options_changed', entityType: 'matters_matter', entityId: p.matter.id, before: { overrides: p.current }, after: { overrides: p.overrides } });
    }
    await emitMany(trx, ctx, events, audits);

    const results: BillingOptionsResult[] = [];
    for (const p of plans) {
      const warnings = optionWarnings(p.after, p.matter.currency);
      if (p.after.ebilling.enabled && !p.before.ebilling.enabled) {
        const n = await store.uncodedUnbilledCount(trx, p.matter.id);
        if (n > 0) warnings.push(`${n} unbilled item${n === 1 ? '' : 's'} of ${p.matter.fileNumber} ${n === 1 ? 'has' : 'have'} no UTBMS codes: add them before e-billing.`);
      }
      results.push({ effective: p.after, ...overriddenAndInherited(p.overrides), warnings });
    }
    return results;
  }

  async function setBillingOptions(trx: Tx, ctx: CommandContext, matterId: string, input: SetBillingOptionsInput): Promise<BillingOptionsResult> {
    return (await applyOptions(trx, ctx, [{ ...input, matterId }], true))[0]!;
  }

  async function optionsView(ex: Executor, matterId: string): Promise<BillingOptionsView> {
    if (!await store.findMatter(ex, matterId)) throw notFound('Matter');
    const firm = (await loadFirm(ex)).settings;
    const overrides = (await store.findOverrides(ex, matterId))?.overrides ?? {};
    return { effective: effectiveOptions(firm.matterDefaults, overrides), ...overriddenAndInherited(overrides) };
  }

  /**
   * Seed 002's auto-fill on a matter: billed instalments stay; the rest of the quote is filled
   * with rows of the first amount (and one for the remainder), a billing cycle apart.
   */
  async function autoFillSchedule(trx: Tx, ctx: CommandContext, matterId: string, input: AutoFillScheduleInput): Promise<BillingOptionsResult> {
    await store.lockMatters(trx, [matterId]);
    const matter = await store.findMatter(trx, matterId);
    if (!matter) throw notFound('Matter');
    const firm = (await loadFirm(trx)).settings;
    const eff = effectiveOptions(firm.matterDefaults, (await store.findOverrides(trx, matterId))?.overrides ?? {});
    const billed = eff.fixedFee.schedule.filter((r) => r.invoiceNumber !== null);
    const quote = eff.quote.amountMinor;
    const left = quote === null ? null : quote - billed.reduce((a, r) => a + r.amountMinor, 0);
    const e: FieldErrors = {};
    if (left !== null && left <= 0) e.firstAmountMinor = 'nothing is left to schedule: billed instalments already cover the quote';
    else Object.assign(e, validateAutoFill(left, input.firstAmountMinor));
    if (input.startDate !== undefined && !isIsoDate(input.startDate)) e.startDate = 'must be a date (YYYY-MM-DD)';
    if (input.description !== undefined && (typeof input.description !== 'string' || input.description.length > 1000)) e.description = 'must be text of at most 1000 characters';
    fail(e);
    const rows: FixedFeeRow[] = fillSchedule(left!, input.firstAmountMinor, {
      startDate: input.startDate ?? matter.nextBillingDate ?? isoDate(clock.now()), cycle: matter.billingCycle,
      description: input.description?.trim() || undefined, newRowId: () => newId(clock),
    });
    return setBillingOptions(trx, ctx, matterId, { set: { fixedFee: { mode: 'custom_schedule', schedule: [...billed, ...rows] } } });
  }

  /** Billing sets (or, when a bill is deleted or re-drafted, clears) a schedule instalment's invoice number. */
  async function setScheduleInvoice(trx: Tx, ctx: CommandContext, matterId: string, rowId: string, invoiceNumber: string, mode: 'mark' | 'clear'): Promise<BillingOptionsView> {
    const e: FieldErrors = {};
    requireId(e, 'rowId', rowId);
    if (typeof invoiceNumber !== 'string' || invoiceNumber.trim() === '') e.invoiceNumber = 'is required';
    else if (invoiceNumber.length > 40) e.invoiceNumber = 'must be at most 40 characters';
    fail(e);
    await store.lockMatters(trx, [matterId]);
    const matter = await store.findMatter(trx, matterId);
    if (!matter) throw notFound('Matter');
    const ov = (await store.findOverrides(trx, matterId))?.overrides ?? {};
    const schedule = ov.fixedFee?.schedule ?? [];
    const index = schedule.findIndex((r) => r.rowId === rowId);
    if (index < 0) throw notFound('Schedule instalment');
    const row = schedule[index]!;
    const number = invoiceNumber.trim();
    if (mode === 'mark') {
      if (row.invoiceNumber === number) return optionsView(trx, matterId);
      if (row.invoiceNumber !== null) throw conflict(`This instalment is already billed on ${row.invoiceNumber}`);
    } else {
      if (row.invoiceNumber === null) return optionsView(trx, matterId);
      if (row.invoiceNumber !== number) throw conflict(`This instalment is billed on ${row.invoiceNumber}, not ${number}`);
    }
    const changedRow: FixedFeeRow = { ...row, invoiceNumber: mode === 'mark' ? number : null };
    const overrides: Partial<MatterBillingOptions> = { ...ov, fixedFee: { ...ov.fixedFee!, schedule: schedule.map((r, i) => (i === index ? changedRow : r)) } };
    await store.saveOverrides(trx, [{ matterId, overrides }], now());
    const view = await optionsView(trx, matterId);
    await emit(trx, ctx, 'matters.billing_options_changed', { matterId, overridden: view.overridden, effective: view.effective });
    await audit(trx, clock, ctx, {
      action: mode === 'mark' ? 'matters.schedule_row_billed' : 'matters.schedule_row_unbilled', entityType: 'matters_matter', entityId: matterId,
      before: row, after: changedRow,
    });
    return view;
  }

  // ---- clients, contacts, participants --------------------------------------------------

  /** Matter snapshots as matter_changed carries them, taken at `at`. */
  async function snapshots(ex: Executor, matters: readonly Matter[], at: string): Promise<MatterChanged[]> {
    if (matters.length === 0) return [];
    const clients = await store.findClients(ex, matters.map((m) => m.clientId));
    const parts = await store.participantsOf(ex, matters.map((m) => m.id));
    const contactIds = [
      ...matters.map((m) => m.billablePartyContactId).filter((v): v is string => v !== null),
      ...[...parts.values()].flat().map((p) => p.contactId),
    ];
    const contacts = await store.findContacts(ex, contactIds);
    return matters.map((m) => ({ ...matterChanged(m, clients.get(m.clientId)!, contacts, parts.get(m.id) ?? []), updatedAt: at }));
  }

  async function emitMatterChanged(trx: Tx, ctx: CommandContext, matters: readonly Matter[]): Promise<MatterChanged[]> {
    const snaps = await snapshots(trx, matters, now());
    await emitMany(trx, ctx, snaps.map((p) => ({ type: 'matters.matter_changed' as const, payload: p })), []);
    return snaps;
  }

  const contactChanged = (c: Contact, removed: boolean, at: string) => ({
    contactId: c.id, clientId: c.clientId, name: c.name, email: c.email, phone: c.phone, address: c.address, role: c.role, removed, updatedAt: at,
  });

  async function updateClient(trx: Tx, ctx: CommandContext, clientId: string, patch: UpdateClientInput): Promise<Client> {
    fail(validateClient(patch, { partial: true }));
    const before = await store.findClient(trx, clientId);
    if (!before) throw notFound('Client');
    const after: Client = {
      ...before,
      name: patch.name !== undefined ? patch.name.trim() : before.name,
      email: patch.email !== undefined ? opt(patch.email) : before.email,
      address: patch.address !== undefined ? opt(patch.address) : before.address,
      taxId: patch.taxId !== undefined ? opt(patch.taxId) : before.taxId,
      updatedAt: now(),
    };
    if (sameJson({ ...before, updatedAt: '' }, { ...after, updatedAt: '' })) return before;
    await store.updateClient(trx, after);
    await emit(trx, ctx, 'matters.client_changed', {
      clientId: after.id, clientNumber: after.clientNumber, name: after.name, email: after.email, address: after.address, taxId: after.taxId,
      updatedAt: after.updatedAt,
    });
    await audit(trx, clock, ctx, { action: 'matters.client_changed', entityType: 'matters_client', entityId: clientId, before, after });
    // Bills carry the client's name, and its email and address when it is the billable party.
    if (before.name !== after.name || before.email !== after.email || before.address !== after.address) {
      await emitMatterChanged(trx, ctx, await store.listMatters(trx, { clientId }));
    }
    return after;
  }

  async function addContact(trx: Tx, ctx: CommandContext, input: AddContactInput): Promise<Contact> {
    const e = validateContact(input);
    requireId(e, 'clientId', input.clientId);
    fail(e);
    if (!await store.findClient(trx, input.clientId)) throw invalid({ clientId: 'does not exist' });
    const at = now();
    const c: Contact = {
      id: newId(clock), clientId: input.clientId, name: input.name.trim(), email: opt(input.email), phone: opt(input.phone),
      address: opt(input.address), role: opt(input.role), createdAt: at, updatedAt: at,
    };
    await store.insertContacts(trx, [c]);
    await emit(trx, ctx, 'matters.contact_changed', contactChanged(c, false, at));
    await audit(trx, clock, ctx, { action: 'matters.contact_added', entityType: 'matters_contact', entityId: c.id, after: c });
    return c;
  }

  async function updateContact(trx: Tx, ctx: CommandContext, contactId: string, patch: UpdateContactInput): Promise<Contact> {
    const e = validateContact(patch, { partial: true });
    if ((patch as { clientId?: unknown }).clientId !== undefined) e.clientId = 'cannot be changed';
    fail(e);
    const before = await store.findContact(trx, contactId);
    if (!before) throw notFound('Contact');
    const after: Contact = {
      ...before,
      name: patch.name !== undefined ? patch.name.trim() : before.name,
      email: patch.email !== undefined ? opt(patch.email) : before.email,
      phone: patch.phone !== undefined ? opt(patch.phone) : before.phone,
      address: patch.address !== undefined ? opt(patch.address) : before.address,
      role: patch.role !== undefined ? opt(patch.role) : before.role,
      updatedAt: now(),
    };
    if (sameJson({ ...before, updatedAt: '' }, { ...after, updatedAt: '' })) return before;
    await store.updateContact(trx, after);
    await emit(trx, ctx, 'matters.contact_changed', contactChanged(after, false, after.updatedAt));
    await audit(trx, clock, ctx, { action: 'matters.contact_changed', entityType: 'matters_contact', entityId: contactId, before, after });
    const uses = await store.mattersUsingContact(trx, contactId);
    const matters = await store.findMatters(trx, [...uses.billableParty, ...uses.participant]);
    await emitMatterChanged(trx, ctx, [...matters.values()]);
    return after;
  }

  async function removeContact(trx: Tx, ctx: CommandContext, contactId: string): Promise<void> {
    const before = await store.findContact(trx, contactId);
    if (!before) throw notFound('Contact');
    const uses = await store.mattersUsingContact(trx, contactId);
    if (uses.billableParty.length > 0) {
      const files = [...(await store.findMatters(trx, uses.billableParty)).values()].map((m) => m.fileNumber).sort();
      throw conflict(`${before.name} is the billable party of ${listFiles(files)}: choose another billable party there first`);
    }
    await store.deleteContact(trx, contactId);
    await emit(trx, ctx, 'matters.contact_changed', contactChanged(before, true, now()));
    await audit(trx, clock, ctx, { action: 'matters.contact_removed', entityType: 'matters_contact', entityId: contactId, before });
    await emitMatterChanged(trx, ctx, [...(await store.findMatters(trx, uses.participant)).values()]);
  }

  /**
   * Set the billable party and participants of one or many matters (errors prefixed
   * `items.N.` for many). Contacts must belong to the matter's client.
   */
  async function applyParticipants(trx: Tx, ctx: CommandContext, items: readonly (SetMatterParticipantsInput & { matterId: string })[], single: boolean): Promise<MatterChanged[]> {
    const errors: FieldErrors = {};
    const pre = (i: number) => (single ? '' : `items.${i}`);
    const seen = new Set<string>();
    items.forEach((input, i) => {
      const e = validateParticipants(input?.participants);
      const bp = input?.billablePartyContactId;
      if (bp !== null && (typeof bp !== 'string' || bp.trim() === '')) e.billablePartyContactId = 'must be a contact id, or null for the client itself';
      if (!single && seen.has(input.matterId)) e.matterId = 'is listed twice';
      seen.add(input.matterId);
      Object.assign(errors, prefixed(pre(i), e));
    });
    fail(errors);
    const matters = await store.findMatters(trx, items.map((i) => i.matterId));
    if (single && !matters.has(items[0]!.matterId)) throw notFound('Matter');
    const contacts = await store.findContacts(trx, items.flatMap((i) => [
      ...(i.billablePartyContactId ? [i.billablePartyContactId] : []), ...i.participants.map((p) => p.contactId),
    ]));
    items.forEach((input, i) => {
      const e: FieldErrors = {};
      const matter = matters.get(input.matterId);
      if (!matter) e.matterId = 'does not exist';
      const refuse = (id: string): string | null => {
        const c = contacts.get(id);
        if (!c) return 'does not exist';
        return !matter || c.clientId === matter.clientId ? null : "is not a contact of the matter's client";
      };
      const bp = input.billablePartyContactId;
      const why = bp ? refuse(bp) : null;
      if (why) e.billablePartyContactId = why;
      input.participants.forEach((p, k) => {
        const w = refuse(p.contactId);
        if (w) e[`participants.${k}.contactId`] = w;
      });
      Object.assign(errors, prefixed(pre(i), e));
    });
    fail(errors);
    const ids = items.map((i) => i.matterId);
    const beforeParts = await store.participantsOf(trx, ids);
    const at = now();
    const afters = items.map((input) => ({ ...matters.get(input.matterId)!, billablePartyContactId: input.billablePartyContactId, updatedAt: at }));
    await store.setBillableParties(trx, afters.map((m) => ({ matterId: m.id, contactId: m.billablePartyContactId })), at);
    await store.replaceParticipantsMany(trx, items.map((i) => ({ matterId: i.matterId, participants: i.participants.map((p) => ({ contactId: p.contactId, role: p.role.trim() })) })));
    const snaps = await emitMatterChanged(trx, ctx, afters);
    await emitMany(trx, ctx, [], items.map((input) => ({
      action: 'matters.participants_set', entityType: 'matters_matter', entityId: input.matterId,
      before: { billablePartyContactId: matters.get(input.matterId)!.billablePartyContactId, participants: beforeParts.get(input.matterId) ?? [] },
      after: { billablePartyContactId: input.billablePartyContactId, participants: input.participants },
    })));
    return snaps;
  }

  async function setMatterParticipants(trx: Tx, ctx: CommandContext, matterId: string, input: SetMatterParticipantsInput): Promise<MatterChanged> {
    return (await applyParticipants(trx, ctx, [{ ...input, matterId }], true))[0]!;
  }

  // ---- matter details and lifecycle -----------------------------------------------------

  async function updateMatter(trx: Tx, ctx: CommandContext, matterId: string, patch: UpdateMatterInput, expectedVersion?: number): Promise<Matter> {
    const e = validateMatter(patch, { partial: true });
    for (const k of ['currency', 'openedOn', 'clientId', 'status', 'closedOn'] as const) {
      if ((patch as Record<string, unknown>)[k] !== undefined) e[k] = k === 'status' || k === 'closedOn' ? 'changes by closing or reopening the matter' : 'cannot be changed';
    }
    if (patch.responsibleTimekeeperId !== undefined) requireId(e, 'responsibleTimekeeperId', patch.responsibleTimekeeperId);
    if (patch.billingTimekeeperId !== undefined) requireId(e, 'billingTimekeeperId', patch.billingTimekeeperId);
    if (patch.originatingTimekeeperId !== undefined && patch.originatingTimekeeperId !== null) requireId(e, 'originatingTimekeeperId', patch.originatingTimekeeperId);
    fail(e);
    await store.lockMatters(trx, [matterId]);
    const before = await store.findMatter(trx, matterId);
    if (!before) throw notFound('Matter');
    await checkVersion(trx, 'matters_matter', matterId, 'matter', expectedVersion);
    const cycle = patch.billingCycle ?? before.billingCycle;
    let nextBillingDate = patch.nextBillingDate !== undefined ? patch.nextBillingDate : before.nextBillingDate;
    /** The date a cycle given without a date is counted from (today): its day of month is the one later dates keep. */
    let countedFrom: string | null = null;
    if (cycle === 'none') {
      if (patch.nextBillingDate !== undefined && patch.nextBillingDate !== null) e.nextBillingDate = 'must be empty when the matter has no billing cycle';
      nextBillingDate = null;
    } else if (nextBillingDate === null) {
      if (patch.nextBillingDate === null) e.nextBillingDate = 'is required when the matter has a billing cycle';
      else nextBillingDate = advanceBillingDate(countedFrom = isoDate(clock.now()), cycle);
    }
    const roles = {
      responsibleTimekeeperId: patch.responsibleTimekeeperId ?? before.responsibleTimekeeperId,
      billingTimekeeperId: patch.billingTimekeeperId ?? before.billingTimekeeperId,
      originatingTimekeeperId: patch.originatingTimekeeperId !== undefined ? patch.originatingTimekeeperId : before.originatingTimekeeperId,
    };
    const given = (['responsibleTimekeeperId', 'billingTimekeeperId', 'originatingTimekeeperId'] as const).filter((k) => patch[k] !== undefined && patch[k] !== null);
    const tks = await store.findTimekeepers(trx, given.map((k) => roles[k]!));
    for (const k of given) {
      const tk = tks.get(roles[k]!);
      if (!tk) e[k] = 'does not exist';
      else if (!tk.active && k !== 'originatingTimekeeperId') e[k] = `is inactive (${tk.initials})`;
    }
    fail(e);
    const after: Matter = {
      ...before, ...roles,
      name: patch.name !== undefined ? patch.name.trim() : before.name,
      practiceArea: patch.practiceArea !== undefined ? opt(patch.practiceArea) : before.practiceArea,
      billingCycle: cycle, nextBillingDate,
      wipCapMinor: patch.wipCapMinor !== undefined ? patch.wipCapMinor : before.wipCapMinor,
      timeUnitMinutes: patch.timeUnitMinutes ?? before.timeUnitMinutes,
      roundingMode: patch.roundingMode ?? before.roundingMode,
      updatedAt: now(),
    };
    const behaviourChanges = patch.defaultBehaviour !== undefined && patch.defaultBehaviour !== before.defaultBehaviour;
    if (!behaviourChanges && sameJson({ ...before, updatedAt: '' }, { ...after, updatedAt: '' })) return before;
    if (!await store.updateMatter(trx, after, expectedVersion)) throw stale('matter');
    // A date a person sets sets the day of month later dates keep (a new cycle alone keeps it: the date it shows may be a short month's end).
    if (after.nextBillingDate !== before.nextBillingDate && (patch.nextBillingDate !== undefined || before.nextBillingDate === null || after.nextBillingDate === null)) {
      await store.setBillingAnchor(trx, matterId, after.nextBillingDate === null ? null : (countedFrom ?? after.nextBillingDate));
    }
    // The default behaviour is also a billing option: set it there, which keeps the two in step.
    if (behaviourChanges) await setBillingOptions(trx, ctx, matterId, { set: { defaultTimeEntryBehaviour: patch.defaultBehaviour! } });
    const final = await store.findMatter(trx, matterId);
    assert(final, 'the matter exists');
    await emitMatterChanged(trx, ctx, [final]);
    await audit(trx, clock, ctx, { action: 'matters.matter_changed', entityType: 'matters_matter', entityId: matterId, before, after: final });
    return final;
  }

  /**
   * Bills were approved (`billedOn`, their dates): each matter's next billing date moves past
   * its bill's date by whole cycles (nextBillingDateAfter), so the matter is not due again, nor
   * its every-cycle fixed fee billed again, until the next cycle. One read for all the matters
   * (a bill run's approvals arrive by the thousand); only a matter that moves is written,
   * announced and audited, under the context of the approval that moved it. Idempotent (the
   * bill follower may see an approval twice, or a re-approval); a matter gone is skipped.
   */
  async function advanceNextBillingDates(trx: Tx, moves: readonly { ctx: CommandContext; matterId: string; billId: string; billedOn: string }[]): Promise<void> {
    if (moves.length === 0) return;
    const ids = [...new Set(moves.map((m) => m.matterId))];
    await store.lockMatters(trx, ids);
    const found = await store.findMatters(trx, ids);
    const anchors = await store.billingAnchors(trx, ids);
    const moved = new Map<string, { before: Matter; after: Matter; ctx: CommandContext; billedOn: string; billId: string }>();
    const dateMoves: store.BillingDateMove[] = [];
    for (const { ctx, matterId, billId, billedOn } of moves) {
      const current = moved.get(matterId)?.after ?? found.get(matterId);
      if (!current) continue;
      const next = nextBillingDateAfter(current.nextBillingDate, current.billingCycle, billedOn, anchors.get(matterId) ?? null);
      if (next === current.nextBillingDate || next === null) continue;
      dateMoves.push({ billId, matterId, beforeDate: current.nextBillingDate, afterDate: next });
      moved.set(matterId, { before: moved.get(matterId)?.before ?? current, after: { ...current, nextBillingDate: next, updatedAt: now() }, ctx, billedOn, billId });
    }
    await store.recordBillingDateMoves(trx, dateMoves, now());
    for (const { before, after, ctx, billedOn, billId } of moved.values()) {
      if (!await store.updateMatter(trx, after)) throw stale('matter');
      const final = await store.findMatter(trx, after.id);
      assert(final, 'the matter exists');
      await emitMatterChanged(trx, ctx, [final]);
      await audit(trx, clock, ctx, { action: 'matters.next_billing_date_advanced', entityType: 'matters_matter', entityId: after.id, before: { nextBillingDate: before.nextBillingDate }, after: { nextBillingDate: after.nextBillingDate, billedOn, billId } });
    }
  }

  /**
   * A bill was reverted, re-drafted or deleted: the next billing date its approval moved goes
   * back, unless something has moved it since (a later bill, a person): the cycle's bill is gone,
   * so the matter is due again and its every-cycle fixed fee is billed once, not never.
   * Idempotent (the move is taken once).
   */
  async function restoreNextBillingDate(trx: Tx, ctx: CommandContext, billId: string): Promise<void> {
    const move = await store.takeBillingDateMove(trx, billId);
    if (!move) return;
    await store.lockMatters(trx, [move.matterId]);
    const current = await store.findMatter(trx, move.matterId);
    if (!current || current.nextBillingDate !== move.afterDate) return;
    const after: Matter = { ...current, nextBillingDate: move.beforeDate, updatedAt: now() };
    if (!await store.updateMatter(trx, after)) throw stale('matter');
    const final = await store.findMatter(trx, after.id);
    assert(final, 'the matter exists');
    await emitMatterChanged(trx, ctx, [final]);
    await audit(trx, clock, ctx, { action: 'matters.next_billing_date_restored', entityType: 'matters_matter', entityId: after.id, before: { nextBillingDate: current.nextBillingDate }, after: { nextBillingDate: move.beforeDate, billId } });
  }

  async function closeMatter(trx: Tx, ctx: CommandContext, matterId: string, closedOn: string): Promise<Matter> {
    if (!isIsoDate(closedOn)) throw invalid({ closedOn: 'must be a date (YYYY-MM-DD)' });
    await store.lockMatters(trx, [matterId]);
    const before = await store.findMatter(trx, matterId);
    if (!before) throw notFound('Matter');
    if (before.status === 'closed') throw conflict(`Matter ${before.fileNumber} is already closed (on ${before.closedOn})`);
    if (closedOn < before.openedOn) throw invalid({ closedOn: `must be on or after the opening date, ${before.openedOn}` });
    // Closing takes effect now (the matter leaves the lists and billing at once): a date to come would say otherwise.
    const todayIso = isoDate(clock.now());
    if (closedOn > todayIso) throw invalid({ closedOn: `must be on or before today, ${todayIso}: a matter is closed from the day it is closed` });
    const after: Matter = { ...before, status: 'closed', closedOn, updatedAt: now() };
    await store.updateMatter(trx, after);
    await emitMatterChanged(trx, ctx, [after]);
    await audit(trx, clock, ctx, { action: 'matters.matter_closed', entityType: 'matters_matter', entityId: matterId, before, after });
    return after;
  }

  async function reopenMatter(trx: Tx, ctx: CommandContext, matterId: string): Promise<Matter> {
    await store.lockMatters(trx, [matterId]);
    const before = await store.findMatter(trx, matterId);
    if (!before) throw notFound('Matter');
    if (before.status === 'open') throw conflict(`Matter ${before.fileNumber} is open already`);
    const after: Matter = { ...before, status: 'open', closedOn: null, updatedAt: now() };
    await store.updateMatter(trx, after);
    await emitMatterChanged(trx, ctx, [after]);
    await audit(trx, clock, ctx, { action: 'matters.matter_reopened', entityType: 'matters_matter', entityId: matterId, before, after });
    return after;
  }

  // ---- timekeepers ----------------------------------------------------------------------

  async function updateTimekeeper(trx: Tx, ctx: CommandContext, timekeeperId: string, patch: UpdateTimekeeperInput): Promise<Timekeeper> {
    fail(validateTimekeeper(patch, { partial: true }));
    const before = await store.findTimekeeper(trx, timekeeperId);
    if (!before) throw notFound('Timekeeper');
    const classification = patch.classification ?? before.classification;
    // A LEDES code that was the old classification's default follows the new classification.
    const followsDefault = before.ledesClassification === defaultLedesClassification(before.classification);
    const after: Timekeeper = {
      ...before,
      name: patch.name !== undefined ? patch.name.trim() : before.name,
      classification,
      ledesClassification: patch.ledesClassification ?? (followsDefault ? defaultLedesClassification(classification) : before.ledesClassification),
      active: patch.active ?? before.active,
      staffEmail: patch.staffEmail !== undefined ? staffEmailOf(patch.staffEmail) : before.staffEmail,
      updatedAt: now(),
    };
    if (sameJson({ ...before, updatedAt: '' }, { ...after, updatedAt: '' })) return before;
    await refuseLinkedElsewhere(trx, after);
    try {
      await store.updateTimekeeper(trx, after);
    } catch (err) {
      if (isUniqueViolation(err)) throw invalid({ staffEmail: 'is linked to another timekeeper' });
      throw err;
    }
    await emit(trx, ctx, 'matters.timekeeper_changed', {
      timekeeperId: after.id, initials: after.initials, name: after.name, classification: after.classification,
      ledesClassification: after.ledesClassification, active: after.active, updatedAt: after.updatedAt,
    });
    await audit(trx, clock, ctx, { action: 'matters.timekeeper_changed', entityType: 'matters_timekeeper', entityId: timekeeperId, before, after });
    return after;
  }

  // ---- charge types (products) ----------------------------------------------------------

  async function createChargeType(trx: Tx, ctx: CommandContext, input: CreateChargeTypeInput): Promise<ChargeType> {
    const e = validateChargeType(input);
    const firm = (await loadFirm(trx)).settings;
    if (!e.taxCode) Object.assign(e, taxCodeErrors(opt(input.taxCode), firm.taxRates.map((r) => r.code)));
    fail(e);
    if (await store.findChargeTypeByCode(trx, input.code)) throw invalid({ code: 'is already used by another charge type' });
    const at = now();
    const t: ChargeType = {
      id: newId(clock), code: input.code, name: input.name.trim(), defaultPriceMinor: input.defaultPriceMinor, taxCode: opt(input.taxCode),
      taskCode: input.taskCode ?? null, activityCode: input.activityCode ?? null, active: input.active ?? true, createdAt: at, updatedAt: at,
    };
    try {
      await store.insertChargeType(trx, t);
    } catch (err) {
      if (isUniqueViolation(err)) throw invalid({ code: 'is already used by another charge type' });
      throw err;
    }
    await emit(trx, ctx, 'matters.charge_type_changed', chargeTypeChanged(t));
    await audit(trx, clock, ctx, { action: 'matters.charge_type_created', entityType: 'matters_charge_type', entityId: t.id, after: t });
    return t;
  }

  /** `seen`: the type as the form showed it (chargeTypeSeen); changed since, the save is refused (409). */
  async function updateChargeType(trx: Tx, ctx: CommandContext, id: string, patch: UpdateChargeTypeInput, seen?: string): Promise<ChargeType> {
    const e = validateChargeType(patch, { partial: true });
    const firm = (await loadFirm(trx)).settings;
    if (!e.taxCode && patch.taxCode !== undefined) Object.assign(e, taxCodeErrors(opt(patch.taxCode), firm.taxRates.map((r) => r.code)));
    fail(e);
    // Postgres: the row held while it is compared and written, so two saves of one form are checked one after the other.
    await store.lockChargeType(trx, id);
    const before = await store.findChargeType(trx, id);
    if (!before) throw notFound('Charge type');
    if (seen !== undefined && seen !== chargeTypeSeen(before)) {
      throw conflict(`Charge type ${before.code} was changed by someone else since you opened it: reload to see their change, then make yours again`);
    }
    if (patch.code !== undefined && patch.code !== before.code && await store.findChargeTypeByCode(trx, patch.code)) {
      throw invalid({ code: 'is already used by another charge type' });
    }
    const after: ChargeType = {
      ...before,
      code: patch.code ?? before.code,
      name: patch.name !== undefined ? patch.name.trim() : before.name,
      defaultPriceMinor: patch.defaultPriceMinor ?? before.defaultPriceMinor,
      taxCode: patch.taxCode !== undefined ? opt(patch.taxCode) : before.taxCode,
      taskCode: patch.taskCode !== undefined ? patch.taskCode : before.taskCode,
      activityCode: patch.activityCode !== undefined ? patch.activityCode : before.activityCode,
      active: patch.active ?? before.active,
      updatedAt: now(),
    };
    if (sameJson({ ...before, updatedAt: '' }, { ...after, updatedAt: '' })) return before;
    await store.updateChargeType(trx, after);
    await emit(trx, ctx, 'matters.charge_type_changed', chargeTypeChanged(after));
    await audit(trx, clock, ctx, { action: 'matters.charge_type_changed', entityType: 'matters_charge_type', entityId: id, before, after });
    return after;
  }

  /** An edited item of an e-billed matter must still carry its UTBMS codes. */
  async function updateCodeErrors(trx: Tx, matter: Matter, item: CodedItem): Promise<FieldErrors> {
    const firm = (await loadFirm(trx)).settings;
    return codeErrors(item, (await ebillingOf(trx, firm, [matter.id])).get(matter.id), matter);
  }

  async function updateFixedCharge(trx: Tx, ctx: CommandContext, id: string, patch: UpdateFixedChargeInput, expectedVersion?: number): Promise<FixedCharge> {
    const e = validateFixedCharge(patch, { partial: true });
    if ((patch as { chargeTypeId?: unknown }).chargeTypeId !== undefined) e.chargeTypeId = 'cannot be changed: delete the charge and record another';
    fail(e);
    const before = await store.findFixedCharge(trx, id);
    if (!before) throw notFound('Fixed charge');
    if (before.status !== 'unbilled') throw notEditable('fixed charge', before.status);
    await matterOpenForChange(trx, 'matters_fixed_charge', id, before.matterId, 'fixed charge');
    await checkVersion(trx, 'matters_fixed_charge', id, 'fixed charge', expectedVersion);
    const matter = await store.findMatter(trx, before.matterId);
    const type = await store.findChargeType(trx, before.chargeTypeId);
    assert(matter && type, 'a fixed charge has a matter and a charge type');
    const quantityMilli = patch.quantityMilli ?? before.quantityMilli;
    const unitPriceMinor = patch.unitPriceMinor ?? before.unitPriceMinor;
    const tooLarge = lineAmountError(quantityMilli, unitPriceMinor, matter.currency);
    if (tooLarge) throw invalid({ amount: tooLarge });
    const after: FixedCharge = {
      ...before,
      chargedOn: patch.chargedOn ?? before.chargedOn,
      quantityMilli, unitPriceMinor, amountMinor: fixedChargeAmountMinor(quantityMilli, unitPriceMinor),
      taxCode: patch.taxCode !== undefined ? opt(patch.taxCode) : before.taxCode,
      taskCode: patch.taskCode !== undefined ? patch.taskCode : before.taskCode,
      activityCode: patch.activityCode !== undefined ? patch.activityCode : before.activityCode,
      description: patch.description !== undefined ? patch.description.trim() : before.description,
      behaviour: patch.behaviour ?? before.behaviour,
      quoted: patch.quoted ?? before.quoted,
      updatedAt: now(),
    };
    const firm = (await loadFirm(trx)).settings;
    fail({
      ...taxCodeErrors(after.taxCode, firm.taxRates.map((r) => r.code)),
      ...await updateCodeErrors(trx, matter, { kind: 'fixed_charge', taskCode: after.taskCode, activityCode: after.activityCode }),
    });
    const counts = (f: FixedCharge) => (f.behaviour === 'bill' && !f.quoted ? f.amountMinor : 0);
    await billingOffOnEdit(trx, matter, { table: 'matters_fixed_charge', id }, before.behaviour, after.behaviour);
    await capOnEdit(trx, matter, { table: 'matters_fixed_charge', id }, { before: counts(before), after: counts(after) }, after.behaviour !== before.behaviour, firm);
    if (!await store.updateUnbilledFixedCharge(trx, after, expectedVersion)) await wipNotUpdated(trx, 'matters_fixed_charge', id, 'fixed charge', expectedVersion);
    await emit(trx, ctx, 'matters.wip_updated', fixedChargeWip(after, matter, type));
    await audit(trx, clock, ctx, { action: 'matters.fixed_charge_updated', entityType: 'matters_fixed_charge', entityId: id, before, after });
    return after;
  }

  async function deleteFixedCharge(trx: Tx, ctx: CommandContext, id: string, expectedVersion?: number): Promise<void> {
    const before = await store.findFixedCharge(trx, id);
    if (!before) throw notFound('Fixed charge');
    if (before.status === 'unbilled') await matterOpenForChange(trx, 'matters_fixed_charge', id, before.matterId, 'fixed charge');
    await checkVersion(trx, 'matters_fixed_charge', id, 'fixed charge', expectedVersion);
    if (before.status !== 'unbilled' || !await store.deleteUnbilled(trx, 'matters_fixed_charge', id, expectedVersion)) {
      if (before.status === 'unbilled') await wipNotUpdated(trx, 'matters_fixed_charge', id, 'fixed charge', expectedVersion);
      throw notEditable('fixed charge', before.status);
    }
    await store.recordDeletedItem(trx, { id, kind: 'fixed_charge', matterId: before.matterId, at: now() });
    await emit(trx, ctx, 'matters.wip_deleted', { kind: 'fixed_charge', id, matterId: before.matterId });
    await audit(trx, clock, ctx, { action: 'matters.fixed_charge_deleted', entityType: 'matters_fixed_charge', entityId: id, before });
  }

  /**
   * Move WIP items to a status (billing drafted, billed or released them): what the billing-off
   * rule and the WIP cap count. One wip_status_changed event names them all. Items that are
   * not in matters are refused; `leaveAlone` (the bill follower, which must never block on
   * an item deleted meanwhile) instead skips them, and the items already at that status, and
   * returns the ones not found. One read of the items either way.
   */
  async function setWipStatus(trx: Tx, ctx: CommandContext, items: readonly { kind: WipKindName; id: string }[], status: WipStatus,
    opts: { leaveAlone?: boolean } = {}): Promise<{ missing: { kind: WipKindName; id: string }[] }> {
    const [result] = await setWipStatusMany(trx, [{ ctx, items }], status, opts);
    return result!;
  }

  /**
   * setWipStatus for several moves in turn (the bill follower taking a run of bills' events
   * at once), each under its own context: the same rows, events and audit rows as one
   * setWipStatus per move in that order (an item a move has just moved counts as at that
   * status for the next), read and written in a few statements for all of them.
   */
  async function setWipStatusMany(trx: Tx, moves: readonly { ctx: CommandContext; items: readonly { kind: WipKindName; id: string }[] }[], status: WipStatus,
    opts: { leaveAlone?: boolean } = {}): Promise<{ missing: { kind: WipKindName; id: string }[] }[]> {
    assert(moves.length === 1 || opts.leaveAlone === true, 'several moves at once only leave alone what is missing');
    const all = moves.flatMap((m) => m.items);
    const ids = (k: WipKindName) => all.filter((i) => i.kind === k).map((i) => i.id);
    // Only what moving them needs (a bill's worth of items, or a whole mass-billing run's).
    const found = {
      time: await store.wipHeads(trx, 'matters_time_entry', ids('time')),
      disbursement: await store.wipHeads(trx, 'matters_disbursement', ids('disbursement')),
      fixed_charge: await store.wipHeads(trx, 'matters_fixed_charge', ids('fixed_charge')),
    };
    const headOf = (it: { kind: WipKindName; id: string }) =>
      (it.kind === 'time' || it.kind === 'disbursement' || it.kind === 'fixed_charge' ? found[it.kind].get(it.id) : undefined);
    const errors: FieldErrors = {};
    if (!opts.leaveAlone) moves[0]!.items.forEach((it, i) => { if (!headOf(it)) errors[`items.${i}`] = `no ${String(it.kind).replace('_', ' ')} ${it.id}`; });
    if (!['unbilled', 'draft', 'billed'].includes(status)) errors.status = 'must be one of: unbilled, draft, billed';
    fail(errors);
    // Each move in turn against the statuses as the moves before it left them.
    const current = new Map<string, WipStatus>();
    const tableOf = { time: 'matters_time_entry', disbursement: 'matters_disbursement', fixed_charge: 'matters_fixed_charge' } as const;
    const moving = { time: [] as string[], disbursement: [] as string[], fixed_charge: [] as string[] };
    const events: { ctx: CommandContext; type: string; payload: unknown }[] = [];
    const audits: { ctx: CommandContext; entry: AuditEntry }[] = [];
    const results: { missing: { kind: WipKindName; id: string }[] }[] = [];
    for (const move of moves) {
      const missing: { kind: WipKindName; id: string }[] = [];
      const moved: { kind: 'time' | 'disbursement' | 'fixed_charge'; id: string; matterId: string }[] = [];
      const seen = new Set<string>();
      for (const it of move.items) {
        const head = headOf(it);
        if (!head) { missing.push(it); continue; }
        const kind = it.kind as 'time' | 'disbursement' | 'fixed_charge';
        const key = `${kind}:${it.id}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const before = current.get(key) ?? head.status;
        if (opts.leaveAlone && before === status) continue;
        current.set(key, status);
        moving[kind].push(it.id);
        moved.push({ kind, id: it.id, matterId: head.matterId });
        audits.push({ ctx: move.ctx, entry: { action: 'matters.wip_status_set', entityType: tableOf[kind], entityId: it.id, before: { status: before }, after: { status } } });
      }
      // One event for the lot (a bill's items move together); an audit row per item.
      if (moved.length > 0) {
        const byKind = (k: string) => moved.filter((m) => m.kind === k);
        events.push({ ctx: move.ctx, type: 'matters.wip_status_changed', payload: { status, items: [...byKind('time'), ...byKind('disbursement'), ...byKind('fixed_charge')] } });
      }
      results.push({ missing });
    }
    const at = now();
    for (const kind of ['time', 'disbursement', 'fixed_charge'] as const) await store.setWipStatus(trx, tableOf[kind], [...new Set(moving[kind])], status, at);
    await appendEventsEach(trx, clock, events);
    await auditEach(trx, clock, audits);
    return results;
  }

  /** The commands bound to one transaction. */
  function bind(trx: Tx) {
    return {
      /** Read inside the transaction, seeing its own writes. */
      getBillingOptions: (matterId: string) => optionsView(trx, matterId),
      createTimekeeper: (ctx: CommandContext, input: CreateTimekeeperInput) => createTimekeeper(trx, ctx, input),
      setTimekeeperRate: (ctx: CommandContext, input: SetTimekeeperRateInput) => setTimekeeperRate(trx, ctx, input),
      createClient: (ctx: CommandContext, input: CreateClientInput) => createClient(trx, ctx, input),
      setClientRate: (ctx: CommandContext, input: SetClientRateInput) => setClientRate(trx, ctx, input),
      openMatter: (ctx: CommandContext, input: OpenMatterInput) => openMatter(trx, ctx, input),
      setMatterRate: (ctx: CommandContext, input: SetMatterRateInput) => setMatterRate(trx, ctx, input),
      recordTimeEntry: (ctx: CommandContext, input: RecordTimeEntryInput) => recordTimeEntry(trx, ctx, input),
      recordDisbursement: (ctx: CommandContext, input: RecordDisbursementInput) => recordDisbursement(trx, ctx, input),
      /** Many items at once: multi-row inserts; a 422 names fields as `timeEntries.3.narrative`. */
      recordWip: (ctx: CommandContext, input: RecordWipInput) => recordWip(trx, ctx, input),
      updateTimeEntry: (ctx: CommandContext, id: string, patch: UpdateTimeEntryInput, expectedVersion?: number) => updateTimeEntry(trx, ctx, id, patch, expectedVersion),
      updateDisbursement: (ctx: CommandContext, id: string, patch: UpdateDisbursementInput, expectedVersion?: number) => updateDisbursement(trx, ctx, id, patch, expectedVersion),
      deleteTimeEntry: (ctx: CommandContext, id: string, expectedVersion?: number) => deleteTimeEntry(trx, ctx, id, expectedVersion),
      deleteDisbursement: (ctx: CommandContext, id: string, expectedVersion?: number) => deleteDisbursement(trx, ctx, id, expectedVersion),
      // Work in progress: fixed charges, warnings, statuses.
      recordFixedCharge: (ctx: CommandContext, input: RecordFixedChargeInput) => recordFixedCharge(trx, ctx, input),
      /** The same as recordTimeEntry, with the WIP-cap warnings (firm policy 'warn'). */
      recordTimeEntryChecked: (ctx: CommandContext, input: RecordTimeEntryInput) => recordTimeEntryChecked(trx, ctx, input),
      recordDisbursementChecked: (ctx: CommandContext, input: RecordDisbursementInput) => recordDisbursementChecked(trx, ctx, input),
      recordFixedChargeChecked: (ctx: CommandContext, input: RecordFixedChargeInput) => recordFixedChargeChecked(trx, ctx, input),
      updateFixedCharge: (ctx: CommandContext, id: string, patch: UpdateFixedChargeInput, expectedVersion?: number) => updateFixedCharge(trx, ctx, id, patch, expectedVersion),
      deleteFixedCharge: (ctx: CommandContext, id: string, expectedVersion?: number) => deleteFixedCharge(trx, ctx, id, expectedVersion),
      setWipStatus: (ctx: CommandContext, items: readonly { kind: WipKindName; id: string }[], status: WipStatus, opts?: { leaveAlone?: boolean }) => setWipStatus(trx, ctx, items, status, opts),
      /** Several setWipStatus moves in turn, each under its own context, in a few statements (the bill follower). */
      setWipStatusMany: (moves: readonly { ctx: CommandContext; items: readonly { kind: WipKindName; id: string }[] }[], status: WipStatus, opts: { leaveAlone: true }) =>
        setWipStatusMany(trx, moves, status, opts),
      // Firm settings and matter billing options.
      ensureFirmSettings: (ctx: CommandContext) => ensureFirm(trx, ctx),
      updateFirmSettings: (ctx: CommandContext, patch: FirmSettingsPatch, expected?: { part: 'general' | 'all' | readonly BillingOptionSection[]; seen: string }) => updateFirmSettings(trx, ctx, patch, expected),
      setBillingOptions: (ctx: CommandContext, matterId: string, input: SetBillingOptionsInput) => setBillingOptions(trx, ctx, matterId, input),
      /** Many matters at once (imports, seeding): multi-row writes; a 422 names fields as `items.3.discount.kind`. */
      setBillingOptionsMany: (ctx: CommandContext, items: readonly (SetBillingOptionsInput & { matterId: string })[]) => applyOptions(trx, ctx, items, false),
      autoFillSchedule: (ctx: CommandContext, matterId: string, input: AutoFillScheduleInput) => autoFillSchedule(trx, ctx, matterId, input),
      markScheduleRowBilled: (ctx: CommandContext, matterId: string, rowId: string, invoiceNumber: string) =>
        setScheduleInvoice(trx, ctx, matterId, rowId, invoiceNumber, 'mark'),
      /** Hold these matters to the end of the transaction, in id order (Postgres): a run's bills' matters, before their schedules and dates change. */
      holdMatters: (matterIds: readonly string[]) => store.lockMatters(trx, matterIds),
      /** Bills were approved: each matter's next billing date moves past its bill's date (the bill follower, one approval or a run's). */
      advanceNextBillingDates: (moves: readonly { ctx: CommandContext; matterId: string; billId: string; billedOn: string }[]) => advanceNextBillingDates(trx, moves),
      restoreNextBillingDate: (ctx: CommandContext, billId: string) => restoreNextBillingDate(trx, ctx, billId),
      /** Undo markScheduleRowBilled when the bill is deleted or re-drafted (the invoice number must match). */
      clearScheduleRowBilled: (ctx: CommandContext, matterId: string, rowId: string, invoiceNumber: string) =>
        setScheduleInvoice(trx, ctx, matterId, rowId, invoiceNumber, 'clear'),
      // Clients, contacts, participants, matters, timekeepers, charge types.
      updateClient: (ctx: CommandContext, clientId: string, patch: UpdateClientInput) => updateClient(trx, ctx, clientId, patch),
      addContact: (ctx: CommandContext, input: AddContactInput) => addContact(trx, ctx, input),
      updateContact: (ctx: CommandContext, contactId: string, patch: UpdateContactInput) => updateContact(trx, ctx, contactId, patch),
      removeContact: (ctx: CommandContext, contactId: string) => removeContact(trx, ctx, contactId),
      setMatterParticipants: (ctx: CommandContext, matterId: string, input: SetMatterParticipantsInput) => setMatterParticipants(trx, ctx, matterId, input),
      /** Many matters at once (imports, seeding); a 422 names fields as `items.3.participants.0.contactId`. */
      setMatterParticipantsMany: (ctx: CommandContext, items: readonly (SetMatterParticipantsInput & { matterId: string })[]) => applyParticipants(trx, ctx, items, false),
      updateMatter: (ctx: CommandContext, matterId: string, patch: UpdateMatterInput, expectedVersion?: number) => updateMatter(trx, ctx, matterId, patch, expectedVersion),
      closeMatter: (ctx: CommandContext, matterId: string, closedOn: string) => closeMatter(trx, ctx, matterId, closedOn),
      reopenMatter: (ctx: CommandContext, matterId: string) => reopenMatter(trx, ctx, matterId),
      updateTimekeeper: (ctx: CommandContext, timekeeperId: string, patch: UpdateTimekeeperInput) => updateTimekeeper(trx, ctx, timekeeperId, patch),
      createChargeType: (ctx: CommandContext, input: CreateChargeTypeInput) => createChargeType(trx, ctx, input),
      updateChargeType: (ctx: CommandContext, id: string, patch: UpdateChargeTypeInput, seen?: string) => updateChargeType(trx, ctx, id, patch, seen),
    };
  }
  type Bound = ReturnType<typeof bind>;

  async function inTransaction<T>(fn: (tx: Bound) => Promise<T>): Promise<T> {
    const result = await db.transaction().execute((trx) => fn(bind(trx)));
    deps.relay.kick();
    return result;
  }

  /** A command in its own transaction. */
  const own = <A extends unknown[], R>(pick: (tx: Bound) => (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> => inTransaction((tx) => pick(tx)(...args));

  /**
   * A recording command in its own transaction. Items given an id (an idempotency key) that
   * a parallel request records at the same moment: both find the id free, the second insert
   * hits the primary key (Postgres waits for the first to commit) and its transaction rolls
   * back; the command then runs again in a fresh one, which finds the row that won and returns
   * it (or refuses it, 409, as of another matter or kind). SQLite runs one write at a time.
   */
  const recording = <I, R>(pick: (tx: Bound) => (ctx: CommandContext, input: I) => Promise<R>, keyed: (input: I) => boolean) =>
    async (ctx: CommandContext, input: I): Promise<R> => {
      try {
        return await inTransaction((tx) => pick(tx)(ctx, input));
      } catch (err) {
        if (!isUniqueViolation(err) || !keyed(input)) throw err;
        return inTransaction((tx) => pick(tx)(ctx, input));
      }
    };
  const hasId = (x: { id?: string }) => x.id !== undefined;
  const anyId = (x: RecordWipInput) => [...x.timeEntries ?? [], ...x.disbursements ?? [], ...x.fixedCharges ?? []].some(hasId);

  return {
    createTimekeeper: own((tx) => tx.createTimekeeper),
    setTimekeeperRate: own((tx) => tx.setTimekeeperRate),
    createClient: own((tx) => tx.createClient),
    setClientRate: own((tx) => tx.setClientRate),
    openMatter: own((tx) => tx.openMatter),
    setMatterRate: own((tx) => tx.setMatterRate),
    recordTimeEntry: recording((tx) => tx.recordTimeEntry, hasId),
    recordDisbursement: recording((tx) => tx.recordDisbursement, hasId),
    recordWip: recording((tx) => tx.recordWip, anyId),
    updateTimeEntry: own((tx) => tx.updateTimeEntry),
    updateDisbursement: own((tx) => tx.updateDisbursement),
    deleteTimeEntry: own((tx) => tx.deleteTimeEntry),
    deleteDisbursement: own((tx) => tx.deleteDisbursement),
    recordFixedCharge: recording((tx) => tx.recordFixedCharge, hasId),
    recordTimeEntryChecked: recording((tx) => tx.recordTimeEntryChecked, hasId),
    recordDisbursementChecked: recording((tx) => tx.recordDisbursementChecked, hasId),
    recordFixedChargeChecked: recording((tx) => tx.recordFixedChargeChecked, hasId),
    updateFixedCharge: own((tx) => tx.updateFixedCharge),
    deleteFixedCharge: own((tx) => tx.deleteFixedCharge),
    setWipStatus: own((tx) => tx.setWipStatus),
    updateFirmSettings: own((tx) => tx.updateFirmSettings),
    setBillingOptions: own((tx) => tx.setBillingOptions),
    setBillingOptionsMany: own((tx) => tx.setBillingOptionsMany),
    autoFillSchedule: own((tx) => tx.autoFillSchedule),
    markScheduleRowBilled: own((tx) => tx.markScheduleRowBilled),
    clearScheduleRowBilled: own((tx) => tx.clearScheduleRowBilled),
    updateClient: own((tx) => tx.updateClient),
    addContact: own((tx) => tx.addContact),
    updateContact: own((tx) => tx.updateContact),
    removeContact: own((tx) => tx.removeContact),
    setMatterParticipants: own((tx) => tx.setMatterParticipants),
    setMatterParticipantsMany: own((tx) => tx.setMatterParticipantsMany),
    updateMatter: own((tx) => tx.updateMatter),
    closeMatter: own((tx) => tx.closeMatter),
    reopenMatter: own((tx) => tx.reopenMatter),
    updateTimekeeper: own((tx) => tx.updateTimekeeper),
    createChargeType: own((tx) => tx.createChargeType),
    updateChargeType: own((tx) => tx.updateChargeType),
    /** Run several commands in one transaction (seeding, imports): all or nothing. */
    batch: inTransaction,
    /** The commands bound to a transaction someone else owns (an event handler's delivery). */
    within: (trx: Tx) => bind(trx),
    clock,
    // Reads.
    findTimekeeper: (id: string) => store.findTimekeeper(db, id),
    findTimekeeperByInitials: (initials: string) => store.findTimekeeperByInitials(db, initials),
    listTimekeepers: () => store.listTimekeepers(db),
    findClient: (id: string) => store.findClient(db, id),
    listClients: () => store.listClients(db),
    findMatter: (id: string) => store.findMatter(db, id),
    findMatterByFileNumber: (fileNumberText: string) => store.findMatterByFileNumber(db, fileNumberText),
    listMatters: (opts: { clientId?: string } = {}) => store.listMatters(db, opts),
    findTimeEntry: (id: string) => store.findTimeEntry(db, id),
    /** A matter's or item's version (bumped on every update), for an edit form's optimistic concurrency check. */
    findVersion: (table: store.VersionedTable, id: string) => store.findVersion(db, table, id),
    findDisbursement: (id: string) => store.findDisbursement(db, id),
    listTimeEntries: (matterId: string) => store.listTimeEntries(db, matterId),
    listDisbursements: (matterId: string) => store.listDisbursements(db, matterId),
    unbilledWipMinor: (matterIds: readonly string[]) => store.unbilledWipMinor(db, matterIds),
    /** The firm's billing settings; the defaults are saved (and announced) on the first read. */
    /** The rate a time entry on this matter, by this timekeeper, on this date would get (null: none). */
    previewRate: async (matterId: string, timekeeperId: string, workDate: string) => {
      const pricing = await loadPricing(db, [matterId], [timekeeperId]);
      const matter = pricing.matters.get(matterId);
      if (!matter) throw notFound('Matter');
      return priceTime(pricing, matter, timekeeperId, workDate, null);
    },
    /** The stored settings' version (0 before any): a settings form carries it, so a save against older settings is refused. */
    firmSettingsVersion: async (): Promise<number> => (await store.findFirmSettings(db))?.version ?? 0,
    getFirmSettings: async (): Promise<FirmBillingSettings> => {
      const found = await store.findFirmSettings(db);
      if (found) return found.settings;
      return (await inTransaction((tx) => tx.ensureFirmSettings(systemContext(`firm-settings-${newId(clock)}`, 'system')))).settings;
    },
    /** A matter's effective options and which sections it overrides or inherits. */
    getBillingOptions: (matterId: string): Promise<BillingOptionsView> => optionsView(db, matterId),
    /** WIP not yet billed (unbilled or on a draft) against the matter's cap, for pages. */
    capStatusFor: async (matterId: string): Promise<MatterCapStatus> => {
      const m = await store.findMatter(db, matterId);
      if (!m) throw notFound('Matter');
      const wipMinor = (await store.capWipMinor(db, [m.id])).get(m.id) ?? 0;
      const policy = (await loadFirm(db)).settings.wipCapPolicy;
      return { matterId: m.id, fileNumber: m.fileNumber, currency: m.currency, wipMinor, capMinor: m.wipCapMinor, policy, ...capStatus(wipMinor, m.wipCapMinor) };
    },
    /** UTBMS codes from reference/utbms.csv: all, or one code set (litigation, activity, expense). */
    utbmsCodes: (codeSet?: string): UtbmsCode[] => store.utbmsIndex().codes.filter((c) => codeSet === undefined || c.codeSet === codeSet),
    /** The matter as matter_changed carries it (billable party, participants). */
    getMatterDetails: async (matterId: string): Promise<MatterChanged> => {
      const m = await store.findMatter(db, matterId);
      if (!m) throw notFound('Matter');
      return (await snapshots(db, [m], m.updatedAt))[0]!;
    },
    findContact: (id: string) => store.findContact(db, id),
    listContacts: (clientId: string) => store.listContacts(db, clientId),
    findChargeType: (id: string) => store.findChargeType(db, id),
    listChargeTypes: (opts: { activeOnly?: boolean } = {}) => store.listChargeTypes(db, opts),
    findFixedCharge: (id: string) => store.findFixedCharge(db, id),
    listFixedCharges: (matterId: string) => store.listFixedCharges(db, matterId),
  };
}

export type MattersCommands = ReturnType<typeof createMattersCommands>;
export type MattersTx = Parameters<Parameters<MattersCommands['batch']>[0]>[0];
