import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dtc } from '../../test/support/fdt/dtc.ts';
import { cells, Fdt, type FdtNode, parseFdt } from '../fdt/index.ts';
import { atsdAddresses, buildHost, HostError, nvlinkOfBridge } from './host.ts';
import { generateWitherspoon } from './witherspoon/index.ts';

test('generated 6-GPU host: PHBs, domains by position, roles and names', () => {
  const host = buildHost(generateWitherspoon());
  assert.equal(host.phbs.length, 8);
  assert.deepEqual(
    host.phbs.map((p) => [p.domain, p.isNpu, p.chipId]),
    [
      [0, true, 0],
      [1, true, 8],
      [2, false, 0],
      [3, false, 0],
      [4, false, 0],
      [5, false, 8],
      [6, false, 8],
      [7, false, 8],
    ],
  );
  assert.equal(host.functions.filter((f) => f.role === 'bridge').length, 12);
  assert.equal(host.functions.filter((f) => f.role === 'gpu').length, 6);
  assert.equal(host.functions.filter((f) => f.role === 'other').length, 6);
  const names = host.functions.map((f) => f.name);
  assert.deepEqual(names, [...names].sort());
  const gpu = host.functionByName('0002:01:00.0')!;
  assert.deepEqual(gpu.address, { domain: 2, bus: 1, device: 0, fn: 0 });
  assert.equal(gpu.vendor, 0x10de);
  assert.equal(gpu.device, 0x1db1);
  assert.equal(gpu.classCode, 0x030200);
  assert.equal(gpu.subsystemVendor, 0x10de);
  assert.equal(host.functionByName('0001:00:01.1')!.devfn, 9);
  assert.equal(host.phbs[0]!.functions.length, 6);
});

test('GPU ↔ bridge lookups both ways (pnv_pci_get_npu_dev / pnv_pci_get_gpu_dev)', () => {
  for (const gpus of [4, 6] as const) {
    const host = buildHost(generateWitherspoon({ gpus }));
    const perGpu = gpus === 6 ? 2 : 3;
    for (const gpu of host.functions.filter((f) => f.role === 'gpu')) {
      const bridges = Array.from({ length: perGpu }, (_, i) => host.npuBridgeOfGpu(gpu, i)!);
      assert.ok(bridges.every((b) => b.role === 'bridge'));
      assert.deepEqual(
        bridges.map((b) => b.devfn & 7),
        Array.from({ length: perGpu }, (_, i) => i),
      );
      assert.equal(host.npuBridgeOfGpu(gpu, perGpu), undefined);
      assert.equal(host.npuBridgeOfGpu(gpu, -1), undefined);
      for (const b of bridges) {
        assert.equal(host.gpuOfBridge(b), gpu);
        assert.equal(b.phb.isNpu, true);
        assert.equal(host.functionForNode(b.node), b);
      }
    }
  }
});

/*
 * IOMMU groups as Linux 5.12 built them, derived by hand from the kernel's source:
 * - pci_64.c pcibios_init adds devices ("Add devices.") before ppc_md.pcibios_fixup;
 *   pci.c pnv_pci_init probes the PHB4s ("ibm,ioda3-phb") before the NPU2 PHBs; at add,
 *   pci-ioda.c pnv_pci_ioda_dma_dev_setup registers a PE's group with its first non-bridge
 *   device ("We assume that bridges *probably* don't need to do any DMA", "PEs with a DMA weight
 *   of zero won't have a group"): root ports get none, the six GPU PEs take ids 0..5 (PHB4 order,
 *   chip 0's three first); NPU PHBs have no dma_dev_setup.
 * - pnv_pci_ioda_fixup → pnv_pci_ioda_setup_nvlink → npu-dma.c pnv_pci_npu_setup_iommu_groups →
 *   pnv_try_setup_npu_table_group: "P9 case: compound group is per-NPU (all gpus, all links)":
 *   chip 0's NPU group is registered first, while 0..5 are taken: id 6
 *   (iommu_group_alloc, ida_simple_get lowest free); each GPU then leaves its PE group
 *   (iommu_del_device, iommu_group_put) which dies and frees its id: 0, 1, 2 are free when
 *   chip 8's first GPU registers its NPU's group: id 0.
 * - pnv_npu_compound_attach adds each bridge whose ibm,gpu is the GPU to the GPU's group.
 */
