/**
 * Builds the device tree of a Grace machine as nvgrace-gpu sees it: per superchip one PCIe
 * host bridge (`pcie@…`, pci-host-ecam-generic, its own `linux,pci-domain`) with the GPU at
 * bus 1, device 0, carrying the two device properties the driver reads
 * (properties.ts; on real machines they come from ACPI _DSD). Grace Hopper GPUs are GH200
 * (10de:2342), Grace Blackwell GB200 (10de:2941). Domains (0x9, 0x19, …), addresses and the
 * CPU memory are this emulator's choices; the root port in front of the GPU is left out.
 * Faults (options.ts) change exactly what they name.
 */
import { cells, Fdt, type FdtNode } from '../../fdt/index.ts';
import {
  CLASS_CODE_3D_CONTROLLER,
  PCI_DEVICE_ID_NVIDIA_GB200,
  PCI_DEVICE_ID_NVIDIA_GH200_120GB,
  PCI_VENDOR_ID_NVIDIA,
} from '../pci-ids.ts';
import { pciName } from '../pci-name.ts';
import { pciPhysHi, pciUnitName } from '../witherspoon/index.ts';
import { GraceOptionError, type GraceOptions, resolveGraceOptions } from './options.ts';
import {
  C2C_LINK_STATUS_PROP,
  GPU_MEM_BASE_PA,
  GPU_MEM_SIZE,
  HBM_TRAINING_STATUS_PROP,
  MIG_DVSEC_PROP,
  MigDvsec,
} from './properties.ts';

/** PCI domain of GPU `i`'s host bridge. */
export function graceGpuDomain(i: number): number {
  return 0x9 + 0x10 * i;
}

/** GPU `i`'s PCI name ("0009:01:00.0"). */
export function graceGpuName(i: number): string {
  return pciName({ domain: graceGpuDomain(i), bus: 1, device: 0, fn: 0 });
}

/** Spacing of the GPUs' memory in the system address space. */
const GPU_MEM_STRIDE = 1n << 40n;
const ECAM_BASE = 0x4000_0000_0000n - (1n << 36n);
const ECAM_SIZE = 0x1000_0000n;
/** Each host bridge's 64-bit prefetchable MMIO window (1 TiB, below the ECAM space), 1:1. */
const MMIO64_BASE = 0x3000_0000_0000n;
const MMIO64_SIZE = 0x100_0000_0000n;
/** PCI bus address space code of 64-bit prefetchable memory (IEEE 1275 PCI binding: p=1, ss=11). */
const PCI_SPACE_MEM64_PREFETCH = 0x4300_0000;

function u64Cells(v: bigint, count: number): Uint8Array {
  return count === 2 ? cells.u64(v) : cells.u32(Number(v & 0xffffffffn));
}

function addGpu(phb: FdtNode, o: GraceOptions, i: number): FdtNode {
  const device =
    o.machine === 'grace-blackwell' ? PCI_DEVICE_ID_NVIDIA_GB200 : PCI_DEVICE_ID_NVIDIA_GH200_120GB;
  const gpu = phb.addChild(pciUnitName(CLASS_CODE_3D_CONTROLLER, 0));
  gpu.setProperty('reg', cells.u32(pciPhysHi(1, 0), 0, 0, 0, 0));
  gpu.setProperty(
    'compatible',
    cells.strings(`pciex${PCI_VENDOR_ID_NVIDIA.toString(16)},${device.toString(16)}`),
  );
  gpu.setProperty('vendor-id', cells.u32(PCI_VENDOR_ID_NVIDIA));
  gpu.setProperty('device-id', cells.u32(device));
  gpu.setProperty('class-code', cells.u32(CLASS_CODE_3D_CONTROLLER));
  gpu.setProperty('revision-id', cells.u32(0xa1));
  gpu.setProperty('subsystem-vendor-id', cells.u32(PCI_VENDOR_ID_NVIDIA));
  const base = o.gpuMemBase + BigInt(i) * GPU_MEM_STRIDE;
  gpu.setProperty(GPU_MEM_BASE_PA, u64Cells(base & ((1n << 64n) - 1n), o.gpuMemCells));
  gpu.setProperty(GPU_MEM_SIZE, u64Cells(o.gpuMem, o.gpuMemCells));
  if (o.c2cLinkDown) gpu.setProperty(C2C_LINK_STATUS_PROP, cells.u32(0));
  if (o.hbmUntrained) gpu.setProperty(HBM_TRAINING_STATUS_PROP, cells.u32(0));
  if (o.migDvsec !== undefined) {
    const mode = { bug: MigDvsec.BUG, fixed: MigDvsec.FIXED, absent: MigDvsec.ABSENT }[o.migDvsec];
    gpu.setProperty(MIG_DVSEC_PROP, cells.u32(mode));
  }
  return gpu;
}

