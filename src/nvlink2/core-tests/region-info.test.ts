/**
 * Region-info replies byte for byte against struct vfio_region_info and the capability chain
 * as Linux 5.12 built them (vfio_pci.c VFIO_DEVICE_GET_REGION_INFO, vfio.c vfio_info_cap_add /
 * vfio_info_cap_shift), for the NVLink2 regions (registered here by stand-in hooks) and the
 * standard regions of a V100. Expected bytes are built here with DataView, independently of
 * the encoder.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import {
  buildFakeHost,
  fakeFunction,
  fakeVariant,
} from '../../../test/support/nvlink2/fake-host.ts';
import type { VariantHook } from '../../vfio/index.ts';
import {
  decodeRegionInfo,
  PCI_VENDOR_TYPE,
  type RegionCapability,
  RegionFlag,
  type RegionOps,
  VfioError,
  VfioPciDevice,
} from '../../vfio/index.ts';
import { encodeLnkspdCap, encodeSsatgtCap, NVLINK2_REGION_CAPABILITIES } from '../region-caps.ts';

const TGT = 0x0000_0c00_0000_0000n;
const LINK_SPEED = 0x8;
const GPU_RAM_SIZE = 128n << 30n;
const RWM = RegionFlag.READ | RegionFlag.WRITE | RegionFlag.MMAP;

function fakeOps(caps: () => RegionCapability[]): RegionOps {
  return {
    rw: (_o, buf) => buf.length,
    capabilities: caps,
    mmap: (r) => ({ fd: 99, fdOffset: r.offset, length: r.length }),
  };
}

/** Hooks standing in for the subdriver: GPU RAM on NVIDIA, ATSD on IBM. */
const hooks: VariantHook[] = [
  {
    vendor: 0x10de,
    name: 'NVIDIA NV2 RAM',
    init: (d) => {
      d.registerDeviceRegion(PCI_VENDOR_TYPE | 0x10de, 1, GPU_RAM_SIZE, RWM, () =>
        fakeOps(() => [encodeSsatgtCap(TGT)]),
      );
    },
  },
  {
    vendor: 0x1014,
    name: 'NVIDIA NV2 ATSD',
    init: (d) => {
      const caps = () => [encodeSsatgtCap(TGT), encodeLnkspdCap(LINK_SPEED)];
      d.registerDeviceRegion(PCI_VENDOR_TYPE | 0x1014, 1, 0x10000n, RWM, () => fakeOps(caps));
    },
  },
];

const host = buildFakeHost();
const gpu = new VfioPciDevice(fakeFunction(host, 0x1db1), host, fakeVariant(host, hooks));
const bridge = new VfioPciDevice(fakeFunction(host, 0x04ea), host, fakeVariant(host, hooks));
gpu.open();
bridge.open();
after(() => {
  gpu.dispose();
  bridge.dispose();
});

/** Independent builder: fixed part. */
function fixed(
  argsz: number,
  flags: number,
  index: number,
  capOffset: number,
  size: bigint,
  extra = 0,
): DataView {
  const v = new DataView(new ArrayBuffer(32 + extra));
  v.setUint32(0, argsz, true);
  v.setUint32(4, flags, true);
  v.setUint32(8, index, true);
  v.setUint32(12, capOffset, true);
  v.setBigUint64(16, size, true);
  v.setBigUint64(24, BigInt(index) << 40n, true);
  return v;
}

function header(v: DataView, at: number, id: number, version: number, next: number): void {
  v.setUint16(at, id, true);
  v.setUint16(at + 2, version, true);
  v.setUint32(at + 4, next, true);
}

function bytesOf(v: DataView): Uint8Array {
  return new Uint8Array(v.buffer);
}

describe('GPU RAM region info (TYPE + SSATGT)', () => {
  it('is 64 bytes: TYPE@32 next 48, SSATGT@48 next 0', () => {
    const v = fixed(64, RWM | RegionFlag.CAPS, 9, 32, GPU_RAM_SIZE, 32);
    header(v, 32, 2, 1, 48);
    v.setUint32(40, 0x800010de, true);
    v.setUint32(44, 1, true);
    header(v, 48, 4, 1, 0);
    v.setBigUint64(56, TGT, true);
    const reply = gpu.regionInfo(9, 64);
    assert.deepEqual(reply.bytes, bytesOf(v));
    assert.ok(reply.mmap, 'an mmap-able region with enough argsz offers a mapping');
  });

  for (const argsz of [32, 63]) {
    it(`argsz ${argsz}: only the fixed part, argsz 64, cap_offset 0, CAPS still set`, () => {
      const reply = gpu.regionInfo(9, argsz);
      assert.deepEqual(reply.bytes, bytesOf(fixed(64, RWM | RegionFlag.CAPS, 9, 0, GPU_RAM_SIZE)));
      assert.equal(reply.mmap, undefined);
    });
  }

  it('a larger argsz is echoed, not lowered (the kernel never rewrites it)', () => {
    const reply = gpu.regionInfo(9, 4096);
    assert.equal(reply.bytes.length, 64);
    assert.equal(reply.info.argsz, 4096);
  });
});

