/**
 * Clients, their contacts, matter participants and the billable party (who bills go to),
 * and timekeeper changes, on both databases: events carry what billing needs.
 */
import assert from 'node:assert/strict';
import { eachDialect } from '../support/db.ts';
import type { TestDb } from '../support/db.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import type { MattersCommands } from '../../src/modules/matters/index.ts';
import type { MattersEvents } from '../../src/modules/matters/events.ts';
import { manualClock } from '../../src/shared/clock.ts';
import { systemContext } from '../../src/shared/events.ts';
import { HttpError } from '../../src/shared/web/errors.ts';

const ctx = systemContext('corr-clients', 'test');

function setup(db: TestDb) {
  const clock = manualClock('2026-03-02T09:00:00Z');
  return { clock, cmds: createMattersCommands({ db: db.db, clock, relay: { kick() {} } }) };
}

async function firm(cmds: MattersCommands) {
  const partner = await cmds.createTimekeeper(ctx, { initials: 'MH', name: 'Margaret Holloway', classification: 'partner' });
  const client = await cmds.createClient(ctx, { name: 'Northwind Logistics Inc.', email: 'info@northwind.example', address: '1 Harbor Road, Portland, OR 97204' });
  const other = await cmds.createClient(ctx, { name: 'Kestrel Foods LLC' });
  const matter = await cmds.openMatter(ctx, { clientId: client.id, name: 'Northwind v. Kestrel', responsibleTimekeeperId: partner.id });
  const second = await cmds.openMatter(ctx, { clientId: client.id, name: 'Lease review', responsibleTimekeeperId: partner.id });
  return { partner, client, other, matter, second };
}

async function rejectsFields(p: Promise<unknown>, fields: string[]): Promise<Record<string, string>> {
  let got: Record<string, string> = {};
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof HttpError, `expected HttpError, got ${String(e)}`);
    assert.equal(e.status, 422, e.message);
    got = { ...e.fields };
    assert.deepEqual(Object.keys(e.fields).sort(), [...fields].sort(), JSON.stringify(e.fields));
    return true;
  });
  return got;
}

async function events<K extends keyof MattersEvents>(db: TestDb, type: K): Promise<MattersEvents[K][]> {
  const rows = await db.db.selectFrom('outbox').select('payload').where('type', '=', type).orderBy('seq').execute() as { payload: string }[];
  return rows.map((r) => JSON.parse(r.payload) as MattersEvents[K]);
}

async function count(db: TestDb, table: string): Promise<number> {
  return (await db.db.selectFrom(table).select('id').execute()).length;
}

eachDialect('contacts: added, changed and removed with contact_changed events; bad input names the field', async (db) => {
  const { cmds } = setup(db);
  const { client } = await firm(cmds);
  const outbox = await count(db, 'outbox');
  await rejectsFields(cmds.addContact(ctx, { clientId: client.id, name: ' ', email: 'ap at northwind', phone: 'call me' }), ['name', 'email', 'phone']);
  await rejectsFields(cmds.addContact(ctx, { clientId: 'nobody', name: 'Ann' }), ['clientId']);
  assert.equal(await count(db, 'outbox'), outbox);

  const ap = await cmds.addContact(ctx, {
    clientId: client.id, name: ' Maria Delgado ', email: 'ap@northwind.example', phone: '+1 503 555 0101', role: 'Accounts payable',
  });
  assert.deepEqual([ap.name, ap.email, ap.address, ap.role], ['Maria Delgado', 'ap@northwind.example', null, 'Accounts payable']);
  const gc = await cmds.addContact(ctx, { clientId: client.id, name: 'Harold Finch', email: 'hfinch@northwind.example', role: 'General counsel' });
  assert.deepEqual((await cmds.listContacts(client.id)).map((c) => c.name), ['Harold Finch', 'Maria Delgado']);

  const moved = await cmds.updateContact(ctx, ap.id, { address: 'PO Box 12, Portland, OR 97204', phone: null });
  assert.deepEqual([moved.address, moved.phone, moved.email], ['PO Box 12, Portland, OR 97204', null, 'ap@northwind.example']);
  await rejectsFields(cmds.updateContact(ctx, ap.id, { name: '' }), ['name']);
  await assert.rejects(cmds.updateContact(ctx, 'nobody', { name: 'X' }), (e: unknown) => e instanceof HttpError && e.status === 404);

  await cmds.removeContact(ctx, gc.id);
  assert.equal(await cmds.findContact(gc.id), null);
  const changes = await events(db, 'matters.contact_changed');
  assert.deepEqual(changes.map((c) => [c.name, c.removed]), [['Maria Delgado', false], ['Harold Finch', false], ['Maria Delgado', false], ['Harold Finch', true]]);
  assert.deepEqual(changes[2], {
    contactId: ap.id, clientId: client.id, name: 'Maria Delgado', email: 'ap@northwind.example', phone: null,
    address: 'PO Box 12, Portland, OR 97204', role: 'Accounts payable', removed: false, updatedAt: '2026-03-02T09:00:00.000Z',
  });
  const audit = await db.db.selectFrom('audit_log').select('action').where('entity_type', '=', 'matters_contact').orderBy('at').execute();
  assert.deepEqual(audit.map((a) => a.action).sort(), ['matters.contact_added', 'matters.contact_added', 'matters.contact_changed', 'matters.contact_removed'].sort());
});

