/**
 * DMA payloads (vfio-user.rst "VFIO_USER_DMA_MAP", "_DMA_UNMAP", "_DMA_READ", "_DMA_WRITE";
 * libvfio-user include/vfio-user.h struct vfio_user_dma_map / _dma_unmap / _dma_region_access).
 * Peers disagree on the DMA_WRITE reply: the spec's table has count as 4 bytes (12 in all),
 * libvfio-user uses a u64 (16); this encodes 16 and decodes either.
 */
import { VfioError } from '../../vfio/index.ts';
import type { DmaMapPayload, DmaUnmapPayload } from './messages.ts';
import { ByteReader } from './reader.ts';
import { ByteWriter } from './writer.ts';

/** Bytes of a DMA_MAP request (vfio-user.rst "VFIO_USER_DMA_MAP"): 32. */
export const DMA_MAP_SIZE = 32;
/** Bytes of a DMA_UNMAP request or reply without bitmap: 24. */
export const DMA_UNMAP_SIZE = 24;
/** Bytes of the DMA_READ/DMA_WRITE head (address u64, count u64): 16. */
export const DMA_ACCESS_HEAD_SIZE = 16;

/** A DMA_MAP request payload: argsz, flags, offset, address, size. */
export function encodeDmaMap(m: DmaMapPayload): Uint8Array {
  return new ByteWriter(DMA_MAP_SIZE)
    .u32(m.argsz)
    .u32(m.flags)
    .u64(m.offset)
    .u64(m.address)
    .u64(m.size)
    .finish();
}

/** @throws VfioError EINVAL unless exactly 32 bytes. */
export function decodeDmaMap(payload: Uint8Array, what: string): DmaMapPayload {
  const r = new ByteReader(payload, what);
  const m = {
    argsz: r.u32('argsz'),
    flags: r.u32('flags'),
    offset: r.u64('offset'),
    address: r.u64('address'),
    size: r.u64('size'),
  };
  r.end();
  return m;
}

/** A DMA_UNMAP payload: argsz, flags, address, size. */
export function encodeDmaUnmap(m: DmaUnmapPayload): Uint8Array {
  return new ByteWriter(DMA_UNMAP_SIZE)
    .u32(m.argsz)
    .u32(m.flags)
    .u64(m.address)
    .u64(m.size)
    .finish();
}

/** @throws VfioError EINVAL unless exactly 24 bytes (dirty bitmaps are not supported). */
export function decodeDmaUnmap(payload: Uint8Array, what: string): DmaUnmapPayload {
  const r = new ByteReader(payload, what);
  const m = {
    argsz: r.u32('argsz'),
    flags: r.u32('flags'),
    address: r.u64('address'),
    size: r.u64('size'),
  };
  r.end();
  return m;
}

/** address u64, count u64 (DMA_READ request, DMA_WRITE reply). */
export function encodeDmaAccess(address: bigint, count: bigint): Uint8Array {
  return new ByteWriter(DMA_ACCESS_HEAD_SIZE).u64(address).u64(count).finish();
}

/**
 * The head of a DMA_READ/DMA_WRITE message: address and count (bytes).
 * @throws VfioError EINVAL when the payload is too short (ByteReader).
 */
export function decodeDmaAccess(
  payload: Uint8Array,
  what: string,
): { address: bigint; count: bigint } {
  const r = new ByteReader(payload, what);
  const address = r.u64('address');
  // The DMA_WRITE reply per the spec's table: a 4-byte count.
  const count = payload.length === 12 ? BigInt(r.u32('count')) : r.u64('count');
  r.end();
  return { address, count };
}

/** address u64, count u64, data (DMA_WRITE request, DMA_READ reply) as gather parts. */
export function encodeDmaData(address: bigint, data: Uint8Array): Uint8Array[] {
  return [
    new ByteWriter(DMA_ACCESS_HEAD_SIZE).u64(address).u64(BigInt(data.length)).finish(),
    data,
  ];
}

/** @throws VfioError EINVAL when count differs from the bytes that follow. */
export function decodeDmaData(
  payload: Uint8Array,
  what: string,
): { address: bigint; data: Uint8Array } {
  const r = new ByteReader(payload, what);
  const address = r.u64('address');
  const count = r.u64('count');
  const data = r.rest();
  if (count !== BigInt(data.length)) {
    throw new VfioError('EINVAL', `${what}: count ${count} but ${data.length} data bytes follow`);
  }
  return { address, data };
}
