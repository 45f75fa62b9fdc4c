/**
 * PDF rendering with headless Chromium (puppeteer-core, the system's Chromium).
 *
 * - Lazy: nothing is launched until the first render.
 * - One browser process at a time, reused; a bounded pool of tabs (pages) is kept open and
 *   handed out to at most `poolSize` concurrent renders; further renders wait in a FIFO.
 * - Every render has a timeout; a render that times out has its tab thrown away.
 * - The browser is replaced after it crashes/disconnects (the next render launches a new one)
 *   and after `restartEvery` documents (the old one is closed when its in-flight renders end),
 *   which bounds memory growth.
 * - Documents marked `combinable` that wait for a tab are printed together and the PDF cut
 *   into one per document (combine.ts).
 * - close() closes every browser and SIGKILLs the process if a polite close does not finish;
 *   the browser also exits by itself when this process dies (DevTools over a pipe), and signals
 *   to this process are the app's to handle (its shutdown calls close()).
 * - A process killed outright cannot remove its browsers' profile folders: a renderer's first
 *   launch removes those of processes that are gone, of this host and PID namespace
 *   (removeStaleProfiles).
 */
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, opendirSync, readlinkSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import puppeteer from 'puppeteer-core';
import type { Browser, CDPSession, Page } from 'puppeteer-core';
import { numberPages } from './page-numbers.ts';
import type { PdfRenderOptions, PdfRenderer } from '../../shared/ports.ts';
import { createGate } from '../../shared/gate.ts';
import { COMBINE_MAX_DOCS, createCombiner } from './combine.ts';

export const CHROMIUM_PDF_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
  '--disable-background-networking', '--disable-component-update', '--no-first-run',
] as const;

export interface ChromiumPdfOptions {
  executablePath: string;
  /** Concurrent renders (= open tabs). 1..16; default defaultPdfPoolSize(singleProcess). */
  poolSize?: number;
  /** Default per-render timeout. */
  timeoutMs?: number;
  /** Replace the browser after this many documents printed (a combined render counts each of its documents). */
  restartEvery?: number;
  /** Give up launching after this long. */
  launchTimeoutMs?: number;
  /**
   * Every this many documents printed (a combined render counts each: the memory a browser
   * gathers grows with the pages it prints), tell the browser its memory is critically low, so
   * it drops its caches (default 50). A browser rendering bills otherwise keeps growing: 300 one-page
   * documents took it from 300 MB to 530 MB (proportional set size); with the signal every 50
   * it stayed at 335 MB, at no measurable cost per render.
   */
  purgeEvery?: number;
  /**
   * Tagged (accessible) PDF: Chromium builds the structure tree, about 12% slower per bill
   * here. Off unless asked (PDF_TAGGED=1).
   */
  tagged?: boolean;
  /**
   * Documents marked `combinable` that wait for a tab are printed together, up to this many in
   * one render, and the PDF cut into one per document (combine.ts; default 10, 1 prints every
   * document alone). Tagged PDFs are always printed alone (a structure tree is not cut).
   */
  combineMax?: number;
  /** Told when documents printed together could not be (they were printed one by one), with why: for the log. */
  onCombineFailure?: (err: unknown, documents: number) => void;
  /**
   * Run Chromium as one process (--single-process; default true). Chromium otherwise starts a
   * print-compositor process for every PDF, which cost more CPU than the rendering itself on
   * the 2-core machine (a one-page bill: 43 ms of work in one process against 98 ms across
   * processes). The documents are the firm's own, with scripts off and nothing fetched. A
   * render that times out retires the whole browser (one stuck document would hold every
   * tab of a single process). PDF_SINGLE_PROCESS=0 turns it off.
   */
  singleProcess?: boolean;
  /**
   * A browser is retired (a new one launched for the next render, the old closed once its
   * renders finish) when it is this old: Debian's Chromium in --single-process mode stops
   * answering about three minutes after it starts (renders every 20 s: fine until 161 s, stuck
   * at 181 s), so each browser is kept under that. Default 120 s; a launch costs well under a
   * second.
   */
  maxAgeMs?: number;
  /** Where browsers' profile folders go (default the system's temp folder); the first launch sweeps it (removeStaleProfiles). */
  profileRoot?: string;
}