eachDialect('the billable party: a contact of the client, or the client itself; matter_changed carries its details', async (db) => {
  const { cmds } = setup(db);
  const { client, other, matter, second } = await firm(cmds);
  const ap = await cmds.addContact(ctx, { clientId: client.id, name: 'Maria Delgado', email: 'ap@northwind.example', role: 'Accounts payable' });
  const gc = await cmds.addContact(ctx, { clientId: client.id, name: 'Harold Finch', email: 'hfinch@northwind.example', address: '9 Elm Avenue' });
  const stranger = await cmds.addContact(ctx, { clientId: other.id, name: 'Elena Novak' });

  // By default bills go to the client itself.
  const initial = await cmds.getMatterDetails(matter.id);
  assert.deepEqual(initial.billableParty, { kind: 'client', contactId: null, name: 'Northwind Logistics Inc.', email: 'info@northwind.example', address: '1 Harbor Road, Portland, OR 97204' });
  assert.deepEqual(initial.participants, []);

  const outbox = await count(db, 'outbox');
  await rejectsFields(cmds.setMatterParticipants(ctx, matter.id, { billablePartyContactId: ap.id, participants: [{ contactId: gc.id, role: '' }] }),
    ['participants.0.role']);
  await rejectsFields(cmds.setMatterParticipants(ctx, matter.id, { billablePartyContactId: stranger.id, participants: [{ contactId: 'ghost', role: 'Witness' }] }),
    ['billablePartyContactId', 'participants.0.contactId']);
  await rejectsFields(cmds.setMatterParticipants(ctx, matter.id, { billablePartyContactId: null, participants: [{ contactId: gc.id, role: 'A' }, { contactId: gc.id, role: 'B' }] }),
    ['participants.1.contactId']);
  assert.equal(await count(db, 'outbox'), outbox);

  const snap = await cmds.setMatterParticipants(ctx, matter.id, { billablePartyContactId: ap.id, participants: [{ contactId: gc.id, role: 'Instructing' }] });
  assert.deepEqual(snap.billableParty, { kind: 'contact', contactId: ap.id, name: 'Maria Delgado', email: 'ap@northwind.example', address: '1 Harbor Road, Portland, OR 97204' },
    "a contact without an address is billed at the client's");
  assert.deepEqual(snap.participants, [{ contactId: gc.id, role: 'Instructing', name: 'Harold Finch', email: 'hfinch@northwind.example' }]);
  assert.equal((await cmds.findMatter(matter.id))!.billablePartyContactId, ap.id);
  const changed = await events(db, 'matters.matter_changed');
  assert.equal(changed.length, 1);
  assert.deepEqual(changed[0], snap);
  assert.deepEqual([changed[0]!.fileNumber, changed[0]!.clientName, changed[0]!.status, changed[0]!.closedOn], ['1.1', 'Northwind Logistics Inc.', 'open', null]);

  // A changed contact re-announces the matters whose bills carry it.
  await cmds.updateContact(ctx, ap.id, { email: 'payables@northwind.example' });
  const after = (await events(db, 'matters.matter_changed')).at(-1)!;
  assert.equal(after.billableParty.email, 'payables@northwind.example');
  // The billable party cannot be removed; a participant can (and leaves the matter).
  await assert.rejects(cmds.removeContact(ctx, ap.id), (e: unknown) => e instanceof HttpError && e.status === 409 && /billable party of 1\.1/.test(e.message));
  await cmds.removeContact(ctx, gc.id);
  assert.deepEqual((await cmds.getMatterDetails(matter.id)).participants, []);
  // Back to the client itself.
  const back = await cmds.setMatterParticipants(ctx, matter.id, { billablePartyContactId: null, participants: [] });
  assert.equal(back.billableParty.kind, 'client');
  await assert.rejects(cmds.setMatterParticipants(ctx, 'gone', { billablePartyContactId: null, participants: [] }), (e: unknown) => e instanceof HttpError && e.status === 404);

  // Many at once (imports, seeding).
  const [m1, m2] = await cmds.setMatterParticipantsMany(ctx, [
    { matterId: matter.id, billablePartyContactId: ap.id, participants: [] },
    { matterId: second.id, billablePartyContactId: null, participants: [] },
  ]);
  assert.deepEqual([m1!.billableParty.kind, m2!.billableParty.kind], ['contact', 'client']);
  await rejectsFields(cmds.setMatterParticipantsMany(ctx, [{ matterId: matter.id, billablePartyContactId: stranger.id, participants: [] }]), ['items.0.billablePartyContactId']);
});

