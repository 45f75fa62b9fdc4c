// Secrets kept in the database sealed with a key kept outside it (adapters/secrets.ts): AES-256-GCM
// with the purpose bound in, the key from LEXBILL_SECRET_KEY or a key file made once (0600).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, scryptSync } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { createSecretBox, secretKeySourceFromEnv } from '../../src/adapters/secrets.ts';
import { outputsConfigFromEnv } from '../../src/adapters/outputs.ts';

const PURPOSE = 'billing_mail_transport.smtp_password';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-secrets-'));
  try { fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
}

test('any text seals and opens to itself; each seal is different; the sealed text holds no readable trace of it', () => withDir((dir) => {
  const box = createSecretBox({ file: join(dir, 'secret.key') });
  fc.assert(fc.property(fc.string({ maxLength: 1_000, unit: 'grapheme' }), (plain) => {
    const a = box.seal(plain, PURPOSE);
    const b = box.seal(plain, PURPOSE);
    assert.notEqual(a, b, 'a fresh nonce each time');
    assert.match(a, /^sealed:v1:[0-9a-f]{8}:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]{22}:[A-Za-z0-9_-]*$/);
    assert.deepEqual(box.open(a, PURPOSE), { ok: true, plain, legacy: false });
  }), { numRuns: 300 });
  for (const word of ['pa55 word!', 'correct horse battery staple']) assert.ok(!box.seal(word, PURPOSE).includes(word));
}));

test('a sealed text opens only with its key and for its purpose, and not when changed', () => withDir((dir) => {
  const box = createSecretBox({ file: join(dir, 'secret.key') });
  const other = createSecretBox({ file: join(dir, 'other.key') });
  const sealed = box.seal('s3cret', PURPOSE);
  // [case, sealed text, purpose, why]
  const refused: [string, string, string, RegExp][] = [
    ['another key', sealed, PURPOSE, /sealed with another key than this server's \(from .*other\.key\)/],
    ['another purpose', sealed, 'ledger.bank_password', /does not open with this server's key/],
    ['a changed ciphertext', sealed.slice(0, -2) + (sealed.endsWith('AA') ? 'BB' : 'AA'), PURPOSE, /does not open/],
    ['a changed tag', sealed.split(':').map((p, i) => (i === 4 ? `${p[0] === 'A' ? 'B' : 'A'}${p.slice(1)}` : p)).join(':'), PURPOSE, /does not open/],
    ['a part missing', sealed.split(':').slice(0, 5).join(':'), PURPOSE, /damaged/],
    ['a short nonce', sealed.split(':').map((p, i) => (i === 3 ? 'AAAA' : p)).join(':'), PURPOSE, /damaged/],
  ];
  for (const [name, text, purpose, why] of refused) {
    const box2 = name === 'another key' ? other : box;
    const o = box2.open(text, purpose);
    assert.equal(o.ok, false, name);
    assert.match((o as { reason: string }).reason, why, name);
  }
  // Stored before sealing: opens as itself, marked for sealing.
  assert.deepEqual(box.open('plain old password', PURPOSE), { ok: true, plain: 'plain old password', legacy: true });
}));

test('the key file is made on first use (0600), exclusively, and read by every box after; a damaged one is refused by name', () => withDir((dir) => {
  const file = join(dir, 'data', 'secret.key');
  const first = createSecretBox({ file });
  assert.equal(existsSync(file), false, 'creating the box makes nothing');
  const sealed = first.seal('s3cret', PURPOSE);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const key = readFileSync(file, 'utf8');
  assert.equal(Buffer.from(key.trim(), 'base64').length, 32);
  // Another process starting later (or at the same moment: the file is created exclusively) uses the same key.
  const second = createSecretBox({ file });
  assert.deepEqual(second.open(sealed, PURPOSE), { ok: true, plain: 's3cret', legacy: false });
  assert.equal(readFileSync(file, 'utf8'), key, 'not made again');
  writeFileSync(file, 'not a key\n');
  assert.throws(() => createSecretBox({ file }).seal('x', PURPOSE), /does not hold a key \(32 bytes in base64\)/);
}));

test('LEXBILL_SECRET_KEY gives the key (no file made); too short a one is refused; the default key file is in the data folder', () => withDir((dir) => {
  const file = join(dir, 'secret.key');
  const text = 'a long passphrase kept in the service manager, not the database';
  const a = createSecretBox(secretKeySourceFromEnv({ LEXBILL_SECRET_KEY: text }, file));
  const b = createSecretBox(secretKeySourceFromEnv({ LEXBILL_SECRET_KEY: text }, file));
  assert.deepEqual(b.open(a.seal('s3cret', PURPOSE), PURPOSE), { ok: true, plain: 's3cret', legacy: false });
  assert.equal(existsSync(file), false);
  const c = createSecretBox(secretKeySourceFromEnv({ LEXBILL_SECRET_KEY: `${text}!` }, file));
  const refused = (c.open(a.seal('s3cret', PURPOSE), PURPOSE) as { reason: string }).reason;
  assert.match(refused, /another key than this server's \(from LEXBILL_SECRET_KEY\)/);
  assert.doesNotMatch(refused, /[0-9a-f]{8}/, 'no key id shown');
  assert.throws(() => secretKeySourceFromEnv({ LEXBILL_SECRET_KEY: 'short' }, file), /LEXBILL_SECRET_KEY must be at least 32 characters/);
  // The text is stretched with scrypt (N 2^16, r 8: 64 MB a guess), not a fast hash: the key id a dump shows is checked against that.
  const id = a.seal('s3cret', PURPOSE).split(':')[2];
  const stretched = scryptSync(text, 'lexbill secret box v1', 32, { N: 2 ** 16, r: 8, p: 1, maxmem: 96 * 1024 * 1024 });
  assert.equal(id, createHash('sha256').update(stretched).digest('hex').slice(0, 8));
  assert.deepEqual(outputsConfigFromEnv({}, '/opt/lexbill').secretKey, { file: '/opt/lexbill/data/secret.key' });
  assert.deepEqual(outputsConfigFromEnv({ LEXBILL_SECRET_KEY_FILE: '/etc/lexbill/secret.key' }, '/opt/lexbill').secretKey, { file: '/etc/lexbill/secret.key' });
}));

test('processes making the key file at the same moment all end up with one key, and no temp file is left', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-secrets-'));
  try {
    const file = join(dir, 'data', 'secret.key');
    const script = `import { createSecretBox } from ${JSON.stringify(new URL('../../src/adapters/secrets.ts', import.meta.url).href)};
process.stdout.write(createSecretBox({ file: ${JSON.stringify(file)} }).seal('s3cret', ${JSON.stringify(PURPOSE)}));`;
    const sealed = await Promise.all(Array.from({ length: 6 }, () => new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 60_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
    })));
    const box = createSecretBox({ file });
    for (const s of sealed) assert.deepEqual(box.open(s, PURPOSE), { ok: true, plain: 's3cret', legacy: false });
    assert.deepEqual(readdirSync(join(dir, 'data')), ['secret.key']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

