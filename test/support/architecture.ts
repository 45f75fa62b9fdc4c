/**
 * The architecture rules of the modular monolith, as pure functions over (path, source)
 * pairs. Nothing here touches the file system: test/architecture.test.ts walks src/ and
 * feeds the files in, and it also feeds synthetic files to show violations are caught.
 *
 * Paths are repository-relative with forward slashes ("src/modules/billing/domain.ts").
 *
 * Rules (one violation is reported per offending import: the first rule below it breaks):
 *   domain-purity   a module's domain.ts, or any file under its domain/ folder, imports no
 *                   I/O: no database, HTTP, template, logging, PDF or mail package, no Node
 *                   builtin, not its own module's store/commands/routes/index, not
 *                   src/adapters, src/web, src/cli or src/main.ts, and from src/shared only
 *                   the pure files (PURE_SHARED: money, assert, clock, events, csv, email,
 *                   periods and client-names).
 *   cross-module    a file in module A imports nothing of module B except B's events.ts,
 *                   and that only type-only.
 *   shared-kernel   src/shared imports none of src/modules, src/web, src/cli, src/adapters,
 *                   src/main.ts.
 *   adapter-wiring  nothing under src/modules, src/shared, src/web or src/cli imports
 *                   src/adapters; only src/main.ts wires adapters in.
 *   module-outward  nothing under src/modules imports src/web, src/cli or src/main.ts.
 */
import { builtinModules } from 'node:module';
import { posix } from 'node:path';

// ---------------------------------------------------------------------------------------
// Import parsing
// ---------------------------------------------------------------------------------------

export type ImportKind = 'import' | 'side-effect' | 'export-from' | 'dynamic' | 'import-equals';

export interface ImportRef {
  /** The module specifier exactly as written. */
  readonly specifier: string;
  /** True when the import is erased at runtime (import type, export type, all-`type` specifiers, typeof import()). */
  readonly typeOnly: boolean;
  readonly kind: ImportKind;
  /** 1-based line of the `import` / `export` keyword. */
  readonly line: number;
}

interface Token {
  readonly kind: 'id' | 'str' | 'tpl' | 'punct' | 'num' | 'regex';
  readonly value: string;
  readonly line: number;
  /** For 'tpl': the template had no `${}` substitution, so value is its full text. */
  readonly plain?: boolean;
}

/** Keywords after which a `/` starts a regular expression, not a division. */
const REGEX_AFTER_KEYWORD = new Set([
  'return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case',
  'do', 'else', 'yield', 'await',
]);

