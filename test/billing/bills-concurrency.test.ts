/**
 * Two composers saving drafts for the same matter at the same moment cannot both take the
 * same WIP. On Postgres: two connection pools in this process, racing createDraft (and the
 * item claim itself, with one transaction held open while the other tries). On SQLite: two
 * separate processes on one database file (better-sqlite3 waits synchronously for the
 * write lock, so a second connection must live in another process), and two composers
 * sharing the app's one connection. Exactly one succeeds (or they split disjoint items);
 * no item is ever on two bills.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src/adapters/db/index.ts';
import { checkItemsFree } from '../../src/modules/billing/bill-store.ts';
import { createBillingCommands } from '../../src/modules/billing/index.ts';
import { isUniqueViolation } from '../../src/shared/db.ts';
import type { Tx } from '../../src/shared/db.ts';
import { HttpError } from '../../src/shared/web/errors.ts';
import { raceProcesses } from '../support/race.ts';
import { eachDialect, freshDatabase } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { assertBillInvariants, ctx, firm, insertTestBill, liveLines, setup, work } from './support.ts';

type Outcome = { ok: true; billId: string; items: string[] } | { ok: false; status: number; message: string };

async function settle(p: Promise<{ billId: string; items: { id: string }[] }>): Promise<Outcome> {
  try {
    const b = await p;
    return { ok: true, billId: b.billId, items: b.items.map((i) => i.id) };
  } catch (e) {
    if (e instanceof HttpError) return { ok: false, status: e.status, message: e.message };
    throw e;
  }
}

/** Exactly one winner, or winners with disjoint items; losers refused with a 409 and a reason. */
function assertOneWinner(outcomes: Outcome[], label: string): void {
  const winners = outcomes.filter((o): o is Extract<Outcome, { ok: true }> => o.ok);
  const losers = outcomes.filter((o): o is Extract<Outcome, { ok: false }> => !o.ok);
  if (process.env.RACE_LOG) console.log(label, losers.map((l) => l.message));
  assert.ok(winners.length >= 1, `${label}: someone wins (${JSON.stringify(outcomes)})`);
  const items = winners.flatMap((w) => w.items);
  assert.equal(new Set(items).size, items.length, `${label}: no item taken twice`);
  assert.equal(winners.length, 1, `${label}: one draft per matter (${JSON.stringify(outcomes)})`);
  for (const l of losers) {
    assert.equal(l.status, 409, `${label}: ${l.message}`);
    assert.match(l.message, /already has a draft|already on bill|no longer available|No billable items|at the same moment/, label);
  }
}

type WithFirm = Awaited<ReturnType<typeof setup>> & { tks: Awaited<ReturnType<typeof firm>> };

/** A matter with work, copied into billing (relay drained). */
async function matterWithWork(s: WithFirm, name: string) {
  const tks = s.tks;
  const matter = await s.cmds.openMatter(ctx, { clientId: tks.client.id, name, responsibleTimekeeperId: tks.partner.id });
  await work(s.cmds, matter.id, tks);
  await s.drain();
  return matter;
}

/**
 * What a bill's commands do to take items, at the store level: check them free
 * (checkItemsFree), then hold them with live lines of the bill (an approved bill row, numbered
 * `sequence`, so two such bills can exist on one matter).
 */
async function takeItems(trx: Tx, billId: string, sequence: number, matter: { id: string; clientId: string; fileNumber: string }, ids: readonly string[]): Promise<void> {
  await insertTestBill(trx, billId, matter, { status: 'approved', sequence });
  await checkItemsFree(trx, billId, ids);
  await liveLines(trx, billId, ids.map((id) => ({ kind: 'time' as const, id })));
}

async function setupWithFirm(db: TestDb): Promise<WithFirm> {
  const s = await setup(db);
  return { ...s, tks: await firm(s.cmds) };
}

/** Two processes drafting the same matter, told to go at once. */
const race = (url: string, matterId: string): Promise<Outcome>[] =>
  raceProcesses<Outcome>(join(import.meta.dirname, 'draft-racer.ts'), 2, [url, matterId, '2026-02-28', '2026-02-28']);

