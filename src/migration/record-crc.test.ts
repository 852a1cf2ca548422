/**
 * The stream records' CRC-32 (native/digest.c through native/index.ts crc32): zlib's CRC-32 as
 * published (the "123456789" check value), and equal to node:zlib's for any bytes at any
 * alignment, continued from any running value, across the lengths where the folding loop
 * takes over (64 bytes and up) and with tails of every length under 16.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 as zlibCrc32 } from 'node:zlib';
import fc from 'fast-check';
import { crc32 } from '../native/index.ts';

describe('record CRC-32', () => {
  it('of "123456789" is 0xcbf43926 (the check value); of nothing, its start', () => {
    assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
    assert.equal(crc32(new Uint8Array(0), 0x12345678), 0x12345678);
  });

  it("equals node:zlib's for any bytes, offset, running value and split", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 4200 }),
        fc.nat(15),
        fc.nat(),
        fc.integer({ min: 0, max: 0xffffffff }),
        (bytes, skip, cut, start) => {
          // Never empty: node:zlib answers 0 for no bytes (a NULL buffer to zlib), not `start`.
          const v = bytes.subarray(skip);
          const at = cut % (v.length + 1);
          const want = zlibCrc32(v, start) >>> 0;
          assert.equal(crc32(v, start), want);
          assert.equal(crc32(v.subarray(at), crc32(v.subarray(0, at), start)), want);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("equals node:zlib's over 1 MiB records, every byte value in every lane", () => {
    const big = new Uint8Array(1024 * 1024 + 32 + 13).map((_, i) => (i * 131 + (i >>> 11)) & 0xff);
    for (const end of [big.length, 1024 * 1024, 64, 65, 79, 80, 127, 128, 129])
      assert.equal(crc32(big.subarray(0, end)), zlibCrc32(big.subarray(0, end)) >>> 0, `${end}`);
  });
});
