/**
 * Mass billing mends from the audit, on both databases: Modify batch decides the every-cycle
 * fixed fee again for the new invoice date; foreign-currency bills are shown in their own
 * currency (list totals per currency, run page, API, bill-run); a WIP cap choice or a
 * disbursement code that names nothing is refused naming the field; a run id given again with
 * other choices is refused (409) while the same choices are the same run, and the form pages
 * are not kept by the browser.
 */
import assert from 'node:assert/strict';
import { billRun } from '../../src/cli/bill-run.ts';
import { createBillingCommands } from '../../src/modules/billing/commands.ts';
import { createMassBilling } from '../../src/modules/billing/mass-commands.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import type { MattersCommands } from '../../src/modules/matters/index.ts';
import { HttpError } from '../../src/shared/web/errors.ts';
import { withApp } from '../support/app.ts';
import type { Browser, TestApp } from '../support/app.ts';
import { eachDialect } from '../support/db.ts';
import { ok, postMany } from './web-support.ts';
import { ctx, firm, setup } from './support.ts';

const DATE = '2026-03-01';


async function waitForRun(b: Browser, id: string): Promise<string> {
  for (let i = 0; i < 400; i++) {
    const html = ok(await b.get(`/billing/mass/runs/${id}`));
    if (/data-status="done"/.test(html)) return html;
    assert.doesNotMatch(html, /data-status="failed"/, html);
    await new Promise((r) => setTimeout(r, 30));
  }
  assert.fail('the run did not finish');
}

/** The app's firm (USD) with its matters, a billing clerk signed in. */
async function webFirm(t: TestApp) {
  const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
  const f = await firm(cmds);
  const clerk = await t.user('billing');
  const b = t.browser();
  await b.login(clerk.email);
  return { cmds, f, b, clerk };
}

const filingFee = (cmds: MattersCommands, matterId: string, unitCostMinor: number, code = 'COURT') =>
  cmds.recordDisbursement(ctx, { matterId, incurredOn: '2026-02-12', code, unitCostMinor, taxCode: 'EXEMPT', description: 'Filing fee' });

