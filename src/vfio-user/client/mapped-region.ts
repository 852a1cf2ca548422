/**
 * A device region mapped into the client through the fd of its region-info reply
 * (vfio-user.rst "VFIO_USER_DEVICE_GET_REGION_INFO": mmap the fd at the reply's `offset`;
 * with a SPARSE_MMAP capability only its areas, each at offset + area.offset). Large regions
 * are mapped in windows (src/native/shared-mapping.ts).
 */
import { closeFd, pageSize, SharedMapping } from '../../native/index.ts';
import { hex } from '../../text/index.ts';
import type { SparseMmapArea } from '../../vfio/index.ts';
import { VfioError } from '../../vfio/index.ts';

/**
 * One mmap-able area of a region as mapped by the client: its offset and size (bytes) in the region
 * and the mapping behind it.
 */
export interface MappedArea {
  /** Offset of the area inside the region. */
  readonly regionOffset: bigint;
  readonly size: bigint;
  readonly mapping: SharedMapping;
  /** Where the area starts inside `mapping` (mmap offsets are page-aligned, areas need not be). */
  readonly skew: bigint;
}

/**
 * A region the client has mmap'ed from the fd of GET_REGION_INFO (its sparse areas); reads and
 * writes by region offset, not over the socket.
 */
export class MappedRegion {
  #areas: MappedArea[];
  #fd: number | null;

  private constructor(
    readonly index: number,
    areas: MappedArea[],
    fd: number,
  ) {
    this.#areas = areas;
    this.#fd = fd;
  }

  /**
   * Maps `areas` (the whole region when null) of region `index` from `fd`, taking ownership of
   * `fd` (closed by `unmap`, or at once if mapping fails).
   * @throws SystemCallError from mmap.
   */
  static map(
    index: number,
    fd: number,
    fdOffset: bigint,
    regionSize: bigint,
    areas: readonly SparseMmapArea[] | null,
    writable: boolean,
  ): MappedRegion {
    const want = areas ?? [{ offset: 0n, size: regionSize }];
    const page = BigInt(pageSize());
    const mapped: MappedArea[] = [];
    try {
      for (const a of want) {
        if (a.size === 0n) continue;
        const start = fdOffset + a.offset;
        const skew = start % page;
        const mapping = SharedMapping.map(fd, start - skew, a.size + skew, writable ? 'rw' : 'r');
        mapped.push({ regionOffset: a.offset, size: a.size, mapping, skew });
      }
    } catch (e) {
      for (const m of mapped) m.mapping.unmap();
      closeFd(fd);
      throw e;
    }
    return new MappedRegion(index, mapped, fd);
  }

  /** The mapped areas, by offset inside the region (one for a whole-region mapping). */
  get areas(): readonly MappedArea[] {
    return this.#areas;
  }

  /** @throws VfioError EFAULT when the range is not inside one mapped area. */
  read(offset: bigint, length: number): Uint8Array {
    const { area, at } = this.#find(offset, length);
    return area.mapping.read(area.skew + at, length);
  }

  /** @throws VfioError EFAULT as `read`. */
  write(offset: bigint, data: Uint8Array): void {
    const { area, at } = this.#find(offset, data.length);
    area.mapping.write(area.skew + at, data);
  }

  #find(offset: bigint, length: number): { area: MappedArea; at: bigint } {
    for (const area of this.#areas) {
      if (offset >= area.regionOffset && offset + BigInt(length) <= area.regionOffset + area.size) {
        return { area, at: offset - area.regionOffset };
      }
    }
    throw new VfioError(
      'EFAULT',
      `region ${this.index}: ${hex(offset)}+${length} is not in a mapped area`,
    );
  }

  /** Unmaps every area and closes the region fd. Idempotent. */
  unmap(): void {
    for (const a of this.#areas) a.mapping.unmap();
    this.#areas = [];
    if (this.#fd !== null) closeFd(this.#fd);
    this.#fd = null;
  }
}
