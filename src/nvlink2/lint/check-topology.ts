/**
 * NV011 (link counts match the topology), NV012 (IOMMU groups QEMU can place on one vPHB) and
 * NV014 (the rest of the shape skiboot writes).
 * Sources: skiboot hw/npu2.c npu_allocate_bdfn, npu2_assign_gmb, npu2_nvlink_create_phb;
 * hdata/spira.c add_npu; platforms/astbmc/witherspoon.c npu2_phb_nvlink_dt; core/pci.c;
 * QEMU hw/ppc/spapr_pci_nvlink2.c spapr_phb_pci_collect_nvgpu, spapr_phb_nvgpu_populate_dt.
 */
import type { FdtNode } from '../../fdt/index.ts';
import { NPU_REGS_SIZE, socketTopology } from '../../platform/index.ts';
import { hex } from '../../text/index.ts';
import { type Draft, FixBuilder, type PhandleAllocator } from './draft.ts';
import {
  devfnOf,
  LINK_COMPATIBLE,
  NPU_COMPATIBLE,
  type NvTree,
  phandleOf,
  stringsOf,
  u32At,
  u32s,
  u64At,
  unitAddressValue,
} from './tree-view.ts';
import type { Fix } from './types.ts';

/** skiboot hw/npu2.h NPU2_PHB_INDEX_BASE: an NVLink PHB's ibm,phb-index (brick 0's). */
const NPU2_PHB_INDEX_BASE = 7;

/** NVLink2 V100s have six links (witherspoon.c npu2_phb_nvlink_dt writes six peers). */
const V100_LINKS = 6;

const withFix = (fix: Fix | undefined) => (fix ? { fix } : {});

/**
 * A GPU's `ibm,nvlink-peers` as witherspoon.c npu2_phb_nvlink_dt writes them, when its npu's
 * link groups are one of the two Witherspoon planars (2 GPUs a socket: Redbud, 3: Sequoia):
 * the planar's table of the GPU's six links, GPUs by group, bridges by link index.
 */
function peersOnWitherspoon(tree: NvTree, gpu: FdtNode, alloc: PhandleAllocator): Fix | undefined {
  const npu = tree.bridgesOf(gpu).map((b) => tree.target(b, 'ibm,nvlink')?.parent)[0];
  if (!npu) return undefined;
  const links = npu.children.filter((c) => tree.links.includes(c));
  const groupOf = new Map(links.map((l) => [tree.linkIndexOf(l), u32At(l, 'ibm,npu-group-id')]));
  const groups = new Set(groupOf.values());
  if (groups.has(undefined) || (groups.size !== 2 && groups.size !== 3)) return undefined;
  const topo = socketTopology(groups.size === 2 ? 4 : 6);
  if (links.length !== topo.brickGroup.length) return undefined;
  if (topo.brickGroup.some((g, brick) => groupOf.get(brick) !== g)) return undefined;
  const bridgeOf = (brick: number) =>
    tree.bridgesOfLink(links.find((l) => tree.linkIndexOf(l) === brick)!)[0];
  const gpuOfGroup = (group: number) => {
    const brick = topo.brickGroup.indexOf(group);
    const bridge = bridgeOf(brick);
    return bridge ? tree.ownerGpu(bridge) : undefined;
  };
  const mine = topo.brickGroup.findIndex((_, brick) => {
    const bridge = bridgeOf(brick);
    return bridge !== undefined && tree.ownerGpu(bridge) === gpu;
  });
  const group = mine < 0 ? undefined : topo.brickGroup[mine];
  if (group === undefined) return undefined;
  const peers = topo.peers[group]!.map((p) =>
    p.kind === 'gpu' ? gpuOfGroup(p.gpu) : bridgeOf(p.brick),
  );
  if (peers.some((p) => p === undefined)) return undefined;
  const b = new FixBuilder(
    alloc,
    `the ${topo.gpusPerSocket}-GPU-a-socket Witherspoon's links of GPU group ${group} (platforms/astbmc/witherspoon.c npu2_phb_nvlink_dt)`,
  );
  return b
    .cells(
      gpu,
      'ibm,nvlink-peers',
      peers.map((p) => b.ref(p!)),
    )
    .build();
}

