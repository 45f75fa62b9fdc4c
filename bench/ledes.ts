/**
 * LEDES export speed: 100,000 line items (100 bills of 1,000 lines: time with write-downs,
 * disbursements with quantities, a discount line; one narrative in ten carries characters
 * the format cannot carry) built and written as one LEDES 1998BI file, in memory. Baseline in the same run: joining the same number of pre-formatted lines.
 */
import { buildInvoice, defaultLedesSettings, writeLedes } from '../src/modules/ebilling/domain/export.ts';
import type { BillFacts, ItemFacts, LedesInvoice } from '../src/modules/ebilling/domain/export.ts';
import { parseUtbms } from '../src/modules/ebilling/domain/utbms.ts';
import type { BillData, BillLineData } from '../src/modules/billing/events.ts';
import { readFileSync } from 'node:fs';

export const LEDES_LINES = 100_000;

function fixtures(): { facts: BillFacts[]; preformatted: string[] } {
  const bills: BillFacts[] = [];
  const items = new Map<string, ItemFacts>();
  const timekeepers = new Map([['tk-p', { timekeeperId: 'tk-p', initials: 'MH', name: 'Margaret Holloway', ledesClassification: 'PT' as const }]]);
  const perBill = 1_000;
  for (let b = 0; b < LEDES_LINES / perBill; b++) {
    const lines: BillLineData[] = [];
    let total = 0;
    let tax = 0;
    for (let i = 0; i < perBill - 1; i++) {
      const time = i % 4 !== 3;
      const id = `i-${b}-${i}`;
      const recorded = time ? (6 * (1 + (i % 20)) * 35_000) / 60 : 15 * (100 + i);
      const amount = time && i % 7 === 0 ? recorded - 1_000 : recorded;
      const taxMinor = Math.floor((amount * 2000 + 5000) / 10000);
      if (!time) items.set(id, { id, quantityMilli: (100 + i) * 1000, unitCostMinor: 15 });
      lines.push({
        lineNo: i + 1, key: id, kind: time ? 'time' : 'disbursement', itemId: id, itemKind: time ? 'time' : 'disbursement', scheduleRowId: null, date: '2026-02-10',
        timekeeperId: time ? 'tk-p' : null, code: null, chargeTypeId: null, description: i % 10 === 0 ? `Line ${i} | review [documents]` : `Line ${i}: review documents`, minutes: time ? 6 * (1 + (i % 20)) : null,
        rateMinor: time ? 35_000 : null, recordedMinor: recorded, amountMinor: amount, noCharge: false, taxCode: 'VAT', taxMinor,
        taskCode: time ? 'L110' : null, activityCode: time ? 'A101' : null, expenseCode: time ? null : 'E101',
      });
      total += amount + taxMinor;
      tax += taxMinor;
    }
    lines.push({
      lineNo: perBill, key: 'discount:1', kind: 'discount', itemId: null, itemKind: null, scheduleRowId: null, date: '2026-02-28', timekeeperId: null, code: null,
      chargeTypeId: null, description: 'Discount', minutes: null, rateMinor: null, recordedMinor: 0, amountMinor: -10_000, noCharge: false, taxCode: null, taxMinor: -2_000,
      taskCode: null, activityCode: null, expenseCode: null,
    });
    total += -12_000;
    tax += -2_000;
    const bill: BillData = {
      billId: `bill-${b}`, status: 'approved', number: `12.8.${b + 1}`, sequence: b + 1, matterId: 'm', clientId: 'c', fileNumber: '12.8', currency: 'GBP',
      invoiceDate: '2026-02-28', upTo: '2026-02-28', dueDate: '2026-03-30', lines, allocations: [],
      totals: { feesMinor: 0, fixedChargesMinor: 0, disbursementsMinor: 0, discountMinor: 10_000, interestMinor: 0, taxMinor: tax, totalMinor: total, netFeesMinor: 0 },
      discount: null, retainerBalanceMinor: null, retainerRequestMinor: 0, scheduleRowIds: [], items: [], hideLinePricing: false, batchId: null, version: 1,
    };
    bills.push({
      bill, client: { clientId: 'c', name: 'Northwind', address: '1 Dock Rd', taxId: 'GB123' }, timekeepers, items, taxRates: new Map([['VAT', 2000]]),
      matter: { matterId: 'm', fileNumber: '12.8', name: 'Northwind v. Kestrel', responsibleTimekeeperId: 'tk-p', billingTimekeeperId: 'tk-p', ebilling: { enabled: true, codeSet: 'litigation', format: 'LEDES1998BI', clientLedesId: 'NW', matterLedesId: 'NW-1' } },
    });
  }
  const preformatted = Array.from({ length: LEDES_LINES }, (_, i) => `20260228|12.8.${i % 100}|NW|12.8|1234.56|20260201|20260228|Professional services|${i}|F|0.60|0.00|210.00|20260210|L110||A101|MH|Line ${i} review documents|24-6437381|350.00|Holloway, Margaret|PARTNR|NW-1[]\n`);
  return { facts: bills, preformatted };
}

/** Export 100,000 line items (build + write), and the baseline; median ms of `runs` each. */
export async function ledesBench(runs: number, timeMs: (fn: () => void | Promise<void>) => Promise<number>): Promise<{ count: number; ms: number[]; baselineMs: number[] }> {
  const codes = parseUtbms(readFileSync(new URL('../reference/utbms.csv', import.meta.url), 'utf8'));
  const settings = { ...defaultLedesSettings(), lawFirmId: '24-6437381', lawFirmName: 'Holloway & Stern LLP', country: 'GBR' };
  const { facts, preformatted } = fixtures();
  const ms: number[] = [];
  const baselineMs: number[] = [];
  for (let r = 0; r < runs; r++) {
    let bytes = 0;
    ms.push(await timeMs(() => {
      const invoices: LedesInvoice[] = [];
      for (const f of facts) {
        const res = buildInvoice(f, 'LEDES1998BI', settings, codes);
        if (!res.ok) throw new Error(JSON.stringify(res.problems.slice(0, 3)));
        invoices.push(res.invoice);
      }
      bytes = writeLedes('LEDES1998BI', invoices, settings).length;
    }));
    if (bytes === 0) throw new Error('nothing written');
    baselineMs.push(await timeMs(() => { if (preformatted.join('').length === 0) throw new Error('x'); }));
  }
  return { count: LEDES_LINES, ms, baselineMs };
}
