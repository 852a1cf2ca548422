/**
 * VFIO info capability chains (drivers/vfio/vfio.c vfio_info_cap_add / vfio_info_cap_shift /
 * vfio_info_add_capability, v5.12) and the core's region capability bodies of
 * include/uapi/linux/vfio.h (a variant's own capabilities come with its vocabulary). A chain is a run of capabilities, each an 8-byte header
 * {id u16, version u16, next u32} and a body, packed back to back with no padding; `next` is
 * the offset of the following header from the start of the info struct (0 ends the chain).
 * Host-endian: little-endian, as userspace on x86 (and ppc64le) reads it.
 */
import { type RegionCapability, RegionCapId } from './region.ts';

/** sizeof(struct vfio_info_cap_header). */
export const VFIO_INFO_CAP_HEADER_SIZE = 8;

/** A capability of `id` with `body` (version 1 unless given). */
export function capability(id: number, body: Uint8Array, version = 1): RegionCapability {
  return { id, version, body };
}

/** A `size`-byte body filled through a DataView (little-endian writes are the caller's). */
export function bodyOf(size: number, fill: (view: DataView) => void): Uint8Array {
  const body = new Uint8Array(size);
  fill(new DataView(body.buffer));
  return body;
}

/** struct vfio_region_info_cap_type: type u32, subtype u32. */
export function encodeTypeCap(type: number, subtype: number): RegionCapability {
  return capability(
    RegionCapId.TYPE,
    bodyOf(8, (v) => {
      v.setUint32(0, type >>> 0, true);
      v.setUint32(4, subtype >>> 0, true);
    }),
  );
}

/** One mmap-able area of a region (VFIO_REGION_INFO_CAP_SPARSE_MMAP): offset and size in bytes. */
export interface SparseMmapArea {
  readonly offset: bigint;
  readonly size: bigint;
}

/** struct vfio_region_info_cap_sparse_mmap: nr_areas u32, reserved u32, {offset u64, size u64}[]. */
export function encodeSparseMmapCap(areas: readonly SparseMmapArea[]): RegionCapability {
  return capability(
    RegionCapId.SPARSE_MMAP,
    bodyOf(8 + 16 * areas.length, (v) => {
      v.setUint32(0, areas.length, true);
      areas.forEach((a, i) => {
        v.setBigUint64(8 + 16 * i, a.offset, true);
        v.setBigUint64(16 + 16 * i, a.size, true);
      });
    }),
  );
}

/** VFIO_REGION_INFO_CAP_MSIX_MAPPABLE: a header with no body. */
export function encodeMsixMappableCap(): RegionCapability {
  return capability(RegionCapId.MSIX_MAPPABLE, new Uint8Array(0));
}

/** Bytes a chain takes (the kernel's caps.size). */
export function capChainSize(caps: readonly RegionCapability[]): number {
  return caps.reduce((n, c) => n + VFIO_INFO_CAP_HEADER_SIZE + c.body.length, 0);
}

/**
 * The chain as vfio_info_cap_add() builds it and vfio_info_cap_shift(caps, base) relocates
 * it: each `next` is `base` + the following header's offset in the chain, the last is 0.
 */
export function encodeCapChain(caps: readonly RegionCapability[], base: number): Uint8Array {
  const out = new Uint8Array(capChainSize(caps));
  const view = new DataView(out.buffer);
  let at = 0;
  caps.forEach((cap, i) => {
    const end = at + VFIO_INFO_CAP_HEADER_SIZE + cap.body.length;
    view.setUint16(at, cap.id, true);
    view.setUint16(at + 2, cap.version, true);
    view.setUint32(at + 4, i + 1 < caps.length ? base + end : 0, true);
    out.set(cap.body, at + VFIO_INFO_CAP_HEADER_SIZE);
    at = end;
  });
  return out;
}

/** One capability found when walking a chain. */
export interface DecodedCapability {
  readonly id: number;
  readonly version: number;
  /** Offset of the header from the start of the info struct. */
  readonly offset: number;
  readonly next: number;
  /** The bytes after the header up to the next header (or the end of the buffer). */
  readonly body: Uint8Array;
}

