import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PrintfError, printf } from './printf.ts';

describe('printf', () => {
  it('renders %s, %lx, %d like the kernel', () => {
    assert.equal(
      printf('%s: %lx -> %lx ret=%d', ['0000:04:00.0', 0x3e000000000n, 0x7fff0000n, 256]),
      '0000:04:00.0: 3e000000000 -> 7fff0000 ret=256',
    );
  });
  it('takes %d as a signed 32-bit int and %lx as an unsigned 64-bit long', () => {
    assert.equal(printf('%d %u %x', [-22, -1, -1]), '-22 4294967295 ffffffff');
    assert.equal(
      printf('%lx %ld %llx', [-1n, -1n, 1n << 63n]),
      'ffffffffffffffff -1 8000000000000000',
    );
  });
  it('keeps %% and fails on a missing argument or an unknown conversion', () => {
    assert.equal(printf('100%%', []), '100%');
    assert.throws(() => printf('%d', []), PrintfError);
    assert.throws(() => printf('%d', ['x']), PrintfError);
  });
});
