/**
 * The few device-tree reads of the NVLink2 inits: the fdt layer's `of_*` readers
 * (fdt/props.ts: of_property_read_u32 / _u64 / _u64_index / _variable_u64_array, v5.12
 * drivers/of/property.c), each answering "value, or why not" so the init can name the
 * property in its reason.
 */
import {
  type FdtNode,
  type FdtPropertyError,
  readU32,
  readU64,
  readU64Index,
  readVariableU64Array,
  tryRead,
} from '../fdt/index.ts';

/** A device-tree read that may fail: the value, or why not (a phrase after the owner's name). */
export type Read<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly why: string };

/** The reader's result with the reason phrased after the owner, e.g. "has no memory-region". */
function read<T>(get: () => T, tooShort: (e: FdtPropertyError) => string): Read<T> {
  const r = tryRead(get);
  if (r.ok) return r;
  const e = r.error;
  return { ok: false, why: e.errno === 'EINVAL' ? `has no ${e.property}` : tooShort(e) };
}

/** of_property_read_u32. */
export function readU32Prop(node: FdtNode, name: string): Read<number> {
  return read(
    () => readU32(node, name),
    (e) => `${name} is ${e.size} bytes, not a u32`,
  );
}

/** of_property_read_u64. */
export function readU64Prop(node: FdtNode, name: string): Read<bigint> {
  return read(
    () => readU64(node, name),
    (e) => `${name} is ${e.size} bytes, not a u64`,
  );
}

/** of_property_read_u64_index. */
export function readU64IndexProp(node: FdtNode, name: string, index: number): Read<bigint> {
  return read(
    () => readU64Index(node, name, index),
    (e) => `${name} has ${Math.floor((e.size ?? 0) / 8)} entries, no entry ${index}`,
  );
}

/** of_property_read_variable_u64_array(np, name, out, n, n) == n: exactly `n` u64. */
export function readExactU64s(node: FdtNode, name: string, n: number): Read<bigint[]> {
  const r = tryRead(() => readVariableU64Array(node, name, n, n));
  return r.ok ? r : { ok: false, why: `${name} is not exactly ${n === 2 ? 'two' : n} u64` };
}
