import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LpidAllocator } from './lpid-allocator.ts';
import { PartitionRegistry } from './partitions.ts';

describe('PartitionRegistry', () => {
  it('one LPID per peer process, shared by its devices, freed with the last one', () => {
    const lpids = new LpidAllocator();
    const r = new PartitionRegistry(lpids);
    assert.equal(r.acquire(100, 'gpu'), 1);
    assert.equal(r.acquire(100, 'bridge'), 1);
    assert.equal(r.acquire(200, 'gpu2'), 2);
    assert.deepEqual(r.list(), [
      { pid: 100, lpid: 1, devices: ['bridge', 'gpu'] },
      { pid: 200, lpid: 2, devices: ['gpu2'] },
    ]);
    r.release(100, 'gpu');
    assert.ok(lpids.isInUse(1));
    r.release(100, 'bridge');
    assert.ok(!lpids.isInUse(1));
    assert.equal(r.acquire(300, 'gpu'), 1, 'lowest free again');
  });

  it('a pinned LPID is held while any partition uses it', () => {
    const lpids = new LpidAllocator();
    const r = new PartitionRegistry(lpids, 7);
    assert.equal(r.acquire(1, 'a'), 7);
    assert.equal(r.acquire(2, 'b'), 7);
    r.release(1, 'a');
    assert.ok(lpids.isInUse(7));
    r.release(2, 'b');
    assert.deepEqual(lpids.inUse(), [0, 4095]);
  });

  it('releasing an unknown partition or device is harmless', () => {
    const r = new PartitionRegistry(new LpidAllocator());
    r.release(5, 'x');
    assert.deepEqual(r.list(), []);
  });
});
