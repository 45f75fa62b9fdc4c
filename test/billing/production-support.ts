/**
 * Shared by the production tests: the runtime with real outputs in temp folders (one real
 * Chromium shared by the tests of a file), approved bills made through the real matters and
 * billing commands, and readers of what the outputs wrote.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { SMTPServer } from 'smtp-server';
import { createChromiumPdf } from '../../src/adapters/pdf/chromium.ts';
import type { ChromiumPdfRenderer } from '../../src/adapters/pdf/chromium.ts';
import { createFileDropMailer, MAIL_JOURNAL } from '../../src/adapters/mail/file-drop.ts';
import { createSecretBox } from '../../src/adapters/secrets.ts';
import { createSmtpMailer } from '../../src/adapters/mail/smtp.ts';
import { createFolderPrint, PRINT_JOURNAL } from '../../src/adapters/print/folder.ts';
import { buildRuntime } from '../../src/main.ts';
import { LEASE_MS, createBillingCommands, createMassBilling, createProduction } from '../../src/modules/billing/index.ts';
import type { Bill } from '../../src/modules/billing/index.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import type { MattersCommands } from '../../src/modules/matters/index.ts';
import { manualClock } from '../../src/shared/clock.ts';
import type { Mailer, OutputDescription, Outputs } from '../../src/shared/ports.ts';
import { createMailChooser } from '../../src/adapters/mail/choice.ts';
import { startSmtp } from '../adapters/smtp.ts';
import { createUser } from '../../src/web/auth/service.ts';
import { systemContext } from '../../src/shared/events.ts';
import { Browser, PASSWORD } from '../support/app.ts';
import type { TestApp } from '../support/app.ts';
import { chromiumPath } from '../support/browser.ts';
import type { TestDb } from '../support/db.ts';
import { ctx, firm, work } from './support.ts';

export const logger = pino({ level: 'silent' });

let shared: ChromiumPdfRenderer | null = null;
/** One Chromium for the whole test file (close it with closeSharedPdf in an after hook). */
export function sharedPdf(): ChromiumPdfRenderer {
  shared ??= createChromiumPdf({ executablePath: chromiumPath(), poolSize: 2 });
  return shared;
}
export async function closeSharedPdf(): Promise<void> {
  await shared?.close();
  shared = null;
}

export interface OutputDirs { root: string; mail: string; print: string }

/** Output folders not yet removed: removed when the test file's process ends, also after a test failed before its removeDirs. */
const madeDirs = new Set<string>();
process.on('exit', () => { for (const root of madeDirs) rmSync(root, { recursive: true, force: true }); });

export function outputDirs(): OutputDirs {
  const root = mkdtempSync(join(tmpdir(), 'lexbill-prod-'));
  madeDirs.add(root);
  return { root, mail: join(root, 'mail-out'), print: join(root, 'print') };
}

/** Real outputs: the shared Chromium, file-drop mail (or SMTP on 127.0.0.1), a print folder. */
export function testOutputs(dirs: OutputDirs, opts: { smtpPort?: number; mailer?: Mailer; mailFixedByServer?: boolean; secretKeyFile?: string } = {}): Outputs {
  const mailer: Mailer = opts.mailer ?? (opts.smtpPort
    ? createSmtpMailer({ host: '127.0.0.1', port: opts.smtpPort, secure: false, timeoutMs: 5_000 })
    : createFileDropMailer({ dir: dirs.mail }));
  const pdf = sharedPdf();
  const mailFrom = 'Billing <billing@firm.example>';
  const fixed = opts.mailFixedByServer ?? false;
  const chooser = createMailChooser({ server: mailer, fixedByServer: fixed, dropDir: dirs.mail, mailFrom, smtpTimeouts: { timeoutMs: 5_000 } });
  const server: OutputDescription = { kind: 'mail', adapter: mailer.kind, detail: mailer.kind === 'smtp' ? `127.0.0.1:${opts.smtpPort ?? 'given'}` : dirs.mail };
  return {
    // The shared browser outlives one runtime.
    pdf: { render: (html, o) => pdf.render(html, o), close: async () => undefined },
    mailer, print: createFolderPrint({ dir: dirs.print }), mailFrom, mailFixedByServer: fixed,
    // The key file beside the test's output folders (made on first use), or the one given (a server restarted with another key).
    secrets: createSecretBox({ file: opts.secretKeyFile ?? join(dirs.root, 'secret.key') }),
    mailerFor: (choice) => chooser.mailerFor(choice),
    // As the server's outputs describe themselves: the PDF browser, the mail transport, the print folder.
    describe: (choice = null) => [{ kind: 'pdf', adapter: 'chromium', detail: 'the shared test browser, 30000 ms timeout' }, chooser.describe(choice) ?? server, { kind: 'print', adapter: 'folder', detail: dirs.print }],
    close: async () => { await Promise.all([mailer.close(), chooser.close()]); },
  };
}

