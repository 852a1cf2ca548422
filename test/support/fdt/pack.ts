/**
 * Test support: packs DTB bytes by hand, field by field, independently of `serialize.ts`
 * (Devicetree Specification v0.3, 5.2 header, 5.3 memory reservation block, 5.4 structure
 * block), so tests can build exact expected bytes and precisely malformed blobs.
 */

export function be32(...values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    view.setUint32(i * 4, v >>> 0);
  });
  return out;
}

export function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function ascii(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

/** Zero bytes up to the next multiple of 4. */
export function pad4(b: Uint8Array): Uint8Array {
  return cat(b, new Uint8Array((4 - (b.length % 4)) % 4));
}

export const END_NODE = be32(2);
export const NOP = be32(4);
export const END = be32(9);

export function beginNode(name: string): Uint8Array {
  return cat(be32(1), pad4(ascii(`${name}\0`)));
}

export function prop(nameoff: number, value: Uint8Array): Uint8Array {
  return cat(be32(3, value.length, nameoff), pad4(value));
}

export interface PackOptions {
  readonly struct: Uint8Array;
  readonly strings: Uint8Array;
  readonly memrsv?: readonly (readonly [bigint, bigint])[];
  readonly version?: number;
  readonly bootCpu?: number;
  /** Header words to overwrite after layout: byte offset → value. */
  readonly patch?: Readonly<Record<number, number>>;
}

/** Header (40 bytes; 36 + 4 padding for v16), memrsv at 40, struct, strings: dtc's layout. */
export function pack(o: PackOptions): Uint8Array {
  const version = o.version ?? 17;
  const memrsv = o.memrsv ?? [];
  const memOff = 40;
  const structOff = memOff + (memrsv.length + 1) * 16;
  const stringsOff = structOff + o.struct.length;
  const total = stringsOff + o.strings.length;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  const words = [0xd00dfeed, total, structOff, stringsOff, memOff, version, 16, o.bootCpu ?? 0];
  words.push(o.strings.length);
  if (version >= 17) words.push(o.struct.length);
  words.forEach((w, i) => {
    view.setUint32(i * 4, w);
  });
  memrsv.forEach(([address, size], i) => {
    view.setBigUint64(memOff + i * 16, address);
    view.setBigUint64(memOff + i * 16 + 8, size);
  });
  out.set(o.struct, structOff);
  out.set(o.strings, stringsOff);
  for (const [offset, value] of Object.entries(o.patch ?? {})) {
    view.setUint32(Number(offset), value);
  }
  return out;
}