/**
 * A browser's profile folder is named for where PIDs mean something and for the Node process
 * that launched it: `lexbill-pdf-<tag>-<pid>-<6 random>`, the tag 8 hex digits of the SHA-256
 * of the host name and the PID namespace (containers sharing a temp folder, even under one
 * host name, each have their own PIDs).
 */
const PROFILE_PREFIX = 'lexbill-pdf-';
const PROFILE_NAME = /^lexbill-pdf-([0-9a-f]{8})-(\d+)-[0-9A-Za-z]{6}$/;
let tagOnce: string | undefined;
function hostTag(): string {
  if (tagOnce !== undefined) return tagOnce;
  let where = '';
  try { where = hostname(); } catch { /* none: the namespace alone */ }
  try { where += `|${readlinkSync('/proc/self/ns/pid')}`; } catch { /* no /proc: the host name alone */ }
  tagOnce = createHash('sha256').update(where).digest('hex').slice(0, 8);
  return tagOnce;
}
/** The start of the profile folder names of process `pid` on this host (mkdtemp adds the 6 random characters). */
export const profileFolderPrefix = (pid: number): string => `${PROFILE_PREFIX}${hostTag()}-${pid}-`;
/**
 * Chromium's temp folder, inside the profile folder when the socket path fits: Chromium makes
 * its process-singleton socket in `$TMPDIR/org.chromium.Chromium.XXXXXX/SingletonSocket` and
 * removes it only when it exits cleanly, so every browser killed (a crash, a render that hung,
 * SIGKILL) left one such folder in the system's temp folder for good. Inside the profile folder
 * it goes with the profile (close(), or removeStaleProfiles). A Unix socket's path holds at most
 * 107 bytes; under a profile root too deep for that, Chromium keeps the system's temp folder
 * and removeProfile removes the socket folder by the profile's link to it.
 */
const SOCKET_PATH_MAX_BYTES = 107;
const SOCKET_SUFFIX = '/tmp/org.chromium.Chromium.XXXXXX/SingletonSocket';
export function chromiumTempDir(profileDir: string): string | null {
  return Buffer.byteLength(profileDir + SOCKET_SUFFIX) <= SOCKET_PATH_MAX_BYTES ? join(profileDir, 'tmp') : null;
}

/** How Chromium and Chrome name the folder of their singleton socket (mkdtemp's 6 characters). */
const SOCKET_FOLDER = /^(?:org\.chromium\.Chromium|com\.google\.Chrome(?:\.for\.Testing)?)\.[0-9A-Za-z]{6}$/;

/**
 * Remove a browser's profile folder, and the socket folder its SingletonSocket link points to
 * when that is elsewhere (a profile root too deep for chromiumTempDir): only a folder named as
 * Chromium names them and of this user (any failure there is ignored: housekeeping).
 */
export function removeProfile(profileDir: string): void {
  try {
    // A relative link is relative to the folder holding it (the profile), not to this process's.
    const folder = dirname(resolve(profileDir, readlinkSync(join(profileDir, 'SingletonSocket'))));
    const uid = process.getuid?.();
    const st = lstatSync(folder);
    if (SOCKET_FOLDER.test(basename(folder)) && !folder.startsWith(profileDir + '/') && st.isDirectory() && (uid === undefined || st.uid === uid)) {
      rmSync(folder, { recursive: true, force: true });
    }
  } catch {
    // No link (the browser never got that far, or its folder is inside the profile), or gone already.
  }
  rmSync(profileDir, { recursive: true, force: true });
}

/** Folder entries looked at by one sweep, at most (a temp folder can hold anything). */
const SWEEP_MAX_ENTRIES = 100_000;

