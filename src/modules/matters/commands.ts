/**
 * The matters use cases. Each command validates its input (a 422 naming the fields, before
 * anything is written), then runs in ONE transaction that writes its rows, appends its
 * events to the outbox and writes the audit log; the relay is kicked after commit.
 * `batch(fn)` runs several commands in one transaction (seeding, imports) and
 * `recordWip` records many items with multi-row inserts.
 */
import { assert } from '../../shared/assert.ts';
import { audit } from '../../shared/audit.ts';
import type { AuditEntry } from '../../shared/audit.ts';
import type { Clock } from '../../shared/clock.ts';
import { isoDate } from '../../shared/clock.ts';
import type { Db, Executor, Tx } from '../../shared/db.ts';
import { isUniqueViolation } from '../../shared/db.ts';
import type { CommandContext } from '../../shared/events.ts';
import { newId } from '../../shared/ids.ts';
import { appendEvent } from '../../shared/outbox.ts';
import type { Relay } from '../../shared/outbox.ts';
import { conflict, invalid, notFound } from '../../shared/web/errors.ts';
import {
  advanceBillingDate, defaultLedesClassification, disbursementAmountMinor, fileNumber, QUANTITY_SCALE, resolveRate,
  roundMinutes, timeAmountMinor, validateClient, validateDisbursement, validateMatter, validateRateMinor,
  validateStandardRate, validateTimekeeper, validateTimeEntry,
} from './domain.ts';
import type {
  BillingCycle, EntryBehaviour, FieldErrors, LedesClassification, MinuteRounding, RateOverride, StandardRate,
  TimekeeperClassification,
} from './domain.ts';
import type { DisbursementWip, MatterOpened, MattersEvents, TimeWip } from './events.ts';
import * as store from './store.ts';
import type { Client, Disbursement, Matter, TimeEntry, Timekeeper } from './store.ts';

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

export type UpdateTimeEntryInput = Partial<Omit<RecordTimeEntryInput, 'matterId'>>;
export type UpdateDisbursementInput = Partial<Omit<RecordDisbursementInput, 'matterId'>>;

export interface RecordWipInput {
  timeEntries?: readonly RecordTimeEntryInput[];
  disbursements?: readonly RecordDisbursementInput[];
}

