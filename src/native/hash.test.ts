/**
 * sha256Hex and randomHex (native/hash.c), which the state directory, replaceFile and the
 * launcher use instead of node:crypto (issue 8: a restart's start-up): SHA-256 as published
 * (FIPS 180-2's "abc" and empty-message values) and equal to node:crypto's for any bytes at
 * any offset and length, across the 55/56/64-byte padding edges; random hex of the length asked
 * for, never twice the same, and a clear error outside 1..32 bytes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isSystemCallError, randomHex, sha256Hex } from './index.ts';

const nodeSha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('sha256Hex', () => {
  it('gives the published values of "abc" and of nothing', () => {
    assert.equal(
      sha256Hex(new TextEncoder().encode('abc')),
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    assert.equal(
      sha256Hex(new Uint8Array(0)),
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });

  it("equals node:crypto's for any bytes at any offset", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat(63), (bytes, skip) => {
        const v = bytes.subarray(Math.min(skip, bytes.length));
        assert.equal(sha256Hex(v), nodeSha256(v));
      }),
      { numRuns: 300 },
    );
  });

  it("equals node:crypto's at every length around the padding edges and for 1 MiB", () => {
    const bytes = new Uint8Array(1 << 20).map((_, i) => (i * 131 + 7) & 0xff);
    for (let n = 0; n <= 130; n++)
      assert.equal(sha256Hex(bytes.subarray(0, n)), nodeSha256(bytes.subarray(0, n)), `${n}`);
    assert.equal(sha256Hex(bytes), nodeSha256(bytes));
  });

  it('refuses what is not bytes', () => {
    assert.throws(() => sha256Hex('abc' as unknown as Uint8Array), TypeError);
  });
});

describe('randomHex', () => {
  it('gives 2 × count lowercase hex digits, different each time', () => {
    for (const count of [1, 6, 8, 32]) {
      const seen = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const hex = randomHex(count);
        assert.match(hex, new RegExp(`^[0-9a-f]{${2 * count}}$`));
        seen.add(hex);
      }
      // 20 draws of 8+ bits: a repeat at 8 bytes or more would mean the bytes are not random.
      if (count >= 6) assert.equal(seen.size, 20);
    }
  });

  it('refuses a count outside 1..32 with EINVAL', () => {
    for (const count of [0, 33, 1000]) {
      assert.throws(
        () => randomHex(count),
        (err: unknown) => isSystemCallError(err) && err.code === 'EINVAL',
      );
    }
  });
});
