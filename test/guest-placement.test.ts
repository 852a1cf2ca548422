/**
 * src/guest, pure: classification (pci-quirks.c), grouping by tgt and guest placement
 * (spapr_pci_nvlink2.c, spapr.c spapr_phb_placement), phandles, NUMA associativity and the
 * guest tree, against values computed by hand from the reference (nvlink2.md §3): GPU RAM at
 * 64 TiB = 0x4000_0000_0000 + 2 TiB per vPHB, GPUs 128 GiB = 0x20_0000_0000 apart; ATSD at
 * 128 TiB = 0x8000_0000_0000 + 0x120000 per vPHB, 64 KiB apart.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cells, toDts } from '../src/fdt/index.ts';
import { type BarFacts, classifyDevice, type DeviceFacts } from '../src/guest/device-facts.ts';
import { buildGuestTree, pciNodeName, pciRegCells } from '../src/guest/guest-tree.ts';
import {
  GuestPlacementError,
  phandleGpuRam,
  phandleNvlink,
  phandlePciDev,
  placeGuest,
  type VphbRequest,
} from '../src/guest/placement.ts';

const RAM = 0x20_0000_0000n; // 128 GiB
const ATSD = 0x10000n; // 64 KiB
/** The built-in Witherspoon's tgts, GPU by GPU. */
const TGTS = [
  0x3e000000000n,
  0x3c000000000n,
  0x3a000000000n,
  0xbe000000000n,
  0xbc000000000n,
  0xba000000000n,
];

const MiB = 1n << 20n;
/** BAR0–5 and ROM sizes with their register type bits (0xc = 64-bit prefetchable, 0x4 = 64-bit). */
function bars(...list: [number, bigint, number][]): BarFacts[] {
  return [0, 1, 2, 3, 4, 5, 6].map((index) => {
    const hit = list.find(([i]) => i === index);
    return { index, size: hit?.[1] ?? 0n, type: hit?.[2] ?? 0 };
  });
}
/** A V100 SXM2 16GB (nvlink2.md §2): BAR0 16 MiB 32-bit, BAR1 16 GiB and BAR3 32 MiB 64-bit prefetchable. */
const V100_BARS = bars([0, 16n * MiB, 0x0], [1, 16n << 30n, 0xc], [3, 32n * MiB, 0xc]);
/** skiboot's NPU2 bridge: BAR0 (NTL) 128 KiB and BAR2 (GENID) 64 KiB, both 64-bit. */
const NPU2_BARS = bars([0, 128n << 10n, 0x4], [2, 64n << 10n, 0x4]);

function gpu(address: string, tgt: bigint | null, group: number | null, size = RAM): DeviceFacts {
  return {
    address,
    vendor: 0x10de,
    device: 0x1db1,
    classCode: 0x030200,
    headerType: 0,
    bars: V100_BARS,
    iommuGroup: group,
    regions: [{ index: 9, type: 0x800010de, subtype: 1, size, tgt, linkSpeed: null }],
  };
}

function bridge(
  address: string,
  tgt: bigint | null,
  group: number | null,
  size = ATSD,
  linkSpeed: number | null = 8,
): DeviceFacts {
  return {
    address,
    vendor: 0x1014,
    device: 0x04ea,
    classCode: 0x068000,
    headerType: 0x80,
    bars: NPU2_BARS,
    iommuGroup: group,
    regions: [{ index: 9, type: 0x80001014, subtype: 1, size, tgt, linkSpeed }],
  };
}

/** GPU k with its two bridges, listed GPU first: devfns 3k<<3, (3k+1)<<3, (3k+2)<<3. */
function sixGpus(groups: (k: number) => number | null = (k) => k): DeviceFacts[] {
  return TGTS.flatMap((tgt, k) => [
    gpu(`000${k + 2}:01:00.0`, tgt, groups(k)),
    bridge(`000${k >> 1}:00:0${k % 3}.0`, tgt, groups(k)),
    bridge(`000${k >> 1}:00:0${k % 3}.1`, tgt, groups(k)),
  ]);
}

function onePhb(facts: DeviceFacts[], index = 0): VphbRequest[] {
  return [{ index, devices: facts.map((f) => ({ facts: f })) }];
}

