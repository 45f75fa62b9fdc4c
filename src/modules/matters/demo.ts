/**
 * The demo firm's clients, matters and work in progress, made deterministically from a
 * seeded PRNG: the same seed (and date) gives the same firm, amount for amount. It goes
 * through the commands (validation, rates, rounding, events, audit) in chunked
 * transactions with multi-row inserts, so 10,000 matters x 50 entries is practical.
 */
import { isoDate } from '../../shared/clock.ts';
import type { CommandContext } from '../../shared/events.ts';
import { systemContext } from '../../shared/events.ts';
import type {
  MattersCommands, RecordDisbursementInput, RecordFixedChargeInput, RecordTimeEntryInput, SetBillingOptionsInput,
  SetMatterParticipantsInput,
} from './commands.ts';
import { addDays, addMonths, autoFillSchedule } from './domain.ts';
import type { BillingCycle, BillingOptionsPatch, EntryBehaviour, TimekeeperClassification } from './domain.ts';
import type { QuoteChoice, QuoteIncludes } from './events.ts';

export interface DemoFirmOptions {
  matters: number;
  entriesPerMatter: number;
  seed: number;
  /** The seedable PRNG factory (src/cli/demo.ts `prng`). */
  random: (seed: number) => () => number;
  /** The firm's "today"; defaults to the commands' clock. Work is dated in the 180 days before it. */
  asOf?: string;
  ctx?: CommandContext;
  /**
   * Also record fixed charges (products) on some matters, and quoted products on a few.
   * Off by default: it adds wip_recorded events beyond one per time entry and disbursement.
   */
  fixedCharges?: boolean;
}

export interface DemoFirmResult {
  /** True when the demo timekeepers already existed: nothing was added. */
  alreadySeeded: boolean;
  timekeepers: number;
  clients: number;
  matters: number;
  timeEntries: number;
  disbursements: number;
}

interface DemoTimekeeper {
  initials: string;
  name: string;
  classification: TimekeeperClassification;
  /** Hourly rates (cents) effective 1 January two years ago, last year and this year. */
  rates: readonly [number, number, number];
}

export const DEMO_TIMEKEEPERS: readonly DemoTimekeeper[] = [
  { initials: 'MH', name: 'Margaret Holloway', classification: 'partner', rates: [52_500, 55_000, 57_500] },
  { initials: 'DO', name: 'Daniel Okafor', classification: 'partner', rates: [48_000, 50_000, 52_500] },
  { initials: 'SC', name: 'Sofia Castellano', classification: 'associate', rates: [34_000, 36_000, 38_500] },
  { initials: 'JW', name: 'James Whitfield', classification: 'associate', rates: [28_500, 30_500, 32_500] },
  { initials: 'AN', name: 'Aisha Nwosu', classification: 'associate', rates: [22_500, 24_500, 26_500] },
  { initials: 'TB', name: 'Tom Brennan', classification: 'paralegal', rates: [14_500, 15_500, 16_500] },
];

const PARTNERS = [0, 1];
const ASSOCIATES = [2, 3, 4];
const PARALEGAL = 5;

// ---------------------------------------------------------------------------------------
// Word lists
// ---------------------------------------------------------------------------------------

