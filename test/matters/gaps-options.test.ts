/**
 * Every matter billing option of seed 002 and every firm billing setting, table-driven,
 * on both databases: each is set through its page form (the inputs as the page renders
 * them) and through the JSON API, persisted (getBillingOptions / getFirmSettings), and a
 * bad value for it is a 422 naming the field with a clear message and nothing changed.
 * The options survive a restart and reach billing's own copy through events.
 */
import assert from 'node:assert/strict';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { systemContext } from '../../src/shared/events.ts';
import { unescapeHtml, withApp } from '../support/app.ts';
import type { Browser, Page, TestApp } from '../support/app.ts';
import { eachDialect } from '../support/db.ts';

const ctx = systemContext('gaps-options-test', 'test');
type Json = Record<string, unknown>;
/** Form values to set: a string, or null to untick a checkbox (leave the field out). */
type Fields = Record<string, string | null>;

// ---------------------------------------------------------------------------------------
// A form as the page renders it
// ---------------------------------------------------------------------------------------

class Form {
  private constructor(public pairs: [string, string][], readonly names: ReadonlySet<string>) {}

  /** The first <form> of an HTML fragment: its inputs, selects (selected option) and ticked boxes/radios. */
  static of(html: string): Form {
    const start = html.indexOf('<form');
    assert.ok(start >= 0, 'a form on the page');
    const body = html.slice(start, html.indexOf('</form>', start));
    const pairs: [string, string][] = [];
    const names = new Set<string>();
    const attr = (tag: string, a: string): string | null => {
      const m = new RegExp(`\\s${a}="([^"]*)"`).exec(tag);
      return m ? unescapeHtml(m[1]!) : null;
    };
    for (const m of body.matchAll(/<input\b[^>]*>|<select\b[^>]*>[\s\S]*?<\/select>|<textarea\b[^>]*>[\s\S]*?<\/textarea>/g)) {
      const el = m[0];
      const open = /^<[^>]*>/.exec(el)![0];
      const name = attr(open, 'name');
      if (!name || name === '_csrf') continue;
      names.add(name);
      if (el.startsWith('<select')) {
        const opts = [...el.matchAll(/<option\b[^>]*>/g)].map((o) => o[0]);
        const sel = opts.find((o) => /\sselected/.test(o)) ?? opts[0];
        pairs.push([name, sel ? attr(sel, 'value') ?? '' : '']);
      } else if (el.startsWith('<textarea')) {
        pairs.push([name, unescapeHtml(el.replace(/^<[^>]*>/, '').replace(/<\/textarea>$/, ''))]);
      } else {
        const type = (attr(open, 'type') ?? 'text').toLowerCase();
        if (type === 'checkbox' || type === 'radio') { if (/\schecked/.test(open)) pairs.push([name, attr(open, 'value') ?? 'on']); }
        else pairs.push([name, attr(open, 'value') ?? '']);
      }
    }
    return new Form(pairs, names);
  }

  /** Set one field the page has (null: leave it out, an unticked checkbox). */
  set(name: string, value: string | null): this {
    assert.ok(this.names.has(name), `the page has an input named ${name}`);
    this.pairs = this.pairs.filter(([k]) => k !== name);
    if (value !== null) this.pairs.push([name, value]);
    return this;
  }

  apply(fields: Fields = {}): this {
    for (const [k, v] of Object.entries(fields)) this.set(k, v);
    return this;
  }

  all(name: string): string[] {
    return this.pairs.filter(([k]) => k === name).map(([, v]) => v);
  }

  /** Set the n-th value of a repeated field (-1: the last). */
  nth(name: string, n: number, value: string): this {
    const idx = this.pairs.map(([k], i) => (k === name ? i : -1)).filter((i) => i >= 0);
    const at = idx.at(n);
    assert.ok(at !== undefined, `the form has a ${name} #${n}`);
    this.pairs[at] = [name, value];
    return this;
  }

  /** Rows of repeated fields (tax rates: code, name, rate) as objects, in order. */
  rows(keys: readonly string[]): Record<string, string>[] {
    const cols = keys.map((k) => this.all(k));
    return cols[0]!.map((_, i) => Object.fromEntries(keys.map((k, j) => [k, cols[j]![i] ?? ''])));
  }

  setRows(keys: readonly string[], rows: readonly Record<string, string>[]): this {
    for (const k of keys) assert.ok(this.names.has(k), `the page has inputs named ${k}`);
    this.pairs = this.pairs.filter(([k]) => !keys.includes(k));
    for (const r of rows) for (const k of keys) this.pairs.push([k, r[k] ?? '']);
    return this;
  }
}

function sectionOf(html: string, id: string): string {
  const start = html.indexOf(`<section id="${id}"`);
  assert.ok(start >= 0, `section #${id} on the page`);
  return html.slice(start, html.indexOf('</section>', start));
}

function submit(b: Browser, path: string, form: Form, extra: [string, string][] = []): Promise<Page> {
  const body = new URLSearchParams([...form.pairs, ...extra, ['_csrf', b.csrf ?? '']]).toString();
  return b.request('POST', path, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
}

function fieldError(text: string, field: string): string {
  const m = new RegExp(`data-error-for="${field.replaceAll('.', '\\.')}"[^>]*>([\\s\\S]*?)</(span|li)>`).exec(text);
  assert.ok(m, `an error shown for ${field}; errors shown: ${shownErrors(text)}`);
  return unescapeHtml(m[1]!.replace(/<[^>]*>/g, '').trim());
}

function shownErrors(text: string): string {
  return [...text.matchAll(/data-error-for="([^"]+)"[^>]*>([\s\S]*?)<\/(span|li)>/g)].map((m) => `${m[1]}: ${unescapeHtml(m[2]!.replace(/<[^>]*>/g, '').trim())}`).join('; ') || 'none';
}

class Api {
  constructor(private readonly b: Browser, private readonly token: string) {}
  private get auth() { return { authorization: `Bearer ${this.token}` }; }
  get(path: string): Promise<Page> { return this.b.get(`/api/v1${path}`, { ...this.auth, accept: 'application/json' }); }
  post(path: string, body: unknown): Promise<Page> { return this.b.postJson(`/api/v1${path}`, body, { headers: this.auth }); }
  patch(path: string, body: unknown): Promise<Page> { return this.b.postJson(`/api/v1${path}`, body, { method: 'PATCH', headers: this.auth }); }
}

function ok(res: Page): any {
  assert.equal(res.status, 200, `${res.status}: ${res.text.slice(0, 600)}`);
  return res.json();
}

/** True when every key of `expected` (recursively) has that value in `actual`. */
function isSubset(actual: unknown, expected: unknown): boolean {
  if (expected !== null && typeof expected === 'object' && !Array.isArray(expected)) {
    return Object.entries(expected).every(([k, v]) => isSubset((actual as Json | null)?.[k], v));
  }
  return JSON.stringify(actual) === JSON.stringify(expected);
}

function assertSubset(actual: unknown, expected: unknown, label: string, path = ''): void {
  if (expected !== null && typeof expected === 'object' && !Array.isArray(expected)) {
    for (const [k, v] of Object.entries(expected)) assertSubset((actual as Json | null)?.[k], v, label, `${path}.${k}`);
    return;
  }
  assert.deepEqual(actual, expected, `${label}: ${path}`);
}

function deepMerge(a: Json, b: Json): Json {
  const out: Json = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] = v !== null && typeof v === 'object' && !Array.isArray(v) && typeof out[k] === 'object' && out[k] !== null ? deepMerge(out[k] as Json, v as Json) : v;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The firm
// ---------------------------------------------------------------------------------------

async function firm(t: TestApp) {
  const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: { kick: () => undefined } });
  const mh = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  await cmds.setTimekeeperRate(ctx, { timekeeperId: mh.id, effectiveFrom: '2025-01-01', rateMinor: 32_000 });
  const as = await cmds.createTimekeeper(ctx, { initials: 'AS', name: 'Arun Shah', classification: 'associate' });
  const client = await cmds.createClient(ctx, { name: 'Northwind Logistics Inc.', email: 'ap@northwind.example' });
  const matter = await cmds.openMatter(ctx, {
    clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: mh.id, openedOn: '2026-01-15', billingCycle: 'MONTH', nextBillingDate: '2026-04-01',
  });
  const wip = await cmds.openMatter(ctx, { clientId: client.id, name: 'Northwind lease', responsibleTimekeeperId: mh.id, openedOn: '2026-01-15' });
  await cmds.recordTimeEntry(ctx, { matterId: wip.id, timekeeperId: mh.id, workDate: '2026-02-27', rawMinutes: 60, narrative: 'Review lease' });
  const admin = await t.user('admin');
  const b = t.browser();
  assert.equal((await b.login(admin.email)).status, 303);
  const token = await t.token(admin.email);
  return { cmds, mh, as, client, matter, wip, b, token, api: new Api(t.browser(), token) };
}
type Firm = Awaited<ReturnType<typeof firm>>;

