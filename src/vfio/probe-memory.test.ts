/**
 * createProbeMemory (the doctor's memory, kept in this process) against createMemfdMemory (the
 * server's sparse memfd) as a model: after the same writes, every read, the populated ranges
 * and the bytes touched agree (also after clear(kept)); writes outside the memory and use after close are refused.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { VfioError } from './errors.ts';
import { createProbeMemory } from './probe-memory.ts';
import { createMemfdMemory } from './shared-memory.ts';

const SIZE = 64n * 1024n;

it('reads, populated ranges and bytes touched agree with a memfd after the same writes', () => {
  const write = fc.record({
    offset: fc.bigInt({ min: 0n, max: SIZE - 1n }),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 9000 }),
  });
  fc.assert(
    fc.property(
      fc.array(write, { maxLength: 12 }),
      fc.option(fc.uniqueArray(fc.bigInt({ min: 0n, max: SIZE }), { maxLength: 6 })),
      fc.bigInt({ min: 0n, max: SIZE + 100n }),
      fc.nat(20_000),
      (writes, cuts, readAt, readLength) => {
        const probe = createProbeMemory('probe', SIZE);
        const memfd = createMemfdMemory('model', SIZE);
        try {
          for (const { offset, bytes } of writes) {
            const data = bytes.subarray(0, Number(SIZE - offset));
            probe.write(offset, data);
            memfd.write(offset, data);
          }
          if (cuts !== null) {
            // clear(kept) as a migration destination does: pairs of sorted cuts are kept ranges.
            const sorted = [...cuts].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
            const kept: [bigint, bigint][] = [];
            for (let i = 0; i + 1 < sorted.length; i += 2)
              kept.push([sorted[i] as bigint, sorted[i + 1] as bigint]);
            probe.clear(kept);
            memfd.clear(kept);
          }
          const got = new Uint8Array(readLength).fill(0xee);
          const want = new Uint8Array(readLength).fill(0xee);
          probe.read(readAt, got);
          memfd.read(readAt, want);
          assert.deepEqual(got, want);
          assert.deepEqual(probe.dataRanges(0n, SIZE), memfd.dataRanges(0n, SIZE));
          assert.deepEqual(probe.dataRanges(5000n, 20_000n), memfd.dataRanges(5000n, 20_000n));
          assert.equal(probe.touched(), memfd.touched());
        } finally {
          memfd.close();
        }
      },
    ),
    { numRuns: 100 },
  );
});

it('a write past the end or after close is refused (EINVAL); it has no descriptor to hand out', () => {
  const m = createProbeMemory('probe', 4096n);
  assert.equal(m.fd, -1);
  assert.equal(m.view(0n, 16), null);
  assert.equal(m.writeTarget(0n, 16), null);
  assert.throws(
    () => m.write(4090n, new Uint8Array(8)),
    (e: unknown) =>
      e instanceof VfioError &&
      e.code === 'EINVAL' &&
      /probe: write of 8 bytes at 4090/.test(e.message),
  );
  m.write(0n, Uint8Array.of(1, 2, 3));
  m.clear();
  const b = new Uint8Array(3);
  m.read(0n, b);
  assert.deepEqual(b, new Uint8Array(3));
  m.close();
  assert.throws(
    () => m.read(0n, b),
    (e: unknown) => e instanceof VfioError && e.code === 'EINVAL' && /after close/.test(e.message),
  );
});
