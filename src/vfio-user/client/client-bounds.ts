/**
 * What a client accepts from a server before a count, size or offset it sent drives a loop, an
 * allocation or a mapping. QEMU's client is the model (hw/vfio-user/device.c
 * vfio_user_get_device_info, vfio_user_device_io_get_region_info, _region_read;
 * hw/vfio-user/proxy.c check_max_fds, check_max_xfer, check_pgsizes, check_max_dma,
 * check_bitmap); where QEMU trusts the kernel (capability chains, sparse areas, the fd behind a
 * mapping) the kernel's own shape is the rule. Every check throws VfioError with the errno QEMU
 * gives (EINVAL) and names the field, its value and the bound.
 */
import { fstatSync } from 'node:fs';
import { hex } from '../../text/index.ts';
import type {
  DecodedRegionInfo,
  SparseMmapArea,
  VariantCapabilityValue,
} from '../../vfio/index.ts';
import { VFIO_REGION_INFO_SIZE, VfioError } from '../../vfio/index.ts';
import type { DeviceInfoPayload, VersionCapabilities } from '../wire/index.ts';
import { QEMU_MAX_DATA_XFER_SIZE, QEMU_MAX_MSG_FDS, RegionFlag } from '../wire/index.ts';

/** hw/vfio-user/device.c: "defend against a malign server trying to force us to run out of memory". */
export const VFIO_USER_MAX_REGIONS = 100;
/** hw/vfio-user/device.c: most IRQ indexes QEMU accepts from a server. */
export const VFIO_USER_MAX_IRQS = 50;
/** hw/vfio-user/protocol.h VFIO_USER_DEF_MAP_MAX: a server may only lower it. */
export const VFIO_USER_DEF_MAP_MAX = 65535;
/** hw/vfio-user/protocol.h VFIO_USER_DEF_MAX_BITMAP: a server may only lower it. */
export const VFIO_USER_DEF_MAX_BITMAP = 256 * 1024 * 1024;
/** hw/vfio-user/protocol.h VFIO_USER_DEF_PGSIZE: page sizes must be multiples of it. */
export const VFIO_USER_DEF_PGSIZE = 4096;
/** PCIE_CONFIG_SPACE_SIZE (include/hw/pci/pci.h): the largest config space there is. */
export const PCIE_CONFIG_SPACE_SIZE = 4096;
/**
 * Most areas of one SPARSE_MMAP capability we map. The kernel makes at most two (the MSI-X
 * table hole, vfio_pci_core.c msix_mmappable_cap); each area costs a mapping.
 */
export const MAX_SPARSE_AREAS = 64;

/**
 * vfio_user_get_device_info: num_regions ≤ 100 and num_irqs ≤ 50.
 * @throws VfioError EINVAL naming the count.
 */
export function checkDeviceInfo(info: DeviceInfoPayload): void {
  if (info.numRegions > VFIO_USER_MAX_REGIONS) {
    throw new VfioError(
      'EINVAL',
      `DEVICE_GET_INFO reply: num_regions ${info.numRegions} exceeds ${VFIO_USER_MAX_REGIONS} (QEMU's VFIO_USER_MAX_REGIONS)`,
    );
  }
  if (info.numIrqs > VFIO_USER_MAX_IRQS) {
    throw new VfioError(
      'EINVAL',
      `DEVICE_GET_INFO reply: num_irqs ${info.numIrqs} exceeds ${VFIO_USER_MAX_IRQS} (QEMU's VFIO_USER_MAX_IRQS)`,
    );
  }
}

function capabilityError(what: string): VfioError {
  return new VfioError('EINVAL', `VERSION capabilities: ${what}`);
}

/**
 * proxy.c caps_check: max_msg_fds ≤ 16, 1 ≤ max_data_xfer_size ≤ 64 MiB (QEMU allows 0, which
 * allows no data; we refuse it rather than loop on empty reads), page sizes multiples of 4 KiB,
 * max_dma_maps ≤ 65535, migration max_bitmap_size ≤ 256 MiB.
 * @throws VfioError EINVAL naming the member, its value and the bound.
 */
