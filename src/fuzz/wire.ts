/**
 * Bytes of vfio-user messages packed by hand for the fuzzer, independently of the project's
 * codecs (a fuzzer that shared the server's encoder would share its mistakes): the 16-byte
 * header (vfio-user.rst "Header": msg_id u16, command u16, size u32, flags u32, error u32) and
 * little-endian fields.
 */

export const HEADER_BYTES = 16;
/** Header flags: type in bits 0–3 (0 command, 1 reply), NO_REPLY, ERROR. */
export const TYPE_COMMAND = 0;
/** The header's type of a reply (vfio-user.rst "Header" flags bits 0–3). */
export const TYPE_REPLY = 1;
/** The header's No_reply flag (bit 4). */
export const FLAG_NO_REPLY = 0x10;
/** The header's Error flag (bit 5). */
export const FLAG_ERROR = 0x20;

/** A field of a payload: u8/u16/u32 as numbers, u64 as bigints, raw bytes as they are. */
export type Field =
  | { readonly u8: number }
  | { readonly u16: number }
  | { readonly u32: number }
  | { readonly u64: bigint }
  | Uint8Array;

function fieldSize(f: Field): number {
  if (f instanceof Uint8Array) return f.length;
  if ('u8' in f) return 1;
  if ('u16' in f) return 2;
  if ('u32' in f) return 4;
  return 8;
}

/** Little-endian fields back to back. */
export function pack(fields: readonly Field[]): Uint8Array {
  let size = 0;
  for (const f of fields) size += fieldSize(f);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  let at = 0;
  for (const f of fields) {
    if (f instanceof Uint8Array) out.set(f, at);
    else if ('u8' in f) v.setUint8(at, f.u8 & 0xff);
    else if ('u16' in f) v.setUint16(at, f.u16 & 0xffff, true);
    else if ('u32' in f) v.setUint32(at, f.u32 >>> 0, true);
    else v.setBigUint64(at, BigInt.asUintN(64, f.u64), true);
    at += fieldSize(f);
  }
  return out;
}

/** A u8 field. */
export const u8 = (v: number): Field => ({ u8: v });
/** A u16 field (little-endian). */
export const u16 = (v: number): Field => ({ u16: v });
/** A u32 field (little-endian). */
export const u32 = (v: number): Field => ({ u32: v });
/** A u64 field (little-endian). */
export const u64 = (v: bigint): Field => ({ u64: v });

/** The fields of a header as the fuzzer writes them (the size as sent, true or not). */
export interface HeaderFields {
  readonly msgId: number;
  readonly command: number;
  /** The size field as sent (need not match the bytes that follow). */
  readonly size: number;
  readonly flags: number;
  readonly errno?: number;
}

/** A frame: header then `body`; `size` defaults to the true length. */
export function frameBytes(h: Omit<HeaderFields, 'size'> & { size?: number }, body: Uint8Array) {
  const out = new Uint8Array(HEADER_BYTES + body.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, h.msgId & 0xffff, true);
  v.setUint16(2, h.command & 0xffff, true);
  v.setUint32(4, (h.size ?? out.length) >>> 0, true);
  v.setUint32(8, h.flags >>> 0, true);
  v.setUint32(12, (h.errno ?? 0) >>> 0, true);
  out.set(body, HEADER_BYTES);
  return out;
}

/** The header fields of the first 16 bytes of `b`. */
export function readHeader(b: Uint8Array, at = 0): Required<HeaderFields> {
  const v = new DataView(b.buffer, b.byteOffset + at, HEADER_BYTES);
  return {
    msgId: v.getUint16(0, true),
    command: v.getUint16(2, true),
    size: v.getUint32(4, true),
    flags: v.getUint32(8, true),
    errno: v.getUint32(12, true),
  };
}

/** The little-endian u32 at byte `at` of `b`. */
export function getU32(b: Uint8Array, at: number): number {
  return new DataView(b.buffer, b.byteOffset, b.length).getUint32(at, true);
}

/** The little-endian u64 at byte `at` of `b`. */
export function getU64(b: Uint8Array, at: number): bigint {
  return new DataView(b.buffer, b.byteOffset, b.length).getBigUint64(at, true);
}

/** Writes `v` (mod 2^64) as a little-endian u64 at byte `at` of `b`. */
export function setU64(b: Uint8Array, at: number, v: bigint): void {
  new DataView(b.buffer, b.byteOffset, b.length).setBigUint64(at, BigInt.asUintN(64, v), true);
}

/** Writes `v` (mod 2^32) as a little-endian u32 at byte `at` of `b`. */
export function setU32(b: Uint8Array, at: number, v: number): void {
  new DataView(b.buffer, b.byteOffset, b.length).setUint32(at, v >>> 0, true);
}
