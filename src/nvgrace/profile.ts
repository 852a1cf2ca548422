/**
 * The Grace GPUs nvgrace-gpu drives (its pci_device_id table, drivers/vfio/pci/nvgrace-gpu/
 * main.c:960-972 nvgrace_gpu_vfio_pci_table: GH200 120GB/480GB/SKU, GB200 SKU, GB300 SKU) and their
 * config-space profiles. What the driver reads of them is modelled faithfully: BAR0 holds the
 * readiness registers at 0x1498 (C2C link) and 0x200BC (HBM training), Blackwell parts carry
 * NVIDIA's GPU-capability DVSEC (id 3) with MIG_SUPPORTED_WITH_CACHED_RESMEM set, and Grace
 * Blackwell's physical 64-bit BAR1 sits at BAR2/3 (the 6.14 change). The rest — capability
 * offsets, the BAR1 size, NV_PMC_BOOT_0 — is this emulation's choice, not read from hardware.
 *
 * Emulated hardware state a tree may set on the GPU's node (absent: a healthy part):
 * `vfio-nvlink2,c2c-link-status` and `vfio-nvlink2,hbm-training-status` (u32, the registers'
 * values; ready is 0xff), `vfio-nvlink2,mig-dvsec` (u32: 0 a DVSEC saying the bug is there,
 * 1 one saying it is fixed, 2 no DVSEC).
 */
import { readU32, tryRead } from '../fdt/index.ts';
import type { PciFunction } from '../platform/index.ts';
import {
  C2C_LINK_STATUS_PROP,
  HBM_TRAINING_STATUS_PROP,
  MIG_DVSEC_PROP,
  MigDvsec,
  PCI_DEVICE_ID_NVIDIA_GB200,
  PCI_DEVICE_ID_NVIDIA_GB300,
  PCI_DEVICE_ID_NVIDIA_GH200,
  PCI_DEVICE_ID_NVIDIA_GH200_120GB,
  PCI_DEVICE_ID_NVIDIA_GH200_480GB,
  PCI_VENDOR_ID_NVIDIA,
} from '../platform/index.ts';
import {
  type DeviceProfile,
  ENDPOINT_COMMAND_BITS,
  type ExtendedCapabilitySpec,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_EXT_CAP_ID_DVSEC,
} from '../vfio/index.ts';
import { gpuCapDvsecBody } from './mig-dvsec.ts';
import { C2C_LINK_BAR0_OFFSET, HBM_TRAINING_BAR0_OFFSET, STATUS_READY } from './readiness.ts';

const MiB = 1n << 20n;

/** The GPU generation of a Grace superchip: Hopper (GH200) or Blackwell (GB200, GB300). */
export type GraceGeneration = 'hopper' | 'blackwell';

/** An entry of nvgrace_gpu_vfio_pci_table: PCI device id, model name and generation. */
export interface GraceGpuModel {
  readonly device: number;
  readonly model: string;
  readonly generation: GraceGeneration;
}

/** nvgrace_gpu_vfio_pci_table, in its order. */
export const GRACE_GPU_MODELS: readonly GraceGpuModel[] = [
  { device: PCI_DEVICE_ID_NVIDIA_GH200_120GB, model: 'GH200 120GB', generation: 'hopper' },
  { device: PCI_DEVICE_ID_NVIDIA_GH200_480GB, model: 'GH200 480GB', generation: 'hopper' },
  { device: PCI_DEVICE_ID_NVIDIA_GH200, model: 'GH200', generation: 'hopper' },
  { device: PCI_DEVICE_ID_NVIDIA_GB200, model: 'GB200', generation: 'blackwell' },
  { device: PCI_DEVICE_ID_NVIDIA_GB300, model: 'GB300', generation: 'blackwell' },
];

/** The table entry of `vendor:device`, or undefined when the driver does not list it. */
export function graceGpuModel(vendor: number, device: number): GraceGpuModel | undefined {
  return vendor === PCI_VENDOR_ID_NVIDIA
    ? GRACE_GPU_MODELS.find((m) => m.device === device)
    : undefined;
}

