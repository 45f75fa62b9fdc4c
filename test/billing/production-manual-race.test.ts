/**
 * Email manually and Produce on the same bill at the same time, over a real SMTP server on
 * 127.0.0.1, on both databases: Produce does not email a bill while an email of it is being
 * sent by hand (it fails that bill's email step with the reason, and a retry records the email
 * as done by hand when it reached every address); a manual email that may have gone (the
 * server did not confirm it) stops Produce's email for the clerk to decide; a manual email is
 * refused while the bill is being produced. In no case does the client get the bill twice.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after } from 'node:test';
import { EMAIL_UNCONFIRMED } from '../../src/modules/billing/production.ts';
import type { HttpError } from '../../src/shared/web/errors.ts';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { ctx } from './support.ts';
import { approvedBills, closeSharedPdf, filesIn, outputDirs, productionSetup, removeDirs, scriptedSmtp, smtpOutputs } from './production-support.ts';

after(closeSharedPdf);

const SEND = { copiesToPrint: 1 as const, useClientAddress: false, sendTo: ['ap@northwind.example', 'cfo@northwind.example'] };
const BOTH = 'ap@northwind.example, CFO@northwind.example';

async function auditCount(db: TestDb, action: string, billId: string): Promise<number> {
  const r = await db.db.selectFrom('audit_log').select((eb) => eb.fn.countAll<number>().as('n')).where('action', '=', action).where('entity_id', '=', billId).executeTakeFirstOrThrow();
  return Number(r.n);
}

async function until(what: string, ok: () => boolean | Promise<boolean>, limitMs = 10_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!await ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => { open = r; });
  return { wait, open };
}

type Smtp = Awaited<ReturnType<typeof scriptedSmtp>>;
type Setup = Awaited<ReturnType<typeof productionSetup>>;

/**
 * Production over a scripted SMTP server on 127.0.0.1 (the client's timeout `timeoutMs`), stopped
 * and cleaned up after `fn`; `held`: a gate holding the server's answers, opened first (a test
 * that failed with a message held would otherwise wait on it).
 */
async function withSmtpProduction(db: TestDb, reply: Parameters<typeof scriptedSmtp>[0], timeoutMs: number, fn: (s: Setup, smtp: Smtp, dirs: ReturnType<typeof outputDirs>) => Promise<void>, held?: { open: () => void }): Promise<void> {
  const smtp = await scriptedSmtp(reply);
  const dirs = outputDirs();
  const outputs = smtpOutputs(dirs, smtp.port, timeoutMs);
  const s = await productionSetup(db, outputs);
  try {
    await fn(s, smtp, dirs);
  } finally {
    held?.open();
    await s.stop();
    await outputs.close();
    await smtp.close();
    removeDirs(dirs);
  }
}

eachDialect('Produce does not email a bill while an email of it is being sent by hand; the retry records it as emailed by hand', async (db) => {
  const held = gate();
  await withSmtpProduction(db, (raw) => (/^Subject: By hand/m.test(raw) ? { hold: held.wait } : {}), 10_000, async (s, smtp, dirs) => {
    const [a, b] = await approvedBills(s, 2, SEND);
    const invoices = (bill: typeof a) => smtp.received.filter((m) => m.subject.startsWith(`Invoice ${bill!.number} `));
    // The clerk emails a by hand; the server has the message and has not answered yet.
    const manual = s.production.sendManual(ctx, a!.billId, { key: randomUUID(), to: BOTH, cc: '', subject: 'By hand', text: 'Attached.' });
    await until('the manual email to reach the server', () => smtp.received.some((m) => m.subject === 'By hand'));
    const first = await s.production.produceBills(ctx, [a!.billId, b!.billId]);
    const item = (r: typeof first, id: string) => r.items.find((i) => i.billId === id)!;
    assert.equal(item(first, a!.billId).outcome, 'failed', JSON.stringify(first.items));
    assert.match(item(first, a!.billId).error ?? '', /^email: an email of this bill is being sent by hand \(Email manually\) just now/);
    assert.equal(item(first, b!.billId).outcome, 'done', 'the other bill is produced as usual');
    assert.equal(invoices(a).length, 0, 'Produce sent nothing for a');
    assert.equal(invoices(b).length, 1);
    assert.ok(await s.production.storedPdf(a!.billId), 'its PDF is stored');
    assert.equal(filesIn(dirs.print).length, 2, 'and its copy printed');
    assert.equal((await s.billing.findBill(a!.billId))!.status, 'approved');

    held.open();
    await manual;
    const retry = await s.production.produceBills(ctx, [a!.billId]);
    assert.equal(retry.done, 1, JSON.stringify(retry.items));
    assert.equal(invoices(a).length, 0, 'emailed by hand to both addresses: not emailed again');
    assert.equal(smtp.received.filter((m) => m.subject === 'By hand').length, 1);
    assert.equal(await auditCount(db, 'billing.bill_email_skipped', a!.billId), 1);
    assert.equal((await s.billing.findBill(a!.billId))!.status, 'finalised');
    assert.equal(filesIn(dirs.print).length, 2, 'no copy printed twice');
  }, held);
});

