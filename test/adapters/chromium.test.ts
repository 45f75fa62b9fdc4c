/**
 * The Chromium PDF adapter against the real Chromium: lazy launch, a bounded pool reused,
 * a timeout per render, recovery after the browser is killed, replacement every N renders
 * and by age,
 * one process by default (or Chromium's own process model when asked), caches dropped every
 * N renders, and nothing left running after close().
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { test } from 'node:test';
import { chromiumTempDir, createChromiumPdf, profileFolderPrefix, removeProfile, removeStaleProfiles } from '../../src/adapters/pdf/chromium.ts';
import { chromiumPath } from '../support/browser.ts';
import { alive, chromiumProcessTypes, chromiumWithProfile, pdfText } from './pdf.ts';

const doc = (text: string) => `<!doctype html><html><head><meta charset="utf-8"><style>body{font-family:sans-serif}</style></head><body><h1>${text}</h1></body></html>`;

async function waitGone(pids: number[], profile: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (pids.every((p) => !alive(p)) && chromiumWithProfile(profile).length === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('creating the renderer launches nothing; renders share one browser and a bounded pool', async () => {
  const pdf = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 2 });
  try {
    assert.equal(pdf.pid(), undefined, 'nothing launched before the first render');
    assert.equal(pdf.stats.launches, 0);
    const outs = await Promise.all(Array.from({ length: 6 }, (_, i) => pdf.render(doc(`Invoice 12.8.${i + 1}`))));
    for (const [i, bytes] of outs.entries()) {
      assert.equal(Buffer.from(bytes.subarray(0, 5)).toString(), '%PDF-');
      assert.match(pdfText(bytes), new RegExp(`Invoice 12\\.8\\.${i + 1}`));
    }
    assert.equal(pdf.stats.launches, 1, 'one browser for every render');
    assert.equal(pdf.stats.renders, 6);
  } finally {
    await pdf.close();
  }
});

test('every purgeEvery renders the browser is told to drop its caches, and renders go on working', async () => {
  const pdf = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 2, purgeEvery: 3 });
  try {
    for (let i = 0; i < 9; i++) assert.match(pdfText(await pdf.render(doc(`Bill ${i}`))), new RegExp(`Bill ${i}`));
    // The signal is not waited for by the render that sends it.
    for (let i = 0; i < 50 && pdf.stats.purges < 3; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(pdf.stats.purges, 3, 'after renders 3, 6 and 9');
    assert.equal(pdf.stats.launches, 1);
  } finally {
    await pdf.close();
  }
  assert.throws(() => createChromiumPdf({ executablePath: chromiumPath(), purgeEvery: 0 }), /purgeEvery must be a positive integer/);
});

test('a render that takes too long fails with a timeout and the next one works', async () => {
  // Nothing is fetched (a URL that never answers cannot hold a render), so: a document that takes seconds to lay out.
  const pdf = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 1 });
  try {
    await assert.rejects(pdf.render(heavy(20_000), { timeoutMs: 300 }), /timed out|Timeout/i);
    const ok = await pdf.render(doc('After the timeout'));
    assert.match(pdfText(ok), /After the timeout/);
    // One process renders every tab, so the browser that timed out is replaced.
    assert.equal(pdf.stats.launches, 2, 'a fresh browser after the timeout');
  } finally {
    await pdf.close();
  }
});

test('after the browser is killed the next render launches a new one and works', async () => {
  const pdf = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 2 });
  try {
    await pdf.render(doc('Before the crash'));
    const pid = pdf.pid();
    assert.ok(pid, 'a browser is running');
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
    const after = await pdf.render(doc('After the crash'));
    assert.match(pdfText(after), /After the crash/);
    assert.equal(pdf.stats.launches, 2, 'a second browser was launched');
    assert.notEqual(pdf.pid(), pid);
  } finally {
    await pdf.close();
  }
});

for (const deep of [false, true]) {
  test(`a browser killed leaves nothing behind: its singleton socket folder is ${deep ? 'removed with its profile folder by the link to it (a profile root too deep for the socket path)' : 'inside its profile folder, removed with it'}`, async () => {
    // /tmp/lp-XXXXXX/lexbill-pdf-…: the socket path fits; 40 more characters and it does not.
    const root = mkdtempSync(join(tmpdir(), deep ? `lp-${'d'.repeat(40)}-` : 'lp-'));
    const pdf = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 1, profileRoot: root });
    const sockets: string[] = [];
    try {
      try {
        for (const text of ['First browser', 'Second browser']) {
          await pdf.render(doc(text));
          const profile = pdf.profileDir()!;
          assert.equal(chromiumTempDir(profile) === null, deep);
          // Chromium links SingletonSocket in the profile to the socket in its temp folder.
          const socket = readlinkSync(join(profile, 'SingletonSocket'));
          if (deep) assert.ok(!socket.startsWith(root), `the socket is in the system's temp folder: ${socket}`);
          else assert.ok(socket.startsWith(join(profile, 'tmp') + '/'), `the socket is in the profile's own temp folder: ${socket}`);
          assert.ok(existsSync(socket));
          sockets.push(socket);
          const pid = pdf.pid()!;
          process.kill(pid, 'SIGKILL');
          for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
        }
        assert.match(pdfText(await pdf.render(doc('Third browser'))), /Third browser/);
        assert.equal(pdf.stats.launches, 3);
        sockets.push(readlinkSync(join(pdf.profileDir()!, 'SingletonSocket')));
      } finally {
        await pdf.close();
      }
      for (const socket of sockets) assert.equal(existsSync(dirname(socket)), false, `${dirname(socket)} is gone`);
      assert.deepEqual(readdirSync(root), [], 'nothing is left under the profile root');
    } finally {
      // Only this test's sockets, by the paths its browsers linked to.
      for (const socket of sockets) rmSync(dirname(socket), { recursive: true, force: true });
      rmSync(root, { recursive: true, force: true });
    }
  });
}

test('removeProfile removes the socket folder the profile links to only when Chromium or Chrome named it, a relative link read from the profile', () => {
  const root = mkdtempSync(join(tmpdir(), 'lp-remove-'));
  try {
    const profile = (name: string, target: string) => {
      const dir = join(root, name);
      mkdirSync(dir);
      symlinkSync(target, join(dir, 'SingletonSocket'));
      return dir;
    };
    const socketFolder = (name: string) => { const dir = join(root, name); mkdirSync(dir); writeFileSync(join(dir, 'SingletonSocket'), ''); return dir; };
    const cases: [string, boolean][] = [
      ['org.chromium.Chromium.AbC123', true],
      ['com.google.Chrome.xYz789', true],
      ['com.google.Chrome.for.Testing.q1w2e3', true],
      ['important-data', false],
      ['org.chromium.Chromium.toolong1', false],
    ];
    for (const [i, [name, removed]] of cases.entries()) {
      const folder = socketFolder(name);
      const p = profile(`lexbill-pdf-case${i}`, join(folder, 'SingletonSocket'));
      removeProfile(p);
      assert.equal(existsSync(p), false, `${name}: the profile is removed`);
      assert.equal(existsSync(folder), !removed, `${name}: ${removed ? 'removed' : 'left alone'}`);
    }
    // A relative link: the folder beside the profile, wherever this process runs.
    const rel = socketFolder('org.chromium.Chromium.ReL456');
    const p = profile('lexbill-pdf-relative', '../org.chromium.Chromium.ReL456/SingletonSocket');
    removeProfile(p);
    assert.equal(existsSync(rel), false);
    // No link at all (a browser that never got that far): the profile alone.
    const bare = join(root, 'lexbill-pdf-bare');
    mkdirSync(bare);
    removeProfile(bare);
    assert.equal(existsSync(bare), false);
    assert.deepEqual(readdirSync(root).sort(), ['important-data', 'org.chromium.Chromium.toolong1']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('chromiumTempDir: inside the profile folder while the socket path fits in 107 bytes', () => {
  assert.equal(chromiumTempDir('/tmp/lexbill-pdf-0123abcd-4242-AbCdEf'), '/tmp/lexbill-pdf-0123abcd-4242-AbCdEf/tmp');
  const fits = '/' + 'a'.repeat(107 - '/tmp/org.chromium.Chromium.XXXXXX/SingletonSocket'.length - 1);
  assert.equal(chromiumTempDir(fits), `${fits}/tmp`);
  assert.equal(chromiumTempDir(fits + 'a'), null, 'one byte more: the system temp folder');
  assert.equal(chromiumTempDir('/é'.padEnd(57, 'é')), null, 'bytes, not characters');
});

test('the browser is replaced every N renders and the old one exits', async () => {
  const pdf = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 1, restartEvery: 3 });
  const seen: { pid: number; profile: string }[] = [];
  try {
    for (let i = 0; i < 7; i++) {
      await pdf.render(doc(`Render ${i}`));
      const pid = pdf.pid();
      if (pid && !seen.some((s) => s.pid === pid)) seen.push({ pid, profile: pdf.profileDir()! });
    }
    assert.equal(pdf.stats.launches, 3, '7 renders at 3 per browser take 3 browsers');
    const retired = seen.filter((s) => s.pid !== pdf.pid());
    assert.ok(retired.length >= 1);
    for (const r of retired) {
      await waitGone([r.pid], r.profile);
      assert.equal(alive(r.pid), false, `retired browser ${r.pid} exited`);
    }
  } finally {
    await pdf.close();
  }
});

test('a browser older than maxAgeMs is retired before the next render (a single-process Chromium stops answering about three minutes after launch)', async () => {
  const pdf = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 1, maxAgeMs: 1_000 });
  try {
    await pdf.render(doc('First'));
    const first = { pid: pdf.pid()!, profile: pdf.profileDir()! };
    await pdf.render(doc('Second, still young'));
    assert.equal(pdf.pid(), first.pid, 'a young browser is reused');
    await new Promise((r) => setTimeout(r, 1_200));
    assert.ok(pdfText(await pdf.render(doc('Third'))).includes('Third'));
    assert.notEqual(pdf.pid(), first.pid, 'the old browser was replaced');
    assert.deepEqual([pdf.stats.launches, pdf.stats.retiredByAge, pdf.stats.crashes], [2, 1, 0]);
    await waitGone([first.pid], first.profile);
    assert.equal(alive(first.pid), false, 'the retired browser exited');
  } finally {
    await pdf.close();
  }
  assert.throws(() => createChromiumPdf({ executablePath: chromiumPath(), maxAgeMs: 10 }), /maxAgeMs must be at least 1000/);
});

test('close() leaves no Chromium process running', async () => {
  const pdf = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 3 });
  await Promise.all([pdf.render(doc('a')), pdf.render(doc('b')), pdf.render(doc('c'))]);
  const pid = pdf.pid()!;
  const profile = pdf.profileDir()!;
  const family = chromiumWithProfile(profile);
  assert.ok(family.length >= 2, `the browser runs several processes (${family.length})`);
  await pdf.close();
  await waitGone([pid, ...family], profile);
  assert.deepEqual(chromiumWithProfile(profile), [], 'no process of that browser is left');
  for (const p of family) assert.equal(alive(p), false, `process ${p} exited`);
  await assert.rejects(pdf.render(doc('x')), /closed/);
});

test('Chromium runs as one process by default (no renderer or print-compositor process), and as several when asked', async () => {
  for (const singleProcess of [undefined, false]) {
    const pdf = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 2, ...(singleProcess === undefined ? {} : { singleProcess }) });
    try {
      const outs = await Promise.all([pdf.render(doc('Invoice 9.1.1')), pdf.render(doc('Invoice 9.1.2'))]);
      assert.match(pdfText(outs[0]!), /Invoice 9\.1\.1/);
      assert.match(pdfText(outs[1]!), /Invoice 9\.1\.2/);
      const types = chromiumProcessTypes(pdf.profileDir()!);
      if (singleProcess === undefined) {
        assert.ok(!types.includes('renderer') && !types.includes('utility'), `single process: ${types.join(' ')}`);
      } else {
        assert.ok(types.includes('renderer'), `renderer processes when multi-process: ${types.join(' ')}`);
      }
    } finally {
      await pdf.close();
    }
  }
});

/** A document that takes a while to lay out and print (rows of a long bill): a render in flight for a second or more. */
function heavy(rows: number, title = 'Heavy'): string {
  return `<!doctype html><html><head><meta charset="utf-8"></head><body><h1>${title}</h1><table>${
    Array.from({ length: rows }, (_, i) => `<tr><td>2026-02-10</td><td>Row ${i} of the work done on the matter</td><td>$${i}.00</td></tr>`).join('')}</table></body></html>`;
}