/** NV011: bridges, links and peers of each GPU agree with the NPU's link groups. */
export function checkTopology(tree: NvTree, alloc: PhandleAllocator): Draft[] {
  const out: Draft[] = [];
  for (const gpu of tree.gpus) {
    if (tree.isP100(gpu)) continue;
    const name = tree.nameOf(gpu);
    const bridges = tree.npuList(gpu);
    const whole =
      gpu.hasProperty('ibm,npu') &&
      bridges.length === u32s(gpu, 'ibm,npu').length &&
      bridges.every((b) => tree.bridges.includes(b) && tree.target(b, 'ibm,gpu') === gpu);
    if (whole) {
      const links = bridges.map((b) => tree.target(b, 'ibm,nvlink'));
      // Counting links by group needs every group id of the npu: a missing one is the finding.
      const npuOfLinks = links.find((l) => l !== undefined)?.parent;
      const allGrouped =
        npuOfLinks?.children.every(
          (l) => !tree.links.includes(l) || l.hasProperty('ibm,npu-group-id'),
        ) ?? false;
      const groups = new Set<number>();
      links.forEach((link, i) => {
        if (!link) return;
        const g = u32At(link, 'ibm,npu-group-id');
        const b = bridges[i]!;
        const devfn = devfnOf(b);
        if (g === undefined) {
          out.push({
            ruleId: 'NV011',
            node: link,
            property: 'ibm,npu-group-id',
            message: `${link.path} has no ibm,npu-group-id`,
            ...(devfn !== undefined
              ? {
                  fix: new FixBuilder(
                    alloc,
                    `group ${devfn >> 3}: its bridge ${tree.nameOf(b)} is devfn (group << 3) + n (hw/npu2.c npu_allocate_bdfn)`,
                  )
                    .cells(link, 'ibm,npu-group-id', [devfn >> 3])
                    .build(),
                }
              : {}),
          });
          return;
        }
        groups.add(g);
        if (devfn !== undefined && devfn >> 3 !== g) {
          out.push({
            ruleId: 'NV011',
            node: b,
            property: 'reg',
            message: `bridge ${tree.nameOf(b)} is devfn ${hex(devfn)}, but its link ${link.path} is in group ${g} (skiboot gives group g's links devfn (g << 3) + n)`,
          });
        }
      });
      if (groups.size > 1) {
        out.push({
          ruleId: 'NV011',
          node: gpu,
          property: 'ibm,npu',
          message: `GPU ${name}'s bridges use links of groups ${[...groups].join(', ')}, not of one`,
        });
      } else if (groups.size === 1 && allGrouped && links.every((l) => l !== undefined)) {
        const g = [...groups][0]!;
        const npu = links[0]!.parent;
        const inGroup = npu
          ? npu.children.filter((l) => tree.links.includes(l) && u32At(l, 'ibm,npu-group-id') === g)
          : [];
        if (inGroup.length !== bridges.length) {
          out.push({
            ruleId: 'NV011',
            node: gpu,
            property: 'ibm,npu',
            message: `GPU ${name} has ${bridges.length} bridges, but group ${g} of ${npu?.path} has ${inGroup.length} links`,
          });
        }
      }
    }
    // ibm,nvlink-peers: six links, the NPU ones exactly the GPU's bridges.
    const peers = gpu.getProperty('ibm,nvlink-peers');
    if (!peers) {
      out.push({
        ruleId: 'NV011',
        node: gpu,
        property: 'ibm,nvlink-peers',
        message: `GPU ${name} has no ibm,nvlink-peers (its ${V100_LINKS} links' peers, for the host NVIDIA driver)`,
        ...withFix(peersOnWitherspoon(tree, gpu, alloc)),
      });
      continue;
    }
    const values = u32s(gpu, 'ibm,nvlink-peers');
    if (values.some((v) => tree.resolve(v) === undefined) || peers.value.length % 4 !== 0) continue; // NV001
    const targets = values.map((v) => tree.resolve(v)!);
    const npuPeers = targets.filter((t) => tree.bridges.includes(t));
    const strays = targets.filter((t) => !tree.bridges.includes(t) && !tree.gpus.includes(t));
    const mine = tree.bridgesOf(gpu);
    const sameSet = npuPeers.length === mine.length && mine.every((b) => npuPeers.includes(b));
    if (values.length !== V100_LINKS || strays.length > 0 || (whole && !sameSet)) {
      const why =
        values.length !== V100_LINKS
          ? `has ${values.length} entries, not ${V100_LINKS}`
          : strays.length > 0
            ? `names ${strays.map((s) => s.path).join(', ')}, neither a GPU nor a bridge`
            : `names bridges ${npuPeers.map((b) => tree.nameOf(b)).join(', ') || 'none'}, its ibm,npu ${mine.map((b) => tree.nameOf(b)).join(', ')}`;
      out.push({
        ruleId: 'NV011',
        node: gpu,
        property: 'ibm,nvlink-peers',
        message: `ibm,nvlink-peers of GPU ${name} ${why}`,
      });
    }
  }
  for (const npu of tree.npus) {
    const links = npu.children.filter((c) => tree.links.includes(c));
    const have = u32At(npu, 'ibm,npu-links');
    if (have === links.length) continue;
    out.push({
      ruleId: 'NV011',
      node: npu,
      property: 'ibm,npu-links',
      message:
        have === undefined
          ? `${npu.path} has no ibm,npu-links`
          : `ibm,npu-links of ${npu.path} is ${have}, it has ${links.length} links`,
      fix: new FixBuilder(alloc, `${links.length}, its link@N children (hdata/spira.c add_npu)`)
        .cells(npu, 'ibm,npu-links', [links.length])
        .build(),
    });
  }
  for (const phb of tree.npuPhbs) {
    const count = tree.bridgesOnPhb(phb).length;
    const have = u32At(phb, 'ibm,links');
    if (have === count) continue;
    out.push({
      ruleId: 'NV011',
      node: phb,
      property: 'ibm,links',
      message:
        have === undefined
          ? `NPU PHB ${phb.path} has no ibm,links`
          : `ibm,links of ${phb.path} is ${have}, it has ${count} bridges`,
      fix: new FixBuilder(alloc, `${count}, its bridges`).cells(phb, 'ibm,links', [count]).build(),
    });
  }
  return out;
}