/** False only when no process has this PID (ESRCH); any other answer (EPERM: another user's) counts as alive. */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Remove the profile folders of Node processes that are gone (of this host and PID
 * namespace). A process that exits normally removes its browsers' folders (close()); one
 * killed (SIGKILL, out of memory, a power cut) cannot, and each is about 2 MB. Left alone: a folder of a process that is alive
 * (this one, another Lexbill here, or a process that took a gone one's PID), of another host or
 * PID namespace, not a directory of this user's, or not named as a profile folder. Returns how
 * many were removed; housekeeping only, it never throws.
 */
export function removeStaleProfiles(root: string): number {
  const uid = process.getuid?.();
  let removed = 0;
  let dir: ReturnType<typeof opendirSync>;
  try {
    dir = opendirSync(root);
  } catch {
    return 0;
  }
  try {
    const host = hostTag();
    for (let seen = 0; seen < SWEEP_MAX_ENTRIES; seen++) {
      const entry = dir.readSync();
      if (entry === null) break;
      const m = PROFILE_NAME.exec(entry.name);
      if (!m || m[1] !== host) continue;
      const pid = Number(m[2]);
      if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || processAlive(pid)) continue;
      const path = join(root, entry.name);
      try {
        const st = lstatSync(path);
        if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) continue;
        removeProfile(path);
        removed++;
      } catch {
        // Gone meanwhile, or not ours to remove: left as it is.
      }
    }
  } catch {
    // The folder could not be read on (a network folder gone): what was removed stays removed.
  } finally {
    try { dir.closeSync(); } catch { /* already closed */ }
  }
  return removed;
}

/** Paper sizes in inches (what Chromium's printToPDF takes). */
const PAPER_INCHES = { A4: { width: 8.27, height: 11.7 }, Letter: { width: 8.5, height: 11 } } as const;

/** An open tab with its own DevTools session and its main frame's id. */
interface Tab {
  readonly page: Page;
  readonly session: CDPSession;
  readonly frameId: string;
}

interface Generation {
  readonly id: number;
  readonly browser: Browser;
  readonly profileDir: string;
  readonly idle: Tab[];
  /** performance.now() at launch. */
  readonly launchedAt: number;
  /** Documents printed (a combined render counts each): its age, for restartEvery and purgeEvery. */
  renders: number;
  inFlight: number;
  retiring: boolean;
  dead: boolean;
  /** Rejects when the browser disconnects (crashed, killed or closed): a render in flight fails at once. */
  readonly lost: Promise<never>;
  closed?: Promise<void>;
}

export interface ChromiumPdfRenderer extends PdfRenderer {
  /** The PID of the current browser process, if one is running (for tests and diagnostics). */
  pid(): number | undefined;
  /** The current browser's profile directory (it names every process of that browser). */
  profileDir(): string | undefined;
  /** Renders done since creation. */
  readonly stats: { renders: number; launches: number; crashes: number; purges: number; retiredByAge: number; staleProfilesRemoved: number; combined: number; combinedDocuments: number; combineFellBack: number };
}

/**
 * Tabs when none are asked for: one when Chromium runs as one process (its one renderer
 * thread prints every tab's document in turn, so a second tab prints nothing more, and with
 * one tab more final bills wait and are printed together: 1,000 bills on Postgres on the
 * 2-core machine took 24.0-26.6 s with one tab and 24 bills at once, 25.9-27.2 s with two
 * tabs and 12), two with Chromium's own processes.
 */
export function defaultPdfPoolSize(singleProcess: boolean): number {
  return singleProcess ? 1 : 2;
}

