/**
 * File writing shared by the folder adapters (print folder, file-drop mail): a file appears
 * under its final name whole or not at all.
 */
import { open, rename, stat, unlink } from 'node:fs/promises';

/** Whether a path exists (other errors than "not there" are thrown). */
export async function exists(path: string): Promise<boolean> {
  try { await stat(path); return true; } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Write bytes to `path` whole or not at all: `tmp` (a hidden name in the same folder) written, synced, then renamed. */
export async function writeAtomically(path: string, tmp: string, bytes: Uint8Array): Promise<void> {
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
