/**
 * The architecture rules (see test/support/architecture.ts): module boundaries, a pure
 * domain, adapters wired only in src/main.ts, a shared kernel that depends on nothing.
 * The first test scans the real src/ tree; the others feed the checker synthetic files
 * so that a rule which stopped catching anything would fail here.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { test } from 'node:test';
import {
  checkFile, checkSources, classify, formatViolation, isDomainFile, parseImports, resolveImport,
} from './support/architecture.ts';
import type { ImportRef, Violation } from './support/architecture.ts';

const root = join(import.meta.dirname, '..');

/** Every TypeScript file under dir, as repository-relative paths with forward slashes. */
function collectSources(dir: string): string[] {
  const out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return out;
  }
  for (const name of names) {
    const p = join(dir, name);
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) continue; // removed while we walked (others are editing the tree)
    if (st.isDirectory()) out.push(...collectSources(p));
    else if (/\.[cm]?tsx?$/.test(name)) out.push(relative(root, p).split(sep).join('/'));
  }
  return out;
}

/** The parts of a violation a test states. */
const brief = (vs: readonly Violation[]): Array<Pick<Violation, 'file' | 'rule' | 'specifier'>> =>
  vs.map(({ file, rule, specifier }) => ({ file, rule, specifier }));

const refs = (source: string): Array<Pick<ImportRef, 'specifier' | 'typeOnly' | 'kind'>> =>
  parseImports(source).map(({ specifier, typeOnly, kind }) => ({ specifier, typeOnly, kind }));

test('the src/ tree breaks no architecture rule', () => {
  const files = collectSources(join(root, 'src'));
  assert.ok(
    files.includes('src/main.ts') || files.includes('src/shared/money.ts'),
    `the scan must find the real sources (found ${files.length} files)`,
  );
  const sources: Array<[string, string]> = [];
  for (const f of files) {
    try {
      sources.push([f, readFileSync(join(root, f), 'utf8')]);
    } catch {
      // removed between the walk and the read
    }
  }
  const importCount = sources.reduce((n, [, src]) => n + parseImports(src).length, 0);
  assert.ok(importCount > 0, 'the scan must parse some imports, or the rules check nothing');
  const violations = checkSources(sources);
  assert.equal(
    violations.length, 0,
    `${violations.length} architecture violation(s) in ${sources.length} files:\n${violations.map(formatViolation).join('\n')}`,
  );
});

