/**
 * Region info and region access against the real server: the argsz rule over the wire, one fd
 * per mmap-able region (GPU RAM memfd, ATSD page, BAR0) sent again unchanged on a second
 * request, data written through the client's mapping read back with REGION_READ and the other
 * way round, posted writes (NO_REPLY, no reply even on error), WRITE_MULTI, transfer limits,
 * the GPU RAM fence (EIO) and reset.
 */
import assert from 'node:assert/strict';
import { fstatSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { closeFd } from '../src/native/index.ts';
import { Command, ReplyError, VfioUserClient } from '../src/vfio-user/index.ts';
import { FLAG_NO_REPLY, frame, pack } from './support/frames.ts';
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

const GPU_RAM = 9;
const ATSD = 9;
const bytes = (...b: number[]) => new Uint8Array(b);

async function rejectsWith(p: Promise<unknown>, errno: number): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof ReplyError && e.remoteErrno === errno);
}

describe('DEVICE_GET_REGION_INFO', () => {
  it('GPU RAM: argsz 32 gets the fixed part, argsz 64 needed, no caps, no fd', async () => {
    for (const argsz of [32, 63]) {
      const r = await gpu.getRegionInfo(GPU_RAM, argsz);
      assert.equal(r.raw.length, 32);
      assert.equal(r.info.argsz, 64);
      assert.equal(r.info.flags, 0x7, 'READ|WRITE|MMAP: CAPS only when the caps are in the reply');
      assert.equal(r.info.capOffset, 0);
      assert.equal(r.fd, null);
      assert.equal(r.info.size, 128n << 30n);
    }
  });

  it('GPU RAM with argsz 64: TYPE and SSATGT caps and the memfd, offset 0 into it', async () => {
    const r = await gpu.getRegionInfo(GPU_RAM, 64);
    assert.equal(r.raw.length, 64);
    assert.equal(r.info.flags, 0xf, 'READ|WRITE|MMAP|CAPS');
    assert.equal(r.info.capOffset, 32);
    assert.equal(r.info.offset, 0n, 'mmap offset into the fd (vfio-user), not index << 40');
    assert.deepEqual(
      r.decoded.caps.map((c) => c.value.kind),
      ['type', 'nvlink2-ssatgt'],
    );
    assert.ok(r.fd !== null);
    const again = await gpu.getRegionInfo(GPU_RAM, 64);
    assert.ok(again.fd !== null, 'the second request gets the fd too (the mmap op ran once)');
    assert.equal(fstatSync(again.fd).ino, fstatSync(r.fd).ino, 'the same memfd');
    closeFd(r.fd);
    closeFd(again.fd);
  });

  it('ATSD needs argsz 80 (TYPE, SSATGT, LNKSPD) and comes with its 64 KiB page fd', async () => {
    const small = await bridge.getRegionInfo(ATSD, 32);
    assert.equal(small.info.argsz, 80);
    assert.equal(small.fd, null);
    const r = await bridge.getRegionInfo(ATSD, 80);
    assert.equal(r.info.size, 0x10000n);
    assert.deepEqual(
      r.decoded.caps.map((c) => c.value.kind),
      ['type', 'nvlink2-ssatgt', 'nvlink2-lnkspd'],
    );
    assert.ok(r.fd !== null);
    assert.equal(fstatSync(r.fd).size, 0x10000);
    closeFd(r.fd);
  });

  it('argsz in the reply is what the full reply needs, not a larger request', async () => {
    const r = await gpu.getRegionInfo(GPU_RAM, 4096);
    assert.equal(r.info.argsz, 64);
    assert.equal(r.raw.length, 64);
    if (r.fd !== null) closeFd(r.fd);
    const cfg = await gpu.getRegionInfo(7, 100);
    assert.equal(cfg.info.argsz, 32);
  });

  it('argsz under 32, unknown regions and VGA on a non-VGA function are EINVAL', async () => {
    gpu.sendRaw(frame(0x7601, Command.DEVICE_GET_REGION_INFO, pack(16, 0, 0, 0, 0n, 0n)));
    assert.equal((await gpu.expectReply(0x7601, Command.DEVICE_GET_REGION_INFO)).header.errno, 22);
    await rejectsWith(gpu.getRegionInfo(99), 22);
    await rejectsWith(gpu.getRegionInfo(8), 22);
  });

  it("QEMU 10.1's first query (argsz 32) passes its cap_offset check on every region", async () => {
    const { numRegions } = await gpu.getDeviceInfo();
    for (let index = 0; index < numRegions; index++) {
      if (index === 8) continue; // VGA: EINVAL on a non-VGA function, as the kernel
      const r = await gpu.getRegionInfo(index, 32);
      if (r.fd !== null) closeFd(r.fd);
      const caps = (r.info.flags & 0x8) !== 0;
      assert.ok(
        !caps || (r.info.capOffset >= 32 && r.info.capOffset <= r.info.argsz),
        `region ${index}`,
      );
    }
  });

  it('CONFIG has no fd; BAR0 is mmap-able with an fd', async () => {
    const cfg = await gpu.regionInfo(7);
    assert.equal(cfg.fd, null);
    const bar0 = await gpu.regionInfo(0);
    assert.ok(bar0.fd !== null);
    closeFd(bar0.fd);
  });
});