/** QEMU include/hw/pci-host/spapr.h NVGPU_MAX_NUM, NVGPU_MAX_LINKS; spapr_phb_nvgpu_populate_dt atsd[8]. */
const NVGPU_MAX_NUM = 6;
const NVGPU_MAX_LINKS = 3;
const MAX_MMIO_ATSD = 8;

/** NV012: each IOMMU group with an NVLink2 GPU fits one vPHB of QEMU 4.1–8.1. */
export function checkPlacement(tree: NvTree): Draft[] {
  const host = tree.host;
  if (!host) return [];
  const out: Draft[] = [];
  const groups = new Map<number, typeof host.functions>();
  for (const f of host.functions)
    if (f.iommuGroup !== null) groups.set(f.iommuGroup, [...(groups.get(f.iommuGroup) ?? []), f]);
  for (const members of groups.values()) {
    const gpus = members.filter((f) => tree.gpus.includes(f.node) && !tree.isP100(f.node));
    if (gpus.length === 0) continue;
    const bridges = members.filter((f) => tree.bridges.includes(f.node));
    const byTgt = new Map<bigint, number>();
    for (const b of bridges) {
      const t = u64At(b.node, 'ibm,device-tgt-addr');
      if (t !== undefined) byTgt.set(t, (byTgt.get(t) ?? 0) + 1);
    }
    const problems: string[] = [];
    if (byTgt.size > NVGPU_MAX_NUM)
      problems.push(
        `${byTgt.size} GPUs (tgts), QEMU takes ${NVGPU_MAX_NUM}: "Found too many NVLink bridges per vPHB"`,
      );
    for (const [tgt, n] of byTgt)
      if (n > NVGPU_MAX_LINKS)
        problems.push(
          `${n} bridges with tgt ${hex(tgt)}, QEMU takes ${NVGPU_MAX_LINKS} per GPU: "Found too many NVLink bridges per GPU"`,
        );
    const atsd = bridges.filter((b) => {
      const phb = b.phb.node;
      const link = tree.target(b.node, 'ibm,nvlink');
      const index = link ? tree.linkIndexOf(link) : undefined;
      const entries = Math.floor((phb.getProperty('ibm,mmio-atsd')?.value.length ?? 0) / 8);
      return index !== undefined && entries > 0;
    }).length;
    if (atsd > MAX_MMIO_ATSD)
      problems.push(
        `${atsd} ATSD registers, QEMU takes ${MAX_MMIO_ATSD}: "Only ${MAX_MMIO_ATSD} ATSD registers supported"`,
      );
    if (problems.length === 0) continue;
    const first = gpus[0]!;
    out.push({
      ruleId: 'NV012',
      node: first.node,
      message: `IOMMU group ${first.iommuGroup} (${members.map((f) => f.name).join(', ')}) needs one vPHB and does not fit one: ${problems.join('; ')}`,
      functions: members.map((f) => f.name),
    });
  }
  return out;
}

