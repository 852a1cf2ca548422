/**
 * heatStrip against a model: every populated byte of the ranges, clipped to the RAM, lands in the
 * bucket that holds it, and the strip adds up to exactly those bytes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { heatStrip } from './snapshot.ts';

describe('heatStrip', () => {
  it('puts each byte in its bucket (byte-by-byte model)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 40 }),
        fc.array(fc.tuple(fc.nat(60), fc.nat(20)), { maxLength: 6 }),
        (count, perBucket, raw) => {
          const size = count * perBucket;
          // Sorted, disjoint ranges as SEEK_DATA/SEEK_HOLE yields them; some run past the end.
          const ranges: [bigint, bigint][] = [];
          let at = 0;
          for (const [gap, len] of raw) {
            const from = at + gap;
            const to = from + len + 1;
            ranges.push([BigInt(from), BigInt(to)]);
            at = to;
          }
          const model = new Array<number>(count).fill(0);
          for (const [from, to] of ranges)
            for (let b = Number(from); b < Number(to) && b < size; b++)
              model[Math.floor(b / perBucket)]! += 1;
          assert.deepEqual(heatStrip(ranges, BigInt(size), count), model);
        },
      ),
    );
  });

  it('16 GiB in 64 buckets: a page at 3 GiB is bucket 12', () => {
    const strip = heatStrip([[3n << 30n, (3n << 30n) + 4096n]], 16n << 30n, 64);
    assert.equal(strip[12], 4096);
    assert.equal(
      strip.reduce((a, b) => a + b, 0),
      4096,
    );
  });
});
