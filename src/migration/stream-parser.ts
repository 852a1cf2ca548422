/**
 * The destination's reader of a migration stream (stream-format.ts) as MIG_DATA_WRITE delivers
 * it: bytes arrive in pieces of any size; complete records come out checked (CRC-32, sequence,
 * HEADER first, END last with the right count and byte total, nothing after END), a partial
 * record waits for the rest (an explicit state, as ws's receiver keeps one). The first fault
 * poisons the parser: every later push fails with the same reason. A record handed out is a
 * view of the parser's reused buffer, valid until the next record: keep a copy of what you keep.
 */
import {
  decodeRecord,
  decodeRecordHead,
  RECORD_HEAD,
  RECORD_TAIL,
  RecordType,
  recordCrcOk,
  type StreamRecord,
  streamError,
} from './stream-format.ts';

/** Incremental, checking reader of one stream (see the module header). */
export class StreamParser {
  /** Bytes of the record being assembled (head first), and how many are in. */
  readonly #head = new Uint8Array(RECORD_HEAD);
  #record: Uint8Array = this.#head;
  /** Where records are assembled, grown to the largest so far and reused. */
  #buffer: Uint8Array = new Uint8Array(0);
  #have = 0;
  #headDone = false;
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
   * Takes `data`; calls `each` for every record it completes, in order.
   * @throws VfioError EINVAL for a damaged, misordered or over-long stream (and on every later call).
   */
  push(data: Uint8Array, each: (record: StreamRecord) => void): void {
    if (this.#fault !== undefined) throw streamError(this.#fault);
    try {
      this.#push(data, each);
    } catch (err) {
      this.#fault =
        err instanceof Error ? err.message.replace(/^EINVAL: migration stream: /, '') : String(err);
      throw err;
    }
  }

  #push(data: Uint8Array, each: (record: StreamRecord) => void): void {
    let at = 0;
    while (at < data.length) {
      if (this.#ended)
        throw streamError(`${data.length - at} bytes after END (stream byte ${this.#bytes})`);
      const want = this.#record.length - this.#have;
      const take = Math.min(want, data.length - at);
      this.#record.set(data.subarray(at, at + take), this.#have);
      this.#have += take;
      at += take;
      if (this.#have < this.#record.length) break;
      if (!this.#headDone) this.#startPayload();
      else each(this.#finishRecord());
    }
  }

  /**
   * The head is in: the record continues in the reused buffer, sized for its payload and CRC
   * (records are handed to `each` as views of it, valid until the next push).
   */
  #startPayload(): void {
    const { seq, length } = decodeRecordHead(this.#record);
    if (seq !== this.#seq)
      throw streamError(
        `record ${this.#seq} expected, record ${seq} found (stream byte ${this.#bytes})`,
      );
    const size = RECORD_HEAD + length + RECORD_TAIL;
    if (this.#buffer.length < size) this.#buffer = new Uint8Array(size);
    const full = this.#buffer.subarray(0, size);
    full.set(this.#record);
    this.#record = full;
    this.#headDone = true;
  }

  #finishRecord(): StreamRecord {
    const record = this.#record;
    const { type, seq, length } = decodeRecordHead(record);
    if (!recordCrcOk(record))
      throw streamError(
        `record ${seq} (type ${type}) fails its CRC-32 (stream byte ${this.#bytes})`,
      );
    const decoded = decodeRecord(type, record.subarray(RECORD_HEAD, RECORD_HEAD + length));
    if ((seq === 0) !== (decoded.type === RecordType.HEADER))
      throw streamError(`record ${seq} is type ${type}: HEADER comes first, and once`);
    if (decoded.type === RecordType.END) {
      if (decoded.records !== seq || decoded.bytes !== this.#bytes)
        throw streamError(
          `END counts ${decoded.records} records and ${decoded.bytes} bytes; ${seq} and ${this.#bytes} arrived`,
        );
      this.#ended = true;
    }
    this.#bytes += BigInt(record.length);
    this.#seq++;
    this.#record = this.#head;
    this.#have = 0;
    this.#headDone = false;
    return decoded;
  }

  /**
   * The stream must be complete now (RESUMING → STOP).
   * @throws VfioError EINVAL when END has not arrived (truncated) or the parser is poisoned.
   */
  finish(): void {
    if (this.#fault !== undefined) throw streamError(this.#fault);
    if (!this.#ended) {
      const partial = this.#have > 0 ? `, ${this.#have} bytes of record ${this.#seq} pending` : '';
      throw streamError(
        `truncated: no END after ${this.#seq} records (${this.#bytes} bytes${partial})`,
      );
    }
  }
}