test('parseImports reads every import form, across lines, and skips comments and strings', () => {
  const source = [
    "import a from './a.ts';",
    "import type { B } from './b.ts';",
    "import { type C, type D } from './cd.ts';",
    "import { type E, f } from './ef.ts';",
    'import {',
    '  type G,',
    '  type H as HH,',
    "} from './gh.ts';",
    "import * as ns from './ns.ts';",
    "import type * as tns from './tns.ts';",
    "import def, { type T } from './def.ts';",
    "import './side.ts';",
    "export { x } from './x.ts';",
    "export type { Y } from './y.ts';",
    "export { type Z } from './z.ts';",
    "export * from './star.ts';",
    "export * as all from './all.ts';",
    "const m = await import('./dyn.ts');",
    'const later = () => import(',
    "  './dyn2.ts'",
    ');',
    "type Lazy = typeof import('./lazy.ts');",
    "let it: import('./it.ts').Thing;",
    "// import { gone } from './commented.ts';",
    "/* import x from './block.ts';",
    "   import './block2.ts'; */",
    "const s = \"import x from './in-string.ts'\";",
    "const t = `export * from './in-template.ts' ${import('./in-subst.ts')}`;",
    "const r = /import x from '.\\/in-regex.ts'/;",
    'export const local = 1;',
    'export { local as alias };',
    'const meta = import.meta.url;',
    "import type from './type-named-default.ts';",
    "import { type } from './type-named-binding.ts';",
    "import type { default as Q } from 'kysely';",
    "import x2 = require('./cjs.ts');",
  ].join('\n');
  assert.deepEqual(refs(source), [
    { specifier: './a.ts', typeOnly: false, kind: 'import' },
    // inline `type` specifiers still leave `import {} from` at runtime: not type-only
    { specifier: './b.ts', typeOnly: true, kind: 'import' },
    { specifier: './cd.ts', typeOnly: false, kind: 'import' },
    { specifier: './ef.ts', typeOnly: false, kind: 'import' },
    { specifier: './gh.ts', typeOnly: false, kind: 'import' },
    { specifier: './ns.ts', typeOnly: false, kind: 'import' },
    { specifier: './tns.ts', typeOnly: true, kind: 'import' },
    { specifier: './def.ts', typeOnly: false, kind: 'import' },
    { specifier: './side.ts', typeOnly: false, kind: 'side-effect' },
    { specifier: './x.ts', typeOnly: false, kind: 'export-from' },
    { specifier: './y.ts', typeOnly: true, kind: 'export-from' },
    { specifier: './z.ts', typeOnly: false, kind: 'export-from' },
    { specifier: './star.ts', typeOnly: false, kind: 'export-from' },
    { specifier: './all.ts', typeOnly: false, kind: 'export-from' },
    { specifier: './dyn.ts', typeOnly: false, kind: 'dynamic' },
    { specifier: './dyn2.ts', typeOnly: false, kind: 'dynamic' },
    { specifier: './lazy.ts', typeOnly: true, kind: 'dynamic' },
    { specifier: './it.ts', typeOnly: true, kind: 'dynamic' },
    { specifier: './in-subst.ts', typeOnly: false, kind: 'dynamic' },
    { specifier: './type-named-default.ts', typeOnly: false, kind: 'import' },
    { specifier: './type-named-binding.ts', typeOnly: false, kind: 'import' },
    { specifier: 'kysely', typeOnly: true, kind: 'import' },
    { specifier: './cjs.ts', typeOnly: false, kind: 'import-equals' },
  ]);
  const lines = parseImports("// one\n\nimport {\n  a,\n} from './a.ts';\n").map((r) => r.line);
  assert.deepEqual(lines, [3], 'a violation points at the line of the import keyword');
});

test('imports are resolved against the importing file and placed in their layer', () => {
  assert.deepEqual(resolveImport('src/modules/billing/domain.ts', '../../shared/money.ts'), { kind: 'file', path: 'src/shared/money.ts' });
  assert.deepEqual(resolveImport('src/modules/billing/sub/x.ts', '../../matters/events.js'), { kind: 'file', path: 'src/modules/matters/events.ts' });
  assert.deepEqual(resolveImport('src/main.ts', './adapters/db/sqlite.ts'), { kind: 'file', path: 'src/adapters/db/sqlite.ts' });
  assert.deepEqual(resolveImport('src/web/app.ts', '@hono/node-server/serve'), { kind: 'package', name: '@hono/node-server' });
  assert.deepEqual(resolveImport('src/web/app.ts', 'hono/html'), { kind: 'package', name: 'hono' });
  assert.deepEqual(resolveImport('src/web/app.ts', 'node:fs/promises'), { kind: 'package', name: 'node:fs/promises' });
  assert.deepEqual(classify('src/modules/billing/store/pg.ts'), { layer: 'module', module: 'billing', rest: 'store/pg.ts' });
  assert.deepEqual(classify('src/main.ts'), { layer: 'main' });
  assert.deepEqual(classify('src/shared/web/html.ts'), { layer: 'shared' });
  assert.equal(isDomainFile('src/modules/trust/domain.ts'), true);
  assert.equal(isDomainFile('src/modules/trust/domain/rules.ts'), true);
  assert.equal(isDomainFile('src/modules/trust/commands.ts'), false);
});

