/**
 * The destination's reader of a migration stream (stream-format.ts) as MIG_DATA_WRITE delivers
 * it: bytes arrive in pieces of any size; complete records come out checked (CRC-32, sequence,
 * HEADER first, END last with the right count and byte total, nothing after END), a partial
 * record waits for the rest (an explicit state, as ws's receiver keeps one). The first fault
 * poisons the parser: every later push fails with the same reason.
 *
 * Copies: a record handed out is a view of the pushed bytes when it lies in one push, else of
 * the parser's reused buffer, valid until the next record: keep a copy of what you keep. A
 * caller that pushes `stable` bytes (left untouched until its next push returns) lets a record
 * that spans two pushes be read from both without a copy: a PAGES record then comes out with
 * its data in two parts (`data`, then `more`), each a view of the bytes pushed.
 */
import { crc32 } from '../native/index.ts';
import {
  decodeRecord,
  decodeRecordHead,
  PAGES_HEAD,
  RECORD_HEAD,
  RECORD_TAIL,
  RecordType,
  type StreamRecord,
  streamError,
} from './stream-format.ts';

/** Incremental, checking reader of one stream (see the module header). */
export class StreamParser {
  /** The record's head, copied as it arrives. */
  readonly #head = new Uint8Array(RECORD_HEAD);
  #headFill = 0;
  /** Payload and CRC bytes of the record: `length + RECORD_TAIL` once the head is in. */
  #bodySize = -1;
  #type = 0;
  #recordSeq = 0;
  /** Where bodies spanning pushes are assembled, grown to the largest so far and reused. */
  #buffer: Uint8Array = new Uint8Array(0);
  #bodyFill = 0;
  /** The body's first bytes as a view of the last stable push (nothing copied yet). */
  #lent: Uint8Array | null = null;
  #seq = 0;
  #bytes = 0n;
  #ended = false;
  #fault: string | undefined;

  /** Whether END has been read. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Stream bytes taken so far. */
  get bytes(): bigint {
    return this.#bytes;
  }