eachDialect('Email manually is refused while the bill is being produced, and sends nothing', async (db) => {
  const held = gate();
  await withSmtpProduction(db, (raw) => (/^Subject: Invoice /m.test(raw) ? { hold: held.wait } : {}), 10_000, async (s, smtp) => {
    const [a] = await approvedBills(s, 1, SEND);
    const producing = s.production.produceBills(ctx, [a!.billId]);
    await until('production to be sending the bill', () => smtp.received.length === 1);
    const form = { key: randomUUID(), to: BOTH, cc: '', subject: 'By hand', text: 'Attached.' };
    await assert.rejects(s.production.sendManual(ctx, a!.billId, form), (e: HttpError) => e.status === 409 && /being produced just now/.test(e.message));
    assert.deepEqual(await db.db.selectFrom('billing_manual_email_claim').selectAll().execute(), [], 'nothing claimed');
    assert.equal(await auditCount(db, 'billing.bill_emailed_manually', a!.billId), 0);
    held.open();
    const done = await producing;
    assert.equal(done.done, 1, JSON.stringify(done.items));
    assert.equal(smtp.received.length, 1, 'the client got the bill once');
    // Produced: the clerk may email it by hand now (the same form).
    await s.production.sendManual(ctx, a!.billId, form);
    assert.equal(smtp.received.filter((m) => m.subject === 'By hand').length, 1);
  }, held);
});

eachDialect('a manual email the server did not confirm stops Produce emailing the bill until the clerk decides (Mark as sent, or Send again, which sends it); one of an earlier approval, or to other addresses, does not', async (db) => {
  await withSmtpProduction(db, (raw) => (/^Subject: By hand/m.test(raw) ? { delayMs: 1_500 } : {}), 400, async (s, smtp) => {
    const [a, b, c, d] = await approvedBills(s, 4, SEND);
    const invoices = (bill: typeof a) => smtp.received.filter((m) => m.subject.startsWith(`Invoice ${bill!.number} `));
    const byHand = (bill: typeof a, to: string) => assert.rejects(s.production.sendManual(ctx, bill!.billId, { key: randomUUID(), to, cc: '', subject: 'By hand', text: 'Attached.' }),
      (e: HttpError) => e.code === EMAIL_UNCONFIRMED);
    for (const bill of [a, b, c]) await byHand(bill, BOTH);
    // d's went to a colleague only: not the client's copy.
    await byHand(d, 'colleague@firm.example');
    // b is reverted and approved again: another bill, whose email is Produce's to send.
    s.clock.advanceMs(1_000);
    await s.billing.revert(ctx, b!.billId);
    await s.billing.approve(ctx, b!.billId);
    const first = await s.production.produceBills(ctx, [a, b, c, d].map((x) => x!.billId));
    const item = (r: typeof first, id: string) => r.items.find((i) => i.billId === id)!;
    for (const x of [a, c]) {
      assert.equal(item(first, x!.billId).outcome, 'failed');
      assert.match(item(first, x!.billId).error ?? '', /^email: may have been sent by hand \(Email manually: the mail server did not confirm it\); Produce did not send it: choose Send again or Mark as sent/);
      assert.equal(invoices(x).length, 0);
      assert.equal(await auditCount(db, 'billing.bill_email_unconfirmed', x!.billId), 2, 'the manual send, and production holding its own');
    }
    for (const x of [b, d]) {
      assert.equal(item(first, x!.billId).outcome, 'done', JSON.stringify(first.items));
      assert.equal(invoices(x).length, 1);
    }
    const view = (await s.production.runView(first.runId))!;
    assert.deepEqual(view.items.filter((i) => i.emailUnconfirmed).map((i) => i.billId).sort(), [a!.billId, c!.billId].sort(), 'Send again / Mark as sent offered');

    // A plain retry sends nothing. The clerk marks a as sent (produced without an email) and sends c again (Produce emails it, once).
    const retry = await s.production.produceBills(ctx, [a!.billId, c!.billId]);
    assert.equal(retry.failed, 2);
    assert.equal(invoices(a).length + invoices(c).length, 0);
    await s.production.decideUnconfirmedEmail(ctx, a!.billId, 'mark_sent');
    await s.production.decideUnconfirmedEmail(ctx, c!.billId, 'resend');
    const last = await s.production.produceBills(ctx, [a!.billId, c!.billId]);
    assert.equal(last.done, 2, JSON.stringify(last.items));
    assert.equal(invoices(a).length, 0);
    assert.equal(invoices(c).length, 1, 'sent again, as the clerk chose');
    for (const x of [a, b, c, d]) assert.equal((await s.billing.findBill(x!.billId))!.status, 'finalised');
  });
});

