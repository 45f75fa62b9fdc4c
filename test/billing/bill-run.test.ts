/**
 * `bin/lexbill bill-run` on both databases: the demo firm billed from the command line,
 * each matter billed or skipped with the reason, the same run id twice is one run, then
 * --approve numbers the drafts (a bill on hold is refused with its reason), and the run
 * retried with --produce produces the bills it approved before.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DIALECTS, freshDatabase } from '../support/db.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { isoDate, systemClock } from '../../src/shared/clock.ts';
import { ctx } from './support.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'lexbill');

for (const dialect of DIALECTS) {
  test(`bin/lexbill bill-run drafts the eligible matters in one batch and approves them [${dialect}]`, { timeout: 240_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lexbill-billrun-'));
    const db = await freshDatabase(dialect, { file: join(dir, 'cli.db') });
    const run = (args: string[]) => {
      const r = spawnSync(BIN, args, { cwd: dir, encoding: 'utf8', env: { ...process.env, DATABASE_URL: db.url, LOG_LEVEL: 'silent' } });
      return { code: r.status, out: r.stdout, err: r.stderr };
    };
    try {
      let r = run(['seed-demo', '--matters', '12', '--entries-per-matter', '4', '--seed', '3']);
      assert.equal(r.code, 0, r.err);

      r = run(['bill-run', '--up-to', '2026-01-01']);
      assert.equal(r.code, 2);
      assert.match(r.err, /--invoice-date is required/);
      r = run(['bill-run', '--invoice-date', '2026-01-01', '--up-to', '2026-02-01']);
      assert.equal(r.code, 2);
      assert.match(r.err, /--up-to must be on or before the invoice date/);
      // Choices naming nothing billing knows, or a range ending before it starts: refused
      // naming the option (a scheduled run must not quietly bill nothing, or use another template).
      // (Each refusal names every bad option at once: two runs cover them all.)
      const refusals: [string[], RegExp[]][] = [
        [['--next-from', '2026-12-01', '--next-to', '2026-01-01', '--time-from', '2026-01-02', '--time-to', '2026-01-01', '--disb-from', '2026-01-02', '--disb-to', '2026-01-01'],
          [/--next-to must be on or after the next billing date from \(2026-12-01\)/, /--time-to must be on or after the date from \(2026-01-02\)/, /--disb-to must be on or after the date from/]],
        [['--cycle', 'nonsense', '--client', 'nope', '--responsible', 'nope', '--time-timekeeper', 'nope', '--template', 'nope', '--disb-code', 'corut'],
          [/--cycle no matter has billing cycle "nonsense" \(cycles in use: [A-Z]/, /--client no client with this number, name or id: nope/, /--responsible no timekeeper with id nope/,
            /--time-timekeeper no timekeeper with id nope/, /--template no bill template named "nope" \(templates: [a-z]/,
            /--disb-code no disbursement has code "CORUT" \(codes in use: [A-Z]/]],
        // Filters given empty (an unset variable in a scheduled script) are refused, each named: never a run over the whole firm.
        [['--client', '', '--matter', '', '--responsible', '', '--billing-timekeeper', '', '--cycle', '', '--time-timekeeper', '', '--disb-code', ' ', '--next-from', '', '--run-id', ''],
          ['client', 'matter', 'responsible', 'billing-timekeeper', 'cycle', 'time-timekeeper', 'disb-code', 'next-from', 'run-id']
            .map((o) => new RegExp(`--${o} must have a value \\(it was given empty; leave the option out instead\\)`))],
        // Work from after the up-to date: no bill of the run would hold it.
        [['--time-from', '2026-01-05', '--disb-from', '2026-01-09'], [/--time-from must be on or before the up-to date \(2026-01-01\): work dated after it is not billed/, /--disb-from must be on or before the up-to date \(2026-01-01\)/]],
        [['--time-cap', 'lots'], [/--time-cap must be "matter" or an amount/]],
        [['--time-cap', '', '--wip-cap', ' '], [/--wip-cap must be "matter" or an amount \(it was given empty\)/]],
        [['--time-cap', ''], [/--time-cap must be "matter" or an amount \(it was given empty\)/]],
      ];
      for (const [args, messages] of refusals) {
        r = run(['bill-run', '--invoice-date', '2026-01-01', '--up-to', '2026-01-01', ...args]);
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.out} ${r.err}`);
        for (const m of messages) assert.match(r.err, m);
        assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
      }
      assert.equal((await db.db.selectFrom('billing_batch').select('id').execute()).length, 0, 'a refused run changes nothing');

      // --approve where the firm refuses postings outside the current period and the invoice date
      // is last month: refused before anything is drafted (every approval would be refused).
      const matters = createMattersCommands({ db: db.db, clock: systemClock, relay: { kick() {} } });
      await matters.updateFirmSettings(ctx, { postingOutsideCurrentPeriod: 'refuse' });
      // The firm's day (the process's zone, as the CLI's), and the last day of the month before it.
      const firmToday = isoDate(new Date());
      const lastMonthEnd = new Date(Date.UTC(Number(firmToday.slice(0, 4)), Number(firmToday.slice(5, 7)) - 1, 0)).toISOString().slice(0, 10);
      r = run(['bill-run', '--invoice-date', lastMonthEnd, '--up-to', lastMonthEnd, '--approve']);
      assert.equal(r.code, 2, r.out + r.err);
      assert.match(r.err, new RegExp(`--approve: the bills could not be approved: their invoice date ${lastMonthEnd} is in ${lastMonthEnd.slice(0, 7)}, not the current accounting period ${firmToday.slice(0, 7)}, and the firm refuses postings outside the current period: change the invoice date to approve it\\. Nothing was drafted`));
      assert.equal((await db.db.selectFrom('billing_batch').select('id').execute()).length, 0, 'nothing drafted');
      assert.equal((await db.db.selectFrom('billing_bill').select('id').execute()).length, 0, 'no bill');
      await matters.updateFirmSettings(ctx, { postingOutsideCurrentPeriod: 'warn' });
      // --matter with a filter that leaves that matter out: said, with why, and no run.
      {
        const m = await db.db.selectFrom('billing_matter').select(['file_number', 'client_id']).orderBy('file_number').executeTakeFirstOrThrow();
        const other = await db.db.selectFrom('billing_client').select('client_number').where('id', '<>', String(m.client_id)).executeTakeFirstOrThrow();
        const day = isoDate(new Date());
        r = run(['bill-run', '--invoice-date', day, '--up-to', day, '--matter', String(m.file_number), '--client', String(other.client_number), '--time-from', day, '--disb-code', 'court']);
        assert.equal(r.code, 0, r.out + r.err);
        // The work the time and disbursement filters leave off each bill is said, as the page's confirmation says it.
        assert.match(r.out, new RegExp(`^Each bill takes only time dated from ${day}, and only disbursements with code COURT; the matters' other unbilled work waits for a later bill\\.$`, 'm'), r.out);
        assert.match(r.out, new RegExp(`^ineligible  ${String(m.file_number).replace('.', '\\.')}  .*The Client filter leaves it out \\(it is another client's matter\\)`, 'm'), r.out);
        assert.match(r.out, /^No bill run: no matter is eligible/m);
        assert.equal((await db.db.selectFrom('billing_batch').select('id').execute()).length, 0, 'no run');
      }
      // Two matters with nothing to bill (dormant, as most of a firm's are in a given month).
      const someone = await db.db.selectFrom('matters_matter').select(['client_id', 'responsible_timekeeper_id']).executeTakeFirstOrThrow();
      for (const name of ['Dormant one', 'Dormant two']) {
        await matters.openMatter(ctx, { clientId: String(someone.client_id), name, responsibleTimekeeperId: String(someone.responsible_timekeeper_id), openedOn: '2025-06-01', billingCycle: 'MONTH' });
      }

      const today = new Date().toISOString().slice(0, 10);
      r = run(['bill-run', '--invoice-date', today, '--up-to', today, '--terms', '10', '--run-id', 'cli-run-0001']);
      assert.equal(r.code, 0, r.err);
      const billed = r.out.split('\n').filter((l) => l.startsWith('billed'));
      // Skipped: taken into the run and not drafted; ineligible: left out of it.
      const skipped = r.out.split('\n').filter((l) => l.startsWith('skipped') || l.startsWith('ineligible'));
      assert.ok(billed.length >= 5, r.out);
      // Matters with nothing to bill are counted on one line, not listed one by one.
      const idle = Number(/^not listed: (\d+) ineligible matter\(s\) with nothing to bill up to \S+ \(--all-skipped lists them\)$/m.exec(r.out)?.[1] ?? 0);
      assert.equal(idle, 2, r.out);
      assert.equal(billed.length + skipped.length + idle, 14, 'every matter is billed, skipped with a reason, or counted with nothing to bill');
      for (const l of skipped) assert.match(l, /^(skipped|ineligible)\s+\S+\s+\S/, 'a reason');
      const inRun = skipped.filter((l) => l.startsWith('skipped')).length;
      for (const l of skipped) assert.doesNotMatch(l, /No chargeable unbilled WIP/, 'nothing to bill: counted, not listed');
      assert.match(r.out, new RegExp(`${billed.length} drafted \\(\\d+ items\\), ${inRun} skipped, ${skipped.length - inRun + idle} ineligible \\(${idle} with nothing to bill\\)\\.`));
      // The same run given again (a retried scheduled job): the same lines; a matter this run drafted is billed, not also "skipped: has a draft".
      r = run(['bill-run', '--invoice-date', today, '--up-to', today, '--terms', '10', '--run-id', 'cli-run-0001']);
      assert.equal(r.code, 0, r.err);
      assert.deepEqual(r.out.split('\n').filter((l) => l.startsWith('billed')), billed);
      assert.deepEqual(r.out.split('\n').filter((l) => l.startsWith('skipped') || l.startsWith('ineligible')).sort(), [...skipped].sort(), r.out);
      assert.match(r.out, new RegExp(`${billed.length} drafted \\(\\d+ items\\), ${inRun} skipped, ${skipped.length - inRun + idle} ineligible \\(${idle} with nothing to bill\\)\\.`));
      // --all-skipped: each of them listed too, with its reason.
      r = run(['bill-run', '--invoice-date', today, '--up-to', today, '--terms', '10', '--run-id', 'cli-run-0001', '--all-skipped']);
      assert.equal(r.code, 0, r.err);
      const every = r.out.split('\n').filter((l) => l.startsWith('skipped') || l.startsWith('ineligible'));
      assert.equal(every.length, skipped.length + idle, r.out);
      assert.equal(every.filter((l) => /No chargeable unbilled WIP|no unbilled disbursements|no instalment due/.test(l)).length, idle, r.out);
      assert.doesNotMatch(r.out, /^not listed/m);
      // ... and still counted in the summary.
      assert.match(r.out, new RegExp(`${billed.length} drafted \\(\\d+ items\\), ${inRun} skipped, ${skipped.length - inRun + idle} ineligible \\(${idle} with nothing to bill\\)\\.`));
      // The run id with other choices is another run's id: refused (usage), nothing billed.
      r = run(['bill-run', '--invoice-date', today, '--up-to', today, '--terms', '11', '--run-id', 'cli-run-0001']);
      assert.equal(r.code, 2, r.out + r.err);
      assert.match(r.err, /--run-id was already used for another bill run \(invoice date /);
      const drafts = await db.db.selectFrom('billing_bill').select(['id', 'batch_id', 'due_date', 'invoice_date']).where('status', '=', 'draft').execute();
      assert.equal(drafts.length, billed.length);
      assert.ok(drafts.every((d) => d.batch_id === 'cli-run-0001'));
      const due = new Date(Date.parse(`${today}T00:00:00Z`) + 10 * 86_400_000).toISOString().slice(0, 10);
      assert.ok(drafts.every((d) => d.due_date === due), 'terms of the run');
      // Matters heard of the drafts (the CLI delivers the events before it exits).
      const pending = await db.db.selectFrom('outbox').select('id').where('delivered_at', 'is', null).execute();
      assert.equal(pending.length, 0);

      // The same run id again: the same run, nothing drafted twice; --approve approves its drafts, one on hold refused.
      await db.db.updateTable('billing_bill').set({ on_hold: 1 }).where('id', '=', drafts[0]!.id as string).execute();
      r = run(['bill-run', '--invoice-date', today, '--up-to', today, '--terms', '10', '--run-id', 'cli-run-0001', '--approve', '--json']);
      assert.equal(r.code, 0, r.err);
      const again = JSON.parse(r.out.trim().split('\n').pop()!) as { runId: string; drafted: number; approved: number; refused: { billId: string; reason: string }[] };
      assert.equal(again.runId, 'cli-run-0001');
      assert.equal(again.drafted, billed.length);
      assert.equal(again.approved, billed.length - 1);
      assert.deepEqual(again.refused.map((x) => x.billId), [drafts[0]!.id]);
      assert.match(again.refused[0]!.reason, /on hold/);
      const approved = await db.db.selectFrom('billing_bill').select(['number', 'file_number']).where('status', '=', 'approved').execute();
      assert.equal(approved.length, billed.length - 1);
      assert.ok(approved.every((b) => b.number === `${b.file_number}.1`));
      assert.equal((await db.db.selectFrom('billing_bill').select('id').execute()).length, billed.length, 'nothing drafted twice');

      // Retried with --produce (as after a crash once the bills were approved): the bills the run
      // approved before are produced, not refused as "not a draft", and the run says so.
      r = run(['bill-run', '--invoice-date', today, '--up-to', today, '--terms', '10', '--run-id', 'cli-run-0001', '--approve', '--produce', '--json']);
      assert.equal(r.code, 0, r.err);
      const retried = JSON.parse(r.out.trim().split('\n').pop()!) as { approved: number; alreadyApproved: number; refused: unknown[]; produced: number; productionFailed: number };
      assert.deepEqual([retried.approved, retried.alreadyApproved, retried.refused.length, retried.produced, retried.productionFailed], [0, billed.length - 1, 1, billed.length - 1, 0]);
      assert.equal((await db.db.selectFrom('billing_bill').select('id').where('status', '=', 'finalised').execute()).length, billed.length - 1);
      // Once more: every bill was produced before (by the command above, or the web): counted as such, not as produced now.
      r = run(['bill-run', '--invoice-date', today, '--up-to', today, '--terms', '10', '--run-id', 'cli-run-0001', '--approve', '--produce']);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, new RegExp(`^0 produced \\(and ${billed.length - 1} produced before\\), 0 failed\\.$`, 'm'));
      r = run(['bill-run', '--invoice-date', today, '--up-to', today, '--terms', '10', '--run-id', 'cli-run-0001', '--approve', '--produce', '--json']);
      const thrice = JSON.parse(r.out.trim().split('\n').pop()!) as { produced: number; alreadyProduced: number };
      assert.deepEqual([thrice.produced, thrice.alreadyProduced], [0, billed.length - 1]);

      // A new run: every matter billed has a bill already (draft or approved) or nothing left.
      r = run(['bill-run', '--invoice-date', today, '--up-to', today]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /0 drafted/);
      assert.match(r.out, /already has a bill in draft/);
      r = run(['bill-run', '--invoice-date', today, '--up-to', today, '--matter', '99.99']);
      assert.equal(r.code, 2);
      assert.match(r.err, /no matter with file number 99\.99/);

      // A run dated last month made under 'warn', taken up again under 'refuse' with --approve
      // (as after a crash, the period rule changed meanwhile): it is that run, finished, not refused up front.
      // (A matter with work to bill last month: with nothing eligible no run would be made.)
      const late = await matters.openMatter(ctx, { clientId: String(someone.client_id), name: 'Last month\'s filing', responsibleTimekeeperId: String(someone.responsible_timekeeper_id), openedOn: '2025-06-01', billingCycle: 'MONTH' });
      await matters.recordDisbursement(ctx, { matterId: late.id, incurredOn: lastMonthEnd, code: 'COURT', unitCostMinor: 12_000, taxCode: 'EXEMPT', description: 'Filing fee' });
      r = run(['bill-run', '--invoice-date', lastMonthEnd, '--up-to', lastMonthEnd, '--run-id', 'cli-run-last-month']);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /^Bill run cli-run-last-month:/m);
      await matters.updateFirmSettings(ctx, { postingOutsideCurrentPeriod: 'refuse' });
      r = run(['bill-run', '--invoice-date', lastMonthEnd, '--up-to', lastMonthEnd, '--run-id', 'cli-run-last-month', '--approve']);
      assert.equal(r.code, 0, r.out + r.err);
      assert.match(r.out, /^Bill run cli-run-last-month:/m);
      // A new run dated last month with --approve is still refused up front.
      r = run(['bill-run', '--invoice-date', lastMonthEnd, '--up-to', lastMonthEnd, '--approve']);
      assert.equal(r.code, 2, r.out + r.err);
      await matters.updateFirmSettings(ctx, { postingOutsideCurrentPeriod: 'warn' });
      // Under 'warn' the run's bill dated last month is approved, with the warning the page's confirmation gives.
      r = run(['bill-run', '--invoice-date', lastMonthEnd, '--up-to', lastMonthEnd, '--run-id', 'cli-run-last-month', '--approve', '--json']);
      assert.equal(r.code, 0, r.out + r.err);
      const warned = JSON.parse(r.out.trim().split('\n').pop()!) as { approved: number; periodWarning: string | null };
      assert.equal(warned.approved, 1);
      const warning = `the 1 bill(s) approved dated ${lastMonthEnd}: Posts in ${lastMonthEnd.slice(0, 7)}, outside the current accounting period`;
      assert.ok(warned.periodWarning?.startsWith(warning), String(warned.periodWarning));
      assert.ok(r.err.includes(`lexbill: warning: ${warning}`), r.err);
      // A draft that totals nothing (a zero-value disbursement): drafted, but --approve leaves it as a draft for a
      // clerk (never numbered or sent unattended), says so, and --produce sends nothing.
      const zeroMatter = await matters.openMatter(ctx, { clientId: String(someone.client_id), name: 'Nothing to charge', responsibleTimekeeperId: String(someone.responsible_timekeeper_id), openedOn: '2025-06-01', billingCycle: 'MONTH' });
      await matters.recordDisbursement(ctx, { matterId: zeroMatter.id, incurredOn: today, code: 'COURT', unitCostMinor: 0, taxCode: 'EXEMPT', description: 'Filing fee waived' });
      const zeroFile = String((await db.db.selectFrom('matters_matter').select('file_number').where('id', '=', zeroMatter.id).executeTakeFirstOrThrow()).file_number);
      r = run(['bill-run', '--invoice-date', today, '--up-to', today, '--matter', zeroFile, '--run-id', 'cli-run-zero', '--approve', '--produce', '--json']);
      assert.equal(r.code, 0, r.out + r.err);
      const zeroRun = JSON.parse(r.out.trim().split('\n').pop()!) as { drafted: number; approved: number; leftAsDraft: { billId: string; fileNumber: string; reason: string }[]; produced?: number };
      const zeroBill = await db.db.selectFrom('billing_bill').select(['id', 'status', 'number', 'total_minor']).where('batch_id', '=', 'cli-run-zero').executeTakeFirstOrThrow();
      assert.deepEqual([zeroRun.drafted, zeroRun.approved, zeroBill.status, zeroBill.number, Number(zeroBill.total_minor)], [1, 0, 'draft', null, 0]);
      assert.deepEqual(zeroRun.leftAsDraft, [{ billId: zeroBill.id, fileNumber: zeroFile, reason: 'totals nothing: approve it by hand if it is to be sent' }]);
      assert.equal(zeroRun.produced, undefined, 'nothing to produce');
      r = run(['bill-run', '--invoice-date', today, '--up-to', today, '--matter', zeroFile, '--run-id', 'cli-run-zero', '--approve']);
      assert.equal(r.code, 0, r.out + r.err);
      assert.match(r.out, new RegExp(`^left as draft  ${zeroFile.replace('.', '\\.')}  bill ${zeroBill.id}  totals \\$0\\.00: approve it by hand if it is to be sent$`, 'm'), r.out);
      assert.match(r.out, /^0 approved, 0 refused, 1 left as draft \(totalling nothing\)\.$/m);
      // A run another server process is drafting now (its heartbeat fresh): --run-id takes up nothing, says so, exits 1.
      await db.db.updateTable('billing_batch').set({ status: 'running', heartbeat_at: new Date().toISOString() }).where('id', '=', 'cli-run-0001').execute();
      const audited = (await db.db.selectFrom('audit_log').select('id').execute()).length;
      r = run(['bill-run', '--invoice-date', today, '--up-to', today, '--terms', '10', '--run-id', 'cli-run-0001']);
      assert.equal(r.code, 1, r.out + r.err);
      assert.match(r.err, /Bill run cli-run-0001 is being drafted by another server process \(last heard from at [^)]+\): it was not started again here/);
      assert.equal((await db.db.selectFrom('billing_batch').select('status').where('id', '=', 'cli-run-0001').executeTakeFirstOrThrow()).status, 'running');
      assert.equal((await db.db.selectFrom('audit_log').select('id').execute()).length, audited, 'nothing audited');
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
