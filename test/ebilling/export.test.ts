/**
 * E-billing end to end on both databases: bills composed and approved by the real billing
 * module from work recorded through the real matters module reach e-billing's own copy by
 * events; exports are exact, pass the project's own validator, read back to the bills'
 * totals, are kept with their bills, audited and announced; refusals write nothing.
 */
import assert from 'node:assert/strict';
import { createEbillingCommands, LedesRefusal } from '../../src/modules/ebilling/index.ts';
import { readLedes } from '../../src/modules/ebilling/domain/reader.ts';
import { seedDemoFirm } from '../../src/modules/matters/index.ts';
import { prng } from '../../src/cli/demo.ts';
import { HttpError } from '../../src/shared/web/errors.ts';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { ctx, firm, setup } from '../billing/support.ts';
import { codes, settings } from './support.ts';

async function ebilling(db: TestDb, s: Awaited<ReturnType<typeof setup>>) {
  return createEbillingCommands({ db: db.db, clock: s.clock, relay: s.rt.relay });
}

async function refusal(p: Promise<unknown>): Promise<LedesRefusal> {
  try { await p; } catch (e) { if (e instanceof LedesRefusal) return e; throw e; }
  assert.fail('expected a LEDES refusal');
}

const count = async (db: TestDb, table: string) => Number((await db.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);

eachDialect('a bill with write-downs, no-charge, hidden work, a discount, ad hoc lines, interest and tax: exact LEDES, kept with the bill', async (db) => {
  const s = await setup(db, { start: '2026-03-02T09:00:00Z' });
  const { partner, associate, matter } = await firm(s.cmds);
  const E = await ebilling(db, s);
  await s.cmds.setBillingOptions(ctx, matter.id, { set: { ebilling: { enabled: true, codeSet: 'litigation', format: 'LEDES1998B', clientLedesId: 'NW-001', matterLedesId: 'NW-M-77' } } });
  const rec = (tk: string, date: string, minutes: number, task: string, activity: string, behaviour?: 'hide' | 'no_charge') =>
    s.cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: tk, workDate: date, rawMinutes: minutes, narrative: `Work | [${task}]\non ${date}`, taskCode: task, activityCode: activity, ...(behaviour ? { behaviour } : {}) });
  await rec(partner.id, '2026-02-10', 120, 'L110', 'A101');
  await rec(associate.id, '2026-02-11', 90, 'L120', 'A102');
  await rec(associate.id, '2026-02-12', 60, 'L120', 'A104');
  await rec(partner.id, '2026-02-13', 30, 'L210', 'A103', 'no_charge');
  await rec(partner.id, '2026-02-14', 45, 'L210', 'A103', 'hide');
  await s.cmds.recordDisbursement(ctx, { matterId: matter.id, incurredOn: '2026-02-12', code: 'COURT', expenseCode: 'E112', unitCostMinor: 35_000, taxCode: 'EXEMPT', description: 'Filing fee' });
  await s.cmds.recordDisbursement(ctx, { matterId: matter.id, incurredOn: '2026-02-20', code: 'COPY', expenseCode: 'E101', quantityMilli: 100_000, unitCostMinor: 15, taxCode: 'SALES', description: 'Copies' });
  await s.drain();
  const draft = await s.billing.createDraft(ctx, {
    matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28', request: {
      writeTo: { timekeeper: { [associate.id]: 40_000 } }, // 2.5 h at 200.00 = 500.00 written down to 400.00
      discount: { kind: 'percentage', percentBasisPoints: 1_000, amountMinor: 0, validUntil: '2026-03-15' },
      interestMinor: 1_234,
      adHoc: [{ kind: 'fee', description: 'Agreed conference fee', amountMinor: 15_000, taxCode: null, timekeeperId: null }, { kind: 'disbursement', description: 'Courier', amountMinor: 2_500, taxCode: null, timekeeperId: null }],
    },
  });
  const bill = await s.billing.approve(ctx, draft.billId);
  await s.drain();
  assert.ok(bill.totals.taxMinor > 0, 'the copies carry sales tax');

  // The firm has not set its LEDES identity, the ad hoc lines have no codes, and 1998B cannot carry tax.
  const first = await refusal(E.exportBills(ctx, { billIds: [bill.billId], mode: 'single' }));
  const fields = first.problems.map((p) => `${p.lineNo ?? '-'} ${p.field}`);
  assert.deepEqual(fields.sort(), ['- INVOICE_TOTAL', '- LAW_FIRM_ID', ...['LINE_ITEM_TASK_CODE', 'LINE_ITEM_ACTIVITY_CODE'].map((f) => `${bill.lines.find((l) => l.kind === 'adhoc_fee')!.lineNo} ${f}`),
    `${bill.lines.find((l) => l.kind === 'adhoc_disbursement')!.lineNo} LINE_ITEM_EXPENSE_CODE`].sort());
  assert.match(first.problems.find((p) => p.field === 'INVOICE_TOTAL')!.fix, /LEDES 1998BI/);
  assert.equal(first.status, 422);
  assert.equal(await count(db, 'ebilling_export'), 0, 'a refusal writes nothing');
  assert.equal(await db.db.selectFrom('outbox').select('id').where('type', '=', 'ebilling.file_exported').executeTakeFirst(), undefined);

  await E.saveSettings(ctx, settings({ defaultTaskCode: 'L120', defaultActivityCode: 'A101', defaultExpenseCode: 'E107' }), 0);
  const again = await refusal(E.exportBills(ctx, { billIds: [bill.billId], mode: 'single' }));
  assert.deepEqual(again.problems.map((p) => p.field), ['INVOICE_TOTAL']);

  const requestId = '01937a4e-0000-7000-8000-000000000001';
  const { files } = await E.exportBills(ctx, { billIds: [bill.billId], format: 'LEDES1998BI', mode: 'single', requestId });
  assert.equal(files.length, 1);
  const file = files[0]!;
  const read = readLedes(file.content, { codes, requireClientMatterId: true });
  assert.deepEqual(read.violations, []);
  assert.equal(read.format, 'LEDES1998BI');
  const inv = read.invoices[0]!;
  assert.equal(inv.number, bill.number);
  assert.equal(inv.totalMinor, bill.totals.totalMinor, 'INVOICE_TOTAL is the bill total');
  assert.equal(inv.taxMinor, bill.totals.taxMinor);
  assert.equal(inv.lines.length, bill.lines.length, 'one LEDES line per bill line; the hidden entry is not on the bill');
  assert.ok(!file.content.includes('on 2026-02-14'), 'hidden work is not sent');
  const byDesc = (d: RegExp) => inv.lines.filter((l) => d.test(l.description));
  assert.deepEqual(byDesc(/L120/).map((l) => l.adjustmentMinor < 0), [true, true], 'the associate\'s write-down: negative adjustments');
  assert.deepEqual(byDesc(/L210/).map((l) => [l.totalMinor, l.adjustmentMinor]), [[0, -15_000]], 'no-charge at zero');
  assert.deepEqual(inv.lines.filter((l) => l.type === 'IF').map((l) => l.adjustmentMinor), [-bill.totals.discountMinor]);
  assert.deepEqual(inv.lines.filter((l) => l.type === 'IE').map((l) => l.totalMinor), [1_234]);
  assert.ok(inv.lines.every((l) => !/[|[\]\n]/.test(l.description)) && byDesc(/^Work L110 on 2026-02-10$/).length === 1, 'text cleaned');
  assert.equal(file.content.split('\n')[0], 'LEDES98BI V2[]');

  // Kept with the bill, listed per bill, audited and announced; a repeated request returns the same file.
  const kept = await E.findExport(file.id);
  assert.equal(kept!.content, file.content);
  assert.deepEqual((await E.listExports({ billId: bill.billId })).map((e) => [e.id, e.bills.map((b) => b.number)]), [[file.id, [bill.number]]]);
  const replay = await E.exportBills(ctx, { billIds: [bill.billId], format: 'LEDES1998BI', mode: 'single', requestId });
  assert.equal(replay.replayed, true);
  assert.deepEqual(replay.files.map((f) => f.id), [file.id]);
  assert.equal(await count(db, 'ebilling_export'), 1);
  const audit = await db.db.selectFrom('audit_log').select(['action', 'entity_id']).where('action', 'like', 'ebilling.%').orderBy('at').execute();
  assert.deepEqual(audit.map((a) => a.action), ['ebilling.settings_changed', 'ebilling.file_exported']);
  const events = await db.db.selectFrom('outbox').select(['type', 'payload']).where('type', '=', 'ebilling.file_exported').execute() as { payload: string }[];
  assert.equal(events.length, 1);
  assert.equal(JSON.parse(events[0]!.payload).bills[0].totalMinor, bill.totals.totalMinor);

  // Reverting the bill makes it unexportable (its copy follows billing's events).
  await s.billing.revert(ctx, bill.billId);
  await s.drain();
  const reverted = await refusal(E.exportBills(ctx, { billIds: [bill.billId], format: 'LEDES1998BI', mode: 'single' }));
  assert.match(reverted.problems[0]!.message, /is draft/);
});

