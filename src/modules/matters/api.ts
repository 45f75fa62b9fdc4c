/**
 * The matters JSON API, mounted at /api/v1: clients and their contacts, matters (changes,
 * closing, participants, billing options), firm billing settings, timekeepers and rates,
 * time entries, disbursements, charge types and fixed charges, and CSV imports. Every
 * route is declared with typebox schemas, which validate the input and build
 * /api/openapi.json.
 *
 * Wire format: ids are strings; money is a decimal string in the currency it belongs to
 * ("350.00"; a matter's own currency for its items and rates, the firm's currency for
 * timekeeper and client rates), converted exactly to integer minor units (never through a
 * float); hours are decimal strings ("1.5") that must be whole minutes, and `minutes` is
 * the exact integer; quantities are decimal strings ("2.5"). Every bad input is a 422
 * naming the field, before anything is written; changing billed work is a 409. Reads:
 * admin, billing, timekeeper, readonly. Writes: admin, billing; time entries,
 * disbursements and fixed charges also timekeeper; firm settings admin only.
 */
import type { Context, Hono } from 'hono';
import { sql } from 'kysely';
import type { SelectQueryBuilder } from 'kysely';
import Type from 'typebox';
import type { TSchema } from 'typebox';
import { isoDate } from '../../shared/clock.ts';
import { MAX_AMOUNT_MINOR, UNKNOWN_CURRENCY } from '../../shared/money.ts';
import type { CommandContext } from '../../shared/events.ts';
import { createApi } from '../../shared/web/api.ts';
import type { ApiSpec } from '../../shared/web/api.ts';
import { errorBody, HttpError, invalid, notFound } from '../../shared/web/errors.ts';
import { allow } from '../../shared/web/guard.ts';
import type { ModuleDeps } from '../../shared/web/module.ts';
import type { AppEnv, Role } from '../../shared/web/types.ts';
import { parseForm, parseWith } from '../../shared/web/validate.ts';
import type {
  MattersCommands, UpdateChargeTypeInput, UpdateDisbursementInput, UpdateFixedChargeInput, UpdateMatterInput, UpdateTimeEntryInput,
} from './commands.ts';
import {
  BILLING_CYCLES, capStatus, ENTRY_BEHAVIOURS, LEDES_CLASSIFICATIONS, LIMITS, MATTER_STATUSES, MINUTE_ROUNDING,
  standardRateOn, TIMEKEEPER_CLASSIFICATIONS, WIP_STATUSES,
} from './domain.ts';
import type {
  BillingCycle, BillingOptionsPatch, EntryBehaviour, FieldErrors, FirmSettingsPatch, LedesClassification, MinuteRounding, RateOverride, TimekeeperClassification,
} from './domain.ts';
import {
  createImportLog, createImportReads, decodeUtf8, hoursText, IMPORT_FORMATS, IMPORT_KINDS, IMPORT_LIMITS, ImportFileError, isImportKind,
  limited, minutesRangeError, moneyText, parseHoursText, parseMoneyText, parsePercentText, parseQuantityText, percentMessage, percentText, quantityText,
  runImport,
} from './import.ts';
import type { BillingOptionSection, FirmBillingSettings, MatterBillingOptions, MatterChanged } from './events.ts';
import { chargeTypeSeen, firmSettingsSeen, optionsSeen } from './fingerprints.ts';
import type { ImportOutcome, Parsed } from './import.ts';
import * as store from './store.ts';
import { ownTime } from './own-time.ts';
import type { ChargeType, Client, Contact, Disbursement, FixedCharge, Matter, TimeEntry, Timekeeper } from './store.ts';

// ---------------------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------------------

const READ: readonly Role[] = ['admin', 'billing', 'timekeeper', 'readonly'];
const WRITE: readonly Role[] = ['admin', 'billing'];
const WIP_WRITE: readonly Role[] = ['admin', 'billing', 'timekeeper'];
const TAG = 'matters';

// ---------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------

/** One of the given strings (OpenAPI: anyOf of consts; the 422 lists the choices). */
const literals = <T extends string>(values: readonly T[], description?: string) =>
  Type.Unsafe<T>(Type.Union(values.map((v) => Type.Literal(v)), description ? { description } : {}));
const Nullable = <T extends TSchema>(s: T, errorMessage?: string) => Type.Union([s, Type.Null()], errorMessage ? { errorMessage } : {});

const MONEY_MESSAGE = 'must be an amount as a decimal string, e.g. "350.00"';
const Money = (description: string) => Type.String({ pattern: '^[0-9]{1,16}(\\.[0-9]{1,3})?$', errorMessage: MONEY_MESSAGE, description, examples: ['350.00'] });
const Hours = Type.String({ pattern: '^[0-9]{1,2}(\\.[0-9]{1,6})?$', errorMessage: 'must be hours as a decimal string, e.g. "1.5"', description: 'Hours as a decimal string; must be whole minutes', examples: ['1.5'] });
const Quantity = Type.String({ pattern: '^[0-9]{1,7}(\\.[0-9]{1,3})?$', errorMessage: 'must be a quantity as a decimal string, e.g. "2.5"', description: 'Units, up to 3 decimals', examples: ['1'] });
const IsoDate = (description?: string) => Type.String({ pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$', errorMessage: 'must be a date (YYYY-MM-DD)', ...(description ? { description } : {}) });
const Id = Type.String({ minLength: 1, maxLength: 64, errorMessage: 'must be an id' });
const Text = (max: number, opts: { minLength?: number; description?: string } = {}) => Type.String({ maxLength: max, ...opts });
const Currency = Type.String({ pattern: '^[A-Z]{3}$', errorMessage: UNKNOWN_CURRENCY });
const Behaviour = literals(ENTRY_BEHAVIOURS, 'bill: on the bill; hide: never shown or charged; no_charge: shown as "No charge"');
const NullableText = (max: number) => Nullable(Text(max));
const EMAIL_MESSAGE = 'must be an email address';
const Email = Nullable(Type.String({ maxLength: 254, pattern: '^$|^[^\\s@]+@[^\\s@]+\\.[^\\s@]+$', errorMessage: EMAIL_MESSAGE }), `${EMAIL_MESSAGE} or null`);

const PagingQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, description: 'Page size, 1 to 200 (default 50)' })),
  // Bounded: a number past what the databases' integers hold was a 500 (review 57 F10).
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000, description: 'Rows to skip (default 0, at most 10,000,000)' })),
};
const PageFields = { total: Type.Integer(), limit: Type.Integer(), offset: Type.Integer() };
const page = <T extends TSchema>(item: T) => Type.Object({ items: Type.Array(item), ...PageFields });

const Stamps = { createdAt: Type.String(), updatedAt: Type.String() };
/** A matter's or an item's version, read with its data: send it back as `expectedVersion` to change it. */
const Version = { version: Type.Integer({ minimum: 1, description: 'Bumped on every change; send it back as expectedVersion so a change made meanwhile is not overwritten (409)' }) };
/** The id to record an item under: the same id again is the same item (idempotency key). */
const ItemKey = Type.Optional(Type.String({
  pattern: '^[0-9a-zA-Z-]{8,64}$', errorMessage: 'must be 8 to 64 letters, digits or dashes',
  description: 'Idempotency key: the new item\'s id. The same id again with the same details returns the item already recorded (a retried request records once); with other details, or an id of another matter\'s item or of another kind, it is 409 naming what differs',
}));

const ClientSchema = Type.Object({
  id: Type.String(), clientNumber: Type.Integer(), name: Type.String(), email: Nullable(Type.String()),
  address: Nullable(Type.String()), taxId: Nullable(Type.String()), ...Stamps,
});
const ClientCreate = Type.Object({
  name: Text(LIMITS.nameChars, { minLength: 1 }), email: Type.Optional(Email),
  address: Type.Optional(NullableText(LIMITS.textChars)), taxId: Type.Optional(NullableText(50)),
}, { additionalProperties: false });

const CapSchema = Type.Object({
  cap: Nullable(Type.String()), state: literals(['none', 'under', 'at', 'over']),
  distance: Nullable(Type.String({ description: 'cap - WIP: headroom when positive, the excess when negative' })),
  mustBill: Type.Boolean(), policy: literals(['warn', 'refuse'], 'Recording past the cap warns or is refused (firm setting)'),
});
const MatterSchema = Type.Object({
  id: Type.String(), clientId: Type.String(), clientNumber: Type.Integer(), clientName: Type.String(),
  matterNumber: Type.Integer(), fileNumber: Type.String(), name: Type.String(), status: literals(MATTER_STATUSES),
  practiceArea: Nullable(Type.String()), openedOn: Type.String(), closedOn: Nullable(Type.String()),
  responsibleTimekeeperId: Type.String(), billingTimekeeperId: Type.String(), originatingTimekeeperId: Nullable(Type.String()),
  billingCycle: literals(BILLING_CYCLES), nextBillingDate: Nullable(Type.String()), wipCap: Nullable(Type.String()),
  currency: Type.String(), timeUnitMinutes: Type.Integer(), roundingMode: literals(MINUTE_ROUNDING), defaultBehaviour: Behaviour,
  ...Version, ...Stamps,
});
const WipTotalsSchema = Type.Object({
  time: Type.String({ description: 'Unbilled billable time' }), disbursements: Type.String({ description: 'Unbilled billable disbursements' }),
  fixedCharges: Type.String({ description: 'Unbilled billable fixed charges (quoted ones add nothing)' }),
  total: Type.String(), unbilledMinutes: Type.Integer({ description: 'All unbilled time, whatever its behaviour' }),
  unbilledHours: Type.String(), unbilledItems: Type.Integer(),
});
const MatterDetailSchema = Type.Intersect([MatterSchema, Type.Object({ wip: WipTotalsSchema, cap: CapSchema })]);
const MatterCreate = Type.Object({
  clientId: Id, name: Text(LIMITS.nameChars, { minLength: 1 }), practiceArea: Type.Optional(NullableText(100)),
  openedOn: Type.Optional(IsoDate('Defaults to today')), responsibleTimekeeperId: Id,
  billingTimekeeperId: Type.Optional(Id), originatingTimekeeperId: Type.Optional(Nullable(Id)),
  billingCycle: Type.Optional(literals(BILLING_CYCLES)), nextBillingDate: Type.Optional(Nullable(IsoDate(), 'must be a date (YYYY-MM-DD) or null')),
  wipCap: Type.Optional(Nullable(Money('WIP at which the matter must be billed, in the matter currency'), `${MONEY_MESSAGE} or null`)),
  currency: Type.Optional(Currency), timeUnitMinutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 60 })),
  roundingMode: Type.Optional(literals(MINUTE_ROUNDING)), defaultBehaviour: Type.Optional(Behaviour),
}, { additionalProperties: false });
const MatterQuery = Type.Object({
  q: Type.Optional(Type.String({ maxLength: 200, description: 'Name, client name or file number contains' })),
  clientId: Type.Optional(Type.String({ maxLength: 64 })), status: Type.Optional(literals(MATTER_STATUSES)), ...PagingQuery,
}, { additionalProperties: false });

const TimekeeperSchema = Type.Object({
  id: Type.String(), initials: Type.String(), name: Type.String(), classification: literals(TIMEKEEPER_CLASSIFICATIONS),
  ledesClassification: literals(LEDES_CLASSIFICATIONS), active: Type.Boolean(),
  staffEmail: Nullable(Type.String({ description: 'The staff account (sign-in email) that records this timekeeper\'s time; a sign-in with the timekeeper role records its own timekeeper\'s time only' })),
  currentRate: Nullable(Type.String({ description: 'Standard rate in effect today, firm currency' })), ...Stamps,
});
const StandardRateSchema = Type.Object({ effectiveFrom: Type.String(), rate: Type.String() });
const TimekeeperDetailSchema = Type.Intersect([TimekeeperSchema, Type.Object({ currency: Type.String(), rates: Type.Array(StandardRateSchema) })]);
const TimekeeperCreate = Type.Object({
  initials: Type.String({ pattern: '^[A-Z][A-Z0-9]{0,9}$', errorMessage: 'must be 1 to 10 capital letters or digits, starting with a letter' }), name: Text(LIMITS.nameChars, { minLength: 1 }), classification: literals(TIMEKEEPER_CLASSIFICATIONS),
  ledesClassification: Type.Optional(literals(LEDES_CLASSIFICATIONS)), active: Type.Optional(Type.Boolean()),
  staffEmail: Type.Optional(Nullable(Type.String({ maxLength: 254, description: 'The staff account (sign-in email) that records this timekeeper\'s time' }))),
}, { additionalProperties: false });
const StandardRateCreate = Type.Object({ effectiveFrom: IsoDate('First date the rate applies to'), rate: Money('Hourly rate, firm currency') }, { additionalProperties: false });
const OwnerRateSchema = Type.Object({ timekeeperId: Type.String(), initials: Type.String(), name: Type.String(), rate: Type.String() });
const OwnerRatesSchema = Type.Object({ currency: Type.String(), rates: Type.Array(OwnerRateSchema) });
const OwnerRateSet = Type.Object({ rate: Money('Hourly rate') }, { additionalProperties: false });

