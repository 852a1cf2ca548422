/**
 * DEVICE_FEATURE and migration data payloads (vfio-user.rst "VFIO_USER_DEVICE_FEATURE",
 * "VFIO_USER_MIG_DATA_READ", "VFIO_USER_MIG_DATA_WRITE"): argsz u32, then flags u32 (feature
 * index and GET/SET/PROBE) or size u32, then data.
 */
import { VfioError } from '../../vfio/index.ts';
import { ByteReader } from './reader.ts';
import { ByteWriter } from './writer.ts';

/** argsz u32, word u32, data: DEVICE_FEATURE (word = flags). */
export function encodeArgszWordData(argsz: number, word: number, data: Uint8Array): Uint8Array {
  return new ByteWriter(8 + data.length).u32(argsz).u32(word).raw(data).finish();
}

/**
 * A payload of argsz, one u32 `word`, then data (DEVICE_FEATURE).
 * @throws VfioError EINVAL when the payload is too short (ByteReader).
 */
export function decodeArgszWordData(
  payload: Uint8Array,
  what: string,
  word: string,
): { argsz: number; word: number; data: Uint8Array } {
  const r = new ByteReader(payload, what);
  return { argsz: r.u32('argsz'), word: r.u32(word), data: r.rest() };
}

/** argsz u32, size u32 and exactly `size` data bytes (MIG_DATA_WRITE request, MIG_DATA_READ reply). */
export function encodeSizedData(argsz: number, data: Uint8Array): Uint8Array {
  return encodeArgszWordData(argsz, data.length, data);
}

/** @throws VfioError EINVAL when size differs from the bytes that follow. */
export function decodeSizedData(
  payload: Uint8Array,
  what: string,
): { argsz: number; data: Uint8Array } {
  const { argsz, word, data } = decodeArgszWordData(payload, what, 'size');
  if (word !== data.length)
    throw new VfioError('EINVAL', `${what}: size ${word} but ${data.length} data bytes follow`);
  return { argsz, data };
}

/** Exactly argsz u32, size u32 (MIG_DATA_READ request). */
export function encodeArgszSize(argsz: number, size: number): Uint8Array {
  return new ByteWriter(8).u32(argsz).u32(size).finish();
}

/**
 * A payload of argsz and size, both u32, and nothing after.
 * @throws VfioError EINVAL when the payload is not exactly 8 bytes (ByteReader).
 */
export function decodeArgszSize(
  payload: Uint8Array,
  what: string,
): { argsz: number; size: number } {
  const r = new ByteReader(payload, what);
  const v = { argsz: r.u32('argsz'), size: r.u32('size') };
  r.end();
  return v;
}
