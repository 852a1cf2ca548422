/**
 * Builds the device tree of an IBM Witherspoon (Power System AC922) the way skiboot does:
 * per chip the `/xscom@…/npu@5011000` node with `link@N` children (hw/npu2-common.c,
 * platforms/astbmc/witherspoon.c), the NPU PHB `pciex@…` with one emulated NVLink bridge per
 * GPU link (hw/npu2.c npu2_nvlink_create_phb, npu2_populate_devices, npu_allocate_bdfn), the
 * bridge and GPU fix-ups (hw/npu2.c npu2_dn_fixup, npu2_dn_fixup_gmb, npu2_create_memory_dn),
 * PHB4s with a root port and a GPU each (core/pci.c pci_add_one_device_node), and the GPU
 * `ibm,nvlink-peers` (witherspoon.c npu2_phb_nvlink_dt). Faults are applied afterwards
 * (faults.ts).
 */
import { cells, Fdt, type FdtNode, readU32 } from '../../fdt/index.ts';
import { hexDigits } from '../../text/index.ts';
import {
  CLASS_CODE_3D_CONTROLLER,
  CLASS_CODE_NPU2_BRIDGE,
  CLASS_CODE_PCI_BRIDGE,
  PCI_DEVICE_ID_IBM_NPU2_NVLINK,
  PCI_DEVICE_ID_IBM_PHB4_ROOT_PORT,
  PCI_DEVICE_ID_NVIDIA_P100_SXM2,
  PCI_DEVICE_ID_NVIDIA_V100_SXM2_16GB,
  PCI_DEVICE_ID_NVIDIA_V100_SXM2_32GB,
  PCI_SUBSYSTEM_ID_NVIDIA_P100_SXM2,
  PCI_SUBSYSTEM_ID_NVIDIA_V100_SXM2_16GB,
  PCI_SUBSYSTEM_ID_NVIDIA_V100_SXM2_32GB,
  PCI_VENDOR_ID_IBM,
  PCI_VENDOR_ID_NVIDIA,
} from '../pci-ids.ts';
import { pciName } from '../pci-name.ts';
import { applyWitherspoonFaults, type GeneratedPci } from './faults.ts';
import { resolveWitherspoonOptions, type WitherspoonOptions } from './options.ts';
import { addPciFunctionNode, makeBridgeNode, phbRanges } from './pci-node.ts';
import {
  ATSD_COUNT,
  atsdAddress,
  GPU_APERTURE_SIZE,
  gpuMemoryBase,
  NPU_MMIO_WINDOW,
  NPU_REGS_SIZE,
  npuRegsBase,
  onChip,
  PHB4_MMIO32_BASE,
  PHB4_MMIO32_SIZE,
  PHB4_MMIO64_BASE,
  PHB4_MMIO64_SIZE,
  PHB4_REG_BASE,
  PHB4_REG_SIZE,
  tgtFromSystemAddress,
  XSCOM_BASE,
  XSCOM_SIZE,
} from './phys-map.ts';
import { type SocketTopology, slotLabel, socketTopology, WITHERSPOON_CHIPS } from './topology.ts';

/** skiboot hw/npu2.c NPU2_PHB_INDEX_BASE: the NPU PHB's `ibm,phb-index` on POWER9. */
const NPU_PHB_INDEX = 7;
/** PHB4s per chip: the OPAL PHB id is chip * 6 + index (hw/phb4.c phb4_get_opal_id). */
const PHB4_PER_CHIP = 6;
/** `nvidia,link-speed` code → `ibm,link-speed` bits per second (reference section 2). */
const LINK_SPEED_BPS: Record<number, bigint> = {
  3: 20_000_000_000n,
  8: 25_781_250_000n,
  9: 25_000_000_000n,
};

interface Builder {
  readonly fdt: Fdt;
  readonly options: WitherspoonOptions;
  readonly pci: GeneratedPci[];
  nextPhandle: number;
  /** skiboot's npu2_create_memory_dn counter: 255, 254, … */
  nextMemoryChipId: number;
}