const TimeEntrySchema = Type.Object({
  id: Type.String(), matterId: Type.String(), fileNumber: Type.String(), timekeeperId: Type.String(), workDate: Type.String(),
  minutes: Type.Integer({ description: 'Minutes recorded' }), hours: Type.String(), billedMinutes: Type.Integer({ description: 'Rounded to the matter time unit; what is charged' }),
  billedHours: Type.String(), rate: Type.String(), rateSource: literals(['matter', 'client', 'timekeeper', 'override']),
  rateReason: Nullable(Type.String()), amount: Type.String(), currency: Type.String(), narrative: Type.String(),
  taskCode: Nullable(Type.String()), activityCode: Nullable(Type.String()), behaviour: Behaviour, status: literals(WIP_STATUSES), ...Version, ...Stamps,
});
const TimeEntryCreate = Type.Object({
  id: ItemKey, matterId: Id, timekeeperId: Id, workDate: IsoDate(), hours: Type.Optional(Hours),
  minutes: Type.Optional(Type.Integer({ minimum: 1, maximum: LIMITS.rawMinutes, description: 'Instead of hours' })),
  narrative: Text(LIMITS.narrativeChars), taskCode: Type.Optional(NullableText(10)), activityCode: Type.Optional(NullableText(10)),
  behaviour: Type.Optional(Behaviour), rate: Type.Optional(Money('A rate for this entry only (an override), matter currency')),
  rateReason: Type.Optional(Text(LIMITS.textChars, { description: 'Required with rate' })),
}, { additionalProperties: false });
/** Optional optimistic concurrency: the change applies only while the row is still at this version (else 409). */
const ExpectedVersion = Type.Optional(Type.Integer({ minimum: 1, description: 'Apply only if the record is still at this version (else 409: changed by someone else)' }));
const TimeEntryChange = Type.Object({
  timekeeperId: Type.Optional(Id), workDate: Type.Optional(IsoDate()), hours: Type.Optional(Hours),
  minutes: Type.Optional(Type.Integer({ minimum: 1, maximum: LIMITS.rawMinutes })), narrative: Type.Optional(Text(LIMITS.narrativeChars)),
  taskCode: Type.Optional(NullableText(10)), activityCode: Type.Optional(NullableText(10)), behaviour: Type.Optional(Behaviour),
  rate: Type.Optional(Nullable(Money('Override rate; null returns to the resolved rate'), `${MONEY_MESSAGE} or null`)),
  rateReason: Type.Optional(Text(LIMITS.textChars)), expectedVersion: ExpectedVersion,
}, { additionalProperties: false });
const WipQuery = Type.Object({
  matterId: Type.Optional(Type.String({ maxLength: 64 })), timekeeperId: Type.Optional(Type.String({ maxLength: 64 })),
  status: Type.Optional(literals(WIP_STATUSES)), from: Type.Optional(IsoDate('On or after')), to: Type.Optional(IsoDate('On or before')),
  ...PagingQuery,
}, { additionalProperties: false });
const DisbursementQuery = Type.Object({
  matterId: Type.Optional(Type.String({ maxLength: 64 })), status: Type.Optional(literals(WIP_STATUSES)),
  from: Type.Optional(IsoDate('On or after')), to: Type.Optional(IsoDate('On or before')), ...PagingQuery,
}, { additionalProperties: false });

const DisbursementSchema = Type.Object({
  id: Type.String(), matterId: Type.String(), fileNumber: Type.String(), incurredOn: Type.String(), code: Type.String(),
  expenseCode: Nullable(Type.String()), quantity: Type.String(), unitCost: Type.String(), amount: Type.String(), currency: Type.String(),
  taxCode: Nullable(Type.String()), description: Type.String(), payee: Nullable(Type.String()), behaviour: Behaviour,
  status: literals(WIP_STATUSES), ...Version, ...Stamps,
});
const DisbursementCreate = Type.Object({
  id: ItemKey, matterId: Id, incurredOn: IsoDate(), code: Text(20, { minLength: 1 }), expenseCode: Type.Optional(NullableText(10)),
  quantity: Type.Optional(Quantity), unitCost: Money('Cost of one unit, matter currency'), taxCode: Type.Optional(NullableText(20)),
  description: Text(LIMITS.narrativeChars), payee: Type.Optional(NullableText(LIMITS.nameChars)), behaviour: Type.Optional(Behaviour),
}, { additionalProperties: false });
const DisbursementChange = Type.Object({
  incurredOn: Type.Optional(IsoDate()), code: Type.Optional(Text(20, { minLength: 1 })), expenseCode: Type.Optional(NullableText(10)),
  quantity: Type.Optional(Quantity), unitCost: Type.Optional(Money('Cost of one unit, matter currency')),
  taxCode: Type.Optional(NullableText(20)), description: Type.Optional(Text(LIMITS.narrativeChars)),
  payee: Type.Optional(NullableText(LIMITS.nameChars)), behaviour: Type.Optional(Behaviour), expectedVersion: ExpectedVersion,
}, { additionalProperties: false });

const SearchQuery = Type.Object({ q: Type.Optional(Type.String({ maxLength: 200, description: 'Contains (name, email) or number' })), ...PagingQuery }, { additionalProperties: false });
const TimekeeperQuery = Type.Object({
  q: Type.Optional(Type.String({ maxLength: 200, description: 'Initials or name contains' })), active: Type.Optional(Type.Boolean()), ...PagingQuery,
}, { additionalProperties: false });

const RejectionSchema = Type.Object({ row: Type.Integer(), field: Nullable(Type.String()), message: Type.String() });
const ImportResultSchema = Type.Object({
  kind: literals(IMPORT_KINDS), dryRun: Type.Boolean(), rows: Type.Integer({ description: 'Data rows read' }),
  accepted: Type.Integer({ description: 'Rows that passed every check' }), imported: Type.Integer({ description: 'Rows written (0 for a dry run or when any row is rejected)' }),
  rejected: Type.Array(RejectionSchema),
  created: Type.Array(Type.Object({ row: Type.Integer(), id: Type.String(), reference: Nullable(Type.String({ description: 'Client number or file number' })) })),
  warnings: Type.Array(Type.String({ description: 'e.g. a matter is now over its WIP cap' })),
  alreadyApplied: Type.Optional(Type.Object({ at: Type.String(), by: Type.String() }, { description: 'This id was applied before: nothing more was imported; the first outcome is returned' })),
});
const ImportBody = Type.Object({ csv: Type.String({ description: 'The CSV text (or send the file itself as text/csv)' }) }, { additionalProperties: false });
const ImportQuery = Type.Object({
  dryRun: Type.Optional(Type.Boolean({ description: 'Check only; nothing is written (default false)' })),
  id: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'An id for this import (idempotency key): the same id again imports nothing more and returns the first outcome' })),
  importAgain: Type.Optional(Type.Boolean({ description: 'Import a file imported before (the same kind and content, under another id) again: without it that is 409 naming importAgain, and a dry run says `earlierImport`' })),
}, { additionalProperties: false });

// ---------------------------------------------------------------------------------------
// Changes, contacts, participants, charge types and fixed charges
// ---------------------------------------------------------------------------------------

const ClientChange = Type.Object({
  name: Type.Optional(Text(LIMITS.nameChars, { minLength: 1 })), email: Type.Optional(Email),
  address: Type.Optional(NullableText(LIMITS.textChars)), taxId: Type.Optional(NullableText(50)),
}, { additionalProperties: false });
const TimekeeperChange = Type.Object({
  name: Type.Optional(Text(LIMITS.nameChars, { minLength: 1 })), classification: Type.Optional(literals(TIMEKEEPER_CLASSIFICATIONS)),
  ledesClassification: Type.Optional(literals(LEDES_CLASSIFICATIONS)), active: Type.Optional(Type.Boolean()),
  staffEmail: Type.Optional(Nullable(Type.String({ maxLength: 254, description: 'The staff account (sign-in email) that records this timekeeper\'s time; null unlinks it' }))),
}, { additionalProperties: false });
const MatterChange = Type.Object({
  name: Type.Optional(Text(LIMITS.nameChars, { minLength: 1 })), practiceArea: Type.Optional(NullableText(100)),
  responsibleTimekeeperId: Type.Optional(Id), billingTimekeeperId: Type.Optional(Id), originatingTimekeeperId: Type.Optional(Nullable(Id)),
  billingCycle: Type.Optional(literals(BILLING_CYCLES)), nextBillingDate: Type.Optional(Nullable(IsoDate(), 'must be a date (YYYY-MM-DD) or null')),
  wipCap: Type.Optional(Nullable(Money('WIP at which the matter must be billed, matter currency'), `${MONEY_MESSAGE} or null`)),
  timeUnitMinutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 60 })), roundingMode: Type.Optional(literals(MINUTE_ROUNDING)),
  defaultBehaviour: Type.Optional(Behaviour), expectedVersion: ExpectedVersion,
}, { additionalProperties: false });
const CloseBody = Type.Object({ closedOn: Type.Optional(IsoDate('Defaults to today')) }, { additionalProperties: false });

const ContactSchema = Type.Object({
  id: Type.String(), clientId: Type.String(), name: Type.String(), email: Nullable(Type.String()), phone: Nullable(Type.String()),
  address: Nullable(Type.String()), role: Nullable(Type.String()), ...Stamps,
});
const ContactFields = {
  email: Type.Optional(Email), phone: Type.Optional(NullableText(50)), address: Type.Optional(NullableText(LIMITS.textChars)),
  role: Type.Optional(NullableText(100)),
};
const ContactCreate = Type.Object({ name: Text(LIMITS.nameChars, { minLength: 1 }), ...ContactFields }, { additionalProperties: false });
const ContactChange = Type.Object({ name: Type.Optional(Text(LIMITS.nameChars, { minLength: 1 })), ...ContactFields }, { additionalProperties: false });
const ParticipantsSchema = Type.Object({
  billableParty: Type.Object({
    kind: literals(['client', 'contact']), contactId: Nullable(Type.String()), name: Type.String(), email: Nullable(Type.String()), address: Nullable(Type.String()),
  }),
  participants: Type.Array(Type.Object({ contactId: Type.String(), role: Type.String(), name: Type.String(), email: Nullable(Type.String()) })),
});
const ParticipantsSet = Type.Object({
  billablePartyContactId: Nullable(Type.String({ maxLength: 64 }), 'must be a contact id, or null for the client itself'),
  participants: Type.Array(Type.Object({ contactId: Id, role: Text(100, { minLength: 1 }) }, { additionalProperties: false }), { maxItems: 100 }),
}, { additionalProperties: false });

const ChargeTypeSchema = Type.Object({
  id: Type.String(), code: Type.String(), name: Type.String(), defaultPrice: Type.String({ description: 'Firm currency' }), currency: Type.String(),
  taxCode: Nullable(Type.String()), taskCode: Nullable(Type.String()), activityCode: Nullable(Type.String()), active: Type.Boolean(), ...Stamps,
  seen: Type.String({ description: 'A fingerprint of the charge type as read: send it back with a change to have a change made since refused (409)' }),
});
const ChargeTypeFields = {
  taxCode: Type.Optional(NullableText(20)), taskCode: Type.Optional(NullableText(10)), activityCode: Type.Optional(NullableText(10)),
  active: Type.Optional(Type.Boolean()),
};
const ChargeTypeCreate = Type.Object({
  code: Text(20, { minLength: 1 }), name: Text(LIMITS.nameChars, { minLength: 1 }), defaultPrice: Money('Default unit price, firm currency'), ...ChargeTypeFields,
}, { additionalProperties: false });
const ChargeTypeChange = Type.Object({
  code: Type.Optional(Text(20, { minLength: 1 })), name: Type.Optional(Text(LIMITS.nameChars, { minLength: 1 })),
  defaultPrice: Type.Optional(Money('Default unit price, firm currency')), ...ChargeTypeFields,
  seen: Type.Optional(Type.String({ maxLength: 64, description: 'The `seen` of what you read: a change made by someone else since is refused (409), not overwritten' })),
}, { additionalProperties: false });
const ChargeTypeQuery = Type.Object({ active: Type.Optional(Type.Boolean({ description: 'true: active ones only' })) }, { additionalProperties: false });