// ---------------------------------------------------------------------------------------
// The matter options, one row per option of seed 002
// ---------------------------------------------------------------------------------------

interface Bad {
  /** Page: fields set on the form as rendered. */
  fields?: Fields;
  /** API: the `set` body. */
  json?: Json;
  field: string;
  message: RegExp;
  /** The matter with unbilled work (billing cannot be turned off there). */
  onWip?: boolean;
}

interface OptionCase {
  option: string;
  /** The options page section (and its form's path). */
  group: string;
  page: Fields;
  pageExpect: Json;
  api: Json;
  apiExpect: Json;
  pageBad: Bad[];
  apiBad: Bad[];
  /** More to check once the page or API value is saved. */
  also?: (f: Firm, via: 'page' | 'api') => Promise<void>;
}

const BOOL_API = /must be boolean/;
const TICK = /must be ticked or not/;

function optionCases(f: Firm): OptionCase[] {
  const mh = f.mh.id;
  const as = f.as.id;
  return [
    {
      option: 'billing on/off', group: 'matter-billing',
      page: { billingEnabled: null }, pageExpect: { billingEnabled: false },
      api: { billingEnabled: true }, apiExpect: { billingEnabled: true },
      pageBad: [
        { fields: { billingEnabled: null }, onWip: true, field: 'billingEnabled', message: /You can not turn this off while there are any billable or billed items remaining \(1 billable item not yet billed\)/ },
        { fields: { billingEnabled: 'maybe' }, field: 'billingEnabled', message: TICK },
      ],
      apiBad: [
        { json: { billingEnabled: false }, onWip: true, field: 'set.billingEnabled', message: /You can not turn this off .*1 billable item not yet billed/ },
        { json: { billingEnabled: 'no' }, field: 'set.billingEnabled', message: BOOL_API },
      ],
    },
    {
      option: 'billing status', group: 'matter-billing',
      page: { billingStatus: 'closed' }, pageExpect: { billingStatus: 'closed' },
      api: { billingStatus: 'active' }, apiExpect: { billingStatus: 'active' },
      pageBad: [{ fields: { billingStatus: 'paused' }, field: 'billingStatus', message: /must be one of: use_matter_status, active, closed/ }],
      apiBad: [{ json: { billingStatus: 'paused' }, field: 'set.billingStatus', message: /must be one of: use_matter_status, active, closed/ }],
    },
    {
      option: 'bill template', group: 'matter-billing',
      page: { billTemplate: 'itemised' }, pageExpect: { billTemplate: 'itemised' },
      api: { billTemplate: 'total-only' }, apiExpect: { billTemplate: 'total-only' },
      pageBad: [{ fields: { billTemplate: '' }, field: 'billTemplate', message: /is required/ }, { fields: { billTemplate: 'x'.repeat(101) }, field: 'billTemplate', message: /at most 100 characters/ }],
      apiBad: [{ json: { billTemplate: ' ' }, field: 'set.billTemplate', message: /is required/ }],
    },
    {
      option: 'send-to addresses (comma-separated, each validated)', group: 'matter-billing',
      page: { sendTo: 'ap@northwind.example, cfo@northwind.example' }, pageExpect: { sendTo: ['ap@northwind.example', 'cfo@northwind.example'] },
      api: { sendTo: ['billing@northwind.example'] }, apiExpect: { sendTo: ['billing@northwind.example'] },
      pageBad: [{ fields: { sendTo: 'ap@northwind.example, not-an-email' }, field: 'sendTo.1', message: /"not-an-email" is not an email address/ }],
      apiBad: [{ json: { sendTo: ['ok@northwind.example', 'nope'] }, field: 'set.sendTo.1', message: /"nope" is not an email address/ }],
    },
    {
      option: "use the client's address", group: 'matter-billing',
      page: { useClientAddress: null }, pageExpect: { useClientAddress: false },
      api: { useClientAddress: true }, apiExpect: { useClientAddress: true },
      pageBad: [{ fields: { useClientAddress: 'maybe' }, field: 'useClientAddress', message: TICK }],
      apiBad: [{ json: { useClientAddress: 'yes' }, field: 'set.useClientAddress', message: BOOL_API }],
    },
    {
      option: 'email template', group: 'matter-billing',
      page: { emailTemplate: 'reminder' }, pageExpect: { emailTemplate: 'reminder' },
      api: { emailTemplate: 'standard-email' }, apiExpect: { emailTemplate: 'standard-email' },
      pageBad: [{ fields: { emailTemplate: '' }, field: 'emailTemplate', message: /is required/ }],
      apiBad: [{ json: { emailTemplate: 'y'.repeat(101) }, field: 'set.emailTemplate', message: /100 characters/ }],
    },
    {
      option: 'copies to print (1, 2, do not print)', group: 'matter-billing',
      page: { copiesToPrint: '0' }, pageExpect: { copiesToPrint: 0 },
      api: { copiesToPrint: 2 }, apiExpect: { copiesToPrint: 2 },
      pageBad: [{ fields: { copiesToPrint: '3' }, field: 'copiesToPrint', message: /must be 0 \(do not print\), 1 or 2/ }],
      apiBad: [{ json: { copiesToPrint: 3 }, field: 'set.copiesToPrint', message: /must be one of: 0, 1, 2/ }],
    },
    {
      option: 'custom matter rates', group: 'custom-rates',
      page: { customRatesEnabled: 'on' }, pageExpect: { customRatesEnabled: true },
      api: { customRatesEnabled: false }, apiExpect: { customRatesEnabled: false },
      pageBad: [{ fields: { customRatesEnabled: 'maybe' }, field: 'customRatesEnabled', message: TICK }],
      apiBad: [{ json: { customRatesEnabled: 'yes' }, field: 'set.customRatesEnabled', message: BOOL_API }],
    },
    {
      option: 'general retainer (on/off, to pay, automation)', group: 'general-retainer',
      page: { 'generalRetainer.enabled': 'on', 'generalRetainer.toPay': 'new_charges_and_ar', 'generalRetainer.automation': 'manual' },
      pageExpect: { generalRetainer: { enabled: true, toPay: 'new_charges_and_ar', automation: 'manual' } },
      api: { generalRetainer: { toPay: 'new_charges', automation: 'automatic' } }, apiExpect: { generalRetainer: { enabled: true, toPay: 'new_charges', automation: 'automatic' } },
      pageBad: [
        { fields: { 'generalRetainer.toPay': 'everything' }, field: 'generalRetainer.toPay', message: /must be one of: new_charges, new_charges_and_ar/ },
        { fields: { 'generalRetainer.automation': 'sometimes' }, field: 'generalRetainer.automation', message: /must be one of: automatic, manual/ },
        { fields: { 'generalRetainer.enabled': 'maybe' }, field: 'generalRetainer.enabled', message: TICK },
      ],
      apiBad: [{ json: { generalRetainer: { automation: 'sometimes' } }, field: 'set.generalRetainer.automation', message: /must be one of: automatic, manual/ }],
    },
    {
      option: 'retainer replenishment (minimum, trigger)', group: 'retainer-replenishment',
      page: { 'retainerReplenishment.enabled': 'on', 'retainerReplenishment.minimumBalanceMinor': '5000.00', 'retainerReplenishment.triggerMinor': '3000.00' },
      pageExpect: { retainerReplenishment: { enabled: true, minimumBalanceMinor: 500_000, triggerMinor: 300_000 } },
      api: { retainerReplenishment: { minimumBalance: '6000.00', trigger: '2500.00' } }, apiExpect: { retainerReplenishment: { enabled: true, minimumBalanceMinor: 600_000, triggerMinor: 250_000 } },
      pageBad: [
        { fields: { 'retainerReplenishment.triggerMinor': '7000.00' }, field: 'retainerReplenishment.triggerMinor', message: /must not be more than the minimum balance/ },
        { fields: { 'retainerReplenishment.minimumBalanceMinor': 'lots' }, field: 'retainerReplenishment.minimumBalanceMinor', message: /./ },
        { fields: { 'retainerReplenishment.minimumBalanceMinor': '0' }, field: 'retainerReplenishment.minimumBalanceMinor', message: /must be more than 0/ },
      ],
      apiBad: [
        { json: { retainerReplenishment: { trigger: '9000.00' } }, field: 'set.retainerReplenishment.trigger', message: /must not be more than the minimum balance/ },
        { json: { retainerReplenishment: { minimumBalance: '-5' } }, field: 'set.retainerReplenishment.minimumBalance', message: /decimal string/ },
      ],
    },
    {
      option: 'trust (to pay, automation)', group: 'trust',
      page: { 'trust.toPay': 'new_charges_and_ar', 'trust.automation': 'manual' }, pageExpect: { trust: { toPay: 'new_charges_and_ar', automation: 'manual' } },
      api: { trust: { automation: 'automatic' } }, apiExpect: { trust: { toPay: 'new_charges_and_ar', automation: 'automatic' } },
      pageBad: [{ fields: { 'trust.toPay': 'old_charges' }, field: 'trust.toPay', message: /must be one of: new_charges, new_charges_and_ar/ }],
      apiBad: [{ json: { trust: { toPay: 'old_charges' } }, field: 'set.trust.toPay', message: /must be one of: new_charges, new_charges_and_ar/ }],
    },
    {
      option: 'mass billing: exclude', group: 'mass-billing',
      page: { 'massBilling.exclude': 'on' }, pageExpect: { massBilling: { exclude: true } },
      api: { massBilling: { exclude: false } }, apiExpect: { massBilling: { exclude: false } },
      pageBad: [{ fields: { 'massBilling.exclude': 'maybe' }, field: 'massBilling.exclude', message: TICK }],
      apiBad: [{ json: { massBilling: { exclude: 1 } }, field: 'set.massBilling.exclude', message: BOOL_API }],
    },
    {
      option: 'mass billing: only bill expenses', group: 'mass-billing',
      page: { 'massBilling.onlyExpenses': 'on' }, pageExpect: { massBilling: { onlyExpenses: true } },
      api: { massBilling: { onlyExpenses: false } }, apiExpect: { massBilling: { onlyExpenses: false } },
      pageBad: [{ fields: { 'massBilling.onlyExpenses': 'maybe' }, field: 'massBilling.onlyExpenses', message: TICK }],
      apiBad: [{ json: { massBilling: { onlyExpenses: 'no' } }, field: 'set.massBilling.onlyExpenses', message: BOOL_API }],
    },
    {
      option: 'quoted amount and what it includes', group: 'arrangement',
      page: { 'quote.amountMinor': '2500.00', 'quote.includes': 'fees_and_costs' }, pageExpect: { quote: { amountMinor: 250_000, includes: 'fees_and_costs' } },
      api: { quote: { amount: '1000.00', includes: 'costs' } }, apiExpect: { quote: { amountMinor: 100_000, includes: 'costs' } },
      pageBad: [
        { fields: { 'quote.amountMinor': '12.345' }, field: 'quote.amountMinor', message: /decimal/ },
        { fields: { 'quote.includes': 'everything' }, field: 'quote.includes', message: /must be one of: fees, fees_and_costs, costs/ },
      ],
      apiBad: [
        { json: { quote: { amount: '-5' } }, field: 'set.quote.amount', message: /must be an amount as a decimal string/ },
        { json: { quote: { includes: 'everything' } }, field: 'set.quote.includes', message: /must be one of: fees, fees_and_costs, costs/ },
      ],
    },
    {
      option: 'if WIP is less than the quote', group: 'arrangement',
      page: { 'quote.ifWipBelow': 'bill_quote' }, pageExpect: { quote: { ifWipBelow: 'bill_quote' } },
      api: { quote: { ifWipBelow: 'quote_plus_wip' } }, apiExpect: { quote: { ifWipBelow: 'quote_plus_wip' } },
      pageBad: [{ fields: { 'quote.ifWipBelow': 'bill_more' }, field: 'quote.ifWipBelow', message: /must be one of: bill_quote, quote_plus_wip, wip_only/ }],
      apiBad: [{ json: { quote: { ifWipBelow: 'bill_more' } }, field: 'set.quote.ifWipBelow', message: /must be one of: bill_quote, quote_plus_wip, wip_only/ }],
    },
    {
      option: 'if WIP is greater than the quote', group: 'arrangement',
      page: { 'quote.ifWipAbove': 'quote_plus_wip' }, pageExpect: { quote: { ifWipAbove: 'quote_plus_wip' } },
      api: { quote: { ifWipAbove: 'bill_quote' } }, apiExpect: { quote: { ifWipAbove: 'bill_quote' } },
      pageBad: [{ fields: { 'quote.ifWipAbove': 'bill_less' }, field: 'quote.ifWipAbove', message: /must be one of: bill_quote, quote_plus_wip, wip_only/ }],
      apiBad: [{ json: { quote: { ifWipAbove: 'bill_less' } }, field: 'set.quote.ifWipAbove', message: /must be one of/ }],
    },
    {
      option: 'billing arrangement (hourly or fixed fee)', group: 'arrangement',
      page: { arrangement: 'fixed_fee' }, pageExpect: { arrangement: 'fixed_fee' },
      api: { arrangement: 'hourly' }, apiExpect: { arrangement: 'hourly' },
      pageBad: [
        { fields: { arrangement: 'contingency' }, field: 'arrangement', message: /must be one of: hourly, fixed_fee/ },
        { fields: { arrangement: 'fixed_fee', 'fixedFee.mode': 'every_cycle', 'quote.amountMinor': '' }, field: 'quote.amountMinor', message: /is required for a fixed fee billed every cycle/ },
      ],
      apiBad: [{ json: { arrangement: 'contingency' }, field: 'set.arrangement', message: /must be one of: hourly, fixed_fee/ }],
    },
    {
      option: 'default time entry behaviour', group: 'arrangement',
      page: { defaultTimeEntryBehaviour: 'no_charge' }, pageExpect: { defaultTimeEntryBehaviour: 'no_charge' },
      api: { defaultTimeEntryBehaviour: 'hide' }, apiExpect: { defaultTimeEntryBehaviour: 'hide' },
      pageBad: [{ fields: { defaultTimeEntryBehaviour: 'sometimes' }, field: 'defaultTimeEntryBehaviour', message: /must be one of: bill, hide, no_charge/ }],
      apiBad: [{ json: { defaultTimeEntryBehaviour: 'sometimes' }, field: 'set.defaultTimeEntryBehaviour', message: /must be one of/ }],
      also: async (x, via) => assert.equal((await x.cmds.findMatter(x.matter.id))!.defaultBehaviour, via === 'page' ? 'no_charge' : 'hide', 'new time takes it'),
    },
    {
      option: 'fee reductions: appear as discount', group: 'arrangement',
      page: { 'feeReductions.appearAsDiscount': null }, pageExpect: { feeReductions: { appearAsDiscount: false } },
      api: { feeReductions: { appearAsDiscount: true } }, apiExpect: { feeReductions: { appearAsDiscount: true } },
      pageBad: [{ fields: { 'feeReductions.appearAsDiscount': 'maybe' }, field: 'feeReductions.appearAsDiscount', message: TICK }],
      apiBad: [{ json: { feeReductions: { appearAsDiscount: 'yes' } }, field: 'set.feeReductions.appearAsDiscount', message: BOOL_API }],
    },
    {
      option: 'fee reductions: hide line pricing', group: 'arrangement',
      page: { 'feeReductions.hideLinePricing': 'on' }, pageExpect: { feeReductions: { hideLinePricing: true } },
      api: { feeReductions: { hideLinePricing: false } }, apiExpect: { feeReductions: { hideLinePricing: false } },
      pageBad: [{ fields: { 'feeReductions.hideLinePricing': 'maybe' }, field: 'feeReductions.hideLinePricing', message: TICK }],
      apiBad: [{ json: { feeReductions: { hideLinePricing: 'no' } }, field: 'set.feeReductions.hideLinePricing', message: BOOL_API }],
    },
    {
      option: 'fixed fee: every billing cycle or custom schedule', group: 'arrangement',
      page: { 'fixedFee.mode': 'custom_schedule' }, pageExpect: { fixedFee: { mode: 'custom_schedule' } },
      api: { fixedFee: { mode: 'every_cycle' } }, apiExpect: { fixedFee: { mode: 'every_cycle' } },
      pageBad: [{ fields: { 'fixedFee.mode': 'weekly' }, field: 'fixedFee.mode', message: /must be one of: every_cycle, custom_schedule/ }],
      apiBad: [{ json: { fixedFee: { mode: 'weekly' } }, field: 'set.fixedFee.mode', message: /must be one of: every_cycle, custom_schedule/ }],
    },
    {
      option: 'discount: percentage', group: 'discount',
      page: { 'discount.kind': 'percentage', 'discount.percentBasisPoints': '12.5' }, pageExpect: { discount: { kind: 'percentage', percentBasisPoints: 1250 } },
      api: { discount: { kind: 'percentage', percent: '10' } }, apiExpect: { discount: { kind: 'percentage', percentBasisPoints: 1000 } },
      pageBad: [
        { fields: { 'discount.percentBasisPoints': '0' }, field: 'discount.percentBasisPoints', message: /between 0\.01% and 100%/ },
        { fields: { 'discount.percentBasisPoints': '12.345' }, field: 'discount.percentBasisPoints', message: /at most 2 decimal places/ },
        { fields: { 'discount.kind': 'bogus' }, field: 'discount.kind', message: /must be one of: none, percentage, fixed/ },
      ],
      apiBad: [
        { json: { discount: { percent: '150' } }, field: 'set.discount.percent', message: /between 0 and 100/ },
        { json: { discount: { percent: '0' } }, field: 'set.discount.percent', message: /between 0\.01% and 100%/ },
      ],
    },
    {
      option: 'discount: fixed amount', group: 'discount',
      page: { 'discount.kind': 'fixed', 'discount.amountMinor': '150.00' }, pageExpect: { discount: { kind: 'fixed', amountMinor: 15_000 } },
      api: { discount: { kind: 'fixed', amount: '75.50' } }, apiExpect: { discount: { kind: 'fixed', amountMinor: 7550 } },
      pageBad: [{ fields: { 'discount.amountMinor': '' }, field: 'discount.amountMinor', message: /must be more than 0/ }],
      apiBad: [{ json: { discount: { amount: '0' } }, field: 'set.discount.amount', message: /must be more than 0/ }],
    },
    {
      option: 'fee allocation (pro-rate / responsible / selected timekeeper)', group: 'fee-allocation',
      page: { 'feeAllocation.allocateFees': 'selected', 'feeAllocation.feesTimekeeperId': as }, pageExpect: { feeAllocation: { allocateFees: 'selected', feesTimekeeperId: as } },
      api: { feeAllocation: { allocateFees: 'responsible', feesTimekeeperId: null } }, apiExpect: { feeAllocation: { allocateFees: 'responsible', feesTimekeeperId: null } },
      pageBad: [
        { fields: { 'feeAllocation.allocateFees': 'selected', 'feeAllocation.feesTimekeeperId': '' }, field: 'feeAllocation.feesTimekeeperId', message: /is required when fees go to a selected timekeeper/ },
        { fields: { 'feeAllocation.allocateFees': 'by_seniority' }, field: 'feeAllocation.allocateFees', message: /must be one of: pro_rata, responsible, selected/ },
      ],
      apiBad: [{ json: { feeAllocation: { allocateFees: 'selected', feesTimekeeperId: 'no-such-timekeeper' } }, field: 'set.feeAllocation.feesTimekeeperId', message: /is not a timekeeper/ }],
    },
    {
      option: 'allocation of fee adjustments', group: 'fee-allocation',
      page: { 'feeAllocation.allocateAdjustments': 'selected', 'feeAllocation.adjustmentsTimekeeperId': mh }, pageExpect: { feeAllocation: { allocateAdjustments: 'selected', adjustmentsTimekeeperId: mh } },
      api: { feeAllocation: { allocateAdjustments: 'responsible' } }, apiExpect: { feeAllocation: { allocateAdjustments: 'responsible' } },
      pageBad: [{ fields: { 'feeAllocation.allocateAdjustments': 'selected', 'feeAllocation.adjustmentsTimekeeperId': '' }, field: 'feeAllocation.adjustmentsTimekeeperId', message: /is required when adjustments go to a selected timekeeper/ }],
      apiBad: [{ json: { feeAllocation: { allocateAdjustments: 'whoever' } }, field: 'set.feeAllocation.allocateAdjustments', message: /must be one of: original_split, responsible, selected/ }],
    },
    {
      option: 'origination (on/off, timekeeper, percent)', group: 'fee-allocation',
      page: { 'feeAllocation.originationEnabled': 'on', 'feeAllocation.originatorTimekeeperId': mh, 'feeAllocation.originationBasisPoints': '10' },
      pageExpect: { feeAllocation: { originationEnabled: true, originatorTimekeeperId: mh, originationBasisPoints: 1000 } },
      api: { feeAllocation: { originatorTimekeeperId: as, originationPercent: '7.5' } }, apiExpect: { feeAllocation: { originationEnabled: true, originatorTimekeeperId: as, originationBasisPoints: 750 } },
      pageBad: [
        { fields: { 'feeAllocation.originatorTimekeeperId': '' }, field: 'feeAllocation.originatorTimekeeperId', message: /is required when the origination fee is on/ },
        { fields: { 'feeAllocation.originationBasisPoints': '0' }, field: 'feeAllocation.originationBasisPoints', message: /between 0\.01% and 100%/ },
        { fields: { 'feeAllocation.originationEnabled': 'maybe' }, field: 'feeAllocation.originationEnabled', message: TICK },
      ],
      apiBad: [
        { json: { feeAllocation: { originationPercent: '0' } }, field: 'set.feeAllocation.originationPercent', message: /between 0\.01% and 100%/ },
        { json: { feeAllocation: { originationEnabled: 'yes' } }, field: 'set.feeAllocation.originationEnabled', message: BOOL_API },
      ],
    },
    {
      option: "e-billing (on/off, UTBMS code set, file format, client's LEDES ids)", group: 'ebilling',
      page: { 'ebilling.enabled': 'on', 'ebilling.codeSet': 'litigation', 'ebilling.format': 'LEDES1998BI', 'ebilling.clientLedesId': 'NW-001', 'ebilling.matterLedesId': 'NW-KES-1' },
      pageExpect: { ebilling: { enabled: true, codeSet: 'litigation', format: 'LEDES1998BI', clientLedesId: 'NW-001', matterLedesId: 'NW-KES-1' } },
      api: { ebilling: { format: 'LEDES1998B', clientLedesId: 'NW-002', matterLedesId: 'M-7' } },
      apiExpect: { ebilling: { enabled: true, codeSet: 'litigation', format: 'LEDES1998B', clientLedesId: 'NW-002', matterLedesId: 'M-7' } },
      pageBad: [
        { fields: { 'ebilling.clientLedesId': '' }, field: 'ebilling.clientLedesId', message: /is required when e-billing is on/ },
        { fields: { 'ebilling.matterLedesId': 'A|B' }, field: 'ebilling.matterLedesId', message: /must not contain \|/ },
        { fields: { 'ebilling.codeSet': 'bogus' }, field: 'ebilling.codeSet', message: /must be one of the UTBMS code sets: litigation/ },
        { fields: { 'ebilling.format': 'LEDES2000' }, field: 'ebilling.format', message: /must be one of: LEDES1998B, LEDES1998BI/ },
      ],
      apiBad: [
        { json: { ebilling: { format: 'LEDES2000' } }, field: 'set.ebilling.format', message: /must be one of: LEDES1998B, LEDES1998BI/ },
        { json: { ebilling: { clientLedesId: 'x'.repeat(21) } }, field: 'set.ebilling.clientLedesId', message: /20 characters/ },
        { json: { ebilling: { matterLedesId: '' } }, field: 'set.ebilling.matterLedesId', message: /is required when e-billing is on/ },
        { json: { ebilling: { clientLedesId: ' NW-002' } }, field: 'set.ebilling.clientLedesId', message: /must not start or end with a space/ },
        { json: { ebilling: { matterLedesId: 'M-7 ' } }, field: 'set.ebilling.matterLedesId', message: /must not start or end with a space/ },
        // A tab or a Unicode line separator inside an id: refused here, as e-billing's export refuses it.
        { json: { ebilling: { matterLedesId: 'M\t7' } }, field: 'set.ebilling.matterLedesId', message: /tabs or other control characters/ },
        { json: { ebilling: { clientLedesId: 'NW\u2028002' } }, field: 'set.ebilling.clientLedesId', message: /tabs or other control characters/ },
      ],
    },
  ];
}

