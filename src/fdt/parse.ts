/**
 * Reads a flattened devicetree blob (versions 16 and 17) into an `Fdt`: header, memory
 * reservation block, structure block and strings block. Follows the Devicetree Specification
 * v0.3, chapter 5 "Flattened Devicetree (DTB) Format", and the checks of dtc's libfdt
 * (`fdt_check_header`, `fdt_next_tag`). Every malformation is an `FdtError` naming the byte
 * offset (for header fields: the offset of the field) and what was expected there.
 */
import { Buffer } from 'node:buffer';
import { hex } from '../text/index.ts';
import { FdtError, type FdtErrorCode } from './errors.ts';
import {
  alignUp,
  FDT_BEGIN_NODE,
  FDT_END,
  FDT_END_NODE,
  FDT_FIRST_READ_VERSION,
  FDT_MAGIC,
  FDT_NOP,
  FDT_PROP,
  FDT_WRITE_VERSION,
  HEADER,
  headerSize,
  MEMRSV_ENTRY_SIZE,
} from './format.ts';
import { Fdt, FdtNode, type MemoryReservation } from './tree.ts';

/** The header fields after validation, with each block's bounds resolved. */
interface FdtHeader {
  readonly totalsize: number;
  readonly version: number;
  readonly bootCpuId: number;
  readonly memRsvOffset: number;
  readonly structOffset: number;
  /** One past the last byte the structure block may use. */
  readonly structEnd: number;
  readonly stringsOffset: number;
  readonly stringsSize: number;
}

/** A bounds-checked big-endian reader over the blob that fails with the blob's source. */
class BlobReader {
  private readonly view: DataView;
  /** A plain Uint8Array view: a Buffer's slice() would alias the blob and stay a Buffer. */
  readonly bytes: Uint8Array;
  constructor(
    blob: Uint8Array,
    readonly source: string,
  ) {
    this.bytes = new Uint8Array(blob.buffer, blob.byteOffset, blob.byteLength);
    this.view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  }

  fail(code: FdtErrorCode, offset: number, expected: string): never {
    throw new FdtError(code, offset, expected, this.source);
  }

  u32(offset: number): number {
    return this.view.getUint32(offset);
  }

  u64(offset: number): bigint {
    return this.view.getBigUint64(offset);
  }

  /** The NUL-terminated string at `start`, which must end before `end`; bytes map 1:1 to chars. */
  cString(start: number, end: number, what: string): string {
    const nul = this.bytes.indexOf(0, start);
    if (nul < 0 || nul >= end) {
      this.fail('UNTERMINATED_STRING', start, `a NUL-terminated ${what} before ${hex(end)}`);
    }
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset + start, nul - start).toString(
      'latin1',
    );
  }
}

/**
 * Parses a DTB. `source` names the blob in error messages (a file name, say).
 * @throws FdtError for every malformation; never anything else.
 */
export function parseFdt(bytes: Uint8Array, source = 'blob'): Fdt {
  const reader = new BlobReader(bytes, source);
  const header = readHeader(reader);
  const reservations = readMemoryReservations(reader, header);
  const fdt = new Fdt(new StructureWalker(reader, header).run(), source);
  fdt.memoryReservations = reservations;
  fdt.version = header.version;
  fdt.bootCpuId = header.bootCpuId;
  return fdt;
}

