/**
 * Page digests (native/digest.c through page-digest.ts): XXH64 as published (the reference
 * vector for "abc"), one digest per 64 KiB page with a shorter last piece, and any change of
 * a page's bytes changing that page's digest only.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { pageDigest, TRACK_PAGE } from './page-digest.ts';

describe('page digests', () => {
  it('XXH64 of "abc" is 0x44bc2cf5ad770999 (the reference vector)', () => {
    assert.deepEqual(pageDigest(new TextEncoder().encode('abc')), [0x44bc2cf5ad770999n]);
  });

  it('one digest per page, the last piece shorter; a byte changed changes its page only', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 * TRACK_PAGE + 100 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (length, at, xor) => {
          const bytes = new Uint8Array(length).map((_, i) => (i * 31) & 0xff);
          const before = pageDigest(bytes);
          assert.equal(before.length, Math.ceil(length / TRACK_PAGE));
          const i = at % length;
          bytes[i] = (bytes[i] as number) ^ xor;
          const after = pageDigest(bytes);
          const page = Math.floor(i / TRACK_PAGE);
          assert.notEqual(after[page], before[page], `byte ${i}`);
          assert.deepEqual(
            after.filter((_, k) => k !== page),
            before.filter((_, k) => k !== page),
          );
        },
      ),
      { numRuns: 50 },
    );
  });
});
