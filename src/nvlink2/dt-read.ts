/**
 * The few device-tree reads of the NVLink2 inits, each answering "value, or why not" so the
 * init can name the property in its reason. Semantics of Linux's of_property_read_u32 / _u64 /
 * _u64_index (drivers/of/property.c): missing or shorter than the value → failure; longer is fine.
 */
import type { FdtNode } from '../fdt/index.ts';

export type Read<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly why: string };

function view(v: Uint8Array): DataView {
  return new DataView(v.buffer, v.byteOffset, v.byteLength);
}

/** of_property_read_u32. `why` reads after the owner, e.g. "has no memory-region". */
export function readU32Prop(node: FdtNode, name: string): Read<number> {
  const p = node.getProperty(name);
  if (!p) return { ok: false, why: `has no ${name}` };
  if (p.value.length < 4)
    return { ok: false, why: `${name} is ${p.value.length} bytes, not a u32` };
  return { ok: true, value: view(p.value).getUint32(0) };
}

/** of_property_read_u64. */
export function readU64Prop(node: FdtNode, name: string): Read<bigint> {
  const p = node.getProperty(name);
  if (!p) return { ok: false, why: `has no ${name}` };
  if (p.value.length < 8)
    return { ok: false, why: `${name} is ${p.value.length} bytes, not a u64` };
  return { ok: true, value: view(p.value).getBigUint64(0) };
}

/** of_property_read_u64_index. */
export function readU64IndexProp(node: FdtNode, name: string, index: number): Read<bigint> {
  const p = node.getProperty(name);
  if (!p) return { ok: false, why: `has no ${name}` };
  if (p.value.length < (index + 1) * 8) {
    return {
      ok: false,
      why: `${name} has ${Math.floor(p.value.length / 8)} entries, no entry ${index}`,
    };
  }
  return { ok: true, value: view(p.value).getBigUint64(index * 8) };
}

/** of_property_read_variable_u64_array(np, name, out, n, n) == n: exactly `n` u64. */
export function readExactU64s(node: FdtNode, name: string, n: number): Read<bigint[]> {
  const p = node.getProperty(name);
  if (!p || p.value.length !== n * 8)
    return { ok: false, why: `${name} is not exactly ${n === 2 ? 'two' : n} u64` };
  const v = view(p.value);
  return { ok: true, value: Array.from({ length: n }, (_, i) => v.getBigUint64(i * 8)) };
}
