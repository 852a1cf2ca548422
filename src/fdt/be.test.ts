/**
 * be.ts against DataView (the reference it replaced): the same u32 and u64 at every offset of
 * any bytes, and writes that DataView reads back, for any value (taken mod 2^32 / 2^64).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { be32At, be32Cells, be64At, setBe32At, setBe64At } from './be.ts';
import { cells } from './tree.ts';

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

describe('big-endian cells', () => {
  it("reads what DataView reads, at any offset of any bytes (a subarray's too)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 9, maxLength: 64 }), fc.nat(), (all, n) => {
        const bytes = all.subarray(1);
        const at32 = n % (bytes.length - 3);
        const at64 = n % (bytes.length - 7);
        assert.equal(be32At(bytes, at32), view(bytes).getUint32(at32));
        assert.equal(be64At(bytes, at64), view(bytes).getBigUint64(at64));
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (all) => {
        const bytes = all.subarray(Math.min(1, all.length));
        const whole = Math.floor(bytes.length / 4);
        const expected = Array.from({ length: whole }, (_, i) => view(bytes).getUint32(i * 4));
        assert.deepEqual(be32Cells(bytes), expected, 'every whole cell, a partial one left out');
      }),
      { numRuns: 300 },
    );
    assert.equal(be32At(new Uint8Array([0xff, 0xff, 0xff, 0xff]), 0), 0xffff_ffff);
    assert.equal(be64At(new Uint8Array(8).fill(0xff), 0), 0xffff_ffff_ffff_ffffn);
  });

  it('writes what DataView reads back, any value taken modulo the width', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -(2 ** 33), max: 2 ** 33 }),
        fc.bigInt({ min: -(2n ** 65n), max: 2n ** 65n }),
        (n, b) => {
          const out = new Uint8Array(12);
          setBe32At(out, 0, n);
          setBe64At(out, 4, b);
          assert.equal(view(out).getUint32(0), n >>> 0);
          assert.equal(view(out).getBigUint64(4), BigInt.asUintN(64, b));
          assert.deepEqual(cells.u32(n), out.subarray(0, 4));
          assert.deepEqual(cells.u64(b), out.subarray(4));
        },
      ),
      { numRuns: 500 },
    );
  });
});