const FixedChargeSchema = Type.Object({
  id: Type.String(), matterId: Type.String(), fileNumber: Type.String(), chargeTypeId: Type.String(), chargedOn: Type.String(),
  quantity: Type.String(), unitPrice: Type.String(), amount: Type.String(), currency: Type.String(), taxCode: Nullable(Type.String()),
  taskCode: Nullable(Type.String()), activityCode: Nullable(Type.String()), description: Type.String(),
  quoted: Type.Boolean({ description: 'Quoted for the matter rather than work recorded: adds nothing to WIP' }), behaviour: Behaviour,
  status: literals(WIP_STATUSES), ...Version, ...Stamps,
});
const FixedChargeFields = {
  quantity: Type.Optional(Quantity), unitPrice: Type.Optional(Money('Defaults to the charge type price')),
  description: Type.Optional(Text(LIMITS.narrativeChars)), taxCode: Type.Optional(NullableText(20)), taskCode: Type.Optional(NullableText(10)),
  activityCode: Type.Optional(NullableText(10)), behaviour: Type.Optional(Behaviour), quoted: Type.Optional(Type.Boolean()),
};
const FixedChargeCreate = Type.Object({ id: ItemKey, matterId: Id, chargedOn: IsoDate(), chargeTypeId: Id, ...FixedChargeFields }, { additionalProperties: false });
/** A delete's optimistic check: with the version read, an item changed since is refused (409), not deleted unseen. */
const DeleteQuery = Type.Object({ expectedVersion: ExpectedVersion }, { additionalProperties: false });
const FixedChargeChange = Type.Object({ chargedOn: Type.Optional(IsoDate()), ...FixedChargeFields, expectedVersion: ExpectedVersion }, { additionalProperties: false });
const Warnings = { warnings: Type.Array(Type.String({ description: 'e.g. the matter is now over its WIP cap' })) };

// ---------------------------------------------------------------------------------------
// Billing options and firm settings on the wire: MatterBillingOptions with every amount a
// decimal string (`...Minor` fields lose the suffix: quote.amountMinor -> quote.amount) and
// every basis-point figure a percent string (discount.percentBasisPoints -> discount.percent).
// ---------------------------------------------------------------------------------------

const Percent = (description: string) => Type.String({ pattern: '^[0-9]{1,3}(\\.[0-9]{1,2})?$', errorMessage: 'must be a percentage as a decimal string, e.g. "12.5"', description });
const NullableId = Nullable(Type.String({ maxLength: 64 }), 'must be an id or null');

/** Object schema of the given properties; for a patch every property is optional. */
function section<P extends Record<string, TSchema>>(props: P, partial: boolean) {
  if (!partial) return Type.Object(props, { additionalProperties: false });
  const opt: Record<string, TSchema> = {};
  for (const [k, v] of Object.entries(props)) opt[k] = Type.Optional(v);
  return Type.Object(opt, { additionalProperties: false });
}

const ScheduleRowOut = Type.Object({
  rowId: Type.String(), amount: Type.String(), description: Type.String(), billOn: Type.String(),
  billOnStep: Nullable(Type.String()), payOnStep: Nullable(Type.String()), invoiceNumber: Nullable(Type.String()),
});
const ScheduleRowIn = Type.Object({
  rowId: Type.Optional(Type.String({ maxLength: 64, description: 'Keep to change a row; leave out for a new row' })),
  amount: Money('Instalment amount'), description: Text(1000), billOn: IsoDate('Bill on or after'),
  billOnStep: Type.Optional(NullableText(100)), payOnStep: Type.Optional(NullableText(100)),
  invoiceNumber: Type.Optional(Nullable(Type.String({ maxLength: 40 }), 'is set by billing')),
}, { additionalProperties: false });

function optionsSchema(partial: boolean) {
  const toPay = literals(['new_charges', 'new_charges_and_ar']);
  const automation = literals(['automatic', 'manual']);
  const quoteChoice = literals(['bill_quote', 'quote_plus_wip', 'wip_only']);
  const props = {
    billingEnabled: Type.Boolean(),
    billingStatus: literals(['use_matter_status', 'active', 'closed']),
    billTemplate: Type.String({ maxLength: 100 }),
    sendTo: Type.Array(Type.String({ maxLength: 254 }), { maxItems: 20 }),
    useClientAddress: Type.Boolean(),
    emailTemplate: Type.String({ maxLength: 100 }),
    copiesToPrint: Type.Unsafe<0 | 1 | 2>(Type.Union([Type.Literal(0), Type.Literal(1), Type.Literal(2)], { description: '0: do not print' })),
    customRatesEnabled: Type.Boolean(),
    generalRetainer: section({ enabled: Type.Boolean(), toPay, automation }, partial),
    retainerReplenishment: section({ enabled: Type.Boolean(), minimumBalance: Money('Minimum retainer balance'), trigger: Money('Top-up trigger amount') }, partial),
    trust: section({ toPay, automation }, partial),
    massBilling: section({ exclude: Type.Boolean(), onlyExpenses: Type.Boolean() }, partial),
    arrangement: literals(['hourly', 'fixed_fee']),
    defaultTimeEntryBehaviour: Behaviour,
    quote: section({
      amount: Nullable(Money('Quoted amount'), `${MONEY_MESSAGE} or null`), includes: literals(['fees', 'fees_and_costs', 'costs']),
      ifWipBelow: quoteChoice, ifWipAbove: quoteChoice,
    }, partial),
    feeReductions: section({ appearAsDiscount: Type.Boolean(), hideLinePricing: Type.Boolean() }, partial),
    fixedFee: section({ mode: literals(['every_cycle', 'custom_schedule']), schedule: Type.Array(partial ? ScheduleRowIn : ScheduleRowOut, { maxItems: 240 }) }, partial),
    discount: section({ kind: literals(['none', 'percentage', 'fixed']), percent: Percent('Percentage of fees'), amount: Money('Fixed discount on fees') }, partial),
    feeAllocation: section({
      allocateFees: literals(['pro_rata', 'responsible', 'selected']), feesTimekeeperId: NullableId,
      allocateAdjustments: literals(['original_split', 'responsible', 'selected']), adjustmentsTimekeeperId: NullableId,
      originationEnabled: Type.Boolean(), originatorTimekeeperId: NullableId, originationPercent: Percent('Origination fee share'),
    }, partial),
    ebilling: section({
      enabled: Type.Boolean(), codeSet: Type.String({ maxLength: 50 }), format: literals(['LEDES1998B', 'LEDES1998BI']),
      clientLedesId: Type.String({ maxLength: 20 }), matterLedesId: Type.String({ maxLength: 20 }),
    }, partial),
  };
  return section(props, partial);
}

const OptionsOut = optionsSchema(false);
const OptionsPatch = optionsSchema(true);
const SECTION_NAMES = ['billingEnabled', 'billingStatus', 'billTemplate', 'sendTo', 'useClientAddress', 'emailTemplate', 'copiesToPrint',
  'customRatesEnabled', 'generalRetainer', 'retainerReplenishment', 'trust', 'massBilling', 'arrangement', 'defaultTimeEntryBehaviour',
  'quote', 'feeReductions', 'fixedFee', 'discount', 'feeAllocation', 'ebilling'] as const;
const BillingOptionsSchema = Type.Object({
  matterId: Type.String(), currency: Type.String({ description: 'Of every amount here' }), effective: OptionsOut,
  overridden: Type.Array(literals(SECTION_NAMES)), inherited: Type.Array(literals(SECTION_NAMES)),
  warnings: Type.Optional(Type.Array(Type.String())),
  seen: Type.String({ description: 'A fingerprint of the options as read (every section, and whether each is the matter\'s own): send it back with a change to have a change made since refused (409)' }),
});
const BillingOptionsChange = Type.Object({
  set: Type.Optional(OptionsPatch),
  inherit: Type.Optional(Type.Array(literals(SECTION_NAMES), { description: 'Sections to stop overriding: they follow the firm defaults again' })),
  seen: Type.Optional(Type.String({ maxLength: 64, description: 'The `seen` of what you read: a change made by someone else since is refused (409), not overwritten' })),
}, { additionalProperties: false });
const AutoFillBody = Type.Object({
  firstAmount: Money('The first instalment: as many as fit in the quote, then the remainder'),
  startDate: Type.Optional(IsoDate()), description: Type.Optional(Text(1000)),
}, { additionalProperties: false });

function settingsSchema(partial: boolean) {
  const TaxRate = Type.Object({ code: Type.String({ maxLength: 20 }), name: Type.String({ maxLength: 100 }), percent: Percent('Tax rate') }, { additionalProperties: false });
  return section({
    currency: Currency,
    taxRates: Type.Array(TaxRate, { maxItems: 50 }),
    defaultFeeTaxCode: Type.String({ maxLength: 20 }),
    taxRounding: literals(['per_line', 'per_bill']),
    paymentTermsDays: Type.Integer({ minimum: 0, maximum: 365 }),
    timeUnitMinutes: Type.Integer({ minimum: 1, maximum: 60 }),
    timeRounding: literals(MINUTE_ROUNDING),
    generalRetainersEnabled: Type.Boolean(),
    wipCapPolicy: literals(['warn', 'refuse']),
    interest: section({ enabled: Type.Boolean(), annualRatePercent: Percent('Annual interest rate'), graceDays: Type.Integer({ minimum: 0, maximum: 365 }) }, partial),
    postingOutsideCurrentPeriod: literals(['warn', 'refuse']),
    matterDefaults: partial ? OptionsPatch : OptionsOut,
  }, partial);
}
const SettingsOut = Type.Object({
  ...settingsSchema(false).properties,
  seen: Type.String({ description: 'A fingerprint of the settings as read: send it back with a change to have a change made since refused (409)' }),
}, { additionalProperties: false });
const SettingsPatch = Type.Object({ ...settingsSchema(true).properties, seen: Type.Optional(Type.String({ maxLength: 64, description: 'The `seen` of what you read: a change made by someone else since is refused (409), not overwritten' })) }, { additionalProperties: false });

/** Domain field names to wire names, segment by segment (`quote.amountMinor` -> `quote.amount`). */
const WIRE_NAMES: Readonly<Record<string, string>> = {
  amountMinor: 'amount', minimumBalanceMinor: 'minimumBalance', triggerMinor: 'trigger', percentBasisPoints: 'percent',
  originationBasisPoints: 'originationPercent', basisPoints: 'percent', annualRateBasisPoints: 'annualRatePercent',
  defaultPriceMinor: 'defaultPrice', unitPriceMinor: 'unitPrice', quantityMilli: 'quantity', wipCapMinor: 'wipCap',
  unitCostMinor: 'unitCost', firstAmountMinor: 'firstAmount', rateMinor: 'rate',
};
const wireField = (path: string, prefix = ''): string => prefix + path.split('.').map((s) => WIRE_NAMES[s] ?? s).join('.');

/** Rename a 422's fields to wire names (optionally prefixed, e.g. `set.`). */
async function wireNamed<T>(fn: () => Promise<T>, prefixOf: (field: string) => string = () => ''): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof HttpError && err.status === 422 && Object.keys(err.fields).length > 0) {
      const fields: Record<string, string> = {};
      for (const [k, v] of Object.entries(err.fields)) fields[wireField(k, prefixOf(k))] = /basisPoints$/i.test(k) ? percentMessage(v) : v;
      throw invalid(fields, err.message.startsWith('Please correct') ? undefined : err.message);
    }
    throw err;
  }
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function optionsOut(o: MatterBillingOptions, currency: string) {
  const m = (minor: number) => moneyText(minor, currency);
  return {
    ...o,
    retainerReplenishment: { enabled: o.retainerReplenishment.enabled, minimumBalance: m(o.retainerReplenishment.minimumBalanceMinor), trigger: m(o.retainerReplenishment.triggerMinor) },
    quote: { amount: o.quote.amountMinor === null ? null : m(o.quote.amountMinor), includes: o.quote.includes, ifWipBelow: o.quote.ifWipBelow, ifWipAbove: o.quote.ifWipAbove },
    fixedFee: {
      mode: o.fixedFee.mode,
      schedule: o.fixedFee.schedule.map((r) => ({ rowId: r.rowId, amount: m(r.amountMinor), description: r.description, billOn: r.billOn, billOnStep: r.billOnStep, payOnStep: r.payOnStep, invoiceNumber: r.invoiceNumber })),
    },
    discount: { kind: o.discount.kind, percent: percentText(o.discount.percentBasisPoints), amount: m(o.discount.amountMinor) },
    feeAllocation: (({ originationBasisPoints, ...rest }) => ({ ...rest, originationPercent: percentText(originationBasisPoints) }))(o.feeAllocation),
  };
}

