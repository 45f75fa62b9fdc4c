/**
 * Audit of `bill-run` stopped part way (Ctrl-C, a crash, a lost connection): the run is
 * named, with its id, before it drafts anything, so it can be taken up again; a run that
 * stops after that says which run stopped and how to resume it; and taken up again under
 * its id it finishes, billing each item once.
 */
import assert from 'node:assert/strict';
import { billRun } from '../src/cli/bill-run.ts';
import { seedDemo } from '../src/cli/demo.ts';
import { withApp } from './support/app.ts';
import { eachDialect } from './support/db.ts';

const DATE = '2026-03-02';

eachDialect('audit: bill-run names its run before drafting, a stopped run says how to resume it, and resumed it bills each item once', async (db) => {
  await withApp(db, async (t) => {
    await seedDemo(t.runtime, { matters: 6, entriesPerMatter: 3, seed: 4 });
    await t.runtime.relay.drain();
    const bills = async () => Number((await db.db.selectFrom('billing_bill').select((e) => e.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    const args = ['--invoice-date', DATE, '--up-to', DATE];

    // Stopped at the first line it prints (as Ctrl-C the moment anything shows): by then the
    // line names the run, and nothing is drafted yet.
    const seen: string[] = [];
    let billsWhenNamed = -1;
    await assert.rejects(billRun(t.runtime, args, (l) => { seen.push(l); throw new Error('interrupted'); }, () => undefined), /interrupted/);
    const batches = await db.db.selectFrom('billing_batch').select(['id', 'status']).execute();
    assert.equal(batches.length, 1);
    const runId = String(batches[0]!.id);
    assert.match(seen[0] ?? '', new RegExp(`^Bill run ${runId}: invoice date ${DATE}, up to ${DATE}$`), 'the run is named first');
    billsWhenNamed = await bills();
    assert.equal(billsWhenNamed, 0, 'named before anything was drafted');

    // Taken up again under its id, and stopped after it drafted (at its first billed line): the error names the run and how to resume.
    const said: string[] = [];
    await assert.rejects(
      billRun(t.runtime, [...args, '--run-id', runId], (l) => { said.push(l); if (l.startsWith('billed')) throw new Error('connection lost'); }, () => undefined),
      (e: Error) => {
        assert.match(e.message, new RegExp(`^bill run ${runId} stopped: connection lost\\. What it did is kept; run the same command again with --run-id ${runId} to resume it$`));
        return true;
      },
    );
    const drafted = await bills();
    assert.ok(drafted >= 1);

    // Resumed: the same run, finished; every bill of it listed; nothing drafted twice.
    const out: string[] = [];
    assert.equal(await billRun(t.runtime, [...args, '--run-id', runId, '--approve'], (l) => out.push(l), () => undefined), 0, out.join('\n'));
    assert.equal(await bills(), drafted, 'nothing drafted twice');
    assert.equal((await db.db.selectFrom('billing_batch').select('id').execute()).length, 1, 'one run');
    assert.equal(out.filter((l) => l.startsWith('billed')).length, drafted, out.join('\n'));
    assert.equal(out.filter((l) => l.startsWith('approved')).length, drafted, out.join('\n'));
    const items = await db.db.selectFrom('billing_bill_line').select('item_id').where('item_id', 'is not', null).execute();
    assert.equal(new Set(items.map((i) => i.item_id)).size, items.length, 'each item on one bill');
  });
});
