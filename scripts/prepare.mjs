#!/usr/bin/env node
// Preparation shared by `npm start` and `npm test`: install npm dependencies when they are
// missing or stale, and the system parts Lexbill needs (Chromium for PDFs; PostgreSQL for
// the test suite). As root it installs them with apt-get; otherwise it stops and prints
// the one command to run. Plain JavaScript: it must run before dependencies exist.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const wantPostgres = process.argv.includes('--postgres');
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function log(msg) { process.stderr.write(`[prepare] ${msg}\n`); }

function npmDepsFresh() {
  const marker = join(root, 'node_modules', '.package-lock.json');
  if (!existsSync(marker)) return false;
  return statSync(marker).mtimeMs >= statSync(join(root, 'package-lock.json')).mtimeMs;
}

if (!npmDepsFresh()) {
  log('installing npm dependencies (npm ci; better-sqlite3 compiles from source, about a minute)');
  const env = { ...process.env, PUPPETEER_SKIP_DOWNLOAD: '1' };
  if (!env.npm_config_nodedir && existsSync('/usr/include/node/node.h')) env.npm_config_nodedir = '/usr';
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit', env });
  if (r.status !== 0) { log('npm ci failed'); process.exit(r.status ?? 1); }
}

function chromiumPath() {
  for (const p of [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser']) {
    if (p && existsSync(p)) return p;
  }
  return null;
}

function postgresBin() {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const versions = readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions.length ? join(base, versions[0], 'bin') : null;
}

const missing = [];
if (!chromiumPath()) missing.push('chromium');
if (wantPostgres && !postgresBin()) missing.push('postgresql');
// Bill PDFs are set in Liberation Sans (metric-compatible with Arial, and about half the cost
// of DejaVu Sans to embed in each PDF), with DejaVu Sans for any character it lacks; Chromium
// installed without recommends may bring no fonts.
if (!existsSync('/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf')) missing.push('fonts-liberation2');
if (!existsSync('/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf')) missing.push('fonts-dejavu-core');
if (!existsSync('/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc')) missing.push('fonts-noto-cjk');
if (wantPostgres && !existsSync('/usr/bin/pdftotext')) missing.push('poppler-utils');
if (missing.length) {
  const cmd = `apt-get update && apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (!isRoot) {
    log(`missing system packages: ${missing.join(', ')}. Run as root:\n  ${cmd}`);
    process.exit(1);
  }
  log(`installing ${missing.join(', ')} with apt-get`);
  try {
    execFileSync('sh', ['-c', `DEBIAN_FRONTEND=noninteractive ${cmd}`], { stdio: 'inherit' });
  } catch {
    log(`apt-get failed; run: ${cmd}`);
    process.exit(1);
  }
}
