/**
 * The NVLink2 reading of a device tree, for the doctor's rules: which nodes are GPUs, NVLink
 * bridges, NPU PHBs, `npu` and `link@N` nodes, GPU memory and system RAM, found by what they are
 * (IDs, compatibles) and by what points at them (so a node that lost its compatible is still
 * known by its references), and the values skiboot would have written, derived from the rest of
 * the tree (for fixes). Nothing here throws on a malformed value: readers return undefined.
 * Sources: skiboot hdata/spira.c add_npu, hw/npu2.c (npu_allocate_bdfn, npu2_dn_fixup,
 * npu2_dn_fixup_gmb, npu2_create_memory_dn, MMIO_ATSD_ADDR), platforms/astbmc/witherspoon.c.
 */

import type { Fdt, FdtNode } from '../../fdt/index.ts';
import { isCompatible } from '../../fdt/index.ts';
import type { Host } from '../../platform/index.ts';
import {
  ATSD_COUNT,
  ATSD_OFFSET,
  ATSD_STRIDE,
  buildHost,
  GPU_APERTURE_SIZE,
  HostError,
  PCI_DEVICE_ID_IBM_NPU2_NVLINK,
  PCI_DEVICE_ID_NVIDIA_P100_SXM2,
  PCI_VENDOR_ID_IBM,
  PCI_VENDOR_ID_NVIDIA,
  tgtFromSystemAddress,
} from '../../platform/index.ts';

/** `nvidia,link-speed` / `ibm,nvlink-speed` codes skiboot writes, with `ibm,link-speed` (bps) (hdata/spira.c add_npu). */
export const LINK_SPEEDS: ReadonlyMap<number, bigint> = new Map([
  [0x3, 20_000_000_000n],
  [0x8, 25_781_250_000n],
  [0x9, 25_000_000_000n],
]);

/** `compatible` of a GPU RAM node (skiboot hw/npu2.c npu2_dn_fixup_gmb). */
export const COHERENT_MEMORY = 'ibm,coherent-device-memory';
/** `compatible` of an NPU2 PHB (skiboot hw/npu2.c npu2_nvlink_init_npu). */
export const NPU2_PHB = 'ibm,ioda2-npu2-phb';
/** `compatible` of the NPU node whose links the NPU2 PHB is made of. */
export const NPU_COMPATIBLE = 'ibm,power9-npu';
/** `compatible` of a link node under the NPU node. */
export const LINK_COMPATIBLE = 'ibm,npu-link';

function view(v: Uint8Array): DataView {
  return new DataView(v.buffer, v.byteOffset, v.byteLength);
}

/** Cell `i` of a property, or undefined when the property is shorter. */
export function u32At(node: FdtNode, name: string, i = 0): number | undefined {
  const p = node.getProperty(name);
  if (!p || p.value.length < (i + 1) * 4) return undefined;
  return view(p.value).getUint32(i * 4);
}

/** u64 `i` of a property, or undefined when the property is shorter. */
export function u64At(node: FdtNode, name: string, i = 0): bigint | undefined {
  const p = node.getProperty(name);
  if (!p || p.value.length < (i + 1) * 8) return undefined;
  return view(p.value).getBigUint64(i * 8);
}

/** Every whole u32 of a property ([] when missing). */
export function u32s(node: FdtNode, name: string): number[] {
  const p = node.getProperty(name);
  if (!p) return [];
  const v = view(p.value);
  return Array.from({ length: Math.floor(p.value.length / 4) }, (_, i) => v.getUint32(i * 4));
}

/** The strings of a NUL-separated list, or undefined when missing or not text. */
export function stringsOf(node: FdtNode, name: string): string[] | undefined {
  const p = node.getProperty(name);
  if (!p || p.value.length === 0 || p.value[p.value.length - 1] !== 0) return undefined;
  return new TextDecoder().decode(p.value.subarray(0, -1)).split('\0');
}

/** The node's own phandle (`phandle`, else `linux,phandle`), if it has one cell. */
export function phandleOf(node: FdtNode): number | undefined {
  for (const name of ['phandle', 'linux,phandle']) {
    const p = node.getProperty(name);
    if (p?.value.length === 4) return view(p.value).getUint32(0);
  }
  return undefined;
}

/** `u64` as two u32 cells, high first (how DTS and fdtput write a u64). */
export function u64Cells(...values: bigint[]): number[] {
  return values.flatMap((v) => [Number((v >> 32n) & 0xffffffffn), Number(v & 0xffffffffn)]);
}

