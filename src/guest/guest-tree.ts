/**
 * The NVLink2 part of a pseries guest's device tree as QEMU 4.1–8.1 wrote it
 * (hw/ppc/spapr_pci_nvlink2.c spapr_phb_nvgpu_populate_dt, spapr_phb_nvgpu_ram_populate_dt,
 * spapr_phb_nvgpu_populate_pcidev_dt; node names from hw/ppc/spapr_pci.c): per vPHB, the bus
 * node `pci@<buid>` with `ibm,mmio-atsd` and one node per GPU and bridge, a root `npuphb<N>`
 * with a `link@i` per bridge, and a `memory@<gpa>` per GPU RAM. A fragment: besides the
 * NVLink2 properties only `reg` (the bus's, and each device's config-space and BAR entries) and
 * the cell counts are written
 * (no ranges, interrupts, …), and nodes come in devfn/slot order (libfdt's fdt_add_subnode
 * puts QEMU's root nodes in reverse). `link@i` has no `reg`, as in QEMU ("_FDT(… "reg" …)"
 * is commented out there), so dtc warns unit_address_vs_reg for it.
 */
import { cells, Fdt, type FdtNode } from '../fdt/index.ts';
import type { BarFacts } from './device-facts.ts';
import {
  type GuestPlacement,
  gpuAssociativity,
  type PlacedDevice,
  type VphbPlacement,
} from './placement.ts';

/** spapr_pci.c pci_classes[] (base names) with the display and bridge subclasses. */
const CLASS_NAMES = [
  'legacy-device',
  'mass-storage',
  'network',
  'display',
  'multimedia-device',
  'memory-controller',
  'unknown-bridge',
  'communication-controller',
  'system-peripheral',
  'input-controller',
  'docking-station',
  'cpu',
  'serial-bus',
  'wireless-controller',
  'intelligent-io',
  'satellite-device',
  'encryption',
  'data-processing-controller',
];
const SUBCLASS_NAMES: Record<number, readonly string[]> = {
  3: ['vga', 'xga', '3d-controller'],
  6: [
    'host',
    'isa',
    'eisa',
    'mca',
    'pci',
    'pcmcia',
    'nubus',
    'cardbus',
    'raceway',
    'semi-transparent-pci',
    'infiniband',
  ],
};

/** dt_name_from_class for the display and bridge classes; other classes get the base name. */
export function pciNodeBaseName(classCode: number): string {
  const base = (classCode >> 16) & 0xff;
  const sub = (classCode >> 8) & 0xff;
  const name = CLASS_NAMES[base];
  if (name === undefined) return 'pci';
  return SUBCLASS_NAMES[base]?.[sub] ?? name;
}

/** spapr_dt_pci_device: "%s@%x" or "%s@%x,%x" by slot and function. */
export function pciNodeName(classCode: number, devfn: number): string {
  const slot = (devfn >> 3).toString(16);
  const fn = devfn & 7;
  return `${pciNodeBaseName(classCode)}@${fn === 0 ? slot : `${slot},${fn.toString(16)}`}`;
}

/** `pci@<buid>` (spapr_phb_realize: "pci@%" PRIx64). */
export function vphbNodeName(v: VphbPlacement): string {
  return `pci@${v.buid.toString(16)}`;
}

/** PCI_NUM_REGIONS - 1: the ROM's io_regions index (PCI_ROM_SLOT). */
const PCI_ROM_SLOT = 6;

/** pci_bar(): the config register of io_region `index` (PCI_ROM_ADDRESS1 0x38 behind a type-1 header). */
function barRegister(index: number, headerType: number): number {
  if (index !== PCI_ROM_SLOT) return 0x10 + 4 * index;
  return (headerType & 0x7f) === 1 ? 0x38 : 0x30;
}

/**
 * A device's `reg` as QEMU 4.1–8.1 wrote it (hw/ppc/spapr_pci.c populate_resource_props, for a
 * device on the vPHB's root bus 0): the config-space entry {devfn << 8, 0, 0, 0, 0}, then for every
 * io_region with a size, in index order, {phys.hi, 0, 0, size.hi, size.lo} with phys.hi =
 * ss << 24 | devfn << 8 | register, ss = 1 for I/O, 3 for 64-bit memory, 2 otherwise (no
 * prefetch or relocation bits: QEMU leaves n, p, t at 0).
 */