function assignPhandle(b: Builder, node: FdtNode): number {
  const p = b.nextPhandle++;
  node.setProperty('phandle', cells.u32(p));
  return p;
}

/**
 * The device tree of a Witherspoon with the given options (defaults: 6 GPUs, 16 GiB, link
 * speed 0x8, 4T down) and faults.
 * @throws WitherspoonOptionError for options it cannot build, or a fault that matches nothing.
 */
export function generateWitherspoon(input: Partial<WitherspoonOptions> = {}): Fdt {
  const options = resolveWitherspoonOptions(input);
  const b: Builder = {
    fdt: new Fdt(undefined, 'generated'),
    options,
    pci: [],
    nextPhandle: 1,
    nextMemoryChipId: 255,
  };
  const root = b.fdt.root;
  root.setProperty('#address-cells', cells.u32(2));
  root.setProperty('#size-cells', cells.u32(2));
  root.setProperty('compatible', cells.strings('ibm,witherspoon', 'ibm,powernv'));
  root.setProperty('model', cells.string(options.gpus === 6 ? '8335-GTW' : '8335-GTH'));
  const topo = socketTopology(options.gpus);
  const npus = WITHERSPOON_CHIPS.map((chip) => addXscomAndNpu(b, chip, topo));
  const npuPhbs = WITHERSPOON_CHIPS.map((chip, socket) => addNpuPhb(b, chip, npus[socket]!, topo));
  const gpus = WITHERSPOON_CHIPS.map((chip, socket) =>
    Array.from({ length: topo.gpusPerSocket }, (_, group) => addGpuPhb(b, chip, socket, group)),
  );
  WITHERSPOON_CHIPS.forEach((chip, socket) => {
    fixupBridges(b, chip, socket, topo, npuPhbs[socket]!, npus[socket]!.links, gpus[socket]!);
    addNvlinkPeers(topo, gpus[socket]!, npuPhbs[socket]!.bridges);
  });
  nameFunctions(b);
  applyWitherspoonFaults(b.fdt, options, b.pci);
  b.fdt.invalidatePhandles();
  return b.fdt;
}

interface NpuNodes {
  readonly npu: FdtNode;
  readonly links: FdtNode[];
}

/**
 * `/xscom@…` with its `npu@5011000` and `link@N` children (hdata/spira.c add_npu: the npu node
 * has #address-cells 1, #size-cells 0, each link a `reg` of its index, so dtc's
 * unit_address_vs_reg check passes).
 */
function addXscomAndNpu(b: Builder, chip: number, topo: SocketTopology): NpuNodes {
  const xscomBase = onChip(XSCOM_BASE, chip);
  const xscom = b.fdt.root.addChild(`xscom@${hexDigits(xscomBase)}`);
  xscom.setProperty('ibm,chip-id', cells.u32(chip));
  xscom.setProperty('compatible', cells.strings('ibm,xscom', 'ibm,power9-xscom'));
  xscom.setProperty('#address-cells', cells.u32(1));
  xscom.setProperty('#size-cells', cells.u32(1));
  xscom.setProperty('reg', cells.u64(xscomBase, XSCOM_SIZE));
  const npu = xscom.addChild('npu@5011000');
  npu.setProperty('compatible', cells.string('ibm,power9-npu'));
  npu.setProperty('reg', cells.u32(0x5011000, 0x2c));
  npu.setProperty('ibm,npu-index', cells.u32(0));
  npu.setProperty('ibm,npu-links', cells.u32(6));
  npu.setProperty('#address-cells', cells.u32(1));
  npu.setProperty('#size-cells', cells.u32(0));
  assignPhandle(b, npu);
  const links = topo.brickGroup.map((group, index) => {
    const link = npu.addChild(`link@${index}`);
    link.setProperty('compatible', cells.string('ibm,npu-link'));
    link.setProperty('reg', cells.u32(index));
    link.setProperty('ibm,npu-link-index', cells.u32(index));
    link.setProperty('ibm,npu-group-id', cells.u32(group));
    link.setProperty('ibm,slot-label', cells.string(slotLabel(chip === 0 ? 0 : 1, group)));
    link.setProperty('ibm,npu-link-type', cells.string('nvlink'));
    link.setProperty(
      'ibm,npu-phy',
      cells.u64(index < 3 ? 0x8000000005011c3fn : 0x8000000005011c7fn),
    );
    link.setProperty('ibm,npu-lane-mask', cells.u32(index % 2 === 0 ? 0xf1e000 : 0x00e0f0));
    const speed = b.options.linkSpeed;
    if (speed !== undefined) {
      link.setProperty('nvidia,link-speed', cells.u32(speed));
      link.setProperty('ibm,link-speed', cells.u64(LINK_SPEED_BPS[speed] ?? 0n));
    }
    assignPhandle(b, link);
    return link;
  });
  return { npu, links };
}

