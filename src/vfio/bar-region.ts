/**
 * A memory BAR's contents behind regions 0–5 (drivers/vfio/pci/vfio_pci_rdwr.c
 * vfio_pci_bar_rw: offset ≥ BAR length is -EINVAL, counts are clipped to the end; vfio_pci.c
 * vfio_pci_mmap: the request must lie within the page-aligned BAR). The emulation keeps it
 * simple: the BAR is zero-filled shared memory, created on first use, with a few registers
 * preset (e.g. NV_PMC_BOOT_0 of a GPU) and an optional write hook for emulated registers such
 * as the interrupt doorbell. Only accesses through region read/write reach the hook; a VMM's
 * mapping of the BAR writes the memory directly. As vfio_pci_bar_rw() does with
 * vdev->msix_offset/msix_size, region reads of the MSI-X table return 0xff and writes to it
 * are dropped (the VMM emulates the table); a mapping still sees it.
 */
import { hex } from '../text/index.ts';
import { VfioError } from './errors.ts';
import type { MmapGrant, MmapRequest, RegionOps } from './region.ts';
import type { SharedMemory, SharedMemoryFactory } from './shared-memory.ts';

/** A register preset in a BAR's memory at creation (and never reset). */
export interface BarPreset {
  readonly offset: number;
  readonly bytes: Uint8Array;
}

/** Called after a region write to a BAR, with the bytes written. */
export type BarWriteHook = (offset: bigint, data: Uint8Array) => void;

/**
 * The contents of one memory BAR as the module header describes: rw (VfioError EINVAL past the
 * end), mmap within the page-aligned BAR, an optional write hook.
 */
export class BarMemory implements RegionOps {
  private memory: SharedMemory | undefined;

  constructor(
    readonly name: string,
    readonly size: bigint,
    private readonly factory: SharedMemoryFactory,
    private readonly presets: readonly BarPreset[] = [],
    private readonly onWrite?: BarWriteHook,
    /** The MSI-X table, which vfio_pci_bar_rw() keeps from region accesses. */
    private readonly excluded?: { readonly start: bigint; readonly end: bigint },
  ) {}

  private backing(): SharedMemory {
    if (!this.memory) {
      const memory = this.factory(this.name, this.size);
      for (const p of this.presets) memory.writeOwn(BigInt(p.offset), p.bytes);
      this.memory = memory;
    }
    return this.memory;
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

  rw(offset: bigint, buf: Uint8Array, write: boolean): number {
    const count = this.clip(offset, buf.length);
    const span = buf.subarray(0, count);
    if (write) {
      this.writeOutside(offset, span);
      this.onWrite?.(offset, span);
    } else {
      this.backing().read(offset, span);
      this.padExcluded(offset, span);
    }
    return count;
  }

  /**
   * A region read lending the BAR's memory (the mapping a VMM would see), so a trapped register
   * read costs no pread; a copy when the read touches the MSI-X table (padded with 0xff) or
   * memory never written (a view would populate it).
   */
  readView(offset: bigint, count: number): Uint8Array {
    const n = this.clip(offset, count);
    const view = this.overlap(offset, n) ? null : this.backing().view(offset, n);
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
