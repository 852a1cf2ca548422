/**
 * A MAP_SHARED mapping of a file range larger than one Node buffer can hold: Node 20 caps an
 * ArrayBuffer at 4 GiB (buffer.constants.MAX_LENGTH), so the range is mapped as consecutive
 * windows, each its own mmap(2). Reads and writes that cross a window edge are split.
 */
import { addon } from './addon.ts';

/** Largest single window (bytes): Node 20's buffer.constants.MAX_LENGTH. */
export const MAX_WINDOW_BYTES = 2n ** 32n;
/** Default window: 1 GiB keeps each external buffer well under the cap. */
export const DEFAULT_WINDOW_BYTES = 2n ** 30n;

export interface MappingWindow {
  /** Offset of the window from the start of the mapping (not of the file). */
  readonly start: bigint;
  readonly bytes: Uint8Array;
  /** Virtual address of the window, for diagnostics. */
  readonly address: bigint;
}

export class SharedMapping {
  #windows: MappingWindow[];
  readonly #windowBytes: bigint;

  private constructor(
    windows: MappingWindow[],
    windowBytes: bigint,
    readonly length: bigint,
    readonly writable: boolean,
  ) {
    this.#windows = windows;
    this.#windowBytes = windowBytes;
  }

  /**
   * Maps `length` bytes of `fd` from `offset` (page-aligned) in windows of `windowBytes`.
   * @throws RangeError for a zero length or a window size that is not a page multiple ≤ 4 GiB;
   *   SystemCallError from mmap (EINVAL misaligned offset, EACCES, ENODEV...).
   */
  static map(
    fd: number,
    offset: bigint,
    length: bigint,
    prot: 'r' | 'rw',
    windowBytes: bigint = DEFAULT_WINDOW_BYTES,
  ): SharedMapping {
    const page = BigInt(addon.pageSize());
    if (length <= 0n) throw new RangeError('mapping length must be positive');
    if (windowBytes <= 0n || windowBytes > MAX_WINDOW_BYTES || windowBytes % page !== 0n) {
      throw new RangeError(`window size ${windowBytes} must be a page multiple up to 4 GiB`);
    }
    const windows: MappingWindow[] = [];
    try {
      for (let start = 0n; start < length; start += windowBytes) {
        const size = length - start < windowBytes ? length - start : windowBytes;
        const m = addon.mmap(fd, offset + start, size, prot === 'rw');
        windows.push({ start, bytes: new Uint8Array(m.buffer), address: m.address });
      }
    } catch (e) {
      for (const w of windows) addon.munmap(w.bytes.buffer as ArrayBuffer);
      throw e;
    }
    return new SharedMapping(windows, windowBytes, length, prot === 'rw');
  }

  /** The windows, in order; empty after `unmap`. */
  get windows(): readonly MappingWindow[] {
    return this.#windows;
  }

  /**
   * Copies `length` bytes at `offset` out of the mapping.
   * @throws RangeError past the end or after unmap.
   */
  read(offset: bigint, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.#each(offset, length, (bytes, at, done) => {
      const n = Math.min(bytes.length - at, length - done);
      out.set(bytes.subarray(at, at + n), done);
    });
    return out;
  }

  /**
   * Copies `data` into the mapping at `offset`.
   * @throws RangeError past the end, after unmap, or on a read-only mapping.
   */
  write(offset: bigint, data: Uint8Array): void {
    if (!this.writable) throw new RangeError('mapping is read-only');
    this.#each(offset, data.length, (bytes, at, done) => {
      const n = Math.min(bytes.length - at, data.length - done);
      bytes.set(data.subarray(done, done + n), at);
    });
  }

  #each(
    offset: bigint,
    length: number,
    step: (bytes: Uint8Array, at: number, done: number) => void,
  ): void {
    if (this.#windows.length === 0) throw new RangeError('mapping was unmapped');
    if (offset < 0n || offset + BigInt(length) > this.length) {
      throw new RangeError(`range ${offset}+${length} is outside the mapping of ${this.length}`);
    }
    let done = 0;
    while (done < length) {
      const pos = offset + BigInt(done);
      const w = this.#windows[Number(pos / this.#windowBytes)]!;
      const at = Number(pos - w.start);
      step(w.bytes, at, done);
      done += Math.min(w.bytes.length - at, length - done);
    }
  }

  /** Unmaps every window; their buffers become detached (length 0). Idempotent. */
  unmap(): void {
    for (const w of this.#windows) addon.munmap(w.bytes.buffer as ArrayBuffer);
    this.#windows = [];
  }
}
