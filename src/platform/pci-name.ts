/** A PCI function's name as the kernel prints it (drivers/pci/pci.h pci_name(), "%04x:%02x:%02x.%d"). */
import { hexDigits } from '../text/index.ts';
import type { PciAddress } from './types.ts';

/** "DDDD:BB:DD.F", the kernel's pci_name(). */
export function pciName(a: PciAddress): string {
  return `${hexDigits(a.domain, 4)}:${hexDigits(a.bus, 2)}:${hexDigits(a.device, 2)}.${a.fn}`;
}
