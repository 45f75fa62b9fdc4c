/**
 * Refunding a receipt's unallocated credit to the client, and taking a refund back (review 53,
 * M3), on both databases: the RJ journal (unallocated receipts debited, bank credited) and its
 * exact reversal; never more than the credit free on that day and every day since (money that
 * paid a bill for a while cannot also have left the bank); the receipt cannot be reversed while
 * a refund stands; the same refund id twice refunds once; bad input names its field and changes
 * nothing; everything audited; the receipt page's forms, and a read-only user refused.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { withApp } from '../support/app.ts';
import { createLedgerCommands } from '../../src/modules/ledger/index.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import { ctx } from '../billing/support.ts';
import { approvedBill, assertBooksAsAt, assertLedgerInvariants, balanceOf, refused } from './support.ts';

eachDialect('refunds: credit paid back to the client and taken back, never more than was free that day and since, the receipt kept until the refund is undone', async (db) => {
  await withApp(db, async (t) => {
    const { f, bill } = await approvedBill({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const ledger = createLedgerCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    t.clock.set('2026-03-14T09:00:00Z');
    const total = bill.totals.totalMinor;
    // The bill paid all but 100.00; then 500.00 on account; 100.00 of it paid the bill from the 8th to the 12th.
    await ledger.recordReceipt(ctx, { billId: bill.billId, receivedOn: '2026-03-05', amountMinor: total - 10_000, order: 'this_bill_only' });
    const { receipt } = await ledger.recordReceipt(ctx, { clientId: f.client.id, receivedOn: '2026-03-06', amountMinor: 50_000, order: 'on_account' });
    await ledger.allocateCredit(ctx, { receiptId: receipt.id, billId: bill.billId, on: '2026-03-08' });
    const [alloc] = await db.db.selectFrom('ledger_allocation').select('id').where('receipt_id', '=', receipt.id).execute();
    await ledger.releaseAllocation(ctx, String(alloc!.id), '2026-03-12');
    await t.runtime.relay.drain();
    const credit = async () => Number((await db.db.selectFrom('ledger_receipt').select('unallocated_minor').where('id', '=', receipt.id).executeTakeFirstOrThrow()).unallocated_minor);
    assert.equal(await credit(), 50_000);
    const bank0 = await balanceOf(db.db, '1000');
    const counts = async () => Promise.all(['ledger_refund', 'ledger_journal', 'audit_log', 'outbox'].map(async (tb) => (await db.db.selectFrom(tb as 'ledger_refund').select('id').execute()).length));
    const before = await counts();

    // Refused, naming the field, changing nothing.
    const cases: [Parameters<typeof ledger.refundCredit>[1], 404 | 409 | 422, string, RegExp][] = [
      [{ receiptId: receipt.id, amountMinor: 50_001, reason: 'x', on: '2026-03-13' }, 422, 'amount', /at most the receipt's unallocated credit \(\$500\.00\)/],
      [{ receiptId: receipt.id, amountMinor: 0, reason: 'x' }, 422, 'amount', /more than zero/],
      [{ receiptId: receipt.id, amountMinor: 1.5, reason: 'x' }, 422, 'amount', /more than zero/],
      [{ receiptId: receipt.id, amountMinor: 1_000, reason: '  ' }, 422, 'reason', /is required/],
      [{ receiptId: receipt.id, amountMinor: 1_000, reason: 'x'.repeat(501) }, 422, 'reason', /at most 500/],
      [{ receiptId: receipt.id, amountMinor: 1_000, reason: 'x', method: 'trust_transfer' }, 422, 'method', /must be one of/],
      [{ receiptId: receipt.id, amountMinor: 1_000, reason: 'x', on: '2026-02-30' }, 422, 'on', /must be a date/],
      [{ receiptId: receipt.id, amountMinor: 1_000, reason: 'x', on: '2026-03-05' }, 422, 'on', /on or after the receipt's date \(2026-03-06\)/],
      // On the 10th, 100.00 of the credit was paying the bill (until the 12th): only 400.00 was free then.
      [{ receiptId: receipt.id, amountMinor: 45_000, reason: 'x', on: '2026-03-10' }, 422, 'on', /only \$400\.00 of the receipt's credit was free on 2026-03-10 and every day since \(it paid a bill or was refunded for a while\): refund \$450\.00 on or after 2026-03-12, or at most \$400\.00 on 2026-03-10/],
      [{ receiptId: receipt.id, amountMinor: 1_000, reason: 'x', refundId: 'not an id!' }, 422, 'refundId', /must be an id/],
    ];
    for (const [input, status, field, message] of cases) {
      const e = await refused(ledger.refundCredit(ctx, input), status);
      assert.match(e.fields[field] ?? '', message, `${field}: ${JSON.stringify(e.fields)}`);
    }
    await refused(ledger.refundCredit(ctx, { receiptId: '01J0000000000000000000000Z', amountMinor: 1, reason: 'x' }), 404);
    assert.deepEqual(await counts(), before, 'nothing changed');
    assert.equal(await credit(), 50_000);

    // 400.00 on the 10th is free then and since; then the rest but 50.00 on the 12th.
    const refundId = '01J8REFUND0000000000000001';
    const form = { receiptId: receipt.id, refundId, amountMinor: 40_000, on: '2026-03-10', method: 'cheque', reference: 'CHQ 881', reason: 'Overpayment returned' };
    await ledger.refundCredit(ctx, form);
    await ledger.refundCredit(ctx, { ...form });
    assert.equal(await credit(), 10_000, 'the same refund id twice refunds once');
    // The id again with anything else changed is not that refund, and makes none (review 60 F3).
    for (const changed of [{ amountMinor: 5_000 }, { on: '2026-03-11' }, { method: 'cash' }, { reference: 'CHQ 882' }, { reason: 'Other' }]) {
      await refused(ledger.refundCredit(ctx, { ...form, ...changed }), 409);
    }
    assert.equal(await credit(), 10_000);
    await ledger.refundCredit(ctx, { receiptId: receipt.id, amountMinor: 5_000, on: '2026-03-12', reason: 'Second instalment back' });
    assert.equal(await credit(), 5_000);
    assert.equal(await balanceOf(db.db, '1000'), bank0 - 45_000, 'the bank paid out 450.00');
    const rj = await db.db.selectFrom('ledger_journal as j').innerJoin('ledger_journal_line as l', 'l.journal_id', 'j.id').innerJoin('ledger_account as a', 'a.id', 'l.account_id')
      .select(['j.number', 'j.prefix', 'j.date', 'a.code', 'l.debit_minor', 'l.credit_minor']).where('j.source_key', '=', `refund:${refundId}`).orderBy('l.line_no').execute();
    assert.deepEqual(rj.map((l) => [l.prefix, l.date, l.code, Number(l.debit_minor), Number(l.credit_minor)]), [['RJ', '2026-03-10', '2100', 40_000, 0], ['RJ', '2026-03-10', '1000', 0, 40_000]]);
    await assertLedgerInvariants(db.db, { billing: true });
    await assertBooksAsAt(db.db, ['2026-03-06', '2026-03-08', '2026-03-10', '2026-03-11', '2026-03-12', '2026-03-14']);

    // The credit left (50.00) pays the bill's 100.00 in part; nothing is left to refund then.
    await ledger.allocateCredit(ctx, { receiptId: receipt.id, billId: bill.billId, on: '2026-03-13' });
    assert.equal(await credit(), 0);
    assert.match((await refused(ledger.refundCredit(ctx, { receiptId: receipt.id, reason: 'x' }), 409)).message, /no unallocated credit to refund/);

    // The receipt is not reversed while its refunds stand.
    assert.match((await refused(ledger.reverseReceipt(ctx, { receiptId: receipt.id, reason: 'Dishonoured', on: '2026-03-14' }), 409)).message,
      /\$450\.00 of receipt .* was refunded to the client \(2026-03-10, 2026-03-12\)\. If the refunds were returned to the firm, reverse them first/);

    // A refund taken back: not before it was made, once only; the credit comes back.
    await refused(ledger.reverseRefund(ctx, { refundId, on: '2026-03-09' }), 422);
    await ledger.reverseRefund(ctx, { refundId, on: '2026-03-14', reason: 'Cheque never cashed' });
    assert.match((await refused(ledger.reverseRefund(ctx, { refundId, on: '2026-03-14' }), 409)).message, /reversed already/);
    assert.equal(await credit(), 40_000);
    const original = await db.db.selectFrom('ledger_journal').select(['id']).where('source_key', '=', `refund:${refundId}`).executeTakeFirstOrThrow();
    const reversal = await db.db.selectFrom('ledger_journal').select(['id', 'prefix', 'date']).where('reverses_journal_id', '=', original.id).executeTakeFirstOrThrow();
    assert.deepEqual([reversal.prefix, reversal.date], ['RJ', '2026-03-14']);
    // Its lines say they reverse (review 58 F7), the original's amounts the other way round.
    const lines = await db.db.selectFrom('ledger_journal_line as l').innerJoin('ledger_account as a', 'a.id', 'l.account_id').select(['a.code', 'l.memo', 'l.debit_minor', 'l.credit_minor'])
      .where('l.journal_id', '=', reversal.id).orderBy('l.line_no').execute();
    assert.deepEqual(lines.map((l) => [l.code, Number(l.debit_minor), Number(l.credit_minor)]), [['2100', 0, 40_000], ['1000', 40_000, 0]]);
    assert.ok(lines.every((l) => String(l.memo).startsWith('Reversed: ')), lines.map((l) => l.memo).join(' | '));
    await assertLedgerInvariants(db.db, { billing: true });
    // Allocating that credit on a day before it came back: refused (it was not there yet); on the day, it pays what the bill owes.
    await refused(ledger.allocateCredit(ctx, { receiptId: receipt.id, billId: bill.billId, on: '2026-03-13' }), 422);
    await ledger.allocateCredit(ctx, { receiptId: receipt.id, billId: bill.billId, on: '2026-03-14' });
    assert.equal(await credit(), 35_000);

    // The other refund taken back, the receipt can be reversed (not before the 14th: its credit came back then).
    const other = await db.db.selectFrom('ledger_refund').select('id').where('receipt_id', '=', receipt.id).where('reversal_journal_id', 'is', null).executeTakeFirstOrThrow();
    await ledger.reverseRefund(ctx, { refundId: String(other.id), on: '2026-03-14' });
    await ledger.reverseReceipt(ctx, { receiptId: receipt.id, reason: 'Dishonoured', on: '2026-03-14' });
    await t.runtime.relay.drain();
    await assertLedgerInvariants(db.db, { billing: true });
    await assertBooksAsAt(db.db, ['2026-03-10', '2026-03-12', '2026-03-13', '2026-03-14']);
    const audits = await db.db.selectFrom('audit_log').select('action').where('action', 'in', ['ledger.credit_refunded', 'ledger.refund_reversed']).execute();
    assert.deepEqual(audits.map((a) => a.action).sort(), ['ledger.credit_refunded', 'ledger.credit_refunded', 'ledger.refund_reversed', 'ledger.refund_reversed']);
    const events = await db.db.selectFrom('outbox').select(['payload']).where('type', '=', 'ledger.credit_refunded').execute();
    assert.equal(events.length, 4, 'an event per refund and per reversal');
  });
});

eachDialect('refunds on the receipt page: the form offers the credit, a refusal names its field and keeps what was typed, a double post refunds once, read-only staff refused', async (db) => {
  await withApp(db, async (t) => {
    const { f } = await approvedBill({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const ledger = createLedgerCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    t.clock.set('2026-03-14T09:00:00Z');
    const { receipt } = await ledger.recordReceipt(ctx, { clientId: f.client.id, receivedOn: '2026-03-06', amountMinor: 12_345, order: 'on_account' });
    await t.runtime.relay.drain();
    await t.user('billing');
    const clerk = t.browser();
    await clerk.login('billing@firm.test');
    const page = await clerk.get(`/ledger/receipts/${receipt.id}`);
    assert.equal(page.status, 200);
    assert.match(page.text, /<h2>Refund the credit to the client<\/h2>/);
    assert.match(page.text, /name="amount" value="123\.45"/, 'the credit offered');
    assert.match(page.text, /data-owes>The client still owes \$[\d,.]+ on bill 1\.1\.1: allocating the credit to that bill/, 'said when the client owes (review 60 F7)');
    const refundId = /name="refundId" value="([^"]+)"/.exec(page.text)![1]!;

    const bad = await clerk.post(`/ledger/receipts/${receipt.id}/refund`, { refundId, amount: '200.00', on: '2026-03-14', method: 'cheque', reference: 'CHQ 9', reason: 'Overpaid' });
    assert.equal(bad.status, 422);
    assert.match(bad.text, /data-error-for="amount">must be at most the receipt(?:&#39;|')s unallocated credit \(\$123\.45\)/);
    assert.match(bad.text, /name="reference" value="CHQ 9"/, 'what was typed is kept');
    assert.match(bad.text, new RegExp(`name="refundId" value="${refundId}"`), 'the same key');
    const blank = await clerk.post(`/ledger/receipts/${receipt.id}/refund`, { refundId, amount: '', reason: 'x' });
    assert.equal(blank.status, 422);
    assert.match(blank.text, /data-error-for="amount">is required/);
    assert.equal((await db.db.selectFrom('ledger_refund').select('id').execute()).length, 0);

    const form = { refundId, amount: '100.00', on: '2026-03-14', method: 'cheque', reference: 'CHQ 9', reason: 'Overpaid' };
    const ok = await clerk.post(`/ledger/receipts/${receipt.id}/refund`, form);
    assert.equal(ok.status, 303);
    const again = await clerk.post(`/ledger/receipts/${receipt.id}/refund`, form);
    assert.equal(again.status, 303, 'a double post is the refund already made');
    const after = await clerk.get(ok.location!);
    assert.match(after.text, /data-notice>\$100\.00 of the credit was refunded to the client; \$23\.45 is left unallocated\./);
    assert.match(after.text, /id="unallocated">\$23\.45</);
    assert.match(after.text, /data-refund="[^"]+"><td>2026-03-14<\/td><td class="num" data-minor="10000">\$100\.00<\/td>\s*<td>cheque \(CHQ 9\)<\/td><td>Overpaid<\/td>/);
    const refunds = await db.db.selectFrom('ledger_refund').select(['id', 'amount_minor']).execute();
    assert.deepEqual(refunds.map((r) => [String(r.id), Number(r.amount_minor)]), [[refundId, 10_000]]);
    // The client's page says what stands refunded of each receipt (review 60 F1).
    assert.match((await clerk.get(`/ledger/clients/${f.client.id}`)).text, new RegExp(`${receipt.number}</a>[^]*?data-refunded="10000">\\$100\\.00<`));

    // Taken back from the page.
    const back = await clerk.post(`/ledger/refunds/${refundId}/reverse`, { on: '2026-03-14', reason: 'Returned by the bank' });
    assert.equal(back.status, 303);
    const shown = await clerk.get(back.location!);
    assert.match(shown.text, /data-notice>The refund of \$100\.00 \(2026-03-14\) was reversed: it is unallocated credit again\./);
    assert.match(shown.text, /data-reversed>reversed on 2026-03-14 by <a href="\/ledger\/journals\/[^"]+">RJ/);
    assert.equal((await clerk.post(`/ledger/refunds/${refundId}/reverse`, { on: '2026-03-14' })).status, 409);

    // Read-only staff: no form, and a post refused.
    await t.user('readonly');
    const reader = t.browser();
    await reader.login('readonly@firm.test');
    const view = await reader.get(`/ledger/receipts/${receipt.id}`);
    assert.equal(view.status, 200);
    assert.doesNotMatch(view.text, /Refund the credit/);
    assert.equal((await reader.post(`/ledger/receipts/${receipt.id}/refund`, { amount: '1.00', reason: 'x' })).status, 403);
    assert.equal((await db.db.selectFrom('ledger_refund').select('id').execute()).length, 1);
    await assertLedgerInvariants(db.db);

    // The forms offer to confirm a posting outside the current period only where the firm allows it (review 53 L9).
    assert.match((await clerk.get(`/ledger/receipts/${receipt.id}`)).text, /Confirm posting outside the current period/);
    const matters = createMattersCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    await matters.updateFirmSettings(ctx, { postingOutsideCurrentPeriod: 'refuse' });
    await t.runtime.relay.drain();
    for (const path of [`/ledger/receipts/${receipt.id}`, '/ledger/receipts/new', '/ledger/periods']) {
      const p = await clerk.get(path);
      assert.equal(p.status, 200, path);
      assert.doesNotMatch(p.text, /Confirm posting outside the current period/, path);
    }
  });
});

eachDialect('refunds through the API: made, shown on the receipt, taken back; bad input named; read-only refused (review 60 F1)', async (db) => {
  await withApp(db, async (t) => {
    const { f } = await approvedBill({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    const ledger = createLedgerCommands({ db: db.db, clock: t.clock, relay: t.runtime.relay });
    t.clock.set('2026-03-14T09:00:00Z');
    const { receipt } = await ledger.recordReceipt(ctx, { clientId: f.client.id, receivedOn: '2026-03-06', amountMinor: 5_000, order: 'on_account' });
    await t.user('billing');
    await t.user('readonly');
    const auth = { authorization: `Bearer ${await t.token('billing@firm.test')}` };
    const b = t.browser();
    const post = (path: string, body: unknown, headers = auth) => b.postJson(`/api/v1${path}`, body, { headers });
    const bad = await post(`/receipts/${receipt.id}/refunds`, { amount: '60.00', reason: 'Overpaid' });
    assert.equal(bad.status, 422, bad.text);
    assert.deepEqual(Object.keys(bad.json().error.fields), ['amount']);
    const made = await post(`/receipts/${receipt.id}/refunds`, { refundId: '01J8REFUNDAPI0000000000001', amount: '12.50', on: '2026-03-14', method: 'cheque', reference: 'CHQ 7', reason: 'Overpaid' });
    assert.equal(made.status, 201, made.text);
    const body = made.json();
    assert.equal(body.unallocated, '37.50');
    assert.deepEqual(body.refunds.map((x: { amount: string; refundedOn: string; method: string; reversedOn: string | null }) => [x.amount, x.refundedOn, x.method, x.reversedOn]), [['12.50', '2026-03-14', 'cheque', null]]);
    const again = await post(`/receipts/${receipt.id}/refunds`, { refundId: '01J8REFUNDAPI0000000000001', amount: '12.50', on: '2026-03-14', method: 'cheque', reference: 'CHQ 7', reason: 'Overpaid' });
    assert.equal(again.status, 201);
    assert.equal(again.json().refunds.length, 1, 'the same refund id is the same refund');
    const ro = await post(`/receipts/${receipt.id}/refunds`, { amount: '1.00', reason: 'x' }, { authorization: `Bearer ${await t.token('readonly@firm.test')}` });
    assert.equal(ro.status, 403);
    const back = await post(`/refunds/${body.refunds[0].id}/reverse`, { on: '2026-03-14', reason: 'Returned' });
    assert.equal(back.status, 200, back.text);
    assert.deepEqual([back.json().unallocated, back.json().refunds[0].reversedOn], ['50.00', '2026-03-14']);
    const got = await b.get(`/api/v1/receipts/${receipt.id}`, auth);
    assert.equal(got.json().refunds.length, 1);
    // Credit that came from trust is not paid out of the office bank (review 60 F6).
    const { receipt: fromTrust } = await ledger.recordReceipt(ctx, { clientId: f.client.id, receivedOn: '2026-03-07', amountMinor: 1_000, order: 'on_account', method: 'trust_transfer' });
    const trust = await post(`/receipts/${fromTrust.id}/refunds`, { reason: 'Overpaid' });
    assert.equal(trust.status, 409, trust.text);
    assert.match(trust.json().error.message, /came by trust transfer/);
    // A refund taken back keeps why.
    assert.equal((await db.db.selectFrom('ledger_refund').select('reversal_reason').executeTakeFirstOrThrow()).reversal_reason, 'Returned');
    await assertLedgerInvariants(db.db);
  });
});
