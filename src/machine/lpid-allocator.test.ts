import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
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

  it('restore leaves exactly the listed in-range LPIDs in use, as a free of each and claims would', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 4095 }), { maxLength: 40 }),
        fc.array(fc.integer({ min: -8, max: 4104 }), { maxLength: 40 }),
        (before, listed) => {
          const restored = new LpidAllocator();
          const byHand = new LpidAllocator();
          for (const l of before) {
            restored.claim(l);
            byHand.claim(l);
          }
          restored.restore(listed);
          for (let l = 0; l < byHand.nrLpids; l++) byHand.free(l);
          for (const l of listed) byHand.claim(l);
          assert.deepEqual(restored.inUse(), byHand.inUse());
          const inRange = listed.filter((l) => l >= 0 && l < 4096);
          assert.deepEqual(
            restored.inUse(),
            [...new Set(inRange)].sort((a, b) => a - b),
          );
        },
      ),
    );
  });
});
