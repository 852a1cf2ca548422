/**
 * The memory budget on real memfds: writes that would populate pages past it fail with ENOMEM
 * before a byte is placed, overwrites never do, pages a peer touches through its own mapping
 * count, reads never populate, a write target is reserved until its commit, punched pages give
 * their bytes back. Figures are read back through the memfd (SEEK_DATA) as a second path.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { dataRanges, pageSize, punchHole, SharedMapping } from '../native/index.ts';
import { VfioError } from './errors.ts';
import { formatBytes, MemoryBudget, type MemoryRefusal } from './memory-budget.ts';
import { createMemfdMemory } from './shared-memory.ts';

const KiB = 1024n;
const MiB = 1024n * KiB;
const PAGE = BigInt(pageSize());

const isEnomem = (e: unknown) => e instanceof VfioError && e.code === 'ENOMEM';

/** Populated bytes as lseek(SEEK_DATA) finds them. */
function populated(fd: number, size: bigint): bigint {
  return dataRanges(fd, 0n, size).reduce((n, [a, b]) => n + b - a, 0n);
}

describe('MemoryBudget', () => {
  it('refuses the write that would pass the budget, with ENOMEM and a refusal, placing nothing', () => {
    const refusals: MemoryRefusal[] = [];
    const budget = new MemoryBudget(256n * KiB, (r) => refusals.push(r));
    const m = createMemfdMemory('gpu-ram', 1n << 30n, budget);
    try {
      const chunk = new Uint8Array(Number(64n * KiB)).fill(0x11);
      for (let i = 0n; i < 4n; i++) m.write(i * 64n * KiB, chunk);
      assert.equal(budget.touched, 256n * KiB);
      assert.throws(() => m.write(4n * 64n * KiB, Uint8Array.of(1)), isEnomem);
      assert.equal(populated(m.fd, m.size), 256n * KiB, 'nothing placed');
      assert.equal(refusals.length, 1);
      assert.deepEqual(refusals[0], {
        name: 'gpu-ram',
        offset: 256n * KiB,
        count: 1,
        need: PAGE,
        inUse: 256n * KiB,
        budget: 256n * KiB,
      });
      assert.equal(budget.refused, 1);
      // Overwriting populated pages needs nothing: always admitted.
      m.write(10n, new Uint8Array(Number(200n * KiB)).fill(0x22));
      const back = new Uint8Array(4);
      m.read(10n, back);
      assert.deepEqual(back, Uint8Array.of(0x22, 0x22, 0x22, 0x22));
      // The device model's own writes are never refused, but counted.
      m.writeOwn(512n * KiB, Uint8Array.of(7));
      assert.equal(budget.touched, 256n * KiB + PAGE);
    } finally {
      m.close();
    }
    assert.equal(budget.touched, 0n, 'a closed memory leaves the budget');
  });

  it('counts pages a peer touches through its own mapping; punched pages give bytes back', () => {
    const budget = new MemoryBudget(128n * KiB);
    const m = createMemfdMemory('mapped', 1n << 30n, budget);
    const peer = SharedMapping.map(m.fd, 0n, 1n * MiB, 'rw');
    try {
      for (let at = 0n; at < 96n * KiB; at += PAGE) peer.write(at, Uint8Array.of(1));
      assert.equal(m.touched(), 96n * KiB);
      m.write(512n * KiB, new Uint8Array(Number(32n * KiB)));
      assert.throws(() => m.write(600n * KiB, Uint8Array.of(1)), isEnomem, 'mapping pages count');
      punchHole(m.fd, 0n, 32n * KiB);
      m.write(600n * KiB, Uint8Array.of(1));
      assert.equal(populated(m.fd, m.size), budget.touched);
    } finally {
      peer.unmap();
      m.close();
    }
  });

  it('reads never populate: holes read as zeros through read and view', () => {
    const budget = new MemoryBudget(MiB);
    const m = createMemfdMemory('reads', 1n << 30n, budget);
    try {
      const buf = new Uint8Array(Number(MiB)).fill(9);
      m.read(64n * MiB, buf);
      assert.ok(buf.every((b) => b === 0));
      assert.ok(m.view(32n * MiB, Number(MiB))?.every((b) => b === 0));
      m.write(0n, Uint8Array.of(1));
      assert.equal(m.view(0n, Number(MiB)), null, 'a mix of data and holes is not lent');
      assert.equal(m.touched(), PAGE);
      assert.equal(populated(m.fd, m.size), PAGE);
    } finally {
      m.close();
    }
  });

  it('a write target is refused past the budget and reserved until its commit', () => {
    const budget = new MemoryBudget(64n * KiB);
    const m = createMemfdMemory('target', 1n << 30n, budget);
    try {
      assert.equal(m.writeTarget(0n, Number(128n * KiB)), null, 'would pass the budget');
      const target = m.writeTarget(0n, Number(48n * KiB));
      assert.ok(target);
      assert.equal(budget.inUse, 48n * KiB, 'reserved before any byte arrives');
      assert.equal(budget.touched, 0n);
      target.fill(0x33);
      m.write(0n, target); // the commit: nothing copied, the reservation ends
      assert.equal(budget.touched, 48n * KiB);
      assert.equal(populated(m.fd, m.size), 48n * KiB);
      // A target never committed (the client left mid-message) ends with the next one.
      assert.ok(m.writeTarget(48n * KiB, Number(16n * KiB)));
      assert.ok(m.writeTarget(48n * KiB, Number(16n * KiB)));
      assert.equal(budget.inUse, 64n * KiB, 'held once, not twice');
      m.dropWriteTarget(); // its client left: the region is released
      assert.equal(budget.touched, 48n * KiB);
      assert.ok(m.writeTarget(48n * KiB, Number(16n * KiB)));
      // So does the next write: with the stale 16 KiB held, this one would not fit.
      m.write(128n * KiB, Uint8Array.of(1));
      assert.equal(budget.touched, 48n * KiB + PAGE);
    } finally {
      m.close();
    }
  });

  it('admits exactly the writes whose new pages fit (model: a set of pages)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ page: fc.nat(63), pages: fc.integer({ min: 1, max: 8 }) }), {
          maxLength: 40,
        }),
        fc.integer({ min: 0, max: 32 }),
        (writes, limitPages) => {
          const budget = new MemoryBudget(BigInt(limitPages) * PAGE);
          const m = createMemfdMemory('model', 80n * PAGE, budget);
          const model = new Set<number>();
          try {
            for (const w of writes) {
              const fresh = [...Array(w.pages).keys()]
                .map((i) => w.page + i)
                .filter((p) => !model.has(p));
              const fits = model.size + fresh.length <= limitPages;
              const data = new Uint8Array(w.pages * Number(PAGE)).fill(w.page + 1);
              if (fits) {
                m.write(BigInt(w.page) * PAGE, data);
                for (const p of fresh) model.add(p);
              } else assert.throws(() => m.write(BigInt(w.page) * PAGE, data), isEnomem);
              assert.equal(populated(m.fd, m.size), BigInt(model.size) * PAGE);
              assert.equal(budget.touched, BigInt(model.size) * PAGE);
            }
          } finally {
            m.close();
          }
        },
      ),
      { numRuns: 60, seed: 7 },
    );
  });

  it('formats sizes in binary units', () => {
    assert.equal(formatBytes(1n * MiB), '1 MiB');
    assert.equal(formatBytes(1536n * MiB), '1.5 GiB');
    assert.equal(formatBytes(1000), '1000 bytes');
    assert.equal(formatBytes(4000), '3.91 KiB');
  });
});