test('a browser killed mid-render: that render is retried at once on a new browser, not failed as a timeout after waiting it out', async () => {
  const pdf = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 2 });
  try {
    await pdf.render(doc('Warm up'));
    const pid = pdf.pid()!;
    const started = performance.now();
    const rendering = pdf.render(heavy(5_000, 'Killed mid-render'), { timeoutMs: 20_000 });
    await new Promise((r) => setTimeout(r, 300));
    process.kill(pid, 'SIGKILL');
    const bytes = await rendering;
    assert.match(pdfText(bytes), /Killed mid-render/);
    assert.ok(performance.now() - started < 10_000, `served by the new browser without waiting for the timeout (${Math.round(performance.now() - started)} ms)`);
    assert.deepEqual([pdf.stats.launches, pdf.stats.crashes], [2, 1]);
    assert.notEqual(pdf.pid(), pid);
  } finally {
    await pdf.close();
  }
});

test('close() with a render in flight: the render fails at once and no Chromium is left', async () => {
  const pdf = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 1 });
  try {
    await pdf.render(doc('Warm up'));
    const pid = pdf.pid()!;
    const profile = pdf.profileDir()!;
    const rendering = pdf.render(heavy(40_000), { timeoutMs: 25_000 });
    rendering.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    const started = performance.now();
    await pdf.close();
    await assert.rejects(rendering, /disconnected|closed/i);
    assert.ok(performance.now() - started < 10_000, `the render did not wait out its timeout (${Math.round(performance.now() - started)} ms)`);
    await waitGone([pid], profile);
    assert.equal(alive(pid), false);
    assert.deepEqual(chromiumWithProfile(profile), []);
  } finally {
    await pdf.close();
  }
});

