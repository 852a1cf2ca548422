/**
 * A VFIO region as the kernel's vfio-pci core holds it (include/linux/vfio_pci_core.h,
 * struct vfio_pci_region / vfio_pci_regops, v5.12): data plus up to four operations.
 * Device-specific regions take indexes from 9 (VFIO_PCI_NUM_REGIONS).
 */

import type { PlainRange } from '../native/index.ts';
import type { SharedMemory } from './shared-memory.ts';

/** VFIO_REGION_INFO_FLAG_* (include/uapi/linux/vfio.h). */
export const RegionFlag = { READ: 0x1, WRITE: 0x2, MMAP: 0x4, CAPS: 0x8 } as const;

/**
 * The core's VFIO_REGION_INFO_CAP_* ids (include/uapi/linux/vfio.h); ids a variant driver adds
 * to its own regions' chains are the variant's (VariantVocabulary.regionCapabilities).
 */
export const RegionCapId = {
  SPARSE_MMAP: 1,
  TYPE: 2,
  MSIX_MAPPABLE: 3,
} as const;

/** VFIO_REGION_TYPE_PCI_VENDOR_TYPE: device-specific region types are this | vendor. */
export const PCI_VENDOR_TYPE = 0x80000000;

/** One capability to append to a region's chain: id, version and the body after the header. */
export interface RegionCapability {
  readonly id: number;
  readonly version: number;
  readonly body: Uint8Array;
}

/** What a region's mmap op hands out: a shareable file and where in it the region starts. */
export interface MmapGrant {
  /** A file descriptor (memfd) another process can map; owned by the region, not the caller. */
  readonly fd: number;
  /** Offset in `fd` of region offset `offset` of the request. */
  readonly fdOffset: bigint;
  readonly length: bigint;
}

/**
 * An mmap of a region: offset inside the region and length in bytes, and the user address it lands at.
 */
export interface MmapRequest {
  /** Offset inside the region (the kernel's vm_pgoff minus the region's index << 40). */
  readonly offset: bigint;
  readonly length: bigint;
  /** The user address the mapping will live at, for tracepoints (0n when not known). */
  readonly userAddress: bigint;
}

/** struct vfio_pci_regops. Every op throws VfioError; a byte count is never negative. */
export interface RegionOps {
  /** Read into `buf` (write = false) or write from `buf`, at `offset`; returns bytes done. */
  rw(offset: bigint, buf: Uint8Array, write: boolean): number;
  /**
   * A read of up to `count` bytes at `offset`, as `rw` checks and clips it, that lends the
   * bytes (a view of the region's memory, valid until the next access) instead of copying them
   * into a buffer. Optional; regions without it are read through `rw`.
   */
  readView?(offset: bigint, count: number): Uint8Array;
  /**
   * Where a write of exactly `count` bytes at `offset` may be received in place (the region's
   * memory), to be committed by `rw(offset, thatView, true)`, which then copies nothing but
   * does everything else a write does. Null when the write is not a plain in-range copy (it is
   * clipped, fenced, hooked...): the caller writes from a buffer of its own. Never throws.
   */
  writeTarget?(offset: bigint, count: number): Uint8Array | null;
  mmap?(request: MmapRequest): MmapGrant;
  /**
   * The memory this region's mmap grants are made from (its `fd` is `MmapGrant.fd`'s source),
   * once it exists: what a peer may still hold, by a descriptor or a mapping, after its session
   * ended. Optional: none (the region cannot be mapped, or its memory was never made).
   */
  mappedMemory?(): SharedMemory | undefined;
  /**
   * The ranges of the region (its index given) whose reads and writes have no side effect
   * beyond the bytes, for the native fast path (src/native/fast-path.ts). Optional: none.
   */
  plainRanges?(index: number): PlainRange[];
  release?(): void;
  /** Capabilities after the TYPE capability the core adds for device-specific regions. */
  capabilities?(): RegionCapability[];
  /**
   * The region's memory for migration (what a saved stream carries), or undefined when the
   * region keeps no state of its own.
   */
  contents?(): RegionContents | undefined;
}

/**
 * A region's memory as migration reads and restores it: the populated ranges (holes read as
 * zeros and are never sent), reads, and writes that have no side effect (no hook, no launch).
 */
export interface RegionContents {
  /** Populated [from, to) byte ranges, sorted (lseek SEEK_DATA/SEEK_HOLE). */
  dataRanges(): [bigint, bigint][];
  /** Fills `buf` from `offset` (holes read as zeros). */
  read(offset: bigint, buf: Uint8Array): void;
  /**
   * The live bytes of [offset, offset + length) without a copy (SharedMemory.view), or null
   * when they cannot be lent (then `read`). Optional.
   */
  view?(offset: bigint, length: number): Uint8Array | null;
  /** Stores `data` at `offset`. @throws VfioError ENOMEM past the memory budget */
  write(offset: bigint, data: Uint8Array): void;
  /**
   * Back to all holes but `kept` (sorted, disjoint [from, to) byte ranges; none: all holes):
   * a migration destination once its stream has loaded, which keeps what the stream wrote.
   */
  clear(kept?: readonly (readonly [bigint, bigint])[]): void;
}

/**
 * A registered region: index, type/subtype (device-specific regions), size in bytes, flags and its
 * ops (vfio_pci_region).
 */
export interface VfioRegion {
  readonly index: number;
  /** For device-specific regions (index ≥ 9): VFIO_REGION_TYPE_PCI_VENDOR_TYPE | vendor. */
  readonly type: number | undefined;
  readonly subtype: number | undefined;
  readonly size: bigint;
  readonly flags: number;
  readonly ops: RegionOps;
}