eachDialect('a bill is not reverted while it is being emailed by hand, and an email whose bill was reverted meanwhile sends nothing (review 51, L7)', async (db) => {
  const held = gate();
  const raced = gate();
  const open = { open: () => { held.open(); raced.open(); } };
  await withSmtpProduction(db, (raw) => (/^Subject: Held/m.test(raw) ? { hold: held.wait } : /^Subject: Raced/m.test(raw) ? { hold: raced.wait } : {}), 10_000, async (s, smtp) => {
    const [a, b] = await approvedBills(s, 2, SEND);
    // a's email is at the server, not yet answered: its claim is live, so revert waits for it.
    const manual = s.production.sendManual(ctx, a!.billId, { key: randomUUID(), to: BOTH, cc: '', subject: 'Held', text: 'Attached.' });
    await until('the manual email to reach the server', () => smtp.received.some((m) => m.subject === 'Held'));
    await assert.rejects(s.billing.revert(ctx, a!.billId), (e: HttpError) => e.status === 409 && /being emailed from its compose page just now/.test(e.message));
    assert.equal((await s.billing.findBill(a!.billId))!.status, 'approved');
    held.open();
    await manual;
    await s.billing.revert(ctx, a!.billId);

    // b: reverted while its email is being prepared (its PDF rendered). Whichever comes first,
    // never both: a bill that went back to draft is not emailed as the approved bill. (The
    // server holds the email's answer until the revert has its outcome: an email claimed first
    // is still being sent when the revert asks.)
    const sending = s.production.sendManual(ctx, b!.billId, { key: randomUUID(), to: BOTH, cc: '', subject: 'Raced', text: 'Attached.' }).then(() => 'sent', (e: HttpError) => e);
    const reverted = await s.billing.revert(ctx, b!.billId).then(() => 'reverted', (e: HttpError) => e);
    raced.open();
    const sent = await sending;
    const delivered = smtp.received.filter((m) => m.subject === 'Raced').length;
    if (reverted === 'reverted') {
      assert.ok(sent instanceof Error && sent.status === 409, `the email must be refused: ${String(sent)}`);
      assert.match((sent as HttpError).message, /changed \(reverted to draft, re-drafted or voided\) while this email was being prepared: nothing was sent/);
      assert.equal(delivered, 0);
      assert.equal(await auditCount(db, 'billing.bill_emailed_manually', b!.billId), 0);
      assert.deepEqual(await db.db.selectFrom('billing_manual_email_claim').select('id').where('bill_id', '=', b!.billId).execute(), [], 'its claim rolled back');
    } else {
      assert.equal(sent, 'sent', String(sent));
      assert.ok(reverted instanceof Error && reverted.status === 409, String(reverted));
      assert.match((reverted as HttpError).message, /being emailed from its compose page just now/);
      assert.equal(delivered, 1);
    }
  }, open);
});
