/**
 * DMA dirty logging (include/uapi/linux/vfio.h VFIO_DEVICE_FEATURE_DMA_LOGGING_START/STOP/
 * REPORT; checks as drivers/vfio/vfio_main.c vfio_ioctl_device_feature_logging_start/_report):
 * the guest pages the device wrote by DMA (DMA_WRITE through the client's DMA_MAP regions),
 * recorded while logging runs, reported as a bitmap and cleared by the report (log_read_and_clear).
 */
import { VfioError } from '../vfio/index.ts';

/** A logged IOVA range [iova, iova + length). */
export interface DmaRange {
  readonly iova: bigint;
  readonly length: bigint;
}

/** vfio_main.c LOG_MAX_RANGES. */
export const LOG_MAX_RANGES = 256;
const U64_END = 1n << 64n;

function isPowerOfTwo(v: bigint): boolean {
  return v > 0n && (v & (v - 1n)) === 0n;
}

/** One device's DMA dirty log (see the module header). */
export class DmaDirtyLog {
  #pageSize = 0n;
  #ranges: DmaRange[] = [];
  /** Dirty pages by page number (iova / pageSize). */
  readonly #dirty = new Set<bigint>();

  get active(): boolean {
    return this.#ranges.length > 0;
  }

  /**
   * DMA_LOGGING_START with `pageSize` and `ranges` (none: every IOVA, vfio-user's reading).
   * @throws VfioError EINVAL when logging already runs (pds_vfio_dma_logging_start), for a page
   *   size that is not a power of two of at least 4 KiB, misaligned or overlapping ranges;
   *   E2BIG for more than LOG_MAX_RANGES; EOVERFLOW for a range past 2^64.
   */
  start(pageSize: bigint, ranges: readonly DmaRange[]): void {
    if (this.active) throw new VfioError('EINVAL', 'DMA logging is already started');
    if (!isPowerOfTwo(pageSize) || pageSize < 4096n)
      throw new VfioError(
        'EINVAL',
        `DMA logging page size ${pageSize} is not a power of two ≥ 4096`,
      );
    if (ranges.length > LOG_MAX_RANGES)
      throw new VfioError(
        'E2BIG',
        `${ranges.length} DMA logging ranges (at most ${LOG_MAX_RANGES})`,
      );
    const list = ranges.length === 0 ? [{ iova: 0n, length: U64_END - pageSize }] : ranges;
    const sorted = [...list].sort((a, b) => (a.iova < b.iova ? -1 : a.iova > b.iova ? 1 : 0));
    let end = 0n;
    for (const [i, r] of sorted.entries()) {
      if (r.iova % pageSize !== 0n || r.length % pageSize !== 0n || r.length === 0n)
        throw new VfioError(
          'EINVAL',
          `DMA logging range ${r.iova}+${r.length} is not page-aligned`,
        );
      if (r.iova + r.length > U64_END)
        throw new VfioError('EOVERFLOW', `DMA logging range ${r.iova}+${r.length} passes 2^64`);
      if (i > 0 && r.iova < end)
        throw new VfioError('EINVAL', `DMA logging range ${r.iova}+${r.length} overlaps another`);
      end = r.iova + r.length;
    }
    this.#pageSize = pageSize;
    this.#ranges = sorted;
    this.#dirty.clear();
  }

  /** DMA_LOGGING_STOP: nothing is recorded any more (stopping twice is fine). */
  stop(): void {
    this.#ranges = [];
    this.#dirty.clear();
  }

  /** The device wrote `length` bytes at `address`: marks the logged pages it touched. */
  record(address: bigint, length: number): void {
    if (!this.active || length === 0) return;
    const last = address + BigInt(length) - 1n;
    for (const r of this.#ranges) {
      const from = address > r.iova ? address : r.iova;
      const rEnd = r.iova + r.length - 1n;
      const to = last < rEnd ? last : rEnd;
      for (let p = from / this.#pageSize; from <= to && p <= to / this.#pageSize; p++)
        this.#dirty.add(p);
    }
  }

  /**
   * DMA_LOGGING_REPORT of [iova, iova + length) at `pageSize`: a bitmap of u64 words, bit i
   * for page iova + i·pageSize, set when any byte of it was written; those pages are cleared.
   * @throws VfioError EINVAL when logging is not started, the page size is not a power of two in
   *   [4 KiB, 512 MiB], iova is not aligned to it, or the range leaves the logged ranges;
   *   EOVERFLOW past 2^64.
   */
  report(iova: bigint, length: bigint, pageSize: bigint): Uint8Array {
    if (!this.active) throw new VfioError('EINVAL', 'DMA logging is not started');
    if (!isPowerOfTwo(pageSize) || pageSize < 4096n || pageSize > 512n << 20n)
      throw new VfioError(
        'EINVAL',
        `report page size ${pageSize} is not a power of two in [4 KiB, 512 MiB]`,
      );
    if (iova + length > U64_END)
      throw new VfioError('EOVERFLOW', `report range ${iova}+${length} passes 2^64`);
    if (iova % pageSize !== 0n)
      throw new VfioError('EINVAL', `report iova ${iova} is not aligned to ${pageSize}`);
    if (!this.#ranges.some((r) => iova >= r.iova && iova + length <= r.iova + r.length))
      throw new VfioError('EINVAL', `report range ${iova}+${length} is not inside a logged range`);
    const bits = Number((length + pageSize - 1n) / pageSize);
    const bitmap = new Uint8Array(Math.ceil(bits / 64) * 8);
    const ratio = pageSize / this.#pageSize;
    for (const page of [...this.#dirty]) {
      const at = page * this.#pageSize;
      if (at + this.#pageSize <= iova || at >= iova + length) continue;
      const first = at < iova ? 0n : (at - iova) / pageSize;
      const lastByte = at + this.#pageSize - 1n;
      const end = lastByte >= iova + length ? BigInt(bits) - 1n : (lastByte - iova) / pageSize;
      for (let b = first; b <= end; b++) {
        const i = Number(b);
        bitmap[i >> 3] = (bitmap[i >> 3] as number) | (1 << (i & 7));
      }
      if (ratio >= 1n || (at >= iova && lastByte < iova + length)) this.#dirty.delete(page);
    }
    return bitmap;
  }
}
