import assert from 'node:assert/strict';
import { fstatSync, readSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  addFileSeals,
  closeFd,
  dupFd,
  FileSeal,
  ftruncate,
  memfdCreate,
  SharedMapping,
  socketPair,
} from '../../native/index.ts';
import { VfioError } from '../../vfio/index.ts';
import { DmaFdLedger } from './dma-limits.ts';
import { DMA_WINDOW_BYTES, DmaTable } from './server-dma.ts';

const map = (address: bigint, size: bigint, flags = 3, offset = 0n) => ({
  argsz: 32,
  flags,
  offset,
  address,
  size,
});
/** A file as a client makes it: unsealed, so each test seals or shrinks it as a VMM could. */
const CLIENT_FILE = { seals: 0 };
const errno = (code: string) => (e: unknown) => e instanceof VfioError && e.code === code;

function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

describe('DmaTable', () => {
  it('reads and writes guest memory through an fd-backed region, at an unaligned offset', () => {
    const t = new DmaTable();
    const fd = memfdCreate('guest', 0x10000n, CLIENT_FILE);
    const view = SharedMapping.map(fd, 0n, 0x10000n, 'rw');
    t.map(map(0x100000n, 0x2000n, 3, 0x1234n), fd);
    t.write(0x100010n, new Uint8Array([1, 2, 3]));
    assert.deepEqual(view.read(0x1244n, 3), new Uint8Array([1, 2, 3]));
    view.write(0x1234n, new Uint8Array([9]));
    assert.deepEqual(t.read(0x100000n, 1), new Uint8Array([9]));
    assert.throws(() => t.read(0x101ff0n, 0x20), errno('EFAULT'));
    t.clear();
    assert.equal(isOpen(fd), false, 'the table closed the fd');
    view.unmap();
  });

  it('refuses writes to read-only regions and accesses to regions without an fd', () => {
    const t = new DmaTable();
    const fd = memfdCreate('guest', 0x1000n, CLIENT_FILE);
    t.map(map(0n, 0x1000n, 1), fd);
    assert.throws(() => t.write(0n, new Uint8Array(1)), errno('EPERM'));
    t.map(map(0x1000n, 0x1000n), undefined);
    assert.throws(() => t.read(0x1000n, 1), errno('EFAULT'));
    assert.equal(t.clear(), 2);
  });

  it('closes the fd of a refused map: over an existing region (EEXIST), past max_dma_maps', () => {
    const t = new DmaTable(1);
    const a = memfdCreate('a', 0x1000n, CLIENT_FILE);
    t.map(map(0n, 0x1000n), a);
    const dup = memfdCreate('b', 0x1000n, CLIENT_FILE);
    assert.throws(() => t.map(map(0n, 0x1000n), dup), errno('EEXIST'));
    assert.equal(isOpen(dup), false, 'the same range again is EEXIST too');
    const extra = memfdCreate('c', 0x1000n, CLIENT_FILE);
    assert.throws(() => t.map(map(0x10000n, 0x1000n), extra), errno('EINVAL'));
    assert.equal(isOpen(extra), false, 'max_dma_maps reached');
    assert.equal(isOpen(a), true);
    t.clear();
  });
});

describe('DmaTable against a model', () => {
  type Op =
    | { kind: 'map'; address: bigint; size: bigint }
    | { kind: 'unmap'; address: bigint; size: bigint }
    | { kind: 'all' };
  const address = fc.bigInt({ min: 0n, max: 40n }).map((a) => a * 0x1000n);
  const size = fc.bigInt({ min: 1n, max: 6n }).map((s) => s * 0x1000n);
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('map' as const), address, size }) },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('unmap' as const), address, size }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('all' as const) }) },
  );

  it('DMA_MAP/DMA_UNMAP errnos and the region list agree with a plain list (max 12)', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const t = new DmaTable({ maxRegions: 12 });
        let model: { address: bigint; size: bigint }[] = [];
        const code = (f: () => unknown) => {
          try {
            f();
            return 'ok';
          } catch (e) {
            return e instanceof VfioError ? e.code : String(e);
          }
        };
        for (const o of ops) {
          if (o.kind === 'map') {
            const clash = model.some(
              (r) => o.address < r.address + r.size && r.address < o.address + o.size,
            );
            const want = clash ? 'EEXIST' : model.length >= 12 ? 'EINVAL' : 'ok';
            assert.equal(
              code(() => t.map(map(o.address, o.size), undefined)),
              want,
            );
            if (want === 'ok') model.push({ address: o.address, size: o.size });
          } else if (o.kind === 'unmap') {
            const hit = model.findIndex((r) => r.address === o.address && r.size === o.size);
            const u = { argsz: 24, flags: 0, address: o.address, size: o.size };
            assert.equal(
              code(() => t.unmap(u)),
              hit < 0 ? 'ENOENT' : 'ok',
            );
            if (hit >= 0) model.splice(hit, 1);
          } else {
            assert.equal(t.unmap({ argsz: 24, flags: 2, address: 0n, size: 0n }), model.length);
            model = [];
          }
          assert.deepEqual(
            t.regions.map((r) => [r.address, r.size]),
            [...model]
              .sort((a, b) => (a.address < b.address ? -1 : 1))
              .map((r) => [r.address, r.size]),
          );
        }
      }),
      { numRuns: 300, seed: 0x2d },
    );
  });
});