const CORP_PREFIX = [
  'Northwind', 'Bluewater', 'Granite', 'Meridian', 'Ashford', 'Kestrel', 'Pinnacle', 'Riverside', 'Summit', 'Ironbark',
  'Clearwater', 'Redfern', 'Harrow', 'Lakeside', 'Westbrook', 'Oakridge', 'Silverline', 'Brightwater', 'Cedar', 'Falcon',
  'Halcyon', 'Copperleaf', 'Stonegate', 'Evergreen', 'Tidewater', 'Beacon', 'Larkspur', 'Harbourview', 'Juniper', 'Sterling',
];
const CORP_INDUSTRY = [
  'Logistics', 'Holdings', 'Construction', 'Health', 'Capital', 'Foods', 'Energy', 'Software', 'Manufacturing', 'Properties',
  'Pharmaceuticals', 'Media', 'Retail', 'Engineering', 'Insurance', 'Freight', 'Biotech', 'Hospitality', 'Mining', 'Textiles',
];
const CORP_SUFFIX = ['Inc.', 'LLC', 'Ltd', 'Corp.', 'Group', 'Partners LP'];
const FIRST = [
  'Maria', 'Harold', 'Elena', 'Marcus', 'Grace', 'Victor', 'Naomi', 'Arthur', 'Lucia', 'Desmond', 'Ingrid', 'Rafael',
  'Yuki', 'Samuel', 'Fatima', 'Oliver', 'Beatrice', 'Kwame', 'Claire', 'Tomasz',
];
const LAST = [
  'Delgado', 'Finch', 'Novak', 'Whitmore', 'Adeyemi', 'Lindqvist', 'Moreno', 'Hartmann', 'Okonkwo', 'Fitzgerald', 'Tanaka',
  'Ricci', 'Kowalski', 'Abernathy', 'Mbeki', 'Sorensen', 'Calloway', 'Iyer', 'Duval', 'Brennan',
];
const STREETS = ['Market Street', 'Harbor Road', 'Elm Avenue', 'Commerce Way', 'King Street', 'Riverside Drive', 'Union Square', 'Park Lane'];
const CITIES = ['Springfield, IL 62701', 'Portland, OR 97204', 'Austin, TX 78701', 'Columbus, OH 43215', 'Raleigh, NC 27601', 'Denver, CO 80202'];
const INSURERS = ['Continental Mutual Insurance Co.', 'Atlas Surety Company', 'Prairie State Casualty', 'Great Lakes Indemnity'];
const JUDGES = ['Alvarez', 'Chen', 'Whitaker', "O'Neill", 'Rosenthal', 'Baptiste'];
const WITNESSES = ['the CFO', 'the plant manager', 'the corporate designee', 'the project engineer', 'the former sales director', 'the claims adjuster'];
const ISSUES = ['the economic loss rule', 'consequential damages waivers', 'personal jurisdiction', 'the statute of limitations', 'spoliation sanctions', 'contractual indemnity'];

interface PracticeArea {
  name: string;
  /** Matter name from client and opponent short names. */
  title: (client: string, opponent: string, person: string) => string;
  topic: string;
}

const PRACTICE_AREAS: readonly PracticeArea[] = [
  { name: 'Commercial Litigation', title: (c, o) => `${c} v. ${o}: breach of supply agreement`, topic: 'the supply agreement' },
  { name: 'Employment', title: (c, _o, p) => `${p} v. ${c}: wrongful termination`, topic: 'the termination' },
  { name: 'Insurance Coverage', title: (c, o) => `${c} adv. ${o}: coverage dispute`, topic: 'the coverage position' },
  { name: 'Intellectual Property', title: (c, o) => `${c} v. ${o}: patent infringement`, topic: 'the infringement contentions' },
  { name: 'Construction Disputes', title: (c, o) => `${o} v. ${c}: mechanics lien and delay claims`, topic: 'the delay claims' },
  { name: 'Product Liability', title: (c, _o, p) => `${p} v. ${c}: product liability`, topic: 'the product design' },
  { name: 'Real Estate Litigation', title: (c, o) => `${c} v. ${o}: commercial lease dispute`, topic: 'the lease' },
  { name: 'Regulatory Investigations', title: (c) => `${c}: state attorney general investigation`, topic: 'the civil investigative demand' },
];

