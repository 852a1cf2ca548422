/**
 * The config-space profiles of the functions the NVLink2 variant drives. The V100 SXM2 follows
 * a real board's `lspci -vvv` (PM @0x60, MSI @0x68 1 vector 64-bit, Express v2 @0x78,
 * vendor-specific @0xb4, MSI-X @0xc8 with 6 vectors in BAR0; BAR0 16 MiB 32-bit, BAR1 16/32 GiB
 * 64-bit prefetchable, BAR3 32 MiB 64-bit prefetchable); the P100 SXM2 has the same layout.
 * The NVLink bridge follows skiboot's emulated NPU2 device (hw/npu2.c npu2_populate_cfg /
 * npu2_populate_pcie_cap / npu2_populate_vendor_cap): 256-byte config space, header 0x80,
 * BAR0/1 the 64-bit NTL BAR (128 KiB), BAR2/3 the 64-bit GENID BAR (64 KiB per brick),
 * Express @0x40, vendor cap @0x80 with the link index, INTA. Model names as pci.ids has them.
 */

import type { Host, PciFunction } from '../platform/index.ts';
import {
  PCI_DEVICE_ID_IBM_NPU2_NVLINK,
  PCI_DEVICE_ID_NVIDIA_P100_SXM2,
  PCI_DEVICE_ID_NVIDIA_V100_SXM2_16GB,
  PCI_DEVICE_ID_NVIDIA_V100_SXM2_32GB,
  PCI_VENDOR_ID_IBM,
  PCI_VENDOR_ID_NVIDIA,
} from '../platform/index.ts';
import {
  type DeviceProfile,
  ENDPOINT_COMMAND_BITS,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
} from '../vfio/index.ts';

const GiB = 1n << 30n;
const MiB = 1n << 20n;
const KiB = 1n << 10n;

/** NV_PMC_BOOT_0 (BAR0 + 0): architecture, implementation, revision. */
export const NV_PMC_BOOT_0 = 0x0;

interface GpuModel {
  readonly device: number;
  readonly model: string;
  readonly bar1: bigint;
  /** NV_PMC_BOOT_0: GV100 0x140000a1, GP100 0x130000a1. */
  readonly boot0: number;
}

const GPU_MODELS: readonly GpuModel[] = [
  {
    device: PCI_DEVICE_ID_NVIDIA_V100_SXM2_16GB,
    model: 'Tesla V100 SXM2 16GB',
    bar1: 16n * GiB,
    boot0: 0x140000a1,
  },
  {
    device: PCI_DEVICE_ID_NVIDIA_V100_SXM2_32GB,
    model: 'Tesla V100 SXM2 32GB',
    bar1: 32n * GiB,
    boot0: 0x140000a1,
  },
  {
    device: PCI_DEVICE_ID_NVIDIA_P100_SXM2,
    model: 'Tesla P100 SXM2 16GB',
    bar1: 16n * GiB,
    boot0: 0x130000a1,
  },
];

const BRIDGE_MODEL = 'NPU2 NVLink bridge';

function isBridge(vendor: number, device: number): boolean {
  return vendor === PCI_VENDOR_ID_IBM && device === PCI_DEVICE_ID_IBM_NPU2_NVLINK;
}

function gpuModel(vendor: number, device: number): GpuModel | undefined {
  return vendor === PCI_VENDOR_ID_NVIDIA ? GPU_MODELS.find((m) => m.device === device) : undefined;
}

/** The pci.ids name of an NVLink2 GPU or bridge, or undefined for other ids. */
export function nvlink2ModelName(vendor: number, device: number): string | undefined {
  return isBridge(vendor, device) ? BRIDGE_MODEL : gpuModel(vendor, device)?.model;
}

function gpuProfile(m: GpuModel): DeviceProfile {
  return {
    model: m.model,
    registers: [{ bar: 0, offset: NV_PMC_BOOT_0, value: m.boot0, readOnly: true }],
    configSize: PCI_CFG_SPACE_EXP_SIZE,
    headerType: 0x00,
    interruptPin: 1,
    commandWritable: ENDPOINT_COMMAND_BITS,
    bars: [
      { index: 0, size: 16n * MiB, kind: 'mem32', prefetchable: false },
      { index: 1, size: m.bar1, kind: 'mem64', prefetchable: true },
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

function bridgeProfile(linkIndex: number): DeviceProfile {
  return {
    model: BRIDGE_MODEL,
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

/**
 * The profile of an NVLink2 GPU or bridge of `host`, or undefined for other functions (they
 * keep the core's generic profile). A bridge shows its `ibm,npu-link-index`
 * (Host.nvlinkOfBridge; 0 when unreadable) in its vendor capability.
 */
export function nvlink2Profile(fn: PciFunction, host: Host): DeviceProfile | undefined {
  if (isBridge(fn.vendor, fn.device)) return bridgeProfile(host.nvlinkOfBridge(fn).linkIndex ?? 0);
  const gpu = gpuModel(fn.vendor, fn.device);
  return gpu ? gpuProfile(gpu) : undefined;
}
