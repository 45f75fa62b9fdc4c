/**
 * Shared setup for the ledger tests: the real runtime (bus, relay, every module), the REAL
 * matters and billing commands to make bills, and the ledger's commands. Tests read the
 * ledger's tables (and billing's, only to compare) to check what happened.
 */
import assert from 'node:assert/strict';
import { createLedgerCommands, createLedgerReports } from '../../src/modules/ledger/index.ts';
import type { Executor } from '../../src/shared/db.ts';
import type { TestDb } from '../support/db.ts';
import { setup as billingSetup } from '../billing/support.ts';
import { ctx as billingCtx, firm as billingFirm, work as billingWork } from '../billing/support.ts';
import { createBillingCommands } from '../../src/modules/billing/index.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { createMassBilling } from '../../src/modules/billing/mass-commands.ts';
import type { TestApp } from '../support/app.ts';
import type { Relay } from '../../src/shared/outbox.ts';

export { ctx, firm, refused, work } from '../billing/support.ts';

export async function setup(db: TestDb, opts: { start?: string } = {}) {
  const s = await billingSetup(db, opts);
  const ledger = createLedgerCommands({ db: db.db, clock: s.clock, relay: s.rt.relay });
  const reports = createLedgerReports(db.db, s.clock);
  return { ...s, ledger, reports };
}

export type LedgerSetup = Awaited<ReturnType<typeof setup>>;

const n = (v: unknown) => Number(v ?? 0);

export interface JournalView {
  number: string;
  date: string;
  period: string;
  note: string | null;
  lines: [string, number, number, string | null][];
}

/** Journals as a bookkeeper reads them: number, date, period, and [account code, debit, credit, bill] lines. */
export async function journals(db: Executor, where: { billId?: string; prefix?: string } = {}): Promise<JournalView[]> {
  let q = db.selectFrom('ledger_journal').selectAll();
  if (where.billId) q = q.where('bill_id', '=', where.billId);
  if (where.prefix) q = q.where('prefix', '=', where.prefix);
  const js = await q.orderBy('number').execute();
  const out: JournalView[] = [];
  for (const j of js) {
    const lines = await db.selectFrom('ledger_journal_line as l').innerJoin('ledger_account as a', 'a.id', 'l.account_id')
      .select(['a.code', 'l.debit_minor', 'l.credit_minor', 'l.bill_id']).where('l.journal_id', '=', j.id).orderBy('l.line_no').execute();
    out.push({ number: String(j.number), date: String(j.date), period: String(j.period), note: (j.note as string | null) ?? null, lines: lines.map((l) => [String(l.code), n(l.debit_minor), n(l.credit_minor), (l.bill_id as string | null) ?? null]) });
  }
  return out;
}

export async function balanceOf(db: Executor, code: string): Promise<number> {
  const r = await db.selectFrom('ledger_journal_line as l').innerJoin('ledger_account as a', 'a.id', 'l.account_id').where('a.code', '=', code)
    .select((eb) => [eb.fn.sum<number>('l.debit_minor').as('d'), eb.fn.sum<number>('l.credit_minor').as('c')]).executeTakeFirstOrThrow() as { d: unknown; c: unknown };
  return n(r.d) - n(r.c);
}

/**
 * The ledger's invariants, from its tables:
 *  - every journal balances (lines and header), and so does the whole ledger (trial balance);
 *  - debtors control = the sum of open bills' outstanding, and per bill the debtors lines equal its outstanding;
 *  - office bank = receipts less reversed ones and less refunds standing; unallocated receipts = the receipts' credit;
 *  - every receipt's credit = its amount less its live allocations and refunds standing; every bill's paid = its live allocations;
 *  - journals are unique per source and a journal is reversed at most once (the database says so too).
 * With `billing`, also: the open bills are exactly billing's approved and finalised bills, at the same totals.
 */
