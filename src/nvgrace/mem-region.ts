/**
 * A fake BAR over a Grace GPU's coherent memory (usemem at BAR4, resmem at BAR2), as
 * drivers/vfio/pci/nvgrace-gpu/main.c serves it:
 * (lines of drivers/vfio/pci/nvgrace-gpu/main.c)
 * - region info (nvgrace_gpu_ioctl_get_region_info, :208-261): size bar_size (the length rounded up to
 *   a power of two), READ|WRITE|MMAP, one sparse-mmap area [0, memlength);
 * - read (nvgrace_gpu_read_mem, :479-525): offset ≥ bar_size is EINVAL, the count clipped at bar_size,
 *   bytes past memlength read as 0xff;
 * - write (nvgrace_gpu_write_mem, :596-635): the same clipping, bytes past memlength dropped, the whole
 *   clipped count reported done;
 * - mmap (nvgrace_gpu_mmap, :133-206; the end check :168): offset + length past memlength is EINVAL (EOVERFLOW on overflow).
 * The memory is one sparse memfd per GPU holding both regions at their offsets from the base.
 */

import { hex } from '../text/index.ts';
import type { RegionDescription, SharedMemory } from '../vfio/index.ts';
import {
  encodeSparseMmapCap,
  type MmapGrant,
  type MmapRequest,
  RegionFlag,
  type RegionOps,
  VfioError,
} from '../vfio/index.ts';
import type { MemRegion } from './memory-layout.ts';

const U64_MAX = (1n << 64n) - 1n;
/** A fake BAR (usemem or resmem) as region ops over the GPU's device memory, per drivers/vfio/pci/nvgrace-gpu/main.c. */
export class GraceMemRegion implements RegionOps {
  /**
   * `region` at byte `base` of `memory` (the GPU's whole device memory); `name` is e.g.
   * "0009:01:00.0 usemem"; `made` gives the memory only once it exists (nothing is created
   * by asking).
   */
  constructor(
    readonly name: string,
    readonly index: number,
    readonly region: MemRegion,
    private readonly base: bigint,
    private readonly memory: () => SharedMemory,
    private readonly made: () => SharedMemory | undefined = () => undefined,
  ) {}

  /** The device memory once it exists (RegionOps.mappedMemory). */
  mappedMemory(): SharedMemory | undefined {
    return this.made();
  }

  /** [count clipped at bar_size, bytes of it inside memlength]. @throws VfioError EINVAL */
  private clip(offset: bigint, count: number): [number, number] {
    const { barSize, memlength } = this.region;
    if (offset < 0n || offset >= barSize) {
      throw new VfioError(
        'EINVAL',
        `${this.name} (region ${this.index}) offset ${hex(offset)} is past its BAR size ${hex(barSize)}`,
      );
    }
    const n = Number(BigInt(count) < barSize - offset ? BigInt(count) : barSize - offset);
    const inMem = offset >= memlength ? 0 : Math.min(n, Number(memlength - offset));
    return [n, inMem];
  }

  rw(offset: bigint, buf: Uint8Array, write: boolean): number {
    const [n, inMem] = this.clip(offset, buf.length);
    if (write) {
      if (inMem > 0) this.memory().write(this.base + offset, buf.subarray(0, inMem));
    } else {
      if (inMem > 0) this.memory().read(this.base + offset, buf.subarray(0, inMem));
      buf.fill(0xff, inMem, n);
    }
    return n;
  }

  readView(offset: bigint, count: number): Uint8Array {
    const [n, inMem] = this.clip(offset, count);
    if (n === inMem && n > 0) {
      const view = this.memory().view(this.base + offset, n);
      if (view) return view;
    }
    const copy = new Uint8Array(n);
    this.rw(offset, copy, false);
    return copy;
  }

  /** nvgrace_gpu_mmap(). @throws VfioError EOVERFLOW, EINVAL */
  mmap(request: MmapRequest): MmapGrant {
    const end = request.offset + request.length;
    if (request.offset < 0n || request.length < 0n || end > U64_MAX) {
      throw new VfioError(
        'EOVERFLOW',
        `${this.name} mapping ${hex(request.offset)}+${hex(request.length)} overflows`,
      );
    }
    if (end > this.region.memlength) {
      throw new VfioError(
        'EINVAL',
        `${this.name} mapping ${hex(request.offset)}+${hex(request.length)} goes past the device memory (${hex(this.region.memlength)} bytes)`,
      );
    }
    return { fd: this.memory().fd, fdOffset: this.base + request.offset, length: request.length };
  }

  /**
   * GET_REGION_INFO. A vfio-user server asks the mmap op once for the whole region to hand out
   * the fd; what a client may map is the sparse area, so that request is granted for it.
   */
  describe(): RegionDescription {
    const { barSize, memlength } = this.region;
    return {
      index: this.index,
      flags: RegionFlag.READ | RegionFlag.WRITE | RegionFlag.MMAP,
      size: barSize,
      caps: [encodeSparseMmapCap([{ offset: 0n, size: memlength }])],
      mmap: (request) =>
        this.mmap(
          request.offset === 0n && request.length === barSize
            ? { ...request, length: memlength }
            : request,
        ),
    };
  }
}
