/**
 * What the topology picture shows, read from the host model (platform/host.ts) and its device
 * tree: per chip the NPU (its PHB, bricks, ATSD registers) and the PHB4s with their GPUs; every
 * NVLink, CPU↔GPU (an NPU brick, through its emulated bridge: `ibm,nvlink` → `link@N`) and
 * GPU↔GPU (`ibm,nvlink-peers` entries that name another GPU, skiboot witherspoon.c
 * npu2_phb_nvlink_dt); tgt addresses, GPU memory windows (`memory-region` → `memory@…` reg),
 * ATSD register of each bridge (`ibm,mmio-atsd[ibm,npu-link-index]`, vfio_pci_nvlink2.c
 * vfio_pci_ibm_npu2_init) and the kernel's IOMMU groups. Anything a broken tree lacks is
 * undefined, never guessed. Pure.
 */

import {
  countPhandles,
  type Fdt,
  type FdtNode,
  parsePhandle,
  readAllU32,
  readAllU64,
  readString,
  tryRead,
} from '../fdt/index.ts';
import { nvlink2Profile } from '../nvlink2/index.ts';
import type { Host, PciFunction } from '../platform/index.ts';

/** One NPU brick with its NVLink bridge: a CPU↔GPU NVLink. */
export interface TopologyBridge {
  readonly address: string;
  readonly chip: number | undefined;
  /** `ibm,npu-link-index` of the link node `ibm,nvlink` names (the brick). */
  readonly brick: number | undefined;
  /** The GPU `ibm,gpu` names. */
  readonly gpu: string | undefined;
  /** `ibm,nvlink-speed` (the link speed code: 0x3, 0x8, 0x9). */
  readonly speedCode: number | undefined;
  /** Bits per second: the link node's `ibm,link-speed`, else the code's rate. */
  readonly speedBps: bigint | undefined;
  readonly tgt: bigint | undefined;
  /** The ATSD register the kernel gives it: `ibm,mmio-atsd[brick]`. */
  readonly atsd: { readonly index: number; readonly address: bigint } | undefined;
  readonly iommuGroup: number | null;
}

/** A GPU in the picture: its chip, label, model, RAM and coherent memory window (bytes), tgt, IOMMU group and PHB4. */
export interface TopologyGpu {
  readonly address: string;
  readonly chip: number | undefined;
  /** `ibm,loc-code` (GPU0 …), else the address. */
  readonly label: string;
  readonly model: string;
  /** The GPU's real RAM (its BAR1 size). */
  readonly ramBytes: bigint | undefined;
  /** The coherent memory window (`memory@…` of its first bridge's `memory-region`). */
  readonly window:
    | { readonly base: bigint; readonly size: bigint; readonly numaNode: number | undefined }
    | undefined;
  readonly tgt: bigint | undefined;
  readonly iommuGroup: number | null;
  /** The PHB4's PCI domain and its root port, if any. */
  readonly domain: number;
  readonly rootPort: string | undefined;
}

/** GPU↔GPU NVLinks between two GPUs: how many bricks join them. */
export interface TopologyPeerLinks {
  readonly a: string;
  readonly b: string;
  readonly links: number;
  /**
   * The tree records link speeds on NPU links only; GPU↔GPU links run at the rate of the
   * GPUs' own NVLink bricks, taken from their NPU links when all agree.
   */
  readonly speedBps: bigint | undefined;
}

/** An NPU PHB: its chip, domain and node path, `ibm,mmio-atsd` register addresses and bridges. */
export interface TopologyNpu {
  readonly chip: number | undefined;
  /** The NPU PHB's PCI domain and node path. */
  readonly domain: number;
  readonly path: string;
  /** `ibm,mmio-atsd`. */
  readonly atsd: readonly bigint[];
  readonly bridges: readonly string[];
}

/** A chip: its id (undefined when the tree gives none), its NPUs and its GPU addresses. */
export interface TopologyChip {
  readonly id: number | undefined;
  readonly npus: readonly TopologyNpu[];
  readonly gpus: readonly string[];
}

/** The whole picture of a host: machine, source, chips, GPUs, bridges, GPU↔GPU links and other functions. */
export interface TopologyModel {
  /** The root `model` (8335-GTW is the 6-GPU, 8335-GTH the 4-GPU Witherspoon). */
  readonly machine: string;
  readonly source: string;
  readonly chips: readonly TopologyChip[];
  readonly gpus: readonly TopologyGpu[];
  readonly bridges: readonly TopologyBridge[];
  readonly peers: readonly TopologyPeerLinks[];
  /** Other functions (root ports, …): address and IOMMU group. */
  readonly others: readonly { readonly address: string; readonly iommuGroup: number | null }[];
}

/** `nvidia,link-speed` codes (nvlink2.md §2): 0x3 20 Gb/s, 0x8 25.78125 Gb/s, 0x9 25 Gb/s. */
const SPEED_CODE_BPS: Readonly<Record<number, bigint>> = {
  3: 20_000_000_000n,
  8: 25_781_250_000n,
  9: 25_000_000_000n,
};

function u32(node: FdtNode | undefined, name: string): number | undefined {
  return node ? readAllU32(node, name)[0] : undefined;
}

function u64s(node: FdtNode | undefined, name: string): bigint[] {
  return node ? readAllU64(node, name) : [];
}

/** The first string of a property, as shown (undefined when missing, empty or not text). */
function text(node: FdtNode | undefined, name: string): string | undefined {
  if (!node) return undefined;
  const r = tryRead(() => readString(node, name));
  return r.ok ? r.value : undefined;
}

