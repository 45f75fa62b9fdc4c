/**
 * Applying a CSV import once: each preview renders a fresh import id into its apply form,
 * and the apply records it (matters_import) in its own transaction. "Apply" pressed twice
 * at once, or again later, imports the file once (one row, one audit row, one event per
 * item, one copy in billing and the ledger); the repeat is answered with the first apply's
 * page (201, the same rows) saying it was already applied. The same id with another file is
 * refused (409 naming importId), a malformed one is 422, and an apply without an id (a page
 * shown before ids existed) imports as it always did. On both databases: on Postgres the
 * parallel applies race on the id's primary key.
 */
import assert from 'node:assert/strict';
import { systemContext } from '../../src/shared/events.ts';
import { unescapeHtml, withApp } from '../support/app.ts';
import type { Browser, Page, TestApp } from '../support/app.ts';
import { eachDialect } from '../support/db.ts';
import { mattersCommands } from './support.ts';

const ctx = systemContext('import-idempotent-test', 'test');

async function firm(t: TestApp): Promise<{ matterId: string; fileNumber: string }> {
  const cmds = mattersCommands(t.db, t);
  const mh = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  const client = await cmds.createClient(ctx, { name: 'Northwind Logistics Inc.' });
  const m = await cmds.openMatter(ctx, { clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: mh.id, openedOn: '2026-01-05' });
  return { matterId: m.id, fileNumber: m.fileNumber };
}

async function signedIn(t: TestApp): Promise<Browser> {
  const u = await t.user('billing');
  const b = t.browser();
  assert.equal((await b.login(u.email)).status, 303);
  assert.equal((await b.get('/matters/import')).status, 200);
  return b;
}

async function countWhere(t: TestApp, table: string, column: string, value: string): Promise<number> {
  const r = await t.db.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).where(column, '=', value).executeTakeFirstOrThrow() as { n: number | string };
  return Number(r.n);
}

async function countAll(t: TestApp, table: string): Promise<number> {
  const r = await t.db.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow() as { n: number | string };
  return Number(r.n);
}

/** Preview a disbursements CSV; the apply form's fields as the page renders them. */
async function preview(b: Browser, csv: string): Promise<{ kind: string; payload: string; importId: string }> {
  const p = await b.post('/matters/import/preview', { kind: 'disbursements', csv });
  assert.equal(p.status, 200, p.text);
  const payload = /name="payload" value="([^"]*)"/.exec(p.text)?.[1];
  const importId = /name="importId" value="([^"]*)"/.exec(p.text)?.[1];
  assert.ok(payload, 'the apply form carries the file');
  assert.ok(importId, 'the apply form carries an import id');
  return { kind: 'disbursements', payload, importId };
}

const already = (p: Page) => /id="import-already-applied"/.test(p.text);

