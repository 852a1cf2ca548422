/**
 * How nvgrace-gpu splits a GPU's coherent memory into the regions it shows as BARs
 * (drivers/vfio/pci/nvgrace-gpu/main.c:734-824 nvgrace_gpu_init_nvdev_struct, Linux 6.14 and
 * later; line numbers here and in this folder are of torvalds/linux 1b0ecb5b): usemem, cacheable, as BAR4/5, and on parts with the MIG
 * hardware bug (Grace Hopper) resmem, the uncached carve-out at the end, as BAR2/3.
 *
 * Since 6.14 (the Blackwell BAR1 change) there is no fixed RESMEM_SIZE (main.c:762 SZ_1G,
 * :782 the usemem BAR, :801 the round-down, :821 the resmem BAR): usemem is the memory
 * less 1 GiB rounded down to MEMBLK_SIZE (512 MiB), resmem whatever remains (1 GiB up to just
 * under 1.5 GiB), and the usemem BAR size is roundup_pow_of_two(memlength − 1 GiB) taken
 * before that round-down. (6.9–6.13 carved a fixed 1 GiB RESMEM_SIZE and rounded after.)
 * Without the bug (Grace Blackwell) all of the memory is usemem.
 */

import { hex } from '../text/index.ts';
import { VfioError } from '../vfio/index.ts';

/** SZ_1G: the carve-out the MIG bug needs, before usemem's round-down. */
export const RESMEM_BASE_SIZE = 1n << 30n;
/** MEMBLK_SIZE (SZ_512M): "a hardwired and constant ABI value between the GPU FW and VFIO driver". */
export const MEMBLK_SIZE = 512n << 20n;
/** type_max(size_t) and type_max(phys_addr_t) on arm64. */
export const U64_MAX = (1n << 64n) - 1n;

/** struct mem_region: where the region starts, how long it is, and the BAR size shown. */
export interface MemRegion {
  readonly memphys: bigint;
  readonly memlength: bigint;
  /** roundup_pow_of_two of the length (usemem: of memlength − 1 GiB when split). */
  readonly barSize: bigint;
}

/** nvgrace_gpu_init_nvdev_struct()'s split: usemem (BAR4/5) and, with the MIG hardware bug, resmem (BAR2/3). */
export interface GraceMemoryLayout {
  readonly usemem: MemRegion;
  /** Only with the MIG hardware bug; undefined leaves region 2 to the core (nvgrace_gpu_memregion). */
  readonly resmem: MemRegion | undefined;
}

/**
 * roundup_pow_of_two() (include/linux/log2.h). @throws VfioError EOVERFLOW above 2^63, where the
 * kernel's 1UL << fls_long(n - 1) is undefined
 */
export function roundupPowerOfTwo(n: bigint): bigint {
  if (n > 1n << 63n)
    throw new VfioError('EOVERFLOW', `${hex(n)} has no power of two above it in 64 bits`);
  let p = 1n;
  while (p < n) p <<= 1n;
  return p;
}

/**
 * nvgrace_gpu_init_nvdev_struct(): usemem and resmem of `memlength` bytes at `memphys`.
 * @throws VfioError EOVERFLOW when the memory is under 1 GiB with the MIG bug (check_sub_overflow)
 *   or resmem's start passes 2^64; EINVAL when usemem rounds down to nothing (under 1.5 GiB)
 */
export function initMemoryLayout(
  memphys: bigint,
  memlength: bigint,
  hasMigHwBug: boolean,
): GraceMemoryLayout {
  const resmemSize = hasMigHwBug ? RESMEM_BASE_SIZE : 0n;
  if (memlength < resmemSize) {
    throw new VfioError(
      'EOVERFLOW',
      `device memory ${hex(memlength)} is smaller than the 1 GiB the MIG bug carves out`,
    );
  }
  const beforeRound = memlength - resmemSize;
  const usemBar = roundupPowerOfTwo(beforeRound);
  if (!hasMigHwBug) {
    return { usemem: { memphys, memlength: beforeRound, barSize: usemBar }, resmem: undefined };
  }
  const usemLength = beforeRound - (beforeRound % MEMBLK_SIZE);
  if (usemLength === 0n) {
    throw new VfioError(
      'EINVAL',
      `device memory ${hex(memlength)} leaves no usable memory once 1 GiB is carved out and the rest rounded down to 512 MiB`,
    );
  }
  const resPhys = memphys + usemLength;
  if (resPhys > U64_MAX) {
    throw new VfioError(
      'EOVERFLOW',
      `resmem would start at ${hex(resPhys)}, past the 64-bit physical address space`,
    );
  }
  const resLength = memlength - usemLength;
  return {
    usemem: { memphys, memlength: usemLength, barSize: usemBar },
    resmem: { memphys: resPhys, memlength: resLength, barSize: roundupPowerOfTwo(resLength) },
  };
}