export async function assertLedgerInvariants(db: Executor, opts: { billing?: boolean } = {}): Promise<void> {
  const js = await db.selectFrom('ledger_journal').select(['id', 'number', 'total_debit_minor', 'total_credit_minor']).execute();
  const sums = await db.selectFrom('ledger_journal_line').select('journal_id')
    .select((eb) => [eb.fn.sum<number>('debit_minor').as('d'), eb.fn.sum<number>('credit_minor').as('c')]).groupBy('journal_id').execute();
  const byJ = new Map(sums.map((s) => [String(s.journal_id), { d: n(s.d), c: n(s.c) }]));
  for (const j of js) {
    const s = byJ.get(String(j.id));
    assert.ok(s, `journal ${j.number} has lines`);
    assert.equal(s.d, s.c, `journal ${j.number} balances`);
    assert.equal(n(j.total_debit_minor), s.d, `journal ${j.number} header matches its lines`);
  }
  const all = await db.selectFrom('ledger_journal_line').select((eb) => [eb.fn.sum<number>('debit_minor').as('d'), eb.fn.sum<number>('credit_minor').as('c')]).executeTakeFirstOrThrow();
  assert.equal(n(all.d), n(all.c), 'the trial balance balances');
  const bills = await db.selectFrom('ledger_bill').selectAll().execute();
  const outstanding = (b: Record<string, unknown>) => b.status === 'open' ? n(b.total_minor) + n(b.discount_reversed_minor) - n(b.paid_minor) - n(b.written_off_minor) : 0;
  const debtors = await balanceOf(db, '1100');
  assert.equal(debtors, bills.reduce((s, b) => s + outstanding(b), 0), 'debtors control = the sum of open bills\' outstanding');
  const perBill = await db.selectFrom('ledger_journal_line as l').innerJoin('ledger_account as a', 'a.id', 'l.account_id').where('a.code', '=', '1100')
    .select('l.bill_id').select((eb) => [eb.fn.sum<number>('l.debit_minor').as('d'), eb.fn.sum<number>('l.credit_minor').as('c')]).groupBy('l.bill_id').execute();
  const debtorsOf = new Map(perBill.map((r) => [String(r.bill_id), n(r.d) - n(r.c)]));
  for (const b of bills) {
    assert.equal(debtorsOf.get(String(b.id)) ?? 0, outstanding(b), `bill ${b.number}: its debtors lines equal its outstanding`);
    assert.ok(outstanding(b) >= 0, `bill ${b.number} is not overpaid`);
    const live = await db.selectFrom('ledger_allocation').select((eb) => eb.fn.sum<number>('amount_minor').as('s')).where('bill_id', '=', String(b.id)).where('released_on', 'is', null).executeTakeFirstOrThrow();
    assert.equal(b.status === 'open' ? n(b.paid_minor) : 0, n(live.s), `bill ${b.number}: paid = its live allocations`);
  }
  const receipts = await db.selectFrom('ledger_receipt').selectAll().execute();
  let credit = 0;
  let bank = 0;
  for (const r of receipts) {
    const live = await db.selectFrom('ledger_allocation').select((eb) => eb.fn.sum<number>('amount_minor').as('s')).where('receipt_id', '=', String(r.id)).where('released_on', 'is', null).executeTakeFirstOrThrow();
    const refunded = await db.selectFrom('ledger_refund').select((eb) => eb.fn.sum<number>('amount_minor').as('s')).where('receipt_id', '=', String(r.id)).where('reversal_journal_id', 'is', null).executeTakeFirstOrThrow();
    if (r.status === 'posted') {
      assert.equal(n(r.unallocated_minor), n(r.amount_minor) - n(live.s) - n(refunded.s), `receipt ${r.number}: credit = amount - live allocations - refunds not taken back`);
      credit += n(r.unallocated_minor);
      bank += n(r.amount_minor) - n(refunded.s);
    } else {
      assert.equal(n(refunded.s), 0, `reversed receipt ${r.number} has no refund standing`);
      assert.equal(n(live.s), 0, `reversed receipt ${r.number} has no live allocation`);
      assert.equal(n(r.unallocated_minor), 0);
    }
  }
  assert.equal(await balanceOf(db, '2100'), 0 - credit, 'unallocated receipts = the receipts\' credit');
  assert.equal(await balanceOf(db, '1000'), bank, 'office bank = the receipts not reversed, less refunds standing');
  if (opts.billing) {
    const posted = await db.selectFrom('billing_bill').select(['id', 'total_minor', 'number']).where('status', 'in', ['approved', 'finalised']).execute();
    const open = bills.filter((b) => b.status === 'open');
    assert.deepEqual(open.map((b) => String(b.id)).sort(), posted.map((b) => String(b.id)).sort(), 'the open bills are billing\'s posted bills');
    for (const p of posted) assert.equal(n(open.find((b) => b.id === p.id)!.total_minor), n(p.total_minor), `bill ${p.number} posted at its total`);
  }
}

/**
 * The books as at each date (journal lines dated on or before it), the way reports read them:
 * no bill's debtors below zero or above the largest total it was ever posted at (a bill counted
 * twice, or paid before it was posted), and the receipts' unallocated credit never below zero
 * (money allocated twice, or before it was received).
 */
