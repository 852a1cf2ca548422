/**
 * Property values shown as dtc's `fdtget` shows them (dtc fdtget.c show_data/show_cell_list,
 * util.c utilfdt_decode_type and util_is_printable_string), for `dt show FILE NODE PROPERTY
 * [--type T]`, and the same values as JSON. Pure: bytes and a type in, text or data out. A tree
 * as JSON is written without recursion (a blob may nest deeper than the call stack allows).
 */
import { hex } from '../text/index.ts';
import { FdtPropertyError } from './errors.ts';
import type { FdtNode } from './tree.ts';

/** An fdtget `-t` type: s string, i/u signed/unsigned decimal, x hex, r raw; size 1, 2 or 4 bytes (-1: guess). */
export interface FdtgetType {
  readonly type: 's' | 'i' | 'u' | 'x' | 'r' | undefined;
  readonly size: 1 | 2 | 4 | -1;
}

/** No `-t`: fdtget guesses (strings when printable, else 32-bit cells when the length allows, else bytes). */
export const FDTGET_GUESS: FdtgetType = { type: undefined, size: -1 };

/**
 * Parses an fdtget `-t` argument: an optional size qualifier (`hh` or `b` 1 byte, `h` 2, `l` 4)
 * then `s`, `i`, `u`, `x` or `r` (util.c utilfdt_decode_type).
 * @throws RangeError naming the argument when it is not one.
 */
export function parseFdtgetType(text: string): FdtgetType {
  const m = /^(hh|b|h|l)?([siuxr])$/.exec(text);
  if (!m || (m[1] !== undefined && (m[2] === 's' || m[2] === 'r')))
    throw new RangeError(
      `--type must be s, i, u, x or r, the last three after an optional size b|hh (1 byte), h (2) or l (4), as fdtget -t takes, not '${text}'`,
    );
  const size = m[1] === undefined ? -1 : m[1] === 'h' ? 2 : m[1] === 'l' ? 4 : 1;
  return { type: m[2] as FdtgetType['type'], size };
}

/** util.c util_is_printable_string: NUL-terminated, non-empty strings of isprint() characters. */
export function isPrintableStrings(value: Uint8Array): boolean {
  if (value.length === 0 || value[value.length - 1] !== 0) return false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i] as number;
    if (c === 0) {
      if (i === start) return false;
      start = i + 1;
    } else if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/** A value decoded by an fdtget type: strings, or numbers of `size` bytes, or the raw bytes. */
export type FdtgetValue =
  | { readonly kind: 'strings'; readonly strings: string[] }
  | { readonly kind: 'numbers'; readonly size: 1 | 2 | 4; readonly numbers: number[] }
  | { readonly kind: 'raw'; readonly bytes: Uint8Array };

/**
 * The value of `property` of the node at `nodePath` as fdtget reads it for `t` (fdtget.c show_data).
 * @throws FdtPropertyError EILSEQ for an unterminated string, EOVERFLOW for a length that is no
 *   multiple of the size (fdtget's two errors, in its words).
 */
export function decodeFdtgetValue(
  nodePath: string,
  property: string,
  value: Uint8Array,
  t: FdtgetType,
): FdtgetValue {
  if (t.type === 'r') return { kind: 'raw', bytes: value };
  if (value.length === 0) return { kind: 'numbers', size: 4, numbers: [] };
  if (t.type === 's' || (t.type === undefined && isPrintableStrings(value))) {
    if (value[value.length - 1] !== 0)
      throw new FdtPropertyError('EILSEQ', nodePath, property, 'Unterminated string', value.length);
    const text = Buffer.from(value.subarray(0, value.length - 1)).toString('latin1');
    return { kind: 'strings', strings: text.split('\0') };
  }
  const size = t.size === -1 ? (value.length % 4 === 0 ? 4 : 1) : t.size;
  if (value.length % size !== 0)
    throw new FdtPropertyError(
      'EOVERFLOW',
      nodePath,
      property,
      `Property length must be a multiple of selected data size (${value.length} bytes, size ${size})`,
      value.length,
    );
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const numbers: number[] = [];
  for (let at = 0; at < value.length; at += size)
    numbers.push(
      size === 4 ? view.getUint32(at) : size === 2 ? view.getUint16(at) : view.getUint8(at),
    );
  return { kind: 'numbers', size, numbers };
}

/**
 * The value of `name` of `node` (at `nodePath`) as fdtget reads it for `t`; undefined when the
 * node has no such property.
 * @throws FdtPropertyError as `decodeFdtgetValue`.
 */
export function readFdtgetValue(
  node: FdtNode,
  nodePath: string,
  name: string,
  t: FdtgetType,
): FdtgetValue | undefined {
  const property = node.getProperty(name);
  return property && decodeFdtgetValue(nodePath, name, property.value, t);
}

/** One number as printf's %d/%i (C int: 32-bit cells past 2^31 are negative), %u or %x. */
function printNumber(n: number, type: FdtgetType['type']): string {
  if (type === 'x') return n.toString(16);
  if (type === 'u') return String(n);
  return String(n | 0);
}

/** The line fdtget prints for a value (without the newline; raw bytes as latin1 text). */
export function fdtgetText(v: FdtgetValue, t: FdtgetType): string {
  if (v.kind === 'raw') return Buffer.from(v.bytes).toString('latin1');
  if (v.kind === 'strings') return v.strings.join(' ');
  return v.numbers.map((n) => printNumber(n, t.type)).join(' ');
}

/**
 * A value as JSON: strings as strings, `i`/`u` as numbers, otherwise (x, or guessed cells and
 * bytes) hex strings as every JSON of ours writes addresses and IDs; raw bytes as one hex string.
 */
export function fdtgetJson(v: FdtgetValue, t: FdtgetType): (string | number)[] | string {
  if (v.kind === 'raw') return Buffer.from(v.bytes).toString('hex');
  if (v.kind === 'strings') return v.strings;
  if (t.type === 'i') return v.numbers.map((n) => n | 0);
  if (t.type === 'u') return v.numbers;
  return v.numbers.map((n) => hex(n));
}

/**
 * A node and everything under it as JSON text: `{"name", "properties": {NAME: value}, "children":
 * [...]}`, each value as `fdtgetJson` guesses it. Iterative, linear in the tree's size.
 */
export function nodeToJson(top: FdtNode): string {
  const out: string[] = [];
  const stack: { node: FdtNode; next: number }[] = [{ node: top, next: -1 }];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1] as { node: FdtNode; next: number };
    const { node } = frame;
    if (frame.next === -1) {
      const props = node.properties.map(
        (p) =>
          `${JSON.stringify(p.name)}:${JSON.stringify(fdtgetJson(decodeFdtgetValue(node.name, p.name, p.value, FDTGET_GUESS), FDTGET_GUESS))}`,
      );
      out.push(
        `{"name":${JSON.stringify(node.name)},"properties":{${props.join(',')}},"children":[`,
      );
      frame.next = 0;
    }
    const child = node.children[frame.next];
    if (child === undefined) {
      out.push(']}');
      stack.pop();
      continue;
    }
    if (frame.next > 0) out.push(',');
    frame.next++;
    stack.push({ node: child, next: -1 });
  }
  return out.join('');
}
