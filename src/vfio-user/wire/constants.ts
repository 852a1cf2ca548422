/**
 * vfio-user numbers: commands, header flags, DMA and device flags, defaults and limits. Source:
 * QEMU docs/interop/vfio-user.rst ("Commands", "Header", "VFIO_USER_VERSION", "VFIO_USER_DMA_MAP")
 * and hw/vfio-user/protocol.h; VFIO flags the device model already owns (region, IRQ info,
 * SET_IRQS) are re-exported from src/vfio so each number is defined once.
 */
export { IrqInfoFlag, IrqSetFlag, RegionFlag } from '../../vfio/index.ts';

/** Message commands ("Commands" table). 14 (DIRTY_PAGES) was retired from the spec. */
export enum Command {
  VERSION = 1,
  DMA_MAP = 2,
  DMA_UNMAP = 3,
  DEVICE_GET_INFO = 4,
  DEVICE_GET_REGION_INFO = 5,
  DEVICE_GET_REGION_IO_FDS = 6,
  DEVICE_GET_IRQ_INFO = 7,
  DEVICE_SET_IRQS = 8,
  REGION_READ = 9,
  REGION_WRITE = 10,
  DMA_READ = 11,
  DMA_WRITE = 12,
  DEVICE_RESET = 13,
  REGION_WRITE_MULTI = 15,
  DEVICE_FEATURE = 16,
  MIG_DATA_READ = 17,
  MIG_DATA_WRITE = 18,
}

/** "VFIO_USER_REGION_READ" for logs; `command 14` for numbers no enum member has. */
export function commandName(command: number): string {
  const name = Command[command];
  return name === undefined ? `command ${command}` : `VFIO_USER_${name}`;
}

/** Whether `command` is one this implementation knows. */
export function isKnownCommand(command: number): command is Command {
  return Command[command] !== undefined;
}

/** Header flag bits ("Header": bits 0–3 type, 4 No_reply, 5 Error). */
export const HeaderFlag = {
  TYPE_MASK: 0xf,
  NO_REPLY: 0x10,
  ERROR: 0x20,
} as const;

/** The type field of the header flags. */
export enum MessageType {
  COMMAND = 0,
  REPLY = 1,
}

/** sizeof(struct vfio_user_header). */
export const HEADER_SIZE = 16;

/** DMA_MAP flags (bit 0 readable, bit 1 writeable; libvfio-user adds MAPPABLE 4). */
export const DmaMapFlag = { READ: 0x1, WRITE: 0x2 } as const;

/** DMA_UNMAP flags: GET_DIRTY_BITMAP (old protocol, libvfio-user) and ALL (unmap everything). */
export const DmaUnmapFlag = { GET_DIRTY_BITMAP: 0x1, ALL: 0x2 } as const;

/** VFIO_DEVICE_FLAGS_* (include/uapi/linux/vfio.h) as DEVICE_GET_INFO carries them. */
export const DeviceInfoFlag = { RESET: 0x1, PCI: 0x2 } as const;

/** DEVICE_FEATURE flags: feature index in bits 0–15, then GET/SET/PROBE. */
export const DeviceFeatureFlag = {
  MASK: 0xffff,
  GET: 1 << 16,
  SET: 1 << 17,
  PROBE: 1 << 18,
} as const;

/**
 * VFIO_DEVICE_FEATURE_* indexes (include/uapi/linux/vfio.h) the server knows: migration v2
 * (1, 2, 9) and DMA dirty logging (6, 7, 8).
 */
export const DeviceFeature = {
  MIGRATION: 1,
  MIG_DEVICE_STATE: 2,
  DMA_LOGGING_START: 6,
  DMA_LOGGING_STOP: 7,
  DMA_LOGGING_REPORT: 8,
  MIG_DATA_SIZE: 9,
} as const;

/**
 * Capability defaults ("VFIO_USER_VERSION" capabilities table): what a peer that states nothing
 * is assumed to accept. The server announces its own max_dma_maps (dma-limits.ts).
 */
export const DEFAULT_MAX_MSG_FDS = 1;
/** max_data_xfer_size when not stated: 1 MiB (vfio-user.rst "Version"). */
export const DEFAULT_MAX_DATA_XFER_SIZE = 1024 * 1024;
/** max_dma_maps when not stated: 65535 (vfio-user.rst "Version"). */
export const DEFAULT_MAX_DMA_MAPS = 65535;
/** pgsizes when not stated: 4 KiB pages (vfio-user.rst "Version"). */
export const DEFAULT_PGSIZES = 4096;

/** QEMU's bounds on what a server may announce (hw/vfio-user/protocol.h VFIO_USER_MAX_MAX_*). */
export const QEMU_MAX_MSG_FDS = 16;
/** Largest max_data_xfer_size QEMU accepts: 64 MiB (VFIO_USER_MAX_MAX_XFER). */
export const QEMU_MAX_DATA_XFER_SIZE = 64 * 1024 * 1024;

/** REGION_WRITE_MULTI: bytes of data per entry and QEMU's entries per message. */
export const WRITE_MULTI_DATA_SIZE = 8;
/** Bytes of one REGION_WRITE_MULTI entry: offset u64, region u32, count u32, 8 data bytes. */
export const WRITE_MULTI_ENTRY_SIZE = 24;
/** Most entries QEMU puts in one REGION_WRITE_MULTI message (VFIO_USER_MULTI_MAX). */
export const WRITE_MULTI_MAX_ENTRIES = 200;
