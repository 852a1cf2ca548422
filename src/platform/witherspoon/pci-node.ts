/**
 * PCI function and PHB nodes as skiboot writes them: node name from the class code, `reg`
 * phys.hi = bus << 16 | device << 11 | function << 8 (Open Firmware PCI bus binding, IEEE
 * 1275 PCI supplement), and the standard identification properties.
 * Source: skiboot core/pci.c (pci_add_one_device_node, pci_class_name).
 */
import { cells, type FdtNode } from '../../fdt/index.ts';

/**
 * The IDs a generated PCI node carries (`vendor-id`, `device-id`, `class-code`, `revision-id`,
 * subsystem IDs).
 */
export interface PciIdentity {
  readonly vendor: number;
  readonly device: number;
  readonly classCode: number;
  readonly revision: number;
  readonly subsystemVendor?: number;
  readonly subsystemDevice?: number;
}

/** The OF `reg` phys.hi cell of bus/devfn (config space, register 0). */
export function pciPhysHi(bus: number, devfn: number): number {
  return ((bus & 0xff) << 16) | ((devfn & 0xff) << 8);
}

/** core/pci.c pci_class_name, for the classes a Witherspoon has. */
export function pciClassNodeName(classCode: number): string {
  const cls = classCode >> 16;
  const sub = (classCode >> 8) & 0xff;
  if (cls === 0x03) return sub === 0x00 ? 'vga' : sub === 0x02 ? '3d-controller' : 'display';
  if (cls === 0x06) return sub === 0x00 ? 'host' : sub === 0x04 ? 'pci' : 'unknown-bridge';
  return 'device';
}

/** `name@dev` or `name@dev,fn` (core/pci.c pci_add_one_device_node). */
export function pciUnitName(classCode: number, devfn: number): string {
  const dev = devfn >> 3;
  const fn = devfn & 7;
  const unit = fn === 0 ? dev.toString(16) : `${dev.toString(16)},${fn.toString(16)}`;
  return `${pciClassNodeName(classCode)}@${unit}`;
}

/** Adds a PCI Express function node under `parent` (a PHB or a bridge). */
export function addPciFunctionNode(
  parent: FdtNode,
  bus: number,
  devfn: number,
  id: PciIdentity,
): FdtNode {
  const node = parent.addChild(pciUnitName(id.classCode, devfn));
  node.setProperty(
    'compatible',
    cells.strings(`pciex${id.vendor.toString(16)},${id.device.toString(16)}`),
  );
  node.setProperty('ibm,pci-config-space-type', cells.u32(1));
  node.setProperty('class-code', cells.u32(id.classCode));
  node.setProperty('revision-id', cells.u32(id.revision));
  node.setProperty('vendor-id', cells.u32(id.vendor));
  node.setProperty('device-id', cells.u32(id.device));
  if (id.subsystemVendor !== undefined) {
    node.setProperty('subsystem-vendor-id', cells.u32(id.subsystemVendor));
  }
  if (id.subsystemDevice !== undefined)
    node.setProperty('subsystem-id', cells.u32(id.subsystemDevice));
  node.setProperty('reg', cells.u32(pciPhysHi(bus, devfn), 0, 0, 0, 0));
  return node;
}

/** The bridge properties skiboot adds to a PCI-to-PCI bridge node (core/pci.c). */
export function makeBridgeNode(node: FdtNode, secondary: number, subordinate: number): void {
  node.setProperty('#address-cells', cells.u32(3));
  node.setProperty('#size-cells', cells.u32(2));
  node.setProperty('device_type', cells.string('pciex'));
  node.setProperty('bus-range', cells.u32(secondary, subordinate));
  // core/pci.c: an explicit 1:1 64-bit mapping, since an empty ranges breaks OF translation.
  node.setProperty('ranges', cells.u32(0x02000000, 0, 0, 0x02000000, 0, 0, 0xf0000000, 0));
}

/** `ranges` entries of a PHB: 64-bit non-prefetchable memory, one per window. */
export function phbRanges(
  windows: readonly { pci: bigint; cpu: bigint; size: bigint }[],
): Uint8Array {
  const hi = (v: bigint) => Number(v >> 32n);
  const lo = (v: bigint) => Number(v & 0xffffffffn);
  return cells.u32(
    ...windows.flatMap((w) => [
      0x02000000,
      hi(w.pci),
      lo(w.pci),
      hi(w.cpu),
      lo(w.cpu),
      hi(w.size),
      lo(w.size),
    ]),
  );
}
