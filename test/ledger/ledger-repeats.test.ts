/**
 * Repeated money forms over HTTP on both databases: the receipt form and the bill's write-off
 * form carry an idempotency key rendered when the form is shown (kept when it is shown again
 * after a refusal), so the same form posted twice, or five times at once, is one receipt or one
 * write-off; and the per-bill write-off limit counts everything written off the bill, checked
 * under the bill's lock, so parallel write-offs cannot together pass it (the bulk write-off of
 * small balances keeps to the same limit).
 */
import assert from 'node:assert/strict';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { toDecimalString } from '../../src/shared/money.ts';
import type { Page, TestApp } from '../support/app.ts';
import { unescapeHtml, withApp } from '../support/app.ts';
import { eachDialect } from '../support/db.ts';
import { assertLedgerInvariants, billedWithAdmin, ctx, refused } from './support.ts';


const hidden = (p: Page, name: string): string => {
  const m = new RegExp(`<input type="hidden" name="${name}" value="([^"]*)">`).exec(p.text);
  assert.ok(m && m[1], `a hidden ${name} field with a value`);
  return m[1]!;
};

async function billRow(t: TestApp, id: string) {
  const r = await t.db.db.selectFrom('ledger_bill').select(['total_minor', 'discount_reversed_minor', 'paid_minor', 'written_off_minor']).where('id', '=', id).executeTakeFirstOrThrow();
  const paid = Number(r.paid_minor);
  const writtenOff = Number(r.written_off_minor);
  return { paid, writtenOff, outstanding: Number(r.total_minor) + Number(r.discount_reversed_minor) - paid - writtenOff };
}
const countOf = async (t: TestApp, table: 'ledger_receipt' | 'ledger_write_off', billId: string) =>
  Number((await t.db.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).where('bill_id', '=', billId).executeTakeFirstOrThrow()).n);
const journals = async (t: TestApp, prefix: string) =>
  Number((await t.db.db.selectFrom('ledger_journal').select((eb) => eb.fn.countAll<number>().as('n')).where('prefix', '=', prefix).executeTakeFirstOrThrow()).n);
const audits = async (t: TestApp, action: string) =>
  Number((await t.db.db.selectFrom('audit_log').select((eb) => eb.fn.countAll<number>().as('n')).where('action', '=', action).executeTakeFirstOrThrow()).n);

/** The address a post led to, without the key its notes are kept under (`?done=KEY`: each post keeps its own). */
const path = (location: string | null | undefined): string | undefined => location?.replace(/\?done=[\w-]{16}$/, '');

