import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VfioError } from '../vfio/index.ts';
import { HOST_LPID, LPID_RSVD, LpidAllocator } from './lpid-allocator.ts';

describe('LpidAllocator (kvmppc_alloc_lpid)', () => {
  it('starts with the host LPID 0 and the reserved 0xfff in use', () => {
    const a = new LpidAllocator();
    assert.equal(a.nrLpids, 4096);
    assert.deepEqual(a.inUse(), [HOST_LPID, LPID_RSVD]);
  });

  it('hands out the lowest free LPID and reuses a freed one first', () => {
    const a = new LpidAllocator();
    assert.deepEqual([a.alloc(), a.alloc(), a.alloc()], [1, 2, 3]);
    a.free(2);
    assert.equal(a.alloc(), 2);
    assert.equal(a.alloc(), 4);
  });

  it('claims are idempotent and skipped by alloc', () => {
    const a = new LpidAllocator();
    a.claim(1);
    a.claim(1);
    assert.equal(a.alloc(), 2);
  });

  it('is ENOMEM when every LPID is taken', () => {
    const a = new LpidAllocator(4);
    assert.deepEqual([a.alloc(), a.alloc()], [1, 2]);
    assert.throws(
      () => a.alloc(),
      (e: unknown) => e instanceof VfioError && e.code === 'ENOMEM',
    );
  });
});
