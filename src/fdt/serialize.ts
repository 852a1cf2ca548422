/**
 * Writes an `Fdt` as a version 17 flattened devicetree blob laid out as dtc lays it out:
 * header, memory reservation block (8-aligned, ending in a zero entry), structure block
 * (4-aligned tokens), strings block (deduplicated as dtc does, so dtc's own blobs come back
 * byte for byte). Devicetree Specification v0.3, chapter 5
 * "Flattened Devicetree (DTB) Format"; dtc's flattree.c and libfdt/fdt_sw.c.
 */
import { FdtError } from './errors.ts';
import {
  alignUp,
  FDT_BEGIN_NODE,
  FDT_END,
  FDT_END_NODE,
  FDT_LAST_COMP_VERSION,
  FDT_MAGIC,
  FDT_PROP,
  FDT_WRITE_VERSION,
  HEADER,
  headerSize,
  MEMRSV_ENTRY_SIZE,
} from './format.ts';
import type { Fdt, FdtNode } from './tree.ts';

/** A growable big-endian byte buffer; one per blob being written, never shared. */
class ByteWriter {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v >>> 0);
    this.length += 4;
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  /** Zero padding up to a multiple of `align` (the buffer is zero-filled already). */
  pad(align: number): void {
    const to = alignUp(this.length, align);
    this.reserve(to - this.length);
    this.length = to;
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** A name as a blob holds it: a byte per character, no NUL. `where` is lazy (paths cost O(depth)). */
function nameBytes(name: string, where: () => string): Uint8Array {
  const out = new Uint8Array(name.length);
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0 || c > 0xff) {
      throw new FdtError('BAD_NAME', 0, `${where()} without NUL or chars above 0xff`, 'tree');
    }
    out[i] = c;
  }
  return out;
}

/**
 * The strings block, built like dtc's `stringtable_insert`: a name reuses the first place its
 * bytes and NUL already occur (so "cells" can share the tail of "#size-cells"), else it is appended.
 */
class StringsTable {
  readonly writer = new ByteWriter();
  /** Every suffix of every stored name → where it first occurs (dtc's scan finds the same). */
  private readonly suffixes = new Map<string, number>();

  offsetOf(name: string, where: () => string): number {
    const known = this.suffixes.get(name);
    if (known !== undefined) return known;
    const offset = this.writer.length;
    this.writer.bytes(nameBytes(name, where));
    this.writer.bytes(new Uint8Array(1));
    for (let i = 0; i <= name.length; i++) {
      const suffix = name.slice(i);
      if (!this.suffixes.has(suffix)) this.suffixes.set(suffix, offset + i);
    }
    return offset;
  }
}

function writeStructure(root: FdtNode, strings: StringsTable): Uint8Array {
  const w = new ByteWriter();
  // Explicit stack of (node, entering?) so depth is bounded by memory, not the call stack.
  const stack: [FdtNode, boolean][] = [[root, true]];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const [node, entering] = item;
    if (!entering) {
      w.u32(FDT_END_NODE);
      continue;
    }
    w.u32(FDT_BEGIN_NODE);
    if (node !== root)
      w.bytes(nameBytes(node.name, () => `a node name under ${node.parent?.shortPath}`));
    w.bytes(new Uint8Array(1));
    w.pad(4);
    for (const prop of node.properties) {
      w.u32(FDT_PROP);
      w.u32(prop.value.length);
      w.u32(strings.offsetOf(prop.name, () => `a property name in ${node.shortPath}`));
      w.bytes(prop.value);
      w.pad(4);
    }
    stack.push([node, false]);
    for (let i = node.children.length - 1; i >= 0; i--) stack.push([node.children[i]!, true]);
  }
  w.u32(FDT_END);
  return w.result();
}

/**
 * Serializes a tree as a version 17 DTB (last_comp_version 16).
 * @throws FdtError BAD_NAME when a node or property name holds a NUL or a character above 0xff.
 */
export function serializeFdt(fdt: Fdt): Uint8Array {
  const strings = new StringsTable();
  const struct = writeStructure(fdt.root, strings);
  const stringsBlock = strings.writer.result();

  const hsize = headerSize(FDT_WRITE_VERSION);
  const memRsvOffset = alignUp(hsize, 8);
  // An all-zero entry would end the list early; it reserves nothing, so it is left out.
  const reservations = fdt.memoryReservations.filter((r) => r.address !== 0n || r.size !== 0n);
  const memRsvSize = (reservations.length + 1) * MEMRSV_ENTRY_SIZE;
  const structOffset = memRsvOffset + memRsvSize;
  const stringsOffset = structOffset + struct.length;
  const totalsize = stringsOffset + stringsBlock.length;

  const out = new Uint8Array(totalsize);
  const view = new DataView(out.buffer);
  view.setUint32(HEADER.magic, FDT_MAGIC);
  view.setUint32(HEADER.totalsize, totalsize);
  view.setUint32(HEADER.offDtStruct, structOffset);
  view.setUint32(HEADER.offDtStrings, stringsOffset);
  view.setUint32(HEADER.offMemRsvmap, memRsvOffset);
  view.setUint32(HEADER.version, FDT_WRITE_VERSION);
  view.setUint32(HEADER.lastCompVersion, FDT_LAST_COMP_VERSION);
  view.setUint32(HEADER.bootCpuidPhys, fdt.bootCpuId >>> 0);
  view.setUint32(HEADER.sizeDtStrings, stringsBlock.length);
  view.setUint32(HEADER.sizeDtStruct, struct.length);
  reservations.forEach((r, i) => {
    view.setBigUint64(memRsvOffset + i * MEMRSV_ENTRY_SIZE, BigInt.asUintN(64, r.address));
    view.setBigUint64(memRsvOffset + i * MEMRSV_ENTRY_SIZE + 8, BigInt.asUintN(64, r.size));
  });
  // The terminating zero entry is already zero.
  out.set(struct, structOffset);
  out.set(stringsBlock, stringsOffset);
  return out;
}
