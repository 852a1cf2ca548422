/**
 * What each emulated PCI function looks like in config space: BAR sizes and types, the
 * capability chain, config-space size. The V100 SXM2 follows a real board's `lspci -vvv`
 * (PM @0x60, MSI @0x68 1 vector 64-bit, Express v2 @0x78, vendor-specific @0xb4, MSI-X @0xc8
 * with 6 vectors in BAR0; BAR0 16 MiB 32-bit, BAR1 16/32 GiB 64-bit prefetchable, BAR3 32 MiB
 * 64-bit prefetchable). The NVLink bridge follows skiboot's emulated NPU2 device
 * (hw/npu2.c npu2_populate_cfg / npu2_populate_pcie_cap / npu2_populate_vendor_cap):
 * 256-byte config space, header 0x80, BAR0/1 the 64-bit NTL BAR (128 KiB), BAR2/3 the 64-bit
 * GENID BAR (64 KiB per brick), Express @0x40, vendor cap @0x80 with the link index, INTA.
 */
import type { PciFunction } from '../platform/types.ts';
import { hexDigits } from '../text/index.ts';
import type { ExpLayout, MsiLayout, MsixLayout } from './capabilities-pci.ts';
import type { BarLayout } from './config-space.ts';
import { PCI_CFG_SPACE_EXP_SIZE, PCI_CFG_SPACE_SIZE } from './pci-regs.ts';

export type CapabilitySpec =
  | { readonly kind: 'pm'; readonly at: number }
  | { readonly kind: 'msi'; readonly at: number; readonly layout: MsiLayout }
  | { readonly kind: 'exp'; readonly at: number; readonly layout: ExpLayout }
  | { readonly kind: 'msix'; readonly at: number; readonly layout: MsixLayout }
  | { readonly kind: 'vendor'; readonly at: number; readonly body: readonly number[] };

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
  /** 32-bit little-endian registers preset in BAR memory (e.g. NV_PMC_BOOT_0 at BAR0 + 0). */
  readonly registers: readonly {
    readonly bar: number;
    readonly offset: number;
    readonly value: number;
  }[];
}

const GiB = 1n << 30n;
const MiB = 1n << 20n;
const KiB = 1n << 10n;

/** PCI ids (reference §1, pci.ids). */
export const PCI_VENDOR_ID_NVIDIA = 0x10de;
export const PCI_VENDOR_ID_IBM = 0x1014;
export const PCI_DEVICE_ID_V100_SXM2_16GB = 0x1db1;
export const PCI_DEVICE_ID_V100_SXM2_32GB = 0x1db5;
export const PCI_DEVICE_ID_P100_SXM2 = 0x15f9;
export const PCI_DEVICE_ID_NPU2_NVLINK = 0x04ea;

/** IO | MEMORY | MASTER | PARITY | SERR | INTX_DISABLE. */
const COMMAND_ENDPOINT = 0x547;

/** NV_PMC_BOOT_0 (BAR0 + 0): architecture, implementation, revision; GV100 0x140000a1, GP100 0x130000a1. */
export const NV_PMC_BOOT_0 = 0x0;

function nvidiaGpuProfile(model: string, bar1: bigint, boot0: number): DeviceProfile {
  return {
    model,
    registers: [{ bar: 0, offset: NV_PMC_BOOT_0, value: boot0 }],
    configSize: PCI_CFG_SPACE_EXP_SIZE,
    headerType: 0x00,
    interruptPin: 1,
    commandWritable: COMMAND_ENDPOINT,
    bars: [
      { index: 0, size: 16n * MiB, kind: 'mem32', prefetchable: false },
      { index: 1, size: bar1, kind: 'mem64', prefetchable: true },
      { index: 3, size: 32n * MiB, kind: 'mem64', prefetchable: true },
    ],
    capabilities: [
      { kind: 'pm', at: 0x60 },
      { kind: 'msi', at: 0x68, layout: { vectors: 1, is64: true, maskable: false } },
      { kind: 'exp', at: 0x78, layout: { linkSpeed: 3, linkWidth: 16, flr: true } },
      { kind: 'vendor', at: 0xb4, body: new Array<number>(0x14 - 3).fill(0) },
      {
        kind: 'msix',
        at: 0xc8,
        layout: {
          tableSize: 6,
          tableBar: 0,
          tableOffset: 0xb90000,
          pbaBar: 0,
          pbaOffset: 0xba0000,
        },
      },
    ],
  };
}

/** skiboot hw/npu2.c npu2_populate_vendor_cap(): version 1, procedure trap, link index at +0xc. */
function npu2VendorBody(linkIndex: number): number[] {
  const body = new Array<number>(0x10 - 3).fill(0);
  body[0] = 0x01; // VENDOR_CAP_VERSION
  body[0x0c - 3] = linkIndex & 0xff;
  return body;
}

function npu2BridgeProfile(linkIndex: number): DeviceProfile {
  return {
    model: 'NPU2 NVLink bridge',
    registers: [],
    // skiboot pci_virt_add_device(..., 0x100, ...): no extended space
    configSize: PCI_CFG_SPACE_SIZE,
    headerType: 0x80,
    interruptPin: 1,
    // npu2_populate_cfg: PCI_VIRT_CFG_INIT(PCI_CFG_CMD, 4, 0x00100000, ro 0xffb802b8, w1c 0xf9000000)
    commandWritable: ~0x02b8 & 0xffff,
    bars: [
      // NTL BAR: 0x10000 << NPU2_NTL_BAR_SIZE(1); GENID: 0x10000 per brick
      { index: 0, size: 128n * KiB, kind: 'mem64', prefetchable: false },
      { index: 2, size: 64n * KiB, kind: 'mem64', prefetchable: false },
    ],
    capabilities: [
      { kind: 'exp', at: 0x40, layout: { linkSpeed: 2, linkWidth: 1, flr: true } },
      { kind: 'vendor', at: 0x80, body: npu2VendorBody(linkIndex) },
    ],
  };
}

function genericProfile(fn: PciFunction): DeviceProfile {
  return {
    registers: [],
    model: `PCI device ${hexDigits(fn.vendor, 4)}:${hexDigits(fn.device, 4)}`,
    configSize: PCI_CFG_SPACE_EXP_SIZE,
    headerType: 0x00,
    interruptPin: 1,
    commandWritable: COMMAND_ENDPOINT,
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

/**
 * Pick the layout for a function by its PCI ids; `linkIndex` is an NVLink bridge's
 * `ibm,npu-link-index` (Host.nvlinkOfBridge), shown in its vendor capability.
 */
export function profileFor(fn: PciFunction, linkIndex = 0): DeviceProfile {
  if (fn.vendor === PCI_VENDOR_ID_NVIDIA) {
    if (fn.device === PCI_DEVICE_ID_V100_SXM2_16GB)
      return nvidiaGpuProfile('Tesla V100 SXM2 16GB', 16n * GiB, 0x140000a1);
    if (fn.device === PCI_DEVICE_ID_V100_SXM2_32GB)
      return nvidiaGpuProfile('Tesla V100 SXM2 32GB', 32n * GiB, 0x140000a1);
    if (fn.device === PCI_DEVICE_ID_P100_SXM2)
      return nvidiaGpuProfile('Tesla P100 SXM2 16GB', 16n * GiB, 0x130000a1);
  }
  if (fn.vendor === PCI_VENDOR_ID_IBM && fn.device === PCI_DEVICE_ID_NPU2_NVLINK) {
    return npu2BridgeProfile(linkIndex);
  }
  return genericProfile(fn);
}
