/**
 * The kernel side of putting a GPU into a guest partition: Linux v5.12
 * arch/powerpc/platforms/powernv/npu-dma.c pnv_npu2_map_lpar_dev(), pnv_npu2_unmap_lpar_dev()
 * and the boot-time host mapping of pci-ioda.c pnv_pci_ioda_setup_nvlink()
 * (pnv_npu2_map_lpar(pe, MSR_DR | MSR_PR | MSR_HV)), over the emulated firmware.
 *
 * Errno mapping: there is none. A failing MAP_LPAR returns the raw OPAL code (e.g.
 * OPAL_RESOURCE -10) to the caller, which the KVM notifier only turns into NOTIFY_BAD; a
 * failing INIT_CONTEXT is logged ("Failed to init context: %d") and the map still returns 0.
 * Only "no NVLink bridge" is an errno (-ENODEV).
 */

import type { PciFunction } from '../platform/index.ts';
import { bdfOf, Msr, opalPhbId, opalRcName } from '../platform/index.ts';
import { Errno } from '../vfio/index.ts';
import type { Nvlink2Context } from './types.ts';

type LparContext = Pick<Nvlink2Context, 'host' | 'firmware' | 'tracer' | 'log'>;

/** npu-dma.c pnv_npu2_map_lpar_dev(gpdev, lparid, msr): 0, -ENODEV or the OPAL code of MAP_LPAR. */
export function pnvNpu2MapLparDev(
  ctx: LparContext,
  gpu: PciFunction,
  lpid: number,
  msr: bigint,
): number {
  const npdev = ctx.host.npuBridgeOfGpu(gpu, 0);
  if (!npdev) return -Errno.ENODEV;
  const phb = opalPhbId(npdev.phb);
  const bdf = bdfOf(gpu);
  ctx.log({ level: 'dbg', device: gpu.name, message: `Map LPAR opalid=${phb} lparid=${lpid}` });
  // "Currently we only support radix and non-zero LPCR only makes sense for hash tables"
  let ret = ctx.firmware.mapLpar(phb, bdf, lpid, 0n);
  if (ret !== 0) {
    ctx.log({
      level: 'err',
      device: gpu.name,
      message: `Error ${ret} mapping device to LPAR (${opalRcName(ret)})`,
    });
  } else {
    ctx.log({
      level: 'dbg',
      device: gpu.name,
      message: `init context opalid=${phb} msr=${msr.toString(16)}`,
    });
    const rc = ctx.firmware.initContext(phb, 0, msr, bdf);
    if (rc < 0) {
      ctx.log({
        level: 'err',
        device: gpu.name,
        message: `Failed to init context: ${rc} (${opalRcName(rc)})`,
      });
    }
    ret = 0;
  }
  ctx.tracer.emit('nvlink2_lpid_map', () => ({ name: gpu.name, phb, bdf, lpid, msr, ret }));
  return ret;
}

/** npu-dma.c pnv_npu2_unmap_lpar_dev(gpdev): destroy the context, then LPID 0 "anyway, just to be safe". */
export function pnvNpu2UnmapLparDev(ctx: LparContext, gpu: PciFunction): number {
  const npdev = ctx.host.npuBridgeOfGpu(gpu, 0);
  if (!npdev) return -Errno.ENODEV;
  const phb = opalPhbId(npdev.phb);
  const bdf = bdfOf(gpu);
  ctx.log({ level: 'dbg', device: gpu.name, message: `destroy context opalid=${phb}` });
  let ret = ctx.firmware.destroyContext(phb, 0, bdf);
  if (ret < 0) {
    ctx.log({
      level: 'err',
      device: gpu.name,
      message: `Failed to destroy context: ${ret} (${opalRcName(ret)})`,
    });
  } else {
    ctx.log({ level: 'dbg', device: gpu.name, message: `Map LPAR opalid=${phb} lparid=0` });
    ret = ctx.firmware.mapLpar(phb, bdf, 0, 0n);
    if (ret !== 0) {
      ctx.log({
        level: 'err',
        device: gpu.name,
        message: `Error ${ret} mapping device to LPAR (${opalRcName(ret)})`,
      });
    }
  }
  ctx.tracer.emit('nvlink2_lpid_unmap', () => ({ name: gpu.name, phb, bdf, ret }));
  return ret;
}

/**
 * pci-ioda.c pnv_pci_ioda_setup_nvlink(): at boot every device of every IODA2 PE is mapped to
 * the host (LPID 0, MSR DR|PR|HV); devices without an NVLink bridge get -ENODEV and are skipped.
 * @returns the result per GPU that has a bridge.
 */
export function pnvNpu2MapHost(ctx: LparContext): Map<string, number> {
  const results = new Map<string, number>();
  for (const fn of ctx.host.functions) {
    if (fn.phb.isNpu) continue;
    const ret = pnvNpu2MapLparDev(ctx, fn, 0, Msr.DR | Msr.PR | Msr.HV);
    if (ret !== -Errno.ENODEV) results.set(fn.name, ret);
  }
  return results;
}
