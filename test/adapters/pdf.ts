/** pdftotext (poppler) on bytes: the text of a PDF, for assertions. */
import { execFileSync } from 'node:child_process';

export function pdfText(bytes: Uint8Array): string {
  return execFileSync('pdftotext', ['-layout', '-', '-'], { input: Buffer.from(bytes), maxBuffer: 20 * 1024 * 1024 }).toString('utf8');
}

/** True when the process with this PID is alive (and not a zombie). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = execFileSync('ps', ['-o', 'stat=', '-p', String(pid)]).toString().trim();
    return stat !== '' && !stat.startsWith('Z');
  } catch {
    return false;
  }
}

/** The Chromium processes whose command line names this profile directory: PID and kind (its --type, or "browser"). */
function chromiumProcesses(profileFragment: string): { pid: number; type: string }[] {
  let out: string;
  try {
    out = execFileSync('ps', ['-eo', 'pid=,args=']).toString();
  } catch {
    return [];
  }
  return out.split('\n').filter((l) => l.includes(profileFragment) && /chrom/i.test(l))
    .map((l) => ({ pid: Number(l.trim().split(/\s+/)[0]), type: /--type=([a-z-]+)/.exec(l)?.[1] ?? 'browser' }));
}

/** PIDs of Chromium processes whose command line names this profile directory. */
export function chromiumWithProfile(profileFragment: string): number[] {
  return chromiumProcesses(profileFragment).map((p) => p.pid);
}

/** The kinds of those processes (renderer, utility, zygote, browser...). */
export function chromiumProcessTypes(profileFragment: string): string[] {
  return chromiumProcesses(profileFragment).map((p) => p.type);
}