describe('ATSD region info (TYPE + SSATGT + LNKSPD)', () => {
  it('is 80 bytes: TYPE@32 next 48, SSATGT@48 next 64, LNKSPD@64 next 0', () => {
    const v = fixed(80, RWM | RegionFlag.CAPS, 9, 32, 0x10000n, 48);
    header(v, 32, 2, 1, 48);
    v.setUint32(40, 0x80001014, true);
    v.setUint32(44, 1, true);
    header(v, 48, 4, 1, 64);
    v.setBigUint64(56, TGT, true);
    header(v, 64, 5, 1, 0);
    v.setUint32(72, LINK_SPEED, true);
    assert.deepEqual(bridge.regionInfo(9, 80).bytes, bytesOf(v));
  });

  for (const argsz of [32, 79]) {
    it(`argsz ${argsz}: fixed part only with argsz 80`, () => {
      assert.deepEqual(
        bridge.regionInfo(9, argsz).bytes,
        bytesOf(fixed(80, RWM | RegionFlag.CAPS, 9, 0, 0x10000n)),
      );
    });
  }

  it('decodes back to the table values', () => {
    const d = decodeRegionInfo(bridge.regionInfo(9, 80).bytes, NVLINK2_REGION_CAPABILITIES);
    assert.deepEqual(
      d.caps.map((c) => [c.id, c.offset, c.next]),
      [
        [2, 32, 48],
        [4, 48, 64],
        [5, 64, 0],
      ],
    );
    assert.deepEqual(d.caps[0]?.value, { kind: 'type', type: 0x80001014, subtype: 1 });
    assert.deepEqual(d.caps[1]?.value, { kind: 'nvlink2-ssatgt', tgt: TGT });
    assert.deepEqual(d.caps[2]?.value, { kind: 'nvlink2-lnkspd', linkSpeed: LINK_SPEED });
  });
});

describe('standard regions', () => {
  it('BAR0 of a V100 carries SPARSE_MMAP without its two register pages, then MSIX_MAPPABLE (argsz 72)', () => {
    const v = fixed(72, RWM | RegionFlag.CAPS, 0, 32, 16n << 20n, 40);
    // struct vfio_region_info_cap_sparse_mmap: nr_areas 1, reserved, {offset, size}: the
    // pages of NV_PMC_BOOT_0 (0) and of the doorbell (0xfff000) are left out.
    header(v, 32, 1, 1, 64);
    v.setUint32(40, 1, true);
    v.setUint32(44, 0, true);
    v.setBigUint64(48, 0x1000n, true);
    v.setBigUint64(56, 0xffe000n, true);
    header(v, 64, 3, 1, 0);
    assert.deepEqual(gpu.regionInfo(0, 72).bytes, bytesOf(v));
    assert.deepEqual(
      gpu.regionInfo(0, 71).bytes,
      bytesOf(fixed(72, RWM | RegionFlag.CAPS, 0, 0, 16n << 20n)),
    );
  });

  it('BAR0 of a bridge leaves out its doorbell page only; its BAR2 has no caps', () => {
    const v = fixed(64, RWM | RegionFlag.CAPS, 0, 32, 128n << 10n, 32);
    header(v, 32, 1, 1, 0);
    v.setUint32(40, 1, true);
    v.setBigUint64(48, 0n, true);
    v.setBigUint64(56, 0x1f000n, true);
    assert.deepEqual(bridge.regionInfo(0, 64).bytes, bytesOf(v));
    assert.equal(bridge.regionInfo(2, 64).chain.length, 0);
  });

  it('BAR1 has no caps: argsz and cap_offset come back as sent', () => {
    assert.deepEqual(gpu.regionInfo(1, 48, 7).bytes, bytesOf(fixed(48, RWM, 1, 7, 16n << 30n)));
  });

  it('CONFIG is READ|WRITE, 4096 bytes on the GPU and 256 on the bridge', () => {
    assert.deepEqual(gpu.regionInfo(7, 32).bytes, bytesOf(fixed(32, 3, 7, 0, 4096n)));
    assert.equal(bridge.regionInfo(7, 32).info.size, 256n);
  });

  it('ROM and unimplemented BARs are size 0, flags 0', () => {
    for (const index of [2, 4, 5, 6]) {
      assert.deepEqual(gpu.regionInfo(index, 32).bytes, bytesOf(fixed(32, 0, index, 0, 0n)));
    }
  });

  it('VGA on a non-VGA device, an index past the regions, and argsz < 32 are EINVAL', () => {
    for (const [index, argsz] of [
      [8, 32],
      [10, 32],
      [0, 31],
    ] as const) {
      assert.throws(
        () => gpu.regionInfo(index, argsz),
        (e: unknown) => e instanceof VfioError && e.code === 'EINVAL',
      );
    }
  });
});