describe('DmaTable access to client files', () => {
  it('a sealed file goes through windows, at most maxWindows live, least recently used dropped', () => {
    const t = new DmaTable({ maxWindows: 2 });
    const size = 4n * DMA_WINDOW_BYTES;
    const fd = memfdCreate('sealed', size, CLIENT_FILE);
    addFileSeals(fd, FileSeal.SHRINK);
    const mine = dupFd(fd);
    t.map(map(0n, size), fd);
    assert.equal(t.regions[0]?.access, 'mapped');
    for (const w of [0n, 1n, 2n, 0n, 3n])
      t.write(w * DMA_WINDOW_BYTES + 8n, Uint8Array.of(Number(w) + 1));
    assert.equal(t.liveWindows, 2);
    // A write that straddles two windows.
    t.write(DMA_WINDOW_BYTES - 2n, Uint8Array.of(7, 8, 9, 10));
    const back = new Uint8Array(4);
    readSync(mine, back, 0, 4, Number(DMA_WINDOW_BYTES - 2n));
    assert.deepEqual(back, Uint8Array.of(7, 8, 9, 10));
    for (const w of [0n, 1n, 2n, 3n])
      assert.deepEqual(t.read(w * DMA_WINDOW_BYTES + 8n, 1), Uint8Array.of(Number(w) + 1));
    assert.ok(t.liveWindows <= 2);
    t.clear();
    assert.equal(t.liveWindows, 0);
    closeFd(mine);
  });

  it('an unsealed file is read and written with pread/pwrite; a shrunk one is EFAULT, never grown', () => {
    const t = new DmaTable();
    const fd = memfdCreate('plain', 0x10000n, CLIENT_FILE);
    const mine = dupFd(fd);
    t.map(map(0x100000n, 0x8000n, 3, 0x8000n), fd);
    assert.equal(t.regions[0]?.access, 'file');
    t.write(0x107ff0n, new Uint8Array(16).fill(5));
    ftruncate(mine, 0xfff8n);
    assert.throws(() => t.read(0x107ff0n, 16), errno('EFAULT'));
    assert.throws(() => t.write(0x107ff0n, new Uint8Array(16)), errno('EFAULT'));
    assert.equal(fstatSync(mine).size, 0xfff8);
    assert.deepEqual(t.read(0x107ff0n, 8), new Uint8Array(8).fill(5));
    t.clear();
    closeFd(mine);
  });

  it('refuses an fd that is not a regular file, and a file range past 2^63', () => {
    const t = new DmaTable();
    const [a, b] = socketPair();
    assert.throws(() => t.map(map(0n, 0x1000n), a), errno('EINVAL'));
    assert.equal(isOpen(a), false);
    const fd = memfdCreate('far', 0x1000n, CLIENT_FILE);
    assert.throws(() => t.map(map(0n, 0x1000n, 3, (1n << 63n) - 0x800n), fd), errno('EINVAL'));
    assert.equal(isOpen(fd), false);
    closeFd(b);
  });

  it('counts fd-backed regions in the ledger it shares; past its limit a map is EINVAL', () => {
    const ledger = new DmaFdLedger(() => 2);
    const t1 = new DmaTable({ fds: ledger });
    const t2 = new DmaTable({ fds: ledger });
    t1.map(map(0n, 0x1000n), memfdCreate('a', 0x1000n, CLIENT_FILE));
    t2.map(map(0n, 0x1000n), memfdCreate('b', 0x1000n, CLIENT_FILE));
    const c = memfdCreate('c', 0x1000n, CLIENT_FILE);
    assert.throws(() => t2.map(map(0x1000n, 0x1000n), c), errno('EINVAL'));
    assert.equal(isOpen(c), false);
    t2.map(map(0x1000n, 0x1000n), undefined); // no fd: not counted
    assert.equal(ledger.held, 2);
    t1.clear();
    assert.equal(ledger.held, 1);
    t2.map(map(0x2000n, 0x1000n), memfdCreate('d', 0x1000n, CLIENT_FILE));
    t2.clear();
    assert.equal(ledger.held, 0);
  });
});
