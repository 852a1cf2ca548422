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
/** Region index of BAR0 (include/uapi/linux/vfio.h VFIO_PCI_BAR0_REGION_INDEX). */
export const VFIO_PCI_BAR0_REGION_INDEX = 0;
/** Region index of BAR5 (VFIO_PCI_BAR5_REGION_INDEX). */
export const VFIO_PCI_BAR5_REGION_INDEX = 5;
/** Region index of the expansion ROM (VFIO_PCI_ROM_REGION_INDEX). */
export const VFIO_PCI_ROM_REGION_INDEX = 6;
/** Region index of config space (VFIO_PCI_CONFIG_REGION_INDEX). */
export const VFIO_PCI_CONFIG_REGION_INDEX = 7;
/** Region index of the legacy VGA ranges (VFIO_PCI_VGA_REGION_INDEX). */
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

/** A GET_REGION_INFO reply: its bytes as the kernel writes them, and the decoded fields. */
export interface RegionInfoReply {
  /** The reply bytes: 32, or 32 + the chain when argsz was large enough. */
  readonly bytes: Uint8Array;
  readonly info: RegionInfoFields;
  /** The capability chain the reply carries after the 32 bytes (empty when it carries none). */
  readonly chain: Uint8Array;
  /** Present when the region is mmap-able and argsz sufficed: the server attaches its fd. */
  readonly mmap?: (request: MmapRequest) => MmapGrant;
}

/** struct vfio_region_info's members: name, byte offset, width (include/uapi/linux/vfio.h). */
const MEMBERS = [
  ['argsz', 0, 4],
  ['flags', 4, 4],
  ['index', 8, 4],
  ['cap_offset', 12, 4],
  ['size', 16, 8],
  ['offset', 24, 8],
] as const;

const NO_CHAIN = new Uint8Array(0);

/**
 * struct vfio_region_info (32 bytes, little-endian) followed by `chain`: the one encoder of
 * the layout, for the kernel's answer here and for the vfio-user wire's (vfio-user.rst
 * "VFIO_USER_DEVICE_GET_REGION_INFO" carries the same struct).
 */
export function encodeRegionInfoStruct(
  fields: RegionInfoFields,
  chain: Uint8Array = NO_CHAIN,
): Uint8Array {
  const bytes = new Uint8Array(VFIO_REGION_INFO_SIZE + chain.length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, fields.argsz >>> 0, true);
  view.setUint32(4, fields.flags >>> 0, true);
  view.setUint32(8, fields.index >>> 0, true);
  view.setUint32(12, fields.capOffset >>> 0, true);
  view.setBigUint64(16, fields.size, true);
  view.setBigUint64(24, fields.offset, true);
  bytes.set(chain, VFIO_REGION_INFO_SIZE);
  return bytes;
}

/**
 * The members of the struct vfio_region_info that `bytes` starts with, and the bytes after
 * it (a view: the capability chain, or a request's nothing). The one decoder of the layout.
 * @throws VfioError EINVAL when `bytes` ends inside the struct, naming the member and `what`.
 */
export function decodeRegionInfoStruct(
  bytes: Uint8Array,
  what = 'region info reply',
): { fields: RegionInfoFields; chain: Uint8Array } {
  if (bytes.length < VFIO_REGION_INFO_SIZE) {
    const [name, at, width] = MEMBERS.find(([, at, w]) => at + w > bytes.length) ?? MEMBERS[0];
    throw new VfioError(
      'EINVAL',
      `${what}: ${name} needs ${width} bytes at offset ${at}, payload has ${bytes.length}`,
    );
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
  return { fields, chain: bytes.subarray(VFIO_REGION_INFO_SIZE) };
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
  const chain =
    capsSize > 0 && fits ? encodeCapChain(region.caps, VFIO_REGION_INFO_SIZE) : NO_CHAIN;
  const bytes = encodeRegionInfoStruct(info, chain);
  const mmapable = (region.flags & RegionFlag.MMAP) !== 0 && region.mmap !== undefined;
  return mmapable && (capsSize === 0 || fits) && region.mmap
    ? { bytes, info, chain, mmap: region.mmap }
    : { bytes, info, chain };
}

/** A decoded capability with its named value (a core kind or one of the variants' `V`). */
export interface DecodedRegionCapability<V extends VariantCapabilityValue = never>
  extends DecodedCapability {
  readonly value: CapabilityValue<V>;
}

/**
 * A region-info reply decoded: its fields, its capability chain, and where the walk stopped if it
 * did.
 */
export interface DecodedRegionInfo<V extends VariantCapabilityValue = never>
  extends RegionInfoFields {
  readonly caps: DecodedRegionCapability<V>[];
  /** Why the chain could not be walked to its end, if it could not. */
  readonly capError?: string;
}

/**
/**
 * Decode a region-info reply (32 bytes or more) with its capabilities. Capabilities are walked
 * only when the CAPS flag is set and cap_offset is non-zero; values are the core's kinds and
 * those of `kinds` (the variants' capabilities the reader knows), else `unknown`.
 * @throws VfioError EINVAL when fewer than 32 bytes are given
 */
export function decodeRegionInfo<V extends VariantCapabilityValue = never>(
  bytes: Uint8Array,
  kinds: readonly RegionCapabilityKind<V>[] = [],
): DecodedRegionInfo<V> {
  const { fields } = decodeRegionInfoStruct(bytes);
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
