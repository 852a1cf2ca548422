/**
 * Region access payloads (vfio-user.rst "VFIO_USER_REGION_READ", "_REGION_WRITE",
 * "_REGION_WRITE_MULTI"; struct vfio_user_region_access): offset u64, region u32, count u32,
 * then data; WRITE_MULTI is wr_cnt u64 then 24-byte {offset, region, count, data[8]} entries.
 */
import { VfioError } from '../../vfio/index.ts';
import { WRITE_MULTI_DATA_SIZE, WRITE_MULTI_ENTRY_SIZE } from './constants.ts';
import type { WriteMultiEntry } from './messages.ts';
import { ByteReader } from './reader.ts';
import { ByteWriter } from './writer.ts';

/** Bytes of the REGION_READ/REGION_WRITE head (offset u64, region u32, count u32): 16. */
export const REGION_ACCESS_HEAD_SIZE = 16;

/** The REGION_READ/REGION_WRITE head: offset (bytes), region index, count (bytes). */
export interface RegionAccessHead {
  offset: bigint;
  region: number;
  count: number;
}

/** The 16-byte REGION_READ/REGION_WRITE head. */
export function encodeRegionAccessHead(offset: bigint, region: number, count: number): Uint8Array {
  return new ByteWriter(REGION_ACCESS_HEAD_SIZE).u64(offset).u32(region).u32(count).finish();
}

/** Exactly the 16-byte head (REGION_READ request, REGION_WRITE reply). */
export function decodeRegionAccessHead(payload: Uint8Array, what: string): RegionAccessHead {
  const r = new ByteReader(payload, what);
  const h = { offset: r.u64('offset'), region: r.u32('region'), count: r.u32('count') };
  r.end();
  return h;
}

/** Head and data as gather parts (REGION_WRITE request, REGION_READ reply). */
export function encodeRegionData(offset: bigint, region: number, data: Uint8Array): Uint8Array[] {
  return [encodeRegionAccessHead(offset, region, data.length), data];
}

/** @throws VfioError EINVAL when count differs from the bytes that follow. */
export function decodeRegionData(
  payload: Uint8Array,
  what: string,
): { offset: bigint; region: number; data: Uint8Array } {
  const r = new ByteReader(payload, what);
  const offset = r.u64('offset');
  const region = r.u32('region');
  const count = r.u32('count');
  const data = r.rest();
  if (count !== data.length) {
    throw new VfioError('EINVAL', `${what}: count ${count} but ${data.length} data bytes follow`);
  }
  return { offset, region, data };
}

/**
 * Head and data received apart (the data placed in a buffer of the receiver's choosing).
 * @throws VfioError EINVAL for a head that is not 16 bytes or a count that differs from the data.
 */
export function decodeRegionDataPlaced(
  head: Uint8Array,
  data: Uint8Array,
  what: string,
): { offset: bigint; region: number; data: Uint8Array } {
  const h = decodeRegionAccessHead(head, what);
  if (h.count !== data.length) {
    throw new VfioError('EINVAL', `${what}: count ${h.count} but ${data.length} data bytes follow`);
  }
  return { offset: h.offset, region: h.region, data };
}

/** @throws VfioError EINVAL for an entry with more than 8 bytes. */
export function encodeWriteMulti(writes: readonly WriteMultiEntry[]): Uint8Array {
  const w = new ByteWriter(8 + WRITE_MULTI_ENTRY_SIZE * writes.length).u64(BigInt(writes.length));
  for (const e of writes) {
    if (e.data.length > WRITE_MULTI_DATA_SIZE) {
      throw new VfioError('EINVAL', `REGION_WRITE_MULTI entry of ${e.data.length} bytes exceeds 8`);
    }
    w.u64(e.offset)
      .u32(e.region)
      .u32(e.data.length)
      .raw(e.data)
      .skip(WRITE_MULTI_DATA_SIZE - e.data.length);
  }
  return w.finish();
}

/** @throws VfioError EINVAL when wr_cnt disagrees with the entries present or a count exceeds 8. */
export function decodeWriteMulti(payload: Uint8Array, what: string): WriteMultiEntry[] {
  const r = new ByteReader(payload, what);
  const wrCnt = r.u64('wr_cnt');
  if (BigInt(r.remaining) !== wrCnt * BigInt(WRITE_MULTI_ENTRY_SIZE)) {
    throw new VfioError(
      'EINVAL',
      `${what}: wr_cnt ${wrCnt} but ${r.remaining} bytes of entries follow`,
    );
  }
  const writes: WriteMultiEntry[] = [];
  for (let i = 0n; i < wrCnt; i++) {
    const offset = r.u64('offset');
    const region = r.u32('region');
    const count = r.u32('count');
    const data = r.bytes(WRITE_MULTI_DATA_SIZE, 'data');
    if (count > WRITE_MULTI_DATA_SIZE) {
      throw new VfioError('EINVAL', `${what}: entry ${i} count ${count} exceeds 8`);
    }
    writes.push({ offset, region, data: data.subarray(0, count) });
  }
  return writes;
}

/** A REGION_WRITE_MULTI reply: the count of writes done (u64). */
export function encodeWriteMultiReply(count: bigint): Uint8Array {
  return new ByteWriter(8).u64(count).finish();
}

/**
 * The count of a REGION_WRITE_MULTI reply.
 * @throws VfioError EINVAL unless exactly 8 bytes (ByteReader).
 */
export function decodeWriteMultiReply(payload: Uint8Array, what: string): bigint {
  const r = new ByteReader(payload, what);
  const count = r.u64('wr_cnt');
  r.end();
  return count;
}
