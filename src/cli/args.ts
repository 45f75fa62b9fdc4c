/**
 * What every lexbill command checks of its arguments beyond `parseArgs`'s strict mode: an
 * option given twice (`--invoice-date A ... --invoice-date B`, a scheduled script that
 * appends a flag) is refused naming it, never read as the last one given.
 */

interface Token { kind: string; name?: string; rawName?: string }

/** Why the options repeat (each repeated one named), or null when none does. */
export function repeatedOptions(tokens: readonly Token[] | undefined, options: Readonly<Record<string, { type: string; multiple?: boolean }>>): string | null {
  const seen = new Set<string>();
  const twice: string[] = [];
  for (const t of tokens ?? []) {
    if (t.kind !== 'option' || !t.name || options[t.name]?.multiple) continue;
    if (seen.has(t.name) && !twice.includes(t.name)) twice.push(t.name);
    seen.add(t.name);
  }
  if (twice.length === 0) return null;
  return twice.map((n) => `--${n} was given more than once (give it once)`).join('; ');
}

/** True for the errors `parseArgs` throws for bad usage (unknown option, missing value, stray argument). */
export function isParseArgsError(e: unknown): boolean {
  return typeof (e as { code?: unknown } | null)?.code === 'string' && (e as { code: string }).code.startsWith('ERR_PARSE_ARGS');
}
