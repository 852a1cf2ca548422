/**
 * Config space as vfio_pci_config.c presents it: BAR sizing (write all-ones, read the size
 * mask with the type bits, vfio_bar_fixup), read-only ids, command write mask, RW1C status,
 * read-only unowned bytes, extended space, bounds (-EFAULT), reset, capability chains.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import {
  buildFakeHost,
  fakeFunction,
  fakeVariant,
} from '../../../test/support/nvlink2/fake-host.ts';
import { VfioError, VfioPciDevice } from '../../vfio/index.ts';

const host = buildFakeHost();
const devices: VfioPciDevice[] = [];
function device(id: number): VfioPciDevice {
  const d = new VfioPciDevice(fakeFunction(host, id), host, fakeVariant(host));
  d.open();
  devices.push(d);
  return d;
}
after(() => {
  for (const d of devices) d.dispose();
});

const CONFIG = 7;
function u32(d: VfioPciDevice, at: number): number {
  return new DataView(d.read(CONFIG, at, 4).buffer).getUint32(0, true);
}
function u16(d: VfioPciDevice, at: number): number {
  return new DataView(d.read(CONFIG, at, 2).buffer).getUint16(0, true);
}
function w32(d: VfioPciDevice, at: number, value: number): void {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, value >>> 0, true);
  d.write(CONFIG, at, b);
}
function w16(d: VfioPciDevice, at: number, value: number): void {
  d.write(CONFIG, at, Uint8Array.of(value & 0xff, value >>> 8));
}

/** Size BAR `index` the way a guest does: all-ones, read back, restore. */
function sizeBar(d: VfioPciDevice, index: number): { lo: number; hi: number } {
  const at = 0x10 + 4 * index;
  w32(d, at, 0xffffffff);
  w32(d, at + 4, 0xffffffff);
  return { lo: u32(d, at), hi: u32(d, at + 4) };
}

describe('BAR sizing', () => {
  const cases = [
    {
      id: 0x1db1,
      bars: [
        [0, 0xff000000, 0x0],
        [1, 0x0000000c, 0xfffffffc],
        [3, 0xfe00000c, 0xffffffff],
      ],
    },
    {
      id: 0x1db5,
      bars: [
        [0, 0xff000000, 0x0],
        [1, 0x0000000c, 0xfffffff8],
        [3, 0xfe00000c, 0xffffffff],
      ],
    },
    {
      id: 0x04ea,
      bars: [
        [0, 0xfffe0004, 0xffffffff],
        [2, 0xffff0004, 0xffffffff],
      ],
    },
  ] as const;
  for (const c of cases) {
    it(`${c.id.toString(16)}: all-ones reads back the size mask with type bits`, () => {
      const d = device(c.id);
      for (const [index, lo, hi] of c.bars) {
        const got = sizeBar(d, index);
        assert.equal(got.lo >>> 0, lo >>> 0, `BAR${index} low`);
        if (index === 0 && c.id !== 0x04ea)
          assert.equal(u32(d, 0x14) & 0xf, 0xc, 'BAR1 type after sizing BAR0');
        else assert.equal(got.hi >>> 0, hi >>> 0, `BAR${index} high`);
      }
      const size = (index: number): bigint => {
        const lo = BigInt(u32(d, 0x10 + 4 * index) & ~0xf) & 0xffffffffn;
        const hi = BigInt(u32(d, 0x14 + 4 * index));
        const mask = (hi << 32n) | lo;
        return (~mask + 1n) & 0xffffffffffffffffn || 1n << 64n;
      };
      for (const bar of d.config.bars) {
        if (bar.kind === 'mem64') assert.equal(size(bar.index), bar.size, `BAR${bar.index} size`);
      }
    });
  }

  it('V100 16GB sizes: BAR0 16 MiB 32-bit, BAR1 16 GiB, BAR3 32 MiB prefetchable 64-bit', () => {
    const d = device(0x1db1);
    assert.deepEqual(
      d.config.bars.map((b) => [b.index, b.size, b.kind, b.prefetchable]),
      [
        [0, 16n << 20n, 'mem32', false],
        [1, 16n << 30n, 'mem64', true],
        [3, 32n << 20n, 'mem64', true],
      ],
    );
    for (const b of d.config.bars) assert.equal(b.size & (b.size - 1n), 0n);
  });

  it('an address written is kept, masked to the BAR size', () => {
    const d = device(0x1db1);
    w32(d, 0x10, 0x12345678);
    assert.equal(u32(d, 0x10), 0x12000000);
    w32(d, 0x18, 0x87654321);
    assert.equal(u32(d, 0x18), 0x87654320, 'BAR1 upper half keeps bits above 16 GiB');
    assert.equal(u32(d, 0x14) & 0xf, 0xc);
  });

  it('unimplemented BARs and the ROM BAR read 0 after all-ones', () => {
    const d = device(0x1db1);
    for (const at of [0x24, 0x30]) {
      w32(d, at, 0xffffffff);
      assert.equal(u32(d, at), 0, `0x${at.toString(16)}`);
    }
  });
});

