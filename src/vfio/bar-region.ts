/**
 * A memory BAR's contents behind regions 0–5 (drivers/vfio/pci/vfio_pci_rdwr.c
 * vfio_pci_bar_rw: offset ≥ BAR length is -EINVAL, counts are clipped to the end; vfio_pci.c
 * vfio_pci_mmap: the request must lie within the page-aligned BAR). The BAR is zero-filled
 * shared memory, created on first use, except its register pages (NV_PMC_BOOT_0's page, the
 * doorbell page): those live in the server's own memory, so that a VMM mapping the BAR — which
 * the sparse-mmap capability tells to leave them out, and which reaches the memfd's pages at
 * those offsets if it maps them anyway — never reaches a register; only region read/write
 * does, and only it reaches the write hook (the interrupt doorbell, the DMA engine). Read-only
 * registers (IDs) keep their value across writes; reset() restores every register page. As
 * vfio_pci_bar_rw() does with vdev->msix_offset/msix_size, region reads of the MSI-X table
 * return 0xff and writes to it are dropped (the VMM emulates the table); a mapping still sees it.
 */
import type { PlainRange } from '../native/index.ts';
import { hex } from '../text/index.ts';
import { VfioError } from './errors.ts';
import type { MmapGrant, MmapRequest, RegionContents, RegionOps } from './region.ts';
import type { SharedMemory, SharedMemoryFactory } from './shared-memory.ts';

/** A register preset in a BAR's memory at creation (and, in a register page, at every reset). */
export interface BarPreset {
  readonly offset: number;
  readonly bytes: Uint8Array;
  /** An ID register: writes leave it as preset (only meaningful in a register page). */
  readonly readOnly?: boolean;
}

/** A byte range of a BAR, [start, end). */
export interface BarRange {
  readonly start: bigint;
  readonly end: bigint;
}

/** Called after a region write to a BAR, with the bytes written. */
export type BarWriteHook = (offset: bigint, data: Uint8Array) => void;

/** A register page: its bytes in the server's memory and the bytes a write leaves alone. */
interface RegisterPage extends BarRange {
  readonly bytes: Uint8Array;
  /** 1 for each byte of a read-only register. */
  readonly readOnly: Uint8Array;
}

/**
 * The contents of one memory BAR as the module header describes: rw (VfioError EINVAL past the
 * end), mmap within the page-aligned BAR, an optional write hook.
 */
export class BarMemory implements RegionOps {
  private memory: SharedMemory | undefined;
  private readonly pages: readonly RegisterPage[];
  private readonly registerListeners: (() => void)[] = [];

  constructor(
    readonly name: string,
    readonly size: bigint,
    private readonly factory: SharedMemoryFactory,
    private readonly presets: readonly BarPreset[] = [],
    private readonly onWrite?: BarWriteHook,
    /** The MSI-X table, which vfio_pci_bar_rw() keeps from region accesses. */
    private readonly excluded?: BarRange,
    /** Register pages, sorted, page-aligned, not overlapping, inside the BAR. */
    registerPages: readonly BarRange[] = [],
  ) {
    this.pages = registerPages.map((r) => {
      const length = Number(r.end - r.start);
      return { ...r, bytes: new Uint8Array(length), readOnly: new Uint8Array(length) };
    });
    for (const p of this.presets) {
      const page = this.pageAt(BigInt(p.offset));
      if (page && p.readOnly) {
        const at = Number(BigInt(p.offset) - page.start);
        page.readOnly.fill(1, at, at + p.bytes.length);
      }
    }
    this.reset();
  }

  /**
   * The areas a VMM may map (the BAR less its register pages), as the sparse-mmap capability
   * lists them; the whole BAR when it has no register page.
   */
  mappableAreas(): BarRange[] {
    const areas: BarRange[] = [];
    let at = 0n;
    for (const p of this.pages) {
      if (p.start > at) areas.push({ start: at, end: p.start });
      at = p.end;
    }
    if (at < this.size) areas.push({ start: at, end: this.size });
    return areas;
  }

  /**
   * The mappable areas less the MSI-X table, in the BAR's memfd: plain memory for the native
   * fast path (the write hook reacts only inside register pages). None before the memory
   * exists (made at the BAR's first use: never for the fast path's sake) or without an own fd.
   */
  plainRanges(index: number): PlainRange[] {
    const fd = this.memory?.ownFd;
    if (fd === undefined) return [];
    const x = this.excluded;
    const ranges: PlainRange[] = [];
    for (const a of this.mappableAreas()) {
      // An area the MSI-X table overlaps keeps what lies before and after it.
      const pieces =
        x && x.start < a.end && a.start < x.end
          ? [
              { start: a.start, end: x.start },
              { start: x.end, end: a.end },
            ]
          : [a];
      for (const p of pieces) {
        if (p.start < p.end)
          ranges.push({ region: index, start: p.start, end: p.end, writable: true, fd });
      }
    }
    return ranges;
  }

