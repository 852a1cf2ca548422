/**
 * Only registers are trapped (issue 14): against a real `serve` in a second process, a GPU's
 * BAR0 offers to map everything but its register pages (NV_PMC_BOOT_0's page at 0, the
 * doorbell page at 0xfff000) in a SPARSE_MMAP capability (struct
 * vfio_region_info_cap_sparse_mmap, include/uapi/linux/vfio.h); those pages are not in the fd
 * (a client mapping them anyway reaches no register: BOOT_0 stays, the doorbell stays silent);
 * BOOT_0 is read-only; DEVICE_RESET restores the registers and keeps the rest of BAR memory.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  closeFd,
  eventfdCreate,
  eventfdRead,
  pageSize,
  SharedMapping,
} from '../src/native/index.ts';
import { VfioError } from '../src/vfio/index.ts';
import { IrqSetFlag, VfioUserClient } from '../src/vfio-user/index.ts';
import { BRIDGE, GPU, type ServeProcess, startServe } from './support/serve-process.ts';

let serve: ServeProcess;
let gpu: VfioUserClient;
let bridge: VfioUserClient;
before(async () => {
  serve = await startServe();
  gpu = await VfioUserClient.connect(serve.socket(GPU));
  bridge = await VfioUserClient.connect(serve.socket(BRIDGE));
});
after(async () => {
  gpu.close();
  bridge.close();
  await serve.stop();
});

const BAR0_SIZE = 16n << 20n;
const DOORBELL = BAR0_SIZE - 0x1000n;
const BOOT_0 = Uint8Array.of(0xa1, 0x00, 0x00, 0x14); // 0x140000a1, GV100
const bytes = (...b: number[]) => new Uint8Array(b);
const u32 = (v: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
};

describe('BAR0 register pages over the wire', () => {
  it('region info: SPARSE_MMAP leaves out both register pages, then MSIX_MAPPABLE; one fd', async () => {
    const r = await gpu.getRegionInfo(0, 1024);
    try {
      // Built here byte by byte: struct vfio_region_info, then the chain at 32.
      const want = new DataView(new ArrayBuffer(72));
      want.setUint32(0, 72, true); // argsz: what the reply needs
      want.setUint32(4, 0xf, true); // READ|WRITE|MMAP|CAPS
      want.setUint32(8, 0, true);
      want.setUint32(12, 32, true);
      want.setBigUint64(16, BAR0_SIZE, true);
      want.setBigUint64(24, 0n, true); // the mmap offset into the fd
      want.setUint16(32, 1, true); // VFIO_REGION_INFO_CAP_SPARSE_MMAP
      want.setUint16(34, 1, true);
      want.setUint32(36, 64, true);
      want.setUint32(40, 1, true); // nr_areas
      want.setUint32(44, 0, true); // reserved
      want.setBigUint64(48, 0x1000n, true);
      want.setBigUint64(56, DOORBELL - 0x1000n, true);
      want.setUint16(64, 3, true); // VFIO_REGION_INFO_CAP_MSIX_MAPPABLE
      want.setUint16(66, 1, true);
      want.setUint32(68, 0, true);
      assert.deepEqual(r.raw, new Uint8Array(want.buffer));
      assert.notEqual(r.fd, null);
    } finally {
      if (r.fd !== null) closeFd(r.fd);
    }
  });

  it('a bridge BAR0 leaves out its doorbell page', async () => {
    const r = await bridge.regionInfo(0);
    if (r.fd !== null) closeFd(r.fd);
    const sparse = r.decoded.caps.find((c) => c.value.kind === 'sparse-mmap')?.value;
    assert.deepEqual(sparse, { kind: 'sparse-mmap', areas: [{ offset: 0n, size: 0x1f000n }] });
  });

  it('the mapping holds only the areas: a register page is absent, the rest is shared', async () => {
    const m = await gpu.mapRegion(0);
    try {
      assert.deepEqual(
        m.areas.map((a) => [a.regionOffset, a.size]),
        [[0x1000n, DOORBELL - 0x1000n]],
      );
      for (const at of [0n, DOORBELL]) {
        assert.throws(
          () => m.read(at, 4),
          (e: unknown) => e instanceof VfioError && e.code === 'EFAULT',
        );
      }
      m.write(0x2000n, bytes(5, 6));
      assert.deepEqual(await gpu.regionRead(0, 0x2000n, 2), bytes(5, 6));
      await gpu.regionWrite(0, 0x3000n, bytes(7, 8));
      assert.deepEqual(m.read(0x3000n, 2), bytes(7, 8));
    } finally {
      m.unmap();
    }
  });

  it('mapping the left-out pages anyway reaches no register: BOOT_0 stays, the doorbell is silent', async () => {
    const r = await gpu.getRegionInfo(0, 1024);
    const fd = r.fd;
    assert.ok(fd !== null);
    const efd = eventfdCreate(0, { nonBlocking: true });
    const page = BigInt(pageSize());
    const first = SharedMapping.map(fd, 0n, page, 'rw');
    const last = SharedMapping.map(fd, BAR0_SIZE - page, page, 'rw');
    try {
      await gpu.setIrqs({
        index: 0,
        start: 0,
        count: 1,
        flags: IrqSetFlag.DATA_EVENTFD | IrqSetFlag.ACTION_TRIGGER,
        eventfds: [efd],
      });
      first.write(0n, u32(0xdeadbeef));
      assert.deepEqual(await gpu.regionRead(0, 0n, 4), BOOT_0);
      last.write(page - 0x1000n, u32(0)); // the doorbell's offset in the fd
      await gpu.getDeviceInfo(); // a round trip: the server had its chance to ring
      assert.equal(eventfdRead(efd), null, 'a write to the memfd is no doorbell');
      await gpu.regionWrite(0, DOORBELL, u32(0));
      assert.equal(eventfdRead(efd), 1n, 'a region write to the doorbell rings');
      await gpu.setIrqs({
        index: 0,
        start: 0,
        count: 0,
        flags: IrqSetFlag.DATA_NONE | IrqSetFlag.ACTION_TRIGGER,
      });
    } finally {
      first.unmap();
      last.unmap();
      closeFd(efd);
      closeFd(fd);
    }
  });

  it('NV_PMC_BOOT_0 reads 0x140000a1 after a write; the bytes after it take theirs', async () => {
    assert.equal(await gpu.regionWrite(0, 0n, bytes(1, 2, 3, 4, 5, 6, 7, 8)), 8);
    assert.deepEqual(await gpu.regionRead(0, 0n, 8), bytes(...BOOT_0, 5, 6, 7, 8));
  });

  it('DEVICE_RESET restores the register pages and keeps the rest of BAR memory', async () => {
    await gpu.regionWrite(0, 0x100n, bytes(1, 2, 3, 4));
    await gpu.regionWrite(0, DOORBELL + 0x10n, bytes(9, 9, 9, 9)); // the DMA engine's ADDRESS
    await gpu.regionWrite(0, 0x4000n, bytes(6, 6));
    await gpu.reset();
    assert.deepEqual(await gpu.regionRead(0, 0n, 4), BOOT_0);
    assert.deepEqual(await gpu.regionRead(0, 0x100n, 4), new Uint8Array(4));
    assert.deepEqual(await gpu.regionRead(0, DOORBELL + 0x10n, 4), new Uint8Array(4));
    assert.deepEqual(await gpu.regionRead(0, 0x4000n, 2), bytes(6, 6));
  });
});
