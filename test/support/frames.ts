/**
 * The one builder of hand-packed vfio-user bytes for tests, written with DataView
 * independently of the project's codecs and cursors (vfio-user.rst "Header": msg_id u16,
 * command u16, size u32, flags u32, error u32, little-endian; payload tables counted from the
 * end of the header). Wire fixtures (wire-fixtures.ts), the in-process session tests and the
 * tests against a spawned `serve` all build their frames here.
 */
export const FLAG_REPLY = 0x1;
export const FLAG_NO_REPLY = 0x10;
export const FLAG_ERROR = 0x20;

/**
 * One field: a number is a u32 and a bigint a u64 (the widths of most vfio-user payloads);
 * tagged pairs give other widths, raw bytes, or UTF-8 text (no NUL added).
 */
export type Field =
  | number
  | bigint
  | ['u16', number]
  | ['u32', number]
  | ['u64', bigint]
  | ['bytes', Uint8Array]
  | ['text', string];

const utf8 = new TextEncoder();

function tagged(f: Field): Exclude<Field, number | bigint> {
  if (typeof f === 'number') return ['u32', f];
  if (typeof f === 'bigint') return ['u64', f];
  return f;
}

function sizeOf(f: Exclude<Field, number | bigint>): number {
  switch (f[0]) {
    case 'u16':
      return 2;
    case 'u32':
      return 4;
    case 'u64':
      return 8;
    case 'bytes':
      return f[1].length;
    case 'text':
      return utf8.encode(f[1]).length;
  }
}

/** Packs fields little-endian, back to back. */
export function pack(...fields: Field[]): Uint8Array {
  const all = fields.map(tagged);
  const out = new Uint8Array(all.reduce((n, f) => n + sizeOf(f), 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const f of all) {
    switch (f[0]) {
      case 'u16':
        view.setUint16(at, f[1], true);
        break;
      case 'u32':
        view.setUint32(at, f[1], true);
        break;
      case 'u64':
        view.setBigUint64(at, f[1], true);
        break;
      case 'bytes':
        out.set(f[1], at);
        break;
      case 'text':
        out.set(utf8.encode(f[1]), at);
        break;
    }
    at += sizeOf(f);
  }
  return out;
}

/** A 16-byte header. */
export function packHeader(
  msgId: number,
  command: number,
  size: number,
  flags: number,
  errno = 0,
): Uint8Array {
  return pack(['u16', msgId], ['u16', command], size, flags, errno);
}

/**
 * A whole message: the header (size = 16 + payload unless `size` overrides it; flags 0, a
 * command wanting a reply, unless given) and the payload.
 */
export function frame(
  msgId: number,
  command: number,
  payload: Uint8Array = new Uint8Array(0),
  options: { flags?: number; size?: number; errno?: number } = {},
): Uint8Array {
  const size = options.size ?? 16 + payload.length;
  return pack(
    ['bytes', packHeader(msgId, command, size, options.flags ?? 0, options.errno ?? 0)],
    ['bytes', payload],
  );
}

/** A VERSION payload: major u16, minor u16, JSON + NUL (none when `json` is null). */
export function versionPayload(major: number, minor: number, json: string | null): Uint8Array {
  return pack(
    ['u16', major],
    ['u16', minor],
    ...(json === null ? [] : [['text', `${json}\0`] as Field]),
  );
}

export const QEMU_VERSION_JSON =
  '{"capabilities":{"max_msg_fds":16,"max_data_xfer_size":1048576,"pgsizes":4096,"max_dma_maps":65535,"write_multiple":true}}';