describe('classification (pci-quirks.c)', () => {
  it('a GPU needs the 0x800010de/1 region with SSATGT and a non-zero tgt', () => {
    assert.deepEqual(classifyDevice(gpu('a', 5n, 0)), { role: 'gpu', tgt: 5n, size: RAM });
    assert.equal(classifyDevice(gpu('a', null, 0)).role, 'plain');
    assert.equal(classifyDevice(gpu('a', 0n, 0)).role, 'plain');
    assert.equal(classifyDevice({ ...gpu('a', 5n, 0), regions: [] }).role, 'plain');
  });
  it('a bridge needs SSATGT and LNKSPD; an empty region is not mapped', () => {
    assert.deepEqual(classifyDevice(bridge('b', 5n, 0)), {
      role: 'bridge',
      tgt: 5n,
      size: ATSD,
      linkSpeed: 8,
      mapped: true,
    });
    assert.equal(classifyDevice(bridge('b', 5n, 0, ATSD, null)).role, 'plain');
    assert.equal(classifyDevice(bridge('b', null, 0)).role, 'plain');
    const empty = classifyDevice(bridge('b', 5n, 0, 0n));
    assert.equal(empty.role === 'bridge' && empty.mapped, false);
  });
  it('other vendors stay plain', () => {
    assert.equal(classifyDevice({ ...gpu('c', 5n, 0), vendor: 0x8086 }).role, 'plain');
  });
});

describe('phandles (spapr_pci_nvlink2.c PHANDLE_*)', () => {
  it('PCI device, GPU RAM and link', () => {
    assert.equal(phandlePciDev(0, 0x08), 0x12000008);
    assert.equal(phandlePciDev(3, 0x11), 0x12030011);
    assert.equal(phandleGpuRam(0, 0), 0x110000ff);
    assert.equal(phandleGpuRam(2, 5), 0x110205ff);
    assert.equal(phandleNvlink(0, 0, 0), 0x00130000);
    assert.equal(phandleNvlink(2, 1, 1), 0x00130211);
  });
});

describe('placement of a 6-GPU host on one vPHB', () => {
  const p = placeGuest(onePhb(sixGpus()), { numaNodes: 0 });
  const v = p.vphbs[0]!;
  it('GPU RAM back to back from 64 TiB, NUMA nodes from 1', () => {
    assert.deepEqual(
      v.slots.map((s) => [s.tgt, s.gpu?.gpa, s.gpu?.numaId]),
      TGTS.map((tgt, k) => [tgt, 0x4000_0000_0000n + BigInt(k) * RAM, k + 1]),
    );
  });
  it('ATSD pages 64 KiB apart from 128 TiB, two links per GPU', () => {
    const links = v.slots.flatMap((s) => s.links);
    assert.deepEqual(
      links.map((l) => l.atsdGpa),
      links.map((_, m) => 0x8000_0000_0000n + BigInt(m) * ATSD),
    );
    assert.deepEqual(
      links.map((l) => l.npuLinkIndex),
      [...Array(12).keys()],
    );
  });
  it('devfns by list position, phandles from them', () => {
    const s = v.slots[1]!;
    assert.equal(s.gpu?.devfn, 3 << 3);
    assert.equal(s.gpu?.phandle, 0x12000018);
    assert.equal(s.gpu?.ramPhandle, 0x110001ff);
    assert.deepEqual(
      s.links.map((l) => [l.devfn, l.phandle, l.nvlinkPhandle]),
      [
        [4 << 3, 0x12000020, 0x00130010],
        [5 << 3, 0x12000028, 0x00130011],
      ],
    );
  });
  // QEMU 8.1 spapr_pci_nvlink2.c:277 `for (i = 0; (i < num) && (atsdnum < 8); ++i)`: with two
  // links per GPU the 8th address ends slot 3 and the loop stops before slot 4, so line 289's
  // "Only 8 ATSD registers supported" is never reached; only the IOMMU-group check (303-313) speaks.
  it('six IOMMU groups on one vPHB: QEMU leaves ibm,mmio-atsd out, without the 8-register line', () => {
    assert.equal(v.mmioAtsd, null);
    assert.deepEqual(v.errors, ['ATSD requires separate vPHB per GPU IOMMU group']);
  });
  it('one IOMMU group: the first 8 ATSD addresses (slots 0-3), and no complaint', () => {
    const one = placeGuest(onePhb(sixGpus(() => 0))).vphbs[0]!;
    assert.deepEqual(
      one.mmioAtsd,
      [...Array(8).keys()].map((m) => 0x8000_0000_0000n + BigInt(m) * ATSD),
    );
    assert.deepEqual(one.errors, []);
  });
  it('4 GPUs x 3 links, one group: the 9th link is in slot 2 with the 7th and 8th, so QEMU complains', () => {
    // slot 0: atsd 0-2, slot 1: 3-5, slot 2: 6, 7, then j = 2 meets atsdnum == 8 (line 288):
    // error_report and break; the outer loop (277) then stops.
    const facts = TGTS.slice(0, 4).flatMap((tgt, k) => [
      gpu(`000${k + 2}:01:00.0`, tgt, 0),
      ...[0, 1, 2].map((n) => bridge(`000${k >> 1}:00:0${k % 2}.${n}`, tgt, 0)),
    ]);
    const four = placeGuest(onePhb(facts)).vphbs[0]!;
    assert.deepEqual(
      four.mmioAtsd,
      [...Array(8).keys()].map((m) => 0x8000_0000_0000n + BigInt(m) * ATSD),
    );
    assert.deepEqual(four.errors, ['Only 8 ATSD registers supported']);
  });
  it('guest NUMA nodes move the GPU nodes up', () => {
    const four = placeGuest(onePhb(sixGpus()), { numaNodes: 4 }).vphbs[0]!;
    assert.deepEqual(
      four.slots.map((s) => s.gpu?.numaId),
      [4, 5, 6, 7, 8, 9],
    );
  });
});

