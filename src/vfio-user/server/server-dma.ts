/**
 * The DMA regions a client has mapped into the server (vfio-user.rst "VFIO_USER_DMA_MAP",
 * "VFIO_USER_DMA_UNMAP"), the spec first, then libvfio-user (lib/dma.c
 * dma_controller_add_region / dma_controller_remove_region, lib/libvfio-user.c handle_dma_map /
 * handle_dma_unmap):
 * - "A command to map over an existing region must be failed by the server with EEXIST" — any
 *   overlap, an identical range included, as the kernel's type1 IOMMU answers. (libvfio-user
 *   says EINVAL, and accepts an identical re-map.)
 * - an unmap must name exactly one mapped range ("must match exactly a previous mapping");
 *   anything else is ENOENT, libvfio-user's errno;
 * - unmap-all (flag ALL) takes address 0 and size 0;
 * - more than `max_dma_maps` regions is EINVAL (libvfio-user's "hit max regions"; the kernel
 *   says ENOSPC); dma-limits.ts derives the number from the fds the process may hold;
 * - a region without an fd is accepted and recorded (QEMU maps guest RAM at start-up, shared or
 *   not, and needs success); the device cannot reach it (the server sends no DMA_READ/WRITE).
 *
 * The ranges live in an IntervalTable (binary search). Nothing is mapped at DMA_MAP time: a
 * region given with an fd is read and written on access only, one of two ways, so that a client
 * shrinking its file under the server (ftruncate) can never raise SIGBUS in it:
 * - a file sealed against shrinking (memfd F_SEAL_SHRINK; QEMU's memory-backend-memfd seals
 *   GROW|SHRINK|SEAL unless seal=off, backends/hostmem-memfd.c) is accessed through MAP_SHARED windows of `DMA_WINDOW_BYTES`, mapped on first
 *   touch, at most `maxWindows` live per table (least recently used unmapped first), and only
 *   below the file's size (fstat when an access goes past the size last seen; it only grows);
 * - any other file with pread/pwrite on the fd (libvfio-user's REGION_ACCESS_MODE_FILE_IO),
 *   which return short instead of faulting: a range past the file's end is EFAULT, and a write
 *   never extends the file.
 * A file sealed against growing (F_SEAL_GROW) must hold the whole range at DMA_MAP, else EINVAL:
 * its size can never reach it, so every access would fault. An unsealed file may be shorter
 * (it may grow); an access past its end says whether it shrank since the map.
 * The file must be memory (memfd, tmpfs, hugetlbfs; QEMU's shared memory backends): every
 * access runs on the one thread serving all devices, and a read of a file elsewhere can wait
 * without end on whoever serves that file system (a FUSE daemon the client runs, an NFS
 * server), as can its fstat. Any other fd is EINVAL, decided without touching its file system.
 * The table owns every fd it holds and closes it on unmap.
 */
import { fstatSync, readSync, writeSync } from 'node:fs';
import { messageOf } from '../../errors/index.ts';
import {
  closeFd,
  FileSeal,
  fileSeals,
  isMemoryFile,
  isSystemCallError,
  mmap,
  munmap,
} from '../../native/index.ts';
import { hex } from '../../text/index.ts';
import { Errno, type ErrnoName, VfioError } from '../../vfio/index.ts';
import type { DmaMapPayload, DmaUnmapPayload } from '../wire/index.ts';
import { DmaMapFlag, DmaUnmapFlag } from '../wire/index.ts';
import { type DmaFdLedger, processDmaFds, processDmaLimits } from './dma-limits.ts';
import { IntervalTable } from './interval-table.ts';

const U64_LIMIT = 1n << 64n;
/** Past this a file offset is negative as off_t. */
const FILE_OFFSET_LIMIT = 1n << 63n;
const PAGE = 4096n;
/** One window of a sealed client file: 64 MiB, aligned to its own size in the file. */
export const DMA_WINDOW_BYTES = 64n << 20n;

/**
 * One DMA_MAP region: guest address, size (bytes), flags (READ/WRITE), file offset and the client's
 * fd, if any.
 */
