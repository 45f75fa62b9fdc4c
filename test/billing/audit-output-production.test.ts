/**
 * Audit (output adapters) over the real runtime on both databases: an SMTP server that
 * accepts the connection but never greets, or drops it before the message data, makes a plain
 * per-bill failure that a retry resends (once); it is never "may have been sent". And a matter
 * address nodemailer would re-route fails its bill, sending nothing anywhere.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { after } from 'node:test';
import { createSmtpMailer } from '../../src/adapters/mail/smtp.ts';
import type { Outputs } from '../../src/shared/ports.ts';
import type { HttpError } from '../../src/shared/web/errors.ts';
import { eachDialect } from '../support/db.ts';
import { startSmtp } from '../adapters/smtp.ts';
import { ctx } from './support.ts';
import { approvedBills, closeSharedPdf, filesIn, outputDirs, productionSetup, removeDirs, testOutputs, withSmtpProduction } from './production-support.ts';
import type { OutputDirs } from './production-support.ts';

after(closeSharedPdf);

/** A TCP front on 127.0.0.1: 'silent' takes connections and never says a word; 'forward' passes them to `target`. */
async function front(initial: number) {
  let target = initial;
  let mode: 'silent' | 'forward' = 'silent';
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    if (mode === 'silent') return;
    const up = connect(target, '127.0.0.1');
    sockets.push(up);
    up.on('error', () => s.destroy());
    s.pipe(up).pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    set(m: 'silent' | 'forward') { mode = m; for (const s of sockets.splice(0)) s.destroy(); },
    retarget(port: number) { target = port; for (const s of sockets.splice(0)) s.destroy(); },
    close: () => { for (const s of sockets) s.destroy(); return new Promise<void>((r) => server.close(() => r())); },
  };
}

function smtpOutputsWith(dirs: OutputDirs, port: number): Outputs {
  return testOutputs(dirs, { mailer: createSmtpMailer({ host: '127.0.0.1', port, secure: false, connectionTimeoutMs: 5_000, greetingTimeoutMs: 400, socketTimeoutMs: 5_000 }) });
}

eachDialect('an SMTP server that never greets: the bill fails plainly (not "may have been sent"); the retry sends it once and finalises it', async (db) => {
  const smtp = await startSmtp();
  const tcp = await front(smtp.port);
  const dirs = outputDirs();
  const outputs = smtpOutputsWith(dirs, tcp.port);
  const s = await productionSetup(db, outputs);
  try {
    const [bill] = await approvedBills(s, 1, { copiesToPrint: 1, useClientAddress: false, sendTo: ['ap@northwind.example'] });
    const first = await s.production.produceBills(ctx, [bill!.billId]);
    assert.equal(first.failed, 1, JSON.stringify(first.items));
    assert.match(first.items[0]!.error ?? '', /^email: /);
    assert.doesNotMatch(first.items[0]!.error ?? '', /may have been sent/);
    const view = (await s.production.runView(first.runId))!;
    assert.equal(view.items[0]!.emailUnconfirmed, false, 'a plain Retry, not Send again / Mark as sent');
    assert.equal(smtp.messages.length, 0);

    tcp.set('forward');
    s.clock.advanceMs(60_000);
    const retry = await s.production.produceBills(ctx, [bill!.billId]);
    assert.equal(retry.done, 1, JSON.stringify(retry.items));
    assert.equal(smtp.messages.length, 1, 'sent once');
    assert.equal(filesIn(dirs.print).length, 1, 'printed once');
    assert.equal((await s.billing.findBill(bill!.billId))!.status, 'finalised');
  } finally {
    await s.stop();
    await outputs.close();
    await tcp.close();
    await smtp.close();
    removeDirs(dirs);
  }
});