export function pciRegCells(
  devfn: number,
  headerType: number,
  bars: readonly BarFacts[],
): number[] {
  const devId = (devfn & 0xff) << 8; // b_bbbbbbbb(0) | b_ddddd(slot) | b_fff(fn)
  const out = [devId, 0, 0, 0, 0];
  for (const bar of [...bars].sort((a, b) => a.index - b.index)) {
    if (bar.size === 0n) continue;
    const ss = bar.type & 0x1 ? 1 : bar.type & 0x4 ? 3 : 2;
    const hi = ((ss << 24) | devId | barRegister(bar.index, headerType)) >>> 0;
    out.push(hi, 0, 0, Number(bar.size >> 32n), Number(bar.size & 0xffffffffn));
  }
  return out;
}

function addPciNodes(v: VphbPlacement, bus: FdtNode): void {
  const byAddress = new Map<string, PlacedDevice>(v.devices.map((d) => [d.address, d]));
  const nodeFor = (address: string, devfn: number) => {
    const d = byAddress.get(address);
    return bus
      .addChild(pciNodeName(d?.classCode ?? 0, devfn))
      .setProperty('reg', cells.u32(...pciRegCells(devfn, d?.headerType ?? 0, d?.bars ?? [])));
  };
  type Entry = { devfn: number; write: () => void };
  const entries: Entry[] = [];
  for (const slot of v.slots) {
    const gpu = slot.gpu;
    if (!gpu) continue;
    entries.push({
      devfn: gpu.devfn,
      write: () =>
        nodeFor(gpu.address, gpu.devfn)
          .setProperty('ibm,npu', cells.u32(...slot.links.map((l) => l.phandle)))
          .setProperty('phandle', cells.u32(gpu.phandle)),
    });
    for (const l of slot.links) {
      entries.push({
        devfn: l.devfn,
        write: () =>
          nodeFor(l.address, l.devfn)
            .setProperty('phandle', cells.u32(l.phandle))
            .setProperty('ibm,gpu', cells.u32(gpu.phandle))
            .setProperty('ibm,nvlink', cells.u32(l.nvlinkPhandle))
            .setProperty('memory-region', cells.u32(gpu.ramPhandle))
            .setProperty('ibm,device-tgt-addr', cells.u64(slot.tgt))
            .setProperty('ibm,nvlink-speed', cells.u32(l.linkSpeed)),
      });
    }
  }
  for (const e of entries.sort((a, b) => a.devfn - b.devfn)) e.write();
}

function addVphb(v: VphbPlacement, root: FdtNode): void {
  const bus = root.addChild(vphbNodeName(v));
  // spapr_dt_phb: reg = <buid 0>; spapr_dt_pci_bus: RESOURCE_CELLS_ADDRESS 3, RESOURCE_CELLS_SIZE 2.
  bus
    .setProperty('reg', cells.u64(v.buid, 0n))
    .setProperty('#address-cells', cells.u32(3))
    .setProperty('#size-cells', cells.u32(2));
  if (v.mmioAtsd) bus.setProperty('ibm,mmio-atsd', cells.u64(...v.mmioAtsd));
  addPciNodes(v, bus);

  const npu = root.addChild(`npuphb${v.index}`);
  npu
    .setProperty('#address-cells', cells.u32(1))
    .setProperty('#size-cells', cells.u32(0))
    .setProperty('compatible', cells.string('ibm,power9-npu'));
  for (const l of v.slots.flatMap((s) => s.links)) {
    npu
      .addChild(`link@${l.npuLinkIndex}`)
      .setProperty('compatible', cells.string('ibm,npu-link'))
      .setProperty('phandle', cells.u32(l.nvlinkPhandle))
      .setProperty('ibm,npu-link-index', cells.u32(l.npuLinkIndex));
  }

  for (const s of v.slots) {
    const gpu = s.gpu;
    if (!gpu) continue;
    root
      .addChild(`memory@${gpu.gpa.toString(16)}`)
      .setProperty('device_type', cells.string('memory'))
      .setProperty('reg', cells.u64(gpu.gpa, gpu.size))
      .setProperty('ibm,associativity', cells.u32(...gpuAssociativity(gpu.numaId)))
      .setProperty('compatible', cells.string('ibm,coherent-device-memory'))
      .setProperty('linux,usable-memory', cells.u64(gpu.gpa, 0n))
      .setProperty('phandle', cells.u32(gpu.ramPhandle));
  }
}

/** The guest tree fragment of `placement` (vPHBs without NVLink2 GPUs add nothing). */
export function buildGuestTree(placement: GuestPlacement): Fdt {
  const fdt = new Fdt(undefined, 'guest');
  // spapr_build_fdt: the root's #address-cells and #size-cells are 2.
  fdt.root.setProperty('#address-cells', cells.u32(2)).setProperty('#size-cells', cells.u32(2));
  for (const v of placement.vphbs) if (v.slots.length > 0) addVphb(v, fdt.root);
  return fdt;
}