eachDialect('modify batch: a new invoice date decides the every-cycle fixed fee again, as a run drafting on that date would', async (db) => {
  const s = await setup(db);
  const f = await firm(s.cmds);
  const m = createMassBilling({ db: db.db, clock: s.clock, relay: s.rt.relay }, s.billing);
  // Monthly fixed fees of 1,000.00, the cycle's bill due on 31 March; a filing fee each to bill.
  const fixedFee = async (name: string) => {
    const matter = await s.cmds.openMatter(ctx, { clientId: f.client.id, name, responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH', nextBillingDate: '2026-03-31' });
    await s.cmds.setBillingOptions(ctx, matter.id, { set: { arrangement: 'fixed_fee', quote: { amountMinor: 100_000 }, fixedFee: { mode: 'every_cycle', schedule: [] } } });
    await filingFee(s.cmds, matter.id, 5_000);
    return matter;
  };
  const early = await fixedFee('Drafted on 1 March, moved to 31 March');
  const cycle = await fixedFee('Drafted on 31 March, moved to 1 March');
  const given = await fixedFee('A fee the clerk gave');
  await s.drain();
  const run = async (id: string, invoiceDate: string, matterIds: string[]) => {
    await m.createRun(ctx, { id, invoiceDate, upTo: invoiceDate, matterIds });
    assert.equal((await m.runBatch(ctx, id)).draftedCount, matterIds.length);
    await s.drain();
  };
  await run('ff-run-0301', '2026-03-01', [early.id, given.id]);
  await run('ff-run-0331', '2026-03-31', [cycle.id]);
  const bill = async (matterId: string) => {
    const r = await db.db.selectFrom('billing_bill').select(['id']).where('matter_id', '=', matterId).where('status', '<>', 'deleted').orderBy('created_at', 'desc').executeTakeFirstOrThrow();
    return (await s.billing.findBill(r.id as string))!;
  };
  assert.deepEqual([(await bill(early.id)).totals.feesMinor, (await bill(early.id)).request.fixedFeeAmountMinor], [0, 0], 'not the cycle\'s bill: the fee is left off');
  assert.equal((await bill(cycle.id)).totals.feesMinor, 100_000);
  // The clerk gives one draft a fee of its own (500.00).
  const g = await bill(given.id);
  await s.billing.updateDraft(ctx, g.billId, { request: { ...g.request, fixedFeeAmountMinor: 50_000 }, expectedVersion: g.version });

  // Modify batch: the 1 March drafts move to 31 March (the cycle's date), the 31 March draft to 1 March.
  let out = await m.modifyDrafts(ctx, [(await bill(early.id)).billId, (await bill(given.id)).billId], { invoiceDate: '2026-03-31' });
  assert.ok(out.every((o) => o.ok), JSON.stringify(out));
  out = await m.modifyDrafts(ctx, [(await bill(cycle.id)).billId], { invoiceDate: '2026-03-01', upTo: '2026-03-01' });
  assert.ok(out.every((o) => o.ok), JSON.stringify(out));
  await s.drain();
  const moved = await bill(early.id);
  assert.equal(moved.invoiceDate, '2026-03-31');
  assert.equal(moved.totals.feesMinor, 100_000, 'now the cycle\'s bill: it carries the fee, as a run on 31 March would');
  assert.equal(moved.request.fixedFeeAmountMinor, undefined);
  const back = await bill(cycle.id);
  assert.equal(back.invoiceDate, '2026-03-01');
  assert.deepEqual([back.totals.feesMinor, back.request.fixedFeeAmountMinor], [0, 0], 'no longer the cycle\'s bill: the fee waits for it');
  assert.equal((await bill(given.id)).totals.feesMinor, 50_000, 'a fee the clerk gave stands');

  // Approved: the fee is billed once a cycle. The 31 March bill moves its matter's date a cycle on;
  // the 1 March bill leaves it, so the cycle's run bills March's fee, once.
  const approved = await m.approveMany(ctx, [moved.billId, back.billId]);
  assert.ok(approved.every((a) => a.ok), JSON.stringify(approved));
  await s.drain();
  const next = async (id: string) => (await db.db.selectFrom('matters_matter').select('next_billing_date').where('id', '=', id).executeTakeFirstOrThrow()).next_billing_date;
  assert.equal(await next(early.id), '2026-04-30');
  assert.equal(await next(cycle.id), '2026-03-31');
  await run('ff-run-0331b', '2026-03-31', [cycle.id]);
  const fees = (await db.db.selectFrom('billing_bill').select(['invoice_date', 'fees_minor']).where('matter_id', '=', cycle.id).where('status', '<>', 'deleted').orderBy('invoice_date').execute())
    .map((r) => [r.invoice_date, Number(r.fees_minor)]);
  assert.deepEqual(fees, [['2026-03-01', 0], ['2026-03-31', 100_000]]);
  await s.rt.relay.stop();
});

eachDialect('foreign-currency bills: WIP totalled per currency; the run page, the API and bill-run show each bill in its own currency', async (db) => {
  await withApp(db, async (t) => {
    const { cmds, f, b, clerk } = await webFirm(t);
    const yen = async (name: string, amount: number) => {
      const matter = await cmds.openMatter(ctx, { clientId: f.client.id, name, responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH', currency: 'JPY' });
      await filingFee(cmds, matter.id, amount);
      return matter;
    };
    const tokyo = await yen('Tokyo arbitration', 12_345);
    const osaka = await yen('Osaka lease', 20_000);
    await filingFee(cmds, f.matter.id, 10_000);
    await t.runtime.relay.drain();
    const mass = createMassBilling({ db: db.db, clock: t.clock, relay: t.runtime.relay }, createBillingCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay }));

    // The list: yen never adds to dollars.
    const list = await mass.eligible({ invoiceDate: DATE, upTo: DATE });
    assert.deepEqual(list.totals.wip, [{ currency: 'JPY', wipMinor: 32_345 }, { currency: 'USD', wipMinor: 10_000 }]);
    let html = ok(await b.get(`/billing/mass?invoiceDate=${DATE}&upTo=${DATE}`));
    const wip = /<span id="eligible-wip">([\s\S]*?)<\/span>\./.exec(html)![1]!;
    assert.equal(wip.replace(/<[^>]+>/g, ''), '¥32,345, $100.00');
    assert.match(wip, /data-currency="JPY" data-minor="32345"/);
    assert.match(wip, /data-currency="USD" data-minor="10000"/);

    // A run of the Tokyo and the dollar matter: the run page shows each bill in its currency.
    const runId = /name="runId" value="([^"]+)"/.exec(html)![1]!;
    const res = await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['runId', runId], ['scope', 'selected'], ['matterId', tokyo.id], ['matterId', f.matter.id], ['confirm', 'yes']]);
    assert.equal(res.status, 303, res.text);
    html = await waitForRun(b, runId);
    const row = (id: string) => html.split(`<tr data-matter="${id}">`)[1]!.split('</tr>')[0]!;
    assert.match(row(tokyo.id), /<td class="num" data-currency="JPY" data-minor="12345">¥12,345<\/td>/);
    assert.match(row(f.matter.id), /<td class="num" data-currency="USD" data-minor="10000">\$100\.00<\/td>/);

    // The API: each total a decimal in its bill's currency, the currency beside it.
    const token = await t.token(clerk.email);
    const api = await b.get(`/api/v1/bill-runs/${runId}`, { authorization: `Bearer ${token}`, accept: 'application/json' });
    assert.equal(api.status, 200, api.text);
    const totals = Object.fromEntries((api.json().matters as { matterId: string; total: string; currency: string }[]).map((x) => [x.matterId, [x.total, x.currency]]));
    assert.deepEqual(totals, { [tokyo.id]: ['12345', 'JPY'], [f.matter.id]: ['100.00', 'USD'] });

    // bill-run (as bin/lexbill runs it): the Osaka bill in yen.
    const lines: string[] = [];
    assert.equal(await billRun(t.runtime, ['--invoice-date', DATE, '--up-to', DATE, '--matter', osaka.fileNumber], (l) => lines.push(l)), 0);
    assert.ok(lines.some((l) => new RegExp(`^billed\\s+${osaka.fileNumber.replace('.', '\\.')}\\s+1 item\\(s\\)\\s+¥20,000\\s+bill `).test(l)), lines.join('\n'));
    const json: string[] = [];
    await billRun(t.runtime, ['--invoice-date', DATE, '--up-to', DATE, '--run-id', runId.slice(0, 8) + '-json', '--matter', tokyo.fileNumber, '--json'], (l) => json.push(l));
    assert.equal(JSON.parse(json.pop()!).drafted, 0, 'the Tokyo matter has its draft');
  });
});

