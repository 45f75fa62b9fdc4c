/**
 * A mail server that refuses some of a message's addresses (550 at RCPT TO) and takes it for
 * the others. Production: the email step fails naming the refused address and where it went;
 * the bill is not finalised; a retry sends only to the addresses not reached (none twice), and
 * finalises once every address is reached or the refused one is taken off the matter. Email
 * manually records only the addresses reached and says which were refused; the test email says
 * so too. A real SMTP server (smtp-server) on 127.0.0.1, on both databases.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { refusalsOf } from '../../src/adapters/mail/smtp.ts';
import { addressKey } from '../../src/shared/email.ts';
import { eachDialect } from '../support/db.ts';
import { unescapeHtml } from '../support/app.ts';
import { startSmtp } from '../adapters/smtp.ts';
import { ctx } from './support.ts';
import { approvedBills, closeSharedPdf, filesIn, outputDirs, productionSetup, removeDirs, signedInClerk, testOutputs, withSmtpProduction } from './production-support.ts';

after(closeSharedPdf);

const GOOD = 'ap@northwind.example';
const WRONG = 'wrong@northwind.example';

eachDialect('a mail server refusing one address: production fails the email naming it and sends the retry only to the addresses not reached; Email manually and the test email say which were refused', async (db) => {
  const refuse = new Set([WRONG]);
  await withSmtpProduction(db, async (s, smtp, dirs) => {
    const [bill, corrected, manual, idn] = await approvedBills(s, 4, { copiesToPrint: 1, useClientAddress: false, sendTo: [GOOD, WRONG] });
    const status = async (id: string) => (await s.billing.findBill(id))!.status;
    const sentTo = () => smtp.messages.map((m) => m.to.join(' '));

    // Refused: the step fails naming the address and where the bill went; approved still, printed once.
    const first = await s.production.produceBills(ctx, [bill!.billId]);
    assert.equal(first.failed, 1, JSON.stringify(first.items));
    assert.match(first.items[0]!.error ?? '', new RegExp(`^email: the mail server refused ${WRONG} \\(550[^)]*Mailbox unavailable[^)]*\\); it was sent to ${GOOD}\\.`));
    assert.equal((await s.production.runView(first.runId))!.items[0]!.emailUnconfirmed, false, 'a plain Retry');
    assert.deepEqual(sentTo(), [GOOD]);
    assert.equal(await status(bill!.billId), 'approved', 'not finalised');
    assert.equal(filesIn(dirs.print).length, 1);
    // Email manually says where production's email went.
    assert.deepEqual((await s.production.manualDraft(bill!.billId)).produced, { emailedTo: [GOOD], at: null, mayHave: false });

    // Retried while the mailbox still refuses: only the refused address is tried; the one reached gets nothing more.
    s.clock.advanceMs(60_000);
    const again = await s.production.produceBills(ctx, [bill!.billId]);
    assert.equal(again.failed, 1, JSON.stringify(again.items));
    assert.match(again.items[0]!.error ?? '', /^email: .*all recipients were rejected: 550 /, 'the one address tried, refused: a plain failure');
    assert.deepEqual(sentTo(), [GOOD], 'nothing sent twice');

    // The mailbox mended: the retry sends to it alone and finalises; the copy is not printed again.
    refuse.clear();
    s.clock.advanceMs(60_000);
    const third = await s.production.produceBills(ctx, [bill!.billId]);
    assert.equal(third.done, 1, JSON.stringify(third.items));
    assert.deepEqual(sentTo(), [GOOD, WRONG]);
    assert.equal(await status(bill!.billId), 'finalised');
    assert.equal(filesIn(dirs.print).length, 1, 'printed once');

    // The refused address taken off the matter instead: the retry finalises sending nothing (the other was reached).
    refuse.add(WRONG);
    s.clock.advanceMs(60_000);
    const before = smtp.messages.length;
    assert.equal((await s.production.produceBills(ctx, [corrected!.billId])).failed, 1);
    assert.equal(smtp.messages.length, before + 1);
    await s.matters.setBillingOptions(ctx, corrected!.matterId, { set: { sendTo: [GOOD] } });
    await s.drain();
    s.clock.advanceMs(60_000);
    const fixed = await s.production.produceBills(ctx, [corrected!.billId]);
    assert.equal(fixed.done, 1, JSON.stringify(fixed.items));
    assert.equal(smtp.messages.length, before + 1, 'nothing sent again');
    assert.equal(await status(corrected!.billId), 'finalised');

    // Email manually: sent to the one taken, recorded as sent to it only, and the refusal said.
    const m = await s.production.sendManual(ctx, manual!.billId, { key: randomUUID(), to: `${GOOD}, ${WRONG}`, cc: '', subject: 'Your bill', text: 'Attached.' });
    assert.deepEqual(m.refused.map((r) => r.address), [WRONG]);
    assert.match(m.refused[0]!.reason, /^550 /);
    assert.deepEqual(smtp.messages.at(-1)!.to, [GOOD]);
    assert.deepEqual((await s.production.manualDraft(manual!.billId)).sent.map((e) => e.to), [[GOOD]], 'recorded as reaching the address taken only');
    // Production then does not take the manual email as covering the refused address.
    refuse.clear();
    s.clock.advanceMs(60_000);
    const count = smtp.messages.length;
    assert.equal((await s.production.produceBills(ctx, [manual!.billId])).done, 1);
    assert.equal(smtp.messages.length, count + 1);
    assert.ok(smtp.messages.at(-1)!.to.includes(WRONG), 'the refused address is emailed by production (with the others: a manual email to some addresses does not count)');

    // Every address refused: nothing sent, said on the form (409), the form's key free to send again.
    refuse.add(WRONG);
    const key = randomUUID();
    await assert.rejects(() => s.production.sendManual(ctx, manual!.billId, { key, to: WRONG, cc: '', subject: 'S', text: 'T' }),
      (e: Error & { status?: number }) => e.status === 409 && /^Nothing was sent: /.test(e.message));
    refuse.clear();
    assert.equal((await s.production.sendManual(ctx, manual!.billId, { key, to: WRONG, cc: '', subject: 'S', text: 'T' })).refused.length, 0);
    assert.deepEqual(smtp.messages.at(-1)!.to, [WRONG]);

    // A refused address whose domain is not ASCII (the server and nodemailer name it as "xn--..."): named as the matter has it, not taken as reached.
    const IDN = 'info@müller.example';
    await s.matters.setBillingOptions(ctx, idn!.matterId, { set: { sendTo: [GOOD, IDN] } });
    await s.drain();
    refuse.clear();
    // (Refused in whichever form the client library puts it on the wire.)
    refuse.add('info@xn--mller-kva.example');
    refuse.add(IDN);
    const idnFirst = await s.production.produceBills(ctx, [idn!.billId]);
    assert.equal(idnFirst.failed, 1, JSON.stringify(idnFirst.items));
    assert.match(idnFirst.items[0]!.error ?? '', new RegExp(`^email: the mail server refused ${IDN} \\(550[^)]*\\); it was sent to ${GOOD}\\.`));
    refuse.clear();
    s.clock.advanceMs(60_000);
    const idnCount = smtp.messages.length;
    assert.equal((await s.production.produceBills(ctx, [idn!.billId])).done, 1);
    assert.deepEqual(smtp.messages.slice(idnCount).map((m) => m.to.length), [1], 'the retry reaches it, and only it');
    assert.ok(['info@xn--mller-kva.example', IDN].includes(smtp.messages.at(-1)!.to[0]!), smtp.messages.at(-1)!.to[0]);

    // The test email says which address was refused.
    refuse.add(WRONG);
    const test = await s.production.sendTestEmail(ctx, `${GOOD}, ${WRONG}`);
    assert.deepEqual(test.refused.map((r) => r.address), [WRONG]);
  }, { refuse });
});

eachDialect('after a partial send, the production list and the Produce confirmation show where production still emails a bill and where it went; a manual email to those addresses covers it; a bill whose addresses are all taken off says where production emailed it', async (db) => {
  const refuse = new Set([WRONG]);
  await withSmtpProduction(db, async (s, smtp, dirs) => {
    const [bill, bare] = await approvedBills(s, 2, { copiesToPrint: 0, useClientAddress: false, sendTo: [GOOD, WRONG] });
    assert.equal((await s.production.produceBills(ctx, [bill!.billId, bare!.billId])).failed, 2);
    assert.deepEqual(smtp.messages.map((m) => m.to), [[GOOD], [GOOD]]);
    const clerk = await signedInClerk(db, s);
    type Done = { done?: { emailedTo: string[]; emailNote: string | null } | null };
    const doneOf = async (runId: string) => { const d = ((await s.production.runView(runId))!.items[0] as Done).done; assert.ok(d, 'produced'); return d; };
    const rowOf = (html: string, number: string) => unescapeHtml(html).split('<tr').find((r) => r.includes(`>${number}<`)) ?? '';

    // The list and the confirmation: to the refused address only, the one reached said as such.
    const listed = rowOf((await clerk.get('/billing/production')).text, bill!.number!);
    assert.ok(listed.includes(`<td>${WRONG} <span class="muted" data-sent-earlier>(already sent to ${GOOD}: not sent again)</span>`), listed);
    const confirm = await clerk.get(`/billing/production/produce?bill=${bill!.billId}`);
    assert.equal(confirm.status, 200);
    const confirmed = rowOf(confirm.text, bill!.number!);
    assert.ok(confirmed.includes(`${WRONG} <span class="muted" data-sent-earlier>(already sent to ${GOOD}: not sent again)</span>`), confirmed);

    // Email manually goes to the address not reached, and says so.
    const compose = unescapeHtml((await clerk.get(`/billing/bills/${bill!.billId}/email`)).text);
    assert.ok(compose.includes(`<input name="to" value="${WRONG}"`), compose);
    assert.ok(compose.includes(`Production emailed this bill to ${GOOD}. <span data-still-to-reach>It has still to reach ${WRONG}: emailed here to that address, Produce does not email it again.</span>`), compose);

    // The corrected mailbox emailed by hand: that covers what production still had to send, and the lists say so.
    refuse.clear();
    await s.production.sendManual(ctx, bill!.billId, { key: randomUUID(), to: WRONG, cc: '', subject: 'Your bill', text: 'Attached.' });
    assert.match(rowOf((await clerk.get('/billing/production')).text, bill!.number!), /data-emailed-by-hand>Emailed manually<\/span>.*Produce does not email it again/);
    assert.match(unescapeHtml((await clerk.get(`/billing/production/produce?bill=${bill!.billId}`)).text), /id="emailed-by-hand">1 bill was emailed manually to every address/);
    s.clock.advanceMs(60_000);
    const count = smtp.messages.length;
    const covered = await s.production.produceBills(ctx, [bill!.billId]);
    assert.equal(covered.done, 1, JSON.stringify(covered.items));
    assert.equal(smtp.messages.length, count, 'production sends nothing more');
    const coveredDone = await doneOf(covered.runId);
    assert.deepEqual(coveredDone.emailedTo, [GOOD], 'where production\'s own send went');
    assert.match(coveredDone.emailNote ?? '', new RegExp(`^Emailed manually by .* to ${WRONG}: not sent again$`));

    // Every address taken off the matter: finalised without an email, and the run still says where production sent it.
    await s.matters.setBillingOptions(ctx, bare!.matterId, { set: { sendTo: [] } });
    await s.drain();
    s.clock.advanceMs(60_000);
    const off = await s.production.produceBills(ctx, [bare!.billId]);
    assert.equal(off.done, 1, JSON.stringify(off.items));
    assert.equal(smtp.messages.length, count);
    assert.deepEqual((await doneOf(off.runId)).emailedTo, [GOOD]);
    assert.equal(filesIn(dirs.print).length, 0);
  }, { refuse });
});

eachDialect('a mail server that cannot be reached and a print folder that is a file: each bill\'s failure says so in words with the system\'s code, without the server\'s paths', async (db) => {
  // A port nothing listens on (taken, then let go).
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const dirs = outputDirs();
  rmSync(dirs.print, { recursive: true, force: true });
  writeFileSync(dirs.print, 'not a folder');
  const outputs = testOutputs(dirs, { smtpPort: port });
  const s = await productionSetup(db, outputs);
  try {
    const [mailed] = await approvedBills(s, 1, { copiesToPrint: 0, useClientAddress: false, sendTo: [GOOD] });
    const refused = await s.production.produceBills(ctx, [mailed!.billId]);
    assert.equal(refused.failed, 1);
    assert.match(refused.items[0]!.error ?? '', new RegExp(`^email: the server refused the connection \\(is it running, at that address and port\\?\\) \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\)$`));
    await s.matters.setBillingOptions(ctx, mailed!.matterId, { set: { copiesToPrint: 1, sendTo: [] } });
    await s.drain();
    s.clock.advanceMs(60_000);
    const printed = await s.production.produceBills(ctx, [mailed!.billId]);
    assert.equal(printed.failed, 1);
    assert.equal(printed.items[0]!.error, 'print: the folder cannot be written: part of its path is a file, not a folder (ENOTDIR)');
  } finally {
    await s.stop();
    await outputs.close();
    rmSync(dirs.print, { force: true });
    removeDirs(dirs);
  }
});

test('refusalsOf and addressKey: a refused address nodemailer names in its ASCII form is the address as given; case and the domain\'s form aside, one address', () => {
  assert.deepEqual(refusalsOf({ rejected: ['info@xn--mller-kva.example', 'INFO@xn--mller-kva.example'], rejectedErrors: [{ recipient: 'info@xn--mller-kva.example', response: '550 5.1.1 no such user' }] }, [GOOD, 'Info@Müller.example']),
    [{ address: 'Info@Müller.example', reason: '550 5.1.1 no such user' }]);
  assert.deepEqual(refusalsOf({ rejected: ['x@y.example'] }), [{ address: 'x@y.example', reason: 'refused by the mail server' }]);
  assert.deepEqual(refusalsOf({}), []);
  for (const [a, b, same] of [
    ['info@müller.example', 'INFO@XN--MLLER-KVA.EXAMPLE', true], ['ap@northwind.example', ' AP@Northwind.Example ', true],
    ['ap@northwind.example', 'ap@northwind.example.', false], ['a@b.example', 'b@a.example', false],
  ] as const) assert.equal(addressKey(a) === addressKey(b), same, `${a} / ${b}`);
});
