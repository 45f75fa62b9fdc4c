/**
 * Race child processes: start `n` copies of a racer script (run with tsx from the project
 * root), wait until every one prints `ready` (connected, prepared), then tell them all `go`
 * at once. Each resolves with the JSON object it prints; a racer exiting non-zero rejects.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export function raceProcesses<T>(script: string, n: number, args: readonly string[]): Promise<T>[] {
  const children = Array.from({ length: n }, () => spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: join(import.meta.dirname, '..', '..'), stdio: ['pipe', 'pipe', 'inherit'],
  }));
  let ready = 0;
  return children.map((child) => new Promise<T>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const line of lines) {
        if (line === 'ready') { if (++ready === n) for (const c of children) c.stdin.write('go\n'); }
        else if (line.startsWith('{')) resolve(JSON.parse(line) as T);
      }
    });
    child.on('exit', (code) => { if (code !== 0) reject(new Error(`racer exited with ${code}`)); });
    child.on('error', reject);
  }));
}
