/**
 * Numbers as hexadecimal text, the one way every message, table and device-tree name of the
 * project writes them: lowercase digits, zero-padded to a width in digits when one is given,
 * never cut (a value wider than `width` keeps all its digits).
 */

/**
 * `0x` and the lowercase hex digits of `v`, zero-padded to `width` digits.
 * @example hex(0x10de, 4) === '0x10de'; hex(7n) === '0x7'; hex(0x4, 2) === '0x04'
 */
export function hex(v: number | bigint, width = 0): string {
  return `0x${hexDigits(v, width)}`;
}

/**
 * The lowercase hex digits of `v` alone, zero-padded to `width` digits: for device-tree unit
 * addresses (`memory@3e000000000`), PCI names (`0002:01:00.0`) and IDs (`10de:1db1`).
 */
export function hexDigits(v: number | bigint, width = 0): string {
  return v.toString(16).padStart(width, '0');
}
