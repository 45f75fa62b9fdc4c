/**
 * The output adapters picked from configuration (environment). Creating them starts
 * nothing: Chromium launches on the first render, SMTP connects on the first send. The mail
 * transport may instead be chosen on billing's settings page, unless MAIL_TRANSPORT is set.
 */
import { join } from 'node:path';
import type { OutputDescription, Outputs } from '../shared/ports.ts';
import type { Logger } from 'pino';
import { createChromiumPdf, defaultPdfPoolSize } from './pdf/chromium.ts';
import { COMBINE_MAX_DOCS } from './pdf/combine.ts';
import { createFileDropMailer } from './mail/file-drop.ts';
import { createSmtpMailer } from './mail/smtp.ts';
import { createFolderPrint } from './print/folder.ts';
import { createMailChooser } from './mail/choice.ts';
import { createSecretBox, secretKeySourceFromEnv } from './secrets.ts';
import type { SecretKeySource } from './secrets.ts';

export interface OutputsConfig {
  chromiumPath: string;
  pdfPoolSize: number;
  pdfTimeoutMs: number;
  pdfRestartEvery: number;
  pdfTagged: boolean;
  /** Chromium as one process (see ChromiumPdfOptions.singleProcess). */
  pdfSingleProcess: boolean;
  /** Final bills printed together at most (chromium.ts combineMax; 1 prints each alone). */
  pdfCombineMax: number;
  mailTransport: 'smtp' | 'file-drop';
  /** MAIL_TRANSPORT was set: the configuration fixes the transport (the settings page cannot choose one). */
  mailTransportFixed: boolean;
  smtp: { host: string; port: number; secure: boolean; user?: string; pass?: string; connectionTimeoutMs?: number; greetingTimeoutMs?: number; socketTimeoutMs?: number };
  mailFrom: string;
  mailDropDir: string;
  printDir: string;
  /** The key that seals secrets kept in the database (LEXBILL_SECRET_KEY, or the key file). */
  secretKey: SecretKeySource;
}

