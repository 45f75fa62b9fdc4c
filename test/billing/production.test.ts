/**
 * Bill production over the real runtime on both databases: the final PDF stored with the
 * bill (pdftotext shows its number and total), the matter's copies in the print folder, the
 * email with the PDF attached (file-drop and a real SMTP server), the bill finalised; and
 * idempotency: a failed send retried prints once and mails once, a crashed process's lease
 * runs out, two producers at once send each bill once.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { openDatabase } from '../../src/adapters/db/index.ts';
import { createSmtpMailer } from '../../src/adapters/mail/smtp.ts';
import { LEASE_MS, createProduction } from '../../src/modules/billing/index.ts';
import { mailMayHaveGone, printJobKey } from '../../src/modules/billing/domain/production.ts';
import { createFolderPrint, printRecordFor } from '../../src/adapters/print/folder.ts';
import { EMAIL_UNCONFIRMED, manualEmailKey } from '../../src/modules/billing/production.ts';
import type { HttpError } from '../../src/shared/web/errors.ts';
import { claimMany, inBillOrder, release, renewLeases } from '../../src/modules/billing/production-store.ts';
import type { Bill } from '../../src/modules/billing/index.ts';
import { sql } from 'kysely';
import { formatMoney } from '../../src/shared/money.ts';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { attachmentOf, startSmtp } from '../adapters/smtp.ts';
import { pdfText } from '../adapters/pdf.ts';
import { ctx, firm, work } from './support.ts';
import {
  approvedBills, closeSharedPdf, filesIn, logger, outputDirs, productionSetup, readEml, removeDirs, scriptedSmtp, smtpOutputs, stoppedMidSend, testOutputs,
} from './production-support.ts';

after(closeSharedPdf);

const SEND = { copiesToPrint: 2 as const, useClientAddress: false, sendTo: ['ap@northwind.example', 'cfo@northwind.example'] };

async function auditCount(db: TestDb, action: string, billId: string): Promise<number> {
  const r = await db.db.selectFrom('audit_log').select((eb) => eb.fn.countAll<number>().as('n')).where('action', '=', action).where('entity_id', '=', billId).executeTakeFirstOrThrow();
  return Number(r.n);
}

eachDialect('producing a bill stores its PDF, prints its copies, emails it (file-drop) and finalises it', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const [bill] = await approvedBills(s, 1, SEND);
    assert.ok(bill?.number);
    const summary = await s.production.produceBills(ctx, [bill.billId]);
    assert.equal(summary.done, 1, JSON.stringify(summary.items));
    assert.equal(summary.failed, 0);

    const after = (await s.billing.findBill(bill.billId))!;
    assert.equal(after.status, 'finalised');
    const stored = await s.production.storedPdf(bill.billId);
    assert.ok(stored, 'the final PDF is kept with the bill');
    const text = pdfText(stored.pdf);
    assert.ok(text.includes(bill.number), `the PDF shows the bill number ${bill.number}`);
    assert.ok(text.includes(formatMoney(bill.totals.totalMinor, bill.currency)), `the PDF shows the total ${formatMoney(bill.totals.totalMinor, bill.currency)}`);
    assert.ok(!/PREVIEW|DRAFT/.test(text), 'no watermark on the final PDF');

    const printed = filesIn(dirs.print);
    assert.equal(printed.length, 2, `two copies: ${printed.join(', ')}`);
    const mails = readEml(dirs.mail);
    assert.equal(mails.length, 1);
    assert.match(mails[0]!, /To: ap@northwind\.example, cfo@northwind\.example/);
    assert.ok(mails[0]!.includes(`Subject: Invoice ${bill.number} for Northwind v. Kestrel`));
    const att = attachmentOf(mails[0]!);
    assert.ok(att);
    assert.deepEqual(new Uint8Array(att.bytes), stored.pdf, 'the email carries the stored PDF');

    const state = await db.db.selectFrom('billing_bill_production').selectAll().where('bill_id', '=', bill.billId).executeTakeFirstOrThrow();
    for (const k of ['pdf_stored_at', 'printed_at', 'emailed_at', 'finalised_at']) assert.ok(state[k], `${k} recorded`);
    assert.equal(state.claim_token, null, 'the lease is released');
    const finalised = await db.db.selectFrom('outbox').select('type').where('type', '=', 'billing.bill_finalised').execute();
    assert.equal(finalised.length, 1, 'finalise published its event');

    // Producing it again does nothing more.
    const again = await s.production.produceBills(ctx, [bill.billId]);
    assert.equal(again.done, 1);
    assert.equal(filesIn(dirs.print).length, 2);
    assert.equal(readEml(dirs.mail).length, 1);
    assert.equal(await auditCount(db, 'billing.bill_emailed', bill.billId), 1);
    assert.equal(await auditCount(db, 'billing.bill_finalised', bill.billId), 1);
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});

eachDialect('no copies and no send-to: nothing printed or mailed, still stored and finalised; a draft is refused per bill', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const [a, b] = await approvedBills(s, 2, { copiesToPrint: 0, useClientAddress: false, sendTo: [] });
    await s.billing.revert(ctx, b!.billId);
    const summary = await s.production.produceBills(ctx, [a!.billId, b!.billId]);
    assert.equal(summary.done, 1);
    assert.equal(summary.failed, 1);
    assert.match(summary.items.find((i) => i.billId === b!.billId)!.error ?? '', /draft, not approved/);
    assert.deepEqual(filesIn(dirs.print), []);
    assert.deepEqual(filesIn(dirs.mail), []);
    assert.equal((await s.billing.findBill(a!.billId))!.status, 'finalised');
    assert.equal((await s.billing.findBill(b!.billId))!.status, 'draft');
    assert.ok(await s.production.storedPdf(a!.billId));
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});

eachDialect('a send refused by the SMTP server is shown per bill; the retry prints nothing again and mails once', async (db) => {
  const smtp = await startSmtp({ failFirst: 1 });
  const dirs = outputDirs();
  const outputs = testOutputs(dirs, { smtpPort: smtp.port });
  const s = await productionSetup(db, outputs);
  try {
    const [bill] = await approvedBills(s, 1, SEND);
    const first = await s.production.produceBills(ctx, [bill!.billId]);
    assert.equal(first.failed, 1);
    assert.match(first.items[0]!.error ?? '', /^email: .*(451|Try again)/);
    assert.equal((await s.billing.findBill(bill!.billId))!.status, 'approved', 'not finalised while the email is owed');
    assert.equal(filesIn(dirs.print).length, 2, 'printed before the email failed');
    assert.equal(smtp.messages.length, 0);
    const st = await db.db.selectFrom('billing_bill_production').selectAll().where('bill_id', '=', bill!.billId).executeTakeFirstOrThrow();
    assert.equal(st.failed_step, 'email');
    assert.ok(st.printed_at && st.pdf_stored_at && !st.emailed_at && !st.finalised_at);

    const retry = await s.production.produceBills(ctx, [bill!.billId]);
    assert.equal(retry.done, 1, JSON.stringify(retry.items));
    assert.equal(smtp.messages.length, 1, 'mailed once');
    assert.deepEqual(smtp.messages[0]!.to.sort(), ['ap@northwind.example', 'cfo@northwind.example']);
    const att = attachmentOf(smtp.messages[0]!.raw);
    assert.ok(att, 'the PDF is attached');
    const text = pdfText(att.bytes);
    assert.ok(text.includes(bill!.number!) && text.includes(formatMoney(bill!.totals.totalMinor, bill!.currency)));
    assert.equal(filesIn(dirs.print).length, 2, 'printed once');
    assert.equal(await auditCount(db, 'billing.bill_printed', bill!.billId), 1);
    assert.equal(await auditCount(db, 'billing.bill_pdf_stored', bill!.billId), 1, 'the PDF was rendered once');
    assert.equal(await auditCount(db, 'billing.bill_emailed', bill!.billId), 1);
    assert.equal((await s.billing.findBill(bill!.billId))!.status, 'finalised');
  } finally {
    await s.stop();
    await outputs.close();
    await smtp.close();
    removeDirs(dirs);
  }
});

eachDialect('a bill whose email waits on a slow SMTP server keeps its lease: no other process takes it over, and the run stays alive', async (db) => {
  const dirs = outputDirs();
  let arrived!: () => void;
  const arrival = new Promise<void>((r) => { arrived = r; });
  let release!: () => void;
  const released = new Promise<void>((r) => { release = r; });
  const smtp = await startSmtp({ beforeReply: async () => { arrived(); await released; } });
  const s = await productionSetup(db, testOutputs(dirs, { smtpPort: smtp.port }));
  try {
    const [bill] = await approvedBills(s, 1, SEND);
    const cycle = bill!.approvedAt!;
    const producing = s.production.produceBills(ctx, [bill!.billId], { leaseRenewMs: 25 });
    await arrival;
    // The server has had the message for three lease lengths: the lease taken at the claim is long past.
    s.clock.advanceMs(3 * LEASE_MS);
    const state = () => db.db.selectFrom('billing_bill_production').select(['claim_token', 'claimed_until']).where('bill_id', '=', bill!.billId).executeTakeFirstOrThrow();
    let renewed = false;
    for (let i = 0; i < 400 && !renewed; i++) {
      const st = await state();
      renewed = st.claim_token !== null && Date.parse(st.claimed_until as string) > s.clock.now().getTime();
      if (!renewed) await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(renewed, 'the producing process renewed its lease while the email waited');
    const now = s.clock.now().toISOString();
    const taken = await db.db.transaction().execute((trx) => claimMany(trx, [{ billId: bill!.billId, cycle }], 'other-process', now, new Date(s.clock.now().getTime() + LEASE_MS).toISOString()));
    assert.equal(taken.size, 0, 'another process cannot take the bill');
    await assert.rejects(s.billing.revert(ctx, bill!.billId), /being produced now/);
    const run = await db.db.selectFrom('billing_production_run').select('heartbeat_at').executeTakeFirstOrThrow();
    assert.equal(run.heartbeat_at, now, 'the run beats while its bill waits (it is not shown as interrupted)');
    release();
    const summary = await producing;
    assert.equal(summary.done, 1, JSON.stringify(summary.items));
    assert.equal(smtp.messages.length, 1, 'emailed once');
    assert.equal((await state()).claim_token, null, 'the lease is released at the end');
    assert.equal((await s.billing.findBill(bill!.billId))!.status, 'finalised');
  } finally {
    release();
    await s.stop();
    await smtp.close();
    removeDirs(dirs);
  }
});

eachDialect('a process that died holding a bill: others leave it until its lease runs out, then finish it once', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const [bill] = await approvedBills(s, 1, SEND);
    const cycle = bill!.approvedAt!;
    // The dead process had taken the bill and printed it, then died before recording more.
    const at = s.clock.now().toISOString();
    await db.db.insertInto('billing_bill_production').values({
      bill_id: bill!.billId, cycle, claim_token: 'dead-process', claimed_until: new Date(s.clock.now().getTime() + LEASE_MS).toISOString(),
      attempts: 1, updated_at: at,
    }).execute();
    const busy = await s.production.produceBills(ctx, [bill!.billId]);
    assert.equal(busy.busy, 1, 'held by another process');
    assert.deepEqual(filesIn(dirs.mail), []);
    assert.equal((await s.billing.findBill(bill!.billId))!.status, 'approved');
    const busyItem = () => s.production.runView(busy.runId).then((v) => v!.items[0]!);
    assert.ok((await busyItem()).retryKey, 'busy: Retry offered');
    assert.equal((await busyItem()).producedSince, null);

    s.clock.advanceMs(LEASE_MS + 1_000);
    const done = await s.production.produceBills(ctx, [bill!.billId]);
    assert.equal(done.done, 1);
    assert.equal(readEml(dirs.mail).length, 1);
    assert.equal(filesIn(dirs.print).length, 2);
    assert.equal((await s.billing.findBill(bill!.billId))!.status, 'finalised');
    // The first run's page: the bill it found busy was produced since by the other run; no Retry.
    assert.deepEqual([(await busyItem()).producedSince, (await busyItem()).retryKey], [{ at: s.clock.now().toISOString() }, null]);
    assert.deepEqual(((await s.production.runView(busy.runId))!).counts, { pending: 0, done: 0, failed: 0, busy: 1, already: 0, producedSince: 1, unrecorded: 0 });
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});

eachDialect('a bill being produced cannot be reverted or deleted under the producer; a bill reverted after production read it is not claimed', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const [bill, other] = await approvedBills(s, 2, SEND);
    const cycle = bill!.approvedAt!;
    // A producer (another process) holds the bill: it may be emailing it now.
    await db.db.insertInto('billing_bill_production').values({
      bill_id: bill!.billId, cycle, claim_token: 'other-process', claimed_until: new Date(s.clock.now().getTime() + LEASE_MS).toISOString(),
      attempts: 1, updated_at: s.clock.now().toISOString(),
    }).execute();
    await assert.rejects(s.billing.revert(ctx, bill!.billId), /being produced now/);
    await assert.rejects(s.billing.deleteBill(ctx, bill!.billId), /being produced now/);
    const held = (await s.billing.findBill(bill!.billId))!;
    assert.deepEqual([held.status, held.version], ['approved', bill!.version], 'nothing changed');
    assert.equal(await auditCount(db, 'billing.bill_reverted', bill!.billId), 0);
    assert.equal(await auditCount(db, 'billing.bill_deleted', bill!.billId), 0);
    // Its lease run out (the producer died): the bill can be reverted.
    s.clock.advanceMs(LEASE_MS + 1_000);
    assert.equal((await s.billing.revert(ctx, bill!.billId)).status, 'draft');

    // Production read the other bill as approved; a revert committed before it claimed the bill:
    // the claim lets it go (no lease left behind), so it is not emailed as a draft.
    const otherCycle = other!.approvedAt!;
    await s.billing.revert(ctx, other!.billId);
    const now = s.clock.now().toISOString();
    const claimed = await db.db.transaction().execute((trx) => claimMany(trx, [{ billId: other!.billId, cycle: otherCycle }], 'late-claim', now, new Date(s.clock.now().getTime() + LEASE_MS).toISOString()));
    assert.equal(claimed.size, 0);
    const leases = await db.db.selectFrom('billing_bill_production').select('bill_id').where('claim_token', '=', 'late-claim').execute();
    assert.deepEqual(leases, []);
    assert.deepEqual(filesIn(dirs.mail), []);
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});

eachDialect('two producers at once (each with its own leases) send, print and finalise each bill once', async (db) => {
  const smtp = await startSmtp();
  const dirs = outputDirs();
  const outputs = testOutputs(dirs, { smtpPort: smtp.port });
  const s = await productionSetup(db, outputs);
  try {
    const bills = await approvedBills(s, 4, SEND);
    const ids = bills.map((b) => b.billId);
    const other = createProduction({ db: db.db, clock: s.clock, logger, outputs }, s.billing);
    const [r1, r2] = await Promise.all([s.production.produceBills(ctx, ids), other.produceBills(ctx, [...ids].reverse())]);
    // Each bill was done by one of them; the other found it busy or already done.
    for (const id of ids) {
      const outcomes = [r1, r2].map((r) => r.items.find((i) => i.billId === id)!.outcome);
      assert.ok(outcomes.includes('done'), `${id}: ${outcomes.join(', ')}`);
      assert.ok(outcomes.every((o) => o === 'done' || o === 'busy'), `${id}: ${outcomes.join(', ')}`);
    }
    // A retry of whatever was busy completes nothing twice.
    await s.production.produceBills(ctx, ids);
    assert.equal(smtp.messages.length, 4, 'one email per bill');
    assert.equal(new Set(smtp.messages.map((m) => /Message-ID: (\S+)/i.exec(m.raw)?.[1])).size, 4);
    assert.equal(filesIn(dirs.print).length, 8, 'two copies per bill');
    for (const id of ids) {
      assert.equal((await s.billing.findBill(id))!.status, 'finalised');
      assert.equal(await auditCount(db, 'billing.bill_finalised', id), 1);
      assert.equal(await auditCount(db, 'billing.bill_emailed', id), 1);
    }
  } finally {
    await s.stop();
    await outputs.close();
    await smtp.close();
    removeDirs(dirs);
  }
});

eachDialect('the matter\'s bill template picks the PDF: itemised, total-only (no line pricing), fixed fee', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const f = await firm(s.matters);
    const open = (name: string) => s.matters.openMatter(ctx, { clientId: f.client.id, name, responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH' });
    const itemised = f.matter;
    const totalOnly = await open('Kestrel appeal');
    const fixed = await open('Northwind lease review');
    const quiet = { copiesToPrint: 0 as const, sendTo: [], useClientAddress: false };
    await s.matters.setBillingOptions(ctx, itemised.id, { set: { ...quiet, billTemplate: 'standard' } });
    await s.matters.setBillingOptions(ctx, totalOnly.id, { set: { ...quiet, billTemplate: 'total-only' } });
    await s.matters.setBillingOptions(ctx, fixed.id, { set: {
      ...quiet, billTemplate: 'fixed-fee', arrangement: 'fixed_fee', quote: { amountMinor: 100_000 },
      fixedFee: { mode: 'custom_schedule', schedule: [
        { rowId: 'r1', amountMinor: 40_000, description: 'Lease review: first instalment', billOn: '2026-02-01', billOnStep: null, payOnStep: null, invoiceNumber: null },
      ] },
    } });
    await work(s.matters, itemised.id, f);
    await work(s.matters, totalOnly.id, f);
    await s.matters.recordTimeEntry(ctx, { matterId: fixed.id, timekeeperId: f.partner.id, workDate: '2026-02-10', rawMinutes: 30, narrative: 'Review the lease' });
    await s.drain();
    const bills = [];
    for (const m of [itemised, totalOnly, fixed]) {
      const d = await s.billing.createDraft(ctx, { matterId: m.id, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
      bills.push(await s.billing.approve(ctx, d.billId));
    }
    await s.drain();
    const r = await s.production.produceBills(ctx, bills.map((b) => b.billId));
    assert.equal(r.done, 3, JSON.stringify(r.items));
    const [a, b, c] = await Promise.all(bills.map(async (bill) => pdfText((await s.production.storedPdf(bill.billId))!.pdf)));
    const money = (minor: number) => formatMoney(minor, 'USD');
    // Itemised: each line's price.
    assert.ok(a!.includes('Hearing') && a!.includes(money(60_000)) && a!.includes(money(30_000)) && a!.includes(money(bills[0]!.totals.totalMinor)), a);
    // Total-only: the work listed, no line's price, the totals.
    assert.ok(b!.includes('Hearing') && b!.includes('Research'), b);
    assert.ok(!b!.includes(money(60_000)) && !b!.includes(money(30_000)) && !b!.includes(money(35_000)), `no line pricing: ${b}`);
    assert.ok(b!.includes(money(bills[1]!.totals.totalMinor)) && b!.includes('Total time: 3:30 hours'), b);
    // Fixed fee: the instalment and its amount.
    assert.ok(c!.includes('Fixed fee') && c!.includes('Lease review: first instalment') && c!.includes(money(40_000)), c);
    assert.ok(c!.includes(bills[2]!.number!) && c!.includes(money(bills[2]!.totals.totalMinor)), c);
    const templates = await db.db.selectFrom('billing_bill_pdf').select(['bill_id', 'template']).execute();
    assert.deepEqual(Object.fromEntries(templates.map((t) => [t.bill_id, t.template])), {
      [bills[0]!.billId]: 'itemised', [bills[1]!.billId]: 'total_only', [bills[2]!.billId]: 'fixed_fee',
    });
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});

eachDialect('a bill\'s own template (set by mass billing or the composer) picks its PDF over the matter\'s', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const f = await firm(s.matters);
    const open = (name: string) => s.matters.openMatter(ctx, { clientId: f.client.id, name, responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH' });
    const matters = [f.matter, await open('Kestrel appeal'), await open('Northwind lease review')];
    // Every matter asks for the total-only bill.
    for (const m of matters) {
      await s.matters.setBillingOptions(ctx, m.id, { set: { copiesToPrint: 0, sendTo: [], useClientAddress: false, billTemplate: 'total-only' } });
      await work(s.matters, m.id, f);
    }
    await s.drain();
    // The first bill names the itemised template itself; the second names none; the third one the firm does not have.
    const requests = [{ template: 'itemised' }, {}, { template: 'no-such-template' }];
    // Drafting refuses a template the firm does not have, naming the field and the templates there are.
    const refusedDraft = await s.billing.createDraft(ctx, { matterId: matters[2]!.id, invoiceDate: '2026-03-01', upTo: '2026-02-28', request: requests[2]! }).then(() => null, (e: unknown) => e);
    assert.equal((refusedDraft as { status?: number })?.status, 422);
    assert.match((refusedDraft as { fields: Record<string, string> }).fields.template!, /^no bill template named "no-such-template" \(templates: .*itemised/);
    assert.equal((await db.db.selectFrom('billing_bill').select('id').where('matter_id', '=', matters[2]!.id).execute()).length, 0, 'nothing drafted');
    const bills = [];
    for (const [i, m] of matters.entries()) {
      const d = await s.billing.createDraft(ctx, { matterId: m.id, invoiceDate: '2026-03-01', upTo: '2026-02-28', request: i === 2 ? {} : requests[i]! });
      bills.push(await s.billing.approve(ctx, d.billId));
    }
    // A bill stored before templates were checked may still name one the firm does not have: its PDF uses the matter's.
    await db.db.updateTable('billing_bill').set({ request_json: JSON.stringify(requests[2]) }).where('id', '=', bills[2]!.billId).execute();
    await s.drain();
    const r = await s.production.produceBills(ctx, bills.map((b) => b.billId));
    assert.equal(r.done, 3, JSON.stringify(r.items));
    const money = (minor: number) => formatMoney(minor, 'USD');
    const [own, matterOnes, unknown] = await Promise.all(bills.map(async (bill) => pdfText((await s.production.storedPdf(bill.billId))!.pdf)));
    // Itemised: line prices shown.
    assert.ok(own!.includes('Hearing') && own!.includes(money(60_000)) && own!.includes(money(30_000)), own);
    // The matter's total-only template: the work, no line prices, the total time.
    for (const text of [matterOnes!, unknown!]) {
      assert.ok(text.includes('Hearing') && text.includes('Total time: 3:30 hours'), text);
      assert.ok(!text.includes(money(60_000)) && !text.includes(money(30_000)), `no line pricing: ${text}`);
    }
    const templates = await db.db.selectFrom('billing_bill_pdf').select(['bill_id', 'template']).execute();
    assert.deepEqual(Object.fromEntries(templates.map((t) => [t.bill_id, t.template])), {
      [bills[0]!.billId]: 'itemised', [bills[1]!.billId]: 'total_only', [bills[2]!.billId]: 'total_only',
    });
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});

eachDialect('two producers claiming batches of bills in opposite orders: no deadlock, each bill produced once', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const bills = await approvedBills(s, 4, { copiesToPrint: 1, useClientAddress: false, sendTo: ['ap@northwind.example'] });
    const ids = bills.map((b) => b.billId);
    const other = createProduction({ db: db.db, clock: s.clock, logger, outputs: testOutputs(dirs) }, s.billing);
    // One worker each: each claims the same four bills in one transaction, in opposite orders.
    for (let round = 0; round < 3; round++) {
      const [r1, r2] = await Promise.all([s.production.produceBills(ctx, ids, { concurrency: 1 }), other.produceBills(ctx, [...ids].reverse(), { concurrency: 1 })]);
      for (const r of [r1, r2]) assert.equal(r.failed, 0, JSON.stringify(r.items.filter((i) => i.outcome === 'failed')));
    }
    await s.production.produceBills(ctx, ids);
    assert.equal(readEml(dirs.mail).length, 4, 'one email per bill');
    assert.equal(filesIn(dirs.print).length, 4, 'one copy per bill');
    for (const id of ids) {
      assert.equal((await s.billing.findBill(id))!.status, 'finalised');
      assert.equal(await auditCount(db, 'billing.bill_pdf_stored', id), 1);
      assert.equal(await auditCount(db, 'billing.bill_emailed', id), 1);
    }
    const leases = await db.db.selectFrom('billing_bill_production').select('claim_token').where('claim_token', 'is not', null).execute();
    assert.equal(leases.length, 0, 'every lease released');
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});

eachDialect('a run\'s leases renewed while a batch of its outcomes is written: both take the rows in bill-id order, so neither waits on the other in a circle (Postgres found a deadlock before)', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const bills = await approvedBills(s, 2);
    const [x, y] = inBillOrder(bills) as [Bill, Bill];
    const at = s.clock.now().toISOString();
    const until = new Date(s.clock.now().getTime() + LEASE_MS).toISOString();
    // Each bill claimed by a claim of its own: two tokens, listed with the later bill first.
    const tokens = { x: randomUUID(), y: randomUUID() };
    for (const [b, token] of [[x, tokens.x], [y, tokens.y]] as const) {
      await db.db.transaction().execute(async (trx) => { assert.equal((await claimMany(trx, [{ billId: b.billId, cycle: b.approvedAt! }], token, at, until)).size, 1); });
    }
    let firstReleased!: () => void;
    const released = new Promise<void>((go) => { firstReleased = go; });
    let goOn!: () => void;
    const secondMayGo = new Promise<void>((go) => { goOn = go; });
    // The outcomes' batch: x released, then (once the renewal waits) y.
    const writing = db.db.transaction().execute(async (trx) => {
      await release(trx, x.billId, x.approvedAt!, tokens.x, at);
      firstReleased();
      await secondMayGo;
      await release(trx, y.billId, y.approvedAt!, tokens.y, at);
    });
    await released;
    const renewing = db.db.transaction().execute((trx) => renewLeases(trx, [{ billId: y.billId, token: tokens.y }, { billId: x.billId, token: tokens.x }], at, until));
    if (db.dialect === 'postgres') {
      // Until the renewal waits for a row the batch holds (x, taken first now; y, then x, before).
      const waiting = async () => Number((await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`.execute(db.db)).rows[0]!.n);
      for (let i = 0; i < 500 && await waiting() === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(await waiting(), 1, 'the renewal waits for the batch');
    }
    goOn();
    const [w, r] = await Promise.allSettled([writing, renewing]);
    assert.equal(w.status, 'fulfilled', `the outcomes are written: ${w.status === 'rejected' ? String(w.reason) : ''}`);
    assert.equal(r.status, 'fulfilled', `the leases are renewed: ${r.status === 'rejected' ? String(r.reason) : ''}`);
    const rows = await db.db.selectFrom('billing_bill_production').select(['bill_id', 'claim_token']).where('bill_id', 'in', [x.billId, y.billId]).execute();
    assert.deepEqual(rows.map((row) => row.claim_token), [null, null], 'both released; the renewal left released leases alone');
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});

eachDialect('bill PDFs: the bill-to block, notes and footer keep their lines; a fixed fee written from time says so; the fixed-fee layout hides line prices when the matter does; dates are whole', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const f = await firm(s.matters);
    const client = await s.matters.createClient(ctx, { name: 'Harbour Freight Ltd', email: 'ap@harbour.example', address: '1 Quay Road\nPortsmouth PO1 2AB', taxId: 'GB123456789' });
    const open = (name: string) => s.matters.openMatter(ctx, { clientId: client.id, name, responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH' });
    const writtenToFee = await open('Harbour lease review');
    const hidden = await open('Harbour dispute');
    const quiet = { copiesToPrint: 0 as const, sendTo: [], useClientAddress: false };
    // Every cycle a fixed fee of 1,000.00; the recorded time is written to it.
    await s.matters.setBillingOptions(ctx, writtenToFee.id, { set: {
      ...quiet, billTemplate: 'fixed-fee', arrangement: 'fixed_fee', quote: { amountMinor: 100_000 }, fixedFee: { mode: 'every_cycle', schedule: [] },
    } });
    // The fixed-fee layout on a matter that hides line pricing.
    await s.matters.setBillingOptions(ctx, hidden.id, { set: { ...quiet, billTemplate: 'fixed-fee', feeReductions: { appearAsDiscount: false, hideLinePricing: true } } });
    await work(s.matters, writtenToFee.id, f);
    await work(s.matters, hidden.id, f);
    const settings = await s.production.getSettings();
    await s.production.saveSettings(ctx, { ...settings, firmName: 'Holloway & Stern LLP', paymentNote: 'Wire to account 123', expectedVersion: settings.version });
    await s.production.saveBillTemplate(ctx, { name: 'fixed-fee', layout: 'fixed_fee', title: 'Tax invoice', footer: 'Thank you for instructing us' });
    await s.drain();
    const bills = [];
    for (const m of [writtenToFee, hidden]) {
      const d = await s.billing.createDraft(ctx, { matterId: m.id, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
      bills.push(await s.billing.approve(ctx, d.billId));
    }
    await s.drain();
    const r = await s.production.produceBills(ctx, bills.map((b) => b.billId));
    assert.equal(r.done, 2, JSON.stringify(r.items));
    const [a, b] = await Promise.all(bills.map(async (bill) => pdfText((await s.production.storedPdf(bill.billId))!.pdf)));
    const money = (minor: number) => formatMoney(minor, 'USD');
    const lineOf = (text: string, needle: string) => text.split('\n').find((l) => l.includes(needle)) ?? '';
    for (const text of [a!, b!]) {
      // Name, each address line and the tax id on lines of their own (pdftotext -layout keeps the lines).
      assert.doesNotMatch(lineOf(text, 'Harbour Freight Ltd'), /Quay Road|GB123456789/, text);
      assert.doesNotMatch(lineOf(text, '1 Quay Road'), /Portsmouth|Tax id/, text);
      assert.match(text, /Tax id GB123456789/);
      assert.doesNotMatch(lineOf(text, 'Wire to account 123'), /Thank you/, text);
      assert.match(text, /Thank you for instructing us/);
      assert.match(lineOf(text, 'Hearing'), /2026-02-10/, 'the date is on the line, not broken across two');
    }
    // The fixed fee written from the time: said so, with its amount; the work listed without prices.
    assert.doesNotMatch(a!, /No fixed-fee instalment is billed/);
    assert.match(a!, new RegExp(`The fixed fee of ${money(100_000).replace(/[$.]/g, '\\$&')}: the work below, written to the fee`));
    assert.equal(bills[0]!.totals.feesMinor, 100_000);
    // Hidden line pricing: no disbursement's price (35,000.00 filing fee, 15.00 copies), the totals still there.
    assert.ok(b!.includes('Filing fee') && !b!.includes(money(35_000)) && !b!.includes(money(60_000)), b);
    assert.ok(b!.includes(money(bills[1]!.totals.totalMinor)), b);
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});

eachDialect('a matter naming a bill or email template the firm does not have: its bill is not produced, the reason names the template; put right, the retry produces it', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    // Matters now refuses a template name billing has not told it of (test/matters/audit-template-names.test.ts); a matter
    // saved before that (matters knowing no names) can still name one, and production must still refuse it.
    await db.db.deleteFrom('matters_template').execute();
    const [bill] = await approvedBills(s, 1, { copiesToPrint: 0, billTemplate: 'total only' });
    const first = await s.production.produceBills(ctx, [bill!.billId]);
    assert.equal(first.failed, 1, JSON.stringify(first.items));
    assert.match(first.items[0]!.error ?? '', /^pdf: The matter's bill template "total only" is not one of the firm's/);
    assert.equal((await s.billing.findBill(bill!.billId))!.status, 'approved', 'not finalised');
    assert.deepEqual([await s.production.storedPdf(bill!.billId), filesIn(dirs.mail)], [null, []], 'nothing stored or sent');
    // The template put right, the email template wrong: the PDF is made, the email refused.
    await s.matters.setBillingOptions(ctx, bill!.matterId, { set: { billTemplate: 'total-only', emailTemplate: 'reminder' } });
    await s.drain();
    const second = await s.production.produceBills(ctx, [bill!.billId]);
    assert.match(second.items[0]!.error ?? '', /^email: The matter's email template "reminder" is not one of the firm's/);
    assert.deepEqual(filesIn(dirs.mail), []);
    await s.matters.setBillingOptions(ctx, bill!.matterId, { inherit: ['emailTemplate'] });
    await s.drain();
    const third = await s.production.produceBills(ctx, [bill!.billId]);
    assert.equal(third.done, 1, JSON.stringify(third.items));
    assert.equal((await s.billing.findBill(bill!.billId))!.status, 'finalised');
    const pdf = await db.db.selectFrom('billing_bill_pdf').select('template').where('bill_id', '=', bill!.billId).executeTakeFirstOrThrow();
    assert.equal(pdf.template, 'total_only', 'the template asked for, not the standard one');
    assert.equal(filesIn(dirs.mail).length, 1, 'mailed once');
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});

eachDialect('the bill\'s sections add up to its totals: a rate only beside hours at that rate, fixed charges priced in their own section, a fixed-fee instalment at what the bill charges for it', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const f = await firm(s.matters);
    const quiet = { copiesToPrint: 0 as const, sendTo: [], useClientAddress: false };
    const lease = await s.matters.createChargeType(ctx, { code: 'LEASE', name: 'Lease review', defaultPriceMinor: 75_000 });
    // Itemised: 2 h partner (600.00) written down to 500.00, 1.5 h associate at 200.00 (300.00), a fixed charge of 750.00.
    await s.matters.setBillingOptions(ctx, f.matter.id, { set: { ...quiet } });
    await work(s.matters, f.matter.id, f);
    await s.matters.recordFixedCharge(ctx, { matterId: f.matter.id, chargeTypeId: lease.id, chargedOn: '2026-02-15' });
    // Fixed fee on a schedule (instalment of 1,000.00 due 1 March), a 10% discount written into the lines, a fixed charge on top.
    const ff = await s.matters.openMatter(ctx, { clientId: f.client.id, name: 'Fixed fee matter', responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH' });
    await s.matters.setBillingOptions(ctx, ff.id, { set: {
      ...quiet, billTemplate: 'fixed-fee', arrangement: 'fixed_fee', quote: { amountMinor: 100_000 }, discount: { kind: 'percentage', percentBasisPoints: 1_000, amountMinor: 0 },
      feeReductions: { appearAsDiscount: false, hideLinePricing: false },
      fixedFee: { mode: 'custom_schedule', schedule: [{ rowId: 'row-1', amountMinor: 100_000, description: 'Instalment 1', billOn: '2026-03-01', billOnStep: null, payOnStep: null, invoiceNumber: null }] },
    } });
    await s.matters.recordTimeEntry(ctx, { matterId: ff.id, timekeeperId: f.partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Drafting' });
    await s.matters.recordFixedCharge(ctx, { matterId: ff.id, chargeTypeId: lease.id, chargedOn: '2026-02-15' });
    await s.production.saveBillTemplate(ctx, { name: 'fixed-fee', layout: 'fixed_fee', title: 'Tax invoice', footer: '' });
    await s.drain();
    const itemised = await s.billing.approve(ctx, (await s.billing.createDraft(ctx, { matterId: f.matter.id, invoiceDate: '2026-03-01', upTo: '2026-02-28', request: { writeTo: { timekeeper: { [f.partner.id]: 50_000 } } } })).billId);
    const fixedFee = await s.billing.approve(ctx, (await s.billing.createDraft(ctx, { matterId: ff.id, invoiceDate: '2026-03-01', upTo: '2026-02-28' })).billId);
    await s.drain();
    const money = (minor: number) => formatMoney(minor, 'USD');
    const section = (html: string, title: string) => html.split(`<h2>${title}</h2>`)[1]?.split('</table>')[0] ?? '';
    const amountsIn = (part: string) => [...part.matchAll(/<td class="num">(\$[\d,]+\.\d\d)\*?<\/td><\/tr>/g)].map((m) => Number(m[1]!.replace(/[$,]/g, '')) * 100);

    const a = (await s.production.billHtml(itemised, { preview: false })).html;
    const services = section(a, 'Professional services');
    // The written-down line: its amount, marked, and no rate beside it; the associate's line: hours at the rate.
    assert.match(services, new RegExp(`<td class="num">2:00</td><td class="num"></td><td class="num">${money(50_000).replace(/[$.]/g, '\\$&')}\\*</td>`));
    assert.match(services, new RegExp(`<td class="num">1:30</td><td class="num">${money(20_000).replace(/[$.]/g, '\\$&')}</td><td class="num">${money(30_000).replace(/[$.]/g, '\\$&')}</td>`));
    assert.match(a, /\* Written up or down from the time recorded/);
    assert.equal(amountsIn(services).reduce((x, y) => x + y, 0), itemised.totals.feesMinor, 'the services add up to Professional fees');
    assert.deepEqual(amountsIn(section(a, 'Fixed charges')), [itemised.totals.fixedChargesMinor]);
    assert.equal(itemised.totals.fixedChargesMinor, 75_000);

    const b = (await s.production.billHtml(fixedFee, { preview: false })).html;
    // The instalment at the schedule's 1,000.00, the 10% written into the fee shown apart, and what this bill charges for it.
    assert.match(b, new RegExp(`data-adjustment>-?${money(-10_000).replace(/[$.]/g, '\\$&')}<`));
    assert.match(b, new RegExp(`data-fixed-fee>${money(fixedFee.totals.feesMinor).replace(/[$.]/g, '\\$&')}<`));
    assert.equal(fixedFee.totals.feesMinor, 90_000);
    // The fixed charge priced in its own section, not listed unpriced under the work the fee covers.
    assert.doesNotMatch(section(b, 'Work covered'), /Lease review/);
    assert.deepEqual(amountsIn(section(b, 'Fixed charges')), [fixedFee.totals.fixedChargesMinor]);
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});

eachDialect('a produced bill re-drafted, changed and approved again has no final PDF until it is produced again; a deleted bill has none', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const [bill, other] = await approvedBills(s, 2, { copiesToPrint: 0, useClientAddress: false, sendTo: [] });
    assert.equal((await s.production.produceBills(ctx, [bill!.billId, other!.billId])).done, 2);
    await s.drain();
    const first = await s.production.storedPdf(bill!.billId);
    assert.ok(first && pdfText(first.pdf).includes(formatMoney(bill!.totals.totalMinor, 'USD')));

    const redrafted = await s.billing.redraft(ctx, bill!.billId);
    await s.drain();
    assert.equal(await s.production.storedPdf(bill!.billId), null, 'a draft has no final PDF');
    const changed = await s.billing.updateDraft(ctx, bill!.billId, { request: { ...redrafted.request, discount: { kind: 'percentage', percentBasisPoints: 5000, amountMinor: 0 } } });
    assert.ok(changed.totals.totalMinor < bill!.totals.totalMinor);
    // The clock has not moved since the first approval: the second is still an approval of its own (a later time).
    const again = await s.billing.approve(ctx, bill!.billId);
    await s.drain();
    assert.ok(again.approvedAt! > bill!.approvedAt!, `${again.approvedAt} after ${bill!.approvedAt}`);
    assert.equal(await s.production.storedPdf(bill!.billId), null, 'the old PDF is not this approval\'s');
    const draft = await s.production.manualDraft(bill!.billId);
    assert.equal(draft.hasStoredPdf, false, 'email manually attaches the bill rendered now');

    assert.equal((await s.production.produceBills(ctx, [bill!.billId])).done, 1);
    const second = await s.production.storedPdf(bill!.billId);
    const text = pdfText(second!.pdf);
    assert.ok(text.includes(formatMoney(again.totals.totalMinor, 'USD')) && !text.includes(formatMoney(bill!.totals.totalMinor, 'USD')), text);

    // The most recent bill of its matter, deleted: its PDF goes with it.
    await s.billing.redraft(ctx, other!.billId);
    await s.billing.deleteBill(ctx, other!.billId);
    await s.drain();
    await assert.rejects(s.production.storedPdf(other!.billId), (e: Error & { status?: number }) => e.status === 404);
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});

eachDialect('a bill re-approved from the draft bills page (approve many) at the instant of its previous approval is an approval of its own: produced again, emailed and printed again, with the new PDF', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const [bill] = await approvedBills(s, 1, { copiesToPrint: 1, useClientAddress: false, sendTo: ['ap@northwind.example'] });
    assert.equal((await s.production.produceBills(ctx, [bill!.billId])).done, 1);
    await s.drain();
    const redrafted = await s.billing.redraft(ctx, bill!.billId);
    await s.drain();
    const changed = await s.billing.updateDraft(ctx, bill!.billId, { request: { ...redrafted.request, discount: { kind: 'percentage', percentBasisPoints: 5000, amountMinor: 0 } } });
    assert.ok(changed.totals.totalMinor < bill!.totals.totalMinor);
    // The clock has not moved since the first approval: the bulk approval still takes a later time of its own.
    const [outcome] = await s.mass.approveMany(ctx, [bill!.billId]);
    assert.equal(outcome?.ok, true, JSON.stringify(outcome));
    await s.drain();
    const again = (await s.billing.findBill(bill!.billId))!;
    assert.equal(again.status, 'approved');
    assert.ok(again.approvedAt! > bill!.approvedAt!, `${again.approvedAt} after ${bill!.approvedAt}`);
    const row = await db.db.selectFrom('billing_bill').select(['approved_at', 'updated_at']).where('id', '=', bill!.billId).executeTakeFirstOrThrow();
    assert.equal(row.approved_at, again.approvedAt, 'the stored approval time is the one the bill and its event carry');
    assert.equal(await s.production.storedPdf(bill!.billId), null, 'the old PDF is not this approval\'s');

    const second = await s.production.produceBills(ctx, [bill!.billId]);
    assert.equal(second.done, 1, JSON.stringify(second.items));
    assert.equal((await s.billing.findBill(bill!.billId))!.status, 'finalised');
    const text = pdfText((await s.production.storedPdf(bill!.billId))!.pdf);
    assert.ok(text.includes(formatMoney(changed.totals.totalMinor, 'USD')) && !text.includes(formatMoney(bill!.totals.totalMinor, 'USD')), text);
    assert.equal(readEml(dirs.mail).length, 2, 'emailed once for each approval');
    assert.equal(filesIn(dirs.print).length, 2, 'one copy printed for each approval');
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});

eachDialect('a matter that hides line pricing: no layout prices the adjustments\' lines (interest, a discount); the totals show them once', async (db) => {
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs));
  try {
    const f = await firm(s.matters);
    await s.matters.setBillingOptions(ctx, f.matter.id, { set: {
      copiesToPrint: 0, sendTo: [], useClientAddress: false, billTemplate: 'standard',
      feeReductions: { appearAsDiscount: true, hideLinePricing: true }, discount: { kind: 'percentage', percentBasisPoints: 1000, amountMinor: 0 },
    } });
    await work(s.matters, f.matter.id, f);
    await s.drain();
    for (const template of ['itemised', 'fixed-fee', 'total-only']) {
      const d = await s.billing.createDraft(ctx, { matterId: f.matter.id, invoiceDate: '2026-03-01', upTo: '2026-02-28', request: { template, interestMinor: 1_234 } });
      assert.equal(d.hideLinePricing, true);
      assert.ok(d.totals.discountMinor > 0);
      const text = pdfText((await s.production.previewPdf(d.billId)).pdf);
      const count = (needle: string) => text.split(needle).length - 1;
      assert.equal(count(formatMoney(1_234, 'USD')), 1, `${template}: interest only in the totals\n${text}`);
      assert.equal(count(formatMoney(d.totals.discountMinor, 'USD')), 2, `${template}: the discount in the totals and its note only\n${text}`);
      await s.billing.deleteDraft(ctx, d.billId);
      await s.drain();
    }
  } finally {
    await s.stop();
    removeDirs(dirs);
  }
});

eachDialect('the same "Email manually" form posted to two server processes at once is sent once over SMTP', async (db) => {
  // The server takes a moment to answer, so both posts are in flight together.
  const smtp = await scriptedSmtp(() => ({ delayMs: 300 }));
  const dirs = outputDirs();
  const outputs = testOutputs(dirs, { smtpPort: smtp.port });
  const s = await productionSetup(db, outputs);
  // The second process: its own production (its own in-flight guard), on its own connections where the database has them.
  const second = db.dialect === 'postgres' ? openDatabase(db.url) : null;
  try {
    const [bill] = await approvedBills(s, 1, SEND);
    const other = createProduction({ db: second?.db ?? db.db, clock: s.clock, logger, outputs }, s.billing);
    const form = { key: randomUUID(), to: 'ap@northwind.example', cc: '', subject: 'Your invoice', text: 'Please find it attached.' };
    const results = await Promise.allSettled([s.production.sendManual(ctx, bill!.billId, form), other.sendManual(ctx, bill!.billId, form)]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled'], JSON.stringify(results.map((r) => (r.status === 'rejected' ? String(r.reason) : ''))));
    assert.equal(smtp.received.length, 1, 'one message reached the server');
    // The same form posted again later, to either process: nothing more.
    await s.production.sendManual(ctx, bill!.billId, form);
    await other.sendManual(ctx, bill!.billId, form);
    assert.equal(smtp.received.length, 1);
    assert.equal((await db.db.selectFrom('billing_manual_email').select('id').execute()).length, 1);
    assert.equal(await auditCount(db, 'billing.bill_emailed_manually', bill!.billId), 1);
    assert.deepEqual(await db.db.selectFrom('billing_manual_email_claim').selectAll().execute(), [], 'no claim is left behind');
    // Another form (the page reloaded) is another message.
    await other.sendManual(ctx, bill!.billId, { ...form, key: randomUUID() });
    assert.equal(smtp.received.length, 2);
  } finally {
    await s.stop();
    await second?.close();
    await outputs.close();
    await smtp.close();
    removeDirs(dirs);
  }
});

eachDialect('a manual email the server did not confirm, or whose sender stopped mid-send, is not sent again by the same form; a fresh form sends it; a refused one is sent when posted again', async (db) => {
  let mode: 'late' | 'refuse' | 'ok' = 'late';
  const smtp = await scriptedSmtp(() => (mode === 'late' ? { delayMs: 1_500 } : mode === 'refuse' ? { code: 451 } : {}));
  const dirs = outputDirs();
  const outputs = smtpOutputs(dirs, smtp.port, 400);
  const s = await productionSetup(db, outputs);
  try {
    const [bill] = await approvedBills(s, 1, SEND);
    const form = { key: randomUUID(), to: 'ap@northwind.example', cc: '', subject: 'Your invoice', text: 'Please find it attached.' };
    await assert.rejects(s.production.sendManual(ctx, bill!.billId, form), (e: HttpError) => e.status === 409 && e.code === EMAIL_UNCONFIRMED && /may have been sent/.test(e.message));
    assert.equal(smtp.received.length, 1, 'the server took it');
    mode = 'ok';
    await new Promise((r) => setTimeout(r, 1_600));
    await assert.rejects(s.production.sendManual(ctx, bill!.billId, form), (e: HttpError) => e.code === EMAIL_UNCONFIRMED, 'the same form posted again');
    assert.equal(smtp.received.length, 1, 'not sent again');
    assert.equal(await auditCount(db, 'billing.bill_email_unconfirmed', bill!.billId), 1);
    await s.production.sendManual(ctx, bill!.billId, { ...form, key: randomUUID() });
    assert.equal(smtp.received.length, 2, 'a fresh form is the clerk sending it again');

    // A sender that stopped mid-send: its claim is left; once its lease has run out the form is refused, not sent.
    const stopped = { ...form, key: randomUUID(), subject: 'Stopped' };
    const key = manualEmailKey(stopped.key, bill!.billId, { to: [stopped.to], cc: [], subject: stopped.subject, text: stopped.text });
    await db.db.insertInto('billing_manual_email_claim').values({
      id: key, bill_id: bill!.billId, token: 'dead-process', state: 'sending', claimed_until: new Date(s.clock.now().getTime() + LEASE_MS).toISOString(), created_at: s.clock.now().toISOString(),
    }).execute();
    s.clock.advanceMs(LEASE_MS + 1_000);
    await assert.rejects(s.production.sendManual(ctx, bill!.billId, stopped), (e: HttpError) => e.code === EMAIL_UNCONFIRMED);
    assert.equal(smtp.received.length, 2);

    // Refused for certain (451): nothing went; the same form posted again sends it.
    mode = 'refuse';
    const refused = { ...form, key: randomUUID(), subject: 'Refused first' };
    await assert.rejects(s.production.sendManual(ctx, bill!.billId, refused), (e: Error & { code?: string }) => e.code !== EMAIL_UNCONFIRMED && /451|Try again/.test(e.message));
    mode = 'ok';
    await s.production.sendManual(ctx, bill!.billId, refused);
    assert.equal(smtp.received.filter((m) => m.subject === 'Refused first').length, 1);
  } finally {
    await s.stop();
    await outputs.close();
    await smtp.close();
    removeDirs(dirs);
  }
});

eachDialect('an email the SMTP server took but did not confirm in time is shown as maybe sent and not resent by a retry; the clerk sends it again or marks it sent; a refused one is resent by the retry', async (db) => {
  // Per bill (by the subject's number): the first send of two bills is answered too late, one is refused (451), the fourth goes.
  let first = true;
  const smtp = await scriptedSmtp((raw) => {
    if (!first) return {};
    if (/Subject: Invoice 1\.(1|2)\.1 /.test(raw)) return { delayMs: 1_500 };
    if (/Subject: Invoice 1\.3\.1 /.test(raw)) return { code: 451 };
    return {};
  });
  const dirs = outputDirs();
  const outputs = smtpOutputs(dirs, smtp.port, 400);
  const s = await productionSetup(db, outputs);
  const sentFor = (number: string) => smtp.received.filter((m) => m.subject.startsWith(`Invoice ${number} `));
  try {
    const bills = await approvedBills(s, 4, { copiesToPrint: 1, useClientAddress: false, sendTo: ['ap@northwind.example'] });
    const [late1, late2, refused, fine] = [...bills].sort((x, y) => x.number!.localeCompare(y.number!));
    assert.deepEqual([late1, late2, refused, fine].map((b) => b!.number), ['1.1.1', '1.2.1', '1.3.1', '1.4.1']);
    const run1 = await s.production.produceBills(ctx, bills.map((b) => b.billId), { concurrency: 2 });
    const item = (r: typeof run1, id: string) => r.items.find((i) => i.billId === id)!;
    for (const b of [late1, late2]) {
      assert.equal(item(run1, b!.billId).outcome, 'failed');
      assert.match(item(run1, b!.billId).error ?? '', /^email: may have been sent \(the mail server did not confirm it/);
      assert.equal(sentFor(b!.number!).length, 1, 'the server took it');
    }
    assert.match(item(run1, refused!.billId).error ?? '', /^email: .*451/);
    assert.equal(item(run1, fine!.billId).outcome, 'done');
    first = false;
    await new Promise((r) => setTimeout(r, 1_600));
    s.clock.advanceMs(60_000);

    // A plain retry: the refused bill is sent and finalised; the unconfirmed ones are not sent again.
    const retry = await s.production.produceBills(ctx, [late1!.billId, late2!.billId, refused!.billId]);
    assert.equal(item(retry, refused!.billId).outcome, 'done', JSON.stringify(retry.items));
    assert.equal(sentFor(refused!.number!).length, 1);
    for (const b of [late1, late2]) {
      assert.equal(item(retry, b!.billId).outcome, 'failed');
      assert.match(item(retry, b!.billId).error ?? '', /may have been sent .*not sent again/);
      assert.equal(sentFor(b!.number!).length, 1, `${b!.number} not resent by the retry`);
      assert.equal((await s.billing.findBill(b!.billId))!.status, 'approved');
      assert.equal(await auditCount(db, 'billing.bill_email_unconfirmed', b!.billId), 1);
    }
    const view = (await s.production.runView(retry.runId))!;
    assert.deepEqual(view.items.filter((i) => i.emailUnconfirmed).map((i) => i.billId).sort(), [late1!.billId, late2!.billId].sort());

    // Its matter's send-to emptied since (review 61 F7): the email that may have gone is still the clerk's to decide, the bill
    // not finalised as if none had gone.
    await s.matters.setBillingOptions(ctx, late1!.matterId, { set: { sendTo: [] } });
    await s.drain();
    const emptied = await s.production.produceBills(ctx, [late1!.billId]);
    assert.equal(item(emptied, late1!.billId).outcome, 'failed', JSON.stringify(emptied.items));
    assert.match(item(emptied, late1!.billId).error ?? '', /may have been sent .*not sent again/);
    assert.equal((await s.billing.findBill(late1!.billId))!.status, 'approved');
    assert.deepEqual((await s.production.runView(emptied.runId))!.items.map((i) => i.emailUnconfirmed), [true]);

    // The clerk marks one as sent: produced without sending; sends the other again: sent once more (same Message-ID).
    await s.production.decideUnconfirmedEmail(ctx, late1!.billId, 'mark_sent');
    await s.production.decideUnconfirmedEmail(ctx, late2!.billId, 'resend');
    await assert.rejects(s.production.decideUnconfirmedEmail(ctx, late2!.billId, 'mark_sent'), /no unconfirmed send/, 'decided once');
    const last = await s.production.produceBills(ctx, [late1!.billId, late2!.billId]);
    assert.equal(last.done, 2, JSON.stringify(last.items));
    assert.equal(sentFor(late1!.number!).length, 1, 'marked as sent: not sent again');
    assert.equal(sentFor(late2!.number!).length, 2, 'sent again as the clerk chose');
    assert.equal(new Set(sentFor(late2!.number!).map((m) => m.messageId)).size, 1, 'the same Message-ID');
    assert.equal(await auditCount(db, 'billing.bill_email_marked_sent', late1!.billId), 1);
    assert.equal(await auditCount(db, 'billing.bill_email_resend_chosen', late2!.billId), 1);
    for (const b of bills) assert.equal((await s.billing.findBill(b.billId))!.status, 'finalised');
    assert.equal(filesIn(dirs.print).length, 4, 'each bill printed once');
  } finally {
    await s.stop();
    await outputs.close();
    await smtp.close();
    removeDirs(dirs);
  }
});

eachDialect('a process that stopped after printing into the print folder of before (PRINT_DIR changed since): the retry prints no copy twice and skips none', async (db) => {
  const dirs = outputDirs();
  const before = join(dirs.root, 'print-before');
  const outputs = testOutputs(dirs);
  const s = await productionSetup(db, outputs);
  try {
    const [a, b, c] = await approvedBills(s, 3, { copiesToPrint: 2, useClientAddress: false, sendTo: [] });
    // A bill produced now records the folder it prints to, with its claim.
    assert.equal((await s.production.produceBills(ctx, [c!.billId])).done, 1);
    const stC = await db.db.selectFrom('billing_bill_production').select(['print_targets']).where('bill_id', '=', c!.billId).executeTakeFirstOrThrow();
    assert.deepEqual(JSON.parse(stC.print_targets as string), [resolve(dirs.print)]);
    assert.equal(filesIn(dirs.print).length, 2);

    // The dead process claimed a and b (recording the folder of before), printed a's two copies
    // and b's first there, the print server took them away, and it died before recording anything.
    const oldPrint = createFolderPrint({ dir: before });
    for (const [bill, copies] of [[a!, 2], [b!, 1]] as const) {
      const cycle = bill.approvedAt!;
      await db.db.insertInto('billing_bill_production').values({
        bill_id: bill.billId, cycle, claim_token: 'dead-process', claimed_until: new Date(s.clock.now().getTime() + LEASE_MS).toISOString(),
        attempts: 1, print_targets: JSON.stringify([resolve(before)]), updated_at: s.clock.now().toISOString(),
      }).execute();
      const job = { jobKey: printJobKey(bill.billId, cycle), name: bill.number!, pdf: new TextEncoder().encode('%PDF-1.4 before\n%%EOF'), copies: 2 };
      const paths = await oldPrint.print(job);
      if (copies === 1) {
        // Its second copy never reached the folder (the crash came first).
        unlinkSync(paths[1]!);
        unlinkSync(printRecordFor(before, job.jobKey, 2));
      }
      unlinkSync(paths[0]!);
      if (copies === 2) unlinkSync(paths[1]!);
    }
    s.clock.advanceMs(LEASE_MS + 1_000);
    const retry = await s.production.produceBills(ctx, [a!.billId, b!.billId]);
    assert.equal(retry.done, 2, JSON.stringify(retry.items));
    // Only b's second copy is printed, into the folder of now; a's copies are not printed again.
    const now = filesIn(dirs.print);
    assert.equal(now.length, 3, now.join(', '));
    assert.equal(now.filter((f) => f.includes('copy2of2')).length, 2, 'c\'s and b\'s second copies');
    for (const [bill, here] of [[a!, 0], [b!, 1]] as const) {
      const st = await db.db.selectFrom('billing_bill_production').select(['print_detail', 'print_targets', 'copies']).where('bill_id', '=', bill.billId).executeTakeFirstOrThrow();
      const detail = String(st.print_detail).split('\n');
      assert.equal(detail.length, 2);
      assert.equal(detail.filter((p) => p.startsWith(`${resolve(dirs.print)}/`)).length, here, `${bill.number}: ${st.print_detail}`);
      assert.equal(detail.filter((p) => p.startsWith(`${resolve(before)}/`)).length, 2 - here, `${bill.number}: ${st.print_detail}`);
      assert.deepEqual(JSON.parse(st.print_targets as string), [resolve(before), resolve(dirs.print)]);
      assert.equal((await s.billing.findBill(bill.billId))!.status, 'finalised');
    }
  } finally {
    await s.stop();
    await outputs.close();
    removeDirs(dirs);
  }
});

eachDialect('a process that stopped while emailing a bill over SMTP: the retry does not send it again but shows it may have been sent', async (db) => {
  const smtp = await scriptedSmtp(() => ({}));
  const dirs = outputDirs();
  const outputs = smtpOutputs(dirs, smtp.port, 5_000);
  const s = await productionSetup(db, outputs);
  try {
    const [bill] = await approvedBills(s, 1, { copiesToPrint: 0, useClientAddress: false, sendTo: ['ap@northwind.example'] });
    // The dead process stored the PDF, recorded the send as tried, and died holding the bill.
    await stoppedMidSend(db, s, bill!, 'smtp');
    s.clock.advanceMs(LEASE_MS + 1_000);
    const r = await s.production.produceBills(ctx, [bill!.billId]);
    assert.equal(r.failed, 1, JSON.stringify(r.items));
    assert.match(r.items[0]!.error ?? '', /may have been sent \(an earlier attempt stopped while sending it\)/);
    assert.equal(smtp.received.length, 0);
    assert.equal((await s.billing.findBill(bill!.billId))!.status, 'approved');
    await s.production.decideUnconfirmedEmail(ctx, bill!.billId, 'resend');
    assert.equal((await s.production.produceBills(ctx, [bill!.billId])).done, 1);
    assert.equal(smtp.received.length, 1);
  } finally {
    await s.stop();
    await outputs.close();
    await smtp.close();
    removeDirs(dirs);
  }
});

test('which failed SMTP sends may have delivered the message: a late answer after the data may have; a refusal or a refused connection has not', async () => {
  const message = { messageKey: 'test:classify', from: 'billing@firm.example', to: ['ap@northwind.example'], subject: 'Classify', text: 'x' };
  const failureOf = async (port: number, timeoutMs = 400): Promise<unknown> => {
    const mailer = createSmtpMailer({ host: '127.0.0.1', port, secure: false, timeoutMs });
    try {
      await mailer.send(message);
      return null;
    } catch (err) {
      return err;
    } finally {
      await mailer.close();
    }
  };
  // Refused (451) and taken but answered late, by a real server.
  let how: { code?: number; delayMs?: number } = { code: 451 };
  const smtp = await scriptedSmtp(() => how);
  // A port nobody listens on.
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
  const closedPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  try {
    const refused = await failureOf(smtp.port);
    assert.ok(refused, 'the 451 failed the send');
    assert.equal(mailMayHaveGone('smtp', refused), false, 'a refusal the server answered');
    how = { delayMs: 1_500 };
    const late = await failureOf(smtp.port);
    assert.ok(late, 'the late answer failed the send');
    assert.equal(smtp.received.length, 1, 'the server had the message');
    assert.equal(mailMayHaveGone('smtp', late), true, 'taken, answered too late');
    const noConnection = await failureOf(closedPort);
    assert.ok(noConnection);
    assert.equal(mailMayHaveGone('smtp', noConnection), false, 'connection refused');
    assert.equal(mailMayHaveGone('file-drop', late), false, 'file-drop writes a message once by its key');
    assert.equal(mailMayHaveGone('smtp', new Error('something unknown')), true, 'an error it cannot read is taken as maybe sent');
  } finally {
    await new Promise((r) => setTimeout(r, 1_600));
    await smtp.close();
  }
});

eachDialect('twelve bills at once over SMTP, in two runs: no more bills are marked as having their email tried than the mail server is being sent (a crash leaves at most that many for a clerk)', async (db) => {
  // What the database says while each message's data reaches the server: bills tried and not sent.
  let triedNotSent = 0;
  const sampled: number[] = [];
  const smtp = await startSmtp({
    beforeReply: async () => {
      const r = await db.db.selectFrom('billing_bill_production').select((eb) => eb.fn.countAll().as('n'))
        .where('email_tried_at', 'is not', null).where('emailed_at', 'is', null).executeTakeFirstOrThrow();
      triedNotSent = Math.max(triedNotSent, Number(r.n));
      sampled.push(Number(r.n));
      // A slow answer: the other bills of the run are rendered meanwhile and wait to be sent.
      await new Promise((resolve) => setTimeout(resolve, 40));
    },
  });
  const dirs = outputDirs();
  const s = await productionSetup(db, testOutputs(dirs, { smtpPort: smtp.port }));
  try {
    const bills = await approvedBills(s, 12, { ...SEND, copiesToPrint: 0 });
    // Two runs at once, six bills each: the mail server's connections are the server's, not a run's.
    const runs = await Promise.all([bills.slice(0, 6), bills.slice(6)].map((part) => s.production.produceBills(ctx, part.map((b) => b.billId), { concurrency: 6 })));
    assert.deepEqual(runs.map((r) => r.done), [6, 6], JSON.stringify(runs.map((r) => r.items)));
    assert.equal(smtp.messages.length, 12, 'each bill mailed once');
    assert.equal(sampled.length, 12);
    assert.ok(sampled.some((n) => n === 2), `two sends at once at some point (${sampled.join(',')})`);
    assert.ok(triedNotSent <= 2, `at most 2 bills tried and not sent at once, saw ${triedNotSent} (${sampled.join(',')})`);
  } finally {
    await s.stop();
    removeDirs(dirs);
    await smtp.close();
  }
});