async function optionsForm(f: Firm, matterId: string, group: string): Promise<Form> {
  const page = await f.b.get(`/matters/${matterId}/billing-options`);
  assert.equal(page.status, 200);
  return Form.of(sectionOf(page.text, `bo-${group}`));
}

eachDialect('every matter billing option of seed 002 is set on its page and through the API, validated by field, kept over a restart and copied to billing', async (db) => {
  let token = '';
  let matterId = '';
  let final: unknown;
  await withApp(db, async (t) => {
    const f = await firm(t);
    // The email templates the cases below set: billing has them (matters refuses a name billing has not told it of).
    await t.db.db.insertInto('matters_template').values([{ kind: 'email', name: 'reminder' }, { kind: 'email', name: 'standard-email' }]).execute();
    token = f.token;
    matterId = f.matter.id;
    const options = async (id: string) => f.cmds.getBillingOptions(id);
    const optionsUrl = (id: string) => `/matters/${id}/billing-options`;

    // General retainer options appear only once the firm turns general retainers on.
    const hidden = sectionOf((await f.b.get(optionsUrl(f.matter.id))).text, 'bo-general-retainer');
    assert.match(hidden, /General retainers must be enabled in the firm's billing settings/);
    assert.doesNotMatch(hidden, /name="generalRetainer\.enabled"/);
    const refused = await f.api.patch(`/matters/${f.matter.id}/billing-options`, { set: { generalRetainer: { enabled: true } } });
    assert.equal(refused.status, 422);
    assert.match(refused.json().error.fields['set.generalRetainer.enabled'], /needs general retainers turned on in the firm's billing settings/);
    ok(await f.api.patch('/settings/billing', { generalRetainersEnabled: true }));
    assert.match(sectionOf((await f.b.get(optionsUrl(f.matter.id))).text, 'bo-general-retainer'), /name="generalRetainer\.enabled"/);

    const cases = optionCases(f);
    let merged: Json = {};
    for (const c of cases) {
      // Through the page: the section's form as rendered, with the option changed.
      const before = (await options(f.matter.id)).effective;
      assert.ok(!isSubset(before, c.pageExpect), `${c.option}: the page value differs from the current one`);
      const form = (await optionsForm(f, f.matter.id, c.group)).apply(c.page);
      const saved = await submit(f.b, `${optionsUrl(f.matter.id)}/${c.group}`, form);
      assert.equal(saved.status, 303, `${c.option} (page): ${saved.status} ${shownErrors(saved.text)}`);
      assertSubset((await options(f.matter.id)).effective, c.pageExpect, `${c.option} (page)`);
      await c.also?.(f, 'page');
      for (const bad of c.pageBad) {
        const id = bad.onWip ? f.wip.id : f.matter.id;
        const was = JSON.stringify(await options(id));
        const res = await submit(f.b, `${optionsUrl(id)}/${c.group}`, (await optionsForm(f, id, c.group)).apply(bad.fields));
        assert.equal(res.status, 422, `${c.option} (page, bad ${bad.field}): ${res.status}`);
        assert.match(fieldError(sectionOf(res.text, `bo-${c.group}`), bad.field), bad.message, `${c.option} (page, bad ${bad.field})`);
        assert.equal(JSON.stringify(await options(id)), was, `${c.option} (page, bad ${bad.field}): nothing changed`);
      }

      // Through the API.
      const mid = (await options(f.matter.id)).effective;
      assert.ok(!isSubset(mid, c.apiExpect), `${c.option}: the API value differs from the current one`);
      const body = ok(await f.api.patch(`/matters/${f.matter.id}/billing-options`, { set: c.api }));
      assert.ok(body.overridden.length > 0);
      assertSubset((await options(f.matter.id)).effective, c.apiExpect, `${c.option} (api)`);
      await c.also?.(f, 'api');
      for (const bad of c.apiBad) {
        const id = bad.onWip ? f.wip.id : f.matter.id;
        const was = JSON.stringify(await options(id));
        const res = await f.api.patch(`/matters/${id}/billing-options`, { set: bad.json });
        assert.equal(res.status, 422, `${c.option} (api, bad ${bad.field}): ${res.status} ${res.text.slice(0, 300)}`);
        const fields = res.json().error.fields as Record<string, string>;
        assert.match(fields[bad.field] ?? `(no error for ${bad.field}: ${JSON.stringify(fields)})`, bad.message, `${c.option} (api, bad ${bad.field})`);
        assert.equal(JSON.stringify(await options(id)), was, `${c.option} (api, bad ${bad.field}): nothing changed`);
      }
      merged = deepMerge(merged, c.apiExpect);
    }
    // Later saves of a section kept what earlier rows set.
    assertSubset((await options(f.matter.id)).effective, merged, 'every option as last set');

    // ---- the fixed-fee custom schedule: auto-fill (seed 002's examples), add and delete rows ----
    ok(await f.api.patch(`/matters/${f.matter.id}/billing-options`, { set: { arrangement: 'fixed_fee', quote: { amount: '1000.00' }, fixedFee: { mode: 'custom_schedule', schedule: [] } } }));
    const url = `${optionsUrl(f.matter.id)}/arrangement`;
    const schedule = async () => (await options(f.matter.id)).effective.fixedFee.schedule;
    const autofill = (amount: string) => optionsForm(f, f.matter.id, 'arrangement').then((form) => submit(f.b, url, form.set('autoFillAmount', amount), [['_action', 'autofill']]));
    assert.equal((await autofill('100.00')).status, 303);
    let rows = await schedule();
    assert.deepEqual(rows.map((r) => r.amountMinor), Array(10).fill(10_000), 'quote 1,000.00 by 100.00: 10 rows of 100.00');
    assert.deepEqual(rows.slice(0, 3).map((r) => r.billOn), ['2026-04-01', '2026-05-01', '2026-06-01'], 'a billing cycle apart from the next billing date');
    assert.equal((await autofill('90.00')).status, 303);
    rows = await schedule();
    assert.deepEqual(rows.map((r) => r.amountMinor), [...Array(11).fill(9000), 1000], 'by 90.00: 11 rows of 90.00 and one of 10.00');
    for (const [amount, message] of [['', /is required/], ['2000.00', /must not be more than the amount left to schedule/], ['abc', /./]] as const) {
      const res = await autofill(amount);
      assert.equal(res.status, 422, `auto-fill ${amount}`);
      assert.match(fieldError(res.text, 'autoFillAmount'), message);
      assert.equal((await schedule()).length, 12, 'nothing changed');
    }
    // Add row: the form gets a blank row, saved only with Save.
    const added = await submit(f.b, url, await optionsForm(f, f.matter.id, 'arrangement'), [['_action', 'add-row']]);
    assert.equal(added.status, 200);
    assert.match(added.text, /Not saved yet: press Save to keep the schedule\./);
    assert.equal((await schedule()).length, 12);
    const withRow = Form.of(sectionOf(added.text, 'bo-arrangement'));
    assert.equal(withRow.all('fixedFee.schedule.amountMinor').length, 13);
    withRow.nth('fixedFee.schedule.amountMinor', -1, '50.00').nth('fixedFee.schedule.description', -1, 'Extra hearing');
    assert.equal((await submit(f.b, url, withRow, [['_action', 'save']])).status, 303);
    rows = await schedule();
    assert.equal(rows.length, 13);
    assert.deepEqual([rows[12]!.amountMinor, rows[12]!.description, rows[12]!.billOn], [5000, 'Extra hearing', rows[11]!.billOn]);
    assert.match(unescapeHtml(sectionOf((await f.b.get(optionsUrl(f.matter.id))).text, 'bo-arrangement')), /The custom schedule totals \$1,050\.00, \$50\.00 more than the quote of \$1,000\.00\./);
    // Delete (X): the row leaves the form, and the schedule once saved.
    const deleted = await submit(f.b, url, await optionsForm(f, f.matter.id, 'arrangement'), [['_action', 'delete-row:12']]);
    assert.equal(deleted.status, 200);
    const without = Form.of(sectionOf(deleted.text, 'bo-arrangement'));
    assert.equal(without.all('fixedFee.schedule.amountMinor').length, 12);
    assert.equal((await schedule()).length, 13, 'not saved yet');
    assert.equal((await submit(f.b, url, without, [['_action', 'save']])).status, 303);
    assert.deepEqual((await schedule()).map((r) => r.amountMinor), [...Array(11).fill(9000), 1000]);
    // Bad rows are named by row and column.
    for (const [col, value, message] of [['amountMinor', 'abc', /./], ['amountMinor', '0', /must be more than 0/], ['billOn', '2026-02-30', /must be a date/]] as const) {
      const form = (await optionsForm(f, f.matter.id, 'arrangement')).nth(`fixedFee.schedule.${col}`, 1, value);
      const res = await submit(f.b, url, form, [['_action', 'save']]);
      assert.equal(res.status, 422, `row 1 ${col} ${value}`);
      assert.match(fieldError(res.text, `fixedFee.schedule.1.${col}`), message);
      assert.equal((await schedule()).length, 12);
    }
    // Through the API: rows given (ids assigned), auto-fill, bad rows named.
    const apiRows = ok(await f.api.patch(`/matters/${f.matter.id}/billing-options`, { set: { fixedFee: { schedule: [
      { amount: '400.00', description: 'On signing', billOn: '2026-04-01' },
      { amount: '600.00', description: 'On completion', billOn: '2026-06-01', billOnStep: 'Completion', payOnStep: 'Completion' },
    ] } } })).effective.fixedFee.schedule;
    assert.deepEqual(apiRows.map((r: { amount: string; billOnStep: string | null }) => [r.amount, r.billOnStep]), [['400.00', null], ['600.00', 'Completion']]);
    assert.ok(apiRows.every((r: { rowId: string }) => r.rowId.length > 0));
    const filled = ok(await f.api.post(`/matters/${f.matter.id}/billing-options/auto-fill`, { firstAmount: '90.00' })).effective.fixedFee.schedule;
    assert.deepEqual(filled.map((r: { amount: string }) => r.amount), [...Array(11).fill('90.00'), '10.00']);
    for (const [body, field, message] of [
      [{ set: { fixedFee: { schedule: [{ amount: '0', description: '', billOn: '2026-04-01' }] } } }, 'set.fixedFee.schedule.0.amount', /must be more than 0/],
      [{ set: { fixedFee: { schedule: [{ amount: '10.00', description: '', billOn: '2026-13-01' }] } } }, 'set.fixedFee.schedule.0.billOn', /must be a date/],
    ] as const) {
      const res = await f.api.patch(`/matters/${f.matter.id}/billing-options`, body);
      assert.equal(res.status, 422);
      assert.match(res.json().error.fields[field] ?? '', message, field);
    }
    const noFill = await f.api.post(`/matters/${f.matter.id}/billing-options/auto-fill`, { firstAmount: '2000.00' });
    assert.equal(noFill.status, 422);
    assert.match(noFill.json().error.fields.firstAmount, /must not be more than the amount left to schedule/);
    assert.equal((await schedule()).length, 12);
    final = (await options(f.matter.id)).effective;
  });

  // A restart: a new runtime over the same database reads the same options, and billing's own copy has them.
  await withApp(db, async (t) => {
    const api = new Api(t.browser(), token);
    const read = ok(await api.get(`/matters/${matterId}/billing-options`));
    const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: { kick: () => undefined } });
    assert.deepEqual((await cmds.getBillingOptions(matterId)).effective, final);
    assert.equal(read.effective.discount.amount, '75.50');
    assert.equal(read.effective.ebilling.clientLedesId, 'NW-002');
    await t.runtime.relay.drain();
    const copy = await t.db.db.selectFrom('billing_matter').select(['options_json']).where('id', '=', matterId).executeTakeFirstOrThrow() as { options_json: string };
    assert.deepEqual(JSON.parse(copy.options_json), final, "billing's copy of the options, through billing_options_changed");
  });
}, { timeout: 240_000 });

