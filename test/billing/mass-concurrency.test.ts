/**
 * "Concurrent Bill all from two processes bills each item once" (issue 5), on both
 * databases: two processes, each with its own connection, each create their own run over
 * every eligible matter of the demo firm and work it through at the same moment. Every
 * matter ends with one draft, every item is on one bill at most, the two runs' drafted
 * matters are disjoint and cover the list, and each matter the loser did not bill is
 * skipped with the reason (it already has a draft). Then matters hears of every draft.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prng } from '../../src/cli/demo.ts';
import { createMassBilling } from '../../src/modules/billing/mass-commands.ts';
import { seedDemoFirm } from '../../src/modules/matters/index.ts';
import { raceProcesses } from '../support/race.ts';
import { eachDialect, freshDatabase } from '../support/db.ts';
import { ctx, setup } from './support.ts';

type RacerRun = { ok: true; runId: string; status: string; matterCount: number; drafted: number; skipped: number; bills: string[]; reasons: string[] };
type RacerOut = RacerRun | { ok: true; refusedFor: string } | { ok: false; message: string };
const noRun = { status: 'done', matterCount: 0, drafted: 0, skipped: 0, bills: [], reasons: [] };

const race = (url: string, n: number, args: string[]): Promise<RacerOut>[] => raceProcesses<RacerOut>(join(import.meta.dirname, 'mass-racer.ts'), n, [url, ...args]);

eachDialect('concurrent Bill all from two processes bills each item once', async (db) => {
  // SQLite: a file both processes open; Postgres: the test database itself.
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-mass-race-'));
  const target = db.dialect === 'sqlite' ? await freshDatabase('sqlite', { file: join(dir, 'race.db') }) : db;
  try {
    const s = await setup(target, { start: '2026-03-02T09:00:00Z' });
    await seedDemoFirm(s.cmds, { matters: 40, entriesPerMatter: 5, seed: 11, random: prng, ctx, fixedCharges: true, asOf: '2026-03-01' });
    await s.drain();
    const mass = createMassBilling({ db: target.db, clock: s.clock, relay: s.rt.relay }, s.billing);
    const eligible = (await mass.candidates({ invoiceDate: '2026-03-01', upTo: '2026-03-01' })).filter((r) => r.eligible).map((r) => r.matterId);
    assert.ok(eligible.length >= 25, `eligible ${eligible.length}`);

    // Small chunks so the two runs interleave many times.
    const outs = await Promise.all(race(target.url, 2, ['2026-03-01', '2026-03-01', '4']));
    for (const o of outs) assert.ok(o.ok, JSON.stringify(o));
    // A process whose Bill all found every matter queued by the other's run makes no run: it
    // names that run (counted below as a run of nothing).
    const runIds = outs.map((o) => ('runId' in o ? o.runId : null));
    const [a, b] = outs.map((o, i): RacerRun => {
      if (!('refusedFor' in o)) return o as RacerRun;
      assert.equal(o.refusedFor, runIds[1 - i], 'the refusal names the other process\'s run');
      return { ok: true, runId: '', ...noRun };
    });
    assert.ok(runIds.some((id) => id !== null), 'one of the two made a run');
    if (process.env.RACE_LOG) console.log(db.dialect, a!.drafted, a!.skipped, b!.drafted, b!.skipped, [...new Set([...a!.reasons, ...b!.reasons])]);
    for (const o of [a!, b!]) {
      assert.equal(o.status, 'done');
      assert.equal(o.drafted + o.skipped, o.matterCount);
      for (const r of o.reasons) assert.match(r, /already has a (bill in )?draft|No billable items|taken by another bill|at the same moment/, r);
    }
    // Together the two runs drafted each eligible matter exactly once.
    const drafts = await target.db.selectFrom('billing_bill').select(['id', 'matter_id', 'batch_id']).where('status', '=', 'draft').execute();
    assert.equal(drafts.length, eligible.length, 'one draft per eligible matter');
    assert.equal(new Set(drafts.map((d) => d.matter_id)).size, drafts.length);
    assert.deepEqual(new Set([...a!.bills, ...b!.bills]), new Set(drafts.map((d) => d.id as string)));
    assert.equal(a!.bills.filter((id) => b!.bills.includes(id)).length, 0, 'no bill in both runs');
    assert.equal(a!.drafted + b!.drafted, eligible.length);
    // No item on two bills: each on one live line, and each item on a line is in the copy.
    const lines = await target.db.selectFrom('billing_bill_line').select(['item_id', 'bill_id']).where('item_id', 'is not', null).where('live', '=', 1).execute();
    assert.equal(new Set(lines.map((l) => l.item_id)).size, lines.length, 'each item on one live line');
    const copied = new Set((await target.db.selectFrom('billing_wip').select('id').execute()).map((w) => w.id as string));
    for (const l of lines) assert.ok(copied.has(l.item_id as string), 'the item a line holds is in the copy');
    // Each process's audit and events: one bill_drafted event per draft, no more.
    const events = await target.db.selectFrom('outbox').select('payload').where('type', '=', 'billing.bill_drafted').execute();
    assert.equal(events.length, drafts.length);
    // Matters hears of every draft once: every item on a draft is "draft" in matters.
    await s.drain();
    const statuses = await target.db.selectFrom('matters_time_entry').select(['id', 'status']).where('id', 'in', lines.map((l) => l.item_id as string)).execute();
    assert.ok(statuses.length > 0 && statuses.every((t) => t.status !== 'unbilled'), 'matters marks the items');
    await s.rt.relay.stop();
  } finally {
    if (target !== db) await target.close();
    rmSync(dir, { recursive: true, force: true });
  }
}, { timeout: 300_000 });