eachDialect('refusals on real bills: work recorded before e-billing was on, and a matter that is not e-billed', async (db) => {
  const s = await setup(db);
  const { partner, client, matter } = await firm(s.cmds);
  const E = await ebilling(db, s);
  await E.saveSettings(ctx, settings(), 0);
  const other = await s.cmds.openMatter(ctx, { clientId: client.id, name: 'Plain matter', responsibleTimekeeperId: partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH' });
  await s.cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Coded', taskCode: 'L110', activityCode: 'A101' });
  const uncoded = await s.cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-02-11', rawMinutes: 30, narrative: 'Not coded' });
  await s.cmds.recordDisbursement(ctx, { matterId: matter.id, incurredOn: '2026-02-12', code: 'COPY', unitCostMinor: 500, description: 'Copies' });
  await s.cmds.recordTimeEntry(ctx, { matterId: other.id, timekeeperId: partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice', taskCode: 'L110', activityCode: 'A101' });
  // E-billing turned on afterwards: matters now requires codes on new work, but these are recorded.
  await s.cmds.setBillingOptions(ctx, matter.id, { set: { ebilling: { enabled: true, codeSet: 'litigation', format: 'LEDES1998B', clientLedesId: 'NW-001', matterLedesId: 'NW-M-77' } } });
  await assert.rejects(s.cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-02-15', rawMinutes: 30, narrative: 'x' }),
    (e: unknown) => e instanceof HttpError && e.status === 422 && /is required: matter 1\.1 is e-billed/.test(e.fields.taskCode ?? ''));
  await s.drain();
  const dates = { invoiceDate: '2026-02-28', upTo: '2026-02-28' };
  const a = await s.billing.approve(ctx, (await s.billing.createDraft(ctx, { matterId: matter.id, ...dates })).billId);
  const b = await s.billing.approve(ctx, (await s.billing.createDraft(ctx, { matterId: other.id, ...dates })).billId);
  await s.drain();
  const r = await refusal(E.exportBills(ctx, { billIds: [a.billId, b.billId], format: 'LEDES1998B', mode: 'single' }));
  const uncodedLine = a.lines.find((l) => l.itemId === uncoded.id)!.lineNo;
  const copyLine = a.lines.find((l) => l.kind === 'disbursement')!.lineNo;
  assert.deepEqual(r.problems.map((p) => [p.bill, p.lineNo, p.field]), [
    [a.number, uncodedLine, 'LINE_ITEM_TASK_CODE'], [a.number, uncodedLine, 'LINE_ITEM_ACTIVITY_CODE'], [a.number, copyLine, 'LINE_ITEM_EXPENSE_CODE'],
    [b.number, null, 'CLIENT_ID'],
  ]);
  assert.match(r.message, /No file was written: 4 problems/);
  assert.ok(Object.keys(r.fields).includes(`bills.${a.number}.lines.${uncodedLine}.LINE_ITEM_TASK_CODE`));
  assert.equal(await count(db, 'ebilling_export'), 0);
  // Bad requests name their field.
  await assert.rejects(E.exportBills(ctx, { billIds: [], mode: 'single' }), (e: unknown) => e instanceof HttpError && e.status === 422 && 'billIds' in e.fields);
  await assert.rejects(E.exportBills(ctx, { billIds: ['01937a4e-0000-7000-8000-00000000abcd'], mode: 'single' }), (e: unknown) => e instanceof HttpError && /not known to e-billing/.test(e.fields.billIds ?? ''));
  await assert.rejects(E.exportBills(ctx, { billIds: [a.billId], mode: 'zip' as never }), (e: unknown) => e instanceof HttpError && 'mode' in e.fields);
});

eachDialect('the demo firm: every e-billed bill exports in both formats, passes the validator and reads back to its totals', async (db) => {
  const s = await setup(db, { start: '2026-11-20T12:00:00Z' });
  const seeded = await seedDemoFirm(s.cmds, { matters: 40, entriesPerMatter: 8, seed: 1, random: prng, fixedCharges: true });
  assert.equal(seeded.matters, 40);
  await s.drain();
  const E = await ebilling(db, s);
  await E.saveSettings(ctx, settings({ defaultTaskCode: 'L120', defaultActivityCode: 'A101', defaultExpenseCode: 'E124' }), 0);
  const ebilled = (await db.db.selectFrom('ebilling_matter').select(['id', 'ebilling_json']).execute() as { id: string; ebilling_json: string | null }[])
    .filter((m) => m.ebilling_json && JSON.parse(m.ebilling_json).enabled).map((m) => m.id);
  assert.ok(ebilled.length >= 3, `the demo firm e-bills a few matters (${ebilled.length})`);
  const approved: { billId: string; number: string; totalMinor: number; taxMinor: number; matterId: string }[] = [];
  for (const matterId of ebilled) {
    try {
      const d = await s.billing.createDraft(ctx, { matterId, invoiceDate: '2026-11-20', upTo: '2026-11-20' });
      const b = await s.billing.approve(ctx, d.billId);
      approved.push({ billId: b.billId, number: b.number!, totalMinor: b.totals.totalMinor, taxMinor: b.totals.taxMinor, matterId });
    } catch (e) {
      if (!(e instanceof HttpError && e.status === 409)) throw e; // nothing to bill on this matter today
    }
  }
  await s.drain();
  assert.ok(approved.length >= 3, `bills to export: ${approved.length}`);
  const kinds = new Set((await db.db.selectFrom('ebilling_bill').select('bill_json').execute() as { bill_json: string }[]).flatMap((r) => (JSON.parse(r.bill_json) as { lines: { kind: string; noCharge: boolean }[] }).lines.map((l) => (l.noCharge ? 'no_charge' : l.kind))));
  for (const k of ['time', 'disbursement', 'fixed_charge', 'no_charge']) assert.ok(kinds.has(k), `the demo bills carry ${k} lines`);

  // Each bill in its matter's own format, one file per bill.
  const own = await E.exportBills(ctx, { billIds: approved.map((b) => b.billId), mode: 'per_bill' });
  assert.equal(own.files.length, approved.length);
  for (const f of own.files) {
    const r = readLedes(f.content, { codes, requireClientMatterId: true });
    assert.deepEqual(r.violations, [], f.fileName);
    const b = approved.find((x) => x.number === r.invoices[0]!.number)!;
    assert.equal(r.invoices[0]!.totalMinor, b.totalMinor);
  }
  // Every bill in 1998BI, one file.
  const bi = await E.exportBills(ctx, { billIds: approved.map((b) => b.billId), format: 'LEDES1998BI', mode: 'single' });
  const biRead = readLedes(bi.files[0]!.content, { codes, requireClientMatterId: true });
  assert.deepEqual(biRead.violations, []);
  assert.deepEqual(biRead.invoices.map((i) => [i.number, i.totalMinor, i.taxMinor]).sort(), approved.map((b) => [b.number, b.totalMinor, b.taxMinor]).sort());
  // In 1998B, in one file: the bills without tax (a taxed bill is refused; see the first test).
  const untaxed = approved.filter((b) => b.taxMinor === 0);
  assert.ok(untaxed.length >= 3);
  const b98 = await E.exportBills(ctx, { billIds: untaxed.map((b) => b.billId), format: 'LEDES1998B', mode: 'single' });
  const bRead = readLedes(b98.files[0]!.content, { codes, requireClientMatterId: true });
  assert.deepEqual(bRead.violations, []);
  assert.deepEqual(bRead.invoices.map((i) => [i.number, i.totalMinor]).sort(), untaxed.map((b) => [b.number, b.totalMinor]).sort());
  // Every file is kept and listed with each of its bills.
  for (const b of approved) {
    const list = await E.listExports({ billId: b.billId });
    assert.ok(list.length >= 2, `${b.number} has its exports`);
  }
});

eachDialect('one file or one per bill: mixed formats and currencies are refused in one file, fine one per bill', async (db) => {
  const s = await setup(db);
  const { partner, client, matter } = await firm(s.cmds);
  const E = await ebilling(db, s);
  await E.saveSettings(ctx, settings(), 0);
  const euro = await s.cmds.openMatter(ctx, { clientId: client.id, name: 'Euro matter', responsibleTimekeeperId: partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH', currency: 'EUR' });
  const on = (format: 'LEDES1998B' | 'LEDES1998BI', m: string) => ({ set: { ebilling: { enabled: true, codeSet: 'litigation', format, clientLedesId: 'NW-001', matterLedesId: m } } });
  await s.cmds.setBillingOptions(ctx, matter.id, on('LEDES1998B', 'M-1'));
  await s.cmds.setBillingOptions(ctx, euro.id, on('LEDES1998BI', 'M-2'));
  for (const m of [matter.id, euro.id]) {
    // The firm's rates are in USD: the euro matter's time is priced by an agreed euro rate.
    await s.cmds.recordTimeEntry(ctx, { matterId: m, timekeeperId: partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice', taskCode: 'L110', activityCode: 'A101',
      ...(m === euro.id ? { override: { rateMinor: 28_000, reason: 'Agreed euro rate' } } : {}) });
  }
  await s.drain();
  const dates = { invoiceDate: '2026-02-28', upTo: '2026-02-28' };
  const usd = await s.billing.approve(ctx, (await s.billing.createDraft(ctx, { matterId: matter.id, ...dates })).billId);
  const eur = await s.billing.approve(ctx, (await s.billing.createDraft(ctx, { matterId: euro.id, ...dates })).billId);
  await s.drain();
  const ids = [usd.billId, eur.billId];
  await assert.rejects(E.exportBills(ctx, { billIds: ids, mode: 'single' }), (e: unknown) => e instanceof HttpError && e.status === 422 && /different formats/.test(e.fields.format ?? ''));
  await assert.rejects(E.exportBills(ctx, { billIds: ids, format: 'LEDES1998B', mode: 'single' }), (e: unknown) => e instanceof HttpError && /states no currency and these bills are in USD, EUR/.test(e.fields.format ?? ''));
  assert.equal(await count(db, 'ebilling_export'), 0);
  const perBill = await E.exportBills(ctx, { billIds: ids, mode: 'per_bill' });
  assert.deepEqual(perBill.files.map((f) => [f.format, f.bills[0]!.currency]).sort(), [['LEDES1998B', 'USD'], ['LEDES1998BI', 'EUR']]);
  const one = await E.exportBills(ctx, { billIds: ids, format: 'LEDES1998BI', mode: 'single' });
  const r = readLedes(one.files[0]!.content, { codes });
  assert.deepEqual(r.violations, []);
  assert.deepEqual(r.invoices.map((i) => [i.number, i.currency, i.totalMinor]), [[usd.number, 'USD', usd.totals.totalMinor], [eur.number, 'EUR', eur.totals.totalMinor]]);
});