// ---------------------------------------------------------------------------------------
// The firm's billing settings
// ---------------------------------------------------------------------------------------

/** Where a setting is on the settings page: the general form, or one matter-defaults section. */
type Where = 'general' | 'matter-billing' | 'arrangement' | 'fee-allocation';

interface SettingBad {
  edit: (form: Form) => void;
  field: string;
  message: RegExp;
  before?: (f: Firm) => Promise<void>;
}

interface SettingCase {
  setting: string;
  where: Where;
  page: (form: Form) => void;
  pageExpect: Json;
  api: Json;
  apiExpect: Json;
  pageBad: SettingBad[];
  apiBad: { json: Json; field: string; message: RegExp; before?: (f: Firm) => Promise<void> }[];
  /** After the bad values: put back what a bad value needed. */
  after?: (f: Firm) => Promise<void>;
  also?: (f: Firm, via: 'page' | 'api') => Promise<void>;
}

const TAX = ['taxRates.code', 'taxRates.name', 'taxRates.basisPoints'] as const;
const fields = (v: Fields) => (form: Form) => { form.apply(v); };
const taxRows = (form: Form) => form.rows(TAX).filter((r) => Object.values(r).some((x) => x !== ''));
const editTax = (fn: (rows: Record<string, string>[]) => Record<string, string>[]) => (form: Form) => { form.setRows(TAX, fn(taxRows(form))); };
const tax = (code: string, name: string, rate: string) => ({ 'taxRates.code': code, 'taxRates.name': name, 'taxRates.basisPoints': rate });

