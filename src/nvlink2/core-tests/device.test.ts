/**
 * The device's lifecycle as vfio_pci_open / vfio_pci_enable / vfio_pci_release: vendor hooks
 * (ENODEV → plain device, other errno → open fails with "Failed to setup <name> region"),
 * device-specific regions released at close, device info, region read/write bounds
 * (vfio_pci_rdwr.c), mmap grants, the KVM-set notifier, and state surviving a close.
 */
import assert from 'node:assert/strict';
import { readSync, writeSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import {
  buildFakeHost,
  fakeFunction,
  fakeVariant,
} from '../../../test/support/nvlink2/fake-host.ts';
import type { VariantDevice, VariantHook } from '../../vfio/index.ts';
import {
  PCI_VENDOR_TYPE,
  RegionFlag,
  type RegionOps,
  VariantHookRegistry,
  VfioError,
  VfioPciDevice,
} from '../../vfio/index.ts';

const host = buildFakeHost();
const devices: VfioPciDevice[] = [];
after(() => {
  for (const d of devices) d.dispose();
});

function device(
  id: number,
  hooks: Iterable<VariantHook> | VariantHookRegistry = [],
): VfioPciDevice {
  const list = hooks instanceof VariantHookRegistry ? hooks.all() : [...hooks];
  const d = new VfioPciDevice(fakeFunction(host, id), host, fakeVariant(host, list));
  devices.push(d);
  return d;
}

function failing(vendor: number, name: string, code: 'ENODEV' | 'EFAULT' | 'EINVAL'): VariantHook {
  return {
    vendor,
    name,
    init: () => {
      throw new VfioError(code, 'No ibm,device-tgt-addr found');
    },
  };
}

/** A hook registering one region whose ops record releases. */
function registering(
  vendor: number,
  log: string[],
  onInit?: (d: VariantDevice) => void,
): VariantHook {
  return {
    vendor,
    name: 'test',
    init: (d) => {
      const ops: RegionOps = { rw: (_o, b) => b.length, release: () => log.push('release') };
      d.registerDeviceRegion(
        PCI_VENDOR_TYPE | vendor,
        1,
        0x10000n,
        RegionFlag.READ | RegionFlag.WRITE,
        () => ops,
      );
      onInit?.(d);
    },
  };
}

describe('variant hooks at open', () => {
  it('ENODEV leaves a plain vfio-pci device (9 regions)', () => {
    const d = device(0x15f9, [failing(0x10de, 'NVIDIA NV2 RAM', 'ENODEV')]);
    d.open();
    assert.deepEqual(d.info(), { argsz: 16, flags: 0x3, numRegions: 9, numIrqs: 5 });
  });

  it('EFAULT fails the open with the errno and "Failed to setup … region"', () => {
    const d = device(0x04ea, [failing(0x1014, 'NVIDIA NV2 ATSD', 'EFAULT')]);
    assert.throws(
      () => d.open(),
      (e: unknown) =>
        e instanceof VfioError &&
        e.errno === 14 &&
        e.message ===
          'EFAULT: Failed to setup NVIDIA NV2 ATSD region: No ibm,device-tgt-addr found',
    );
    assert.equal(d.isOpen, false);
  });

  it('a failing hook releases the regions earlier hooks registered', () => {
    const log: string[] = [];
    const d = device(0x1db1, [registering(0x10de, log), failing(0x10de, 'second', 'EINVAL')]);
    assert.throws(() => d.open(), /EINVAL: Failed to setup second region/);
    assert.deepEqual(log, ['release']);
  });

  it('hooks run only for their vendor, and only on the first open', () => {
    const log: string[] = [];
    const registry = new VariantHookRegistry()
      .register(registering(0x10de, log))
      .register(registering(0x1014, log));
    assert.equal(registry.forVendor(0x10de).length, 1);
    const d = device(0x1db1, registry);
    d.open();
    d.open();
    assert.equal(d.info().numRegions, 10);
    assert.equal(d.regions[0]?.index, 9);
    d.close();
    assert.deepEqual(log, []);
    d.close();
    assert.deepEqual(log, ['release']);
    assert.equal(d.info().numRegions, 9);
    assert.throws(() => d.close(), /EBADF/);
  });
});

describe('regions', () => {
  it('BAR reads clip at the end; an offset at the end is EINVAL', () => {
    const d = device(0x1db1);
    d.open();
    const end = 32n << 20n;
    assert.equal(d.read(3, end - 2n, 8).length, 2);
    assert.throws(() => d.read(3, end, 1), /EINVAL: .*BAR3 offset 0x2000000 is past its end/);
    assert.throws(() => d.read(2, 0, 4), /EINVAL/);
    assert.throws(() => d.write(6, 0, Uint8Array.of(1)), /EINVAL/);
    assert.throws(() => d.read(9, 0, 1), /EINVAL: 0000:00:00.0 has no region 9/);
  });

  it('GPU BAR0 reads NV_PMC_BOOT_0; untouched MMIO reads zero; writes read back', () => {
    const d = device(0x1db5);
    d.open();
    assert.deepEqual(d.read(0, 0, 4), Uint8Array.of(0xa1, 0x00, 0x00, 0x14));
    assert.deepEqual(d.read(1, 30n << 30n, 4), new Uint8Array(4));
    d.write(1, 30n << 30n, Uint8Array.of(9, 8, 7));
    assert.deepEqual(d.read(1, 30n << 30n, 3), Uint8Array.of(9, 8, 7));
  });

  it('NV_PMC_BOOT_0 is read-only: a write leaves it, other bytes of the write land', () => {
    const d = device(0x1db1);
    d.open();
    assert.equal(d.write(0, 0, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)), 8);
    assert.deepEqual(d.read(0, 0, 8), Uint8Array.of(0xa1, 0, 0, 0x14, 5, 6, 7, 8));
    // Across the register page's end: both sides take their bytes.
    d.write(0, 0xffe, Uint8Array.of(1, 2, 3, 4));
    assert.deepEqual(d.read(0, 0xffe, 4), Uint8Array.of(1, 2, 3, 4));
    assert.deepEqual(d.readView(0, 0xffen, 4), Uint8Array.of(1, 2, 3, 4));
  });

  it('register pages are not the memfd a VMM maps: writes there reach no register', () => {
    const d = device(0x1db1);
    d.open();
    const grant = d.mmap(0, { offset: 0n, length: 16n << 20n, userAddress: 0n });
    writeSync(grant.fd, Uint8Array.of(0xef, 0xbe, 0xad, 0xde), 0, 4, Number(grant.fdOffset));
    writeSync(grant.fd, Uint8Array.of(0xaa), 0, 1, Number(grant.fdOffset) + 0x1000);
    assert.deepEqual(d.read(0, 0, 4), Uint8Array.of(0xa1, 0x00, 0x00, 0x14));
    assert.deepEqual(d.read(0, 0x1000, 1), Uint8Array.of(0xaa), 'the next page is memory');
    const got = Buffer.alloc(4);
    d.write(0, 0xfff010, Uint8Array.of(1, 2, 3, 4));
    readSync(grant.fd, got, 0, 4, Number(grant.fdOffset) + 0xfff010);
    assert.deepEqual([...got], [0, 0, 0, 0], 'the DMA engine register is not in the memfd');
  });

  it('an mmap grant is a descriptor that sees region writes', () => {
    const d = device(0x1db1);
    d.open();
    d.write(3, 0x2000, Uint8Array.of(0xde, 0xad));
    const grant = d.mmap(3, { offset: 0x2000n, length: 0x1000n, userAddress: 0n });
    const got = Buffer.alloc(2);
    readSync(grant.fd, got, 0, 2, Number(grant.fdOffset));
    assert.deepEqual([...got], [0xde, 0xad]);
    assert.throws(() => d.mmap(3, { offset: 0n, length: 64n << 20n, userAddress: 0n }), /EINVAL/);
    assert.throws(() => d.mmap(7, { offset: 0n, length: 4096n, userAddress: 0n }), /EINVAL/);
  });

  it('the MSI-X table reads 0xff and ignores writes through the region; a mapping sees it masked', () => {
    const d = device(0x1db1);
    d.open();
    const table = 0xb90000;
    d.write(0, table - 2, Uint8Array.of(1, 2, 3, 4));
    assert.deepEqual(d.read(0, table - 2, 4), Uint8Array.of(1, 2, 0xff, 0xff));
    assert.deepEqual(d.read(0, table + 6 * 16, 1), Uint8Array.of(0), 'after the 6-entry table');
    const grant = d.mmap(0, { offset: 0n, length: 16n << 20n, userAddress: 0n });
    const ctrl = Buffer.alloc(4);
    readSync(grant.fd, ctrl, 0, 4, Number(grant.fdOffset) + table + 12);
    assert.equal(ctrl.readUInt32LE(0), 1, 'vector 0 masked at reset');
  });

  it('readView equals read on BARs: presets, the MSI-X padding, zeros, clipping, config space', () => {
    const d = device(0x1db1);
    d.open();
    const table = 0xb90000;
    d.write(0, table - 2, Uint8Array.of(1, 2, 3, 4));
    d.write(0, 0x1000, Uint8Array.of(5, 6, 7, 8));
    for (const [index, offset, count] of [
      [0, 0n, 4],
      [0, 0n, 8],
      [0, BigInt(table - 2), 4],
      [0, 0x1000n, 4],
      [0, 0xffcn, 8],
      [0, 0x200000n, 16],
      [0, (16n << 20n) - 2n, 8],
      [1, 15n << 30n, 4],
      [7, 0n, 4],
    ] as const) {
      assert.deepEqual(d.readView(index, offset, count), d.read(index, offset, count));
    }
    const view = d.readView(0, 0x1000n, 4);
    d.write(0, 0x1000, Uint8Array.of(1, 1, 1, 1));
    assert.deepEqual(view, Uint8Array.of(1, 1, 1, 1), 'a view of the BAR memory itself');
    assert.throws(() => d.readView(0, 16n << 20n, 1), /EINVAL/);
  });

  it('config space and BAR memory survive close and reopen', () => {
    const d = device(0x1db1);
    d.open();
    d.write(7, 0x04, Uint8Array.of(0x06, 0x00));
    d.write(0, 0x40, Uint8Array.of(0x55));
    d.close();
    d.open();
    assert.deepEqual(d.read(7, 0x04, 2), Uint8Array.of(0x06, 0x00));
    assert.deepEqual(d.read(0, 0x40, 1), Uint8Array.of(0x55));
  });

  it('the VGA region exists only for a VGA-class function', () => {
    const vgaHost = buildFakeHost([
      { devfn: 0, vendor: 0x10de, device: 0x1234, classCode: 0x030000 },
    ]);
    const fn = vgaHost.functions[0];
    assert.ok(fn);
    const vga = new VfioPciDevice(fn, vgaHost);
    devices.push(vga);
    vga.open();
    assert.equal(vga.regionInfo(8, 32).info.size, 0xc0000n);
  });
});