export function checkServerCapabilities(caps: VersionCapabilities | null): void {
  if (caps === null) return;
  const over = (name: string, value: number, max: number, source: string) => {
    if (value > max) throw capabilityError(`"${name}" ${value} exceeds ${max} (QEMU's ${source})`);
  };
  const pages = (name: string, value: number) => {
    if (value % VFIO_USER_DEF_PGSIZE !== 0)
      throw capabilityError(`"${name}" ${hex(value)} has page sizes under ${VFIO_USER_DEF_PGSIZE}`);
  };
  if (caps.maxMsgFds !== undefined)
    over('max_msg_fds', caps.maxMsgFds, QEMU_MAX_MSG_FDS, 'VFIO_USER_MAX_MAX_FDS');
  if (caps.maxDataXferSize !== undefined) {
    if (caps.maxDataXferSize === 0) throw capabilityError('"max_data_xfer_size" 0 allows no data');
    over(
      'max_data_xfer_size',
      caps.maxDataXferSize,
      QEMU_MAX_DATA_XFER_SIZE,
      'VFIO_USER_MAX_MAX_XFER',
    );
  }
  if (caps.pgsizes !== undefined) pages('pgsizes', caps.pgsizes);
  if (caps.maxDmaMaps !== undefined)
    over('max_dma_maps', caps.maxDmaMaps, VFIO_USER_DEF_MAP_MAX, 'VFIO_USER_DEF_MAP_MAX');
  if (caps.migration?.pgsize !== undefined) pages('migration.pgsize', caps.migration.pgsize);
  if (caps.migration?.maxBitmapSize !== undefined) {
    over(
      'migration.max_bitmap_size',
      caps.migration.maxBitmapSize,
      VFIO_USER_DEF_MAX_BITMAP,
      'VFIO_USER_DEF_MAX_BITMAP',
    );
  }
}

/**
 * The argsz a first GET_REGION_INFO reply asks for, before asking again with it: no more than
 * `maxArgsz` (the largest reply this client receives).
 * @throws VfioError EINVAL naming the region and the argsz.
 */
export function checkRegionArgsz(index: number, argsz: number, maxArgsz: number): void {
  if (argsz > maxArgsz) {
    throw new VfioError(
      'EINVAL',
      `region ${index}: GET_REGION_INFO reply asks for argsz ${argsz}, more than a reply may carry (${maxArgsz})`,
    );
  }
}

/**
 * A GET_REGION_INFO reply for region `index` asked with `argsz`: it names the region asked
 * for; with the CAPS flag and a chain present, cap_offset lies past the fixed 32 bytes and
 * inside the reply (vfio_user_device_io_get_region_info: "cap_offset in valid area"), and the
 * chain walks to its end.
 * @throws VfioError EINVAL naming the region and what was wrong.
 */
export function checkRegionInfo<V extends VariantCapabilityValue>(
  index: number,
  raw: Uint8Array,
  decoded: DecodedRegionInfo<V>,
): void {
  if (decoded.index !== index) {
    throw new VfioError(
      'EINVAL',
      `GET_REGION_INFO of region ${index} answered for region ${decoded.index}`,
    );
  }
  if (decoded.capOffset !== 0 && (decoded.flags & RegionFlag.CAPS) !== 0) {
    if (decoded.capOffset < VFIO_REGION_INFO_SIZE) {
      throw new VfioError(
        'EINVAL',
        `region ${index}: cap_offset ${decoded.capOffset} lies inside the ${VFIO_REGION_INFO_SIZE}-byte fixed part`,
      );
    }
    if (decoded.capOffset >= raw.length) {
      throw new VfioError(
        'EINVAL',
        `region ${index}: cap_offset ${decoded.capOffset} is outside the ${raw.length}-byte reply`,
      );
    }
  }
  if (decoded.capError !== undefined)
    throw new VfioError('EINVAL', `region ${index}: ${decoded.capError}`);
}

