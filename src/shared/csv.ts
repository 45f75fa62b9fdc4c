/**
 * One line of a simple CSV file (the shipped reference files, reference/utbms.csv) split into
 * fields: commas separate, double quotes quote, "" inside quotes is a quote. A quote never
 * closed fails an assertion naming `where`. (Uploaded files, which may hold multi-line
 * fields and need errors a user can act on, go through matters' import parser.)
 */
import { assert } from './assert.ts';

export function csvLineFields(line: string, where: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') { cur += '"'; i++; } else if (ch === '"') quoted = false; else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') { out.push(cur); cur = ''; } else cur += ch;
  }
  assert(!quoted, `${where}: unterminated quote`);
  out.push(cur);
  return out;
}
