/**
 * The vfio-pci core (Linux drivers/vfio/pci/vfio_pci*.c, include/uapi/linux/vfio.h): the
 * device with its config space, BARs, IRQs and regions, region info and capability chains
 * encoded byte for byte, errno as a typed error, the variant hook table, device memory and its
 * budget. Names no variant. Other layers import from here only.
 */

export type { ConfigSpace } from './config-space.ts';
export {
  type DeviceDescription,
  type DeviceSnapshot,
  describeDevice,
  describeSnapshot,
  type QueryError,
  queryErrorOf,
} from './describe.ts';
export { describeAsText, hexdump } from './describe-text.ts';
export { type DeviceStateBytes, VfioPciDevice } from './device.ts';
export {
  type DeviceProfile,
  ENDPOINT_COMMAND_BITS,
  type ExtendedCapabilitySpec,
} from './device-profile.ts';
export type { DmaPort } from './dma-engine.ts';
export { type DoctorRow, doctorRowIdentity } from './doctor-row.ts';
export { Errno, type ErrnoName, errnoName, VfioError } from './errors.ts';
export { type FileMemory, type FileMemoryOptions, openFileMemory } from './file-memory.ts';
export { VariantHookRegistry } from './hooks.ts';
export {
  bodyOf,
  capability,
  decodeCapChain,
  encodeSparseMmapCap,
  type RegionCapabilityKind,
  type SparseMmapArea,
  type VariantCapabilityValue,
  VFIO_INFO_CAP_HEADER_SIZE,
} from './info-caps.ts';
export {
  IrqIndex,
  IrqInfoFlag,
  IrqSetFlag,
  type SavedIrqState,
  VFIO_PCI_NUM_IRQS,
} from './irqs.ts';
export { formatBytes, MemoryBudget } from './memory-budget.ts';
export {
  commandStatusLines,
  decodePciCapabilities,
  lspciHexLines,
  type PciCapabilitySummary,
  PciCapId,
} from './pci-capabilities.ts';
export {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
  PCI_DVSEC_HEADER1,
  PCI_DVSEC_HEADER2,
  PCI_EXT_CAP_ID_DVSEC,
} from './pci-regs.ts';
export { createProbeMemory } from './probe-memory.ts';
export {
  type MmapGrant,
  type MmapRequest,
  PCI_VENDOR_TYPE,
  type RegionCapability,
  type RegionContents,
  RegionFlag,
  type RegionOps,
} from './region.ts';
export {
  type DecodedRegionInfo,
  decodeRegionInfo,
  decodeRegionInfoStruct,
  encodeRegionInfo,
  encodeRegionInfoStruct,
  type RegionDescription,
  type RegionInfoFields,
  type RegionInfoReply,
  regionFlagNames,
  regionOffset,
  VFIO_PCI_BAR0_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_NUM_REGIONS,
  VFIO_REGION_INFO_SIZE,
} from './region-info.ts';
export {
  budgetedMemfdMemory,
  createMemfdMemory,
  type PendingRenew,
  reopenForPeer,
  type SharedMemory,
  type SharedMemoryFactory,
} from './shared-memory.ts';
export type { InterruptEvent, VfioTracer } from './tracer.ts';
export {
  type VariantDevice,
  type VariantDeviceOps,
  type VariantHook,
  type VariantVocabulary,
  type VfioPciVariant,
  variantFor,
} from './variant.ts';
