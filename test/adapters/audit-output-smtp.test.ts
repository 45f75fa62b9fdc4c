/**
 * Audit (output adapters): the SMTP adapter's timeouts and which failed sends may have delivered
 * the message. Nothing handed over before the message data (never greeted, stalled or dropped
 * before DATA, refused at MAIL FROM / RCPT TO) is "not sent" (a retry resends it); a failure
 * after the message data went is "may have been sent".
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { test } from 'node:test';
import { SMTPServer } from 'smtp-server';
import type { SMTPServerOptions } from 'smtp-server';
import { createSmtpMailer } from '../../src/adapters/mail/smtp.ts';
import type { SmtpOptions } from '../../src/adapters/mail/smtp.ts';
import { mailMayHaveGone } from '../../src/modules/billing/domain/production.ts';
import type { MailMessage } from '../../src/shared/ports.ts';

const message: MailMessage = { messageKey: 'audit:smtp', from: 'billing@firm.example', to: ['ap@northwind.example'], subject: 'Invoice 1.1.1', text: 'Please pay.' };

/** The error of one send (null: it went), and how long it took; given up on after `capMs`. */
async function failureOf(options: SmtpOptions, capMs = 4_000): Promise<{ err: unknown; ms: number }> {
  const mailer = createSmtpMailer(options);
  const t0 = Date.now();
  let cap: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      mailer.send(message),
      new Promise((_, reject) => { cap = setTimeout(() => reject(new Error(`no answer within ${capMs} ms`)), capMs); }),
    ]);
    return { err: null, ms: Date.now() - t0 };
  } catch (err) {
    return { err, ms: Date.now() - t0 };
  } finally {
    clearTimeout(cap);
    await mailer.close();
  }
}

/** smtp-server on 127.0.0.1 with these hooks; `sockets` are its accepted connections. */
async function smtpServer(hooks: Partial<SMTPServerOptions>) {
  const server = new SMTPServer({ authOptional: true, disabledCommands: ['STARTTLS'], logger: false, ...hooks });
  const sockets: Socket[] = [];
  server.server.on('connection', (s: Socket) => sockets.push(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as AddressInfo).port;
  return {
    port, sockets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test('smtp: a server that accepts the TCP connection but never greets fails within the greeting timeout, as not sent', async () => {
  const sockets: Socket[] = [];
  const silent = createServer((s) => { sockets.push(s); s.on('error', () => undefined); });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  const port = (silent.address() as AddressInfo).port;
  try {
    const { err, ms } = await failureOf({ host: '127.0.0.1', port, secure: false, connectionTimeoutMs: 5_000, greetingTimeoutMs: 300, socketTimeoutMs: 10_000 });
    assert.ok(err, 'the send failed');
    assert.doesNotMatch(String((err as Error).message), /no answer within/, 'the greeting timeout, not the socket timeout, ended it');
    assert.ok(ms < 2_000, `failed after ${ms} ms, not the greeting timeout (300 ms)`);
    assert.equal((err as { code?: string }).code, 'ETIMEDOUT');
    assert.equal(mailMayHaveGone('smtp', err), false, 'never greeted: nothing was handed over');
    assert.ok(sockets.length >= 1, 'the TCP connection was made');
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
  }
});

test('smtp: a server that greets and then never answers MAIL FROM is a socket timeout, as not sent', async () => {
  const server = await smtpServer({ onMailFrom() { /* never answers */ } });
  try {
    const { err, ms } = await failureOf({ host: '127.0.0.1', port: server.port, secure: false, connectionTimeoutMs: 5_000, greetingTimeoutMs: 5_000, socketTimeoutMs: 300 });
    assert.ok(err, 'the send failed');
    assert.doesNotMatch(String((err as Error).message), /no answer within/);
    assert.ok(ms < 2_000, `failed after ${ms} ms, not the socket timeout (300 ms)`);
    assert.equal(mailMayHaveGone('smtp', err), false, 'stalled before the message data: nothing was handed over');
  } finally {
    await server.close();
  }
});

test('smtp: a server that drops the connection at RCPT TO: not sent', async () => {
  const server = await smtpServer({ onRcptTo() { for (const s of server.sockets) s.destroy(); } });
  try {
    const { err } = await failureOf({ host: '127.0.0.1', port: server.port, secure: false, timeoutMs: 3_000 });
    assert.ok(err, 'the send failed');
    assert.equal(mailMayHaveGone('smtp', err), false, 'dropped before the message data: nothing was handed over');
  } finally {
    await server.close();
  }
});

test('smtp: refused at MAIL FROM or at RCPT TO: not sent', async () => {
  const refuse = (code: number) => (_a: unknown, _s: unknown, cb: (err?: Error | null) => void) => {
    const err = new Error('No') as Error & { responseCode: number };
    err.responseCode = code;
    cb(err);
  };
  for (const hooks of [{ onMailFrom: refuse(550) }, { onRcptTo: refuse(550) }, { onMailFrom: refuse(451) }]) {
    const server = await smtpServer(hooks as Partial<SMTPServerOptions>);
    try {
      const { err } = await failureOf({ host: '127.0.0.1', port: server.port, secure: false, timeoutMs: 3_000 });
      assert.ok(err, 'the send failed');
      assert.equal(mailMayHaveGone('smtp', err), false, `refused (${Object.keys(hooks)[0]})`);
    } finally {
      await server.close();
    }
  }
});

test('smtp: the message data sent and no answer in time (socket timeout), or the connection dropped after the data: may have been sent', async () => {
  let mode: 'late' | 'drop' = 'late';
  const got: string[] = [];
  const server = await smtpServer({
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        got.push(Buffer.concat(chunks).toString('utf8'));
        if (mode === 'drop') { for (const s of server.sockets) s.destroy(); return; }
        setTimeout(() => callback(), 1_500);
      });
    },
  });
  try {
    const late = await failureOf({ host: '127.0.0.1', port: server.port, secure: false, connectionTimeoutMs: 3_000, greetingTimeoutMs: 3_000, socketTimeoutMs: 400 });
    assert.ok(late.err, 'the late answer failed the send');
    assert.equal(got.length, 1, 'the server had the message');
    assert.equal(mailMayHaveGone('smtp', late.err), true, 'taken, not confirmed in time');
    mode = 'drop';
    const dropped = await failureOf({ host: '127.0.0.1', port: server.port, secure: false, timeoutMs: 3_000 });
    assert.ok(dropped.err, 'the drop failed the send');
    assert.equal(got.length, 2);
    assert.equal(mailMayHaveGone('smtp', dropped.err), true, 'the data went, then the connection dropped');
  } finally {
    await new Promise((r) => setTimeout(r, 1_600));
    await server.close();
  }
});

