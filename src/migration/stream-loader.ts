/**
 * The destination's side of a migration (RESUMING): the device's memory is cleared once the
 * stream's HEADER is accepted (a destination starts from nothing, so a page the source never
 * had reads as zeros here too; a stream of another device, refused at its HEADER, leaves the
 * memory as it was);
 * PAGES records are stored as they arrive (each checked: a known region, inside it); config
 * space, register pages and interrupt state are held and applied only at RESUMING → STOP, once
 * the stream has proved whole (StreamParser.finish).
 */
import { hex } from '../text/index.ts';
import type { SavedIrqState, VfioPciDevice } from '../vfio/index.ts';
import { incompatibility, type MemorySource, memorySources } from './device-image.ts';
import { RecordType, type StreamRecord, streamError } from './stream-format.ts';
import { StreamParser } from './stream-parser.ts';

/** One loading session of one device (see the module header). */
export class StreamLoader {
  readonly #device: VfioPciDevice;
  readonly #sources = new Map<number, MemorySource>();
  readonly #parser = new StreamParser();
  #config: Uint8Array | undefined;
  readonly #registers: { bar: number; start: bigint; bytes: Uint8Array }[] = [];
  #irqs: SavedIrqState | undefined;
  #pages = 0n;
  #cleared = false;

  /** The device's memory is cleared at the accepted HEADER (see the module header). */
  constructor(device: VfioPciDevice) {
    this.#device = device;
    for (const s of memorySources(device)) this.#sources.set(s.region, s);
  }

  /** Clears the device's memory, once, before the first record that changes it. */
  #clear(): void {
    if (this.#cleared) return;
    this.#cleared = true;
    for (const s of this.#sources.values()) s.contents.clear();
  }

  /** Stream bytes taken. */
  get bytes(): bigint {
    return this.#parser.bytes;
  }

  /**
   * MIG_DATA_WRITE's data.
   * @throws VfioError EINVAL for a damaged stream or one of another device (then always).
   */
  write(data: Uint8Array): void {
    this.#parser.push(data, (r) => this.#apply(r));
  }

  #apply(r: StreamRecord): void {
    switch (r.type) {
      case RecordType.HEADER: {
        const why = incompatibility(r.description, this.#device);
        if (why)
          throw streamError(
            `${r.description.device} cannot load into ${this.#device.name}: ${why}`,
          );
        this.#clear();
        return;
      }
      case RecordType.PAGES: {
        const s = this.#sources.get(r.region);
        const end = r.offset + BigInt(r.data.length);
        if (!s) throw streamError(`PAGES for region ${r.region}, which holds no memory here`);
        if (end > s.size)
          throw streamError(
            `PAGES at ${hex(r.offset)}+${hex(r.data.length)} run past region ${r.region} (size ${hex(s.size)})`,
          );
        this.#clear();
        s.contents.write(r.offset, r.data);
        this.#pages += BigInt(r.data.length);
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
   * RESUMING → STOP: the stream must be whole; then config space, register pages and interrupt
   * state take the saved values.
   * @throws VfioError EINVAL for a truncated or damaged stream (nothing of the held state applied).
   */
  finish(): void {
    this.#parser.finish();
    const d = this.#device;
    d.restoreMigrated(this.#config as Uint8Array, this.#registers);
    const irqs = this.#irqs as SavedIrqState;
    d.irqs.restoreIntx(irqs.intxMasked, irqs.intxPending);
  }
}