export interface RecordWipResult {
  timeEntries: TimeEntry[];
  disbursements: Disbursement[];
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

/**
 * Many events in one multi-row insert, in order. The rows are exactly what
 * `appendEvent` writes (same envelope); used by bulk recording, where one INSERT per event
 * would dominate the time.
 */
async function appendEventsBulk(trx: Executor, clock: Clock, ctx: CommandContext, events: readonly PendingEvent[]): Promise<void> {
  const occurredAt = clock.now().toISOString();
  const rows = events.map((e) => {
    assert(/^[a-z]+\.[a-z0-9_]+$/.test(e.type), `event type ${e.type} must be module.snake_name`);
    return {
      id: newId(clock), type: e.type, version: 1, occurred_at: occurredAt, correlation_id: ctx.correlationId,
      causation_id: ctx.causationId, actor_id: ctx.actorId, payload: JSON.stringify(e.payload), delivered_at: null,
    };
  });
  for (let i = 0; i < rows.length; i += 500) await trx.insertInto('outbox').values(rows.slice(i, i + 500)).execute();
}

/** Many audit rows in one multi-row insert; the rows are exactly what `audit` writes. */
async function auditBulk(trx: Executor, clock: Clock, ctx: CommandContext, entries: readonly AuditEntry[]): Promise<void> {
  const at = clock.now().toISOString();
  const rows = entries.map((e) => ({
    id: newId(clock), at, actor_id: ctx.actorId, actor_label: ctx.actorLabel, action: e.action, entity_type: e.entityType,
    entity_id: e.entityId, before_json: e.before === undefined ? null : JSON.stringify(e.before),
    after_json: e.after === undefined ? null : JSON.stringify(e.after), correlation_id: ctx.correlationId, ip: ctx.ip,
  }));
  for (let i = 0; i < rows.length; i += 500) await trx.insertInto('audit_log').values(rows.slice(i, i + 500)).execute();
}

// ---------------------------------------------------------------------------------------
// The commands
// ---------------------------------------------------------------------------------------

export function createMattersCommands(deps: MattersDeps) {
  const { db, clock } = deps;
  const now = (): string => clock.now().toISOString();

  function emit<K extends EventName>(trx: Tx, ctx: CommandContext, type: K, payload: MattersEvents[K]) {
    return appendEvent<MattersEvents, K>(trx, clock, ctx, type, payload);
  }

  // ---- timekeepers --------------------------------------------------------------------

  async function createTimekeeper(trx: Tx, ctx: CommandContext, input: CreateTimekeeperInput): Promise<Timekeeper> {
    fail(validateTimekeeper(input));
    const existing = await store.findTimekeeperByInitials(trx, input.initials);
    if (existing) throw invalid({ initials: `are already used by ${existing.name}` });
    const at = now();
    const t: Timekeeper = {
      id: newId(clock), initials: input.initials, name: input.name.trim(), classification: input.classification,
      ledesClassification: input.ledesClassification ?? defaultLedesClassification(input.classification),
      active: input.active ?? true, createdAt: at, updatedAt: at,
    };
    try {
      await store.insertTimekeeper(trx, t);
    } catch (err) {
      if (isUniqueViolation(err)) throw invalid({ initials: 'are already used by another timekeeper' });
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
    const matterNumber = await store.nextNumber(trx, store.matterCounter(client.id));
    const at = now();
    const m: Matter = {
      id: newId(clock), clientId: client.id, matterNumber, fileNumber: fileNumber(client.clientNumber, matterNumber),
      name: input.name.trim(), status: 'open', ...roles, practiceArea: opt(input.practiceArea), openedOn, closedOn: null,
      billingCycle: cycle, nextBillingDate: cycle === 'none' ? null : (input.nextBillingDate ?? advanceBillingDate(openedOn, cycle)),
      wipCapMinor: input.wipCapMinor ?? null, currency: input.currency ?? 'USD', timeUnitMinutes: input.timeUnitMinutes ?? 6,
      roundingMode: input.roundingMode ?? 'up', defaultBehaviour: input.defaultBehaviour ?? 'bill', createdAt: at, updatedAt: at,
    };
    await store.insertMatter(trx, m);
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
    return {
      matters,
      timekeepers: await store.findTimekeepers(trx, timekeeperIds),
      matterRates: await store.ownerRates(trx, 'matters_matter_rate', [...matters.keys()]),
      clientRates: await store.ownerRates(trx, 'matters_client_rate', clientIds),
      standard: await store.standardRates(trx, timekeeperIds),
    };
  }
  type Pricing = Awaited<ReturnType<typeof loadPricing>>;

  function priceTime(p: Pricing, matter: Matter, timekeeperId: string, workDate: string, override: RateOverride | null) {
    return resolveRate({
      workDate,
      matterRateMinor: p.matterRates.get(`${matter.id}|${timekeeperId}`) ?? null,
      clientRateMinor: p.clientRates.get(`${matter.clientId}|${timekeeperId}`) ?? null,
      standardRates: p.standard.get(timekeeperId) ?? [],
      override,
    });
  }

  const noRate = (workDate: string) =>
    `has no rate on ${workDate}: set a standard rate effective on or before that date, or give an override rate with a reason`;

  function checkMatterOpen(errors: FieldErrors, field: string, m: Matter | undefined): m is Matter {
    if (!m) { errors[field] = 'does not exist'; return false; }
    if (m.status !== 'open') { errors[field] = `is closed (${m.fileNumber}): reopen it to record work`; return false; }
    return true;
  }

  /** Validate, price and build time entries and disbursements; throws one 422 for all bad fields. */
  async function buildWip(trx: Tx, input: RecordWipInput, single: boolean): Promise<{ time: TimeEntry[]; disb: Disbursement[]; pricing: Pricing }> {
    const timeIn = input.timeEntries ?? [];
    const disbIn = input.disbursements ?? [];
    const errors: FieldErrors = {};
    const prefixOf = (kind: string, i: number) => (single ? '' : `${kind}.${i}`);
    timeIn.forEach((t, i) => {
      const e = validateTimeEntry(t);
      requireId(e, 'matterId', t.matterId);
      requireId(e, 'timekeeperId', t.timekeeperId);
      Object.assign(errors, prefixed(prefixOf('timeEntries', i), e));
    });
    disbIn.forEach((d, i) => {
      const e = validateDisbursement(d);
      requireId(e, 'matterId', d.matterId);
      Object.assign(errors, prefixed(prefixOf('disbursements', i), e));
    });
    fail(errors);

    const pricing = await loadPricing(trx, [...timeIn.map((t) => t.matterId), ...disbIn.map((d) => d.matterId)], timeIn.map((t) => t.timekeeperId));
    const at = now();
    const time: TimeEntry[] = [];
    timeIn.forEach((t, i) => {
      const e: FieldErrors = {};
      const matter = pricing.matters.get(t.matterId);
      const tk = pricing.timekeepers.get(t.timekeeperId);
      if (!tk) e.timekeeperId = 'does not exist';
      else if (!tk.active) e.timekeeperId = `is inactive (${tk.initials})`;
      if (checkMatterOpen(e, 'matterId', matter) && tk) {
        const override = t.override ?? null;
        const rate = priceTime(pricing, matter, t.timekeeperId, t.workDate, override);
        if (!rate) e.timekeeperId = noRate(t.workDate);
        else {
          const billedMinutes = roundMinutes(t.rawMinutes, matter.timeUnitMinutes, matter.roundingMode);
          time.push({
            id: newId(clock), matterId: matter.id, timekeeperId: t.timekeeperId, workDate: t.workDate, rawMinutes: t.rawMinutes,
            billedMinutes, rateMinor: rate.rateMinor, rateSource: rate.source,
            overrideReason: rate.source === 'override' ? override!.reason.trim() : null,
            amountMinor: timeAmountMinor(billedMinutes, rate.rateMinor), narrative: t.narrative.trim(),
            taskCode: t.taskCode ?? null, activityCode: t.activityCode ?? null, behaviour: t.behaviour ?? matter.defaultBehaviour,
            status: 'unbilled', createdAt: at, updatedAt: at,
          });
        }
      }
      Object.assign(errors, prefixed(prefixOf('timeEntries', i), e));
    });
    const disb: Disbursement[] = [];
    disbIn.forEach((d, i) => {
      const e: FieldErrors = {};
      const matter = pricing.matters.get(d.matterId);
      if (checkMatterOpen(e, 'matterId', matter)) {
        const quantityMilli = d.quantityMilli ?? QUANTITY_SCALE;
        disb.push({
          id: newId(clock), matterId: matter.id, incurredOn: d.incurredOn, code: d.code, expenseCode: d.expenseCode ?? null,
          quantityMilli, unitCostMinor: d.unitCostMinor, amountMinor: disbursementAmountMinor(quantityMilli, d.unitCostMinor),
          taxCode: opt(d.taxCode), description: d.description.trim(), payee: opt(d.payee), behaviour: d.behaviour ?? 'bill',
          status: 'unbilled', createdAt: at, updatedAt: at,
        });
      }
      Object.assign(errors, prefixed(prefixOf('disbursements', i), e));
    });
    fail(errors);
    return { time, disb, pricing };
  }

  async function recordWip(trx: Tx, ctx: CommandContext, input: RecordWipInput, single = false): Promise<RecordWipResult> {
    const { time, disb, pricing } = await buildWip(trx, input, single);
    await store.insertTimeEntries(trx, time);
    await store.insertDisbursements(trx, disb);
    const matterOf = (id: string): Matter => pricing.matters.get(id)!;
    const events: PendingEvent<'matters.wip_recorded'>[] = [
      ...time.map((t) => ({ type: 'matters.wip_recorded' as const, payload: timeWip(t, matterOf(t.matterId)) })),
      ...disb.map((d) => ({ type: 'matters.wip_recorded' as const, payload: disbursementWip(d, matterOf(d.matterId)) })),
    ];
    const audits: AuditEntry[] = [
      ...time.map((t) => ({ action: 'matters.time_recorded', entityType: 'matters_time_entry', entityId: t.id, after: t })),
      ...disb.map((d) => ({ action: 'matters.disbursement_recorded', entityType: 'matters_disbursement', entityId: d.id, after: d })),
    ];
    if (events.length === 1) {
      await emit(trx, ctx, 'matters.wip_recorded', events[0]!.payload);
      await audit(trx, clock, ctx, audits[0]!);
    } else if (events.length > 1) {
      await appendEventsBulk(trx, clock, ctx, events);
      await auditBulk(trx, clock, ctx, audits);
    }
    return { timeEntries: time, disbursements: disb };
  }

  async function recordTimeEntry(trx: Tx, ctx: CommandContext, input: RecordTimeEntryInput): Promise<TimeEntry> {
    return (await recordWip(trx, ctx, { timeEntries: [input] }, true)).timeEntries[0]!;
  }

  async function recordDisbursement(trx: Tx, ctx: CommandContext, input: RecordDisbursementInput): Promise<Disbursement> {
    return (await recordWip(trx, ctx, { disbursements: [input] }, true)).disbursements[0]!;
  }

  const notEditable = (what: string, status: string) => conflict(`This ${what} is ${status}: only unbilled work can be changed`);

  async function updateTimeEntry(trx: Tx, ctx: CommandContext, id: string, patch: UpdateTimeEntryInput): Promise<TimeEntry> {
    const errors = validateTimeEntry(patch, { partial: true });
    if (patch.timekeeperId !== undefined) requireId(errors, 'timekeeperId', patch.timekeeperId);
    fail(errors);
    const before = await store.findTimeEntry(trx, id);
    if (!before) throw notFound('Time entry');
    if (before.status !== 'unbilled') throw notEditable('time entry', before.status);
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
      if (!rate) throw invalid({ timekeeperId: noRate(workDate) });
      rateMinor = rate.rateMinor;
      rateSource = rate.source;
      overrideReason = rate.source === 'override' ? override!.reason.trim() : null;
    }
    const rawMinutes = patch.rawMinutes ?? before.rawMinutes;
    const billedMinutes = patch.rawMinutes !== undefined ? roundMinutes(rawMinutes, matter.timeUnitMinutes, matter.roundingMode) : before.billedMinutes;
    const after: TimeEntry = {
      ...before, timekeeperId, workDate, rawMinutes, billedMinutes, rateMinor, rateSource, overrideReason,
      amountMinor: timeAmountMinor(billedMinutes, rateMinor),
      narrative: patch.narrative !== undefined ? patch.narrative.trim() : before.narrative,
      taskCode: patch.taskCode !== undefined ? patch.taskCode : before.taskCode,
      activityCode: patch.activityCode !== undefined ? patch.activityCode : before.activityCode,
      behaviour: patch.behaviour ?? before.behaviour,
      updatedAt: now(),
    };
    if (!await store.updateUnbilledTimeEntry(trx, after)) throw notEditable('time entry', 'no longer unbilled');
    await emit(trx, ctx, 'matters.wip_updated', timeWip(after, matter));
    await audit(trx, clock, ctx, { action: 'matters.time_updated', entityType: 'matters_time_entry', entityId: id, before, after });
    return after;
  }

  async function updateDisbursement(trx: Tx, ctx: CommandContext, id: string, patch: UpdateDisbursementInput): Promise<Disbursement> {
    fail(validateDisbursement(patch, { partial: true }));
    const before = await store.findDisbursement(trx, id);
    if (!before) throw notFound('Disbursement');
    if (before.status !== 'unbilled') throw notEditable('disbursement', before.status);
    const matter = await store.findMatter(trx, before.matterId);
    assert(matter, 'a disbursement has a matter');
    const quantityMilli = patch.quantityMilli ?? before.quantityMilli;
    const unitCostMinor = patch.unitCostMinor ?? before.unitCostMinor;
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
    if (!await store.updateUnbilledDisbursement(trx, after)) throw notEditable('disbursement', 'no longer unbilled');
    await emit(trx, ctx, 'matters.wip_updated', disbursementWip(after, matter));
    await audit(trx, clock, ctx, { action: 'matters.disbursement_updated', entityType: 'matters_disbursement', entityId: id, before, after });
    return after;
  }

  async function deleteTimeEntry(trx: Tx, ctx: CommandContext, id: string): Promise<void> {
    const before = await store.findTimeEntry(trx, id);
    if (!before) throw notFound('Time entry');
    if (before.status !== 'unbilled' || !await store.deleteUnbilled(trx, 'matters_time_entry', id)) throw notEditable('time entry', before.status);
    await emit(trx, ctx, 'matters.wip_deleted', { kind: 'time', id, matterId: before.matterId });
    await audit(trx, clock, ctx, { action: 'matters.time_deleted', entityType: 'matters_time_entry', entityId: id, before });
  }

  async function deleteDisbursement(trx: Tx, ctx: CommandContext, id: string): Promise<void> {
    const before = await store.findDisbursement(trx, id);
    if (!before) throw notFound('Disbursement');
    if (before.status !== 'unbilled' || !await store.deleteUnbilled(trx, 'matters_disbursement', id)) throw notEditable('disbursement', before.status);
    await emit(trx, ctx, 'matters.wip_deleted', { kind: 'disbursement', id, matterId: before.matterId });
    await audit(trx, clock, ctx, { action: 'matters.disbursement_deleted', entityType: 'matters_disbursement', entityId: id, before });
  }

  /** The commands bound to one transaction. */
  function bind(trx: Tx) {
    return {
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
      updateTimeEntry: (ctx: CommandContext, id: string, patch: UpdateTimeEntryInput) => updateTimeEntry(trx, ctx, id, patch),
      updateDisbursement: (ctx: CommandContext, id: string, patch: UpdateDisbursementInput) => updateDisbursement(trx, ctx, id, patch),
      deleteTimeEntry: (ctx: CommandContext, id: string) => deleteTimeEntry(trx, ctx, id),
      deleteDisbursement: (ctx: CommandContext, id: string) => deleteDisbursement(trx, ctx, id),
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

  return {
    createTimekeeper: own((tx) => tx.createTimekeeper),
    setTimekeeperRate: own((tx) => tx.setTimekeeperRate),
    createClient: own((tx) => tx.createClient),
    setClientRate: own((tx) => tx.setClientRate),
    openMatter: own((tx) => tx.openMatter),
    setMatterRate: own((tx) => tx.setMatterRate),
    recordTimeEntry: own((tx) => tx.recordTimeEntry),
    recordDisbursement: own((tx) => tx.recordDisbursement),
    recordWip: own((tx) => tx.recordWip),
    updateTimeEntry: own((tx) => tx.updateTimeEntry),
    updateDisbursement: own((tx) => tx.updateDisbursement),
    deleteTimeEntry: own((tx) => tx.deleteTimeEntry),
    deleteDisbursement: own((tx) => tx.deleteDisbursement),
    /** Run several commands in one transaction (seeding, imports): all or nothing. */
    batch: inTransaction,
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
    findDisbursement: (id: string) => store.findDisbursement(db, id),
    listTimeEntries: (matterId: string) => store.listTimeEntries(db, matterId),
    listDisbursements: (matterId: string) => store.listDisbursements(db, matterId),
    unbilledWipMinor: (matterIds: readonly string[]) => store.unbilledWipMinor(db, matterIds),
  };
}

export type MattersCommands = ReturnType<typeof createMattersCommands>;
export type MattersTx = Parameters<Parameters<MattersCommands['batch']>[0]>[0];
