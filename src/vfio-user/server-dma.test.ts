import assert from 'node:assert/strict';
import { fstatSync } from 'node:fs';
import { describe, it } from 'node:test';
import { memfdCreate, SharedMapping } from '../native/index.ts';
import { VfioError } from '../vfio/errors.ts';
import { DmaTable } from './server-dma.ts';

const map = (address: bigint, size: bigint, flags = 3, offset = 0n) => ({
  argsz: 32,
  flags,
  offset,
  address,
  size,
});
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
    const fd = memfdCreate('guest', 0x10000n);
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
    const fd = memfdCreate('guest', 0x1000n);
    t.map(map(0n, 0x1000n, 1), fd);
    assert.throws(() => t.write(0n, new Uint8Array(1)), errno('EPERM'));
    t.map(map(0x1000n, 0x1000n), undefined);
    assert.throws(() => t.read(0x1000n, 1), errno('EFAULT'));
    assert.equal(t.clear(), 2);
  });

  it('closes the fd of a refused map: over an existing region (EEXIST), past max_dma_maps', () => {
    const t = new DmaTable(1);
    const a = memfdCreate('a', 0x1000n);
    t.map(map(0n, 0x1000n), a);
    const dup = memfdCreate('b', 0x1000n);
    assert.throws(() => t.map(map(0n, 0x1000n), dup), errno('EEXIST'));
    assert.equal(isOpen(dup), false, 'the same range again is EEXIST too');
    const extra = memfdCreate('c', 0x1000n);
    assert.throws(() => t.map(map(0x10000n, 0x1000n), extra), errno('EINVAL'));
    assert.equal(isOpen(extra), false, 'max_dma_maps reached');
    assert.equal(isOpen(a), true);
    t.clear();
  });
});
