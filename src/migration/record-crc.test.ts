/**
 * The stream records' CRC-32 (native/digest.c through native/index.ts crc32): zlib's CRC-32 as
 * published (the "123456789" check value), and equal to node:zlib's for any bytes at any
 * alignment, continued from any running value, across the lengths where the folding loop
 * takes over (64 bytes and up) and with tails of every length under 16, by each path the addon
 * has (slicing-by-8, PCLMULQDQ, AVX-512 VPCLMULQDQ) this CPU can take.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 as zlibCrc32 } from 'node:zlib';
import fc from 'fast-check';
import { crc32, crc32Paths } from '../native/index.ts';

describe('record CRC-32', () => {
  it('of "123456789" is 0xcbf43926 (the check value); of nothing, its start', () => {
    assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
    assert.equal(crc32(new Uint8Array(0), 0x12345678), 0x12345678);
  });

  // Every way the addon computes it, not only the one this CPU picks: CI's CPU may take another.
  const available = crc32Paths();
  it('auto is among the paths, and slice8 runs everywhere', () => {
    assert.equal(available[0], 'auto');
    assert.ok(available.includes('slice8'));
  });
  for (const path of ['auto', 'slice8', 'clmul', 'vpclmul'] as const) {
    const skip = available.includes(path) ? false : `this CPU cannot take ${path}`;
    it(`${path}: equals node:zlib's for any bytes, offset, running value and split`, {
      skip,
    }, () => {
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
            assert.equal(crc32(v, start, path), want);
            assert.equal(crc32(v.subarray(at), crc32(v.subarray(0, at), start, path), path), want);
          },
        ),
        { numRuns: 300 },
      );
    });

    it(`${path}: equals node:zlib's over 1 MiB records, every byte value in every lane`, {
      skip,
    }, () => {
      const big = new Uint8Array(1024 * 1024 + 32 + 13).map(
        (_, i) => (i * 131 + (i >>> 11)) & 0xff,
      );
      for (const end of [big.length, 1024 * 1024, 64, 65, 79, 80, 127, 128, 129, 255, 256, 257])
        assert.equal(
          crc32(big.subarray(0, end), 0, path),
          zlibCrc32(big.subarray(0, end)) >>> 0,
          `${end}`,
        );
    });
  }

  it('a path this CPU cannot take, or no path, is refused', () => {
    for (const path of ['slice8', 'clmul', 'vpclmul'] as const)
      if (!available.includes(path))
        assert.throws(() => crc32(new Uint8Array(64), 0, path), /ENOTSUP/);
    assert.throws(() => crc32(new Uint8Array(64), 0, 'nosuch' as 'auto'));
  });
});