describe('KVM set notifier', () => {
  it('fires on attach, and at once for a listener registered after attach', () => {
    const seen: number[] = [];
    const d = device(0x1db1, [
      registering(0x10de, [], (v) => v.onKvmSet((lpid) => seen.push(lpid))),
    ]);
    d.open();
    d.attachKvm(7);
    assert.deepEqual(seen, [7]);
    d.onKvmSet((lpid) => seen.push(lpid + 100));
    assert.deepEqual(seen, [7, 107]);
    d.detachKvm();
    assert.equal(d.kvm, undefined);
  });

  it('a listener failure is reported after all listeners ran; the LPID stays set', () => {
    const seen: number[] = [];
    const d = device(0x1db1);
    d.open();
    d.onKvmSet(() => {
      throw new VfioError('EBUSY', 'BDF-to-LPID table full');
    });
    d.onKvmSet((lpid) => seen.push(lpid));
    assert.throws(
      () => d.attachKvm(3),
      /EBUSY: KVM set for 0000:00:00.0 \(LPID 3\): BDF-to-LPID table full/,
    );
    assert.deepEqual(seen, [3]);
    assert.equal(d.kvm, 3);
  });

  it('listeners registered during an open are dropped at close; the LPID is not', () => {
    const seen: number[] = [];
    const d = device(0x1db1);
    d.open();
    d.onKvmSet((lpid) => seen.push(lpid));
    d.close();
    d.attachKvm(4);
    assert.deepEqual(seen, []);
    d.open();
    assert.equal(d.kvm, 4);
  });
});
