/**
 * Audit: a matter whose first next billing date is worked out for it (opened with a cycle and
 * no date, or given a cycle later without one) keeps the day of month the cycle is counted
 * from. Opened on 31 January, billed monthly, it is due 28 February, then 31 March and 30 April;
 * before, the clamped 28 February became the matter's day and every later bill was due on the
 * 28th (three days early each month-end), as the anchor day exists to prevent.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import { manualClock } from '../../src/shared/clock.ts';
import { systemContext } from '../../src/shared/events.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';

const ctx = systemContext('corr-audit-anchor', 'test');

eachDialect('a next billing date worked out from the opening date (or today) keeps that day of month bill after bill', async (db) => {
  const clock = manualClock('2026-01-31T09:00:00Z');
  const cmds = createMattersCommands({ db: db.db, clock, relay: { kick: () => undefined } });
  const tk = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  const client = await cmds.createClient(ctx, { name: 'Northwind' });
  const approve = async (matterId: string, billId: string, billedOn: string) => {
    await cmds.batch((tx) => tx.advanceNextBillingDates([{ ctx, matterId, billId, billedOn }]));
    return (await cmds.findMatter(matterId))?.nextBillingDate;
  };

  const monthly = await cmds.openMatter(ctx, { clientId: client.id, name: 'Month-end retainer', responsibleTimekeeperId: tk.id, openedOn: '2026-01-31', billingCycle: 'MONTH' });
  assert.equal(monthly.nextBillingDate, '2026-02-28');
  assert.equal(await approve(monthly.id, 'bill-1', '2026-02-28'), '2026-03-31');
  assert.equal(await approve(monthly.id, 'bill-2', '2026-03-31'), '2026-04-30');
  assert.equal(await approve(monthly.id, 'bill-3', '2026-04-30'), '2026-05-31');

  const quarterly = await cmds.openMatter(ctx, { clientId: client.id, name: 'Quarterly', responsibleTimekeeperId: tk.id, openedOn: '2025-11-30', billingCycle: 'QUARTER' });
  assert.equal(quarterly.nextBillingDate, '2026-02-28');
  assert.equal(await approve(quarterly.id, 'bill-4', '2026-02-28'), '2026-05-30');

  // A date given keeps its own day, as before.
  const given = await cmds.openMatter(ctx, { clientId: client.id, name: 'Given date', responsibleTimekeeperId: tk.id, openedOn: '2026-01-31', billingCycle: 'MONTH', nextBillingDate: '2026-02-15' });
  assert.equal(await approve(given.id, 'bill-5', '2026-02-15'), '2026-03-15');

  // A cycle given later without a date is counted from today (31 January).
  const later = await cmds.openMatter(ctx, { clientId: client.id, name: 'On demand at first', responsibleTimekeeperId: tk.id, openedOn: '2026-01-10' });
  const cycled = await cmds.updateMatter(ctx, later.id, { billingCycle: 'MONTH' });
  assert.equal(cycled.nextBillingDate, '2026-02-28');
  assert.equal(await approve(later.id, 'bill-6', '2026-02-28'), '2026-03-31');
});
