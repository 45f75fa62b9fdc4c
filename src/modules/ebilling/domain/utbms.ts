/**
 * UTBMS codes as e-billing needs them: task code sets (litigation, ...) with their phases,
 * activity codes and expense codes, parsed from the shipped reference/utbms.csv
 * (header code_set,kind,code,parent,name). Pure: the store reads the file.
 */
import { assert } from '../../../shared/assert.ts';
import { csvLineFields } from '../../../shared/csv.ts';

export type UtbmsKind = 'phase' | 'task' | 'activity' | 'expense';

export interface UtbmsEntry {
  readonly codeSet: string;
  readonly kind: UtbmsKind;
  readonly code: string;
  readonly parent: string | null;
  readonly name: string;
}

export interface UtbmsCodes {
  readonly entries: readonly UtbmsEntry[];
  /** Task code set name to its billable task codes (phases are not billable). */
  readonly taskSets: ReadonlyMap<string, ReadonlySet<string>>;
  readonly activities: ReadonlySet<string>;
  readonly expenses: ReadonlySet<string>;
  readonly names: ReadonlyMap<string, string>;
}

const KINDS: readonly string[] = ['phase', 'task', 'activity', 'expense'];

export function parseUtbms(text: string): UtbmsCodes {
  const lines = text.replace(/^\ufeff/, '').split(/\r?\n/).filter((l) => l.trim() !== '');
  assert(lines[0]?.trim() === 'code_set,kind,code,parent,name', 'utbms.csv must start with code_set,kind,code,parent,name');
  assert(lines.length <= 10_001, 'utbms.csv: at most 10,000 codes');
  const entries: UtbmsEntry[] = [];
  const seen = new Set<string>();
  lines.slice(1).forEach((line, i) => {
    const f = csvLineFields(line, `utbms.csv line ${i + 2}`);
    assert(f.length === 5, `utbms.csv line ${i + 2}: expected 5 fields`);
    const [codeSet, kind, code, parent, name] = f as [string, string, string, string, string];
    assert(KINDS.includes(kind), `utbms.csv line ${i + 2}: unknown kind ${kind}`);
    assert(/^[A-Z]\d{3}$/.test(code), `utbms.csv line ${i + 2}: bad code ${code}`);
    assert(!seen.has(`${codeSet}|${code}`), `utbms.csv line ${i + 2}: ${code} repeated`);
    seen.add(`${codeSet}|${code}`);
    entries.push({ codeSet, kind: kind as UtbmsKind, code, parent: parent || null, name });
  });
  return indexCodes(entries);
}

export function indexCodes(entries: readonly UtbmsEntry[]): UtbmsCodes {
  const taskSets = new Map<string, Set<string>>();
  const activities = new Set<string>();
  const expenses = new Set<string>();
  const names = new Map<string, string>();
  for (const e of entries) {
    names.set(e.code, e.name);
    if (e.kind === 'task' || e.kind === 'phase') {
      const set = taskSets.get(e.codeSet) ?? new Set<string>();
      if (e.kind === 'task') set.add(e.code);
      taskSets.set(e.codeSet, set);
    } else if (e.kind === 'activity') activities.add(e.code);
    else expenses.add(e.code);
  }
  return { entries, taskSets, activities, expenses, names };
}

/** The code set names a matter may choose (those holding task codes). */
export function taskCodeSets(codes: UtbmsCodes): string[] {
  return [...codes.taskSets.entries()].filter(([, s]) => s.size > 0).map(([k]) => k);
}

/** True when `code` is a task code of any code set (used when the set is not known, e.g. validating a received file). */
export function isAnyTaskCode(codes: UtbmsCodes, code: string): boolean {
  for (const s of codes.taskSets.values()) if (s.has(code)) return true;
  return false;
}