  /** The BAR's register pages. */
  get registerPages(): BarRange[] {
    return this.pages.map((p) => ({ start: p.start, end: p.end }));
  }

  /** The device's reset: every register page back to zeros and its presets. */
  reset(): void {
    for (const page of this.pages) page.bytes.fill(0);
    for (const p of this.presets) {
      const page = this.pageAt(BigInt(p.offset));
      if (page) page.bytes.set(p.bytes, Number(BigInt(p.offset) - page.start));
    }
  }

  /** Calls `listener` after each write that reached a register page (the device's own state). */
  onRegisterWrite(listener: () => void): void {
    this.registerListeners.push(listener);
  }

  /**
   * Every register page's bytes, concatenated in page order (what a state directory keeps; the
   * pages of a BAR built the same way say where each begins).
   */
  registerSnapshot(): Uint8Array {
    const pages = this.registerState();
    const out = new Uint8Array(pages.reduce((n, p) => n + p.bytes.length, 0));
    let at = 0;
    for (const p of pages) {
      out.set(p.bytes, at);
      at += p.bytes.length;
    }
    return out;
  }

  /**
   * Puts back bytes taken by `registerSnapshot` of a BAR built the same way.
   * @throws VfioError EINVAL when `bytes` is not the register pages' size.
   */
  restoreRegisterSnapshot(bytes: Uint8Array): void {
    const size = this.pages.reduce((n, p) => n + p.bytes.length, 0);
    if (bytes.length !== size)
      throw new VfioError(
        'EINVAL',
        `${this.name}: ${bytes.length} bytes of register pages, expected ${size}`,
      );
    let at = 0;
    for (const p of this.pages) {
      this.restoreRegisters(p.start, bytes.subarray(at, at + p.bytes.length));
      at += p.bytes.length;
    }
  }

  private pageAt(offset: bigint): RegisterPage | undefined {
    return this.pages.find((p) => offset >= p.start && offset < p.end);
  }

  private backing(): SharedMemory {
    if (!this.memory) {
      const memory = this.factory(this.name, this.size);
      // A memory restored from a state directory holds whatever was written over the presets.
      for (const p of memory.restored ? [] : this.presets) {
        if (!this.pageAt(BigInt(p.offset))) memory.writeOwn(BigInt(p.offset), p.bytes);
      }
      this.memory = memory;
    }
    return this.memory;
  }

  /**
   * Calls `each` for the pieces of [offset, offset + length): in a register page (with it) or
   * in shared memory (page undefined); `at` is the piece's index into the access.
   */
  private pieces(
    offset: bigint,
    length: number,
    each: (offset: bigint, at: number, length: number, page: RegisterPage | undefined) => void,
  ): void {
    const end = offset + BigInt(length);
    let from = offset;
    while (from < end) {
      const page = this.pageAt(from);
      let to = end;
      if (page) {
        if (page.end < to) to = page.end;
      } else {
        const next = this.pages.find((p) => p.start > from);
        if (next && next.start < to) to = next.start;
      }
      each(from, Number(from - offset), Number(to - from), page);
      from = to;
    }
  }

  /** `length` clipped at the BAR's end. @throws VfioError EINVAL for an offset past it. */
  private clip(offset: bigint, length: number): number {
    if (offset < 0n || offset >= this.size) {
      throw new VfioError(
        'EINVAL',
        `${this.name} offset ${hex(offset)} is past its end (size ${hex(this.size)})`,
      );
    }
    const left = Number(this.size - offset);
    return Math.min(length, left);
  }

  /**
   * vfio_pci_bar_rw(): reads into or writes from `buf` at `offset`, clipped at the BAR's end;
   * register pages go to their hooks. Returns the bytes done.
   * @throws VfioError EINVAL when `offset` is at or past the BAR's end
   */
  rw(offset: bigint, buf: Uint8Array, write: boolean): number {
    const count = this.clip(offset, buf.length);
    const span = buf.subarray(0, count);
    let registers = false;
    if (this.pages.length === 0) {
      this.memoryRw(offset, span, write);
    } else {
      this.pieces(offset, count, (from, at, length, page) => {
        const piece = span.subarray(at, at + length);
        if (!page) this.memoryRw(from, piece, write);
        else {
          this.registerRw(page, Number(from - page.start), piece, write);
          registers = write;
        }
      });
    }
    if (registers) for (const listener of this.registerListeners) listener();
    if (write) this.onWrite?.(offset, span);
    return count;
  }

  /** A piece of an access inside one register page, at index `i` of it. */
  private registerRw(page: RegisterPage, i: number, piece: Uint8Array, write: boolean): void {
    if (!write) {
      piece.set(page.bytes.subarray(i, i + piece.length));
      return;
    }
    for (let k = 0; k < piece.length; k++) {
      if (page.readOnly[i + k] === 0) page.bytes[i + k] = piece[k] as number;
    }
  }

