/**
 * A client typed rather than chosen from a list: the pure rules (how names compare, what a
 * lookup's result says). The queries over the modules' client copies are in clients.ts.
 */
export interface ClientChoice { id: string; clientNumber: number; name: string }

/**
 * A client's name as typed names are compared with it: lower case, accents and other marks
 * dropped, compatibility forms as their plain letters, so "muller" and "MÜLLER" find "Müller
 * GmbH" and "emile" finds "Émile Zola SARL" on both databases (SQLite's lower() folds ASCII
 * only; Postgres's depends on the server's locale). Letters that are not a letter with a mark
 * stay as they are ("ø", "æ", "ß"). The copies' name_fold holds it (their migrations fold the
 * names copied before them the same way).
 */
export function foldName(name: string): string {
  return name.normalize('NFKD').replace(/\p{M}+/gu, '').toLowerCase();
}

/** What a typed client names: one client's id, or why it names none. */
export type ClientLookup = { id: string } | { error: string };

/** The most clients a shared name is looked up among (the refusal lists their numbers). */
export const NAMED_MAX = 10;

/**
 * The typed text as one client, from the clients it names (clientsNamed, at most 11): none,
 * or a name several clients share, is refused in words.
 */
export function clientLookup(named: readonly { id: string; clientNumber: number }[]): ClientLookup {
  if (named.length === 1) return { id: named[0]!.id };
  if (named.length === 0) return { error: 'no client with this number or name' };
  const shown = named.slice(0, NAMED_MAX).map((n) => n.clientNumber).join(', ');
  return { error: `${named.length > NAMED_MAX ? `more than ${NAMED_MAX}` : named.length} clients have or hold this name: type the client number (${shown}${named.length > NAMED_MAX ? ', …' : ''})` };
}
