/**
 * Properties of the nvgrace-gpu model against independent models: the memory split's
 * invariants for any size (6.14+), the config-space range intersection against a byte-by-byte
 * overlap, and a fake BAR's read/write against a plain byte array where bytes past the memory
 * read 0xff and take no writes, over random access sequences.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createMemfdMemory } from '../vfio/index.ts';
import { intersectRange } from './fake-bars.ts';
import { GraceMemRegion } from './mem-region.ts';
import { initMemoryLayout, MEMBLK_SIZE, roundupPowerOfTwo } from './memory-layout.ts';

const GiB = 1n << 30n;

describe('memory split invariants (6.14+)', () => {
  it('with the MIG bug: usemem a multiple of 512 MiB, resmem 1 GiB..1.5 GiB, the BARs as the driver sizes them', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: GiB + MEMBLK_SIZE, max: 1n << 50n }),
        fc.bigInt({ min: 0n, max: 1n << 52n }),
        (len, base) => {
          const { usemem, resmem } = initMemoryLayout(base, len, true);
          assert.ok(resmem);
          assert.equal(usemem.memlength % MEMBLK_SIZE, 0n);
          assert.equal(usemem.memlength + resmem.memlength, len);
          assert.ok(resmem.memlength >= GiB && resmem.memlength < GiB + MEMBLK_SIZE);
          assert.equal(resmem.memphys, base + usemem.memlength);
          assert.equal(usemem.barSize, roundupPowerOfTwo(len - GiB));
          assert.equal(resmem.barSize, roundupPowerOfTwo(resmem.memlength));
          for (const r of [usemem, resmem]) {
            assert.equal(r.barSize & (r.barSize - 1n), 0n);
            assert.ok(r.barSize >= r.memlength && r.barSize < 2n * r.memlength + GiB);
          }
        },
      ),
      { numRuns: 500, seed: 0x6e76 },
    );
  });

  it('without it: one region of all the memory in the next power of two', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 1n << 50n }), (len) => {
        const { usemem, resmem } = initMemoryLayout(0n, len, false);
        assert.equal(resmem, undefined);
        assert.equal(usemem.memlength, len);
        assert.ok(usemem.barSize >= len && usemem.barSize < 2n * len);
        assert.equal(usemem.barSize & (usemem.barSize - 1n), 0n);
      }),
      { numRuns: 300, seed: 0x67 },
    );
  });
});

describe('vfio_pci_core_range_intersect_range (drivers/vfio/pci/vfio_pci_config.c)', () => {
  it('finds exactly the overlap of the access with the register, where it lies in each', () => {
    fc.assert(
      fc.property(fc.nat(48), fc.nat(24), fc.integer({ min: 8, max: 40 }), (start, count, reg) => {
        const overlap: number[] = [];
        for (let b = start; b < start + count; b++) if (b >= reg && b < reg + 8) overlap.push(b);
        const got = intersectRange(start, count, reg, 8);
        // the kernel's second case also takes an empty access that starts inside the register
        if (count === 0 && start > reg && start < reg + 8)
          assert.deepEqual(got, [0, 0, start - reg]);
        else if (overlap.length === 0) assert.equal(got, undefined);
        else assert.deepEqual(got, [overlap[0]! - start, overlap.length, overlap[0]! - reg]);
      }),
      { numRuns: 2000, seed: 0x1e },
    );
  });
});

type Access = { write: boolean; offset: number; length: number; seed: number };

describe('a fake BAR against a byte-array model', () => {
  it('reads see what was written inside the memory, 0xff past it; counts clip at the BAR; EINVAL past it', () => {
    const access = fc.record({
      write: fc.boolean(),
      offset: fc.nat(8191),
      length: fc.integer({ min: 1, max: 3000 }),
      seed: fc.nat(255),
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8192 }),
        fc.array(access, { maxLength: 30 }),
        (memlength, accesses: Access[]) => {
          const barSize = Number(roundupPowerOfTwo(BigInt(memlength)));
          const memory = createMemfdMemory('nvgrace-model', BigInt(memlength));
          try {
            const bar = new GraceMemRegion(
              'model',
              4,
              { memphys: 0n, memlength: BigInt(memlength), barSize: BigInt(barSize) },
              0n,
              () => memory,
            );
            const model = new Uint8Array(memlength);
            for (const a of accesses) {
              const buf = Uint8Array.from({ length: a.length }, (_, i) => (a.seed + i) & 0xff);
              if (a.offset >= barSize) {
                assert.throws(() => bar.rw(BigInt(a.offset), buf, a.write), /EINVAL/);
                continue;
              }
              const n = Math.min(a.length, barSize - a.offset);
              assert.equal(bar.rw(BigInt(a.offset), buf, a.write), n);
              if (a.write) {
                for (let i = 0; i < n && a.offset + i < memlength; i++)
                  model[a.offset + i] = buf[i]!;
              } else {
                const want = Array.from({ length: n }, (_, i) =>
                  a.offset + i < memlength ? model[a.offset + i]! : 0xff,
                );
                assert.deepEqual([...buf.subarray(0, n)], want);
                assert.deepEqual([...bar.readView(BigInt(a.offset), a.length)], want);
              }
            }
          } finally {
            memory.close();
          }
        },
      ),
      { numRuns: 150, seed: 0x4ace },
    );
  });
});