describe('one vPHB per GPU IOMMU group', () => {
  const facts = sixGpus();
  const requests: VphbRequest[] = TGTS.map((_, k) => ({
    index: 2 + k,
    devices: facts.slice(3 * k, 3 * k + 3).map((f) => ({ facts: f })),
  }));
  const p = placeGuest(requests, { numaNodes: 1 });
  it('windows at 2 TiB and 0x120000 per index', () => {
    const v = p.vphbs[1]!; // index 3
    assert.equal(v.ramWindow, 0x4600_0000_0000n);
    assert.equal(v.atsdWindow, 0x8000_0036_0000n);
    assert.equal(v.slots[0]?.gpu?.gpa, 0x4600_0000_0000n);
    assert.deepEqual(v.mmioAtsd, [0x8000_0036_0000n, 0x8000_0037_0000n]);
    assert.deepEqual(v.errors, []);
  });
  // NUMA ids come from spapr->gpu_numa_id++ in spapr_pci_collect_nvgpu (QEMU 8.1
  // spapr_pci_nvlink2.c:101-102), run by spapr_phb_reset (spapr_pci.c:2069-2080). The machine
  // reset walks the system bus children from the head (hw/core/bus.c bus_reset_child_foreach)
  // and bus_add_child inserts at the head (hw/core/qdev.c QTAILQ_INSERT_HEAD_RCU): the vPHB
  // created last is reset first. -device index=2 … index=7, created in that order: 7 resets
  // first and takes id 1 (MAX(1, 1 NUMA node)), index 2 takes the last, 6.
  it('NUMA ids in reset order: newest vPHB first', () => {
    assert.deepEqual(
      p.vphbs.map((x) => [x.index, x.slots[0]?.gpu?.numaId]),
      [
        [2, 6],
        [3, 5],
        [4, 4],
        [5, 3],
        [6, 2],
        [7, 1],
      ],
    );
  });
  it('the default PHB (index 0) is created by spapr_machine_init before any -device, so resets last', () => {
    // Listed 3, 0, 1: created 0 (machine init), 3, 1 (command line); reset 1, 3, 0.
    const reqs: VphbRequest[] = [3, 0, 1].map((index, k) => ({
      index,
      devices: facts.slice(3 * k, 3 * k + 3).map((f) => ({ facts: f })),
    }));
    const q = placeGuest(reqs);
    assert.deepEqual(
      q.vphbs.map((x) => [x.index, x.slots[0]?.gpu?.numaId]),
      [
        [3, 2],
        [0, 3],
        [1, 1],
      ],
    );
  });
  it('phandles carry the vPHB index', () => {
    const s = p.vphbs[1]!.slots[0]!;
    assert.equal(s.gpu?.phandle, 0x12030000);
    assert.equal(s.gpu?.ramPhandle, 0x110300ff);
    assert.equal(s.links[1]?.nvlinkPhandle, 0x00130301);
  });
});