export interface DmaRegion {
  readonly address: bigint;
  readonly size: bigint;
  readonly flags: number;
  readonly offset: bigint;
  readonly fd: number | undefined;
  /** How the server reaches the memory: not at all, windows of a sealed file, or pread/pwrite. */
  readonly access: 'none' | 'mapped' | 'file';
}

/** A mapped window: file range [start, start + bytes.length). */
interface Window {
  readonly region: Region;
  readonly index: bigint;
  readonly start: bigint;
  readonly buffer: ArrayBuffer;
  readonly bytes: Uint8Array;
}

/** A region and how it is reached; a class so that a table of 65,535 stays cheap to build. */
class Region implements DmaRegion {
  /** File size known to hold (sealed files only grow). */
  knownSize = 0n;
  /** The file's size when it was mapped: an error says the file shrank only when it did. */
  sizeAtMap = 0n;
  /** Live windows by index, made on first use. */
  windows: Map<bigint, Window> | undefined;

  constructor(
    readonly address: bigint,
    readonly size: bigint,
    readonly flags: number,
    readonly offset: bigint,
    readonly fd: number | undefined,
    readonly access: 'none' | 'mapped' | 'file',
  ) {}
}

/** Limits of a `DmaTable`: regions, live windows, and the fd counter shared by all tables. */
export interface DmaTableOptions {
  /** `max_dma_maps`: regions at most (default: the process's per-session limit). */
  readonly maxRegions?: number;
  /** Live windows at most (default: the process's per-session limit). */
  readonly maxWindows?: number;
  /** Counts fd-backed regions of all tables (default: the process's). */
  readonly fds?: DmaFdLedger;
}

function rangeText(address: bigint, size: bigint): string {
  return `${hex(address)}-${hex(address + size)}`;
}

function systemError(err: unknown, what: string, fallback: ErrnoName): VfioError {
  if (err instanceof VfioError) return err;
  if (isSystemCallError(err) || (err instanceof Error && 'code' in err)) {
    const code = String((err as { code: unknown }).code);
    return new VfioError(code in Errno ? (code as ErrnoName) : fallback, `${what} (${code})`);
  }
  return new VfioError(fallback, `${what}: ${messageOf(err)}`);
}

/** `; it shrank from N bytes` when the file is smaller than when it was mapped, else nothing. */
function shrankText(region: Region, size: bigint): string {
  return size < region.sizeAtMap ? `; it shrank from ${hex(region.sizeAtMap)} bytes` : '';
}

/**
 * The DMA regions one client mapped (DMA_MAP/DMA_UNMAP) and the device's reads and writes through
 * them, over windows of the client's sealed files; bounded by `DmaTableOptions`.
 */
export class DmaTable {
  readonly #table = new IntervalTable<Region>();
  /** Live windows, least recently used first (Map keeps insertion order). */
  readonly #lru = new Map<Window, true>();
  readonly #maxRegions: number;
  readonly #maxWindows: number;
  readonly #fds: DmaFdLedger;

  /** @param options a number is `maxRegions` (the other limits are the process's). */
  constructor(options: DmaTableOptions | number = {}) {
    const o = typeof options === 'number' ? { maxRegions: options } : options;
    this.#maxRegions = o.maxRegions ?? processDmaLimits().mapsPerSession;
    this.#maxWindows = Math.max(1, o.maxWindows ?? processDmaLimits().windowsPerSession);
    this.#fds = o.fds ?? processDmaFds;
  }

  /** The regions in address order. */
  get regions(): readonly DmaRegion[] {
    return this.#table.values();
  }

  /** How many windows of client files are mapped now. */
  get liveWindows(): number {
    return this.#lru.size;
  }

