/**
 * The nvgrace-gpu variant in process, on generated Grace trees: the memory split of the
 * current driver (6.14+), region info bytes with the sparse-mmap capability, reads past the
 * memory all-ones and writes there dropped (read back through the memfd a client maps), the
 * fake BARs' config-space registers (sizing, bar_val, reset), and every probe errno.
 * Expected bytes are built here by hand, not by the encoders under test.
 */
import assert from 'node:assert/strict';
import { readSync } from 'node:fs';
import { describe, it } from 'node:test';
import { cells } from '../fdt/index.ts';
import {
  buildHost,
  C2C_LINK_STATUS_PROP,
  type GraceOptions,
  generateGrace,
} from '../platform/index.ts';
import { VfioError, VfioPciDevice, variantFor } from '../vfio/index.ts';
import { initMemoryLayout, NvgraceContext, nvgraceVariant, runNvgraceDoctor } from './index.ts';

const GiB = 1n << 30n;
const MiB = 1n << 20n;

function open(options: Partial<GraceOptions> = {}) {
  const host = buildHost(generateGrace(options));
  const ctx = new NvgraceContext();
  const fn = host.functions.find((f) => f.role === 'gpu');
  assert.ok(fn);
  const device = new VfioPciDevice(fn, host, variantFor([nvgraceVariant(ctx)], fn));
  return {
    device,
    ctx,
    [Symbol.dispose]() {
      device.dispose();
      ctx.closeAll();
    },
  };
}

function u32le(bytes: Uint8Array, at = 0): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(at, true);
}

function errno(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof VfioError) return err.code;
    throw err;
  }
  return 'no error';
}

describe('memory split (nvgrace_gpu_init_nvdev_struct, 6.14+)', () => {
  it('Grace Hopper 96 GiB: usemem 95 GiB in a 128 GiB BAR, resmem 1 GiB in a 1 GiB BAR', () => {
    const l = initMemoryLayout(0x4000_0000_0000n, 96n * GiB, true);
    assert.deepEqual(l.usemem, {
      memphys: 0x4000_0000_0000n,
      memlength: 95n * GiB,
      barSize: 128n * GiB,
    });
    assert.deepEqual(l.resmem, {
      memphys: 0x4000_0000_0000n + 95n * GiB,
      memlength: GiB,
      barSize: GiB,
    });
  });

  it('the usemem BAR is rounded up before the 512 MiB round-down, resmem takes the rest', () => {
    // 2 GiB + 256 MiB: less 1 GiB is 1.25 GiB → BAR 2 GiB; usemem 1 GiB; resmem 1.25 GiB → BAR 2 GiB
    const l = initMemoryLayout(0n, 2n * GiB + 256n * MiB, true);
    assert.equal(l.usemem.memlength, GiB);
    assert.equal(l.usemem.barSize, 2n * GiB);
    assert.equal(l.resmem?.memlength, GiB + 256n * MiB);
    assert.equal(l.resmem?.barSize, 2n * GiB);
    // 6.9–6.13 would have rounded usemem (1.25 GiB → 1 GiB) before sizing its BAR: 1 GiB
  });

  it('Grace Blackwell (no MIG bug): all of it is usemem, no resmem', () => {
    const l = initMemoryLayout(0n, 186n * GiB, false);
    assert.deepEqual(l.usemem, { memphys: 0n, memlength: 186n * GiB, barSize: 256n * GiB });
    assert.equal(l.resmem, undefined);
  });

  it('fails as the driver does: under 1 GiB EOVERFLOW, under 1.5 GiB EINVAL, past 2^64 EOVERFLOW', () => {
    assert.equal(
      errno(() => initMemoryLayout(0n, GiB - 1n, true)),
      'EOVERFLOW',
    );
    assert.equal(
      errno(() => initMemoryLayout(0n, GiB + 511n * MiB, true)),
      'EINVAL',
    );
    assert.equal(
      errno(() => initMemoryLayout((1n << 64n) - GiB, 2n * GiB, true)),
      'EOVERFLOW',
    );
    assert.equal(
      errno(() => initMemoryLayout(0n, GiB + 512n * MiB, true)),
      'no error',
    );
  });
});