const KERNEL_GROUPS_6GPU: [string, number | null][] = [
  ['0000:00:00.0', 6],
  ['0000:00:00.1', 6],
  ['0000:00:01.0', 6],
  ['0000:00:01.1', 6],
  ['0000:00:02.0', 6],
  ['0000:00:02.1', 6],
  ['0001:00:00.0', 0],
  ['0001:00:00.1', 0],
  ['0001:00:01.0', 0],
  ['0001:00:01.1', 0],
  ['0001:00:02.0', 0],
  ['0001:00:02.1', 0],
  ['0002:00:00.0', null],
  ['0002:01:00.0', 6],
  ['0003:00:00.0', null],
  ['0003:02:00.0', 6],
  ['0004:00:00.0', null],
  ['0004:03:00.0', 6],
  ['0005:00:00.0', null],
  ['0005:01:00.0', 0],
  ['0006:00:00.0', null],
  ['0006:02:00.0', 0],
  ['0007:00:00.0', null],
  ['0007:03:00.0', 0],
];

test('IOMMU groups of the 6-GPU Witherspoon: one per NPU, 3 x (GPU + 2 bridges), as Linux 5.12 numbered them', () => {
  const host = buildHost(generateWitherspoon());
  assert.deepEqual(
    host.functions.map((f) => [f.name, f.iommuGroup]),
    KERNEL_GROUPS_6GPU,
  );
  assert.equal(host.groupMembers(6).length, 9);
  assert.equal(host.groupMembers(0).length, 9);
});

test('IOMMU groups of the 4-GPU Witherspoon: 2 x (GPU + 3 bridges) per NPU; GPU PEs 0..3, so chip 0 takes 4', () => {
  const host = buildHost(generateWitherspoon({ gpus: 4 }));
  const chip0 = 4; // registered while the GPU PE groups 0..3 live
  const chip8 = 0; // 0 and 1 were freed by chip 0's GPUs
  assert.deepEqual(
    host.functions.map((f) => [f.name, f.iommuGroup]),
    [
      ...['00.0', '00.1', '00.2', '01.0', '01.1', '01.2'].map((d) => [`0000:00:${d}`, chip0]),
      ...['00.0', '00.1', '00.2', '01.0', '01.1', '01.2'].map((d) => [`0001:00:${d}`, chip8]),
      ['0002:00:00.0', null],
      ['0002:01:00.0', chip0],
      ['0003:00:00.0', null],
      ['0003:02:00.0', chip0],
      ['0004:00:00.0', null],
      ['0004:01:00.0', chip8],
      ['0005:00:00.0', null],
      ['0005:02:00.0', chip8],
    ],
  );
});

test('a bridge without ibm,gpu joins no group (pnv_npu_compound_attach finds no GPU); the GPU stays compound through ibm,npu[0]', () => {
  const host = buildHost(
    generateWitherspoon({ omit: [{ property: 'ibm,gpu', target: '0000:00:00.1' }] }),
  );
  assert.equal(host.functionByName('0000:00:00.1')!.iommuGroup, null);
  assert.equal(host.functionByName('0002:01:00.0')!.iommuGroup, 6);
  assert.equal(host.groupMembers(6).length, 8);
});

test('without NVLink2 links (P100 plain) each GPU keeps its PE group and the bridges get none', () => {
  const plain = buildHost(generateWitherspoon({ p100: 'plain' }));
  assert.deepEqual(
    plain.functions.filter((f) => f.iommuGroup !== null).map((f) => [f.name, f.iommuGroup]),
    [
      ['0002:01:00.0', 0],
      ['0003:02:00.0', 1],
      ['0004:03:00.0', 2],
      ['0005:01:00.0', 3],
      ['0006:02:00.0', 4],
      ['0007:03:00.0', 5],
    ],
  );
});

test('domains from linux,pci-domain when present', () => {
  const host = buildHost(generateWitherspoon({ linuxPciDomain: true }));
  assert.deepEqual(
    host.phbs.map((p) => p.domain),
    [7, 55, 0, 1, 2, 48, 49, 50],
  );
  assert.ok(host.functionByName('0037:00:02.1'));
  assert.ok(host.functionByName('0030:01:00.0'));
  assert.equal(host.functions[0]!.name, '0000:00:00.0');
  assert.equal(host.functions[0]!.role, 'other');
});