/**
 * The second GET_REGION_INFO, asked with the argsz the first wanted, must not want more.
 * @throws VfioError EINVAL naming both sizes.
 */
export function checkArgszSettled(index: number, asked: number, wanted: number): void {
  if (wanted > asked) {
    throw new VfioError(
      'EINVAL',
      `region ${index}: GET_REGION_INFO asked for argsz ${asked}, then ${wanted}`,
    );
  }
}

/**
 * A REGION_READ or REGION_WRITE reply: the region and offset asked for, exactly `count` bytes
 * (QEMU's vfio_user_device_io_region_read refuses more with E2BIG; fewer would leave the
 * caller's buffer partly unread, or a write partly done unnoticed).
 * @throws VfioError EINVAL naming the access and the reply.
 */
export function checkRegionAccess(
  command: 'REGION_READ' | 'REGION_WRITE',
  asked: { region: number; offset: bigint; count: number },
  got: { region: number; offset: bigint; count: number },
): void {
  const where = `${command} of region ${asked.region} at ${hex(asked.offset)}`;
  if (got.region !== asked.region || got.offset !== asked.offset) {
    throw new VfioError(
      'EINVAL',
      `${where} answered for region ${got.region} at ${hex(got.offset)}`,
    );
  }
  if (got.count !== asked.count) {
    const what = command === 'REGION_READ' ? 'came back' : 'were written';
    throw new VfioError('EINVAL', `${where}: ${got.count} of ${asked.count} bytes ${what}`);
  }
}

/**
 * A reply that echoes the index asked for (GET_IRQ_INFO), or the count of entries sent
 * (REGION_WRITE_MULTI's wr_cnt).
 * @throws VfioError EINVAL naming both.
 */
export function checkEcho(what: string, asked: number | bigint, got: number | bigint): void {
  if (got !== asked) throw new VfioError('EINVAL', `${what} ${asked} answered with ${got}`);
}

/**
 * The config space region's size: at most PCIe's 4 KiB, so that reading it all is bounded.
 * @throws VfioError EINVAL naming the size.
 */
export function checkConfigSize(index: number, size: bigint): void {
  if (size > BigInt(PCIE_CONFIG_SPACE_SIZE)) {
    throw new VfioError(
      'EINVAL',
      `region ${index} (config space) of ${size} bytes exceeds ${PCIE_CONFIG_SPACE_SIZE} (PCIE_CONFIG_SPACE_SIZE)`,
    );
  }
}

/**
 * Before mapping region `index` from `fd` at `fdOffset`: at most MAX_SPARSE_AREAS areas, each
 * inside the region, and every byte mapped backed by the fd (a mapping past the end of a file
 * raises SIGBUS on the first touch, which would end this process).
 * @throws VfioError EINVAL naming the region, the area and the fd's size.
 */
export function checkMappable(
  index: number,
  fd: number,
  fdOffset: bigint,
  regionSize: bigint,
  areas: readonly SparseMmapArea[] | null,
): void {
  const where = `region ${index}`;
  if (areas !== null && areas.length > MAX_SPARSE_AREAS) {
    throw new VfioError(
      'EINVAL',
      `${where}: ${areas.length} sparse-mmap areas, at most ${MAX_SPARSE_AREAS}`,
    );
  }
  const fdSize = BigInt(fstatSync(fd).size);
  for (const a of areas ?? [{ offset: 0n, size: regionSize }]) {
    if (a.offset + a.size > regionSize) {
      throw new VfioError(
        'EINVAL',
        `${where}: sparse-mmap area ${hex(a.offset)}+${hex(a.size)} ends past the region of ${hex(regionSize)}`,
      );
    }
    const end = fdOffset + a.offset + a.size;
    if (a.size > 0n && end > fdSize) {
      throw new VfioError(
        'EINVAL',
        `${where}: ${hex(a.size)} bytes at fd offset ${hex(fdOffset + a.offset)} end past its fd of ${hex(fdSize)} bytes`,
      );
    }
  }
}
