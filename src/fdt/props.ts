/**
 * Typed property readers with the semantics of the kernel's `of_property_read_*` helpers
 * (drivers/of/property.c, include/linux/of.h, v5.12): a missing property is EINVAL, a value
 * shorter than asked is EOVERFLOW, a longer one is fine unless an exact maximum is given.
 */
import { be32At, be32Cells, be64At } from './be.ts';
import { FdtPropertyError } from './errors.ts';
import type { Fdt, FdtNode } from './tree.ts';

/**
 * `of_find_property_value_of_size`: the value, at least `min` bytes and, when `max` is not 0,
 * at most `max` bytes.
 * @throws FdtPropertyError EINVAL when missing, EOVERFLOW when the size is out of range.
 */
export function findPropertyValueOfSize(
  node: FdtNode,
  name: string,
  min: number,
  max = 0,
): Uint8Array {
  const prop = node.getProperty(name);
  if (!prop) throw new FdtPropertyError('EINVAL', node.path, name, 'no such property');
  if (prop.value.length < min || (max !== 0 && prop.value.length > max)) {
    const want = max === 0 ? `at least ${min}` : min === max ? `exactly ${min}` : `${min}..${max}`;
    throw new FdtPropertyError(
      'EOVERFLOW',
      node.path,
      name,
      `value is ${prop.value.length} bytes, expected ${want}`,
      prop.value.length,
    );
  }
  return prop.value;
}

/** `of_property_read_u32`: the first cell. @throws FdtPropertyError */
export function readU32(node: FdtNode, name: string): number {
  return be32At(findPropertyValueOfSize(node, name, 4), 0);
}

/** `of_property_read_u32_index`. @throws FdtPropertyError */
export function readU32Index(node: FdtNode, name: string, index: number): number {
  return be32At(findPropertyValueOfSize(node, name, (index + 1) * 4), index * 4);
}

/**
 * `of_property_read_variable_u32_array(np, name, out, min, max)`: between `min` and `max`
 * u32 values (max 0: exactly `min` values are read and any longer value is accepted).
 * @throws FdtPropertyError
 */
export function readVariableU32Array(node: FdtNode, name: string, min: number, max = 0): number[] {
  const value = findPropertyValueOfSize(node, name, min * 4, max * 4);
  const count = max === 0 ? min : Math.floor(value.length / 4);
  return Array.from({ length: count }, (_, i) => be32At(value, i * 4));
}

/** `of_property_read_u64`: the first two cells as one number. @throws FdtPropertyError */
export function readU64(node: FdtNode, name: string): bigint {
  return be64At(findPropertyValueOfSize(node, name, 8), 0);
}

/** `of_property_read_u64_index`. @throws FdtPropertyError */
export function readU64Index(node: FdtNode, name: string, index: number): bigint {
  return be64At(findPropertyValueOfSize(node, name, (index + 1) * 8), index * 8);
}

/**
 * `of_property_read_variable_u64_array(np, name, out, min, max)`: between `min` and `max`
 * u64 values (max 0: exactly `min` values are read and any longer value is accepted).
 * @throws FdtPropertyError
 */
export function readVariableU64Array(node: FdtNode, name: string, min: number, max = 0): bigint[] {
  const value = findPropertyValueOfSize(node, name, min * 8, max * 8);
  const count = max === 0 ? min : Math.floor(value.length / 8);
  return Array.from({ length: count }, (_, i) => be64At(value, i * 8));
}

/** `of_property_read_u64_array(np, name, out, n)`: the first `n` values. @throws FdtPropertyError */
export function readU64Array(node: FdtNode, name: string, count: number): bigint[] {
  return readVariableU64Array(node, name, count, 0);
}

/** Every whole u64 in a property (for display); [] when missing. */
export function readAllU64(node: FdtNode, name: string): bigint[] {
  const prop = node.getProperty(name);
  if (!prop) return [];
  const v = prop.value;
  return Array.from({ length: Math.floor(v.length / 8) }, (_, i) => be64At(v, i * 8));
}

/** Every whole u32 in a property (for display); [] when missing. */
export function readAllU32(node: FdtNode, name: string): number[] {
  const prop = node.getProperty(name);
  if (!prop) return [];
  return be32Cells(prop.value);
}

/**
 * `of_property_read_string`: the first string.
 * @throws FdtPropertyError EINVAL missing, ENODATA empty, EILSEQ not NUL-terminated.
 */
export function readString(node: FdtNode, name: string): string {
  return readStringList(node, name)[0] ?? '';
}

/** `of_property_read_string_array`: every string. @throws FdtPropertyError as `readString`. */
export function readStringList(node: FdtNode, name: string): string[] {
  const prop = node.getProperty(name);
  if (!prop) throw new FdtPropertyError('EINVAL', node.path, name, 'no such property');
  if (prop.value.length === 0) throw new FdtPropertyError('ENODATA', node.path, name, 'empty', 0);
  if (prop.value[prop.value.length - 1] !== 0) {
    const size = prop.value.length;
    throw new FdtPropertyError('EILSEQ', node.path, name, 'string is not NUL-terminated', size);
  }
  return new TextDecoder().decode(prop.value.subarray(0, -1)).split('\0');
}

/** `of_device_is_compatible`-style check against the `compatible` list. */
export function isCompatible(node: FdtNode, compatible: string): boolean {
  const prop = node.getProperty('compatible');
  if (!prop || prop.value.length === 0) return false;
  return new TextDecoder()
    .decode(prop.value)
    .split('\0')
    .some((s) => s === compatible);
}

/**
 * `of_node_is_type(np, type)`: the first string of `device_type` is `type` (a value without
 * a NUL counts as one string, as strcmp would read it up to the padding).
 */
export function isDeviceType(node: FdtNode, type: string): boolean {
  const prop = node.getProperty('device_type');
  if (!prop || prop.value.length === 0) return false;
  return new TextDecoder().decode(prop.value).split('\0')[0] === type;
}

/** A read as the kernel's `of_*` readers return it: the value, or the error instead of a throw. */
export type PropertyRead<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: FdtPropertyError };

/**
 * Run one of the readers above, turning its FdtPropertyError into a result (the kernel's
 * negative return), e.g. `tryRead(() => readU32(node, 'memory-region'))`.
 * @throws whatever else `read` throws
 */
export function tryRead<T>(read: () => T): PropertyRead<T> {
  try {
    return { ok: true, value: read() };
  } catch (error) {
    if (error instanceof FdtPropertyError) return { ok: false, error };
    throw error;
  }
}

/** The phandle value at `index` of a phandle-list property. @throws FdtPropertyError */
export function readPhandleValue(node: FdtNode, name: string, index: number): number {
  return readU32Index(node, name, index);
}

/**
 * `of_parse_phandle(np, name, index)`: the node the phandle at `index` points to, or
 * undefined when the property, the entry or the node is missing (the kernel returns NULL).
 */
export function parsePhandle(
  fdt: Fdt,
  node: FdtNode,
  name: string,
  index: number,
): FdtNode | undefined {
  const prop = node.getProperty(name);
  if (!prop || prop.value.length < (index + 1) * 4) return undefined;
  return fdt.findByPhandle(be32At(prop.value, index * 4));
}

/** How many phandles (u32 cells) a phandle-list property holds; 0 when missing. */
export function countPhandles(node: FdtNode, name: string): number {
  const prop = node.getProperty(name);
  return prop ? Math.floor(prop.value.length / 4) : 0;
}
