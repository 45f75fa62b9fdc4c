/**
 * A client typed rather than chosen from a list (a firm may have thousands): each module that
 * keeps a copy of the clients (billing_client, ledger_client: id, client_number, name and
 * name_fold) looks the typed text up in its own copy with these: queries over the table named,
 * no module's internals. The pure rules are in client-names.ts.
 */
import { assert } from './assert.ts';
import type { Executor } from './db.ts';
import { selectRaw } from './sql.ts';
import { clientLookup, foldName, NAMED_MAX } from './client-names.ts';
import type { ClientChoice } from './client-names.ts';

export type { ClientChoice } from './client-names.ts';

/** The client copies these read (each with id, client_number, name, name_fold). */
export type ClientTable = 'billing_client' | 'ledger_client';

type Row = { id: string; client_number: unknown; name: string };
const choice = (r: Row): ClientChoice => ({ id: r.id, clientNumber: Number(r.client_number), name: r.name });
/** `text` lower-cased for a LIKE pattern (against lower() of a column), with %, _ and backslash taken literally (escape backslash). */
export const literalLike = (text: string): string => text.toLowerCase().replace(/[%_\\]/g, (ch) => `\\${ch}`);
/** The same against name_fold: folded as it is (foldName). */
const foldedLike = (text: string): string => literalLike(foldName(text));

/**
 * The clients offered as the clerk types: the client whose number it is first, then those
 * whose number starts with it, then those whose name holds it (case and accents aside), at
 * most `limit`, each group by name. Leading zeros are not part of a number ("007" is 7).
 */
export async function clientsMatching(ex: Executor, table: ClientTable, text: string, limit: number): Promise<ClientChoice[]> {
  assert(Number.isSafeInteger(limit) && limit >= 1 && limit <= 100, 'clientsMatching: a limit of 1 to 100');
  const t = text.trim().slice(0, 200);
  if (t === '') return [];
  const digits = /^\d{1,15}$/.test(t) ? String(Number(t)) : null;
  // Text that folds to nothing (marks alone) holds no name: it would match every client.
  if (digits === null && foldName(t).trim() === '') return [];
  const rows = await selectRaw<Row>(ex,
    `select id, client_number, name from ${table}
     where cast(client_number as text) like ? escape '\\' or name_fold like ? escape '\\'
     order by case when client_number = ? then 0 when cast(client_number as text) like ? escape '\\' then 1 else 2 end, name, client_number limit ${limit}`,
    [`${literalLike(digits ?? t)}%`, `%${foldedLike(t)}%`, digits === null ? -1 : Number(digits), `${literalLike(digits ?? t)}%`]);
  return rows.map(choice);
}

/**
 * The clients a typed text names: the client with that number (the text all digits), else
 * every client with that name, case and accents aside (of names differing only by those, the
 * one typed exactly as written), else the client the text
 * names as pages show it ("12 Kestrel Holdings": that number, with that name), else, with
 * `partial`, every client whose name holds it (not for digits). More than one: the clerk types
 * the number. At most 11.
 */
export async function clientsNamed(ex: Executor, table: ClientTable, text: string, opts: { partial?: boolean } = {}): Promise<ClientChoice[]> {
  const t = text.trim();
  if (t === '' || t.length > 200) return [];
  const byNumber = async (n: number) => (await selectRaw<Row>(ex, `select id, client_number, name from ${table} where client_number = ?`, [n])).map(choice);
  if (/^\d{1,15}$/.test(t)) {
    const found = await byNumber(Number(t));
    if (found.length > 0) return found;
  }
  const folded = foldName(t);
  if (folded.trim() === '') return [];
  const named = (await selectRaw<Row>(ex,
    `select id, client_number, name from ${table} where name_fold = ? order by client_number limit ${NAMED_MAX + 1}`, [folded])).map(choice);
  // Names that differ only by case or accents ("Müller GmbH", "Muller GmbH"): the one typed
  // exactly as it is written is that one; typed otherwise, both are offered (a receipt posts
  // without showing the client found, so "MULLER GMBH" is not guessed to be either).
  const exact = named.filter((cl) => cl.name.trim() === t);
  if (exact.length > 0) return exact;
  if (named.length > 0) return named;
  const shown = /^(\d{1,15})\s+(.+)$/.exec(t);
  if (shown) {
    const found = (await byNumber(Number(shown[1]))).filter((cl) => foldName(cl.name) === foldName(shown[2]!.trim()));
    if (found.length > 0) return found;
  }
  // Part of a name (what the clerk typed before the suggestions came): the clients whose name
  // holds it. Only where the client found is shown before anything is done with it, and never
  // digits: a number no client has is not part of a name ("125" is not "Route 125 Logistics").
  if (!opts.partial || /^\d+$/.test(t)) return [];
  return (await selectRaw<Row>(ex,
    `select id, client_number, name from ${table} where name_fold like ? escape '\\' order by client_number limit ${NAMED_MAX + 1}`, [`%${foldedLike(t)}%`])).map(choice);
}

/** A client by id (a form sent back, an old link naming the id). */
export async function clientById(ex: Executor, table: ClientTable, id: string): Promise<ClientChoice | null> {
  const r = (await selectRaw<Row>(ex, `select id, client_number, name from ${table} where id = ?`, [id]))[0];
  return r ? choice(r) : null;
}

/**
 * A client typed where nothing shows the client found before it is acted on (a receipt posted,
 * a scheduled bill run): its id (a link, an older form), else clientsNamed without part of a
 * name, then clientLookup. `named`: the clients the text names (several: the error lists them).
 */
export async function clientTyped(ex: Executor, table: ClientTable, text: string): Promise<{ client: ClientChoice | null; named: ClientChoice[]; error?: string }> {
  const t = text.trim();
  if (t === '') return { client: null, named: [] };
  const byId = await clientById(ex, table, t);
  if (byId) return { client: byId, named: [byId] };
  const named = await clientsNamed(ex, table, t);
  const found = clientLookup(named);
  return 'id' in found ? { client: named.find((cl) => cl.id === found.id)!, named } : { client: null, named, error: found.error };
}
