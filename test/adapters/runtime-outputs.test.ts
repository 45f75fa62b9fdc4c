/**
 * main.ts builds the outputs from the environment without starting anything, hands them to
 * the modules, and Runtime.close() stops Chromium.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import type { ChromiumPdfRenderer } from '../../src/adapters/pdf/chromium.ts';
import { buildRuntime } from '../../src/main.ts';
import { freshDatabase } from '../support/db.ts';
import { alive, chromiumWithProfile, pdfText } from './pdf.ts';

test('the runtime\'s outputs come from the environment, start nothing until used, and close() leaves no Chromium', async () => {
  const db = await freshDatabase('sqlite');
  const rt = await buildRuntime(db, { logger: pino({ level: 'silent' }) });
  const pdf = rt.outputs.pdf as ChromiumPdfRenderer;
  assert.equal(pdf.pid(), undefined, 'building the runtime launched no browser');
  assert.equal(rt.outputs.mailer.kind, process.env.MAIL_TRANSPORT === 'smtp' ? 'smtp' : 'file-drop');
  assert.deepEqual(rt.outputs.describe().map((d) => d.kind), ['pdf', 'mail', 'print']);
  const bytes = await rt.outputs.pdf.render('<!doctype html><p>Runtime render</p>');
  assert.match(pdfText(bytes), /Runtime render/);
  const pid = pdf.pid()!;
  const profile = pdf.profileDir()!;
  assert.ok(alive(pid));
  await rt.close();
  for (let i = 0; i < 50 && (alive(pid) || chromiumWithProfile(profile).length > 0); i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(alive(pid), false, 'the browser exited');
  assert.deepEqual(chromiumWithProfile(profile), []);
});
