/**
 * CSV import: the RFC 4180 parser and the table reader as plain functions, the decimal
 * text helpers, then whole imports over the real app on both databases: clients, matters,
 * time entries and disbursements through the API; one bad row imports nothing and names
 * the row and column; dry runs write nothing; limits; and the preview and apply pages.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CsvError, hoursText, ImportFileError, parseCsv, parseHoursText, parseMoneyText, parsePercentText, parseQuantityText,
  percentText, quantityText, readTable,
} from '../../src/modules/matters/import.ts';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { unescapeHtml, withApp } from '../support/app.ts';
import type { Browser, Page, TestApp } from '../support/app.ts';

// ---------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------

test('parseCsv reads RFC 4180: quotes, embedded commas, newlines and quotes, CRLF, BOM, trailing line end', () => {
  const cases: Array<[string, string, string[][]]> = [
    ['plain', 'a,b,c\n1,2,3\n', [['a', 'b', 'c'], ['1', '2', '3']]],
    ['no final line end', 'a,b\n1,2', [['a', 'b'], ['1', '2']]],
    ['CRLF', 'a,b\r\n1,2\r\n', [['a', 'b'], ['1', '2']]],
    ['lone CR', 'a,b\r1,2\r', [['a', 'b'], ['1', '2']]],
    ['BOM', '\uFEFFname,email\nAcme,a@x.example\n', [['name', 'email'], ['Acme', 'a@x.example']]],
    ['quoted comma', 'a,b\n"Smith, Jones",2\n', [['a', 'b'], ['Smith, Jones', '2']]],
    ['doubled quote', 'a\n"say ""hi"""\n', [['a'], ['say "hi"']]],
    ['embedded LF', 'a,b\n"line 1\nline 2",x\n', [['a', 'b'], ['line 1\nline 2', 'x']]],
    ['embedded CRLF kept', 'a,b\r\n"line 1\r\nline 2",x\r\n', [['a', 'b'], ['line 1\r\nline 2', 'x']]],
    ['empty fields', 'a,b,c\n,,\n', [['a', 'b', 'c'], ['', '', '']]],
    ['empty quoted field', 'a,b\n"",x\n', [['a', 'b'], ['', 'x']]],
    ['blank line in the middle', 'a\n1\n\n2\n', [['a'], ['1'], [''], ['2']]],
    ['only a quote pair', '""', [['']]],
    ['spaces kept', 'a, b \n', [['a', ' b ']]],
    ['unicode', 'name\nZoë Ørsted 東京\n', [['name'], ['Zoë Ørsted 東京']]],
    ['empty input', '', []],
    ['quoted last field without line end', 'a\n"x"', [['a'], ['x']]],
  ];
  for (const [name, input, expected] of cases) assert.deepEqual(parseCsv(input), expected, name);
});

test('parseCsv refuses malformed CSV naming the row', () => {
  const cases: Array<[string, string, number, RegExp]> = [
    ['unterminated quote', 'a,b\n1,"never closed\n2,3\n', 2, /never closed/],
    ['quote inside an unquoted field', 'a,b\n1,2\n3,ab"c\n', 3, /inside unquoted field 2/],
    ['text after a closing quote', 'a,b\n"x"y,2\n', 2, /after a closing quote/],
    ['NUL in a field', 'a,b\n1,2\n3,x\u0000y\n', 3, /NUL character/],
    ['NUL in a quoted field', 'a,b\n"1\u0000",2\n', 2, /NUL character/],
  ];
  for (const [name, input, row, message] of cases) {
    assert.throws(() => parseCsv(input), (e: unknown) => {
      assert.ok(e instanceof CsvError, name);
      assert.equal(e.row, row, name);
      assert.match(e.message, message, name);
      assert.match(e.message, new RegExp(`^Row ${row}:`), name);
      return true;
    });
  }
  assert.throws(() => parseCsv('a\n1\n2\n3\n', { maxRecords: 3 }), /more than 3 rows/);
});

test('readTable checks the header and refuses ragged rows by row number', () => {
  const t = readTable('clients', 'Client Number,NAME,e-mail\n1,Acme,a@x.example\n\n2,"Bravo, Inc",\n3,Too,many,fields\n4\n'.replace('e-mail', 'email'));
  assert.deepEqual(t.columns, ['client_number', 'name', 'email']);
  assert.deepEqual(t.rows.map((r) => [r.row, r.values.name]), [[2, 'Acme'], [4, 'Bravo, Inc']], 'the blank line 3 is skipped but counted');
  assert.deepEqual(t.problems.map((p) => [p.row, p.field]), [[5, null], [6, null]]);
  assert.match(t.problems[0]!.message, /has 4 fields but the header has 3/);
  assert.match(t.problems[1]!.message, /has 1 field but the header has 3/);

  const bad = (text: string, message: RegExp) => assert.throws(() => readTable('time-entries', text), (e: unknown) => {
    assert.ok(e instanceof ImportFileError);
    assert.match(e.message, message);
    return true;
  });
  bad('', /empty/);
  bad('file_number,date,timekeeper,hours,narrative,colour\n', /unknown column "colour"/);
  bad('file_number,date,timekeeper\n', /missing required columns hours, narrative/);
  bad('file_number,date,timekeeper,hours,narrative,date\n', /date given twice/);
  bad('file_number,date\n"1.1,2026\n', /not valid CSV. Row 2: a quoted field is never closed/);
  void readTable('time-entries', 'file_number,date,timekeeper,hours,narrative\n' + '1.1,2026-01-01,MH,1,x\n'.repeat(3), { maxRows: 3 });
  assert.throws(() => readTable('time-entries', 'file_number,date,timekeeper,hours,narrative\n' + '1.1,2026-01-01,MH,1,x\n'.repeat(4), { maxRows: 3 }), /more than 3 rows/);
});

test('decimal text converts exactly: hours, money, quantities, percentages', () => {
  const hours: Array<[string, number | RegExp]> = [
    ['1.5', 90], ['0.1', 6], ['0.25', 15], ['2', 120], ['.5', 30], ['1.50', 90], ['0.016667', /whole number of minutes/],
    ['0.333', /whole number of minutes/], ['1,5', /decimal number/], ['-1', /decimal number/], ['', /required/], ['1e2', /decimal number/],
  ];
  for (const [text, want] of hours) {
    const p = parseHoursText(text);
    if (typeof want === 'number') assert.deepEqual(p, { ok: true, value: want }, text);
    else assert.ok(!p.ok && want.test(p.error), `${text}: ${JSON.stringify(p)}`);
  }
  assert.deepEqual([90, 20, 6, 0, 1, 1440].map(hoursText), ['1.5', '0.3333', '0.1', '0', '0.0167', '24']);

  assert.deepEqual(parseMoneyText('525.00', 'USD'), { ok: true, value: 52_500 });
  assert.deepEqual(parseMoneyText('1,234.5', 'USD'), { ok: true, value: 123_450 });
  assert.deepEqual(parseMoneyText('1000', 'JPY'), { ok: true, value: 1000 });
  assert.deepEqual(parseMoneyText('0.1', 'USD'), { ok: true, value: 10 }, 'never 0.1 as a float');
  assert.match((parseMoneyText('1.001', 'USD') as { error: string }).error, /more than 2 decimal places for USD/);
  assert.match((parseMoneyText('1.5', 'JPY') as { error: string }).error, /more than 0 decimal places/);
  assert.match((parseMoneyText('-5', 'USD') as { error: string }).error, /negative/);
  assert.match((parseMoneyText('$5', 'USD') as { error: string }).error, /must be an amount/);

  assert.deepEqual(parseQuantityText('2.5'), { ok: true, value: 2500 });
  assert.deepEqual(parseQuantityText('0.001'), { ok: true, value: 1 });
  assert.equal(parseQuantityText('0.0001').ok, false);
  assert.equal(parseQuantityText('0').ok, false);
  assert.equal(parseQuantityText('1000001').ok, false);
  assert.deepEqual([1000, 2500, 125, 1].map(quantityText), ['1', '2.5', '0.125', '0.001']);

  assert.deepEqual(parsePercentText('12.5'), { ok: true, value: 1250 });
  assert.equal(parsePercentText('100.01').ok, false);
  assert.equal(parsePercentText('1.234').ok, false);
  assert.deepEqual([1250, 1000, 5, 0].map(percentText), ['12.5', '10', '0.05', '0']);
});

// ---------------------------------------------------------------------------------------
// Imports over the real app
// ---------------------------------------------------------------------------------------

const TABLES = [
  'matters_counter', 'matters_timekeeper', 'matters_timekeeper_rate', 'matters_client', 'matters_client_rate', 'matters_matter',
  'matters_matter_rate', 'matters_time_entry', 'matters_disbursement', 'outbox', 'audit_log',
];

async function snapshot(db: TestDb): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const t of TABLES) out[t] = (await db.db.selectFrom(t).selectAll().execute()).map((r) => JSON.stringify(r)).sort();
  return out;
}

async function count(db: TestDb, table: string): Promise<number> {
  const r = await db.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

interface Importer {
  csv(kind: string, text: string, opts?: { dryRun?: boolean }): Promise<Page>;
  json(path: string, body: unknown): Promise<Page>;
  get(path: string): Promise<Page>;
}

async function importer(t: TestApp): Promise<Importer> {
  const u = await t.user('billing');
  const token = await t.token(u.email);
  const b = t.browser();
  const auth = { authorization: `Bearer ${token}` };
  return {
    csv: (kind, text, opts = {}) => b.request('POST', `/api/v1/imports/${kind}${opts.dryRun === undefined ? '' : `?dryRun=${opts.dryRun}`}`, {
      headers: { ...auth, 'content-type': 'text/csv; charset=utf-8', accept: 'application/json' }, body: text,
    }),
    json: (path, body) => b.postJson(`/api/v1${path}`, body, { headers: auth }),
    get: (path) => b.get(`/api/v1${path}`, { ...auth, accept: 'application/json' }),
  };
}

/** Two timekeepers with standard rates, as a firm would set up before importing. */
async function timekeepers(api: Importer): Promise<void> {
  for (const [initials, name, classification, rate] of [['MH', 'Margaret Holloway', 'partner', '350.00'], ['JD', 'Jo Doe', 'associate', '200.00']] as const) {
    const tk = (await api.json('/timekeepers', { initials, name, classification })).json();
    assert.equal((await api.json(`/timekeepers/${tk.id}/rates`, { effectiveFrom: '2020-01-01', rate })).status, 201);
  }
}

