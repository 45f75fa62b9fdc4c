// The mail transport chosen on billing's settings page: the form's rules, the page (admins
// only, no password shown or audited), sends through the chosen transport (a real SMTP server on
// 127.0.0.1 that checks the user and password), the server's configuration fixing it, and a
// stopped send not resent through another transport than it was tried through.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { isIpv6, isSmtpHost, mailTransportFrom, retryMayResend } from '../../src/modules/billing/domain/mail-transport.ts';
import { isIPv6 } from 'node:net';
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { createOutputs, outputsConfigFromEnv } from '../../src/adapters/outputs.ts';
import type { MailTransportFields, MailTransportForm } from '../../src/modules/billing/domain/mail-transport.ts';
import { createProduction, LEASE_MS } from '../../src/modules/billing/index.ts';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { unescapeHtml, withApp } from '../support/app.ts';
import { attachmentOf, startSmtp as startSmtpServer } from '../adapters/smtp.ts';
import { approvedBills, closeSharedPdf, logger, outputDirs, productionSetup, readEml, removeDirs, scriptedSmtp, signedInClerk, stoppedMidSend, testOutputs } from './production-support.ts';
import { ctx } from './support.ts';

after(closeSharedPdf);

const NONE: MailTransportFields = { transport: 'server', smtpHost: null, smtpPort: null, smtpSecure: false, smtpUser: null, smtpPassword: null };
const SMTP_KEPT: MailTransportFields = { transport: 'smtp', smtpHost: 'mail.firm.example', smtpPort: 587, smtpSecure: false, smtpUser: 'billing', smtpPassword: 'old secret' };
const form = (f: Partial<MailTransportForm>): MailTransportForm => ({ transport: 'smtp', host: 'mail.firm.example', port: '587', secure: '', user: '', password: '', ...f });

test('the mail transport form: what is stored for each choice, and each bad field refused by name', () => {
  const ok: [string, MailTransportForm, MailTransportFields, Partial<MailTransportFields>][] = [
    ['smtp without sign-in', form({}), NONE, { transport: 'smtp', smtpHost: 'mail.firm.example', smtpPort: 587, smtpSecure: false, smtpUser: null, smtpPassword: null }],
    ['smtp on 465 with TLS, a user and a password', form({ port: '465', secure: 'yes', user: ' billing ', password: 's3cret pass' }), NONE, { smtpPort: 465, smtpSecure: true, smtpUser: 'billing', smtpPassword: 's3cret pass' }],
    ['an IPv4 address', form({ host: '127.0.0.1', port: '2525' }), NONE, { smtpHost: '127.0.0.1', smtpPort: 2525 }],
    ['an IPv6 address', form({ host: '::1' }), NONE, { smtpHost: '::1' }],
    ['a blank password keeps the stored one for the same user', form({ user: 'billing' }), SMTP_KEPT, { smtpUser: 'billing', smtpPassword: 'old secret' }],
    ['a new password replaces it', form({ user: 'billing', password: 'new' }), SMTP_KEPT, { smtpPassword: 'new' }],
    ['another user does not inherit the stored password', form({ user: 'other' }), SMTP_KEPT, { smtpUser: 'other', smtpPassword: null }],
    ['no user, no password', form({}), SMTP_KEPT, { smtpUser: null, smtpPassword: null }],
    ['another port or TLS on the same server keeps it', form({ user: 'billing', port: '465', secure: 'yes' }), SMTP_KEPT, { smtpPort: 465, smtpPassword: 'old secret' }],
    ['another server with the password typed again', form({ host: 'smtp.other.example', user: 'billing', password: 'old secret' }), SMTP_KEPT, { smtpHost: 'smtp.other.example', smtpPassword: 'old secret' }],
    ['file-drop keeps the SMTP fields for later (bad ones ignored)', form({ transport: 'file-drop', host: '', port: 'x' }), SMTP_KEPT, { ...SMTP_KEPT, transport: 'file-drop' }],
    ['the server\'s configuration', form({ transport: ' server ' }), SMTP_KEPT, { ...SMTP_KEPT, transport: 'server' }],
  ];
  for (const [name, f, before, want] of ok) {
    const r = mailTransportFrom(f, before);
    assert.ok('fields' in r, `${name}: ${JSON.stringify(r)}`);
    for (const [k, v] of Object.entries(want)) assert.deepEqual(r.fields[k as keyof MailTransportFields], v, `${name}: ${k}`);
  }
  const bad: [string, MailTransportForm, string, RegExp][] = [
    ['an unknown transport', form({ transport: 'pigeon' }), 'transport', /one of server, smtp, file-drop/],
    ['no host', form({ host: '  ' }), 'host', /required/],
    ['a host with a space', form({ host: 'mail firm' }), 'host', /host name or an IP address/],
    ['a host with a scheme', form({ host: 'smtp://mail.firm.example' }), 'host', /host name/],
    ['a bracketed IPv6 address', form({ host: '[::1]' }), 'host', /without brackets/],
    ['digits that are no IPv4 address', form({ host: '999.999.999.999' }), 'host', /IP address/],
    ['a host too long', form({ host: `${'a'.repeat(60)}.`.repeat(5) + 'example' }), 'host', /at most 253/],
    ['port 0', form({ port: '0' }), 'port', /1 to 65535/],
    ['port 65536', form({ port: '65536' }), 'port', /1 to 65535/],
    ['a port in words', form({ port: 'twenty' }), 'port', /whole number/],
    ['a port with a fraction', form({ port: '25.5' }), 'port', /whole number/],
    ['no port', form({ port: '' }), 'port', /required/],
    ['TLS neither ticked nor not', form({ secure: 'maybe' }), 'secure', /ticked/],
    ['a user with a line break', form({ user: 'a\nb' }), 'user', /control characters/],
    ['a password with a line break', form({ user: 'a', password: 'x\r\ny' }), 'password', /control characters/],
    ['a password without a user', form({ password: 'lonely' }), 'user', /required with a password/],
    ['a password too long', form({ user: 'a', password: 'p'.repeat(1_001) }), 'password', /at most 1000/],
  ];
  // A kept password is never sent to another server (an admin pointing the settings at a server of their own
  // and sending a test email would otherwise draw it out): with another host it must be typed again.
  const moved = mailTransportFrom(form({ host: 'attacker.example', user: 'billing' }), SMTP_KEPT);
  assert.ok('errors' in moved, JSON.stringify(moved));
  assert.deepEqual(Object.keys(moved.errors), ['password']);
  assert.match(moved.errors.password!, /typed again for another mail server/);
  for (const [name, f, field, why] of bad) {
    const r = mailTransportFrom(f, NONE);
    assert.ok('errors' in r, `${name}: accepted`);
    assert.match(r.errors[field] ?? '', why, `${name}: ${JSON.stringify(r.errors)}`);
  }
});

