/**
 * The PowerNV host as Linux sees it, built from any device tree (generated or a user's DTB):
 * PHBs (nodes with device_type "pciex"/"pci" not inside another PHB), PCI functions found by
 * their Open Firmware `reg` (phys.hi = bus << 16 | devfn << 8), the NVLink bridge and GPU
 * roles, IOMMU groups (replayed as Linux 5.12 built them, iommu-groups.ts), and the kernel's
 * lookups between GPUs and bridges.
 * Sources: Linux v5.12 arch/powerpc/platforms/powernv/npu-dma.c (pnv_pci_get_npu_dev,
 * pnv_pci_get_gpu_dev, get_pci_dev, pnv_npu_compound_attach), arch/powerpc/kernel/pci_dn.c,
 * drivers/vfio/pci/vfio_pci_nvlink2.c (link index via ibm,nvlink); Open Firmware PCI binding.
 */

import { CodedError } from '../errors/index.ts';
import type { Fdt, FdtNode } from '../fdt/index.ts';
import {
  countPhandles,
  FDT_MAX_DEPTH,
  type FdtPropertyError,
  isCompatible,
  isDeviceType,
  parsePhandle,
  readAllU64,
  readU32,
  readVariableU32Array,
  tryRead,
  type UnflattenedTree,
  unflattenLikeLinux,
} from '../fdt/index.ts';
import { hex } from '../text/index.ts';
import { kernelIommuGroups } from './iommu-groups.ts';
import { PCI_BASE_CLASS_DISPLAY, PCI_CLASS_BRIDGE_PCI, PCI_VENDOR_ID_NVIDIA } from './pci-ids.ts';
import { pciName } from './pci-name.ts';
import type { Host, NvlinkLookup, PciAddress, PciFunction, PciRole, Phb } from './types.ts';

/** A tree the host model cannot be built from; names the node and, where one is at fault, the property. */
export class HostError extends CodedError<'PLATFORM'> {
  override readonly name: string = 'HostError';
  constructor(
    readonly nodePath: string,
    readonly property: string | undefined,
    detail: string,
  ) {
    super('PLATFORM', `${nodePath}${property ? `: ${property}` : ''}: ${detail}`);
  }
}

/** Compatible of an NPU2 PHB (skiboot hw/npu2.c npu2_nvlink_init_npu). */
export const NPU2_PHB_COMPATIBLE = 'ibm,ioda2-npu2-phb';
/** PNV_PHB_MODEL_NPU2, for which pnv_pci_ioda_setup_nvlink calls pnv_npu2_init (hose->npu). */
const POWER9_NPU_COMPATIBLE = 'ibm,power9-npu-pciex';

/** The HostError of a property read that failed with the wrong size. */
function sizeError(e: FdtPropertyError, expected: string): HostError {
  return new HostError(e.nodePath, e.property, `is ${e.size} bytes, expected ${expected}`);
}

/** A u32 property that must be exactly one cell when present. @throws HostError */
function optionalU32(node: FdtNode, name: string): number | undefined {
  if (!node.hasProperty(name)) return undefined;
  const r = tryRead(() => readVariableU32Array(node, name, 1, 1));
  if (!r.ok) throw sizeError(r.error, 'one u32 cell');
  return r.value[0];
}

function requiredU32(node: FdtNode, name: string): number {
  const v = optionalU32(node, name);
  if (v === undefined)
    throw new HostError(node.path, name, 'missing (every PCI function node needs it)');
  return v;
}

function isPciBusNode(node: FdtNode): boolean {
  return isDeviceType(node, 'pci') || isDeviceType(node, 'pciex');
}

/** The first cell of `bus-range`, or undefined. @throws HostError when malformed */
function secondaryBus(node: FdtNode): number | undefined {
  if (!node.hasProperty('bus-range')) return undefined;
  const r = tryRead(() => readVariableU32Array(node, 'bus-range', 2, 2));
  if (!r.ok) throw sizeError(r.error, '2 cells');
  const first = r.value[0]!;
  if (first > 0xff) throw new HostError(node.path, 'bus-range', `bus ${first} is above 255`);
  return first;
}

interface RawFunction {
  node: FdtNode;
  phbIndex: number;
  bus: number;
  devfn: number;
  /** pci_is_bridge(): a bus node or class 0x0604 (PCI-to-PCI bridge). */
  isBridge: boolean;
}

/** Every PHB in tree order: device_type pci/pciex nodes with no PHB above them. */
function findPhbNodes(root: FdtNode): FdtNode[] {
  const out: FdtNode[] = [];
  // An explicit stack, not recursion: the tree's depth is the input's.
  const stack: FdtNode[] = [...root.children].reverse();
  for (let node = stack.pop(); node; node = stack.pop()) {
    if (isPciBusNode(node)) {
      out.push(node);
      continue;
    }
    for (let i = node.children.length - 1; i >= 0; i--) stack.push(node.children[i]!);
  }
  return out;
}

