/**
 * VFIO_DEVICE_GET_REGION_INFO as Linux 5.12 answered it (drivers/vfio/pci/vfio_pci.c
 * vfio_pci_ioctl, struct vfio_region_info in include/uapi/linux/vfio.h): the 32-byte fixed part
 * {argsz, flags, index, cap_offset, size, offset}, then the capability chain. When caps exist
 * the CAPS flag is set; if the caller's argsz cannot hold them, argsz is raised to the size
 * needed, cap_offset is 0 and only the fixed part is returned; otherwise the chain follows at
 * offset 32, cap_offset = 32, and argsz keeps the caller's value (the kernel never lowers it).
 * Without caps, cap_offset is echoed from the request untouched, as the kernel copied it in.
 */
import { VfioError } from './errors.ts';
import {
  type CapabilityValue,
  capChainSize,
  type DecodedCapability,
  decodeCapabilityValue,
  decodeCapChain,
  encodeCapChain,
  type RegionCapabilityKind,
  type VariantCapabilityValue,
} from './info-caps.ts';
import { type MmapGrant, type MmapRequest, type RegionCapability, RegionFlag } from './region.ts';

export { encodeMsixMappableCap, encodeSparseMmapCap, encodeTypeCap } from './info-caps.ts';

/** sizeof(struct vfio_region_info) = offsetofend(struct vfio_region_info, offset). */
export const VFIO_REGION_INFO_SIZE = 32;
/** VFIO_PCI_OFFSET_SHIFT (drivers/vfio/pci/vfio_pci_private.h): region offset = index << 40. */
export const VFIO_PCI_OFFSET_SHIFT = 40n;
/** VFIO_PCI_NUM_REGIONS: BAR0–5, ROM, CONFIG, VGA. */
export const VFIO_PCI_NUM_REGIONS = 9;
export const VFIO_PCI_BAR0_REGION_INDEX = 0;
export const VFIO_PCI_BAR5_REGION_INDEX = 5;
export const VFIO_PCI_ROM_REGION_INDEX = 6;
export const VFIO_PCI_CONFIG_REGION_INDEX = 7;
export const VFIO_PCI_VGA_REGION_INDEX = 8;

/** VFIO_PCI_INDEX_TO_OFFSET(). */
export function regionOffset(index: number): bigint {
  return BigInt(index) << VFIO_PCI_OFFSET_SHIFT;
}

/** The fields of struct vfio_region_info. */
export interface RegionInfoFields {
  readonly argsz: number;
  readonly flags: number;
  readonly index: number;
  readonly capOffset: number;
  readonly size: bigint;
  readonly offset: bigint;
}

/** What the core knows of a region before encoding: the kernel's switch in vfio_pci_ioctl. */
export interface RegionDescription {
  readonly index: number;
  readonly flags: number;
  readonly size: bigint;
  /** The chain in order (for a device-specific region TYPE first, then the region's own). */
  readonly caps: readonly RegionCapability[];
  /** The region's mmap, when it has the MMAP flag. */
  readonly mmap?: (request: MmapRequest) => MmapGrant;
}

export interface RegionInfoReply {
  /** The reply bytes: 32, or 32 + the chain when argsz was large enough. */
  readonly bytes: Uint8Array;
  readonly info: RegionInfoFields;
  /** Present when the region is mmap-able and argsz sufficed: the server attaches its fd. */
  readonly mmap?: (request: MmapRequest) => MmapGrant;
}

function writeFixed(view: DataView, f: RegionInfoFields): void {
  view.setUint32(0, f.argsz >>> 0, true);
  view.setUint32(4, f.flags >>> 0, true);
  view.setUint32(8, f.index >>> 0, true);
  view.setUint32(12, f.capOffset >>> 0, true);
  view.setBigUint64(16, f.size, true);
  view.setBigUint64(24, f.offset, true);
}

/**
 * Encode the reply for `region`, given the caller's `argsz` (and the cap_offset it sent).
 * @throws VfioError EINVAL when argsz < 32 (vfio_pci_ioctl: info.argsz < minsz)
 */
