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
 *
 * Shared safely (a client holding the fd can change nothing under our feet): the memfd is sealed
 * at its size (memfdCreate with MEMFD_SIZE_SEALS), so no ftruncate can make our next access a SIGBUS; and each
 * peer gets an open file description of its own (`reopenForPeer`, per session), never ours, whose
 * status flags it could change: O_APPEND would send our pwrites to the end of the file,
 * O_DIRECT would fail our unaligned reads. A description of its own also tells when the peer has
 * let go of it (`heldElsewhere` on `fd`: the server refuses the device's next client while a
 * previous one still holds it). The memfd is mode 0600, so a peer of another uid cannot open
 * descriptions of its own through /proc. With a MemoryBudget, writes that would populate pages
 * past it fail with ENOMEM before any byte is placed (memory-budget.ts). A view lent for a reply
 * is the live memory: a peer writing it meanwhile changes what is sent, as a store racing a DMA
 * would; nothing of ours is derived from bytes a peer can write.
 */
import {
  close,
  closeSync,
  fchmodSync,
  fstatSync,
  openSync,
  read,
  readSync,
  write,
  writeSync,
} from 'node:fs';
import { promisify } from 'node:util';
import {
  closeFd,
  copyRange,
  copyRangeLater,
  dataRanges,
  dupFd,
  isSystemCallError,
  memfdCreate,
  NativeConstant,
  pageSize,
  punchHole,
  replaceFd,
  SharedMapping,
} from '../native/index.ts';
import { VfioError } from './errors.ts';
import type { MemoryAccount, MemoryBudget } from './memory-budget.ts';

/**
 * Device memory in a sparse memfd: an fd a peer can map, byte reads and writes, its size in bytes
 * and populated pages, counted by the memory budget.
 */
export interface SharedMemory {
  /** For diagnostics (the memfd's name in /proc/<pid>/fd). */
  readonly name: string;
  /**
   * The memory's one open file description for writing that counts as ours: never sent itself,
   * peers get a description of their own made from it (`reopenForPeer`, per session), and
   * `heldElsewhere(fd)` (src/native) tells whether any other is still open, by a descriptor or
   * a mapping. Owned by this object.
   */
  readonly fd: number;
  /**
   * Our own descriptor of the memory, never handed out, for the native fast path's
   * pread/pwrite (a peer's F_SETFL on `fd` cannot reach it); absent when there is none.
   */
  readonly ownFd?: number;
  readonly size: bigint;
  /**
   * True when the memory came back with its contents (a state directory's file after a
   * restart): nothing of the device's own is to be written over them.
   */
  readonly restored?: boolean;
  /** pread: fills `buf` from `offset` (bytes past the end read as zero). */
  read(offset: bigint, buf: Uint8Array): void;
  /**
   * All of `data` at `offset` (pwrite, or a copy into the mapping for large writes): a client's
   * data, so charged to the budget.
   * @throws VfioError ENOMEM when the pages it would populate do not fit the budget.
   */
  write(offset: bigint, data: Uint8Array): void;
  /**
   * As `write`, always by pwrite: bulk data (a migration stream) over pages this process may
   * never have touched through its mapping, whose first store to each 4 KiB would fault
   * (~100 MB/s on this VM; pwrite copies at GB/s).
   * @throws VfioError ENOMEM when the pages it would populate do not fit the budget.
   */
  writeThrough(offset: bigint, data: Uint8Array): void;
  /**
   * As `write`, for the device model's own state (register values, presets): never refused,
   * though the pages it populates are counted.
   */
  writeOwn(offset: bigint, data: Uint8Array): void;
  /**
   * [offset, offset + length) of the memory itself (or zeros for a range never written), valid
   * until the memory changes or closes, and never to be written through: a caller that keeps
   * it copies it. Null when no view can be lent (then `read`).
   */
  view(offset: bigint, length: number): Uint8Array | null;
  /**
   * [offset, offset + length) of the memory itself to be written in place (a receive buffer),
   * then committed with `write(offset, thatView)`, which copies nothing. Null when it cannot be
   * lent (then write from a buffer of your own), also when the pages it would populate do not
   * fit the budget (the `write` then refuses it, before anything is placed).
   */
  writeTarget(offset: bigint, length: number): Uint8Array | null;
  /** Gives back what a write target never committed holds of the budget (its client left). */
  dropWriteTarget(): void;
  /** Populated ranges [from, to) within [start, end) (lseek SEEK_DATA/SEEK_HOLE). */
  dataRanges(start: bigint, end: bigint): [bigint, bigint][];
  /** Bytes populated now (by anyone: our writes and every peer's mapping). */
  touched(): bigint;
  /**
   * Punches every byte outside `kept` (sorted, disjoint [from, to) ranges; none: every page):
   * zeros there again, nothing populated (a migration destination once its stream loaded).
   */
  clear(kept?: readonly (readonly [bigint, bigint])[]): void;
  /**
   * Moves the memory to a fresh file holding the same bytes, under the same descriptor numbers
   * (`fd`, `ownFd`): pages someone pinned without an open file (io_uring registered buffers,
   * pages spliced into a pipe) stay with the old file and no longer reach the device. Copies the
   * populated ranges on the event loop (0.5 s per GiB of memfd, 4.3 s of state file: README).
   * Optional: memory that cannot move.
   * @throws VfioError ENOMEM when the copy cannot be made.
   */
  renew?(): void;
  /**
   * `renew`'s copy made off the event loop (libuv's threadpool, COPY_LATER_CHUNK at a time), for
   * memory nothing of this server writes meanwhile (the caller's rule). Resolves once the copy
   * is in; its `commit` then swaps the descriptors (synchronous), unless the memory was written
   * by this server (write, writeTarget, clear) or closed since the copy began: then it drops the
   * copy and returns false, and a synchronous `renew` is still due. Resolves to null when the
   * memory was closed during the copy (the copy dropped, nothing left behind).
   * @throws VfioError ENOMEM (rejects) when the copy cannot be made; nothing is left behind.
   */
  renewLater?(): Promise<PendingRenew | null>;
  close(): void;
}

