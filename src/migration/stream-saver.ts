/**
 * The source's writer of a migration stream (stream-format.ts), read out by MIG_DATA_READ in
 * rounds. PRE_COPY: each round sends the pages that hold data and were not sent yet or whose
 * digest changed since they were sent (page-digest.ts); a read shorter than asked ends the
 * round, and the next read starts another (the VMM stops when a round is small enough).
 * STOP_COPY: one last such round, then config space, BAR register pages, interrupt state and
 * END; after END every read returns nothing. Holes are never sent (SEEK_DATA/SEEK_HOLE), and
 * a page's digest is taken from the very bytes sent, so a writer racing a read can only make
 * the next round send the page again.
 */
import type { VfioPciDevice } from '../vfio/index.ts';
import { describeForStream, type MemorySource, memorySources } from './device-image.ts';
import { pageDigest, TRACK_PAGE } from './page-digest.ts';
import {
  allocPages,
  encodeConfig,
  encodeEnd,
  encodeHeader,
  encodeIrqs,
  encodeRegisters,
  PAGES_HEAD,
  RECORD_HEAD,
  RECORD_TAIL,
  sealRecord,
} from './stream-format.ts';

/** Pages read (and sent, when all changed) at a time: 1 MiB, a PAGES record's most. */
const PAGES_PER_READ = 16;
/** Bytes of the largest PAGES record (head, 1 MiB of pages, CRC). */
const RECORD_BYTES = RECORD_HEAD + PAGES_HEAD + PAGES_PER_READ * TRACK_PAGE + RECORD_TAIL;

/** What a round (or the stream so far) sent: records, bytes, pages. */
export interface SaverCounts {
  readonly rounds: number;
  readonly bytes: bigint;
  readonly pages: number;
}

interface RegionRound {
  readonly source: MemorySource;
  /** Candidate pages (indexes of TRACK_PAGE pages), sorted. */
  readonly pages: number[];
  at: number;
}

/** One saving session of one device (see the module header). */
export class StreamSaver {
  readonly #device: VfioPciDevice;
  readonly #sources: MemorySource[];
  /** Per region: the digest of every page sent, as sent. */
  readonly #digests = new Map<number, Map<number, bigint>>();
  readonly #queue: Uint8Array[] = [];
  #queued = 0;
  #seq = 0;
  #bytes = 0n;
  #round: RegionRound[] | undefined;
  #final = false;
  #ended = false;
  #rounds = 0;
  #pages = 0;
  #roundBytes = 0;
  readonly #scratch = new Uint8Array(PAGES_PER_READ * TRACK_PAGE);
  /**
   * PAGES record buffers to reuse: a record read out entirely goes to #retired, and is free
   * again at the next read (its reply has been sent or copied by then: MIG_DATA_READ replies
   * are borrowed). Fresh 1 MiB buffers cost a page fault per 4 KiB each time.
   */
  readonly #free: Uint8Array[] = [];
  #retired: Uint8Array[] = [];
  /** The full buffers behind queued PAGES records (to retire them), by queued view. */
  readonly #owner = new Map<Uint8Array, Uint8Array>();