export function encodeRegionInfo(
  region: RegionDescription,
  argsz: number,
  callerCapOffset = 0,
): RegionInfoReply {
  if (argsz < VFIO_REGION_INFO_SIZE) {
    throw new VfioError(
      'EINVAL',
      `region info argsz ${argsz} is smaller than ${VFIO_REGION_INFO_SIZE}`,
    );
  }
  const capsSize = capChainSize(region.caps);
  const fits = argsz >= VFIO_REGION_INFO_SIZE + capsSize;
  const info: RegionInfoFields = {
    argsz: capsSize > 0 && !fits ? VFIO_REGION_INFO_SIZE + capsSize : argsz,
    flags: capsSize > 0 ? region.flags | RegionFlag.CAPS : region.flags,
    index: region.index,
    capOffset: capsSize === 0 ? callerCapOffset : fits ? VFIO_REGION_INFO_SIZE : 0,
    size: region.size,
    offset: regionOffset(region.index),
  };
  const withCaps = capsSize > 0 && fits;
  const bytes = new Uint8Array(VFIO_REGION_INFO_SIZE + (withCaps ? capsSize : 0));
  writeFixed(new DataView(bytes.buffer), info);
  if (withCaps)
    bytes.set(encodeCapChain(region.caps, VFIO_REGION_INFO_SIZE), VFIO_REGION_INFO_SIZE);
  const mmapable = (region.flags & RegionFlag.MMAP) !== 0 && region.mmap !== undefined;
  return mmapable && (capsSize === 0 || fits) && region.mmap
    ? { bytes, info, mmap: region.mmap }
    : { bytes, info };
}

/** A decoded capability with its named value (a core kind or one of the variants' `V`). */
export interface DecodedRegionCapability<V extends VariantCapabilityValue = never>
  extends DecodedCapability {
  readonly value: CapabilityValue<V>;
}

export interface DecodedRegionInfo<V extends VariantCapabilityValue = never>
  extends RegionInfoFields {
  readonly caps: DecodedRegionCapability<V>[];
  /** Why the chain could not be walked to its end, if it could not. */
  readonly capError?: string;
}

/**
 * Decode a region-info reply (32 bytes or more). Capabilities are walked only when the CAPS
 * flag is set and cap_offset is non-zero; values are the core's kinds and those of `kinds`
 * (the variants' capabilities the reader knows), else `unknown`.
 * @throws VfioError EINVAL when fewer than 32 bytes are given
 */
export function decodeRegionInfo<V extends VariantCapabilityValue = never>(
  bytes: Uint8Array,
  kinds: readonly RegionCapabilityKind<V>[] = [],
): DecodedRegionInfo<V> {
  if (bytes.length < VFIO_REGION_INFO_SIZE) {
    throw new VfioError('EINVAL', `region info reply of ${bytes.length} bytes is shorter than 32`);
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fields: RegionInfoFields = {
    argsz: v.getUint32(0, true),
    flags: v.getUint32(4, true),
    index: v.getUint32(8, true),
    capOffset: v.getUint32(12, true),
    size: v.getBigUint64(16, true),
    offset: v.getBigUint64(24, true),
  };
  if ((fields.flags & RegionFlag.CAPS) === 0 || fields.capOffset === 0)
    return { ...fields, caps: [] };
  const { caps, error } = decodeCapChain(bytes, fields.capOffset);
  const decoded = caps.map((c) => ({ ...c, value: decodeCapabilityValue(c.id, c.body, kinds) }));
  return error === undefined
    ? { ...fields, caps: decoded }
    : { ...fields, caps: decoded, capError: error };
}

/** "READ|WRITE|MMAP|CAPS" for a flags word. */
export function regionFlagNames(flags: number): string {
  const names = Object.entries(RegionFlag)
    .filter(([, bit]) => (flags & bit) !== 0)
    .map(([name]) => name);
  return names.length > 0 ? names.join('|') : '0';
}