describe('fake BARs as regions', () => {
  it('region info of BAR4 (usemem) and BAR2 (resmem): size, flags, sparse-mmap area, byte for byte', () => {
    using g = open({ gpuMem: 2n * GiB + 256n * MiB });
    g.device.open();
    const expected = (index: number, size: bigint, area: bigint) => {
      const b = new Uint8Array(32 + 32);
      const v = new DataView(b.buffer);
      v.setUint32(0, 64, true); // argsz
      v.setUint32(4, 0x1 | 0x2 | 0x4 | 0x8, true); // READ|WRITE|MMAP|CAPS
      v.setUint32(8, index, true);
      v.setUint32(12, 32, true); // cap_offset
      v.setBigUint64(16, size, true);
      v.setBigUint64(24, BigInt(index) << 40n, true);
      v.setUint16(32, 1, true); // VFIO_REGION_INFO_CAP_SPARSE_MMAP
      v.setUint16(34, 1, true); // version
      v.setUint32(36, 0, true); // next
      v.setUint32(40, 1, true); // nr_areas
      v.setBigUint64(48, 0n, true); // areas[0].offset
      v.setBigUint64(56, area, true); // areas[0].size
      return b;
    };
    assert.deepEqual(g.device.regionInfo(4, 64).bytes, expected(4, 2n * GiB, GiB));
    assert.deepEqual(g.device.regionInfo(2, 64).bytes, expected(2, 2n * GiB, GiB + 256n * MiB));
  });

  it('reads past the memory are all-ones, writes there dropped, the count clipped at the BAR', () => {
    using g = open({ machine: 'grace-blackwell', gpuMem: 3n * MiB });
    g.device.open();
    // usemem 3 MiB in a 4 MiB BAR: write 8 bytes straddling the end of memory
    const end = 3n * MiB;
    assert.equal(g.device.write(4, end - 4n, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)), 8);
    assert.deepEqual(
      g.device.read(4, end - 4n, 8),
      Uint8Array.of(1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff),
    );
    // the count is clipped at the BAR's end; at or past it EINVAL
    assert.equal(g.device.read(4, 4n * MiB - 2n, 16).length, 2);
    assert.equal(
      errno(() => g.device.read(4, 4n * MiB, 1)),
      'EINVAL',
    );
    // the second path: the memfd a client maps holds the bytes written, and nothing past 3 MiB
    const grant = g.device.mmap(4, { offset: 0n, length: 3n * MiB, userAddress: 0n });
    const seen = Buffer.alloc(4);
    readSync(grant.fd, seen, 0, 4, Number(end - 4n));
    assert.deepEqual([...seen], [1, 2, 3, 4]);
    assert.equal(
      errno(() => g.device.mmap(4, { offset: 0n, length: end + 4096n, userAddress: 0n })),
      'EINVAL',
    );
  });

  it('resmem follows usemem in the same device memory', () => {
    using g = open({ gpuMem: 2n * GiB });
    g.device.open();
    g.device.write(2, 0n, Uint8Array.of(0xaa, 0xbb));
    const grant = g.device.mmap(4, { offset: 0n, length: GiB, userAddress: 0n });
    const seen = Buffer.alloc(2);
    readSync(grant.fd, seen, 0, 2, Number(GiB)); // resmem starts right after usemem's 1 GiB
    assert.deepEqual([...seen], [0xaa, 0xbb]);
  });
});

describe('fake BARs in config space', () => {
  const cfg = 7;
  it('BAR4/5 size by all-ones, BAR2/3 the same for resmem, bar_val kept and cleared by reset', () => {
    using g = open({ gpuMem: 96n * GiB });
    g.device.open();
    assert.equal(u32le(g.device.read(cfg, 0x20, 4)), 0x0000000c); // 64-bit | prefetch
    g.device.write(cfg, 0x20, Uint8Array.of(0xff, 0xff, 0xff, 0xff));
    g.device.write(cfg, 0x24, Uint8Array.of(0xff, 0xff, 0xff, 0xff));
    // 128 GiB: low dword 0x0000000c (mask 0, flags), high dword ~(128 GiB − 1) >> 32 = 0xffffffe0
    assert.deepEqual(
      g.device.read(cfg, 0x20, 8),
      Uint8Array.of(0x0c, 0, 0, 0, 0xe0, 0xff, 0xff, 0xff),
    );
    // resmem: 1 GiB BAR → low dword 0xc000000c
    assert.equal(g.device.write(cfg, 0x18, new Uint8Array(8).fill(0xff)), 8);
    assert.equal(u32le(g.device.read(cfg, 0x18, 4)), 0xc000000c);
    // a guest address programmed and read back
    g.device.write(cfg, 0x20, Uint8Array.of(0x0c, 0, 0, 0));
    g.device.write(cfg, 0x24, Uint8Array.of(0x00, 0x00, 0x00, 0x20));
    assert.deepEqual(g.device.read(cfg, 0x20, 8), Uint8Array.of(0x0c, 0, 0, 0, 0, 0, 0, 0x20));
    g.device.reset();
    assert.deepEqual(g.device.read(cfg, 0x18, 8), Uint8Array.of(0x0c, 0, 0, 0, 0, 0, 0, 0));
    assert.deepEqual(g.device.read(cfg, 0x20, 8), Uint8Array.of(0x0c, 0, 0, 0, 0, 0, 0, 0));
  });

  it('a write reaching a pair ends there (short count); a read of both pairs patches BAR2/3 only', () => {
    using g = open({ gpuMem: 96n * GiB });
    g.device.open();
    // 16 bytes at 0x10: the intersection with BAR2/3 (8 bytes at buffer offset 8) is all it takes
    assert.equal(g.device.write(cfg, 0x10, new Uint8Array(16).fill(0xff)), 8);
    // BAR0/1 untouched: its type bits (64-bit) and no address
    assert.deepEqual(g.device.read(cfg, 0x10, 8), Uint8Array.of(0x04, 0, 0, 0, 0, 0, 0, 0));
    const both = g.device.read(cfg, 0x18, 16);
    assert.equal(u32le(both, 0), 0xc000000c); // BAR2 patched
    assert.equal(u32le(both, 8), 0); // BAR4 left to the core, as the driver's else-if does
  });

  it('Grace Blackwell: BAR2/3 is the physical BAR1, sized by the core', () => {
    using g = open({ machine: 'grace-blackwell', gpuMem: 186n * GiB });
    g.device.open();
    g.device.write(cfg, 0x18, new Uint8Array(8).fill(0xff));
    assert.deepEqual(
      g.device.read(cfg, 0x18, 8),
      Uint8Array.of(0x0c, 0, 0, 0xf0, 0xff, 0xff, 0xff, 0xff),
    );
    const info = g.device.regionInfo(2, 32).info;
    assert.equal(info.size, 256n * MiB);
    assert.equal(g.device.regionInfo(4, 32).info.size, 256n * GiB);
  });
});