/** The OF `reg` phys.hi devfn of a PCI function node, or undefined. */
export function devfnOf(node: FdtNode): number | undefined {
  const hi = u32At(node, 'reg');
  return hi === undefined ? undefined : (hi >> 8) & 0xff;
}

/** `reg` as exactly two u64 [base, size] (the GPU RAM init's rule), or undefined. */
export function exactRegion(node: FdtNode): [bigint, bigint] | undefined {
  const p = node.getProperty('reg');
  if (p?.value.length !== 16) return undefined;
  const v = view(p.value);
  return [v.getBigUint64(0), v.getBigUint64(8)];
}

/** A unit address read as hex (`memory@3e000000000` → 0x3e000000000), or undefined. */
export function unitAddressValue(node: FdtNode): bigint | undefined {
  const unit = node.unitAddress;
  return /^[0-9a-f]+$/i.test(unit) ? BigInt(`0x${unit}`) : undefined;
}

/** A property that must hold one phandle, with what kind of node it leads to. */
export const PHANDLE_PROPERTIES = [
  { name: 'ibm,gpu', single: true },
  { name: 'ibm,npu', single: false },
  { name: 'ibm,nvlink', single: true },
  { name: 'memory-region', single: true },
  { name: 'ibm,npcq', single: true },
  { name: 'ibm,nvlink-peers', single: false },
] as const;

/** One phandle cell of a reference property. */
export interface Reference {
  readonly from: FdtNode;
  readonly property: string;
  readonly index: number;
  readonly value: number;
}

/** The NVLink2 view of one tree (see the file comment). */
export class NvTree {
  /** Where `fdt` came from when the host model could not be built (HostError). */
  readonly hostError: HostError | undefined;
  readonly host: Host | undefined;
  /** The tree the rules read: the host's (what Linux keeps after unflattening). */
  readonly fdt: Fdt;
  readonly gpus: FdtNode[] = [];
  readonly bridges: FdtNode[] = [];
  readonly npuPhbs: FdtNode[] = [];
  readonly npus: FdtNode[] = [];
  readonly links: FdtNode[] = [];
  readonly gpuMemory: FdtNode[] = [];
  readonly systemMemory: FdtNode[] = [];
  /** Every phandle cell of the PHANDLE_PROPERTIES, in tree order. */
  readonly references: Reference[] = [];
  private readonly names = new Map<FdtNode, string>();
  /** NVIDIA display functions by `ibm,loc-code` (skiboot binds bridges to GPUs by slot label). */
  private readonly gpuBySlot = new Map<string, FdtNode>();

  constructor(input: Fdt, unflattened: Fdt) {
    let host: Host | undefined;
    let hostError: HostError | undefined;
    try {
      host = buildHost(input);
    } catch (err) {
      if (!(err instanceof HostError)) throw err;
      hostError = err;
    }
    this.host = host;
    this.hostError = hostError;
    this.fdt = host?.fdt ?? unflattened;
    if (host) for (const f of host.functions) this.names.set(f.node, f.name);
    this.classify();
  }

  private classify(): void {
    const fdt = this.fdt;
    const add = (list: FdtNode[], node: FdtNode | undefined) => {
      if (node && !list.includes(node)) list.push(node);
    };
    for (const node of fdt.root.walk()) {
      for (const { name } of PHANDLE_PROPERTIES) {
        const p = node.getProperty(name);
        if (!p) continue;
        const v = view(p.value);
        for (let i = 0; i + 4 <= p.value.length; i += 4) {
          this.references.push({ from: node, property: name, index: i / 4, value: v.getUint32(i) });
        }
      }
      const vendor = u32At(node, 'vendor-id');
      const device = u32At(node, 'device-id');
      if (node.hasProperty('ibm,npu')) this.gpus.push(node);
      if (vendor === PCI_VENDOR_ID_NVIDIA && isDisplay(node)) {
        const loc = stringsOf(node, 'ibm,loc-code')?.[0];
        if (loc !== undefined && !this.gpuBySlot.has(loc)) this.gpuBySlot.set(loc, node);
      }
      if (
        (vendor === PCI_VENDOR_ID_IBM && device === PCI_DEVICE_ID_IBM_NPU2_NVLINK) ||
        node.hasProperty('ibm,gpu')
      )
        this.bridges.push(node);
      if (isCompatible(node, NPU2_PHB)) this.npuPhbs.push(node);
      if (isCompatible(node, NPU_COMPATIBLE)) this.npus.push(node);
      if (isCompatible(node, LINK_COMPATIBLE)) this.links.push(node);
      const type = stringsOf(node, 'device_type')?.[0];
      if (isCompatible(node, COHERENT_MEMORY)) this.gpuMemory.push(node);
      else if (type === 'memory') this.systemMemory.push(node);
    }
    // What references say a node is, when its own properties do not.
    for (const r of this.references) {
      const target = fdt.findByPhandle(r.value);
      if (!target) continue;
      if (r.property === 'ibm,gpu') add(this.gpus, target);
      if (r.property === 'ibm,npu') add(this.bridges, target);
      if (r.property === 'ibm,nvlink') add(this.links, target);
      if (r.property === 'ibm,npcq') add(this.npus, target);
      if (r.property === 'memory-region' && !this.gpuMemory.includes(target)) {
        this.systemMemory.splice(this.systemMemory.indexOf(target) >>> 0, 1);
        add(this.gpuMemory, target);
      }
    }
    for (const link of [...this.links]) add(this.npus, link.parent);
    for (const npu of this.npus)
      for (const c of npu.children) if (c.baseName === 'link') add(this.links, c);
    for (const b of this.bridges) add(this.npuPhbs, this.phbOf(b));
    // A P100 without ibm,npu is still an NVLink GPU when a bridge names its slot.
    for (const b of this.bridges) {
      if (this.gpuOf(b)) continue;
      const mate = this.slotMate(b);
      if (mate) add(this.gpus, mate);
    }
  }