test('a send a stopped attempt recorded as tried is retried only through the file-drop folder it was tried through', () => {
  // [tried through (null: before it was recorded, when only the server's was used), the server's, the retry's, may resend]
  // (the same folder each time: the folder itself is the second table)
  const rows: ['smtp' | 'file-drop' | null, 'smtp' | 'file-drop', 'smtp' | 'file-drop', boolean][] = [
    ['file-drop', 'file-drop', 'file-drop', true],
    ['file-drop', 'file-drop', 'smtp', false],
    ['smtp', 'file-drop', 'file-drop', false],
    ['smtp', 'smtp', 'smtp', false],
    [null, 'file-drop', 'file-drop', true],
    [null, 'file-drop', 'smtp', false],
    [null, 'smtp', 'smtp', false],
    // Tried over the server's SMTP before the upgrade; the page chose the folder since: it may have gone.
    [null, 'smtp', 'file-drop', false],
  ];
  const target = (kind: 'smtp' | 'file-drop') => (kind === 'file-drop' ? '/srv/lexbill/mail' : '127.0.0.1:25');
  for (const [tried, server, now, may] of rows) {
    assert.equal(retryMayResend({ transport: tried, target: tried ? target(tried) : null }, server, { kind: now, target: target(now) }), may, `${tried} (server ${server}) then ${now}`);
  }
  // [folder tried into (null: before it was recorded), the retry's folder, may resend]
  const folders: [string | null, string, boolean][] = [
    ['/srv/lexbill/mail', '/srv/lexbill/mail', true],
    // MAIL_DROP_DIR changed between the crash and the retry: the new folder's journal knows nothing of it.
    ['/srv/lexbill/mail', '/srv/lexbill/mail-new', false],
    ['/srv/lexbill/mail-new', '/srv/lexbill/mail', false],
    // Tried before the folder was recorded: taken as the same folder (as before the upgrade).
    [null, '/srv/lexbill/mail', true],
    // The same path on another server sharing the database: another folder (its journal is there).
    ['app-1:/srv/lexbill/mail', 'app-2:/srv/lexbill/mail', false],
  ];
  for (const [was, now, may] of folders) {
    assert.equal(retryMayResend({ transport: 'file-drop', target: was }, 'file-drop', { kind: 'file-drop', target: now }), may, `${was} then ${now}`);
  }
});

