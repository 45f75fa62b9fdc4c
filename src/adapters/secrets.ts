/**
 * Secrets kept in the database (an SMTP password chosen on the settings page) sealed with a key
 * kept outside it: AES-256-GCM, a random 96-bit nonce per seal, the purpose (which column) as
 * associated data, so a sealed value copied into another column does not open there.
 *
 * The key: LEXBILL_SECRET_KEY (text of at least 32 characters, stretched with scrypt, so each
 * guess at it costs tens of milliseconds and 64 MB), or else the key file (LEXBILL_SECRET_KEY_FILE,
 * default <install dir>/data/secret.key), made on the first seal or open: 32 random bytes in
 * base64, mode 0600, written whole to a temp file, synced, then linked into place, so two
 * processes starting at once end up with the same key and none ever reads a part-written file. A
 * database dump or backup alone does not give the password away. Losing the key loses the
 * sealed values (an admin types them again); the settings page and each send say so.
 *
 * Sealed text: `sealed:v1:<key id>:<nonce>:<tag>:<ciphertext>` (base64url), the key id being
 * the first 8 hex digits of the key's SHA-256, to tell a key mismatch from damage (the ids are
 * not shown on pages or in errors). A value without the prefix was stored before sealing
 * (plain) and opens as itself, marked `legacy` so the caller seals it.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, scryptSync } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { assert } from '../shared/assert.ts';
import type { OpenedSecret, SecretBox } from '../shared/ports.ts';

const PREFIX = 'sealed:v1:';
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** The longest text sealed (bounds the work; an SMTP password is at most 1,000 characters). */
export const SEALED_PLAIN_MAX_CHARS = 10_000;
/** A key given as text must be at least this long (it is stretched, not a password to guess at). */
export const SECRET_KEY_TEXT_MIN_CHARS = 32;

export interface SecretKeySource {
  /** LEXBILL_SECRET_KEY, when set. */
  text?: string;
  /** The key file (made on first use when `text` is not given). */
  file: string;
}

export function secretKeySourceFromEnv(env: NodeJS.ProcessEnv, defaultFile: string): SecretKeySource {
  const text = env.LEXBILL_SECRET_KEY;
  if (text !== undefined && text !== '' && text.length < SECRET_KEY_TEXT_MIN_CHARS) {
    throw new Error(`LEXBILL_SECRET_KEY must be at least ${SECRET_KEY_TEXT_MIN_CHARS} characters (it seals the SMTP password kept in the database)`);
  }
  return { ...(text ? { text } : {}), file: env.LEXBILL_SECRET_KEY_FILE || defaultFile };
}

/** The key file's key, making the file when there is none (exclusively: another process may be making it at the same moment). */
function keyFromFile(file: string): Buffer {
  const read = (): Buffer => {
    const text = readFileSync(file, 'utf8').trim();
    const key = Buffer.from(text, 'base64');
    if (key.length !== KEY_BYTES || key.toString('base64') !== text) {
      throw new Error(`The secret key file ${file} does not hold a key (${KEY_BYTES} bytes in base64): restore it, or remove it and type the SMTP password on the billing settings page again`);
    }
    return key;
  };
  try {
    return read();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(dirname(file), { recursive: true });
  // Written whole and synced under a temp name, then linked into place: the link fails if
  // another process made the key first (its key is read then), and a reader never sees a part.
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, `${randomBytes(KEY_BYTES).toString('base64')}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
  return read();
}

/** scrypt's cost for a key given as text: N = 2^16, r = 8 (64 MB, tens of milliseconds once per process). */
const SCRYPT = { N: 2 ** 16, r: 8, p: 1, maxmem: 96 * 1024 * 1024 };

function keyFrom(source: SecretKeySource): Buffer {
  if (source.text) return scryptSync(source.text, 'lexbill secret box v1', KEY_BYTES, SCRYPT);
  return keyFromFile(source.file);
}

/** The box; the key is read (or the key file made) on the first seal or open, not before. */
export function createSecretBox(source: SecretKeySource): SecretBox {
  let key: Buffer | null = null;
  let keyId = '';
  const load = (): Buffer => {
    if (!key) {
      key = keyFrom(source);
      keyId = createHash('sha256').update(key).digest('hex').slice(0, 8);
    }
    return key;
  };
  const where = source.text ? 'LEXBILL_SECRET_KEY' : source.file;
  return {
    seal(plain, purpose) {
      assert(plain.length <= SEALED_PLAIN_MAX_CHARS, 'a sealed secret is at most 10,000 characters');
      assert(purpose.length > 0, 'a sealed secret names its purpose');
      const k = load();
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv('aes-256-gcm', k, nonce, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(purpose, 'utf8'));
      const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      return `${PREFIX}${keyId}:${nonce.toString('base64url')}:${cipher.getAuthTag().toString('base64url')}:${ct.toString('base64url')}`;
    },
    open(sealed, purpose): OpenedSecret {
      if (!sealed.startsWith(PREFIX)) return { ok: true, plain: sealed, legacy: true };
      const k = load();
      const parts = sealed.slice(PREFIX.length).split(':');
      if (parts.length !== 4) return { ok: false, reason: 'it is not a sealed value this server can read (damaged)' };
      const [id, nonceText, tagText, ctText] = parts as [string, string, string, string];
      if (id !== keyId) return { ok: false, reason: `it was sealed with another key than this server's (from ${where})` };
      const nonce = Buffer.from(nonceText, 'base64url');
      const tag = Buffer.from(tagText, 'base64url');
      if (nonce.length !== NONCE_BYTES || tag.length !== TAG_BYTES) return { ok: false, reason: 'it is not a sealed value this server can read (damaged)' };
      try {
        const decipher = createDecipheriv('aes-256-gcm', k, nonce, { authTagLength: TAG_BYTES });
        decipher.setAAD(Buffer.from(purpose, 'utf8'));
        decipher.setAuthTag(tag);
        const plain = Buffer.concat([decipher.update(Buffer.from(ctText, 'base64url')), decipher.final()]).toString('utf8');
        return { ok: true, plain, legacy: false };
      } catch {
        return { ok: false, reason: 'it does not open with this server\'s key (damaged, or sealed for another use)' };
      }
    },
  };
}