  constructor(device: VfioPciDevice) {
    this.#device = device;
    this.#sources = memorySources(device);
    for (const s of this.#sources) this.#digests.set(s.region, new Map());
    this.#enqueue(encodeHeader(this.#seq++, describeForStream(device)));
  }

  /** Rounds begun, stream bytes and pages sent so far. */
  get counts(): SaverCounts {
    return { rounds: this.#rounds, bytes: this.#bytes, pages: this.#pages };
  }

  /** Whether END has been produced and read out. */
  get finished(): boolean {
    return this.#ended && this.#queued === 0;
  }

  /**
   * STOP_COPY: the device is stopped; the round in progress is abandoned and the last one
   * (then the device state and END) is what reads return from now on.
   */
  startFinal(): void {
    this.#final = true;
    this.#round = undefined;
  }

  /**
   * Up to `size` bytes of the stream, as parts to send without copying. Fewer than `size`
   * bytes end the round (PRE_COPY) or the stream (STOP_COPY).
   */
  read(size: number): Uint8Array[] {
    this.#free.push(...this.#retired);
    this.#retired = [];
    if (this.#round === undefined && !this.#ended) this.#beginRound();
    while (this.#queued < size && this.#produce()) {}
    return this.#take(size);
  }

  /**
   * Bytes a STOP_COPY would send now at least (MIG_DATA_SIZE): what is queued plus every
   * populated page not sent yet.
   */
  pendingEstimate(): bigint {
    let bytes = BigInt(this.#queued);
    for (const s of this.#sources) {
      const sent = this.#digests.get(s.region) as Map<number, bigint>;
      for (const [from, to] of s.contents.dataRanges()) {
        for (let p = Number(from / BigInt(TRACK_PAGE)); BigInt(p * TRACK_PAGE) < to; p++)
          if (!sent.has(p)) bytes += BigInt(TRACK_PAGE);
      }
    }
    return bytes;
  }

  #beginRound(): void {
    this.#rounds++;
    this.#roundBytes = 0;
    this.#round = this.#sources.map((source) => {
      const sent = this.#digests.get(source.region) as Map<number, bigint>;
      const pages = new Set<number>(sent.keys());
      for (const [from, to] of source.contents.dataRanges()) {
        const last = Number((to - 1n) / BigInt(TRACK_PAGE));
        for (let p = Number(from / BigInt(TRACK_PAGE)); p <= last; p++) pages.add(p);
      }
      return { source, pages: [...pages].sort((a, b) => a - b), at: 0 };
    });
  }

  /** Queues the next records; false when the round (and, final, the stream) is done. */
  #produce(): boolean {
    const round = this.#round;
    if (round === undefined) return false;
    const region = round.find((r) => r.at < r.pages.length);
    if (region) {
      this.#sendRun(region);
      return true;
    }
    if (this.#final && !this.#ended) {
      this.#queueDeviceState();
      return true;
    }
    if (!this.#final) this.#round = undefined; // the next read starts the next round
    return false;
  }

  /** Reads up to PAGES_PER_READ contiguous candidates and queues those that changed. */
  #sendRun(r: RegionRound): void {
    const first = r.pages[r.at] as number;
    let n = 1;
    while (n < PAGES_PER_READ && r.pages[r.at + n] === first + n) n++;
    r.at += n;
    const start = BigInt(first) * BigInt(TRACK_PAGE);
    const end = bigMin(start + BigInt(n * TRACK_PAGE), r.source.size);
    const length = Number(end - start);
    const sent = this.#digests.get(r.source.region) as Map<number, bigint>;
    if (this.#final && [...Array(n).keys()].every((i) => !sent.has(first + i))) {
      // The last round's pages never sent: read straight into their record (one copy). Not
      // lent from our mapping of the memory: a first touch of each 4 KiB there is a page fault
      // (~100 MB/s on this VM), where pread copies at GB/s.
      const buffer = this.#free.pop() ?? new Uint8Array(RECORD_BYTES);
      const { record, data } = allocPages(this.#seq++, r.source.region, start, length, buffer);
      r.source.contents.read(start, data);
      this.#pages += n;
      this.#owner.set(record, buffer);
      this.#enqueue(sealRecord(record));
      return;
    }
    // A copy (pread: see above), digested once; the changed pages are copied from it.
    const buf = this.#scratch.subarray(0, length);
    r.source.contents.read(start, buf);
    const digests = pageDigest(buf);
    let runFrom = -1;
    for (let i = 0; i <= n; i++) {
      const changed = i < n && sent.get(first + i) !== digests[i];
      if (changed && runFrom < 0) runFrom = i;
      if (!changed && runFrom >= 0) {
        this.#queuePages(r, start, buf, runFrom, i, length, digests);
        runFrom = -1;
      }
    }
  }

  /**
   * Queues pages [from, to) of a run as one PAGES record and records their digests: of the
   * very bytes copied into the record (a writer may change live memory between the digest
   * that found the page changed and the copy; the stored digest must be of what was sent).
   */
  #queuePages(
    r: RegionRound,
    start: bigint,
    buf: Uint8Array,
    from: number,
    to: number,
    length: number,
    digestsOfCopy: bigint[],
  ): void {
    const a = from * TRACK_PAGE;
    const b = Math.min(to * TRACK_PAGE, length);
    const buffer = this.#free.pop() ?? new Uint8Array(RECORD_BYTES);
    const { record, data } = allocPages(
      this.#seq++,
      r.source.region,
      start + BigInt(a),
      b - a,
      buffer,
    );
    this.#owner.set(record, buffer);
    data.set(buf.subarray(a, b));
    const first = Number(start / BigInt(TRACK_PAGE));
    const sent = this.#digests.get(r.source.region) as Map<number, bigint>;
    if (!this.#final) {
      const digests = digestsOfCopy.slice(from, to);
      for (let i = from; i < to; i++) sent.set(first + i, digests[i - from] as bigint);
    }
    this.#pages += to - from;
    this.#enqueue(sealRecord(record));
  }

  #queueDeviceState(): void {
    const d = this.#device;
    this.#enqueue(encodeConfig(this.#seq++, d.config.snapshot()));
    for (const [bar, mem] of d.bars.entries()) {
      for (const page of mem?.registerState() ?? [])
        this.#enqueue(encodeRegisters(this.#seq++, bar, page.start, page.bytes));
    }
    this.#enqueue(encodeIrqs(this.#seq++, d.irqs.savedState));
    const records = this.#seq;
    this.#enqueue(encodeEnd(this.#seq++, records, this.#bytes + BigInt(this.#queued)));
    this.#ended = true;
  }

  #ownerOf(view: Uint8Array): Uint8Array | undefined {
    const buffer = this.#owner.get(view);
    this.#owner.delete(view);
    return buffer;
  }

  #enqueue(record: Uint8Array): void {
    this.#queue.push(record);
    this.#queued += record.length;
  }

  #take(size: number): Uint8Array[] {
    const parts: Uint8Array[] = [];
    let left = size;
    while (left > 0 && this.#queue.length > 0) {
      const head = this.#queue[0] as Uint8Array;
      if (head.length <= left) {
        parts.push(head);
        this.#queue.shift();
        left -= head.length;
        const buffer = this.#ownerOf(head);
        if (buffer !== undefined) this.#retired.push(buffer);
      } else {
        parts.push(head.subarray(0, left));
        const rest = head.subarray(left);
        const buffer = this.#owner.get(head);
        if (buffer !== undefined) {
          this.#owner.delete(head);
          this.#owner.set(rest, buffer);
        }
        this.#queue[0] = rest;
        left = 0;
      }
    }
    const n = size - left;
    this.#queued -= n;
    this.#bytes += BigInt(n);
    this.#roundBytes += n;
    return parts;
  }
}

function bigMin(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