/** [task, activity, narrative]; {party} {witness} {judge} {issue} {topic} are filled per matter. */
const NARRATIVES: readonly (readonly [string, string, string])[] = [
  ['L110', 'A104', 'Review client documents concerning {topic} and prepare chronology'],
  ['L110', 'A106', 'Telephone conference with client regarding background facts of {topic}'],
  ['L110', 'A102', 'Research public records and filings regarding {party}'],
  ['L120', 'A101', 'Analyze liability exposure and develop case strategy'],
  ['L120', 'A105', 'Confer with team regarding strategy on {topic}'],
  ['L120', 'A104', 'Evaluate strengths and weaknesses of claims asserted by {party}'],
  ['L130', 'A108', 'Telephone conference with proposed expert regarding {topic}'],
  ['L130', 'A104', 'Review expert CV and conflict disclosures'],
  ['L140', 'A110', 'Organize and index document production received from {party}'],
  ['L140', 'A110', 'Update case file and correspondence index'],
  ['L150', 'A103', 'Prepare litigation budget for client review'],
  ['L160', 'A107', 'Negotiate settlement terms with opposing counsel'],
  ['L160', 'A103', 'Draft mediation statement'],
  ['L160', 'A109', 'Attend mediation session'],
  ['L190', 'A106', 'Email to client with status report and next steps'],
  ['L210', 'A103', 'Draft complaint and civil cover sheet'],
  ['L210', 'A103', 'Draft answer and affirmative defenses'],
  ['L210', 'A104', 'Review and analyze pleading filed by {party}'],
  ['L220', 'A103', 'Draft motion for temporary restraining order'],
  ['L230', 'A109', 'Attend case management conference before Judge {judge}'],
  ['L230', 'A101', 'Prepare for scheduling conference'],
  ['L240', 'A103', 'Draft motion for summary judgment'],
  ['L240', 'A102', 'Research case law on {issue} for summary judgment briefing'],
  ['L240', 'A103', 'Revise reply brief in support of motion to dismiss'],
  ['L250', 'A103', 'Draft motion to compel'],
  ['L250', 'A104', 'Review opposition to motion for extension of time'],
  ['L310', 'A103', 'Draft first set of interrogatories and requests for production to {party}'],
  ['L310', 'A104', 'Review responses to requests for admission'],
  ['L310', 'A103', 'Prepare responses and objections to interrogatories'],
  ['L320', 'A104', 'Review documents for privilege and responsiveness'],
  ['L320', 'A110', 'Prepare privilege log'],
  ['L320', 'A104', 'Second-level review of production set'],
  ['L330', 'A101', 'Prepare outline for deposition of {witness}'],
  ['L330', 'A109', 'Attend deposition of {witness}'],
  ['L330', 'A104', 'Review and summarize deposition transcript of {witness}'],
  ['L340', 'A104', 'Review expert report served by {party}'],
  ['L340', 'A101', 'Prepare for deposition of opposing expert'],
  ['L350', 'A107', 'Meet and confer with opposing counsel regarding discovery deficiencies'],
  ['L350', 'A103', 'Draft letter regarding deficient discovery responses'],
  ['L390', 'A103', 'Draft subpoena duces tecum to third-party records custodian'],
  ['L410', 'A106', 'Interview {witness} regarding {topic}'],
  ['L410', 'A103', 'Prepare witness examination outline'],
  ['L420', 'A101', 'Prepare expert for trial testimony'],
  ['L430', 'A103', 'Draft motions in limine'],
  ['L430', 'A103', 'Draft proposed jury instructions'],
  ['L440', 'A110', 'Prepare trial exhibit binders'],
  ['L440', 'A103', 'Draft joint pretrial order'],
  ['L450', 'A109', 'Attend hearing before Judge {judge}'],
  ['L460', 'A103', 'Draft post-trial motion for fees and costs'],
  ['L470', 'A103', 'Prepare writ of execution and abstract of judgment'],
  ['L510', 'A103', 'Draft notice of appeal and civil appeal statement'],
  ['L520', 'A103', 'Draft opening appellate brief'],
  ['L520', 'A102', 'Research standard of review on {issue}'],
  ['L530', 'A101', 'Prepare for oral argument'],
];
/** Paralegal work: file management, document review, exhibits, subpoenas. */
const PARALEGAL_NARRATIVES = NARRATIVES.filter(([task, act]) => act === 'A110' || task === 'L390' || (task === 'L320' && act === 'A104'));
/** Long sittings: depositions, mediations, hearings. */
const ATTENDANCE = new Set(['A109']);

interface DisbursementKind {
  code: string;
  expenseCode: string;
  description: string;
  payee: string | null;
  /** [min, max] quantity in whole units, and [min, max] unit cost in cents. */
  quantity: readonly [number, number];
  unitCost: readonly [number, number];
  /** Quantity kept in thousandths with a fraction (mileage). */
  fractional?: boolean;
}

const DISBURSEMENTS: readonly DisbursementKind[] = [
  { code: 'COURT', expenseCode: 'E112', description: 'Court filing fee', payee: 'Clerk of the Superior Court', quantity: [1, 1], unitCost: [5_000, 45_000] },
  { code: 'COURIER', expenseCode: 'E107', description: 'Courier delivery to opposing counsel', payee: 'Metro Express Couriers', quantity: [1, 1], unitCost: [1_800, 7_500] },
  { code: 'COPY', expenseCode: 'E101', description: 'Photocopies', payee: null, quantity: [20, 1_200], unitCost: [10, 25] },
  { code: 'POSTAGE', expenseCode: 'E108', description: 'Certified mail postage', payee: 'USPS', quantity: [1, 6], unitCost: [485, 985] },
  { code: 'TRANSCRIPT', expenseCode: 'E115', description: 'Deposition transcript', payee: 'Accurate Reporting LLC', quantity: [1, 1], unitCost: [45_000, 180_000] },
  { code: 'RESEARCH', expenseCode: 'E106', description: 'Online legal research', payee: 'Westlaw', quantity: [1, 1], unitCost: [2_500, 30_000] },
  { code: 'MILEAGE', expenseCode: 'E109', description: 'Mileage to courthouse', payee: null, quantity: [8, 90], unitCost: [67, 67], fractional: true },
  { code: 'SERVICE', expenseCode: 'E113', description: 'Service of subpoena', payee: 'Lone Star Process Servers', quantity: [1, 1], unitCost: [7_500, 19_500] },
];
const DISBURSEMENT_WEIGHTS = [14, 18, 22, 10, 8, 12, 10, 6];

