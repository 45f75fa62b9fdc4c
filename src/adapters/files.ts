/**
 * File writing shared by the folder adapters (print folder, file-drop mail): a file appears
 * under its final name whole or not at all, and at most once however often it is retried.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
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
  let recorded: string | null = null;
  try { recorded = await readFile(opts.record, 'utf8'); } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (recorded !== null && !recorded.startsWith(INTENT)) return false;
  if (recorded !== null) {
    const tmp = join(dirname(opts.path), basename(recorded.slice(INTENT.length).trim()));
    let renamed = false;
    if (await exists(tmp)) { await rename(tmp, opts.path); renamed = true; }
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