/** The model name ("GH200 480GB", …) of `vendor:device`, or undefined when nvgrace-gpu does not list it. */
export function nvgraceModelName(vendor: number, device: number): string | undefined {
  return graceGpuModel(vendor, device)?.model;
}

/** NV_PMC_BOOT_0 (BAR0 + 0) as this emulation presets it: GH100 0x180000a1, GB100 0x1a0000a1. */
const BOOT0: Record<GraceGeneration, number> = { hopper: 0x180000a1, blackwell: 0x1a0000a1 };
/** Grace Blackwell's physical BAR1 (an emulation choice; served as plain vfio-pci at BAR2/3). */
export const BLACKWELL_BAR1_SIZE = 256n * MiB;
/** Where the DVSEC sits in extended space. */
export const GPU_CAP_DVSEC_AT = 0x100;

/** A hardware-state property's value; absent or unreadable, `fallback` (see hardwareStateProblem). */
function u32Prop(fn: PciFunction, name: string, fallback: number): number {
  const r = tryRead(() => readU32(fn.node, name));
  return r.ok ? r.value : fallback;
}

/**
 * What is wrong with the emulated hardware state on `fn`'s node (a property shorter than a
 * u32), for the probe to fail on; undefined when it is readable or absent.
 */
export function hardwareStateProblem(fn: PciFunction): string | undefined {
  for (const name of [C2C_LINK_STATUS_PROP, HBM_TRAINING_STATUS_PROP, MIG_DVSEC_PROP]) {
    if (!fn.node.hasProperty(name)) continue;
    const r = tryRead(() => readU32(fn.node, name));
    if (!r.ok) return `${fn.node.path}: ${name}: ${r.error.detail} (emulated hardware state)`;
  }
  return undefined;
}

function dvsecOf(fn: PciFunction, m: GraceGpuModel): ExtendedCapabilitySpec[] {
  const byModel = m.generation === 'blackwell' ? MigDvsec.FIXED : MigDvsec.ABSENT;
  const mode = u32Prop(fn, MIG_DVSEC_PROP, byModel);
  if (mode !== MigDvsec.BUG && mode !== MigDvsec.FIXED) return [];
  return [
    {
      at: GPU_CAP_DVSEC_AT,
      id: PCI_EXT_CAP_ID_DVSEC,
      version: 1,
      body: gpuCapDvsecBody(mode === MigDvsec.FIXED),
    },
  ];
}

/** The profile of a GPU the driver lists, or undefined for any other function. */
export function nvgraceProfile(fn: PciFunction): DeviceProfile | undefined {
  const m = graceGpuModel(fn.vendor, fn.device);
  if (!m) return undefined;
  return {
    model: m.model,
    registers: [
      { bar: 0, offset: 0, value: BOOT0[m.generation] },
      {
        bar: 0,
        offset: C2C_LINK_BAR0_OFFSET,
        value: u32Prop(fn, C2C_LINK_STATUS_PROP, STATUS_READY),
      },
      {
        bar: 0,
        offset: HBM_TRAINING_BAR0_OFFSET,
        value: u32Prop(fn, HBM_TRAINING_STATUS_PROP, STATUS_READY),
      },
    ],
    configSize: PCI_CFG_SPACE_EXP_SIZE,
    headerType: 0x00,
    interruptPin: 1,
    commandWritable: ENDPOINT_COMMAND_BITS,
    bars: [
      { index: 0, size: 16n * MiB, kind: 'mem64', prefetchable: false },
      ...(m.generation === 'blackwell'
        ? [{ index: 2, size: BLACKWELL_BAR1_SIZE, kind: 'mem64' as const, prefetchable: true }]
        : []),
    ],
    capabilities: [
      { kind: 'pm', at: 0x60 },
      { kind: 'msi', at: 0x68, layout: { vectors: 1, is64: true, maskable: false } },
      { kind: 'exp', at: 0x78, layout: { linkSpeed: 3, linkWidth: 16, flr: true } },
      {
        kind: 'msix',
        at: 0xb4,
        layout: {
          tableSize: 6,
          tableBar: 0,
          tableOffset: 0xb90000,
          pbaBar: 0,
          pbaOffset: 0xba0000,
        },
      },
    ],
    extendedCapabilities: dvsecOf(fn, m),
  };
}