function intFrom(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer ${min}..${max}, got ${raw}`);
  return n;
}

export function outputsConfigFromEnv(env: NodeJS.ProcessEnv, installDir: string): OutputsConfig {
  const transport = env.MAIL_TRANSPORT ?? 'file-drop';
  if (transport !== 'smtp' && transport !== 'file-drop') throw new Error(`MAIL_TRANSPORT must be smtp or file-drop, got ${transport}`);
  const secure = env.SMTP_SECURE === '1' || env.SMTP_SECURE === 'true';
  const pdfSingleProcess = !(env.PDF_SINGLE_PROCESS === '0' || env.PDF_SINGLE_PROCESS === 'false');
  return {
    chromiumPath: env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    pdfPoolSize: intFrom(env, 'PDF_POOL_SIZE', defaultPdfPoolSize(pdfSingleProcess), 1, 16),
    pdfTimeoutMs: intFrom(env, 'PDF_TIMEOUT_MS', 30_000, 1_000, 600_000),
    pdfRestartEvery: intFrom(env, 'PDF_RESTART_EVERY', 500, 1, 1_000_000),
    pdfTagged: env.PDF_TAGGED === '1' || env.PDF_TAGGED === 'true',
    pdfSingleProcess,
    pdfCombineMax: intFrom(env, 'PDF_COMBINE_MAX', 10, 1, COMBINE_MAX_DOCS),
    mailTransport: transport,
    mailTransportFixed: env.MAIL_TRANSPORT !== undefined,
    smtp: {
      host: env.SMTP_HOST ?? '127.0.0.1',
      port: intFrom(env, 'SMTP_PORT', secure ? 465 : 25, 1, 65535),
      secure,
      ...(env.SMTP_USER ? { user: env.SMTP_USER } : {}),
      ...(env.SMTP_PASS ? { pass: env.SMTP_PASS } : {}),
      // Separate timeouts (the adapter's defaults: 30 s, 30 s, 120 s).
      ...(env.SMTP_CONNECTION_TIMEOUT_MS ? { connectionTimeoutMs: intFrom(env, 'SMTP_CONNECTION_TIMEOUT_MS', 30_000, 100, 600_000) } : {}),
      ...(env.SMTP_GREETING_TIMEOUT_MS ? { greetingTimeoutMs: intFrom(env, 'SMTP_GREETING_TIMEOUT_MS', 30_000, 100, 600_000) } : {}),
      ...(env.SMTP_SOCKET_TIMEOUT_MS ? { socketTimeoutMs: intFrom(env, 'SMTP_SOCKET_TIMEOUT_MS', 120_000, 100, 3_600_000) } : {}),
    },
    mailFrom: env.MAIL_FROM ?? 'billing@lexbill.invalid',
    mailDropDir: env.MAIL_DROP_DIR ?? join(installDir, 'data', 'mail-out'),
    printDir: env.PRINT_DIR ?? join(installDir, 'data', 'print'),
    secretKey: secretKeySourceFromEnv(env, join(installDir, 'data', 'secret.key')),
  };
}

export function createOutputs(config: OutputsConfig, opts: { logger?: Logger } = {}): Outputs {
  const pdf = createChromiumPdf({
    executablePath: config.chromiumPath, poolSize: config.pdfPoolSize, timeoutMs: config.pdfTimeoutMs, restartEvery: config.pdfRestartEvery,
    tagged: config.pdfTagged, singleProcess: config.pdfSingleProcess, combineMax: config.pdfCombineMax,
    ...(opts.logger ? { onCombineFailure: (err: unknown, documents: number) => opts.logger!.warn({ err, documents }, 'bills printed together failed: printing them one by one') } : {}),
  });
  const mailer = config.mailTransport === 'smtp' ? createSmtpMailer(config.smtp) : createFileDropMailer({ dir: config.mailDropDir });
  const print = createFolderPrint({ dir: config.printDir });
  const { connectionTimeoutMs, greetingTimeoutMs, socketTimeoutMs } = config.smtp;
  const chooser = createMailChooser({
    server: mailer, fixedByServer: config.mailTransportFixed, dropDir: config.mailDropDir, mailFrom: config.mailFrom,
    smtpTimeouts: { ...(connectionTimeoutMs ? { connectionTimeoutMs } : {}), ...(greetingTimeoutMs ? { greetingTimeoutMs } : {}), ...(socketTimeoutMs ? { socketTimeoutMs } : {}) },
  });
  const description: OutputDescription[] = [
    { kind: 'pdf', adapter: 'chromium', detail: `${config.chromiumPath}, ${config.pdfPoolSize} tab(s), ${config.pdfTimeoutMs} ms timeout${config.pdfSingleProcess ? '' : ', multi-process'}${config.pdfCombineMax > 1 ? `, final bills printed up to ${config.pdfCombineMax} at a time` : ''}` },
    config.mailTransport === 'smtp'
      ? { kind: 'mail', adapter: 'smtp', detail: `${config.smtp.host}:${config.smtp.port}${config.smtp.secure ? ' (TLS)' : ''}${config.smtp.user ? `, user ${config.smtp.user}` : ''}, from ${config.mailFrom}` }
      : { kind: 'mail', adapter: 'file-drop', detail: `${config.mailDropDir}, from ${config.mailFrom}` },
    { kind: 'print', adapter: 'folder', detail: config.printDir },
  ];
  let closed: Promise<void> | null = null;
  return {
    pdf, mailer, print, mailFrom: config.mailFrom, mailFixedByServer: config.mailTransportFixed, secrets: createSecretBox(config.secretKey),
    mailerFor: (choice) => chooser.mailerFor(choice),
    describe(choice = null) {
      const chosen = chooser.describe(choice);
      return chosen ? description.map((d) => (d.kind === 'mail' ? chosen : d)) : description;
    },
    close() {
      closed ??= Promise.allSettled([pdf.close(), mailer.close(), chooser.close()]).then(() => undefined);
      return closed;
    },
  };
}