  private memoryRw(offset: bigint, span: Uint8Array, write: boolean): void {
    if (write) {
      this.writeOutside(offset, span);
    } else {
      this.backing().read(offset, span);
      this.padExcluded(offset, span);
    }
  }

  /** Whether [offset, offset + length) touches a register page. */
  private touchesRegisters(offset: bigint, length: number): boolean {
    const end = offset + BigInt(length);
    return this.pages.some((p) => p.start < end && offset < p.end);
  }

  /**
   * A region read lending the BAR's memory (the mapping a VMM would see), so a trapped read
   * costs no pread; a copy when the read touches the MSI-X table (padded with 0xff), a register
   * page, or memory never written (a view would populate it).
   */
  readView(offset: bigint, count: number): Uint8Array {
    const n = this.clip(offset, count);
    const plain = !this.overlap(offset, n) && !this.touchesRegisters(offset, n);
    const view = plain ? this.backing().view(offset, n) : null;
    if (view !== null) return view;
    const copy = new Uint8Array(n);
    this.rw(offset, copy, false);
    return copy;
  }

  /** The part of [offset, offset + length) inside the excluded range, as indexes into the access. */
  private overlap(offset: bigint, length: number): [number, number] | undefined {
    const x = this.excluded;
    if (!x) return undefined;
    const from = offset > x.start ? offset : x.start;
    const end = offset + BigInt(length);
    const to = end < x.end ? end : x.end;
    return from < to ? [Number(from - offset), Number(to - offset)] : undefined;
  }

  /** vfio_pci_rdwr.c do_io_rw(): reads of the MSI-X table are padded with 0xff. */
  private padExcluded(offset: bigint, span: Uint8Array): void {
    const o = this.overlap(offset, span.length);
    if (o) span.fill(0xff, o[0], o[1]);
  }

  /** vfio_pci_rdwr.c do_io_rw(): writes to the MSI-X table are dropped. */
  private writeOutside(offset: bigint, span: Uint8Array): void {
    const o = this.overlap(offset, span.length);
    if (!o) {
      this.backing().write(offset, span);
      return;
    }
    if (o[0] > 0) this.backing().write(offset, span.subarray(0, o[0]));
    if (o[1] < span.length) this.backing().write(offset + BigInt(o[1]), span.subarray(o[1]));
  }

  /**
   * vfio_pci_mmap() of the BAR: its memory fd at `request.offset` (made on first use).
   * @throws VfioError EINVAL when the range is empty or not inside the BAR
   */
  mmap(request: MmapRequest): MmapGrant {
    if (
      request.offset < 0n ||
      request.length <= 0n ||
      request.offset + request.length > this.size
    ) {
      throw new VfioError(
        'EINVAL',
        `${this.name} mapping ${hex(request.offset)}+${hex(request.length)} exceeds its size ${hex(this.size)}`,
      );
    }
    return { fd: this.backing().fd, fdOffset: request.offset, length: request.length };
  }

  /**
   * The BAR's memory once it exists (RegionOps.mappedMemory); a memory kept from
   * before this process (a state directory's file) is opened for it, as a client of the last
   * server may still map it.
   */
  mappedMemory(): SharedMemory | undefined {
    if (!this.memory && this.factory.kept?.(this.name)) this.backing();
    return this.memory;
  }

  /**
   * The BAR's memory for migration: its populated pages, read and written as they are (the
   * MSI-X table included, no write hook); register pages are `registerState`.
   */
  contents(): RegionContents {
    return {
      dataRanges: () => this.memory?.dataRanges(0n, this.size) ?? [],
      read: (offset, buf) => {
        if (this.memory) this.memory.read(offset, buf);
        else buf.fill(0);
      },
      view: (offset, length) => this.memory?.view(offset, length) ?? null,
      write: (offset, data) => this.backing().write(offset, data),
      clear: (kept) => this.memory?.clear(kept),
    };
  }

  /** Each register page's start and a copy of its bytes (what a saved device carries). */
  registerState(): { start: bigint; bytes: Uint8Array }[] {
    return this.pages.map((p) => ({ start: p.start, bytes: p.bytes.slice() }));
  }

  /**
   * Restores the register page at `start` byte for byte (read-only registers too: the source
   * had the same presets).
   * @throws VfioError EINVAL when no register page starts there or the length differs.
   */
  restoreRegisters(start: bigint, bytes: Uint8Array): void {
    const page = this.pages.find((p) => p.start === start);
    if (!page || page.bytes.length !== bytes.length) {
      throw new VfioError(
        'EINVAL',
        `${this.name} has no ${bytes.length}-byte register page at ${hex(start)}`,
      );
    }
    page.bytes.set(bytes);
  }

  /** Bytes of the BAR's memory populated so far (0 before its first use). */
  touched(): bigint {
    return this.memory?.touched() ?? 0n;
  }

  /** Free the memory (the device is being destroyed). */
  dispose(): void {
    this.memory?.close();
    this.memory = undefined;
  }
}