describe('QEMU errors', () => {
  it('a second IOMMU group on the vPHB (even a plain device) with ATSD', () => {
    const other: DeviceFacts = { ...gpu('0009:00:00.0', null, 7), vendor: 0x8086 };
    const v = placeGuest(onePhb([...sixGpus(() => 0).slice(0, 3), other])).vphbs[0]!;
    assert.deepEqual(v.errors, ['ATSD requires separate vPHB per GPU IOMMU group']);
    assert.equal(v.mmioAtsd, null);
    assert.equal(v.slots.length, 1);
  });
  it('unknown groups: a GPU and its bridges count as one', () => {
    const v = placeGuest(onePhb(sixGpus(() => null).slice(0, 3))).vphbs[0]!;
    assert.deepEqual(v.errors, []);
    assert.equal(v.mmioAtsd?.length, 2);
  });
  it('no bridges: "No ATSD registers found"', () => {
    const v = placeGuest(onePhb([gpu('0002:01:00.0', 1n, 0)])).vphbs[0]!;
    assert.deepEqual(v.errors, ['No ATSD registers found']);
  });
  it('seven GPUs: "Found too many GPUs per vPHB" drops the whole setup', () => {
    const seven = [...Array(7).keys()].map((k) => gpu(`00${10 + k}:01:00.0`, BigInt(k + 1), 0));
    const v = placeGuest(onePhb(seven)).vphbs[0]!;
    assert.deepEqual(v.errors, ['Found too many GPUs per vPHB']);
    assert.deepEqual(v.slots, []);
  });
  it('four bridges of one GPU: "Found too many NVLink bridges per GPU"', () => {
    const list = [
      gpu('0002:01:00.0', 1n, 0),
      ...[0, 1, 2, 3].map((i) => bridge(`0000:00:0${i}.0`, 1n, 0)),
    ];
    assert.deepEqual(placeGuest(onePhb(list)).vphbs[0]!.errors, [
      'Found too many NVLink bridges per GPU',
    ]);
  });
  it('bad vPHB index and devfn collisions throw', () => {
    assert.throws(() => placeGuest(onePhb([], 31)), GuestPlacementError);
    const f = gpu('0002:01:00.0', 1n, 0);
    assert.throws(
      () =>
        placeGuest([
          {
            index: 0,
            devices: [
              { facts: f, devfn: 8 },
              { facts: f, devfn: 8 },
            ],
          },
        ]),
      /already taken/,
    );
  });
  it('given devfns order the walk: bridges first puts their ATSD pages in that order', () => {
    const [g, b0, b1] = sixGpus(() => 0);
    const v = placeGuest([
      {
        index: 0,
        devices: [
          { facts: g!, devfn: 0x20 },
          { facts: b0!, devfn: 0x11 },
          { facts: b1!, devfn: 0x10 },
        ],
      },
    ]).vphbs[0]!;
    assert.deepEqual(
      v.slots[0]?.links.map((l) => [l.address, l.atsdGpa]),
      [
        [b1!.address, 0x8000_0000_0000n],
        [b0!.address, 0x8000_0001_0000n],
      ],
    );
  });
  it('an empty ATSD region: the link stays, without an ATSD page', () => {
    const v = placeGuest(onePhb([gpu('0002:01:00.0', 1n, 0), bridge('0000:00:00.0', 1n, 0, 0n)]))
      .vphbs[0]!;
    assert.equal(v.slots[0]?.links[0]?.atsdGpa, null);
    assert.deepEqual(v.errors, ['No ATSD registers found']);
    assert.equal(v.notes.length, 1);
  });
});

