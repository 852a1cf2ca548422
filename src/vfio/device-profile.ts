/**
 * What an emulated PCI function looks like in config space: BAR sizes and types, the
 * capability chain, config-space size, registers preset in BAR memory. A variant supplies the
 * profiles of the functions it drives (VfioPciVariant.profile); every other function gets the
 * core's generic endpoint below.
 */
import type { PciFunction } from '../platform/index.ts';
import { hexDigits } from '../text/index.ts';
import type { ExpLayout, MsiLayout, MsixLayout } from './capabilities-pci.ts';
import type { BarLayout } from './config-space.ts';
import { PCI_CFG_SPACE_EXP_SIZE } from './pci-regs.ts';

/** One PCI capability of a profile and its config-space offset. */
export type CapabilitySpec =
  | { readonly kind: 'pm'; readonly at: number }
  | { readonly kind: 'msi'; readonly at: number; readonly layout: MsiLayout }
  | { readonly kind: 'exp'; readonly at: number; readonly layout: ExpLayout }
  | { readonly kind: 'msix'; readonly at: number; readonly layout: MsixLayout }
  | { readonly kind: 'vendor'; readonly at: number; readonly body: readonly number[] };

/**
 * An extended capability (offset ≥ 0x100) the function carries read-only, as vfio_pci_config.c
 * passes through one it has no permission bits for: its id, version and the bytes after the
 * 4-byte header (a DVSEC's headers 1 and 2 and its registers, say). The builder chains them
 * in order, the first at 0x100.
 */
export interface ExtendedCapabilitySpec {
  readonly at: number;
  readonly id: number;
  readonly version: number;
  readonly body: readonly number[];
}

/**
 * What a device is before any variant runs: model name, IDs, config-space size, BARs, capabilities
 * and IRQ counts.
 */
export interface DeviceProfile {
  /** A human name, e.g. "Tesla V100 SXM2 16GB". */
  readonly model: string;
  /** pdev->cfg_size: 4096 for a PCIe function with extended space, 256 otherwise. */
  readonly configSize: number;
  readonly headerType: number;
  readonly interruptPin: number;
  /** PCI_COMMAND bits the function implements (others read back 0). */
  readonly commandWritable: number;
  readonly bars: readonly BarLayout[];
  readonly capabilities: readonly CapabilitySpec[];
  /** Extended capabilities in chain order (none when absent). */
  readonly extendedCapabilities?: readonly ExtendedCapabilitySpec[];
  /**
   * 32-bit little-endian registers preset in BAR memory (e.g. NV_PMC_BOOT_0 at BAR0 + 0), set
   * again at reset; their pages are register pages (never mapped by a VMM). `readOnly`: an ID
   * register, which writes leave alone.
   */
  readonly registers: readonly {
    readonly bar: number;
    readonly offset: number;
    readonly value: number;
    readonly readOnly?: boolean;
  }[];
}

const MiB = 1n << 20n;

/** PCI_COMMAND bits of an endpoint: IO | MEMORY | MASTER | PARITY | SERR | INTX_DISABLE. */
export const ENDPOINT_COMMAND_BITS = 0x547;

/** The core's profile for a function no variant describes: a plain PCIe endpoint. */
export function genericProfile(fn: PciFunction): DeviceProfile {
  return {
    registers: [],
    model: `PCI device ${hexDigits(fn.vendor, 4)}:${hexDigits(fn.device, 4)}`,
    configSize: PCI_CFG_SPACE_EXP_SIZE,
    headerType: 0x00,
    interruptPin: 1,
    commandWritable: ENDPOINT_COMMAND_BITS,
    bars: [{ index: 0, size: 1n * MiB, kind: 'mem64', prefetchable: false }],
    capabilities: [
      { kind: 'pm', at: 0x40 },
      { kind: 'msi', at: 0x48, layout: { vectors: 8, is64: true, maskable: true } },
      { kind: 'exp', at: 0x60, layout: { linkSpeed: 3, linkWidth: 8, flr: true } },
      {
        kind: 'msix',
        at: 0xa0,
        layout: { tableSize: 16, tableBar: 0, tableOffset: 0x80000, pbaBar: 0, pbaOffset: 0x90000 },
      },
    ],
  };
}
