/**
 * The served GPU as the bench drives it: a vfio-user client connected and negotiated like a
 * VMM, config space for trapped 4-byte reads (a VMM never maps it: every access is a round trip),
 * and the NVLink2 GPU RAM region (type 0x800010de, subtype 1) for bulk reads and writes and for
 * the mapping, found by its TYPE capability among the device-specific regions (index ≥ 9).
 */

import { closeFd } from '../native/index.ts';
import {
  NVLINK2_RAM_REGION_TYPE,
  VFIO_REGION_SUBTYPE_NVIDIA_NVLINK2_RAM,
} from '../nvlink2/index.ts';
import { VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_NUM_REGIONS } from '../vfio/index.ts';
import {
  checkMappable,
  MappedRegion,
  type RegionInfoResult,
  VfioUserClient,
} from '../vfio-user/index.ts';

/** The region index of config space, which the round-trip figures read (a VMM never maps it). */
export const CONFIG = VFIO_PCI_CONFIG_REGION_INDEX;

/**
 * The served GPU the bench measures: its client, the GPU RAM region index, and its mapping on
 * demand.
 */
export interface GpuTarget {
  readonly client: VfioUserClient;
  /** Index of the GPU RAM region. */
  readonly gpuRam: number;
  /**
   * Maps the GPU RAM region through the fd of its region-info reply (once).
   * @throws VfioError EINVAL when the fd cannot back the whole region (checkMappable).
   */
  mapGpuRam(): MappedRegion;
  close(): void;
}

function isGpuRam(r: RegionInfoResult): boolean {
  return r.decoded.caps.some(
    (c) =>
      c.value.kind === 'type' &&
      c.value.type === NVLINK2_RAM_REGION_TYPE &&
      c.value.subtype === VFIO_REGION_SUBTYPE_NVIDIA_NVLINK2_RAM,
  );
}

/**
 * Connects to the GPU's socket and finds its GPU RAM region.
 * @throws Error when the device has no GPU RAM region or it came without an fd.
 */
export async function connectGpu(path: string): Promise<GpuTarget> {
  const client = await VfioUserClient.connect(path);
  try {
    const info = await client.getDeviceInfo();
    let ram: RegionInfoResult | null = null;
    for (let index = VFIO_PCI_NUM_REGIONS; index < info.numRegions && ram === null; index++) {
      const r = await client.regionInfo(index);
      if (isGpuRam(r)) ram = r;
      else if (r.fd !== null) closeFd(r.fd);
    }
    if (ram === null)
      throw new Error(`${path}: no NVLink2 GPU RAM region among ${info.numRegions}`);
    if (ram.fd === null) throw new Error(`${path}: the GPU RAM region came without an fd`);
    const fd = ram.fd;
    const found = ram.info;
    let mapped: MappedRegion | null = null;
    return {
      client,
      gpuRam: found.index,
      mapGpuRam() {
        if (mapped === null) {
          checkMappable(found.index, fd, found.offset, found.size, null);
          mapped = MappedRegion.map(found.index, fd, found.offset, found.size, null, true);
        }
        return mapped;
      },
      close() {
        if (mapped !== null) mapped.unmap();
        else closeFd(fd);
        client.close();
      },
    };
  } catch (e) {
    client.close();
    throw e;
  }
}