eachDialect('mass billing choices: a WIP cap choice the form does not offer, or a disbursement code no disbursement has, is refused naming the field; nothing is billed', async (db) => {
  await withApp(db, async (t) => {
    const { cmds, f, b, clerk } = await webFirm(t);
    await cmds.updateMatter(ctx, f.matter.id, { wipCapMinor: 100_000 });
    await filingFee(cmds, f.matter.id, 10_000);
    await filingFee(cmds, f.matter.id, 1_500, 'COPY');
    await t.runtime.relay.drain();
    const q = `invoiceDate=${DATE}&upTo=${DATE}`;
    const nothing = async () => {
      assert.equal((await db.db.selectFrom('billing_batch').select('id').execute()).length, 0, 'no run');
      assert.equal((await db.db.selectFrom('billing_bill').select('id').execute()).length, 0, 'no bill');
    };

    // The WIP cap: "matter" (under its cap: not listed), "amount", or nothing; anything else is named.
    assert.match(ok(await b.get(`/billing/mass?${q}&cap=matter`)), /data-count="0"/);
    for (const cap of ['Matter', 'yes']) {
      const html = ok(await b.get(`/billing/mass?${q}&cap=${cap}`), 422);
      assert.match(html, /data-error-for="cap"><strong>WIP cap<\/strong> must be the matter's cap or an amount/);
      assert.doesNotMatch(html, /data-error-for="capAmount"/);
    }
    let html = ok(await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['cap', 'Matter'], ['runId', 'cap-choice-0001'], ['scope', 'all'], ['confirm', 'yes']]), 422);
    assert.match(html, /data-error-for="cap"/);
    await nothing();

    // A disbursement code no disbursement has (a typo) would leave every disbursement off: refused, naming the codes in use.
    html = ok(await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['disbCode', 'corut'], ['runId', 'disb-code-0001'], ['scope', 'all'], ['confirm', 'yes']]), 422);
    assert.match(html, /data-error-for="disbCode">no disbursement has code "CORUT" \(codes in use: COPY, COURT\)/);
    assert.match(html, /data-error-for="disbCode"/);
    await nothing();
    const token = await t.token(clerk.email);
    const api = await b.postJson('/api/v1/bill-runs', { id: 'disb-code-0002', invoiceDate: DATE, upTo: DATE, filters: { disbursements: { code: 'CORUT' } }, wait: true }, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(api.status, 422, api.text);
    // Named by the body's path (the form's name for it is disbCode).
    assert.deepEqual(Object.keys(api.json().error.fields), ['filters.disbursements.code']);
    // So are the others the run checks: unknown ids, ranges that end before they start.
    const named = async (filters: Record<string, unknown>) => {
      const res = await b.postJson('/api/v1/bill-runs', { id: 'named-paths-0001', invoiceDate: DATE, upTo: DATE, filters, wait: true }, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 422, res.text);
      return Object.keys(res.json().error.fields);
    };
    assert.deepEqual(await named({ time: { timekeeperId: 'no-such-timekeeper' } }), ['filters.time.timekeeperId']);
    assert.deepEqual(await named({ clientId: 'no-such-client' }), ['filters.clientId']);
    assert.deepEqual(await named({ disbursements: { from: '2026-02-10', to: '2026-02-01' } }), ['filters.disbursements.to']);
    assert.deepEqual(await named({ time: { from: '2026-02-10', to: '2026-02-01' } }), ['filters.time.to']);
    // Given empty, a filter is no filter at all: refused too, never a run over every matter or disbursement.
    for (const filters of [{ disbursements: { code: '' } }, { billingCycle: '' }]) {
      const res = await b.postJson('/api/v1/bill-runs', { id: 'empty-filter-0001', invoiceDate: DATE, upTo: DATE, filters, wait: true }, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 422, res.text);
      assert.deepEqual(Object.keys(res.json().error.fields), [Object.keys(filters)[0] === 'billingCycle' ? 'filters.billingCycle' : 'filters.disbursements.code']);
    }
    await nothing();
    // A code in use is taken: only its disbursements are billed.
    const res = await postMany(b, '/billing/mass/runs', [['invoiceDate', DATE], ['upTo', DATE], ['disbCode', 'copy'], ['runId', 'disb-code-0003'], ['scope', 'all'], ['confirm', 'yes']]);
    assert.equal(res.status, 303, res.text);
    await waitForRun(b, 'disb-code-0003');
    assert.deepEqual((await db.db.selectFrom('billing_bill').select('disbursements_minor').execute()).map((r) => Number(r.disbursements_minor)), [1_500]);
  });
});

