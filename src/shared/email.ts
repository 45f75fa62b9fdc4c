/**
 * What counts as an email address everywhere Lexbill takes one (a client's send-to address, a
 * contact, a user, the email-manually form, the mail adapters): one plain address,
 * local@domain.tld, with nothing a mail library would read as more than one address, a group,
 * a comment or a display name ("a,b@x.example", "team:b@x.example;", "x(y)b@x.example"), or as
 * another header after a line break ("a@x.example\r\nBcc: b@y.example"). Such a string would be
 * sent to an address other than the one shown, so it is refused where it is typed.
 */
const PART = String.raw`[^\s\p{Cc}@,;:<>()"[\]\\]+`;
const PLAIN_EMAIL_RE = new RegExp(`^${PART}@${PART}\\.${PART}$`, 'u');

/** The longest address accepted (RFC 5321's limit on a path). */
export const MAX_EMAIL_CHARS = 254;

export function isEmailAddress(v: string): boolean {
  return v.length <= MAX_EMAIL_CHARS && PLAIN_EMAIL_RE.test(v);
}

/**
 * An address as compared with another: lower case, its domain in the ASCII form mail servers
 * and libraries use ("info@Müller.example" and "info@xn--mller-kva.example" are one address).
 */
export function addressKey(address: string): string {
  const a = address.trim();
  const at = a.lastIndexOf('@');
  if (at < 0) return a.toLowerCase();
  const domain = a.slice(at + 1);
  let ascii = domain.toLowerCase();
  try { ascii = new URL(`http://${domain}`).hostname; } catch { /* not a host name: compared as written */ }
  return `${a.slice(0, at).toLowerCase()}@${ascii}`;
}
