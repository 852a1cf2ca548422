/**
 * What a VMM learns of one passed-through PCI function, and how QEMU 4.1–8.1 classified it
 * (hw/vfio/pci-quirks.c vfio_pci_nvidia_v100_ram_init / vfio_pci_nvlink2_init, called from
 * hw/vfio/pci.c vfio_realize): an NVIDIA function with the 0x800010de/1 region and an SSATGT
 * capability is an NVLink2 GPU whose whole region becomes guest RAM; an IBM function with the
 * 0x80001014/1 region and both SSATGT and LNKSPD is an NVLink bridge (its ATSD page is mapped
 * only when the region is not empty); everything else stays a plain vfio-pci device (the
 * quirks answer ENODEV, which vfio_realize does not report). Pure: no I/O here.
 */

import {
  NVLINK2_ATSD_REGION_TYPE,
  NVLINK2_RAM_REGION_TYPE,
  VFIO_REGION_SUBTYPE_IBM_NVLINK2_ATSD,
  VFIO_REGION_SUBTYPE_NVIDIA_NVLINK2_RAM,
} from '../nvlink2/index.ts';
import { PCI_VENDOR_ID_IBM, PCI_VENDOR_ID_NVIDIA } from '../platform/index.ts';
import { hex } from '../text/index.ts';

/** A device-specific region: its TYPE capability and the NVLink2 capabilities it carries. */
export interface TypedRegionFacts {
  readonly index: number;
  readonly type: number;
  readonly subtype: number;
  readonly size: bigint;
  /** VFIO_REGION_INFO_CAP_NVLINK2_SSATGT, or null when absent. */
  readonly tgt: bigint | null;
  /** VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD, or null when absent. */
  readonly linkSpeed: number | null;
}

/** One function as the VMM sees it (config space, region info, its host IOMMU group). */
export interface DeviceFacts {
  /** Host PCI name, DDDD:BB:DD.F. */
  readonly address: string;
  readonly vendor: number;
  readonly device: number;
  /** The 24-bit class code (PCI_CLASS_PROG..PCI_CLASS_DEVICE). */
  readonly classCode: number;
  /** The host IOMMU group, or null when unknown (then a GPU and its bridges count as one). */
  readonly iommuGroup: number | null;
  /** Every region with a TYPE capability. */
  readonly regions: readonly TypedRegionFacts[];
}

/** What QEMU made of a function. */
export type DeviceRole =
  | { readonly role: 'gpu'; readonly tgt: bigint; readonly size: bigint }
  | {
      readonly role: 'bridge';
      readonly tgt: bigint;
      readonly size: bigint;
      readonly linkSpeed: number;
      /** QEMU mmaps the ATSD page only when the region is not empty ("Some NVLink bridges may not have assigned ATSD"). */
      readonly mapped: boolean;
    }
  | { readonly role: 'plain'; readonly reason: string };

function findRegion(
  facts: DeviceFacts,
  type: number,
  subtype: number,
): TypedRegionFacts | undefined {
  // vfio_get_dev_region_info: the first region whose TYPE cap matches type and subtype.
  return facts.regions.find((r) => r.type === type && r.subtype === subtype);
}

/** The role QEMU's quirks give `facts` (vfio_realize: NVIDIA first, then IBM). */
export function classifyDevice(facts: DeviceFacts): DeviceRole {
  if (facts.vendor === PCI_VENDOR_ID_NVIDIA) {
    const region = findRegion(
      facts,
      NVLINK2_RAM_REGION_TYPE,
      VFIO_REGION_SUBTYPE_NVIDIA_NVLINK2_RAM,
    );
    if (!region) return { role: 'plain', reason: 'no NVLink2 RAM region (0x800010de/1)' };
    // pci-quirks.c: no SSATGT cap -> -ENODEV, a plain GPU.
    if (region.tgt === null) return { role: 'plain', reason: 'RAM region without SSATGT' };
    // spapr_phb_pci_collect_nvgpu: only devices with a non-zero "nvlink2-tgt" are collected.
    if (region.tgt === 0n) return { role: 'plain', reason: 'tgt is 0' };
    return { role: 'gpu', tgt: region.tgt, size: region.size };
  }
  if (facts.vendor === PCI_VENDOR_ID_IBM) {
    const region = findRegion(
      facts,
      NVLINK2_ATSD_REGION_TYPE,
      VFIO_REGION_SUBTYPE_IBM_NVLINK2_ATSD,
    );
    if (!region) return { role: 'plain', reason: 'no NVLink2 ATSD region (0x80001014/1)' };
    if (region.tgt === null) return { role: 'plain', reason: 'ATSD region without SSATGT' };
    if (region.linkSpeed === null) return { role: 'plain', reason: 'ATSD region without LNKSPD' };
    if (region.tgt === 0n) return { role: 'plain', reason: 'tgt is 0' };
    return {
      role: 'bridge',
      tgt: region.tgt,
      size: region.size,
      linkSpeed: region.linkSpeed,
      mapped: region.size !== 0n,
    };
  }
  return { role: 'plain', reason: `vendor ${hex(facts.vendor)} has no NVLink2 quirk` };
}
