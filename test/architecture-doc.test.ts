/**
 * docs/ARCHITECTURE.md's table of events is checked against the code: every event a module
 * publishes (the keys of its events.ts map) is in the table once, in a row naming its
 * module as publisher, and each row names exactly the handlers the running app subscribes
 * to its events (read off the real bus). A new event, a new subscriber, or a row that
 * drifts from the code fails here.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { startApp } from './support/app.ts';
import { freshDatabase } from './support/db.ts';

const root = join(import.meta.dirname, '..');
const MODULE_NAME = /^(matters|billing|ledger|trust|ebilling)$/;
/** A handler or event name: module, dot, snake_case. */
const QUALIFIED = /^(matters|billing|ledger|trust|ebilling)\.[a-z][a-z_]*$/;

export interface EventRow { line: number; events: string[]; publisher: string; handlers: string[] }

/** The rows of the table under "### Events": one block of table lines, header and rule skipped. */
export function eventRows(markdown: string): EventRow[] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => l.trim() === '### Events');
  assert.ok(start >= 0, 'docs/ARCHITECTURE.md has no "### Events" heading');
  let i = start + 1;
  while (i < lines.length && lines[i]!.trim() === '') i++;
  const rows: EventRow[] = [];
  for (let n = 0; i < lines.length && lines[i]!.startsWith('|'); i++, n++) {
    if (n < 2) continue; // the header and its rule
    const cells = lines[i]!.split('|').slice(1, -1);
    assert.equal(cells.length, 4, `line ${i + 1}: a row of ${cells.length} cells, not 4 (event, published by, payload, subscribers)`);
    const ticked = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    rows.push({
      line: i + 1,
      events: ticked(cells[0]!),
      publisher: cells[1]!.trim(),
      handlers: ticked(cells[3]!).filter((t) => QUALIFIED.test(t)),
    });
  }
  return rows;
}

/** The event names a module's events.ts maps to payloads ('billing.bill_drafted': ...). */
export function publishedEvents(source: string): string[] {
  return [...source.matchAll(/^\s*'([a-z]+\.[a-z_]+)'\s*:/gm)].map((m) => m[1]!);
}

test('eventRows reads one contiguous table: a blank line ends it, so rows after one are not read', () => {
  const doc = [
    '### Events', '',
    '| event | published by | payload | subscribers |', '| --- | --- | --- | --- |',
    '| `a.one`, `a.two` | a | x | billing (`billing.copy_x`), `billing_table` and `ledger.post` |',
    '| `b.three` | b | y | none |', '',
    '| `c.lost` | c | z | none |',
  ].join('\n');
  assert.deepEqual(eventRows(doc), [
    { line: 5, events: ['a.one', 'a.two'], publisher: 'a', handlers: ['billing.copy_x', 'ledger.post'] },
    { line: 6, events: ['b.three'], publisher: 'b', handlers: [] },
  ]);
  assert.throws(() => eventRows('### Events\n\n| h | h |\n| - | - |\n| `a.b` | a |\n'), /a row of 2 cells/);
  assert.deepEqual(publishedEvents("export type X = {\n  /** c */\n  'billing.bill_drafted': D;\n  'billing.x_y': E;\n};"), ['billing.bill_drafted', 'billing.x_y']);
});

test('docs/ARCHITECTURE.md lists every published event once, by its publisher, with exactly the handlers the app subscribes', async () => {
  const rows = eventRows(readFileSync(join(root, 'docs/ARCHITECTURE.md'), 'utf8'));
  const modules = readdirSync(join(root, 'src/modules')).filter((m) => MODULE_NAME.test(m));
  assert.ok(modules.length >= 5, `modules found: ${modules.join(', ')}`);
  const published = new Map<string, string>();
  for (const m of modules) {
    for (const e of publishedEvents(readFileSync(join(root, 'src/modules', m, 'events.ts'), 'utf8'))) {
      assert.ok(e.startsWith(`${m}.`), `${m}/events.ts publishes ${e}, named for another module`);
      published.set(e, m);
    }
  }
  assert.ok(published.size >= 20, `only ${published.size} events found in src/modules/*/events.ts`);

  const documented = new Map<string, EventRow>();
  for (const r of rows) {
    assert.ok(r.events.length > 0, `line ${r.line}: a row naming no event`);
    for (const e of r.events) {
      assert.ok(!documented.has(e), `${e} is in the table twice (lines ${documented.get(e)?.line} and ${r.line})`);
      documented.set(e, r);
    }
  }
  assert.deepEqual([...documented.keys()].filter((e) => !published.has(e)).sort(), [], 'events in the table that no events.ts publishes');
  assert.deepEqual([...published.keys()].filter((e) => !documented.has(e)).sort(), [], 'published events missing from the table');
  for (const [e, r] of documented) assert.equal(r.publisher, published.get(e), `line ${r.line}: ${e} is published by ${published.get(e)}`);

  // The running app's subscriptions, as its modules register them.
  const db = await freshDatabase('sqlite');
  const t = await startApp(db);
  try {
    const subscribed = new Map<string, Set<string>>();
    for (const s of t.runtime.bus.subscriptions()) subscribed.set(s.type, (subscribed.get(s.type) ?? new Set()).add(s.name));
    assert.ok(subscribed.size >= 10, `only ${subscribed.size} subscribed event types`);
    for (const type of subscribed.keys()) assert.ok(published.has(type), `a handler subscribes to ${type}, which no events.ts publishes`);
    for (const [e, r] of documented) {
      assert.deepEqual([...new Set(r.handlers)].sort(), [...(subscribed.get(e) ?? [])].sort(), `line ${r.line}: the handlers of ${e}`);
    }
  } finally {
    await t.close();
    await db.close();
  }
});