export async function assertBooksAsAt(db: Executor, dates: readonly string[]): Promise<void> {
  const lines = await db.selectFrom('ledger_journal_line as l').innerJoin('ledger_account as a', 'a.id', 'l.account_id')
    .innerJoin('ledger_journal as j', 'j.id', 'l.journal_id')
    .select(['a.code', 'l.date', 'l.debit_minor', 'l.credit_minor', 'l.bill_id', 'j.prefix', 'j.number']).execute();
  const postedAt = new Map<string, number>();
  for (const l of lines) {
    if (l.code === '1100' && l.prefix === 'BJ' && l.bill_id) postedAt.set(String(l.bill_id), Math.max(postedAt.get(String(l.bill_id)) ?? 0, n(l.debit_minor)));
  }
  // Each bill's postings as posted (review 62 F1): the reports as at a date describe the one standing then.
  const postings = await db.selectFrom('ledger_bill_posting').select(['bill_id', 'counts_from', 'undone_on']).execute();
  for (const d of dates) {
    const upTo = lines.filter((l) => String(l.date) <= d);
    const perBill = new Map<string, number>();
    for (const l of upTo.filter((x) => x.code === '1100' && x.bill_id)) perBill.set(String(l.bill_id), (perBill.get(String(l.bill_id)) ?? 0) + n(l.debit_minor) - n(l.credit_minor));
    for (const [bill, v] of perBill) {
      assert.ok(v >= 0, `as at ${d}: bill ${bill} has debtors ${v}, below zero`);
      assert.ok(v <= (postedAt.get(bill) ?? 0), `as at ${d}: bill ${bill} has debtors ${v}, over its posted total ${postedAt.get(bill)}`);
      if (v > 0) assert.ok(postings.some((p) => String(p.bill_id) === bill && String(p.counts_from) <= d), `as at ${d}: bill ${bill} owes with no posting of it by then`);
    }
    const standing = new Map<string, number>();
    for (const p of postings) if (String(p.counts_from) <= d && (p.undone_on === null || String(p.undone_on) > d)) standing.set(String(p.bill_id), (standing.get(String(p.bill_id)) ?? 0) + 1);
    for (const [bill, k] of standing) assert.ok(k === 1, `as at ${d}: ${k} postings of bill ${bill} stand at once`);
    const credit = upTo.filter((x) => x.code === '2100').reduce((s, l) => s + n(l.credit_minor) - n(l.debit_minor), 0);
    assert.ok(credit >= 0, `as at ${d}: unallocated receipts ${credit}, below zero`);
  }
  // Each receipt's own credit as at each date (review 59 F7: one receipt below zero hid behind another's credit in the
  // total): its amount once received, less what paid bills and what was refunded then (not yet back); none once reversed.
  const receipts = await db.selectFrom('ledger_receipt').select(['id', 'number', 'amount_minor', 'received_on', 'status', 'reversed_on']).execute();
  const allocs = await db.selectFrom('ledger_allocation').select(['receipt_id', 'amount_minor', 'allocated_on', 'released_on']).execute();
  const refunds = await db.selectFrom('ledger_refund').select(['receipt_id', 'amount_minor', 'refunded_on', 'reversed_on']).execute();
  const away = (rows: { receipt_id: unknown; amount_minor: unknown }[], from: (r: any) => string, back: (r: any) => string | null, id: string, d: string) =>
    rows.filter((r) => String(r.receipt_id) === id && from(r) <= d && !(back(r) !== null && back(r)! <= d)).reduce((t, r) => t + n(r.amount_minor), 0);
  for (const r of receipts) {
    for (const d of dates) {
      if (String(r.received_on) > d || (r.status === 'reversed' && String(r.reversed_on) <= d)) continue;
      const left = n(r.amount_minor) - away(allocs, (a) => String(a.allocated_on), (a) => (a.released_on as string | null), String(r.id), d)
        - away(refunds, (x) => String(x.refunded_on), (x) => (x.reversed_on as string | null), String(r.id), d);
      assert.ok(left >= 0, `as at ${d}: receipt ${r.number}'s credit ${left}, below zero`);
    }
  }
}

/**
 * A firm with work and one bill approved (so on the debtors ledger), through the real matters
 * and billing commands, every event delivered; `rt` is the runtime (its database, clock, relay).
 */