/** core/pci.c pci_class_name, backwards: an NPU2 bridge is class 0x068001, a V100 0x030200. */
const CLASS_BY_NODE_NAME: Record<string, number> = {
  'unknown-bridge': 0x068001,
  '3d-controller': 0x030200,
  vga: 0x030000,
};

interface Expectation {
  readonly name: string;
  readonly fix?: (node: FdtNode, b: FixBuilder) => FixBuilder | undefined;
}

/**
 * The properties skiboot writes on each NVLink2 node kind that no other rule owns (a missing
 * one of those is that rule's). `phandle` is expected where nothing dangles (NV001 owns those).
 */
function shapeOf(tree: NvTree): { nodes: FdtNode[]; expect: Expectation[] }[] {
  const pciIdentity: Expectation[] = [
    {
      // core/pci.c pci_add_one_device_node: "pciex<vendor>,<device>".
      name: 'compatible',
      fix: (n, b) => {
        const v = u32At(n, 'vendor-id');
        const d = u32At(n, 'device-id');
        return v === undefined || d === undefined
          ? undefined
          : b.strings(n, 'compatible', `pciex${v.toString(16)},${d.toString(16)}`);
      },
    },
    {
      // The class its node name says (core/pci.c pci_class_name), for the classes NVLink2 has.
      name: 'class-code',
      fix: (n, b) => {
        const cls = CLASS_BY_NODE_NAME[n.baseName];
        return cls === undefined ? undefined : b.cells(n, 'class-code', [cls]);
      },
    },
    { name: 'revision-id', fix: sameAsPart('revision-id') },
    {
      name: 'ibm,pci-config-space-type',
      fix: (n, b) => b.cells(n, 'ibm,pci-config-space-type', [1]),
    },
  ];
  // What skiboot read from config space is the part's: copy it from a function with the same
  // vendor-id and device-id (core/pci.c pci_add_one_device_node).
  const functions = [...tree.gpus, ...tree.bridges];
  function sameAsPart(name: string): NonNullable<Expectation['fix']> {
    return (n, b) => {
      const v = u32At(n, 'vendor-id');
      const d = u32At(n, 'device-id');
      const twin = functions.find(
        (f) =>
          f !== n &&
          u32At(f, 'vendor-id') === v &&
          u32At(f, 'device-id') === d &&
          f.hasProperty(name),
      );
      const value = twin?.getProperty(name)?.value;
      if (v === undefined || d === undefined || !twin || value?.length !== 4) return undefined;
      b.describe(`${name} of ${tree.nameOf(twin)}, the same part (core/pci.c)`);
      return b.cells(n, name, u32s(twin, name));
    };
  }
  // The NPU PHB's values that come from its npu (hw/npu2.c npu2_nvlink_create_phb).
  const npuOf = (phb: FdtNode) => tree.npuOfPhb(phb);
  const fromNpu = (
    name: string,
    value: (npu: FdtNode) => number | undefined,
    why: string,
  ): NonNullable<Expectation['fix']> => {
    return (n, b) => {
      const npu = npuOf(n);
      const v = npu ? value(npu) : undefined;
      if (v === undefined) return undefined;
      b.describe(`${why} (hw/npu2.c npu2_nvlink_create_phb)`);
      return b.cells(n, name, [v]);
    };
  };
  const locFromPeer = (node: FdtNode, b: FixBuilder, peers: FdtNode[]) => {
    const loc = peers
      .map((p) => stringsOf(p, 'ibm,loc-code')?.[0] ?? stringsOf(p, 'ibm,slot-label')?.[0])
      .find((l) => l !== undefined);
    return loc === undefined ? undefined : b.strings(node, 'ibm,loc-code', loc);
  };
  const v100 = tree.gpus.filter((g) => !tree.isP100(g));
  return [
    {
      nodes: tree.links,
      expect: [
        { name: 'compatible', fix: (n, b) => b.strings(n, 'compatible', LINK_COMPATIBLE) },
        {
          name: 'reg',
          fix: (n, b) => {
            const i = tree.linkIndexOf(n, true);
            return i === undefined ? undefined : b.cells(n, 'reg', [i]);
          },
        },
        {
          name: 'ibm,slot-label',
          fix: (n, b) => {
            const loc = tree
              .bridgesOfLink(n)
              .map((x) => stringsOf(x, 'ibm,loc-code')?.[0])
              .find((l) => l !== undefined);
            return loc === undefined ? undefined : b.strings(n, 'ibm,slot-label', loc);
          },
        },
        { name: 'ibm,npu-link-type', fix: (n, b) => b.strings(n, 'ibm,npu-link-type', 'nvlink') },
        { name: 'ibm,npu-phy' },
        { name: 'ibm,npu-lane-mask' },
      ],
    },
    {
      nodes: tree.npus,
      expect: [
        { name: 'compatible', fix: (n, b) => b.strings(n, 'compatible', NPU_COMPATIBLE) },
        {
          name: 'reg',
          fix: (n, b) => {
            const unit = unitAddressValue(n);
            return unit === undefined ? undefined : b.cells(n, 'reg', [Number(unit), 0x2c]);
          },
        },
        {
          name: 'ibm,npu-index',
          fix: (n, b) => {
            const phb = tree.npuPhbs.find((p) => npuOf(p) === n && p.hasProperty('ibm,npu-index'));
            const v = phb ? u32At(phb, 'ibm,npu-index') : undefined;
            if (!phb || v === undefined) return undefined;
            b.describe(`ibm,npu-index of its PHB ${phb.path} (hw/npu2.c npu2_nvlink_create_phb)`);
            return b.cells(n, 'ibm,npu-index', [v]);
          },
        },
        { name: '#address-cells', fix: (n, b) => b.cells(n, '#address-cells', [1]) },
        { name: '#size-cells', fix: (n, b) => b.cells(n, '#size-cells', [0]) },
      ],
    },
    {
      nodes: tree.npuPhbs,
      expect: [
        {
          name: 'compatible',
          fix: (n, b) => b.strings(n, 'compatible', 'ibm,power9-npu-pciex', 'ibm,ioda2-npu2-phb'),
        },
        {
          // The NPU2 register BAR its unit address names (hw/phys-map.c NPU_REGS, 16 MiB).
          name: 'reg',
          fix: (n, b) => {
            const base = unitAddressValue(n);
            if (base === undefined) return undefined;
            b.describe('the NPU2 register BAR at its unit address (hw/phys-map.c NPU_REGS)');
            return b.u64(n, 'reg', base, NPU_REGS_SIZE);
          },
        },
        {
          // NVLink makes one PHB per chip, indexed as brick 0 (hw/npu2.h npu2_get_phb_index).
          name: 'ibm,phb-index',
          fix: (n, b) => {
            b.describe('NPU2_PHB_INDEX_BASE + brick 0 (hw/npu2.h npu2_get_phb_index)');
            return b.cells(n, 'ibm,phb-index', [NPU2_PHB_INDEX_BASE]);
          },
        },
        {
          name: 'ibm,npu-index',
          fix: fromNpu('ibm,npu-index', (npu) => u32At(npu, 'ibm,npu-index'), "its npu's index"),
        },
        {
          name: 'ibm,chip-id',
          fix: fromNpu(
            'ibm,chip-id',
            (npu) => (npu.parent ? u32At(npu.parent, 'ibm,chip-id') : undefined),
            "the chip of its npu's xscom",
          ),
        },
        {
          name: 'ibm,xscom-base',
          fix: fromNpu('ibm,xscom-base', (npu) => u32At(npu, 'reg'), "its npu's xscom address"),
        },
        {
          name: 'ibm,npcq',
          fix: (n, b) => {
            const npu = tree.npuOfPhb(n);
            return npu ? b.cells(n, 'ibm,npcq', [b.ref(npu)]) : undefined;
          },
        },
        {
          // skiboot writes the window and the one range over it (hw/npu2.c npu2_nvlink_create_phb).
          name: 'ibm,mmio-window',
          fix: (n, b) => {
            const r = u32s(n, 'ranges');
            if (r.length !== 7) return undefined;
            const cpu = (BigInt(r[3]!) << 32n) | BigInt(r[4]!);
            const size = (BigInt(r[5]!) << 32n) | BigInt(r[6]!);
            b.describe('the window its ranges maps (hw/npu2.c npu2_nvlink_create_phb)');
            return b.u64(n, 'ibm,mmio-window', cpu, size);
          },
        },
        { name: '#address-cells', fix: (n, b) => b.cells(n, '#address-cells', [3]) },
        { name: '#size-cells', fix: (n, b) => b.cells(n, '#size-cells', [2]) },
        { name: 'bus-range', fix: (n, b) => b.cells(n, 'bus-range', [0, 0xff]) },
        {
          name: 'ranges',
          fix: (n, b) => {
            const base = u64At(n, 'ibm,mmio-window');
            const size = u64At(n, 'ibm,mmio-window', 1);
            if (base === undefined || size === undefined) return undefined;
            const hi = (v: bigint) => Number(v >> 32n);
            const lo = (v: bigint) => Number(v & 0xffffffffn);
            b.describe('one 32-bit memory range over ibm,mmio-window, PCI = CPU address');
            return b.cells(n, 'ranges', [
              0x02000000,
              hi(base),
              lo(base),
              hi(base),
              lo(base),
              hi(size),
              lo(size),
            ]);
          },
        },
      ],
    },
    {
      nodes: tree.bridges.filter((b) => tree.ownerGpu(b) !== undefined),
      expect: [
        ...pciIdentity,
        {
          name: 'ibm,loc-code',
          fix: (n, b) =>
            locFromPeer(
              n,
              b,
              [tree.target(n, 'ibm,nvlink'), tree.ownerGpu(n)].filter((x) => x !== undefined),
            ),
        },
      ],
    },
    {
      nodes: v100,
      expect: [
        ...pciIdentity,
        { name: 'subsystem-vendor-id', fix: sameAsPart('subsystem-vendor-id') },
        { name: 'subsystem-id', fix: sameAsPart('subsystem-id') },
        { name: 'ibm,loc-code', fix: (n, b) => locFromPeer(n, b, tree.bridgesOf(n)) },
      ],
    },
    {
      nodes: tree.gpuMemory,
      expect: [
        {
          name: 'ibm,chip-id',
          fix: (n, b) => {
            const a = u32s(n, 'ibm,associativity');
            const id = a.length >= 2 ? a[a.length - 1] : undefined;
            return id === undefined ? undefined : b.cells(n, 'ibm,chip-id', [id]);
          },
        },
      ],
    },
  ];
}

