/**
 * Login throttling under parallel attempts: a burst of wrong passwords sent at once gets no
 * more guesses than the same attempts sent one after another, and is never a 500.
 */
import assert from 'node:assert/strict';
import { THROTTLE } from '../../src/web/auth/service.ts';
import { eachDialect } from '../support/db.ts';
import { PASSWORD, withApp } from '../support/app.ts';

eachDialect('a burst of parallel wrong passwords for one account gets at most five guesses, then the account is locked', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const u = await user('billing');
    const n = THROTTLE.account.maxFailures * 3;
    // Each attempt from its own address, so only the account's limit applies.
    const browsers = await Promise.all(Array.from({ length: n }, async (_, i) => {
      const b = browser(`198.51.100.${100 + i}`);
      await b.get('/login');
      return b;
    }));
    const answers = await Promise.all(browsers.map((b, i) => b.post('/login', { email: u.email, password: `wrong password ${i}` })));
    const statuses = answers.map((a) => a.status);
    assert.deepEqual(statuses.filter((s) => s !== 401 && s !== 429), [], `only 401 and 429 answers: ${statuses.join(',')}`);
    assert.equal(statuses.filter((s) => s === 401).length, THROTTLE.account.maxFailures, `exactly ${THROTTLE.account.maxFailures} passwords were tried: ${statuses.join(',')}`);
    const failed = await db.db.selectFrom('audit_log').select('id').where('action', '=', 'auth.login_failed').execute();
    assert.equal(failed.length, THROTTLE.account.maxFailures);

    const late = browser('198.51.100.250');
    await late.get('/login');
    const locked = await late.post('/login', { email: u.email, password: PASSWORD });
    assert.equal(locked.status, 429, 'the right password is refused while the account is locked');
  });
});

eachDialect('a burst of parallel wrong passwords from one address gets at most twenty guesses', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const u = await user('billing');
    const b = browser('203.0.113.90');
    await b.get('/login');
    const n = THROTTLE.address.maxFailures + 10;
    const answers = await Promise.all(Array.from({ length: n }, (_, i) => b.post('/login', { email: `guess${i}@firm.test`, password: 'not a real password' })));
    const statuses = answers.map((a) => a.status);
    assert.deepEqual(statuses.filter((s) => s !== 401 && s !== 429), [], `only 401 and 429 answers: ${statuses.join(',')}`);
    assert.equal(statuses.filter((s) => s === 401).length, THROTTLE.address.maxFailures, statuses.join(','));
    const row = await db.db.selectFrom('auth_throttle').selectAll().where('key', '=', 'ip:203.0.113.90').executeTakeFirstOrThrow() as { failures: number; locked_until: string | null };
    assert.equal(Number(row.failures), THROTTLE.address.maxFailures);
    assert.equal(row.locked_until, '2026-03-02T09:15:00.000Z');
    assert.equal((await b.post('/login', { email: u.email, password: PASSWORD })).status, 429);
  });
});

eachDialect('a right password does not count against its address: after nineteen failures it signs in and leaves the address unlocked', async (db) => {
  await withApp(db, async ({ browser, user }) => {
    const u = await user('billing');
    const b = browser('203.0.113.91');
    await b.get('/login');
    for (let i = 0; i < THROTTLE.address.maxFailures - 1; i++) {
      const r = await b.post('/login', { email: `guess${i}@firm.test`, password: 'not a real password' });
      assert.equal(r.status, 401);
    }
    // 19 failures: a right password now signs in and leaves the address one failure short of its lock.
    const good = await b.post('/login', { email: u.email, password: PASSWORD });
    assert.equal(good.status, 303);
    const row = await db.db.selectFrom('auth_throttle').selectAll().where('key', '=', 'ip:203.0.113.91').executeTakeFirstOrThrow() as { failures: number; locked_until: string | null };
    assert.equal(Number(row.failures), THROTTLE.address.maxFailures - 1);
    assert.equal(row.locked_until, null);
    assert.equal((await b.get('/')).status, 200);
  });
});