export async function approvedBill(rt: { db: Executor & Parameters<typeof createMattersCommands>[0]['db']; clock: Parameters<typeof createMattersCommands>[0]['clock']; relay: Relay }) {
  const deps = { db: rt.db, clock: rt.clock, relay: rt.relay };
  const cmds = createMattersCommands(deps);
  const billing = createBillingCommands(deps);
  const f = await billingFirm(cmds);
  await billingWork(cmds, f.matter.id, f);
  await rt.relay.drain();
  const draft = await billing.createDraft(billingCtx, { matterId: f.matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' });
  const bill = await billing.approve(billingCtx, draft.billId);
  await rt.relay.drain();
  return { f, bill, billing };
}

/** A ledger setup (setup) with the billing firm's work on one bill dated 28 February, approved and delivered. */
export async function setupWithApprovedBill(db: TestDb, opts: { start?: string } = {}) {
  const s = await setup(db, opts);
  const f = await billingFirm(s.cmds);
  await billingWork(s.cmds, f.matter.id, f);
  await s.drain();
  const draft = await s.billing.createDraft(billingCtx, { matterId: f.matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' });
  const bill = await s.billing.approve(billingCtx, draft.billId);
  await s.drain();
  return { s, f, bill };
}

/** For the ledger's page tests: approvedBill, and an admin signed in with the session's CSRF token. */
export async function billedWithAdmin(t: TestApp) {
  const { f, bill } = await approvedBill({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
  await t.user('admin');
  const admin = t.browser();
  await admin.login('admin@firm.test');
  await admin.get('/ledger'); // the signed-in session's CSRF token
  return { f, bill, admin };
}

/**
 * A matter of the firm's client billed in yen: an hour of work at `rateMinor` yen (and what
 * `more` records on it), billed up to 28 February by mass billing and approved, delivered.
 */
export async function approvedYenBill(t: TestApp, f: { client: { id: string }; partner: { id: string } }, rateMinor: number,
  more: (cmds: ReturnType<typeof createMattersCommands>, matterId: string) => Promise<unknown> = async () => undefined): Promise<{ billId: string; totalMinor: number }> {
  const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
  const billing = createBillingCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
  const yen = await cmds.openMatter(billingCtx, { clientId: f.client.id, name: 'Tokyo lease', responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01', currency: 'JPY' });
  await cmds.recordTimeEntry(billingCtx, { matterId: yen.id, timekeeperId: f.partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Lease review', override: { rateMinor, reason: 'yen rate' } });
  await more(cmds, yen.id);
  await t.runtime.relay.drain();
  const m = createMassBilling({ db: t.db.db, clock: t.clock, relay: t.runtime.relay }, billing);
  await m.draftMatters(billingCtx, [yen.id], { invoiceDate: '2026-02-28', upTo: '2026-02-28', request: {} });
  const draft = await t.db.db.selectFrom('billing_bill').select(['id', 'total_minor']).where('status', '=', 'draft').executeTakeFirstOrThrow();
  assert.ok((await m.approveMany(billingCtx, [draft.id as string]))[0]!.ok);
  await t.runtime.relay.drain();
  return { billId: draft.id as string, totalMinor: Number(draft.total_minor) };
}

/**
 * One bill of 300.00 (one partner hour, 10 February) dated 28 February, approved and delivered;
 * with `discount`, a time-sensitive percentage discount (basis points) valid until its date.
 */
export async function oneHourBill(s: LedgerSetup, discount?: { bp: number; validUntil: string }) {
  const t = await billingFirm(s.cmds);
  await s.cmds.recordTimeEntry(billingCtx, { matterId: t.matter.id, timekeeperId: t.partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice' });
  await s.drain();
  const draft = await s.billing.createDraft(billingCtx, {
    matterId: t.matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28',
    request: discount ? { discount: { kind: 'percentage', percentBasisPoints: discount.bp, amountMinor: 0, validUntil: discount.validUntil } } : {},
  });
  const bill = await s.billing.approve(billingCtx, draft.billId);
  await s.drain();
  return { t, bill };
}

/** 10% a year, simple, half up: the figure a bookkeeper works out by hand. */
export const tenPct = (balanceMinor: number, days: number) => Math.floor((balanceMinor * 1_000 * days * 2 + 10_000 * 365) / (2 * 10_000 * 365));

/** The ledger set-up with a firm on 30 days' terms charging interest by policy at 10% a year, no grace days, its work recorded and delivered. */
export async function interestFirm(db: TestDb) {
  const s = await setup(db);
  const t = await billingFirm(s.cmds);
  await s.cmds.updateFirmSettings(billingCtx, { paymentTermsDays: 30, interest: { enabled: true, annualRateBasisPoints: 1_000, graceDays: 0 } });
  await billingWork(s.cmds, t.matter.id, t);
  await s.drain();
  return { s, t };
}