  /**
   * Takes `data`; calls `each` for every record it completes, in order. `stable`: `data` stays
   * as it is until the next push returns (see the module header).
   * @throws VfioError EINVAL for a damaged, misordered or over-long stream (and on every later call).
   */
  push(data: Uint8Array, each: (record: StreamRecord) => void, stable = false): void {
    if (this.#fault !== undefined) throw streamError(this.#fault);
    const lentBefore = this.#lent;
    try {
      this.#push(data, each, stable);
      // A view of the push before this one must not outlive this push.
      if (this.#lent !== null && this.#lent === lentBefore) this.#keepLent();
    } catch (err) {
      this.#fault =
        err instanceof Error ? err.message.replace(/^EINVAL: migration stream: /, '') : String(err);
      throw err;
    }
  }

  #push(data: Uint8Array, each: (record: StreamRecord) => void, stable: boolean): void {
    let at = 0;
    while (at < data.length) {
      if (this.#ended)
        throw streamError(`${data.length - at} bytes after END (stream byte ${this.#bytes})`);
      if (this.#bodySize < 0) {
        const take = Math.min(RECORD_HEAD - this.#headFill, data.length - at);
        this.#head.set(data.subarray(at, at + take), this.#headFill);
        this.#headFill += take;
        at += take;
        if (this.#headFill === RECORD_HEAD) this.#startBody();
        continue;
      }
      const have = this.#bodyFill + (this.#lent?.length ?? 0);
      const take = Math.min(this.#bodySize - have, data.length - at);
      const piece = data.subarray(at, at + take);
      at += take;
      if (have + take === this.#bodySize) {
        let parts: Uint8Array[];
        if (this.#lent !== null) parts = [this.#lent, piece];
        else if (this.#bodyFill === 0) parts = [piece];
        else if (stable) parts = [this.#buffer.subarray(0, this.#bodyFill), piece];
        else {
          this.#buffer.set(piece, this.#bodyFill);
          parts = [this.#buffer.subarray(0, this.#bodySize)];
        }
        this.#lent = null;
        this.#finishRecord(parts, each);
      } else if (stable && have === 0) {
        this.#lent = piece;
      } else {
        this.#keepLent();
        this.#buffer.set(piece, this.#bodyFill);
        this.#bodyFill += take;
      }
    }
  }

  /** Copies the lent bytes into the buffer (their push is over). */
  #keepLent(): void {
    const lent = this.#lent;
    if (lent === null) return;
    this.#buffer.set(lent, 0);
    this.#bodyFill = lent.length;
    this.#lent = null;
  }

  /** The head is in: checks it and sizes the body (the buffer grows to the largest so far). */
  #startBody(): void {
    const { type, seq, length } = decodeRecordHead(this.#head);
    if (seq !== this.#seq)
      throw streamError(
        `record ${this.#seq} expected, record ${seq} found (stream byte ${this.#bytes})`,
      );
    this.#type = type;
    this.#recordSeq = seq;
    this.#bodySize = length + RECORD_TAIL;
    if (this.#buffer.length < this.#bodySize) this.#buffer = new Uint8Array(this.#bodySize);
    this.#bodyFill = 0;
  }

  /** `parts` hold the body (payload then CRC, in order): checks it and hands it out. */
  #finishRecord(parts: Uint8Array[], each: (record: StreamRecord) => void): void {
    const type = this.#type;
    const seq = this.#recordSeq;
    const length = this.#bodySize - RECORD_TAIL;
    const tail = gather(parts, length, RECORD_TAIL);
    let crc = crc32(this.#head);
    let left = length;
    for (const p of parts) {
      const n = Math.min(p.length, left);
      crc = crc32(p.subarray(0, n), crc);
      left -= n;
    }
    const stored = new DataView(tail.buffer, tail.byteOffset, 4).getUint32(0, true);
    if (stored !== crc)
      throw streamError(
        `record ${seq} (type ${type}) fails its CRC-32 (stream byte ${this.#bytes})`,
      );
    const first = parts[0] as Uint8Array;
    let decoded: StreamRecord;
    if (first.length >= length) decoded = decodeRecord(type, first.subarray(0, length));
    else if (type === RecordType.PAGES && length >= PAGES_HEAD && first.length >= PAGES_HEAD) {
      // Split between two pushes: the data stays where it arrived, in two parts.
      const head = decodeRecord(type, first.subarray(0, PAGES_HEAD));
      const second = (parts[1] as Uint8Array).subarray(0, length - first.length);
      decoded = { ...head, data: first.subarray(PAGES_HEAD), more: second } as StreamRecord;
    } else decoded = decodeRecord(type, gather(parts, 0, length));
    if ((seq === 0) !== (decoded.type === RecordType.HEADER))
      throw streamError(`record ${seq} is type ${type}: HEADER comes first, and once`);
    if (decoded.type === RecordType.END) {
      if (decoded.records !== seq || decoded.bytes !== this.#bytes)
        throw streamError(
          `END counts ${decoded.records} records and ${decoded.bytes} bytes; ${seq} and ${this.#bytes} arrived`,
        );
      this.#ended = true;
    }
    this.#bytes += BigInt(RECORD_HEAD + this.#bodySize);
    this.#seq++;
    this.#headFill = 0;
    this.#bodySize = -1;
    this.#bodyFill = 0;
    each(decoded);
  }

  /**
   * The stream must be complete now (RESUMING → STOP).
   * @throws VfioError EINVAL when END has not arrived (truncated) or the parser is poisoned.
   */
  finish(): void {
    if (this.#fault !== undefined) throw streamError(this.#fault);
    if (!this.#ended) {
      const have = this.#headFill + this.#bodyFill + (this.#lent?.length ?? 0);
      const partial = have > 0 ? `, ${have} bytes of record ${this.#seq} pending` : '';
      throw streamError(
        `truncated: no END after ${this.#seq} records (${this.#bytes} bytes${partial})`,
      );
    }
  }
}

/** Bytes [from, from + n) of the concatenation of `parts`, in a buffer of their own. */
function gather(parts: readonly Uint8Array[], from: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let skip = from;
  let at = 0;
  for (const p of parts) {
    if (at === n) break;
    if (skip >= p.length) {
      skip -= p.length;
      continue;
    }
    const take = Math.min(p.length - skip, n - at);
    out.set(p.subarray(skip, skip + take), at);
    at += take;
    skip = 0;
  }
  return out;
}