describe('probe errnos (nvgrace_gpu_probe)', () => {
  const cases: [string, Partial<GraceOptions>, string, string][] = [
    ['C2C link down', { c2cLinkDown: true }, 'error', 'ETIME'],
    ['HBM not trained', { hbmUntrained: true }, 'error', 'ETIME'],
    ['size 0: C2C link down', { gpuMem: 0n }, 'plain', 'ENOMEM'],
    [
      'no nvidia,gpu-mem-size',
      { omit: [{ property: 'nvidia,gpu-mem-size', target: 'GPU0' }] },
      'plain',
      'EINVAL',
    ],
    [
      'no nvidia,gpu-mem-base-pa',
      { omit: [{ property: 'nvidia,gpu-mem-base-pa', target: '*' }] },
      'plain',
      'EINVAL',
    ],
    ['a 32-bit property', { gpuMemCells: 1 }, 'plain', 'EOVERFLOW'],
    ['under 1 GiB with the MIG bug', { gpuMem: 512n * MiB }, 'error', 'EOVERFLOW'],
    ['1 GiB with the MIG bug', { gpuMem: GiB }, 'error', 'EINVAL'],
    ['resmem past 2^64', { gpuMem: 2n * GiB, gpuMemBase: (1n << 64n) - GiB }, 'error', 'EOVERFLOW'],
  ];
  for (const [what, options, result, code] of cases) {
    it(`${what}: ${result} ${code}`, () => {
      const [entry] = runNvgraceDoctor(buildHost(generateGrace(options)));
      assert.equal(entry?.result, result);
      assert.equal(entry?.errno, code);
      using g = open(options);
      if (result === 'error')
        assert.equal(
          errno(() => g.device.open()),
          code,
        );
      else {
        g.device.open();
        assert.equal(g.device.regionInfo(4, 32).info.size, 0n); // plain vfio-pci: no BAR4
      }
    });
  }

  it('a 512 MiB Grace Blackwell part is fine (no carve-out); the MIG DVSEC can say otherwise', () => {
    assert.equal(
      runNvgraceDoctor(
        buildHost(generateGrace({ machine: 'grace-blackwell', gpuMem: 512n * MiB })),
      )[0]?.result,
      'nvgrace',
    );
    const e = runNvgraceDoctor(
      buildHost(generateGrace({ machine: 'grace-blackwell', gpuMem: 512n * MiB, migDvsec: 'bug' })),
    )[0];
    assert.equal(e?.errno, 'EOVERFLOW');
  });

  it('a malformed hardware-state property fails the probe (EINVAL, naming it), never the process', () => {
    const fdt = generateGrace();
    const gpu = [...fdt.root.walk()].find((n) => n.hasProperty('nvidia,gpu-mem-size'));
    assert.ok(gpu);
    gpu.setProperty(C2C_LINK_STATUS_PROP, cells.bytes(0xff, 0xff));
    const [entry] = runNvgraceDoctor(buildHost(fdt));
    assert.equal(entry?.errno, 'EINVAL');
    assert.match(entry?.reason ?? '', /vfio-nvlink2,c2c-link-status: value is 2 bytes, expected/);
  });
});