describe('guest tree fragment', () => {
  const facts = sixGpus(() => 0).slice(0, 3);
  const fdt = buildGuestTree(placeGuest(onePhb(facts, 1), { numaNodes: 2 }));
  const prop = (path: string, name: string) => fdt.findNode(path)?.getProperty(name)?.value;
  it('memory@<gpa>: reg, associativity {4,n,n,n,n}, usable-memory <gpa 0>, phandle', () => {
    const m = '/memory@420000000000';
    assert.deepEqual(prop(m, 'device_type'), cells.string('memory'));
    assert.deepEqual(prop(m, 'reg'), cells.u64(0x4200_0000_0000n, RAM));
    assert.deepEqual(prop(m, 'ibm,associativity'), cells.u32(4, 2, 2, 2, 2));
    assert.deepEqual(prop(m, 'compatible'), cells.string('ibm,coherent-device-memory'));
    assert.deepEqual(prop(m, 'linux,usable-memory'), cells.u64(0x4200_0000_0000n, 0n));
    assert.deepEqual(prop(m, 'phandle'), cells.u32(0x110100ff));
  });
  it('npuphb1 with link@0, link@1', () => {
    assert.deepEqual(prop('/npuphb1', 'compatible'), cells.string('ibm,power9-npu'));
    assert.deepEqual(prop('/npuphb1', '#address-cells'), cells.u32(1));
    assert.deepEqual(prop('/npuphb1', '#size-cells'), cells.u32(0));
    assert.deepEqual(prop('/npuphb1/link@1', 'compatible'), cells.string('ibm,npu-link'));
    assert.deepEqual(prop('/npuphb1/link@1', 'phandle'), cells.u32(0x00130101));
    assert.deepEqual(prop('/npuphb1/link@1', 'ibm,npu-link-index'), cells.u32(1));
  });
  it('the vPHB, the GPU and its bridges', () => {
    const bus = '/pci@800000020000001';
    assert.deepEqual(prop(bus, 'ibm,mmio-atsd'), cells.u64(0x8000_0012_0000n, 0x8000_0013_0000n));
    assert.deepEqual(prop(`${bus}/3d-controller@0`, 'ibm,npu'), cells.u32(0x12010008, 0x12010010));
    assert.deepEqual(prop(`${bus}/3d-controller@0`, 'phandle'), cells.u32(0x12010000));
    const b = `${bus}/unknown-bridge@2`;
    assert.deepEqual(prop(b, 'phandle'), cells.u32(0x12010010));
    assert.deepEqual(prop(b, 'ibm,gpu'), cells.u32(0x12010000));
    assert.deepEqual(prop(b, 'ibm,nvlink'), cells.u32(0x00130101));
    assert.deepEqual(prop(b, 'memory-region'), cells.u32(0x110100ff));
    assert.deepEqual(prop(b, 'ibm,device-tgt-addr'), cells.u64(TGTS[0]!));
    assert.deepEqual(prop(b, 'ibm,nvlink-speed'), cells.u32(8));
  });
  // populate_resource_props (QEMU 8.1 hw/ppc/spapr_pci.c): reg[0] = {dev_id, 0, 0, 0, 0} with
  // dev_id = b_bbbbbbbb(0) | b_ddddd(slot) | b_fff(fn); then per io_region with a size
  // {dev_id | b_rrrrrrrr(pci_bar(d, i)) | b_ss(1 I/O, 3 MEM_TYPE_64, else 2), 0, 0, size >> 32, size}.
  it('reg: config space, then one entry per BAR with its space code and size', () => {
    // GPU at devfn 0: BAR0 0x10 32-bit 16 MiB, BAR1 0x14 64-bit 16 GiB, BAR3 0x1c 64-bit 32 MiB.
    assert.deepEqual(
      prop(`/pci@800000020000001/3d-controller@0`, 'reg'),
      cells.u32(
        ...[0x00000000, 0, 0, 0, 0],
        ...[0x02000010, 0, 0, 0, 0x01000000],
        ...[0x03000014, 0, 0, 0x4, 0],
        ...[0x0300001c, 0, 0, 0, 0x02000000],
      ),
    );
    // Bridge at devfn 0x10 (slot 2): BAR0 0x10 and BAR2 0x18, 64-bit, 128 KiB and 64 KiB.
    assert.deepEqual(
      prop(`/pci@800000020000001/unknown-bridge@2`, 'reg'),
      cells.u32(
        ...[0x00001000, 0, 0, 0, 0],
        ...[0x03001010, 0, 0, 0, 0x20000],
        ...[0x03001018, 0, 0, 0, 0x10000],
      ),
    );
  });
  it('reg: an I/O BAR is space 1; the ROM of a type-1 header is PCI_ROM_ADDRESS1 (0x38), space 2', () => {
    const list = bars([4, 0x100n, 0x1], [6, 0x10000n, 0]);
    assert.deepEqual(pciRegCells(0x19, 0x81, list), [
      ...[0x00001900, 0, 0, 0, 0],
      ...[0x01001920, 0, 0, 0, 0x100],
      ...[0x02001938, 0, 0, 0, 0x10000],
    ]);
    assert.equal(pciRegCells(0x19, 0x80, list)[10], 0x02001930);
  });
  it('node names from the class code, slot and function', () => {
    assert.equal(pciNodeName(0x030200, 0x08), '3d-controller@1');
    assert.equal(pciNodeName(0x068000, 0x19), 'unknown-bridge@3,1');
    assert.equal(pciNodeName(0x030000, 0), 'vga@0');
    assert.match(toDts(fdt), /ibm,mmio-atsd = <0x8000 0x120000 0x8000 0x130000>;/);
  });
});