interface NpuPhb {
  readonly node: FdtNode;
  /** Bridge nodes by link (brick) index. */
  readonly bridges: FdtNode[];
}

/** The NPU PHB and its emulated bridges (hw/npu2.c npu2_nvlink_init_npu, npu2_nvlink_create_phb). */
function addNpuPhb(b: Builder, chip: number, npu: NpuNodes, topo: SocketTopology): NpuPhb {
  const regs = npuRegsBase(chip);
  const node = b.fdt.root.addChild(`pciex@${hexDigits(regs)}`);
  node.setProperty('compatible', cells.strings('ibm,power9-npu-pciex', 'ibm,ioda2-npu2-phb'));
  node.setProperty('device_type', cells.string('pciex'));
  node.setProperty('reg', cells.u64(regs, NPU_REGS_SIZE));
  node.setProperty('ibm,phb-index', cells.u32(NPU_PHB_INDEX));
  node.setProperty('ibm,npu-index', cells.u32(0));
  node.setProperty('ibm,chip-id', cells.u32(chip));
  node.setProperty('ibm,xscom-base', cells.u32(0x5011000));
  node.setProperty('ibm,npcq', cells.u32(readPhandle(npu.npu)));
  node.setProperty('ibm,links', cells.u32(npu.links.length));
  const window = { base: onChip(NPU_MMIO_WINDOW.base, chip), size: NPU_MMIO_WINDOW.size };
  node.setProperty('ibm,mmio-window', cells.u64(window.base, window.size));
  node.setProperty('#address-cells', cells.u32(3));
  node.setProperty('#size-cells', cells.u32(2));
  node.setProperty('bus-range', cells.u32(0, 0xff));
  node.setProperty(
    'ibm,mmio-atsd',
    cells.u64(...Array.from({ length: ATSD_COUNT }, (_, n) => atsdAddress(chip, n))),
  );
  node.setProperty(
    'ranges',
    phbRanges([{ pci: window.base, cpu: window.base, size: window.size }]),
  );
  if (b.options.linuxPciDomain) {
    node.setProperty('linux,pci-domain', cells.u32(chip * PHB4_PER_CHIP + NPU_PHB_INDEX));
  }
  assignPhandle(b, node);
  // hw/npu2.c npu_allocate_bdfn: GPU group k's n-th link is devfn (k << 3) + n.
  const perGroup = new Map<number, number>();
  const bridges = topo.brickGroup.map((group) => {
    const n = perGroup.get(group) ?? 0;
    perGroup.set(group, n + 1);
    const devfn = (group << 3) + n;
    const bridge = addPciFunctionNode(node, 0, devfn, {
      vendor: PCI_VENDOR_ID_IBM,
      device: PCI_DEVICE_ID_IBM_NPU2_NVLINK,
      classCode: CLASS_CODE_NPU2_BRIDGE,
      revision: 0,
    });
    assignPhandle(b, bridge);
    b.pci.push({ phb: node, node: bridge, bus: 0, devfn, name: '' });
    return bridge;
  });
  return { node, bridges };
}

