/**
 * Audit of the composer: a write-up or write-down the bill cannot apply (the timekeeper's time
 * is all no-charge, toggled out or waiting; no fixed charge of that type is billed) is refused
 * at its own field (422 `writeTo.timekeeper.<id>`, the composer's `wt_tk_<id>` input), not as
 * the bill's "options": the composer shows a write-to input for every time group, no-charge
 * ones too, and before the mend the clerk was told only "Please correct: options". A timekeeper
 * or charge type with nothing on the matter at all stays a malformed option ("options", as the
 * API test pins). Nothing is written.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AssertionError } from '../../src/shared/assert.ts';
import { composeBill, ComposeChoiceError } from '../../src/modules/billing/domain/compose.ts';
import type { ComposeFirm, ComposeItem, ComposeRequest } from '../../src/modules/billing/domain/compose.ts';
import { eachDialect } from '../support/db.ts';
import { withApp } from '../support/app.ts';
import type { Browser, Page } from '../support/app.ts';
import { createBillingCommands } from '../../src/modules/billing/index.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { ctx, firm, refused, setup } from './support.ts';
import { HOURLY_OPTIONS } from './compose-fixtures.ts';

const FIRM: ComposeFirm = { taxRates: [{ code: 'GST', basisPoints: 1_000 }], defaultFeeTaxCode: 'GST', taxRounding: 'per_line', paymentTermsDays: 30 };
const MATTER = { responsibleTimekeeperId: 'PP', currency: 'USD' };
const item = (id: string, kind: ComposeItem['kind'], extra: Partial<ComposeItem> = {}): ComposeItem => ({
  id, kind, date: '2026-02-10', timekeeperId: kind === 'time' ? 'AA' : null, code: kind === 'fixed_charge' ? 'LEASE' : null, description: id,
  minutes: kind === 'time' ? 60 : null, rateMinor: null, amountMinor: 10_000, behaviour: 'bill', taxCode: null, ...extra,
});
const REQ: ComposeRequest = { invoiceDate: '2026-02-28', upTo: '2026-02-28' };

test('audit composer: a write-to the bill cannot apply names its own field', () => {
  const cases: { name: string; items: ComposeItem[]; req: Partial<ComposeRequest>; field: string | null }[] = [
    { name: 'the timekeeper\'s time is all no-charge', items: [item('t1', 'time', { behaviour: 'no_charge' }), item('t2', 'time', { timekeeperId: 'PP' })], req: { writeTo: { timekeeper: { AA: 5_000 } } }, field: 'writeTo.timekeeper.AA' },
    { name: 'the timekeeper\'s time is toggled out', items: [item('t1', 'time'), item('t2', 'time', { timekeeperId: 'PP' })], req: { excludedIds: ['t1'], writeTo: { timekeeper: { AA: 5_000 } } }, field: 'writeTo.timekeeper.AA' },
    { name: 'time left to wait (no time on this bill)', items: [item('t1', 'time'), item('c1', 'fixed_charge')], req: { filters: { time: { none: true } }, writeTo: { timekeeper: { AA: 0 } } }, field: 'writeTo.timekeeper.AA' },
    { name: 'no fixed charge of the type billed', items: [item('t1', 'time'), item('c1', 'fixed_charge', { behaviour: 'no_charge' })], req: { writeTo: { chargeType: { LEASE: 1 } } }, field: 'writeTo.chargeType.LEASE' },
    // A timekeeper or charge type with nothing on the matter at all is a malformed option (the bill's "options"), not a group's input.
    { name: 'a timekeeper with no time here', items: [item('t1', 'time')], req: { writeTo: { timekeeper: { ZZ: 1 } } }, field: 'options' },
    { name: 'a charge type with no charge here', items: [item('t1', 'time')], req: { writeTo: { chargeType: { NOPE: 1 } } }, field: 'options' },
    { name: 'a group with billable time applies', items: [item('t1', 'time'), item('t2', 'time', { behaviour: 'no_charge' })], req: { writeTo: { timekeeper: { AA: 7_500 } } }, field: null },
  ];
  for (const c of cases) {
    const run = () => composeBill(MATTER, HOURLY_OPTIONS, FIRM, c.items, { ...REQ, ...c.req });
    if (c.field === null) {
      assert.equal(run().lines.find((l) => l.key === 't1')!.amountMinor, 7_500, c.name);
      continue;
    }
    if (c.field === 'options') assert.throws(run, (e: unknown) => e instanceof AssertionError && !(e instanceof ComposeChoiceError), c.name);
    else assert.throws(run, (e: unknown) => e instanceof ComposeChoiceError && e.field === c.field, c.name);
  }
});

eachDialect('audit composer: writing up or down a timekeeper whose time is all no-charge is refused at that field (command and page), nothing drafted', async (db) => {
  const s = await setup(db);
  const { partner, associate, matter } = await firm(s.cmds);
  await s.cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice' });
  await s.cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: associate.id, workDate: '2026-02-11', rawMinutes: 30, narrative: 'Courtesy call', behaviour: 'no_charge' });
  await s.drain();
  const e = await refused(s.billing.createDraft(ctx, {
    matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28', request: { writeTo: { timekeeper: { [associate.id]: 5_000 } } },
  }), 422);
  assert.deepEqual(Object.keys(e.fields), [`writeTo.timekeeper.${associate.id}`]);
  assert.equal((await db.db.selectFrom('billing_bill').select('id').execute()).length, 0, 'nothing drafted');
});

function postForm(b: Browser, path: string, pairs: [string, string][]): Promise<Page> {
  const body = new URLSearchParams(pairs);
  if (b.csrf) body.set('_csrf', b.csrf);
  return b.request('POST', path, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: body.toString() });
}

eachDialect('audit composer page: a write-to typed for a no-charge group comes back at its input (422), nothing drafted', async (db) => {
  await withApp(db, async (t) => {
    const cmds = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    createBillingCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const f = await firm(cmds);
    await cmds.recordTimeEntry(ctx, { matterId: f.matter.id, timekeeperId: f.partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice' });
    await cmds.recordTimeEntry(ctx, { matterId: f.matter.id, timekeeperId: f.associate.id, workDate: '2026-02-11', rawMinutes: 30, narrative: 'Courtesy call', behaviour: 'no_charge' });
    await t.runtime.relay.drain();
    await t.user('billing', { email: 'clerk@firm.test' });
    const b = t.browser();
    assert.equal((await b.login('clerk@firm.test')).status, 303);
    const page = await b.get(`/billing/matters/${f.matter.id}/compose?invoiceDate=2026-02-28`);
    assert.match(page.text, new RegExp(`name="wt_tk_${f.associate.id}"`), 'the no-charge group has a write-to input');
    // Its heading says its recorded figure is the chargeable lines' (none here), the no-charge line apart; the partner's has no such note.
    const heads = [...page.text.matchAll(/<h3>Time: ([^<]+) <small class="muted">([^<]+)<\/small><\/h3>/g)].map((m) => m[2]!);
    assert.equal(heads.length, 2, page.text.slice(0, 500));
    assert.ok(heads.some((h) => /^0:30 h, recorded \$0\.00 chargeable \(1 no-charge line apart\)$/.test(h)), heads.join(' | '));
    assert.ok(heads.some((h) => /^1:00 h, recorded \$[\d,.]+$/.test(h)), heads.join(' | '));
    const res = await postForm(b, `/billing/matters/${f.matter.id}/compose`, [['invoiceDate', '2026-02-28'], ['upTo', '2026-02-28'], [`wt_tk_${f.associate.id}`, '50.00']]);
    assert.equal(res.status, 422, res.text.slice(0, 1500));
    assert.match(res.text, new RegExp(`data-error-for="wt_tk_${f.associate.id}"`));
    assert.equal((await db.db.selectFrom('billing_bill').select('id').execute()).length, 0, 'nothing drafted');
  });
});
