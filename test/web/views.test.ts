/**
 * The templates' imports: a name a template imports macros under ({% import "x.njk" as f %})
 * hides any context variable of that name for the whole template, so every `f.something`
 * in it must be one of the imported file's macros. (The drafts page once imported its macros
 * as `f` while its filters were `f` too: the filters vanished from its forms.)
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';

const VIEWS = join(import.meta.dirname, '..', '..', 'views');

function templates(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? templates(path) : name.endsWith('.njk') ? [path] : [];
  });
}

/** Macro names a template file defines. */
function macrosOf(file: string): Set<string> {
  return new Set([...readFileSync(file, 'utf8').matchAll(/\{%-?\s*macro\s+([A-Za-z_]\w*)\s*\(/g)].map((m) => m[1]!));
}

/** Every `{% import "file" as name %}` of a template, and the names used as `name.member` in it. */
function importProblems(source: string, macrosIn: (file: string) => Set<string>): string[] {
  const problems: string[] = [];
  for (const m of source.matchAll(/\{%-?\s*import\s+"([^"]+)"\s+as\s+([A-Za-z_]\w*)\s*-?%\}/g)) {
    const [, file, alias] = m as unknown as [string, string, string];
    const macros = macrosIn(file);
    const used = new Set([...source.matchAll(new RegExp(`(?<![\\w.])${alias}\\.([A-Za-z_]\\w*)`, 'g'))].map((u) => u[1]!));
    for (const name of used) if (!macros.has(name)) problems.push(`${alias}.${name} is not a macro of ${file} (an import named ${alias} hides a context variable of that name)`);
  }
  return problems;
}

test('every name a template imports macros under is used for those macros only', () => {
  const all = templates(VIEWS);
  assert.ok(all.length > 20, `templates found: ${all.length}`);
  let imports = 0;
  const problems: string[] = [];
  for (const path of all) {
    const source = readFileSync(path, 'utf8');
    imports += [...source.matchAll(/\{%-?\s*import\s/g)].length;
    for (const p of importProblems(source, (file) => macrosOf(join(VIEWS, file)))) problems.push(`${relative(VIEWS, path)}: ${p}`);
  }
  assert.ok(imports > 10, `imports checked: ${imports}`);
  assert.deepEqual(problems, []);
});

test('the check catches a shadowed context variable', () => {
  const source = '{% import "billing/_macros.njk" as f %}{{ f.input("q", "Q", f.q) }}{% if f.batchId %}x{% endif %}';
  assert.deepEqual(importProblems(source, () => new Set(['input', 'select'])), [
    'f.q is not a macro of billing/_macros.njk (an import named f hides a context variable of that name)',
    'f.batchId is not a macro of billing/_macros.njk (an import named f hides a context variable of that name)',
  ]);
});

test('a bill run\'s or a production\'s page reloads itself without JavaScript while it runs here, and only then', async () => {
  const { createViews } = await import('../../src/shared/web/views.ts');
  const views = createViews(VIEWS);
  const REFRESH = /<noscript><meta http-equiv="refresh" content="3" data-no-js-refresh><\/noscript>/;
  const run = { id: 'r1', status: 'running', createdAt: '2026-03-01T10:00:00Z', invoiceDate: '2026-03-01', upTo: '2026-03-01', template: null, paymentTermsDays: null, matterCount: 10, draftedCount: 2, skippedCount: 0 };
  const mass = (over: Record<string, unknown>) => views.render('billing/mass_run.njk', { run, skipped: [], drafted: [], percent: 20, settled: 2, stalled: false, live: true, can: { write: true }, currency: 'USD', csrfToken: 't', ...over });
  assert.match(mass({}), REFRESH);
  assert.doesNotMatch(mass({ stalled: true }), REFRESH, 'a stalled run waits for the clerk to resume it');
  assert.doesNotMatch(mass({ live: false, run: { ...run, status: 'done' } }), REFRESH);
  const production = (over: Record<string, unknown>) => views.render('billing/production_run.njk', { run: { id: 'p1', items: [] }, finished: false, stale: false, can: { write: true }, csrfToken: 't', ...over });
  assert.match(production({}), REFRESH);
  assert.doesNotMatch(production({ finished: true }), REFRESH);
  assert.doesNotMatch(production({ stale: true }), REFRESH);
});