const CLIENTS = [
  'client_number,name,email,address,tax_id',
  '1,Northwind Logistics Inc.,ap@northwind.example,"1 Harbour Rd',
  'Portsmouth",GB123',
  '2,"Kestrel Holdings, LLC",,,',
  '3,"The ""Blue"" Cafe",cafe@blue.example,,',
].join('\r\n') + '\r\n';

const MATTERS = [
  'client_number,name,responsible,billing,originating,practice_area,billing_cycle,next_billing_date,wip_cap',
  '1,Northwind v. Kestrel,MH,,MH,Litigation,MONTH,2026-04-01,25000.00',
  '1,Lease review,jd,MH,,Property,,,',
  '2,Acquisition of Blue Cafe,MH,,,Corporate,quarter,2026-06-30,',
  '3,General advice,JD,,,,,,1000',
].join('\n') + '\n';

const TIME = [
  'file_number,date,timekeeper,hours,narrative,task_code,activity_code,behaviour,rate',
  '1.1,2026-02-03,MH,1.5,"Review pleadings, call client",L120,A104,bill,',
  '1.1,2026-02-04,JD,0.25,"Research ""duty of care""",L110,a102,,',
  '1.2,2026-02-05,MH,2,"Review lease',
  'Clause 4 and 7",,,no charge,',
  '2.1,2026-02-06,JD,1,Due diligence call,,,,180.00',
].join('\n') + '\n';