test('rule cross-module: another module may be reached only through its events.ts, type-only', () => {
  assert.deepEqual(brief(checkFile('src/modules/billing/commands.ts', "import { findMatter } from '../matters/store.ts';\n")), [
    { file: 'src/modules/billing/commands.ts', rule: 'cross-module', specifier: '../matters/store.ts' },
  ]);
  assert.deepEqual(brief(checkFile('src/modules/billing/commands.ts', "import { MatterEvents } from '../matters/events.ts';\n")), [
    { file: 'src/modules/billing/commands.ts', rule: 'cross-module', specifier: '../matters/events.ts' },
  ]);
  assert.deepEqual(brief(checkFile('src/modules/billing/commands.ts', "const m = await import('../matters/events.ts');\n")), [
    { file: 'src/modules/billing/commands.ts', rule: 'cross-module', specifier: '../matters/events.ts' },
  ], 'a dynamic import is a value import');
  assert.deepEqual(brief(checkFile('src/modules/billing/commands.ts', "import type { MatterRow } from '../matters/store.ts';\n")), [
    { file: 'src/modules/billing/commands.ts', rule: 'cross-module', specifier: '../matters/store.ts' },
  ], 'type-only does not make another file than events.ts allowed');
  assert.deepEqual(brief(checkFile('src/modules/billing/routes.ts', "export { matterRoutes } from '../matters/index.ts';\n")), [
    { file: 'src/modules/billing/routes.ts', rule: 'cross-module', specifier: '../matters/index.ts' },
  ]);
  assert.deepEqual(brief(checkFile('src/modules/billing/commands.ts', "import { type A, b } from '../matters/events.ts';\n")), [
    { file: 'src/modules/billing/commands.ts', rule: 'cross-module', specifier: '../matters/events.ts' },
  ], 'one value specifier makes the import a value import');
});

test('rule domain-purity: a domain imports no I/O and no store, commands, routes or index', () => {
  const file = 'src/modules/billing/domain.ts';
  assert.deepEqual(brief(checkFile(file, "import { Kysely } from 'kysely';\nimport { readFileSync } from 'node:fs';\n")), [
    { file, rule: 'domain-purity', specifier: 'kysely' },
    { file, rule: 'domain-purity', specifier: 'node:fs' },
  ]);
  const more = [
    "import path from 'path';",
    "import { Hono } from 'hono';",
    "import { serve } from '@hono/node-server';",
    "import type { Logger } from 'pino';",
    "import { newId } from '../../shared/ids.ts';",
    "import { html } from '../../shared/web/html.ts';",
    "import { loadBill } from './store.ts';",
    "import { approveBill } from './commands.ts';",
  ].join('\n');
  assert.deepEqual(checkFile(file, more).map((v) => [v.rule, v.specifier]), [
    ['domain-purity', 'path'],
    ['domain-purity', 'hono'],
    ['domain-purity', '@hono/node-server'],
    ['domain-purity', 'pino'],
    ['domain-purity', '../../shared/ids.ts'],
    ['domain-purity', '../../shared/web/html.ts'],
    ['domain-purity', './store.ts'],
    ['domain-purity', './commands.ts'],
  ]);
  assert.deepEqual(brief(checkFile('src/modules/billing/domain/rates.ts', "import { x } from '../store/pg.ts';\n")), [
    { file: 'src/modules/billing/domain/rates.ts', rule: 'domain-purity', specifier: '../store/pg.ts' },
  ], 'files under a domain/ folder are domain code too');
  assert.deepEqual(checkFile('src/modules/billing/commands.ts', "import { Kysely } from 'kysely';\nimport { readFileSync } from 'node:fs';\n"), [],
    'outside the domain, I/O packages are fine');
});

test('rule adapter-wiring: only src/main.ts imports src/adapters', () => {
  assert.deepEqual(brief(checkFile('src/modules/ledger/index.ts', "import { openSqlite } from '../../adapters/db/sqlite.ts';\n")), [
    { file: 'src/modules/ledger/index.ts', rule: 'adapter-wiring', specifier: '../../adapters/db/sqlite.ts' },
  ]);
  assert.deepEqual(brief(checkFile('src/web/app.ts', "import { openDatabase } from '../adapters/db/index.ts';\n")), [
    { file: 'src/web/app.ts', rule: 'adapter-wiring', specifier: '../adapters/db/index.ts' },
  ]);
  assert.deepEqual(brief(checkFile('src/cli/main.ts', "import { sendMail } from '../adapters/mail/smtp.ts';\n")), [
    { file: 'src/cli/main.ts', rule: 'adapter-wiring', specifier: '../adapters/mail/smtp.ts' },
  ]);
});