  /** The PCI name of a function node ("0000:00:00.1"), or its path when Linux sees no function there. */
  nameOf(node: FdtNode): string {
    return this.names.get(node) ?? node.path;
  }

  /** The PCI name, or undefined when the host has no function at that node. */
  pciName(node: FdtNode): string | undefined {
    return this.names.get(node);
  }

  resolve(value: number): FdtNode | undefined {
    return this.fdt.findByPhandle(value);
  }

  /** The node a one-phandle property points to. */
  target(node: FdtNode, property: string, index = 0): FdtNode | undefined {
    const v = u32At(node, property, index);
    return v === undefined ? undefined : this.resolve(v);
  }

  /**
   * The PHB a function sits on: its topmost ancestor with device_type pci/pciex (as Linux finds
   * PHBs), else its nearest NPU PHB by compatible (so the rest of the rules still see the PHB
   * that lost its device_type; NV015 reports that).
   */
  phbOf(node: FdtNode): FdtNode | undefined {
    return this.pciHostOf(node) ?? this.ancestors(node).find((n) => isCompatible(n, NPU2_PHB));
  }

  /** The topmost ancestor with device_type pci/pciex: the PHB Linux sees, if any. */
  pciHostOf(node: FdtNode): FdtNode | undefined {
    let phb: FdtNode | undefined;
    for (const n of this.ancestors(node)) {
      const t = stringsOf(n, 'device_type')?.[0];
      if (t === 'pciex' || t === 'pci') phb = n;
    }
    return phb;
  }

  private ancestors(node: FdtNode): FdtNode[] {
    const out: FdtNode[] = [];
    for (let n = node.parent; n?.parent; n = n.parent) out.push(n);
    return out;
  }

  isP100(gpu: FdtNode): boolean {
    return u32At(gpu, 'device-id') === PCI_DEVICE_ID_NVIDIA_P100_SXM2;
  }

  /** A bridge's GPU: its `ibm,gpu`, else the GPU whose `ibm,npu` lists it, else its slot's GPU. */
  gpuOf(bridge: FdtNode): FdtNode | undefined {
    const t = this.target(bridge, 'ibm,gpu');
    if (t && this.gpus.includes(t)) return t;
    const listing = this.gpus.find((g) => this.npuList(g).includes(bridge));
    return listing;
  }

  /** The GPU in the bridge's slot (same `ibm,loc-code`), for bridges no GPU names. */
  slotMate(bridge: FdtNode): FdtNode | undefined {
    const loc = stringsOf(bridge, 'ibm,loc-code')?.[0];
    return loc === undefined ? undefined : this.gpuBySlot.get(loc);
  }

  /** The GPU of a bridge for ownership: its linked GPU or its slot's. */
  ownerGpu(bridge: FdtNode): FdtNode | undefined {
    return this.gpuOf(bridge) ?? this.slotMate(bridge);
  }

  /** The nodes a GPU's `ibm,npu` resolves to, in order (dangling entries left out). */
  npuList(gpu: FdtNode): FdtNode[] {
    return u32s(gpu, 'ibm,npu')
      .map((v) => this.resolve(v))
      .filter((n): n is FdtNode => n !== undefined);
  }