describe('region data through the mapping and the wire', () => {
  it('GPU RAM: mapping → REGION_READ and REGION_WRITE → mapping', async () => {
    const m = await gpu.mapRegion(GPU_RAM);
    try {
      const area = m.areas[0]!.mapping;
      area.write(0x12340n, bytes(1, 2, 3, 4));
      assert.deepEqual(await gpu.regionRead(GPU_RAM, 0x12340n, 4), bytes(1, 2, 3, 4));
      assert.equal(await gpu.regionWrite(GPU_RAM, 0x56780n, bytes(9, 8, 7)), 3);
      assert.deepEqual(area.read(0x56780n, 3), bytes(9, 8, 7));
    } finally {
      m.unmap();
    }
  });

  it('ATSD: the register page written through the mapping reads back over the wire and back', async () => {
    const m = await bridge.mapRegion(ATSD);
    try {
      const page = m.areas[0]!.mapping;
      page.write(0x8n, bytes(0xaa, 0xbb, 0xcc, 0xdd, 0, 0, 0, 0)); // XTS_ATSD_AVA
      assert.deepEqual(await bridge.regionRead(ATSD, 0x8n, 4), bytes(0xaa, 0xbb, 0xcc, 0xdd));
      await bridge.regionWrite(ATSD, 0x8n, bytes(0x11, 0x22));
      assert.deepEqual(page.read(0x8n, 4), bytes(0x11, 0x22, 0xcc, 0xdd));
    } finally {
      m.unmap();
    }
  });

  it('BAR0: mapping and wire see the same memory', async () => {
    const m = await gpu.mapRegion(0);
    try {
      m.write(0x2000n, bytes(5, 6)); // region offset (the area starts past BOOT_0's page)
      assert.deepEqual(await gpu.regionRead(0, 0x2000n, 2), bytes(5, 6));
    } finally {
      m.unmap();
    }
  });

  it('reads config space: vendor 0x10de, device 0x1db1', async () => {
    const id = await gpu.regionRead(7, 0n, 4);
    assert.deepEqual(id, bytes(0xde, 0x10, 0xb1, 0x1d));
  });

  it('transfers up to max_data_xfer_size; beyond is EINVAL', async () => {
    const big = await gpu.regionRead(GPU_RAM, 0n, 1 << 20);
    assert.equal(big.length, 1 << 20);
    gpu.sendRaw(frame(0x7602, Command.REGION_READ, pack(0n, GPU_RAM, (1 << 20) + 1)));
    assert.equal((await gpu.expectReply(0x7602, Command.REGION_READ)).header.errno, 22);
  });

  it('past the real 16 GiB of GPU RAM is the NVLink fence: EIO', async () => {
    await rejectsWith(gpu.regionRead(GPU_RAM, 16n << 30n, 8), 5);
  });

  it('posted writes (NO_REPLY) land, and a failing one gets no reply either', async () => {
    await gpu.regionWrite(GPU_RAM, 0x9000n, bytes(4, 2), { posted: true });
    assert.deepEqual(await gpu.regionRead(GPU_RAM, 0x9000n, 2), bytes(4, 2));
    let answered = false;
    const bad = gpu.expectReply(0x7603, Command.REGION_WRITE).then(
      () => {
        answered = true;
      },
      () => {},
    );
    const payload = new Uint8Array(18);
    payload.set(pack(0n, 99, 2));
    gpu.sendRaw(frame(0x7603, Command.REGION_WRITE, payload, { flags: FLAG_NO_REPLY }));
    await gpu.getDeviceInfo(); // replies come in order: had 0x7603 been answered, it came first
    assert.equal(answered, false);
    void bad;
  });

  it('REGION_WRITE_MULTI writes every entry', async () => {
    const count = await gpu.regionWriteMulti(
      [
        { offset: 0xa000n, region: GPU_RAM, data: bytes(1) },
        { offset: 0xa001n, region: GPU_RAM, data: bytes(2, 3, 4, 5, 6, 7, 8, 9) },
      ],
      { posted: false },
    );
    assert.equal(count, 2n);
    assert.deepEqual(await gpu.regionRead(GPU_RAM, 0xa000n, 9), bytes(1, 2, 3, 4, 5, 6, 7, 8, 9));
  });

  it('DEVICE_RESET restores config space defaults', async () => {
    const before = await gpu.regionRead(7, 4n, 2);
    await gpu.regionWrite(7, 4n, bytes(0x06, 0x00)); // COMMAND: MEMORY | MASTER
    assert.notDeepEqual(await gpu.regionRead(7, 4n, 2), before);
    await gpu.reset();
    assert.deepEqual(await gpu.regionRead(7, 4n, 2), before);
  });
});

