/**
 * Findings of the e-billing (LEDES) audit: ids with spaces at either end are refused with
 * the bill and field named (never a crash), the validator refuses line breaks other than
 * "\n" inside values and accepts a unit cost with more decimals than the currency, and
 * TIMEKEEPER_NAME is "Last, First" with suffixes kept with the last name.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEbillingCommands, LedesRefusal } from '../../src/modules/ebilling/index.ts';
import { buildInvoice, settingsErrors, writeLedes } from '../../src/modules/ebilling/domain/export.ts';
import type { BillFacts, LedesSettings } from '../../src/modules/ebilling/domain/export.ts';
import { COLUMNS, ledesName } from '../../src/modules/ebilling/domain/format.ts';
import { readLedes } from '../../src/modules/ebilling/domain/reader.ts';
import { HttpError } from '../../src/shared/web/errors.ts';
import { eachDialect } from '../support/db.ts';
import { ctx, firm, setup } from '../billing/support.ts';
import { bill, codes, facts, line, PARTNER, settings } from './support.ts';

const withIds = (clientLedesId: string, matterLedesId: string): BillFacts =>
  facts(bill([line()]), { matter: { ...facts(bill([])).matter!, ebilling: { enabled: true, codeSet: 'litigation', format: 'LEDES1998B', clientLedesId, matterLedesId } } });

test('1. ids with spaces at either end: refused with the bill and field named, not a crash', () => {
  const cases: { name: string; f: BillFacts; s?: Partial<LedesSettings>; fields: string[] }[] = [
    { name: 'client id', f: withIds('CL-AUDIT1 ', 'NW-M-77'), fields: ['CLIENT_ID'] },
    { name: 'client matter id', f: withIds('NW-001', ' CM-1'), fields: ['CLIENT_MATTER_ID'] },
    { name: 'law firm id', f: withIds('NW-001', 'NW-M-77'), s: { lawFirmId: '12-3456789 ' }, fields: ['LAW_FIRM_ID'] },
    { name: 'all three', f: withIds(' CL-AUDIT1', 'CM-1 '), s: { lawFirmId: ' 12-3456789' }, fields: ['CLIENT_ID', 'CLIENT_MATTER_ID', 'LAW_FIRM_ID'] },
  ];
  for (const c of cases) {
    for (const format of ['LEDES1998B', 'LEDES1998BI'] as const) {
      const r = buildInvoice(c.f, format, settings(c.s), codes);
      assert.ok(!r.ok, `${c.name} ${format}: expected a refusal`);
      assert.deepEqual(r.problems.map((p) => [p.bill, p.lineNo, p.field]), c.fields.map((f) => [c.f.bill.number, null, f]), c.name);
      for (const p of r.problems) {
        assert.match(p.message, /leading or trailing spaces/, c.name);
        assert.match(p.fix, /remove the spaces/, c.name);
      }
    }
  }
  assert.equal(settingsErrors(settings({ lawFirmId: '12-3456789 ' }), codes).lawFirmId, 'must not start or end with a space (LEDES)');
  assert.equal(settingsErrors(settings({ lawFirmId: ' 12-3456789' }), codes).lawFirmId, 'must not start or end with a space (LEDES)');
  assert.deepEqual(settingsErrors(settings({ lawFirmId: '12-3456789' }), codes), {});
});

eachDialect('1. real bill: client ids with spaces are refused when saved in matters and, saved before that check, at export; a spaced law firm id is refused when saved', async (db) => {
  const s = await setup(db);
  const { partner, matter } = await firm(s.cmds);
  const E = createEbillingCommands({ db: db.db, clock: s.clock, relay: s.rt.relay });
  await assert.rejects(E.saveSettings(ctx, settings({ lawFirmId: '12-3456789 ' }), 0),
    (e: unknown) => e instanceof HttpError && e.status === 422 && /space/.test(e.fields.lawFirmId ?? ''));
  await E.saveSettings(ctx, settings(), 0);
  const spaced = { enabled: true, codeSet: 'litigation', format: 'LEDES1998B' as const, clientLedesId: 'CL-AUDIT1 ', matterLedesId: ' CM-1' };
  await assert.rejects(s.cmds.setBillingOptions(ctx, matter.id, { set: { ebilling: spaced } }),
    (e: unknown) => e instanceof HttpError && e.status === 422 && /start or end with a space/.test(e.fields['ebilling.clientLedesId'] ?? '') && /start or end with a space/.test(e.fields['ebilling.matterLedesId'] ?? ''));
  await s.cmds.setBillingOptions(ctx, matter.id, { set: { ebilling: { ...spaced, clientLedesId: 'CL-AUDIT1', matterLedesId: 'CM-1' } } });
  await s.drain();
  // Ids saved before matters checked them: e-billing's copy holds them as they were.
  await db.db.updateTable('ebilling_matter').set({ ebilling_json: JSON.stringify(spaced) }).where('id', '=', matter.id).execute();
  await s.cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice', taskCode: 'L110', activityCode: 'A101' });
  await s.drain();
  const b = await s.billing.approve(ctx, (await s.billing.createDraft(ctx, { matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28' })).billId);
  await s.drain();
  let refusal: LedesRefusal | null = null;
  try { await E.exportBills(ctx, { billIds: [b.billId], format: 'LEDES1998B', mode: 'single' }); } catch (e) { if (e instanceof LedesRefusal) refusal = e; else throw e; }
  assert.ok(refusal, 'expected a LEDES refusal');
  assert.deepEqual(refusal.problems.map((p) => [p.bill, p.lineNo, p.field]), [[b.number, null, 'CLIENT_ID'], [b.number, null, 'CLIENT_MATTER_ID']]);
  assert.match(refusal.problems[0]!.message, /"CL-AUDIT1 " has leading or trailing spaces/);
});

/** A valid one-invoice, one-line 1998B file, and a way to set fields of its item line (file line 3). */
function oneLineFile() {
  const r = buildInvoice(facts(bill([line()])), 'LEDES1998B', settings(), codes);
  assert.ok(r.ok);
  const good = writeLedes('LEDES1998B', [r.invoice], settings());
  assert.deepEqual(readLedes(good, { codes }).violations, []);
  const cols = COLUMNS.LEDES1998B;
  const edit = (set: Record<string, string>): string => {
    const lines = good.split('\n');
    const f = lines[2]!.slice(0, -2).split('|');
    for (const [c, v] of Object.entries(set)) f[cols.indexOf(c as (typeof cols)[number])] = v;
    lines[2] = `${f.join('|')}[]`;
    return lines.join('\n');
  };
  return { good, edit };
}