function settingCases(f: Firm): SettingCase[] {
  const useRetainer = async (x: Firm) => { await x.cmds.setBillingOptions(ctx, x.matter.id, { set: { generalRetainer: { enabled: true } } }); };
  const stopRetainer = async (x: Firm) => { await x.cmds.setBillingOptions(ctx, x.matter.id, { inherit: ['generalRetainer'] }); };
  return [
    {
      setting: 'tax rates: add', where: 'general',
      page: editTax((rows) => [...rows, tax('gst', 'Goods and services tax', '10')]),
      pageExpect: { taxRates: [{ code: 'EXEMPT', name: 'Exempt', basisPoints: 0 }, { code: 'SALES', name: 'Sales tax', basisPoints: 825 }, { code: 'GST', name: 'Goods and services tax', basisPoints: 1000 }] },
      api: { taxRates: [{ code: 'EXEMPT', name: 'Exempt', percent: '0' }, { code: 'SALES', name: 'Sales tax', percent: '8.25' }, { code: 'GST', name: 'Goods and services tax', percent: '10' }, { code: 'VAT20', name: 'VAT', percent: '20' }] },
      apiExpect: { taxRates: [{ code: 'EXEMPT', name: 'Exempt', basisPoints: 0 }, { code: 'SALES', name: 'Sales tax', basisPoints: 825 }, { code: 'GST', name: 'Goods and services tax', basisPoints: 1000 }, { code: 'VAT20', name: 'VAT', basisPoints: 2000 }] },
      pageBad: [
        { edit: editTax((rows) => [...rows, tax('SALES', 'Again', '5')]), field: 'taxRates.3.code', message: /SALES is listed twice/ },
        { edit: editTax((rows) => [...rows, tax('', 'No code', '5')]), field: 'taxRates.3.code', message: /must be up to 20 capital letters/ },
        { edit: editTax((rows) => [...rows, tax('HST', 'Harmonised', '13.005')]), field: 'taxRates.3.basisPoints', message: /at most 2 decimal places/ },
        { edit: editTax((rows) => [...rows, tax('BIG', 'Too big', '150')]), field: 'taxRates.3.basisPoints', message: /between 0% and 100%/ },
        // The currency (with the other general settings): no code that is not one, and no change once amounts are kept in it (review 54, H2).
        { edit: fields({ currency: 'EURO' }), field: 'currency', message: /must be an ISO 4217 currency code in use, such as USD/ },
        // Three capitals that are no currency: refused, not saved as the firm's currency.
        { edit: fields({ currency: 'nan' }), field: 'currency', message: /must be an ISO 4217 currency code in use/ },
        { edit: fields({ currency: 'eur' }), field: 'currency', message: /^cannot change from USD once amounts are kept in it \(1 standard rate, 2 matters\)/ },
      ],
      apiBad: [
        { json: { currency: 'usd' }, field: 'currency', message: /must be an ISO 4217 currency code in use, such as USD/ },
        { json: { currency: 'QQQ' }, field: 'currency', message: /must be an ISO 4217 currency code in use/ },
        { json: { currency: 'EUR' }, field: 'currency', message: /^cannot change from USD once amounts are kept in it/ },
        { json: { taxRates: [{ code: 'EXEMPT', name: 'Exempt', percent: '101' }] }, field: 'taxRates.0.percent', message: /between 0 and 100/ },
        { json: { taxRates: [{ code: 'EXEMPT', name: 'Exempt', percent: '0' }, { code: 'gst', name: 'GST', percent: '10' }] }, field: 'taxRates.1.code', message: /capital letters/ },
        { json: { taxRates: [] }, field: 'taxRates', message: /at least one tax rate/ },
      ],
    },
    {
      setting: 'tax rates: edit', where: 'general',
      page: editTax((rows) => rows.map((r) => (r['taxRates.code'] === 'SALES' ? tax('SALES', 'State sales tax', '8.5') : r))),
      pageExpect: { taxRates: [{ code: 'EXEMPT', name: 'Exempt', basisPoints: 0 }, { code: 'SALES', name: 'State sales tax', basisPoints: 850 }, { code: 'GST', name: 'Goods and services tax', basisPoints: 1000 }, { code: 'VAT20', name: 'VAT', basisPoints: 2000 }] },
      api: { taxRates: [{ code: 'EXEMPT', name: 'Exempt', percent: '0' }, { code: 'SALES', name: 'State sales tax', percent: '9' }, { code: 'GST', name: 'Goods and services tax', percent: '10' }, { code: 'VAT20', name: 'VAT', percent: '20' }] },
      apiExpect: { taxRates: [{ code: 'EXEMPT', name: 'Exempt', basisPoints: 0 }, { code: 'SALES', name: 'State sales tax', basisPoints: 900 }, { code: 'GST', name: 'Goods and services tax', basisPoints: 1000 }, { code: 'VAT20', name: 'VAT', basisPoints: 2000 }] },
      pageBad: [{ edit: editTax((rows) => rows.map((r) => (r['taxRates.code'] === 'SALES' ? tax('SALES', '', '8.5') : r))), field: 'taxRates.1.name', message: /is required/ }],
      apiBad: [{ json: { taxRates: [{ code: 'EXEMPT', name: '', percent: '0' }] }, field: 'taxRates.0.name', message: /is required/ }],
    },
    {
      setting: 'tax rates: remove', where: 'general',
      page: editTax((rows) => rows.filter((r) => r['taxRates.code'] !== 'VAT20').concat([tax('', '', '')])),
      pageExpect: { taxRates: [{ code: 'EXEMPT', name: 'Exempt', basisPoints: 0 }, { code: 'SALES', name: 'State sales tax', basisPoints: 900 }, { code: 'GST', name: 'Goods and services tax', basisPoints: 1000 }] },
      api: { taxRates: [{ code: 'EXEMPT', name: 'Exempt', percent: '0' }, { code: 'SALES', name: 'State sales tax', percent: '9' }] },
      apiExpect: { taxRates: [{ code: 'EXEMPT', name: 'Exempt', basisPoints: 0 }, { code: 'SALES', name: 'State sales tax', basisPoints: 900 }] },
      pageBad: [{ edit: editTax((rows) => rows.filter((r) => r['taxRates.code'] !== 'EXEMPT')), field: 'defaultFeeTaxCode', message: /must be one of the tax codes: SALES/ }],
      apiBad: [{ json: { taxRates: [{ code: 'SALES', name: 'Sales', percent: '9' }] }, field: 'defaultFeeTaxCode', message: /must be one of the tax codes: SALES/ }],
    },
    {
      setting: 'tax code on fees', where: 'general',
      page: fields({ defaultFeeTaxCode: 'sales' }), pageExpect: { defaultFeeTaxCode: 'SALES' },
      api: { defaultFeeTaxCode: 'EXEMPT' }, apiExpect: { defaultFeeTaxCode: 'EXEMPT' },
      pageBad: [{ edit: fields({ defaultFeeTaxCode: 'NOPE' }), field: 'defaultFeeTaxCode', message: /must be one of the tax codes: EXEMPT, SALES/ }],
      apiBad: [{ json: { defaultFeeTaxCode: 'NOPE' }, field: 'defaultFeeTaxCode', message: /must be one of the tax codes/ }],
    },
    {
      setting: 'tax rounding', where: 'general',
      page: fields({ taxRounding: 'per_bill' }), pageExpect: { taxRounding: 'per_bill' },
      api: { taxRounding: 'per_line' }, apiExpect: { taxRounding: 'per_line' },
      pageBad: [{ edit: fields({ taxRounding: 'sometimes' }), field: 'taxRounding', message: /must be one of: per_line, per_bill/ }],
      apiBad: [{ json: { taxRounding: 'sometimes' }, field: 'taxRounding', message: /must be one of: per_line, per_bill/ }],
    },
    {
      setting: 'default bill template', where: 'matter-billing',
      page: fields({ billTemplate: 'fixed-fee' }), pageExpect: { matterDefaults: { billTemplate: 'fixed-fee' } },
      api: { matterDefaults: { billTemplate: 'total-only' } }, apiExpect: { matterDefaults: { billTemplate: 'total-only' } },
      pageBad: [{ edit: fields({ billTemplate: '' }), field: 'billTemplate', message: /is required/ }],
      apiBad: [{ json: { matterDefaults: { billTemplate: '' } }, field: 'matterDefaults.billTemplate', message: /is required/ }],
      also: async (x, via) => assert.equal((await x.cmds.getBillingOptions(x.matter.id)).effective.billTemplate, via === 'page' ? 'fixed-fee' : 'total-only', 'an inheriting matter follows'),
    },
    {
      setting: 'payment terms', where: 'general',
      page: fields({ paymentTermsDays: '45' }), pageExpect: { paymentTermsDays: 45 },
      api: { paymentTermsDays: 14 }, apiExpect: { paymentTermsDays: 14 },
      pageBad: [
        { edit: fields({ paymentTermsDays: '400' }), field: 'paymentTermsDays', message: /must be between 0 and 365/ },
        { edit: fields({ paymentTermsDays: 'soon' }), field: 'paymentTermsDays', message: /must be a whole number/ },
      ],
      apiBad: [{ json: { paymentTermsDays: 400 }, field: 'paymentTermsDays', message: /365/ }],
    },
    {
      setting: 'time rounding unit', where: 'general',
      page: fields({ timeUnitMinutes: '15' }), pageExpect: { timeUnitMinutes: 15 },
      api: { timeUnitMinutes: 6 }, apiExpect: { timeUnitMinutes: 6 },
      pageBad: [{ edit: fields({ timeUnitMinutes: '0' }), field: 'timeUnitMinutes', message: /must be between 1 and 60/ }],
      apiBad: [{ json: { timeUnitMinutes: 61 }, field: 'timeUnitMinutes', message: /60/ }],
    },
    {
      setting: 'time rounding (up / nearest / down)', where: 'general',
      page: fields({ timeRounding: 'nearest' }), pageExpect: { timeRounding: 'nearest' },
      api: { timeRounding: 'down' }, apiExpect: { timeRounding: 'down' },
      pageBad: [{ edit: fields({ timeRounding: 'sideways' }), field: 'timeRounding', message: /must be one of: up, nearest, down/ }],
      apiBad: [{ json: { timeRounding: 'sideways' }, field: 'timeRounding', message: /must be one of: up, nearest, down/ }],
    },
    {
      setting: 'default time entry behaviour', where: 'arrangement',
      page: fields({ defaultTimeEntryBehaviour: 'no_charge' }), pageExpect: { matterDefaults: { defaultTimeEntryBehaviour: 'no_charge' } },
      api: { matterDefaults: { defaultTimeEntryBehaviour: 'hide' } }, apiExpect: { matterDefaults: { defaultTimeEntryBehaviour: 'hide' } },
      pageBad: [{ edit: fields({ defaultTimeEntryBehaviour: 'sometimes' }), field: 'defaultTimeEntryBehaviour', message: /must be one of: bill, hide, no_charge/ }],
      apiBad: [{ json: { matterDefaults: { defaultTimeEntryBehaviour: 'sometimes' } }, field: 'matterDefaults.defaultTimeEntryBehaviour', message: /must be one of/ }],
      also: async (x, via) => assert.equal((await x.cmds.findMatter(x.matter.id))!.defaultBehaviour, via === 'page' ? 'no_charge' : 'hide', 'an inheriting matter follows'),
    },
    {
      setting: 'fee allocation defaults', where: 'fee-allocation',
      page: fields({ 'feeAllocation.allocateFees': 'selected', 'feeAllocation.feesTimekeeperId': f.mh.id, 'feeAllocation.allocateAdjustments': 'responsible' }),
      pageExpect: { matterDefaults: { feeAllocation: { allocateFees: 'selected', feesTimekeeperId: f.mh.id, allocateAdjustments: 'responsible' } } },
      api: { matterDefaults: { feeAllocation: { allocateFees: 'responsible', feesTimekeeperId: null, allocateAdjustments: 'original_split' } } },
      apiExpect: { matterDefaults: { feeAllocation: { allocateFees: 'responsible', feesTimekeeperId: null, allocateAdjustments: 'original_split' } } },
      pageBad: [
        { edit: fields({ 'feeAllocation.allocateFees': 'selected', 'feeAllocation.feesTimekeeperId': '' }), field: 'feeAllocation.feesTimekeeperId', message: /is required when fees go to a selected timekeeper/ },
        { edit: fields({ 'feeAllocation.originationEnabled': 'on', 'feeAllocation.originatorTimekeeperId': f.as.id, 'feeAllocation.originationBasisPoints': '101' }), field: 'feeAllocation.originationBasisPoints', message: /between 0\.01% and 100%/ },
      ],
      apiBad: [{ json: { matterDefaults: { feeAllocation: { allocateFees: 'selected', feesTimekeeperId: null } } }, field: 'matterDefaults.feeAllocation.feesTimekeeperId', message: /is required when fees go to a selected timekeeper/ }],
    },
    {
      setting: 'general retainers enabled', where: 'general',
      page: fields({ generalRetainersEnabled: 'on' }), pageExpect: { generalRetainersEnabled: true },
      api: { generalRetainersEnabled: false }, apiExpect: { generalRetainersEnabled: false },
      pageBad: [
        { edit: fields({ generalRetainersEnabled: 'maybe' }), field: 'generalRetainersEnabled', message: TICK },
        { before: useRetainer, edit: fields({ generalRetainersEnabled: null }), field: 'generalRetainersEnabled', message: /1 matter still uses a general retainer \(\d+\.\d+\): turn it off on them first/ },
      ],
      apiBad: [{ json: { generalRetainersEnabled: false }, field: 'generalRetainersEnabled', message: /still uses? a general retainer/ }],
      after: stopRetainer,
    },
    {
      setting: 'interest on overdue bills', where: 'general',
      page: fields({ 'interest.enabled': 'on', 'interest.annualRateBasisPoints': '12.5', 'interest.graceDays': '15' }),
      pageExpect: { interest: { enabled: true, annualRateBasisPoints: 1250, graceDays: 15 } },
      api: { interest: { enabled: false, annualRatePercent: '8', graceDays: 30 } }, apiExpect: { interest: { enabled: false, annualRateBasisPoints: 800, graceDays: 30 } },
      pageBad: [
        { edit: fields({ 'interest.annualRateBasisPoints': '150' }), field: 'interest.annualRateBasisPoints', message: /between 0% and 100%/ },
        { edit: fields({ 'interest.graceDays': '400' }), field: 'interest.graceDays', message: /must be between 0 and 365/ },
        { edit: fields({ 'interest.enabled': 'maybe' }), field: 'interest.enabled', message: TICK },
      ],
      apiBad: [
        { json: { interest: { annualRatePercent: '150' } }, field: 'interest.annualRatePercent', message: /between 0 and 100/ },
        { json: { interest: { graceDays: -1 } }, field: 'interest.graceDays', message: /0/ },
      ],
    },
    {
      setting: 'accounting period rule (posting outside the current period)', where: 'general',
      page: fields({ postingOutsideCurrentPeriod: 'refuse' }), pageExpect: { postingOutsideCurrentPeriod: 'refuse' },
      api: { postingOutsideCurrentPeriod: 'warn' }, apiExpect: { postingOutsideCurrentPeriod: 'warn' },
      pageBad: [{ edit: fields({ postingOutsideCurrentPeriod: 'ignore' }), field: 'postingOutsideCurrentPeriod', message: /must be one of: warn, refuse/ }],
      apiBad: [{ json: { postingOutsideCurrentPeriod: 'ignore' }, field: 'postingOutsideCurrentPeriod', message: /must be one of: warn, refuse/ }],
    },
    {
      setting: 'WIP-cap policy', where: 'general',
      page: fields({ wipCapPolicy: 'refuse' }), pageExpect: { wipCapPolicy: 'refuse' },
      api: { wipCapPolicy: 'warn' }, apiExpect: { wipCapPolicy: 'warn' },
      pageBad: [{ edit: fields({ wipCapPolicy: 'ignore' }), field: 'wipCapPolicy', message: /must be one of: warn, refuse/ }],
      apiBad: [{ json: { wipCapPolicy: 'ignore' }, field: 'wipCapPolicy', message: /must be one of: warn, refuse/ }],
    },
  ];
}