test('the timeout covers taking a tab: a browser that stops answering fails the render in time, and the next render gets a new browser', async () => {
  const pdf = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 2 });
  let stopped: number | undefined;
  try {
    await pdf.render(doc('Warm up'));
    stopped = pdf.pid()!;
    process.kill(stopped, 'SIGSTOP');
    const started = performance.now();
    // The pool holds one idle tab: the second render has to open one in the stopped browser.
    const results = await Promise.allSettled([pdf.render(doc('One'), { timeoutMs: 1_500 }), pdf.render(doc('Two'), { timeoutMs: 1_500 })]);
    const took = performance.now() - started;
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
    for (const r of results) assert.match(String((r as PromiseRejectedResult).reason), /timed out/);
    assert.ok(took < 10_000, `both renders failed within their timeout, not the protocol's (${Math.round(took)} ms)`);
    assert.match(pdfText(await pdf.render(doc('After the hang'))), /After the hang/);
    assert.notEqual(pdf.pid(), stopped);
  } finally {
    // close() kills the stopped browser (its polite close cannot answer); this one is ours, by PID.
    await pdf.close();
    if (stopped && alive(stopped)) process.kill(stopped, 'SIGKILL');
  }
});

/** Start chromium-child.ts; resolves with its browser's PID and profile once it has rendered. */
async function startChild(profileRoot?: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'chromium-child.ts')], {
    stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...(profileRoot ? { CHILD_PROFILE_ROOT: profileRoot } : {}) },
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  for (let i = 0; i < 300 && !out.includes('\n'); i++) await new Promise((r) => setTimeout(r, 100));
  const browser = JSON.parse(out.split('\n')[0]!) as { pid: number; profile: string };
  return { child, browser, exited, output: () => out };
}