  /**
   * DMA_MAP. Takes ownership of `fd` (closed on every failure). Maps nothing.
   * @throws VfioError EINVAL (argsz, flags, size, too many, an fd that is not a regular file of
   *   memory),
   *   EEXIST (overlap).
   */
  map(m: DmaMapPayload, fd: number | undefined): void {
    let counted = false;
    try {
      this.#validateMap(m, fd);
      const clash = this.#table.overlapping(m.address, m.size);
      if (clash) {
        throw new VfioError(
          'EEXIST',
          `DMA_MAP ${rangeText(m.address, m.size)} overlaps the mapped region ${rangeText(clash.address, clash.size)}`,
        );
      }
      if (this.#table.size >= this.#maxRegions) {
        throw new VfioError(
          'EINVAL',
          `DMA_MAP: already ${this.#table.size} regions (max_dma_maps ${this.#maxRegions})`,
        );
      }
      if (fd !== undefined) {
        if (!this.#fds.take()) {
          throw new VfioError(
            'EINVAL',
            `DMA_MAP ${rangeText(m.address, m.size)}: the process holds ${this.#fds.held} DMA fds, its limit`,
          );
        }
        counted = true;
      }
      this.#table.insert(this.#create(m, fd));
    } catch (e) {
      if (counted) this.#fds.give();
      if (fd !== undefined) closeFd(fd);
      throw e;
    }
  }