/**
 * A PHB4 with a root port (00:00.0) and the GPU behind it (core/pci.c). The GPU's bus is
 * 1 + its index on the socket: skiboot's XTS BDF→LPID table (hw/npu2.c npu2_map_lpar) keys on
 * the 16-bit BDF alone, so the GPUs behind one NPU must not share a BDF, as on real machines.
 */
function addGpuPhb(b: Builder, chip: number, socket: number, group: number): FdtNode {
  const { options } = b;
  const regs = onChip(PHB4_REG_BASE + BigInt(group) * PHB4_REG_SIZE, chip);
  const phb = b.fdt.root.addChild(`pciex@${hexDigits(regs)}`);
  phb.setProperty('compatible', cells.strings('ibm,power9-pciex', 'ibm,ioda3-phb'));
  phb.setProperty('device_type', cells.string('pciex'));
  phb.setProperty('reg', cells.u64(regs, PHB4_REG_SIZE));
  phb.setProperty('ibm,phb-index', cells.u32(group));
  phb.setProperty('ibm,chip-id', cells.u32(chip));
  phb.setProperty('#address-cells', cells.u32(3));
  phb.setProperty('#size-cells', cells.u32(2));
  phb.setProperty('bus-range', cells.u32(0, 0xff));
  const m32 = onChip(PHB4_MMIO32_BASE + BigInt(group) * PHB4_MMIO32_SIZE, chip);
  const m64 = onChip(PHB4_MMIO64_BASE + BigInt(group) * PHB4_MMIO64_SIZE, chip);
  phb.setProperty(
    'ranges',
    phbRanges([
      { pci: 0x8000_0000n, cpu: m32, size: PHB4_MMIO32_SIZE - 0x1_0000n },
      { pci: m64, cpu: m64, size: PHB4_MMIO64_SIZE },
    ]),
  );
  if (options.linuxPciDomain)
    phb.setProperty('linux,pci-domain', cells.u32(chip * PHB4_PER_CHIP + group));
  assignPhandle(b, phb);
  const label = slotLabel(socket, group);
  const port = addPciFunctionNode(phb, 0, 0, {
    vendor: PCI_VENDOR_ID_IBM,
    device: PCI_DEVICE_ID_IBM_PHB4_ROOT_PORT,
    classCode: CLASS_CODE_PCI_BRIDGE,
    revision: 0,
  });
  const gpuBus = 1 + group;
  makeBridgeNode(port, gpuBus, gpuBus);
  port.setProperty('ibm,slot-location-code', cells.string(label));
  port.setProperty('ibm,loc-code', cells.string(label));
  assignPhandle(b, port);
  b.pci.push({ phb, node: port, bus: 0, devfn: 0, name: '' });
  const p100 = options.p100 !== false;
  const gpu = addPciFunctionNode(port, gpuBus, 0, {
    vendor: PCI_VENDOR_ID_NVIDIA,
    device: p100
      ? PCI_DEVICE_ID_NVIDIA_P100_SXM2
      : options.gpuRamGiB === 32
        ? PCI_DEVICE_ID_NVIDIA_V100_SXM2_32GB
        : PCI_DEVICE_ID_NVIDIA_V100_SXM2_16GB,
    classCode: CLASS_CODE_3D_CONTROLLER,
    revision: 0xa1,
    subsystemVendor: PCI_VENDOR_ID_NVIDIA,
    subsystemDevice: p100
      ? PCI_SUBSYSTEM_ID_NVIDIA_P100_SXM2
      : options.gpuRamGiB === 32
        ? PCI_SUBSYSTEM_ID_NVIDIA_V100_SXM2_32GB
        : PCI_SUBSYSTEM_ID_NVIDIA_V100_SXM2_16GB,
  });
  gpu.setProperty('ibm,loc-code', cells.string(label));
  assignPhandle(b, gpu);
  b.pci.push({ phb, node: gpu, bus: gpuBus, devfn: 0, name: '' });
  return gpu;
}

/** The phandle the builder gave `node`. @throws FdtPropertyError when it has none (a bug here) */
function readPhandle(node: FdtNode): number {
  return readU32(node, 'phandle');
}