/**
 * Walk a chain starting at `first` inside `info` (offsets relative to `info`). The kernel only
 * appends (vfio_info_cap_add), so each `next` lies past its own header: the walk stops at next
 * 0, at an offset outside the buffer, or at a `next` that does not move forward (a loop, or a
 * chain that would hand out overlapping bodies), and reports why in `error`. At most
 * info.length / 8 steps; the bodies together are at most info.length bytes.
 */
export function decodeCapChain(
  info: Uint8Array,
  first: number,
): { caps: DecodedCapability[]; error?: string } {
  const caps: DecodedCapability[] = [];
  const view = new DataView(info.buffer, info.byteOffset, info.byteLength);
  let at = first;
  while (at !== 0) {
    if (at + VFIO_INFO_CAP_HEADER_SIZE > info.length) {
      return { caps, error: `capability at ${at} runs past the ${info.length}-byte reply` };
    }
    const next = view.getUint32(at + 4, true);
    const bodyStart = at + VFIO_INFO_CAP_HEADER_SIZE;
    caps.push({
      id: view.getUint16(at, true),
      version: view.getUint16(at + 2, true),
      offset: at,
      next,
      body: info.slice(bodyStart, next === 0 ? info.length : Math.min(next, info.length)),
    });
    if (next !== 0 && next < bodyStart) {
      return { caps, error: `capability at ${at}: next ${next} does not point past it` };
    }
    at = next;
  }
  return { caps };
}

/** A core capability's body as named values, for inspect and tests. */
export type CoreCapabilityValue =
  | { readonly kind: 'type'; readonly type: number; readonly subtype: number }
  | { readonly kind: 'sparse-mmap'; readonly areas: SparseMmapArea[] }
  | { readonly kind: 'msix-mappable' }
  | { readonly kind: 'unknown'; readonly id: number };

/** A variant's capability value: a kind of its own ("<variant>-<name>") and its fields. */
export interface VariantCapabilityValue {
  readonly kind: string;
}

/**
 * A region capability a variant driver adds (its include/uapi/linux/vfio.h struct): how a
 * reader of region info decodes and names it. Method syntax, so that a list may mix the kinds
 * of several variants.
 */
export interface RegionCapabilityKind<V extends VariantCapabilityValue = VariantCapabilityValue> {
  /** VFIO_REGION_INFO_CAP_* id. */
  readonly id: number;
  /** The id's name without its prefix, e.g. "SPARSE_MMAP". */
  readonly name: string;
  /** The body as named values; undefined when it is too short for the struct. */
  decode(body: Uint8Array): V | undefined;
  /** The value's fields as inspect shows them (64-bit values as hex strings). */
  describe(value: V): Record<string, string | number>;
}

/** A capability's value: the core's kinds, or one of the given variants' kinds. */
export type CapabilityValue<V extends VariantCapabilityValue = never> = CoreCapabilityValue | V;

/**
 * The value of capability `id` with `body`: the core's three, then the first of `kinds` with
 * that id, else `unknown` (also when the body is too short for its struct).
 */
export function decodeCapabilityValue<V extends VariantCapabilityValue = never>(
  id: number,
  body: Uint8Array,
  kinds: readonly RegionCapabilityKind<V>[] = [],
): CapabilityValue<V> {
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const has = (n: number): boolean => body.length >= n;
  if (id === RegionCapId.TYPE && has(8)) {
    return { kind: 'type', type: v.getUint32(0, true), subtype: v.getUint32(4, true) };
  }
  if (id === RegionCapId.SPARSE_MMAP && has(8)) {
    const n = v.getUint32(0, true);
    const areas: SparseMmapArea[] = [];
    for (let i = 0; i < n && has(24 + 16 * i); i++) {
      areas.push({
        offset: v.getBigUint64(8 + 16 * i, true),
        size: v.getBigUint64(16 + 16 * i, true),
      });
    }
    return { kind: 'sparse-mmap', areas };
  }
  if (id === RegionCapId.MSIX_MAPPABLE) return { kind: 'msix-mappable' };
  return kinds.find((k) => k.id === id)?.decode(body) ?? { kind: 'unknown', id };
}
