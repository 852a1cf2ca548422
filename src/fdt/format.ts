/**
 * Numbers of the flattened devicetree (DTB) format, defined once for the parser and the
 * serializer. Source: Devicetree Specification v0.3, chapter 5 "Flattened Devicetree (DTB)
 * Format"; dtc's libfdt/fdt.h.
 */

/** `FDT_MAGIC`, big-endian at offset 0. */
export const FDT_MAGIC = 0xd00dfeed;

/** Structure block tokens (spec 5.4.1). */
export const FDT_BEGIN_NODE = 0x1;
/** Token ending a node (spec 5.4.1 FDT_END_NODE). */
export const FDT_END_NODE = 0x2;
/** Token of a property: u32 length, u32 name offset, then the value (spec 5.4.1 FDT_PROP). */
export const FDT_PROP = 0x3;
/** Token to skip (spec 5.4.1 FDT_NOP). */
export const FDT_NOP = 0x4;
/** Token ending the structure block (spec 5.4.1 FDT_END). */
export const FDT_END = 0x9;

/** Versions we read (last_comp_version must be at most the newest) and the one we write. */
export const FDT_FIRST_READ_VERSION = 16;
/**
 * The `last_comp_version` we write: version 16 readers can read our blobs (dtc writes the same).
 */
export const FDT_LAST_COMP_VERSION = 16;
/** The `version` we write (17, as dtc does). */
export const FDT_WRITE_VERSION = 17;

/** Header field offsets (struct fdt_header, all big-endian u32). */
export const HEADER = {
  magic: 0,
  totalsize: 4,
  offDtStruct: 8,
  offDtStrings: 12,
  offMemRsvmap: 16,
  version: 20,
  lastCompVersion: 24,
  bootCpuidPhys: 28,
  sizeDtStrings: 32,
  sizeDtStruct: 36,
} as const;

/** Header size by version, as libfdt's `fdt_header_size_()`: v16 lacks size_dt_struct. */
export function headerSize(version: number): number {
  return version >= 17 ? 40 : 36;
}

/** One memory reservation entry: address u64, size u64. */
export const MEMRSV_ENTRY_SIZE = 16;

/** Rounds `n` up to a multiple of `align`. */
export function alignUp(n: number, align: number): number {
  // Arithmetic, not bit masks: offsets may exceed 2^31.
  return n + ((align - (n % align)) % align);
}
