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
export {
  defaultPlatformTree,
  isDtsSource,
  loadPlatformTree,
  PlatformTreeError,
  readTreeBytes,
} from './default-platform.ts';
export { bdfOf, describeNpus, Npu2Firmware, type Npu2Snapshot, opalPhbId } from './firmware.ts';
export { Msr, OpalRc, opalRcName } from './firmware-opal.ts';
export * from './grace/index.ts';
export { atsdAddresses, buildHost, HostError, nvlinkOfBridge } from './host.ts';
export {
  CLASS_CODE_3D_CONTROLLER,
  CLASS_CODE_NPU2_BRIDGE,
  CLASS_CODE_PCI_BRIDGE,
  PCI_BASE_CLASS_DISPLAY,
  PCI_CLASS_BRIDGE_PCI,
  PCI_CLASS_DISPLAY_VGA,
  PCI_DEVICE_ID_IBM_NPU2_NVLINK,
  PCI_DEVICE_ID_IBM_PHB4_ROOT_PORT,
  PCI_DEVICE_ID_NVIDIA_GB200,
  PCI_DEVICE_ID_NVIDIA_GB300,
  PCI_DEVICE_ID_NVIDIA_GH200,
  PCI_DEVICE_ID_NVIDIA_GH200_120GB,
  PCI_DEVICE_ID_NVIDIA_GH200_480GB,
  PCI_DEVICE_ID_NVIDIA_P100_SXM2,
  PCI_DEVICE_ID_NVIDIA_V100_SXM2_16GB,
  PCI_DEVICE_ID_NVIDIA_V100_SXM2_32GB,
  PCI_SUBSYSTEM_ID_NVIDIA_P100_SXM2,
  PCI_SUBSYSTEM_ID_NVIDIA_V100_SXM2_16GB,
  PCI_SUBSYSTEM_ID_NVIDIA_V100_SXM2_32GB,
  PCI_VENDOR_ID_IBM,
  PCI_VENDOR_ID_INTEL,
  PCI_VENDOR_ID_NVIDIA,
} from './pci-ids.ts';
export { pciName } from './pci-name.ts';
export type { Host, PciFunction, PciRole, Phb } from './types.ts';
export {
  ATSD_COUNT,
  ATSD_OFFSET,
  ATSD_STRIDE,
  cleanWitherspoonVariants,
  GPU_APERTURE_SIZE,
  generateWitherspoon,
  NPU_REGS_SIZE,
  resolveFaultTarget,
  socketTopology,
  tgtFromSystemAddress,
  WITHERSPOON_FLAG_SPEC,
  WitherspoonOptionError,
  type WitherspoonOptions,
  witherspoonOptionsFromFlags,
} from './witherspoon/index.ts';