/**
 * The PCI function nodes under a PHB, through bridges, in tree order (a bridge before what
 * is behind it). An explicit stack of buses rather than recursion.
 */
function collectFunctions(
  phb: FdtNode,
  busNumber: number | undefined,
  phbIndex: number,
  out: RawFunction[],
): void {
  const buses: { node: FdtNode; number: number | undefined; next: number }[] = [
    { node: phb, number: busNumber, next: 0 },
  ];
  for (let bus = buses.at(-1); bus; bus = buses.at(-1)) {
    const child = bus.node.children[bus.next++];
    if (!child) {
      buses.pop();
      continue;
    }
    if (!child.hasProperty('reg')) continue; // not a PCI function (e.g. an interrupt controller)
    const reg = tryRead(() => readU32(child, 'reg'));
    if (!reg.ok) throw new HostError(child.path, 'reg', 'is shorter than one cell (phys.hi)');
    const physHi = reg.value;
    const number = bus.number ?? (physHi >> 16) & 0xff;
    const classCode = optionalU32(child, 'class-code');
    const isBridge =
      isPciBusNode(child) || (classCode !== undefined && classCode >> 8 === PCI_CLASS_BRIDGE_PCI);
    out.push({ node: child, phbIndex, bus: number, devfn: (physHi >> 8) & 0xff, isBridge });
    if (isBridge) buses.push({ node: child, number: secondaryBus(child), next: 0 });
  }
}

function phbDomains(nodes: readonly FdtNode[]): number[] {
  const domains = nodes.map((n, i) => optionalU32(n, 'linux,pci-domain') ?? i);
  const first = new Map<number, number>();
  domains.forEach((d, i) => {
    const j = first.get(d);
    if (j !== undefined) {
      throw new HostError(
        nodes[i]!.path,
        undefined,
        `PCI domain ${d} is also the domain of ${nodes[j]!.path}`,
      );
    }
    first.set(d, i);
  });
  return domains;
}

/** The one warning of a tree Linux unflattens without some of its nodes, or none. */
function skippedNodesWarning(tree: UnflattenedTree): string[] {
  const first = tree.firstSkipped;
  if (!first) return [];
  const where = first.offset !== undefined ? `offset ${hex(first.offset)}` : first.shortPath;
  return [
    `${tree.fdt.source}: skipped ${tree.skipped} nodes nested ${FDT_MAX_DEPTH} or more levels deep (the first at ${where}), as Linux's unflatten_dt_nodes does`,
  ];
}

/**
 * The host model of `fdt`, as Linux sees it: nodes nested 64 or more levels deep are left out
 * (fdt/unflatten.ts), with one line in `warnings`; the host's `fdt` is then a copy without them.
 * @throws HostError naming the node (and property) when the tree cannot describe PCI functions:
 *   a `reg` shorter than a cell, a missing `vendor-id`/`device-id`, a mis-sized `bus-range` or
 *   `linux,pci-domain`, two PHBs with one domain, or two functions at one address.
 */
export function buildHost(input: Fdt): Host {
  const tree = unflattenLikeLinux(input);
  const fdt = tree.fdt;
  const phbNodes = findPhbNodes(fdt.root);
  const domains = phbDomains(phbNodes);
  const raw: RawFunction[] = [];
  phbNodes.forEach((node, i) => {
    collectFunctions(node, secondaryBus(node) ?? 0, i, raw);
  });
  const phbFunctions: PciFunction[][] = phbNodes.map(() => []);
  const phbs: Phb[] = phbNodes.map((node, i) => ({
    node,
    domain: domains[i]!,
    isNpu: isCompatible(node, NPU2_PHB_COMPATIBLE),
    chipId: optionalU32(node, 'ibm,chip-id'),
    phbIndex: optionalU32(node, 'ibm,phb-index'),
    functions: phbFunctions[i]!,
  }));
  raw.sort(
    (a, b) => domains[a.phbIndex]! - domains[b.phbIndex]! || a.bus - b.bus || a.devfn - b.devfn,
  );
  const byNode = new Map<FdtNode, number>();
  raw.forEach((r, i) => {
    byNode.set(r.node, i);
  });
  const resolve = (r: RawFunction, name: string, index: number): number | undefined => {
    if (countPhandles(r.node, name) <= index) return undefined;
    const other = parsePhandle(fdt, r.node, name, index);
    return other ? byNode.get(other) : undefined;
  };
  const groups = kernelIommuGroups(
    phbNodes.map((node, i) => ({
      npu: phbs[i]!.isNpu,
      npu2: phbs[i]!.isNpu && isCompatible(node, POWER9_NPU_COMPATIBLE),
      rootBus: secondaryBus(node) ?? 0,
    })),
    raw.map((r) => ({
      phb: r.phbIndex,
      bus: r.bus,
      devfn: r.devfn,
      isBridge: r.isBridge,
      npu0: resolve(r, 'ibm,npu', 0),
      gpu: resolve(r, 'ibm,gpu', 0),
    })),
  );
  const functions: PciFunction[] = raw.map((r, i) => {
    const f = makeFunction(r, phbs[r.phbIndex]!, groups[i] ?? null);
    phbFunctions[r.phbIndex]!.push(f);
    return f;
  });
  return new HostModel(fdt, phbs, functions, skippedNodesWarning(tree));
}