/** The files in an output folder, as its watcher sees them (not the hidden journal of what was written). */
export function filesIn(dir: string): string[] {
  try { return readdirSync(dir).filter((f) => f !== PRINT_JOURNAL && f !== MAIL_JOURNAL).sort(); } catch { return []; }
}
export function readEml(dir: string): string[] {
  return filesIn(dir).filter((f) => f.endsWith('.eml')).map((f) => readFileSync(join(dir, f), 'utf8'));
}
export function removeDirs(dirs: OutputDirs): void {
  rmSync(dirs.root, { recursive: true, force: true });
  madeDirs.delete(dirs.root);
}

/** The runtime over the test database with these outputs, the commands (one bill at a time and mass billing's), and production. */
export async function productionSetup(db: TestDb, outputs: Outputs) {
  const clock = manualClock('2026-03-02T09:00:00Z');
  const rt = await buildRuntime(db, { clock, logger, outputs });
  const matters = createMattersCommands({ db: db.db, clock, relay: rt.relay });
  const billing = createBillingCommands({ db: db.db, clock, relay: rt.relay });
  const production = createProduction({ db: db.db, clock, logger, outputs }, billing);
  const mass = createMassBilling({ db: db.db, clock, relay: rt.relay }, billing);
  const drain = async () => { await rt.relay.drain(); };
  return { clock, rt, matters, billing, mass, production, drain, stop: () => rt.relay.stop() };
}

export type ProductionSetup = Awaited<ReturnType<typeof productionSetup>>;

/** The parts of a ProductionSetup that making approved bills uses (approvedBills), over a started app's runtime. */
export function setupFrom(t: TestApp): ProductionSetup {
  const matters = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
  const billing = createBillingCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
  return { clock: t.clock, rt: t.runtime, matters, billing, drain: async () => { await t.runtime.relay.drain(); } } as unknown as ProductionSetup;
}

/** A billing clerk signed in to the setup's app (its pages, through app.request). */
export async function signedInClerk(db: TestDb, s: ProductionSetup): Promise<Browser> {
  await createUser({ db: db.db, clock: s.clock }, systemContext('test-setup', 'test'), { email: 'clerk@firm.test', name: 'Clerk', role: 'billing', password: PASSWORD });
  const clerk = new Browser(s.rt.app);
  await clerk.login('clerk@firm.test');
  return clerk;
}

/** A PDF (or any binary answer) fetched as the signed-in browser `b` would: status, type and bytes (Page keeps text only). */
export async function fetchPdf(app: { request(input: string, init?: RequestInit): Response | Promise<Response> }, b: Browser, path: string): Promise<{ status: number; type: string; bytes: Uint8Array }> {
  const res = await app.request(`http://lexbill.test${path}`, { headers: { cookie: [...b.cookies].map(([k, v]) => `${k}=${v}`).join('; '), 'x-forwarded-for': b.ip } });
  return { status: res.status, type: res.headers.get('content-type') ?? '', bytes: new Uint8Array(await res.arrayBuffer()) };
}

