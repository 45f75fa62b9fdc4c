/**
 * A form's text field holding exactly "on" is that text, not a ticked checkbox: only a
 * field the schema takes as true/false reads "on" as true.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Type from 'typebox';
import { parseForm } from '../../src/shared/web/validate.ts';
import { eachDialect } from '../support/db.ts';
import { withApp } from '../support/app.ts';

test('parseForm keeps "on" in a text field and reads it as true only in a checkbox field', () => {
  const schema = Type.Object({
    name: Type.String(), note: Type.Optional(Type.String()), flag: Type.Optional(Type.Boolean()), must: Type.Boolean(),
  });
  assert.deepEqual(parseForm(schema, { name: 'on', note: ' on ', flag: 'on', must: 'on' }), { name: 'on', note: 'on', flag: true, must: true });
});

eachDialect('a staff account named "on" is saved as "on", not "true"', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const admin = await user('admin');
    const b = browser();
    await b.login(admin.email);
    await b.get('/admin/users');
    const res = await b.post('/admin/users', { email: 'on@firm.test', name: 'on', role: 'billing', password: 'a long enough password' });
    assert.equal(res.status, 303, res.text.slice(0, 500));
    const row = await db.db.selectFrom('auth_user').select('name').where('email', '=', 'on@firm.test').executeTakeFirstOrThrow() as { name: string };
    assert.equal(row.name, 'on');
  });
});