function makeFunction(r: RawFunction, phb: Phb, iommuGroup: number | null): PciFunction {
  const address: PciAddress = {
    domain: phb.domain,
    bus: r.bus,
    device: r.devfn >> 3,
    fn: r.devfn & 7,
  };
  const vendor = requiredU32(r.node, 'vendor-id');
  const classCode = optionalU32(r.node, 'class-code') ?? 0;
  const role: PciRole = phb.isNpu
    ? 'bridge'
    : vendor === PCI_VENDOR_ID_NVIDIA && classCode >> 16 === PCI_BASE_CLASS_DISPLAY
      ? 'gpu'
      : 'other';
  return {
    name: pciName(address),
    address,
    devfn: r.devfn,
    node: r.node,
    phb,
    vendor,
    device: requiredU32(r.node, 'device-id'),
    classCode,
    revision: optionalU32(r.node, 'revision-id') ?? 0,
    subsystemVendor: optionalU32(r.node, 'subsystem-vendor-id') ?? 0,
    subsystemDevice: optionalU32(r.node, 'subsystem-id') ?? 0,
    role,
    iommuGroup,
  };
}

class HostModel implements Host {
  private readonly byName: Map<string, PciFunction>;
  private readonly byNode: Map<FdtNode, PciFunction>;

  constructor(
    readonly fdt: Fdt,
    readonly phbs: readonly Phb[],
    readonly functions: readonly PciFunction[],
    readonly warnings: readonly string[],
  ) {
    this.byName = new Map();
    for (const f of functions) {
      const other = this.byName.get(f.name);
      if (other) {
        throw new HostError(
          f.node.path,
          'reg',
          `PCI address ${f.name} is also used by ${other.node.path}`,
        );
      }
      this.byName.set(f.name, f);
    }
    this.byNode = new Map(functions.map((f) => [f.node, f]));
  }

  functionByName(name: string): PciFunction | undefined {
    return this.byName.get(name.toLowerCase());
  }

  functionForNode(node: FdtNode): PciFunction | undefined {
    return this.byNode.get(node);
  }

  npuBridgeOfGpu(gpu: PciFunction, index: number): PciFunction | undefined {
    if (index < 0) return undefined;
    const dn = parsePhandle(this.fdt, gpu.node, 'ibm,npu', index);
    return dn ? this.functionForNode(dn) : undefined;
  }

  gpuOfBridge(bridge: PciFunction): PciFunction | undefined {
    const dn = parsePhandle(this.fdt, bridge.node, 'ibm,gpu', 0);
    return dn ? this.functionForNode(dn) : undefined;
  }

  groupMembers(group: number): readonly PciFunction[] {
    return this.functions.filter((f) => f.iommuGroup !== null && f.iommuGroup === group);
  }

  nvlinkOfBridge(bridge: PciFunction): NvlinkLookup {
    return nvlinkOfBridge(this.fdt, bridge);
  }

  atsdAddresses(phb: Phb): readonly bigint[] {
    return atsdAddresses(phb);
  }
}

/** Every whole u64 of an NPU PHB's `ibm,mmio-atsd` ([] when absent), for display. */
export function atsdAddresses(phb: Phb): readonly bigint[] {
  return readAllU64(phb.node, 'ibm,mmio-atsd');
}

/**
 * The bridge's link: `ibm,nvlink` → link node → `ibm,npu-link-index` (vfio_pci_nvlink2.c
 * vfio_pci_ibm_npu2_init). `problem` says what is missing when the index cannot be read.
 */
export function nvlinkOfBridge(fdt: Fdt, bridge: PciFunction): NvlinkLookup {
  const link = parsePhandle(fdt, bridge.node, 'ibm,nvlink', 0);
  if (!link) {
    const why = bridge.node.hasProperty('ibm,nvlink') ? 'points to no node' : 'is missing';
    return {
      link: undefined,
      linkIndex: undefined,
      problem: `bridge ${bridge.name} ibm,nvlink ${why}`,
    };
  }
  const index = tryRead(() => readU32(link, 'ibm,npu-link-index'));
  if (!index.ok) {
    return { link, linkIndex: undefined, problem: `link ${link.path} has no ibm,npu-link-index` };
  }
  return { link, linkIndex: index.value, problem: undefined };
}