  /** A GPU's bridges: its `ibm,npu` entries, then bridges whose `ibm,gpu` names it, by devfn. */
  bridgesOf(gpu: FdtNode): FdtNode[] {
    const listed = this.npuList(gpu).filter((n) => this.bridges.includes(n));
    const pointing = this.bridges
      .filter((b) => !listed.includes(b) && this.target(b, 'ibm,gpu') === gpu)
      .sort((a, b) => (devfnOf(a) ?? 0) - (devfnOf(b) ?? 0));
    return [...listed, ...pointing];
  }

  /** Bridges of NVLink2 (non-P100) GPUs: the ones the subdriver's inits apply to. */
  nvlink2Bridges(): FdtNode[] {
    return this.bridges.filter((b) => {
      const g = this.gpuOf(b);
      return g !== undefined && !this.isP100(g);
    });
  }

  /** The `npu` node of an NPU PHB: its `ibm,npcq`, else the npu of the xscom with its chip id. */
  npuOfPhb(phb: FdtNode): FdtNode | undefined {
    const t = this.target(phb, 'ibm,npcq');
    if (t && this.npus.includes(t)) return t;
    const chip = u32At(phb, 'ibm,chip-id');
    const same = this.npus.filter((n) => n.parent && u32At(n.parent, 'ibm,chip-id') === chip);
    if (same.length === 1) return same[0];
    return this.npus.length === 1 ? this.npus[0] : undefined;
  }

  /** A link's index: `ibm,npu-link-index`, else (for fixes) its `reg`, else its unit address. */
  linkIndexOf(link: FdtNode, derive = false): number | undefined {
    const v = u32At(link, 'ibm,npu-link-index');
    if (v !== undefined || !derive) return v;
    const reg = u32At(link, 'reg');
    if (reg !== undefined) return reg;
    const unit = unitAddressValue(link);
    return unit === undefined ? undefined : Number(unit);
  }

  /**
   * The link skiboot gives a bridge: bridges of GPU group k are devfn (k << 3) + n
   * (hw/npu2.c npu_allocate_bdfn), bound to the n-th link of group k (`ibm,npu-group-id`, else
   * the slot label) in link-index order.
   */
  expectedLink(bridge: FdtNode): FdtNode | undefined {
    const phb = this.phbOf(bridge);
    const npu = phb ? this.npuOfPhb(phb) : undefined;
    const devfn = devfnOf(bridge);
    if (!npu || devfn === undefined) return undefined;
    const group = devfn >> 3;
    const loc = stringsOf(bridge, 'ibm,loc-code')?.[0];
    const mine = npu.children
      .filter((l) => this.links.includes(l))
      .filter((l) => {
        const g = u32At(l, 'ibm,npu-group-id');
        return g !== undefined ? g === group : stringsOf(l, 'ibm,slot-label')?.[0] === loc;
      })
      .sort((a, b) => (this.linkIndexOf(a, true) ?? 0) - (this.linkIndexOf(b, true) ?? 0));
    return mine[devfn & 7];
  }

  /** A GPU memory node's [base, size] when its reg is two u64. */
  memoryRegion(mem: FdtNode): [bigint, bigint] | undefined {
    return exactRegion(mem);
  }

  /**
   * The memory node a bridge should name: the one its GPU's other bridges name (the most
   * common), else the GPU memory node whose compressed base is the bridge's tgt.
   */
  expectedMemory(bridge: FdtNode): FdtNode | undefined {
    const gpu = this.gpuOf(bridge);
    if (gpu) {
      const counts = new Map<FdtNode, number>();
      for (const other of this.bridgesOf(gpu)) {
        if (other === bridge) continue;
        const m = this.target(other, 'memory-region');
        if (m && this.gpuMemory.includes(m)) counts.set(m, (counts.get(m) ?? 0) + 1);
      }
      const best = [...counts].sort((a, b) => b[1] - a[1])[0];
      if (best) return best[0];
    }
    const tgt = u64At(bridge, 'ibm,device-tgt-addr');
    if (tgt === undefined) return undefined;
    return this.gpuMemory.find((m) => {
      const base = this.memoryBase(m);
      return base !== undefined && tgtFromSystemAddress(base) === tgt;
    });
  }

  /** A GPU memory node's base: reg[0], else (for fixes) its unit address. */
  memoryBase(mem: FdtNode): bigint | undefined {
    return exactRegion(mem)?.[0] ?? u64At(mem, 'reg') ?? unitAddressValue(mem);
  }