/** A bill's HTML as text: styles and tags dropped, white space folded (entities left as they are). */
export const htmlText = (html: string): string => html.replace(/<style[\s\S]*?<\/style>/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');

/**
 * `count` matters of one client, each with work and the given billing options, each with one
 * approved bill. Returns the bills (approved, numbered).
 */
export async function approvedBills(s: ProductionSetup, count: number, options: Parameters<MattersCommands['setBillingOptions']>[2]['set'] = {}): Promise<Bill[]> {
  const f = await firm(s.matters);
  const matterIds = [f.matter.id];
  for (let i = 1; i < count; i++) {
    const m = await s.matters.openMatter(ctx, { clientId: f.client.id, name: `Northwind matter ${i + 1}`, responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH' });
    matterIds.push(m.id);
  }
  for (const id of matterIds) {
    await work(s.matters, id, f);
    if (Object.keys(options).length > 0) await s.matters.setBillingOptions(ctx, id, { set: options });
  }
  await s.drain();
  const bills: Bill[] = [];
  for (const id of matterIds) {
    const d = await s.billing.createDraft(ctx, { matterId: id, invoiceDate: '2026-03-01', upTo: '2026-02-28' });
    bills.push(await s.billing.approve(ctx, d.billId));
  }
  await s.drain();
  return bills;
}

/**
 * A real SMTP server (smtp-server on 127.0.0.1) that keeps each message as its data arrives, then
 * answers as `reply` says for it: at once, refused with a code, or late (after the client's timeout).
 */
/** `hold`: the message is taken (listed in `received`) and answered only once it settles. */
export async function scriptedSmtp(reply: (raw: string) => { code?: number; delayMs?: number; hold?: Promise<void> }) {
  const received: { subject: string; messageId: string; raw: string }[] = [];
  const server = new SMTPServer({
    authOptional: true, disabledCommands: ['STARTTLS'], logger: false, size: 30 * 1024 * 1024,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const how = reply(raw);
        if (how.code) {
          const err = new Error('Try again later') as Error & { responseCode: number };
          err.responseCode = how.code;
          callback(err);
          return;
        }
        received.push({ subject: /^Subject: (.*)$/m.exec(raw)?.[1]?.trim() ?? '', messageId: /^Message-ID: (.*)$/im.exec(raw)?.[1]?.trim() ?? '', raw });
        if (how.hold) void how.hold.then(() => callback());
        else if (how.delayMs) setTimeout(() => callback(), how.delayMs);
        else callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as AddressInfo).port;
  return { port, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** A scriptedSmtp that holds its first message until `open()` (a bill in flight) and answers the others at once. */
export async function smtpHoldingFirst() {
  let open!: () => void;
  const held = new Promise<void>((r) => { open = r; });
  let first = true;
  const smtp = await scriptedSmtp(() => {
    if (first) { first = false; return { hold: held }; }
    return {};
  });
  return { smtp, open };
}

/** Outputs sending over SMTP on 127.0.0.1 with a short client timeout (the server's late answers outlast it). */
export function smtpOutputs(dirs: OutputDirs, port: number, timeoutMs: number): Outputs {
  return testOutputs(dirs, { mailer: createSmtpMailer({ host: '127.0.0.1', port, secure: false, timeoutMs }) });
}

/**
 * What a process that stopped while emailing a bill leaves: the bill's PDF stored, its send
 * recorded as tried (through `transport`; null: tried before the transport was recorded) to
 * ap@northwind.example, and the bill still held. The caller runs the clock past the lease.
 */
export async function stoppedMidSend(db: TestDb, s: ProductionSetup, bill: Bill, transport: 'smtp' | 'file-drop' | null, target: string | null = null): Promise<void> {
  const cycle = bill.approvedAt!;
  const pdf = new TextEncoder().encode('%PDF-1.4 stored\n%%EOF');
  const at = s.clock.now().toISOString();
  await db.db.insertInto('billing_bill_pdf').values({ bill_id: bill.billId, cycle, number: bill.number, template: 'itemised', pdf: Buffer.from(pdf), size_bytes: pdf.length, sha256: 'x', created_at: at }).execute();
  await db.db.insertInto('billing_bill_production').values({
    bill_id: bill.billId, cycle, claim_token: 'dead-process', claimed_until: new Date(s.clock.now().getTime() + LEASE_MS).toISOString(),
    attempts: 1, pdf_stored_at: at, email_tried_at: at, email_transport: transport, email_target: target, email_to: JSON.stringify(['ap@northwind.example']), updated_at: at,
  }).execute();
}

/**
 * Production on a fresh firm, mailing through a real SMTP server on 127.0.0.1 (its messages
 * kept; `smtpOptions` as startSmtp takes them); the runtime, outputs, server and folders all
 * stopped and removed afterwards.
 */
export async function withSmtpProduction(db: TestDb, fn: (s: ProductionSetup, smtp: Awaited<ReturnType<typeof startSmtp>>, dirs: OutputDirs) => Promise<void>,
  smtpOptions: Parameters<typeof startSmtp>[0] = {}): Promise<void> {
  const smtp = await startSmtp(smtpOptions);
  const dirs = outputDirs();
  const outputs = testOutputs(dirs, { smtpPort: smtp.port });
  const s = await productionSetup(db, outputs);
  try {
    await fn(s, smtp, dirs);
  } finally {
    await s.stop();
    await outputs.close();
    await smtp.close();
    removeDirs(dirs);
  }
}