/** Bytes past a range `classify` asks lseek about, to learn them at the same cost. */
const LEARN_BYTES = 1n << 30n;

/**
 * Which pages of a memfd are known to be populated, as sorted disjoint [from, to) pairs (page
 * multiples), found with lseek(SEEK_DATA) and kept so that a write to or a view of pages known
 * populated costs no system call. Only `clear` (a migration destination) punches holes, and it
 * forgets every range. A peer may punch one through its own descriptor: a later view of that page then
 * allocates it again (reading a hole through a shared mapping does), and a write there is not
 * charged to the budget; both only give back what that peer itself freed.
 */
export class PopulatedPages {
  readonly #ranges: [bigint, bigint][] = [];
  readonly #page: bigint;

  /** `size`: the memory's bytes (how far a look ahead may go). */
  constructor(
    private readonly fd: number,
    private readonly size: bigint,
  ) {
    this.#page = BigInt(pageSize());
  }

  /** [offset, end) widened to whole pages. */
  pages(offset: bigint, end: bigint): [bigint, bigint] {
    return [offset - (offset % this.#page), end + ((this.#page - (end % this.#page)) % this.#page)];
  }

  /** Index of the first range ending after `at`. */
  #search(at: bigint): number {
    let lo = 0;
    let hi = this.#ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#ranges[mid] as [bigint, bigint])[1] <= at) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Whether every page of [offset, end) is known populated (no system call). */
  known(offset: bigint, end: bigint): boolean {
    return this.#known(offset, end);
  }

  #known(offset: bigint, end: bigint): boolean {
    const r = this.#ranges[this.#search(offset)];
    return r !== undefined && r[0] <= offset && end <= r[1];
  }

  /**
   * Whether [offset, end) is all populated, all a hole, or a mix (lseek only when not known).
   * What lseek finds up to LEARN_BYTES on is kept: shmem's SEEK_HOLE walks every populated page
   * up to the hole whatever range we ask about, so asking 1 MiB at a time through a populated
   * GiB walked it a thousand times (a stop-copy spent most of its time there).
   */
  classify(offset: bigint, end: bigint): 'populated' | 'hole' | 'mixed' {
    if (this.#known(offset, end)) return 'populated';
    const inside = this.#learn(offset, end).filter(([a]) => a < end);
    if (inside.length === 0) return 'hole';
    const [from, to] = inside[0]!;
    if (inside.length > 1 || from > offset || to < end) return 'mixed';
    this.add(...this.pages(offset, end));
    return 'populated';
  }

  /**
   * The populated ranges from `offset` to LEARN_BYTES on (or `end`, if further), kept (see
   * `classify`).
   */
  #learn(offset: bigint, end: bigint): [bigint, bigint][] {
    const ahead = offset + LEARN_BYTES;
    const near = this.size < ahead ? this.size : ahead;
    const limit = end > near ? end : near;
    const found = dataRanges(this.fd, offset, limit);
    for (const [a, b] of found) {
      // Whole pages only: a range cut at `limit` may end inside a page.
      const to = b - (b % this.#page);
      if (to > a) this.add(a, to);
    }
    return found;
  }

  /**
   * Bytes of the pages of [offset, end) that are holes (lseek only when not known; what it
   * finds ahead is kept, as `classify` keeps it: a stream writing a populated GiB 1 MiB at a
   * time walked it a thousand times).
   */
  holes(offset: bigint, end: bigint): bigint {
    const [from, to] = this.pages(offset, end);
    if (from === to || this.#known(from, to)) return 0n;
    let data = 0n;
    for (const [a, b] of this.#learn(from, to)) {
      // Only what lies inside [from, to) (bigints: no Math.min).
      let inside = b - a;
      if (a < from) inside -= from - a;
      if (b > to) inside -= b - to;
      if (inside > 0n) data += inside;
    }
    return to - from - data;
  }

  /** Forgets every range (the memory was punched). */
  forget(): void {
    this.#ranges.length = 0;
  }

  /** Records [from, to) (whole pages) as populated, merging with the ranges it meets. */
  add(from: bigint, to: bigint): void {
    let i = this.#search(from);
    // The range before may end exactly at `from`: merge it too.
    if (i > 0 && (this.#ranges[i - 1] as [bigint, bigint])[1] === from) i--;
    let j = i;
    let lo = from;
    let hi = to;
    for (; j < this.#ranges.length; j++) {
      const r = this.#ranges[j] as [bigint, bigint];
      if (r[0] > hi) break;
      if (r[0] < lo) lo = r[0];
      if (r[1] > hi) hi = r[1];
    }
    this.#ranges.splice(i, j - i, [lo, hi]);
  }
}

/**
 * Writes from this size on go through the mapping rather than pwrite. No larger than the
 * smallest write a caller receives in place (`writeTarget`; the vfio-user session does so from
 * 16 KiB): the mapping recognises such data as already there, where pwrite would copy it onto
 * itself.
 */
const MAPPED_WRITE_MIN_BYTES = 16 * 1024;

/**
 * pread(2) of `buf.length` bytes of `fd` from `offset` until full or the end of the file, the
 * bytes past the end as zeros (a file a peer cut reads as zeros, never SIGBUS).
 * @throws SystemError as readSync (EBADF, EIO).
 */
export function preadFully(fd: number, offset: bigint, buf: Uint8Array): void {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, offset + BigInt(done));
    if (n === 0) break;
    done += n;
  }
  buf.fill(0, done);
}

/**
 * Punches every populated byte of `fd`'s [0, size) outside `kept` (sorted, disjoint [from, to)
 * ranges): only where data is, so a GiB already holes costs no call.
 * @throws SystemCallError from lseek or fallocate.
 */
export function punchOutside(
  fd: number,
  size: bigint,
  kept: readonly (readonly [bigint, bigint])[] = [],
): void {
  let k = 0;
  for (const [from, to] of dataRanges(fd, 0n, size)) {
    let at = from;
    while (k < kept.length && (kept[k] as readonly [bigint, bigint])[1] <= at) k++;
    for (let i = k; i < kept.length && at < to; i++) {
      const [a, b] = kept[i] as readonly [bigint, bigint];
      if (a >= to) break;
      if (a > at) punchHole(fd, at, a - at);
      if (b > at) at = b;
    }
    if (at < to) punchHole(fd, at, to - at);
  }
}

/** Bytes of one copy step of `copyPopulated` and `copyPopulatedLater` through pread/pwrite. */
const COPY_CHUNK = 1 << 20;
/** Bytes of one step of `copyPopulatedLater` (a threadpool round trip each: fewer, larger). */
const COPY_LATER_CHUNK = 4 << 20;
/**
 * Bytes of one copy_file_range step of `copyPopulatedLater`: ~20 ms of a threadpool thread on
 * ext4, between which the copy can be dropped.
 */
const KERNEL_COPY_LATER_CHUNK = 64n << 20n;

/**
 * Whether copy_file_range failed only for want of support between these files (EXDEV across file
 * systems on old kernels, EINVAL or EOPNOTSUPP where a file system lacks it, ENOSYS): the copy
 * goes through pread/pwrite instead.
 */
function kernelCopyUnsupported(err: unknown): boolean {
  return ['EXDEV', 'EINVAL', 'EOPNOTSUPP', 'ENOSYS'].some((code) => isSystemCallError(err, code));
}

/** A copy `SharedMemory.renewLater` made: swapped in by `commit`, or dropped by `abandon`. */
export interface PendingRenew {
  /**
   * Swaps the copy in under the memory's descriptors; false (the copy dropped) when the memory
   * was written or closed since the copy began.
   */
  commit(): boolean;
  /** Drops the copy (its file removed): the memory stays as it is. */
  abandon(): void;
}

/**
 * Closes `fd` on libuv's threadpool: the last close of a renewed memory's old file frees its
 * pages there (~0.1 s per GiB), not on the event loop. A failure only leaves a descriptor.
 */
export function closeLater(fd: number): void {
  close(fd, () => {});
}

const readLater = promisify(read);
const writeLater = promisify(write);

/**
 * `copyPopulated` on libuv's threadpool (copy_file_range, or pread/pwrite), a step at a time, so
 * that the event loop serves others meanwhile. Stops early, resolving false, once `going()` says
 * no (the memory closed); true when all was copied.
 * @throws SystemCallError (rejects) from lseek, copy_file_range, pread or pwrite while the memory
 *   is open.
 */
export async function copyPopulatedLater(
  from: number,
  to: number,
  size: bigint,
  going: () => boolean,
): Promise<boolean> {
  try {
    return await copyRanges(from, to, size, going);
  } catch (err) {
    // `from` closed under a read in flight (EBADF): only the copy, dropped, saw it.
    if (!going()) return false;
    throw err;
  }
}

async function copyRanges(
  from: number,
  to: number,
  size: bigint,
  going: () => boolean,
): Promise<boolean> {
  let kernel = true;
  const buf = new Uint8Array(COPY_LATER_CHUNK);
  for (const [start, end] of dataRanges(from, 0n, size)) {
    for (let at = start; at < end; ) {
      if (!going()) return false;
      if (kernel) {
        const n = end - at < KERNEL_COPY_LATER_CHUNK ? end - at : KERNEL_COPY_LATER_CHUNK;
        try {
          const copied = await copyRangeLater(from, to, at, n);
          // Short: `from` was cut by a peer; the rest of `to` stays a hole, zeros, as preadFully.
          at = copied < Number(n) ? end : at + n;
          continue;
        } catch (err) {
          if (!kernelCopyUnsupported(err)) throw err;
          kernel = false;
        }
      }
      const n = Number(end - at < BigInt(COPY_LATER_CHUNK) ? end - at : BigInt(COPY_LATER_CHUNK));
      let got = 0;
      while (got < n) {
        const { bytesRead } = await readLater(from, buf, got, n - got, Number(at) + got);
        if (bytesRead === 0) buf.fill(0, got, n); // cut short by a peer: zeros, as preadFully
        got = bytesRead === 0 ? n : got + bytesRead;
      }
      let done = 0;
      while (done < n) {
        const { bytesWritten } = await writeLater(to, buf, done, n - done, Number(at) + done);
        done += bytesWritten;
      }
      at += BigInt(n);
    }
  }
  return going();
}

/**
 * Copies the populated ranges of `from` (SEEK_DATA) into the same offsets of `to`, whose holes
 * stay holes: a renewed memory costs what the old one held. In the kernel (copy_file_range)
 * where the file systems can, through pread/pwrite otherwise.
 * @throws SystemCallError from lseek, copy_file_range, pread or pwrite.
 */
export function copyPopulated(from: number, to: number, size: bigint): void {
  let kernel = true;
  let buf: Uint8Array | undefined;
  for (const [start, end] of dataRanges(from, 0n, size)) {
    if (kernel) {
      try {
        copyRange(from, to, start, end - start); // short: `from` was cut; the rest stays zeros
        continue;
      } catch (err) {
        if (!kernelCopyUnsupported(err)) throw err;
        kernel = false;
      }
    }
    buf ??= new Uint8Array(COPY_CHUNK);
    for (let at = start; at < end; ) {
      const n = Number(end - at < BigInt(COPY_CHUNK) ? end - at : BigInt(COPY_CHUNK));
      const piece = buf.subarray(0, n);
      preadFully(from, at, piece);
      let done = 0;
      while (done < n) done += writeSync(to, piece, done, n - done, Number(at) + done);
      at += BigInt(n);
    }
  }
}

/** Creates a zero-filled SharedMemory of `size` bytes. */
export type SharedMemoryFactory = ((name: string, size: bigint) => SharedMemory) & {
  /**
   * Whether memory `name` exists already, from before this process (a state directory's file,
   * which a client of the last server may still map): asked before making it only to look.
   */
  readonly kept?: (name: string) => boolean;
};

/**
 * A new open file description, read-write, of the file `fd` is open on (the same memory, seals
 * included): a peer's own, so that nothing it does to it (fcntl F_SETFL) reaches ours, and so
 * that when it lets go of it is seen (SharedMemory.fd). The caller owns the descriptor.
 * `what` names the memory in the error.
 * @throws VfioError ENOMEM when /proc/self/fd cannot reopen it (out of descriptors).
 */
export function reopenForPeer(fd: number, what: string): number {
  try {
    return openSync(`/proc/self/fd/${fd}`, 'r+');
  } catch (err) {
    throw new VfioError('ENOMEM', `cannot reopen shared memory ${what} for a peer: ${err}`);
  }
}

/**
 * A sealed sparse memfd of `size` bytes; with `budget`, its populated pages count towards it and
 * writes past it are refused.
 * @throws VfioError ENOMEM when the memfd cannot be created, sized or reopened.
 */
export function createMemfdMemory(name: string, size: bigint, budget?: MemoryBudget): SharedMemory {
  let fd: number;
  try {
    fd = memfdCreate(name, size, { seals: NativeConstant.MEMFD_SIZE_SEALS });
  } catch (err) {
    throw new VfioError('ENOMEM', `cannot create shared memory ${name} of ${size} bytes: ${err}`);
  }
  let peerFd: number;
  try {
    fchmodSync(fd, 0o600); // memfd_create makes it 0777: no other uid reopens it (see above)
    // memfd_create's own description is not counted as a writer (alloc_file_pseudo): this one is.
    peerFd = reopenForPeer(fd, name);
  } catch (err) {
    closeFd(fd);
    throw err;
  }
  let open = true;
  let mapping: SharedMapping | null = null;
  const populated = new PopulatedPages(fd, size);
  const account: MemoryAccount | undefined = budget?.open(name, fd);
  let zeros = new Uint8Array(0);
  /** Counts this server's writes, so that renewLater's commit sees one made during its copy. */
  let writes = 0;

  const place = (offset: bigint, data: Uint8Array, mapped = true): void => {
    const end = offset + BigInt(data.length);
    const inPlace = mapping !== null && mapping.view(offset, data.length)?.buffer === data.buffer;
    if (
      mapped &&
      data.length >= MAPPED_WRITE_MIN_BYTES &&
      open &&
      (inPlace || populated.known(offset, end))
    ) {
      // A copy into our mapping: about twice as fast as pwrite's page-by-page shmem copy
      // (~86 µs per MiB) over pages already there. Not over holes: a store's first touch of a
      // page faults (allocate, zero, map: ~76 MB/s on this VM) where pwrite fills at GB/s.
      mapping ??= SharedMapping.lazy(fd, 0n, size, 'rw');
      mapping.write(offset, data);
      return;
    }
    let done = 0;
    while (done < data.length) {
      done += writeSync(fd, data, done, data.length - done, Number(offset) + done);
    }
    if (data.length >= MAPPED_WRITE_MIN_BYTES) populated.add(...populated.pages(offset, end));
  };

  /** A write, charged (a client's data) or not (our own); counts what it populated. */
  const write = (offset: bigint, data: Uint8Array, charged: boolean, mapped = true): void => {
    writes++;
    if (account === undefined) {
      place(offset, data, mapped);
      return;
    }
    const end = offset + BigInt(data.length);
    const reserved = account.release(); // a write received in place ends its reservation
    const need = populated.holes(offset, end);
    if (charged) account.charge(offset, data.length, need);
    place(offset, data, mapped);
    if (need === 0n && reserved === 0n) return;
    populated.add(...populated.pages(offset, end));
    account.refresh();
  };

  return {
    name,
    fd: peerFd,
    ownFd: fd,
    size,
    read: (offset, buf) => preadFully(fd, offset, buf),
    write: (offset, data) => write(offset, data, true),
    writeThrough: (offset, data) => write(offset, data, true, false),
    writeOwn: (offset, data) => write(offset, data, false),
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
      const end = offset + BigInt(length);
      if (!open || length === 0 || offset < 0n || end > size) return null;
      if (account !== undefined && !account.reserve(populated.holes(offset, end))) return null;
      writes++;
      mapping ??= SharedMapping.lazy(fd, 0n, size, 'rw');
      return mapping.view(offset, length);
    },
    dropWriteTarget() {
      // Bytes that did arrive are counted from the memfd itself at the next refresh.
      account?.release();
    },
    dataRanges: (start, end) => dataRanges(fd, start, end),
    renew() {
      if (!open) return;
      let fresh: number;
      try {
        fresh = memfdCreate(name, size, { seals: NativeConstant.MEMFD_SIZE_SEALS });
      } catch (err) {
        throw new VfioError('ENOMEM', `cannot renew shared memory ${name}: ${err}`);
      }
      let freshPeer: number;
      try {
        fchmodSync(fresh, 0o600);
        copyPopulated(fd, fresh, size);
        freshPeer = reopenForPeer(fresh, name);
      } catch (err) {
        closeFd(fresh);
        throw err instanceof VfioError
          ? err
          : new VfioError('ENOMEM', `cannot renew ${name}: ${err}`);
      }
      mapping?.unmap(); // of the old file: the next use maps the new one
      mapping = null;
      replaceFd(fd, fresh);
      replaceFd(peerFd, freshPeer);
    },
    async renewLater() {
      if (!open) return null;
      let fresh: number;
      try {
        fresh = memfdCreate(name, size, { seals: NativeConstant.MEMFD_SIZE_SEALS });
        fchmodSync(fresh, 0o600);
      } catch (err) {
        throw new VfioError('ENOMEM', `cannot renew shared memory ${name}: ${err}`);
      }
      const began = writes;
      let copied: boolean;
      try {
        copied = await copyPopulatedLater(fd, fresh, size, () => open);
      } catch (err) {
        closeFd(fresh);
        throw new VfioError('ENOMEM', `cannot renew ${name}: ${err}`);
      }
      if (!copied) {
        closeFd(fresh);
        return null;
      }
      let done = false;
      return {
        commit() {
          if (done) return false;
          done = true;
          if (!open || writes !== began) {
            closeFd(fresh);
            return false;
          }
          let freshPeer: number;
          try {
            freshPeer = reopenForPeer(fresh, name);
          } catch (err) {
            closeFd(fresh);
            throw err;
          }
          mapping?.unmap(); // of the old file: the next use maps the new one
          mapping = null;
          const old = dupFd(fd);
          replaceFd(fd, fresh);
          replaceFd(peerFd, freshPeer);
          closeLater(old);
          return true;
        },
        abandon() {
          if (!done) closeFd(fresh);
          done = true;
        },
      };
    },
    clear(kept) {
      if (!open) return;
      writes++;
      punchOutside(fd, size, kept);
      populated.forget();
      account?.refresh();
    },
    touched: () => (account !== undefined && open ? account.refresh() : populatedBytes(fd, open)),
    close() {
      mapping?.unmap();
      mapping = null;
      account?.close();
      if (open) {
        closeFd(fd);
        closeSync(peerFd);
      }
      open = false;
    },
  };
}

function populatedBytes(fd: number, open: boolean): bigint {
  return open ? fstatSync(fd, { bigint: true }).blocks * 512n : 0n;
}

/** A factory of memories counted against `budget` (see createMemfdMemory). */
export function budgetedMemfdMemory(budget: MemoryBudget): SharedMemoryFactory {
  return (name, size) => createMemfdMemory(name, size, budget);
}