/** NV014: the remaining skiboot shape, each link's reg its unit address, and phandles. */
export function checkShape(tree: NvTree, alloc: PhandleAllocator): Draft[] {
  const out: Draft[] = [];
  const dangling = new Set(
    tree.references.filter((r) => tree.resolve(r.value) === undefined).map((r) => r.value),
  );
  const done = new Set<FdtNode>();
  for (const { nodes, expect } of shapeOf(tree)) {
    for (const node of nodes) {
      if (done.has(node)) continue;
      done.add(node);
      for (const e of expect) {
        if (node.hasProperty(e.name)) continue;
        const b = new FixBuilder(alloc, `what skiboot writes for ${e.name}`);
        const fix = e.fix?.(node, b)?.build();
        out.push({
          ruleId: 'NV014',
          node,
          property: e.name,
          message: `${tree.nameOf(node)} has no ${e.name}, which skiboot writes`,
          ...(fix ? { fix } : {}),
        });
      }
      // Every node skiboot makes has a phandle; a missing one nothing points at is shape only.
      if (phandleOf(node) === undefined && dangling.size === 0) {
        const b = new FixBuilder(alloc, 'a phandle of its own');
        const value = alloc.take();
        out.push({
          ruleId: 'NV014',
          node,
          property: 'phandle',
          message: `${tree.nameOf(node)} has no phandle (skiboot gives every node one)`,
          fix: b.cells(node, 'phandle', [value]).build(),
        });
      }
    }
  }
  for (const link of tree.links) {
    const reg = u32At(link, 'reg');
    const unit = unitAddressValue(link);
    if (reg === undefined || unit === undefined || BigInt(reg) === unit) continue;
    out.push({
      ruleId: 'NV014',
      node: link,
      property: 'reg',
      message: `${link.path} has reg <${hex(reg)}>, not its unit address ${link.unitAddress}`,
      fix: new FixBuilder(alloc, 'reg = its unit address')
        .cells(link, 'reg', [Number(unit)])
        .build(),
    });
  }
  return out;
}