const isIdStart = (c: string): boolean => /[A-Za-z_$#\u0080-\uffff]/.test(c);
const isIdPart = (c: string): boolean => /[\w$\u0080-\uffff]/.test(c);

/**
 * A small JavaScript/TypeScript lexer: enough to skip comments, strings, template
 * literals (with nested `${}` code) and regular expressions, so that text inside them is
 * never mistaken for an import.
 */
function tokenize(source: string): Token[] {
  const src = source.startsWith('#!') ? source.replace(/^#![^\n]*/, '') : source;
  const n = src.length;
  const toks: Token[] = [];
  /** One entry per open `{`: 'code' for a block/object, 'tpl' for a template `${`. */
  const braces: Array<'code' | 'tpl'> = [];
  let i = 0;
  let line = 1;

  const regexAllowed = (): boolean => {
    const prev = toks[toks.length - 1];
    if (!prev) return true;
    if (prev.kind === 'punct') return !(prev.value === ')' || prev.value === ']' || prev.value === '}');
    if (prev.kind === 'id') return REGEX_AFTER_KEYWORD.has(prev.value);
    return false;
  };

  /** Reads template text from i (just after ` or the } closing a substitution). */
  const readTemplate = (startLine: number, continuation: boolean): void => {
    let text = '';
    while (i < n) {
      const c = src[i]!;
      if (c === '\\') { text += src.slice(i, i + 2); if (src[i + 1] === '\n') line++; i += 2; continue; }
      if (c === '`') {
        i++;
        // A continuation's closing part is a value too: a `/` after it divides.
        toks.push({ kind: 'tpl', value: continuation ? '' : text, line: startLine, plain: !continuation });
        return;
      }
      if (c === '$' && src[i + 1] === '{') {
        i += 2;
        braces.push('tpl');
        if (!continuation) toks.push({ kind: 'tpl', value: text, line: startLine, plain: false });
        // Marks the start of the substitution's code, where a `/` may begin a regex.
        toks.push({ kind: 'punct', value: '${', line });
        return;
      }
      if (c === '\n') line++;
      text += c;
      i++;
    }
    if (!continuation) toks.push({ kind: 'tpl', value: text, line: startLine, plain: true });
  };

  while (i < n) {
    const c = src[i]!;
    const next = src[i + 1];
    if (c === '\n') { line++; i++; continue; }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v' || c === '\ufeff' || c === '\u00a0') { i++; continue; }
    if (c === '/' && next === '/') {
      while (i < n && src[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && next === '*') {
      const end = src.indexOf('*/', i + 2);
      const stop = end === -1 ? n : end + 2;
      for (let k = i; k < stop; k++) if (src[k] === '\n') line++;
      i = stop;
      continue;
    }
    if (c === '\'' || c === '"') {
      const startLine = line;
      let text = '';
      i++;
      while (i < n && src[i] !== c && src[i] !== '\n') {
        if (src[i] === '\\') {
          if (src[i + 1] === '\n') line++;
          text += src[i + 1] ?? '';
          i += 2;
          continue;
        }
        text += src[i];
        i++;
      }
      if (src[i] === c) i++;
      toks.push({ kind: 'str', value: text, line: startLine });
      continue;
    }
    if (c === '`') {
      i++;
      readTemplate(line, false);
      continue;
    }
    if (c === '{') { braces.push('code'); toks.push({ kind: 'punct', value: c, line }); i++; continue; }
    if (c === '}') {
      const top = braces.pop();
      i++;
      if (top === 'tpl') readTemplate(line, true);
      else toks.push({ kind: 'punct', value: c, line });
      continue;
    }
    if (c === '/' && regexAllowed()) {
      // A regular expression literal: up to the closing / outside a [...] class, then flags.
      let k = i + 1;
      let inClass = false;
      let closed = false;
      while (k < n && src[k] !== '\n') {
        const d = src[k]!;
        if (d === '\\') { k += 2; continue; }
        if (d === '[') inClass = true;
        else if (d === ']') inClass = false;
        else if (d === '/' && !inClass) { closed = true; break; }
        k++;
      }
      if (closed) {
        k++;
        while (k < n && isIdPart(src[k]!)) k++;
        toks.push({ kind: 'regex', value: src.slice(i, k), line });
        i = k;
        continue;
      }
      // Unterminated: treat the slash as an operator.
    }
    if (/[0-9]/.test(c) || (c === '.' && next !== undefined && /[0-9]/.test(next))) {
      let k = i + 1;
      while (k < n && /[\w.]/.test(src[k]!)) k++;
      toks.push({ kind: 'num', value: src.slice(i, k), line });
      i = k;
      continue;
    }
    if (isIdStart(c)) {
      let k = i + 1;
      while (k < n && isIdPart(src[k]!)) k++;
      toks.push({ kind: 'id', value: src.slice(i, k), line });
      i = k;
      continue;
    }
    toks.push({ kind: 'punct', value: c, line });
    i++;
  }
  return toks;
}

const isPunct = (t: Token | undefined, v: string): boolean => t !== undefined && t.kind === 'punct' && t.value === v;
const isId = (t: Token | undefined, v?: string): boolean => t !== undefined && t.kind === 'id' && (v === undefined || t.value === v);
const isStr = (t: Token | undefined): t is Token => t !== undefined && (t.kind === 'str' || (t.kind === 'tpl' && t.plain === true));

/**
 * Parses `{ a, type B, c as d, type e as f }` starting at the `{` at index `open`.
 * Returns whether each specifier carries the inline `type` modifier and the index after `}`.
 */
function parseNamedList(toks: readonly Token[], open: number): { specifiers: boolean[]; end: number } | undefined {
  const specifiers: boolean[] = [];
  let current: Token[] = [];
  const flush = (): void => {
    if (current.length === 0) return;
    const [first, second] = current;
    // `type` is a modifier unless it is itself the imported name: `{ type }`, `{ type as x }`.
    const modifier = isId(first, 'type') && current.length >= 2 && !(current.length === 3 && isId(second, 'as'));
    specifiers.push(modifier);
    current = [];
  };
  for (let j = open + 1; j < toks.length; j++) {
    const t = toks[j]!;
    if (isPunct(t, '}')) { flush(); return { specifiers, end: j + 1 }; }
    if (isPunct(t, ',')) { flush(); continue; }
    if (t.kind !== 'id' && t.kind !== 'str') return undefined;
    current.push(t);
  }
  return undefined;
}

/** Index of the `)` matching the `(` at `open`, or -1. */
function matchParen(toks: readonly Token[], open: number): number {
  let depth = 0;
  for (let j = open; j < toks.length; j++) {
    const t = toks[j]!;
    if (t.kind !== 'punct') continue;
    if (t.value === '(') depth++;
    else if (t.value === ')') { depth--; if (depth === 0) return j; }
  }
  return -1;
}

const PROMISE_METHODS = new Set(['then', 'catch', 'finally']);

function parseImportAt(toks: readonly Token[], idx: number): ImportRef | undefined {
  const kw = toks[idx]!;
  const line = kw.line;
  const next = toks[idx + 1];
  if (!next || isPunct(next, '.')) return undefined; // import.meta
  if (isPunct(next, '(')) {
    const arg = toks[idx + 2];
    if (!isStr(arg)) return undefined; // computed specifier: cannot be resolved statically
    // `typeof import('x')` and `import('x').Member` (a TS import type) are erased; anything
    // else (await import('x'), import('x').then(...)) loads the module at runtime.
    const close = matchParen(toks, idx + 1);
    const after = close === -1 ? undefined : toks[close + 1];
    const member = close === -1 ? undefined : toks[close + 2];
    const typeOnly = isId(toks[idx - 1], 'typeof')
      || (isPunct(after, '.') && isId(member) && !PROMISE_METHODS.has(member!.value));
    return { specifier: arg.value, typeOnly, kind: 'dynamic', line };
  }
  if (isStr(next)) return { specifier: next.value, typeOnly: false, kind: 'side-effect', line };

  let j = idx + 1;
  let declTypeOnly = false;
  if (isId(toks[j], 'type')) {
    const a = toks[j + 1];
    if (isPunct(a, '{') || isPunct(a, '*')
      || (isId(a) && a!.value !== 'from')
      || (isId(a, 'from') && isId(toks[j + 2], 'from'))) {
      declTypeOnly = true;
      j++;
    }
  }
  let hasDefault = false;
  let hasNamespace = false;
  let named: boolean[] = [];
  while (j < toks.length) {
    const t = toks[j]!;
    if (isId(t, 'from') && isStr(toks[j + 1])) {
      const typeOnly = declTypeOnly; // only `import type` is erased entirely under verbatimModuleSyntax
      return { specifier: toks[j + 1]!.value, typeOnly, kind: 'import', line };
    }
    if (isPunct(t, '{')) {
      const list = parseNamedList(toks, j);
      if (!list) return undefined;
      named = list.specifiers;
      j = list.end;
      continue;
    }
    if (isPunct(t, '*')) {
      hasNamespace = true;
      j += isId(toks[j + 1], 'as') ? 3 : 1;
      continue;
    }
    if (isPunct(t, ',')) { j++; continue; }
    if (isPunct(t, '=')) {
      // import x = require('y'); (import x = A.B is a namespace alias, not a module import)
      if (isId(toks[j + 1], 'require') && isPunct(toks[j + 2], '(') && isStr(toks[j + 3])) {
        return { specifier: toks[j + 3]!.value, typeOnly: declTypeOnly, kind: 'import-equals', line };
      }
      return undefined;
    }
    if (t.kind === 'id') { hasDefault = true; j++; continue; }
    return undefined; // not an import declaration (e.g. `{ import: x }`)
  }
  return undefined;
}

function parseExportAt(toks: readonly Token[], idx: number): ImportRef | undefined {
  const line = toks[idx]!.line;
  let j = idx + 1;
  let declTypeOnly = false;
  if (isId(toks[j], 'type') && (isPunct(toks[j + 1], '{') || isPunct(toks[j + 1], '*'))) {
    declTypeOnly = true;
    j++;
  }
  let named: boolean[] = [];
  if (isPunct(toks[j], '*')) {
    j++;
    if (isId(toks[j], 'as')) j += 2;
  } else if (isPunct(toks[j], '{')) {
    const list = parseNamedList(toks, j);
    if (!list) return undefined;
    named = list.specifiers;
    j = list.end;
  } else {
    return undefined;
  }
  if (!isId(toks[j], 'from') || !isStr(toks[j + 1])) return undefined; // a local export list
  const typeOnly = declTypeOnly;
  return { specifier: toks[j + 1]!.value, typeOnly, kind: 'export-from', line };
}

/**
 * Every module specifier a TypeScript source imports or re-exports: static imports (value,
 * `import type`, inline `type` specifiers), side-effect imports, `export ... from`,
 * `import x = require()` and dynamic `import('...')` with a literal argument.
 * Comments, strings, template literals and regular expressions are skipped.
 */
export function parseImports(source: string): ImportRef[] {
  const toks = tokenize(source);
  const out: ImportRef[] = [];
  for (let idx = 0; idx < toks.length; idx++) {
    const t = toks[idx]!;
    if (t.kind !== 'id' || (t.value !== 'import' && t.value !== 'export')) continue;
    const prev = toks[idx - 1];
    if (isPunct(prev, '.')) continue; // obj.import / obj.export
    const ref = t.value === 'import' ? parseImportAt(toks, idx) : parseExportAt(toks, idx);
    if (ref) out.push(ref);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Resolution and classification
// ---------------------------------------------------------------------------------------

export type Target =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'package'; readonly name: string };

const toPosix = (p: string): string => p.replace(/\\/g, '/').replace(/^\.\//, '');

/**
 * Resolves a specifier against the importing file. Relative specifiers become normalised
 * repository-relative paths (a `.js` extension is mapped to `.ts`, as NodeNext resolution
 * does); anything else is a package, named by its first segment (two when scoped).
 */
export function resolveImport(fromFile: string, specifier: string): Target {
  if (specifier === '.' || specifier === '..' || specifier.startsWith('./') || specifier.startsWith('../') || specifier.startsWith('/')) {
    const joined = specifier.startsWith('/')
      ? posix.normalize(specifier)
      : posix.join(posix.dirname(toPosix(fromFile)), specifier);
    const path = joined.replace(/\.js$/, '.ts').replace(/\.mjs$/, '.mts').replace(/\.cjs$/, '.cts').replace(/\.jsx$/, '.tsx');
    return { kind: 'file', path };
  }
  if (specifier.startsWith('node:')) return { kind: 'package', name: specifier };
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  return { kind: 'package', name };
}

export type Layer = 'module' | 'shared' | 'adapters' | 'web' | 'cli' | 'main' | 'other';

export interface Place {
  readonly layer: Layer;
  /** For layer 'module': the module's folder name (undefined for a file directly in src/modules). */
  readonly module?: string;
  /** For layer 'module': the path inside the module folder ("events.ts", "domain/rates.ts"). */
  readonly rest?: string;
}

/** Where a repository-relative path sits in the architecture. */
export function classify(path: string): Place {
  const p = toPosix(path);
  if (p === 'src/main.ts') return { layer: 'main' };
  const segs = p.split('/');
  if (segs[0] !== 'src' || segs.length < 3) return { layer: 'other' };
  switch (segs[1]) {
    case 'modules':
      return segs.length >= 4 ? { layer: 'module', module: segs[2]!, rest: segs.slice(3).join('/') } : { layer: 'module' };
    case 'shared': return { layer: 'shared' };
    case 'adapters': return { layer: 'adapters' };
    case 'web': return { layer: 'web' };
    case 'cli': return { layer: 'cli' };
    default: return { layer: 'other' };
  }
}

/** True for a module's domain.ts or anything under its domain/ folder. */
export function isDomainFile(path: string): boolean {
  const place = classify(path);
  return place.layer === 'module' && place.module !== undefined
    && (place.rest === 'domain.ts' || (place.rest ?? '').startsWith('domain/'));
}

/** Packages that do I/O (database, HTTP, templates, logging, PDF, mail). */
export const IO_PACKAGES: ReadonlySet<string> = new Set([
  'kysely', 'pg', 'better-sqlite3', 'hono', 'nunjucks', 'pino', 'puppeteer-core', 'nodemailer',
]);
/** Scopes whose every package does I/O. */
export const IO_SCOPES: readonly string[] = ['@hono/'];
const NODE_BUILTINS: ReadonlySet<string> = new Set(builtinModules.map((m) => m.split('/')[0]!));

/** The src/shared files a domain may import: they do no I/O and need no Node builtin. */
export const PURE_SHARED: ReadonlySet<string> = new Set([
  'src/shared/money.ts', 'src/shared/assert.ts', 'src/shared/clock.ts', 'src/shared/events.ts', 'src/shared/csv.ts', 'src/shared/email.ts', 'src/shared/periods.ts', 'src/shared/client-names.ts',
]);

/** A module's own files a domain must not reach back into (file `x.ts` or folder `x/`). */
const DOMAIN_FORBIDDEN_OWN = new Set(['store', 'commands', 'routes', 'index']);

export function isIoPackage(name: string): boolean {
  if (name.startsWith('node:')) return true;
  if (IO_PACKAGES.has(name)) return true;
  if (IO_SCOPES.some((s) => name.startsWith(s))) return true;
  return NODE_BUILTINS.has(name.split('/')[0]!);
}

// ---------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------

export type RuleId = 'domain-purity' | 'cross-module' | 'shared-kernel' | 'adapter-wiring' | 'module-outward';

export interface Violation {
  readonly file: string;
  readonly line: number;
  readonly rule: RuleId;
  /** The specifier as written. */
  readonly specifier: string;
  readonly message: string;
}

const LAYER_LABEL: Record<Layer, string> = {
  module: 'src/modules', shared: 'src/shared', adapters: 'src/adapters', web: 'src/web', cli: 'src/cli', main: 'src/main.ts', other: 'outside the layers',
};

/** The first rule an import breaks, or undefined when it is allowed. */
export function checkImport(file: string, ref: ImportRef): Violation | undefined {
  const from = classify(file);
  const target = resolveImport(file, ref.specifier);
  const to: Place | undefined = target.kind === 'file' ? classify(target.path) : undefined;
  const v = (rule: RuleId, message: string): Violation => ({ file: toPosix(file), line: ref.line, rule, specifier: ref.specifier, message });

  if (isDomainFile(file)) {
    if (target.kind === 'package') {
      if (isIoPackage(target.name)) return v('domain-purity', `domain code must not import the I/O package ${target.name}`);
    } else if (to) {
      if (to.layer === 'module' && to.module === from.module) {
        const head = (to.rest ?? '').split('/')[0]!.replace(/\.[cm]?tsx?$/, '');
        if (DOMAIN_FORBIDDEN_OWN.has(head)) return v('domain-purity', `domain code must not import its module's ${head}`);
      } else if (to.layer === 'shared') {
        if (!PURE_SHARED.has(target.path)) return v('domain-purity', `domain code may import from src/shared only ${[...PURE_SHARED].map((p) => posix.basename(p)).join(', ')}`);
      } else if (to.layer === 'adapters' || to.layer === 'web' || to.layer === 'cli' || to.layer === 'main') {
        return v('domain-purity', `domain code must not import ${LAYER_LABEL[to.layer]}`);
      }
    }
  }

  if (from.layer === 'module' && from.module !== undefined && to?.layer === 'module' && to.module !== undefined && to.module !== from.module) {
    if (to.rest !== 'events.ts') return v('cross-module', `module ${from.module} may import only src/modules/${to.module}/events.ts from module ${to.module}`);
    if (!ref.typeOnly) return v('cross-module', `module ${from.module} must import src/modules/${to.module}/events.ts type-only (import type)`);
  }

  if (from.layer === 'shared' && to && (to.layer === 'module' || to.layer === 'web' || to.layer === 'cli' || to.layer === 'adapters' || to.layer === 'main')) {
    return v('shared-kernel', `src/shared must not import ${LAYER_LABEL[to.layer]}`);
  }

  if ((from.layer === 'module' || from.layer === 'shared' || from.layer === 'web' || from.layer === 'cli') && to?.layer === 'adapters') {
    return v('adapter-wiring', `${LAYER_LABEL[from.layer]} must not import src/adapters: only src/main.ts wires adapters in`);
  }

  if (from.layer === 'module' && to && (to.layer === 'web' || to.layer === 'cli' || to.layer === 'main')) {
    return v('module-outward', `src/modules must not import ${LAYER_LABEL[to.layer]}`);
  }
  return undefined;
}

/** The violations of one source file. */
export function checkFile(file: string, source: string): Violation[] {
  const out: Violation[] = [];
  for (const ref of parseImports(source)) {
    const violation = checkImport(file, ref);
    if (violation) out.push(violation);
  }
  return out;
}

/** The violations of a set of files, given as path → source. */
export function checkSources(files: Iterable<readonly [string, string]> | Readonly<Record<string, string>>): Violation[] {
  const entries: Iterable<readonly [string, string]> = Symbol.iterator in files
    ? files as Iterable<readonly [string, string]>
    : Object.entries(files as Readonly<Record<string, string>>);
  const out: Violation[] = [];
  for (const [file, source] of entries) out.push(...checkFile(file, source));
  return out;
}

/** `file: rule: import`, with the line and the reason after. */
export function formatViolation(v: Violation): string {
  return `${v.file}: ${v.rule}: ${v.specifier} (line ${v.line}: ${v.message})`;
}
