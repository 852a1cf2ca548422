/**
 * The migration stream's bytes (ours: vfio-user.rst leaves the data opaque, "VFIO_USER_MIG_DATA_READ"):
 * a sequence of records, each
 *
 *   type u16 | flags u16 (0) | seq u32 | length u32 | payload (length bytes) | crc32 u32
 *
 * little-endian, the CRC-32 (zlib's, IEEE; native/digest.c computes it at the stream's rate)
 * over the record from `type` to the payload's end,
 * `seq` counting records from 0 so that a lost, repeated or reordered record is seen. The first
 * record is HEADER (magic, format version, a JSON description of the device), the last END
 * (record count and stream bytes before it). Records in between: PAGES of a region's memory
 * (only pages holding data: holes are never sent), CONFIG space, a BAR's REGISTERS page, IRQS.
 * Pure: bytes in, bytes out.
 */

import { messageOf } from '../errors/index.ts';
import { crc32 } from '../native/index.ts';
import { JsonReader } from '../text/index.ts';
import { VfioError } from '../vfio/index.ts';

/** A stream that cannot be loaded: EINVAL, as the kernel's drivers answer a bad stream. */
export function streamError(reason: string): VfioError {
  return new VfioError('EINVAL', `migration stream: ${reason}`);
}

/** Record types. */
export enum RecordType {
  HEADER = 1,
  PAGES = 2,
  CONFIG = 3,
  REGISTERS = 4,
  IRQS = 5,
  END = 6,
}

/** Bytes before a record's payload: type, flags, seq, length. */
export const RECORD_HEAD = 12;
/** Bytes after a record's payload: its CRC-32. */
export const RECORD_TAIL = 4;
/** Largest payload a record may have (a PAGES record of 1 MiB of data plus its head). */
export const MAX_RECORD_PAYLOAD = 1024 * 1024 + 16;
/** "VFNV2MIG": the HEADER payload's first 8 bytes. */
export const STREAM_MAGIC = new Uint8Array([0x56, 0x46, 0x4e, 0x56, 0x32, 0x4d, 0x49, 0x47]);
/** The format version this code writes and reads. */
export const STREAM_VERSION = 1;
/** Bytes of a PAGES payload before its data: region u32, reserved u32, offset u64. */
export const PAGES_HEAD = 16;

/** What HEADER describes: the device the stream was saved from, checked by the destination. */
export interface StreamDescription {
  /** PCI name on the source host (informational: the destination may have another). */
  readonly device: string;
  readonly vendor: number;
  readonly deviceId: number;
  readonly configSize: number;
  /** Regions that carry memory: index and size in bytes (decimal string: sizes pass 2^53). */
  readonly regions: readonly { readonly index: number; readonly size: string }[];
  /** The source's LPID (informational: the destination maps its own). */
  readonly lpid: number | null;
}

/** A record as decoded. */
export type StreamRecord =
  | { type: RecordType.HEADER; version: number; description: StreamDescription }
  | {
      type: RecordType.PAGES;
      region: number;
      offset: bigint;
      data: Uint8Array;
      /** The data's rest, right after `data`, when it arrived in two parts (StreamParser). */
      more?: Uint8Array;
    }
  | { type: RecordType.CONFIG; bytes: Uint8Array }
  | { type: RecordType.REGISTERS; bar: number; start: bigint; bytes: Uint8Array }
  | {
      type: RecordType.IRQS;
      index: number | undefined;
      vectors: number;
      intxMasked: boolean;
      intxPending: boolean;
    }
  | { type: RecordType.END; records: number; bytes: bigint };

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * A record with room for `payloadLength` payload bytes: the buffer and its payload view, to be
 * filled by the caller before `sealRecord`.
 */