test('a Node process that dies abruptly (SIGKILL) leaves no Chromium running; the next renderer removes the profile folder it could not', async () => {
  const root = mkdtempSync(join(tmpdir(), 'lexbill-profiles-'));
  const { child, browser, exited } = await startChild(root);
  try {
    assert.ok(alive(browser.pid));
    child.kill('SIGKILL');
    await exited;
    await waitGone([browser.pid], browser.profile);
    assert.equal(alive(browser.pid), false, 'the browser exited with its parent');
    assert.deepEqual(chromiumWithProfile(browser.profile), []);
    assert.equal(dirname(browser.profile), root);
    assert.ok(existsSync(browser.profile), 'a killed process leaves its profile folder');
    const pdf = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 1, profileRoot: root });
    try {
      assert.match(pdfText(await pdf.render(doc('after the crash'))), /after the crash/);
      assert.equal(pdf.stats.staleProfilesRemoved, 1);
      assert.equal(existsSync(browser.profile), false, 'the gone process\'s profile folder is removed');
      assert.deepEqual(readdirSync(root), [basename(pdf.profileDir()!)], 'only the running browser\'s folder is there');
    } finally {
      await pdf.close();
    }
    assert.deepEqual(readdirSync(root), [], 'close() removes its own');
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    // Only this test's browser, by the PIDs its profile names.
    for (const pid of chromiumWithProfile(browser.profile)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    rmSync(root, { recursive: true, force: true });
  }
});

