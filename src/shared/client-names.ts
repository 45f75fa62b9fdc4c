/**
 * A client typed rather than chosen from a list: the pure rules (how names compare, what a
 * lookup's result says). The queries over the modules' client copies are in clients.ts.
 */
export interface ClientChoice { id: string; clientNumber: number; name: string }

/**
 * Latin letters that are not a letter with a mark, as a clerk without them on the keyboard
 * types them ("orsted" for Ørsted, "strasse" for Straße), lower case.
 */
const LATIN_PLAIN: Readonly<Record<string, string>> = {
  'ø': 'o', 'æ': 'ae', 'œ': 'oe', 'ß': 'ss', 'đ': 'd', 'ð': 'd', 'ł': 'l', 'þ': 'th', 'ı': 'i', 'ħ': 'h', 'ŀ': 'l',
};
/**
 * The marks dropped: the combining diacritical marks (and their extended and supplement blocks,
 * and half marks) after a Latin or Greek letter only. Elsewhere a mark is part of the letter:
 * Cyrillic й is not и, Devanagari कमल is not कोमल, Japanese ガス is not カス.
 */
const DIACRITICS = /([\p{Script=Latin}\p{Script=Greek}])[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+/gu;

/**
 * A client's name as typed names are compared with it: lower case, Latin and Greek accents dropped,
 * compatibility forms as their plain letters, and ø, æ, ß and the like as typed without them,
 * so "muller" and "MÜLLER" find "Müller GmbH", "emile" finds "Émile Zola SARL" and "orsted"
 * finds "Ørsted A/S", on both databases alike (SQLite's lower() folds ASCII only; Postgres's
 * depends on the server's locale). The copies' name_fold holds it (their migrations fold the
 * names copied before them the same way).
 */
export function foldName(name: string): string {
  return name.normalize('NFKD').replace(DIACRITICS, '$1').toLowerCase().replace(/[øæœßđðłþıħŀ]/g, (ch) => LATIN_PLAIN[ch]!);
}

/** What a typed client names: one client's id, or why it names none. */
export type ClientLookup = { id: string } | { error: string };

/** The most clients a shared name is looked up among (the refusal lists their numbers). */
export const NAMED_MAX = 10;

/**
 * The typed text as one client, from the clients it names (clientsNamed, at most 11): none,
 * or a name several clients share or hold, is refused in words, with each one's number and
 * name ("Kestrel" held by Kestrel Holdings and Kestrel Air: the clerk sees which to type).
 */
export function clientLookup(named: readonly { id: string; clientNumber: number; name?: string }[]): ClientLookup {
  if (named.length === 1) return { id: named[0]!.id };
  if (named.length === 0) return { error: 'no client with this number or name' };
  const shown = named.slice(0, NAMED_MAX).map((n) => (n.name ? `${n.clientNumber} ${n.name}` : String(n.clientNumber))).join('; ');
  return { error: `${named.length > NAMED_MAX ? `more than ${NAMED_MAX}` : named.length} clients have or hold this name: type the client number (${shown}${named.length > NAMED_MAX ? '; …' : ''})` };
}
