/**
 * The nvgrace-gpu variant driver (Linux 6.9+ drivers/vfio/pci/nvgrace-gpu/main.c) over the
 * emulated platform: Grace Hopper and Grace Blackwell GPUs whose coherent memory is shown as
 * 64-bit prefetchable BARs (usemem at BAR4/5, resmem at BAR2/3 on parts with the MIG bug).
 *
 *   const ctx = new NvgraceContext(memoryFactory);
 *   const dev = new VfioPciDevice(fn, host, variantFor([nvgraceVariant(ctx)], fn));
 *   dev.open(); dev.read(4, 0n, 64);          // usemem
 */
export { NvgraceContext, type NvgraceProbeOutcome } from './context.ts';
export { type NvgraceDoctorEntry, nvgraceDoctorWhat, runNvgraceDoctor } from './doctor.ts';
export { FakeBarRegisters, intersectRange } from './fake-bars.ts';
export { GraceMemRegion } from './mem-region.ts';
export {
  type GraceMemoryLayout,
  initMemoryLayout,
  MEMBLK_SIZE,
  type MemRegion,
  roundupPowerOfTwo,
} from './memory-layout.ts';
export {
  fetchMemoryProperty,
  GPU_MEM_BASE_PA,
  GPU_MEM_SIZE,
} from './memory-property.ts';
export { hasMigHwBug } from './mig-dvsec.ts';
export { probeNvgrace, RESMEM_REGION_INDEX, USEMEM_REGION_INDEX } from './probe.ts';
export {
  GRACE_GPU_MODELS,
  type GraceGeneration,
  graceGpuModel,
  nvgraceModelName,
  nvgraceProfile,
} from './profile.ts';
export { POLL_TIMEOUT_MS, STATUS_READY, waitDeviceReady } from './readiness.ts';
export { NVGRACE_VOCABULARY, nvgraceVariant } from './variant.ts';