test('an SMTP host is a host name, an IPv4 address or a bare IPv6 address (as Node reads one, zones aside)', () => {
  for (const ok of ['mail.firm.example', 'localhost', 'smtp-1.firm.example.', '127.0.0.1', '::1', '2001:db8::25', '::ffff:192.0.2.1']) assert.equal(isSmtpHost(ok), true, ok);
  for (const bad of ['[::1]', '[::1', '::::', ':', '999.999.999.999', '1.2.3.4.5', '1.2.3', 'mail_firm.example', '-mail.firm.example', 'fe80::1%eth0', 'a..b']) assert.equal(isSmtpHost(bad), false, bad);
  // Property: on text of hex digits, colons and dots, the IPv6 check agrees with Node's.
  const piece = fc.constantFrom(...'0123456789abcdef:.'.split(''), '::', 'ffff', '1.2.3.4', '255.0.0.1');
  fc.assert(fc.property(fc.array(piece, { maxLength: 20 }).map((a) => a.join('')), (text) => isIpv6(text) === isIPv6(text)), { numRuns: 20_000 });
});

test("a transport chosen on the page keeps the server's SMTP timeouts (SMTP_SOCKET_TIMEOUT_MS)", async () => {
  const dirs = outputDirs();
  // A server that answers the message data after 1.5 s: past a 300 ms socket timeout.
  const slow = await scriptedSmtp(() => ({ delayMs: 1_500 }));
  const outputs = createOutputs(outputsConfigFromEnv({ SMTP_SOCKET_TIMEOUT_MS: '300', MAIL_DROP_DIR: dirs.mail, PRINT_DIR: dirs.print }, dirs.root));
  try {
    const mailer = outputs.mailerFor({ transport: 'smtp', host: '127.0.0.1', port: slow.port, secure: false, user: null, pass: null });
    const started = Date.now();
    const err = await mailer.send({ messageKey: 'test:timeouts', from: 'billing@firm.example', to: ['ap@northwind.example'], subject: 'Slow', text: 'x' }).then(() => null, (e: unknown) => e);
    assert.ok(err, 'the send timed out');
    assert.match(String((err as Error).message), /timeout/i);
    assert.ok(Date.now() - started < 1_400, 'failed at the socket timeout, before the server answered');
  } finally {
    await outputs.close();
    await slow.close();
    removeDirs(dirs);
  }
});

