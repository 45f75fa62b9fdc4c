/**
 * The mail transport chosen on the settings page: the form's rules, and whether a send stopped
 * part way may be retried. Pure: no I/O.
 */

export type MailTransportName = 'server' | 'smtp' | 'file-drop';
export const MAIL_TRANSPORTS: readonly MailTransportName[] = ['server', 'smtp', 'file-drop'];

/** What the page keeps (the password too: the server signs in with it). */
export interface MailTransportFields {
  transport: MailTransportName;
  smtpHost: string | null;
  smtpPort: number | null;
  smtpSecure: boolean;
  smtpUser: string | null;
  smtpPassword: string | null;
}

/** The form as posted (text fields; `secure` is 'yes' when ticked). */
export interface MailTransportForm {
  transport: string;
  host: string;
  port: string;
  secure: string;
  user: string;
  /** Empty: keep the stored password (for the same user). */
  password: string;
}

export const SMTP_HOST_MAX = 253;
export const SMTP_USER_MAX = 254;
export const SMTP_PASSWORD_MAX = 1_000;

const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const HOST_NAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*\\.?$`);
const IPV4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;

/** An IPv6 address as typed bare (no brackets, no zone): eight groups, or fewer with one `::`; an IPv4 tail allowed. */
export function isIpv6(text: string): boolean {
  if (text.length === 0 || text.length > 45) return false;
  const halves = text.split('::');
  if (halves.length > 2) return false;
  const groupsOf = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const head = groupsOf(halves[0]!);
  const tail = halves.length === 2 ? groupsOf(halves[1]!) : [];
  const all = [...head, ...tail];
  // The IPv4 tail can only end the text: the last group of the tail, or of the whole when there is no "::".
  const v4Last = halves.length === 1 || tail.length > 0;
  let units = 0;
  for (let i = 0; i < all.length; i++) {
    const g = all[i]!;
    if (v4Last && i === all.length - 1 && g.includes('.')) {
      if (!IPV4.test(g)) return false;
      units += 2;
    } else if (HEX_GROUP.test(g)) {
      units += 1;
    } else {
      return false;
    }
  }
  return halves.length === 2 ? units <= 7 : units === 8;
}

/** A host name, or an IPv4 or IPv6 address; a name of digits and dots only must be an IPv4 address. */
export function isSmtpHost(text: string): boolean {
  if (text.includes(':')) return isIpv6(text);
  if (/^[\d.]+$/.test(text)) return IPV4.test(text);
  return HOST_NAME.test(text);
}
// Control characters (and DEL) in a user name or password could not be sent in an SMTP AUTH line as typed.
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * The fields to store for the form, or the errors by field. Only SMTP's fields are checked, and
 * only when SMTP is chosen; choosing another transport keeps the stored SMTP fields as they were
 * (shown again if SMTP is chosen later). A blank password keeps the stored one while the user
 * name stays the same; no user name, no password.
 */
export function mailTransportFrom(form: MailTransportForm, before: MailTransportFields): { fields: MailTransportFields } | { errors: Record<string, string> } {
  const e: Record<string, string> = {};
  const transport = form.transport.trim();
  if (!(MAIL_TRANSPORTS as readonly string[]).includes(transport)) return { errors: { transport: `must be one of ${MAIL_TRANSPORTS.join(', ')}` } };
  if (transport !== 'smtp') return { fields: { ...before, transport: transport as MailTransportName } };
  const host = form.host.trim();
  if (!host) e.host = 'is required for SMTP';
  else if (host.length > SMTP_HOST_MAX) e.host = `must be at most ${SMTP_HOST_MAX} characters`;
  else if (!isSmtpHost(host)) e.host = 'must be a host name or an IP address (an IPv6 address without brackets)';
  const portText = form.port.trim();
  const port = Number(portText);
  if (!portText) e.port = 'is required for SMTP (587 with STARTTLS, 465 with TLS from the start, 25)';
  else if (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65_535) e.port = 'must be a whole number from 1 to 65535';
  if (form.secure !== '' && form.secure !== 'yes') e.secure = 'must be ticked or not';
  const user = form.user.trim();
  if (user.length > SMTP_USER_MAX) e.user = `must be at most ${SMTP_USER_MAX} characters`;
  else if (CONTROL.test(user)) e.user = 'must not hold control characters';
  if (form.password.length > SMTP_PASSWORD_MAX) e.password = `must be at most ${SMTP_PASSWORD_MAX} characters`;
  else if (CONTROL.test(form.password)) e.password = 'must not hold control characters';
  else if (form.password !== '' && !user) e.user = 'is required with a password';
  // A kept password goes only to the server it was typed for: with another host it is asked for again, so that
  // pointing the settings at a server of one's own (and sending a test email) cannot draw it out.
  const sameUser = user !== '' && user === before.smtpUser;
  const samePlace = sameUser && host === before.smtpHost;
  if (!e.host && sameUser && !samePlace && form.password === '' && before.smtpPassword !== null && before.smtpPassword !== '') {
    e.password = 'must be typed again for another mail server (a kept password is sent only to the server it was typed for)';
  }
  if (Object.keys(e).length > 0) return { errors: e };
  const keptPassword = samePlace ? before.smtpPassword : null;
  return {
    fields: {
      transport: 'smtp', smtpHost: host, smtpPort: port, smtpSecure: form.secure === 'yes', smtpUser: user || null,
      smtpPassword: user ? (form.password !== '' ? form.password : keptPassword) : null,
    },
  };
}

export function sameMailTransport(a: MailTransportFields, b: MailTransportFields): boolean {
  return a.transport === b.transport && a.smtpHost === b.smtpHost && a.smtpPort === b.smtpPort && a.smtpSecure === b.smtpSecure
    && a.smtpUser === b.smtpUser && a.smtpPassword === b.smtpPassword;
}

/** What the page and the audit log show: no password, only whether one is kept. */
export function mailTransportView(t: MailTransportFields): { transport: MailTransportName; host: string | null; port: number | null; secure: boolean; user: string | null; passwordSet: boolean } {
  return { transport: t.transport, host: t.smtpHost, port: t.smtpPort, secure: t.smtpSecure, user: t.smtpUser, passwordSet: t.smtpPassword !== null && t.smtpPassword !== '' };
}

/**
 * A bill's email that a stopped attempt recorded as tried (and neither sent nor failed for
 * certain) may be sent again by a retry only through the file-drop folder it was tried through:
 * a file-drop send is idempotent by its message key (the folder's journal). One tried over SMTP,
 * through a transport other than the one the retry would use, or into another folder (the
 * server's MAIL_DROP_DIR changed since), may have gone: a clerk decides. `tried.transport` null:
 * tried before the transport was recorded, when only the server's own (`serverKind`) was used;
 * `tried.target` null: tried before the folder was recorded (taken as the same folder, as then).
 */
export function retryMayResend(tried: { transport: 'smtp' | 'file-drop' | null; target: string | null }, serverKind: 'smtp' | 'file-drop', now: { kind: 'smtp' | 'file-drop'; target: string }): boolean {
  const through = tried.transport ?? serverKind;
  if (through !== 'file-drop' || now.kind !== 'file-drop') return false;
  return tried.target === null || tried.target === now.target;
}
