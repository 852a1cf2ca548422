import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cells, Fdt, type FdtNode, parseFdt } from '../fdt/index.ts';
import { dtc } from '../fdt/testing/dtc.ts';
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

test('IOMMU groups: a GPU with its bridges, every other function alone, numbered in address order', () => {
  const host = buildHost(generateWitherspoon());
  const groups = host.functions.map((f) => f.iommuGroup);
  assert.equal(new Set(groups).size, 6 + 6);
  // First appearance of each group number follows address order: 0, 1, 2, ...
  const firsts = [...new Set(groups)];
  assert.deepEqual(
    firsts,
    firsts.map((_, i) => i),
  );
  for (const gpu of host.functions.filter((f) => f.role === 'gpu')) {
    const members = host.groupMembers(gpu.iommuGroup);
    assert.equal(members.length, 3);
    assert.ok(members.every((m) => m === gpu || host.gpuOfBridge(m) === gpu));
  }
  for (const f of host.functions.filter((f) => f.role === 'other'))
    assert.equal(host.groupMembers(f.iommuGroup).length, 1);
});

test('a bridge without ibm,gpu is in its own group; the GPU keeps the rest', () => {
  const host = buildHost(
    generateWitherspoon({ omit: [{ property: 'ibm,gpu', target: '0000:00:00.1' }] }),
  );
  // The GPU's ibm,npu still names the bridge, so the union is kept through ibm,npu.
  assert.equal(host.groupMembers(host.functionByName('0002:01:00.0')!.iommuGroup).length, 3);
  const plain = buildHost(generateWitherspoon({ p100: 'plain' }));
  assert.ok(plain.functions.every((f) => plain.groupMembers(f.iommuGroup).length === 1));
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
  assert.deepEqual(
    host.functions.map((f) => [f.name, f.role, f.iommuGroup]),
    [
      ['0001:00:00.0', 'other', 0],
      ['0002:00:03.0', 'bridge', 1],
      ['0005:10:00.0', 'other', 2],
      ['0005:10:01.0', 'other', 3],
      ['0005:11:00.0', 'gpu', 1],
      ['0005:11:00.1', 'other', 4],
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
