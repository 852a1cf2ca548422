import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { fixture } from '../../test/support/nvlink2/fixture.ts';
import { inSecondProcess } from '../../test/support/nvlink2/second-process.ts';
import { VfioError } from '../vfio/index.ts';
import type { GpuRamRegion } from './gpu-ram-region.ts';

const GPU = '0002:01:00.0';
const HPA = 0x3e000000000n;
const SIZE = 0x2000000000n; // 128 GiB aperture
const RAM = 16n << 30n;

function vfioError(code: string, pattern: RegExp) {
  return (err: unknown) =>
    err instanceof VfioError && err.code === code && pattern.test(err.reason);
}

describe('GPU RAM region rw', () => {
  const f = fixture();
  after(() => f.done());
  const dev = f.open(GPU);

  it('reads back what was written; the memfd keeps it across close and open', () => {
    assert.equal(dev.write(9, 0x1000n, Buffer.from('nvlink2')), 7);
    assert.equal(Buffer.from(dev.read(9, 0x1000n, 7)).toString(), 'nvlink2');
    dev.close();
    dev.open();
    assert.equal(Buffer.from(dev.read(9, 0x1000n, 7)).toString(), 'nvlink2');
  });

  it('offset ≥ size is EINVAL naming the region and offset', () => {
    assert.throws(
      () => dev.read(9, SIZE, 1),
      vfioError('EINVAL', /region 9 .*offset 0x2000000000 is past its end \(size 0x2000000000\)/),
    );
  });

  it('an access beyond the real 16 GiB is the fence: EIO and a tracepoint, nothing done', () => {
    f.ring.clear();
    assert.throws(
      () => dev.read(9, RAM, 8),
      vfioError('EIO', /RAM fence: read at hpa 0x3e400000000 .*16 GiB/),
    );
    assert.throws(
      () => dev.write(9, RAM - 4n, new Uint8Array(8)),
      vfioError('EIO', /write at hpa 0x3e3fffffffc/),
    );
    assert.deepEqual(f.ring.lines('nvlink2_gpu_ram_fence'), [
      '            test-1       [000]     0.001000: nvlink2_gpu_ram_fence: 0002:01:00.0: hpa 3e400000000 offset 400000000 count 8 is beyond real RAM 400000000',
      '            test-1       [000]     0.001000: nvlink2_gpu_ram_fence: 0002:01:00.0: hpa 3e3fffffffc offset 3fffffffc count 8 is beyond real RAM 400000000',
    ]);
    assert.equal(dev.read(9, RAM - 8n, 8).length, 8);
  });

  it('traces reads and writes', () => {
    f.ring.clear();
    dev.read(9, 0x10n, 4);
    assert.deepEqual(
      f.ring.lines('nvlink2_region_read').map((l) => l.split(': ').slice(1).join(': ')),
      ['nvlink2_region_read: 0002:01:00.0: region 9 offset 10 count 4'],
    );
  });
});

describe('GPU RAM region readView (a region read lending the memory)', () => {
  const f = fixture();
  after(() => f.done());
  const dev = f.open(GPU);
  const ops = dev.regions[0]?.ops as GpuRamRegion;

  it('equals a copying read: written memory, memory never written (zeros), and a mix', () => {
    dev.write(
      9,
      0x200000n,
      Uint8Array.from({ length: 0x3000 }, (_, i) => i & 0xff),
    );
    for (const [offset, count] of [
      [0x200000n, 0x3000],
      [0x200010n, 8],
      [0x800000n, 0x100000],
      [0x1ff000n, 0x2000],
    ] as const) {
      assert.deepEqual(dev.readView(9, offset, count), dev.read(9, offset, count));
    }
  });

  it('lends the memory itself where it was written: a later write shows through the view', () => {
    const view = dev.readView(9, 0x200000n, 4);
    dev.write(9, 0x200000n, Uint8Array.of(9, 8, 7, 6));
    assert.deepEqual(view, Uint8Array.of(9, 8, 7, 6));
  });

  it('populates nothing: memory only read is still a hole, so no fault is reported for it', () => {
    dev.readView(9, 0x4000000n, 0x100000);
    assert.deepEqual(ops.memory.dataRanges(0x4000000n, 0x4100000n), []);
  });

  it('checks and traces as rw: the fence, past the end, the read tracepoint', () => {
    f.ring.clear();
    assert.throws(() => dev.readView(9, RAM, 8), vfioError('EIO', /RAM fence: read/));
    assert.throws(() => dev.readView(9, SIZE, 1), vfioError('EINVAL', /past its end/));
    dev.readView(9, 0x10n, 4);
    assert.deepEqual(
      f.ring.lines('nvlink2_region_read').map((l) => l.split(': ').slice(1).join(': ')),
      ['nvlink2_region_read: 0002:01:00.0: region 9 offset 10 count 4'],
    );
  });
});

