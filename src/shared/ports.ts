/**
 * Output ports: what modules ask of the swappable output adapters (src/adapters/pdf, mail,
 * print). Modules depend on these interfaces only; main.ts picks the adapters from settings.
 */

export interface PdfRenderOptions {
  /** Give up on one render after this long. */
  timeoutMs?: number;
  /** A4 unless told. */
  format?: 'A4' | 'Letter';
  landscape?: boolean;
  /**
   * The caller's word that this document prints the same as a section of a longer one, so the
   * renderer may print it together with others and cut the PDF where it starts: the same head as
   * the others but for its title, a plain `<body>`, nothing fixed to every page (a watermark),
   * no page counters, no rule for the first page only. Final bills are; watermarked previews are not.
   */
  combinable?: boolean;
  /**
   * Number the pages of a document of more than one page ("Page 2 of 3" at the foot of each,
   * after this label: "Tax invoice 2026.14"); a one-page document is left as printed. Absent:
   * no page numbers.
   */
  pageLabel?: string;
}

/** Renders a self-contained HTML document (inline CSS, no network) to PDF bytes. */
export interface PdfRenderer {
  render(html: string, options?: PdfRenderOptions): Promise<Uint8Array>;
  /** Close the browser; nothing of Chromium is left running afterwards. */
  close(): Promise<void>;
}

export interface MailAttachment {
  filename: string;
  contentType: string;
  content: Uint8Array;
}

export interface MailMessage {
  /** Stable per logical message (an idempotency key): the Message-ID is derived from it. */
  messageKey: string;
  from: string;
  to: readonly string[];
  cc?: readonly string[];
  replyTo?: string;
  subject: string;
  text: string;
  html?: string;
  attachments?: readonly MailAttachment[];
}

/** An address the mail server refused (at RCPT TO) while it took the message for the others. */
export interface MailRefusal {
  address: string;
  /** The server's reply for it ("550 5.1.1 Mailbox unavailable"). */
  reason: string;
}

export interface MailReceipt {
  messageId: string;
  /** smtp: the server's reply; file-drop: the file written. */
  detail: string;
  /**
   * The addresses the server refused: the message went to the others only. (A server refusing
   * every address fails the send instead.) File-drop refuses none.
   */
  refused: readonly MailRefusal[];
}

export interface Mailer {
  readonly kind: 'smtp' | 'file-drop';
  /**
   * Where it sends: this host's name and the drop folder's absolute path, or the SMTP server's host:port. A send a
   * stopped process left tried is resent by a retry only through the same folder (see
   * domain/mail-transport.ts retryMayResend).
   */
  readonly target: string;
  send(message: MailMessage): Promise<MailReceipt>;
  close(): Promise<void>;
}

export interface PrintJob {
  /** Stable per logical job (an idempotency key): a job already written is not written again. */
  jobKey: string;
  /** The file name stem, e.g. the bill number. */
  name: string;
  pdf: Uint8Array;
  copies: number;
}

export interface PrintOutput {
  /** The print folder's absolute path. */
  readonly target: string;
  /**
   * Writes the copies; returns the paths written (existing ones for a job already done). A copy
   * handed over in one of `alsoDoneIn` (print folders an earlier attempt of the same job wrote
   * to: the server's PRINT_DIR changed between a crash and the retry) is not written again; its
   * path there is returned.
   */
  print(job: PrintJob, opts?: { alsoDoneIn?: readonly string[] }): Promise<string[]>;
}

/** One line per active output, for the settings page (no secrets). */
export interface OutputDescription {
  readonly kind: 'pdf' | 'mail' | 'print';
  readonly adapter: string;
  readonly detail: string;
}

/**
 * A mail transport chosen on billing's settings page. None chosen: the server's configuration
 * decides (MAIL_TRANSPORT, SMTP_*). File-drop writes to the server's folder (MAIL_DROP_DIR).
 */
export type MailTransportChoice =
  | { readonly transport: 'file-drop' }
  | { readonly transport: 'smtp'; readonly host: string; readonly port: number; readonly secure: boolean; readonly user: string | null; readonly pass: string | null };

/** The outputs main.ts hands the modules. */
/** A secret opened: its text, `legacy` when it was stored plain (before sealing) and should be sealed now. */
export type OpenedSecret = { ok: true; plain: string; legacy: boolean } | { ok: false; reason: string };

/** Seals secrets kept in the database with a key kept outside it (see adapters/secrets.ts). */
export interface SecretBox {
  /** `purpose` names where the sealed text is kept: it opens only for the same purpose. */
  seal(plain: string, purpose: string): string;
  open(sealed: string, purpose: string): OpenedSecret;
}

export interface Outputs {
  readonly pdf: PdfRenderer;
  /** The mailer of the server's configuration. */
  readonly mailer: Mailer;
  readonly print: PrintOutput;
  /** Seals the SMTP password chosen on the settings page (kept in the database). */
  readonly secrets: SecretBox;
  /** The configured sender address (MAIL_FROM). */
  readonly mailFrom: string;
  /** True when the server's configuration sets MAIL_TRANSPORT: it fixes the transport, and a choice made on the page is not used. */
  readonly mailFixedByServer: boolean;
  /** The mailer for the page's choice: the server's own for none, or when the server's configuration fixes it. */
  mailerFor(choice: MailTransportChoice | null): Mailer;
  /** What is configured (with the page's mail choice, when it is used), for display. */
  describe(choice?: MailTransportChoice | null): readonly OutputDescription[];
  /** Close all three (idempotent). Creating outputs must not start anything; this stops what use started. */
  close(): Promise<void>;
}