eachDialect('updateClient: client_changed, and every matter of the client is re-announced', async (db) => {
  const { cmds } = setup(db);
  const { client, matter, second } = await firm(cmds);
  await rejectsFields(cmds.updateClient(ctx, client.id, { name: '', email: 'nope' }), ['name', 'email']);
  await assert.rejects(cmds.updateClient(ctx, 'gone', { name: 'X' }), (e: unknown) => e instanceof HttpError && e.status === 404);
  const same = await cmds.updateClient(ctx, client.id, { name: 'Northwind Logistics Inc.' });
  assert.deepEqual(same, client, 'no change, no event');
  assert.equal((await events(db, 'matters.client_changed')).length, 0);

  const c = await cmds.updateClient(ctx, client.id, { name: 'Northwind Logistics Holdings Inc.', email: 'billing@northwind.example', taxId: '12-3456789' });
  assert.deepEqual([c.name, c.email, c.address, c.taxId, c.clientNumber], ['Northwind Logistics Holdings Inc.', 'billing@northwind.example', '1 Harbor Road, Portland, OR 97204', '12-3456789', 1]);
  assert.deepEqual(await cmds.findClient(client.id), c);
  const cc = await events(db, 'matters.client_changed');
  assert.deepEqual(cc, [{
    clientId: client.id, clientNumber: 1, name: 'Northwind Logistics Holdings Inc.', email: 'billing@northwind.example',
    address: '1 Harbor Road, Portland, OR 97204', taxId: '12-3456789', updatedAt: '2026-03-02T09:00:00.000Z',
  }]);
  const mc = await events(db, 'matters.matter_changed');
  assert.deepEqual(mc.map((m) => m.matterId).sort(), [matter.id, second.id].sort());
  for (const m of mc) {
    assert.equal(m.clientName, 'Northwind Logistics Holdings Inc.');
    assert.equal(m.billableParty.email, 'billing@northwind.example');
  }
});

eachDialect('updateTimekeeper: name, classification (LEDES code follows) and active flag, with timekeeper_changed', async (db) => {
  const { cmds } = setup(db);
  const { client } = await firm(cmds);
  const sc = await cmds.createTimekeeper(ctx, { initials: 'SC', name: 'Sofia Castellano', classification: 'associate' });
  await rejectsFields(cmds.updateTimekeeper(ctx, sc.id, { name: ' ', classification: 'senior' as never, initials: 'XX' } as never), ['name', 'classification', 'initials']);
  const promoted = await cmds.updateTimekeeper(ctx, sc.id, { classification: 'partner', name: 'Sofia Castellano-Reyes' });
  assert.deepEqual([promoted.classification, promoted.ledesClassification, promoted.name, promoted.initials], ['partner', 'PT', 'Sofia Castellano-Reyes', 'SC']);
  const ofCounsel = await cmds.updateTimekeeper(ctx, sc.id, { ledesClassification: 'OC' });
  assert.equal(ofCounsel.ledesClassification, 'OC');
  assert.equal((await cmds.updateTimekeeper(ctx, sc.id, { classification: 'associate' })).ledesClassification, 'OC', 'a chosen LEDES code stays');
  const gone = await cmds.updateTimekeeper(ctx, sc.id, { active: false });
  assert.equal(gone.active, false);
  const changes = await events(db, 'matters.timekeeper_changed');
  assert.deepEqual(changes.map((c) => [c.classification, c.ledesClassification, c.active]), [['partner', 'PT', true], ['partner', 'OC', true], ['associate', 'OC', true], ['associate', 'OC', false]]);
  assert.equal(changes[0]!.updatedAt, '2026-03-02T09:00:00.000Z');
  // An inactive timekeeper cannot be given a matter.
  await rejectsFields(cmds.openMatter(ctx, { clientId: client.id, name: 'X', responsibleTimekeeperId: sc.id }), ['responsibleTimekeeperId']);
  await assert.rejects(cmds.updateTimekeeper(ctx, 'nobody', { active: true }), (e: unknown) => e instanceof HttpError && e.status === 404);
});