/** The firm's products (seed 003): priced services billed as fixed charges. */
export const DEMO_CHARGE_TYPES = [
  { code: 'LEASE', name: 'Commercial lease review', defaultPriceMinor: 75_000, taxCode: null, taskCode: 'L120', activityCode: 'A104' },
  { code: 'DEMAND', name: 'Demand letter', defaultPriceMinor: 35_000, taxCode: null, taskCode: 'L160', activityCode: 'A103' },
  { code: 'NDA', name: 'Non-disclosure agreement review', defaultPriceMinor: 40_000, taxCode: null, taskCode: 'L120', activityCode: 'A104' },
  { code: 'LITHOLD', name: 'Litigation hold notice and memo', defaultPriceMinor: 60_000, taxCode: null, taskCode: 'L140', activityCode: 'A103' },
  { code: 'SUBPOENA', name: 'Subpoena preparation and service coordination', defaultPriceMinor: 45_000, taxCode: null, taskCode: 'L390', activityCode: 'A103' },
  { code: 'BINDERS', name: 'Trial binder preparation (per set)', defaultPriceMinor: 12_500, taxCode: 'SALES', taskCode: 'L440', activityCode: 'A110' },
] as const;

const CONTACT_ROLES = ['General Counsel', 'Deputy General Counsel', 'Chief Financial Officer', 'Claims Manager', 'Director of Legal Operations'];

// ---------------------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------------------

class Dice {
  constructor(private readonly next: () => number) {}
  float(): number { return this.next(); }
  int(min: number, max: number): number { return min + Math.floor(this.next() * (max - min + 1)); }
  chance(p: number): boolean { return this.next() < p; }
  pick<T>(items: readonly T[]): T {
    const v = items[Math.floor(this.next() * items.length)];
    if (v === undefined) throw new Error('pick from an empty list');
    return v;
  }
  weighted(weights: readonly number[]): number {
    const total = weights.reduce((a, b) => a + b, 0);
    let r = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i]!;
      if (r < 0) return i;
    }
    return weights.length - 1;
  }
}

/** First day of the next period of `months` months (1 month, 3 quarter, 6 half, 12 year) after `date`. */
function nextPeriodStart(date: string, months: number): string {
  const [y, m] = date.split('-').map(Number) as [number, number];
  const startMonth = Math.floor((m - 1) / months) * months + 1;
  return addMonths(`${y}-${String(startMonth).padStart(2, '0')}-01`, months);
}

function nextBillingDate(asOf: string, cycle: BillingCycle): string | null {
  switch (cycle) {
    case 'none': return null;
    case 'WEEK': return addDays(asOf, 7);
    case 'MONTH': return nextPeriodStart(asOf, 1);
    case 'QUARTER': return nextPeriodStart(asOf, 3);
    case 'HALF': return nextPeriodStart(asOf, 6);
    case 'YEAR': return nextPeriodStart(asOf, 12);
  }
}

const isWeekend = (date: string): boolean => {
  const d = new Date(`${date}T00:00:00Z`).getUTCDay();
  return d === 0 || d === 6;
};

function fill(template: string, vars: Readonly<Record<string, string>>): string {
  return template.replace(/\{(\w+)\}/g, (_, k: string) => vars[k] ?? k);
}

/** Plain numbers: the rate a negotiated discount gives, to the nearest 5.00. */
const discounted = (rate: number, percent: number): number => Math.round((rate * (100 - percent)) / 100 / 500) * 500;

interface PlannedMatter {
  clientIndex: number;
  name: string;
  practiceArea: string;
  openedOn: string;
  responsible: number;
  originating: number;
  team: number[];
  billingCycle: BillingCycle;
  wipCapMinor: number | null;
  matterRate: { tk: number; rateMinor: number } | null;
  vars: Record<string, string>;
}

interface PlannedClient {
  name: string;
  short: string;
  slug: string;
  individual: boolean;
  /** Set once created: the contacts bills go to (accounts payable) and who instructs (in-house counsel). */
  contacts: { accountsPayable: string; instructing: string } | null;
  ledesId: string | null;
  /** The first e-billing client draws its matters' LEDES format; later ones alternate (no draw). */
  ledesFormatDrawn: boolean;
  email: string;
  address: string;
  taxId: string | null;
  rates: { tk: number; rateMinor: number }[];
  created: string | null;
}