function readHeader(r: BlobReader): FdtHeader {
  const length = r.bytes.length;
  if (length < 4) r.fail('TRUNCATED', length, 'a 4-byte magic 0xd00dfeed');
  const magic = r.u32(HEADER.magic);
  if (magic !== FDT_MAGIC) r.fail('BAD_MAGIC', 0, `magic 0xd00dfeed, found ${hex(magic)}`);
  if (length < HEADER.lastCompVersion + 4) {
    r.fail('TRUNCATED', length, 'a header with version and last_comp_version');
  }
  const version = r.u32(HEADER.version);
  if (version < FDT_FIRST_READ_VERSION) {
    r.fail('BAD_VERSION', HEADER.version, `version 16 or 17, found ${version}`);
  }
  const lastComp = r.u32(HEADER.lastCompVersion);
  // A newer blob is readable when it declares compatibility with a version we know.
  if (lastComp > FDT_WRITE_VERSION || lastComp > version) {
    r.fail('BAD_VERSION', HEADER.lastCompVersion, `last_comp_version <= 17, found ${lastComp}`);
  }
  const hsize = headerSize(version);
  if (length < hsize) r.fail('TRUNCATED', length, `a ${hsize}-byte version ${version} header`);
  const totalsize = r.u32(HEADER.totalsize);
  if (totalsize < hsize) {
    r.fail('BAD_HEADER', HEADER.totalsize, `totalsize >= ${hsize}, found ${totalsize}`);
  }
  if (totalsize > length) {
    r.fail('TRUNCATED', length, `totalsize ${totalsize} bytes, the buffer holds ${length}`);
  }
  const block = (field: number, what: string, size: number, sizeField?: number): number => {
    const offset = r.u32(field);
    const bounds = `between the header's end ${hex(hsize)} and totalsize ${hex(totalsize)}`;
    if (offset < hsize || offset > totalsize) {
      r.fail('OUT_OF_BOUNDS', field, `${what} offset ${bounds}, found ${hex(offset)}`);
    }
    if (sizeField !== undefined && size > totalsize - offset) {
      r.fail('OUT_OF_BOUNDS', sizeField, `${what} of ${size} bytes at ${hex(offset)} ${bounds}`);
    }
    return offset;
  };
  const memRsvOffset = block(HEADER.offMemRsvmap, 'memory reservation block', 0);
  if (memRsvOffset % 8 !== 0) {
    r.fail('MISALIGNED', HEADER.offMemRsvmap, `off_mem_rsvmap ${hex(memRsvOffset)} 8-aligned`);
  }
  const structSize = version >= 17 ? r.u32(HEADER.sizeDtStruct) : undefined;
  const structOffset = block(
    HEADER.offDtStruct,
    'structure block',
    structSize ?? 0,
    structSize === undefined ? undefined : HEADER.sizeDtStruct,
  );
  if (structOffset % 4 !== 0) {
    r.fail('MISALIGNED', HEADER.offDtStruct, `off_dt_struct ${hex(structOffset)} 4-aligned`);
  }
  const stringsSize = r.u32(HEADER.sizeDtStrings);
  const stringsOffset = block(
    HEADER.offDtStrings,
    'strings block',
    stringsSize,
    HEADER.sizeDtStrings,
  );
  return {
    totalsize,
    version,
    bootCpuId: r.u32(HEADER.bootCpuidPhys),
    memRsvOffset,
    structOffset,
    // v16 has no size_dt_struct: the block may run to the end of the blob.
    structEnd: structSize === undefined ? totalsize : structOffset + structSize,
    stringsOffset,
    stringsSize,
  };
}

function readMemoryReservations(r: BlobReader, h: FdtHeader): MemoryReservation[] {
  const out: MemoryReservation[] = [];
  for (let at = h.memRsvOffset; ; at += MEMRSV_ENTRY_SIZE) {
    if (at + MEMRSV_ENTRY_SIZE > h.totalsize) {
      r.fail('TRUNCATED', at, 'a 16-byte memory reservation entry (the list ends with 0, 0)');
    }
    const address = r.u64(at);
    const size = r.u64(at + 8);
    if (address === 0n && size === 0n) return out;
    out.push({ address, size });
  }
}

/**
 * Walks the structure block token by token with an explicit stack, so nesting depth is bounded
 * by memory, not the call stack; every step moves forward, so the walk always ends.
 */
class StructureWalker {
  private readonly stack: FdtNode[] = [];
  private readonly names = new Map<number, string>();
  private root: FdtNode | undefined;
  private at: number;

  constructor(
    private readonly r: BlobReader,
    private readonly h: FdtHeader,
  ) {
    this.at = h.structOffset;
  }