eachDialect('the import apply posted twice at once, or again later, imports the file once', async (db) => {
  await withApp(db, async (t) => {
    const { matterId, fileNumber } = await firm(t);
    const b = await signedIn(t);
    const csv = `file_number,date,code,quantity,unit_cost,description,payee\n${fileNumber},2026-12-01,COURT,1,275.00,Audit3 filing fee,County Court\n`;
    await t.runtime.relay.drain();
    const eventsBefore = await countWhere(t, 'outbox', 'type', 'matters.wip_recorded');

    // One preview, its apply form posted twice at once (a double click).
    const form = await preview(b, csv);
    const first = await preview(b, csv);
    assert.notEqual(first.importId, form.importId, 'each preview has its own import id');
    const both = await Promise.all([1, 2].map(() => b.post('/matters/import/apply', form)));
    for (const r of both) assert.equal(r.status, 201, r.text);

    const check = async (label: string) => {
      assert.equal(await countWhere(t, 'matters_disbursement', 'matter_id', matterId), 1, `${label}: one disbursement`);
      assert.equal(await countWhere(t, 'audit_log', 'action', 'matters.disbursement_recorded'), 1, `${label}: one audit row for it`);
      assert.equal(await countWhere(t, 'outbox', 'type', 'matters.wip_recorded') - eventsBefore, 1, `${label}: one event for it`);
      assert.equal(await countAll(t, 'matters_import'), 1, `${label}: one import recorded`);
      assert.equal(await countWhere(t, 'audit_log', 'action', 'matters.import_applied'), 1, `${label}: one audit row for the import`);
    };
    await check('parallel');
    for (const r of both) assert.match(r.text, /1 row imported/);
    assert.equal(both.filter(already).length, 1, 'one apply imported, the other was answered with its outcome');
    assert.match(unescapeHtml(both.find(already)!.text), /This import was already applied \(.+, by billing@firm\.test\): nothing more was imported/);
    const row = await t.db.db.selectFrom('matters_import').selectAll().executeTakeFirstOrThrow() as Record<string, unknown>;
    assert.deepEqual([row.id, row.kind, Number(row.row_count), Number(row.imported), row.actor_label], [form.importId, 'disbursements', 1, 1, 'billing@firm.test']);

    // The same form posted again later: the first apply's page again, nothing written.
    const again = await b.post('/matters/import/apply', form);
    assert.equal(again.status, 201, again.text);
    assert.ok(already(again));
    assert.match(again.text, /1 row imported/);
    await check('sequential');

    // Billing's and the ledger's copies hold the fee once, so the next bill bills it once.
    await t.runtime.relay.drain();
    const item = await t.db.db.selectFrom('matters_disbursement').select('id').where('matter_id', '=', matterId).executeTakeFirstOrThrow() as { id: string };
    assert.equal(await countWhere(t, 'billing_wip', 'matter_id', matterId), 1, 'one item in billing\'s copy');
    assert.equal(await countWhere(t, 'billing_wip', 'id', item.id), 1);
    assert.equal(await countWhere(t, 'ledger_wip', 'matter_id', matterId), 1, 'one item in the ledger\'s copy');

    // The same id with another file: refused naming importId, nothing written.
    const other = await preview(b, csv.replace('275.00', '300.00'));
    const clash = await b.post('/matters/import/apply', { ...other, importId: form.importId });
    assert.equal(clash.status, 409, clash.text);
    assert.match(unescapeHtml(clash.text), /Import id is the id of another import/);
    const bad = await b.post('/matters/import/apply', { ...other, importId: 'x' });
    assert.equal(bad.status, 422, bad.text);
    assert.match(unescapeHtml(bad.text), /Import id must be 8 to 64 letters, digits or dashes/);
    await check('refused');

    // A fresh preview of the same file is a second import of it: the preview says the file was imported
    // before, and the apply needs "Import it again" ticked (without it: 409, the preview again, nothing written).
    const second = await b.post('/matters/import/preview', { kind: 'disbursements', csv });
    assert.match(unescapeHtml(second.text), /This file was already imported<\/strong> on .+ by billing@firm\.test \(1 row\)\. Importing it again records every row a second time, and the next bills would take them twice/);
    assert.match(second.text, /name="importAgain" value="yes" required/);
    const unconfirmed = await b.post('/matters/import/apply', first);
    assert.equal(unconfirmed.status, 409, unconfirmed.text);
    assert.match(unescapeHtml(unconfirmed.text), /Nothing was imported: this file was already imported on \d{4}-\d{2}-\d{2} by billing@firm\.test \(1 row\)/);
    assert.match(unconfirmed.text, /name="importAgain"/, 'the preview again, to confirm');
    await check('unconfirmed');
    const fresh = await b.post('/matters/import/apply', { ...first, importAgain: 'yes' });
    assert.equal(fresh.status, 201, fresh.text);
    assert.ok(!already(fresh));
    assert.equal(await countWhere(t, 'matters_disbursement', 'matter_id', matterId), 2);
    assert.equal(await countAll(t, 'matters_import'), 2);

    // An apply without an id (a preview page shown before ids existed) imports as before.
    const { importId: _unused, ...withoutId } = other;
    const old = await b.post('/matters/import/apply', withoutId);
    assert.equal(old.status, 201, old.text);
    assert.ok(!already(old));
    assert.equal(await countWhere(t, 'matters_disbursement', 'matter_id', matterId), 3);
    assert.equal(await countAll(t, 'matters_import'), 3, 'recorded under an id of its own: a repeat of it is known');
  });
});

eachDialect('rows a file holds twice are said on the preview; both are imported', async (db) => {
  await withApp(db, async (t) => {
    const { matterId, fileNumber } = await firm(t);
    const b = await signedIn(t);
    const row = `${fileNumber},2026-12-01,COURT,1,275.00,Filing fee,County Court`;
    const csv = `file_number,date,code,quantity,unit_cost,description,payee\n${row}\n${fileNumber},2026-12-02,COPY,1,5.00,Copies,\n${row}\n`;
    const p = await b.post('/matters/import/preview', { kind: 'disbursements', csv });
    assert.equal(p.status, 200, p.text);
    assert.match(unescapeHtml(p.text), /Row 4 is the same as row 2: both are imported \(remove one if it is not meant twice\)/);
    const form = { kind: 'disbursements', payload: /name="payload" value="([^"]*)"/.exec(p.text)![1]!, importId: /name="importId" value="([^"]*)"/.exec(p.text)![1]! };
    assert.equal((await b.post('/matters/import/apply', form)).status, 201);
    assert.equal(await countWhere(t, 'matters_disbursement', 'matter_id', matterId), 3);
  });
});