function addHostBridge(root: FdtNode, o: GraceOptions, i: number): FdtNode {
  const ecam = ECAM_BASE + BigInt(i) * ECAM_SIZE;
  const phb = root.addChild(`pcie@${ecam.toString(16)}`);
  phb.setProperty('compatible', cells.strings('pci-host-ecam-generic'));
  phb.setProperty('device_type', cells.string('pci'));
  phb.setProperty('linux,pci-domain', cells.u32(graceGpuDomain(i)));
  phb.setProperty('bus-range', cells.u32(1, 0xff));
  phb.setProperty('#address-cells', cells.u32(3));
  phb.setProperty('#size-cells', cells.u32(2));
  phb.setProperty('reg', cells.u64(ecam, ECAM_SIZE));
  // A host bridge with no ranges is no bridge to dtc (checks.c check_pci_bridge).
  const mmio = MMIO64_BASE + BigInt(i) * MMIO64_SIZE;
  const hi = (v: bigint) => Number(v >> 32n);
  const lo = (v: bigint) => Number(v & 0xffff_ffffn);
  phb.setProperty(
    'ranges',
    cells.u32(
      PCI_SPACE_MEM64_PREFETCH,
      hi(mmio),
      lo(mmio),
      hi(mmio),
      lo(mmio),
      hi(MMIO64_SIZE),
      lo(MMIO64_SIZE),
    ),
  );
  addGpu(phb, o, i);
  return phb;
}

function applyOmit(fdt: Fdt, o: GraceOptions, gpus: readonly FdtNode[]): void {
  for (const fault of o.omit) {
    const targets =
      fault.target === '*'
        ? gpus
        : gpus.filter(
            (_, i) => fault.target === `GPU${i}` || fault.target.toLowerCase() === graceGpuName(i),
          );
    const hit = targets.filter((n) => n.hasProperty(fault.property));
    if (hit.length === 0)
      throw new GraceOptionError(
        'omit',
        `no GPU named ${fault.target} has ${fault.property} in ${fdt.source}`,
      );
    for (const n of hit) n.removeProperty(fault.property);
  }
}

/** The tree of a Grace machine. @throws GraceOptionError for a bad option or an omit that matches nothing */
export function generateGrace(input: Partial<GraceOptions> = {}): Fdt {
  const o = resolveGraceOptions(input);
  const fdt = new Fdt(undefined, `generated ${o.machine}`);
  const root = fdt.root;
  root.setProperty('#address-cells', cells.u32(2));
  root.setProperty('#size-cells', cells.u32(2));
  const hopper = o.machine === 'grace-hopper';
  root.setProperty(
    'model',
    cells.string(
      hopper
        ? 'NVIDIA GH200 Grace Hopper Superchip (emulated)'
        : 'NVIDIA GB200 Grace Blackwell Superchip (emulated)',
    ),
  );
  root.setProperty('compatible', cells.strings(`vfio-nvlink2,${o.machine}`));
  const memory = root.addChild('memory@80000000');
  memory.setProperty('device_type', cells.string('memory'));
  memory.setProperty('reg', cells.u64(0x8000_0000n, 120n << 30n));
  const gpus: FdtNode[] = [];
  for (let i = 0; i < o.gpus; i++) gpus.push(addHostBridge(root, o, i).children[0] as FdtNode);
  applyOmit(fdt, o, gpus);
  return fdt;
}