describe('GPU RAM region clipping (a GPU whose real RAM fills the aperture)', () => {
  const f = fixture({ gpuRamSize: () => SIZE });
  after(() => f.done());
  const dev = f.open(GPU);
  it('count is clipped to the end of the region', () => {
    assert.equal(dev.write(9, SIZE - 8n, Buffer.from('0123456789abcdef')), 8);
    assert.equal(Buffer.from(dev.read(9, SIZE - 8n, 64)).toString(), '01234567');
  });
});

describe('GPU RAM region mmap', () => {
  const f = fixture();
  after(() => f.done());

  it('once per open device; the first records the DMA pre-registration and traces', () => {
    const dev = f.open(GPU);
    const ops = dev.regions[0]?.ops as GpuRamRegion;
    f.ring.clear();
    const grant = dev.mmap(9, { offset: 0n, length: SIZE, userAddress: 0x7fff00000000n });
    assert.deepEqual(grant, { fd: ops.memory.fd, fdOffset: 0n, length: SIZE });
    assert.deepEqual(ops.preregistration, {
      userAddress: 0x7fff00000000n,
      entries: SIZE / 0x10000n,
      deviceHpa: HPA,
    });
    assert.deepEqual(f.ring.lines('vfio_pci_nvgpu_mmap'), [
      '            test-1       [000]     0.001000: vfio_pci_nvgpu_mmap: 0002:01:00.0: 3e000000000 -> 7fff00000000 size=2000000000 ret=0',
    ]);
    assert.throws(
      () => dev.mmap(9, { offset: 0n, length: 0x10000n, userAddress: 0n }),
      vfioError('EPERM', /already mapped/),
    );
    dev.close();
    assert.equal(ops.preregistration, undefined);
    dev.open(); // a new open may map again
    assert.equal(
      dev.mmap(9, { offset: 0x10000n, length: 0x10000n, userAddress: 0n }).fdOffset,
      0x10000n,
    );
    dev.close();
  });

  it('length > size and past-the-end are EINVAL', () => {
    const dev = f.open('0003:02:00.0');
    assert.throws(
      () => dev.mmap(9, { offset: 0n, length: SIZE + 0x10000n, userAddress: 0n }),
      vfioError('EINVAL', /exceeds region size/),
    );
    assert.throws(
      () => dev.mmap(9, { offset: 0x10000n, length: SIZE, userAddress: 0n }),
      vfioError('EINVAL', /runs past the region/),
    );
    dev.close();
  });
});

describe('GPU RAM across a second process', () => {
  const f = fixture();
  after(() => f.done());
  const dev = f.open(GPU);
  const ua = 0x7f0000000000n;
  const grant = dev.mmap(9, { offset: 0x100000n, length: RAM - 0x100000n, userAddress: ua });
  const ops = dev.regions[0]?.ops as GpuRamRegion;

  it('rw writes, the other process reads them through its mapping', () => {
    dev.write(9, 0x123456n, Buffer.from('written by rw'));
    const fdOffset = grant.fdOffset + (0x123456n - 0x100000n);
    assert.equal(
      Buffer.from(inSecondProcess(grant.fd, ['read', String(fdOffset), '13']), 'hex').toString(),
      'written by rw',
    );
  });

  it('the other process writes through its mapping, rw reads it; the fault is traced', () => {
    f.ring.clear();
    inSecondProcess(grant.fd, [
      'write',
      String(0x200000n + 0x10n),
      Buffer.from('written by a mapping').toString('hex'),
    ]);
    assert.equal(Buffer.from(dev.read(9, 0x200010n, 20)).toString(), 'written by a mapping');
    const faults = ops.scanFaults();
    assert.deepEqual(faults, [
      { hpa: HPA + 0x200000n, userAddress: ua + 0x100000n, offset: 0x200000n, fenced: false },
    ]);
    assert.deepEqual(f.ring.lines('vfio_pci_nvgpu_mmap_fault'), [
      '            test-1       [000]     0.001000: vfio_pci_nvgpu_mmap_fault: 0002:01:00.0: 3e000200000 -> 7f0000100000 ret=256',
    ]);
    assert.deepEqual(ops.scanFaults(), []); // each page once
    assert.deepEqual(f.ctx.live.scanFaults(), new Map());
  });
});
