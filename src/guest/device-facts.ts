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

/**
 * A BAR or the expansion ROM as QEMU's vfio-pci registered it with pci_register_bar
 * (hw/vfio/pci.c vfio_bar_prepare / vfio_bar_register, vfio_pci_size_rom).
 */
export interface BarFacts {
  /** The io_regions index: 0–5 for BAR0–5, 6 (PCI_ROM_SLOT) for the ROM. */
  readonly index: number;
  /** Bytes: the VFIO region's size (0 for an unimplemented BAR or the upper half of a 64-bit one). */
  readonly size: bigint;
  /**
   * The BAR register's low bits as vfio_bar_prepare kept them (`pci_bar & ~PCI_BASE_ADDRESS_MEM_MASK`,
   * or the I/O bits): bit 0 I/O space, bits 1–2 memory type (0x4 = 64-bit), bit 3 prefetchable.
   */
  readonly type: number;
}

/** One function as the VMM sees it (config space, region info, its host IOMMU group). */
export interface DeviceFacts {
  /** Host PCI name, DDDD:BB:DD.F. */
  readonly address: string;
  readonly vendor: number;
  readonly device: number;
  /** The 24-bit class code (PCI_CLASS_PROG..PCI_CLASS_DEVICE). */
  readonly classCode: number;
  /** PCI_HEADER_TYPE (0x0e), the multi-function bit included. */
  readonly headerType: number;
  /** BAR0–5 and the ROM (index 6), the empty ones included. */
  readonly bars: readonly BarFacts[];
  /** The host IOMMU group, or null when unknown (then a GPU and its bridges count as one). */
  readonly iommuGroup: number | null;
  /** Every region with a TYPE capability. */
  readonly regions: readonly TypedRegionFacts[];
  /** Region sizes of BAR0..BAR5 (0 for none), when read. */
  readonly barSizes?: readonly bigint[];
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