const DISBURSEMENTS = [
  'file_number,date,code,expense_code,quantity,unit_cost,description,payee,tax_code',
  '1.1,2026-02-04,COURT,E112,1,275.00,Filing fee,County Court,',
  '1.1,2026-02-05,copy,E101,2.5,0.10,Copies,,SALES',
  '3.1,2026-02-06,COURIER,,,45,Courier to client,FastPost,',
].join('\n');

eachDialect('a firm moves in: clients, matters, time entries and disbursements import through the API', async (db) => {
  await withApp(db, async (t) => {
    const api = await importer(t);
    await timekeepers(api);

    const clients = await api.csv('clients', CLIENTS);
    assert.equal(clients.status, 201, clients.text);
    const cr = clients.json();
    assert.deepEqual([cr.kind, cr.dryRun, cr.rows, cr.accepted, cr.imported, cr.rejected], ['clients', false, 3, 3, 3, []]);
    assert.deepEqual(cr.created.map((x: any) => [x.row, x.reference]), [[2, '1'], [3, '2'], [4, '3']], 'rows count the header as 1; a quoted line break stays inside its row');
    const c1 = (await api.get(`/clients/${cr.created[0].id}`)).json();
    assert.deepEqual([c1.name, c1.email, c1.address, c1.taxId], ['Northwind Logistics Inc.', 'ap@northwind.example', '1 Harbour Rd\nPortsmouth', 'GB123']);
    assert.equal((await api.get(`/clients/${cr.created[2].id}`)).json().name, 'The "Blue" Cafe');

    const matters = await api.json('/imports/matters', { csv: MATTERS });
    assert.equal(matters.status, 201, matters.text);
    assert.deepEqual(matters.json().created.map((x: any) => x.reference), ['1.1', '1.2', '2.1', '3.1']);
    const list = (await api.get('/matters')).json();
    const m11 = list.items.find((m: any) => m.fileNumber === '1.1');
    assert.deepEqual([m11.wipCap, m11.billingCycle, m11.nextBillingDate, m11.practiceArea], ['25000.00', 'MONTH', '2026-04-01', 'Litigation']);
    const m12 = list.items.find((m: any) => m.fileNumber === '1.2');
    assert.notEqual(m12.responsibleTimekeeperId, m12.billingTimekeeperId, 'billing given separately');
    assert.equal(list.items.find((m: any) => m.fileNumber === '2.1').billingCycle, 'QUARTER');
    assert.equal(list.items.find((m: any) => m.fileNumber === '3.1').wipCap, '1000.00');

    const time = await api.csv('time-entries', TIME);
    assert.equal(time.status, 201, time.text);
    assert.deepEqual([time.json().rows, time.json().imported], [4, 4]);
    const entries = (await api.get('/time-entries?limit=10')).json();
    assert.equal(entries.total, 4);
    const byDate = Object.fromEntries(entries.items.map((e: any) => [e.workDate, e]));
    assert.deepEqual([byDate['2026-02-03'].amount, byDate['2026-02-03'].minutes, byDate['2026-02-03'].taskCode], ['525.00', 90, 'L120']);
    assert.deepEqual([byDate['2026-02-04'].amount, byDate['2026-02-04'].activityCode, byDate['2026-02-04'].narrative], ['60.00', 'A102', 'Research "duty of care"'], '0.25 h rounds up to 0.3 h at 200.00');
    assert.deepEqual([byDate['2026-02-05'].behaviour, byDate['2026-02-05'].narrative], ['no_charge', 'Review lease\nClause 4 and 7']);
    assert.deepEqual([byDate['2026-02-06'].rate, byDate['2026-02-06'].rateSource, byDate['2026-02-06'].rateReason, byDate['2026-02-06'].amount], ['180.00', 'override', 'Imported rate', '180.00']);

    const disb = await api.csv('disbursements', DISBURSEMENTS);
    assert.equal(disb.status, 201, disb.text);
    const ds = (await api.get('/disbursements')).json();
    assert.deepEqual(ds.items.map((d: any) => [d.fileNumber, d.code, d.quantity, d.amount]).sort(), [
      ['1.1', 'COPY', '2.5', '0.25'], ['1.1', 'COURT', '1', '275.00'], ['3.1', 'COURIER', '1', '45.00'],
    ]);
    assert.deepEqual((await api.get(`/matters/${m11.id}`)).json().wip.total, '860.25');

    assert.deepEqual(time.json().warnings, []);
    const capped = await api.csv('time-entries', 'file_number,date,timekeeper,hours,narrative\n3.1,2026-02-07,JD,6,Long day\n');
    assert.equal(capped.status, 201, capped.text);
    assert.match(capped.json().warnings.join(' '), /Matter 3\.1 is over its WIP cap/, '1200.00 of time and 45.00 of courier pass the 1000.00 cap');

    // Every import went through the commands: events and audit rows exist.
    const recorded = await db.db.selectFrom('outbox').select('type').where('type', '=', 'matters.wip_recorded').execute();
    assert.equal(recorded.length, 8);
    assert.equal((await db.db.selectFrom('audit_log').select('id').where('action', '=', 'matters.client_created').execute()).length, 3);
  });
});

