/**
 * Every vfio-user payload as a typed value: one discriminated union for commands (requests)
 * and one for replies, keyed by `command` (vfio-user.rst, one section per command). Payloads
 * only: the header travels beside them (header.ts) and an error reply has no payload at all.
 * File descriptors travel beside them too (SCM_RIGHTS), never inside.
 */
import type { RegionInfoFields } from '../../vfio/index.ts';
import type { Command } from './constants.ts';
import type { VersionCapabilities } from './version-capabilities.ts';

/** VERSION payload, request and reply alike: major, minor, JSON capabilities (+NUL). */
export interface VersionPayload {
  major: number;
  minor: number;
  /** null when the message carries no JSON at all. */
  capabilities: VersionCapabilities | null;
}

/** struct vfio_user_dma_map (32 bytes). */
export interface DmaMapPayload {
  argsz: number;
  flags: number;
  /** Offset of the region in the fd sent with the message (0 without one). */
  offset: bigint;
  address: bigint;
  size: bigint;
}

/** struct vfio_user_dma_unmap without a bitmap (24 bytes); the reply echoes it. */
export interface DmaUnmapPayload {
  argsz: number;
  flags: number;
  address: bigint;
  size: bigint;
}

/** struct vfio_device_info (16 bytes). */
export interface DeviceInfoPayload {
  argsz: number;
  flags: number;
  numRegions: number;
  numIrqs: number;
}

/**
 * struct vfio_region_info (32 bytes; src/vfio/region-info.ts owns it); a request sets argsz
 * and index only.
 */
export type RegionInfoFixed = RegionInfoFields;

/** struct vfio_user_region_io_fds_request / reply head (16 bytes). */
export interface RegionIoFdsHead {
  argsz: number;
  flags: number;
  index: number;
  count: number;
}

/** struct vfio_irq_info (16 bytes). */
export interface IrqInfoPayload {
  argsz: number;
  flags: number;
  index: number;
  count: number;
}

/** One entry of REGION_WRITE_MULTI: at most 8 bytes of data. */
export interface WriteMultiEntry {
  offset: bigint;
  region: number;
  data: Uint8Array;
}

/** Every request by command, decoded (a discriminated union on `command`). */
export type Request =
  | ({ command: Command.VERSION } & VersionPayload)
  | ({ command: Command.DMA_MAP } & DmaMapPayload)
  | ({ command: Command.DMA_UNMAP } & DmaUnmapPayload)
  | ({ command: Command.DEVICE_GET_INFO } & DeviceInfoPayload)
  | ({ command: Command.DEVICE_GET_REGION_INFO } & RegionInfoFixed)
  | ({ command: Command.DEVICE_GET_REGION_IO_FDS } & RegionIoFdsHead)
  | ({ command: Command.DEVICE_GET_IRQ_INFO } & IrqInfoPayload)
  | {
      command: Command.DEVICE_SET_IRQS;
      argsz: number;
      flags: number;
      index: number;
      start: number;
      count: number;
      /** The bytes after the 20-byte head: one bool byte per vector with DATA_BOOL, else empty. */
      data: Uint8Array;
    }
  | { command: Command.REGION_READ; offset: bigint; region: number; count: number }
  | { command: Command.REGION_WRITE; offset: bigint; region: number; data: Uint8Array }
  | { command: Command.DMA_READ; address: bigint; count: bigint }
  | { command: Command.DMA_WRITE; address: bigint; data: Uint8Array }
  | { command: Command.DEVICE_RESET }
  | { command: Command.REGION_WRITE_MULTI; writes: WriteMultiEntry[] }
  | { command: Command.DEVICE_FEATURE; argsz: number; flags: number; data: Uint8Array }
  | { command: Command.MIG_DATA_READ; argsz: number; size: number }
  | { command: Command.MIG_DATA_WRITE; argsz: number; data: Uint8Array };

/** Every reply by command, decoded (a discriminated union on `command`). */
export type Reply =
  | ({ command: Command.VERSION } & VersionPayload)
  | { command: Command.DMA_MAP }
  | ({ command: Command.DMA_UNMAP } & DmaUnmapPayload)
  | ({ command: Command.DEVICE_GET_INFO } & DeviceInfoPayload)
  | {
      command: Command.DEVICE_GET_REGION_INFO;
      info: RegionInfoFixed;
      /** Bytes after the fixed 32 (the capability chain the device layer encoded). */
      capabilities: Uint8Array;
    }
  | ({ command: Command.DEVICE_GET_REGION_IO_FDS } & RegionIoFdsHead & { subRegions: Uint8Array })
  | ({ command: Command.DEVICE_GET_IRQ_INFO } & IrqInfoPayload)
  | { command: Command.DEVICE_SET_IRQS }
  | { command: Command.REGION_READ; offset: bigint; region: number; data: Uint8Array }
  | { command: Command.REGION_WRITE; offset: bigint; region: number; count: number }
  | { command: Command.DMA_READ; address: bigint; data: Uint8Array }
  | { command: Command.DMA_WRITE; address: bigint; count: bigint }
  | { command: Command.DEVICE_RESET }
  | { command: Command.REGION_WRITE_MULTI; count: bigint }
  | { command: Command.DEVICE_FEATURE; argsz: number; flags: number; data: Uint8Array }
  | { command: Command.MIG_DATA_READ; argsz: number; data: Uint8Array }
  | { command: Command.MIG_DATA_WRITE };

/** The request variant for command `C`. */
export type RequestOf<C extends Command> = Extract<Request, { command: C }>;
/** The reply variant for command `C`. */
export type ReplyOf<C extends Command> = Extract<Reply, { command: C }>;