/** A real SMTP server on 127.0.0.1 that takes mail only after AUTH with this user and password. */
async function authSmtp(user: string, pass: string) {
  const messages: { to: string[]; raw: string; user: string | undefined }[] = [];
  const attempts: string[] = [];
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'], allowInsecureAuth: true, authMethods: ['PLAIN', 'LOGIN'], logger: false, size: 30 * 1024 * 1024,
    onAuth(auth, _session, callback) {
      attempts.push(`${auth.username}:${auth.password}`);
      if (auth.username === user && auth.password === pass) callback(null, { user: auth.username });
      else callback(new Error('Invalid username or password'));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        messages.push({ to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString('utf8'), user: session.user as string | undefined });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as AddressInfo).port;
  return { port, messages, attempts, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

async function auditRows(db: TestDb, action: string): Promise<{ before_json: string | null; after_json: string | null }[]> {
  return db.db.selectFrom('audit_log').select(['before_json', 'after_json']).where('action', '=', action).orderBy('at').execute() as Promise<{ before_json: string | null; after_json: string | null }[]>;
}

eachDialect('the settings page chooses the mail transport: admins only, SMTP with a password never shown, test emails through the choice, bad input changing nothing', async (db) => {
  const dirs = outputDirs();
  const smtp = await authSmtp('billing@firm.example', 'pa55 word!');
  const outputs = testOutputs(dirs);
  try {
    await withApp(db, async (t) => {
      await t.user('admin');
      await t.user('billing');
      const admin = t.browser();
      assert.equal((await admin.login('admin@firm.test')).status, 303);
      const clerk = t.browser();
      assert.equal((await clerk.login('billing@firm.test')).status, 303);
      const stored = () => db.db.selectFrom('billing_mail_transport').selectAll().executeTakeFirst() as Promise<Record<string, unknown> | undefined>;

      // The clerk sees the choice but gets no form, and cannot post one.
      const clerkPage = await clerk.get('/billing/settings');
      assert.match(clerkPage.text, /Only an admin changes it/);
      assert.ok(!clerkPage.text.includes('id="mail-transport-form"'));
      // Where on the server the outputs write (folders, the browser's path) is an admin's to see.
      assert.match(clerkPage.text, /data-output="pdf"/);
      assert.doesNotMatch(clerkPage.text, /data-output-detail/);
      assert.match((await admin.get('/billing/settings')).text, /data-output="print"><strong>PRINT<\/strong>: [^<]*, <span data-output-detail>/);
      assert.equal((await clerk.post('/billing/settings/mail-transport', { version: '0', transport: 'file-drop' })).status, 403);
      assert.equal(await stored(), undefined);

      // Bad input: refused at its field, nothing stored or audited.
      await admin.get('/billing/settings');
      const smtpForm = { version: '0', transport: 'smtp', host: '127.0.0.1', port: String(smtp.port), user: 'billing@firm.example', password: 'pa55 word!' };
      const badPort = await admin.post('/billing/settings/mail-transport', { ...smtpForm, port: '70000' });
      assert.equal(badPort.status, 422);
      assert.match(badPort.text, /must be a whole number from 1 to 65535/);
      assert.ok(!badPort.text.includes('pa55 word!'), 'the password typed is not echoed back');
      assert.match(badPort.text, /data-password-again>The password typed was not kept with the refused form: type it again/);
      assert.equal((await admin.post('/billing/settings/mail-transport', { ...smtpForm, host: 'not a host' })).status, 422);
      assert.equal((await admin.post('/billing/settings/mail-transport', { ...smtpForm, version: '' })).status, 422);
      assert.equal(await stored(), undefined);
      assert.equal((await auditRows(db, 'billing.mail_transport_changed')).length, 0);

      // SMTP with sign-in: stored, audited without the password, never shown.
      const saved = await admin.post('/billing/settings/mail-transport', smtpForm);
      assert.equal(saved.status, 303, saved.text.slice(0, 500));
      const row = await stored();
      assert.equal(row!.transport, 'smtp');
      assert.equal(Number(row!.smtp_port), smtp.port);
      assert.equal(Number(row!.version), 1);
      // Kept sealed with the server's key (outside the database): a dump of the row does not give it away.
      assert.match(String(row!.smtp_password), /^sealed:v1:[0-9a-f]{8}:/);
      assert.ok(!String(row!.smtp_password).includes('pa55'), 'the password is not in the database as typed');
      const [changed] = await auditRows(db, 'billing.mail_transport_changed');
      assert.ok(changed && !`${changed.before_json}${changed.after_json}`.includes('pa55'), 'no password in the audit log');
      assert.deepEqual({ ...JSON.parse(changed.after_json!) }, { transport: 'smtp', host: '127.0.0.1', port: smtp.port, secure: false, user: 'billing@firm.example', passwordSet: true, passwordChanged: true });
      const page = await admin.get('/billing/settings');
      assert.ok(!page.text.includes('pa55'), 'the password is not on the page');
      assert.match(page.text, /A password is kept \(sealed with the server's secret key\): leave this empty to keep it/);
      assert.match(unescapeHtml(page.text), new RegExp(`smtp, <span data-output-detail>127\\.0\\.0\\.1:${smtp.port}, user billing@firm\\.example, from .*\\(chosen on this page\\)`));

      // The test email goes through it, signed in with the stored password.
      assert.equal((await admin.post('/billing/settings/test-email', { to: 'it@firm.example' })).status, 303);
      assert.equal(smtp.messages.length, 1);
      assert.deepEqual(smtp.messages[0]!.to, ['it@firm.example']);
      assert.equal(smtp.messages[0]!.user, 'billing@firm.example');
      assert.equal(readEml(dirs.mail).length, 0, 'nothing in the file-drop folder');

      // Saving the same again (password left empty: kept) changes nothing and audits nothing.
      const same = await admin.post('/billing/settings/mail-transport', { ...smtpForm, version: '1', password: '' });
      assert.equal(same.status, 303);
      assert.match((await admin.get(same.location!)).text, /Mail transport unchanged/);
      assert.equal((await auditRows(db, 'billing.mail_transport_changed')).length, 1);
      assert.equal((await stored())!.smtp_password, row!.smtp_password, 'a kept password is not sealed afresh');
      // A form from before that save is refused.
      assert.equal((await admin.post('/billing/settings/mail-transport', { ...smtpForm, version: '0', transport: 'file-drop' })).status, 409);

      // A wrong password: the test email fails and says so; nothing is recorded as sent.
      assert.equal((await admin.post('/billing/settings/mail-transport', { ...smtpForm, version: '1', password: 'wrong' })).status, 303);
      const refused = await admin.post('/billing/settings/test-email', { to: 'it@firm.example' });
      assert.equal(refused.status, 409);
      assert.match(refused.text, /The test email was not sent/);
      assert.equal(smtp.messages.length, 1);
      assert.ok(smtp.attempts.includes('billing@firm.example:wrong'), 'the new password was used');

      // File-drop, then the server's configuration (file-drop too here): the test emails land in the folder.
      assert.equal((await admin.post('/billing/settings/mail-transport', { version: '2', transport: 'file-drop' })).status, 303);
      assert.equal((await admin.post('/billing/settings/test-email', { to: 'it@firm.example' })).status, 303);
      assert.equal(readEml(dirs.mail).length, 1);
      const kept = await stored();
      assert.equal(kept!.smtp_host, '127.0.0.1', 'the SMTP fields are kept for later');
      assert.equal((await admin.post('/billing/settings/mail-transport', { version: '3', transport: 'server' })).status, 303);
      assert.equal((await admin.post('/billing/settings/test-email', { to: 'it@firm.example' })).status, 303);
      assert.equal(readEml(dirs.mail).length, 2);
      assert.equal(smtp.messages.length, 1);
      assert.equal((await auditRows(db, 'billing.mail_transport_changed')).length, 4);
    }, { outputs });
  } finally {
    await outputs.close();
    await smtp.close();
    removeDirs(dirs);
  }
});

eachDialect('when the server\'s configuration sets MAIL_TRANSPORT, the page cannot choose: refused, nothing stored, and sends use the server\'s', async (db) => {
  const dirs = outputDirs();
  const outputs = testOutputs(dirs, { mailFixedByServer: true });
  try {
    await withApp(db, async (t) => {
      await t.user('admin');
      const admin = t.browser();
      assert.equal((await admin.login('admin@firm.test')).status, 303);
      const page = await admin.get('/billing/settings');
      assert.match(page.text, /data-mail-fixed/);
      assert.ok(!page.text.includes('id="mail-transport-form"'));
      const r = await admin.post('/billing/settings/mail-transport', { version: '0', transport: 'smtp', host: '127.0.0.1', port: '25' });
      assert.equal(r.status, 409);
      assert.match(r.text, /MAIL_TRANSPORT/);
      assert.equal(await db.db.selectFrom('billing_mail_transport').selectAll().executeTakeFirst(), undefined);
      assert.equal((await auditRows(db, 'billing.mail_transport_changed')).length, 0);
      // A choice stored before the server's configuration fixed it is not used.
      await db.db.insertInto('billing_mail_transport').values({ id: 'firm', transport: 'smtp', smtp_host: '127.0.0.1', smtp_port: 9, smtp_secure: 0, version: 1, updated_at: '2026-03-02T09:00:00.000Z', updated_by: 'earlier' }).execute();
      assert.equal((await admin.post('/billing/settings/test-email', { to: 'it@firm.example' })).status, 303);
      assert.equal(readEml(dirs.mail).length, 1, "the server's file-drop");
    }, { outputs });
  } finally {
    await outputs.close();
    removeDirs(dirs);
  }
});

eachDialect('production emails bills through the chosen SMTP server and records the transport; a send stopped mid-way is not retried through another transport', async (db) => {
  const dirs = outputDirs();
  const smtp = await authSmtp('billing', 'secret');
  const outputs = testOutputs(dirs);
  const s = await productionSetup(db, outputs);
  try {
    const [a, b, c] = await approvedBills(s, 3, { copiesToPrint: 0, useClientAddress: false, sendTo: ['ap@northwind.example'] });
    assert.equal(await s.production.saveMailTransport(ctx, { transport: 'smtp', host: '127.0.0.1', port: String(smtp.port), secure: '', user: 'billing', password: 'secret', expectedVersion: 0 }), true);
    const r = await s.production.produceBills(ctx, [a!.billId]);
    assert.equal(r.done, 1, JSON.stringify(r.items));
    assert.equal(smtp.messages.length, 1);
    assert.ok(attachmentOf(smtp.messages[0]!.raw), 'the PDF attached');
    assert.equal(readEml(dirs.mail).length, 0);
    const st = await db.db.selectFrom('billing_bill_production').select(['email_transport']).where('bill_id', '=', a!.billId).executeTakeFirstOrThrow();
    assert.equal(st.email_transport, 'smtp');

    // A process stopped while sending each: b through the file-drop folder (the transport is SMTP
    // now), c over SMTP (the transport is changed to file-drop below).
    await stoppedMidSend(db, s, b!, 'file-drop');
    await stoppedMidSend(db, s, c!, 'smtp');
    s.clock.advanceMs(LEASE_MS + 1_000);
    const mayHaveGone = /may have been sent \(an earlier attempt stopped while sending it\)/;
    const retryB = await s.production.produceBills(ctx, [b!.billId]);
    assert.equal(retryB.failed, 1, JSON.stringify(retryB.items));
    assert.match(retryB.items[0]!.error ?? '', mayHaveGone);
    assert.equal(smtp.messages.length, 1, 'not sent again over SMTP');
    // Produce's confirmation says so beside its address (Produce does not send it until a clerk decides).
    const clerk = await signedInClerk(db, s);
    const confirm = (await clerk.get(`/billing/production/produce?bill=${b!.billId}`)).text;
    assert.match(confirm, /ap@northwind\.example <span class="warning" data-email-unconfirmed>\(an earlier send may have gone: not sent until you choose Send again or Mark as sent on its production run\)<\/span>/);
    assert.doesNotMatch((await clerk.get(`/billing/production/produce?bill=${a!.billId}`)).text, /data-email-unconfirmed/);

    // File-drop now: c, tried over SMTP, is not resent through the folder; b, tried through it, is, once the clerk chooses to send it again.
    assert.equal(await s.production.saveMailTransport(ctx, { transport: 'file-drop', host: '', port: '', secure: '', user: '', password: '', expectedVersion: 1 }), true);
    const retryC = await s.production.produceBills(ctx, [c!.billId]);
    assert.equal(retryC.failed, 1, JSON.stringify(retryC.items));
    assert.match(retryC.items[0]!.error ?? '', mayHaveGone);
    assert.equal(readEml(dirs.mail).length, 0, 'c not written to the folder');
    await s.production.decideUnconfirmedEmail(ctx, b!.billId, 'resend');
    assert.equal((await s.production.produceBills(ctx, [b!.billId])).done, 1);
    assert.equal(readEml(dirs.mail).length, 1);
    assert.equal(smtp.messages.length, 1);
    const stB = await db.db.selectFrom('billing_bill_production').select(['email_transport']).where('bill_id', '=', b!.billId).executeTakeFirstOrThrow();
    assert.equal(stB.email_transport, 'file-drop');
  } finally {
    await s.stop();
    await outputs.close();
    await smtp.close();
    removeDirs(dirs);
  }
});

eachDialect("a send tried before the transport was recorded counts as tried through the server's own: not resent through a folder chosen since", async (db) => {
  const dirs = outputDirs();
  const smtp = await startSmtpServer();
  // The server's configuration sends over SMTP; the page may still choose (MAIL_TRANSPORT left unset in this test's outputs).
  const outputs = testOutputs(dirs, { smtpPort: smtp.port });
  const s = await productionSetup(db, outputs);
  try {
    const [bill] = await approvedBills(s, 1, { copiesToPrint: 0, useClientAddress: false, sendTo: ['ap@northwind.example'] });
    // Written before the transport was recorded: email_transport null.
    await stoppedMidSend(db, s, bill!, null);
    s.clock.advanceMs(LEASE_MS + 1_000);
    assert.equal(await s.production.saveMailTransport(ctx, { transport: 'file-drop', host: '', port: '', secure: '', user: '', password: '', expectedVersion: 0 }), true);
    const retry = await s.production.produceBills(ctx, [bill!.billId]);
    assert.equal(retry.failed, 1, JSON.stringify(retry.items));
    assert.match(retry.items[0]!.error ?? '', /may have been sent \(an earlier attempt stopped while sending it\)/);
    assert.equal(readEml(dirs.mail).length, 0, 'not written to the folder');
    assert.equal(smtp.messages.length, 0);
  } finally {
    await s.stop();
    await outputs.close();
    await smtp.close();
    removeDirs(dirs);
  }
});

eachDialect("a send a stopped process tried into another drop folder (MAIL_DROP_DIR changed since) is not resent into this one; one tried into this one is", async (db) => {
  const dirs = outputDirs();
  const outputs = testOutputs(dirs);
  const s = await productionSetup(db, outputs);
  try {
    const [a, b, c] = await approvedBills(s, 3, { copiesToPrint: 0, useClientAddress: false, sendTo: ['ap@northwind.example'] });
    // A send recorded now names the folder it went into.
    assert.equal((await s.production.produceBills(ctx, [c!.billId])).done, 1);
    const stC = await db.db.selectFrom('billing_bill_production').select(['email_transport', 'email_target']).where('bill_id', '=', c!.billId).executeTakeFirstOrThrow();
    assert.deepEqual(stC, { email_transport: 'file-drop', email_target: `${hostname()}:${resolve(dirs.mail)}` });
    assert.equal(readEml(dirs.mail).length, 1);

    // a was tried into the folder the server used before its restart; b into this one.
    await stoppedMidSend(db, s, a!, 'file-drop', `${hostname()}:${resolve(join(dirs.root, 'mail-before'))}`);
    await stoppedMidSend(db, s, b!, 'file-drop', `${hostname()}:${resolve(dirs.mail)}`);
    s.clock.advanceMs(LEASE_MS + 1_000);
    const retryA = await s.production.produceBills(ctx, [a!.billId]);
    assert.equal(retryA.failed, 1, JSON.stringify(retryA.items));
    assert.match(retryA.items[0]!.error ?? '', /may have been sent \(an earlier attempt stopped while sending it\)/);
    assert.equal(readEml(dirs.mail).length, 1, 'a not written into this folder');
    const retryB = await s.production.produceBills(ctx, [b!.billId]);
    assert.equal(retryB.done, 1, JSON.stringify(retryB.items));
    assert.equal(readEml(dirs.mail).length, 2, 'b resent into the folder it was tried into (its journal makes that once)');

    // The clerk chooses to send a again: it goes into this folder, recorded so.
    await s.production.decideUnconfirmedEmail(ctx, a!.billId, 'resend');
    assert.equal((await s.production.produceBills(ctx, [a!.billId])).done, 1);
    assert.equal(readEml(dirs.mail).length, 3);
    const stA = await db.db.selectFrom('billing_bill_production').select(['email_target']).where('bill_id', '=', a!.billId).executeTakeFirstOrThrow();
    assert.equal(stA.email_target, `${hostname()}:${resolve(dirs.mail)}`);
  } finally {
    await s.stop();
    await outputs.close();
    removeDirs(dirs);
  }
});

eachDialect("the SMTP password is kept sealed: one kept plain before sealing is sealed on first use; after the server's key changes nothing is sent, the page and each send say why, and typing it again mends it", async (db) => {
  const dirs = outputDirs();
  const smtp = await authSmtp('billing', 'secret');
  const outputs = testOutputs(dirs);
  // The same server restarted with another key file (the old one lost).
  const otherKey = join(dirs.root, 'other-secret.key');
  const rekeyed = testOutputs(dirs, { secretKeyFile: otherKey });
  const s = await productionSetup(db, outputs);
  const p2 = createProduction({ db: db.db, clock: s.clock, logger, outputs: rekeyed }, s.billing);
  const row = () => db.db.selectFrom('billing_mail_transport').select(['smtp_password', 'version']).executeTakeFirstOrThrow();
  try {
    const [a, b, c] = await approvedBills(s, 3, { copiesToPrint: 0, useClientAddress: false, sendTo: ['ap@northwind.example'] });
    assert.equal(await s.production.saveMailTransport(ctx, { transport: 'smtp', host: '127.0.0.1', port: String(smtp.port), secure: '', user: 'billing', password: 'secret', expectedVersion: 0 }), true);

    // Kept plain by the version before sealing: sealed on first use (audited, nothing else changed), and still signs in.
    await db.db.updateTable('billing_mail_transport').set({ smtp_password: 'secret' }).execute();
    const view = await s.production.mailTransport();
    assert.equal(view.passwordSet, true);
    assert.equal(view.passwordUnreadable, null);
    const sealed = await row();
    assert.match(String(sealed.smtp_password), /^sealed:v1:/);
    assert.equal(Number(sealed.version), 1, 'sealing is not a change of the choice');
    assert.equal((await auditRows(db, 'billing.mail_password_sealed')).length, 1);
    assert.equal((await s.production.produceBills(ctx, [a!.billId])).done, 1);
    assert.equal(smtp.messages.length, 1);
    assert.equal(smtp.messages[0]!.user, 'billing');

    const attemptsBefore = smtp.attempts.length;
    // Another key: the page says the kept password cannot be read; a send fails for certain, saying why, and nothing is sent.
    const v2 = await p2.mailTransport();
    assert.equal(v2.passwordSet, false);
    assert.match(v2.passwordUnreadable ?? '', /sealed with another key/);
    const failed = await p2.produceBills(ctx, [b!.billId]);
    assert.equal(failed.failed, 1, JSON.stringify(failed.items));
    assert.match(failed.items[0]!.error ?? '', /The SMTP password kept on the billing settings page cannot be read: it was sealed with another key .*An admin types it again there/);
    assert.doesNotMatch(failed.items[0]!.error ?? '', /may have been sent/);
    assert.equal(smtp.messages.length, 1);
    assert.equal(smtp.attempts.length, attemptsBefore, 'no sign-in tried without the password');

    // Saving with the password left empty is refused at the password, changing nothing; typing it again mends it.
    await assert.rejects(p2.saveMailTransport(ctx, { transport: 'smtp', host: '127.0.0.1', port: String(smtp.port), secure: '', user: 'billing', password: '', expectedVersion: 1 }),
      (e: { status?: number; fields?: Record<string, string> }) => e.status === 422 && /cannot be read .*type it again/.test(e.fields?.password ?? ''));
    assert.equal((await row()).smtp_password, sealed.smtp_password);
    assert.equal(await p2.saveMailTransport(ctx, { transport: 'smtp', host: '127.0.0.1', port: String(smtp.port), secure: '', user: 'billing', password: 'secret', expectedVersion: 1 }), true);
    const resealed = await row();
    assert.notEqual(resealed.smtp_password, sealed.smtp_password);
    assert.equal((await p2.mailTransport()).passwordUnreadable, null);
    assert.equal((await p2.produceBills(ctx, [b!.billId])).done, 1);
    assert.equal(smtp.messages.length, 2);
    // The server with the old key cannot read the new one now: it says so, and sends nothing.
    assert.match((await s.production.mailTransport()).passwordUnreadable ?? '', /sealed with another key/);
    assert.equal((await s.production.produceBills(ctx, [c!.billId])).failed, 1);
    assert.equal(smtp.messages.length, 2);
    const [changed] = (await auditRows(db, 'billing.mail_transport_changed')).slice(-1);
    assert.ok(!`${changed!.before_json}${changed!.after_json}`.includes('secret'), 'no password in the audit log');
  } finally {
    await s.stop();
    await outputs.close();
    await rekeyed.close();
    await smtp.close();
    removeDirs(dirs);
  }
});

eachDialect('a kept password this server cannot open stays kept when another transport is chosen (audited as kept); a key file that cannot be used refuses a new password with a page that says why, storing nothing', async (db) => {
  const dirs = outputDirs();
  const outputs = testOutputs(dirs);
  const rekeyed = testOutputs(dirs, { secretKeyFile: join(dirs.root, 'other-secret.key') });
  const damagedKey = join(dirs.root, 'damaged-secret.key');
  writeFileSync(damagedKey, 'not a key\n');
  const damaged = testOutputs(dirs, { secretKeyFile: damagedKey });
  const s = await productionSetup(db, outputs);
  const p2 = createProduction({ db: db.db, clock: s.clock, logger, outputs: rekeyed }, s.billing);
  const row = () => db.db.selectFrom('billing_mail_transport').select(['transport', 'smtp_password', 'version']).executeTakeFirst();
  try {
    assert.equal(await s.production.saveMailTransport(ctx, { transport: 'smtp', host: '127.0.0.1', port: '2525', secure: '', user: 'billing', password: 'secret', expectedVersion: 0 }), true);
    const sealed = (await row())!.smtp_password;
    // On the server whose key does not open it, an admin chooses file-drop for now: the password stays as stored.
    assert.equal(await p2.saveMailTransport(ctx, { transport: 'file-drop', host: '', port: '', secure: '', user: '', password: '', expectedVersion: 1 }), true);
    assert.equal((await row())!.smtp_password, sealed);
    const [, switched] = await auditRows(db, 'billing.mail_transport_changed');
    assert.equal(JSON.parse(switched!.before_json!).passwordSet, true);
    assert.equal(JSON.parse(switched!.before_json!).passwordUnreadable, true);
    assert.deepEqual({ set: JSON.parse(switched!.after_json!).passwordSet, changed: JSON.parse(switched!.after_json!).passwordChanged }, { set: true, changed: false });
    // The server with the key chooses SMTP again, the password left empty: the kept one opens.
    assert.equal(await s.production.saveMailTransport(ctx, { transport: 'smtp', host: '127.0.0.1', port: '2525', secure: '', user: 'billing', password: '', expectedVersion: 2 }), true);
    assert.equal((await s.production.mailTransport()).passwordSet, true);
    assert.equal((await row())!.smtp_password, sealed);

    // A key file that cannot be used: the page refuses the new password (409, naming the key), changing nothing, echoing nothing.
    await withApp(db, async (t) => {
      await t.user('admin');
      const admin = t.browser();
      assert.equal((await admin.login('admin@firm.test')).status, 303);
      await admin.get('/billing/settings');
      const r = await admin.post('/billing/settings/mail-transport', { version: '3', transport: 'smtp', host: '127.0.0.1', port: '2525', user: 'billing', password: 'pa55 word!' });
      assert.equal(r.status, 409);
      assert.match(unescapeHtml(r.text), /The password cannot be kept: the server's secret key cannot be used \(The secret key file .* does not hold a key/);
      assert.ok(!r.text.includes('pa55'), 'the password typed is not echoed back');
    }, { outputs: damaged });
    const unchanged = (await row())!;
    assert.deepEqual({ transport: unchanged.transport, smtpPassword: unchanged.smtp_password, version: Number(unchanged.version) }, { transport: 'smtp', smtpPassword: sealed, version: 3 });
  } finally {
    await s.stop();
    await outputs.close();
    await rekeyed.close();
    await damaged.close();
    removeDirs(dirs);
  }
});