export function allocRecord(
  type: RecordType,
  seq: number,
  payloadLength: number,
  reuse?: Uint8Array,
): { record: Uint8Array; payload: Uint8Array } {
  const size = RECORD_HEAD + payloadLength + RECORD_TAIL;
  const record =
    reuse !== undefined && reuse.length >= size ? reuse.subarray(0, size) : new Uint8Array(size);
  const v = view(record);
  v.setUint16(0, type, true);
  v.setUint16(2, 0, true);
  v.setUint32(4, seq >>> 0, true);
  v.setUint32(8, payloadLength, true);
  return { record, payload: record.subarray(RECORD_HEAD, RECORD_HEAD + payloadLength) };
}

/** Writes the CRC-32 of a record filled after `allocRecord`; returns it. */
export function sealRecord(record: Uint8Array): Uint8Array {
  const end = record.length - RECORD_TAIL;
  view(record).setUint32(end, crc32(record.subarray(0, end)) >>> 0, true);
  return record;
}

function build(type: RecordType, seq: number, payload: Uint8Array): Uint8Array {
  const r = allocRecord(type, seq, payload.length);
  r.payload.set(payload);
  return sealRecord(r.record);
}

/** HEADER: magic, version u32, JSON of `description`. */
export function encodeHeader(seq: number, description: StreamDescription): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(description));
  const p = new Uint8Array(12 + json.length);
  p.set(STREAM_MAGIC, 0);
  view(p).setUint32(8, STREAM_VERSION, true);
  p.set(json, 12);
  return build(RecordType.HEADER, seq, p);
}

/**
 * A PAGES record for `dataLength` bytes at `offset` of `region` (in `reuse` when it is large
 * enough): fill `data`, then seal.
 */
export function allocPages(
  seq: number,
  region: number,
  offset: bigint,
  dataLength: number,
  reuse?: Uint8Array,
): { record: Uint8Array; data: Uint8Array } {
  const { record, payload } = allocRecord(RecordType.PAGES, seq, PAGES_HEAD + dataLength, reuse);
  const v = view(payload);
  v.setUint32(0, region, true);
  v.setUint32(4, 0, true);
  v.setBigUint64(8, offset, true);
  return { record, data: payload.subarray(PAGES_HEAD) };
}

/** CONFIG: the config space bytes. */
export function encodeConfig(seq: number, bytes: Uint8Array): Uint8Array {
  return build(RecordType.CONFIG, seq, bytes);
}

/** REGISTERS: bar u32, reserved u32, start u64, the page's bytes. */
export function encodeRegisters(
  seq: number,
  bar: number,
  start: bigint,
  bytes: Uint8Array,
): Uint8Array {
  const p = new Uint8Array(16 + bytes.length);
  view(p).setUint32(0, bar, true);
  view(p).setBigUint64(8, start, true);
  p.set(bytes, 16);
  return build(RecordType.REGISTERS, seq, p);
}

/** IRQS: index i32 (-1: none), vectors u32, INTx masked u8, pending u8, 2 reserved. */
export function encodeIrqs(
  seq: number,
  irqs: { index: number | undefined; vectors: number; intxMasked: boolean; intxPending: boolean },
): Uint8Array {
  const p = new Uint8Array(12);
  view(p).setInt32(0, irqs.index ?? -1, true);
  view(p).setUint32(4, irqs.vectors, true);
  p[8] = irqs.intxMasked ? 1 : 0;
  p[9] = irqs.intxPending ? 1 : 0;
  return build(RecordType.IRQS, seq, p);
}

/** END: records before it u32, reserved u32, stream bytes before it u64. */
export function encodeEnd(seq: number, records: number, bytes: bigint): Uint8Array {
  const p = new Uint8Array(16);
  view(p).setUint32(0, records, true);
  view(p).setBigUint64(8, bytes, true);
  return build(RecordType.END, seq, p);
}

function need(payload: Uint8Array, size: number, what: string, exact = true): void {
  if (exact ? payload.length !== size : payload.length < size)
    throw streamError(
      `${what} payload of ${payload.length} bytes (${exact ? '' : 'at least '}${size} expected)`,
    );
}

/** Most regions a description lists (a vfio-pci device has 9 and a few device-specific ones). */
const MAX_REGIONS = 256;