eachDialect('an SMTP server that drops the connection at RCPT TO: a plain failure the retry resends once', async (db) => {
  const smtp = await startSmtp();
  // A server that drops every connection once it is given a recipient.
  const { SMTPServer } = await import('smtp-server');
  const droppers: Socket[] = [];
  const dropping = new SMTPServer({ authOptional: true, disabledCommands: ['STARTTLS'], logger: false, onRcptTo() { for (const x of droppers) x.destroy(); } });
  dropping.server.on('connection', (x: Socket) => droppers.push(x));
  await new Promise<void>((r) => dropping.listen(0, '127.0.0.1', () => r()));
  const tcp = await front((dropping.server.address() as AddressInfo).port);
  tcp.set('forward');
  const dirs = outputDirs();
  const outputs = smtpOutputsWith(dirs, tcp.port);
  const s = await productionSetup(db, outputs);
  try {
    const [bill] = await approvedBills(s, 1, { copiesToPrint: 0, useClientAddress: false, sendTo: ['ap@northwind.example'] });
    const first = await s.production.produceBills(ctx, [bill!.billId]);
    assert.equal(first.failed, 1, JSON.stringify(first.items));
    assert.match(first.items[0]!.error ?? '', /^email: /);
    assert.doesNotMatch(first.items[0]!.error ?? '', /may have been sent/, first.items[0]!.error ?? '');
    tcp.retarget(smtp.port);
    s.clock.advanceMs(60_000);
    const retry = await s.production.produceBills(ctx, [bill!.billId]);
    assert.equal(retry.done, 1, JSON.stringify(retry.items));
    assert.equal(smtp.messages.length, 1);
  } finally {
    await s.stop();
    await outputs.close();
    await tcp.close();
    await new Promise<void>((r) => { for (const x of droppers) x.destroy(); dropping.close(() => r()); });
    await smtp.close();
    removeDirs(dirs);
  }
});

eachDialect('a send-to address nodemailer would re-route ("a,evil@x.example"): matters refuses it where it is typed; one saved before that rule fails the bill naming it, nothing is sent', async (db) => {
  await withSmtpProduction(db, async (s, smtp) => {
    const [bill] = await approvedBills(s, 1, { copiesToPrint: 0, useClientAddress: false, sendTo: ['ap@northwind.example'] });
    await assert.rejects(s.matters.setBillingOptions(ctx, bill!.matterId, { set: { sendTo: ['a,evil@x.example'] } }), (e: HttpError & { fields?: Record<string, string> }) => e.status === 422 && Object.keys(e.fields ?? {}).some((k) => k.includes('sendTo')));
    // An address saved before matters refused it: billing's copy of the matter's options holds it.
    const row = await db.db.selectFrom('billing_matter').select('options_json').where('id', '=', bill!.matterId).executeTakeFirstOrThrow();
    const saved = String(row.options_json).replace('ap@northwind.example', 'a,evil@x.example');
    assert.notEqual(saved, row.options_json);
    await db.db.updateTable('billing_matter').set({ options_json: saved }).where('id', '=', bill!.matterId).execute();
    const r = await s.production.produceBills(ctx, [bill!.billId]);
    assert.equal(r.failed, 1, JSON.stringify(r.items));
    assert.match(r.items[0]!.error ?? '', /^email: .*not a single email address/);
    assert.doesNotMatch(r.items[0]!.error ?? '', /may have been sent/, 'refused before anything was sent: a plain failure');
    assert.deepEqual(smtp.messages, []);
    assert.equal((await s.billing.findBill(bill!.billId))!.status, 'approved');
  });
});

eachDialect('Email manually and the test email: an address nodemailer would re-route ("accounts:evil@x.example") is refused as a field error (422), nothing is sent', async (db) => {
  await withSmtpProduction(db, async (s, smtp) => {
    const [bill] = await approvedBills(s, 1, { copiesToPrint: 0, useClientAddress: false, sendTo: ['ap@northwind.example'] });
    for (const bad of ['accounts:evil@x.example', 'x(comment)evil@x.example', '"a"evil@x.example']) {
      const form = { key: randomUUID(), to: bad, cc: '', subject: 'Your invoice', text: 'Attached.' };
      await assert.rejects(s.production.sendManual(ctx, bill!.billId, form), (e: HttpError & { fields?: Record<string, string> }) => e.status === 422 && !!e.fields?.to, `to ${bad}`);
      await assert.rejects(s.production.sendManual(ctx, bill!.billId, { ...form, to: 'ap@northwind.example', cc: bad }), (e: HttpError & { fields?: Record<string, string> }) => e.status === 422 && !!e.fields?.cc, `cc ${bad}`);
      await assert.rejects(s.production.sendTestEmail(ctx, bad), (e: HttpError) => e.status === 422, `test email ${bad}`);
    }
    assert.deepEqual(smtp.messages, []);
  });
});