eachDialect('a run id given again: the same choices are the same run, other choices are refused (409) with a fresh form; the form pages are not kept', async (db) => {
  await withApp(db, async (t) => {
    const { cmds, f, b, clerk } = await webFirm(t);
    const other = await cmds.openMatter(ctx, { clientId: f.client.id, name: 'Matter B', responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH' });
    for (const id of [f.matter.id, other.id]) await filingFee(cmds, id, 10_000);
    await t.runtime.relay.drain();
    const base: [string, string][] = [['invoiceDate', DATE], ['upTo', DATE]];

    // The list is not kept by the browser: Back fetches a fresh run id. The confirmation is (Back from the run page
    // shows it rather than "Confirm Form Resubmission"): its run id is the run's, so confirming it again is that run.
    let res = await b.get(`/billing/mass?invoiceDate=${DATE}&upTo=${DATE}`);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const runId = /name="runId" value="([^"]+)"/.exec(res.text)![1]!;
    const pick = (id: string, extra: [string, string][] = []): [string, string][] => [...base, ['runId', runId], ['scope', 'selected'], ['matterId', id], ...extra];
    res = await postMany(b, '/billing/mass/runs', pick(f.matter.id));
    assert.match(ok(res), /Bill 1 matter\(s\)\?/);
    assert.equal(res.headers.get('cache-control'), 'private, no-cache');
    res = await postMany(b, '/billing/mass/runs', pick(f.matter.id, [['confirm', 'yes']]));
    assert.equal(res.status, 303, res.text);
    await waitForRun(b, runId);
    // A double click (the same form again) is the same run.
    res = await postMany(b, '/billing/mass/runs', pick(f.matter.id, [['confirm', 'yes']]));
    assert.equal(res.location, `/billing/mass/runs/${runId}`);

    // Back to the list as the browser had it (the same run id), matter B ticked: refused before the
    // confirmation and at it, with a link to the earlier run and a form with a new run id.
    for (const extra of [[], [['confirm', 'yes']]] as [string, string][][]) {
      res = await postMany(b, '/billing/mass/runs', pick(other.id, extra));
      const html = ok(res, 409);
      assert.match(html, new RegExp(`data-refusal>Run: was already used for another bill run \\(invoice date ${DATE}, up to ${DATE}, 1 matter\\(s\\) picked\\)`));
      assert.match(html, new RegExp(`<a href="/billing/mass/runs/${runId}" data-action="earlier-run">`));
      const fresh = /name="runId" value="([^"]+)"/.exec(html)![1]!;
      assert.notEqual(fresh, runId);
      assert.equal(res.headers.get('cache-control'), 'no-store');
    }
    // Other dates or terms under the same id are other choices too.
    assert.equal((await postMany(b, '/billing/mass/runs', pick(f.matter.id, [['terms', '7'], ['confirm', 'yes']]))).status, 409);
    assert.equal((await postMany(b, '/billing/mass/runs', [...base, ['runId', runId], ['scope', 'all'], ['confirm', 'yes']])).status, 409);
    const drafts = await db.db.selectFrom('billing_bill').select(['matter_id', 'batch_id']).execute();
    assert.deepEqual(drafts.map((d) => [d.matter_id, d.batch_id]), [[f.matter.id, runId]], 'nothing billed by a refused run');
    assert.equal((await db.db.selectFrom('billing_batch_matter').select('matter_id').where('batch_id', '=', runId).execute()).length, 1);

    // With the fresh form's run id, B is billed.
    const html = ok(await b.get(`/billing/mass?invoiceDate=${DATE}&upTo=${DATE}`));
    const next = /name="runId" value="([^"]+)"/.exec(html)![1]!;
    res = await postMany(b, '/billing/mass/runs', [...base, ['runId', next], ['scope', 'selected'], ['matterId', other.id], ['confirm', 'yes']]);
    assert.equal(res.status, 303, res.text);
    await waitForRun(b, next);
    assert.equal((await db.db.selectFrom('billing_bill').select('id').where('matter_id', '=', other.id).execute()).length, 1);

    // The command itself: the same choices however built (keys in another order) are the same run.
    const mass = createMassBilling({ db: db.db, clock: t.clock, relay: t.runtime.relay }, createBillingCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay }));
    const filters = { disbursements: { from: '2026-01-01', code: 'COURT' }, clientId: f.client.id };
    const first = await mass.createRun(ctx, { id: 'cmd-run-0001', invoiceDate: DATE, upTo: DATE, filters, paymentTermsDays: 10 });
    const again = await mass.createRun(ctx, { id: 'cmd-run-0001', upTo: DATE, invoiceDate: DATE, paymentTermsDays: 10, filters: { clientId: f.client.id, disbursements: { code: 'COURT', from: '2026-01-01' } } });
    assert.equal(again.createdAt, first.createdAt);
    const e = await mass.createRun(ctx, { id: 'cmd-run-0001', invoiceDate: DATE, upTo: DATE, filters: { ...filters, disbursements: { code: 'COURT' } }, paymentTermsDays: 10 }).then(() => null, (x: unknown) => x);
    assert.ok(e instanceof HttpError && e.status === 409 && e.fields.id, String(e));
    const token = await t.token(clerk.email);
    const api = await b.postJson('/api/v1/bill-runs', { id: 'cmd-run-0001', invoiceDate: DATE, upTo: DATE, paymentTermsDays: 10 }, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(api.status, 409, api.text);
    assert.equal(api.json().error.code, 'conflict');
  });
});