eachDialect('the receipt form posted twice, or five times at once, records one receipt', async (db) => {
  await withApp(db, async (t) => {
    const { bill, admin } = await billedWithAdmin(t);
    const before = await billRow(t, bill.billId);

    // One load of the form; the same POST twice, then five at once: one receipt, one RJ journal.
    let p = await admin.get(`/ledger/receipts/new?bill=${bill.billId}`);
    assert.equal(p.status, 200);
    const key = hidden(p, 'receiptId');
    const fields = { bill: bill.billId, client: hidden(p, 'client'), receivedOn: '2026-03-05', amount: '100.00', method: 'bank_transfer', order: 'this_bill_first', discount: 'auto', receiptId: key };
    const first = await admin.post('/ledger/receipts', fields);
    assert.equal(first.status, 303, first.text.slice(0, 500));
    assert.equal(path(first.location), `/ledger/receipts/${key}`);
    const again = await admin.post('/ledger/receipts', fields);
    assert.equal(again.status, 303, again.text.slice(0, 500));
    assert.equal(path(again.location), path(first.location), 'the repeat answers like the first');
    const five = await Promise.all(Array.from({ length: 5 }, () => admin.post('/ledger/receipts', fields)));
    assert.deepEqual(five.map((r) => [r.status, path(r.location)]), five.map(() => [303, path(first.location)]));
    assert.equal(await countOf(t, 'ledger_receipt', bill.billId), 1);
    assert.equal(await journals(t, 'RJ'), 1);
    assert.equal(await audits(t, 'ledger.receipt_recorded'), 1);
    assert.equal((await billRow(t, bill.billId)).paid, before.paid + 10_000, 'the balance is reduced once');

    // A fresh load of the form is a fresh key; its first POST is five parallel requests: one receipt.
    p = await admin.get(`/ledger/receipts/new?bill=${bill.billId}`);
    const key2 = hidden(p, 'receiptId');
    assert.notEqual(key2, key);
    const race = await Promise.all(Array.from({ length: 5 }, () => admin.post('/ledger/receipts', { ...fields, amount: '25.00', receiptId: key2 })));
    assert.deepEqual(race.map((r) => [r.status, path(r.location)]), race.map(() => [303, `/ledger/receipts/${key2}`]), race.map((r) => r.text.slice(0, 300)).join('\n'));
    assert.equal(await countOf(t, 'ledger_receipt', bill.billId), 2);
    assert.equal(await journals(t, 'RJ'), 2);
    assert.equal((await billRow(t, bill.billId)).paid, before.paid + 12_500);

    // A refused form is shown again with its key; the corrected form then records once.
    p = await admin.get(`/ledger/receipts/new?bill=${bill.billId}`);
    const key3 = hidden(p, 'receiptId');
    p = await admin.post('/ledger/receipts', { ...fields, amount: '12.345', receiptId: key3 });
    assert.equal(p.status, 422);
    assert.equal(hidden(p, 'receiptId'), key3, 'the key is kept when the form is shown again');
    const fixed = await Promise.all([1, 2].map(() => admin.post('/ledger/receipts', { ...fields, amount: '1.00', receiptId: key3 })));
    assert.deepEqual(fixed.map((r) => path(r.location)), [`/ledger/receipts/${key3}`, `/ledger/receipts/${key3}`]);
    assert.equal(await countOf(t, 'ledger_receipt', bill.billId), 3);

    // The same key with a different amount is not silently taken for the first receipt.
    p = await admin.post('/ledger/receipts', { ...fields, amount: '99.00', receiptId: key3 });
    assert.equal(p.status, 409);
    assert.match(unescapeHtml(p.text), /already recorded under this id for \$1\.00/);
    assert.equal(await countOf(t, 'ledger_receipt', bill.billId), 3);
    await assertLedgerInvariants(t.db.db);
  });
});