eachDialect('a file with one bad row imports nothing and names the row and column', async (db) => {
  await withApp(db, async (t) => {
    const api = await importer(t);
    await timekeepers(api);
    assert.equal((await api.csv('clients', CLIENTS)).status, 201);
    assert.equal((await api.csv('matters', MATTERS)).status, 201);
    const before = await snapshot(db);

    const badTime = TIME.replace('1.1,2026-02-04,JD,0.25', '1.1,2026-02-04,JD,0.333');
    const res = await api.csv('time-entries', badTime);
    assert.equal(res.status, 422, res.text);
    const body = res.json();
    assert.equal(body.error.code, 'import_rejected');
    assert.match(body.error.message, /Nothing was imported: 1 row\(s\) rejected, the first is row 3 \(hours\)/);
    assert.deepEqual(body.error.fields, { 'rows.3.hours': body.rejected[0].message });
    assert.deepEqual(body.rejected.map((r: any) => [r.row, r.field]), [[3, 'hours']]);
    assert.match(body.rejected[0].message, /whole number of minutes/);
    assert.deepEqual([body.rows, body.accepted, body.imported], [4, 3, 0]);
    assert.deepEqual(await snapshot(db), before, 'nothing was written, not even the good rows');

    // Problems only the database can see (unknown matter, closed matter, no rate) are named too, all at once.
    const many = [
      'file_number,date,timekeeper,hours,narrative,task_code',
      '1.1,2026-02-03,MH,1,Fine,',
      '9.9,2026-02-03,MH,1,No such matter,',
      '1.1,2019-06-01,JD,1,Before any rate,',
      '1.1,2026-02-31,ZZ,x,,L999',
      '1.1,2026-02-03,MH,1,Fine too',
    ].join('\n');
    const r2 = await api.csv('time-entries', many);
    assert.equal(r2.status, 422);
    const fieldsByRow = new Map<number, string[]>();
    for (const r of r2.json().rejected) fieldsByRow.set(r.row, [...(fieldsByRow.get(r.row) ?? []), r.field]);
    assert.deepEqual(fieldsByRow.get(3), ['file_number']);
    assert.deepEqual(fieldsByRow.get(4), ['timekeeper'], 'no rate for JD in 2019 is found against the database');
    assert.deepEqual(fieldsByRow.get(5)!.sort(), ['date', 'hours', 'narrative', 'task_code', 'timekeeper']);
    assert.deepEqual(fieldsByRow.get(6), [null], 'the ragged row');
    assert.equal(fieldsByRow.has(2), false);
    assert.deepEqual(await snapshot(db), before);

    // Clients: a numbering clash and a bad email.
    const r3 = await api.csv('clients', 'client_number,name,email\n4,Fine,\n9,Wrong number,\n,Bad email,not-an-email\n');
    assert.equal(r3.status, 422);
    assert.deepEqual(r3.json().rejected.map((r: any) => [r.row, r.field]), [[3, 'client_number'], [4, 'email']]);
    assert.match(r3.json().rejected[0].message, /would be 5, not 9/);
    // Matters: an unknown client and unknown initials.
    const r4 = await api.csv('matters', 'client_number,name,responsible,wip_cap\n7,X,MH,\n1,Y,QQ,12.345\n');
    assert.deepEqual(r4.json().rejected.map((r: any) => [r.row, r.field]), [[2, 'client_number'], [3, 'responsible'], [3, 'wip_cap']]);
    // Disbursements: amounts in the matter's currency.
    const r5 = await api.csv('disbursements', 'file_number,date,code,unit_cost,description\n1.1,2026-02-01,COURT,1.001,Fee\n1.1,2026-02-01,bad code!,1,Fee\n');
    assert.deepEqual(r5.json().rejected.map((r: any) => [r.row, r.field]), [[2, 'unit_cost'], [3, 'code']]);
    assert.deepEqual(await snapshot(db), before);
  });
});

