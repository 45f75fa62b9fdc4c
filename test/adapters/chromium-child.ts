/**
 * A child process for chromium.test.ts: renders once (so a browser runs), prints the browser's
 * PID and profile as one JSON line, and on SIGINT runs the app's kind of shutdown (close the
 * renderer, then exit 0), printing what it did.
 */
import { createChromiumPdf } from '../../src/adapters/pdf/chromium.ts';
import { chromiumPath } from '../support/browser.ts';

const pdf = createChromiumPdf({ executablePath: chromiumPath(), poolSize: 1, ...(process.env.CHILD_PROFILE_ROOT ? { profileRoot: process.env.CHILD_PROFILE_ROOT } : {}) });
process.once('SIGINT', () => {
  void pdf.close().then(() => {
    process.stdout.write('closed by the app\n');
    process.exit(0);
  });
});
await pdf.render('<!doctype html><p>child</p>');
process.stdout.write(`${JSON.stringify({ pid: pdf.pid(), profile: pdf.profileDir() })}\n`);
setInterval(() => undefined, 1_000);
