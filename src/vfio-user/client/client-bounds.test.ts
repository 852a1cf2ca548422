/**
 * The client's bounds on what a server says, without a socket: QEMU's limits at and one past
 * each bound, the reply-size limit against every reply our own encoders make, capability
 * chains of arbitrary bytes walked in bounded steps and bytes, and VERSION errors that stay one
 * short line whatever the peer nests. (Over a real socket: test/hostile-server.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { closeFd, memfdCreate } from '../../native/index.ts';
import type { RegionCapability } from '../../vfio/index.ts';
import {
  decodeCapChain,
  encodeRegionInfo,
  VFIO_INFO_CAP_HEADER_SIZE,
  VfioError,
} from '../../vfio/index.ts';
import {
  Command,
  encodeReplyParts,
  joinParts,
  parseVersionJson,
  type VersionCapabilities,
} from '../wire/index.ts';
import {
  checkConfigSize,
  checkDeviceInfo,
  checkEcho,
  checkMappable,
  checkRegionAccess,
  checkServerCapabilities,
  MAX_SPARSE_AREAS,
} from './client-bounds.ts';
import { replyPayloadLimit, VERSION_REPLY_MAX } from './client-reply-limits.ts';

function einval(what: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof VfioError, String(e));
    assert.equal(e.code, 'EINVAL');
    assert.match(e.message, what);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  };
}

describe('DEVICE_GET_INFO: QEMU hw/vfio-user/device.c bounds', () => {
  it('100 regions and 50 IRQ indexes pass, one more is EINVAL', () => {
    const info = { argsz: 16, flags: 3, numRegions: 100, numIrqs: 50 };
    checkDeviceInfo(info);
    assert.throws(() => checkDeviceInfo({ ...info, numRegions: 101 }), einval(/num_regions 101/));
    assert.throws(() => checkDeviceInfo({ ...info, numIrqs: 51 }), einval(/num_irqs 51/));
    assert.throws(
      () => checkDeviceInfo({ ...info, numRegions: 0xffffffff }),
      einval(/4294967295 exceeds 100/),
    );
  });
});

describe('VERSION capabilities: QEMU hw/vfio-user/proxy.c bounds', () => {
  const ok: VersionCapabilities[] = [
    { maxMsgFds: 16, maxDataXferSize: 64 << 20, pgsizes: 4096, maxDmaMaps: 65535 },
    { maxMsgFds: 0, maxDataXferSize: 1, pgsizes: 0x1000 | 0x200000 },
    { migration: { pgsize: 8192, maxBitmapSize: 256 << 20 } },
    {},
  ];
  for (const caps of ok) {
    it(`accepts ${JSON.stringify(caps)}`, () => checkServerCapabilities(caps));
  }
  const bad: [VersionCapabilities, RegExp][] = [
    [{ maxMsgFds: 17 }, /"max_msg_fds" 17 exceeds 16/],
    [{ maxDataXferSize: (64 << 20) + 1 }, /"max_data_xfer_size" 67108865 exceeds 67108864/],
    [{ maxDataXferSize: 0 }, /"max_data_xfer_size" 0 allows no data/],
    [{ pgsizes: 4096 | 512 }, /"pgsizes" 0x1200 has page sizes under 4096/],
    [{ maxDmaMaps: 65536 }, /"max_dma_maps" 65536 exceeds 65535/],
    [{ migration: { pgsize: 100 } }, /"migration.pgsize" 0x64/],
    [{ migration: { maxBitmapSize: (256 << 20) + 1 } }, /"migration.max_bitmap_size"/],
  ];
  for (const [caps, what] of bad) {
    it(`refuses ${JSON.stringify(caps)}`, () => {
      assert.throws(() => checkServerCapabilities(caps), einval(what));
    });
  }

  it('a member nested 100,000 deep is refused in one short line (nothing walks it)', () => {
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    assert.throws(
      () => parseVersionJson(`{"capabilities":{"max_msg_fds":${deep}}}`),
      einval(/"max_msg_fds" must be a non-negative integer, got an array$/),
    );
  });

  it('a long value or a JSON error with a newline is cut to one line', () => {
    assert.throws(
      () => parseVersionJson(`{"capabilities":{"max_msg_fds":"${'x'.repeat(10_000)}"}}`),
      (e: unknown) => e instanceof VfioError && e.message.length < 200,
    );
    assert.throws(() => parseVersionJson('{"capabilities":\n}'), einval(/not JSON/));
  });
});

describe('reply size limits (client-reply-limits.ts)', () => {
  it('the limit of each request', () => {
    assert.equal(
      replyPayloadLimit({ command: Command.VERSION, major: 0, minor: 0, capabilities: null }),
      VERSION_REPLY_MAX,
    );
    assert.equal(
      replyPayloadLimit({
        command: Command.DEVICE_GET_INFO,
        argsz: 16,
        flags: 0,
        numRegions: 0,
        numIrqs: 0,
      }),
      16,
    );
    assert.equal(
      replyPayloadLimit({ command: Command.REGION_READ, offset: 0n, region: 7, count: 256 }),
      272,
    );
    assert.equal(replyPayloadLimit({ command: Command.DEVICE_RESET }), 0);
    assert.equal(
      replyPayloadLimit({
        command: Command.DEVICE_GET_REGION_INFO,
        argsz: 80,
        flags: 0,
        index: 9,
        capOffset: 0,
        size: 0n,
        offset: 0n,
      }),
      80,
    );
  });

  it("every region-info reply the device layer encodes fits its request's limit", () => {
    const capArb = fc.record({
      id: fc.integer({ min: 1, max: 0xffff }),
      version: fc.constant(1),
      body: fc.uint8Array({ maxLength: 64 }),
    });
    fc.assert(
      fc.property(
        fc.array(capArb, { maxLength: 6 }),
        fc.integer({ min: 32, max: 1024 }),
        (caps: RegionCapability[], argsz) => {
          const reply = encodeRegionInfo({ index: 9, flags: 3, size: 4096n, caps }, argsz);
          const limit = replyPayloadLimit({
            command: Command.DEVICE_GET_REGION_INFO,
            argsz,
            flags: 0,
            index: 9,
            capOffset: 0,
            size: 0n,
            offset: 0n,
          });
          assert.ok(reply.bytes.length <= limit);
        },
      ),
    );
  });

  it('a REGION_READ reply of the count asked fits exactly; one byte more does not', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4096 }), (count) => {
        const bytes = joinParts(
          encodeReplyParts({
            command: Command.REGION_READ,
            offset: 0n,
            region: 0,
            data: new Uint8Array(count),
          }),
        ).length;
        const limit = replyPayloadLimit({
          command: Command.REGION_READ,
          offset: 0n,
          region: 0,
          count,
        });
        assert.equal(bytes, limit);
      }),
    );
  });
});

describe('capability chains of arbitrary bytes', () => {
  it('walk forward only: ≤ length/8 steps, bodies ≤ length bytes, offsets increasing', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 2048 }),
        fc.integer({ min: 0, max: 2100 }),
        (info, first) => {
          const { caps, error } = decodeCapChain(info, first);
          assert.ok(caps.length <= info.length / VFIO_INFO_CAP_HEADER_SIZE);
          const bytes = caps.reduce((n, c) => n + c.body.length, 0);
          assert.ok(bytes <= info.length);
          for (let i = 1; i < caps.length; i++)
            assert.ok(caps[i]!.offset >= caps[i - 1]!.offset + VFIO_INFO_CAP_HEADER_SIZE);
          const last = caps.at(-1);
          if (error === undefined && last !== undefined) assert.equal(last.next, 0);
        },
      ),
    );
  });

  it('a 64 KiB chain of headers pointing back ends at its first step, holding ~nothing', () => {
    const n = 64 * 1024;
    const info = new Uint8Array(n);
    const view = new DataView(info.buffer);
    for (let at = n - 8; at >= 32; at -= 8) view.setUint32(at + 4, at - 8, true);
    const { caps, error } = decodeCapChain(info, n - 8);
    assert.equal(caps.length, 1);
    assert.equal(error, `capability at ${n - 8}: next ${n - 16} does not point past it`);
  });

  it('a header pointing at itself ends the walk with an error', () => {
    const info = new Uint8Array(48);
    new DataView(info.buffer).setUint32(36, 32, true);
    assert.equal(
      decodeCapChain(info, 32).error,
      'capability at 32: next 32 does not point past it',
    );
  });
});

describe('reads, config space, mappings', () => {
  it('a read or write reply must name the place asked and carry the count asked', () => {
    const asked = { region: 7, offset: 0x40n, count: 8 };
    checkRegionAccess('REGION_READ', asked, { ...asked });
    assert.throws(
      () => checkRegionAccess('REGION_READ', asked, { ...asked, count: 4 }),
      einval(/4 of 8 bytes came back/),
    );
    assert.throws(
      () => checkRegionAccess('REGION_WRITE', asked, { ...asked, count: 9 }),
      einval(/REGION_WRITE of region 7 at 0x40: 9 of 8 bytes were written/),
    );
    assert.throws(
      () => checkRegionAccess('REGION_READ', asked, { ...asked, offset: 0x48n }),
      einval(/region 7 at 0x40 answered for region 7 at 0x48/),
    );
    assert.throws(
      () => checkRegionAccess('REGION_READ', asked, { ...asked, region: 0 }),
      einval(/region 0/),
    );
    checkEcho('GET_IRQ_INFO of index', 2, 2);
    assert.throws(
      () => checkEcho('GET_IRQ_INFO of index', 2, 3),
      einval(/index 2 answered with 3/),
    );
  });

  it('config space up to 4 KiB', () => {
    checkConfigSize(7, 4096n);
    assert.throws(() => checkConfigSize(7, 4097n), einval(/4097 bytes exceeds 4096/));
  });

  it("a mapping must lie inside the region and inside its fd's size", () => {
    const fd = memfdCreate('client-bounds', 0x4000n);
    try {
      checkMappable(9, fd, 0n, 0x4000n, null);
      checkMappable(9, fd, 0x1000n, 0x3000n, [{ offset: 0x1000n, size: 0x2000n }]);
      assert.throws(() => checkMappable(9, fd, 0n, 0x4001n, null), einval(/fd of 0x4000 bytes/));
      assert.throws(
        () => checkMappable(9, fd, 0x4000n, 0x1000n, null),
        einval(/fd offset 0x4000 end past its fd/),
      );
      assert.throws(
        () => checkMappable(9, fd, 0n, 0x4000n, [{ offset: 0x3000n, size: 0x2000n }]),
        einval(/area 0x3000\+0x2000 ends past the region of 0x4000/),
      );
      const many = Array.from({ length: MAX_SPARSE_AREAS + 1 }, (_, i) => ({
        offset: BigInt(i * 16),
        size: 8n,
      }));
      assert.throws(() => checkMappable(9, fd, 0n, 0x4000n, many), einval(/65 sparse-mmap areas/));
    } finally {
      closeFd(fd);
    }
  });
});
