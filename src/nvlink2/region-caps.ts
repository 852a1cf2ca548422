/**
 * The NVLink2 region capabilities (include/uapi/linux/vfio.h, v5.0–v5.12):
 * VFIO_REGION_INFO_CAP_NVLINK2_SSATGT (struct vfio_region_info_cap_nvlink2_ssatgt: tgt u64)
 * on both regions and VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD
 * (struct vfio_region_info_cap_nvlink2_lnkspd: link_speed u32, __pad u32) on the ATSD region,
 * both version 1, little-endian as the host writes them. Encoded here for the regions, decoded
 * here for whoever reads region info (QEMU's pci-quirks.c read them the same way).
 */

import { hex } from '../text/index.ts';
import type { RegionCapability } from '../vfio/index.ts';
import { bodyOf, capability, type RegionCapabilityKind } from '../vfio/index.ts';

/** VFIO_REGION_INFO_CAP_NVLINK2_SSATGT and _LNKSPD. */
export const Nvlink2CapId = { SSATGT: 4, LNKSPD: 5 } as const;

/** The NVLink2 capabilities as named values. */
export type Nvlink2CapabilityValue =
  | { readonly kind: 'nvlink2-ssatgt'; readonly tgt: bigint }
  | { readonly kind: 'nvlink2-lnkspd'; readonly linkSpeed: number };

/** struct vfio_region_info_cap_nvlink2_ssatgt: tgt u64. */
export function encodeSsatgtCap(tgt: bigint): RegionCapability {
  return capability(
    Nvlink2CapId.SSATGT,
    bodyOf(8, (v) => v.setBigUint64(0, tgt, true)),
  );
}

/** struct vfio_region_info_cap_nvlink2_lnkspd: link_speed u32, __pad u32. */
export function encodeLnkspdCap(linkSpeed: number): RegionCapability {
  return capability(
    Nvlink2CapId.LNKSPD,
    bodyOf(8, (v) => v.setUint32(0, linkSpeed >>> 0, true)),
  );
}

function view(body: Uint8Array): DataView {
  return new DataView(body.buffer, body.byteOffset, body.byteLength);
}

/** How a reader decodes and shows the two capabilities. */
export const NVLINK2_REGION_CAPABILITIES: readonly RegionCapabilityKind<Nvlink2CapabilityValue>[] =
  [
    {
      id: Nvlink2CapId.SSATGT,
      name: 'NVLINK2_SSATGT',
      decode: (body) =>
        body.length >= 8
          ? { kind: 'nvlink2-ssatgt', tgt: view(body).getBigUint64(0, true) }
          : undefined,
      describe: (value): Record<string, string> =>
        value.kind === 'nvlink2-ssatgt' ? { tgt: hex(value.tgt) } : {},
    },
    {
      id: Nvlink2CapId.LNKSPD,
      name: 'NVLINK2_LNKSPD',
      decode: (body) =>
        body.length >= 4
          ? { kind: 'nvlink2-lnkspd', linkSpeed: view(body).getUint32(0, true) }
          : undefined,
      describe: (value): Record<string, number> =>
        value.kind === 'nvlink2-lnkspd' ? { linkSpeed: value.linkSpeed } : {},
    },
  ];