test('2. validator: a line break other than the line\'s own "\\n" inside a value is refused, naming line and field', () => {
  const { good, edit } = oneLineFile();
  for (const br of ['\r', '\u2028', '\u2029', '\u0085', '\u000b', '\u000c']) {
    for (const [field, value] of [['LINE_ITEM_DESCRIPTION', `Research${br}and drafting`], ['CLIENT_ID', `NW${br}001`], ['LINE_ITEM_DESCRIPTION', `Research${br}`]] as const) {
      const r = readLedes(edit({ [field]: value }), { codes });
      assert.equal(r.valid, false, JSON.stringify({ br, field }));
      const v = r.violations.filter((x) => /line break/.test(x.message));
      assert.deepEqual(v.map((x) => [x.line, x.field]), [[3, field]], JSON.stringify({ br, field, violations: r.violations }));
    }
  }
  // Lines ended by CRLF are still read as lines, not values holding a break.
  assert.deepEqual(readLedes(good.replace(/\n/g, '\r\n'), { codes }).violations, []);
});

test('3. validator: a unit cost with more decimals than the currency is valid; money keeps the currency\'s decimals', () => {
  const { edit } = oneLineFile();
  const ok = readLedes(edit({ LINE_ITEM_NUMBER_OF_UNITS: '8.00', LINE_ITEM_UNIT_COST: '0.125', LINE_ITEM_ADJUSTMENT_AMOUNT: '0.00', LINE_ITEM_TOTAL: '1.00', INVOICE_TOTAL: '1.00' }), { codes });
  assert.deepEqual(ok.violations, []);
  assert.equal(ok.invoices[0]!.totalMinor, 100);
  assert.equal(ok.invoices[0]!.lines[0]!.unitCostText, '0.125');
  // Rounded once, half up: 2 x 350.005 = 700.01.
  assert.deepEqual(readLedes(edit({ LINE_ITEM_NUMBER_OF_UNITS: '2.00', LINE_ITEM_UNIT_COST: '350.005', LINE_ITEM_ADJUSTMENT_AMOUNT: '0.00', LINE_ITEM_TOTAL: '700.01', INVOICE_TOTAL: '700.01' }), { codes }).violations, []);
  const fields = (text: string) => readLedes(text, { codes }).violations.map((v) => [v.line, v.field, v.message]);
  assert.deepEqual(fields(edit({ LINE_ITEM_UNIT_COST: '0.12.5' })).filter((v) => v[1] === 'LINE_ITEM_UNIT_COST').map((v) => v.slice(0, 2)), [[3, 'LINE_ITEM_UNIT_COST']]);
  assert.deepEqual(fields(edit({ LINE_ITEM_UNIT_COST: '1e3' })).filter((v) => v[1] === 'LINE_ITEM_UNIT_COST').map((v) => v.slice(0, 2)), [[3, 'LINE_ITEM_UNIT_COST']]);
  assert.ok(fields(edit({ LINE_ITEM_TOTAL: '700.001' })).some((v) => v[1] === 'LINE_ITEM_TOTAL' && /more than 2 decimals/.test(String(v[2]))));
  assert.ok(fields(edit({ LINE_ITEM_UNIT_COST: '9'.repeat(20) })).some((v) => v[1] === 'LINE_ITEM_UNIT_COST' && /too large/.test(String(v[2]))));
});

test('4. TIMEKEEPER_NAME is "Last, First": suffixes stay with the last name, a name already "Last, First" is kept', () => {
  const cases: [string, string][] = [
    ['Margaret Holloway', 'Holloway, Margaret'],
    ['Ann de la Cruz', 'de la Cruz, Ann'],
    ['Robert Smith Jr.', 'Smith Jr., Robert'],
    ['Robert Smith, Jr.', 'Smith Jr., Robert'],
    ['Robert James Smith III', 'Smith III, Robert James'],
    ['Smith, Robert', 'Smith, Robert'],
    ['Smith Jr., Robert', 'Smith Jr., Robert'],
    ['de la Cruz, Ann', 'de la Cruz, Ann'],
    ['Cher', 'Cher'],
  ];
  for (const [name, want] of cases) assert.equal(ledesName(name), want, name);
  // Through the export: the file carries it and stays valid.
  const f = facts(bill([line()]), { timekeepers: new Map([['tk-p', { ...PARTNER, name: 'Robert Smith Jr.' }]]) });
  const r = buildInvoice(f, 'LEDES1998B', settings(), codes);
  assert.ok(r.ok);
  const text = writeLedes('LEDES1998B', [r.invoice], settings());
  assert.deepEqual(readLedes(text, { codes }).violations, []);
  assert.match(text, /\|Smith Jr\., Robert\|/);
});
