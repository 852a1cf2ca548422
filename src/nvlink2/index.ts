/**
 * The NVLink2 subdriver (Linux 5.0–5.12 drivers/vfio/pci/vfio_pci_nvlink2.c) over the emulated
 * platform, as a vfio-pci variant. Build a context once per host, bind the variant to the
 * functions it matches:
 *
 *   const ctx = createNvlink2Context(host, { tracer, log });
 *   pnvNpu2MapHost(ctx);                       // boot: every GPU mapped to the host (LPID 0)
 *   const variant = nvlink2Variant(ctx);       // profiles, region names, the two hooks
 *   const dev = new VfioPciDevice(fn, host, variantFor([variant], fn));
 *   dev.open(); dev.attachKvm(lpid);           // KVM set → the GPU joins partition `lpid`
 *   ctx.live.scanFaults(); ctx.live.pollMappedLaunches();   // periodic duties (timers do the ATSD one)
 *   ctx.firmware.snapshot();                   // the NPU tables
 */
export { type AtsdConfig, probeAtsd } from './atsd-probe.ts';
export { AtsdRegion } from './atsd-region.ts';
export {
  ATSD_PAGE_SIZE,
  ATSD_STAT_PENDING,
  AtsdRegister,
  AtsdRegisterPage,
  AtsdRegisterSet,
} from './atsd-register.ts';
export {
  createNvlink2Context,
  defaultGpuRamSize,
  type KernelLogLine,
  type Nvlink2Context,
  type Nvlink2ContextOptions,
  REGION_ACCESS_TRACEPOINTS,
} from './context.ts';
export {
  createMemfdMemory,
  type DeviceMemory,
  type DeviceMemoryFactory,
  DeviceMemoryStore,
  gpuRamKey,
} from './device-memory.ts';
export {
  type DoctorEntry,
  type DoctorOptions,
  doctorWhat,
  formatDoctorReport,
  runDoctorOnHost,
} from './doctor.ts';
export { type GpuRamConfig, probeGpuRam } from './gpu-ram-probe.ts';
export {
  type DmaPreregistration,
  type FaultRecord,
  type GpuRamMapping,
  GpuRamRegion,
  POWER_PAGE_SIZE,
  VM_FAULT_NOPAGE,
} from './gpu-ram-region.ts';
export {
  attachLpid,
  detachLpid,
  initAtsd,
  initGpuRam,
  NVLINK2_ATSD_REGION_TYPE,
  NVLINK2_RAM_REGION_TYPE,
  nvlink2Hooks,
  VFIO_REGION_SUBTYPE_IBM_NVLINK2_ATSD,
  VFIO_REGION_SUBTYPE_NVIDIA_NVLINK2_RAM,
} from './hooks.ts';
export {
  KERNEL_VERSIONS,
  type KernelBehaviour,
  type KernelVersion,
  kernelBehaviour,
} from './kernel-version.ts';
export type { Level } from './lint/index.ts';
export {
  attachLocations,
  blobLocator,
  combinedOverlay,
  combinedScript,
  dtsLocator,
  explainRule,
  failsAt,
  findRule,
  formatFindingsText,
  type Locator,
  lintTree,
  liveLocator,
  nameLocator,
  PHANDLE_PROPERTIES,
  reportJson,
  ruleTable,
  shellWord,
  toSarif,
} from './lint/index.ts';
export { LiveRegions } from './live-regions.ts';
export { pnvNpu2MapHost, pnvNpu2MapLparDev, pnvNpu2UnmapLparDev } from './npu-lpar.ts';
export { NV_PMC_BOOT_0, nvlink2ModelName, nvlink2Profile } from './profile.ts';
export {
  encodeLnkspdCap,
  encodeSsatgtCap,
  NVLINK2_REGION_CAPABILITIES,
  type Nvlink2CapabilityValue,
  Nvlink2CapId,
} from './region-caps.ts';
export type { LiveAtsdRegion, LiveGpuRamRegion, LiveRegionSet } from './types.ts';
export { NVLINK2_VOCABULARY, nvlink2Variant } from './variant.ts';