eachDialect('a dry run checks against the database and writes nothing; limits and bad files are refused clearly', async (db) => {
  await withApp(db, async (t) => {
    const api = await importer(t);
    await timekeepers(api);
    const before = await snapshot(db);
    const dry = await api.csv('clients', CLIENTS, { dryRun: true });
    assert.equal(dry.status, 200);
    assert.deepEqual([dry.json().dryRun, dry.json().accepted, dry.json().imported, dry.json().rejected], [true, 3, 0, []]);
    assert.deepEqual(dry.json().created.map((x: any) => x.reference), ['1', '2', '3'], 'the numbers it would get');
    const dryBad = await api.csv('clients', 'name,email\nX,bad\n', { dryRun: true });
    assert.equal(dryBad.status, 200, 'a dry run reports rejections without an error');
    assert.deepEqual(dryBad.json().rejected.map((r: any) => [r.row, r.field]), [[2, 'email']]);
    assert.deepEqual(await snapshot(db), before, 'the dry runs rolled back');
    assert.equal(await count(db, 'matters_client'), 0);

    const tooMany = await api.csv('clients', 'name\n' + 'x\n'.repeat(50_001));
    assert.equal(tooMany.status, 422);
    assert.match(tooMany.json().error.message, /more than 50000 rows/);
    assert.equal(await count(db, 'matters_client'), 0);

    const checks: Array<[Promise<Page>, number, RegExp]> = [
      [api.csv('invoices', 'name\nX\n'), 404, /No import of "invoices"/],
      [api.csv('clients', ''), 422, /empty/],
      [api.csv('clients', 'name\n'), 422, /no rows/],
      [api.csv('clients', 'nom,courriel\nX,y\n'), 422, /unknown columns "nom", "courriel"/],
      [api.csv('clients', 'name\n"open\n'), 422, /Row 2: a quoted field is never closed/],
      [api.json('/imports/clients', { csv: 1 }), 422, /Please correct: csv/],
    ];
    for (const [p, status, message] of checks) {
      const r = await p;
      assert.equal(r.status, status, r.text);
      assert.match(r.json().error.message, message);
    }
    const latin1 = await t.browser().request('POST', '/api/v1/imports/clients', {
      headers: { authorization: `Bearer ${await t.token('billing@firm.test')}`, 'content-type': 'text/csv' },
      body: new Uint8Array([0x6e, 0x61, 0x6d, 0x65, 0x0a, 0x43, 0x61, 0x66, 0xe9, 0x0a]), // "name\nCafé" in Latin-1
    });
    assert.equal(latin1.status, 422);
    assert.match(latin1.json().error.message, /not UTF-8/);
    const xml = await t.browser().request('POST', '/api/v1/imports/clients', {
      headers: { authorization: `Bearer ${await t.token('billing@firm.test')}`, 'content-type': 'application/xml' }, body: '<x/>',
    });
    assert.equal(xml.status, 415);
    assert.equal(await count(db, 'matters_client'), 0);
  });
}, { timeout: 180_000 });

