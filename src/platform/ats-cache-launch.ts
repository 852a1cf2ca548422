/**
 * The NPU2 ATSD LAUNCH register word (IBM bit numbering: bit 0 is the MSB of the 64-bit word):
 * R 0, RIC 1–2, LP 3–10, IS 11–12, PRS 13, B 14, AP 15–17, L 18, PID 19–38, F 39, 40 and 41
 * (OpenCAPI only), 42–63 reserved. Pure encode/decode, and the kernel's own launch values
 * (arch/powerpc/platforms/powernv/npu-dma.c, get_atsd_launch_val() and mmio_invalidate(),
 * v4.17–v5.0) for reference.
 */

export interface AtsdLaunchFields {
  /** Radix (bit 0). The kernel never set it, so the emulation does not gate on it. */
  readonly r: boolean;
  /** Bits 1–2: 0 TLB, 1 page-walk cache, 2 all, 3 reserved. */
  readonly ric: number;
  /** Bits 3–10. */
  readonly lp: number;
  /** Bits 11–12: 0 this VA, 1 whole PID, 2 whole LPID, 3 whole LPID (both scopes). */
  readonly is: number;
  /** Bit 13: process scope (else partition scope). */
  readonly prs: boolean;
  /** Bit 14. */
  readonly b: boolean;
  /** Bits 15–17: page size, see AP_PAGE_SIZE. */
  readonly ap: number;
  /** Bit 18. */
  readonly l: boolean;
  /** Bits 19–38 (20 bits). */
  readonly pid: number;
  /** Bit 39: no flush. */
  readonly f: boolean;
  /** Bit 40 (OpenCAPI only). */
  readonly ocapi40: boolean;
  /** Bit 41 (OpenCAPI only). */
  readonly ocapi41: boolean;
  /** Bits 42–63 (22 bits), kept so that decode/encode round-trips any word. */
  readonly reserved: number;
}

/** PPC_BITLSHIFT(be) = 63 - be: the shift of a field whose last IBM bit is `last`. */
function shiftOf(last: number): bigint {
  return BigInt(63 - last);
}

function getField(word: bigint, first: number, last: number): number {
  const width = BigInt(last - first + 1);
  return Number((word >> shiftOf(last)) & ((1n << width) - 1n));
}

function setField(value: number, first: number, last: number): bigint {
  const width = BigInt(last - first + 1);
  const v = BigInt(value);
  if (v < 0n || v >= 1n << width) {
    throw new RangeError(
      `ATSD launch field at bits ${first}-${last}: ${value} does not fit ${width} bits`,
    );
  }
  return v << shiftOf(last);
}

const bit = (word: bigint, n: number): boolean => getField(word, n, n) === 1;
const flag = (value: boolean, n: number): bigint => (value ? 1n << shiftOf(n) : 0n);

/** The fields of a LAUNCH word. */
export function decodeLaunch(word: bigint): AtsdLaunchFields {
  const w = BigInt.asUintN(64, word);
  return {
    r: bit(w, 0),
    ric: getField(w, 1, 2),
    lp: getField(w, 3, 10),
    is: getField(w, 11, 12),
    prs: bit(w, 13),
    b: bit(w, 14),
    ap: getField(w, 15, 17),
    l: bit(w, 18),
    pid: getField(w, 19, 38),
    f: bit(w, 39),
    ocapi40: bit(w, 40),
    ocapi41: bit(w, 41),
    reserved: getField(w, 42, 63),
  };
}

/**
 * A LAUNCH word from fields (missing ones are 0).
 * @throws RangeError when a value does not fit its field.
 */