/** A wire options patch to the domain's, amounts converted exactly in `currency`; problems go to errors under `prefix`. */
function optionsPatchIn(p: Json, currency: string, errors: FieldErrors, prefix: string): Json {
  const out: Json = { ...p };
  const money = (field: string, v: unknown): number | undefined =>
    typeof v === 'string' ? take(errors, `${prefix}${field}`, limited(parseMoneyText(v, currency), MAX_AMOUNT_MINOR, currency)) : undefined;
  const pct = (field: string, v: unknown): number | undefined =>
    typeof v === 'string' ? take(errors, `${prefix}${field}`, parsePercentText(v)) : undefined;
  /** Copy a section, renaming and converting the given keys. */
  const conv = (sec: string, map: Record<string, [string, (field: string, v: unknown) => number | null | undefined]>) => {
    const s = p[sec];
    if (!isObject(s)) return;
    const next: Json = { ...s };
    for (const [wire, [domain, f]] of Object.entries(map)) {
      if (!(wire in s)) continue;
      delete next[wire];
      const v = s[wire];
      next[domain] = v === null ? null : f(`${sec}.${wire}`, v);
    }
    out[sec] = next;
  };
  conv('retainerReplenishment', { minimumBalance: ['minimumBalanceMinor', money], trigger: ['triggerMinor', money] });
  conv('quote', { amount: ['amountMinor', money] });
  conv('discount', { percent: ['percentBasisPoints', pct], amount: ['amountMinor', money] });
  conv('feeAllocation', { originationPercent: ['originationBasisPoints', pct] });
  const ff = p.fixedFee;
  if (isObject(ff) && Array.isArray(ff.schedule)) {
    out.fixedFee = {
      ...ff,
      schedule: ff.schedule.map((r: unknown, i: number) => {
        if (!isObject(r)) return r;
        const { amount, ...rest } = r;
        return { ...rest, amountMinor: money(`fixedFee.schedule.${i}.amount`, amount) };
      }),
    };
  }
  return out;
}

function settingsOut(s: FirmBillingSettings) {
  return {
    ...s,
    seen: firmSettingsSeen(s, 'all'),
    taxRates: s.taxRates.map((t) => ({ code: t.code, name: t.name, percent: percentText(t.basisPoints) })),
    interest: { enabled: s.interest.enabled, annualRatePercent: percentText(s.interest.annualRateBasisPoints), graceDays: s.interest.graceDays },
    matterDefaults: optionsOut(s.matterDefaults, s.currency),
  };
}

function settingsPatchIn(p: Json, currency: string, errors: FieldErrors): Json {
  const out: Json = { ...p };
  if (Array.isArray(p.taxRates)) {
    out.taxRates = p.taxRates.map((t: unknown, i: number) => {
      if (!isObject(t)) return t;
      const { percent, ...rest } = t;
      return { ...rest, basisPoints: typeof percent === 'string' ? take(errors, `taxRates.${i}.percent`, parsePercentText(percent)) : percent };
    });
  }
  if (isObject(p.interest)) {
    const { annualRatePercent, ...rest } = p.interest;
    out.interest = { ...rest, ...(typeof annualRatePercent === 'string' ? { annualRateBasisPoints: take(errors, 'interest.annualRatePercent', parsePercentText(annualRatePercent)) } : {}) };
  }
  if (isObject(p.matterDefaults)) out.matterDefaults = optionsPatchIn(p.matterDefaults, currency, errors, 'matterDefaults.');
  return out;
}

// ---------------------------------------------------------------------------------------
// Views (records -> wire)
// ---------------------------------------------------------------------------------------

const clientView = (c: Client) => ({
  id: c.id, clientNumber: c.clientNumber, name: c.name, email: c.email, address: c.address, taxId: c.taxId, createdAt: c.createdAt, updatedAt: c.updatedAt,
});

function matterView(m: Matter, client: { clientNumber: number; name: string }, version: number) {
  return {
    id: m.id, clientId: m.clientId, clientNumber: client.clientNumber, clientName: client.name, matterNumber: m.matterNumber,
    fileNumber: m.fileNumber, name: m.name, status: m.status, practiceArea: m.practiceArea, openedOn: m.openedOn, closedOn: m.closedOn,
    responsibleTimekeeperId: m.responsibleTimekeeperId, billingTimekeeperId: m.billingTimekeeperId,
    originatingTimekeeperId: m.originatingTimekeeperId, billingCycle: m.billingCycle, nextBillingDate: m.nextBillingDate,
    wipCap: m.wipCapMinor === null ? null : moneyText(m.wipCapMinor, m.currency), currency: m.currency,
    timeUnitMinutes: m.timeUnitMinutes, roundingMode: m.roundingMode, defaultBehaviour: m.defaultBehaviour,
    version, createdAt: m.createdAt, updatedAt: m.updatedAt,
  };
}

const timekeeperView = (t: Timekeeper, currentRateMinor: number | null, currency: string) => ({
  id: t.id, initials: t.initials, name: t.name, classification: t.classification, ledesClassification: t.ledesClassification,
  active: t.active, staffEmail: t.staffEmail, currentRate: currentRateMinor === null ? null : moneyText(currentRateMinor, currency), createdAt: t.createdAt, updatedAt: t.updatedAt,
});

function timeView(t: TimeEntry, m: { currency: string; fileNumber: string }, version: number) {
  return {
    id: t.id, matterId: t.matterId, fileNumber: m.fileNumber, timekeeperId: t.timekeeperId, workDate: t.workDate,
    minutes: t.rawMinutes, hours: hoursText(t.rawMinutes), billedMinutes: t.billedMinutes, billedHours: hoursText(t.billedMinutes),
    rate: moneyText(t.rateMinor, m.currency), rateSource: t.rateSource, rateReason: t.overrideReason,
    amount: moneyText(t.amountMinor, m.currency), currency: m.currency, narrative: t.narrative, taskCode: t.taskCode,
    activityCode: t.activityCode, behaviour: t.behaviour, status: t.status, version, createdAt: t.createdAt, updatedAt: t.updatedAt,
  };
}

function disbursementView(d: Disbursement, m: { currency: string; fileNumber: string }, version: number) {
  return {
    id: d.id, matterId: d.matterId, fileNumber: m.fileNumber, incurredOn: d.incurredOn, code: d.code, expenseCode: d.expenseCode,
    quantity: quantityText(d.quantityMilli), unitCost: moneyText(d.unitCostMinor, m.currency), amount: moneyText(d.amountMinor, m.currency),
    currency: m.currency, taxCode: d.taxCode, description: d.description, payee: d.payee, behaviour: d.behaviour, status: d.status,
    version, createdAt: d.createdAt, updatedAt: d.updatedAt,
  };
}

// ---------------------------------------------------------------------------------------
// Raw rows (list queries) -> records
// ---------------------------------------------------------------------------------------

type Row = Record<string, unknown>;
/** An integer from either database (Postgres sums come back as numeric text). */
function int(v: unknown): number {
  const n = typeof v === 'number' ? v : Number(v ?? 0);
  if (!Number.isSafeInteger(n)) throw new Error(`expected an integer from the database, got ${String(v)}`);
  return n;
}
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

/** Records by id, in the order of ids (a page of ids read first, then loaded by the store). */
function inOrder<T>(ids: readonly string[], byId: ReadonlyMap<string, T>): T[] {
  return ids.map((id) => byId.get(id)).filter((x): x is T => x !== undefined);
}
const idsOf = (rows: Row[]): string[] => rows.map((r) => String(r.id));

const rowToTime = (r: Row): TimeEntry => ({
  id: String(r.id), matterId: String(r.matter_id), timekeeperId: String(r.timekeeper_id), workDate: String(r.work_date),
  rawMinutes: int(r.raw_minutes), billedMinutes: int(r.billed_minutes), rateMinor: int(r.rate_minor),
  rateSource: String(r.rate_source) as TimeEntry['rateSource'], overrideReason: strOrNull(r.override_reason), amountMinor: int(r.amount_minor),
  narrative: String(r.narrative), taskCode: strOrNull(r.task_code), activityCode: strOrNull(r.activity_code),
  behaviour: String(r.behaviour) as EntryBehaviour, status: String(r.status) as TimeEntry['status'],
  createdAt: String(r.created_at), updatedAt: String(r.updated_at),
});

const rowToDisbursement = (r: Row): Disbursement => ({
  id: String(r.id), matterId: String(r.matter_id), incurredOn: String(r.incurred_on), code: String(r.code), expenseCode: strOrNull(r.expense_code),
  quantityMilli: int(r.quantity_milli), unitCostMinor: int(r.unit_cost_minor), amountMinor: int(r.amount_minor), taxCode: strOrNull(r.tax_code),
  description: String(r.description), payee: strOrNull(r.payee), behaviour: String(r.behaviour) as EntryBehaviour,
  status: String(r.status) as Disbursement['status'], createdAt: String(r.created_at), updatedAt: String(r.updated_at),
});

/** `lower(column) like '%text%'` with %, _ and ! in the text taken literally. */
function contains(column: string, text: string) {
  const pattern = `%${text.toLowerCase().replace(/[!%_]/g, (ch) => `!${ch}`)}%`;
  return sql<boolean>`lower(${sql.ref(column)}) like ${pattern} escape '!'`;
}

const paging = (q: { limit?: number; offset?: number }) => ({ limit: q.limit ?? 50, offset: q.offset ?? 0 });

// ---------------------------------------------------------------------------------------
// Input helpers
// ---------------------------------------------------------------------------------------

/** Add a parse problem to errors under field; the value when it parsed. */
function take<T>(errors: FieldErrors, field: string, p: Parsed<T>): T | undefined {
  if (p.ok) return p.value;
  errors[field] = p.error;
  return undefined;
}

function failIf(errors: FieldErrors): void {
  if (Object.keys(errors).length > 0) throw invalid(errors);
}

/** Run a command; a 422 naming command fields (`rawMinutes`) is renamed to API fields (`hours`). */
async function named<T>(map: Readonly<Record<string, string>>, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof HttpError && err.status === 422 && Object.keys(err.fields).some((k) => k in map)) {
      const fields: Record<string, string> = {};
      for (const [k, v] of Object.entries(err.fields)) fields[map[k] ?? k] = v;
      throw invalid(fields);
    }
    throw err;
  }
}

/** Minutes from `hours` or `minutes` (exactly one when required). */
function minutesFrom(errors: FieldErrors, body: { hours?: string; minutes?: number }, required: boolean): { minutes: number | undefined; field: string } {
  if (body.hours !== undefined && body.minutes !== undefined) {
    errors.hours = 'give hours or minutes, not both';
    return { minutes: undefined, field: 'hours' };
  }
  if (body.minutes !== undefined) return { minutes: body.minutes, field: 'minutes' };
  if (body.hours === undefined) {
    if (required) errors.hours = 'is required (or give minutes)';
    return { minutes: undefined, field: 'hours' };
  }
  const p = parseHoursText(body.hours);
  const problem = p.ok ? minutesRangeError(p.value) : p.error;
  if (problem) { errors.hours = problem; return { minutes: undefined, field: 'hours' }; }
  return { minutes: p.ok ? p.value : undefined, field: 'hours' };
}

const TIME_FIELD_NAMES = { 'override.rateMinor': 'rate', 'override.reason': 'rateReason', override: 'rate' } as const;
const DISBURSEMENT_FIELD_NAMES = { quantityMilli: 'quantity', unitCostMinor: 'unitCost' } as const;
const MATTER_FIELD_NAMES = { wipCapMinor: 'wipCap' } as const;

// ---------------------------------------------------------------------------------------
// The API
// ---------------------------------------------------------------------------------------