test('rule module-outward: modules import neither the web shell, the CLI nor src/main.ts', () => {
  const file = 'src/modules/trust/routes.ts';
  assert.deepEqual(checkFile(file, [
    "import { requireUser } from '../../web/auth/session.ts';",
    "import { run } from '../../cli/main.ts';",
    "import { boot } from '../../main.ts';",
  ].join('\n')).map((v) => [v.rule, v.specifier]), [
    ['module-outward', '../../web/auth/session.ts'],
    ['module-outward', '../../cli/main.ts'],
    ['module-outward', '../../main.ts'],
  ]);
});

test('rule shared-kernel: src/shared depends on no module, shell or adapter', () => {
  assert.deepEqual(brief(checkFile('src/shared/x.ts', "import type { BillingEvents } from '../modules/billing/events.ts';\n")), [
    { file: 'src/shared/x.ts', rule: 'shared-kernel', specifier: '../modules/billing/events.ts' },
  ]);
  assert.deepEqual(checkFile('src/shared/web/y.ts', [
    "import { createApp } from '../../web/app.ts';",
    "import { run } from '../../cli/main.ts';",
    "import { openDatabase } from '../../adapters/db/index.ts';",
    "import { boot } from '../../main.ts';",
  ].join('\n')).map((v) => [v.rule, v.specifier]), [
    ['shared-kernel', '../../web/app.ts'],
    ['shared-kernel', '../../cli/main.ts'],
    ['shared-kernel', '../../adapters/db/index.ts'],
    ['shared-kernel', '../../main.ts'],
  ]);
});

test('allowed imports yield no violation', () => {
  const allowed: Record<string, string> = {
    'src/modules/billing/commands.ts': [
      "import type { MatterEvents } from '../matters/events.ts';",
      "export type { LedgerEvents } from '../ledger/events.ts';",
      "import type { TrustEvents, TrustDeposit } from '../trust/events.ts';",
      "import { Money } from '../../shared/money.ts';",
      "import { newId } from '../../shared/ids.ts';",
      "import { html } from '../../shared/web/html.ts';",
      "import { approve } from './domain.ts';",
      "import { saveBill } from './store.ts';",
      "import { sql } from 'kysely';",
    ].join('\n'),
    'src/modules/billing/domain.ts': [
      "import { Money, sum } from '../../shared/money.ts';",
      "import { assert } from '../../shared/assert.ts';",
      "import type { Clock } from '../../shared/clock.ts';",
      "import type { EventEnvelope } from '../../shared/events.ts';",
      "import type { BillingEvents } from './events.ts';",
      "import type { MatterEvents } from '../matters/events.ts';",
      "import { rates } from './domain/rates.ts';",
    ].join('\n'),
    'src/main.ts': [
      "import { openDatabase } from './adapters/db/index.ts';",
      "import { createSqlite } from './adapters/db/sqlite.ts';",
      "import { billingModule } from './modules/billing/index.ts';",
      "import { createApp } from './web/app.ts';",
    ].join('\n'),
    'src/cli/main.ts': "import { boot } from '../main.ts';\nimport { readFileSync } from 'node:fs';\n",
    'src/web/app.ts': "import { Hono } from 'hono';\nimport { billingRoutes } from '../modules/billing/routes.ts';\n",
    'src/adapters/db/sqlite.ts': "import Database from 'better-sqlite3';\nimport type { Db } from '../../shared/db.ts';\n",
    'src/shared/outbox.ts': "import type { Logger } from 'pino';\nimport { newId } from './ids.ts';\n",
  };
  assert.deepEqual(checkSources(allowed).map(formatViolation), []);
});

test('formatViolation prints file: rule: import', () => {
  const [v] = checkFile('src/modules/billing/commands.ts', "\nimport { findMatter } from '../matters/store.ts';\n");
  assert.ok(v);
  assert.match(formatViolation(v), /^src\/modules\/billing\/commands\.ts: cross-module: \.\.\/matters\/store\.ts \(line 2: /);
});
