/**
 * The subdriver as vfio-pci variant hooks: "NVIDIA NV2 RAM" for vendor 0x10de and
 * "NVIDIA NV2 ATSD" for vendor 0x1014 (Linux v5.12 vfio_pci.c called
 * vfio_pci_nvidia_v100_nvlink2_init / vfio_pci_ibm_npu2_init from vfio_pci_enable by vendor),
 * and the KVM hook: when the device's group gets a guest (LPID), the GPU is mapped into it
 * (pnv_npu2_map_lpar_dev(gpu, lpid, MSR_DR | MSR_PR)); a failure is logged as NOTIFY_BAD and,
 * as in the kernel, changes nothing else.
 *
 * One difference: the kernel unregistered its KVM listener right after registering it (it only
 * caught a KVM set before the device was opened, QEMU's order). We keep listening until the
 * device is released, so attaching an LPID after opening maps the GPU too.
 */

import type { PciFunction } from '../platform/index.ts';
import { Msr, opalRcName, PCI_VENDOR_ID_IBM, PCI_VENDOR_ID_NVIDIA } from '../platform/index.ts';
import type { VariantDevice, VariantHook } from '../vfio/index.ts';
import { PCI_VENDOR_TYPE, RegionFlag, VfioError } from '../vfio/index.ts';
import { probeAtsd } from './atsd-probe.ts';
import { AtsdRegion } from './atsd-region.ts';
import { ATSD_PAGE_SIZE } from './atsd-register.ts';
import { atsdKey, gpuRamKey } from './device-memory.ts';
import { probeGpuRam } from './gpu-ram-probe.ts';
import { GpuRamRegion } from './gpu-ram-region.ts';
import { pnvNpu2MapLparDev, pnvNpu2UnmapLparDev } from './npu-lpar.ts';
import type { Nvlink2Context } from './types.ts';

/** VFIO_REGION_SUBTYPE_NVIDIA_NVLINK2_RAM (include/uapi/linux/vfio.h). */
export const VFIO_REGION_SUBTYPE_NVIDIA_NVLINK2_RAM = 1;
/** VFIO_REGION_SUBTYPE_IBM_NVLINK2_ATSD (include/uapi/linux/vfio.h). */
export const VFIO_REGION_SUBTYPE_IBM_NVLINK2_ATSD = 1;
/** The GPU RAM region's type: VFIO_REGION_TYPE_PCI_VENDOR_TYPE | PCI_VENDOR_ID_NVIDIA. */
export const NVLINK2_RAM_REGION_TYPE = (PCI_VENDOR_TYPE | PCI_VENDOR_ID_NVIDIA) >>> 0;
/** The ATSD region's type: VFIO_REGION_TYPE_PCI_VENDOR_TYPE | PCI_VENDOR_ID_IBM. */
export const NVLINK2_ATSD_REGION_TYPE = (PCI_VENDOR_TYPE | PCI_VENDOR_ID_IBM) >>> 0;

const RW_MMAP = RegionFlag.READ | RegionFlag.WRITE | RegionFlag.MMAP;

/**
 * Maps `gpu` into guest partition `lpid` (what the KVM notifier does).
 * @returns 0, -ENODEV (no NVLink bridge) or the OPAL code of MAP_LPAR.
 */
export function attachLpid(ctx: Nvlink2Context, gpu: PciFunction, lpid: number): number {
  const ret = pnvNpu2MapLparDev(ctx, gpu, lpid, Msr.DR | Msr.PR);
  if (ret !== 0) {
    ctx.log({
      level: 'err',
      device: gpu.name,
      message: `KVM set (LPID ${lpid}): pnv_npu2_map_lpar_dev returned ${ret} (${opalRcName(ret)}): NOTIFY_BAD`,
    });
  }
  return ret;
}

/** Unmaps `gpu` from its partition (what releasing the GPU RAM region does). */
export function detachLpid(ctx: Nvlink2Context, gpu: PciFunction): number {
  return pnvNpu2UnmapLparDev(ctx, gpu);
}

/**
 * vfio_pci_nvidia_v100_nvlink2_init: the KVM notifier, then the region.
 * @throws VfioError (see gpu-ram-probe.ts)
 */
export function initGpuRam(ctx: Nvlink2Context, device: VariantDevice): GpuRamRegion {
  const config = probeGpuRam(ctx, device.fn);
  const stopKvm = device.onKvmSet((lpid) => {
    attachLpid(ctx, device.fn, lpid);
  });
  let ops: GpuRamRegion | undefined;
  device.registerDeviceRegion(
    NVLINK2_RAM_REGION_TYPE,
    VFIO_REGION_SUBTYPE_NVIDIA_NVLINK2_RAM,
    config.size,
    RW_MMAP,
    (index) => {
      ops = new GpuRamRegion(ctx, config, index, stopKvm);
      return ops;
    },
  );
  return live(ctx, ops);
}

/** vfio_pci_ibm_npu2_init. @throws VfioError (see atsd-probe.ts) */
export function initAtsd(ctx: Nvlink2Context, device: VariantDevice): AtsdRegion {
  const config = probeAtsd(ctx, device.fn);
  let ops: AtsdRegion | undefined;
  device.registerDeviceRegion(
    NVLINK2_ATSD_REGION_TYPE,
    VFIO_REGION_SUBTYPE_IBM_NVLINK2_ATSD,
    config.mmioAtsd === 0n ? 0n : ATSD_PAGE_SIZE,
    RW_MMAP,
    (index) => {
      ops = new AtsdRegion(ctx, config, index);
      return ops;
    },
  );
  return live(ctx, ops);
}

/** A registered region joins the periodic duties. @throws Error when it was never built */
function live<T extends GpuRamRegion | AtsdRegion>(ctx: Nvlink2Context, ops: T | undefined): T {
  if (!ops) throw new Error('internal: registerDeviceRegion did not build the region');
  ctx.live.add(ops);
  return ops;
}

/** The two hooks, for the vfio-pci core's hook table. */
export function nvlink2Hooks(ctx: Nvlink2Context): VariantHook[] {
  return [
    {
      vendor: PCI_VENDOR_ID_NVIDIA,
      name: 'NVIDIA NV2 RAM',
      init: (device) => void initGpuRam(ctx, device),
      memoryBeforeOpen: (device) =>
        quietly(ctx, (quiet) => {
          const config = probeGpuRam(quiet, device.fn);
          return ctx.memory.existing(gpuRamKey(device.fn.name), config.size);
        }),
    },
    {
      vendor: PCI_VENDOR_ID_IBM,
      name: 'NVIDIA NV2 ATSD',
      init: (device) => void initAtsd(ctx, device),
      memoryBeforeOpen: (device) =>
        quietly(ctx, (quiet) => {
          const address = probeAtsd(quiet, device.fn).mmioAtsd;
          return address === 0n ? undefined : ctx.memory.existing(atsdKey(address), ATSD_PAGE_SIZE);
        }),
    },
  ];
}

/** `probe` over `ctx` with its log silenced (the open logs the warnings); undefined on a refusal. */
function quietly<T>(
  ctx: Nvlink2Context,
  probe: (quiet: Pick<Nvlink2Context, 'host' | 'kernel' | 'log'>) => T | undefined,
): T | undefined {
  try {
    return probe({ host: ctx.host, kernel: ctx.kernel, log: () => {} });
  } catch (err) {
    if (err instanceof VfioError) return undefined; // the hook declines, or the open fails
    throw err;
  }
}