  run(): FdtNode {
    const r: BlobReader = this.r;
    const h = this.h;
    for (;;) {
      if (this.at + 4 > h.structEnd) {
        r.fail('TRUNCATED', this.at, `a token before ${hex(h.structEnd)}: ${this.want()}`);
      }
      const tokenAt = this.at;
      const token = r.u32(tokenAt);
      this.at += 4;
      switch (token) {
        case FDT_BEGIN_NODE:
          this.beginNode(tokenAt);
          break;
        case FDT_END_NODE:
          if (!this.stack.pop())
            r.fail('UNBALANCED', tokenAt, `${this.want()}, found FDT_END_NODE`);
          break;
        case FDT_PROP:
          this.property(tokenAt);
          break;
        case FDT_NOP:
          break;
        case FDT_END:
          return this.end(tokenAt);
        default:
          r.fail('BAD_TOKEN', tokenAt, `a structure token (1, 2, 3, 4 or 9), found ${hex(token)}`);
      }
    }
  }

  private beginNode(tokenAt: number): void {
    const r: BlobReader = this.r;
    if (this.root && this.stack.length === 0) {
      r.fail('UNBALANCED', tokenAt, 'FDT_END after the root node, found FDT_BEGIN_NODE');
    }
    const name = r.cString(this.at, this.h.structEnd, 'node name');
    this.at = alignUp(this.at + name.length + 1, 4);
    const parent = this.stack[this.stack.length - 1];
    let node: FdtNode;
    if (parent) {
      node = parent.addChild(name);
    } else {
      if (name !== '') r.fail('BAD_NAME', tokenAt, `the root node named '', found '${name}'`);
      node = this.root = new FdtNode('');
    }
    node.offset = tokenAt;
    this.stack.push(node);
  }

  private property(tokenAt: number): void {
    const r: BlobReader = this.r;
    const h = this.h;
    const node = this.stack[this.stack.length - 1];
    if (!node) r.fail('UNBALANCED', tokenAt, `${this.want()}, found FDT_PROP`);
    if (this.at + 8 > h.structEnd) r.fail('TRUNCATED', this.at, 'a property header (len, nameoff)');
    const len = r.u32(this.at);
    const nameoff = r.u32(this.at + 4);
    this.at += 8;
    if (len > h.structEnd - this.at) {
      r.fail('OUT_OF_BOUNDS', tokenAt + 4, `a ${len}-byte value ending by ${hex(h.structEnd)}`);
    }
    const name = propertyName(r, h, this.names, nameoff, tokenAt + 8);
    // A copy: the tree must not alias (or keep alive) the caller's buffer.
    node.properties.push({ name, value: r.bytes.slice(this.at, this.at + len) });
    this.at = alignUp(this.at + len, 4);
  }

  private end(tokenAt: number): FdtNode {
    const r: BlobReader = this.r;
    const h = this.h;
    if (!this.root || this.stack.length > 0) {
      r.fail('UNBALANCED', tokenAt, `${this.want()}, found FDT_END`);
    }
    if (h.version >= 17 && this.at !== h.structEnd) {
      r.fail(
        'UNBALANCED',
        this.at,
        `the structure block to end after FDT_END (${hex(h.structEnd)})`,
      );
    }
    return this.root;
  }

  /** What the walker may see next, for error messages. */
  private want(): string {
    const top = this.stack[this.stack.length - 1];
    if (top) return `FDT_END_NODE for ${top.shortPath}`;
    return this.root ? 'FDT_END' : 'FDT_BEGIN_NODE of the root node';
  }
}

function propertyName(
  r: BlobReader,
  h: FdtHeader,
  cache: Map<number, string>,
  nameoff: number,
  fieldAt: number,
): string {
  const cached = cache.get(nameoff);
  if (cached !== undefined) return cached;
  if (nameoff >= h.stringsSize) {
    r.fail('OUT_OF_BOUNDS', fieldAt, `nameoff below size_dt_strings ${h.stringsSize}`);
  }
  const stringsEnd = h.stringsOffset + h.stringsSize;
  const name = r.cString(h.stringsOffset + nameoff, stringsEnd, 'property name');
  cache.set(nameoff, name);
  return name;
}