test('removeStaleProfiles removes only this host\'s profile folders of processes that are gone, and only directories', async () => {
  const root = mkdtempSync(join(tmpdir(), 'lexbill-profiles-'));
  try {
    // A PID that was a process a moment ago and is gone now.
    const gone = spawn('true');
    await new Promise((r) => gone.once('exit', r));
    const goneName = `${profileFolderPrefix(gone.pid!)}aB3dE9`;
    const otherHost = goneName.replace(/^lexbill-pdf-[0-9a-f]{8}-/, (p) => (p === 'lexbill-pdf-00000000-' ? 'lexbill-pdf-11111111-' : 'lexbill-pdf-00000000-'));
    const kept = [
      `${profileFolderPrefix(process.pid)}aB3dE9`, // this process
      `${profileFolderPrefix(1)}aB3dE9`, // alive
      otherHost, // the same PID on another host (or container): not ours to judge
      `lexbill-pdf-${gone.pid}-aB3dE9`, // no host: an older name
      'lexbill-pdf-aB3dE9', // no PID: an older name
      `${goneName}x`, // not mkdtemp's
      'someone-else',
    ];
    for (const n of [goneName, ...kept]) { mkdirSync(join(root, n)); writeFileSync(join(root, n, 'Local State'), '{}'); }
    // A file named as a gone process's folder is not a folder: left.
    const fileNamed = `${profileFolderPrefix(gone.pid!)}fILe00`;
    writeFileSync(join(root, fileNamed), 'x');
    kept.push(fileNamed);
    assert.equal(removeStaleProfiles(root), 1);
    assert.deepEqual(readdirSync(root).sort(), [...kept].sort());
    assert.equal(removeStaleProfiles(join(root, 'no-such-folder')), 0);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('SIGINT is the app\'s to handle: its shutdown runs and closes Chromium (the process is not exited under it)', async () => {
  const { child, browser, exited, output } = await startChild();
  try {
    child.kill('SIGINT');
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running'), 15_000))]);
    assert.equal(code, 0, `the app's handler exited the process (${code}): ${output()}`);
    assert.match(output(), /closed by the app/);
    await waitGone([browser.pid], browser.profile);
    assert.equal(alive(browser.pid), false);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const pid of chromiumWithProfile(browser.profile)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  }
});