eachDialect('write-offs: a repeated form is one write-off, and the limit is per bill in all, under concurrency', async (db) => {
  await withApp(db, async (t) => {
    const { bill, admin } = await billedWithAdmin(t);
    // Leave $10.00 outstanding; the limit is $3.50 per bill.
    const open = (await billRow(t, bill.billId)).outstanding;
    let p = await admin.post('/ledger/receipts', { bill: bill.billId, receivedOn: '2026-03-05', amount: toDecimalString(open - 1_000, 'USD'), order: 'this_bill_first', discount: 'auto' });
    assert.equal(p.status, 303, p.text.slice(0, 500));
    await admin.get('/ledger/periods');
    p = await admin.post('/ledger/periods', { limit: '3.50', action: 'write-off-limit' });
    assert.ok(p.status === 303 || p.status === 200, p.text.slice(0, 500));

    // One load of the bill page; the same write-off twice, then three at once: one write-off.
    p = await admin.get(`/ledger/bills/${bill.billId}`);
    const key = hidden(p, 'writeOffId');
    const wo = { amount: '1.00', on: '2026-03-20', reason: 'Rounding', writeOffId: key };
    const a = await admin.post(`/ledger/bills/${bill.billId}/write-off`, wo);
    assert.equal(a.status, 303, a.text.slice(0, 500));
    const b = await admin.post(`/ledger/bills/${bill.billId}/write-off`, wo);
    assert.equal(b.status, 303, b.text.slice(0, 500));
    assert.equal(path(b.location), path(a.location));
    const three = await Promise.all([1, 2, 3].map(() => admin.post(`/ledger/bills/${bill.billId}/write-off`, wo)));
    assert.deepEqual(three.map((r) => r.status), [303, 303, 303], three.map((r) => r.text.slice(0, 300)).join('\n'));
    assert.equal(await countOf(t, 'ledger_write_off', bill.billId), 1);
    assert.equal(await journals(t, 'WJ'), 1);
    assert.equal(await audits(t, 'ledger.written_off'), 1);
    assert.deepEqual(await billRow(t, bill.billId), { ...(await billRow(t, bill.billId)), writtenOff: 100, outstanding: 900 });

    // A fresh form's key, first posted three times at once: one write-off.
    p = await admin.get(`/ledger/bills/${bill.billId}`);
    const key2 = hidden(p, 'writeOffId');
    assert.notEqual(key2, key);
    assert.match(unescapeHtml(p.text), /\$1\.00 is already written off, so at most \$2\.50 more/);
    const race = await Promise.all([1, 2, 3].map(() => admin.post(`/ledger/bills/${bill.billId}/write-off`, { ...wo, writeOffId: key2 })));
    assert.deepEqual(race.map((r) => r.status), [303, 303, 303]);
    assert.equal(await countOf(t, 'ledger_write_off', bill.billId), 2);

    // Three different write-offs of $1.00 at once with $1.50 of the limit left: exactly one passes.
    const keys = [];
    for (let i = 0; i < 3; i++) keys.push(hidden(await admin.get(`/ledger/bills/${bill.billId}`), 'writeOffId'));
    assert.equal(new Set(keys).size, 3);
    const parallel = await Promise.all(keys.map((k) => admin.post(`/ledger/bills/${bill.billId}/write-off`, { ...wo, writeOffId: k })));
    assert.deepEqual(parallel.map((r) => r.status).sort(), [303, 409, 409]);
    const refusedPage = parallel.find((r) => r.status === 409)!;
    assert.match(unescapeHtml(refusedPage.text), /Write-offs are limited to small balances \(at most \$3\.50 per bill, in all\); \$3\.00 of bill 1\.1\.1 is already written off, so at most \$0\.50 more; this is \$1\.00/);
    const kept = /<input type="hidden" name="writeOffId" value="([^"]*)">/.exec(refusedPage.text)?.[1];
    assert.ok(kept && keys.includes(kept) && kept !== keys[parallel.findIndex((r) => r.status === 303)], 'a refused form keeps its own key');
    assert.equal(await countOf(t, 'ledger_write_off', bill.billId), 3);
    assert.deepEqual(await billRow(t, bill.billId), { ...(await billRow(t, bill.billId)), writtenOff: 300, outstanding: 700 });

    // Blank amount (all of it, $7.00) is over what is left of the limit as well.
    p = await admin.post(`/ledger/bills/${bill.billId}/write-off`, { on: '2026-03-20', reason: 'Rounding', writeOffId: hidden(await admin.get(`/ledger/bills/${bill.billId}`), 'writeOffId') });
    assert.equal(p.status, 409);

    // The bulk write-off of small balances keeps to the same limit: $0.75 left over $3.00 written off is skipped ...
    p = await admin.post('/ledger/receipts', { bill: bill.billId, receivedOn: '2026-03-06', amount: '6.25', order: 'this_bill_first', discount: 'auto' });
    assert.equal(p.status, 303);
    await admin.get('/ledger/periods');
    p = await admin.post('/ledger/write-offs', { max: '3.50', on: '2026-03-20', reason: 'Tidy up' });
    assert.equal(p.status, 303, p.text.slice(0, 500));
    assert.equal(await countOf(t, 'ledger_write_off', bill.billId), 3);
    assert.equal((await billRow(t, bill.billId)).outstanding, 75);
    // ... and $0.40 fits: written off, to $3.40 in all.
    p = await admin.post('/ledger/receipts', { bill: bill.billId, receivedOn: '2026-03-06', amount: '0.35', order: 'this_bill_first', discount: 'auto' });
    assert.equal(p.status, 303);
    await admin.get('/ledger/periods');
    p = await admin.post('/ledger/write-offs', { max: '3.50', on: '2026-03-20', reason: 'Tidy up' });
    assert.equal(p.status, 303);
    assert.equal(await countOf(t, 'ledger_write_off', bill.billId), 4);
    assert.deepEqual(await billRow(t, bill.billId), { ...(await billRow(t, bill.billId)), writtenOff: 340, outstanding: 0 });
    await assertLedgerInvariants(t.db.db);
  });
});

