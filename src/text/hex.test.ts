/**
 * hex(): the digits read back to the value, padded to the width and never cut; numbers and
 * bigints of the same value print the same.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { hex, hexDigits } from './hex.ts';

describe('hex', () => {
  it('examples from the callers', () => {
    assert.equal(hex(0x10de, 4), '0x10de');
    assert.equal(hex(0x4, 4), '0x0004');
    assert.equal(hex(0x800010de, 8), '0x800010de');
    assert.equal(hex(0x3e000000000n), '0x3e000000000');
    assert.equal(hex(0n, 16), '0x0000000000000000');
    assert.equal(hex(0x12345, 2), '0x12345');
    assert.equal(hexDigits(0xa, 2), '0a');
    assert.equal(hexDigits(0x1db1, 4), '1db1');
  });

  it('reads back to the value, lowercase, at least `width` digits, numbers as bigints', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.nat(20), (v, width) => {
        const text = hex(v, width);
        assert.match(text, /^0x[0-9a-f]+$/);
        assert.equal(BigInt(text), v);
        assert.ok(text.length - 2 >= width);
        assert.equal(text.length - 2, Math.max(width, v.toString(16).length));
        assert.equal(hexDigits(v, width), text.slice(2));
        if (v <= BigInt(Number.MAX_SAFE_INTEGER)) assert.equal(hex(Number(v), width), text);
      }),
    );
  });
});
