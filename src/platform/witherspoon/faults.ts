/**
 * Faults applied to a generated Witherspoon tree, each removing or altering exactly what it
 * names, so that each error path of Linux's vfio_pci_nvlink2.c (v5.0–v5.12) can be reached:
 * P100 GPUs (no NVLink2, or POWER8 NVLink1-style bridges as skiboot hw/npu.c left them),
 * `reg` of the wrong size on GPU memory nodes, fewer `ibm,mmio-atsd` entries, and omitted
 * properties on nodes named by PCI name, path or GPU slot.
 */
import {
  cells,
  type Fdt,
  type FdtNode,
  isCompatible,
  readString,
  readU32,
  readU64Array,
} from '../../fdt/index.ts';
import { PCI_DEVICE_ID_IBM_NPU2_NVLINK, PCI_VENDOR_ID_NVIDIA } from '../pci-ids.ts';
import { type OmitFault, WitherspoonOptionError, type WitherspoonOptions } from './options.ts';

/** A PCI function the generator made, with its name once domains are known. */
export interface GeneratedPci {
  readonly phb: FdtNode;
  readonly node: FdtNode;
  readonly bus: number;
  readonly devfn: number;
  name: string;
}

const NVLINK2_BRIDGE_PROPS = [
  'memory-region',
  'ibm,device-tgt-addr',
  'ibm,nvlink-speed',
  'ibm,nvlink',
];

/**
 * Applies the options' faults to `fdt` in place.
 * @throws WitherspoonOptionError when an omit target matches nothing or lacks the property.
 */
export function applyWitherspoonFaults(
  fdt: Fdt,
  options: WitherspoonOptions,
  pci: readonly GeneratedPci[],
): void {
  if (options.p100 !== false) applyP100(fdt, options.p100);
  if (options.memoryRegU64s !== 2) resizeMemoryRegs(fdt, options.memoryRegU64s);
  if (options.atsdEntries !== 8) truncateAtsd(fdt, options.atsdEntries);
  for (const fault of options.omit) applyOmit(fdt, fault, pci);
}

function gpuNodes(fdt: Fdt): FdtNode[] {
  return [...fdt.root.walk()].filter(
    (n) => n.hasProperty('vendor-id') && readU32(n, 'vendor-id') === PCI_VENDOR_ID_NVIDIA,
  );
}

/** NVLink bridge nodes: functions that carry `ibm,gpu` or sit on an NPU PHB. */
function bridgeNodes(fdt: Fdt): FdtNode[] {
  return [...fdt.root.walk()].filter(
    (n) => n.hasProperty('vendor-id') && readU32(n, 'device-id') === PCI_DEVICE_ID_IBM_NPU2_NVLINK,
  );
}

function applyP100(fdt: Fdt, style: 'plain' | 'nvlink1'): void {
  for (const gpu of gpuNodes(fdt)) {
    if (style === 'plain') {
      gpu.removeProperty('ibm,npu');
      gpu.removeProperty('ibm,nvlink-peers');
    }
  }
  for (const bridge of bridgeNodes(fdt)) {
    if (style === 'plain') bridge.removeProperty('ibm,gpu');
    else for (const p of NVLINK2_BRIDGE_PROPS) bridge.removeProperty(p);
  }
  if (style === 'nvlink1') {
    // POWER8 NVLink1 had no coherent GPU memory: the memory nodes go with memory-region.
    for (const mem of fdt.root.children.filter(isGpuMemoryNode)) fdt.root.removeChild(mem);
  }
}

function isGpuMemoryNode(node: FdtNode): boolean {
  return node.baseName === 'memory' && isCompatible(node, 'ibm,coherent-device-memory');
}

/** Each GPU memory node's `reg` as `count` u64: the first two are addr and size, then zeros. */
function resizeMemoryRegs(fdt: Fdt, count: number): void {
  for (const mem of fdt.root.children.filter(isGpuMemoryNode)) {
    const values = readU64Array(mem, 'reg', 2);
    mem.setProperty('reg', cells.u64(...Array.from({ length: count }, (_, i) => values[i] ?? 0n)));
  }
}

function truncateAtsd(fdt: Fdt, entries: number): void {
  for (const node of fdt.root.walk()) {
    const prop = node.getProperty('ibm,mmio-atsd');
    if (!prop) continue;
    if (entries === 0) node.removeProperty('ibm,mmio-atsd');
    else prop.value = prop.value.slice(0, entries * 8);
  }
}

/** The nodes an omit target names. */
export function resolveFaultTarget(
  fdt: Fdt,
  target: string,
  pci: readonly GeneratedPci[],
): FdtNode[] {
  if (target === '*') return [...fdt.root.walk()];
  if (target.startsWith('/')) {
    const node = fdt.findNode(target);
    return node ? [node] : [];
  }
  const byName = pci.find((f) => f.name === target.toLowerCase());
  if (byName) return [byName.node];
  if (/^GPU\d+$/.test(target)) {
    return gpuNodes(fdt).filter((n) => {
      return n.hasProperty('ibm,loc-code') && readString(n, 'ibm,loc-code') === target;
    });
  }
  return [];
}

function applyOmit(fdt: Fdt, fault: OmitFault, pci: readonly GeneratedPci[]): void {
  const spec = `${fault.property}@${fault.target}`;
  const nodes = resolveFaultTarget(fdt, fault.target, pci);
  if (nodes.length === 0) {
    throw new WitherspoonOptionError(
      'omit',
      `${spec}: no node '${fault.target}' (use a PCI name like 0000:00:00.1, a node path, GPU<n> or *)`,
    );
  }
  const holders = nodes.filter((n) => n.hasProperty(fault.property));
  if (holders.length === 0) {
    throw new WitherspoonOptionError(
      'omit',
      `${spec}: ${fault.target === '*' ? 'no node' : nodes[0]!.path} has no ${fault.property}`,
    );
  }
  for (const n of holders) n.removeProperty(fault.property);
}
