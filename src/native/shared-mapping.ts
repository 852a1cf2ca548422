/**
 * A MAP_SHARED mapping of a file range larger than one Node buffer can hold: Node 20 caps an
 * ArrayBuffer at 4 GiB (buffer.constants.MAX_LENGTH), so the range is mapped as consecutive
 * windows, each its own mmap(2). Reads and writes that cross a window edge are split.
 * `map` maps every window at once (a client mapping a region wants addresses now); `lazy` maps a
 * window on its first access, so a server keeping a view of a 128 GiB aperture for its region
 * reads pays, in address space and in what V8 counts, only for the windows it touched.
 */
import { addon } from './addon.ts';

/** Default window: 1 GiB keeps each external buffer well under the cap. */
export const DEFAULT_WINDOW_BYTES = 2n ** 30n;

/**
 * One mmap(2) window of a `SharedMapping`: where it starts in the mapping (bytes), its bytes and
 * its address.
 */
export interface MappingWindow {
  /** Offset of the window from the start of the mapping (not of the file). */
  readonly start: bigint;
  readonly bytes: Uint8Array;
  /** Virtual address of the window, for diagnostics. */
  readonly address: bigint;
}

/**
 * A MAP_SHARED mapping of a file range of any size, as windows of at most MAX_WINDOW_BYTES (see the
 * module header); reads and writes take byte offsets (bigint) into the range.
 */
export class SharedMapping {
  /** By index (start / windowBytes); undefined until mapped. */
  #windows: (MappingWindow | undefined)[];
  #unmapped = false;
  readonly #windowBytes: bigint;
  readonly #windowNumber: number;
  readonly #lengthNumber: number;

  private constructor(
    private readonly fd: number,
    private readonly offset: bigint,
    windowBytes: bigint,
    readonly length: bigint,
    readonly writable: boolean,
  ) {
    this.#windowBytes = windowBytes;
    this.#windowNumber = Number(windowBytes);
    this.#lengthNumber = Number(length);
    this.#windows = new Array(Number((length + windowBytes - 1n) / windowBytes));
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
    const m = SharedMapping.lazy(fd, offset, length, prot, windowBytes);
    try {
      for (let i = 0; i < m.#windows.length; i++) m.#window(i);
    } catch (e) {
      m.unmap();
      throw e;
    }
    return m;
  }

  /**
   * As `map`, but each window is mapped on its first access; `fd` must stay open until then.
   * @throws RangeError as `map` (mmap errors come from the access that maps the window).
   */
  static lazy(
    fd: number,
    offset: bigint,
    length: bigint,
    prot: 'r' | 'rw',
    windowBytes: bigint = DEFAULT_WINDOW_BYTES,
  ): SharedMapping {
    const page = BigInt(addon().pageSize());
    if (length <= 0n) throw new RangeError('mapping length must be positive');
    if (
      windowBytes <= 0n ||
      windowBytes > BigInt(addon().constants.MAX_WINDOW) ||
      windowBytes % page !== 0n
    ) {
      throw new RangeError(`window size ${windowBytes} must be a page multiple up to 4 GiB`);
    }
    return new SharedMapping(fd, offset, windowBytes, length, prot === 'rw');
  }

  /** The windows mapped so far, in order; empty after `unmap`. */
  get windows(): readonly MappingWindow[] {
    return this.#windows.filter((w) => w !== undefined);
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
   * Copies `data` into the mapping at `offset` (nothing when `data` is that very range).
   * @throws RangeError past the end, after unmap, or on a read-only mapping.
   */
  write(offset: bigint, data: Uint8Array): void {
    if (!this.writable) throw new RangeError('mapping is read-only');
    this.#each(offset, data.length, (bytes, at, done) => {
      // Data received in place (a view from `view`) is already there: nothing to copy.
      if (data.buffer === bytes.buffer && data.byteOffset + done === at) return;
      const n = Math.min(bytes.length - at, data.length - done);
      bytes.set(data.subarray(done, done + n), at);
    });
  }

  /**
   * The mapped bytes [offset, offset + length) themselves (no copy), or null when the range
   * crosses a window edge (copy with `read` then).
   * @throws RangeError past the end or after unmap; SystemCallError from mapping the window.
   */
  view(offset: bigint, length: number): Uint8Array | null {
    this.#check(offset, length);
    // Number arithmetic (exact below 2^53; mappings are far smaller): a region read per MMIO
    // access should not allocate BigInts.
    const off = Number(offset);
    const w = this.#window(Math.floor(off / this.#windowNumber));
    const at = off - Number(w.start);
    if (at + length > w.bytes.length) return null;
    return w.bytes.subarray(at, at + length);
  }

  #check(offset: bigint, length: number): void {
    if (this.#unmapped) throw new RangeError('mapping was unmapped');
    // Numbers: exact below 2^53, and no BigInt allocated per access.
    if (offset < 0n || Number(offset) + length > this.#lengthNumber) {
      throw new RangeError(`range ${offset}+${length} is outside the mapping of ${this.length}`);
    }
  }

  #window(i: number): MappingWindow {
    const mapped = this.#windows[i];
    if (mapped !== undefined) return mapped;
    const start = BigInt(i) * this.#windowBytes;
    const size = this.length - start < this.#windowBytes ? this.length - start : this.#windowBytes;
    const m = addon().mmap(this.fd, this.offset + start, size, this.writable);
    const w = { start, bytes: new Uint8Array(m.buffer), address: m.address };
    this.#windows[i] = w;
    return w;
  }

  #each(
    offset: bigint,
    length: number,
    step: (bytes: Uint8Array, at: number, done: number) => void,
  ): void {
    this.#check(offset, length);
    let done = 0;
    while (done < length) {
      const pos = offset + BigInt(done);
      const w = this.#window(Number(pos / this.#windowBytes));
      const at = Number(pos - w.start);
      step(w.bytes, at, done);
      done += Math.min(w.bytes.length - at, length - done);
    }
  }

  /** Unmaps every window; their buffers become detached (length 0). Idempotent. */
  unmap(): void {
    for (const w of this.#windows)
      if (w !== undefined) addon().munmap(w.bytes.buffer as ArrayBuffer);
    this.#windows = [];
    this.#unmapped = true;
  }
}
