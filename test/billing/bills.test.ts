/**
 * The life of a bill over the whole runtime on both databases: drafts composed from
 * billing's copy of the REAL matters commands' work, every transition and refusal (with
 * its reason), gapless numbering (seed 003), the retainer request (seed 002), the events
 * and what they carry, and matters following the bills (item statuses, schedule rows).
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import type { BillingEvents } from '../../src/modules/billing/events.ts';
import { checkItemsFree } from '../../src/modules/billing/bill-store.ts';
import { MATTERS_BILL_HANDLER, mattersBillSubscriptions } from '../../src/modules/matters/subscriptions.ts';
import { assertBillInvariants, ctx, firm, mattersStatus, refused, setup, twoInstalments, work } from './support.ts';

async function eventsOf<K extends keyof BillingEvents & string>(db: { selectFrom: any }, type: K): Promise<BillingEvents[K][]> {
  const rows = await db.selectFrom('outbox').select(['payload']).where('type', '=', type).orderBy('seq').execute() as { payload: string }[];
  return rows.map((r) => JSON.parse(r.payload) as BillingEvents[K]);
}

eachDialect('a draft is composed from the copy: lines, totals, allocation; matters marks its items draft', async (db) => {
  const s = await setup(db);
  const { partner, associate, matter } = await firm(s.cmds);
  const { t1, t2, d1, d2 } = await work(s.cmds, matter.id, { partner, associate });
  const late = await s.cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-03-01', rawMinutes: 60, narrative: 'After the cut-off' });
  await s.drain();

  const bill = await s.billing.createDraft(ctx, { matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' });
  assert.equal(bill.status, 'draft');
  assert.equal(bill.number, null, 'no number until approved');
  assert.deepEqual(bill.items.map((i) => i.id).sort(), [t1.id, t2.id, d1.id, d2.id].sort(), 'items up to the cut-off');
  assert.deepEqual(bill.totals, {
    feesMinor: 60_000 + 30_000, fixedChargesMinor: 0, disbursementsMinor: 35_000 + 1_500, discountMinor: 0, interestMinor: 0,
    taxMinor: 0, totalMinor: 90_000 + 36_500, netFeesMinor: 90_000,
  }, 'fees and disbursements; the firm\'s default tax code is EXEMPT');
  assert.deepEqual(Object.fromEntries(bill.allocations.map((a) => [a.timekeeperId, a.amountMinor])), { [partner.id]: 60_000, [associate.id]: 30_000 });
  assert.equal(bill.dueDate, '2026-03-30');
  const line = bill.lines.find((l) => l.itemId === t1.id)!;
  assert.deepEqual([line.kind, line.itemKind, line.timekeeperId, line.minutes, line.rateMinor, line.amountMinor, line.taskCode, line.activityCode],
    ['time', 'time', partner.id, 120, 30_000, 60_000, 'L110', 'A101']);
  const filing = bill.lines.find((l) => l.itemId === d1.id)!;
  assert.deepEqual([filing.code, filing.expenseCode, filing.taxCode], ['COURT', 'E112', 'EXEMPT']);

  // The event carries the bill without its lines (a draft's lines are billing's own); matters marks the items draft and keeps the late one unbilled.
  const [drafted] = await eventsOf(db.db, 'billing.bill_drafted');
  assert.deepEqual(drafted, {
    billId: bill.billId, status: 'draft', number: null, sequence: null, matterId: matter.id, clientId: matter.clientId, fileNumber: '1.1',
    currency: 'USD', invoiceDate: '2026-02-28', upTo: '2026-02-28', dueDate: '2026-03-30', allocations: bill.allocations,
    totals: bill.totals, discount: null, retainerBalanceMinor: null, retainerRequestMinor: 0, retainerAppliedMinor: 0, scheduleRowIds: [], items: bill.items,
    hideLinePricing: false, batchId: null, version: 1,
  });
  await s.drain();
  assert.deepEqual(await mattersStatus(db.db, [t1.id, t2.id, d1.id, d2.id, late.id]),
    { [t1.id]: 'draft', [t2.id]: 'draft', [d1.id]: 'draft', [d2.id]: 'draft', [late.id]: 'unbilled' });
  // The matter page's locks: an item on a bill cannot be changed.
  await refused(s.cmds.updateTimeEntry(ctx, t1.id, { rawMinutes: 30 }));
  assert.equal((await s.billing.findBill(bill.billId))?.totals.totalMinor, bill.totals.totalMinor, 'stored as composed');
  const audits = await db.db.selectFrom('audit_log').select(['action', 'entity_id']).where('action', 'like', 'billing.%').execute();
  assert.deepEqual(audits.map((a) => [a.action, a.entity_id]), [['billing.bill_drafted', bill.billId]]);
  await assertBillInvariants(db.db, s.billing, [matter.id]);
});

eachDialect('every transition and its refusals, with reasons', async (db) => {
  const s = await setup(db);
  const { partner, associate, matter, client } = await firm(s.cmds);
  const { t1, t2, d1, d2 } = await work(s.cmds, matter.id, { partner, associate });
  const empty = await s.cmds.openMatter(ctx, { clientId: client.id, name: 'Nothing recorded', responsibleTimekeeperId: partner.id });
  const off = await s.cmds.openMatter(ctx, { clientId: client.id, name: 'Billing off', responsibleTimekeeperId: partner.id });
  await s.cmds.setBillingOptions(ctx, off.id, { set: { billingEnabled: false } });
  const closed = await s.cmds.openMatter(ctx, { clientId: client.id, name: 'Closed for billing', responsibleTimekeeperId: partner.id });
  await s.cmds.recordTimeEntry(ctx, { matterId: closed.id, timekeeperId: partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Work' });
  await s.cmds.setBillingOptions(ctx, closed.id, { set: { billingStatus: 'closed' } });
  await s.drain();
  const B = s.billing;
  const dates = { invoiceDate: '2026-02-28', upTo: '2026-02-28' };

  type Step = { name: string; run: () => Promise<unknown>; refused?: RegExp; status?: 404 | 409 | 422 };
  let billId = '';
  let readBeforeRevert: Awaited<ReturnType<typeof B.approve>> | null = null;
  const steps: Step[] = [
    { name: 'billing off', run: () => B.createDraft(ctx, { matterId: off.id, ...dates }), refused: /Billing is turned off/ },
    { name: 'closed for billing', run: () => B.createDraft(ctx, { matterId: closed.id, ...dates }), refused: /closed for billing/ },
    { name: 'no billable items', run: () => B.createDraft(ctx, { matterId: empty.id, ...dates }), refused: /No billable items on or before 2026-02-28/ },
    { name: 'unknown matter', run: () => B.createDraft(ctx, { matterId: 'nope', ...dates }), refused: /Matter not found/, status: 404 },
    { name: 'up-to after the invoice date', run: () => B.createDraft(ctx, { matterId: matter.id, invoiceDate: '2026-02-01', upTo: '2026-02-28' }), refused: /upTo/, status: 422 },
    { name: 'write-down below zero', run: () => B.createDraft(ctx, { matterId: matter.id, ...dates, request: { writeTo: { timekeeper: { [partner.id]: -1 } } } }), refused: /writeTo/, status: 422 },
    { name: 'write a timekeeper with no time', run: () => B.createDraft(ctx, { matterId: matter.id, ...dates, request: { writeTo: { timekeeper: { nobody: 100 } } } }), refused: /no billable time for timekeeper nobody/, status: 422 },
    { name: 'draft', run: async () => { billId = (await B.createDraft(ctx, { matterId: matter.id, ...dates })).billId; } },
    { name: 'a second draft', run: () => B.createDraft(ctx, { matterId: matter.id, ...dates }), refused: /already has a draft/ },
    { name: 'finalise a draft', run: () => B.finalise(ctx, billId), refused: /Only an approved bill can be finalised; this bill is draft/ },
    { name: 'revert a draft', run: () => B.revert(ctx, billId), refused: /Only an approved bill can be reverted/ },
    { name: 'redraft a draft', run: () => B.redraft(ctx, billId), refused: /Only a finalised bill can be re-drafted/ },
    { name: 'hold', run: () => B.setOnHold(ctx, billId, true) },
    { name: 'approve on hold', run: () => B.approve(ctx, billId), refused: /on hold/ },
    { name: 'release', run: () => B.setOnHold(ctx, billId, false) },
    { name: 'update with a stale version', run: () => B.updateDraft(ctx, billId, { expectedVersion: 1 }), refused: /changed by someone else/ },
    { name: 'toggle an item out', run: () => B.updateDraft(ctx, billId, { request: { excludedIds: [t2.id] } }) },
    { name: 'approve', run: async () => { readBeforeRevert = await B.approve(ctx, billId); } },
    { name: 'approve twice', run: () => B.approve(ctx, billId), refused: /Only a draft can be approved; this bill is approved/ },
    { name: 'edit an approved bill', run: () => B.updateDraft(ctx, billId, {}), refused: /revert it to draft first/ },
    { name: 'redraft an approved bill', run: () => B.redraft(ctx, billId), refused: /Only a finalised bill/ },
    { name: 'revert', run: () => B.revert(ctx, billId) },
    { name: 'approve again', run: () => B.approve(ctx, billId) },
    // Production finalises the bill as it read it: approved again since, that read is stale.
    { name: 'finalise as read before the revert', run: () => B.finaliseRead(ctx, readBeforeRevert!), refused: /changed by someone else/ },
    { name: 'finalise', run: () => B.finalise(ctx, billId) },
    { name: 'finalise as read once finalised', run: async () => B.finaliseRead(ctx, (await B.findBill(billId))!), refused: /this bill is finalised/ },
    { name: 'finalise twice', run: () => B.finalise(ctx, billId), refused: /this bill is finalised/ },
    { name: 'edit a finalised bill', run: () => B.updateDraft(ctx, billId, {}), refused: /re-draft it first/ },
    { name: 'a second bill for the deferred item', run: () => B.createDraft(ctx, { matterId: matter.id, ...dates }) },
    { name: 'redraft while the matter has a draft', run: () => B.redraft(ctx, billId), refused: /already has a draft/ },
    { name: 'unknown bill', run: () => B.approve(ctx, 'nope'), refused: /Bill not found/, status: 404 },
  ];
  for (const step of steps) {
    if (step.refused) {
      const e = await refused(step.run(), step.status ?? 409);
      assert.match(`${e.message} ${JSON.stringify(e.fields)}`, step.refused, step.name);
    } else {
      await step.run();
    }
    await assertBillInvariants(db.db, B, [matter.id]);
  }
  const first = (await B.findBill(billId))!;
  assert.deepEqual([first.status, first.number, first.items.map((i) => i.id).sort()], ['finalised', '1.1.1', [t1.id, d1.id, d2.id].sort()]);
  const second = (await B.listBills(matter.id)).find((b) => b.status === 'draft')!;
  assert.deepEqual(second.items.map((i) => i.id), [t2.id], 'the deferred item is on the next bill');

  // The first (finalised) bill is not the most recent once the second is numbered.
  await B.approve(ctx, second.billId);
  const e = await refused(B.deleteBill(ctx, billId));
  assert.match(e.message, /Only the most recent bill on the matter can be deleted/);
  const actions = await B.actionsFor(first);
  assert.deepEqual([actions.redraft.allowed, actions.delete.allowed, actions.approve.allowed], [true, false, false]);
  // Re-draft the first (postings reversed, receipts to re-allocate recorded), delete the second.
  await B.redraft(ctx, billId);
  // Back in draft, 1.1.1 is still not the most recent bill: re-drafting is no way round seed 003's rule.
  const notLatest = await refused(B.deleteBill(ctx, billId));
  assert.match(notLatest.message, /Only the most recent bill on the matter can be deleted: change this draft and approve it again/);
  assert.equal((await B.actionsFor((await B.findBill(billId))!)).delete.allowed, false, 'the page offers no Delete either');
  const redrafted = (await eventsOf(db.db, 'billing.bill_redrafted'))[0]!;
  assert.deepEqual([redrafted.status, redrafted.reversed.status, redrafted.reversed.number, redrafted.receiptsToReallocateMinor], ['draft', 'finalised', '1.1.1', 0]);
  assert.deepEqual(redrafted.reversed.lines, first.lines, 'the exact reversal data');
  const deleted = await B.deleteBill(ctx, second.billId);
  assert.deepEqual([deleted.status, deleted.number], ['deleted', '1.1.2'], 'the number stays, void');
  const [del] = await eventsOf(db.db, 'billing.bill_deleted');
  assert.deepEqual([del!.previousStatus, del!.reversed.status, del!.releasedItems.map((i) => i.id)], ['approved', 'approved', [t2.id]]);
  await assertBillInvariants(db.db, B, [matter.id]);
  await s.drain();
  assert.deepEqual(await mattersStatus(db.db, [t1.id, t2.id]), { [t1.id]: 'draft', [t2.id]: 'unbilled' });
});

eachDialect('seed 003 numbering: the first bill on 12.8 is 12.8.1; numbers stay gapless across approve, revert and delete', async (db) => {
  const s = await setup(db);
  await s.cmds.getFirmSettings();
  const tk = await s.cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  await s.cmds.setTimekeeperRate(ctx, { timekeeperId: tk.id, effectiveFrom: '2025-01-01', rateMinor: 30_000 });
  let client = null;
  for (let i = 1; i <= 12; i++) client = await s.cmds.createClient(ctx, { name: `Client ${i}` });
  let matter = null;
  for (let i = 1; i <= 8; i++) matter = await s.cmds.openMatter(ctx, { clientId: client!.id, name: `Matter ${i}`, responsibleTimekeeperId: tk.id });
  assert.equal(matter!.fileNumber, '12.8');
  const record = (day: number) => s.cmds.recordTimeEntry(ctx, { matterId: matter!.id, timekeeperId: tk.id, workDate: `2026-02-${String(day).padStart(2, '0')}`, rawMinutes: 60, narrative: `Day ${day}` });
  await record(1);
  await s.drain();
  const B = s.billing;
  const draft = (upTo: string) => B.createDraft(ctx, { matterId: matter!.id, invoiceDate: '2026-02-28', upTo });

  // An unnumbered draft deleted uses no number.
  await B.deleteDraft(ctx, (await draft('2026-02-28')).billId);
  await s.drain();
  const a = await draft('2026-02-28');
  assert.equal((await B.approve(ctx, a.billId)).number, '12.8.1', 'seed 003: the first bill on file 12.8');
  assert.equal((await B.revert(ctx, a.billId)).number, '12.8.1', 'reverted to draft, it keeps its number');
  assert.equal((await B.approve(ctx, a.billId)).number, '12.8.1', 'and gets it again');
  await record(2);
  await s.drain();
  const b = await draft('2026-02-28');
  assert.equal((await B.approve(ctx, b.billId)).number, '12.8.2');
  await B.revert(ctx, b.billId);
  await B.deleteDraft(ctx, b.billId);
  assert.equal((await B.findBill(b.billId))?.status, 'deleted');
  await s.drain();
  const c = await draft('2026-02-28');
  assert.equal((await B.approve(ctx, c.billId)).number, '12.8.3', '12.8.2 is void, never reused');
  await B.finalise(ctx, c.billId);
  await B.deleteBill(ctx, c.billId);
  await s.drain();
  const d = await draft('2026-02-28');
  assert.equal((await B.approve(ctx, d.billId)).number, '12.8.4');
  const all = await B.listBills(matter!.id, { includeDeleted: true });
  assert.deepEqual(all.filter((x) => x.number).map((x) => [x.number, x.status]).sort(), [
    ['12.8.1', 'approved'], ['12.8.2', 'deleted'], ['12.8.3', 'deleted'], ['12.8.4', 'approved'],
  ]);
  await assertBillInvariants(db.db, B, [matter!.id]);
  const approvals = await eventsOf(db.db, 'billing.bill_approved');
  assert.deepEqual(approvals.map((e) => e.number), ['12.8.1', '12.8.1', '12.8.2', '12.8.3', '12.8.4']);
});

eachDialect('seed 002 retainer: minimum 5,000, trigger 3,000, balance 6,000, a bill of 3,500 asks for 2,500', async (db) => {
  const s = await setup(db);
  const { associate, matter } = await firm(s.cmds);
  await s.cmds.updateFirmSettings(ctx, { generalRetainersEnabled: true });
  await s.cmds.setBillingOptions(ctx, matter.id, {
    set: {
      generalRetainer: { enabled: true, toPay: 'new_charges', automation: 'automatic' },
      retainerReplenishment: { enabled: true, minimumBalanceMinor: 500_000, triggerMinor: 300_000 },
    },
  });
  // 3,500.00 of work: 17.5 h at 200.00.
  await s.cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: associate.id, workDate: '2026-02-10', rawMinutes: 1_050, narrative: 'Trial preparation' });
  await s.drain();
  await s.billing.setRetainerBalance(ctx, matter.id, { balanceMinor: 600_000, asOf: '2026-02-28' });
  const bill = await s.billing.createDraft(ctx, { matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' });
  assert.equal(bill.totals.totalMinor, 350_000);
  assert.deepEqual([bill.retainerBalanceMinor, bill.retainerRequestMinor, bill.retainerAppliedMinor], [600_000, 250_000, 350_000], 'the retainer pays the 3,500 and falls to 2,500: ask for 2,500');
  assert.equal((await s.billing.findBill(bill.billId))!.retainerAppliedMinor, 350_000, 'kept with the bill');
  // Not applied to this bill: the balance stays at 6,000, above the trigger: nothing asked, nothing paid from it.
  const manual = await s.billing.updateDraft(ctx, bill.billId, { request: { applyRetainer: false } });
  assert.deepEqual([manual.retainerRequestMinor, manual.retainerAppliedMinor], [0, 0]);
  await s.billing.setRetainerBalance(ctx, matter.id, { balanceMinor: 250_000, asOf: '2026-02-28' });
  assert.equal((await s.billing.updateDraft(ctx, bill.billId, { request: { applyRetainer: false } })).retainerRequestMinor, 250_000, 'at or below the trigger: top up to the minimum');
  await refused(s.billing.setRetainerBalance(ctx, matter.id, { balanceMinor: 1, asOf: 'soon' }), 422);
  const [approved] = [await s.billing.approve(ctx, bill.billId)];
  assert.equal(approved.retainerRequestMinor, 250_000);
  assert.equal((await eventsOf(db.db, 'billing.bill_approved'))[0]!.retainerRequestMinor, 250_000, 'the event carries the request');
  assert.equal((await eventsOf(db.db, 'billing.bill_approved'))[0]!.retainerAppliedMinor, 0, 'and what the retainer pays (not applied here)');
  assert.equal((await s.billing.findBill(bill.billId))!.retainerAppliedMinor, 0);
});

eachDialect('the composer\'s choices: write-ups and downs, toggles, discount, interest, ad hoc lines; update releases what it drops', async (db) => {
  const s = await setup(db);
  const { partner, associate, matter } = await firm(s.cmds);
  const { t1, t2, d1, d2 } = await work(s.cmds, matter.id, { partner, associate });
  await s.drain();
  const bill = await s.billing.createDraft(ctx, {
    matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28',
    request: {
      writeTo: { timekeeper: { [partner.id]: 50_000 } }, excludedIds: [d2.id],
      discount: { kind: 'percentage', percentBasisPoints: 1_000, amountMinor: 0, validUntil: '2026-03-14' }, interestMinor: 1_234,
      adHoc: [{ kind: 'fee', description: 'Urgency', amountMinor: 5_000, taxCode: 'SALES', timekeeperId: null }],
    },
  });
  const amount = (id: string) => bill.lines.find((l) => l.itemId === id)?.amountMinor;
  assert.deepEqual([amount(t1.id), amount(t2.id), amount(d1.id), amount(d2.id)], [50_000, 30_000, 35_000, undefined]);
  assert.equal(bill.totals.feesMinor, 50_000 + 30_000 + 5_000);
  assert.equal(bill.totals.discountMinor, 8_500, '10% of the fees, never the disbursements');
  assert.deepEqual([bill.discount?.validUntil, bill.totals.interestMinor], ['2026-03-14', 1_234]);
  assert.equal(bill.totals.taxMinor, 371, 'sales tax on the ad hoc fee, net of its share of the discount');
  assert.equal(bill.allocations.reduce((a, x) => a + x.amountMinor, 0), bill.totals.netFeesMinor);
  assert.deepEqual(await s.billing.findBill(bill.billId), bill, 'stored exactly as composed');
  await s.drain();
  assert.deepEqual(await mattersStatus(db.db, [t1.id, t2.id, d1.id, d2.id]), { [t1.id]: 'draft', [t2.id]: 'draft', [d1.id]: 'draft', [d2.id]: 'unbilled' });

  // Recompose: take the copies in, defer the associate's time.
  const updated = await s.billing.updateDraft(ctx, bill.billId, { request: { excludedIds: [t2.id] } });
  assert.deepEqual(updated.items.map((i) => i.id).sort(), [t1.id, d1.id, d2.id].sort());
  const [u] = await eventsOf(db.db, 'billing.draft_updated');
  assert.deepEqual([u!.addedItems.map((i) => i.id), u!.releasedItems.map((i) => i.id)], [[d2.id], [t2.id]]);
  await s.drain();
  assert.deepEqual(await mattersStatus(db.db, [t1.id, t2.id, d1.id, d2.id]), { [t1.id]: 'draft', [t2.id]: 'unbilled', [d1.id]: 'draft', [d2.id]: 'draft' });
  assert.deepEqual((await s.reads.unbilledWip(matter.id)).map((w) => w.id), [t2.id], 'the released item is offered again');
  // Preview saves nothing.
  const before = await db.db.selectFrom('billing_bill').selectAll().execute();
  const p = await s.billing.preview({ matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28', request: {}, billId: bill.billId });
  assert.equal(p.composed.itemIds.length, 4);
  assert.deepEqual(await db.db.selectFrom('billing_bill').selectAll().execute(), before);
  await refused(s.billing.updateDraft(ctx, bill.billId, { request: { excludedIds: [t1.id, t2.id, d1.id, d2.id] } }));
  await assertBillInvariants(db.db, s.billing, [matter.id]);

  // A discount written into the fee lines ("Appear as discount" off) is only in the line amounts:
  // not a line, and not recorded as a discount the bill or its email would announce (seed 002).
  await s.cmds.setBillingOptions(ctx, matter.id, { set: { feeReductions: { appearAsDiscount: false }, discount: { kind: 'fixed', percentBasisPoints: 0, amountMinor: 10_000 } } });
  await s.drain();
  const hidden = await s.billing.updateDraft(ctx, bill.billId, { request: {} });
  assert.deepEqual([hidden.totals.discountMinor, hidden.discount, hidden.lines.some((l) => l.kind === 'discount')], [0, null, false]);
  assert.equal(hidden.totals.feesMinor, 60_000 + 30_000 - 10_000);
  assert.deepEqual(await s.billing.findBill(bill.billId), hidden, 'stored exactly as composed');
});

eachDialect('a bill template the firm does not have is refused when drafting, recomposing and previewing (a run refuses it too)', async (db) => {
  const s = await setup(db);
  const { partner, associate, matter } = await firm(s.cmds);
  await work(s.cmds, matter.id, { partner, associate });
  await s.drain();
  const at = { matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' };
  const e = await refused(s.billing.createDraft(ctx, { ...at, request: { template: 'no-such-template' } }), 422);
  assert.match(e.fields.template!, /^no bill template named "no-such-template" \(templates: .*itemised.*\)$/);
  assert.equal((await db.db.selectFrom('billing_bill').select('id').execute()).length, 0, 'nothing drafted');
  await refused(s.billing.preview({ ...at, request: { template: 'nope' } }), 422);
  // A known name (spaces around it are the same name) is kept with the draft.
  const bill = await s.billing.createDraft(ctx, { ...at, request: { template: ' total-only ' } });
  assert.equal(bill.request.template, ' total-only ');
  const e2 = await refused(s.billing.updateDraft(ctx, bill.billId, { request: { template: 'nope' } }), 422);
  assert.ok(e2.fields.template);
  assert.equal((await s.billing.findBill(bill.billId))!.version, bill.version, 'the draft is unchanged');
  // A draft whose own template is no longer known (stored before templates were checked) can still be recomposed.
  await db.db.updateTable('billing_bill').set({ request_json: JSON.stringify({ template: 'retired' }) }).where('id', '=', bill.billId).execute();
  const again = await s.billing.updateDraft(ctx, bill.billId, { invoiceDate: '2026-03-01' });
  assert.equal(again.request.template, 'retired');
  await s.billing.preview({ ...at, request: { template: 'retired' }, billId: bill.billId });
  const ok = await s.billing.updateDraft(ctx, bill.billId, { request: { template: 'itemised' } });
  assert.equal(ok.request.template, 'itemised');
});

eachDialect('items changed or deleted in matters while on a draft block approval until the draft is recomposed', async (db) => {
  const s = await setup(db);
  const { partner, associate, matter } = await firm(s.cmds);
  const { t1, d2 } = await work(s.cmds, matter.id, { partner, associate });
  await s.drain();
  // The draft takes the items before matters hears of it: matters still lets them change.
  const bill = await s.billing.createDraft(ctx, { matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' });
  await s.cmds.updateTimeEntry(ctx, t1.id, { rawMinutes: 60 });
  await s.cmds.deleteDisbursement(ctx, d2.id);
  await s.drain();
  const e = await refused(s.billing.approve(ctx, bill.billId));
  assert.match(e.message, /2 item\(s\) changed or were deleted in matters/);
  const recomposed = await s.billing.updateDraft(ctx, bill.billId, {});
  assert.equal(recomposed.lines.find((l) => l.itemId === t1.id)?.amountMinor, 30_000, 'the change is taken in');
  assert.ok(!recomposed.items.some((i) => i.id === d2.id), 'the deleted item is dropped');
  assert.equal((await db.db.selectFrom('billing_wip').select('id').where('id', '=', d2.id).execute()).length, 0, 'and gone from the copy');
  await s.billing.approve(ctx, bill.billId);
  await s.drain();
  await assertBillInvariants(db.db, s.billing, [matter.id]);
});

eachDialect('seed 003 date order: a numbered bill back in draft cannot be dated before the bill numbered before it or after the one numbered after it', async (db) => {
  const s = await setup(db);
  const { partner, associate, matter } = await firm(s.cmds);
  await work(s.cmds, matter.id, { partner, associate });
  await s.drain();
  const first = await s.billing.approve(ctx, (await s.billing.createDraft(ctx, { matterId: matter.id, invoiceDate: '2026-02-20', upTo: '2026-02-11' })).billId);
  const second = await s.billing.approve(ctx, (await s.billing.createDraft(ctx, { matterId: matter.id, invoiceDate: '2026-02-25', upTo: '2026-02-25' })).billId);
  await s.drain();
  assert.deepEqual([first.sequence, second.sequence], [1, 2]);
  await s.billing.revert(ctx, first.billId);
  await s.drain();
  // Dated after the bill numbered after it: refused at the field, nothing changed.
  const e = await refused(s.billing.updateDraft(ctx, first.billId, { invoiceDate: '2026-02-27' }), 422);
  assert.match(e.fields!.invoiceDate!, new RegExp(`must not be after 2026-02-25, the date of bill ${second.number!.replace(/\./g, '\\.')} \\(numbered after this one\\)`));
  assert.equal((await s.billing.findBill(first.billId))!.invoiceDate, '2026-02-20');
  // On the later bill's own date, or before it: kept in order, and approved.
  const moved = await s.billing.updateDraft(ctx, first.billId, { invoiceDate: '2026-02-25' });
  assert.equal(moved.invoiceDate, '2026-02-25');
  await s.billing.approve(ctx, first.billId);
  await s.drain();
  // The later bill back in draft cannot go before the earlier one's (new) date.
  await s.billing.revert(ctx, second.billId);
  await s.drain();
  const e2 = await refused(s.billing.updateDraft(ctx, second.billId, { invoiceDate: '2026-02-24' }), 422);
  assert.match(e2.fields!.invoiceDate!, /must not be before 2026-02-25, the date of bill .* \(numbered before this one\)/);
  await s.billing.approve(ctx, second.billId);
  await s.drain();
  await assertBillInvariants(db.db, s.billing, [matter.id]);
});

eachDialect('a draft composed before the matter\'s billing options changed is refused approval until composed again; a change only the outputs read is not', async (db) => {
  const s = await setup(db);
  const { partner, associate, matter } = await firm(s.cmds);
  await work(s.cmds, matter.id, { partner, associate });
  await s.drain();
  const draft = await s.billing.createDraft(ctx, { matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' });
  assert.ok(draft.compositionKey, 'the draft keeps what it was composed under');
  // Where the bill is emailed: the outputs only. Approval is not held up.
  await s.cmds.setBillingOptions(ctx, matter.id, { set: { sendTo: ['ap@northwind.example'], useClientAddress: false, copiesToPrint: 2 } });
  await s.drain();
  const stillFine = (await s.billing.actionsFor((await s.billing.findBill(draft.billId))!)).approve;
  assert.deepEqual(stillFine, { allowed: true, reason: null });

  // A 10% discount after the draft was composed: approving the draft as it stands would post the bill without it.
  await s.cmds.setBillingOptions(ctx, matter.id, { set: { discount: { kind: 'percentage', percentBasisPoints: 1_000, amountMinor: 0 } } });
  await s.drain();
  const e = await refused(s.billing.approve(ctx, draft.billId));
  assert.match(e.message, /billing options \(or the firm's billing settings\) changed after this draft was composed: open it in the composer and save it/);
  assert.equal((await s.billing.actionsFor((await s.billing.findBill(draft.billId))!)).approve.allowed, false, 'the bill page says so too');
  const unchanged = await s.billing.findBill(draft.billId);
  assert.equal(unchanged!.status, 'draft');
  assert.equal(unchanged!.totals.totalMinor, draft.totals.totalMinor, 'nothing changed');

  // Saved again in the composer: composed under the discount, then approved with it.
  const recomposed = await s.billing.updateDraft(ctx, draft.billId, {});
  assert.ok(recomposed.totals.discountMinor > 0, 'the discount is on the bill now');
  assert.notEqual(recomposed.compositionKey, draft.compositionKey);
  const approved = await s.billing.approve(ctx, draft.billId);
  assert.equal(approved.totals.totalMinor, recomposed.totals.totalMinor);
  await s.drain();

  // The firm's settings count too (tax rounding feeds every bill's tax).
  const second = await s.cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-02-25', rawMinutes: 30, narrative: 'Call' });
  await s.drain();
  const next = await s.billing.createDraft(ctx, { matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' });
  assert.ok(next.items.some((i) => i.id === second.id));
  const settings = await s.cmds.getFirmSettings();
  await s.cmds.updateFirmSettings(ctx, { taxRounding: settings.taxRounding === 'per_line' ? 'per_bill' : 'per_line' });
  await s.drain();
  assert.match((await refused(s.billing.approve(ctx, next.billId))).message, /changed after this draft was composed/);
  await s.billing.updateDraft(ctx, next.billId, {});
  await s.billing.approve(ctx, next.billId);
  await s.drain();
  await assertBillInvariants(db.db, s.billing, [matter.id]);
});

eachDialect('matters follows the bills: statuses through approve, revert, finalise, redraft, delete; schedule rows get the number', async (db) => {
  const s = await setup(db);
  const { partner, matter } = await firm(s.cmds);
  await s.cmds.setBillingOptions(ctx, matter.id, { set: twoInstalments() });
  const t = await s.cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-02-10', rawMinutes: 30, narrative: 'Call' });
  await s.drain();
  const B = s.billing;
  const bill = await B.createDraft(ctx, { matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' });
  assert.deepEqual([bill.scheduleRowIds, bill.totals.feesMinor], [['r1'], 40_000], 'the instalment due; the time written to it');
  const row = async () => (await s.cmds.getBillingOptions(matter.id)).effective.fixedFee.schedule.find((r) => r.rowId === 'r1')!.invoiceNumber;
  const status = async () => (await mattersStatus(db.db, [t.id]))[t.id];
  const expectations: [string, () => Promise<unknown>, string, string | null][] = [
    ['drafted', async () => undefined, 'draft', null],
    ['approved', () => B.approve(ctx, bill.billId), 'billed', '1.1.1'],
    ['reverted', () => B.revert(ctx, bill.billId), 'draft', null],
    ['approved again', () => B.approve(ctx, bill.billId), 'billed', '1.1.1'],
    ['finalised', () => B.finalise(ctx, bill.billId), 'billed', '1.1.1'],
    ['re-drafted', () => B.redraft(ctx, bill.billId), 'draft', null],
    ['approved a third time', () => B.approve(ctx, bill.billId), 'billed', '1.1.1'],
    ['deleted', () => B.deleteBill(ctx, bill.billId), 'unbilled', null],
  ];
  for (const [name, run, wipStatus, number] of expectations) {
    await run();
    await s.drain();
    assert.deepEqual([await status(), await row()], [wipStatus, number], name);
  }
  // A later bill takes the instalment again (the void bill released it).
  const next = await B.createDraft(ctx, { matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' });
  assert.deepEqual(next.scheduleRowIds, ['r1']);
  assert.equal((await B.approve(ctx, next.billId)).number, '1.1.2');
  await s.drain();
  assert.equal(await row(), '1.1.2');
  // Redelivered events change nothing.
  await db.db.updateTable('outbox').set({ delivered_at: null }).execute();
  await db.db.deleteFrom('inbox').where('handler', '=', MATTERS_BILL_HANDLER).execute();
  await s.drain();
  assert.deepEqual([await status(), await row()], ['billed', '1.1.2']);
  const subs = s.rt.bus.subscriptions().filter((x) => x.name === MATTERS_BILL_HANDLER).map((x) => x.type).sort();
  assert.deepEqual(subs, mattersBillSubscriptions().map((x) => x.type).sort(), 'one handler for every bill event');
});

eachDialect('claiming items is conditional: an item held by another bill is refused, naming it', async (db) => {
  const s = await setup(db);
  const { partner, associate, matter } = await firm(s.cmds);
  const { t1, t2 } = await work(s.cmds, matter.id, { partner, associate });
  await s.drain();
  const bill = await s.billing.createDraft(ctx, { matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28', request: { excludedIds: [t2.id] } });
  await s.billing.approve(ctx, bill.billId);
  const e = await refused(db.db.transaction().execute((trx) => checkItemsFree(trx, 'other-bill', [t2.id, t1.id])));
  assert.match(e.message, /1 item\(s\) are already on bill 1\.1\.1/);
  const holding = await db.db.selectFrom('billing_bill_line').select('bill_id').where('item_id', '=', t2.id).where('live', '=', 1).execute();
  assert.deepEqual(holding, [], 'nothing taken');
  // The database itself keeps live lines unique per item.
  await assert.rejects(db.db.insertInto('billing_bill_line').values({
    bill_id: bill.billId, line_no: 99, key: 'dup', item_id: t1.id, item_kind: 'time', kind: 'time', date: '2026-02-10', description: 'dup',
    recorded_minor: 0, amount_minor: 0, no_charge: 0, tax_minor: 0, live: 1,
  }).execute());
});
