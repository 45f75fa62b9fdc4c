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
import { after } from 'node:test';
import { eachDialect } from '../support/db.ts';
import { startSmtp } from '../adapters/smtp.ts';
import { ctx } from './support.ts';
import { approvedBills, closeSharedPdf, filesIn, outputDirs, productionSetup, removeDirs, testOutputs } from './production-support.ts';

after(closeSharedPdf);

const GOOD = 'ap@northwind.example';
const WRONG = 'wrong@northwind.example';

eachDialect('a mail server refusing one address: production fails the email naming it and sends the retry only to the addresses not reached; Email manually and the test email say which were refused', async (db) => {
  const refuse = new Set([WRONG]);
  const smtp = await startSmtp({ refuse });
  const dirs = outputDirs();
  const outputs = testOutputs(dirs, { smtpPort: smtp.port });
  const s = await productionSetup(db, outputs);
  try {
    const [bill, corrected, manual] = await approvedBills(s, 3, { copiesToPrint: 1, useClientAddress: false, sendTo: [GOOD, WRONG] });
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
    assert.ok(smtp.messages.at(-1)!.to.includes(WRONG), 'the refused address is emailed by production');

    // Every address refused: nothing sent, said on the form (409), the form's key free to send again.
    refuse.add(WRONG);
    const key = randomUUID();
    await assert.rejects(() => s.production.sendManual(ctx, manual!.billId, { key, to: WRONG, cc: '', subject: 'S', text: 'T' }),
      (e: Error & { status?: number }) => e.status === 409 && /^Nothing was sent: /.test(e.message));
    refuse.clear();
    assert.equal((await s.production.sendManual(ctx, manual!.billId, { key, to: WRONG, cc: '', subject: 'S', text: 'T' })).refused.length, 0);
    assert.deepEqual(smtp.messages.at(-1)!.to, [WRONG]);

    // The test email says which address was refused.
    refuse.add(WRONG);
    const test = await s.production.sendTestEmail(ctx, `${GOOD}, ${WRONG}`);
    assert.deepEqual(test.refused.map((r) => r.address), [WRONG]);
  } finally {
    await s.stop();
    await outputs.close();
    await smtp.close();
    removeDirs(dirs);
  }
});