  /** The `reg` skiboot writes for a GPU memory node: base and the 128 GiB aperture (npu2_create_memory_dn). */
  expectedMemoryReg(mem: FdtNode): [bigint, bigint] | undefined {
    const exact = exactRegion(mem);
    if (exact && exact[1] !== 0n) return exact;
    const base = u64At(mem, 'reg') ?? unitAddressValue(mem);
    if (base === undefined) return undefined;
    const size = u64At(mem, 'reg', 1);
    return [base, size !== undefined && size !== 0n ? size : GPU_APERTURE_SIZE];
  }

  /** The 8 ATSD register addresses of an NPU2 PHB: regs + 0x800000 + n * 0x10000 (hw/npu2.c MMIO_ATSD_ADDR). */
  expectedAtsd(phb: FdtNode): bigint[] | undefined {
    const regs = u64At(phb, 'reg');
    if (regs === undefined) return undefined;
    return Array.from(
      { length: ATSD_COUNT },
      (_, n) => regs + ATSD_OFFSET + BigInt(n) * ATSD_STRIDE,
    );
  }

  /**
   * The link speed code a bridge or link should carry: the link's valid `nvidia,link-speed`,
   * else its `ibm,link-speed` in bps, else the bridge's valid `ibm,nvlink-speed`.
   */
  expectedSpeed(link: FdtNode | undefined, bridge: FdtNode | undefined): number | undefined {
    const code = link ? u32At(link, 'nvidia,link-speed') : undefined;
    if (code !== undefined && LINK_SPEEDS.has(code)) return code;
    const bps = link ? u64At(link, 'ibm,link-speed') : undefined;
    for (const [c, b] of LINK_SPEEDS) if (bps === b) return c;
    const own = bridge ? u32At(bridge, 'ibm,nvlink-speed') : undefined;
    if (own !== undefined && LINK_SPEEDS.has(own)) return own;
    return undefined;
  }

  /** Bridges whose `ibm,nvlink` resolves to `link`. */
  bridgesOfLink(link: FdtNode): FdtNode[] {
    return this.bridges.filter((b) => this.target(b, 'ibm,nvlink') === link);
  }

  /** Bridges naming `mem` in `memory-region`. */
  bridgesOfMemory(mem: FdtNode): FdtNode[] {
    return this.bridges.filter((b) => this.target(b, 'memory-region') === mem);
  }

  /** Bridges on a PHB. */
  bridgesOnPhb(phb: FdtNode): FdtNode[] {
    return this.bridges.filter((b) => this.phbOf(b) === phb);
  }

  /**
   * The PCI functions whose NVLink2 init depends on `node`: a bridge and its GPU (the GPU RAM
   * init reads bridge 0), a GPU and its bridges, the bridges (and GPUs) using a link, a memory
   * node, an NPU PHB or its npu node.
   */
  functionsOf(node: FdtNode): string[] {
    const nodes = new Set<FdtNode>();
    // The GPU RAM init reads bridge 0 (ibm,npu[0]) only: a bridge speaks for its GPU when it is
    // that bridge, or when the GPU names none.
    const addBridge = (b: FdtNode) => {
      nodes.add(b);
      const g = this.ownerGpu(b);
      const first = g ? this.npuList(g)[0] : undefined;
      if (g && (first === b || first === undefined)) nodes.add(g);
    };
    if (this.bridges.includes(node)) addBridge(node);
    if (this.gpus.includes(node)) {
      nodes.add(node);
      for (const b of this.bridgesOf(node)) nodes.add(b);
      for (const b of this.bridges) if (this.slotMate(b) === node) nodes.add(b);
    }
    if (this.links.includes(node)) for (const b of this.bridgesOfLink(node)) nodes.add(b);
    if (this.gpuMemory.includes(node)) for (const b of this.bridgesOfMemory(node)) addBridge(b);
    if (this.npuPhbs.includes(node)) for (const b of this.bridgesOnPhb(node)) nodes.add(b);
    if (this.npus.includes(node)) {
      for (const phb of this.npuPhbs)
        if (this.npuOfPhb(phb) === node) for (const b of this.bridgesOnPhb(phb)) nodes.add(b);
    }
    return [...nodes]
      .map((n) => this.pciName(n))
      .filter((n): n is string => n !== undefined)
      .sort();
  }
}

/** A display-class PCI function (class 0x03xxxx): what a GPU is to the host model. */
function isDisplay(node: FdtNode): boolean {
  const cls = u32At(node, 'class-code');
  return cls !== undefined && cls >> 16 === 0x03;
}