  #validateMap(m: DmaMapPayload, fd: number | undefined): void {
    if (m.argsz < 32) throw new VfioError('EINVAL', `DMA_MAP argsz ${m.argsz} is under 32`);
    if ((m.flags & ~(DmaMapFlag.READ | DmaMapFlag.WRITE)) !== 0) {
      throw new VfioError(
        'EINVAL',
        `DMA_MAP flags ${hex(m.flags)}: only READ 0x1 and WRITE 0x2 exist`,
      );
    }
    if (m.size === 0n) throw new VfioError('EINVAL', `DMA_MAP of size 0 at ${hex(m.address)}`);
    if (m.address + m.size > U64_LIMIT) {
      throw new VfioError('EINVAL', `DMA_MAP ${hex(m.address)}+${hex(m.size)} wraps past 2^64`);
    }
    if (fd === undefined) return;
    if (m.offset + m.size > FILE_OFFSET_LIMIT) {
      throw new VfioError(
        'EINVAL',
        `DMA_MAP ${rangeText(m.address, m.size)}: file offset ${hex(m.offset)}+${hex(m.size)} is past 2^63`,
      );
    }
    let memory: boolean;
    try {
      memory = isMemoryFile(fd);
    } catch (err) {
      throw systemError(
        err,
        `DMA_MAP ${rangeText(m.address, m.size)}: F_GET_SEALS on its fd`,
        'EINVAL',
      );
    }
    if (!memory) {
      throw new VfioError(
        'EINVAL',
        `DMA_MAP ${rangeText(m.address, m.size)}: its fd is not memory (memfd, tmpfs, hugetlbfs): reading another file system's file could stall every device`,
      );
    }
    let st: { isFile(): boolean; size: bigint };
    try {
      st = fstatSync(fd, { bigint: true });
    } catch (err) {
      throw systemError(err, `DMA_MAP ${rangeText(m.address, m.size)}: fstat of its fd`, 'EINVAL');
    }
    if (!st.isFile()) {
      throw new VfioError(
        'EINVAL',
        `DMA_MAP ${rangeText(m.address, m.size)}: its fd is not a regular file (memfd, tmpfs, hugetlbfs)`,
      );
    }
    // A file sealed against growing never holds more than now: a range past its end could
    // only ever fault, so it is refused here rather than at every later access.
    if ((fileSeals(fd) & FileSeal.GROW) !== 0 && m.offset + m.size > st.size) {
      throw new VfioError(
        'EINVAL',
        `DMA_MAP ${rangeText(m.address, m.size)}: file offset ${hex(m.offset)}+${hex(m.size)} is past the end of the client's file (${hex(st.size)} bytes, sealed against growing)`,
      );
    }
  }

  #create(m: DmaMapPayload, fd: number | undefined): Region {
    if (fd === undefined) return new Region(m.address, m.size, m.flags, m.offset, fd, 'none');
    const access = (fileSeals(fd) & FileSeal.SHRINK) !== 0 ? 'mapped' : 'file';
    const r = new Region(m.address, m.size, m.flags, m.offset, fd, access);
    r.sizeAtMap = fstatSync(fd, { bigint: true }).size;
    return r;
  }

  /**
   * DMA_UNMAP: exactly one mapped range, or all with the ALL flag.
   * @returns the regions removed
   * @throws VfioError EINVAL (argsz, flags, ALL with a range), ENOENT (no such mapping)
   */
  unmap(u: DmaUnmapPayload): number {
    if (u.argsz < 24) throw new VfioError('EINVAL', `DMA_UNMAP argsz ${u.argsz} is under 24`);
    if ((u.flags & ~DmaUnmapFlag.ALL) !== 0) {
      throw new VfioError('EINVAL', `DMA_UNMAP flags ${hex(u.flags)}: only ALL 0x2 is supported`);
    }
    if (u.flags & DmaUnmapFlag.ALL) {
      if (u.address !== 0n || u.size !== 0n) {
        throw new VfioError(
          'EINVAL',
          `DMA_UNMAP ALL needs address 0 and size 0, got ${rangeText(u.address, u.size)}`,
        );
      }
      return this.clear();
    }
    const region = this.#table.exact(u.address, u.size);
    if (!region)
      throw new VfioError(
        'ENOENT',
        `DMA_UNMAP ${rangeText(u.address, u.size)}: no such mapped region`,
      );
    this.#table.remove(region);
    this.#release(region);
    return 1;
  }

  /** Unmaps everything, closing every fd; returns how many regions there were. */
  clear(): number {
    const all = this.#table.clear();
    for (const r of all) this.#release(r);
    return all.length;
  }

  #release(r: Region): void {
    if (r.windows) for (const w of [...r.windows.values()]) this.#unmapWindow(w);
    if (r.fd !== undefined) {
      closeFd(r.fd);
      this.#fds.give();
    }
  }

  /**
   * Copies `length` bytes of guest memory at DMA address `address` (what a DMA_READ to the
   * client would fetch), from a region mapped with an fd.
   * @throws VfioError EFAULT (not inside one fd-backed region, or past the end of the client's
   *   file), EPERM (the region is not readable), or the errno of mmap/pread.
   */
  read(address: bigint, length: number): Uint8Array {
    const { region, at } = this.#locate(address, length, DmaMapFlag.READ);
    const out = new Uint8Array(length);
    if (region.access === 'mapped') this.#viaWindows(region, at, out, false);
    else this.#pread(region, at, out);
    return out;
  }

  /**
   * Writes guest memory (what a DMA_WRITE would).
   * @throws VfioError EFAULT, EPERM (read-only), or the errno of mmap/pwrite.
   */
  write(address: bigint, data: Uint8Array): void {
    const { region, at } = this.#locate(address, data.length, DmaMapFlag.WRITE);
    if (region.access === 'mapped') this.#viaWindows(region, at, data, true);
    else this.#pwrite(region, at, data);
  }

  /** The region holding all of [address, address + length) and the file offset of `address`. */
  #locate(address: bigint, length: number, need: number): { region: Region; at: bigint } {
    const region = this.#table.containing(address);
    const what = `DMA ${hex(address)}+${length}`;
    if (!region || address + BigInt(length) > region.address + region.size) {
      throw new VfioError('EFAULT', `${what} is not inside one mapped region`);
    }
    if (region.access === 'none') {
      throw new VfioError(
        'EFAULT',
        `${what}: region ${rangeText(region.address, region.size)} was mapped without an fd`,
      );
    }
    if ((region.flags & need) === 0) {
      throw new VfioError(
        'EPERM',
        `${what}: region ${rangeText(region.address, region.size)} is ${need === DmaMapFlag.WRITE ? 'read-only' : 'not readable'}`,
      );
    }
    return { region, at: region.offset + (address - region.address) };
  }

  /** Fails with EFAULT unless the client's file holds [at, at + length) now. */
  #checkSize(region: Region, at: bigint, length: number, what: string): void {
    const end = at + BigInt(length);
    if (end <= region.knownSize) return;
    let size: bigint;
    try {
      size = fstatSync(region.fd as number, { bigint: true }).size;
    } catch (err) {
      throw systemError(err, `${what}: fstat of the client's file`, 'EFAULT');
    }
    // Only a sealed file's size is known to stay; an unsealed one is checked every time.
    if (region.access === 'mapped') region.knownSize = size;
    if (end > size) {
      throw new VfioError(
        'EFAULT',
        `${what}: file offset ${hex(at)}+${length} is past the end of the client's file (${hex(size)} bytes${shrankText(region, size)})`,
      );
    }
  }

  #pread(region: Region, at: bigint, out: Uint8Array): void {
    const what = `DMA read of ${rangeText(region.address, region.size)} at file offset ${hex(at)}`;
    let done = 0;
    try {
      while (done < out.length) {
        const n = readSync(region.fd as number, out, done, out.length - done, at + BigInt(done));
        if (n === 0) break;
        done += n;
      }
    } catch (err) {
      throw systemError(err, what, 'EFAULT');
    }
    if (done < out.length) {
      throw new VfioError(
        'EFAULT',
        `${what}: the client's file ends ${done} bytes in (${out.length} asked${shrankText(region, at + BigInt(done))})`,
      );
    }
  }

  #pwrite(region: Region, at: bigint, data: Uint8Array): void {
    const what = `DMA write of ${rangeText(region.address, region.size)} at file offset ${hex(at)}`;
    // pwrite past the end would grow the client's file instead of failing.
    this.#checkSize(region, at, data.length, what);
    if (at + BigInt(data.length) > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new VfioError('EFAULT', `${what}: offsets past 2^53 cannot be written`);
    }
    let done = 0;
    try {
      while (done < data.length) {
        done += writeSync(region.fd as number, data, done, data.length - done, Number(at) + done);
      }
    } catch (err) {
      throw systemError(err, what, 'EFAULT');
    }
  }

  /** Copies between `buf` and the file range [at, at + buf.length) through windows. */
  #viaWindows(region: Region, at: bigint, buf: Uint8Array, write: boolean): void {
    const what = `DMA ${write ? 'write' : 'read'} of ${rangeText(region.address, region.size)} at file offset ${hex(at)}`;
    this.#checkSize(region, at, buf.length, what);
    let done = 0;
    while (done < buf.length) {
      const pos = at + BigInt(done);
      const w = this.#window(region, pos / DMA_WINDOW_BYTES, what);
      const from = Number(pos - w.start);
      const n = Math.min(w.bytes.length - from, buf.length - done);
      if (write) w.bytes.set(buf.subarray(done, done + n), from);
      else buf.set(w.bytes.subarray(from, from + n), done);
      done += n;
    }
  }

  /** Window `index` of the region's file range, mapped now if it is not (evicting the LRU). */
  #window(region: Region, index: bigint, what: string): Window {
    region.windows ??= new Map();
    const live = region.windows.get(index);
    if (live) {
      this.#lru.delete(live);
      this.#lru.set(live, true);
      return live;
    }
    // The region's file range, page-aligned; the window is its part inside [index·W, (index+1)·W).
    const lo = region.offset - (region.offset % PAGE);
    const end = region.offset + region.size;
    const hi = end + ((PAGE - (end % PAGE)) % PAGE);
    const wlo = index * DMA_WINDOW_BYTES;
    const start = wlo > lo ? wlo : lo;
    const stop = wlo + DMA_WINDOW_BYTES < hi ? wlo + DMA_WINDOW_BYTES : hi;
    while (this.#lru.size >= this.#maxWindows) {
      const oldest = this.#lru.keys().next().value as Window;
      this.#unmapWindow(oldest);
    }
    let m: { buffer: ArrayBuffer };
    try {
      const prot = (region.flags & DmaMapFlag.WRITE) !== 0 ? 'rw' : 'r';
      m = mmap(region.fd as number, start, Number(stop - start), prot);
    } catch (err) {
      throw systemError(err, `${what}: mmap`, 'EFAULT');
    }
    const w: Window = { region, index, start, buffer: m.buffer, bytes: new Uint8Array(m.buffer) };
    region.windows.set(index, w);
    this.#lru.set(w, true);
    return w;
  }

  #unmapWindow(w: Window): void {
    this.#lru.delete(w);
    w.region.windows?.delete(w.index);
    munmap(w.buffer);
  }
}
