/**
 * Property, on both databases: random sequences of draft, update, delete, approve, revert,
 * finalise and re-draft over a few matters with random WIP (recorded through the REAL
 * matters commands, some of it while bills are in flight), with the relay delivering at
 * random points. Whatever happens:
 *  - no item is ever on two live bills, and none is lost (every recorded item is unbilled
 *    or on exactly one live bill);
 *  - every live bill's total is the sum of its lines and their taxes, and its allocation
 *    sums to its net fees; numbers are gapless; a matter has one draft at most;
 *  - every refusal is a 409 or 422 with a reason, never anything else;
 *  - once the relay has delivered everything, matters' statuses follow the bills
 *    (draft bill: draft; approved or finalised: billed; on no bill: unbilled).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { eachDialect } from '../support/db.ts';
import type { Bill } from '../../src/modules/billing/index.ts';
import { HttpError } from '../../src/shared/web/errors.ts';
import { assertBillInvariants, ctx, firm, mattersStatus, setup } from './support.ts';
import { holderColumn } from '../../src/modules/billing/store.ts';

const dayArb = fc.integer({ min: 1, max: 28 }).map((d) => `2026-02-${String(d).padStart(2, '0')}`);
const wipArb = fc.oneof(
  fc.record({ kind: fc.constant('time' as const), tk: fc.integer({ min: 0, max: 1 }), date: dayArb, minutes: fc.integer({ min: 6, max: 300 }), behaviour: fc.constantFrom('bill' as const, 'bill' as const, 'no_charge' as const, 'hide' as const) }),
  fc.record({ kind: fc.constant('disbursement' as const), date: dayArb, cost: fc.integer({ min: 0, max: 100_000 }), tax: fc.constantFrom('SALES', 'EXEMPT') }),
);
const opArb = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('draft' as const), m: fc.nat(), upTo: fc.oneof(dayArb, fc.constant('2026-02-28')), exclude: fc.array(fc.nat(), { maxLength: 3 }), discount: fc.integer({ min: 0, max: 3_000 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('update' as const), m: fc.nat(), upTo: fc.option(dayArb, { nil: undefined }), exclude: fc.array(fc.nat(), { maxLength: 3 }), writeTk: fc.option(fc.integer({ min: 0, max: 200_000 }), { nil: undefined }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), m: fc.nat(), b: fc.nat(), fit: fc.boolean() }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('approve' as const), m: fc.nat(), b: fc.nat(), fit: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('revert' as const), m: fc.nat(), b: fc.nat(), fit: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('finalise' as const), m: fc.nat(), b: fc.nat(), fit: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('redraft' as const), m: fc.nat(), b: fc.nat(), fit: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('record' as const), m: fc.nat(), item: wipArb }) },
  { weight: 2, arbitrary: fc.constant({ op: 'drain' as const }) },
);

eachDialect('property: items are never on two live bills nor lost; totals and allocations hold; matters follows', async (db) => {
  const s = await setup(db);
  const { partner, associate, client } = await firm(s.cmds);
  const tks = [partner.id, associate.id];
  let run = 0;
  const stats = { ok: 0, refused: 0, approved: 0 };
  const reasons = new Map<string, number>();
  await fc.assert(fc.asyncProperty(
    fc.array(fc.array(wipArb, { minLength: 1, maxLength: 6 }), { minLength: 2, maxLength: 3 }),
    fc.array(opArb, { minLength: 1, maxLength: 18 }),
    async (initial, ops) => {
      run++;
      const matters: string[] = [];
      const recorded: string[] = [];
      const record = async (matterId: string, w: (typeof initial)[number][number]) => {
        const r = w.kind === 'time'
          ? await s.cmds.recordTimeEntry(ctx, { matterId, timekeeperId: tks[w.tk]!, workDate: w.date, rawMinutes: w.minutes, narrative: `work ${w.minutes}`, behaviour: w.behaviour })
          : await s.cmds.recordDisbursement(ctx, { matterId, incurredOn: w.date, code: 'COURT', unitCostMinor: w.cost, taxCode: w.tax, description: `cost ${w.cost}` });
        recorded.push(r.id);
      };
      for (const [i, items] of initial.entries()) {
        const m = await s.cmds.openMatter(ctx, { clientId: client.id, name: `Property ${run}.${i}`, responsibleTimekeeperId: partner.id });
        matters.push(m.id);
        for (const w of items) await record(m.id, w);
      }
      await s.drain();
      /** A bill of the matter; with `fit`, one whose status the action applies to when there is one. */
      const FROM = { delete: ['draft', 'approved', 'finalised'], approve: ['draft'], revert: ['approved'], finalise: ['approved'], redraft: ['finalised'] };
      const pickBill = async (m: number, b: number, op: keyof typeof FROM, fit: boolean) => {
        const list = await s.billing.listBills(matters[m % matters.length]!);
        const fitting = list.filter((x) => FROM[op].includes(x.status));
        const from = fit && fitting.length ? fitting : list;
        return from.length ? from[b % from.length]! : null;
      };
      for (const op of ops) {
        let returned: Bill | null = null;
        try {
          switch (op.op) {
            case 'draft': {
              const matterId = matters[op.m % matters.length]!;
              const offered = await s.reads.unbilledWip(matterId);
              const exclude = offered.length ? op.exclude.map((n) => offered[n % offered.length]!.id) : [];
              returned = await s.billing.createDraft(ctx, {
                matterId, invoiceDate: '2026-02-28', upTo: op.upTo,
                request: { excludedIds: exclude, ...(op.discount ? { discount: { kind: 'percentage', percentBasisPoints: op.discount, amountMinor: 0 } } : {}) },
              });
              break;
            }
            case 'update': {
              const matterId = matters[op.m % matters.length]!;
              const draft = (await s.billing.listBills(matterId)).find((b) => b.status === 'draft');
              if (!draft) continue;
              const candidates = [...draft.items.map((i) => i.id), ...(await s.reads.unbilledWip(matterId)).map((w) => w.id)];
              const exclude = candidates.length ? op.exclude.map((n) => candidates[n % candidates.length]!) : [];
              const tk = draft.lines.find((l) => l.kind === 'time' && !l.noCharge)?.timekeeperId;
              returned = await s.billing.updateDraft(ctx, draft.billId, {
                ...(op.upTo ? { upTo: op.upTo } : {}),
                request: { excludedIds: exclude, ...(tk && op.writeTk !== undefined ? { writeTo: { timekeeper: { [tk]: op.writeTk } } } : {}) },
              });
              break;
            }
            case 'delete': case 'approve': case 'revert': case 'finalise': case 'redraft': {
              const bill = await pickBill(op.m, op.b, op.op, op.fit);
              if (!bill) continue;
              const fn = { delete: s.billing.deleteBill, approve: s.billing.approve, revert: s.billing.revert, finalise: s.billing.finalise, redraft: s.billing.redraft }[op.op];
              returned = await fn(ctx, bill.billId);
              if (op.op === 'approve') stats.approved++;
              break;
            }
            case 'record': await record(matters[op.m % matters.length]!, op.item); break;
            case 'drain': await s.drain(); break;
          }
          stats.ok++;
          if (returned) assert.deepEqual(await s.billing.findBill(returned.billId), returned, 'a command returns the bill as stored');
        } catch (e) {
          // A refusal names its reason; anything else is a bug.
          if (!(e instanceof HttpError) || (e.status !== 409 && e.status !== 422)) throw e;
          assert.ok(e.message.length > 0);
          stats.refused++;
          const key = e.message.replace(/[0-9a-f-]{36}|\d[\d.,-]*/g, '#');
          reasons.set(key, (reasons.get(key) ?? 0) + 1);
        }
        await assertBillInvariants(db.db, s.billing, matters);
      }
      // Once everything is delivered: nothing lost (every recorded item is in the copy, on no
      // bill or on one live bill) and matters' statuses follow the bills.
      await s.drain();
      await assertBillInvariants(db.db, s.billing, matters);
      const copy = await db.db.selectFrom('billing_wip').select(['id', holderColumn()]).where('matter_id', 'in', matters).execute() as { id: string; bill_id: string | null }[];
      assert.deepEqual(copy.map((c) => c.id).sort(), [...recorded].sort(), 'every recorded item is still there');
      const status = new Map<string, string>();
      for (const m of matters) for (const b of await s.billing.listBills(m)) for (const i of b.items) status.set(i.id, b.status === 'draft' ? 'draft' : 'billed');
      const expected = Object.fromEntries(recorded.map((id) => [id, status.get(id) ?? 'unbilled']));
      assert.deepEqual(await mattersStatus(db.db, recorded), expected, 'matters follows the bills');
      // And billing offers exactly the items on no bill.
      const offered = new Set<string>();
      for (const m of matters) for (const w of await s.reads.unbilledWip(m)) offered.add(w.id);
      assert.deepEqual([...offered].sort(), copy.filter((c) => c.bill_id === null).map((c) => c.id).sort());
    },
  ), {
    numRuns: Number(process.env.BILLING_BILLS_PROPERTY_RUNS ?? 20),
    // One run always walks the whole life of a bill, whatever the random ones draw.
    examples: [[
      [
        [{ kind: 'time', tk: 0, date: '2026-02-03', minutes: 60, behaviour: 'bill' }, { kind: 'disbursement', date: '2026-02-04', cost: 1_000, tax: 'SALES' }],
        [{ kind: 'time', tk: 1, date: '2026-02-05', minutes: 90, behaviour: 'bill' }, { kind: 'time', tk: 0, date: '2026-02-06', minutes: 30, behaviour: 'no_charge' }],
      ],
      [
        { op: 'draft', m: 0, upTo: '2026-02-28', exclude: [1], discount: 1_000 },
        { op: 'update', m: 0, upTo: undefined, exclude: [], writeTk: 5_000 },
        { op: 'approve', m: 0, b: 0, fit: true },
        { op: 'draft', m: 1, upTo: '2026-02-28', exclude: [], discount: 0 },
        { op: 'drain' },
        { op: 'finalise', m: 0, b: 0, fit: true },
        { op: 'record', m: 0, item: { kind: 'time', tk: 1, date: '2026-02-07', minutes: 12, behaviour: 'bill' } },
        { op: 'redraft', m: 0, b: 0, fit: true },
        { op: 'approve', m: 1, b: 0, fit: true },
        { op: 'revert', m: 1, b: 0, fit: true },
        { op: 'delete', m: 1, b: 0, fit: true },
        { op: 'drain' },
        { op: 'approve', m: 0, b: 0, fit: true },
        { op: 'delete', m: 0, b: 0, fit: true },
        { op: 'draft', m: 0, upTo: '2026-02-28', exclude: [], discount: 0 },
      ],
    ]],
  });
  if (process.env.BILLS_STATS) console.log(JSON.stringify(stats), [...reasons]);
  assert.ok(stats.ok >= 15 && stats.approved >= 3, `the runs did things (${JSON.stringify(stats)})`);
}, { timeout: 600_000 });
