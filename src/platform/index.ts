/**
 * The PowerNV host as the kernel sees it (PHBs, NPU2s, NVLink bridges, GPUs, links, memory
 * windows, ATSD registers), its OPAL firmware calls and ATS cache, and the Witherspoon tree
 * generator (witherspoon/). Other layers import from here only.
 */

export { AtsCache, AtsCacheSet } from './ats-cache.ts';
export {
  type AtsdLaunchFields,
  encodeLaunch,
  getAtsdLaunchVal,
  kernelInvalidateSteps,
} from './ats-cache-launch.ts';
export { defaultPlatformTree, loadPlatformTree, PlatformTreeError } from './default-platform.ts';
export { bdfOf, describeNpus, Npu2Firmware, type Npu2Snapshot, opalPhbId } from './firmware.ts';
export { Msr, OpalRc, opalRcName } from './firmware-opal.ts';
export { atsdAddresses, buildHost, HostError, nvlinkOfBridge } from './host.ts';
export type { Host, PciFunction, PciRole, Phb } from './types.ts';
export {
  generateWitherspoon,
  WITHERSPOON_FLAG_SPEC,
  WitherspoonOptionError,
  type WitherspoonOptions,
  witherspoonOptionsFromFlags,
} from './witherspoon/index.ts';
