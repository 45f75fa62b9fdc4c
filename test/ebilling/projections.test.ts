/**
 * E-billing's copy, on both databases: every subscription is backfilled by the migration,
 * handlers are idempotent, and an older or repeated event never regresses a newer copy.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { EBILLING_SOURCE_TYPES } from '../../migrations/20261123_2000_ebilling.ts';
import { PROJECTIONS, ebillingSubscriptions } from '../../src/modules/ebilling/projections.ts';
import { manualClock } from '../../src/shared/clock.ts';
import type { EventEnvelope } from '../../src/shared/events.ts';
import { systemContext } from '../../src/shared/events.ts';
import { eachDialect } from '../support/db.ts';
import { bill, line } from './support.ts';

test('the migration backfills exactly the event types e-billing subscribes to', () => {
  assert.deepEqual([...new Set(ebillingSubscriptions().map((s) => s.type))].sort(), [...EBILLING_SOURCE_TYPES].sort());
  assert.ok(ebillingSubscriptions().every((s) => s.handler.startsWith('ebilling.')));
});

let n = 0;
const envelope = <P>(type: string, payload: P, occurredAt: string): EventEnvelope<string, P> => ({
  id: `01937a4e-0000-7000-8000-${String(++n).padStart(12, '0')}`, type, version: 1, occurredAt, correlationId: 'c', causationId: null, actorId: null, payload,
});

eachDialect('handlers are idempotent and ordered: an older event after a newer one changes nothing', async (db) => {
  const clock = manualClock('2026-03-01T00:00:00Z');
  const apply = async (type: keyof typeof PROJECTIONS, e: EventEnvelope) => {
    await db.db.transaction().execute(async (trx) => {
      await (PROJECTIONS[type].apply as (e: unknown, ctx: unknown) => Promise<void>)(e, { trx, command: systemContext('t'), clock, logger: pino({ level: 'silent' }) });
    });
  };
  const tk = { timekeeperId: 'tk-1', initials: 'MH', name: 'Margaret Holloway', classification: 'partner', ledesClassification: 'PT', active: true };
  await apply('matters.timekeeper_created', envelope('matters.timekeeper_created', tk, '2026-03-01T10:00:00Z'));
  const newer = envelope('matters.timekeeper_changed', { ...tk, name: 'Margaret Holloway-Stern', updatedAt: '2026-03-02T10:00:00Z' }, '2026-03-02T10:00:00Z');
  await apply('matters.timekeeper_changed', newer);
  await apply('matters.timekeeper_changed', newer); // repeated
  await apply('matters.timekeeper_changed', envelope('matters.timekeeper_changed', { ...tk, name: 'Old Name', updatedAt: '2026-03-01T12:00:00Z' }, '2026-03-03T00:00:00Z'));
  const row = await db.db.selectFrom('ebilling_timekeeper').selectAll().executeTakeFirstOrThrow();
  assert.equal(row.name, 'Margaret Holloway-Stern');

  // Bills: version orders them; a late approval event does not undo a revert.
  const approved = bill([line()], { billId: 'b-1', status: 'approved', version: 2 });
  const reverted = { ...approved, status: 'draft' as const, version: 3, reversed: approved };
  await apply('billing.bill_reverted', envelope('billing.bill_reverted', reverted, '2026-03-02T00:00:00Z'));
  await apply('billing.bill_approved', envelope('billing.bill_approved', approved, '2026-03-03T00:00:00Z'));
  const b = await db.db.selectFrom('ebilling_bill').selectAll().executeTakeFirstOrThrow();
  assert.deepEqual([b.status, Number(b.source_version)], ['draft', 3]);
  assert.equal(JSON.parse(b.bill_json).reversed, undefined, 'history of a reversal is not kept as the bill');

  // Billing options for a matter not copied yet fail (the relay retries), and apply once it is.
  const options = { matterId: 'm-1', overridden: ['ebilling'], effective: { ebilling: { enabled: true, codeSet: 'litigation', format: 'LEDES1998BI', clientLedesId: 'C', matterLedesId: 'M' } } };
  await assert.rejects(apply('matters.billing_options_changed', envelope('matters.billing_options_changed', options, '2026-03-02T00:00:00Z')), /no copy of matter m-1/);
  await apply('matters.matter_opened', envelope('matters.matter_opened', {
    matterId: 'm-1', clientId: 'c-1', clientNumber: 1, clientName: 'C', matterNumber: 1, fileNumber: '1.1', name: 'M', status: 'open', practiceArea: null, openedOn: '2026-01-01',
    responsibleTimekeeperId: 'tk-1', billingTimekeeperId: 'tk-1', originatingTimekeeperId: null, billingCycle: 'MONTH', nextBillingDate: null, wipCapMinor: null,
    currency: 'USD', timeUnitMinutes: 6, roundingMode: 'up', defaultBehaviour: 'bill',
  }, '2026-03-01T00:00:00Z'));
  await apply('matters.billing_options_changed', envelope('matters.billing_options_changed', options, '2026-03-02T00:00:00Z'));
  const m = await db.db.selectFrom('ebilling_matter').selectAll().executeTakeFirstOrThrow();
  assert.equal(JSON.parse(m.ebilling_json).format, 'LEDES1998BI');
});