eachDialect('two composers drafting the same matter at once: one wins, no item on two bills', async (db) => {
  if (db.dialect === 'postgres') {
    const s = await setupWithFirm(db);
    const second = openDatabase(db.url);
    try {
      const other = createBillingCommands({ db: second.db, clock: s.clock, relay: { kick() {} } });
      const matters: string[] = [];
      for (let round = 0; round < 8; round++) {
        const matter = await matterWithWork(s, `Race ${round}`);
        matters.push(matter.id);
        const input = { matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' };
        const outcomes = await Promise.all([settle(s.billing.createDraft(ctx, input)), settle(other.createDraft(ctx, input))]);
        assertOneWinner(outcomes, `round ${round}`);
      }
      await assertBillInvariants(db.db, s.billing, matters);

      // Taking items: one transaction puts them on its bill's lines and is held open; the
      // other, having checked them free (it cannot see the first's lines yet), inserts its
      // lines, waits for the first, then is refused by the unique index on live lines.
      const matter = await matterWithWork(s, 'Claim race');
      const ids = (await s.reads.unbilledWip(matter.id)).map((w) => w.id);
      let release!: () => void;
      const gate = new Promise<void>((r) => { release = r; });
      let claimed!: () => void;
      const firstClaimed = new Promise<void>((r) => { claimed = r; });
      const first = db.db.transaction().execute(async (trx) => {
        await takeItems(trx, 'bill-one', 901, matter, ids);
        claimed();
        await gate;
      });
      await firstClaimed;
      const secondClaim = second.db.transaction().execute((trx) => takeItems(trx, 'bill-two', 902, matter, ids.slice(1)));
      const settledSecond = secondClaim.then(() => 'claimed', (e: unknown) => e);
      await new Promise((r) => setTimeout(r, 200));
      release();
      await first;
      const result = await settledSecond;
      assert.ok(isUniqueViolation(result), `the second bill's lines are refused (${String(result)})`);
      const held = await db.db.selectFrom('billing_bill_line').select(['item_id', 'bill_id']).where('item_id', 'in', ids).where('live', '=', 1).execute();
      assert.deepEqual([...new Set(held.map((h) => h.bill_id))], ['bill-one']);
      assert.equal(held.length, ids.length);
      // Once the first has committed, the check itself names the bill that holds them.
      const late = await second.db.transaction().execute((trx) => checkItemsFree(trx, 'bill-three', ids)).then(() => null, (e: unknown) => e);
      assert.ok(late instanceof HttpError && late.status === 409, `a later check is refused (${String(late)})`);
      assert.match((late as HttpError).message, new RegExp(`already on bill ${matter.fileNumber.replace('.', '\\.')}\\.901`));
    } finally {
      await second.close();
    }
    return;
  }

  // SQLite: the app's one connection, two composers at once (transactions queue on it).
  {
    const s = await setupWithFirm(db);
    const matter = await matterWithWork(s, 'Shared connection');
    const input = { matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' };
    assertOneWinner(await Promise.all([settle(s.billing.createDraft(ctx, input)), settle(s.billing.createDraft(ctx, input))]), 'one connection');
    await assertBillInvariants(db.db, s.billing, [matter.id]);
  }
  // SQLite: two processes, two connections, one file.
  const dir = mkdtempSync(join(tmpdir(), 'lexbill-race-'));
  const file = await freshDatabase('sqlite', { file: join(dir, 'race.db') });
  try {
    const s = await setupWithFirm(file);
    const matters: string[] = [];
    for (let round = 0; round < 2; round++) {
      const matter = await matterWithWork(s, `Race ${round}`);
      matters.push(matter.id);
      assertOneWinner(await Promise.all(race(file.url, matter.id)), `processes, round ${round}`);
    }
    await assertBillInvariants(file.db, s.billing, matters);
    await s.rt.relay.stop();
  } finally {
    await file.close();
    rmSync(dir, { recursive: true, force: true });
  }
}, { timeout: 120_000 });
