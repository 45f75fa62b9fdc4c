/**
 * Printing by dropping PDF files into a folder a print server watches (one file per copy).
 * Files are named from the job key, written to a hidden temp file in the same folder and
 * renamed into place (a watcher never sees half a file); a job whose files exist is not
 * written again.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PrintOutput } from '../../shared/ports.ts';

export const MAX_COPIES = 20;

function safeStem(name: string): string {
  const s = name.normalize('NFKD').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(0, 60);
  return s || 'document';
}

export function printPathsFor(dir: string, job: { jobKey: string; name: string; copies: number }): string[] {
  const digest = createHash('sha256').update(job.jobKey).digest('hex').slice(0, 12);
  const stem = safeStem(job.name);
  return Array.from({ length: job.copies }, (_, i) => join(dir, `${stem}-${digest}-copy${i + 1}of${job.copies}.pdf`));
}

async function exists(path: string): Promise<boolean> {
  try { await stat(path); return true; } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

export function createFolderPrint(options: { dir: string }): PrintOutput {
  return {
    async print(job) {
      if (!job.jobKey) throw new Error('jobKey is required');
      if (!Number.isInteger(job.copies) || job.copies < 1 || job.copies > MAX_COPIES) throw new Error(`copies must be 1..${MAX_COPIES}, got ${job.copies}`);
      await mkdir(options.dir, { recursive: true });
      const paths = printPathsFor(options.dir, job);
      for (const path of paths) {
        if (await exists(path)) continue;
        const tmp = join(options.dir, `.print-${randomBytes(6).toString('hex')}.tmp`);
        try {
          await writeFile(tmp, job.pdf, { flag: 'wx' });
          await rename(tmp, path);
        } catch (err) {
          await unlink(tmp).catch(() => undefined);
          throw err;
        }
      }
      return paths;
    },
  };
}
