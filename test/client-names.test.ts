/**
 * What a typed client's lookup says (src/shared/client-names.ts): the one client named, or why
 * none is, with each candidate's number and name so the clerk sees which to type.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientLookup } from '../src/shared/client-names.ts';

const client = (n: number, name: string) => ({ id: `id-${n}`, clientNumber: n, name });

test('clientLookup: one client is its id; none, or several, refused in words naming each by number and name', () => {
  const cases: [ReturnType<typeof client>[], ReturnType<typeof clientLookup>][] = [
    [[client(4, 'Kestrel Holdings')], { id: 'id-4' }],
    [[], { error: 'no client with this number or name' }],
    [[client(4, 'Kestrel Holdings'), client(7, 'Kestrel Air')], { error: '2 clients have or hold this name: type the client number (4 Kestrel Holdings; 7 Kestrel Air)' }],
    // A name holding a comma or semicolon stays readable between the others.
    [[client(1, 'Smith, Jones & Co'), client(2, 'Smith; Partners')], { error: '2 clients have or hold this name: type the client number (1 Smith, Jones & Co; 2 Smith; Partners)' }],
    [Array.from({ length: 11 }, (_, i) => client(i + 1, `Twin ${i + 1}`)), {
      error: `more than 10 clients have or hold this name: type the client number (${Array.from({ length: 10 }, (_, i) => `${i + 1} Twin ${i + 1}`).join('; ')}; …)`,
    }],
  ];
  for (const [named, want] of cases) assert.deepEqual(clientLookup(named), want, JSON.stringify(named.map((n) => n.clientNumber)));
  // Numbers alone where no names are given.
  assert.deepEqual(clientLookup([{ id: 'a', clientNumber: 3 }, { id: 'b', clientNumber: 9 }]), { error: '2 clients have or hold this name: type the client number (3; 9)' });
});
