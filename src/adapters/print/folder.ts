/**
 * Printing by dropping PDF files into a folder a print server watches (one file per copy).
 * Files are named from the job key, written to a hidden temp file in the same folder (synced
 * to disk) and renamed into place, so a watcher never sees half a file.
 *
 * A print server takes the files it prints away, so a copy's file being gone does not mean it
 * was never written: each copy is recorded in a hidden journal folder (`.lexbill-printed`,
 * beside the copies; watchers ignore dot names), the record saying which temp file is about to
 * be renamed into place before the rename (`handOverOnce`), and a copy whose file or record
 * exists is not written again. A retry after a crash anywhere in between (even once the print
 * server took the copy away) prints no copy twice and skips none. The journal is kept (a small
 * file per copy); hidden temp files a crash left behind are swept (sweepOrphanTemps).
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { handOverOnce, periodicSweep, wasHandedOver } from '../files.ts';
import { join, resolve } from 'node:path';
import type { PrintOutput } from '../../shared/ports.ts';

export const MAX_COPIES = 20;
/** The hidden folder (inside the print folder) recording the copies written. */
export const PRINT_JOURNAL = '.lexbill-printed';

function safeStem(name: string): string {
  const s = name.normalize('NFKD').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(0, 60);
  return s || 'document';
}

export function printPathsFor(dir: string, job: { jobKey: string; name: string; copies: number }): string[] {
  const digest = createHash('sha256').update(job.jobKey).digest('hex').slice(0, 12);
  const stem = safeStem(job.name);
  return Array.from({ length: job.copies }, (_, i) => join(dir, `${stem}-${digest}-copy${i + 1}of${job.copies}.pdf`));
}

/** The journal record of a job's copy number `copy` (1-based). */
export function printRecordFor(dir: string, jobKey: string, copy: number): string {
  return join(dir, PRINT_JOURNAL, `${createHash('sha256').update(jobKey).digest('hex').slice(0, 32)}-copy${copy}`);
}



/** The most earlier folders a job's copies are looked for in (a limit on everything). */
const MAX_EARLIER_FOLDERS = 50;

export function createFolderPrint(options: { dir: string }): PrintOutput {
  // Hidden temp files a crash left (older than a day, named by no intent) are removed now and then.
  const sweep = periodicSweep(options.dir, join(options.dir, PRINT_JOURNAL));
  const target = resolve(options.dir);
  return {
    target,
    async print(job, opts = {}) {
      sweep();
      if (!job.jobKey) throw new Error('jobKey is required');
      if (!Number.isInteger(job.copies) || job.copies < 1 || job.copies > MAX_COPIES) throw new Error(`copies must be 1..${MAX_COPIES}, got ${job.copies}`);
      const earlier = [...new Set((opts.alsoDoneIn ?? []).map((d) => resolve(d)))].filter((d) => d !== target);
      if (earlier.length > MAX_EARLIER_FOLDERS) throw new Error(`at most ${MAX_EARLIER_FOLDERS} earlier print folders are looked in, got ${earlier.length}`);
      await mkdir(join(options.dir, PRINT_JOURNAL), { recursive: true });
      const paths = printPathsFor(options.dir, job);
      const earlierPaths = earlier.map((dir) => ({ dir, paths: printPathsFor(dir, job) }));
      const out: string[] = [];
      for (const [i, path] of paths.entries()) {
        // A copy an earlier attempt handed over in a folder used before (PRINT_DIR changed since) is not printed again.
        let before: string | null = null;
        for (const e of earlierPaths) {
          if (await wasHandedOver({ path: e.paths[i]!, record: printRecordFor(e.dir, job.jobKey, i + 1) })) { before = e.paths[i]!; break; }
        }
        if (before) { out.push(before); continue; }
        await handOverOnce({ path, record: printRecordFor(options.dir, job.jobKey, i + 1), bytes: job.pdf, done: `${path}\n` });
        out.push(path);
      }
      return out;
    },
  };
}