function decodeDescription(json: Uint8Array): StreamDescription {
  const r = new JsonReader(
    'migration stream: HEADER description',
    (m) => new VfioError('EINVAL', m),
  );
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(json);
  } catch (err) {
    throw r.invalid(`not UTF-8 (${messageOf(err)})`);
  }
  const o = r.object('the description', r.parse(text));
  const regions = r.array('regions', o.regions, MAX_REGIONS).map((x, i) => {
    const region = r.object(`regions[${i}]`, x);
    const size = region.size;
    if (typeof size !== 'string' || !/^\d{1,20}$/.test(size))
      throw r.wrong(`regions[${i}].size`, 'a decimal byte count', size);
    return { index: r.count(`regions[${i}].index`, region.index), size };
  });
  return {
    device: r.string('device', o.device),
    vendor: r.count('vendor', o.vendor),
    deviceId: r.count('deviceId', o.deviceId),
    configSize: r.count('configSize', o.configSize),
    regions,
    lpid: o.lpid === null || o.lpid === undefined ? null : r.count('lpid', o.lpid),
  };
}

/**
 * The record `type`'s payload decoded.
 * @throws VfioError EINVAL naming what is wrong (size, magic, version, type).
 */
export function decodeRecord(type: number, payload: Uint8Array): StreamRecord {
  const v = view(payload);
  switch (type) {
    case RecordType.HEADER: {
      need(payload, 12, 'HEADER', false);
      if (!STREAM_MAGIC.every((b, i) => payload[i] === b))
        throw streamError('HEADER magic is not VFNV2MIG');
      const version = v.getUint32(8, true);
      if (version !== STREAM_VERSION)
        throw streamError(`stream format version ${version} (this server reads ${STREAM_VERSION})`);
      return { type, version, description: decodeDescription(payload.subarray(12)) };
    }
    case RecordType.PAGES:
      need(payload, PAGES_HEAD, 'PAGES', false);
      return {
        type,
        region: v.getUint32(0, true),
        offset: v.getBigUint64(8, true),
        data: payload.subarray(PAGES_HEAD),
      };
    case RecordType.CONFIG:
      return { type, bytes: payload };
    case RecordType.REGISTERS:
      need(payload, 16, 'REGISTERS', false);
      return {
        type,
        bar: v.getUint32(0, true),
        start: v.getBigUint64(8, true),
        bytes: payload.subarray(16),
      };
    case RecordType.IRQS: {
      need(payload, 12, 'IRQS');
      const index = v.getInt32(0, true);
      return {
        type,
        index: index < 0 ? undefined : index,
        vectors: v.getUint32(4, true),
        intxMasked: payload[8] === 1,
        intxPending: payload[9] === 1,
      };
    }
    case RecordType.END:
      need(payload, 16, 'END');
      return { type, records: v.getUint32(0, true), bytes: v.getBigUint64(8, true) };
    default:
      throw streamError(`unknown record type ${type}`);
  }
}

/**
 * Splits a record's head: type, flags, seq and payload length.
 * @throws VfioError EINVAL for non-zero flags or a payload over MAX_RECORD_PAYLOAD.
 */
export function decodeRecordHead(head: Uint8Array): {
  type: number;
  seq: number;
  length: number;
} {
  const v = view(head);
  const type = v.getUint16(0, true);
  const flags = v.getUint16(2, true);
  const seq = v.getUint32(4, true);
  const length = v.getUint32(8, true);
  if (flags !== 0) throw streamError(`record ${seq}: flags ${flags} must be 0`);
  if (length > MAX_RECORD_PAYLOAD)
    throw streamError(
      `record ${seq}: payload of ${length} bytes is over the ${MAX_RECORD_PAYLOAD}-byte limit`,
    );
  return { type, seq, length };
}

/** Whether the record's CRC-32 matches (record = head, payload and tail). */
export function recordCrcOk(record: Uint8Array): boolean {
  const end = record.length - RECORD_TAIL;
  return view(record).getUint32(end, true) === crc32(record.subarray(0, end)) >>> 0;
}