describe('large REGION_WRITEs (received in place into GPU RAM, or into a reused buffer)', () => {
  const pattern = (n: number, seed: number) =>
    Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

  it('GPU RAM: 1 MiB written reads back over the wire and through the mapping, twice over', async () => {
    const m = await gpu.mapRegion(GPU_RAM);
    try {
      for (const seed of [1, 2]) {
        const data = pattern(1 << 20, seed);
        assert.equal(await gpu.regionWrite(GPU_RAM, 0x300003n, data), data.length);
        assert.deepEqual(await gpu.regionRead(GPU_RAM, 0x300003n, data.length), data);
        assert.deepEqual(m.areas[0]!.mapping.read(0x300003n, data.length), data);
      }
    } finally {
      m.unmap();
    }
  });

  it('GPU RAM: a write across a 1 GiB window of the server mapping, and one at the fence', async () => {
    const data = pattern(0x40000, 3);
    const at = (1n << 30n) - 0x1000n;
    assert.equal(await gpu.regionWrite(GPU_RAM, at, data), data.length);
    assert.deepEqual(await gpu.regionRead(GPU_RAM, at, data.length), data);
    const fence = 16n << 30n;
    await gpu.regionWrite(GPU_RAM, fence - 0x100n, new Uint8Array(0x100).fill(0x5a));
    await rejectsWith(gpu.regionWrite(GPU_RAM, fence - 0x100n, pattern(0x10000, 4)), 5);
    assert.deepEqual(
      await gpu.regionRead(GPU_RAM, fence - 0x100n, 0x100),
      new Uint8Array(0x100).fill(0x5a),
      'nothing of a fenced write lands',
    );
  });

  it('a count that disagrees with the data is EINVAL and writes nothing', async () => {
    await gpu.regionWrite(GPU_RAM, 0x700000n, new Uint8Array(0x8000).fill(0x11));
    const payload = new Uint8Array(16 + 0x8000).fill(0x22);
    payload.set(pack(0x700000n, GPU_RAM, 0x7fff));
    gpu.sendRaw(frame(0x7604, Command.REGION_WRITE, payload));
    assert.equal((await gpu.expectReply(0x7604, Command.REGION_WRITE)).header.errno, 22);
    assert.deepEqual(
      await gpu.regionRead(GPU_RAM, 0x700000n, 0x8000),
      new Uint8Array(0x8000).fill(0x11),
    );
  });

  it('BAR0: 64 KiB written reads back; back to back with GPU RAM writes', async () => {
    const bar = pattern(0x10000, 5);
    const ram = pattern(0x20000, 6);
    await Promise.all([
      gpu.regionWrite(0, 0x100000n, bar),
      gpu.regionWrite(GPU_RAM, 0x900000n, ram),
      gpu.regionWrite(0, 0x120000n, ram),
    ]);
    assert.deepEqual(await gpu.regionRead(0, 0x100000n, bar.length), bar);
    assert.deepEqual(await gpu.regionRead(GPU_RAM, 0x900000n, ram.length), ram);
    assert.deepEqual(await gpu.regionRead(0, 0x120000n, ram.length), ram);
  });
});