eachDialect('five parallel applies of one clients preview create each client once', async (db) => {
  await withApp(db, async (t) => {
    const b = await signedIn(t);
    const p = await b.post('/matters/import/preview', { kind: 'clients', csv: 'name,email\nNorthwind Logistics Inc.,ap@northwind.example\nKestrel Holdings,\n' });
    assert.equal(p.status, 200, p.text);
    const form = {
      kind: 'clients',
      payload: /name="payload" value="([^"]*)"/.exec(p.text)![1]!,
      importId: /name="importId" value="([^"]*)"/.exec(p.text)![1]!,
    };
    const five = await Promise.all(Array.from({ length: 5 }, () => b.post('/matters/import/apply', form)));
    for (const r of five) assert.equal(r.status, 201, r.text);
    assert.equal(await countAll(t, 'matters_client'), 2, 'each client once');
    assert.equal(await countWhere(t, 'audit_log', 'action', 'matters.client_created'), 2, 'one audit row per client');
    assert.equal(await countWhere(t, 'outbox', 'type', 'matters.client_created'), 2, 'one event per client');
    assert.equal(await countWhere(t, 'audit_log', 'action', 'matters.import_applied'), 1);
    for (const r of five) {
      assert.match(r.text, /2 rows imported/);
      assert.match(r.text, /<td class="num">2<\/td><td>1<\/td>/, 'each page lists the client numbers the first apply gave');
    }
    assert.equal(five.filter(already).length, 4);
  });
});

eachDialect('the import API takes an id: the same id posted twice at once or again imports once, and says it was applied before', async (db) => {
  await withApp(db, async (t) => {
    const { matterId, fileNumber } = await firm(t);
    const u = await t.user('billing', { email: 'api-importer@firm.test' });
    const token = await t.token(u.email);
    const b = t.browser();
    const post = (query: string, csv: string) => b.postJson(`/api/v1/imports/disbursements${query}`, { csv }, { headers: { authorization: `Bearer ${token}` } });
    const csv = `file_number,date,code,quantity,unit_cost,description,payee\n${fileNumber},2026-12-01,COURT,1,275.00,API filing fee,County Court\n`;
    const both = await Promise.all([1, 2].map(() => post('?id=api-import-0001', csv)));
    for (const r of both) assert.equal(r.status, 201, r.text);
    assert.equal(both.filter((r) => r.json().alreadyApplied).length, 1, 'one of the two says it was applied before');
    const again = await post('?id=api-import-0001', csv);
    assert.equal(again.status, 201);
    assert.ok(again.json().alreadyApplied);
    assert.deepEqual(again.json().created, both[0]!.json().created, 'the first outcome');
    assert.equal(await countWhere(t, 'matters_disbursement', 'matter_id', matterId), 1);
    // Without an id: the file was imported before, so it needs importAgain (a dry run says when it was).
    const dry = await post('?dryRun=true', csv);
    assert.equal(dry.status, 200);
    assert.deepEqual([dry.json().earlierImport?.by, dry.json().earlierImport?.imported], ['api-importer@firm.test', 1]);
    const repeat = await post('', csv);
    assert.deepEqual([repeat.status, Object.keys(repeat.json().error.fields ?? {})], [409, ['importAgain']], repeat.text);
    assert.equal(await countWhere(t, 'matters_disbursement', 'matter_id', matterId), 1, 'nothing more imported');
    assert.equal((await post('?importAgain=true', csv)).status, 201);
    assert.equal(await countWhere(t, 'matters_disbursement', 'matter_id', matterId), 2);
    // Another file without an id imports; the same again without an id is a repeat too (recorded under an id of its own).
    const other = csv.replace('275.00', '276.00');
    assert.equal((await post('', other)).status, 201);
    assert.equal((await post('', other)).status, 409);

    // Two applies of one file under two ids at once: one imports, the other is refused as a repeat (the content is held).
    const race = csv.replace('275.00', '277.00');
    const raced = await Promise.all([post('?id=race-import-0001', race), post('?id=race-import-0002', race)]);
    assert.deepEqual(raced.map((r) => r.status).sort(), [201, 409], raced.map((r) => r.text).join('\n'));
    assert.equal(await countWhere(t, 'matters_disbursement', 'unit_cost_minor', '27700'), 1, 'imported once');
    const long = await post(`?id=${'x'.repeat(65)}`, csv);
    assert.deepEqual([long.status, Object.keys(long.json().error.fields ?? {})], [422, ['id']], 'an id over 64 characters is refused, naming it');
  });
});
