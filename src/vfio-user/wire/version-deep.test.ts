/**
 * VERSION capabilities nested as deep as a peer likes (100,000 levels): a known member of the
 * wrong type is one short EINVAL line (its value is not serialised back, which recursed), and
 * an unknown member is kept as parsed. The server's reply is checked across a process in
 * test/deep-tree-cli.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VfioError } from '../../vfio/index.ts';
import { parseVersionJson } from './version-capabilities.ts';

const DEPTH = 100_000;
const nested = (open: string, inner: string, close: string) =>
  `${open.repeat(DEPTH)}${inner}${close.repeat(DEPTH)}`;

test('a known member nested 100,000 levels deep: EINVAL in one short line', () => {
  for (const [key, value, want] of [
    ['max_msg_fds', nested('[', '', ']'), 'a non-negative integer, got an array'],
    ['write_multiple', nested('{"a":', '0', '}'), 'a boolean, got an object'],
    ['pgsizes', `"${'x'.repeat(1000)}"`, `a non-negative integer, got "${'x'.repeat(79)}…`],
  ] as const) {
    assert.throws(
      () => parseVersionJson(`{"capabilities":{"${key}":${value}}}`),
      (e: unknown) =>
        e instanceof VfioError &&
        e.code === 'EINVAL' &&
        e.reason === `VERSION capabilities: "${key}" must be ${want}`,
      key,
    );
  }
});

test('an unknown member nested 100,000 levels deep is kept as parsed', () => {
  const caps = parseVersionJson(`{"capabilities":{"x-deep":${nested('[', '', ']')}}}`);
  let depth = 0;
  for (let v = caps?.unknown?.['x-deep']; Array.isArray(v); v = v[0]) depth++;
  assert.equal(depth, DEPTH);
});