/** The matters JSON API, mounted at /api/v1 (routes registered in the OpenAPI document). */
export function createMattersApi(deps: ModuleDeps, cmds: MattersCommands): Hono<AppEnv> {
  const api = createApi(deps.apiRegistry);
  const { db } = deps;
  const ctxOf = (c: Context<AppEnv>): CommandContext => c.get('command');
  const param = (c: Context<AppEnv>, name: string): string => c.req.param(name) ?? '';
  /** The currency of timekeeper and client rates, and of matters that name none. */
  const firmCurrency = async (): Promise<string> => (await cmds.getFirmSettings()).currency;
  const today = (): string => isoDate(deps.clock.now());

  async function clientOr404(id: string): Promise<Client> {
    const c = await cmds.findClient(id);
    if (!c) throw notFound('Client');
    return c;
  }
  async function matterOr404(id: string): Promise<Matter> {
    const m = await cmds.findMatter(id);
    if (!m) throw notFound('Matter');
    return m;
  }
  async function timekeeperOr404(id: string): Promise<Timekeeper> {
    const t = await cmds.findTimekeeper(id);
    if (!t) throw notFound('Timekeeper');
    return t;
  }
  /**
   * A matter's or an item's row and its version, read together (404 when it is gone): what a
   * response carries, so the version a client sends back describes the data it was shown.
   */
  async function versioned<T extends store.VersionedTable>(table: T, id: string, what: string) {
    const v = (await store.findWithVersions(db, table, [id])).get(id);
    if (!v) throw notFound(what);
    return v;
  }
  async function matterOut(m: Matter, version: number) {
    const client = await cmds.findClient(m.clientId);
    return matterView(m, client ?? { clientNumber: 0, name: '' }, version);
  }
  /** The matter as it is now (read again with its version), its WIP totals and cap. */
  async function matterDetail(given: Matter) {
    const { row: m, version } = await versioned('matters_matter', given.id, 'Matter');
    const wip = await wipTotals(m.id);
    const cap = capStatus((await cmds.capStatusFor(m.id)).wipMinor, m.wipCapMinor);
    return {
      ...await matterOut(m, version),
      wip: {
        time: moneyText(wip.timeMinor, m.currency), disbursements: moneyText(wip.disbMinor, m.currency),
        fixedCharges: moneyText(wip.fixedMinor, m.currency), total: moneyText(wip.totalMinor, m.currency),
        unbilledMinutes: wip.minutes, unbilledHours: hoursText(wip.minutes), unbilledItems: wip.items,
      },
      cap: {
        cap: m.wipCapMinor === null ? null : moneyText(m.wipCapMinor, m.currency), state: cap.state,
        distance: cap.distanceMinor === null ? null : moneyText(cap.distanceMinor, m.currency), mustBill: cap.mustBill,
        policy: (await cmds.getFirmSettings()).wipCapPolicy,
      },
    };
  }
  async function wipTotals(matterId: string) {
    const t = await db.selectFrom('matters_time_entry').where('matter_id', '=', matterId).where('status', '=', 'unbilled')
      .select([
        sql<string>`coalesce(sum(case when behaviour = 'bill' then amount_minor else 0 end), 0)`.as('billable'),
        sql<string>`coalesce(sum(billed_minutes), 0)`.as('minutes'), sql<string>`count(*)`.as('n'),
      ]).executeTakeFirstOrThrow() as Row;
    const d = await db.selectFrom('matters_disbursement').where('matter_id', '=', matterId).where('status', '=', 'unbilled')
      .select([sql<string>`coalesce(sum(case when behaviour = 'bill' then amount_minor else 0 end), 0)`.as('billable'), sql<string>`count(*)`.as('n')])
      .executeTakeFirstOrThrow() as Row;
    const f = await db.selectFrom('matters_fixed_charge').where('matter_id', '=', matterId).where('status', '=', 'unbilled')
      .select([sql<string>`coalesce(sum(case when behaviour = 'bill' and quoted = 0 then amount_minor else 0 end), 0)`.as('billable'), sql<string>`count(*)`.as('n')])
      .executeTakeFirstOrThrow() as Row;
    const timeMinor = int(t.billable);
    const disbMinor = int(d.billable);
    const fixedMinor = int(f.billable);
    return { timeMinor, disbMinor, fixedMinor, totalMinor: timeMinor + disbMinor + fixedMinor, minutes: int(t.minutes), items: int(t.n) + int(d.n) + int(f.n) };
  }
  async function matterRef(matterId: string): Promise<{ currency: string; fileNumber: string }> {
    const m = await cmds.findMatter(matterId);
    if (!m) throw notFound('Matter');
    return { currency: m.currency, fileNumber: m.fileNumber };
  }
  async function countOf(q: SelectQueryBuilder<any, any, any>): Promise<number> {
    const r = await q.select(sql<string>`count(*)`.as('n')).executeTakeFirstOrThrow() as Row;
    return int(r.n);
  }

  // ---- clients ------------------------------------------------------------------------

  api.route({ method: 'get', path: '/clients', summary: 'List clients (search by name, email or number)', tag: TAG, audience: READ, query: SearchQuery, response: page(ClientSchema) },
    async (_c, { query }) => {
      const { limit, offset } = paging(query);
      let base = db.selectFrom('matters_client');
      const q = query.q?.trim();
      if (q) {
        base = base.where((eb) => {
          const ors = [contains('name', q), contains('email', q)];
          if (/^\d{1,15}$/.test(q)) ors.push(sql<boolean>`client_number = ${Number(q)}`);
          return eb.or(ors);
        });
      }
      const total = await countOf(base);
      const ids = idsOf(await base.select('id').orderBy('client_number').limit(limit).offset(offset).execute() as Row[]);
      return { items: inOrder(ids, await store.findClients(db, ids)).map(clientView), total, limit, offset };
    });

  api.route({ method: 'post', path: '/clients', summary: 'Create a client (numbered in sequence)', tag: TAG, audience: WRITE, body: ClientCreate, response: ClientSchema, status: 201 },
    async (c, { body }) => clientView(await cmds.createClient(ctxOf(c), body)));

  api.route({ method: 'get', path: '/clients/:id', summary: 'One client', tag: TAG, audience: READ, response: ClientSchema },
    async (c) => clientView(await clientOr404(param(c, 'id'))));

  // ---- timekeepers --------------------------------------------------------------------

  api.route({ method: 'get', path: '/timekeepers', summary: 'List timekeepers, with the standard rate in effect today', tag: TAG, audience: READ, query: TimekeeperQuery, response: page(TimekeeperSchema) },
    async (_c, { query }) => {
      const { limit, offset } = paging(query);
      let base = db.selectFrom('matters_timekeeper');
      const q = query.q?.trim();
      if (q) base = base.where((eb) => eb.or([contains('initials', q), contains('name', q)]));
      if (query.active !== undefined) base = base.where('active', '=', query.active ? 1 : 0);
      const total = await countOf(base);
      const ids = idsOf(await base.select('id').orderBy('initials').limit(limit).offset(offset).execute() as Row[]);
      const rows = inOrder(ids, await store.findTimekeepers(db, ids));
      const rates = await store.standardRates(db, rows.map((t) => t.id));
      const currency = await firmCurrency();
      const day = today();
      return { items: rows.map((t) => timekeeperView(t, standardRateOn(rates.get(t.id) ?? [], day)?.rateMinor ?? null, currency)), total, limit, offset };
    });

  api.route({ method: 'post', path: '/timekeepers', summary: 'Create a timekeeper', tag: TAG, audience: WRITE, body: TimekeeperCreate, response: TimekeeperSchema, status: 201 },
    async (c, { body }) => {
      const t = await cmds.createTimekeeper(ctxOf(c), {
        initials: body.initials, name: body.name, classification: body.classification as TimekeeperClassification,
        ...(body.ledesClassification ? { ledesClassification: body.ledesClassification as LedesClassification } : {}),
        ...(body.active !== undefined ? { active: body.active } : {}),
        ...(body.staffEmail !== undefined ? { staffEmail: body.staffEmail } : {}),
      });
      return timekeeperView(t, null, await firmCurrency());
    });

  async function timekeeperDetail(t: Timekeeper) {
    const rates = (await store.standardRates(db, [t.id])).get(t.id) ?? [];
    const currency = await firmCurrency();
    return {
      ...timekeeperView(t, standardRateOn(rates, today())?.rateMinor ?? null, currency), currency,
      rates: rates.map((r) => ({ effectiveFrom: r.effectiveFrom, rate: moneyText(r.rateMinor, currency) })),
    };
  }

  api.route({ method: 'get', path: '/timekeepers/:id', summary: 'One timekeeper with its standard rates', tag: TAG, audience: READ, response: TimekeeperDetailSchema },
    async (c) => timekeeperDetail(await timekeeperOr404(param(c, 'id'))));

  api.route({ method: 'get', path: '/timekeepers/:id/rates', summary: 'A timekeeper\'s effective-dated standard rates (firm currency)', tag: TAG, audience: READ,
    response: Type.Object({ currency: Type.String(), rates: Type.Array(StandardRateSchema) }) },
  async (c) => {
    const t = await timekeeperOr404(param(c, 'id'));
    const d = await timekeeperDetail(t);
    return { currency: d.currency, rates: d.rates };
  });

  api.route({ method: 'post', path: '/timekeepers/:id/rates', summary: 'Set a standard rate from a date (replaces one set for the same date)', tag: TAG, audience: WRITE,
    body: StandardRateCreate, response: Type.Object({ timekeeperId: Type.String(), effectiveFrom: Type.String(), rate: Type.String(), currency: Type.String() }), status: 201 },
  async (c, { body }) => {
    const t = await timekeeperOr404(param(c, 'id'));
    const currency = await firmCurrency();
    const errors: FieldErrors = {};
    const rateMinor = take(errors, 'rate', limited(parseMoneyText(body.rate, currency), LIMITS.rateMinor, currency));
    failIf(errors);
    const r = await named({ rateMinor: 'rate' }, () => cmds.setTimekeeperRate(ctxOf(c), { timekeeperId: t.id, effectiveFrom: body.effectiveFrom, rateMinor: rateMinor! }));
    return { timekeeperId: t.id, effectiveFrom: r.effectiveFrom, rate: moneyText(r.rateMinor, currency), currency };
  });

  // ---- client and matter rates ----------------------------------------------------------

  async function ownerRatesOut(table: 'matters_client_rate' | 'matters_matter_rate', ownerId: string, currency: string) {
    const rates = await store.ownerRates(db, table, [ownerId]);
    const tks = await store.findTimekeepers(db, [...rates.keys()].map((k) => k.split('|')[1]!));
    const out = [...rates.entries()].map(([k, rateMinor]) => {
      const tk = tks.get(k.split('|')[1]!);
      return { timekeeperId: k.split('|')[1]!, initials: tk?.initials ?? '', name: tk?.name ?? '', rate: moneyText(rateMinor, currency) };
    });
    out.sort((a, b) => (a.initials < b.initials ? -1 : a.initials > b.initials ? 1 : 0));
    return { currency, rates: out };
  }

  api.route({ method: 'get', path: '/clients/:id/rates', summary: 'The client\'s rates per timekeeper (firm currency)', tag: TAG, audience: READ, response: OwnerRatesSchema },
    async (c) => ownerRatesOut('matters_client_rate', (await clientOr404(param(c, 'id'))).id, await firmCurrency()));

  api.route({ method: 'put', path: '/clients/:id/rates/:timekeeperId', summary: 'Set the client\'s rate for a timekeeper', tag: TAG, audience: WRITE, body: OwnerRateSet, response: OwnerRatesSchema },
    async (c, { body }) => {
      const client = await clientOr404(param(c, 'id'));
      const tk = await timekeeperOr404(param(c, 'timekeeperId'));
      const currency = await firmCurrency();
      const errors: FieldErrors = {};
      const rateMinor = take(errors, 'rate', limited(parseMoneyText(body.rate, currency), LIMITS.rateMinor, currency));
      failIf(errors);
      await named({ rateMinor: 'rate' }, () => cmds.setClientRate(ctxOf(c), { clientId: client.id, timekeeperId: tk.id, rateMinor: rateMinor! }));
      return ownerRatesOut('matters_client_rate', client.id, currency);
    });

  api.route({ method: 'delete', path: '/clients/:id/rates/:timekeeperId', summary: 'Remove the client\'s rate for a timekeeper', tag: TAG, audience: WRITE, response: Type.Null(), status: 204 },
    async (c) => {
      const client = await clientOr404(param(c, 'id'));
      const tk = await timekeeperOr404(param(c, 'timekeeperId'));
      await cmds.setClientRate(ctxOf(c), { clientId: client.id, timekeeperId: tk.id, rateMinor: null });
      return null;
    });

  api.route({ method: 'get', path: '/matters/:id/rates', summary: 'The matter\'s rates per timekeeper (matter currency)', tag: TAG, audience: READ, response: OwnerRatesSchema },
    async (c) => {
      const m = await matterOr404(param(c, 'id'));
      return ownerRatesOut('matters_matter_rate', m.id, m.currency);
    });

  api.route({ method: 'put', path: '/matters/:id/rates/:timekeeperId', summary: 'Set the matter\'s rate for a timekeeper (422 unless the matter turns custom matter rates on)', tag: TAG, audience: WRITE, body: OwnerRateSet, response: OwnerRatesSchema },
    async (c, { body }) => {
      const m = await matterOr404(param(c, 'id'));
      const tk = await timekeeperOr404(param(c, 'timekeeperId'));
      const errors: FieldErrors = {};
      const rateMinor = take(errors, 'rate', limited(parseMoneyText(body.rate, m.currency), LIMITS.rateMinor, m.currency));
      // Seed 002: a matter's own rates apply only with custom matter rates turned on (as on the options page).
      if (!(await cmds.getBillingOptions(m.id)).effective.customRatesEnabled) {
        errors.customRatesEnabled = `is off for ${m.fileNumber}: turn on custom matter rates in its billing options first`;
      }
      failIf(errors);
      await named({ rateMinor: 'rate' }, () => cmds.setMatterRate(ctxOf(c), { matterId: m.id, timekeeperId: tk.id, rateMinor: rateMinor! }));
      return ownerRatesOut('matters_matter_rate', m.id, m.currency);
    });

  api.route({ method: 'delete', path: '/matters/:id/rates/:timekeeperId', summary: 'Remove the matter\'s rate for a timekeeper', tag: TAG, audience: WRITE, response: Type.Null(), status: 204 },
    async (c) => {
      const m = await matterOr404(param(c, 'id'));
      const tk = await timekeeperOr404(param(c, 'timekeeperId'));
      await cmds.setMatterRate(ctxOf(c), { matterId: m.id, timekeeperId: tk.id, rateMinor: null });
      return null;
    });

  // ---- matters ------------------------------------------------------------------------

  api.route({ method: 'get', path: '/matters', summary: 'List matters (search, client, status)', tag: TAG, audience: READ, query: MatterQuery, response: page(MatterSchema) },
    async (_c, { query }) => {
      const { limit, offset } = paging(query);
      let base = db.selectFrom('matters_matter as m').innerJoin('matters_client as c', 'c.id', 'm.client_id');
      const q = query.q?.trim();
      if (q) base = base.where((eb) => eb.or([contains('m.name', q), contains('c.name', q), contains('m.file_number', q)]));
      if (query.clientId) base = base.where('m.client_id', '=', query.clientId);
      if (query.status) base = base.where('m.status', '=', query.status);
      const total = await countOf(base);
      const rows = await base.select(['m.id as id', 'c.client_number as c_client_number', 'c.name as c_name'])
        .orderBy('c.client_number').orderBy('m.matter_number').limit(limit).offset(offset).execute() as Row[];
      const clients = new Map(rows.map((r) => [String(r.id), { clientNumber: int(r.c_client_number), name: String(r.c_name) }]));
      const ids = idsOf(rows);
      const found = await store.findWithVersions(db, 'matters_matter', ids);
      return { items: inOrder(ids, found).map((v) => matterView(v.row, clients.get(v.row.id)!, v.version)), total, limit, offset };
    });

  api.route({ method: 'post', path: '/matters', summary: 'Open a matter for a client (numbered client.matter)', tag: TAG, audience: WRITE, body: MatterCreate, response: MatterDetailSchema, status: 201 },
    async (c, { body }) => {
      const currency = body.currency ?? await firmCurrency();
      const errors: FieldErrors = {};
      let wipCapMinor: number | null = null;
      if (body.wipCap !== undefined && body.wipCap !== null) wipCapMinor = take(errors, 'wipCap', limited(parseMoneyText(body.wipCap, currency), LIMITS.wipCapMinor, currency, 1)) ?? null;
      failIf(errors);
      const { wipCap: _cap, ...rest } = body;
      const m = await named(MATTER_FIELD_NAMES, () => cmds.openMatter(ctxOf(c), {
        ...rest, currency, wipCapMinor,
        billingCycle: rest.billingCycle as BillingCycle | undefined, roundingMode: rest.roundingMode as MinuteRounding | undefined,
        defaultBehaviour: rest.defaultBehaviour as EntryBehaviour | undefined,
      }));
      return matterDetail(m);
    });

  api.route({ method: 'get', path: '/matters/:id', summary: 'One matter with its unbilled WIP totals and WIP cap status', tag: TAG, audience: READ, response: MatterDetailSchema },
    async (c) => matterDetail(await matterOr404(param(c, 'id'))));

  // ---- time entries -------------------------------------------------------------------

  api.route({ method: 'get', path: '/time-entries', summary: 'List time entries (matter, timekeeper, status, date range), newest first', tag: TAG, audience: READ, query: WipQuery, response: page(TimeEntrySchema) },
    async (_c, { query }) => {
      const { limit, offset } = paging(query);
      let base = db.selectFrom('matters_time_entry as t').innerJoin('matters_matter as m', 'm.id', 't.matter_id');
      if (query.matterId) base = base.where('t.matter_id', '=', query.matterId);
      if (query.timekeeperId) base = base.where('t.timekeeper_id', '=', query.timekeeperId);
      if (query.status) base = base.where('t.status', '=', query.status);
      if (query.from) base = base.where('t.work_date', '>=', query.from);
      if (query.to) base = base.where('t.work_date', '<=', query.to);
      const total = await countOf(base);
      const rows = await base.selectAll('t').select(['m.currency as m_currency', 'm.file_number as m_file_number'])
        .orderBy('t.work_date', 'desc').orderBy('t.id', 'desc').limit(limit).offset(offset).execute() as Row[];
      return { items: rows.map((r) => timeView(rowToTime(r), { currency: String(r.m_currency), fileNumber: String(r.m_file_number) }, int(r.version))), total, limit, offset };
    });

  api.route({ method: 'post', path: '/time-entries', summary: 'Record time (hours as "1.5" or minutes); priced from matter, client or standard rates unless a rate is given', tag: TAG, audience: WIP_WRITE,
    body: TimeEntryCreate, response: Type.Intersect([TimeEntrySchema, Type.Object(Warnings)]), status: 201 },
  async (c, { body }) => {
    const errors: FieldErrors = {};
    const { minutes, field } = minutesFrom(errors, body, true);
    const matter = await cmds.findMatter(body.matterId);
    if (!matter) errors.matterId = 'does not exist';
    let override: RateOverride | null = null;
    if (body.rate !== undefined && matter) {
      const rateMinor = take(errors, 'rate', limited(parseMoneyText(body.rate, matter.currency), LIMITS.rateMinor, matter.currency));
      if (!body.rateReason?.trim()) errors.rateReason = 'is required when giving a rate';
      else if (rateMinor !== undefined) override = { rateMinor, reason: body.rateReason };
    } else if (body.rateReason !== undefined && body.rate === undefined) errors.rate = 'is required with rateReason';
    failIf(errors);
    (await ownTime(c.get('user'), cmds.listTimekeepers)).refuseTime(body.timekeeperId);
    const r = await named({ ...TIME_FIELD_NAMES, rawMinutes: field }, () => cmds.recordTimeEntryChecked(ctxOf(c), {
      ...(body.id !== undefined ? { id: body.id } : {}), matterId: body.matterId, timekeeperId: body.timekeeperId, workDate: body.workDate, rawMinutes: minutes!, narrative: body.narrative,
      taskCode: body.taskCode ?? null, activityCode: body.activityCode ?? null,
      ...(body.behaviour ? { behaviour: body.behaviour as EntryBehaviour } : {}), override,
    }));
    const v = await versioned('matters_time_entry', r.item.id, 'Time entry');
    return { ...timeView(v.row, { currency: matter!.currency, fileNumber: matter!.fileNumber }, v.version), warnings: r.warnings };
  });

  api.route({ method: 'get', path: '/time-entries/:id', summary: 'One time entry', tag: TAG, audience: READ, response: TimeEntrySchema },
    async (c) => {
      const v = await versioned('matters_time_entry', param(c, 'id'), 'Time entry');
      return timeView(v.row, await matterRef(v.row.matterId), v.version);
    });

  api.route({ method: 'patch', path: '/time-entries/:id', summary: 'Change an unbilled time entry (409 once it is on a bill)', tag: TAG, audience: WIP_WRITE,
    body: TimeEntryChange, response: TimeEntrySchema },
  async (c, { body }) => {
    const before = await cmds.findTimeEntry(param(c, 'id'));
    if (!before) throw notFound('Time entry');
    const own = await ownTime(c.get('user'), cmds.listTimekeepers);
    own.refuseEntry(before);
    if (body.timekeeperId !== undefined) own.refuseTime(body.timekeeperId);
    const m = await matterRef(before.matterId);
    const errors: FieldErrors = {};
    const { minutes, field } = minutesFrom(errors, body, false);
    const patch: UpdateTimeEntryInput = {};
    if (body.timekeeperId !== undefined) patch.timekeeperId = body.timekeeperId;
    if (body.workDate !== undefined) patch.workDate = body.workDate;
    if (minutes !== undefined) patch.rawMinutes = minutes;
    if (body.narrative !== undefined) patch.narrative = body.narrative;
    if (body.taskCode !== undefined) patch.taskCode = body.taskCode;
    if (body.activityCode !== undefined) patch.activityCode = body.activityCode;
    if (body.behaviour !== undefined) patch.behaviour = body.behaviour as EntryBehaviour;
    if (body.rate === null) {
      if (body.rateReason !== undefined) errors.rateReason = 'must be left out when removing the rate';
      patch.override = null;
    } else if (body.rate !== undefined) {
      const rateMinor = take(errors, 'rate', limited(parseMoneyText(body.rate, m.currency), LIMITS.rateMinor, m.currency));
      const reason = body.rateReason ?? (before.rateSource === 'override' ? before.overrideReason ?? '' : '');
      if (!reason.trim()) errors.rateReason = 'is required when giving a rate';
      else if (rateMinor !== undefined) patch.override = { rateMinor, reason };
    } else if (body.rateReason !== undefined) {
      if (before.rateSource !== 'override') errors.rate = 'is required with rateReason (the entry has no rate of its own)';
      else patch.override = { rateMinor: before.rateMinor, reason: body.rateReason };
    }
    failIf(errors);
    await named({ ...TIME_FIELD_NAMES, rawMinutes: field }, () => cmds.updateTimeEntry(ctxOf(c), before.id, patch, body.expectedVersion));
    const v = await versioned('matters_time_entry', before.id, 'Time entry');
    return timeView(v.row, m, v.version);
  });

  api.route({ method: 'delete', path: '/time-entries/:id', summary: 'Delete an unbilled time entry (409 once it is on a bill; with ?expectedVersion=N, 409 if it changed since)', tag: TAG, audience: WIP_WRITE, query: DeleteQuery, response: Type.Null(), status: 204 },
    async (c, { query }) => {
      const entry = await cmds.findTimeEntry(param(c, 'id'));
      if (entry) (await ownTime(c.get('user'), cmds.listTimekeepers)).refuseEntry(entry);
      await cmds.deleteTimeEntry(ctxOf(c), param(c, 'id'), query.expectedVersion);
      return null;
    });

  // ---- disbursements ------------------------------------------------------------------

  api.route({ method: 'get', path: '/disbursements', summary: 'List disbursements (matter, status, date range), newest first', tag: TAG, audience: READ, query: DisbursementQuery, response: page(DisbursementSchema) },
    async (_c, { query }) => {
      const { limit, offset } = paging(query);
      let base = db.selectFrom('matters_disbursement as d').innerJoin('matters_matter as m', 'm.id', 'd.matter_id');
      if (query.matterId) base = base.where('d.matter_id', '=', query.matterId);
      if (query.status) base = base.where('d.status', '=', query.status);
      if (query.from) base = base.where('d.incurred_on', '>=', query.from);
      if (query.to) base = base.where('d.incurred_on', '<=', query.to);
      const total = await countOf(base);
      const rows = await base.selectAll('d').select(['m.currency as m_currency', 'm.file_number as m_file_number'])
        .orderBy('d.incurred_on', 'desc').orderBy('d.id', 'desc').limit(limit).offset(offset).execute() as Row[];
      return { items: rows.map((r) => disbursementView(rowToDisbursement(r), { currency: String(r.m_currency), fileNumber: String(r.m_file_number) }, int(r.version))), total, limit, offset };
    });

  api.route({ method: 'post', path: '/disbursements', summary: 'Record a disbursement (quantity x unit cost)', tag: TAG, audience: WIP_WRITE, body: DisbursementCreate,
    response: Type.Intersect([DisbursementSchema, Type.Object(Warnings)]), status: 201 },
    async (c, { body }) => {
      const errors: FieldErrors = {};
      const matter = await cmds.findMatter(body.matterId);
      if (!matter) errors.matterId = 'does not exist';
      const quantityMilli = body.quantity !== undefined ? take(errors, 'quantity', parseQuantityText(body.quantity)) : undefined;
      const unitCostMinor = matter ? take(errors, 'unitCost', limited(parseMoneyText(body.unitCost, matter.currency), LIMITS.unitCostMinor, matter.currency)) : undefined;
      failIf(errors);
      const r = await named(DISBURSEMENT_FIELD_NAMES, () => cmds.recordDisbursementChecked(ctxOf(c), {
        ...(body.id !== undefined ? { id: body.id } : {}), matterId: body.matterId, incurredOn: body.incurredOn, code: body.code, expenseCode: body.expenseCode ?? null,
        ...(quantityMilli !== undefined ? { quantityMilli } : {}), unitCostMinor: unitCostMinor!, taxCode: body.taxCode ?? null,
        description: body.description, payee: body.payee ?? null, ...(body.behaviour ? { behaviour: body.behaviour as EntryBehaviour } : {}),
      }));
      const v = await versioned('matters_disbursement', r.item.id, 'Disbursement');
      return { ...disbursementView(v.row, { currency: matter!.currency, fileNumber: matter!.fileNumber }, v.version), warnings: r.warnings };
    });

  api.route({ method: 'get', path: '/disbursements/:id', summary: 'One disbursement', tag: TAG, audience: READ, response: DisbursementSchema },
    async (c) => {
      const v = await versioned('matters_disbursement', param(c, 'id'), 'Disbursement');
      return disbursementView(v.row, await matterRef(v.row.matterId), v.version);
    });

  api.route({ method: 'patch', path: '/disbursements/:id', summary: 'Change an unbilled disbursement (409 once it is on a bill)', tag: TAG, audience: WIP_WRITE, body: DisbursementChange, response: DisbursementSchema },
    async (c, { body }) => {
      const before = await cmds.findDisbursement(param(c, 'id'));
      if (!before) throw notFound('Disbursement');
      const m = await matterRef(before.matterId);
      const errors: FieldErrors = {};
      const patch: UpdateDisbursementInput = {};
      if (body.incurredOn !== undefined) patch.incurredOn = body.incurredOn;
      if (body.code !== undefined) patch.code = body.code;
      if (body.expenseCode !== undefined) patch.expenseCode = body.expenseCode;
      if (body.quantity !== undefined) patch.quantityMilli = take(errors, 'quantity', parseQuantityText(body.quantity));
      if (body.unitCost !== undefined) patch.unitCostMinor = take(errors, 'unitCost', limited(parseMoneyText(body.unitCost, m.currency), LIMITS.unitCostMinor, m.currency));
      if (body.taxCode !== undefined) patch.taxCode = body.taxCode;
      if (body.description !== undefined) patch.description = body.description;
      if (body.payee !== undefined) patch.payee = body.payee;
      if (body.behaviour !== undefined) patch.behaviour = body.behaviour as EntryBehaviour;
      failIf(errors);
      await named(DISBURSEMENT_FIELD_NAMES, () => cmds.updateDisbursement(ctxOf(c), before.id, patch, body.expectedVersion));
      const v = await versioned('matters_disbursement', before.id, 'Disbursement');
      return disbursementView(v.row, m, v.version);
    });

  api.route({ method: 'delete', path: '/disbursements/:id', summary: 'Delete an unbilled disbursement (409 once it is on a bill; with ?expectedVersion=N, 409 if it changed since)', tag: TAG, audience: WIP_WRITE, query: DeleteQuery, response: Type.Null(), status: 204 },
    async (c, { query }) => {
      await cmds.deleteDisbursement(ctxOf(c), param(c, 'id'), query.expectedVersion);
      return null;
    });

  // ---- client changes and contacts ------------------------------------------------------

  api.route({ method: 'patch', path: '/clients/:id', summary: 'Change a client (name, email, address, tax id)', tag: TAG, audience: WRITE, body: ClientChange, response: ClientSchema },
    async (c, { body }) => clientView(await cmds.updateClient(ctxOf(c), (await clientOr404(param(c, 'id'))).id, body)));

  const contactView = (k: Contact) => ({
    id: k.id, clientId: k.clientId, name: k.name, email: k.email, phone: k.phone, address: k.address, role: k.role, createdAt: k.createdAt, updatedAt: k.updatedAt,
  });
  async function contactOf(c: Context<AppEnv>): Promise<Contact> {
    const client = await clientOr404(param(c, 'id'));
    const k = await cmds.findContact(param(c, 'contactId'));
    if (!k || k.clientId !== client.id) throw notFound('Contact');
    return k;
  }

  api.route({ method: 'get', path: '/clients/:id/contacts', summary: 'The client\'s contacts (billable parties and participants)', tag: TAG, audience: READ,
    response: Type.Object({ items: Type.Array(ContactSchema) }) },
  async (c) => ({ items: (await cmds.listContacts((await clientOr404(param(c, 'id'))).id)).map(contactView) }));

  api.route({ method: 'post', path: '/clients/:id/contacts', summary: 'Add a contact to a client', tag: TAG, audience: WRITE, body: ContactCreate, response: ContactSchema, status: 201 },
    async (c, { body }) => contactView(await cmds.addContact(ctxOf(c), { ...body, clientId: (await clientOr404(param(c, 'id'))).id })));

  api.route({ method: 'get', path: '/clients/:id/contacts/:contactId', summary: 'One contact', tag: TAG, audience: READ, response: ContactSchema },
    async (c) => contactView(await contactOf(c)));

  api.route({ method: 'patch', path: '/clients/:id/contacts/:contactId', summary: 'Change a contact', tag: TAG, audience: WRITE, body: ContactChange, response: ContactSchema },
    async (c, { body }) => contactView(await cmds.updateContact(ctxOf(c), (await contactOf(c)).id, body)));

  api.route({ method: 'delete', path: '/clients/:id/contacts/:contactId', summary: 'Remove a contact (409 while it is a matter\'s billable party)', tag: TAG, audience: WRITE, response: Type.Null(), status: 204 },
    async (c) => {
      await cmds.removeContact(ctxOf(c), (await contactOf(c)).id);
      return null;
    });

  // ---- timekeeper changes ---------------------------------------------------------------

  api.route({ method: 'patch', path: '/timekeepers/:id', summary: 'Change a timekeeper (name, classification, LEDES code, active, staff account)', tag: TAG, audience: WRITE, body: TimekeeperChange, response: TimekeeperDetailSchema },
    async (c, { body }) => {
      const t = await timekeeperOr404(param(c, 'id'));
      return timekeeperDetail(await cmds.updateTimekeeper(ctxOf(c), t.id, {
        ...(body.name !== undefined ? { name: body.name } : {}),
        ...(body.classification !== undefined ? { classification: body.classification as TimekeeperClassification } : {}),
        ...(body.ledesClassification !== undefined ? { ledesClassification: body.ledesClassification as LedesClassification } : {}),
        ...(body.active !== undefined ? { active: body.active } : {}),
        ...(body.staffEmail !== undefined ? { staffEmail: body.staffEmail } : {}),
      }));
    });

  // ---- matter changes, closing, participants ----------------------------------------------

  api.route({ method: 'patch', path: '/matters/:id', summary: 'Change a matter (name, timekeepers, cycle, WIP cap, time unit...)', tag: TAG, audience: WRITE, body: MatterChange, response: MatterDetailSchema },
    async (c, { body }) => {
      const m = await matterOr404(param(c, 'id'));
      const errors: FieldErrors = {};
      const { wipCap, expectedVersion, ...rest } = body;
      const patch: UpdateMatterInput = {
        ...rest, billingCycle: rest.billingCycle as BillingCycle | undefined, roundingMode: rest.roundingMode as MinuteRounding | undefined,
        defaultBehaviour: rest.defaultBehaviour as EntryBehaviour | undefined,
      };
      for (const k of Object.keys(patch) as (keyof UpdateMatterInput)[]) if (patch[k] === undefined) delete patch[k];
      if (wipCap === null) patch.wipCapMinor = null;
      else if (wipCap !== undefined) patch.wipCapMinor = take(errors, 'wipCap', limited(parseMoneyText(wipCap, m.currency), LIMITS.wipCapMinor, m.currency, 1));
      failIf(errors);
      return matterDetail(await named(MATTER_FIELD_NAMES, () => cmds.updateMatter(ctxOf(c), m.id, patch, expectedVersion)));
    });

  api.route({ method: 'post', path: '/matters/:id/close', summary: 'Close a matter (409 when closed already); body {} or {"closedOn": "YYYY-MM-DD"}', tag: TAG, audience: WRITE, body: CloseBody, response: MatterDetailSchema },
    async (c, { body }) => matterDetail(await cmds.closeMatter(ctxOf(c), (await matterOr404(param(c, 'id'))).id, body.closedOn ?? today())));

  api.route({ method: 'post', path: '/matters/:id/reopen', summary: 'Reopen a closed matter (409 when open)', tag: TAG, audience: WRITE, response: MatterDetailSchema },
    async (c) => matterDetail(await cmds.reopenMatter(ctxOf(c), (await matterOr404(param(c, 'id'))).id)));

  const participantsView = (d: MatterChanged) => ({ billableParty: d.billableParty, participants: d.participants });

  api.route({ method: 'get', path: '/matters/:id/participants', summary: 'Who the matter\'s bills go to, and its participants', tag: TAG, audience: READ, response: ParticipantsSchema },
    async (c) => participantsView(await cmds.getMatterDetails((await matterOr404(param(c, 'id'))).id)));

  api.route({ method: 'put', path: '/matters/:id/participants', summary: 'Set the billable party (a contact of the client, or null for the client) and the participants', tag: TAG, audience: WRITE,
    body: ParticipantsSet, response: ParticipantsSchema },
  async (c, { body }) => participantsView(await cmds.setMatterParticipants(ctxOf(c), (await matterOr404(param(c, 'id'))).id, body)));

  // ---- billing options and firm settings ----------------------------------------------------

  /** The domain names option errors by section (`quote.amountMinor`); in the body they sit under `set`. */
  const setPrefix = (k: string): string => ((SECTION_NAMES as readonly string[]).includes(k.split('.')[0]!) ? 'set.' : '');

  async function optionsOutFor(m: Matter, v: { effective: MatterBillingOptions; overridden: string[]; inherited: string[]; warnings?: string[] }) {
    return {
      matterId: m.id, currency: m.currency, effective: optionsOut(v.effective, m.currency),
      overridden: v.overridden as (typeof SECTION_NAMES)[number][], inherited: v.inherited as (typeof SECTION_NAMES)[number][],
      ...(v.warnings ? { warnings: v.warnings } : {}),
      seen: optionsSeen(v.effective, v.overridden, SECTION_NAMES),
    };
  }

  api.route({ method: 'get', path: '/matters/:id/billing-options', summary: 'The matter\'s billing options in force, and which sections it overrides or inherits from the firm', tag: TAG, audience: READ,
    response: BillingOptionsSchema },
  async (c) => {
    const m = await matterOr404(param(c, 'id'));
    return optionsOutFor(m, await cmds.getBillingOptions(m.id));
  });

  api.route({ method: 'patch', path: '/matters/:id/billing-options', summary: 'Override option sections (`set`, merged section by section) or inherit them from the firm again (`inherit`)', tag: TAG, audience: WRITE,
    body: BillingOptionsChange, response: BillingOptionsSchema },
  async (c, { body }) => {
    const m = await matterOr404(param(c, 'id'));
    const errors: FieldErrors = {};
    const set = body.set ? optionsPatchIn(body.set as Json, m.currency, errors, 'set.') : undefined;
    failIf(errors);
    const r = await wireNamed(() => cmds.setBillingOptions(ctxOf(c), m.id, {
      ...(set ? { set: set as BillingOptionsPatch } : {}), ...(body.inherit ? { inherit: body.inherit as BillingOptionSection[] } : {}),
      // Review 57 F9: as the pages' forms, a change against options someone changed since they were read is refused.
      ...(body.seen !== undefined ? { expected: { sections: SECTION_NAMES, seen: body.seen } } : {}),
    }), setPrefix);
    return optionsOutFor(m, r);
  });

  api.route({ method: 'post', path: '/matters/:id/billing-options/auto-fill', summary: 'Fill the fixed-fee schedule: instalments of the first amount up to the quote, then the remainder', tag: TAG, audience: WRITE,
    body: AutoFillBody, response: BillingOptionsSchema },
  async (c, { body }) => {
    const m = await matterOr404(param(c, 'id'));
    const errors: FieldErrors = {};
    const firstAmountMinor = take(errors, 'firstAmount', limited(parseMoneyText(body.firstAmount, m.currency), MAX_AMOUNT_MINOR, m.currency, 1));
    failIf(errors);
    const r = await wireNamed(() => cmds.autoFillSchedule(ctxOf(c), m.id, { firstAmountMinor: firstAmountMinor!, ...(body.startDate ? { startDate: body.startDate } : {}), ...(body.description ? { description: body.description } : {}) }), setPrefix);
    return optionsOutFor(m, r);
  });

  // Read by the staff who may open the settings page (admin, billing), as on the page (review 54, L5).
  api.route({ method: 'get', path: '/settings/billing', summary: 'The firm\'s billing settings and the matter defaults (amounts in the firm currency)', tag: TAG, audience: ['admin', 'billing'], response: SettingsOut },
    async () => settingsOut(await cmds.getFirmSettings()));

  api.route({ method: 'patch', path: '/settings/billing', summary: 'Change the firm\'s billing settings; matters inheriting a changed default follow it', tag: TAG, audience: ['admin'],
    body: SettingsPatch, response: Type.Intersect([SettingsOut, Type.Object({ mattersChanged: Type.Integer() })]) },
  async (c, { body }) => {
    const current = await cmds.getFirmSettings();
    const errors: FieldErrors = {};
    const { seen, ...sent } = body;
    const patch = settingsPatchIn(sent as Json, (sent as { currency?: string }).currency ?? current.currency, errors);
    failIf(errors);
    const r = await wireNamed(() => cmds.updateFirmSettings(ctxOf(c), patch as FirmSettingsPatch, seen !== undefined ? { part: 'all', seen } : undefined));
    return { ...settingsOut(r.settings), mattersChanged: r.mattersChanged };
  });

  // ---- charge types and fixed charges -------------------------------------------------------

  const chargeTypeView = (t: ChargeType, currency: string) => ({
    id: t.id, code: t.code, name: t.name, defaultPrice: moneyText(t.defaultPriceMinor, currency), currency, taxCode: t.taxCode,
    taskCode: t.taskCode, activityCode: t.activityCode, active: t.active, createdAt: t.createdAt, updatedAt: t.updatedAt, seen: chargeTypeSeen(t),
  });
  async function chargeTypeOr404(id: string): Promise<ChargeType> {
    const t = await cmds.findChargeType(id);
    if (!t) throw notFound('Charge type');
    return t;
  }
  const CHARGE_TYPE_FIELDS = { defaultPriceMinor: 'defaultPrice' } as const;

  api.route({ method: 'get', path: '/charge-types', summary: 'Fixed-charge types (products), by code', tag: TAG, audience: READ, query: ChargeTypeQuery,
    response: Type.Object({ items: Type.Array(ChargeTypeSchema) }) },
  async (_c, { query }) => {
    const currency = await firmCurrency();
    return { items: (await cmds.listChargeTypes({ activeOnly: query.active === true })).map((t) => chargeTypeView(t, currency)) };
  });

  api.route({ method: 'post', path: '/charge-types', summary: 'Create a fixed-charge type (e.g. "Lease review" at 750.00)', tag: TAG, audience: WRITE, body: ChargeTypeCreate, response: ChargeTypeSchema, status: 201 },
    async (c, { body }) => {
      const currency = await firmCurrency();
      const errors: FieldErrors = {};
      const defaultPriceMinor = take(errors, 'defaultPrice', limited(parseMoneyText(body.defaultPrice, currency), LIMITS.unitCostMinor, currency));
      failIf(errors);
      const { defaultPrice: _p, ...rest } = body;
      return chargeTypeView(await named(CHARGE_TYPE_FIELDS, () => cmds.createChargeType(ctxOf(c), { ...rest, defaultPriceMinor: defaultPriceMinor! })), currency);
    });

  api.route({ method: 'get', path: '/charge-types/:id', summary: 'One fixed-charge type', tag: TAG, audience: READ, response: ChargeTypeSchema },
    async (c) => chargeTypeView(await chargeTypeOr404(param(c, 'id')), await firmCurrency()));

  api.route({ method: 'patch', path: '/charge-types/:id', summary: 'Change a fixed-charge type (recorded charges keep their prices)', tag: TAG, audience: WRITE, body: ChargeTypeChange, response: ChargeTypeSchema },
    async (c, { body }) => {
      const t = await chargeTypeOr404(param(c, 'id'));
      const currency = await firmCurrency();
      const errors: FieldErrors = {};
      const { defaultPrice, seen, ...rest } = body;
      const patch: UpdateChargeTypeInput = { ...rest };
      if (defaultPrice !== undefined) patch.defaultPriceMinor = take(errors, 'defaultPrice', limited(parseMoneyText(defaultPrice, currency), LIMITS.unitCostMinor, currency));
      failIf(errors);
      return chargeTypeView(await named(CHARGE_TYPE_FIELDS, () => cmds.updateChargeType(ctxOf(c), t.id, patch, seen)), currency);
    });

  function fixedChargeView(f: FixedCharge, m: { currency: string; fileNumber: string }, version: number) {
    return {
      id: f.id, matterId: f.matterId, fileNumber: m.fileNumber, chargeTypeId: f.chargeTypeId, chargedOn: f.chargedOn,
      quantity: quantityText(f.quantityMilli), unitPrice: moneyText(f.unitPriceMinor, m.currency), amount: moneyText(f.amountMinor, m.currency),
      currency: m.currency, taxCode: f.taxCode, taskCode: f.taskCode, activityCode: f.activityCode, description: f.description,
      quoted: f.quoted, behaviour: f.behaviour, status: f.status, version, createdAt: f.createdAt, updatedAt: f.updatedAt,
    };
  }
  const FIXED_FIELDS = { quantityMilli: 'quantity', unitPriceMinor: 'unitPrice' } as const;

  /** Quantity and unit price of a fixed-charge body, converted in the matter's currency. */
  function fixedAmounts(errors: FieldErrors, body: { quantity?: string; unitPrice?: string }, currency: string) {
    return {
      ...(body.quantity !== undefined ? { quantityMilli: take(errors, 'quantity', parseQuantityText(body.quantity)) } : {}),
      ...(body.unitPrice !== undefined ? { unitPriceMinor: take(errors, 'unitPrice', limited(parseMoneyText(body.unitPrice, currency), LIMITS.unitCostMinor, currency)) } : {}),
    };
  }

  api.route({ method: 'get', path: '/fixed-charges', summary: 'List fixed charges (matter, status, date range), newest first', tag: TAG, audience: READ, query: DisbursementQuery, response: page(FixedChargeSchema) },
    async (_c, { query }) => {
      const { limit, offset } = paging(query);
      let base = db.selectFrom('matters_fixed_charge as f').innerJoin('matters_matter as m', 'm.id', 'f.matter_id');
      if (query.matterId) base = base.where('f.matter_id', '=', query.matterId);
      if (query.status) base = base.where('f.status', '=', query.status);
      if (query.from) base = base.where('f.charged_on', '>=', query.from);
      if (query.to) base = base.where('f.charged_on', '<=', query.to);
      const total = await countOf(base);
      const rows = await base.select(['f.id as id', 'm.currency as m_currency', 'm.file_number as m_file_number'])
        .orderBy('f.charged_on', 'desc').orderBy('f.id', 'desc').limit(limit).offset(offset).execute() as Row[];
      const refs = new Map(rows.map((r) => [String(r.id), { currency: String(r.m_currency), fileNumber: String(r.m_file_number) }]));
      const ids = idsOf(rows);
      const found = await store.findWithVersions(db, 'matters_fixed_charge', ids);
      return { items: inOrder(ids, found).map((v) => fixedChargeView(v.row, refs.get(v.row.id)!, v.version)), total, limit, offset };
    });

  api.route({ method: 'post', path: '/fixed-charges', summary: 'Record a fixed charge of a charge type (price defaults to the type\'s)', tag: TAG, audience: WIP_WRITE,
    body: FixedChargeCreate, response: Type.Intersect([FixedChargeSchema, Type.Object(Warnings)]), status: 201 },
  async (c, { body }) => {
    const errors: FieldErrors = {};
    const matter = await cmds.findMatter(body.matterId);
    if (!matter) errors.matterId = 'does not exist';
    const amounts = matter ? fixedAmounts(errors, body, matter.currency) : {};
    failIf(errors);
    const { quantity: _q, unitPrice: _u, ...rest } = body;
    const r = await named(FIXED_FIELDS, () => cmds.recordFixedChargeChecked(ctxOf(c), { ...rest, ...amounts, behaviour: rest.behaviour as EntryBehaviour | undefined }));
    const v = await versioned('matters_fixed_charge', r.item.id, 'Fixed charge');
    return { ...fixedChargeView(v.row, { currency: matter!.currency, fileNumber: matter!.fileNumber }, v.version), warnings: r.warnings };
  });

  api.route({ method: 'get', path: '/fixed-charges/:id', summary: 'One fixed charge', tag: TAG, audience: READ, response: FixedChargeSchema },
    async (c) => {
      const v = await versioned('matters_fixed_charge', param(c, 'id'), 'Fixed charge');
      return fixedChargeView(v.row, await matterRef(v.row.matterId), v.version);
    });

  api.route({ method: 'patch', path: '/fixed-charges/:id', summary: 'Change an unbilled fixed charge (409 once it is on a bill)', tag: TAG, audience: WIP_WRITE, body: FixedChargeChange, response: FixedChargeSchema },
    async (c, { body }) => {
      const before = await cmds.findFixedCharge(param(c, 'id'));
      if (!before) throw notFound('Fixed charge');
      const m = await matterRef(before.matterId);
      const errors: FieldErrors = {};
      const amounts = fixedAmounts(errors, body, m.currency);
      failIf(errors);
      const { quantity: _q, unitPrice: _u, expectedVersion, ...rest } = body;
      const patch: UpdateFixedChargeInput = { ...rest, ...amounts, behaviour: rest.behaviour as EntryBehaviour | undefined };
      for (const k of Object.keys(patch) as (keyof UpdateFixedChargeInput)[]) if (patch[k] === undefined) delete patch[k];
      await named(FIXED_FIELDS, () => cmds.updateFixedCharge(ctxOf(c), before.id, patch, expectedVersion));
      const v = await versioned('matters_fixed_charge', before.id, 'Fixed charge');
      return fixedChargeView(v.row, m, v.version);
    });

  api.route({ method: 'delete', path: '/fixed-charges/:id', summary: 'Delete an unbilled fixed charge (409 once it is on a bill; with ?expectedVersion=N, 409 if it changed since)', tag: TAG, audience: WIP_WRITE, query: DeleteQuery, response: Type.Null(), status: 204 },
    async (c, { query }) => {
      await cmds.deleteFixedCharge(ctxOf(c), param(c, 'id'), query.expectedVersion);
      return null;
    });

  // ---- CSV imports --------------------------------------------------------------------
  // Registered by hand: the body is the CSV itself (text/csv) or JSON {csv}, and an
  // apply that rejects rows answers 422 with the rejected rows beside the error.

  const importSpec: ApiSpec = {
    method: 'post', path: '/imports/:kind', tag: TAG, audience: WRITE, query: ImportQuery, body: ImportBody, response: ImportResultSchema,
    // As the handler answers (review 57 F3): 200 for a dry run, 201 once applied (422 with the result beside the error when a row is refused).
    otherStatuses: [{ status: 201, description: 'Applied: every row imported' }], otherBodyTypes: ['text/csv', 'text/plain'], pathValues: { kind: IMPORT_KINDS },
    summary: `Import a CSV of ${IMPORT_KINDS.join(', ')} (one kind per file; body text/csv or JSON {csv}). A dry run answers 200, an applied import 201; a refused row 422, the error beside the result (\`rows\`, \`rejected\`). All or nothing: `
      + `any rejected row imports nothing. Limits: ${IMPORT_LIMITS.maxRows} rows, ${IMPORT_LIMITS.maxBytes / (1024 * 1024)} MB. `
      + `Columns: ${IMPORT_KINDS.map((k) => `${k}: ${IMPORT_FORMATS[k].columns.map((col) => col.name + (col.required ? '' : '?')).join(',')}`).join('; ')}.`,
  };
  deps.apiRegistry.specs.push(importSpec);
  const reads = createImportReads(db, firmCurrency);
  const importLog = createImportLog(deps, cmds);

  api.app.post('/imports/:kind', allow(WRITE), async (c) => {
    const kind = param(c, 'kind');
    if (!isImportKind(kind)) throw new HttpError(404, 'not_found', `No import of "${kind}": use one of ${IMPORT_KINDS.join(', ')}`);
    const { dryRun, id: importId, importAgain } = parseForm(ImportQuery, c.req.query());
    const type = (c.req.header('content-type') ?? '').toLowerCase();
    let text: string;
    try {
      if (type.includes('application/json')) {
        let body: unknown;
        try { body = await c.req.json(); } catch { throw new HttpError(400, 'bad_json', 'The body is not valid JSON'); }
        text = parseWith(ImportBody, body).csv;
      } else if (type.includes('text/csv') || type.includes('text/plain')) {
        text = decodeUtf8(await c.req.arrayBuffer());
      } else {
        throw new HttpError(415, 'unsupported_media_type', 'Send the CSV as text/csv, or JSON {"csv": "..."}');
      }
      const outcome = await runImport(cmds, reads, ctxOf(c), kind, text, { dryRun: dryRun ?? false, importAgain: importAgain ?? false, log: importLog, ...(importId ? { importId } : {}) });
      const result = importResult(outcome);
      if (!outcome.dryRun && outcome.rejected.length > 0) {
        const fields: Record<string, string> = {};
        for (const r of outcome.rejected) fields[`rows.${r.row}${r.field ? `.${r.field}` : ''}`] ??= r.message;
        const first = outcome.rejected[0]!;
        const err = new HttpError(422, 'import_rejected',
          `Nothing was imported: ${new Set(outcome.rejected.map((r) => r.row)).size} row(s) rejected, the first is row ${first.row}${first.field ? ` (${first.field})` : ''}: ${first.message}`, fields);
        return c.json({ ...errorBody(err), ...result }, 422);
      }
      return c.json(result, outcome.dryRun ? 200 : 201);
    } catch (err) {
      if (err instanceof ImportFileError) {
        const e = new HttpError(err.status, err.status === 413 ? 'too_large' : 'import_rejected', err.message, { file: err.message });
        return c.json({ ...errorBody(e), kind, dryRun: dryRun ?? false, rows: 0, accepted: 0, imported: 0, rejected: [{ row: err.row ?? 1, field: null, message: err.message }], created: [], warnings: [] }, err.status);
      }
      throw err;
    }
  });

  return api.app;
}

function importResult(o: ImportOutcome) {
  return {
    kind: o.kind, dryRun: o.dryRun, rows: o.rows, accepted: o.accepted, imported: o.imported, rejected: o.rejected, created: o.created, warnings: o.warnings,
    ...(o.alreadyApplied ? { alreadyApplied: o.alreadyApplied } : {}),
    ...(o.earlierImport ? { earlierImport: o.earlierImport } : {}),
  };
}
