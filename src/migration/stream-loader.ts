/**
 * The destination's side of a migration (RESUMING): a destination starts from nothing, so a
 * page the source never had reads as zeros here too: once the stream has proved whole
 * (RESUMING → STOP), every byte of the device's memory the stream did not write is punched.
 * Not before, so that pages the stream rewrites are overwritten in place rather than freed at
 * the HEADER and allocated again (a GiB of that was a fifth of a stop-copy's time); a stream
 * of another device, refused at its HEADER, leaves the memory as it was, and a stream that
 * fails later leaves its writes over the old contents (the device is then in ERROR).
 * PAGES records are stored as they arrive (each checked: a known region, inside it); config
 * space, register pages and interrupt state are held and applied only at RESUMING → STOP, once
 * the stream has proved whole (StreamParser.finish).
 */
import { hex } from '../text/index.ts';
import type { SavedIrqState, VfioPciDevice } from '../vfio/index.ts';
import { incompatibility, type MemorySource, memorySources } from './device-image.ts';
import { RecordType, type StreamRecord, streamError } from './stream-format.ts';
import { StreamParser } from './stream-parser.ts';

const EMPTY = new Uint8Array(0);

/** One loading session of one device (see the module header). */
export class StreamLoader {
  readonly #device: VfioPciDevice;
  readonly #sources = new Map<number, MemorySource>();
  /** Per region: the [from, to) byte ranges PAGES wrote, in arrival order (adjacent merged). */
  readonly #written = new Map<number, [bigint, bigint][]>();
  readonly #parser = new StreamParser();
  #config: Uint8Array | undefined;
  readonly #registers: { bar: number; start: bigint; bytes: Uint8Array }[] = [];
  #irqs: SavedIrqState | undefined;
  #pages = 0n;

  /** What the stream does not write is punched at `finish` (see the module header). */
  constructor(device: VfioPciDevice) {
    this.#device = device;
    for (const s of memorySources(device)) {
      this.#sources.set(s.region, s);
      this.#written.set(s.region, []);
    }
  }

  /** Notes [from, to) of `region` as written (merged with the last range when they touch). */
  #wrote(region: number, from: bigint, to: bigint): void {
    const ranges = this.#written.get(region) as [bigint, bigint][];
    const last = ranges[ranges.length - 1];
    if (last !== undefined && last[1] >= from && last[0] <= to) {
      if (from < last[0]) last[0] = from;
      if (to > last[1]) last[1] = to;
    } else ranges.push([from, to]);
  }

  /** Stream bytes taken. */
  get bytes(): bigint {
    return this.#parser.bytes;
  }

  /**
   * MIG_DATA_WRITE's data; `stable`: left untouched until the next write returns, so that a
   * record spanning two writes is stored from where it arrived (StreamParser.push).
   * @throws VfioError EINVAL for a damaged stream or one of another device (then always).
   */
  write(data: Uint8Array, stable = false): void {
    this.#parser.push(data, (r) => this.#apply(r), stable);
  }

  #apply(r: StreamRecord): void {
    switch (r.type) {
      case RecordType.HEADER: {
        const why = incompatibility(r.description, this.#device);
        if (why)
          throw streamError(
            `${r.description.device} cannot load into ${this.#device.name}: ${why}`,
          );
        return;
      }
      case RecordType.PAGES: {
        const s = this.#sources.get(r.region);
        const more = r.more ?? EMPTY;
        const end = r.offset + BigInt(r.data.length + more.length);
        if (!s) throw streamError(`PAGES for region ${r.region}, which holds no memory here`);
        if (end > s.size)
          throw streamError(
            `PAGES at ${hex(r.offset)}+${hex(r.data.length + more.length)} run past region ${r.region} (size ${hex(s.size)})`,
          );
        if (r.data.length > 0) s.contents.write(r.offset, r.data);
        if (more.length > 0) s.contents.write(r.offset + BigInt(r.data.length), more);
        this.#wrote(r.region, r.offset, end);
        this.#pages += BigInt(r.data.length + more.length);
        return;
      }
      case RecordType.CONFIG:
        if (r.bytes.length !== this.#device.config.size)
          throw streamError(
            `CONFIG of ${r.bytes.length} bytes for a ${this.#device.config.size}-byte config space`,
          );
        this.#config = r.bytes.slice();
        return;
      case RecordType.REGISTERS: {
        const page = this.#device.bars[r.bar]?.registerState().find((p) => p.start === r.start);
        if (!page || page.bytes.length !== r.bytes.length)
          throw streamError(
            `REGISTERS for BAR${r.bar} at ${hex(r.start)}: no such register page here`,
          );
        this.#registers.push({ bar: r.bar, start: r.start, bytes: r.bytes.slice() });
        return;
      }
      case RecordType.IRQS:
        this.#irqs = r;
        return;
      case RecordType.END:
        if (this.#config === undefined || this.#irqs === undefined)
          throw streamError('END before CONFIG and IRQS');
        return;
    }
  }

  /**
   * RESUMING → STOP: the stream must be whole; then the memory it did not write is punched and
   * config space, register pages and interrupt state take the saved values.
   * @throws VfioError EINVAL for a truncated or damaged stream (nothing of the held state applied).
   */
  finish(): void {
    this.#parser.finish();
    for (const [region, s] of this.#sources) s.contents.clear(kept(this.#written.get(region)));
    const d = this.#device;
    d.restoreMigrated(this.#config as Uint8Array, this.#registers);
    const irqs = this.#irqs as SavedIrqState;
    d.irqs.restoreIntx(irqs.intxMasked, irqs.intxPending);
  }
}

/** `ranges` sorted and merged: disjoint, increasing [from, to) pairs. */
function kept(ranges: readonly [bigint, bigint][] = []): [bigint, bigint][] {
  const sorted = ranges
    .map(([a, b]): [bigint, bigint] => [a, b])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const out: [bigint, bigint][] = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && a <= last[1]) {
      if (b > last[1]) last[1] = b;
    } else out.push([a, b]);
  }
  return out;
}