eachDialect('every firm billing setting is set on the settings page and through the API, validated by field, kept over a restart and copied to billing', async (db) => {
  let token = '';
  let final: unknown;
  await withApp(db, async (t) => {
    const f = await firm(t);
    token = f.token;
    const settings = () => f.cmds.getFirmSettings();
    const sectionId = (w: Where) => (w === 'general' ? 'firm-general' : `bo-${w}`);
    const path = (w: Where) => (w === 'general' ? '/matters/settings/general' : `/matters/settings/defaults/${w}`);
    const formOf = async (w: Where) => {
      const page = await f.b.get('/matters/settings');
      assert.equal(page.status, 200);
      return Form.of(sectionOf(page.text, sectionId(w)));
    };
    for (const c of settingCases(f)) {
      const before = await settings();
      assert.ok(!isSubset(before, c.pageExpect), `${c.setting}: the page value differs from the current one`);
      const form = await formOf(c.where);
      c.page(form);
      const saved = await submit(f.b, path(c.where), form);
      assert.equal(saved.status, 303, `${c.setting} (page): ${saved.status} ${shownErrors(saved.text)}`);
      assertSubset(await settings(), c.pageExpect, `${c.setting} (page)`);
      await c.also?.(f, 'page');
      for (const bad of c.pageBad) {
        await bad.before?.(f);
        const was = JSON.stringify(await settings());
        const form = await formOf(c.where);
        bad.edit(form);
        const res = await submit(f.b, path(c.where), form);
        assert.equal(res.status, 422, `${c.setting} (page, bad ${bad.field}): ${res.status}`);
        assert.match(fieldError(sectionOf(res.text, sectionId(c.where)), bad.field), bad.message, `${c.setting} (page, bad ${bad.field})`);
        assert.equal(JSON.stringify(await settings()), was, `${c.setting} (page, bad ${bad.field}): nothing changed`);
      }
      for (const bad of c.apiBad) {
        await bad.before?.(f);
        const was = JSON.stringify(await settings());
        const res = await f.api.patch('/settings/billing', bad.json);
        assert.equal(res.status, 422, `${c.setting} (api, bad ${bad.field}): ${res.status} ${res.text.slice(0, 300)}`);
        const errs = res.json().error.fields as Record<string, string>;
        assert.match(errs[bad.field] ?? `(no error for ${bad.field}: ${JSON.stringify(errs)})`, bad.message, `${c.setting} (api, bad ${bad.field})`);
        assert.equal(JSON.stringify(await settings()), was, `${c.setting} (api, bad ${bad.field}): nothing changed`);
      }
      await c.after?.(f);
      assert.ok(!isSubset(await settings(), c.apiExpect), `${c.setting}: the API value differs from the current one`);
      ok(await f.api.patch('/settings/billing', c.api));
      assertSubset(await settings(), c.apiExpect, `${c.setting} (api)`);
      await c.also?.(f, 'api');
    }
    // A reader of the settings page (billing) sees them but may not change them.
    final = await settings();
  });

  await withApp(db, async (t) => {
    const api = new Api(t.browser(), token);
    const read = ok(await api.get('/settings/billing'));
    assert.deepEqual([read.currency, read.paymentTermsDays, read.wipCapPolicy, read.postingOutsideCurrentPeriod, read.interest.annualRatePercent],
      ['USD', 14, 'warn', 'warn', '8']);
    const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: { kick: () => undefined } });
    assert.deepEqual(await cmds.getFirmSettings(), final);
    await t.runtime.relay.drain();
    const copy = await t.db.db.selectFrom('billing_firm_settings').select(['settings_json']).where('id', '=', 'firm').executeTakeFirstOrThrow() as { settings_json: string };
    assert.deepEqual(JSON.parse(copy.settings_json), final, "billing's copy of the settings, through firm_settings_changed");
  });
}, { timeout: 240_000 });