eachDialect('an amount cap is in the firm\'s currency: a matter billed in yen is not measured against dollars (listed neither for the WIP cap nor for time "To a cap"), and "why not listed" says so', async (db) => {
  await withApp(db, async (t) => {
    const { cmds, f, b } = await webFirm(t);
    // 90,000 yen of WIP: over 200.00 as a number of minor units (20,000), but yen are not cents.
    const tokyo = await cmds.openMatter(ctx, { clientId: f.client.id, name: 'Tokyo arbitration', responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH', currency: 'JPY' });
    await filingFee(cmds, tokyo.id, 90_000);
    // Ten hours at 30,000 yen an hour (a rate in the matter's currency).
    await cmds.recordTimeEntry(ctx, { matterId: tokyo.id, timekeeperId: f.partner.id, workDate: '2026-02-10', rawMinutes: 600, narrative: 'Hearing', override: { rateMinor: 30_000, reason: 'Agreed yen rate' } });
    await filingFee(cmds, f.matter.id, 30_000);
    await cmds.recordTimeEntry(ctx, { matterId: f.matter.id, timekeeperId: f.partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Call' });
    await t.runtime.relay.drain();
    const q = `invoiceDate=${DATE}&upTo=${DATE}`;
    const listed = (html: string) => [...html.matchAll(/<tr[^>]*data-matter="([0-9a-f-]{36})"/g)].map((m) => m[1]!);

    assert.deepEqual(listed(ok(await b.get(`/billing/mass?${q}`))).sort(), [f.matter.id, tokyo.id].sort());
    let html = ok(await b.get(`/billing/mass?${q}&cap=amount&capAmount=200.00`));
    assert.deepEqual(listed(html), [f.matter.id], 'the dollar matter is over $200.00; the yen matter is not compared');
    assert.match(html, /WIP amount \(USD\)/);
    html = ok(await b.get(`/billing/mass/why?${q}&cap=amount&capAmount=200.00&lookup=${tokyo.fileNumber}`));
    assert.match(html, /the matter is billed in JPY; the amount given is in USD/);

    // Time "To a cap" by amount: the yen matter's time is not let through either.
    const mass = createMassBilling({ db: db.db, clock: t.clock, relay: t.runtime.relay }, createBillingCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay }));
    const rows = await mass.previewRows((await mass.candidates({ invoiceDate: DATE, upTo: DATE })).filter((r) => r.eligible),
      { invoiceDate: DATE, upTo: DATE, time: { cap: { kind: 'amount', amountMinor: 10_000, currency: 'USD' } } }, {});
    assert.equal(rows.get(tokyo.id)!.timeWaits, true, 'the yen matter\'s time waits');
    assert.equal(rows.get(f.matter.id)!.timeWaits, false, 'the dollar matter has $300.00 of time, over $100.00');
  });
});

eachDialect('a matter billed in another currency is not billed on amounts it takes from the firm\'s defaults (a $50.00 default discount is not 5,000 yen): refused with the reason until it sets them itself', async (db) => {
  await withApp(db, async (t) => {
    const { cmds, f, b } = await webFirm(t);
    await cmds.updateFirmSettings(ctx, { matterDefaults: { discount: { kind: 'fixed', percentBasisPoints: 0, amountMinor: 5_000 } } });
    const tokyo = await cmds.openMatter(ctx, { clientId: f.client.id, name: 'Tokyo arbitration', responsibleTimekeeperId: f.partner.id, openedOn: '2025-06-01', billingCycle: 'MONTH', currency: 'JPY' });
    await cmds.recordTimeEntry(ctx, { matterId: tokyo.id, timekeeperId: f.partner.id, workDate: '2026-02-10', rawMinutes: 600, narrative: 'Hearing', override: { rateMinor: 30_000, reason: 'Agreed yen rate' } });
    await cmds.recordTimeEntry(ctx, { matterId: f.matter.id, timekeeperId: f.partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Call' });
    await t.runtime.relay.drain();
    const billing = createBillingCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const q = `invoiceDate=${DATE}&upTo=${DATE}`;
    const listed = (html: string) => [...html.matchAll(/<tr[^>]*data-matter="([0-9a-f-]{36})"/g)].map((m) => m[1]!);
    const reason = /The matter bills in JPY, but its fixed discount comes from the firm's defaults, in USD: set it on the matter's own billing options, in JPY/;

    assert.deepEqual(listed(ok(await b.get(`/billing/mass?${q}`))), [f.matter.id], 'the yen matter is not offered');
    assert.match(ok(await b.get(`/billing/mass/why?${q}&lookup=${tokyo.fileNumber}`)), reason);
    await assert.rejects(billing.createDraft(ctx, { matterId: tokyo.id, invoiceDate: DATE, upTo: DATE }), (e: HttpError) => e.status === 409 && reason.test(e.message));
    // The dollar matter takes the default discount as it is.
    const usd = await billing.createDraft(ctx, { matterId: f.matter.id, invoiceDate: DATE, upTo: DATE });
    assert.equal(usd.totals.discountMinor, 5_000);

    // Its own discount, in yen: billed, with that discount and no other.
    await cmds.setBillingOptions(ctx, tokyo.id, { set: { discount: { kind: 'fixed', percentBasisPoints: 0, amountMinor: 3_000 } } });
    await t.runtime.relay.drain();
    assert.deepEqual(listed(ok(await b.get(`/billing/mass?${q}`))), [tokyo.id], 'offered now (the dollar matter has its draft)');
    const yen = await billing.createDraft(ctx, { matterId: tokyo.id, invoiceDate: DATE, upTo: DATE });
    assert.equal(yen.currency, 'JPY');
    assert.equal(yen.totals.discountMinor, 3_000);
  });
});

eachDialect('an invoice date with a mistyped year (3026, 1026) is refused naming the field wherever a bill is dated: the mass billing page and its run, the API, one draft, a draft changed, modify batch; nothing is billed', async (db) => {
  await withApp(db, async (t) => {
    const { cmds, f, b, clerk } = await webFirm(t);
    await filingFee(cmds, f.matter.id, 10_000);
    await t.runtime.relay.drain();
    const count = async (table: string) => (await db.db.selectFrom(table as 'billing_bill').select('id').execute()).length;
    const nothing = async () => {
      assert.equal(await count('billing_batch'), 0, 'no run');
      assert.equal(await count('billing_bill'), 0, 'no bill');
    };
    // The app's clock reads 2026-03-02: a bill may be dated 2016-03-02 to 2027-03-03.
    for (const date of ['3026-03-01', '2027-03-04', '1026-03-01', '2016-03-01']) {
      const html = ok(await b.get(`/billing/mass?invoiceDate=${date}&upTo=${DATE}`), 422);
      assert.match(html, /data-error-for="invoiceDate"[^>]*>(<strong>[^<]*<\/strong>)? ?must be on or (before|after)/, html.slice(0, 2000));
      assert.match(ok(await postMany(b, '/billing/mass/runs', [['invoiceDate', date], ['upTo', DATE], ['runId', `far-date-${date}`], ['scope', 'all'], ['confirm', 'yes']]), 422), /data-error-for="invoiceDate"/);
    }
    await nothing();
    const token = await t.token(clerk.email);
    const auth = { headers: { authorization: `Bearer ${token}` } };
    const run = await b.postJson('/api/v1/bill-runs', { id: 'far-date-api-1', invoiceDate: '3026-03-01', upTo: DATE, wait: true }, auth);
    assert.equal(run.status, 422, run.text);
    assert.deepEqual(Object.keys(run.json().error.fields), ['invoiceDate']);
    const one = await b.postJson('/api/v1/bills', { matterId: f.matter.id, invoiceDate: '3026-03-01', upTo: DATE }, auth);
    assert.equal(one.status, 422, one.text);
    assert.deepEqual(Object.keys(one.json().error.fields), ['invoiceDate']);
    await nothing();

    // A draft dated in range, then moved out of it: refused, the draft as it was.
    const billing = createBillingCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const mass = createMassBilling({ db: db.db, clock: t.clock, relay: t.runtime.relay }, billing);
    const edge = await billing.createDraft(ctx, { matterId: f.matter.id, invoiceDate: '2027-03-03', upTo: DATE });
    await billing.deleteDraft(ctx, edge.billId);
    await t.runtime.relay.drain();
    const d = await billing.createDraft(ctx, { matterId: f.matter.id, invoiceDate: DATE, upTo: DATE });
    await assert.rejects(billing.updateDraft(ctx, d.billId, { invoiceDate: '3026-03-01' }), (e: unknown) => e instanceof HttpError && e.status === 422 && Object.keys(e.fields).join() === 'invoiceDate');
    await assert.rejects(mass.modifyDrafts(ctx, [d.billId], { invoiceDate: '3026-03-01' }), (e: unknown) => e instanceof HttpError && e.status === 422 && Object.keys(e.fields).join() === 'invoiceDate');
    const after = (await billing.findBill(d.billId))!;
    assert.equal(after.invoiceDate, DATE);
    assert.equal(after.version, d.version);
  });
});

eachDialect('the mass billing list names a client, timekeeper or cycle the firm does not have, and an expenses-only value the checkbox does not send (422), rather than listing every matter unfiltered', async (db) => {
  await withApp(db, async (t) => {
    const { cmds, f, b } = await webFirm(t);
    await filingFee(cmds, f.matter.id, 10_000);
    await t.runtime.relay.drain();
    const q = `invoiceDate=${DATE}&upTo=${DATE}`;
    const ghost = '11111111-2222-7333-8444-555555555555';
    for (const [field, value, words] of [
      ['client', '99999', /no client with this number or name/], ['responsible', ghost, /no timekeeper with id/], ['billingTk', ghost, /no timekeeper with id/],
      ['timeTk', ghost, /no timekeeper with id/], ['cycle', 'FORTNIGHT', /no matter has billing cycle "FORTNIGHT" \(cycles in use: MONTH\)/], ['expensesOnly', 'maybe', /must be ticked/],
    ] as const) {
      const html = ok(await b.get(`/billing/mass?${q}&${field}=${value}`), 422);
      assert.match(html, new RegExp(`<span class="field-error" data-error-for="${field}">`), field);
      assert.match(html, words, field);
      assert.match(html, /data-count="0"/, `${field}: nothing listed`);
    }
    // The same choices, known: listed.
    for (const [field, value] of [['client', String(f.client.clientNumber)], ['clientId', f.client.id], ['responsible', f.partner.id], ['timeTk', f.partner.id], ['cycle', 'MONTH']] as const) {
      assert.match(ok(await b.get(`/billing/mass?${q}&${field}=${value}`)), /data-count="1"/, field);
    }
  });
});
