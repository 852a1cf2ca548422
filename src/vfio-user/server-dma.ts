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
 * - a region that came with an fd is mmap'ed (MAP_SHARED, in windows) so DMA_READ/DMA_WRITE
 *   could use it; a region without an fd is accepted and recorded (QEMU maps guest RAM at
 *   start-up, shared or not, and needs success).
 * The table owns every fd it holds and closes it on unmap.
 */
import { closeFd, isSystemCallError, SharedMapping } from '../native/index.ts';
import { Errno, type ErrnoName, VfioError } from '../vfio/errors.ts';
import { DEFAULT_MAX_DMA_MAPS, DmaMapFlag, DmaUnmapFlag } from './constants.ts';
import type { DmaMapPayload, DmaUnmapPayload } from './messages.ts';

const U64_LIMIT = 1n << 64n;
const PAGE = 4096n;

export interface DmaRegion {
  readonly address: bigint;
  readonly size: bigint;
  readonly flags: number;
  readonly offset: bigint;
  readonly fd: number | undefined;
  readonly mapping: SharedMapping | undefined;
  /** Bytes between the page-aligned start of `mapping` and `offset`. */
  readonly skew: bigint;
}

const hex = (v: bigint) => `0x${v.toString(16)}`;

function rangeText(address: bigint, size: bigint): string {
  return `${hex(address)}-${hex(address + size)}`;
}

function mapError(err: unknown, what: string): VfioError {
  if (isSystemCallError(err)) {
    const code = (err.code in Errno ? err.code : 'EINVAL') as ErrnoName;
    return new VfioError(code, `${what}: mmap failed (${err.code})`);
  }
  return new VfioError('EINVAL', `${what}: ${err instanceof Error ? err.message : String(err)}`);
}

export class DmaTable {
  readonly #regions: DmaRegion[] = [];

  constructor(private readonly maxRegions: number = DEFAULT_MAX_DMA_MAPS) {}

  get regions(): readonly DmaRegion[] {
    return this.#regions;
  }

  /**
   * DMA_MAP. Takes ownership of `fd` (closed on every failure).
   * @throws VfioError EINVAL (argsz, flags, size, too many), EEXIST (overlap), or mmap's errno.
   */
  map(m: DmaMapPayload, fd: number | undefined): void {
    try {
      this.#validateMap(m);
      const clash = this.#regions.find(
        (r) => m.address < r.address + r.size && r.address < m.address + m.size,
      );
      if (clash) {
        throw new VfioError(
          'EEXIST',
          `DMA_MAP ${rangeText(m.address, m.size)} overlaps the mapped region ${rangeText(clash.address, clash.size)}`,
        );
      }
      if (this.#regions.length >= this.maxRegions) {
        throw new VfioError(
          'EINVAL',
          `DMA_MAP: already ${this.#regions.length} regions (max_dma_maps)`,
        );
      }
      this.#regions.push(this.#create(m, fd));
    } catch (e) {
      if (fd !== undefined) closeFd(fd);
      throw e;
    }
  }

  #validateMap(m: DmaMapPayload): void {
    if (m.argsz < 32) throw new VfioError('EINVAL', `DMA_MAP argsz ${m.argsz} is under 32`);
    if ((m.flags & ~(DmaMapFlag.READ | DmaMapFlag.WRITE)) !== 0) {
      throw new VfioError(
        'EINVAL',
        `DMA_MAP flags 0x${m.flags.toString(16)}: only READ 0x1 and WRITE 0x2 exist`,
      );
    }
    if (m.size === 0n) throw new VfioError('EINVAL', `DMA_MAP of size 0 at ${hex(m.address)}`);
    if (m.address + m.size > U64_LIMIT) {
      throw new VfioError('EINVAL', `DMA_MAP ${hex(m.address)}+${hex(m.size)} wraps past 2^64`);
    }
  }

  #create(m: DmaMapPayload, fd: number | undefined): DmaRegion {
    if (fd === undefined) return { ...m, fd, mapping: undefined, skew: 0n };
    const skew = m.offset % PAGE;
    let mapping: SharedMapping;
    try {
      mapping = SharedMapping.map(
        fd,
        m.offset - skew,
        m.size + skew,
        (m.flags & DmaMapFlag.WRITE) !== 0 ? 'rw' : 'r',
      );
    } catch (err) {
      throw mapError(err, `DMA_MAP ${rangeText(m.address, m.size)}`);
    }
    return {
      address: m.address,
      size: m.size,
      flags: m.flags,
      offset: m.offset,
      fd,
      mapping,
      skew,
    };
  }

  /**
   * DMA_UNMAP: exactly one mapped range, or all with the ALL flag.
   * @returns the regions removed
   * @throws VfioError EINVAL (argsz, flags, ALL with a range), ENOENT (no such mapping)
   */
  unmap(u: DmaUnmapPayload): number {
    if (u.argsz < 24) throw new VfioError('EINVAL', `DMA_UNMAP argsz ${u.argsz} is under 24`);
    if ((u.flags & ~DmaUnmapFlag.ALL) !== 0) {
      throw new VfioError(
        'EINVAL',
        `DMA_UNMAP flags 0x${u.flags.toString(16)}: only ALL 0x2 is supported`,
      );
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
    const i = this.#regions.findIndex((r) => r.address === u.address && r.size === u.size);
    if (i < 0)
      throw new VfioError(
        'ENOENT',
        `DMA_UNMAP ${rangeText(u.address, u.size)}: no such mapped region`,
      );
    const [region] = this.#regions.splice(i, 1);
    if (region) release(region);
    return 1;
  }

  /** Unmaps everything, closing every fd; returns how many regions there were. */
  clear(): number {
    const n = this.#regions.length;
    for (const r of this.#regions.splice(0)) release(r);
    return n;
  }

  /**
   * Copies `length` bytes of guest memory at DMA address `address` (what a DMA_READ to the
   * client would fetch), from a region mapped with an fd.
   * @throws VfioError EFAULT when the range is not inside one fd-backed region.
   */
  read(address: bigint, length: number): Uint8Array {
    const { region, at } = this.#locate(address, length);
    return (region.mapping as SharedMapping).read(at, length);
  }

  /** Writes guest memory (what a DMA_WRITE would). @throws VfioError EFAULT, EPERM (read-only). */
  write(address: bigint, data: Uint8Array): void {
    const { region, at } = this.#locate(address, data.length);
    if ((region.flags & DmaMapFlag.WRITE) === 0) {
      throw new VfioError(
        'EPERM',
        `DMA region ${rangeText(region.address, region.size)} is read-only`,
      );
    }
    (region.mapping as SharedMapping).write(at, data);
  }

  #locate(address: bigint, length: number): { region: DmaRegion; at: bigint } {
    const end = address + BigInt(length);
    const region = this.#regions.find((r) => r.address <= address && end <= r.address + r.size);
    if (!region?.mapping) {
      throw new VfioError(
        'EFAULT',
        `DMA ${hex(address)}+${length} is not inside a region mapped with an fd`,
      );
    }
    return { region, at: address - region.address + region.skew };
  }
}

function release(r: DmaRegion): void {
  r.mapping?.unmap();
  if (r.fd !== undefined) closeFd(r.fd);
}