test('link index through ibm,nvlink, and the NPU PHB ATSD addresses', () => {
  const host = buildHost(generateWitherspoon({ gpus: 4 }));
  const b = host.functionByName('0001:00:01.2')!;
  const link = nvlinkOfBridge(host.fdt, b);
  assert.equal(link.linkIndex, 5);
  assert.equal(link.link?.path, '/xscom@623fc00000000/npu@5011000/link@5');
  assert.equal(atsdAddresses(b.phb)[5], 0x6030200850000n + (8n << 42n));
  const broken = buildHost(
    generateWitherspoon({ omit: [{ property: 'ibm,nvlink', target: '0000:00:00.0' }] }),
  );
  const r = nvlinkOfBridge(broken.fdt, broken.functionByName('0000:00:00.0')!);
  assert.equal(r.linkIndex, undefined);
  assert.match(r.problem!, /0000:00:00.0 ibm,nvlink is missing/);
  const noAtsd = buildHost(generateWitherspoon({ atsdEntries: 0 }));
  assert.deepEqual(atsdAddresses(noAtsd.phbs[0]!), []);
});

const HAND_WRITTEN = `/dts-v1/;
/ {
  #address-cells = <2>;
  #size-cells = <2>;
  soc {
    #address-cells = <2>;
    #size-cells = <2>;
    pcie@1000 {
      device_type = "pci";
      #address-cells = <3>;
      #size-cells = <2>;
      reg = <0 0x1000 0 0x1000>;
      bus-range = <0x10 0x1f>;
      linux,pci-domain = <5>;
      interrupt-controller@0 { compatible = "acme,intc"; };
      ethernet@0 {
        reg = <0x100000 0 0 0 0>;
        vendor-id = <0x8086>; device-id = <0x10d3>; class-code = <0x020000>; revision-id = <3>;
      };
      pci@1 {
        device_type = "pci";
        #address-cells = <3>;
        #size-cells = <2>;
        reg = <0x100800 0 0 0 0>;
        vendor-id = <0x10b5>; device-id = <0x8725>; class-code = <0x060400>;
        bus-range = <0x11 0x11>;
        gpu: display@0 {
          reg = <0x110000 0 0 0 0>;
          vendor-id = <0x10de>; device-id = <0x1db1>; class-code = <0x030200>;
          ibm,npu = <&link0>;
        };
        audio@0,1 {
          reg = <0x110100 0 0 0 0>;
          vendor-id = <0x10de>; device-id = <0x10f1>; class-code = <0x040300>;
        };
      };
    };
  };
  pcie@2000 {
    device_type = "pciex";
    #address-cells = <3>;
    #size-cells = <2>;
    nvme@0 { reg = <0 0 0 0 0>; vendor-id = <0x144d>; device-id = <0xa808>; class-code = <0x010802>; };
  };
  npu {
    compatible = "ibm,ioda2-npu2-phb";
    device_type = "pciex";
    #address-cells = <3>;
    #size-cells = <2>;
    ibm,mmio-atsd = /bits/ 64 <0x1000 0x2000>;
    link0: bridge@3 {
      reg = <0x1800 0 0 0 0>;
      vendor-id = <0x1014>; device-id = <0x04ea>; class-code = <0x068001>;
      ibm,gpu = <&gpu>;
      ibm,nvlink = <&nv>;
    };
  };
  nv: nvlink { ibm,npu-link-index = <1>; };
};
`;

test('host from a hand-written tree (compiled by dtc) that is not Witherspoon-shaped', () => {
  const fdt = parseFdt(dtc(HAND_WRITTEN, 'dts', 'dtb'), 'hand.dts');
  const host = buildHost(fdt);
  assert.deepEqual(
    host.phbs.map((p) => [p.node.path, p.domain, p.isNpu]),
    [
      ['/soc/pcie@1000', 5, false],
      ['/pcie@2000', 1, false],
      ['/npu', 2, true],
    ],
  );
  // Groups by hand (Linux 5.12): probe order pcie@1000 then pcie@2000. Bus 0x10's PE: group 0
  // (ethernet; the bridge at 10:01.0 joins the PE's existing group); bus 0x11's PE: group 1 (GPU
  // and audio); nvme: 2. The GPU's ibm,npu[0] is on an NPU PHB without "ibm,power9-npu-pciex"
  // (no hose->npu: the POWER8 per-GPU compound group), registered as 3; group 1 keeps the audio
  // function. pnv_npu_compound_attach puts the bridge in the GPU's group 3.
  assert.deepEqual(
    host.functions.map((f) => [f.name, f.role, f.iommuGroup]),
    [
      ['0001:00:00.0', 'other', 2],
      ['0002:00:03.0', 'bridge', 3],
      ['0005:10:00.0', 'other', 0],
      ['0005:10:01.0', 'other', 0],
      ['0005:11:00.0', 'gpu', 3],
      ['0005:11:00.1', 'other', 1],
    ],
  );
  const gpu = host.functionByName('0005:11:00.0')!;
  const bridge = host.npuBridgeOfGpu(gpu, 0)!;
  assert.equal(bridge.name, '0002:00:03.0');
  assert.equal(host.gpuOfBridge(bridge), gpu);
  assert.equal(nvlinkOfBridge(host.fdt, bridge).linkIndex, 1);
  assert.equal(host.nvlinkOfBridge(bridge).linkIndex, 1);
  assert.deepEqual(host.atsdAddresses(bridge.phb), [0x1000n, 0x2000n]);
  assert.deepEqual(atsdAddresses(bridge.phb), [0x1000n, 0x2000n]);
  assert.equal(host.functionByName('0005:10:00.0')!.revision, 3);
});

