/**
 * Hand-packed vfio-user frames for wire tests, built with DataView independently of the
 * project's codecs (vfio-user.rst "Header": msg_id u16, command u16, size u32, flags u32,
 * error u32, little-endian on x86).
 */
export const FLAG_NO_REPLY = 0x10;
export const FLAG_REPLY = 0x1;
export const FLAG_ERROR = 0x20;

/** A command frame: the header (size = 16 + payload unless `size` overrides it) and payload. */
export function frame(
  msgId: number,
  command: number,
  payload: Uint8Array = new Uint8Array(0),
  options: { flags?: number; size?: number } = {},
): Uint8Array {
  const out = new Uint8Array(16 + payload.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, msgId, true);
  v.setUint16(2, command, true);
  v.setUint32(4, options.size ?? out.length, true);
  v.setUint32(8, options.flags ?? 0, true);
  v.setUint32(12, 0, true);
  out.set(payload, 16);
  return out;
}

/** Little-endian u32/u64 fields in order: numbers are u32, bigints u64. */
export function pack(...fields: (number | bigint)[]): Uint8Array {
  const size = fields.reduce<number>((n, f) => n + (typeof f === 'bigint' ? 8 : 4), 0);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  let at = 0;
  for (const f of fields) {
    if (typeof f === 'bigint') {
      v.setBigUint64(at, f, true);
      at += 8;
    } else {
      v.setUint32(at, f, true);
      at += 4;
    }
  }
  return out;
}

/** A VERSION payload: major u16, minor u16, JSON + NUL (none when `json` is null). */
export function versionPayload(major: number, minor: number, json: string | null): Uint8Array {
  const text = json === null ? new Uint8Array(0) : new TextEncoder().encode(`${json}\0`);
  const out = new Uint8Array(4 + text.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, major, true);
  v.setUint16(2, minor, true);
  out.set(text, 4);
  return out;
}

export const QEMU_VERSION_JSON =
  '{"capabilities":{"max_msg_fds":16,"max_data_xfer_size":1048576,"pgsizes":4096,"max_dma_maps":65535,"write_multiple":true}}';