describe('header permissions', () => {
  it('ids, class, subsystem are read-only', () => {
    const d = device(0x1db1);
    for (const at of [0x00, 0x08, 0x2c]) {
      const before = u32(d, at);
      w32(d, at, ~before);
      assert.equal(u32(d, at), before, `0x${at.toString(16)}`);
    }
    assert.equal(u32(d, 0), 0x1db110de);
    assert.equal(u32(d, 8), 0x030200a1);
    assert.equal(u32(d, 0x2c), 0x121210de);
  });

  it('command register keeps only the implemented bits', () => {
    const d = device(0x1db1);
    w16(d, 0x04, 0xffff);
    assert.equal(u16(d, 0x04), 0x0547);
    const b = device(0x04ea);
    w16(b, 0x04, 0xffff);
    assert.equal(u16(b, 0x04), 0xfd47, 'skiboot npu2_populate_cfg read-only mask 0x02b8');
  });

  it('status error bits are write-1-to-clear; the capability-list bit stays', () => {
    const d = device(0x1db1);
    d.config.setU16(0x06, 0x0010 | 0x2000 | 0x8000);
    w16(d, 0x06, 0x2000);
    assert.equal(u16(d, 0x06), 0x0010 | 0x8000);
    w16(d, 0x06, 0xffff);
    assert.equal(u16(d, 0x06), 0x0010);
  });

  it('unowned bytes are read-only; extended space reads zero', () => {
    const d = device(0x1db1);
    d.write(CONFIG, 0xf0, Uint8Array.of(0xaa, 0xbb));
    assert.deepEqual(d.read(CONFIG, 0xf0, 2), Uint8Array.of(0, 0));
    assert.equal(u32(d, 0x100), 0);
    assert.equal(d.read(CONFIG, 0, 4096).length, 4096);
  });

  it('accesses past cfg_size are EFAULT', () => {
    const b = device(0x04ea);
    for (const [at, n] of [
      [0x100, 1],
      [0xfe, 4],
    ] as const) {
      assert.throws(
        () => b.read(CONFIG, at, n),
        (e: unknown) => e instanceof VfioError && e.code === 'EFAULT',
      );
    }
  });
});

describe('capability lists', () => {
  it('V100: PM@0x60, MSI@0x68, Express@0x78, vendor@0xb4, MSI-X@0xc8', () => {
    const d = device(0x1db1);
    assert.equal(u16(d, 0x06) & 0x10, 0x10);
    assert.equal(d.read(CONFIG, 0x34, 1)[0], 0x60);
    assert.deepEqual(
      d.config.capabilities().map((c) => [c.id, c.offset]),
      [
        [0x01, 0x60],
        [0x05, 0x68],
        [0x10, 0x78],
        [0x09, 0xb4],
        [0x11, 0xc8],
      ],
    );
    assert.equal(u32(d, 0xc8 + 4), 0x00b90000, 'MSI-X table in BAR0 at 0xb90000');
  });

  it('NPU2 bridge (skiboot npu2_populate_cfg): Express@0x40, vendor@0x80 with the link index', () => {
    const b = device(0x04ea);
    assert.deepEqual(
      b.config.capabilities().map((c) => [c.id, c.offset, c.length]),
      [
        [0x10, 0x40, 0x3c],
        [0x09, 0x80, 0x10],
      ],
    );
    assert.equal(b.read(CONFIG, 0x80 + 2, 1)[0], 0x10, 'vendor cap length');
    assert.equal(b.read(CONFIG, 0x80 + 3, 1)[0], 0x01, 'vendor cap version');
    assert.equal(b.read(CONFIG, 0x80 + 0x0c, 1)[0], 5, 'link index from ibm,nvlink');
    assert.equal(b.read(CONFIG, 0x0e, 1)[0], 0x80, 'header type (multi-function)');
    assert.equal(u32(b, 0x08), 0x06800101);
  });

  it('MSI enable and MSI-X enable/mask are writable; MSI-X table size is not', () => {
    const d = device(0x1db1);
    w16(d, 0x68 + 2, 0xffff);
    assert.equal(u16(d, 0x68 + 2), 0x0080 | 0x0071);
    w16(d, 0xc8 + 2, 0xffff);
    assert.equal(u16(d, 0xc8 + 2), 0xc005);
  });
});

describe('reset', () => {
  it('restores defaults and register pages but keeps BAR sizes and the rest of BAR memory', () => {
    const d = device(0x1db1);
    w16(d, 0x04, 0x0006);
    w32(d, 0x10, 0xff000000);
    d.write(0, 0x100, Uint8Array.of(1, 2, 3, 4)); // NV_PMC_BOOT_0's page
    d.write(0, 0x2000, Uint8Array.of(5, 6, 7, 8));
    d.write(0, 0xfff010, Uint8Array.of(9, 9)); // the DMA engine's ADDRESS
    d.reset();
    assert.equal(u16(d, 0x04), 0);
    assert.equal(u32(d, 0x10), 0);
    assert.equal(sizeBar(d, 0).lo, 0xff000000);
    assert.deepEqual(d.read(0, 0x100, 4), new Uint8Array(4));
    assert.deepEqual(d.read(0, 0xfff010, 2), new Uint8Array(2));
    assert.deepEqual(d.read(0, 0, 4), Uint8Array.of(0xa1, 0x00, 0x00, 0x14));
    assert.deepEqual(d.read(0, 0x2000, 4), Uint8Array.of(5, 6, 7, 8));
  });

  it('a function-level reset through DEVCTL resets config space', () => {
    const d = device(0x1db1);
    w16(d, 0x04, 0x0002);
    w16(d, 0x78 + 8, 0x8000 | 0x2810);
    assert.equal(u16(d, 0x04), 0);
    assert.equal(u16(d, 0x78 + 8), 0x2810);
  });
});
