/**
 * bill-run's filters take what the firm knows clients and timekeepers by: a client's number
 * (7) and a timekeeper's initials (MH), as well as their ids, which no command prints. What
 * names nobody is refused naming the flag, with every other bad choice, and nothing is drafted.
 */
import assert from 'node:assert/strict';
import { billRun, BillRunUsageError } from '../src/cli/bill-run.ts';
import { seedDemo } from '../src/cli/demo.ts';
import { createMattersCommands } from '../src/modules/matters/index.ts';
import { systemContext } from '../src/shared/events.ts';
import { withApp } from './support/app.ts';
import { eachDialect } from './support/db.ts';

const DATE = '2026-03-02';

eachDialect('bill-run takes a client number and timekeeper initials as well as ids', async (db) => {
  await withApp(db, async (t) => {
    await seedDemo(t.runtime, { matters: 6, entriesPerMatter: 3, seed: 4 });
    await t.runtime.relay.drain();
    const client = await db.db.selectFrom('billing_client as c').innerJoin('billing_matter as m', 'm.client_id', 'c.id')
      .select(['c.id', 'c.client_number', 'c.name', 'm.billing_timekeeper_id']).orderBy('c.client_number').executeTakeFirstOrThrow();
    const tk = await db.db.selectFrom('billing_timekeeper').select(['id', 'initials']).where('id', '=', String(client.billing_timekeeper_id)).executeTakeFirstOrThrow();
    const batches = async () => (await db.db.selectFrom('billing_batch').select('id').execute()).length;
    const base = ['--invoice-date', DATE, '--up-to', DATE];

    // Two clients of one name: refused, naming both numbers to give instead.
    const matters = createMattersCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const twins = [await matters.createClient(systemContext('twins', 'test'), { name: 'Twin Holdings' }), await matters.createClient(systemContext('twins', 'test'), { name: 'Twin Holdings' })];
    // A name holding digits no client's number is: the digits are not taken for part of its name.
    await matters.createClient(systemContext('twins', 'test'), { name: 'Route 99999 Logistics' });
    await t.runtime.relay.drain();
    // Names nobody: usage errors naming the flag, nothing drafted.
    for (const [args, message] of [
      [['--client', 'twin holdings'], new RegExp(`--client 2 clients have or hold this name: type the client number \\(${twins.map((c) => `${c.clientNumber} Twin Holdings`).join('; ')}\\)`)],
      [['--client', '99999'], /--client no client with this number, name or id: 99999/],
      [['--client', 'Nobody at all'], /--client no client with this number, name or id: Nobody at all/],
      // Part of a name is not taken here (the page takes it, showing the client found before billing).
      [['--client', 'Logistics'], /--client no client with this number, name or id: Logistics/],
      [['--billing-timekeeper', 'ZZQ'], /--billing-timekeeper no timekeeper with id ZZQ/],
      [['--time-timekeeper', 'nobody'], /--time-timekeeper no timekeeper with id nobody/],
    ] as [string[], RegExp][]) {
      await assert.rejects(billRun(t.runtime, [...base, ...args], () => undefined, () => undefined), (e: unknown) => e instanceof BillRunUsageError && message.test(e.message));
    }
    assert.equal(await batches(), 0);

    // By number and initials (lower case too): the same matters as by ids.
    const lines = async (args: string[]) => { const out: string[] = []; assert.equal(await billRun(t.runtime, [...base, '--json', ...args], (l) => out.push(l), () => undefined), 0); return JSON.parse(out.join('\n')); };
    const byNames = await lines(['--client', String(client.client_number), '--billing-timekeeper', String(tk.initials).toLowerCase(), '--run-id', 'by-names-0001']);
    // Which matters it took, the client and timekeeper named.
    const tkName = (await db.db.selectFrom('billing_timekeeper').select('name').where('id', '=', tk.id).executeTakeFirstOrThrow()).name;
    assert.equal(byNames.matterFilters, `Only the matters of client ${client.client_number} ${client.name}, with billing timekeeper ${tk.initials} ${tkName}.`);
    const billed = (byNames.matters as { fileNumber: string; state: string }[]).filter((m) => m.state === 'drafted').map((m) => m.fileNumber);
    assert.ok(billed.length > 0, JSON.stringify(byNames));
    const theirs = await db.db.selectFrom('billing_matter').select('file_number').where('client_id', '=', client.id).where('billing_timekeeper_id', '=', tk.id).execute();
    for (const f of billed) assert.ok(theirs.some((m) => m.file_number === f), `${f} is the client's and the timekeeper's`);
    // A client with nothing to bill: no run is made (none crowds the page's recent runs), exit 0, said so.
    const runsBefore = await batches();
    const said: string[] = [];
    assert.equal(await billRun(t.runtime, [...base, '--client', String(twins[0]!.clientNumber)], (l) => said.push(l), () => undefined), 0);
    assert.match(said.join('\n'), new RegExp(`^No bill run: no matter is eligible for invoice date ${DATE}, up to ${DATE}\\.$`, 'm'));
    assert.match(said.join('\n'), /^0 drafted \(0 items\), 0 skipped, 0 ineligible\.$/m);
    const none = await lines(['--client', String(twins[1]!.clientNumber)]);
    assert.deepEqual({ runId: none.runId, status: none.status, drafted: none.drafted }, { runId: null, status: 'done', drafted: 0 });
    // A new --run-id with nothing eligible: no run either (a scheduled job naming its runs).
    assert.equal(await billRun(t.runtime, [...base, '--client', String(twins[0]!.clientNumber), '--run-id', 'quiet-week-0001'], () => undefined, () => undefined), 0);
    assert.equal(await batches(), runsBefore, 'no run made');
    // By name, as the web's Client filter takes it (case aside): the same run's matters (the same run id and choices: the same run).
    const byName = await lines(['--client', String(client.name).toUpperCase(), '--billing-timekeeper', String(tk.id), '--run-id', 'by-names-0001']);
    assert.deepEqual((byName.matters as { fileNumber: string; state: string }[]).filter((m) => m.state === 'drafted').map((m) => m.fileNumber), billed);
  });
});
