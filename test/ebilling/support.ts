/**
 * Bills as billing's events carry them, built by hand for the pure LEDES tests, the UTBMS
 * codes shipped in reference/utbms.csv, and a real e-billed bill for the page tests.
 */
import { readFileSync } from 'node:fs';
import { createBillingCommands } from '../../src/modules/billing/index.ts';
import type { Bill } from '../../src/modules/billing/index.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import type { TestApp } from '../support/app.ts';
import type { TestDb } from '../support/db.ts';
import { ctx, firm } from '../billing/support.ts';
import type { BillData, BillLineData } from '../../src/modules/billing/events.ts';
import { defaultLedesSettings } from '../../src/modules/ebilling/domain/export.ts';
import type { BillFacts, LedesSettings, TimekeeperFacts } from '../../src/modules/ebilling/domain/export.ts';
import { parseUtbms } from '../../src/modules/ebilling/domain/utbms.ts';

export const codes = parseUtbms(readFileSync(new URL('../../reference/utbms.csv', import.meta.url), 'utf8'));

export const settings = (over: Partial<LedesSettings> = {}): LedesSettings => ({
  ...defaultLedesSettings(), lawFirmId: '24-6437381', lawFirmName: 'Holloway & Stern LLP', address1: '1 Main St', city: 'Springfield', region: 'IL',
  postcode: '62701', country: 'USA', clientCountry: 'USA', ...over,
});

export const PARTNER: TimekeeperFacts = { timekeeperId: 'tk-p', initials: 'MH', name: 'Margaret Holloway', ledesClassification: 'PT' };
export const ASSOCIATE: TimekeeperFacts = { timekeeperId: 'tk-a', initials: 'JS', name: 'Jonah Stern', ledesClassification: 'AS' };

let n = 0;
/** A bill line: defaults to a partner's time line of 2 h at 350.00 charged in full. */
export function line(over: Partial<BillLineData> = {}): BillLineData {
  n++;
  return {
    lineNo: 0, key: `k${n}`, kind: 'time', itemId: `item-${n}`, itemKind: 'time', scheduleRowId: null, date: '2026-02-10', timekeeperId: 'tk-p',
    code: null, chargeTypeId: null, description: 'Research', minutes: 120, rateMinor: 35_000, recordedMinor: 70_000, amountMinor: 70_000,
    noCharge: false, taxCode: 'EXEMPT', taxMinor: 0, taskCode: 'L110', activityCode: 'A102', expenseCode: null, ...over,
  };
}

/** A bill of these lines, numbered, approved, with totals that add up (as billing's composer asserts). */
export function bill(lines: BillLineData[], over: Partial<BillData> = {}): BillData {
  const numbered = lines.map((l, i) => ({ ...l, lineNo: i + 1 }));
  const sumOf = (kinds: string[]) => numbered.filter((l) => kinds.includes(l.kind)).reduce((a, l) => a + l.amountMinor, 0);
  const taxMinor = numbered.reduce((a, l) => a + l.taxMinor, 0);
  const totals = {
    feesMinor: sumOf(['time', 'fixed_fee', 'quote_fee', 'adhoc_fee']), fixedChargesMinor: sumOf(['fixed_charge']),
    disbursementsMinor: sumOf(['disbursement', 'adhoc_disbursement']), discountMinor: -sumOf(['discount']), interestMinor: sumOf(['interest']),
    taxMinor, totalMinor: numbered.reduce((a, l) => a + l.amountMinor, 0) + taxMinor, netFeesMinor: 0,
  };
  return {
    billId: `bill-${++n}`, status: 'approved', number: '12.8.3', sequence: 3, matterId: 'm-1', clientId: 'c-1', fileNumber: '12.8', currency: 'USD',
    invoiceDate: '2026-02-28', upTo: '2026-02-28', dueDate: '2026-03-30', lines: numbered, allocations: [], totals, discount: null,
    retainerBalanceMinor: null, retainerRequestMinor: 0, scheduleRowIds: [], items: [], hideLinePricing: false, batchId: null, version: 2, ...over,
  };
}

export function facts(b: BillData, over: Partial<Omit<BillFacts, 'bill'>> = {}): BillFacts {
  return {
    bill: b,
    matter: {
      matterId: 'm-1', fileNumber: '12.8', name: 'Northwind v. Kestrel', responsibleTimekeeperId: 'tk-p', billingTimekeeperId: 'tk-p',
      ebilling: { enabled: true, codeSet: 'litigation', format: 'LEDES1998B', clientLedesId: 'NW-001', matterLedesId: 'NW-M-77' },
    },
    client: { clientId: 'c-1', name: 'Northwind Logistics Inc.', address: '10 Dock Rd, Chicago', taxId: '36-1234567' },
    timekeepers: new Map([[PARTNER.timekeeperId, PARTNER], [ASSOCIATE.timekeeperId, ASSOCIATE]]),
    items: new Map(),
    taxRates: new Map([['EXEMPT', 0], ['SALES', 825], ['VAT', 2000]]),
    ...over,
  };
}

/**
 * Through the real commands: the test firm's matter e-billed in LEDES 1998B with litigation
 * codes, two hours of the partner's time and copies recorded, drafted and approved for
 * 2026-02-28, every event delivered.
 */
export async function approvedEbilledBill(db: TestDb, t: TestApp): Promise<Bill> {
  const relay = t.runtime.relay;
  const cmds = createMattersCommands({ db: db.db, clock: t.clock, relay });
  const billing = createBillingCommands({ db: db.db, clock: t.clock, relay });
  const { partner, matter } = await firm(cmds);
  await cmds.setBillingOptions(ctx, matter.id, { set: { ebilling: { enabled: true, codeSet: 'litigation', format: 'LEDES1998B', clientLedesId: 'NW-001', matterLedesId: 'NW-M-77' } } });
  await cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-02-10', rawMinutes: 120, narrative: 'Hearing', taskCode: 'L450', activityCode: 'A109' });
  await cmds.recordDisbursement(ctx, { matterId: matter.id, incurredOn: '2026-02-20', code: 'COPY', expenseCode: 'E101', quantityMilli: 100_000, unitCostMinor: 15, taxCode: 'SALES', description: 'Copies' });
  await relay.drain();
  const bill = await billing.approve(ctx, (await billing.createDraft(ctx, { matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' })).billId);
  await relay.drain();
  return bill;
}
