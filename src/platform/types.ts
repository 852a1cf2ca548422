/**
 * The PowerNV host as the kernel sees it, built from a device tree (`buildHost` in host.ts):
 * PHBs, PCI functions with their device-tree nodes, NVLink bridges, GPUs and IOMMU groups.
 * Everything here is derived from the tree; mutable runtime state (NPU firmware tables, the
 * GPU's address-translation cache) lives in firmware.ts and ats-cache.ts.
 */
import type { Fdt, FdtNode } from '../fdt/index.ts';

/** A PCI function's address: domain (16 bits), bus (8), device (5) and function (3). */
export interface PciAddress {
  readonly domain: number;
  readonly bus: number;
  readonly device: number;
  readonly fn: number;
}

/** What a PCI function is to the NVLink2 subdriver. */
export type PciRole = 'gpu' | 'bridge' | 'other';

/** A PCI host bridge of the host (a PHB4, or an NPU2 PHB when `isNpu`): its node, domain, chip and functions. */
export interface Phb {
  /** The `pciex@…` node. */
  readonly node: FdtNode;
  /** `linux,pci-domain` when present, else the PHB's position among PHBs in tree order. */
  readonly domain: number;
  /** An NPU PHB (compatible `ibm,ioda2-npu2-phb`) holding NVLink bridge functions. */
  readonly isNpu: boolean;
  readonly chipId: number | undefined;
  readonly phbIndex: number | undefined;
  readonly functions: readonly PciFunction[];
}

/**
 * One PCI function found under a PHB: name, address, node, IDs and its role (GPU, NVLink bridge,
 * other).
 */
export interface PciFunction {
  /** "DDDD:BB:DD.F", the kernel's pci_name(). */
  readonly name: string;
  readonly address: PciAddress;
  /** devfn = device << 3 | fn. */
  readonly devfn: number;
  /** The node whose `reg` phys.hi carries this bus/device/function (Open Firmware PCI binding). */
  readonly node: FdtNode;
  readonly phb: Phb;
  readonly vendor: number;
  readonly device: number;
  /** 24-bit class code (`class-code`). */
  readonly classCode: number;
  readonly revision: number;
  readonly subsystemVendor: number;
  readonly subsystemDevice: number;
  readonly role: PciRole;
  /**
   * The IOMMU group Linux 5.12 gave it (platform/iommu-groups.ts): on POWER9 one compound group
   * per NPU holding its GPUs and all their NVLink bridges; null when it has none (root ports).
   */
  readonly iommuGroup: number | null;
}

/**
 * The PowerNV host read from a tree (platform/host.ts buildHost): PHBs, functions, NVLink lookups
 * and boot warnings.
 */
export interface Host {
  /** The tree as Linux keeps it (fdt/unflatten.ts): the input, or a copy without too-deep nodes. */
  readonly fdt: Fdt;
  /** What Linux would warn about the tree at boot (nodes it skipped), one line each. */
  readonly warnings: readonly string[];
  readonly phbs: readonly Phb[];
  /** Every PCI function, sorted by address. */
  readonly functions: readonly PciFunction[];
  functionByName(name: string): PciFunction | undefined;
  /** The kernel's get_pci_dev(dn): the PCI function whose device-tree node is `node`. */
  functionForNode(node: FdtNode): PciFunction | undefined;
  /** pnv_pci_get_npu_dev(gpu, index): follow the GPU's `ibm,npu[index]` to a bridge function. */
  npuBridgeOfGpu(gpu: PciFunction, index: number): PciFunction | undefined;
  /** pnv_pci_get_gpu_dev(bridge): follow the bridge's `ibm,gpu` to the GPU function. */
  gpuOfBridge(bridge: PciFunction): PciFunction | undefined;
  /** Functions sharing an IOMMU group. */
  groupMembers(group: number): readonly PciFunction[];
  /** The bridge's NVLink: `ibm,nvlink` → link node → `ibm,npu-link-index`. */
  nvlinkOfBridge(bridge: PciFunction): NvlinkLookup;
  /** Every whole u64 of the PHB's `ibm,mmio-atsd` ([] when absent). */
  atsdAddresses(phb: Phb): readonly bigint[];
}

/** Result of following a bridge's `ibm,nvlink` to its link index (host.ts `nvlinkOfBridge`). */
export interface NvlinkLookup {
  /** The link node `ibm,nvlink` points to, if any. */
  readonly link: FdtNode | undefined;
  /** `ibm,npu-link-index` of that node, if readable. */
  readonly linkIndex: number | undefined;
  /** Why `linkIndex` is undefined (e.g. "bridge 0000:00:00.1 ibm,nvlink is missing"). */
  readonly problem: string | undefined;
}