eachDialect('commands: one receipt id in five parallel calls is one receipt (a client without bills too); the write-off limit counts the bill\'s earlier write-offs', async (db) => {
  await withApp(db, async (t) => {
    const { f, bill } = await billedWithAdmin(t);
    const { createLedgerCommands } = await import('../../src/modules/ledger/commands.ts');
    const ledger = createLedgerCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const matters = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    const other = await matters.createClient(ctx, { name: 'Contoso Ltd', email: 'ap@contoso.example' });
    await t.runtime.relay.drain();

    // On account for a client with no bills (no bill rows to lock): the receipt's keys decide.
    const receiptId = '019a0000-0000-7000-8000-00000000abcd';
    const five = await Promise.allSettled(Array.from({ length: 5 }, () => ledger.recordReceipt(ctx, { receiptId, clientId: other.id, receivedOn: '2026-03-05', amountMinor: 5_000, order: 'on_account' })));
    assert.deepEqual(five.map((r) => r.status === 'fulfilled' ? r.value.receipt.id : String(r.reason)), five.map(() => receiptId));
    assert.equal(Number((await t.db.db.selectFrom('ledger_receipt').select((eb) => eb.fn.countAll<number>().as('n')).where('client_id', '=', other.id).executeTakeFirstOrThrow()).n), 1);
    // Against the bill, five at once under one id: one receipt, the balance reduced once.
    const paid = (await billRow(t, bill.billId)).paid;
    const id2 = '019a0000-0000-7000-8000-00000000abce';
    const onBill = await Promise.all(Array.from({ length: 5 }, () => ledger.recordReceipt(ctx, { receiptId: id2, billId: bill.billId, clientId: f.client.id, receivedOn: '2026-03-05', amountMinor: 2_000 })));
    assert.deepEqual(new Set(onBill.map((r) => r.receipt.id)), new Set([id2]));
    assert.equal((await billRow(t, bill.billId)).paid, paid + 2_000);

    // The limit is cumulative ($1.50 per bill): $1.00, then $1.00 more is refused; two of $0.50 at once: one passes.
    const left = (await billRow(t, bill.billId)).outstanding;
    await ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-03-05', amountMinor: left - 1_000 });
    await ledger.setWriteOffLimit(ctx, 150);
    await ledger.writeOff(ctx, { billId: bill.billId, amountMinor: 100, on: '2026-03-11' });
    const e = await refused(ledger.writeOff(ctx, { billId: bill.billId, amountMinor: 100, on: '2026-03-11' }), 409);
    assert.match(e.message, /\$1\.00 of bill 1\.1\.1 is already written off, so at most \$0\.50 more; this is \$1\.00$/);
    const two = await Promise.allSettled([1, 2].map(() => ledger.writeOff(ctx, { billId: bill.billId, amountMinor: 50, on: '2026-03-11' })));
    assert.deepEqual(two.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    assert.equal((await billRow(t, bill.billId)).writtenOff, 150);
    // The bulk write-off refuses nothing but skips the bill: its limit is used up.
    assert.deepEqual((await ledger.writeOffSmallBalances(ctx, { maxMinor: 150, on: '2026-03-11' })).written, []);
    assert.equal(await countOf(t, 'ledger_write_off', bill.billId), 2);
    await assertLedgerInvariants(t.db.db);
  });
});