/** Add the demo firm through the commands. Deterministic for a given seed and `asOf`. */
export async function seedDemoFirm(cmds: MattersCommands, opts: DemoFirmOptions): Promise<DemoFirmResult> {
  const none: DemoFirmResult = { alreadySeeded: false, timekeepers: 0, clients: 0, matters: 0, timeEntries: 0, disbursements: 0 };
  const first = DEMO_TIMEKEEPERS[0]!;
  const existing = await cmds.findTimekeeperByInitials(first.initials);
  if (existing && existing.name === first.name) return { ...none, alreadySeeded: true };

  const ctx = opts.ctx ?? systemContext(`seed-demo-${opts.seed}`, 'seed-demo');
  const dice = new Dice(opts.random(opts.seed));
  const asOf = opts.asOf ?? isoDate(cmds.clock.now());
  const year = Number(asOf.slice(0, 4));
  const rateDates = [`${year - 2}-01-01`, `${year - 1}-01-01`, `${year}-01-01`] as const;
  const currentRate = (tk: number): number => DEMO_TIMEKEEPERS[tk]!.rates[2];

  // Timekeepers and their standard rates.
  const tkIds = await cmds.batch(async (tx) => {
    const ids: string[] = [];
    for (const t of DEMO_TIMEKEEPERS) {
      const created = await tx.createTimekeeper(ctx, { initials: t.initials, name: t.name, classification: t.classification });
      for (let i = 0; i < 3; i++) {
        await tx.setTimekeeperRate(ctx, { timekeeperId: created.id, effectiveFrom: rateDates[i]!, rateMinor: t.rates[i]! });
      }
      ids.push(created.id);
    }
    return ids;
  });
  const result: DemoFirmResult = { ...none, timekeepers: tkIds.length };

  // Billing setup. A second PRNG stream, derived from the seed, drives everything about
  // billing (options, contacts, products), so the firm drawn from the first stream below is
  // exactly what the seed always gave.
  const bill = new Dice(opts.random((opts.seed ^ 0x5bd1e995) >>> 0));
  const existingTypes = new Map((await cmds.listChargeTypes()).map((t) => [t.code, t.id]));
  const chargeTypeIds = await cmds.batch(async (tx) => {
    await tx.updateFirmSettings(ctx, { generalRetainersEnabled: true });
    const ids: string[] = [];
    for (const t of DEMO_CHARGE_TYPES) ids.push(existingTypes.get(t.code) ?? (await tx.createChargeType(ctx, { ...t })).id);
    return ids;
  });
  const billPerson = (): [string, string] => [bill.pick(FIRST), bill.pick(LAST)];
  const phone = (): string => `+1 ${bill.int(200, 989)} 555 ${String(bill.int(100, 199)).padStart(4, '0')}`;
  /** Seed 002 in practice: each matter overrides a few sections and inherits the rest. */
  const planOptions = (m: { fileNumber: string; nextBillingDate: string | null; billingCycle: BillingCycle }, pm: PlannedMatter,
    client: PlannedClient, billTo: string | null): BillingOptionsPatch => {
    const set: BillingOptionsPatch = {};
    const roll = bill.float();
    if (roll < 0.15) {
      set.arrangement = 'fixed_fee';
      if (bill.chance(0.6)) {
        const quote = bill.int(10, 100) * 50_000;
        set.quote = { amountMinor: quote, includes: 'fees', ifWipBelow: 'bill_quote', ifWipAbove: 'bill_quote' };
        // Even instalments, or an uneven first amount that leaves a remainder row (seed 002's auto-fill).
        const first = bill.chance(0.5) ? quote / bill.pick([4, 5, 10]) : Math.round((quote * bill.int(15, 35)) / 100 / 1_000) * 1_000;
        const rows = autoFillSchedule(quote, first, { startDate: m.nextBillingDate ?? asOf, cycle: m.billingCycle });
        set.fixedFee = { mode: 'custom_schedule', schedule: rows.map((r) => ({ ...r, rowId: '' })) };
      } else {
        set.quote = { amountMinor: bill.int(10, 60) * 10_000, includes: 'fees', ifWipBelow: 'bill_quote', ifWipAbove: bill.pick(['bill_quote', 'quote_plus_wip'] as const) };
        set.fixedFee = { mode: 'every_cycle', schedule: [] };
      }
    } else if (roll < 0.35) {
      set.quote = {
        amountMinor: bill.int(20, 300) * 50_000,
        includes: bill.pick<QuoteIncludes>(['fees', 'fees_and_costs', 'costs']),
        ifWipBelow: bill.pick<QuoteChoice>(['bill_quote', 'quote_plus_wip', 'wip_only']),
        ifWipAbove: bill.pick<QuoteChoice>(['bill_quote', 'quote_plus_wip', 'wip_only']),
      };
    }
    if (bill.chance(0.1)) {
      set.discount = bill.chance(0.6)
        ? { kind: 'percentage', percentBasisPoints: bill.pick([500, 1_000, 1_500]), amountMinor: 0 }
        : { kind: 'fixed', percentBasisPoints: 0, amountMinor: bill.pick([25_000, 50_000, 100_000]) };
    }
    if (bill.chance(0.06)) {
      set.generalRetainer = { enabled: true, toPay: bill.pick(['new_charges', 'new_charges_and_ar'] as const), automation: 'automatic' };
      set.retainerReplenishment = { enabled: true, minimumBalanceMinor: 500_000, triggerMinor: 300_000 };
    }
    if (bill.chance(0.05)) set.massBilling = { exclude: true, onlyExpenses: false };
    else if (bill.chance(0.03)) set.massBilling = { exclude: false, onlyExpenses: true };
    if (pm.originating !== pm.responsible || bill.chance(0.15)) {
      set.feeAllocation = { originationEnabled: true, originatorTimekeeperId: tkIds[pm.originating]!, originationBasisPoints: bill.pick([1_000, 1_500, 2_000]) };
    }
    if (billTo !== null && bill.chance(0.6)) {
      set.sendTo = [billTo];
      set.useClientAddress = false;
      set.copiesToPrint = 0;
    }
    if (bill.chance(0.05)) set.feeReductions = { hideLinePricing: true };
    if (client.ledesId !== null) {
      set.ebilling = {
        // The first e-billing client's format is drawn; later ones alternate by matter without a draw, so the rest of the demo stays as it was.
        enabled: true, codeSet: 'litigation',
        format: client.ledesFormatDrawn ? (bill.chance(0.5) ? 'LEDES1998B' : 'LEDES1998BI') : (Number(m.fileNumber.split('.')[1]) % 2 === 1 ? 'LEDES1998BI' : 'LEDES1998B'),
        clientLedesId: client.ledesId, matterLedesId: `LF-${m.fileNumber}`.slice(0, 20),
      };
    }
    return set;
  };

  // Plan clients and matters (all randomness is drawn in this fixed order).
  const clients: PlannedClient[] = [];
  const matters: PlannedMatter[] = [];
  const usedClientNames = new Set<string>();
  /** A company name not used yet (after 20 tries a repeat is accepted: big firms have look-alike clients). */
  const corpName = (): { name: string; short: string } => {
    for (let attempt = 0; ; attempt++) {
      const short = `${dice.pick(CORP_PREFIX)} ${dice.pick(CORP_INDUSTRY)}`;
      const name = `${short} ${dice.pick(CORP_SUFFIX)}`;
      if (!usedClientNames.has(name) || attempt >= 20) return { name, short };
    }
  };
  const person = (): string => `${dice.pick(FIRST)} ${dice.pick(LAST)}`;
  while (matters.length < opts.matters) {
    const individual = dice.chance(0.15);
    const { name, short } = individual ? ((p) => ({ name: dice.chance(0.3) ? `Estate of ${p}` : p, short: p.split(' ')[1]! }))(person()) : corpName();
    usedClientNames.add(name);
    const slug = short.toLowerCase().replace(/[^a-z]+/g, '');
    const client: PlannedClient = {
      name, short, slug, individual, contacts: null, ledesId: null, ledesFormatDrawn: false,
      email: individual ? `${slug}${dice.int(1, 99)}@mail.example` : `accounts.payable@${slug}.example`,
      address: `${dice.int(10, 9999)} ${dice.pick(STREETS)}, ${dice.pick(CITIES)}`,
      taxId: individual ? null : `${dice.int(10, 99)}-${String(dice.int(0, 9_999_999)).padStart(7, '0')}`,
      rates: [],
      created: null,
    };
    if (!individual && dice.chance(0.2)) {
      const percent = dice.pick([5, 10, 15]);
      for (const tk of [...PARTNERS, ...ASSOCIATES]) client.rates.push({ tk, rateMinor: discounted(currentRate(tk), percent) });
    }
    const clientIndex = clients.push(client) - 1;
    const count = Math.min(opts.matters - matters.length, 1 + dice.weighted([35, 30, 20, 10, 5]));
    for (let k = 0; k < count; k++) {
      const area = dice.pick(PRACTICE_AREAS);
      const opponent = dice.chance(0.5) ? `${dice.pick(CORP_PREFIX)} ${dice.pick(CORP_INDUSTRY)}` : dice.pick(INSURERS);
      const plaintiff = person();
      const responsible = dice.pick(PARTNERS);
      const associates = dice.chance(0.5) ? [dice.pick(ASSOCIATES)] : ASSOCIATES.filter(() => dice.chance(0.6));
      const cycleIndex = dice.weighted([10, 60, 20, 5, 5]);
      const billingCycle = (['none', 'MONTH', 'QUARTER', 'HALF', 'YEAR'] as const)[cycleIndex]!;
      matters.push({
        clientIndex,
        name: area.title(short, opponent, plaintiff),
        practiceArea: area.name,
        openedOn: addDays(asOf, -dice.int(30, 720)),
        responsible,
        originating: dice.chance(0.7) ? responsible : dice.pick(PARTNERS),
        team: [responsible, ...(associates.length ? associates : [dice.pick(ASSOCIATES)]), PARALEGAL],
        billingCycle,
        wipCapMinor: dice.chance(0.25) ? dice.pick([500_000, 1_000_000, 2_500_000, 5_000_000]) : null,
        matterRate: dice.chance(0.1) ? { tk: responsible, rateMinor: discounted(currentRate(responsible), 10) } : null,
        vars: {
          party: area.name === 'Employment' || area.name === 'Product Liability' ? `plaintiff ${plaintiff.split(' ')[1]}` : opponent,
          witness: dice.pick(WITNESSES), judge: dice.pick(JUDGES), issue: dice.pick(ISSUES), topic: area.topic,
        },
      });
    }
  }

  let ebillingClientChosen = false;
  let corporateAfterFirst = 0;
  // Work in progress: one matter at a time, in fixed order, in chunks of about 2,000 items.
  const perChunk = Math.max(1, Math.min(200, Math.floor(2_000 / Math.max(1, opts.entriesPerMatter))));
  const disbursementsPerMatter = opts.entriesPerMatter === 0 ? 0 : Math.max(1, Math.round(opts.entriesPerMatter / 8));
  const windowStart = addDays(asOf, -180);
  for (let start = 0; start < matters.length; start += perChunk) {
    const chunk = matters.slice(start, start + perChunk);
    await cmds.batch(async (tx) => {
      const time: RecordTimeEntryInput[] = [];
      const disbursements: RecordDisbursementInput[] = [];
      const fixedCharges: RecordFixedChargeInput[] = [];
      const optionItems: (SetBillingOptionsInput & { matterId: string })[] = [];
      const participantItems: (SetMatterParticipantsInput & { matterId: string })[] = [];
      for (const pm of chunk) {
        const client = clients[pm.clientIndex]!;
        if (client.created === null) {
          const c = await tx.createClient(ctx, { name: client.name, email: client.email, address: client.address, taxId: client.taxId });
          client.created = c.id;
          result.clients++;
          for (const r of client.rates) await tx.setClientRate(ctx, { clientId: c.id, timekeeperId: tkIds[r.tk]!, rateMinor: r.rateMinor });
          if (!client.individual) {
            const [apFirst, apLast] = billPerson();
            const ap = await tx.addContact(ctx, {
              clientId: c.id, name: `${apFirst} ${apLast}`, email: client.email, phone: phone(), role: 'Accounts Payable', address: client.address,
            });
            const [gcFirst, gcLast] = billPerson();
            const gc = await tx.addContact(ctx, {
              clientId: c.id, name: `${gcFirst} ${gcLast}`, email: `${gcFirst}.${gcLast}@${client.slug}.example`.toLowerCase(), phone: phone(),
              role: bill.pick(CONTACT_ROLES),
            });
            client.contacts = { accountsPayable: ap.id, instructing: gc.id };
            // The first corporate client e-bills (LEDES, UTBMS litigation codes), and every fourth one after it.
            if (!ebillingClientChosen) {
              ebillingClientChosen = true;
              client.ledesId = `CL-${client.slug.toUpperCase()}`.slice(0, 20);
              client.ledesFormatDrawn = true;
            } else if (++corporateAfterFirst % 4 === 0) {
              client.ledesId = `CL-${client.slug.toUpperCase()}`.slice(0, 20);
            }
          }
        }
        const m = await tx.openMatter(ctx, {
          clientId: client.created, name: pm.name, practiceArea: pm.practiceArea, openedOn: pm.openedOn,
          responsibleTimekeeperId: tkIds[pm.responsible]!, billingTimekeeperId: tkIds[pm.responsible]!,
          originatingTimekeeperId: tkIds[pm.originating]!, billingCycle: pm.billingCycle,
          nextBillingDate: nextBillingDate(asOf, pm.billingCycle), wipCapMinor: pm.wipCapMinor, currency: 'USD',
          timeUnitMinutes: 6, roundingMode: 'up',
        });
        result.matters++;
        if (pm.matterRate) await tx.setMatterRate(ctx, { matterId: m.id, timekeeperId: tkIds[pm.matterRate.tk]!, rateMinor: pm.matterRate.rateMinor });
        if (client.contacts) {
          // Most corporate bills go to accounts payable; the rest to the client itself.
          participantItems.push({
            matterId: m.id, billablePartyContactId: bill.chance(0.7) ? client.contacts.accountsPayable : null,
            participants: [{ contactId: client.contacts.instructing, role: 'Instructing' }],
          });
        }
        // A matter with its own rate has custom matter rates turned on, or the rate would not apply.
        const set = { ...planOptions(m, pm, client, client.email), ...(pm.matterRate ? { customRatesEnabled: true } : {}) };
        if (Object.keys(set).length > 0) optionItems.push({ matterId: m.id, set });
        if (opts.fixedCharges && bill.chance(0.25)) {
          const from = pm.openedOn > windowStart ? pm.openedOn : windowStart;
          const span = Math.max(0, (Date.parse(asOf) - Date.parse(from)) / 86_400_000);
          for (let k = bill.int(1, 2); k > 0; k--) {
            const t = bill.int(0, DEMO_CHARGE_TYPES.length - 1);
            let chargedOn = addDays(from, bill.int(0, span));
            while (isWeekend(chargedOn)) chargedOn = addDays(chargedOn, -1);
            fixedCharges.push({
              matterId: m.id, chargedOn: chargedOn < from ? from : chargedOn, chargeTypeId: chargeTypeIds[t]!,
              quantityMilli: DEMO_CHARGE_TYPES[t]!.code === 'BINDERS' ? bill.int(1, 4) * 1000 : 1000, quoted: bill.chance(0.15),
            });
          }
        }

        const from = pm.openedOn > windowStart ? pm.openedOn : windowStart;
        const span = Math.max(0, (Date.parse(asOf) - Date.parse(from)) / 86_400_000);
        const dateIn = (): string => {
          let d = addDays(from, dice.int(0, span));
          while (isWeekend(d)) d = addDays(d, -1);
          return d < from ? from : d;
        };
        for (let e = 0; e < opts.entriesPerMatter; e++) {
          const tk = pm.team[dice.weighted(pm.team.map((t, i) => (i === 0 ? 20 : t === PARALEGAL ? 25 : 50 / (pm.team.length - 2))))]!;
          const [task, activity, text] = dice.pick(tk === PARALEGAL ? PARALEGAL_NARRATIVES : NARRATIVES);
          const units = ATTENDANCE.has(activity) ? dice.int(10, 60) : dice.weighted([5, 14, 14, 12, 10, 10, 8, 8, 6, 5, 4, 4]) + 1;
          const rawMinutes = Math.max(1, units * 6 - dice.int(0, 5));
          const roll = dice.float();
          const behaviour: EntryBehaviour = roll < 0.03 ? 'hide' : roll < 0.07 ? 'no_charge' : 'bill';
          const override = dice.chance(0.01) ? { rateMinor: 10_000, reason: 'Travel time at the agreed flat travel rate' } : null;
          time.push({
            matterId: m.id, timekeeperId: tkIds[tk]!, workDate: dateIn(), rawMinutes, narrative: fill(text, pm.vars),
            taskCode: task, activityCode: activity, behaviour, override,
          });
        }
        for (let d = 0; d < disbursementsPerMatter; d++) {
          const kind = DISBURSEMENTS[dice.weighted(DISBURSEMENT_WEIGHTS)]!;
          const whole = dice.int(kind.quantity[0], kind.quantity[1]);
          const quantityMilli = kind.fractional ? whole * 1000 + dice.int(0, 9) * 100 : whole * 1000;
          disbursements.push({
            matterId: m.id, incurredOn: dateIn(), code: kind.code, expenseCode: kind.expenseCode, quantityMilli,
            unitCostMinor: dice.int(kind.unitCost[0], kind.unitCost[1]), description: kind.description, payee: kind.payee,
            behaviour: dice.chance(0.03) ? 'no_charge' : 'bill',
          });
        }
      }
      if (participantItems.length > 0) await tx.setMatterParticipantsMany(ctx, participantItems);
      if (optionItems.length > 0) await tx.setBillingOptionsMany(ctx, optionItems);
      const r = await tx.recordWip(ctx, { timeEntries: time, disbursements, fixedCharges });
      result.timeEntries += r.timeEntries.length;
      result.disbursements += r.disbursements.length;
    });
  }
  return result;
}
