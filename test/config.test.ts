/** The server's settings from its environment: a value it cannot use stops it at start, naming the variable. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig, MAX_BODY_BYTES_DEFAULT } from '../src/main.ts';

test('MAX_BODY_BYTES: unset or empty is 20 MiB; a whole number of bytes from 64 KiB to 1 GiB is taken; anything else stops the server naming it', () => {
  assert.equal(MAX_BODY_BYTES_DEFAULT, 20 * 1024 * 1024);
  for (const [given, taken] of [[undefined, MAX_BODY_BYTES_DEFAULT], ['', MAX_BODY_BYTES_DEFAULT], ['65536', 65_536], ['1048576', 1_048_576], ['1073741824', 1_073_741_824]] as const) {
    assert.equal(loadConfig(given === undefined ? {} : { MAX_BODY_BYTES: given }).maxBodyBytes, taken, String(given));
  }
  for (const bad of ['abc', '20MB', '1.5', '-1', '0', '65535', '1073741825', ' ', '1e6', '0x10000', '+70000']) {
    assert.throws(() => loadConfig({ MAX_BODY_BYTES: bad }), new RegExp(`^Error: MAX_BODY_BYTES must be a whole number of bytes from 65536 \\(64 KiB\\) to 1073741824 \\(1 GiB\\), got ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`), bad);
  }
});

test('PORT: a port number, else the server stops naming it', () => {
  assert.equal(loadConfig({ PORT: '3140' }).port, 3140);
  assert.equal(loadConfig({}).port, 3000);
  for (const bad of ['x', '70000', '-1', '1.5']) assert.throws(() => loadConfig({ PORT: bad }), /^Error: PORT must be a port number, got /, bad);
});