test('smtp: the message data refused after it was sent (a 4xx/5xx answer to it): not sent', async () => {
  const server = await smtpServer({
    onData(stream, _session, callback) {
      stream.on('data', () => undefined);
      stream.on('end', () => {
        const err = new Error('Rejected') as Error & { responseCode: number };
        err.responseCode = 554;
        callback(err);
      });
    },
  });
  try {
    const { err } = await failureOf({ host: '127.0.0.1', port: server.port, secure: false, timeoutMs: 3_000 });
    assert.ok(err);
    assert.equal(mailMayHaveGone('smtp', err), false);
  } finally {
    await server.close();
  }
});

test('smtp: separate timeouts are passed on; timeoutMs alone still sets all three', async () => {
  // A server that greets only after 600 ms: a 300 ms greeting timeout fails, a 2 s one does not, whatever the socket timeout.
  const sockets: Socket[] = [];
  const slow = createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    setTimeout(() => { if (!s.destroyed) s.write('421 busy, bye\r\n'); s.end(); }, 600);
  });
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', () => r()));
  const port = (slow.address() as AddressInfo).port;
  try {
    const short = await failureOf({ host: '127.0.0.1', port, secure: false, connectionTimeoutMs: 5_000, greetingTimeoutMs: 300, socketTimeoutMs: 5_000 });
    assert.equal((short.err as { timeoutType?: string }).timeoutType, 'GREETING_TIMEOUT');
    const long = await failureOf({ host: '127.0.0.1', port, secure: false, connectionTimeoutMs: 5_000, greetingTimeoutMs: 2_000, socketTimeoutMs: 5_000 });
    assert.notEqual((long.err as { timeoutType?: string }).timeoutType, 'GREETING_TIMEOUT', 'the greeting came in time (a 421)');
    assert.equal(mailMayHaveGone('smtp', long.err), false);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => slow.close(() => r()));
  }
});

test('smtp: a large attachment still arrives whole through the watched message stream, over one reused connection', async () => {
  const got: Buffer[] = [];
  const server = await smtpServer({
    size: 30 * 1024 * 1024,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => { got.push(Buffer.concat(chunks)); callback(); });
    },
  });
  const big = new Uint8Array(3 * 1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
  const mailer = createSmtpMailer({ host: '127.0.0.1', port: server.port, secure: false, timeoutMs: 5_000, maxConnections: 1 });
  try {
    for (const key of ['a', 'b']) {
      await mailer.send({ ...message, messageKey: key, attachments: [{ filename: 'bill.pdf', contentType: 'application/pdf', content: big }] });
    }
    assert.equal(got.length, 2);
    for (const raw of got) {
      const text = raw.toString('utf8');
      const boundary = /boundary="?([^";\r\n]+)"?/i.exec(text)![1]!;
      const part = text.split(`--${boundary}`).find((p) => /content-type: application\/pdf/i.test(p))!;
      const body = part.split(/\r?\n\r?\n/).slice(1).join('');
      assert.deepEqual(new Uint8Array(Buffer.from(body.replace(/[\r\n\s-]/g, ''), 'base64')), big);
    }
  } finally {
    await mailer.close();
    await server.close();
  }
});

test('smtp: the timeouts come from the environment', async () => {
  const { outputsConfigFromEnv } = await import('../../src/adapters/outputs.ts');
  const c = outputsConfigFromEnv({ MAIL_TRANSPORT: 'smtp', SMTP_CONNECTION_TIMEOUT_MS: '5000', SMTP_GREETING_TIMEOUT_MS: '10000', SMTP_SOCKET_TIMEOUT_MS: '90000' }, '/x');
  assert.equal(c.smtp.connectionTimeoutMs, 5_000);
  assert.equal(c.smtp.greetingTimeoutMs, 10_000);
  assert.equal(c.smtp.socketTimeoutMs, 90_000);
  assert.throws(() => outputsConfigFromEnv({ SMTP_GREETING_TIMEOUT_MS: 'soon' }, '/x'), /SMTP_GREETING_TIMEOUT_MS/);
});