function bridgeOf(host: Host, fn: PciFunction): TopologyBridge {
  const fdt = host.fdt;
  const link = parsePhandle(fdt, fn.node, 'ibm,nvlink', 0);
  const brick = u32(link, 'ibm,npu-link-index');
  const speedCode = u32(fn.node, 'ibm,nvlink-speed');
  const bps = u64s(link, 'ibm,link-speed')[0];
  const atsd = host.atsdAddresses(fn.phb);
  const atsdAddress = brick === undefined ? undefined : atsd[brick];
  return {
    address: fn.name,
    chip: fn.phb.chipId,
    brick,
    gpu: host.gpuOfBridge(fn)?.name,
    speedCode,
    speedBps: bps ?? (speedCode === undefined ? undefined : SPEED_CODE_BPS[speedCode]),
    tgt: u64s(fn.node, 'ibm,device-tgt-addr')[0],
    atsd:
      brick === undefined || atsdAddress === undefined
        ? undefined
        : { index: brick, address: atsdAddress },
    iommuGroup: fn.iommuGroup,
  };
}

function windowOf(fdt: Fdt, bridge: PciFunction | undefined): TopologyGpu['window'] {
  if (!bridge) return undefined;
  const mem = parsePhandle(fdt, bridge.node, 'memory-region', 0);
  const reg = u64s(mem, 'reg');
  if (reg.length < 2) return undefined;
  return { base: reg[0]!, size: reg[1]!, numaNode: u32(mem, 'ibm,chip-id') };
}

function gpuOf(host: Host, fn: PciFunction): TopologyGpu {
  const bridges = Array.from({ length: countPhandles(fn.node, 'ibm,npu') }, (_, i) =>
    host.npuBridgeOfGpu(fn, i),
  ).filter((b): b is PciFunction => b !== undefined);
  const rootPort = host.functions.find(
    (f) => f.phb === fn.phb && f.address.bus < fn.address.bus && f.role === 'other',
  );
  const profile = nvlink2Profile(fn, host);
  const bar1 = profile?.bars.find((b) => b.index === 1);
  return {
    address: fn.name,
    chip: fn.phb.chipId,
    label: text(fn.node, 'ibm,loc-code') ?? fn.name,
    model: profile?.model ?? fn.name,
    ramBytes: bar1?.size,
    window: windowOf(host.fdt, bridges[0]),
    tgt: bridges.map((b) => u64s(b.node, 'ibm,device-tgt-addr')[0]).find((t) => t !== undefined),
    iommuGroup: fn.iommuGroup,
    domain: fn.phb.domain,
    rootPort: rootPort?.name,
  };
}

/** GPU↔GPU links from every GPU's `ibm,nvlink-peers`, each pair once. */
function peersOf(host: Host, gpus: readonly PciFunction[], bridges: readonly TopologyBridge[]) {
  const counts = new Map<string, { a: string; b: string; links: number }>();
  for (const gpu of gpus) {
    const n = countPhandles(gpu.node, 'ibm,nvlink-peers');
    for (let i = 0; i < n; i++) {
      const node = parsePhandle(host.fdt, gpu.node, 'ibm,nvlink-peers', i);
      const peer = node ? host.functionForNode(node) : undefined;
      if (peer?.role !== 'gpu' || peer === gpu) continue;
      const [a, b] = [gpu.name, peer.name].sort() as [string, string];
      const key = `${a} ${b}`;
      const entry = counts.get(key) ?? { a, b, links: 0 };
      // Each side lists the link once: count it from the lower address's side only.
      if (gpu.name === a) entry.links++;
      counts.set(key, entry);
    }
  }
  const speedOf = (gpu: string) => {
    const speeds = new Set(bridges.filter((b) => b.gpu === gpu).map((b) => b.speedBps));
    return speeds.size === 1 ? [...speeds][0] : undefined;
  };
  return [...counts.values()].map((p) => {
    const sa = speedOf(p.a);
    return { ...p, speedBps: sa !== undefined && sa === speedOf(p.b) ? sa : undefined };
  });
}

/** The topology of `host`. */
export function buildTopology(host: Host): TopologyModel {
  const gpuFns = host.functions.filter((f) => f.role === 'gpu');
  const bridges = host.functions.filter((f) => f.role === 'bridge').map((f) => bridgeOf(host, f));
  const gpus = gpuFns.map((f) => gpuOf(host, f));
  const chipIds = [...new Set(host.phbs.map((p) => p.chipId))].sort(
    (a, b) => (a ?? Number.MAX_SAFE_INTEGER) - (b ?? Number.MAX_SAFE_INTEGER),
  );
  const chips: TopologyChip[] = chipIds.map((id) => ({
    id,
    npus: host.phbs
      .filter((p) => p.isNpu && p.chipId === id)
      .map((p) => ({
        chip: id,
        domain: p.domain,
        path: p.node.path,
        atsd: host.atsdAddresses(p),
        bridges: p.functions.map((f) => f.name),
      })),
    gpus: gpus.filter((g) => g.chip === id).map((g) => g.address),
  }));
  const others = host.functions
    .filter((f) => f.role === 'other')
    .map((f) => ({ address: f.name, iommuGroup: f.iommuGroup }));
  return {
    machine: text(host.fdt.root, 'model') ?? 'unknown model',
    source: host.fdt.source,
    chips,
    gpus,
    bridges,
    peers: peersOf(host, gpuFns, bridges),
    others,
  };
}
