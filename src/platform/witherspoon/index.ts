/**
 * The Witherspoon (AC922) device-tree generator: machine variants and faults
 * (skiboot hw/npu2.c, hw/npu2-common.c, platforms/astbmc/witherspoon.c, core/pci.c).
 */

export { resolveFaultTarget } from './faults.ts';
export { formatPciName, generateWitherspoon } from './generate.ts';
export {
  DEFAULT_WITHERSPOON_OPTIONS,
  type OmitFault,
  type P100Style,
  parseOmitSpec,
  resolveWitherspoonOptions,
  WITHERSPOON_FLAG_SPEC,
  type WitherspoonFlags,
  WitherspoonOptionError,
  type WitherspoonOptions,
  witherspoonOptionsFromFlags,
} from './options.ts';
export {
  ATSD_COUNT,
  ATSD_OFFSET,
  ATSD_STRIDE,
  atsdAddress,
  GPU_APERTURE_SIZE,
  gpuMemoryBase,
  type MemoryMap,
  NPU_REGS_SIZE,
  npuRegsBase,
  tgtFromSystemAddress,
} from './phys-map.ts';
export {
  type GpuCount,
  type SocketTopology,
  slotLabel,
  socketTopology,
  WITHERSPOON_CHIPS,
} from './topology.ts';
export { cleanWitherspoonVariants } from './variants.ts';