// ---------------------------------------------------------------------------------------
// The pages
// ---------------------------------------------------------------------------------------

async function signedIn(t: TestApp): Promise<Browser> {
  await t.user('billing', { email: 'clerk@firm.test' });
  const b = t.browser();
  const res = await b.login('clerk@firm.test');
  assert.equal(res.status, 303);
  return b;
}

eachDialect('the preview page lists every rejected row with its column and reason, and imports nothing', async (db) => {
  await withApp(db, async (t) => {
    const b = await signedIn(t);
    const form = await b.get('/matters/import');
    assert.equal(form.status, 200);
    assert.match(form.text, /client_number/);
    assert.match(form.text, /file_number/);
    assert.match(form.text, /enctype="multipart\/form-data"/);

    const before = await snapshot(db);
    const preview = await b.post('/matters/import/preview', { kind: 'clients', csv: 'name,email\nGood Client,\n"Bad, Email",nope\n,missing@name.example\n' });
    assert.equal(preview.status, 200, preview.text);
    const html = unescapeHtml(preview.text);
    assert.match(html, /3 rows read:\s*<strong>1 accepted<\/strong>, <strong class="error">2 rejected<\/strong>/);
    const rejected = /<section id="import-rejected"[\s\S]*?<\/section>/.exec(html)?.[0] ?? '';
    const rows = [...rejected.matchAll(/<tr class="rejected"><td class="num">(\d+)<\/td><td><code>([a-z_]+)<\/code><\/td><td>([^<]*)<\/td><\/tr>/g)].map((m) => [Number(m[1]), m[2], m[3]]);
    assert.deepEqual(rows.map((r) => [r[0], r[1]]), [[3, 'email'], [4, 'name']]);
    assert.match(String(rows[0]![2]), /email address/);
    assert.match(html, /Bad, Email/, 'the row table shows the values');
    assert.doesNotMatch(html, /name="payload"/, 'no import button while rows are rejected');
    assert.deepEqual(await snapshot(db), before);

    // A file that passes: preview, then apply.
    const good = await b.post('/matters/import/preview', { kind: 'clients', csv: CLIENTS });
    assert.equal(good.status, 200);
    assert.match(unescapeHtml(good.text), /3 rows read:\s*<strong>3 accepted<\/strong>\./);
    assert.deepEqual(await snapshot(db), before, 'the preview wrote nothing');
    const payload = /name="payload" value="([^"]*)"/.exec(good.text)?.[1];
    assert.ok(payload, 'the apply form carries the file');
    const done = await b.post('/matters/import/apply', { kind: 'clients', payload: payload! });
    assert.equal(done.status, 201, done.text);
    assert.match(done.text, /3 rows imported/);
    assert.equal(await count(db, 'matters_client'), 3);
    const address = await db.db.selectFrom('matters_client').select('address').where('client_number', '=', 1).executeTakeFirstOrThrow() as { address: string };
    assert.equal(address.address, '1 Harbour Rd\nPortsmouth', 'the file arrived byte for byte');

    // Applying the same file again is a repeat (409, asking to confirm); confirmed, it clashes on the numbers: nothing more is imported.
    const repeat = await b.post('/matters/import/apply', { kind: 'clients', payload: payload! });
    assert.equal(repeat.status, 409);
    assert.match(unescapeHtml(repeat.text), /Nothing was imported: this file was already imported on/);
    const again = await b.post('/matters/import/apply', { kind: 'clients', payload: payload!, importAgain: 'yes' });
    assert.equal(again.status, 422);
    assert.match(again.text, /Nothing was imported/);
    assert.match(again.text, /would be 4, not 1/);
    assert.equal(await count(db, 'matters_client'), 3);

    // A bad file and a missing file are reported on the form.
    const broken = await b.post('/matters/import/preview', { kind: 'clients', csv: 'name\n"open\n' });
    assert.equal(broken.status, 422);
    assert.match(unescapeHtml(broken.text), /Row 2: a quoted field is never closed/);
    const none = await b.post('/matters/import/preview', { kind: 'clients', csv: '' });
    assert.equal(none.status, 422);
    assert.match(none.text, /Choose a CSV file/);

    // Readonly and timekeeper users cannot import.
    await t.user('readonly', { email: 'ro@firm.test' });
    const ro = t.browser();
    await ro.login('ro@firm.test');
    assert.equal((await ro.get('/matters/import')).status, 403);
    assert.equal((await ro.post('/matters/import/preview', { kind: 'clients', csv: CLIENTS })).status, 403);
  });
});

eachDialect('the preview accepts an uploaded file (multipart)', async (db) => {
  await withApp(db, async (t) => {
    const b = await signedIn(t);
    await b.get('/matters/import');
    const fd = new FormData();
    fd.set('_csrf', b.csrf!);
    fd.set('kind', 'clients');
    fd.set('file', new File([`\uFEFF${CLIENTS}`], 'clients.csv', { type: 'text/csv' }));
    const res = await b.request('POST', '/matters/import/preview', { body: fd });
    assert.equal(res.status, 200, res.text);
    assert.match(unescapeHtml(res.text), /3 rows read:\s*<strong>3 accepted<\/strong>/);
    assert.match(unescapeHtml(res.text), /Kestrel Holdings, LLC/);
  });
});
