/**
 * Memory another process can map: a sparse memfd (memfd_create + ftruncate through the native
 * addon). Pages cost memory only once touched; pread/pwrite on the descriptor see the same pages
 * as every MAP_SHARED mapping of it, so region reads and writes and a VMM's mapping stay coherent.
 * Reads and writes never build a buffer over the caller's, so regions past 4 GiB are fine.
 * `view` lends the bytes themselves from a MAP_SHARED mapping of the memfd, mapped a 1 GiB
 * window at a time on first use, so a region read can be sent without being copied. It lends
 * only memory already populated: reading a hole through a shared mapping allocates the page
 * (shmem), where pread returns zeros and allocates nothing, and the GPU RAM region's fault
 * tracepoints and the server's RSS count exactly the pages that were written. A range that is
 * all hole is lent as zeros; a mix of both is not lent (read it).
 */
import { readSync, writeSync } from 'node:fs';
import { closeFd, dataRanges, memfdCreate, pageSize, SharedMapping } from '../native/index.ts';
import { VfioError } from './errors.ts';

export interface SharedMemory {
  /** For diagnostics (the memfd's name in /proc/<pid>/fd). */
  readonly name: string;
  /** A descriptor a peer can mmap (MAP_SHARED); owned by this object. */
  readonly fd: number;
  readonly size: bigint;
  /** pread: fills `buf` from `offset` (bytes past the end read as zero). */
  read(offset: bigint, buf: Uint8Array): void;
  /** All of `data` at `offset` (pwrite, or a copy into the mapping for large writes). */
  write(offset: bigint, data: Uint8Array): void;
  /**
   * [offset, offset + length) of the memory itself (or zeros for a range never written), valid
   * until the memory changes or closes, and never to be written through: a caller that keeps
   * it copies it. Null when no view can be lent (then `read`).
   */
  view(offset: bigint, length: number): Uint8Array | null;
  /**
   * [offset, offset + length) of the memory itself to be written in place (a receive buffer),
   * then committed with `write(offset, thatView)`, which copies nothing. Null when it cannot be
   * lent (then write from a buffer of your own).
   */
  writeTarget(offset: bigint, length: number): Uint8Array | null;
  /** Populated ranges [from, to) within [start, end) (lseek SEEK_DATA/SEEK_HOLE). */
  dataRanges(start: bigint, end: bigint): [bigint, bigint][];
  close(): void;
}

/**
 * Which ranges of a memfd are known to be populated, as sorted disjoint [from, to) pairs.
 * Nothing here punches holes, so a range found populated stays so; a peer punching one through
 * its own descriptor would only make a later view allocate that page again.
 */
class PopulatedRanges {
  readonly #ranges: [bigint, bigint][] = [];
  readonly #page: bigint;

  constructor(private readonly fd: number) {
    this.#page = BigInt(pageSize());
  }

  /** Whether [offset, end) is all populated, all a hole, or a mix (lseek only when not known). */
  classify(offset: bigint, end: bigint): 'populated' | 'hole' | 'mixed' {
    for (const [from, to] of this.#ranges) if (from <= offset && end <= to) return 'populated';
    const found = dataRanges(this.fd, offset, end);
    if (found.length === 0) return 'hole';
    const [from, to] = found[0]!;
    if (found.length > 1 || from > offset || to < end) return 'mixed';
    // Pages are populated whole: remember the pages the access lies in.
    this.#add(
      offset - (offset % this.#page),
      end + ((this.#page - (end % this.#page)) % this.#page),
    );
    return 'populated';
  }

  #add(from: bigint, to: bigint): void {
    let lo = from;
    let hi = to;
    const kept: [bigint, bigint][] = [];
    for (const r of this.#ranges) {
      if (r[1] < lo || r[0] > hi) kept.push(r);
      else {
        if (r[0] < lo) lo = r[0];
        if (r[1] > hi) hi = r[1];
      }
    }
    kept.push([lo, hi]);
    kept.sort((x, y) => (x[0] < y[0] ? -1 : 1));
    this.#ranges.splice(0, this.#ranges.length, ...kept);
  }
}

/**
 * Writes from this size on go through the mapping rather than pwrite. No larger than the
 * smallest write a caller receives in place (`writeTarget`; the vfio-user session does so from
 * 16 KiB): the mapping recognises such data as already there, where pwrite would copy it onto
 * itself.
 */
const MAPPED_WRITE_MIN_BYTES = 16 * 1024;

/** Creates a zero-filled SharedMemory of `size` bytes. */
export type SharedMemoryFactory = (name: string, size: bigint) => SharedMemory;

/** @throws VfioError ENOMEM when the memfd cannot be created or sized. */
export const createMemfdMemory: SharedMemoryFactory = (name, size) => {
  let fd: number;
  try {
    fd = memfdCreate(name, size);
  } catch (err) {
    throw new VfioError('ENOMEM', `cannot create shared memory ${name} of ${size} bytes: ${err}`);
  }
  let open = true;
  let mapping: SharedMapping | null = null;
  const populated = new PopulatedRanges(fd);
  let zeros = new Uint8Array(0);
  return {
    name,
    fd,
    size,
    read(offset, buf) {
      let done = 0;
      while (done < buf.length) {
        const n = readSync(fd, buf, done, buf.length - done, offset + BigInt(done));
        if (n === 0) break;
        done += n;
      }
      buf.fill(0, done);
    },
    write(offset, data) {
      if (data.length >= MAPPED_WRITE_MIN_BYTES && open) {
        // A copy into our mapping: about twice as fast as pwrite's page-by-page shmem copy
        // (~86 µs per MiB), and the pages are populated either way.
        mapping ??= SharedMapping.lazy(fd, 0n, size, 'rw');
        mapping.write(offset, data);
        return;
      }
      let done = 0;
      while (done < data.length) {
        done += writeSync(fd, data, done, data.length - done, Number(offset) + done);
      }
    },
    view(offset, length) {
      const end = offset + BigInt(length);
      if (!open || length === 0 || offset < 0n || end > size) return null;
      const state = populated.classify(offset, end);
      if (state === 'mixed') return null;
      if (state === 'hole') {
        // Never written: zeros, lent from a buffer of this memory's own that nobody writes.
        if (zeros.length < length) zeros = new Uint8Array(length);
        return zeros.subarray(0, length);
      }
      mapping ??= SharedMapping.lazy(fd, 0n, size, 'rw');
      return mapping.view(offset, length);
    },
    writeTarget(offset, length) {
      if (!open || length === 0 || offset < 0n || offset + BigInt(length) > size) return null;
      mapping ??= SharedMapping.lazy(fd, 0n, size, 'rw');
      return mapping.view(offset, length);
    },
    dataRanges: (start, end) => dataRanges(fd, start, end),
    close() {
      mapping?.unmap();
      mapping = null;
      if (open) closeFd(fd);
      open = false;
    },
  };
};