export function encodeLaunch(fields: Partial<AtsdLaunchFields>): bigint {
  return (
    flag(fields.r ?? false, 0) |
    setField(fields.ric ?? 0, 1, 2) |
    setField(fields.lp ?? 0, 3, 10) |
    setField(fields.is ?? 0, 11, 12) |
    flag(fields.prs ?? false, 13) |
    flag(fields.b ?? false, 14) |
    setField(fields.ap ?? 0, 15, 17) |
    flag(fields.l ?? false, 18) |
    setField(fields.pid ?? 0, 19, 38) |
    flag(fields.f ?? false, 39) |
    flag(fields.ocapi40 ?? false, 40) |
    flag(fields.ocapi41 ?? false, 41) |
    setField(fields.reserved ?? 0, 42, 63)
  );
}

/** An ATS page size (the AP field of an ATSD launch; POWER9 radix page sizes). */
export type AtsPageSize = '4K' | '64K' | '2M' | '1G';

/** Bytes of each page size. */
export const PAGE_BYTES: Readonly<Record<AtsPageSize, bigint>> = {
  '4K': 0x1000n,
  '64K': 0x10000n,
  '2M': 0x200000n,
  '1G': 0x40000000n,
};

/** AP encodings (the radix AP values, arch/powerpc mmu_get_ap): 000 4K, 101 64K, 001 2M, 010 1G. */
export const AP_OF_PAGE_SIZE: Readonly<Record<AtsPageSize, number>> = {
  '4K': 0,
  '64K': 5,
  '2M': 1,
  '1G': 2,
};

/** The page size an AP value selects; undefined for the reserved encodings. */
export function pageSizeOfAp(ap: number): AtsPageSize | undefined {
  return (Object.keys(AP_OF_PAGE_SIZE) as AtsPageSize[]).find((s) => AP_OF_PAGE_SIZE[s] === ap);
}

/**
 * npu-dma.c get_atsd_launch_val(pid, psize): IS=01 (whole PID) when `psize` is 'all'
 * (MMU_PAGE_COUNT), else AP of the size; PRS=1; PID; F=0 "so every ATSD performs a flush".
 * Like the kernel it sets neither R nor RIC.
 */
export function getAtsdLaunchVal(pid: number, psize: AtsPageSize | 'all'): bigint {
  let launch = 0n;
  if (psize === 'all')
    launch |= 1n << shiftOf(12); // PPC_BIT(12)
  else launch |= BigInt(AP_OF_PAGE_SIZE[psize]) << shiftOf(17);
  launch |= 1n << shiftOf(13); // PPC_BIT(13): process scoped
  launch |= BigInt(pid) << shiftOf(38);
  return launch;
}

/** One register write sequence of the kernel's flush: AVA (when given), then LAUNCH, then poll STAT. */
export interface AtsdInvalidateStep {
  readonly ava: bigint | undefined;
  readonly launch: bigint;
}

/**
 * npu-dma.c mmio_invalidate(pid, start, size): rounds the range to one of 64K / 2M / 1G or the
 * whole PID, launches, and then the two PID-0 flushes "the GPU requires".
 */
export function kernelInvalidateSteps(
  pid: number,
  start: bigint,
  size: bigint,
): AtsdInvalidateStep[] {
  const end = start + size - 1n;
  const down = (v: bigint, a: bigint): bigint => v & ~(a - 1n);
  let first: AtsdInvalidateStep;
  if (size === PAGE_BYTES['64K']) first = { ava: start, launch: getAtsdLaunchVal(pid, '64K') };
  else if (down(start, PAGE_BYTES['2M']) === down(end, PAGE_BYTES['2M'])) {
    first = { ava: down(start, PAGE_BYTES['2M']), launch: getAtsdLaunchVal(pid, '2M') };
  } else if (down(start, PAGE_BYTES['1G']) === down(end, PAGE_BYTES['1G'])) {
    first = { ava: down(start, PAGE_BYTES['1G']), launch: getAtsdLaunchVal(pid, '1G') };
  } else first = { ava: undefined, launch: getAtsdLaunchVal(pid, 'all') };
  const flush: AtsdInvalidateStep = { ava: undefined, launch: getAtsdLaunchVal(0, 'all') };
  return [first, flush, flush];
}