/** `memory@…` for a GPU aperture, reused by every bridge of that GPU (hw/npu2.c npu2_create_memory_dn). */
function memoryNode(b: Builder, base: bigint): FdtNode {
  const name = `memory@${hexDigits(base)}`;
  const existing = b.fdt.root.getChild(name);
  if (existing) return existing;
  const mem = b.fdt.root.addChild(name);
  const chipId = b.nextMemoryChipId--;
  mem.setProperty('device_type', cells.string('memory'));
  mem.setProperty('compatible', cells.string('ibm,coherent-device-memory'));
  mem.setProperty('reg', cells.u64(base, GPU_APERTURE_SIZE));
  mem.setProperty('ibm,chip-id', cells.u32(chipId));
  mem.setProperty('linux,usable-memory', cells.u64(base, 0n));
  mem.setProperty('ibm,associativity', cells.u32(4, chipId, chipId, chipId, chipId));
  assignPhandle(b, mem);
  return mem;
}

/** hw/npu2.c npu2_dn_fixup for every bridge of the chip, in bdfn order. */
function fixupBridges(
  b: Builder,
  chip: number,
  socket: number,
  topo: SocketTopology,
  phb: NpuPhb,
  links: readonly FdtNode[],
  gpus: readonly FdtNode[],
): void {
  const order = phb.bridges
    .map((bridge, brick) => ({ bridge, brick }))
    .sort((x, y) => devfnOf(x.bridge) - devfnOf(y.bridge));
  for (const { bridge, brick } of order) {
    const group = topo.brickGroup[brick]!;
    const base = gpuMemoryBase(b.options.memoryMap, chip, group);
    bridge.setProperty('memory-region', cells.u32(readPhandle(memoryNode(b, base))));
    bridge.setProperty('ibm,device-tgt-addr', cells.u64(tgtFromSystemAddress(base)));
    bridge.setProperty('ibm,nvlink', cells.u32(readPhandle(links[brick]!)));
    if (b.options.linkSpeed !== undefined)
      bridge.setProperty('ibm,nvlink-speed', cells.u32(b.options.linkSpeed));
    bridge.setProperty('ibm,loc-code', cells.string(slotLabel(socket, group)));
    const gpu = gpus[group]!;
    const npuProp = gpu.getProperty('ibm,npu');
    const phandle = cells.u32(readPhandle(bridge));
    gpu.setProperty('ibm,npu', npuProp ? cells.concat(npuProp.value, phandle) : phandle);
    bridge.setProperty('ibm,gpu', cells.u32(readPhandle(gpu)));
  }
}

function devfnOf(node: FdtNode): number {
  // Open Firmware PCI binding: phys.hi = bus << 16 | devfn << 8
  return node.hasProperty('reg') ? (readU32(node, 'reg') >> 8) & 0xff : 0;
}

/** witherspoon.c npu2_phb_nvlink_dt: each GPU's six link peers as phandles. */
function addNvlinkPeers(
  topo: SocketTopology,
  gpus: readonly FdtNode[],
  bridges: readonly FdtNode[],
): void {
  topo.peers.forEach((peers, group) => {
    const values = peers.map((p) =>
      readPhandle(p.kind === 'gpu' ? gpus[p.gpu]! : bridges[p.brick]!),
    );
    gpus[group]!.setProperty('ibm,nvlink-peers', cells.u32(...values));
  });
}

/** PCI names with the domain rule (linux,pci-domain, else PHB position in tree order). */
function nameFunctions(b: Builder): void {
  const phbs = b.fdt.root.children.filter((c) => c.baseName === 'pciex');
  for (const f of b.pci) {
    const domain = f.phb.hasProperty('linux,pci-domain')
      ? readU32(f.phb, 'linux,pci-domain')
      : phbs.indexOf(f.phb);
    f.name = formatPciName(domain, f.bus, f.devfn);
  }
}

/** "DDDD:BB:DD.F", the kernel's pci_name(). */
export function formatPciName(domain: number, bus: number, devfn: number): string {
  return pciName({ domain, bus, device: devfn >> 3, fn: devfn & 7 });
}
