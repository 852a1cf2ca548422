/**
 * The DMA dirty log against a model (a set of every byte address written inside the logged
 * ranges): reports at the logging page size and at larger ones set exactly the pages holding a
 * written byte, and clear what they report; the kernel's checks give its errnos
 * (vfio_main.c vfio_ioctl_device_feature_logging_start/_report).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { VfioError } from '../vfio/index.ts';
import { DmaDirtyLog } from './dma-log.ts';

const PAGE = 4096n;
const RANGES = [
  { iova: 0x10000n, length: 0x8000n },
  { iova: 0x40000n, length: 0x10000n },
];

function bits(bitmap: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < bitmap.length * 8; i++) if ((bitmap[i >> 3]! >> (i & 7)) & 1) out.push(i);
  return out;
}

function errno(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof VfioError) return err.code;
    throw err;
  }
  return undefined;
}

describe('DMA dirty log', () => {
  it('reports exactly the pages written inside the logged ranges, then clears them', () => {
    const write = fc.record({
      address: fc.bigInt(0n, 0x60000n),
      length: fc.integer({ min: 1, max: 0x3000 }),
    });
    fc.assert(
      fc.property(
        fc.array(write, { maxLength: 20 }),
        fc.constantFrom(PAGE, 2n * PAGE, 4n * PAGE),
        (writes, reportPage) => {
          const log = new DmaDirtyLog();
          log.start(PAGE, RANGES);
          const model = new Set<bigint>();
          for (const w of writes) {
            log.record(w.address, w.length);
            for (let a = w.address; a < w.address + BigInt(w.length); a += 1n) {
              if (RANGES.some((r) => a >= r.iova && a < r.iova + r.length)) model.add(a / PAGE);
            }
          }
          for (const r of RANGES) {
            const expected: number[] = [];
            for (let i = 0n; i < r.length / reportPage; i++) {
              const first = (r.iova + i * reportPage) / PAGE;
              const dirty = [...Array(Number(reportPage / PAGE)).keys()].some((k) =>
                model.has(first + BigInt(k)),
              );
              if (dirty) expected.push(Number(i));
            }
            assert.deepEqual(bits(log.report(r.iova, r.length, reportPage)), expected);
            assert.deepEqual(
              bits(log.report(r.iova, r.length, reportPage)),
              [],
              'cleared by the report',
            );
          }
        },
      ),
    );
  });

  it('answers bad requests with the kernel errnos', () => {
    const log = new DmaDirtyLog();
    assert.equal(
      errno(() => log.report(0n, PAGE, PAGE)),
      'EINVAL',
      'report before start',
    );
    assert.equal(
      errno(() => log.start(3000n, [])),
      'EINVAL',
      'page size not a power of two',
    );
    assert.equal(
      errno(() => log.start(2048n, [])),
      'EINVAL',
      'page size under 4 KiB',
    );
    assert.equal(
      errno(() => log.start(PAGE, [{ iova: 1n, length: PAGE }])),
      'EINVAL',
      'misaligned',
    );
    assert.equal(
      errno(() =>
        log.start(PAGE, [
          { iova: 0n, length: 2n * PAGE },
          { iova: PAGE, length: PAGE },
        ]),
      ),
      'EINVAL',
      'overlapping',
    );
    assert.equal(
      errno(() => log.start(PAGE, [{ iova: (1n << 64n) - PAGE, length: 2n * PAGE }])),
      'EOVERFLOW',
    );
    const many = Array.from({ length: 257 }, (_, i) => ({ iova: BigInt(i) * PAGE, length: PAGE }));
    assert.equal(
      errno(() => log.start(PAGE, many)),
      'E2BIG',
    );
    log.start(PAGE, RANGES);
    assert.equal(
      errno(() => log.start(PAGE, RANGES)),
      'EINVAL',
      'already started',
    );
    assert.equal(
      errno(() => log.report(0x10000n, PAGE, 3n * PAGE)),
      'EINVAL',
      'report page size',
    );
    assert.equal(
      errno(() => log.report(0x10000n, PAGE, 1n << 30n)),
      'EINVAL',
      'over 512 MiB',
    );
    assert.equal(
      errno(() => log.report(0x20000n, PAGE, PAGE)),
      'EINVAL',
      'outside the ranges',
    );
    assert.equal(
      errno(() => log.report((1n << 64n) - PAGE, 2n * PAGE, PAGE)),
      'EOVERFLOW',
    );
    log.stop();
    log.stop();
    assert.equal(
      errno(() => log.report(0x10000n, PAGE, PAGE)),
      'EINVAL',
      'report after stop',
    );
    log.start(PAGE, []);
    log.record(0x123456789000n, 1);
    assert.deepEqual(bits(log.report(0x123456789000n, PAGE, PAGE)), [0], 'no range: every IOVA');
  });
});