export function createChromiumPdf(options: ChromiumPdfOptions): ChromiumPdfRenderer {
  const defaultTimeoutMs = options.timeoutMs ?? 30_000;
  const restartEvery = options.restartEvery ?? 500;
  const purgeEvery = options.purgeEvery ?? 50;
  const launchTimeoutMs = options.launchTimeoutMs ?? 30_000;
  const tagged = options.tagged ?? false;
  const singleProcess = options.singleProcess ?? true;
  const poolSize = options.poolSize ?? defaultPdfPoolSize(singleProcess);
  const combineMax = options.combineMax ?? 10;
  if (!Number.isInteger(combineMax) || combineMax < 1 || combineMax > COMBINE_MAX_DOCS) throw new Error(`combineMax must be 1..${COMBINE_MAX_DOCS}, got ${combineMax}`);
  const maxAgeMs = options.maxAgeMs ?? 120_000;
  const profileRoot = options.profileRoot ?? tmpdir();
  if (!Number.isInteger(maxAgeMs) || maxAgeMs < 1_000) throw new Error(`maxAgeMs must be at least 1000, got ${maxAgeMs}`);
  if (!Number.isInteger(poolSize) || poolSize < 1 || poolSize > 16) throw new Error(`poolSize must be 1..16, got ${poolSize}`);
  if (!Number.isInteger(restartEvery) || restartEvery < 1) throw new Error(`restartEvery must be a positive integer, got ${restartEvery}`);
  if (!Number.isInteger(purgeEvery) || purgeEvery < 1) throw new Error(`purgeEvery must be a positive integer, got ${purgeEvery}`);

  const stats = {
    renders: 0, launches: 0, crashes: 0, purges: 0, retiredByAge: 0,
    /** Profile folders of gone processes removed before the first launch (removeStaleProfiles). */
    staleProfilesRemoved: 0,
    // The combiner's own counts (read when asked, so a render that failed is counted too).
    get combined() { return combiner?.stats.combined ?? 0; },
    get combinedDocuments() { return combiner?.stats.documents ?? 0; },
    get combineFellBack() { return combiner?.stats.fellBack ?? 0; },
  };
  let current: Generation | null = null;
  let launching: Promise<Generation> | null = null;
  let generationSeq = 0;
  let closing = false;
  const all = new Set<Generation>();

  // Render slots: at most poolSize renders at once, the others waiting in arrival order.
  const slots = createGate(poolSize);

  let swept = false;

  async function launch(): Promise<Generation> {
    if (!swept) {
      swept = true;
      stats.staleProfilesRemoved = removeStaleProfiles(profileRoot);
    }
    const profileDir = mkdtempSync(join(profileRoot, profileFolderPrefix(process.pid)));
    let browser: Browser;
    try {
      const temp = chromiumTempDir(profileDir);
      if (temp) mkdirSync(temp);
      browser = await puppeteer.launch({
        executablePath: options.executablePath,
        headless: true,
        args: [...CHROMIUM_PDF_FLAGS, ...(singleProcess ? ['--single-process'] : []), `--user-data-dir=${profileDir}`],
        timeout: launchTimeoutMs,
        ...(temp ? { env: { ...process.env, TMPDIR: temp } } : {}),
        protocolTimeout: Math.max(defaultTimeoutMs * 2, 60_000),
        // DevTools over a pipe: Chromium exits when the pipe closes, so a Node process that dies
        // however abruptly (killed, out of memory) leaves no browser running.
        pipe: true,
        // Stopping Chromium is the app's: Runtime.close() closes it after the app's own shutdown.
        // (Puppeteer's SIGINT handler would kill it and exit the process at once, mid-shutdown.)
        handleSIGINT: false,
        handleSIGTERM: false,
        handleSIGHUP: false,
      });
    } catch (err) {
      removeProfile(profileDir);
      throw err;
    }
    stats.launches++;
    let markLost!: (err: Error) => void;
    const lost = new Promise<never>((_, reject) => { markLost = reject; });
    lost.catch(() => undefined);
    const gen: Generation = { id: ++generationSeq, browser, profileDir, idle: [], launchedAt: performance.now(), renders: 0, inFlight: 0, retiring: false, dead: false, lost };
    all.add(gen);
    browser.on('disconnected', () => {
      if (!gen.closed) stats.crashes++;
      gen.dead = true;
      if (current === gen) current = null;
      // A render waiting on this browser (for its document's load event, say) would otherwise
      // wait out its whole timeout and fail as a timeout, never retried on a fresh browser.
      markLost(new Error('PDF render failed: the browser has disconnected'));
      void shutdown(gen);
    });
    return gen;
  }

  async function generation(): Promise<Generation> {
    if (closing) throw new Error('PDF renderer is closed');
    if (current && !current.dead && !current.retiring && performance.now() - current.launchedAt >= maxAgeMs) {
      // Old enough to retire: closed once its renders in flight finish; the next render launches anew.
      current.retiring = true;
      stats.retiredByAge++;
      if (current.inFlight === 0) void shutdown(current);
    }
    if (current && !current.dead && !current.retiring) return current;
    if (!launching) {
      launching = launch().then((g) => { current = g; return g; }).finally(() => { launching = null; });
    }
    return launching;
  }

  /** Close a generation's browser for good (once); kill the process if close hangs. */
  function shutdown(gen: Generation): Promise<void> {
    if (gen.closed) return gen.closed;
    gen.dead = true;
    gen.closed = (async () => {
      const proc = gen.browser.process();
      try {
        await Promise.race([
          gen.browser.close(),
          new Promise((_, reject) => setTimeout(() => reject(new Error('close timeout')), 5_000).unref()),
        ]);
      } catch {
        // fall through to the kill below
      }
      if (proc && proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await new Promise<void>((resolve) => {
          if (proc.exitCode !== null || proc.signalCode !== null) resolve();
          else { proc.once('exit', () => resolve()); setTimeout(resolve, 5_000).unref(); }
        });
      }
      removeProfile(gen.profileDir);
      all.delete(gen);
    })();
    return gen.closed;
  }

  /**
   * A tab for documents: no scripts run in it, and nothing is fetched. The documents are
   * self-contained; a URL that reached one anyway (an image, a style sheet, a frame, a font
   * named in a client's text) must not have the server's browser reach the network (an internal
   * address, a tracking pixel) or put what it found on a bill: every request the document makes
   * is failed before it leaves (Fetch intercepts them all, frames and workers too).
   */
  async function newTab(gen: Generation): Promise<Tab> {
    const page = await gen.browser.newPage();
    try {
      await page.setJavaScriptEnabled(false);
      const session = await page.createCDPSession();
      session.on('Fetch.requestPaused', (e) => {
        session.send('Fetch.failRequest', { requestId: e.requestId, errorReason: 'BlockedByClient' }).catch(() => undefined);
      });
      await session.send('Fetch.enable', { patterns: [{ urlPattern: '*' }] });
      const tree = await session.send('Page.getFrameTree');
      return { page, session, frameId: tree.frameTree.frame.id };
    } catch (err) {
      await page.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * One document to PDF, straight over the DevTools protocol: replace the tab's document,
   * wait for its load event (everything it refers to is in), print it, the PDF returned in
   * the reply. (Puppeteer's setContent + pdf() take the same two steps with several more
   * round trips and about 2 ms more of Node's CPU per render.)
   */
  async function print(tab: Tab, html: string, opts: PdfRenderOptions): Promise<Uint8Array> {
    const loaded = new Promise<void>((resolve) => tab.page.once('load', () => resolve()));
    await tab.session.send('Page.setDocumentContent', { frameId: tab.frameId, html });
    await loaded;
    const paper = PAPER_INCHES[opts.format ?? 'A4'];
    const { data } = await tab.session.send('Page.printToPDF', {
      landscape: opts.landscape ?? false, printBackground: true, preferCSSPageSize: true, paperWidth: paper.width, paperHeight: paper.height,
      marginTop: 0, marginBottom: 0, marginLeft: 0, marginRight: 0, generateTaggedPDF: tagged, generateDocumentOutline: false, transferMode: 'ReturnAsBase64',
    });
    return Buffer.from(data, 'base64');
  }

  /** `documents`: how many documents the render prints (combined ones count each), for restartEvery and purgeEvery. */
  async function renderOnce(html: string, opts: PdfRenderOptions, timeoutMs: number, documents: number): Promise<Uint8Array> {
    const gen = await generation();
    gen.inFlight++;
    const rendersBefore = gen.renders;
    gen.renders += documents;
    if (gen.renders >= restartEvery) gen.retiring = true;
    let tab: Tab | undefined;
    let pageOk = false;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    try {
      // Taking a tab is part of the render: a browser that stops answering hangs at newPage too.
      const work = (async () => {
        const t = gen.idle.pop() ?? await newTab(gen);
        // A tab that arrives after the render gave up is nobody's: close it.
        if (settled) { t.page.close().catch(() => undefined); throw new Error('PDF render abandoned'); }
        tab = t;
        return print(t, html, opts);
      })();
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`PDF render timed out after ${timeoutMs} ms`)), timeoutMs);
      });
      work.catch(() => undefined);
      let bytes: Awaited<typeof work>;
      try {
        bytes = await Promise.race([work, timeout, gen.lost]);
      } catch (err) {
        // One process renders every tab: a document still being worked on holds the others too.
        // A browser that failed like a crashed one is not handed the retry either.
        if (singleProcess || isCrash(err)) gen.retiring = true;
        throw err;
      }
      pageOk = true;
      stats.renders++;
      if (Math.floor((rendersBefore + documents) / purgeEvery) > Math.floor(rendersBefore / purgeEvery)) {
        // A hint, not part of the render: not waited for, and a refusal changes nothing.
        tab!.session.send('Memory.simulatePressureNotification', { level: 'critical' }).then(() => { stats.purges++; }, () => undefined);
      }
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } finally {
      settled = true;
      if (timer) clearTimeout(timer);
      gen.inFlight--;
      const t = tab as Tab | undefined;
      if (t) {
        if (pageOk && !gen.dead && !gen.retiring && gen.idle.length < poolSize) gen.idle.push(t);
        else t.page.close().catch(() => undefined);
      }
      if ((gen.retiring || gen.dead) && gen.inFlight === 0) void shutdown(gen);
    }
  }

  async function renderAlone(html: string, opts: PdfRenderOptions, timeoutMs: number, documents = 1): Promise<Uint8Array> {
    const releaseSlot = await slots.acquire();
    let pdf: Uint8Array;
    try {
      try {
        pdf = await renderOnce(html, opts, timeoutMs, documents);
      } catch (err) {
        // The browser died under us: retry once on a fresh one. (Not documents printed together:
        // they are printed one by one next, so a document that crashes the browser does it once more, not twice.)
        if (closing || !isCrash(err) || documents > 1) throw err;
        pdf = await renderOnce(html, opts, timeoutMs, documents);
      }
    } finally {
      releaseSlot();
    }
    // Page numbers of one document (documents printed together are numbered as they are cut apart: splitCombined). Not
    // in a tagged PDF: drawn text outside its structure tree would fail the accessibility checks it is made for (review 59 F4).
    return documents === 1 && opts.pageLabel !== undefined && !tagged ? numberPages(pdf, opts.pageLabel) : pdf;
  }

  // As many combined renders at once as there are tabs: documents arriving meanwhile wait and go together.
  const combiner = combineMax > 1 && !tagged
    ? createCombiner((html, opts, documents) => renderAlone(html, opts, opts.timeoutMs ?? defaultTimeoutMs, documents), {
      slots: poolSize, maxDocs: combineMax, defaultTimeoutMs, ...(options.onCombineFailure ? { onFallback: options.onCombineFailure } : {}),
    })
    : null;

  function isCrash(err: unknown): boolean {
    const msg = err instanceof Error ? err.message : String(err);
    return /Target closed|Session closed|Connection closed|Protocol error|browser has disconnected|detached|crashed/i.test(msg);
  }

  return {
    stats,
    pid() { return current?.browser.process()?.pid ?? undefined; },
    profileDir() { return current?.profileDir; },
    async render(html, opts = {}) {
      const timeoutMs = opts.timeoutMs ?? defaultTimeoutMs;
      if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new Error(`timeoutMs must be a positive integer, got ${timeoutMs}`);
      const { combinable, ...own } = opts;
      if (combinable && combiner) return combiner.render(html, own);
      return renderAlone(html, own, timeoutMs);
    },
    async close() {
      closing = true;
      if (launching) await launching.catch(() => undefined);
      current = null;
      await Promise.all([...all].map((g) => shutdown(g)));
    },
  };
}
