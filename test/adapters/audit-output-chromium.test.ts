/**
 * Audit (output adapters): Chromium shut down at awkward moments leaves no process running
 * (checked by the PIDs of this test process's own children), and renders bounded by the pool.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { createChromiumPdf } from '../../src/adapters/pdf/chromium.ts';
import { chromiumPath } from '../support/browser.ts';
import { alive, pdfText } from './pdf.ts';

const doc = (text: string) => `<!doctype html><html><head><meta charset="utf-8"></head><body><h1>${text}</h1></body></html>`;

/** Chromium processes descending from this test process (only ones it started). */
function ourChromium(): number[] {
  const rows = execFileSync('ps', ['-eo', 'pid=,ppid=,args=']).toString().split('\n').filter(Boolean)
    .map((l) => { const m = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l)!; return { pid: Number(m[1]), ppid: Number(m[2]), args: m[3]! }; });
  const ours = new Set<number>([process.pid]);
  for (let changed = true; changed;) {
    changed = false;
    for (const r of rows) if (!ours.has(r.pid) && ours.has(r.ppid)) { ours.add(r.pid); changed = true; }
  }
  return rows.filter((r) => r.pid !== process.pid && ours.has(r.pid) && /chrom/i.test(r.args)).map((r) => r.pid);
}

async function noneLeft(): Promise<number[]> {
  for (let i = 0; i < 60; i++) {
    const left = ourChromium().filter(alive);
    if (left.length === 0) return [];
    await new Promise((r) => setTimeout(r, 100));
  }
  return ourChromium().filter(alive);
}

test('close() while the browser is still launching: the render fails, and no Chromium is left running', async () => {
  const pdf = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 2 });
  const renders = [pdf.render(doc('a')), pdf.render(doc('b')), pdf.render(doc('c'))].map((p) => p.then(() => 'ok', (e: Error) => e.message));
  await new Promise((r) => setTimeout(r, 20));
  await pdf.close();
  const outcomes = await Promise.all(renders);
  assert.deepEqual(await noneLeft(), [], `outcomes: ${outcomes.join(' | ')}`);
  await assert.rejects(pdf.render(doc('late')), /closed/);
  assert.deepEqual(ourChromium(), [], 'a render after close launches nothing');
});

test('close() twice, and close() with renders queued for a tab: nothing left, queued renders fail', async () => {
  const pdf = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 1 });
  assert.match(pdfText(await pdf.render(doc('warm'))), /warm/);
  const queued = Array.from({ length: 4 }, (_, i) => pdf.render(doc(`q${i}`)).then(() => 'ok', (e: Error) => e.message));
  await Promise.all([pdf.close(), pdf.close()]);
  const outcomes = await Promise.all(queued);
  assert.ok(outcomes.slice(1).every((o) => o !== 'ok'), `renders queued behind a closed renderer fail: ${outcomes.join(' | ')}`);
  assert.deepEqual(await noneLeft(), []);
});

test('renders beyond the pool wait their turn on one browser and every one completes with its own document', async () => {
  const pdf = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 2, timeoutMs: 20_000 });
  try {
    const outs = await Promise.all(Array.from({ length: 10 }, (_, i) => pdf.render(doc(`Bill ${i}`))));
    outs.forEach((b, i) => assert.match(pdfText(b), new RegExp(`Bill ${i}\\b`)));
    assert.equal(pdf.stats.launches, 1);
  } finally {
    await pdf.close();
  }
  assert.deepEqual(await noneLeft(), []);
});