/** A minimal tree with one PHB holding the nodes `build` makes. */
function tree(build: (phb: FdtNode, root: FdtNode) => void): Fdt {
  const fdt = new Fdt(undefined, 'test');
  const phb = fdt.root.addChild('pciex@0');
  phb.setProperty('device_type', cells.string('pciex'));
  build(phb, fdt.root);
  return fdt;
}

function fn(parent: FdtNode, name: string, physHi: number): FdtNode {
  const n = parent.addChild(name);
  n.setProperty('reg', cells.u32(physHi, 0, 0, 0, 0));
  n.setProperty('vendor-id', cells.u32(0x1234));
  n.setProperty('device-id', cells.u32(1));
  return n;
}

test('malformed trees give a HostError naming the node and property', () => {
  const cases: [Fdt, RegExp][] = [
    [
      tree((phb) => void fn(phb, 'a@0', 0).setProperty('reg', cells.bytes(1, 2))),
      /\/pciex@0\/a@0: reg: is shorter than one cell/,
    ],
    [
      tree((phb) => void fn(phb, 'a@0', 0).removeProperty('vendor-id')),
      /\/pciex@0\/a@0: vendor-id: missing/,
    ],
    [
      tree((phb) => void fn(phb, 'a@0', 0).setProperty('device-id', cells.u64(1n))),
      /\/pciex@0\/a@0: device-id: is 8 bytes/,
    ],
    [
      tree((phb) => void phb.setProperty('bus-range', cells.u32(1))),
      /\/pciex@0: bus-range: is 4 bytes/,
    ],
    [
      tree((phb) => void phb.setProperty('linux,pci-domain', cells.u64(1n))),
      /\/pciex@0: linux,pci-domain: is 8 bytes/,
    ],
    [
      tree((phb) => {
        fn(phb, 'a@0', 0);
        fn(phb, 'b@0', 0);
      }),
      /\/pciex@0\/b@0: reg: PCI address 0000:00:00.0 is also used by \/pciex@0\/a@0/,
    ],
    [
      tree((phb, root) => {
        phb.setProperty('linux,pci-domain', cells.u32(1));
        root.addChild('pci@1').setProperty('device_type', cells.string('pci'));
      }),
      /\/pci@1: PCI domain 1 is also the domain of \/pciex@0/,
    ],
  ];
  for (const [fdt, message] of cases) {
    assert.throws(
      () => buildHost(fdt),
      (e: unknown) => e instanceof HostError && message.test(e.message),
      String(message),
    );
  }
});

test('dangling phandles and empty PHBs do not crash', () => {
  const fdt = tree((phb, root) => {
    const gpu = fn(phb, 'gpu@0', 0);
    gpu.setProperty('vendor-id', cells.u32(0x10de));
    gpu.setProperty('class-code', cells.u32(0x030200));
    gpu.setProperty('ibm,npu', cells.u32(0x99, 0x98));
    gpu.setProperty('ibm,gpu', cells.bytes(1));
    root.addChild('pci@9').setProperty('device_type', cells.string('pci'));
  });
  const host = buildHost(fdt);
  assert.equal(host.phbs.length, 2);
  assert.equal(host.phbs[1]!.functions.length, 0);
  const gpu = host.functions[0]!;
  assert.equal(gpu.role, 'gpu');
  assert.equal(host.npuBridgeOfGpu(gpu, 0), undefined);
  assert.equal(host.gpuOfBridge(gpu), undefined);
  assert.match(nvlinkOfBridge(host.fdt, gpu).problem!, /is missing/);
});
