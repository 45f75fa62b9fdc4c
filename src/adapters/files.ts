/**
 * File writing shared by the folder adapters (print folder, file-drop mail): a file appears
 * under its final name whole or not at all, and at most once however often it is retried.
 */
import { randomBytes } from 'node:crypto';
import { open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Whether a path exists (other errors than "not there" are thrown). */
export async function exists(path: string): Promise<boolean> {
  try { await stat(path); return true; } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Write bytes to `tmp`, synced; a failure leaves no `tmp`. */
async function writeSynced(tmp: string, bytes: Uint8Array): Promise<void> {
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/** Write bytes to `path` whole or not at all: `tmp` (a hidden name in the same folder) written, synced, then renamed. */
export async function writeAtomically(path: string, tmp: string, bytes: Uint8Array): Promise<void> {
  await writeSynced(tmp, bytes);
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

const INTENT = 'intent ';

/**
 * What handOverOnce's journal says of `path`: no record, a complete one, or an intent naming
 * the temp file (beside `path`) that was about to be renamed into place.
 */
export async function handOverRecord(opts: { path: string; record: string }): Promise<{ state: 'none' } | { state: 'done' } | { state: 'intent'; tmp: string }> {
  let recorded: string;
  try { recorded = await readFile(opts.record, 'utf8'); } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return { state: 'none' };
  }
  if (!recorded.startsWith(INTENT)) return { state: 'done' };
  return { state: 'intent', tmp: join(dirname(opts.path), basename(recorded.slice(INTENT.length).trim())) };
}

/**
 * Hand `bytes` over as `path` (in a folder a server empties: a print server, a mail pickup
 * service) once, with `record` (in a hidden journal folder) saying it was. The file is written
 * whole to a hidden temp name beside `path`, the record first says which temp file is about to
 * be renamed into place ("intent"), then the rename, then the record is completed with `done`.
 * A retry after a crash anywhere in between knows what happened: no record, or one that is
 * complete, is plain; an intent whose temp file is still there was never renamed (it is renamed
 * now), one whose temp file is gone was renamed, so the file was handed over (and may have been
 * taken away since): it is not written again. A file under its final name without a record (an
 * older version, or a crash before the record) is not written again either.
 * Returns whether this call handed the file over.
 */
export async function handOverOnce(opts: { path: string; record: string; bytes: Uint8Array; done: string }): Promise<boolean> {
  const journal = dirname(opts.record);
  const writeRecord = (text: string) => writeAtomically(opts.record, join(journal, `.${randomBytes(6).toString('hex')}.tmp`), new TextEncoder().encode(text));
  const recorded = await handOverRecord(opts);
  if (recorded.state === 'done') return false;
  if (recorded.state === 'intent') {
    let renamed = false;
    if (await exists(recorded.tmp)) { await rename(recorded.tmp, opts.path); renamed = true; }
    await writeRecord(opts.done);
    return renamed;
  }
  if (await exists(opts.path)) {
    await writeRecord(opts.done);
    return false;
  }
  const tmp = join(dirname(opts.path), `.${basename(opts.path)}.${randomBytes(6).toString('hex')}.tmp`);
  await writeSynced(tmp, opts.bytes);
  try {
    await writeRecord(`${INTENT}${basename(tmp)}\n`);
  } catch (err) {
    // No intent recorded: nothing was handed over, and a retry starts afresh.
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await rename(tmp, opts.path);
  await writeRecord(opts.done);
  return true;
}

/**
 * Whether `path` was handed over by handOverOnce (read only: nothing is finished or written). A
 * complete record, an intent whose temp file is gone (it was renamed into place), or the file
 * under its final name: yes. No record and no file, or an intent whose temp file is still there
 * (never renamed): no.
 */
export async function wasHandedOver(opts: { path: string; record: string }): Promise<boolean> {
  const recorded = await handOverRecord(opts);
  if (recorded.state === 'done') return true;
  if (recorded.state === 'intent') return !await exists(recorded.tmp);
  return exists(opts.path);
}

/** How old a hidden temp file must be before a sweep removes it: a write takes milliseconds, a crash leaves it for good. */
export const ORPHAN_TEMP_AGE_MS = 24 * 60 * 60 * 1000;
/** How often a folder adapter sweeps (at its first hand-over, then at most this often). */
export const SWEEP_EVERY_MS = 60 * 60 * 1000;
/** At most this many directory entries looked at per folder per sweep (a limit on everything). */
const SWEEP_MAX_ENTRIES = 100_000;

const isHiddenTemp = (name: string): boolean => name.startsWith('.') && name.endsWith('.tmp');

async function oldTemps(dir: string, before: number): Promise<string[]> {
  const out: string[] = [];
  let seen = 0;
  let names: string[];
  try { names = await readdir(dir); } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw err;
  }
  for (const name of names) {
    if (++seen > SWEEP_MAX_ENTRIES) break;
    if (!isHiddenTemp(name)) continue;
    const st = await stat(join(dir, name)).catch(() => null);
    if (st && st.isFile() && st.mtimeMs < before) out.push(name);
  }
  return out;
}

/**
 * Remove the hidden temp files a crash left behind in a hand-over folder (`dir`) and its journal
 * (`journal`): those older than `olderThanMs`, except a temp file an intent record names (a
 * retry renames it into place; see handOverOnce). Returns the paths removed.
 */
export async function sweepOrphanTemps(dir: string, journal: string, opts: { olderThanMs?: number; nowMs?: number } = {}): Promise<string[]> {
  const before = (opts.nowMs ?? Date.now()) - (opts.olderThanMs ?? ORPHAN_TEMP_AGE_MS);
  const removed: string[] = [];
  const inFolder = await oldTemps(dir, before);
  if (inFolder.length > 0) {
    // The temp files intents name: read only when there are old temp files to weigh.
    const named = new Set<string>();
    let seen = 0;
    for (const name of await readdir(journal).catch(() => [] as string[])) {
      if (++seen > SWEEP_MAX_ENTRIES) break;
      if (name.startsWith('.')) continue;
      const text = await readFile(join(journal, name), 'utf8').catch(() => '');
      if (text.startsWith(INTENT)) named.add(basename(text.slice(INTENT.length).trim()));
    }
    // Over the limit, some intents were not read: remove nothing rather than a file one names.
    if (seen <= SWEEP_MAX_ENTRIES) {
      for (const name of inFolder) if (!named.has(name)) removed.push(join(dir, name));
    }
  }
  // A record's temp file is never named by an intent: an old one is an orphan.
  for (const name of await oldTemps(journal, before)) removed.push(join(journal, name));
  for (const path of removed) await unlink(path).catch(() => undefined);
  return removed;
}

/** A sweep run at the first call and then at most every SWEEP_EVERY_MS, never two at once; its failure never fails a hand-over. */
export function periodicSweep(dir: string, journal: string, everyMs = SWEEP_EVERY_MS): () => void {
  let lastMs = -Infinity;
  let running = false;
  return () => {
    const nowMs = Date.now();
    if (running || nowMs - lastMs < everyMs) return;
    lastMs = nowMs;
    running = true;
    sweepOrphanTemps(dir, journal).catch(() => undefined).finally(() => { running = false; });
  };
}
