/**
 * Audit of LEDES text values: a description, name or address with a no-break space (or a
 * BOM) at either end is trimmed like any other space, never written so the file fails its own
 * check (a 500 with no file); a cut long text never ends on half a surrogate pair; and a law
 * firm id holding a line break other than CR/LF, a tab or another control character is refused
 * naming LAW_FIRM_ID when saved and, saved before that check, at export.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEbillingCommands, LedesRefusal } from '../../src/modules/ebilling/index.ts';
import { buildInvoice, settingsErrors, writeLedes } from '../../src/modules/ebilling/domain/export.ts';
import { cleanText, COLUMNS, MAX_TEXT_CHARS } from '../../src/modules/ebilling/domain/format.ts';
import { readLedes } from '../../src/modules/ebilling/domain/reader.ts';
import { HttpError } from '../../src/shared/web/errors.ts';
import { eachDialect } from '../support/db.ts';
import { ctx, firm, setup } from '../billing/support.ts';
import { bill, codes, facts, line, settings } from './support.ts';

const count = async (db: { db: any }, table: string) => Number((await db.db.selectFrom(table).select((eb: any) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

test('cleanText: white space of any kind at either end is trimmed; a cut never splits a surrogate pair', () => {
  for (const [raw, want] of [
    ['Research\u00a0', 'Research'], ['\ufeffResearch', 'Research'], ['\u3000Hearing\u2003', 'Hearing'], ['\u00a0 Call \u00a0', 'Call'],
    ['Müller\u00a0GmbH', 'Müller\u00a0GmbH'], // inside a value it is text
  ] as const) assert.equal(cleanText(raw), want, JSON.stringify(raw));
  const long = `${'a'.repeat(MAX_TEXT_CHARS - 1)}😀 tail`;
  const cut = cleanText(long);
  assert.ok(cut.length <= MAX_TEXT_CHARS);
  assert.equal(Buffer.from(cut, 'utf8').toString('utf8'), cut, 'the cut text survives UTF-8 as it is (no lone surrogate)');
  assert.ok(!/[\ud800-\udbff]$/.test(cut));
});

test('a line description, client name and matter name ending in a no-break space: the file is valid and the values trimmed, both formats', () => {
  for (const format of ['LEDES1998B', 'LEDES1998BI'] as const) {
    const f = facts(bill([line({ description: 'Research\u00a0' }), line({ description: '\ufeffDraft reply' })]));
    const g = { ...f, matter: { ...f.matter!, name: 'Northwind v. Kestrel\u00a0' }, client: { ...f.client!, name: '\u00a0Northwind Logistics Inc.' } };
    const r = buildInvoice(g, format, settings(), codes);
    assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.problems));
    const text = writeLedes(format, [r.invoice], settings());
    assert.deepEqual(readLedes(text, { codes, requireClientMatterId: true }).violations, [], format);
    const cols = COLUMNS[format];
    const rows = text.split('\n').slice(2, -1).map((l) => Object.fromEntries(l.slice(0, -2).split('|').map((v, i) => [cols[i]!, v])));
    assert.deepEqual(rows.map((x) => x.LINE_ITEM_DESCRIPTION), ['Research', 'Draft reply']);
    assert.equal(rows[0]!.INVOICE_DESCRIPTION, 'Professional services: Northwind v. Kestrel');
    if (format === 'LEDES1998BI') assert.deepEqual([rows[0]!.MATTER_NAME, rows[0]!.CLIENT_NAME], ['Northwind v. Kestrel', 'Northwind Logistics Inc.']);
  }
});

test('law firm id: a tab, VT, FF, NEL or a Unicode line separator is refused when saved and at export, naming LAW_FIRM_ID', () => {
  for (const bad of ['24\t6437381', '24\u000b6437381', '24\u000c6437381', '24\u00856437381', '24\u20286437381', '24\u20296437381', '24\u00016437381']) {
    assert.match(settingsErrors(settings({ lawFirmId: bad }), codes).lawFirmId ?? '', /control characters/, JSON.stringify(bad));
    for (const format of ['LEDES1998B', 'LEDES1998BI'] as const) {
      const r = buildInvoice(facts(bill([line()])), format, settings({ lawFirmId: bad }), codes);
      assert.ok(!r.ok, `${JSON.stringify(bad)} ${format}: expected a refusal`);
      assert.deepEqual(r.problems.map((p) => [p.lineNo, p.field]), [[null, 'LAW_FIRM_ID']]);
      assert.match(r.problems[0]!.fix, /e-billing settings page/);
    }
  }
  // Other text settings are cleaned when written, but refused when typed, the same way.
  assert.match(settingsErrors(settings({ lawFirmName: 'Holloway\u2028Stern' }), codes).lawFirmName ?? '', /line breaks/);
});

async function billWithAdHoc(db: Parameters<typeof setup>[0], description: string) {
  const s = await setup(db);
  const { partner, matter } = await firm(s.cmds);
  const E = createEbillingCommands({ db: db.db, clock: s.clock, relay: s.rt.relay });
  await s.cmds.setBillingOptions(ctx, matter.id, { set: { ebilling: { enabled: true, codeSet: 'litigation', format: 'LEDES1998B', clientLedesId: 'NW-001', matterLedesId: 'NW-M-77' } } });
  await s.cmds.recordTimeEntry(ctx, { matterId: matter.id, timekeeperId: partner.id, workDate: '2026-02-10', rawMinutes: 60, narrative: 'Advice', taskCode: 'L110', activityCode: 'A101' });
  await s.drain();
  const draft = await s.billing.createDraft(ctx, {
    matterId: matter.id, invoiceDate: '2026-02-28', upTo: '2026-02-28',
    request: { adHoc: [{ kind: 'fee', description, amountMinor: 15_000, taxCode: null, timekeeperId: null }] },
  });
  const b = await s.billing.approve(ctx, draft.billId);
  await s.drain();
  return { E, b };
}

eachDialect('real bill: an ad hoc fee described with a trailing no-break space exports (it was a 500 and no file)', async (db) => {
  const { E, b } = await billWithAdHoc(db, 'Agreed conference fee\u00a0');
  await E.saveSettings(ctx, settings({ defaultTaskCode: 'L120', defaultActivityCode: 'A101' }), 0);
  const { files } = await E.exportBills(ctx, { billIds: [b.billId], mode: 'single' });
  const read = readLedes(files[0]!.content, { codes, requireClientMatterId: true });
  assert.deepEqual(read.violations, []);
  assert.deepEqual(read.invoices[0]!.lines.map((l) => l.description), ['Advice', 'Agreed conference fee']);
  assert.equal(read.invoices[0]!.totalMinor, b.totals.totalMinor);
  assert.equal(await count(db, 'ebilling_export'), 1);
});

eachDialect('real bill: a law firm id with a line separator is refused naming lawFirmId when saved, and naming LAW_FIRM_ID at export when saved before; nothing written', async (db) => {
  const { E, b } = await billWithAdHoc(db, 'Agreed conference fee');
  await assert.rejects(E.saveSettings(ctx, settings({ lawFirmId: '24\u20286437381', defaultTaskCode: 'L120', defaultActivityCode: 'A101' }), 0),
    (e: unknown) => e instanceof HttpError && e.status === 422 && Object.keys(e.fields).join() === 'lawFirmId');
  assert.equal(await count(db, 'ebilling_settings'), 0, 'nothing saved');
  // Saved before the settings refused it: the export names the field and writes nothing.
  await E.saveSettings(ctx, settings({ defaultTaskCode: 'L120', defaultActivityCode: 'A101' }), 0);
  const row = await db.db.selectFrom('ebilling_settings').select('settings_json').executeTakeFirstOrThrow() as { settings_json: string };
  await db.db.updateTable('ebilling_settings').set({ settings_json: JSON.stringify({ ...JSON.parse(row.settings_json), lawFirmId: '24\u20286437381' }) }).execute();
  const refused = await E.exportBills(ctx, { billIds: [b.billId], mode: 'single' }).then(() => null, (e: unknown) => e);
  assert.ok(refused instanceof LedesRefusal, String(refused));
  assert.equal(refused.status, 422);
  assert.deepEqual(refused.problems.map((p) => [p.lineNo, p.field]), [[null, 'LAW_FIRM_ID']]);
  assert.equal(await count(db, 'ebilling_export'), 0);
  assert.equal(await count(db, 'ebilling_export'), 0);
});

test('a timekeeper named only with characters LEDES removes: refused naming TIMEKEEPER_NAME, not a file that fails its own check', () => {
  for (const name of ['[]', '|', '[ | ]']) {
    for (const format of ['LEDES1998B', 'LEDES1998BI'] as const) {
      const f = facts(bill([line({ timekeeperId: 'tk-x' })]), { timekeepers: new Map([['tk-x', { timekeeperId: 'tk-x', initials: 'XX', name, ledesClassification: 'AS' }]]) });
      const r = buildInvoice(f, format, settings(), codes);
      assert.ok(!r.ok, `${name} ${format}: expected a refusal`);
      assert.deepEqual(r.problems.map((p) => [p.lineNo, p.field]), [[1, 'TIMEKEEPER_NAME']]);
      assert.match(r.problems[0]!.fix, /timekeepers page/);
    }
  }
  // A name that is partly such characters is cleaned and goes out.
  const f = facts(bill([line({ timekeeperId: 'tk-x' })]), { timekeepers: new Map([['tk-x', { timekeeperId: 'tk-x', initials: 'XX', name: 'Ann [Temp] Lee|', ledesClassification: 'AS' }]]) });
  const r = buildInvoice(f, 'LEDES1998B', settings(), codes);
  assert.ok(r.ok);
  assert.deepEqual(readLedes(writeLedes('LEDES1998B', [r.invoice], settings()), { codes }).violations, []);
  assert.equal(r.invoice.lines[0]!.timekeeperName, 'Lee, Ann Temp');
});

test('TIMEKEEPER_NAME is "Last, First" when the name holds a no-break space (or another Unicode space) between its words; 1998BI splits it too', () => {
  for (const name of ['Margaret\u00a0Holloway', 'Margaret\u2007Holloway', 'Margaret \u00a0Holloway']) {
    const f = facts(bill([line()]), { timekeepers: new Map([['tk-p', { timekeeperId: 'tk-p', initials: 'MH', name, ledesClassification: 'PT' }]]) });
    const r = buildInvoice(f, 'LEDES1998BI', settings(), codes);
    assert.ok(r.ok);
    const text = writeLedes('LEDES1998BI', [r.invoice], settings());
    assert.deepEqual(readLedes(text, { codes }).violations, []);
    const cols = COLUMNS.LEDES1998BI;
    const row = Object.fromEntries(text.split('\n')[2]!.slice(0, -2).split('|').map((v, i) => [cols[i]!, v]));
    assert.deepEqual([row.TIMEKEEPER_NAME, row.TIMEKEEPER_LAST_NAME, row.TIMEKEEPER_FIRST_NAME], ['Holloway, Margaret', 'Holloway', 'Margaret'], JSON.stringify(name));
  }
});
